//! One access-log line and the request metrics per request, and the warning that a proxy
//! in front is not trusted (every client behind it then shares one rate limit).
//!
//! The line names the route template, never the raw path or query (they may hold an
//! identity), and never a header value.

use super::App;
use crate::metrics::{self, RequestLabels, RouteLabel};
use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use http_body::Body as _;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How often one untrusted peer that sends `X-Forwarded-For` is warned about.
const WARN_EVERY: Duration = Duration::from_secs(3600);
/// Peers remembered for that; past it, those warned over an hour ago are forgotten.
const MAX_WARNED: usize = 10_000;

/// Untrusted peers that sent `X-Forwarded-For`, and when each was last warned about.
#[derive(Default)]
pub struct ProxyWarnings(Mutex<HashMap<IpAddr, Instant>>);

impl ProxyWarnings {
    /// Whether to warn about `peer` now (at most once per `WARN_EVERY`).
    fn due(&self, peer: IpAddr) -> bool {
        let now = Instant::now();
        let mut seen = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if seen.len() >= MAX_WARNED {
            seen.retain(|_, at| now - *at < WARN_EVERY);
        }
        match seen.get(&peer) {
            Some(at) if now - *at < WARN_EVERY => false,
            // Full of peers warned about within the hour: stay quiet rather than flood.
            None if seen.len() >= MAX_WARNED => false,
            _ => {
                seen.insert(peer, now);
                true
            }
        }
    }
}

pub async fn observe(State(app): State<App>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = req.method().clone();
    let route = match req.extensions().get::<MatchedPath>() {
        Some(p) => p.as_str().to_owned(),
        None if app.static_dir.is_some() => "static".into(),
        None => "unmatched".into(),
    };
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip().to_canonical());
    let client = app.limits.client(peer, req.headers());
    if let Some(peer) = peer {
        if req.headers().contains_key("x-forwarded-for")
            && !app.limits.is_trusted(peer)
            && app.proxy_warnings.due(peer)
        {
            tracing::warn!(
                %peer,
                "X-Forwarded-For from a peer that is not a --trusted-proxy: it is ignored, and \
                 rate limits count every client behind that peer as one (add the proxy with \
                 --trusted-proxy)"
            );
        }
    }
    let resp = next.run(req).await;
    let elapsed = started.elapsed();
    let status = resp.status().as_u16();
    let m = metrics::get();
    m.requests
        .get_or_create(&RequestLabels {
            method: method.as_str().to_owned(),
            route: route.clone(),
            status,
        })
        .inc();
    m.request_seconds
        .get_or_create(&RouteLabel {
            route: route.clone(),
        })
        .observe(elapsed.as_secs_f64());
    // A streamed answer (an export) has no size known here.
    let bytes = resp.body().size_hint().exact();
    tracing::info!(
        target: "mau_collector::access",
        method = %method,
        route = %route,
        status,
        duration_ms = elapsed.as_secs_f64() * 1000.0,
        bytes,
        client = %client.map_or_else(|| "-".to_owned(), |c| c.to_string()),
        "request"
    );
    resp
}
