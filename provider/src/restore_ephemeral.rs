//! The `dr_restore` ephemeral resource (Terraform 1.10+): a snapshot restored into a private
//! temporary directory for the length of one run, every file checked against the manifest,
//! and deleted when Terraform closes it. Nothing of it reaches a plan or a state.
//!
//! Close deletes only what open made: the directory its private bytes name, and only while
//! it still holds the marker open wrote, so neither a changed work_dir nor forged private
//! bytes can make it delete anything else.

use crate::vaults::{engine_diagnostic, storage_options_validator, Vaults};
use dr_drill::restored;
use dr_vault::NoProgress;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tfplugin::{
    async_trait, Attr, Attribute, AttributePath, Block, Diagnostics, EphemeralResource, Model,
    Opened, Schema, Type, Value,
};

/// Written into each directory open makes; close deletes a directory only while it holds it.
const MARKER: &str = ".dr-restore";

/// A restore directory this old was left by a provider that was killed before Terraform
/// could close it (no run lasts a day): the next open removes it, as it holds decrypted data.
const STALE_AFTER: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

pub struct Restore {
    pub vaults: Arc<Vaults>,
}

tfplugin::model! {
    struct RestoreModel {
        vault_id: Attr<String>,
        snapshot_id: Attr<String>,
        source: Attr<String>,
        storage_options: Attr<BTreeMap<String, String>>,
        path: Attr<String>,
        restored_snapshot_id: Attr<String>,
        snapshot_time: Attr<String>,
        files: Attr<u64>,
        bytes: Attr<u64>,
        verified: Attr<bool>,
        mismatched: Attr<Vec<String>>,
    }
}

#[async_trait]
impl EphemeralResource for Restore {
    fn type_name(&self) -> &'static str {
        "dr_restore"
    }

    fn schema(&self) -> Schema {
        Schema::new(
            0,
            Block::new(vec![
                Attribute::required("vault_id", Type::String)
                    .description("The vault: a `dr_backup_vault`'s `id`, or any vault URL."),
                Attribute::optional("snapshot_id", Type::String)
                    .description("A snapshot id or a unique prefix of one; default: the latest."),
                Attribute::optional("source", Type::String)
                    .description("Restore only this source of the snapshot; default: all of them."),
                Attribute::optional("storage_options", Type::map(Type::String))
                    .validator(storage_options_validator())
                    .description("Object-store options, merged over the provider's."),
                Attribute::computed("path", Type::String).description(
                    "The private directory (mode 0700, under the provider's `work_dir`) holding the restored tree: one \
                     subdirectory per source, or with `source` that source's tree itself. Deleted when Terraform closes the resource, at the end of the run.",
                ),
                Attribute::computed("restored_snapshot_id", Type::String)
                    .description("The full id of the snapshot restored."),
                Attribute::computed("snapshot_time", Type::String)
                    .description("When that snapshot was taken (RFC 3339, UTC)."),
                Attribute::computed("files", Type::Number)
                    .description("Files restored whose content matched the manifest."),
                Attribute::computed("bytes", Type::Number).description("Bytes restored."),
                Attribute::computed("verified", Type::Bool).description(
                    "Whether every restored file matched the manifest's digest (a warning names those that did not).",
                ),
                Attribute::computed("mismatched", Type::list(Type::String))
                    .description("`SOURCE/PATH` of each file that did not match; empty when `verified`."),
            ])
            .description(
                "Restores a snapshot of a vault into a private temporary directory for the length of one Terraform run, \
                 checks every file against the snapshot's manifest, and deletes the directory when the run closes it. \
                 Nothing of it is written to a plan or a state. Needs Terraform 1.10 or newer.",
            ),
        )
    }

    async fn open(&self, config: &Value, diags: &mut Diagnostics) -> Opened {
        let failed = || Opened {
            result: Value::Null,
            private: Vec::new(),
        };
        let Some(mut out) = RestoreModel::read(config, diags) else {
            return failed();
        };
        let vault = match self
            .vaults
            .open_existing(
                &out.vault_id.or_default(),
                &out.storage_options.or_default(),
                &AttributePath::attr("vault_id"),
            )
            .await
        {
            Ok(v) => v,
            Err(d) => {
                diags.push(d);
                return failed();
            }
        };
        let wanted = out.snapshot_id.as_str().unwrap_or("latest").to_string();
        let found = async {
            let id = vault.resolve_snapshot(&wanted).await?;
            let snapshot = vault.load_snapshot(&id).await?;
            Ok::<_, dr_vault::Error>((id, snapshot))
        }
        .await;
        let (id, snapshot) = match found {
            Ok(found) => found,
            Err(e) => {
                let at = if out.snapshot_id.is_null() {
                    "vault_id"
                } else {
                    "snapshot_id"
                };
                diags.push(engine_diagnostic("Snapshot Not Found", &e).at(AttributePath::attr(at)));
                return failed();
            }
        };
        let source = out.source.as_str().map(str::to_string);
        if let Some(wanted) = &source {
            if !snapshot.sources.iter().any(|s| &s.name == wanted) {
                let names: Vec<&str> = snapshot.sources.iter().map(|s| s.name.as_str()).collect();
                diags.error_at(
                    AttributePath::attr("source"),
                    "Source Not In Snapshot",
                    format!(
                        "Snapshot {} has no source {wanted:?}; it holds: {}.",
                        &id[..12.min(id.len())],
                        names.join(", ")
                    ),
                );
                return failed();
            }
        }
        let work_dir = self
            .vaults
            .config()
            .map(|c| c.work_dir)
            .map_err(|d| d.detail);
        let dir = match work_dir.and_then(|w| Ok((restored::new_private_dir(&w, "restore")?, w))) {
            Ok((dir, work_dir)) => {
                // Only now is work_dir known to be this user's private directory.
                restored::remove_stale(&work_dir, "restore", MARKER, STALE_AFTER);
                dir
            }
            Err(e) => {
                diags.error("Cannot Create The Restore Directory", e);
                return failed();
            }
        };
        let marked = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(dir.join(MARKER))
            .and_then(|mut f| {
                std::io::Write::write_all(
                    &mut f,
                    b"made by dr_restore; deleted when Terraform closes it\n",
                )
            });
        let tree = dir.join("restored");
        let restored = match marked {
            Ok(()) => vault
                .restore(&id, &tree, source.as_deref(), &NoProgress)
                .await
                .map_err(|e| e.to_string()),
            Err(e) => Err(format!("cannot write {}: {e}", dir.join(MARKER).display())),
        };
        let summary = match restored {
            Ok(summary) => summary,
            Err(e) => {
                remove_own_dir(&dir);
                diags.error(
                    "Restore Failed",
                    format!("Restoring snapshot {id} failed: {e}. Nothing was left behind."),
                );
                return failed();
            }
        };
        let checked = restored::check_files(&snapshot, &tree, source.as_deref());
        if !checked.mismatched.is_empty() {
            diags.warning(
                "Restored Files Do Not Match",
                format!(
                    "{} restored file(s) of snapshot {id} do not match its manifest: {}. `verified` is false; run \
                     `drctl vault verify --read-data` on the vault.",
                    checked.mismatched.len(),
                    checked.mismatched.join(", ")
                ),
            );
        }
        out.path = Attr::Known(tree.display().to_string());
        out.restored_snapshot_id = Attr::Known(id);
        out.snapshot_time = crate::vaults::recorded_time_attr(&snapshot.time);
        out.files = checked.matched.into();
        out.bytes = summary.bytes.into();
        out.verified = Attr::Known(checked.mismatched.is_empty());
        out.mismatched = checked.mismatched.into();
        Opened {
            result: out.written_over(config),
            private: dir.display().to_string().into_bytes(),
        }
    }

    async fn close(&self, private: &[u8], diags: &mut Diagnostics) {
        let Ok(text) = std::str::from_utf8(private) else {
            return;
        };
        if text.is_empty() {
            return;
        }
        let dir = PathBuf::from(text);
        if !is_own_dir(&dir) {
            diags.warning(
                "Restore Directory Left Alone",
                format!(
                    "{} no longer holds the marker dr_restore wrote there, so it is not deleted; remove it by hand if it is yours.",
                    dir.display()
                ),
            );
            return;
        }
        if let Err(e) = std::fs::remove_dir_all(&dir) {
            diags.warning(
                "Restore Directory Not Deleted",
                format!(
                    "Could not delete {}: {e}. It holds decrypted data: remove it by hand.",
                    dir.display()
                ),
            );
        }
    }
}

/// A directory (not a symlink) that holds the marker open wrote, as a regular file.
fn is_own_dir(dir: &Path) -> bool {
    let is_dir = std::fs::symlink_metadata(dir).is_ok_and(|m| m.is_dir());
    let marked = std::fs::symlink_metadata(dir.join(MARKER)).is_ok_and(|m| m.is_file());
    dir.is_absolute() && is_dir && marked
}

/// Deletes a directory open made, after a failed open.
fn remove_own_dir(dir: &Path) {
    if is_own_dir(dir) || std::fs::read_dir(dir).is_ok_and(|mut d| d.next().is_none()) {
        let _ = std::fs::remove_dir_all(dir);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_model_matches_the_schema() {
        let schema = Restore {
            vaults: Default::default(),
        }
        .schema();
        tfplugin::model::check_model::<RestoreModel>(&schema.block).unwrap();
    }

    #[test]
    fn close_deletes_only_a_directory_open_marked() {
        let tmp = tempfile::tempdir().unwrap();
        let stranger = tmp.path().join("stranger");
        std::fs::create_dir_all(stranger.join("data")).unwrap();
        assert!(!is_own_dir(&stranger));
        std::fs::write(stranger.join(MARKER), "").unwrap();
        assert!(is_own_dir(&stranger));
        let link = tmp.path().join("link");
        std::os::unix::fs::symlink(&stranger, &link).unwrap();
        assert!(
            !is_own_dir(&link),
            "a symlink to a marked directory is not one"
        );
        assert!(!is_own_dir(Path::new("relative")));
    }
}
