//! drctl as users run it: the real binary, its output and its exit codes.

use acceptance_tests::drctl_with_passphrase as drctl;
use std::path::Path;
use std::process::{Command, Output};

/// The test suite's build of drctl, with the test switches (`DR_TEST_INSECURE_KDF`).
fn bin() -> std::path::PathBuf {
    acceptance_tests::drctl_bin()
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn init_snapshot_list_restore_verify() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::create_dir_all(d.join("ci/scripts")).unwrap();
    std::fs::write(d.join("ci/pipeline.yml"), "stages: [deploy]\n").unwrap();
    std::fs::write(d.join("ci/scripts/deploy.sh"), "echo hi\n").unwrap();
    std::fs::write(d.join("prod.tfstate"), "{\"serial\": 3}\n").unwrap();
    let p = Some("s3cret-pass");

    let out = drctl(
        d,
        p,
        &[
            "vault",
            "--vault",
            "vault",
            "init",
            "--name",
            "primary",
            "--region",
            "eu-west-1",
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("created vault \"primary\""));

    let out = drctl(
        d,
        p,
        &[
            "vault",
            "--vault",
            "vault",
            "snapshot",
            "--source",
            "ci=ci",
            "--source",
            "state=prod.tfstate",
            "--json",
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["files"], 3);

    let out = drctl(d, p, &["vault", "--vault", "vault", "snapshots", "--json"]);
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert_eq!(list[0]["sources"], serde_json::json!(["ci", "state"]));

    let out = drctl(
        d,
        p,
        &[
            "vault", "--vault", "vault", "restore", "latest", "--target", "out", "--source", "ci",
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        std::fs::read_to_string(d.join("out/scripts/deploy.sh")).unwrap(),
        "echo hi\n"
    );

    let out = drctl(
        d,
        p,
        &["vault", "--vault", "vault", "verify", "--read-data"],
    );
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("no problems"));

    // A restore into a non-empty directory is refused with exit 2 and loses nothing.
    let out = drctl(
        d,
        p,
        &["vault", "--vault", "vault", "restore", "--target", "out"],
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("is not empty"));
}

#[test]
fn errors_have_documented_exit_codes_and_never_echo_the_passphrase() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    assert!(drctl(
        d,
        Some("right"),
        &["vault", "--vault", "v", "init", "--name", "v", "--region", "r"]
    )
    .status
    .success());

    let wrong = drctl(
        d,
        Some("wrong-guess"),
        &["vault", "--vault", "v", "snapshots"],
    );
    assert_eq!(wrong.status.code(), Some(4));
    assert!(text(&wrong).contains("no key of the vault") && !text(&wrong).contains("wrong-guess"));

    let missing = drctl(
        d,
        Some("right"),
        &["vault", "--vault", "nowhere", "snapshots"],
    );
    assert_eq!(missing.status.code(), Some(3));
    assert!(text(&missing).contains("hint:"));

    let no_pass = drctl(d, None, &["vault", "--vault", "v", "snapshots"]);
    assert_eq!(no_pass.status.code(), Some(2));
    assert!(text(&no_pass).contains("DR_PASSPHRASE"));

    let again = drctl(
        d,
        Some("right"),
        &[
            "vault", "--vault", "v", "init", "--name", "v", "--region", "r",
        ],
    );
    assert_eq!(again.status.code(), Some(2), "{}", text(&again));
    assert!(text(&again).contains("already exists"));

    let bad_name = drctl(
        d,
        Some("right"),
        &[
            "vault", "--vault", "w", "init", "--name", "Bad Name", "--region", "r",
        ],
    );
    assert_eq!(bad_name.status.code(), Some(2));
}

#[test]
fn help_explains_every_vault_command_and_the_exit_codes() {
    let out = Command::new(bin())
        .args(["vault", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    for cmd in [
        "init",
        "snapshot",
        "snapshots",
        "restore",
        "verify",
        "prune",
    ] {
        assert!(help.contains(cmd), "{help}");
    }
    let out = Command::new(bin())
        .args(["vault", "restore", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(
        help.contains("Exit status")
            && help.contains("wrong passphrase")
            && help.contains("DR_PASSPHRASE"),
        "{help}"
    );
}

#[test]
fn prune_prints_its_plan_honours_dry_run_and_lock_for() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let p = Some("pw");
    std::fs::create_dir_all(d.join("ci")).unwrap();
    assert!(drctl(
        d,
        p,
        &["vault", "--vault", "v", "init", "--name", "v", "--region", "r"]
    )
    .status
    .success());
    // Three snapshots, ten days apart, through the test clock.
    for (day, content) in [
        ("2026-11-01", "one"),
        ("2026-11-11", "two"),
        ("2026-11-21", "three"),
    ] {
        std::fs::write(d.join("ci/file.txt"), content).unwrap();
        let out = Command::new(bin())
            .args(["vault", "--vault", "v", "snapshot", "--source", "ci=ci"])
            .current_dir(d)
            .env("DR_PASSPHRASE", "pw")
            .env("DR_TEST_CLOCK", "1")
            .env("DR_TEST_NOW", format!("{day}T12:00:00Z"))
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", text(&out));
    }
    let at = |args: &[&str]| {
        Command::new(bin())
            .args(args)
            .current_dir(d)
            .env("DR_PASSPHRASE", "pw")
            .env("DR_TEST_CLOCK", "1")
            .env("DR_TEST_NOW", "2026-11-25T12:00:00Z")
            .output()
            .unwrap()
    };
    let dry = at(&[
        "vault",
        "--vault",
        "v",
        "prune",
        "--keep-within",
        "7d",
        "--dry-run",
    ]);
    assert!(dry.status.success(), "{}", text(&dry));
    assert!(text(&dry).contains("forget 2"), "{}", text(&dry));

    // lock_for 20d protects the 14-day-old snapshot: only the oldest goes.
    let out = at(&[
        "vault",
        "--vault",
        "v",
        "prune",
        "--keep-within",
        "7d",
        "--lock-for",
        "20d",
        "--json",
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let result: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(result["summary"]["snapshots_forgotten"], 1);
    assert_eq!(result["plan"]["locked"].as_array().unwrap().len(), 1);
    let list = at(&["vault", "--vault", "v", "snapshots", "--json"]);
    let list: serde_json::Value = serde_json::from_slice(&list.stdout).unwrap();
    assert_eq!(list.as_array().unwrap().len(), 2);
    assert!(at(&["vault", "--vault", "v", "verify", "--read-data"])
        .status
        .success());

    let bad = at(&["vault", "--vault", "v", "prune", "--keep-within", "soon"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(text(&bad).contains("--keep-within \"soon\" is not a duration"));
}

#[test]
fn replicate_to_a_standby_that_then_restores_alone() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let p = Some("pw");
    std::fs::create_dir_all(d.join("ci")).unwrap();
    std::fs::write(d.join("ci/pipeline.yml"), "stages: [deploy]\n").unwrap();
    for (vault, region) in [("primary", "eu-west-1"), ("standby", "us-east-1")] {
        assert!(drctl(
            d,
            p,
            &["vault", "--vault", vault, "init", "--name", vault, "--region", region]
        )
        .status
        .success());
    }
    assert!(drctl(
        d,
        p,
        &["vault", "--vault", "primary", "snapshot", "--source", "ci=ci"]
    )
    .status
    .success());
    let dry = drctl(
        d,
        p,
        &[
            "vault",
            "--vault",
            "primary",
            "replicate",
            "--to",
            "standby",
            "--dry-run",
        ],
    );
    assert!(text(&dry).contains("copy 1 snapshots"), "{}", text(&dry));
    let out = drctl(
        d,
        p,
        &[
            "vault",
            "--vault",
            "primary",
            "replicate",
            "--to",
            "standby",
            "--json",
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    let result: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(result["summary"]["snapshots_copied"], 1);
    std::fs::remove_dir_all(d.join("primary")).unwrap();
    let restored = drctl(
        d,
        p,
        &[
            "vault", "--vault", "standby", "restore", "--target", "rebuilt", "--source", "ci",
        ],
    );
    assert!(restored.status.success(), "{}", text(&restored));
    assert_eq!(
        std::fs::read_to_string(d.join("rebuilt/pipeline.yml")).unwrap(),
        "stages: [deploy]\n"
    );
}

#[test]
fn a_standby_made_with_key_from_shares_the_key_and_opens_with_its_own_passphrase() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::create_dir_all(d.join("ci")).unwrap();
    std::fs::write(d.join("ci/pipeline.yml"), "stages: [deploy]\n").unwrap();
    let init = |vault: &str, pw: &str, extra: &[&str]| {
        let mut args = vec![
            "vault",
            "--vault",
            vault,
            "init",
            "--name",
            vault,
            "--region",
            "us-east-1",
        ];
        args.extend_from_slice(extra);
        drctl(d, Some(pw), &args)
    };
    assert!(init("primary", "pw", &[]).status.success());

    // The primary's passphrase comes from --key-from-passphrase-file (here: not this vault's).
    std::fs::write(d.join("primary-pw"), "pw\n").unwrap();
    let made = init(
        "standby",
        "standby-pw",
        &[
            "--key-from",
            "primary",
            "--key-from-passphrase-file",
            "primary-pw",
        ],
    );
    assert!(made.status.success(), "{}", text(&made));
    assert!(
        text(&made).contains("shares the master key of primary"),
        "{}",
        text(&made)
    );
    assert!(!text(&made).contains("standby-pw"));

    // Wrong primary passphrase, or no vault there: refused with its exit code, nothing made.
    let wrong = init("other", "standby-pw", &["--key-from", "primary"]);
    assert_eq!(wrong.status.code(), Some(4), "{}", text(&wrong));
    let missing = init("other", "pw", &["--key-from", "nowhere"]);
    assert_eq!(missing.status.code(), Some(3), "{}", text(&missing));
    assert!(!d.join("other/config").exists());
    let orphan = drctl(
        d,
        Some("pw"),
        &[
            "vault",
            "--vault",
            "other",
            "init",
            "--name",
            "other",
            "--region",
            "x",
            "--key-from-option",
            "region=eu-west-1",
        ],
    );
    assert_eq!(orphan.status.code(), Some(2), "{}", text(&orphan));
    assert!(text(&orphan).contains("--key-from"), "{}", text(&orphan));

    // Replication copies the packs as they are; the standby restores with its own passphrase.
    assert!(drctl(
        d,
        Some("pw"),
        &["vault", "--vault", "primary", "snapshot", "--source", "ci=ci"]
    )
    .status
    .success());
    std::fs::write(d.join("standby-pw"), "standby-pw\n").unwrap();
    let copied = drctl(
        d,
        Some("pw"),
        &[
            "vault",
            "--vault",
            "primary",
            "replicate",
            "--to",
            "standby",
            "--to-passphrase-file",
            "standby-pw",
        ],
    );
    assert!(copied.status.success(), "{}", text(&copied));
    std::fs::remove_dir_all(d.join("primary")).unwrap();
    let restored = drctl(
        d,
        Some("standby-pw"),
        &[
            "vault", "--vault", "standby", "restore", "--target", "rebuilt", "--source", "ci",
        ],
    );
    assert!(restored.status.success(), "{}", text(&restored));
    assert_eq!(
        std::fs::read_to_string(d.join("rebuilt/pipeline.yml")).unwrap(),
        "stages: [deploy]\n"
    );
}

/// A full disk: the snapshot fails with an error that says so, and the vault is left as it
/// was: verify is clean, no snapshot is listed, and once space is back a snapshot succeeds.
/// The small disk is a 4 MiB tmpfs mounted in a private user and mount namespace
/// (`unshare -rm`), so the test needs no privileges and leaves no mount behind.
#[test]
fn a_full_disk_fails_the_snapshot_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::create_dir_all(d.join("disk")).unwrap();
    std::fs::create_dir_all(d.join("big")).unwrap();
    std::fs::create_dir_all(d.join("small")).unwrap();
    // 12 MiB that zstd cannot shrink, so the pack outgrows the disk.
    let noise = acceptance_tests::Rng::new(0x9E37_79B9_7F4A_7C15).bytes(12 << 20);
    std::fs::write(d.join("big/artifact.bin"), noise).unwrap();
    std::fs::write(d.join("small/pipeline.yml"), "stages: [deploy]\n").unwrap();

    let script = r#"
        set -u
        mount -t tmpfs -o size=4m tmpfs disk || exit 90
        "$DRCTL" vault --vault disk/vault init --name small --region eu-west-1 || exit 91
        "$DRCTL" vault --vault disk/vault snapshot --source big=big >snap.out 2>snap.err
        echo $? >snap.code
        "$DRCTL" vault --vault disk/vault snapshots --json >list.json || exit 92
        "$DRCTL" vault --vault disk/vault verify >verify.out 2>&1 || exit 93
        "$DRCTL" vault --vault disk/vault snapshot --source small=small >after.out 2>&1 || exit 94
        "$DRCTL" vault --vault disk/vault verify --read-data >>verify.out 2>&1 || exit 95
    "#;
    let out = Command::new("unshare")
        .args(["-rm", "sh", "-c", script])
        .current_dir(d)
        .env("DRCTL", bin())
        .env("DR_TEST_INSECURE_KDF", "1")
        .env("DR_PASSPHRASE", "disk-pass")
        .env_remove("DR_VAULT")
        .output()
        .expect("unshare (util-linux) runs the test in a private mount namespace");
    let read = |f: &str| std::fs::read_to_string(d.join(f)).unwrap_or_default();
    assert!(
        out.status.success(),
        "step failed with {:?}: {}\nsnapshot: {}\nverify: {}\nafter: {}",
        out.status.code(),
        text(&out),
        read("snap.err"),
        read("verify.out"),
        read("after.out")
    );
    assert_eq!(read("snap.code").trim(), "1", "a full disk is a failure");
    let err = read("snap.err");
    assert!(err.contains("disk holding the vault is full"), "{err}");
    assert!(!err.contains("disk-pass"));
    assert_eq!(
        read("list.json").trim(),
        "[]",
        "no half snapshot is visible"
    );
    assert!(
        read("after.out").contains("saved: 1 files"),
        "{}",
        read("after.out")
    );
}

/// A Terraform state file (format 4) of `lineage` at `serial`, with `marker` in its outputs so
/// versions of equal serial can differ.
fn state_file(dir: &Path, name: &str, lineage: &str, serial: u64, marker: &str) {
    let state = serde_json::json!({
        "version": 4, "terraform_version": "1.0.3", "serial": serial, "lineage": lineage,
        "outputs": {"marker": {"value": marker, "type": "string"}}, "resources": []
    });
    std::fs::write(dir.join(name), serde_json::to_vec_pretty(&state).unwrap()).unwrap();
}

fn state_vault(d: &Path) {
    let out = drctl(
        d,
        Some("p"),
        &[
            "vault", "--vault", "v", "init", "--name", "s", "--region", "r",
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
}

/// State versions are ordered by Terraform, not by clocks (issue 12, item 2): pushing serial 3
/// after serial 5 of the same lineage is refused (exit 1, naming both serials), so pull and
/// rebuild keep restoring serial 5; another lineage is refused too; --force makes the pushed
/// version current, as `terraform state push -force` does.
#[test]
fn state_push_refuses_older_serials_and_other_lineages_and_pull_takes_the_highest_serial() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    state_vault(d);
    let p = Some("p");
    let push = |file: &str, extra: &[&str]| {
        let mut args = vec!["state", "push", "v", "--state", file];
        args.extend_from_slice(extra);
        drctl(d, p, &args)
    };
    let pulled_serial = |extra: &[&str]| {
        let _ = std::fs::remove_file(d.join("out.tfstate"));
        let mut args = vec!["state", "pull", "v", "--out", "out.tfstate"];
        args.extend_from_slice(extra);
        let out = drctl(d, p, &args);
        assert!(out.status.success(), "{}", text(&out));
        let v: serde_json::Value =
            serde_json::from_slice(&std::fs::read(d.join("out.tfstate")).unwrap()).unwrap();
        (
            v["serial"].as_u64().unwrap(),
            v["lineage"].as_str().unwrap().to_string(),
        )
    };
    state_file(d, "s5.tfstate", "lin-a", 5, "five");
    state_file(d, "s3.tfstate", "lin-a", 3, "three");
    state_file(d, "s5b.tfstate", "lin-a", 5, "other five");
    state_file(d, "b9.tfstate", "lin-b", 9, "b");
    state_file(d, "s6.tfstate", "lin-a", 6, "six");

    let out = push("s5.tfstate", &[]);
    assert!(out.status.success(), "{}", text(&out));
    for (file, names) in [
        ("s3.tfstate", ["serial 5", "serial 3"]),
        ("s5b.tfstate", ["serial 5", "same serial"]),
        ("b9.tfstate", ["lineage lin-a", "lineage lin-b"]),
    ] {
        let out = push(file, &[]);
        assert_eq!(out.status.code(), Some(1), "{file}: {}", text(&out));
        for name in names {
            assert!(text(&out).contains(name), "{file}: {}", text(&out));
        }
        assert!(text(&out).contains("--force"), "{}", text(&out));
    }
    assert_eq!(pulled_serial(&[]), (5, "lin-a".into()));

    // A newer serial is pushed as usual; the history marks it current.
    assert!(push("s6.tfstate", &[]).status.success());
    assert_eq!(pulled_serial(&[]), (6, "lin-a".into()));
    // --force: the older serial becomes current (a deliberate rollback), then another lineage.
    let out = push("s3.tfstate", &["--force"]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(pulled_serial(&[]), (3, "lin-a".into()));
    assert!(push("b9.tfstate", &["--force"]).status.success());
    assert_eq!(pulled_serial(&[]), (9, "lin-b".into()));
    let history = drctl(d, p, &["state", "history", "v", "--json"]);
    let rows: serde_json::Value = serde_json::from_slice(&history.stdout).unwrap();
    let current: Vec<u64> = rows
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["current"] == true)
        .map(|r| r["state"]["serial"].as_u64().unwrap())
        .collect();
    assert_eq!(current, [9]);

    // Pull refuses to replace newer state or another lineage with the same exit status.
    state_file(d, "mine.tfstate", "lin-b", 12, "mine");
    let out = drctl(d, p, &["state", "pull", "v", "--out", "mine.tfstate"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("serial 12") && text(&out).contains("serial 9"),
        "{}",
        text(&out)
    );

    // A --snapshot prefix that matches several versions lists them instead of picking one.
    let ids: Vec<String> = rows
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["snapshot"].as_str().unwrap().to_string())
        .collect();
    let shared = (1..64)
        .rev()
        .map(|n| &ids[0][..n])
        .find(|prefix| ids.iter().filter(|id| id.starts_with(prefix)).count() > 1);
    let ambiguous = shared.unwrap_or("");
    let out = drctl(
        d,
        p,
        &[
            "state",
            "pull",
            "v",
            "--out",
            "x.tfstate",
            "--snapshot",
            ambiguous,
        ],
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("matches"), "{}", text(&out));
    assert!(!d.join("x.tfstate").exists());
}

/// A FIFO in a source never blocks a snapshot (issue 12, item 4): it is left out and counted.
#[test]
fn a_fifo_in_a_source_is_left_out_and_the_snapshot_finishes() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::create_dir(d.join("ci")).unwrap();
    std::fs::write(d.join("ci/pipeline.yml"), "stages: []\n").unwrap();
    let made = Command::new("mkfifo")
        .arg(d.join("ci/pipe"))
        .status()
        .unwrap();
    assert!(made.success());
    state_vault(d);
    let mut child = Command::new(bin())
        .args([
            "vault", "--vault", "v", "snapshot", "--source", "ci=ci", "--json",
        ])
        .current_dir(d)
        .env("DR_TEST_INSECURE_KDF", "1")
        .env("DR_PASSPHRASE", "p")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let started = std::time::Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > std::time::Duration::from_secs(60) {
            let _ = child.kill();
            panic!("the snapshot hung on the FIFO");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["special_files_skipped"], 1);
    assert_eq!(summary["files"], 1);
}

/// The push order is the vault's own (a generation each push records), not the pushing
/// machines' clocks: a forced rollback pushed from a machine whose clock is years behind still
/// becomes current. History written by older builds (no generation, no --force on push)
/// counts its lineage switches as forced, so its newest lineage stays current.
#[test]
fn state_order_survives_a_skewed_clock_and_reads_history_of_older_builds() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    state_vault(d);
    let at = |now: &str, args: &[&str]| {
        let out = Command::new(bin())
            .args(args)
            .current_dir(d)
            .env("DR_TEST_INSECURE_KDF", "1")
            .env("DR_TEST_CLOCK", "1")
            .env("DR_TEST_NOW", now)
            .env("DR_PASSPHRASE", "p")
            .env_remove("DR_VAULT")
            .output()
            .unwrap();
        assert!(out.status.success(), "{args:?}: {}", text(&out));
        out
    };
    let pulled = |now: &str| {
        let _ = std::fs::remove_file(d.join("out.tfstate"));
        at(now, &["state", "pull", "v", "--out", "out.tfstate"]);
        let v: serde_json::Value =
            serde_json::from_slice(&std::fs::read(d.join("out.tfstate")).unwrap()).unwrap();
        (
            v["serial"].as_u64().unwrap(),
            v["lineage"].as_str().unwrap().to_string(),
        )
    };
    // History as an older drctl wrote it: plain snapshots of the state series, lineage A
    // then lineage B, with no generation.
    for (lineage, serial, day) in [("lin-a", 7, "01"), ("lin-b", 2, "02")] {
        std::fs::create_dir_all(d.join(format!("old-{lineage}"))).unwrap();
        state_file(
            &d.join(format!("old-{lineage}")),
            "terraform.tfstate",
            lineage,
            serial,
            lineage,
        );
        at(
            &format!("2026-10-{day}T00:00:00Z"),
            &[
                "vault",
                "--vault",
                "v",
                "snapshot",
                "--source",
                &format!("state=old-{lineage}"),
                "--label",
                "kind=terraform-state",
                "--label",
                &format!("lineage={lineage}"),
                "--label",
                &format!("serial={serial}"),
                "--label",
                &format!("state_digest=old-{lineage}"),
            ],
        );
    }
    assert_eq!(pulled("2026-11-01T00:00:00Z"), (2, "lin-b".into()));

    // New pushes: serial 5 of lineage B today, then a forced rollback to serial 3 from a
    // machine whose clock says 2001, then serial 4 from the same machine.
    state_file(d, "b5.tfstate", "lin-b", 5, "b5");
    state_file(d, "b3.tfstate", "lin-b", 3, "b3");
    state_file(d, "b4.tfstate", "lin-b", 4, "b4");
    at(
        "2026-11-01T00:00:00Z",
        &["state", "push", "v", "--state", "b5.tfstate"],
    );
    assert_eq!(pulled("2026-11-01T00:00:00Z"), (5, "lin-b".into()));
    at(
        "2001-01-01T00:00:00Z",
        &["state", "push", "v", "--state", "b3.tfstate", "--force"],
    );
    assert_eq!(pulled("2026-11-01T00:00:00Z"), (3, "lin-b".into()));
    at(
        "2001-01-02T00:00:00Z",
        &["state", "push", "v", "--state", "b4.tfstate"],
    );
    assert_eq!(pulled("2026-11-01T00:00:00Z"), (4, "lin-b".into()));
}
