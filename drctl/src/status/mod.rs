//! `drctl status`: DR posture from Terraform state and the vaults themselves. The state says
//! what exists and its targets; the vaults say how things are now: each vault's newest
//! snapshot, each pair's replication lag against its rpo, each drill's last run (the newer of
//! the state's and the report the drill wrote into its vault) against its max_age and targets.

mod report;

use crate::cli::{StatusArgs, StatusFormat};
use crate::output::{self, CliError, Outcome};
use crate::tfstate::{self, Resource};
use crate::vault::Context;
use dr_vault::{parse_duration, Storage, Vault};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use time::OffsetDateTime;

/// State files larger than this are refused rather than read into memory.
const MAX_STATE_BYTES: u64 = 512 << 20;

#[derive(Debug, serde::Serialize)]
pub struct Posture {
    pub checked_at: String,
    pub vaults: Vec<VaultStatus>,
    pub pairs: Vec<PairStatus>,
    pub drills: Vec<DrillStatus>,
    /// Every out-of-policy finding, each naming its resource.
    pub problems: Vec<String>,
}

#[derive(Debug, serde::Serialize)]
pub struct VaultStatus {
    pub address: String,
    pub name: String,
    pub region: String,
    pub url: String,
    pub reachable: bool,
    pub snapshots: usize,
    pub latest_snapshot_id: Option<String>,
    pub latest_snapshot_at: Option<String>,
    pub latest_snapshot_age_seconds: Option<u64>,
    pub ok: bool,
}

#[derive(Debug, serde::Serialize)]
pub struct PairStatus {
    pub address: String,
    pub name: String,
    pub active: String,
    pub active_vault: String,
    pub standby_vault: String,
    pub rpo_seconds: Option<u64>,
    pub rto_seconds: Option<u64>,
    /// Age of the oldest active-side snapshot the standby lacks; 0 when in sync.
    pub replication_lag_seconds: Option<u64>,
    pub in_sync: Option<bool>,
    pub ok: bool,
}

#[derive(Debug, serde::Serialize)]
pub struct DrillStatus {
    pub address: String,
    pub name: String,
    pub vault: String,
    pub status: Option<String>,
    pub finished_at: Option<String>,
    pub age_seconds: Option<u64>,
    pub max_age_seconds: Option<u64>,
    pub restore_seconds: Option<f64>,
    pub data_age_seconds: Option<u64>,
    pub rto_met: Option<bool>,
    pub rpo_met: Option<bool>,
    /// Where the last run was read from: `vault` (its report) or `state`.
    pub from: String,
    pub ok: bool,
}

pub async fn run(args: StatusArgs) -> Outcome {
    let resources = dr_resources(args.state.as_deref(), args.dir.as_deref())?;
    // Status opens many vaults by the ids the state records, not one by URL.
    let ctx = Context::new(String::new(), &args.access, false);
    let passphrase = ctx.passphrase()?;
    let mut vaults = Vaults::new(passphrase, ctx.options.clone());
    let posture = gather(&resources, &mut vaults).await;
    let format = if args.output.json {
        StatusFormat::Json
    } else {
        args.format
    };
    match format {
        StatusFormat::Table => print!("{}", report::table(&posture)),
        StatusFormat::Json => output::json(&posture)?,
        StatusFormat::Prometheus => print!("{}", report::prometheus(&posture)),
    }
    // The problems are the output: no `error:` line, exit 1.
    Ok(if posture.problems.is_empty() {
        output::EXIT_OK
    } else {
        output::EXIT_FAILURE
    })
}

/// The resources of the state `status`, `report` and `runbook` read (`--state` or `--dir`),
/// which must hold some of this provider's; else the usage error each of them gives.
pub(crate) fn dr_resources(
    state: Option<&std::path::Path>,
    dir: Option<&std::path::Path>,
) -> Result<Vec<Resource>, CliError> {
    let resources = resources_of(state, dir).map_err(|message| {
        CliError::usage(
            message,
            "pass --state FILE (a state file or `terraform show -json` output) or --dir DIR of an initialised root module",
        )
    })?;
    if !resources.iter().any(|r| r.kind.starts_with("dr_")) {
        return Err(CliError::usage(
            "the state holds no dr_* resources",
            "point --state or --dir at the root module that manages the vaults",
        ));
    }
    Ok(resources)
}

/// The resources of a state file (`state`) or of the root module `dir`'s state.
fn resources_of(
    state: Option<&std::path::Path>,
    dir: Option<&std::path::Path>,
) -> Result<Vec<Resource>, String> {
    match (state, dir) {
        (Some(path), None) => {
            let len = std::fs::metadata(path)
                .map_err(|e| format!("cannot read {}: {e}", path.display()))?
                .len();
            if len > MAX_STATE_BYTES {
                return Err(format!(
                    "{} is {len} bytes, more than the {} MiB drctl reads; it is not a state file",
                    path.display(),
                    MAX_STATE_BYTES >> 20
                ));
            }
            let bytes =
                std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            tfstate::resources(&bytes, &path.display().to_string())
        }
        (None, Some(dir)) => {
            let terraform = crate::tfstate::terraform_bin();
            let out = std::process::Command::new(&terraform)
                .args(["show", "-json"])
                .current_dir(dir)
                .env("TF_IN_AUTOMATION", "1")
                .output()
                .map_err(|e| format!("cannot run {terraform:?} show -json in {}: {e} (set TERRAFORM to its path)", dir.display()))?;
            if !out.status.success() {
                return Err(format!(
                    "`terraform show -json` failed in {}: {}",
                    dir.display(),
                    String::from_utf8_lossy(&out.stderr).trim()
                ));
            }
            tfstate::resources(
                &out.stdout,
                &format!("`terraform show -json` in {}", dir.display()),
            )
        }
        _ => Err("give exactly one of --state FILE or --dir DIR".to_string()),
    }
}

/// Vaults opened once each (one key derivation per vault), by URL.
pub(crate) struct Vaults {
    passphrase: dr_vault::Passphrase,
    options: BTreeMap<String, String>,
    open: HashMap<String, Result<Arc<Vault>, String>>,
}

impl Vaults {
    pub(crate) fn new(
        passphrase: dr_vault::Passphrase,
        options: BTreeMap<String, String>,
    ) -> Vaults {
        Vaults {
            passphrase,
            options,
            open: HashMap::new(),
        }
    }

    /// Opens `url` (a vault id, with its options as a query) with the vault resource's own
    /// storage options over those, over --option's.
    pub(crate) async fn get(
        &mut self,
        url: &str,
        own: Option<&serde_json::Value>,
    ) -> Result<Arc<Vault>, String> {
        if let Some(v) = self.open.get(url) {
            return v.clone();
        }
        let own = own.map(crate::tfstate::string_map).unwrap_or_default();
        let cwd = std::env::current_dir().unwrap_or_default();
        let opened = match Storage::open_with_defaults(url, &self.options, &own, &cwd, false) {
            Ok(storage) => Vault::open(storage, &self.passphrase)
                .await
                .map(Arc::new)
                .map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        self.open.insert(url.to_string(), opened.clone());
        opened
    }
}

pub(crate) async fn gather(resources: &[Resource], vaults: &mut Vaults) -> Posture {
    let now = dr_vault::clock::now();
    let of_kind = |kind: &'static str| resources.iter().filter(move |r| r.kind == kind);
    let mut gathering = Gathering {
        now,
        problems: Vec::new(),
        vaults,
        options_of: of_kind("dr_backup_vault")
            .filter_map(|r| Some((r.str("id")?, &r.values["storage_options"])))
            .collect(),
    };
    // In this order: the vaults' rows open each vault once; pairs and drills reuse them.
    let mut posture = Posture {
        checked_at: now
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default(),
        vaults: Vec::new(),
        pairs: Vec::new(),
        drills: Vec::new(),
        problems: Vec::new(),
    };
    for r in of_kind("dr_backup_vault") {
        posture.vaults.push(gathering.vault(r).await);
    }
    for r in of_kind("dr_region_pair") {
        posture.pairs.push(gathering.pair(r).await);
    }
    for r in of_kind("dr_drill") {
        posture.drills.push(gathering.drill(r).await);
    }
    posture.problems = gathering.problems;
    posture
}

/// What one status run looks at, and the problems found so far (vaults first, then pairs,
/// then drills).
struct Gathering<'a> {
    now: OffsetDateTime,
    problems: Vec<String>,
    vaults: &'a mut Vaults,
    /// Each vault resource's own storage options, by its id.
    options_of: HashMap<&'a str, &'a serde_json::Value>,
}

impl Gathering<'_> {
    fn problem(&mut self, r: &Resource, what: String) {
        self.problems.push(format!("{}: {what}", r.address));
    }

    async fn open(&mut self, url: &str) -> Result<Arc<Vault>, String> {
        let own = self.options_of.get(url).copied();
        self.vaults.get(url, own).await
    }

    /// A vault: reachable, and its newest snapshot.
    async fn vault(&mut self, r: &Resource) -> VaultStatus {
        let url = r.str("id").unwrap_or_default().to_string();
        let mut row = VaultStatus {
            address: r.address.clone(),
            name: r.str("name").unwrap_or_default().to_string(),
            region: r.str("region").unwrap_or_default().to_string(),
            url: url.clone(),
            reachable: false,
            snapshots: 0,
            latest_snapshot_id: None,
            latest_snapshot_at: None,
            latest_snapshot_age_seconds: None,
            ok: false,
        };
        let opened = self
            .vaults
            .get(&url, Some(&r.values["storage_options"]))
            .await;
        match opened {
            Err(e) => self.problem(r, format!("cannot open the vault: {e}")),
            Ok(vault) => match vault.snapshots().await {
                Err(e) => self.problem(r, format!("cannot list snapshots: {e}")),
                Ok(snapshots) => {
                    row.reachable = true;
                    row.snapshots = snapshots.len();
                    if let Some(latest) = dr_vault::latest_of(&snapshots) {
                        row.latest_snapshot_id = Some(latest.id.clone());
                        row.latest_snapshot_at = Some(dr_vault::clock::rfc3339_nanos(latest.time));
                        row.latest_snapshot_age_seconds = Some(latest.age(self.now).as_secs());
                    }
                    row.ok = true;
                }
            },
        }
        row
    }

    /// A region pair: the standby's lag against the rpo.
    async fn pair(&mut self, r: &Resource) -> PairStatus {
        let primary = r.str("primary_vault_id").unwrap_or_default();
        let secondary = r.str("secondary_vault_id").unwrap_or_default();
        let active = r.str("active").unwrap_or("primary").to_string();
        let (active_url, standby_url) = if active == "secondary" {
            (secondary, primary)
        } else {
            (primary, secondary)
        };
        let rpo = r.str("rpo").and_then(seconds);
        let mut row = PairStatus {
            address: r.address.clone(),
            name: r.str("name").unwrap_or_default().to_string(),
            active: active.clone(),
            active_vault: active_url.to_string(),
            standby_vault: standby_url.to_string(),
            rpo_seconds: rpo,
            rto_seconds: r.str("rto").and_then(seconds),
            replication_lag_seconds: None,
            in_sync: None,
            ok: false,
        };
        let active_vault = self.open(active_url).await;
        let standby_vault = self.open(standby_url).await;
        let (a, s) = match (active_vault, standby_vault) {
            (Err(e), _) => {
                self.problem(
                    r,
                    format!("the active vault ({active}) cannot be opened: {e}"),
                );
                return row;
            }
            (_, Err(e)) => {
                self.problem(r, format!("the standby vault cannot be opened: {e}"));
                return row;
            }
            (Ok(a), Ok(s)) => (a, s),
        };
        let plan = match a.plan_replication(&s).await {
            Ok(plan) => plan,
            Err(e) => {
                self.problem(r, format!("cannot compare the vaults: {e}"));
                return row;
            }
        };
        let lag = plan.lag(self.now).as_secs();
        row.replication_lag_seconds = Some(lag);
        row.in_sync = Some(plan.in_sync());
        row.ok = rpo.is_none_or(|rpo| lag <= rpo);
        if !plan.unreadable.is_empty() {
            let names: Vec<&str> = plan.unreadable.iter().map(|p| p.object.as_str()).collect();
            self.problem(
                r,
                format!(
                    "{} snapshot manifest(s) of the active vault do not open and cannot be replicated: {} (run `drctl vault verify`)",
                    names.len(),
                    names.join(", ")
                ),
            );
        }
        if !row.ok {
            self.problem(
                r,
                format!(
                    "the standby lags {} behind, more than the rpo of {} ({} snapshots to replicate)",
                    human(lag),
                    human(rpo.unwrap_or_default()),
                    plan.to_copy.len()
                ),
            );
        }
        row
    }

    /// A drill: its last run (the newer of the state's and the vault's report) against its
    /// max_age and targets.
    async fn drill(&mut self, r: &Resource) -> DrillStatus {
        let url = r.str("vault_id").unwrap_or_default().to_string();
        let name = r.str("name").unwrap_or_default().to_string();
        let mut row = drill_from_state(r);
        // The vault's reports survive the state and include runs from other workspaces.
        if let Ok(vault) = self.open(&url).await {
            if let Ok(reports) = vault.records(&format!("drills/{name}")).await {
                if let Some((_, newest)) = reports.iter().max_by(|a, b| {
                    a.1["finished_at"]
                        .as_str()
                        .cmp(&b.1["finished_at"].as_str())
                }) {
                    if newest["finished_at"].as_str() > row.finished_at.as_deref() {
                        apply_report(&mut row, newest);
                    }
                }
            }
        }
        row.age_seconds = row.finished_at.as_deref().and_then(|t| age(self.now, t));
        let mut why = Vec::new();
        match row.status.as_deref() {
            Some("passed") => {}
            Some(other) => why.push(format!("the last run {other}")),
            None => why.push("it never ran".to_string()),
        }
        if let (Some(age), Some(max)) = (row.age_seconds, row.max_age_seconds) {
            if age > max {
                why.push(format!(
                    "the last run is {} old, more than max_age {}",
                    human(age),
                    human(max)
                ));
            }
        }
        if row.rto_met == Some(false) {
            why.push("the restore missed the rto".to_string());
        }
        if row.rpo_met == Some(false) {
            why.push("the restored data was older than the rpo".to_string());
        }
        row.ok = why.is_empty();
        for w in why {
            self.problem(r, w);
        }
        row
    }
}

fn drill_from_state(r: &Resource) -> DrillStatus {
    let v = &r.values;
    DrillStatus {
        address: r.address.clone(),
        name: r.str("name").unwrap_or_default().to_string(),
        vault: r.str("vault_id").unwrap_or_default().to_string(),
        status: r.str("status").map(str::to_string),
        finished_at: r.str("finished_at").map(str::to_string),
        age_seconds: None,
        max_age_seconds: r.str("max_age").and_then(seconds),
        restore_seconds: v["restore_seconds"].as_f64(),
        data_age_seconds: v["data_age_seconds"].as_u64(),
        rto_met: v["rto_met"].as_bool(),
        rpo_met: v["rpo_met"].as_bool(),
        from: "state".to_string(),
        ok: false,
    }
}

/// A drill report as dr_drill writes it into the vault (`drills/NAME/<time>`).
fn apply_report(row: &mut DrillStatus, report: &serde_json::Value) {
    let passed = report["failures"].as_array().is_some_and(Vec::is_empty);
    row.status = Some(if passed { "passed" } else { "failed" }.to_string());
    row.finished_at = report["finished_at"].as_str().map(str::to_string);
    row.restore_seconds = report["restore_seconds"].as_f64();
    row.data_age_seconds = report["data_age_seconds"].as_u64();
    row.rto_met = report["rto_met"].as_bool();
    row.rpo_met = report["rpo_met"].as_bool();
    row.from = "vault".to_string();
}

fn seconds(text: &str) -> Option<u64> {
    parse_duration(text, "duration").ok().map(|d| d.as_secs())
}

fn age(now: OffsetDateTime, rfc3339: &str) -> Option<u64> {
    let t = dr_vault::clock::parse(rfc3339)?;
    Some((now - t).whole_seconds().max(0) as u64)
}

/// `1h30m`-style durations for people.
pub fn human(secs: u64) -> String {
    humantime::format_duration(std::time::Duration::from_secs(secs)).to_string()
}
