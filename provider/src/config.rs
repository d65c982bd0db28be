//! The `provider "dr" {}` block: schema, validation and the parsed configuration.

use dr_vault::Passphrase;
use std::collections::BTreeMap;
use std::path::PathBuf;
use tfplugin::{
    Attr, Attribute, AttributePath, Block, Diagnostic, Diagnostics, Model, Schema, Type, Value,
};

/// The environment variable that supplies the passphrase when the block does not.
pub const PASSPHRASE_ENV: &str = "DR_PASSPHRASE";

pub(crate) fn schema() -> Schema {
    Schema::new(
        0,
        Block::new(vec![
            Attribute::optional("passphrase", Type::String)
                .sensitive()
                .description(
                    "Unlocks the keys of every vault this provider touches. Falls back to the `DR_PASSPHRASE` \
                     environment variable; prefer that, so the passphrase stays out of configuration files.",
                ),
            Attribute::optional("work_dir", Type::String).description(
                "Scratch space for drills and restores. Relative paths are resolved against the root module. \
                 Default: `<system temp>/terraform-provider-dr`.",
            ),
            Attribute::optional("storage_options", Type::map(Type::String))
                .validator(crate::vaults::storage_options_validator())
                .description(
                "Default object-store options for every vault (`endpoint`, `region`, `allow_http`, …); a vault's own \
                 `storage_options` are merged over these. Credentials come from the usual environment variables \
                 (`AWS_*`, `GOOGLE_*`, `AZURE_*`), never from here, so they never reach the state.",
            ),
        ])
        .description("Disaster recovery for CI/CD systems: backup vaults, region pairs and drills."),
    )
}

tfplugin::model! {
    /// The provider block as Terraform sends it.
    pub(crate) struct ProviderModel {
        pub passphrase: Attr<String>,
        pub work_dir: Attr<String>,
        pub storage_options: Attr<BTreeMap<String, String>>,
    }
}

/// The provider block, parsed.
#[derive(Debug, Clone)]
pub struct ProviderConfig {
    passphrase: Option<Passphrase>,
    pub work_dir: PathBuf,
    pub storage_options: BTreeMap<String, String>,
}

impl ProviderConfig {
    /// Parses a fully known provider block; `env` reads environment variables (injected so
    /// tests do not touch the process environment).
    pub fn from_value(
        config: &Value,
        env: &dyn Fn(&str) -> Option<String>,
        diags: &mut Diagnostics,
    ) -> Option<Self> {
        tfplugin::plan::validate_config(&schema().block, config, &AttributePath::root(), diags);
        let model = ProviderModel::read(config, diags)?;
        validate(&model, diags);
        if diags.has_errors() {
            return None;
        }
        let passphrase = model
            .passphrase
            .cloned()
            .or_else(|| env(PASSPHRASE_ENV).filter(|p| !p.is_empty()))
            .map(Passphrase::new);
        let work_dir = match model.work_dir.as_str() {
            Some(dir) => std::path::absolute(dir).unwrap_or_else(|_| PathBuf::from(dir)),
            None => std::env::temp_dir().join("terraform-provider-dr"),
        };
        let storage_options = model.storage_options.or_default();
        Some(ProviderConfig {
            passphrase,
            work_dir,
            storage_options,
        })
    }

    /// The passphrase, or the error every vault operation reports without one.
    ///
    /// # Errors
    /// When neither `passphrase` nor `DR_PASSPHRASE` is set.
    pub fn passphrase(&self) -> Result<&Passphrase, Diagnostic> {
        self.passphrase.as_ref().ok_or_else(|| {
            Diagnostic::error(
                "Missing Vault Passphrase",
                format!(
                    "This operation opens a vault, which needs its passphrase. Set `passphrase` in the provider \"dr\" \
                     block, or export {PASSPHRASE_ENV} before running Terraform."
                ),
            )
            .at(AttributePath::attr("passphrase"))
        })
    }
}

/// Checks beyond the schema's validators.
pub(crate) fn validate(config: &ProviderModel, diags: &mut Diagnostics) {
    if config.passphrase.as_str() == Some("") {
        diags.error_at(
            AttributePath::attr("passphrase"),
            "Empty Passphrase",
            "passphrase must not be empty. Remove it to use DR_PASSPHRASE, or set a real passphrase.",
        );
    }
    if config.work_dir.as_str() == Some("") {
        diags.error_at(
            AttributePath::attr("work_dir"),
            "Empty Work Directory",
            "work_dir must be a directory path. Remove it to use the default under the system temp directory.",
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block(pairs: &[(&str, Value)]) -> Value {
        let mut v = Value::object([
            ("passphrase", Value::Null),
            ("work_dir", Value::Null),
            ("storage_options", Value::Null),
        ]);
        for (k, val) in pairs {
            v.set_attr(k, val.clone());
        }
        v
    }

    #[test]
    fn passphrase_falls_back_to_the_environment_and_never_prints() {
        let mut diags = Diagnostics::new();
        let env = |name: &str| (name == PASSPHRASE_ENV).then(|| "from-env".to_string());
        let cfg = ProviderConfig::from_value(&block(&[]), &env, &mut diags).unwrap();
        assert_eq!(cfg.passphrase().unwrap().expose(), "from-env");
        assert!(!format!("{cfg:?}").contains("from-env"));
    }

    #[test]
    fn the_block_wins_over_the_environment() {
        let mut diags = Diagnostics::new();
        let env = |_: &str| Some("from-env".to_string());
        let cfg = ProviderConfig::from_value(
            &block(&[("passphrase", "from-block".into())]),
            &env,
            &mut diags,
        )
        .unwrap();
        assert_eq!(cfg.passphrase().unwrap().expose(), "from-block");
    }

    #[test]
    fn a_missing_passphrase_is_a_clear_error_on_the_attribute() {
        let mut diags = Diagnostics::new();
        let cfg = ProviderConfig::from_value(&block(&[]), &|_| None, &mut diags).unwrap();
        let err = cfg.passphrase().unwrap_err();
        assert_eq!(err.attribute, Some(AttributePath::attr("passphrase")));
        assert!(err.detail.contains("DR_PASSPHRASE"));
    }

    #[test]
    fn credentials_in_storage_options_are_refused() {
        let opts = Value::Map([("aws_secret_access_key".to_string(), "x".into())].into());
        let mut diags = Diagnostics::new();
        assert!(ProviderConfig::from_value(
            &block(&[("storage_options", opts)]),
            &|_| None,
            &mut diags
        )
        .is_none());
        assert_eq!(
            diags.0[0].attribute.as_ref().unwrap().to_string(),
            "storage_options[\"aws_secret_access_key\"]"
        );
    }

    #[test]
    fn the_model_matches_the_schema() {
        tfplugin::model::check_model::<ProviderModel>(&schema().block).unwrap();
    }

    #[test]
    fn work_dir_defaults_under_temp() {
        let mut diags = Diagnostics::new();
        let cfg = ProviderConfig::from_value(&block(&[]), &|_| None, &mut diags).unwrap();
        assert!(cfg.work_dir.ends_with("terraform-provider-dr"));
        assert!(cfg.work_dir.is_absolute());
    }
}
