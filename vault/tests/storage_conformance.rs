//! One conformance suite for every storage backend: what the vault relies on. S3 runs
//! against a real S3-protocol server on loopback (moto, installed by `scripts/setup`).

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

/// A moto S3 server on a free loopback port, stopped on drop.
struct Moto {
    child: std::process::Child,
    endpoint: String,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn moto_server() -> Moto {
    let bin =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../.tools/venv/bin/moto_server");
    assert!(
        bin.is_file(),
        "moto_server not found at {}.\nhint: run scripts/setup, which installs it into .tools/venv",
        bin.display()
    );
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = std::process::Command::new(bin)
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let started = std::time::Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(30),
            "moto did not start within 30 s"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    Moto {
        child,
        endpoint: format!("http://127.0.0.1:{port}"),
    }
}

/// Creates a bucket with a plain HTTP PUT (moto accepts unsigned requests).
fn create_bucket(endpoint: &str, bucket: &str) {
    use std::io::{Read as _, Write as _};
    let addr = endpoint.trim_start_matches("http://");
    let mut conn = std::net::TcpStream::connect(addr).unwrap();
    write!(
        conn,
        "PUT /{bucket} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut reply = String::new();
    conn.read_to_string(&mut reply).unwrap();
    assert!(
        reply.starts_with("HTTP/1.1 200"),
        "bucket creation failed: {reply}"
    );
}

#[tokio::test]
async fn s3_backend_on_a_loopback_server() {
    let moto = moto_server();
    create_bucket(&moto.endpoint, "vaults");
    // Test credentials for the emulator; real deployments take them from AWS_* variables.
    let options = [
        ("endpoint", moto.endpoint.as_str()),
        ("allow_http", "true"),
        ("region", "us-east-1"),
        ("access_key_id", "test"),
        ("secret_access_key", "test"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let dir = tempfile::tempdir().unwrap();
    let s = Storage::open("s3://vaults/team/primary", &options, dir.path(), true).unwrap();
    assert_eq!(s.url(), "s3://vaults/team/primary");
    conformance(&s).await;

    // The whole engine on S3: snapshot and restore through the server.
    let src = dir.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("pipeline.yml"), "stages: [deploy]\n").unwrap();
    let mut opts = dr_vault::InitOptions::new("s3-vault", "us-east-1");
    opts.kdf = dr_vault::KdfParams::INSECURE_FOR_TESTS;
    let fresh = Storage::open("s3://vaults/team/engine", &options, dir.path(), true).unwrap();
    let pass = dr_vault::Passphrase::new("p");
    let vault = dr_vault::Vault::init(fresh, &opts, &pass).await.unwrap();
    vault
        .snapshot(
            &[dr_vault::SourceSpec::new("ci", &src)],
            &Default::default(),
            &dr_vault::NoProgress,
        )
        .await
        .unwrap();
    vault
        .restore(
            "latest",
            &dir.path().join("out"),
            Some("ci"),
            &dr_vault::NoProgress,
        )
        .await
        .unwrap();
    assert_eq!(
        std::fs::read_to_string(dir.path().join("out/pipeline.yml")).unwrap(),
        "stages: [deploy]\n"
    );
    assert!(vault
        .verify(true, &dr_vault::NoProgress)
        .await
        .unwrap()
        .is_clean());
}
