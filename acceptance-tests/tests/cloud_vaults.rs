//! Vaults on object stores through the real Terraform: both vaults on S3 (a moto server per
//! region, so one region can go dark alone), and a primary on S3 with its standby on Azure
//! Blob (Azurite). Credentials come from the environment only; endpoints, regions and
//! `allow_http` from each vault's `storage_options`, which travel in its id, so the pair and
//! the drill reach each vault in every later Terraform run.
//!
//! A region goes dark two ways: its server killed (connections refused) and frozen with
//! SIGSTOP (connections accepted, never answered). Either way a plain
//! `terraform apply -var active=secondary` fails over within two minutes, and the drill on the
//! standby passes.

use acceptance_tests::servers::{
    azurite_account_url, azurite_server, create_bucket, create_container, moto_server,
    LoopbackServer, AZURITE_ACCOUNT, AZURITE_KEY,
};
use acceptance_tests::{num, output_text, ProviderBuild, TfDir};
use std::time::{Duration, Instant};

const PASSPHRASE: &str = "cloud-passphrase-7f2e";

fn module() -> TfDir {
    let mut tf = TfDir::new(&[ProviderBuild::dr()]);
    tf.set_env("DR_PASSPHRASE", PASSPHRASE);
    tf.set_env("DR_TEST_INSECURE_KDF", "1");
    // Emulator credentials, from the environment as in real use; never in configuration.
    tf.set_env("AWS_ACCESS_KEY_ID", "test");
    tf.set_env("AWS_SECRET_ACCESS_KEY", "test");
    tf.set_env("AZURE_STORAGE_ACCOUNT_KEY", AZURITE_KEY);
    let pipeline = tf.path().join("pipeline");
    std::fs::create_dir_all(&pipeline).unwrap();
    std::fs::write(pipeline.join("ci.yml"), "stages: [build, deploy]\n").unwrap();
    std::fs::write(pipeline.join("deploy.sh"), "#!/bin/sh\necho deploy\n").unwrap();
    tf
}

/// Where a vault lives: its URL and its `storage_options` as HCL.
struct Place {
    url: String,
    options: String,
}

fn s3_place(server: &LoopbackServer, bucket: &str, region: &str) -> Place {
    create_bucket(&server.endpoint(), bucket);
    Place {
        url: format!("s3://{bucket}/pipelines"),
        options: format!(
            r#"{{ endpoint = "{}", region = "{region}", allow_http = "true" }}"#,
            server.endpoint()
        ),
    }
}

fn azure_place(server: &LoopbackServer, container: &str) -> Place {
    create_container(server, container);
    Place {
        url: format!("az://{container}/pipelines"),
        options: format!(
            r#"{{ endpoint = "{}", account_name = "{AZURITE_ACCOUNT}", allow_http = "true" }}"#,
            azurite_account_url(server)
        ),
    }
}

/// A primary with the pipeline as its source, a standby, the pair (active side from
/// `var.active`) and a drill on the standby that re-runs for every new snapshot and failover.
fn config(primary: &Place, secondary: &Place) -> String {
    format!(
        r#"
terraform {{
  required_providers {{
    dr = {{ source = "registry.terraform.io/dr-project/dr" }}
  }}
}}
variable "active" {{
  type    = string
  default = "primary"
}}
provider "dr" {{
  work_dir = "scratch"
}}
resource "dr_backup_vault" "primary" {{
  name            = "primary"
  region          = "eu-west-1"
  url             = "{}"
  storage_options = {}
  force_destroy   = true
  source {{
    name = "pipeline"
    path = "pipeline"
  }}
}}
resource "dr_backup_vault" "secondary" {{
  name            = "secondary"
  region          = "us-east-1"
  url             = "{}"
  storage_options = {}
  force_destroy   = true
}}
resource "dr_region_pair" "prod" {{
  name                  = "prod"
  primary_vault_id      = dr_backup_vault.primary.id
  secondary_vault_id    = dr_backup_vault.secondary.id
  rpo                   = "1h"
  rto                   = "30m"
  active                = var.active
  replicate_snapshot_id = dr_backup_vault.primary.latest_snapshot_id
}}
resource "dr_drill" "standby" {{
  name           = "standby"
  vault_id       = dr_backup_vault.secondary.id
  region_pair_id = dr_region_pair.prod.id
  verify_command = ["sh", "-c", "test -f pipeline/ci.yml"]
  triggers = {{
    snapshot = dr_backup_vault.primary.latest_snapshot_id
    active   = var.active
  }}
  depends_on = [dr_region_pair.prod]
}}
"#,
        primary.url, primary.options, secondary.url, secondary.options
    )
}

/// The lifecycle every cloud pairing must pass: apply, an empty plan, a changed source → one
/// snapshot, replicated and drilled in the same apply (in a later Terraform run, so every
/// vault is opened from its id alone), import after the state is lost, destroy.
fn full_lifecycle(tf: &TfDir) {
    tf.init();
    tf.apply();
    let primary = tf.values("dr_backup_vault.primary");
    let id = primary["id"].as_str().unwrap().to_string();
    assert!(
        id.contains("endpoint=http://127.0.0.1:") && id.contains("allow_http=true"),
        "the id carries the vault's own options: {id}"
    );
    assert_eq!(tf.values("dr_drill.standby")["status"], "passed");

    std::fs::write(
        tf.path().join("pipeline/ci.yml"),
        "stages: [build, test, deploy]\n",
    )
    .unwrap();
    tf.assert_plan_changes(r"dr_backup_vault\.primary will be updated in-place");
    tf.apply();
    let primary = tf.values("dr_backup_vault.primary");
    assert_eq!(num(&primary["snapshot_count"]), 2);
    let pair = tf.values("dr_region_pair.prod");
    assert_eq!(
        pair["standby_latest_snapshot_id"],
        primary["latest_snapshot_id"]
    );
    assert_eq!(pair["in_sync"], true);
    let drill = tf.values("dr_drill.standby");
    assert_eq!(drill["status"], "passed", "{drill}");
    assert_eq!(drill["restored_snapshot_id"], primary["latest_snapshot_id"]);

    // The state is lost: import every vault and the pair by the ids `state show` printed.
    let secondary_id = tf.values("dr_backup_vault.secondary")["id"]
        .as_str()
        .unwrap()
        .to_string();
    let pair_id = format!("prod@{id}");
    tf.import_verify(
        &[
            ("dr_backup_vault.primary", &id),
            ("dr_backup_vault.secondary", &secondary_id),
            ("dr_region_pair.prod", &pair_id),
        ],
        // When the pair last replicated is not recorded in the vaults.
        &["last_replicated_at"],
    );

    tf.ok(&["destroy", "-no-color", "-auto-approve"]);
}

#[test]
fn both_vaults_on_s3_in_two_regions_through_their_whole_lifecycle() {
    let (eu, us) = (moto_server(), moto_server());
    let tf = module();
    tf.config(&config(
        &s3_place(&eu, "dr-eu", "eu-west-1"),
        &s3_place(&us, "dr-us", "us-east-1"),
    ));
    full_lifecycle(&tf);
}

#[test]
fn a_primary_on_s3_with_its_standby_on_azure_blob() {
    let (eu, azure) = (moto_server(), azurite_server());
    let tf = module();
    tf.config(&config(
        &s3_place(&eu, "dr-eu", "eu-west-1"),
        &azure_place(&azure, "dr-standby"),
    ));
    full_lifecycle(&tf);
}

/// How the primary's region goes dark.
#[derive(Clone, Copy, Debug)]
enum Dark {
    Killed,
    Frozen,
}

/// The whole outage through Terraform: the primary's region goes dark, a plain apply fails
/// over within two minutes with the drill on the standby passing, the next plan stays quiet,
/// and (when the frozen region comes back) the next apply catches the primary up.
fn outage(dark: Dark) {
    let (mut eu, us) = (moto_server(), moto_server());
    let tf = module();
    tf.config(&config(
        &s3_place(&eu, "dr-eu", "eu-west-1"),
        &s3_place(&us, "dr-us", "us-east-1"),
    ));
    tf.init();
    tf.apply();
    let before = tf.values("dr_backup_vault.primary");

    match dark {
        Dark::Killed => eu.kill(),
        Dark::Frozen => eu.freeze(),
    }
    let started = Instant::now();
    let failover = tf.ok(&[
        "apply",
        "-no-color",
        "-input=false",
        "-auto-approve",
        "-var",
        "active=secondary",
    ]);
    let took = started.elapsed();
    assert!(
        took < Duration::from_secs(120),
        "the failover with the primary {dark:?} took {took:?}:\n{failover}"
    );
    eprintln!(
        "failover with the primary {dark:?}: {:.1}s",
        took.as_secs_f64()
    );
    let said = failover.flat();
    assert!(said.contains("Warning: Vault Unreachable"), "{failover}");
    assert!(
        said.contains("s3://dr-eu/pipelines"),
        "the warning names the vault:\n{failover}"
    );
    let pair = tf.values("dr_region_pair.prod");
    assert_eq!(pair["active"], "secondary");
    assert_eq!(pair["in_sync"], false);
    let drill = tf.values("dr_drill.standby");
    assert_eq!(drill["status"], "passed", "{drill}");
    assert_eq!(drill["restored_snapshot_id"], before["latest_snapshot_id"]);
    assert_eq!(
        tf.values("dr_backup_vault.primary")["latest_snapshot_id"],
        before["latest_snapshot_id"],
        "the dark vault keeps its state"
    );

    // `drctl status` does not stall either: the dark vault is out of policy, by name.
    let started = Instant::now();
    let status = tf.drctl(tf.path(), &["status", "--dir", "."]);
    let said = output_text(&status);
    assert_eq!(status.status.code(), Some(1), "{said}");
    assert!(
        said.contains("dr_backup_vault.primary: cannot open the vault"),
        "{said}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "{:?}",
        started.elapsed()
    );

    // The next plan, with the primary still dark: no error and no change, only warnings.
    let started = Instant::now();
    let plan = tf.run(&[
        "plan",
        "-no-color",
        "-input=false",
        "-detailed-exitcode",
        "-var",
        "active=secondary",
    ]);
    assert_eq!(plan.code, 0, "{plan}");
    assert!(plan.flat().contains("Warning: Vault Unreachable"), "{plan}");
    assert!(started.elapsed() < Duration::from_secs(120));

    if let Dark::Frozen = dark {
        // The region comes back: the next apply catches it up from the now-active side.
        eu.thaw();
        tf.ok(&[
            "apply",
            "-no-color",
            "-input=false",
            "-auto-approve",
            "-var",
            "active=secondary",
        ]);
        let pair = tf.values("dr_region_pair.prod");
        assert_eq!(pair["in_sync"], true, "{pair}");
        assert_eq!(num(&pair["replication_lag_seconds"]), 0);
        let plan = tf.run(&[
            "plan",
            "-no-color",
            "-input=false",
            "-detailed-exitcode",
            "-var",
            "active=secondary",
        ]);
        assert_eq!(plan.code, 0, "{plan}");
    }
}

#[test]
fn a_killed_primary_region_fails_over_within_two_minutes() {
    outage(Dark::Killed);
}

#[test]
fn a_frozen_primary_region_fails_over_within_two_minutes_and_catches_up_after() {
    outage(Dark::Frozen);
}

#[test]
fn a_rebuild_with_the_primary_region_dark_applies_everything_else() {
    let (mut eu, us) = (moto_server(), moto_server());
    let tf = module();
    tf.config(&config(
        &s3_place(&eu, "dr-eu", "eu-west-1"),
        &s3_place(&us, "dr-us", "us-east-1"),
    ));
    tf.init();
    tf.apply();
    let standby = tf.values("dr_backup_vault.secondary")["id"]
        .as_str()
        .unwrap()
        .to_string();
    let pushed = tf.drctl(tf.path(), &["state", "push", &standby, "--dir", "."]);
    assert!(pushed.status.success(), "{}", output_text(&pushed));

    eu.kill();
    let site = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let out = tf.drctl(
        site.path(),
        &[
            "rebuild", "--vault", &standby, "--into", "rebuilt", "--apply",
        ],
    );
    let text = output_text(&out);
    assert!(out.status.success(), "{text}");
    eprintln!(
        "rebuild with the primary region dark: {:.1}s",
        started.elapsed().as_secs_f64()
    );
    assert!(
        text.contains("waiting for its region: dr_backup_vault.primary (s3://dr-eu/pipelines) does not answer"),
        "{text}"
    );
    assert!(text.contains("dr_drill.standby: passed"), "{text}");
    assert!(text.contains("Vault Unreachable"), "{text}");
}

/// One vault at `place`, with `extra` settings.
fn single_vault(place: &Place) -> String {
    format!(
        r#"
terraform {{
  required_providers {{
    dr = {{ source = "registry.terraform.io/dr-project/dr" }}
  }}
}}
resource "dr_backup_vault" "primary" {{
  name            = "primary"
  region          = "eu-west-1"
  url             = "{}"
  storage_options = {}
  source {{
    name = "pipeline"
    path = "pipeline"
  }}
}}
"#,
        place.url, place.options
    )
}

/// Runs an apply that must fail within `limit`, with `pattern` in its output, leaving the
/// state empty.
fn refused_quickly(tf: &TfDir, pattern: &str, limit: Duration) {
    let started = Instant::now();
    tf.fails_with(&["apply", "-no-color", "-auto-approve"], pattern);
    assert!(started.elapsed() < limit, "took {:?}", started.elapsed());
    let listed = tf.run(&["state", "list"]);
    assert!(listed.stdout.trim().is_empty(), "state written: {listed}");
}

#[test]
fn wrong_endpoints_buckets_and_credentials_are_clear_errors_on_the_url_in_seconds() {
    let eu = moto_server();
    let mut tf = module();

    // An endpoint where nothing listens.
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    tf.config(&single_vault(&Place {
        url: "s3://dr-eu/pipelines".into(),
        options: format!(
            r#"{{ endpoint = "http://{dead}", region = "eu-west-1", allow_http = "true" }}"#
        ),
    }));
    tf.init();
    refused_quickly(
        &tf,
        r#"Error: Vault Unreachable.*with dr_backup_vault\.primary.*url.*cannot \w+ s3://dr-eu/pipelines.*storage options connect_timeout, timeout"#,
        Duration::from_secs(40),
    );

    // A bucket that does not exist.
    tf.config(&single_vault(&Place {
        url: "s3://no-such-bucket/pipelines".into(),
        options: format!(
            r#"{{ endpoint = "{}", region = "eu-west-1", allow_http = "true" }}"#,
            eu.endpoint()
        ),
    }));
    refused_quickly(
        &tf,
        r"Error: Cannot Create Vault.*s3://no-such-bucket/pipelines.*bucket or container does not exist",
        Duration::from_secs(20),
    );

    // No credentials in the environment.
    let place = s3_place(&eu, "dr-eu", "eu-west-1");
    tf.config(&single_vault(&place));
    tf.remove_env("AWS_ACCESS_KEY_ID");
    tf.remove_env("AWS_SECRET_ACCESS_KEY");
    refused_quickly(
        &tf,
        r"Error: .*s3://dr-eu/pipelines.*credentials",
        Duration::from_secs(40),
    );
}

#[test]
fn a_wrong_azure_key_is_a_clear_error_naming_the_credentials() {
    let azure = azurite_server();
    let mut tf = module();
    tf.set_env(
        "AZURE_STORAGE_ACCOUNT_KEY",
        "d3Jvbmcta2V5LXdyb25nLWtleS13cm9uZy1rZXktd3Jvbmcta2V5LXdyb25nLWtleQ==",
    );
    tf.config(&single_vault(&azure_place(&azure, "dr-standby")));
    tf.init();
    refused_quickly(
        &tf,
        r"Error: Cannot Create Vault.*az://dr-standby/pipelines.*credentials in the environment",
        Duration::from_secs(30),
    );
}

#[test]
fn state_from_before_ids_carried_options_is_upgraded_without_replacing_anything() {
    let (eu, us) = (moto_server(), moto_server());
    let tf = module();
    tf.config(&config(
        &s3_place(&eu, "dr-eu", "eu-west-1"),
        &s3_place(&us, "dr-us", "us-east-1"),
    ));
    tf.init();
    tf.apply();

    // Rewrite the state as an earlier release wrote it: bare URLs as ids, schema version 0.
    let path = tf.path().join("terraform.tfstate");
    let mut state: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let bare = |id: &serde_json::Value| {
        serde_json::Value::String(id.as_str().unwrap().split('?').next().unwrap().to_string())
    };
    for resource in state["resources"].as_array_mut().unwrap() {
        let kind = resource["type"].as_str().unwrap().to_string();
        let instance = &mut resource["instances"][0];
        let attributes = &mut instance["attributes"];
        match kind.as_str() {
            "dr_backup_vault" => {
                instance["schema_version"] = 0.into();
                let attributes = &mut instance["attributes"];
                attributes["id"] = bare(&attributes["id"]);
            }
            "dr_region_pair" => {
                for attr in ["primary_vault_id", "secondary_vault_id"] {
                    attributes[attr] = bare(&attributes[attr]);
                }
                attributes["id"] =
                    format!("prod@{}", attributes["primary_vault_id"].as_str().unwrap()).into();
            }
            "dr_drill" => attributes["vault_id"] = bare(&attributes["vault_id"]),
            _ => {}
        }
    }
    std::fs::write(&path, serde_json::to_string_pretty(&state).unwrap()).unwrap();

    // The upgrade gives the vaults their ids back; the pair and the drill follow in place.
    let plan = tf.assert_plan_changes(r"dr_region_pair\.prod will be updated in-place");
    assert!(!plan.flat().contains("must be replaced"), "{plan}");
    assert!(
        !plan.flat().contains("dr_backup_vault.primary will be"),
        "{plan}"
    );
    tf.apply();
    let pair = tf.values("dr_region_pair.prod");
    assert!(
        pair["primary_vault_id"]
            .as_str()
            .unwrap()
            .contains("endpoint="),
        "{pair}"
    );
    assert_eq!(tf.values("dr_drill.standby")["status"], "passed");
}

/// The bucket itself is gone (deleted with everything in it: here moto is reset): the vault
/// reads as gone, so a plan creates it anew once the bucket is back, and a destroy lets the
/// resource go; no refresh fails on the missing bucket.
#[test]
fn a_vault_whose_bucket_is_gone_reads_as_gone() {
    let eu = moto_server();
    let tf = module();
    let place = s3_place(&eu, "dr-gone", "eu-west-1");
    tf.config(&single_vault(&place));
    tf.init();
    tf.apply();

    reset_moto(&eu.endpoint());
    let plan = tf.ok(&["plan", "-no-color"]).to_string();
    assert!(
        plan.contains("dr_backup_vault.primary will be created"),
        "{plan}"
    );
    create_bucket(&eu.endpoint(), "dr-gone");
    tf.apply();
    tf.assert_plan_empty();
    reset_moto(&eu.endpoint());
    tf.ok(&["destroy", "-auto-approve"]);
    let listed = tf.run(&["state", "list"]);
    assert!(listed.stdout.trim().is_empty(), "{listed}");
}

/// moto's own reset: every bucket and object goes.
fn reset_moto(endpoint: &str) {
    use std::io::{Read as _, Write as _};
    let addr = endpoint.trim_start_matches("http://");
    let mut conn = std::net::TcpStream::connect(addr).unwrap();
    write!(
        conn,
        "POST /moto-api/reset HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut reply = String::new();
    conn.read_to_string(&mut reply).unwrap();
    assert!(
        reply.starts_with("HTTP/1.1 200"),
        "moto reset failed: {reply}"
    );
}
