//! The crash campaign: every writer killed with SIGKILL at a random moment, trial after trial,
//! over the same vaults: `drctl vault snapshot`, `replicate`, `prune`, `drctl state push`, and
//! the provider process itself during a `terraform apply` that snapshots and runs a drill and
//! during a `terraform destroy`. After each trial the interrupted operation is run again and
//! must succeed (as a user would), then every vault verifies clean with its data read back,
//! and every snapshot it holds restores bit for bit to the tree it was taken from.
//!
//! `CRASH_TRIALS` sets the number of trials (20 by default, as CI runs it;
//! `bench/crash-campaign` runs 200 and prints the table); `CRASH_SEED` replays a run. The
//! test prints one line per trial and a summary.

use acceptance_tests::{
    drctl_in, drctl_stdout, files_under, read_tree, snapshot_ids, ProviderBuild, Rng, TfDir,
    DRCTL_TEST_PASSPHRASE,
};
use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A tree as restored: path → bytes.
type Tree = BTreeMap<String, Vec<u8>>;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Writer {
    Snapshot,
    Replicate,
    Prune,
    StatePush,
    ApplyWithDrill,
    Destroy,
}

const WRITERS: [Writer; 6] = [
    Writer::Snapshot,
    Writer::Replicate,
    Writer::Prune,
    Writer::StatePush,
    Writer::ApplyWithDrill,
    Writer::Destroy,
];

const MODULE: &str = r#"
terraform {
  required_providers {
    dr = { source = "registry.terraform.io/dr-project/dr" }
  }
}
variable "round" {
  type = string
}
provider "dr" {
  work_dir = "scratch"
}
resource "dr_backup_vault" "eu" {
  name          = "eu"
  region        = "eu-west-1"
  url           = "vaults/eu"
  force_destroy = true
  source {
    name = "pipeline"
    path = "pipeline"
  }
}
resource "dr_backup_vault" "us" {
  name          = "us"
  region        = "us-east-1"
  url           = "vaults/us"
  force_destroy = true
}
resource "dr_drill" "eu" {
  name           = "eu"
  vault_id       = dr_backup_vault.eu.id
  snapshot_id    = dr_backup_vault.eu.latest_snapshot_id
  verify_command = ["sh", "-c", "test -f pipeline/job-0.yml && sleep 0.2"]
  triggers       = { round = var.round }
}
"#;

/// What a trial did.
struct Outcome {
    killed: bool,
    /// How the next run of the same operation went, when it needed more than a plain re-run.
    recovery: Option<String>,
}

struct Campaign {
    tf: TfDir,
    rng: Rng,
    /// Every snapshot taken and reported (or found) committed, by id: its source and tree.
    expected: BTreeMap<String, (String, Tree)>,
    /// How long an uninterrupted run of each writer took here: the window kills fall in.
    span: BTreeMap<Writer, Duration>,
    serial: u64,
}

impl Campaign {
    fn dir(&self) -> &Path {
        self.tf.path()
    }

    fn drctl(&self, args: &[&str]) -> Command {
        let mut cmd = drctl_in(self.dir(), args);
        cmd.stdout(Stdio::null()).stderr(Stdio::null());
        cmd
    }

    /// New content for the pipeline (the module's source) and for `ci/` (drctl's).
    fn mutate(&mut self, round: usize) {
        for (dir, files) in [("pipeline", 12), ("ci", 30)] {
            let root = self.dir().join(dir);
            std::fs::create_dir_all(&root).unwrap();
            for i in 0..files {
                let text = format!(
                    "job-{i}:\n  script: deploy --round {}\n",
                    if i % 5 == round % 5 { round } else { 0 }
                );
                std::fs::write(root.join(format!("job-{i}.yml")), text).unwrap();
            }
            let big = self.rng.bytes(1024 * 1024);
            std::fs::write(root.join(format!("artifact-{}.bin", round % 2)), big).unwrap();
        }
    }

    /// A state file with the next serial, large enough to take a moment to push.
    fn next_state(&mut self) -> Tree {
        self.serial += 1;
        let padding: String = (0..200_000)
            .map(|_| char::from(b'a' + (self.rng.next_u64() % 26) as u8))
            .collect();
        let state = serde_json::json!({
            "version": 4,
            "terraform_version": "1.0.3",
            "serial": self.serial,
            "lineage": "crash-campaign-lineage",
            "outputs": {},
            "resources": [{
                "mode": "managed", "type": "null_resource", "name": "pad",
                "provider": "provider[\"registry.terraform.io/hashicorp/null\"]",
                "instances": [{ "attributes": { "id": padding } }]
            }]
        });
        let bytes = serde_json::to_vec_pretty(&state).unwrap();
        std::fs::write(self.dir().join("terraform-copy.tfstate"), &bytes).unwrap();
        Tree::from([("terraform.tfstate".to_string(), bytes)])
    }

    fn ids(&self, vault: &str) -> Vec<String> {
        if self.dir().join(vault).join("config").exists() {
            snapshot_ids(self.dir(), vault)
        } else {
            Vec::new()
        }
    }

    /// Runs `cmd`, killing it after `delay` unless `delay` is `None`.
    fn run(&self, mut cmd: Command, delay: Option<Duration>) -> Ran {
        if delay.is_none() {
            let out = cmd.stderr(Stdio::piped()).output().unwrap();
            if !out.status.success() {
                eprintln!("{cmd:?} failed: {}", String::from_utf8_lossy(&out.stderr));
            }
            return Ran::Finished(out.status.success());
        }
        let mut child = cmd.spawn().unwrap();
        let ran = kill_after(&mut child, delay, |child| child.kill().is_ok());
        // Reaped, as a shell or CI runner would: a zombie still holds its pid, and a lock's
        // holder is only taken for gone once its pid runs nothing.
        let _ = child.wait();
        ran
    }

    /// One run of `writer`, killed after `delay` (or left to finish when `None`).
    fn once(&mut self, writer: Writer, round: usize, delay: Option<Duration>) -> Ran {
        match writer {
            Writer::Snapshot => {
                self.mutate(round);
                let tree = read_tree(&self.dir().join("ci"));
                let before = self.ids("vaults/eu");
                let cmd = self.drctl(&[
                    "vault",
                    "--vault",
                    "vaults/eu",
                    "snapshot",
                    "--source",
                    "ci=ci",
                ]);
                let ran = self.run(cmd, delay);
                self.record_new("vaults/eu", &before, "ci", &tree);
                ran
            }
            Writer::Replicate => {
                let cmd = self.drctl(&[
                    "vault",
                    "--vault",
                    "vaults/eu",
                    "replicate",
                    "--to",
                    "vaults/us",
                ]);
                self.run(cmd, delay)
            }
            Writer::Prune => {
                let cmd =
                    self.drctl(&["vault", "--vault", "vaults/eu", "prune", "--keep-last", "3"]);
                self.run(cmd, delay)
            }
            Writer::StatePush => {
                let tree = self.next_state();
                let before = self.ids("vaults/state");
                let cmd = self.drctl(&[
                    "state",
                    "push",
                    "vaults/state",
                    "--state",
                    "terraform-copy.tfstate",
                ]);
                let ran = self.run(cmd, delay);
                self.record_new("vaults/state", &before, "state", &tree);
                ran
            }
            Writer::ApplyWithDrill => {
                self.mutate(round);
                let tree = read_tree(&self.dir().join("pipeline"));
                let before = self.ids("vaults/eu");
                let round_var = format!("round={round}");
                let ran = self.terraform(
                    &["apply", "-auto-approve", "-no-color", "-var", &round_var],
                    delay,
                );
                self.record_new("vaults/eu", &before, "pipeline", &tree);
                ran
            }
            Writer::Destroy => {
                let round_var = format!("round={round}");
                self.terraform(
                    &["destroy", "-auto-approve", "-no-color", "-var", &round_var],
                    delay,
                )
            }
        }
    }

    /// Runs terraform and kills the provider process it started (not terraform) after `delay`.
    fn terraform(&self, args: &[&str], delay: Option<Duration>) -> Ran {
        let mut child = self
            .tf
            .command(self.dir(), args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut provider_killed = false;
        // Terraform starts the provider several times (validate, plan, apply): the first one
        // running once the delay is up is killed.
        let ran = kill_after(&mut child, delay, |terraform| {
            if let Some(pid) = acceptance_tests::dr_provider_under(terraform.id()) {
                let _ = Command::new("kill")
                    .args(["-KILL", &pid.to_string()])
                    .status();
                provider_killed = true;
            }
            provider_killed
        });
        match ran {
            // Terraform itself is not killed: it reports the provider's crash and exits.
            Ran::Killed => {
                let _ = child.wait();
                Ran::Killed
            }
            finished => finished,
        }
    }

    fn record_new(&mut self, vault: &str, before: &[String], source: &str, tree: &Tree) {
        for id in self.ids(vault) {
            if !before.contains(&id) {
                self.expected.insert(id, (source.to_string(), tree.clone()));
            }
        }
    }

    /// Runs the interrupted operation again, as a user would after the crash; it must
    /// succeed. Returns what it took beyond a plain re-run.
    fn recover(&mut self, writer: Writer, round: usize) -> Option<String> {
        let round_var = format!("round={round}");
        match writer {
            Writer::ApplyWithDrill | Writer::Destroy => {
                let verb = if writer == Writer::Destroy {
                    "destroy"
                } else {
                    "apply"
                };
                let tree = read_tree(&self.dir().join("pipeline"));
                let before = self.ids("vaults/eu");
                let out = self
                    .tf
                    .run(&[verb, "-auto-approve", "-no-color", "-var", &round_var]);
                assert_eq!(out.code, 0, "terraform {verb} after the crash:\n{out}");
                let said = format!("{}{}", out.stdout, out.stderr);
                let finished_remains = said.contains("Interrupted Destroy Finished");
                if said.contains("Warning:") {
                    println!("terraform {verb} after the crash warned:\n{said}");
                }
                // An apply finishing what the crash interrupted takes the snapshot it missed.
                self.record_new("vaults/eu", &before, "pipeline", &tree);
                if writer == Writer::Destroy {
                    // Gone whole: remains left by the killed destroy would keep every
                    // later apply from creating the vault there.
                    for vault in ["vaults/eu", "vaults/us"] {
                        let root = self.dir().join(vault);
                        let left = if root.exists() {
                            files_under(&root)
                        } else {
                            Vec::new()
                        };
                        assert!(
                            left.is_empty(),
                            "{vault} outlived terraform destroy: {left:?}\n{said}"
                        );
                    }
                    let gone: Vec<String> = self
                        .expected
                        .iter()
                        .filter(|(_, (source, _))| source != "state")
                        .map(|(id, _)| id.clone())
                        .collect();
                    for id in gone {
                        self.expected.remove(&id);
                    }
                    // The next trials need the vaults: the module is applied again.
                    self.mutate(round);
                    let tree = read_tree(&self.dir().join("pipeline"));
                    let out =
                        self.tf
                            .run(&["apply", "-auto-approve", "-no-color", "-var", &round_var]);
                    if out.code != 0 {
                        // What is left, and whether each lock's holder still runs.
                        let locks = self.dir().join("vaults/eu/locks");
                        for e in std::fs::read_dir(&locks).into_iter().flatten().flatten() {
                            let text = std::fs::read_to_string(e.path()).unwrap_or_default();
                            let pid = serde_json::from_str::<serde_json::Value>(&text)
                                .ok()
                                .and_then(|v| v["pid"].as_u64())
                                .unwrap_or(0);
                            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
                                .unwrap_or_else(|_| "no such process".into());
                            let cmd = std::fs::read(format!("/proc/{pid}/cmdline"))
                                .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
                                .unwrap_or_default();
                            println!(
                                "left: {} {text}\n  holder: {stat} {cmd}",
                                e.path().display()
                            );
                        }
                    }
                    assert_eq!(out.code, 0, "terraform apply after a destroy:\n{out}");
                    self.record_new("vaults/eu", &[], "pipeline", &tree);
                }
                finished_remains.then(|| "the next destroy finished what it left".to_string())
            }
            _ => {
                let ran = self.once(writer, round, None);
                assert_eq!(
                    ran,
                    Ran::Finished(true),
                    "{writer:?} run again after the crash"
                );
                None
            }
        }
    }

    /// Every vault verifies clean with its data read back, and every snapshot it holds is one
    /// somebody took and restores bit for bit.
    fn check(&self, round: usize) {
        for vault in ["vaults/eu", "vaults/us", "vaults/state"] {
            if !self.dir().join(vault).join("config").exists() {
                continue;
            }
            let report: serde_json::Value = serde_json::from_str(&drctl_stdout(
                self.dir(),
                &["vault", "--vault", vault, "verify", "--read-data", "--json"],
            ))
            .unwrap();
            assert_eq!(
                report["problems"],
                serde_json::json!([]),
                "round {round}: {vault}: {report:#}"
            );
            for id in self.ids(vault) {
                let (source, want) = self.expected.get(&id).unwrap_or_else(|| {
                    panic!("round {round}: {vault} holds a snapshot {id} nobody took")
                });
                let target = self.dir().join("restored");
                let _ = std::fs::remove_dir_all(&target);
                drctl_stdout(
                    self.dir(),
                    &[
                        "vault",
                        "--vault",
                        vault,
                        "restore",
                        &id,
                        "--target",
                        target.to_str().unwrap(),
                        "--source",
                        source,
                    ],
                );
                assert!(
                    read_tree(&target) == *want,
                    "round {round}: {vault}: snapshot {id} does not restore to the tree it was taken from"
                );
            }
        }
    }
}

/// How a run ended.
#[derive(Debug, PartialEq, Eq)]
enum Ran {
    Killed,
    /// It finished before the kill; whether it succeeded.
    Finished(bool),
}

/// Waits for `child`, calling `kill` once `delay` has passed while it is still running, until
/// `kill` says it killed something (the caller waits for the child then).
fn kill_after(
    child: &mut Child,
    delay: Option<Duration>,
    mut kill: impl FnMut(&mut Child) -> bool,
) -> Ran {
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return Ran::Finished(status.success());
        }
        if delay.is_some_and(|d| started.elapsed() >= d) && kill(child) {
            return Ran::Killed;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

#[test]
fn every_writer_killed_at_random_leaves_vaults_that_verify_and_restore() {
    let trials: usize = std::env::var("CRASH_TRIALS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20);
    let seed = std::env::var("CRASH_SEED")
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
        .map(|s| s | 1)
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
                | 1
        });
    println!("CRASH_SEED={seed} CRASH_TRIALS={trials}");
    // CRASH_WRITERS=Destroy,Prune narrows a run to some writers (to chase one finding);
    // by default every writer takes its turn.
    let writers: Vec<Writer> = match std::env::var("CRASH_WRITERS").as_deref() {
        Ok("all") | Err(_) => WRITERS.to_vec(),
        Ok(names) => WRITERS
            .into_iter()
            .filter(|w| names.split(',').any(|n| n == format!("{w:?}")))
            .collect(),
    };
    let mut tf = TfDir::new(&[ProviderBuild::dr()]);
    tf.set_env("DR_PASSPHRASE", DRCTL_TEST_PASSPHRASE);
    tf.set_env("DR_TEST_INSECURE_KDF", "1");
    tf.config(MODULE);
    tf.init();
    let mut c = Campaign {
        tf,
        rng: Rng::new(seed),
        expected: BTreeMap::new(),
        span: BTreeMap::new(),
        serial: 0,
    };
    c.mutate(0);
    drctl_stdout(
        c.dir(),
        &[
            "vault",
            "--vault",
            "vaults/state",
            "init",
            "--name",
            "state",
            "--region",
            "eu-west-1",
        ],
    );
    // One uninterrupted run of each writer measures its span here (the module's apply first:
    // it creates the vaults the others write to; the destroy last, then the module again).
    for writer in [
        Writer::ApplyWithDrill,
        Writer::Snapshot,
        Writer::Replicate,
        Writer::Prune,
        Writer::StatePush,
        Writer::Destroy,
    ] {
        let started = Instant::now();
        let ran = c.once(writer, 0, None);
        assert_eq!(ran, Ran::Finished(true), "{writer:?} uninterrupted");
        c.span.insert(writer, started.elapsed().mul_f32(1.2));
        if writer == Writer::Destroy {
            c.recover(Writer::Destroy, 0);
        }
    }
    c.check(0);

    let mut table: BTreeMap<Writer, (usize, usize)> = BTreeMap::new();
    for trial in 1..=trials {
        let writer = writers[trial % writers.len()];
        let delay = c.rng.below(c.span[&writer]);
        let ran = c.once(writer, trial, Some(delay));
        assert_ne!(
            ran,
            Ran::Finished(false),
            "trial {trial}: {writer:?} failed without a kill"
        );
        let killed = ran == Ran::Killed;
        let outcome = Outcome {
            killed,
            recovery: c.recover(writer, trial),
        };
        c.check(trial);
        let row = table.entry(writer).or_default();
        row.0 += 1;
        row.1 += usize::from(outcome.killed);
        println!(
            "trial {trial:>4} {writer:<15?} kill at {:>6} ms: {}{}",
            delay.as_millis(),
            if outcome.killed {
                "killed mid-way"
            } else {
                "finished first"
            },
            outcome
                .recovery
                .map(|r| format!(", {r}"))
                .unwrap_or_default()
        );
    }
    println!("{:<15} {:>7} {:>7}", "writer", "trials", "killed");
    for (writer, (runs, killed)) in &table {
        println!("{:<15} {runs:>7} {killed:>7}", format!("{writer:?}"));
    }
    let killed: usize = table.values().map(|(_, k)| k).sum();
    println!(
        "{trials} trials, {killed} killed mid-way, every vault verified and restored after each"
    );
    assert!(
        killed * 3 >= trials,
        "only {killed} of {trials} trials were killed mid-way; the kill windows are off"
    );
}
