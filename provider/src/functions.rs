//! The provider's functions (Terraform 1.8+): `provider::dr::duration_seconds`,
//! `provider::dr::within` and `provider::dr::parse_vault_url`. Pure, as Terraform requires:
//! no clock (`within` takes "now" as an argument, usually `plantimestamp()`), no file and no
//! network, so a relative local path is returned as written (wrap it in `abspath()` first
//! for an absolute id).

use std::collections::BTreeMap;
use tfplugin::{Function, FunctionError, Param, Signature, Type, Value};

pub fn all() -> Vec<std::sync::Arc<dyn Function>> {
    vec![
        std::sync::Arc::new(DurationSeconds),
        std::sync::Arc::new(Within),
        std::sync::Arc::new(ParseVaultUrl),
    ]
}

/// A string argument (the SDK has checked it is a non-null string).
fn text(args: &[Value], i: usize) -> &str {
    args[i].as_str().unwrap_or_default()
}

/// The provider's duration grammar (`90s`, `15m`, `1h30m`, `7d`, `2w`), the one `rpo`, `rto`,
/// `max_age` and `keep_within` use.
fn duration(args: &[Value], i: usize, name: &str) -> Result<std::time::Duration, FunctionError> {
    dr_vault::parse_duration(text(args, i), name)
        .map_err(|e| FunctionError::argument(i, format!("{e}; write it like 15m, 1h, 7d or 2w")))
}

fn time(args: &[Value], i: usize, name: &str) -> Result<time::OffsetDateTime, FunctionError> {
    let t = text(args, i);
    dr_vault::clock::parse(t).ok_or_else(|| {
        FunctionError::argument(
            i,
            format!("{name} {t:?} is not an RFC 3339 time (like 2026-12-01T10:00:00Z, what timestamp() and plantimestamp() return)"),
        )
    })
}

pub struct DurationSeconds;

impl Function for DurationSeconds {
    fn name(&self) -> &'static str {
        "duration_seconds"
    }

    fn signature(&self) -> Signature {
        Signature {
            params: vec![Param::new(
                "duration",
                Type::String,
                "A duration in the provider's grammar: `90s`, `15m`, `1h30m`, `7d`, `2w`.",
            )],
            returns: Type::Number,
            summary: "The number of seconds in a duration written as rpo, rto and max_age are",
            description:
                "Turns a duration in the grammar the provider's `rpo`, `rto`, `max_age` and \
                `keep_within` attributes use into whole seconds, to compare with the seconds a \
                drill measures (`data_age_seconds`, `restore_seconds`).\n\n\
                ```terraform\nprovider::dr::duration_seconds(\"1h30m\") # 5400\n```",
        }
    }

    fn call(&self, args: &[Value]) -> Result<Value, FunctionError> {
        Ok(Value::from(duration(args, 0, "duration")?.as_secs()))
    }
}

pub struct Within;

impl Function for Within {
    fn name(&self) -> &'static str {
        "within"
    }

    fn signature(&self) -> Signature {
        Signature {
            params: vec![
                Param::new("timestamp", Type::String, "An RFC 3339 time: a snapshot's `time`, a drill's `finished_at`."),
                Param::new("duration", Type::String, "How far before `now` still counts, in the provider's grammar (`15m`, `1h`, `7d`)."),
                Param::new("now", Type::String, "The RFC 3339 time to measure from; pass `plantimestamp()`."),
            ],
            returns: Type::Bool,
            summary: "Whether a time lies within a duration before now",
            description: "True when `timestamp` is no more than `duration` before `now`. A \
                `timestamp` after `now` counts as within: a writer whose clock runs ahead is \
                not data loss. Pure: pass `plantimestamp()` as `now`, which makes it usable in \
                `check` blocks, preconditions and postconditions.\n\n\
                ```terraform\ncheck \"standby_within_rpo\" {\n  assert {\n    condition     = provider::dr::within(data.dr_snapshot.standby.time, dr_region_pair.ci.rpo, plantimestamp())\n    error_message = \"The standby's newest snapshot is older than the pair's RPO.\"\n  }\n}\n```",
        }
    }

    fn call(&self, args: &[Value]) -> Result<Value, FunctionError> {
        let at = time(args, 0, "timestamp")?;
        let window = duration(args, 1, "duration")?;
        let now = time(args, 2, "now")?;
        let age = now - at;
        Ok(Value::from(
            age.whole_seconds() <= 0 || age.unsigned_abs() <= window,
        ))
    }
}

pub struct ParseVaultUrl;

/// The result's attributes, in the order the docs list them.
fn vault_url_type() -> Type {
    Type::Object(BTreeMap::from([
        ("scheme".to_string(), Type::String),
        ("bucket".to_string(), Type::String),
        ("prefix".to_string(), Type::String),
        ("options".to_string(), Type::Map(Box::new(Type::String))),
        ("id".to_string(), Type::String),
    ]))
}

impl Function for ParseVaultUrl {
    fn name(&self) -> &'static str {
        "parse_vault_url"
    }

    fn signature(&self) -> Signature {
        Signature {
            params: vec![Param::new(
                "url",
                Type::String,
                "A vault URL as `dr_backup_vault.url` takes it: a path, `file:///…`, `s3://BUCKET/PREFIX`, `gs://…` or `az://CONTAINER/PREFIX`, with storage options as a query.",
            )],
            returns: vault_url_type(),
            summary: "The parts of a vault URL, and the id a vault there has",
            description: "Splits a vault URL into `scheme` (`file`, `s3`, `gs`, `az`, …), `bucket` \
                (the bucket or container; empty for a local path), `prefix` (the key prefix, or \
                the local path), `options` (the storage options its query carries, under their \
                canonical names) and `id`: the id a `dr_backup_vault` with this URL and no \
                other storage options has. A relative local path is returned as written (the \
                function cannot know the working directory): wrap it in `abspath()` first.\n\n\
                ```terraform\nprovider::dr::parse_vault_url(\"s3://dr-eu/ci?region=eu-west-1\")\n# { scheme = \"s3\", bucket = \"dr-eu\", prefix = \"ci\",\n#   options = { region = \"eu-west-1\" }, id = \"s3://dr-eu/ci?region=eu-west-1\" }\n```",
        }
    }

    fn call(&self, args: &[Value]) -> Result<Value, FunctionError> {
        let url = text(args, 0);
        if url.trim().is_empty() {
            return Err(FunctionError::argument(
                0,
                "url is empty: give a path or an s3://, gs:// or az:// URL",
            ));
        }
        let (base, options) = dr_vault::storage::split_vault_url(url)
            .map_err(|e| FunctionError::argument(0, e.to_string()))?;
        let (scheme, bucket, prefix, bare) = if dr_vault::storage::is_cloud_url(&base) {
            let (scheme, rest) = base.split_once("://").unwrap_or_default();
            let rest = rest.trim_end_matches('/');
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            if bucket.is_empty() {
                return Err(FunctionError::argument(
                    0,
                    format!("{scheme}:// URL {base:?} names no bucket or container"),
                ));
            }
            (
                scheme.to_string(),
                bucket.to_string(),
                prefix.trim_matches('/').to_string(),
                format!("{scheme}://{rest}"),
            )
        } else if let Some((scheme, _)) = base.split_once("://").filter(|(s, _)| *s != "file") {
            return Err(FunctionError::argument(
                0,
                format!("{scheme}:// is not a vault URL scheme: use a path, file://, s3://, gs:// or az://"),
            ));
        } else {
            let path = base.strip_prefix("file://").unwrap_or(&base);
            if base.starts_with("file://") && !path.starts_with('/') {
                return Err(FunctionError::argument(
                    0,
                    format!("{base:?}: a file:// URL needs an absolute path, like file:///srv/vaults/ci"),
                ));
            }
            let trimmed = match path.trim_end_matches('/') {
                "" => "/",
                t => t,
            };
            let id = if trimmed.starts_with('/') {
                format!("file://{trimmed}")
            } else {
                trimmed.to_string()
            };
            ("file".to_string(), String::new(), trimmed.to_string(), id)
        };
        let id = dr_vault::storage::vault_id(&bare, &options);
        Ok(Value::Object(BTreeMap::from([
            ("scheme".to_string(), Value::from(scheme)),
            ("bucket".to_string(), Value::from(bucket)),
            ("prefix".to_string(), Value::from(prefix)),
            (
                "options".to_string(),
                Value::Map(
                    options
                        .into_iter()
                        .map(|(k, v)| (k, Value::from(v)))
                        .collect(),
                ),
            ),
            ("id".to_string(), Value::from(id)),
        ])))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(f: &dyn Function, args: &[&str]) -> Result<Value, FunctionError> {
        let args: Vec<Value> = args.iter().map(|a| Value::from(*a)).collect();
        tfplugin::function::check_arguments(&f.signature(), &args)?;
        f.call(&args)
    }

    #[test]
    fn duration_seconds_reads_the_providers_grammar_and_names_a_bad_argument() {
        assert_eq!(
            call(&DurationSeconds, &["1h30m"]).unwrap(),
            Value::from(5400u64)
        );
        assert_eq!(
            call(&DurationSeconds, &["7d"]).unwrap(),
            Value::from(604_800u64)
        );
        let e = call(&DurationSeconds, &["soon"]).unwrap_err();
        assert_eq!(e.argument, Some(0));
        assert!(
            e.message.contains("\"soon\" is not a duration"),
            "{}",
            e.message
        );
    }

    #[test]
    fn within_counts_back_from_now_and_forgives_a_clock_ahead() {
        let now = "2026-12-01T12:00:00Z";
        let yes = |t: &str, d: &str| call(&Within, &[t, d, now]).unwrap() == Value::from(true);
        assert!(yes("2026-12-01T11:00:00Z", "1h"));
        assert!(!yes("2026-12-01T10:59:59Z", "1h"));
        assert!(
            yes("2026-12-01T12:00:05Z", "1m"),
            "a timestamp after now is within"
        );
        assert!(
            yes("2026-12-01T13:00:00+01:00", "0s"),
            "offsets are honoured"
        );
        let e = call(&Within, &["yesterday", "1h", now]).unwrap_err();
        assert_eq!(e.argument, Some(0));
        assert_eq!(
            call(&Within, &[now, "x", now]).unwrap_err().argument,
            Some(1)
        );
        assert_eq!(
            call(&Within, &[now, "1h", ""]).unwrap_err().argument,
            Some(2)
        );
    }

    fn parsed(url: &str) -> BTreeMap<String, Value> {
        match call(&ParseVaultUrl, &[url]).unwrap() {
            Value::Object(o) => o,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn parse_vault_url_splits_cloud_and_local_urls_and_gives_the_vault_id() {
        let s3 =
            parsed("s3://dr-eu/ci/pipelines/?endpoint_url=http://127.0.0.1:9000&region=eu-west-1");
        assert_eq!(s3["scheme"], Value::from("s3"));
        assert_eq!(s3["bucket"], Value::from("dr-eu"));
        assert_eq!(s3["prefix"], Value::from("ci/pipelines"));
        assert_eq!(
            s3["options"],
            Value::Map(BTreeMap::from([
                ("endpoint".into(), Value::from("http://127.0.0.1:9000")),
                ("region".into(), Value::from("eu-west-1")),
            ]))
        );
        assert_eq!(
            s3["id"],
            Value::from("s3://dr-eu/ci/pipelines?endpoint=http://127.0.0.1:9000&region=eu-west-1")
        );
        let az = parsed("az://backups");
        assert_eq!(
            (az["bucket"].clone(), az["prefix"].clone()),
            (Value::from("backups"), Value::from(""))
        );
        let local = parsed("file:///srv/vaults/ci/");
        assert_eq!(local["scheme"], Value::from("file"));
        assert_eq!(local["prefix"], Value::from("/srv/vaults/ci"));
        assert_eq!(local["id"], Value::from("file:///srv/vaults/ci"));
        assert_eq!(parsed("vaults/ci")["id"], Value::from("vaults/ci"));
        assert_eq!(
            parsed("/srv/a?b")["prefix"],
            Value::from("/srv/a?b"),
            "a ? in a path is a name"
        );
    }

    #[test]
    fn parse_vault_url_names_what_is_wrong() {
        for bad in [
            "",
            "http://x/y",
            "s3://",
            "s3://b/p?nonsense",
            "s3://b/p?secret_access_key=x",
            "file://",
            "file://relative/dir",
        ] {
            let e = call(&ParseVaultUrl, &[bad]).unwrap_err();
            assert_eq!(e.argument, Some(0), "{bad}: {}", e.message);
        }
        let e = call(&ParseVaultUrl, &["s3://b/p?secret_access_key=hunter2"]).unwrap_err();
        assert!(
            !e.message.contains("hunter2"),
            "a secret never reaches a message: {}",
            e.message
        );
    }

    #[test]
    fn every_signature_is_complete_and_results_fit_their_types() {
        for f in all() {
            let s = f.signature();
            assert!(
                tfplugin::function::signature_problems(&s).is_empty(),
                "{}",
                f.name()
            );
        }
        let v = call(&ParseVaultUrl, &["s3://b/p"]).unwrap();
        v.to_msgpack(&vault_url_type()).unwrap();
    }
}
