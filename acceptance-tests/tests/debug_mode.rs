//! Debug mode: `terraform-provider-… --debug` serves plaintext and prints a
//! TF_REATTACH_PROVIDERS value; Terraform 1.0.3 then drives the already-running process.

use acceptance_tests::{ProviderBuild, TfDir};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[test]
fn terraform_drives_a_reattached_provider() {
    let mut tf = TfDir::new(&[ProviderBuild::tftest()]);
    tf.config(
        r#"
terraform {
  required_providers {
    tftest = { source = "registry.terraform.io/dr-project/tftest" }
  }
}
provider "tftest" { store_dir = "${path.module}/store" }
resource "tftest_thing" "a" { name = "debugged" }
"#,
    );
    tf.init();

    // The provider resolves relative paths against its own working directory.
    let mut provider = Command::new(&ProviderBuild::tftest().binary)
        .arg("--debug")
        .current_dir(tf.path())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(provider.stdout.take().unwrap()).lines();
    let reattach = lines
        .by_ref()
        .map_while(Result::ok)
        .find_map(|line| {
            let value = line.trim().strip_prefix("TF_REATTACH_PROVIDERS='")?;
            Some(value.strip_suffix('\'')?.to_string())
        })
        .expect("debug mode prints a TF_REATTACH_PROVIDERS line");
    let parsed: serde_json::Value = serde_json::from_str(&reattach).unwrap();
    let entry = &parsed["registry.terraform.io/dr-project/tftest"];
    assert_eq!(entry["ProtocolVersion"], 6);
    assert_eq!(entry["Test"], true);
    assert_eq!(entry["Pid"], provider.id());

    tf.set_env("TF_REATTACH_PROVIDERS", &reattach);
    tf.apply();
    assert_eq!(tf.values("tftest_thing.a")["name"], "debugged");
    tf.ok(&["destroy", "-no-color", "-input=false", "-auto-approve"]);

    // Terraform never owned the process: it is still serving after every command.
    assert!(
        provider.try_wait().unwrap().is_none(),
        "a reattached provider outlives terraform commands"
    );

    // Ctrl-C stops it cleanly.
    let pid = provider.id().to_string();
    assert!(Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .unwrap()
        .success());
    let started = Instant::now();
    let status = loop {
        if let Some(status) = provider.try_wait().unwrap() {
            break status;
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "debug provider ignores Ctrl-C"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "{status}");
}
