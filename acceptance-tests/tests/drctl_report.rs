//! `drctl report` on the quickstart applied by the real Terraform, then on a history grown
//! over twelve days of the test clock (snapshots every 6 hours, replications that sometimes
//! fall behind the RPO, a `drctl drill` after each, the drill re-run by Terraform too): each page opened in headless Chromium (Debian's,
//! driven by playwright-core from `scripts/setup --test-tools`) shows no console error,
//! fetches nothing, and renders every plot with its series and a mark per recorded point.
//! Screenshots: `target/browser/report-quickstart.png` and `target/browser/report-history.png`.

use acceptance_tests::{copy_dir, output_text, workspace_root, ProviderBuild, TfDir};
use std::path::{Path, PathBuf};
use std::process::Output;

const PASSPHRASE: &str = "report-passphrase-5d1e";

fn module() -> TfDir {
    let mut tf = TfDir::new(&[ProviderBuild::dr()]);
    tf.set_env("DR_PASSPHRASE", PASSPHRASE);
    tf.set_env("DR_TEST_INSECURE_KDF", "1");
    copy_dir(&workspace_root().join("examples/quickstart"), tf.path());
    tf
}

/// `drctl` in the module, at the test clock's `now` when given.
fn drctl_at(tf: &TfDir, now: Option<&str>, args: &[&str]) -> Output {
    let mut cmd = tf.drctl_command(tf.path(), args);
    if let Some(now) = now {
        cmd.env("DR_TEST_CLOCK", "1").env("DR_TEST_NOW", now);
    }
    let out = cmd.output().expect("start drctl");
    assert!(
        out.status.success(),
        "drctl {args:?}: {}",
        output_text(&out)
    );
    out
}

/// What the browser saw of a page (see `acceptance-tests/browser/check-page.cjs`).
#[derive(serde::Deserialize, Debug)]
struct Seen {
    verdict: String,
    errors: Vec<String>,
    requests: Vec<String>,
    plots: Vec<Plot>,
}

#[derive(serde::Deserialize, Debug)]
struct Plot {
    kind: String,
    expected: usize,
    series: usize,
    marks: usize,
    missed: usize,
    texts: usize,
    width: f64,
    height: f64,
}

/// Opens `page` in headless Chromium and saves a screenshot as `target/browser/<shot>`.
fn open_in_chromium(page: &Path, shot: &str) -> Seen {
    let tools = workspace_root().join(".tools/playwright/node_modules/playwright-core");
    assert!(
        tools.join("package.json").is_file() && Path::new("/usr/bin/chromium").is_file(),
        "Chromium or playwright-core is missing.\nhint: run scripts/setup --test-tools"
    );
    let dir = workspace_root().join("target/browser");
    std::fs::create_dir_all(&dir).unwrap();
    let out = std::process::Command::new("node")
        .arg(workspace_root().join("acceptance-tests/browser/check-page.cjs"))
        .arg(page)
        .arg(dir.join(shot))
        .env("PLAYWRIGHT_CORE", &tools)
        .output()
        .expect("run node");
    assert!(
        out.status.success(),
        "the browser run failed: {}",
        output_text(&out)
    );
    let seen: Seen = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", output_text(&out)));
    assert!(
        seen.errors.is_empty(),
        "the page reported errors: {seen:#?}"
    );
    assert!(seen.requests.is_empty(), "the page fetched: {seen:#?}");
    for plot in &seen.plots {
        assert_eq!(plot.series, plot.expected, "{plot:?}");
        assert!(plot.width > 100.0 && plot.height > 100.0, "{plot:?}");
        // Axis labels and descriptions: the plot is labelled, not bare lines.
        assert!(plot.texts >= 6, "{plot:?}");
    }
    assert!(std::fs::metadata(dir.join(shot)).unwrap().len() > 10_000);
    seen
}

fn plots<'a>(seen: &'a Seen, kind: &str) -> Vec<&'a Plot> {
    seen.plots.iter().filter(|p| p.kind == kind).collect()
}

fn report(tf: &TfDir, now: Option<&str>, out: &str) -> (PathBuf, String) {
    let said = drctl_at(tf, now, &["report", "--dir", ".", "--out", out]);
    assert!(
        output_text(&said).contains("wrote"),
        "{}",
        output_text(&said)
    );
    let page = tf.path().join(out);
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(!html.contains(PASSPHRASE), "the passphrase is in the page");
    assert!(!html.contains("<script"), "the page runs a script");
    (page, html)
}

#[test]
fn the_quickstart_report_renders_every_plot_in_chromium() {
    let tf = module();
    tf.init();
    tf.apply();
    let (page, html) = report(&tf, None, "report.html");
    assert!(html.contains("dr_region_pair.pipelines") && html.contains("restore-pipeline"));
    let seen = open_in_chromium(&page, "report-quickstart.png");
    assert_eq!(seen.verdict, "Everything is within policy.");
    // The apply replicated once and ran the drill once; each vault holds one snapshot, with
    // its logical and its stored bytes.
    let lag = plots(&seen, "pair-lag");
    assert_eq!((lag.len(), lag[0].expected, lag[0].marks), (1, 2, 1));
    for kind in ["drill-restore", "drill-data-age"] {
        let p = plots(&seen, kind);
        assert_eq!((p.len(), p[0].expected, p[0].marks), (1, 2, 1), "{kind}");
    }
    let vaults = plots(&seen, "vault-bytes");
    assert_eq!(vaults.len(), 2);
    assert!(
        vaults.iter().all(|p| (p.expected, p.marks) == (2, 2)),
        "{vaults:?}"
    );

    // A second run replaces its own page; somebody else's file is kept without --force.
    std::fs::write(tf.path().join("notes.html"), "<p>mine</p>").unwrap();
    let refused = tf
        .drctl_command(tf.path(), &["report", "--dir", ".", "--out", "notes.html"])
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(2), "{}", output_text(&refused));
    assert!(output_text(&refused).contains("is not a report drctl wrote"));
    assert_eq!(
        std::fs::read_to_string(tf.path().join("notes.html")).unwrap(),
        "<p>mine</p>"
    );
    report(&tf, None, "report.html");
}

/// Twelve days at 6-hour steps: a snapshot each step, a replication at most steps (none for
/// a day and a half in the middle, so the lag passes the 24h RPO), a `drctl drill` each step,
/// and the drill re-run every other day by `terraform apply -replace`.
#[test]
fn a_long_history_renders_with_every_point_and_the_findings() {
    let mut tf = module();
    tf.set_env("DR_TEST_CLOCK", "1");
    let start = time::OffsetDateTime::now_utc() - time::Duration::days(12);
    let at = |step: i64| {
        (start + time::Duration::hours(6 * step))
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap()
    };
    tf.set_env("DR_TEST_NOW", &at(0));
    tf.init();
    tf.apply();
    let (mut replications, mut drill_runs, mut failed_runs) = (1, 1, 0);
    for step in 1..48 {
        let now = at(step);
        std::fs::write(
            tf.path().join("pipeline/build-number.txt"),
            format!("{step}\n").repeat(step as usize * 100),
        )
        .unwrap();
        drctl_at(
            &tf,
            Some(&now),
            &[
                "vault",
                "--vault",
                "vaults/eu-west-1",
                "snapshot",
                "--source",
                "pipeline=pipeline",
            ],
        );
        if !(17..23).contains(&step) {
            drctl_at(
                &tf,
                Some(&now),
                &[
                    "vault",
                    "--vault",
                    "vaults/eu-west-1",
                    "replicate",
                    "--to",
                    "vaults/us-east-1",
                ],
            );
            replications += 1;
        }
        // A drill from cron ten minutes later: inside the gap the standby's data grows older
        // than the 24h RPO (steps 20 to 22), and those runs fail.
        let drilled_at = (start + time::Duration::hours(6 * step) + time::Duration::minutes(10))
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap();
        let drilled = tf
            .drctl_command(
                tf.path(),
                &[
                    "drill",
                    "--vault",
                    "vaults/us-east-1",
                    "--name",
                    "restore-pipeline",
                    "--rpo",
                    "24h",
                    "--rto",
                    "15m",
                ],
            )
            .env("DR_TEST_CLOCK", "1")
            .env("DR_TEST_NOW", &drilled_at)
            .output()
            .unwrap();
        let should_fail = (20..23).contains(&step);
        assert_eq!(
            drilled.status.code(),
            Some(if should_fail { 1 } else { 0 }),
            "step {step}: {}",
            output_text(&drilled)
        );
        drill_runs += 1;
        failed_runs += usize::from(should_fail);
        if step % 8 == 0 {
            tf.set_env("DR_TEST_NOW", &now);
            tf.ok(&[
                "apply",
                "-auto-approve",
                "-replace=dr_drill.restore_pipeline",
            ]);
            drill_runs += 1;
        }
    }
    let end = at(48);
    let (page, html) = report(&tf, Some(&end), "history.html");
    let said = html
        .find("replication(s) recorded")
        .map(|i| &html[i.saturating_sub(200)..i + 60]);
    assert!(
        html.contains(&format!("{replications} replication(s) recorded")),
        "{replications}: {said:?}"
    );
    assert!(html.contains(&format!(
        "{drill_runs} run(s) recorded, {} passed, {failed_runs} failed",
        drill_runs - failed_runs
    )));
    let seen = open_in_chromium(&page, "report-history.png");
    let lag = &plots(&seen, "pair-lag")[0];
    assert_eq!((lag.expected, lag.marks), (2, replications));
    for kind in ["drill-restore", "drill-data-age"] {
        assert_eq!(plots(&seen, kind)[0].marks, drill_runs, "{kind}");
    }
    // Every snapshot each vault holds (retention keeps 30 on the primary at each apply) is a
    // point on both lines: its logical bytes and the bytes it stored.
    let vaults = plots(&seen, "vault-bytes");
    assert_eq!(vaults.len(), 2);
    for (plot, vault) in vaults.iter().zip(["vaults/eu-west-1", "vaults/us-east-1"]) {
        let listed = drctl_at(
            &tf,
            Some(&end),
            &["vault", "--vault", vault, "snapshots", "--json"],
        );
        let held = serde_json::from_slice::<Vec<serde_json::Value>>(&listed.stdout)
            .unwrap()
            .len();
        assert!(held > 30, "{vault}: {held}");
        assert_eq!((plot.expected, plot.marks), (2, 2 * held), "{vault}");
    }
    // The day and a half without replication shows: the replication that ended the gap
    // found the standby 36h behind, past the 24h RPO, and that point is the one drawn red.
    assert_eq!(lag.missed, 1, "{lag:?}");
    // The drills in the gap restored data older than the RPO: red on both drill plots (a
    // failed run is marked on each), and the newest run passed, so nothing is out of policy.
    assert_eq!(plots(&seen, "drill-data-age")[0].missed, failed_runs);
    assert_eq!(plots(&seen, "drill-restore")[0].missed, failed_runs);
    assert_eq!(seen.verdict, "Everything is within policy.");
}
