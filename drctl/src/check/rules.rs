//! The rules, each with an ID users can pass to `--disable`: its severity, its summary (the
//! rule table of `drctl check --help`, JUnit and SARIF are generated from them) and the
//! function that finds its violations, side by side.

use super::plan::{Change, Plan};
use super::{Severity, Violation};
use std::time::Duration;

pub struct Rule {
    pub id: &'static str,
    pub severity: Severity,
    pub summary: &'static str,
    find: fn(&'static Rule, &Plan, &mut Vec<Violation>),
}

pub static RULES: [Rule; 7] = [
    Rule {
        id: "DR001",
        severity: Severity::Error,
        summary: "a dr_backup_vault that holds snapshots is destroyed or replaced",
        find: vault_with_snapshots_deleted,
    },
    Rule {
        id: "DR002",
        severity: Severity::Warning,
        summary: "force_destroy is turned on for a vault that holds snapshots",
        find: force_destroy_turned_on,
    },
    Rule {
        id: "DR003",
        severity: Severity::Error,
        summary: "a region pair's vaults are in the same region",
        find: pair_in_one_region,
    },
    Rule {
        id: "DR004",
        severity: Severity::Warning,
        summary: "a region pair has no drill on its standby vault",
        find: standby_without_drill,
    },
    Rule {
        id: "DR005",
        severity: Severity::Warning,
        summary: "a drill's max_age is missing or longer than its pair's rpo",
        find: drill_staler_than_rpo,
    },
    Rule {
        id: "DR006",
        severity: Severity::Error,
        summary: "a vault in a pair keeps snapshots (keep_within) for less than the pair's rpo",
        find: retention_shorter_than_rpo,
    },
    Rule {
        id: "DR007",
        severity: Severity::Warning,
        summary: "a vault in a warm_standby/active_active pair has no retention.lock_for",
        find: strict_pair_without_lock,
    },
];

impl Rule {
    pub fn by_id(id: &str) -> Option<&'static Rule> {
        RULES.iter().find(|r| r.id == id)
    }

    fn violation(&'static self, change: &Change, attribute: &str, message: String) -> Violation {
        Violation {
            rule: self,
            severity: self.severity,
            address: change.address.clone(),
            attribute: attribute.to_string(),
            message,
        }
    }
}

/// Every rule's violations, rule by rule.
pub fn check(plan: &Plan) -> Vec<Violation> {
    let mut out = Vec::new();
    for rule in &RULES {
        (rule.find)(rule, plan, &mut out);
    }
    out
}

/// The rule table of `drctl check --help`.
pub fn table() -> String {
    RULES
        .iter()
        .map(|r| {
            let severity = match r.severity {
                Severity::Error => "error",
                Severity::Warning => "warning",
            };
            format!("  {} {severity:<8} {}\n", r.id, r.summary)
        })
        .collect()
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

/// Snapshots a vault held before this plan.
fn snapshots_held(vault: &Change) -> u64 {
    vault
        .before
        .get("snapshot_count")
        .and_then(|n| n.as_f64())
        .unwrap_or(0.0) as u64
}

/// Every vault in the plan, removed ones included.
fn vaults(plan: &Plan) -> impl Iterator<Item = &Change> {
    plan.changes.iter().filter(|c| c.kind == "dr_backup_vault")
}

fn vault_with_snapshots_deleted(rule: &'static Rule, plan: &Plan, out: &mut Vec<Violation>) {
    for vault in vaults(plan) {
        let held = snapshots_held(vault);
        if !(vault.deletes() && held > 0) {
            continue;
        }
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
        out.push(rule.violation(
            vault,
            attribute,
            format!(
                "this plan {how} a vault holding {held} snapshot(s){}; keep the vault (terraform state rm, or revert the change) or replicate it first",
                if changed.is_empty() { String::new() } else { format!(" because {} changed", changed.join(", ")) }
            ),
        ));
    }
}

fn force_destroy_turned_on(rule: &'static Rule, plan: &Plan, out: &mut Vec<Violation>) {
    for vault in vaults(plan) {
        let held = snapshots_held(vault);
        let was = vault
            .before
            .get("force_destroy")
            .and_then(|b| b.as_bool())
            .unwrap_or(false);
        if !was && vault.after("force_destroy").and_then(|b| b.as_bool()) == Some(true) && held > 0
        {
            out.push(rule.violation(
                vault,
                "force_destroy",
                format!("force_destroy turns on for a vault holding {held} snapshot(s): a later destroy deletes them"),
            ));
        }
    }
}

/// A region pair with the vaults it names, where the plan has them.
struct Pair<'a> {
    pair: &'a Change,
    primary: Option<&'a Change>,
    secondary: Option<&'a Change>,
}

impl<'a> Pair<'a> {
    fn all(plan: &'a Plan) -> impl Iterator<Item = Pair<'a>> {
        plan.of_kind("dr_region_pair").map(|pair| Pair {
            pair,
            primary: vault_of(plan, pair, "primary_vault_id"),
            secondary: vault_of(plan, pair, "secondary_vault_id"),
        })
    }

    /// The standby vault and the attribute that names it.
    fn standby(&self) -> (Option<&'a Change>, &'static str) {
        if self.pair.after_str("active") == Some("secondary") {
            (self.primary, "primary_vault_id")
        } else {
            (self.secondary, "secondary_vault_id")
        }
    }

    /// The pair's rpo; `None` while unknown.
    fn rpo(&self) -> Option<Duration> {
        duration(self.pair.after_str("rpo"))
    }
}

fn pair_in_one_region(rule: &'static Rule, plan: &Plan, out: &mut Vec<Violation>) {
    for p in Pair::all(plan) {
        let (Some(primary), Some(secondary)) = (p.primary, p.secondary) else {
            continue;
        };
        if let (Some(pr), Some(sr)) = (primary.after_str("region"), secondary.after_str("region")) {
            if pr == sr {
                out.push(rule.violation(
                    p.pair,
                    "secondary_vault_id",
                    format!(
                        "{} and {} are both in region {pr:?}; a pair needs two regions",
                        primary.address, secondary.address
                    ),
                ));
            }
        }
    }
}

fn standby_without_drill(rule: &'static Rule, plan: &Plan, out: &mut Vec<Violation>) {
    let drills: Vec<&Change> = plan.of_kind("dr_drill").collect();
    for p in Pair::all(plan) {
        let (Some(standby), standby_attr) = p.standby() else {
            continue;
        };
        let drilled = drills
            .iter()
            .any(|d| vault_of(plan, d, "vault_id").is_some_and(|v| v.address == standby.address));
        let unknowable = drills
            .iter()
            .any(|d| d.unknown("vault_id") && d.reference("vault_id", "dr_backup_vault").is_none());
        if !drilled && !unknowable {
            out.push(rule.violation(
                p.pair,
                standby_attr,
                format!("no dr_drill restores from the standby vault {}: nobody knows whether a failover would work", standby.address),
            ));
        }
    }
}

fn drill_staler_than_rpo(rule: &'static Rule, plan: &Plan, out: &mut Vec<Violation>) {
    for p in Pair::all(plan) {
        let Some(rpo) = p.rpo() else { continue };
        let pair = p.pair;
        for drill in plan.of_kind("dr_drill").filter(|d| {
            d.reference("region_pair_id", "dr_region_pair").as_deref()
                == Some(pair.address.as_str())
                || (d.after_str("region_pair_id").is_some()
                    && d.after_str("region_pair_id") == pair.after_str("id"))
        }) {
            let own_rpo = duration(drill.after_str("rpo")).unwrap_or(rpo);
            match duration(drill.after_str("max_age")) {
                _ if drill.unknown("max_age") => {}
                None => out.push(rule.violation(drill, "max_age", format!("no max_age: the drill never re-runs, so its result grows older than the rpo ({})", human(own_rpo)))),
                Some(age) if age > own_rpo => out.push(rule.violation(
                    drill,
                    "max_age",
                    format!("max_age {} is longer than the rpo {}: a passed drill can be staler than the pair promises", human(age), human(own_rpo)),
                )),
                _ => {}
            }
        }
    }
}

/// A vault's planned `retention` block, when it has one.
fn retention(vault: &Change) -> Option<&serde_json::Value> {
    vault.after.get("retention").filter(|r| !r.is_null())
}

fn retention_shorter_than_rpo(rule: &'static Rule, plan: &Plan, out: &mut Vec<Violation>) {
    for p in Pair::all(plan) {
        let Some(rpo) = p.rpo() else { continue };
        for vault in [p.primary, p.secondary].into_iter().flatten() {
            let keep = retention(vault)
                .and_then(|r| r.get("keep_within"))
                .and_then(|v| v.as_str());
            if let Some(keep) = duration(keep).filter(|keep| *keep < rpo) {
                out.push(rule.violation(
                    vault,
                    "retention.keep_within",
                    format!(
                        "keep_within {} is shorter than the rpo {} of {}",
                        human(keep),
                        human(rpo),
                        p.pair.address
                    ),
                ));
            }
        }
    }
}

fn strict_pair_without_lock(rule: &'static Rule, plan: &Plan, out: &mut Vec<Violation>) {
    for p in Pair::all(plan) {
        let strategy = p.pair.after_str("strategy");
        if !matches!(strategy, Some("warm_standby" | "active_active")) {
            continue;
        }
        for vault in [p.primary, p.secondary].into_iter().flatten() {
            let lock = retention(vault)
                .and_then(|r| r.get("lock_for"))
                .filter(|v| !v.is_null());
            if lock.is_none() && !vault.unknown("retention") {
                out.push(rule.violation(
                    vault,
                    "retention.lock_for",
                    format!(
                        "{} is {}, but this vault has no retention.lock_for: a mistake or an attacker can delete every snapshot",
                        p.pair.address,
                        strategy.unwrap_or_default()
                    ),
                ));
            }
        }
    }
}
