//! Remembering, for the rest of the process, a store that did not answer.
//!
//! One `terraform plan` refreshes a vault, then the pair that names it, then plans both; each
//! step opens the vault again. When the vault's region is dark, each would wait out the full
//! request budget (a frozen server answers nothing until the request timeout): minutes in
//! all. So the first request that finds a store unreachable (connection refused or reset,
//! connect or request timed out, after object_store's retries) marks it, and every later
//! request to it in this process fails at once with that first error. A store that answers
//! with an error (403, 404, 500) is reachable and never marked. The mark fades after
//! [`REMEMBERED_FOR`], so a long-lived program tries again.

use super::causes;
use async_trait::async_trait;
use futures_util::stream::{BoxStream, StreamExt as _};
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
    PutMultipartOptions, PutOptions, PutPayload, PutResult, RenameOptions,
};
use std::collections::HashMap;
use std::ops::Range;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// How long an unanswered store is not tried again.
pub const REMEMBERED_FOR: Duration = Duration::from_secs(300);

/// The error of a request not made because its store did not answer earlier in this process.
#[derive(Debug)]
pub struct NotAnswering {
    store: String,
    seconds_ago: u64,
    cause: String,
}

impl std::fmt::Display for NotAnswering {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} did not answer {}s ago in this run, so it is not tried again: {}",
            self.store, self.seconds_ago, self.cause
        )
    }
}

impl std::error::Error for NotAnswering {}

/// Whether an error, anywhere down its source chain, says the store did not answer at all:
/// no connection (refused, reset, timed out), or a request that timed out or broke off. A
/// credentials service that did not answer (the metadata endpoints an AWS client asks when
/// the environment holds no keys) is not the store: that is missing credentials.
pub fn is_unreachable(e: &(dyn std::error::Error + 'static)) -> bool {
    unanswered_kind(e).is_some()
}

/// Whether a request that failed so proves the store dark for the rest of the process: no
/// connection at all, from any request; a timeout only from a read (GET, HEAD, LIST), whose
/// answer is small or streamed. An upload that timed out may only have met a slow link, and
/// marking its store would make the writer's lock release fail too.
fn proves_dark(e: &object_store::Error, read: bool) -> bool {
    use object_store::client::HttpErrorKind;
    match unanswered_kind(e) {
        Some(HttpErrorKind::Connect) => true,
        Some(_) => read,
        None => false,
    }
}

/// The kind of a connection-level failure in `e`'s source chain, if it is one.
fn unanswered_kind(
    e: &(dyn std::error::Error + 'static),
) -> Option<object_store::client::HttpErrorKind> {
    use object_store::client::{HttpError, HttpErrorKind};
    if is_credentials_lookup(e) {
        return None;
    }
    // The first error down the chain that says anything about the connection decides.
    causes(e)
        .find_map(|c| {
            if c.is::<NotAnswering>() {
                return Some(HttpErrorKind::Connect);
            }
            c.downcast_ref::<HttpError>().map(HttpError::kind)
        })
        .filter(|kind| {
            matches!(
                kind,
                HttpErrorKind::Connect | HttpErrorKind::Timeout | HttpErrorKind::Interrupted
            )
        })
}

/// Whether an error came from looking credentials up (the instance metadata service) rather
/// than from the store itself.
pub fn is_credentials_lookup(e: &(dyn std::error::Error + 'static)) -> bool {
    causes(e).any(|c| {
        let text = c.to_string();
        // EC2 instance metadata, ECS task credentials.
        text.contains("169.254.169.254") || text.contains("169.254.170.2")
    })
}

/// Stores marked unreachable in this process: the store's name → when, and the first error.
fn marks() -> &'static Mutex<HashMap<String, (Instant, String)>> {
    static MARKS: OnceLock<Mutex<HashMap<String, (Instant, String)>>> = OnceLock::new();
    MARKS.get_or_init(Default::default)
}

/// Wraps a remote store: refuses at once while it is marked, marks it on an unanswered request.
#[derive(Debug)]
pub struct Reachability {
    inner: Arc<dyn ObjectStore>,
    /// Names the store (its vault id without the prefix: scheme, bucket, endpoint, region).
    name: String,
}

impl Reachability {
    pub fn new(inner: Arc<dyn ObjectStore>, name: String) -> Self {
        Reachability { inner, name }
    }

    fn check(&self) -> object_store::Result<()> {
        let mut marks = marks().lock().unwrap_or_else(|p| p.into_inner());
        let Some((when, cause)) = marks.get(&self.name) else {
            return Ok(());
        };
        if when.elapsed() > REMEMBERED_FOR {
            marks.remove(&self.name);
            return Ok(());
        }
        Err(object_store::Error::Generic {
            store: "vault storage",
            source: Box::new(NotAnswering {
                store: self.name.clone(),
                seconds_ago: when.elapsed().as_secs(),
                cause: cause.clone(),
            }),
        })
    }

    fn observe<T>(&self, result: &object_store::Result<T>, read: bool) {
        observe(&self.name, result, read);
    }
}

fn observe<T>(name: &str, result: &object_store::Result<T>, read: bool) {
    if let Err(e) = result {
        if proves_dark(e, read) {
            let mut marks = marks().lock().unwrap_or_else(|p| p.into_inner());
            marks
                .entry(name.to_string())
                .or_insert_with(|| (Instant::now(), e.to_string()));
        }
    }
}

impl std::fmt::Display for Reachability {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Reachability({})", self.inner)
    }
}

#[async_trait]
impl ObjectStore for Reachability {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> object_store::Result<PutResult> {
        self.check()?;
        let result = self.inner.put_opts(location, payload, opts).await;
        self.observe(&result, false);
        result
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> object_store::Result<Box<dyn MultipartUpload>> {
        self.check()?;
        let result = self.inner.put_multipart_opts(location, opts).await;
        self.observe(&result, false);
        result
    }

    async fn get_opts(
        &self,
        location: &Path,
        options: GetOptions,
    ) -> object_store::Result<GetResult> {
        self.check()?;
        let result = self.inner.get_opts(location, options).await;
        self.observe(&result, true);
        result
    }

    async fn get_ranges(
        &self,
        location: &Path,
        ranges: &[Range<u64>],
    ) -> object_store::Result<Vec<bytes::Bytes>> {
        self.check()?;
        let result = self.inner.get_ranges(location, ranges).await;
        self.observe(&result, true);
        result
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, object_store::Result<Path>>,
    ) -> BoxStream<'static, object_store::Result<Path>> {
        if let Err(e) = self.check() {
            return futures_util::stream::once(async move { Err(e) }).boxed();
        }
        let name = self.name.clone();
        self.inner
            .delete_stream(locations)
            .inspect(move |r| observe(&name, r, false))
            .boxed()
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        if let Err(e) = self.check() {
            return futures_util::stream::once(async move { Err(e) }).boxed();
        }
        let name = self.name.clone();
        self.inner
            .list(prefix)
            .inspect(move |r| observe(&name, r, true))
            .boxed()
    }

    fn list_with_offset(
        &self,
        prefix: Option<&Path>,
        offset: &Path,
    ) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        if let Err(e) = self.check() {
            return futures_util::stream::once(async move { Err(e) }).boxed();
        }
        let name = self.name.clone();
        self.inner
            .list_with_offset(prefix, offset)
            .inspect(move |r| observe(&name, r, true))
            .boxed()
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> object_store::Result<ListResult> {
        self.check()?;
        let result = self.inner.list_with_delimiter(prefix).await;
        self.observe(&result, true);
        result
    }

    async fn copy_opts(
        &self,
        from: &Path,
        to: &Path,
        options: CopyOptions,
    ) -> object_store::Result<()> {
        self.check()?;
        let result = self.inner.copy_opts(from, to, options).await;
        self.observe(&result, false);
        result
    }

    async fn rename_opts(
        &self,
        from: &Path,
        to: &Path,
        options: RenameOptions,
    ) -> object_store::Result<()> {
        self.check()?;
        let result = self.inner.rename_opts(from, to, options).await;
        self.observe(&result, false);
        result
    }
}
