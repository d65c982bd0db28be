//! `drctl rebuild --vault URL --into DIR`: the disaster day. From the standby vault alone,
//! bring back the root module (configuration and Terraform state, as `drctl state push --dir`
//! kept them) and the newest pipeline snapshot, fail the region pairs over to the standby in
//! the restored configuration, and with `--apply` run `terraform init` and `terraform apply`
//! there. The whole plan is printed first; `--dry-run` stops after it. The total time is
//! reported: it is the recovery time actually achieved.

pub(crate) mod failover;
mod plan;

use crate::cli::RebuildArgs;
use crate::output::{self, CliError, Outcome};
use crate::state::push::write_private;
use crate::tfstate;
use crate::vault::Context;
use plan::Plan;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

pub async fn run(args: RebuildArgs) -> Outcome {
    let started = Instant::now();
    let ctx = Context::new(args.vault.clone(), &args.access, args.output.json);
    refuse_non_empty(&args.into)?;
    let vault = ctx.open().await?;
    let plan = plan::make(
        &vault,
        args.state_snapshot.as_deref(),
        !args.no_failover,
        &ctx.options,
    )
    .await?;
    let commands = terraform_commands(&plan);
    let mut log = Log {
        json: args.output.json,
    };
    log.plan(&plan, &args.into, &commands, args.apply);
    if args.dry_run {
        if args.output.json {
            output::json(&Report::new(
                &plan,
                &args.into,
                &commands,
                None,
                &[],
                started,
            ))?;
        }
        return Ok(output::EXIT_OK);
    }

    write_module(&plan, &args.into).map_err(|message| {
        CliError::usage(
            message,
            "nothing in the vault was changed; fix the directory and run again",
        )
    })?;
    if let Some(pipeline) = &plan.pipeline {
        for (name, place) in &pipeline.sources {
            let bar = output::Bar::new();
            vault
                .restore(
                    &pipeline.snapshot.id,
                    &args.into.join(place),
                    Some(name),
                    &bar,
                )
                .await?;
        }
    }
    log.line(&format!(
        "restored into {} in {:.1}s",
        args.into.display(),
        started.elapsed().as_secs_f64()
    ));

    let mut drills = Vec::new();
    let mut code = output::EXIT_OK;
    if args.apply {
        for command in &commands {
            if let Err(message) = log.run(command, &args.into) {
                // Said now, and the report still follows: it says how far the rebuild got.
                code = CliError::with_code(
                    output::EXIT_FAILURE,
                    message,
                    format!(
                        "the restored module is in {}; fix the cause and run terraform there",
                        args.into.display()
                    ),
                )
                .print();
                break;
            }
        }
        if code == output::EXIT_OK {
            drills = drill_results(&args.into);
            if drills.iter().any(|(_, status)| status != "passed") {
                code = output::EXIT_FAILURE;
            }
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    if args.output.json {
        output::json(&Report::new(
            &plan,
            &args.into,
            &commands,
            Some(args.apply),
            &drills,
            started,
        ))?;
    } else if args.apply {
        for (address, status) in &drills {
            println!("{address}: {status}");
        }
        if code == output::EXIT_OK {
            println!(
                "rebuilt in {seconds:.1}s from {} (the achieved recovery time)",
                plan.vault
            );
        } else {
            println!("rebuild not finished after {seconds:.1}s");
        }
    } else {
        println!("next, in {}:", args.into.display());
        for command in &commands {
            println!("  {}", command.join(" "));
        }
    }
    Ok(code)
}

/// The directory must be new or empty: a rebuild never mixes with what is there.
fn refuse_non_empty(dir: &Path) -> Result<(), CliError> {
    match std::fs::read_dir(dir).map(|mut entries| entries.next().is_some()) {
        Ok(true) => Err(CliError::usage(
            format!("--into {} is not empty", dir.display()),
            "rebuild into a new or empty directory; nothing was changed",
        )),
        Ok(false) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(CliError::usage(
            format!("cannot read --into {}: {e}", dir.display()),
            "check the path",
        )),
    }
}

/// Writes the configuration (edited where the plan says), the generated tfvars and the state.
fn write_module(plan: &Plan, into: &Path) -> Result<(), String> {
    let fail = |what: &Path, e: std::io::Error| format!("cannot write {}: {e}", what.display());
    std::fs::create_dir_all(into).map_err(|e| fail(into, e))?;
    for (name, text) in plan.config.iter().chain(&plan.edited) {
        let text = plan.edited.get(name).unwrap_or(text);
        std::fs::write(into.join(name), text).map_err(|e| fail(&into.join(name), e))?;
    }
    let state = into.join(&plan.state_file);
    write_private(&state, &plan.state_bytes).map_err(|e| fail(&state, e))
}

/// `terraform init`, a state push when a backend holds the state, and an apply that re-runs
/// every drill, so the rebuilt setup is proven by a fresh restore.
fn terraform_commands(plan: &Plan) -> Vec<Vec<String>> {
    let terraform = crate::tfstate::terraform_bin();
    let mut commands = vec![vec![
        terraform.clone(),
        "init".into(),
        "-input=false".into(),
    ]];
    if plan.backend.is_some() {
        // Terraform's own push refuses another lineage or an older serial than the backend's.
        commands.push(vec![
            terraform.clone(),
            "state".into(),
            "push".into(),
            plan.state_file.clone(),
        ]);
    }
    let mut apply = vec![
        terraform,
        "apply".into(),
        "-input=false".into(),
        "-auto-approve".into(),
    ];
    apply.extend(plan.drills.iter().map(|d| format!("-replace={d}")));
    commands.push(apply);
    commands
}

/// Each drill's status after the apply, from `terraform show -json`.
fn drill_results(dir: &Path) -> Vec<(String, String)> {
    let terraform = crate::tfstate::terraform_bin();
    let Ok(out) = Command::new(terraform)
        .args(["show", "-json"])
        .current_dir(dir)
        .output()
    else {
        return Vec::new();
    };
    tfstate::resources(&out.stdout, "terraform show -json")
        .unwrap_or_default()
        .into_iter()
        .filter(|r| r.kind == "dr_drill")
        .map(|r| {
            let status = r.str("status").unwrap_or("unknown").to_string();
            (r.address, status)
        })
        .collect()
}

/// The `--json` output: the plan, and what was done of it.
#[derive(serde::Serialize)]
struct Report<'a> {
    vault: &'a str,
    into: &'a Path,
    state: StateRestore<'a>,
    configuration: Vec<&'a String>,
    backend: &'a Option<String>,
    pipeline: Option<PipelineReport<'a>>,
    failovers: &'a [plan::Failover],
    manual: &'a [String],
    waiting: &'a [String],
    commands: &'a [Vec<String>],
    dry_run: bool,
    applied: bool,
    drills: Vec<DrillReport<'a>>,
    seconds: f64,
}

#[derive(serde::Serialize)]
struct StateRestore<'a> {
    snapshot: &'a str,
    #[serde(serialize_with = "dr_vault::clock::serialize_nanos")]
    time: time::OffsetDateTime,
    file: &'a str,
    meta: &'a crate::state::StateMeta,
}

#[derive(serde::Serialize)]
struct PipelineReport<'a> {
    snapshot: &'a str,
    #[serde(serialize_with = "dr_vault::clock::serialize_nanos")]
    time: time::OffsetDateTime,
    sources: Vec<PipelineSource<'a>>,
}

#[derive(serde::Serialize)]
struct PipelineSource<'a> {
    name: &'a str,
    path: &'a Path,
}

#[derive(serde::Serialize)]
struct DrillReport<'a> {
    address: &'a str,
    status: &'a str,
}

impl<'a> Report<'a> {
    /// `applied` is `None` in a dry run.
    fn new(
        plan: &'a Plan,
        into: &'a Path,
        commands: &'a [Vec<String>],
        applied: Option<bool>,
        drills: &'a [(String, String)],
        started: Instant,
    ) -> Self {
        Report {
            vault: &plan.vault,
            into,
            state: StateRestore {
                snapshot: &plan.state_snapshot.id,
                time: plan.state_snapshot.time,
                file: &plan.state_file,
                meta: &plan.state,
            },
            configuration: plan.config.keys().collect(),
            backend: &plan.backend,
            pipeline: plan.pipeline.as_ref().map(|p| PipelineReport {
                snapshot: &p.snapshot.id,
                time: p.snapshot.time,
                sources: p
                    .sources
                    .iter()
                    .map(|(name, path)| PipelineSource { name, path })
                    .collect(),
            }),
            failovers: &plan.failovers,
            manual: &plan.manual,
            waiting: &plan.waiting,
            commands,
            dry_run: applied.is_none(),
            applied: applied.unwrap_or(false),
            drills: drills
                .iter()
                .map(|(address, status)| DrillReport { address, status })
                .collect(),
            seconds: started.elapsed().as_secs_f64(),
        }
    }
}

/// Human output. With --json, everything but the final report goes to stderr (Terraform's
/// output included) so stdout stays one JSON document.
struct Log {
    json: bool,
}

impl Log {
    fn line(&mut self, text: &str) {
        if self.json {
            eprintln!("{text}");
        } else {
            println!("{text}");
        }
    }

    fn plan(&mut self, plan: &Plan, into: &Path, commands: &[Vec<String>], apply: bool) {
        let commands: Vec<String> = commands.iter().map(|c| c.join(" ")).collect();
        self.line(&format!(
            "rebuild from {} into {}:",
            plan.vault,
            into.display()
        ));
        let mut steps = vec![format!(
            "restore Terraform state serial {} (lineage {}, {} resources, pushed {}) into {}",
            plan.state.serial,
            plan.state.lineage,
            plan.state.resources,
            output::time(plan.state_snapshot.time),
            plan.state_file
        )];
        if !plan.config.is_empty() {
            steps.push(format!(
                "restore the configuration: {}",
                plan.config.keys().cloned().collect::<Vec<_>>().join(", ")
            ));
        }
        if let Some(p) = &plan.pipeline {
            let places: Vec<String> = p
                .sources
                .iter()
                .map(|(n, place)| format!("{n} -> {}/", place.display()))
                .collect();
            steps.push(format!(
                "restore pipeline snapshot {} (taken {}): {}",
                &p.snapshot.id[..12],
                output::time(p.snapshot.time),
                places.join(", ")
            ));
        }
        for f in &plan.failovers {
            steps.push(match &f.edit {
                failover::Edit::Literal { file } => format!(
                    "fail over {}: active \"{}\" -> \"{}\" in {file}",
                    f.address, f.from, f.to
                ),
                failover::Edit::Variable { variable } => format!(
                    "fail over {}: active \"{}\" -> \"{}\" by var.{variable} in {}",
                    f.address,
                    f.from,
                    f.to,
                    failover::TFVARS
                ),
                failover::Edit::AlreadySet { file } => {
                    format!("{}: {file} already makes \"{}\" active", f.address, f.to)
                }
            });
        }
        if apply {
            steps.extend(commands);
        } else {
            steps.push(format!("with --apply: {}", commands.join(", then ")));
        }
        for (n, step) in steps.iter().enumerate() {
            self.line(&format!("  {}. {step}", n + 1));
        }
        for m in &plan.manual {
            self.line(&format!("  to do by hand: {m}"));
        }
        for w in &plan.waiting {
            self.line(&format!("  waiting for its region: {w}"));
        }
    }

    /// Runs one Terraform command in `dir`, its output streamed through.
    fn run(&mut self, command: &[String], dir: &Path) -> Result<(), String> {
        self.line(&format!("==> {}", command.join(" ")));
        let step = Instant::now();
        let stdout = if self.json {
            Stdio::from(std::io::stderr())
        } else {
            Stdio::inherit()
        };
        let status = Command::new(&command[0])
            .args(&command[1..])
            .current_dir(dir)
            .env("TF_IN_AUTOMATION", "1")
            .stdin(Stdio::null())
            .stdout(stdout)
            .status()
            .map_err(|e| {
                format!(
                    "cannot run {:?}: {e} (set TERRAFORM to its path)",
                    command[0]
                )
            })?;
        if !status.success() {
            return Err(format!("`{}` failed ({status})", command[1..].join(" ")));
        }
        self.line(&format!(
            "==> {} done in {:.1}s",
            command[1],
            step.elapsed().as_secs_f64()
        ));
        Ok(())
    }
}
