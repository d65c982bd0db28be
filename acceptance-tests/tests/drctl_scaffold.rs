//! `drctl scaffold` writes a module that the real Terraform 1.0.3 accepts as it is: formatted
//! (`fmt -check`), valid (`validate`), clean under `drctl check`, and applying to a passed
//! drill with nothing left to change.

use acceptance_tests::{output_text, ProviderBuild, TfDir};

const SCAFFOLD: &[&str] = &[
    "scaffold",
    "--primary-region",
    "eu-west-1",
    "--secondary-region",
    "us-east-1",
    "--vault-url-primary",
    "vaults/eu-west-1",
    "--vault-url-secondary",
    "vaults/us-east-1",
    "--source",
    "ci",
    "--source",
    "scripts/deploy.sh",
    "--out",
    ".",
];

#[test]
fn the_scaffolded_module_is_formatted_valid_checked_and_applies() {
    let mut tf = TfDir::new(&[ProviderBuild::dr()]);
    tf.set_env("DR_PASSPHRASE", "scaffold-passphrase-1f0c");
    tf.set_env("DR_TEST_INSECURE_KDF", "1");
    std::fs::create_dir_all(tf.path().join("ci")).unwrap();
    std::fs::create_dir_all(tf.path().join("scripts")).unwrap();
    std::fs::write(tf.path().join("ci/pipeline.yml"), "stages: [build]\n").unwrap();
    std::fs::write(tf.path().join("scripts/deploy.sh"), "#!/bin/sh\n").unwrap();

    let out = tf.drctl(tf.path(), SCAFFOLD);
    assert!(out.status.success(), "{}", output_text(&out));
    let module = std::fs::read_to_string(tf.path().join("main.tf")).unwrap();
    for expected in [
        "resource \"dr_backup_vault\" \"primary\"",
        "resource \"dr_region_pair\" \"pipelines\"",
        "  secondary_vault_id    = dr_backup_vault.secondary.id\n",
        "    path = \"scripts/deploy.sh\"\n",
    ] {
        assert!(module.contains(expected), "missing {expected:?}:\n{module}");
    }

    // Written once; not replaced without --force.
    let again = tf.drctl(tf.path(), SCAFFOLD);
    assert_eq!(again.status.code(), Some(2), "{}", output_text(&again));
    assert!(
        output_text(&again).contains("exists"),
        "{}",
        output_text(&again)
    );
    assert_eq!(
        std::fs::read_to_string(tf.path().join("main.tf")).unwrap(),
        module
    );

    tf.ok(&["fmt", "-check", "-diff"]);
    tf.init();
    tf.ok(&["validate", "-no-color"]);
    tf.ok(&["plan", "-no-color", "-input=false", "-out=plan.tfplan"]);
    let show = tf.ok(&["show", "-json", "plan.tfplan"]);
    std::fs::write(tf.path().join("plan.json"), &show.stdout).unwrap();
    let check = tf.drctl(tf.path(), &["check", "plan.json"]);
    assert_eq!(check.status.code(), Some(0), "{}", output_text(&check));
    assert!(
        !output_text(&check).contains("DR0"),
        "the scaffold trips no rule: {}",
        output_text(&check)
    );

    tf.apply();
    let drill = tf.values("dr_drill.standby");
    assert_eq!(drill["status"], "passed", "{drill}");
    assert_eq!(drill["files_verified"], 2);
}

#[test]
fn bad_flags_are_refused_naming_them() {
    let tf = TfDir::new(&[]);
    let mut same = SCAFFOLD.to_vec();
    same[4] = "eu-west-1";
    let out = tf.drctl(tf.path(), &same);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        output_text(&out).contains("--primary-region and --secondary-region are both"),
        "{}",
        output_text(&out)
    );
    let mut bad_rpo = SCAFFOLD.to_vec();
    bad_rpo.extend(["--rpo", "soon"]);
    let out = tf.drctl(tf.path(), &bad_rpo);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        output_text(&out).contains("--rpo \"soon\""),
        "{}",
        output_text(&out)
    );
    assert!(!tf.path().join("main.tf").exists());
}
