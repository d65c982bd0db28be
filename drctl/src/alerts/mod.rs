//! `drctl alerts`: Prometheus alerting rules for the metrics `drctl status --format
//! prometheus` exports. The rules are a fixed document (`rules.yml`, next to this file), kept
//! as YAML rather than built in code so that what is reviewed is what Prometheus loads;
//! `drctl/tests/alerts.rs` checks them with `promtool` against sample series.

use crate::cli::AlertsArgs;
use crate::output::{self, CliError, Outcome};

/// The rules, as printed.
pub const RULES: &str = include_str!("rules.yml");

pub fn run(args: AlertsArgs) -> Outcome {
    let Some(file) = &args.out else {
        print!("{RULES}");
        return Ok(output::EXIT_OK);
    };
    if file.exists() && !args.force {
        return Err(CliError::usage(
            format!("{} exists", file.display()),
            "choose another --out, or pass --force to replace it",
        ));
    }
    // Written beside, then renamed: a Prometheus reloading meanwhile never reads half a file.
    let staged = file.with_extension("yml.drctl-tmp");
    std::fs::write(&staged, RULES)
        .and_then(|()| std::fs::rename(&staged, file))
        .map_err(|e| {
            let _ = std::fs::remove_file(&staged);
            CliError::usage(
                format!("cannot write {}: {e}", file.display()),
                "check --out",
            )
        })?;
    eprintln!(
        "wrote {}: add it to rule_files in prometheus.yml, then check it with `promtool check rules {}`",
        file.display(),
        file.display()
    );
    Ok(output::EXIT_OK)
}

#[cfg(test)]
mod tests {
    use super::RULES;

    /// Every metric an alert reads is one `drctl status` exports (its help lists them), and
    /// the help of `drctl alerts` lists every alert.
    #[test]
    fn the_rules_read_only_metrics_status_exports() {
        let exported = crate::cli::STATUS_HELP;
        let mut read = Vec::new();
        for line in RULES.lines() {
            let Some(expr) = line.trim().strip_prefix("expr:") else {
                continue;
            };
            for word in expr.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) {
                if word.starts_with("dr_") {
                    read.push(word.to_string());
                }
            }
        }
        assert!(read.len() >= 8, "{read:?}");
        for alert in RULES
            .lines()
            .filter_map(|l| l.trim().strip_prefix("- alert: "))
        {
            assert!(
                crate::cli::ALERTS_HELP.contains(alert),
                "`drctl alerts --help` does not list {alert}"
            );
        }
        for metric in read {
            assert!(
                exported.contains(&metric),
                "{metric} is not exported by drctl status"
            );
        }
    }
}
