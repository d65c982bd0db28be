//! The repository layer under the vault's operations. Snapshot, restore, verify, prune and
//! replicate (`crate::vault`) say what to do; this layer is how it is stored:
//! - [`layout`]: every object key and label, and the parsing of listed keys;
//! - [`blob`]: sealing and framing (compression) of every object, and reading them back;
//! - [`index`]: the index files (which pack holds each blob), read merged and written whole;
//! - [`packer`]: the queue of sealed blobs and the writer that packs them;
//! - [`reader`]: blobs read back through the index, neighbouring reads coalesced.

pub(crate) mod blob;
pub(crate) mod index;
pub mod layout;
pub(crate) mod packer;
pub(crate) mod reader;

use crate::error::Result;
use crate::storage::Storage;
use layout::Kind;

/// One of the vault's own objects as listed.
pub(crate) struct OwnObject {
    pub(crate) key: String,
    /// Its id (a record's name).
    pub(crate) name: String,
    pub(crate) size: u64,
    pub(crate) modified: Option<time::OffsetDateTime>,
}

/// The vault's own objects of one kind; keys that do not parse as that kind are skipped here
/// (and reported by [`foreign_objects`]), so nothing that is not the vault's is ever read as
/// its object, or deleted as one.
pub(crate) async fn list_own(storage: &Storage, kind: Kind) -> Result<Vec<OwnObject>> {
    Ok(storage
        .list(kind.dir())
        .await?
        .into_iter()
        .filter_map(|listed| {
            let object = layout::parse(&listed.key).filter(|o| o.kind == kind)?;
            Some(OwnObject {
                name: object.name.to_string(),
                key: listed.key.clone(),
                size: listed.size,
                modified: listed.modified,
            })
        })
        .collect())
}

/// Every key under the vault's own directories that is not of the layout, and every name at
/// its top level that is neither `config` nor one of those directories. Other directories are
/// not walked: a vault that shares its location with other files (made by an older build)
/// names them, not their contents.
pub(crate) async fn foreign_objects(storage: &Storage) -> Result<Vec<String>> {
    let mut foreign: Vec<String> = storage
        .top_level()
        .await?
        .into_iter()
        .filter(|name| {
            let dir = name.strip_suffix('/');
            let is_layout_dir = dir.is_some_and(|d| layout::DIRS.contains(&d));
            let is_config = name == layout::CONFIG || layout::is_staged_config(name);
            !is_layout_dir && !is_config
        })
        .collect();
    for dir in layout::DIRS {
        for listed in storage.list(dir).await? {
            if layout::parse(&listed.key).is_none() {
                foreign.push(listed.key);
            }
        }
    }
    Ok(foreign)
}
