//! The bodies of the fuzz targets, one per reader of untrusted bytes. `fuzz/` (cargo fuzz,
//! libFuzzer) runs each for as long as it is given; this crate's tests replay every input of
//! the committed corpora and every regression (`fuzz/corpus/<target>/`,
//! `fuzz/regressions/<target>/`) on stable Rust, in CI.
//!
//! A target returns on input the reader rightly refuses and panics only when an invariant
//! breaks: see each function for its own.

pub mod cty;

/// A fuzz target: its name (the file `fuzz/fuzz_targets/<name>.rs` and the corpus folder) and
/// its body.
pub struct Target {
    pub name: &'static str,
    pub run: fn(&[u8]),
}

/// Every target, in the order the campaign script runs them.
pub const TARGETS: &[Target] = &[
    Target {
        name: "cty_msgpack",
        run: cty::msgpack,
    },
    Target {
        name: "cty_json",
        run: cty::json,
    },
    Target {
        name: "cty_dynamic",
        run: cty::dynamic,
    },
    Target {
        name: "cty_round_trip",
        run: cty::round_trip,
    },
    Target {
        name: "vault_manifest",
        run: dr_vault::fuzzing::manifest,
    },
    Target {
        name: "vault_index",
        run: dr_vault::fuzzing::index_file,
    },
    Target {
        name: "vault_pack_header",
        run: dr_vault::fuzzing::pack_header,
    },
    Target {
        name: "vault_key_file",
        run: dr_vault::fuzzing::key_file,
    },
    Target {
        name: "vault_config",
        run: dr_vault::fuzzing::config,
    },
    Target {
        name: "vault_sealed_object",
        run: dr_vault::fuzzing::sealed_object,
    },
    Target {
        name: "drctl_plan_json",
        run: drctl::fuzzing::plan_json,
    },
    Target {
        name: "drctl_state_file",
        run: drctl::fuzzing::state_file,
    },
    Target {
        name: "drctl_failover_hcl",
        run: drctl::fuzzing::failover_hcl,
    },
];

/// The target called `name`.
pub fn target(name: &str) -> Option<&'static Target> {
    TARGETS.iter().find(|t| t.name == name)
}
