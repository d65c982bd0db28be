//! Starting a provider process the way go-plugin expects: the magic-cookie check, protocol
//! negotiation, a unix socket, AutoMTLS, the one handshake line on stdout, and the services
//! Terraform talks to (provider, controller, stdio, broker, health). Also debug mode, which
//! serves plaintext and prints the `TF_REATTACH_PROVIDERS` value for a second shell.

use crate::conn::Incoming;
use crate::plugin_services::{Broker, Controller, Stdio};
use crate::provider::Provider;
use crate::server::ProviderService;
use crate::tls;
use base64::Engine as _;
use dr_proto::plugin::grpc_broker_server::GrpcBrokerServer;
use dr_proto::plugin::grpc_controller_server::GrpcControllerServer;
use dr_proto::plugin::grpc_stdio_server::GrpcStdioServer;
use dr_proto::tfplugin6::provider_server::ProviderServer;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use tokio::net::{TcpListener, UnixListener};
use tokio::sync::watch;

/// The cookie Terraform sets so a provider knows it was not started by hand.
pub const MAGIC_COOKIE_KEY: &str = "TF_PLUGIN_MAGIC_COOKIE";
pub const MAGIC_COOKIE_VALUE: &str =
    "d602bf8f470bc67ca7faa0386276bbdd4330efaf76d1a219cb4d6991ca9872b2";

/// Terraform sends messages up to `MaxInt32` bytes; tonic's default limit is 4 MiB.
pub const MAX_MESSAGE_BYTES: usize = i32::MAX as usize;

/// What the process serves.
pub struct ServeConfig {
    /// The provider's full source address, e.g. `registry.terraform.io/dr-project/dr`, used in
    /// the debug-mode reattach line.
    pub address: &'static str,
    /// The `name version` line for `--version`.
    pub version: &'static str,
}

/// Runs a provider binary: parses `--debug`/`--help`/`--version`, then serves until Terraform
/// shuts it down. Returns the process exit code.
pub fn main(provider: impl Provider, config: &ServeConfig) -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let debug = match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        [] => false,
        ["--debug"] => true,
        ["--version" | "-V"] => {
            println!("{}", config.version);
            return ExitCode::SUCCESS;
        }
        ["--help" | "-h"] => {
            println!("{}", usage(config));
            return ExitCode::SUCCESS;
        }
        other => {
            eprintln!("error: unexpected arguments {other:?}\n\n{}", usage(config));
            return ExitCode::from(2);
        }
    };
    if !debug && std::env::var(MAGIC_COOKIE_KEY).as_deref() != Ok(MAGIC_COOKIE_VALUE) {
        eprintln!(
            "This binary is a plugin. These are not meant to be executed directly.\n\
             Please execute the program that consumes these plugins, which will\n\
             load any plugins automatically.\n\n\
             hint: to debug the provider, run it with --debug and follow the instructions it prints."
        );
        return ExitCode::from(1);
    }
    crate::logging::init("provider");
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let result = runtime.block_on(async move {
        let provider: Arc<dyn Provider> = Arc::new(provider);
        if debug {
            serve_debug(provider, config).await
        } else {
            serve_plugin(provider).await
        }
    });
    // Do not wait for blocking tasks a provider may have left running: Terraform is waiting
    // for this process to exit.
    runtime.shutdown_background();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(1)
        }
    }
}

fn usage(config: &ServeConfig) -> String {
    format!(
        "{version}\n\n\
         A Terraform provider plugin: Terraform starts it, you do not.\n\n\
         Usage:\n  terraform-provider-… [--debug | --version | --help]\n\n\
         Options:\n  \
           --debug    serve without Terraform's supervision and print a TF_REATTACH_PROVIDERS\n             \
                      value; export it in another shell, run terraform there (Ctrl-C stops)\n  \
           --version  print the version\n\n\
         Environment:\n  \
           TF_LOG_PROVIDER, TF_LOG   log level (trace, debug, info, warn, error) of the JSON lines on stderr\n\n\
         Exit status: 0 after a normal shutdown, 1 when the plugin cannot start, 2 on bad arguments.\n\
         Address: {address}",
        version = config.version,
        address = config.address,
    )
}

/// Errors that stop the plugin from starting.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(
        "this provider speaks plugin protocol 6 (Terraform 1.0 and later), but the client offered {0:?}; \
         upgrade Terraform"
    )]
    NoCommonProtocol(String),
    #[error("cannot listen on {path}: {source}")]
    Listen {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
    #[error("gRPC server failed: {0}")]
    Transport(#[from] tonic::transport::Error),
    #[error("cannot write the handshake line: {0}")]
    Stdout(std::io::Error),
}

/// Picks protocol 6 from `PLUGIN_PROTOCOL_VERSIONS` (a comma list, in any order).
fn negotiate(offered: Option<&str>) -> Result<u32, ServeError> {
    let Some(offered) = offered else { return Ok(6) };
    if offered.split(',').any(|v| v.trim() == "6") {
        Ok(6)
    } else {
        Err(ServeError::NoCommonProtocol(offered.to_string()))
    }
}

fn socket_path() -> PathBuf {
    let dir =
        std::env::var_os("PLUGIN_UNIX_SOCKET_DIR").map_or_else(std::env::temp_dir, PathBuf::from);
    dir.join(format!("plugin{}", uuid::Uuid::new_v4().simple()))
}

fn bind_unix(path: &Path) -> Result<UnixListener, ServeError> {
    UnixListener::bind(path).map_err(|source| ServeError::Listen {
        path: path.to_path_buf(),
        source,
    })
}

/// Normal mode, started by Terraform.
async fn serve_plugin(provider: Arc<dyn Provider>) -> Result<(), ServeError> {
    let protocol = negotiate(std::env::var("PLUGIN_PROTOCOL_VERSIONS").ok().as_deref())?;
    ignore_interrupts();
    let path = socket_path();
    let listener = bind_unix(&path)?;
    let _cleanup = RemoveOnDrop(path.clone());

    let client_cert = std::env::var("PLUGIN_CLIENT_CERT")
        .ok()
        .filter(|s| !s.trim().is_empty());
    let (incoming, cert_field) = match client_cert {
        Some(pem) => {
            let identity = tls::generate_identity(&rcgen::PKCS_ECDSA_P256_SHA256)?;
            let server_config = tls::server_config(&identity, tls::parse_client_cert(&pem)?)?;
            let cert_b64 =
                base64::engine::general_purpose::STANDARD_NO_PAD.encode(identity.cert.as_ref());
            (Incoming::unix_tls(listener, server_config), cert_b64)
        }
        // Terraform disabled TLS (TF_DISABLE_PLUGIN_TLS): plaintext h2c.
        None => (Incoming::unix_plain(listener), String::new()),
    };

    let line = format!("1|{protocol}|unix|{}|grpc|{cert_field}\n", path.display());
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(line.as_bytes())
        .and_then(|()| stdout.flush())
        .map_err(ServeError::Stdout)?;
    drop(stdout);
    tracing::debug!(socket = %path.display(), "plugin serving");

    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    run_services(
        provider,
        incoming,
        Controller::exiting(shutdown_tx),
        shutdown_rx,
    )
    .await
}

/// Debug mode: plaintext on a unix socket, a reattach line for the user, Ctrl-C to stop.
async fn serve_debug(provider: Arc<dyn Provider>, config: &ServeConfig) -> Result<(), ServeError> {
    let path = socket_path();
    let listener = bind_unix(&path)?;
    let _cleanup = RemoveOnDrop(path.clone());
    let reattach = serde_json::json!({
        config.address: {
            "Protocol": "grpc",
            "ProtocolVersion": 6,
            "Pid": std::process::id(),
            "Test": true,
            "Addr": { "Network": "unix", "String": path.display().to_string() },
        }
    });
    println!(
        "Provider started. To attach Terraform CLI, set the TF_REATTACH_PROVIDERS environment variable with the following:\n\n\
         \tTF_REATTACH_PROVIDERS='{reattach}'\n"
    );
    let _ = std::io::stdout().flush();
    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    tokio::spawn(async move {
        wait_for_termination().await;
        let _ = shutdown_tx.send(true);
    });
    // Terraform does not own a reattached process: its Shutdown calls are ignored.
    run_services(
        provider,
        Incoming::unix_plain(listener),
        Controller::ignoring(),
        shutdown_rx,
    )
    .await
}

/// Serves on TCP loopback without TLS — for in-process tests of RPCs no available Terraform
/// sends. Returns the bound address and a sender that stops the server.
///
/// # Errors
/// When the listener cannot be bound.
pub async fn serve_tcp_for_tests(
    provider: Arc<dyn Provider>,
) -> std::io::Result<(
    std::net::SocketAddr,
    watch::Sender<bool>,
    tokio::task::JoinHandle<()>,
)> {
    let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
    let addr = listener.local_addr()?;
    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let controller = Controller::exiting(shutdown_tx.clone());
    let handle = tokio::spawn(async move {
        if let Err(e) = run_services(
            provider,
            Incoming::tcp_plain(listener),
            controller,
            shutdown_rx,
        )
        .await
        {
            tracing::error!("test server failed: {e}");
        }
    });
    Ok((addr, shutdown_tx, handle))
}

/// A gRPC client of `provider` served by [`serve_tcp_for_tests`]: what in-process tests of
/// the protocol call. The server runs until the test's runtime ends.
///
/// # Panics
/// When the server cannot be bound or reached (a broken test machine).
pub async fn client_for_tests(
    provider: Arc<dyn Provider>,
) -> dr_proto::tfplugin6::provider_client::ProviderClient<tonic::transport::Channel> {
    let (addr, _stop, _task) = serve_tcp_for_tests(provider)
        .await
        .expect("bind a loopback port");
    dr_proto::tfplugin6::provider_client::ProviderClient::connect(format!("http://{addr}"))
        .await
        .expect("connect to the test server")
}

async fn run_services(
    provider: Arc<dyn Provider>,
    incoming: Incoming,
    controller: Controller,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(), ServeError> {
    let (health_reporter, health_service) = tonic_health::server::health_reporter();
    health_reporter
        .set_service_status("plugin", tonic_health::ServingStatus::Serving)
        .await;
    let provider_service = ProviderServer::new(ProviderService::new(provider))
        .max_decoding_message_size(MAX_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_MESSAGE_BYTES);
    let stopped = {
        let mut shutdown = shutdown.clone();
        async move {
            let _ = shutdown.wait_for(|stop| *stop).await;
        }
    };
    let server = tonic::transport::Server::builder()
        .add_service(provider_service)
        .add_service(GrpcControllerServer::new(controller))
        .add_service(GrpcStdioServer::new(Stdio::new(shutdown.clone())))
        .add_service(GrpcBrokerServer::new(Broker::new(shutdown.clone())))
        .add_service(health_service)
        .serve_with_incoming_shutdown(incoming.into_stream(), stopped);
    tokio::select! {
        result = server => result?,
        // A graceful stop waits for the client to hang up; Terraform kills us 2 s after
        // Shutdown, so give in-flight replies a moment and then go.
        () = async {
            let _ = shutdown.wait_for(|stop| *stop).await;
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        } => {}
    }
    Ok(())
}

/// Terraform handles Ctrl-C itself (it calls `StopProvider`); the provider must survive the
/// SIGINT the terminal sends to the whole process group.
fn ignore_interrupts() {
    if let Ok(mut sigint) =
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())
    {
        tokio::spawn(async move {
            while sigint.recv().await.is_some() {
                tracing::debug!("ignoring SIGINT: Terraform stops providers through StopProvider");
            }
        });
    }
}

async fn wait_for_termination() {
    use tokio::signal::unix::{signal, SignalKind};
    match (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) {
        (Ok(mut int), Ok(mut term)) => {
            tokio::select! {
                _ = int.recv() => {}
                _ = term.recv() => {}
            }
        }
        _ => std::future::pending().await,
    }
}

struct RemoveOnDrop(PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protocol_6_is_chosen_from_any_order() {
        assert_eq!(negotiate(Some("5,6")).unwrap(), 6);
        assert_eq!(negotiate(Some("6,5")).unwrap(), 6);
        assert_eq!(negotiate(None).unwrap(), 6);
        let err = negotiate(Some("4,5")).unwrap_err().to_string();
        assert!(
            err.contains("protocol 6") && err.contains("\"4,5\""),
            "{err}"
        );
    }
}
