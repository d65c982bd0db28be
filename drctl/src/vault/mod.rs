//! `drctl vault …`: the vault engine from the shell. One file per command.

mod init;
mod prune;
mod replicate;
mod restore;
mod snapshot;
mod snapshots;
mod verify;

use crate::cli::{VaultArgs, VaultCommand};
use crate::output;
use dr_vault::{Passphrase, Storage, Vault};
use std::collections::BTreeMap;

/// Runs a vault command; returns the exit code.
pub async fn run(args: VaultArgs) -> u8 {
    let Some(url) = args.vault.clone() else {
        return output::usage("no vault given", "pass --vault URL or set DR_VAULT");
    };
    let ctx = Context {
        url,
        options: args.options.iter().cloned().collect(),
        json: args.json,
        passphrase_file: args.passphrase_file,
    };
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

/// What every vault command needs.
pub struct Context {
    pub url: String,
    pub options: BTreeMap<String, String>,
    pub json: bool,
    pub passphrase_file: Option<std::path::PathBuf>,
}

impl Context {
    /// The passphrase from --passphrase-file, else DR_PASSPHRASE; never from a prompt, so
    /// drctl runs unattended in CI.
    pub fn passphrase(&self) -> Result<Passphrase, u8> {
        if let Some(path) = &self.passphrase_file {
            return match std::fs::read_to_string(path) {
                Ok(text) => match text.lines().next().filter(|l| !l.is_empty()) {
                    Some(line) => Ok(Passphrase::new(line)),
                    None => Err(output::usage(
                        &format!("passphrase file {} is empty", path.display()),
                        "put the passphrase on its first line",
                    )),
                },
                Err(e) => Err(output::usage(
                    &format!("cannot read passphrase file {}: {e}", path.display()),
                    "check the path and its permissions",
                )),
            };
        }
        match std::env::var("DR_PASSPHRASE") {
            Ok(p) if !p.is_empty() => Ok(Passphrase::new(p)),
            _ => Err(output::usage(
                "no passphrase given",
                "set DR_PASSPHRASE or pass --passphrase-file FILE",
            )),
        }
    }

    pub fn storage(&self, create: bool) -> Result<Storage, u8> {
        let cwd = std::env::current_dir().unwrap_or_default();
        Storage::open(&self.url, &self.options, &cwd, create).map_err(|e| output::fail(&e))
    }

    /// Opens the vault with the passphrase.
    pub async fn open(&self) -> Result<Vault, u8> {
        let passphrase = self.passphrase()?;
        let storage = self.storage(false)?;
        Vault::open(storage, &passphrase)
            .await
            .map_err(|e| output::fail(&e))
    }
}
