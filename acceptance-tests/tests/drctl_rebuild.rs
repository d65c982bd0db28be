//! The disaster, end to end: apply the quickstart with its vaults outside the working
//! directory, push the state (and configuration) to the secondary vault, lose the primary
//! vault and the working directory, then `drctl rebuild --apply` from the secondary alone.
//! The rebuilt setup must fail over, apply, pass a fresh drill and then plan no changes.

use acceptance_tests::{
    copy_dir, output_text, terraform_bin, workspace_root, ProviderBuild, TfDir,
};

const PASSPHRASE: &str = "rebuild-passphrase-5e1a";

#[test]
fn a_lost_primary_and_working_directory_are_rebuilt_from_the_secondary() {
    let mut tf = TfDir::new(&[ProviderBuild::dr()]);
    tf.set_env("DR_PASSPHRASE", PASSPHRASE);
    tf.set_env("DR_TEST_INSECURE_KDF", "1");
    let site = tempfile::tempdir().unwrap();
    let primary = site.path().join("eu-west-1");
    let secondary = site.path().join("us-east-1");
    copy_dir(&workspace_root().join("examples/quickstart"), tf.path());
    std::fs::write(
        tf.path().join("terraform.tfvars"),
        format!(
            "primary_vault_url   = \"{}\"\nsecondary_vault_url = \"{}\"\n",
            primary.display(),
            secondary.display()
        ),
    )
    .unwrap();
    tf.init();
    tf.apply();
    let original_pipeline = std::fs::read(tf.path().join("pipeline/pipeline.yml")).unwrap();

    let secondary_url = secondary.display().to_string();
    let pushed = tf.drctl(tf.path(), &["state", "push", &secondary_url, "--dir", "."]);
    assert!(pushed.status.success(), "{}", output_text(&pushed));
    assert!(
        output_text(&pushed).contains("main.tf, terraform.tfvars"),
        "{}",
        output_text(&pushed)
    );

    // The disaster: the primary region's vault and the working directory are gone.
    std::fs::remove_dir_all(&primary).unwrap();
    for e in std::fs::read_dir(tf.path()).unwrap().flatten() {
        if e.path() != tf.mirror() {
            let _ = std::fs::remove_dir_all(e.path()).or_else(|_| std::fs::remove_file(e.path()));
        }
    }
    let rebuilt = site.path().join("rebuilt");

    // The plan first: it names every step and changes nothing.
    let dry = tf.drctl(
        site.path(),
        &[
            "rebuild",
            "--vault",
            &secondary_url,
            "--into",
            "rebuilt",
            "--dry-run",
        ],
    );
    let dry_text = output_text(&dry);
    assert!(dry.status.success(), "{dry_text}");
    for step in [
        "restore Terraform state serial",
        "restore the configuration: .terraform.lock.hcl, main.tf, terraform.tfvars",
        "pipeline -> pipeline/",
        "fail over dr_region_pair.pipelines: active \"primary\" -> \"secondary\" in main.tf",
    ] {
        assert!(dry_text.contains(step), "missing {step:?} in:\n{dry_text}");
    }
    assert!(!rebuilt.exists(), "--dry-run wrote {}", rebuilt.display());

    let out = tf.drctl(
        site.path(),
        &[
            "rebuild",
            "--vault",
            &secondary_url,
            "--into",
            "rebuilt",
            "--apply",
        ],
    );
    let out_text = output_text(&out);
    assert!(out.status.success(), "{out_text}");
    assert!(
        out_text.contains("dr_drill.restore_pipeline: passed"),
        "{out_text}"
    );
    let seconds = acceptance_tests::rebuild_seconds(&out_text);
    eprintln!("measured rebuild time (drctl rebuild --apply): {seconds:.1}s");

    // What came back: the pipeline bit for bit, the configuration failed over and still
    // formatted, and a setup Terraform considers converged.
    assert_eq!(
        std::fs::read(rebuilt.join("pipeline/pipeline.yml")).unwrap(),
        original_pipeline
    );
    let main_tf = std::fs::read_to_string(rebuilt.join("main.tf")).unwrap();
    assert!(main_tf.contains("active = \"secondary\""), "{main_tf}");
    let tf_in_rebuilt = |args: &[&str]| {
        std::process::Command::new(terraform_bin())
            .args(args)
            .current_dir(&rebuilt)
            .env("DR_PASSPHRASE", PASSPHRASE)
            .env("DR_TEST_INSECURE_KDF", "1")
            // Terraform installs the provider from the mirror, as a registry stand-in.
            .env("TF_CLI_CONFIG_FILE", tf.mirror_cli_config())
            .env("CHECKPOINT_DISABLE", "1")
            .env_remove("TF_LOG")
            .output()
            .unwrap()
    };
    let fmt = tf_in_rebuilt(&["fmt", "-check"]);
    assert!(
        fmt.status.success(),
        "terraform fmt -check: {}",
        output_text(&fmt)
    );
    let plan = tf_in_rebuilt(&["plan", "-detailed-exitcode", "-no-color", "-input=false"]);
    assert_eq!(plan.status.code(), Some(0), "{}", output_text(&plan));
    let show = tf_in_rebuilt(&["show", "-json"]);
    let state: serde_json::Value = serde_json::from_slice(&show.stdout).unwrap();
    let pair = state["values"]["root_module"]["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["address"] == "dr_region_pair.pipelines")
        .unwrap()
        .clone();
    assert_eq!(pair["values"]["active"], "secondary");
    assert!(
        primary.join("config").exists(),
        "the primary vault is rebuilt"
    );

    // A second rebuild into the same directory is refused and changes nothing.
    let again = tf.drctl(
        site.path(),
        &["rebuild", "--vault", &secondary_url, "--into", "rebuilt"],
    );
    assert_eq!(again.status.code(), Some(2), "{}", output_text(&again));
    assert!(
        output_text(&again).contains("is not empty"),
        "{}",
        output_text(&again)
    );
}
