//! Real storage servers on loopback, started by the tests that need them: the moto S3 server
//! and Azurite (installed by `scripts/setup --test-tools` into `.tools/`). A server can be
//! killed (connections refused) or frozen with SIGSTOP (connections accepted by the kernel,
//! never answered): the two ways a region goes dark.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// An emulator process on a free loopback port, stopped on drop.
pub struct LoopbackServer {
    child: Child,
    pub port: u16,
}

impl LoopbackServer {
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Kills the server: its port refuses connections from now on.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Freezes the server (SIGSTOP): connections are accepted by the kernel, nothing answers.
    pub fn freeze(&self) {
        signal(&self.child, "STOP");
    }

    /// Thaws a frozen server (SIGCONT).
    pub fn thaw(&self) {
        signal(&self.child, "CONT");
    }
}

fn signal(child: &Child, name: &str) {
    let status = Command::new("kill")
        .args([&format!("-{name}"), &child.id().to_string()])
        .status()
        .expect("run kill");
    assert!(status.success(), "kill -{name} {} failed", child.id());
}

impl Drop for LoopbackServer {
    fn drop(&mut self) {
        signal_quietly(&self.child);
        self.kill();
    }
}

/// A frozen process must be thawed to die cleanly (SIGKILL works anyway; this keeps the port's
/// pending connections from lingering).
fn signal_quietly(child: &Child) {
    let _ = Command::new("kill")
        .args(["-CONT", &child.id().to_string()])
        .stderr(Stdio::null())
        .status();
}

/// The path of a tool `scripts/setup --test-tools` installs under `.tools/`, or a failure that
/// says so.
///
/// # Panics
/// When the tool is not installed.
pub fn tool(relative: &str) -> PathBuf {
    let path = crate::workspace_root().join(".tools").join(relative);
    assert!(
        path.is_file(),
        "{} not found.\nhint: run scripts/setup --test-tools, which installs the storage emulators into .tools/",
        path.display()
    );
    path
}

/// Starts `program` with the arguments `args(port)` and waits until the port accepts.
///
/// # Panics
/// When it does not start within 60 s.
pub fn start_server(program: &Path, args: impl Fn(u16) -> Vec<String>) -> LoopbackServer {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new(program)
        .args(args(port))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", program.display()));
    let server = LoopbackServer { child, port };
    let started = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "{} did not start within 60 s",
            program.display()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    server
}

/// A moto S3 server (in memory: what it holds dies with it).
pub fn moto_server() -> LoopbackServer {
    start_server(&tool("venv/bin/moto_server"), |port| {
        vec![
            "-H".into(),
            "127.0.0.1".into(),
            "-p".into(),
            port.to_string(),
        ]
    })
}

/// Creates a bucket with a plain HTTP PUT (moto accepts unsigned requests).
///
/// # Panics
/// When the server refuses.
pub fn create_bucket(endpoint: &str, bucket: &str) {
    use std::io::{Read as _, Write as _};
    let addr = endpoint.trim_start_matches("http://");
    let mut conn = std::net::TcpStream::connect(addr).unwrap();
    write!(
        conn,
        "PUT /{bucket} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut reply = String::new();
    conn.read_to_string(&mut reply).unwrap();
    assert!(
        reply.starts_with("HTTP/1.1 200"),
        "bucket creation failed: {reply}"
    );
}

/// The well-known development account of the Azure storage emulators: public, documented by
/// Microsoft, accepted only by emulators.
pub const AZURITE_ACCOUNT: &str = "devstoreaccount1";
pub const AZURITE_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

/// An Azurite blob server, in memory.
pub fn azurite_server() -> LoopbackServer {
    start_server(&tool("azurite/node_modules/.bin/azurite-blob"), |port| {
        [
            "--blobHost",
            "127.0.0.1",
            "--blobPort",
            &port.to_string(),
            "--inMemoryPersistence",
            "--skipApiVersionCheck",
            "--disableTelemetry",
            "--silent",
        ]
        .map(String::from)
        .to_vec()
    })
}

/// The account URL of the emulator's development account on `server`.
pub fn azurite_account_url(server: &LoopbackServer) -> String {
    format!("{}/{AZURITE_ACCOUNT}", server.endpoint())
}

/// Creates a container. object_store has no "create container"; the Azure SDK for Python
/// does it, as an operator's provisioning would.
///
/// # Panics
/// When the SDK fails.
pub fn create_container(server: &LoopbackServer, name: &str) {
    let created = Command::new(tool("venv/bin/python"))
        .args([
            "-c",
            CREATE_AZURE_CONTAINER,
            &azurite_account_url(server),
            AZURITE_KEY,
            name,
        ])
        .output()
        .unwrap();
    assert!(
        created.status.success(),
        "container creation failed: {}",
        String::from_utf8_lossy(&created.stderr)
    );
}

const CREATE_AZURE_CONTAINER: &str = "
import sys
from azure.storage.blob import BlobServiceClient
url, key, name = sys.argv[1:4]
conn = f'DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey={key};BlobEndpoint={url};'
BlobServiceClient.from_connection_string(conn).create_container(name)
";

/// A PostgreSQL server on a loopback port with a data directory of its own, for Terraform's
/// `pg` backend. PostgreSQL refuses to run as root: when the tests run as root, its commands
/// run as the `postgres` system user (`runuser`), and the directory is handed to that user.
pub struct Postgres {
    bin: PathBuf,
    dir: tempfile::TempDir,
    pub port: u16,
}

impl Postgres {
    /// Initialises a fresh cluster and starts it.
    ///
    /// # Panics
    /// When PostgreSQL is not installed or does not start.
    pub fn start() -> Postgres {
        let bin = std::env::var_os("DR_PG_BIN")
            .map(PathBuf::from)
            .or_else(|| {
                let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
                    .ok()?
                    .flatten()
                    .map(|e| e.path().join("bin"))
                    .filter(|b| b.join("initdb").is_file())
                    .collect();
                found.sort();
                found.pop()
            })
            .expect("PostgreSQL's initdb not found.\nhint: install postgresql, or set DR_PG_BIN to the directory holding initdb");
        let dir = tempfile::Builder::new().prefix("dr-pg-").tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let pg = Postgres { bin, dir, port };
        pg.init_and_start();
        pg
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// A command of PostgreSQL's, as the user that may run it.
    fn command(&self, program: &str) -> Command {
        let path = self.bin.join(program);
        let root = Command::new("id")
            .arg("-u")
            .output()
            .is_ok_and(|o| o.stdout.starts_with(b"0\n"));
        if root {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(path);
            c
        } else {
            Command::new(path)
        }
    }

    fn run(&self, mut command: Command, what: &str) {
        let out = command
            .output()
            .unwrap_or_else(|e| panic!("cannot run {what}: {e}"));
        assert!(
            out.status.success(),
            "{what} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn init_and_start(&self) {
        let _ = Command::new("chown")
            .args(["-R", "postgres:"])
            .arg(self.dir.path())
            .stderr(Stdio::null())
            .status();
        let mut init = self.command("initdb");
        init.args(["-A", "trust", "-U", "postgres", "-D"])
            .arg(self.data());
        self.run(init, "initdb");
        let mut start = self.command("pg_ctl");
        start
            .args(["-w", "-D"])
            .arg(self.data())
            .arg("-l")
            .arg(self.dir.path().join("log"))
            .arg("-o")
            .arg(format!(
                "-p {} -k {} -c listen_addresses=127.0.0.1",
                self.port,
                self.dir.path().display()
            ))
            .arg("start");
        self.run(start, "pg_ctl start");
    }

    fn stop(&self) {
        let mut stop = self.command("pg_ctl");
        stop.args(["-w", "-m", "immediate", "-D"])
            .arg(self.data())
            .arg("stop")
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let _ = stop.status();
    }

    /// Creates a database.
    pub fn create_database(&self, name: &str) {
        let mut create = self.command("createdb");
        create.args([
            "-h",
            "127.0.0.1",
            "-p",
            &self.port.to_string(),
            "-U",
            "postgres",
            name,
        ]);
        self.run(create, "createdb");
    }

    /// The disaster: the server and every database in it are gone; a fresh, empty server
    /// starts on the same port.
    pub fn lose_everything_and_start_fresh(&self) {
        self.stop();
        std::fs::remove_dir_all(self.data()).unwrap();
        self.init_and_start();
    }

    /// The `pg` backend's `conn_str` for a database.
    pub fn conn_str(&self, database: &str) -> String {
        format!(
            "postgres://postgres@127.0.0.1:{}/{database}?sslmode=disable",
            self.port
        )
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        self.stop();
    }
}
