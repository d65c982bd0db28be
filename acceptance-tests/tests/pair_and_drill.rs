//! `dr_region_pair` and `dr_drill` through the real Terraform 1.0.3: replication in the same
//! apply, lag and catch-up, failover with the primary gone, import; drills that pass, fail in
//! each documented way, re-run when stale (on a test clock, never by sleeping), and import
//! from their newest report.

use acceptance_tests::{files_under, num, ProviderBuild, TfDir};

const PASSPHRASE: &str = "pair-passphrase-51d0";

fn module() -> TfDir {
    let mut tf = TfDir::new(&[ProviderBuild::dr()]);
    tf.set_env("DR_PASSPHRASE", PASSPHRASE);
    tf.set_env("DR_TEST_INSECURE_KDF", "1");
    tf.set_env("DR_TEST_CLOCK", "1");
    tf.set_env("DR_TEST_NOW", "2026-11-01T12:00:00Z");
    let pipeline = tf.path().join("pipeline");
    std::fs::create_dir_all(&pipeline).unwrap();
    std::fs::write(pipeline.join("ci.yml"), "stages: [build, deploy]\n").unwrap();
    std::fs::write(pipeline.join("deploy.sh"), "#!/bin/sh\necho deploy\n").unwrap();
    tf
}

/// Two vaults in two regions, a pair replicating the primary's latest snapshot, and `extra`.
fn config(pair_extra: &str, extra: &str) -> String {
    format!(
        r#"
terraform {{
  required_providers {{
    dr = {{ source = "registry.terraform.io/dr-project/dr" }}
  }}
}}
provider "dr" {{
  work_dir = "scratch"
}}
resource "dr_backup_vault" "primary" {{
  name          = "primary"
  region        = "eu-west-1"
  url           = "vaults/eu"
  force_destroy = true
  source {{
    name = "pipeline"
    path = "pipeline"
  }}
}}
resource "dr_backup_vault" "secondary" {{
  name          = "secondary"
  region        = "us-east-1"
  url           = "vaults/us"
  force_destroy = true
}}
resource "dr_region_pair" "prod" {{
  name                  = "prod"
  primary_vault_id      = dr_backup_vault.primary.id
  secondary_vault_id    = dr_backup_vault.secondary.id
  rpo                   = "1h"
  rto                   = "30m"
  replicate_snapshot_id = dr_backup_vault.primary.latest_snapshot_id
{pair_extra}
}}
{extra}
"#
    )
}

#[test]
fn the_pair_replicates_in_the_same_apply_catches_up_and_imports() {
    let mut tf = module();
    tf.config(&config("", ""));
    tf.init();
    tf.apply();
    let pair = tf.values("dr_region_pair.prod");
    let primary = tf.values("dr_backup_vault.primary");
    assert_eq!(pair["in_sync"], true);
    assert_eq!(pair["primary_region"], "eu-west-1");
    assert_eq!(pair["secondary_region"], "us-east-1");
    assert_eq!(
        pair["standby_latest_snapshot_id"],
        primary["latest_snapshot_id"]
    );
    assert_eq!(num(&pair["replication_lag_seconds"]), 0);

    // A changed source, ten minutes later: one apply snapshots and replicates that very
    // snapshot. (The test clock moves forward: "latest" means the newest by time.)
    tf.set_env("DR_TEST_NOW", "2026-11-01T12:10:00Z");
    std::fs::write(
        tf.path().join("pipeline/ci.yml"),
        "stages: [build, test, deploy]\n",
    )
    .unwrap();
    tf.apply();
    let pair = tf.values("dr_region_pair.prod");
    let primary = tf.values("dr_backup_vault.primary");
    assert_eq!(
        pair["standby_latest_snapshot_id"],
        primary["latest_snapshot_id"]
    );

    // A snapshot taken outside Terraform: the standby lags; plan shows the catch-up.
    let drctl = acceptance_tests::drctl_bin();
    let out = std::process::Command::new(&drctl)
        .args([
            "vault",
            "--vault",
            "vaults/eu",
            "snapshot",
            "--source",
            "pipeline=pipeline",
        ])
        .current_dir(tf.path())
        .env("DR_PASSPHRASE", PASSPHRASE)
        .env("DR_TEST_CLOCK", "1")
        .env("DR_TEST_NOW", "2026-11-01T12:20:00Z")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    tf.assert_plan_changes(
        r"dr_region_pair.prod will be updated in-place .*~ in_sync += false -> true",
    );
    tf.apply();
    assert_eq!(tf.values("dr_region_pair.prod")["in_sync"], true);

    // Import by NAME@PRIMARY_VAULT_ID after losing the pair's state.
    let id = tf.values("dr_region_pair.prod")["id"]
        .as_str()
        .unwrap()
        .to_string();
    // When it last replicated is not recorded in the vaults.
    tf.import_verify(&[("dr_region_pair.prod", &id)], &["last_replicated_at"]);

    // Destroying the pair leaves both vaults' data.
    tf.ok(&[
        "destroy",
        "-no-color",
        "-auto-approve",
        "-target=dr_region_pair.prod",
    ]);
    assert!(tf.path().join("vaults/eu/config").is_file());
    assert!(tf.path().join("vaults/us/config").is_file());
}

const TWIN: &str = r#"
resource "dr_backup_vault" "twin" {
  name   = "twin"
  region = "eu-west-1"
  url    = "vaults/twin"
}
"#;

/// The pack files under a local vault, by name, with their bytes.
fn packs(root: &std::path::Path) -> Vec<(String, Vec<u8>)> {
    let mut out: Vec<(String, Vec<u8>)> = files_under(&root.join("data"))
        .into_iter()
        .map(|p| {
            let name = p.strip_prefix(root).unwrap().display().to_string();
            (name, std::fs::read(&p).unwrap())
        })
        .collect();
    out.sort();
    out
}

#[test]
fn a_standby_made_with_key_from_receives_the_packs_as_they_are_and_imports() {
    let tf = module();
    let shared = config("", TWIN).replace(
        "  url           = \"vaults/us\"\n",
        "  url           = \"vaults/us\"\n  key_from      = dr_backup_vault.primary.id\n",
    );
    assert!(shared.contains("key_from"));
    tf.config(&shared);
    tf.init();
    tf.apply();
    assert_eq!(tf.values("dr_region_pair.prod")["in_sync"], true);
    let us = packs(&tf.path().join("vaults/us"));
    assert!(!us.is_empty());
    assert_eq!(us, packs(&tf.path().join("vaults/eu")));

    // Lost from state and imported: key_from comes back from the vault's recorded settings.
    let id = tf.values("dr_backup_vault.secondary")["id"]
        .as_str()
        .unwrap()
        .to_string();
    tf.import_verify(&[("dr_backup_vault.secondary", &id)], &[]);

    // Naming a vault whose key it does not share is refused at plan time, on the attribute:
    // a vault's key never changes, and the standby is never replaced to change it ...
    tf.config(&shared.replace(
        "key_from      = dr_backup_vault.primary.id",
        "key_from      = dr_backup_vault.twin.id",
    ));
    tf.fails_with(
        &["plan", "-no-color"],
        r"Key Not Shared.*does not share the master key.*key_from",
    );
    // ... as is claiming it on a vault made with a key of its own.
    let twin_claims = shared.replace(
        "  url    = \"vaults/twin\"\n",
        "  url    = \"vaults/twin\"\n  key_from = dr_backup_vault.primary.id\n",
    );
    assert!(twin_claims.contains("key_from = dr_backup_vault.primary.id"));
    tf.config(&twin_claims);
    tf.fails_with(
        &["plan", "-no-color"],
        r"Key Not Shared.*does not share the master key.*key_from",
    );

    // key_from removed (as when the primary is lost and leaves the configuration): the
    // standby is updated in state only, never replaced, and keeps every pack.
    tf.config(&config("", TWIN));
    let plan = tf.run(&["plan", "-no-color", "-input=false"]);
    assert_eq!(plan.code, 0, "{plan}");
    assert!(
        !plan.flat().contains("must be replaced") && !plan.flat().contains("will be destroyed"),
        "{plan}"
    );
    tf.apply();
    assert!(tf.values("dr_backup_vault.secondary")["key_from"].is_null());
    assert_eq!(us, packs(&tf.path().join("vaults/us")));
}

#[test]
fn same_region_or_same_vault_is_a_plan_time_error() {
    let tf = module();
    tf.config(&config("", TWIN));
    tf.init();
    tf.apply();
    let to_twin = config("", TWIN).replace(
        "secondary_vault_id    = dr_backup_vault.secondary.id",
        "secondary_vault_id    = dr_backup_vault.twin.id",
    );
    tf.config(&to_twin);
    tf.fails_with(
        &["plan", "-no-color"],
        r#"Vaults In The Same Region.*Both vaults are in region "eu-west-1""#,
    );
    let same_vault = config("", TWIN).replace(
        "secondary_vault_id    = dr_backup_vault.secondary.id",
        "secondary_vault_id    = dr_backup_vault.primary.id",
    );
    tf.config(&same_vault);
    tf.fails_with(&["plan", "-no-color"], r"Same Vault Twice");
}

#[test]
fn failover_with_the_primary_gone_succeeds_and_warns_about_lost_time() {
    let mut tf = module();
    tf.config(&config("", ""));
    tf.init();
    tf.apply();
    // The primary region is lost; three hours later the team fails over. The configuration
    // now names the lost primary by its id and no longer manages it.
    let primary_id = tf.values("dr_backup_vault.primary")["id"]
        .as_str()
        .unwrap()
        .to_string();
    std::fs::remove_dir_all(tf.path().join("vaults/eu")).unwrap();
    tf.ok(&["state", "rm", "dr_backup_vault.primary"]);
    tf.set_env("DR_TEST_NOW", "2026-11-01T15:00:00Z");
    tf.config(&format!(
        r#"
terraform {{
  required_providers {{
    dr = {{ source = "registry.terraform.io/dr-project/dr" }}
  }}
}}
provider "dr" {{}}
resource "dr_backup_vault" "secondary" {{
  name          = "secondary"
  region        = "us-east-1"
  url           = "vaults/us"
  force_destroy = true
}}
resource "dr_region_pair" "prod" {{
  name               = "prod"
  primary_vault_id   = "{primary_id}"
  secondary_vault_id = dr_backup_vault.secondary.id
  rpo                = "1h"
  rto                = "30m"
  active             = "secondary"
}}
"#
    ));
    let out = tf.ok(&["apply", "-no-color", "-auto-approve"]);
    let flat = out.flat();
    assert!(
        flat.contains("Failover Exceeds RPO") && flat.contains("up to 3h of backups"),
        "the warning says how much is lost:\n{out}"
    );
    assert_eq!(tf.values("dr_region_pair.prod")["active"], "secondary");
}

fn drill(body: &str) -> String {
    format!(
        r#"
resource "dr_drill" "nightly" {{
  name           = "nightly"
  vault_id       = dr_backup_vault.secondary.id
  region_pair_id = dr_region_pair.prod.id
  depends_on     = [dr_region_pair.prod]
{body}
}}
"#
    )
}

#[test]
fn a_drill_restores_verifies_runs_the_check_and_records_the_report() {
    let mut tf = module();
    tf.config(&config(
        "",
        &drill(r#"  verify_command = ["sh", "-c", "test -f pipeline/ci.yml && test \"$DR_SNAPSHOT_ID\" != '' && test -d \"$DR_RESTORE_DIR\""]
  max_age        = "24h""#),
    ));
    tf.init();
    tf.apply();
    let d = tf.values("dr_drill.nightly");
    assert_eq!(d["status"], "passed", "{d}");
    assert_eq!(d["rto_met"], true);
    assert_eq!(d["rpo_met"], true);
    assert_eq!(num(&d["files_verified"]), 2);
    assert_eq!(
        d["restored_snapshot_id"],
        tf.values("dr_region_pair.prod")["standby_latest_snapshot_id"]
    );
    let report: serde_json::Value = serde_json::from_str(d["report"].as_str().unwrap()).unwrap();
    assert_eq!(
        report["rpo_target_seconds"], 3600,
        "targets default to the pair's"
    );
    assert_eq!(report["rto_target_seconds"], 1800);
    assert!(!d["report"].as_str().unwrap().contains(PASSPHRASE));
    assert!(
        std::fs::read_dir(tf.path().join("vaults/us/records/drills/nightly"))
            .unwrap()
            .count()
            == 1,
        "the report is in the vault"
    );

    // A changed trigger re-runs it.
    let first_run = d["started_at"].clone();
    tf.set_env("DR_TEST_NOW", "2026-11-01T12:30:00Z");
    tf.config(&config(
        "",
        &drill(
            r#"  verify_command = ["sh", "-c", "test -f pipeline/ci.yml"]
  max_age        = "24h"
  triggers       = { release = "v2" }"#,
        ),
    ));
    tf.assert_plan_changes(r#"dr_drill.nightly will be updated in-place .*status += "passed" -> \(known after apply\).*\+ "release" = "v2""#);
    tf.apply();
    let d = tf.values("dr_drill.nightly");
    assert_eq!(d["status"], "passed");
    assert_ne!(d["started_at"], first_run, "the drill ran again");
    assert_eq!(d["started_at"], "2026-11-01T12:30:00Z");

    // After the state is lost the drill comes back from its newest report in the vault, with
    // the settings it ran with: the imported values equal the applied ones, the plan is empty.
    let vault_id = tf.values("dr_backup_vault.secondary")["id"]
        .as_str()
        .unwrap()
        .to_string();
    tf.import_verify(&[("dr_drill.nightly", &format!("nightly@{vault_id}"))], &[]);

    // 25 hours later the plan re-runs the drill (a test clock, not a sleep).
    tf.set_env("DR_TEST_NOW", "2026-11-02T13:00:00Z");
    tf.assert_plan_changes(r#"dr_drill.nightly will be updated in-place .*~ status += "passed" -> \(known after apply\)"#);
    // ...and now the data is 25 h old: more than the pair's 1 h RPO, so the drill fails.
    tf.fails_with(
        &["apply", "-no-color", "-auto-approve"],
        r"Drill Failed.*more than the rpo of 3600s",
    );
}

#[test]
fn failing_checks_timeouts_and_corruption_fail_the_drill_with_the_reason() {
    let tf = module();
    let cases = [
        (
            r#"  verify_command = ["sh", "-c", "echo pipeline broken >&2; exit 3"]"#,
            r"verify_command exited with 3.*last lines verify_command printed: pipeline broken",
        ),
        (
            r#"  verify_command = ["sleep", "30"]
  verify_timeout = "1s""#,
            r"did not finish within verify_timeout \(1s\)",
        ),
        (r#"  rto = "0s""#, r"more than the rto of 0s"),
    ];
    tf.config(&config("", ""));
    tf.init();
    tf.apply();
    for (body, reason) in cases {
        tf.config(&config("", &drill(body)));
        tf.fails_with(
            &["apply", "-no-color", "-auto-approve"],
            &format!("Drill Failed.*{reason}"),
        );
        tf.ok(&["state", "rm", "dr_drill.nightly"]);
    }
    // fail_on_violation = false records the failure without failing the apply.
    tf.config(&config(
        "",
        &drill("  rto = \"0s\"\n  fail_on_violation = false"),
    ));
    tf.apply();
    let d = tf.values("dr_drill.nightly");
    assert_eq!(d["status"], "failed");
    assert_eq!(d["rto_met"], false);
    assert!(d["failure_reason"].as_str().unwrap().contains("rto"));
    tf.ok(&["state", "rm", "dr_drill.nightly"]);

    // A corrupted pack in the standby: the drill fails naming the damage.
    for pack in files_under(&tf.path().join("vaults/us/data")) {
        // The first blob sits at the start of the pack (its sealed header is at the end).
        let mut bytes = std::fs::read(&pack).unwrap();
        bytes[30] ^= 0xff;
        std::fs::write(&pack, bytes).unwrap();
    }
    tf.config(&config("", &drill("")));
    tf.fails_with(
        &["apply", "-no-color", "-auto-approve"],
        r"Drill Failed.*restore failed",
    );
}

/// Issue 12, items 3 and 5, as a drill user sees them: the restore goes into a new
/// owner-only directory with an unpredictable name under work_dir; what the check prints
/// stays out of the state; a kept restore is replaced by the next run's, and destroy removes it.
#[test]
fn a_drill_restores_privately_and_keeps_the_checks_output_out_of_state() {
    use std::os::unix::fs::PermissionsExt as _;
    let mut tf = module();
    let body = |release: &str| {
        drill(&format!(
            r#"  verify_command = ["sh", "-c", "cat pipeline/ci.yml"]
  keep_restore   = true
  triggers       = {{ release = "{release}" }}"#
        ))
    };
    tf.config(&config("", &body("v1")));
    tf.init();
    tf.apply();
    let kept = |tf: &TfDir| {
        let d = tf.values("dr_drill.nightly");
        assert_eq!(d["status"], "passed", "{d}");
        let report = d["report"].as_str().unwrap().to_string();
        // The check printed a restored file; that stays out of the state.
        assert!(!report.contains("stages:"), "{report}");
        let report: serde_json::Value = serde_json::from_str(&report).unwrap();
        std::path::PathBuf::from(report["restore_dir"].as_str().unwrap())
    };
    let first = kept(&tf);
    let scratch = tf.path().join("scratch");
    assert_eq!(first.parent(), Some(scratch.as_path()));
    let name = first.file_name().unwrap().to_string_lossy().into_owned();
    assert!(
        name.starts_with("nightly-") && name.len() > "nightly-".len() + 4,
        "{name}"
    );
    let mode = std::fs::metadata(&first).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o700);
    assert!(first.join("pipeline/ci.yml").is_file());

    tf.set_env("DR_TEST_NOW", "2026-11-01T12:30:00Z");
    tf.config(&config("", &body("v2")));
    tf.apply();
    let second = kept(&tf);
    assert_ne!(second, first);
    assert!(
        !first.exists(),
        "the last run's kept restore is replaced, not piled up"
    );
    assert!(second.is_dir());
    tf.ok(&["destroy", "-auto-approve", "-input=false"]);
    assert!(!second.exists(), "destroy removes the kept restore");
}

/// A snapshot manifest of the primary that does not open (planted or damaged) does not stop
/// the apply: the pair replicates everything else and names it in a warning, and a second
/// plan is empty.
#[test]
fn a_manifest_that_does_not_open_is_named_and_the_rest_replicates() {
    let mut tf = module();
    tf.config(&config("", ""));
    tf.init();
    tf.apply();
    let planted = format!("snapshots/{}", "ee".repeat(32));
    std::fs::write(tf.path().join("vaults/eu").join(&planted), "garbage").unwrap();
    tf.set_env("DR_TEST_NOW", "2026-11-01T12:10:00Z");
    std::fs::write(
        tf.path().join("pipeline/ci.yml"),
        "stages: [build, test, deploy]\n",
    )
    .unwrap();
    let out = tf.apply();
    let text = out.flat();
    assert!(text.contains("Snapshots Not Replicated"), "{text}");
    assert!(text.contains(&planted), "{text}");
    let pair = tf.values("dr_region_pair.prod");
    let primary = tf.values("dr_backup_vault.primary");
    assert_eq!(
        pair["standby_latest_snapshot_id"],
        primary["latest_snapshot_id"]
    );
    assert_eq!(pair["in_sync"], true);
}
