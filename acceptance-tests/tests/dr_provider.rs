//! `terraform-provider-dr` through the real Terraform: its provider block as
//! `terraform providers schema -json` shows it. (Terraform prunes a provider no resource uses,
//! so configuration errors are proven over gRPC in `provider/tests/provider_rpc.rs` until the
//! first resource exists.)

use acceptance_tests::{ProviderBuild, TfDir};
use serde_json::json;

fn config(provider_block: &str) -> String {
    format!(
        r#"
terraform {{
  required_providers {{
    dr = {{ source = "registry.terraform.io/dr-project/dr" }}
  }}
}}
provider "dr" {{
{provider_block}
}}
"#
    )
}

#[test]
fn schema_shows_the_provider_block() {
    let tf = TfDir::new(&[ProviderBuild::dr()]);
    tf.config(&config(r#"work_dir = "scratch""#));
    tf.init();
    let out = tf.ok(&["providers", "schema", "-json"]);
    let schemas: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    let block =
        &schemas["provider_schemas"]["registry.terraform.io/dr-project/dr"]["provider"]["block"];
    let attrs = &block["attributes"];
    assert_eq!(attrs["passphrase"]["type"], json!("string"));
    assert_eq!(attrs["passphrase"]["optional"], json!(true));
    assert_eq!(attrs["passphrase"]["sensitive"], json!(true));
    assert_eq!(attrs["work_dir"]["type"], json!("string"));
    assert_eq!(attrs["storage_options"]["type"], json!(["map", "string"]));
    assert!(attrs["passphrase"]["description"]
        .as_str()
        .unwrap()
        .contains("DR_PASSPHRASE"));
    tf.ok(&["validate", "-no-color"]);
    tf.assert_plan_empty();
}
