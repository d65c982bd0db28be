//! `drctl vault restore`.

use super::Context;
use crate::cli::RestoreArgs;
use crate::output;

pub async fn run(ctx: &Context, args: RestoreArgs) -> u8 {
    let vault = match ctx.open().await {
        Ok(v) => v,
        Err(code) => return code,
    };
    let bar = output::Bar::new();
    let result = vault
        .restore(&args.snapshot, &args.target, args.source.as_deref(), &bar)
        .await;
    drop(bar);
    match result {
        Ok(s) => {
            if ctx.json {
                output::json(&s);
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
            output::EXIT_OK
        }
        Err(e) => output::fail(&e),
    }
}
