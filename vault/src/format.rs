//! The on-storage format (see `vault/FORMAT.md`): the plain `config`, and the shapes of the
//! encrypted index files and snapshot manifests.

use crate::crypto::BlobId;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The format version this build writes and the newest it reads.
pub const FORMAT_VERSION: u32 = 1;

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

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EntryKind {
    File,
    Dir,
    Symlink,
}

/// One file, directory or symlink of a source.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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

impl Snapshot {
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
