//! One conformance suite for every storage backend: what the vault relies on.

use bytes::Bytes;
use dr_vault::{ErrorKind, Storage};

async fn conformance(s: &Storage) {
    // create-if-absent: the first write wins, a second never replaces it.
    assert!(s
        .put_new("data/ab/one", Bytes::from_static(b"first"))
        .await
        .unwrap());
    assert!(!s
        .put_new("data/ab/one", Bytes::from_static(b"second"))
        .await
        .unwrap());
    assert_eq!(
        s.get("data/ab/one").await.unwrap(),
        Bytes::from_static(b"first")
    );

    assert_eq!(
        s.get_range("data/ab/one", 1..4).await.unwrap(),
        Bytes::from_static(b"irs")
    );
    let err = s.get("data/ab/missing").await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::NotFound);
    assert!(
        err.to_string().contains("data/ab/missing"),
        "errors name the object: {err}"
    );

    assert!(s.exists("data/ab/one").await.unwrap());
    assert!(!s.exists("nope").await.unwrap());

    s.put_new("data/cd/two", Bytes::from_static(b"22"))
        .await
        .unwrap();
    s.put_new("snapshots/x", Bytes::from_static(b"s"))
        .await
        .unwrap();
    let listed = s.list("data").await.unwrap();
    let keys: Vec<(&str, u64)> = listed.iter().map(|l| (l.key.as_str(), l.size)).collect();
    assert_eq!(keys, [("data/ab/one", 5), ("data/cd/two", 2)]);
    assert!(s.list("index").await.unwrap().is_empty());

    s.put_replace("locks/l", Bytes::from_static(b"1"))
        .await
        .unwrap();
    s.put_replace("locks/l", Bytes::from_static(b"2"))
        .await
        .unwrap();
    assert_eq!(s.get("locks/l").await.unwrap(), Bytes::from_static(b"2"));

    s.delete("data/cd/two").await.unwrap();
    s.delete("data/cd/two").await.unwrap();
    assert!(!s.exists("data/cd/two").await.unwrap());
}

#[tokio::test]
async fn memory_backend() {
    conformance(&Storage::memory()).await;
}

#[tokio::test]
async fn local_backend() {
    let dir = tempfile::tempdir().unwrap();
    let s = Storage::open(
        &format!("file://{}/vault", dir.path().display()),
        &Default::default(),
        dir.path(),
        true,
    )
    .unwrap();
    conformance(&s).await;
    // Local objects are plain files under the vault directory.
    assert!(dir.path().join("vault/data/ab/one").is_file());
}

#[tokio::test]
async fn local_paths_resolve_against_the_base_directory() {
    let dir = tempfile::tempdir().unwrap();
    let s = Storage::open("vaults/primary", &Default::default(), dir.path(), true).unwrap();
    assert_eq!(
        s.url(),
        format!("file://{}/vaults/primary", dir.path().display())
    );
    let missing = Storage::open("vaults/none", &Default::default(), dir.path(), false).unwrap_err();
    assert_eq!(missing.kind, ErrorKind::NotFound);
    let bad = Storage::open("ftp://x/y", &Default::default(), dir.path(), false).unwrap_err();
    assert_eq!(bad.kind, ErrorKind::InvalidInput);
}
