//! Prune: plan first (which snapshots go, which packs are freed), then execute under an
//! exclusive lock. Snapshots younger than `lock_for` are never removed, whatever the policy.
//!
//! Execution order keeps every crash safe: forgotten manifests are deleted first (their data
//! stays), then one new index replaces the old ones, and only then are packs that no remaining
//! snapshot uses deleted. Packs that fully hold unused blobs are deleted; packs that mix used
//! and unused blobs are kept as they are (no repacking yet).

use super::{SnapshotInfo, Vault};
use crate::crypto::BlobId;
use crate::error::{Error, ErrorKind, Result};
use crate::format::PackEntry;
use crate::layout::{self};
use crate::locks::LockGuard;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;

/// Which snapshots to keep. With neither `keep_last` nor `keep_within`, all are kept and prune
/// only reclaims unreferenced data.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Retention {
    pub keep_last: Option<usize>,
    pub keep_within: Option<Duration>,
    /// Snapshots younger than this can be deleted by nothing.
    pub lock_for: Option<Duration>,
}

/// What a prune would do.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PrunePlan {
    pub keep: Vec<SnapshotInfo>,
    pub forget: Vec<SnapshotInfo>,
    /// Ids kept only because `lock_for` protects them.
    pub locked: Vec<String>,
    pub packs_to_delete: Vec<String>,
    pub packs_kept: usize,
    pub bytes_to_free: u64,
    /// Keys under the vault's directories that are not of its layout: never deleted.
    pub foreign_objects: Vec<String>,
    /// Manifests that do not open. Their snapshots are neither kept nor forgotten, and while
    /// any is left no pack is deleted: what they reference cannot be known.
    pub unreadable: Vec<super::Problem>,
}

/// What a prune did.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PruneSummary {
    pub snapshots_forgotten: usize,
    pub packs_deleted: usize,
    /// Staging files of writes a killed process left in a local vault.
    pub interrupted_writes_deleted: usize,
    pub bytes_freed: u64,
}

impl Vault {
    /// Computes what prune would remove under `retention` at time `now`; writes nothing.
    ///
    /// # Errors
    /// `Corrupt` for unreadable manifests or index files; `Storage`.
    pub async fn plan_prune(
        &self,
        retention: &Retention,
        now: time::OffsetDateTime,
    ) -> Result<PrunePlan> {
        // The vault's recorded lock_for binds every caller; a longer one asked for here adds to it.
        let lock_for = self.policy().await?.lock_for().max(retention.lock_for);
        let super::SnapshotListing {
            snapshots,
            unreadable,
        } = self.snapshot_listing().await?;
        // Retention counts within each series (see SERIES_LABEL): frequent state pushes must
        // not push a vault's pipeline snapshots out of keep_last.
        let mut newer_in_series: HashMap<String, usize> = HashMap::new();
        let mut from_newest_of = vec![0; snapshots.len()];
        for (i, s) in snapshots.iter().enumerate().rev() {
            let n = newer_in_series.entry(s.series().to_string()).or_default();
            from_newest_of[i] = *n;
            *n += 1;
        }
        let mut keep = Vec::new();
        let mut forget = Vec::new();
        let mut locked = Vec::new();
        let no_policy = retention.keep_last.is_none() && retention.keep_within.is_none();
        for (i, s) in snapshots.into_iter().enumerate() {
            let from_newest = from_newest_of[i];
            let snapshot_age = s.age(now);
            // The newest snapshot (of each series) is always kept: a vault whose sources did not change for
            // longer than keep_within must not end up empty.
            let by_policy = no_policy
                || from_newest == 0
                || retention.keep_last.is_some_and(|n| from_newest < n)
                || retention.keep_within.is_some_and(|w| snapshot_age <= w);
            // An unreadable time counts as young: never delete what we cannot date.
            let is_locked = lock_for.is_some_and(|l| snapshot_age < l);
            if by_policy {
                keep.push(s);
            } else if is_locked {
                locked.push(s.id.clone());
                keep.push(s);
            } else {
                forget.push(s);
            }
        }
        // A manifest whose summary lists fine may itself not open: it counts as unreadable.
        let (used, damaged) = self
            .blobs_used_by(keep.iter().map(|s| s.id.as_str()))
            .await?;
        let mut unreadable = unreadable;
        unreadable.extend(damaged);
        let packs = self.repo.index().await?.into_packs();
        let listed = self.packs_listed().await?;
        // Packs written within the stale window are kept (see `prune_locked`); the plan
        // estimates their age by `now`, the prune itself by the store's clock.
        let stale_after = self.lock_timing.stale_after;
        let old_sizes: BTreeMap<&str, u64> = listed
            .iter()
            .filter(|(_, (_, written))| is_old(now, *written, stale_after))
            .map(|(id, (size, _))| (id.as_str(), *size))
            .collect();
        let mut packs_to_delete = Vec::new();
        let mut bytes_to_free = 0;
        // With a manifest that does not open, what is used cannot be known: nothing goes.
        if unreadable.is_empty() {
            for pack in &packs {
                let old_enough = old_sizes.get(pack.id.as_str());
                if let (Some(size), true) =
                    (old_enough, pack.blobs.iter().all(|b| !used.contains(&b.id)))
                {
                    bytes_to_free += size;
                    packs_to_delete.push(pack.id.clone());
                }
            }
            // Packs no index lists: left by an interrupted snapshot or prune. Prune runs under
            // the exclusive lock, so no running snapshot can own them.
            let indexed: HashSet<&str> = packs.iter().map(|p| p.id.as_str()).collect();
            for (id, size) in &old_sizes {
                if !indexed.contains(id) {
                    bytes_to_free += size;
                    packs_to_delete.push(id.to_string());
                }
            }
        }
        packs_to_delete.sort();
        packs_to_delete.dedup();
        let packs_kept = listed.len().saturating_sub(packs_to_delete.len());
        let foreign_objects = self.foreign_objects().await?;
        Ok(PrunePlan {
            foreign_objects,
            unreadable,
            keep,
            forget,
            locked,
            packs_to_delete,
            packs_kept,
            bytes_to_free,
        })
    }

    /// Carries out a plan under an exclusive lock. Snapshots taken since the plan are kept and
    /// their data with them; a snapshot the plan forgets but `lock_for` now protects is not
    /// possible (locks only age), so the plan's list stands.
    ///
    /// # Errors
    /// `Locked` while a snapshot runs; `Storage`.
    pub async fn prune(&self, plan: &PrunePlan) -> Result<PruneSummary> {
        let lock = self.lock(true).await?;
        let result = self.prune_locked(plan, &lock).await;
        lock.release().await?;
        result
    }

    async fn prune_locked(&self, plan: &PrunePlan, lock: &LockGuard) -> Result<PruneSummary> {
        let forget: HashSet<&str> = plan.forget.iter().map(|s| s.id.as_str()).collect();
        lock.check_held()?;
        // The summary goes first: a crash in between leaves a manifest without one, which
        // lists as before, never a summary of a snapshot that is gone.
        for id in &forget {
            lock.check_held()?;
            self.storage().delete(&layout::summary(id)).await?;
            self.storage().delete(&layout::snapshot(id)).await?;
        }
        // Recompute what is used now: snapshots written since the plan keep their data.
        let remaining = self.snapshot_ids().await?;
        // Summaries whose manifest is gone (an older build's prune deleted only manifests).
        let live: HashSet<&str> = remaining.iter().map(String::as_str).collect();
        for id in self.summary_ids().await? {
            if !live.contains(id.as_str()) {
                self.storage().delete(&layout::summary(&id)).await?;
            }
        }
        let (used, unreadable) = self
            .blobs_used_by(remaining.iter().map(String::as_str))
            .await?;
        // A pack the store wrote within the stale window may be a live writer's that has not
        // committed yet (one slow or paused past its lock): it is neither deleted nor dropped
        // from the index, and waits for a later prune. Ages are by the store's clock, against
        // this prune's own lock.
        let stale_after = self.lock_timing.stale_after;
        let listed = self.packs_listed().await?;
        let old_enough = |id: &str| {
            listed
                .get(id)
                .is_none_or(|(_, written)| is_old(lock.store_time(), *written, stale_after))
        };
        // A manifest that does not open (damaged since the plan, or planted) may reference
        // any pack: none is deleted while one is left.
        let planned: HashSet<&str> = if unreadable.is_empty() {
            plan.packs_to_delete
                .iter()
                .map(String::as_str)
                .filter(|id| old_enough(id))
                .collect()
        } else {
            HashSet::new()
        };
        let index = self.repo.index().await?;
        let index_keys = index.file_keys();
        let packs = index.into_packs();
        let (dead, live): (Vec<PackEntry>, Vec<PackEntry>) = packs.into_iter().partition(|p| {
            planned.contains(p.id.as_str()) && p.blobs.iter().all(|b| !used.contains(&b.id))
        });
        lock.check_held()?;
        if !dead.is_empty() {
            // One index for what remains, written before the old ones go: at every moment
            // each live pack is listed somewhere.
            self.repo.write_index(live.clone()).await?;
            for key in &index_keys {
                self.storage().delete(key).await?;
            }
        }
        let mut bytes_freed = 0;
        let still_indexed: HashSet<&str> = live.iter().map(|p| p.id.as_str()).collect();
        let orphans = listed
            .keys()
            .filter(|id| planned.contains(id.as_str()) && !still_indexed.contains(id.as_str()));
        let mut dead_ids: Vec<&str> = dead
            .iter()
            .map(|p| p.id.as_str())
            .chain(orphans.map(String::as_str))
            .collect();
        dead_ids.sort_unstable();
        dead_ids.dedup();
        for id in &dead_ids {
            lock.check_held()?;
            bytes_freed += listed.get(*id).map_or(0, |(size, _)| *size);
            self.storage().delete(&layout::pack(id)).await?;
        }
        // What writers killed mid-write left in a local vault. Under the exclusive lock no
        // write is under way; only files untouched for as long as a lock takes to go stale go.
        let (interrupted_writes_deleted, swept) =
            self.storage().sweep_interrupted_writes(stale_after).await?;
        Ok(PruneSummary {
            snapshots_forgotten: forget.len(),
            packs_deleted: dead_ids.len(),
            interrupted_writes_deleted,
            bytes_freed: bytes_freed + swept,
        })
    }

    /// Every blob the given snapshots reference, and their manifests that do not open (or are
    /// gone since they were listed).
    async fn blobs_used_by<'a>(
        &self,
        ids: impl Iterator<Item = &'a str>,
    ) -> Result<(HashSet<BlobId>, Vec<super::Problem>)> {
        let mut used = HashSet::new();
        let mut unreadable = Vec::new();
        for id in ids {
            let s = match self.load_snapshot(id).await {
                Ok(s) => s,
                Err(e) if matches!(e.kind, ErrorKind::Corrupt | ErrorKind::NotFound) => {
                    unreadable.push(super::Problem::unreadable_manifest(id, &e));
                    continue;
                }
                Err(e) => return Err(e),
            };
            used.extend(
                s.sources
                    .iter()
                    .flat_map(|src| &src.entries)
                    .flat_map(|e| e.chunks.iter().copied()),
            );
        }
        Ok((used, unreadable))
    }
}

/// Whether an object the store wrote at `written` is older than `window` at `now`. One whose
/// time the store does not give counts as old: it would otherwise never be reclaimed (every
/// store this crate opens gives times).
fn is_old(
    now: time::OffsetDateTime,
    written: Option<time::OffsetDateTime>,
    window: Duration,
) -> bool {
    written.is_none_or(|written| (now - written).whole_seconds() >= window.as_secs() as i64)
}

/// Parses a duration such as `15m`, `1h`, `7d` or `2w`.
///
/// # Errors
/// `InvalidInput` naming `what` and saying the expected form.
pub fn parse_duration(text: &str, what: &str) -> Result<Duration> {
    humantime::parse_duration(text.trim()).map_err(|e| {
        Error::new(
            ErrorKind::InvalidInput,
            format!("{what} {text:?} is not a duration: {e}"),
        )
        .hint("write it like 15m, 1h, 7d or 2w")
    })
}
