//! `drctl vault init`.

use super::Context;
use crate::cli::InitArgs;
use crate::output::{self, CliError, Outcome};
use dr_vault::{InitOptions, KdfParams, Vault};

pub async fn run(ctx: &Context, args: InitArgs) -> Outcome {
    let valid_name = !args.name.is_empty()
        && args.name.len() <= 63
        && args
            .name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if !valid_name {
        return Err(CliError::usage(
            format!("--name {:?} is not a vault name", args.name),
            "use 1–63 lower-case letters, digits and dashes",
        ));
    }
    let passphrase = ctx.passphrase()?;
    let storage = ctx.storage(true)?;
    let mut opts = InitOptions::new(&args.name, &args.region);
    opts.labels = args.labels.into_iter().collect();
    opts.kdf = KdfParams::for_new_vault();
    let vault = Vault::init(storage, &opts, &passphrase).await?;
    if ctx.json {
        output::json(vault.config())?;
    } else {
        println!(
            "created vault {:?} ({}) at {}",
            vault.config().name,
            vault.config().region,
            vault.storage().url()
        );
    }
    Ok(output::EXIT_OK)
}
