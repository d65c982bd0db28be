//! `drctl vault verify`.

use super::Context;
use crate::cli::VerifyArgs;
use crate::output;

pub async fn run(ctx: &Context, args: VerifyArgs) -> u8 {
    let vault = match ctx.open().await {
        Ok(v) => v,
        Err(code) => return code,
    };
    let bar = output::Bar::new();
    let result = vault.verify(args.read_data, &bar).await;
    drop(bar);
    match result {
        Ok(report) => {
            if ctx.json {
                output::json(&report);
            } else {
                for p in &report.problems {
                    println!("problem: {}: {}", p.object, p.message);
                }
                for key in &report.foreign_objects {
                    eprintln!(
                        "warning: {key} is not one of the vault's objects; it was not checked"
                    );
                }
                println!(
                    "checked {} snapshots, {} index files, {} packs, {} blobs ({} read): {}",
                    report.snapshots,
                    report.index_files,
                    report.packs,
                    report.blobs_checked,
                    output::bytes(report.bytes_read),
                    if report.is_clean() {
                        "no problems".to_string()
                    } else {
                        format!("{} problems", report.problems.len())
                    }
                );
            }
            if report.is_clean() {
                output::EXIT_OK
            } else {
                output::EXIT_FAILURE
            }
        }
        Err(e) => output::fail(&e),
    }
}
