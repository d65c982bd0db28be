//! The `dr_restore` ephemeral resource through the real Terraform (1.10+): a snapshot restored
//! into a private directory for one run, used by a provisioner, deleted when the run closes
//! it, and absent from the plan file and the state. On older Terraform these tests say they
//! are skipped; the modern leg of `scripts/test` runs them.

use acceptance_tests::{terraform_at_least, ProviderBuild, TfDir};

fn module(extra: &str) -> TfDir {
    let mut tf = TfDir::new(&[ProviderBuild::dr()]);
    tf.set_env("DR_PASSPHRASE", "acc-ephemeral-91ab");
    tf.set_env("DR_TEST_INSECURE_KDF", "1");
    std::fs::create_dir_all(tf.path().join("pipeline/scripts")).unwrap();
    std::fs::write(
        tf.path().join("pipeline/ci.yml"),
        "stages: [build, deploy]\n",
    )
    .unwrap();
    std::fs::write(
        tf.path().join("pipeline/scripts/deploy.sh"),
        "echo deploy\n",
    )
    .unwrap();
    tf.config(&format!(
        r#"
terraform {{
  required_providers {{
    dr = {{ source = "registry.terraform.io/dr-project/dr" }}
  }}
}}
provider "dr" {{
  work_dir = "work"
}}

resource "dr_backup_vault" "ci" {{
  name   = "ci"
  region = "eu-west-1"
  url    = "vaults/ci"
  source {{
    name = "pipeline"
    path = "pipeline"
  }}
}}

ephemeral "dr_restore" "latest" {{
  vault_id = dr_backup_vault.ci.id
}}

# What a rebuild does with a restored tree: copies it where the pipeline expects it.
resource "terraform_data" "copy" {{
  input = dr_backup_vault.ci.latest_snapshot_id
  provisioner "local-exec" {{
    command = "test ${{ephemeral.dr_restore.latest.verified}} = true && test ${{ephemeral.dr_restore.latest.files}} = 2 && cp -r ${{ephemeral.dr_restore.latest.path}} copied"
  }}
}}
{extra}
"#
    ));
    tf
}

#[test]
fn a_restore_lives_for_one_run_and_reaches_neither_plan_nor_state() {
    if !terraform_at_least(1, 10, "a_restore_lives_for_one_run") {
        return;
    }
    let tf = module("");
    tf.init();
    tf.apply();
    let copied = tf.path().join("copied/pipeline");
    assert_eq!(
        std::fs::read_to_string(copied.join("ci.yml")).unwrap(),
        "stages: [build, deploy]\n"
    );
    assert_eq!(
        std::fs::read_to_string(copied.join("scripts/deploy.sh")).unwrap(),
        "echo deploy\n"
    );
    // Closed at the end of the run: the private directory is gone, work_dir is empty.
    let left: Vec<_> = std::fs::read_dir(tf.path().join("work"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
    tf.assert_plan_empty();

    // Neither the saved plan nor the state holds the restore's values.
    // (The plan opened the restore again, so a restore directory existed while it ran.)
    tf.ok(&["plan", "-out", "saved.tfplan"]);
    let plan = tf.saved_plan_contents("saved.tfplan");
    let state = std::fs::read_to_string(tf.path().join("terraform.tfstate")).unwrap();
    let restore_dirs = tf.path().join("work/restore-").display().to_string();
    assert!(
        !plan
            .windows(restore_dirs.len())
            .any(|w| w == restore_dirs.as_bytes()),
        "the plan file names a restore directory"
    );
    assert!(
        !state.contains(&restore_dirs),
        "the state names a restore directory"
    );
}

#[test]
fn a_source_the_snapshot_lacks_is_named_and_nothing_is_left_behind() {
    if !terraform_at_least(1, 10, "a_source_the_snapshot_lacks_is_named") {
        return;
    }
    let tf = module(
        r#"
ephemeral "dr_restore" "one_source" {
  vault_id = dr_backup_vault.ci.id
  source   = "nope"
}
resource "terraform_data" "uses_it" {
  provisioner "local-exec" {
    command = "echo ${ephemeral.dr_restore.one_source.path}"
  }
}
"#,
    );
    tf.init();
    tf.fails_with(
        &["apply", "-auto-approve", "-no-color"],
        r#"Source Not In Snapshot .*source = "nope".*has no source "nope"; it holds: pipeline"#,
    );
    let work = tf.path().join("work");
    let left: Vec<_> = std::fs::read_dir(&work)
        .map(|d| d.map(|e| e.unwrap().path()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "left behind: {left:?}");
}
