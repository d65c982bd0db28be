//! Verifying a vault: structure always; with `read_data`, every blob decrypted and re-hashed.
//! Problems are collected and named, never thrown.

use super::{open_blob, pack_key, summary_key, Problem, Progress, Vault, VerifyReport};
use crate::crypto::{BlobId, MasterKey};
use crate::error::Result;
use crate::format::{BlobLocation, IndexFile, ManifestSummary, Snapshot};
use futures_util::StreamExt as _;
use std::collections::{BTreeMap, HashMap, HashSet};

impl Vault {
    /// Checks the vault: every index and snapshot decrypts, every referenced blob is indexed,
    /// every indexed pack exists and is long enough; with `read_data`, every blob of every
    /// pack is decrypted and re-hashed. Problems are collected, not thrown.
    ///
    /// # Errors
    /// Only when listing the vault fails.
    pub async fn verify(&self, read_data: bool, progress: &dyn Progress) -> Result<VerifyReport> {
        let mut report = VerifyReport::default();
        let url = self.storage.url().to_string();
        let pack_sizes = self.pack_sizes().await?;
        let mut index: HashMap<BlobId, (String, BlobLocation)> = HashMap::new();
        let mut packs: BTreeMap<String, Vec<BlobLocation>> = BTreeMap::new();
        for listed in self.storage.list("index").await? {
            report.index_files += 1;
            let id = listed.key.rsplit('/').next().unwrap_or_default();
            match self
                .load_sealed_json::<IndexFile>(&listed.key, &format!("index:{id}"))
                .await
            {
                Ok(file) => {
                    for pack in file.packs {
                        for blob in &pack.blobs {
                            index.insert(blob.id, (pack.id.clone(), *blob));
                        }
                        packs.entry(pack.id).or_default().extend(pack.blobs);
                    }
                }
                Err(e) => report.problems.push(Problem {
                    object: format!("{url}/{}", listed.key),
                    message: e.to_string(),
                }),
            }
        }
        for (pack, blobs) in &packs {
            let object = format!("{url}/{}", pack_key(pack));
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
        for listed in self.storage.list("snapshots").await? {
            report.snapshots += 1;
            let id = listed.key.rsplit('/').next().unwrap_or_default();
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
                                if !index.contains_key(c) {
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
                Err(e) => report.problems.push(Problem {
                    object: format!("{url}/{}", listed.key),
                    message: e.to_string(),
                }),
            }
        }
        if read_data {
            let total: u64 = pack_sizes.values().sum();
            progress.phase("verify data", total);
            // Several packs at once: reads overlap, and each pack's blobs are opened on a
            // blocking thread, so both cores decrypt and hash.
            // Owned inputs: the futures must be Send for any caller (the provider's too).
            let to_check: Vec<(String, Vec<BlobLocation>)> = packs
                .into_iter()
                .filter(|(pack, _)| pack_sizes.contains_key(pack))
                .collect();
            let mut checked = futures_util::stream::iter(to_check)
                .map(|(pack, blobs)| {
                    let storage = self.storage.clone();
                    let master = self.key.clone();
                    let object = format!("{url}/{}", pack_key(&pack));
                    async move {
                        let data = match storage.get(&pack_key(&pack)).await {
                            Ok(d) => d,
                            Err(e) => {
                                let problem = Problem {
                                    object,
                                    message: e.to_string(),
                                };
                                return PackCheck {
                                    problems: vec![problem],
                                    ..PackCheck::default()
                                };
                            }
                        };
                        let named = object.clone();
                        tokio::task::spawn_blocking(move || {
                            check_pack(&master, &pack, &named, &blobs, &data)
                        })
                        .await
                        .unwrap_or_else(|e| PackCheck {
                            problems: vec![Problem {
                                object,
                                message: format!("check task failed: {e}"),
                            }],
                            ..PackCheck::default()
                        })
                    }
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
const PACKS_IN_FLIGHT: usize = 2;

/// What checking one pack found.
#[derive(Default)]
struct PackCheck {
    bytes_read: u64,
    blobs_checked: usize,
    problems: Vec<Problem>,
}

/// Opens (decrypts and re-hashes) every indexed blob of one pack, and its header.
fn check_pack(
    key: &MasterKey,
    pack: &str,
    object: &str,
    blobs: &[BlobLocation],
    data: &[u8],
) -> PackCheck {
    let mut done = PackCheck {
        bytes_read: data.len() as u64,
        ..PackCheck::default()
    };
    if let Err(message) = check_pack_header(key, pack, data) {
        done.problems.push(Problem {
            object: object.to_string(),
            message,
        });
    }
    for blob in blobs {
        done.blobs_checked += 1;
        let range =
            blob.offset as usize..(blob.offset as usize).saturating_add(blob.length as usize);
        let Some(sealed) = data.get(range) else {
            done.problems.push(Problem {
                object: object.to_string(),
                message: format!("blob {} lies past the end", &blob.id.to_hex()[..16]),
            });
            continue;
        };
        if let Err(e) = open_blob(key, object, blob, sealed) {
            done.problems.push(Problem {
                object: object.to_string(),
                message: format!("blob {}: {}", &blob.id.to_hex()[..16], e.message),
            });
        }
    }
    done
}

/// The sealed header at the end of a pack (how an index is rebuilt from packs alone) must
/// open and list blobs; a pack cut short loses it even when every indexed blob survives.
fn check_pack_header(key: &MasterKey, pack: &str, data: &[u8]) -> std::result::Result<(), String> {
    let (rest, len_bytes) = data
        .split_at_checked(data.len().wrapping_sub(4))
        .ok_or("pack header is missing")?;
    let len =
        u32::from_le_bytes(len_bytes.try_into().map_err(|_| "pack header is missing")?) as usize;
    let sealed = rest
        .get(rest.len().wrapping_sub(len)..)
        .filter(|_| len <= rest.len())
        .ok_or("pack header is truncated")?;
    let header = key
        .open(pack, format!("pack:{pack}").as_bytes(), sealed)
        .map_err(|e| format!("pack header: {}", e.message))?;
    serde_json::from_slice::<Vec<BlobLocation>>(&header)
        .map(|_| ())
        .map_err(|e| format!("pack header is not valid: {e}"))
}

impl Vault {
    /// A summary that does not open, or says something its manifest does not, is a problem:
    /// listing would show it (a missing summary is not: listing reads the manifest then).
    async fn check_summary(&self, id: &str, manifest: &Snapshot) -> Option<Problem> {
        let key = summary_key(id);
        let message = match self
            .load_sealed_json::<ManifestSummary>(&key, &format!("summary:{id}"))
            .await
        {
            Ok(summary) if summary == manifest.summary() => return None,
            Ok(_) => "does not match its snapshot's manifest, and listings show the summary: \
                      delete this object and the manifest is listed instead"
                .to_string(),
            Err(e) => e.to_string(),
        };
        Some(Problem {
            object: format!("{}/{key}", self.storage.url()),
            message,
        })
    }
}
