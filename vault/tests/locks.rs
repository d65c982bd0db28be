//! Locks in-process: a writer whose lock refresh fails never commits (a store that starts
//! refusing lock writes mid-snapshot), and a lock of a process that is gone is freed early only
//! when it was taken on this very machine. (A writer frozen past the window and one with a
//! wrong clock: `drctl/tests/locks.rs`.)

use dr_vault::locks::LockTiming;
use dr_vault::{
    ErrorKind, InitOptions, KdfParams, NoProgress, Passphrase, SourceSpec, Storage, Vault,
};
use futures_util::stream::BoxStream;
use object_store::memory::InMemory;
use object_store::path::Path as ObjectPath;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
    PutMultipartOptions, PutOptions, PutPayload, PutResult,
};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// An in-memory store whose lock writes after the first fail (`fail_lock_refreshes`) or hang
/// for `lock_refresh_delay`, and that takes `pack_delay` to start each pack upload.
#[derive(Debug, Default)]
struct FaultyStore {
    inner: InMemory,
    lock_writes: AtomicUsize,
    fail_lock_refreshes: bool,
    lock_refresh_delay: Duration,
    pack_delay: Duration,
}

impl std::fmt::Display for FaultyStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FaultyStore")
    }
}

#[async_trait::async_trait]
impl ObjectStore for FaultyStore {
    async fn put_opts(
        &self,
        location: &ObjectPath,
        payload: PutPayload,
        opts: PutOptions,
    ) -> object_store::Result<PutResult> {
        if location.as_ref().starts_with("locks/")
            && self.lock_writes.fetch_add(1, Ordering::SeqCst) > 0
        {
            if self.fail_lock_refreshes {
                return Err(object_store::Error::Generic {
                    store: "FaultyStore",
                    source: "503 Slow Down (injected)".into(),
                });
            }
            tokio::time::sleep(self.lock_refresh_delay).await;
        }
        self.inner.put_opts(location, payload, opts).await
    }

    async fn put_multipart_opts(
        &self,
        location: &ObjectPath,
        opts: PutMultipartOptions,
    ) -> object_store::Result<Box<dyn MultipartUpload>> {
        if location.as_ref().starts_with("data/") {
            tokio::time::sleep(self.pack_delay).await;
        }
        self.inner.put_multipart_opts(location, opts).await
    }

    async fn get_opts(
        &self,
        location: &ObjectPath,
        options: GetOptions,
    ) -> object_store::Result<GetResult> {
        self.inner.get_opts(location, options).await
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, object_store::Result<ObjectPath>>,
    ) -> BoxStream<'static, object_store::Result<ObjectPath>> {
        self.inner.delete_stream(locations)
    }

    fn list(
        &self,
        prefix: Option<&ObjectPath>,
    ) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        self.inner.list(prefix)
    }

    async fn list_with_delimiter(
        &self,
        prefix: Option<&ObjectPath>,
    ) -> object_store::Result<ListResult> {
        self.inner.list_with_delimiter(prefix).await
    }

    async fn copy_opts(
        &self,
        from: &ObjectPath,
        to: &ObjectPath,
        options: CopyOptions,
    ) -> object_store::Result<()> {
        self.inner.copy_opts(from, to, options).await
    }
}

fn opts() -> InitOptions {
    let mut o = InitOptions::new("primary", "eu-west-1");
    o.kdf = KdfParams::INSECURE_FOR_TESTS;
    o
}

fn pass() -> Passphrase {
    Passphrase::new("pw")
}

/// Takes a snapshot into a new vault on `store`, whose locks go stale after 3 s (refreshed
/// every half second), and returns the vault and the snapshot's error: it must fail, locked.
async fn snapshot_that_loses_its_lock(store: FaultyStore) -> (Storage, Vault, dr_vault::Error) {
    let storage = Storage::from_object_store(Arc::new(store), "faulty://vault");
    let mut vault = Vault::init(storage.clone(), &opts(), &pass())
        .await
        .unwrap();
    vault.set_lock_timing(LockTiming::with_stale_after(Duration::from_secs(3)));
    let src = tempfile::tempdir().unwrap();
    std::fs::write(src.path().join("ci.yml"), "stages: [build]\n").unwrap();
    let err = vault
        .snapshot(
            &[SourceSpec::new("ci", src.path())],
            &BTreeMap::new(),
            &NoProgress,
        )
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::Locked, "{err}");
    assert!(storage.list("snapshots").await.unwrap().is_empty());
    (storage, vault, err)
}

#[tokio::test]
async fn a_writer_whose_lock_refresh_fails_aborts_before_committing_anything() {
    // Taking the lock is the one lock write that succeeds; every refresh fails, the first
    // while the first pack is uploaded.
    let (storage, vault, err) = snapshot_that_loses_its_lock(FaultyStore {
        fail_lock_refreshes: true,
        pack_delay: Duration::from_millis(1500),
        ..FaultyStore::default()
    })
    .await;
    let text = err.to_string();
    assert!(
        text.contains("lost the lock faulty://vault/locks/"),
        "{text}"
    );
    assert!(text.contains("503 Slow Down (injected)"), "{text}");
    assert!(text.contains("nothing was committed"), "{text}");
    // No index and no manifest: the packs it wrote are unreferenced, for prune to reclaim.
    assert!(storage.list("index").await.unwrap().is_empty());
    assert!(!storage.list("data").await.unwrap().is_empty());
    assert!(vault.snapshots().await.unwrap().is_empty());
}

/// A refresh that hangs (a store retrying, a stalled connection) and succeeds late leaves a
/// gap in which others may have judged the lock stale: the writer aborts, however recent its
/// last refresh looks once it returns.
#[tokio::test]
async fn a_refresh_that_hangs_past_half_the_window_loses_the_lock() {
    // The first refresh takes 2 s, over half the 3 s window.
    let (_, _, err) = snapshot_that_loses_its_lock(FaultyStore {
        lock_refresh_delay: Duration::from_millis(2000),
        pack_delay: Duration::from_millis(3000),
        ..FaultyStore::default()
    })
    .await;
    assert!(
        err.to_string().contains("passed between two refreshes"),
        "{err}"
    );
}

/// The lock object a process elsewhere would have written (the JSON of FORMAT.md, "Locks").
fn planted_lock(host: &str, boot_id: &str, pid: u32, started: u64) -> bytes::Bytes {
    let pid_namespace = std::fs::read_link("/proc/self/ns/pid")
        .unwrap()
        .display()
        .to_string();
    bytes::Bytes::from(
        serde_json::to_vec(&serde_json::json!({
            "exclusive": false,
            "refreshed": time::OffsetDateTime::now_utc().unix_timestamp(),
            "hostname": host,
            "pid": pid,
            "boot_id": boot_id,
            "pid_namespace": pid_namespace,
            "started": started,
        }))
        .unwrap(),
    )
}

/// A pid no process has (the kernel's default pid_max is 4 194 304 at most).
const NO_SUCH_PID: u32 = 4_194_305;

#[tokio::test]
async fn a_dead_holder_frees_its_lock_early_only_on_the_same_boot_of_the_same_machine() {
    let dir = tempfile::tempdir().unwrap();
    let storage = Storage::local(&dir.path().join("v"), true).unwrap();
    let vault = Vault::init(storage.clone(), &opts(), &pass())
        .await
        .unwrap();
    let plan = vault
        .plan_prune(&Default::default(), time::OffsetDateTime::now_utc())
        .await
        .unwrap();
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .unwrap()
        .trim()
        .to_string();
    let boot_id = std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .unwrap()
        .trim()
        .to_string();
    let lock = format!("locks/{}", "ab".repeat(32));

    // Another container with the same host name (another boot id): its pid means nothing
    // here, so its fresh lock holds.
    let elsewhere = planted_lock(
        &host,
        "00000000-0000-4000-8000-000000000000",
        NO_SUCH_PID,
        1,
    );
    storage.put_replace(&lock, elsewhere).await.unwrap();
    let err = vault.prune(&plan).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::Locked, "{err}");

    // The same machine and boot, a pid now used by a process started later (this one): the
    // holder is gone.
    let reused = planted_lock(&host, &boot_id, std::process::id(), 1);
    storage.put_replace(&lock, reused).await.unwrap();
    vault.prune(&plan).await.unwrap();

    // The same machine and boot, a process that no longer exists: gone too.
    let dead = planted_lock(&host, &boot_id, NO_SUCH_PID, 1);
    storage.put_replace(&lock, dead).await.unwrap();
    vault.prune(&plan).await.unwrap();

    // A lock without a boot id (an older build's) waits to go stale.
    let old_build = bytes::Bytes::from(
        serde_json::to_vec(&serde_json::json!({
            "exclusive": false,
            "refreshed": time::OffsetDateTime::now_utc().unix_timestamp(),
            "hostname": host,
            "pid": NO_SUCH_PID,
        }))
        .unwrap(),
    );
    storage.put_replace(&lock, old_build).await.unwrap();
    assert_eq!(
        vault.prune(&plan).await.unwrap_err().kind,
        ErrorKind::Locked
    );
}

#[tokio::test]
async fn a_holder_whose_clock_is_hours_behind_keeps_its_lock_while_the_store_sees_it_fresh() {
    let dir = tempfile::tempdir().unwrap();
    let storage = Storage::local(&dir.path().join("v"), true).unwrap();
    let vault = Vault::init(storage.clone(), &opts(), &pass())
        .await
        .unwrap();
    let plan = vault
        .plan_prune(&Default::default(), time::OffsetDateTime::now_utc())
        .await
        .unwrap();
    // Written just now (by the store's clock) by a machine whose clock says five hours ago.
    let five_hours_ago = time::OffsetDateTime::now_utc() - time::Duration::hours(5);
    let lock = bytes::Bytes::from(
        serde_json::to_vec(&serde_json::json!({
            "exclusive": false,
            "refreshed": five_hours_ago.unix_timestamp(),
            "hostname": "ci-runner-on-another-host",
            "pid": 4242,
        }))
        .unwrap(),
    );
    storage
        .put_replace(&format!("locks/{}", "cd".repeat(32)), lock)
        .await
        .unwrap();
    let err = vault.prune(&plan).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::Locked, "{err}");
    assert!(
        err.to_string().contains("ci-runner-on-another-host"),
        "{err}"
    );
}
