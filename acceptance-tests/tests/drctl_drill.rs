//! `drctl drill` on the quickstart applied by the real Terraform: a drill run from cron a day
//! and a half later writes its report into the standby, `drctl status` counts from it, and
//! the next refresh of the `dr_drill` takes it as its last run, so the plan no longer re-runs
//! the drill it would have re-run for its max_age. A failing run exits 1, says why, and makes
//! the next plan re-run the drill; bad flags exit 2, a missing vault 3.

use acceptance_tests::{copy_dir, output_text, workspace_root, ProviderBuild, TfDir};
use std::process::Output;

const PASSPHRASE: &str = "drill-passphrase-91ab";

fn drctl_at(tf: &TfDir, now: &str, args: &[&str]) -> Output {
    tf.drctl_command(tf.path(), args)
        .env("DR_TEST_CLOCK", "1")
        .env("DR_TEST_NOW", now)
        .output()
        .expect("start drctl")
}

fn rfc3339_in(hours: i64) -> String {
    (time::OffsetDateTime::now_utc() + time::Duration::hours(hours))
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap()
}

/// The quickstart drill's own check and its pair's targets (24h, 15m): a run of the same
/// drill, as cron would run it.
const CHECK: &str =
    "test -s pipeline/pipeline.yml && sh -n pipeline/scripts/deploy.sh && grep -q region pipeline/prod.tfvars";

fn drill_args<'a>(rpo: &'a str, check: &'a str) -> Vec<&'a str> {
    vec![
        "drill",
        "--vault",
        "vaults/us-east-1",
        "--name",
        "restore-pipeline",
        "--rpo",
        rpo,
        "--rto",
        "15m",
        "--verify-command",
        check,
        "--json",
    ]
}

/// The reports the standby holds of the quickstart's drill.
fn reports(tf: &TfDir) -> usize {
    let dir = tf
        .path()
        .join("vaults/us-east-1/records/drills/restore-pipeline");
    std::fs::read_dir(dir).map_or(0, |d| d.count())
}

#[test]
fn a_drill_run_outside_terraform_is_the_drill_s_last_run_everywhere() {
    let mut tf = TfDir::new(&[ProviderBuild::dr()]);
    tf.set_env("DR_PASSPHRASE", PASSPHRASE);
    tf.set_env("DR_TEST_INSECURE_KDF", "1");
    copy_dir(&workspace_root().join("examples/quickstart"), tf.path());
    tf.init();
    tf.apply();

    // A day and a quarter later the drill is past its 24h max_age: the plan would re-run it.
    let later = rfc3339_in(30);
    tf.set_env("DR_TEST_CLOCK", "1");
    tf.set_env("DR_TEST_NOW", &later);
    tf.assert_plan_changes(r"dr_drill.restore_pipeline will be updated in-place");

    // Cron ran it at +20h; the check sees the restored tree, never the passphrase.
    let ran = drctl_at(&tf, &rfc3339_in(20), &drill_args("24h", CHECK));
    assert_eq!(ran.status.code(), Some(0), "{}", output_text(&ran));
    let report: serde_json::Value = serde_json::from_slice(&ran.stdout).unwrap();
    assert_eq!(report["failures"], serde_json::json!([]));
    assert_eq!(report["files_verified"], 3);
    assert_eq!(report["rto_target_seconds"], 900);
    assert_eq!(report["verify_exit_code"], 0);
    assert!(report["data_age_seconds"].as_u64().unwrap() >= 19 * 3600);
    // The check's environment holds no secret.
    let env = drctl_at(
        &tf,
        &rfc3339_in(20),
        &[
            "drill",
            "--vault",
            "vaults/us-east-1",
            "--name",
            "env-check",
            "--verify-command",
            "test \"$DR_SNAPSHOT_ID\" != '' && test -z \"$DR_PASSPHRASE\" && test -z \"$AWS_SECRET_ACCESS_KEY\"",
        ],
    );
    assert_eq!(env.status.code(), Some(0), "{}", output_text(&env));

    // The refresh takes that run as the drill's last: nothing to re-run (the module's output
    // of the drill's results changes, nothing else), and status agrees.
    let plan = tf.ok(&["plan", "-no-color"]).to_string();
    assert!(
        regex::Regex::new(r"dr_drill\.restore_pipeline has (been )?changed")
            .unwrap()
            .is_match(&plan),
        "{plan}"
    );
    assert!(
        !plan.contains("will be updated") && !plan.contains("will be created"),
        "{plan}"
    );
    let status = drctl_at(&tf, &later, &["status", "--dir", ".", "--json"]);
    assert_eq!(status.status.code(), Some(0), "{}", output_text(&status));
    let posture: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(posture["drills"][0]["from"], "vault");
    assert_eq!(posture["drills"][0]["finished_at"], report["finished_at"]);
    tf.ok(&["apply", "-auto-approve", "-refresh-only"]);
    assert_eq!(
        tf.values("dr_drill.restore_pipeline")["finished_at"],
        report["finished_at"]
    );

    // A run with laxer targets (an ad-hoc one) proves nothing about this drill: the refresh
    // leaves it out, and at +46h the drill is due again.
    let adhoc = drctl_at(&tf, &rfc3339_in(45), &drill_args("72h", CHECK));
    assert_eq!(adhoc.status.code(), Some(0), "{}", output_text(&adhoc));
    tf.set_env("DR_TEST_NOW", &rfc3339_in(46));
    tf.assert_plan_changes(r"dr_drill.restore_pipeline will be updated in-place");

    // Failing runs at +40h (the drill's last run is only 20h old then, so only a failure
    // makes the plan re-run it): a check that fails, and the same drill, whose data is past
    // the 24h RPO. Exit 1, the reasons and what the check printed; the next plan re-runs the
    // drill rather than accept the failure. Both ran in the same second; both reports stay.
    let failing = rfc3339_in(40);
    let before_failing = reports(&tf);
    tf.set_env("DR_TEST_NOW", &failing);
    let failed = drctl_at(
        &tf,
        &failing,
        &[
            "drill",
            "--vault",
            "vaults/us-east-1",
            "--name",
            "restore-pipeline",
            "--verify-command",
            "echo checking; echo broken pipeline >&2; exit 3",
        ],
    );
    assert_eq!(failed.status.code(), Some(1), "{}", output_text(&failed));
    let said = output_text(&failed);
    for wanted in [
        "drill \"restore-pipeline\" failed",
        "verify_command exited with 3",
        "| broken pipeline",
        "report: drills/restore-pipeline/",
    ] {
        assert!(said.contains(wanted), "missing {wanted:?}:\n{said}");
    }
    let same_failing = drctl_at(&tf, &failing, &drill_args("24h", CHECK));
    assert_eq!(
        same_failing.status.code(),
        Some(1),
        "{}",
        output_text(&same_failing)
    );
    assert!(output_text(&same_failing).contains("more than the rpo"));
    assert_eq!(reports(&tf), before_failing + 2);
    tf.assert_plan_changes(r"dr_drill.restore_pipeline will be updated in-place");

    // Bad input: nothing runs, no report is written.
    let before = reports(&tf);
    for (args, code, wanted) in [
        (
            vec![
                "drill",
                "--vault",
                "vaults/us-east-1",
                "--name",
                "x",
                "--rpo",
                "soon",
            ],
            2,
            "--rpo",
        ),
        (
            vec!["drill", "--vault", "vaults/nowhere", "--name", "x"],
            3,
            "vaults/nowhere",
        ),
        (
            vec!["drill", "--vault", "vaults/us-east-1", "--name", "a b"],
            2,
            "--name",
        ),
    ] {
        let out = drctl_at(&tf, &failing, &args);
        assert_eq!(
            out.status.code(),
            Some(code),
            "{args:?}: {}",
            output_text(&out)
        );
        assert!(output_text(&out).contains(wanted), "{}", output_text(&out));
    }
    assert_eq!(reports(&tf), before, "bad input wrote a report");
    // A snapshot that is not there is a failed drill, reported like any other.
    let missing = drctl_at(
        &tf,
        &failing,
        &[
            "drill",
            "--vault",
            "vaults/us-east-1",
            "--name",
            "restore-pipeline",
            "--snapshot",
            "ffffffff",
        ],
    );
    assert_eq!(missing.status.code(), Some(1), "{}", output_text(&missing));
    assert_eq!(reports(&tf), before + 1);
}
