//! A writer that lost its lock never commits, and a lock is judged by the store's clock, not
//! the holder's: a real `drctl vault snapshot` is frozen (SIGSTOP, as an overloaded host or a
//! debugger would) right before it commits, with its clock hours off, while `drctl vault
//! prune` runs beside it.
//!
//! Uses the test suite's build of drctl: `DR_TEST_STOP_AT` freezes the writer at its commit,
//! `DR_TEST_LOCK_STALE_SECS` shortens the stale window to seconds, `DR_TEST_NOW` sets its clock.

use std::path::Path;
use std::process::{Child, Command, Output};
use std::time::{Duration, Instant};

/// The stale window of every process in this test (instead of 30 minutes).
const STALE_SECS: u64 = 4;

/// drctl as the drctl tests run it, with the short stale window.
/// drctl as the suite runs it, with locks that go stale after [`STALE_SECS`].
fn with_short_locks(dir: &Path, args: &[&str]) -> Command {
    let mut cmd = acceptance_tests::drctl_in(dir, args);
    cmd.env("DR_TEST_LOCK_STALE_SECS", STALE_SECS.to_string());
    cmd
}

fn run(dir: &Path, args: &[&str]) -> Output {
    with_short_locks(dir, args).output().unwrap()
}

fn run_ok(dir: &Path, args: &[&str]) -> String {
    let out = run(dir, args);
    assert!(
        out.status.success(),
        "drctl {args:?}: {}",
        acceptance_tests::output_text(&out)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Waits until `child` is stopped (state `T` in /proc), failing after 60 s.
fn wait_until_stopped(child: &mut Child) {
    let stat = format!("/proc/{}/stat", child.id());
    let start = Instant::now();
    loop {
        let text = std::fs::read_to_string(&stat).unwrap_or_default();
        let state = text
            .rsplit(')')
            .next()
            .unwrap_or("")
            .split_whitespace()
            .next();
        if state == Some("T") {
            return;
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("the writer ended before its commit: {status}");
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the writer never reached its commit"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn signal(child: &Child, sig: &str) {
    let status = Command::new("kill")
        .args([sig, &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

fn snapshot_ids(dir: &Path) -> Vec<String> {
    acceptance_tests::snapshot_ids(dir, "v")
}

#[test]
fn a_frozen_writer_with_a_wrong_clock_keeps_its_lock_until_the_store_says_stale_then_never_commits()
{
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    std::fs::create_dir_all(dir.join("src/scripts")).unwrap();
    std::fs::write(dir.join("src/ci.yml"), "stages: [build]\n").unwrap();
    std::fs::write(dir.join("src/scripts/deploy.sh"), "#!/bin/sh\n").unwrap();
    run_ok(
        dir,
        &[
            "vault", "--vault", "v", "init", "--name", "p", "--region", "r",
        ],
    );
    run_ok(
        dir,
        &["vault", "--vault", "v", "snapshot", "--source", "ci=src"],
    );
    let committed = snapshot_ids(dir);
    std::fs::write(
        dir.join("src/new.txt"),
        "a file only the frozen writer saw\n",
    )
    .unwrap();

    // The writer's clock is five hours behind: by its own record its lock is ancient.
    let five_hours_ago = time::OffsetDateTime::now_utc() - time::Duration::hours(5);
    let mut writer = with_short_locks(
        dir,
        &["vault", "--vault", "v", "snapshot", "--source", "ci=src"],
    )
    .env("DR_TEST_STOP_AT", "snapshot-commit")
    .env("DR_TEST_CLOCK", "1")
    .env(
        "DR_TEST_NOW",
        five_hours_ago
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap(),
    )
    .spawn()
    .unwrap();
    wait_until_stopped(&mut writer);
    let frozen_at = Instant::now();

    // The store wrote its lock just now: prune waits, whatever the writer's clock says.
    let prune = run(dir, &["vault", "--vault", "v", "prune"]);
    assert!(!prune.status.success(), "prune ran beside a live writer");
    let text = acceptance_tests::output_text(&prune);
    assert!(text.contains("a snapshot holds"), "{text}");

    // Frozen past the stale window, its lock is ignored and prune goes ahead; the writer's
    // packs, written before it froze, are unreferenced and old enough to go too.
    std::thread::sleep(Duration::from_secs(STALE_SECS + 1).saturating_sub(frozen_at.elapsed()));
    let pruned = run_ok(dir, &["vault", "--vault", "v", "prune"]);
    assert!(pruned.contains("pruned:"), "{pruned}");

    // Woken, the writer finds it lost its lock and commits nothing.
    signal(&writer, "-CONT");
    let out = writer.wait_with_output().unwrap();
    let text = acceptance_tests::output_text(&out);
    assert!(!out.status.success(), "the writer committed: {text}");
    assert!(text.contains("lost the lock"), "{text}");
    assert!(text.contains("nothing was committed"), "{text}");
    assert_eq!(snapshot_ids(dir), committed);
    let verify = run_ok(
        dir,
        &["vault", "--vault", "v", "verify", "--read-data", "--json"],
    );
    let report: serde_json::Value = serde_json::from_str(&verify).unwrap();
    assert_eq!(report["problems"], serde_json::json!([]), "{verify}");

    // The next snapshot, with the lock held throughout, takes the new file.
    run_ok(
        dir,
        &["vault", "--vault", "v", "snapshot", "--source", "ci=src"],
    );
    assert_eq!(snapshot_ids(dir).len(), 2);
}
