//! A provider built on `tfplugin` only to prove the SDK through the real Terraform: every
//! attribute kind, every nesting mode, sensitive values, requires-replace, plan-time values,
//! import and a schema upgrade. Objects are JSON files in the provider's `store_dir`, so reads
//! see deletions and imports have something real to find.
//!
//! `TFTEST_SCHEMA_VERSION=0` serves the old schema (with `size_gb` instead of `size`), which
//! lets a test write version-0 state and then read it back through the upgrade.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use tfplugin::{
    async_trait, validators, Attribute, AttributePath, Block, DataSource, Diagnostics, NestedBlock,
    Nesting, Plan, Provider, Resource, Schema, State, Type, Value,
};

/// The source address the test provider is installed under.
pub const ADDRESS: &str = "registry.terraform.io/dr-project/tftest";

type Store = Arc<RwLock<Option<PathBuf>>>;

/// The test provider.
#[derive(Default)]
pub struct TestProvider {
    store: Store,
}

#[async_trait]
impl Provider for TestProvider {
    fn type_name(&self) -> &'static str {
        "tftest"
    }

    fn schema(&self) -> Schema {
        Schema::new(
            0,
            Block::new(vec![
                Attribute::required("store_dir", Type::String).description("Where objects live.")
            ]),
        )
    }

    async fn configure(&self, config: &Value, _diags: &mut Diagnostics) {
        if let (Some(dir), Ok(mut slot)) = (config.attr("store_dir").as_str(), self.store.write()) {
            *slot = Some(PathBuf::from(dir));
        }
    }

    fn resources(&self) -> Vec<Arc<dyn Resource>> {
        vec![Arc::new(Thing {
            store: self.store.clone(),
        })]
    }

    fn data_sources(&self) -> Vec<Arc<dyn DataSource>> {
        vec![Arc::new(ThingInfo {
            store: self.store.clone(),
        })]
    }
}

fn schema_version() -> i64 {
    if std::env::var("TFTEST_SCHEMA_VERSION").as_deref() == Ok("0") {
        0
    } else {
        1
    }
}

fn thing_schema() -> Schema {
    let version = schema_version();
    let size = if version == 0 { "size_gb" } else { "size" };
    let attributes = vec![
        Attribute::required("name", Type::String)
            .requires_replace()
            .validator(validators::matches(
                "[a-z0-9-]{1,63}",
                "lower-case letters, digits and dashes",
            ))
            .description("Name; changing it replaces the thing."),
        Attribute::optional(size, Type::Number).description("Any number, kept to full precision."),
        Attribute::optional("enabled", Type::Bool).default(true),
        Attribute::optional("tags", Type::map(Type::String)),
        Attribute::optional("ports", Type::list(Type::Number)),
        Attribute::optional("aliases", Type::set(Type::String)),
        Attribute::optional("secret", Type::String).sensitive(),
        Attribute::optional("upstream", Type::String)
            .description("Often another thing's id: unknown at plan."),
        Attribute::computed("id", Type::String).use_state_for_unknown(),
        Attribute::computed("created_at", Type::String).use_state_for_unknown(),
        Attribute::computed("revision", Type::Number),
        Attribute::computed("summary", Type::String)
            .description("Known at plan time: `name:size`."),
    ];
    let blocks = vec![
        NestedBlock::new(
            "endpoint",
            Nesting::List,
            Block::new(vec![
                Attribute::required("host", Type::String),
                Attribute::optional("port", Type::Number)
                    .default(443i64)
                    .validator(validators::int_between(1, 65535)),
            ]),
        )
        .max_items(3),
        NestedBlock::new(
            "settings",
            Nesting::Single,
            Block::new(vec![
                Attribute::optional("mode", Type::String)
                    .validator(validators::one_of(&["fast", "safe"])),
                Attribute::optional("retries", Type::Number),
            ]),
        ),
        NestedBlock::new(
            "rule",
            Nesting::Set,
            Block::new(vec![
                Attribute::required("action", Type::String),
                Attribute::optional("priority", Type::Number),
            ]),
        ),
        NestedBlock::new(
            "label",
            Nesting::Map,
            Block::new(vec![Attribute::required("value", Type::String)]),
        ),
        NestedBlock::new(
            "limits",
            Nesting::Group,
            Block::new(vec![
                Attribute::optional("cpu", Type::Number),
                Attribute::optional("memory", Type::String),
            ]),
        ),
    ];
    Schema::new(version, Block::new(attributes).with_blocks(blocks))
}

struct Thing {
    store: Store,
}

impl Thing {
    fn dir(&self, diags: &mut Diagnostics) -> Option<PathBuf> {
        let dir = self.store.read().ok().and_then(|s| s.clone());
        if dir.is_none() {
            diags.error("Provider Not Configured", "store_dir is not known yet.");
        }
        dir
    }

    fn file(dir: &Path, id: &str) -> PathBuf {
        dir.join(format!("{id}.json"))
    }

    fn save(&self, value: &Value, diags: &mut Diagnostics) {
        let Some(dir) = self.dir(diags) else { return };
        let schema = thing_schema();
        let result = value
            .to_json(&schema.block.implied_type())
            .map_err(|e| e.to_string())
            .and_then(|json| {
                let doc = serde_json::json!({ "version": schema.version, "state": json });
                std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
                let id = value.attr("id").as_str().unwrap_or_default();
                std::fs::write(Self::file(&dir, id), doc.to_string()).map_err(|e| e.to_string())
            });
        if let Err(e) = result {
            diags.error("Cannot Save Thing", e);
        }
    }

    /// Loads a stored object, upgrading what an older schema wrote.
    fn load(&self, id: &str, diags: &mut Diagnostics) -> Option<Value> {
        let dir = self.dir(diags)?;
        let text = std::fs::read_to_string(Self::file(&dir, id)).ok()?;
        let doc: serde_json::Value = match serde_json::from_str(&text) {
            Ok(doc) => doc,
            Err(e) => {
                diags.error("Corrupt Thing", format!("{id}: {e}"));
                return None;
            }
        };
        let version = doc["version"].as_i64().unwrap_or(0);
        let json = self.upgrade_state(version, doc["state"].clone(), diags);
        match Value::from_json(&json, &thing_schema().block.implied_type()) {
            Ok(v) => Some(v),
            Err(e) => {
                diags.error("Corrupt Thing", format!("{id}: {e}"));
                None
            }
        }
    }
}

fn now() -> String {
    format!(
        "{}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0)
    )
}

fn summary(config: &Value) -> Value {
    let size = config
        .attr("size")
        .as_number()
        .map_or_else(|| "none".to_string(), ToString::to_string);
    match config.attr("name").as_str() {
        Some(name) => Value::String(format!("{name}:{size}")),
        None => Value::Unknown,
    }
}

#[async_trait]
impl Resource for Thing {
    fn type_name(&self) -> &'static str {
        "tftest_thing"
    }

    fn schema(&self) -> Schema {
        thing_schema()
    }

    async fn validate(&self, config: &Value, diags: &mut Diagnostics) {
        if config.attr("secret").as_str() == Some(config.attr("name").as_str().unwrap_or("\u{0}")) {
            diags.error_at(
                AttributePath::attr("secret"),
                "Weak Secret",
                "secret must differ from name.",
            );
        }
    }

    async fn modify_plan(&self, plan: &mut Plan<'_>, _diags: &mut Diagnostics) {
        // The summary only depends on configuration, so the plan can show it exactly.
        if schema_version() == 1 && !plan.planned.is_null() {
            let summary = summary(plan.config);
            plan.planned.set_attr("summary", summary);
        }
    }

    async fn create(&self, planned: &State, _config: &Value, diags: &mut Diagnostics) -> State {
        let mut value = planned.value.clone();
        let name = value.attr("name").as_str().unwrap_or("thing").to_string();
        // Lets tests prove that a provider bug becomes a diagnostic, not a dead plugin.
        assert!(name != "trigger-panic", "asked to panic");
        value.set_attr(
            "id",
            Value::String(format!(
                "{name}-{}",
                &uuid::Uuid::new_v4().simple().to_string()[..8]
            )),
        );
        value.set_attr("created_at", Value::String(now()));
        value.set_attr("revision", 1i64.into());
        if value.attr("summary").is_unknown() {
            value.set_attr("summary", Value::Null);
        }
        self.save(&value, diags);
        State {
            value,
            private: b"created".to_vec(),
        }
    }

    async fn read(&self, current: &State, diags: &mut Diagnostics) -> State {
        let id = current
            .value
            .attr("id")
            .as_str()
            .unwrap_or_default()
            .to_string();
        let value = self.load(&id, diags).unwrap_or(Value::Null);
        State {
            value,
            private: current.private.clone(),
        }
    }

    async fn update(
        &self,
        prior: &State,
        planned: &State,
        _config: &Value,
        diags: &mut Diagnostics,
    ) -> State {
        let mut value = planned.value.clone();
        let revision = prior
            .value
            .attr("revision")
            .as_number()
            .and_then(tfplugin::Number::to_i64)
            .unwrap_or(0);
        value.set_attr("revision", (revision + 1).into());
        self.save(&value, diags);
        State {
            value,
            private: prior.private.clone(),
        }
    }

    async fn delete(&self, prior: &State, diags: &mut Diagnostics) {
        if let (Some(dir), Some(id)) = (self.dir(diags), prior.value.attr("id").as_str()) {
            let _ = std::fs::remove_file(Self::file(&dir, id));
        }
    }

    async fn import(&self, id: &str, diags: &mut Diagnostics) -> State {
        match self.load(id, diags) {
            Some(value) => value.into(),
            None => {
                diags.error(
                    "Cannot Import",
                    format!("No thing with id {id:?} in the store."),
                );
                State::default()
            }
        }
    }

    fn upgrade_state(
        &self,
        version: i64,
        mut state: serde_json::Value,
        _diags: &mut Diagnostics,
    ) -> serde_json::Value {
        if version == 0 && schema_version() == 1 {
            if let Some(obj) = state.as_object_mut() {
                let size = obj.remove("size_gb").unwrap_or(serde_json::Value::Null);
                obj.insert("size".into(), size);
                // Version 1 added `summary`; derive it as a plan would.
                let as_value = Value::from_json(
                    &serde_json::Value::Object(obj.clone()),
                    &thing_schema().block.implied_type(),
                );
                let summary = as_value.map(|v| summary(&v)).unwrap_or(Value::Null);
                obj.insert(
                    "summary".into(),
                    summary.as_str().map_or(serde_json::Value::Null, Into::into),
                );
            }
        }
        state
    }
}

/// Reads a thing by id: proves data sources and plan-time reads.
struct ThingInfo {
    store: Store,
}

#[async_trait]
impl DataSource for ThingInfo {
    fn type_name(&self) -> &'static str {
        "tftest_thing_info"
    }

    fn schema(&self) -> Schema {
        Schema::new(
            0,
            Block::new(vec![
                Attribute::required("id", Type::String),
                Attribute::computed("name", Type::String),
                Attribute::computed("revision", Type::Number),
                Attribute::computed("tags", Type::map(Type::String)),
            ]),
        )
    }

    async fn read(&self, config: &Value, diags: &mut Diagnostics) -> Value {
        let id = config.attr("id").as_str().unwrap_or_default();
        let thing = Thing {
            store: self.store.clone(),
        };
        let Some(found) = thing.load(id, diags) else {
            if !diags.has_errors() {
                diags.error_at(
                    AttributePath::attr("id"),
                    "Thing Not Found",
                    format!("No thing with id {id:?}."),
                );
            }
            return Value::Null;
        };
        let mut out = config.clone();
        for attr in ["name", "revision", "tags"] {
            out.set_attr(attr, found.attr(attr).clone());
        }
        out
    }
}
