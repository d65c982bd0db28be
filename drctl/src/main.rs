//! `drctl`: the state-aware helper of terraform-provider-dr.

mod check;
mod cli;
mod output;
mod rebuild;
mod scaffold;
mod state;
mod status;
mod tfstate;
mod vault;

use clap::Parser as _;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(output::EXIT_FAILURE);
        }
    };
    let code = runtime.block_on(async move {
        match cli.command {
            cli::Command::Vault(args) => vault::run(args).await,
            cli::Command::State(args) => state::run(args).await,
            cli::Command::Check(args) => check::run(args),
            cli::Command::Status(args) => status::run(args).await,
            cli::Command::Rebuild(args) => rebuild::run(args).await,
            cli::Command::Scaffold(args) => scaffold::run(args),
        }
    });
    ExitCode::from(code)
}
