//! Taking a snapshot: scan, reuse unchanged files, chunk/hash/seal the rest on blocking
//! threads, pack, then write the index and, last, the manifest.

use super::{hostname, now_rfc3339, pack_key, zstd_frame, Progress, SnapshotSummary, Vault};
use crate::crypto::{random_id, BlobId, MasterKey};
use crate::error::{Error, ErrorKind, Result};
use crate::format::{
    BlobLocation, ChunkerParams, Entry, EntryKind, IndexFile, PackEntry, Snapshot, SnapshotSource,
};
use crate::sources::{self, Item, SourceSpec};
use crate::storage::Storage;
use bytes::Bytes;
use futures_util::StreamExt as _;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc;

impl Vault {
    /// Takes a snapshot of `specs`. Packs are written first, then the index, then the
    /// manifest: an interrupted snapshot leaves no visible half snapshot.
    ///
    /// # Errors
    /// Source errors naming the path; storage errors naming the object.
    pub async fn snapshot(
        &self,
        specs: &[SourceSpec],
        labels: &BTreeMap<String, String>,
        progress: &dyn Progress,
    ) -> Result<SnapshotSummary> {
        // Held until the manifest is written, so no prune deletes data this snapshot reuses.
        let lock = crate::locks::acquire(&self.storage, false).await?;
        let summary = self.snapshot_locked(specs, labels, progress).await;
        lock.release().await?;
        summary
    }

    async fn snapshot_locked(
        &self,
        specs: &[SourceSpec],
        labels: &BTreeMap<String, String>,
        progress: &dyn Progress,
    ) -> Result<SnapshotSummary> {
        let scan_specs = specs.to_vec();
        let scanned = tokio::task::spawn_blocking(move || sources::scan(&scan_specs))
            .await
            .map_err(|e| Error::new(ErrorKind::Io, format!("scan task failed: {e}")))??;
        // Unchanged files are recognised from the newest snapshot of the same series.
        let series = labels.get(super::SERIES_LABEL).map_or("", String::as_str);
        let parent_id = self.latest_in_series(series).await?;
        let parent = match &parent_id {
            Some(id) => Some(self.load_snapshot(id).await?),
            None => None,
        };
        let index = self.load_index().await?;
        let claimed: Arc<Mutex<HashSet<BlobId>>> =
            Arc::new(Mutex::new(index.keys().copied().collect()));
        let previous: HashMap<(String, String), Entry> = parent
            .iter()
            .flat_map(|p| {
                p.sources.iter().flat_map(|s| {
                    s.entries
                        .iter()
                        .map(move |e| ((s.name.clone(), e.path.clone()), e.clone()))
                })
            })
            .collect();

        let total: u64 = scanned
            .iter()
            .flat_map(|s| &s.items)
            .map(|i| i.entry.size)
            .sum();
        progress.phase("snapshot", total);

        let (tx, rx) = mpsc::channel::<SealedBlob>(16);
        let packer = tokio::spawn(pack_writer(
            self.storage.clone(),
            self.key.clone(),
            self.config.pack_size as usize,
            rx,
        ));

        let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
        let mut files_read = 0usize;
        let mut bytes_new = 0u64;
        let mut snapshot_sources = Vec::new();
        for source in scanned {
            let mut jobs = Vec::new();
            for item in source.items {
                match previous.get(&(source.name.clone(), item.entry.path.clone())) {
                    Some(old) if sources::unchanged(old, &item.entry) => {
                        progress.advance(item.entry.size);
                        jobs.push(Job::Reuse(old.clone()));
                    }
                    _ if item.entry.kind == EntryKind::File => jobs.push(Job::Read(item)),
                    _ => jobs.push(Job::Reuse(item.entry)),
                }
            }
            let results: Vec<Result<(Entry, bool, u64)>> = futures_util::stream::iter(jobs)
                .map(|job| {
                    let tx = tx.clone();
                    let key = self.key.clone();
                    let claimed = claimed.clone();
                    let chunker = self.config.chunker;
                    async move {
                        match job {
                            Job::Reuse(entry) => Ok((entry, false, 0)),
                            Job::Read(item) => tokio::task::spawn_blocking(move || {
                                read_file(item, &key, chunker, &claimed, &tx)
                            })
                            .await
                            .map_err(|e| {
                                Error::new(ErrorKind::Io, format!("read task failed: {e}"))
                            })?
                            .map(|(e, new)| (e, true, new)),
                        }
                    }
                })
                .buffered(workers)
                .collect()
                .await;
            let mut entries = Vec::with_capacity(results.len());
            for r in results {
                let (entry, read, new) = r?;
                if read {
                    files_read += 1;
                    progress.advance(entry.size);
                }
                bytes_new += new;
                entries.push(entry);
            }
            snapshot_sources.push(SnapshotSource {
                name: source.name,
                origin: source.origin.display().to_string(),
                single_file: source.single_file,
                entries,
            });
        }
        drop(tx);
        let (packs, mut bytes_stored) = packer
            .await
            .map_err(|e| Error::new(ErrorKind::Io, format!("pack writer failed: {e}")))??;
        if !packs.is_empty() {
            let index_id = random_id();
            bytes_stored += self
                .store_sealed_json(
                    &format!("index/{index_id}"),
                    &format!("index:{index_id}"),
                    &IndexFile { packs },
                )
                .await?;
        }
        let source_digest = sources::digest_entries(
            snapshot_sources
                .iter()
                .map(|s| (s.name.as_str(), s.entries.as_slice())),
        );
        let snapshot = Snapshot {
            time: now_rfc3339(),
            hostname: hostname(),
            sources: snapshot_sources,
            labels: labels.clone(),
            parent: parent_id,
            source_digest: source_digest.clone(),
        };
        let id = random_id();
        bytes_stored += self
            .store_sealed_json(
                &format!("snapshots/{id}"),
                &format!("snapshot:{id}"),
                &snapshot,
            )
            .await?;
        Ok(SnapshotSummary {
            id,
            time: snapshot.time.clone(),
            files: snapshot.file_count(),
            files_read,
            bytes: snapshot.total_bytes(),
            bytes_new,
            bytes_stored,
            source_digest,
        })
    }
}

enum Job {
    Reuse(Entry),
    Read(Item),
}

pub(super) struct SealedBlob {
    pub(super) id: BlobId,
    pub(super) sealed: Vec<u8>,
    pub(super) raw_length: u32,
}

/// Reads, chunks, hashes and seals one file (a blocking task). Returns its entry and the
/// bytes of blobs it added.
fn read_file(
    item: Item,
    key: &MasterKey,
    chunker: ChunkerParams,
    claimed: &Mutex<HashSet<BlobId>>,
    tx: &mpsc::Sender<SealedBlob>,
) -> Result<(Entry, u64)> {
    let mut entry = item.entry;
    let mut file = std::fs::File::open(&item.abs).map_err(|e| Error::io(&item.abs, "read", e))?;
    let mut hasher = blake3::Hasher::new();
    let mut size = 0u64;
    let mut new_bytes = 0u64;
    let mut add_chunk = |data: &[u8]| -> Result<()> {
        hasher.update(data);
        size += data.len() as u64;
        let id = key.blob_id(data);
        entry.chunks.push(id);
        let fresh = claimed
            .lock()
            .map(|mut set| set.insert(id))
            .unwrap_or(false);
        if fresh {
            new_bytes += data.len() as u64;
            let sealed = key.seal(
                format!("blob:{}", id.to_hex()).as_bytes(),
                &zstd_frame(data),
            );
            let blob = SealedBlob {
                id,
                sealed,
                raw_length: data.len() as u32,
            };
            tx.blocking_send(blob).map_err(|_| {
                Error::new(
                    ErrorKind::Storage,
                    "the pack writer stopped; see the error before this one",
                )
            })?;
        }
        Ok(())
    };
    let read_error = |e: std::io::Error| Error::io(&item.abs, "read", e);
    if entry.size <= u64::from(chunker.max_size) {
        // Small files (most pipeline configuration) are read whole and cut in memory: the
        // streaming chunker zeroes a max-size buffer per file, which costs more than the file.
        let mut data = Vec::with_capacity(entry.size as usize);
        std::io::Read::read_to_end(&mut file, &mut data).map_err(read_error)?;
        let cuts = fastcdc::v2020::FastCDC::new(
            &data,
            chunker.min_size,
            chunker.avg_size,
            chunker.max_size,
        );
        for cut in cuts {
            add_chunk(&data[cut.offset..cut.offset + cut.length])?;
        }
    } else {
        let reader = std::io::BufReader::with_capacity(256 * 1024, file);
        let cdc = fastcdc::v2020::StreamCDC::new(
            reader,
            chunker.min_size,
            chunker.avg_size,
            chunker.max_size,
        );
        for chunk in cdc {
            let chunk = chunk.map_err(|e| read_error(std::io::Error::other(e.to_string())))?;
            add_chunk(&chunk.data)?;
        }
    }
    // A file that changed while being read records what was read.
    entry.size = size;
    entry.digest = Some(hasher.finalize().to_hex().to_string());
    Ok((entry, new_bytes))
}

/// Collects sealed blobs into packs of about `target` bytes and uploads each; returns the packs
/// written and the bytes stored.
pub(super) async fn pack_writer(
    storage: Storage,
    key: Arc<MasterKey>,
    target: usize,
    mut rx: mpsc::Receiver<SealedBlob>,
) -> Result<(Vec<PackEntry>, u64)> {
    let mut packs = Vec::new();
    let mut stored = 0u64;
    let mut buf: Vec<u8> = Vec::new();
    let mut blobs: Vec<BlobLocation> = Vec::new();
    while let Some(blob) = rx.recv().await {
        blobs.push(BlobLocation {
            id: blob.id,
            offset: buf.len() as u64,
            length: blob.sealed.len() as u32,
            raw_length: blob.raw_length,
        });
        buf.extend_from_slice(&blob.sealed);
        if buf.len() >= target {
            stored += flush_pack(&storage, &key, &mut buf, &mut blobs, &mut packs).await?;
        }
    }
    if !blobs.is_empty() {
        stored += flush_pack(&storage, &key, &mut buf, &mut blobs, &mut packs).await?;
    }
    Ok((packs, stored))
}

/// Appends the sealed header (so an index can be rebuilt from packs alone) and uploads.
async fn flush_pack(
    storage: &Storage,
    key: &MasterKey,
    buf: &mut Vec<u8>,
    blobs: &mut Vec<BlobLocation>,
    packs: &mut Vec<PackEntry>,
) -> Result<u64> {
    let id = random_id();
    let header =
        serde_json::to_vec(&blobs).map_err(|e| Error::new(ErrorKind::Io, e.to_string()))?;
    let sealed_header = key.seal(format!("pack:{id}").as_bytes(), &header);
    buf.extend_from_slice(&sealed_header);
    buf.extend_from_slice(&(sealed_header.len() as u32).to_le_bytes());
    let bytes = Bytes::from(std::mem::take(buf));
    let len = bytes.len() as u64;
    storage.put_new(&pack_key(&id), bytes).await?;
    packs.push(PackEntry {
        id,
        blobs: std::mem::take(blobs),
    });
    Ok(len)
}
