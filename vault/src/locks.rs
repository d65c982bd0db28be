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
use std::time::Duration;

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
    /// This process's start time (see [`process_start`]); 0 when unknown.
    started: u64,
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
            started: process_start(std::process::id()).unwrap_or(0),
        }
    }
}

/// Time since boot, counting time the machine spent suspended (`CLOCK_BOOTTIME`): a VM
/// paused or a laptop asleep for an hour must count that hour, which the monotonic clock
/// behind `Instant` does not.
fn since_boot() -> Duration {
    let now = rustix::time::clock_gettime(rustix::time::ClockId::Boottime);
    Duration::new(
        now.tv_sec.max(0) as u64,
        now.tv_nsec.clamp(0, 999_999_999) as u32,
    )
}

/// When process `pid` started (field 22 of `/proc/<pid>/stat`), if it exists and runs. A
/// zombie (state `Z`) has exited and holds nothing: a provider killed under a Terraform that
/// exited without reaping it stays one until its new parent reaps it, which in a container
/// without an init may be never (the crash campaign found its lock blocking the next destroy).
fn process_start(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may hold spaces: count after it.
    let mut fields = stat[stat.rfind(')')? + 1..].split_whitespace();
    if fields.next()? == "Z" {
        return None;
    }
    fields.nth(18)?.parse().ok()
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
    // A start time of 0 is unknown: then only a pid that runs nothing counts as gone.
    same_machine
        && process_start(lock.pid)
            .is_none_or(|started| lock.started != 0 && started != lock.started)
}

/// Whether the staging file of a lock write that never finished (`locks/<id>#<n>`, left by a
/// holder killed while it took or refreshed its lock) was written by a holder that is gone.
/// Such a file is listed by nobody and expires with no lock, so without this it would stay,
/// and keep the location of a destroyed vault from ever being empty (the crash campaign's
/// killed destroys left one). A file that does not read as a whole lock proves nothing.
pub(crate) fn staged_by_a_gone_holder(staging_file: &std::path::Path) -> bool {
    const LARGEST_LOCK_FILE: u64 = 64 * 1024;
    let small = std::fs::metadata(staging_file).is_ok_and(|m| m.len() <= LARGEST_LOCK_FILE);
    small
        && std::fs::read(staging_file)
            .ok()
            .and_then(|bytes| serde_json::from_slice::<LockFile>(&bytes).ok())
            .is_some_and(|lock| holder_is_gone(&lock, &Holder::this()))
}

fn encode(exclusive: bool, here: &Holder) -> Result<Bytes> {
    let file = LockFile {
        exclusive,
        refreshed: crate::clock::now().unix_timestamp(),
        hostname: here.hostname.clone(),
        pid: std::process::id(),
        boot_id: here.boot_id.clone(),
        pid_namespace: here.pid_namespace.clone(),
        started: here.started,
    };
    serde_json::to_vec(&file)
        .map(Bytes::from)
        .map_err(|e| Error::new(ErrorKind::Io, e.to_string()))
}

/// What the holder knows of its lock: when (on the boot clock) the last successful write of
/// it began, the earliest the store can have stamped it; and whether it was lost.
struct Held {
    last_write_began: Duration,
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
        let silent = since_boot().saturating_sub(held.last_write_began);
        let lost = held.lost.clone().or_else(|| {
            (silent > self.timing.stale_after / 2).then(|| {
                format!(
                    "it was last refreshed {}s ago (the process or machine was paused, suspended or starved), and others ignore a lock after {}s",
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
    let began = since_boot();
    storage.put_replace(&key, encode(exclusive, &here)?).await?;
    let mut guard = LockGuard {
        storage: storage.clone(),
        key: key.clone(),
        timing,
        held: Arc::new(Mutex::new(Held {
            last_write_began: began,
            lost: None,
        })),
        store_time: crate::clock::now(),
        refresher: None,
    };
    let listed = storage.list(crate::layout::LOCKS).await?;
    // The store's "now": when it wrote the lock just made. Without it (a store that gives no
    // times) every lock is judged by its holder's own record, never one clock against another.
    let own_time = listed
        .iter()
        .find(|l| l.key == key)
        .and_then(|l| l.modified);
    if let Some(time) = own_time {
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
        let silent = match (own_time, other_listed.modified) {
            (Some(now), Some(written)) => now - written,
            // A store that gives no timestamps: the holder's own record, by our clock.
            _ => time::Duration::seconds(crate::clock::now().unix_timestamp() - other.refreshed),
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
        here,
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
    here: Holder,
    timing: LockTiming,
    held: Arc<Mutex<Held>>,
) {
    let lose = |why: String| {
        let mut held = held.lock().unwrap_or_else(|e| e.into_inner());
        held.lost.get_or_insert(why);
    };
    loop {
        tokio::time::sleep(timing.refresh_every).await;
        let began = since_boot();
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
        // The store stamped the previous write no earlier than it began and this one no later
        // than now: a gap over half the window means others may have judged the lock stale
        // in between, however the time went (a pause, a suspend, a write that hung).
        let mut held = held.lock().unwrap_or_else(|e| e.into_inner());
        let gap = since_boot().saturating_sub(held.last_write_began);
        if gap > timing.stale_after / 2 {
            held.lost.get_or_insert(format!(
                "{}s passed between two refreshes (the process or machine was paused, suspended or starved, or a write hung), and others ignore a lock after {}s",
                gap.as_secs(),
                timing.stale_after.as_secs()
            ));
            return;
        }
        held.last_write_began = began;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lock_here(pid: u32, started: u64) -> LockFile {
        let here = Holder::this();
        LockFile {
            exclusive: false,
            refreshed: 0,
            hostname: here.hostname,
            pid,
            boot_id: here.boot_id,
            pid_namespace: here.pid_namespace,
            started,
        }
    }

    /// Gone means provably gone: a pid that runs nothing, or one now run by a process
    /// started at another time; an unknown start time never makes a live pid's lock gone.
    #[test]
    fn a_holder_is_gone_only_when_its_process_provably_is() {
        let me = std::process::id();
        let my_start = process_start(me).unwrap();
        let here = Holder::this();
        assert!(!holder_is_gone(&lock_here(me, my_start), &here));
        assert!(
            !holder_is_gone(&lock_here(me, 0), &here),
            "start time unknown"
        );
        assert!(
            holder_is_gone(&lock_here(me, my_start + 1), &here),
            "pid reused"
        );
        assert!(
            holder_is_gone(&lock_here(4_194_305, 0), &here),
            "no such pid"
        );
        let mut elsewhere = lock_here(4_194_305, 0);
        elsewhere.boot_id = "another boot".into();
        assert!(!holder_is_gone(&elsewhere, &here));
    }

    /// A holder that exited but was never reaped (a zombie) is gone: it can hold nothing.
    #[test]
    fn a_zombie_holder_is_gone() {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        // Exited, not yet reaped: wait until /proc shows it as a zombie.
        let stat = format!("/proc/{pid}/stat");
        for _ in 0..500 {
            let text = std::fs::read_to_string(&stat).unwrap_or_default();
            if text
                .rsplit_once(')')
                .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z'))
            {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(process_start(pid), None);
        assert!(holder_is_gone(&lock_here(pid, 0), &Holder::this()));
        child.wait().unwrap();
    }

    /// The boot clock moves with real time (and, unlike `Instant`, through a suspend).
    #[test]
    fn the_boot_clock_moves_forward() {
        let before = since_boot();
        std::thread::sleep(Duration::from_millis(20));
        let after = since_boot();
        assert!(
            after >= before + Duration::from_millis(20),
            "{before:?} {after:?}"
        );
    }
}
