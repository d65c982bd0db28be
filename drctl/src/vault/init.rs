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
    let mut opts = InitOptions::new(&args.name, &args.region);
    opts.labels = args.labels.into_iter().collect();
    opts.kdf = KdfParams::for_new_vault();
    let vault = match &args.key_from {
        None => Vault::init(ctx.storage(true)?, &opts, &passphrase).await?,
        Some(url) => {
            let primary = ctx
                .other(
                    url,
                    &args.key_from_options,
                    args.key_from_passphrase_file.as_ref(),
                )
                .open()
                .await?;
            Vault::init_sharing_key(ctx.storage(true)?, &opts, &passphrase, &primary).await?
        }
    };
    if ctx.json {
        output::json(vault.config())?;
    } else {
        println!(
            "created vault {:?} ({}) at {}",
            vault.config().name,
            vault.config().region,
            vault.storage().url()
        );
        if let Some(url) = &args.key_from {
            println!(
                "it shares the master key of {url}: replication from there copies packs as they are, \
                 and whoever learns the key of one opens both"
            );
        }
    }
    Ok(output::EXIT_OK)
}
