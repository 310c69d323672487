//! HTTP: the router and its state, CORS and the optional static folder; the handlers
//! live in one module per concern.

pub mod auth;
mod billed;
mod dashboard;
mod files;
mod ingest;
pub mod limits;
mod observe;
mod reads;
mod stats;
mod subjects;
mod tokens;
mod twilio;

use crate::error::ApiError;
use crate::store::Store;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, Method};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::json;
use std::path::PathBuf;
use std::sync::Arc;
use tokio::sync::Semaphore;
use tower_http::cors::{AllowOrigin, CorsLayer};

/// Which browser origins get CORS headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origins {
    /// Any origin; the request's Origin is echoed (`*` cannot go with credentials).
    Any,
    /// Only these (exact, case-insensitive; empty means same-origin only).
    List(Vec<String>),
}

impl Origins {
    pub fn from_config(values: &[String]) -> Origins {
        if values.iter().any(|v| v.trim() == "*") {
            return Origins::Any;
        }
        let list = values
            .iter()
            .map(|v| v.trim().trim_end_matches('/').to_ascii_lowercase())
            .filter(|v| !v.is_empty())
            .collect();
        Origins::List(list)
    }

    fn allows(&self, origin: &str) -> bool {
        match self {
            Origins::Any => true,
            Origins::List(list) => list.iter().any(|o| o.eq_ignore_ascii_case(origin)),
        }
    }
}

/// Everything a request handler needs.
pub struct AppState {
    pub store: Store,
    pub admin_token: Option<String>,
    pub origins: Origins,
    /// Bounds concurrent exports: each holds a database connection or a blocking thread.
    pub exports: Arc<Semaphore>,
    /// Files served at `/` when set (e.g. the demo page).
    pub static_dir: Option<PathBuf>,
    /// Bearer secret of the token log; without one it is closed.
    pub ingest_token: Option<String>,
    /// Twilio auth token for signatures; without one the Twilio endpoints are closed.
    pub twilio_auth_token: Option<String>,
    /// The collector's base URL as Twilio calls it.
    pub public_url: Option<String>,
    pub twilio: twilio::Counters,
    /// Longest a request body may take to arrive.
    pub body_timeout: std::time::Duration,
    /// Longest an identity export may take to send, start to end.
    pub export_timeout: std::time::Duration,
    /// How far before its receipt a beacon's corrected event time may lie.
    pub max_backdate: time::Duration,
    /// Refusals by reason (GET /v1/stats).
    pub refused: stats::Counters,
    /// Per-client rate limits on beacons.
    pub limits: limits::Limits,
    /// Signed tickets: checked when configured, required when `required`.
    pub tickets: Option<Tickets>,
    /// Bearer secret for `GET /metrics` on this listener; without one it answers 403.
    pub metrics_token: Option<String>,
    /// Failed admin attempts by address.
    pub admin_door: auth::AdminDoor,
    /// Untrusted peers that sent `X-Forwarded-For`, for the once-an-hour warning.
    pub proxy_warnings: observe::ProxyWarnings,
    /// The erasure log (with its key); without one, erasure is refused.
    pub erasure: Option<Arc<crate::erasure::ErasureLog>>,
    /// Take (2xx) but do not store beacons, tokens and sightings of logged subjects.
    pub refuse_erased: bool,
    /// The team's MAU price, for costs in reports.
    pub pricing: crate::pricing::Pricing,
    /// The budget `serve` alerts on, shown in reports (the dashboard draws it).
    pub budget: Option<crate::alerts::Budget>,
}

/// The ticket secret, and whether a beacon without a valid ticket is refused.
pub struct Tickets {
    pub secret: String,
    pub required: bool,
}

impl AppState {
    /// A state with the given store and nothing else configured.
    pub fn new(store: Store) -> AppState {
        AppState {
            store,
            admin_token: None,
            origins: Origins::List(Vec::new()),
            exports: Arc::new(Semaphore::new(4)),
            static_dir: None,
            ingest_token: None,
            twilio_auth_token: None,
            public_url: None,
            twilio: twilio::Counters::default(),
            body_timeout: std::time::Duration::from_secs(10),
            export_timeout: std::time::Duration::from_secs(600),
            max_backdate: time::Duration::days(35),
            refused: stats::Counters::default(),
            limits: limits::Limits::new(limits::LimitConfig::default()),
            tickets: None,
            metrics_token: None,
            admin_door: auth::AdminDoor::default(),
            proxy_warnings: observe::ProxyWarnings::default(),
            erasure: None,
            refuse_erased: false,
            pricing: Default::default(),
            budget: None,
        }
    }
}

type App = Arc<AppState>;

/// The whole HTTP service: routes, JSON errors, CORS.
pub fn app(state: AppState) -> Router {
    let static_dir = state.static_dir.clone();
    let state = Arc::new(state);
    // Team-only reads, behind the door that logs and slows failed attempts.
    let admin = Router::new()
        .route("/v1/twilio/status", get(twilio::status))
        .route("/v1/stats", get(stats::stats))
        .route("/v1/months", get(reads::list_months))
        .route("/v1/months/{month}/summary", get(reads::month_summary))
        .route("/v1/months/{month}/identities", get(reads::identities))
        .route("/v1/months/{month}/report", get(reads::report))
        .route(
            "/v1/months/{month}/billed",
            axum::routing::put(billed::set).delete(billed::clear),
        )
        .route(
            "/v1/subjects/{kind}/{subject}",
            axum::routing::delete(subjects::forget),
        )
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::admin_door,
        ));
    let api = Router::new()
        .route("/healthz", get(healthz))
        .route("/livez", get(livez))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/dashboard", get(dashboard::page))
        .route("/v1/beacons", post(ingest::ingest))
        .route("/v1/tokens", post(tokens::log))
        .route(
            "/v1/twilio/conversations",
            get(twilio::conversations).post(twilio::conversations),
        )
        .route("/v1/twilio/events", post(twilio::events))
        .merge(admin)
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed });
    let api = match static_dir {
        Some(dir) => {
            let log = state.erasure.as_ref().map(|l| l.path());
            let files = files::StaticFiles::new(&dir, state.store.file(), log);
            api.fallback(move |req: axum::extract::Request| files.clone().serve(req))
        }
        None => api.fallback(|| async { ApiError::NotFound }),
    };
    api.layer(axum::middleware::map_response(json_errors))
        .layer(cors(&state.origins))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            observe::observe,
        ))
        .with_state(state)
}

/// A router serving only `GET /metrics`, without a token: for `--metrics-listen`, an
/// address only the scraper reaches.
pub fn metrics_app(store: Store) -> Router {
    Router::new()
        .route("/metrics", get(move || async move { scrape(&store) }))
        .fallback(|| async { ApiError::NotFound })
}

/// The process answers (a liveness probe: restart it if not). Touches nothing else.
async fn livez() -> Json<serde_json::Value> {
    Json(json!({ "ok": true }))
}

/// Ready for traffic: the storage answers and its schema is the one this build knows.
/// 503 `not_ready` otherwise (the detail goes to the log: it may name paths or hosts).
async fn readyz(State(app): State<App>) -> Result<Json<serde_json::Value>, ApiError> {
    match app.store.ready().await {
        Ok(()) => Ok(Json(json!({ "ok": true, "storage": app.store.backend() }))),
        Err(e) => {
            tracing::warn!(error = %e, "not ready");
            Err(ApiError::NotReady(match e {
                crate::store::StoreError::NewerSchema { .. }
                | crate::store::StoreError::OlderSchema { .. } => {
                    "the database schema is not the one this collector knows"
                }
                _ => "the storage is not reachable",
            }))
        }
    }
}

/// `GET /metrics` on the main listener: only with `--metrics-token`, as a bearer token.
async fn metrics(State(app): State<App>, headers: HeaderMap) -> Result<Response, ApiError> {
    let token = app
        .metrics_token
        .as_deref()
        .ok_or(ApiError::MetricsDisabled)?;
    auth::bearer(&headers, token).map_err(|_| ApiError::MetricsUnauthorized)?;
    Ok(scrape(&app.store))
}

/// The scrape, with the pool's figures read now.
fn scrape(store: &Store) -> Response {
    let m = crate::metrics::get();
    if let Some(pool) = store.pool_status() {
        for (state, n) in pool {
            m.pool
                .get_or_create(&crate::metrics::PoolLabel { state })
                .set(n as i64);
        }
    }
    (
        [(header::CONTENT_TYPE, crate::metrics::CONTENT_TYPE)],
        m.encode(),
    )
        .into_response()
}

/// Tells a load balancer the process serves and its storage is sound: SQLite, the file
/// opened is still at its path (one `stat`); PostgreSQL, `SELECT 1` answers. Else the
/// storage error (503) with its code.
async fn healthz(State(app): State<App>) -> Result<Json<serde_json::Value>, ApiError> {
    app.store.health().await?;
    Ok(Json(json!({
        "ok": true,
        "version": env!("CARGO_PKG_VERSION"),
        "storage": app.store.backend(),
    })))
}

/// Every error answer is JSON with a code, also those made outside the handlers (axum's
/// path and query rejections, `ServeDir`'s 404 and 405): their text becomes `error`.
async fn json_errors(resp: Response) -> Response {
    let status = resp.status();
    let is_json = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if is_json || !(status.is_client_error() || status.is_server_error()) {
        return resp;
    }
    let (mut parts, body) = resp.into_parts();
    let text = axum::body::to_bytes(body, 4096)
        .await
        .map(|b| String::from_utf8_lossy(&b).trim().to_owned())
        .unwrap_or_default();
    let code = match status.as_u16() {
        404 => "not_found",
        405 => "method_not_allowed",
        413 => "body_too_large",
        400..=499 => "bad_request",
        _ => "internal_error",
    };
    let error = if text.is_empty() {
        status.canonical_reason().unwrap_or("error").to_owned()
    } else {
        text
    };
    let body = serde_json::to_vec(&json!({ "error": error, "code": code })).unwrap_or_default();
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Response::from_parts(parts, axum::body::Body::from(body))
}

/// CORS for configured origins (tower-http). Credentials are allowed (browsers send beacons
/// with them), so the allowed Origin is echoed rather than answered with `*`; other origins
/// get no CORS headers and the browser keeps the answer from the page.
fn cors(origins: &Origins) -> CorsLayer {
    let origins = origins.clone();
    CorsLayer::new()
        .allow_origin(AllowOrigin::predicate(move |origin: &HeaderValue, _| {
            origin.to_str().is_ok_and(|o| origins.allows(o))
        }))
        .allow_credentials(true)
        .allow_methods([
            Method::GET,
            Method::POST,
            Method::PUT,
            Method::DELETE,
            Method::OPTIONS,
        ])
        .allow_headers([header::CONTENT_TYPE, header::AUTHORIZATION])
        .expose_headers([header::RETRY_AFTER])
        .max_age(std::time::Duration::from_secs(600))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_config() {
        assert_eq!(Origins::from_config(&["*".into()]), Origins::Any);
        let o = Origins::from_config(&["https://App.example/".into()]);
        assert!(o.allows("https://app.example"));
        assert!(!o.allows("https://evil.example"));
        assert!(!Origins::from_config(&[]).allows("https://app.example"));
    }
}
