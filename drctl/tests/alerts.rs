//! `drctl alerts` as Prometheus sees it: the rules it prints pass `promtool check rules`, and
//! `promtool test rules` fires each alert, with its labels and annotations, on sample series
//! (`tests/alerts/rules_test.yml`) and stays silent on the healthy ones. promtool comes from
//! `scripts/setup --test-tools` (Debian's prometheus package, in `.tools/prometheus`).

use acceptance_tests::{drctl_in, servers::tool};
use std::process::Command;

fn promtool(dir: &std::path::Path, args: &[&str]) -> String {
    let out = Command::new(tool("prometheus/promtool"))
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run promtool");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "promtool {args:?} failed:\n{text}");
    text
}

#[test]
fn the_printed_rules_pass_promtool_and_fire_on_sample_series() {
    let dir = tempfile::tempdir().unwrap();
    let printed = drctl_in(dir.path(), &["alerts"]).output().unwrap();
    assert!(printed.status.success());
    std::fs::write(dir.path().join("rules.yml"), &printed.stdout).unwrap();
    std::fs::copy(
        concat!(env!("CARGO_MANIFEST_DIR"), "/tests/alerts/rules_test.yml"),
        dir.path().join("rules_test.yml"),
    )
    .unwrap();

    let checked = promtool(dir.path(), &["check", "rules", "rules.yml"]);
    assert!(checked.contains("SUCCESS: 8 rules found"), "{checked}");
    let tested = promtool(dir.path(), &["test", "rules", "rules_test.yml"]);
    assert!(tested.contains("SUCCESS"), "{tested}");
}

#[test]
fn out_writes_the_file_and_never_replaces_one_without_force() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("dr.yml");
    std::fs::write(&file, "mine\n").unwrap();
    let refused = drctl_in(dir.path(), &["alerts", "--out", "dr.yml"])
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(2));
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(
        said.contains("dr.yml exists") && said.contains("--force"),
        "{said}"
    );
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "mine\n");

    let written = drctl_in(dir.path(), &["alerts", "--out", "dr.yml", "--force"])
        .output()
        .unwrap();
    assert!(written.status.success());
    let rules = std::fs::read_to_string(&file).unwrap();
    assert!(rules.contains("alert: DrStandbyLagOverRpo"));
    promtool(dir.path(), &["check", "rules", "dr.yml"]);
}
