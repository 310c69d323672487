//! The accept loop: HTTP/1.1 connections with a header (and idle keep-alive) timeout, a
//! write timeout, a cap on open connections, and a graceful shutdown with a deadline.
//!
//! `axum::serve` has none of these knobs, so connections are served with hyper directly,
//! as in axum's `serve-with-hyper` example, and watched by hyper-util's `GracefulShutdown`.

use axum::extract::ConnectInfo;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_io_timeout::TimeoutStream;
use tower::ServiceExt;

/// How long a peer may take, and how many peers at once.
#[derive(Debug, Clone)]
pub struct Limits {
    /// To send a request's headers, counted from the connection's start or from the end of
    /// the previous answer: so it is also the idle keep-alive timeout.
    pub header_timeout: Duration,
    /// Longest a write to the peer may stay blocked (a reader that stopped reading).
    pub write_timeout: Duration,
    /// Most connections open at once; past it, new ones wait in the listen backlog.
    pub max_connections: usize,
    /// After a shutdown signal, how long open requests may take before being dropped.
    pub shutdown_timeout: Duration,
}

/// Serves `app` on `listener` until `shutdown` completes, then waits for open connections
/// to finish their current request, at most `shutdown_timeout`.
pub async fn run(
    listener: TcpListener,
    app: Router,
    limits: Limits,
    shutdown: impl Future<Output = ()>,
) {
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let graceful = GracefulShutdown::new();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout);
    tokio::pin!(shutdown);
    let mut full_logged = false;
    loop {
        // At the cap, stop accepting: new peers wait in the kernel's backlog until a slot
        // frees (an answer ends, a timeout closes an idle peer).
        if slots.available_permits() == 0 && !full_logged {
            tracing::warn!(
                max = limits.max_connections,
                "connection cap reached; new connections wait"
            );
        }
        full_logged = slots.available_permits() == 0;
        let slot = tokio::select! {
            s = slots.clone().acquire_owned() => s.expect("the semaphore is never closed"),
            () = &mut shutdown => break,
        };
        let (stream, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    // Out of file descriptors, typically: say so, and let others finish.
                    tracing::error!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let mut io = TimeoutStream::new(stream);
        io.set_write_timeout(Some(limits.write_timeout));
        let io = TokioIo::new(Box::pin(io));
        let app = app.clone();
        let svc = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
            req.extensions_mut().insert(ConnectInfo(peer));
            app.clone().oneshot(req)
        });
        let conn = graceful.watch(http.serve_connection(io, svc));
        tokio::spawn(async move {
            let _slot = slot;
            if let Err(e) = conn.await {
                tracing::debug!(%peer, error = %e, "connection closed");
            }
        });
    }
    drop(listener);
    let open = graceful.count();
    tracing::info!(open, "shutting down: no new connections");
    tokio::select! {
        () = graceful.shutdown() => tracing::info!("every connection closed"),
        () = tokio::time::sleep(limits.shutdown_timeout) => tracing::warn!(
            secs = limits.shutdown_timeout.as_secs_f64(),
            "shutdown deadline passed; dropping the remaining connections"
        ),
    }
}
