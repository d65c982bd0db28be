//! `dr_backup_vault`: a vault and the snapshots of its sources. Plan computes the sources'
//! digest (cheaply: unchanged files are recognised from the latest snapshot's manifest), so a
//! changed file shows as an update with the new digest; apply then takes exactly one snapshot.
//!
//! The configuration-side settings are also recorded inside the vault (sealed), so that
//! `terraform import` of a vault whose state was lost plans empty.

use crate::vaults::{
    duration_attr, engine_diagnostic, is_unreachable, map_value, same_place, string_list,
    string_map, time_value, unreachable_warning, Vaults,
};
use dr_vault::{
    ErrorKind, InitOptions, KdfParams, NoProgress, Policy, Retention, SourceSpec, Vault,
};
use std::sync::Arc;
use tfplugin::{
    async_trait, validators, Attribute, AttributePath, Block, Diagnostic, Diagnostics, NestedBlock,
    Nesting, Plan, Resource, Schema, State, Type, Value,
};

/// Version 1: `id` carries the vault's storage options (see [`upgrade_id`]).
const SCHEMA_VERSION: i64 = 1;

/// Where the resource's settings live inside the vault.
const SETTINGS_RECORD: &str = "terraform/dr_backup_vault";

pub struct BackupVault {
    pub vaults: Arc<Vaults>,
}

pub(crate) fn name_validator() -> impl tfplugin::schema::Validator {
    validators::matches(
        "[a-z0-9-]{1,63}",
        "1 to 63 lower-case letters, digits or dashes",
    )
}

/// Checks a duration string such as `15m`, `1h 30m` or `30d`.
pub(crate) fn duration_validator() -> impl tfplugin::schema::Validator {
    |v: &Value, path: &AttributePath, diags: &mut Diagnostics| {
        if let Some(text) = v.as_str() {
            if let Err(e) = dr_vault::parse_duration(text, &path.to_string()) {
                diags.error_at(
                    path.clone(),
                    "Invalid Duration",
                    format!(
                        "{e}. Write a duration such as \"15m\", \"12h\", \"7d\" or \"1h 30m\"."
                    ),
                );
            }
        }
    }
}

fn schema() -> Schema {
    let attributes = vec![
        Attribute::required("name", Type::String)
            .requires_replace()
            .validator(name_validator())
            .description("The vault's name, stored in it. Changing it replaces the vault."),
        Attribute::required("region", Type::String)
            .requires_replace()
            .validator(validators::matches("[a-z0-9-]{1,63}", "a region label such as \"eu-west-1\""))
            .description("A region label, e.g. `eu-west-1`; region pairs require different regions."),
        // Replaced only when the url points elsewhere, not for another spelling of the same
        // place (see modify_plan): an import by id must not plan to delete the vault.
        Attribute::required("url", Type::String)
            .description(
                "Where the vault lives: a plain path (relative to the root module), `file://…`, \
                 `s3://bucket/prefix`, `gs://bucket/prefix` or `az://container/prefix`. Pointing it elsewhere \
                 replaces the vault; another spelling of the same place is an update in place.",
            ),
        Attribute::optional("storage_options", Type::map(Type::String)).description(
            "Object-store options for this vault, merged over the provider's. Credentials come from the environment.",
        ),
        Attribute::optional("force_destroy", Type::Bool).default(false).description(
            "Let destroy delete the vault with its snapshots. Snapshots younger than `retention.lock_for` block destroy regardless.",
        ),
        Attribute::optional("labels", Type::map(Type::String))
            .description("Labels stored with the vault's snapshots."),
        Attribute::computed("id", Type::String)
            .use_state_for_unknown()
            .description(
                "The vault's canonical absolute URL, with its non-secret storage options (the provider's and its own) \
                 as a query for object stores: `s3://bucket/prefix?endpoint=…&region=…`. A region pair, a drill and \
                 `drctl` open the vault from it alone, in any later run. Also the import ID.",
            ),
        Attribute::computed("created_at", Type::String)
            .use_state_for_unknown()
            .description("When the vault was created (RFC 3339, UTC)."),
        Attribute::computed("source_digest", Type::String).description(
            "Digest of every source's content. A plan shows the new digest when a source changed; apply then takes a snapshot.",
        ),
        Attribute::computed("latest_snapshot_id", Type::String)
            .description("The newest snapshot's id."),
        Attribute::computed("latest_snapshot_at", Type::String)
            .description("When the newest snapshot was taken (RFC 3339, UTC)."),
        Attribute::computed("snapshot_count", Type::Number)
            .description("How many snapshots the vault holds."),
        Attribute::computed("stored_bytes", Type::Number)
            .description("Bytes the vault's data takes in storage (compressed, encrypted, deduplicated)."),
    ];
    let blocks = vec![
        NestedBlock::new(
            "retention",
            Nesting::Single,
            Block::new(vec![
                Attribute::optional("keep_last", Type::Number)
                    .validator(validators::int_between(1, 1_000_000))
                    .description("Keep the newest N snapshots."),
                Attribute::optional("keep_within", Type::String)
                    .validator(duration_validator())
                    .description("Keep snapshots younger than this duration, e.g. `30d`."),
                Attribute::optional("lock_for", Type::String)
                    .validator(duration_validator())
                    .description(
                        "Snapshots younger than this are deleted by nothing that uses the vault: not retention, not destroy, \
                         not drctl, whoever runs them with the vault's passphrase. Recorded in the vault itself. It does not bind \
                         someone who can delete objects in the bucket or directory directly: against that only the store's own \
                         immutability helps (S3 Object Lock, GCS retention policies, Azure immutable blob storage).",
                    ),
            ])
            .description("Which snapshots to keep; applied after each snapshot. Without it every snapshot is kept."),
        ),
        NestedBlock::new(
            "source",
            Nesting::List,
            Block::new(vec![
                Attribute::required("name", Type::String)
                    .validator(validators::matches(
                        "[A-Za-z0-9._-]{1,63}",
                        "1 to 63 letters, digits, '.', '_' or '-'",
                    ))
                    .description("Unique name of the source; restores address it by this name."),
                Attribute::required("path", Type::String)
                    .description("A file or directory; relative paths resolve against the root module."),
                Attribute::optional("include", Type::list(Type::String))
                    .description("Only paths matching one of these globs (relative to the source)."),
                Attribute::optional("exclude", Type::list(Type::String))
                    .description("Skip paths matching any of these globs; a matching directory is skipped with everything under it."),
            ])
            .description("What each snapshot holds: pipeline configuration, scripts, environment state."),
        ),
    ];
    Schema::new(SCHEMA_VERSION, Block::new(attributes).with_blocks(blocks).description(
        "An encrypted, deduplicated snapshot store of pipeline configuration, scripts and state. \
         Create initialises the vault and takes the first snapshot; a change in any source makes the next apply take one more.",
    ))
}

/// The sources as the engine wants them; `None` while any part is unknown.
fn source_specs(value: &Value) -> Option<Vec<SourceSpec>> {
    let sources = value.attr("source");
    if !sources.is_wholly_known() {
        return None;
    }
    Some(
        sources
            .elements()
            .iter()
            .map(|s| SourceSpec {
                name: s.attr("name").as_str().unwrap_or_default().to_string(),
                path: s.attr("path").as_str().unwrap_or_default().into(),
                include: string_list(s.attr("include")),
                exclude: string_list(s.attr("exclude")),
            })
            .collect(),
    )
}

fn retention(value: &Value) -> Retention {
    let r = value.attr("retention");
    Retention {
        keep_last: r
            .attr("keep_last")
            .as_number()
            .and_then(|n| n.to_u64())
            .map(|n| n as usize),
        keep_within: duration_attr(r, "keep_within"),
        lock_for: duration_attr(r, "lock_for"),
    }
}

fn url_path() -> AttributePath {
    AttributePath::attr("url")
}

/// Whether the configuration's url points somewhere else than the state's (not merely spells
/// the same place another way): only that replaces the vault.
fn url_moved(prior: &Value, config: &Value) -> bool {
    match (prior.attr("url").as_str(), config.attr("url").as_str()) {
        (Some(was), Some(now)) => !same_place(was, now),
        _ => !config.attr("url").is_null(),
    }
}

/// A version 0 id (the bare URL) with the options the state records as a query. The
/// provider's own options are not known here; the next refresh completes the id.
fn upgrade_id(
    id: &str,
    storage_options: Option<&serde_json::Map<String, serde_json::Value>>,
) -> String {
    let options: std::collections::BTreeMap<String, String> = storage_options
        .into_iter()
        .flatten()
        .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
        .collect();
    match dr_vault::storage::canonical(&options) {
        Ok(options) => dr_vault::storage::vault_id(id, &options),
        Err(_) => id.to_string(),
    }
}

fn import_hint(url: &str) -> String {
    format!(
        "To manage this vault, import it instead of creating it:\n  terraform import dr_backup_vault.<NAME> {url}\n\
         where <NAME> is this resource's name in the configuration (shown in the \"with\" line of this message). \
         Or choose another url."
    )
}

impl BackupVault {
    /// The vault's current facts: latest snapshot, counts, bytes.
    async fn refresh(&self, vault: &Vault, state: &mut Value) -> Result<(), dr_vault::Error> {
        let snapshots = vault.snapshots().await?;
        let config = vault.config();
        state.set_attr("id", Value::string(vault.storage().id()));
        state.set_attr("name", Value::string(&config.name));
        state.set_attr("region", Value::string(&config.region));
        state.set_attr("created_at", time_value(&config.created_at));
        let latest = dr_vault::latest_of(&snapshots);
        state.set_attr(
            "latest_snapshot_id",
            latest.map_or(Value::Null, |s| Value::string(&s.id)),
        );
        state.set_attr(
            "latest_snapshot_at",
            latest.map_or(Value::Null, |s| time_value(&s.time)),
        );
        state.set_attr("snapshot_count", Value::number(snapshots.len() as u64));
        state.set_attr("stored_bytes", Value::number(vault.stored_bytes().await?));
        Ok(())
    }

    /// Records the configuration-side settings in the vault (for import) and its policy.
    async fn record_settings(&self, vault: &Vault, state: &Value) -> Result<(), dr_vault::Error> {
        let schema = schema();
        let ty = schema.block.implied_type();
        // Only what the configuration sets: the computed attributes are read from the vault.
        let mut settings = state.clone();
        for a in schema
            .block
            .attributes
            .iter()
            .filter(|a| a.computed && !a.optional)
        {
            settings.set_attr(&a.name, Value::Null);
        }
        let json = settings
            .to_json(&ty)
            .map_err(|e| dr_vault::Error::new(ErrorKind::Io, e.to_string()))?;
        vault.put_record(SETTINGS_RECORD, &json).await?;
        // The vault's lock_for only ever grows, whatever the configuration (or an import of a
        // vault whose settings were not recorded) says.
        let recorded = vault.policy().await?;
        let configured = retention(state).lock_for.map(|d| d.as_secs());
        let policy = Policy {
            lock_for_seconds: recorded.lock_for_seconds.max(configured),
        };
        if recorded != policy {
            vault.set_policy(&policy).await?;
        }
        Ok(())
    }

    /// Takes a snapshot of the configured sources, then applies retention.
    async fn snapshot(&self, vault: &Vault, state: &mut Value) -> Result<(), dr_vault::Error> {
        let specs = source_specs(state).unwrap_or_default();
        let labels = string_map(state.attr("labels"));
        let digest = if specs.is_empty() {
            vault.source_digest(&[]).await?
        } else {
            vault
                .snapshot(&specs, &labels, &NoProgress)
                .await?
                .source_digest
        };
        let planned = state.attr("source_digest").as_str().map(str::to_string);
        match planned {
            Some(p) if p != digest => tracing::warn!(
                "a source changed between plan and apply; the next plan will snapshot it again ({p} → {digest})"
            ),
            _ => state.set_attr("source_digest", Value::string(digest)),
        }
        self.apply_retention(vault, state).await
    }

    async fn apply_retention(&self, vault: &Vault, state: &Value) -> Result<(), dr_vault::Error> {
        let r = retention(state);
        if r.keep_last.is_none() && r.keep_within.is_none() {
            return Ok(());
        }
        let plan = vault.plan_prune(&r, dr_vault::clock::now()).await?;
        if !plan.forget.is_empty() {
            vault.prune(&plan).await?;
        }
        Ok(())
    }

    /// The id an update will have. It carries the storage options: when they change, so does
    /// the id, and a pair or drill naming the vault plans that change with it. When it cannot
    /// be worked out now (the provider block or the options not known yet) but may change, it
    /// is left to apply.
    fn plan_id(&self, plan: &mut Plan<'_>) {
        let config = plan.config;
        let computed = config
            .attr("url")
            .as_str()
            .filter(|_| config.attr("storage_options").is_wholly_known())
            .and_then(|url| {
                let options = string_map(config.attr("storage_options"));
                self.vaults.storage(url, &options, false, &url_path()).ok()
            })
            .map(|storage| storage.id());
        let prior = &plan.prior.value;
        let may_change = ["url", "storage_options"]
            .iter()
            .any(|a| config.attr(a) != prior.attr(a))
            || self.vaults.config().is_err();
        match computed {
            Some(id) => plan.planned.set_attr("id", Value::string(id)),
            None if may_change => plan.planned.set_attr("id", Value::Unknown),
            None => {}
        }
    }

    /// Builds a full state for an existing vault: its recorded settings when the provider
    /// created it, else what its config and latest snapshot say.
    async fn state_of_existing(&self, url: &str, vault: &Vault) -> Result<Value, dr_vault::Error> {
        let ty = schema().block.implied_type();
        let snapshots = vault.snapshots().await?;
        let mut state = match vault.record(SETTINGS_RECORD).await? {
            Some(json) => Value::from_json(&json, &ty).map_err(|e| {
                dr_vault::Error::new(ErrorKind::Corrupt, format!("{SETTINGS_RECORD}: {e}"))
            })?,
            None => {
                let mut sources = Vec::new();
                if let Some(latest) = dr_vault::latest_of(&snapshots) {
                    let snapshot = vault.load_snapshot(&latest.id).await?;
                    for s in &snapshot.sources {
                        sources.push(Value::object([
                            ("name", Value::string(&s.name)),
                            ("path", Value::string(&s.origin)),
                            ("include", Value::Null),
                            ("exclude", Value::Null),
                        ]));
                    }
                }
                let labels = &vault.config().labels;
                let from_id = dr_vault::storage::split_vault_url(url)
                    .map(|(_, options)| options)
                    .unwrap_or_default();
                Value::object([
                    (
                        "storage_options",
                        if from_id.is_empty() {
                            Value::Null
                        } else {
                            map_value(&from_id)
                        },
                    ),
                    ("force_destroy", Value::Bool(false)),
                    (
                        "labels",
                        if labels.is_empty() {
                            Value::Null
                        } else {
                            map_value(labels)
                        },
                    ),
                    ("retention", Value::Null),
                    ("source", Value::List(sources)),
                ])
            }
        };
        // The url as the configuration spelled it when it names the same place as the
        // import id: importing by id then plans no change of url.
        let recorded = state.attr("url").as_str().map(str::to_string);
        let url = match recorded {
            Some(r) if same_place(&r, url) => r,
            _ => dr_vault::storage::split_vault_url(url)
                .map_or_else(|_| url.to_string(), |(bare, _)| bare),
        };
        state.set_attr("url", Value::string(url));
        // A vault without sources (a standby) digests nothing, whatever its replicated
        // snapshots hold: as create and every plan compute it.
        let digest = match dr_vault::latest_of(&snapshots) {
            Some(info) if !state.attr("source").elements().is_empty() => info.source_digest.clone(),
            _ => vault.source_digest(&[]).await?,
        };
        state.set_attr("source_digest", Value::string(digest));
        self.refresh(vault, &mut state).await?;
        // Every attribute and block present, as Terraform requires.
        schema().block.normalize(&mut state);
        Ok(state)
    }
}

#[async_trait]
impl Resource for BackupVault {
    fn type_name(&self) -> &'static str {
        "dr_backup_vault"
    }

    fn schema(&self) -> Schema {
        schema()
    }

    async fn validate(&self, config: &Value, diags: &mut Diagnostics) {
        crate::vaults::validate_storage_options(config, diags);
        let mut names = std::collections::BTreeSet::new();
        for (i, s) in config.attr("source").elements().iter().enumerate() {
            let at = AttributePath::attr("source").index(i);
            if let Some(name) = s.attr("name").as_str() {
                if !names.insert(name.to_string()) {
                    diags.error_at(
                        at.clone().attribute("name"),
                        "Duplicate Source Name",
                        format!(
                            "Two source blocks are named {name:?}; each source needs its own name."
                        ),
                    );
                }
            }
            if let Some(path) = s.attr("path").as_str() {
                if std::fs::symlink_metadata(path).is_err() {
                    let shown = std::path::absolute(path).unwrap_or_else(|_| path.into());
                    diags.error_at(
                        at.clone().attribute("path"),
                        "Source Path Not Found",
                        format!(
                            "source {:?}: {} does not exist. Relative paths resolve against the root module directory.",
                            s.attr("name").as_str().unwrap_or_default(),
                            shown.display()
                        ),
                    );
                }
            }
            for list in ["include", "exclude"] {
                for (j, g) in s.attr(list).elements().iter().enumerate() {
                    if let Some(pattern) = g.as_str() {
                        if let Err(e) = dr_vault::sources::check_glob(pattern) {
                            diags.error_at(
                                at.clone().attribute(list).index(j),
                                "Invalid Glob",
                                format!("{e}. Use globs such as \"**/*.yml\" or \"scripts/*\"."),
                            );
                        }
                    }
                }
            }
        }
    }

    async fn modify_plan(&self, plan: &mut Plan<'_>, diags: &mut Diagnostics) {
        if plan.planned.is_null() {
            return;
        }
        if !plan.is_create() && url_moved(&plan.prior.value, plan.config) {
            plan.requires_replace.push(url_path());
        }
        if !plan.requires_replace.is_empty() {
            return;
        }
        if !plan.is_create() {
            self.plan_id(plan);
        }
        if self.vaults.config().is_err() {
            return; // provider block unknown during this plan
        }
        if let Err(d) = self.vaults.passphrase() {
            diags.push(d);
            return;
        }
        let url = plan.config.attr("url").as_str().map(str::to_string);
        let options = string_map(plan.config.attr("storage_options"));
        if plan.is_create() {
            // Whether a vault already exists there is checked by create, not here: during a
            // replacement the old vault at the same url is still present at plan time.
            return;
        }
        let prior = &plan.prior.value;
        let (was, now) = (retention(prior).lock_for, retention(plan.config).lock_for);
        if plan.config.attr("retention").is_wholly_known() && was > now {
            diags.error_at(
                AttributePath::attr("retention").attribute("lock_for"),
                "lock_for Cannot Be Lowered",
                format!(
                    "This vault promises that snapshots are kept for {}; lowering that would unlock snapshots \
                     taken under the promise. Keep lock_for at least that long. (It binds this provider, drctl and anyone \
                     using the vault's passphrase; once every snapshot is older than it, the vault can be destroyed.)",
                    prior.attr("retention").attr("lock_for").as_str().unwrap_or_default()
                ),
            );
            return;
        }
        // What apply may change: the snapshot fields when a snapshot is due, the counts when
        // retention runs. Everything else keeps its prior value.
        let keep =
            |planned: &mut Value, name: &str| planned.set_attr(name, prior.attr(name).clone());
        for name in [
            "source_digest",
            "latest_snapshot_id",
            "latest_snapshot_at",
            "snapshot_count",
            "stored_bytes",
        ] {
            keep(&mut plan.planned, name);
        }
        let unknown_after_snapshot = |planned: &mut Value| {
            for name in [
                "latest_snapshot_id",
                "latest_snapshot_at",
                "snapshot_count",
                "stored_bytes",
            ] {
                planned.set_attr(name, Value::Unknown);
            }
        };
        let digest = match (source_specs(plan.config), url) {
            (Some(specs), Some(url)) => match self.vaults.open(&url, &options, &url_path()).await {
                Ok(Some(vault)) => match vault.source_digest(&specs).await {
                    Ok(d) => Some(d),
                    Err(e) => {
                        diags.push(
                            engine_diagnostic("Cannot Read Sources", &e)
                                .at(AttributePath::attr("source")),
                        );
                        return;
                    }
                },
                Ok(None) => None,
                Err(d) if is_unreachable(&d) => {
                    diags.push(unreachable_warning(
                        &d,
                        "No snapshot is planned while the vault does not answer; once it answers again, \
                         the next plan takes one if a source changed.",
                    ));
                    return;
                }
                Err(d) => {
                    diags.push(d);
                    return;
                }
            },
            _ => None,
        };
        match digest {
            Some(d) if prior.attr("source_digest").as_str() == Some(d.as_str()) => {}
            Some(d) => {
                plan.planned.set_attr("source_digest", Value::string(d));
                unknown_after_snapshot(&mut plan.planned);
            }
            None => {
                plan.planned.set_attr("source_digest", Value::Unknown);
                unknown_after_snapshot(&mut plan.planned);
            }
        }
        if plan.planned.attr("retention") != prior.attr("retention") {
            plan.planned.set_attr("snapshot_count", Value::Unknown);
            plan.planned.set_attr("stored_bytes", Value::Unknown);
        }
    }

    async fn create(&self, planned: &State, _config: &Value, diags: &mut Diagnostics) -> State {
        let mut state = planned.value.clone();
        let url = state.attr("url").as_str().unwrap_or_default().to_string();
        let options = string_map(state.attr("storage_options"));
        let storage = match self.vaults.storage(&url, &options, true, &url_path()) {
            Ok(s) => s,
            Err(d) => {
                diags.push(d);
                return State::default();
            }
        };
        let mut opts = InitOptions::new(
            state.attr("name").as_str().unwrap_or_default(),
            state.attr("region").as_str().unwrap_or_default(),
        );
        opts.labels = string_map(state.attr("labels"));
        opts.kdf = KdfParams::for_new_vault();
        let vault = match self.vaults.init(storage, &opts).await {
            Ok(v) => v,
            Err(e) if e.kind == ErrorKind::AlreadyExists => {
                diags.push(
                    Diagnostic::error(
                        "Vault Already Exists",
                        format!("{e}. {}", import_hint(&url)),
                    )
                    .at(url_path()),
                );
                return State::default();
            }
            Err(e) if e.kind == ErrorKind::InvalidInput => {
                diags.push(engine_diagnostic("Vault Location Not Empty", &e).at(url_path()));
                return State::default();
            }
            Err(e) => {
                diags.push(engine_diagnostic("Cannot Create Vault", &e).at(url_path()));
                return State::default();
            }
        };
        state.set_attr("source_digest", Value::Null);
        let result = async {
            self.record_settings(&vault, &state).await?;
            self.snapshot(&vault, &mut state).await?;
            self.refresh(&vault, &mut state).await
        }
        .await;
        if let Err(e) = result {
            // The vault exists: keep it in state so the next apply continues from it.
            diags.push(
                engine_diagnostic("Cannot Take The First Snapshot", &e)
                    .at(AttributePath::attr("source")),
            );
            let _ = self.refresh(&vault, &mut state).await;
            state.set_attr("source_digest", Value::string(""));
        }
        State::from(state)
    }

    async fn read(&self, current: &State, diags: &mut Diagnostics) -> State {
        let mut state = current.value.clone();
        let url = state.attr("url").as_str().unwrap_or_default().to_string();
        let options = string_map(state.attr("storage_options"));
        const KEPT: &str = "The state keeps what it last knew of the vault; nothing was changed.";
        match self.vaults.open(&url, &options, &url_path()).await {
            Ok(None) => State::from(Value::Null),
            Ok(Some(vault)) => match self.refresh(&vault, &mut state).await {
                Ok(()) => State::from(state),
                Err(e) => {
                    let d = engine_diagnostic("Cannot Read Vault", &e).at(url_path());
                    if is_unreachable(&d) {
                        diags.push(unreachable_warning(&d, KEPT));
                        return current.clone();
                    }
                    diags.push(d);
                    State::from(state)
                }
            },
            Err(d) if is_unreachable(&d) => {
                diags.push(unreachable_warning(&d, KEPT));
                current.clone()
            }
            Err(d) => {
                diags.push(d);
                current.clone()
            }
        }
    }

    async fn update(
        &self,
        prior: &State,
        planned: &State,
        _config: &Value,
        diags: &mut Diagnostics,
    ) -> State {
        let mut state = planned.value.clone();
        let url = state.attr("url").as_str().unwrap_or_default().to_string();
        let options = string_map(state.attr("storage_options"));
        let vault = match self.vaults.open_existing(&url, &options, &url_path()).await {
            Ok(v) => v,
            Err(d) => {
                diags.push(d);
                return prior.clone();
            }
        };
        let snapshot_due = state.attr("latest_snapshot_id").is_unknown();
        let result = async {
            self.record_settings(&vault, &state).await?;
            if snapshot_due {
                self.snapshot(&vault, &mut state).await?;
            } else if state.attr("snapshot_count").is_unknown() {
                // Retention changed: the plan left the counts open for it.
                self.apply_retention(&vault, &state).await?;
            }
            self.refresh(&vault, &mut state).await
        }
        .await;
        if let Err(e) = result {
            diags.push(
                engine_diagnostic("Cannot Update Vault", &e).at(AttributePath::attr("source")),
            );
            return prior.clone();
        }
        State::from(state)
    }

    async fn delete(&self, prior: &State, diags: &mut Diagnostics) {
        let state = &prior.value;
        let url = state.attr("url").as_str().unwrap_or_default().to_string();
        let options = string_map(state.attr("storage_options"));
        let vault = match self.vaults.open(&url, &options, &url_path()).await {
            Ok(Some(v)) => v,
            Ok(None) => return,
            Err(d) => {
                diags.push(d);
                return;
            }
        };
        let count = match vault.snapshots().await {
            Ok(s) => s.len(),
            Err(e) => {
                diags.push(engine_diagnostic("Cannot Read Vault", &e).at(url_path()));
                return;
            }
        };
        if count > 0 && state.attr("force_destroy").as_bool() != Some(true) {
            diags.push(
                Diagnostic::error(
                    "Vault Holds Snapshots",
                    format!(
                        "The vault at {} holds {count} snapshot(s); destroying it would delete them. \
                         Set force_destroy = true on this resource and apply before destroying it, \
                         or remove it from state with `terraform state rm` to keep the vault.",
                        vault.storage().url()
                    ),
                )
                .at(AttributePath::attr("force_destroy")),
            );
            return;
        }
        self.vaults.forget(&vault.storage().id());
        match vault.destroy(dr_vault::clock::now()).await {
            Ok(done) if !done.foreign_objects_left.is_empty() => diags.push(
                Diagnostic::warning(
                    "Files Left In Place",
                    format!(
                        "The vault at {} is destroyed. {} file(s) under its directories were not the vault's \
                         (for example {:?}) and were left where they are.",
                        vault.storage().url(),
                        done.foreign_objects_left.len(),
                        done.foreign_objects_left[0]
                    ),
                )
                .at(url_path()),
            ),
            Ok(_) => {}
            Err(e) => {
                let at = if e.kind == ErrorKind::Locked {
                    AttributePath::attr("retention").attribute("lock_for")
                } else {
                    url_path()
                };
                diags.push(engine_diagnostic("Cannot Destroy Vault", &e).at(at));
            }
        }
    }

    fn upgrade_state(
        &self,
        version: i64,
        mut state: serde_json::Value,
        diags: &mut Diagnostics,
    ) -> serde_json::Value {
        match version {
            0 => {
                let id = state["id"].as_str().map(|id| upgrade_id(id, state["storage_options"].as_object()));
                if let Some(id) = id {
                    state["id"] = serde_json::Value::String(id);
                }
            }
            SCHEMA_VERSION => {}
            _ => diags.error(
                "Unsupported State Version",
                format!(
                    "This dr_backup_vault's state was written at schema version {version}, by a newer provider; \
                     this one reads versions 0 to {SCHEMA_VERSION}. Use the provider release that wrote it."
                ),
            ),
        }
        state
    }

    async fn import(&self, id: &str, diags: &mut Diagnostics) -> State {
        let vault = match self
            .vaults
            .open_existing(id, &Default::default(), &AttributePath::root())
            .await
        {
            Ok(v) => v,
            Err(d) => {
                diags.push(d);
                return State::default();
            }
        };
        match self.state_of_existing(id, &vault).await {
            Ok(state) => State::from(state),
            Err(e) => {
                diags.push(engine_diagnostic("Cannot Import Vault", &e));
                State::default()
            }
        }
    }
}
