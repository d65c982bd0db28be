//! Many writers at once, and writers whose clocks disagree, through the real `drctl` processes
//! (real locks, real storage: a local directory and a moto S3 server):
//!
//! - four snapshots, a prune and a replication started together, round after round: every
//!   snapshot reported committed is kept and restores bit for bit, each run either succeeds
//!   or is refused as locked (exit 5), and both vaults verify clean with their data read back;
//! - writers whose clocks are hours apart (the test clock): prune by either clock never
//!   deletes data a kept snapshot needs, a snapshot from the future is kept, a frozen writer
//!   ahead in time keeps its lock, and `state pull` picks the newest serial, not the newest
//!   time.
//!
//! `CONCURRENCY_ROUNDS` sets the rounds per backend (10 by default, as CI runs it; the issue
//! 17 campaign ran 20).

use acceptance_tests::servers::{create_bucket, moto_server};
use acceptance_tests::{drctl_in, output_text, read_tree, with_vault_options, Rng};
use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Child, Command, Output};

type Tree = BTreeMap<String, Vec<u8>>;

/// Where the two vaults live, and the options drctl needs to reach them.
struct Backend {
    primary: String,
    standby: String,
    options: Vec<(String, String)>,
}

impl Backend {
    fn drctl(&self, dir: &Path, args: &[&str]) -> Command {
        let mut cmd = drctl_in(dir, args);
        let options: Vec<String> = self
            .options
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        with_vault_options(&mut cmd, args, options.iter().map(String::as_str));
        cmd.env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", "test");
        cmd
    }

    fn ok(&self, dir: &Path, args: &[&str]) -> String {
        let out = self.drctl(dir, args).output().unwrap();
        assert!(
            out.status.success(),
            "drctl {args:?}: {}",
            output_text(&out)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn ids(&self, dir: &Path, vault: &str) -> Vec<String> {
        let list: serde_json::Value = serde_json::from_str(
            &self.ok(dir, &["vault", "--vault", vault, "snapshots", "--json"]),
        )
        .unwrap();
        list.as_array()
            .unwrap()
            .iter()
            .map(|s| s["id"].as_str().unwrap().to_string())
            .collect()
    }

    fn verify_clean(&self, dir: &Path, vault: &str, when: &str) {
        let report: serde_json::Value = serde_json::from_str(&self.ok(
            dir,
            &["vault", "--vault", vault, "verify", "--read-data", "--json"],
        ))
        .unwrap();
        assert_eq!(
            report["problems"],
            serde_json::json!([]),
            "{when}: {vault}: {report:#}"
        );
    }

    fn restores_to(&self, dir: &Path, vault: &str, id: &str, source: &str, want: &Tree) {
        let target = dir.join("restored");
        let _ = std::fs::remove_dir_all(&target);
        self.ok(
            dir,
            &[
                "vault",
                "--vault",
                vault,
                "restore",
                id,
                "--target",
                target.to_str().unwrap(),
                "--source",
                source,
            ],
        );
        assert!(
            read_tree(&target) == *want,
            "{vault}: snapshot {id} does not restore to the tree it was taken from"
        );
    }
}

/// Writes round `round`'s content into `src`: files shared by every source and round (which
/// deduplicate across concurrent writers), files of this source, and a fresh blob.
fn write_source(src: &Path, source: usize, round: usize) -> Tree {
    std::fs::create_dir_all(src).unwrap();
    let mut rng = Rng::new((source as u64 + 1) * 0x9e37_79b9 + round as u64);
    std::fs::write(
        src.join("shared.yml"),
        "stages: [build, test, deploy]\n".repeat(200),
    )
    .unwrap();
    std::fs::write(
        src.join("job.yml"),
        format!("source {source}, round {round}\n"),
    )
    .unwrap();
    let blob = rng.bytes(384 * 1024);
    std::fs::write(src.join("artifact.bin"), blob).unwrap();
    read_tree(src)
}

/// Exit code of drctl for a refusal because another process holds the vault's lock.
const EXIT_LOCKED: i32 = 5;

fn finished(child: Child) -> Output {
    child.wait_with_output().unwrap()
}

fn concurrent_rounds(backend: &Backend, dir: &Path) {
    let rounds: usize = std::env::var("CONCURRENCY_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10);
    for (vault, name) in [(&backend.primary, "primary"), (&backend.standby, "standby")] {
        backend.ok(
            dir,
            &[
                "vault", "--vault", vault, "init", "--name", name, "--region", name,
            ],
        );
    }
    let mut committed: BTreeMap<String, (String, Tree)> = BTreeMap::new();
    let (mut refused, mut runs) = (0, 0);
    for round in 1..=rounds {
        let mut trees = Vec::new();
        let mut children = Vec::new();
        for source in 0..4 {
            let src = dir.join(format!("src{source}"));
            trees.push(write_source(&src, source, round));
            let spec = format!("s{source}={}", src.display());
            children.push(
                backend
                    .drctl(
                        dir,
                        &[
                            "vault",
                            "--vault",
                            &backend.primary,
                            "snapshot",
                            "--source",
                            &spec,
                            "--json",
                        ],
                    )
                    .spawn()
                    .unwrap(),
            );
        }
        let prune = backend
            .drctl(
                dir,
                &[
                    "vault",
                    "--vault",
                    &backend.primary,
                    "prune",
                    "--keep-last",
                    "1000",
                ],
            )
            .spawn()
            .unwrap();
        let replicate = backend
            .drctl(
                dir,
                &[
                    "vault",
                    "--vault",
                    &backend.primary,
                    "replicate",
                    "--to",
                    &backend.standby,
                ],
            )
            .spawn()
            .unwrap();
        for (source, child) in children.into_iter().enumerate() {
            let out = finished(child);
            runs += 1;
            if out.status.success() {
                let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
                let id = report["id"].as_str().unwrap().to_string();
                committed.insert(id, (format!("s{source}"), trees[source].clone()));
            } else {
                assert_eq!(
                    out.status.code(),
                    Some(EXIT_LOCKED),
                    "round {round}: snapshot: {}",
                    output_text(&out)
                );
                refused += 1;
            }
        }
        for (what, child) in [("prune", prune), ("replicate", replicate)] {
            let out = finished(child);
            runs += 1;
            if !out.status.success() {
                assert_eq!(
                    out.status.code(),
                    Some(EXIT_LOCKED),
                    "round {round}: {what}: {}",
                    output_text(&out)
                );
                refused += 1;
            }
        }
        // Nothing committed is lost: every snapshot reported is there (and nothing else).
        let mut ids = backend.ids(dir, &backend.primary);
        ids.sort();
        let reported: Vec<String> = committed.keys().cloned().collect();
        assert_eq!(ids, reported, "round {round}: the primary's snapshots");
        for vault in [&backend.primary, &backend.standby] {
            backend.verify_clean(dir, vault, &format!("round {round}"));
        }
    }
    // Every snapshot restores, from the primary and (once replicated) from the standby.
    backend.ok(
        dir,
        &[
            "vault",
            "--vault",
            &backend.primary,
            "replicate",
            "--to",
            &backend.standby,
        ],
    );
    for (id, (source, tree)) in &committed {
        backend.restores_to(dir, &backend.primary, id, source, tree);
    }
    let standby = backend.ids(dir, &backend.standby);
    assert_eq!(standby.len(), committed.len());
    for id in standby.iter().step_by(7) {
        let (source, tree) = &committed[id];
        backend.restores_to(dir, &backend.standby, id, source, tree);
    }
    println!(
        "{rounds} rounds: {runs} runs, {} snapshots committed, {refused} refused as locked, none lost",
        committed.len()
    );
}

#[test]
fn concurrent_writers_on_a_local_vault_lose_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let backend = Backend {
        primary: "primary".into(),
        standby: "standby".into(),
        options: Vec::new(),
    };
    concurrent_rounds(&backend, tmp.path());
}

#[test]
fn concurrent_writers_on_an_s3_vault_lose_nothing() {
    let server = moto_server();
    create_bucket(&server.endpoint(), "concurrency");
    let tmp = tempfile::tempdir().unwrap();
    let backend = Backend {
        primary: "s3://concurrency/primary".into(),
        standby: "s3://concurrency/standby".into(),
        options: vec![
            ("endpoint".into(), server.endpoint()),
            ("region".into(), "us-east-1".into()),
            ("allow_http".into(), "true".into()),
        ],
    };
    concurrent_rounds(&backend, tmp.path());
}

/// The test clock of a writer `hours` from a fixed noon.
fn at(cmd: &mut Command, hours: i64) -> &mut Command {
    let noon = time::macros::datetime!(2026-11-01 12:00 UTC) + time::Duration::hours(hours);
    cmd.env("DR_TEST_CLOCK", "1").env(
        "DR_TEST_NOW",
        noon.format(&time::format_description::well_known::Rfc3339)
            .unwrap(),
    )
}

fn run_at(dir: &Path, hours: i64, args: &[&str]) -> Output {
    at(&mut drctl_in(dir, args), hours).output().unwrap()
}

fn ok_at(dir: &Path, hours: i64, args: &[&str]) -> String {
    let out = run_at(dir, hours, args);
    assert!(
        out.status.success(),
        "drctl {args:?} at {hours:+}h: {}",
        output_text(&out)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn clocks_hours_apart_cannot_make_prune_delete_live_data_nor_pull_pick_an_older_state() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let local = Backend {
        primary: "v".into(),
        standby: "unused".into(),
        options: Vec::new(),
    };
    ok_at(
        dir,
        0,
        &[
            "vault", "--vault", "v", "init", "--name", "v", "--region", "eu",
        ],
    );
    let snap = |hours: i64, round: usize| {
        let tree = write_source(&dir.join("src"), 0, round);
        let out = ok_at(
            dir,
            hours,
            &[
                "vault", "--vault", "v", "snapshot", "--source", "s0=src", "--json",
            ],
        );
        let id = serde_json::from_str::<serde_json::Value>(&out).unwrap()["id"]
            .as_str()
            .unwrap()
            .to_string();
        (id, tree)
    };
    // Writer A at noon, writer B six hours ahead, then A again a minute later.
    let a1 = snap(0, 1);
    let b = snap(6, 2);
    let a2 = snap(0, 3);

    // By A's clock B's snapshot is from the future: keep-within keeps it (and A's own).
    ok_at(
        dir,
        0,
        &["vault", "--vault", "v", "prune", "--keep-within", "1h"],
    );
    let mut ids = local.ids(dir, "v");
    ids.sort();
    let mut all = vec![a1.0.clone(), b.0.clone(), a2.0.clone()];
    all.sort();
    assert_eq!(ids, all, "prune by the slow clock forgot a snapshot");

    // By B's clock A's snapshots are six hours old: the policy forgets them, but the data
    // B's snapshot shares with them stays, and B's snapshot restores.
    ok_at(
        dir,
        6,
        &["vault", "--vault", "v", "prune", "--keep-within", "1h"],
    );
    assert_eq!(local.ids(dir, "v"), std::slice::from_ref(&b.0));
    local.verify_clean(dir, "v", "after prune by the fast clock");
    local.restores_to(dir, "v", &b.0, "s0", &b.1);

    // A writer twelve hours ahead, frozen before its commit, keeps its lock against a prune
    // by the true clock: its lock's age is the store's, not the writer's.
    write_source(&dir.join("src"), 0, 4);
    let frozen = at(
        &mut drctl_in(
            dir,
            &[
                "vault", "--vault", "v", "snapshot", "--source", "s0=src", "--json",
            ],
        ),
        12,
    )
    .env("DR_TEST_STOP_AT", "snapshot-commit")
    .spawn()
    .unwrap();
    wait_until_stopped(&frozen);
    let prune = run_at(
        dir,
        0,
        &["vault", "--vault", "v", "prune", "--keep-within", "1h"],
    );
    assert_eq!(
        prune.status.code(),
        Some(EXIT_LOCKED),
        "{}",
        output_text(&prune)
    );
    let _ = Command::new("kill")
        .args(["-CONT", &frozen.id().to_string()])
        .status();
    let out = frozen.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", output_text(&out));
    let late: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let late_id = late["id"].as_str().unwrap();
    local.verify_clean(dir, "v", "after the frozen writer committed");
    local.restores_to(dir, "v", late_id, "s0", &read_tree(&dir.join("src")));

    // State: serial 7 pushed by a clock six hours ahead, then serial 8 at noon. The current
    // version is serial 8, whatever the times say; serial 6 from a clock further ahead
    // is refused as older.
    ok_at(
        dir,
        0,
        &[
            "vault", "--vault", "s", "init", "--name", "s", "--region", "eu",
        ],
    );
    let push = |hours: i64, serial: u64| {
        let state = serde_json::json!({
            "version": 4, "terraform_version": "1.0.3", "serial": serial,
            "lineage": "skew", "outputs": {}, "resources": []
        });
        std::fs::write(dir.join("in.tfstate"), state.to_string()).unwrap();
        run_at(dir, hours, &["state", "push", "s", "--state", "in.tfstate"])
    };
    assert!(push(6, 7).status.success());
    assert!(push(0, 8).status.success());
    let older = push(12, 6);
    assert!(
        !older.status.success(),
        "an older serial was pushed: {}",
        output_text(&older)
    );
    ok_at(dir, 0, &["state", "pull", "s", "--out", "pulled.tfstate"]);
    let pulled: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("pulled.tfstate")).unwrap()).unwrap();
    assert_eq!(pulled["serial"], 8, "pull picked {pulled}");
}

/// Waits until `child` has stopped itself (SIGSTOP at its stop point).
fn wait_until_stopped(child: &Child) {
    let stat = format!("/proc/{}/stat", child.id());
    for _ in 0..3000 {
        let text = std::fs::read_to_string(&stat).unwrap_or_default();
        if text
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('T'))
        {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    panic!("the writer never reached its stop point");
}
