//! `drctl state history VAULT`: every state version, oldest first.

use super::versions;
use crate::output;
use crate::vault::Context;

pub async fn run(ctx: &Context) -> u8 {
    let vault = match ctx.open().await {
        Ok(v) => v,
        Err(code) => return code,
    };
    let history = match versions(&vault).await {
        Ok(h) => h,
        Err(code) => return code,
    };
    if ctx.json {
        let rows: Vec<_> = history
            .iter()
            .map(|(s, m)| serde_json::json!({"snapshot": s.id, "time": s.time, "state": m}))
            .collect();
        output::json(&rows);
    } else if history.is_empty() {
        println!("no Terraform state in {}", vault.storage().url());
    } else {
        println!(
            "{:<14} {:<22} {:>7} {:<38} {:>9}  terraform",
            "snapshot", "time", "serial", "lineage", "resources"
        );
        for (s, m) in &history {
            println!(
                "{:<14} {:<22} {:>7} {:<38} {:>9}  {}",
                &s.id[..12],
                &s.time[..s.time.len().min(19)],
                m.serial,
                m.lineage,
                m.resources,
                m.terraform_version
            );
        }
    }
    output::EXIT_OK
}
