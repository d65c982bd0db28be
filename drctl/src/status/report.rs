//! The three renderings of the posture: a table for people, JSON for scripts, and the
//! Prometheus text exposition format (0.0.4) for a node-exporter textfile or a pushgateway.

use super::{human, Posture};
use std::fmt::Write as _;

pub fn table(p: &Posture) -> String {
    let mut out = String::new();
    let yes = |ok: bool| if ok { "ok" } else { "OUT OF POLICY" };
    let opt = |v: Option<u64>| v.map_or("-".to_string(), human);
    let flag = |v: Option<bool>| v.map_or("-", |b| if b { "yes" } else { "no" });
    if !p.vaults.is_empty() {
        let _ = writeln!(
            out,
            "{:<36} {:<14} {:>9}  {:<18} STATUS",
            "VAULT", "REGION", "SNAPSHOTS", "LATEST AGE"
        );
        for v in &p.vaults {
            let _ = writeln!(
                out,
                "{:<36} {:<14} {:>9}  {:<18} {}",
                v.address,
                v.region,
                if v.reachable {
                    v.snapshots.to_string()
                } else {
                    "-".into()
                },
                opt(v.latest_snapshot_age_seconds),
                yes(v.ok)
            );
        }
    }
    if !p.pairs.is_empty() {
        let _ = writeln!(
            out,
            "\n{:<36} {:<10} {:<18} {:<10} {:<8} STATUS",
            "REGION PAIR", "ACTIVE", "LAG", "RPO", "IN SYNC"
        );
        for r in &p.pairs {
            let _ = writeln!(
                out,
                "{:<36} {:<10} {:<18} {:<10} {:<8} {}",
                r.address,
                r.active,
                opt(r.replication_lag_seconds),
                opt(r.rpo_seconds),
                flag(r.in_sync),
                yes(r.ok)
            );
        }
    }
    if !p.drills.is_empty() {
        let _ = writeln!(
            out,
            "\n{:<36} {:<8} {:<18} {:<10} {:<7} {:<7} STATUS",
            "DRILL", "RESULT", "AGE", "MAX AGE", "RTO MET", "RPO MET"
        );
        for d in &p.drills {
            let _ = writeln!(
                out,
                "{:<36} {:<8} {:<18} {:<10} {:<7} {:<7} {}",
                d.address,
                d.status.as_deref().unwrap_or("-"),
                opt(d.age_seconds),
                opt(d.max_age_seconds),
                flag(d.rto_met),
                flag(d.rpo_met),
                yes(d.ok)
            );
        }
    }
    if p.problems.is_empty() {
        out.push_str("\nall within policy\n");
    } else {
        let _ = writeln!(out, "\n{} out of policy:", p.problems.len());
        for problem in &p.problems {
            let _ = writeln!(out, "  - {problem}");
        }
    }
    out
}

pub fn json(p: &Posture) -> String {
    serde_json::to_string_pretty(p)
        .map_or_else(|e| format!("{{\"error\": \"{e}\"}}\n"), |s| s + "\n")
}

/// One metric family: its samples are written together under one HELP and TYPE, as the
/// format requires.
struct Family {
    name: &'static str,
    help: &'static str,
    samples: Vec<(Vec<(&'static str, String)>, f64)>,
}

impl Family {
    fn new(name: &'static str, help: &'static str) -> Self {
        Family {
            name,
            help,
            samples: Vec::new(),
        }
    }

    fn add(&mut self, labels: Vec<(&'static str, String)>, value: Option<f64>) {
        if let Some(v) = value {
            self.samples.push((labels, v));
        }
    }
}

/// Gauges named `dr_<thing>_<what>[_unit]`, seconds as the unit of time, 0/1 for booleans,
/// the resource address as the identifying label.
pub fn prometheus(p: &Posture) -> String {
    let b = |v: bool| if v { 1.0 } else { 0.0 };
    let mut vault_up = Family::new(
        "dr_vault_up",
        "Whether the vault could be opened and listed (1) or not (0).",
    );
    let mut vault_snapshots = Family::new("dr_vault_snapshots", "Snapshots held by the vault.");
    let mut vault_latest = Family::new(
        "dr_vault_latest_snapshot_timestamp_seconds",
        "Unix time of the vault's newest snapshot.",
    );
    let mut vault_age = Family::new(
        "dr_vault_latest_snapshot_age_seconds",
        "Age of the vault's newest snapshot.",
    );
    for v in &p.vaults {
        let labels = vec![
            ("address", v.address.clone()),
            ("vault", v.name.clone()),
            ("region", v.region.clone()),
        ];
        vault_up.add(labels.clone(), Some(b(v.reachable)));
        if v.reachable {
            vault_snapshots.add(labels.clone(), Some(v.snapshots as f64));
        }
        vault_latest.add(
            labels.clone(),
            v.latest_snapshot_at.as_deref().and_then(unix),
        );
        vault_age.add(labels, v.latest_snapshot_age_seconds.map(|s| s as f64));
    }

    let mut lag = Family::new(
        "dr_region_pair_replication_lag_seconds",
        "Age of the oldest active-side snapshot missing on the standby; 0 when in sync.",
    );
    let mut rpo = Family::new(
        "dr_region_pair_rpo_seconds",
        "The pair's recovery point objective.",
    );
    let mut rto = Family::new(
        "dr_region_pair_rto_seconds",
        "The pair's recovery time objective.",
    );
    let mut in_sync = Family::new(
        "dr_region_pair_in_sync",
        "Whether the standby holds every snapshot of the active side.",
    );
    let mut secondary_active = Family::new(
        "dr_region_pair_secondary_active",
        "Whether the pair runs on its secondary vault (failed over).",
    );
    for r in &p.pairs {
        let labels = vec![("address", r.address.clone()), ("pair", r.name.clone())];
        lag.add(labels.clone(), r.replication_lag_seconds.map(|s| s as f64));
        rpo.add(labels.clone(), r.rpo_seconds.map(|s| s as f64));
        rto.add(labels.clone(), r.rto_seconds.map(|s| s as f64));
        in_sync.add(labels.clone(), r.in_sync.map(b));
        secondary_active.add(labels, Some(b(r.active == "secondary")));
    }

    let mut passed = Family::new("dr_drill_passed", "Whether the drill's last run passed.");
    let mut last_run = Family::new(
        "dr_drill_last_run_timestamp_seconds",
        "Unix time the drill's last run finished.",
    );
    let mut drill_age = Family::new(
        "dr_drill_age_seconds",
        "Time since the drill's last run finished.",
    );
    let mut max_age = Family::new("dr_drill_max_age_seconds", "The drill's max_age.");
    let mut restore = Family::new(
        "dr_drill_restore_seconds",
        "How long the last run's restore took (the achieved RTO).",
    );
    let mut data_age = Family::new(
        "dr_drill_data_age_seconds",
        "How old the restored data was (the achieved RPO).",
    );
    let mut rto_met = Family::new("dr_drill_rto_met", "Whether the last run met its RTO.");
    let mut rpo_met = Family::new("dr_drill_rpo_met", "Whether the last run met its RPO.");
    for d in &p.drills {
        let labels = vec![("address", d.address.clone()), ("drill", d.name.clone())];
        passed.add(
            labels.clone(),
            Some(b(d.status.as_deref() == Some("passed"))),
        );
        last_run.add(labels.clone(), d.finished_at.as_deref().and_then(unix));
        drill_age.add(labels.clone(), d.age_seconds.map(|s| s as f64));
        max_age.add(labels.clone(), d.max_age_seconds.map(|s| s as f64));
        restore.add(labels.clone(), d.restore_seconds);
        data_age.add(labels.clone(), d.data_age_seconds.map(|s| s as f64));
        rto_met.add(labels.clone(), d.rto_met.map(b));
        rpo_met.add(labels, d.rpo_met.map(b));
    }

    let mut in_policy = Family::new(
        "dr_resource_in_policy",
        "Whether the resource is within its DR policy (drctl status exits 1 when any is 0).",
    );
    let rows = p
        .vaults
        .iter()
        .map(|v| (&v.address, v.ok))
        .chain(p.pairs.iter().map(|r| (&r.address, r.ok)))
        .chain(p.drills.iter().map(|d| (&d.address, d.ok)));
    for (address, ok) in rows {
        in_policy.add(vec![("address", address.clone())], Some(b(ok)));
    }
    let mut problems = Family::new(
        "dr_status_problems",
        "Out-of-policy findings of this check.",
    );
    problems.add(Vec::new(), Some(p.problems.len() as f64));

    let families = [
        vault_up,
        vault_snapshots,
        vault_latest,
        vault_age,
        lag,
        rpo,
        rto,
        in_sync,
        secondary_active,
        passed,
        last_run,
        drill_age,
        max_age,
        restore,
        data_age,
        rto_met,
        rpo_met,
        in_policy,
        problems,
    ];
    let mut out = String::new();
    for f in families.iter().filter(|f| !f.samples.is_empty()) {
        let _ = writeln!(out, "# HELP {} {}", f.name, f.help);
        let _ = writeln!(out, "# TYPE {} gauge", f.name);
        for (labels, value) in &f.samples {
            out.push_str(f.name);
            if !labels.is_empty() {
                let rendered: Vec<String> = labels
                    .iter()
                    .map(|(k, v)| format!("{k}=\"{}\"", escape_label(v)))
                    .collect();
                let _ = write!(out, "{{{}}}", rendered.join(","));
            }
            let _ = writeln!(out, " {value}");
        }
    }
    out
}

/// Label values escape backslash, double quote and newline; nothing else.
fn escape_label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn unix(rfc3339: &str) -> Option<f64> {
    time::OffsetDateTime::parse(rfc3339, &time::format_description::well_known::Rfc3339)
        .ok()
        .map(|t| t.unix_timestamp() as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape_label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }

    #[test]
    fn families_are_grouped_and_empty_ones_left_out() {
        let p = Posture {
            checked_at: "2026-11-27T00:00:00Z".into(),
            vaults: vec![],
            pairs: vec![],
            drills: vec![],
            problems: vec!["x".into()],
        };
        assert_eq!(
            prometheus(&p),
            "# HELP dr_status_problems Out-of-policy findings of this check.\n# TYPE dr_status_problems gauge\ndr_status_problems 1\n"
        );
    }
}
