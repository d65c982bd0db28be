//! `drctl check` on plans made by the real Terraform 1.0.3 with the real provider: each rule
//! fires on the attribute it names, values unknown at plan time raise nothing, every output
//! format parses, and input that is not a dr plan exits 2 without a panic.

use acceptance_tests::{output_text, workspace_root, ProviderBuild, TfDir};
use std::process::Output;

fn module() -> TfDir {
    let mut tf = TfDir::new(&[ProviderBuild::dr(), ProviderBuild::tftest()]);
    tf.set_env("DR_PASSPHRASE", "check-passphrase");
    tf.set_env("DR_TEST_INSECURE_KDF", "1");
    std::fs::create_dir_all(tf.path().join("pipeline")).unwrap();
    std::fs::write(tf.path().join("pipeline/ci.yml"), "stages: [deploy]\n").unwrap();
    tf
}

fn check(tf: &TfDir, args: &[&str]) -> Output {
    std::process::Command::new(acceptance_tests::drctl_bin())
        .arg("check")
        .args(args)
        .current_dir(tf.path())
        .output()
        .expect("drctl is built by scripts/setup")
}

/// `terraform plan -out` then `terraform show -json` into plan.json.
fn plan_json(tf: &TfDir) {
    tf.ok(&["plan", "-no-color", "-out", "plan.tfplan"]);
    let shown = tf.ok(&["show", "-json", "plan.tfplan"]);
    std::fs::write(tf.path().join("plan.json"), shown.stdout).unwrap();
}

const HEADER: &str = r#"
terraform {
  required_providers {
    dr     = { source = "registry.terraform.io/dr-project/dr" }
    tftest = { source = "registry.terraform.io/dr-project/tftest" }
  }
}
provider "dr" {}
"#;

fn setup(primary_region: &str, primary_retention: &str, strategy: &str, drill: &str) -> String {
    format!(
        r#"{HEADER}
resource "dr_backup_vault" "primary" {{
  name   = "primary"
  region = "{primary_region}"
  url    = "vaults/primary"
  source {{
    name = "pipeline"
    path = "pipeline"
  }}
  {primary_retention}
}}
resource "dr_backup_vault" "secondary" {{
  name   = "secondary"
  region = "us-east-1"
  url    = "vaults/secondary"
  retention {{
    lock_for = "7d"
  }}
}}
resource "dr_region_pair" "prod" {{
  name               = "prod"
  primary_vault_id   = dr_backup_vault.primary.id
  secondary_vault_id = dr_backup_vault.secondary.id
  rpo                = "1h"
  rto                = "30m"
  strategy           = "{strategy}"
}}
{drill}
"#
    )
}

const GOOD_DRILL: &str = r#"
resource "dr_drill" "standby" {
  name           = "standby"
  vault_id       = dr_backup_vault.secondary.id
  region_pair_id = dr_region_pair.prod.id
  max_age        = "30m"
  depends_on     = [dr_region_pair.prod]
}
"#;

#[test]
fn each_rule_names_its_resource_and_attribute_and_unknowns_raise_nothing() {
    let tf = module();
    // Everything is created in this plan: ids are unknown, so vaults are matched through the
    // configuration's references.
    tf.config(&setup(
        "us-east-1",
        "retention {\n    keep_within = \"10m\"\n  }",
        "warm_standby",
        "",
    ));
    tf.init();
    plan_json(&tf);
    let out = check(&tf, &["plan.json"]);
    let report = output_text(&out);
    assert_eq!(out.status.code(), Some(1), "{report}");
    for expected in [
        "error DR003 dr_region_pair.prod.secondary_vault_id: dr_backup_vault.primary and dr_backup_vault.secondary are both in region \"us-east-1\"",
        "warning DR004 dr_region_pair.prod.secondary_vault_id: no dr_drill restores from the standby vault dr_backup_vault.secondary",
        "error DR006 dr_backup_vault.primary.retention.keep_within: keep_within 10m is shorter than the rpo 1h",
        "warning DR007 dr_backup_vault.primary.retention.lock_for",
    ] {
        assert!(report.contains(expected), "missing {expected:?} in:\n{report}");
    }
    assert!(
        !report.contains("DR007 dr_backup_vault.secondary"),
        "the secondary has lock_for:\n{report}"
    );
    // --disable drops a rule.
    let out = check(
        &tf,
        &["plan.json", "--disable", "DR003", "--disable", "DR006"],
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "only warnings are left: {}",
        output_text(&out)
    );
    assert!(!output_text(&out).contains("DR003"));

    // A good setup plans clean, unknown ids and all.
    tf.config(&setup(
        "eu-west-1",
        "retention {\n    keep_within = \"30d\"\n    lock_for = \"1d\"\n  }",
        "warm_standby",
        GOOD_DRILL,
    ));
    plan_json(&tf);
    let out = check(&tf, &["plan.json"]);
    assert_eq!(out.status.code(), Some(0), "{}", output_text(&out));
    assert!(
        output_text(&out).contains("0 error(s), 0 warning(s)"),
        "{}",
        output_text(&out)
    );

    // Applied, then a rename replaces the vault holding a snapshot; force_destroy turns on.
    tf.apply();
    let renamed = setup(
        "eu-west-1",
        "retention {\n    keep_within = \"30d\"\n    lock_for = \"1d\"\n  }",
        "warm_standby",
        GOOD_DRILL,
    )
    .replace("name   = \"primary\"", "name   = \"primary-v2\"")
    .replace(
        "  name   = \"secondary\"",
        "  name   = \"secondary\"\n  force_destroy = true",
    );
    tf.config(&renamed);
    plan_json(&tf);
    let out = check(&tf, &["plan.json"]);
    let report = output_text(&out);
    assert_eq!(out.status.code(), Some(1), "{report}");
    assert!(report.contains("error DR001 dr_backup_vault.primary.name: this plan replaces a vault holding 1 snapshot(s) because name changed"), "{report}");
    // The secondary holds the snapshot the pair replicated into it.
    assert!(
        report.contains("warning DR002 dr_backup_vault.secondary.force_destroy: force_destroy turns on for a vault holding 1 snapshot(s)"),
        "{report}"
    );

    // Drills staler than the rpo.
    tf.config(&setup(
        "eu-west-1",
        "retention {\n    keep_within = \"30d\"\n    lock_for = \"1d\"\n  }",
        "backup_restore",
        &GOOD_DRILL.replace("30m", "6h"),
    ));
    plan_json(&tf);
    let report = output_text(&check(&tf, &["plan.json"]));
    assert!(
        report.contains(
            "warning DR005 dr_drill.standby.max_age: max_age 6h is longer than the rpo 1h"
        ),
        "{report}"
    );
}

#[test]
fn every_output_format_parses() {
    let tf = module();
    tf.config(&setup("us-east-1", "", "active_active", ""));
    tf.init();
    plan_json(&tf);

    let json: serde_json::Value =
        serde_json::from_slice(&check(&tf, &["plan.json", "--format", "json"]).stdout).unwrap();
    assert_eq!(json["errors"], 1);
    assert!(json["violations"]
        .as_array()
        .unwrap()
        .iter()
        .any(|v| v["rule"] == "DR003" && v["attribute"] == "secondary_vault_id"));

    let sarif_out = check(&tf, &["plan.json", "--format", "sarif"]);
    std::fs::write(tf.path().join("drctl.sarif"), &sarif_out.stdout).unwrap();
    // The official SARIF 2.1.0 schema (fetched by scripts/setup), checked by the jsonschema
    // package: every error is printed.
    let schema = workspace_root().join(".tools/sarif/sarif-schema-2.1.0.json");
    let validated = std::process::Command::new(workspace_root().join(".tools/venv/bin/python"))
        .args([
            "-c",
            "import json, sys, jsonschema\n\
             schema = json.load(open(sys.argv[1])); doc = json.load(open(sys.argv[2]))\n\
             errors = list(jsonschema.Draft7Validator(schema).iter_errors(doc))\n\
             [print(e.json_path, e.message) for e in errors]\n\
             sys.exit(1 if errors else 0)",
        ])
        .arg(&schema)
        .arg(tf.path().join("drctl.sarif"))
        .output()
        .unwrap();
    assert!(
        validated.status.success(),
        "SARIF does not validate against {}: {}{}",
        schema.display(),
        String::from_utf8_lossy(&validated.stdout),
        String::from_utf8_lossy(&validated.stderr)
    );
    let sarif: serde_json::Value = serde_json::from_slice(&sarif_out.stdout).unwrap();
    assert_eq!(sarif["version"], "2.1.0");
    let run = &sarif["runs"][0];
    let rules = run["tool"]["driver"]["rules"].as_array().unwrap();
    assert_eq!(rules.len(), 7);
    for result in run["results"].as_array().unwrap() {
        let index = result["ruleIndex"].as_u64().unwrap() as usize;
        assert_eq!(
            rules[index]["id"], result["ruleId"],
            "ruleIndex points at its rule"
        );
        assert!(["error", "warning", "note", "none"].contains(&result["level"].as_str().unwrap()));
        assert!(!result["message"]["text"].as_str().unwrap().is_empty());
        assert!(result["locations"][0]["logicalLocations"][0]["fullyQualifiedName"].is_string());
    }

    let junit = check(&tf, &["plan.json", "--format", "junit"]);
    std::fs::write(tf.path().join("junit.xml"), &junit.stdout).unwrap();
    // A real XML parser (Python's) reads it and counts the failures.
    let parsed = std::process::Command::new("python3")
        .args([
            "-c",
            "import sys, xml.etree.ElementTree as ET; s = ET.parse(sys.argv[1]).getroot().find('testsuite'); \
             print(s.get('failures'), len(s.findall('testcase')), len(s.findall('testcase/failure')))",
            "junit.xml",
        ])
        .current_dir(tf.path())
        .output()
        .unwrap();
    assert!(
        parsed.status.success(),
        "{}",
        String::from_utf8_lossy(&parsed.stderr)
    );
    let counts = String::from_utf8_lossy(&parsed.stdout).trim().to_string();
    let failures: Vec<usize> = counts.split(' ').map(|n| n.parse().unwrap()).collect();
    assert_eq!(
        failures[0], failures[2],
        "failures attribute matches the <failure> elements: {counts}"
    );
    assert!(failures[0] >= 3, "{counts}");

    let github =
        String::from_utf8(check(&tf, &["plan.json", "--format", "github"]).stdout).unwrap();
    assert!(
        github
            .lines()
            .any(|l| l.starts_with("::error title=DR003 dr_region_pair.prod.secondary_vault_id::")),
        "{github}"
    );
    assert!(
        github
            .lines()
            .all(|l| l.starts_with("::error ") || l.starts_with("::warning ")),
        "{github}"
    );
}

#[test]
fn input_that_is_not_a_dr_plan_exits_2_and_says_what_was_expected() {
    let tf = module();
    std::fs::write(tf.path().join("notes.txt"), "this is not json").unwrap();
    std::fs::write(tf.path().join("list.json"), "[1, 2, 3]").unwrap();
    let huge = std::fs::File::create(tf.path().join("huge.json")).unwrap();
    huge.set_len(600 << 20).unwrap(); // sparse: costs no disk
                                      // State JSON, and a plan of another provider only, both made by Terraform.
    tf.config(&format!(
        "{HEADER}\nprovider \"tftest\" {{\n  store_dir = \"store\"\n}}\nresource \"tftest_thing\" \"a\" {{\n  name = \"a\"\n}}\n"
    ));
    tf.init();
    tf.apply();
    let state = tf.ok(&["show", "-json"]);
    std::fs::write(tf.path().join("state.json"), state.stdout).unwrap();
    tf.config(&format!(
        "{HEADER}\nprovider \"tftest\" {{\n  store_dir = \"store\"\n}}\nresource \"tftest_thing\" \"a\" {{\n  name = \"b\"\n}}\n"
    ));
    plan_json(&tf);
    for (file, expected) in [
        ("missing.json", "cannot read missing.json"),
        ("notes.txt", "is not JSON"),
        ("list.json", "not a Terraform plan"),
        ("huge.json", "more than the"),
        ("state.json", "is Terraform state, not a plan"),
        ("plan.json", "a plan without dr_* resources"),
    ] {
        let out = check(&tf, &[file]);
        assert_eq!(out.status.code(), Some(2), "{file}: {}", output_text(&out));
        assert!(
            output_text(&out).contains(expected),
            "{file}: {}",
            output_text(&out)
        );
        assert!(
            output_text(&out).contains("terraform show -json"),
            "says what is expected: {}",
            output_text(&out)
        );
    }
    let out = check(&tf, &["plan.json", "--disable", "DR999"]);
    assert_eq!(out.status.code(), Some(2));
}
