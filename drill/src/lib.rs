//! A restore drill, as `dr_drill`, the `dr_run_drill` action and `drctl drill` run it: restore
//! a snapshot into a private directory, check every restored file against the manifest, run
//! the team's own check inside the tree, measure what was achieved (RTO: how long the restore
//! took; RPO: how old the restored data was) against the targets, and write the report into
//! the vault (`drills/NAME/<started_at>`), where status, the report page, import and the next
//! refresh of a `dr_drill` read it. Problems become the run's failures, never early returns,
//! so every run leaves a whole report.

pub mod check;
pub mod restored;

use dr_vault::{NoProgress, Vault};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Written into a restore directory after a drill, so a later run knows it may empty it.
pub const MARKER: &str = ".dr-drill";

/// The only variables a check inherits from the environment of whoever runs the drill (a
/// provider's or a shell's environment holds the passphrase and cloud credentials).
pub const CHECK_ENV: [&str; 8] = [
    "PATH", "HOME", "USER", "LANG", "LC_ALL", "TZ", "TMPDIR", "SHELL",
];

/// The record a drill's reports are kept under in its vault.
pub fn reports_of(name: &str) -> String {
    format!("drills/{name}")
}

/// Whether `name` can name a drill (its reports are records under `drills/NAME/`).
pub fn is_drill_name(name: &str) -> bool {
    !name.is_empty() && !name.contains('/') && dr_vault::layout::is_record_name(&reports_of(name))
}

impl Run {
    /// Whether this run did what a drill configured with `other`'s run does: the same check
    /// and the same targets (a cron run of the same drill, not an ad-hoc one with laxer
    /// targets), so it may stand as that drill's last run.
    pub fn same_drill_as(&self, other: &Run) -> bool {
        self.name == other.name
            && self.verify_command == other.verify_command
            && self.rpo_target_seconds == other.rpo_target_seconds
            && self.rto_target_seconds == other.rto_target_seconds
    }
}

/// Where a run restores.
#[derive(Debug, Clone)]
pub enum RestoreDir {
    /// This directory: missing, empty, or a previous drill's (which is emptied first).
    Given(PathBuf),
    /// A new owner-only directory `NAME-…` under this work directory.
    PrivateIn(PathBuf),
}

/// What to run.
#[derive(Debug, Clone)]
pub struct Spec {
    pub name: String,
    /// The vault's id as the caller names it (recorded in the report).
    pub vault_id: String,
    /// A snapshot id or unique prefix; `None` is the newest.
    pub snapshot: Option<String>,
    pub rpo: Option<Duration>,
    pub rto: Option<Duration>,
    /// argv run inside the restored tree; none: only the files are checked.
    pub verify_command: Vec<String>,
    pub verify_timeout: Duration,
    pub restore_dir: RestoreDir,
    pub keep_restore: bool,
    /// Variables the check gets beyond the clean environment (`verify_env_wo`); their values
    /// are redacted from what the check prints.
    pub secret_env: BTreeMap<String, String>,
    /// Other values never kept from the check's output (the vault's passphrase).
    pub secrets: Vec<String>,
    /// The caller's settings, recorded with the report (a `dr_drill`'s, for import).
    pub settings: Option<serde_json::Value>,
    /// Run by something else than a `dr_drill` (the action, `drctl drill`): import never
    /// takes its settings.
    pub by_action: bool,
}

/// The outcome of one run, and the report kept in the vault (fields missing from reports of
/// older builds take their defaults).
#[derive(Default, Clone, Debug, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct Run {
    pub name: String,
    pub vault_id: String,
    pub snapshot_id: Option<String>,
    pub snapshot_time: Option<String>,
    pub started_at: String,
    pub finished_at: String,
    pub restore_seconds: f64,
    pub data_age_seconds: u64,
    pub files_verified: u64,
    pub bytes_restored: u64,
    pub rto_target_seconds: Option<u64>,
    pub rpo_target_seconds: Option<u64>,
    pub rto_met: bool,
    pub rpo_met: bool,
    /// Where this run restored (kept only with keep_restore).
    pub restore_dir: Option<PathBuf>,
    pub verify_command: Vec<String>,
    pub verify_exit_code: Option<i32>,
    /// The last 64 KiB of each of stdout and stderr of the check, with the values of secrets
    /// it could have met redacted. Kept in the report written into the vault (encrypted),
    /// never in Terraform state: a check of a restored tree may print what the tree holds.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub verify_output_tail: String,
    pub failures: Vec<String>,
    /// The settings the run had (see [`Spec::settings`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub settings: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub by_action: bool,
    /// Whether this run's report was written into the vault (not part of the report).
    #[serde(skip)]
    pub report_written: bool,
}

impl Run {
    /// A run begun now, before anything was done.
    pub fn begin(spec: &Spec) -> Run {
        Run {
            name: spec.name.clone(),
            vault_id: spec.vault_id.clone(),
            verify_command: spec.verify_command.clone(),
            started_at: format_time(dr_vault::clock::now()),
            rpo_target_seconds: spec.rpo.map(|d| d.as_secs()),
            rto_target_seconds: spec.rto.map(|d| d.as_secs()),
            settings: spec.settings.clone(),
            by_action: spec.by_action,
            ..Run::default()
        }
    }

    /// A run that could not start (no vault, no targets): failed, for `why`. Nothing is
    /// written anywhere.
    pub fn failed_to_start(spec: &Spec, why: String) -> Run {
        let mut run = Run::begin(spec);
        run.failures.push(why);
        run.finished_at = format_time(dr_vault::clock::now());
        run
    }

    pub fn passed(&self) -> bool {
        self.failures.is_empty()
    }

    /// One line for people: what was restored, how fast, how old; or why it failed.
    pub fn summary(&self) -> String {
        format!(
            "drill {:?} {}: snapshot {} restored in {:.1}s ({} files verified), data {}s old",
            self.name,
            if self.passed() { "passed" } else { "failed" },
            self.snapshot_id
                .as_deref()
                .map_or("-", |id| &id[..12.min(id.len())]),
            self.restore_seconds,
            self.files_verified,
            self.data_age_seconds,
        )
    }
}

/// Runs the drill against `vault` and writes its report there.
pub async fn run(vault: &Vault, spec: &Spec) -> Run {
    let mut run = Run::begin(spec);
    if let Err(e) = restore_and_check(vault, spec, &mut run).await {
        run.failures.push(e);
    }
    // The restored tree holds decrypted data: gone on every path unless asked to keep it.
    if !spec.keep_restore {
        if let Some(dir) = run.restore_dir.take() {
            if dir.join(MARKER).is_file() || dir.read_dir().is_ok_and(|mut d| d.next().is_none()) {
                let _ = std::fs::remove_dir_all(dir);
            }
        }
    }
    run.rto_met = spec
        .rto
        .is_none_or(|t| run.restore_seconds <= t.as_secs_f64());
    run.rpo_met = spec.rpo.is_none_or(|t| run.data_age_seconds <= t.as_secs());
    if run.snapshot_id.is_some() {
        if !run.rto_met {
            run.failures.push(format!(
                "restore took {:.1}s, more than the rto of {}s",
                run.restore_seconds,
                run.rto_target_seconds.unwrap_or_default()
            ));
        }
        if !run.rpo_met {
            run.failures.push(format!(
                "the restored data is {}s old, more than the rpo of {}s",
                run.data_age_seconds,
                run.rpo_target_seconds.unwrap_or_default()
            ));
        }
    }
    run.finished_at = format_time(dr_vault::clock::now());
    if let Ok(report) = serde_json::to_value(&run) {
        // The start time first (names sort as runs started), then a few random characters:
        // two runs started in the same second (a cron run and an apply) keep both reports.
        let key = format!(
            "{}/{}-{}",
            reports_of(&run.name),
            run.started_at.replace(':', "-"),
            &dr_vault::crypto::random_id()[..8]
        );
        match vault.put_record(&key, &report).await {
            Ok(()) => run.report_written = true,
            Err(e) => run
                .failures
                .push(format!("cannot write the report into the vault: {e}")),
        }
    }
    run
}

async fn restore_and_check(vault: &Vault, spec: &Spec, run: &mut Run) -> Result<(), String> {
    let wanted = spec.snapshot.as_deref().unwrap_or("latest");
    let id = vault
        .resolve_snapshot(wanted)
        .await
        .map_err(|e| e.to_string())?;
    let snapshot = vault.load_snapshot(&id).await.map_err(|e| e.to_string())?;
    run.snapshot_id = Some(id.clone());
    run.snapshot_time = Some(snapshot.time.clone());
    if let Some(t) = dr_vault::clock::parse(&snapshot.time) {
        run.data_age_seconds = (dr_vault::clock::now() - t).whole_seconds().max(0) as u64;
    }
    let dir = prepare_restore_dir(&spec.restore_dir, &spec.name)?;
    run.restore_dir = Some(dir.clone());
    let started = Instant::now();
    let restored = vault.restore(&id, &dir, None, &NoProgress).await;
    run.restore_seconds = started.elapsed().as_secs_f64();
    // Created new (O_EXCL never follows a symlink a snapshot might have planted there).
    let _ = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(dir.join(MARKER))
        .and_then(|mut f| {
            std::io::Write::write_all(&mut f, b"restored by a drill; emptied by the next run\n")
        });
    let summary = restored.map_err(|e| format!("restore failed: {e}"))?;
    run.bytes_restored = summary.bytes;

    // Every file against the manifest's whole-file digest.
    let checked = restored::check_files(&snapshot, &dir, None);
    run.files_verified = checked.matched;
    if let Some(first) = checked.mismatched.first() {
        return Err(format!("{first} does not match the manifest"));
    }
    if !spec.verify_command.is_empty() {
        verify_command(spec, &dir, &id, run).await?;
    }
    Ok(())
}

async fn verify_command(spec: &Spec, dir: &Path, id: &str, run: &mut Run) -> Result<(), String> {
    // A clean environment: the caller's holds the passphrase, cloud credentials and
    // TF_VAR_* values, none of which a check of the restored tree needs.
    let mut env: Vec<(String, String)> = std::env::vars()
        .filter(|(k, _)| CHECK_ENV.contains(&k.as_str()))
        .collect();
    env.push(("DR_RESTORE_DIR".into(), dir.display().to_string()));
    env.push(("DR_SNAPSHOT_ID".into(), id.to_string()));
    env.extend(spec.secret_env.iter().map(|(k, v)| (k.clone(), v.clone())));
    // The check cannot see the passphrase, but the restored tree may hold it (a tfvars file
    // it prints); it sees the secret variables, and may print them.
    let secrets: Vec<String> = spec
        .secrets
        .iter()
        .chain(spec.secret_env.values())
        .filter(|v| !v.is_empty())
        .cloned()
        .collect();
    let timeout = spec.verify_timeout;
    let outcome = check::Check {
        argv: &spec.verify_command,
        dir,
        env,
        timeout,
        secrets,
    }
    .run()
    .await?;
    run.verify_output_tail = outcome.output_tail;
    run.verify_exit_code = outcome.exit_code;
    match outcome.exit_code {
        _ if outcome.timed_out => Err(format!(
            "verify_command did not finish within verify_timeout ({}s); it and every process it started were killed",
            timeout.as_secs()
        )),
        Some(0) => Ok(()),
        Some(code) => Err(format!("verify_command exited with {code}")),
        None => Err("verify_command was killed by a signal".to_string()),
    }
}

/// Where a run restores, made ready and owner-only (the tree holds decrypted data).
fn prepare_restore_dir(restore_dir: &RestoreDir, name: &str) -> Result<PathBuf, String> {
    use std::os::unix::fs::DirBuilderExt as _;
    match restore_dir {
        RestoreDir::Given(dir) => {
            let dir = std::path::absolute(dir).unwrap_or_else(|_| dir.clone());
            empty_restore_dir(&dir)?;
            std::fs::DirBuilder::new()
                .mode(0o700)
                .create(&dir)
                .map_err(|e| format!("cannot create restore_dir {}: {e}", dir.display()))?;
            Ok(dir)
        }
        RestoreDir::PrivateIn(work_dir) => restored::new_private_dir(work_dir, name),
    }
}

/// Empties a restore directory: it must be missing, empty, or a previous drill's.
pub fn empty_restore_dir(dir: &Path) -> Result<(), String> {
    match std::fs::read_dir(dir) {
        Err(_) => {}
        Ok(mut entries) => {
            if entries.next().is_some() {
                if !dir.join(MARKER).is_file() {
                    return Err(format!(
                        "restore_dir {} is not empty and was not made by a drill; refusing to empty it. \
                         Choose an empty or new directory.",
                        dir.display()
                    ));
                }
                std::fs::remove_dir_all(dir)
                    .map_err(|e| format!("cannot empty {}: {e}", dir.display()))?;
            } else {
                std::fs::remove_dir(dir)
                    .map_err(|e| format!("cannot prepare {}: {e}", dir.display()))?;
            }
        }
    }
    if let Some(parent) = dir.parent() {
        std::fs::create_dir_all(parent)
            .map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
    }
    Ok(())
}

/// RFC 3339 UTC to the second: how a run's times are written (its report's name holds its
/// start time).
pub fn format_time(t: time::OffsetDateTime) -> String {
    let format =
        time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z");
    t.to_offset(time::UtcOffset::UTC)
        .format(&format)
        .unwrap_or_default()
}
