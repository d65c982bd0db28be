//! Locks that keep prune from deleting data a running snapshot relies on.
//!
//! A snapshot holds a shared lock; prune holds an exclusive one. A writer creates its lock
//! first and then looks for others: two writers that race both see each other and the one
//! that conflicts backs off, so no interleaving lets prune delete a pack that a snapshot has
//! just decided not to re-upload. Locks are refreshed while held and count as stale (ignored)
//! after [`STALE_AFTER`] without a refresh, or at once when its process is gone from this
//! host, so a crashed writer blocks nobody for long.

use crate::crypto::random_id;
use crate::error::{Error, ErrorKind, Result};
use crate::storage::Storage;
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// A lock not refreshed for this long is ignored.
pub const STALE_AFTER: Duration = Duration::from_secs(30 * 60);
const REFRESH_EVERY: Duration = Duration::from_secs(5 * 60);

#[derive(Debug, Clone, Serialize, Deserialize)]
struct LockFile {
    exclusive: bool,
    /// Unix seconds of the last refresh.
    refreshed: i64,
    hostname: String,
    pid: u32,
}

fn now_secs() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// A held lock; [`LockGuard::release`] removes it (dropping it removes it in the background).
pub struct LockGuard {
    storage: Storage,
    key: String,
    refresher: Option<tokio::task::JoinHandle<()>>,
}

impl LockGuard {
    /// The key of the lock object.
    pub fn key(&self) -> &str {
        &self.key
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

fn this_host() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_default()
}

/// A lock taken on this host by a process that no longer exists (killed, crashed) is stale at
/// once: nobody has to wait half an hour after a `kill -9`.
fn holder_is_dead(lock: &LockFile) -> bool {
    !lock.hostname.is_empty()
        && lock.hostname == this_host()
        && !std::path::Path::new(&format!("/proc/{}", lock.pid)).exists()
}

fn encode(exclusive: bool) -> Result<Bytes> {
    let file = LockFile {
        exclusive,
        refreshed: now_secs(),
        hostname: std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_string())
            .unwrap_or_default(),
        pid: std::process::id(),
    };
    serde_json::to_vec(&file)
        .map(Bytes::from)
        .map_err(|e| Error::new(ErrorKind::Io, e.to_string()))
}

/// Takes a shared (snapshot) or exclusive (prune) lock.
///
/// # Errors
/// `Locked` naming the conflicting holder; `Storage`.
pub async fn acquire(storage: &Storage, exclusive: bool) -> Result<LockGuard> {
    let key = crate::layout::lock(&random_id());
    storage.put_replace(&key, encode(exclusive)?).await?;
    let mut guard = LockGuard {
        storage: storage.clone(),
        key: key.clone(),
        refresher: None,
    };
    for listed in storage.list(crate::layout::LOCKS).await? {
        if listed.key == key || crate::layout::parse(&listed.key).is_none() {
            continue;
        }
        let Ok(raw) = storage.get(&listed.key).await else {
            continue;
        };
        let Ok(other) = serde_json::from_slice::<LockFile>(&raw) else {
            continue;
        };
        let stale =
            now_secs() - other.refreshed > STALE_AFTER.as_secs() as i64 || holder_is_dead(&other);
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
                listed.key,
                other.hostname,
                other.pid
            ),
        )
        .hint(format!(
            "wait for it to finish and try again; a lock not refreshed for {} minutes is ignored",
            STALE_AFTER.as_secs() / 60
        )));
    }
    guard.refresher = Some({
        let storage = storage.clone();
        let key = key.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(REFRESH_EVERY).await;
                if let Ok(bytes) = encode(exclusive) {
                    let _ = storage.put_replace(&key, bytes).await;
                }
            }
        })
    });
    Ok(guard)
}
