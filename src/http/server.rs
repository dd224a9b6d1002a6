//! The HTTP/1.1 listener: accepts connections up to a limit and serves each
//! with hyper under a deadline for request headers.
//!
//! `axum::serve` has neither: a client that opens connections and sends
//! headers one byte at a time (slowloris) would hold sockets and tasks for as
//! long as it likes. Here:
//!
//! - at most `max_connections` connections are served at once; the accept
//!   loop takes a permit *before* accepting, so further connections wait in
//!   the kernel's listen backlog (and time out there on the client's side)
//!   instead of costing a task each;
//! - a request's headers must arrive within `header_timeout` of the first
//!   read; that includes a kept-alive connection waiting for its next
//!   request, so idle connections are closed after the same time;
//! - bodies are the business of [`super::guard`], which reads them only
//!   after authentication and under `http.body_timeout`.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tracing::{debug, error, warn};

/// The connection-level limits (config `[http]`).
#[derive(Debug, Clone, Copy)]
pub struct ServerLimits {
    /// Longest wait for a request's headers (`http.header_timeout`).
    pub header_timeout: Duration,
    /// Connections served at once (`http.max_connections`), at least 1.
    pub max_connections: usize,
}

/// Serves `app` on `listener` until `shutdown` completes, then stops
/// accepting and waits for the connections in progress to finish their
/// current request (the caller bounds that wait).
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: ServerLimits,
    shutdown: impl Future<Output = ()>,
) {
    let permits = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let graceful = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    let mut saturated = false;
    loop {
        let permit = tokio::select! {
            p = permits.clone().acquire_owned() => match p {
                Ok(p) => p,
                // The semaphore is never closed; stop serving if it were.
                Err(_) => break,
            },
            () = &mut shutdown => break,
        };
        let (stream, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(c) => c,
                Err(e) if is_per_connection(&e) => {
                    debug!(error = %e, "connection failed before it was accepted");
                    continue;
                }
                Err(e) => {
                    // Out of file descriptors and the like: give the
                    // process a moment instead of spinning.
                    error!(error = %e, "http accept failed; retrying in 1s");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        // Logged when the limit is reached, not again while it stays so.
        let full = permits.available_permits() == 0;
        if full && !saturated {
            warn!(
                max_connections = limits.max_connections,
                "http.max_connections reached: further connections wait to be accepted"
            );
        }
        saturated = full;
        // Small JSON answers: do not wait for Nagle.
        let _ = stream.set_nodelay(true);
        let conn = http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(limits.header_timeout)
            .serve_connection(TokioIo::new(stream), TowerToHyperService::new(app.clone()));
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                debug!(error = %e, peer = %peer, "http connection ended with an error");
            }
            drop(permit);
        });
    }
    drop(listener);
    graceful.shutdown().await;
}

/// Accept errors that concern one connection only (the peer gave up).
fn is_per_connection(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::ConnectionRefused
            | std::io::ErrorKind::ConnectionAborted
            | std::io::ErrorKind::ConnectionReset
    )
}
