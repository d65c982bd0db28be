//! Taking a snapshot, as a stream: the scan finds items in scan order; each is matched
//! against the parent snapshot's entry at its path and reused when unchanged, or read,
//! chunked, hashed and sealed on blocking threads; entries are encoded into the manifest as
//! they come back. Packs are written first, then the index, then the manifest, so an
//! interrupted snapshot leaves no visible half snapshot. What is held at once is bounded
//! whatever the tree: holding the whole scan, the planned reads and the new entries together
//! cost about 0.8 KiB a file (250 MB at 300 000 files).

use super::budget::Budget;
use super::{hostname, Progress, SnapshotSummary, Vault};
use crate::chunker::Chunker;
use crate::crypto::{random_id, BlobId, MasterKey};
use crate::error::{Error, ErrorKind, Result};
use crate::format::{Entry, EntryKind, ManifestSummary, Snapshot, SnapshotSource};
use crate::locks::LockGuard;
use crate::manifest::{self, ManifestEntries};
use crate::repo::packer::{blob_queue, pack_writer, BlobSender, SealedBlob};
use crate::sources::{self, Item, SourceHead, SourceSpec, Walked};
use futures_util::{Stream, StreamExt as _};
use std::collections::{BTreeMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc;

/// Sources being scanned on other threads, started ahead of the snapshot so the scan overlaps
/// other work: the key derivation when a command opens the vault, and reading the previous
/// manifest. It runs about [`WALK_AHEAD`] + [`SCAN_AHEAD`] batches ahead of the snapshot at
/// most, then waits.
pub struct PendingScan {
    parts: mpsc::Receiver<Result<ScanPart>>,
    /// Bytes of the files scanned so far: the snapshot's progress total, which grows as the
    /// scan runs ahead (the total of a tree is only known once it is walked).
    found: Arc<AtomicU64>,
}

/// What the scan hands the snapshot, in scan order.
enum ScanPart {
    Source(SourceHead),
    Items {
        items: Vec<Item>,
        special_skipped: usize,
    },
    /// The scan is complete: a scan that stopped without it (a panic) must not pass for one.
    End,
}

impl PendingScan {
    /// Starts scanning `specs`. Needs a Tokio runtime.
    pub fn start(specs: &[SourceSpec]) -> PendingScan {
        let specs = specs.to_vec();
        // The walk reads directories on one thread; the metadata of what it finds is read on
        // several others (each `lstat` may wait on the disk), batches kept in order.
        let (walked_tx, mut walked_rx) = mpsc::channel::<Result<Option<Walked>>>(WALK_AHEAD);
        tokio::task::spawn_blocking(move || {
            let walked = sources::walk(&specs, &mut |found| {
                walked_tx
                    .blocking_send(Ok(Some(found)))
                    .map_err(|_| scan_stopped())
            });
            let _ = walked_tx.blocking_send(walked.map(|()| None));
        });
        let (tx, rx) = mpsc::channel(SCAN_AHEAD);
        let found = Arc::new(AtomicU64::new(0));
        let counted = found.clone();
        tokio::spawn(async move {
            let walked = futures_util::stream::poll_fn(move |cx| walked_rx.poll_recv(cx));
            let mut parts = walked
                .map(|found| async move {
                    Ok(match found? {
                        None => ScanPart::End,
                        Some(Walked::Source(head)) => ScanPart::Source(head),
                        Some(Walked::Item(item)) => ScanPart::Items {
                            items: vec![item],
                            special_skipped: 0,
                        },
                        Some(Walked::Paths(paths)) => {
                            let (items, special_skipped) =
                                tokio::task::spawn_blocking(move || sources::stat_paths(paths))
                                    .await
                                    .map_err(|e| {
                                        Error::new(ErrorKind::Io, format!("scan task failed: {e}"))
                                    })??;
                            ScanPart::Items {
                                items,
                                special_skipped,
                            }
                        }
                    })
                })
                .buffered(sources::STAT_THREADS);
            while let Some(part) = parts.next().await {
                if let Ok(ScanPart::Items { items, .. }) = &part {
                    let bytes = items.iter().map(|i| i.entry.size).sum();
                    counted.fetch_add(bytes, Ordering::Relaxed);
                }
                let last = !matches!(part, Ok(ScanPart::Source(_) | ScanPart::Items { .. }));
                if tx.send(part).await.is_err() || last {
                    break;
                }
            }
        });
        PendingScan { parts: rx, found }
    }
}

fn scan_stopped() -> Error {
    Error::new(ErrorKind::Io, "the scan stopped before it finished")
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
        // manifest is read while the scan runs ahead.
        let series = labels.get(super::SERIES_LABEL).map_or("", String::as_str);
        let (parent_id, previous) = self.parent_entries(series).await?;
        progress.phase("snapshot", 0);
        let planner = Planner::new(
            previous,
            self.config.format_version < super::FORMAT_3,
            u64::from(self.config.chunker.max_size),
            progress,
        );
        // Every blob id of the vault, read when the first file must be read (a no-change
        // snapshot reads none), so a file already stored is not stored twice.
        let claimed = tokio::sync::OnceCell::<Arc<Mutex<HashSet<BlobId>>>>::new();
        let chunker = Arc::new(self.chunker());
        let (tx, rx) = blob_queue();
        let packer = tokio::spawn(pack_writer(
            self.repo.clone(),
            self.config.pack_size as usize,
            rx,
        ));

        // Files are read in batches on blocking threads: many small files per batch (one
        // thread handoff per file cost more than reading it), a large file alone. Several
        // batches run at once so reads waiting on the disk overlap; each reserves what it holds
        // (file sizes up to the largest chunk) from a shared budget, which bounds memory.
        let budget = Budget::new(READ_BUDGET_KIB, "read");
        let mut manifest = NewManifest::new(self.config.format_version);
        let mut files_read = 0usize;
        let mut bytes_new = 0u64;
        let mut special_files_skipped = 0;
        let found = scan.found.clone();
        let mut found_reported = 0;
        let read = async {
            let claimed = &claimed;
            let mut done = std::pin::pin!(steps(scan, planner)
                .map(|step| {
                    let tx = tx.clone();
                    let key = self.repo.key().clone();
                    let chunker = chunker.clone();
                    let budget = budget.clone();
                    async move {
                        Ok(match step? {
                            Step::Source(head) => Done::Source(head),
                            Step::End { special_skipped } => Done::End { special_skipped },
                            // Nothing to read: no thread needed.
                            Step::Batch(batch) if batch.reads == 0 => {
                                Done::Entries(batch.run(&key, &chunker, &Mutex::default(), &tx)?)
                            }
                            Step::Batch(batch) => {
                                let claimed = claimed
                                    .get_or_try_init(|| async {
                                        let held = self.repo.blob_ids().await?;
                                        Ok::<_, Error>(Arc::new(Mutex::new(held)))
                                    })
                                    .await?
                                    .clone();
                                let holds = batch.holds_kib;
                                let job = move || batch.run(&key, &chunker, &claimed, &tx);
                                Done::Entries(budget.run_blocking(holds, job).await?)
                            }
                        })
                    }
                })
                .buffered(BATCHES_IN_FLIGHT));
            // In order, as each batch is done: progress moves while files are read.
            while let Some(done) = done.next().await {
                let found_now = found.load(Ordering::Relaxed);
                progress.found(found_now - found_reported);
                found_reported = found_now;
                match done? {
                    Done::Source(head) => manifest.begin_source(head),
                    Done::Entries(entries) => {
                        for (entry, read, new) in entries {
                            if read {
                                files_read += 1;
                                progress.advance(entry.size);
                            }
                            bytes_new += new;
                            manifest.push(entry)?;
                        }
                    }
                    Done::End { special_skipped } => special_files_skipped = special_skipped,
                }
            }
            Ok::<_, Error>(())
        }
        .await;
        drop(tx);
        // Every blob id of the vault, no longer needed: it is a tenth of what a snapshot of
        // 300 000 files holds, and the index and manifest are written next.
        drop(claimed);
        let written = packer
            .await
            .map_err(|e| Error::new(ErrorKind::Io, format!("pack writer failed: {e}")))?;
        // When both fail, the pack writer's error is the cause: the readers only saw it stop.
        let (packs, mut bytes_stored) = match (read, written) {
            (Ok(()), Ok(written)) => written,
            (_, Err(e)) | (Err(e), Ok(_)) => return Err(e),
        };
        crate::hooks::stop_point("snapshot-commit");
        // Its packs are written; committing them (index, then manifest) is safe only if no
        // prune could have judged this writer gone meanwhile.
        lock.check_held()?;
        if !packs.is_empty() {
            bytes_stored += self.repo.write_index(packs).await?;
        }
        let taken_at = crate::clock::now();
        let (parts, summary) = manifest.finish(
            crate::clock::rfc3339_nanos(taken_at),
            hostname(),
            parent_id,
            labels,
        )?;
        let (files, bytes, source_digest) =
            (summary.files, summary.bytes, summary.source_digest.clone());
        let id = random_id();
        lock.check_held()?;
        bytes_stored += self
            .store_manifest_parts(&id, parts, summary, bytes_stored)
            .await?;
        Ok(SnapshotSummary {
            id,
            time: taken_at,
            files: files as usize,
            files_read,
            bytes,
            bytes_new,
            bytes_stored,
            source_digest,
            special_files_skipped,
        })
    }

    /// The newest snapshot of `series` and its entries. A parent whose manifest does not
    /// open (its summary listed fine) only costs this snapshot its shortcut: every file is
    /// read (and deduplicated by the index).
    async fn parent_entries(&self, series: &str) -> Result<(Option<String>, ManifestEntries)> {
        let Some(id) = self.latest_in_series(series).await? else {
            return Ok((None, ManifestEntries::none()));
        };
        match self.repo.load_manifest_entries(&id).await {
            Ok(entries) => Ok((Some(id), entries)),
            Err(e) if e.kind == ErrorKind::Corrupt => Ok((None, ManifestEntries::none())),
            Err(e) => Err(e),
        }
    }
}

/// What the snapshot does next, in scan order.
enum Step {
    Source(SourceHead),
    Batch(ReadBatch),
    End { special_skipped: usize },
}

/// A step done: the entries of a batch, in order.
enum Done {
    Source(SourceHead),
    Entries(Vec<(Entry, bool, u64)>),
    End { special_skipped: usize },
}

/// The scan's parts as steps: batches of entries to reuse and files to read, between the
/// heads of the sources they belong to.
fn steps(scan: PendingScan, planner: Planner<'_>) -> impl Stream<Item = Result<Step>> + '_ {
    let state = (scan.parts, planner, VecDeque::new(), false);
    futures_util::stream::unfold(
        state,
        |(mut scan, mut planner, mut queue, mut ended)| async move {
            loop {
                if let Some(step) = queue.pop_front() {
                    return Some((Ok(step), (scan, planner, queue, ended)));
                }
                if ended {
                    return None;
                }
                match scan.recv().await.unwrap_or_else(|| Err(scan_stopped())) {
                    Ok(part) => {
                        ended = matches!(part, ScanPart::End);
                        planner.push(part, &mut queue);
                    }
                    Err(e) => return Some((Err(e), (scan, planner, queue, true))),
                }
            }
        },
    )
}

enum Job {
    Reuse(Entry),
    Read(Item),
}

/// Sorts scanned items into entries reused from the parent snapshot (files unchanged since,
/// directories, links) and files to read, and groups them into batches for blocking threads:
/// small files together, each large file alone, and no more than [`BATCH_JOBS`] entries.
/// The parent's entries are matched by [`sources::Parent`].
struct Planner<'p> {
    parent: sources::Parent,
    batch: ReadBatch,
    largest_chunk: u64,
    special_skipped: usize,
    progress: &'p dyn Progress,
}

impl<'p> Planner<'p> {
    fn new(
        previous: ManifestEntries,
        format_2: bool,
        largest_chunk: u64,
        progress: &'p dyn Progress,
    ) -> Self {
        Planner {
            parent: sources::Parent::new(previous, format_2),
            batch: ReadBatch::default(),
            largest_chunk,
            special_skipped: 0,
            progress,
        }
    }

    /// Plans what the scan found, adding the steps it completes to `out`.
    fn push(&mut self, part: ScanPart, out: &mut VecDeque<Step>) {
        match part {
            ScanPart::Source(head) => {
                self.flush(out);
                self.parent.begin(&head.name);
                out.push_back(Step::Source(head));
            }
            ScanPart::Items {
                items,
                special_skipped,
            } => {
                self.special_skipped += special_skipped;
                for item in items {
                    self.plan(item, out);
                }
            }
            ScanPart::End => {
                self.flush(out);
                out.push_back(Step::End {
                    special_skipped: self.special_skipped,
                });
            }
        }
    }

    fn plan(&mut self, mut item: Item, out: &mut VecDeque<Step>) {
        let job = match self.parent.unchanged(&mut item.entry) {
            Some(mut old) => {
                self.progress.advance(item.entry.size);
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
        let holds_kib = match &job {
            Job::Read(item) => item
                .entry
                .size
                .min(self.largest_chunk)
                .div_ceil(1024)
                .max(1),
            Job::Reuse(_) => 0,
        };
        let batch = &self.batch;
        let full = batch.jobs.len() >= BATCH_JOBS
            || (holds_kib > 0
                && batch.reads > 0
                && (batch.reads >= BATCH_FILES || batch.holds_kib + holds_kib > BATCH_KIB));
        if full {
            self.flush(out);
        }
        self.batch.reads += usize::from(holds_kib > 0);
        self.batch.holds_kib += holds_kib;
        self.batch.jobs.push(job);
    }

    fn flush(&mut self, out: &mut VecDeque<Step>) {
        if !self.batch.jobs.is_empty() {
            out.push_back(Step::Batch(std::mem::take(&mut self.batch)));
        }
    }
}

/// Consecutive jobs handed to one blocking thread.
#[derive(Default)]
struct ReadBatch {
    jobs: Vec<Job>,
    reads: usize,
    /// What its reads hold at most at once, in KiB (see `READ_BUDGET_KIB`).
    holds_kib: u64,
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
        // Sized up front: collecting `Result`s cannot know the length.
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
            let blob = SealedBlob::seal(key, id, data);
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

/// A batch ends after this many files to read, or when its files hold this many KiB, or
/// at this many entries (reused ones are most of a no-change snapshot's).
const BATCH_FILES: usize = 64;
const BATCH_KIB: u64 = 1024;
const BATCH_JOBS: usize = 1024;

/// What the batches being read may hold at once, in KiB: four large files (each reserves the
/// largest chunk size), or eight batches of small ones.
const READ_BUDGET_KIB: u32 = 16 * 1024;

/// Batches of paths the walk may find ahead of their metadata being read, and batches of
/// items the scan may hold ahead of the snapshot: with 64 paths a batch, about 20 000 items
/// (a few megabytes), which covers the key derivation on most trees.
const WALK_AHEAD: usize = 64;
const SCAN_AHEAD: usize = 256;

/// The manifest of the snapshot being taken, encoded as its entries come back, and what its
/// summary will say.
struct NewManifest {
    /// Binary manifests (format 2 on) are encoded entry by entry; a version 1 vault's JSON
    /// manifest is built whole.
    encoder: Option<manifest::Encoder>,
    json: Vec<SnapshotSource>,
    digest: sources::EntriesDigest,
    sources: Vec<String>,
    files: u64,
    bytes: u64,
}

impl NewManifest {
    fn new(version: u32) -> Self {
        NewManifest {
            encoder: (version >= super::BINARY_MANIFESTS_SINCE)
                .then(|| manifest::Encoder::new(version)),
            json: Vec::new(),
            digest: sources::EntriesDigest::default(),
            sources: Vec::new(),
            files: 0,
            bytes: 0,
        }
    }

    fn begin_source(&mut self, head: SourceHead) {
        self.digest.source(&head.name);
        let origin = head.origin.display().to_string();
        match &mut self.encoder {
            Some(encoder) => encoder.begin_source(&head.name, &origin, head.single_file),
            None => self.json.push(SnapshotSource {
                name: head.name.clone(),
                origin,
                single_file: head.single_file,
                entries: Vec::new(),
            }),
        }
        self.sources.push(head.name);
    }

    fn push(&mut self, entry: Entry) -> Result<()> {
        self.digest.entry(&entry);
        if entry.kind == EntryKind::File {
            self.files += 1;
            self.bytes += entry.size;
        }
        match (&mut self.encoder, self.json.last_mut()) {
            (Some(encoder), _) => encoder.push(&entry),
            (None, Some(source)) => {
                source.entries.push(entry);
                Ok(())
            }
            (None, None) => Err(Error::new(
                ErrorKind::InvalidInput,
                format!("entry {:?} comes before any source", entry.path),
            )),
        }
    }

    /// The manifest's bytes, in parts to write one after the other, and its summary.
    fn finish(
        self,
        time: String,
        hostname: String,
        parent: Option<String>,
        labels: &BTreeMap<String, String>,
    ) -> Result<(Vec<Vec<u8>>, ManifestSummary)> {
        let summary = ManifestSummary {
            time,
            hostname,
            sources: self.sources,
            files: self.files,
            bytes: self.bytes,
            labels: labels.clone(),
            parent,
            source_digest: self.digest.finish(),
            stored_bytes: None,
        };
        let parts = match self.encoder {
            Some(encoder) => encoder.finish(&manifest::Head {
                time: &summary.time,
                hostname: &summary.hostname,
                parent: summary.parent.as_deref(),
                source_digest: &summary.source_digest,
                labels: &summary.labels,
            }),
            None => vec![super::json_manifest(&Snapshot {
                time: summary.time.clone(),
                hostname: summary.hostname.clone(),
                sources: self.json,
                labels: summary.labels.clone(),
                parent: summary.parent.clone(),
                source_digest: summary.source_digest.clone(),
            })?],
        };
        Ok((parts, summary))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let previous = ManifestEntries::Whole(vec![("s".into(), vec![stored])]);
        let mut planner = Planner::new(previous, false, 4096, &super::super::NoProgress);
        let mut steps = VecDeque::new();
        planner.push(
            ScanPart::Source(SourceHead {
                name: "s".into(),
                origin: "/src".into(),
                single_file: false,
            }),
            &mut steps,
        );
        planner.push(
            ScanPart::Items {
                items: vec![seen],
                special_skipped: 0,
            },
            &mut steps,
        );
        planner.push(ScanPart::End, &mut steps);
        let [Step::Source(_), Step::Batch(batch), Step::End { .. }] = &steps.make_contiguous()[..]
        else {
            panic!("not a source, a batch and the end");
        };
        let [Job::Reuse(entry)] = &batch.jobs[..] else {
            panic!("not reused");
        };
        assert_eq!((entry.ctime_ns, entry.inode), (42, 7));
    }
}
