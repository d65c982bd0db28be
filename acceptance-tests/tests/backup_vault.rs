//! `dr_backup_vault` and the `dr_vault` / `dr_snapshot` data sources through the real
//! Terraform 1.0.3: every behaviour the resource promises, as a user would see it.

use acceptance_tests::{files_under, num, ProviderBuild, TfDir};

const PASSPHRASE: &str = "acc-passphrase-7f3a";

/// A root module directory with the dr provider, a passphrase in the environment, cheap
/// key derivation for new vaults, and a sample pipeline folder as the source.
fn module() -> TfDir {
    let mut tf = TfDir::new(&[ProviderBuild::dr()]);
    tf.set_env("DR_PASSPHRASE", PASSPHRASE);
    tf.set_env("DR_TEST_INSECURE_KDF", "1");
    let pipeline = tf.path().join("pipeline");
    std::fs::create_dir_all(pipeline.join("scripts")).unwrap();
    std::fs::write(pipeline.join("ci.yml"), "stages: [build, deploy]\n").unwrap();
    std::fs::write(
        pipeline.join("scripts/deploy.sh"),
        "#!/bin/sh\necho deploy\n",
    )
    .unwrap();
    tf
}

const HEADER: &str = r#"
terraform {
  required_providers {
    dr = { source = "registry.terraform.io/dr-project/dr" }
  }
}
provider "dr" {}
"#;

fn vault_config(body: &str) -> String {
    format!(
        r#"{HEADER}
resource "dr_backup_vault" "primary" {{
{body}
}}
"#
    )
}

const BASIC: &str = r#"
  name   = "primary"
  region = "eu-west-1"
  url    = "vaults/primary"
  source {
    name = "pipeline"
    path = "pipeline"
  }
"#;

#[test]
fn create_then_a_changed_file_plans_a_snapshot_and_apply_takes_exactly_one() {
    let tf = module();
    tf.config(&vault_config(BASIC));
    tf.init();
    tf.apply();
    let v = tf.values("dr_backup_vault.primary");
    let id = v["id"].as_str().unwrap();
    assert_eq!(
        id,
        format!("file://{}/vaults/primary", tf.path().display()),
        "id is the canonical absolute URL"
    );
    assert!(tf.path().join("vaults/primary/config").is_file());
    assert_eq!(num(&v["snapshot_count"]), 1);
    let first = v["latest_snapshot_id"].as_str().unwrap().to_string();
    let digest = v["source_digest"].as_str().unwrap().to_string();
    assert!(num(&v["stored_bytes"]) > 0);

    std::fs::write(
        tf.path().join("pipeline/ci.yml"),
        "stages: [build, test, deploy]\n",
    )
    .unwrap();
    let plan = tf.assert_plan_changes(
        r"~ update in-place .*~ latest_snapshot_id += \S+ -> \(known after apply\).*~ source_digest += \S+ -> \S+",
    );
    assert!(!plan.flat().contains(PASSPHRASE));
    tf.apply();
    let v = tf.values("dr_backup_vault.primary");
    assert_eq!(num(&v["snapshot_count"]), 2, "exactly one new snapshot");
    assert_ne!(v["latest_snapshot_id"], first.as_str());
    assert_ne!(v["source_digest"], digest.as_str());

    // Retention and labels change in place, without a snapshot.
    tf.config(&vault_config(&format!(
        "{BASIC}\n  labels = {{ team = \"platform\" }}\n  retention {{\n    keep_last = 1\n  }}\n"
    )));
    tf.assert_plan_changes(r"~ update in-place .*\+ labels");
    tf.apply();
    let v = tf.values("dr_backup_vault.primary");
    assert_eq!(
        num(&v["snapshot_count"]),
        1,
        "keep_last = 1 pruned the older one"
    );

    // name, region and url force replacement.
    for (attr, value) in [
        ("name", "\"renamed\""),
        ("region", "\"us-east-1\""),
        ("url", "\"vaults/other\""),
    ] {
        let body = BASIC.replace(
            &BASIC
                .lines()
                .find(|l| l.trim_start().starts_with(&format!("{attr} ")))
                .unwrap()
                .to_string(),
            &format!("  {attr} = {value}"),
        );
        tf.config(&vault_config(&body));
        tf.assert_plan_changes(&format!(
            r"must be replaced .*{attr} .*# forces replacement"
        ));
    }
}

#[test]
fn an_existing_vault_is_refused_with_the_import_command_and_import_plans_empty() {
    let tf = module();
    tf.config(&vault_config(BASIC));
    tf.init();
    tf.apply();
    // The state is lost; the vault is not.
    std::fs::remove_file(tf.path().join("terraform.tfstate")).unwrap();
    let _ = std::fs::remove_file(tf.path().join("terraform.tfstate.backup"));
    tf.fails_with(
        &["apply", "-no-color", "-auto-approve"],
        r"Vault Already Exists.*terraform import dr_backup_vault.<NAME> vaults/primary",
    );
    tf.ok(&[
        "import",
        "-no-color",
        "dr_backup_vault.primary",
        "vaults/primary",
    ]);
    tf.assert_plan_empty();
    let v = tf.values("dr_backup_vault.primary");
    assert_eq!(num(&v["snapshot_count"]), 1);
}

#[test]
fn after_the_state_is_lost_import_by_id_or_by_url_never_replaces_and_plans_empty() {
    let tf = module();
    let config = format!(
        r#"{}
resource "dr_backup_vault" "standby" {{
  name   = "standby"
  region = "us-east-1"
  url    = "./vaults/standby/"
}}
"#,
        vault_config(BASIC)
    );
    tf.config(&config);
    tf.init();
    tf.apply();
    let id = tf.values("dr_backup_vault.primary")["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(id.starts_with("file:///"), "{id}");
    let standby_id = tf.values("dr_backup_vault.standby")["id"]
        .as_str()
        .unwrap()
        .to_string();

    // By the canonical id `terraform state show` prints, while the configuration spells a
    // relative path: the vault's recorded settings give the spelling back.
    tf.import_verify(
        &[
            ("dr_backup_vault.primary", &id),
            ("dr_backup_vault.standby", &standby_id),
        ],
        &[],
    );
    assert_eq!(
        tf.values("dr_backup_vault.primary")["url"],
        "vaults/primary"
    );

    // By the URL as written: a standby (no source) too, with no one-time digest update.
    tf.import_verify(
        &[
            ("dr_backup_vault.primary", "vaults/primary"),
            ("dr_backup_vault.standby", "./vaults/standby/"),
        ],
        &[],
    );

    // Another spelling of the same place in the configuration is an update of url in
    // place, never a replacement (which, with force_destroy, would delete the snapshots).
    tf.config(&config.replace("url    = \"vaults/primary\"", &format!("url    = \"{id}\"")));
    let plan = tf.assert_plan_changes(r"dr_backup_vault.primary will be updated in-place");
    assert!(!plan.flat().contains("forces replacement"), "{plan}");
    tf.apply();
}

/// A null entry in a map (a label fed by an unset variable) is the user's to write: the vault
/// leaves it out, the state keeps it as configured, and nothing plans a change, nor after an
/// import.
#[test]
fn a_null_label_is_kept_as_written_and_plans_nothing() {
    let tf = module();
    let body = format!("{BASIC}  labels = {{\n    team  = \"ci\"\n    owner = null\n  }}\n");
    tf.config(&vault_config(&body));
    tf.init();
    tf.apply();
    assert_eq!(
        tf.values("dr_backup_vault.primary")["labels"],
        serde_json::json!({"team": "ci", "owner": null})
    );
    tf.assert_plan_empty();
    let id = tf.values("dr_backup_vault.primary")["id"]
        .as_str()
        .unwrap()
        .to_string();
    tf.import_verify(&[("dr_backup_vault.primary", &id)], &[]);
}

#[test]
fn a_vault_deleted_outside_terraform_plans_to_be_created_again() {
    let tf = module();
    tf.config(&vault_config(BASIC));
    tf.init();
    tf.apply();
    std::fs::remove_dir_all(tf.path().join("vaults/primary")).unwrap();
    tf.assert_plan_changes(r"dr_backup_vault.primary will be created");
    tf.apply();
}

/// A destroy killed part way leaves remains without a config; the refresh of the next
/// `terraform destroy` then drops the vault from state, and the next apply met a location
/// "not empty" for good (found by the crash campaign). Remains provably this vault's (its
/// key opens with the passphrase) and holding no snapshot are cleared by the create, with a
/// warning; remains holding manifests never are.
#[test]
fn an_apply_clears_what_an_interrupted_destroy_left_but_never_snapshots() {
    let tf = module();
    tf.config(&vault_config(BASIC));
    tf.init();
    tf.apply();
    let root = tf.path().join("vaults/primary");
    // Killed after the config and the manifests went, before the data and the keys.
    std::fs::remove_file(root.join("config")).unwrap();
    let manifests = root.join("snapshots");
    let kept = tf.path().join("manifests-aside");
    std::fs::rename(&manifests, &kept).unwrap();
    tf.ok(&["state", "rm", "dr_backup_vault.primary"]);

    // With the manifests back, the remains hold snapshots: refused, nothing deleted.
    std::fs::rename(&kept, &manifests).unwrap();
    let before = files_under(&root);
    tf.fails_with(&["apply", "-auto-approve"], "Vault Location Not Empty");
    assert_eq!(files_under(&root), before);

    // Without them, the create clears the remains and makes the vault.
    std::fs::remove_dir_all(&manifests).unwrap();
    let out = tf.ok(&["apply", "-auto-approve"]);
    assert!(
        out.to_string().contains("Interrupted Destroy Finished"),
        "{out}"
    );
    assert!(root.join("config").exists());
    tf.assert_plan_empty();
}

/// Runs `terraform destroy` until the provider reaches the stop `point`, and kills it there
/// with SIGKILL, as a crash would.
fn kill_the_destroy_at(tf: &mut TfDir, point: &str) {
    tf.set_env("DR_TEST_STOP_AT", point);
    let mut destroy = tf
        .command(tf.path(), &["destroy", "-auto-approve"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    tf.remove_env("DR_TEST_STOP_AT");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    let provider = loop {
        let stopped = acceptance_tests::dr_provider_under(destroy.id())
            .filter(|&pid| acceptance_tests::process_state(pid) == Some('T'));
        if let Some(pid) = stopped {
            break pid;
        }
        assert!(
            destroy.try_wait().unwrap().is_none(),
            "the destroy ended before {point}"
        );
        assert!(
            std::time::Instant::now() < deadline,
            "the destroy never reached {point}"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    std::process::Command::new("kill")
        .args(["-KILL", &provider.to_string()])
        .status()
        .unwrap();
    assert!(!destroy.wait().unwrap().success());
}

/// Every file at `root`, none when it is gone.
fn left_at(root: &std::path::Path) -> Vec<std::path::PathBuf> {
    if root.exists() {
        files_under(root)
    } else {
        Vec::new()
    }
}

/// A `terraform destroy` killed right after it deleted the config, every manifest still there
/// (found by the crash campaign): the refresh of the next destroy dropped the vault from
/// state, so no delete came, that destroy "succeeded" leaving the snapshots, and every later
/// apply met a location "not empty". Now the refresh keeps the vault, with a warning, and
/// plans no change; the next destroy finishes it, and the apply after that creates it anew.
#[test]
fn a_destroy_killed_after_the_config_went_is_finished_by_the_next_destroy() {
    let mut tf = module();
    tf.config(&vault_config(&format!("{BASIC}\n  force_destroy = true\n")));
    tf.init();
    tf.apply();
    let root = tf.path().join("vaults/primary");
    kill_the_destroy_at(&mut tf, "destroy-config-deleted");
    assert!(!root.join("config").exists());
    let manifests = files_under(&root.join("snapshots"));
    assert_eq!(
        manifests.len(),
        1,
        "the kill left the manifest: {manifests:?}"
    );

    // A plan keeps the vault and says what is wrong; it plans nothing that deletes snapshots.
    let plan = tf.ok(&["plan", "-no-color"]).to_string();
    assert!(plan.contains("Vault Config Missing"), "{plan}");
    assert!(plan.contains("No changes"), "{plan}");

    let out = tf
        .ok(&["destroy", "-auto-approve", "-no-color"])
        .to_string();
    assert!(out.contains("Interrupted Destroy Finished"), "{out}");
    assert_eq!(left_at(&root), Vec::<std::path::PathBuf>::new());

    tf.apply();
    assert!(root.join("config").is_file());
    tf.assert_plan_empty();
}

/// Killed once the manifests were gone too (the key file, data and records left): the next
/// apply replaces the vault, clearing what is left, and a destroy killed there the same way is
/// finished by the next destroy, which leaves nothing behind (not even the key file).
#[test]
fn a_destroy_killed_after_the_manifests_went_is_finished_by_the_next_apply_or_destroy() {
    let mut tf = module();
    tf.config(&vault_config(&format!("{BASIC}\n  force_destroy = true\n")));
    tf.init();
    tf.apply();
    let root = tf.path().join("vaults/primary");
    kill_the_destroy_at(&mut tf, "destroy-manifests-deleted");
    assert!(!root.join("config").exists());
    assert!(!files_under(&root.join("keys")).is_empty());

    let plan = tf.ok(&["plan", "-no-color"]).to_string();
    assert!(plan.contains("Vault Config Missing"), "{plan}");
    assert!(plan.contains("must be replaced"), "{plan}");
    let out = tf.ok(&["apply", "-auto-approve", "-no-color"]).to_string();
    assert!(out.contains("Interrupted Destroy Finished"), "{out}");
    assert!(root.join("config").is_file());
    assert_eq!(
        num(&tf.values("dr_backup_vault.primary")["snapshot_count"]),
        1
    );
    tf.assert_plan_empty();

    kill_the_destroy_at(&mut tf, "destroy-manifests-deleted");
    tf.ok(&["destroy", "-auto-approve"]);
    assert_eq!(left_at(&root), Vec::<std::path::PathBuf>::new());
}

/// Remains under a `lock_for` (scaffold gives every vault one): a destroy killed after the
/// config went had passed the lock's check, and the next destroy finishes it; remains whose
/// snapshots are still locked (a config lost while they were young) are kept, whatever
/// force_destroy says, until they are older than lock_for. Meanwhile force_destroy, which
/// lives in the state, can still be changed, and nothing else can.
#[test]
fn remains_under_lock_for_are_finished_only_once_their_snapshots_are_unlocked() {
    let mut tf = module();
    tf.set_env("DR_TEST_CLOCK", "1");
    tf.set_env("DR_TEST_NOW", "2026-11-01T00:00:00Z");
    let locked = |force: bool| {
        vault_config(&format!(
            "{BASIC}\n  force_destroy = {force}\n  retention {{\n    lock_for = \"1h\"\n  }}\n"
        ))
    };
    tf.config(&locked(false));
    tf.init();
    tf.apply();
    let root = tf.path().join("vaults/primary");

    // The config lost while the snapshot is young: force_destroy can still be set (the
    // state alone holds it), nothing else changes, and the destroy deletes nothing.
    std::fs::remove_file(root.join("config")).unwrap();
    let before = files_under(&root);
    tf.config(&vault_config(&format!(
        "{BASIC}\n  force_destroy = true\n  labels = {{ team = \"x\" }}\n  retention {{\n    lock_for = \"1h\"\n  }}\n"
    )));
    tf.fails_with(&["plan", "-no-color"], r"only force_destroy can change");
    tf.config(&locked(true));
    tf.ok(&["apply", "-auto-approve"]);
    assert_eq!(tf.values("dr_backup_vault.primary")["force_destroy"], true);
    tf.fails_with(
        &["destroy", "-no-color", "-auto-approve"],
        r"(?s)Vault Remains Hold Snapshots.*younger than its lock_for \(1h\).*older than lock_for",
    );
    assert_eq!(files_under(&root), before, "nothing deleted");

    // Two hours on, the lock has expired: the destroy finishes.
    tf.set_env("DR_TEST_NOW", "2026-11-01T02:00:00Z");
    let out = tf
        .ok(&["destroy", "-auto-approve", "-no-color"])
        .to_string();
    assert!(out.contains("Interrupted Destroy Finished"), "{out}");
    assert_eq!(left_at(&root), Vec::<std::path::PathBuf>::new());

    // And a destroy killed right after the config went, its snapshots already unlocked, is
    // finished by the next one.
    tf.apply();
    tf.set_env("DR_TEST_NOW", "2026-11-01T04:00:00Z");
    kill_the_destroy_at(&mut tf, "destroy-config-deleted");
    assert!(!root.join("config").exists());
    let out = tf
        .ok(&["destroy", "-auto-approve", "-no-color"])
        .to_string();
    assert!(out.contains("Interrupted Destroy Finished"), "{out}");
    assert_eq!(left_at(&root), Vec::<std::path::PathBuf>::new());
}

#[test]
fn destroy_needs_force_destroy_and_never_deletes_locked_snapshots() {
    let mut tf = module();
    tf.set_env("DR_TEST_CLOCK", "1");
    tf.set_env("DR_TEST_NOW", "2026-11-01T00:00:00Z");
    tf.config(&vault_config(BASIC));
    tf.init();
    tf.apply();
    tf.fails_with(
        &["destroy", "-no-color", "-auto-approve"],
        r"Vault Holds Snapshots.*holds 1 snapshot\(s\).*force_destroy = true",
    );
    assert!(
        tf.path().join("vaults/primary/config").is_file(),
        "nothing deleted"
    );

    tf.config(&vault_config(&format!(
        "{BASIC}\n  force_destroy = true\n  retention {{\n    lock_for = \"30d\"\n  }}\n"
    )));
    tf.apply();
    tf.fails_with(
        &["destroy", "-no-color", "-auto-approve"],
        r"younger than its lock_for \(30days\) and can be deleted by nothing",
    );
    assert!(
        tf.path().join("vaults/primary/config").is_file(),
        "nothing deleted"
    );
    // lock_for can only grow: lowering it would unlock what it promised to keep.
    tf.config(&vault_config(&format!("{BASIC}\n  force_destroy = true\n")));
    tf.fails_with(&["plan", "-no-color"], r"lock_for Cannot Be Lowered");

    // 31 days later the lock has expired.
    tf.set_env("DR_TEST_NOW", "2026-12-02T00:00:00Z");
    tf.config(&vault_config(&format!(
        "{BASIC}\n  force_destroy = true\n  retention {{\n    lock_for = \"30d\"\n  }}\n"
    )));
    tf.ok(&["destroy", "-no-color", "-auto-approve"]);
    assert!(
        !tf.path().join("vaults/primary").exists(),
        "the vault is gone"
    );
}

#[test]
fn bad_input_is_an_error_on_its_attribute_and_writes_nothing() {
    let tf = module();
    let cases = [
        (
            BASIC.replace("path = \"pipeline\"", "path = \"no-such-dir\""),
            r"Source Path Not Found.*no-such-dir does not exist",
        ),
        (
            BASIC.replace(
                "path = \"pipeline\"",
                "path = \"pipeline\"\n    include = [\"a[\"]",
            ),
            r"Invalid Glob.*not a glob",
        ),
        (
            BASIC.replace("name   = \"primary\"", "name   = \"Primary Vault\""),
            r"name must be 1 to 63 lower-case letters",
        ),
        (
            format!("{BASIC}\n  retention {{\n    keep_within = \"soon\"\n  }}\n"),
            r"Invalid Duration.*retention.keep_within",
        ),
        (
            format!(
                "{BASIC}\n  source {{\n    name = \"pipeline\"\n    path = \"pipeline\"\n  }}\n"
            ),
            r"Duplicate Source Name",
        ),
    ];
    tf.config(&vault_config(BASIC));
    tf.init();
    for (body, pattern) in cases {
        tf.config(&vault_config(&body));
        tf.fails_with(&["validate", "-no-color"], pattern);
        tf.fails_with(&["plan", "-no-color"], pattern);
    }
    assert!(!tf.path().join("vaults").exists(), "nothing was written");
}

#[test]
fn a_missing_passphrase_is_one_clear_error_and_the_passphrase_is_never_shown() {
    let mut tf = module();
    tf.remove_env("DR_PASSPHRASE");
    tf.config(&vault_config(BASIC));
    tf.init();
    let out = tf.fails_with(
        &["plan", "-no-color"],
        r"Missing Vault Passphrase.*DR_PASSPHRASE",
    );
    assert_eq!(out.flat().matches("Missing Vault Passphrase").count(), 1);

    // In the provider block (from a variable), with full logging on: never printed or stored.
    let secret = "pp-in-config-93c1e";
    tf.config(&vault_config(BASIC).replace(
        "provider \"dr\" {}",
        &format!("variable \"pp\" {{\n  sensitive = true\n  default = \"{secret}\"\n}}\nprovider \"dr\" {{\n  passphrase = var.pp\n}}"),
    ));
    tf.set_env("TF_LOG", "trace");
    let out = tf.ok(&["apply", "-no-color", "-auto-approve"]);
    assert!(
        !out.stdout.contains(secret) && !out.stderr.contains(secret),
        "secret in output or logs"
    );
    let state = std::fs::read_to_string(tf.path().join("terraform.tfstate")).unwrap();
    assert!(!state.contains(secret), "secret in state");
    for entry in files_under(&tf.path().join("vaults")) {
        let bytes = std::fs::read(&entry).unwrap();
        assert!(
            !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
            "secret in {}",
            entry.display()
        );
    }
    tf.remove_env("TF_LOG");
    tf.assert_plan_empty();
}

#[test]
fn data_sources_read_a_vault_made_by_drctl_and_name_what_is_missing() {
    let tf = module();
    let drctl = acceptance_tests::drctl_bin();
    let run = |args: &[&str]| {
        let out = std::process::Command::new(&drctl)
            .args(args)
            .current_dir(tf.path())
            .env("DR_PASSPHRASE", PASSPHRASE)
            .env("DR_TEST_INSECURE_KDF", "1")
            .output()
            .expect("drctl is built by scripts/setup (cargo build --workspace --bins)");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    run(&[
        "vault",
        "--vault",
        "made-by-drctl",
        "init",
        "--name",
        "standby",
        "--region",
        "us-east-1",
    ]);
    run(&[
        "vault",
        "--vault",
        "made-by-drctl",
        "snapshot",
        "--source",
        "pipeline=pipeline",
        "--label",
        "env=prod",
    ]);
    tf.config(&format!(
        r#"{HEADER}
data "dr_vault" "v" {{
  url = "made-by-drctl"
}}
data "dr_snapshot" "s" {{
  vault_id = data.dr_vault.v.id
}}
output "name" {{ value = data.dr_vault.v.name }}
output "region" {{ value = data.dr_vault.v.region }}
output "count" {{ value = data.dr_vault.v.snapshot_count }}
output "same" {{ value = data.dr_vault.v.latest_snapshot_id == data.dr_snapshot.s.id }}
output "sources" {{ value = data.dr_snapshot.s.sources }}
output "files" {{ value = data.dr_snapshot.s.files }}
output "env" {{ value = data.dr_snapshot.s.labels["env"] }}
"#
    ));
    tf.init();
    tf.apply();
    let out = tf.ok(&["output", "-json"]);
    let o: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(o["name"]["value"], "standby");
    assert_eq!(o["region"]["value"], "us-east-1");
    assert_eq!(num(&o["count"]["value"]), 1);
    assert_eq!(o["same"]["value"], true);
    assert_eq!(o["sources"]["value"], serde_json::json!(["pipeline"]));
    assert_eq!(num(&o["files"]["value"]), 2);
    assert_eq!(o["env"]["value"], "prod");

    tf.config(&format!(
        "{HEADER}\ndata \"dr_vault\" \"v\" {{\n  url = \"nowhere\"\n}}\n"
    ));
    tf.fails_with(
        &["plan", "-no-color"],
        r"Vault Not Found.*There is no vault at nowhere",
    );
    tf.config(&format!(
        "{HEADER}\ndata \"dr_snapshot\" \"s\" {{\n  vault_id = \"made-by-drctl\"\n  snapshot_id = \"ffff\"\n}}\n"
    ));
    tf.fails_with(&["plan", "-no-color"], r"Snapshot Not Found.*ffff");
}

/// Issue 12, items 1 and 6, as a user meets them: a vault pointed at a directory that holds
/// other files is refused at apply (naming the directory and a file in it) and nothing is
/// deleted, not then and not by a destroy; a credential in a resource's `storage_options` is
/// an error at plan time on that key, so it never reaches the state.
#[test]
fn a_vault_over_other_files_is_refused_and_credentials_never_reach_state() {
    let tf = module();
    let data = tf.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(data.join("important.txt"), "keep me").unwrap();
    tf.config(&vault_config(
        r#"
  name   = "primary"
  region = "eu-west-1"
  url    = "./data"
  source {
    name = "pipeline"
    path = "pipeline"
  }
"#,
    ));
    tf.init();
    tf.fails_with(
        &["apply", "-auto-approve", "-input=false"],
        r"data is not empty \(it holds .important\.txt.\)",
    );
    tf.ok(&["destroy", "-auto-approve", "-input=false"]);
    assert_eq!(
        std::fs::read_to_string(data.join("important.txt")).unwrap(),
        "keep me"
    );
    assert_eq!(files_under(&data).len(), 1, "{:?}", files_under(&data));

    tf.config(&vault_config(
        r#"
  name            = "primary"
  region          = "eu-west-1"
  url             = "vaults/primary"
  storage_options = { aws_secret_access_key = "AKIAVERYSECRETVALUE" }
"#,
    ));
    let out = tf.fails_with(
        &["plan", "-input=false", "-no-color"],
        r#"Storage Option Not Allowed.*"aws_secret_access_key" is not allowed.*environment"#,
    );
    // Terraform quotes the offending line of main.tf; the provider's own words never repeat it.
    let shown = format!("{}{}", out.stdout, out.stderr);
    assert_eq!(shown.matches("AKIAVERYSECRETVALUE").count(), 1, "{out}");
    let state = tf.path().join("terraform.tfstate");
    assert!(
        !state.exists()
            || !std::fs::read_to_string(&state)
                .unwrap()
                .contains("AKIAVERY")
    );
}
