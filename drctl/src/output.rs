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

/// Prints a vault error to stderr and returns its exit code.
pub fn fail(e: &Error) -> u8 {
    eprintln!("error: {e}");
    if let Some(hint) = &e.guidance {
        eprintln!("hint: {hint}");
    }
    match e.kind {
        ErrorKind::InvalidInput | ErrorKind::AlreadyExists | ErrorKind::UnsafePath => EXIT_USAGE,
        ErrorKind::NotFound => EXIT_NOT_FOUND,
        ErrorKind::WrongPassphrase => EXIT_WRONG_PASSPHRASE,
        ErrorKind::Locked => EXIT_LOCKED,
        _ => EXIT_FAILURE,
    }
}

/// A usage error that is not the vault's: print and return exit 2.
pub fn usage(message: &str, hint: &str) -> u8 {
    eprintln!("error: {message}");
    eprintln!("hint: {hint}");
    EXIT_USAGE
}

/// Prints a value as pretty JSON on stdout.
pub fn json<T: serde::Serialize>(value: &T) {
    match serde_json::to_string_pretty(value) {
        Ok(text) => println!("{text}"),
        Err(e) => eprintln!("error: cannot render JSON: {e}"),
    }
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
