//! The accept loop and each connection's message loop.
//!
//! The message loop is pgwire's (`process_message` / `process_error`) with what a server
//! needs around it: a protocol error (a garbage start-up packet, a message with an impossible
//! length, one over the protocol's size limits) is answered with a FATAL error before the
//! connection closes; an idle connection closes after `idle_timeout`; on shutdown a
//! connection closes as soon as its running statement ends.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use pgwire::api::{ClientInfo, PgWireConnectionState, PgWireServerHandlers};
use pgwire::error::ErrorInfo;
use pgwire::messages::{PgWireBackendMessage, PgWireFrontendMessage};
use pgwire::tokio::server::{negotiate_tls, process_error, process_message};
use pgwire::tokio::TlsAcceptor;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;

use crate::config::ServerConfig;
use crate::handlers::Handlers;
use crate::registry::Registry;

/// How long a client has to log in.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(60);
/// How often an idle connection checks its timeout and the shutdown flag.
const WATCH_INTERVAL: Duration = Duration::from_millis(100);

/// Accepts connections until `shutdown` resolves, then lets running statements finish
/// (for up to `shutdown_grace`, then cancels them) and returns when every connection closed.
pub(crate) async fn accept_loop(
    listener: TcpListener,
    handlers: Arc<Handlers>,
    config: ServerConfig,
    tls: Option<TlsAcceptor>,
    shutdown: impl std::future::Future<Output = ()>,
) {
    let registry = handlers.registry.clone();
    let mut connections = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((socket, peer)) => {
                    let handlers = handlers.clone();
                    let idle = config.idle_timeout;
                    let tls = tls.clone();
                    connections.spawn(async move {
                        serve_connection(socket, peer, handlers.clone(), tls, idle).await;
                        handlers.registry.detach(peer);
                    });
                }
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(WATCH_INTERVAL).await;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            _ = &mut shutdown => break,
        }
    }
    drop(listener);
    tracing::info!(
        connections = registry.connection_count(),
        "shutting down: waiting for running statements"
    );
    registry.shut_down();
    let drained = tokio::time::timeout(config.shutdown_grace, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!("shutdown grace period over: canceling running statements");
        registry.cancel_all();
        let _ = tokio::time::timeout(Duration::from_secs(10), async {
            while connections.join_next().await.is_some() {}
        })
        .await;
    }
}

/// Serves one client until it disconnects, fails or is closed by the server.
async fn serve_connection(
    socket: TcpStream,
    peer: SocketAddr,
    handlers: Arc<Handlers>,
    tls: Option<TlsAcceptor>,
    idle: Duration,
) {
    let negotiated = tokio::time::timeout(STARTUP_TIMEOUT, negotiate_tls(socket, tls)).await;
    let mut socket = match negotiated {
        Ok(Ok(Some(s))) => s,
        Ok(Ok(None)) => return,
        Ok(Err(e)) => {
            tracing::debug!(%peer, error = %e, "connection failed before start-up");
            return;
        }
        Err(_) => return,
    };
    let startup = handlers.startup_handler();
    let simple = handlers.simple_query_handler();
    let extended = handlers.extended_query_handler();
    let copy = handlers.copy_handler();
    let cancel = handlers.cancel_handler();
    let registry = handlers.registry.clone();
    let started = tokio::time::Instant::now();
    loop {
        let message = tokio::select! {
            m = socket.next() => m,
            reason = closing(&registry, peer, idle, started) => {
                let _ = socket
                    .send(PgWireBackendMessage::ErrorResponse(
                        ErrorInfo::new("FATAL".into(), reason.0.into(), reason.1.into()).into(),
                    ))
                    .await;
                break;
            }
        };
        let message = match message {
            None => break,
            Some(Ok(m)) => m,
            Some(Err(e)) => {
                tracing::info!(%peer, error = %e, "protocol error; closing the connection");
                let code = e.code().to_string();
                let _ = socket
                    .send(PgWireBackendMessage::ErrorResponse(
                        ErrorInfo::new("FATAL".into(), code, format!("invalid message: {e}"))
                            .into(),
                    ))
                    .await;
                break;
            }
        };
        if matches!(message, PgWireFrontendMessage::Terminate(_)) {
            break;
        }
        let extended_message = match socket.state() {
            PgWireConnectionState::CopyInProgress(extended) => extended,
            _ => message.is_extended_query(),
        };
        let is_cancel = matches!(message, PgWireFrontendMessage::CancelRequest(_));
        let result = process_message(
            message,
            &mut socket,
            startup.clone(),
            simple.clone(),
            extended.clone(),
            copy.clone(),
            cancel.clone(),
        )
        .await;
        if let Err(e) = result {
            let fatal = e.is_fatal();
            if process_error(&mut socket, e, extended_message)
                .await
                .is_err()
                || fatal
            {
                break;
            }
        }
        if is_cancel {
            break;
        }
    }
}

/// Resolves when the connection should close while it waits for a message: the server is
/// shutting down, the session has been idle too long, or the client never logged in.
async fn closing(
    registry: &Registry,
    peer: SocketAddr,
    idle: Duration,
    started: tokio::time::Instant,
) -> (&'static str, &'static str) {
    loop {
        tokio::time::sleep(WATCH_INTERVAL).await;
        if registry.is_shutting_down() {
            return (
                "57P01",
                "terminating connection due to administrator command",
            );
        }
        match registry.session(peer) {
            Some(s) if !idle.is_zero() && s.idle_for(idle) => {
                return (
                    "57P05",
                    "terminating connection due to idle-session timeout",
                );
            }
            Some(_) => {}
            None if started.elapsed() > STARTUP_TIMEOUT => {
                return ("08P01", "start-up timed out");
            }
            None => {}
        }
    }
}
