//! State written at schema version 0 is upgraded to version 1 by the provider's
//! `upgrade_state` (the attribute `size_gb` became `size`), with no diff afterwards.

use acceptance_tests::{ProviderBuild, TfDir};
use serde_json::json;

fn config(size_attr: &str) -> String {
    format!(
        r#"
terraform {{
  required_providers {{
    tftest = {{ source = "registry.terraform.io/dr-project/tftest" }}
  }}
}}
provider "tftest" {{ store_dir = "${{path.module}}/store" }}
resource "tftest_thing" "a" {{
  name = "old"
  {size_attr} = 5
}}
"#
    )
}

#[test]
fn version_0_state_is_upgraded_without_a_diff() {
    let mut tf = TfDir::new(&[ProviderBuild::tftest()]);
    tf.set_env("TFTEST_SCHEMA_VERSION", "0");
    tf.config(&config("size_gb"));
    tf.init();
    tf.apply();
    let old = tf.resource("tftest_thing.a").unwrap();
    assert_eq!(old["schema_version"], json!(0));
    assert_eq!(old["values"]["size_gb"], json!(5));

    // The provider release with schema version 1, and the configuration users write for it.
    tf.remove_env("TFTEST_SCHEMA_VERSION");
    tf.config(&config("size"));
    tf.assert_plan_empty();
    tf.ok(&[
        "apply",
        "-refresh-only",
        "-auto-approve",
        "-no-color",
        "-input=false",
    ]);
    let new = tf.resource("tftest_thing.a").unwrap();
    assert_eq!(new["schema_version"], json!(1));
    assert_eq!(new["values"]["size"], json!(5));
    assert_eq!(new["values"]["id"], old["values"]["id"]);
    assert!(new["values"].get("size_gb").is_none());
    tf.assert_plan_empty();
}
