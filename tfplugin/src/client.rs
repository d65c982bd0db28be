//! Playing Terraform's side of the connection: dial a plugin's unix socket, with or without
//! AutoMTLS. Used by tests and benchmarks that talk to a real provider process.

use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use std::path::PathBuf;
use std::sync::Arc;
use tokio::net::UnixStream;
use tonic::transport::{Channel, Endpoint, Uri};

/// Connects to the unix socket at `path`; with `tls`, runs the TLS handshake as go-plugin's
/// client does (server name `localhost`).
///
/// # Errors
/// When the socket cannot be reached or the TLS handshake fails (e.g. the wrong certificate).
pub async fn connect_unix(
    path: PathBuf,
    tls: Option<rustls::ClientConfig>,
) -> Result<Channel, tonic::transport::Error> {
    let tls = tls.map(|config| tokio_rustls::TlsConnector::from(Arc::new(config)));
    // The URI is required by tonic but unused: the connector below decides where to dial.
    Endpoint::from_static("http://localhost")
        .connect_with_connector(tower::service_fn(move |_: Uri| {
            let path = path.clone();
            let tls = tls.clone();
            async move {
                let stream = UnixStream::connect(&path).await?;
                let io: Box<dyn IoStream> = match tls {
                    Some(connector) => {
                        let name =
                            ServerName::try_from("localhost").map_err(std::io::Error::other)?;
                        Box::new(connector.connect(name, stream).await?)
                    }
                    None => Box::new(stream),
                };
                Ok::<_, std::io::Error>(TokioIo::new(io))
            }
        }))
        .await
}

/// A bidirectional byte stream, boxed so plain and TLS connections share one type.
pub trait IoStream: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin> IoStream for T {}

/// The fields of a go-plugin handshake line: `1|6|unix|/tmp/plugin…|grpc|<cert>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Handshake {
    pub core_version: u32,
    pub protocol_version: u32,
    pub network: String,
    pub address: String,
    pub protocol: String,
    /// The server certificate (DER), present when AutoMTLS is on.
    pub server_cert: Option<Vec<u8>>,
}

impl Handshake {
    /// Parses a handshake line the way go-plugin's client does (at most six fields; the
    /// certificate is base64 of its DER without padding).
    ///
    /// # Errors
    /// When the line is not a handshake line.
    pub fn parse(line: &str) -> Result<Handshake, String> {
        use base64::Engine as _;
        let parts: Vec<&str> = line.trim_end_matches(['\r', '\n']).splitn(6, '|').collect();
        if parts.len() < 5 {
            return Err(format!("not a handshake line: {line:?}"));
        }
        let number = |s: &str, what: &str| {
            s.parse::<u32>()
                .map_err(|_| format!("bad {what} {s:?} in {line:?}"))
        };
        let server_cert = match parts.get(5).copied().unwrap_or_default() {
            "" => None,
            b64 => Some(
                base64::engine::general_purpose::STANDARD_NO_PAD
                    .decode(b64)
                    .map_err(|e| format!("certificate is not unpadded base64: {e}"))?,
            ),
        };
        Ok(Handshake {
            core_version: number(parts[0], "core version")?,
            protocol_version: number(parts[1], "protocol version")?,
            network: parts[2].to_string(),
            address: parts[3].to_string(),
            protocol: parts[4].to_string(),
            server_cert,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handshake_lines_parse_with_and_without_certificates() {
        let h = Handshake::parse("1|6|unix|/tmp/plugin1|grpc|AQID\n").unwrap();
        assert_eq!(
            (h.core_version, h.protocol_version, h.network.as_str()),
            (1, 6, "unix")
        );
        assert_eq!(h.server_cert, Some(vec![1, 2, 3]));
        assert_eq!(
            Handshake::parse("1|6|unix|/tmp/p|grpc|")
                .unwrap()
                .server_cert,
            None
        );
        assert!(Handshake::parse("hello").is_err());
    }
}
