//! A small step harness over the real `terraform` binary.
//!
//! Each [`TfDir`] is a throw-away root module with its own filesystem mirror holding the
//! providers under test, its own CLI config and no plugin cache, so tests run in parallel and
//! never touch the user's Terraform setup. [`TfDir::apply`] always plans again afterwards and
//! fails on a non-empty plan ("no diff after apply").

pub mod fault_proxy;
pub mod servers;
pub mod tftest;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

/// The version providers are installed under in test mirrors.
pub const TEST_VERSION: &str = "0.1.0";

/// The tests' pseudo-random numbers: xorshift64, so a seed replays a run exactly (the
/// campaigns print theirs) with no dependency for what needs no quality beyond "varied".
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator from `seed` (xorshift must not start at 0).
    pub fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// A duration from zero to just under `bound`.
    pub fn below(&mut self, bound: std::time::Duration) -> std::time::Duration {
        std::time::Duration::from_micros(self.next_u64() % (bound.as_micros() as u64).max(1))
    }

    /// `len` bytes that no compressor shrinks.
    pub fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.next_u64() as u8).collect()
    }
}

/// A JSON number from Terraform's output as an integer (state holds numbers as floats too).
///
/// # Panics
/// When `v` is not a number.
pub fn num(v: &serde_json::Value) -> u64 {
    v.as_u64()
        .or_else(|| v.as_f64().map(|f| f as u64))
        .unwrap_or_else(|| panic!("not a number: {v}"))
}

/// Every file under `dir`, recursively.
///
/// # Panics
/// When `dir` cannot be read.
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir)
        .expect("readable directory")
        .flatten()
    {
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            out.extend(files_under(&e.path()));
        } else {
            out.push(e.path());
        }
    }
    out
}

/// Every file under `root` with its bytes, by path relative to `root`: a tree as restore
/// writes it, for bit-for-bit comparison with the tree a snapshot was taken from.
///
/// # Panics
/// When `root` or a file under it cannot be read.
pub fn read_tree(root: &Path) -> std::collections::BTreeMap<String, Vec<u8>> {
    files_under(root)
        .into_iter()
        .map(|p| {
            let bytes = std::fs::read(&p).expect("readable file");
            (p.strip_prefix(root).unwrap().display().to_string(), bytes)
        })
        .collect()
}

/// Copies a directory tree (files and directories only).
///
/// # Panics
/// On I/O failure.
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("create dir");
    for e in std::fs::read_dir(from).expect("read dir").flatten() {
        let dest = to.join(e.file_name());
        if e.file_type().expect("file type").is_dir() {
            copy_dir(&e.path(), &dest);
        } else {
            std::fs::copy(e.path(), dest).expect("copy file");
        }
    }
}

/// A finished command's stdout then stderr, for assertions and failure messages.
pub fn output_text(out: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The workspace root.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

/// The Terraform binary: `$TERRAFORM`, else the one `scripts/setup` installs.
///
/// # Panics
/// When neither exists, with the command that installs it.
pub fn terraform_bin() -> PathBuf {
    let path = std::env::var_os("TERRAFORM").map_or_else(
        || workspace_root().join(".tools/terraform/terraform"),
        PathBuf::from,
    );
    assert!(
        path.is_file(),
        "terraform not found at {}.\nhint: run `scripts/setup` once (it installs Terraform 1.0.3 into .tools/), or set TERRAFORM",
        path.display()
    );
    path
}

/// The version of [`terraform_bin`], as (major, minor, patch); read once per test process.
///
/// # Panics
/// When `terraform version -json` does not run or says no version.
pub fn terraform_version() -> (u32, u32, u32) {
    static VERSION: OnceLock<(u32, u32, u32)> = OnceLock::new();
    *VERSION.get_or_init(|| {
        let out = Command::new(terraform_bin())
            .args(["version", "-json"])
            .env("CHECKPOINT_DISABLE", "1")
            .output()
            .expect("run terraform version");
        let json: serde_json::Value =
            serde_json::from_slice(&out.stdout).expect("terraform version -json");
        let text = json["terraform_version"].as_str().expect("a version");
        let mut parts = text
            .split(['.', '-'])
            .map(|p| p.parse::<u32>().unwrap_or(0));
        let mut next = || parts.next().unwrap_or(0);
        (next(), next(), next())
    })
}

/// Whether the Terraform under test is at least `major.minor`; when it is not, says on stderr
/// that `test` is skipped on this leg and why (the modern leg runs it: `scripts/test`).
pub fn terraform_at_least(major: u32, minor: u32, test: &str) -> bool {
    let (ma, mi, pa) = terraform_version();
    let enough = (ma, mi) >= (major, minor);
    if !enough {
        eprintln!(
            "SKIPPED {test}: needs Terraform >= {major}.{minor}, this leg runs {ma}.{mi}.{pa} (the modern leg runs it)"
        );
    }
    enough
}

/// The binaries the test suite builds with the `test-hooks` feature (the test clock, cheap key
/// derivation) and runs.
const TEST_HOOKS_BINS: [&str; 2] = ["terraform-provider-dr", "drctl"];

/// The test suite's own build of a workspace binary (`terraform-provider-dr` or `drctl`): with
/// the `test-hooks` feature, kept in a directory of its own (`target/test-hooks/`), so the
/// binaries users install (`scripts/setup`'s mirror, `cargo build --release`) never have it.
/// Built once per test process; cargo reuses every artifact it can, so after `scripts/test`
/// built them this only checks and copies.
///
/// Why a copy and not `--target-dir target/test-hooks`: a target directory of its own
/// rebuilt every dependency (10 minutes on 2 cores); with the same one only the crates that
/// depend on `dr-vault` are built twice. Cargo places what it builds in `target/debug`, so
/// once copied (renamed into place) the plain binaries are put back there at once (both
/// builds stay cached): `target/debug` holds the hook-free binaries, as users build them.
///
/// # Panics
/// When cargo cannot build them.
pub fn test_hooks_bin(name: &str) -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            let cargo_build = |features: &[&str]| {
                let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
                let status = Command::new(cargo)
                    .args([
                        "build",
                        "--quiet",
                        "-p",
                        "terraform-provider-dr",
                        "-p",
                        "drctl",
                    ])
                    .arg("--bins")
                    .args(features)
                    .current_dir(workspace_root())
                    .status()
                    .expect("run cargo build");
                assert!(status.success(), "building {features:?} binaries failed");
            };
            cargo_build(&[
                "--features",
                "terraform-provider-dr/test-hooks,drctl/test-hooks",
            ]);
            let built = profile_dir();
            let dir = built
                .parent()
                .map_or_else(|| built.join("test-hooks"), |t| t.join("test-hooks"));
            std::fs::create_dir_all(&dir).expect("create the test-hooks directory");
            for bin in TEST_HOOKS_BINS {
                let staged = dir.join(format!(".{bin}.{}", std::process::id()));
                std::fs::copy(built.join(bin), &staged).expect("copy a test-hooks binary");
                std::fs::rename(&staged, dir.join(bin)).expect("place a test-hooks binary");
            }
            cargo_build(&[]);
            dir
        })
        .join(name)
}

/// `terraform-provider-dr` as the tests run it (see [`test_hooks_bin`]).
pub fn dr_provider_bin() -> PathBuf {
    test_hooks_bin("terraform-provider-dr")
}

/// `drctl` as the tests run it (see [`test_hooks_bin`]).
pub fn drctl_bin() -> PathBuf {
    test_hooks_bin("drctl")
}

/// The pid of a dr provider process `terraform` (a pid) has started, if one runs now. A
/// descendant, not a child: Terraform 1.0 runs itself again under a panic wrapper, and that
/// second process starts the providers.
pub fn dr_provider_under(terraform: u32) -> Option<u32> {
    let mut parent = std::collections::BTreeMap::new();
    let mut providers = Vec::new();
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // pid (comm) state ppid ...: comm may hold spaces, so read after its closing paren.
        let fields: Vec<&str> = stat
            .rsplit_once(')')
            .map(|(_, rest)| rest.split_whitespace().collect())
            .unwrap_or_default();
        let (Some(state), Some(ppid)) = (fields.first(), fields.get(1)) else {
            continue;
        };
        parent.insert(pid, ppid.parse::<u32>().unwrap_or(0));
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        if *state != "Z" && String::from_utf8_lossy(&cmdline).contains("terraform-provider-dr") {
            providers.push(pid);
        }
    }
    providers.into_iter().find(|&pid| {
        let mut at = pid;
        for _ in 0..8 {
            match parent.get(&at) {
                Some(&p) if p == terraform => return true,
                Some(&p) if p > 1 => at = p,
                _ => return false,
            }
        }
        false
    })
}

/// The state letter of process `pid` (`R`, `S`, `T` when stopped, `Z`…), if it exists.
pub fn process_state(pid: u32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // pid (comm) state ...: comm may hold spaces, so read after its closing paren.
    stat.rsplit_once(')')?.1.trim_start().chars().next()
}

/// The passphrase of the vaults the drctl tests make ([`drctl_in`] gives it).
pub const DRCTL_TEST_PASSPHRASE: &str = "pw";

/// `drctl` (the suite's build) with `args`, run in `dir` as the drctl tests run it: with
/// [`DRCTL_TEST_PASSPHRASE`] and the cheap key derivation, none of the caller's `DR_VAULT`
/// or test switches, its output captured.
pub fn drctl_in(dir: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(drctl_bin());
    cmd.args(args)
        .current_dir(dir)
        .env("DR_PASSPHRASE", DRCTL_TEST_PASSPHRASE)
        .env("DR_TEST_INSECURE_KDF", "1")
        .env_remove("DR_VAULT")
        .env_remove("DR_TEST_STOP_AT")
        .env_remove("DR_TEST_CLOCK")
        .env_remove("DR_TEST_NOW")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

/// Gives `cmd` (drctl running `args`) the storage options of the vaults it opens: each as
/// `--option`, and for a `replicate` also as `--to-option`, which its destination takes apart.
pub fn with_vault_options<'a>(
    cmd: &mut Command,
    args: &[&str],
    options: impl IntoIterator<Item = &'a str>,
) {
    let flags: &[&str] = if args.contains(&"replicate") {
        &["--option", "--to-option"]
    } else {
        &["--option"]
    };
    for option in options {
        for flag in flags {
            cmd.args([*flag, option]);
        }
    }
}

/// [`drctl_in`] run with another passphrase, or with none at all; returns its output.
///
/// # Panics
/// When drctl cannot be started.
pub fn drctl_with_passphrase(dir: &Path, passphrase: Option<&str>, args: &[&str]) -> Output {
    let mut cmd = drctl_in(dir, args);
    match passphrase {
        Some(p) => cmd.env("DR_PASSPHRASE", p),
        None => cmd.env_remove("DR_PASSPHRASE"),
    };
    cmd.output().expect("start drctl")
}

/// Runs [`drctl_in`] and asserts it succeeded; returns its output.
///
/// # Panics
/// When drctl fails, with what it said.
pub fn drctl_ok(dir: &Path, args: &[&str]) -> Output {
    let out = drctl_in(dir, args).output().expect("start drctl");
    assert!(
        out.status.success(),
        "drctl {args:?}: {}",
        output_text(&out)
    );
    out
}

/// What a successful [`drctl_ok`] printed on stdout.
pub fn drctl_stdout(dir: &Path, args: &[&str]) -> String {
    String::from_utf8_lossy(&drctl_ok(dir, args).stdout).into_owned()
}

/// The total time `drctl rebuild --apply` reports ("rebuilt in 12.3s from …").
///
/// # Panics
/// When the output holds no such line.
pub fn rebuild_seconds(output: &str) -> f64 {
    output
        .lines()
        .find_map(|l| l.strip_prefix("rebuilt in "))
        .and_then(|rest| rest.split('s').next())
        .and_then(|n| n.parse::<f64>().ok())
        .unwrap_or_else(|| panic!("no total time in:\n{output}"))
}

/// The ids of the snapshots of `vault` (a path below `dir`), oldest first.
pub fn snapshot_ids(dir: &Path, vault: &str) -> Vec<String> {
    let list: serde_json::Value = serde_json::from_str(&drctl_stdout(
        dir,
        &["vault", "--vault", vault, "snapshots", "--json"],
    ))
    .expect("drctl vault snapshots --json prints JSON");
    list.as_array()
        .expect("a list of snapshots")
        .iter()
        .map(|s| s["id"].as_str().expect("an id").to_string())
        .collect()
}

/// The target directory of the running test's profile (`target/debug`): test executables
/// live in its `deps/` folder, binaries beside it.
fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current test executable");
    exe.parent()
        .and_then(Path::parent)
        .map(Path::to_path_buf)
        .expect("test executable sits in <profile>/deps")
}

/// A provider binary and the address it is installed under.
#[derive(Clone, Debug)]
pub struct ProviderBuild {
    /// `HOST/NAMESPACE/TYPE`.
    pub address: &'static str,
    pub binary: PathBuf,
}

impl ProviderBuild {
    pub fn tftest() -> Self {
        ProviderBuild {
            address: tftest::ADDRESS,
            binary: profile_dir().join("terraform-provider-tftest"),
        }
    }

    pub fn dr() -> Self {
        ProviderBuild {
            address: "registry.terraform.io/dr-project/dr",
            binary: dr_provider_bin(),
        }
    }

    fn type_name(&self) -> &str {
        self.address.rsplit('/').next().unwrap_or_default()
    }
}

/// What a terraform command printed, with the exit code.
#[derive(Debug)]
pub struct TfOutput {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl TfOutput {
    fn from_output(out: Output) -> Self {
        TfOutput {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// stdout and stderr with Terraform's box drawing removed and all whitespace runs folded
    /// into single spaces, so a regex does not depend on where Terraform wraps lines.
    pub fn flat(&self) -> String {
        let text = format!("{}\n{}", self.stdout, self.stderr).replace(['│', '╷', '╵'], " ");
        text.split_whitespace().collect::<Vec<_>>().join(" ")
    }
}

impl std::fmt::Display for TfOutput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit code {}\n--- stdout\n{}\n--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

/// A root module in a temporary directory with a mirror of the providers under test.
pub struct TfDir {
    dir: tempfile::TempDir,
    mirror: PathBuf,
    env: Vec<(String, String)>,
}

impl TfDir {
    /// # Panics
    /// On I/O failures creating the directory or mirror.
    pub fn new(providers: &[ProviderBuild]) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("tf-acc-")
            .tempdir()
            .expect("temp dir");
        let mirror = dir.path().join(".mirror");
        for p in providers {
            let platform = mirror
                .join(p.address)
                .join(TEST_VERSION)
                .join("linux_amd64");
            std::fs::create_dir_all(&platform).expect("mirror dir");
            let name = format!("terraform-provider-{}_v{TEST_VERSION}", p.type_name());
            std::fs::copy(&p.binary, platform.join(name)).expect("copy provider into mirror");
        }
        // An empty CLI config: the machine's own (plugin caches, mirrors, credentials) must
        // not leak into tests.
        std::fs::write(dir.path().join(".terraformrc"), "").expect("cli config");
        TfDir {
            dir,
            mirror,
            env: Vec::new(),
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The filesystem mirror holding the providers under test (what `init` installs from).
    pub fn mirror(&self) -> &Path {
        &self.mirror
    }

    /// Sets an environment variable for every later terraform command (and so the provider).
    pub fn set_env(&mut self, key: &str, value: &str) {
        self.env.retain(|(k, _)| k != key);
        self.env.push((key.to_string(), value.to_string()));
    }

    pub fn remove_env(&mut self, key: &str) {
        self.env.retain(|(k, _)| k != key);
    }

    /// Writes `main.tf` (replacing the previous configuration).
    ///
    /// # Panics
    /// On I/O failure.
    pub fn config(&self, hcl: &str) {
        std::fs::write(self.dir.path().join("main.tf"), hcl).expect("write main.tf");
    }

    /// Runs terraform with `args` (plus `-no-color` where it applies) and returns what it said.
    ///
    /// # Panics
    /// When terraform cannot be started.
    pub fn run(&self, args: &[&str]) -> TfOutput {
        self.run_in(self.dir.path(), args)
    }

    /// Like [`TfDir::run`], in another directory (a rebuilt module), with this one's
    /// environment.
    ///
    /// # Panics
    /// When terraform cannot be started.
    pub fn run_in(&self, dir: &Path, args: &[&str]) -> TfOutput {
        TfOutput::from_output(self.command(dir, args).output().expect("start terraform"))
    }

    /// The terraform command [`TfDir::run_in`] runs, to start in the background.
    pub fn command(&self, dir: &Path, args: &[&str]) -> Command {
        let mut cmd = Command::new(terraform_bin());
        cmd.args(args)
            .current_dir(dir)
            .stdin(Stdio::null())
            .env("TF_IN_AUTOMATION", "1")
            .env("CHECKPOINT_DISABLE", "1")
            .env("TF_INPUT", "0")
            .env("TF_CLI_CONFIG_FILE", self.dir.path().join(".terraformrc"))
            .env_remove("TF_PLUGIN_CACHE_DIR")
            .env_remove("TF_REATTACH_PROVIDERS")
            .env_remove("TF_LOG");
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        cmd
    }

    /// Runs and asserts success.
    ///
    /// # Panics
    /// When the command fails.
    pub fn ok(&self, args: &[&str]) -> TfOutput {
        let out = self.run(args);
        assert_eq!(out.code, 0, "terraform {} failed:\n{out}", args.join(" "));
        out
    }

    /// Runs, asserts failure, and asserts the (whitespace-folded) output matches `pattern`.
    ///
    /// # Panics
    /// When the command succeeds or the output does not match.
    pub fn fails_with(&self, args: &[&str], pattern: &str) -> TfOutput {
        let out = self.run(args);
        assert_ne!(
            out.code,
            0,
            "terraform {} should have failed:\n{out}",
            args.join(" ")
        );
        let re = regex::Regex::new(pattern).expect("valid regex");
        assert!(
            re.is_match(&out.flat()),
            "output of terraform {} does not match /{pattern}/:\n{out}",
            args.join(" ")
        );
        out
    }

    /// `terraform init` from the test mirror only.
    pub fn init(&self) -> TfOutput {
        let mirror = self.mirror.display().to_string();
        self.ok(&[
            "init",
            "-no-color",
            "-input=false",
            &format!("-plugin-dir={mirror}"),
        ])
    }

    /// `terraform apply`, then a plan that must be empty.
    pub fn apply(&self) -> TfOutput {
        let out = self.ok(&["apply", "-no-color", "-input=false", "-auto-approve"]);
        self.assert_plan_empty();
        out
    }

    /// `terraform plan -detailed-exitcode` must exit 0 (no changes).
    ///
    /// # Panics
    /// When the plan has changes or fails.
    pub fn assert_plan_empty(&self) {
        let out = self.run(&["plan", "-no-color", "-input=false", "-detailed-exitcode"]);
        assert_eq!(out.code, 0, "expected an empty plan:\n{out}");
    }

    /// The import step of every resource test, as the plugin framework's `ImportStateVerify`:
    /// the state is refreshed (one resource's apply may change another's object: a pair
    /// replicates into its standby vault), the state of each `(address, import id)` is
    /// forgotten (all of them first, as when a state file is lost), each is imported by its
    /// id, the imported values must equal the refreshed ones except the attributes in `ignore`
    /// (what import cannot know, such as when the last apply ran), and the plan must be empty.
    ///
    /// # Panics
    /// When an import fails, a value differs, or the plan is not empty.
    pub fn import_verify(&self, resources: &[(&str, &str)], ignore: &[&str]) {
        let strip = |mut values: serde_json::Value| {
            if let Some(map) = values.as_object_mut() {
                for name in ignore {
                    map.remove(*name);
                }
            }
            values
        };
        self.ok(&[
            "apply",
            "-refresh-only",
            "-auto-approve",
            "-no-color",
            "-input=false",
        ]);
        let applied: Vec<serde_json::Value> = resources
            .iter()
            .map(|(address, _)| strip(self.values(address)))
            .collect();
        for (address, _) in resources {
            self.ok(&["state", "rm", "-no-color", address]);
        }
        for (address, id) in resources {
            self.ok(&["import", "-no-color", "-input=false", address, id]);
        }
        for ((address, _), applied) in resources.iter().zip(applied) {
            assert_eq!(
                strip(self.values(address)),
                applied,
                "imported {address} differs from the applied one"
            );
        }
        self.assert_plan_empty();
    }

    /// `terraform plan -detailed-exitcode` must exit 2 (changes) and match `pattern`.
    ///
    /// # Panics
    /// When the plan is empty, fails, or does not match.
    pub fn assert_plan_changes(&self, pattern: &str) -> TfOutput {
        let out = self.run(&["plan", "-no-color", "-input=false", "-detailed-exitcode"]);
        assert_eq!(out.code, 2, "expected a plan with changes:\n{out}");
        let re = regex::Regex::new(pattern).expect("valid regex");
        assert!(
            re.is_match(&out.flat()),
            "plan does not match /{pattern}/:\n{out}"
        );
        out
    }

    /// A Terraform CLI configuration that installs providers from this module's mirror, as a
    /// registry stand-in for `terraform init` without `-plugin-dir` (what users type).
    ///
    /// # Panics
    /// When it cannot be written.
    pub fn mirror_cli_config(&self) -> PathBuf {
        let cli_config = self.dir.path().join(".terraformrc-mirror");
        if !cli_config.exists() {
            let text = format!(
                "provider_installation {{\n  filesystem_mirror {{\n    path = \"{}\"\n  }}\n}}\n",
                self.mirror.display()
            );
            std::fs::write(&cli_config, text).expect("write the CLI config");
        }
        cli_config
    }

    /// The environment every later command gets (see [`TfDir::set_env`]).
    pub fn env(&self) -> &[(String, String)] {
        &self.env
    }

    /// `drctl` (the suite's build) with `args`, to run in `cwd` with this module's environment
    /// (passphrase, credentials, test switches) and none of the caller's `DR_VAULT` or test
    /// switches. The Terraform it runs (`rebuild --apply`, `state push --dir`, `status --dir`)
    /// installs providers from this module's mirror.
    pub fn drctl_command(&self, cwd: &Path, args: &[&str]) -> Command {
        let cli_config = self.mirror_cli_config();
        let mut cmd = Command::new(drctl_bin());
        cmd.args(args)
            .current_dir(cwd)
            .stdin(Stdio::null())
            .env("TERRAFORM", terraform_bin())
            .env("TF_CLI_CONFIG_FILE", &cli_config)
            .env("CHECKPOINT_DISABLE", "1")
            .env("TF_IN_AUTOMATION", "1")
            .env_remove("DR_VAULT")
            .env_remove("DR_TEST_STOP_AT")
            .env_remove("DR_TEST_CLOCK")
            .env_remove("DR_TEST_NOW")
            .env_remove("TF_LOG");
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        cmd
    }

    /// [`TfDir::drctl_command`], run; its output.
    ///
    /// # Panics
    /// When drctl cannot be started.
    pub fn drctl(&self, cwd: &Path, args: &[&str]) -> Output {
        self.drctl_command(cwd, args).output().expect("start drctl")
    }

    /// Everything a saved plan file holds, readable: each entry of the zip archive Terraform
    /// writes, decompressed (the raw bytes of the file are Deflate-compressed, so searching
    /// them proves nothing), then `terraform show -json` of it.
    ///
    /// # Panics
    /// When the file cannot be read or shown.
    pub fn saved_plan_contents(&self, file: &str) -> Vec<u8> {
        let unzip = Command::new("python3")
            .args([
                "-c",
                "import sys, zipfile\nz = zipfile.ZipFile(sys.argv[1])\nfor n in z.namelist(): sys.stdout.buffer.write(z.read(n))",
            ])
            .arg(self.path().join(file))
            .output()
            .expect("run python3 to unzip the plan file");
        assert!(unzip.status.success(), "{}", output_text(&unzip));
        assert!(unzip.stdout.len() > 100, "the plan file holds too little");
        let mut contents = unzip.stdout;
        contents.extend(self.ok(&["show", "-json", file]).stdout.into_bytes());
        contents
    }

    /// `terraform show -json` of the state.
    ///
    /// # Panics
    /// When terraform fails or prints no JSON.
    pub fn state(&self) -> serde_json::Value {
        let out = self.ok(&["show", "-json"]);
        serde_json::from_str(&out.stdout).expect("show -json prints JSON")
    }

    /// The state entry of one resource address (`tftest_thing.a`, `data.x.y`), if present.
    pub fn resource(&self, address: &str) -> Option<serde_json::Value> {
        let state = self.state();
        state["values"]["root_module"]["resources"]
            .as_array()?
            .iter()
            .find(|r| r["address"] == address)
            .cloned()
    }

    /// The `values` of a resource that must be in state.
    ///
    /// # Panics
    /// When it is not.
    pub fn values(&self, address: &str) -> serde_json::Value {
        self.resource(address)
            .unwrap_or_else(|| panic!("{address} is not in state"))["values"]
            .clone()
    }
}
