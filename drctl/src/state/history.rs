//! `drctl state history VAULT`: every state version, oldest pushed first, the current one
//! marked (see [`super::current`]).

use super::{current, push_order, versions, StateMeta};
use crate::output::{self, Outcome};
use crate::vault::Context;

pub async fn run(ctx: &Context) -> Outcome {
    let vault = ctx.open().await?;
    let history = versions(&vault).await?;
    let current_id = current(&history).map(|(s, _)| s.id.clone());
    let history = push_order(&history);
    let is_current = |id: &str| current_id.as_deref() == Some(id);
    if ctx.json {
        let rows: Vec<_> = history
            .iter()
            .map(|(s, m)| Version {
                snapshot: &s.id,
                time: s.time,
                state: m,
                current: is_current(&s.id),
            })
            .collect();
        output::json(&rows)?;
    } else if history.is_empty() {
        println!("no Terraform state in {}", vault.storage().url());
    } else {
        println!(
            "  {:<14} {:<22} {:>7} {:<38} {:>9}  terraform",
            "snapshot", "time", "serial", "lineage", "resources"
        );
        for (s, m) in history {
            println!(
                "{} {:<14} {:<22} {:>7} {:<38} {:>9}  {}",
                if is_current(&s.id) { "*" } else { " " },
                &s.id[..12],
                &output::time(s.time)[..19],
                m.serial,
                m.lineage,
                m.resources,
                m.terraform_version
            );
        }
    }
    Ok(output::EXIT_OK)
}

/// One row of `--json`.
#[derive(serde::Serialize)]
struct Version<'a> {
    snapshot: &'a str,
    #[serde(serialize_with = "dr_vault::clock::serialize_nanos")]
    time: time::OffsetDateTime,
    state: &'a StateMeta,
    current: bool,
}
