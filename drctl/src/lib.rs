//! `drctl`: the state-aware helper of terraform-provider-dr. The binary is `main.rs`, which
//! calls [`main`]; the library exists so that the fuzz targets (`fuzz/`) reach the parsers of
//! untrusted input through [`fuzzing`].

mod alerts;
mod check;
mod cli;
mod drill;
mod output;
mod rebuild;
mod report;
mod runbook;
mod scaffold;
mod state;
mod status;
mod tfstate;
mod vault;

#[doc(hidden)]
pub mod fuzzing;

use clap::Parser as _;
use std::process::ExitCode;

/// Runs the command line and returns its exit code.
pub fn main() -> ExitCode {
    tune_malloc();
    let cli = cli::Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            let error = output::CliError {
                message: format!("cannot start the async runtime: {e}"),
                hint: None,
                code: output::EXIT_FAILURE,
            };
            return ExitCode::from(error.print());
        }
    };
    let outcome = runtime.block_on(async move {
        match cli.command {
            cli::Command::Vault(args) => vault::run(args).await,
            cli::Command::State(args) => state::run(args).await,
            cli::Command::Check(args) => check::run(args),
            cli::Command::Status(args) => status::run(args).await,
            cli::Command::Rebuild(args) => rebuild::run(args).await,
            cli::Command::Report(args) => report::run(args).await,
            cli::Command::Drill(args) => drill::run(args).await,
            cli::Command::Runbook(args) => runbook::run(args),
            cli::Command::Alerts(args) => alerts::run(args),
            cli::Command::Scaffold(args) => scaffold::run(args),
        }
    });
    ExitCode::from(outcome.unwrap_or_else(|e| e.print()))
}

/// Two glibc tunables, each measured on the benchmark (`bench/vault-vs-restic`):
/// - glibc gives each thread that allocates under contention an arena of its own and rarely
///   returns their memory; with the blocking pool's threads that grew peak memory by about a
///   quarter at no gain in speed. Two arenas, one per core, keep the speed.
/// - glibc's mmap threshold rises to the size of any large block freed (up to 32 MiB): after
///   the key derivation's 32 MiB, every manifest and chunk buffer came from the arenas and
///   fragmented them (first snapshot peak 80 MiB). A fixed 8 MiB keeps the 4 MiB chunk
///   buffers reused in the arenas and maps larger blocks apart (62 MiB, same speed).
fn tune_malloc() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets allocator tunables; it is called before any other thread
    // exists.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
        libc::mallopt(libc::M_MMAP_THRESHOLD, 8 * 1024 * 1024);
    }
}
