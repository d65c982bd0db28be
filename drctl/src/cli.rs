//! The command line: every command, flag and environment variable, with the help users read.

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

pub const EXIT_STATUS_HELP: &str = "\
Exit status:
  0  success
  1  the operation failed, or verify found problems (each is named)
  2  usage or input error: a bad flag, URL, path or option; nothing was changed
  3  no vault (or snapshot) where one was expected
  4  wrong passphrase: no key of the vault opens with it
  5  the vault is locked by another operation (a snapshot or prune); retry later

Environment:
  DR_VAULT       the vault URL when --vault is not given
  DR_PASSPHRASE  the vault passphrase when --passphrase-file is not given
  AWS_*, GOOGLE_*, AZURE_*  object-store credentials (never passed as flags)";

#[derive(Parser, Debug)]
#[command(name = "drctl", version, about = "Disaster recovery for CI/CD systems: vaults, state backups, plan checks", after_help = EXIT_STATUS_HELP)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Work with a backup vault directly (restic-like).
    #[command(after_help = format!("{VAULT_EXAMPLES}\n\n{EXIT_STATUS_HELP}"))]
    Vault(VaultArgs),
    /// Back up and restore Terraform state in a vault, with lineage and serial safety.
    State(StateArgs),
    /// Policy checks over a plan (`terraform show -json PLANFILE`), for CI.
    #[command(after_help = format!("Rules (disable any with --disable ID):\n{}{CHECK_HELP}", crate::check::rule_table()))]
    Check(CheckArgs),
    /// DR posture from Terraform state and the vaults: snapshot ages, replication lag against
    /// rpo, drill results against max_age and targets. Exit 1 when anything is out of policy.
    #[command(after_help = STATUS_HELP)]
    Status(StatusArgs),
    /// After a disaster: restore the root module (configuration + state) and the newest
    /// pipeline snapshot from the standby vault into a new directory, fail the region pairs
    /// over to it, and with --apply run `terraform init` and `terraform apply` there.
    #[command(after_help = REBUILD_HELP)]
    Rebuild(RebuildArgs),
    /// The DR posture as one self-contained HTML page, with plots over the recorded history:
    /// replication lag against each pair's RPO, each drill's restore time and data age against
    /// its RTO and RPO, each vault's logical and stored bytes.
    #[command(after_help = REPORT_HELP)]
    Report(ReportArgs),
    /// A restore drill outside Terraform (cron, pipelines): restore a snapshot, check every
    /// file, run a command in the tree, measure restore time and data age against the targets,
    /// and write the report into the vault as dr_drill does.
    #[command(after_help = DRILL_HELP)]
    Drill(DrillArgs),
    /// The on-call runbook as Markdown, from Terraform state: what is protected where, each
    /// pair's RPO/RTO and guarding drill, and the exact commands to fail over and rebuild.
    #[command(after_help = RUNBOOK_HELP)]
    Runbook(RunbookArgs),
    /// Prometheus alerting rules for the metrics of `drctl status --format prometheus`.
    #[command(after_help = ALERTS_HELP)]
    Alerts(AlertsArgs),
    /// Write a ready multi-region module: the provider, a vault in each region, a region pair
    /// replicating the primary to the secondary, and a drill restoring from the secondary.
    #[command(after_help = SCAFFOLD_HELP)]
    Scaffold(ScaffoldArgs),
}

pub const REPORT_HELP: &str = "\
The page needs no network: its style and its plots (SVG) are inline, with no script. The
findings at its top are those of `drctl status`. Plots start from what the vaults record:
each replication's lag (recorded by the destination), each drill run's report (drills/NAME/
in the vault it restored from) and each snapshot's stored bytes (recorded since this
version; older snapshots show their logical size only).

Examples:
  drctl report --dir infra/dr --out dr-report.html
  drctl report --state terraform.tfstate --out /var/www/dr/index.html   # from cron

Exit status:
  0  written (whatever the posture: the page says it; `drctl status` exits 1 on findings)
  1  a plot could not be drawn
  2  usage or input error: not a state, no dr_* resources, no passphrase, --out exists and
     is not a report drctl wrote (without --force), or cannot be written

Environment:
  DR_PASSPHRASE  the vaults' passphrase (or --passphrase-file)
  TERRAFORM      the terraform binary for --dir (default: terraform on PATH)";

#[derive(Args, Debug)]
pub struct ReportArgs {
    /// A state file, or the output of `terraform show -json`.
    #[arg(long, value_name = "FILE", conflicts_with = "dir")]
    pub state: Option<PathBuf>,
    /// A Terraform root module: its state is read with `terraform show -json`.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// Where to write the page (replaced atomically when it is a report drctl wrote).
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
    /// Replace --out even when it is not a report drctl wrote.
    #[arg(long)]
    pub force: bool,
    #[command(flatten)]
    pub output: OutputFlags,
    #[command(flatten)]
    pub access: VaultAccess,
}

pub const DRILL_HELP: &str = "\
The report goes into the vault under drills/NAME/, as dr_drill's do: `drctl status` and
`drctl report` show the run, and when it ran the dr_drill's own check (--verify-command as
its verify_command's `sh -c` text) with the same targets, the next refresh of the dr_drill
named NAME on that vault takes it as its last run (its max_age counts from the newest run,
wherever it ran). The check runs
with `sh -c` in the restored tree, in a clean environment (PATH, HOME, USER, LANG, LC_ALL,
TZ, TMPDIR, SHELL, plus DR_RESTORE_DIR and DR_SNAPSHOT_ID); the passphrase is redacted from
what it prints. The restored tree is deleted afterwards unless --keep-restore.

Examples:
  drctl drill --vault s3://dr-us/pipelines --name nightly --rpo 24h --rto 15m \\
    --verify-command 'test -s pipeline/ci.yml && sh -n pipeline/scripts/deploy.sh'
  0 3 * * *  drctl drill --vault /srv/dr/us-east-1 --name nightly --rpo 24h   # crontab

Exit status:
  0  the drill passed: restored, every file matched, the check exited 0, targets met
  1  the drill failed, a missing snapshot included (each reason is printed; the report is
     in the vault)
  2  usage error: a bad flag or duration, no passphrase
  3  no vault at --vault
  4  wrong passphrase

Environment:
  DR_VAULT       the vault URL when --vault is not given
  DR_PASSPHRASE  the vault passphrase when --passphrase-file is not given";

#[derive(Args, Debug)]
pub struct DrillArgs {
    /// The vault restored from (usually the standby): a path, file://, s3://, gs:// or az://.
    #[arg(long, env = "DR_VAULT", value_name = "URL")]
    pub vault: Option<String>,
    /// The drill's name: its reports go under drills/NAME/ (a dr_drill's `name`).
    #[arg(long)]
    pub name: String,
    /// The snapshot to restore (an id or unique prefix); default: the newest.
    #[arg(long, value_name = "ID")]
    pub snapshot: Option<String>,
    /// The recovery point objective: the restored data may be at most this old.
    #[arg(long, value_name = "DURATION")]
    pub rpo: Option<String>,
    /// The recovery time objective: the restore may take at most this long.
    #[arg(long, value_name = "DURATION")]
    pub rto: Option<String>,
    /// A shell command run inside the restored tree (`sh -c`); exit 0 passes.
    #[arg(long, value_name = "COMMAND")]
    pub verify_command: Option<String>,
    /// How long the command may run before it (and all it started) is killed.
    #[arg(long, value_name = "DURATION", default_value = "10m")]
    pub verify_timeout: String,
    /// Restore here (missing, empty, or a previous drill's) instead of a new private
    /// directory under --work-dir.
    #[arg(long, value_name = "DIR")]
    pub restore_dir: Option<std::path::PathBuf>,
    /// Where private restore directories are made (owner-only); default: <temp>/drctl-drill-UID.
    #[arg(long, value_name = "DIR", conflicts_with = "restore_dir")]
    pub work_dir: Option<std::path::PathBuf>,
    /// Keep the restored tree (its path is in the report).
    #[arg(long)]
    pub keep_restore: bool,
    #[command(flatten)]
    pub output: OutputFlags,
    #[command(flatten)]
    pub access: VaultAccess,
}

pub const RUNBOOK_HELP: &str = "\
The runbook holds what changes with the configuration (vaults, sources, retention, pairs,
targets, drills, and the commands for this module), never a run's result or a time: commit
it, and let CI fail when it no longer matches the configuration.

Examples:
  drctl runbook --dir infra/dr --out docs/dr-runbook.md
  drctl runbook --dir infra/dr --check docs/dr-runbook.md     # in CI

Exit status:
  0  written, printed, or (--check) up to date
  1  (--check) the committed runbook no longer matches the configuration: the first
     difference is printed
  2  usage or input error: not a state, no dr_* resources, --out exists and is not a
     runbook drctl wrote (without --force), or a file cannot be read or written";

#[derive(Args, Debug)]
pub struct RunbookArgs {
    /// A state file, or the output of `terraform show -json`.
    #[arg(long, value_name = "FILE", conflicts_with = "dir")]
    pub state: Option<PathBuf>,
    /// A Terraform root module: its state is read with `terraform show -json`.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// Write the runbook to FILE instead of printing it.
    #[arg(long, value_name = "FILE", conflicts_with = "check")]
    pub out: Option<PathBuf>,
    /// Replace --out even when it is not a runbook drctl wrote.
    #[arg(long, requires = "out")]
    pub force: bool,
    /// Compare with a committed runbook instead: exit 1 when it is out of date.
    #[arg(long, value_name = "FILE")]
    pub check: Option<PathBuf>,
}

pub const ALERTS_HELP: &str = "\
The rules (group dr-posture), each naming the resource in its `address` label:
  DrStandbyLagOverRpo   critical  a pair's standby lags more than its rpo, for 10m
  DrStandbyLagNearRpo   warning   ... more than 80% of its rpo, for 30m
  DrVaultUnreachable    critical  a vault cannot be opened or listed, for 15m
  DrDrillFailed         critical  a drill's last run failed, for 5m
  DrDrillStale          warning   a drill's last run is older than its max_age, for 1h
  DrDrillRtoMissed      warning   a drill's last restore took longer than its rto, for 5m
  DrDrillRpoMissed      warning   a drill restored data older than its rpo, for 5m
  DrStatusNotReported   warning   no `drctl status` check for an hour (the job stopped)

They read what `drctl status --format prometheus` writes; run it from cron into the node
exporter's textfile directory (see `drctl status --help`).

Examples:
  drctl alerts > /etc/prometheus/rules/dr.yml
  drctl alerts --out rules/dr.yml && promtool check rules rules/dr.yml

Exit status:
  0  printed or written
  2  --out exists (without --force) or cannot be written";

#[derive(Args, Debug)]
pub struct AlertsArgs {
    /// Write the rules to FILE instead of printing them.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Replace an existing --out file.
    #[arg(long, requires = "out")]
    pub force: bool,
}

pub const SCAFFOLD_HELP: &str = "\
The module is formatted like `terraform fmt` and passes `terraform validate`. Retention keeps
30 snapshots with a 7-day lock; the drill's max_age is the rpo, so `drctl check` finds
nothing to report on it.

Examples:
  drctl scaffold --primary-region eu-west-1 --secondary-region us-east-1 \\
    --vault-url-primary s3://dr-eu/pipelines --vault-url-secondary s3://dr-us/pipelines \\
    --source ci --source scripts --out infra/dr
  drctl scaffold … > main.tf          # without --out the module goes to stdout

Exit status:
  0  written
  2  a bad flag (same regions or URLs, a bad name or duration), or --out/main.tf exists";

#[derive(Args, Debug)]
pub struct ScaffoldArgs {
    /// The primary vault's region label, e.g. eu-west-1.
    #[arg(long, value_name = "REGION")]
    pub primary_region: String,
    /// The secondary vault's region label; must differ from the primary's.
    #[arg(long, value_name = "REGION")]
    pub secondary_region: String,
    /// The primary vault's URL (a path, s3://, gs://, az://).
    #[arg(long, value_name = "URL")]
    pub vault_url_primary: String,
    /// The secondary vault's URL.
    #[arg(long, value_name = "URL")]
    pub vault_url_secondary: String,
    /// A file or directory to back up (relative to the module); repeatable.
    #[arg(long, value_name = "PATH", required = true)]
    pub source: Vec<String>,
    /// The pair's name; vaults are named NAME-REGION.
    #[arg(long, default_value = "pipelines")]
    pub name: String,
    /// The recovery point objective: the most data, in time, a disaster may lose.
    #[arg(long, default_value = "1h", value_name = "DURATION")]
    pub rpo: String,
    /// The recovery time objective: how long a restore may take.
    #[arg(long, default_value = "30m", value_name = "DURATION")]
    pub rto: String,
    /// Write DIR/main.tf instead of printing the module.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Replace an existing DIR/main.tf.
    #[arg(long)]
    pub force: bool,
}

pub const STATUS_HELP: &str = "\
Out of policy (each is listed, naming the resource):
  - a vault that cannot be opened or listed
  - a region pair whose standby lags behind the active side by more than its rpo, or whose
    vaults cannot be compared
  - a drill whose last run failed or never happened, is older than its max_age, or missed its
    rto or rpo (the last run is the newer of the state's and the report in the drill's vault)

Prometheus metrics (gauges; labels address, vault/pair/drill, region):
  dr_vault_up, dr_vault_snapshots, dr_vault_latest_snapshot_timestamp_seconds,
  dr_vault_latest_snapshot_age_seconds, dr_region_pair_replication_lag_seconds,
  dr_region_pair_rpo_seconds, dr_region_pair_rto_seconds, dr_region_pair_in_sync,
  dr_region_pair_secondary_active, dr_drill_passed, dr_drill_last_run_timestamp_seconds,
  dr_drill_age_seconds, dr_drill_max_age_seconds, dr_drill_restore_seconds,
  dr_drill_data_age_seconds, dr_drill_rto_met, dr_drill_rpo_met, dr_resource_in_policy,
  dr_status_problems, dr_status_timestamp_seconds (when the check ran)

Examples:
  drctl status --dir infra/dr                       # runs `terraform show -json` there
  drctl status --state terraform.tfstate --json
  drctl status --dir infra/dr --format prometheus > /var/lib/node_exporter/dr.prom

Exit status:
  0  everything within policy
  1  something is out of policy (listed)
  2  usage or input error: not a state, no dr_* resources, no passphrase

Environment:
  DR_PASSPHRASE  the vaults' passphrase (or --passphrase-file)
  TERRAFORM      the terraform binary for --dir (default: terraform on PATH)";

/// How drctl reaches vaults, shared by every command that opens one.
#[derive(Args, Debug, Clone)]
pub struct VaultAccess {
    /// Read the passphrase from this file (first line) instead of DR_PASSPHRASE.
    #[arg(long, global = true, value_name = "FILE")]
    pub passphrase_file: Option<PathBuf>,

    /// An object-store option (endpoint, region, allow_http, …) for the vaults opened
    /// (replicate's destination takes --to-option instead); repeatable.
    #[arg(long = "option", short = 'o', global = true, value_name = "KEY=VALUE", value_parser = parse_key_value)]
    pub options: Vec<(String, String)>,
}

/// `--json`, one flag for every command that prints for machines as well as for people.
#[derive(Args, Debug, Clone, Copy)]
pub struct OutputFlags {
    /// Print one JSON document on stdout instead of text (anything else goes to stderr).
    #[arg(long, global = true)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct StatusArgs {
    /// A state file, or the output of `terraform show -json`.
    #[arg(long, value_name = "FILE", conflicts_with = "dir")]
    pub state: Option<PathBuf>,
    /// A Terraform root module: its state is read with `terraform show -json`.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// Output format (--json is --format json).
    #[arg(long, value_enum, default_value = "table", conflicts_with = "json")]
    pub format: StatusFormat,
    #[command(flatten)]
    pub output: OutputFlags,
    #[command(flatten)]
    pub access: VaultAccess,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub enum StatusFormat {
    Table,
    Json,
    Prometheus,
}

pub const REBUILD_HELP: &str = "\
What it needs in the vault (usually the standby, which receives everything by replication):
  - a state version pushed with `drctl state push VAULT --dir ROOT_MODULE`, which keeps the
    module's *.tf, *.tfvars and .terraform.lock.hcl files with the state;
  - pipeline snapshots taken by a dr_backup_vault: each source is restored at the `path` the
    state gives it (inside the module), so the rebuilt configuration finds its data.

What it does, in order (printed first; --dry-run stops there):
  1. restore the newest state version (or --state-snapshot) and its configuration into --into;
     with a `backend` block the state goes to terraform.tfstate.restored and is pushed with
     `terraform state push`, which refuses another lineage or an older serial
  2. restore the newest pipeline snapshot
  3. set `active` of each dr_region_pair with this vault on one side to that side: the
     literal is edited in place (comments and layout kept) or, for `active = var.X`, X is set
     in drctl-rebuild.auto.tfvars; what cannot be edited is listed under \"to do by hand\"
  4. with --apply: terraform init -input=false, then terraform apply -auto-approve with
     -replace for every dr_drill, so the rebuilt setup is proven by a fresh drill; Terraform's
     output is streamed and the total time (the achieved recovery time) is printed

Examples:
  drctl rebuild --vault s3://dr-us/pipelines --into ./rebuilt --dry-run
  DR_PASSPHRASE=… drctl rebuild --vault s3://dr-us/pipelines --into ./rebuilt --apply

Exit status:
  0  rebuilt (with --apply: applied, every drill passed)
  1  terraform failed or a drill did not pass (the restored module stays in --into)
  2  usage error: --into is not empty, a bad flag or option; nothing was changed
  3  no vault at --vault, or no Terraform state in it
  4  wrong passphrase

Environment:
  DR_PASSPHRASE  the vault passphrase (also used by the provider during --apply)
  TERRAFORM      the terraform binary (default: terraform on PATH)";

#[derive(Args, Debug)]
pub struct RebuildArgs {
    /// The vault to rebuild from: the standby side of the region pair.
    #[arg(long, env = "DR_VAULT", value_name = "URL")]
    pub vault: String,
    /// The directory to rebuild the root module in; must be new or empty.
    #[arg(long, value_name = "DIR")]
    pub into: PathBuf,
    /// Run terraform init and apply in --into (the apply is approved by this flag).
    #[arg(long, conflicts_with = "dry_run")]
    pub apply: bool,
    /// Print the steps and change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Leave every pair's `active` as the restored configuration has it.
    #[arg(long)]
    pub no_failover: bool,
    /// The state version to rebuild from: a snapshot id or prefix (default: the newest).
    #[arg(long, value_name = "ID")]
    pub state_snapshot: Option<String>,
    #[command(flatten)]
    pub access: VaultAccess,
    // With --json the report is the JSON document, and Terraform's output goes to stderr.
    #[command(flatten)]
    pub output: OutputFlags,
}

pub const VAULT_EXAMPLES: &str = "\
Examples:
  export DR_PASSPHRASE=…      # or --passphrase-file FILE; never a prompt
  drctl vault --vault ./vault init --name primary --region eu-west-1
  drctl vault --vault ./vault snapshot --source pipelines=./ci --source state=./prod.tfstate
  drctl vault --vault ./vault snapshots
  drctl vault --vault ./vault restore latest --target ./rebuilt
  drctl vault --vault ./vault verify --read-data
  drctl vault --vault ./vault prune --keep-last 30 --keep-within 14d --lock-for 7d --dry-run
  drctl vault --vault ./vault replicate --to s3://dr-standby/ci";

/// After the rule table, which is generated from the rules themselves.
pub const CHECK_HELP: &str = "\
Values unknown until apply are skipped, never guessed.

Examples:
  terraform plan -out plan.tfplan && terraform show -json plan.tfplan > plan.json
  drctl check plan.json
  drctl check plan.json --format sarif > drctl.sarif     # upload to code scanning
  drctl check plan.json --format github --disable DR004  # annotations in GitHub Actions

Exit status:
  0  no error-level violation (warnings are printed)
  1  at least one error-level violation
  2  the input is unreadable, not JSON, not a plan, or has no dr_* resources; or a bad flag";

#[derive(Args, Debug)]
pub struct CheckArgs {
    /// The plan as JSON: the output of `terraform show -json PLANFILE`.
    pub plan: PathBuf,
    /// Output format.
    #[arg(long, value_enum, default_value = "text")]
    pub format: CheckFormat,
    /// Skip a rule by ID (e.g. DR004); repeatable.
    #[arg(long, value_name = "ID")]
    pub disable: Vec<String>,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub enum CheckFormat {
    Text,
    Json,
    Junit,
    Sarif,
    Github,
}

#[derive(Args, Debug)]
pub struct StateArgs {
    #[command(flatten)]
    pub access: VaultAccess,
    #[command(flatten)]
    pub output: OutputFlags,

    #[command(subcommand)]
    pub command: StateCommand,
}

pub const STATE_EXAMPLES: &str = "\
Which version is current: Terraform's order, never the clock. The current lineage is the one
of the newest version pushed with --force (without any, the first version's); within it the
highest serial is current (a version forced since counts from there). `push` refuses an older
serial, the same serial with other content, or another lineage, and `pull` refuses to replace
a file of a newer serial or another lineage, both with exit status 1, unless --force.

Examples:
  drctl state push s3://dr-eu/state --dir infra/prod      # runs `terraform state pull` there
  drctl state push ./vault --state terraform.tfstate
  drctl state history ./vault
  drctl state pull ./vault --out terraform.tfstate        # refuses newer serials / other lineages
  drctl state pull ./vault --snapshot 3fa2 --out old.tfstate --force";

#[derive(Subcommand, Debug)]
pub enum StateCommand {
    /// Back up Terraform state into VAULT: from --state FILE, or `terraform state pull` run in
    /// --dir (any backend), keeping the module's configuration files with it for `drctl
    /// rebuild`. Records lineage, serial and Terraform version; pushing state and
    /// configuration identical to the current version is a no-op. Refuses an older serial or
    /// another lineage than the current version's unless --force (exit 1).
    #[command(after_help = format!("{STATE_EXAMPLES}\n\n{EXIT_STATUS_HELP}"))]
    Push(StatePushArgs),
    /// Restore the current state version (the highest serial of the current lineage, or
    /// --snapshot) into --out. Refuses to replace a file of another lineage or a newer serial
    /// unless --force (exit 1); always keeps a backup of it.
    #[command(after_help = format!("{STATE_EXAMPLES}\n\n{EXIT_STATUS_HELP}"))]
    Pull(StatePullArgs),
    /// List the state versions: serial, lineage, time, resource count; `*` marks the current.
    #[command(after_help = format!("{STATE_EXAMPLES}\n\n{EXIT_STATUS_HELP}"))]
    History(StateHistoryArgs),
}

#[derive(Args, Debug)]
pub struct StatePushArgs {
    /// The vault URL (a path, file://, s3://, gs://, az://).
    pub vault: String,
    /// A state file to back up.
    #[arg(long, value_name = "FILE", conflicts_with = "dir")]
    pub state: Option<PathBuf>,
    /// A Terraform working directory: its state is read with `terraform state pull`
    /// ($TERRAFORM or terraform on PATH), and its configuration files (*.tf, *.tf.json,
    /// *.tfvars, .terraform.lock.hcl) are kept with it for `drctl rebuild`.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// With --state: the root module whose configuration files are kept with the state.
    #[arg(long, value_name = "DIR", requires = "state")]
    pub config: Option<PathBuf>,
    /// Push even an older serial or another lineage than the current version's; the pushed
    /// version becomes the current one (as `terraform state push -force` does).
    #[arg(long)]
    pub force: bool,
}

#[derive(Args, Debug)]
pub struct StatePullArgs {
    /// The vault URL.
    pub vault: String,
    /// Where to write the state.
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
    /// A state version: a snapshot id or a unique prefix (default: the current version).
    #[arg(long, value_name = "ID")]
    pub snapshot: Option<String>,
    /// Replace --out even when it holds a newer serial or another lineage (a backup is kept).
    #[arg(long)]
    pub force: bool,
}

#[derive(Args, Debug)]
pub struct StateHistoryArgs {
    /// The vault URL.
    pub vault: String,
}

#[derive(Args, Debug)]
pub struct VaultArgs {
    /// The vault: a path, file:///…, s3://bucket/prefix, gs://bucket/prefix or az://container/prefix.
    #[arg(long, env = "DR_VAULT", global = true, value_name = "URL")]
    pub vault: Option<String>,

    #[command(flatten)]
    pub access: VaultAccess,
    #[command(flatten)]
    pub output: OutputFlags,

    #[command(subcommand)]
    pub command: VaultCommand,
}

#[derive(Subcommand, Debug)]
pub enum VaultCommand {
    /// Create a vault at --vault. Refuses when one exists there.
    #[command(after_help = format!("Example:\n  drctl vault --vault s3://dr-eu/pipelines -o region=eu-west-1 init --name pipelines-eu --region eu-west-1\n\n{EXIT_STATUS_HELP}"))]
    Init(InitArgs),
    /// Take a snapshot of one or more sources. Unchanged files (size, mtime, mode) are not re-read.
    #[command(after_help = format!("Example:\n  drctl vault --vault ./vault snapshot --source pipeline=./ci --exclude '**/*.log' --label team=platform\n\n{EXIT_STATUS_HELP}"))]
    Snapshot(SnapshotArgs),
    /// List the snapshots, oldest first.
    #[command(after_help = format!("Example:\n  drctl vault --vault ./vault snapshots --json\n\n{EXIT_STATUS_HELP}"))]
    Snapshots,
    /// Restore a snapshot into a new or empty directory; never writes outside it.
    #[command(after_help = format!("Example:\n  drctl vault --vault ./vault restore latest --target ./restored\n  drctl vault --vault ./vault restore 3fa2 --source pipeline --target ./ci-restored\n\n{EXIT_STATUS_HELP}"))]
    Restore(RestoreArgs),
    /// Check the vault's structure; with --read-data, decrypt and re-hash every blob.
    #[command(after_help = format!("Example:\n  drctl vault --vault s3://dr-us/pipelines verify --read-data\n\n{EXIT_STATUS_HELP}"))]
    Verify(VerifyArgs),
    /// Remove snapshots the retention policy lets go, then the data only they used. Prints the
    /// plan first; --dry-run stops there. Snapshots younger than --lock-for are never removed.
    #[command(after_help = format!("Example:\n  drctl vault --vault ./vault prune --keep-last 30 --keep-within 14d --lock-for 7d --dry-run\n\n{EXIT_STATUS_HELP}"))]
    Prune(PruneArgs),
    /// Copy every snapshot the standby vault --to lacks (only missing data moves); a re-run
    /// after an interruption finishes the job. The standby restores on its own.
    #[command(after_help = format!("Example:\n  drctl vault --vault s3://dr-eu/pipelines replicate --to s3://dr-us/pipelines --dry-run\n\n{EXIT_STATUS_HELP}"))]
    Replicate(ReplicateArgs),
}

#[derive(Args, Debug)]
pub struct ReplicateArgs {
    /// The destination vault URL.
    #[arg(long, value_name = "URL")]
    pub to: String,
    /// The destination's passphrase file; default: the same passphrase as the source.
    #[arg(long, value_name = "FILE")]
    pub to_passphrase_file: Option<PathBuf>,
    /// An object-store option for the destination (it does not take those of --option, which
    /// are the source's: the stores may differ); repeatable.
    #[arg(long = "to-option", value_name = "KEY=VALUE", value_parser = parse_key_value)]
    pub to_options: Vec<(String, String)>,
    /// Print what would be copied and change nothing.
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Args, Debug)]
pub struct PruneArgs {
    /// Keep the newest N snapshots.
    #[arg(long, value_name = "N")]
    pub keep_last: Option<usize>,
    /// Keep snapshots younger than this (e.g. 7d, 12h).
    #[arg(long, value_name = "DURATION")]
    pub keep_within: Option<String>,
    /// Never remove snapshots younger than this, whatever else is asked (e.g. 30d).
    #[arg(long, value_name = "DURATION")]
    pub lock_for: Option<String>,
    /// Print the plan and change nothing.
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Args, Debug)]
pub struct InitArgs {
    /// The vault's name ([a-z0-9-], 1–63 characters).
    #[arg(long)]
    pub name: String,
    /// A region label, e.g. eu-west-1.
    #[arg(long)]
    pub region: String,
    /// A label stored with the vault; repeatable.
    #[arg(long = "label", value_name = "KEY=VALUE", value_parser = parse_key_value)]
    pub labels: Vec<(String, String)>,
    /// Make a standby that shares the master key (and chunking) of the vault at URL, opened
    /// with --key-from-passphrase-file or this vault's passphrase. Replication between the two
    /// then copies packs as they are, at the speed of a plain copy; the price: whoever learns
    /// the key of one opens both, and a key rotation cannot separate them.
    #[arg(long, value_name = "URL")]
    pub key_from: Option<String>,
    /// The passphrase file of the --key-from vault; default: the same passphrase as this one.
    #[arg(long, value_name = "FILE", requires = "key_from")]
    pub key_from_passphrase_file: Option<PathBuf>,
    /// An object-store option for the --key-from vault (not those of --option); repeatable.
    #[arg(long = "key-from-option", value_name = "KEY=VALUE", value_parser = parse_key_value, requires = "key_from")]
    pub key_from_options: Vec<(String, String)>,
}

#[derive(Args, Debug)]
pub struct SnapshotArgs {
    /// A source as NAME=PATH (a file or a directory); repeatable, names unique.
    #[arg(long = "source", value_name = "NAME=PATH", value_parser = parse_key_value, required = true)]
    pub sources: Vec<(String, String)>,
    /// Only files matching this glob (relative to each source); repeatable.
    #[arg(long)]
    pub include: Vec<String>,
    /// Skip paths matching this glob (a matching directory with everything under it); repeatable.
    #[arg(long)]
    pub exclude: Vec<String>,
    /// A label stored with the snapshot; repeatable.
    #[arg(long = "label", value_name = "KEY=VALUE", value_parser = parse_key_value)]
    pub labels: Vec<(String, String)>,
}

#[derive(Args, Debug)]
pub struct RestoreArgs {
    /// The snapshot: an id, a unique prefix of one, or "latest".
    #[arg(default_value = "latest")]
    pub snapshot: String,
    /// Where to restore; must be missing or empty.
    #[arg(long)]
    pub target: PathBuf,
    /// Restore only this source, directly into --target.
    #[arg(long)]
    pub source: Option<String>,
}

#[derive(Args, Debug)]
pub struct VerifyArgs {
    /// Also download, decrypt and re-hash every blob.
    #[arg(long)]
    pub read_data: bool,
}

fn parse_key_value(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => Err(format!("expected KEY=VALUE, got {s:?}")),
    }
}
