//! `drctl vault replicate --to URL`.

use super::Context;
use crate::cli::ReplicateArgs;
use crate::output;

pub async fn run(ctx: &Context, args: ReplicateArgs) -> u8 {
    let source = match ctx.open().await {
        Ok(v) => v,
        Err(code) => return code,
    };
    let dest_ctx = Context {
        url: args.to.clone(),
        options: args.to_options.iter().cloned().collect(),
        json: ctx.json,
        passphrase_file: args
            .to_passphrase_file
            .clone()
            .or_else(|| ctx.passphrase_file.clone()),
    };
    let dest = match dest_ctx.open().await {
        Ok(v) => v,
        Err(code) => return code,
    };
    let plan = match source.plan_replication(&dest).await {
        Ok(p) => p,
        Err(e) => return output::fail(&e),
    };
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
        if ctx.json {
            output::json(&serde_json::json!({ "plan": plan, "dry_run": true }));
        }
        return output::EXIT_OK;
    }
    let bar = output::Bar::new();
    let result = source.replicate(&dest, &plan, &bar).await;
    drop(bar);
    match result {
        Ok(summary) => {
            if ctx.json {
                output::json(&serde_json::json!({ "plan": plan, "summary": summary }));
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
            output::EXIT_OK
        }
        Err(e) => output::fail(&e),
    }
}
