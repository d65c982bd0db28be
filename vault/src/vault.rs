//! The vault: init and open, snapshot, list, restore, verify. Operations return data and never
//! print; long ones report through [`Progress`].

use crate::crypto::{random_id, BlobId, KdfParams, KeyFile, MasterKey, Passphrase};
use crate::error::{Error, ErrorKind, Result};
use crate::format::{
    BlobLocation, ChunkerParams, Config, Entry, EntryKind, IndexFile, PackEntry, Snapshot,
    SnapshotSource, FORMAT_VERSION,
};
use crate::sources::{self, Item, SourceSpec};
use crate::storage::Storage;
use bytes::Bytes;
use futures_util::StreamExt as _;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::Write as _;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc;

/// Reports progress of long operations; the engine has no terminal code.
pub trait Progress: Send + Sync {
    /// A phase begins; `total` is in bytes (0 when unknown).
    fn phase(&self, _name: &str, _total: u64) {}
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

/// A snapshot as listed.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SnapshotInfo {
    pub id: String,
    pub time: String,
    pub sources: Vec<String>,
    pub files: usize,
    pub bytes: u64,
    pub labels: BTreeMap<String, String>,
    pub source_digest: String,
}

/// What a snapshot did.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SnapshotSummary {
    pub id: String,
    pub time: String,
    pub files: usize,
    /// Files read because they were new or changed.
    pub files_read: usize,
    pub bytes: u64,
    /// Bytes of new blobs (before compression).
    pub bytes_new: u64,
    /// Bytes written to storage (packs, index, manifest).
    pub bytes_stored: u64,
    pub source_digest: String,
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

/// What verify checked and found.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct VerifyReport {
    pub snapshots: usize,
    pub index_files: usize,
    pub packs: usize,
    pub blobs_checked: usize,
    pub bytes_read: u64,
    pub problems: Vec<Problem>,
}

impl VerifyReport {
    pub fn is_clean(&self) -> bool {
        self.problems.is_empty()
    }
}

/// An open vault.
pub struct Vault {
    storage: Storage,
    config: Config,
    key: Arc<MasterKey>,
}

const CONFIG: &str = "config";

/// RFC 3339 UTC with nanoseconds: snapshots taken in the same second must still sort in the
/// order they were taken ("latest" depends on it).
fn now_rfc3339() -> String {
    let format = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:9]Z"
    );
    time::OffsetDateTime::now_utc()
        .format(&format)
        .unwrap_or_default()
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_default()
}

fn pack_key(id: &str) -> String {
    format!("data/{}/{id}", &id[..2.min(id.len())])
}

fn zstd_frame(raw: &[u8]) -> Vec<u8> {
    match zstd::bulk::compress(raw, 3) {
        Ok(z) if z.len() + 1 < raw.len() + 1 => {
            let mut out = Vec::with_capacity(z.len() + 1);
            out.push(1);
            out.extend_from_slice(&z);
            out
        }
        _ => {
            let mut out = Vec::with_capacity(raw.len() + 1);
            out.push(0);
            out.extend_from_slice(raw);
            out
        }
    }
}

fn unframe(object: &str, framed: &[u8], raw_length: usize) -> Result<Vec<u8>> {
    match framed.split_first() {
        Some((0, raw)) => Ok(raw.to_vec()),
        Some((1, z)) => zstd::bulk::decompress(z, raw_length)
            .map_err(|e| Error::corrupt(object, format!("does not decompress: {e}"))),
        _ => Err(Error::corrupt(object, "unknown compression tag")),
    }
}

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
        if storage.exists(CONFIG).await? {
            return Err(Error::new(
                ErrorKind::AlreadyExists,
                format!("a vault already exists at {}", storage.url()),
            )
            .hint("open it instead, or choose another location"));
        }
        let key = MasterKey::generate();
        let key_id = random_id();
        let keyfile = key.wrap(passphrase, opts.kdf, now_rfc3339())?;
        let key_json = serde_json::to_vec_pretty(&keyfile)
            .map_err(|e| Error::new(ErrorKind::Io, e.to_string()))?;
        storage
            .put_new(&format!("keys/{key_id}"), Bytes::from(key_json))
            .await?;
        let config = Config {
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
        };
        let config_json = serde_json::to_vec_pretty(&config)
            .map_err(|e| Error::new(ErrorKind::Io, e.to_string()))?;
        // The config is written last: its presence is what makes a vault.
        if !storage.put_new(CONFIG, Bytes::from(config_json)).await? {
            storage.delete(&format!("keys/{key_id}")).await?;
            return Err(Error::new(
                ErrorKind::AlreadyExists,
                format!("a vault was created at {} concurrently", storage.url()),
            ));
        }
        Ok(Vault {
            storage,
            config,
            key: Arc::new(key),
        })
    }

    /// Opens a vault with a passphrase.
    ///
    /// # Errors
    /// `NotFound` without a vault; `UnsupportedVersion` for a newer format; `WrongPassphrase`
    /// when no key opens.
    pub async fn open(storage: Storage, passphrase: &Passphrase) -> Result<Vault> {
        let config = Self::read_config(&storage).await?;
        for listed in storage.list("keys").await? {
            let raw = storage.get(&listed.key).await?;
            let file: KeyFile = serde_json::from_slice(&raw)
                .map_err(|e| Error::corrupt(&listed.key, format!("not a key file: {e}")))?;
            if let Some(key) = MasterKey::unwrap(&file, &listed.key, passphrase)? {
                return Ok(Vault {
                    storage,
                    config,
                    key: Arc::new(key),
                });
            }
        }
        Err(Error::new(
            ErrorKind::WrongPassphrase,
            format!(
                "no key of the vault at {} opens with this passphrase",
                storage.url()
            ),
        )
        .hint("check DR_PASSPHRASE or the passphrase file; the vault itself is unchanged"))
    }

    /// Reads the plain config (no passphrase needed).
    ///
    /// # Errors
    /// `NotFound` without a vault; `UnsupportedVersion` for a newer format; `Corrupt`.
    pub async fn read_config(storage: &Storage) -> Result<Config> {
        let raw = match storage.get(CONFIG).await {
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
        let value: serde_json::Value = serde_json::from_slice(&raw)
            .map_err(|e| Error::corrupt(&format!("{}/config", storage.url()), e))?;
        let version = value["format_version"].as_u64().unwrap_or(0);
        if version > u64::from(FORMAT_VERSION) {
            return Err(Error::new(
                ErrorKind::UnsupportedVersion,
                format!("the vault at {} has format version {version}; this build reads up to {FORMAT_VERSION}", storage.url()),
            )
            .hint("upgrade drctl / terraform-provider-dr to a release that reads it"));
        }
        serde_json::from_value(value)
            .map_err(|e| Error::corrupt(&format!("{}/config", storage.url()), e))
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    pub fn storage(&self) -> &Storage {
        &self.storage
    }

    async fn load_sealed_json<T: serde::de::DeserializeOwned>(
        &self,
        key: &str,
        ad: &str,
    ) -> Result<T> {
        let sealed = self.storage.get(key).await?;
        let object = format!("{}/{key}", self.storage.url());
        let framed = self.key.open(&object, ad.as_bytes(), &sealed)?;
        let raw = match framed.split_first() {
            Some((1, z)) => zstd::stream::decode_all(z)
                .map_err(|e| Error::corrupt(&object, format!("does not decompress: {e}")))?,
            Some((0, raw)) => raw.to_vec(),
            _ => return Err(Error::corrupt(&object, "unknown compression tag")),
        };
        serde_json::from_slice(&raw)
            .map_err(|e| Error::corrupt(&object, format!("is not valid: {e}")))
    }

    async fn store_sealed_json<T: serde::Serialize>(
        &self,
        key: &str,
        ad: &str,
        value: &T,
    ) -> Result<u64> {
        let raw =
            serde_json::to_vec(value).map_err(|e| Error::new(ErrorKind::Io, e.to_string()))?;
        let sealed = self.key.seal(ad.as_bytes(), &zstd_frame(&raw));
        let len = sealed.len() as u64;
        if !self.storage.put_new(key, Bytes::from(sealed)).await? {
            return Err(Error::new(
                ErrorKind::AlreadyExists,
                format!("{}/{key} already exists", self.storage.url()),
            ));
        }
        Ok(len)
    }

    /// Every index file, merged: blob → (pack, location).
    async fn load_index(&self) -> Result<HashMap<BlobId, (Arc<str>, BlobLocation)>> {
        let mut map = HashMap::new();
        for listed in self.storage.list("index").await? {
            let id = listed.key.rsplit('/').next().unwrap_or_default();
            let index: IndexFile = self
                .load_sealed_json(&listed.key, &format!("index:{id}"))
                .await?;
            for pack in index.packs {
                let pack_id: Arc<str> = Arc::from(pack.id.as_str());
                for blob in pack.blobs {
                    map.insert(blob.id, (pack_id.clone(), blob));
                }
            }
        }
        Ok(map)
    }

    /// Every snapshot, oldest first.
    ///
    /// # Errors
    /// `Corrupt` naming an unreadable manifest; `Storage`.
    pub async fn snapshots(&self) -> Result<Vec<SnapshotInfo>> {
        let mut out = Vec::new();
        for listed in self.storage.list("snapshots").await? {
            let id = listed
                .key
                .rsplit('/')
                .next()
                .unwrap_or_default()
                .to_string();
            let s = self.load_snapshot(&id).await?;
            out.push(SnapshotInfo {
                id,
                time: s.time.clone(),
                sources: s.sources.iter().map(|x| x.name.clone()).collect(),
                files: s.file_count(),
                bytes: s.total_bytes(),
                labels: s.labels.clone(),
                source_digest: s.source_digest.clone(),
            });
        }
        out.sort_by(|a, b| a.time.cmp(&b.time).then(a.id.cmp(&b.id)));
        Ok(out)
    }

    /// Resolves `latest`, a full id or a unique prefix of one.
    ///
    /// # Errors
    /// `NotFound` when nothing matches; `InvalidInput` when a prefix is ambiguous.
    pub async fn resolve_snapshot(&self, wanted: &str) -> Result<String> {
        let all = self.storage.list("snapshots").await?;
        let ids: Vec<String> = all
            .iter()
            .map(|l| l.key.rsplit('/').next().unwrap_or_default().to_string())
            .collect();
        if wanted == "latest" {
            let infos = self.snapshots().await?;
            return infos.last().map(|i| i.id.clone()).ok_or_else(|| {
                Error::new(
                    ErrorKind::NotFound,
                    format!("the vault at {} holds no snapshot yet", self.storage.url()),
                )
                .hint("take one with `drctl vault snapshot`")
            });
        }
        let matches: Vec<&String> = ids.iter().filter(|id| id.starts_with(wanted)).collect();
        match matches.as_slice() {
            [one] => Ok((*one).clone()),
            [] => Err(Error::new(
                ErrorKind::NotFound,
                format!("no snapshot {wanted:?} in {}", self.storage.url()),
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

    /// Reads one snapshot manifest.
    ///
    /// # Errors
    /// `NotFound`, `Corrupt`.
    pub async fn load_snapshot(&self, id: &str) -> Result<Snapshot> {
        self.load_sealed_json(&format!("snapshots/{id}"), &format!("snapshot:{id}"))
            .await
    }

    /// The digest the sources have now (cheap: unchanged files reuse the latest snapshot's
    /// digests). Equal to the latest snapshot's `source_digest` when nothing changed.
    ///
    /// # Errors
    /// Scan and read errors naming the path.
    pub async fn source_digest(&self, specs: &[SourceSpec]) -> Result<String> {
        let latest = match self.resolve_snapshot("latest").await {
            Ok(id) => Some(self.load_snapshot(&id).await?),
            Err(e) if e.kind == ErrorKind::NotFound => None,
            Err(e) => return Err(e),
        };
        let specs = specs.to_vec();
        tokio::task::spawn_blocking(move || sources::source_digest(&specs, latest.as_ref()))
            .await
            .map_err(|e| Error::new(ErrorKind::Io, format!("digest task failed: {e}")))?
    }

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
        let scan_specs = specs.to_vec();
        let scanned = tokio::task::spawn_blocking(move || sources::scan(&scan_specs))
            .await
            .map_err(|e| Error::new(ErrorKind::Io, format!("scan task failed: {e}")))??;
        let parent_id = match self.resolve_snapshot("latest").await {
            Ok(id) => Some(id),
            Err(e) if e.kind == ErrorKind::NotFound => None,
            Err(e) => return Err(e),
        };
        let parent = match &parent_id {
            Some(id) => Some(self.load_snapshot(id).await?),
            None => None,
        };
        let index = self.load_index().await?;
        let claimed: Arc<Mutex<HashSet<BlobId>>> =
            Arc::new(Mutex::new(index.keys().copied().collect()));
        let previous: HashMap<(String, String), Entry> = parent
            .iter()
            .flat_map(|p| {
                p.sources.iter().flat_map(|s| {
                    s.entries
                        .iter()
                        .map(move |e| ((s.name.clone(), e.path.clone()), e.clone()))
                })
            })
            .collect();

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

        let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
        let mut files_read = 0usize;
        let mut bytes_new = 0u64;
        let mut snapshot_sources = Vec::new();
        for source in scanned {
            let mut jobs = Vec::new();
            for item in source.items {
                match previous.get(&(source.name.clone(), item.entry.path.clone())) {
                    Some(old) if sources::unchanged(old, &item.entry) => {
                        progress.advance(item.entry.size);
                        jobs.push(Job::Reuse(old.clone()));
                    }
                    _ if item.entry.kind == EntryKind::File => jobs.push(Job::Read(item)),
                    _ => jobs.push(Job::Reuse(item.entry)),
                }
            }
            let results: Vec<Result<(Entry, bool, u64)>> = futures_util::stream::iter(jobs)
                .map(|job| {
                    let tx = tx.clone();
                    let key = self.key.clone();
                    let claimed = claimed.clone();
                    let chunker = self.config.chunker;
                    async move {
                        match job {
                            Job::Reuse(entry) => Ok((entry, false, 0)),
                            Job::Read(item) => tokio::task::spawn_blocking(move || {
                                read_file(item, &key, chunker, &claimed, &tx)
                            })
                            .await
                            .map_err(|e| {
                                Error::new(ErrorKind::Io, format!("read task failed: {e}"))
                            })?
                            .map(|(e, new)| (e, true, new)),
                        }
                    }
                })
                .buffered(workers)
                .collect()
                .await;
            let mut entries = Vec::with_capacity(results.len());
            for r in results {
                let (entry, read, new) = r?;
                if read {
                    files_read += 1;
                    progress.advance(entry.size);
                }
                bytes_new += new;
                entries.push(entry);
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
        bytes_stored += self
            .store_sealed_json(
                &format!("snapshots/{id}"),
                &format!("snapshot:{id}"),
                &snapshot,
            )
            .await?;
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

    /// Restores a snapshot into `target` (which must be missing or empty): every source into
    /// `target/<source name>`, or just `only_source` directly into `target`. Never writes
    /// outside `target` and never through a symlink.
    ///
    /// # Errors
    /// `UnsafePath` for hostile entries; `InvalidInput` for a non-empty target or unknown
    /// source; `Corrupt` naming the damaged object.
    pub async fn restore(
        &self,
        snapshot_id: &str,
        target: &Path,
        only_source: Option<&str>,
        progress: &dyn Progress,
    ) -> Result<RestoreSummary> {
        let id = self.resolve_snapshot(snapshot_id).await?;
        let snapshot = self.load_snapshot(&id).await?;
        let chosen: Vec<&SnapshotSource> = match only_source {
            Some(name) => {
                let s = snapshot
                    .sources
                    .iter()
                    .find(|s| s.name == name)
                    .ok_or_else(|| {
                        let names: Vec<&str> =
                            snapshot.sources.iter().map(|s| s.name.as_str()).collect();
                        Error::new(
                            ErrorKind::InvalidInput,
                            format!(
                                "snapshot {} has no source {name:?}; it has {names:?}",
                                &id[..8]
                            ),
                        )
                    })?;
                vec![s]
            }
            None => snapshot.sources.iter().collect(),
        };
        prepare_target(target)?;
        let index = self.load_index().await?;
        let total: u64 = chosen.iter().flat_map(|s| &s.entries).map(|e| e.size).sum();
        progress.phase("restore", total);
        let mut summary = RestoreSummary {
            snapshot_id: id.clone(),
            files: 0,
            dirs: 0,
            symlinks: 0,
            bytes: 0,
        };
        let mut dir_times = Vec::new();
        for source in chosen {
            let root = if only_source.is_some() {
                target.to_path_buf()
            } else {
                safe_child(target, &source.name)?
            };
            if only_source.is_none() {
                ensure_dirs(target, &[source.name.as_str()])?;
            }
            for entry in &source.entries {
                let parts = safe_components(&entry.path)?;
                let dest = parts.iter().fold(root.clone(), |p, c| p.join(c));
                match entry.kind {
                    EntryKind::Dir => {
                        ensure_dirs(&root, &parts)?;
                        dir_times.push((dest, entry.mode, entry.mtime_ns));
                        summary.dirs += 1;
                    }
                    EntryKind::Symlink => {
                        let (parent_parts, _) = parts.split_at(parts.len().saturating_sub(1));
                        ensure_dirs(&root, parent_parts)?;
                        refuse_existing(&dest)?;
                        let link = entry.link_target.as_deref().unwrap_or_default();
                        std::os::unix::fs::symlink(link, &dest)
                            .map_err(|e| Error::io(&dest, "create the symlink", e))?;
                        summary.symlinks += 1;
                    }
                    EntryKind::File => {
                        let (parent_parts, _) = parts.split_at(parts.len().saturating_sub(1));
                        ensure_dirs(&root, parent_parts)?;
                        self.restore_file(entry, &dest, &index, progress).await?;
                        summary.files += 1;
                        summary.bytes += entry.size;
                    }
                }
            }
        }
        // Directories last, deepest first, so writing their contents does not reset them.
        dir_times.sort_by(|a, b| b.0.cmp(&a.0));
        for (dir, mode, mtime_ns) in dir_times {
            set_mode_and_mtime(&dir, mode, mtime_ns)?;
        }
        Ok(summary)
    }

    async fn restore_file(
        &self,
        entry: &Entry,
        dest: &Path,
        index: &HashMap<BlobId, (Arc<str>, BlobLocation)>,
        progress: &dyn Progress,
    ) -> Result<()> {
        refuse_existing(dest)?;
        let parent = dest.parent().unwrap_or(Path::new("."));
        let partial = parent.join(format!(".dr-restore-{}", &random_id()[..16]));
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&partial)
            .map_err(|e| Error::io(&partial, "create", e))?;
        let result = async {
            let mut hasher = blake3::Hasher::new();
            for chunk_id in &entry.chunks {
                let data = self.read_blob(chunk_id, index, &entry.path).await?;
                hasher.update(&data);
                file.write_all(&data)
                    .map_err(|e| Error::io(dest, "write", e))?;
                progress.advance(data.len() as u64);
            }
            let digest = hasher.finalize().to_hex().to_string();
            if entry.digest.as_deref().is_some_and(|d| d != digest) {
                return Err(Error::corrupt(
                    &entry.path,
                    "restored content does not match the snapshot's digest",
                ));
            }
            file.sync_all().map_err(|e| Error::io(dest, "sync", e))?;
            drop(file);
            set_mode_and_mtime(&partial, entry.mode, entry.mtime_ns)?;
            refuse_existing(dest)?;
            std::fs::rename(&partial, dest).map_err(|e| Error::io(dest, "create", e))
        }
        .await;
        if result.is_err() {
            let _ = std::fs::remove_file(&partial);
        }
        result
    }

    async fn read_blob(
        &self,
        id: &BlobId,
        index: &HashMap<BlobId, (Arc<str>, BlobLocation)>,
        file: &str,
    ) -> Result<Vec<u8>> {
        let (pack, loc) = index.get(id).ok_or_else(|| {
            Error::corrupt(
                &format!("{}/index", self.storage.url()),
                format!("blob {} of {file:?} is in no index", &id.to_hex()[..16]),
            )
        })?;
        let key = pack_key(pack);
        let sealed = self
            .storage
            .get_range(&key, loc.offset..loc.offset + u64::from(loc.length))
            .await?;
        open_blob(
            &self.key,
            &format!("{}/{key}", self.storage.url()),
            loc,
            &sealed,
        )
    }

    /// Checks the vault: every index and snapshot decrypts, every referenced blob is indexed,
    /// every indexed pack exists and is long enough; with `read_data`, every blob of every
    /// pack is decrypted and re-hashed. Problems are collected, not thrown.
    ///
    /// # Errors
    /// Only when listing the vault fails.
    pub async fn verify(&self, read_data: bool, progress: &dyn Progress) -> Result<VerifyReport> {
        let mut report = VerifyReport::default();
        let url = self.storage.url().to_string();
        let pack_sizes: HashMap<String, u64> = self
            .storage
            .list("data")
            .await?
            .into_iter()
            .map(|l| {
                (
                    l.key.rsplit('/').next().unwrap_or_default().to_string(),
                    l.size,
                )
            })
            .collect();
        let mut index: HashMap<BlobId, (String, BlobLocation)> = HashMap::new();
        let mut packs: BTreeMap<String, Vec<BlobLocation>> = BTreeMap::new();
        for listed in self.storage.list("index").await? {
            report.index_files += 1;
            let id = listed.key.rsplit('/').next().unwrap_or_default();
            match self
                .load_sealed_json::<IndexFile>(&listed.key, &format!("index:{id}"))
                .await
            {
                Ok(file) => {
                    for pack in file.packs {
                        for blob in &pack.blobs {
                            index.insert(blob.id, (pack.id.clone(), *blob));
                        }
                        packs.entry(pack.id).or_default().extend(pack.blobs);
                    }
                }
                Err(e) => report.problems.push(Problem {
                    object: format!("{url}/{}", listed.key),
                    message: e.to_string(),
                }),
            }
        }
        for (pack, blobs) in &packs {
            let object = format!("{url}/{}", pack_key(pack));
            let end = blobs
                .iter()
                .map(|b| b.offset + u64::from(b.length))
                .max()
                .unwrap_or(0);
            match pack_sizes.get(pack) {
                None => report.problems.push(Problem {
                    object,
                    message: "pack is missing".into(),
                }),
                Some(size) if *size < end => {
                    report.problems.push(Problem {
                        object,
                        message: format!("pack is truncated: {size} bytes, blobs reach {end}"),
                    });
                }
                Some(_) => {}
            }
        }
        report.packs = packs.len();
        for listed in self.storage.list("snapshots").await? {
            report.snapshots += 1;
            let id = listed.key.rsplit('/').next().unwrap_or_default();
            match self.load_snapshot(id).await {
                Ok(s) => {
                    for src in &s.sources {
                        for e in &src.entries {
                            for c in &e.chunks {
                                if !index.contains_key(c) {
                                    report.problems.push(Problem {
                                        object: format!("{url}/{}", listed.key),
                                        message: format!(
                                            "{}/{}: blob {} is in no index",
                                            src.name,
                                            e.path,
                                            &c.to_hex()[..16]
                                        ),
                                    });
                                }
                            }
                        }
                    }
                }
                Err(e) => report.problems.push(Problem {
                    object: format!("{url}/{}", listed.key),
                    message: e.to_string(),
                }),
            }
        }
        if read_data {
            let total: u64 = pack_sizes.values().sum();
            progress.phase("verify data", total);
            for (pack, blobs) in &packs {
                let key = pack_key(pack);
                let object = format!("{url}/{key}");
                if !pack_sizes.contains_key(pack) {
                    continue;
                }
                let data = match self.storage.get(&key).await {
                    Ok(d) => d,
                    Err(e) => {
                        report.problems.push(Problem {
                            object,
                            message: e.to_string(),
                        });
                        continue;
                    }
                };
                report.bytes_read += data.len() as u64;
                progress.advance(data.len() as u64);
                for blob in blobs {
                    report.blobs_checked += 1;
                    let range = blob.offset as usize
                        ..(blob.offset as usize).saturating_add(blob.length as usize);
                    let Some(sealed) = data.get(range) else {
                        report.problems.push(Problem {
                            object: object.clone(),
                            message: format!("blob {} lies past the end", &blob.id.to_hex()[..16]),
                        });
                        continue;
                    };
                    if let Err(e) = open_blob(&self.key, &object, blob, sealed) {
                        report.problems.push(Problem {
                            object: object.clone(),
                            message: format!("blob {}: {}", &blob.id.to_hex()[..16], e.message),
                        });
                    }
                }
            }
        }
        Ok(report)
    }
}

enum Job {
    Reuse(Entry),
    Read(Item),
}

struct SealedBlob {
    id: BlobId,
    sealed: Vec<u8>,
    raw_length: u32,
}

/// Decrypts, decompresses and re-hashes one blob.
fn open_blob(key: &MasterKey, object: &str, loc: &BlobLocation, sealed: &[u8]) -> Result<Vec<u8>> {
    let framed = key.open(
        object,
        format!("blob:{}", loc.id.to_hex()).as_bytes(),
        sealed,
    )?;
    let raw = unframe(object, &framed, loc.raw_length as usize)?;
    if key.blob_id(&raw) != loc.id {
        return Err(Error::corrupt(
            object,
            format!("blob {} does not hash to its id", &loc.id.to_hex()[..16]),
        ));
    }
    Ok(raw)
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
    let file = std::fs::File::open(&item.abs).map_err(|e| Error::io(&item.abs, "read", e))?;
    let mut hasher = blake3::Hasher::new();
    let mut size = 0u64;
    let mut new_bytes = 0u64;
    let reader = std::io::BufReader::with_capacity(256 * 1024, file);
    let cdc = fastcdc::v2020::StreamCDC::new(
        reader,
        chunker.min_size,
        chunker.avg_size,
        chunker.max_size,
    );
    for chunk in cdc {
        let chunk = chunk
            .map_err(|e| Error::io(&item.abs, "read", std::io::Error::other(e.to_string())))?;
        hasher.update(&chunk.data);
        size += chunk.data.len() as u64;
        let id = key.blob_id(&chunk.data);
        entry.chunks.push(id);
        let fresh = claimed
            .lock()
            .map(|mut set| set.insert(id))
            .unwrap_or(false);
        if fresh {
            new_bytes += chunk.data.len() as u64;
            let sealed = key.seal(
                format!("blob:{}", id.to_hex()).as_bytes(),
                &zstd_frame(&chunk.data),
            );
            let blob = SealedBlob {
                id,
                sealed,
                raw_length: chunk.data.len() as u32,
            };
            tx.blocking_send(blob).map_err(|_| {
                Error::new(
                    ErrorKind::Storage,
                    "the pack writer stopped; see the error before this one",
                )
            })?;
        }
    }
    // A file that changed while being read records what was read.
    entry.size = size;
    entry.digest = Some(hasher.finalize().to_hex().to_string());
    Ok((entry, new_bytes))
}

/// Collects sealed blobs into packs of about `target` bytes and uploads each; returns the packs
/// written and the bytes stored.
async fn pack_writer(
    storage: Storage,
    key: Arc<MasterKey>,
    target: usize,
    mut rx: mpsc::Receiver<SealedBlob>,
) -> Result<(Vec<PackEntry>, u64)> {
    let mut packs = Vec::new();
    let mut stored = 0u64;
    let mut buf: Vec<u8> = Vec::new();
    let mut blobs: Vec<BlobLocation> = Vec::new();
    while let Some(blob) = rx.recv().await {
        blobs.push(BlobLocation {
            id: blob.id,
            offset: buf.len() as u64,
            length: blob.sealed.len() as u32,
            raw_length: blob.raw_length,
        });
        buf.extend_from_slice(&blob.sealed);
        if buf.len() >= target {
            stored += flush_pack(&storage, &key, &mut buf, &mut blobs, &mut packs).await?;
        }
    }
    if !blobs.is_empty() {
        stored += flush_pack(&storage, &key, &mut buf, &mut blobs, &mut packs).await?;
    }
    Ok((packs, stored))
}

/// Appends the sealed header (so an index can be rebuilt from packs alone) and uploads.
async fn flush_pack(
    storage: &Storage,
    key: &MasterKey,
    buf: &mut Vec<u8>,
    blobs: &mut Vec<BlobLocation>,
    packs: &mut Vec<PackEntry>,
) -> Result<u64> {
    let id = random_id();
    let header =
        serde_json::to_vec(&blobs).map_err(|e| Error::new(ErrorKind::Io, e.to_string()))?;
    let sealed_header = key.seal(format!("pack:{id}").as_bytes(), &header);
    buf.extend_from_slice(&sealed_header);
    buf.extend_from_slice(&(sealed_header.len() as u32).to_le_bytes());
    let bytes = Bytes::from(std::mem::take(buf));
    let len = bytes.len() as u64;
    storage.put_new(&pack_key(&id), bytes).await?;
    packs.push(PackEntry {
        id,
        blobs: std::mem::take(blobs),
    });
    Ok(len)
}

/// The restore target must be missing or an empty directory (never a symlink).
fn prepare_target(target: &Path) -> Result<()> {
    match std::fs::symlink_metadata(target) {
        Ok(m) if m.file_type().is_symlink() => Err(Error::new(
            ErrorKind::UnsafePath,
            format!("restore target {} is a symlink", target.display()),
        )
        .hint("restore into a real directory")),
        Ok(m) if !m.is_dir() => Err(Error::new(
            ErrorKind::InvalidInput,
            format!("restore target {} is not a directory", target.display()),
        )),
        Ok(_) => {
            let mut entries =
                std::fs::read_dir(target).map_err(|e| Error::io(target, "read", e))?;
            if entries.next().is_some() {
                return Err(Error::new(
                    ErrorKind::InvalidInput,
                    format!("restore target {} is not empty", target.display()),
                )
                .hint("restore into a new or empty directory; nothing was written"));
            }
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            std::fs::create_dir_all(target).map_err(|e| Error::io(target, "create", e))
        }
        Err(e) => Err(Error::io(target, "read", e)),
    }
}

/// Splits a stored path into safe components: no `..`, `.`, empty parts, absolute paths,
/// backslashes or NULs.
fn safe_components(path: &str) -> Result<Vec<&str>> {
    if path.is_empty() {
        return Ok(Vec::new());
    }
    let parts: Vec<&str> = path.split('/').collect();
    let bad = path.starts_with('/')
        || parts
            .iter()
            .any(|p| p.is_empty() || *p == "." || *p == ".." || p.contains(['\\', '\0']));
    if bad {
        return Err(Error::new(ErrorKind::UnsafePath, format!("snapshot entry {path:?} would escape the restore target"))
            .hint("the snapshot was tampered with or written by a broken tool; nothing outside the target was written"));
    }
    Ok(parts)
}

fn safe_child(root: &Path, name: &str) -> Result<PathBuf> {
    let parts = safe_components(name)?;
    Ok(parts.iter().fold(root.to_path_buf(), |p, c| p.join(c)))
}

/// Creates `root/parts…` one level at a time, refusing to pass through a symlink or a file.
fn ensure_dirs(root: &Path, parts: &[&str]) -> Result<()> {
    let mut cur = root.to_path_buf();
    for part in parts {
        cur.push(part);
        match std::fs::symlink_metadata(&cur) {
            Ok(m) if m.file_type().is_symlink() => return Err(Error::new(
                ErrorKind::UnsafePath,
                format!(
                    "{} is a symlink; restore will not write through it",
                    cur.display()
                ),
            )
            .hint(
                "the snapshot places files under a symlink it created; nothing was written there",
            )),
            Ok(m) if m.is_dir() => {}
            Ok(_) => {
                return Err(Error::new(
                    ErrorKind::UnsafePath,
                    format!("{} is a file where a directory is needed", cur.display()),
                ))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                std::fs::create_dir(&cur).map_err(|e| Error::io(&cur, "create", e))?;
            }
            Err(e) => return Err(Error::io(&cur, "read", e)),
        }
    }
    Ok(())
}

fn refuse_existing(path: &Path) -> Result<()> {
    if std::fs::symlink_metadata(path).is_ok() {
        return Err(Error::new(
            ErrorKind::UnsafePath,
            format!(
                "{} already exists; the snapshot names it twice",
                path.display()
            ),
        ));
    }
    Ok(())
}

fn set_mode_and_mtime(path: &Path, mode: u32, mtime_ns: i64) -> Result<()> {
    let secs = mtime_ns.div_euclid(1_000_000_000);
    let nanos = mtime_ns.rem_euclid(1_000_000_000) as u32;
    let when = if secs >= 0 {
        std::time::UNIX_EPOCH + std::time::Duration::new(secs as u64, nanos)
    } else {
        std::time::UNIX_EPOCH
    };
    // Time first: a restrictive mode could stop us opening the file afterwards.
    let file = std::fs::File::open(path).map_err(|e| Error::io(path, "open", e))?;
    file.set_modified(when)
        .map_err(|e| Error::io(path, "set the time of", e))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode & 0o7777))
        .map_err(|e| Error::io(path, "set permissions of", e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(path: &str, kind: EntryKind, link: Option<&str>) -> Entry {
        Entry {
            path: path.into(),
            kind,
            mode: 0o644,
            size: 0,
            mtime_ns: 0,
            digest: None,
            chunks: Vec::new(),
            link_target: link.map(str::to_string),
        }
    }

    async fn vault_with(entries: Vec<Entry>) -> Vault {
        let mut o = InitOptions::new("v", "r");
        o.kdf = KdfParams::INSECURE_FOR_TESTS;
        let vault = Vault::init(Storage::memory(), &o, &Passphrase::new("p"))
            .await
            .unwrap();
        let snapshot = Snapshot {
            time: now_rfc3339(),
            hostname: String::new(),
            sources: vec![SnapshotSource {
                name: "evil".into(),
                origin: "/".into(),
                single_file: false,
                entries,
            }],
            labels: BTreeMap::new(),
            parent: None,
            source_digest: String::new(),
        };
        let id = random_id();
        vault
            .store_sealed_json(
                &format!("snapshots/{id}"),
                &format!("snapshot:{id}"),
                &snapshot,
            )
            .await
            .unwrap();
        vault
    }

    #[tokio::test]
    async fn hostile_snapshots_write_nothing_outside_the_target() {
        let dir = tempfile::tempdir().unwrap();
        let outside = dir.path().join("outside");
        std::fs::create_dir(&outside).unwrap();
        let cases: Vec<Vec<Entry>> = vec![
            vec![entry("../escape", EntryKind::File, None)],
            vec![entry("a/../../escape", EntryKind::File, None)],
            vec![entry("/etc/escape", EntryKind::File, None)],
            vec![entry("a\\..\\escape", EntryKind::File, None)],
            // A symlink planted by the snapshot, then a file "inside" it.
            vec![
                entry("link", EntryKind::Symlink, Some(outside.to_str().unwrap())),
                entry("link/escape", EntryKind::File, None),
            ],
            vec![
                entry("link", EntryKind::Symlink, Some(outside.to_str().unwrap())),
                entry("link/sub", EntryKind::Dir, None),
            ],
            // The same name twice: a symlink, then a file over it.
            vec![
                entry(
                    "twice",
                    EntryKind::Symlink,
                    Some(outside.join("escape").to_str().unwrap()),
                ),
                entry("twice", EntryKind::File, None),
            ],
        ];
        for (i, entries) in cases.into_iter().enumerate() {
            let vault = vault_with(entries).await;
            let target = dir.path().join(format!("target{i}"));
            let err = vault
                .restore("latest", &target, Some("evil"), &NoProgress)
                .await
                .expect_err("hostile snapshot refused");
            assert_eq!(err.kind, ErrorKind::UnsafePath, "case {i}: {err}");
            assert_eq!(
                std::fs::read_dir(&outside).unwrap().count(),
                0,
                "case {i} wrote outside the target"
            );
            assert!(!dir.path().join("escape").exists());
        }
    }
}
