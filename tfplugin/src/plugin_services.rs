//! go-plugin's own services: the controller Terraform calls to stop the process, and the
//! stdio and broker streams it opens (this SDK sends nothing on them).

use dr_proto::plugin::{
    self as pb, grpc_broker_server::GrpcBroker, grpc_controller_server::GrpcController,
    grpc_stdio_server::GrpcStdio,
};
use futures_util::StreamExt as _;
use std::pin::Pin;
use tokio::sync::watch;
use tokio_stream::Stream;
use tonic::{Request, Response, Status, Streaming};

type BoxStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send + 'static>>;

/// Answers `Shutdown`, then stops the server (or, in debug mode, ignores it).
pub struct Controller {
    shutdown: Option<watch::Sender<bool>>,
}

impl Controller {
    pub fn exiting(shutdown: watch::Sender<bool>) -> Self {
        Controller {
            shutdown: Some(shutdown),
        }
    }

    pub fn ignoring() -> Self {
        Controller { shutdown: None }
    }
}

#[tonic::async_trait]
impl GrpcController for Controller {
    async fn shutdown(&self, _request: Request<pb::Empty>) -> Result<Response<pb::Empty>, Status> {
        match &self.shutdown {
            Some(tx) => {
                tracing::debug!("shutdown requested by the client");
                // Signal after this reply is on its way: the serve loop gives replies a
                // moment before it exits.
                let _ = tx.send(true);
            }
            None => tracing::debug!("shutdown ignored: debug mode runs until Ctrl-C"),
        }
        Ok(Response::new(pb::Empty {}))
    }
}

/// Stream that stays open, silent, until the server shuts down.
fn silent_until<T: Send + 'static>(
    mut shutdown: watch::Receiver<bool>,
) -> impl Stream<Item = Result<T, Status>> + Send {
    futures_util::stream::once(async move {
        let _ = shutdown.wait_for(|stop| *stop).await;
    })
    .filter_map(|()| async { None })
}

pub struct Stdio {
    shutdown: watch::Receiver<bool>,
}

impl Stdio {
    pub fn new(shutdown: watch::Receiver<bool>) -> Self {
        Stdio { shutdown }
    }
}

#[tonic::async_trait]
impl GrpcStdio for Stdio {
    type StreamStdioStream = BoxStream<pb::StdioData>;

    async fn stream_stdio(
        &self,
        _request: Request<()>,
    ) -> Result<Response<Self::StreamStdioStream>, Status> {
        Ok(Response::new(Box::pin(silent_until(self.shutdown.clone()))))
    }
}

pub struct Broker {
    shutdown: watch::Receiver<bool>,
}

impl Broker {
    pub fn new(shutdown: watch::Receiver<bool>) -> Self {
        Broker { shutdown }
    }
}

#[tonic::async_trait]
impl GrpcBroker for Broker {
    type StartStreamStream = BoxStream<pb::ConnInfo>;

    async fn start_stream(
        &self,
        request: Request<Streaming<pb::ConnInfo>>,
    ) -> Result<Response<Self::StartStreamStream>, Status> {
        // No sub-plugins are brokered: drain what the client sends and answer nothing.
        let mut inbound = request.into_inner();
        tokio::spawn(async move { while let Some(Ok(_)) = inbound.next().await {} });
        Ok(Response::new(Box::pin(silent_until(self.shutdown.clone()))))
    }
}
