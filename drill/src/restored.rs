//! What drills and `dr_restore` share about restored trees: the private place they go, and
//! the check of every restored file against its snapshot's manifest.

use dr_vault::format::{EntryKind, Snapshot};
use std::path::{Path, PathBuf};

/// A new directory with an unpredictable name (`PREFIX-…`) under `work_dir` (made owner-only
/// when missing): it will hold decrypted data, and nobody can have planted a symlink or a
/// directory of their own there ahead of it.
///
/// # Errors
/// When `work_dir` cannot be made, is not this user's private directory, or the directory
/// cannot be created; the message names the directory.
pub fn new_private_dir(work_dir: &Path, prefix: &str) -> Result<PathBuf, String> {
    let work_dir = private_work_dir(work_dir)?;
    tempfile::Builder::new()
        .prefix(&format!("{prefix}-"))
        .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o700))
        .tempdir_in(&work_dir)
        .map(tempfile::TempDir::keep)
        .map_err(|e| {
            format!(
                "cannot create a restore directory in {}: {e}",
                work_dir.display()
            )
        })
}

/// Makes `work_dir` (owner-only) when it is missing, and makes sure it is this user's and
/// private (see [`check_private_work_dir`]).
///
/// # Errors
/// As [`new_private_dir`].
pub fn private_work_dir(work_dir: &Path) -> Result<PathBuf, String> {
    use std::os::unix::fs::DirBuilderExt as _;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(work_dir)
        .map_err(|e| format!("cannot create work_dir {}: {e}", work_dir.display()))?;
    check_private_work_dir(work_dir)?;
    Ok(work_dir.to_path_buf())
}

/// Makes sure `work_dir` is a directory of this user's that nobody else can write to: the
/// default lies in the shared temp directory, where anyone could have made it first and then
/// swap the private directory a restore goes into for one of their own.
pub fn check_private_work_dir(work_dir: &Path) -> Result<(), String> {
    use std::os::unix::fs::MetadataExt as _;
    let meta = std::fs::symlink_metadata(work_dir)
        .map_err(|e| format!("cannot read work_dir {}: {e}", work_dir.display()))?;
    let ours = meta.uid() == rustix::process::geteuid().as_raw();
    if !meta.is_dir() || !ours || meta.mode() & 0o022 != 0 {
        return Err(format!(
            "work_dir {} is not a private directory of this user (it is a symlink, another user's, or writable by others); \
             drills and dr_restore put decrypted data there. Choose a directory of your own (work_dir in the provider block, --work-dir for drctl).",
            work_dir.display()
        ));
    }
    Ok(())
}

/// What checking a restored tree found.
#[derive(Debug, Default)]
pub struct FilesChecked {
    /// Files whose content matched the manifest's whole-file digest.
    pub matched: u64,
    /// `SOURCE/PATH` of every file that did not (or could not be read).
    pub mismatched: Vec<String>,
}

/// Every regular file of the restored sources against the manifest's whole-file digest: all
/// of them under `dir/SOURCE/`, or `only_source`'s tree in `dir` itself (where the vault
/// restores one source).
pub fn check_files(snapshot: &Snapshot, dir: &Path, only_source: Option<&str>) -> FilesChecked {
    let mut checked = FilesChecked::default();
    let sources = snapshot
        .sources
        .iter()
        .filter(|s| only_source.is_none_or(|only| s.name == only));
    for source in sources {
        let root = if only_source.is_some() {
            dir.to_path_buf()
        } else {
            dir.join(&source.name)
        };
        for entry in source.entries.iter().filter(|e| e.kind == EntryKind::File) {
            let path = entry.path.split('/').fold(root.clone(), |p, c| p.join(c));
            let actual = dr_vault::sources::file_digest(&path).ok();
            if actual.is_some() && entry.digest == actual {
                checked.matched += 1;
            } else {
                checked
                    .mismatched
                    .push(format!("{}/{}", source.name, entry.path));
            }
        }
    }
    checked
}

/// Removes what a killed process left behind: directories `PREFIX-…` in `work_dir` that hold
/// `marker` (as a regular file, in a real directory) written longer than `older_than` ago.
/// Younger ones may belong to a run still going on (another Terraform sharing the
/// `work_dir`); anything without the marker is not ours and stays. Best effort: what cannot be
/// removed stays for the next time.
pub fn remove_stale(work_dir: &Path, prefix: &str, marker: &str, older_than: std::time::Duration) {
    let Ok(entries) = std::fs::read_dir(work_dir) else {
        return;
    };
    let now = std::time::SystemTime::now();
    for entry in entries.flatten() {
        let name = entry.file_name();
        let ours = name
            .to_str()
            .is_some_and(|n| n.starts_with(&format!("{prefix}-")));
        let is_dir = entry.file_type().is_ok_and(|t| t.is_dir());
        if !ours || !is_dir {
            continue;
        }
        let dir = entry.path();
        let stale = std::fs::symlink_metadata(dir.join(marker))
            .ok()
            .filter(std::fs::Metadata::is_file)
            .and_then(|m| m.modified().ok())
            .and_then(|written| now.duration_since(written).ok())
            .is_some_and(|age| age > older_than);
        if stale {
            let _ = std::fs::remove_dir_all(&dir);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, SystemTime};

    fn marked(dir: &Path, age: Duration) {
        std::fs::create_dir_all(dir.join("restored")).unwrap();
        let marker = std::fs::File::create(dir.join(".m")).unwrap();
        marker.set_modified(SystemTime::now() - age).unwrap();
    }

    #[test]
    fn only_old_marked_directories_of_the_prefix_are_removed() {
        let work = tempfile::tempdir().unwrap();
        let day = Duration::from_secs(24 * 3600);
        let old = work.path().join("restore-old");
        let young = work.path().join("restore-young");
        let unmarked = work.path().join("restore-unmarked");
        let other = work.path().join("nightly-old");
        marked(&old, 2 * day);
        marked(&young, Duration::from_secs(60));
        std::fs::create_dir_all(&unmarked).unwrap();
        marked(&other, 2 * day);
        let elsewhere = tempfile::tempdir().unwrap();
        marked(elsewhere.path(), 2 * day);
        std::os::unix::fs::symlink(elsewhere.path(), work.path().join("restore-link")).unwrap();

        remove_stale(work.path(), "restore", ".m", day);
        assert!(!old.exists());
        assert!(young.exists() && unmarked.exists() && other.exists());
        assert!(
            elsewhere.path().join(".m").exists(),
            "a symlink is never followed"
        );
    }
}
