//! `drctl scaffold`: a ready multi-region module (provider, two vaults, a pair, a drill) built
//! as an hcl-rs document, so every value is quoted and escaped by the library, then laid out
//! the way `terraform fmt` lays it out.

use crate::cli::ScaffoldArgs;
use crate::output::{self, CliError, Outcome};
use hcl::expr::{Expression, ObjectKey, Traversal, Variable};
use hcl::format::{Format as _, Formatter};
use hcl::{Block, Body, Identifier};
use std::collections::BTreeSet;

const PROVIDER_SOURCE: &str = "registry.terraform.io/dr-project/dr";

pub fn run(args: ScaffoldArgs) -> Outcome {
    let module = render(&args)?;
    let Some(dir) = &args.out else {
        print!("{module}");
        return Ok(output::EXIT_OK);
    };
    let file = dir.join("main.tf");
    if file.exists() && !args.force {
        return Err(CliError::usage(
            format!("{} exists", file.display()),
            "choose another --out, or pass --force to replace it",
        ));
    }
    std::fs::create_dir_all(dir)
        .and_then(|()| std::fs::write(&file, &module))
        .map_err(|e| {
            CliError::usage(
                format!("cannot write {}: {e}", file.display()),
                "check --out",
            )
        })?;
    println!("wrote {}", file.display());
    println!(
        "next: cd {} && terraform init && DR_PASSPHRASE=… terraform apply",
        dir.display()
    );
    Ok(output::EXIT_OK)
}

/// The module's text, or what is wrong with the flags.
pub fn render(args: &ScaffoldArgs) -> Result<String, CliError> {
    if args.primary_region == args.secondary_region {
        return Err(CliError::usage(
            format!(
                "--primary-region and --secondary-region are both {:?}",
                args.primary_region
            ),
            "a region pair protects against losing a region: give two different regions",
        ));
    }
    if args.vault_url_primary == args.vault_url_secondary {
        return Err(CliError::usage(
            "--vault-url-primary and --vault-url-secondary are the same",
            "each region needs its own vault",
        ));
    }
    if !valid_name(&args.name) {
        return Err(CliError::usage(
            format!("--name {:?} is not a valid vault name prefix", args.name),
            "use lowercase letters, digits and '-', at most 40 characters",
        ));
    }
    for (flag, value) in [("--rpo", &args.rpo), ("--rto", &args.rto)] {
        dr_vault::parse_duration(value, flag)
            .map_err(|e| CliError::usage(e.to_string(), "write it like 15m, 1h or 1d"))?;
    }
    let sources = source_names(&args.source);

    let reference = |kind: &str, name: &str, attr: &str| -> Expression {
        Traversal::builder(Variable::unchecked(kind))
            .attr(name)
            .attr(attr)
            .build()
            .into()
    };
    let retention = || {
        Block::builder("retention")
            .add_attribute(("keep_last", 30))
            .add_attribute(("lock_for", "7d"))
            .build()
    };
    let vault = |label: &str, region: &str, url: &str, with_sources: bool| {
        let mut block = Block::builder("resource")
            .add_label("dr_backup_vault")
            .add_label(label)
            .add_attribute(("name", format!("{}-{region}", args.name)))
            .add_attribute(("region", region))
            .add_attribute(("url", url));
        if with_sources {
            for (name, path) in &sources {
                block = block.add_block(
                    Block::builder("source")
                        .add_attribute(("name", name.as_str()))
                        .add_attribute(("path", path.as_str()))
                        .build(),
                );
            }
        }
        block.add_block(retention()).build()
    };
    let check = sources
        .iter()
        .map(|(name, _)| format!("test -e {name}"))
        .collect::<Vec<_>>()
        .join(" && ");

    let body = Body::builder()
        .add_block(
            Block::builder("terraform")
                .add_block(
                    Block::builder("required_providers")
                        .add_attribute((
                            "dr",
                            Expression::from_iter([(
                                ObjectKey::Identifier(Identifier::unchecked("source")),
                                Expression::from(PROVIDER_SOURCE),
                            )]),
                        ))
                        .build(),
                )
                .build(),
        )
        .add_block(Block::builder("provider").add_label("dr").build())
        .add_block(vault(
            "primary",
            &args.primary_region,
            &args.vault_url_primary,
            true,
        ))
        .add_block(vault(
            "secondary",
            &args.secondary_region,
            &args.vault_url_secondary,
            false,
        ))
        .add_block(
            Block::builder("resource")
                .add_label("dr_region_pair")
                .add_label(args.name.as_str())
                .add_attribute(("name", args.name.as_str()))
                .add_attribute((
                    "primary_vault_id",
                    reference("dr_backup_vault", "primary", "id"),
                ))
                .add_attribute((
                    "secondary_vault_id",
                    reference("dr_backup_vault", "secondary", "id"),
                ))
                .add_attribute(("rpo", args.rpo.as_str()))
                .add_attribute(("rto", args.rto.as_str()))
                .add_attribute((
                    "replicate_snapshot_id",
                    reference("dr_backup_vault", "primary", "latest_snapshot_id"),
                ))
                .build(),
        )
        .add_block(
            Block::builder("resource")
                .add_label("dr_drill")
                .add_label("standby")
                .add_attribute(("name", format!("{}-standby", args.name)))
                .add_attribute(("vault_id", reference("dr_backup_vault", "secondary", "id")))
                .add_attribute((
                    "region_pair_id",
                    reference("dr_region_pair", &args.name, "id"),
                ))
                .add_attribute(("max_age", args.rpo.as_str()))
                .add_attribute((
                    "verify_command",
                    Expression::from_iter(["sh", "-c", check.as_str()]),
                ))
                .build(),
        )
        .build();
    let mut formatter = Formatter::builder().compact_arrays(true).build_vec();
    let text = body.format_string(&mut formatter).map_err(|e| {
        CliError::with_code(
            output::EXIT_FAILURE,
            format!("cannot render the module: {e}"),
            "report this as a bug",
        )
    })?;
    Ok(format!(
        "# Written by `drctl scaffold`: {} in {}, replicated to {}, proven by a drill.\n\
         # The passphrase comes from DR_PASSPHRASE; cloud credentials from the usual environment.\n\n{}",
        args.name,
        args.primary_region,
        args.secondary_region,
        terraform_fmt_layout(&text)
    ))
}

fn valid_name(name: &str) -> bool {
    (1..=40).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// (name, path) for each --source: the name is the path's last part in vault-name form,
/// made unique with a suffix.
fn source_names(paths: &[String]) -> Vec<(String, String)> {
    let mut seen = BTreeSet::new();
    paths
        .iter()
        .map(|path| {
            let base: String = std::path::Path::new(path)
                .file_name()
                .map(|f| f.to_string_lossy().to_lowercase())
                .unwrap_or_default()
                .chars()
                .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
                .collect();
            let base = match base.trim_matches('-') {
                "" => "source".to_string(),
                b => b.to_string(),
            };
            let mut name = base.clone();
            let mut n = 2;
            while !seen.insert(name.clone()) {
                name = format!("{base}-{n}");
                n += 1;
            }
            (name, path.clone())
        })
        .collect()
}

/// What `terraform fmt` adds to hcl-rs's layout: the `=` of consecutive one-line attributes
/// at the same depth aligned, and a blank line between a block's attributes and its nested
/// blocks and between top-level blocks. Written by hand because hcl-rs's formatter has no
/// alignment option; the test runs `terraform fmt -check` on the result.
fn terraform_fmt_layout(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let mut out: Vec<String> = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        // A run of attribute lines at one indentation.
        let indent = leading(lines[i]);
        let mut j = i;
        while j < lines.len() && leading(lines[j]) == indent && attribute_key(lines[j]).is_some() {
            j += 1;
        }
        if j > i {
            let width = lines[i..j]
                .iter()
                .filter_map(|l| attribute_key(l))
                .map(str::len)
                .max()
                .unwrap_or(0);
            for line in &lines[i..j] {
                let key = attribute_key(line).unwrap_or_default();
                let rest = line.trim_start()[key.len()..].trim_start();
                out.push(format!("{}{key:<width$} {rest}", " ".repeat(indent)));
            }
            i = j;
            continue;
        }
        let line = lines[i];
        // A nested block after attributes, or any block after the previous one's end.
        let trimmed = line.trim_end();
        let opens_block =
            (trimmed.ends_with('{') || trimmed.ends_with("{}")) && attribute_key(line).is_none();
        if opens_block {
            if let Some(prev) = out.last() {
                if !prev.trim().is_empty() && !prev.trim_end().ends_with('{') {
                    out.push(String::new());
                }
            }
        }
        out.push(line.to_string());
        i += 1;
    }
    out.join("\n") + "\n"
}

fn leading(line: &str) -> usize {
    line.len() - line.trim_start().len()
}

/// The key of an `key = value` line.
fn attribute_key(line: &str) -> Option<&str> {
    let trimmed = line.trim_start();
    let (key, rest) = trimmed.split_once(' ')?;
    (rest.starts_with("= ")
        && !key.is_empty()
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-'))
    .then_some(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn source_names_are_unique_and_valid() {
        let names = source_names(&["ci".into(), "other/ci".into(), "./Deploy Scripts/".into()]);
        let names: Vec<&str> = names.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["ci", "ci-2", "deploy-scripts"]);
    }

    #[test]
    fn runs_of_attributes_are_aligned_and_blocks_separated() {
        let text = "resource \"a\" \"b\" {\n  name = 1\n  region_x = 2\n  inner {\n    k = 1\n  }\n}\nprovider \"dr\" {}\n";
        assert_eq!(
            terraform_fmt_layout(text),
            "resource \"a\" \"b\" {\n  name     = 1\n  region_x = 2\n\n  inner {\n    k = 1\n  }\n}\n\nprovider \"dr\" {}\n"
        );
    }
}
