//! `drctl report`: the DR posture as one self-contained HTML page with plots over the whole
//! recorded history: per region pair, the lag at each replication against the RPO; per
//! drill, each run's restore time against the RTO and data age against the RPO; per vault,
//! each snapshot's logical and stored bytes. The findings at the top are `drctl status`'s.

mod history;
mod page;
mod plot;

use crate::cli::ReportArgs;
use crate::output::{self, CliError, Outcome};
use crate::status::{self, Vaults};
use crate::vault::Context;

pub async fn run(args: ReportArgs) -> Outcome {
    let resources = status::dr_resources(args.state.as_deref(), args.dir.as_deref())?;
    refuse_to_clobber(&args)?;
    let ctx = Context::new(String::new(), &args.access, false);
    let mut vaults = Vaults::new(ctx.passphrase()?, ctx.options.clone());
    let posture = status::gather(&resources, &mut vaults).await;
    let history = history::gather(&resources, &mut vaults).await;
    let source = match (&args.state, &args.dir) {
        (Some(state), _) => format!("the state {}", state.display()),
        (_, Some(dir)) => format!("the root module {}", dir.display()),
        _ => String::new(),
    };
    let html = page::render(&posture, &history, &source).map_err(|e| CliError {
        message: format!("cannot draw a plot: {e}"),
        hint: None,
        code: output::EXIT_FAILURE,
    })?;
    write_atomically(&args.out, &html)?;
    let runs: usize = history.drills.iter().map(|d| d.runs.len()).sum();
    if args.output.json {
        output::json(&serde_json::json!({
            "written": args.out.display().to_string(),
            "bytes": html.len(),
            "pairs": history.pairs.len(),
            "drills": history.drills.len(),
            "drill_runs": runs,
            "vaults": history.vaults.len(),
            "problems": posture.problems,
        }))?;
    } else {
        println!(
            "wrote {} ({} pair(s), {} drill(s) with {runs} run(s), {} vault(s); {} finding(s) out of policy)",
            args.out.display(),
            history.pairs.len(),
            history.drills.len(),
            history.vaults.len(),
            posture.problems.len()
        );
    }
    Ok(output::EXIT_OK)
}

/// An existing --out is replaced only when it is a report this command wrote, or with
/// --force: a mistyped path must not cost somebody's file.
fn refuse_to_clobber(args: &ReportArgs) -> Result<(), CliError> {
    let Ok(meta) = std::fs::metadata(&args.out) else {
        return Ok(());
    };
    // Only a regular file's head is read (a FIFO or a terminal would block the read).
    let mut head = Vec::new();
    if meta.is_file() {
        if let Ok(file) = std::fs::File::open(&args.out) {
            let _ = std::io::Read::read_to_end(&mut std::io::Read::take(file, 4096), &mut head);
        }
    }
    let ours = String::from_utf8_lossy(&head).contains(page::GENERATOR);
    if ours || args.force {
        return Ok(());
    }
    Err(CliError::usage(
        format!(
            "{} exists and is not a report drctl wrote",
            args.out.display()
        ),
        "choose another --out, or pass --force to replace it",
    ))
}

/// Written beside, then renamed over: a reader (a web server, the browser) never sees half
/// a page, and a failed write leaves the previous report. The new file gets the mode any new
/// file gets (the umask's), not a temporary file's owner-only one: it is a page to publish.
fn write_atomically(out: &std::path::Path, html: &str) -> Result<(), CliError> {
    let failed = |e: std::io::Error| {
        CliError::usage(
            format!("cannot write {}: {e}", out.display()),
            "check --out: its directory must exist and be writable",
        )
    };
    let mut name = out.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".drctl-{}.tmp", std::process::id()));
    let staged = out.with_file_name(name);
    let written = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&staged)
        .and_then(|mut f| {
            std::io::Write::write_all(&mut f, html.as_bytes())?;
            f.sync_all()
        })
        .and_then(|()| std::fs::rename(&staged, out));
    if let Err(e) = written {
        let _ = std::fs::remove_file(&staged);
        return Err(failed(e));
    }
    Ok(())
}
