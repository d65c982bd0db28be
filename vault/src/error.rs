//! The vault's one error type.
//!
//! Policy: every public fallible function returns [`Error`]. An error carries a [`ErrorKind`]
//! (what callers branch on: the provider maps kinds to diagnostics, drctl to exit codes), a
//! message that names the object, path or setting at fault, and, where there is one, a
//! guidance line saying what to do. Secrets never appear in any of them.

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// No vault, snapshot or object where one was expected.
    NotFound,
    /// A vault (or an object that must be new) already exists.
    AlreadyExists,
    /// No key of the vault opens with the passphrase given.
    WrongPassphrase,
    /// Stored data fails its checks (decryption, hash, structure).
    Corrupt,
    /// The vault was written by a newer format version than this build reads.
    UnsupportedVersion,
    /// Bad input from the caller: a URL, an option, a path, a name.
    InvalidInput,
    /// A restore would write outside its target or through a symlink.
    UnsafePath,
    /// The object store failed (permissions, quota, a server error).
    Storage,
    /// The object store did not answer at all: connection refused, reset or timed out. The
    /// vault may be intact; its region may be dark.
    Unreachable,
    /// A local file operation failed.
    Io,
    /// Another process holds a lock that this operation needs.
    Locked,
}

/// A vault error: kind, message naming what is at fault, and optional guidance.
#[derive(Debug)]
pub struct Error {
    pub kind: ErrorKind,
    pub message: String,
    pub guidance: Option<String>,
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error {
            kind,
            message: message.into(),
            guidance: None,
            source: None,
        }
    }

    /// Adds the line that says what to do about it.
    pub fn hint(mut self, guidance: impl Into<String>) -> Self {
        self.guidance = Some(guidance.into());
        self
    }

    pub fn with_source(mut self, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        self.source = Some(Box::new(source));
        self
    }

    pub(crate) fn corrupt(object: &str, what: impl fmt::Display) -> Self {
        Error::new(ErrorKind::Corrupt, format!("{object}: {what}"))
            .hint("run `drctl vault verify --read-data` to list every damaged object; restore from a replica if one exists")
    }

    pub(crate) fn io(path: &std::path::Path, action: &str, e: std::io::Error) -> Self {
        let kind = if e.kind() == std::io::ErrorKind::NotFound {
            ErrorKind::NotFound
        } else {
            ErrorKind::Io
        };
        let mut err = Error::new(kind, format!("cannot {action} {}: {e}", path.display()));
        if e.raw_os_error() == Some(28) {
            err = err.hint(
                "the disk is full: free space and run the command again; nothing was committed",
            );
        }
        err.with_source(e)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)?;
        if let Some(source) = &self.source {
            let text = source.to_string();
            if !self.message.contains(&text) {
                write!(f, ": {text}")?;
            }
        }
        Ok(())
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}
