//! `drctl vault replicate --to URL`.

use super::Context;
use super::PlanAndSummary;
use crate::cli::ReplicateArgs;
use crate::output::{self, Outcome};

pub async fn run(ctx: &Context, args: ReplicateArgs) -> Outcome {
    let source = ctx.open().await?;
    let dest = ctx
        .other(&args.to, &args.to_options, args.to_passphrase_file.as_ref())
        .open()
        .await?;
    let plan = source.plan_replication(&dest).await?;
    if !ctx.json {
        println!(
            "plan: copy {} snapshots to {} ({} already there)",
            plan.to_copy.len(),
            dest.storage().url(),
            plan.already_there
        );
        for problem in &plan.unreadable {
            eprintln!(
                "warning: {} does not open and cannot be copied: {}",
                problem.object, problem.message
            );
        }
    }
    if args.dry_run {
        return super::dry_run_done(ctx, plan);
    }
    let bar = output::Bar::new();
    let result = source.replicate(&dest, &plan, &bar).await;
    drop(bar);
    let summary = result?;
    if let Some(why) = &summary.history_not_recorded {
        eprintln!("warning: the copy is complete, but it is missing from the destination's replication history: {why}");
    }
    if ctx.json {
        output::json(&PlanAndSummary {
            plan,
            dry_run: false,
            summary: Some(summary),
        })?;
    } else {
        println!(
            "replicated {} snapshots: {} files, {} blobs, {} copied",
            summary.snapshots_copied,
            summary.files_copied,
            summary.blobs_copied,
            output::bytes(summary.bytes_copied)
        );
        for problem in &summary.unreadable {
            eprintln!(
                "warning: {} does not open and was not copied: {}",
                problem.object, problem.message
            );
        }
    }
    Ok(output::EXIT_OK)
}
