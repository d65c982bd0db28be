//! The `dr_vault` data source: an existing vault's facts, for modules that rebuild from a
//! vault they do not manage (one made by another configuration or by `drctl vault init`).

use crate::vaults::{engine_diagnostic, map_value, string_map, time_value, Vaults};
use std::sync::Arc;
use tfplugin::{
    async_trait, Attribute, AttributePath, Block, DataSource, Diagnostics, Schema, Type, Value,
};

pub struct VaultData {
    pub vaults: Arc<Vaults>,
}

#[async_trait]
impl DataSource for VaultData {
    fn type_name(&self) -> &'static str {
        "dr_vault"
    }

    async fn validate(&self, config: &Value, diags: &mut Diagnostics) {
        crate::vaults::validate_storage_options(config, diags);
    }

    fn schema(&self) -> Schema {
        Schema::new(
            0,
            Block::new(vec![
                Attribute::required("url", Type::String)
                    .description("The vault's URL: a path (relative to the root module), `file://…`, `s3://…`, `gs://…` or `az://…`."),
                Attribute::optional("storage_options", Type::map(Type::String))
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
        let mut out = config.clone();
        let url = config.attr("url").as_str().unwrap_or_default();
        let options = string_map(config.attr("storage_options"));
        let at = AttributePath::attr("url");
        let vault = match self.vaults.open_existing(url, &options, &at).await {
            Ok(v) => v,
            Err(d) => {
                diags.push(d);
                return out;
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
                return out;
            }
        };
        let c = vault.config();

        out.set_attr("id", Value::string(vault.storage().id()));
        out.set_attr("name", Value::string(&c.name));
        out.set_attr("region", Value::string(&c.region));
        out.set_attr("created_at", time_value(&c.created_at));
        out.set_attr("labels", map_value(&c.labels));
        out.set_attr("snapshot_count", Value::number(snapshots.len() as u64));
        out.set_attr("stored_bytes", Value::number(stored));
        let latest = dr_vault::latest_of(&snapshots);
        out.set_attr(
            "latest_snapshot_id",
            latest.map_or(Value::Null, |s| Value::string(&s.id)),
        );
        out.set_attr(
            "latest_snapshot_at",
            latest.map_or(Value::Null, |s| time_value(&s.time)),
        );
        out
    }
}
