//! Running a drill's `verify_command`, contained: in a clean environment, in a process group
//! of its own that the timeout kills whole, with what it prints kept as a bounded tail from
//! which every secret value it could have seen is redacted.
//!
//! Why each part: a check is a user's script over a restored tree. A `sh -c "server &"` would
//! otherwise leave a grandchild that holds the output pipe open (the drill would wait for it
//! for ever) or outlives the timeout; a chatty check could fill memory or the state file; and
//! a check that prints a file of the restored tree may print a secret.

use std::path::Path;
use std::time::Duration;
use tokio::io::AsyncReadExt as _;

/// What is kept of each of stdout and stderr: their last bytes.
pub const TAIL_BYTES: usize = 64 * 1024;

/// Bytes read beyond the tail, so a secret that straddles the tail's first byte is still
/// whole when redaction looks for it (longer secrets are not expected in a check's output).
const REDACTION_SLACK: usize = 4096;

/// How long the pipes are still read once the check's process group is killed (what it wrote
/// last is in them already); a process that left the group cannot hold the drill longer.
const DRAIN_AFTER_EXIT: Duration = Duration::from_millis(500);

/// The check as it is run.
pub struct Check<'a> {
    pub argv: &'a [String],
    pub dir: &'a Path,
    /// The whole environment it gets (nothing is inherited).
    pub env: Vec<(String, String)>,
    pub timeout: Duration,
    /// Values never to keep in the output (redacted wherever they appear).
    pub secrets: Vec<String>,
}

/// How it ended.
#[derive(Debug)]
pub struct Outcome {
    /// `None` when it was killed (timeout) or died of a signal.
    pub exit_code: Option<i32>,
    pub timed_out: bool,
    /// The last bytes of stdout then stderr, redacted.
    pub output_tail: String,
}

impl Check<'_> {
    /// Runs the check to its end (or its timeout).
    ///
    /// # Errors
    /// A message saying why it could not start.
    pub async fn run(self) -> Result<Outcome, String> {
        let mut cmd = tokio::process::Command::new(&self.argv[0]);
        cmd.args(&self.argv[1..])
            .current_dir(self.dir)
            .env_clear()
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .process_group(0)
            .kill_on_drop(true);
        let mut child = cmd
            .spawn()
            .map_err(|e| format!("verify_command {:?} could not start: {e}", self.argv[0]))?;
        let group = child.id().map(|pid| pid as i32);
        let stdout = tokio::spawn(tail_of(child.stdout.take()));
        let stderr = tokio::spawn(tail_of(child.stderr.take()));
        let (status, timed_out) = match tokio::time::timeout(self.timeout, child.wait()).await {
            Ok(status) => (status.ok(), false),
            Err(_) => (None, true),
        };
        // Whatever of the group is still running: a background grandchild after a finished
        // check, or the whole tree after a timeout.
        if let Some(pgid) = group {
            kill_group(pgid);
        }
        let _ = child.kill().await;
        let out = drained(stdout).await;
        let err = drained(stderr).await;
        // Redacted before they are cut to size: a secret across the cut is still whole here.
        let mut text = last_bytes(&redact(&String::from_utf8_lossy(&out), &self.secrets));
        let err = last_bytes(&redact(&String::from_utf8_lossy(&err), &self.secrets));
        if !err.is_empty() {
            if !text.is_empty() && !text.ends_with('\n') {
                text.push('\n');
            }
            text.push_str(&err);
        }
        Ok(Outcome {
            exit_code: status.and_then(|s| s.code()),
            timed_out,
            output_tail: text,
        })
    }
}

/// The last [`TAIL_BYTES`] of `text`, cut at a character boundary.
fn last_bytes(text: &str) -> String {
    let mut start = text.len().saturating_sub(TAIL_BYTES);
    while !text.is_char_boundary(start) {
        start += 1;
    }
    text[start..].to_string()
}

/// The last [`TAIL_BYTES`] (and some slack) a pipe delivers, read until it closes.
async fn tail_of(pipe: Option<impl tokio::io::AsyncRead + Unpin>) -> Vec<u8> {
    let Some(mut pipe) = pipe else {
        return Vec::new();
    };
    let mut tail = std::collections::VecDeque::with_capacity(TAIL_BYTES);
    let mut buf = vec![0u8; 16 * 1024];
    while let Ok(n) = pipe.read(&mut buf).await {
        if n == 0 {
            break;
        }
        tail.extend(&buf[..n]);
        let excess = tail.len().saturating_sub(TAIL_BYTES + REDACTION_SLACK);
        tail.drain(..excess);
    }
    tail.into()
}

/// A reader's tail, waiting briefly: once the group is killed its pipes close at once, but a
/// process that escaped the group (a new session) must not hold the drill either.
async fn drained(reader: tokio::task::JoinHandle<Vec<u8>>) -> Vec<u8> {
    let abort = reader.abort_handle();
    match tokio::time::timeout(DRAIN_AFTER_EXIT, reader).await {
        Ok(Ok(tail)) => tail,
        _ => {
            abort.abort();
            b"[output cut: a process the check started still holds its output open]\n".to_vec()
        }
    }
}

fn kill_group(pgid: i32) {
    if let Some(pid) = rustix::process::Pid::from_raw(pgid) {
        // ESRCH (nothing left in the group) is the usual, fine answer.
        let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
    }
}

/// `text` with every secret value replaced by `[redacted]`; values shorter than 4 bytes are
/// left (redacting "1" or "on" everywhere would garble the output and hide nothing).
/// Secrets shorter than this are not redacted: replacing every "on" or "1" of the output
/// would garble it. `verify_env_wo` refuses values this short for that reason.
pub const MIN_REDACTED_LEN: usize = 4;

pub fn redact(text: &str, secrets: &[String]) -> String {
    let mut out = text.to_string();
    let mut by_length: Vec<&String> = secrets
        .iter()
        .filter(|s| s.len() >= MIN_REDACTED_LEN)
        .collect();
    // Longer first, so a secret that contains another is replaced whole.
    by_length.sort_by_key(|s| std::cmp::Reverse(s.len()));
    for secret in by_length {
        out = out.replace(secret.as_str(), "[redacted]");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check<'a>(argv: &'a [String], dir: &'a Path, timeout: Duration) -> Check<'a> {
        Check {
            argv,
            dir,
            env: vec![("PATH".into(), std::env::var("PATH").unwrap_or_default())],
            timeout,
            secrets: vec!["hunter2-passphrase".into()],
        }
    }

    fn sh(script: &str) -> Vec<String> {
        vec!["sh".into(), "-c".into(), script.into()]
    }

    /// A check that leaves a background process holding its output finishes when it exits,
    /// and the background process is killed with it.
    #[tokio::test]
    async fn a_background_grandchild_neither_holds_the_check_nor_outlives_it() {
        let dir = tempfile::tempdir().unwrap();
        let marker = dir.path().join("grandchild.pid");
        let argv = sh(&format!(
            "sleep 300 & echo $! > {}; echo done",
            marker.display()
        ));
        let started = std::time::Instant::now();
        let outcome = check(&argv, dir.path(), Duration::from_secs(120))
            .run()
            .await
            .unwrap();
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "{:?}",
            started.elapsed()
        );
        assert_eq!(outcome.exit_code, Some(0));
        assert!(
            outcome.output_tail.starts_with("done"),
            "{}",
            outcome.output_tail
        );
        let pid: i32 = std::fs::read_to_string(&marker)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        assert!(gone(pid).await, "the background sleep {pid} still runs");
    }

    /// The timeout kills the whole group, not only the shell.
    #[tokio::test]
    async fn the_timeout_kills_the_whole_process_group() {
        let dir = tempfile::tempdir().unwrap();
        let marker = dir.path().join("child.pid");
        let argv = sh(&format!("sleep 300 & echo $! > {}; wait", marker.display()));
        let outcome = check(&argv, dir.path(), Duration::from_millis(700))
            .run()
            .await
            .unwrap();
        assert!(outcome.timed_out);
        assert_eq!(outcome.exit_code, None);
        let pid: i32 = std::fs::read_to_string(&marker)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        assert!(
            gone(pid).await,
            "the group's sleep {pid} survived the timeout"
        );
    }

    /// Output is kept as a bounded tail, secrets redacted.
    #[tokio::test]
    async fn output_is_a_bounded_redacted_tail() {
        let dir = tempfile::tempdir().unwrap();
        let argv = sh(
            "head -c 1000000 /dev/zero | tr '\\0' x; echo; echo the key is hunter2-passphrase >&2",
        );
        let outcome = check(&argv, dir.path(), Duration::from_secs(60))
            .run()
            .await
            .unwrap();
        assert!(
            outcome.output_tail.len() <= 2 * TAIL_BYTES + 1,
            "{}",
            outcome.output_tail.len()
        );
        assert!(outcome.output_tail.ends_with("the key is [redacted]\n"));
        assert!(!outcome.output_tail.contains("hunter2"));
    }

    /// A secret that straddles where the tail is cut leaves no fragment behind.
    #[tokio::test]
    async fn a_secret_across_the_cut_leaves_no_fragment() {
        let dir = tempfile::tempdir().unwrap();
        let argv = sh(&format!(
            "printf hunter2-passphrase; head -c {} /dev/zero | tr '\\0' x",
            TAIL_BYTES - 8
        ));
        let outcome = check(&argv, dir.path(), Duration::from_secs(60))
            .run()
            .await
            .unwrap();
        assert_eq!(outcome.output_tail.len(), TAIL_BYTES);
        assert!(
            !outcome.output_tail.contains("ssphrase"),
            "{}",
            &outcome.output_tail[..40]
        );
    }

    #[test]
    fn redaction_replaces_longer_secrets_first_and_leaves_tiny_values() {
        let secrets = vec!["abcd".to_string(), "abcdefgh".to_string(), "on".to_string()];
        assert_eq!(
            redact("x abcdefgh y abcd z on", &secrets),
            "x [redacted] y [redacted] z on"
        );
    }

    /// Whether a process is gone (or a zombie nobody waits for), within a few seconds.
    async fn gone(pid: i32) -> bool {
        for _ in 0..50 {
            let state = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            let zombie_or_gone = state.is_empty()
                || state
                    .rsplit_once(')')
                    .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z'));
            if zombie_or_gone {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        false
    }
}
