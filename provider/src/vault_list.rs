//! `list "dr_backup_vault"` (Terraform 1.14+, `terraform query`): finds the vaults under a
//! directory or an object-store prefix, for adopting them again after the state itself was
//! lost. Only each vault's plain config is read to find and name it (no passphrase needed);
//! the full state, when Terraform asks for it, is what importing the vault gives.

use crate::backup_vault::VaultIdentity;
use crate::vaults::{location_attr, storage_options_validator, Vaults};
use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use tfplugin::{
    async_trait, Attr, Attribute, AttributePath, Block, Diagnostics, ListResource, Listed, Model,
    Resource as _, Schema, Type, Value,
};

pub struct VaultList {
    pub vaults: Arc<Vaults>,
}

tfplugin::model! {
    struct VaultListModel {
        under: Attr<String>,
        storage_options: Attr<BTreeMap<String, String>>,
        depth: Attr<u64>,
    }
}

/// How deep below `under` vaults are looked for, unless `depth` says otherwise.
const DEFAULT_DEPTH: u64 = 3;

#[async_trait]
impl ListResource for VaultList {
    fn type_name(&self) -> &'static str {
        "dr_backup_vault"
    }

    fn schema(&self) -> Schema {
        Schema::new(
            0,
            Block::new(vec![
                Attribute::required("under", Type::String).description(
                    "Where to look: a directory, or an object-store URL (`s3://BUCKET/PREFIX`, `gs://…`, \
                     `az://CONTAINER/PREFIX`) with storage options as a query. A vault there, or below it, is found.",
                ),
                Attribute::optional("storage_options", Type::map(Type::String))
                    .validator(storage_options_validator())
                    .description("Object-store options, merged over the provider's."),
                Attribute::optional("depth", Type::Number).description(
                    "How many directory levels below `under` to look (default 3); a vault's own directories are never entered.",
                ),
            ])
            .description(
                "Finds the vaults under a directory or an object-store prefix (Terraform 1.14+, `terraform query`), \
                 to adopt them again after the state was lost.",
            ),
        )
    }

    async fn list(
        &self,
        config: &Value,
        include_object: bool,
        limit: usize,
        diags: &mut Diagnostics,
    ) -> Vec<Listed> {
        let Some(model) = VaultListModel::read(config, diags) else {
            return Vec::new();
        };
        let under = model.under.or_default();
        let (base, from_url) = match dr_vault::storage::split_vault_url(&under) {
            Ok(split) => split,
            Err(e) => {
                diags.push(
                    crate::vaults::engine_diagnostic("Invalid Location", &e)
                        .at(AttributePath::attr("under")),
                );
                return Vec::new();
            }
        };
        let mut options = from_url;
        options.extend(model.storage_options.or_default());
        let depth = model.depth.get().copied().unwrap_or(DEFAULT_DEPTH);
        // "/" and "file:///" are places too: only slashes after the first path one go.
        let base = match base.trim_end_matches('/') {
            "" => "/".to_string(),
            "file:" => "file:///".to_string(),
            trimmed => trimmed.to_string(),
        };
        let mut found = Vec::new();
        let mut queue = VecDeque::from([(String::new(), 0u64)]);
        while let Some((below, level)) = queue.pop_front() {
            if found.len() >= limit {
                break;
            }
            let url = match (below.is_empty(), base.ends_with('/')) {
                (true, _) => base.clone(),
                (false, true) => format!("{base}{below}"),
                (false, false) => format!("{base}/{below}"),
            };
            let storage =
                match self
                    .vaults
                    .storage(&url, &options, false, &AttributePath::attr("under"))
                {
                    Ok(storage) => storage,
                    Err(d) if below.is_empty() => {
                        diags.push(d);
                        return found;
                    }
                    // A directory that vanished while listing: nothing to find there.
                    Err(_) => continue,
                };
            match dr_vault::Vault::read_config(&storage).await {
                Ok(vault) => {
                    found.push(self.listed(&storage, &vault, include_object, diags).await);
                    continue;
                }
                Err(e) if e.kind == dr_vault::ErrorKind::NotFound => {}
                Err(e) => {
                    diags.warning("Vault Not Listed", format!("{}: {e}", storage.url()));
                    continue;
                }
            }
            if level >= depth {
                continue;
            }
            match storage.top_level().await {
                Ok(names) => queue.extend(
                    names
                        .iter()
                        .filter_map(|n| n.strip_suffix('/'))
                        // Hidden directories (.git, .terraform) hold no vaults of anyone's.
                        .filter(|dir| !dir.starts_with('.'))
                        .map(|dir| {
                            let child = if below.is_empty() {
                                dir.to_string()
                            } else {
                                format!("{below}/{dir}")
                            };
                            (child, level + 1)
                        }),
                ),
                Err(e) if below.is_empty() => {
                    diags.push(
                        crate::vaults::engine_diagnostic("Cannot List", &e)
                            .at(AttributePath::attr("under")),
                    );
                    return found;
                }
                Err(_) => {}
            }
        }
        found
    }
}

impl VaultList {
    /// One vault found: its identity and name from the plain config; its state, when asked,
    /// as importing it by its id gives.
    async fn listed(
        &self,
        storage: &dr_vault::Storage,
        config: &dr_vault::format::Config,
        include_object: bool,
        diags: &mut Diagnostics,
    ) -> Listed {
        let id = storage.id();
        let object = if include_object {
            let resource = crate::backup_vault::BackupVault {
                vaults: self.vaults.clone(),
            };
            // One vault that does not open (another team's passphrase, a damaged key) must not
            // fail the whole query: it is listed by its identity alone, and named.
            let mut own = Diagnostics::new();
            let state = resource.import(&id, &mut own).await;
            if own.has_errors() {
                let why: Vec<String> = own.iter().map(|d| d.detail.clone()).collect();
                diags.warning(
                    "Vault Listed Without Its State",
                    format!("{}: {}", storage.url(), why.join(" ")),
                );
                None
            } else {
                (!state.value.is_null()).then_some(state.value)
            }
        } else {
            None
        };
        Listed {
            identity: VaultIdentity {
                url: location_attr(&Attr::Known(id.clone())),
            }
            .to_value(),
            display_name: format!("{} ({}) at {}", config.name, config.region, storage.url()),
            object,
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_model_matches_the_schema() {
        use tfplugin::ListResource as _;
        let schema = super::VaultList {
            vaults: Default::default(),
        }
        .schema();
        tfplugin::model::check_model::<super::VaultListModel>(&schema.block).unwrap();
    }
}
