//! The engine end to end on a local vault: init/open, snapshot, dedup and change detection,
//! restore bit for bit, verify, and the errors users meet.

mod common;

use dr_vault::{
    ErrorKind, InitOptions, KdfParams, NoProgress, Passphrase, SourceSpec, Storage, Vault,
};
use std::collections::BTreeMap;
use std::path::Path;

fn opts() -> InitOptions {
    let mut o = InitOptions::new("primary", "eu-west-1");
    o.kdf = KdfParams::INSECURE_FOR_TESTS;
    o.pack_size = 64 * 1024;
    o
}

fn pass() -> Passphrase {
    Passphrase::new("correct horse battery staple")
}

fn write(path: &Path, content: &[u8]) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, content).unwrap();
}

/// A temporary directory holding the sample tree (`src`) and a new local vault (`root`).
struct LocalVault {
    dir: tempfile::TempDir,
    src: std::path::PathBuf,
    root: std::path::PathBuf,
    storage: Storage,
    vault: Vault,
}

impl LocalVault {
    /// One snapshot of the sample tree, as source `ci`.
    async fn snapshot_tree(&self) -> dr_vault::SnapshotSummary {
        self.vault
            .snapshot(
                &[SourceSpec::new("ci", &self.src)],
                &BTreeMap::new(),
                &NoProgress,
            )
            .await
            .unwrap()
    }

    async fn with_tree() -> LocalVault {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("src");
        tree(&src);
        let root = dir.path().join("vault");
        let storage = Storage::local(&root, true).unwrap();
        let vault = Vault::init(storage.clone(), &opts(), &pass())
            .await
            .unwrap();
        LocalVault {
            dir,
            src,
            root,
            storage,
            vault,
        }
    }
}

/// A small tree: text files, a nested dir, a 3 MiB pseudo-random binary, a symlink.
fn tree(root: &Path) {
    write(&root.join(".gitlab-ci.yml"), b"stages: [build, deploy]\n");
    write(&root.join("scripts/deploy.sh"), b"#!/bin/sh\necho deploy\n");
    write(&root.join("env/prod.tfvars"), b"region = \"eu-west-1\"\n");
    let mut big = Vec::with_capacity(3 << 20);
    let mut x: u64 = 42;
    while big.len() < 3 << 20 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        big.extend_from_slice(&x.to_le_bytes());
    }
    write(&root.join("artifacts/tool.bin"), &big);
    std::os::unix::fs::symlink("scripts/deploy.sh", root.join("deploy")).unwrap();
    std::fs::set_permissions(
        root.join("scripts/deploy.sh"),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
}

/// Rewrites the format version in a local vault's (plain JSON) config, as a newer build would
/// have written it.
fn set_format_version(vault_root: &Path, version: u32) {
    common::edit_config(vault_root, |c| c["format_version"] = version.into());
}

/// Sets the modification time of every pack of a local vault `age` back, as if they had been
/// written that long ago (prune leaves packs younger than the lock window alone).
fn backdate_packs(vault_root: &Path, age: std::time::Duration) {
    let then = std::time::SystemTime::now() - age;
    for dir in std::fs::read_dir(vault_root.join("data")).unwrap() {
        for pack in std::fs::read_dir(dir.unwrap().path()).unwrap() {
            let file = std::fs::File::options()
                .append(true)
                .open(pack.unwrap().path())
                .unwrap();
            file.set_modified(then).unwrap();
        }
    }
}

const TWO_HOURS: std::time::Duration = std::time::Duration::from_secs(2 * 3600);

fn assert_same_tree(a: &Path, b: &Path) {
    let list = |root: &Path| -> Vec<(String, String, u32)> {
        let mut out: Vec<_> = walkdir_like(root)
            .into_iter()
            .map(|p| {
                let meta = std::fs::symlink_metadata(&p).unwrap();
                let rel = p.strip_prefix(root).unwrap().display().to_string();
                let content = if meta.file_type().is_symlink() {
                    std::fs::read_link(&p).unwrap().display().to_string()
                } else if meta.is_file() {
                    blake3::hash(&std::fs::read(&p).unwrap())
                        .to_hex()
                        .to_string()
                } else {
                    String::new()
                };
                (
                    rel,
                    content,
                    std::os::unix::fs::PermissionsExt::mode(&meta.permissions()) & 0o7777,
                )
            })
            .collect();
        out.sort();
        out
    };
    assert_eq!(list(a), list(b));
}

fn walkdir_like(root: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            out.push(p.clone());
            if std::fs::symlink_metadata(&p).unwrap().is_dir() {
                stack.push(p);
            }
        }
    }
    out
}

#[tokio::test]
async fn snapshot_restore_round_trip_dedup_and_change_detection() {
    let LocalVault {
        dir,
        src,
        storage,
        vault,
        ..
    } = LocalVault::with_tree().await;
    let specs = vec![SourceSpec::new("pipelines", &src)];

    let first = vault
        .snapshot(&specs, &BTreeMap::new(), &NoProgress)
        .await
        .unwrap();
    assert_eq!(first.files, 4);
    assert_eq!(first.files_read, 4);
    assert!(first.bytes_new >= 3 << 20);
    assert_eq!(
        vault.source_digest(&specs).await.unwrap(),
        first.source_digest,
        "digest matches with nothing changed"
    );

    // No change: nothing is read, nothing new is stored but the manifest.
    let second = vault
        .snapshot(&specs, &BTreeMap::new(), &NoProgress)
        .await
        .unwrap();
    assert_eq!(second.files_read, 0);
    assert_eq!(second.bytes_new, 0);
    assert_eq!(second.source_digest, first.source_digest);

    // One small change: only that file is read; the big binary is not re-stored.
    write(&src.join("env/prod.tfvars"), b"region = \"eu-central-1\"\n");
    assert_ne!(
        vault.source_digest(&specs).await.unwrap(),
        first.source_digest
    );
    let third = vault
        .snapshot(&specs, &BTreeMap::new(), &NoProgress)
        .await
        .unwrap();
    assert_eq!(third.files_read, 1);
    assert!(third.bytes_new < 100, "{third:?}");

    // Reopen from scratch and restore the latest, bit for bit.
    let reopened = Vault::open(storage.clone(), &pass()).await.unwrap();
    let out = dir.path().join("restored");
    let summary = reopened
        .restore("latest", &out, Some("pipelines"), &NoProgress)
        .await
        .unwrap();
    assert_eq!(summary.files, 4);
    assert_same_tree(&src, &out);

    // Whole-snapshot restore puts each source under its name; an old snapshot restores too.
    let old = dir.path().join("old");
    reopened
        .restore(&first.id[..10], &old, None, &NoProgress)
        .await
        .unwrap();
    assert_eq!(
        std::fs::read(old.join("pipelines/env/prod.tfvars")).unwrap(),
        b"region = \"eu-west-1\"\n"
    );

    let report = reopened.verify(true, &NoProgress).await.unwrap();
    assert!(report.is_clean(), "{report:?}");
    assert_eq!(report.snapshots, 3);
    assert!(report.blobs_checked >= 4);
    assert_eq!(reopened.snapshots().await.unwrap().len(), 3);
}

#[tokio::test]
async fn opening_fails_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let storage = Storage::local(&dir.path().join("vault"), true).unwrap();
    Vault::init(storage.clone(), &opts(), &pass())
        .await
        .unwrap();

    let again = Vault::init(storage.clone(), &opts(), &pass())
        .await
        .err()
        .unwrap();
    assert_eq!(again.kind, ErrorKind::AlreadyExists);

    let wrong = Vault::open(storage.clone(), &Passphrase::new("nope"))
        .await
        .err()
        .unwrap();
    assert_eq!(wrong.kind, ErrorKind::WrongPassphrase);
    assert!(
        !wrong.to_string().contains("nope"),
        "the passphrase is never echoed"
    );

    let empty = Storage::local(&dir.path().join("empty"), true).unwrap();
    assert_eq!(
        Vault::open(empty, &pass()).await.err().unwrap().kind,
        ErrorKind::NotFound
    );

    set_format_version(&dir.path().join("vault"), 99);
    let newer = Vault::open(storage, &pass()).await.err().unwrap();
    assert_eq!(newer.kind, ErrorKind::UnsupportedVersion);
    assert!(newer.guidance.unwrap().contains("upgrade"));
}

/// The scan streams into the snapshot, but a missing source, a bad glob or a source that is
/// a FIFO stops it before it writes anything for the sources before it.
#[tokio::test]
async fn a_missing_second_source_fails_the_snapshot_before_anything_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    tree(&src);
    let storage = Storage::local(&dir.path().join("vault"), true).unwrap();
    let vault = Vault::init(storage.clone(), &opts(), &pass())
        .await
        .unwrap();
    let gone = dir.path().join("gone");
    let mut bad_glob = SourceSpec::new("c", &src);
    bad_glob.exclude = vec!["[".into()];
    let fifo = dir.path().join("pipe");
    rustix::fs::mknodat(
        rustix::fs::CWD,
        &fifo,
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from_raw_mode(0o600),
        0,
    )
    .unwrap();
    for second in [
        SourceSpec::new("b", &gone),
        bad_glob,
        SourceSpec::new("d", &fifo),
    ] {
        let err = vault
            .snapshot(
                &[SourceSpec::new("a", &src), second],
                &BTreeMap::new(),
                &NoProgress,
            )
            .await
            .err()
            .unwrap();
        let text = err.to_string();
        assert!(
            text.contains("gone") || text.contains("\"[\"") || text.contains("FIFO"),
            "{err}"
        );
        assert!(storage.list("data").await.unwrap().is_empty());
        assert!(vault.snapshots().await.unwrap().is_empty());
    }
}

#[tokio::test]
async fn corruption_is_reported_naming_the_object() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    tree(&src);
    let storage = Storage::local(&dir.path().join("vault"), true).unwrap();
    // The chunker is keyed per vault, so with the default bounds (up to 4 MiB) the 3 MiB file
    // is at times one chunk and the whole tree one pack. Chunks of at most 256 KiB always
    // spread it over several.
    let mut small_chunks = opts();
    small_chunks.chunker = dr_vault::format::ChunkerParams {
        min_size: 16 * 1024,
        avg_size: 64 * 1024,
        max_size: 256 * 1024,
    };
    let vault = Vault::init(storage.clone(), &small_chunks, &pass())
        .await
        .unwrap();
    vault
        .snapshot(&[SourceSpec::new("p", &src)], &BTreeMap::new(), &NoProgress)
        .await
        .unwrap();
    let packs = storage.list("data").await.unwrap();
    assert!(
        packs.len() >= 3,
        "small chunks and packs spread data over packs"
    );

    // A flipped byte in one pack, a truncated pack and a missing pack.
    let pack_path = |k: &str| dir.path().join("vault").join(k);
    let mut bytes = std::fs::read(pack_path(&packs[0].key)).unwrap();
    bytes[10] ^= 0xff;
    std::fs::write(pack_path(&packs[0].key), &bytes).unwrap();
    let truncated = std::fs::read(pack_path(&packs[1].key)).unwrap();
    std::fs::write(pack_path(&packs[1].key), &truncated[..truncated.len() / 2]).unwrap();
    std::fs::remove_file(pack_path(&packs[2].key)).unwrap();

    let report = vault.verify(true, &NoProgress).await.unwrap();
    let named = |k: &str| report.problems.iter().any(|p| p.object.ends_with(k));
    assert!(named(&packs[0].key), "flipped byte: {report:#?}");
    assert!(named(&packs[1].key), "truncation: {report:#?}");
    assert!(
        report
            .problems
            .iter()
            .any(|x| x.object.ends_with(&packs[2].key) && x.message.contains("missing")),
        "missing pack: {report:#?}"
    );

    // Restore fails with a named error and leaves no partial file behind.
    let out = dir.path().join("out");
    let err = vault
        .restore("latest", &out, None, &NoProgress)
        .await
        .err()
        .unwrap();
    assert!(
        matches!(err.kind, ErrorKind::Corrupt | ErrorKind::NotFound),
        "{err}"
    );
    let leftovers: Vec<_> = walkdir_like(&out)
        .into_iter()
        .filter(|p| p.to_string_lossy().contains(".dr-restore-"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[tokio::test]
async fn restore_refuses_a_non_empty_target_and_a_symlinked_one() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    tree(&src);
    let vault = Vault::init(Storage::memory(), &opts(), &pass())
        .await
        .unwrap();
    vault
        .snapshot(&[SourceSpec::new("p", &src)], &BTreeMap::new(), &NoProgress)
        .await
        .unwrap();
    let busy = dir.path().join("busy");
    write(&busy.join("keep.txt"), b"mine");
    let err = vault
        .restore("latest", &busy, None, &NoProgress)
        .await
        .err()
        .unwrap();
    assert_eq!(err.kind, ErrorKind::InvalidInput);
    assert_eq!(
        std::fs::read(busy.join("keep.txt")).unwrap(),
        b"mine",
        "nothing lost"
    );
    std::os::unix::fs::symlink(&busy, dir.path().join("link")).unwrap();
    let err = vault
        .restore("latest", &dir.path().join("link"), None, &NoProgress)
        .await
        .err()
        .unwrap();
    assert_eq!(err.kind, ErrorKind::UnsafePath);
}

#[tokio::test]
async fn include_and_exclude_globs_select_files() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    tree(&src);
    let vault = Vault::init(Storage::memory(), &opts(), &pass())
        .await
        .unwrap();
    let mut spec = SourceSpec::new("p", &src);
    spec.exclude = vec!["artifacts/**".into()];
    spec.include = vec!["**/*.sh".into(), "*.yml".into()];
    let s = vault
        .snapshot(&[spec], &BTreeMap::new(), &NoProgress)
        .await
        .unwrap();
    assert_eq!(s.files, 2, "{s:?}");
    let mut bad = SourceSpec::new("p", &src);
    bad.include = vec!["[".into()];
    let err = vault
        .snapshot(&[bad], &BTreeMap::new(), &NoProgress)
        .await
        .err()
        .unwrap();
    assert_eq!(err.kind, ErrorKind::InvalidInput);
    assert!(err.to_string().contains("\"[\""));
}

#[tokio::test]
async fn concurrent_snapshots_lose_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let storage = Storage::local(&dir.path().join("vault"), true).unwrap();
    Vault::init(storage.clone(), &opts(), &pass())
        .await
        .unwrap();
    // Four writers, each with its own open vault (as four processes would), sharing some data.
    let mut tasks = Vec::new();
    for i in 0..4 {
        let src = dir.path().join(format!("src{i}"));
        tree(&src);
        write(&src.join("own.txt"), format!("writer {i}\n").as_bytes());
        let storage = storage.clone();
        tasks.push(tokio::spawn(async move {
            let vault = Vault::open(storage, &pass()).await.unwrap();
            let mut labels = BTreeMap::new();
            labels.insert("writer".to_string(), i.to_string());
            vault
                .snapshot(&[SourceSpec::new("p", &src)], &labels, &NoProgress)
                .await
                .unwrap()
        }));
    }
    let mut ids = Vec::new();
    for t in tasks {
        ids.push(t.await.unwrap().id);
    }
    let vault = Vault::open(storage, &pass()).await.unwrap();
    assert!(vault.verify(true, &NoProgress).await.unwrap().is_clean());
    for (i, id) in ids.iter().enumerate() {
        let out = dir.path().join(format!("out{i}"));
        vault
            .restore(id, &out, Some("p"), &NoProgress)
            .await
            .unwrap();
        assert_same_tree(&dir.path().join(format!("src{i}")), &out);
    }
}

#[tokio::test]
async fn prune_plans_then_removes_only_what_retention_and_lock_for_allow() {
    use dr_vault::{locks, Retention};
    use std::time::Duration;
    let LocalVault {
        dir,
        src,
        root,
        storage,
        vault,
    } = LocalVault::with_tree().await;
    let spec = [SourceSpec::new("p", &src)];
    let mut ids = Vec::new();
    for i in 0..4 {
        // Each snapshot has data of its own (a 200 KiB file) so pruning frees real packs.
        let own: Vec<u8> = (0..200 * 1024)
            .map(|b| (b * (i + 7)) as u8 ^ (b >> 9) as u8)
            .collect();
        write(&src.join("artifacts/build.bin"), &own);
        ids.push(
            vault
                .snapshot(&spec, &BTreeMap::new(), &NoProgress)
                .await
                .unwrap()
                .id,
        );
    }
    backdate_packs(&root, TWO_HOURS);
    let now = time::OffsetDateTime::now_utc();

    // lock_for protects every young snapshot from any policy.
    let locked = Retention {
        keep_last: Some(1),
        lock_for: Some(Duration::from_secs(3600)),
        ..Default::default()
    };
    let plan = vault.plan_prune(&locked, now).await.unwrap();
    assert!(plan.forget.is_empty());
    assert_eq!(plan.locked.len(), 3);

    // keep_last 2: the two oldest go; the plan writes nothing until executed.
    let retention = Retention {
        keep_last: Some(2),
        ..Default::default()
    };
    let plan = vault.plan_prune(&retention, now).await.unwrap();
    let forgotten: Vec<&str> = plan.forget.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(forgotten, [ids[0].as_str(), ids[1].as_str()]);
    assert!(
        plan.bytes_to_free > 0 && !plan.packs_to_delete.is_empty(),
        "{plan:?}"
    );
    assert_eq!(
        vault.snapshots().await.unwrap().len(),
        4,
        "planning changes nothing"
    );

    // A running snapshot's lock stops prune; released, prune goes ahead.
    let shared = locks::acquire(&storage, false, locks::LockTiming::default())
        .await
        .unwrap();
    let err = vault.prune(&plan).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::Locked);
    shared.release().await.unwrap();

    let summary = vault.prune(&plan).await.unwrap();
    assert_eq!(summary.snapshots_forgotten, 2);
    assert_eq!(summary.packs_deleted, plan.packs_to_delete.len());
    assert_eq!(vault.snapshots().await.unwrap().len(), 2);
    let report = vault.verify(true, &NoProgress).await.unwrap();
    assert!(report.is_clean(), "{report:#?}");
    let out = dir.path().join("out");
    vault
        .restore(&ids[3], &out, Some("p"), &NoProgress)
        .await
        .unwrap();
    assert_same_tree(&src, &out);
    let old = dir.path().join("old");
    vault
        .restore(&ids[2], &old, Some("p"), &NoProgress)
        .await
        .unwrap();
}

#[tokio::test]
async fn prune_sweeps_packs_an_interrupted_snapshot_left_behind_once_they_are_old() {
    let LocalVault {
        dir: _dir,
        src,
        root,
        storage,
        vault,
    } = LocalVault::with_tree().await;
    vault
        .snapshot(&[SourceSpec::new("p", &src)], &BTreeMap::new(), &NoProgress)
        .await
        .unwrap();
    // A pack no index lists, as a snapshot killed before its index would leave (named as
    // packs are: a name outside the layout would be foreign, and left alone).
    let orphan = format!("ff{}", "0".repeat(62));
    let orphan_key = format!("data/ff/{orphan}");
    storage
        .put_new(&orphan_key, bytes::Bytes::from_static(b"half a pack"))
        .await
        .unwrap();
    // Young, it may be a live writer's that has not committed yet (one paused past its
    // lock): kept.
    let plan = vault
        .plan_prune(
            &dr_vault::Retention::default(),
            time::OffsetDateTime::now_utc(),
        )
        .await
        .unwrap();
    assert!(plan.packs_to_delete.is_empty(), "{plan:?}");
    let mut stale_plan = plan.clone();
    stale_plan.packs_to_delete = vec![orphan.clone()];
    assert_eq!(vault.prune(&stale_plan).await.unwrap().packs_deleted, 0);
    assert!(storage.exists(&orphan_key).await.unwrap());
    // Older than the stale window (by the store's clock), it goes.
    backdate_packs(&root, TWO_HOURS);
    let plan = vault
        .plan_prune(
            &dr_vault::Retention::default(),
            time::OffsetDateTime::now_utc(),
        )
        .await
        .unwrap();
    assert!(plan.forget.is_empty());
    assert_eq!(plan.packs_to_delete, [orphan]);
    vault.prune(&plan).await.unwrap();
    assert!(!storage.exists(&orphan_key).await.unwrap());
    assert!(vault.verify(true, &NoProgress).await.unwrap().is_clean());
}

/// A process killed while writing a local vault leaves `<object>#<n>` staging files that no
/// listing shows: prune deletes those untouched for as long as a lock takes to go stale, and
/// leaves fresh ones (a write may be under way) and files not the vault's.
#[tokio::test]
async fn prune_deletes_what_killed_writes_left_in_a_local_vault() {
    let LocalVault {
        dir: _dir,
        src,
        root,
        vault,
        ..
    } = LocalVault::with_tree().await;
    vault
        .snapshot(&[SourceSpec::new("p", &src)], &BTreeMap::new(), &NoProgress)
        .await
        .unwrap();
    let staged = |key: &str, age_secs: u64| {
        let path = root.join(key);
        write(&path, b"half written");
        let file = std::fs::File::options().write(true).open(&path).unwrap();
        let then = std::time::SystemTime::now() - std::time::Duration::from_secs(age_secs);
        file.set_modified(then).unwrap();
        path
    };
    // Staging files are named after the object being written (ids as the layout spells them).
    let id = |first: &str| format!("{first}{}", "0".repeat(62));
    let old_pack = staged(&format!("data/ab/{}#1", id("ab")), 3600);
    let old_manifest = staged(&format!("snapshots/{}#2", id("01")), 3600);
    let fresh_pack = staged(&format!("data/cd/{}#1", id("cd")), 0);
    let old_lock = staged(&format!("locks/{}#1", id("45")), 3600);
    let not_the_vaults = staged("notes/issue#12", 3600);
    let a_users_in_a_vault_dir = staged("snapshots/notes#1", 3600);

    let plan = vault
        .plan_prune(
            &dr_vault::Retention::default(),
            time::OffsetDateTime::now_utc(),
        )
        .await
        .unwrap();
    let summary = vault.prune(&plan).await.unwrap();
    assert_eq!(summary.interrupted_writes_deleted, 3);
    assert_eq!(summary.bytes_freed, 3 * b"half written".len() as u64);
    assert!(!old_pack.exists() && !old_manifest.exists());
    assert!(fresh_pack.exists(), "a write may still be under way");
    assert!(!old_lock.exists(), "a lock write cut short an hour ago");
    assert!(
        not_the_vaults.exists(),
        "only the vault's own directories are swept"
    );
    assert!(
        a_users_in_a_vault_dir.exists(),
        "only staging files of the vault's own objects are swept"
    );
    assert!(vault.verify(true, &NoProgress).await.unwrap().is_clean());
    assert_eq!(vault.snapshots().await.unwrap().len(), 1);
}

#[tokio::test]
async fn replication_copies_only_missing_data_and_the_standby_stands_alone() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    tree(&src);
    let primary_dir = dir.path().join("primary");
    let primary = Vault::init(
        Storage::local(&primary_dir, true).unwrap(),
        &opts(),
        &pass(),
    )
    .await
    .unwrap();
    let mut standby_opts = opts();
    standby_opts.name = "standby".into();
    standby_opts.region = "us-east-1".into();
    let standby_storage = Storage::local(&dir.path().join("standby"), true).unwrap();
    let standby = Vault::init(standby_storage.clone(), &standby_opts, &pass())
        .await
        .unwrap();
    let spec = [SourceSpec::new("p", &src)];
    let first = primary
        .snapshot(&spec, &BTreeMap::new(), &NoProgress)
        .await
        .unwrap();

    let plan = primary.plan_replication(&standby).await.unwrap();
    assert_eq!(plan.to_copy.len(), 1);
    let copied = primary
        .replicate(&standby, &plan, &NoProgress)
        .await
        .unwrap();
    assert_eq!((copied.snapshots_copied, copied.files_copied), (1, 4));

    // One small change: only that file's data moves.
    write(&src.join("env/prod.tfvars"), b"region = \"eu-central-1\"\n");
    let second = primary
        .snapshot(&spec, &BTreeMap::new(), &NoProgress)
        .await
        .unwrap();
    let plan = primary.plan_replication(&standby).await.unwrap();
    assert_eq!((plan.to_copy.len(), plan.already_there), (1, 1));
    let copied = primary
        .replicate(&standby, &plan, &NoProgress)
        .await
        .unwrap();
    assert_eq!(copied.files_copied, 1, "{copied:?}");
    assert!(copied.bytes_copied < 100);

    // Each run is recorded in the standby: what it copied, and how far behind it was.
    let runs = standby
        .replications_from(&primary.config().id, 100)
        .await
        .unwrap();
    assert_eq!(runs.len(), 2, "{runs:?}");
    assert!(runs[0].at < runs[1].at);
    assert_eq!(runs[0].source, primary.storage().id());
    assert_eq!(
        (runs[1].snapshots_copied, runs[1].bytes_copied),
        (1, copied.bytes_copied)
    );
    assert!(runs[1].lag_seconds < 600, "{runs:?}");
    assert!(standby
        .replications_from(&standby.config().id, 100)
        .await
        .unwrap()
        .is_empty());

    // Nothing left to do; the same vault is refused as a target.
    assert!(primary
        .plan_replication(&standby)
        .await
        .unwrap()
        .to_copy
        .is_empty());
    assert_eq!(
        primary.plan_replication(&primary).await.unwrap_err().kind,
        ErrorKind::InvalidInput
    );

    // An interrupted run (the manifest never written) is finished by the next one.
    std::fs::remove_file(dir.path().join("standby/snapshots").join(&second.id)).unwrap();
    let plan = primary.plan_replication(&standby).await.unwrap();
    assert_eq!(plan.to_copy.len(), 1);
    primary
        .replicate(&standby, &plan, &NoProgress)
        .await
        .unwrap();
    // The standby lists its copies from summaries of its own, as the primary lists them.
    assert_eq!(standby_storage.list("summaries").await.unwrap().len(), 2);
    // The same snapshots; what each stored is the destination's own (its packs, its index).
    let (copies, originals) = (
        standby.snapshots().await.unwrap(),
        primary.snapshots().await.unwrap(),
    );
    assert!(copies
        .iter()
        .chain(&originals)
        .all(|s| s.stored_bytes.is_some_and(|b| b > 0)));
    assert_eq!(without_stored(copies), without_stored(originals));

    // The primary region is gone: the standby restores on its own, bit for bit.
    std::fs::remove_dir_all(&primary_dir).unwrap();
    let standby = Vault::open(standby_storage, &pass()).await.unwrap();
    assert!(standby.verify(true, &NoProgress).await.unwrap().is_clean());
    let out = dir.path().join("out");
    standby
        .restore(&second.id, &out, Some("p"), &NoProgress)
        .await
        .unwrap();
    assert_same_tree(&src, &out);
    standby
        .restore(&first.id, &dir.path().join("first"), Some("p"), &NoProgress)
        .await
        .unwrap();
}

/// A primary of [`tree`] at `dir/src` (source `p`) with one snapshot, and a standby with its
/// own key at `dir/standby` that holds it.
async fn primary_and_replicated_standby(dir: &Path) -> (Vault, Vault) {
    tree(&dir.join("src"));
    let primary = Vault::init(
        Storage::local(&dir.join("primary"), true).unwrap(),
        &opts(),
        &pass(),
    )
    .await
    .unwrap();
    let mut standby_opts = opts();
    standby_opts.name = "standby".into();
    let standby = Vault::init(
        Storage::local(&dir.join("standby"), true).unwrap(),
        &standby_opts,
        &pass(),
    )
    .await
    .unwrap();
    snapshot_and_replicate(&primary, &standby, &dir.join("src")).await;
    (primary, standby)
}

/// Takes a snapshot of `src` (source `p`) and replicates what the standby lacks; returns the
/// snapshot's id and what the replication did.
async fn snapshot_and_replicate(
    primary: &Vault,
    standby: &Vault,
    src: &Path,
) -> (String, dr_vault::ReplicationSummary) {
    let taken = primary
        .snapshot(&[SourceSpec::new("p", src)], &BTreeMap::new(), &NoProgress)
        .await
        .unwrap();
    let plan = primary.plan_replication(standby).await.unwrap();
    let copied = primary
        .replicate(standby, &plan, &NoProgress)
        .await
        .unwrap();
    (taken.id, copied)
}

/// A standby that lost data its snapshots use (here its index, as a bad restore of the
/// bucket would) is not trusted for it: the next replication copies every file the new
/// snapshot needs again, rather than pointing the copy at blobs the standby cannot read.
#[tokio::test]
async fn a_standby_that_lost_its_index_gets_the_data_again_with_the_next_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let (primary, standby) = primary_and_replicated_standby(dir.path()).await;
    let src = dir.path().join("src");

    std::fs::remove_dir_all(dir.path().join("standby/index")).unwrap();
    write(&src.join("env/prod.tfvars"), b"region = \"ap-south-1\"\n");
    let (second, copied) = snapshot_and_replicate(&primary, &standby, &src).await;
    assert_eq!(copied.files_copied, 4, "{copied:?}");
    let out = dir.path().join("out");
    standby
        .restore(&second, &out, Some("p"), &NoProgress)
        .await
        .unwrap();
    assert_same_tree(&src, &out);
}

/// Directories renamed between snapshots (half the files at paths the standby never saw):
/// their data is found under the old paths, and nothing is read or copied again.
#[tokio::test]
async fn files_moved_to_other_paths_are_replicated_without_copying_their_data() {
    let dir = tempfile::tempdir().unwrap();
    let (primary, standby) = primary_and_replicated_standby(dir.path()).await;
    let src = dir.path().join("src");

    std::fs::rename(src.join("artifacts"), src.join("build-artifacts")).unwrap();
    std::fs::rename(src.join("env"), src.join("environments")).unwrap();
    let (second, copied) = snapshot_and_replicate(&primary, &standby, &src).await;
    assert_eq!(
        (
            copied.snapshots_copied,
            copied.files_copied,
            copied.bytes_copied
        ),
        (1, 0, 0),
        "{copied:?}"
    );
    let out = dir.path().join("out");
    standby
        .restore(&second, &out, Some("p"), &NoProgress)
        .await
        .unwrap();
    assert_same_tree(&src, &out);
}

/// Options with chunks of at most 256 KiB: the 3 MiB file of the sample tree is always
/// several chunks (the chunker is keyed per vault), so a change in its middle leaves the rest.
fn small_chunk_opts() -> InitOptions {
    let mut o = opts();
    o.chunker = dr_vault::format::ChunkerParams {
        min_size: 16 * 1024,
        avg_size: 64 * 1024,
        max_size: 256 * 1024,
    };
    o
}

/// Overwrites `len` bytes in the middle of a file, in place.
fn scribble_middle(path: &Path, len: usize) {
    let mut data = std::fs::read(path).unwrap();
    let at = data.len() / 2;
    for b in &mut data[at..at + len] {
        *b = !*b;
    }
    std::fs::write(path, data).unwrap();
}

#[tokio::test]
async fn a_large_file_changed_in_places_is_replicated_from_its_changed_chunks() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    tree(&src);
    let primary = Vault::init(
        Storage::local(&dir.path().join("primary"), true).unwrap(),
        &small_chunk_opts(),
        &pass(),
    )
    .await
    .unwrap();
    let standby_storage = Storage::local(&dir.path().join("standby"), true).unwrap();
    let standby = Vault::init(standby_storage.clone(), &opts(), &pass())
        .await
        .unwrap();
    let spec = [SourceSpec::new("p", &src)];
    let labels = BTreeMap::new();
    let snapshot = || primary.snapshot(&spec, &labels, &NoProgress);
    snapshot().await.unwrap();
    let plan = primary.plan_replication(&standby).await.unwrap();
    primary
        .replicate(&standby, &plan, &NoProgress)
        .await
        .unwrap();

    // A later run learns what the standby holds from the snapshot both have: only the
    // changed chunks of the large file are new there.
    scribble_middle(&src.join("artifacts/tool.bin"), 100);
    let second = snapshot().await.unwrap();
    let plan = primary.plan_replication(&standby).await.unwrap();
    let copied = primary
        .replicate(&standby, &plan, &NoProgress)
        .await
        .unwrap();
    assert_eq!(copied.files_copied, 1, "{copied:?}");
    assert!(copied.bytes_copied <= 2 * 256 * 1024, "{copied:?}");

    // What the standby got restores bit for bit, on its own, and verifies.
    let standby = Vault::open(standby_storage, &pass()).await.unwrap();
    assert!(standby.verify(true, &NoProgress).await.unwrap().is_clean());
    let out = dir.path().join("out");
    standby
        .restore(&second.id, &out, Some("p"), &NoProgress)
        .await
        .unwrap();
    assert_same_tree(&src, &out);
}

/// The objects under `dir` of a local vault at `root`, by name, with their bytes.
fn objects(root: &Path, dir: &str) -> BTreeMap<String, Vec<u8>> {
    walkdir_like(&root.join(dir))
        .into_iter()
        .filter(|p| p.is_file())
        .map(|p| {
            let name = p.strip_prefix(root).unwrap().display().to_string();
            (name, std::fs::read(&p).unwrap())
        })
        .collect()
}

/// A standby sharing the key that holds some of a snapshot's data already (its own snapshot,
/// after a failover) receives only the packs it lacks; the primary's index file, which lists
/// packs it was not sent, is not copied: the packs sent are listed in a file of its own.
#[tokio::test]
async fn a_standby_sharing_the_key_is_sent_only_what_it_lacks_and_lists_it_itself() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    tree(&src);
    // One blob a pack, about: which packs move is then which blobs the standby lacks.
    let mut one_blob_packs = small_chunk_opts();
    one_blob_packs.pack_size = 4096;
    let primary_dir = dir.path().join("primary");
    let primary = Vault::init(
        Storage::local(&primary_dir, true).unwrap(),
        &one_blob_packs,
        &pass(),
    )
    .await
    .unwrap();
    let standby_dir = dir.path().join("standby");
    let standby_storage = Storage::local(&standby_dir, true).unwrap();
    let standby = Vault::init_sharing_key(standby_storage, &one_blob_packs, &pass(), &primary)
        .await
        .unwrap();
    let labels = BTreeMap::new();
    standby
        .snapshot(
            &[SourceSpec::new("tools", src.join("artifacts"))],
            &labels,
            &NoProgress,
        )
        .await
        .unwrap();
    let held = objects(&standby_dir, "data").len();
    let taken = primary
        .snapshot(&[SourceSpec::new("p", &src)], &labels, &NoProgress)
        .await
        .unwrap();
    let plan = primary.plan_replication(&standby).await.unwrap();
    let copied = primary
        .replicate(&standby, &plan, &NoProgress)
        .await
        .unwrap();
    assert_eq!(copied.snapshots_copied, 1, "{copied:?}");
    // The large file's chunks were there: only the small files' data moved (with the chunk
    // that shares their pack), not the 3 MiB file.
    assert!(copied.bytes_copied < 512 * 1024, "{copied:?}");
    assert_eq!(copied.files_copied, 3, "{copied:?}");
    let (theirs, ours) = (
        objects(&standby_dir, "index"),
        objects(&primary_dir, "index"),
    );
    assert!(ours.keys().all(|name| !theirs.contains_key(name)));
    assert_eq!(
        theirs.len(),
        2,
        "the standby's own snapshot's, and the copy's"
    );
    assert!(objects(&standby_dir, "data").len() > held);
    assert!(standby.verify(true, &NoProgress).await.unwrap().is_clean());
    standby
        .restore(&taken.id, &dir.path().join("out"), Some("p"), &NoProgress)
        .await
        .unwrap();
    assert_same_tree(&src, &dir.path().join("out"));
}

#[tokio::test]
async fn a_standby_sharing_the_key_receives_the_packs_as_they_are() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    tree(&src);
    let primary_dir = dir.path().join("primary");
    let primary = Vault::init(
        Storage::local(&primary_dir, true).unwrap(),
        &small_chunk_opts(),
        &pass(),
    )
    .await
    .unwrap();
    let mut standby_opts = opts();
    standby_opts.name = "standby".into();
    standby_opts.region = "us-east-1".into();
    let standby_pass = Passphrase::new("the standby's own passphrase");
    let standby_dir = dir.path().join("standby");
    let standby_storage = Storage::local(&standby_dir, true).unwrap();
    let standby = Vault::init_sharing_key(
        standby_storage.clone(),
        &standby_opts,
        &standby_pass,
        &primary,
    )
    .await
    .unwrap();
    assert!(standby.shares_key_with(&primary));
    // Its own identity, the primary's chunking (so that its own snapshots, after a failover,
    // deduplicate against what it received).
    assert_ne!(standby.config().id, primary.config().id);
    assert_eq!(standby.config().chunker, primary.config().chunker);
    let spec = [SourceSpec::new("p", &src)];
    let labels = BTreeMap::new();
    let snapshot = || primary.snapshot(&spec, &labels, &NoProgress);
    let first = snapshot().await.unwrap();

    let plan = primary.plan_replication(&standby).await.unwrap();
    let copied = primary
        .replicate(&standby, &plan, &NoProgress)
        .await
        .unwrap();
    assert_eq!(copied.snapshots_copied, 1, "{copied:?}");
    // Every pack arrived byte for byte, under its own name, and so did the index file
    // listing them (the standby holds every pack it lists).
    assert_eq!(objects(&standby_dir, "data"), objects(&primary_dir, "data"));
    assert_eq!(
        objects(&standby_dir, "index"),
        objects(&primary_dir, "index")
    );

    // Only the packs of new data move the next time; a run with nothing to do copies nothing.
    scribble_middle(&src.join("artifacts/tool.bin"), 100);
    let second = snapshot().await.unwrap();
    let plan = primary.plan_replication(&standby).await.unwrap();
    let copied = primary
        .replicate(&standby, &plan, &NoProgress)
        .await
        .unwrap();
    assert_eq!(copied.snapshots_copied, 1, "{copied:?}");
    assert!(copied.bytes_copied < 1 << 20, "{copied:?}");
    assert_eq!(
        objects(&standby_dir, "index"),
        objects(&primary_dir, "index")
    );
    let plan = primary.plan_replication(&standby).await.unwrap();
    assert!(plan.to_copy.is_empty());
    assert_eq!(
        primary
            .replicate(&standby, &plan, &NoProgress)
            .await
            .unwrap()
            .bytes_copied,
        0
    );

    // The primary is gone: the standby opens with its own passphrase (not the primary's),
    // verifies, and restores both snapshots bit for bit.
    std::fs::remove_dir_all(&primary_dir).unwrap();
    assert_eq!(
        Vault::open(standby_storage.clone(), &pass())
            .await
            .err()
            .map(|e| e.kind),
        Some(ErrorKind::WrongPassphrase)
    );
    let standby = Vault::open(standby_storage, &standby_pass).await.unwrap();
    assert!(standby.verify(true, &NoProgress).await.unwrap().is_clean());
    standby
        .restore(&second.id, &dir.path().join("out"), Some("p"), &NoProgress)
        .await
        .unwrap();
    assert_same_tree(&src, &dir.path().join("out"));
    standby
        .restore(&first.id, &dir.path().join("first"), Some("p"), &NoProgress)
        .await
        .unwrap();
}

#[tokio::test]
async fn a_truncated_pack_is_refused_not_copied_to_a_standby_sharing_the_key() {
    let LocalVault {
        dir,
        root,
        vault: primary,
        ..
    } = LocalVault::with_tree().await;
    let src = dir.path().join("src");
    let snapshot = primary
        .snapshot(&[SourceSpec::new("p", &src)], &BTreeMap::new(), &NoProgress)
        .await
        .unwrap();
    let standby_dir = dir.path().join("standby");
    let standby = Vault::init_sharing_key(
        Storage::local(&standby_dir, true).unwrap(),
        &opts(),
        &pass(),
        &primary,
    )
    .await
    .unwrap();
    let pack = walkdir_like(&root.join("data"))
        .into_iter()
        .filter(|p| p.is_file())
        .max_by_key(|p| std::fs::metadata(p).unwrap().len())
        .unwrap();
    let len = std::fs::metadata(&pack).unwrap().len();
    std::fs::File::options()
        .write(true)
        .open(&pack)
        .unwrap()
        .set_len(len / 2)
        .unwrap();

    let plan = primary.plan_replication(&standby).await.unwrap();
    let err = primary
        .replicate(&standby, &plan, &NoProgress)
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::Corrupt);
    let name = pack.file_name().unwrap().to_str().unwrap();
    assert!(err.to_string().contains(name), "{err}");
    // Nothing half copied is left looking whole: not the pack, not the snapshot.
    let copied = standby_dir.join(pack.strip_prefix(&root).unwrap());
    assert!(!copied.exists());
    assert!(!standby_dir.join("snapshots").join(&snapshot.id).exists());
    assert!(standby.snapshots().await.unwrap().is_empty());
}

#[tokio::test]
async fn empty_objects_and_a_missing_index_are_named_and_nothing_panics() {
    let LocalVault {
        dir: _dir,
        src,
        root,
        storage,
        vault,
    } = LocalVault::with_tree().await;
    let first = vault
        .snapshot(&[SourceSpec::new("p", &src)], &BTreeMap::new(), &NoProgress)
        .await
        .unwrap();
    write(&src.join("new.txt"), b"second snapshot data\n");
    vault
        .snapshot(&[SourceSpec::new("p", &src)], &BTreeMap::new(), &NoProgress)
        .await
        .unwrap();
    let indexes = storage.list("index").await.unwrap();
    assert_eq!(indexes.len(), 2);

    // The second index file is lost: the blobs it listed are "in no index".
    std::fs::remove_file(root.join(&indexes[1].key)).unwrap();
    let report = vault.verify(false, &NoProgress).await.unwrap();
    assert!(
        report
            .problems
            .iter()
            .any(|p| p.message.contains("is in no index")),
        "{report:#?}"
    );

    // A zero-length pack, index file and snapshot manifest.
    let packs = storage.list("data").await.unwrap();
    std::fs::write(root.join(&packs[0].key), b"").unwrap();
    std::fs::write(root.join(&indexes[0].key), b"").unwrap();
    std::fs::write(root.join("snapshots").join(&first.id), b"").unwrap();
    let report = vault.verify(true, &NoProgress).await.unwrap();
    for key in [indexes[0].key.clone(), format!("snapshots/{}", first.id)] {
        assert!(
            report.problems.iter().any(|p| p.object.ends_with(&key)),
            "{key} not named: {report:#?}"
        );
    }
    let err = vault.load_snapshot(&first.id).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::Corrupt);
    assert!(err.to_string().contains(&first.id), "{err}");
}

#[tokio::test]
async fn a_labelled_series_never_stands_in_for_the_latest_snapshot_nor_crowds_out_retention() {
    use dr_vault::{latest_of, Retention, SERIES_LABEL};
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    tree(&src);
    let state = dir.path().join("state");
    write(&state.join("terraform.tfstate"), b"{\"serial\": 1}\n");
    let vault = Vault::init(
        Storage::local(&dir.path().join("vault"), true).unwrap(),
        &opts(),
        &pass(),
    )
    .await
    .unwrap();
    let spec = [SourceSpec::new("pipeline", &src)];
    let data = vault
        .snapshot(&spec, &BTreeMap::new(), &NoProgress)
        .await
        .unwrap();
    let series: BTreeMap<String, String> =
        [(SERIES_LABEL.to_string(), "terraform-state".to_string())].into();
    let state_spec = [SourceSpec::new("state", &state)];
    let first = vault
        .snapshot(&state_spec, &series, &NoProgress)
        .await
        .unwrap();
    assert_eq!(first.files_read, 1);
    // The state series finds its own parent: an unchanged file is not read again.
    let second = vault
        .snapshot(&state_spec, &series, &NoProgress)
        .await
        .unwrap();
    assert_eq!(second.files_read, 0);

    assert_eq!(vault.resolve_snapshot("latest").await.unwrap(), data.id);
    let all = vault.snapshots().await.unwrap();
    assert_eq!(all.len(), 3);
    assert_eq!(latest_of(&all).unwrap().id, data.id);
    assert_eq!(
        vault.source_digest(&spec).await.unwrap(),
        data.source_digest,
        "unchanged sources still match the latest pipeline snapshot"
    );

    // keep_last counts within each series: the pipeline snapshot is the newest of its own.
    let plan = vault
        .plan_prune(
            &Retention {
                keep_last: Some(1),
                ..Default::default()
            },
            time::OffsetDateTime::now_utc(),
        )
        .await
        .unwrap();
    let forgotten: Vec<&str> = plan.forget.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(forgotten, [first.id.as_str()]);
}

#[tokio::test]
async fn listing_reads_summaries_and_falls_back_to_the_manifest() {
    let LocalVault {
        dir: _dir,
        src,
        root,
        storage,
        vault,
    } = LocalVault::with_tree().await;
    let spec = [SourceSpec::new("p", &src)];
    let labels = BTreeMap::from([("team".to_string(), "platform".to_string())]);
    let first = vault.snapshot(&spec, &labels, &NoProgress).await.unwrap();
    write(&src.join("new.txt"), b"second snapshot data\n");
    let second = vault.snapshot(&spec, &labels, &NoProgress).await.unwrap();
    let summary_path = |id: &str| root.join("summaries").join(id);
    assert!(summary_path(&first.id).is_file() && summary_path(&second.id).is_file());
    let listed = vault.snapshots().await.unwrap();
    assert_eq!(listed.len(), 2);
    // The summary records what the snapshot added to storage; the first added everything.
    assert_eq!(listed[0].stored_bytes, Some(first.bytes_stored));
    assert_eq!(listed[1].stored_bytes, Some(second.bytes_stored));
    assert!(second.bytes_stored < first.bytes_stored);
    // Listed from its manifest, a snapshot's stored bytes are unknown.
    let from_manifest = |id: &str| {
        listed
            .iter()
            .cloned()
            .map(|mut s| {
                if s.id == id {
                    s.stored_bytes = None;
                }
                s
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(
        (listed[1].files, listed[1].bytes),
        (second.files, second.bytes)
    );
    assert_eq!(listed[1].labels, labels);
    assert_eq!(listed[1].source_digest, second.source_digest);

    // Listing does not open manifests: a damaged one still lists (verify and restore name it).
    let manifest = root.join("snapshots").join(&first.id);
    let manifest_bytes = std::fs::read(&manifest).unwrap();
    std::fs::write(&manifest, b"").unwrap();
    assert_eq!(vault.snapshots().await.unwrap(), listed);
    std::fs::write(&manifest, &manifest_bytes).unwrap();

    // A summary sealed for one snapshot does not pass for another's.
    let first_summary = std::fs::read(summary_path(&first.id)).unwrap();
    std::fs::copy(summary_path(&second.id), summary_path(&first.id)).unwrap();
    assert_eq!(vault.snapshots().await.unwrap(), from_manifest(&first.id));
    let report = vault.verify(false, &NoProgress).await.unwrap();
    assert_eq!(report.problems.len(), 1, "{report:#?}");
    assert!(report.problems[0]
        .object
        .ends_with(&format!("summaries/{}", first.id)));
    std::fs::write(summary_path(&first.id), &first_summary).unwrap();

    // A missing summary and a damaged one: the manifests say the same, and verify names only
    // the damaged summary.
    let second_summary = std::fs::read(summary_path(&second.id)).unwrap();
    std::fs::remove_file(summary_path(&first.id)).unwrap();
    std::fs::write(summary_path(&second.id), b"not sealed").unwrap();
    let both_from_manifests: Vec<_> = from_manifest(&first.id)
        .into_iter()
        .map(|mut s| {
            s.stored_bytes = None;
            s
        })
        .collect();
    assert_eq!(vault.snapshots().await.unwrap(), both_from_manifests);
    let report = vault.verify(false, &NoProgress).await.unwrap();
    assert_eq!(report.problems.len(), 1, "{report:#?}");
    assert!(report.problems[0]
        .object
        .ends_with(&format!("summaries/{}", second.id)));
    std::fs::write(summary_path(&second.id), &second_summary).unwrap();

    // Prune removes the summary with its manifest, and summaries whose manifest is gone.
    std::fs::write(summary_path(&"0".repeat(64)), b"left by an older build").unwrap();
    let retention = dr_vault::Retention {
        keep_last: Some(1),
        ..Default::default()
    };
    let plan = vault
        .plan_prune(&retention, time::OffsetDateTime::now_utc())
        .await
        .unwrap();
    assert_eq!(plan.forget.len(), 1);
    vault.prune(&plan).await.unwrap();
    let summaries = storage.list("summaries").await.unwrap();
    assert_eq!(summaries.len(), 1);
    assert!(summaries[0].key.ends_with(&second.id));
    let remaining = vault.snapshots().await.unwrap();
    assert_eq!(remaining, listed[1..]);
    assert!(vault.verify(false, &NoProgress).await.unwrap().is_clean());
}

#[tokio::test]
async fn files_added_and_removed_between_unchanged_ones_leave_those_unread() {
    let LocalVault {
        dir, src, vault, ..
    } = LocalVault::with_tree().await;
    let spec = [SourceSpec::new("p", &src)];
    vault
        .snapshot(&spec, &BTreeMap::new(), &NoProgress)
        .await
        .unwrap();

    // New files before, between and after the unchanged ones; one file gone.
    std::fs::remove_file(src.join("scripts/deploy.sh")).unwrap();
    write(&src.join("0-first.txt"), b"sorts first\n");
    write(
        &src.join("env-extra/notes.txt"),
        b"after env/, before scripts/\n",
    );
    write(&src.join("scripts/build.sh"), b"#!/bin/sh\nmake\n");
    write(&src.join("zz/last.txt"), b"sorts last\n");
    let second = vault
        .snapshot(&spec, &BTreeMap::new(), &NoProgress)
        .await
        .unwrap();
    assert_eq!(second.files_read, 4, "only the new files: {second:?}");
    let out = dir.path().join("out");
    vault
        .restore("latest", &out, Some("p"), &NoProgress)
        .await
        .unwrap();
    assert_same_tree(&src, &out);
}

/// New vaults are format 3, and their config is authenticated: one rewritten by anyone
/// without the key, to claim an older format (which has no MAC) or to change what writers
/// rely on, is refused, and the error names the config. (Older vaults: `old_formats.rs`.)
#[tokio::test]
async fn a_format_3_config_altered_or_downgraded_is_refused() {
    let LocalVault {
        dir: _dir,
        root,
        storage,
        vault,
        ..
    } = LocalVault::with_tree().await;
    assert_eq!(vault.config().format_version, 3, "new vaults are format 3");
    assert!(vault.config().mac.is_some());
    drop(vault);
    let original = std::fs::read(root.join("config")).unwrap();
    type Edit = fn(&mut serde_json::Value);
    let edits: [(&str, Edit); 4] = [
        ("downgraded to format 2", |c| c["format_version"] = 2.into()),
        ("downgraded to format 1, MAC removed", |c| {
            c["format_version"] = 1.into();
            c.as_object_mut().unwrap().remove("mac");
        }),
        ("chunker changed", |c| {
            c["chunker"]["avg_size"] = 65536.into()
        }),
        ("renamed", |c| c["name"] = "someone-else".into()),
    ];
    for (what, edit) in edits {
        common::put_config(&root, &original);
        common::edit_config(&root, edit);
        let err = Vault::open(storage.clone(), &pass()).await.err().unwrap();
        assert_eq!(err.kind, ErrorKind::Corrupt, "{what}: {err}");
        assert!(err.to_string().contains("/config"), "{what}: {err}");
    }
    common::put_config(&root, &original);
    Vault::open(storage, &pass()).await.unwrap();
}

/// A vault owns only its objects (issue 12, item 1): it is never created over other files,
/// and destroy deletes only keys of its layout, leaving anything else where it is.
#[tokio::test]
async fn init_refuses_a_location_that_holds_anything_naming_the_url_and_an_object() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    write(&data.join("important.txt"), b"keep me");
    let storage = Storage::local(&data, true).unwrap();
    let err = Vault::init(storage, &opts(), &pass()).await.err().unwrap();
    assert_eq!(err.kind, ErrorKind::InvalidInput);
    assert!(err.message.contains("important.txt"), "{err}");
    assert!(err.message.contains(&data.display().to_string()), "{err}");
    assert_eq!(
        std::fs::read(data.join("important.txt")).unwrap(),
        b"keep me"
    );
    assert!(!data.join("config").exists() && !data.join("keys").exists());

    // An empty directory is fine, and so is a vault directory that does not exist yet.
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    Vault::init(Storage::local(&empty, true).unwrap(), &opts(), &pass())
        .await
        .unwrap();
}

/// A destroy killed after it deleted the config leaves objects that block a new vault at the
/// location (the crash campaign found it): the next destroy finishes the job when a key file
/// left there opens with the passphrase and nothing protected is left, and touches nothing
/// otherwise.
#[tokio::test]
async fn an_interrupted_destroy_is_finished_only_when_the_remains_are_provably_its_own() {
    use dr_vault::Remains;
    let lv = LocalVault::with_tree().await;
    lv.snapshot_tree().await;
    // What a destroy killed mid-way leaves: no config, some data, the key files (deleted last).
    std::fs::remove_file(lv.root.join("config")).unwrap();
    write(&lv.root.join("notes.txt"), b"someone else's");
    let left_before = walk(&lv.root);
    assert!(left_before.iter().any(|k| k.starts_with("keys/")));
    let kept = |r: Remains| match r {
        Remains::Kept {
            reason,
            holds_snapshots,
        } => (reason, holds_snapshots),
        other => panic!("deleted: {other:?}"),
    };

    // Manifests are left: nothing goes without force_destroy.
    let (reason, snapshots) = kept(
        Vault::finish_interrupted_destroy(&lv.storage, &pass(), false)
            .await
            .unwrap(),
    );
    assert!(snapshots && reason.contains("force_destroy"), "{reason}");
    assert_eq!(walk(&lv.root), left_before);
    // Another passphrase: not provably this vault's.
    let other = Passphrase::new("not this vault's");
    let (reason, _) = kept(
        Vault::finish_interrupted_destroy(&lv.storage, &other, true)
            .await
            .unwrap(),
    );
    assert!(reason.contains("not provably"), "{reason}");
    assert_eq!(walk(&lv.root), left_before);

    let Remains::Finished(done) = Vault::finish_interrupted_destroy(&lv.storage, &pass(), true)
        .await
        .unwrap()
    else {
        panic!("the remains were not deleted");
    };
    assert_eq!(done.foreign_objects_left, ["notes.txt"]);
    assert_eq!(walk(&lv.root), ["notes.txt"]);
    // Nothing left of a vault: nothing to do; and a vault is not remains.
    assert_eq!(
        Vault::finish_interrupted_destroy(&lv.storage, &pass(), true)
            .await
            .unwrap(),
        Remains::None
    );
    std::fs::remove_file(lv.root.join("notes.txt")).unwrap();
    Vault::init(lv.storage.clone(), &opts(), &pass())
        .await
        .unwrap();
    kept(
        Vault::finish_interrupted_destroy(&lv.storage, &pass(), true)
            .await
            .unwrap(),
    );
    assert!(lv.root.join("config").exists());
}

/// A destroy killed at its very end leaves no object of the vault, only debris a new vault
/// cannot be created over: the staging file of a lock refresh cut short (`locks/<id>#1`, the
/// crash campaign's killed destroys left one) and emptied directories. They go when the
/// lock's writer is gone and nothing else is there; a live writer's staging file, or a
/// user's file anywhere in the location, and nothing is touched.
#[tokio::test]
async fn the_debris_of_a_destroy_killed_at_its_end_goes_when_its_writer_is_gone() {
    use dr_vault::locks::{acquire, LockTiming};
    use dr_vault::Remains;
    let lv = LocalVault::with_tree().await;
    lv.snapshot_tree().await;
    // A real lock file, written by this (live) process.
    let lock = acquire(&lv.storage, false, LockTiming::default())
        .await
        .unwrap();
    let lock_key = lock.key().to_string();
    let live_lock = std::fs::read(lv.root.join(&lock_key)).unwrap();
    lock.release().await.unwrap();
    // The same lock, by a process that has exited.
    let mut exited = std::process::Command::new("true").spawn().unwrap();
    let exited_pid = exited.id();
    exited.wait().unwrap();
    let mut dead_lock: serde_json::Value = serde_json::from_slice(&live_lock).unwrap();
    dead_lock["pid"] = exited_pid.into();
    let dead_lock = serde_json::to_vec(&dead_lock).unwrap();

    lv.vault.destroy(dr_vault::clock::now()).await.unwrap();
    let passphrase = pass();
    let finish = || Vault::finish_interrupted_destroy(&lv.storage, &passphrase, false);
    // An empty location (a mount point whose share is not mounted) is not debris.
    std::fs::create_dir_all(&lv.root).unwrap();
    assert_eq!(finish().await.unwrap(), Remains::None);
    assert!(lv.root.exists());

    // A live writer's staging file: nothing goes, not even the empty directory beside it.
    let staging = lv.root.join(format!("{lock_key}#1"));
    write(&staging, &live_lock);
    std::fs::create_dir_all(lv.root.join("data/ab")).unwrap();
    let debris = walk(&lv.root);
    assert_eq!(finish().await.unwrap(), Remains::None);
    assert_eq!(walk(&lv.root), debris);
    assert!(lv.root.join("data/ab").is_dir());
    init_is_refused(&lv.storage, "a live writer's lock").await;

    // Its writer gone, but a user's file in the location: nothing goes either.
    write(&staging, &dead_lock);
    write(&lv.root.join("locks/notes#1"), b"a user's file");
    let with_notes = walk(&lv.root);
    assert_eq!(finish().await.unwrap(), Remains::None);
    assert_eq!(walk(&lv.root), with_notes);
    assert!(lv.root.join("data/ab").is_dir());
    init_is_refused(&lv.storage, "a user's file").await;

    // Debris alone, the dead writer's lock and an empty one (killed before it wrote): all go,
    // and a vault is created there again.
    std::fs::remove_file(lv.root.join("locks/notes#1")).unwrap();
    write(&lv.root.join(format!("{lock_key}#2")), b"");
    assert_eq!(finish().await.unwrap(), Remains::Debris);
    assert!(!lv.root.exists(), "{:?}", walk(&lv.root));
    Vault::init(lv.storage.clone(), &opts(), &pass())
        .await
        .unwrap();
}

async fn init_is_refused(storage: &Storage, over: &str) {
    let err = Vault::init(storage.clone(), &opts(), &pass())
        .await
        .err()
        .unwrap_or_else(|| panic!("a vault was created over {over}"));
    assert_eq!(err.kind, ErrorKind::InvalidInput, "{err}");
}

/// Data without a config and without any key file (what a destroy by an older build, which
/// deleted keys first, could leave) is nobody's provably: it stays.
#[tokio::test]
async fn remains_without_a_key_file_are_left_in_place() {
    let lv = LocalVault::with_tree().await;
    lv.snapshot_tree().await;
    std::fs::remove_file(lv.root.join("config")).unwrap();
    std::fs::remove_dir_all(lv.root.join("keys")).unwrap();
    std::fs::remove_dir_all(lv.root.join("snapshots")).unwrap();
    let before = walk(&lv.root);
    let remains = Vault::finish_interrupted_destroy(&lv.storage, &pass(), true)
        .await
        .unwrap();
    assert!(
        matches!(remains, dr_vault::Remains::Kept { ref reason, .. } if reason.contains("not provably")),
        "{remains:?}"
    );
    assert_eq!(walk(&lv.root), before);
}

/// Every file under `root`, relative, sorted.
fn walk(root: &std::path::Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p.strip_prefix(root).unwrap().display().to_string());
            }
        }
    }
    out.sort();
    out
}

#[tokio::test]
async fn destroy_deletes_only_the_vaults_own_objects_and_names_what_it_left() {
    let lv = LocalVault::with_tree().await;
    lv.snapshot_tree().await;
    // Put there after init, by someone else: beside the vault, in its directories, and with
    // names that look almost like its objects.
    let foreign = [
        "notes.txt",
        "snapshots/README.md",
        "data/ab/not-a-pack",
        "data/\u{e9}\u{e9}/x",
        "records/../escape",
        "index/0123",
    ];
    for key in foreign.iter().filter(|k| !k.contains("..")) {
        write(&lv.root.join(key), b"foreign");
    }
    let done = lv
        .vault
        .destroy(time::OffsetDateTime::now_utc())
        .await
        .unwrap();
    assert_eq!(done.snapshots_deleted, 1);
    let mut left = done.foreign_objects_left.clone();
    left.sort();
    assert_eq!(
        left,
        [
            "data/ab/not-a-pack",
            "data/\u{e9}\u{e9}/x",
            "index/0123",
            "notes.txt",
            "snapshots/README.md"
        ]
    );
    for key in foreign.iter().filter(|k| !k.contains("..")) {
        assert_eq!(
            std::fs::read(lv.root.join(key)).unwrap(),
            b"foreign",
            "{key}"
        );
    }
    // The vault itself is gone: config, keys, packs, manifests.
    assert!(!lv.root.join("config").exists());
    assert!(!lv.root.join("keys").exists());
    assert_eq!(
        Vault::open(lv.storage.clone(), &pass())
            .await
            .err()
            .unwrap()
            .kind,
        ErrorKind::NotFound
    );
    drop(lv.dir);
}

#[tokio::test]
async fn prune_and_verify_leave_foreign_objects_alone_and_report_them() {
    let lv = LocalVault::with_tree().await;
    let specs = [SourceSpec::new("ci", &lv.src)];
    for i in 0..3 {
        write(&lv.src.join("changing.txt"), format!("v{i}").as_bytes());
        lv.vault
            .snapshot(&specs, &BTreeMap::new(), &NoProgress)
            .await
            .unwrap();
    }
    write(&lv.root.join("snapshots/notes.md"), b"mine");
    write(&lv.root.join("data/zz/backup.tar"), b"mine too");
    let plan = lv
        .vault
        .plan_prune(
            &dr_vault::Retention {
                keep_last: Some(1),
                ..Default::default()
            },
            time::OffsetDateTime::now_utc(),
        )
        .await
        .unwrap();
    assert_eq!(plan.forget.len(), 2);
    assert_eq!(
        plan.foreign_objects,
        ["data/zz/backup.tar", "snapshots/notes.md"]
    );
    lv.vault.prune(&plan).await.unwrap();
    assert_eq!(
        std::fs::read(lv.root.join("snapshots/notes.md")).unwrap(),
        b"mine"
    );
    assert_eq!(
        std::fs::read(lv.root.join("data/zz/backup.tar")).unwrap(),
        b"mine too"
    );
    let report = lv.vault.verify(true, &NoProgress).await.unwrap();
    assert!(report.is_clean(), "{:?}", report.problems);
    assert_eq!(report.snapshots, 1);
    assert_eq!(
        report.foreign_objects,
        ["data/zz/backup.tar", "snapshots/notes.md"]
    );
    assert_eq!(lv.vault.snapshots().await.unwrap().len(), 1);
}

/// A symlink planted in a local vault's directories is never followed: what it points at is
/// neither listed nor deleted, by prune or by destroy.
#[tokio::test]
async fn a_symlink_in_a_local_vault_never_leads_prune_or_destroy_outside_it() {
    let lv = LocalVault::with_tree().await;
    lv.snapshot_tree().await;
    // Outside the vault, files named exactly like the vault's own objects.
    let outside = lv.dir.path().join("outside");
    let fan = (0..=255u8)
        .map(|b| format!("{b:02x}"))
        .find(|fan| !lv.root.join("data").join(fan).exists())
        .unwrap();
    let id = fan.clone() + &"0".repeat(62);
    write(&outside.join(&id), b"outside pack");
    write(&outside.join("snap").join(&id), b"outside manifest");
    std::os::unix::fs::symlink(&outside, lv.root.join("data").join(&fan)).unwrap();
    std::os::unix::fs::symlink(
        outside.join("snap").join(&id),
        lv.root.join("snapshots").join(&id),
    )
    .unwrap();
    let plan = lv
        .vault
        .plan_prune(&Default::default(), time::OffsetDateTime::now_utc())
        .await
        .unwrap();
    assert!(
        plan.packs_to_delete.is_empty(),
        "{:?}",
        plan.packs_to_delete
    );
    lv.vault.prune(&plan).await.unwrap();
    lv.vault
        .destroy(time::OffsetDateTime::now_utc())
        .await
        .unwrap();
    assert_eq!(std::fs::read(outside.join(&id)).unwrap(), b"outside pack");
    assert_eq!(
        std::fs::read(outside.join("snap").join(&id)).unwrap(),
        b"outside manifest"
    );
}

/// Setuid, setgid and sticky bits are stored but never restored (issue 12, item 3): a restore
/// must not hand privileges to whatever a snapshot holds. The rest of the mode comes back.
#[tokio::test]
async fn restore_never_sets_setuid_setgid_or_sticky_bits() {
    use std::os::unix::fs::PermissionsExt as _;
    let lv = LocalVault::with_tree().await;
    let tool = lv.src.join("bin/tool");
    write(&tool, b"#!/bin/sh\n");
    std::fs::set_permissions(&tool, std::fs::Permissions::from_mode(0o6755)).unwrap();
    std::fs::set_permissions(lv.src.join("bin"), std::fs::Permissions::from_mode(0o1777)).unwrap();
    let taken = lv.snapshot_tree().await;
    let manifest = lv.vault.load_snapshot(&taken.id).await.unwrap();
    let stored = manifest.sources[0]
        .entries
        .iter()
        .find(|e| e.path == "bin/tool")
        .unwrap();
    assert_eq!(stored.mode, 0o6755, "the stored mode is what was on disk");
    let out = lv.dir.path().join("out");
    lv.vault
        .restore(&taken.id, &out, None, &NoProgress)
        .await
        .unwrap();
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o7777;
    assert_eq!(mode(&out.join("ci/bin/tool")), 0o755);
    assert_eq!(mode(&out.join("ci/bin")), 0o777);
    assert_eq!(mode(&out.join("ci/scripts/deploy.sh")), 0o755);
}

/// A destroy leaves nothing of the vault, not even what killed writers left half written, so
/// a vault can be created there again; a failed init leaves nothing that blocks a retry.
#[tokio::test]
async fn after_destroy_the_location_is_empty_and_a_vault_can_be_made_there_again() {
    let lv = LocalVault::with_tree().await;
    lv.snapshot_tree().await;
    // A writer killed mid-pack (a fresh staging file: no age limit under destroy's lock).
    write(
        &lv.root.join(format!("data/ab/ab{}#3", "0".repeat(62))),
        b"half",
    );
    let done = lv
        .vault
        .destroy(time::OffsetDateTime::now_utc())
        .await
        .unwrap();
    assert!(
        done.foreign_objects_left.is_empty(),
        "{:?}",
        done.foreign_objects_left
    );
    assert!(
        !lv.root.exists(),
        "the vault directory is gone with the vault"
    );
    Vault::init(Storage::local(&lv.root, true).unwrap(), &opts(), &pass())
        .await
        .unwrap();
}

/// Names that are not UTF-8 are stored as bytes (format 3) and restored exactly: two such
/// siblings, which a lossy name would merge, come back as two files with their own contents,
/// and so does a symlink whose target is not UTF-8.
#[tokio::test]
async fn names_that_are_not_utf8_are_restored_exactly() {
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt as _;
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    let first = OsStr::from_bytes(b"build-\xff.log");
    let second = OsStr::from_bytes(b"build-\xfe.log");
    write(&src.join("logs").join(first), b"first\n");
    write(&src.join("logs").join(second), b"second\n");
    write(&src.join("a\\b.txt"), b"a backslash is part of the name\n");
    std::os::unix::fs::symlink(
        OsStr::from_bytes(b"logs/build-\xff.log"),
        src.join("latest-log"),
    )
    .unwrap();
    let storage = Storage::local(&dir.path().join("vault"), true).unwrap();
    let vault = Vault::init(storage.clone(), &opts(), &pass())
        .await
        .unwrap();
    let spec = [SourceSpec::new("ci", &src)];
    let taken = vault
        .snapshot(&spec, &BTreeMap::new(), &NoProgress)
        .await
        .unwrap();
    assert_eq!(
        vault.source_digest(&spec).await.unwrap(),
        taken.source_digest
    );

    let out = dir.path().join("out");
    let restored = Vault::open(storage, &pass())
        .await
        .unwrap()
        .restore(&taken.id, &out, Some("ci"), &NoProgress)
        .await
        .unwrap();
    assert_eq!(restored.files, 3);
    assert_eq!(
        std::fs::read(out.join("logs").join(first)).unwrap(),
        b"first\n"
    );
    assert_eq!(
        std::fs::read(out.join("logs").join(second)).unwrap(),
        b"second\n"
    );
    assert_eq!(
        std::fs::read_link(out.join("latest-log"))
            .unwrap()
            .as_os_str(),
        OsStr::from_bytes(b"logs/build-\xff.log")
    );
    assert_same_tree(&src, &out);

    // Nothing changed: the next snapshot reads nothing again.
    let again = vault
        .snapshot(&spec, &BTreeMap::new(), &NoProgress)
        .await
        .unwrap();
    assert_eq!(
        (again.files_read, again.source_digest),
        (0, taken.source_digest)
    );
}

/// A same-size rewrite that keeps the old modification time (`cp -p`, `rsync -t`, a build
/// that restores timestamps) is read again: change detection compares the change time and
/// inode too, as restic does.
#[tokio::test]
async fn a_same_size_rewrite_with_its_old_mtime_is_read_again() {
    let lv = LocalVault::with_tree().await;
    let spec = [SourceSpec::new("ci", &lv.src)];
    let file = lv.src.join("env/prod.tfvars");
    let before = lv.snapshot_tree().await;
    let mtime = std::fs::metadata(&file).unwrap().modified().unwrap();
    let old = std::fs::read(&file).unwrap();
    let new = b"region = \"us-west-2\"\n";
    assert_eq!(old.len(), new.len(), "the same size");
    std::fs::write(&file, new).unwrap();
    std::fs::File::options()
        .append(true)
        .open(&file)
        .unwrap()
        .set_modified(mtime)
        .unwrap();
    assert_eq!(std::fs::metadata(&file).unwrap().modified().unwrap(), mtime);

    assert_ne!(
        lv.vault.source_digest(&spec).await.unwrap(),
        before.source_digest
    );
    let after = lv.snapshot_tree().await;
    assert_eq!(after.files_read, 1);
    assert_ne!(after.source_digest, before.source_digest);
    let out = lv.dir.path().join("out");
    lv.vault
        .restore(&after.id, &out, Some("ci"), &NoProgress)
        .await
        .unwrap();
    assert_eq!(std::fs::read(out.join("env/prod.tfvars")).unwrap(), new);
}

/// A young pack that no manifest references yet (a writer that wrote its index and is about
/// to write its manifest) is neither deleted nor dropped from the index by prune: once the
/// manifest lands, the snapshot restores.
#[tokio::test]
async fn prune_keeps_a_young_unreferenced_pack_indexed() {
    let lv = LocalVault::with_tree().await;
    let first = lv.snapshot_tree().await;
    backdate_packs(&lv.root, TWO_HOURS);
    write(&lv.src.join("artifacts/new.bin"), &vec![7u8; 300 * 1024]);
    let second = lv.snapshot_tree().await;
    let LocalVault {
        dir,
        src,
        root,
        vault,
        ..
    } = lv;
    // The second snapshot's manifest is not there yet, as for a writer between its index
    // and its manifest.
    let manifest = root.join("snapshots").join(&second.id);
    let summary = root.join("summaries").join(&second.id);
    let (manifest_bytes, summary_bytes) = (
        std::fs::read(&manifest).unwrap(),
        std::fs::read(&summary).unwrap(),
    );
    std::fs::remove_file(&manifest).unwrap();
    std::fs::remove_file(&summary).unwrap();

    let plan = vault
        .plan_prune(&Default::default(), time::OffsetDateTime::now_utc())
        .await
        .unwrap();
    assert!(plan.packs_to_delete.is_empty(), "{plan:?}");
    // Even a plan made by a clock far ahead (which saw the pack as old) deletes nothing the
    // store says is young.
    let ahead = time::OffsetDateTime::now_utc() + time::Duration::hours(3);
    let plan = vault.plan_prune(&Default::default(), ahead).await.unwrap();
    assert!(!plan.packs_to_delete.is_empty(), "{plan:?}");
    assert_eq!(vault.prune(&plan).await.unwrap().packs_deleted, 0);

    std::fs::write(&manifest, manifest_bytes).unwrap();
    std::fs::write(&summary, summary_bytes).unwrap();
    let out = dir.path().join("out");
    vault
        .restore(&second.id, &out, Some("ci"), &NoProgress)
        .await
        .unwrap();
    assert_same_tree(&src, &out);
    assert!(vault.verify(true, &NoProgress).await.unwrap().is_clean());
    assert_ne!(first.id, second.id);
}

/// Listings compared for what both vaults of a replication must agree on.
fn without_stored(listed: Vec<dr_vault::SnapshotInfo>) -> Vec<dr_vault::SnapshotInfo> {
    listed
        .into_iter()
        .map(|mut s| {
            s.stored_bytes = None;
            s
        })
        .collect()
}
