//! Network faults on S3: `drctl` snapshots, replicates and restores through a proxy that
//! breaks a share of the connections to a real moto server (resets mid-upload and
//! mid-download, stalls past the request timeout, truncated responses, 500s and 503 Slow
//! Down). Each operation either succeeds, retrying, or fails with an error naming the store,
//! within its time budget; afterwards, with the network healthy, both vaults verify clean,
//! every snapshot reported committed restores bit for bit, and a failed snapshot committed
//! nothing.
//!
//! `FAULT_ROUNDS` sets the rounds (6 by default); `FAULT_SEED` sets which connections break and
//! how (in the order they are opened, which timing can change: a near replay, not an exact one).

use acceptance_tests::fault_proxy::FaultProxy;
use acceptance_tests::servers::{create_bucket, moto_server};
use acceptance_tests::{drctl_in, output_text, read_tree, with_vault_options};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

type Tree = BTreeMap<String, Vec<u8>>;

/// Storage options that bound each request: a stalled request gives up after `timeout`, a
/// failing one is retried up to `retry_timeout`.
const BUDGET: [(&str, &str); 4] = [
    ("timeout", "3s"),
    ("connect_timeout", "2s"),
    ("max_retries", "6"),
    ("retry_timeout", "12s"),
];

/// Longer than any operation here may take, faults and retries included: past it, a run
/// counts as hung.
const HUNG_AFTER: Duration = Duration::from_secs(240);

struct Store {
    dir: PathBuf,
}

impl Store {
    /// drctl against `endpoint` with the request budget.
    fn drctl(&self, endpoint: &str, args: &[&str]) -> Command {
        let mut cmd = drctl_in(&self.dir, args);
        cmd.env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", "test");
        let endpoint = format!("endpoint={endpoint}");
        let options = [endpoint.as_str(), "region=us-east-1", "allow_http=true"];
        let budget: Vec<String> = BUDGET.iter().map(|(k, v)| format!("{k}={v}")).collect();
        with_vault_options(
            &mut cmd,
            args,
            options.into_iter().chain(budget.iter().map(String::as_str)),
        );
        cmd
    }

    /// Runs drctl, failing the test if it outlives [`HUNG_AFTER`].
    fn run(&self, endpoint: &str, args: &[&str]) -> (Output, Duration) {
        let started = Instant::now();
        let mut child = self.drctl(endpoint, args).spawn().unwrap();
        while child.try_wait().unwrap().is_none() {
            if started.elapsed() > HUNG_AFTER {
                let _ = child.kill();
                panic!("drctl {args:?} hung past {HUNG_AFTER:?} through the faulty network");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        (child.wait_with_output().unwrap(), started.elapsed())
    }

    fn ok(&self, endpoint: &str, args: &[&str]) -> String {
        let (out, _) = self.run(endpoint, args);
        assert!(
            out.status.success(),
            "drctl {args:?}: {}",
            output_text(&out)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn ids(&self, endpoint: &str, vault: &str) -> Vec<String> {
        let list: serde_json::Value = serde_json::from_str(&self.ok(
            endpoint,
            &["vault", "--vault", vault, "snapshots", "--json"],
        ))
        .unwrap();
        list.as_array()
            .unwrap()
            .iter()
            .map(|s| s["id"].as_str().unwrap().to_string())
            .collect()
    }
}

/// A failure through the faulty network must say what it could not reach.
fn assert_clear_failure(what: &str, out: &Output) {
    let text = output_text(out);
    assert!(
        text.contains("s3://faults/"),
        "{what} failed without naming the store or object: {text}"
    );
    assert!(!text.contains("panicked"), "{what} panicked: {text}");
    let said = text
        .lines()
        .find(|l| l.starts_with("error:"))
        .unwrap_or_default();
    println!("{what} failed cleanly: {said}");
}

#[test]
fn snapshot_replicate_and_restore_through_a_faulty_network_lose_nothing() {
    let rounds: usize = std::env::var("FAULT_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(6);
    let seed: u64 = std::env::var("FAULT_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        });
    println!("FAULT_SEED={seed} FAULT_ROUNDS={rounds}");
    let server = moto_server();
    create_bucket(&server.endpoint(), "faults");
    let upstream = format!("127.0.0.1:{}", server.port).parse().unwrap();
    // A quarter of the connections broken; stalls outlast the 3 s request timeout.
    let proxy = FaultProxy::start(upstream, 250, seed, Duration::from_secs(5));
    let faulty = proxy.endpoint();
    let direct = server.endpoint();
    let tmp = tempfile::tempdir().unwrap();
    let store = Store {
        dir: tmp.path().to_path_buf(),
    };
    for name in ["primary", "standby"] {
        let url = format!("s3://faults/{name}");
        store.ok(
            &direct,
            &[
                "vault", "--vault", &url, "init", "--name", name, "--region", name,
            ],
        );
    }
    let (primary, standby) = ("s3://faults/primary", "s3://faults/standby");

    let src = store.dir.join("src");
    std::fs::create_dir_all(&src).unwrap();
    let mut committed: BTreeMap<String, Tree> = BTreeMap::new();
    let mut table: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    let mut slowest = Duration::ZERO;
    let mut note = |op: &'static str, ok: bool, took: Duration| {
        let row = table.entry(op).or_default();
        row.0 += 1;
        row.1 += usize::from(!ok);
        slowest = slowest.max(took);
    };
    for round in 1..=rounds {
        // Several objects per snapshot: small files and a blob of a few MiB in chunks.
        for i in 0..20 {
            std::fs::write(
                src.join(format!("job-{i}.yml")),
                format!("job {i} round {round}\n"),
            )
            .unwrap();
        }
        let blob: Vec<u8> = (0..3 * 1024 * 1024u32)
            .map(|i| (i.wrapping_mul(2_654_435_761).wrapping_add(round as u32) >> 11) as u8)
            .collect();
        std::fs::write(src.join("artifact.bin"), blob).unwrap();
        let tree = read_tree(&src);

        let before = store.ids(&direct, primary);
        let (out, took) = store.run(
            &faulty,
            &[
                "vault", "--vault", primary, "snapshot", "--source", "ci=src", "--json",
            ],
        );
        note("snapshot", out.status.success(), took);
        let after = store.ids(&direct, primary);
        if out.status.success() {
            let id = serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()["id"]
                .as_str()
                .unwrap()
                .to_string();
            assert!(
                after.contains(&id),
                "round {round}: the reported snapshot is not there"
            );
            committed.insert(id, tree.clone());
        } else {
            assert_clear_failure("snapshot", &out);
            // A snapshot that failed committed nothing, or (its manifest stored, the answer
            // lost) exactly the tree it was given: it must restore like any other.
            for id in after.iter().filter(|id| !before.contains(id)) {
                committed.insert(id.clone(), tree.clone());
            }
        }

        let (out, took) = store.run(
            &faulty,
            &["vault", "--vault", primary, "replicate", "--to", standby],
        );
        note("replicate", out.status.success(), took);
        if !out.status.success() {
            assert_clear_failure("replicate", &out);
        }

        if let Some((id, want)) = committed.iter().next_back() {
            let target = store.dir.join(format!("restore-{round}"));
            let (out, took) = store.run(
                &faulty,
                &[
                    "vault",
                    "--vault",
                    primary,
                    "restore",
                    id,
                    "--target",
                    target.to_str().unwrap(),
                    "--source",
                    "ci",
                ],
            );
            note("restore", out.status.success(), took);
            if out.status.success() {
                assert!(
                    read_tree(&target) == *want,
                    "round {round}: restore through faults differs"
                );
            } else {
                assert_clear_failure("restore", &out);
            }
        }
    }

    // The network heals: everything is there and whole.
    proxy.set_rate(0);
    store.ok(
        &faulty,
        &["vault", "--vault", primary, "replicate", "--to", standby],
    );
    for vault in [primary, standby] {
        let report: serde_json::Value = serde_json::from_str(&store.ok(
            &direct,
            &["vault", "--vault", vault, "verify", "--read-data", "--json"],
        ))
        .unwrap();
        assert_eq!(
            report["problems"],
            serde_json::json!([]),
            "{vault}: {report:#}"
        );
        let mut ids = store.ids(&direct, vault);
        ids.sort();
        let want: Vec<&String> = committed.keys().collect();
        assert_eq!(ids.iter().collect::<Vec<_>>(), want, "{vault}: snapshots");
        for (id, tree) in &committed {
            let target = store.dir.join("restored");
            let _ = std::fs::remove_dir_all(&target);
            store.ok(
                &direct,
                &[
                    "vault",
                    "--vault",
                    vault,
                    "restore",
                    id,
                    "--target",
                    target.to_str().unwrap(),
                    "--source",
                    "ci",
                ],
            );
            assert!(
                read_tree(&target) == *tree,
                "{vault}: snapshot {id} does not restore"
            );
        }
    }

    println!("{:<10} {:>5} {:>7}", "operation", "runs", "failed");
    for (op, (runs, failed)) in &table {
        println!("{op:<10} {runs:>5} {failed:>7}");
    }
    let injected = proxy.injected();
    println!(
        "{} connections, faults injected: {injected:?}; slowest operation {slowest:?}; {} snapshots committed, all restore",
        proxy.connections(),
        committed.len()
    );
    assert!(
        injected.values().sum::<usize>() > 0,
        "no fault was injected"
    );
}
