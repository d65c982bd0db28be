//! `drctl vault restore`.

use super::Context;
use crate::cli::RestoreArgs;
use crate::output::{self, Outcome};

pub async fn run(ctx: &Context, args: RestoreArgs) -> Outcome {
    let vault = ctx.open().await?;
    let bar = output::Bar::new();
    let result = vault
        .restore(&args.snapshot, &args.target, args.source.as_deref(), &bar)
        .await;
    drop(bar);
    let s = result?;
    if ctx.json {
        output::json(&s)?;
    } else {
        println!(
            "restored snapshot {} into {}: {} files, {} dirs, {} symlinks, {}",
            &s.snapshot_id[..12],
            args.target.display(),
            s.files,
            s.dirs,
            s.symlinks,
            output::bytes(s.bytes)
        );
    }
    Ok(output::EXIT_OK)
}
