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
    let mut batches: Vec<Batch<T>> = Vec::new();
    for (entry, dest) in files {
        let holds_kib = entry.size.min(largest_chunk).div_ceil(1024).max(1);
        let small = entry.size <= BATCH_KIB * 1024;
        match batches.last_mut() {
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
            }
            _ => batches.push(Batch {
                files: vec![(entry, dest)],
                holds_kib,
            }),
        }
    }
    batches
}
