//! `drctl status` on the quickstart applied by the real Terraform 1.0.3: in policy right after
//! apply; out of policy (exit 1, each finding named) once the standby lags past the rpo and
//! the drill is older than its max_age; Prometheus text that the real `prometheus_client`
//! parser reads; malformed input refused with exit 2.

use acceptance_tests::{copy_dir, output_text, workspace_root, ProviderBuild, TfDir};
use std::collections::HashMap;
use std::process::Output;

const PASSPHRASE: &str = "status-passphrase-77b2";

/// `drctl` in the module, at the test clock's `now` when given.
fn drctl_at(tf: &TfDir, now: Option<&str>, args: &[&str]) -> Output {
    let mut cmd = tf.drctl_command(tf.path(), args);
    if let Some(now) = now {
        cmd.env("DR_TEST_CLOCK", "1").env("DR_TEST_NOW", now);
    }
    cmd.output().expect("start drctl")
}

/// Parses exposition text with prometheus_client (installed by scripts/setup) into
/// "name{address}" → value.
fn parse_prometheus(exposition: &[u8]) -> HashMap<String, f64> {
    let python = workspace_root().join(".tools/venv/bin/python");
    let script = r#"
import json, sys
from prometheus_client.parser import text_string_to_metric_families
out = {}
for family in text_string_to_metric_families(sys.stdin.read()):
    assert family.type == "gauge", family
    for s in family.samples:
        out[s.name + "{" + s.labels.get("address", "") + "}"] = s.value
print(json.dumps(out))
"#;
    let mut child = std::process::Command::new(python)
        .args(["-c", script])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("python from scripts/setup");
    use std::io::Write as _;
    child.stdin.take().unwrap().write_all(exposition).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "prometheus_client rejected it: {}",
        output_text(&out)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn rfc3339_in(hours: i64) -> String {
    (time::OffsetDateTime::now_utc() + time::Duration::hours(hours))
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap()
}

#[test]
fn status_reports_posture_in_every_format_and_exits_1_when_out_of_policy() {
    let mut tf = TfDir::new(&[ProviderBuild::dr()]);
    tf.set_env("DR_PASSPHRASE", PASSPHRASE);
    tf.set_env("DR_TEST_INSECURE_KDF", "1");
    copy_dir(&workspace_root().join("examples/quickstart"), tf.path());
    tf.init();
    tf.apply();

    let table = drctl_at(&tf, None, &["status", "--dir", "."]);
    assert_eq!(table.status.code(), Some(0), "{}", output_text(&table));
    let t = output_text(&table);
    for row in [
        "dr_backup_vault.primary",
        "dr_backup_vault.secondary",
        "dr_region_pair.pipelines",
        "dr_drill.restore_pipeline",
        "all within policy",
    ] {
        assert!(t.contains(row), "missing {row:?}:\n{t}");
    }

    let json = drctl_at(
        &tf,
        None,
        &["status", "--state", "terraform.tfstate", "--json"],
    );
    assert_eq!(json.status.code(), Some(0), "{}", output_text(&json));
    let posture: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(posture["pairs"][0]["in_sync"], true);
    assert_eq!(posture["pairs"][0]["replication_lag_seconds"], 0);
    assert_eq!(posture["pairs"][0]["rpo_seconds"], 86400);
    assert_eq!(posture["drills"][0]["status"], "passed");
    assert_eq!(posture["drills"][0]["from"], "state");
    assert_eq!(posture["vaults"][0]["snapshots"], 1);

    let prom = drctl_at(
        &tf,
        None,
        &["status", "--dir", ".", "--format", "prometheus"],
    );
    assert_eq!(prom.status.code(), Some(0), "{}", output_text(&prom));
    let metrics = parse_prometheus(&prom.stdout);
    assert_eq!(metrics["dr_drill_passed{dr_drill.restore_pipeline}"], 1.0);
    assert_eq!(
        metrics["dr_region_pair_in_sync{dr_region_pair.pipelines}"],
        1.0
    );
    assert_eq!(metrics["dr_vault_up{dr_backup_vault.secondary}"], 1.0);
    assert_eq!(metrics["dr_status_problems{}"], 0.0);

    // An hour later a snapshot lands on the primary and is not replicated; two days later
    // the standby lags past the 24h rpo and the drill is past its 24h max_age.
    let snap = drctl_at(
        &tf,
        Some(&rfc3339_in(1)),
        &[
            "vault",
            "--vault",
            "vaults/eu-west-1",
            "snapshot",
            "--source",
            "pipeline=pipeline",
        ],
    );
    assert!(snap.status.success(), "{}", output_text(&snap));
    let later = rfc3339_in(49);
    let stale = drctl_at(&tf, Some(&later), &["status", "--dir", "."]);
    assert_eq!(stale.status.code(), Some(1), "{}", output_text(&stale));
    let t = output_text(&stale);
    assert!(t.contains("2 out of policy"), "{t}");
    assert!(
        t.contains("dr_region_pair.pipelines: the standby lags 2days"),
        "{t}"
    );
    assert!(
        t.contains("dr_drill.restore_pipeline: the last run is 2days"),
        "{t}"
    );
    let prom = drctl_at(
        &tf,
        Some(&later),
        &["status", "--dir", ".", "--format", "prometheus"],
    );
    assert_eq!(prom.status.code(), Some(1));
    let metrics = parse_prometheus(&prom.stdout);
    assert_eq!(
        metrics["dr_region_pair_in_sync{dr_region_pair.pipelines}"],
        0.0
    );
    assert_eq!(
        metrics["dr_resource_in_policy{dr_drill.restore_pipeline}"],
        0.0
    );
    assert_eq!(
        metrics["dr_resource_in_policy{dr_backup_vault.primary}"],
        1.0
    );
    assert_eq!(metrics["dr_status_problems{}"], 2.0);
    assert!(metrics["dr_region_pair_replication_lag_seconds{dr_region_pair.pipelines}"] > 86400.0);

    // Input that is not a state: exit 2 saying what was expected.
    std::fs::write(tf.path().join("notes.txt"), "not json").unwrap();
    std::fs::write(
        tf.path().join("plan.json"),
        r#"{"format_version":"0.2","planned_values":{}}"#,
    )
    .unwrap();
    // A huge file (sparse, 600 MiB) is refused before it is read.
    std::fs::File::create(tf.path().join("huge.json"))
        .unwrap()
        .set_len(600 << 20)
        .unwrap();
    for (file, expected) in [
        ("notes.txt", "is not JSON"),
        ("plan.json", "is a plan, not a state"),
        ("huge.json", "more than the 512 MiB drctl reads"),
    ] {
        let bad = drctl_at(&tf, None, &["status", "--state", file]);
        assert_eq!(bad.status.code(), Some(2), "{}", output_text(&bad));
        assert!(
            output_text(&bad).contains(expected),
            "{}",
            output_text(&bad)
        );
    }
}
