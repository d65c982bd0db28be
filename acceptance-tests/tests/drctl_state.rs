//! `drctl state push / pull / history` on state written by the real Terraform 1.0.3 with the
//! real provider: versions, the no-op push, and the lineage/serial refusals of pull.

use acceptance_tests::{output_text, ProviderBuild, TfDir};
use std::process::Output;

const PASSPHRASE: &str = "state-passphrase-0c4d";

fn config(labels: &str) -> String {
    format!(
        r#"
terraform {{
  required_providers {{
    dr = {{ source = "registry.terraform.io/dr-project/dr" }}
  }}
}}
provider "dr" {{}}
resource "dr_backup_vault" "pipelines" {{
  name   = "pipelines"
  region = "eu-west-1"
  url    = "vaults/pipelines"
  labels = {{ {labels} }}
}}
"#
    )
}

#[test]
fn push_pull_and_history_keep_state_safe() {
    let mut tf = TfDir::new(&[ProviderBuild::dr()]);
    tf.set_env("DR_PASSPHRASE", PASSPHRASE);
    tf.set_env("DR_TEST_INSECURE_KDF", "1");
    tf.config(&config("team = \"a\""));
    tf.init();
    tf.apply();
    let ok = |out: Output| {
        assert!(out.status.success(), "{}", output_text(&out));
        output_text(&out)
    };
    ok(tf.drctl(
        tf.path(),
        &[
            "vault",
            "--vault",
            "state-vault",
            "init",
            "--name",
            "state",
            "--region",
            "eu-west-1",
        ],
    ));

    let first = ok(tf.drctl(tf.path(), &["state", "push", "state-vault", "--dir", "."]));
    assert!(first.contains("pushed state serial"), "{first}");
    let again = ok(tf.drctl(
        tf.path(),
        &[
            "state",
            "push",
            "state-vault",
            "--state",
            "terraform.tfstate",
        ],
    ));
    assert!(
        again.starts_with("unchanged"),
        "identical state is a no-op: {again}"
    );

    // A change makes a new serial and a new version.
    tf.config(&config("team = \"b\""));
    tf.apply();
    ok(tf.drctl(tf.path(), &["state", "push", "state-vault", "--dir", "."]));
    let history: serde_json::Value = serde_json::from_str(&ok(
        tf.drctl(tf.path(), &["state", "history", "state-vault", "--json"])
    ))
    .unwrap();
    let rows = history.as_array().unwrap();
    assert_eq!(rows.len(), 2);
    let local: serde_json::Value =
        serde_json::from_slice(&std::fs::read(tf.path().join("terraform.tfstate")).unwrap())
            .unwrap();
    assert_eq!(rows[1]["state"]["serial"], local["serial"]);
    assert_eq!(rows[1]["state"]["lineage"], local["lineage"]);
    assert_eq!(rows[1]["state"]["resources"], 1);
    assert!(rows[0]["state"]["serial"].as_u64() < rows[1]["state"]["serial"].as_u64());

    // Pull the newest into a new file: the state Terraform has (pushed through
    // `terraform state pull`, which formats the same document differently).
    ok(tf.drctl(
        tf.path(),
        &["state", "pull", "state-vault", "--out", "restored.tfstate"],
    ));
    let restored: serde_json::Value =
        serde_json::from_slice(&std::fs::read(tf.path().join("restored.tfstate")).unwrap())
            .unwrap();
    assert_eq!(restored, local);

    // An older version over newer state: refused, nothing changed; --force keeps a backup.
    let older = rows[0]["snapshot"].as_str().unwrap();
    let before = std::fs::read(tf.path().join("terraform.tfstate")).unwrap();
    let refused = tf.drctl(
        tf.path(),
        &[
            "state",
            "pull",
            "state-vault",
            "--snapshot",
            older,
            "--out",
            "terraform.tfstate",
        ],
    );
    assert_eq!(refused.status.code(), Some(1), "{}", output_text(&refused));
    assert!(
        output_text(&refused).contains("newer than the vault's serial"),
        "{}",
        output_text(&refused)
    );
    assert_eq!(
        std::fs::read(tf.path().join("terraform.tfstate")).unwrap(),
        before
    );
    ok(tf.drctl(
        tf.path(),
        &[
            "state",
            "pull",
            "state-vault",
            "--snapshot",
            older,
            "--out",
            "terraform.tfstate",
            "--force",
        ],
    ));
    let backups: Vec<_> = std::fs::read_dir(tf.path())
        .unwrap()
        .flatten()
        .filter(|e| {
            // drctl's are terraform.tfstate.<unix seconds>.backup; Terraform keeps its own
            // terraform.tfstate.backup.
            let name = e.file_name().to_string_lossy().into_owned();
            name.starts_with("terraform.tfstate.")
                && name.ends_with(".backup")
                && name != "terraform.tfstate.backup"
        })
        .collect();
    assert_eq!(backups.len(), 1);
    assert_eq!(
        std::fs::read(backups[0].path()).unwrap(),
        before,
        "the backup is what was replaced"
    );

    // Another lineage is refused too.
    let mut other = local.clone();
    other["lineage"] = "00000000-1111-2222-3333-444444444444".into();
    std::fs::write(tf.path().join("other.tfstate"), other.to_string()).unwrap();
    let refused = tf.drctl(
        tf.path(),
        &["state", "pull", "state-vault", "--out", "other.tfstate"],
    );
    assert_eq!(refused.status.code(), Some(1));
    assert!(
        output_text(&refused).contains("different states"),
        "{}",
        output_text(&refused)
    );

    // Input that is not state: exit 2 with what was expected; nothing pushed.
    std::fs::write(tf.path().join("notes.txt"), "not json").unwrap();
    let bad = tf.drctl(
        tf.path(),
        &["state", "push", "state-vault", "--state", "notes.txt"],
    );
    assert_eq!(bad.status.code(), Some(2));
    assert!(
        output_text(&bad).contains("expected a Terraform state file"),
        "{}",
        output_text(&bad)
    );
    std::fs::write(
        tf.path().join("plan.json"),
        r#"{"format_version":"0.2","planned_values":{}}"#,
    )
    .unwrap();
    let bad = tf.drctl(
        tf.path(),
        &["state", "push", "state-vault", "--state", "plan.json"],
    );
    assert_eq!(bad.status.code(), Some(2));
    assert!(
        output_text(&bad).contains("not a Terraform state file"),
        "{}",
        output_text(&bad)
    );
    let history: serde_json::Value = serde_json::from_str(&ok(
        tf.drctl(tf.path(), &["state", "history", "state-vault", "--json"])
    ))
    .unwrap();
    assert_eq!(history.as_array().unwrap().len(), 2);
}
