//! Process start → handshake line, the time Terraform waits before it can talk to the
//! provider (it starts the provider several times per command). Measured as Terraform runs
//! it: AutoMTLS on (a P-521 client certificate in the environment), and once with TLS off.
//! For scale, the same clock times `terraform version` when a Terraform binary is found.
//!
//! Run: `cargo bench -p terraform-provider-dr --bench handshake` (release build).

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use tfplugin::serve::{MAGIC_COOKIE_KEY, MAGIC_COOKIE_VALUE};

const RUNS: usize = 40;

fn main() {
    let bin = env!("CARGO_BIN_EXE_terraform-provider-dr");
    let client =
        tfplugin::tls::generate_identity(&rcgen::PKCS_ECDSA_P521_SHA512).expect("client identity");
    let pem = tfplugin::tls::cert_pem(&client.cert);
    let sockets = tempfile::tempdir().expect("socket dir");

    let handshake = |client_cert: Option<&str>| {
        let mut cmd = Command::new(bin);
        cmd.env(MAGIC_COOKIE_KEY, MAGIC_COOKIE_VALUE)
            .env("PLUGIN_PROTOCOL_VERSIONS", "5,6")
            .env("PLUGIN_UNIX_SOCKET_DIR", sockets.path())
            .env_remove("PLUGIN_CLIENT_CERT")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        if let Some(pem) = client_cert {
            cmd.env("PLUGIN_CLIENT_CERT", pem);
        }
        let started = Instant::now();
        let mut child = cmd.spawn().expect("spawn provider");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("handshake line");
        let elapsed = started.elapsed();
        assert!(
            line.starts_with("1|6|unix|"),
            "unexpected handshake {line:?}"
        );
        let _ = child.kill();
        let _ = child.wait();
        elapsed
    };

    report(
        "handshake, AutoMTLS on (as Terraform runs it)",
        sample(|| handshake(Some(&pem))),
    );
    report("handshake, TLS off", sample(|| handshake(None)));

    let terraform =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../.tools/terraform/terraform");
    if terraform.is_file() {
        report(
            "reference: `terraform version` (a Go process start, same clock)",
            sample(|| {
                let started = Instant::now();
                let out = Command::new(&terraform)
                    .arg("version")
                    .env("CHECKPOINT_DISABLE", "1")
                    .output()
                    .expect("terraform");
                assert!(out.status.success());
                started.elapsed()
            }),
        );
    }
}

fn sample(mut run: impl FnMut() -> Duration) -> Vec<Duration> {
    run(); // warm the page cache
    let mut times: Vec<Duration> = (0..RUNS).map(|_| run()).collect();
    times.sort();
    times
}

fn report(what: &str, times: Vec<Duration>) {
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let pct = |p: usize| times[(times.len() * p / 100).min(times.len() - 1)];
    println!(
        "{what}: median {:.2} ms, p90 {:.2} ms, min {:.2} ms, max {:.2} ms ({} runs)",
        ms(pct(50)),
        ms(pct(90)),
        ms(times[0]),
        ms(times[times.len() - 1]),
        times.len()
    );
}
