//! Taking a snapshot: scan, reuse unchanged files, chunk/hash/seal the rest on blocking
//! threads, pack, then write the index and, last, the manifest.

use super::budget::Budget;
use super::{hostname, Progress, SnapshotSummary, Vault};
use crate::chunker::Chunker;
use crate::crypto::{random_id, BlobId, MasterKey};
use crate::error::{Error, ErrorKind, Result};
use crate::format::{Entry, EntryKind, Snapshot, SnapshotSource};
use crate::locks::LockGuard;
use crate::repo::packer::{blob_queue, pack_writer, BlobSender, SealedBlob};
use crate::sources::{self, Item, SourceSpec};
use futures_util::StreamExt as _;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};

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
            self.repo.blob_ids().await?
        } else {
            HashSet::new()
        };
        let claimed: Arc<Mutex<HashSet<BlobId>>> = Arc::new(Mutex::new(held));
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
        let mut files_read = 0usize;
        let mut bytes_new = 0u64;
        let read = async {
            let mut snapshot_sources = Vec::new();
            for (source, batches) in planned {
                let mut entries = Vec::with_capacity(batches.iter().map(|b| b.jobs.len()).sum());
                let mut results = futures_util::stream::iter(batches)
                    .map(|batch| {
                        let tx = tx.clone();
                        let key = self.repo.key().clone();
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
        // Every blob id of the vault, no longer needed: it is a tenth of what a snapshot of
        // 300 000 files holds, and the index and manifest are written next.
        drop(claimed);
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
            bytes_stored += self.repo.write_index(packs).await?;
        }
        let source_digest = sources::digest_entries(
            snapshot_sources
                .iter()
                .map(|s| (s.name.as_str(), s.entries.as_slice())),
        );
        let taken_at = crate::clock::now();
        let snapshot = Snapshot {
            time: crate::clock::rfc3339_nanos(taken_at),
            hostname: hostname(),
            sources: snapshot_sources,
            labels: labels.clone(),
            parent: parent_id,
            source_digest: source_digest.clone(),
        };
        let id = random_id();
        lock.check_held()?;
        bytes_stored += self.store_manifest(&id, &snapshot, bytes_stored).await?;
        Ok(SnapshotSummary {
            id,
            time: taken_at,
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

/// A batch ends after this many files to read, or when its files hold this many KiB.
const BATCH_FILES: usize = 64;
const BATCH_KIB: u64 = 1024;

/// What the batches being read may hold at once, in KiB: four large files (each reserves the
/// largest chunk size), or eight batches of small ones.
const READ_BUDGET_KIB: u32 = 16 * 1024;

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
        let batches = batch_jobs(vec![seen], vec![stored], 4096, &super::super::NoProgress);
        let [Job::Reuse(entry)] = &batches[0].jobs[..] else {
            panic!("not reused");
        };
        assert_eq!((entry.ctime_ns, entry.inode), (42, 7));
    }
}
