//! `import` blocks with `-generate-config-out` (Terraform 1.5+): after a state is lost, the
//! configuration Terraform generates from what the provider imports plans empty in a module
//! laid out like the original (the vault's recorded configuration gives back the URL and the
//! source paths as written; Terraform itself writes `attr = null` for unset attributes).

use acceptance_tests::{terraform_at_least, ProviderBuild, TfDir};

const HEADER: &str = r#"
terraform {
  required_providers {
    dr = { source = "registry.terraform.io/dr-project/dr" }
  }
}
provider "dr" {}
"#;

#[test]
fn generated_configuration_for_imported_vaults_and_pairs_plans_empty() {
    if !terraform_at_least(
        1,
        5,
        "generated_configuration_for_imported_vaults_and_pairs",
    ) {
        return;
    }
    let mut tf = TfDir::new(&[ProviderBuild::dr()]);
    tf.set_env("DR_PASSPHRASE", "acc-import-blocks-4e2a");
    tf.set_env("DR_TEST_INSECURE_KDF", "1");
    std::fs::create_dir_all(tf.path().join("pipeline/scripts")).unwrap();
    std::fs::write(tf.path().join("pipeline/ci.yml"), "stages: [build]\n").unwrap();
    std::fs::write(tf.path().join("pipeline/scripts/x.sh"), "echo x\n").unwrap();
    tf.config(&format!(
        r#"{HEADER}
resource "dr_backup_vault" "eu" {{
  name   = "eu"
  region = "eu-west-1"
  url    = "vaults/eu"
  source {{
    name    = "pipeline"
    path    = "pipeline"
    include = ["**/*.yml", "**/*.sh"]
  }}
  retention {{
    keep_last = 7
  }}
  labels = {{ team = "platform" }}
}}
resource "dr_backup_vault" "us" {{
  name   = "us"
  region = "us-east-1"
  url    = "vaults/us"
}}
resource "dr_region_pair" "ci" {{
  name               = "ci"
  primary_vault_id   = dr_backup_vault.eu.id
  secondary_vault_id = dr_backup_vault.us.id
  rpo                = "1h"
  rto                = "30m"
}}
"#
    ));
    tf.init();
    tf.apply();
    let pair_id = tf.values("dr_region_pair.ci")["id"]
        .as_str()
        .unwrap()
        .to_string();

    // The state is lost; the configuration too. Import blocks, and let Terraform write it.
    std::fs::remove_file(tf.path().join("terraform.tfstate")).unwrap();
    tf.config(&format!(
        r#"{HEADER}
import {{
  to = dr_backup_vault.eu
  id = "vaults/eu"
}}
import {{
  to = dr_backup_vault.us
  id = "vaults/us"
}}
import {{
  to = dr_region_pair.ci
  id = "{pair_id}"
}}
"#
    ));
    tf.ok(&["plan", "-no-color", "-generate-config-out=generated.tf"]);
    let generated = std::fs::read_to_string(tf.path().join("generated.tf")).unwrap();
    for written in [
        r#"url             = "vaults/eu""#,
        r#"path    = "pipeline""#,
        r#"include = ["**/*.yml", "**/*.sh"]"#,
        r#"keep_last   = 7"#,
    ] {
        assert!(generated.contains(written), "{written} in:\n{generated}");
    }
    tf.apply();
    tf.assert_plan_empty();
}
