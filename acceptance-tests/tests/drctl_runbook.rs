//! `drctl runbook` on the quickstart applied by the real Terraform: the runbook names what is
//! protected where and the drill guarding the pair; the commands it gives run as written (a
//! state push, a rebuild's dry run, a restore); `--check` passes after snapshots,
//! replications and drill runs (results are not configuration) and fails, naming the line,
//! once the pair's RPO changes; a file that is not a runbook is never replaced.

use acceptance_tests::{copy_dir, output_text, workspace_root, ProviderBuild, TfDir};
use std::process::Output;

const PASSPHRASE: &str = "runbook-passphrase-0c4f";

fn drctl(tf: &TfDir, args: &[&str]) -> Output {
    tf.drctl_command(tf.path(), args)
        .output()
        .expect("start drctl")
}

/// The command of the runbook's shell line that starts with `start` and holds `with`, as
/// arguments (a trailing `# comment` left out).
fn command_in(runbook: &str, start: &str, with: &str) -> Vec<String> {
    let line = runbook
        .lines()
        .find(|l| l.starts_with(start) && l.contains(with))
        .unwrap_or_else(|| panic!("no `{start} … {with}` line in:\n{runbook}"));
    let line = line.split(" # ").next().unwrap();
    line.split_whitespace()
        .skip(1)
        .map(str::to_string)
        .collect()
}

#[test]
fn the_runbook_s_commands_run_and_check_fails_only_when_the_configuration_changes() {
    let mut tf = TfDir::new(&[ProviderBuild::dr()]);
    tf.set_env("DR_PASSPHRASE", PASSPHRASE);
    tf.set_env("DR_TEST_INSECURE_KDF", "1");
    copy_dir(&workspace_root().join("examples/quickstart"), tf.path());
    tf.init();
    tf.apply();

    let written = drctl(&tf, &["runbook", "--dir", ".", "--out", "RUNBOOK.md"]);
    assert!(written.status.success(), "{}", output_text(&written));
    let runbook = std::fs::read_to_string(tf.path().join("RUNBOOK.md")).unwrap();
    for wanted in [
        "`dr_backup_vault.primary` (pipelines-eu) | eu-west-1",
        "`pipeline` ← `./pipeline`",
        "keep_last 30",
        "RPO **24h**",
        "RTO **15m**",
        "guarded by: `dr_drill.restore_pipeline`",
        "terraform apply -replace=dr_drill.restore_pipeline",
    ] {
        assert!(runbook.contains(wanted), "missing {wanted:?}:\n{runbook}");
    }
    assert!(!runbook.contains(PASSPHRASE));

    // Its commands, as written: push the state to the secondary (what a rebuild needs), the
    // rebuild's dry run, and a restore of the newest pipeline snapshot.
    let push = command_in(&runbook, "drctl state push", "--dir");
    let args: Vec<&str> = push.iter().map(String::as_str).collect();
    let pushed = drctl(&tf, &args);
    assert!(pushed.status.success(), "{}", output_text(&pushed));
    for (start, with) in [
        ("drctl rebuild", "--dry-run"),
        ("drctl vault", "restore latest"),
    ] {
        let command = command_in(&runbook, start, with);
        let args: Vec<&str> = command.iter().map(String::as_str).collect();
        let ran = drctl(&tf, &args);
        assert!(
            ran.status.success(),
            "drctl {args:?}: {}",
            output_text(&ran)
        );
    }
    assert!(tf.path().join("restored/pipeline/pipeline.yml").is_file());

    // Results change, the configuration does not: still up to date.
    std::fs::write(tf.path().join("pipeline/new-job.yml"), "job: lint\n").unwrap();
    tf.ok(&[
        "apply",
        "-auto-approve",
        "-replace=dr_drill.restore_pipeline",
    ]);
    let check = drctl(&tf, &["runbook", "--dir", ".", "--check", "RUNBOOK.md"]);
    assert_eq!(check.status.code(), Some(0), "{}", output_text(&check));

    // The pair's RPO changes: out of date, and the line is named.
    let main = std::fs::read_to_string(tf.path().join("main.tf")).unwrap();
    std::fs::write(
        tf.path().join("main.tf"),
        main.replace(
            r#"rpo                = "24h""#,
            r#"rpo                = "12h""#,
        ),
    )
    .unwrap();
    tf.apply();
    let check = drctl(&tf, &["runbook", "--dir", ".", "--check", "RUNBOOK.md"]);
    assert_eq!(check.status.code(), Some(1), "{}", output_text(&check));
    let said = output_text(&check);
    assert!(
        said.contains("is out of date") && said.contains("RPO **12h**"),
        "{said}"
    );

    // Somebody's own file is not replaced without --force; the runbook itself is.
    std::fs::write(tf.path().join("NOTES.md"), "# mine\n").unwrap();
    let refused = drctl(&tf, &["runbook", "--dir", ".", "--out", "NOTES.md"]);
    assert_eq!(refused.status.code(), Some(2), "{}", output_text(&refused));
    assert_eq!(
        std::fs::read_to_string(tf.path().join("NOTES.md")).unwrap(),
        "# mine\n"
    );
    let again = drctl(&tf, &["runbook", "--dir", ".", "--out", "RUNBOOK.md"]);
    assert!(again.status.success(), "{}", output_text(&again));
    let check = drctl(&tf, &["runbook", "--dir", ".", "--check", "RUNBOOK.md"]);
    assert_eq!(check.status.code(), Some(0), "{}", output_text(&check));
}
