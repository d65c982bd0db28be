//! Exit codes, error rendering (`error: …` then `hint: …`), JSON output and progress bars.

use dr_vault::{Error, ErrorKind, Progress};
use indicatif::{ProgressBar, ProgressStyle};

pub const EXIT_OK: u8 = 0;
pub const EXIT_FAILURE: u8 = 1;
pub const EXIT_USAGE: u8 = 2;
pub const EXIT_NOT_FOUND: u8 = 3;
pub const EXIT_WRONG_PASSPHRASE: u8 = 4;
pub const EXIT_LOCKED: u8 = 5;
/// `state push` and `state pull` refusing an older serial or another lineage (without --force).
pub const EXIT_REFUSED: u8 = EXIT_FAILURE;

/// What a command that ran returns: its exit status, `EXIT_OK`, or `EXIT_FAILURE` when it
/// found problems it reported on stdout (a verify, a check, a status out of policy).
pub type Outcome = Result<u8, CliError>;

/// Why a command stopped: printed as `error: …` then `hint: …`, and its exit status. Every
/// command returns it with `?`; `main` prints it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CliError {
    pub message: String,
    pub hint: Option<String>,
    pub code: u8,
}

impl CliError {
    /// Bad flags or input (exit 2).
    pub fn usage(message: impl Into<String>, hint: impl Into<String>) -> Self {
        Self::with_code(EXIT_USAGE, message, hint)
    }

    /// A safety refusal (exit 1): an older serial, another lineage, a file not ours.
    pub fn refused(message: impl Into<String>, hint: impl Into<String>) -> Self {
        Self::with_code(EXIT_REFUSED, message, hint)
    }

    /// Something asked for is not there (exit 3).
    pub fn not_found(message: impl Into<String>, hint: impl Into<String>) -> Self {
        Self::with_code(EXIT_NOT_FOUND, message, hint)
    }

    pub fn with_code(code: u8, message: impl Into<String>, hint: impl Into<String>) -> Self {
        CliError {
            message: message.into(),
            hint: Some(hint.into()),
            code,
        }
    }

    /// Prints `error:` and `hint:` to stderr; returns the exit status.
    pub fn print(&self) -> u8 {
        eprintln!("error: {}", self.message);
        if let Some(hint) = &self.hint {
            eprintln!("hint: {hint}");
        }
        self.code
    }
}

/// Each engine error kind has one documented exit status.
impl From<Error> for CliError {
    fn from(e: Error) -> Self {
        let code = match e.kind {
            ErrorKind::InvalidInput | ErrorKind::AlreadyExists | ErrorKind::UnsafePath => {
                EXIT_USAGE
            }
            ErrorKind::NotFound => EXIT_NOT_FOUND,
            ErrorKind::WrongPassphrase => EXIT_WRONG_PASSPHRASE,
            ErrorKind::Locked => EXIT_LOCKED,
            _ => EXIT_FAILURE,
        };
        CliError {
            message: e.to_string(),
            hint: e.guidance.clone(),
            code,
        }
    }
}

/// Prints a value as pretty JSON on stdout.
///
/// # Errors
/// When the value cannot be rendered (a bug: every output type is plain data).
pub fn json<T: serde::Serialize>(value: &T) -> Result<(), CliError> {
    let text = serde_json::to_string_pretty(value).map_err(|e| CliError {
        message: format!("cannot render JSON: {e}"),
        hint: None,
        code: EXIT_FAILURE,
    })?;
    println!("{text}");
    Ok(())
}

/// A byte progress bar on stderr; indicatif draws nothing when stderr is not a terminal.
pub struct Bar(ProgressBar);

impl Bar {
    pub fn new() -> Self {
        Bar(ProgressBar::hidden())
    }
}

impl Progress for Bar {
    fn phase(&self, name: &str, total: u64) {
        self.0
            .set_draw_target(indicatif::ProgressDrawTarget::stderr());
        self.0.set_length(total);
        self.0.set_position(0);
        if let Ok(style) = ProgressStyle::with_template(
            "{msg:>12} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
        ) {
            self.0.set_style(style.progress_chars("=> "));
        }
        self.0.set_message(name.to_string());
    }

    fn found(&self, bytes: u64) {
        self.0.inc_length(bytes);
    }

    fn advance(&self, bytes: u64) {
        self.0.inc(bytes);
    }
}

impl Drop for Bar {
    fn drop(&mut self) {
        self.0.finish_and_clear();
    }
}

/// Human-readable byte counts.
/// A time as the vault records it (RFC 3339 UTC, nine fraction digits).
pub fn time(t: time::OffsetDateTime) -> String {
    dr_vault::clock::rfc3339_nanos(t)
}

pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}
