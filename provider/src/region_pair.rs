//! `dr_region_pair`: two vaults in two regions, one active, the other the standby that
//! receives every snapshot of the active side. Refresh measures the standby's lag; a plan
//! shows `in_sync` going back to true when the standby lacks snapshots, and apply copies only
//! what is missing. Setting `active = "secondary"` is a failover: it succeeds even when the
//! primary is gone, and warns how much time of backups that loses when it exceeds `rpo`.

use crate::backup_vault::{duration_validator, name_validator};
use crate::vaults::{
    duration, engine_diagnostic, format_time, is_unreachable, same_place, unreachable_warning,
    Vaults,
};
use dr_vault::{NoProgress, Vault};
use std::sync::Arc;
use tfplugin::{
    async_trait, validators, Attr, Attribute, AttributePath, Block, Diagnostic, Diagnostics, Model,
    Plan, Resource, Schema, State, Type, Value,
};

tfplugin::model! {
    /// A `dr_region_pair` as configured, planned or stored.
    struct PairModel {
        name: Attr<String>,
        primary_vault_id: Attr<String>,
        secondary_vault_id: Attr<String>,
        strategy: Attr<String>,
        rpo: Attr<String>,
        rto: Attr<String>,
        active: Attr<String>,
        replicate_snapshot_id: Attr<String>,
        id: Attr<String>,
        primary_region: Attr<String>,
        secondary_region: Attr<String>,
        standby_latest_snapshot_id: Attr<String>,
        last_replicated_at: Attr<String>,
        replication_lag_seconds: Attr<u64>,
        in_sync: Attr<bool>,
    }
}

impl PairModel {
    /// Leaves the replication status to apply.
    fn replication_status_unknown(&mut self) {
        self.primary_region = Attr::Unknown;
        self.secondary_region = Attr::Unknown;
        self.standby_latest_snapshot_id = Attr::Unknown;
        self.last_replicated_at = Attr::Unknown;
        self.replication_lag_seconds = Attr::Unknown;
        self.in_sync = Attr::Unknown;
    }
}

/// One side of the pair.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Side {
    Primary,
    Secondary,
}

impl Side {
    /// The side that takes snapshots and replicates to the other.
    fn active(pair: &PairModel) -> Side {
        if pair.active.as_str() == Some("secondary") {
            Side::Secondary
        } else {
            Side::Primary
        }
    }

    fn other(self) -> Side {
        match self {
            Side::Primary => Side::Secondary,
            Side::Secondary => Side::Primary,
        }
    }

    /// The attribute naming this side's vault, for diagnostics.
    fn attr(self) -> &'static str {
        match self {
            Side::Primary => "primary_vault_id",
            Side::Secondary => "secondary_vault_id",
        }
    }

    fn path(self) -> AttributePath {
        AttributePath::attr(self.attr())
    }

    fn vault_id(self, pair: &PairModel) -> &str {
        match self {
            Side::Primary => pair.primary_vault_id.as_str(),
            Side::Secondary => pair.secondary_vault_id.as_str(),
        }
        .unwrap_or_default()
    }

    fn region(self, pair: &mut PairModel) -> &mut Attr<String> {
        match self {
            Side::Primary => &mut pair.primary_region,
            Side::Secondary => &mut pair.secondary_region,
        }
    }
}

/// A vault id pointing at another vault (not the same vault under another id: its storage
/// options changed) replaces the pair. Unknown ids (the vault is being created or replaced)
/// do not: an update in place records the pair in whatever vault it turns out to be.
fn vault_moved(prior: &Value, planned: &Value) -> bool {
    match (prior.as_str(), planned.as_str()) {
        (Some(was), Some(now)) => !same_place(was, now),
        _ => false,
    }
}

tfplugin::model! {
    /// A pair's identity (Terraform 1.12+): its name and where its primary vault is.
    struct PairIdentity {
        name: Attr<String>,
        primary_vault_url: Attr<String>,
    }
}

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
            Attribute::required("primary_vault_id", Type::String)
                .requires_replace_if("when it names another vault", vault_moved)
                .description(
                    "The primary vault: a `dr_backup_vault`'s `id` (or any vault URL, with its storage options as a query). \
                     Pointing it at another vault replaces the pair.",
                ),
            Attribute::required("secondary_vault_id", Type::String)
                .requires_replace_if("when it names another vault", vault_moved)
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
            Attribute::computed("primary_region", Type::String)
                .use_state_for_unknown()
                .description("Read from the primary vault."),
            Attribute::computed("secondary_region", Type::String)
                .use_state_for_unknown()
                .description("Read from the secondary vault."),
            // Changed only when modify_plan plans a replication.
            Attribute::computed("standby_latest_snapshot_id", Type::String)
                .use_state_for_unknown()
                .description("The newest snapshot on the standby side."),
            Attribute::computed("last_replicated_at", Type::String)
                .use_state_for_unknown()
                .description("When this resource last replicated (RFC 3339, UTC)."),
            Attribute::computed("replication_lag_seconds", Type::Number)
                .use_state_for_unknown()
                .description(
                "Age of the oldest active-side snapshot missing on the standby; 0 when in sync.",
            ),
            Attribute::computed("in_sync", Type::Bool)
                .use_state_for_unknown()
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
    async fn open(&self, pair: &PairModel, side: Side) -> Result<Option<Arc<Vault>>, Diagnostic> {
        self.vaults
            .open(side.vault_id(pair), &Default::default(), &side.path())
            .await
    }

    /// Fills regions and replication status from whatever vaults are reachable.
    async fn refresh(&self, state: &mut PairModel, diags: &mut Diagnostics) {
        let active_side = Side::active(state);
        let primary = self.open(state, Side::Primary).await;
        let secondary = self.open(state, Side::Secondary).await;
        for (side, opened) in [(Side::Primary, &primary), (Side::Secondary, &secondary)] {
            match opened {
                Ok(Some(v)) => *side.region(state) = v.config().region.as_str().into(),
                Ok(None) => {}
                Err(d) => diags.push(Diagnostic::warning(
                    crate::vaults::UNREACHABLE,
                    format!(
                        "{}: {}\nThe pair's state keeps what it last knew.",
                        side.attr(),
                        d.detail
                    ),
                )),
            }
        }
        let opened = |side: Side| match side {
            Side::Primary => &primary,
            Side::Secondary => &secondary,
        };
        if let (Ok(Some(active)), Ok(Some(standby))) =
            (opened(active_side), opened(active_side.other()))
        {
            match status(active, standby).await {
                Ok(s) => {
                    state.standby_latest_snapshot_id = Attr::from_option(s.standby_latest);
                    state.replication_lag_seconds = s.lag_seconds.into();
                    state.in_sync = s.in_sync.into();
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
        state: &mut PairModel,
        prior_replicated_at: &Attr<String>,
        diags: &mut Diagnostics,
    ) {
        let active_side = Side::active(state);
        let standby_side = active_side.other();
        let active = match self.open(state, active_side).await {
            Ok(Some(v)) => v,
            Ok(None) => {
                diags.error_at(
                    active_side.path(),
                    "Active Vault Not Found",
                    format!(
                        "The active side's vault {} does not exist, so nothing can be replicated from it. \
                         Fail over with active = \"{}\".",
                        active_side.vault_id(state),
                        if active_side == Side::Primary { "secondary" } else { "primary" }
                    ),
                );
                return;
            }
            Err(d) => {
                diags.push(d);
                return;
            }
        };
        let primary_is_standby = standby_side == Side::Primary;
        // The plan promised a standby in sync: one that stopped answering since cannot keep
        // that promise, and saying so beats a state that contradicts the plan.
        let promised_in_sync = state.in_sync.get() == Some(&true);
        let mut standby_dark = false;
        let standby = match self.open(state, standby_side).await {
            Ok(v) => v,
            Err(d) if is_unreachable(&d) && promised_in_sync => {
                diags.push(d.at(standby_side.path()));
                return;
            }
            // A failover must succeed with the old active side unreachable, not only gone;
            // and a standby whose region is dark is caught up once it answers again.
            Err(d) if is_unreachable(&d) => {
                standby_dark = true;
                diags.push(unreachable_warning(
                    &d,
                    &format!(
                        "Replication to the standby ({}) is skipped; the first apply after it answers again \
                         catches it up from the active side.",
                        standby_side.attr()
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
                standby_side.path(),
                "Standby Vault Not Found",
                format!(
                    "The standby vault {} does not exist, so the active side cannot be replicated. \
                     Create it (a dr_backup_vault), or fail over with active = \"secondary\" if the primary is the one lost.",
                    standby_side.vault_id(state)
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
                    let mut history = None;
                    if !plan.to_copy.is_empty() {
                        let done = active.replicate(standby, &plan, &NoProgress).await?;
                        unreadable.extend(done.unreadable);
                        history = done.history_not_recorded;
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
                    Ok((unreadable, history))
                }
                .await;
                if let Ok((_, Some(why))) = &result {
                    diags.warning(
                        "Replication Not Recorded",
                        format!(
                            "The standby holds every snapshot, but this replication is missing from its history \
                             (what `drctl report` plots): {why}"
                        ),
                    );
                }
                let result = result.map(|(unreadable, _)| unreadable);
                match result {
                    Err(e) => {
                        diags.push(
                            engine_diagnostic("Replication Failed", &e).at(standby_side.path()),
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
                if let Some(wanted) = state.replicate_snapshot_id.as_str() {
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
            "name": state.name.as_str(),
            "primary_vault_id": state.primary_vault_id.as_str(),
            "secondary_vault_id": state.secondary_vault_id.as_str(),
            "strategy": state.strategy.as_str(),
            "rpo": state.rpo.as_str(),
            "rto": state.rto.as_str(),
            "active": state.active.as_str(),
            "replicate_snapshot_id": state.replicate_snapshot_id.as_str(),
        });
        let name = format!("pairs/{}", state.name.as_str().unwrap_or_default());
        for vault in std::iter::once(&active).chain(standby.as_ref()) {
            if let Err(e) = vault.put_record(&name, &record).await {
                diags.push(engine_diagnostic("Cannot Record The Pair", &e));
            }
        }
        state.last_replicated_at = if standby.is_some() {
            format_time(dr_vault::clock::now()).into()
        } else {
            prior_replicated_at.clone()
        };
        self.refresh(state, diags).await;
        if standby_dark {
            // What the standby holds is not known while it does not answer.
            state.standby_latest_snapshot_id = Attr::Null;
            state.in_sync = false.into();
            state.replication_lag_seconds = Attr::Null;
        } else if standby.is_none() {
            // The standby side is gone: the active side's snapshots exist nowhere else.
            state.standby_latest_snapshot_id = Attr::Null;
            state.in_sync = false.into();
            state.replication_lag_seconds = 0u64.into();
        }
    }

    /// A failover with the old active side gone: everything after the new active side's
    /// newest snapshot is lost. Warn when that exceeds the RPO.
    async fn warn_about_data_loss(
        &self,
        state: &PairModel,
        active: &Vault,
        diags: &mut Diagnostics,
    ) {
        let newest = active.snapshots().await.ok().and_then(|mut s| s.pop());
        let age = newest.as_ref().map(|s| s.age(dr_vault::clock::now()));
        if let (Some(age), Some(rpo)) = (age, duration(&state.rpo, "rpo")) {
            if age > rpo {
                diags.warning(
                    "Failover Exceeds RPO",
                    format!(
                        "The other side is unreachable. The newest snapshot on the new active side is {} old, more than the rpo \
                         of {}: up to {} of backups taken after it are lost.",
                        humantime::format_duration(age),
                        state.rpo.as_str().unwrap_or_default(),
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

    /// Checks what can be checked before apply without a passphrase: two vaults, two regions.
    /// On create the regions are known now.
    async fn plan_regions(
        &self,
        config: &PairModel,
        planned: &mut PairModel,
        is_create: bool,
        diags: &mut Diagnostics,
    ) {
        let (Some(p), Some(s)) = (
            config.primary_vault_id.as_str(),
            config.secondary_vault_id.as_str(),
        ) else {
            return;
        };
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
                    Side::Secondary.path(),
                    "Same Vault Twice",
                    format!(
                        "{p} and {s} are the same vault; a pair needs two vaults in two regions."
                    ),
                );
            } else if pr == sr {
                diags.push(same_region(&pr, p, s));
            }
            if is_create {
                planned.primary_region = pr.into();
                planned.secondary_region = sr.into();
            }
        }
    }

    /// The plan of an update in place: whether apply replicates, and what it leaves unknown.
    async fn plan_replication(
        &self,
        prior: &PairModel,
        planned: &mut PairModel,
        diags: &mut Diagnostics,
    ) {
        let failover = planned.active != prior.active;
        let wanted_changed = planned.replicate_snapshot_id != prior.replicate_snapshot_id;
        let standby_side = Side::active(planned).other();
        let (standby_there, standby_dark) = match self.open(planned, standby_side).await {
            Ok(found) => (found.is_some(), false),
            Err(d) if is_unreachable(&d) => {
                diags.push(unreachable_warning(
                    &d,
                    &format!(
                        "Apply skips replication to the standby ({}) while it does not answer.",
                        standby_side.attr()
                    ),
                ));
                (false, true)
            }
            Err(_) => (false, false),
        };
        let lagging = prior.in_sync.get() != Some(&true) && standby_there;
        let settings_changed = planned.strategy != prior.strategy
            || planned.rpo != prior.rpo
            || planned.rto != prior.rto
            || planned.primary_vault_id != prior.primary_vault_id
            || planned.secondary_vault_id != prior.secondary_vault_id;
        if lagging
            || failover
            || wanted_changed
            || planned.replicate_snapshot_id.is_unknown()
            || settings_changed
        {
            // Apply replicates: the standby will hold every active-side snapshot.
            planned.in_sync = true.into();
            planned.replication_lag_seconds = 0u64.into();
            planned.standby_latest_snapshot_id = Attr::Unknown;
            planned.last_replicated_at = Attr::Unknown;
            if failover || standby_dark {
                // Known only once apply has seen whether the other side answers.
                planned.in_sync = Attr::Unknown;
                planned.replication_lag_seconds = Attr::Unknown;
            }
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
        let Some(config) = PairModel::read(config, diags) else {
            return;
        };
        if let (Some(p), Some(s)) = (
            config.primary_vault_id.as_str(),
            config.secondary_vault_id.as_str(),
        ) {
            if p == s {
                diags.error_at(
                    Side::Secondary.path(),
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
        let Some(config) = PairModel::read(plan.config, diags) else {
            return;
        };
        let Some(prior) = PairModel::read(&plan.prior.value, diags) else {
            return;
        };
        let Some(mut planned) = PairModel::read(&plan.planned, diags) else {
            return;
        };
        // The id follows the primary's id, which changes with its storage options.
        planned.id = match (config.name.as_str(), config.primary_vault_id.as_str()) {
            (Some(name), Some(p)) => format!("{name}@{p}").into(),
            _ => Attr::Unknown,
        };
        let updating = !plan.is_create() && plan.requires_replace.is_empty();
        if self.vaults.config().is_err() {
            // The provider block is unknown during this plan: nothing can be looked at.
            if updating && plan.planned != plan.prior.value {
                planned.replication_status_unknown();
            }
        } else {
            self.plan_regions(&config, &mut planned, plan.is_create(), diags)
                .await;
            if updating {
                self.plan_replication(&prior, &mut planned, diags).await;
            }
        }
        planned.write_into(&mut plan.planned);
    }

    async fn create(&self, planned: &State, _config: &Value, diags: &mut Diagnostics) -> State {
        let Some(mut state) = PairModel::read(&planned.value, diags) else {
            return State::default();
        };
        self.converge(&mut state, &Attr::Null, diags).await;
        if diags.has_errors() {
            return State::default();
        }
        State::from(state.written_over(&planned.value))
    }

    async fn read(&self, current: &State, diags: &mut Diagnostics) -> State {
        let Some(mut state) = PairModel::read(&current.value, diags) else {
            return current.clone();
        };
        self.refresh(&mut state, diags).await;
        State::from(state.written_over(&current.value))
    }

    async fn update(
        &self,
        prior: &State,
        planned: &State,
        _config: &Value,
        diags: &mut Diagnostics,
    ) -> State {
        let (Some(prior_model), Some(mut state)) = (
            PairModel::read(&prior.value, diags),
            PairModel::read(&planned.value, diags),
        ) else {
            return prior.clone();
        };
        self.converge(&mut state, &prior_model.last_replicated_at, diags)
            .await;
        if diags.has_errors() {
            return prior.clone();
        }
        State::from(state.written_over(&planned.value))
    }

    async fn delete(&self, prior: &State, diags: &mut Diagnostics) {
        let Some(state) = PairModel::read(&prior.value, diags) else {
            return;
        };
        // Both vaults' data stays; only the pair's record goes.
        let name = format!("pairs/{}", state.name.as_str().unwrap_or_default());
        for side in [Side::Primary, Side::Secondary] {
            if let Ok(Some(v)) = self.open(&state, side).await {
                if let Err(e) = v
                    .put_record(&name, &serde_json::json!({"deleted": true}))
                    .await
                {
                    diags.push(engine_diagnostic("Cannot Update The Pair Record", &e));
                }
            }
        }
    }

    /// A pair is identified by its name and where its primary vault is (both replace the
    /// pair when they change).
    fn identity_schema(&self) -> Option<tfplugin::IdentitySchema> {
        Some(tfplugin::IdentitySchema {
            version: 0,
            attributes: vec![
                tfplugin::IdentityAttribute {
                    name: "name",
                    ty: Type::String,
                    description: "The pair's name.",
                    required_for_import: true,
                },
                crate::vaults::vault_identity_attribute(
                    "primary_vault_url",
                    "Where the primary vault is: its canonical URL, with only the storage options that say which store.",
                ),
            ],
        })
    }

    fn identity(&self, state: &Value) -> Value {
        let pair = PairModel::from_value(state).unwrap_or_default();
        PairIdentity {
            primary_vault_url: crate::vaults::location_attr(&pair.primary_vault_id),
            name: pair.name,
        }
        .to_value()
    }

    fn import_id_of(&self, identity: &Value, diags: &mut Diagnostics) -> Option<String> {
        let identity = PairIdentity::read(identity, diags)?;
        match (identity.name.get(), identity.primary_vault_url.get()) {
            (Some(name), Some(url)) => Some(format!("{name}@{url}")),
            _ => {
                diags.error(
                    "Invalid Identity",
                    "A dr_region_pair identity needs its name and primary_vault_url.",
                );
                None
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
        let text = |k: &str| Attr::from_option(record[k].as_str().map(str::to_string));
        let mut state = PairModel {
            name: text("name"),
            primary_vault_id: text("primary_vault_id"),
            secondary_vault_id: text("secondary_vault_id"),
            strategy: text("strategy"),
            rpo: text("rpo"),
            rto: text("rto"),
            active: text("active"),
            replicate_snapshot_id: text("replicate_snapshot_id"),
            ..PairModel::default()
        };
        // The id a plan gives the pair: its name and its primary vault's id as applied (the
        // import ID may spell the vault another way, e.g. as a relative path).
        state.id = match state.primary_vault_id.as_str() {
            Some(primary) => format!("{name}@{primary}").into(),
            None => id.into(),
        };
        self.refresh(&mut state, diags).await;
        State::from(state.to_value())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_model_matches_the_schema() {
        tfplugin::model::check_model::<PairModel>(&schema().block).unwrap();
    }

    #[test]
    fn the_identity_model_matches_the_identity_schema() {
        use tfplugin::Resource as _;
        let schema = RegionPair {
            vaults: Default::default(),
        }
        .identity_schema()
        .unwrap();
        assert_eq!(PairIdentity::implied_type(), schema.ty());
    }
}
