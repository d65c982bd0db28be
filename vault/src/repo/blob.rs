//! How every object of a vault is sealed and read back: a frame (a flag byte, 1 = zstd and
//! 0 = stored, then the bytes) encrypted and authenticated by the master key, bound to the
//! object's label ([`super::layout::label`]). Blobs are framed one by one inside packs; JSON
//! objects and manifests are whole objects.

use super::layout;
use crate::crypto::{BlobId, MasterKey};
use crate::error::{Error, ErrorKind, Result};
use crate::format::{BlobLocation, Snapshot};
use crate::storage::Storage;
use bytes::Bytes;

/// Chunks larger than this are sampled before they are compressed.
const SAMPLE_ABOVE: usize = 128 * 1024;
const SAMPLE_LEN: usize = 32 * 1024;

/// Frames `raw` (a flag byte, 1 = zstd and 0 = stored, then the bytes) and seals it, in one
/// allocation: the raw bytes are copied once, into the sealed output.
pub(crate) fn seal_framed(key: &MasterKey, ad: &[u8], raw: &[u8]) -> Vec<u8> {
    match compress_if_it_pays(raw) {
        Some(z) => key.seal_parts(ad, &[&[1], &z]),
        None => key.seal_parts(ad, &[&[0], raw]),
    }
}

/// Frames and seals the concatenation of `parts` (a manifest encoded in pieces) as
/// [`seal_framed`] does with it whole, compressing the pieces as one zstd stream without
/// joining them: at 300 000 files the joined copy was 30 MB more held at once.
pub(crate) fn seal_framed_parts(key: &MasterKey, ad: &[u8], parts: &[Vec<u8>]) -> Vec<u8> {
    let total: usize = parts.iter().map(Vec::len).sum();
    match compress_parts(parts, total) {
        Some(framed) if framed.len() < crate::crypto::SEAL_ROOM + 1 + total => {
            key.seal_in_place(ad, framed)
        }
        _ => {
            let mut framed: Vec<&[u8]> = vec![&[0]];
            framed.extend(parts.iter().map(Vec::as_slice));
            key.seal_parts(ad, &framed)
        }
    }
}

/// One zstd frame of `parts` in order, recording its size (readers presize from it), after
/// the room sealing needs and the compressed flag; `None` if the compressor fails (the parts
/// are then stored as they are).
fn compress_parts(parts: &[Vec<u8>], total: usize) -> Option<Vec<u8>> {
    use std::io::Write as _;
    let mut out = Vec::with_capacity(crate::crypto::SEAL_ROOM + 1 + total / 2);
    out.resize(crate::crypto::SEAL_ROOM, 0);
    out.push(1);
    let mut encoder = zstd::stream::Encoder::new(out, ZSTD_LEVEL).ok()?;
    encoder.include_contentsize(true).ok()?;
    encoder.set_pledged_src_size(Some(total as u64)).ok()?;
    for part in parts {
        encoder.write_all(part).ok()?;
    }
    encoder.finish().ok()
}

/// zstd level 1: on pipeline text it stores within 1 % of level 3 and cut the time of a
/// snapshot of 32 768 small files by more than a quarter (`bench/vault-vs-restic`).
const ZSTD_LEVEL: i32 = 1;

/// The compressed bytes, or `None` when compression does not make them smaller.
pub(crate) fn compress_if_it_pays(raw: &[u8]) -> Option<Vec<u8>> {
    thread_local! {
        // One compression context per thread: creating one per blob costs more than
        // compressing a small file.
        static COMPRESSOR: std::cell::RefCell<Option<zstd::bulk::Compressor<'static>>> =
            std::cell::RefCell::new(zstd::bulk::Compressor::new(ZSTD_LEVEL).ok());
    }
    let compress = |data: &[u8]| {
        COMPRESSOR.with(|c| match c.borrow_mut().as_mut() {
            Some(c) => c.compress(data),
            None => zstd::bulk::compress(data, ZSTD_LEVEL),
        })
    };
    // Already-compressed data (images, archives) does not shrink, and zstd spent a quarter of
    // a first snapshot's CPU finding that out chunk by chunk: a sample from the middle that
    // does not shrink by 3 % stores the chunk as it is.
    if raw.len() > SAMPLE_ABOVE {
        let start = (raw.len() - SAMPLE_LEN) / 2;
        let sample = &raw[start..start + SAMPLE_LEN];
        if compress(sample).is_ok_and(|z| z.len() * 100 > SAMPLE_LEN * 97) {
            return None;
        }
    }
    compress(raw).ok().filter(|z| z.len() < raw.len())
}

/// A stored frame's bytes: the decrypted buffer itself, its flag byte shifted out (no second
/// allocation of a 4 MiB chunk).
pub(crate) fn without_flag(mut framed: Vec<u8>) -> Vec<u8> {
    framed.remove(0);
    framed
}

/// The plaintext of a framed blob.
pub(crate) fn unframe(object: &str, framed: Vec<u8>, raw_length: usize) -> Result<Vec<u8>> {
    let opened = OpenedBlob::from_frame(object, framed, raw_length)?;
    Ok(match opened.raw {
        Some(raw) => raw,
        None => without_flag(opened.framed),
    })
}

/// A blob decrypted but kept in its frame: readers take its plaintext, and replication to a
/// vault with another key re-seals the frame as it is (compressing again cost a fifth of a
/// replication's CPU, for the same bytes).
#[derive(Clone)]
pub(crate) struct OpenedBlob {
    /// The flag byte and the stored bytes.
    framed: Vec<u8>,
    /// The decompressed bytes of a compressed frame.
    raw: Option<Vec<u8>>,
}

impl OpenedBlob {
    /// Checks the frame's flag and decompresses a compressed one to `raw_length` bytes.
    fn from_frame(object: &str, framed: Vec<u8>, raw_length: usize) -> Result<OpenedBlob> {
        let raw = match framed.first() {
            Some(0) => None,
            Some(1) => {
                thread_local! {
                    static DECOMPRESSOR: std::cell::RefCell<Option<zstd::bulk::Decompressor<'static>>> =
                        std::cell::RefCell::new(zstd::bulk::Decompressor::new().ok());
                }
                let z = &framed[1..];
                let raw = DECOMPRESSOR
                    .with(|d| match d.borrow_mut().as_mut() {
                        Some(d) => d.decompress(z, raw_length),
                        None => zstd::bulk::decompress(z, raw_length),
                    })
                    .map_err(|e| Error::corrupt(object, format!("does not decompress: {e}")))?;
                Some(raw)
            }
            _ => return Err(Error::corrupt(object, "unknown compression tag")),
        };
        Ok(OpenedBlob { framed, raw })
    }

    /// The blob's bytes.
    pub(crate) fn plaintext(&self) -> &[u8] {
        self.raw.as_deref().unwrap_or(&self.framed[1..])
    }

    /// The frame as stored (flag byte, then the stored bytes), to seal again as it is.
    pub(crate) fn frame(&self) -> &[u8] {
        &self.framed
    }
}

/// Seals `raw` in a compression frame and writes it as the new object `key`; returns the bytes
/// stored.
///
/// # Errors
/// `AlreadyExists` when the key is taken (objects are never overwritten); storage errors.
pub(crate) async fn store_sealed(
    storage: &Storage,
    master: &MasterKey,
    key: &str,
    ad: &str,
    raw: Vec<u8>,
) -> Result<u64> {
    store_sealed_parts(storage, master, key, ad, vec![raw]).await
}

/// Seals the concatenation of `parts` (see [`seal_framed_parts`]) and writes it as the new
/// object `key`, as [`store_sealed`] does one buffer.
pub(crate) async fn store_sealed_parts(
    storage: &Storage,
    master: &MasterKey,
    key: &str,
    ad: &str,
    parts: Vec<Vec<u8>>,
) -> Result<u64> {
    let sealed = seal_framed_parts(master, ad.as_bytes(), &parts);
    // Not held while the sealed copy is written (a manifest is tens of megabytes).
    drop(parts);
    let len = sealed.len() as u64;
    if !storage.put_new(key, Bytes::from(sealed)).await? {
        return Err(Error::new(
            ErrorKind::AlreadyExists,
            format!("{}/{key} already exists", storage.url()),
        ));
    }
    Ok(len)
}

/// Reads, opens and parses one sealed JSON object (index, summary, record, version 1
/// manifest).
pub(crate) async fn load_sealed_json<T: serde::de::DeserializeOwned>(
    storage: &Storage,
    master: &MasterKey,
    key: &str,
    ad: &str,
) -> Result<T> {
    let (raw, object) = load_sealed(storage, master, key, ad).await?;
    serde_json::from_slice(&raw).map_err(|e| Error::corrupt(&object, format!("is not valid: {e}")))
}

/// Reads one snapshot manifest, in either encoding (FORMAT.md, "Snapshots").
pub(crate) async fn load_manifest(
    storage: &Storage,
    master: &MasterKey,
    id: &str,
) -> Result<Snapshot> {
    let key = layout::snapshot(id);
    let (raw, object) = load_sealed(storage, master, &key, &layout::label::snapshot(id)).await?;
    decode_manifest(&raw, &object)
}

/// Reads one snapshot manifest for its entries, decoded as they are asked for.
pub(crate) async fn load_manifest_entries(
    storage: &Storage,
    master: &MasterKey,
    id: &str,
) -> Result<crate::manifest::ManifestEntries> {
    use crate::manifest::ManifestEntries;
    let key = layout::snapshot(id);
    let (raw, object) = load_sealed(storage, master, &key, &layout::label::snapshot(id)).await?;
    if crate::manifest::is_binary(&raw) {
        return crate::manifest::decode_lazily(raw, &object).map(ManifestEntries::Lazy);
    }
    decode_manifest(&raw, &object).map(ManifestEntries::whole)
}

/// Reads one snapshot manifest and also returns its sealed bytes, as stored (a standby
/// sharing the key stores the same bytes: they were opened, so they are whole).
pub(crate) async fn load_manifest_sealed(
    storage: &Storage,
    master: &MasterKey,
    id: &str,
) -> Result<(Snapshot, bytes::Bytes)> {
    let key = layout::snapshot(id);
    let sealed = storage.get(&key).await?;
    let object = format!("{}/{key}", storage.url());
    let raw = open_sealed(
        master,
        &object,
        &layout::label::snapshot(id),
        sealed.to_vec(),
    )?;
    Ok((decode_manifest(&raw, &object)?, sealed))
}

/// A manifest in either encoding (FORMAT.md, "Snapshots").
fn decode_manifest(raw: &[u8], object: &str) -> Result<Snapshot> {
    if crate::manifest::is_binary(raw) {
        crate::manifest::decode(raw, object)
    } else {
        serde_json::from_slice(raw)
            .map_err(|e| Error::corrupt(object, format!("is not valid: {e}")))
    }
}

/// Reads, opens and unframes one sealed object; also returns its full name, for errors.
pub(crate) async fn load_sealed(
    storage: &Storage,
    master: &MasterKey,
    key: &str,
    ad: &str,
) -> Result<(Vec<u8>, String)> {
    let sealed = storage.get(key).await?;
    let object = format!("{}/{key}", storage.url());
    // Opened where it was read (no copy when the store's buffer is not shared): a manifest
    // is tens of megabytes.
    let raw = open_sealed(master, &object, ad, Vec::from(sealed))?;
    Ok((raw, object))
}

/// Opens and unframes one sealed object's bytes.
fn open_sealed(master: &MasterKey, object: &str, ad: &str, sealed: Vec<u8>) -> Result<Vec<u8>> {
    let framed = master.open_in_place(object, ad.as_bytes(), sealed)?;
    Ok(match framed.first() {
        Some(1) => decompress_whole(&framed[1..])
            .map_err(|e| Error::corrupt(object, format!("does not decompress: {e}")))?,
        Some(0) => without_flag(framed),
        _ => return Err(Error::corrupt(object, "unknown compression tag")),
    })
}

/// Decompresses a sealed object's frame (JSON or a manifest) into one buffer of the size the frame records
/// (a manifest is megabytes: growing a buffer by doubling copied and faulted in twice that).
pub(crate) fn decompress_whole(z: &[u8]) -> std::io::Result<Vec<u8>> {
    /// Larger recorded sizes are not trusted up front; the stream decoder grows as needed.
    const PRESIZE_UP_TO: u64 = 1 << 30;
    match zstd::zstd_safe::get_frame_content_size(z) {
        Ok(Some(size)) if size <= PRESIZE_UP_TO => zstd::bulk::decompress(z, size as usize),
        _ => zstd::stream::decode_all(z),
    }
}

/// Decrypts, decompresses and re-hashes one blob.
pub(crate) fn open_blob(
    key: &MasterKey,
    object: &str,
    loc: &BlobLocation,
    sealed: &[u8],
) -> Result<Vec<u8>> {
    let framed = key.open(
        object,
        layout::label::blob(&loc.id.to_hex()).as_bytes(),
        sealed,
    )?;
    let raw = unframe(object, framed, loc.raw_length as usize)?;
    check_blob_id(key, object, &loc.id, &raw)?;
    Ok(raw)
}

/// Decrypts and decompresses one blob, keeping its frame; its id is not re-hashed (see
/// [`check_blob_id`]).
pub(crate) fn open_blob_frame(
    key: &MasterKey,
    object: &str,
    loc: &BlobLocation,
    sealed: &[u8],
) -> Result<OpenedBlob> {
    let framed = key.open(
        object,
        layout::label::blob(&loc.id.to_hex()).as_bytes(),
        sealed,
    )?;
    OpenedBlob::from_frame(object, framed, loc.raw_length as usize)
}

/// Checks that a blob's plaintext hashes to its id. The seal already binds the blob to its
/// id (only the key's holder could have made it), so readers that check each file's digest
/// skip this keyed hash; it is for files recorded without one, and for verify.
pub(crate) fn check_blob_id(key: &MasterKey, object: &str, id: &BlobId, raw: &[u8]) -> Result<()> {
    if key.blob_id(raw) != *id {
        return Err(Error::corrupt(
            object,
            format!("blob {} does not hash to its id", &id.to_hex()[..16]),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// The compression frame round-trips for text, for incompressible bytes and for chunks
        /// large enough to be sampled, and stores nothing larger than the bytes plus the flag.
        #[test]
        fn framed_blobs_round_trip(
            seed in proptest::collection::vec(any::<u8>(), 1..64),
            repeat in 1usize..6000,
            random_tail in proptest::collection::vec(any::<u8>(), 0..2000),
        ) {
            let mut raw: Vec<u8> = seed.iter().copied().cycle().take(seed.len() * repeat).collect();
            raw.extend_from_slice(&random_tail);
            let key = MasterKey::generate();
            let sealed = seal_framed(&key, b"blob:x", &raw);
            let framed = key.open("o", b"blob:x", &sealed).unwrap();
            prop_assert!(framed.len() <= raw.len() + 1);
            prop_assert_eq!(unframe("o", framed, raw.len()).unwrap(), raw);
        }
    }

    #[test]
    fn an_unknown_compression_tag_is_named_not_guessed() {
        let err = unframe("data/ab/pack", vec![7, 1, 2], 2).unwrap_err();
        assert_eq!(err.kind, ErrorKind::Corrupt);
        assert!(err.to_string().contains("data/ab/pack"), "{err}");
    }
}
