//! The rebuild plan: what will be restored where, which pairs fail over and how, and which
//! Terraform commands run. It is worked out from the vault alone (state and configuration
//! are restored into a private scratch directory), so `--dry-run` touches nothing.

use super::failover::{self, Edit, Files};
use crate::output::CliError;
use crate::state::{versions, StateMeta, CONFIG_SOURCE, FILE, KIND, KIND_LABEL, SOURCE};
use crate::tfstate::{self, Resource};
use dr_vault::{NoProgress, SnapshotInfo, Storage, Vault};
use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

pub struct Plan {
    /// The vault's canonical URL.
    pub vault: String,
    pub state_snapshot: SnapshotInfo,
    pub state: StateMeta,
    /// The state file's bytes.
    pub state_bytes: Vec<u8>,
    /// The configuration kept with the state (empty when it was pushed with --state alone).
    pub config: Files,
    /// Where the state goes: `terraform.tfstate`, or beside it when a backend will hold it.
    pub state_file: String,
    pub backend: Option<String>,
    pub pipeline: Option<PipelineRestore>,
    pub failovers: Vec<Failover>,
    /// Edited configuration files (name → new text), and a generated tfvars file if any.
    pub edited: Files,
    /// What drctl cannot do and the user must.
    pub manual: Vec<String>,
    /// Vaults of the state whose store does not answer (a dark region): the apply keeps their
    /// state and skips them; the first apply after they answer catches them up.
    pub waiting: Vec<String>,
    pub drills: Vec<String>,
}

pub struct PipelineRestore {
    pub snapshot: SnapshotInfo,
    /// (source name, directory relative to the rebuilt module)
    pub sources: Vec<(String, PathBuf)>,
}

#[derive(serde::Serialize)]
pub struct Failover {
    pub address: String,
    pub from: String,
    pub to: String,
    #[serde(flatten)]
    pub edit: Edit,
}

/// Works out the plan.
pub async fn make(
    vault: &Vault,
    state_wanted: Option<&str>,
    failover_wanted: bool,
    default_options: &BTreeMap<String, String>,
) -> Result<Plan, CliError> {
    let url = vault.storage().url().to_string();
    let history = versions(vault).await?;
    let (state_snapshot, state) = crate::state::chosen(&history, state_wanted, &url)?.clone();

    // State holds secrets: the scratch directory is private (0700) and removed on return.
    let scratch = tempfile::Builder::new()
        .prefix("drctl-rebuild-")
        .tempdir()
        .map_err(|e| {
            CliError::usage(
                format!("cannot create a scratch directory: {e}"),
                "check TMPDIR",
            )
        })?;
    let restored = scratch.path().join("v");
    vault
        .restore(&state_snapshot.id, &restored, None, &NoProgress)
        .await?;
    let state_bytes = std::fs::read(restored.join(SOURCE).join(FILE)).map_err(|e| {
        CliError::usage(
            format!(
                "state version {} holds no {SOURCE}/{FILE}: {e}",
                &state_snapshot.id[..12]
            ),
            "push the state again with `drctl state push`",
        )
    })?;
    let config = read_config(&restored.join(CONFIG_SOURCE));
    let resources = tfstate::resources(&state_bytes, "the restored state")
        .map_err(|e| CliError::usage(e, "push the state again with `drctl state push`"))?;

    let mut manual = Vec::new();
    if config.is_empty() {
        manual.push(format!(
            "state version {} was pushed without its configuration: copy the root module's .tf files into the directory (next time push with `--dir`)",
            &state_snapshot.id[..12]
        ));
    }
    let backend = match failover::backend(&config) {
        Ok(backend) => backend.filter(|b| b != "local"),
        Err(why) => {
            manual.push(format!(
                "{why}: drctl cannot tell whether the module keeps its state in a backend, and wrote it as {FILE}; if that file declares one, run `terraform init` and then `terraform state push {FILE}` before any apply"
            ));
            None
        }
    };
    let state_file = match &backend {
        None => FILE.to_string(),
        Some(_) => format!("{FILE}.restored"),
    };

    let pipeline = pipeline_restore(vault, &resources, &url, &mut manual).await?;
    let (failovers, edited) = if failover_wanted {
        plan_failovers(&resources, &vault.storage().id(), &config, &mut manual)
    } else {
        (Vec::new(), Files::new())
    };
    let drills = resources
        .iter()
        .filter(|r| r.kind == "dr_drill")
        .map(|r| r.address.clone())
        .collect();
    let waiting = unanswered_vaults(&resources, &vault.storage().id(), default_options).await;
    Ok(Plan {
        vault: url,
        state_snapshot,
        state,
        state_bytes,
        config,
        state_file,
        backend,
        pipeline,
        failovers,
        edited,
        manual,
        waiting,
        drills,
    })
}

/// The state's other vaults whose store does not answer, each with why. Only their config
/// object is read (no key derivation); bounded by the storage timeouts, and a store found
/// dark once is not waited for again in this process.
async fn unanswered_vaults(
    resources: &[Resource],
    here: &str,
    default_options: &BTreeMap<String, String>,
) -> Vec<String> {
    let cwd = std::env::current_dir().unwrap_or_default();
    let mut waiting = Vec::new();
    for r in resources.iter().filter(|r| r.kind == "dr_backup_vault") {
        let Some(id) = r.str("id") else { continue };
        if same_place(id, here) {
            continue;
        }
        let own = r.string_map("storage_options");
        let answer = match Storage::open_with_defaults(id, default_options, &own, &cwd, false) {
            Ok(storage) => Vault::read_config(&storage).await.map(|_| ()),
            Err(e) => Err(e),
        };
        match answer {
            Err(e) if e.kind == dr_vault::ErrorKind::Unreachable => waiting.push(format!(
                "{} ({}) does not answer: {e}. The apply keeps its state and skips it; the first apply after it \
                 answers again catches it up",
                r.address,
                location(id)
            )),
            _ => {}
        }
    }
    waiting
}

fn read_config(dir: &Path) -> Files {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Files::new();
    };
    entries
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            std::fs::read_to_string(e.path()).ok().map(|t| (name, t))
        })
        .collect()
}

/// The newest snapshot that is not a state version, and where each of its sources goes: the
/// `path` the state's `dr_backup_vault` gave that source (relative to the root module), so the
/// rebuilt configuration finds its data where it expects it.
async fn pipeline_restore(
    vault: &Vault,
    resources: &[Resource],
    url: &str,
    manual: &mut Vec<String>,
) -> Result<Option<PipelineRestore>, CliError> {
    let snapshots = vault.snapshots().await?;
    let Some(snapshot) = snapshots
        .into_iter()
        .rev()
        .find(|s| s.labels.get(KIND_LABEL).map(String::as_str) != Some(KIND))
    else {
        manual.push(format!(
            "{url} holds no pipeline snapshot besides state: only the state and configuration are restored"
        ));
        return Ok(None);
    };
    let mut sources = Vec::new();
    for name in &snapshot.sources {
        let configured = resources
            .iter()
            .filter(|r| r.kind == "dr_backup_vault")
            .flat_map(|r| r.values["source"].as_array().cloned().unwrap_or_default())
            .find(|s| s["name"].as_str() == Some(name))
            .and_then(|s| s["path"].as_str().map(str::to_string));
        let place = match configured.as_deref().and_then(inside_module) {
            Some(relative) => relative,
            None => {
                let fallback = Path::new("sources").join(name);
                manual.push(match configured {
                    Some(path) => format!(
                        "source {name:?} was configured at {path}, outside the module: restored to {} instead; point the vault's source there or copy it back",
                        fallback.display()
                    ),
                    None => format!(
                        "no dr_backup_vault in the state names source {name:?}: restored to {}",
                        fallback.display()
                    ),
                });
                fallback
            }
        };
        sources.push((name.clone(), place));
    }
    Ok(Some(PipelineRestore { snapshot, sources }))
}

/// Whether two vault URLs or ids name the same vault (see [`dr_vault::storage::same_place`]),
/// relative paths resolved against the working directory.
fn same_place(a: &str, b: &str) -> bool {
    let cwd = std::env::current_dir().unwrap_or_default();
    dr_vault::storage::same_place(a, b, &cwd)
}

/// Where a vault URL or id points, for messages.
fn location(url: &str) -> String {
    let cwd = std::env::current_dir().unwrap_or_default();
    dr_vault::storage::location(url, &cwd).unwrap_or_else(|_| url.to_string())
}

/// A relative path that stays inside the module, normalised (`./pipeline` → `pipeline`).
fn inside_module(path: &str) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for part in Path::new(path).components() {
        match part {
            Component::CurDir => {}
            Component::Normal(p) => out.push(p),
            _ => return None,
        }
    }
    (!out.as_os_str().is_empty()).then_some(out)
}

/// For every pair with this vault on one side: set `active` to that side.
fn plan_failovers(
    resources: &[Resource],
    here: &str,
    config: &Files,
    manual: &mut Vec<String>,
) -> (Vec<Failover>, Files) {
    let mut failovers = Vec::new();
    let mut edited = config.clone();
    let mut variables = Vec::new();
    // Pairs name vaults by id; the vault rebuilt from by the URL or id it was opened with:
    // compared by where they point.
    for pair in resources.iter().filter(|r| r.kind == "dr_region_pair") {
        let points_here = |attr: &str| pair.str(attr).is_some_and(|id| same_place(id, here));
        let side = if points_here("secondary_vault_id") {
            "secondary"
        } else if points_here("primary_vault_id") {
            "primary"
        } else {
            continue;
        };
        let from = pair.str("active").unwrap_or("primary").to_string();
        if !pair.module.is_empty() {
            manual.push(format!(
                "{} is in a module: set its `active` to \"{side}\" there",
                pair.address
            ));
            continue;
        }
        match failover::set_active(&edited, &pair.name, side) {
            Ok((edit, text)) => {
                if let (Edit::Literal { file }, Some(text)) = (&edit, text) {
                    edited.insert(file.clone(), text);
                }
                if let Edit::Variable { variable } = &edit {
                    variables.push((variable.clone(), side.to_string()));
                }
                failovers.push(Failover {
                    address: pair.address.clone(),
                    from,
                    to: side.to_string(),
                    edit,
                });
            }
            Err(why) if !config.is_empty() => manual.push(format!("{}: {why}", pair.address)),
            Err(_) => manual.push(format!(
                "{}: set its `active` to \"{side}\" in the configuration",
                pair.address
            )),
        }
    }
    // Only what changed is written.
    edited.retain(|name, text| config.get(name) != Some(text));
    if !variables.is_empty() {
        edited.insert(failover::TFVARS.to_string(), failover::tfvars(&variables));
    }
    (failovers, edited)
}

#[cfg(test)]
mod tests {
    use super::inside_module;
    use std::path::PathBuf;

    #[test]
    fn only_paths_inside_the_module_are_used() {
        assert_eq!(inside_module("./pipeline"), Some(PathBuf::from("pipeline")));
        assert_eq!(inside_module("ci/jobs"), Some(PathBuf::from("ci/jobs")));
        assert_eq!(inside_module("../elsewhere"), None);
        assert_eq!(inside_module("/abs/path"), None);
        assert_eq!(inside_module("."), None);
    }
}
