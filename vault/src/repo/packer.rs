//! Packing: sealed blobs queue to one writer per snapshot or replication, which writes them
//! into packs of about the vault's pack size, each blob as it comes (a pack is never held
//! whole in memory), and finishes full packs while the next ones fill. A pack ends with its
//! header: the blobs' locations, sealed under the pack's label, padded, then its length.

use super::{blob, layout};
use crate::crypto::{random_id, BlobId, MasterKey};
use crate::error::{Error, ErrorKind, Result};
use crate::format::{BlobLocation, PackEntry};
use crate::storage::{ObjectWriter, Storage};
use bytes::Bytes;
use std::collections::VecDeque;
use std::sync::Arc;
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};

/// One blob, sealed, on its way into a pack.
pub(crate) struct SealedBlob {
    pub(crate) id: BlobId,
    pub(crate) sealed: Vec<u8>,
    pub(crate) raw_length: u32,
}

impl SealedBlob {
    /// Frames and seals a blob's bytes under its label.
    pub(crate) fn seal(key: &MasterKey, id: BlobId, data: &[u8]) -> SealedBlob {
        let label = layout::label::blob(&id.to_hex());
        SealedBlob {
            id,
            sealed: blob::seal_framed(key, label.as_bytes(), data),
            raw_length: data.len() as u32,
        }
    }

    /// Seals an opened blob's frame as it is (compressed or not) under another key.
    pub(crate) fn reseal(key: &MasterKey, id: BlobId, blob: &blob::OpenedBlob) -> SealedBlob {
        let label = layout::label::blob(&id.to_hex());
        SealedBlob {
            id,
            sealed: key.seal(label.as_bytes(), blob.frame()),
            raw_length: blob.plaintext().len() as u32,
        }
    }
}

/// What sealed blobs waiting for the pack writer may hold, in KiB. Blobs range from a few
/// bytes to the largest chunk, so a count of blobs bounds nothing (16 large ones were 64 MiB).
const QUEUED_KIB: u32 = 4 * 1024;

/// The sending side of the queue to the pack writer, bounded by bytes.
#[derive(Clone)]
pub(crate) struct BlobSender {
    tx: mpsc::UnboundedSender<(SealedBlob, OwnedSemaphorePermit)>,
    room: Arc<Semaphore>,
}

/// The receiving side. Dropped (the pack writer stopped), it closes the room too, so a sender
/// waiting for room fails at once instead of waiting for permits nobody will return.
pub(crate) struct BlobReceiver {
    rx: mpsc::UnboundedReceiver<(SealedBlob, OwnedSemaphorePermit)>,
    room: Arc<Semaphore>,
}

impl BlobReceiver {
    async fn recv(&mut self) -> Option<(SealedBlob, OwnedSemaphorePermit)> {
        self.rx.recv().await
    }
}

impl Drop for BlobReceiver {
    fn drop(&mut self) {
        self.room.close();
    }
}

/// A queue of sealed blobs to [`pack_writer`] holding at most [`QUEUED_KIB`] (one blob larger
/// than that goes alone).
pub(crate) fn blob_queue() -> (BlobSender, BlobReceiver) {
    let (tx, rx) = mpsc::unbounded_channel();
    let room = Arc::new(Semaphore::new(QUEUED_KIB as usize));
    let receiver = BlobReceiver {
        rx,
        room: room.clone(),
    };
    (BlobSender { tx, room }, receiver)
}

impl BlobSender {
    /// Waits for room, then queues the blob.
    ///
    /// # Errors
    /// `Storage` when the pack writer has stopped (its own error says why).
    pub(crate) async fn send(&self, blob: SealedBlob) -> Result<()> {
        let kib = (blob.sealed.len().div_ceil(1024) as u32).clamp(1, QUEUED_KIB);
        let permit = self.room.clone().acquire_many_owned(kib).await;
        permit
            .ok()
            .and_then(|permit| self.tx.send((blob, permit)).ok())
            .ok_or_else(|| {
                Error::new(
                    ErrorKind::Storage,
                    "the pack writer stopped; see the error before this one",
                )
            })
    }

    /// [`BlobSender::send`] from a blocking thread.
    pub(crate) fn send_blocking(&self, blob: SealedBlob) -> Result<()> {
        tokio::runtime::Handle::current().block_on(self.send(blob))
    }
}

/// What full packs being finished at once (header written, then locally an fsync and a
/// rename, on object stores the upload's completion) may hold of their last parts, in bytes.
/// A local fsync of a 16 MiB pack took 20-100 ms, at times longer than filling the next pack,
/// and with one at a time the writer waited for each. Locally (1 MiB parts) this lets four
/// finish at once; on object stores (5 MiB parts, each finishing pack holding up to three)
/// one. First snapshot of the benchmark tree, four runs each: 6.26 s mean with four at a
/// time, 6.45 s with one (the VM's noise is ±0.4 s).
const FINISHING_BYTES: usize = 12 * 1024 * 1024;

/// Collects sealed blobs into packs of about `target` bytes, writing each blob into its pack
/// as it comes (a pack is never held whole in memory); full packs are finished while the next
/// ones fill. Returns the packs written and the bytes stored.
pub(crate) async fn pack_writer(
    repo: super::Repo,
    target: usize,
    mut rx: BlobReceiver,
) -> Result<(Vec<PackEntry>, u64)> {
    let (storage, key) = (repo.storage(), repo.key());
    let at_once = (FINISHING_BYTES / storage.bytes_held_by_a_finishing_write()).max(1);
    let mut packs = Packs::default();
    let written = write_packs(storage, key, target, &mut rx, at_once, &mut packs).await;
    // Every pack started is awaited, also after an error: none is still being written once
    // the snapshot's lock is released (the packs of a failed snapshot are in no index, and
    // prune deletes them).
    let mut first_error = written.err();
    while let Some(task) = packs.finishing.pop_front() {
        if let Err(e) = packs.take(task).await {
            first_error.get_or_insert(e);
        }
    }
    match first_error {
        Some(e) => Err(e),
        None => Ok((packs.finished, packs.stored)),
    }
}

/// The packs of one writer: being finished, and finished.
#[derive(Default)]
struct Packs {
    finishing: VecDeque<tokio::task::JoinHandle<Result<(PackEntry, u64)>>>,
    finished: Vec<PackEntry>,
    stored: u64,
}

impl Packs {
    /// Starts finishing `pack`, first waiting for the oldest pack being finished when
    /// `at_once` are.
    async fn finish(&mut self, pack: OpenPack, key: &Arc<MasterKey>, at_once: usize) -> Result<()> {
        if self.finishing.len() >= at_once {
            let oldest = self.finishing.pop_front().expect("a pack being finished");
            if let Err(e) = self.take(oldest).await {
                pack.writer.abort().await;
                return Err(e);
            }
        }
        self.finishing
            .push_back(tokio::spawn(pack.finish(key.clone())));
        Ok(())
    }

    /// Waits for a pack being finished and records it.
    async fn take(
        &mut self,
        task: tokio::task::JoinHandle<Result<(PackEntry, u64)>>,
    ) -> Result<()> {
        let (pack, len) = task
            .await
            .map_err(|e| Error::new(ErrorKind::Io, format!("pack upload failed: {e}")))??;
        self.finished.push(pack);
        self.stored += len;
        Ok(())
    }
}

/// Writes blobs into packs until the queue closes; full packs, and the last one, go to
/// `packs.finishing`, where at most `at_once` are unfinished while blobs still come.
async fn write_packs(
    storage: &Storage,
    key: &Arc<MasterKey>,
    target: usize,
    rx: &mut BlobReceiver,
    at_once: usize,
    packs: &mut Packs,
) -> Result<()> {
    let mut open: Option<OpenPack> = None;
    loop {
        // A pack open for MAX_PACK_OPEN is finished even if not full: an object store may
        // stamp a multipart object with the time its upload began, and prune spares packs by
        // that age (FORMAT.md, "Prune").
        let next = match &open {
            Some(pack) => {
                let deadline = pack.opened + MAX_PACK_OPEN;
                match tokio::time::timeout_at(deadline, rx.recv()).await {
                    Ok(next) => next,
                    Err(_) => {
                        let aged = open.take().expect("the open pack");
                        packs.finish(aged, key, at_once).await?;
                        continue;
                    }
                }
            }
            None => rx.recv().await,
        };
        let Some((blob, queued)) = next else { break };
        let pack = match &mut open {
            Some(pack) => pack,
            None => open.insert(OpenPack::start(storage).await?),
        };
        if let Err(e) = pack.add(blob).await {
            if let Some(pack) = open.take() {
                pack.writer.abort().await;
            }
            return Err(e);
        }
        drop(queued);
        if pack.len >= target as u64 {
            let full = open.take().expect("the pack just written to");
            packs.finish(full, key, at_once).await?;
        }
    }
    if let Some(pack) = open {
        packs
            .finishing
            .push_back(tokio::spawn(pack.finish(key.clone())));
    }
    Ok(())
}

/// The longest a pack stays open (see `write_packs`).
const MAX_PACK_OPEN: std::time::Duration = std::time::Duration::from_secs(120);

/// Pack headers are padded to a multiple of this many bytes.
const HEADER_PADDING: usize = 4096;

/// A pack being written: its blobs so far, where they are, and its length.
struct OpenPack {
    id: String,
    writer: ObjectWriter,
    blobs: Vec<BlobLocation>,
    len: u64,
    opened: tokio::time::Instant,
}

impl OpenPack {
    async fn start(storage: &Storage) -> Result<OpenPack> {
        let id = random_id();
        let writer = storage.writer_for_new(&crate::layout::pack(&id)).await?;
        Ok(OpenPack {
            id,
            writer,
            blobs: Vec::new(),
            len: 0,
            opened: tokio::time::Instant::now(),
        })
    }

    async fn add(&mut self, blob: SealedBlob) -> Result<()> {
        self.blobs.push(BlobLocation {
            id: blob.id,
            offset: self.len,
            length: blob.sealed.len() as u32,
            raw_length: blob.raw_length,
        });
        self.len += blob.sealed.len() as u64;
        self.writer.write(Bytes::from(blob.sealed)).await
    }

    /// Appends the sealed header (so an index can be rebuilt from packs alone) and its
    /// length, and makes the pack appear.
    async fn finish(mut self, key: Arc<MasterKey>) -> Result<(PackEntry, u64)> {
        let mut header = serde_json::to_vec(&self.blobs)
            .map_err(|e| Error::new(ErrorKind::Io, e.to_string()))?;
        // Padded with spaces (which JSON readers of every version skip) to a multiple of
        // 4 KiB: a header's length would otherwise count the pack's blobs for anyone who can
        // list the bucket.
        header.resize(header.len().next_multiple_of(HEADER_PADDING), b' ');
        let mut sealed_header = key.seal(layout::label::pack(&self.id).as_bytes(), &header);
        let header_len = sealed_header.len() as u32;
        sealed_header.extend_from_slice(&header_len.to_le_bytes());
        let len = self.len + sealed_header.len() as u64;
        let written = self.writer.write(Bytes::from(sealed_header)).await;
        match written {
            Ok(()) => self.writer.finish().await?,
            Err(e) => {
                self.writer.abort().await;
                return Err(e);
            }
        }
        Ok((
            PackEntry {
                id: self.id,
                blobs: self.blobs,
            },
            len,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A pack that stops receiving blobs is finished once it has been open for
    /// MAX_PACK_OPEN, without waiting for more blobs or for the queue to close: an object
    /// store may date it by its upload's start, and prune spares packs by that age.
    #[tokio::test(start_paused = true)]
    async fn a_pack_open_past_the_limit_is_finished_without_waiting() {
        let storage = Storage::memory();
        let (tx, rx) = blob_queue();
        let writer = tokio::spawn(pack_writer(
            super::super::Repo::new(storage.clone(), MasterKey::generate()),
            16 << 20,
            rx,
        ));
        let blob = |n: u8| SealedBlob {
            id: BlobId([n; 32]),
            sealed: vec![n; 100],
            raw_length: 59,
        };
        tx.send(blob(1)).await.unwrap();
        tokio::time::sleep(MAX_PACK_OPEN - std::time::Duration::from_secs(5)).await;
        assert!(
            storage.list("data").await.unwrap().is_empty(),
            "finished early"
        );
        tokio::time::sleep(std::time::Duration::from_secs(10)).await;
        assert_eq!(storage.list("data").await.unwrap().len(), 1);
        // The next blob goes into a new pack.
        tx.send(blob(2)).await.unwrap();
        drop(tx);
        let (packs, _) = writer.await.unwrap().unwrap();
        assert_eq!(packs.len(), 2);
        assert_eq!(storage.list("data").await.unwrap().len(), 2);
    }
}
