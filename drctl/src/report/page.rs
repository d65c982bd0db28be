//! The report as one self-contained HTML page: inline CSS and inline SVG, no script, no
//! font or image fetched from anywhere, so it opens from a CI artifact or a mail attachment
//! as it does on the machine that made it. Every text from a state or a vault is escaped.

use super::history::{DrillHistory, History, PairHistory, VaultHistory};
use super::plot::{self, Chart, Line, Unit};
use crate::status::Posture;
use std::fmt::Write as _;

/// Marks a page this command wrote (so `--out` may replace it without `--force`).
pub const GENERATOR: &str = r#"<meta name="generator" content="drctl report">"#;

/// How many of a drill's newest runs the table lists (the plots show them all).
const RUNS_LISTED: usize = 10;

const STYLE: &str = "
body { font-family: sans-serif; margin: 2em auto; max-width: 820px; color: #222; }
h1 { font-size: 1.6em; } h2 { margin-top: 2em; border-bottom: 1px solid #ccc; }
.ok { color: #2c7a2c; } .bad { color: #b22222; }
table { border-collapse: collapse; font-size: 0.9em; } td, th { padding: 2px 8px; text-align: left; }
th { border-bottom: 1px solid #999; } figure { margin: 1em 0; }
figcaption { font-size: 0.85em; color: #444; }
.swatch { display: inline-block; width: 14px; height: 3px; vertical-align: middle; margin: 0 4px 0 12px; }
";

pub fn render(posture: &Posture, history: &History, source: &str) -> Result<String, String> {
    let mut page = String::new();
    let _ = write!(
        page,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n{GENERATOR}\n\
         <title>DR posture report</title>\n<style>{STYLE}</style>\n</head>\n<body>\n\
         <h1>DR posture report</h1>\n<p>Made {} from {}.</p>\n",
        escape(&posture.checked_at),
        escape(source)
    );
    if posture.problems.is_empty() {
        page.push_str("<p class=\"ok\" id=\"verdict\">Everything is within policy.</p>\n");
    } else {
        let _ = write!(
            page,
            "<p class=\"bad\" id=\"verdict\">{} finding(s) out of policy now:</p>\n<ul>\n",
            posture.problems.len()
        );
        for p in &posture.problems {
            let _ = writeln!(page, "<li>{}</li>", escape(p));
        }
        page.push_str("</ul>\n");
    }
    page.push_str("<h2>Region pairs: replication lag against the RPO</h2>\n");
    if history.pairs.is_empty() {
        page.push_str("<p>No region pair in this state.</p>\n");
    }
    for pair in &history.pairs {
        pair_section(&mut page, pair, posture)?;
    }
    page.push_str("<h2>Drills: restore time against the RTO, data age against the RPO</h2>\n");
    if history.drills.is_empty() {
        page.push_str("<p>No drill in this state.</p>\n");
    }
    for drill in &history.drills {
        drill_section(&mut page, drill)?;
    }
    page.push_str("<h2>Vaults: snapshots, logical and stored bytes</h2>\n");
    for vault in &history.vaults {
        vault_section(&mut page, vault, posture)?;
    }
    page.push_str("</body>\n</html>\n");
    Ok(page)
}

fn pair_section(page: &mut String, pair: &PairHistory, posture: &Posture) -> Result<(), String> {
    let _ = write!(
        page,
        "<h3>{} <small>({})</small></h3>\n<p>RPO {}",
        escape(&pair.name),
        escape(&pair.address),
        pair.rpo_seconds
            .map_or("not set".into(), |s| plot::seconds(s as f64))
    );
    if let Some(now) = posture.pairs.iter().find(|p| p.address == pair.address) {
        if let Some(lag) = now.replication_lag_seconds {
            let _ = write!(
                page,
                "; lag now <span class=\"{}\">{}</span>",
                if now.ok { "ok" } else { "bad" },
                plot::seconds(lag as f64)
            );
        }
    }
    let _ = write!(page, "; {} replication(s) recorded", pair.runs.len());
    if let Some(last) = pair.runs.last() {
        let _ = write!(page, ", the last {}", last.direction);
    }
    page.push_str(".</p>\n");
    for missing in &pair.missing {
        let _ = writeln!(page, "<p class=\"bad\">Not read: {}</p>", escape(missing));
    }
    if pair.runs.is_empty() {
        page.push_str("<p>No replication recorded yet: the plot starts with the next one.</p>\n");
        return Ok(());
    }
    let rpo = pair.rpo_seconds.map(|s| s as f64);
    figure(
        page,
        "pair-lag",
        &Chart {
            y_label: "lag when replication ran".into(),
            unit: Unit::Seconds,
            lines: vec![Line {
                name: "replication lag".into(),
                color: plot::BLUE_LINE,
                points: pair
                    .runs
                    .iter()
                    .map(|r| {
                        let lag = r.lag_seconds as f64;
                        (r.at, lag, rpo.is_none_or(|rpo| lag <= rpo))
                    })
                    .collect(),
            }],
            target: rpo.map(|rpo| ("RPO".to_string(), rpo)),
        },
    )
}

fn drill_section(page: &mut String, drill: &DrillHistory) -> Result<(), String> {
    let passed = drill.runs.iter().filter(|r| r.passed).count();
    let _ = writeln!(
        page,
        "<h3>{} <small>({})</small></h3>\n<p>{} run(s) recorded, {} passed, {} failed.</p>",
        escape(&drill.name),
        escape(&drill.address),
        drill.runs.len(),
        passed,
        drill.runs.len() - passed
    );
    if let Some(missing) = &drill.missing {
        let _ = writeln!(page, "<p class=\"bad\">Not read: {}</p>", escape(missing));
    }
    if drill.runs.is_empty() {
        page.push_str("<p>No run recorded yet.</p>\n");
        return Ok(());
    }
    let line = |name: &str, value: &dyn Fn(&super::history::DrillRun) -> f64| Line {
        name: name.into(),
        color: plot::BLUE_LINE,
        points: drill
            .runs
            .iter()
            .map(|r| (r.finished_at, value(r), r.passed))
            .collect(),
    };
    figure(
        page,
        "drill-restore",
        &Chart {
            y_label: "restore".into(),
            unit: Unit::Seconds,
            lines: vec![line("restore time (achieved RTO)", &|r| r.restore_seconds)],
            target: drill.rto_seconds.map(|s| ("RTO".to_string(), s as f64)),
        },
    )?;
    figure(
        page,
        "drill-data-age",
        &Chart {
            y_label: "data age".into(),
            unit: Unit::Seconds,
            lines: vec![line("restored data age (achieved RPO)", &|r| {
                r.data_age_seconds as f64
            })],
            target: drill.rpo_seconds.map(|s| ("RPO".to_string(), s as f64)),
        },
    )?;
    page.push_str(
        "<table>\n<tr><th>finished</th><th>snapshot</th><th>restore</th><th>data age</th><th>verdict</th></tr>\n",
    );
    for run in drill.runs.iter().rev().take(RUNS_LISTED) {
        let verdict = if run.passed {
            "<span class=\"ok\">passed</span>".to_string()
        } else {
            format!(
                "<span class=\"bad\">failed</span>: {}",
                escape(&run.failures.join("; "))
            )
        };
        let _ = writeln!(
            page,
            "<tr><td>{}</td><td><code>{}</code></td><td>{}</td><td>{}</td><td>{verdict}</td></tr>",
            escape(&run.finished),
            escape(&run.snapshot_id.chars().take(12).collect::<String>()),
            plot::seconds(run.restore_seconds),
            plot::seconds(run.data_age_seconds as f64),
        );
    }
    page.push_str("</table>\n");
    Ok(())
}

fn vault_section(page: &mut String, vault: &VaultHistory, posture: &Posture) -> Result<(), String> {
    let _ = write!(
        page,
        "<h3>{} <small>({}, {})</small></h3>\n<p>{} snapshot(s)",
        escape(&vault.name),
        escape(&vault.address),
        escape(&vault.region),
        vault.snapshots.len()
    );
    if let Some(age) = posture
        .vaults
        .iter()
        .find(|v| v.address == vault.address)
        .and_then(|v| v.latest_snapshot_age_seconds)
    {
        let _ = write!(page, "; the newest is {} old", plot::seconds(age as f64));
    }
    let logical: u64 = vault.snapshots.iter().map(|s| s.bytes).sum();
    let stored: u64 = vault.snapshots.iter().filter_map(|s| s.stored_bytes).sum();
    if stored > 0 {
        let _ = write!(
            page,
            "; {} stored for {} of snapshots",
            plot::bytes(stored as f64),
            plot::bytes(logical as f64)
        );
    }
    page.push_str(".</p>\n");
    if let Some(missing) = &vault.missing {
        let _ = writeln!(page, "<p class=\"bad\">Not read: {}</p>", escape(missing));
    }
    if vault.snapshots.is_empty() {
        return Ok(());
    }
    let mut lines = vec![Line {
        name: "logical bytes of each snapshot".into(),
        color: plot::BLUE_LINE,
        points: vault
            .snapshots
            .iter()
            .map(|s| (s.at, s.bytes as f64, true))
            .collect(),
    }];
    let stored: Vec<_> = vault
        .snapshots
        .iter()
        .filter_map(|s| Some((s.at, s.stored_bytes? as f64, true)))
        .collect();
    if !stored.is_empty() {
        lines.push(Line {
            name: "bytes each snapshot added to storage (after dedup and compression)".into(),
            color: plot::ORANGE_LINE,
            points: stored,
        });
    }
    figure(
        page,
        "vault-bytes",
        &Chart {
            y_label: "size".into(),
            unit: Unit::Bytes,
            lines,
            target: None,
        },
    )
}

/// A chart with its legend, marked with what the browser test checks.
fn figure(page: &mut String, kind: &str, chart: &Chart) -> Result<(), String> {
    let svg = chart.svg()?;
    let _ = write!(
        page,
        "<figure class=\"plot\" data-plot=\"{kind}\" data-series=\"{}\">\n{svg}\n<figcaption>",
        chart.series()
    );
    for line in &chart.lines {
        let c = line.color;
        let _ = write!(
            page,
            "<span class=\"swatch\" style=\"background:rgb({},{},{})\"></span>{}",
            c.0,
            c.1,
            c.2,
            escape(&line.name)
        );
    }
    if let Some((name, value)) = &chart.target {
        let c = plot::TARGET;
        let _ = write!(
            page,
            "<span class=\"swatch\" style=\"background:rgb({},{},{})\"></span>{} ({})",
            c.0,
            c.1,
            c.2,
            escape(name),
            chart.unit.format(*value)
        );
    }
    if chart.target.is_some() {
        page.push_str(
            " &middot; dots: <span class=\"ok\">&#9679;</span> within target, <span class=\"bad\">&#9679;</span> not",
        );
    }
    page.push_str("</figcaption>\n</figure>\n");
    Ok(())
}

/// Text for HTML content and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}
