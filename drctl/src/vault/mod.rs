//! `drctl vault …`: the vault engine from the shell. One file per command.

mod init;
mod prune;
mod replicate;
mod restore;
mod snapshot;
mod snapshots;
mod verify;

use crate::cli::{VaultAccess, VaultArgs, VaultCommand};
use crate::output::{self, CliError, Outcome};
use dr_vault::{Passphrase, Storage, Vault};
use std::collections::BTreeMap;

/// Runs a vault command.
pub async fn run(args: VaultArgs) -> Outcome {
    let Some(url) = args.vault.clone() else {
        return Err(CliError::usage(
            "no vault given",
            "pass --vault URL or set DR_VAULT",
        ));
    };
    let ctx = Context::new(url, &args.access, args.output.json);
    match args.command {
        VaultCommand::Init(a) => init::run(&ctx, a).await,
        VaultCommand::Snapshot(a) => snapshot::run(&ctx, a).await,
        VaultCommand::Snapshots => snapshots::run(&ctx).await,
        VaultCommand::Restore(a) => restore::run(&ctx, a).await,
        VaultCommand::Verify(a) => verify::run(&ctx, a).await,
        VaultCommand::Prune(a) => prune::run(&ctx, a).await,
        VaultCommand::Replicate(a) => replicate::run(&ctx, a).await,
    }
}

/// The `--json` output of `prune` and `replicate`: the plan, and what executing it did
/// (absent in a dry run).
#[derive(serde::Serialize)]
pub struct PlanAndSummary<P, S> {
    pub plan: P,
    pub dry_run: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub summary: Option<S>,
}

/// The end of a `--dry-run` of prune or replicate: the plan (already printed as text) as
/// JSON when asked for, and success.
pub fn dry_run_done<P: serde::Serialize>(ctx: &Context, plan: P) -> Outcome {
    if ctx.json {
        output::json(&PlanAndSummary::<_, ()> {
            plan,
            dry_run: true,
            summary: None,
        })?;
    }
    Ok(output::EXIT_OK)
}

/// What every vault command needs.
pub struct Context {
    pub url: String,
    pub options: BTreeMap<String, String>,
    pub json: bool,
    pub passphrase_file: Option<std::path::PathBuf>,
}

impl Context {
    pub fn new(url: String, access: &VaultAccess, json: bool) -> Self {
        Context {
            url,
            options: access.options.iter().cloned().collect(),
            json,
            passphrase_file: access.passphrase_file.clone(),
        }
    }

    /// Another vault a command opens (replicate's destination, init's --key-from): only its
    /// own options (the stores may differ: another service, or the real AWS behind an S3
    /// emulator, where this vault's endpoint or region would be wrong), and its passphrase
    /// file, else this vault's passphrase.
    pub fn other(
        &self,
        url: &str,
        options: &[(String, String)],
        passphrase_file: Option<&std::path::PathBuf>,
    ) -> Context {
        Context {
            url: url.to_string(),
            options: options.iter().cloned().collect(),
            json: self.json,
            passphrase_file: passphrase_file.or(self.passphrase_file.as_ref()).cloned(),
        }
    }

    /// The passphrase from --passphrase-file, else DR_PASSPHRASE; never from a prompt, so
    /// drctl runs unattended in CI.
    pub fn passphrase(&self) -> Result<Passphrase, CliError> {
        if let Some(path) = &self.passphrase_file {
            return match std::fs::read_to_string(path) {
                Ok(text) => match text.lines().next().filter(|l| !l.is_empty()) {
                    Some(line) => Ok(Passphrase::new(line)),
                    None => Err(CliError::usage(
                        format!("passphrase file {} is empty", path.display()),
                        "put the passphrase on its first line",
                    )),
                },
                Err(e) => Err(CliError::usage(
                    format!("cannot read passphrase file {}: {e}", path.display()),
                    "check the path and its permissions",
                )),
            };
        }
        match std::env::var("DR_PASSPHRASE") {
            Ok(p) if !p.is_empty() => Ok(Passphrase::new(p)),
            _ => Err(CliError::usage(
                "no passphrase given",
                "set DR_PASSPHRASE or pass --passphrase-file FILE",
            )),
        }
    }

    pub fn storage(&self, create: bool) -> Result<Storage, CliError> {
        let cwd = std::env::current_dir().unwrap_or_default();
        Ok(Storage::open(&self.url, &self.options, &cwd, create)?)
    }

    /// Opens the vault with the passphrase.
    pub async fn open(&self) -> Result<Vault, CliError> {
        let passphrase = self.passphrase()?;
        let storage = self.storage(false)?;
        Ok(Vault::open(storage, &passphrase).await?)
    }
}
