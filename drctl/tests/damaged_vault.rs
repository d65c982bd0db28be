//! What `drctl` says about a vault holding an object that does not open: a snapshot manifest
//! planted (or damaged) under a valid name is named in a warning, and everything else works.

use acceptance_tests::drctl_ok as ok;

#[test]
fn a_planted_manifest_is_named_and_listing_and_replication_go_on() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    std::fs::create_dir_all(dir.join("src")).unwrap();
    std::fs::write(dir.join("src/ci.yml"), "stages: [build]\n").unwrap();
    for vault in ["p", "s"] {
        ok(
            dir,
            &[
                "vault", "--vault", vault, "init", "--name", vault, "--region", vault,
            ],
        );
    }
    ok(
        dir,
        &["vault", "--vault", "p", "snapshot", "--source", "ci=src"],
    );
    let planted = format!("snapshots/{}", "ee".repeat(32));
    std::fs::write(dir.join("p").join(&planted), "garbage").unwrap();

    let out = ok(dir, &["vault", "--vault", "p", "snapshots"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("warning: {planted} does not open")),
        "{stderr}"
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("ci"));

    let out = ok(dir, &["vault", "--vault", "p", "replicate", "--to", "s"]);
    let text = acceptance_tests::output_text(&out);
    assert!(text.contains("replicated 1 snapshots"), "{text}");
    assert!(
        text.contains(&format!(
            "warning: {planted} does not open and cannot be copied"
        )),
        "{text}"
    );

    let out = ok(dir, &["vault", "--vault", "p", "prune", "--dry-run"]);
    let text = acceptance_tests::output_text(&out);
    assert!(
        text.contains("no pack is deleted while it is there"),
        "{text}"
    );
}
