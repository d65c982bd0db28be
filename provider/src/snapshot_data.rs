//! The `dr_snapshot` data source: one snapshot's facts (default: the latest).

use crate::vaults::{engine_diagnostic, recorded_time_attr, storage_options_validator, Vaults};
use std::collections::BTreeMap;
use std::sync::Arc;
use tfplugin::{
    async_trait, Attr, Attribute, AttributePath, Block, DataSource, Diagnostics, Model, Schema,
    Type, Value,
};

pub struct SnapshotData {
    pub vaults: Arc<Vaults>,
}

#[async_trait]
impl DataSource for SnapshotData {
    fn type_name(&self) -> &'static str {
        "dr_snapshot"
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
                    .validator(storage_options_validator())
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
        let Some(mut out) = SnapshotDataModel::read(config, diags) else {
            return config.clone();
        };
        let wanted = out.snapshot_id.as_str().unwrap_or("latest").to_string();
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
                return config.clone();
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
                let at = if out.snapshot_id.is_null() {
                    AttributePath::attr("vault_id")
                } else {
                    AttributePath::attr("snapshot_id")
                };
                diags.push(engine_diagnostic("Snapshot Not Found", &e).at(at));
                return config.clone();
            }
        };
        out.id = id.into();
        out.time = recorded_time_attr(&s.time);
        out.source_digest = s.source_digest.clone().into();
        out.sources = s
            .sources
            .iter()
            .map(|x| x.name.clone())
            .collect::<Vec<_>>()
            .into();
        out.files = (s.file_count() as u64).into();
        out.bytes = s.total_bytes().into();
        out.labels = s.labels.clone().into();
        out.written_over(config)
    }
}

tfplugin::model! {
    struct SnapshotDataModel {
        vault_id: Attr<String>,
        snapshot_id: Attr<String>,
        storage_options: Attr<BTreeMap<String, String>>,
        id: Attr<String>,
        time: Attr<String>,
        source_digest: Attr<String>,
        sources: Attr<Vec<String>>,
        files: Attr<u64>,
        bytes: Attr<u64>,
        labels: Attr<BTreeMap<String, String>>,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_model_matches_the_schema() {
        use tfplugin::DataSource as _;
        let schema = super::SnapshotData {
            vaults: Default::default(),
        }
        .schema();
        tfplugin::model::check_model::<super::SnapshotDataModel>(&schema.block).unwrap();
    }
}
