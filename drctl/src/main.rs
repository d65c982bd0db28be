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
    limit_malloc_arenas();
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

/// glibc gives each thread that allocates under contention an arena of its own and rarely
/// returns their memory; with the blocking pool's threads that grew peak memory by about a
/// quarter on the benchmark (`bench/vault-vs-restic`) at no gain in speed. Two arenas, one
/// per core, keep the speed and drop the growth.
fn limit_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets an allocator tunable; it is called before any other thread
    // exists.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
}
