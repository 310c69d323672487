//! Twilio's calls: Conversations webhooks and Event Streams deliveries, each checked
//! against `X-Twilio-Signature` before anything is read into storage.

use super::auth::authorize;
use super::ingest::read_body;
use super::App;
use crate::error::ApiError;
use crate::metrics::{SignatureLabels, TypeLabels};
use crate::store::{Observation, Sighting};
use crate::twilio::{signature, webhook};
use crate::wire::MAX_BODY_BYTES;
use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, Method, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use serde_json::json;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use time::OffsetDateTime;

/// Form or query parameters, in the order sent.
type Params = Vec<(String, String)>;

/// Event Streams batches can be larger than a beacon body.
const MAX_EVENTS_BODY: usize = 1024 * 1024;
/// Twilio waits 5 s for a webhook answer; a slow database must not make it wait longer.
const WEBHOOK_STORE_WAIT: Duration = Duration::from_secs(2);

/// What the Twilio endpoints saw since start (GET /v1/twilio/status).
#[derive(Debug, Default, Serialize)]
pub struct Counters {
    pub webhooks_accepted: AtomicU64,
    pub events_accepted: AtomicU64,
    pub signature_failures: AtomicU64,
    pub store_failures: AtomicU64,
}

fn bump(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

/// Counts a signed request's event type (Twilio's vocabulary: a bounded set).
fn count_type(endpoint: &'static str, kind: &str) {
    crate::metrics::get()
        .twilio_types
        .get_or_create(&TypeLabels {
            endpoint,
            r#type: kind.to_owned(),
        })
        .inc();
}

/// The URL Twilio called: `--public-url` + path and query, else from Host and
/// X-Forwarded-Proto (first value), `http` when absent.
fn called_url(app: &App, uri: &Uri, headers: &HeaderMap) -> String {
    let pq = uri.path_and_query().map_or("/", |p| p.as_str());
    if let Some(base) = &app.public_url {
        return format!("{}{pq}", base.trim_end_matches('/'));
    }
    let text = |name| headers.get(name).and_then(|v| v.to_str().ok());
    let proto = text(header::HeaderName::from_static("x-forwarded-proto"))
        .and_then(|v| v.split(',').next())
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .unwrap_or("http");
    let host = text(header::HOST).unwrap_or("");
    format!("{proto}://{host}{pq}")
}

/// Checks the signature with `check`; a failure is counted and logged (never the body).
/// Every outcome is counted in the metrics under `endpoint`.
fn verify(
    app: &App,
    endpoint: &'static str,
    headers: &HeaderMap,
    url: &str,
    check: impl FnOnce(&str, &str) -> bool,
) -> Result<(), ApiError> {
    let outcome = |signature| {
        crate::metrics::get()
            .twilio_requests
            .get_or_create(&SignatureLabels {
                endpoint,
                signature,
            })
            .inc();
    };
    let Some(token) = app.twilio_auth_token.as_deref() else {
        outcome("disabled");
        return Err(ApiError::WebhooksDisabled);
    };
    let sig = headers
        .get("x-twilio-signature")
        .and_then(|v| v.to_str().ok());
    let err = match sig {
        None => ApiError::MissingSignature,
        Some(s) if check(token, s) => {
            outcome("valid");
            return Ok(());
        }
        Some(_) => ApiError::BadSignature,
    };
    outcome(if sig.is_none() { "missing" } else { "bad" });
    bump(&app.twilio.signature_failures);
    tracing::warn!(%url, code = err.code(), "Twilio signature check failed; nothing stored");
    Err(err)
}

/// POST (form body) or GET (query) Conversations webhook. Any validly signed request is
/// answered 200 `{}` even when storing fails (logged and counted): a 4xx/5xx to a
/// pre-action webhook would block the user's action in Twilio.
pub async fn conversations(
    State(app): State<App>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let received_at = OffsetDateTime::now_utc();
    let url = called_url(&app, &uri, &headers);
    let (signed, fields): (Params, Params) = if method == Method::GET {
        let q = uri.query().unwrap_or("");
        (
            Vec::new(),
            form_urlencoded::parse(q.as_bytes()).into_owned().collect(),
        )
    } else {
        let bytes = read_body(&app, body, &headers, MAX_BODY_BYTES).await?;
        let p: Vec<_> = form_urlencoded::parse(&bytes).into_owned().collect();
        (p.clone(), p)
    };
    verify(&app, "conversations", &headers, &url, |token, sig| {
        signature::validate(token, sig, &url, &signed)
    })?;
    let event_type = fields
        .iter()
        .find(|(k, _)| k == "EventType")
        .map(|(_, v)| v.clone())
        .filter(|v| !v.is_empty() && v.len() <= 64 && !v.contains('\0'))
        .ok_or_else(|| {
            ApiError::Wire(crate::wire::invalid(
                "missing_field",
                "EventType",
                "missing field EventType",
            ))
        })?;
    bump(&app.twilio.webhooks_accepted);
    count_type("conversations", &event_type);
    let found = webhook::sightings(&fields, &format!("webhook:{event_type}"), received_at);
    let (found, _) = unerased(&app, found);
    if !found.is_empty() {
        let obs = vec![Observation {
            key: None,
            sightings: found,
        }];
        match tokio::time::timeout(WEBHOOK_STORE_WAIT, app.store.observe(obs)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                bump(&app.twilio.store_failures);
                tracing::error!(%event_type, error = %e, "webhook not stored");
            }
            Err(_) => {
                bump(&app.twilio.store_failures);
                tracing::error!(%event_type, "webhook not stored in time");
            }
        }
    }
    Ok(Json(json!({})).into_response())
}

/// POST an Event Streams delivery. Stored before the 200; a storage failure answers 503
/// so that Twilio delivers again (it retries for hours, and the `id` dedupes).
pub async fn events(
    State(app): State<App>,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let received_at = OffsetDateTime::now_utc();
    let url = called_url(&app, &uri, &headers);
    let bytes = read_body(&app, body, &headers, MAX_EVENTS_BODY).await?;
    verify(&app, "events", &headers, &url, |token, sig| {
        signature::validate_with_body(token, sig, &url, &bytes)
    })?;
    let mut observations = webhook::parse_events(&bytes, received_at).map_err(ApiError::Wire)?;
    let n = observations.len();
    // The delivery key stays, so a redelivery is still known; only the sightings go.
    for o in &mut observations {
        o.sightings = unerased(&app, std::mem::take(&mut o.sightings)).0;
    }
    for o in &observations {
        // The type is in the sightings' source (`event_stream:<type>`).
        let source = o.sightings.first().map_or("", |s| s.source.as_str());
        count_type(
            "events",
            source.strip_prefix("event_stream:").unwrap_or("none"),
        );
    }
    app.store.observe(observations).await?;
    app.twilio
        .events_accepted
        .fetch_add(n as u64, Ordering::Relaxed);
    Ok(Json(json!({ "ok": true, "accepted": n })).into_response())
}

/// The sightings whose subject is not refused as erased (`--refuse-erased`).
fn unerased(app: &App, sightings: Vec<Sighting>) -> (Vec<Sighting>, Vec<usize>) {
    super::subjects::keep_unerased(app, sightings, "sighting", |s| (s.kind, s.subject.as_str()))
}

/// GET /v1/twilio/status (admin): the counters since start.
pub async fn status(State(app): State<App>, headers: HeaderMap) -> Result<Response, ApiError> {
    authorize(&app, &headers)?;
    Ok(Json(json!({
        "webhooks_configured": app.twilio_auth_token.is_some(),
        "counters": &app.twilio,
    }))
    .into_response())
}
