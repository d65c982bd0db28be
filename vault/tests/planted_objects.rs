//! Objects anyone with write access to the bucket can plant, or that damage leaves, never lock
//! the owners out: absurd key-derivation parameters are refused without being tried, a key
//! file that does not parse is skipped while another opens, a config whose chunker bounds
//! would crash FastCDC is refused, and a manifest that does not open is reported and skipped
//! by listing, "latest", prune and replication.

mod common;
use common::{edit_config, put_config};

use dr_vault::{
    ErrorKind, InitOptions, KdfParams, NoProgress, Passphrase, SourceSpec, Storage, Vault,
};
use std::collections::BTreeMap;
use std::path::Path;

fn opts() -> InitOptions {
    let mut o = InitOptions::new("primary", "eu-west-1");
    o.kdf = KdfParams::INSECURE_FOR_TESTS;
    o
}

fn pass() -> Passphrase {
    Passphrase::new("pw")
}

async fn vault_with_snapshots(root: &Path, src: &Path, count: usize) -> (Storage, Vault) {
    let storage = Storage::local(root, true).unwrap();
    let vault = Vault::init(storage.clone(), &opts(), &pass())
        .await
        .unwrap();
    std::fs::create_dir_all(src).unwrap();
    for i in 0..count {
        std::fs::write(src.join("ci.yml"), format!("stages: [build] # {i}\n")).unwrap();
        vault
            .snapshot(&[SourceSpec::new("ci", src)], &BTreeMap::new(), &NoProgress)
            .await
            .unwrap();
    }
    (storage, vault)
}

/// A key file as `init` writes it, with other argon2 parameters.
fn key_file_with(params: serde_json::Value) -> bytes::Bytes {
    bytes::Bytes::from(
        serde_json::to_vec(&serde_json::json!({
            "kdf": "argon2id",
            "params": params,
            "salt": "c2FsdHNhbHRzYWx0c2FsdA==",
            "wrapped_key": "AAAA",
            "created_at": "2026-12-01T00:00:00Z",
        }))
        .unwrap(),
    )
}

#[tokio::test]
async fn planted_key_files_are_skipped_untried_and_the_real_key_still_opens() {
    let dir = tempfile::tempdir().unwrap();
    let (storage, _) =
        vault_with_snapshots(&dir.path().join("v"), &dir.path().join("src"), 1).await;
    // Named to sort before the real key, so they are met first.
    let planted = [
        // 4 TiB of memory: tried, this would exhaust the machine.
        key_file_with(
            serde_json::json!({ "memory_kib": u32::MAX, "iterations": 1, "parallelism": 1 }),
        ),
        // A billion passes: tried, this would never end.
        key_file_with(
            serde_json::json!({ "memory_kib": 8, "iterations": 1_000_000_000, "parallelism": 1 }),
        ),
        bytes::Bytes::from_static(b"{ not a key file"),
    ];
    for (i, bytes) in planted.into_iter().enumerate() {
        let key = format!("keys/{}", format!("0{i}").repeat(32));
        storage.put_new(&key, bytes).await.unwrap();
    }
    let started = std::time::Instant::now();
    let vault = Vault::open(storage.clone(), &pass()).await.unwrap();
    assert!(started.elapsed().as_secs() < 10, "a planted key was tried");
    assert_eq!(vault.snapshots().await.unwrap().len(), 1);

    // With a wrong passphrase the error names what was skipped, and why.
    let err = Vault::open(storage, &Passphrase::new("wrong"))
        .await
        .err()
        .unwrap();
    assert_eq!(err.kind, ErrorKind::WrongPassphrase);
    let text = err.to_string();
    assert!(text.contains("3 key file(s) could not be tried"), "{text}");
    assert!(text.contains("refused without being tried"), "{text}");
    assert!(
        text.contains(&format!("keys/{}", "00".repeat(32))),
        "{text}"
    );
    assert!(text.contains("is not a key file"), "{text}");
}

/// A pack replaced by a symlink to a file outside the vault, or by a FIFO, is never read
/// through (nor waited on forever) by a replication that copies packs as they are: refused,
/// named, and the standby is left without a copy or the snapshot.
#[tokio::test]
async fn a_planted_symlink_or_fifo_pack_is_refused_by_a_verbatim_copy() {
    for planted in ["symlink", "fifo"] {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("v");
        let (_, vault) = vault_with_snapshots(&root, &dir.path().join("src"), 1).await;
        let pack = std::fs::read_dir(root.join("data"))
            .unwrap()
            .flat_map(|d| std::fs::read_dir(d.unwrap().path()).unwrap())
            .map(|p| p.unwrap().path())
            .next()
            .unwrap();
        let outside = dir.path().join("outside");
        std::fs::rename(&pack, &outside).unwrap();
        if planted == "symlink" {
            std::os::unix::fs::symlink(&outside, &pack).unwrap();
        } else {
            let made = std::process::Command::new("mkfifo")
                .arg(&pack)
                .status()
                .unwrap();
            assert!(made.success());
        }
        let standby_root = dir.path().join("standby");
        let standby = Vault::init_sharing_key(
            Storage::local(&standby_root, true).unwrap(),
            &opts(),
            &pass(),
            &vault,
        )
        .await
        .unwrap();
        let plan = vault.plan_replication(&standby).await.unwrap();
        let err = vault
            .replicate(&standby, &plan, &NoProgress)
            .await
            .unwrap_err();
        let name = pack.file_name().unwrap().to_str().unwrap();
        assert!(err.to_string().contains(name), "{planted}: {err}");
        assert!(
            !standby_root
                .join(pack.strip_prefix(&root).unwrap())
                .exists(),
            "{planted}"
        );
        assert!(standby.snapshots().await.unwrap().is_empty(), "{planted}");
    }
}

#[test]
fn kdf_parameters_are_bounded() {
    assert!(KdfParams::STRONG.check("k").is_ok());
    assert!(KdfParams::INSECURE_FOR_TESTS.check("k").is_ok());
    for (memory_kib, iterations, parallelism) in [
        (u32::MAX, 1, 1),
        (1024 * 1024 + 1, 1, 1),
        (8, 0, 1),
        (8, 17, 1),
        (1024 * 1024, 5, 1),
        (64, 1, 0),
        (64, 1, 17),
        (8, 1, 2),
    ] {
        let params = KdfParams {
            memory_kib,
            iterations,
            parallelism,
        };
        let err = params.check("keys/k").unwrap_err();
        assert_eq!(err.kind, ErrorKind::Corrupt, "{params:?}");
        assert!(err.to_string().starts_with("keys/k: "), "{err}");
    }
}

#[tokio::test]
async fn a_config_with_chunker_bounds_fastcdc_rejects_is_refused_not_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("v");
    vault_with_snapshots(&root, &dir.path().join("src"), 1).await;
    let original = std::fs::read(root.join("config")).unwrap();
    for (field, value) in [
        ("min_size", 0),
        ("avg_size", 1),
        ("max_size", u32::MAX),
        // In range each, but not growing.
        ("min_size", 4 * 1024 * 1024 - 1),
    ] {
        edit_config(&root, |c| c["chunker"][field] = value.into());
        let storage = Storage::local(&root, false).unwrap();
        let err = Vault::open(storage.clone(), &pass()).await.err().unwrap();
        assert_eq!(err.kind, ErrorKind::Corrupt, "{field}={value}: {err}");
        let text = err.to_string();
        assert!(text.contains("/config: chunker"), "{text}");
        assert_eq!(
            Vault::read_config(&storage).await.unwrap_err().kind,
            ErrorKind::Corrupt
        );
        put_config(&root, &original);
    }
    edit_config(&root, |c| c["pack_size"] = 0.into());
    let err = Vault::open(Storage::local(&root, false).unwrap(), &pass())
        .await
        .err()
        .unwrap();
    assert!(err.to_string().contains("pack_size is 0"), "{err}");

    // Asked for at init, the same bounds are an input error.
    let mut bad = opts();
    bad.chunker.max_size = 100;
    let err = Vault::init(Storage::memory(), &bad, &pass())
        .await
        .err()
        .unwrap();
    assert_eq!(err.kind, ErrorKind::InvalidInput);
    assert!(err.to_string().contains("max_size is 100"), "{err}");
}

#[tokio::test]
async fn a_manifest_that_does_not_open_is_reported_and_skipped_by_everyone() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("v");
    let src = dir.path().join("src");
    let (storage, vault) = vault_with_snapshots(&root, &src, 2).await;
    let before = vault.snapshots().await.unwrap();
    // Planted under a valid name, so it sorts as the newest too (it has no time).
    let planted = format!("snapshots/{}", "ee".repeat(32));
    storage
        .put_new(
            &planted,
            bytes::Bytes::from_static(b"garbage, not a sealed manifest"),
        )
        .await
        .unwrap();

    let listing = vault.snapshot_listing().await.unwrap();
    assert_eq!(listing.snapshots, before);
    assert_eq!(listing.unreadable.len(), 1);
    assert_eq!(listing.unreadable[0].object, planted);
    assert!(
        listing.unreadable[0]
            .message
            .contains("fails authentication"),
        "{:?}",
        listing.unreadable
    );
    assert_eq!(
        vault.resolve_snapshot("latest").await.unwrap(),
        before[1].id
    );
    let out = dir.path().join("out");
    vault
        .restore("latest", &out, Some("ci"), &NoProgress)
        .await
        .unwrap();
    assert_eq!(
        std::fs::read_to_string(out.join("ci.yml")).unwrap(),
        "stages: [build] # 1\n"
    );
    // The next snapshot finds its parent as before.
    std::fs::write(src.join("ci.yml"), "stages: [build] # 2\n").unwrap();
    let third = vault
        .snapshot(
            &[SourceSpec::new("ci", &src)],
            &BTreeMap::new(),
            &NoProgress,
        )
        .await
        .unwrap();
    assert_eq!(third.files_read, 1);

    // Verify names it.
    let report = vault.verify(false, &NoProgress).await.unwrap();
    assert!(
        report.problems.iter().any(|p| p.object.ends_with(&planted)),
        "{report:?}"
    );

    // Prune forgets what retention lets go, names the manifest, and deletes no pack while
    // it is there: what it references cannot be known.
    let retention = dr_vault::Retention {
        keep_last: Some(1),
        ..Default::default()
    };
    let plan = vault
        .plan_prune(&retention, time::OffsetDateTime::now_utc())
        .await
        .unwrap();
    assert_eq!(plan.forget.len(), 2);
    assert_eq!(plan.unreadable.len(), 1);
    assert!(plan.packs_to_delete.is_empty(), "{plan:?}");
    let pruned = vault.prune(&plan).await.unwrap();
    assert_eq!((pruned.snapshots_forgotten, pruned.packs_deleted), (2, 0));
    assert!(
        storage.exists(&planted).await.unwrap(),
        "not the vault's to delete"
    );

    // Replication copies the readable snapshots, and a standby's own unreadable manifest
    // does not stop it either.
    let standby_storage = Storage::local(&dir.path().join("standby"), true).unwrap();
    let standby = Vault::init(standby_storage.clone(), &opts(), &pass())
        .await
        .unwrap();
    standby_storage
        .put_new(&planted, bytes::Bytes::from_static(b"garbage"))
        .await
        .unwrap();
    let plan = vault.plan_replication(&standby).await.unwrap();
    assert_eq!(plan.to_copy.len(), 1);
    vault.replicate(&standby, &plan, &NoProgress).await.unwrap();
    assert_eq!(standby.snapshots().await.unwrap().len(), 1);
}

/// A manifest damaged after its summary was written still lists (from the summary), but no
/// longer stops anything that needs it: the next snapshot (whose parent it is) reads every
/// file instead, replication copies the rest and names it, prune's plan names it and deletes
/// no pack while retention keeps it.
#[tokio::test]
async fn a_damaged_manifest_behind_a_good_summary_stops_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("v");
    let src = dir.path().join("src");
    let (storage, vault) = vault_with_snapshots(&root, &src, 2).await;
    let listed = vault.snapshots().await.unwrap();
    let damaged = &listed[1].id;
    let key = format!("snapshots/{damaged}");
    std::fs::remove_file(root.join(&key)).unwrap();
    std::fs::write(root.join(&key), b"bit rot").unwrap();
    assert_eq!(
        vault.snapshots().await.unwrap().len(),
        2,
        "listed from its summary"
    );

    let spec = [SourceSpec::new("ci", &src)];
    let digest = vault.source_digest(&spec).await.unwrap();
    let third = vault
        .snapshot(&spec, &BTreeMap::new(), &NoProgress)
        .await
        .unwrap();
    assert_eq!(third.source_digest, digest);
    assert_eq!(third.files_read, 1, "no parent to reuse from: read again");

    let standby = Vault::init(
        Storage::local(&dir.path().join("standby"), true).unwrap(),
        &opts(),
        &pass(),
    )
    .await
    .unwrap();
    let plan = vault.plan_replication(&standby).await.unwrap();
    let copied = vault.replicate(&standby, &plan, &NoProgress).await.unwrap();
    assert_eq!(copied.snapshots_copied, 2);
    assert_eq!(copied.unreadable.len(), 1);
    assert_eq!(copied.unreadable[0].object, key);

    // Kept by retention, its blobs cannot be known: no pack goes, even for a plan that sees
    // every pack as old. (Forgotten by retention, its data may go like any other's.)
    let plan = vault
        .plan_prune(
            &Default::default(),
            time::OffsetDateTime::now_utc() + time::Duration::hours(3),
        )
        .await
        .unwrap();
    assert!(plan.unreadable.iter().any(|p| p.object == key), "{plan:?}");
    assert!(plan.packs_to_delete.is_empty(), "{plan:?}");
    assert!(storage.exists(&key).await.unwrap());
}

#[tokio::test]
async fn init_refuses_key_derivation_parameters_its_own_open_would_refuse() {
    let mut o = opts();
    o.kdf = KdfParams {
        memory_kib: 1024 * 1024,
        iterations: 3,
        parallelism: 2,
    };
    let err = Vault::init(Storage::memory(), &o, &pass())
        .await
        .err()
        .unwrap();
    assert_eq!(err.kind, ErrorKind::InvalidInput);
    assert!(err.to_string().contains("1024 MiB of memory"), "{err}");
}
