//! `drctl vault init`.

use super::Context;
use crate::cli::InitArgs;
use crate::output;
use dr_vault::{InitOptions, KdfParams, Vault};

pub async fn run(ctx: &Context, args: InitArgs) -> u8 {
    let valid_name = !args.name.is_empty()
        && args.name.len() <= 63
        && args
            .name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if !valid_name {
        return output::usage(
            &format!("--name {:?} is not a vault name", args.name),
            "use 1–63 lower-case letters, digits and dashes",
        );
    }
    let passphrase = match ctx.passphrase() {
        Ok(p) => p,
        Err(code) => return code,
    };
    let storage = match ctx.storage(true) {
        Ok(s) => s,
        Err(code) => return code,
    };
    let mut opts = InitOptions::new(&args.name, &args.region);
    opts.labels = args.labels.into_iter().collect();
    opts.kdf = KdfParams::for_new_vault();
    match Vault::init(storage, &opts, &passphrase).await {
        Ok(vault) => {
            if ctx.json {
                output::json(vault.config());
            } else {
                println!(
                    "created vault {:?} ({}) at {}",
                    vault.config().name,
                    vault.config().region,
                    vault.storage().url()
                );
            }
            output::EXIT_OK
        }
        Err(e) => output::fail(&e),
    }
}
