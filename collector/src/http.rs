//! HTTP routes: ingest, team-only reads, health, CORS and the optional static folder.

use crate::error::ApiError;
use crate::export::{self, Format};
use crate::store::{self, Store};
use crate::wire::{self, Month, MAX_BODY_BYTES};
use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, Method};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;
use std::io::{self, Write};
use std::path::PathBuf;
use std::sync::Arc;
use time::OffsetDateTime;
use tokio::sync::{mpsc, Semaphore};
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

pub struct AppState {
    pub store: Store,
    pub db_path: PathBuf,
    pub admin_token: Option<String>,
    pub origins: Origins,
    /// Bounds concurrent exports: each holds a read connection and a blocking thread.
    pub exports: Arc<Semaphore>,
}

type App = Arc<AppState>;

pub fn router(state: AppState, static_dir: Option<PathBuf>) -> Router {
    let state = Arc::new(state);
    let api = Router::new()
        .route("/healthz", get(healthz))
        .route("/v1/beacons", post(ingest))
        .route("/v1/months", get(list_months))
        .route("/v1/months/{month}/summary", get(month_summary))
        .route("/v1/months/{month}/identities", get(identities))
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed });
    let api = match static_dir {
        Some(dir) => api.fallback_service(tower_http::services::ServeDir::new(dir)),
        None => api.fallback(|| async { ApiError::NotFound }),
    };
    api.layer(cors(&state.origins)).with_state(state)
}

async fn healthz() -> Json<serde_json::Value> {
    Json(json!({ "ok": true, "version": env!("CARGO_PKG_VERSION") }))
}

/// Takes one beacon or an array, whatever the Content-Type (browsers send text/plain).
async fn ingest(
    State(app): State<App>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let received_at = OffsetDateTime::now_utc();
    let bytes = read_body(body, &headers).await?;
    let records = wire::parse_body(&bytes, received_at)?;
    let n = records.len();
    app.store.insert(records).await?;
    tracing::debug!(beacons = n, "stored");
    // The same answer for a first delivery and a repeat, so retries are harmless.
    Ok(Json(Accepted {
        ok: true,
        accepted: n,
    })
    .into_response())
}

#[derive(serde::Serialize)]
struct Accepted {
    ok: bool,
    accepted: usize,
}

/// Past this, an over-limit body is not read to its end: the connection is just closed.
const MAX_DRAIN_BYTES: usize = 1024 * 1024;

/// Reads the body up to `MAX_BODY_BYTES`. An over-limit body is still read (and thrown
/// away) up to `MAX_DRAIN_BYTES`, so the client gets to see the 413 instead of a reset.
async fn read_body(mut body: Body, headers: &HeaderMap) -> Result<Bytes, ApiError> {
    use http_body_util::BodyExt;
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let too_large = ApiError::BodyTooLarge {
        limit: MAX_BODY_BYTES,
    };
    if declared.is_some_and(|n| n > MAX_DRAIN_BYTES as u64) {
        return Err(too_large);
    }
    let mut buf = Vec::with_capacity(declared.unwrap_or(1024).min(MAX_BODY_BYTES as u64) as usize);
    let mut seen = 0usize;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|_| ApiError::BodyRead)?;
        if let Some(data) = frame.data_ref() {
            seen += data.len();
            if seen > MAX_DRAIN_BYTES {
                break;
            }
            if seen <= MAX_BODY_BYTES {
                buf.extend_from_slice(data);
            }
        }
    }
    if seen > MAX_BODY_BYTES {
        return Err(too_large);
    }
    Ok(Bytes::from(buf))
}

/// Team-only reads need `Authorization: Bearer <admin token>`.
fn authorize(app: &AppState, headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(expected) = app.admin_token.as_deref() else {
        return Err(ApiError::ReadsDisabled);
    };
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    match given {
        Some(t) if constant_time_eq(t.as_bytes(), expected.as_bytes()) => Ok(()),
        _ => Err(ApiError::Unauthorized),
    }
}

/// Compares without an early exit, so timing does not leak how much of a guess was right.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn month_param(s: &str) -> Result<Month, ApiError> {
    Month::parse(s).ok_or_else(|| ApiError::BadRequest(format!("month {s:?} is not YYYY-MM")))
}

/// Runs a short read on a blocking thread with its own connection.
async fn read<T: Send + 'static>(
    app: &AppState,
    f: impl FnOnce(&rusqlite::Connection) -> rusqlite::Result<T> + Send + 'static,
) -> Result<T, ApiError> {
    let path = app.db_path.clone();
    tokio::task::spawn_blocking(move || f(&store::open_reader(&path)?))
        .await
        .map_err(|e| ApiError::Storage(e.to_string()))?
        .map_err(ApiError::from)
}

async fn list_months(State(app): State<App>, headers: HeaderMap) -> Result<Response, ApiError> {
    authorize(&app, &headers)?;
    let months = read(&app, store::months).await?;
    Ok(Json(months).into_response())
}

async fn month_summary(
    State(app): State<App>,
    Path(month): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    authorize(&app, &headers)?;
    let month = month_param(&month)?;
    let summary = read(&app, move |c| store::summary(c, month)).await?;
    Ok(Json(summary).into_response())
}

#[derive(Deserialize)]
struct FormatQuery {
    format: Option<String>,
}

/// `?format=` wins; otherwise `Accept` (text/csv, application/x-ndjson); JSON by default.
fn choose_format(query: Option<&str>, headers: &HeaderMap) -> Result<Format, ApiError> {
    if let Some(q) = query {
        return Format::parse(q).ok_or_else(|| {
            ApiError::BadRequest(format!("format {q:?} is not json, ndjson or csv"))
        });
    }
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    Ok(if accept.contains("text/csv") {
        Format::Csv
    } else if accept.contains("ndjson") {
        Format::Ndjson
    } else {
        Format::Json
    })
}

/// Streams a month's identities: rows go from SQLite to the socket in ~32 KiB chunks
/// through a small bounded channel, so memory stays flat whatever the month's size.
async fn identities(
    State(app): State<App>,
    Path(month): Path<String>,
    Query(q): Query<FormatQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    authorize(&app, &headers)?;
    let month = month_param(&month)?;
    let format = choose_format(q.format.as_deref(), &headers)?;
    let permit = app
        .exports
        .clone()
        .try_acquire_owned()
        .map_err(|_| ApiError::Overloaded)?;
    // Open first, so a storage problem is still a proper error answer, not a cut stream.
    let path = app.db_path.clone();
    let conn = tokio::task::spawn_blocking(move || store::open_reader(&path))
        .await
        .map_err(|e| ApiError::Storage(e.to_string()))??;

    let (tx, mut rx) = mpsc::channel::<io::Result<Bytes>>(4);
    tokio::task::spawn_blocking(move || {
        let _permit = permit;
        let mut out = ChunkWriter {
            buf: Vec::with_capacity(CHUNK),
            tx,
        };
        match export::write_identities(&conn, month, format, &mut out) {
            Ok(n) => tracing::info!(%month, rows = n, ?format, "export streamed"),
            Err(e) => {
                tracing::warn!(%month, error = %e, "export stopped");
                // Cut the body so the client sees a failed transfer, not a short file.
                let _ = out
                    .tx
                    .blocking_send(Err(io::Error::other("export stopped")));
            }
        }
    });
    let body = Body::from_stream(futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx)));
    let mut resp = Response::new(body);
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(format.content_type()),
    );
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(resp)
}

const CHUNK: usize = 32 * 1024;

/// An `io::Write` that hands full chunks to the response body, waiting when the client is slow.
struct ChunkWriter {
    buf: Vec<u8>,
    tx: mpsc::Sender<io::Result<Bytes>>,
}

impl ChunkWriter {
    fn send(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK)));
        self.tx
            .blocking_send(Ok(chunk))
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "client went away"))
    }
}

impl Write for ChunkWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= CHUNK {
            self.send()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.send()
    }
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
        .allow_methods([Method::GET, Method::POST, Method::OPTIONS])
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

    #[test]
    fn token_check() {
        assert!(constant_time_eq(b"secret", b"secret"));
        assert!(!constant_time_eq(b"secret", b"secreT"));
        assert!(!constant_time_eq(b"secret", b"secret2"));
    }

    #[test]
    fn format_choice() {
        let mut h = HeaderMap::new();
        assert_eq!(choose_format(None, &h).unwrap(), Format::Json);
        h.insert(header::ACCEPT, HeaderValue::from_static("text/csv"));
        assert_eq!(choose_format(None, &h).unwrap(), Format::Csv);
        assert_eq!(choose_format(Some("json"), &h).unwrap(), Format::Json);
        assert!(choose_format(Some("xml"), &h).is_err());
    }
}
