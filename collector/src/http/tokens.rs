//! POST /v1/tokens: the token-issuance log, written by the team's backend with its own
//! bearer secret. Idempotent; stores identity and times, never the token.

use super::auth::authorize_ingest;
use super::ingest::read_body;
use super::App;
use crate::error::ApiError;
use crate::tokens;
use crate::wire::MAX_BODY_BYTES;
use axum::body::Body;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;
use time::OffsetDateTime;

pub async fn log(
    State(app): State<App>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    // The (bounded) body is read first, so a refusal leaves the connection reusable.
    let bytes = read_body(&app, body, &headers, MAX_BODY_BYTES).await?;
    authorize_ingest(&app, &headers)?;
    let records = tokens::parse_body(&bytes, OffsetDateTime::now_utc())?;
    let n = records.len();
    let (records, _) = super::subjects::keep_unerased(&app, records, "token", |t| {
        (crate::store::SubjectKind::Identity, t.identity.as_str())
    });
    if !records.is_empty() {
        let stored = records.len();
        app.store.log_tokens(records).await?;
        crate::metrics::get().tokens_logged.inc_by(stored as u64);
    }
    Ok(Json(json!({ "ok": true, "accepted": n })).into_response())
}
