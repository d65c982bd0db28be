//! Vaults made by older builds keep working: committed fixture vaults of each format version
//! (`tests/fixtures/format-N`, made as `tests/fixtures/README.md` says), the current one
//! included, are opened, listed, restored bit for bit, verified and replicated by this build.
//! A fixture is copied to a temporary directory first, so no test changes the committed files.

mod common;

use dr_vault::format::ChunkerParams;
use dr_vault::{InitOptions, KdfParams, NoProgress, Passphrase, SourceSpec, Storage, Vault};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

const FIXTURE_PASSPHRASE: &str = "fixture passphrase";

fn passphrase() -> Passphrase {
    Passphrase::new(FIXTURE_PASSPHRASE)
}

fn fixture(version: u32) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/fixtures/format-{version}"))
}

fn write(path: &Path, content: &[u8]) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, content).unwrap();
}

fn set_mode(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(mode)).unwrap();
}

/// Pseudo-random bytes (xorshift): incompressible, and the same on every machine.
fn noise(len: usize, mut x: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// The source tree of the fixture's snapshot `generation` (1 or 2): pipeline files, a
/// script, an empty directory, a symlink and a 96 KiB binary that the fixture's small
/// chunker cuts into several chunks. Generation 2 changes one file, edits the middle of the
/// binary and adds a file, so the second snapshot shares most of its data with the first.
fn fixture_tree(root: &Path, generation: u32) {
    write(
        &root.join(".gitlab-ci.yml"),
        b"stages: [build, test, deploy]\n",
    );
    write(
        &root.join("scripts/deploy.sh"),
        b"#!/bin/sh\nexec ./deploy\n",
    );
    set_mode(&root.join("scripts/deploy.sh"), 0o750);
    let region: &[u8] = if generation == 1 {
        b"region = \"eu-west-1\"\n"
    } else {
        b"region = \"eu-central-1\"\n"
    };
    write(&root.join("env/prod.tfvars"), region);
    let mut tool = noise(96 * 1024, 7);
    if generation == 2 {
        tool[48 * 1024..48 * 1024 + 16].copy_from_slice(b"patched in gen 2");
        write(
            &root.join("env/staging.tfvars"),
            b"region = \"us-east-1\"\n",
        );
    }
    write(&root.join("artifacts/tool.bin"), &tool);
    std::fs::create_dir_all(root.join("cache")).unwrap();
    std::os::unix::fs::symlink("scripts/deploy.sh", root.join("deploy")).unwrap();
}

/// Every path under `root` with its kind, content (or link target) and permission bits.
fn describe(root: &Path) -> Vec<(String, String, u32)> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let meta = std::fs::symlink_metadata(&path).unwrap();
            let rel = path.strip_prefix(root).unwrap().display().to_string();
            let content = if meta.is_symlink() {
                format!("-> {}", std::fs::read_link(&path).unwrap().display())
            } else if meta.is_file() {
                blake3::hash(&std::fs::read(&path).unwrap())
                    .to_hex()
                    .to_string()
            } else {
                stack.push(path.clone());
                "dir".to_string()
            };
            let mode = std::os::unix::fs::PermissionsExt::mode(&meta.permissions()) & 0o7777;
            out.push((rel, content, if meta.is_symlink() { 0 } else { mode }));
        }
    }
    out.sort();
    out
}

/// A copy of the committed fixture in a new temporary directory.
fn copy_of(version: u32) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let to = dir.path().join(format!("format-{version}"));
    let from = fixture(version);
    for entry in walkdir::WalkDir::new(&from) {
        let entry = entry.unwrap();
        let target = to.join(entry.path().strip_prefix(&from).unwrap());
        if entry.file_type().is_dir() {
            std::fs::create_dir_all(&target).unwrap();
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
    (dir, to)
}

/// Opens, lists, restores (each snapshot bit for bit), verifies with the data read, and
/// replicates a fixture into a vault of this build's format, which then restores the same.
async fn an_old_vault_keeps_working(version: u32) {
    let (dir, root) = copy_of(version);
    let vault = Vault::open(Storage::local(&root, false).unwrap(), &passphrase())
        .await
        .unwrap();
    assert_eq!(vault.config().format_version, version);

    let snapshots = vault.snapshots().await.unwrap();
    assert_eq!(snapshots.len(), 2, "{snapshots:?}");
    let verify = vault.verify(true, &NoProgress).await.unwrap();
    assert!(verify.is_clean(), "{verify:?}");
    assert!(verify.blobs_checked > 4, "{verify:?}");

    let standby_root = dir.path().join("standby");
    let mut standby_opts = InitOptions::new("standby", "us-east-1");
    standby_opts.kdf = KdfParams::INSECURE_FOR_TESTS;
    let standby = Vault::init(
        Storage::local(&standby_root, true).unwrap(),
        &standby_opts,
        &passphrase(),
    )
    .await
    .unwrap();
    assert_eq!(
        standby.config().format_version,
        dr_vault::format::FORMAT_VERSION
    );
    let plan = vault.plan_replication(&standby).await.unwrap();
    assert_eq!(plan.to_copy.len(), 2);
    vault.replicate(&standby, &plan, &NoProgress).await.unwrap();
    assert!(standby.verify(true, &NoProgress).await.unwrap().is_clean());

    // A standby shares the key of a vault of this build's format only (older ones chunk with
    // another key): refused, and nothing is written.
    let sharing_root = dir.path().join("sharing");
    let shared = Vault::init_sharing_key(
        Storage::local(&sharing_root, true).unwrap(),
        &standby_opts,
        &passphrase(),
        &vault,
    )
    .await;
    if version < dr_vault::format::FORMAT_VERSION {
        let err = shared.err().expect("refused");
        assert_eq!(err.kind, dr_vault::ErrorKind::InvalidInput, "{err}");
        assert!(!sharing_root.join("config").exists());
    } else {
        assert!(shared.unwrap().shares_key_with(&vault));
    }

    for (generation, info) in (1..).zip(&snapshots) {
        let expected = dir.path().join(format!("expected-{generation}"));
        fixture_tree(&expected, generation);
        let digest =
            dr_vault::sources::source_digest(&[SourceSpec::new("ci", &expected)], None, false)
                .unwrap();
        assert_eq!(info.source_digest, digest, "snapshot {generation}");
        for (from, name) in [(&vault, "old"), (&standby, "standby")] {
            let out = dir.path().join(format!("{name}-{generation}"));
            from.restore(&info.id, &out, Some("ci"), &NoProgress)
                .await
                .unwrap();
            assert_eq!(
                describe(&out),
                describe(&expected),
                "snapshot {generation} restored from the {name} vault"
            );
        }
    }
}

#[tokio::test]
async fn a_format_1_vault_opens_lists_restores_verifies_and_replicates() {
    an_old_vault_keeps_working(1).await;
}

#[tokio::test]
async fn a_format_2_vault_opens_lists_restores_verifies_and_replicates() {
    an_old_vault_keeps_working(2).await;
}

/// The format this build writes, frozen when it was current: every later build must still
/// open it, its records and its policy included.
#[tokio::test]
async fn a_format_3_vault_opens_lists_restores_verifies_and_replicates() {
    an_old_vault_keeps_working(3).await;
    let (_dir, root) = copy_of(3);
    let vault = Vault::open(Storage::local(&root, false).unwrap(), &passphrase())
        .await
        .unwrap();
    assert_eq!(
        vault.record(FIXTURE_RECORD).await.unwrap(),
        Some(fixture_record())
    );
    assert_eq!(
        vault.policy().await.unwrap().lock_for_seconds,
        Some(FIXTURE_LOCK_SECONDS)
    );
}

/// The record and policy the format 3 fixture holds besides its snapshots.
const FIXTURE_RECORD: &str = "pairs/fixture";
const FIXTURE_LOCK_SECONDS: u64 = 60;

fn fixture_record() -> serde_json::Value {
    serde_json::json!({"name": "fixture", "rpo": "15m", "rto": "1h", "active": "primary"})
}

/// This build keeps writing an old vault in its own format (so the build that made it still
/// reads it), and a format 1 vault raised to 2 by hand reads its JSON manifests as parents of
/// binary ones: unchanged files are not read again.
#[tokio::test]
async fn this_build_writes_old_vaults_in_their_own_format() {
    let (dir, root) = copy_of(1);
    let tree = dir.path().join("tree");
    fixture_tree(&tree, 2);
    let specs = [SourceSpec::new("ci", &tree)];
    let storage = Storage::local(&root, false).unwrap();
    let v1 = Vault::open(storage.clone(), &passphrase()).await.unwrap();
    let third = v1
        .snapshot(&specs, &BTreeMap::new(), &NoProgress)
        .await
        .unwrap();
    let manifest = |id: &str| std::fs::read(root.join("snapshots").join(id)).unwrap();
    drop(v1);
    common::edit_config(&root, |config| {
        assert_eq!(config["format_version"], 1, "written as format 1");
        assert!(config.get("mac").is_none());
        config["format_version"] = 2.into();
    });

    let v2 = Vault::open(storage, &passphrase()).await.unwrap();
    std::fs::write(tree.join("env/prod.tfvars"), "region = \"ap-south-1\"\n").unwrap();
    let fourth = v2
        .snapshot(&specs, &BTreeMap::new(), &NoProgress)
        .await
        .unwrap();
    assert_eq!(
        fourth.files_read, 1,
        "the JSON parent's entries were reused"
    );
    assert_ne!(manifest(&third.id), manifest(&fourth.id));
    let out = dir.path().join("out");
    v2.restore(&fourth.id, &out, Some("ci"), &NoProgress)
        .await
        .unwrap();
    assert_eq!(describe(&out), describe(&tree));
    assert!(v2.verify(true, &NoProgress).await.unwrap().is_clean());
}

/// Writes the fixture of the current format, `tests/fixtures/format-N` (N = this build's
/// format), unless it exists: run once when a format is introduced, with
/// `cargo test -p dr-vault --test old_formats -- --ignored`. The fixtures of formats 1 and 2
/// were written the same way by the format 2 build at `d3de3c6` (see the README there).
#[tokio::test]
#[ignore = "writes the committed fixtures; see tests/fixtures/README.md"]
async fn write_the_current_format_fixture() {
    let version = dr_vault::format::FORMAT_VERSION;
    let root = fixture(version);
    assert!(!root.exists(), "{} exists: not overwritten", root.display());
    let mut opts = InitOptions::new(&format!("fixture-v{version}"), "eu-west-1");
    opts.kdf = KdfParams::INSECURE_FOR_TESTS;
    opts.pack_size = 64 * 1024;
    opts.chunker = ChunkerParams {
        min_size: 2 * 1024,
        avg_size: 8 * 1024,
        max_size: 32 * 1024,
    };
    let storage = Storage::local(&root, true).unwrap();
    let vault = Vault::init(storage, &opts, &passphrase()).await.unwrap();
    let sources = tempfile::tempdir().unwrap();
    for generation in [1, 2] {
        let tree = sources.path().join(format!("gen-{generation}"));
        fixture_tree(&tree, generation);
        let labels = BTreeMap::from([("generation".to_string(), generation.to_string())]);
        vault
            .snapshot(&[SourceSpec::new("ci", &tree)], &labels, &NoProgress)
            .await
            .unwrap();
    }
    vault
        .put_record(FIXTURE_RECORD, &fixture_record())
        .await
        .unwrap();
    vault
        .set_policy(&dr_vault::Policy {
            lock_for_seconds: Some(FIXTURE_LOCK_SECONDS),
        })
        .await
        .unwrap();
}
