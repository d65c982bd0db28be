//! `dr_drill`: restore a snapshot, verify every file against its manifest, run the team's own
//! check inside the restored tree, and measure what was achieved (RTO: restore time; RPO: the
//! age of the data) against the targets. The drill re-runs when its configuration or
//! `triggers` change, or at the first plan made `max_age` after the last run. Every run's
//! report is also written into the vault, so drill history survives the Terraform state.

use crate::backup_vault::duration_validator;
use crate::vaults::{duration, format_time, same_place, Vaults};
use dr_drill::{RestoreDir, Run, Spec, MARKER};
use dr_vault::Vault;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tfplugin::{
    async_trait, Attr, Attribute, AttributePath, Block, Diagnostics, Model, Number, Plan, Resource,
    Schema, State, Type, Value,
};

tfplugin::model! {
    /// A `dr_drill` as configured, planned or stored.
    struct DrillModel {
        name: Attr<String>,
        vault_id: Attr<String>,
        snapshot_id: Attr<String>,
        region_pair_id: Attr<String>,
        rpo: Attr<String>,
        rto: Attr<String>,
        verify_command: Attr<Vec<String>>,
        verify_env_wo: Attr<BTreeMap<String, String>>,
        verify_env_wo_version: Attr<u64>,
        verify_timeout: Attr<String>,
        restore_dir: Attr<String>,
        keep_restore: Attr<bool>,
        max_age: Attr<String>,
        triggers: Attr<BTreeMap<String, String>>,
        fail_on_violation: Attr<bool>,
        // What a run produces: kept until the drill re-runs.
        id: Attr<String>,
        status: Attr<String>,
        restored_snapshot_id: Attr<String>,
        started_at: Attr<String>,
        finished_at: Attr<String>,
        failure_reason: Attr<String>,
        report: Attr<String>,
        restore_seconds: Attr<Number>,
        data_age_seconds: Attr<u64>,
        files_verified: Attr<u64>,
        bytes_restored: Attr<u64>,
        rto_met: Attr<bool>,
        rpo_met: Attr<bool>,
    }
}

impl DrillModel {
    fn name(&self) -> &str {
        self.name.as_str().unwrap_or("drill")
    }

    /// Plans a run: everything a run produces is known only after it.
    fn plan_run(&mut self) {
        self.id = Attr::Unknown;
        self.status = Attr::Unknown;
        self.restored_snapshot_id = Attr::Unknown;
        self.started_at = Attr::Unknown;
        self.finished_at = Attr::Unknown;
        self.failure_reason = Attr::Unknown;
        self.report = Attr::Unknown;
        self.restore_seconds = Attr::Unknown;
        self.data_age_seconds = Attr::Unknown;
        self.files_verified = Attr::Unknown;
        self.bytes_restored = Attr::Unknown;
        self.rto_met = Attr::Unknown;
        self.rpo_met = Attr::Unknown;
    }

    /// Records a finished run.
    fn record_run(&mut self, run: &Run) {
        let failed = !run.failures.is_empty();
        self.id = format!("{}@{}", run.name, run.started_at).into();
        self.status = if failed { "failed" } else { "passed" }.into();
        self.restored_snapshot_id = Attr::from_option(run.snapshot_id.clone());
        self.started_at = run.started_at.as_str().into();
        self.finished_at = run.finished_at.as_str().into();
        self.failure_reason = Attr::from_option(failed.then(|| run.failures.join("; ")));
        // The check's output stays in the vault's (encrypted) copy of the report.
        let report = Run {
            verify_output_tail: String::new(),
            ..run.clone()
        };
        self.report = serde_json::to_string(&report).unwrap_or_default().into();
        self.restore_seconds = Number::from_f64((run.restore_seconds * 1000.0).round() / 1000.0)
            .unwrap_or_else(|| 0u64.into())
            .into();
        self.data_age_seconds = run.data_age_seconds.into();
        self.files_verified = run.files_verified.into();
        self.bytes_restored = run.bytes_restored.into();
        self.rto_met = run.rto_met.into();
        self.rpo_met = run.rpo_met.into();
    }
}

tfplugin::model! {
    /// A drill's identity (Terraform 1.12+): its name and where the vault it restores from is.
    struct DrillIdentity {
        name: Attr<String>,
        vault_url: Attr<String>,
    }
}

pub struct Drill {
    pub vaults: Arc<Vaults>,
}

fn schema() -> Schema {
    // What a run produces keeps its value until modify_plan plans a run.
    let computed = |name: &str, ty: Type, text: &str| {
        Attribute::computed(name, ty)
            .use_state_for_unknown()
            .description(text)
    };
    Schema::new(
        0,
        Block::new(vec![
            Attribute::required("name", Type::String)
                .requires_replace()
                .validator(crate::backup_vault::name_validator())
                .description("The drill's name; reports are stored in the vault under `drills/NAME/`."),
            Attribute::required("vault_id", Type::String)
                // The drill's identity holds where its vault is: never changed in place.
                .requires_replace_if("when it names another vault", |prior, planned| {
                    match (prior.as_str(), planned.as_str()) {
                        (Some(was), Some(now)) => !same_place(was, now),
                        _ => false,
                    }
                })
                .description("The vault restored from, usually the pair's standby. Pointing it at another vault replaces the drill."),
            Attribute::optional("snapshot_id", Type::String)
                .description("The snapshot to restore; default: the latest at run time."),
            Attribute::optional("region_pair_id", Type::String)
                .description("A `dr_region_pair`'s `id`: its `rpo` and `rto` are the default targets."),
            Attribute::optional("rpo", Type::String)
                .validator(duration_validator())
                .description("Target for the data's age; overrides the pair's."),
            Attribute::optional("rto", Type::String)
                .validator(duration_validator())
                .description("Target for the restore time; overrides the pair's."),
            Attribute::optional("verify_command", Type::list(Type::String)).description(
                "argv run inside the restored tree with `DR_RESTORE_DIR` and `DR_SNAPSHOT_ID` set; exit 0 passes.",
            ),
            Attribute::optional("verify_env_wo", Type::map(Type::String))
                .sensitive()
                .write_only()
                .description(
                    "Secrets `verify_command` needs (a token for a smoke test), added to its environment. Write-only \
                     (Terraform 1.11+): never stored in the plan, the state, the report or the vault, and redacted from \
                     the output the report keeps. Change `verify_env_wo_version` to re-run the drill with new values.",
                ),
            Attribute::optional("verify_env_wo_version", Type::Number).description(
                "Any change re-runs the drill: `verify_env_wo` is never stored, so Terraform cannot see its values change.",
            ),
            Attribute::optional("verify_timeout", Type::String)
                .default("10m")
                .validator(duration_validator())
                .description("How long `verify_command` may run before the drill fails."),
            Attribute::optional("restore_dir", Type::String).description(
                "Where to restore (emptied first; it must be empty or a previous drill's; created owner-only). Default: a new \
                 private directory (mode 0700) with an unpredictable name under the provider's `work_dir`, named in `report`.",
            ),
            Attribute::optional("keep_restore", Type::Bool)
                .default(false)
                .description("Keep the restored tree after the drill."),
            Attribute::optional("max_age", Type::String)
                .validator(duration_validator())
                .description("A plan made longer than this after the last run re-runs the drill."),
            Attribute::optional("triggers", Type::map(Type::String))
                .description("Any change re-runs the drill."),
            Attribute::optional("fail_on_violation", Type::Bool)
                .default(true)
                .description("A failed drill fails the apply, with the reason."),
            computed("id", Type::String, "The drill's name and the start of its last run."),
            computed("status", Type::String, "`passed` or `failed`."),
            computed("restored_snapshot_id", Type::String, "The snapshot restored."),
            computed("started_at", Type::String, "When the last run started (RFC 3339, UTC)."),
            computed("finished_at", Type::String, "When it finished."),
            computed("failure_reason", Type::String, "Why it failed; null when it passed."),
            computed("report", Type::String, "The run's report (JSON), as written into the vault under `drills/NAME/`; the output of `verify_command` is kept only there (encrypted), never in the state."),
            computed("restore_seconds", Type::Number, "Achieved RTO: seconds to restore."),
            computed("data_age_seconds", Type::Number, "Achieved RPO: the restored snapshot's age at the run."),
            computed("files_verified", Type::Number, "Files whose content matched the manifest."),
            computed("bytes_restored", Type::Number, "Bytes restored."),
            computed("rto_met", Type::Bool, "restore_seconds within the RTO target (true without a target)."),
            computed("rpo_met", Type::Bool, "data_age_seconds within the RPO target (true without a target)."),
        ])
        .description("A restore drill: restore, verify, run a check, and measure the achieved RTO and RPO."),
    )
}

/// What the `dr_run_drill` action asks for.
pub(crate) struct RunNow {
    pub name: String,
    pub vault_id: String,
    pub snapshot_id: Option<String>,
    pub verify_command: Option<Vec<String>>,
    pub rpo: Option<String>,
    pub rto: Option<String>,
    pub verify_timeout: Option<String>,
}

/// What configures a run besides its name, vault and command (which the report holds
/// anyway): recorded with each report. Never `verify_env_wo`, only its version.
#[derive(Default, Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
struct Settings {
    snapshot_id: Option<String>,
    region_pair_id: Option<String>,
    rpo: Option<String>,
    rto: Option<String>,
    verify_timeout: Option<String>,
    restore_dir: Option<String>,
    keep_restore: Option<bool>,
    max_age: Option<String>,
    triggers: Option<BTreeMap<String, String>>,
    fail_on_violation: Option<bool>,
    verify_env_wo_version: Option<u64>,
}

impl Settings {
    fn of(drill: &DrillModel) -> Settings {
        Settings {
            snapshot_id: drill.snapshot_id.get().cloned(),
            region_pair_id: drill.region_pair_id.get().cloned(),
            rpo: drill.rpo.get().cloned(),
            rto: drill.rto.get().cloned(),
            verify_timeout: drill.verify_timeout.get().cloned(),
            restore_dir: drill.restore_dir.get().cloned(),
            keep_restore: drill.keep_restore.get().copied(),
            max_age: drill.max_age.get().cloned(),
            triggers: drill.triggers.get().cloned(),
            fail_on_violation: drill.fail_on_violation.get().copied(),
            verify_env_wo_version: drill.verify_env_wo_version.get().copied(),
        }
    }

    /// Writes these settings into an imported drill; the schema's defaults stand in for what a
    /// report of an older build did not record.
    fn write_into(self, drill: &mut DrillModel) {
        drill.snapshot_id = Attr::from_option(self.snapshot_id);
        drill.region_pair_id = Attr::from_option(self.region_pair_id);
        drill.rpo = Attr::from_option(self.rpo);
        drill.rto = Attr::from_option(self.rto);
        drill.verify_timeout = Attr::Known(self.verify_timeout.unwrap_or_else(|| "10m".into()));
        drill.restore_dir = Attr::from_option(self.restore_dir);
        drill.keep_restore = Attr::Known(self.keep_restore.unwrap_or(false));
        drill.max_age = Attr::from_option(self.max_age);
        drill.triggers = Attr::from_option(self.triggers);
        drill.fail_on_violation = Attr::Known(self.fail_on_violation.unwrap_or(true));
        drill.verify_env_wo_version = Attr::from_option(self.verify_env_wo_version);
    }
}

impl Drill {
    /// The targets: the drill's own, else the pair's (recorded in the vault by dr_region_pair).
    async fn targets(
        &self,
        drill: &DrillModel,
        vault: &Vault,
    ) -> Result<(Option<Duration>, Option<Duration>), String> {
        let (mut rpo, mut rto) = (duration(&drill.rpo, "rpo"), duration(&drill.rto, "rto"));
        if let Some(pair) = drill.region_pair_id.as_str() {
            if rpo.is_none() || rto.is_none() {
                // The pair is recorded in both its vaults: this one first (it answered; the
                // primary's region may be the one that is dark), then the primary.
                let (name, primary) = pair.split_once('@').unwrap_or((pair, ""));
                let key = format!("pairs/{name}");
                let at = AttributePath::attr("region_pair_id");
                let record = match vault.record(&key).await.ok().flatten() {
                    Some(r) => Some(r),
                    None => match self.vaults.open(primary, &Default::default(), &at).await {
                        Ok(Some(v)) => v.record(&key).await.ok().flatten(),
                        _ => None,
                    },
                };
                let Some(record) = record.filter(|r| r.get("deleted").is_none()) else {
                    return Err(format!(
                        "the targets of region pair {pair:?} cannot be read (no pair record in its vaults); \
                         set rpo and rto on the drill, or apply the pair first"
                    ));
                };
                let parse = |k: &str| {
                    record[k]
                        .as_str()
                        .and_then(|t| dr_vault::parse_duration(t, k).ok())
                };
                rpo = rpo.or_else(|| parse("rpo"));
                rto = rto.or_else(|| parse("rto"));
            }
        }
        Ok((rpo, rto))
    }

    /// Removes the tree a finished run kept (`keep_restore`), if it is still a drill's: the
    /// one its state names, and `<work_dir>/<name>`, where builds before private restore
    /// directories restored.
    fn remove_restored(&self, drill: &DrillModel) {
        let legacy = self
            .vaults
            .config()
            .ok()
            .map(|c| c.work_dir.join(drill.name()));
        for dir in Self::restored_dir_of(drill).into_iter().chain(legacy) {
            if dir.join(MARKER).is_file() {
                let _ = std::fs::remove_dir_all(dir);
            }
        }
    }

    /// The directory a finished run restored into, from its state: the configured one, or
    /// the one its report names.
    fn restored_dir_of(drill: &DrillModel) -> Option<PathBuf> {
        if let Some(dir) = drill.restore_dir.as_str() {
            return Some(std::path::absolute(dir).unwrap_or_else(|_| dir.into()));
        }
        let report: serde_json::Value = serde_json::from_str(drill.report.as_str()?).ok()?;
        report["restore_dir"].as_str().map(PathBuf::from)
    }

    /// The newest report in this drill's vault of a run of the same drill as `last` (see
    /// [`Run::same_drill_as`]) that finished after it, if the vault answers and holds one.
    async fn newest_report(&self, drill: &DrillModel, last: &Run) -> Option<Run> {
        /// Reports read from the newest back: a run of this drill is among the last few
        /// unless ad-hoc runs of the same name crowd it out.
        const LOOK_BACK: usize = 20;
        let vault = self
            .vaults
            .open(
                drill.vault_id.as_str()?,
                &Default::default(),
                &AttributePath::attr("vault_id"),
            )
            .await
            .ok()??;
        let reports = vault
            .newest_records(&dr_drill::reports_of(drill.name()), LOOK_BACK)
            .await
            .ok()?;
        reports
            .into_iter()
            .filter_map(|(_, report)| serde_json::from_value::<Run>(report).ok())
            // Both written by format_time (RFC 3339 to the second, UTC): they sort as text.
            .filter(|run| run.finished_at > last.finished_at && run.same_drill_as(last))
            .max_by(|a, b| a.finished_at.cmp(&b.finished_at))
    }

    /// Runs a drill now, outside any resource (the `dr_run_drill` action): restore, verify,
    /// run the check, measure, and write the report into the vault as a `dr_drill` does.
    /// Returns a line for people and, when it failed, why.
    pub(crate) async fn run_now(&self, settings: RunNow) -> (String, Option<String>) {
        let drill = DrillModel {
            name: settings.name.into(),
            vault_id: settings.vault_id.into(),
            snapshot_id: Attr::from_option(settings.snapshot_id),
            verify_command: Attr::from_option(settings.verify_command),
            rpo: Attr::from_option(settings.rpo),
            rto: Attr::from_option(settings.rto),
            verify_timeout: Attr::Known(settings.verify_timeout.unwrap_or_else(|| "10m".into())),
            keep_restore: Attr::Known(false),
            fail_on_violation: Attr::Known(true),
            ..DrillModel::default()
        };
        let run = self.run(&drill, &BTreeMap::new(), true).await;
        (
            run.summary(),
            (!run.passed()).then(|| run.failures.join("; ")),
        )
    }

    /// Runs the drill (see [`dr_drill::run`]) against its vault, with its targets: its own,
    /// else its pair's. What keeps it from starting is its failure.
    async fn run(
        &self,
        drill: &DrillModel,
        secret_env: &BTreeMap<String, String>,
        by_action: bool,
    ) -> Run {
        let mut spec = self.spec(drill, secret_env, by_action);
        let config = match self.vaults.config() {
            Ok(config) => config,
            Err(d) => return Run::failed_to_start(&spec, d.detail),
        };
        if drill.restore_dir.is_null() {
            spec.restore_dir = RestoreDir::PrivateIn(config.work_dir.clone());
        }
        if let Ok(passphrase) = config.passphrase() {
            spec.secrets.push(passphrase.expose().to_string());
        }
        let vault = match self
            .vaults
            .open_existing(
                &spec.vault_id,
                &Default::default(),
                &AttributePath::attr("vault_id"),
            )
            .await
        {
            Ok(v) => v,
            Err(d) => return Run::failed_to_start(&spec, d.detail),
        };
        match self.targets(drill, &vault).await {
            Ok((rpo, rto)) => (spec.rpo, spec.rto) = (rpo, rto),
            Err(e) => return Run::failed_to_start(&spec, e),
        }
        dr_drill::run(&vault, &spec).await
    }

    /// What the drill asks for, as the drill engine takes it.
    fn spec(
        &self,
        drill: &DrillModel,
        secret_env: &BTreeMap<String, String>,
        by_action: bool,
    ) -> Spec {
        Spec {
            name: drill.name.or_default(),
            vault_id: drill.vault_id.or_default(),
            snapshot: drill.snapshot_id.get().cloned(),
            rpo: None,
            rto: None,
            verify_command: drill.verify_command.or_default(),
            verify_timeout: duration(&drill.verify_timeout, "verify_timeout")
                .unwrap_or(Duration::from_secs(600)),
            restore_dir: match drill.restore_dir.as_str() {
                Some(dir) => RestoreDir::Given(dir.into()),
                None => RestoreDir::PrivateIn(std::env::temp_dir()),
            },
            keep_restore: drill.keep_restore.get() == Some(&true),
            secret_env: secret_env.clone(),
            secrets: Vec::new(),
            settings: serde_json::to_value(Settings::of(drill)).ok(),
            by_action,
        }
    }

    /// Runs the drill planned; `config` holds what no plan does: the write-only
    /// `verify_env_wo`.
    async fn apply(&self, planned: &State, config: &Value, diags: &mut Diagnostics) -> State {
        let Some(mut drill) = DrillModel::read(&planned.value, diags) else {
            return State::default();
        };
        let secret_env = DrillModel::read(config, diags)
            .and_then(|c| c.verify_env_wo.get().cloned())
            .unwrap_or_default();
        // Validate saw only the values known then (an ephemeral one comes at apply): a value
        // too short to redact fails the run before anything is restored.
        let run = match too_short_to_redact(&secret_env).first() {
            Some(name) => {
                let now = format_time(dr_vault::clock::now());
                Run {
                    name: drill.name.or_default(),
                    vault_id: drill.vault_id.or_default(),
                    verify_command: drill.verify_command.or_default(),
                    started_at: now.clone(),
                    finished_at: now,
                    settings: serde_json::to_value(Settings::of(&drill)).ok(),
                    failures: vec![format!(
                        "the value of verify_env_wo[{name:?}] is shorter than {} characters and could not be redacted \
                         from verify_command's output, so the drill did not run",
                        dr_drill::check::MIN_REDACTED_LEN
                    )],
                    ..Run::default()
                }
            }
            None => self.run(&drill, &secret_env, false).await,
        };
        drill.record_run(&run);
        if let (Some(reason), true) = (
            drill.failure_reason.as_str(),
            drill.fail_on_violation.get() != Some(&false),
        ) {
            let printed = if run.verify_output_tail.is_empty() {
                String::new()
            } else {
                let lines: Vec<&str> = run.verify_output_tail.lines().collect();
                format!(
                    "\nThe last lines verify_command printed:\n{}",
                    lines[lines.len().saturating_sub(20)..].join("\n")
                )
            };
            diags.error(
                "Drill Failed",
                format!(
                    "Drill {:?} failed: {reason}. {} \
                     Set fail_on_violation = false to record failures without failing the apply.{printed}",
                    run.name,
                    if run.report_written {
                        format!("The report is in the vault under drills/{}/ and in this resource's `report`.", run.name)
                    } else {
                        "The report is in this resource's `report` (none was written into the vault).".to_string()
                    }
                ),
            );
        }
        State::from(drill.written_over(&planned.value))
    }
}

/// The names of `verify_env_wo` whose (non-empty) values are too short to redact.
fn too_short_to_redact(env: &BTreeMap<String, String>) -> Vec<&String> {
    env.iter()
        .filter(|(_, v)| !v.is_empty() && v.len() < dr_drill::check::MIN_REDACTED_LEN)
        .map(|(k, _)| k)
        .collect()
}

/// Whether an update runs the drill again: it points at another vault or pair, a setting of
/// the run changed, the last run is older than `max_age` at `now`, or it failed the apply.
fn rerun_due(prior: &DrillModel, planned: &DrillModel, now: time::OffsetDateTime) -> bool {
    let settings_changed = planned.snapshot_id != prior.snapshot_id
        || planned.rpo != prior.rpo
        || planned.rto != prior.rto
        || planned.verify_command != prior.verify_command
        || planned.verify_env_wo_version != prior.verify_env_wo_version
        || planned.verify_timeout != prior.verify_timeout
        || planned.restore_dir != prior.restore_dir
        || planned.max_age != prior.max_age
        || planned.triggers != prior.triggers;
    let stale = match (
        duration(&planned.max_age, "max_age"),
        prior.finished_at.as_str().and_then(dr_vault::clock::parse),
    ) {
        (Some(max_age), Some(finished)) => {
            now - finished > time::Duration::try_from(max_age).unwrap_or(time::Duration::MAX)
        }
        _ => false,
    };
    // A failure that failed the apply is retried by the next one, not accepted silently.
    let failed_loudly =
        prior.status.as_str() == Some("failed") && planned.fail_on_violation.get() != Some(&false);
    target_changed(prior, planned) || settings_changed || stale || failed_loudly
}

/// Whether the drill points at another vault or pair. The same vault or pair under a new id
/// (its storage options changed, or state from before ids carried them) is not a change: the
/// drill would restore the same data.
fn target_changed(prior: &DrillModel, planned: &DrillModel) -> bool {
    let differs = |was: &Attr<String>, now: &Attr<String>, same: &dyn Fn(&str, &str) -> bool| match (
        was.as_str(),
        now.as_str(),
    ) {
        (Some(a), Some(b)) => !same(a, b),
        _ => was != now,
    };
    let same_pair = |a: &str, b: &str| match (a.split_once('@'), b.split_once('@')) {
        (Some((name_a, vault_a)), Some((name_b, vault_b))) => {
            name_a == name_b && same_place(vault_a, vault_b)
        }
        _ => a == b,
    };
    differs(&prior.vault_id, &planned.vault_id, &same_place)
        || differs(&prior.region_pair_id, &planned.region_pair_id, &same_pair)
}

#[async_trait]
impl Resource for Drill {
    fn type_name(&self) -> &'static str {
        "dr_drill"
    }

    fn schema(&self) -> Schema {
        schema()
    }

    async fn validate(&self, config: &Value, diags: &mut Diagnostics) {
        let Some(config) = DrillModel::read(config, diags) else {
            return;
        };
        if config.verify_command.get().is_some_and(Vec::is_empty) {
            diags.error_at(
                AttributePath::attr("verify_command"),
                "Empty Command",
                "verify_command must name a program, e.g. [\"sh\", \"-c\", \"test -f pipeline/ci.yml\"]; remove it to skip.",
            );
        }
        if let Some(env) = config.verify_env_wo.get() {
            // Names only: the values are secrets and never appear in a message.
            for name in env.keys() {
                let valid = name
                    .chars()
                    .next()
                    .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                    && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
                if !valid || name.starts_with("DR_") {
                    diags.error_at(
                        AttributePath::attr("verify_env_wo").key(name),
                        "Invalid Variable Name",
                        format!(
                            "{name:?} cannot be a variable of verify_command's environment: use letters, digits and _ \
                             (not starting with a digit), outside the DR_ prefix the drill sets itself."
                        ),
                    );
                }
            }
            for name in too_short_to_redact(env) {
                diags.error_at(
                    AttributePath::attr("verify_env_wo").key(name),
                    "Secret Too Short",
                    format!(
                        "The value of {name:?} is shorter than {} characters: verify_command's output is kept with \
                         every secret redacted, and one this short cannot be. Use a longer value.",
                        dr_drill::check::MIN_REDACTED_LEN
                    ),
                );
            }
            if config.verify_command.is_null() && !env.is_empty() {
                diags.error_at(
                    AttributePath::attr("verify_env_wo"),
                    "Nothing Uses verify_env_wo",
                    "verify_env_wo is passed only to verify_command; set verify_command, or remove verify_env_wo.",
                );
            }
        }
    }

    async fn modify_plan(&self, plan: &mut Plan<'_>, diags: &mut Diagnostics) {
        if plan.planned.is_null() || plan.is_create() {
            return;
        }
        let (Some(prior), Some(mut planned)) = (
            DrillModel::read(&plan.prior.value, diags),
            DrillModel::read(&plan.planned, diags),
        ) else {
            return;
        };
        if rerun_due(&prior, &planned, dr_vault::clock::now()) {
            planned.plan_run();
            planned.write_into(&mut plan.planned);
        }
    }

    /// A drill is identified by its name and where its vault is (its reports live there,
    /// under `drills/NAME/`); both replace the drill when they change.
    fn identity_schema(&self) -> Option<tfplugin::IdentitySchema> {
        Some(tfplugin::IdentitySchema {
            version: 0,
            attributes: vec![
                tfplugin::IdentityAttribute {
                    name: "name",
                    ty: Type::String,
                    description: "The drill's name.",
                    required_for_import: true,
                },
                crate::vaults::vault_identity_attribute(
                    "vault_url",
                    "Where the vault it restores from is: its canonical URL, with only the storage options that say which store.",
                ),
            ],
        })
    }

    fn identity(&self, state: &Value) -> Value {
        let drill = DrillModel::from_value(state).unwrap_or_default();
        DrillIdentity {
            vault_url: crate::vaults::location_attr(&drill.vault_id),
            name: drill.name,
        }
        .to_value()
    }

    fn import_id_of(&self, identity: &Value, diags: &mut Diagnostics) -> Option<String> {
        let identity = DrillIdentity::read(identity, diags)?;
        match (identity.name.get(), identity.vault_url.get()) {
            (Some(name), Some(url)) => Some(format!("{name}@{url}")),
            _ => {
                diags.error(
                    "Invalid Identity",
                    "A dr_drill identity needs its name and vault_url.",
                );
                None
            }
        }
    }

    /// Imports a drill that has run, by `NAME@VAULT_ID`: its newest report in the vault gives
    /// the last run's results and the settings it ran with, so the next plan is empty when the
    /// configuration still says the same (reports written before settings were recorded give
    /// the schema's defaults for them).
    async fn import(&self, id: &str, diags: &mut Diagnostics) -> State {
        let Some((name, vault_id)) = id
            .split_once('@')
            .filter(|(n, v)| !n.is_empty() && !v.is_empty())
        else {
            diags.error(
                "Invalid Import ID",
                format!("{id:?} is not NAME@VAULT_ID, e.g. nightly@file:///srv/vaults/standby."),
            );
            return State::default();
        };
        let vault = match self
            .vaults
            .open_existing(vault_id, &Default::default(), &AttributePath::root())
            .await
        {
            Ok(v) => v,
            Err(d) => {
                diags.push(d);
                return State::default();
            }
        };
        let reports = match vault.records(&format!("drills/{name}")).await {
            Ok(reports) => reports,
            Err(e) => {
                diags.push(crate::vaults::engine_diagnostic(
                    "Cannot Read The Drill's Reports",
                    &e,
                ));
                return State::default();
            }
        };
        // Report names end with the run's start time, so the greatest is the newest.
        // Reports of the dr_run_drill action hold that action's settings, not this drill's.
        let Some((key, newest)) = reports
            .into_iter()
            .filter(|(_, report)| report.get("by_action") != Some(&serde_json::Value::Bool(true)))
            .max_by(|a, b| a.0.cmp(&b.0))
        else {
            diags.error(
                "Drill Not Found",
                format!(
                    "The vault at {vault_id} holds no report of a drill named {name:?}: a drill exists once it has run. \
                     Apply the configuration to run it."
                ),
            );
            return State::default();
        };
        let run: Run = match serde_json::from_value(newest) {
            Ok(run) => run,
            Err(e) => {
                diags.error(
                    "Unreadable Drill Report",
                    format!("The record {key} in {vault_id} is not a drill report: {e}."),
                );
                return State::default();
            }
        };
        // The vault id as the drill was applied with (how configurations spell it: a
        // dr_backup_vault's id), when the report's names the same vault as the import ID.
        let applied_vault_id = Some(run.vault_id.as_str())
            .filter(|applied| !applied.is_empty() && same_place(applied, vault_id))
            .unwrap_or(vault_id);
        let mut drill = DrillModel {
            name: name.into(),
            vault_id: applied_vault_id.into(),
            verify_command: if run.verify_command.is_empty() {
                Attr::Null
            } else {
                Attr::Known(run.verify_command.clone())
            },
            ..DrillModel::default()
        };
        run.settings
            .clone()
            .and_then(|v| serde_json::from_value::<Settings>(v).ok())
            .unwrap_or_default()
            .write_into(&mut drill);
        drill.record_run(&run);
        State::from(drill.to_value())
    }

    async fn create(&self, planned: &State, config: &Value, diags: &mut Diagnostics) -> State {
        self.apply(planned, config, diags).await
    }

    /// A drill's results are history, and only a newer run changes them: a run of the same
    /// drill on the same vault outside this resource (`drctl drill` from cron, the
    /// `dr_run_drill` action, another workspace), with the same check and targets as this
    /// drill's last run, is taken from its report in the vault, so `max_age` counts from the
    /// newest run. A run with another check or laxer targets proves nothing about this drill
    /// and is left out. A vault that does not answer changes nothing.
    async fn read(&self, current: &State, diags: &mut Diagnostics) -> State {
        let Some(mut drill) = DrillModel::read(&current.value, diags) else {
            return current.clone();
        };
        let Some(last) = drill
            .report
            .as_str()
            .and_then(|r| serde_json::from_str::<Run>(r).ok())
        else {
            return current.clone();
        };
        let Some(mut newest) = self.newest_report(&drill, &last).await else {
            return current.clone();
        };
        // A tree this drill's own run kept (keep_restore) stays its to remove; a tree an
        // outside run kept is that run's.
        newest.restore_dir = last.restore_dir.clone();
        drill.record_run(&newest);
        State::from(drill.written_over(&current.value))
    }

    async fn update(
        &self,
        prior: &State,
        planned: &State,
        config: &Value,
        diags: &mut Diagnostics,
    ) -> State {
        let (Some(last_run), Some(next)) = (
            DrillModel::read(&prior.value, diags),
            DrillModel::read(&planned.value, diags),
        ) else {
            return prior.clone();
        };
        if next.status.is_unknown() {
            // A kept restore of the last run is replaced by this run's, not left beside it.
            self.remove_restored(&last_run);
            self.apply(planned, config, diags).await
        } else {
            State::from(planned.value.clone())
        }
    }

    async fn delete(&self, prior: &State, diags: &mut Diagnostics) {
        if let Some(prior) = DrillModel::read(&prior.value, diags) {
            self.remove_restored(&prior);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_model_matches_the_schema() {
        tfplugin::model::check_model::<DrillModel>(&schema().block).unwrap();
    }

    #[test]
    fn the_identity_model_matches_the_identity_schema() {
        use tfplugin::Resource as _;
        let schema = Drill {
            vaults: Default::default(),
        }
        .identity_schema()
        .unwrap();
        assert_eq!(DrillIdentity::implied_type(), schema.ty());
    }

    fn passed(vault: &str, pair: &str) -> DrillModel {
        DrillModel {
            name: "restore".into(),
            vault_id: vault.into(),
            region_pair_id: pair.into(),
            status: "passed".into(),
            finished_at: "2026-12-01T00:00:00Z".into(),
            max_age: "7d".into(),
            ..DrillModel::default()
        }
    }

    #[test]
    fn a_drill_reruns_for_another_target_or_when_stale_but_not_for_a_new_spelling_of_its_target() {
        let now = dr_vault::clock::parse("2026-12-02T00:00:00Z").unwrap();
        let vault = "s3://dr-eu/p?region=eu-west-1";
        let prior = passed(vault, &format!("prod@{vault}"));
        assert!(!rerun_due(&prior, &prior, now));
        let respelled = "s3://dr-eu/p?endpoint=http://127.0.0.1:9000&region=eu-west-1";
        let options_added = passed(respelled, &format!("prod@{respelled}"));
        assert!(
            !rerun_due(&prior, &options_added, now),
            "the same vault and pair with one more storage option restore the same data"
        );
        let elsewhere = passed("s3://dr-us/p?region=us-east-1", &format!("prod@{vault}"));
        assert!(rerun_due(&prior, &elsewhere, now));
        let later = dr_vault::clock::parse("2026-12-09T00:00:01Z").unwrap();
        assert!(rerun_due(&prior, &prior, later), "older than max_age");
    }
}
