//! `drctl state pull VAULT --out FILE`: restore a state version. Refuses to replace a file of
//! another lineage or a newer serial unless --force, and always keeps a copy of what it
//! replaces beside it.

use super::{chosen, versions, StateMeta, FILE, SOURCE};
use crate::cli::StatePullArgs;
use crate::output::{self, CliError, Outcome};
use crate::vault::Context;
use dr_vault::NoProgress;
use std::path::Path;

pub async fn run(ctx: &Context, args: StatePullArgs) -> Outcome {
    let vault = ctx.open().await?;
    let history = versions(&vault).await?;
    let (snapshot, meta) = chosen(&history, args.snapshot.as_deref(), &ctx.url)?;
    let out = &args.out;
    let parent = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => std::path::PathBuf::from("."),
    };
    refuse_unsafe_overwrite(out, meta, args.force)?;
    // Restored beside the target, then renamed over it: never a half-written state file.
    let staging = tempfile::Builder::new()
        .prefix(".drctl-pull-")
        .tempdir_in(&parent)
        .map_err(|e| {
            CliError::usage(
                format!("cannot write in {}: {e}", parent.display()),
                "check --out and its directory",
            )
        })?;
    let restored_dir = staging.path().join("restore");
    vault
        .restore(&snapshot.id, &restored_dir, Some(SOURCE), &NoProgress)
        .await?;
    let restored = restored_dir.join(FILE);
    // On disk before it replaces --out: a crash right after the rename must not leave an
    // empty state file where a good one was.
    std::fs::File::open(&restored)
        .and_then(|f| f.sync_all())
        .map_err(|e| unchanged(format!("cannot write {}: {e}", restored.display())))?;
    if out.exists() {
        let backup = backup_name(out);
        let copied = std::fs::copy(out, &backup)
            .and_then(|_| std::fs::File::open(&backup))
            .and_then(|f| f.sync_all()); // on disk before the original is replaced
        copied.map_err(|e| {
            unchanged(format!(
                "cannot keep a backup of {} at {}: {e}",
                out.display(),
                backup.display()
            ))
        })?;
        eprintln!(
            "kept the previous {} as {}",
            out.display(),
            backup.display()
        );
    }
    std::fs::rename(&restored, out)
        .map_err(|e| unchanged(format!("cannot write {}: {e}", out.display())))?;
    if let Ok(dir) = std::fs::File::open(&parent) {
        let _ = dir.sync_all(); // the rename itself, durable
    }
    if ctx.json {
        output::json(&Pulled {
            snapshot: &snapshot.id,
            out,
            state: meta,
        })?;
    } else {
        println!(
            "restored state serial {} (lineage {}, {} resources) from snapshot {} into {}",
            meta.serial,
            meta.lineage,
            meta.resources,
            &snapshot.id[..12],
            out.display()
        );
    }
    Ok(output::EXIT_OK)
}

/// The `--json` output.
#[derive(serde::Serialize)]
struct Pulled<'a> {
    snapshot: &'a str,
    out: &'a Path,
    state: &'a StateMeta,
}

/// A write that failed before anything was replaced.
fn unchanged(message: String) -> CliError {
    CliError::usage(message, "nothing was changed")
}

/// The lineage/serial rules: an error when the overwrite is refused.
fn refuse_unsafe_overwrite(out: &Path, incoming: &StateMeta, force: bool) -> Result<(), CliError> {
    let Ok(bytes) = std::fs::read(out) else {
        return Ok(());
    };
    if force {
        return Ok(());
    }
    let existing = StateMeta::parse(&bytes, &out.display().to_string()).map_err(|e| {
        CliError::refused(
            format!("refusing to replace {}: {e}", out.display()),
            "pass --force to replace it anyway (a backup is kept), or choose another --out",
        )
    })?;
    match super::refusal(&existing, incoming, &out.display().to_string(), "the vault") {
        Some(p) => Err(CliError::refused(
            format!("refusing to replace {}: {p}", out.display()),
            "push it first with `drctl state push`, or pass --force (a backup of the file is kept)",
        )),
        None => Ok(()),
    }
}

/// `FILE.<unix seconds>.backup`, never an existing name.
fn backup_name(out: &Path) -> std::path::PathBuf {
    let secs = dr_vault::clock::now().unix_timestamp();
    let mut n = 0;
    loop {
        let suffix = if n == 0 {
            format!("{secs}.backup")
        } else {
            format!("{secs}.{n}.backup")
        };
        let candidate = out.with_file_name(format!(
            "{}.{suffix}",
            out.file_name()
                .map(|f| f.to_string_lossy().into_owned())
                .unwrap_or_default()
        ));
        if !candidate.exists() {
            return candidate;
        }
        n += 1;
    }
}
