//! `drctl vault prune`: plan, print, then execute unless --dry-run.

use super::Context;
use super::PlanAndSummary;
use crate::cli::PruneArgs;
use crate::output::{self, Outcome};
use dr_vault::{parse_duration, Retention};

pub async fn run(ctx: &Context, args: PruneArgs) -> Outcome {
    let parse = |text: &Option<String>, flag: &str| {
        text.as_deref().map(|t| parse_duration(t, flag)).transpose()
    };
    let retention = Retention {
        keep_last: args.keep_last,
        keep_within: parse(&args.keep_within, "--keep-within")?,
        lock_for: parse(&args.lock_for, "--lock-for")?,
    };
    let vault = ctx.open().await?;
    let plan = vault.plan_prune(&retention, dr_vault::clock::now()).await?;
    if !ctx.json {
        println!(
            "plan: keep {} snapshots ({} only because of --lock-for), forget {}, delete {} packs ({}), keep {} packs",
            plan.keep.len(),
            plan.locked.len(),
            plan.forget.len(),
            plan.packs_to_delete.len(),
            output::bytes(plan.bytes_to_free),
            plan.packs_kept
        );
        for s in &plan.forget {
            println!("  forget {} {}", &s.id[..12], output::time(s.time));
        }
        for key in &plan.foreign_objects {
            eprintln!("warning: {key} is not one of the vault's objects; it is left alone");
        }
        for problem in &plan.unreadable {
            eprintln!(
                "warning: {} does not open ({}); no pack is deleted while it is there",
                problem.object, problem.message
            );
        }
    }
    if args.dry_run {
        return super::dry_run_done(ctx, plan);
    }
    let summary = vault.prune(&plan).await?;
    if ctx.json {
        output::json(&PlanAndSummary {
            plan,
            dry_run: false,
            summary: Some(summary),
        })?;
    } else {
        let interrupted = match summary.interrupted_writes_deleted {
            0 => String::new(),
            1 => ", 1 file left by an interrupted write deleted".to_string(),
            n => format!(", {n} files left by interrupted writes deleted"),
        };
        println!(
            "pruned: {} snapshots forgotten, {} packs deleted{interrupted}, {} freed",
            summary.snapshots_forgotten,
            summary.packs_deleted,
            output::bytes(summary.bytes_freed)
        );
    }
    Ok(output::EXIT_OK)
}
