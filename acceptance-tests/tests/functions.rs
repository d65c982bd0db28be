//! The provider's functions (Terraform 1.8+) through the real Terraform: called from outputs
//! and a `check` block over a real vault, an empty second plan, and a bad argument named in
//! Terraform's own diagnostic. On older Terraform (the 1.0.3 leg) these tests say they are
//! skipped; the modern leg of `scripts/test` runs them.

use acceptance_tests::{terraform_at_least, ProviderBuild, TfDir};

fn module(check_window: &str) -> TfDir {
    let mut tf = TfDir::new(&[ProviderBuild::dr()]);
    tf.set_env("DR_PASSPHRASE", "acc-functions-3c1d");
    tf.set_env("DR_TEST_INSECURE_KDF", "1");
    std::fs::create_dir_all(tf.path().join("pipeline")).unwrap();
    std::fs::write(tf.path().join("pipeline/ci.yml"), "stages: [build]\n").unwrap();
    tf.config(&format!(
        r#"
terraform {{
  required_providers {{
    dr = {{ source = "registry.terraform.io/dr-project/dr" }}
  }}
}}
provider "dr" {{}}

resource "dr_backup_vault" "ci" {{
  name   = "ci"
  region = "eu-west-1"
  url    = "vaults/ci"
  source {{
    name = "pipeline"
    path = "pipeline"
  }}
}}

data "dr_snapshot" "latest" {{
  vault_id = dr_backup_vault.ci.id
}}

check "latest_snapshot_is_recent" {{
  assert {{
    condition     = provider::dr::within(data.dr_snapshot.latest.time, "{check_window}", plantimestamp())
    error_message = "The newest snapshot of ${{dr_backup_vault.ci.name}} is older than {check_window}."
  }}
}}

output "rpo_seconds" {{
  value = provider::dr::duration_seconds("1h30m")
}}
output "recent" {{
  value = provider::dr::within(data.dr_snapshot.latest.time, "1h", plantimestamp())
}}
output "where" {{
  value = provider::dr::parse_vault_url("s3://dr-eu/ci/?region=eu-west-1")
}}
"#
    ));
    tf
}

#[test]
fn functions_answer_in_outputs_and_checks_and_the_second_plan_is_empty() {
    if !terraform_at_least(1, 8, "functions_answer_in_outputs_and_checks") {
        return;
    }
    let tf = module("1h");
    tf.init();
    let applied = tf.apply();
    assert!(
        !applied.flat().contains("Check block assertion failed"),
        "{applied}"
    );
    let out: serde_json::Value = serde_json::from_str(&tf.ok(&["output", "-json"]).stdout).unwrap();
    assert_eq!(out["rpo_seconds"]["value"], 5400);
    assert_eq!(out["recent"]["value"], true);
    let place = &out["where"]["value"];
    assert_eq!(place["scheme"], "s3");
    assert_eq!(place["bucket"], "dr-eu");
    assert_eq!(place["prefix"], "ci");
    assert_eq!(place["options"]["region"], "eu-west-1");
    assert_eq!(place["id"], "s3://dr-eu/ci?region=eu-west-1");
    tf.assert_plan_empty();
}

#[test]
fn a_failed_check_warns_naming_the_vault_and_a_bad_argument_is_named() {
    if !terraform_at_least(1, 8, "a_failed_check_warns_naming_the_vault") {
        return;
    }
    // A window of zero seconds: the snapshot just taken is already outside it.
    let tf = module("0s");
    tf.init();
    tf.apply();
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let text = tf.ok(&["plan", "-no-color"]).flat();
    assert!(
        text.contains("Check block assertion failed")
            && text.contains("The newest snapshot of ci is older than 0s."),
        "{text}"
    );

    std::fs::write(
        tf.path().join("bad.tf"),
        r#"output "bad" { value = provider::dr::duration_seconds("soon") }"#,
    )
    .unwrap();
    tf.fails_with(
        &["plan", "-no-color"],
        r#"(?s)Invalid value for "duration" parameter: duration "soon" is not a duration"#,
    );
}

/// What `terraform providers schema -json` shows on a modern Terraform: the functions with
/// their signatures, the ephemeral resource, and the write-only attribute.
#[test]
fn the_schema_lists_functions_the_ephemeral_resource_and_the_write_only_attribute() {
    if !terraform_at_least(1, 11, "the_schema_lists_functions_the_ephemeral_resource") {
        return;
    }
    let tf = module("1h");
    tf.init();
    let out = tf.ok(&["providers", "schema", "-json"]);
    let schema: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    let dr = &schema["provider_schemas"]["registry.terraform.io/dr-project/dr"];
    let functions = dr["functions"].as_object().expect("functions");
    let mut names: Vec<&String> = functions.keys().collect();
    names.sort();
    assert_eq!(names, ["duration_seconds", "parse_vault_url", "within"]);
    assert_eq!(functions["within"]["return_type"], "bool");
    assert!(
        dr["ephemeral_resource_schemas"]["dr_restore"]["block"]["attributes"]["path"].is_object()
    );
    let wo = &dr["resource_schemas"]["dr_drill"]["block"]["attributes"]["verify_env_wo"];
    assert_eq!(wo["write_only"], true, "{wo}");
    assert_eq!(wo["sensitive"], true, "{wo}");
}
