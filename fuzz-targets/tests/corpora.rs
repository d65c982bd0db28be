//! Replays every committed fuzz input: the corpora cargo fuzz grew (`fuzz/corpus/<target>/`)
//! and the inputs that once crashed a target (`fuzz/regressions/<target>/`), on stable Rust,
//! as CI runs. A regression that panics again fails here, named by its file.

use fuzz_targets::{target, TARGETS};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz")
}

fn inputs(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
}

/// How long one input may take: libFuzzer's own timeout in `fuzz/campaign`. A hang found by
/// the fuzzer fails here instead of hanging the suite.
const PER_INPUT: Duration = Duration::from_secs(10);

/// Runs `name` on every input under `folder/<name>/`; returns how many ran.
fn replay(folder: &str, name: &str) -> usize {
    let run = target(name).unwrap().run;
    let files = inputs(&fuzz_dir().join(folder).join(name));
    for file in &files {
        let data = std::fs::read(file).unwrap();
        let (done, outcome) = mpsc::channel();
        std::thread::spawn(move || {
            let ok = std::panic::catch_unwind(|| run(&data)).is_ok();
            let _ = done.send(ok);
        });
        match outcome.recv_timeout(PER_INPUT) {
            Ok(true) => {}
            Ok(false) => panic!("{name} panics on {}", file.display()),
            Err(_) => panic!(
                "{name} runs for more than {PER_INPUT:?} on {}",
                file.display()
            ),
        }
    }
    files.len()
}

#[test]
fn every_target_has_a_fuzz_binary_and_a_seeded_corpus() {
    let binaries: Vec<String> = inputs(&fuzz_dir().join("fuzz_targets"))
        .iter()
        .map(|p| p.file_stem().unwrap().to_string_lossy().into_owned())
        .collect();
    let names: Vec<String> = TARGETS.iter().map(|t| t.name.to_string()).collect();
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(
        binaries, sorted,
        "fuzz/fuzz_targets/*.rs and TARGETS differ"
    );
    let manifest = std::fs::read_to_string(fuzz_dir().join("Cargo.toml")).unwrap();
    for name in &names {
        assert!(
            manifest.contains(&format!("name = \"{name}\"")),
            "fuzz/Cargo.toml has no [[bin]] {name}"
        );
        assert!(
            !inputs(&fuzz_dir().join("corpus").join(name)).is_empty(),
            "fuzz/corpus/{name} is empty: seed it (fuzz/seed) and run the target"
        );
    }
}

#[test]
fn the_corpora_replay_without_a_panic() {
    let mut total = 0;
    for t in TARGETS {
        total += replay("corpus", t.name);
    }
    eprintln!("replayed {total} corpus inputs");
}

#[test]
fn the_regressions_replay_without_a_panic() {
    let mut total = 0;
    for t in TARGETS {
        total += replay("regressions", t.name);
    }
    // The crashes fixed so far (issue 17): a hang in the msgpack codec, an HCL edit that
    // changed more than it should.
    assert!(total >= 2, "fuzz/regressions lost its inputs: {total}");
}
