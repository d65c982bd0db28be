//! The three renderings of the posture: a table for people, JSON for scripts, and the
//! Prometheus text exposition format (0.0.4) for a node-exporter textfile or a pushgateway.

use super::{human, DrillStatus, PairStatus, Posture, VaultStatus};
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
    let families = vault_families(&p.vaults)
        .into_iter()
        .chain(pair_families(&p.pairs))
        .chain(drill_families(&p.drills))
        .chain(policy_families(p));
    let mut out = String::new();
    for f in families.filter(|f| !f.samples.is_empty()) {
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

fn gauge_of(v: bool) -> f64 {
    if v {
        1.0
    } else {
        0.0
    }
}

fn vault_families(vaults: &[VaultStatus]) -> Vec<Family> {
    let mut up = Family::new(
        "dr_vault_up",
        "Whether the vault could be opened and listed (1) or not (0).",
    );
    let mut snapshots = Family::new("dr_vault_snapshots", "Snapshots held by the vault.");
    let mut latest = Family::new(
        "dr_vault_latest_snapshot_timestamp_seconds",
        "Unix time of the vault's newest snapshot.",
    );
    let mut age = Family::new(
        "dr_vault_latest_snapshot_age_seconds",
        "Age of the vault's newest snapshot.",
    );
    for v in vaults {
        let labels = vec![
            ("address", v.address.clone()),
            ("vault", v.name.clone()),
            ("region", v.region.clone()),
        ];
        up.add(labels.clone(), Some(gauge_of(v.reachable)));
        if v.reachable {
            snapshots.add(labels.clone(), Some(v.snapshots as f64));
        }
        latest.add(
            labels.clone(),
            v.latest_snapshot_at.as_deref().and_then(unix),
        );
        age.add(labels, v.latest_snapshot_age_seconds.map(|s| s as f64));
    }
    vec![up, snapshots, latest, age]
}

fn pair_families(pairs: &[PairStatus]) -> Vec<Family> {
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
    for r in pairs {
        let labels = vec![("address", r.address.clone()), ("pair", r.name.clone())];
        lag.add(labels.clone(), r.replication_lag_seconds.map(|s| s as f64));
        rpo.add(labels.clone(), r.rpo_seconds.map(|s| s as f64));
        rto.add(labels.clone(), r.rto_seconds.map(|s| s as f64));
        in_sync.add(labels.clone(), r.in_sync.map(gauge_of));
        secondary_active.add(labels, Some(gauge_of(r.active == "secondary")));
    }
    vec![lag, rpo, rto, in_sync, secondary_active]
}

fn drill_families(drills: &[DrillStatus]) -> Vec<Family> {
    let mut passed = Family::new("dr_drill_passed", "Whether the drill's last run passed.");
    let mut last_run = Family::new(
        "dr_drill_last_run_timestamp_seconds",
        "Unix time the drill's last run finished.",
    );
    let mut age = Family::new(
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
    for d in drills {
        let labels = vec![("address", d.address.clone()), ("drill", d.name.clone())];
        passed.add(
            labels.clone(),
            Some(gauge_of(d.status.as_deref() == Some("passed"))),
        );
        last_run.add(labels.clone(), d.finished_at.as_deref().and_then(unix));
        age.add(labels.clone(), d.age_seconds.map(|s| s as f64));
        max_age.add(labels.clone(), d.max_age_seconds.map(|s| s as f64));
        restore.add(labels.clone(), d.restore_seconds);
        data_age.add(labels.clone(), d.data_age_seconds.map(|s| s as f64));
        rto_met.add(labels.clone(), d.rto_met.map(gauge_of));
        rpo_met.add(labels, d.rpo_met.map(gauge_of));
    }
    vec![
        passed, last_run, age, max_age, restore, data_age, rto_met, rpo_met,
    ]
}

/// Across kinds: each resource within policy or not, and the count of findings.
fn policy_families(p: &Posture) -> Vec<Family> {
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
        in_policy.add(vec![("address", address.clone())], Some(gauge_of(ok)));
    }
    let mut problems = Family::new(
        "dr_status_problems",
        "Out-of-policy findings of this check.",
    );
    problems.add(Vec::new(), Some(p.problems.len() as f64));
    // When this check ran: a textfile collector re-exports the last file for ever, so only
    // this tells an alert that the job writing it stopped.
    let mut checked = Family::new(
        "dr_status_timestamp_seconds",
        "Unix time this drctl status check ran.",
    );
    checked.add(
        Vec::new(),
        dr_vault::clock::parse(&p.checked_at).map(|t| t.unix_timestamp() as f64),
    );
    vec![in_policy, problems, checked]
}

/// Label values escape backslash, double quote and newline; nothing else.
fn escape_label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn unix(rfc3339: &str) -> Option<f64> {
    dr_vault::clock::parse(rfc3339).map(|t| t.unix_timestamp() as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape_label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }

    /// One of each kind, one out of policy: what `status` prints in each format.
    fn posture() -> Posture {
        Posture {
            checked_at: "2026-12-02T09:00:00Z".into(),
            vaults: vec![VaultStatus {
                address: "dr_backup_vault.secondary".into(),
                name: "pipelines-us".into(),
                region: "us-east-1".into(),
                url: "s3://dr-us/pipelines?region=us-east-1".into(),
                reachable: true,
                snapshots: 12,
                latest_snapshot_id: Some("3fa2c0de".repeat(8)),
                latest_snapshot_at: Some("2026-12-02T08:45:00Z".into()),
                latest_snapshot_age_seconds: Some(900),
                ok: true,
            }],
            pairs: vec![PairStatus {
                address: "dr_region_pair.pipelines".into(),
                name: "pipelines".into(),
                active: "primary".into(),
                active_vault: "s3://dr-eu/pipelines?region=eu-west-1".into(),
                standby_vault: "s3://dr-us/pipelines?region=us-east-1".into(),
                rpo_seconds: Some(3600),
                rto_seconds: Some(1800),
                replication_lag_seconds: Some(7200),
                in_sync: Some(false),
                ok: false,
            }],
            drills: vec![DrillStatus {
                address: "dr_drill.restore_pipeline".into(),
                name: "restore-pipeline".into(),
                vault: "s3://dr-us/pipelines?region=us-east-1".into(),
                status: Some("passed".into()),
                finished_at: Some("2026-12-02T06:00:00Z".into()),
                age_seconds: Some(10800),
                max_age_seconds: Some(86400),
                restore_seconds: Some(4.25),
                data_age_seconds: Some(600),
                rto_met: Some(true),
                rpo_met: Some(true),
                from: "vault".into(),
                ok: true,
            }],
            problems: vec!["dr_region_pair.pipelines: the standby lags 2h behind, more than the rpo of 1h (3 snapshots to replicate)".into()],
        }
    }

    #[test]
    fn every_format_of_a_posture() {
        let p = posture();
        insta::assert_snapshot!("status-table", table(&p));
        insta::assert_snapshot!("status-prometheus", prometheus(&p));
        insta::assert_snapshot!("status-json", serde_json::to_string_pretty(&p).unwrap());
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
            "# HELP dr_status_problems Out-of-policy findings of this check.\n# TYPE dr_status_problems gauge\ndr_status_problems 1\n\
             # HELP dr_status_timestamp_seconds Unix time this drctl status check ran.\n# TYPE dr_status_timestamp_seconds gauge\ndr_status_timestamp_seconds 1795737600\n"
        );
    }
}
