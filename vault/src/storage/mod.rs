//! Where a vault's objects live: one narrow interface over `object_store` (local directory,
//! memory, S3, Google Cloud Storage, Azure Blob).
//!
//! Immutable objects are written with create-if-absent, so two writers can never replace each
//! other's data (packs, named by fresh random ids, are written in parts instead: see
//! [`Storage::writer_for_new`]); local writes are fsynced (file and directory) before they
//! count as done.
//! Credentials come only from the standard environment variables (`AWS_*`, `GOOGLE_*`,
//! `AZURE_*`), read by object_store's own `from_env` builders; options never carry them.

use crate::error::{Error, ErrorKind, Result};
use bytes::Bytes;
use futures_util::TryStreamExt as _;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt as _, PutMode, PutOptions, PutPayload};
use std::collections::BTreeMap;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

mod options;
mod reachability;

pub use options::{
    canonical, canonical_key, check_options, is_cloud_url, layer, split_vault_url, vault_id,
    ALLOWED_OPTIONS, DEFAULT_CONNECT_TIMEOUT, DEFAULT_MAX_RETRIES, DEFAULT_REQUEST_TIMEOUT,
    DEFAULT_RETRY_TIMEOUT,
};
pub use reachability::{is_unreachable, REMEMBERED_FOR};

/// An object being written in parts; see [`Storage::writer_for_new`].
pub struct ObjectWriter {
    upload: object_store::WriteMultipart,
    object: String,
    part_size: usize,
}

impl ObjectWriter {
    /// Appends bytes (without copying them), a part's worth at a time, waiting while the
    /// parts in flight are many.
    ///
    /// # Errors
    /// `Storage` when writing an earlier part failed; call [`ObjectWriter::abort`] then.
    pub async fn write(&mut self, mut bytes: Bytes) -> Result<()> {
        while !bytes.is_empty() {
            self.upload
                .wait_for_capacity(PARTS_IN_FLIGHT)
                .await
                .map_err(|e| storage_error(&self.object, "write", e))?;
            let piece = bytes.split_to(bytes.len().min(self.part_size));
            self.upload.put(piece);
        }
        Ok(())
    }

    /// Writes what is left and makes the object appear.
    ///
    /// # Errors
    /// `Storage` naming the object; nothing appears then.
    pub async fn finish(mut self) -> Result<()> {
        // Parts in flight first: when one failed, that failure is the cause to report
        // (object_store's own finish would report the abort's error over it).
        if let Err(e) = self.upload.wait_for_capacity(0).await {
            let _ = self.upload.abort().await;
            return Err(storage_error(&self.object, "write", e));
        }
        let object = self.object;
        self.upload
            .finish()
            .await
            .map(|_| ())
            .map_err(|e| storage_error(&object, "write", e))
    }

    /// Gives up the object, removing the parts written (best effort: what a failed cleanup
    /// leaves is invisible to readers).
    pub async fn abort(self) {
        let _ = self.upload.abort().await;
    }
}

/// A vault's object store, rooted at the vault's prefix.
#[derive(Clone)]
pub struct Storage {
    store: Arc<dyn ObjectStore>,
    prefix: ObjectPath,
    url: String,
    /// The non-secret options it was opened with, under their canonical names: with `url`,
    /// its id (see [`Storage::id`]).
    options: BTreeMap<String, String>,
    /// Part size of objects written in parts (see [`Storage::writer_for_new`]).
    part_size: usize,
    /// The directory of a local vault (where interrupted writes leave staging files).
    local_dir: Option<PathBuf>,
}

/// S3 refuses parts under 5 MiB (but the last); the other stores follow the same size.
const REMOTE_PART_SIZE: usize = 5 * 1024 * 1024;
/// A local part is one positioned write to the staging file: small parts hold little memory.
const LOCAL_PART_SIZE: usize = 1024 * 1024;
/// Parts of one object being written at once.
const PARTS_IN_FLIGHT: usize = 2;

impl std::fmt::Debug for Storage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Storage")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

/// One object as listed: its key below the vault root, its size, and when the store last
/// wrote it, by the store's own clock (a local vault's: the file's modification time).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    pub key: String,
    pub size: u64,
    pub modified: Option<time::OffsetDateTime>,
}

impl Storage {
    /// Opens the store a vault URL or id names: `file:///abs`, a plain path (relative paths
    /// are resolved against `base_dir`), `memory://` (tests), `s3://bucket/prefix`,
    /// `gs://bucket/prefix`, `az://container/prefix`, each of the last three optionally with
    /// storage options as a query (a vault id: see [`Storage::id`]). Local directories are
    /// created when `create` is set.
    ///
    /// `options` are layered over the ones the URL carries; both may hold only the non-secret
    /// keys of [`ALLOWED_OPTIONS`] (see [`check_options`]): they come from Terraform
    /// configuration and command lines, which end up in state files and shell histories.
    /// Credentials come from the environment. Remote stores get bounded timeouts and a bounded
    /// retry budget unless the options set them ([`DEFAULT_CONNECT_TIMEOUT`],
    /// [`DEFAULT_REQUEST_TIMEOUT`], [`DEFAULT_MAX_RETRIES`], [`DEFAULT_RETRY_TIMEOUT`]).
    ///
    /// # Errors
    /// `InvalidInput` for an unknown scheme, a key outside the allowlist, a setting the URL
    /// and `options` disagree on, or an option the service rejects; `NotFound` for a missing
    /// local directory when not creating.
    pub fn open(
        url: &str,
        options: &BTreeMap<String, String>,
        base_dir: &Path,
        create: bool,
    ) -> Result<Storage> {
        Storage::open_with_credentials(url, options, &BTreeMap::new(), base_dir, create)
    }

    /// Like [`Storage::open`], with `defaults` under the options the URL carries (which are
    /// under `options`): for a program that holds vault ids and has default options of its
    /// own, such as the provider block's or those given to a command reading Terraform state.
    ///
    /// # Errors
    /// As [`Storage::open`].
    pub fn open_with_defaults(
        url: &str,
        defaults: &BTreeMap<String, String>,
        options: &BTreeMap<String, String>,
        base_dir: &Path,
        create: bool,
    ) -> Result<Storage> {
        check_options(defaults)?;
        check_options(options)?;
        let (bare, from_url) = split_vault_url(url)?;
        let merged = layer(defaults, &from_url, options)?;
        Storage::open(&bare, &merged, base_dir, create)
    }

    /// Like [`Storage::open`], with credentials held in memory added to the options: for a
    /// program that has them from a secret store rather than the environment, and for tests
    /// against emulators. Never feed it from configuration: that is what [`Storage::open`]
    /// refuses. The credentials never become part of the id.
    ///
    /// # Errors
    /// As [`Storage::open`].
    pub fn open_with_credentials(
        url: &str,
        options: &BTreeMap<String, String>,
        credentials: &BTreeMap<String, String>,
        base_dir: &Path,
        create: bool,
    ) -> Result<Storage> {
        check_options(options)?;
        let (url, from_url) = split_vault_url(url)?;
        let options = layer(&BTreeMap::new(), &from_url, options)?;
        let mut storage = Storage::open_unchecked(&url, &options, credentials, base_dir, create)?;
        if storage.local_dir.is_none() && !url.starts_with("memory://") {
            storage.options = options;
        }
        Ok(storage)
    }

    fn open_unchecked(
        url: &str,
        options: &BTreeMap<String, String>,
        credentials: &BTreeMap<String, String>,
        base_dir: &Path,
        create: bool,
    ) -> Result<Storage> {
        if url.starts_with("memory://") {
            return Ok(Storage::memory());
        }
        if !is_cloud_url(url) {
            let path = local_path(url, base_dir)?;
            return Storage::local(&path, create);
        }
        let parsed = url::Url::parse(url).map_err(|e| {
            Error::new(
                ErrorKind::InvalidInput,
                format!("vault URL {url:?} is not a URL: {e}"),
            )
        })?;
        let bucket = parsed.host_str().unwrap_or_default().to_string();
        if bucket.is_empty() {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                format!("vault URL {url:?} names no bucket or container"),
            )
            .hint("write it as s3://BUCKET/PREFIX, gs://BUCKET/PREFIX or az://CONTAINER/PREFIX"));
        }
        let prefix = ObjectPath::from(parsed.path().trim_matches('/'));
        let bad_option = |key: &str, e: object_store::Error| {
            Error::new(ErrorKind::InvalidInput, format!("storage option {key:?} is not valid for {}: {e}", parsed.scheme()))
                .hint("see the object_store configuration keys for this service (endpoint, region, allow_http, …)")
        };
        let mut settings = options.clone();
        let retry = options::retry_policy(&mut settings);
        settings.extend(credentials.iter().map(|(k, v)| (k.clone(), v.clone())));
        let store: Arc<dyn ObjectStore> = match parsed.scheme() {
            "s3" => {
                let mut b = object_store::aws::AmazonS3Builder::from_env()
                    .with_bucket_name(&bucket)
                    .with_retry(retry);
                for (k, v) in &settings {
                    let key = k.parse().map_err(|e| bad_option(k, e))?;
                    b = b.with_config(key, v);
                }
                Arc::new(
                    b.build()
                        .map_err(|e| storage_error(url, "configure S3 for", e))?,
                )
            }
            "gs" => {
                let mut b = object_store::gcp::GoogleCloudStorageBuilder::from_env()
                    .with_bucket_name(&bucket)
                    .with_retry(retry);
                for (k, v) in &settings {
                    let key = k.parse().map_err(|e| bad_option(k, e))?;
                    b = b.with_config(key, v);
                }
                Arc::new(
                    b.build()
                        .map_err(|e| storage_error(url, "configure Google Cloud Storage for", e))?,
                )
            }
            _ => {
                let mut b = object_store::azure::MicrosoftAzureBuilder::from_env()
                    .with_container_name(&bucket)
                    .with_retry(retry);
                for (k, v) in &settings {
                    let key = k.parse().map_err(|e| bad_option(k, e))?;
                    b = b.with_config(key, v);
                }
                Arc::new(
                    b.build()
                        .map_err(|e| storage_error(url, "configure Azure Blob Storage for", e))?,
                )
            }
        };
        let root = format!("{}://{bucket}", parsed.scheme());
        let store = Arc::new(reachability::Reachability::new(
            store,
            vault_id(&root, options),
        ));
        Ok(Storage {
            store,
            prefix,
            url: url.trim_end_matches('/').to_string(),
            options: options.clone(),
            part_size: REMOTE_PART_SIZE,
            local_dir: None,
        })
    }

    /// An in-memory store (tests).
    pub fn memory() -> Storage {
        Storage::from_object_store(Arc::new(object_store::memory::InMemory::new()), "memory://")
    }

    /// A vault at the root of a store built by the caller: one that wraps another to add
    /// metrics, tracing or (in tests) faults. `url` names it in messages.
    pub fn from_object_store(store: Arc<dyn ObjectStore>, url: &str) -> Storage {
        Storage {
            store,
            prefix: ObjectPath::default(),
            url: url.to_string(),
            options: BTreeMap::new(),
            part_size: LOCAL_PART_SIZE,
            local_dir: None,
        }
    }

    /// A local directory, fsynced on every write.
    ///
    /// # Errors
    /// `NotFound` when the directory is missing and `create` is false; `Io` otherwise.
    pub fn local(dir: &Path, create: bool) -> Result<Storage> {
        if create {
            std::fs::create_dir_all(dir)
                .map_err(|e| Error::io(dir, "create the vault directory", e))?;
        } else if !dir.is_dir() {
            return Err(Error::new(
                ErrorKind::NotFound,
                format!(
                    "no vault at {}: the directory does not exist",
                    dir.display()
                ),
            )
            .hint("check the URL, or create the vault with `drctl vault init`"));
        }
        let fs = object_store::local::LocalFileSystem::new_with_prefix(dir)
            .map_err(|e| storage_error(&dir.display().to_string(), "open", e))?
            .with_fsync(true)
            .with_automatic_cleanup(true);
        Ok(Storage {
            store: Arc::new(fs),
            prefix: ObjectPath::default(),
            url: format!("file://{}", dir.display()),
            options: BTreeMap::new(),
            part_size: LOCAL_PART_SIZE,
            local_dir: Some(dir.to_path_buf()),
        })
    }

    /// What one object written in parts holds at most while it is being finished: its last
    /// part and the parts still in flight.
    pub(crate) fn bytes_held_by_a_finishing_write(&self) -> usize {
        self.part_size * (PARTS_IN_FLIGHT + 1)
    }

    /// The canonical URL of the vault root, without options: what messages name.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The vault's id: its canonical URL with the non-secret options it was opened with as a
    /// query (canonical names, sorted; none for local vaults). Opening the id alone reaches
    /// the same store, in any process: what a region pair, a drill and `drctl rebuild` hold.
    pub fn id(&self) -> String {
        vault_id(&self.url, &self.options)
    }

    /// The non-secret options the store was opened with, under their canonical names.
    pub fn options(&self) -> &BTreeMap<String, String> {
        &self.options
    }

    fn path(&self, key: &str) -> ObjectPath {
        key.split('/')
            .filter(|part| !part.is_empty())
            .fold(self.prefix.clone(), |p, part| p.join(part))
    }

    /// For a local vault, removes the vault's own directories (FORMAT.md, "Layout") left
    /// empty after its objects were deleted, and then the vault directory itself if nothing
    /// else is in it (object stores have no directories). A directory holding anything else,
    /// or any directory that is not the vault's, stays; symlinks are never followed. Returns
    /// how many directories went.
    pub fn remove_empty_local_dirs(&self) -> usize {
        fn prune_empty(dir: &Path) -> usize {
            if !is_real_dir(dir) {
                return 0;
            }
            let mut removed = 0;
            if let Ok(entries) = std::fs::read_dir(dir) {
                for entry in entries.flatten() {
                    if entry.file_type().is_ok_and(|t| t.is_dir()) {
                        removed += prune_empty(&entry.path());
                    }
                }
            }
            // Fails, as meant, when not empty.
            removed + usize::from(std::fs::remove_dir(dir).is_ok())
        }
        let Some(root) = &self.local_dir else {
            return 0;
        };
        let removed: usize = crate::layout::DIRS
            .iter()
            .map(|dir| prune_empty(&root.join(dir)))
            .sum();
        removed + usize::from(std::fs::remove_dir(root).is_ok())
    }

    /// Whether a local vault's location holds nothing but the vault's own directories and,
    /// in them or beside `config`, staging files of the vault's objects: what writes cut
    /// short leave when nothing else of the vault is there. Anything else (a user's file, a
    /// symlink, an object of the vault) makes it `false`, as does an object store.
    pub fn holds_only_interrupted_writes(&self) -> bool {
        self.local_holds_only(|rel| staged_object(rel).is_some())
    }

    /// Whether a local vault's location holds nothing but the vault's own directories, all
    /// empty.
    pub fn holds_only_empty_dirs(&self) -> bool {
        self.local_holds_only(|_| false)
    }

    /// Whether every entry under a local location is one of the vault's directories (or a
    /// directory in one), or a file whose path relative to the location `file_allowed` takes.
    fn local_holds_only(&self, file_allowed: impl Fn(&str) -> bool) -> bool {
        let Some(root) = &self.local_dir else {
            return false;
        };
        let Ok(top) = std::fs::read_dir(root) else {
            return false;
        };
        let mut dirs = Vec::new();
        for entry in top.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            match std::fs::symlink_metadata(entry.path()) {
                Ok(m) if m.is_dir() && crate::layout::DIRS.contains(&name.as_str()) => {
                    dirs.push(entry.path());
                }
                Ok(m) if m.is_file() && file_allowed(&name) => {}
                _ => return false,
            }
        }
        while let Some(dir) = dirs.pop() {
            let Ok(entries) = std::fs::read_dir(&dir) else {
                return false;
            };
            for entry in entries.flatten() {
                let rel = entry
                    .path()
                    .strip_prefix(root)
                    .ok()
                    .and_then(|r| r.to_str())
                    .map(str::to_string);
                match (std::fs::symlink_metadata(entry.path()), rel) {
                    (Ok(m), _) if m.is_dir() => dirs.push(entry.path()),
                    (Ok(m), Some(rel)) if m.is_file() && file_allowed(&rel) => {}
                    _ => return false,
                }
            }
        }
        true
    }

    /// The names directly under the vault's location, directories (and bucket prefixes)
    /// with a trailing `/`: what a vault's owner sees at its top level.
    ///
    /// # Errors
    /// `Storage`/`Io` when the location cannot be listed.
    pub async fn top_level(&self) -> Result<Vec<String>> {
        if let Some(root) = &self.local_dir {
            let entries = match std::fs::read_dir(root) {
                Ok(entries) => entries,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
                Err(e) => return Err(Error::io(root, "read", e)),
            };
            let mut names: Vec<String> = entries
                .flatten()
                .map(|e| {
                    let name = e.file_name().to_string_lossy().into_owned();
                    let is_dir = e.file_type().is_ok_and(|t| t.is_dir());
                    if is_dir {
                        format!("{name}/")
                    } else {
                        name
                    }
                })
                .collect();
            names.sort();
            return Ok(names);
        }
        let listed = self
            .store
            .list_with_delimiter(Some(&self.prefix))
            .await
            .map_err(|e| storage_error(&self.url, "list", e))?;
        let mut names: Vec<String> = listed
            .objects
            .iter()
            .filter_map(|o| o.location.filename().map(str::to_string))
            .chain(
                listed
                    .common_prefixes
                    .iter()
                    .filter_map(|p| p.filename().map(|n| format!("{n}/"))),
            )
            .collect();
        names.sort();
        Ok(names)
    }

    /// The first thing found at the vault's location (a key relative to it), if anything is
    /// there at all: a vault is created only where nothing else lives. Locally any entry
    /// counts, an empty directory or a symlink included.
    ///
    /// # Errors
    /// `Storage`/`Io` when the location cannot be listed.
    pub async fn first_object(&self) -> Result<Option<String>> {
        if let Some(root) = &self.local_dir {
            let mut names: Vec<String> = match std::fs::read_dir(root) {
                Ok(entries) => entries
                    .flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect(),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
                Err(e) => return Err(Error::io(root, "read", e)),
            };
            names.sort();
            return Ok(names.into_iter().next());
        }
        let mut stream = self.store.list(Some(&self.prefix));
        match stream.try_next().await {
            Ok(Some(meta)) => {
                let skip = self.prefix.parts().count();
                let key: Vec<String> = meta
                    .location
                    .parts()
                    .skip(skip)
                    .map(|p| p.as_ref().to_string())
                    .collect();
                Ok(Some(key.join("/")))
            }
            Ok(None) => Ok(None),
            Err(e) => Err(storage_error(&self.url, "list", e)),
        }
    }

    /// For a local vault, deletes the staging files (`<object>#<n>`) of writes that were
    /// interrupted (a killed process) and not touched for `stale_after`; readers never list
    /// them, so nothing else would. See [`Storage::sweep_interrupted_writes_where`].
    pub async fn sweep_interrupted_writes(&self, stale_after: Duration) -> Result<(usize, u64)> {
        self.sweep_interrupted_writes_where(move |write| {
            write.age.is_some_and(|age| age >= stale_after)
        })
        .await
    }

    /// For a local vault, deletes the staging files of interrupted writes that `abandoned`
    /// judges so. Only the vault's own object directories (its locks included: a lock's
    /// refresh killed mid-write leaves one too) and `config` are looked at, and only files
    /// named after one of the vault's own objects (a vault may share its directory with other
    /// files; a user's `notes#1` is never touched). Best effort: a file that cannot be deleted
    /// stays for the next sweep. Returns how many files and bytes went. On object stores an
    /// interrupted upload is the store's to reclaim: S3 and GCS by the bucket's
    /// abort-incomplete-multipart-upload lifecycle rule, Azure drops uncommitted blocks after a
    /// week.
    pub async fn sweep_interrupted_writes_where<F>(&self, abandoned: F) -> Result<(usize, u64)>
    where
        F: Fn(&InterruptedWrite) -> bool + Send + 'static,
    {
        let Some(root) = self.local_dir.clone() else {
            return Ok((0, 0));
        };
        tokio::task::spawn_blocking(move || {
            let mut swept = (0, 0);
            let mut sweep = |path: &Path, meta: &std::fs::Metadata| {
                // The staging file of one of the vault's own objects, and which one.
                let object = path
                    .strip_prefix(&root)
                    .ok()
                    .and_then(|rel| rel.to_str())
                    .and_then(staged_object);
                let Some(object) = object else {
                    return;
                };
                let write = InterruptedWrite {
                    object: object.to_string(),
                    path: path.to_path_buf(),
                    age: meta.modified().ok().and_then(|m| m.elapsed().ok()),
                    size: meta.len(),
                };
                if abandoned(&write) && std::fs::remove_file(path).is_ok() {
                    swept.0 += 1;
                    swept.1 += meta.len();
                }
            };
            if let Ok(entries) = std::fs::read_dir(&root) {
                for entry in entries.flatten() {
                    let name = entry.file_name();
                    let is_config_write = crate::layout::is_staged_config(&name.to_string_lossy());
                    if let (true, Ok(meta)) = (is_config_write, entry.metadata()) {
                        sweep(&entry.path(), &meta);
                    }
                }
            }
            let mut dirs: Vec<PathBuf> = crate::layout::DIRS
                .iter()
                .map(|d| root.join(d))
                .filter(|d| is_real_dir(d))
                .collect();
            while let Some(dir) = dirs.pop() {
                let Ok(entries) = std::fs::read_dir(&dir) else {
                    continue;
                };
                for entry in entries.flatten() {
                    // Not followed: a symlink planted in the vault never leads the sweep out.
                    let Ok(meta) = std::fs::symlink_metadata(entry.path()) else {
                        continue;
                    };
                    if meta.is_dir() {
                        dirs.push(entry.path());
                    } else if meta.is_file() {
                        sweep(&entry.path(), &meta);
                    }
                }
            }
            Ok(swept)
        })
        .await
        .map_err(|e| Error::new(ErrorKind::Io, format!("sweep task failed: {e}")))?
    }

    fn object_name(&self, key: &str) -> String {
        format!("{}/{key}", self.url)
    }

    /// Writes a new object; `Ok(false)` when one already exists under that key (immutable
    /// objects are named by content or random ids, so an existing one is never replaced).
    ///
    /// A create-if-absent that timed out is not retried by the object-store client, so it is
    /// retried here, twice (the S3 fault test found snapshots failing on one stalled
    /// request). An object found already there with exactly these bytes is this write's own
    /// earlier attempt, which landed: the write succeeded.
    ///
    /// # Errors
    /// `Storage` when the store refuses the write.
    pub async fn put_new(&self, key: &str, bytes: Bytes) -> Result<bool> {
        const ATTEMPTS: u32 = 3;
        let mut attempt = 1;
        loop {
            let opts = PutOptions {
                mode: PutMode::Create,
                ..Default::default()
            };
            match self
                .store
                .put_opts(&self.path(key), PutPayload::from(bytes.clone()), opts)
                .await
            {
                Ok(_) => return Ok(true),
                // The client retries some failures itself (5xx, a closed connection), so even
                // a first call can meet its own landed attempt. Every caller writes bytes no
                // other writer can (random ids, salts, nonces): the same bytes are ours.
                Err(object_store::Error::AlreadyExists { .. }) => {
                    let stored = self.get(key).await?;
                    return Ok(stored == bytes);
                }
                Err(e) if attempt < ATTEMPTS && may_be_transient(&e) => {
                    tokio::time::sleep(std::time::Duration::from_millis(250 << attempt)).await;
                    attempt += 1;
                }
                Err(e) => return Err(storage_error(&self.object_name(key), "write", e)),
            }
        }
    }

    /// Copies `source`'s object `key` to the same key here, as a new object (see [`Copied`]).
    /// Between two local vaults the kernel copies the file (`copy_file_range`) into a staging
    /// file that is fsynced, then linked into place, its directories fsynced as object_store
    /// does; otherwise the bytes pass through memory, one object at a time per call.
    ///
    /// # Errors
    /// `NotFound` naming the source object; `Corrupt` when the source is not a plain file under
    /// real directories (a planted symlink or FIFO); `Storage` or `Io` when a read or write
    /// fails.
    pub async fn copy_new_from(&self, source: &Storage, key: &str) -> Result<Copied> {
        if let (Some(from_root), Some(to_root)) = (&source.local_dir, &self.local_dir) {
            let (from_root, to_root, key) = (from_root.clone(), to_root.clone(), key.to_string());
            return tokio::task::spawn_blocking(move || {
                copy_local_file(&from_root, &to_root, &key)
            })
            .await
            .map_err(|e| Error::new(ErrorKind::Io, format!("copy task failed: {e}")))?;
        }
        let bytes = source.get(key).await?;
        let len = bytes.len() as u64;
        // put_new counts the same bytes already there as written: asked first, to tell apart.
        let was_there = self.exists(key).await?;
        Ok(match (self.put_new(key, bytes).await?, was_there) {
            (false, _) => Copied::OtherThere,
            (true, true) => Copied::AlreadyThere(len),
            (true, false) => Copied::Created(len),
        })
    }

    /// Starts writing an object part by part, for objects too large to hold whole in memory
    /// (packs): at most two parts in flight and the one filling are held. The object
    /// appears only when [`ObjectWriter::finish`] succeeds (a local one is fsynced first).
    ///
    /// Multipart uploads have no create-if-absent condition on every store, so this is only
    /// for objects named by a fresh random id, which no other writer can choose.
    ///
    /// # Errors
    /// `Storage` when the store refuses to start the upload.
    pub async fn writer_for_new(&self, key: &str) -> Result<ObjectWriter> {
        let object = self.object_name(key);
        let upload = self
            .store
            .put_multipart(&self.path(key))
            .await
            .map_err(|e| storage_error(&object, "write", e))?;
        Ok(ObjectWriter {
            upload: object_store::WriteMultipart::new_with_chunk_size(upload, self.part_size),
            object,
            part_size: self.part_size,
        })
    }

    /// Writes or replaces an object (locks only).
    ///
    /// # Errors
    /// `Storage` when the store refuses the write.
    pub async fn put_replace(&self, key: &str, bytes: Bytes) -> Result<()> {
        self.store
            .put(&self.path(key), PutPayload::from(bytes))
            .await
            .map(|_| ())
            .map_err(|e| storage_error(&self.object_name(key), "write", e))
    }

    /// Reads a whole object.
    ///
    /// # Errors
    /// `NotFound` naming the object; `Storage` for other failures.
    pub async fn get(&self, key: &str) -> Result<Bytes> {
        let result = self
            .store
            .get(&self.path(key))
            .await
            .map_err(|e| storage_error(&self.object_name(key), "read", e))?;
        result
            .bytes()
            .await
            .map_err(|e| storage_error(&self.object_name(key), "read", e))
    }

    /// Reads a byte range of an object.
    ///
    /// # Errors
    /// `NotFound` naming the object; `Corrupt` when the object is shorter than the range.
    pub async fn get_range(&self, key: &str, range: Range<u64>) -> Result<Bytes> {
        let want = range.end - range.start;
        let end = range.end;
        let path = self.path(key);
        let bytes = match self.store.get_range(&path, range).await {
            Ok(bytes) => bytes,
            Err(e) => {
                // A range that starts past the end is refused outright (a local file's "range
                // was invalid", S3's 416) rather than read short: the object is shorter than
                // what refers to it says, which is corruption, not a storage failure.
                if !matches!(e, object_store::Error::NotFound { .. }) {
                    if let Ok(meta) = self.store.head(&path).await {
                        if meta.size < end {
                            return Err(Error::corrupt(
                                &self.object_name(key),
                                format!(
                                    "truncated: holds {} bytes, read up to byte {end}",
                                    meta.size
                                ),
                            ));
                        }
                    }
                }
                return Err(storage_error(&self.object_name(key), "read", e));
            }
        };
        if bytes.len() as u64 != want {
            return Err(Error::corrupt(
                &self.object_name(key),
                format!("truncated: wanted {want} bytes, got {}", bytes.len()),
            ));
        }
        Ok(bytes)
    }

    /// Whether an object exists.
    ///
    /// # Errors
    /// `Storage` for failures other than absence.
    pub async fn exists(&self, key: &str) -> Result<bool> {
        match self.store.head(&self.path(key)).await {
            Ok(_) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(storage_error(&self.object_name(key), "check", e)),
        }
    }

    /// Every object below `dir` (e.g. `snapshots`), with keys relative to the vault root.
    ///
    /// # Errors
    /// `Storage` when listing fails.
    pub async fn list(&self, dir: &str) -> Result<Vec<Listed>> {
        if let Some(root) = &self.local_dir {
            return list_local(root.clone(), dir.to_string()).await;
        }
        let prefix = self.path(dir);
        let skip = self.prefix.parts().count();
        let metas: Vec<_> = self
            .store
            .list(Some(&prefix))
            .try_collect()
            .await
            .map_err(|e| storage_error(&self.object_name(dir), "list", e))?;
        let mut out: Vec<Listed> = metas
            .into_iter()
            .map(|m| Listed {
                key: m
                    .location
                    .parts()
                    .skip(skip)
                    .map(|p| p.as_ref().to_string())
                    .collect::<Vec<_>>()
                    .join("/"),
                size: m.size,
                modified: time::OffsetDateTime::from_unix_timestamp_nanos(
                    i128::from(m.last_modified.timestamp_micros()) * 1000,
                )
                .ok(),
            })
            .collect();
        out.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(out)
    }

    /// Deletes an object; deleting a missing one is not an error.
    ///
    /// # Errors
    /// `Storage` when the store refuses.
    pub async fn delete(&self, key: &str) -> Result<()> {
        match self.store.delete(&self.path(key)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(storage_error(&self.object_name(key), "delete", e)),
        }
    }
}

/// A local vault location from a `file://` URL or a plain path.
/// Where a vault URL or id points: its id without options, a local path made absolute,
/// without any I/O. Two spellings of one place (`vaults/a`, `file:///root/vaults/a`,
/// `s3://b/p?region=x`, `s3://b/p/`) give the same location.
///
/// # Errors
/// `InvalidInput` as [`Storage::open`] for a malformed URL.
pub fn location(url: &str, base_dir: &Path) -> Result<String> {
    let (bare, _) = split_vault_url(url)?;
    if bare.starts_with("memory://") {
        return Ok(bare);
    }
    if is_cloud_url(&bare) {
        return Ok(bare.trim_end_matches('/').to_string());
    }
    let path = local_path(&bare, base_dir)?;
    let shown = path.display().to_string();
    let trimmed = shown.trim_end_matches('/');
    Ok(format!(
        "file://{}",
        if trimmed.is_empty() { "/" } else { trimmed }
    ))
}

/// The options that say which store a URL is in (two MinIO endpoints, two Azure accounts can
/// hold the same bucket name): part of where a vault is, unlike timeouts or encryption.
const IDENTITY_OPTIONS: &[&str] = &["endpoint", "account_name"];

/// Where a vault is, as a resource identity names it: its [`location`], with the options that
/// say which store it is in (endpoint, account) as a query when the id carries them. Stable
/// across every spelling of one vault and its other options (timeouts, region), which may
/// change in place.
///
/// # Errors
/// As [`location`].
pub fn identity_url(url: &str, base_dir: &Path) -> Result<String> {
    let place = location(url, base_dir)?;
    let (_, options) = split_vault_url(url)?;
    let which: BTreeMap<String, String> = options
        .into_iter()
        .filter(|(k, _)| IDENTITY_OPTIONS.contains(&k.as_str()))
        .collect();
    Ok(vault_id(&place, &which))
}

/// Whether two vault URLs or ids name the same vault: the same [`location`], and the same
/// endpoint and account where both say which (an id from before ids carried options says
/// nothing, and matches). Unparsable text matches only itself.
pub fn same_place(a: &str, b: &str, base_dir: &Path) -> bool {
    let (Ok(la), Ok(lb)) = (location(a, base_dir), location(b, base_dir)) else {
        return a == b;
    };
    let (Ok((_, oa)), Ok((_, ob))) = (split_vault_url(a), split_vault_url(b)) else {
        return a == b;
    };
    la == lb
        && IDENTITY_OPTIONS
            .iter()
            .all(|k| match (oa.get(*k), ob.get(*k)) {
                (Some(x), Some(y)) => x.trim_end_matches('/') == y.trim_end_matches('/'),
                _ => true,
            })
}

fn local_path(url: &str, base_dir: &Path) -> Result<PathBuf> {
    let raw = match url.strip_prefix("file://") {
        Some(rest) if rest.starts_with('/') => rest,
        Some(_) => {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                format!("vault URL {url:?} must be file:///ABSOLUTE/PATH"),
            )
            .hint("use three slashes, or write a plain path"))
        }
        None if url.contains("://") => {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                format!("vault URL {url:?} has an unknown scheme"),
            )
            .hint("supported: a path, file://, s3://, gs://, az://"))
        }
        None => url,
    };
    if raw.is_empty() {
        return Err(Error::new(ErrorKind::InvalidInput, "vault URL is empty"));
    }
    let path = base_dir.join(raw);
    Ok(std::path::absolute(&path).unwrap_or(path))
}

/// Whether a file name is a local staging file: object_store writes `<name>#<n>` and renames
/// it to `<name>` when complete. Object names in a vault never hold `#`.
fn is_staging_name(name: &str) -> bool {
    name.split_once('#').is_some_and(|(object, n)| {
        !object.is_empty() && !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit())
    })
}

/// The staging file of a write to a local vault that never finished, as
/// [`Storage::sweep_interrupted_writes_where`] shows it to its judge.
#[derive(Debug)]
pub struct InterruptedWrite {
    /// The object it was writing, e.g. `locks/<id>`.
    pub object: String,
    /// The staging file.
    pub path: PathBuf,
    /// Since it was last written to, when the filesystem says.
    pub age: Option<Duration>,
    /// Its length in bytes.
    pub size: u64,
}

/// The vault object that `rel` (a path relative to a local vault) is the staging file of
/// (`<object>#<n>`), if it is one: never a user's `notes#1`.
fn staged_object(rel: &str) -> Option<&str> {
    let (object, _) = rel.rsplit_once('#')?;
    let name = rel.rsplit('/').next()?;
    (is_staging_name(name) && crate::layout::parse(object).is_some()).then_some(object)
}

/// What [`Storage::copy_new_from`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Copied {
    /// The object was copied: its length.
    Created(u64),
    /// The same bytes were already there (an interrupted copy of this one landed): its length.
    AlreadyThere(u64),
    /// An object with other bytes is there; nothing was written.
    OtherThere,
}

/// Copies a local object file to a new one (see [`Storage::copy_new_from`]). The source must
/// be a regular file under real directories: a symlink or a FIFO planted in a vault never
/// makes a copy read outside it, or hang.
fn copy_local_file(from_root: &Path, to_root: &Path, key: &str) -> Result<Copied> {
    use std::os::unix::fs::OpenOptionsExt as _;
    let (from, to) = (from_root.join(key), to_root.join(key));
    let not_plain = |what: &str| Error::corrupt(&from.display().to_string(), what.to_string());
    let mut dir = from_root.to_path_buf();
    for part in key
        .split('/')
        .take(key.split('/').count().saturating_sub(1))
    {
        dir.push(part);
        if std::fs::symlink_metadata(&dir).is_ok_and(|m| !m.is_dir()) {
            return Err(not_plain("lies under something that is not a directory"));
        }
    }
    let flags = rustix::fs::OFlags::NOFOLLOW | rustix::fs::OFlags::NONBLOCK;
    let mut source = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(flags.bits() as i32)
        .open(&from)
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => Error::new(
                ErrorKind::NotFound,
                format!("{} does not exist", from.display()),
            ),
            _ => Error::io(&from, "read", e),
        })?;
    let meta = source.metadata().map_err(|e| Error::io(&from, "read", e))?;
    if !meta.is_file() {
        return Err(not_plain("is not a regular file"));
    }
    let dir = to.parent().unwrap_or(Path::new("/")).to_path_buf();
    create_dirs_durably(&dir)?;
    // Already there (a copy by an interrupted run): the same bytes count as this copy, made
    // durable now, as the run that linked it may have died before its fsyncs.
    if std::fs::symlink_metadata(&to).is_ok() {
        return same_file_content(&mut source, &to, &dir);
    }
    // The staging name is the one interrupted writes are swept by (`<object>#<n>`).
    let mut staging = to.as_os_str().to_owned();
    staging.push(format!(
        "#{}",
        u64::from_le_bytes(crate::crypto::random_bytes())
    ));
    let staging = PathBuf::from(staging);
    let copied = (|| {
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&staging)?;
        let len = std::io::copy(&mut source, &mut file)?;
        file.sync_all()?;
        Ok::<_, std::io::Error>(len)
    })();
    let len = match copied {
        Ok(len) => len,
        Err(e) => {
            let _ = std::fs::remove_file(&staging);
            return Err(Error::io(&to, "write", e));
        }
    };
    let linked = std::fs::hard_link(&staging, &to);
    let _ = std::fs::remove_file(&staging);
    match linked {
        Ok(()) => {}
        // Linked by another writer meanwhile: as above.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            use std::io::Seek as _;
            source.rewind().map_err(|e| Error::io(&from, "read", e))?;
            return same_file_content(&mut source, &to, &dir);
        }
        Err(e) => return Err(Error::io(&to, "write", e)),
    }
    sync_dir(&dir)?;
    Ok(Copied::Created(len))
}

/// Whether the file at `to` holds exactly what `source` holds (read to its end); when it does,
/// `to` and its directory are fsynced.
fn same_file_content(source: &mut std::fs::File, to: &Path, dir: &Path) -> Result<Copied> {
    use std::io::Read as _;
    let mut ours = Vec::new();
    source
        .read_to_end(&mut ours)
        .map_err(|e| Error::io(to, "read", e))?;
    let Ok(theirs) = std::fs::read(to) else {
        return Ok(Copied::OtherThere);
    };
    if theirs != ours {
        return Ok(Copied::OtherThere);
    }
    std::fs::File::open(to)
        .and_then(|f| f.sync_all())
        .map_err(|e| Error::io(to, "sync", e))?;
    sync_dir(dir)?;
    Ok(Copied::AlreadyThere(ours.len() as u64))
}

/// Creates `dir` and the directories above it that are missing, each made durable in its
/// parent (as object_store's own local writes do).
fn create_dirs_durably(dir: &Path) -> Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    if let Some(parent) = dir.parent() {
        create_dirs_durably(parent)?;
    }
    match std::fs::create_dir(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => return Ok(()),
        Err(e) => return Err(Error::io(dir, "create", e)),
    }
    sync_dir(dir.parent().unwrap_or(Path::new("/")))
}

fn sync_dir(dir: &Path) -> Result<()> {
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| Error::io(dir, "sync", e))
}

/// Whether `path` is a directory itself, not a symlink to one.
fn is_real_dir(path: &Path) -> bool {
    std::fs::symlink_metadata(path).is_ok_and(|m| m.is_dir())
}

/// Lists a local vault's files below `dir` without following symlinks: object_store's own
/// local listing follows them, and a symlink planted in a vault directory must never make
/// the vault read, or prune and destroy delete, what lies outside it. Staging files of
/// unfinished writes are left out, as object_store leaves them out.
async fn list_local(root: PathBuf, dir: String) -> Result<Vec<Listed>> {
    tokio::task::spawn_blocking(move || {
        let start = dir
            .split('/')
            .filter(|p| !p.is_empty())
            .fold(root.clone(), |p, part| p.join(part));
        let mut out = Vec::new();
        let walk = walkdir::WalkDir::new(&start)
            .follow_links(false)
            .follow_root_links(false);
        for entry in walk {
            let entry = match entry {
                Ok(e) => e,
                Err(e)
                    if e.io_error()
                        .is_some_and(|io| io.kind() == std::io::ErrorKind::NotFound) =>
                {
                    continue
                }
                Err(e) => {
                    let path = e.path().unwrap_or(&start).to_path_buf();
                    let io = e
                        .into_io_error()
                        .unwrap_or_else(|| std::io::Error::other("filesystem loop"));
                    return Err(Error::io(&path, "list", io));
                }
            };
            if !entry.file_type().is_file() {
                continue;
            }
            let name = entry.file_name().to_string_lossy();
            if is_staging_name(&name) {
                continue;
            }
            let Ok(rel) = entry.path().strip_prefix(&root) else {
                continue;
            };
            let key = rel
                .components()
                .map(|c| c.as_os_str().to_string_lossy())
                .collect::<Vec<_>>()
                .join("/");
            let meta = entry.metadata().ok();
            out.push(Listed {
                key,
                size: meta.as_ref().map_or(0, std::fs::Metadata::len),
                modified: meta
                    .and_then(|m| m.modified().ok())
                    .map(time::OffsetDateTime::from),
            });
        }
        out.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(out)
    })
    .await
    .map_err(|e| Error::new(ErrorKind::Io, format!("listing task failed: {e}")))?
}

fn storage_error(object: &str, action: &str, e: object_store::Error) -> Error {
    let kind = match e {
        object_store::Error::NotFound { .. } => ErrorKind::NotFound,
        object_store::Error::AlreadyExists { .. } => ErrorKind::AlreadyExists,
        _ if is_unreachable(&e) => ErrorKind::Unreachable,
        _ => ErrorKind::Storage,
    };
    let mut err = Error::new(kind, format!("cannot {action} {object}"));
    if reachability::is_credentials_lookup(&e) {
        err = err.hint(
            "no credentials were found in the environment, and the instance metadata service the \
             AWS client then asks did not answer: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY \
             (or AWS_PROFILE, or a web identity) where Terraform or drctl runs",
        );
    } else if is_missing_bucket(&e) {
        err = err.hint(
            "the bucket or container does not exist: create it first (vaults are created inside \
             an existing bucket or container, never the bucket itself), or check the URL and the \
             endpoint and region options",
        );
    } else if kind == ErrorKind::Unreachable {
        err = err.hint(
            "the store did not answer (connection refused or timed out): check the endpoint \
             and the network; storage options connect_timeout, timeout, max_retries and \
             retry_timeout bound how long each request waits",
        );
    } else if is_disk_full(&e) {
        err = err.hint(
            "the disk holding the vault is full: free space and run the command again; \
             nothing was committed",
        );
    } else if kind == ErrorKind::Storage {
        err = err.hint("check the storage options and the credentials in the environment (AWS_*, GOOGLE_*, AZURE_*)");
    }
    err.with_source(e)
}

/// An error and every error down its source chain, outermost first (what the unstable
/// `Error::sources` will give).
pub(crate) fn causes<'a>(
    e: &'a (dyn std::error::Error + 'static),
) -> impl Iterator<Item = &'a (dyn std::error::Error + 'static)> {
    std::iter::successors(Some(e), |c| c.source())
}

/// Whether the service said the bucket or container itself does not exist (anywhere down
/// the error's source chain): for a location, nothing is there at all.
pub fn is_missing_bucket(e: &(dyn std::error::Error + 'static)) -> bool {
    causes(e).any(|c| {
        let text = c.to_string();
        ["NoSuchBucket", "ContainerNotFound", "bucket does not exist"]
            .iter()
            .any(|s| text.contains(s))
    })
}

/// Whether an error, anywhere down its source chain, is ENOSPC from the local file system.
fn is_disk_full(e: &(dyn std::error::Error + 'static)) -> bool {
    causes(e).any(|c| {
        c.downcast_ref::<std::io::Error>().is_some_and(|io| {
            io.kind() == std::io::ErrorKind::StorageFull || io.raw_os_error() == Some(28)
        })
    })
}

/// Whether a failed request may succeed when made again: not when the store answered that the
/// request itself is wrong (permissions, preconditions, an unsupported operation).
fn may_be_transient(e: &object_store::Error) -> bool {
    !matches!(
        e,
        object_store::Error::NotFound { .. }
            | object_store::Error::PermissionDenied { .. }
            | object_store::Error::Unauthenticated { .. }
            | object_store::Error::Precondition { .. }
            | object_store::Error::NotSupported { .. }
            | object_store::Error::NotImplemented { .. }
            | object_store::Error::InvalidPath { .. }
    )
}

#[cfg(test)]
mod tests {
    use super::{is_staging_name, Storage};
    use crate::error::ErrorKind;

    /// A range read past the end of an object (a pack truncated after its index was
    /// written) is corruption naming the object, whether the store reads short or refuses
    /// the range outright; the engine test that truncates a pack met both.
    #[tokio::test]
    async fn a_range_past_the_end_of_an_object_is_corruption() {
        let dir = tempfile::tempdir().unwrap();
        let storage = Storage::local(dir.path(), true).unwrap();
        storage
            .put_replace("data/ab/ab01", bytes::Bytes::from_static(b"0123456789"))
            .await
            .unwrap();
        assert_eq!(
            &storage.get_range("data/ab/ab01", 2..6).await.unwrap()[..],
            b"2345"
        );
        for range in [4..20, 12..20] {
            let err = storage
                .get_range("data/ab/ab01", range.clone())
                .await
                .unwrap_err();
            assert_eq!(err.kind, ErrorKind::Corrupt, "{range:?}: {err}");
            assert!(err.to_string().contains("data/ab/ab01"), "{err}");
            assert!(err.to_string().contains("truncated"), "{err}");
        }
        let err = storage.get_range("data/ab/ffff", 0..4).await.unwrap_err();
        assert_eq!(err.kind, ErrorKind::NotFound, "{err}");
    }

    #[test]
    fn staging_names_are_an_object_name_then_hash_and_digits() {
        for name in ["ab01#1", "0123#27", "config#3"] {
            assert!(is_staging_name(name), "{name}");
        }
        for name in ["ab01", "#1", "ab01#", "ab01#x", "ab01#1a", "a#1#2", "a#1#b"] {
            assert!(!is_staging_name(name), "{name}");
        }
    }
}
