//! The output formats: text for people, JSON for scripts, JUnit XML and SARIF for CI
//! systems, and GitHub workflow commands (annotations on the run).

use super::plan::Plan;
use super::rules::RULES;
use super::{Severity, Violation};

fn severity_word(s: Severity) -> &'static str {
    match s {
        Severity::Error => "error",
        Severity::Warning => "warning",
    }
}

pub fn text(violations: &[Violation], plan: &Plan) -> String {
    let mut out = String::new();
    for v in violations {
        out.push_str(&format!(
            "{} {} {}.{}: {}\n",
            severity_word(v.severity),
            v.rule.id,
            v.address,
            v.attribute,
            v.message
        ));
    }
    let errors = violations
        .iter()
        .filter(|v| v.severity == Severity::Error)
        .count();
    out.push_str(&format!(
        "{} dr resource(s) checked: {errors} error(s), {} warning(s)\n",
        plan.changes.len(),
        violations.len() - errors
    ));
    out
}

/// The `--format json` document.
#[derive(serde::Serialize)]
struct JsonReport<'a> {
    violations: &'a [Violation],
    errors: usize,
    warnings: usize,
}

pub fn json(violations: &[Violation]) -> String {
    let errors = violations
        .iter()
        .filter(|v| v.severity == Severity::Error)
        .count();
    pretty(&JsonReport {
        violations,
        errors,
        warnings: violations.len() - errors,
    })
}

/// Pretty JSON and a newline; the documents here are plain data, which always renders.
fn pretty<T: serde::Serialize>(doc: &T) -> String {
    format!(
        "{}\n",
        serde_json::to_string_pretty(doc).unwrap_or_default()
    )
}

/// XML text and attribute escaping; the five characters XML reserves, and control characters
/// XML 1.0 cannot hold. (Too small a need for an XML writer dependency.)
fn xml(text: &str) -> String {
    text.chars()
        .filter(|c| !c.is_control() || matches!(c, '\n' | '\t'))
        .map(|c| match c {
            '&' => "&amp;".to_string(),
            '<' => "&lt;".to_string(),
            '>' => "&gt;".to_string(),
            '"' => "&quot;".to_string(),
            '\'' => "&apos;".to_string(),
            c => c.to_string(),
        })
        .collect()
}

/// One test case per rule (passing when it found nothing), failing once per violation.
pub fn junit(violations: &[Violation], disabled: &[String]) -> String {
    let mut cases = String::new();
    let mut count = 0;
    for rule in RULES.iter().filter(|r| !disabled.iter().any(|d| d == r.id)) {
        let found: Vec<&Violation> = violations.iter().filter(|v| v.rule.id == rule.id).collect();
        if found.is_empty() {
            count += 1;
            cases.push_str(&format!(
                "    <testcase classname=\"drctl.check\" name=\"{} {}\"/>\n",
                rule.id,
                xml(rule.summary)
            ));
        }
        for v in found {
            count += 1;
            cases.push_str(&format!(
                "    <testcase classname=\"drctl.check.{}\" name=\"{}.{}\">\n      <failure type=\"{}\" message=\"{}\">{}</failure>\n    </testcase>\n",
                v.rule.id,
                xml(&v.address),
                xml(&v.attribute),
                severity_word(v.severity),
                xml(&v.message),
                xml(rule.summary)
            ));
        }
    }
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites>\n  <testsuite name=\"drctl check\" tests=\"{count}\" failures=\"{}\" errors=\"0\">\n{cases}  </testsuite>\n</testsuites>\n",
        violations.len()
    )
}

/// SARIF 2.1.0, the subset code-scanning services read: one run, the rules, the results.
pub fn sarif(violations: &[Violation]) -> String {
    let rules = RULES
        .iter()
        .map(|r| sarif::Rule {
            id: r.id,
            short_description: sarif::Text {
                text: r.summary.to_string(),
            },
            default_configuration: sarif::Configuration {
                level: severity_word(r.severity),
            },
        })
        .collect();
    let results = violations
        .iter()
        .map(|v| {
            let name = format!("{}.{}", v.address, v.attribute);
            sarif::Result {
                rule_id: v.rule.id,
                rule_index: RULES.iter().position(|r| r.id == v.rule.id),
                level: severity_word(v.severity),
                message: sarif::Text {
                    text: format!("{name}: {}", v.message),
                },
                locations: vec![sarif::Location {
                    logical_locations: vec![sarif::LogicalLocation {
                        fully_qualified_name: name,
                        kind: "resource",
                    }],
                }],
            }
        })
        .collect();
    pretty(&sarif::Log {
        schema: "https://json.schemastore.org/sarif-2.1.0.json",
        version: "2.1.0",
        runs: vec![sarif::Run {
            tool: sarif::Tool {
                driver: sarif::Driver {
                    name: "drctl check",
                    version: env!("CARGO_PKG_VERSION"),
                    information_uri: "https://registry.terraform.io/providers/dr-project/dr",
                    rules,
                },
            },
            results,
        }],
    })
}

/// The SARIF objects `sarif` writes, named as the standard names them.
mod sarif {
    use serde::Serialize;

    #[derive(Serialize)]
    pub struct Log {
        #[serde(rename = "$schema")]
        pub schema: &'static str,
        pub version: &'static str,
        pub runs: Vec<Run>,
    }

    #[derive(Serialize)]
    pub struct Run {
        pub tool: Tool,
        pub results: Vec<Result>,
    }

    #[derive(Serialize)]
    pub struct Tool {
        pub driver: Driver,
    }

    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    pub struct Driver {
        pub name: &'static str,
        pub version: &'static str,
        pub information_uri: &'static str,
        pub rules: Vec<Rule>,
    }

    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    pub struct Rule {
        pub id: &'static str,
        pub short_description: Text,
        pub default_configuration: Configuration,
    }

    #[derive(Serialize)]
    pub struct Configuration {
        pub level: &'static str,
    }

    #[derive(Serialize)]
    pub struct Text {
        pub text: String,
    }

    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    pub struct Result {
        pub rule_id: &'static str,
        pub rule_index: Option<usize>,
        pub level: &'static str,
        pub message: Text,
        pub locations: Vec<Location>,
    }

    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    pub struct Location {
        pub logical_locations: Vec<LogicalLocation>,
    }

    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    pub struct LogicalLocation {
        pub fully_qualified_name: String,
        pub kind: &'static str,
    }
}

/// GitHub Actions workflow commands; data is escaped as the runner expects.
pub fn github(violations: &[Violation]) -> String {
    let escape = |s: &str| {
        s.replace('%', "%25")
            .replace('\r', "%0D")
            .replace('\n', "%0A")
    };
    let property = |s: &str| escape(s).replace(':', "%3A").replace(',', "%2C");
    violations
        .iter()
        .map(|v| {
            format!(
                "::{} title={}::{}\n",
                severity_word(v.severity),
                property(&format!("{} {}.{}", v.rule.id, v.address, v.attribute)),
                escape(&v.message)
            )
        })
        .collect()
}
