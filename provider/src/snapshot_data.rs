//! The `dr_snapshot` data source: one snapshot's facts (default: the latest).

use crate::vaults::{engine_diagnostic, map_value, string_map, time_value, Vaults};
use std::sync::Arc;
use tfplugin::{
    async_trait, Attribute, AttributePath, Block, DataSource, Diagnostics, Schema, Type, Value,
};

pub struct SnapshotData {
    pub vaults: Arc<Vaults>,
}

#[async_trait]
impl DataSource for SnapshotData {
    fn type_name(&self) -> &'static str {
        "dr_snapshot"
    }

    async fn validate(&self, config: &Value, diags: &mut Diagnostics) {
        crate::vaults::validate_storage_options(config, diags);
    }

    fn schema(&self) -> Schema {
        Schema::new(
            0,
            Block::new(vec![
                Attribute::required("vault_id", Type::String)
                    .description("The vault: a `dr_backup_vault`'s `id`, or any vault URL."),
                Attribute::optional("snapshot_id", Type::String)
                    .description("A snapshot id or a unique prefix of one; default: the latest."),
                Attribute::optional("storage_options", Type::map(Type::String))
                    .description("Object-store options, merged over the provider's."),
                Attribute::computed("id", Type::String).description("The snapshot's full id."),
                Attribute::computed("time", Type::String)
                    .description("When it was taken (RFC 3339, UTC)."),
                Attribute::computed("source_digest", Type::String)
                    .description("Digest of its sources' content."),
                Attribute::computed("sources", Type::list(Type::String))
                    .description("The names of its sources."),
                Attribute::computed("files", Type::Number).description("How many files it holds."),
                Attribute::computed("bytes", Type::Number)
                    .description("Their total size in bytes."),
                Attribute::computed("labels", Type::map(Type::String))
                    .description("Labels stored with it."),
            ])
            .description(
                "Reads one snapshot of a vault: time, digest, sources, file count, bytes, labels.",
            ),
        )
    }

    async fn read(&self, config: &Value, diags: &mut Diagnostics) -> Value {
        let mut out = config.clone();
        let url = config.attr("vault_id").as_str().unwrap_or_default();
        let wanted = config
            .attr("snapshot_id")
            .as_str()
            .unwrap_or("latest")
            .to_string();
        let options = string_map(config.attr("storage_options"));
        let vault = match self
            .vaults
            .open_existing(url, &options, &AttributePath::attr("vault_id"))
            .await
        {
            Ok(v) => v,
            Err(d) => {
                diags.push(d);
                return out;
            }
        };
        let found = async {
            let id = vault.resolve_snapshot(&wanted).await?;
            let snapshot = vault.load_snapshot(&id).await?;
            Ok::<_, dr_vault::Error>((id, snapshot))
        }
        .await;
        let (id, s) = match found {
            Ok(f) => f,
            Err(e) => {
                let at = if config.attr("snapshot_id").is_null() {
                    AttributePath::attr("vault_id")
                } else {
                    AttributePath::attr("snapshot_id")
                };
                diags.push(engine_diagnostic("Snapshot Not Found", &e).at(at));
                return out;
            }
        };
        out.set_attr("id", Value::string(&id));
        out.set_attr("time", time_value(&s.time));
        out.set_attr("source_digest", Value::string(&s.source_digest));
        out.set_attr(
            "sources",
            Value::List(s.sources.iter().map(|x| Value::string(&x.name)).collect()),
        );
        out.set_attr("files", Value::number(s.file_count() as u64));
        out.set_attr("bytes", Value::number(s.total_bytes()));
        out.set_attr("labels", map_value(&s.labels));
        out
    }
}
