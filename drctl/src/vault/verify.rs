//! `drctl vault verify`.

use super::Context;
use crate::cli::VerifyArgs;
use crate::output::{self, Outcome};

pub async fn run(ctx: &Context, args: VerifyArgs) -> Outcome {
    let vault = ctx.open().await?;
    let bar = output::Bar::new();
    let result = vault.verify(args.read_data, &bar).await;
    drop(bar);
    let report = result?;
    if ctx.json {
        output::json(&report)?;
    } else {
        for p in &report.problems {
            println!("problem: {}: {}", p.object, p.message);
        }
        for key in &report.foreign_objects {
            eprintln!("warning: {key} is not one of the vault's objects; it was not checked");
        }
        println!(
            "checked {} snapshots, {} index files, {} packs, {} blobs ({} read): {}",
            report.snapshots,
            report.index_files,
            report.packs,
            report.blobs_checked,
            output::bytes(report.bytes_read),
            match report.problems.len() {
                0 => "no problems".to_string(),
                1 => "1 problem".to_string(),
                n => format!("{n} problems"),
            }
        );
    }
    // The problems are the output: no `error:` line, exit 1.
    Ok(if report.is_clean() {
        output::EXIT_OK
    } else {
        output::EXIT_FAILURE
    })
}
