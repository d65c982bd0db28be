//! The SDK through the real Terraform 1.0.3, with AutoMTLS on (Terraform's default): init,
//! validate, plan, apply, a second plan that must be empty, an in-place update, a replacement,
//! import, and destroy — over a resource with every attribute kind and nesting mode.

use acceptance_tests::{ProviderBuild, TfDir};
use serde_json::json;

const PROVIDER: &str = r#"
terraform {
  required_providers {
    tftest = { source = "registry.terraform.io/dr-project/tftest" }
  }
}
provider "tftest" { store_dir = "${path.module}/store" }
"#;

fn config(name_a: &str, size_a: &str) -> String {
    format!(
        r#"{PROVIDER}
resource "tftest_thing" "a" {{
  name    = "{name_a}"
  size    = {size_a}
  tags    = {{ team = "platform" }}
  ports   = [80, 443]
  aliases = ["x", "y"]
  secret  = "hunter2"
  endpoint {{ host = "a.example" }}
  endpoint {{
    host = "b.example"
    port = 8443
  }}
  settings {{ mode = "fast" }}
  rule {{ action = "allow" }}
  rule {{
    action   = "deny"
    priority = 10
  }}
  label "env" {{ value = "prod" }}
  limits {{ cpu = 2 }}
}}

# Its upstream is unknown until thing "a" exists.
resource "tftest_thing" "b" {{
  name     = "beta"
  upstream = tftest_thing.a.id
}}

data "tftest_thing_info" "a" {{ id = tftest_thing.a.id }}

output "a_name" {{ value = data.tftest_thing_info.a.name }}
"#
    )
}

#[test]
fn full_lifecycle_with_tls() {
    let tf = TfDir::new(&[ProviderBuild::tftest()]);

    // validate: an invalid value is reported on its attribute.
    tf.config(&config("Not Valid!", "1"));
    tf.init();
    tf.fails_with(&["validate", "-no-color"], r#"Invalid Attribute Value.*name = "Not Valid!".*name must be lower-case letters, digits and dashes"#);
    tf.config(&config("alpha", "1").replace(r#"mode = "fast""#, r#"mode = "slow""#));
    tf.fails_with(
        &["validate", "-no-color"],
        r#"settings.mode must be one of "fast", "safe", got "slow""#,
    );
    tf.config(&config("alpha", "1").replace("port = 8443", "port = 70000"));
    tf.fails_with(
        &["validate", "-no-color"],
        r"endpoint\[1\].port must be a whole number from 1 to 65535",
    );

    // plan: values known at plan time are shown, the rest are "known after apply".
    let precise = "3.14159265358979323846264338327950288";
    tf.config(&config("alpha", precise));
    tf.ok(&["validate", "-no-color"]);
    tf.assert_plan_changes(r#"summary = "alpha:3.14159265358979323846264338327950288".*upstream = \(known after apply\).*Plan: 2 to add"#);
    let plan = tf.ok(&["plan", "-no-color"]);
    assert!(
        plan.stdout.contains("secret     = (sensitive value)"),
        "sensitive values are hidden:\n{plan}"
    );
    assert!(
        !plan.stdout.contains("hunter2"),
        "the secret must not appear in plan output"
    );

    // apply, then the harness plans again and requires no changes.
    tf.apply();
    let a = tf.values("tftest_thing.a");
    let id_a = a["id"].as_str().unwrap().to_string();
    assert!(id_a.starts_with("alpha-"));
    assert_eq!(a["size"].to_string(), precise, "numbers keep every digit");
    assert_eq!(a["enabled"], json!(true), "default applied");
    assert_eq!(
        a["endpoint"],
        json!([{"host": "a.example", "port": 443}, {"host": "b.example", "port": 8443}])
    );
    assert_eq!(a["settings"], json!({"mode": "fast", "retries": null}));
    assert_eq!(a["label"], json!({"env": {"value": "prod"}}));
    assert_eq!(a["limits"], json!({"cpu": 2, "memory": null}));
    assert_eq!(a["rule"].as_array().unwrap().len(), 2);
    assert_eq!(a["revision"], json!(1));
    let schemas: serde_json::Value =
        serde_json::from_str(&tf.ok(&["providers", "schema", "-json"]).stdout).unwrap();
    let thing = &schemas["provider_schemas"]["registry.terraform.io/dr-project/tftest"]
        ["resource_schemas"]["tftest_thing"];
    assert_eq!(thing["version"], json!(1));
    assert_eq!(
        thing["block"]["attributes"]["secret"]["sensitive"],
        json!(true)
    );
    assert_eq!(
        thing["block"]["attributes"]["enabled"]["computed"],
        json!(true),
        "defaults make attributes computed"
    );
    assert_eq!(
        thing["block"]["block_types"]["label"]["nesting_mode"],
        json!("map")
    );
    assert_eq!(
        tf.values("tftest_thing.b")["upstream"],
        json!(id_a),
        "a plan-time unknown is filled at apply"
    );
    assert_eq!(
        tf.values("data.tftest_thing_info.a")["tags"],
        json!({"team": "platform"})
    );
    assert!(tf.path().join(format!("store/{id_a}.json")).is_file());

    // An in-place update keeps the id (use_state_for_unknown) and bumps the revision.
    tf.config(&config("alpha", "42"));
    tf.assert_plan_changes(
        r"~ update in-place.*size\s+= 3\.14\S* -> 42.*Plan: 0 to add, 1 to change, 0 to destroy",
    );
    tf.apply();
    let a = tf.values("tftest_thing.a");
    assert_eq!(a["id"], json!(id_a));
    assert_eq!(a["revision"], json!(2));

    // A requires-replace attribute: destroy-then-create, a new id, and b follows.
    tf.config(&config("gamma", "42"));
    tf.assert_plan_changes(
        r"must be replaced.*# forces replacement.*Plan: 1 to add, 1 to change, 1 to destroy",
    );
    tf.apply();
    let id_g = tf.values("tftest_thing.a")["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(id_g.starts_with("gamma-"), "{id_g}");
    assert!(
        !tf.path().join(format!("store/{id_a}.json")).exists(),
        "the replaced object is deleted"
    );
    assert_eq!(tf.values("tftest_thing.b")["upstream"], json!(id_g));

    // Import: forget the object, import it by id, and the plan must be empty again.
    tf.import_verify(&[("tftest_thing.a", &id_g)], &[]);
    tf.ok(&["state", "rm", "tftest_thing.a"]);
    tf.fails_with(
        &[
            "import",
            "-no-color",
            "-input=false",
            "tftest_thing.a",
            "missing-1",
        ],
        r#"Cannot Import No thing with id "missing-1""#,
    );
    tf.ok(&[
        "import",
        "-no-color",
        "-input=false",
        "tftest_thing.a",
        &id_g,
    ]);

    // Drift: an object deleted behind Terraform's back is planned for creation.
    std::fs::remove_file(tf.path().join(format!("store/{id_g}.json"))).unwrap();
    tf.assert_plan_changes(r"tftest_thing.a will be created");
    tf.apply();

    // destroy removes everything.
    tf.ok(&["destroy", "-no-color", "-input=false", "-auto-approve"]);
    let left: Vec<_> = std::fs::read_dir(tf.path().join("store"))
        .unwrap()
        .collect();
    assert!(left.is_empty(), "destroy leaves no objects: {left:?}");
}

#[test]
fn cross_attribute_validation_and_unknown_types_are_diagnostics() {
    let tf = TfDir::new(&[ProviderBuild::tftest()]);
    tf.config(&format!("{PROVIDER}\nresource \"tftest_thing\" \"a\" {{\n  name = \"same\"\n  secret = \"same\"\n}}\n"));
    tf.init();
    tf.fails_with(
        &["validate", "-no-color"],
        r"Weak Secret.*secret must differ from name",
    );
    tf.config(&format!(
        "{PROVIDER}\nresource \"tftest_nope\" \"a\" {{}}\n"
    ));
    tf.fails_with(
        &["validate", "-no-color"],
        r#"(?i)invalid resource type.*does not support resource type "tftest_nope""#,
    );
}
