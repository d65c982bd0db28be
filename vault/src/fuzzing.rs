//! Entry points for the fuzz targets (`fuzz/`, replayed by `fuzz-targets`' tests): each feeds
//! arbitrary bytes to one reader of this crate, exactly as a vault's objects reach it, and
//! panics only when an invariant breaks (a decoded value that does not encode back the same, a
//! config that passes its check but crashes the chunker). An `Err` is the right answer to bad
//! bytes; a panic, a hang or an allocation the input does not justify is a finding.
//!
//! Not an API: hidden from the docs, and its functions may change with the targets.

use crate::crypto::{KdfParams, MasterKey, Passphrase};
use crate::format::{IndexFile, Snapshot};
use crate::repo::{blob, layout};
use crate::vault::verify::{check_pack_header, pack_header_span};

/// The one key every run uses, so that a corpus entry replays the same way.
fn key() -> MasterKey {
    MasterKey::from_parts([7; 32], [11; 32])
}

/// A snapshot manifest after decryption and decompression, in either encoding: what decodes
/// re-encodes (in the encoding it came in) and decodes to the same snapshot.
pub fn manifest(data: &[u8]) {
    const OBJECT: &str = "fuzz/snapshots/manifest";
    if crate::manifest::is_binary(data) {
        let Ok(snapshot) = crate::manifest::decode(data, OBJECT) else {
            return;
        };
        let version = if data.starts_with(crate::manifest::MAGIC_3) {
            3
        } else {
            2
        };
        let encoded =
            crate::manifest::encode(&snapshot, version).expect("a decoded manifest encodes again");
        let again = crate::manifest::decode(&encoded, OBJECT).expect("an encoded manifest decodes");
        assert_eq!(again, snapshot, "manifest round trip (format {version})");
    } else if let Ok(snapshot) = serde_json::from_slice::<Snapshot>(data) {
        // Format 1 (JSON): what a later format reads must survive the binary encodings too, as
        // long as its digests are digests (encode refuses the others with an error).
        for version in [2, 3] {
            if let Ok(encoded) = crate::manifest::encode(&snapshot, version) {
                crate::manifest::decode(&encoded, OBJECT).expect("an encoded manifest decodes");
            }
        }
        let _ = snapshot.summary();
    }
}

/// An index file after decryption: what parses serialises and parses back the same.
pub fn index_file(data: &[u8]) {
    let Ok(file) = serde_json::from_slice::<IndexFile>(data) else {
        return;
    };
    let text = serde_json::to_vec(&file).expect("an index file serialises");
    let again: IndexFile = serde_json::from_slice(&text).expect("a written index file parses");
    assert_eq!(again, file, "index file round trip");
}

/// The end of a pack as verify reads it: the last four bytes locate the header, which must
/// open and list blobs. The data is tried twice: as a whole pack (the header must not open,
/// since nobody sealed it) and as a header's plaintext sealed with the key (which must
/// then open and parse, or be refused as not valid).
pub fn pack_header(data: &[u8]) {
    const PACK: &str = "fuzzpack";
    let key = key();
    let size = data.len() as u64;
    let trailer = &data[data.len().saturating_sub(4)..];
    if let Ok(span) = pack_header_span(size, trailer) {
        assert!(span.end <= size && span.start <= span.end);
        let sealed = &data[span.start as usize..span.end as usize];
        assert!(check_pack_header(&key, PACK, sealed).is_err());
    }
    let sealed = key.seal(layout::label::pack(PACK).as_bytes(), data);
    let mut pack = b"blobs before the header".to_vec();
    pack.extend_from_slice(&sealed);
    pack.extend_from_slice(&(sealed.len() as u32).to_le_bytes());
    let span = pack_header_span(pack.len() as u64, &pack[pack.len() - 4..])
        .expect("a written pack's header is found");
    let opened = check_pack_header(&key, PACK, &pack[span.start as usize..span.end as usize]);
    let parses = serde_json::from_slice::<Vec<crate::format::BlobLocation>>(data).is_ok();
    assert_eq!(opened.is_ok(), parses, "{opened:?}");
}

/// A key file as listed in a vault (plain JSON anyone with write access can plant): it parses
/// or is skipped, and one that parses is tried when its parameters are within bounds. Only
/// cheap parameters are derived here (a bounded but costly one takes a second, which would
/// stall the fuzzer without testing anything the cheap ones do not).
pub fn key_file(data: &[u8]) {
    const NAME: &str = "keys/fuzz";
    let Ok(file) = crate::vault::parse_key_file(data, NAME) else {
        return;
    };
    if file.params.check(NAME).is_err() || file.params.cost() > 64 {
        return;
    }
    let _ = MasterKey::unwrap(&file, NAME, &Passphrase::new("fuzz"));
    let _ = KdfParams::INSECURE_FOR_TESTS.check(NAME);
}

/// The plain `config` object (readable and plantable without the key): a config that passes
/// the checks never crashes the chunker nor yields a pack size out of range.
pub fn config(data: &[u8]) {
    let Ok(config) = crate::vault::parse_config(data, "fuzz://vault") else {
        return;
    };
    assert!(crate::format::PACK_SIZE_RANGE.contains(&config.pack_size));
    let _ = config.mac_input();
    let sample: Vec<u8> = (0..64 * 1024u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    for chunker in [
        crate::chunker::Chunker::published(config.chunker),
        crate::chunker::Chunker::keyed(config.chunker, &key().chunker_secret()),
    ] {
        let mut covered = 0;
        for range in chunker.chunks(&sample) {
            assert_eq!(range.start, covered, "chunks follow each other");
            assert!(range.len() <= chunker.max_size());
            covered = range.end;
        }
        assert_eq!(covered, sample.len(), "chunks cover the data");
    }
}

/// A sealed object as storage returns it (anything anyone with write access wrote), and a
/// sealed object's frame after it opened: the first never opens without the key; the second
/// unframes to its recorded length or is refused as corrupt.
pub fn sealed_object(data: &[u8]) {
    const OBJECT: &str = "fuzz/index/object";
    let key = key();
    assert!(key.open(OBJECT, b"index fuzz", data).is_err());
    // The frame: a flag byte, then the bytes as stored or zstd. Frames that announce more
    // than 64 MiB are skipped: a writer with the key could make them, and the decoder would
    // rightly allocate what the frame records.
    let small = !matches!(
        zstd::zstd_safe::get_frame_content_size(data.get(1..).unwrap_or_default()),
        Ok(Some(size)) if size > 64 << 20
    );
    if small {
        if let Some(&first) = data.first() {
            let raw_length = usize::from(first) * 97;
            if let Ok(raw) = blob::unframe(OBJECT, data.to_vec(), raw_length) {
                assert!(data[0] == 0 || raw.len() <= raw_length);
            }
        }
        if let Some(z) = data.get(1..) {
            let _ = blob::decompress_whole(z);
        }
    }
}

/// Seeds for the vault targets from a real vault (the committed fixtures): its config and key
/// files as stored, and its manifests, index files, pack headers and sealed frames as they are
/// once opened, each with the name of the target it seeds.
///
/// # Errors
/// When the vault does not open with `passphrase`, or storage fails.
pub async fn seeds(
    storage: &crate::Storage,
    passphrase: &Passphrase,
) -> crate::Result<Vec<(&'static str, Vec<u8>)>> {
    use crate::repo::list_own;
    use layout::Kind;
    let mut out = vec![("vault_config", storage.get(layout::CONFIG).await?.to_vec())];
    let mut master = None;
    for listed in list_own(storage, Kind::Key).await? {
        let raw = storage.get(&listed.key).await?.to_vec();
        let file = crate::vault::parse_key_file(&raw, &listed.key)?;
        if let Some((key, _)) = MasterKey::unwrap(&file, &listed.key, passphrase)? {
            master = Some(key);
        }
        out.push(("vault_key_file", raw));
    }
    let master = master
        .ok_or_else(|| crate::Error::new(crate::ErrorKind::WrongPassphrase, "no key file opens"))?;
    let sealed = [
        (Kind::Snapshot, "vault_manifest"),
        (Kind::Index, "vault_index"),
    ];
    for (kind, target) in sealed {
        for listed in list_own(storage, kind).await? {
            let label = match kind {
                Kind::Snapshot => layout::label::snapshot(&listed.name),
                _ => layout::label::index(&listed.name),
            };
            let stored = storage.get(&listed.key).await?;
            let framed = master.open(&listed.key, label.as_bytes(), &stored)?;
            let (raw, _) = blob::load_sealed(storage, &master, &listed.key, &label).await?;
            out.push(("vault_sealed_object", framed));
            out.push((target, raw));
        }
    }
    for listed in list_own(storage, Kind::Pack).await? {
        let pack = storage.get(&listed.key).await?;
        let span = pack_header_span(pack.len() as u64, &pack[pack.len().saturating_sub(4)..])
            .map_err(|e| crate::Error::corrupt(&listed.key, e))?;
        let header = master.open(
            &listed.key,
            layout::label::pack(&listed.name).as_bytes(),
            &pack[span.start as usize..span.end as usize],
        )?;
        out.push(("vault_pack_header", header));
    }
    Ok(out)
}
