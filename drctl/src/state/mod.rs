//! `drctl state …`: Terraform state backed up into a vault, with lineage and serial safety.
//! A state version is a snapshot with one source, `state`, holding `terraform.tfstate`, and
//! labels that say what it is (`kind=terraform-state`, lineage, serial, Terraform version,
//! resource count, content digest), so history needs no decryption of the state itself. A
//! second source, `config`, holds the root module's configuration files when they were given.

mod history;
mod pull;
pub mod push;

use crate::cli::{StateArgs, StateCommand};
use crate::output::{CliError, Outcome};
use crate::vault::Context;
use dr_vault::{SnapshotInfo, Vault};

pub const KIND_LABEL: &str = dr_vault::SERIES_LABEL;
pub const KIND: &str = "terraform-state";
pub const SOURCE: &str = "state";
pub const FILE: &str = "terraform.tfstate";
/// The root module's configuration files, kept with the state when pushed with --dir.
pub const CONFIG_SOURCE: &str = "config";

pub async fn run(args: StateArgs) -> Outcome {
    let vault = match &args.command {
        StateCommand::Push(a) => a.vault.clone(),
        StateCommand::Pull(a) => a.vault.clone(),
        StateCommand::History(a) => a.vault.clone(),
    };
    let ctx = Context::new(vault, &args.access, args.output.json);
    match args.command {
        StateCommand::Push(a) => push::run(&ctx, a).await,
        StateCommand::Pull(a) => pull::run(&ctx, a).await,
        StateCommand::History(_) => history::run(&ctx).await,
    }
}

/// What drctl needs to know of a state file (Terraform's format, version 4).
#[derive(Debug, Clone, serde::Serialize)]
pub struct StateMeta {
    pub lineage: String,
    pub serial: u64,
    pub terraform_version: String,
    pub resources: usize,
}

impl StateMeta {
    /// Reads the fields of a state file; the error says what was expected.
    pub fn parse(bytes: &[u8], what: &str) -> Result<StateMeta, String> {
        let v: serde_json::Value = serde_json::from_slice(bytes)
            .map_err(|e| format!("{what} is not JSON ({e}); expected a Terraform state file"))?;
        let field = |name: &str| {
            v.get(name)
                .ok_or_else(|| format!("{what} has no {name:?}: it is not a Terraform state file"))
        };
        let version = field("version")?.as_u64().unwrap_or(0);
        if !(3..=4).contains(&version) {
            return Err(format!("{what} is state format version {version}; drctl reads versions 3 and 4 (Terraform 0.11 and later)"));
        }
        Ok(StateMeta {
            lineage: field("lineage")?.as_str().unwrap_or_default().to_string(),
            serial: field("serial")?
                .as_u64()
                .ok_or_else(|| format!("{what}: \"serial\" is not a number"))?,
            terraform_version: v["terraform_version"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
            resources: v["resources"].as_array().map_or(0, Vec::len),
        })
    }

    fn from_labels(s: &SnapshotInfo) -> Option<StateMeta> {
        Some(StateMeta {
            lineage: s.labels.get("lineage")?.clone(),
            serial: s.labels.get("serial")?.parse().ok()?,
            terraform_version: s
                .labels
                .get("terraform_version")
                .cloned()
                .unwrap_or_default(),
            resources: s
                .labels
                .get("resources")
                .and_then(|r| r.parse().ok())
                .unwrap_or(0),
        })
    }
}

/// The label a version pushed with `--force` carries: it starts the current lineage.
pub const FORCED_LABEL: &str = "forced";
/// The label that orders pushes without clocks: one more than the highest in the vault when
/// the version was pushed.
pub const GENERATION_LABEL: &str = "generation";

fn generation(s: &SnapshotInfo) -> Option<u64> {
    s.labels.get(GENERATION_LABEL)?.parse().ok()
}

/// The generation the next push records.
pub fn next_generation(history: &[(SnapshotInfo, StateMeta)]) -> u64 {
    history
        .iter()
        .filter_map(|(s, _)| generation(s))
        .max()
        .unwrap_or(0)
        + 1
}

/// The versions in the order they were pushed: by the generation each recorded, which no
/// clock sets. Versions pushed by older drctl builds carry none; they come first, in the
/// order of their times, which is all they have.
pub fn push_order(history: &[(SnapshotInfo, StateMeta)]) -> Vec<&(SnapshotInfo, StateMeta)> {
    let mut ordered: Vec<_> = history.iter().collect();
    // Stable: equal generations (two concurrent pushes) keep their listing order.
    ordered.sort_by_key(|(s, _)| generation(s).unwrap_or(0));
    ordered
}

/// The current state version: Terraform's order, never the writers' clocks. The current
/// lineage is the one of the newest version pushed with `--force` (or, in history written by
/// builds that knew no `--force` on push, the newest that switched lineage), without any of
/// the first version. Within it the highest serial wins, counting only that forced version
/// and those pushed after it (a forced rollback to an older serial stands); of equal serials,
/// the later pushed.
pub fn current(history: &[(SnapshotInfo, StateMeta)]) -> Option<&(SnapshotInfo, StateMeta)> {
    let ordered = push_order(history);
    let forced = |i: usize| {
        let (s, m) = ordered[i];
        let labelled = s.labels.get(FORCED_LABEL).map(String::as_str) == Some("true");
        // Older builds accepted another lineage without --force: such a switch was forced.
        let legacy_switch =
            generation(s).is_none() && i > 0 && ordered[i - 1].1.lineage != m.lineage;
        labelled || legacy_switch
    };
    let start = (0..ordered.len()).rev().find(|&i| forced(i)).unwrap_or(0);
    let lineage = &ordered.get(start)?.1.lineage;
    ordered[start..]
        .iter()
        .copied()
        .filter(|(_, m)| &m.lineage == lineage)
        .max_by_key(|(_, m)| m.serial) // the last of equal maxima: the later pushed
}

/// The version `--snapshot ID` names (a full id or a unique prefix); `None` for the current.
///
/// # Errors
/// No such version (exit 3), or a prefix that matches several (exit 2), listing them.
pub fn chosen<'a>(
    history: &'a [(SnapshotInfo, StateMeta)],
    wanted: Option<&str>,
    url: &str,
) -> Result<&'a (SnapshotInfo, StateMeta), CliError> {
    let Some(wanted) = wanted else {
        return current(history).ok_or_else(|| {
            CliError::not_found(
                format!("no Terraform state in {url}"),
                format!("back the state up with `drctl state push {url} --dir <root module>`"),
            )
        });
    };
    let matches: Vec<_> = history
        .iter()
        .filter(|(s, _)| s.id.starts_with(wanted))
        .collect();
    match matches.as_slice() {
        [one] => Ok(one),
        [] => Err(CliError::not_found(
            format!("no state version {wanted:?} in {url}"),
            format!("list the versions with `drctl state history {url}`"),
        )),
        many => Err(CliError::usage(
            format!(
                "--snapshot {wanted:?} matches {} state versions: {}",
                many.len(),
                many.iter()
                    .map(|(s, m)| format!(
                        "{} (serial {}, lineage {})",
                        &s.id[..12],
                        m.serial,
                        m.lineage
                    ))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            "give more characters of the snapshot id",
        )),
    }
}

/// Why `incoming` may not replace `existing` without --force, if it may not: another lineage,
/// or an older serial. Names both sides' lineages or serials.
pub fn refusal(
    existing: &StateMeta,
    incoming: &StateMeta,
    existing_name: &str,
    incoming_name: &str,
) -> Option<String> {
    if existing.lineage != incoming.lineage {
        Some(format!(
            "{existing_name} is lineage {}, {incoming_name} lineage {}: they are different states",
            existing.lineage, incoming.lineage
        ))
    } else if existing.serial > incoming.serial {
        Some(format!(
            "{existing_name} is serial {}, newer than {incoming_name}'s serial {}",
            existing.serial, incoming.serial
        ))
    } else {
        None
    }
}

/// Every state version in the vault, oldest first.
pub async fn versions(vault: &Vault) -> Result<Vec<(SnapshotInfo, StateMeta)>, CliError> {
    let snapshots = vault.snapshots().await?;
    Ok(snapshots
        .into_iter()
        .filter(|s| s.labels.get(KIND_LABEL).map(String::as_str) == Some(KIND))
        .filter_map(|s| StateMeta::from_labels(&s).map(|m| (s, m)))
        .collect())
}
