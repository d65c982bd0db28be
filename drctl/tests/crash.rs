//! Crash injection: `drctl vault snapshot`, `replicate` and `prune` are killed with SIGKILL at
//! random moments until 50 runs have died mid-way. Replication goes in turn to a standby with
//! its own key (blobs re-sealed) and to one sharing the primary's (packs copied as they are).
//! Afterwards every vault verifies clean (data read back) and every snapshot that exists
//! restores bit for bit to the tree it was taken from.
//!
//! The seed is printed; `CRASH_SEED=N` replays a run.

use acceptance_tests::{drctl_in as drctl, drctl_stdout as run_ok, read_tree, snapshot_ids, Rng};
use std::collections::BTreeMap;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};
/// Runs killed mid-way that the test insists on (runs that finish first do not count).
const KILLS: usize = 50;
/// A bound on the rounds, so a machine where nothing can be interrupted fails instead of looping.
const MAX_ROUNDS: usize = 300;

/// Runs a command and kills it after `delay` if it is still running; returns whether it
/// finished on its own.
fn run_and_kill(dir: &Path, args: &[&str], delay: Duration) -> bool {
    let mut child = drctl(dir, args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    loop {
        if child.try_wait().unwrap().is_some() {
            return true;
        }
        if started.elapsed() >= delay {
            let _ = child.kill();
            let _ = child.wait();
            return false;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Writes new content into part of the tree and returns the whole tree's expected content.
fn mutate(src: &Path, rng: &mut Rng, round: usize) -> BTreeMap<String, Vec<u8>> {
    for i in 0..40 {
        let text = format!(
            "job-{i}:\n  script: deploy --round {}\n",
            if i % 7 == round % 7 { round } else { 0 }
        );
        std::fs::write(src.join(format!("jobs/job-{i}.yml")), text).unwrap();
    }
    let big = rng.bytes(2 * 1024 * 1024);
    std::fs::write(src.join(format!("artifacts/build-{}.bin", round % 3)), big).unwrap();
    read_tree(src)
}

#[test]
fn killed_writers_never_leave_a_broken_vault() {
    let seed = std::env::var("CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
                | 1
        });
    println!("CRASH_SEED={seed}");
    let mut rng = Rng::new(seed);
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let src = d.join("src");
    std::fs::create_dir_all(src.join("jobs")).unwrap();
    std::fs::create_dir_all(src.join("artifacts")).unwrap();
    run_ok(
        d,
        &[
            "vault",
            "--vault",
            "primary",
            "init",
            "--name",
            "primary",
            "--region",
            "eu-west-1",
        ],
    );
    run_ok(
        d,
        &[
            "vault",
            "--vault",
            "standby",
            "init",
            "--name",
            "standby",
            "--region",
            "us-east-1",
        ],
    );
    run_ok(
        d,
        &[
            "vault",
            "--vault",
            "shared",
            "init",
            "--name",
            "shared",
            "--region",
            "us-west-2",
            "--key-from",
            "primary",
        ],
    );

    // How long an uninterrupted snapshot takes here sets the range of kill times.
    let mut expected: BTreeMap<String, BTreeMap<String, Vec<u8>>> = BTreeMap::new();
    let tree = mutate(&src, &mut rng, 0);
    let started = Instant::now();
    run_ok(
        d,
        &[
            "vault", "--vault", "primary", "snapshot", "--source", "ci=src",
        ],
    );
    let span = started.elapsed().mul_f32(1.3);
    expected.insert(snapshot_ids(d, "primary")[0].clone(), tree);

    let mut kills = 0;
    let mut rounds = 0;
    for round in 1..=MAX_ROUNDS {
        if kills >= KILLS {
            break;
        }
        rounds = round;
        let delay = rng.below(span);
        let before = snapshot_ids(d, "primary");
        let finished = match round % 3 {
            0 => run_and_kill(
                d,
                &[
                    "vault",
                    "--vault",
                    "primary",
                    "replicate",
                    "--to",
                    if round % 2 == 0 { "standby" } else { "shared" },
                ],
                delay,
            ),
            1 => {
                let tree = mutate(&src, &mut rng, round);
                let done = run_and_kill(
                    d,
                    &[
                        "vault", "--vault", "primary", "snapshot", "--source", "ci=src",
                    ],
                    delay,
                );
                // A snapshot killed after its manifest was written counts as taken.
                for id in snapshot_ids(d, "primary")
                    .into_iter()
                    .filter(|id| !before.contains(id))
                {
                    expected.insert(id, tree.clone());
                }
                done
            }
            _ => run_and_kill(
                d,
                &["vault", "--vault", "primary", "prune", "--keep-last", "4"],
                delay,
            ),
        };
        if !finished {
            kills += 1;
        }
    }
    println!("{kills} of {rounds} runs were killed mid-way");
    assert!(
        kills >= KILLS,
        "only {kills} of {rounds} runs could be interrupted; the kill window is off"
    );

    // Finish the replications, then check everything.
    for standby in ["standby", "shared"] {
        run_ok(
            d,
            &["vault", "--vault", "primary", "replicate", "--to", standby],
        );
    }
    for vault in ["primary", "standby", "shared"] {
        let report: serde_json::Value = serde_json::from_str(&run_ok(
            d,
            &["vault", "--vault", vault, "verify", "--read-data", "--json"],
        ))
        .unwrap();
        assert_eq!(
            report["problems"],
            serde_json::json!([]),
            "{vault}: {report:#}"
        );
        let ids = snapshot_ids(d, vault);
        assert!(!ids.is_empty());
        for id in ids {
            let want = expected
                .get(&id)
                .unwrap_or_else(|| panic!("{vault} holds a snapshot {id} nobody took"));
            let target = d.join(format!("restore-{vault}-{}", &id[..12]));
            run_ok(
                d,
                &[
                    "vault",
                    "--vault",
                    vault,
                    "restore",
                    &id,
                    "--target",
                    target.to_str().unwrap(),
                    "--source",
                    "ci",
                ],
            );
            assert!(
                read_tree(&target) == *want,
                "{vault}: snapshot {id} does not restore to the tree it was taken from"
            );
        }
    }
}
