//! `drctl vault snapshot`.

use super::Context;
use crate::cli::SnapshotArgs;
use crate::output::{self, Outcome};
use dr_vault::{PendingScan, SourceSpec};

pub async fn run(ctx: &Context, args: SnapshotArgs) -> Outcome {
    let specs: Vec<SourceSpec> = args
        .sources
        .iter()
        .map(|(name, path)| SourceSpec {
            name: name.clone(),
            path: path.into(),
            include: args.include.clone(),
            exclude: args.exclude.clone(),
        })
        .collect();
    // The scan waits on the disk while the key derivation in `open` keeps a core busy.
    let scan = PendingScan::start(&specs);
    let vault = ctx.open().await?;
    let labels = args.labels.into_iter().collect();
    let bar = output::Bar::new();
    let result = vault.snapshot_scanned(scan, &labels, &bar).await;
    drop(bar);
    let s = result?;
    if ctx.json {
        output::json(&s)?;
    } else {
        println!(
            "snapshot {} saved: {} files, {} ({} files read, {} new, {} stored)",
            &s.id[..12],
            s.files,
            output::bytes(s.bytes),
            s.files_read,
            output::bytes(s.bytes_new),
            output::bytes(s.bytes_stored)
        );
        if s.special_files_skipped > 0 {
            eprintln!(
                "note: {} FIFOs, sockets or devices in the sources were left out (never opened)",
                s.special_files_skipped
            );
        }
    }
    Ok(output::EXIT_OK)
}
