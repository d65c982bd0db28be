//! Helpers shared by the engine's integration tests (each test file is its own crate and
//! uses some of them).
#![allow(dead_code)]

use std::path::Path;

/// Rewrites a local vault's plain config as someone with write access to the bucket could,
/// or a build of another format would have written it: `edit` changes its JSON.
pub fn edit_config(vault_root: &Path, edit: impl FnOnce(&mut serde_json::Value)) {
    let path = vault_root.join("config");
    let mut config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    edit(&mut config);
    put_config(vault_root, &serde_json::to_vec_pretty(&config).unwrap());
}

/// Replaces a local vault's config with `bytes` (a copy saved before editing it). The old
/// file is removed first: a vault's files are written once, read-only.
pub fn put_config(vault_root: &Path, bytes: &[u8]) {
    let path = vault_root.join("config");
    std::fs::remove_file(&path).unwrap();
    std::fs::write(&path, bytes).unwrap();
}
