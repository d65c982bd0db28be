//! Reading blobs back: through the index, from blocking threads (where restore and
//! replication do their work), with reads of neighbouring blobs of one pack coalesced.
//!
//! Blobs come back opened but in their frame ([`OpenedBlob`]). Their ids are re-hashed only
//! for files recorded without a digest: the others are checked whole, against the digest,
//! by the reader's caller (one hash of the content, not two).

use super::blob::{check_blob_id, open_blob_frame, OpenedBlob};
use super::index::BlobIndex;
use super::layout;
use crate::crypto::{BlobId, MasterKey};
use crate::error::{Error, Result};
use crate::format::{BlobLocation, Entry};
use crate::storage::Storage;
use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;

/// Blobs of one pack closer than this are fetched by one read (the gap is read and dropped).
const COALESCE_GAP: u64 = 64 * 1024;

/// Reads a vault's blobs from blocking threads, where restore and replication do their work:
/// the vault's storage, key and index, and the runtime its storage reads go through.
#[derive(Clone)]
pub(crate) struct BlobReader {
    storage: Storage,
    key: Arc<MasterKey>,
    index: Arc<BlobIndex>,
    runtime: tokio::runtime::Handle,
}

impl BlobReader {
    /// Needs a Tokio runtime (its handle serves the blocking threads).
    pub(crate) fn new(storage: Storage, key: Arc<MasterKey>, index: Arc<BlobIndex>) -> BlobReader {
        BlobReader {
            storage,
            key,
            index,
            runtime: tokio::runtime::Handle::current(),
        }
    }

    /// The blobs of a batch of several (small) files, read and opened ahead, coalescing reads
    /// of blobs that lie close together in one pack: a snapshot packs small files in the
    /// order it read them, so a batch of neighbouring files usually takes one read. A batch
    /// of one (large) file preloads nothing: it reads chunk by chunk, holding one at a time.
    pub(crate) fn preload(&self, files: &[&Entry]) -> Result<HashMap<BlobId, OpenedBlob>> {
        if files.len() < 2 {
            return Ok(HashMap::new());
        }
        let mut wanted: Vec<(&BlobId, &str, &BlobLocation)> = Vec::new();
        let mut seen = std::collections::HashSet::new();
        let mut check_ids = std::collections::HashSet::new();
        for entry in files {
            for id in &entry.chunks {
                if entry.digest.is_none() {
                    check_ids.insert(*id);
                }
                if !seen.insert(*id) {
                    continue;
                }
                let (pack, location) = self.locate(id, &entry.path)?;
                wanted.push((id, pack, location));
            }
        }
        wanted.sort_by(|a, b| (a.1, a.2.offset).cmp(&(b.1, b.2.offset)));
        let mut opened = HashMap::with_capacity(wanted.len());
        let mut i = 0;
        while i < wanted.len() {
            // A run: blobs of one pack whose gaps are small next to what is read.
            let (_, pack, first) = wanted[i];
            let mut end = first.offset + u64::from(first.length);
            let mut j = i + 1;
            while j < wanted.len()
                && wanted[j].1 == pack
                && wanted[j].2.offset <= end + COALESCE_GAP
            {
                end = end.max(wanted[j].2.offset + u64::from(wanted[j].2.length));
                j += 1;
            }
            let pack_object = layout::pack(pack);
            let object = format!("{}/{pack_object}", self.storage.url());
            let bytes = self
                .runtime
                .block_on(self.storage.get_range(&pack_object, first.offset..end))?;
            for (id, _, location) in &wanted[i..j] {
                let start = (location.offset - first.offset) as usize;
                let sealed = &bytes[start..start + location.length as usize];
                let blob = open_blob_frame(&self.key, &object, location, sealed)?;
                if check_ids.contains(*id) {
                    check_blob_id(&self.key, &object, id, blob.plaintext())?;
                }
                opened.insert(**id, blob);
            }
            i = j;
        }
        Ok(opened)
    }

    /// The pack and place of a blob of `file`.
    fn locate(&self, id: &BlobId, file: &str) -> Result<(&str, &BlobLocation)> {
        let (pack, location) = self.index.get(id).ok_or_else(|| {
            Error::corrupt(
                &format!("{}/{}/", self.storage.url(), layout::INDEX),
                format!("blob {} of {file:?} is in no index", &id.to_hex()[..16]),
            )
        })?;
        Ok((pack, location))
    }

    /// One chunk of `file`: from `preloaded`, else read and opened now.
    pub(crate) fn chunk<'a>(
        &self,
        id: &BlobId,
        file: &Entry,
        preloaded: &'a HashMap<BlobId, OpenedBlob>,
    ) -> Result<Cow<'a, OpenedBlob>> {
        if let Some(data) = preloaded.get(id) {
            return Ok(Cow::Borrowed(data));
        }
        let (pack, location) = self.locate(id, &file.path)?;
        let pack_object = layout::pack(pack);
        let range = location.offset..location.offset + u64::from(location.length);
        let sealed = self
            .runtime
            .block_on(self.storage.get_range(&pack_object, range))?;
        let object = format!("{}/{pack_object}", self.storage.url());
        let blob = open_blob_frame(&self.key, &object, location, &sealed)?;
        if file.digest.is_none() {
            check_blob_id(&self.key, &object, id, blob.plaintext())?;
        }
        Ok(Cow::Owned(blob))
    }
}
