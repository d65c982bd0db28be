//! `drctl state push VAULT`: back up the current state; a no-op when the newest version in
//! the vault has the same content. With `--dir` (or `--config`) the root module's
//! configuration is kept beside the state (source `config`), so `drctl rebuild` can bring the
//! whole working directory back after a disaster.

use super::{
    current, next_generation, refusal, versions, StateMeta, CONFIG_SOURCE, FILE, FORCED_LABEL,
    GENERATION_LABEL, KIND, KIND_LABEL, SOURCE,
};
use crate::cli::StatePushArgs;
use crate::output::{self, CliError, Outcome};
use crate::vault::Context;
use dr_vault::{NoProgress, SourceSpec};
use std::collections::BTreeMap;

pub async fn run(ctx: &Context, args: StatePushArgs) -> Outcome {
    let (bytes, what) = read_state(&args)?;
    let meta = StateMeta::parse(&bytes, &what).map_err(|message| {
        CliError::usage(
            message,
            "pass --state FILE or --dir DIR of a Terraform working directory",
        )
    })?;
    let vault = ctx.open().await?;
    // The content digest decides "unchanged": same serial with other content is still new.
    let staging = tempfile::Builder::new()
        .prefix("drctl-state-")
        .tempdir()
        .map_err(|e| {
            CliError::usage(
                format!("cannot create a temporary directory: {e}"),
                "check TMPDIR",
            )
        })?;
    let file = staging.path().join(SOURCE).join(FILE);
    std::fs::create_dir(staging.path().join(SOURCE))
        .and_then(|()| write_private(&file, &bytes))
        .map_err(|e| {
            CliError::usage(
                format!("cannot stage the state in {}: {e}", file.display()),
                "check TMPDIR",
            )
        })?;
    let config_dir = args.config.as_ref().or(args.dir.as_ref());
    let config = match config_dir {
        Some(dir) => Some(stage_config(dir, &staging.path().join(CONFIG_SOURCE))?),
        None => None,
    };
    let digest = content_digest(&bytes);
    let config_digest = config
        .as_ref()
        .map(|c| c.digest.clone())
        .unwrap_or_default();
    let history = versions(&vault).await?;
    let current = current(&history);
    if let Some((latest, _)) = current {
        // Without a configuration to compare, the state alone decides.
        let same_config = config.is_none()
            || latest.labels.get("config_digest").map(String::as_str) == Some(&config_digest);
        if latest.labels.get("state_digest") == Some(&digest) && same_config {
            if ctx.json {
                output::json(&Pushed {
                    pushed: false,
                    snapshot: &latest.id,
                    state: &meta,
                })?;
            } else {
                println!(
                    "unchanged: state serial {} (lineage {}) is already snapshot {}",
                    meta.serial,
                    meta.lineage,
                    &latest.id[..12]
                );
            }
            return Ok(output::EXIT_OK);
        }
    }
    // As `terraform state push`: never an older serial or another lineage over the current
    // version, nor the same serial with other content, unless forced.
    let refused = current.and_then(|(s, now)| {
        refusal(now, &meta, "the vault's current version", &what).or_else(|| {
            (now.serial == meta.serial && s.labels.get("state_digest") != Some(&digest)).then(|| {
                format!(
                    "the vault's current version is serial {} (lineage {}) with other content than {what}, which has the same serial",
                    now.serial, now.lineage
                )
            })
        })
    });
    if let Some(problem) = &refused {
        if !args.force {
            return Err(CliError::refused(
                format!("refusing to push: {problem}"),
                format!(
                    "pull the current version with `drctl state pull {}`, or pass --force to make this one current",
                    ctx.url
                ),
            ));
        }
        eprintln!("warning: --force: {problem}; this version becomes the current one");
    }
    let labels: BTreeMap<String, String> = [
        (KIND_LABEL, KIND.to_string()),
        ("lineage", meta.lineage.clone()),
        ("serial", meta.serial.to_string()),
        ("terraform_version", meta.terraform_version.clone()),
        ("resources", meta.resources.to_string()),
        ("state_digest", digest),
    ]
    .into_iter()
    .chain(config.as_ref().map(|c| ("config_digest", c.digest.clone())))
    .chain(refused.map(|_| (FORCED_LABEL, "true".to_string())))
    .chain([(GENERATION_LABEL, next_generation(&history).to_string())])
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let mut specs = vec![SourceSpec::new(SOURCE, staging.path().join(SOURCE))];
    if config.is_some() {
        specs.push(SourceSpec::new(
            CONFIG_SOURCE,
            staging.path().join(CONFIG_SOURCE),
        ));
    }
    let summary = vault.snapshot(&specs, &labels, &NoProgress).await?;
    if ctx.json {
        output::json(&Pushed {
            pushed: true,
            snapshot: &summary.id,
            state: &meta,
        })?;
    } else {
        println!(
            "pushed state serial {} (lineage {}, {} resources) as snapshot {}",
            meta.serial,
            meta.lineage,
            meta.resources,
            &summary.id[..12]
        );
        if let Some(c) = &config {
            println!(
                "with the configuration of {}: {}",
                config_dir
                    .map(|d| d.display().to_string())
                    .unwrap_or_default(),
                c.files.join(", ")
            );
        }
    }
    Ok(output::EXIT_OK)
}

/// The `--json` output: whether a new version was stored, and the one that is current.
#[derive(serde::Serialize)]
struct Pushed<'a> {
    pushed: bool,
    snapshot: &'a str,
    state: &'a StateMeta,
}

/// The state's bytes: from --state, or `terraform state pull` in --dir (any backend).
fn read_state(args: &StatePushArgs) -> Result<(Vec<u8>, String), CliError> {
    match (&args.state, &args.dir) {
        (Some(path), None) => std::fs::read(path)
            .map(|b| (b, path.display().to_string()))
            .map_err(|e| {
                CliError::usage(
                    format!("cannot read state file {}: {e}", path.display()),
                    "check the --state path",
                )
            }),
        (None, Some(dir)) => {
            let terraform = crate::tfstate::terraform_bin();
            let out = std::process::Command::new(&terraform)
                .args(["state", "pull"])
                .current_dir(dir)
                .env("TF_IN_AUTOMATION", "1")
                .output()
                .map_err(|e| {
                    CliError::usage(
                        format!(
                            "cannot run {terraform:?} state pull in {}: {e}",
                            dir.display()
                        ),
                        "install terraform or set TERRAFORM to its path",
                    )
                })?;
            if !out.status.success() {
                return Err(CliError::usage(
                    format!(
                        "`terraform state pull` failed in {}: {}",
                        dir.display(),
                        String::from_utf8_lossy(&out.stderr).trim()
                    ),
                    "run `terraform init` there first",
                ));
            }
            if out.stdout.iter().all(u8::is_ascii_whitespace) {
                return Err(CliError::usage(
                    format!("{} has no state yet", dir.display()),
                    "apply the configuration first",
                ));
            }
            Ok((out.stdout, format!("the state of {}", dir.display())))
        }
        _ => Err(CliError::usage(
            "give exactly one of --state FILE or --dir DIR",
            "--dir runs `terraform state pull`, which works with every backend",
        )),
    }
}

/// The root module's own files, copied into a staging directory.
struct StagedConfig {
    files: Vec<String>,
    digest: String,
}

/// Whether a file of the root module belongs in the configuration backup: the Terraform files,
/// variable files and the dependency lock. Not state, not `.terraform/`, not data folders
/// (those are what the vaults back up).
fn is_config_file(name: &str) -> bool {
    [".tf", ".tf.json", ".tfvars", ".tfvars.json"]
        .iter()
        .any(|ext| name.ends_with(ext))
        || name == ".terraform.lock.hcl"
}

/// Copies the configuration files at the top of `dir` into `into`; the digest covers names and
/// contents, so "unchanged" means the same files with the same bytes.
fn stage_config(dir: &std::path::Path, into: &std::path::Path) -> Result<StagedConfig, CliError> {
    let fail = |e: std::io::Error| {
        CliError::usage(
            format!("cannot read the configuration in {}: {e}", dir.display()),
            "check --dir (or --config): a Terraform root module",
        )
    };
    let mut files: Vec<String> = std::fs::read_dir(dir)
        .map_err(fail)?
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|name| is_config_file(name))
        .collect();
    files.sort();
    if !files
        .iter()
        .any(|f| f.ends_with(".tf") || f.ends_with(".tf.json"))
    {
        return Err(CliError::usage(
            format!("{} holds no .tf files", dir.display()),
            "point --dir (or --config) at the root module whose state this is",
        ));
    }
    std::fs::create_dir(into).map_err(fail)?;
    let mut hasher = blake3::Hasher::new();
    for name in &files {
        let bytes = std::fs::read(dir.join(name)).map_err(fail)?;
        hasher.update(name.as_bytes());
        hasher.update(&(bytes.len() as u64).to_le_bytes());
        hasher.update(&bytes);
        write_private(&into.join(name), &bytes).map_err(fail)?;
    }
    Ok(StagedConfig {
        files,
        digest: hasher.finalize().to_hex().to_string(),
    })
}

/// Writes a file readable by its owner only: state holds secrets.
pub fn write_private(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

/// BLAKE3 of the state's JSON in compact form: `terraform state pull` and the state file hold
/// the same document with different whitespace, and both must count as the same version.
fn content_digest(bytes: &[u8]) -> String {
    let compact = serde_json::from_slice::<serde_json::Value>(bytes)
        .and_then(|v| serde_json::to_vec(&v))
        .unwrap_or_else(|_| bytes.to_vec());
    blake3::hash(&compact).to_hex().to_string()
}
