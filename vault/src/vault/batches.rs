//! Files grouped for blocking threads, by restore and by replication alike: small files in
//! batches (one storage read fetches many of their blobs), each large file alone.

use crate::format::Entry;

/// Small files restored by one blocking thread in a row: at most this many, holding at most
/// this many KiB, so one storage read fetches many of their blobs.
const BATCH_FILES: usize = 64;
const BATCH_KIB: u64 = 1024;

/// Files handled by one blocking task (restored, or copied by replication), each with where
/// it goes, and what they hold at most at once (KiB).
pub(crate) struct Batch<T> {
    pub(crate) files: Vec<(Entry, T)>,
    pub(crate) holds_kib: u64,
}

/// Groups files in order: small ones into batches, each large one alone.
pub(crate) fn batch_files<T>(files: Vec<(Entry, T)>, largest_chunk: u64) -> Vec<Batch<T>> {
    let mut batcher = Batcher::new(largest_chunk);
    let mut batches: Vec<Batch<T>> = files
        .into_iter()
        .filter_map(|(entry, dest)| batcher.push(entry, dest))
        .collect();
    batches.extend(batcher.finish());
    batches
}

/// [`batch_files`] as the files come: each push may complete a batch.
pub(crate) struct Batcher<T> {
    largest_chunk: u64,
    open: Option<Batch<T>>,
}

impl<T> Batcher<T> {
    pub(crate) fn new(largest_chunk: u64) -> Self {
        Batcher {
            largest_chunk,
            open: None,
        }
    }

    /// Adds the next file; returns the batch it completed, if it starts a new one.
    pub(crate) fn push(&mut self, entry: Entry, dest: T) -> Option<Batch<T>> {
        let holds_kib = entry.size.min(self.largest_chunk).div_ceil(1024).max(1);
        let small = entry.size <= BATCH_KIB * 1024;
        match &mut self.open {
            Some(b)
                if small
                    && b.files.len() < BATCH_FILES
                    && b.holds_kib + holds_kib <= BATCH_KIB
                    && b.files
                        .last()
                        .is_some_and(|(e, _)| e.size <= BATCH_KIB * 1024) =>
            {
                b.holds_kib += holds_kib;
                b.files.push((entry, dest));
                None
            }
            _ => self.open.replace(Batch {
                files: vec![(entry, dest)],
                holds_kib,
            }),
        }
    }

    /// The last batch, if any file is left.
    pub(crate) fn finish(self) -> Option<Batch<T>> {
        self.open
    }
}
