//! `dr_backup_vault`: a vault and the snapshots of its sources. Plan computes the sources'
//! digest (cheaply: unchanged files are recognised from the latest snapshot's manifest), so a
//! changed file shows as an update with the new digest; apply then takes exactly one snapshot.
//!
//! The configuration-side settings are also recorded inside the vault (sealed), so that
//! `terraform import` of a vault whose state was lost plans empty.

use crate::vaults::{
    duration, engine_diagnostic, is_unreachable, recorded_time_attr, same_place,
    storage_options_validator, time_attr, unreachable_warning, Vaults,
};
use dr_vault::{
    ErrorKind, InitOptions, KdfParams, Leftovers, NoProgress, Policy, Remains, Retention,
    SourceSpec, Vault,
};
use std::collections::BTreeMap;
use std::sync::Arc;
use tfplugin::{
    async_trait, validators, Attr, AttrKind, Attribute, AttributePath, Block, Diagnostic,
    Diagnostics, Model, NestedBlock, Nesting, Number, Plan, Resource, Schema, State, Type, Value,
};

tfplugin::model! {
    /// A `dr_backup_vault` as configured, planned or stored.
    struct VaultModel {
        name: Attr<String>,
        region: Attr<String>,
        url: Attr<String>,
        storage_options: Attr<BTreeMap<String, String>>,
        force_destroy: Attr<bool>,
        labels: Attr<BTreeMap<String, String>>,
        key_from: Attr<String>,
        id: Attr<String>,
        created_at: Attr<String>,
        source_digest: Attr<String>,
        latest_snapshot_id: Attr<String>,
        latest_snapshot_at: Attr<String>,
        snapshot_count: Attr<u64>,
        stored_bytes: Attr<u64>,
        retention: Attr<RetentionModel>,
        source: Attr<Vec<SourceModel>>,
    }
}

tfplugin::model! {
    struct RetentionModel {
        // A number, not a u64: validation, not decoding, tells the user about -1 or 1.5.
        keep_last: Attr<Number>,
        keep_within: Attr<String>,
        lock_for: Attr<String>,
    }
}

tfplugin::model! {
    struct SourceModel {
        name: Attr<String>,
        path: Attr<String>,
        include: Attr<Vec<String>>,
        exclude: Attr<Vec<String>>,
    }
}

/// Version 1: `id` carries the vault's storage options (see [`upgrade_id`]).
const SCHEMA_VERSION: i64 = 1;

/// Where the resource's settings live inside the vault.
const SETTINGS_RECORD: &str = "terraform/dr_backup_vault";

tfplugin::model! {
    /// A vault's identity (Terraform 1.12+): where it is.
    pub(crate) struct VaultIdentity {
        pub(crate) url: Attr<String>,
    }
}

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
        // Not for another spelling of the same place: an import by id must not plan to delete
        // the vault.
        Attribute::required("url", Type::String)
            .requires_replace_if("when it points at another place", url_moved)
            .description(
                "Where the vault lives: a plain path (relative to the root module), `file://…`, \
                 `s3://bucket/prefix`, `gs://bucket/prefix` or `az://container/prefix`. Pointing it elsewhere \
                 replaces the vault; another spelling of the same place is an update in place.",
            ),
        Attribute::optional("storage_options", Type::map(Type::String))
            .validator(storage_options_validator())
            .description(
            "Object-store options for this vault, merged over the provider's. Credentials come from the environment.",
        ),
        Attribute::optional("force_destroy", Type::Bool).default(false).description(
            "Let destroy delete the vault with its snapshots. Snapshots younger than `retention.lock_for` block destroy regardless.",
        ),
        Attribute::optional("labels", Type::map(Type::String))
            .description("Labels stored with the vault's snapshots."),
        Attribute::optional("key_from", Type::String)
            .description(
                "Create this vault as a standby sharing the master key (and chunking) of the vault with this id, \
                 usually `dr_backup_vault.<primary>.id`: replication between the two (a `dr_region_pair`) then copies \
                 packs as they are, at the speed of a plain copy, instead of re-encrypting every blob. What it gives \
                 up: whoever learns the key of one opens both, neither can later be separated from the other, and \
                 packs are not opened on the way (damage at the primary is copied; `drctl vault verify --read-data` \
                 finds it). Read at creation only: changing it never replaces the vault. A new value must name a \
                 vault that shares this one's key (checked at plan time), and removing it (as when the primary is \
                 lost) changes nothing in the vault.",
            ),
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
        // What apply may change is left open by modify_plan: the snapshot fields when a
        // snapshot is due, the counts when retention runs; they keep their values otherwise.
        Attribute::computed("source_digest", Type::String)
            .use_state_for_unknown()
            .description(
            "Digest of every source's content. A plan shows the new digest when a source changed; apply then takes a snapshot.",
        ),
        Attribute::computed("latest_snapshot_id", Type::String)
            .use_state_for_unknown()
            .description("The newest snapshot's id."),
        Attribute::computed("latest_snapshot_at", Type::String)
            .use_state_for_unknown()
            .description("When the newest snapshot was taken (RFC 3339, UTC)."),
        Attribute::computed("snapshot_count", Type::Number)
            .use_state_for_unknown()
            .description("How many snapshots the vault holds."),
        Attribute::computed("stored_bytes", Type::Number)
            .use_state_for_unknown()
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
fn source_specs(model: &VaultModel) -> Option<Vec<SourceSpec>> {
    let sources = match &model.source {
        Attr::Unknown => return None,
        other => other.or_default(),
    };
    sources
        .iter()
        .map(|s| {
            let known = s.name.is_known()
                && s.path.is_known()
                && !s.include.is_unknown()
                && !s.exclude.is_unknown();
            known.then(|| SourceSpec {
                name: s.name.or_default(),
                path: s.path.or_default().into(),
                include: s.include.or_default(),
                exclude: s.exclude.or_default(),
            })
        })
        .collect()
}

fn retention(model: &VaultModel) -> Retention {
    let r = model.retention.or_default();
    Retention {
        keep_last: r
            .keep_last
            .get()
            .and_then(Number::to_u64)
            .map(|n| n as usize),
        keep_within: duration(&r.keep_within, "keep_within"),
        lock_for: duration(&r.lock_for, "lock_for"),
    }
}

impl VaultModel {
    /// Plans a snapshot: the new digest when known, and the facts it changes left to apply.
    fn plan_snapshot(&mut self, digest: Option<String>) {
        self.source_digest = digest.map_or(Attr::Unknown, Attr::Known);
        self.latest_snapshot_id = Attr::Unknown;
        self.latest_snapshot_at = Attr::Unknown;
        self.snapshot_count = Attr::Unknown;
        self.stored_bytes = Attr::Unknown;
    }
}

fn url_path() -> AttributePath {
    AttributePath::attr("url")
}

fn key_from_path() -> AttributePath {
    AttributePath::attr("key_from")
}

/// Whether a new url points somewhere else than the prior one (not merely spells the same
/// place another way): only that replaces the vault. An unknown url may point anywhere.
fn url_moved(prior: &Value, planned: &Value) -> bool {
    match (prior.as_str(), planned.as_str()) {
        (Some(was), Some(now)) => !same_place(was, now),
        _ => !planned.is_null(),
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
    /// Checks that the vault at `url` shares the key of the vault `primary` names, as
    /// `key_from` says; an error on `key_from` when it does not.
    async fn check_key_shared(
        &self,
        url: &str,
        options: &BTreeMap<String, String>,
        primary: &str,
        diags: &mut Diagnostics,
    ) {
        let opened = async {
            let vault = self.vaults.open_existing(url, options, &url_path()).await?;
            let primary = self
                .vaults
                .open_existing(primary, &Default::default(), &key_from_path())
                .await?;
            Ok::<_, Diagnostic>(vault.shares_key_with(&primary))
        };
        match opened.await {
            Ok(true) => {}
            Ok(false) => diags.error_at(
                key_from_path(),
                "Key Not Shared",
                format!(
                    "The vault at {url} does not share the master key of {primary}: key_from is read only when a \
                     vault is created, and a vault's key never changes. Keep the previous value or remove key_from; \
                     for a standby sharing {primary}'s key, create a new dr_backup_vault (another url) with key_from \
                     (the next replication fills it)."
                ),
            ),
            Err(d) => diags.push(d),
        }
    }

    /// The vault's current facts: latest snapshot, counts, bytes.
    async fn refresh(&self, vault: &Vault, state: &mut VaultModel) -> Result<(), dr_vault::Error> {
        let snapshots = vault.snapshots().await?;
        let config = vault.config();
        let latest = dr_vault::latest_of(&snapshots);
        state.id = vault.storage().id().into();
        state.name = config.name.as_str().into();
        state.region = config.region.as_str().into();
        state.created_at = recorded_time_attr(&config.created_at);
        state.latest_snapshot_id = Attr::from_option(latest.map(|s| s.id.clone()));
        state.latest_snapshot_at = latest.map_or(Attr::Null, |s| time_attr(s.time));
        state.snapshot_count = (snapshots.len() as u64).into();
        state.stored_bytes = vault.stored_bytes().await?.into();
        Ok(())
    }

    /// Records the configuration-side settings in the vault (for import) and its policy.
    async fn record_settings(
        &self,
        vault: &Vault,
        planned: &Value,
        state: &VaultModel,
    ) -> Result<(), dr_vault::Error> {
        let schema = schema();
        // Only what the configuration sets, as Terraform sent it: the computed attributes are
        // read from the vault.
        let mut settings = planned.clone();
        for a in schema
            .block
            .attributes
            .iter()
            .filter(|a| a.kind == AttrKind::Computed)
        {
            settings.set_attr(&a.name, Value::Null);
        }
        let json = settings
            .to_json(&schema.block.implied_type())
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
    async fn snapshot(&self, vault: &Vault, state: &mut VaultModel) -> Result<(), dr_vault::Error> {
        let specs = source_specs(state).unwrap_or_default();
        let digest = if specs.is_empty() {
            vault.source_digest(&[]).await?
        } else {
            vault
                .snapshot(&specs, &state.labels.or_default(), &NoProgress)
                .await?
                .source_digest
        };
        match state.source_digest.as_str() {
            Some(p) if p != digest => tracing::warn!(
                "a source changed between plan and apply; the next plan will snapshot it again ({p} → {digest})"
            ),
            _ => state.source_digest = digest.into(),
        }
        self.apply_retention(vault, state).await
    }

    async fn apply_retention(
        &self,
        vault: &Vault,
        state: &VaultModel,
    ) -> Result<(), dr_vault::Error> {
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
    /// is left to apply; `None` keeps the prior id.
    fn plan_id(&self, config: &VaultModel, prior: &VaultModel) -> Option<Attr<String>> {
        let computed = config
            .url
            .as_str()
            .filter(|_| config.storage_options.is_wholly_known())
            .and_then(|url| {
                let options = config.storage_options.or_default();
                self.vaults.storage(url, &options, false, &url_path()).ok()
            })
            .map(|storage| storage.id());
        let may_change = config.url != prior.url
            || config.storage_options != prior.storage_options
            || self.vaults.config().is_err();
        match computed {
            Some(id) => Some(id.into()),
            None if may_change => Some(Attr::Unknown),
            None => None,
        }
    }

    /// The plan of an update that replaces nothing: a snapshot when a source changed, the
    /// counts when retention changed. Reads the sources, never writes.
    async fn plan_update(
        &self,
        config: &VaultModel,
        prior: &VaultModel,
        planned: &mut VaultModel,
        diags: &mut Diagnostics,
    ) {
        // A new key_from (on an imported vault, or naming another vault) is checked, never
        // applied: a vault's key cannot change, and replacing a standby (in a disaster, the
        // only copy left) to change it would be the tool making things worse.
        if let (Some(primary), Some(url)) = (config.key_from.as_str(), prior.url.as_str()) {
            let unchanged = prior
                .key_from
                .as_str()
                .is_some_and(|was| same_place(was, primary));
            if !unchanged {
                self.check_key_shared(url, &prior.storage_options.or_default(), primary, diags)
                    .await;
            }
        }
        let (was, now) = (retention(prior).lock_for, retention(config).lock_for);
        if config.retention.is_wholly_known() && was > now {
            let promised = prior.retention.get().and_then(|r| r.lock_for.cloned());
            diags.error_at(
                AttributePath::attr("retention").attribute("lock_for"),
                "lock_for Cannot Be Lowered",
                format!(
                    "This vault promises that snapshots are kept for {}; lowering that would unlock snapshots \
                     taken under the promise. Keep lock_for at least that long. (It binds this provider, drctl and anyone \
                     using the vault's passphrase; once every snapshot is older than it, the vault can be destroyed.)",
                    promised.unwrap_or_default()
                ),
            );
            return;
        }
        // Options not all known yet: where the vault is cannot be told, so the digest cannot.
        let digest = match (source_specs(config), config.url.as_str()) {
            (Some(specs), Some(url)) if !config.storage_options.is_unknown() => {
                let options = config.storage_options.or_default();
                match self.vaults.open(url, &options, &url_path()).await {
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
                    // No config, and the refresh kept the vault for its remains (it said
                    // why): nothing can be written into it, so no snapshot is planned, and
                    // only force_destroy, which lives in the state, may change.
                    Ok(None) => {
                        let mut only_force = planned.clone();
                        only_force.force_destroy = prior.force_destroy.clone();
                        if only_force != *prior {
                            diags.error_at(
                                url_path(),
                                "Vault Config Missing",
                                format!(
                                    "The vault at {url} has no config, so nothing can be changed in it: only \
                                     force_destroy can change (to let `terraform destroy` finish it). Put the config \
                                     back from a copy, or destroy the vault, before changing anything else."
                                ),
                            );
                        }
                        return;
                    }
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
                }
            }
            _ => None,
        };
        if digest.is_none() || digest.as_deref() != prior.source_digest.as_str() {
            planned.plan_snapshot(digest);
        }
        if planned.retention != prior.retention {
            planned.snapshot_count = Attr::Unknown;
            planned.stored_bytes = Attr::Unknown;
        }
    }

    /// Takes a snapshot now of the sources the vault's recorded settings name (what the
    /// `dr_snapshot_now` action does), then applies its retention; `None` when the vault
    /// records no settings (it was not made by a `dr_backup_vault`). The snapshot stands
    /// whatever retention gives, so that comes back on its own.
    pub(crate) async fn snapshot_now(
        &self,
        vault: &Vault,
    ) -> Result<Option<(dr_vault::SnapshotSummary, Result<(), dr_vault::Error>)>, dr_vault::Error>
    {
        let ty = schema().block.implied_type();
        let Some(json) = vault.record(SETTINGS_RECORD).await? else {
            return Ok(None);
        };
        let corrupt =
            |e: String| dr_vault::Error::new(ErrorKind::Corrupt, format!("{SETTINGS_RECORD}: {e}"));
        let settings = Value::from_json(&json, &ty).map_err(|e| corrupt(e.to_string()))?;
        let model = VaultModel::from_value(&settings)
            .map_err(|e| corrupt(format!("{}: {}", e.path, e.message)))?;
        let specs = source_specs(&model).unwrap_or_default();
        if specs.is_empty() {
            return Err(dr_vault::Error::new(
                ErrorKind::InvalidInput,
                format!("the vault at {} backs up no source", vault.storage().url()),
            ));
        }
        let taken = vault
            .snapshot(&specs, &model.labels.or_default(), &NoProgress)
            .await?;
        let retained = self.apply_retention(vault, &model).await;
        Ok(Some((taken, retained)))
    }

    /// Builds a full state for an existing vault: its recorded settings when the provider
    /// created it, else what its config and latest snapshot say.
    async fn state_of_existing(&self, url: &str, vault: &Vault) -> Result<Value, dr_vault::Error> {
        let ty = schema().block.implied_type();
        let snapshots = vault.snapshots().await?;
        let corrupt =
            |e: String| dr_vault::Error::new(ErrorKind::Corrupt, format!("{SETTINGS_RECORD}: {e}"));
        // The settings as the configuration wrote them (null map entries included): the state
        // is written over them, so an import plans no change.
        let recorded = match vault.record(SETTINGS_RECORD).await? {
            Some(json) => Some(Value::from_json(&json, &ty).map_err(|e| corrupt(e.to_string()))?),
            None => None,
        };
        let mut state = match &recorded {
            Some(settings) => VaultModel::from_value(settings)
                .map_err(|e| corrupt(format!("{}: {}", e.path, e.message)))?,
            None => {
                let mut sources = Vec::new();
                if let Some(latest) = dr_vault::latest_of(&snapshots) {
                    let snapshot = vault.load_snapshot(&latest.id).await?;
                    for s in &snapshot.sources {
                        sources.push(SourceModel {
                            name: s.name.as_str().into(),
                            path: s.origin.as_str().into(),
                            ..SourceModel::default()
                        });
                    }
                }
                let labels = &vault.config().labels;
                let from_id = dr_vault::storage::split_vault_url(url)
                    .map(|(_, options)| options)
                    .unwrap_or_default();
                let non_empty = |m: &BTreeMap<String, String>| {
                    Attr::from_option((!m.is_empty()).then(|| m.clone()))
                };
                VaultModel {
                    storage_options: non_empty(&from_id),
                    force_destroy: false.into(),
                    labels: non_empty(labels),
                    source: sources.into(),
                    ..VaultModel::default()
                }
            }
        };
        // The url as the configuration spelled it when it names the same place as the
        // import id: importing by id then plans no change of url.
        let url = match state.url.as_str() {
            Some(r) if same_place(r, url) => r.to_string(),
            _ => dr_vault::storage::split_vault_url(url)
                .map_or_else(|_| url.to_string(), |(bare, _)| bare),
        };
        state.url = url.into();
        // A vault without sources (a standby) digests nothing, whatever its replicated
        // snapshots hold: as create and every plan compute it.
        let digest = match dr_vault::latest_of(&snapshots) {
            Some(info) if !state.source.or_default().is_empty() => info.source_digest.clone(),
            _ => vault.source_digest(&[]).await?,
        };
        state.source_digest = digest.into();
        self.refresh(vault, &mut state).await?;
        // Every attribute and block present, as Terraform requires.
        let mut value = match &recorded {
            Some(settings) => state.written_over(settings),
            None => state.to_value(),
        };
        schema().block.normalize(&mut value);
        Ok(value)
    }

    /// A vault whose config is gone. Gone for Terraform too when nothing is left at its
    /// location; otherwise what is left stays this resource's, so that a `terraform destroy`
    /// comes to delete it: dropped here, no delete would ever come (the crash campaign's
    /// finding: a destroy killed part way, then the next destroy "succeeded" leaving the
    /// snapshots, or the key file, behind).
    /// - Snapshot manifests left: the state stays as it was, with a warning. Nothing but a
    ///   destroy (with `force_destroy`) deletes them; an apply plans no change.
    /// - Anything else (key files, records, locks, staging files: no snapshot): the name,
    ///   which lived in the config, reads as null, so the next plan replaces the vault; the
    ///   replacement's delete clears what is left and its create makes the vault anew.
    async fn read_without_config(
        &self,
        current: &State,
        url: &str,
        options: &BTreeMap<String, String>,
        diags: &mut Diagnostics,
    ) -> State {
        match self.vaults.leftovers(url, options, &url_path()).await {
            // Created meanwhile (a racing create): the next refresh reads it.
            Ok(Leftovers { config: true, .. }) => current.clone(),
            Ok(Leftovers {
                anything: false, ..
            }) => State::from(Value::Null),
            Ok(Leftovers { manifests, .. }) if manifests > 0 => {
                diags.push(
                    Diagnostic::warning(
                        "Vault Config Missing",
                        format!(
                            "The vault at {url} has no config but still holds {manifests} snapshot manifest(s): \
                             a destroy stopped part way, or the config was lost. The vault stays in state so that \
                             `terraform destroy` (with force_destroy = true) finishes deleting it; to keep the \
                             snapshots, put the config back from a copy, or `terraform state rm` the resource. \
                             Nothing was changed."
                        ),
                    )
                    .at(url_path()),
                );
                current.clone()
            }
            Ok(_) => {
                diags.push(
                    Diagnostic::warning(
                        "Vault Config Missing",
                        format!(
                            "The vault at {url} has no config, and what is left of it holds no snapshot: \
                             a destroy stopped part way. The next apply replaces the vault (deleting what is \
                             left, if it opens with this passphrase) and `terraform destroy` deletes it."
                        ),
                    )
                    .at(url_path()),
                );
                match VaultModel::read(&current.value, diags) {
                    Some(mut state) => {
                        state.name = Attr::Null;
                        State::from(state.written_over(&current.value))
                    }
                    None => current.clone(),
                }
            }
            Err(d) if is_unreachable(&d) => {
                diags.push(unreachable_warning(
                    &d,
                    "The state keeps what it last knew of the vault; nothing was changed.",
                ));
                current.clone()
            }
            Err(d) => {
                diags.push(d);
                current.clone()
            }
        }
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
        let Some(config) = VaultModel::read(config, diags) else {
            return;
        };
        let mut names = std::collections::BTreeSet::new();
        for (i, s) in config.source.or_default().iter().enumerate() {
            let at = AttributePath::attr("source").index(i);
            if let Some(name) = s.name.as_str() {
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
            if let Some(path) = s.path.as_str() {
                if std::fs::symlink_metadata(path).is_err() {
                    let shown = std::path::absolute(path).unwrap_or_else(|_| path.into());
                    diags.error_at(
                        at.clone().attribute("path"),
                        "Source Path Not Found",
                        format!(
                            "source {:?}: {} does not exist. Relative paths resolve against the root module directory.",
                            s.name.as_str().unwrap_or_default(),
                            shown.display()
                        ),
                    );
                }
            }
            for (list, globs) in [("include", &s.include), ("exclude", &s.exclude)] {
                for (j, pattern) in globs.or_default().iter().enumerate() {
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

    async fn modify_plan(&self, plan: &mut Plan<'_>, diags: &mut Diagnostics) {
        // A replacement is planned by the schema (url moved, name or region changed) and then
        // planned again by Terraform as a create.
        if plan.planned.is_null() || !plan.requires_replace.is_empty() {
            return;
        }
        let Some(config) = VaultModel::read(plan.config, diags) else {
            return;
        };
        let Some(prior) = VaultModel::read(&plan.prior.value, diags) else {
            return;
        };
        let Some(mut planned) = VaultModel::read(&plan.planned, diags) else {
            return;
        };
        if !plan.is_create() {
            if let Some(id) = self.plan_id(&config, &prior) {
                planned.id = id;
            }
        }
        if self.vaults.config().is_err() {
            // The provider block is unknown during this plan: the sources cannot be read, so
            // a changed resource may need a snapshot.
            if !plan.is_create() && plan.planned != plan.prior.value {
                planned.plan_snapshot(None);
            }
        } else {
            match self.vaults.passphrase() {
                Err(d) => diags.push(d),
                // Whether a vault already exists at a new url is checked by create, not here:
                // during a replacement the old vault at the same url is still present.
                Ok(_) if plan.is_create() => {}
                Ok(_) => self.plan_update(&config, &prior, &mut planned, diags).await,
            }
        }
        planned.write_into(&mut plan.planned);
    }

    async fn create(&self, planned: &State, _config: &Value, diags: &mut Diagnostics) -> State {
        let Some(mut state) = VaultModel::read(&planned.value, diags) else {
            return State::default();
        };
        let url = state.url.or_default();
        let storage =
            match self
                .vaults
                .storage(&url, &state.storage_options.or_default(), true, &url_path())
            {
                Ok(s) => s,
                Err(d) => {
                    diags.push(d);
                    return State::default();
                }
            };
        let mut opts = InitOptions::new(
            state.name.as_str().unwrap_or_default(),
            state.region.as_str().unwrap_or_default(),
        );
        opts.labels = state.labels.or_default();
        opts.kdf = KdfParams::for_new_vault();
        // A standby sharing a primary's key: the primary (named by its id) is opened first.
        let primary = match state.key_from.as_str() {
            None => None,
            Some(id) => match self
                .vaults
                .open_existing(id, &Default::default(), &key_from_path())
                .await
            {
                Ok(v) if v.config().format_version == dr_vault::format::FORMAT_VERSION => Some(v),
                Ok(v) => {
                    diags.error_at(
                        key_from_path(),
                        "Key Cannot Be Shared",
                        format!(
                            "The vault at {} is of format {}; a standby shares the key of a format {} vault only \
                             (older vaults chunk with another key). Remove key_from: the standby gets a key of its own.",
                            v.storage().url(),
                            v.config().format_version,
                            dr_vault::format::FORMAT_VERSION
                        ),
                    );
                    return State::default();
                }
                Err(d) => {
                    diags.push(d);
                    return State::default();
                }
            },
        };
        let primary = primary.as_deref();
        let mut created = self.vaults.init(storage.clone(), &opts, primary).await;
        if matches!(&created, Err(e) if e.kind == ErrorKind::InvalidInput) {
            // What a destroy killed part way left (its lock, its keys) makes the location look
            // taken, and the refresh of `terraform destroy` had already dropped the vault from
            // state, so no delete came to finish it (the crash campaign's open finding). The
            // remains go when they are provably this configuration's and hold no snapshot.
            let remains = self
                .vaults
                .finish_interrupted_destroy(
                    &url,
                    &state.storage_options.or_default(),
                    false,
                    &url_path(),
                )
                .await;
            let finished = match remains {
                Ok(Remains::Finished(_)) => Some(format!(
                    "{url} held what an earlier destroy left (opened with this passphrase, no snapshots): \
                     it is deleted."
                )),
                Ok(Remains::Debris) => Some(format!(
                    "{url} held only what writes cut short leave (staging files whose writer is gone, \
                     emptied directories of a vault): they are removed."
                )),
                _ => None,
            };
            if let Some(finished) = finished {
                diags.push(
                    Diagnostic::warning("Interrupted Destroy Finished", finished).at(url_path()),
                );
                created = self.vaults.init(storage, &opts, primary).await;
            }
        }
        let vault = match created {
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
        state.source_digest = Attr::Null;
        let result = async {
            self.record_settings(&vault, &planned.value, &state).await?;
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
            state.source_digest = "".into();
        }
        State::from(state.written_over(&planned.value))
    }

    async fn read(&self, current: &State, diags: &mut Diagnostics) -> State {
        let Some(mut state) = VaultModel::read(&current.value, diags) else {
            return current.clone();
        };
        let url = state.url.or_default();
        let options = state.storage_options.or_default();
        const KEPT: &str = "The state keeps what it last knew of the vault; nothing was changed.";
        match self.vaults.open(&url, &options, &url_path()).await {
            Ok(None) => {
                self.read_without_config(current, &url, &options, diags)
                    .await
            }
            Ok(Some(vault)) => match self.refresh(&vault, &mut state).await {
                Ok(()) => State::from(state.written_over(&current.value)),
                Err(e) => {
                    let d = engine_diagnostic("Cannot Read Vault", &e).at(url_path());
                    if is_unreachable(&d) {
                        diags.push(unreachable_warning(&d, KEPT));
                        return current.clone();
                    }
                    diags.push(d);
                    State::from(state.written_over(&current.value))
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
        let Some(mut state) = VaultModel::read(&planned.value, diags) else {
            return prior.clone();
        };
        let vault = match self
            .vaults
            .open(
                &state.url.or_default(),
                &state.storage_options.or_default(),
                &url_path(),
            )
            .await
        {
            Ok(Some(v)) => v,
            // No config (the refresh kept the vault for its remains): the plan let only
            // force_destroy change, and it lives in the state alone.
            Ok(None)
                if !state.latest_snapshot_id.is_unknown() && !state.snapshot_count.is_unknown() =>
            {
                return State::from(state.written_over(&planned.value));
            }
            Ok(None) => {
                diags.push(
                    Diagnostic::error(
                        "Vault Config Missing",
                        format!(
                            "The vault at {} has no config, so no snapshot can be taken into it.",
                            state.url.or_default()
                        ),
                    )
                    .at(url_path()),
                );
                return prior.clone();
            }
            Err(d) => {
                diags.push(d);
                return prior.clone();
            }
        };
        let snapshot_due = state.latest_snapshot_id.is_unknown();
        let result = async {
            self.record_settings(&vault, &planned.value, &state).await?;
            if snapshot_due {
                self.snapshot(&vault, &mut state).await?;
            } else if state.snapshot_count.is_unknown() {
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
        State::from(state.written_over(&planned.value))
    }

    async fn delete(&self, prior: &State, diags: &mut Diagnostics) {
        let Some(state) = VaultModel::read(&prior.value, diags) else {
            return;
        };
        let vault = match self
            .vaults
            .open(
                &state.url.or_default(),
                &state.storage_options.or_default(),
                &url_path(),
            )
            .await
        {
            Ok(Some(v)) => v,
            Ok(None) => {
                // No vault: gone, or its config deleted by a destroy that was killed before it
                // finished, which this destroy completes when what is left is provably this
                // vault's and protects nothing.
                let force = state.force_destroy.get() == Some(&true);
                let url = state.url.or_default();
                let remains = self
                    .vaults
                    .finish_interrupted_destroy(
                        &url,
                        &state.storage_options.or_default(),
                        force,
                        &url_path(),
                    )
                    .await;
                match remains {
                    // Nothing of the vault, or only what its writes cut short left.
                    Ok(Remains::None | Remains::Debris) => {}
                    Ok(Remains::Finished(_)) => diags.push(
                        Diagnostic::warning(
                            "Interrupted Destroy Finished",
                            format!(
                                "The vault at {url} had no config, and what was left of it (opened with its \
                                 passphrase) is deleted now: an earlier destroy had stopped part way."
                            ),
                        )
                        .at(url_path()),
                    ),
                    Ok(Remains::Kept {
                        reason,
                        holds_snapshots: true,
                    }) => diags.push(if force {
                        // force_destroy is set: what keeps them is their lock_for.
                        Diagnostic::error("Vault Remains Hold Snapshots", format!("{reason}. The destroy can finish once they are older than lock_for; to keep them and let the resource go, `terraform state rm` it."))
                            .at(url_path())
                    } else {
                        Diagnostic::error("Vault Remains Hold Snapshots", format!("{reason}. Set force_destroy = true and apply before destroying, or remove the resource from state with `terraform state rm` to keep them."))
                            .at(AttributePath::attr("force_destroy"))
                    }),
                    // Not provably this vault's: left where it is, and the resource goes.
                    Ok(Remains::Kept { reason, .. }) => diags.push(
                        Diagnostic::warning("Objects Left In Place", format!("{reason}; they were left where they are."))
                            .at(url_path()),
                    ),
                    Err(d) => diags.push(Diagnostic::warning(
                        "Vault Remains Not Checked",
                        format!("The vault at {url} is gone, but what may be left of it could not be checked: {}", d.detail),
                    )
                    .at(url_path())),
                }
                return;
            }
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
        if count > 0 && state.force_destroy.get() != Some(&true) {
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

    /// A vault is identified by where it is: its URL and which store (its other options may
    /// change in place; moving `url` replaces the vault).
    fn identity_schema(&self) -> Option<tfplugin::IdentitySchema> {
        Some(tfplugin::IdentitySchema {
            version: 0,
            attributes: vec![crate::vaults::vault_identity_attribute(
                "url",
                "Where the vault is: its canonical URL, with only the storage options that say which store (endpoint, account_name).",
            )],
        })
    }

    fn identity(&self, state: &Value) -> Value {
        let id = VaultModel::from_value(state).map_or(Attr::Null, |m| m.id);
        VaultIdentity {
            url: crate::vaults::location_attr(&id),
        }
        .to_value()
    }

    fn import_id_of(&self, identity: &Value, diags: &mut Diagnostics) -> Option<String> {
        let url = VaultIdentity::read(identity, diags)?.url.get().cloned();
        if url.is_none() {
            diags.error(
                "Invalid Identity",
                "A dr_backup_vault identity needs its url.",
            );
        }
        url
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_model_matches_the_schema() {
        tfplugin::model::check_model::<VaultModel>(&schema().block).unwrap();
    }

    #[test]
    fn the_identity_model_matches_the_identity_schema() {
        use tfplugin::Resource as _;
        let schema = BackupVault {
            vaults: Default::default(),
        }
        .identity_schema()
        .unwrap();
        assert_eq!(VaultIdentity::implied_type(), schema.ty());
    }
}
