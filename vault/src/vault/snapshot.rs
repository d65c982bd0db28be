//! Taking a snapshot: scan, reuse unchanged files, chunk/hash/seal the rest on blocking
//! threads, pack, then write the index and, last, the manifest.

use super::{hostname, now_rfc3339, seal_framed, Budget, Progress, SnapshotSummary, Vault};
use crate::chunker::Chunker;
use crate::crypto::{random_id, BlobId, MasterKey};
use crate::error::{Error, ErrorKind, Result};
use crate::format::{
    BlobLocation, Entry, EntryKind, IndexFile, PackEntry, Snapshot, SnapshotSource,
};
use crate::locks::LockGuard;
use crate::sources::{self, Item, SourceSpec};
use crate::storage::{ObjectWriter, Storage};
use bytes::Bytes;
use futures_util::StreamExt as _;
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};

/// Sources being scanned (metadata only) on blocking threads, started ahead of the snapshot
/// so the scan overlaps other work: the key derivation when a command opens the vault, and
/// reading the previous manifest.
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
        let lock = self.lock(false).await?;
        let summary = self.snapshot_locked(scan, labels, progress, &lock).await;
        lock.release().await?;
        summary
    }

    async fn snapshot_locked(
        &self,
        scan: PendingScan,
        labels: &BTreeMap<String, String>,
        progress: &dyn Progress,
        lock: &LockGuard,
    ) -> Result<SnapshotSummary> {
        // Unchanged files are recognised from the newest snapshot of the same series, whose
        // manifest is read while the scan runs.
        let series = labels.get(super::SERIES_LABEL).map_or("", String::as_str);
        let parent = async {
            let Some(id) = self.latest_in_series(series).await? else {
                return Ok((None, HashMap::new()));
            };
            // A parent whose manifest does not open (its summary listed fine) only costs this
            // snapshot its shortcut: every file is read (and deduplicated by the index).
            match self.load_snapshot(&id).await {
                Ok(manifest) => Ok::<_, Error>((Some(id), entries_by_source(manifest))),
                Err(e) if e.kind == ErrorKind::Corrupt => Ok((None, HashMap::new())),
                Err(e) => Err(e),
            }
        };
        let (mut scanned, (parent_id, mut previous)) = tokio::try_join!(scan.finish(), parent)?;
        if self.config.format_version < super::FORMAT_3 {
            sources::keep_only_format_2_fields(&mut scanned);
        }

        let total: u64 = scanned
            .iter()
            .flat_map(|s| &s.items)
            .map(|i| i.entry.size)
            .sum();
        let special_files_skipped = scanned.iter().map(|s| s.special_skipped).sum();
        progress.phase("snapshot", total);
        let largest_chunk = u64::from(self.config.chunker.max_size);
        let planned: Vec<(sources::Scanned, Vec<ReadBatch>)> = scanned
            .into_iter()
            .map(|mut source| {
                let before = previous.remove(&source.name).unwrap_or_default();
                let items = std::mem::take(&mut source.items);
                let batches = batch_jobs(items, before, largest_chunk, progress);
                (source, batches)
            })
            .collect();
        // The index (which blobs the vault holds) is read only when some file must be read.
        let any_reads = planned.iter().flat_map(|(_, b)| b).any(|b| b.reads > 0);
        let held = if any_reads {
            self.load_index().await?.into_keys().collect()
        } else {
            HashSet::new()
        };
        let claimed: Arc<Mutex<HashSet<BlobId>>> = Arc::new(Mutex::new(held));
        let chunker = Arc::new(self.chunker());

        let (tx, rx) = blob_queue();
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
        let budget = Budget::new(READ_BUDGET_KIB, "read");
        let mut files_read = 0usize;
        let mut bytes_new = 0u64;
        let read = async {
            let mut snapshot_sources = Vec::new();
            for (source, batches) in planned {
                let mut entries = Vec::with_capacity(batches.iter().map(|b| b.jobs.len()).sum());
                let mut results = futures_util::stream::iter(batches)
                    .map(|batch| {
                        let tx = tx.clone();
                        let key = self.key.clone();
                        let claimed = claimed.clone();
                        let chunker = chunker.clone();
                        let budget = budget.clone();
                        async move {
                            let holds = batch.holds_kib;
                            let job = move || batch.run(&key, &chunker, &claimed, &tx);
                            budget.run_blocking(holds, job).await
                        }
                    })
                    .buffered(BATCHES_IN_FLIGHT);
                // In order, as each batch is done: progress moves while files are read.
                while let Some(batch) = results.next().await {
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
            Ok::<_, Error>(snapshot_sources)
        }
        .await;
        drop(tx);
        let written = packer
            .await
            .map_err(|e| Error::new(ErrorKind::Io, format!("pack writer failed: {e}")))?;
        // When both fail, the pack writer's error is the cause: the readers only saw it stop.
        let (snapshot_sources, (packs, mut bytes_stored)) = match (read, written) {
            (Ok(sources), Ok(written)) => (sources, written),
            (_, Err(e)) | (Err(e), Ok(_)) => return Err(e),
        };
        crate::hooks::stop_point("snapshot-commit");
        // Its packs are written; committing them (index, then manifest) is safe only if no
        // prune could have judged this writer gone meanwhile.
        lock.check_held()?;
        if !packs.is_empty() {
            let index_id = random_id();
            bytes_stored += self
                .store_sealed_json(
                    &crate::layout::index(&index_id),
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
        lock.check_held()?;
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
            special_files_skipped,
        })
    }
}

/// A manifest's entries by source name, in the order they were scanned (moved, not copied).
fn entries_by_source(manifest: Snapshot) -> HashMap<String, Vec<Entry>> {
    manifest
        .sources
        .into_iter()
        .map(|s| (s.name, s.entries))
        .collect()
}

enum Job {
    Reuse(Entry),
    Read(Item),
}

/// Sorts a source's items into reused entries and files to read, in order, and groups them
/// into batches for blocking threads: small files together, each large file alone.
/// The parent's entries are matched by [`sources::Matcher`].
fn batch_jobs(
    items: Vec<Item>,
    before: Vec<Entry>,
    largest_chunk: u64,
    progress: &dyn Progress,
) -> Vec<ReadBatch> {
    let mut batches = vec![ReadBatch::default()];
    let mut reused_bytes = 0;
    let mut before = sources::Matcher::new(before);
    for item in items {
        let job = match before.take(&item.entry.path) {
            Some(mut old) if sources::unchanged(&old, &item.entry) => {
                reused_bytes += item.entry.size;
                // What the scan saw now: a parent that did not record change time and inode
                // (a snapshot replicated from an older vault) must not leave them unrecorded
                // for good, or later rewrites that keep the mtime would go unseen.
                old.ctime_ns = item.entry.ctime_ns;
                old.inode = item.entry.inode;
                Job::Reuse(old)
            }
            _ if item.entry.kind == EntryKind::File => Job::Read(item),
            _ => Job::Reuse(item.entry),
        };
        if let Job::Read(item) = &job {
            let holds_kib = item.entry.size.min(largest_chunk).div_ceil(1024).max(1);
            let current = batches.last_mut().expect("one batch at least");
            if current.reads > 0
                && (current.reads >= BATCH_FILES || current.holds_kib + holds_kib > BATCH_KIB)
            {
                batches.push(ReadBatch::default());
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
    progress.advance(reused_bytes);
    batches
}

/// Consecutive jobs handed to one blocking thread.
#[derive(Default)]
struct ReadBatch {
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

/// What sealed blobs waiting for the pack writer may hold, in KiB. Blobs range from a few
/// bytes to the largest chunk, so a count of blobs bounds nothing (16 large ones were 64 MiB).
const QUEUED_KIB: u32 = 4 * 1024;

/// The sending side of the queue to the pack writer, bounded by bytes.
#[derive(Clone)]
pub(super) struct BlobSender {
    tx: mpsc::UnboundedSender<(SealedBlob, OwnedSemaphorePermit)>,
    room: Arc<Semaphore>,
}

/// The receiving side. Dropped (the pack writer stopped), it closes the room too, so a sender
/// waiting for room fails at once instead of waiting for permits nobody will return.
pub(super) struct BlobReceiver {
    rx: mpsc::UnboundedReceiver<(SealedBlob, OwnedSemaphorePermit)>,
    room: Arc<Semaphore>,
}

impl BlobReceiver {
    async fn recv(&mut self) -> Option<(SealedBlob, OwnedSemaphorePermit)> {
        self.rx.recv().await
    }
}

impl Drop for BlobReceiver {
    fn drop(&mut self) {
        self.room.close();
    }
}

/// A queue of sealed blobs to [`pack_writer`] holding at most [`QUEUED_KIB`] (one blob larger
/// than that goes alone).
pub(super) fn blob_queue() -> (BlobSender, BlobReceiver) {
    let (tx, rx) = mpsc::unbounded_channel();
    let room = Arc::new(Semaphore::new(QUEUED_KIB as usize));
    let receiver = BlobReceiver {
        rx,
        room: room.clone(),
    };
    (BlobSender { tx, room }, receiver)
}

impl BlobSender {
    /// Waits for room, then queues the blob.
    ///
    /// # Errors
    /// `Storage` when the pack writer has stopped (its own error says why).
    pub(super) async fn send(&self, blob: SealedBlob) -> Result<()> {
        let kib = (blob.sealed.len().div_ceil(1024) as u32).clamp(1, QUEUED_KIB);
        let permit = self.room.clone().acquire_many_owned(kib).await;
        permit
            .ok()
            .and_then(|permit| self.tx.send((blob, permit)).ok())
            .ok_or_else(|| {
                Error::new(
                    ErrorKind::Storage,
                    "the pack writer stopped; see the error before this one",
                )
            })
    }

    /// [`BlobSender::send`] from a blocking thread.
    pub(super) fn send_blocking(&self, blob: SealedBlob) -> Result<()> {
        tokio::runtime::Handle::current().block_on(self.send(blob))
    }
}

impl ReadBatch {
    /// Runs the jobs in order, on a blocking thread: each file's entry, whether it was read,
    /// and the bytes of blobs it added.
    fn run(
        self,
        key: &MasterKey,
        chunker: &Chunker,
        claimed: &Mutex<HashSet<BlobId>>,
        tx: &BlobSender,
    ) -> Result<Vec<(Entry, bool, u64)>> {
        // Sized up front: collecting `Result`s cannot know the length (a no-change snapshot's
        // one batch holds every entry).
        let mut done = Vec::with_capacity(self.jobs.len());
        for job in self.jobs {
            done.push(match job {
                Job::Reuse(entry) => (entry, false, 0),
                Job::Read(item) => {
                    let (entry, new) = read_file(item, key, chunker, claimed, tx)?;
                    (entry, true, new)
                }
            });
        }
        Ok(done)
    }
}

/// Reads, chunks, hashes and seals one file (a blocking task). Returns its entry and the
/// bytes of blobs it added.
fn read_file(
    item: Item,
    key: &MasterKey,
    chunker: &Chunker,
    claimed: &Mutex<HashSet<BlobId>>,
    tx: &BlobSender,
) -> Result<(Entry, u64)> {
    let mut entry = item.entry;
    let mut file = sources::open_regular(&item.abs)?;
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
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(id);
        if fresh {
            new_bytes += data.len() as u64;
            let sealed = seal_framed(key, format!("blob:{}", id.to_hex()).as_bytes(), data);
            let blob = SealedBlob {
                id,
                sealed,
                raw_length: data.len() as u32,
            };
            tx.send_blocking(blob)?;
        }
        Ok(())
    };
    let read_error = |e: std::io::Error| Error::io(&item.abs, "read", e);
    if entry.size <= chunker.max_size() as u64 {
        // Small files (most pipeline configuration) are read whole and cut in memory: a
        // streaming buffer of the largest chunk's size costs more than such a file.
        let mut data = Vec::with_capacity(entry.size as usize);
        std::io::Read::read_to_end(&mut file, &mut data).map_err(read_error)?;
        for cut in chunker.chunks(&data) {
            add_chunk(&data[cut])?;
        }
    } else {
        let reader = std::io::BufReader::with_capacity(256 * 1024, file);
        chunker.stream(reader, read_error, &mut add_chunk)?;
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

/// What full packs being finished at once (header written, then locally an fsync and a
/// rename, on object stores the upload's completion) may hold of their last parts, in bytes.
/// A local fsync of a 16 MiB pack took 20-100 ms, at times longer than filling the next pack,
/// and with one at a time the writer waited for each. Locally (1 MiB parts) this lets four
/// finish at once; on object stores (5 MiB parts, each finishing pack holding up to three)
/// one. First snapshot of the benchmark tree, four runs each: 6.26 s mean with four at a
/// time, 6.45 s with one (the VM's noise is ±0.4 s).
const FINISHING_BYTES: usize = 12 * 1024 * 1024;

/// Collects sealed blobs into packs of about `target` bytes, writing each blob into its pack
/// as it comes (a pack is never held whole in memory); full packs are finished while the next
/// ones fill. Returns the packs written and the bytes stored.
pub(super) async fn pack_writer(
    storage: Storage,
    key: Arc<MasterKey>,
    target: usize,
    mut rx: BlobReceiver,
) -> Result<(Vec<PackEntry>, u64)> {
    let at_once = (FINISHING_BYTES / storage.bytes_held_by_a_finishing_write()).max(1);
    let mut packs = Packs::default();
    let written = write_packs(&storage, &key, target, &mut rx, at_once, &mut packs).await;
    // Every pack started is awaited, also after an error: none is still being written once
    // the snapshot's lock is released (the packs of a failed snapshot are in no index, and
    // prune deletes them).
    let mut first_error = written.err();
    while let Some(task) = packs.finishing.pop_front() {
        if let Err(e) = packs.take(task).await {
            first_error.get_or_insert(e);
        }
    }
    match first_error {
        Some(e) => Err(e),
        None => Ok((packs.finished, packs.stored)),
    }
}

/// The packs of one writer: being finished, and finished.
#[derive(Default)]
struct Packs {
    finishing: VecDeque<tokio::task::JoinHandle<Result<(PackEntry, u64)>>>,
    finished: Vec<PackEntry>,
    stored: u64,
}

impl Packs {
    /// Starts finishing `pack`, first waiting for the oldest pack being finished when
    /// `at_once` are.
    async fn finish(&mut self, pack: OpenPack, key: &Arc<MasterKey>, at_once: usize) -> Result<()> {
        if self.finishing.len() >= at_once {
            let oldest = self.finishing.pop_front().expect("a pack being finished");
            if let Err(e) = self.take(oldest).await {
                pack.writer.abort().await;
                return Err(e);
            }
        }
        self.finishing
            .push_back(tokio::spawn(pack.finish(key.clone())));
        Ok(())
    }

    /// Waits for a pack being finished and records it.
    async fn take(
        &mut self,
        task: tokio::task::JoinHandle<Result<(PackEntry, u64)>>,
    ) -> Result<()> {
        let (pack, len) = task
            .await
            .map_err(|e| Error::new(ErrorKind::Io, format!("pack upload failed: {e}")))??;
        self.finished.push(pack);
        self.stored += len;
        Ok(())
    }
}

/// Writes blobs into packs until the queue closes; full packs, and the last one, go to
/// `packs.finishing`, where at most `at_once` are unfinished while blobs still come.
async fn write_packs(
    storage: &Storage,
    key: &Arc<MasterKey>,
    target: usize,
    rx: &mut BlobReceiver,
    at_once: usize,
    packs: &mut Packs,
) -> Result<()> {
    let mut open: Option<OpenPack> = None;
    loop {
        // A pack open for MAX_PACK_OPEN is finished even if not full: an object store may
        // stamp a multipart object with the time its upload began, and prune spares packs by
        // that age (FORMAT.md, "Prune").
        let next = match &open {
            Some(pack) => {
                let deadline = pack.opened + MAX_PACK_OPEN;
                match tokio::time::timeout_at(deadline, rx.recv()).await {
                    Ok(next) => next,
                    Err(_) => {
                        let aged = open.take().expect("the open pack");
                        packs.finish(aged, key, at_once).await?;
                        continue;
                    }
                }
            }
            None => rx.recv().await,
        };
        let Some((blob, queued)) = next else { break };
        let pack = match &mut open {
            Some(pack) => pack,
            None => open.insert(OpenPack::start(storage).await?),
        };
        if let Err(e) = pack.add(blob).await {
            if let Some(pack) = open.take() {
                pack.writer.abort().await;
            }
            return Err(e);
        }
        drop(queued);
        if pack.len >= target as u64 {
            let full = open.take().expect("the pack just written to");
            packs.finish(full, key, at_once).await?;
        }
    }
    if let Some(pack) = open {
        packs
            .finishing
            .push_back(tokio::spawn(pack.finish(key.clone())));
    }
    Ok(())
}

/// The longest a pack stays open (see `write_packs`).
const MAX_PACK_OPEN: std::time::Duration = std::time::Duration::from_secs(120);

/// Pack headers are padded to a multiple of this many bytes.
const HEADER_PADDING: usize = 4096;

/// A pack being written: its blobs so far, where they are, and its length.
struct OpenPack {
    id: String,
    writer: ObjectWriter,
    blobs: Vec<BlobLocation>,
    len: u64,
    opened: tokio::time::Instant,
}

impl OpenPack {
    async fn start(storage: &Storage) -> Result<OpenPack> {
        let id = random_id();
        let writer = storage.writer_for_new(&crate::layout::pack(&id)).await?;
        Ok(OpenPack {
            id,
            writer,
            blobs: Vec::new(),
            len: 0,
            opened: tokio::time::Instant::now(),
        })
    }

    async fn add(&mut self, blob: SealedBlob) -> Result<()> {
        self.blobs.push(BlobLocation {
            id: blob.id,
            offset: self.len,
            length: blob.sealed.len() as u32,
            raw_length: blob.raw_length,
        });
        self.len += blob.sealed.len() as u64;
        self.writer.write(Bytes::from(blob.sealed)).await
    }

    /// Appends the sealed header (so an index can be rebuilt from packs alone) and its
    /// length, and makes the pack appear.
    async fn finish(mut self, key: Arc<MasterKey>) -> Result<(PackEntry, u64)> {
        let mut header = serde_json::to_vec(&self.blobs)
            .map_err(|e| Error::new(ErrorKind::Io, e.to_string()))?;
        // Padded with spaces (which JSON readers of every version skip) to a multiple of
        // 4 KiB: a header's length would otherwise count the pack's blobs for anyone who can
        // list the bucket.
        header.resize(header.len().next_multiple_of(HEADER_PADDING), b' ');
        let mut sealed_header = key.seal(format!("pack:{}", self.id).as_bytes(), &header);
        let header_len = sealed_header.len() as u32;
        sealed_header.extend_from_slice(&header_len.to_le_bytes());
        let len = self.len + sealed_header.len() as u64;
        let written = self.writer.write(Bytes::from(sealed_header)).await;
        match written {
            Ok(()) => self.writer.finish().await?,
            Err(e) => {
                self.writer.abort().await;
                return Err(e);
            }
        }
        Ok((
            PackEntry {
                id: self.id,
                blobs: self.blobs,
            },
            len,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A pack that stops receiving blobs is finished once it has been open for
    /// MAX_PACK_OPEN, without waiting for more blobs or for the queue to close: an object
    /// store may date it by its upload's start, and prune spares packs by that age.
    #[tokio::test(start_paused = true)]
    async fn a_pack_open_past_the_limit_is_finished_without_waiting() {
        let storage = Storage::memory();
        let (tx, rx) = blob_queue();
        let writer = tokio::spawn(pack_writer(
            storage.clone(),
            Arc::new(MasterKey::generate()),
            16 << 20,
            rx,
        ));
        let blob = |n: u8| SealedBlob {
            id: BlobId([n; 32]),
            sealed: vec![n; 100],
            raw_length: 59,
        };
        tx.send(blob(1)).await.unwrap();
        tokio::time::sleep(MAX_PACK_OPEN - std::time::Duration::from_secs(5)).await;
        assert!(
            storage.list("data").await.unwrap().is_empty(),
            "finished early"
        );
        tokio::time::sleep(std::time::Duration::from_secs(10)).await;
        assert_eq!(storage.list("data").await.unwrap().len(), 1);
        // The next blob goes into a new pack.
        tx.send(blob(2)).await.unwrap();
        drop(tx);
        let (packs, _) = writer.await.unwrap().unwrap();
        assert_eq!(packs.len(), 2);
        assert_eq!(storage.list("data").await.unwrap().len(), 2);
    }

    /// A file reused from a parent that did not record its change time and inode (one
    /// replicated from an older vault) gets them from the scan, so the next snapshot compares
    /// them: a later rewrite that keeps the mtime is then seen.
    #[test]
    fn a_reused_entry_records_the_change_time_and_inode_seen_now() {
        let stored = Entry {
            path: "ci.yml".into(),
            size: 5,
            mtime_ns: 1,
            mode: 0o644,
            digest: Some("0".repeat(64)),
            ..Entry::default()
        };
        let seen = Item {
            entry: Entry {
                ctime_ns: 42,
                inode: 7,
                ..stored.clone()
            },
            abs: "/src/ci.yml".into(),
        };
        let batches = batch_jobs(vec![seen], vec![stored], 4096, &super::super::NoProgress);
        let [Job::Reuse(entry)] = &batches[0].jobs[..] else {
            panic!("not reused");
        };
        assert_eq!((entry.ctime_ns, entry.inode), (42, 7));
    }
}
