//! Replication to another vault (another region, its own key). Each snapshot the destination
//! lacks is copied as a unit — packs, then an index, then the manifest under the same id — so
//! an interrupted run leaves only complete snapshots, and running again finishes the job.
//!
//! The vaults have different keys, so blobs are re-sealed and get the destination's ids. Whole-
//! file digests are key-independent: a file the destination already holds (same digest) takes
//! its chunk list from there without reading the source again, so only new data moves.

use super::snapshot::{blob_queue, pack_writer, SealedBlob};
use super::{seal_framed, Progress, SnapshotInfo, Vault};
use crate::crypto::{random_id, BlobId};
use crate::error::{Error, ErrorKind, Result};
use crate::format::{EntryKind, IndexFile};
use crate::locks;
use std::collections::{HashMap, HashSet};

/// What a replication would copy.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ReplicationPlan {
    /// Snapshots the destination lacks, oldest first.
    pub to_copy: Vec<SnapshotInfo>,
    /// Snapshots the destination already has.
    pub already_there: usize,
}

/// What a replication did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct ReplicationSummary {
    pub snapshots_copied: usize,
    /// Files whose data was read from the source (the rest were already at the destination).
    pub files_copied: usize,
    pub blobs_copied: usize,
    pub bytes_copied: u64,
}

impl Vault {
    /// Lists the snapshots `dest` lacks; writes nothing.
    ///
    /// # Errors
    /// `InvalidInput` when `dest` is this vault; `Corrupt`; `Storage`.
    pub async fn plan_replication(&self, dest: &Vault) -> Result<ReplicationPlan> {
        if dest.config.id == self.config.id {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                format!(
                    "{} and {} are the same vault",
                    self.storage.url(),
                    dest.storage.url()
                ),
            )
            .hint("replicate to the standby vault of another region"));
        }
        let present: HashSet<String> = dest.snapshot_ids().await?.into_iter().collect();
        let (already, to_copy): (Vec<SnapshotInfo>, Vec<SnapshotInfo>) = self
            .snapshots()
            .await?
            .into_iter()
            .partition(|s| present.contains(&s.id));
        Ok(ReplicationPlan {
            to_copy,
            already_there: already.len(),
        })
    }

    /// Copies the planned snapshots to `dest`, holding a shared lock there (prune waits).
    ///
    /// # Errors
    /// `Locked` while `dest` is being pruned; `Corrupt` naming damaged source data; `Storage`.
    pub async fn replicate(
        &self,
        dest: &Vault,
        plan: &ReplicationPlan,
        progress: &dyn Progress,
    ) -> Result<ReplicationSummary> {
        let lock = locks::acquire(&dest.storage, false).await?;
        let result = self.replicate_locked(dest, plan, progress).await;
        lock.release().await?;
        result
    }

    async fn replicate_locked(
        &self,
        dest: &Vault,
        plan: &ReplicationPlan,
        progress: &dyn Progress,
    ) -> Result<ReplicationSummary> {
        let source_index = self.load_index().await?;
        let mut known: HashSet<BlobId> = dest.load_index().await?.into_keys().collect();
        let present: HashSet<String> = dest.snapshot_ids().await?.into_iter().collect();
        // Files the destination already holds, by content digest.
        let mut by_digest: HashMap<String, Vec<BlobId>> = HashMap::new();
        for id in &present {
            let s = dest.load_snapshot(id).await?;
            for e in s.sources.into_iter().flat_map(|src| src.entries) {
                if let Some(d) = e.digest {
                    if e.chunks.iter().all(|c| known.contains(c)) {
                        by_digest.insert(d, e.chunks);
                    }
                }
            }
        }
        progress.phase("replicate", plan.to_copy.iter().map(|s| s.bytes).sum());
        let mut summary = ReplicationSummary::default();
        for info in plan.to_copy.iter().filter(|s| !present.contains(&s.id)) {
            let mut snapshot = self.load_snapshot(&info.id).await?;
            let (tx, rx) = blob_queue();
            let packer = tokio::spawn(pack_writer(
                dest.storage.clone(),
                dest.key.clone(),
                dest.config.pack_size as usize,
                rx,
            ));
            let copied = async {
                for source in &mut snapshot.sources {
                    for entry in source
                        .entries
                        .iter_mut()
                        .filter(|e| e.kind == EntryKind::File)
                    {
                        if let Some(chunks) = entry.digest.as_ref().and_then(|d| by_digest.get(d)) {
                            entry.chunks = chunks.clone();
                            progress.advance(entry.size);
                            continue;
                        }
                        let mut hasher = blake3::Hasher::new();
                        let mut dest_chunks = Vec::with_capacity(entry.chunks.len());
                        for chunk in &entry.chunks {
                            let data = self.read_blob(chunk, &source_index, &entry.path).await?;
                            hasher.update(&data);
                            let id = dest.key.blob_id(&data);
                            if known.insert(id) {
                                let sealed = seal_framed(
                                    &dest.key,
                                    format!("blob:{}", id.to_hex()).as_bytes(),
                                    &data,
                                );
                                summary.blobs_copied += 1;
                                summary.bytes_copied += data.len() as u64;
                                let blob = SealedBlob {
                                    id,
                                    sealed,
                                    raw_length: data.len() as u32,
                                };
                                tx.send(blob).await?;
                            }
                            progress.advance(data.len() as u64);
                            dest_chunks.push(id);
                        }
                        let digest = hasher.finalize().to_hex().to_string();
                        if entry.digest.as_deref().is_some_and(|d| d != digest) {
                            return Err(Error::corrupt(
                                &format!("{}/snapshots/{}", self.storage.url(), info.id),
                                format!(
                                    "{}/{}: the source data does not match its digest",
                                    source.name, entry.path
                                ),
                            ));
                        }
                        summary.files_copied += 1;
                        by_digest.insert(digest, dest_chunks.clone());
                        entry.chunks = dest_chunks;
                    }
                }
                Ok::<_, Error>(())
            }
            .await;
            drop(tx);
            let (packs, _) = packer
                .await
                .map_err(|e| Error::new(ErrorKind::Io, format!("pack writer failed: {e}")))??;
            copied?;
            if !packs.is_empty() {
                let index_id = random_id();
                dest.store_sealed_json(
                    &format!("index/{index_id}"),
                    &format!("index:{index_id}"),
                    &IndexFile { packs },
                )
                .await?;
            }
            // Same id at the destination: that is how a re-run knows it is done.
            match dest.store_manifest(&info.id, &snapshot).await {
                Ok(_) => summary.snapshots_copied += 1,
                Err(e) if e.kind == ErrorKind::AlreadyExists => {}
                Err(e) => return Err(e),
            }
        }
        Ok(summary)
    }
}
