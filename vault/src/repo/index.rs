//! The index: which pack holds each blob, and where in it. Each snapshot or replication that
//! writes packs adds index files listing them (at most 32 768 blobs each); prune replaces them
//! all with files of the packs that stay. This is the only code that reads or writes index
//! files.

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

    /// Each index file's key and packs.
    pub(crate) fn into_files(self) -> Vec<(String, Vec<PackEntry>)> {
        self.files
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
    mut packs: Vec<PackEntry>,
) -> Result<u64> {
    // In files of at most BLOBS_PER_FILE blobs: one file for a snapshot of 300 000 small
    // files was 40 MB of JSON, held with its compressed and sealed copies at the snapshot's
    // peak of memory. Readers merge any number of files.
    let mut stored = 0;
    while !packs.is_empty() {
        let mut blobs = 0;
        let take = packs
            .iter()
            .take_while(|p| {
                let fits = blobs == 0 || blobs + p.blobs.len() <= BLOBS_PER_FILE;
                blobs += p.blobs.len();
                fits
            })
            .count();
        let rest = packs.split_off(take);
        let id = random_id();
        let raw = serde_json::to_vec(&IndexFile { packs })
            .map_err(|e| Error::new(ErrorKind::Io, e.to_string()))?;
        stored += blob::store_sealed(
            storage,
            master,
            &layout::index(&id),
            &layout::label::index(&id),
            raw,
        )
        .await?;
        packs = rest;
    }
    Ok(stored)
}

/// The most blobs one index file lists (about 4 MB of JSON).
const BLOBS_PER_FILE: usize = 32 * 1024;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::BlobLocation;

    fn pack(n: usize, first: u32) -> PackEntry {
        let blobs = (0..n as u32)
            .map(|i| {
                let mut id = [0u8; 32];
                id[..4].copy_from_slice(&(first + i).to_le_bytes());
                BlobLocation {
                    id: BlobId(id),
                    offset: u64::from(i) * 100,
                    length: 100,
                    raw_length: 90,
                }
            })
            .collect();
        PackEntry {
            id: random_id(),
            blobs,
        }
    }

    /// A writer of many blobs leaves several bounded index files, and readers see every blob.
    #[tokio::test]
    async fn a_large_index_is_written_in_bounded_files_and_read_back_whole() {
        let storage = Storage::memory();
        let key = MasterKey::generate();
        let packs = vec![
            pack(20_000, 0),
            pack(20_000, 20_000),
            pack(BLOBS_PER_FILE + 5, 40_000),
            pack(3, 100_000),
        ];
        write(&storage, &key, packs.clone()).await.unwrap();
        let index = Index::load(&storage, &key).await.unwrap();
        // 20k | 20k | 32k+5 (alone: a pack is never split) | 3.
        assert_eq!(index.file_count(), 4);
        let mut read = index.into_packs();
        read.sort_by(|a, b| a.blobs[0].id.0.cmp(&b.blobs[0].id.0));
        let mut want = packs;
        want.sort_by(|a, b| a.blobs[0].id.0.cmp(&b.blobs[0].id.0));
        assert_eq!(read, want);
        assert_eq!(
            load_blobs(&storage, &key).await.unwrap().len(),
            40_000 + BLOBS_PER_FILE + 8
        );
    }

    /// Index files are merged in listing order: a blob listed in several files (stored by two
    /// writers at once) keeps the place the last one gives it, for every reader alike.
    #[tokio::test]
    async fn index_files_are_merged_in_listing_order() {
        let storage = Storage::memory();
        let key = MasterKey::generate();
        let mut pack_of_file = HashMap::new();
        for n in 0..13 {
            // The same blob in every file (in a pack of its own), and some others.
            let shared = pack(1, 7);
            let others = pack(2_000, 10_000 * (n as u32 + 1));
            write(&storage, &key, vec![shared.clone(), others])
                .await
                .unwrap();
            let before = pack_of_file.len();
            for listed in list_own(&storage, layout::Kind::Index).await.unwrap() {
                pack_of_file.entry(listed.key).or_insert(shared.id.clone());
            }
            assert_eq!(pack_of_file.len(), before + 1);
        }
        let listed: Vec<String> = list_own(&storage, layout::Kind::Index)
            .await
            .unwrap()
            .into_iter()
            .map(|l| l.key)
            .collect();
        let index = Index::load(&storage, &key).await.unwrap();
        let read: Vec<String> = index.into_files().into_iter().map(|(k, _)| k).collect();
        assert_eq!(read, listed);
        let blobs = load_blobs(&storage, &key).await.unwrap();
        let (pack_id, _) = blobs.get(&pack(1, 7).blobs[0].id).unwrap();
        assert_eq!(&**pack_id, pack_of_file[listed.last().unwrap()].as_str());
    }
}
