//! `drctl check PLAN.json`: policy checks over `terraform show -json PLANFILE`, for CI.
//! The plan is read with serde_json as Terraform documents it; each rule looks at the planned
//! values of the dr resources, and skips what is unknown until apply (`after_unknown`), so a
//! plan that creates everything at once raises no false alarms.

pub(crate) mod plan;
pub(crate) mod report;
pub(crate) mod rules;

use crate::cli::{CheckArgs, CheckFormat};
use crate::output::{self, CliError, Outcome};
pub(crate) use plan::Plan;
pub use rules::table as rule_table;

/// Plans larger than this are refused rather than read into memory.
const MAX_PLAN_BYTES: u64 = 512 << 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
}

/// One broken rule, on one resource attribute.
#[derive(Clone, serde::Serialize)]
pub struct Violation {
    #[serde(serialize_with = "rule_id")]
    pub rule: &'static rules::Rule,
    pub severity: Severity,
    pub address: String,
    pub attribute: String,
    pub message: String,
}

fn rule_id<S: serde::Serializer>(rule: &&'static rules::Rule, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(rule.id)
}

pub fn run(args: CheckArgs) -> Outcome {
    let plan = plan::Plan::load(&args.plan, MAX_PLAN_BYTES).map_err(|message| {
        CliError::usage(
            message,
            "pass the JSON of a saved plan: terraform plan -out plan.tfplan && terraform show -json plan.tfplan > plan.json",
        )
    })?;
    for id in &args.disable {
        if rules::Rule::by_id(id).is_none() {
            let known: Vec<&str> = rules::RULES.iter().map(|r| r.id).collect();
            return Err(CliError::usage(
                format!("--disable {id}: no such rule"),
                format!("rules are {}", known.join(", ")),
            ));
        }
    }
    let violations: Vec<Violation> = rules::check(&plan)
        .into_iter()
        .filter(|v| !args.disable.iter().any(|d| d == v.rule.id))
        .collect();
    let text = match args.format {
        CheckFormat::Text => report::text(&violations, &plan),
        CheckFormat::Json => report::json(&violations),
        CheckFormat::Junit => report::junit(&violations, &args.disable),
        CheckFormat::Sarif => report::sarif(&violations),
        CheckFormat::Github => report::github(&violations),
    };
    print!("{text}");
    // The violations are the output: no `error:` line, exit 1 for an error-level one.
    Ok(
        if violations.iter().any(|v| v.severity == Severity::Error) {
            output::EXIT_FAILURE
        } else {
            output::EXIT_OK
        },
    )
}
