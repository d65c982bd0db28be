//! The rules, each with an ID users can pass to `--disable`.

use super::plan::{Change, Plan};
use super::{Severity, Violation};
use std::time::Duration;

pub struct Rule {
    pub id: &'static str,
    pub severity: Severity,
    pub summary: &'static str,
}

pub const RULES: [Rule; 7] = [
    Rule {
        id: "DR001",
        severity: Severity::Error,
        summary: "a dr_backup_vault that holds snapshots is destroyed or replaced",
    },
    Rule {
        id: "DR002",
        severity: Severity::Warning,
        summary: "force_destroy is turned on for a vault that holds snapshots",
    },
    Rule {
        id: "DR003",
        severity: Severity::Error,
        summary: "a region pair's vaults are in the same region",
    },
    Rule {
        id: "DR004",
        severity: Severity::Warning,
        summary: "a region pair has no drill on its standby vault",
    },
    Rule {
        id: "DR005",
        severity: Severity::Warning,
        summary:
            "a drill may be older than its pair's rpo allows (max_age missing or longer than rpo)",
    },
    Rule {
        id: "DR006",
        severity: Severity::Error,
        summary: "a vault in a region pair keeps snapshots for less time than the pair's rpo",
    },
    Rule {
        id: "DR007",
        severity: Severity::Warning,
        summary: "a vault in a warm_standby or active_active pair has no retention.lock_for",
    },
];

fn violation(rule: &'static str, change: &Change, attribute: &str, message: String) -> Violation {
    let severity = RULES
        .iter()
        .find(|r| r.id == rule)
        .map_or(Severity::Error, |r| r.severity);
    Violation {
        rule,
        severity,
        address: change.address.clone(),
        attribute: attribute.to_string(),
        message,
    }
}

fn duration(text: Option<&str>) -> Option<Duration> {
    text.and_then(|t| dr_vault::parse_duration(t, "duration").ok())
}

fn human(d: Duration) -> String {
    humantime::format_duration(d).to_string()
}

/// The vault a pair or drill attribute names: by configuration reference, else by a known id.
fn vault_of<'a>(plan: &'a Plan, change: &Change, attr: &str) -> Option<&'a Change> {
    if let Some(address) = change.reference(attr, "dr_backup_vault") {
        return plan.by_address(&address);
    }
    let id = change.after_str(attr)?;
    plan.of_kind("dr_backup_vault").find(|v| {
        v.after_str("id") == Some(id) || v.before.get("id").and_then(|x| x.as_str()) == Some(id)
    })
}

pub fn check(plan: &Plan) -> Vec<Violation> {
    let mut out = Vec::new();
    for vault in plan.changes.iter().filter(|c| c.kind == "dr_backup_vault") {
        let held = vault
            .before
            .get("snapshot_count")
            .and_then(|n| n.as_f64())
            .unwrap_or(0.0) as u64;
        if vault.deletes() && held > 0 {
            let how = if vault.is_removed() {
                "destroys"
            } else {
                "replaces"
            };
            let changed: Vec<&str> = ["name", "region", "url"]
                .into_iter()
                .filter(|a| !vault.is_removed() && vault.before.get(*a) != vault.after.get(*a))
                .collect();
            let attribute = changed.first().copied().unwrap_or("snapshot_count");
            out.push(violation(
                "DR001",
                vault,
                attribute,
                format!(
                    "this plan {how} a vault holding {held} snapshot(s){}; keep the vault (terraform state rm, or revert the change) or replicate it first",
                    if changed.is_empty() { String::new() } else { format!(" because {} changed", changed.join(", ")) }
                ),
            ));
        }
        let was = vault
            .before
            .get("force_destroy")
            .and_then(|b| b.as_bool())
            .unwrap_or(false);
        if !was && vault.after("force_destroy").and_then(|b| b.as_bool()) == Some(true) && held > 0
        {
            out.push(violation(
                "DR002",
                vault,
                "force_destroy",
                format!("force_destroy turns on for a vault holding {held} snapshot(s): a later destroy deletes them"),
            ));
        }
    }

    let drills: Vec<&Change> = plan.of_kind("dr_drill").collect();
    for pair in plan.of_kind("dr_region_pair") {
        let primary = vault_of(plan, pair, "primary_vault_id");
        let secondary = vault_of(plan, pair, "secondary_vault_id");
        if let (Some(p), Some(s)) = (primary, secondary) {
            if let (Some(pr), Some(sr)) = (p.after_str("region"), s.after_str("region")) {
                if pr == sr {
                    out.push(violation(
                        "DR003",
                        pair,
                        "secondary_vault_id",
                        format!(
                            "{} and {} are both in region {pr:?}; a pair needs two regions",
                            p.address, s.address
                        ),
                    ));
                }
            }
        }
        let active = pair.after_str("active").unwrap_or("primary");
        let (standby, standby_attr) = if active == "secondary" {
            (primary, "primary_vault_id")
        } else {
            (secondary, "secondary_vault_id")
        };
        if let Some(standby) = standby {
            let drilled = drills.iter().any(|d| {
                vault_of(plan, d, "vault_id").is_some_and(|v| v.address == standby.address)
            });
            let unknowable = drills.iter().any(|d| {
                d.unknown("vault_id") && d.reference("vault_id", "dr_backup_vault").is_none()
            });
            if !drilled && !unknowable {
                out.push(violation(
                    "DR004",
                    pair,
                    standby_attr,
                    format!("no dr_drill restores from the standby vault {}: nobody knows whether a failover would work", standby.address),
                ));
            }
        }
        let Some(rpo) = duration(pair.after_str("rpo")) else {
            continue;
        };
        for drill in drills.iter().filter(|d| {
            d.reference("region_pair_id", "dr_region_pair").as_deref()
                == Some(pair.address.as_str())
                || (d.after_str("region_pair_id").is_some()
                    && d.after_str("region_pair_id") == pair.after_str("id"))
        }) {
            let own_rpo = duration(drill.after_str("rpo")).unwrap_or(rpo);
            match duration(drill.after_str("max_age")) {
                _ if drill.unknown("max_age") => {}
                None => out.push(violation("DR005", drill, "max_age", format!("no max_age: the drill never re-runs, so its result grows older than the rpo ({})", human(own_rpo)))),
                Some(age) if age > own_rpo => out.push(violation(
                    "DR005",
                    drill,
                    "max_age",
                    format!("max_age {} is longer than the rpo {}: a passed drill can be staler than the pair promises", human(age), human(own_rpo)),
                )),
                _ => {}
            }
        }
        let strict = matches!(
            pair.after_str("strategy"),
            Some("warm_standby" | "active_active")
        );
        for vault in [primary, secondary].into_iter().flatten() {
            let retention = vault.after.get("retention").filter(|r| !r.is_null());
            let unknown_retention = vault.unknown("retention");
            if let Some(keep) = duration(
                retention
                    .and_then(|r| r.get("keep_within"))
                    .and_then(|v| v.as_str()),
            ) {
                if keep < rpo {
                    out.push(violation(
                        "DR006",
                        vault,
                        "retention.keep_within",
                        format!(
                            "keep_within {} is shorter than the rpo {} of {}",
                            human(keep),
                            human(rpo),
                            pair.address
                        ),
                    ));
                }
            }
            let lock = retention
                .and_then(|r| r.get("lock_for"))
                .filter(|v| !v.is_null());
            if strict && lock.is_none() && !unknown_retention {
                out.push(violation(
                    "DR007",
                    vault,
                    "retention.lock_for",
                    format!(
                        "{} is {}, but this vault has no retention.lock_for: a mistake or an attacker can delete every snapshot",
                        pair.address,
                        pair.after_str("strategy").unwrap_or_default()
                    ),
                ));
            }
        }
    }
    out
}
