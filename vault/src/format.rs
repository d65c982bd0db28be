//! The on-storage format (see `vault/FORMAT.md`): the plain `config`, and the shapes of the
//! encrypted index files and snapshot manifests.

use crate::crypto::BlobId;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The format version of the vaults this build creates, and the newest it reads. Every older
/// vault is read, and written in its own version, so the builds that made it keep reading
/// it: version 1 writes JSON manifests, 2 binary ones, and 3 adds exact names, change times
/// and inodes, a keyed chunker and an authenticated config (FORMAT.md, "Versions").
pub const FORMAT_VERSION: u32 = 3;

/// Content-defined chunking bounds (bytes). Small files stay one chunk; large artifacts split
/// around 1 MiB so an edit re-uploads little.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChunkerParams {
    pub min_size: u32,
    pub avg_size: u32,
    pub max_size: u32,
}

impl Default for ChunkerParams {
    fn default() -> Self {
        ChunkerParams {
            min_size: 256 * 1024,
            avg_size: 1024 * 1024,
            max_size: 4 * 1024 * 1024,
        }
    }
}

impl ChunkerParams {
    /// Whether FastCDC accepts these bounds (it panics on others): each within the range
    /// its implementation supports, and `min ≤ avg ≤ max`.
    ///
    /// # Errors
    /// What is out of range, for a message.
    pub fn check(&self) -> std::result::Result<(), String> {
        use fastcdc::v2020 as cdc;
        let within = |what: &str, value: u32, low: u32, high: u32| {
            if (low..=high).contains(&value) {
                Ok(())
            } else {
                Err(format!(
                    "chunker {what} is {value}; it must be from {low} to {high} bytes"
                ))
            }
        };
        within(
            "min_size",
            self.min_size,
            cdc::MINIMUM_MIN,
            cdc::MINIMUM_MAX,
        )?;
        within(
            "avg_size",
            self.avg_size,
            cdc::AVERAGE_MIN,
            cdc::AVERAGE_MAX,
        )?;
        within(
            "max_size",
            self.max_size,
            cdc::MAXIMUM_MIN,
            cdc::MAXIMUM_MAX,
        )?;
        if !(self.min_size <= self.avg_size && self.avg_size <= self.max_size) {
            return Err(format!(
                "chunker sizes must grow: min_size {} ≤ avg_size {} ≤ max_size {}",
                self.min_size, self.avg_size, self.max_size
            ));
        }
        Ok(())
    }
}

/// The bounds of a pack's target size: object stores charge per object below, and writers
/// hold a finishing pack's last parts above.
pub const PACK_SIZE_RANGE: std::ops::RangeInclusive<u32> = 4 * 1024..=512 * 1024 * 1024;

/// The `config` object: plain JSON, readable without the passphrase.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Config {
    pub format_version: u32,
    /// Random; distinguishes vaults (replicas keep their own).
    pub id: String,
    pub name: String,
    pub region: String,
    pub created_at: String,
    pub hash: String,
    pub compression: String,
    pub aead: String,
    pub chunker: ChunkerParams,
    /// Target size of a pack file.
    pub pack_size: u32,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Format 3: BLAKE3-keyed MAC (hex) of this config's JSON without this field, under a key
    /// derived from the master key, so a config altered or planted by anyone without the key
    /// is refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mac: Option<String>,
}

impl Config {
    /// Checks what writers and the chunker rely on: the chunker's bounds and the pack size.
    ///
    /// # Errors
    /// What is out of range, for a message.
    pub fn check(&self) -> std::result::Result<(), String> {
        self.chunker.check()?;
        if !PACK_SIZE_RANGE.contains(&self.pack_size) {
            return Err(format!(
                "pack_size is {}; it must be from {} to {} bytes",
                self.pack_size,
                PACK_SIZE_RANGE.start(),
                PACK_SIZE_RANGE.end()
            ));
        }
        Ok(())
    }
}

impl Config {
    /// The bytes the MAC covers: every field but the MAC, in a fixed order, as a compact
    /// JSON array (spelled out rather than the struct's own serialisation, so that a field
    /// added to the struct later cannot change what existing vaults' MACs cover).
    pub fn mac_input(&self) -> Vec<u8> {
        let c = &self.chunker;
        serde_json::to_vec(&serde_json::json!([
            "dr-vault config v3",
            self.format_version,
            self.id,
            self.name,
            self.region,
            self.created_at,
            self.hash,
            self.compression,
            self.aead,
            [c.min_size, c.avg_size, c.max_size],
            self.pack_size,
            self.labels,
        ]))
        .expect("a config serialises")
    }
}

/// Where a blob sits inside a pack.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlobLocation {
    pub id: BlobId,
    pub offset: u64,
    /// Sealed length in the pack.
    pub length: u32,
    /// Plaintext length.
    pub raw_length: u32,
}

/// One pack and its blobs, as an index file lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PackEntry {
    pub id: String,
    pub blobs: Vec<BlobLocation>,
}

/// An index file (encrypted): the packs one writer added.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexFile {
    pub packs: Vec<PackEntry>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EntryKind {
    #[default]
    File,
    Dir,
    Symlink,
}

/// One file, directory or symlink of a source.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// Relative to the source root, `/`-separated; empty for a source that is a single file.
    pub path: String,
    pub kind: EntryKind,
    pub mode: u32,
    pub size: u64,
    /// Nanoseconds since the Unix epoch.
    pub mtime_ns: i64,
    /// BLAKE3 of the whole content (files), as hex.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub chunks: Vec<BlobId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link_target: Option<String>,
    /// The exact bytes of a path or link target that is not UTF-8 (`path` and `link_target`
    /// then show them lossily, for messages and matching); kept in manifests from format 3
    /// on. Boxed: almost no entry has any, and a snapshot holds tens of thousands of entries.
    #[serde(skip)]
    pub exact: Option<Box<ExactBytes>>,
    /// Status-change time (ns) and inode number, for change detection; 0 when not recorded
    /// (manifests before format 3).
    #[serde(skip)]
    pub ctime_ns: i64,
    #[serde(skip)]
    pub inode: u64,
}

/// The exact bytes of an entry's path or link target, where they are not UTF-8.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExactBytes {
    pub path: Option<Vec<u8>>,
    pub link_target: Option<Vec<u8>>,
}

impl Entry {
    /// The path's exact bytes.
    pub fn path_bytes(&self) -> &[u8] {
        self.exact
            .as_ref()
            .and_then(|e| e.path.as_deref())
            .unwrap_or(self.path.as_bytes())
    }

    /// The link target's exact bytes, for symlinks.
    pub fn link_target_bytes(&self) -> Option<&[u8]> {
        self.exact
            .as_ref()
            .and_then(|e| e.link_target.as_deref())
            .or(self.link_target.as_deref().map(str::as_bytes))
    }

    /// Records the exact bytes of the path and link target (each `None` when UTF-8).
    pub fn set_exact(&mut self, path: Option<Vec<u8>>, link_target: Option<Vec<u8>>) {
        self.exact = (path.is_some() || link_target.is_some())
            .then(|| Box::new(ExactBytes { path, link_target }));
    }

    /// Forgets what manifests before format 3 cannot hold: exact non-UTF-8 names (the lossy
    /// ones stay), the change time and the inode.
    pub fn keep_only_format_2_fields(&mut self) {
        self.exact = None;
        self.ctime_ns = 0;
        self.inode = 0;
    }
}

/// Text for bytes that may not be UTF-8: the text itself, and the bytes too when they are not
/// (then the text shows them lossily).
pub fn text_and_raw(bytes: &[u8]) -> (String, Option<Vec<u8>>) {
    match std::str::from_utf8(bytes) {
        Ok(text) => (text.to_string(), None),
        Err(_) => (
            String::from_utf8_lossy(bytes).into_owned(),
            Some(bytes.to_vec()),
        ),
    }
}

/// A source as stored in a snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotSource {
    pub name: String,
    /// The absolute path it was read from (informational).
    pub origin: String,
    /// True when the source is a single file rather than a directory.
    pub single_file: bool,
    pub entries: Vec<Entry>,
}

/// A snapshot manifest (encrypted), written last.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    pub time: String,
    pub hostname: String,
    pub sources: Vec<SnapshotSource>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// The snapshot this one reused unchanged files from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<String>,
    /// BLAKE3 over every source's content, the same digest `source_digest` computes.
    pub source_digest: String,
}

/// What listing needs of a snapshot (encrypted, small), written right after its manifest so
/// that listing a vault never decodes manifests, which grow with the number of files. Optional:
/// a manifest without one (older writers, a crash between the two writes) is listed from the
/// manifest itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestSummary {
    pub time: String,
    pub hostname: String,
    /// Source names, in manifest order.
    pub sources: Vec<String>,
    pub files: u64,
    pub bytes: u64,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<String>,
    pub source_digest: String,
    /// Bytes the snapshot added to storage when it was written (its new packs, its index
    /// file and its manifest; at a replication's destination, what the copy added there):
    /// with `bytes`, what deduplication saved. Absent from summaries of older builds. Not
    /// part of the manifest, so verify leaves it out when comparing the two.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stored_bytes: Option<u64>,
}

impl ManifestSummary {
    /// Whether this summary says what `manifest` says. What the snapshot stored is known to
    /// its summary alone, so it is not compared.
    pub fn says_what(&self, manifest: &Snapshot) -> bool {
        *self
            == ManifestSummary {
                stored_bytes: self.stored_bytes,
                ..manifest.summary()
            }
    }
}

impl Snapshot {
    /// The summary stored next to this manifest.
    pub fn summary(&self) -> ManifestSummary {
        ManifestSummary {
            time: self.time.clone(),
            hostname: self.hostname.clone(),
            sources: self.sources.iter().map(|s| s.name.clone()).collect(),
            files: self.file_count() as u64,
            bytes: self.total_bytes(),
            labels: self.labels.clone(),
            parent: self.parent.clone(),
            source_digest: self.source_digest.clone(),
            stored_bytes: None,
        }
    }

    pub fn file_count(&self) -> usize {
        self.sources
            .iter()
            .flat_map(|s| &s.entries)
            .filter(|e| e.kind == EntryKind::File)
            .count()
    }

    pub fn total_bytes(&self) -> u64 {
        self.sources
            .iter()
            .flat_map(|s| &s.entries)
            .filter(|e| e.kind == EntryKind::File)
            .map(|e| e.size)
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn entry() -> impl Strategy<Value = Entry> {
        (
            "[a-z0-9._/ -]{0,40}",
            prop_oneof![
                Just(EntryKind::File),
                Just(EntryKind::Dir),
                Just(EntryKind::Symlink)
            ],
            0u32..0o7777,
            0u64..(1 << 48),
            any::<i64>(),
            proptest::option::of("[0-9a-f]{64}"),
            proptest::collection::vec(proptest::array::uniform32(any::<u8>()), 0..3),
            proptest::option::of("\\PC{0,20}"),
        )
            .prop_map(
                |(path, kind, mode, size, mtime_ns, digest, chunks, link_target)| Entry {
                    path,
                    kind,
                    mode,
                    size,
                    mtime_ns,
                    digest,
                    chunks: chunks.into_iter().map(BlobId).collect(),
                    link_target,
                    ..Entry::default()
                },
            )
    }

    fn snapshot() -> impl Strategy<Value = Snapshot> {
        let source = (
            "\\PC{1,12}",
            any::<bool>(),
            proptest::collection::vec(entry(), 0..6),
        )
            .prop_map(|(name, single_file, entries)| SnapshotSource {
                origin: format!("/srv/{name}"),
                name,
                single_file,
                entries,
            });
        (
            proptest::collection::vec(source, 0..3),
            proptest::collection::btree_map("[a-z]{1,6}", "\\PC{0,10}", 0..3),
            proptest::option::of("[0-9a-f]{64}"),
        )
            .prop_map(|(sources, labels, parent)| Snapshot {
                time: "2026-11-27T03:00:00.000000000Z".into(),
                hostname: "ci-runner-1".into(),
                sources,
                labels,
                parent,
                source_digest: "0".repeat(64),
            })
    }

    proptest! {
        /// A manifest and its summary read back as written, whatever the names, labels and
        /// sizes; the summary counts files and bytes of file entries only.
        #[test]
        fn manifests_and_summaries_round_trip(snapshot in snapshot()) {
            let text = serde_json::to_vec(&snapshot).unwrap();
            prop_assert_eq!(&serde_json::from_slice::<Snapshot>(&text).unwrap(), &snapshot);
            let summary = snapshot.summary();
            let text = serde_json::to_vec(&summary).unwrap();
            prop_assert_eq!(&serde_json::from_slice::<ManifestSummary>(&text).unwrap(), &summary);
            let files = snapshot.sources.iter().flat_map(|s| &s.entries)
                .filter(|e| e.kind == EntryKind::File);
            prop_assert_eq!(summary.files, files.clone().count() as u64);
            prop_assert_eq!(summary.bytes, files.map(|e| e.size).sum::<u64>());
        }
    }
}
