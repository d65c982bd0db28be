//! Verifying a vault: structure always; with `read_data`, every blob decrypted and re-hashed.
//! Problems are collected and named, never thrown.

use super::{Problem, Progress, Vault, VerifyReport};
use crate::crypto::{BlobId, MasterKey};
use crate::error::Result;
use crate::format::{BlobLocation, ManifestSummary, Snapshot};
use crate::layout;
use crate::repo::blob::open_blob;
use futures_util::StreamExt as _;
use std::collections::{BTreeMap, HashSet};
use std::ops::Range;

impl Vault {
    /// Checks the vault: every index and snapshot decrypts, every referenced blob is indexed,
    /// every indexed pack exists and is long enough; with `read_data`, every blob of every
    /// pack is decrypted and re-hashed. Problems are collected, not thrown.
    ///
    /// # Errors
    /// Only when listing the vault fails.
    pub async fn verify(&self, read_data: bool, progress: &dyn Progress) -> Result<VerifyReport> {
        let mut report = VerifyReport {
            foreign_objects: self.foreign_objects().await?,
            ..VerifyReport::default()
        };
        let url = self.storage().url().to_string();
        let pack_sizes = self.pack_sizes().await?;
        let mut indexed: HashSet<BlobId> = HashSet::new();
        let mut packs: BTreeMap<String, Vec<BlobLocation>> = BTreeMap::new();
        let (index, unreadable) = self.repo.index_checked().await?;
        report.index_files = index.file_count() + unreadable.len();
        for (key, e) in unreadable {
            report
                .problems
                .push(Problem::about(format!("{url}/{key}"), &e));
        }
        for pack in index.into_packs() {
            indexed.extend(pack.blobs.iter().map(|b| b.id));
            packs.entry(pack.id).or_default().extend(pack.blobs);
        }
        for (pack, blobs) in &packs {
            let object = format!("{url}/{}", crate::layout::pack(pack));
            let end = blobs
                .iter()
                .map(|b| b.offset + u64::from(b.length))
                .max()
                .unwrap_or(0);
            match pack_sizes.get(pack) {
                None => report.problems.push(Problem {
                    object,
                    message: "pack is missing".into(),
                }),
                Some(size) if *size < end => {
                    report.problems.push(Problem {
                        object,
                        message: format!("pack is truncated: {size} bytes, blobs reach {end}"),
                    });
                }
                Some(_) => {}
            }
        }
        report.packs = packs.len();
        let summarised: HashSet<String> = self.summary_ids().await?.into_iter().collect();
        for listed in self.repo.list_own(layout::Kind::Snapshot).await? {
            report.snapshots += 1;
            let id = listed.name.as_str();
            match self.load_snapshot(id).await {
                Ok(s) => {
                    if summarised.contains(id) {
                        if let Some(problem) = self.check_summary(id, &s).await {
                            report.problems.push(problem);
                        }
                    }
                    for src in &s.sources {
                        for e in &src.entries {
                            for c in &e.chunks {
                                if !indexed.contains(c) {
                                    report.problems.push(Problem {
                                        object: format!("{url}/{}", listed.key),
                                        message: format!(
                                            "{}/{}: blob {} is in no index",
                                            src.name,
                                            e.path,
                                            &c.to_hex()[..16]
                                        ),
                                    });
                                }
                            }
                        }
                    }
                }
                Err(e) => report
                    .problems
                    .push(Problem::about(format!("{url}/{}", listed.key), &e)),
            }
        }
        if read_data {
            let total: u64 = pack_sizes.values().sum();
            progress.phase("verify data", total);
            // Several packs at once, each read a few MiB of whole blobs at a time: reads overlap,
            // both cores decrypt and hash (on blocking threads), and memory stays small.
            // Owned inputs: the futures must be Send for any caller (the provider's too).
            let to_check: Vec<(String, Vec<BlobLocation>, u64)> = packs
                .into_iter()
                .filter_map(|(pack, blobs)| Some((pack.clone(), blobs, *pack_sizes.get(&pack)?)))
                .collect();
            let mut checked = futures_util::stream::iter(to_check)
                .map(|(pack, blobs, size)| {
                    let checker = PackChecker {
                        repo: self.repo.clone(),
                        object: format!("{url}/{}", crate::layout::pack(&pack)),
                        pack,
                    };
                    checker.check(blobs, size)
                })
                .buffer_unordered(PACKS_IN_FLIGHT);
            while let Some(done) = checked.next().await {
                report.bytes_read += done.bytes_read;
                report.blobs_checked += done.blobs_checked;
                progress.advance(done.bytes_read);
                report.problems.extend(done.problems);
            }
        }
        Ok(report)
    }
}

/// Packs read and checked at once by `verify --read-data`.
const PACKS_IN_FLIGHT: usize = 3;

/// Bytes of a pack read at once: whole blobs up to this much (a larger blob alone).
const READ_AT_ONCE: u64 = 4 * 1024 * 1024;

/// What checking one pack found.
#[derive(Default)]
struct PackCheck {
    bytes_read: u64,
    blobs_checked: usize,
    problems: Vec<Problem>,
}

/// Checks one pack's data: its header, and every indexed blob decrypted and re-hashed.
struct PackChecker {
    repo: crate::repo::Repo,
    pack: String,
    /// The pack's URL, as problems name it.
    object: String,
}

impl PackChecker {
    async fn check(self, mut blobs: Vec<BlobLocation>, size: u64) -> PackCheck {
        let mut done = PackCheck::default();
        let problem = |message: String| Problem {
            object: self.object.clone(),
            message,
        };
        match self.header(size).await {
            Ok(read) => done.bytes_read += read,
            Err(message) => done.problems.push(problem(message)),
        }
        blobs.sort_by_key(|b| b.offset);
        let (inside, past_end): (Vec<BlobLocation>, Vec<BlobLocation>) = blobs
            .into_iter()
            .partition(|b| b.offset + u64::from(b.length) <= size);
        for blob in &past_end {
            done.blobs_checked += 1;
            let id = &blob.id.to_hex()[..16];
            done.problems
                .push(problem(format!("blob {id} lies past the end")));
        }
        for (range, run) in runs_of_blobs(inside) {
            let start = range.start;
            done.blobs_checked += run.len();
            let data = match self
                .repo
                .storage()
                .get_range(&crate::layout::pack(&self.pack), range)
                .await
            {
                Ok(data) => data,
                Err(e) => {
                    done.problems.push(problem(e.to_string()));
                    continue;
                }
            };
            done.bytes_read += data.len() as u64;
            let (key, object) = (self.repo.key().clone(), self.object.clone());
            let opened = tokio::task::spawn_blocking(move || {
                run.iter()
                    .filter_map(|blob| {
                        let at = (blob.offset - start) as usize;
                        let sealed = &data[at..at + blob.length as usize];
                        open_blob(&key, &object, blob, sealed).err().map(|e| {
                            let why = super::without_object(&e.message, &object);
                            format!("blob {}: {why}", &blob.id.to_hex()[..16])
                        })
                    })
                    .collect::<Vec<String>>()
            })
            .await
            .unwrap_or_else(|e| vec![format!("check task failed: {e}")]);
            done.problems.extend(opened.into_iter().map(problem));
        }
        done
    }

    /// Reads and opens the sealed header at the end of the pack (how an index is rebuilt from
    /// packs alone); returns the bytes read.
    async fn header(&self, size: u64) -> std::result::Result<u64, String> {
        let key = crate::layout::pack(&self.pack);
        let trailer = match size.checked_sub(4) {
            Some(at) => self.repo.storage().get_range(&key, at..size).await,
            None => return Err("pack header is missing".into()),
        }
        .map_err(|e| e.to_string())?;
        let span = pack_header_span(size, &trailer)?;
        let sealed = self
            .repo
            .storage()
            .get_range(&key, span.clone())
            .await
            .map_err(|e| e.to_string())?;
        check_pack_header(self.repo.key(), &self.pack, &sealed)?;
        Ok(4 + span.end - span.start)
    }
}

/// Splits blobs (sorted by offset) into runs read with one request each: the byte range to
/// read, spanning at most [`READ_AT_ONCE`] (or one larger blob), and its blobs.
fn runs_of_blobs(blobs: Vec<BlobLocation>) -> Vec<(Range<u64>, Vec<BlobLocation>)> {
    let mut runs: Vec<(Range<u64>, Vec<BlobLocation>)> = Vec::new();
    for blob in blobs {
        let end = blob.offset + u64::from(blob.length);
        match runs.last_mut() {
            Some((range, run)) if end.max(range.end) - range.start <= READ_AT_ONCE => {
                range.end = range.end.max(end);
                run.push(blob);
            }
            _ => runs.push((blob.offset..end, vec![blob])),
        }
    }
    runs
}

/// Where the sealed header of a pack of `size` bytes is, from the pack's last four bytes
/// (`trailer`, the header's length, little-endian).
pub(crate) fn pack_header_span(
    size: u64,
    trailer: &[u8],
) -> std::result::Result<Range<u64>, String> {
    let length = u64::from(u32::from_le_bytes(
        trailer.try_into().map_err(|_| "pack header is missing")?,
    ));
    let end = size.checked_sub(4).ok_or("pack header is missing")?;
    let start = end.checked_sub(length).ok_or("pack header is truncated")?;
    Ok(start..end)
}

/// The sealed header at the end of a pack (how an index is rebuilt from packs alone) must
/// open and list blobs; a pack cut short loses it even when every indexed blob survives.
pub(crate) fn check_pack_header(
    key: &MasterKey,
    pack: &str,
    sealed: &[u8],
) -> std::result::Result<(), String> {
    let header = key
        .open(pack, layout::label::pack(pack).as_bytes(), sealed)
        .map_err(|e| format!("pack header: {}", e.message))?;
    serde_json::from_slice::<Vec<BlobLocation>>(&header)
        .map(|_| ())
        .map_err(|e| format!("pack header is not valid: {e}"))
}

impl Vault {
    /// A summary that does not open, or says something its manifest does not, is a problem:
    /// listing would show it (a missing summary is not: listing reads the manifest then).
    async fn check_summary(&self, id: &str, manifest: &Snapshot) -> Option<Problem> {
        let key = crate::layout::summary(id);
        let message = match self
            .repo
            .load_sealed_json::<ManifestSummary>(&key, &layout::label::summary(id))
            .await
        {
            Ok(summary) if summary.says_what(manifest) => return None,
            Ok(_) => "does not match its snapshot's manifest, and listings show the summary: \
                      delete this object and the manifest is listed instead"
                .to_string(),
            Err(e) => {
                return Some(Problem::about(
                    format!("{}/{key}", self.storage().url()),
                    &e,
                ))
            }
        };
        Some(Problem {
            object: format!("{}/{key}", self.storage().url()),
            message,
        })
    }
}
