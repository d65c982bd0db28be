//! What drctl prints, pinned as snapshots (`tests/snapshots/`): the `--help` of every command,
//! and `drctl check` in every output format on a plan that breaks every rule. A change shows
//! as a readable diff; accept an intended one with `cargo insta review` (or
//! `INSTA_UPDATE=always cargo test -p drctl --test snapshots`) and commit the snapshots.

use acceptance_tests::{drctl_in, output_text};
use std::path::Path;

/// Every command path, for `--help`.
const COMMANDS: &[&[&str]] = &[
    &[],
    &["vault"],
    &["vault", "init"],
    &["vault", "snapshot"],
    &["vault", "snapshots"],
    &["vault", "restore"],
    &["vault", "verify"],
    &["vault", "prune"],
    &["vault", "replicate"],
    &["state"],
    &["state", "push"],
    &["state", "pull"],
    &["state", "history"],
    &["check"],
    &["status"],
    &["rebuild"],
    &["scaffold"],
];

/// drctl's stdout, which must succeed; help wraps at a fixed width.
fn stdout_of(dir: &Path, args: &[&str]) -> (Option<i32>, String) {
    let out = drctl_in(dir, args)
        .env("COLUMNS", "100")
        .output()
        .expect("start drctl");
    (
        out.status.code(),
        String::from_utf8(out.stdout.clone()).unwrap_or_else(|_| output_text(&out)),
    )
}

#[test]
fn the_help_of_every_command() {
    let dir = tempfile::tempdir().unwrap();
    for path in COMMANDS {
        let args: Vec<&str> = path.iter().copied().chain(["--help"]).collect();
        let (code, help) = stdout_of(dir.path(), &args);
        assert_eq!(code, Some(0), "drctl {args:?}");
        let name = if path.is_empty() {
            "help".to_string()
        } else {
            format!("help-{}", path.join("-"))
        };
        insta::assert_snapshot!(name, help);
    }
}

#[test]
fn check_in_every_format_on_a_plan_that_breaks_every_rule() {
    let dir = tempfile::tempdir().unwrap();
    let plan =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/plan-breaking-every-rule.json");
    std::fs::copy(&plan, dir.path().join("plan.json")).unwrap();
    for format in ["text", "json", "sarif", "junit", "github"] {
        let (code, out) = stdout_of(dir.path(), &["check", "plan.json", "--format", format]);
        assert_eq!(code, Some(1), "error-level violations exit 1:\n{out}");
        insta::assert_snapshot!(format!("check-{format}"), out);
    }
}
