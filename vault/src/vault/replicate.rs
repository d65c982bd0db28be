//! Replication to another vault (another region, its own key; a standby sharing the key is
//! `replicate_verbatim`'s). Each snapshot the destination
//! lacks is copied as a unit — packs, then an index, then the manifest under the same id — so
//! an interrupted run leaves only complete snapshots, and running again finishes the job.
//!
//! The vaults have different keys, so blobs are re-sealed and get the destination's ids. Whole-
//! file digests are key-independent: a file the destination already holds (same digest) takes
//! its chunk list from there without reading the source again, so only new data moves.

use super::batches::{batch_files, Batch};
use super::budget::Budget;
use super::{Progress, SnapshotInfo, Vault};
use crate::crypto::{BlobId, MasterKey};
use crate::error::{Error, ErrorKind, Result};
use crate::format::{Entry, EntryKind, Snapshot, SnapshotSource};
use crate::locks::LockGuard;
use crate::repo::blob::{check_blob_id, OpenedBlob};
use crate::repo::packer::{blob_queue, pack_writer, BlobSender, SealedBlob};
use crate::repo::reader::BlobReader;
use crate::sources::scan_order;
use futures_util::StreamExt as _;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// What a replication would copy.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ReplicationPlan {
    /// Snapshots the destination lacks, oldest first.
    pub to_copy: Vec<SnapshotInfo>,
    /// Snapshots the destination already has.
    pub already_there: usize,
    /// Manifests of the source that do not open: they cannot be copied, and are named so
    /// that someone repairs or removes them (`verify` says more).
    pub unreadable: Vec<super::Problem>,
    /// The newest snapshot of each series that the destination already has: what it holds
    /// of the source's data is learnt from these (see `ChunkMap`).
    #[serde(skip)]
    pub(crate) newest_held: Vec<String>,
}

impl ReplicationPlan {
    /// How far the destination is behind at `now`: the age of the oldest snapshot it lacks
    /// (zero when it lacks none).
    pub fn lag(&self, now: time::OffsetDateTime) -> std::time::Duration {
        self.to_copy.first().map(|s| s.age(now)).unwrap_or_default()
    }

    /// Whether the destination holds every snapshot of the source.
    pub fn in_sync(&self) -> bool {
        self.to_copy.is_empty()
    }
}

/// What a replication did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct ReplicationSummary {
    pub snapshots_copied: usize,
    /// Files whose data was read from the source (the rest were already at the destination).
    pub files_copied: usize,
    pub blobs_copied: usize,
    pub bytes_copied: u64,
    /// Planned snapshots whose manifest did not open when copied: skipped, the rest copied.
    pub unreadable: Vec<super::Problem>,
    /// Why this run is missing from the destination's replication history, when its record
    /// could not be written: the copy itself succeeded, so this is a warning, not a failure.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub history_not_recorded: Option<String>,
}

/// Where replications are recorded, in the destination vault.
const REPLICATIONS: &str = "replications";

/// One replication as its destination records it: how far behind it was when the run began
/// (the lag a region pair holds against its rpo) and what the run copied.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ReplicationRecord {
    /// When the run began (RFC 3339, nanoseconds).
    pub at: String,
    /// The source's id (its URL with non-secret options) and its vault id.
    pub source: String,
    pub source_vault: String,
    /// The age, when the run began, of the oldest source snapshot the destination lacked.
    pub lag_seconds: u64,
    pub snapshots_copied: usize,
    pub bytes_copied: u64,
    pub seconds: f64,
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
                    self.storage().url(),
                    dest.storage().url()
                ),
            )
            .hint("replicate to the standby vault of another region"));
        }
        let present: HashSet<String> = dest.snapshot_ids().await?.into_iter().collect();
        let listing = self.snapshot_listing().await?;
        let (already, to_copy): (Vec<SnapshotInfo>, Vec<SnapshotInfo>) = listing
            .snapshots
            .into_iter()
            .partition(|s| present.contains(&s.id));
        let mut newest: HashMap<Option<&String>, &SnapshotInfo> = HashMap::new();
        for s in &already {
            let series = s.labels.get(super::SERIES_LABEL);
            if newest.get(&series).is_none_or(|n| n.time < s.time) {
                newest.insert(series, s);
            }
        }
        let newest_held = newest.values().map(|s| s.id.clone()).collect();
        Ok(ReplicationPlan {
            to_copy,
            already_there: already.len(),
            unreadable: listing.unreadable,
            newest_held,
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
        let started = crate::clock::now();
        let timer = std::time::Instant::now();
        let lock = dest.lock(false).await?;
        let mut result = self.replicate_locked(dest, plan, progress, &lock).await;
        if let Ok(summary) = &mut result {
            let record = ReplicationRecord {
                at: crate::clock::rfc3339_nanos(started),
                source: self.storage().id(),
                source_vault: self.config.id.clone(),
                lag_seconds: plan.lag(started).as_secs(),
                snapshots_copied: summary.snapshots_copied,
                bytes_copied: summary.bytes_copied,
                seconds: timer.elapsed().as_secs_f64(),
            };
            if let Err(e) = dest.record_replication(&record).await {
                summary.history_not_recorded = Some(e.to_string());
            }
        }
        lock.release().await?;
        result
    }

    /// Records a replication into this vault, its destination (the history `drctl report`
    /// plots): `replications/<source vault id>/<time>`.
    async fn record_replication(&self, record: &ReplicationRecord) -> Result<()> {
        let value =
            serde_json::to_value(record).map_err(|e| Error::new(ErrorKind::Io, e.to_string()))?;
        let name = format!(
            "{REPLICATIONS}/{}/{}",
            record.source_vault,
            record.at.replace(':', "-")
        );
        self.put_record(&name, &value).await
    }

    /// The newest `at_most` replications into this vault from the vault whose id is
    /// `source_vault`, oldest first (one a run adds, and nothing deletes them: a reader of a
    /// long history reads its end). Records that do not open or read as one are skipped.
    ///
    /// # Errors
    /// `Storage` when the records cannot be listed.
    pub async fn replications_from(
        &self,
        source_vault: &str,
        at_most: usize,
    ) -> Result<Vec<ReplicationRecord>> {
        let mut out: Vec<ReplicationRecord> = self
            .newest_records(&format!("{REPLICATIONS}/{source_vault}"), at_most)
            .await?
            .into_iter()
            .filter_map(|(_, v)| serde_json::from_value(v).ok())
            .collect();
        out.sort_by(|a, b| a.at.cmp(&b.at));
        Ok(out)
    }

    async fn replicate_locked(
        &self,
        dest: &Vault,
        plan: &ReplicationPlan,
        progress: &dyn Progress,
        lock: &LockGuard,
    ) -> Result<ReplicationSummary> {
        if self.shares_key_with(dest) {
            return self.replicate_verbatim(dest, plan, progress, lock).await;
        }
        let present: HashSet<String> = dest.snapshot_ids().await?.into_iter().collect();
        // What the destination holds of the source's data, from the newest snapshot of each
        // series that both have: two manifests, however long the history. The first series'
        // two, and the first snapshot to copy, are read and decoded while both indexes are,
        // each on a task of its own (at 300 000 files each takes a few tenths of a second of
        // CPU, and one new snapshot to copy little more).
        let to_copy: Vec<&SnapshotInfo> = plan
            .to_copy
            .iter()
            .filter(|s| !present.contains(&s.id))
            .collect();
        let mut first_new = to_copy.first().map(|s| self.load_manifest_ahead(&s.id));
        let mut first_held = plan
            .newest_held
            .first()
            .map(|id| (self.load_manifest_ahead(id), dest.load_manifest_ahead(id)));
        let (source_index, known) = {
            let (source, dest) = (self.repo.clone(), dest.repo.clone());
            let source_index = tokio::spawn(async move { source.blob_index().await });
            let known = tokio::spawn(async move { dest.blob_ids().await });
            (joined(source_index).await?, joined(known).await?)
        };
        let mut held = Vec::new();
        for id in &plan.newest_held {
            let (ours, theirs) = match first_held.take() {
                Some((ours, theirs)) => (joined(ours).await, joined(theirs).await),
                None => tokio::join!(self.load_snapshot(id), dest.load_snapshot(id)),
            };
            // A manifest that does not open only loses its files as a source of chunk ids
            // (verify reports it).
            match (ours, theirs) {
                (Ok(ours), Ok(theirs)) => held.push(HeldPair { ours, theirs }),
                (Err(e), _) | (_, Err(e))
                    if !matches!(e.kind, ErrorKind::Corrupt | ErrorKind::NotFound) =>
                {
                    return Err(e)
                }
                _ => {}
            }
        }
        let map = Arc::new(Mutex::new(ChunkMap::default()));
        progress.phase("replicate", plan.to_copy.iter().map(|s| s.bytes).sum());
        let source_index = Arc::new(source_index);
        let known = Arc::new(Mutex::new(known));
        let largest_chunk = u64::from(self.config.chunker.max_size);
        let mut summary = ReplicationSummary::default();
        let last = to_copy.len().saturating_sub(1);
        for (n, info) in to_copy.into_iter().enumerate() {
            // Later ones are not read ahead while the one before copies: a decoded manifest
            // of 300 000 files holds ~70 MB, and the gain was within this machine's noise.
            let loaded = match first_new.take() {
                Some(ahead) => joined(ahead).await,
                None => self.load_snapshot(&info.id).await,
            };
            let mut snapshot = match loaded {
                Ok(snapshot) => snapshot,
                // Listed from its summary, its manifest does not open: skipped and named.
                Err(e) if e.kind == ErrorKind::Corrupt => {
                    summary
                        .unreadable
                        .push(super::Problem::unreadable_manifest(&info.id, &e));
                    continue;
                }
                Err(e) => return Err(e),
            };
            // Files whose every chunk the destination holds take its ids (see `split`); the
            // rest are copied, in batches on blocking threads as restore reads them. Entries
            // move out to the copies and back (a manifest is megabytes).
            let mut sources = std::mem::take(&mut snapshot.sources);
            let Split {
                mut slots,
                to_copy,
                held_bytes,
            } = split(
                &mut sources,
                snapshot.labels.get(super::SERIES_LABEL).map(String::as_str),
                &held,
                &map,
                &known,
            );
            if n == last {
                // Split for the last time: the held pair (two manifests, ~140 MB at 300 000
                // files) is freed on another thread while this one copies.
                let held = std::mem::take(&mut held);
                tokio::task::spawn_blocking(move || drop(held));
            }
            progress.advance(held_bytes);
            let (tx, rx) = blob_queue();
            let packer = tokio::spawn(pack_writer(
                dest.repo.clone(),
                dest.config.pack_size as usize,
                rx,
            ));
            let copier = Copier {
                blobs: self.repo.blob_reader(source_index.clone()),
                source_key: self.repo.key().clone(),
                dest_key: dest.repo.key().clone(),
                known: known.clone(),
                map: map.clone(),
                tx,
                snapshot_object: format!(
                    "{}/{}",
                    self.storage().url(),
                    crate::layout::snapshot(&info.id)
                ),
                copied_bytes: Arc::new(AtomicU64::new(0)),
            };
            let copied_bytes = copier.copied_bytes.clone();
            let budget = Budget::new(COPY_BUDGET_KIB, "copy");
            let copied = async {
                let mut copies = futures_util::stream::iter(batch_files(to_copy, largest_chunk))
                    .map(|batch| {
                        let copier = copier.clone();
                        let budget = budget.clone();
                        async move {
                            let holds = batch.holds_kib;
                            let job = move || copier.copy_batch(batch);
                            budget.run_blocking(holds, job).await
                        }
                    })
                    .buffer_unordered(COPY_BATCHES_IN_FLIGHT);
                // Progress follows the bytes copied (a large file moves the bar as it goes).
                let mut reported = 0;
                let mut tick = tokio::time::interval(std::time::Duration::from_millis(200));
                loop {
                    tokio::select! {
                        batch = copies.next() => {
                            let Some(batch) = batch else { break };
                            for file in batch? {
                                summary.files_copied += 1;
                                summary.blobs_copied += file.blobs;
                                summary.bytes_copied += file.bytes;
                                slots[file.at.source][file.at.entry] = Some(file.entry);
                            }
                        }
                        _ = tick.tick() => {}
                    }
                    let now = copied_bytes.load(Ordering::Relaxed);
                    progress.advance(now - reported);
                    reported = now;
                }
                Ok::<_, Error>(())
            }
            .await;
            drop(copier);
            let written = packer
                .await
                .map_err(|e| Error::new(ErrorKind::Io, format!("pack writer failed: {e}")))?;
            // When both fail, the pack writer's error is the cause.
            let (packs, mut stored) = match (copied, written) {
                (Ok(()), Ok(written)) => written,
                (_, Err(e)) | (Err(e), Ok(_)) => return Err(e),
            };
            for (source, slot) in sources.iter_mut().zip(slots) {
                // Every copy came back (an error returned above): a gap would drop a file.
                let entries: Option<Vec<Entry>> = slot.into_iter().collect();
                source.entries = entries.ok_or_else(|| {
                    Error::new(
                        ErrorKind::Io,
                        format!("{}: a file was not copied", source.name),
                    )
                })?;
            }
            snapshot.sources = sources;
            crate::hooks::stop_point("replicate-commit");
            lock.check_held()?;
            if !packs.is_empty() {
                stored += dest.repo.write_index(packs).await?;
            }
            // Same id at the destination: that is how a re-run knows it is done.
            lock.check_held()?;
            match dest.store_manifest(&info.id, &snapshot, stored).await {
                Ok(_) => summary.snapshots_copied += 1,
                Err(e) if e.kind == ErrorKind::AlreadyExists => {}
                Err(e) => return Err(e),
            }
        }
        Ok(summary)
    }

    /// Starts reading and decoding the manifest of snapshot `id` on a task of its own.
    fn load_manifest_ahead(&self, id: &str) -> tokio::task::JoinHandle<Result<Snapshot>> {
        let (repo, id) = (self.repo.clone(), id.to_string());
        tokio::spawn(async move { repo.load_manifest(&id).await })
    }
}

/// What a task started ahead returned.
async fn joined<T>(task: tokio::task::JoinHandle<Result<T>>) -> Result<T> {
    task.await
        .map_err(|e| Error::new(ErrorKind::Io, format!("read task failed: {e}")))?
}

/// A snapshot's files, split by [`split`].
struct Split {
    /// A slot per entry of each source: the entry, or none where a copy will go.
    slots: Vec<Vec<Option<Entry>>>,
    /// The files to copy.
    to_copy: Vec<(Entry, FileAt)>,
    /// Bytes of the files the destination holds.
    held_bytes: u64,
}

/// Splits a snapshot's files (moved out of `sources`) into those the destination holds, which
/// take its chunk ids (from a held snapshot, or from `map`), and those to copy. `series` is
/// the snapshot's: held snapshots of the same series are looked at first.
fn split(
    sources: &mut [SnapshotSource],
    series: Option<&str>,
    held: &[HeldPair],
    map: &Mutex<ChunkMap>,
    known: &Mutex<HashSet<BlobId>>,
) -> Split {
    // Nothing is being copied yet: both locks are taken once for the whole split.
    let (mut map, known) = (locked(map), locked(known));
    let mut slots: Vec<Vec<Option<Entry>>> = Vec::with_capacity(sources.len());
    let mut to_copy: Vec<(Entry, FileAt)> = Vec::new();
    let (mut held_bytes, mut learnt_whole) = (0, false);
    for (s, source) in sources.iter_mut().enumerate() {
        let name: Arc<str> = Arc::from(source.name.as_str());
        let entries = std::mem::take(&mut source.entries);
        let mut slot: Vec<Option<Entry>> = Vec::with_capacity(entries.len());
        let mut before = HeldSource::all(held, &source.name, series);
        // Files no held source has as they are stay in their slots, by position, until the
        // map has learnt what it will (a second list of whole entries was ~45 MB at 300k).
        let (mut files, mut not_held, mut elsewhere) = (0, Vec::new(), 0);
        for (e, mut entry) in entries.into_iter().enumerate() {
            if entry.kind == EntryKind::File {
                files += 1;
                let mut found = Found::Absent;
                for held in &mut before {
                    found = found.or(held.find(&entry, &known, &mut map));
                    if matches!(found, Found::Same(_)) {
                        break;
                    }
                }
                match found {
                    Found::Same(chunks) => {
                        entry.chunks = chunks;
                        held_bytes += entry.size;
                    }
                    Found::Changed => not_held.push(e),
                    Found::Absent => {
                        elsewhere += 1;
                        not_held.push(e);
                    }
                }
            }
            slot.push(Some(entry));
        }
        // Most files are at paths no held snapshot has (a source renamed, a tree moved): their
        // data may still be held under other paths, so every held file's chunks are learnt,
        // as for a standby of another series.
        if elsewhere * 4 > files && !learnt_whole {
            for pair in held {
                map.learn(&pair.ours, &pair.theirs, &known);
            }
            learnt_whole = true;
        }
        for e in not_held {
            let mut entry = slot[e]
                .take()
                .expect("a file not held is parked in its slot");
            match map.held(&entry.chunks) {
                Some(chunks) => {
                    entry.chunks = chunks;
                    held_bytes += entry.size;
                    slot[e] = Some(entry);
                }
                None => {
                    let at = FileAt {
                        source: s,
                        entry: e,
                        source_name: name.clone(),
                    };
                    to_copy.push((entry, at));
                }
            }
        }
        slots.push(slot);
    }
    Split {
        slots,
        to_copy,
        held_bytes,
    }
}

/// Batches of files copied at once, and what they may hold (KiB): as restore.
const COPY_BATCHES_IN_FLIGHT: usize = 8;
const COPY_BUDGET_KIB: u32 = 8 * 1024;

/// Where a file's entry is in the snapshot being copied.
struct FileAt {
    /// Index of its source, and of the entry in that source.
    source: usize,
    entry: usize,
    /// The source's name, as errors name the file.
    source_name: Arc<str>,
}

/// One file copied: its entry, now with the destination's chunk ids, and what it took.
struct CopiedFile {
    at: FileAt,
    entry: Entry,
    blobs: usize,
    bytes: u64,
}

/// A snapshot both vaults hold, as each holds it: the same files in the same order, with
/// each vault's chunk ids.
struct HeldPair {
    ours: Snapshot,
    theirs: Snapshot,
}

/// One source of a [`HeldPair`], walked beside the same source of a snapshot being copied.
/// Both list their files in scan order (FORMAT.md, "Snapshots"), so a merge finds the held
/// version of each file without a map of every chunk: on an everyday run (one new snapshot,
/// 1 % of 300 000 files changed) that map was most of the time spent.
struct HeldSource<'a> {
    ours: &'a [Entry],
    theirs: &'a [Entry],
    /// Where the merge is in `ours`.
    next: usize,
}

/// What a held source has of a file.
enum Found {
    /// The same chunks at the same path, all held: the destination's ids of them.
    Same(Vec<BlobId>),
    /// Other chunks at the same path (its old chunks are now in the map).
    Changed,
    /// Nothing at that path.
    Absent,
}

impl Found {
    /// The better of two answers.
    fn or(self, other: Found) -> Found {
        match (self, other) {
            (Found::Same(chunks), _) | (_, Found::Same(chunks)) => Found::Same(chunks),
            (Found::Changed, _) | (_, Found::Changed) => Found::Changed,
            _ => Found::Absent,
        }
    }
}

impl<'a> HeldSource<'a> {
    /// The source named `name` in each held pair whose two sides list it alike, those of
    /// `series` first.
    fn all(held: &'a [HeldPair], name: &str, series: Option<&str>) -> Vec<HeldSource<'a>> {
        let mut pairs: Vec<&HeldPair> = held.iter().collect();
        pairs.sort_by_key(|pair| {
            pair.ours
                .labels
                .get(super::SERIES_LABEL)
                .map(String::as_str)
                != series
        });
        pairs
            .into_iter()
            .filter_map(|pair| {
                let (ours, theirs) = pair
                    .ours
                    .sources
                    .iter()
                    .zip(&pair.theirs.sources)
                    .find(|(a, b)| a.name == name && b.name == name)?;
                (ours.entries.len() == theirs.entries.len()).then_some(HeldSource {
                    ours: &ours.entries,
                    theirs: &theirs.entries,
                    next: 0,
                })
            })
            .collect()
    }

    /// What the held source has of `file`: its chunk ids at the destination when it has the
    /// file at the same path with the same chunks, and the destination holds every one (a
    /// standby that lost data gets it copied again). A file held under its path with other
    /// chunks (changed in places) teaches `map` its old chunks, so only what changed is read.
    fn find(&mut self, file: &Entry, known: &HashSet<BlobId>, map: &mut ChunkMap) -> Found {
        while self
            .ours
            .get(self.next)
            .is_some_and(|x| scan_order(&x.path, &file.path).is_lt())
        {
            self.next += 1;
        }
        let Some(x) = self.ours.get(self.next) else {
            return Found::Absent;
        };
        let y = &self.theirs[self.next];
        if x.path != file.path {
            return Found::Absent;
        }
        self.next += 1;
        if y.path != x.path
            || x.kind != EntryKind::File
            || y.kind != EntryKind::File
            || y.chunks.len() != x.chunks.len()
        {
            return Found::Changed;
        }
        if x.chunks == file.chunks && y.chunks.iter().all(|d| known.contains(d)) {
            return Found::Same(y.chunks.clone());
        }
        map.learn_file(x, y, known);
        Found::Changed
    }
}

/// Source blob → destination blob, for blobs the destination holds (or this run has queued):
/// learnt from the files of a held snapshot that changed since (from all its files when most
/// are at new paths), and from every chunk this run copies. Blob ids are keyed hashes, each vault's with its own key, so the same data has other
/// ids there; this is how a replication knows what it need not read again.
#[derive(Default)]
struct ChunkMap(HashMap<BlobId, BlobId>);

impl ChunkMap {
    /// Pairs the chunks of one snapshot as the source and the destination hold it: the same
    /// files in the same order (a file that differs in path or chunk count is passed over).
    fn learn(&mut self, ours: &Snapshot, theirs: &Snapshot, known: &HashSet<BlobId>) {
        for (a, b) in ours.sources.iter().zip(&theirs.sources) {
            if a.name != b.name || a.entries.len() != b.entries.len() {
                continue;
            }
            for (x, y) in a.entries.iter().zip(&b.entries) {
                if x.path == y.path && x.chunks.len() == y.chunks.len() {
                    self.learn_file(x, y, known);
                }
            }
        }
    }

    /// Pairs the chunks of one file as the source (`ours`) and the destination (`theirs`)
    /// hold it, where the destination holds the chunk.
    fn learn_file(&mut self, ours: &Entry, theirs: &Entry, known: &HashSet<BlobId>) {
        for (s, d) in ours.chunks.iter().zip(&theirs.chunks) {
            if known.contains(d) {
                self.0.insert(*s, *d);
            }
        }
    }

    /// The destination's ids of `chunks`, when it holds every one.
    fn held(&self, chunks: &[BlobId]) -> Option<Vec<BlobId>> {
        chunks.iter().map(|c| self.0.get(c).copied()).collect()
    }
}

/// A poisoned lock still answers: a panicked copy left the data as it was.
fn locked<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// What copying files on a blocking thread needs, owned.
#[derive(Clone)]
struct Copier {
    blobs: BlobReader,
    source_key: Arc<MasterKey>,
    dest_key: Arc<MasterKey>,
    /// Blob ids the destination holds or this run has queued.
    known: Arc<Mutex<HashSet<BlobId>>>,
    map: Arc<Mutex<ChunkMap>>,
    tx: BlobSender,
    /// The source manifest, as errors name it.
    snapshot_object: String,
    /// Bytes of files read so far, for the progress bar.
    copied_bytes: Arc<AtomicU64>,
}

impl Copier {
    /// Copies a batch: small files' blobs are read first, one read per run of neighbours.
    fn copy_batch(&self, batch: Batch<FileAt>) -> Result<Vec<CopiedFile>> {
        let files: Vec<&Entry> = batch.files.iter().map(|(entry, _)| entry).collect();
        let preloaded = self.blobs.preload(&files)?;
        batch
            .files
            .into_iter()
            .map(|(entry, at)| self.copy_file(entry, at, &preloaded))
            .collect()
    }

    /// Re-seals one file's chunks under the destination's key, queueing those it lacks. A
    /// file read whole is checked against its digest; one whose other chunks the destination
    /// holds already (a large file changed in places) reads only the rest, each checked
    /// against its id.
    fn copy_file(
        &self,
        mut entry: Entry,
        at: FileAt,
        preloaded: &HashMap<BlobId, OpenedBlob>,
    ) -> Result<CopiedFile> {
        let held: Vec<Option<BlobId>> = {
            let map = locked(&self.map);
            entry.chunks.iter().map(|c| map.0.get(c).copied()).collect()
        };
        let whole = held.iter().all(Option::is_none);
        let mut hasher = blake3::Hasher::new();
        let mut dest_chunks = Vec::with_capacity(entry.chunks.len());
        let (mut blobs, mut bytes) = (0, 0);
        for (chunk, held) in entry.chunks.iter().zip(held) {
            if let Some(id) = held {
                dest_chunks.push(id);
                continue;
            }
            let blob = self.blobs.chunk(chunk, &entry, preloaded)?;
            let data = blob.plaintext();
            if whole {
                hasher.update(data);
            } else {
                check_blob_id(&self.source_key, &self.snapshot_object, chunk, data)?;
            }
            self.copied_bytes
                .fetch_add(data.len() as u64, Ordering::Relaxed);
            let id = self.dest_key.blob_id(data);
            locked(&self.map).0.insert(*chunk, id);
            if locked(&self.known).insert(id) {
                blobs += 1;
                bytes += data.len() as u64;
                self.tx
                    .send_blocking(SealedBlob::reseal(&self.dest_key, id, &blob))?;
            }
            dest_chunks.push(id);
        }
        let digest = hasher.finalize().to_hex().to_string();
        if whole && entry.digest.as_deref().is_some_and(|d| d != digest) {
            return Err(Error::corrupt(
                &self.snapshot_object,
                format!(
                    "{}/{}: the source data does not match its digest",
                    at.source_name, entry.path
                ),
            ));
        }
        // The digest stays as the source recorded it: the snapshot's source digest covers it.
        entry.chunks = dest_chunks;
        Ok(CopiedFile {
            at,
            entry,
            blobs,
            bytes,
        })
    }
}
