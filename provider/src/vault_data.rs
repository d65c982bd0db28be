//! The `dr_vault` data source: an existing vault's facts, for modules that rebuild from a
//! vault they do not manage (one made by another configuration or by `drctl vault init`).

use crate::vaults::{
    engine_diagnostic, recorded_time_attr, storage_options_validator, time_attr, Vaults,
};
use std::collections::BTreeMap;
use std::sync::Arc;
use tfplugin::{
    async_trait, Attr, Attribute, AttributePath, Block, DataSource, Diagnostics, Model, Schema,
    Type, Value,
};

pub struct VaultData {
    pub vaults: Arc<Vaults>,
}

#[async_trait]
impl DataSource for VaultData {
    fn type_name(&self) -> &'static str {
        "dr_vault"
    }

    fn schema(&self) -> Schema {
        Schema::new(
            0,
            Block::new(vec![
                Attribute::required("url", Type::String)
                    .description("The vault's URL: a path (relative to the root module), `file://…`, `s3://…`, `gs://…` or `az://…`."),
                Attribute::optional("storage_options", Type::map(Type::String))
                    .validator(storage_options_validator())
                    .description("Object-store options, merged over the provider's."),
                Attribute::computed("id", Type::String).description(
                    "The vault's id: its canonical absolute URL, with its storage options as a query for object stores \
                     (what `dr_backup_vault.id` holds, for a pair or drill).",
                ),
                Attribute::computed("name", Type::String).description("The vault's name."),
                Attribute::computed("region", Type::String).description("The vault's region label."),
                Attribute::computed("created_at", Type::String).description("When it was created (RFC 3339, UTC)."),
                Attribute::computed("labels", Type::map(Type::String)).description("Labels stored with the vault."),
                Attribute::computed("snapshot_count", Type::Number).description("How many snapshots it holds."),
                Attribute::computed("stored_bytes", Type::Number).description("Bytes its data takes in storage."),
                Attribute::computed("latest_snapshot_id", Type::String).description("The newest snapshot's id (null when none)."),
                Attribute::computed("latest_snapshot_at", Type::String).description("When the newest snapshot was taken."),
            ])
            .description("Reads an existing vault: name, region, counts and latest snapshot."),
        )
    }

    async fn read(&self, config: &Value, diags: &mut Diagnostics) -> Value {
        let Some(mut out) = VaultDataModel::read(config, diags) else {
            return config.clone();
        };
        let url = out.url.or_default();
        let at = AttributePath::attr("url");
        let vault = match self
            .vaults
            .open_existing(&url, &out.storage_options.or_default(), &at)
            .await
        {
            Ok(v) => v,
            Err(d) => {
                diags.push(d);
                return config.clone();
            }
        };
        let result = async {
            let snapshots = vault.snapshots().await?;
            let stored = vault.stored_bytes().await?;
            Ok::<_, dr_vault::Error>((snapshots, stored))
        }
        .await;
        let (snapshots, stored) = match result {
            Ok(r) => r,
            Err(e) => {
                diags.push(engine_diagnostic("Cannot Read Vault", &e).at(at));
                return config.clone();
            }
        };
        let c = vault.config();
        let latest = dr_vault::latest_of(&snapshots);
        out.id = vault.storage().id().into();
        out.name = c.name.clone().into();
        out.region = c.region.clone().into();
        out.created_at = recorded_time_attr(&c.created_at);
        out.labels = c.labels.clone().into();
        out.snapshot_count = (snapshots.len() as u64).into();
        out.stored_bytes = stored.into();
        out.latest_snapshot_id = Attr::from_option(latest.map(|s| s.id.clone()));
        out.latest_snapshot_at = latest.map_or(Attr::Null, |s| time_attr(s.time));
        out.written_over(config)
    }
}

tfplugin::model! {
    struct VaultDataModel {
        url: Attr<String>,
        storage_options: Attr<BTreeMap<String, String>>,
        id: Attr<String>,
        name: Attr<String>,
        region: Attr<String>,
        created_at: Attr<String>,
        labels: Attr<BTreeMap<String, String>>,
        snapshot_count: Attr<u64>,
        stored_bytes: Attr<u64>,
        latest_snapshot_id: Attr<String>,
        latest_snapshot_at: Attr<String>,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_model_matches_the_schema() {
        use tfplugin::DataSource as _;
        let schema = super::VaultData {
            vaults: Default::default(),
        }
        .schema();
        tfplugin::model::check_model::<super::VaultDataModel>(&schema.block).unwrap();
    }
}
