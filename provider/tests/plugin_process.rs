//! The provider process as Terraform sees it: the magic cookie, the handshake line, AutoMTLS
//! with a pinned client certificate, health, and prompt exit on Shutdown.

use dr_proto::plugin::grpc_controller_client::GrpcControllerClient;
use dr_proto::tfplugin6::{get_provider_schema, provider_client::ProviderClient};
use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};
use tfplugin::client::{connect_unix, Handshake};
use tfplugin::serve::{MAGIC_COOKIE_KEY, MAGIC_COOKIE_VALUE};
use tfplugin::tls;

const BIN: &str = env!("CARGO_BIN_EXE_terraform-provider-dr");

struct Plugin {
    child: Child,
    stdout: BufReader<ChildStdout>,
    handshake: Handshake,
    _socket_dir: tempfile::TempDir,
}

/// Starts the provider as Terraform does; `client_cert` is the PEM for `PLUGIN_CLIENT_CERT`.
fn start(client_cert: Option<&str>) -> Plugin {
    start_with(client_cert, &[])
}

fn start_with(client_cert: Option<&str>, env: &[(&str, &str)]) -> Plugin {
    let socket_dir = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(BIN);
    cmd.env(MAGIC_COOKIE_KEY, MAGIC_COOKIE_VALUE)
        .env("PLUGIN_PROTOCOL_VERSIONS", "5,6")
        .env("PLUGIN_MIN_PORT", "10000")
        .env("PLUGIN_MAX_PORT", "25000")
        .env("PLUGIN_UNIX_SOCKET_DIR", socket_dir.path())
        .env_remove("PLUGIN_CLIENT_CERT")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    if let Some(pem) = client_cert {
        cmd.env("PLUGIN_CLIENT_CERT", pem);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    if env.iter().any(|(k, _)| k.starts_with("TF_LOG")) {
        cmd.stderr(Stdio::piped());
    }
    let mut child = cmd.spawn().unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    let handshake = Handshake::parse(&line).unwrap();
    Plugin {
        child,
        stdout,
        handshake,
        _socket_dir: socket_dir,
    }
}

fn client_tls(client: &tls::Identity, plugin: &Plugin) -> rustls::ClientConfig {
    let server_cert = plugin.handshake.server_cert.clone().expect("TLS is on");
    tls::client_config(client, server_cert.into()).unwrap()
}

async fn schema(
    plugin: &Plugin,
    tls: Option<rustls::ClientConfig>,
) -> Result<get_provider_schema::Response, String> {
    let channel = connect_unix(PathBuf::from(&plugin.handshake.address), tls)
        .await
        .map_err(|e| format!("{e:?}"))?;
    let mut client = ProviderClient::new(channel);
    client
        .get_provider_schema(get_provider_schema::Request {})
        .await
        .map(tonic::Response::into_inner)
        .map_err(|e| e.to_string())
}

/// Sends Shutdown and checks the process is gone well within Terraform's 2 s patience, having
/// written nothing more to stdout.
async fn shutdown(mut plugin: Plugin, tls: Option<rustls::ClientConfig>) {
    let channel = connect_unix(PathBuf::from(&plugin.handshake.address), tls)
        .await
        .unwrap();
    GrpcControllerClient::new(channel)
        .shutdown(dr_proto::plugin::Empty {})
        .await
        .unwrap();
    let started = Instant::now();
    let status = loop {
        if let Some(status) = plugin.child.try_wait().unwrap() {
            break status;
        }
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "plugin still running 2 s after Shutdown"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    assert!(status.success(), "{status}");
    let mut rest = String::new();
    plugin.stdout.read_to_string(&mut rest).unwrap();
    assert_eq!(rest, "", "nothing may follow the handshake line on stdout");
    assert!(
        !PathBuf::from(&plugin.handshake.address).exists(),
        "the socket is removed on exit"
    );
}

#[test]
fn run_by_hand_it_explains_and_exits_1() {
    let out = Command::new(BIN)
        .env_remove(MAGIC_COOKIE_KEY)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("This binary is a plugin") && stderr.contains("--debug"),
        "{stderr}"
    );
}

#[test]
fn help_describes_debug_mode_and_exit_codes() {
    let out = Command::new(BIN).arg("--help").output().unwrap();
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(
        help.contains("--debug")
            && help.contains("TF_REATTACH_PROVIDERS")
            && help.contains("Exit status"),
        "{help}"
    );
    let bad = Command::new(BIN).arg("--frobnicate").output().unwrap();
    assert_eq!(bad.status.code(), Some(2));
}

#[test]
fn a_client_offering_only_protocol_5_gets_a_clear_error() {
    let out = Command::new(BIN)
        .env(MAGIC_COOKIE_KEY, MAGIC_COOKIE_VALUE)
        .env("PLUGIN_PROTOCOL_VERSIONS", "5")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty(), "no handshake line");
    assert!(String::from_utf8_lossy(&out.stderr).contains("protocol 6"));
}

#[tokio::test]
async fn automtls_serves_the_pinned_client_and_refuses_any_other() {
    // Terraform's certificate: ECDSA P-521 with SHA-512, self-signed, marked CA.
    let terraform = tls::generate_identity(&rcgen::PKCS_ECDSA_P521_SHA512).unwrap();
    let plugin = start(Some(&tls::cert_pem(&terraform.cert)));
    let h = &plugin.handshake;
    assert_eq!(
        (
            h.core_version,
            h.protocol_version,
            h.network.as_str(),
            h.protocol.as_str()
        ),
        (1, 6, "unix", "grpc")
    );

    let schema_reply = schema(&plugin, Some(client_tls(&terraform, &plugin)))
        .await
        .expect("the pinned client is served");
    let block = schema_reply.provider.unwrap().block.unwrap();
    let passphrase = block
        .attributes
        .iter()
        .find(|a| a.name == "passphrase")
        .unwrap();
    assert!(passphrase.sensitive && passphrase.optional);

    // Same shape of certificate, different key: refused.
    let stranger = tls::generate_identity(&rcgen::PKCS_ECDSA_P521_SHA512).unwrap();
    let refused = schema(&plugin, Some(client_tls(&stranger, &plugin))).await;
    assert!(
        refused.is_err(),
        "a client with another certificate must not be served"
    );

    // No TLS at all: refused too.
    assert!(
        schema(&plugin, None).await.is_err(),
        "plaintext must not be served when TLS was asked for"
    );

    // Health for service "plugin", as go-plugin checks it.
    let channel = connect_unix(
        PathBuf::from(&plugin.handshake.address),
        Some(client_tls(&terraform, &plugin)),
    )
    .await
    .unwrap();
    let health = tonic_health::pb::health_client::HealthClient::new(channel)
        .check(tonic_health::pb::HealthCheckRequest {
            service: "plugin".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        health.status,
        tonic_health::pb::health_check_response::ServingStatus::Serving as i32
    );

    let tls = client_tls(&terraform, &plugin);
    shutdown(plugin, Some(tls)).await;
}

#[tokio::test]
async fn without_a_client_certificate_it_serves_plaintext() {
    let plugin = start(None);
    assert_eq!(
        plugin.handshake.server_cert, None,
        "no certificate field without TLS"
    );
    schema(&plugin, None)
        .await
        .expect("plaintext h2c is served");
    shutdown(plugin, None).await;
}

#[tokio::test]
async fn sigint_from_the_terminal_does_not_stop_the_provider() {
    let plugin = start(None);
    // Ctrl-C reaches the whole process group; Terraform stops providers through StopProvider.
    let pid = plugin.child.id().to_string();
    assert!(Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .unwrap()
        .success());
    tokio::time::sleep(Duration::from_millis(100)).await;
    schema(&plugin, None)
        .await
        .expect("still serving after SIGINT");
    shutdown(plugin, None).await;
}

#[tokio::test]
async fn logs_are_hclog_json_lines_at_the_requested_level() {
    let mut plugin = start_with(None, &[("TF_LOG_PROVIDER", "debug")]);
    let mut stderr = plugin.child.stderr.take().unwrap();
    schema(&plugin, None).await.unwrap();
    shutdown(plugin, None).await;
    let mut text = String::new();
    stderr.read_to_string(&mut text).unwrap();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(!lines.is_empty(), "debug logging writes lines");
    for line in &lines {
        for field in ["@level", "@message", "@module", "@timestamp"] {
            assert!(line[field].is_string(), "{field} must be a string: {line}");
        }
        let ts = line["@timestamp"].as_str().unwrap();
        let fraction = ts.split('.').nth(1).unwrap();
        assert_eq!(fraction.len(), 7, "six fractional digits then Z: {ts}");
    }
    assert!(lines.iter().any(|l| l["@level"] == "debug"));
}
