//! `drctl state pull VAULT --out FILE`: restore a state version. Refuses to replace a file of
//! another lineage or a newer serial unless --force, and always keeps a copy of what it
//! replaces beside it.

use super::{chosen, versions, StateMeta, FILE, SOURCE};
use crate::cli::StatePullArgs;
use crate::output;
use crate::vault::Context;
use dr_vault::NoProgress;
use std::path::Path;

pub async fn run(ctx: &Context, args: StatePullArgs) -> u8 {
    let vault = match ctx.open().await {
        Ok(v) => v,
        Err(code) => return code,
    };
    let history = match versions(&vault).await {
        Ok(h) => h,
        Err(code) => return code,
    };
    let (snapshot, meta) = match chosen(&history, args.snapshot.as_deref(), &ctx.url) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let out = &args.out;
    let parent = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => std::path::PathBuf::from("."),
    };
    if let Some(code) = refuse_unsafe_overwrite(out, meta, args.force) {
        return code;
    }
    // Restored beside the target, then renamed over it: never a half-written state file.
    let staging = match tempfile::Builder::new()
        .prefix(".drctl-pull-")
        .tempdir_in(&parent)
    {
        Ok(d) => d,
        Err(e) => {
            return output::usage(
                &format!("cannot write in {}: {e}", parent.display()),
                "check --out and its directory",
            )
        }
    };
    let restored_dir = staging.path().join("restore");
    if let Err(e) = vault
        .restore(&snapshot.id, &restored_dir, Some(SOURCE), &NoProgress)
        .await
    {
        return output::fail(&e);
    }
    let restored = restored_dir.join(FILE);
    // On disk before it replaces --out: a crash right after the rename must not leave an
    // empty state file where a good one was.
    if let Err(e) = std::fs::File::open(&restored).and_then(|f| f.sync_all()) {
        return output::usage(
            &format!("cannot write {}: {e}", restored.display()),
            "nothing was changed",
        );
    }
    if out.exists() {
        let backup = backup_name(out);
        let copied = std::fs::copy(out, &backup)
            .and_then(|_| std::fs::File::open(&backup))
            .and_then(|f| f.sync_all()); // on disk before the original is replaced
        if let Err(e) = copied {
            return output::usage(
                &format!(
                    "cannot keep a backup of {} at {}: {e}",
                    out.display(),
                    backup.display()
                ),
                "nothing was changed",
            );
        }
        eprintln!(
            "kept the previous {} as {}",
            out.display(),
            backup.display()
        );
    }
    if let Err(e) = std::fs::rename(&restored, out) {
        return output::usage(
            &format!("cannot write {}: {e}", out.display()),
            "nothing was changed",
        );
    }
    if let Ok(dir) = std::fs::File::open(&parent) {
        let _ = dir.sync_all(); // the rename itself, durable
    }
    if ctx.json {
        output::json(&serde_json::json!({"snapshot": snapshot.id, "out": out, "state": meta}));
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
    output::EXIT_OK
}

/// The lineage/serial rules; `Some(exit code)` when the overwrite is refused.
fn refuse_unsafe_overwrite(out: &Path, incoming: &StateMeta, force: bool) -> Option<u8> {
    let bytes = std::fs::read(out).ok()?;
    if force {
        return None;
    }
    let existing = match StateMeta::parse(&bytes, &out.display().to_string()) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("error: refusing to replace {}: {e}", out.display());
            eprintln!("hint: pass --force to replace it anyway (a backup is kept), or choose another --out");
            return Some(output::EXIT_FAILURE);
        }
    };
    super::refusal(&existing, incoming, &out.display().to_string(), "the vault").map(|p| {
        eprintln!("error: refusing to replace {}: {p}", out.display());
        eprintln!("hint: push it first with `drctl state push`, or pass --force (a backup of the file is kept)");
        output::EXIT_REFUSED
    })
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
