//! `drctl vault snapshots`.

use super::Context;
use crate::output::{self, Outcome};

pub async fn run(ctx: &Context) -> Outcome {
    let vault = ctx.open().await?;
    let listing = vault.snapshot_listing().await?;
    for problem in &listing.unreadable {
        eprintln!(
            "warning: {} does not open and is left out: {}",
            problem.object, problem.message
        );
    }
    let list = listing.snapshots;
    if ctx.json {
        output::json(&list)?;
    } else if list.is_empty() {
        println!("no snapshots in {}", vault.storage().url());
    } else {
        println!(
            "{:<14} {:<22} {:>7} {:>10}  sources",
            "id", "time", "files", "size"
        );
        for s in &list {
            println!(
                "{:<14} {:<22} {:>7} {:>10}  {}",
                &s.id[..12],
                output::time(s.time),
                s.files,
                output::bytes(s.bytes),
                s.sources.join(", ")
            );
        }
    }
    Ok(output::EXIT_OK)
}
