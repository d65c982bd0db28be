//! `docs/guides/disaster-recovery.md`, run as written: its module (with the two vaults'
//! `storage_options` pointed at a moto server per region), then every `$ command` of its
//! `console` blocks, in order, through `sh` in the module's directory, with `terraform` and
//! `drctl` on PATH. `<!-- guide-test: … -->` comments make the outage happen (the primary's
//! server frozen, then thawed) or say a command's exit code. Each `text` block after a
//! command is what it printed: every piece of it between `…` elisions must appear in the
//! command's output (whitespace and Terraform's box drawing folded).

use acceptance_tests::servers::{create_bucket, moto_server};
use acceptance_tests::{drctl_bin, terraform_bin, workspace_root, ProviderBuild, TfDir};
use std::process::{Command, Stdio};
use std::time::Instant;

/// One step of the guide, in document order.
#[derive(Debug)]
enum Step {
    Command { line: String, exit: i32 },
    Printed(String),
    Marker(String),
}

fn steps(guide: &str) -> (String, Vec<Step>) {
    let mut hcl = String::new();
    let mut steps = Vec::new();
    let mut block: Option<(String, String)> = None;
    let mut next_exit = 0;
    for line in guide.lines() {
        if let Some((lang, body)) = &mut block {
            if line.trim_start().starts_with("```") {
                match lang.as_str() {
                    "hcl" if hcl.is_empty() => hcl = body.clone(),
                    "text" => steps.push(Step::Printed(body.clone())),
                    _ => {}
                }
                block = None;
            } else if lang == "console" {
                if let Some(command) = line.strip_prefix("$ ") {
                    steps.push(Step::Command {
                        line: command.to_string(),
                        exit: std::mem::take(&mut next_exit),
                    });
                }
            } else {
                body.push_str(line);
                body.push('\n');
            }
        } else if let Some(lang) = line.trim_start().strip_prefix("```") {
            block = Some((lang.trim().to_string(), String::new()));
        } else if let Some(marker) = line
            .strip_prefix("<!-- guide-test: ")
            .and_then(|m| m.strip_suffix(" -->"))
        {
            match marker.strip_prefix("exit ") {
                Some(code) => next_exit = code.parse().expect("an exit code"),
                None => steps.push(Step::Marker(marker.to_string())),
            }
        }
    }
    (hcl, steps)
}

/// Output as the guide quotes it: no colours, no box drawing, whitespace folded.
fn folded(text: &str) -> String {
    let no_colour = regex::Regex::new("\x1b\\[[0-9;]*m")
        .unwrap()
        .replace_all(text, "");
    no_colour
        .replace(['│', '╷', '╵'], " ")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

#[test]
fn the_disaster_recovery_guide_runs_as_written() {
    let guide = std::fs::read_to_string(workspace_root().join("docs/guides/disaster-recovery.md"))
        .expect("the guide");
    let (hcl, steps) = steps(&guide);
    assert!(
        steps.len() > 8,
        "the guide's steps were not found: {steps:?}"
    );

    let (eu, us) = (moto_server(), moto_server());
    create_bucket(&eu.endpoint(), "dr-eu");
    create_bucket(&us.endpoint(), "dr-us");
    let mut tf = TfDir::new(&[ProviderBuild::dr()]);
    tf.set_env("DR_PASSPHRASE", "guide-passphrase-0c41");
    tf.set_env("DR_TEST_INSECURE_KDF", "1");
    tf.set_env("AWS_ACCESS_KEY_ID", "test");
    tf.set_env("AWS_SECRET_ACCESS_KEY", "test");
    let module = tf.path().join("work");
    std::fs::create_dir_all(module.join("pipeline")).unwrap();
    std::fs::write(module.join("pipeline/ci.yml"), "stages: [build, deploy]\n").unwrap();
    // The one change from the guide: each region's endpoint is its test server.
    let mut main_tf = hcl.clone();
    for (region, server) in [("eu-west-1", &eu), ("us-east-1", &us)] {
        let original = format!("storage_options = {{ region = \"{region}\" }}");
        assert!(
            main_tf.contains(&original),
            "the guide's module sets {original}"
        );
        main_tf = main_tf.replace(
            &original,
            &format!(
                "storage_options = {{ region = \"{region}\", endpoint = \"{}\", allow_http = \"true\" }}",
                server.endpoint()
            ),
        );
    }
    std::fs::write(module.join("main.tf"), main_tf).unwrap();

    // `terraform` and `drctl` as a user has them: on PATH, installing from the test mirror.
    let bin = tf.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::os::unix::fs::symlink(terraform_bin(), bin.join("terraform")).unwrap();
    std::os::unix::fs::symlink(drctl_bin(), bin.join("drctl")).unwrap();
    let cli_config = tf.mirror_cli_config();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );

    let mut last_output = String::new();
    for step in &steps {
        match step {
            Step::Marker(m) if m == "the primary region goes dark" => eu.freeze(),
            Step::Marker(m) if m == "the primary region answers again" => eu.thaw(),
            Step::Marker(m) => panic!("unknown guide-test marker {m:?}"),
            Step::Command { line, exit } => {
                let started = Instant::now();
                let mut cmd = Command::new("sh");
                cmd.args(["-c", line])
                    .current_dir(&module)
                    .stdin(Stdio::null())
                    .env("PATH", &path)
                    .env("TF_CLI_CONFIG_FILE", &cli_config)
                    .env("TF_IN_AUTOMATION", "1")
                    .env("CHECKPOINT_DISABLE", "1")
                    .env("TERRAFORM", terraform_bin())
                    .env_remove("TF_LOG")
                    .env_remove("DR_VAULT");
                for (k, v) in tf.env() {
                    cmd.env(k, v);
                }
                let out = cmd.output().expect("run sh");
                let text = format!(
                    "{}{}",
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                );
                eprintln!(
                    "$ {line}   ({:.1}s, exit {})",
                    started.elapsed().as_secs_f64(),
                    out.status.code().unwrap_or(-1)
                );
                assert_eq!(
                    out.status.code(),
                    Some(*exit),
                    "`{line}` exited otherwise than the guide says:\n{text}"
                );
                last_output = folded(&text);
            }
            Step::Printed(quoted) => {
                for piece in quoted.split('…').map(folded).filter(|p| !p.is_empty()) {
                    assert!(
                        last_output.contains(&piece),
                        "the guide quotes {piece:?}, which the command did not print:\n{last_output}"
                    );
                }
            }
        }
    }
    // Where the guide ends: the primary active again, the pair in sync, the drill passed.
    let shown = tf.run_in(&module, &["show", "-json"]);
    let state: serde_json::Value = serde_json::from_str(&shown.stdout).expect("show -json");
    let resources = state["values"]["root_module"]["resources"]
        .as_array()
        .unwrap();
    let values = |address: &str| {
        resources
            .iter()
            .find(|r| r["address"] == address)
            .map(|r| r["values"].clone())
            .unwrap_or_else(|| panic!("{address} is not in state"))
    };
    let pair = values("dr_region_pair.pipelines");
    assert_eq!(
        (&pair["active"], &pair["in_sync"]),
        (&"primary".into(), &true.into()),
        "{pair}"
    );
    assert_eq!(values("dr_drill.standby")["status"], "passed");
}
