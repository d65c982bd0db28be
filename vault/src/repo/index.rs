//! The index: which pack holds each blob, and where in it. Each snapshot or replication that
//! writes packs adds one index file listing them; prune replaces them all with one file of the
//! packs that stay. This is the only code that reads or writes index files.

use super::{blob, layout, list_own};
use crate::crypto::{random_id, BlobId, MasterKey};
use crate::error::{Error, ErrorKind, Result};
use crate::format::{BlobLocation, IndexFile, PackEntry};
use crate::storage::Storage;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

/// The merged index: blob → (its pack's id, where in the pack).
pub(crate) type BlobIndex = HashMap<BlobId, (Arc<str>, BlobLocation)>;

/// Every index file of a vault as read: its key and the packs it lists.
pub(crate) struct Index {
    files: Vec<(String, Vec<PackEntry>)>,
}

impl Index {
    /// Reads every index file.
    ///
    /// # Errors
    /// The first file that does not open (`Corrupt`), or `Storage`.
    pub(crate) async fn load(storage: &Storage, master: &MasterKey) -> Result<Index> {
        let mut files = Vec::new();
        for_each_file(storage, master, |key, packs| files.push((key, packs))).await?;
        Ok(Index { files })
    }

    /// Reads every index file that opens; the others (whatever the reason) are returned beside
    /// it with their error, for verify to report.
    ///
    /// # Errors
    /// `Storage` when listing fails.
    pub(crate) async fn load_checked(
        storage: &Storage,
        master: &MasterKey,
    ) -> Result<(Index, Vec<(String, Error)>)> {
        let mut files = Vec::new();
        let mut unreadable = Vec::new();
        for listed in list_own(storage, layout::Kind::Index).await? {
            match read_file(storage, master, &listed.key, &listed.name).await {
                Ok(packs) => files.push((listed.key, packs)),
                Err(e) => unreadable.push((listed.key, e)),
            }
        }
        Ok((Index { files }, unreadable))
    }

    /// How many index files were read.
    pub(crate) fn file_count(&self) -> usize {
        self.files.len()
    }

    /// The keys of the files read.
    pub(crate) fn file_keys(&self) -> Vec<String> {
        self.files.iter().map(|(key, _)| key.clone()).collect()
    }

    /// Every pack every file lists (a pack listed twice, twice).
    pub(crate) fn into_packs(self) -> Vec<PackEntry> {
        self.files
            .into_iter()
            .flat_map(|(_, packs)| packs)
            .collect()
    }
}

/// Where each blob is, read file by file without keeping the files (on a large vault the index
/// is most of what a restore or a replication holds); a blob listed twice keeps the place
/// listed last.
///
/// # Errors
/// As [`Index::load`].
pub(crate) async fn load_blobs(storage: &Storage, master: &MasterKey) -> Result<BlobIndex> {
    let mut map = HashMap::new();
    for_each_file(storage, master, |_, packs| {
        for pack in packs {
            let pack_id: Arc<str> = Arc::from(pack.id.as_str());
            for blob in pack.blobs {
                map.insert(blob.id, (pack_id.clone(), blob));
            }
        }
    })
    .await?;
    Ok(map)
}

/// The blobs the vault holds, read as [`load_blobs`] reads them.
///
/// # Errors
/// As [`Index::load`].
pub(crate) async fn load_blob_ids(
    storage: &Storage,
    master: &MasterKey,
) -> Result<HashSet<BlobId>> {
    let mut ids = HashSet::new();
    for_each_file(storage, master, |_, packs| {
        ids.extend(packs.iter().flat_map(|p| p.blobs.iter().map(|b| b.id)));
    })
    .await?;
    Ok(ids)
}

/// Reads the index files one at a time, handing each file's key and packs to `f`; the first
/// that does not open is the error.
async fn for_each_file(
    storage: &Storage,
    master: &MasterKey,
    mut f: impl FnMut(String, Vec<PackEntry>),
) -> Result<()> {
    for listed in list_own(storage, layout::Kind::Index).await? {
        let packs = read_file(storage, master, &listed.key, &listed.name).await?;
        f(listed.key, packs);
    }
    Ok(())
}

/// One index file's packs.
async fn read_file(
    storage: &Storage,
    master: &MasterKey,
    key: &str,
    id: &str,
) -> Result<Vec<PackEntry>> {
    let label = layout::label::index(id);
    let file: IndexFile = blob::load_sealed_json(storage, master, key, &label).await?;
    Ok(file.packs)
}

/// Writes a new index file listing `packs`; returns the bytes stored.
///
/// # Errors
/// Storage errors.
pub(crate) async fn write(
    storage: &Storage,
    master: &MasterKey,
    packs: Vec<PackEntry>,
) -> Result<u64> {
    let id = random_id();
    let raw = serde_json::to_vec(&IndexFile { packs })
        .map_err(|e| Error::new(ErrorKind::Io, e.to_string()))?;
    blob::store_sealed(
        storage,
        master,
        &layout::index(&id),
        &layout::label::index(&id),
        &raw,
    )
    .await
}
