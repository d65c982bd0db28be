//! The vault: init and open, listing, and what its operations share. Operations return data
//! and never print; long ones report through [`Progress`]. Each operation lives in its own
//! file: `snapshot.rs`, `restore.rs`, `verify.rs`, `prune.rs`, `replicate.rs`, `records.rs`;
//! how objects are keyed, sealed, indexed, packed and read back is the repository layer's
//! (`crate::repo`), which they use and never bypass.

mod batches;
mod budget;
mod prune;
mod records;
mod replicate;
mod replicate_verbatim;
mod restore;
mod snapshot;
mod tree;
pub(crate) mod verify;

pub use prune::{parse_duration, PrunePlan, PruneSummary, Retention};
pub use records::{DestroySummary, Leftovers, Policy, Remains};
pub use replicate::{ReplicationPlan, ReplicationRecord, ReplicationSummary};
pub use snapshot::PendingScan;

use crate::crypto::{random_id, KdfParams, KeyFile, MasterKey, Passphrase};
use crate::error::{Error, ErrorKind, Result};
use crate::format::{ChunkerParams, Config, ManifestSummary, Snapshot, FORMAT_VERSION};
use crate::layout::{self, Kind};
use crate::locks::LockTiming;
use crate::manifest::ManifestEntries;
use crate::repo::{list_own, Repo};
use crate::sources::{self, SourceSpec};
use crate::storage::Storage;
use bytes::Bytes;
use futures_util::StreamExt as _;
use std::collections::{BTreeMap, HashSet};

/// The format version from which manifests are written in the binary encoding.
const BINARY_MANIFESTS_SINCE: u32 = 2;
/// From format 3: exact non-UTF-8 names, change times and inodes in manifests; chunk
/// boundaries from a keyed gear table; an authenticated config (FORMAT.md, "Versions").
const FORMAT_3: u32 = 3;

/// Reports progress of long operations; the engine has no terminal code.
pub trait Progress: Send + Sync {
    /// A phase begins; `total` is in bytes (0 when unknown).
    fn phase(&self, _name: &str, _total: u64) {}
    /// `bytes` more were found to do in the current phase (a snapshot learns its total as
    /// the scan goes).
    fn found(&self, _bytes: u64) {}
    /// `bytes` more of the current phase are done.
    fn advance(&self, _bytes: u64) {}
}

/// Reports nothing.
pub struct NoProgress;
impl Progress for NoProgress {}

/// How to create a vault.
#[derive(Debug, Clone)]
pub struct InitOptions {
    pub name: String,
    pub region: String,
    pub labels: BTreeMap<String, String>,
    pub kdf: KdfParams,
    pub chunker: ChunkerParams,
    pub pack_size: u32,
}

impl InitOptions {
    pub fn new(name: &str, region: &str) -> Self {
        InitOptions {
            name: name.to_string(),
            region: region.to_string(),
            labels: BTreeMap::new(),
            kdf: KdfParams::STRONG,
            chunker: ChunkerParams::default(),
            pack_size: 16 * 1024 * 1024,
        }
    }
}

/// The label that puts a snapshot in a series of its own (e.g. `kind=terraform-state` for the
/// state versions `drctl state push` writes). "latest", change detection, the source digest
/// and retention's counting each look within one series, so state versions pushed into a
/// vault never stand in for its pipeline snapshots.
pub const SERIES_LABEL: &str = "kind";

/// A snapshot as listed.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SnapshotInfo {
    pub id: String,
    /// When it was taken (in JSON, as the vault records it: RFC 3339 with nanoseconds).
    #[serde(serialize_with = "crate::clock::serialize_nanos")]
    pub time: time::OffsetDateTime,
    pub sources: Vec<String>,
    pub files: usize,
    pub bytes: u64,
    pub labels: BTreeMap<String, String>,
    pub source_digest: String,
    /// Bytes it added to storage when written (see [`ManifestSummary::stored_bytes`]);
    /// unknown for snapshots of older builds and those listed from their manifest.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stored_bytes: Option<u64>,
}

impl SnapshotInfo {
    /// A listed snapshot from its summary (or its manifest's), read from `object`.
    ///
    /// # Errors
    /// `Corrupt` when the recorded time is not a time: no build writes one, and its age, which
    /// retention and drills judge by, would be unknown.
    fn new(id: String, summary: ManifestSummary, object: &str) -> Result<SnapshotInfo> {
        let time = crate::clock::parse(&summary.time).ok_or_else(|| {
            Error::corrupt(
                object,
                format!("records the time {:?}, which is not RFC 3339", summary.time),
            )
        })?;
        Ok(SnapshotInfo {
            id,
            time,
            sources: summary.sources,
            files: summary.files as usize,
            bytes: summary.bytes,
            labels: summary.labels,
            source_digest: summary.source_digest,
            stored_bytes: summary.stored_bytes,
        })
    }

    /// How old the snapshot is at `now` (zero for a time ahead of `now`: another writer's
    /// clock may run fast).
    pub fn age(&self, now: time::OffsetDateTime) -> std::time::Duration {
        let secs = (now - self.time).whole_seconds();
        std::time::Duration::from_secs(secs.max(0) as u64)
    }

    /// The snapshot's series: its `kind` label, empty for ordinary (source) snapshots.
    pub fn series(&self) -> &str {
        self.labels.get(SERIES_LABEL).map_or("", String::as_str)
    }
}

/// The newest ordinary snapshot of a list in time order (what "latest" means).
pub fn latest_of(snapshots: &[SnapshotInfo]) -> Option<&SnapshotInfo> {
    snapshots.iter().rev().find(|s| s.series().is_empty())
}

/// The snapshots of a vault and the manifests that do not open.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct SnapshotListing {
    /// Oldest first.
    pub snapshots: Vec<SnapshotInfo>,
    /// Manifests that fail to open or decode, each named: left out of the list.
    pub unreadable: Vec<Problem>,
}

/// What a snapshot did.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SnapshotSummary {
    pub id: String,
    #[serde(serialize_with = "crate::clock::serialize_nanos")]
    pub time: time::OffsetDateTime,
    pub files: usize,
    /// Files read because they were new or changed.
    pub files_read: usize,
    pub bytes: u64,
    /// Bytes of new blobs (before compression).
    pub bytes_new: u64,
    /// Bytes written to storage (packs, index, manifest).
    pub bytes_stored: u64,
    pub source_digest: String,
    /// FIFOs, sockets and devices in the sources, left out without being opened.
    pub special_files_skipped: usize,
}

/// What a restore did.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RestoreSummary {
    pub snapshot_id: String,
    pub files: usize,
    pub dirs: usize,
    pub symlinks: usize,
    pub bytes: u64,
}

/// One problem verify found, naming the object.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Problem {
    pub object: String,
    pub message: String,
}

impl Problem {
    /// `error` about `object` (its URL, or its key), without naming the object twice: errors
    /// about an object begin with its name.
    pub(crate) fn about(object: String, error: &Error) -> Problem {
        let message = without_object(&error.to_string(), &object).to_string();
        Problem { object, message }
    }

    /// The manifest of snapshot `id` does not open, for `why`.
    fn unreadable_manifest(id: &str, why: &Error) -> Problem {
        Problem::about(layout::snapshot(id), why)
    }
}

/// `message` without its leading "OBJECT: ", where OBJECT is `object` or a URL ending in it.
pub(crate) fn without_object<'a>(message: &'a str, object: &str) -> &'a str {
    match message.split_once(": ") {
        Some((head, rest))
            if head == object
                || head.ends_with(&format!("/{}", object.trim_start_matches('/'))) =>
        {
            rest
        }
        _ => message,
    }
}

/// What verify checked and found.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct VerifyReport {
    pub snapshots: usize,
    pub index_files: usize,
    pub packs: usize,
    pub blobs_checked: usize,
    pub bytes_read: u64,
    pub problems: Vec<Problem>,
    /// Keys under the vault's directories that are not of its layout: not the vault's, so
    /// neither checked nor ever deleted (FORMAT.md, "Layout").
    pub foreign_objects: Vec<String>,
}

impl VerifyReport {
    pub fn is_clean(&self) -> bool {
        self.problems.is_empty()
    }
}

/// An open vault.
pub struct Vault {
    /// Its objects and the key that seals them: the repository layer's handle.
    repo: Repo,
    config: Config,
    /// How this process's writers refresh their locks and judge others' (see `locks`).
    lock_timing: LockTiming,
}

/// Now, as the vault records times.
fn now_rfc3339() -> String {
    crate::clock::rfc3339_nanos(crate::clock::now())
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_default()
}

/// Summaries read at once when listing (they are small; on object stores each is a request).
const SUMMARY_READS_IN_FLIGHT: usize = 16;

impl Vault {
    /// Creates a vault. Refuses when one already exists there.
    ///
    /// # Errors
    /// `AlreadyExists` when the location holds a vault; `Storage`/`Io` on write failures.
    pub async fn init(
        storage: Storage,
        opts: &InitOptions,
        passphrase: &Passphrase,
    ) -> Result<Vault> {
        Self::init_with_key(storage, opts, passphrase, MasterKey::generate()).await
    }

    /// Creates a standby vault that shares `primary`'s master key and chunking (its own
    /// passphrase wraps the key): replication between them copies packs as they are, with no
    /// re-encryption. What it gives up: whoever learns the key of one opens both.
    ///
    /// # Errors
    /// As [`Vault::init`]; `InvalidInput` when `primary` is of an older format (its chunking
    /// is keyed differently).
    pub async fn init_sharing_key(
        storage: Storage,
        opts: &InitOptions,
        passphrase: &Passphrase,
        primary: &Vault,
    ) -> Result<Vault> {
        if primary.config.format_version != FORMAT_VERSION {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                format!(
                    "{} is a format {} vault; a standby shares the key of a format {FORMAT_VERSION} vault only",
                    primary.storage().url(),
                    primary.config.format_version
                ),
            )
            .hint("create the standby with its own key (without --key-from)"));
        }
        let opts = InitOptions {
            chunker: primary.config.chunker,
            pack_size: primary.config.pack_size,
            ..opts.clone()
        };
        let key = MasterKey::clone(primary.repo.key());
        Self::init_with_key(storage, &opts, passphrase, key).await
    }

    /// Whether this vault and `other` share a master key (see [`Vault::init_sharing_key`]).
    pub fn shares_key_with(&self, other: &Vault) -> bool {
        self.repo.key().same_as(other.repo.key())
    }

    async fn init_with_key(
        storage: Storage,
        opts: &InitOptions,
        passphrase: &Passphrase,
        key: MasterKey,
    ) -> Result<Vault> {
        if storage.exists(layout::CONFIG).await? {
            return Err(Error::new(
                ErrorKind::AlreadyExists,
                format!("a vault already exists at {}", storage.url()),
            )
            .hint("open it instead, or choose another location"));
        }
        // A vault owns everything under its location (destroy empties it): it is created only
        // where nothing else lives, so it can never take, or later delete, what is not its own.
        if let Some(found) = storage.first_object().await? {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                format!(
                    "{} is not empty (it holds {found:?}); a vault is created only where nothing else lives",
                    storage.url()
                ),
            )
            .hint("choose a new or empty directory or prefix; objects of a vault whose init or destroy was interrupted are removed by hand"));
        }
        let mut config = Config {
            format_version: FORMAT_VERSION,
            id: random_id(),
            name: opts.name.clone(),
            region: opts.region.clone(),
            created_at: now_rfc3339(),
            hash: "blake3-keyed".into(),
            compression: "zstd".into(),
            aead: "xchacha20poly1305".into(),
            chunker: opts.chunker,
            pack_size: opts.pack_size,
            labels: opts.labels.clone(),
            mac: None,
        };
        // What its own `open` would refuse makes a vault nobody can open: checked before
        // anything is written.
        if let Err(what) = config.check() {
            return Err(Error::new(ErrorKind::InvalidInput, what));
        }
        opts.kdf
            .check("the key derivation parameters")
            .map_err(|e| Error::new(ErrorKind::InvalidInput, e.message))?;
        let key_id = random_id();
        let keyfile = key.wrap(passphrase, opts.kdf, now_rfc3339(), FORMAT_VERSION)?;
        let key_json = serde_json::to_vec_pretty(&keyfile)
            .map_err(|e| Error::new(ErrorKind::Io, e.to_string()))?;
        storage
            .put_new(&layout::key_file(&key_id), Bytes::from(key_json))
            .await?;
        config.mac = Some(key.config_mac(&config.mac_input()).to_hex().to_string());
        let config_json = serde_json::to_vec_pretty(&config)
            .map_err(|e| Error::new(ErrorKind::Io, e.to_string()))?;
        // The config is written last: its presence is what makes a vault. Whatever keeps it
        // from being written, the key goes again, so a retry meets an empty location.
        match storage
            .put_new(layout::CONFIG, Bytes::from(config_json))
            .await
        {
            Ok(true) => {}
            Ok(false) => {
                storage.delete(&layout::key_file(&key_id)).await?;
                return Err(Error::new(
                    ErrorKind::AlreadyExists,
                    format!("a vault was created at {} concurrently", storage.url()),
                ));
            }
            Err(e) => {
                let _ = storage.delete(&layout::key_file(&key_id)).await;
                storage.remove_empty_local_dirs();
                return Err(e);
            }
        }
        Ok(Vault {
            repo: Repo::new(storage, key),
            config,
            lock_timing: LockTiming::for_this_process(),
        })
    }

    /// Opens a vault with a passphrase.
    ///
    /// # Errors
    /// `NotFound` without a vault; `UnsupportedVersion` for a newer format; `WrongPassphrase`
    /// when no key opens.
    pub async fn open(storage: Storage, passphrase: &Passphrase) -> Result<Vault> {
        let config = Self::read_config(&storage).await?;
        // Key files are plain objects: one that does not parse, or asks the derivation for
        // too much, is skipped (and named if no other key opens), so a planted or damaged key
        // file never locks the owners out.
        let mut skipped = Vec::new();
        let mut files = Vec::new();
        for listed in list_own(&storage, Kind::Key).await? {
            let parsed = match storage.get(&listed.key).await {
                Ok(raw) => parse_key_file(&raw, &listed.key),
                Err(e) => Err(e),
            };
            match parsed {
                Ok(file) => files.push((listed.key, file)),
                Err(e) => skipped.push(e.to_string()),
            }
        }
        // Cheapest derivation first: key files planted with costly (if bounded) parameters
        // are tried only after the vault's own.
        files.sort_by_key(|(_, file)| file.params.cost());
        for (name, file) in files {
            let opened = MasterKey::unwrap(&file, &name, passphrase);
            match opened {
                Ok(Some((key, made_for))) => {
                    authenticate(&config, &key, made_for, &storage)?;
                    return Ok(Vault {
                        repo: Repo::new(storage, key),
                        config,
                        lock_timing: LockTiming::for_this_process(),
                    });
                }
                Ok(None) => {}
                Err(e) => skipped.push(e.to_string()),
            }
        }
        let mut message = format!(
            "no key of the vault at {} opens with this passphrase",
            storage.url()
        );
        if !skipped.is_empty() {
            message.push_str(&format!(
                "; {} key file(s) could not be tried: {}",
                skipped.len(),
                skipped.join("; ")
            ));
        }
        Err(Error::new(ErrorKind::WrongPassphrase, message)
            .hint("check DR_PASSPHRASE or the passphrase file; the vault itself is unchanged"))
    }

    /// Reads the plain config (no passphrase needed).
    ///
    /// # Errors
    /// `NotFound` without a vault; `UnsupportedVersion` for a newer format; `Corrupt`.
    pub async fn read_config(storage: &Storage) -> Result<Config> {
        let raw = match storage.get(layout::CONFIG).await {
            Ok(raw) => raw,
            Err(e) if e.kind == ErrorKind::NotFound => {
                return Err(Error::new(
                    ErrorKind::NotFound,
                    format!("no vault at {}", storage.url()),
                )
                .hint("check the URL, or create the vault with `drctl vault init`"))
            }
            Err(e) => return Err(e),
        };
        parse_config(&raw, storage.url())
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    pub fn storage(&self) -> &Storage {
        self.repo.storage()
    }

    /// Changes how long this process's locks live without a refresh, and how long it waits
    /// before ignoring others' (`locks::STALE_AFTER` by default). Every process that writes
    /// to a vault must use the same window: one with a shorter window takes a slow writer's
    /// lock for stale sooner. For tests and programs that run every writer of a vault.
    pub fn set_lock_timing(&mut self, timing: LockTiming) {
        self.lock_timing = timing;
    }

    /// The chunker of this vault's snapshots: from format 3 over a gear table derived from
    /// the master key, before over the published one.
    fn chunker(&self) -> crate::chunker::Chunker {
        if self.config.format_version >= FORMAT_3 {
            crate::chunker::Chunker::keyed(self.config.chunker, &self.repo.key().chunker_secret())
        } else {
            crate::chunker::Chunker::published(self.config.chunker)
        }
    }

    /// Takes this vault's shared (writers) or exclusive (prune, destroy) lock.
    async fn lock(&self, exclusive: bool) -> Result<crate::locks::LockGuard> {
        crate::locks::acquire(self.storage(), exclusive, self.lock_timing).await
    }

    /// Every pack in storage (listed or not in an index) and its size, by pack id.
    async fn pack_sizes(&self) -> Result<BTreeMap<String, u64>> {
        let listed = self.packs_listed().await?;
        Ok(listed
            .into_iter()
            .map(|(id, (size, _))| (id, size))
            .collect())
    }

    /// Every pack in storage (listed or not in an index) with its size and when the store
    /// wrote it, by pack id.
    async fn packs_listed(&self) -> Result<BTreeMap<String, (u64, Option<time::OffsetDateTime>)>> {
        let listed = self.repo.list_own(Kind::Pack).await?;
        Ok(listed
            .into_iter()
            .map(|l| (l.name, (l.size, l.modified)))
            .collect())
    }

    /// Keys under the vault's location that are not of its layout (FORMAT.md, "Layout"):
    /// nothing reads or deletes them; prune, destroy and verify report them.
    ///
    /// # Errors
    /// `Storage` when listing fails.
    pub async fn foreign_objects(&self) -> Result<Vec<String>> {
        self.repo.foreign_objects().await
    }

    /// The ids of every snapshot manifest, unordered.
    pub(super) async fn snapshot_ids(&self) -> Result<Vec<String>> {
        self.repo.ids_of(Kind::Snapshot).await
    }

    /// The ids of the snapshots that have a summary (some may have lost their manifest to a
    /// prune by an older build, which knew no summaries: callers intersect with
    /// [`Vault::snapshot_ids`]).
    pub(super) async fn summary_ids(&self) -> Result<Vec<String>> {
        self.repo.ids_of(Kind::Summary).await
    }

    /// Every snapshot, oldest first. Reads the small summaries, not the manifests. A
    /// snapshot whose manifest does not open is left out (see [`Vault::snapshot_listing`]).
    ///
    /// # Errors
    /// `Storage`.
    pub async fn snapshots(&self) -> Result<Vec<SnapshotInfo>> {
        Ok(self.snapshot_listing().await?.snapshots)
    }

    /// Every snapshot, oldest first, and the manifests that do not open. One damaged or
    /// planted object under `snapshots/` is reported here and skipped, so it never keeps
    /// listing, "latest", prune or a drill from the rest of the vault.
    ///
    /// # Errors
    /// `Storage` (an unreadable manifest is not an error here).
    pub async fn snapshot_listing(&self) -> Result<SnapshotListing> {
        let (ids, summarised) = tokio::try_join!(self.snapshot_ids(), self.summary_ids())?;
        let summarised: HashSet<String> = summarised.into_iter().collect();
        // Owned inputs: the futures must be Send for any caller (the provider's too).
        let read: Vec<(String, Result<SnapshotInfo>)> = futures_util::stream::iter(ids)
            .map(|id| {
                let has_summary = summarised.contains(&id);
                let info = snapshot_info(self.repo.clone(), id.clone(), has_summary);
                async move { (id, info.await) }
            })
            .buffer_unordered(SUMMARY_READS_IN_FLIGHT)
            .collect()
            .await;
        let mut listing = SnapshotListing::default();
        for (id, info) in read {
            match info {
                Ok(info) => listing.snapshots.push(info),
                Err(e) if e.kind == ErrorKind::Corrupt => listing
                    .unreadable
                    .push(Problem::unreadable_manifest(&id, &e)),
                // Deleted since it was listed (a prune): it is simply gone.
                Err(e) if e.kind == ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        listing
            .snapshots
            .sort_by(|a, b| a.time.cmp(&b.time).then(a.id.cmp(&b.id)));
        listing.unreadable.sort_by(|a, b| a.object.cmp(&b.object));
        Ok(listing)
    }

    /// Stores the manifest of snapshot `id`, then its summary, which records `stored` (what
    /// the snapshot's packs and index added) plus the manifest's own bytes. Returns the
    /// manifest's bytes (the summary, a few hundred, is a listing's shortcut, not counted).
    /// The manifest is what makes the snapshot exist; failing to write the summary fails
    /// nothing (listing reads the manifest instead).
    ///
    /// # Errors
    /// `AlreadyExists` when a manifest `id` exists; `Storage`.
    async fn store_manifest(&self, id: &str, snapshot: &Snapshot, stored: u64) -> Result<u64> {
        // Version 1 vaults keep JSON manifests, which the builds that made them can read.
        let raw = if self.config.format_version >= BINARY_MANIFESTS_SINCE {
            crate::manifest::encode(snapshot, self.config.format_version)?
        } else {
            json_manifest(snapshot)?
        };
        self.store_manifest_parts(id, vec![raw], snapshot.summary(), stored)
            .await
    }

    /// Writes the manifest of snapshot `id`, encoded in `parts`, then its `summary`.
    async fn store_manifest_parts(
        &self,
        id: &str,
        parts: Vec<Vec<u8>>,
        summary: ManifestSummary,
        stored: u64,
    ) -> Result<u64> {
        let manifest = self
            .repo
            .store_sealed_parts(&layout::snapshot(id), &layout::label::snapshot(id), parts)
            .await?;
        self.store_summary(id, summary, stored + manifest).await;
        Ok(manifest)
    }

    /// Writes the summary of snapshot `id`, whose manifest is stored, recording `stored` as
    /// what it added to storage. A failure only costs listings their shortcut.
    async fn store_summary(&self, id: &str, summary: ManifestSummary, stored: u64) {
        // Already there when a manifest of this id was deleted but not its summary (a prune by
        // an older build, or by hand) and is now written again (replication): it is the
        // same snapshot, sealed for the same id.
        let summary = ManifestSummary {
            stored_bytes: Some(stored),
            ..summary
        };
        let _ = self
            .repo
            .store_sealed_json(&layout::summary(id), &layout::label::summary(id), &summary)
            .await;
    }

    /// Resolves `latest`, a full id or a unique prefix of one.
    ///
    /// # Errors
    /// `NotFound` when nothing matches; `InvalidInput` when a prefix is ambiguous.
    pub async fn resolve_snapshot(&self, wanted: &str) -> Result<String> {
        if wanted == "latest" {
            return self.latest_in_series("").await?.ok_or_else(|| {
                Error::new(
                    ErrorKind::NotFound,
                    format!(
                        "the vault at {} holds no snapshot yet",
                        self.storage().url()
                    ),
                )
                .hint("take one with `drctl vault snapshot`")
            });
        }
        let ids = self.snapshot_ids().await?;
        let matches: Vec<&String> = ids.iter().filter(|id| id.starts_with(wanted)).collect();
        match matches.as_slice() {
            [one] => Ok((*one).clone()),
            [] => Err(Error::new(
                ErrorKind::NotFound,
                format!("no snapshot {wanted:?} in {}", self.storage().url()),
            )
            .hint("list them with `drctl vault snapshots`")),
            _ => Err(Error::new(
                ErrorKind::InvalidInput,
                format!(
                    "snapshot prefix {wanted:?} matches {} snapshots",
                    matches.len()
                ),
            )
            .hint("give more characters of the id")),
        }
    }

    /// The newest snapshot of a series ("" for ordinary snapshots), if any.
    ///
    /// # Errors
    /// `Corrupt`, `Storage`.
    pub async fn latest_in_series(&self, series: &str) -> Result<Option<String>> {
        let infos = self.snapshots().await?;
        Ok(infos
            .iter()
            .rev()
            .find(|i| i.series() == series)
            .map(|i| i.id.clone()))
    }

    /// Reads one snapshot manifest.
    ///
    /// # Errors
    /// `NotFound`, `Corrupt`.
    pub async fn load_snapshot(&self, id: &str) -> Result<Snapshot> {
        self.repo.load_manifest(id).await
    }

    /// The digest the sources have now (cheap: unchanged files reuse the latest snapshot's
    /// digests). Equal to the latest snapshot's `source_digest` when nothing changed.
    ///
    /// # Errors
    /// Scan and read errors naming the path.
    pub async fn source_digest(&self, specs: &[SourceSpec]) -> Result<String> {
        let latest = match self.resolve_snapshot("latest").await {
            // As a snapshot does: a latest manifest that does not open gives no shortcut.
            // Its entries are decoded as the walk meets their paths, as a snapshot's are.
            Ok(id) => match self.repo.load_manifest_entries(&id).await {
                Ok(entries) => entries,
                Err(e) if e.kind == ErrorKind::Corrupt => ManifestEntries::none(),
                Err(e) => return Err(e),
            },
            Err(e) if e.kind == ErrorKind::NotFound => ManifestEntries::none(),
            Err(e) => return Err(e),
        };
        let specs = specs.to_vec();
        let exact_names = self.config.format_version >= FORMAT_3;
        tokio::task::spawn_blocking(move || sources::digest_against(&specs, latest, exact_names))
            .await
            .map_err(|e| Error::new(ErrorKind::Io, format!("digest task failed: {e}")))?
    }
}

/// A manifest as JSON, as version 1 vaults keep them (the builds that made them read them).
fn json_manifest(snapshot: &Snapshot) -> Result<Vec<u8>> {
    // About 250 bytes of JSON per entry (a path, two hex digests, numbers): reserved up
    // front, as growing the buffer by doubling copied it twice over.
    let entries: usize = snapshot.sources.iter().map(|s| s.entries.len()).sum();
    let mut raw = Vec::with_capacity(entries * 256);
    serde_json::to_writer(&mut raw, snapshot)
        .map_err(|e| Error::new(ErrorKind::Io, e.to_string()))?;
    Ok(raw)
}

/// Checks a config against the master key that opened its vault. From format 3 the config
/// carries a MAC under the master key; a key file sealed for format 3 proves the vault is
/// format 3 or later, so a config rewritten to claim an older version (which has no MAC)
/// is refused too. Older vaults' configs cannot be authenticated: their chunker bounds and
/// pack size are still checked (`Config::check`).
fn authenticate(
    config: &Config,
    key: &MasterKey,
    key_made_for: u32,
    storage: &Storage,
) -> Result<()> {
    let object = format!("{}/{}", storage.url(), layout::CONFIG);
    if config.format_version < FORMAT_3 && key_made_for < FORMAT_3 {
        return Ok(());
    }
    if config.format_version < FORMAT_3 {
        return Err(Error::corrupt(
            &object,
            format!(
                "says format {} but the vault's keys were made for format {key_made_for}: the config was altered",
                config.format_version
            ),
        ));
    }
    let expected = key.config_mac(&config.mac_input());
    let matches = config
        .mac
        .as_deref()
        .and_then(|mac| blake3::Hash::from_hex(mac).ok())
        // blake3::Hash compares in constant time.
        .is_some_and(|mac| mac == expected);
    if !matches {
        return Err(Error::corrupt(
            &object,
            "fails authentication: it was altered or planted by someone without the vault's key",
        ));
    }
    Ok(())
}

/// One snapshot as listed: from its summary when there is a readable one, else from the
/// manifest. A damaged summary only loses the shortcut (the manifest says the same, and
/// verify reports the summary).
async fn snapshot_info(repo: Repo, id: String, summarised: bool) -> Result<SnapshotInfo> {
    if summarised {
        let object = layout::summary(&id);
        let from_summary = repo
            .load_sealed_json::<ManifestSummary>(&object, &layout::label::summary(&id))
            .await
            .and_then(|summary| SnapshotInfo::new(id.clone(), summary, &object));
        match from_summary {
            Ok(info) => return Ok(info),
            Err(e) if matches!(e.kind, ErrorKind::Corrupt | ErrorKind::NotFound) => {}
            Err(e) => return Err(e),
        }
    }
    let manifest = repo.load_manifest(&id).await?;
    SnapshotInfo::new(id.clone(), manifest.summary(), &layout::snapshot(&id))
}

/// Parses and checks the plain `config` object of the vault at `url` (named in errors): the
/// format version first, so a newer vault is named as such rather than as corrupt.
///
/// # Errors
/// `UnsupportedVersion` for a newer format; `Corrupt` for what does not parse or is out of range.
pub(crate) fn parse_config(raw: &[u8], url: &str) -> Result<Config> {
    let object = format!("{url}/{}", layout::CONFIG);
    let value: serde_json::Value =
        serde_json::from_slice(raw).map_err(|e| Error::corrupt(&object, e))?;
    let version = value["format_version"].as_u64().unwrap_or(0);
    if version > u64::from(FORMAT_VERSION) {
        return Err(Error::new(
            ErrorKind::UnsupportedVersion,
            format!("the vault at {url} has format version {version}; this build reads up to {FORMAT_VERSION}"),
        )
        .hint("upgrade drctl / terraform-provider-dr to a release that reads it"));
    }
    let config: Config = serde_json::from_value(value).map_err(|e| Error::corrupt(&object, e))?;
    // In every version: a planted config must not crash the chunker (FastCDC asserts its
    // bounds) nor make writers hold absurd packs in flight.
    config
        .check()
        .map_err(|what| Error::corrupt(&object, what))?;
    Ok(config)
}

/// Parses a key file read from `name`. Key files are plain objects anyone with write access
/// can plant: the caller skips one that does not parse.
///
/// # Errors
/// `Corrupt` naming `name`.
pub(crate) fn parse_key_file(raw: &[u8], name: &str) -> Result<KeyFile> {
    serde_json::from_slice::<KeyFile>(raw)
        .map_err(|e| Error::corrupt(name, format!("is not a key file: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Version 2 vaults store manifests in the binary encoding; version 1 vaults keep JSON,
    /// which the builds that made them read.
    #[tokio::test]
    async fn manifests_are_binary_from_version_2_and_json_before() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.txt"), "a").unwrap();
        let specs = [SourceSpec::new("s", dir.path())];
        let storage = Storage::memory();
        let mut opts = InitOptions::new("v", "r");
        opts.kdf = KdfParams::INSECURE_FOR_TESTS;
        let passphrase = Passphrase::new("p");
        let mut vault = Vault::init(storage.clone(), &opts, &passphrase)
            .await
            .unwrap();
        for (version, binary) in [(1, false), (2, true), (3, true)] {
            vault.config.format_version = version;
            let taken = vault
                .snapshot(&specs, &BTreeMap::new(), &NoProgress)
                .await
                .unwrap();
            let id = &taken.id;
            let (raw, _) = crate::repo::blob::load_sealed(
                &storage,
                vault.repo.key(),
                &layout::snapshot(id),
                &layout::label::snapshot(id),
            )
            .await
            .unwrap();
            assert_eq!(
                crate::manifest::is_binary(&raw),
                binary,
                "version {version}"
            );
            assert_eq!(raw.first() == Some(&b'{'), !binary, "version {version}");
            let manifest = vault.load_snapshot(id).await.unwrap();
            assert_eq!(manifest.source_digest, taken.source_digest);
        }
    }

    /// A format 3 vault cuts files where its own key says (so chunk sizes tell nothing about
    /// known content to anyone without it), and its snapshots use that chunker; older
    /// vaults keep the published table their data was cut with.
    #[tokio::test]
    async fn format_3_vaults_cut_with_a_table_of_their_own() {
        let mut opts = InitOptions::new("v", "r");
        opts.kdf = KdfParams::INSECURE_FOR_TESTS;
        opts.chunker = ChunkerParams {
            min_size: 1024,
            avg_size: 4096,
            max_size: 16 * 1024,
        };
        let data: Vec<u8> = (0..512 * 1024u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        let cuts = |vault: &Vault| -> Vec<std::ops::Range<usize>> {
            vault.chunker().chunks(&data).collect()
        };
        let passphrase = Passphrase::new("p");
        let a = Vault::init(Storage::memory(), &opts, &passphrase)
            .await
            .unwrap();
        let b = Vault::init(Storage::memory(), &opts, &passphrase)
            .await
            .unwrap();
        let published: Vec<_> = crate::chunker::Chunker::published(opts.chunker)
            .chunks(&data)
            .collect();
        assert_ne!(cuts(&a), cuts(&b));
        assert_ne!(cuts(&a), published);

        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("tool.bin"), &data).unwrap();
        let taken = a
            .snapshot(
                &[SourceSpec::new("s", dir.path())],
                &BTreeMap::new(),
                &NoProgress,
            )
            .await
            .unwrap();
        let manifest = a.load_snapshot(&taken.id).await.unwrap();
        let file = manifest.sources[0]
            .entries
            .iter()
            .find(|e| e.path == "tool.bin")
            .unwrap();
        let index = a.repo.blob_index().await.unwrap();
        let stored: Vec<u32> = file.chunks.iter().map(|c| index[c].1.raw_length).collect();
        let expected: Vec<u32> = cuts(&a).iter().map(|c| c.len() as u32).collect();
        assert_eq!(stored, expected);

        let mut old = b;
        old.config.format_version = 2;
        assert_eq!(cuts(&old), published);
    }
}
