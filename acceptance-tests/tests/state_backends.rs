//! Terraform state in a real remote backend: the `pg` backend on a PostgreSQL server the test
//! starts. Apply a quickstart-like module, back its state up into the standby vault, lose the
//! database server, and rebuild from the standby alone: the state lands in the fresh
//! database through `terraform state push`, the drill passes, and the rebuilt module plans no
//! changes.

use acceptance_tests::servers::Postgres;
use acceptance_tests::{copy_dir, output_text, workspace_root, ProviderBuild, TfDir};

const PASSPHRASE: &str = "pg-backend-passphrase-2b9c";

#[test]
fn state_in_postgres_is_rebuilt_into_a_fresh_server_from_the_standby_vault() {
    let pg = Postgres::start();
    pg.create_database("tfstate");
    let mut tf = TfDir::new(&[ProviderBuild::dr()]);
    tf.set_env("DR_PASSPHRASE", PASSPHRASE);
    tf.set_env("DR_TEST_INSECURE_KDF", "1");
    let site = tempfile::tempdir().unwrap();
    let primary = site.path().join("eu-west-1");
    let secondary = site.path().join("us-east-1");
    copy_dir(&workspace_root().join("examples/quickstart"), tf.path());
    std::fs::write(
        tf.path().join("backend.tf"),
        format!(
            "terraform {{\n  backend \"pg\" {{\n    conn_str = \"{}\"\n  }}\n}}\n",
            pg.conn_str("tfstate")
        ),
    )
    .unwrap();
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
    assert!(
        !tf.path().join("terraform.tfstate").exists(),
        "the state lives in PostgreSQL, not in a local file"
    );

    let standby = secondary.display().to_string();
    let pushed = tf.drctl(tf.path(), &["state", "push", &standby, "--dir", "."]);
    assert!(pushed.status.success(), "{}", output_text(&pushed));

    // The disaster: the database server and everything in it are gone. A fresh, empty one
    // takes its place (as a restored managed database would).
    pg.lose_everything_and_start_fresh();
    pg.create_database("tfstate");

    let out = tf.drctl(
        site.path(),
        &["rebuild", "--vault", &standby, "--into", "new", "--apply"],
    );
    let text = output_text(&out);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("state push"),
        "the state goes through the backend:\n{text}"
    );
    assert!(text.contains("dr_drill.restore_pipeline: passed"), "{text}");
    let seconds = acceptance_tests::rebuild_seconds(&text);
    eprintln!("measured rebuild time into PostgreSQL (drctl rebuild --apply): {seconds:.1}s");

    let new = site.path().join("new");
    assert!(
        !new.join("terraform.tfstate").exists(),
        "the rebuilt state is in the database, not beside the module"
    );
    let plan = tf.run_in(
        &new,
        &["plan", "-no-color", "-input=false", "-detailed-exitcode"],
    );
    assert_eq!(plan.code, 0, "the rebuilt module plans no changes:\n{plan}");
    let state = tf.run_in(&new, &["state", "list"]);
    assert!(
        state.stdout.contains("dr_drill.restore_pipeline"),
        "{state}"
    );
}
