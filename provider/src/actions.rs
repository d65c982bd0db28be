//! The provider's actions (Terraform 1.14+, `action` blocks run with `terraform apply -invoke`
//! or from a resource's lifecycle): `dr_snapshot_now` and `dr_run_drill`, for doing now what
//! an apply does when something changed, without a change. They leave no state: what they do
//! is recorded in the vault (a snapshot; a drill report, marked as the action's, which
//! `drctl status` reads and a `dr_drill`'s import skips).

use crate::backup_vault::duration_validator;
use crate::drill::{Drill, RunNow};
use crate::vaults::{engine_diagnostic, storage_options_validator, Vaults};
use std::collections::BTreeMap;
use std::sync::Arc;
use tfplugin::{
    async_trait, Action, Attr, Attribute, AttributePath, Block, Diagnostics, Model, Schema, Type,
    Value,
};

pub struct SnapshotNow {
    pub vaults: Arc<Vaults>,
}

tfplugin::model! {
    struct SnapshotNowModel {
        vault_id: Attr<String>,
        storage_options: Attr<BTreeMap<String, String>>,
    }
}

#[async_trait]
impl Action for SnapshotNow {
    fn type_name(&self) -> &'static str {
        "dr_snapshot_now"
    }

    fn schema(&self) -> Schema {
        Schema::new(
            0,
            Block::new(vec![
                Attribute::required("vault_id", Type::String)
                    .description("A `dr_backup_vault`'s `id`: its recorded sources are snapshotted."),
                Attribute::optional("storage_options", Type::map(Type::String))
                    .validator(storage_options_validator())
                    .description("Object-store options, merged over the provider's."),
            ])
            .description(
                "Takes a snapshot of a vault's sources now, as recorded by its `dr_backup_vault`, then applies its \
                 retention (Terraform 1.14+). The vault's `latest_snapshot_id` shows it at the next refresh.",
            ),
        )
    }

    async fn invoke(&self, config: &Value, progress: &mut Vec<String>, diags: &mut Diagnostics) {
        let Some(model) = SnapshotNowModel::read(config, diags) else {
            return;
        };
        let vault_id = model.vault_id.or_default();
        let vault = match self
            .vaults
            .open_existing(
                &vault_id,
                &model.storage_options.or_default(),
                &AttributePath::attr("vault_id"),
            )
            .await
        {
            Ok(vault) => vault,
            Err(d) => return diags.push(d),
        };
        let resource = crate::backup_vault::BackupVault {
            vaults: self.vaults.clone(),
        };
        match resource.snapshot_now(&vault).await {
            Ok(Some((taken, retained))) => {
                progress.push(format!(
                    "snapshot {} of {}: {} files, {} read, {} bytes new",
                    &taken.id[..12],
                    vault.storage().url(),
                    taken.files,
                    taken.files_read,
                    taken.bytes_new
                ));
                if let Err(e) = retained {
                    diags.push(
                        engine_diagnostic(
                            "Retention Failed",
                            &dr_vault::Error::new(
                                e.kind,
                                format!("snapshot {} was taken; applying the vault's retention then failed: {e}", taken.id),
                            ),
                        )
                        .at(AttributePath::attr("vault_id")),
                    );
                }
            }
            Ok(None) => diags.error_at(
                AttributePath::attr("vault_id"),
                "No Recorded Sources",
                format!(
                    "The vault at {vault_id} records no dr_backup_vault settings, so which sources to snapshot is not \
                     known. Snapshot it with `drctl vault snapshot --source NAME=PATH`."
                ),
            ),
            Err(e) => diags.push(engine_diagnostic("Snapshot Failed", &e).at(AttributePath::attr("vault_id"))),
        }
    }
}

pub struct RunDrill {
    pub drill: Drill,
}

impl RunDrill {
    pub fn new(vaults: Arc<Vaults>) -> RunDrill {
        RunDrill {
            drill: Drill { vaults },
        }
    }
}

tfplugin::model! {
    struct RunDrillModel {
        name: Attr<String>,
        vault_id: Attr<String>,
        snapshot_id: Attr<String>,
        verify_command: Attr<Vec<String>>,
        rpo: Attr<String>,
        rto: Attr<String>,
        verify_timeout: Attr<String>,
    }
}

#[async_trait]
impl Action for RunDrill {
    fn type_name(&self) -> &'static str {
        "dr_run_drill"
    }

    fn schema(&self) -> Schema {
        Schema::new(
            0,
            Block::new(vec![
                Attribute::required("name", Type::String)
                    .validator(crate::backup_vault::name_validator())
                    .description("The drill's name: its report goes into the vault under `drills/NAME/`."),
                Attribute::required("vault_id", Type::String)
                    .description("The vault restored from, usually a pair's standby."),
                Attribute::optional("snapshot_id", Type::String)
                    .description("The snapshot to restore; default: the latest."),
                Attribute::optional("verify_command", Type::list(Type::String))
                    .description("argv run inside the restored tree, as `dr_drill`'s; exit 0 passes."),
                Attribute::optional("rpo", Type::String)
                    .validator(duration_validator())
                    .description("Target for the data's age."),
                Attribute::optional("rto", Type::String)
                    .validator(duration_validator())
                    .description("Target for the restore time."),
                Attribute::optional("verify_timeout", Type::String)
                    .validator(duration_validator())
                    .description("How long `verify_command` may run (default 10m)."),
            ])
            .description(
                "Runs a restore drill now (Terraform 1.14+): restore, verify every file, run the check, measure restore \
                 time and data age against the targets, and write the report into the vault as `dr_drill` does. A \
                 failed drill fails the action with the reason.",
            ),
        )
    }

    async fn invoke(&self, config: &Value, progress: &mut Vec<String>, diags: &mut Diagnostics) {
        let Some(model) = RunDrillModel::read(config, diags) else {
            return;
        };
        if model.verify_command.get().is_some_and(Vec::is_empty) {
            return diags.error_at(
                AttributePath::attr("verify_command"),
                "Empty Command",
                "verify_command must name a program; remove it to skip the check.",
            );
        }
        let (line, failure) = self
            .drill
            .run_now(RunNow {
                name: model.name.or_default(),
                vault_id: model.vault_id.or_default(),
                snapshot_id: model.snapshot_id.get().cloned(),
                verify_command: model.verify_command.get().cloned(),
                rpo: model.rpo.get().cloned(),
                rto: model.rto.get().cloned(),
                verify_timeout: model.verify_timeout.get().cloned(),
            })
            .await;
        progress.push(line);
        if let Some(reason) = failure {
            diags.error(
                "Drill Failed",
                format!("{reason}. The report is in the vault under drills/."),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_models_match_the_schemas() {
        let vaults = Arc::new(Vaults::default());
        let schema = SnapshotNow {
            vaults: vaults.clone(),
        }
        .schema();
        tfplugin::model::check_model::<SnapshotNowModel>(&schema.block).unwrap();
        let schema = RunDrill::new(vaults).schema();
        tfplugin::model::check_model::<RunDrillModel>(&schema.block).unwrap();
    }
}
