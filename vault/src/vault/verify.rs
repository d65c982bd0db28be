//! Verifying a vault: structure always; with `read_data`, every blob decrypted and re-hashed.
//! Problems are collected and named, never thrown.

use super::{open_blob, pack_key, Problem, Progress, Vault, VerifyReport};
use crate::crypto::BlobId;
use crate::error::Result;
use crate::format::{BlobLocation, IndexFile};
use std::collections::{BTreeMap, HashMap};

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
        for listed in self.storage.list("snapshots").await? {
            report.snapshots += 1;
            let id = listed.key.rsplit('/').next().unwrap_or_default();
            match self.load_snapshot(id).await {
                Ok(s) => {
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
            for (pack, blobs) in &packs {
                let key = pack_key(pack);
                let object = format!("{url}/{key}");
                if !pack_sizes.contains_key(pack) {
                    continue;
                }
                let data = match self.storage.get(&key).await {
                    Ok(d) => d,
                    Err(e) => {
                        report.problems.push(Problem {
                            object,
                            message: e.to_string(),
                        });
                        continue;
                    }
                };
                report.bytes_read += data.len() as u64;
                progress.advance(data.len() as u64);
                if let Err(message) = self.check_pack_header(pack, &data) {
                    report.problems.push(Problem {
                        object: object.clone(),
                        message,
                    });
                }
                for blob in blobs {
                    report.blobs_checked += 1;
                    let range = blob.offset as usize
                        ..(blob.offset as usize).saturating_add(blob.length as usize);
                    let Some(sealed) = data.get(range) else {
                        report.problems.push(Problem {
                            object: object.clone(),
                            message: format!("blob {} lies past the end", &blob.id.to_hex()[..16]),
                        });
                        continue;
                    };
                    if let Err(e) = open_blob(&self.key, &object, blob, sealed) {
                        report.problems.push(Problem {
                            object: object.clone(),
                            message: format!("blob {}: {}", &blob.id.to_hex()[..16], e.message),
                        });
                    }
                }
            }
        }
        Ok(report)
    }
}

impl Vault {
    /// The sealed header at the end of a pack (how an index is rebuilt from packs alone) must
    /// open and list blobs; a pack cut short loses it even when every indexed blob survives.
    fn check_pack_header(&self, pack: &str, data: &[u8]) -> std::result::Result<(), String> {
        let (rest, len_bytes) = data
            .split_at_checked(data.len().wrapping_sub(4))
            .ok_or("pack header is missing")?;
        let len = u32::from_le_bytes(len_bytes.try_into().map_err(|_| "pack header is missing")?)
            as usize;
        let sealed = rest
            .get(rest.len().wrapping_sub(len)..)
            .filter(|_| len <= rest.len())
            .ok_or("pack header is truncated")?;
        let header = self
            .key
            .open(pack, format!("pack:{pack}").as_bytes(), sealed)
            .map_err(|e| format!("pack header: {}", e.message))?;
        serde_json::from_slice::<Vec<BlobLocation>>(&header)
            .map(|_| ())
            .map_err(|e| format!("pack header is not valid: {e}"))
    }
}
