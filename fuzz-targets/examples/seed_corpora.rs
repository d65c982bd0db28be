//! Writes the seed inputs of every fuzz target into `fuzz/corpus/<target>/seed-*`, from real
//! outputs: the committed fixture vaults (every format), cty values of the types provider
//! schemas use, and the plans, state files and configuration given on the command line
//! (`fuzz/seed` passes those of a real `terraform apply`). Seeds are named by their content's
//! hash, so running it again adds nothing twice.
//!
//! Usage: seed_corpora [--plan FILE]... [--state FILE]... [--hcl FILE]...

use std::path::{Path, PathBuf};
use tfplugin::{Number, Type, Value};

#[tokio::main]
async fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let corpus = root.join("fuzz/corpus");
    let mut seeds: Vec<(&'static str, Vec<u8>)> = Vec::new();

    let args: Vec<String> = std::env::args().skip(1).collect();
    for pair in args.chunks(2) {
        let [flag, file] = pair else {
            panic!("usage: seed_corpora [--plan FILE]... [--state FILE]... [--hcl FILE]...");
        };
        let target = match flag.as_str() {
            "--plan" => "drctl_plan_json",
            "--state" => "drctl_state_file",
            "--hcl" => "drctl_failover_hcl",
            other => panic!("unknown flag {other}"),
        };
        seeds.push((
            target,
            std::fs::read(file).unwrap_or_else(|e| panic!("{file}: {e}")),
        ));
    }
    for plan in files_under(&root.join("drctl/tests/fixtures"), "json") {
        seeds.push(("drctl_plan_json", std::fs::read(plan).unwrap()));
    }
    for tf in files_under(&root.join("examples"), "tf") {
        seeds.push(("drctl_failover_hcl", std::fs::read(tf).unwrap()));
    }
    seeds.push(("drctl_failover_hcl", PAIR.as_bytes().to_vec()));

    let passphrase = dr_vault::Passphrase::new("fixture passphrase");
    for format in ["format-1", "format-2", "format-3"] {
        let dir = root.join("vault/tests/fixtures").join(format);
        let storage =
            dr_vault::Storage::open(dir.to_str().unwrap(), &Default::default(), &root, false)
                .unwrap_or_else(|e| panic!("{format}: {e}"));
        let from_vault = dr_vault::fuzzing::seeds(&storage, &passphrase)
            .await
            .unwrap_or_else(|e| panic!("{format}: {e}"));
        seeds.extend(from_vault);
    }

    for (ty, value) in typed_values() {
        let ty_json = ty.to_json_bytes();
        let Ok(len) = u8::try_from(ty_json.len()) else {
            continue;
        };
        let mut msgpack = vec![len];
        msgpack.extend_from_slice(&ty_json);
        let mut json = msgpack.clone();
        msgpack.extend(value.to_msgpack(&ty).unwrap());
        seeds.push(("cty_msgpack", msgpack));
        if let Ok(j) = value.to_json(&ty) {
            json.extend(j.to_string().into_bytes());
            seeds.push(("cty_json", json));
        }
        let dynamic = Value::Dynamic(ty.clone(), Box::new(value.clone()));
        if ty != Type::Dynamic {
            seeds.push(("cty_dynamic", dynamic.to_msgpack(&Type::Dynamic).unwrap()));
            if let Ok(j) = dynamic.to_json(&Type::Dynamic) {
                seeds.push(("cty_dynamic", j.to_string().into_bytes()));
            }
        }
    }
    for n in 0u8..8 {
        seeds.push((
            "cty_round_trip",
            (0..64u8)
                .map(|i| i.wrapping_mul(37).wrapping_add(n))
                .collect(),
        ));
    }

    let mut written = 0;
    for (target, bytes) in seeds {
        let dir = corpus.join(target);
        std::fs::create_dir_all(&dir).unwrap();
        let name = format!("seed-{}", &content_name(&bytes)[..16]);
        let path = dir.join(name);
        if !path.exists() {
            std::fs::write(&path, &bytes).unwrap();
            written += 1;
        }
    }
    eprintln!("wrote {written} new seeds under {}", corpus.display());
}

/// A pair as users write it, with a comment and a variable elsewhere: what `rebuild` edits.
const PAIR: &str = r#"# The delivery system's two regions.
resource "dr_region_pair" "pair" {
  name               = "ci"
  primary_vault_id   = dr_backup_vault.eu.id
  secondary_vault_id = dr_backup_vault.us.id # the standby
  active             = "primary"
  rpo                = "1h"
}

terraform {
  backend "pg" {}
}
"#;

fn files_under(dir: &Path, ext: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = entry.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|e| e == ext) {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

fn content_name(bytes: &[u8]) -> String {
    // A stable name, not a security property: FNV-1a over the bytes, twice with two bases.
    let fnv = |basis: u64| {
        bytes.iter().fold(basis, |h, b| {
            (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
        })
    };
    format!(
        "{:016x}{:016x}",
        fnv(0xcbf2_9ce4_8422_2325),
        fnv(0x8422_2325_cbf2_9ce4)
    )
}

/// Types and values of the shapes provider schemas have: a resource's object with strings,
/// numbers, sets and maps, nested blocks as lists of objects, a dynamic attribute.
fn typed_values() -> Vec<(Type, Value)> {
    let labels = Type::map(Type::String);
    let block = Type::object([
        ("path", Type::String),
        ("exclude", Type::list(Type::String)),
    ]);
    let resource = Type::object([
        ("id", Type::String),
        ("name", Type::String),
        ("retention_days", Type::Number),
        ("encrypted", Type::Bool),
        ("labels", labels.clone()),
        ("regions", Type::set(Type::String)),
        ("source", Type::list(block.clone())),
        ("extra", Type::Dynamic),
        ("pair", Type::Tuple(vec![Type::String, Type::Number])),
    ]);
    let source = Value::object([
        ("path", Value::string("pipelines/")),
        ("exclude", Value::List(vec![Value::string("*.tmp")])),
    ]);
    let full = Value::object([
        ("id", Value::string("v-3f2a")),
        ("name", Value::string("ci-eu")),
        ("retention_days", Value::number(30i64)),
        ("encrypted", Value::Bool(true)),
        (
            "labels",
            Value::Map([("team".to_string(), Value::string("platform"))].into()),
        ),
        (
            "regions",
            Value::Set(vec![Value::string("eu"), Value::string("us")]),
        ),
        ("source", Value::List(vec![source])),
        (
            "extra",
            Value::Dynamic(
                Type::list(Type::Number),
                Box::new(Value::List(vec![Value::number(1i64)])),
            ),
        ),
        (
            "pair",
            Value::Tuple(vec![
                Value::string("a"),
                Value::Number("0.1".parse::<Number>().unwrap()),
            ]),
        ),
    ]);
    let planned = Value::object([
        ("id", Value::Unknown),
        ("name", Value::string("ci-eu")),
        ("retention_days", Value::Null),
        ("encrypted", Value::Unknown),
        ("labels", Value::Null),
        ("regions", Value::Unknown),
        ("source", Value::List(vec![])),
        ("extra", Value::Null),
        ("pair", Value::Null),
    ]);
    vec![
        (
            Type::String,
            Value::string("s3://bucket/vault?region=eu-west-1"),
        ),
        (
            Type::Number,
            Value::Number("3.14159265358979323846264338327950288".parse().unwrap()),
        ),
        (Type::Number, Value::number(-7i64)),
        (Type::Bool, Value::Bool(false)),
        (labels, Value::Map(Default::default())),
        (Type::Dynamic, Value::Null),
        (resource.clone(), full),
        (resource.clone(), planned),
        (resource, Value::Null),
    ]
}
