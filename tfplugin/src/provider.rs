//! The traits a provider implements. The SDK turns RPCs into calls on these, with values
//! already decoded, the plan pipeline already run and diagnostics already wired.

use crate::diag::{AttributePath, Diagnostics};
use crate::schema::Schema;
use crate::value::Value;
use async_trait::async_trait;
use std::sync::Arc;

/// A provider: its configuration block and the resources and data sources it serves.
#[async_trait]
pub trait Provider: Send + Sync + 'static {
    /// The provider's type name, the prefix of its resource types (`dr`).
    fn type_name(&self) -> &'static str;

    /// The schema of the `provider "…" {}` block.
    fn schema(&self) -> Schema;

    /// Extra checks of the provider block beyond the schema's validators.
    async fn validate(&self, _config: &Value, _diags: &mut Diagnostics) {}

    /// Receives the provider block. During `plan` it may hold unknown values.
    async fn configure(&self, config: &Value, diags: &mut Diagnostics);

    fn resources(&self) -> Vec<Arc<dyn Resource>>;

    fn data_sources(&self) -> Vec<Arc<dyn DataSource>>;

    /// Ephemeral resources (Terraform 1.10+; older versions never ask).
    fn ephemeral_resources(&self) -> Vec<Arc<dyn EphemeralResource>> {
        Vec::new()
    }

    /// List resources (Terraform 1.14+; older versions never ask).
    fn list_resources(&self) -> Vec<Arc<dyn ListResource>> {
        Vec::new()
    }

    /// Actions (Terraform 1.14+; older versions never ask).
    fn actions(&self) -> Vec<Arc<dyn Action>> {
        Vec::new()
    }

    /// Provider functions, `provider::NAME::FUNCTION(…)` (Terraform 1.8+; older versions
    /// never ask).
    fn functions(&self) -> Vec<Arc<dyn crate::function::Function>> {
        Vec::new()
    }

    /// Terraform asked to stop (Ctrl-C): long operations should wind down.
    async fn stop(&self) {}
}

/// A stored object and the provider's private bytes for it (never shown to users).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct State {
    pub value: Value,
    /// Opaque bytes Terraform stores beside the state. A state returned with empty private
    /// bytes keeps the ones it was given, so `State::from(value)` never wipes them.
    pub private: Vec<u8>,
}

impl From<Value> for State {
    fn from(value: Value) -> Self {
        State {
            value,
            private: Vec::new(),
        }
    }
}

/// What a resource's `modify_plan` sees and may change.
pub struct Plan<'a> {
    /// Null on create.
    pub prior: &'a State,
    pub config: &'a Value,
    /// The plan after defaults, unknown-marking and attribute modifiers.
    pub planned: Value,
    pub planned_private: Vec<u8>,
    pub requires_replace: Vec<AttributePath>,
}

impl Plan<'_> {
    /// True when this plan creates the object.
    pub fn is_create(&self) -> bool {
        self.prior.value.is_null()
    }
}

/// A managed resource type.
#[async_trait]
pub trait Resource: Send + Sync {
    /// The full type name, e.g. `dr_backup_vault`.
    fn type_name(&self) -> &'static str;

    fn schema(&self) -> Schema;

    /// Checks beyond the schema's validators (cross-attribute rules). Values may be unknown.
    async fn validate(&self, _config: &Value, _diags: &mut Diagnostics) {}

    /// Resource-level plan changes: values only the provider can foresee, replacement rules.
    /// Must not write anything.
    async fn modify_plan(&self, _plan: &mut Plan<'_>, _diags: &mut Diagnostics) {}

    /// Creates the object; returns its full state (every unknown filled in). On failure add
    /// an error and return whatever partial state exists (`Null` when nothing was made).
    async fn create(&self, planned: &State, config: &Value, diags: &mut Diagnostics) -> State;

    /// Refreshes the state; `Null` value when the object no longer exists.
    async fn read(&self, current: &State, diags: &mut Diagnostics) -> State;

    /// Updates in place; returns the new state.
    async fn update(
        &self,
        prior: &State,
        planned: &State,
        config: &Value,
        diags: &mut Diagnostics,
    ) -> State;

    /// Deletes the object.
    async fn delete(&self, prior: &State, diags: &mut Diagnostics);

    /// Turns an import ID into a (partial) state; `read` runs next and fills the rest.
    async fn import(&self, id: &str, diags: &mut Diagnostics) -> State {
        let _ = id;
        diags.error(
            "Import Not Supported",
            format!(
                "{} cannot be imported; remove it from the import command.",
                self.type_name()
            ),
        );
        State::default()
    }

    /// The identity schema (Terraform 1.12+); `None` for a resource without an identity.
    fn identity_schema(&self) -> Option<crate::identity::IdentitySchema> {
        None
    }

    /// The identity of the object a state describes (of the identity schema's type). What it
    /// holds must force replacement when it changes: in an update whose plan leaves it
    /// unknown, the SDK announces the prior identity. Called only when `identity_schema` is
    /// `Some`.
    fn identity(&self, _state: &Value) -> Value {
        Value::Null
    }

    /// Imports by identity (`import { identity = {…} }`): the import ID the identity stands
    /// for, which [`Resource::import`] then takes; `None` when the identity names nothing this
    /// resource can import (with an error added).
    fn import_id_of(&self, _identity: &Value, diags: &mut Diagnostics) -> Option<String> {
        diags.error(
            "Import By Identity Not Supported",
            format!(
                "{} cannot be imported by identity; use an import ID.",
                self.type_name()
            ),
        );
        None
    }

    /// Rewrites state JSON stored at schema `version` (older than the current one) into the
    /// current schema's shape. The default accepts only the current version.
    fn upgrade_state(
        &self,
        version: i64,
        state: serde_json::Value,
        diags: &mut Diagnostics,
    ) -> serde_json::Value {
        let current = self.schema().version;
        if version != current {
            diags.error(
                "Unsupported State Version",
                format!(
                    "The state of this {} was written at schema version {version}; this provider reads version {current}. \
                     Use the provider release that wrote it, or remove the object from state and import it again.",
                    self.type_name()
                ),
            );
        }
        state
    }
}

/// A data source type.
#[async_trait]
pub trait DataSource: Send + Sync {
    fn type_name(&self) -> &'static str;

    fn schema(&self) -> Schema;

    async fn validate(&self, _config: &Value, _diags: &mut Diagnostics) {}

    /// Reads the data; returns the config with computed attributes filled in.
    async fn read(&self, config: &Value, diags: &mut Diagnostics) -> Value;
}

/// An ephemeral resource (Terraform 1.10+): opened for one run, its result never written to a
/// plan or a state, closed when the run no longer needs it.
#[async_trait]
pub trait EphemeralResource: Send + Sync {
    fn type_name(&self) -> &'static str;

    fn schema(&self) -> Schema;

    async fn validate(&self, _config: &Value, _diags: &mut Diagnostics) {}

    /// Opens it: the config with computed attributes filled in, and the private bytes
    /// Terraform hands back to [`EphemeralResource::close`] (never shown to anyone). Terraform
    /// calls this only with a wholly known config.
    async fn open(&self, config: &Value, diags: &mut Diagnostics) -> Opened;

    /// Releases what `open` made, from its private bytes. Called once per open that
    /// succeeded, also when the run fails.
    async fn close(&self, _private: &[u8], _diags: &mut Diagnostics) {}
}

/// What [`EphemeralResource::open`] returns.
#[derive(Debug, Clone, Default)]
pub struct Opened {
    pub result: Value,
    pub private: Vec<u8>,
}

/// A list resource (protocol 6.10, Terraform 1.14+ `list` blocks and `terraform query`):
/// finds existing objects of the managed resource type of the same name, so they can be
/// adopted (`terraform query -generate-config-out`) after a state was lost.
#[async_trait]
pub trait ListResource: Send + Sync {
    /// The managed resource type it lists (the identities and objects it returns are that
    /// type's).
    fn type_name(&self) -> &'static str;

    /// The schema of the `list` block's `config`.
    fn schema(&self) -> Schema;

    async fn validate(&self, _config: &Value, _diags: &mut Diagnostics) {}

    /// Finds up to `limit` objects; with `include_object`, each with its full state.
    async fn list(
        &self,
        config: &Value,
        include_object: bool,
        limit: usize,
        diags: &mut Diagnostics,
    ) -> Vec<Listed>;
}

/// One object a [`ListResource`] found.
#[derive(Debug, Clone)]
pub struct Listed {
    /// Of the managed resource type's identity schema.
    pub identity: Value,
    /// How people recognise it in a list.
    pub display_name: String,
    /// Its state, when asked for.
    pub object: Option<Value>,
}

/// An action (protocol 6.10, Terraform 1.14+ `action` blocks, run with `terraform apply
/// -invoke` or from a resource's lifecycle): something done on request, outside the
/// create/update/delete of any resource, leaving no state.
#[async_trait]
pub trait Action: Send + Sync {
    fn type_name(&self) -> &'static str;

    /// The schema of the action block's `config`.
    fn schema(&self) -> Schema;

    async fn validate(&self, _config: &Value, _diags: &mut Diagnostics) {}

    /// Checks a plan-time config (it may hold unknowns) before Terraform commits to running.
    async fn plan(&self, _config: &Value, _diags: &mut Diagnostics) {}

    /// Does it. Each line given to `progress` is shown to the user, in order, before the
    /// result; problems go into `diags`.
    async fn invoke(&self, config: &Value, progress: &mut Vec<String>, diags: &mut Diagnostics);
}
