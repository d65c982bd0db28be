//! A bound on the memory that work on blocking threads holds at once: snapshot's reads,
//! restore's writes and replicate's copies each reserve what they hold before they run.

use crate::error::{Error, ErrorKind, Result};
use std::sync::Arc;

/// A bound, in KiB, on what work running on blocking threads holds at once (file data being
/// read, restored or copied). Each piece of work reserves what it holds, up to the whole.
#[derive(Clone)]
pub(super) struct Budget {
    kib: u32,
    room: Arc<tokio::sync::Semaphore>,
    /// What the work is, as errors say it ("read", "restore", "copy").
    work: &'static str,
}

impl Budget {
    pub(super) fn new(kib: u32, work: &'static str) -> Budget {
        Budget {
            kib,
            room: Arc::new(tokio::sync::Semaphore::new(kib as usize)),
            work,
        }
    }

    /// Runs `job` on a blocking thread once `holds_kib` is free; the reservation ends with it.
    pub(super) async fn run_blocking<T: Send + 'static>(
        &self,
        holds_kib: u64,
        job: impl FnOnce() -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let work = self.work;
        let want = holds_kib.min(u64::from(self.kib)) as u32;
        let reserved = self
            .room
            .clone()
            .acquire_many_owned(want)
            .await
            .map_err(|e| Error::new(ErrorKind::Io, format!("{work} budget: {e}")))?;
        tokio::task::spawn_blocking(move || {
            let done = job();
            drop(reserved);
            done
        })
        .await
        .map_err(|e| Error::new(ErrorKind::Io, format!("{work} task failed: {e}")))?
    }
}
