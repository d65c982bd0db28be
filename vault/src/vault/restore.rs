//! Restoring a snapshot: never outside the target, never through a symlink (every write goes
//! through directory handles, see `tree.rs`), every file checked against its digest before it
//! is moved into place.

use super::batches::{Batch, Batcher};
use super::budget::Budget;
use super::tree::{self, PartialFile, Tree};
use super::{Progress, RestoreSummary, Vault};
use crate::crypto::BlobId;
use crate::error::{Error, ErrorKind, Result};
use crate::format::{Entry, EntryKind};
use crate::manifest::Entries;
use crate::repo::blob::OpenedBlob;
use crate::repo::reader::BlobReader;
use futures_util::StreamExt as _;
use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::io::Write as _;
use std::os::unix::ffi::OsStrExt as _;
use std::os::unix::fs::DirBuilderExt as _;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

/// Files restored at once: enough to overlap storage reads (object stores have latency).
const RESTORE_PARALLELISM: usize = 16;

/// What the files in flight may reserve, in KiB: each reserves its size up to the largest
/// chunk (it holds about one chunk, sealed and plain, at a time). Small files run eight
/// batches at a time; large ones two (one per core), which bounds restore's memory whatever
/// the snapshot holds.
const RESTORE_BUDGET_KIB: u32 = 8 * 1024;

impl Vault {
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
        // Entries are decoded as the restore reaches them: a restore holds the manifest's
        // bytes, not a decoded copy of every entry (at 300 000 files, 260 MB held with the
        // planned writes where restic held 426).
        let mut manifest = self.repo.load_manifest_entries(&id).await?;
        let names = manifest.names();
        let chosen: Vec<String> = names
            .iter()
            .filter(|name| only_source.is_none_or(|only| *name == only))
            .cloned()
            .collect();
        if let (Some(name), true) = (only_source, chosen.is_empty()) {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                format!(
                    "snapshot {} has no source {name:?}; it has {names:?}",
                    &id[..8]
                ),
            ));
        }
        // Every entry's path is checked before anything is written, so a tampered snapshot
        // is refused whole; the progress total is taken on the way.
        let mut total = 0;
        for name in &chosen {
            let root = source_root(name, only_source.is_some())?;
            for entry in manifest.peek(name) {
                total += entry.size;
                let parts = safe_components(entry.path_bytes(), &entry.path)?;
                if root.is_empty() && parts.is_empty() && entry.kind != EntryKind::Dir {
                    return Err(named_as_root(&entry.path));
                }
            }
        }
        prepare_target(target)?;
        let tree = Arc::new(Tree::open(target)?);
        let index = self.repo.blob_index().await?;
        progress.phase("restore", total);
        let mut summary = RestoreSummary {
            snapshot_id: id.clone(),
            files: 0,
            dirs: 0,
            symlinks: 0,
            bytes: 0,
        };
        // Directories and links are made as the walk of the entries meets them, before the
        // files below them are handed on, in batches, to be written.
        let mut walk = EntryWalk {
            tree: tree.clone(),
            sources: chosen
                .iter()
                .map(|name| (name.clone(), manifest.take(name)))
                .collect::<Vec<_>>()
                .into_iter(),
            into_target: only_source.is_some(),
            source: None,
            batcher: Batcher::new(u64::from(self.config.chunker.max_size)),
            dir_times: Vec::new(),
            dirs: 0,
            symlinks: 0,
        };
        // File contents last and several at a time, each file wholly on a blocking thread:
        // its reads from storage, decryption, hashing and writes overlap with the others'
        // and use every core. Each file is written beside its destination and renamed into
        // place, which never follows a symlink, whatever the snapshot planted meanwhile.
        let restorer = FileRestorer {
            tree: tree.clone(),
            blobs: self.repo.blob_reader(Arc::new(index)),
            restored: Arc::new(AtomicU64::new(0)),
            cancelled: Arc::new(AtomicBool::new(false)),
        };
        let budget = Budget::new(RESTORE_BUDGET_KIB, "restore");
        // Lazily: a batch is walked to, and its future exists, only while it is in flight;
        // after an error no new batch starts.
        let cancelled = restorer.cancelled.clone();
        let mut writes = futures_util::stream::iter(std::iter::from_fn(|| walk.next().transpose()))
            .take_while(move |_| std::future::ready(!cancelled.load(Ordering::Relaxed)))
            .map(|batch| {
                let restorer = restorer.clone();
                let budget = budget.clone();
                async move {
                    let batch = batch?;
                    let holds = batch.holds_kib;
                    let job = move || restorer.restore_batch(&batch);
                    budget.run_blocking(holds, job).await
                }
            })
            .buffer_unordered(RESTORE_PARALLELISM);
        let mut reported = 0;
        let mut tick = tokio::time::interval(std::time::Duration::from_millis(200));
        loop {
            tokio::select! {
                written = writes.next() => match written {
                    Some(Ok((files, bytes))) => {
                        summary.bytes += bytes;
                        summary.files += files;
                    }
                    Some(Err(e)) => {
                        // Blocking threads cannot be cancelled: stop the others at their next
                        // chunk and wait for them, so nothing is written after we return.
                        restorer.cancelled.store(true, Ordering::Relaxed);
                        while writes.next().await.is_some() {}
                        return Err(e);
                    }
                    None => break,
                },
                _ = tick.tick() => {}
            }
            let now = restorer.restored.load(Ordering::Relaxed);
            progress.advance(now - reported);
            reported = now;
        }
        drop(writes);
        summary.dirs = walk.dirs;
        summary.symlinks = walk.symlinks;
        let mut dir_times = walk.dir_times;
        // Directories last, deepest first, so writing their contents does not reset them.
        dir_times.sort_by(|a, b| b.0.cmp(&a.0));
        for (parts, mode, mtime_ns) in dir_times {
            // The target itself keeps the mode it was made with (owner-only when restore made
            // it): a restored source root must not open it up.
            if parts.is_empty() {
                continue;
            }
            let dir = std::fs::File::from(tree.dir(&parts, false)?);
            tree::apply_mode_and_mtime(&dir, mode, mtime_ns, &tree.shown(&parts))?;
        }
        Ok(summary)
    }
}

/// The entries of the sources being restored, in order: makes directories and links as it
/// meets them and hands on the files, in batches.
struct EntryWalk {
    tree: Arc<Tree>,
    sources: std::vec::IntoIter<(String, Entries)>,
    /// Whether the one source chosen goes into the target itself (else into a directory of
    /// its name).
    into_target: bool,
    /// The source being walked: its entries, where it goes, and the directory last made
    /// sure of (not walked to again for each of its files; the writes themselves open it,
    /// without following links, in the restore jobs).
    source: Option<(Entries, Vec<OsString>, Vec<OsString>)>,
    batcher: Batcher<Vec<OsString>>,
    /// Each directory's path, mode and mtime, applied once its contents are written.
    dir_times: Vec<(Vec<OsString>, u32, i64)>,
    dirs: usize,
    symlinks: usize,
}

impl EntryWalk {
    /// The next batch of files to write; `None` at the end.
    fn next(&mut self) -> Result<Option<Batch<Vec<OsString>>>> {
        loop {
            let Some((entries, root, ensured)) = &mut self.source else {
                let Some((name, entries)) = self.sources.next() else {
                    let batcher = std::mem::replace(&mut self.batcher, Batcher::new(0));
                    return Ok(batcher.finish());
                };
                let root = source_root(&name, self.into_target)?;
                self.tree.dir(&root, true)?;
                self.source = Some((entries, root.clone(), root));
                continue;
            };
            let Some(entry) = entries.next() else {
                self.source = None;
                continue;
            };
            let mut parts = root.clone();
            parts.extend(safe_components(entry.path_bytes(), &entry.path)?);
            match entry.kind {
                EntryKind::Dir => {
                    self.tree.dir(&parts, true)?;
                    ensured.clone_from(&parts);
                    self.dir_times.push((parts, entry.mode, entry.mtime_ns));
                    self.dirs += 1;
                }
                EntryKind::Symlink => {
                    let Some((name, parent)) = parts.split_last() else {
                        return Err(named_as_root(&entry.path));
                    };
                    let dir = self.tree.dir(parent, true)?;
                    let link = OsStr::from_bytes(entry.link_target_bytes().unwrap_or_default());
                    self.tree
                        .symlink(&dir, name, link, &self.tree.shown(&parts))?;
                    self.symlinks += 1;
                }
                EntryKind::File => {
                    let Some((_, parent)) = parts.split_last() else {
                        return Err(named_as_root(&entry.path));
                    };
                    if ensured.as_slice() != parent {
                        self.tree.dir(parent, true)?;
                        *ensured = parent.to_vec();
                    }
                    if let Some(batch) = self.batcher.push(entry, parts) {
                        return Ok(Some(batch));
                    }
                }
            }
        }
    }
}

/// What restoring one file on a blocking thread needs, owned.
#[derive(Clone)]
struct FileRestorer {
    tree: Arc<Tree>,
    blobs: BlobReader,
    /// Bytes written so far, for the progress bar.
    restored: Arc<AtomicU64>,
    /// Set when another file failed: the rest stop and remove what they wrote.
    cancelled: Arc<AtomicBool>,
}

impl FileRestorer {
    /// Restores a batch of files; returns how many and their bytes. Small files' blobs are
    /// read first, one storage read per run of neighbouring blobs in a pack.
    fn restore_batch(&self, batch: &Batch<Vec<OsString>>) -> Result<(usize, u64)> {
        let files: Vec<&Entry> = batch.files.iter().map(|(entry, _)| entry).collect();
        let preloaded = self.blobs.preload(&files)?;
        let mut bytes = 0;
        // A batch holds neighbouring files, mostly of one directory: each directory is walked
        // to (without following links) once per batch.
        let mut dirs: HashMap<&[OsString], std::os::fd::OwnedFd> = HashMap::new();
        for (entry, parts) in &batch.files {
            let (name, parent) = parts
                .split_last()
                .ok_or_else(|| named_as_root(&entry.path))?;
            let dir = match dirs.entry(parent) {
                std::collections::hash_map::Entry::Occupied(o) => o.into_mut(),
                std::collections::hash_map::Entry::Vacant(v) => {
                    v.insert(self.tree.dir(parent, false)?)
                }
            };
            self.restore(entry, dir, name, &self.tree.shown(parts), &preloaded)?;
            bytes += entry.size;
        }
        Ok((batch.files.len(), bytes))
    }

    /// Writes one file beside `dest`, checks its digest, and renames it into place. Runs on a
    /// blocking thread; blobs not in `preloaded` are read through the runtime.
    fn restore(
        &self,
        entry: &Entry,
        dir: &std::os::fd::OwnedFd,
        name: &OsStr,
        dest: &Path,
        preloaded: &HashMap<BlobId, OpenedBlob>,
    ) -> Result<()> {
        // Owner-only until the whole file is checked and its mode applied: a restore holds
        // decrypted data, and a half-written file is nobody else's business.
        let mut partial = PartialFile::create(dir, dest)?;
        let mut hasher = blake3::Hasher::new();
        for chunk_id in &entry.chunks {
            if self.cancelled.load(Ordering::Relaxed) {
                return Err(Error::new(
                    ErrorKind::Io,
                    "restore stopped: another file failed",
                ));
            }
            let blob = self.blobs.chunk(chunk_id, entry, preloaded)?;
            let data = blob.plaintext();
            hasher.update(data);
            partial
                .file
                .write_all(data)
                .map_err(|e| Error::io(dest, "write", e))?;
            self.restored
                .fetch_add(data.len() as u64, Ordering::Relaxed);
        }
        let digest = hasher.finalize().to_hex().to_string();
        if entry.digest.as_deref().is_some_and(|d| d != digest) {
            return Err(Error::corrupt(
                &entry.path,
                "restored content does not match the snapshot's digest",
            ));
        }
        // No fsync per file: a restore interrupted by a crash is simply run again, and
        // syncing tens of thousands of small files would dominate its time.
        partial.place(name, entry.mode, entry.mtime_ns, dest)
    }
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
            // Its parents as any directory; the target itself owner-only.
            if let Some(parent) = target.parent().filter(|p| !p.as_os_str().is_empty()) {
                std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, "create", e))?;
            }
            std::fs::DirBuilder::new()
                .mode(0o700)
                .create(target)
                .map_err(|e| Error::io(target, "create", e))
        }
        Err(e) => Err(Error::io(target, "read", e)),
    }
}

/// Where a source goes, below the target: its own directory, or the target itself.
fn source_root(name: &str, into_target: bool) -> Result<Vec<OsString>> {
    if into_target {
        Ok(Vec::new())
    } else {
        safe_components(name.as_bytes(), name)
    }
}

/// The error for an entry that names the restore root itself as a file or link.
fn named_as_root(path: &str) -> Error {
    Error::new(
        ErrorKind::UnsafePath,
        format!("snapshot entry {path:?} names the restore target itself as a file or link"),
    )
    .hint("the snapshot was tampered with or written by a broken tool; nothing outside the target was written")
}

/// Splits a stored path (its exact bytes; `shown` for messages) into safe components: no
/// `..`, `.`, empty parts, absolute paths or NULs. Any other byte is a name's own, a
/// backslash included (a separator on Windows only, and restores write through Linux
/// directory handles).
fn safe_components(path: &[u8], shown: &str) -> Result<Vec<OsString>> {
    if path.is_empty() {
        return Ok(Vec::new());
    }
    let parts: Vec<&[u8]> = path.split(|&b| b == b'/').collect();
    let bad = path.starts_with(b"/")
        || parts
            .iter()
            .any(|p| p.is_empty() || *p == b"." || *p == b".." || p.contains(&0));
    if bad {
        return Err(Error::new(ErrorKind::UnsafePath, format!("snapshot entry {shown:?} would escape the restore target"))
            .hint("the snapshot was tampered with or written by a broken tool; nothing outside the target was written"));
    }
    Ok(parts
        .into_iter()
        .map(|p| OsStr::from_bytes(p).to_os_string())
        .collect())
}

/// The permission bits a restore applies: never setuid, setgid or sticky. A snapshot is data
/// to bring back, not programs to hand privileges to (restic and tar without `-p` as root
/// behave alike); the stored mode keeps them for whoever needs to know.
pub(crate) fn restored_mode(stored: u32) -> u32 {
    stored & 0o777
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::{random_id, KdfParams};
    use crate::format::{Snapshot, SnapshotSource};
    use crate::storage::Storage;
    use crate::vault::{now_rfc3339, InitOptions, NoProgress};
    use crate::Passphrase;
    use std::collections::BTreeMap;

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
            ..Entry::default()
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
            .repo
            .store_sealed_json(
                &crate::layout::snapshot(&id),
                &crate::layout::label::snapshot(&id),
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

        // A path that would escape, after files that would not: the whole snapshot is
        // refused before anything is written (the target is not even made).
        let vault = vault_with(vec![
            entry("ok", EntryKind::Dir, None),
            entry("ok/fine.yml", EntryKind::File, None),
            entry("ok/../../escape", EntryKind::File, None),
        ])
        .await;
        let target = dir.path().join("refused-whole");
        let err = vault
            .restore("latest", &target, Some("evil"), &NoProgress)
            .await
            .expect_err("hostile snapshot refused");
        assert_eq!(err.kind, ErrorKind::UnsafePath, "{err}");
        assert!(!target.exists());

        // A backslash is part of a name on Linux, not a separator: such a file comes back
        // under its own name, inside the target.
        let vault = vault_with(vec![entry("a\\..\\escape", EntryKind::File, None)]).await;
        let target = dir.path().join("backslash");
        vault
            .restore("latest", &target, Some("evil"), &NoProgress)
            .await
            .unwrap();
        let names: Vec<_> = std::fs::read_dir(&target)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, [std::ffi::OsString::from("a\\..\\escape")]);
        assert!(!dir.path().join("escape").exists());
    }
}
