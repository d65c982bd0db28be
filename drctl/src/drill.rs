//! `drctl drill`: the drill `dr_drill` runs, outside Terraform, for cron and pipelines:
//! restore a snapshot into a private directory, check every file against its manifest, run a
//! shell command inside the tree, measure restore time and data age against the targets, and
//! write the same report into the vault (`drills/NAME/…`), where `drctl status`, `drctl
//! report` and the next refresh of a `dr_drill` of that name on that vault find it.

use crate::cli::DrillArgs;
use crate::output::{self, CliError, Outcome};
use crate::vault::Context;
use dr_drill::{RestoreDir, Spec};

/// How many of the check's last lines a failed run prints (the report keeps 64 KiB).
const TAIL_LINES: usize = 20;

pub async fn run(args: DrillArgs) -> Outcome {
    let Some(url) = args.vault.clone() else {
        return Err(CliError::usage(
            "no vault given",
            "pass --vault URL (or set DR_VAULT): the vault the drill restores from, usually the standby",
        ));
    };
    let duration = |value: &Option<String>, flag: &str| -> Result<_, CliError> {
        value
            .as_deref()
            .map(|text| {
                dr_vault::parse_duration(text, flag).map_err(|e| {
                    CliError::usage(e.to_string(), "durations look like 90s, 15m, 4h or 7d")
                })
            })
            .transpose()
    };
    let rpo = duration(&args.rpo, "--rpo")?;
    let rto = duration(&args.rto, "--rto")?;
    let verify_timeout =
        duration(&Some(args.verify_timeout.clone()), "--verify-timeout")?.unwrap_or_default();
    if !dr_drill::is_drill_name(&args.name) {
        return Err(CliError::usage(
            format!("--name {:?} is not a drill name", args.name),
            "letters, digits, '-', '_', '.', ':' and '@', e.g. nightly or restore-pipeline (it names the reports: drills/NAME/)",
        ));
    }
    // Where the tree goes is checked before anything runs: a run that could not restore
    // would write a failed report into the vault for a problem of this machine's.
    let restore_dir = match &args.restore_dir {
        Some(dir) => RestoreDir::Given(dir.clone()),
        None => {
            let work_dir = args.work_dir.clone().unwrap_or_else(default_work_dir);
            let work_dir = dr_drill::restored::private_work_dir(&work_dir)
                .map_err(|e| CliError::usage(e, "pass --work-dir DIR, a directory of your own"))?;
            // Trees of runs killed before they cleaned up (a day old): decrypted data.
            dr_drill::restored::remove_stale(
                &work_dir,
                &args.name,
                dr_drill::MARKER,
                std::time::Duration::from_secs(24 * 3600),
            );
            RestoreDir::PrivateIn(work_dir)
        }
    };
    let ctx = Context::new(url, &args.access, args.output.json);
    let passphrase = ctx.passphrase()?;
    let vault = ctx.open().await?;
    let spec = Spec {
        name: args.name.clone(),
        vault_id: vault.storage().id(),
        snapshot: args.snapshot.clone(),
        rpo,
        rto,
        verify_command: args
            .verify_command
            .as_ref()
            .map(|command| vec!["sh".to_string(), "-c".to_string(), command.clone()])
            .unwrap_or_default(),
        verify_timeout,
        restore_dir,
        keep_restore: args.keep_restore,
        secret_env: Default::default(),
        secrets: vec![passphrase.expose().to_string()],
        settings: None,
        by_action: true,
    };
    let run = dr_drill::run(&vault, &spec).await;
    if ctx.json {
        // What the check printed stays in the vault's (encrypted) report, as in Terraform's.
        output::json(&dr_drill::Run {
            verify_output_tail: String::new(),
            ..run.clone()
        })?;
    } else {
        println!("{}", run.summary());
        for failure in &run.failures {
            println!("  - {failure}");
        }
        if !run.passed() && !run.verify_output_tail.is_empty() {
            let lines: Vec<&str> = run.verify_output_tail.lines().collect();
            println!("the last lines the check printed:");
            for line in &lines[lines.len().saturating_sub(TAIL_LINES)..] {
                println!("  | {line}");
            }
        }
        if run.report_written {
            println!(
                "report: {}/{} in {}",
                dr_drill::reports_of(&run.name),
                run.started_at.replace(':', "-"),
                ctx.url
            );
        }
    }
    Ok(if run.passed() {
        output::EXIT_OK
    } else {
        output::EXIT_FAILURE
    })
}

/// `<temp>/drctl-drill-<uid>`: one per user, so nobody else can have made it first.
fn default_work_dir() -> std::path::PathBuf {
    let uid = rustix::process::geteuid().as_raw();
    std::env::temp_dir().join(format!("drctl-drill-{uid}"))
}
