//! Replication to a standby that shares the source's master key (`drctl vault init
//! --key-from`): blobs have the same ids and seals in both vaults, so the packs a snapshot
//! needs are copied as they are (no decryption, no re-encryption), then the index files
//! listing them, then the manifest. Each snapshot is still copied as a unit, so an
//! interrupted run leaves only complete snapshots, and running again finishes the job.
//!
//! A pack is copied whole when the standby lacks any blob of it that the snapshot needs; its
//! other blobs come along (and are listed in the index, so later snapshots find them). An
//! index file of the source is copied as it is once the standby holds every pack it lists;
//! packs of files it cannot take whole yet are listed in a new index file of the standby's.
//! Packs are not opened on the way: a damaged pack arrives damaged, and `verify --read-data`
//! on either vault names it.
//!
//! While one snapshot's packs are copied (disk or network bound), the next manifest is read
//! and worked out on another task (CPU bound).

use super::{Progress, ReplicationPlan, ReplicationSummary, Vault};
use crate::crypto::BlobId;
use crate::error::{Error, ErrorKind, Result};
use crate::format::{EntryKind, ManifestSummary, PackEntry, Snapshot};
use crate::layout;
use crate::locks::LockGuard;
use crate::storage::{Copied, Storage};
use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;

/// Packs copied at once: up to four, and (as each passes whole through memory between object
/// stores) no more than about 64 MiB of them.
const PACKS_IN_FLIGHT: usize = 4;
const PACK_BYTES_IN_FLIGHT: usize = 64 * 1024 * 1024;

/// The source's index, and what the standby held when the run began.
struct Holdings {
    /// The source's packs, in index order.
    packs: Vec<PackEntry>,
    /// The source index file listing each pack (an index into `files`).
    file_of: Vec<usize>,
    /// Each source index file's key and the packs it lists.
    files: Vec<(String, Vec<usize>)>,
    /// Where each blob is: its pack in `packs` (a blob listed twice keeps the place listed
    /// last, as everywhere).
    pack_of: HashMap<BlobId, usize>,
    /// The blobs the standby held when the run began.
    held: HashSet<BlobId>,
}

/// What one snapshot to copy needs, worked out against what the standby held when the run
/// began (packs copied since are subtracted when it is copied).
struct Needs {
    /// The manifest as stored: the standby stores the same bytes.
    sealed: bytes::Bytes,
    summary: ManifestSummary,
    /// The manifest decoded, kept only when the standby writes another format.
    snapshot: Option<Snapshot>,
    /// Files lacking data at the standby: each one's size and the packs holding what it lacks.
    lacking: Vec<(u64, Vec<usize>)>,
    /// Bytes of the files the standby held whole.
    held_bytes: u64,
}

/// A manifest being read, with its sealed bytes.
type Read = tokio::task::JoinHandle<Result<(Snapshot, bytes::Bytes)>>;
/// What a snapshot needs, being worked out.
type Worked = tokio::task::JoinHandle<Result<Result<Needs>>>;

impl Vault {
    pub(super) async fn replicate_verbatim(
        &self,
        dest: &Vault,
        plan: &ReplicationPlan,
        progress: &dyn Progress,
        lock: &LockGuard,
    ) -> Result<ReplicationSummary> {
        let present: HashSet<String> = dest.snapshot_ids().await?.into_iter().collect();
        let to_copy: Vec<&str> = plan
            .to_copy
            .iter()
            .filter(|s| !present.contains(&s.id))
            .map(|s| s.id.as_str())
            .collect();
        let reencode = dest.config.format_version != self.config.format_version;
        // The first manifest is read while both indexes are.
        let first = to_copy.first().map(|id| self.read_manifest(id));
        let (source_index, dest_index) = tokio::try_join!(self.repo.index(), dest.repo.index())?;
        let mut dest_files: HashSet<String> = HashSet::new();
        let mut dest_packs: HashSet<String> = HashSet::new();
        let mut held = HashSet::new();
        for (key, packs) in dest_index.into_files() {
            dest_files.insert(key);
            for pack in packs {
                held.extend(pack.blobs.iter().map(|b| b.id));
                dest_packs.insert(pack.id);
            }
        }
        let holdings = Arc::new(Holdings::of(source_index.into_files(), held));

        progress.phase("replicate", plan.to_copy.iter().map(|s| s.bytes).sum());
        let mut summary = ReplicationSummary::default();
        let mut copied_packs: HashSet<usize> = HashSet::new();
        let mut next: Option<Worked> =
            first.map(|read| self.work_out_after(read, &holdings, reencode));
        for (n, id) in to_copy.iter().enumerate() {
            let worked = next
                .take()
                .expect("each snapshot's work is started before it is copied")
                .await
                .map_err(|e| Error::new(ErrorKind::Io, format!("manifest task failed: {e}")))?;
            next = to_copy
                .get(n + 1)
                .map(|id| self.work_out_after(self.read_manifest(id), &holdings, reencode));
            let needs = match worked? {
                Ok(needs) => needs,
                Err(e) if e.kind == ErrorKind::Corrupt => {
                    summary
                        .unreadable
                        .push(super::Problem::unreadable_manifest(id, &e));
                    continue;
                }
                Err(e) => return Err(e),
            };
            // The packs holding what the standby lacks now.
            let mut needed: BTreeSet<usize> = BTreeSet::new();
            for (size, packs) in &needs.lacking {
                let missing = packs.iter().filter(|p| !copied_packs.contains(*p));
                if missing.clone().next().is_none() {
                    // Copied for an earlier snapshot of this run.
                    progress.advance(*size);
                } else {
                    summary.files_copied += 1;
                    needed.extend(missing);
                }
            }
            progress.advance(needs.held_bytes);
            let bytes = self.copy_packs(dest, &holdings, &needed, progress).await?;
            crate::hooks::stop_point("replicate-commit");
            lock.check_held()?;
            copied_packs.extend(needed.iter().copied());
            dest_packs.extend(needed.iter().map(|&p| holdings.packs[p].id.clone()));
            let stored = bytes
                + self
                    .index_at_standby(dest, &holdings, &needed, &dest_packs, &mut dest_files)
                    .await?;
            summary.blobs_copied += needed
                .iter()
                .map(|&p| holdings.packs[p].blobs.len())
                .sum::<usize>();
            summary.bytes_copied += bytes;
            lock.check_held()?;
            // The manifest as it is (sealed under the same key and label), when both vaults
            // write the same format; a summary of the standby's own, with what it stored.
            match needs.snapshot {
                None => {
                    let len = needs.sealed.len() as u64;
                    if dest
                        .storage()
                        .put_new(&layout::snapshot(id), needs.sealed)
                        .await?
                    {
                        dest.store_summary(id, needs.summary, stored + len).await;
                        summary.snapshots_copied += 1;
                    }
                }
                Some(snapshot) => match dest.store_manifest(id, &snapshot, stored).await {
                    Ok(_) => summary.snapshots_copied += 1,
                    Err(e) if e.kind == ErrorKind::AlreadyExists => {}
                    Err(e) => return Err(e),
                },
            }
        }
        Ok(summary)
    }

    /// Starts reading the manifest of snapshot `id`, with its sealed bytes.
    fn read_manifest(&self, id: &str) -> Read {
        let (storage, key, id) = (
            self.storage().clone(),
            self.repo.key().clone(),
            id.to_string(),
        );
        tokio::spawn(
            async move { crate::repo::blob::load_manifest_sealed(&storage, &key, &id).await },
        )
    }

    /// Starts working out what the manifest being `read` needs, on a task of its own.
    fn work_out_after(&self, read: Read, holdings: &Arc<Holdings>, reencode: bool) -> Worked {
        let (holdings, storage) = (holdings.clone(), self.storage().url().to_string());
        tokio::spawn(async move { work_out(read.await, &holdings, &storage, reencode) })
    }

    /// Copies the packs `needed`, a few at a time; returns the bytes copied. Every copy
    /// started is awaited, also after an error: none is still being written once the lock
    /// is released.
    async fn copy_packs(
        &self,
        dest: &Vault,
        holdings: &Holdings,
        needed: &BTreeSet<usize>,
        progress: &dyn Progress,
    ) -> Result<u64> {
        let at_once = (PACK_BYTES_IN_FLIGHT / self.config.pack_size.max(1) as usize)
            .clamp(1, PACKS_IN_FLIGHT);
        let mut waiting = needed.iter().map(|&p| holdings.packs[p].clone());
        let mut running = tokio::task::JoinSet::new();
        let (mut bytes, mut failed) = (0, None);
        loop {
            while failed.is_none() && running.len() < at_once {
                let Some(pack) = waiting.next() else { break };
                let (from, to) = (self.storage().clone(), dest.storage().clone());
                running.spawn(copy_pack(from, to, pack));
            }
            let Some(copy) = running.join_next().await else {
                break;
            };
            match copy.map_err(|e| Error::new(ErrorKind::Io, format!("pack copy failed: {e}"))) {
                Ok(Ok(len)) => {
                    progress.advance(len);
                    bytes += len;
                }
                Ok(Err(e)) | Err(e) => {
                    failed.get_or_insert(e);
                }
            }
        }
        match failed {
            Some(e) => Err(e),
            None => Ok(bytes),
        }
    }

    /// Lists the packs just copied (`copied`) in the standby's index: each source index file
    /// whose every pack the standby now holds is copied as it is (no re-encoding of what may
    /// be tens of thousands of entries); the rest of the packs go into a new index file.
    /// Returns the bytes stored.
    async fn index_at_standby(
        &self,
        dest: &Vault,
        holdings: &Holdings,
        copied: &BTreeSet<usize>,
        dest_packs: &HashSet<String>,
        dest_files: &mut HashSet<String>,
    ) -> Result<u64> {
        let mut stored = 0;
        let mut unlisted: Vec<PackEntry> = Vec::new();
        let files: BTreeSet<usize> = copied.iter().map(|&p| holdings.file_of[p]).collect();
        for f in files {
            let (key, packs) = &holdings.files[f];
            let whole = packs
                .iter()
                .all(|&p| dest_packs.contains(&holdings.packs[p].id));
            if whole && !dest_files.contains(key) {
                // Anything else already under that name is left alone, and the packs are
                // listed in a file of the standby's own instead.
                match dest.storage().copy_new_from(self.storage(), key).await? {
                    Copied::Created(len) | Copied::AlreadyThere(len) => {
                        dest_files.insert(key.clone());
                        stored += len;
                        continue;
                    }
                    Copied::OtherThere => {}
                }
            }
            if !dest_files.contains(key) {
                unlisted.extend(
                    copied
                        .iter()
                        .filter(|&&p| holdings.file_of[p] == f)
                        .map(|&p| holdings.packs[p].clone()),
                );
            }
        }
        if !unlisted.is_empty() {
            stored += dest.repo.write_index(unlisted).await?;
        }
        Ok(stored)
    }
}

impl Holdings {
    fn of(files: Vec<(String, Vec<PackEntry>)>, held: HashSet<BlobId>) -> Holdings {
        let mut holdings = Holdings {
            packs: Vec::new(),
            file_of: Vec::new(),
            files: Vec::with_capacity(files.len()),
            pack_of: HashMap::new(),
            held,
        };
        for (f, (key, packs)) in files.into_iter().enumerate() {
            let mut listed = Vec::with_capacity(packs.len());
            for pack in packs {
                let p = holdings.packs.len();
                for blob in &pack.blobs {
                    holdings.pack_of.insert(blob.id, p);
                }
                holdings.packs.push(pack);
                holdings.file_of.push(f);
                listed.push(p);
            }
            holdings.files.push((key, listed));
        }
        holdings
    }
}

/// What a snapshot needs (see [`Needs`]). The inner error is the manifest's (a `Corrupt`
/// one skips the snapshot); the outer one stops the run (a blob in no index of the source).
fn work_out(
    read: std::result::Result<Result<(Snapshot, bytes::Bytes)>, tokio::task::JoinError>,
    holdings: &Holdings,
    storage_url: &str,
    reencode: bool,
) -> Result<Result<Needs>> {
    let read = read.map_err(|e| Error::new(ErrorKind::Io, format!("manifest task failed: {e}")))?;
    let (snapshot, sealed) = match read {
        Ok(read) => read,
        Err(e) => return Ok(Err(e)),
    };
    let mut lacking = Vec::new();
    let mut held_bytes = 0;
    for source in &snapshot.sources {
        for entry in source.entries.iter().filter(|e| e.kind == EntryKind::File) {
            let mut packs: Vec<usize> = Vec::new();
            for chunk in entry.chunks.iter().filter(|c| !holdings.held.contains(*c)) {
                let pack = holdings.pack_of.get(chunk).ok_or_else(|| {
                    Error::corrupt(
                        &format!("{storage_url}/{}/", layout::INDEX),
                        format!(
                            "blob {} of {}/{} is in no index",
                            &chunk.to_hex()[..16],
                            source.name,
                            entry.path
                        ),
                    )
                })?;
                if !packs.contains(pack) {
                    packs.push(*pack);
                }
            }
            if packs.is_empty() {
                held_bytes += entry.size;
            } else {
                lacking.push((entry.size, packs));
            }
        }
    }
    Ok(Ok(Needs {
        sealed,
        summary: snapshot.summary(),
        snapshot: reencode.then_some(snapshot),
        lacking,
        held_bytes,
    }))
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
