//! `dr_region_pair`: two vaults in two regions, one active, the other the standby that
//! receives every snapshot of the active side. Refresh measures the standby's lag; a plan
//! shows `in_sync` going back to true when the standby lacks snapshots, and apply copies only
//! what is missing. Setting `active = "secondary"` is a failover: it succeeds even when the
//! primary is gone, and warns how much time of backups that loses when it exceeds `rpo`.

use crate::backup_vault::{duration_validator, name_validator};
use crate::vaults::{
    duration_attr, engine_diagnostic, format_time, is_unreachable, parse_time, same_place,
    unreachable_warning, Vaults,
};
use dr_vault::{NoProgress, Vault};
use std::sync::Arc;
use std::time::Duration;
use tfplugin::{
    async_trait, validators, Attribute, AttributePath, Block, Diagnostic, Diagnostics, Plan,
    Resource, Schema, State, Type, Value,
};

pub struct RegionPair {
    pub vaults: Arc<Vaults>,
}

fn schema() -> Schema {
    Schema::new(
        0,
        Block::new(vec![
            Attribute::required("name", Type::String)
                .requires_replace()
                .validator(name_validator())
                .description("The pair's name, recorded in both vaults."),
            // Both replace the pair only when they point at another vault, not when the id
            // of the same vault changes its options (see modify_plan).
            Attribute::required("primary_vault_id", Type::String)
                .description(
                    "The primary vault: a `dr_backup_vault`'s `id` (or any vault URL, with its storage options as a query). \
                     Pointing it at another vault replaces the pair.",
                ),
            Attribute::required("secondary_vault_id", Type::String)
                .description("The secondary vault, in another region. Pointing it at another vault replaces the pair."),
            Attribute::optional("strategy", Type::String)
                .default("backup_restore")
                .validator(validators::one_of(&["backup_restore", "pilot_light", "warm_standby", "active_active"]))
                .description("`backup_restore`, `pilot_light`, `warm_standby` or `active_active`."),
            Attribute::required("rpo", Type::String)
                .validator(duration_validator())
                .description("Recovery point objective: how much time of backups may be lost, e.g. `15m`."),
            Attribute::required("rto", Type::String)
                .validator(duration_validator())
                .description("Recovery time objective: how long a restore may take, e.g. `1h`."),
            Attribute::optional("active", Type::String)
                .default("primary")
                .validator(validators::one_of(&["primary", "secondary"]))
                .description(
                    "The side that takes snapshots and replicates to the other. Changing it is a failover (or failback) \
                     and reverses replication; it succeeds when the other side is gone.",
                ),
            Attribute::optional("replicate_snapshot_id", Type::String).description(
                "A snapshot that must be on the standby after apply. Reference `dr_backup_vault.X.latest_snapshot_id` \
                 so a snapshot taken in the same apply is replicated in that apply.",
            ),
            Attribute::computed("id", Type::String)
                .use_state_for_unknown()
                .description("`NAME@PRIMARY_VAULT_ID`, also the import ID."),
            Attribute::computed("primary_region", Type::String).description("Read from the primary vault."),
            Attribute::computed("secondary_region", Type::String).description("Read from the secondary vault."),
            Attribute::computed("standby_latest_snapshot_id", Type::String)
                .description("The newest snapshot on the standby side."),
            Attribute::computed("last_replicated_at", Type::String)
                .description("When this resource last replicated (RFC 3339, UTC)."),
            Attribute::computed("replication_lag_seconds", Type::Number).description(
                "Age of the oldest active-side snapshot missing on the standby; 0 when in sync.",
            ),
            Attribute::computed("in_sync", Type::Bool)
                .description("Whether the standby holds every snapshot of the active side."),
        ])
        .description("A primary and a secondary vault in two regions, with RPO/RTO targets, replication and failover."),
    )
}

/// The error for two vaults in one region, at plan time and again at apply (a pair created
/// with its vaults cannot be checked before they exist).
fn same_region(region: &str, one: &str, other: &str) -> Diagnostic {
    Diagnostic::error(
        "Vaults In The Same Region",
        format!(
            "Both vaults are in region {region:?} ({one} and {other}). A region pair protects against the loss of a \
             region only when its vaults are in different regions."
        ),
    )
    .at(AttributePath::attr("secondary_vault_id"))
}

/// Which attribute names the active and the standby vault.
fn sides(value: &Value) -> (&'static str, &'static str) {
    if value.attr("active").as_str() == Some("secondary") {
        ("secondary_vault_id", "primary_vault_id")
    } else {
        ("primary_vault_id", "secondary_vault_id")
    }
}

/// The replication status between two open vaults.
struct Status {
    standby_latest: Option<String>,
    lag_seconds: u64,
    in_sync: bool,
}

async fn status(active: &Vault, standby: &Vault) -> Result<Status, dr_vault::Error> {
    let plan = active.plan_replication(standby).await?;
    Ok(Status {
        standby_latest: standby.snapshots().await?.pop().map(|s| s.id),
        lag_seconds: plan.lag(dr_vault::clock::now()).as_secs(),
        in_sync: plan.in_sync(),
    })
}

impl RegionPair {
    async fn open(&self, value: &Value, attr: &str) -> Result<Option<Arc<Vault>>, Diagnostic> {
        let url = value.attr(attr).as_str().unwrap_or_default();
        self.vaults
            .open(url, &Default::default(), &AttributePath::attr(attr))
            .await
    }

    /// Fills regions and replication status from whatever vaults are reachable.
    async fn refresh(&self, state: &mut Value, diags: &mut Diagnostics) {
        let (active_attr, standby_attr) = sides(state);
        let primary = self.open(state, "primary_vault_id").await;
        let secondary = self.open(state, "secondary_vault_id").await;
        for (attr, region_attr, opened) in [
            ("primary_vault_id", "primary_region", &primary),
            ("secondary_vault_id", "secondary_region", &secondary),
        ] {
            match opened {
                Ok(Some(v)) => state.set_attr(region_attr, Value::string(&v.config().region)),
                Ok(None) => {}
                Err(d) => diags.push(Diagnostic::warning(
                    crate::vaults::UNREACHABLE,
                    format!(
                        "{attr}: {}\nThe pair's state keeps what it last knew.",
                        d.detail
                    ),
                )),
            }
        }
        let by_attr = |a: &str| {
            if a == "primary_vault_id" {
                &primary
            } else {
                &secondary
            }
        };
        if let (Ok(Some(active)), Ok(Some(standby))) = (by_attr(active_attr), by_attr(standby_attr))
        {
            match status(active, standby).await {
                Ok(s) => {
                    state.set_attr(
                        "standby_latest_snapshot_id",
                        s.standby_latest.map_or(Value::Null, Value::string),
                    );
                    state.set_attr("replication_lag_seconds", Value::number(s.lag_seconds));
                    state.set_attr("in_sync", Value::Bool(s.in_sync));
                }
                Err(e) => {
                    let d = engine_diagnostic("Cannot Compare Vaults", &e);
                    diags.push(if is_unreachable(&d) {
                        unreachable_warning(&d, "The replication status keeps what it last knew.")
                    } else {
                        d
                    });
                }
            }
        }
    }

    /// Replicates the active side to the standby (or, in a failover with the other side
    /// gone, records the data loss) and records the pair in both vaults.
    async fn converge(
        &self,
        state: &mut Value,
        prior_replicated_at: &Value,
        diags: &mut Diagnostics,
    ) {
        let (active_attr, standby_attr) = sides(state);
        let active = match self.open(state, active_attr).await {
            Ok(Some(v)) => v,
            Ok(None) => {
                diags.error_at(
                    AttributePath::attr(active_attr),
                    "Active Vault Not Found",
                    format!(
                        "The active side's vault {} does not exist, so nothing can be replicated from it. \
                         Fail over with active = \"{}\".",
                        state.attr(active_attr).as_str().unwrap_or_default(),
                        if active_attr == "primary_vault_id" { "secondary" } else { "primary" }
                    ),
                );
                return;
            }
            Err(d) => {
                diags.push(d);
                return;
            }
        };
        let primary_is_standby = active_attr == "secondary_vault_id";
        // The plan promised a standby in sync: one that stopped answering since cannot keep
        // that promise, and saying so beats a state that contradicts the plan.
        let promised_in_sync = state.attr("in_sync").as_bool() == Some(true);
        let mut standby_dark = false;
        let standby = match self.open(state, standby_attr).await {
            Ok(v) => v,
            Err(d) if is_unreachable(&d) && promised_in_sync => {
                diags.push(d.at(AttributePath::attr(standby_attr)));
                return;
            }
            // A failover must succeed with the old active side unreachable, not only gone;
            // and a standby whose region is dark is caught up once it answers again.
            Err(d) if is_unreachable(&d) => {
                standby_dark = true;
                diags.push(unreachable_warning(
                    &d,
                    &format!(
                        "Replication to the standby ({standby_attr}) is skipped; the first apply after it answers again \
                         catches it up from the active side."
                    ),
                ));
                None
            }
            // Answering, but not usable (refused credentials, a server error): in a failover,
            // the old active side is as good as gone.
            Err(d) if primary_is_standby => {
                diags.warning(
                    "Primary Unavailable",
                    format!("{} Failing over without it.", d.detail),
                );
                None
            }
            Err(d) => {
                diags.push(d);
                return;
            }
        };
        if standby.is_none() && !primary_is_standby && !standby_dark {
            diags.error_at(
                AttributePath::attr(standby_attr),
                "Standby Vault Not Found",
                format!(
                    "The standby vault {} does not exist, so the active side cannot be replicated. \
                     Create it (a dr_backup_vault), or fail over with active = \"secondary\" if the primary is the one lost.",
                    state.attr(standby_attr).as_str().unwrap_or_default()
                ),
            );
            return;
        }
        if let Some(standby) = &standby {
            if active.config().region == standby.config().region {
                diags.push(same_region(
                    &active.config().region,
                    active.storage().url(),
                    standby.storage().url(),
                ));
                return;
            }
        }
        match &standby {
            Some(standby) => {
                let result = async {
                    let plan = active.plan_replication(standby).await?;
                    let mut unreadable = plan.unreadable.clone();
                    if !plan.to_copy.is_empty() {
                        let done = active.replicate(standby, &plan, &NoProgress).await?;
                        unreadable.extend(done.unreadable);
                        let report = standby.verify(false, &NoProgress).await?;
                        if let Some(p) = report.problems.first() {
                            return Err(dr_vault::Error::new(
                                dr_vault::ErrorKind::Corrupt,
                                format!(
                                    "after replication the standby does not verify: {}: {}",
                                    p.object, p.message
                                ),
                            ));
                        }
                    }
                    Ok(unreadable)
                }
                .await;
                match result {
                    Err(e) => {
                        diags.push(
                            engine_diagnostic("Replication Failed", &e)
                                .at(AttributePath::attr(standby_attr)),
                        );
                        return;
                    }
                    // Everything else was copied; what cannot be is named, not hidden.
                    Ok(unreadable) if !unreadable.is_empty() => {
                        let names: Vec<&str> =
                            unreadable.iter().map(|p| p.object.as_str()).collect();
                        diags.warning(
                            "Snapshots Not Replicated",
                            format!(
                                "{} snapshot manifest(s) of {} do not open and were not replicated: {}. \
                                 Run `drctl vault verify` on that vault to see why.",
                                names.len(),
                                active.storage().url(),
                                names.join(", ")
                            ),
                        );
                    }
                    Ok(_) => {}
                }
                if let Some(wanted) = state.attr("replicate_snapshot_id").as_str() {
                    if let Err(e) = standby.resolve_snapshot(wanted).await {
                        diags.push(
                            engine_diagnostic("Snapshot Not On Standby", &e)
                                .at(AttributePath::attr("replicate_snapshot_id")),
                        );
                        return;
                    }
                }
            }
            None if standby_dark && !primary_is_standby => {}
            None => self.warn_about_data_loss(state, &active, diags).await,
        }
        let record = serde_json::json!({
            "name": state.attr("name").as_str(),
            "primary_vault_id": state.attr("primary_vault_id").as_str(),
            "secondary_vault_id": state.attr("secondary_vault_id").as_str(),
            "strategy": state.attr("strategy").as_str(),
            "rpo": state.attr("rpo").as_str(),
            "rto": state.attr("rto").as_str(),
            "active": state.attr("active").as_str(),
            "replicate_snapshot_id": state.attr("replicate_snapshot_id").as_str(),
        });
        let name = format!("pairs/{}", state.attr("name").as_str().unwrap_or_default());
        for vault in std::iter::once(&active).chain(standby.as_ref()) {
            if let Err(e) = vault.put_record(&name, &record).await {
                diags.push(engine_diagnostic("Cannot Record The Pair", &e));
            }
        }
        let replicated_at = if standby.is_some() {
            Value::string(format_time(dr_vault::clock::now()))
        } else {
            prior_replicated_at.clone()
        };
        state.set_attr("last_replicated_at", replicated_at);
        self.refresh(state, diags).await;
        if standby_dark {
            // What the standby holds is not known while it does not answer.
            state.set_attr("standby_latest_snapshot_id", Value::Null);
            state.set_attr("in_sync", Value::Bool(false));
            state.set_attr("replication_lag_seconds", Value::Null);
        } else if standby.is_none() {
            // The standby side is gone: the active side's snapshots exist nowhere else.
            state.set_attr("standby_latest_snapshot_id", Value::Null);
            state.set_attr("in_sync", Value::Bool(false));
            state.set_attr("replication_lag_seconds", Value::number(0u64));
        }
    }

    /// A failover with the old active side gone: everything after the new active side's
    /// newest snapshot is lost. Warn when that exceeds the RPO.
    async fn warn_about_data_loss(&self, state: &Value, active: &Vault, diags: &mut Diagnostics) {
        let newest = active.snapshots().await.ok().and_then(|mut s| s.pop());
        let age = newest.as_ref().and_then(|s| parse_time(&s.time)).map(|t| {
            Duration::from_secs((dr_vault::clock::now() - t).whole_seconds().max(0) as u64)
        });
        let rpo = duration_attr(state, "rpo");
        if let (Some(age), Some(rpo)) = (age, rpo) {
            if age > rpo {
                diags.warning(
                    "Failover Exceeds RPO",
                    format!(
                        "The other side is unreachable. The newest snapshot on the new active side is {} old, more than the rpo \
                         of {}: up to {} of backups taken after it are lost.",
                        humantime::format_duration(age),
                        state.attr("rpo").as_str().unwrap_or_default(),
                        humantime::format_duration(age),
                    ),
                );
            }
        } else if newest.is_none() {
            diags.warning(
                "Failover Without Data",
                "The other side is unreachable and the new active side holds no snapshot: every backup is lost.",
            );
        }
    }
}

#[async_trait]
impl Resource for RegionPair {
    fn type_name(&self) -> &'static str {
        "dr_region_pair"
    }

    fn schema(&self) -> Schema {
        schema()
    }

    async fn validate(&self, config: &Value, diags: &mut Diagnostics) {
        let (p, s) = (
            config.attr("primary_vault_id"),
            config.attr("secondary_vault_id"),
        );
        if let (Some(p), Some(s)) = (p.as_str(), s.as_str()) {
            if p == s {
                diags.error_at(
                    AttributePath::attr("secondary_vault_id"),
                    "Same Vault Twice",
                    format!("primary_vault_id and secondary_vault_id are both {p}; a pair needs two vaults in two regions."),
                );
            }
        }
    }

    async fn modify_plan(&self, plan: &mut Plan<'_>, diags: &mut Diagnostics) {
        if plan.planned.is_null() {
            return;
        }
        let config = plan.config;
        // The id follows the primary's id, which changes with its storage options.
        let id = match (
            config.attr("name").as_str(),
            config.attr("primary_vault_id").as_str(),
        ) {
            (Some(name), Some(p)) => Value::string(format!("{name}@{p}")),
            _ => Value::Unknown,
        };
        plan.planned.set_attr("id", id);
        if self.vaults.config().is_err() {
            return;
        }
        if let (Some(p), Some(s)) = (
            config.attr("primary_vault_id").as_str(),
            config.attr("secondary_vault_id").as_str(),
        ) {
            // Regions come from the vaults' plain configs: no passphrase needed to check them.
            let region = |url: &str| {
                let storage = self
                    .vaults
                    .storage(url, &Default::default(), false, &AttributePath::root())
                    .ok();
                async move {
                    Vault::read_config(&storage?)
                        .await
                        .ok()
                        .map(|c| (c.id, c.region))
                }
            };
            if let (Some((pid, pr)), Some((sid, sr))) = (region(p).await, region(s).await) {
                if pid == sid {
                    diags.error_at(
                        AttributePath::attr("secondary_vault_id"),
                        "Same Vault Twice",
                        format!("{p} and {s} are the same vault; a pair needs two vaults in two regions."),
                    );
                } else if pr == sr {
                    diags.push(same_region(&pr, p, s));
                }
                if plan.is_create() {
                    plan.planned.set_attr("primary_region", Value::string(pr));
                    plan.planned.set_attr("secondary_region", Value::string(sr));
                }
            }
        }
        if !plan.is_create() {
            for attr in ["primary_vault_id", "secondary_vault_id"] {
                let (was, now) = (plan.prior.value.attr(attr), config.attr(attr));
                // Not known yet (the vault is being created or replaced, or its id changes
                // with its options): an update in place records the pair in whatever vault it
                // turns out to be and replicates to it; replacing the pair adds nothing.
                let moved = match (was.as_str(), now.as_str()) {
                    (Some(was), Some(now)) => !same_place(was, now),
                    _ => false,
                };
                if moved {
                    plan.requires_replace.push(AttributePath::attr(attr));
                }
            }
        }
        if plan.is_create() || !plan.requires_replace.is_empty() {
            return;
        }
        let prior = &plan.prior.value;
        for name in [
            "primary_region",
            "secondary_region",
            "standby_latest_snapshot_id",
            "last_replicated_at",
            "replication_lag_seconds",
            "in_sync",
        ] {
            plan.planned.set_attr(name, prior.attr(name).clone());
        }
        let failover = plan.planned.attr("active") != prior.attr("active");
        let wanted = plan.planned.attr("replicate_snapshot_id");
        let wanted_changed = wanted != prior.attr("replicate_snapshot_id");
        let (_, standby_attr) = sides(&plan.planned);
        let (standby_there, standby_dark) = match self.open(&plan.planned, standby_attr).await {
            Ok(found) => (found.is_some(), false),
            Err(d) if is_unreachable(&d) => {
                diags.push(unreachable_warning(
                    &d,
                    &format!("Apply skips replication to the standby ({standby_attr}) while it does not answer."),
                ));
                (false, true)
            }
            Err(_) => (false, false),
        };
        let lagging = prior.attr("in_sync").as_bool() != Some(true) && standby_there;
        let settings_changed = [
            "strategy",
            "rpo",
            "rto",
            "primary_vault_id",
            "secondary_vault_id",
        ]
        .iter()
        .any(|a| plan.planned.attr(a) != prior.attr(a));
        if lagging || failover || wanted_changed || wanted.is_unknown() || settings_changed {
            // Apply replicates: the standby will hold every active-side snapshot.
            plan.planned.set_attr("in_sync", Value::Bool(true));
            plan.planned
                .set_attr("replication_lag_seconds", Value::number(0u64));
            plan.planned
                .set_attr("standby_latest_snapshot_id", Value::Unknown);
            plan.planned.set_attr("last_replicated_at", Value::Unknown);
            if failover || standby_dark {
                plan.planned.set_attr("in_sync", Value::Unknown);
                // Known only once apply has seen whether the other side answers.
                plan.planned
                    .set_attr("replication_lag_seconds", Value::Unknown);
            }
        }
    }

    async fn create(&self, planned: &State, _config: &Value, diags: &mut Diagnostics) -> State {
        let mut state = planned.value.clone();
        self.converge(&mut state, &Value::Null, diags).await;
        if diags.has_errors() {
            return State::default();
        }
        State::from(state)
    }

    async fn read(&self, current: &State, diags: &mut Diagnostics) -> State {
        let mut state = current.value.clone();
        self.refresh(&mut state, diags).await;
        State::from(state)
    }

    async fn update(
        &self,
        prior: &State,
        planned: &State,
        _config: &Value,
        diags: &mut Diagnostics,
    ) -> State {
        let mut state = planned.value.clone();
        let replicated_at = prior.value.attr("last_replicated_at").clone();
        self.converge(&mut state, &replicated_at, diags).await;
        if diags.has_errors() {
            return prior.clone();
        }
        State::from(state)
    }

    async fn delete(&self, prior: &State, diags: &mut Diagnostics) {
        // Both vaults' data stays; only the pair's record goes.
        let name = format!(
            "pairs/{}",
            prior.value.attr("name").as_str().unwrap_or_default()
        );
        for attr in ["primary_vault_id", "secondary_vault_id"] {
            if let Ok(Some(v)) = self.open(&prior.value, attr).await {
                if let Err(e) = v
                    .put_record(&name, &serde_json::json!({"deleted": true}))
                    .await
                {
                    diags.push(engine_diagnostic("Cannot Update The Pair Record", &e));
                }
            }
        }
    }

    async fn import(&self, id: &str, diags: &mut Diagnostics) -> State {
        let Some((name, primary)) = id.split_once('@') else {
            diags.error(
                "Invalid Import ID",
                format!(
                    "{id:?} is not NAME@PRIMARY_VAULT_ID, e.g. prod@file:///srv/vaults/primary."
                ),
            );
            return State::default();
        };
        let vault = match self
            .vaults
            .open_existing(primary, &Default::default(), &AttributePath::root())
            .await
        {
            Ok(v) => v,
            Err(d) => {
                diags.push(d);
                return State::default();
            }
        };
        let record = match vault.record(&format!("pairs/{name}")).await {
            Ok(Some(r)) if r.get("deleted").is_none() => r,
            Ok(_) => {
                diags.error(
                    "Region Pair Not Found",
                    format!("The vault at {primary} records no region pair named {name:?}."),
                );
                return State::default();
            }
            Err(e) => {
                diags.push(engine_diagnostic("Cannot Read The Pair Record", &e));
                return State::default();
            }
        };
        let text = |k: &str| record[k].as_str().map_or(Value::Null, Value::string);
        let mut state = Value::object([
            ("name", text("name")),
            ("primary_vault_id", text("primary_vault_id")),
            ("secondary_vault_id", text("secondary_vault_id")),
            ("strategy", text("strategy")),
            ("rpo", text("rpo")),
            ("rto", text("rto")),
            ("active", text("active")),
            ("replicate_snapshot_id", text("replicate_snapshot_id")),
            ("id", Value::string(id)),
            ("primary_region", Value::Null),
            ("secondary_region", Value::Null),
            ("standby_latest_snapshot_id", Value::Null),
            ("last_replicated_at", Value::Null),
            ("replication_lag_seconds", Value::Null),
            ("in_sync", Value::Null),
        ]);
        self.refresh(&mut state, diags).await;
        State::from(state)
    }
}
