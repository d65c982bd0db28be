//! Every example under `examples/` applies with the real Terraform, then plans empty: the
//! quickstart as the README's first command runs it, and the per-type examples the docs show.

use acceptance_tests::{copy_dir, terraform_at_least, workspace_root, ProviderBuild, TfDir};

fn module() -> TfDir {
    let mut tf = TfDir::new(&[ProviderBuild::dr()]);
    tf.set_env("DR_PASSPHRASE", "examples-passphrase");
    tf.set_env("DR_TEST_INSECURE_KDF", "1");
    tf
}

#[test]
fn the_quickstart_applies_and_its_drill_passes_twice() {
    let tf = module();
    copy_dir(&workspace_root().join("examples/quickstart"), tf.path());
    tf.init();
    tf.apply();
    let drill = tf.values("dr_drill.restore_pipeline");
    assert_eq!(drill["status"], "passed", "{drill}");
    assert_eq!(drill["files_verified"], 3);
    // Running it again is safe and changes nothing.
    tf.apply();
}

/// A module of every resource example, with what they refer to but do not define, and the
/// pipeline folder they back up.
fn resource_examples() -> (TfDir, String) {
    let tf = module();
    let root = workspace_root().join("examples");
    let mut hcl = String::from(
        r#"
terraform {
  required_providers {
    dr = { source = "registry.terraform.io/dr-project/dr" }
  }
}
provider "dr" {
  work_dir = "scratch"
}
# What the examples refer to but do not define.
resource "dr_backup_vault" "secondary" {
  name   = "pipelines-us"
  region = "us-east-1"
  url    = "vaults/us-east-1"
}
"#,
    );
    for kind in ["dr_backup_vault", "dr_region_pair", "dr_drill"] {
        hcl += &std::fs::read_to_string(root.join("resources").join(kind).join("resource.tf"))
            .unwrap();
    }
    let pipeline = tf.path().join("pipeline");
    std::fs::create_dir_all(pipeline.join("scripts")).unwrap();
    std::fs::write(pipeline.join("pipeline.yml"), "stages: [deploy]\n").unwrap();
    std::fs::write(pipeline.join("scripts/deploy.sh"), "echo deploy\n").unwrap();
    std::fs::write(pipeline.join("prod.tfvars"), "region = \"eu-west-1\"\n").unwrap();
    (tf, hcl)
}

#[test]
fn the_resource_and_data_source_examples_apply() {
    let (tf, mut hcl) = resource_examples();
    let root = workspace_root().join("examples");
    tf.config(&hcl);
    tf.init();
    tf.apply();
    assert_eq!(tf.values("dr_drill.nightly")["status"], "passed");
    // The data sources read the vaults the resources made.
    for kind in ["dr_vault", "dr_snapshot"] {
        hcl +=
            &std::fs::read_to_string(root.join("data-sources").join(kind).join("data-source.tf"))
                .unwrap();
    }
    tf.config(&hcl);
    tf.apply();
    let out = tf.ok(&["output", "-json"]);
    let o: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(
        o["standby_latest"]["value"],
        tf.values("dr_region_pair.pipelines")["standby_latest_snapshot_id"]
    );
    assert_eq!(o["latest_files"]["value"], 3);
}

/// The examples of what needs a modern Terraform: the ephemeral resource (1.10) and the
/// functions (1.8), applied beside the resource examples, then an empty plan.
#[test]
fn the_function_and_ephemeral_resource_examples_apply() {
    if !terraform_at_least(1, 10, "the_function_and_ephemeral_resource_examples_apply") {
        return;
    }
    let (tf, mut hcl) = resource_examples();
    let root = workspace_root().join("examples");
    hcl +=
        &std::fs::read_to_string(root.join("ephemeral-resources/dr_restore/ephemeral-resource.tf"))
            .unwrap();
    for function in ["within", "duration_seconds", "parse_vault_url"] {
        hcl += &std::fs::read_to_string(root.join("functions").join(function).join("function.tf"))
            .unwrap();
    }
    tf.config(&hcl);
    tf.init();
    let applied = tf.apply();
    assert!(
        !applied.flat().contains("Check block assertion failed"),
        "the standby is within its RPO right after the pair replicated: {applied}"
    );
    assert_eq!(
        std::fs::read_to_string(tf.path().join("runner-seed/pipeline.yml")).unwrap(),
        "stages: [deploy]\n"
    );
    let out: serde_json::Value = serde_json::from_str(&tf.ok(&["output", "-json"]).stdout).unwrap();
    assert_eq!(out["standby_bucket"]["value"], "dr-us");
    assert!(out["rto_headroom_seconds"]["value"].as_f64().unwrap() > 1700.0);
    tf.assert_plan_empty();
}

/// The quickstart's `terraform test` files: one applies the module for real and asserts the
/// drill passed (then destroys it, vaults included), one runs against a mocked provider.
#[test]
fn the_quickstart_passes_terraform_test_for_real_and_mocked() {
    if !terraform_at_least(1, 7, "the_quickstart_passes_terraform_test") {
        return;
    }
    let tf = module();
    copy_dir(&workspace_root().join("examples/quickstart"), tf.path());
    tf.init();
    let out = tf.ok(&["test", "-no-color"]);
    let text = out.flat();
    assert!(
        text.contains("run \"the_drill_restores_the_pipeline_from_the_standby\"... pass")
            && text.contains(
                "run \"the_drill_restores_from_the_secondary_against_the_pairs_targets\"... pass"
            )
            && text.contains("Success! 2 passed, 0 failed."),
        "{out}"
    );
    // The real run cleaned up after itself: its vaults were destroyed with their snapshots.
    let left: Vec<_> = std::fs::read_dir(tf.path().join("test-vaults"))
        .map(|d| d.map(|e| e.unwrap().path()).collect())
        .unwrap_or_default();
    assert!(
        left.iter()
            .all(|v| std::fs::read_dir(v).map_or(true, |mut d| d.next().is_none())),
        "{left:?}"
    );
}

/// The provider example with the passphrase in an ephemeral variable: a saved plan and the
/// state never hold it.
#[test]
fn the_ephemeral_passphrase_example_keeps_it_out_of_plan_and_state() {
    if !terraform_at_least(1, 10, "the_ephemeral_passphrase_example") {
        return;
    }
    let passphrase = "ephemeral-passphrase-c41d9";
    let mut tf = TfDir::new(&[ProviderBuild::dr()]);
    tf.set_env("DR_TEST_INSECURE_KDF", "1");
    tf.remove_env("DR_PASSPHRASE");
    tf.set_env("TF_VAR_dr_passphrase", passphrase);
    let example =
        std::fs::read_to_string(workspace_root().join("examples/provider/ephemeral-passphrase.tf"))
            .unwrap()
            .replace("/var/tmp/dr-drills", "work");
    std::fs::create_dir_all(tf.path().join("pipeline")).unwrap();
    std::fs::write(tf.path().join("pipeline/ci.yml"), "stages: [build]\n").unwrap();
    tf.config(&format!(
        r#"
terraform {{
  required_providers {{
    dr = {{ source = "registry.terraform.io/dr-project/dr" }}
  }}
}}
{example}
resource "dr_backup_vault" "ci" {{
  name   = "ci"
  region = "eu-west-1"
  url    = "vaults/ci"
  source {{
    name = "pipeline"
    path = "pipeline"
  }}
}}
"#
    ));
    tf.init();
    tf.ok(&["plan", "-out", "saved.tfplan"]);
    tf.ok(&["apply", "saved.tfplan"]);
    tf.assert_plan_empty();
    tf.ok(&["plan", "-out", "again.tfplan"]);
    for file in ["saved.tfplan", "again.tfplan", "terraform.tfstate"] {
        let bytes = if file.ends_with(".tfplan") {
            tf.saved_plan_contents(file)
        } else {
            std::fs::read(tf.path().join(file)).unwrap()
        };
        assert!(
            !bytes
                .windows(passphrase.len())
                .any(|w| w == passphrase.as_bytes()),
            "{file} holds the passphrase"
        );
    }
}

/// The import-block example adopts everything the resource examples made, once their state
/// is lost: one apply imports them and the next plan is empty.
#[test]
fn the_import_block_example_adopts_what_the_examples_made_after_the_state_is_lost() {
    if !terraform_at_least(
        1,
        5,
        "the_import_block_example_adopts_what_the_examples_made",
    ) {
        return;
    }
    let (tf, hcl) = resource_examples();
    tf.config(&hcl);
    tf.init();
    tf.apply();
    std::fs::remove_file(tf.path().join("terraform.tfstate")).unwrap();
    let imports = std::fs::read_to_string(
        workspace_root().join("examples/resources/dr_backup_vault/import-block.tf"),
    )
    .unwrap();
    tf.config(&format!("{hcl}\n{imports}"));
    let applied = tf.apply();
    assert!(
        applied
            .flat()
            .contains("4 imported, 0 added, 0 changed, 0 destroyed"),
        "{applied}"
    );
    tf.assert_plan_empty();
}
