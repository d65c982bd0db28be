//! The binary encoding of snapshot manifests (format version 2; FORMAT.md, "Snapshots").
//!
//! A manifest lists every file of every snapshot, tens of thousands of entries, and a
//! no-change snapshot does little else than read the previous one and write the next. As JSON
//! that meant field names, hex digests and escaping both ways, and zstd over 8 MB for the
//! benchmark's 32 768 files. This encoding writes digests as bytes, numbers as varints, and
//! each path as the length it shares with the previous path plus the rest (paths are sorted).
//!
//! Written by hand rather than with a serde binary format (postcard, bincode): the in-memory
//! types skip absent fields, keep digests as hex text and would need wire copies with their own
//! impls anyway, which is more code than this, and no format shares prefixes between entries.

use crate::crypto::BlobId;
use crate::error::{Error, ErrorKind, Result};
use crate::format::{Entry, EntryKind, Snapshot, SnapshotSource};
use std::collections::BTreeMap;
use std::sync::Arc;

/// What a binary manifest starts with; a JSON manifest starts with `{`. Format 3 manifests
/// (`DRM3`) store paths and link targets as bytes (exact when not UTF-8) and each entry's
/// change time and inode.
pub(crate) const MAGIC: &[u8; 4] = b"DRM2";
pub(crate) const MAGIC_3: &[u8; 4] = b"DRM3";

/// The longest path a manifest may hold (Linux allows 4 096 bytes for a whole path).
const MAX_PATH: usize = 64 * 1024;

const HAS_DIGEST: u8 = 1;
const HAS_LINK_TARGET: u8 = 2;

/// Whether decompressed manifest bytes are this encoding (else JSON).
pub(crate) fn is_binary(bytes: &[u8]) -> bool {
    bytes.starts_with(MAGIC) || bytes.starts_with(MAGIC_3)
}

/// Encodes `snapshot` for a vault of format `version` (2, or 3 and later).
///
/// # Errors
/// `InvalidInput` when an entry's digest is not 64 lower-case hex digits (a BLAKE3 digest as
/// this crate writes it): it could not be stored as bytes and read back the same.
pub(crate) fn encode(snapshot: &Snapshot, version: u32) -> Result<Vec<u8>> {
    let mut encoder = Encoder::new(version);
    for source in &snapshot.sources {
        encoder.begin_source(&source.name, &source.origin, source.single_file);
        for entry in &source.entries {
            encoder.push(entry)?;
        }
    }
    Ok(encoder.finish(&Head::of(snapshot)).concat())
}

/// What a manifest records besides its entries.
pub(crate) struct Head<'a> {
    pub time: &'a str,
    pub hostname: &'a str,
    pub parent: Option<&'a str>,
    pub source_digest: &'a str,
    pub labels: &'a BTreeMap<String, String>,
}

impl<'a> Head<'a> {
    pub(crate) fn of(snapshot: &'a Snapshot) -> Head<'a> {
        Head {
            time: &snapshot.time,
            hostname: &snapshot.hostname,
            parent: snapshot.parent.as_deref(),
            source_digest: &snapshot.source_digest,
            labels: &snapshot.labels,
        }
    }
}

/// A manifest encoded entry by entry, as a snapshot reads its files: no snapshot holds all its
/// entries at once. A source's entry count comes before its entries and the head (holding the
/// digest of every entry) before all, so each source's entries go to a buffer of their own
/// and [`Encoder::finish`] returns the pieces, in order, that make the manifest.
pub(crate) struct Encoder {
    exact: bool,
    sources: Vec<EncodedSource>,
}

struct EncodedSource {
    name: String,
    origin: String,
    single_file: bool,
    count: usize,
    entries: Writer,
    /// The path of the last entry, which the next one's is stored against.
    previous: Vec<u8>,
}

impl Encoder {
    /// An encoder for a vault of format `version` (2, or 3 and later).
    pub(crate) fn new(version: u32) -> Encoder {
        Encoder {
            exact: version >= 3,
            sources: Vec::new(),
        }
    }

    /// Starts the next source; the entries pushed after it are its own.
    pub(crate) fn begin_source(&mut self, name: &str, origin: &str, single_file: bool) {
        self.sources.push(EncodedSource {
            name: name.to_string(),
            origin: origin.to_string(),
            single_file,
            count: 0,
            entries: Writer::new(self.exact),
            previous: Vec::new(),
        });
    }

    /// Adds an entry to the current source, in scan order.
    ///
    /// # Errors
    /// `InvalidInput` for a digest that is not one (see [`encode`]), a path over the limit,
    /// or an entry pushed before any source began.
    pub(crate) fn push(&mut self, entry: &Entry) -> Result<()> {
        let Some(source) = self.sources.last_mut() else {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                format!("entry {:?} comes before any source", entry.path),
            ));
        };
        let path = source.entries.entry(entry, &source.previous)?;
        source.previous.clear();
        source.previous.extend_from_slice(path);
        source.count += 1;
        Ok(())
    }

    /// The manifest, as pieces to be written one after the other.
    pub(crate) fn finish(self, head: &Head<'_>) -> Vec<Vec<u8>> {
        let mut out = Writer::new(self.exact);
        out.out
            .extend_from_slice(if self.exact { MAGIC_3 } else { MAGIC });
        out.str(head.time);
        out.str(head.hostname);
        out.optional_str(head.parent);
        out.str(head.source_digest);
        out.len(head.labels.len());
        for (key, value) in head.labels {
            out.str(key);
            out.str(value);
        }
        out.len(self.sources.len());
        let mut parts = Vec::with_capacity(1 + 2 * self.sources.len());
        for source in self.sources {
            out.str(&source.name);
            out.str(&source.origin);
            out.out.push(u8::from(source.single_file));
            out.len(source.count);
            parts.push(std::mem::take(&mut out.out));
            parts.push(source.entries.out);
        }
        parts.push(out.out);
        parts.retain(|part| !part.is_empty());
        parts
    }
}

/// Decodes a manifest read from `object` (named in errors).
///
/// # Errors
/// `Corrupt` naming `object` and what is wrong.
pub(crate) fn decode(bytes: &[u8], object: &str) -> Result<Snapshot> {
    let mut r = Reader::start(bytes, object)?;
    let head = r.head()?;
    let mut sources = Vec::with_capacity(r.room_for(head.sources, 4));
    for _ in 0..head.sources {
        let (name, origin, single_file, count) = r.source_head()?;
        let mut entries: Vec<Entry> = Vec::with_capacity(r.room_for(count, 8));
        for _ in 0..count {
            let previous = entries.last().map_or(&b""[..], Entry::path_bytes);
            let entry = r.entry(previous)?;
            entries.push(entry);
        }
        sources.push(SnapshotSource {
            name,
            origin,
            single_file,
            entries,
        });
    }
    r.end()?;
    Ok(Snapshot {
        time: head.time,
        hostname: head.hostname,
        sources,
        labels: head.labels,
        parent: head.parent,
        source_digest: head.source_digest,
    })
}

/// A manifest's entries by source, decoded one at a time as a snapshot matches them against
/// the files it scans: decoded, an entry takes about twice its encoded size (at 300 000
/// files, 53 MB where the bytes are 30).
pub(crate) enum ManifestEntries {
    Lazy(LazyEntries),
    /// A JSON manifest's (version 1 vaults), decoded whole: each source's name and entries.
    Whole(Vec<(String, Vec<Entry>)>),
}

impl ManifestEntries {
    /// No entries: a snapshot without a parent.
    pub(crate) fn none() -> ManifestEntries {
        ManifestEntries::Whole(Vec::new())
    }

    /// A decoded manifest's entries.
    pub(crate) fn whole(manifest: Snapshot) -> ManifestEntries {
        ManifestEntries::Whole(
            manifest
                .sources
                .into_iter()
                .map(|s| (s.name, s.entries))
                .collect(),
        )
    }

    /// The source names, in manifest order.
    pub(crate) fn names(&self) -> Vec<String> {
        match self {
            ManifestEntries::Lazy(lazy) => lazy.order.iter().map(|(n, _)| n.clone()).collect(),
            ManifestEntries::Whole(whole) => whole.iter().map(|(n, _)| n.clone()).collect(),
        }
    }

    /// The entries of `source` without taking them: each is decoded (or copied) as the
    /// iterator reaches it, and dropped by the caller.
    pub(crate) fn peek(&self, source: &str) -> Box<dyn Iterator<Item = Entry> + Send + '_> {
        match self {
            ManifestEntries::Lazy(lazy) => Box::new(lazy.iter(lazy.span(source))),
            ManifestEntries::Whole(whole) => Box::new(
                whole
                    .iter()
                    .rfind(|(n, _)| n == source)
                    .into_iter()
                    .flat_map(|(_, entries)| entries.iter().cloned()),
            ),
        }
    }

    /// The entries of `source`, in scan order (none if the manifest has no such source; of a
    /// name given twice, the last).
    pub(crate) fn take(&mut self, source: &str) -> Entries {
        match self {
            ManifestEntries::Lazy(lazy) => {
                let span = lazy.span(source);
                lazy.order.retain(|(name, _)| name != source);
                Box::new(lazy.iter(span))
            }
            ManifestEntries::Whole(whole) => {
                let entries = match whole.iter().rposition(|(n, _)| n == source) {
                    Some(at) => whole.remove(at).1,
                    None => Vec::new(),
                };
                whole.retain(|(name, _)| name != source);
                Box::new(entries.into_iter())
            }
        }
    }
}

/// One source's entries, in scan order.
pub(crate) type Entries = Box<dyn Iterator<Item = Entry> + Send>;

pub(crate) fn no_entries() -> Entries {
    Box::new(std::iter::empty())
}

/// A binary manifest checked whole once (every entry decoded and dropped), then kept as its
/// bytes: decoding an entry again later gives the same entry, and cannot fail.
pub(crate) struct LazyEntries {
    bytes: Arc<Vec<u8>>,
    exact: bool,
    /// Each source's name and entries, in manifest order.
    order: Vec<(String, Span)>,
}

/// Where a source's entries start, and how many there are.
#[derive(Clone, Copy, Default)]
struct Span {
    at: usize,
    count: usize,
}

/// Checks a binary manifest read from `object` and keeps it for its entries.
///
/// # Errors
/// As [`decode`].
pub(crate) fn decode_lazily(bytes: Vec<u8>, object: &str) -> Result<LazyEntries> {
    let mut r = Reader::start(&bytes, object)?;
    let head = r.head()?;
    let mut order = Vec::new();
    let mut previous = Vec::new();
    for _ in 0..head.sources {
        let (name, _, _, count) = r.source_head()?;
        order.push((name, Span { at: r.at, count }));
        previous.clear();
        for _ in 0..count {
            let entry = r.entry(&previous)?;
            previous.clear();
            previous.extend_from_slice(entry.path_bytes());
        }
    }
    r.end()?;
    let exact = r.exact;
    Ok(LazyEntries {
        bytes: Arc::new(bytes),
        exact,
        order,
    })
}

impl LazyEntries {
    /// Where the entries of `source` are (of a name given twice, the last).
    fn span(&self, source: &str) -> Span {
        self.order
            .iter()
            .rfind(|(name, _)| name == source)
            .map(|(_, span)| *span)
            .unwrap_or_default()
    }

    fn iter(&self, span: Span) -> LazyEntryIter {
        LazyEntryIter {
            bytes: self.bytes.clone(),
            exact: self.exact,
            span,
            previous: Vec::new(),
            last_inode: 0,
        }
    }
}

/// One source's entries of a [`LazyEntries`], decoded as they are asked for.
struct LazyEntryIter {
    bytes: Arc<Vec<u8>>,
    exact: bool,
    /// What is left to decode.
    span: Span,
    previous: Vec<u8>,
    last_inode: u64,
}

impl Iterator for LazyEntryIter {
    type Item = Entry;

    fn next(&mut self) -> Option<Entry> {
        if self.span.count == 0 {
            return None;
        }
        let mut r = Reader {
            bytes: &self.bytes,
            at: self.span.at,
            object: "a manifest checked already",
            exact: self.exact,
            last_inode: self.last_inode,
        };
        // These bytes decoded whole in `decode_lazily`: an error cannot happen here, and if
        // it did the entries left would only go unmatched (their files read again).
        let entry = r.entry(&self.previous).ok()?;
        self.span = Span {
            at: r.at,
            count: self.span.count - 1,
        };
        self.last_inode = r.last_inode;
        self.previous.clear();
        self.previous.extend_from_slice(entry.path_bytes());
        Some(entry)
    }
}

/// What a manifest records before its sources.
struct DecodedHead {
    time: String,
    hostname: String,
    parent: Option<String>,
    source_digest: String,
    labels: BTreeMap<String, String>,
    /// How many sources follow.
    sources: usize,
}

struct Writer {
    out: Vec<u8>,
    /// Format 3: paths and link targets as bytes, change time and inode.
    exact: bool,
    /// The inode of the previous entry of the source being written (format 3).
    last_inode: u64,
}

impl Writer {
    fn new(exact: bool) -> Writer {
        Writer {
            out: Vec::new(),
            exact,
            last_inode: 0,
        }
    }

    /// LEB128: seven bits a byte, low bits first.
    fn varint(&mut self, mut n: u64) {
        while n >= 0x80 {
            self.out.push((n as u8) | 0x80);
            n >>= 7;
        }
        self.out.push(n as u8);
    }

    fn len(&mut self, n: usize) {
        self.varint(n as u64);
    }

    fn bytes(&mut self, b: &[u8]) {
        self.len(b.len());
        self.out.extend_from_slice(b);
    }

    fn str(&mut self, s: &str) {
        self.bytes(s.as_bytes());
    }

    fn optional_str(&mut self, s: Option<&str>) {
        match s {
            None => self.out.push(0),
            Some(s) => {
                self.out.push(1);
                self.str(s);
            }
        }
    }

    /// Writes an entry; returns the path bytes it stored, which the next entry's path is
    /// stored against.
    fn entry<'e>(&mut self, e: &'e Entry, previous: &[u8]) -> Result<&'e [u8]> {
        // Before format 3 a path is text: a name that is not UTF-8 is stored as shown.
        let path = if self.exact {
            e.path_bytes()
        } else {
            e.path.as_bytes()
        };
        if path.len() > MAX_PATH {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                format!(
                    "a path of {} bytes is over the {MAX_PATH} a manifest holds",
                    path.len()
                ),
            ));
        }
        let shared = shared_prefix(previous, path, self.exact);
        self.len(shared);
        self.bytes(&path[shared..]);
        self.out.push(match e.kind {
            EntryKind::File => 0,
            EntryKind::Dir => 1,
            EntryKind::Symlink => 2,
        });
        self.varint(u64::from(e.mode));
        self.varint(e.size);
        // Zigzag: small negative times (before 1970) stay short too.
        self.varint(zigzag(e.mtime_ns));
        if self.exact {
            // The change time as its distance from the mtime, the inode from the previous
            // entry's: usually a byte or two each, where the values take nine and four.
            self.varint(zigzag(e.ctime_ns.wrapping_sub(e.mtime_ns)));
            self.varint(zigzag(e.inode.wrapping_sub(self.last_inode) as i64));
            self.last_inode = e.inode;
        }
        let flags = if e.digest.is_some() { HAS_DIGEST } else { 0 }
            | if e.link_target.is_some() {
                HAS_LINK_TARGET
            } else {
                0
            };
        self.out.push(flags);
        if let Some(digest) = &e.digest {
            let mut raw = [0u8; 32];
            let lower_hex = digest
                .bytes()
                .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
            if !lower_hex || const_hex::decode_to_slice(digest, &mut raw).is_err() {
                return Err(Error::new(
                    ErrorKind::InvalidInput,
                    format!(
                        "the digest of {:?} is not a BLAKE3 digest: {digest:?}",
                        e.path
                    ),
                ));
            }
            self.out.extend_from_slice(&raw);
        }
        self.len(e.chunks.len());
        for id in &e.chunks {
            self.out.extend_from_slice(&id.0);
        }
        if let Some(target) = &e.link_target {
            match (self.exact, e.link_target_bytes()) {
                (true, Some(exact)) => self.bytes(exact),
                _ => self.str(target),
            }
        }
        Ok(path)
    }
}

/// The length of the longest common prefix of `a` and `b`; for text (before format 3), one
/// that ends on a character boundary, as readers of that format rebuild the path as text.
fn shared_prefix(a: &[u8], b: &[u8], bytes: bool) -> usize {
    let mut n = a.iter().zip(b).take_while(|(x, y)| x == y).count();
    if !bytes {
        // `b` is UTF-8 here: back off continuation bytes (0b10xx_xxxx).
        while n > 0 && n < b.len() && (b[n] & 0xc0) == 0x80 {
            n -= 1;
        }
    }
    n
}

fn zigzag(n: i64) -> u64 {
    ((n << 1) ^ (n >> 63)) as u64
}

fn unzigzag(n: u64) -> i64 {
    ((n >> 1) as i64) ^ -((n & 1) as i64)
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
    object: &'a str,
    /// Format 3 (see [`Writer`]).
    exact: bool,
    last_inode: u64,
}

impl<'a> Reader<'a> {
    /// A reader past the marker of the manifest `bytes`, read from `object`.
    fn start(bytes: &'a [u8], object: &'a str) -> Result<Reader<'a>> {
        let mut r = Reader {
            bytes,
            at: 0,
            object,
            exact: bytes.starts_with(MAGIC_3),
            last_inode: 0,
        };
        if !is_binary(bytes) {
            return Err(r.corrupt("does not start with the manifest marker"));
        }
        r.at = MAGIC.len();
        Ok(r)
    }

    fn head(&mut self) -> Result<DecodedHead> {
        let time = self.string()?;
        let hostname = self.string()?;
        let parent = self.optional_string()?;
        let source_digest = self.string()?;
        let mut labels = BTreeMap::new();
        for _ in 0..self.len()? {
            let key = self.string()?;
            labels.insert(key, self.string()?);
        }
        Ok(DecodedHead {
            time,
            hostname,
            parent,
            source_digest,
            labels,
            sources: self.len()?,
        })
    }

    /// A source's name, origin, whether it is a single file, and its entry count; its
    /// entries follow.
    fn source_head(&mut self) -> Result<(String, String, bool, usize)> {
        let name = self.string()?;
        let origin = self.string()?;
        let single_file = match self.byte()? {
            0 => false,
            1 => true,
            other => return Err(self.corrupt(&format!("source flag {other} is not 0 or 1"))),
        };
        let count = self.len()?;
        self.last_inode = 0;
        Ok((name, origin, single_file, count))
    }

    fn end(&self) -> Result<()> {
        if self.at != self.bytes.len() {
            return Err(self.corrupt("has bytes after its last entry"));
        }
        Ok(())
    }
}

impl Reader<'_> {
    fn corrupt(&self, what: &str) -> Error {
        Error::corrupt(self.object, format!("{what} (byte {})", self.at))
    }

    fn byte(&mut self) -> Result<u8> {
        let b = *self
            .bytes
            .get(self.at)
            .ok_or_else(|| self.corrupt("ends early"))?;
        self.at += 1;
        Ok(b)
    }

    fn take(&mut self, n: usize) -> Result<&[u8]> {
        let end = self
            .at
            .checked_add(n)
            .filter(|&end| end <= self.bytes.len())
            .ok_or_else(|| self.corrupt("ends early"))?;
        let taken = &self.bytes[self.at..end];
        self.at = end;
        Ok(taken)
    }

    fn varint(&mut self) -> Result<u64> {
        let mut n = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.byte()?;
            // The tenth byte holds the 64th bit only.
            if shift == 63 && b > 1 {
                break;
            }
            n |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(n);
            }
        }
        Err(self.corrupt("has a number longer than 64 bits"))
    }

    /// A length or count: never more than the bytes left.
    fn len(&mut self) -> Result<usize> {
        let n = self.varint()?;
        usize::try_from(n)
            .ok()
            .filter(|&n| n <= self.bytes.len() - self.at)
            .ok_or_else(|| self.corrupt(&format!("has a length of {n}, past its end")))
    }

    /// Room to reserve for `count` items of at least `min_bytes` each: no more than the bytes
    /// left could hold, so a damaged count cannot make a reader reserve gigabytes.
    fn room_for(&self, count: usize, min_bytes: usize) -> usize {
        count.min((self.bytes.len() - self.at) / min_bytes)
    }

    fn text(&self, bytes: Vec<u8>) -> Result<String> {
        String::from_utf8(bytes).map_err(|_| self.corrupt("has text that is not UTF-8"))
    }

    fn string(&mut self) -> Result<String> {
        let n = self.len()?;
        let bytes = self.take(n)?.to_vec();
        self.text(bytes)
    }

    fn optional_string(&mut self) -> Result<Option<String>> {
        match self.byte()? {
            0 => Ok(None),
            1 => self.string().map(Some),
            other => Err(self.corrupt(&format!("option flag {other} is not 0 or 1"))),
        }
    }

    fn id(&mut self) -> Result<[u8; 32]> {
        let mut id = [0u8; 32];
        id.copy_from_slice(self.take(32)?);
        Ok(id)
    }

    fn entry(&mut self, previous: &[u8]) -> Result<Entry> {
        // Bytes of the previous path, not of what is left to read: bounded by that path.
        let shared = usize::try_from(self.varint()?)
            .ok()
            .filter(|&n| n <= previous.len())
            .ok_or_else(|| self.corrupt("shares more of a path than the previous path has"))?;
        let rest = self.len()?;
        // Each path may repeat most of the one before it: without a bound, a hostile manifest
        // of a few megabytes could make its reader build gigabytes of paths.
        if shared + rest > MAX_PATH {
            return Err(self.corrupt(&format!("has a path over {MAX_PATH} bytes")));
        }
        let mut path = Vec::with_capacity(shared + rest);
        path.extend_from_slice(&previous[..shared]);
        path.extend_from_slice(self.take(rest)?);
        let (path, raw_path) = if self.exact {
            crate::format::text_and_raw(&path)
        } else {
            (self.text(path)?, None)
        };
        let kind = match self.byte()? {
            0 => EntryKind::File,
            1 => EntryKind::Dir,
            2 => EntryKind::Symlink,
            other => return Err(self.corrupt(&format!("entry kind {other} is unknown"))),
        };
        let mode =
            u32::try_from(self.varint()?).map_err(|_| self.corrupt("has a mode over 32 bits"))?;
        let size = self.varint()?;
        let mtime_ns = unzigzag(self.varint()?);
        let (ctime_ns, inode) = if self.exact {
            let ctime_ns = unzigzag(self.varint()?).wrapping_add(mtime_ns);
            self.last_inode = self
                .last_inode
                .wrapping_add(unzigzag(self.varint()?) as u64);
            (ctime_ns, self.last_inode)
        } else {
            (0, 0)
        };
        let flags = self.byte()?;
        if flags & !(HAS_DIGEST | HAS_LINK_TARGET) != 0 {
            return Err(self.corrupt(&format!("entry flags {flags:#x} are unknown")));
        }
        let digest = if flags & HAS_DIGEST != 0 {
            Some(const_hex::encode(self.id()?))
        } else {
            None
        };
        // Each chunk id is 32 bytes: a count past what is left fails here, before reserving.
        let count = self.len()?;
        if count > (self.bytes.len() - self.at) / 32 {
            return Err(self.corrupt(&format!("lists {count} chunks, past its end")));
        }
        let mut chunks = Vec::with_capacity(count);
        for _ in 0..count {
            chunks.push(BlobId(self.id()?));
        }
        let (link_target, raw_link_target) = match (flags & HAS_LINK_TARGET != 0, self.exact) {
            (false, _) => (None, None),
            (true, false) => (Some(self.string()?), None),
            (true, true) => {
                let n = self.len()?;
                let (text, raw) = crate::format::text_and_raw(self.take(n)?);
                (Some(text), raw)
            }
        };
        let mut entry = Entry {
            path,
            kind,
            mode,
            size,
            mtime_ns,
            digest,
            chunks,
            link_target,
            exact: None,
            ctime_ns,
            inode,
        };
        entry.set_exact(raw_path, raw_link_target);
        Ok(entry)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn entry_strategy() -> impl Strategy<Value = Entry> {
        (
            (
                // Short paths, and long ones that share most of their bytes (as sorted paths
                // do), and any bytes (names that are not UTF-8).
                prop_oneof![
                    "[a-zé/._-]{0,24}".prop_map(String::into_bytes),
                    "(pipelines/é-team/){1,4}[a-zé.]{0,6}".prop_map(String::into_bytes),
                    proptest::collection::vec(any::<u8>(), 0..24),
                ],
                0u8..3,
                any::<u32>(),
                any::<u64>(),
                any::<i64>(),
            ),
            (
                proptest::option::of(any::<[u8; 32]>()),
                proptest::collection::vec(any::<[u8; 32]>(), 0..4),
                proptest::option::of(proptest::collection::vec(any::<u8>(), 0..16)),
                any::<i64>(),
                any::<u64>(),
            ),
        )
            .prop_map(
                |((path, kind, mode, size, mtime_ns), (digest, chunks, link, ctime_ns, inode))| {
                    let (path, raw_path) = crate::format::text_and_raw(&path);
                    let (link_target, raw_link_target) =
                        match link.map(|l| crate::format::text_and_raw(&l)) {
                            Some((text, raw)) => (Some(text), raw),
                            None => (None, None),
                        };
                    let mut entry = Entry {
                        path,
                        kind: [EntryKind::File, EntryKind::Dir, EntryKind::Symlink][kind as usize],
                        mode,
                        size,
                        mtime_ns,
                        digest: digest.map(const_hex::encode),
                        chunks: chunks.into_iter().map(BlobId).collect(),
                        link_target,
                        exact: None,
                        ctime_ns,
                        inode,
                    };
                    entry.set_exact(raw_path, raw_link_target);
                    entry
                },
            )
    }

    /// What a format 2 manifest keeps of `snapshot`.
    fn as_format_2(mut snapshot: Snapshot) -> Snapshot {
        for e in snapshot.sources.iter_mut().flat_map(|s| &mut s.entries) {
            e.keep_only_format_2_fields();
        }
        snapshot
    }

    fn snapshot_strategy() -> impl Strategy<Value = Snapshot> {
        let source = (
            "[a-z]{1,8}",
            "[ -~]{0,20}",
            any::<bool>(),
            proptest::collection::vec(entry_strategy(), 0..20),
        )
            // Unsorted paths: the encoding does not rely on the order writers use.
            .prop_map(|(name, origin, single_file, entries)| SnapshotSource {
                name,
                origin,
                single_file,
                entries,
            });
        (
            "[ -~]{0,30}",
            "[a-z0-9.-]{0,20}",
            proptest::collection::vec(source, 0..3),
            proptest::collection::btree_map("[a-z]{1,8}", "[ -~é]{0,12}", 0..4),
            proptest::option::of("[0-9a-f]{64}"),
            "[0-9a-f]{0,64}",
        )
            .prop_map(|(time, hostname, sources, labels, parent, source_digest)| {
                Snapshot {
                    time,
                    hostname,
                    sources,
                    labels,
                    parent,
                    source_digest,
                }
            })
    }

    proptest! {
        /// Format 3 keeps every entry exactly, names that are not UTF-8 included; format 2
        /// keeps what it always did (those names as shown, no change time or inode).
        #[test]
        fn manifests_round_trip(snapshot in snapshot_strategy()) {
            let bytes = encode(&snapshot, 3).unwrap();
            prop_assert!(bytes.starts_with(MAGIC_3));
            prop_assert_eq!(decode(&bytes, "snapshots/x").unwrap(), snapshot.clone());
            let bytes = encode(&snapshot, 2).unwrap();
            prop_assert!(bytes.starts_with(MAGIC));
            prop_assert_eq!(decode(&bytes, "snapshots/x").unwrap(), as_format_2(snapshot));
        }

        /// Read lazily, source by source in any order, a manifest gives the entries it
        /// decodes to; a source it does not hold has none.
        #[test]
        fn lazily_read_entries_are_the_decoded_ones(snapshot in snapshot_strategy(), version in 2u32..=3) {
            let bytes = encode(&snapshot, version).unwrap();
            let decoded = decode(&bytes, "snapshots/x").unwrap();
            let mut lazy = ManifestEntries::Lazy(decode_lazily(bytes, "snapshots/x").unwrap());
            for source in decoded.sources.iter().rev() {
                let entries: Vec<Entry> = lazy.take(&source.name).collect();
                // A manifest may name a source twice (decoding keeps both); the last is read.
                let last = decoded.sources.iter().rev().find(|s| s.name == source.name).unwrap();
                if std::ptr::eq(last, source) {
                    prop_assert_eq!(&entries, &source.entries);
                }
            }
            prop_assert_eq!(lazy.take("not a source").count(), 0);
        }

        /// Cut short anywhere, a manifest is reported as damaged, never misread or a panic,
        /// whether it is decoded whole or checked to be read lazily.
        #[test]
        fn truncated_manifests_are_corrupt(snapshot in snapshot_strategy(), cut in any::<prop::sample::Index>()) {
            let bytes = encode(&snapshot, 3).unwrap();
            let cut = cut.index(bytes.len());
            let err = decode(&bytes[..cut], "snapshots/x").unwrap_err();
            prop_assert_eq!(err.kind, ErrorKind::Corrupt);
            prop_assert!(err.to_string().contains("snapshots/x"));
            let Err(err) = decode_lazily(bytes[..cut].to_vec(), "snapshots/x") else {
                return Err(TestCaseError::fail("a cut manifest was read lazily"));
            };
            prop_assert_eq!(err.kind, ErrorKind::Corrupt);
        }

        /// Any bytes after the marker decode to a manifest or an error, never a panic or a
        /// huge allocation.
        #[test]
        fn arbitrary_bytes_never_panic(tail in proptest::collection::vec(any::<u8>(), 0..512)) {
            for magic in [MAGIC, MAGIC_3] {
                let mut bytes = magic.to_vec();
                bytes.extend_from_slice(&tail);
                let _ = decode(&bytes, "snapshots/x");
            }
        }
    }

    /// A manifest of one source holding `entries`, every other field empty.
    fn one_source(single_file: bool, entries: Vec<Entry>) -> Snapshot {
        Snapshot {
            time: String::new(),
            hostname: String::new(),
            sources: vec![SnapshotSource {
                name: "s".into(),
                origin: String::new(),
                single_file,
                entries,
            }],
            labels: BTreeMap::new(),
            parent: None,
            source_digest: String::new(),
        }
    }

    #[test]
    fn sorted_paths_are_stored_by_what_they_add() {
        let entry = |path: &str| Entry {
            path: path.into(),
            kind: EntryKind::File,
            mode: 0o644,
            size: 1,
            mtime_ns: 1,
            digest: None,
            chunks: Vec::new(),
            link_target: None,
            ..Entry::default()
        };
        let long = "pipelines/team-platform/deploy/production";
        let snapshot = one_source(
            false,
            (0..100)
                .map(|i| entry(&format!("{long}/{i:03}.yml")))
                .collect(),
        );
        let bytes = encode(&snapshot, 3).unwrap();
        // Each path after the first costs its last few bytes, not all 49.
        assert!(bytes.len() < 100 * 20, "{} bytes", bytes.len());
        assert_eq!(decode(&bytes, "x").unwrap(), snapshot);
    }

    #[test]
    fn numbers_past_64_bits_and_overlong_paths_are_refused() {
        let mut bytes = MAGIC.to_vec();
        bytes.extend_from_slice(&[0xff; 9]);
        bytes.push(0x02);
        let err = decode(&bytes, "x").unwrap_err();
        assert!(err.to_string().contains("longer than 64 bits"), "{err}");

        let entry = Entry {
            path: "a/".repeat(MAX_PATH / 2 + 1),
            kind: EntryKind::Dir,
            mode: 0,
            size: 0,
            mtime_ns: 0,
            digest: None,
            chunks: Vec::new(),
            link_target: None,
            ..Entry::default()
        };
        let snapshot = one_source(false, vec![entry]);
        assert_eq!(
            encode(&snapshot, 3).unwrap_err().kind,
            ErrorKind::InvalidInput
        );
    }

    #[test]
    fn a_digest_that_is_not_blake3_hex_is_refused() {
        let mut e = Entry {
            path: "a".into(),
            kind: EntryKind::File,
            mode: 0,
            size: 0,
            mtime_ns: 0,
            digest: Some("ABC".into()),
            chunks: Vec::new(),
            link_target: None,
            ..Entry::default()
        };
        let mut snapshot = one_source(true, vec![e.clone()]);
        let err = encode(&snapshot, 3).unwrap_err();
        assert_eq!(err.kind, ErrorKind::InvalidInput);
        // Upper-case hex would come back lower-case: refused too.
        e.digest = Some("AB".repeat(32));
        snapshot.sources[0].entries = vec![e];
        assert!(encode(&snapshot, 3).is_err());
    }
}
