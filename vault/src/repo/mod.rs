//! The repository layer under the vault's operations. Snapshot, restore, verify, prune and
//! replicate (`crate::vault`) say what to do; this layer is how it is stored:
//! - [`layout`]: every object key and label, and the parsing of listed keys;
//! - [`blob`]: sealing and framing (compression) of every object, and reading them back;
//! - [`index`]: the index files (which pack holds each blob), read merged and written whole;
//! - [`packer`]: the queue of sealed blobs and the writer that packs them;
//! - [`reader`]: blobs read back through the index, neighbouring reads coalesced.
//!
//! [`Repo`] is the handle operations hold: the storage and the key that seals its objects,
//! with the layer's reads and writes as methods, so no operation passes either around itself.

pub(crate) mod blob;
pub(crate) mod index;
pub mod layout;
pub(crate) mod packer;
pub(crate) mod reader;

use crate::crypto::MasterKey;
use crate::error::{Error, ErrorKind, Result};
use crate::format::{PackEntry, Snapshot};
use crate::storage::Storage;
use index::{BlobIndex, Index};
use layout::Kind;
use std::collections::HashSet;
use std::sync::Arc;

/// A vault's objects: where they are stored and the master key that seals them. Cheap to
/// clone (both are shared), so tasks take their own.
#[derive(Clone)]
pub(crate) struct Repo {
    storage: Storage,
    key: Arc<MasterKey>,
}

impl Repo {
    pub(crate) fn new(storage: Storage, key: MasterKey) -> Repo {
        Repo {
            storage,
            key: Arc::new(key),
        }
    }

    pub(crate) fn storage(&self) -> &Storage {
        &self.storage
    }

    pub(crate) fn key(&self) -> &Arc<MasterKey> {
        &self.key
    }

    /// The vault's own objects of one kind (see [`list_own`]).
    pub(crate) async fn list_own(&self, kind: Kind) -> Result<Vec<OwnObject>> {
        list_own(&self.storage, kind).await
    }

    /// The ids of the vault's own objects of one kind, unordered.
    pub(crate) async fn ids_of(&self, kind: Kind) -> Result<Vec<String>> {
        Ok(self
            .list_own(kind)
            .await?
            .into_iter()
            .map(|l| l.name)
            .collect())
    }

    /// Keys under the vault's location that are not of its layout (see [`foreign_objects`]).
    pub(crate) async fn foreign_objects(&self) -> Result<Vec<String>> {
        foreign_objects(&self.storage).await
    }

    /// The whole index, file by file; the first file that does not open is the error.
    pub(crate) async fn index(&self) -> Result<Index> {
        Index::load(&self.storage, &self.key).await
    }

    /// The index files that open, and the problems of those that do not (for verify).
    pub(crate) async fn index_checked(&self) -> Result<(Index, Vec<(String, Error)>)> {
        Index::load_checked(&self.storage, &self.key).await
    }

    /// Where each blob is (for reading blobs back).
    pub(crate) async fn blob_index(&self) -> Result<BlobIndex> {
        index::load_blobs(&self.storage, &self.key).await
    }

    /// Which blobs the vault holds (for deduplication).
    pub(crate) async fn blob_ids(&self) -> Result<HashSet<crate::crypto::BlobId>> {
        index::load_blob_ids(&self.storage, &self.key).await
    }

    /// Writes a new index file listing `packs`; returns the bytes stored.
    pub(crate) async fn write_index(&self, packs: Vec<PackEntry>) -> Result<u64> {
        index::write(&self.storage, &self.key, packs).await
    }

    /// Reads one snapshot manifest.
    pub(crate) async fn load_manifest(&self, id: &str) -> Result<Snapshot> {
        blob::load_manifest(&self.storage, &self.key, id).await
    }

    /// Reads one snapshot manifest for its entries, decoded as they are asked for.
    pub(crate) async fn load_manifest_entries(
        &self,
        id: &str,
    ) -> Result<crate::manifest::ManifestEntries> {
        blob::load_manifest_entries(&self.storage, &self.key, id).await
    }

    /// Reads, opens and parses one sealed JSON object.
    pub(crate) async fn load_sealed_json<T: serde::de::DeserializeOwned>(
        &self,
        key: &str,
        ad: &str,
    ) -> Result<T> {
        blob::load_sealed_json(&self.storage, &self.key, key, ad).await
    }

    /// Seals `raw` in a compression frame and writes it as the new object `key`.
    pub(crate) async fn store_sealed(&self, key: &str, ad: &str, raw: Vec<u8>) -> Result<u64> {
        blob::store_sealed(&self.storage, &self.key, key, ad, raw).await
    }

    /// Seals the concatenation of `parts` in a compression frame and writes it as the new
    /// object `key`.
    pub(crate) async fn store_sealed_parts(
        &self,
        key: &str,
        ad: &str,
        parts: Vec<Vec<u8>>,
    ) -> Result<u64> {
        blob::store_sealed_parts(&self.storage, &self.key, key, ad, parts).await
    }

    /// Seals `value` as JSON and writes it as the new object `key`.
    pub(crate) async fn store_sealed_json<T: serde::Serialize>(
        &self,
        key: &str,
        ad: &str,
        value: &T,
    ) -> Result<u64> {
        let raw =
            serde_json::to_vec(value).map_err(|e| Error::new(ErrorKind::Io, e.to_string()))?;
        self.store_sealed(key, ad, raw).await
    }

    /// Reads blobs back through `index`.
    pub(crate) fn blob_reader(&self, index: Arc<BlobIndex>) -> reader::BlobReader {
        reader::BlobReader::new(self.storage.clone(), self.key.clone(), index)
    }
}

/// One of the vault's own objects as listed.
pub(crate) struct OwnObject {
    pub(crate) key: String,
    /// Its id (a record's name).
    pub(crate) name: String,
    pub(crate) size: u64,
    pub(crate) modified: Option<time::OffsetDateTime>,
}

/// The vault's own objects of one kind; keys that do not parse as that kind are skipped here
/// (and reported by [`foreign_objects`]), so nothing that is not the vault's is ever read as
/// its object, or deleted as one.
pub(crate) async fn list_own(storage: &Storage, kind: Kind) -> Result<Vec<OwnObject>> {
    Ok(storage
        .list(kind.dir())
        .await?
        .into_iter()
        .filter_map(|listed| {
            let object = layout::parse(&listed.key).filter(|o| o.kind == kind)?;
            Some(OwnObject {
                name: object.name.to_string(),
                key: listed.key.clone(),
                size: listed.size,
                modified: listed.modified,
            })
        })
        .collect())
}

/// Every key under the vault's own directories that is not of the layout, and every name at
/// its top level that is neither `config` nor one of those directories. Other directories are
/// not walked: a vault that shares its location with other files (made by an older build)
/// names them, not their contents.
pub(crate) async fn foreign_objects(storage: &Storage) -> Result<Vec<String>> {
    let mut foreign: Vec<String> = storage
        .top_level()
        .await?
        .into_iter()
        .filter(|name| {
            let dir = name.strip_suffix('/');
            let is_layout_dir = dir.is_some_and(|d| layout::DIRS.contains(&d));
            let is_config = name == layout::CONFIG || layout::is_staged_config(name);
            !is_layout_dir && !is_config
        })
        .collect();
    for dir in layout::DIRS {
        for listed in storage.list(dir).await? {
            if layout::parse(&listed.key).is_none() {
                foreign.push(listed.key);
            }
        }
    }
    Ok(foreign)
}
