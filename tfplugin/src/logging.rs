//! Logs as hclog JSON lines on stderr, the form Terraform re-logs under its own
//! `TF_LOG_PROVIDER` / `TF_LOG` level.
//!
//! Terraform reads provider stderr line by line: a JSON object with string `@level`,
//! `@message`, `@timestamp` (exactly six fractional digits) and `@module` keeps its level;
//! anything else is logged at debug. A non-string `@message` or `@level` crashes Terraform,
//! so every field here is written as a JSON string.

use std::fmt::{self, Write as _};
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

/// The level named by `TF_LOG_PROVIDER`, else `TF_LOG`; `None` means off.
pub fn level_from_env() -> Option<Level> {
    let raw = std::env::var("TF_LOG_PROVIDER")
        .or_else(|_| std::env::var("TF_LOG"))
        .unwrap_or_default();
    match raw.trim().to_ascii_lowercase().as_str() {
        "trace" | "json" => Some(Level::TRACE),
        "debug" => Some(Level::DEBUG),
        "info" => Some(Level::INFO),
        "warn" => Some(Level::WARN),
        "error" => Some(Level::ERROR),
        // Unset: Terraform drops provider logs anyway; keep the warnings for anyone watching.
        "" => Some(Level::WARN),
        _ => None,
    }
}

/// Installs the hclog JSON subscriber on stderr. Call once, before serving.
pub fn init(module: &'static str) {
    let Some(level) = level_from_env() else {
        return;
    };
    let _ = tracing_subscriber::fmt()
        .with_max_level(level)
        .with_writer(std::io::stderr)
        .event_format(HclogJson { module })
        .try_init();
}

/// Formats one event as an hclog JSON line.
pub struct HclogJson {
    pub module: &'static str,
}

impl<S, N> FormatEvent<S, N> for HclogJson
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        _ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let mut fields = serde_json::Map::new();
        event.record(&mut JsonFields(&mut fields));
        let message = fields
            .remove("message")
            .and_then(|m| m.as_str().map(str::to_string))
            .unwrap_or_default();
        let mut line = serde_json::Map::new();
        line.insert(
            "@level".into(),
            level_name(*event.metadata().level()).into(),
        );
        line.insert("@message".into(), message.into());
        line.insert("@module".into(), self.module.into());
        line.insert(
            "@timestamp".into(),
            timestamp(time::OffsetDateTime::now_utc()).into(),
        );
        for (k, v) in fields {
            line.insert(k, v);
        }
        let mut text = serde_json::Value::Object(line).to_string();
        text.push('\n');
        writer.write_str(&text)
    }
}

fn level_name(level: Level) -> &'static str {
    match level {
        Level::TRACE => "trace",
        Level::DEBUG => "debug",
        Level::INFO => "info",
        Level::WARN => "warn",
        Level::ERROR => "error",
    }
}

/// hclog's layout `2006-01-02T15:04:05.000000Z07:00`: six fractional digits exactly, and `Z`
/// for UTC (the only zone we write in).
pub fn timestamp(t: time::OffsetDateTime) -> String {
    let format = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]Z"
    );
    t.to_offset(time::UtcOffset::UTC)
        .format(&format)
        .unwrap_or_default()
}

struct JsonFields<'a>(&'a mut serde_json::Map<String, serde_json::Value>);

impl Visit for JsonFields<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_string(), value.into());
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        let mut s = String::new();
        let _ = write!(s, "{value:?}");
        self.0.insert(field.name().to_string(), s.into());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_have_six_fraction_digits_and_an_offset() {
        let t = time::macros::datetime!(2026-11-27 02:03:04.5 UTC);
        assert_eq!(timestamp(t), "2026-11-27T02:03:04.500000Z");
    }
}
