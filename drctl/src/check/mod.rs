//! `drctl check PLAN.json`: policy checks over `terraform show -json PLANFILE`, for CI.
//! The plan is read with serde_json as Terraform documents it; each rule looks at the planned
//! values of the dr resources, and skips what is unknown until apply (`after_unknown`), so a
//! plan that creates everything at once raises no false alarms.

mod plan;
mod report;
mod rules;

use crate::cli::{CheckArgs, CheckFormat};
use crate::output;

/// Plans larger than this are refused rather than read into memory.
const MAX_PLAN_BYTES: u64 = 512 << 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
}

/// One broken rule, on one resource attribute.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Violation {
    pub rule: &'static str,
    pub severity: Severity,
    pub address: String,
    pub attribute: String,
    pub message: String,
}

pub fn run(args: CheckArgs) -> u8 {
    let plan = match plan::Plan::load(&args.plan, MAX_PLAN_BYTES) {
        Ok(p) => p,
        Err(message) => {
            return output::usage(
                &message,
                "pass the JSON of a saved plan: terraform plan -out plan.tfplan && terraform show -json plan.tfplan > plan.json",
            )
        }
    };
    for id in &args.disable {
        if !rules::RULES.iter().any(|r| r.id == id.as_str()) {
            let known: Vec<&str> = rules::RULES.iter().map(|r| r.id).collect();
            return output::usage(
                &format!("--disable {id}: no such rule"),
                &format!("rules are {}", known.join(", ")),
            );
        }
    }
    let violations: Vec<Violation> = rules::check(&plan)
        .into_iter()
        .filter(|v| !args.disable.iter().any(|d| d == v.rule))
        .collect();
    let text = match args.format {
        CheckFormat::Text => report::text(&violations, &plan),
        CheckFormat::Json => report::json(&violations),
        CheckFormat::Junit => report::junit(&violations, &args.disable),
        CheckFormat::Sarif => report::sarif(&violations),
        CheckFormat::Github => report::github(&violations),
    };
    print!("{text}");
    if violations.iter().any(|v| v.severity == Severity::Error) {
        output::EXIT_FAILURE
    } else {
        output::EXIT_OK
    }
}
