//! Content-defined chunking: FastCDC (2020) cut points over a gear table that is either the
//! published one or derived from a vault secret.
//!
//! With the published table, anyone who knows a file can compute where it is cut, so the
//! sizes of the stored blobs fingerprint known plaintext (restic keys its chunker polynomial
//! per repository for the same reason). A table of 256 values derived from a secret makes cut
//! points unpredictable without the key. The `fastcdc` crate cuts with any table
//! (`cut_gear`) but its iterators take only a 64-bit seed XORed into the published table, so
//! this module drives `cut_gear` itself: over a slice for files that fit in memory, and over a
//! buffer refilled from a reader for larger ones. With the published table it cuts exactly
//! where `fastcdc::v2020::FastCDC` does (a property test checks it), so existing vaults keep
//! deduplicating against what they hold.

use crate::format::ChunkerParams;
use fastcdc::v2020 as cdc;
use std::io::Read;
use std::ops::Range;

/// FastCDC's normalization level 1, the one `FastCDC::new` uses.
const NORMALIZATION_BITS: u32 = 1;

/// Where to cut: the size bounds, the masks and the gear tables.
pub struct Chunker {
    min_size: usize,
    avg_size: usize,
    max_size: usize,
    mask_s: u64,
    mask_l: u64,
    gear: Box<[u64; 256]>,
    gear_ls: Box<[u64; 256]>,
}

impl Chunker {
    /// The published gear table (vaults of format 1 and 2). `params` must pass
    /// [`ChunkerParams::check`].
    pub fn published(params: ChunkerParams) -> Chunker {
        let (gear, gear_ls) = cdc::get_gear_with_seed(0);
        Chunker::with_tables(params, gear, gear_ls)
    }

    /// A gear table derived from `secret` (BLAKE3 in key-derivation mode, expanded to 256
    /// 64-bit values). `params` must pass [`ChunkerParams::check`].
    pub fn keyed(params: ChunkerParams, secret: &[u8; 32]) -> Chunker {
        let mut hasher = blake3::Hasher::new_derive_key("dr-vault chunker gear table v3");
        hasher.update(secret);
        let mut bytes = [0u8; 256 * 8];
        hasher.finalize_xof().fill(&mut bytes);
        let mut gear = Box::new([0u64; 256]);
        let mut gear_ls = Box::new([0u64; 256]);
        for (i, value) in bytes.chunks_exact(8).enumerate() {
            gear[i] = u64::from_le_bytes(value.try_into().expect("8 bytes"));
            // As FastCDC's own second table: the first shifted left one bit.
            gear_ls[i] = gear[i] << 1;
        }
        Chunker::with_tables(params, gear, gear_ls)
    }

    fn with_tables(
        params: ChunkerParams,
        gear: Box<[u64; 256]>,
        gear_ls: Box<[u64; 256]>,
    ) -> Chunker {
        debug_assert!(params.check().is_ok(), "{params:?}");
        let bits = cdc::logarithm2(params.avg_size);
        Chunker {
            min_size: params.min_size as usize,
            avg_size: params.avg_size as usize,
            max_size: params.max_size as usize,
            mask_s: cdc::MASKS[(bits + NORMALIZATION_BITS) as usize],
            mask_l: cdc::MASKS[(bits - NORMALIZATION_BITS) as usize],
            gear,
            gear_ls,
        }
    }

    /// The length of the chunk that starts `data` (all of it when it is no longer than the
    /// smallest chunk; never more than the largest).
    fn cut(&self, data: &[u8]) -> usize {
        let (_, len) = cdc::cut_gear(
            data,
            self.min_size,
            self.avg_size,
            self.max_size,
            self.mask_s,
            self.mask_l,
            self.mask_s << 1,
            self.mask_l << 1,
            &self.gear,
            &self.gear_ls,
        );
        len
    }

    /// The chunks of `data`, as ranges, in order.
    pub fn chunks<'a>(&'a self, data: &'a [u8]) -> impl Iterator<Item = Range<usize>> + 'a {
        let mut start = 0;
        std::iter::from_fn(move || {
            let len = self.cut(&data[start..]);
            (len > 0).then(|| {
                start += len;
                start - len..start
            })
        })
    }

    /// The largest chunk, in bytes.
    pub fn max_size(&self) -> usize {
        self.max_size
    }

    /// Reads `reader` to its end and hands each chunk to `each`, holding at most one largest
    /// chunk of it in memory.
    ///
    /// # Errors
    /// The reader's error as `read_error` makes it, or `each`'s.
    pub fn stream<E>(
        &self,
        mut reader: impl Read,
        read_error: impl Fn(std::io::Error) -> E,
        mut each: impl FnMut(&[u8]) -> Result<(), E>,
    ) -> Result<(), E> {
        let mut buf = vec![0u8; self.max_size];
        let mut len = 0;
        let mut eof = false;
        loop {
            while !eof && len < buf.len() {
                match reader.read(&mut buf[len..]) {
                    Ok(0) => eof = true,
                    Ok(n) => len += n,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(read_error(e)),
                }
            }
            if len == 0 {
                return Ok(());
            }
            let cut = self.cut(&buf[..len]);
            each(&buf[..cut])?;
            buf.copy_within(cut..len, 0);
            len -= cut;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn noise(len: usize, mut x: u64) -> Vec<u8> {
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect()
    }

    fn small() -> ChunkerParams {
        ChunkerParams {
            min_size: 1024,
            avg_size: 4096,
            max_size: 16 * 1024,
        }
    }

    fn via_stream(chunker: &Chunker, data: &[u8]) -> Vec<Range<usize>> {
        let mut out = Vec::new();
        let mut at = 0;
        chunker
            .stream::<std::io::Error>(
                data,
                |e| e,
                |chunk| {
                    out.push(at..at + chunk.len());
                    at += chunk.len();
                    Ok(())
                },
            )
            .unwrap();
        out
    }

    proptest! {
        /// With the published table, cuts are FastCDC's own, in memory and streamed: vaults
        /// of formats 1 and 2 keep deduplicating against what they hold.
        #[test]
        fn the_published_table_cuts_where_fastcdc_does(len in 0usize..200_000, seed in 1u64..) {
            let data = noise(len, seed);
            let chunker = Chunker::published(small());
            let ours: Vec<Range<usize>> = chunker.chunks(&data).collect();
            let p = small();
            let theirs: Vec<Range<usize>> =
                cdc::FastCDC::new(&data, p.min_size, p.avg_size, p.max_size)
                    .map(|c| c.offset..c.offset + c.length)
                    .collect();
            prop_assert_eq!(&ours, &theirs);
            prop_assert_eq!(via_stream(&chunker, &data), theirs);
        }

        /// Keyed, the chunks still cover the data exactly, within the bounds, alike in memory
        /// and streamed.
        #[test]
        fn keyed_chunks_cover_the_data_within_bounds(len in 0usize..200_000, seed in 1u64..) {
            let data = noise(len, seed);
            let chunker = Chunker::keyed(small(), &[7; 32]);
            let chunks: Vec<Range<usize>> = chunker.chunks(&data).collect();
            let mut at = 0;
            for (i, c) in chunks.iter().enumerate() {
                prop_assert_eq!(c.start, at);
                prop_assert!(c.len() <= 16 * 1024);
                prop_assert!(c.len() >= 1024 || i == chunks.len() - 1);
                at = c.end;
            }
            prop_assert_eq!(at, data.len());
            prop_assert_eq!(via_stream(&chunker, &data), chunks);
        }
    }

    /// Cut points depend on the key: without it, chunk sizes say nothing about known content.
    #[test]
    fn cut_points_differ_between_keys_and_not_within_one() {
        let data = noise(1 << 20, 99);
        let cuts = |chunker: &Chunker| -> Vec<Range<usize>> { chunker.chunks(&data).collect() };
        let a = cuts(&Chunker::keyed(small(), &[1; 32]));
        assert_eq!(a, cuts(&Chunker::keyed(small(), &[1; 32])));
        assert_ne!(a, cuts(&Chunker::keyed(small(), &[2; 32])));
        assert_ne!(a, cuts(&Chunker::published(small())));
        assert!(a.len() > 100, "{} chunks", a.len());
    }
}
