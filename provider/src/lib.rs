//! The `dr` Terraform provider: disaster recovery for CI/CD systems.
//!
//! This crate is a thin layer: `tfplugin` speaks Terraform's protocol, the vault engine does
//! the storage work, and the files here map one to the other.

mod actions;
mod backup_vault;
mod config;
mod drill;
mod functions;
mod region_pair;
mod restore_ephemeral;
mod snapshot_data;
mod vault_data;
mod vault_list;
mod vaults;

pub use config::ProviderConfig;

use std::sync::Arc;
use tfplugin::{async_trait, DataSource, Diagnostics, Model, Provider, Resource, Schema, Value};
use vaults::Vaults;

/// The provider's source address, as users write it in `required_providers`.
pub const PROVIDER_ADDRESS: &str = "registry.terraform.io/dr-project/dr";

/// The provider. Its configuration is shared with every resource once Terraform sends it.
#[derive(Default)]
pub struct DrProvider {
    vaults: Arc<Vaults>,
}

impl DrProvider {
    /// The configuration received from `ConfigureProvider`, if any yet.
    pub fn config(&self) -> Option<ProviderConfig> {
        self.vaults.config().ok()
    }
}

#[async_trait]
impl Provider for DrProvider {
    fn type_name(&self) -> &'static str {
        "dr"
    }

    fn schema(&self) -> Schema {
        config::schema()
    }

    async fn validate(&self, config: &Value, diags: &mut Diagnostics) {
        if let Some(model) = config::ProviderModel::read(config, diags) {
            config::validate(&model, diags);
        }
    }

    async fn configure(&self, config: &Value, diags: &mut Diagnostics) {
        // During `plan` the block may still hold unknowns; resources then plan without it.
        if !config.is_wholly_known() {
            return;
        }
        let parsed = ProviderConfig::from_value(config, &|name| std::env::var(name).ok(), diags);
        if let Some(parsed) = parsed {
            self.vaults.set_config(parsed);
        }
    }

    fn resources(&self) -> Vec<Arc<dyn Resource>> {
        vec![
            Arc::new(backup_vault::BackupVault {
                vaults: self.vaults.clone(),
            }),
            Arc::new(region_pair::RegionPair {
                vaults: self.vaults.clone(),
            }),
            Arc::new(drill::Drill {
                vaults: self.vaults.clone(),
            }),
        ]
    }

    fn ephemeral_resources(&self) -> Vec<Arc<dyn tfplugin::EphemeralResource>> {
        vec![Arc::new(restore_ephemeral::Restore {
            vaults: self.vaults.clone(),
        })]
    }

    fn actions(&self) -> Vec<Arc<dyn tfplugin::Action>> {
        vec![
            Arc::new(actions::SnapshotNow {
                vaults: self.vaults.clone(),
            }),
            Arc::new(actions::RunDrill::new(self.vaults.clone())),
        ]
    }

    fn list_resources(&self) -> Vec<Arc<dyn tfplugin::ListResource>> {
        vec![Arc::new(vault_list::VaultList {
            vaults: self.vaults.clone(),
        })]
    }

    fn functions(&self) -> Vec<Arc<dyn tfplugin::Function>> {
        functions::all()
    }

    fn data_sources(&self) -> Vec<Arc<dyn DataSource>> {
        vec![
            Arc::new(vault_data::VaultData {
                vaults: self.vaults.clone(),
            }),
            Arc::new(snapshot_data::SnapshotData {
                vaults: self.vaults.clone(),
            }),
        ]
    }
}
