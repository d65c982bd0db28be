//! Taking a snapshot: scan, reuse unchanged files, chunk/hash/seal the rest on blocking
//! threads, pack, then write the index and, last, the manifest.

use super::{hostname, now_rfc3339, pack_key, seal_framed, Progress, SnapshotSummary, Vault};
use crate::crypto::{random_id, BlobId, MasterKey};
use crate::error::{Error, ErrorKind, Result};
use crate::format::{
    BlobLocation, ChunkerParams, Entry, EntryKind, IndexFile, PackEntry, Snapshot, SnapshotSource,
};
use crate::sources::{self, Item, SourceSpec};
use crate::storage::Storage;
use bytes::Bytes;
use futures_util::StreamExt as _;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc;

/// Sources being scanned (metadata only) on a blocking thread, started ahead of the snapshot
/// so the scan's disk waits overlap other work: the key derivation when a command opens the
/// vault, and reading the previous manifest and the index.
pub struct PendingScan(tokio::task::JoinHandle<Result<Vec<sources::Scanned>>>);

impl PendingScan {
    /// Starts scanning `specs`. Needs a Tokio runtime.
    pub fn start(specs: &[SourceSpec]) -> PendingScan {
        let specs = specs.to_vec();
        PendingScan(tokio::task::spawn_blocking(move || sources::scan(&specs)))
    }

    async fn finish(self) -> Result<Vec<sources::Scanned>> {
        self.0
            .await
            .map_err(|e| Error::new(ErrorKind::Io, format!("scan task failed: {e}")))?
    }
}

impl Vault {
    /// Takes a snapshot of `specs`. Packs are written first, then the index, then the
    /// manifest: an interrupted snapshot leaves no visible half snapshot.
    ///
    /// # Errors
    /// Source errors naming the path; storage errors naming the object.
    pub async fn snapshot(
        &self,
        specs: &[SourceSpec],
        labels: &BTreeMap<String, String>,
        progress: &dyn Progress,
    ) -> Result<SnapshotSummary> {
        self.snapshot_scanned(PendingScan::start(specs), labels, progress)
            .await
    }

    /// Takes a snapshot of sources whose scan was started earlier (see [`PendingScan`]).
    ///
    /// # Errors
    /// As [`Vault::snapshot`].
    pub async fn snapshot_scanned(
        &self,
        scan: PendingScan,
        labels: &BTreeMap<String, String>,
        progress: &dyn Progress,
    ) -> Result<SnapshotSummary> {
        // Held until the manifest is written, so no prune deletes data this snapshot reuses.
        let lock = crate::locks::acquire(&self.storage, false).await?;
        let summary = self.snapshot_locked(scan, labels, progress).await;
        lock.release().await?;
        summary
    }

    async fn snapshot_locked(
        &self,
        scan: PendingScan,
        labels: &BTreeMap<String, String>,
        progress: &dyn Progress,
    ) -> Result<SnapshotSummary> {
        // Unchanged files are recognised from the newest snapshot of the same series. The
        // previous manifest and the index are read while the scan runs.
        let series = labels.get(super::SERIES_LABEL).map_or("", String::as_str);
        let parent = async {
            let Some(id) = self.latest_in_series(series).await? else {
                return Ok((None, HashMap::new()));
            };
            let manifest = self.load_snapshot(&id).await?;
            Ok::<_, Error>((Some(id), entries_by_path(manifest)))
        };
        let (scanned, (parent_id, mut previous), index) =
            tokio::try_join!(scan.finish(), parent, self.load_index())?;
        let claimed: Arc<Mutex<HashSet<BlobId>>> =
            Arc::new(Mutex::new(index.keys().copied().collect()));
        drop(index);

        let total: u64 = scanned
            .iter()
            .flat_map(|s| &s.items)
            .map(|i| i.entry.size)
            .sum();
        progress.phase("snapshot", total);

        let (tx, rx) = mpsc::channel::<SealedBlob>(16);
        let packer = tokio::spawn(pack_writer(
            self.storage.clone(),
            self.key.clone(),
            self.config.pack_size as usize,
            rx,
        ));

        // Files are read in batches on blocking threads: many small files per batch (one
        // thread handoff per file cost more than reading it), a large file alone. Several
        // batches run at once so reads waiting on the disk overlap; each reserves what it holds
        // (file sizes up to the largest chunk) from a shared budget, which bounds memory.
        let budget = Arc::new(tokio::sync::Semaphore::new(READ_BUDGET_KIB as usize));
        let largest_chunk = u64::from(self.config.chunker.max_size);
        let mut files_read = 0usize;
        let mut bytes_new = 0u64;
        let mut snapshot_sources = Vec::new();
        for source in scanned {
            let mut before = previous.remove(&source.name).unwrap_or_default();
            let mut batches = vec![Batch::default()];
            for item in source.items {
                let job = match before.remove(item.entry.path.as_str()) {
                    Some(old) if sources::unchanged(&old, &item.entry) => {
                        progress.advance(item.entry.size);
                        Job::Reuse(old)
                    }
                    _ if item.entry.kind == EntryKind::File => Job::Read(item),
                    _ => Job::Reuse(item.entry),
                };
                if let Job::Read(item) = &job {
                    let holds_kib = item.entry.size.min(largest_chunk).div_ceil(1024).max(1);
                    let current = batches.last_mut().expect("one batch at least");
                    if current.reads > 0
                        && (current.reads >= BATCH_FILES
                            || current.holds_kib + holds_kib > BATCH_KIB)
                    {
                        batches.push(Batch::default());
                    }
                    let current = batches.last_mut().expect("one batch at least");
                    current.reads += 1;
                    current.holds_kib += holds_kib;
                }
                batches
                    .last_mut()
                    .expect("one batch at least")
                    .jobs
                    .push(job);
            }
            let results: Vec<Result<Vec<(Entry, bool, u64)>>> = futures_util::stream::iter(batches)
                .map(|batch| {
                    let tx = tx.clone();
                    let key = self.key.clone();
                    let claimed = claimed.clone();
                    let chunker = self.config.chunker;
                    let budget = budget.clone();
                    async move {
                        if batch.reads == 0 {
                            // Nothing to read: no thread handoff, no budget.
                            return batch.run(&key, chunker, &claimed, &tx);
                        }
                        let want = batch.holds_kib.min(u64::from(READ_BUDGET_KIB)) as u32;
                        let reserved = budget
                            .acquire_many_owned(want)
                            .await
                            .map_err(|e| Error::new(ErrorKind::Io, format!("read budget: {e}")))?;
                        tokio::task::spawn_blocking(move || {
                            let done = batch.run(&key, chunker, &claimed, &tx);
                            drop(reserved);
                            done
                        })
                        .await
                        .map_err(|e| Error::new(ErrorKind::Io, format!("read task failed: {e}")))?
                    }
                })
                .buffered(BATCHES_IN_FLIGHT)
                .collect()
                .await;
            let mut entries = Vec::new();
            for batch in results {
                for (entry, read, new) in batch? {
                    if read {
                        files_read += 1;
                        progress.advance(entry.size);
                    }
                    bytes_new += new;
                    entries.push(entry);
                }
            }
            snapshot_sources.push(SnapshotSource {
                name: source.name,
                origin: source.origin.display().to_string(),
                single_file: source.single_file,
                entries,
            });
        }
        drop(tx);
        let (packs, mut bytes_stored) = packer
            .await
            .map_err(|e| Error::new(ErrorKind::Io, format!("pack writer failed: {e}")))??;
        if !packs.is_empty() {
            let index_id = random_id();
            bytes_stored += self
                .store_sealed_json(
                    &format!("index/{index_id}"),
                    &format!("index:{index_id}"),
                    &IndexFile { packs },
                )
                .await?;
        }
        let source_digest = sources::digest_entries(
            snapshot_sources
                .iter()
                .map(|s| (s.name.as_str(), s.entries.as_slice())),
        );
        let snapshot = Snapshot {
            time: now_rfc3339(),
            hostname: hostname(),
            sources: snapshot_sources,
            labels: labels.clone(),
            parent: parent_id,
            source_digest: source_digest.clone(),
        };
        let id = random_id();
        bytes_stored += self.store_manifest(&id, &snapshot).await?;
        Ok(SnapshotSummary {
            id,
            time: snapshot.time.clone(),
            files: snapshot.file_count(),
            files_read,
            bytes: snapshot.total_bytes(),
            bytes_new,
            bytes_stored,
            source_digest,
        })
    }
}

/// A manifest's entries by source name and path, moved out of it (no copies).
fn entries_by_path(manifest: Snapshot) -> HashMap<String, HashMap<String, Entry>> {
    manifest
        .sources
        .into_iter()
        .map(|s| {
            let by_path = s.entries.into_iter().map(|e| (e.path.clone(), e));
            (s.name, by_path.collect())
        })
        .collect()
}

enum Job {
    Reuse(Entry),
    Read(Item),
}

/// Consecutive jobs handed to one blocking thread.
#[derive(Default)]
struct Batch {
    jobs: Vec<Job>,
    reads: usize,
    /// What its reads hold at most at once, in KiB (see `READ_BUDGET_KIB`).
    holds_kib: u64,
}

pub(super) struct SealedBlob {
    pub(super) id: BlobId,
    pub(super) sealed: Vec<u8>,
    pub(super) raw_length: u32,
}

impl Batch {
    /// Runs the jobs in order (blocking when any reads): each file's entry, whether it was
    /// read, and the bytes of blobs it added.
    fn run(
        self,
        key: &MasterKey,
        chunker: ChunkerParams,
        claimed: &Mutex<HashSet<BlobId>>,
        tx: &mpsc::Sender<SealedBlob>,
    ) -> Result<Vec<(Entry, bool, u64)>> {
        self.jobs
            .into_iter()
            .map(|job| match job {
                Job::Reuse(entry) => Ok((entry, false, 0)),
                Job::Read(item) => {
                    read_file(item, key, chunker, claimed, tx).map(|(e, new)| (e, true, new))
                }
            })
            .collect()
    }
}

/// Reads, chunks, hashes and seals one file (a blocking task). Returns its entry and the
/// bytes of blobs it added.
fn read_file(
    item: Item,
    key: &MasterKey,
    chunker: ChunkerParams,
    claimed: &Mutex<HashSet<BlobId>>,
    tx: &mpsc::Sender<SealedBlob>,
) -> Result<(Entry, u64)> {
    let mut entry = item.entry;
    let mut file = std::fs::File::open(&item.abs).map_err(|e| Error::io(&item.abs, "read", e))?;
    let mut hasher = blake3::Hasher::new();
    let mut size = 0u64;
    let mut new_bytes = 0u64;
    let mut add_chunk = |data: &[u8]| -> Result<()> {
        hasher.update(data);
        size += data.len() as u64;
        let id = key.blob_id(data);
        entry.chunks.push(id);
        let fresh = claimed
            .lock()
            .map(|mut set| set.insert(id))
            .unwrap_or(false);
        if fresh {
            new_bytes += data.len() as u64;
            let sealed = seal_framed(key, format!("blob:{}", id.to_hex()).as_bytes(), data);
            let blob = SealedBlob {
                id,
                sealed,
                raw_length: data.len() as u32,
            };
            tx.blocking_send(blob).map_err(|_| {
                Error::new(
                    ErrorKind::Storage,
                    "the pack writer stopped; see the error before this one",
                )
            })?;
        }
        Ok(())
    };
    let read_error = |e: std::io::Error| Error::io(&item.abs, "read", e);
    if entry.size <= u64::from(chunker.max_size) {
        // Small files (most pipeline configuration) are read whole and cut in memory: the
        // streaming chunker zeroes a max-size buffer per file, which costs more than the file.
        let mut data = Vec::with_capacity(entry.size as usize);
        std::io::Read::read_to_end(&mut file, &mut data).map_err(read_error)?;
        let cuts = fastcdc::v2020::FastCDC::new(
            &data,
            chunker.min_size,
            chunker.avg_size,
            chunker.max_size,
        );
        for cut in cuts {
            add_chunk(&data[cut.offset..cut.offset + cut.length])?;
        }
    } else {
        let reader = std::io::BufReader::with_capacity(256 * 1024, file);
        let cdc = fastcdc::v2020::StreamCDC::new(
            reader,
            chunker.min_size,
            chunker.avg_size,
            chunker.max_size,
        );
        for chunk in cdc {
            let chunk = chunk.map_err(|e| read_error(std::io::Error::other(e.to_string())))?;
            add_chunk(&chunk.data)?;
        }
    }
    // A file that changed while being read records what was read.
    entry.size = size;
    entry.digest = Some(hasher.finalize().to_hex().to_string());
    Ok((entry, new_bytes))
}

/// Batches read at once at most; the budget below admits fewer when they hold much.
const BATCHES_IN_FLIGHT: usize = 8;

/// A batch ends after this many files to read, or when its files hold this many KiB.
const BATCH_FILES: usize = 64;
const BATCH_KIB: u64 = 1024;

/// What the batches being read may hold at once, in KiB: four large files (each reserves the
/// largest chunk size), or eight batches of small ones.
const READ_BUDGET_KIB: u32 = 16 * 1024;

/// Packs uploaded at once: the next pack fills while the previous one is written (a local
/// write ends with an fsync, an object store with a round trip).
const PACK_UPLOADS_IN_FLIGHT: usize = 2;

/// Collects sealed blobs into packs of about `target` bytes and uploads each; returns the packs
/// written and the bytes stored.
pub(super) async fn pack_writer(
    storage: Storage,
    key: Arc<MasterKey>,
    target: usize,
    mut rx: mpsc::Receiver<SealedBlob>,
) -> Result<(Vec<PackEntry>, u64)> {
    let mut packs = Vec::new();
    let mut stored = 0u64;
    let mut buf: Vec<u8> = Vec::new();
    let mut blobs: Vec<BlobLocation> = Vec::new();
    let mut uploads = std::collections::VecDeque::new();
    let finish = |upload: tokio::task::JoinHandle<Result<(PackEntry, u64)>>| async move {
        upload
            .await
            .map_err(|e| Error::new(ErrorKind::Io, format!("pack upload failed: {e}")))?
    };
    while let Some(blob) = rx.recv().await {
        blobs.push(BlobLocation {
            id: blob.id,
            offset: buf.len() as u64,
            length: blob.sealed.len() as u32,
            raw_length: blob.raw_length,
        });
        buf.extend_from_slice(&blob.sealed);
        if buf.len() >= target {
            if uploads.len() >= PACK_UPLOADS_IN_FLIGHT {
                if let Some(oldest) = uploads.pop_front() {
                    let (pack, len) = finish(oldest).await?;
                    packs.push(pack);
                    stored += len;
                }
            }
            uploads.push_back(tokio::spawn(upload_pack(
                storage.clone(),
                key.clone(),
                std::mem::take(&mut buf),
                std::mem::take(&mut blobs),
            )));
        }
    }
    if !blobs.is_empty() {
        uploads.push_back(tokio::spawn(upload_pack(storage, key, buf, blobs)));
    }
    for upload in uploads {
        let (pack, len) = finish(upload).await?;
        packs.push(pack);
        stored += len;
    }
    Ok((packs, stored))
}

/// Appends the sealed header (so an index can be rebuilt from packs alone) and uploads.
async fn upload_pack(
    storage: Storage,
    key: Arc<MasterKey>,
    mut buf: Vec<u8>,
    blobs: Vec<BlobLocation>,
) -> Result<(PackEntry, u64)> {
    let id = random_id();
    let header =
        serde_json::to_vec(&blobs).map_err(|e| Error::new(ErrorKind::Io, e.to_string()))?;
    let sealed_header = key.seal(format!("pack:{id}").as_bytes(), &header);
    buf.extend_from_slice(&sealed_header);
    buf.extend_from_slice(&(sealed_header.len() as u32).to_le_bytes());
    let bytes = Bytes::from(buf);
    let len = bytes.len() as u64;
    storage.put_new(&pack_key(&id), bytes).await?;
    Ok((PackEntry { id, blobs }, len))
}
