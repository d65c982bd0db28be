//! Keys and sealing.
//!
//! A vault has one random master key (64 bytes: a 32-byte XChaCha20-Poly1305 key and a
//! 32-byte BLAKE3 key for blob ids). Each key file wraps it with a key derived from one
//! passphrase by argon2id, so several passphrases can open a vault and changing one rewrites a
//! key file, never the data. Every sealed object binds its type and id as associated data, so
//! an object copied under another name fails to open instead of being misread.

use crate::error::{Error, ErrorKind, Result};
use base64::Engine as _;
use chacha20poly1305::aead::{Aead, AeadInPlace, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, ZeroizeOnDrop};

const NONCE_LEN: usize = 24;
/// What [`MasterKey::seal_in_place`] needs before the plaintext in its buffer.
pub const SEAL_ROOM: usize = NONCE_LEN;
const TAG_LEN: usize = 16;
/// Associated data of a wrapped master key: key files of format 3 vaults are sealed with
/// their own, so a key that opens with it proves the vault is format 3 or later, whatever
/// its (plain) config claims.
const KEY_AD: &[u8] = b"dr-vault key file v1";
const KEY_AD_FORMAT_3: &[u8] = b"dr-vault key file v3";

/// A passphrase: never printed (its `Debug` is redacted), wiped from memory when dropped. The
/// one secret type of the project; the provider and drctl hold passphrases only in it.
#[derive(Clone, PartialEq, Eq, Zeroize, ZeroizeOnDrop)]
pub struct Passphrase(String);

impl Passphrase {
    pub fn new(s: impl Into<String>) -> Self {
        Passphrase(s.into())
    }

    /// The secret itself; call only where it is used (a key derivation, a redaction list),
    /// never to format it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Passphrase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Passphrase(***)")
    }
}

/// argon2id parameters, stored in each key file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct KdfParams {
    pub memory_kib: u32,
    pub iterations: u32,
    pub parallelism: u32,
}

impl KdfParams {
    /// The default: 32 MiB, 3 passes, 2 lanes (0.08 s on two cores here). The memory is what
    /// restic's scrypt uses (N=2^15, r=8: 32 MiB) and above OWASP's argon2id minimum (19 MiB,
    /// 2 passes). It was 64 MiB: every command derives the key, so that doubled the peak
    /// memory of small operations and the CPU of a no-change snapshot, for a brute-force cost
    /// that a strong passphrase provides anyway. Vaults keep the parameters they were made
    /// with (they are in the key file). Two lanes are computed on two threads.
    pub const STRONG: KdfParams = KdfParams {
        memory_kib: 32 * 1024,
        iterations: 3,
        parallelism: 2,
    };

    /// For tests only: the cheapest parameters argon2 allows.
    pub const INSECURE_FOR_TESTS: KdfParams = KdfParams {
        memory_kib: 8,
        iterations: 1,
        parallelism: 1,
    };

    /// The most a key file may ask of the key derivation: 256 MiB of memory, 16 passes, 16
    /// lanes, and at most 1 GiB of memory passes in all (256 MiB × 4, 64 MiB × 16); about a
    /// second on a small machine, and memory a small CI runner has. Key files are plain objects anyone with write access to
    /// the bucket can plant: one asking for terabytes or a billion passes is refused without
    /// being tried, so it can neither exhaust the memory of the process that opens the vault
    /// nor make opening it take forever. New vaults ask for 32 MiB × 3.
    pub const MAX_MEMORY_KIB: u32 = 256 * 1024;
    pub const MAX_ITERATIONS: u32 = 16;
    pub const MAX_PARALLELISM: u32 = 16;
    pub const MAX_MEMORY_PASSES_KIB: u64 = 1024 * 1024;

    /// What deriving with these parameters costs, for trying cheap key files first.
    pub fn cost(&self) -> u64 {
        u64::from(self.memory_kib) * u64::from(self.iterations)
    }

    /// Checks the parameters against the bounds above (and argon2's own minimums).
    ///
    /// # Errors
    /// `Corrupt` naming `key_file` and what is out of range.
    pub fn check(&self, key_file: &str) -> Result<()> {
        let out_of_range = |what: String| {
            Err(Error::corrupt(
                key_file,
                format!("asks the key derivation for {what}: refused without being tried"),
            ))
        };
        if self.memory_kib > Self::MAX_MEMORY_KIB {
            return out_of_range(format!(
                "{} MiB of memory (at most {} MiB)",
                self.memory_kib / 1024,
                Self::MAX_MEMORY_KIB / 1024
            ));
        }
        if !(1..=Self::MAX_ITERATIONS).contains(&self.iterations) {
            return out_of_range(format!(
                "{} passes (1 to {})",
                self.iterations,
                Self::MAX_ITERATIONS
            ));
        }
        if !(1..=Self::MAX_PARALLELISM).contains(&self.parallelism) {
            return out_of_range(format!(
                "{} lanes (1 to {})",
                self.parallelism,
                Self::MAX_PARALLELISM
            ));
        }
        if self.memory_kib < 8 * self.parallelism {
            return out_of_range(format!(
                "{} KiB of memory for {} lanes (at least 8 KiB a lane)",
                self.memory_kib, self.parallelism
            ));
        }
        if u64::from(self.memory_kib) * u64::from(self.iterations) > Self::MAX_MEMORY_PASSES_KIB {
            return out_of_range(format!(
                "{} MiB × {} passes (at most {} MiB of memory passes)",
                self.memory_kib / 1024,
                self.iterations,
                Self::MAX_MEMORY_PASSES_KIB / 1024
            ));
        }
        Ok(())
    }

    /// The parameters for a new vault: [`KdfParams::STRONG`]. Builds with the `test-hooks`
    /// feature (the test suite's, never a release or the installed provider) take
    /// [`KdfParams::INSECURE_FOR_TESTS`] when `DR_TEST_INSECURE_KDF=1` is set: test suites
    /// create hundreds of vaults, and a vault made that way is cheap to brute-force.
    pub fn for_new_vault() -> KdfParams {
        if cfg!(feature = "test-hooks")
            && std::env::var("DR_TEST_INSECURE_KDF").as_deref() == Ok("1")
        {
            KdfParams::INSECURE_FOR_TESTS
        } else {
            KdfParams::STRONG
        }
    }
}

/// The vault's master key material.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct MasterKey {
    encryption: [u8; 32],
    id: [u8; 32],
}

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey(***)")
    }
}

/// What a key file holds (JSON, stored in the clear: the wrapped key is sealed).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct KeyFile {
    pub kdf: String,
    pub params: KdfParams,
    pub salt: String,
    pub wrapped_key: String,
    pub created_at: String,
}

fn random<const N: usize>() -> [u8; N] {
    let mut buf = [0u8; N];
    // The OS RNG failing leaves no safe way to go on.
    getrandom::fill(&mut buf).expect("the operating system's random source failed");
    buf
}

/// Random bytes from the operating system (staging names, where nothing secret is at stake).
pub(crate) fn random_bytes<const N: usize>() -> [u8; N] {
    random()
}

/// A random 32-byte id as hex: pack, index, snapshot and key names.
pub fn random_id() -> String {
    const_hex::encode(random::<32>())
}

impl MasterKey {
    /// A key from known bytes: for the fuzz targets, which need the same key in every run.
    pub(crate) fn from_parts(encryption: [u8; 32], id: [u8; 32]) -> Self {
        MasterKey { encryption, id }
    }

    pub fn generate() -> Self {
        MasterKey {
            encryption: random(),
            id: random(),
        }
    }

    /// The id of a blob: keyed BLAKE3 of its plaintext, so ids reveal nothing about content
    /// to anyone without the key.
    pub fn blob_id(&self, plaintext: &[u8]) -> BlobId {
        BlobId(*blake3::keyed_hash(&self.id, plaintext).as_bytes())
    }

    /// Encrypts `plaintext`, binding `ad` (the object's type and id). Output: nonce ‖ ciphertext.
    pub fn seal(&self, ad: &[u8], plaintext: &[u8]) -> Vec<u8> {
        seal_with(&self.encryption, ad, plaintext)
    }

    /// Seals the concatenation of `parts` (as [`MasterKey::seal`] of it, without building it).
    pub fn seal_parts(&self, ad: &[u8], parts: &[&[u8]]) -> Vec<u8> {
        seal_parts_with(&self.encryption, ad, parts)
    }

    /// Seals `buf[SEAL_ROOM..]` where it is (as [`MasterKey::seal`] of it): the nonce goes
    /// in the room left before it and the tag after it, so a large object (a manifest of
    /// tens of megabytes) is never held twice.
    ///
    /// # Panics
    /// When `buf` is shorter than [`SEAL_ROOM`] (a bug in the caller).
    pub fn seal_in_place(&self, ad: &[u8], mut buf: Vec<u8>) -> Vec<u8> {
        let nonce: [u8; NONCE_LEN] = random();
        buf[..NONCE_LEN].copy_from_slice(&nonce);
        // The tag must not make the buffer move (a copy of tens of megabytes).
        buf.reserve_exact(TAG_LEN);
        let tag = XChaCha20Poly1305::new((&self.encryption).into())
            .encrypt_in_place_detached(XNonce::from_slice(&nonce), ad, &mut buf[NONCE_LEN..])
            .expect("XChaCha20-Poly1305 encrypts any length a vault writes");
        buf.extend_from_slice(&tag);
        buf
    }

    /// Opens what [`MasterKey::seal`] produced with the same `ad`, in the buffer it came in.
    ///
    /// # Errors
    /// As [`MasterKey::open`].
    pub fn open_in_place(&self, object: &str, ad: &[u8], mut sealed: Vec<u8>) -> Result<Vec<u8>> {
        let failed = || {
            Error::corrupt(
                object,
                "fails authentication (altered, truncated or misplaced)",
            )
        };
        if sealed.len() < NONCE_LEN + TAG_LEN {
            return Err(failed());
        }
        let (nonce, rest) = sealed.split_at_mut(NONCE_LEN);
        let (body, tag) = rest.split_at_mut(rest.len() - TAG_LEN);
        XChaCha20Poly1305::new((&self.encryption).into())
            .decrypt_in_place_detached(
                XNonce::from_slice(nonce),
                ad,
                body,
                chacha20poly1305::Tag::from_slice(tag),
            )
            .map_err(|_| failed())?;
        sealed.truncate(sealed.len() - TAG_LEN);
        sealed.drain(..NONCE_LEN);
        Ok(sealed)
    }

    /// Decrypts what [`MasterKey::seal`] produced with the same `ad`.
    ///
    /// # Errors
    /// `Corrupt` naming `object` when the data was altered, truncated or stored under another name.
    pub fn open(&self, object: &str, ad: &[u8], sealed: &[u8]) -> Result<Vec<u8>> {
        open_with(&self.encryption, ad, sealed).ok_or_else(|| {
            Error::corrupt(
                object,
                "fails authentication (altered, truncated or misplaced)",
            )
        })
    }

    /// Whether `other` is the same key (a standby made with `--key-from` shares its
    /// primary's): both are in this process already, so the comparison need not hide time.
    pub fn same_as(&self, other: &MasterKey) -> bool {
        self.encryption == other.encryption && self.id == other.id
    }

    /// A key for the config's MAC (format 3), derived from the id key.
    pub fn config_mac(&self, config: &[u8]) -> blake3::Hash {
        let key = blake3::derive_key("dr-vault 2026-12 config mac v3", &self.id);
        blake3::keyed_hash(&key, config)
    }

    /// The secret the chunker's gear table is derived from (format 3), from the id key.
    pub fn chunker_secret(&self) -> [u8; 32] {
        blake3::derive_key("dr-vault 2026-12 chunker secret v3", &self.id)
    }

    /// Wraps this key under `passphrase`, for a vault of `format_version`.
    ///
    /// # Errors
    /// `InvalidInput` for argon2 parameters out of range.
    pub fn wrap(
        &self,
        passphrase: &Passphrase,
        params: KdfParams,
        created_at: String,
        format_version: u32,
    ) -> Result<KeyFile> {
        let salt: [u8; 16] = random();
        let kek = derive(passphrase, &salt, params)?;
        let mut material = [0u8; 64];
        material[..32].copy_from_slice(&self.encryption);
        material[32..].copy_from_slice(&self.id);
        let ad = if format_version >= 3 {
            KEY_AD_FORMAT_3
        } else {
            KEY_AD
        };
        let wrapped = seal_with(&kek, ad, &material);
        material.zeroize();
        let b64 = base64::engine::general_purpose::STANDARD;
        Ok(KeyFile {
            kdf: "argon2id".into(),
            params,
            salt: b64.encode(salt),
            wrapped_key: b64.encode(wrapped),
            created_at,
        })
    }

    /// Unwraps a key file: the key and the oldest vault format it was made for (1, or 3 for
    /// a key file of a format 3 vault); `None` when the passphrase does not open it.
    ///
    /// # Errors
    /// `Corrupt` when the key file itself is malformed.
    pub fn unwrap(
        file: &KeyFile,
        name: &str,
        passphrase: &Passphrase,
    ) -> Result<Option<(MasterKey, u32)>> {
        if file.kdf != "argon2id" {
            return Err(Error::new(
                ErrorKind::UnsupportedVersion,
                format!("{name}: unknown key derivation {:?}", file.kdf),
            ));
        }
        file.params.check(name)?;
        let b64 = base64::engine::general_purpose::STANDARD;
        let salt = b64
            .decode(&file.salt)
            .map_err(|e| Error::corrupt(name, format!("salt is not base64: {e}")))?;
        let wrapped = b64
            .decode(&file.wrapped_key)
            .map_err(|e| Error::corrupt(name, format!("key is not base64: {e}")))?;
        let kek = derive(passphrase, &salt, file.params)?;
        let opened = open_with(&kek, KEY_AD_FORMAT_3, &wrapped)
            .map(|m| (m, 3))
            .or_else(|| open_with(&kek, KEY_AD, &wrapped).map(|m| (m, 1)));
        let Some((mut material, made_for)) = opened else {
            return Ok(None);
        };
        if material.len() != 64 {
            material.zeroize();
            return Err(Error::corrupt(name, "wrapped key has the wrong length"));
        }
        let mut key = MasterKey {
            encryption: [0; 32],
            id: [0; 32],
        };
        key.encryption.copy_from_slice(&material[..32]);
        key.id.copy_from_slice(&material[32..]);
        material.zeroize();
        Ok(Some((key, made_for)))
    }
}

fn derive(passphrase: &Passphrase, salt: &[u8], p: KdfParams) -> Result<[u8; 32]> {
    let params =
        argon2::Params::new(p.memory_kib, p.iterations, p.parallelism, Some(32)).map_err(|e| {
            Error::new(
                ErrorKind::InvalidInput,
                format!("argon2 parameters {p:?} are invalid: {e}"),
            )
        })?;
    let mut memory = KdfMemory::new(params.block_count())?;
    let argon = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
    let mut out = [0u8; 32];
    argon
        .hash_password_into_with_memory(passphrase.0.as_bytes(), salt, &mut out, memory.blocks())
        .map_err(|e| {
            Error::new(
                ErrorKind::InvalidInput,
                format!("key derivation failed: {e}"),
            )
        })?;
    Ok(out)
}

/// The key derivation's working memory (32 MiB for new vaults), mapped on its own and asked
/// for transparent huge pages. argon2 visits its blocks in a data-dependent order: with 4 KiB
/// pages every command paid ~8 000 page faults and the TLB misses. With huge pages,
/// `drctl vault snapshots` (mostly the derivation) took 59 ms instead of 91 and 109 ms of CPU
/// instead of 138 (`perf stat -r 30`); a no-change snapshot of the benchmark tree 813 ms of
/// CPU instead of 890. Where huge pages are off, the advice is ignored.
struct KdfMemory {
    map: std::ptr::NonNull<argon2::Block>,
    blocks: usize,
}

impl KdfMemory {
    fn new(blocks: usize) -> Result<KdfMemory> {
        let out_of_memory = |e: &dyn std::fmt::Display| {
            Error::new(
                ErrorKind::Io,
                format!("cannot map memory for the key derivation: {e}"),
            )
        };
        let len = blocks
            .checked_mul(argon2::Block::SIZE)
            .filter(|&len| len > 0)
            .ok_or_else(|| out_of_memory(&"the memory parameter is out of range"))?;
        // SAFETY: a new private anonymous mapping, aliasing nothing; the kernel zero-fills it
        // (an all-zero `Block` is valid: it is an array of integers) and aligns it to pages,
        // more than `Block`'s alignment.
        let map = unsafe {
            rustix::mm::mmap_anonymous(
                std::ptr::null_mut(),
                len,
                rustix::mm::ProtFlags::READ | rustix::mm::ProtFlags::WRITE,
                rustix::mm::MapFlags::PRIVATE,
            )
        }
        .map_err(|e| out_of_memory(&e))?;
        // SAFETY: advice on the mapping just made; huge pages change no contents.
        #[cfg(any(target_os = "linux", target_os = "android"))]
        let _ = unsafe { rustix::mm::madvise(map, len, rustix::mm::Advice::LinuxHugepage) };
        let map = std::ptr::NonNull::new(map.cast::<argon2::Block>())
            .ok_or_else(|| out_of_memory(&"mmap returned null"))?;
        Ok(KdfMemory { map, blocks })
    }

    fn blocks(&mut self) -> &mut [argon2::Block] {
        // SAFETY: the mapping holds `blocks` initialised blocks and lives as long as `self`,
        // which this borrow ties the slice to.
        unsafe { std::slice::from_raw_parts_mut(self.map.as_ptr(), self.blocks) }
    }
}

impl Drop for KdfMemory {
    fn drop(&mut self) {
        // Not cleared first: the kernel zeroes pages before anyone else maps them, and the
        // key the derivation leads to is in this process's memory anyway.
        // SAFETY: the mapping made in `new`, with its length; no borrow of it outlives `self`.
        let _ = unsafe {
            rustix::mm::munmap(self.map.as_ptr().cast(), self.blocks * argon2::Block::SIZE)
        };
    }
}

fn seal_with(key: &[u8; 32], ad: &[u8], plaintext: &[u8]) -> Vec<u8> {
    seal_parts_with(key, ad, &[plaintext])
}

/// Seals the concatenation of `parts`: the output (nonce, ciphertext, tag) is allocated once
/// and encrypted in place, so a blob's bytes are copied once on their way into a pack.
fn seal_parts_with(key: &[u8; 32], ad: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    let cipher = XChaCha20Poly1305::new(key.into());
    let nonce: [u8; NONCE_LEN] = random();
    let len: usize = parts.iter().map(|p| p.len()).sum();
    let mut out = Vec::with_capacity(NONCE_LEN + len + TAG_LEN);
    out.extend_from_slice(&nonce);
    for part in parts {
        out.extend_from_slice(part);
    }
    let tag = cipher
        .encrypt_in_place_detached(XNonce::from_slice(&nonce), ad, &mut out[NONCE_LEN..])
        .expect("XChaCha20-Poly1305 encrypts any length a vault writes");
    out.extend_from_slice(&tag);
    out
}

fn open_with(key: &[u8; 32], ad: &[u8], sealed: &[u8]) -> Option<Vec<u8>> {
    if sealed.len() < NONCE_LEN {
        return None;
    }
    let (nonce, body) = sealed.split_at(NONCE_LEN);
    XChaCha20Poly1305::new(key.into())
        .decrypt(XNonce::from_slice(nonce), Payload { msg: body, aad: ad })
        .ok()
}

/// A blob's id: keyed BLAKE3 of its plaintext.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct BlobId(pub [u8; 32]);

/// Hashes the id's first 8 bytes only: they are already a keyed hash's output, uniform and
/// out of reach of anyone without the vault's key, and the maps of a replication or a
/// snapshot hash ids millions of times (hashing all 32 bytes and the length cost ~0.1 s at
/// 300 000 files). Equality still compares all 32.
impl std::hash::Hash for BlobId {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        let (head, _) = self.0.split_first_chunk::<8>().expect("32 bytes");
        state.write_u64(u64::from_le_bytes(*head));
    }
}

impl BlobId {
    pub fn to_hex(&self) -> String {
        const_hex::encode(self.0)
    }

    /// # Errors
    /// `Corrupt` naming `object` when the text is not a 64-digit hex id.
    pub fn from_hex(text: &str, object: &str) -> Result<BlobId> {
        decode_id(text).ok_or_else(|| Error::corrupt(object, format!("{text:?} is not a blob id")))
    }
}

/// A blob id from exactly 64 hex digits (const-hex alone would also take a `0x` prefix).
fn decode_id(text: &str) -> Option<BlobId> {
    let mut id = [0u8; 32];
    (text.len() == 64 && const_hex::decode_to_slice(text, &mut id).is_ok()).then_some(BlobId(id))
}

impl std::fmt::Debug for BlobId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "BlobId({})", &self.to_hex()[..12])
    }
}

// By hand rather than derived: ids are hex text in the JSON of index files and manifests, and
// a manifest holds one per chunk, so neither direction allocates per id.
impl Serialize for BlobId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        let mut text = [0u8; 64];
        const_hex::encode_to_slice(self.0, &mut text).expect("64 hex digits for 32 bytes");
        s.serialize_str(std::str::from_utf8(&text).expect("hex is ASCII"))
    }
}

impl<'de> Deserialize<'de> for BlobId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct HexId;
        impl serde::de::Visitor<'_> for HexId {
            type Value = BlobId;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a blob id of 64 hex digits")
            }
            fn visit_str<E: serde::de::Error>(self, text: &str) -> std::result::Result<BlobId, E> {
                decode_id(text).ok_or_else(|| E::custom(format!("{text:?} is not 64 hex digits")))
            }
        }
        d.deserialize_str(HexId)
    }
}

#[cfg(test)]
mod tests {

    /// Known answers computed independently with argon2-cffi (the reference C implementation):
    /// the key derivation must never change, or existing vaults stop opening.
    #[test]
    fn key_derivation_matches_the_reference_implementation() {
        let passphrase = Passphrase::new("correct horse battery staple");
        for (parallelism, expected) in [
            (
                1,
                "4ad3b6ea7894ed104f150a1a483bac1d8dbbfd4fd54fbce23c1b696ed2dff09e",
            ),
            (
                2,
                "4dc1d141734ca106c64baf470955fb012ab5d2fd06be0716eb262f13080f94f4",
            ),
        ] {
            let params = KdfParams {
                memory_kib: 1024,
                iterations: 3,
                parallelism,
            };
            let key = derive(&passphrase, b"0123456789abcdef", params).unwrap();
            let hex: String = key.iter().map(|b| format!("{b:02x}")).collect();
            assert_eq!(hex, expected, "parallelism {parallelism}");
        }
    }

    use super::*;

    #[test]
    fn sealed_objects_open_only_under_their_own_name() {
        let key = MasterKey::generate();
        let sealed = key.seal(b"snapshot:1", b"hello");
        assert_eq!(key.open("x", b"snapshot:1", &sealed).unwrap(), b"hello");
        assert_eq!(
            key.open("x", b"snapshot:2", &sealed).unwrap_err().kind,
            ErrorKind::Corrupt
        );
        let mut flipped = sealed.clone();
        flipped[30] ^= 1;
        assert!(key.open("x", b"snapshot:1", &flipped).is_err());
        assert!(key.open("x", b"snapshot:1", &sealed[..10]).is_err());
    }

    #[test]
    fn a_key_file_opens_with_its_passphrase_only() {
        let key = MasterKey::generate();
        for (format, made_for) in [(2, 1), (3, 3)] {
            let file = key
                .wrap(
                    &Passphrase::new("right"),
                    KdfParams::INSECURE_FOR_TESTS,
                    "now".into(),
                    format,
                )
                .unwrap();
            let (opened, found) = MasterKey::unwrap(&file, "keys/a", &Passphrase::new("right"))
                .unwrap()
                .unwrap();
            assert_eq!(opened.blob_id(b"x"), key.blob_id(b"x"));
            assert_eq!(found, made_for, "a key file of a format {format} vault");
        }
        let file = key
            .wrap(
                &Passphrase::new("right"),
                KdfParams::INSECURE_FOR_TESTS,
                "now".into(),
                3,
            )
            .unwrap();
        assert!(
            MasterKey::unwrap(&file, "keys/a", &Passphrase::new("wrong"))
                .unwrap()
                .is_none()
        );
        assert!(!serde_json::to_string(&file).unwrap().contains("right"));
    }

    proptest::proptest! {
        /// Sealing in parts equals sealing the whole; any flipped byte or other name fails.
        #[test]
        fn seal_round_trips_and_detects_tampering(
            parts in proptest::collection::vec(proptest::collection::vec(0u8.., 0..300), 0..4),
            ad in "[a-z]{1,8}:[0-9a-f]{1,16}",
            flip in 0usize..10_000,
        ) {
            let key = MasterKey::generate();
            let slices: Vec<&[u8]> = parts.iter().map(Vec::as_slice).collect();
            let whole: Vec<u8> = parts.concat();
            let sealed = key.seal_parts(ad.as_bytes(), &slices);
            proptest::prop_assert_eq!(key.open("o", ad.as_bytes(), &sealed).unwrap(), whole.clone());
            let mut altered = sealed.clone();
            let at = flip % altered.len();
            altered[at] ^= 0x01;
            proptest::prop_assert!(key.open("o", ad.as_bytes(), &altered).is_err());
            let other = format!("{ad}x");
            proptest::prop_assert!(key.open("o", other.as_bytes(), &sealed).is_err());
            // Sealed and opened in place, it is the same object.
            proptest::prop_assert_eq!(key.open_in_place("o", ad.as_bytes(), sealed).unwrap(), whole.clone());
            proptest::prop_assert!(key.open_in_place("o", ad.as_bytes(), altered).is_err());
            let mut room = vec![0; SEAL_ROOM];
            room.extend_from_slice(&whole);
            let in_place = key.seal_in_place(ad.as_bytes(), room);
            proptest::prop_assert_eq!(key.open("o", ad.as_bytes(), &in_place).unwrap(), whole);
            proptest::prop_assert!(key.open_in_place("o", ad.as_bytes(), in_place[..in_place.len() - 1].to_vec()).is_err());
        }

        #[test]
        fn blob_ids_round_trip_through_their_text(bytes in proptest::array::uniform32(0u8..)) {
            let id = BlobId(bytes);
            let text = serde_json::to_string(&id).unwrap();
            proptest::prop_assert_eq!(&text, &format!("\"{}\"", id.to_hex()));
            proptest::prop_assert_eq!(serde_json::from_str::<BlobId>(&text).unwrap(), id);
        }
    }

    #[test]
    fn a_blob_id_that_is_not_64_hex_digits_is_refused() {
        for text in [
            "\"abc\"",
            "\"zz\"",
            "12",
            &format!("\"{}\"", "g".repeat(64)),
            &format!("\"0x{}\"", "a".repeat(64)),
        ] {
            assert!(serde_json::from_str::<BlobId>(text).is_err(), "{text}");
        }
        assert!(BlobId::from_hex(&format!("0x{}", "a".repeat(64)), "o").is_err());
        assert!(BlobId::from_hex(&"a".repeat(64), "o").is_ok());
    }
}
