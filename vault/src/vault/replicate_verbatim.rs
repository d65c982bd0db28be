//! Replication to a standby that shares the source's master key (`drctl vault init
//! --key-from`): blobs have the same ids and seals in both vaults, so the packs a snapshot
//! needs are copied as they are (no decryption, no re-encryption), then an index file listing
//! them, then the manifest. Each snapshot is still copied as a unit, so an interrupted run
//! leaves only complete snapshots, and running again finishes the job.
//!
//! A pack is copied whole when the standby lacks any blob of it that the snapshot needs; its
//! other blobs come along (and are listed in the index, so later snapshots find them). Packs
//! are not opened on the way: a damaged pack arrives damaged, and `verify --read-data` on
//! either vault names it.

use super::{Progress, ReplicationPlan, ReplicationSummary, Vault};
use crate::crypto::BlobId;
use crate::error::{Error, ErrorKind, Result};
use crate::format::{EntryKind, PackEntry};
use crate::layout;
use crate::locks::LockGuard;
use crate::storage::{Copied, Storage};
use std::collections::{BTreeSet, HashMap, HashSet};

/// Packs copied at once: up to four, and (as each passes whole through memory between object
/// stores) no more than about 64 MiB of them.
const PACKS_IN_FLIGHT: usize = 4;
const PACK_BYTES_IN_FLIGHT: usize = 64 * 1024 * 1024;

impl Vault {
    pub(super) async fn replicate_verbatim(
        &self,
        dest: &Vault,
        plan: &ReplicationPlan,
        progress: &dyn Progress,
        lock: &LockGuard,
    ) -> Result<ReplicationSummary> {
        let packs: Vec<PackEntry> = self.repo.index().await?.into_packs();
        // Where each blob is: the index of its pack in `packs` (a blob listed twice keeps the
        // place listed last, as everywhere).
        let mut pack_of: HashMap<BlobId, usize> = HashMap::new();
        for (i, pack) in packs.iter().enumerate() {
            for blob in &pack.blobs {
                pack_of.insert(blob.id, i);
            }
        }
        let mut held: HashSet<BlobId> = dest.repo.blob_ids().await?;
        let present: HashSet<String> = dest.snapshot_ids().await?.into_iter().collect();
        progress.phase("replicate", plan.to_copy.iter().map(|s| s.bytes).sum());
        let mut summary = ReplicationSummary::default();
        for info in plan.to_copy.iter().filter(|s| !present.contains(&s.id)) {
            // Read once: the bytes opened here are the bytes the standby stores.
            let sealed_manifest =
                crate::repo::blob::load_manifest_sealed(self.storage(), self.repo.key(), &info.id);
            let (snapshot, sealed_manifest) = match sealed_manifest.await {
                Ok(read) => read,
                Err(e) if e.kind == ErrorKind::Corrupt => {
                    summary
                        .unreadable
                        .push(super::Problem::unreadable_manifest(&info.id, &e));
                    continue;
                }
                Err(e) => return Err(e),
            };
            // The packs holding what the standby lacks, and the files that need them.
            let mut needed: BTreeSet<usize> = BTreeSet::new();
            for source in &snapshot.sources {
                for entry in source.entries.iter().filter(|e| e.kind == EntryKind::File) {
                    let mut lacking = false;
                    for chunk in entry.chunks.iter().filter(|c| !held.contains(*c)) {
                        let pack = pack_of.get(chunk).ok_or_else(|| {
                            Error::corrupt(
                                &format!("{}/{}/", self.storage().url(), layout::INDEX),
                                format!(
                                    "blob {} of {}/{} is in no index",
                                    &chunk.to_hex()[..16],
                                    source.name,
                                    entry.path
                                ),
                            )
                        })?;
                        needed.insert(*pack);
                        lacking = true;
                    }
                    if lacking {
                        summary.files_copied += 1;
                    } else {
                        progress.advance(entry.size);
                    }
                }
            }
            let copied: Vec<&PackEntry> = needed.iter().map(|&i| &packs[i]).collect();
            // Tasks of their own (owned storage handles), a few at a time. Every copy started
            // is awaited, also after an error: none is still being written once the lock is
            // released.
            let mut waiting = copied
                .iter()
                .map(|p| (*p).clone())
                .collect::<Vec<_>>()
                .into_iter();
            let mut running = tokio::task::JoinSet::new();
            let (mut bytes, mut failed) = (0, None);
            loop {
                let at_once = (PACK_BYTES_IN_FLIGHT / self.config.pack_size.max(1) as usize)
                    .clamp(1, PACKS_IN_FLIGHT);
                while failed.is_none() && running.len() < at_once {
                    let Some(pack) = waiting.next() else { break };
                    let (from, to) = (self.storage().clone(), dest.storage().clone());
                    running.spawn(copy_pack(from, to, pack));
                }
                let Some(copy) = running.join_next().await else {
                    break;
                };
                match copy.map_err(|e| Error::new(ErrorKind::Io, format!("pack copy failed: {e}")))
                {
                    Ok(Ok(len)) => {
                        progress.advance(len);
                        bytes += len;
                    }
                    Ok(Err(e)) | Err(e) => {
                        failed.get_or_insert(e);
                    }
                }
            }
            if let Some(e) = failed {
                return Err(e);
            }
            crate::hooks::stop_point("replicate-commit");
            lock.check_held()?;
            let mut stored = bytes;
            if !copied.is_empty() {
                stored += dest
                    .repo
                    .write_index(copied.iter().map(|p| (*p).clone()).collect())
                    .await?;
            }
            for pack in &copied {
                held.extend(pack.blobs.iter().map(|b| b.id));
                summary.blobs_copied += pack.blobs.len();
            }
            summary.bytes_copied += bytes;
            lock.check_held()?;
            // The manifest as it is (sealed under the same key and label), when both vaults
            // write the same format; a summary of the standby's own, with what it stored.
            if dest.config.format_version == self.config.format_version {
                let len = sealed_manifest.len() as u64;
                let manifest = layout::snapshot(&info.id);
                if dest.storage().put_new(&manifest, sealed_manifest).await? {
                    dest.store_summary(&info.id, snapshot.summary(), stored + len)
                        .await;
                    summary.snapshots_copied += 1;
                }
            } else {
                match dest.store_manifest(&info.id, &snapshot, stored).await {
                    Ok(_) => summary.snapshots_copied += 1,
                    Err(e) if e.kind == ErrorKind::AlreadyExists => {}
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(summary)
    }
}

/// Copies one pack as it is from `source` to `dest`; returns its size. The copy must be as long
/// as the index says the pack is (a truncated source pack is refused, and its copy removed).
async fn copy_pack(source: Storage, dest: Storage, pack: PackEntry) -> Result<u64> {
    let key = layout::pack(&pack.id);
    // Already there with the same bytes: an interrupted run copied it (that is a copy).
    let (len, created) = match dest.copy_new_from(&source, &key).await? {
        Copied::Created(len) => (len, true),
        Copied::AlreadyThere(len) => (len, false),
        Copied::OtherThere => {
            return Err(Error::new(
                ErrorKind::AlreadyExists,
                format!("{}/{key} already exists with other contents", dest.url()),
            )
            .hint("run `drctl vault verify` on the standby"))
        }
    };
    let end = pack
        .blobs
        .iter()
        .map(|b| b.offset + u64::from(b.length))
        .max()
        .unwrap_or(0);
    if len < end {
        // A copy made now is not left at the standby, where it would look whole (no index
        // will list it); one that was there already is the standby's, and stays.
        if created {
            let _ = dest.delete(&key).await;
        }
        return Err(Error::corrupt(
            &format!("{}/{key}", source.url()),
            format!("is {len} bytes long; its index places blobs up to byte {end}"),
        ));
    }
    Ok(len)
}
