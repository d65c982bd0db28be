//! Connections the gRPC server accepts: unix or TCP, plaintext or TLS.
//!
//! tonic's own TLS cannot pin a client certificate (see `tls.rs`), so TLS is terminated here
//! with tokio-rustls and tonic serves the decrypted streams.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream, UnixListener, UnixStream};
use tokio::sync::mpsc;
use tokio_rustls::server::TlsStream;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::server::Connected;

/// A client that has not finished its TLS handshake by then is dropped.
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Pause after a failed accept before trying again.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// One accepted connection.
pub enum Conn {
    Unix(UnixStream),
    UnixTls(Box<TlsStream<UnixStream>>),
    Tcp(TcpStream),
}

impl Connected for Conn {
    type ConnectInfo = ();

    fn connect_info(&self) -> Self::ConnectInfo {}
}

macro_rules! delegate {
    ($self:ident, $s:ident => $body:expr) => {
        match $self.get_mut() {
            Conn::Unix($s) => {
                let $s = Pin::new($s);
                $body
            }
            Conn::UnixTls($s) => {
                let $s = Pin::new($s.as_mut());
                $body
            }
            Conn::Tcp($s) => {
                let $s = Pin::new($s);
                $body
            }
        }
    };
}

impl AsyncRead for Conn {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        delegate!(self, s => s.poll_read(cx, buf))
    }
}

impl AsyncWrite for Conn {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        delegate!(self, s => s.poll_write(cx, buf))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        delegate!(self, s => s.poll_flush(cx))
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        delegate!(self, s => s.poll_shutdown(cx))
    }
}

/// The stream of an accept result. Accept errors (e.g. out of file descriptors) are logged
/// and waited out rather than handed to tonic, which would retry at once and spin.
async fn accepted<S, A>(result: io::Result<(S, A)>) -> Option<S> {
    match result {
        Ok((stream, _)) => Some(stream),
        Err(e) => {
            tracing::warn!("accept failed: {e}");
            tokio::time::sleep(ACCEPT_BACKOFF).await;
            None
        }
    }
}

/// The accept loop, as a stream tonic can serve.
pub struct Incoming(mpsc::Receiver<io::Result<Conn>>);

impl Incoming {
    pub fn unix_plain(listener: UnixListener) -> Self {
        Self::spawn(move |tx| async move {
            loop {
                let Some(stream) = accepted(listener.accept().await).await else {
                    continue;
                };
                if tx.send(Ok(Conn::Unix(stream))).await.is_err() {
                    return;
                }
            }
        })
    }

    pub fn tcp_plain(listener: TcpListener) -> Self {
        Self::spawn(move |tx| async move {
            loop {
                let Some(stream) = accepted(listener.accept().await).await else {
                    continue;
                };
                if tx.send(Ok(Conn::Tcp(stream))).await.is_err() {
                    return;
                }
            }
        })
    }

    /// Each handshake runs in its own task, so one stalled client cannot block the others; a
    /// client with the wrong certificate is logged and dropped, never served.
    pub fn unix_tls(listener: UnixListener, config: rustls::ServerConfig) -> Self {
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        Self::spawn(move |tx| async move {
            loop {
                let Some(stream) = accepted(listener.accept().await).await else {
                    continue;
                };
                if tx.is_closed() {
                    return;
                }
                let acceptor = acceptor.clone();
                let tx = tx.clone();
                tokio::spawn(async move {
                    match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await
                    {
                        Ok(Ok(tls)) => {
                            let _ = tx.send(Ok(Conn::UnixTls(Box::new(tls)))).await;
                        }
                        Ok(Err(e)) => tracing::warn!("TLS handshake refused: {e}"),
                        Err(_) => tracing::warn!("TLS handshake timed out"),
                    }
                });
            }
        })
    }

    fn spawn<F, Fut>(accept_loop: F) -> Self
    where
        F: FnOnce(mpsc::Sender<io::Result<Conn>>) -> Fut,
        Fut: std::future::Future<Output = ()> + Send + 'static,
    {
        let (tx, rx) = mpsc::channel(16);
        tokio::spawn(accept_loop(tx));
        Incoming(rx)
    }

    pub fn into_stream(self) -> ReceiverStream<io::Result<Conn>> {
        ReceiverStream::new(self.0)
    }
}
