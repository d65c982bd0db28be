//! Locks that keep prune from deleting data a running writer relies on, and keep a writer
//! that lost its lock from committing.
//!
//! A snapshot or replication holds a shared lock; prune and destroy hold an exclusive one. A
//! writer creates its lock first and then looks for others: two writers that race both see
//! each other and the one that conflicts backs off, so no interleaving lets prune delete a
//! pack that a snapshot has just decided not to re-upload.
//!
//! A lock is refreshed while held and counts as stale (ignored) once the store has not seen
//! it rewritten for [`LockTiming::stale_after`]. Staleness is judged by the store's own
//! timestamps (the other lock's last write against the one just made), never by comparing two
//! machines' clocks, so a writer whose clock is hours off is judged like any other. A lock of
//! a process that is gone is stale at once, but only when it was taken on this very machine:
//! same host name, same boot, same pid namespace (two CI containers can share a host name)
//! and the pid not reused since.
//!
//! The other half is the holder's: a writer checks [`LockGuard::check_held`] before each
//! commit (index, manifest, deletions). A refresh that failed, found its lock removed, or came
//! later than half the stale window after the one before (a paused or starved process: others
//! may have judged the lock stale meanwhile) marks the lock lost, and the writer aborts
//! without committing, as restic does since 0.16.

use crate::crypto::random_id;
use crate::error::{Error, ErrorKind, Result};
use crate::storage::Storage;
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A lock the store has not seen rewritten for this long is ignored.
pub const STALE_AFTER: Duration = Duration::from_secs(30 * 60);

/// How long a lock lives without a refresh, and how often its holder refreshes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LockTiming {
    pub stale_after: Duration,
    pub refresh_every: Duration,
}

impl Default for LockTiming {
    fn default() -> Self {
        LockTiming::with_stale_after(STALE_AFTER)
    }
}

impl LockTiming {
    /// A window of `stale_after`, refreshed six times within it (every 5 minutes for 30).
    pub fn with_stale_after(stale_after: Duration) -> LockTiming {
        LockTiming {
            stale_after,
            refresh_every: stale_after / 6,
        }
    }

    /// The default; builds with the `test-hooks` feature (the test suite's, never a release)
    /// take a window of `DR_TEST_LOCK_STALE_SECS` seconds, so tests can pause a writer past it.
    pub fn for_this_process() -> LockTiming {
        if cfg!(feature = "test-hooks") {
            if let Some(secs) = std::env::var("DR_TEST_LOCK_STALE_SECS")
                .ok()
                .and_then(|s| s.parse::<u64>().ok())
            {
                return LockTiming::with_stale_after(Duration::from_secs(secs.max(1)));
            }
        }
        LockTiming::default()
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct LockFile {
    exclusive: bool,
    /// Unix seconds of the last refresh by the holder's clock: informational (and what
    /// builds before format 3 judge staleness by).
    refreshed: i64,
    hostname: String,
    pid: u32,
    /// Where the holder runs, so that "its process is gone" is judged only on the same
    /// machine (absent in locks of older builds: then only staleness frees the lock).
    #[serde(default)]
    boot_id: String,
    #[serde(default)]
    pid_namespace: String,
    /// The holder's start time (clock ticks after boot), so a reused pid is not taken for it.
    #[serde(default)]
    started: u64,
}

/// This process and machine, as locks record them.
struct Holder {
    hostname: String,
    boot_id: String,
    pid_namespace: String,
}

fn read_trimmed(path: &str) -> String {
    std::fs::read_to_string(path)
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

impl Holder {
    fn this() -> Holder {
        Holder {
            hostname: read_trimmed("/proc/sys/kernel/hostname"),
            boot_id: read_trimmed("/proc/sys/kernel/random/boot_id"),
            pid_namespace: std::fs::read_link("/proc/self/ns/pid")
                .map(|p| p.display().to_string())
                .unwrap_or_default(),
        }
    }
}

/// When process `pid` started (field 22 of `/proc/<pid>/stat`), if it exists.
fn process_start(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may hold spaces: count after it.
    let after_name = &stat[stat.rfind(')')? + 1..];
    after_name.split_whitespace().nth(19)?.parse().ok()
}

/// A lock whose holder is known to be gone: taken on this machine (host, boot and pid
/// namespace all match) by a process that no longer runs, or whose pid now belongs to a
/// process started later. Nobody has to wait half an hour after a `kill -9`.
fn holder_is_gone(lock: &LockFile, here: &Holder) -> bool {
    let same_machine = !lock.hostname.is_empty()
        && !lock.boot_id.is_empty()
        && !lock.pid_namespace.is_empty()
        && lock.hostname == here.hostname
        && lock.boot_id == here.boot_id
        && lock.pid_namespace == here.pid_namespace;
    same_machine && process_start(lock.pid).is_none_or(|started| started != lock.started)
}

fn encode(exclusive: bool, here: &Holder) -> Result<Bytes> {
    let file = LockFile {
        exclusive,
        refreshed: crate::clock::now().unix_timestamp(),
        hostname: here.hostname.clone(),
        pid: std::process::id(),
        boot_id: here.boot_id.clone(),
        pid_namespace: here.pid_namespace.clone(),
        started: process_start(std::process::id()).unwrap_or(0),
    };
    serde_json::to_vec(&file)
        .map(Bytes::from)
        .map_err(|e| Error::new(ErrorKind::Io, e.to_string()))
}

/// What the holder knows of its lock: when it was last refreshed, and whether it was lost.
struct Held {
    last_refresh: Instant,
    lost: Option<String>,
}

/// A held lock; [`LockGuard::release`] removes it (dropping it removes it in the background).
pub struct LockGuard {
    storage: Storage,
    key: String,
    timing: LockTiming,
    held: Arc<Mutex<Held>>,
    store_time: time::OffsetDateTime,
    refresher: Option<tokio::task::JoinHandle<()>>,
}

impl LockGuard {
    /// The key of the lock object.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The store's clock when the lock was taken (the lock object's own timestamp): what
    /// prune measures the age of packs against.
    pub fn store_time(&self) -> time::OffsetDateTime {
        self.store_time
    }

    /// Succeeds while the lock has been held without a gap; a writer calls it right before
    /// each commit and aborts on an error.
    ///
    /// # Errors
    /// `Locked` saying how the lock was lost; nothing has been committed by then.
    pub fn check_held(&self) -> Result<()> {
        let held = self.held.lock().unwrap_or_else(|e| e.into_inner());
        let silent = held.last_refresh.elapsed();
        let lost = held.lost.clone().or_else(|| {
            (silent > self.timing.stale_after / 2).then(|| {
                format!(
                    "it was last refreshed {}s ago (the process was paused or starved), and others ignore a lock after {}s",
                    silent.as_secs(),
                    self.timing.stale_after.as_secs()
                )
            })
        });
        match lost {
            None => Ok(()),
            Some(why) => Err(Error::new(
                ErrorKind::Locked,
                format!(
                    "lost the lock {}/{}: {why}; nothing was committed",
                    self.storage.url(),
                    self.key
                ),
            )
            .hint("run the command again; what this run wrote is unreferenced and the next prune removes it")),
        }
    }

    /// Removes the lock.
    ///
    /// # Errors
    /// `Storage` when the lock object cannot be deleted (it then goes stale on its own).
    pub async fn release(mut self) -> Result<()> {
        if let Some(r) = self.refresher.take() {
            r.abort();
        }
        let key = std::mem::take(&mut self.key);
        self.storage.delete(&key).await
    }
}

impl Drop for LockGuard {
    fn drop(&mut self) {
        if let Some(r) = self.refresher.take() {
            r.abort();
        }
        if !self.key.is_empty() {
            let storage = self.storage.clone();
            let key = std::mem::take(&mut self.key);
            if let Ok(handle) = tokio::runtime::Handle::try_current() {
                handle.spawn(async move {
                    let _ = storage.delete(&key).await;
                });
            }
        }
    }
}

/// Takes a shared (snapshot, replication) or exclusive (prune, destroy) lock.
///
/// # Errors
/// `Locked` naming the conflicting holder; `Storage`.
pub async fn acquire(storage: &Storage, exclusive: bool, timing: LockTiming) -> Result<LockGuard> {
    let here = Holder::this();
    let key = crate::layout::lock(&random_id());
    storage.put_replace(&key, encode(exclusive, &here)?).await?;
    let taken = Instant::now();
    let mut guard = LockGuard {
        storage: storage.clone(),
        key: key.clone(),
        timing,
        held: Arc::new(Mutex::new(Held {
            last_refresh: taken,
            lost: None,
        })),
        store_time: crate::clock::now(),
        refresher: None,
    };
    let listed = storage.list(crate::layout::LOCKS).await?;
    // The store's "now": when it wrote the lock just made.
    if let Some(time) = listed
        .iter()
        .find(|l| l.key == key)
        .and_then(|l| l.modified)
    {
        guard.store_time = time;
    }
    for other_listed in &listed {
        if other_listed.key == key || crate::layout::parse(&other_listed.key).is_none() {
            continue;
        }
        let Ok(raw) = storage.get(&other_listed.key).await else {
            continue;
        };
        let Ok(other) = serde_json::from_slice::<LockFile>(&raw) else {
            continue;
        };
        let silent = match other_listed.modified {
            Some(written) => guard.store_time - written,
            // A store that gives no timestamps: the holder's own record, by our clock.
            None => time::Duration::seconds(crate::clock::now().unix_timestamp() - other.refreshed),
        };
        let stale = silent > timing.stale_after || holder_is_gone(&other, &here);
        if stale || !(exclusive || other.exclusive) {
            continue;
        }
        guard.release().await?;
        let what = if other.exclusive {
            "a prune"
        } else {
            "a snapshot"
        };
        return Err(Error::new(
            ErrorKind::Locked,
            format!(
                "{what} holds {}/{} (host {:?}, pid {})",
                storage.url(),
                other_listed.key,
                other.hostname,
                other.pid
            ),
        )
        .hint(format!(
            "wait for it to finish and try again; a lock not refreshed for {} minutes is ignored",
            timing.stale_after.as_secs() / 60
        )));
    }
    guard.refresher = Some(tokio::spawn(refresh(
        storage.clone(),
        key,
        exclusive,
        timing,
        guard.held.clone(),
    )));
    Ok(guard)
}

/// Rewrites the lock every `refresh_every` until the guard goes; marks it lost (for good) when
/// a refresh fails, finds the lock removed, or comes too late after the one before.
async fn refresh(
    storage: Storage,
    key: String,
    exclusive: bool,
    timing: LockTiming,
    held: Arc<Mutex<Held>>,
) {
    let here = Holder::this();
    let lose = |why: String| {
        let mut held = held.lock().unwrap_or_else(|e| e.into_inner());
        held.lost.get_or_insert(why);
    };
    loop {
        tokio::time::sleep(timing.refresh_every).await;
        let since = held
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .last_refresh
            .elapsed();
        match storage.exists(&key).await {
            Ok(true) => {}
            Ok(false) => {
                lose("it was removed by someone else (it had been judged stale)".into());
                return;
            }
            Err(e) => {
                lose(format!("refreshing it failed: {e}"));
                return;
            }
        }
        let written = match encode(exclusive, &here) {
            Ok(bytes) => storage.put_replace(&key, bytes).await,
            Err(e) => Err(e),
        };
        if let Err(e) = written {
            lose(format!("refreshing it failed: {e}"));
            return;
        }
        if since > timing.stale_after / 2 {
            lose(format!(
                "{}s passed between two refreshes (the process was paused or starved), and others ignore a lock after {}s",
                since.as_secs(),
                timing.stale_after.as_secs()
            ));
            return;
        }
        held.lock().unwrap_or_else(|e| e.into_inner()).last_refresh = Instant::now();
    }
}
