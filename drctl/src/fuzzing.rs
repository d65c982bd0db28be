//! Entry points for the fuzz targets (`fuzz/`, replayed by `fuzz-targets`' tests): the readers
//! of files drctl is handed (plans, state files, restored configuration) fed arbitrary bytes.
//! An `Err` is the right answer to bad input; a panic, or an edit that does not hold, is a
//! finding.
//!
//! Not an API: hidden from the docs, and its functions may change with the targets.

use crate::check::{self, Plan};
use crate::rebuild::failover::{self, Edit, Files};

/// `drctl check`: the JSON of `terraform show -json PLANFILE`, then every rule and every
/// report format over what parses.
pub fn plan_json(data: &[u8]) {
    let Ok(plan) = Plan::parse(data, "plan.json") else {
        return;
    };
    let violations = check::rules::check(&plan);
    let _ = check::report::text(&violations, &plan);
    let json = check::report::json(&violations);
    serde_json::from_str::<serde_json::Value>(&json).expect("the JSON report is JSON");
    let sarif = check::report::sarif(&violations);
    serde_json::from_str::<serde_json::Value>(&sarif).expect("the SARIF report is JSON");
    let _ = check::report::junit(&violations, &[]);
    let _ = check::report::github(&violations);
}

/// `drctl status` and `drctl state push`/`pull`: a state file (or `terraform show -json`
/// output), for its resources and for the lineage and serial the state commands compare.
pub fn state_file(data: &[u8]) {
    if let Ok(resources) = crate::tfstate::resources(data, "terraform.tfstate") {
        for r in &resources {
            let _ = r.str("id");
            let _ = r.string_map("storage_options");
        }
    }
    let _ = crate::state::StateMeta::parse(data, "terraform.tfstate");
}

/// `drctl rebuild`: setting a pair's `active` in restored configuration. An edit drctl makes
/// must leave HCL that parses (with hcl-edit, and with hcl-rs as Terraform's stand-in when it
/// did before), and making it again must find it already made.
pub fn failover_hcl(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let files = Files::from([("main.tf".to_string(), text.to_string())]);
    let _ = failover::backend(&files);
    for side in ["primary", "secondary"] {
        let Ok((edit, new_text)) = failover::set_active(&files, "pair", side) else {
            continue;
        };
        let Some(new_text) = new_text else {
            assert!(
                !matches!(edit, Edit::Literal { .. }),
                "a literal edit has text"
            );
            continue;
        };
        // Terraform reads what drctl writes: what hcl-rs (its stand-in here) read before the
        // edit, it must read after. (hcl-edit takes some text hcl-rs refuses, such as NULs
        // in strings; Terraform refuses it too, so no configuration that applied holds it.)
        if hcl::parse(text).is_ok() {
            hcl::parse(&new_text).unwrap_or_else(|e| {
                panic!("the edited configuration does not parse: {e}\n{new_text}")
            });
        }
        let edited = Files::from([("main.tf".to_string(), new_text)]);
        let again = failover::set_active(&edited, "pair", side).map(|(edit, _)| edit);
        assert!(
            matches!(again, Ok(Edit::AlreadySet { .. })),
            "setting {side} again gives {again:?}"
        );
    }
}
