//! The accept loop: HTTP/1.1 connections with a header (and idle keep-alive) timeout, a
//! write timeout, a deadline a handler may set on its answer (`Cutoff`), a cap on open
//! connections, and a graceful shutdown with a deadline.
//!
//! `axum::serve` has none of these knobs, so connections are served with hyper directly,
//! as in axum's `serve-with-hyper` example, and watched by hyper-util's `GracefulShutdown`.

use crate::error::ApiError;
use crate::http::limits::limit_key;
use axum::extract::ConnectInfo;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use std::collections::HashMap;
use std::future::Future;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::Mutex;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};
use tokio::time::Instant;
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
    /// Most connections open at once from one address (IPv6: one /64); past it, a new one
    /// is answered 503 `too_many_connections` and closed. Zero: no cap.
    pub max_per_address: usize,
    /// Addresses the per-address cap does not apply to (the trusted proxies).
    pub exempt: Vec<IpAddr>,
    /// After a shutdown signal, how long open requests may take before being dropped.
    pub shutdown_timeout: Duration,
}

/// A handler's hold on its connection's deadline (in the request's extensions when served
/// by `run`): past the instant set, the connection is dropped whatever the peer does, so
/// a reader that takes a byte now and then cannot keep an answer going forever. Cleared
/// when this value is dropped (the answer's body with it), for the next keep-alive request.
pub struct Cutoff(Arc<watch::Sender<Option<Instant>>>);

impl Cutoff {
    /// Drops the connection at `when` unless this value is dropped first.
    pub fn at(sender: &CutoffSender, when: Instant) -> Cutoff {
        sender.0.send_replace(Some(when));
        Cutoff(sender.0.clone())
    }
}

impl Drop for Cutoff {
    fn drop(&mut self) {
        self.0.send_replace(None);
    }
}

/// What a handler finds in the request's extensions to set a `Cutoff`.
#[derive(Clone)]
pub struct CutoffSender(Arc<watch::Sender<Option<Instant>>>);

/// Open connections by client address; an entry lives while its count is above zero, so
/// the table never holds more than `max_connections` entries.
struct PerAddress {
    open: Mutex<HashMap<IpAddr, usize>>,
    max: usize,
}

/// One connection counted against its address, until dropped.
struct AddressSlot {
    table: Arc<PerAddress>,
    key: IpAddr,
}

impl PerAddress {
    /// Counts a connection from `key`, or `None` when the address is at its cap.
    fn take(table: &Arc<PerAddress>, key: IpAddr) -> Option<AddressSlot> {
        let mut open = table.open.lock().unwrap_or_else(|p| p.into_inner());
        let n = open.entry(key).or_insert(0);
        if *n >= table.max {
            return None;
        }
        *n += 1;
        Some(AddressSlot {
            table: table.clone(),
            key,
        })
    }
}

impl Drop for AddressSlot {
    fn drop(&mut self) {
        let mut open = self.table.open.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = open.get_mut(&self.key) {
            *n -= 1;
            if *n == 0 {
                open.remove(&self.key);
            }
        }
    }
}

/// One connection counted in the `open_connections` gauge, until dropped.
struct OpenConnection;

impl OpenConnection {
    fn new() -> OpenConnection {
        crate::metrics::get().open_connections.inc();
        OpenConnection
    }
}

impl Drop for OpenConnection {
    fn drop(&mut self) {
        crate::metrics::get().open_connections.dec();
    }
}

/// Completes once the instant last set has passed.
async fn cutoff_reached(mut rx: watch::Receiver<Option<Instant>>) {
    loop {
        let when = *rx.borrow_and_update();
        let changed = async {
            if rx.changed().await.is_err() {
                std::future::pending::<()>().await;
            }
        };
        match when {
            Some(t) => tokio::select! {
                () = tokio::time::sleep_until(t) => return,
                () = changed => {}
            },
            None => changed.await,
        }
    }
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
    let per_address = Arc::new(PerAddress {
        open: Mutex::new(HashMap::new()),
        max: limits.max_per_address,
    });
    let exempt: Vec<IpAddr> = limits.exempt.iter().map(|ip| ip.to_canonical()).collect();
    let refusal = ApiError::TooManyConnections.raw_response();
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
        let key = limit_key(peer.ip());
        let address_slot = if limits.max_per_address == 0 || exempt.contains(&key) {
            None
        } else {
            match PerAddress::take(&per_address, key) {
                Some(s) => Some(s),
                None => {
                    // Answered without reading: a best-effort write into an empty socket
                    // buffer, never a wait.
                    tracing::debug!(%peer, "per-address connection cap reached");
                    crate::metrics::get()
                        .connections_refused
                        .get_or_create(&crate::metrics::ReasonLabel {
                            reason: "per_address",
                        })
                        .inc();
                    let _ = stream.try_write(&refusal);
                    continue;
                }
            }
        };
        let _ = stream.set_nodelay(true);
        let mut io = TimeoutStream::new(stream);
        io.set_write_timeout(Some(limits.write_timeout));
        let io = TokioIo::new(Box::pin(io));
        let app = app.clone();
        let (cutoff, cutoff_rx) = watch::channel(None);
        let cutoff = CutoffSender(Arc::new(cutoff));
        let svc = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
            req.extensions_mut().insert(ConnectInfo(peer));
            req.extensions_mut().insert(cutoff.clone());
            app.clone().oneshot(req)
        });
        let conn = graceful.watch(http.serve_connection(io, svc));
        let open = OpenConnection::new();
        tokio::spawn(async move {
            let _slots = (slot, address_slot, open);
            tokio::select! {
                r = conn => if let Err(e) = r {
                    tracing::debug!(%peer, error = %e, "connection closed");
                },
                () = cutoff_reached(cutoff_rx) => {
                    tracing::warn!(%peer, "answer deadline passed; connection dropped");
                }
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
