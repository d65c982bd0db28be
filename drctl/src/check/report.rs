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
            v.rule,
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

pub fn json(violations: &[Violation]) -> String {
    let errors = violations
        .iter()
        .filter(|v| v.severity == Severity::Error)
        .count();
    let doc = serde_json::json!({
        "violations": violations,
        "errors": errors,
        "warnings": violations.len() - errors,
    });
    format!(
        "{}\n",
        serde_json::to_string_pretty(&doc).unwrap_or_default()
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
        let found: Vec<&Violation> = violations.iter().filter(|v| v.rule == rule.id).collect();
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
                v.rule,
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

pub fn sarif(violations: &[Violation]) -> String {
    let rules: Vec<_> = RULES
        .iter()
        .map(|r| {
            serde_json::json!({
                "id": r.id,
                "shortDescription": {"text": r.summary},
                "defaultConfiguration": {"level": severity_word(r.severity)},
            })
        })
        .collect();
    let results: Vec<_> = violations
        .iter()
        .map(|v| {
            serde_json::json!({
                "ruleId": v.rule,
                "ruleIndex": RULES.iter().position(|r| r.id == v.rule).unwrap_or(0),
                "level": severity_word(v.severity),
                "message": {"text": format!("{}.{}: {}", v.address, v.attribute, v.message)},
                "locations": [{
                    "logicalLocations": [{
                        "fullyQualifiedName": format!("{}.{}", v.address, v.attribute),
                        "kind": "resource",
                    }]
                }],
            })
        })
        .collect();
    let doc = serde_json::json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {
                "name": "drctl check",
                "version": env!("CARGO_PKG_VERSION"),
                "informationUri": "https://registry.terraform.io/providers/dr-project/dr",
                "rules": rules,
            }},
            "results": results,
        }],
    });
    format!(
        "{}\n",
        serde_json::to_string_pretty(&doc).unwrap_or_default()
    )
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
                property(&format!("{} {}.{}", v.rule, v.address, v.attribute)),
                escape(&v.message)
            )
        })
        .collect()
}
