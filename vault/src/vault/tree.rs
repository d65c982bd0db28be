//! Writing a restored tree through directory handles. Every directory is opened relative to
//! its parent with `O_NOFOLLOW`, one component at a time from the restore target, and every
//! create, write, chmod, time and rename happens relative to such a handle: a path swapped
//! for a symlink while a restore runs cannot redirect any of it, because no path below the
//! target is ever resolved as a whole.
//!
//! Written on rustix's `openat` family because the standard library resolves whole paths and
//! has no `O_NOFOLLOW` directory walk; cap-std would do the same job with a larger surface.

use crate::error::{Error, ErrorKind, Result};
use rustix::fs::{AtFlags, Mode, OFlags, RenameFlags};
use std::os::fd::OwnedFd;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};

/// The restore target, opened without following a symlink.
pub(super) struct Tree {
    root: OwnedFd,
    /// The target as the user named it, for messages.
    shown: PathBuf,
}

/// How a directory is opened: read-only (enough for `fchmod` and `futimens`), never through
/// a symlink, never inherited by a child process.
fn dir_flags() -> OFlags {
    OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC
}

fn io(path: &Path, action: &str, e: rustix::io::Errno) -> Error {
    Error::io(path, action, std::io::Error::from(e))
}

impl Tree {
    /// Opens `target` (which must exist) as the root of the tree.
    ///
    /// # Errors
    /// `UnsafePath` when it is a symlink; `Io`.
    pub(super) fn open(target: &Path) -> Result<Tree> {
        let root = rustix::fs::open(target, dir_flags(), Mode::empty()).map_err(|e| {
            // O_NOFOLLOW with O_DIRECTORY on a symlink: ELOOP or ENOTDIR, by kernel.
            let is_link = std::fs::symlink_metadata(target).is_ok_and(|m| m.is_symlink());
            if is_link {
                Error::new(
                    ErrorKind::UnsafePath,
                    format!("restore target {} is a symlink", target.display()),
                )
                .hint("restore into a real directory")
            } else {
                io(target, "open", e)
            }
        })?;
        Ok(Tree {
            root,
            shown: target.to_path_buf(),
        })
    }

    /// The path of `parts` below the target, for messages.
    pub(super) fn shown(&self, parts: &[impl AsRef<std::ffi::OsStr>]) -> PathBuf {
        parts
            .iter()
            .fold(self.shown.clone(), |p, c| p.join(c.as_ref()))
    }

    /// The directory `parts` below the target, each component opened without following a
    /// link; with `create`, missing ones are made owner-only (their stored mode is applied at
    /// the end of the restore).
    ///
    /// # Errors
    /// `UnsafePath` when a component is a symlink or not a directory; `Io`.
    pub(super) fn dir(
        &self,
        parts: &[impl AsRef<std::ffi::OsStr>],
        create: bool,
    ) -> Result<OwnedFd> {
        let mut current = rustix::fs::openat(&self.root, ".", dir_flags(), Mode::empty())
            .map_err(|e| io(&self.shown, "open", e))?;
        for (depth, part) in parts.iter().enumerate() {
            let part = part.as_ref();
            let next = match rustix::fs::openat(&current, part, dir_flags(), Mode::empty()) {
                Err(rustix::io::Errno::NOENT) if create => {
                    match rustix::fs::mkdirat(&current, part, Mode::from_raw_mode(0o700)) {
                        Ok(()) | Err(rustix::io::Errno::EXIST) => {}
                        Err(e) => return Err(io(&self.shown(&parts[..=depth]), "create", e)),
                    }
                    rustix::fs::openat(&current, part, dir_flags(), Mode::empty())
                }
                other => other,
            };
            current = next.map_err(|e| self.not_a_dir(&current, &parts[..=depth], e))?;
        }
        Ok(current)
    }

    /// Why a component could not be opened as a directory, in the user's terms.
    fn not_a_dir(
        &self,
        parent: &OwnedFd,
        parts: &[impl AsRef<std::ffi::OsStr>],
        e: rustix::io::Errno,
    ) -> Error {
        let shown = self.shown(parts);
        let name = parts
            .last()
            .map_or(std::ffi::OsStr::new(""), |p| p.as_ref());
        let is_link = rustix::fs::statat(parent, name, AtFlags::SYMLINK_NOFOLLOW).is_ok_and(|st| {
            rustix::fs::FileType::from_raw_mode(st.st_mode) == rustix::fs::FileType::Symlink
        });
        match e {
            _ if is_link => Error::new(
                ErrorKind::UnsafePath,
                format!(
                    "{} is a symlink; restore will not write through it",
                    shown.display()
                ),
            )
            .hint(
                "the snapshot places files under a symlink it created; nothing was written there",
            ),
            rustix::io::Errno::NOTDIR | rustix::io::Errno::LOOP => Error::new(
                ErrorKind::UnsafePath,
                format!("{} is a file where a directory is needed", shown.display()),
            ),
            e => io(&shown, "open", e),
        }
    }

    /// Creates the symlink `name` in `parent`.
    ///
    /// # Errors
    /// `UnsafePath` when the name exists already; `Io`.
    pub(super) fn symlink(
        &self,
        parent: &OwnedFd,
        name: &std::ffi::OsStr,
        link: &std::ffi::OsStr,
        shown: &Path,
    ) -> Result<()> {
        rustix::fs::symlinkat(link, parent, name).map_err(|e| match e {
            rustix::io::Errno::EXIST => named_twice(shown),
            e => io(shown, "create the symlink", e),
        })
    }
}

fn named_twice(shown: &Path) -> Error {
    Error::new(
        ErrorKind::UnsafePath,
        format!(
            "{} already exists; the snapshot names it twice",
            shown.display()
        ),
    )
}

/// A file being written in `dir` under a temporary name: removed when dropped unless renamed
/// into place first, so a failed or cancelled restore leaves no partial file behind.
pub(super) struct PartialFile<'a> {
    dir: &'a OwnedFd,
    name: String,
    pub(super) file: std::fs::File,
    placed: bool,
}

impl<'a> PartialFile<'a> {
    /// Creates a new owner-only file beside where it goes.
    ///
    /// # Errors
    /// `Io` naming `shown`.
    pub(super) fn create(dir: &'a OwnedFd, shown: &Path) -> Result<PartialFile<'a>> {
        let name = format!(".dr-restore-{}", &crate::crypto::random_id()[..16]);
        let flags =
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let fd = rustix::fs::openat(dir, name.as_str(), flags, Mode::from_raw_mode(0o600))
            .map_err(|e| io(shown, "create", e))?;
        Ok(PartialFile {
            dir,
            name,
            file: std::fs::File::from(fd),
            placed: false,
        })
    }

    /// Applies the stored time and mode through the open file, then renames it to `name`,
    /// never over anything that exists there.
    ///
    /// # Errors
    /// `UnsafePath` when `name` exists; `Io`.
    pub(super) fn place(
        mut self,
        name: &std::ffi::OsStr,
        mode: u32,
        mtime_ns: i64,
        shown: &Path,
    ) -> Result<()> {
        apply_mode_and_mtime(&self.file, mode, mtime_ns, shown)?;
        let renamed = rustix::fs::renameat_with(
            self.dir,
            self.name.as_str(),
            self.dir,
            name,
            RenameFlags::NOREPLACE,
        );
        let renamed = match renamed {
            // File systems without RENAME_NOREPLACE: check, then rename (still relative to the
            // directory handle, and a rename never follows a symlink at its destination).
            Err(rustix::io::Errno::INVAL | rustix::io::Errno::NOSYS) => {
                if rustix::fs::statat(self.dir, name, AtFlags::SYMLINK_NOFOLLOW).is_ok() {
                    Err(rustix::io::Errno::EXIST)
                } else {
                    rustix::fs::renameat(self.dir, self.name.as_str(), self.dir, name)
                }
            }
            other => other,
        };
        renamed.map_err(|e| match e {
            rustix::io::Errno::EXIST => named_twice(shown),
            e => io(shown, "create", e),
        })?;
        self.placed = true;
        Ok(())
    }
}

impl Drop for PartialFile<'_> {
    fn drop(&mut self) {
        if !self.placed {
            let _ = rustix::fs::unlinkat(self.dir, self.name.as_str(), AtFlags::empty());
        }
    }
}

/// Sets a restored file's or directory's time and mode through its open handle.
///
/// # Errors
/// `Io` naming `shown`.
pub(super) fn apply_mode_and_mtime(
    file: &std::fs::File,
    mode: u32,
    mtime_ns: i64,
    shown: &Path,
) -> Result<()> {
    let secs = mtime_ns.div_euclid(1_000_000_000);
    let nanos = mtime_ns.rem_euclid(1_000_000_000) as u32;
    let when = if secs >= 0 {
        std::time::UNIX_EPOCH + std::time::Duration::new(secs as u64, nanos)
    } else {
        std::time::UNIX_EPOCH
    };
    file.set_modified(when)
        .map_err(|e| Error::io(shown, "set the time of", e))?;
    file.set_permissions(std::fs::Permissions::from_mode(
        super::restore::restored_mode(mode),
    ))
    .map_err(|e| Error::io(shown, "set permissions of", e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write as _;

    /// A directory swapped for a symlink after the restore opened it: the file still lands in
    /// the directory the restore opened, never where the symlink points; and walking to the
    /// swapped path again refuses it.
    #[test]
    fn a_path_swapped_for_a_symlink_mid_restore_cannot_redirect_writes() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("target");
        let outside = dir.path().join("outside");
        std::fs::create_dir_all(&target).unwrap();
        std::fs::create_dir_all(&outside).unwrap();
        let tree = Tree::open(&target).unwrap();
        let handle = tree.dir(&["a", "b"], true).unwrap();

        // The attacker's move: a/ goes away and a symlink to outside takes its name.
        std::fs::rename(target.join("a"), target.join("moved")).unwrap();
        std::os::unix::fs::symlink(&outside, target.join("a")).unwrap();

        let shown = target.join("a/b/f");
        let mut partial = PartialFile::create(&handle, &shown).unwrap();
        partial.file.write_all(b"data").unwrap();
        partial.place("f".as_ref(), 0o644, 0, &shown).unwrap();
        assert_eq!(std::fs::read(target.join("moved/b/f")).unwrap(), b"data");
        assert_eq!(std::fs::read_dir(&outside).unwrap().count(), 0);

        let err = tree.dir(&["a", "b"], true).unwrap_err();
        assert_eq!(err.kind, ErrorKind::UnsafePath, "{err}");
        assert_eq!(std::fs::read_dir(&outside).unwrap().count(), 0);
        // A symlinked target itself is refused too.
        assert_eq!(
            Tree::open(&target.join("a")).err().unwrap().kind,
            ErrorKind::UnsafePath
        );
    }

    /// A file whose name exists already is never replaced, and its partial file goes away.
    #[test]
    fn placing_never_replaces_and_a_dropped_partial_file_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let tree = Tree::open(dir.path()).unwrap();
        let root = tree.dir(&[] as &[&str], false).unwrap();
        std::os::unix::fs::symlink("/etc/passwd", dir.path().join("taken")).unwrap();
        let shown = dir.path().join("taken");
        let partial = PartialFile::create(&root, &shown).unwrap();
        let err = partial
            .place("taken".as_ref(), 0o644, 0, &shown)
            .unwrap_err();
        assert_eq!(err.kind, ErrorKind::UnsafePath);
        drop(PartialFile::create(&root, &shown).unwrap());
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["taken"]);
    }
}
