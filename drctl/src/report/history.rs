//! What the report plots, read from the vaults the state names: each vault's snapshots
//! (logical and stored bytes), each region pair's replications (lag when each ran) and each
//! drill's runs (restore time, data age, verdict), oldest first. What a vault cannot give is
//! said in `missing`, never guessed.

use crate::status::Vaults;
use crate::tfstate::Resource;

/// The most replications per direction and drill runs per drill read: the newest, as each
/// run adds a record and nothing deletes them; a plot of more says no more.
const HISTORY_LIMIT: usize = 5000;

pub struct History {
    pub vaults: Vec<VaultHistory>,
    pub pairs: Vec<PairHistory>,
    pub drills: Vec<DrillHistory>,
}

pub struct VaultHistory {
    pub address: String,
    pub name: String,
    pub region: String,
    pub snapshots: Vec<SnapshotPoint>,
    /// Why the vault's history is not there (it did not open or list).
    pub missing: Option<String>,
}

pub struct SnapshotPoint {
    pub at: f64,
    pub bytes: u64,
    /// What the snapshot added to storage (unknown for snapshots of builds before issue 18).
    pub stored_bytes: Option<u64>,
}

pub struct PairHistory {
    pub address: String,
    pub name: String,
    pub rpo_seconds: Option<u64>,
    /// Replications either way between the pair's vaults, oldest first.
    pub runs: Vec<ReplicationPoint>,
    pub missing: Vec<String>,
}

pub struct ReplicationPoint {
    pub at: f64,
    pub lag_seconds: u64,
    /// Which way it ran: `primary → secondary` or back.
    pub direction: &'static str,
}

pub struct DrillHistory {
    pub address: String,
    pub name: String,
    pub rto_seconds: Option<u64>,
    pub rpo_seconds: Option<u64>,
    pub runs: Vec<DrillRun>,
    pub missing: Option<String>,
}

pub struct DrillRun {
    pub finished_at: f64,
    pub finished: String,
    pub restore_seconds: f64,
    pub data_age_seconds: u64,
    pub passed: bool,
    pub failures: Vec<String>,
    pub snapshot_id: String,
}

pub async fn gather(resources: &[Resource], vaults: &mut Vaults) -> History {
    let of_kind = |kind: &'static str| resources.iter().filter(move |r| r.kind == kind);
    let options_of = |id: &str| {
        of_kind("dr_backup_vault")
            .find(|r| r.str("id") == Some(id))
            .map(|r| r.values["storage_options"].clone())
    };
    let mut history = History {
        vaults: Vec::new(),
        pairs: Vec::new(),
        drills: Vec::new(),
    };
    for r in of_kind("dr_backup_vault") {
        history.vaults.push(vault(r, vaults).await);
    }
    for r in of_kind("dr_region_pair") {
        let ids = ["primary_vault_id", "secondary_vault_id"].map(|a| r.str(a).unwrap_or_default());
        let mut pair = PairHistory {
            address: r.address.clone(),
            name: r.str("name").unwrap_or_default().to_string(),
            rpo_seconds: r.str("rpo").and_then(seconds),
            runs: Vec::new(),
            missing: Vec::new(),
        };
        let primary = vaults.get(ids[0], options_of(ids[0]).as_ref()).await;
        let secondary = vaults.get(ids[1], options_of(ids[1]).as_ref()).await;
        match (primary, secondary) {
            (Ok(p), Ok(s)) => {
                for (from, to, direction) in [
                    (&p, &s, "primary → secondary"),
                    (&s, &p, "secondary → primary"),
                ] {
                    match to.replications_from(&from.config().id, HISTORY_LIMIT).await {
                        Ok(runs) => pair.runs.extend(runs.into_iter().filter_map(|run| {
                            Some(ReplicationPoint {
                                at: unix(&run.at)?,
                                lag_seconds: run.lag_seconds,
                                direction,
                            })
                        })),
                        Err(e) => pair.missing.push(format!("{direction}: {e}")),
                    }
                }
            }
            (Err(e), _) | (_, Err(e)) => pair.missing.push(e),
        }
        pair.runs.sort_by(|a, b| a.at.total_cmp(&b.at));
        history.pairs.push(pair);
    }
    for r in of_kind("dr_drill") {
        history.drills.push(drill(r, vaults, options_of).await);
    }
    history
}

async fn vault(r: &Resource, vaults: &mut Vaults) -> VaultHistory {
    let mut row = VaultHistory {
        address: r.address.clone(),
        name: r.str("name").unwrap_or_default().to_string(),
        region: r.str("region").unwrap_or_default().to_string(),
        snapshots: Vec::new(),
        missing: None,
    };
    let url = r.str("id").unwrap_or_default();
    let listed = match vaults.get(url, Some(&r.values["storage_options"])).await {
        Ok(v) => v.snapshots().await.map_err(|e| e.to_string()),
        Err(e) => Err(e),
    };
    match listed {
        Ok(snapshots) => {
            row.snapshots = snapshots
                .iter()
                .map(|s| SnapshotPoint {
                    at: s.time.unix_timestamp() as f64,
                    bytes: s.bytes,
                    stored_bytes: s.stored_bytes,
                })
                .collect();
            row.snapshots.sort_by(|a, b| a.at.total_cmp(&b.at));
        }
        Err(e) => row.missing = Some(e),
    }
    row
}

async fn drill(
    r: &Resource,
    vaults: &mut Vaults,
    options_of: impl Fn(&str) -> Option<serde_json::Value>,
) -> DrillHistory {
    let name = r.str("name").unwrap_or_default().to_string();
    let url = r.str("vault_id").unwrap_or_default();
    let mut row = DrillHistory {
        address: r.address.clone(),
        name: name.clone(),
        rto_seconds: None,
        rpo_seconds: None,
        runs: Vec::new(),
        missing: None,
    };
    let reports = match vaults.get(url, options_of(url).as_ref()).await {
        Ok(v) => v
            .newest_records(&format!("drills/{name}"), HISTORY_LIMIT)
            .await
            .map_err(|e| e.to_string()),
        Err(e) => Err(e),
    };
    let reports = match reports {
        Ok(reports) => reports,
        Err(e) => {
            row.missing = Some(e);
            return row;
        }
    };
    for (_, report) in &reports {
        let Some(finished) = report["finished_at"].as_str() else {
            continue;
        };
        let Some(at) = unix(finished) else { continue };
        let failures: Vec<String> = report["failures"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|f| f.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        // The targets the newest run was held to are the drill's targets now.
        row.rto_seconds = report["rto_target_seconds"].as_u64().or(row.rto_seconds);
        row.rpo_seconds = report["rpo_target_seconds"].as_u64().or(row.rpo_seconds);
        row.runs.push(DrillRun {
            finished_at: at,
            finished: finished.to_string(),
            restore_seconds: report["restore_seconds"].as_f64().unwrap_or_default(),
            data_age_seconds: report["data_age_seconds"].as_u64().unwrap_or_default(),
            passed: failures.is_empty(),
            failures,
            snapshot_id: report["snapshot_id"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
        });
    }
    row.runs
        .sort_by(|a, b| a.finished_at.total_cmp(&b.finished_at));
    row
}

fn unix(rfc3339: &str) -> Option<f64> {
    dr_vault::clock::parse(rfc3339).map(|t| t.unix_timestamp() as f64)
}

fn seconds(text: &str) -> Option<u64> {
    dr_vault::parse_duration(text, "duration")
        .ok()
        .map(|d| d.as_secs())
}
