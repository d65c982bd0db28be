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
    &["report"],
    &["drill"],
    &["runbook"],
    &["alerts"],
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

/// The committed fixture vaults (`vault/tests/fixtures`), and the passphrase they open with.
fn fixtures() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../vault/tests/fixtures")
}
const FIXTURE_PASSPHRASE: &str = "fixture passphrase";

/// Copies the committed format 3 vault to `to`, then lays a broken fixture's overlay over it:
/// its files replace (or add) the objects of the same key, and the keys its `DELETED` file
/// lists are removed.
fn fixture_vault(to: &Path, overlay: Option<&Path>) {
    copy_tree(&fixtures().join("format-3"), to);
    let Some(overlay) = overlay else { return };
    copy_tree(overlay, to);
    let deleted = to.join("DELETED");
    if let Ok(list) = std::fs::read_to_string(&deleted) {
        for key in list.lines().filter(|l| !l.is_empty()) {
            std::fs::remove_file(to.join(key)).unwrap();
        }
        std::fs::remove_file(deleted).unwrap();
    }
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// A command's exit status, stdout and stderr, as one snapshot; the temporary directory it
/// ran in is written `[DIR]`.
fn run_on_fixture(dir: &Path, args: &[&str]) -> String {
    let out = acceptance_tests::drctl_with_passphrase(dir, Some(FIXTURE_PASSPHRASE), args);
    let text = format!(
        "exit status: {}\n--- stdout\n{}--- stderr\n{}",
        out.status.code().map_or("killed".into(), |c| c.to_string()),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    let real = dir.canonicalize().unwrap();
    text.replace(&real.display().to_string(), "[DIR]")
        .replace(&dir.display().to_string(), "[DIR]")
}

/// What the vault commands print for the committed format 3 vault: its ids and times are
/// fixed, so nothing needs redacting.
#[test]
fn the_vault_commands_on_the_committed_format_3_vault() {
    let dir = tempfile::tempdir().unwrap();
    fixture_vault(&dir.path().join("vault"), None);
    let runs: &[(&str, &[&str])] = &[
        ("snapshots", &["vault", "--vault", "vault", "snapshots"]),
        (
            "snapshots-json",
            &["vault", "--vault", "vault", "snapshots", "--json"],
        ),
        (
            "verify",
            &["vault", "--vault", "vault", "verify", "--read-data"],
        ),
        (
            "prune-dry-run",
            &[
                "vault",
                "--vault",
                "vault",
                "prune",
                "--keep-last",
                "1",
                "--dry-run",
            ],
        ),
        (
            "restore",
            &[
                "vault", "--vault", "vault", "restore", "latest", "--target", "out",
            ],
        ),
    ];
    for (name, args) in runs {
        insta::assert_snapshot!(format!("format-3-{name}"), run_on_fixture(dir.path(), args));
    }
}

/// `verify --read-data` on each committed broken vault (`vault/tests/fixtures/broken`, one
/// defect each, as its README says): every problem named by its object, exit status 1 for
/// damage, and objects that are not the vault's reported without failing it.
#[test]
fn verify_on_every_committed_broken_vault() {
    let mut cases: Vec<_> = std::fs::read_dir(fixtures().join("broken"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    cases.sort();
    assert!(cases.len() >= 7, "{cases:?}");
    for case in cases {
        let dir = tempfile::tempdir().unwrap();
        fixture_vault(&dir.path().join("vault"), Some(&case));
        let name = case.file_name().unwrap().to_string_lossy().into_owned();
        let out = run_on_fixture(
            dir.path(),
            &["vault", "--vault", "vault", "verify", "--read-data"],
        );
        insta::assert_snapshot!(format!("broken-{name}"), out);
    }
}
