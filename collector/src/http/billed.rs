//! PUT and DELETE /v1/months/{YYYY-MM}/billed (admin): Twilio's billed count kept per
//! month, so the dashboard and the report need it typed once. Stored as `typed`.

use super::auth::authorize;
use super::ingest::read_body;
use super::reads::month_param;
use super::App;
use crate::error::ApiError;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::json;

/// A body is `{"count": N}` and nothing else: a few bytes.
const MAX_BILLED_BODY: usize = 1024;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BilledBody {
    count: u64,
}

/// Stores the month's count; answers `{"month", "billed": {count, from, recorded_at}}`.
pub async fn set(
    State(app): State<App>,
    Path(month): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    // The (bounded) body is read first, so a refusal leaves the connection reusable.
    let bytes = read_body(&app, body, &headers, MAX_BILLED_BODY).await?;
    authorize(&app, &headers)?;
    let month = month_param(&month)?;
    let count = parse(&bytes)?;
    let billed = app.store.set_billed(month, count, "typed").await?;
    Ok(Json(json!({ "month": month.to_string(), "billed": billed })).into_response())
}

/// Forgets the month's count (the same answer whether or not one was stored).
pub async fn clear(
    State(app): State<App>,
    Path(month): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    authorize(&app, &headers)?;
    let month = month_param(&month)?;
    app.store.clear_billed(month).await?;
    Ok(Json(json!({ "month": month.to_string(), "billed": null })).into_response())
}

/// A whole number from 0 to `i64::MAX` (what both backends store).
fn parse(bytes: &[u8]) -> Result<u64, ApiError> {
    let bad = |e: String| {
        ApiError::BadBilled(format!(
            "the body must be {{\"count\": N}} with N a whole number: {e}"
        ))
    };
    // Through a Value: serde would also take a struct from an array (`[120]`).
    let value: serde_json::Value = serde_json::from_slice(bytes).map_err(|e| bad(e.to_string()))?;
    if !value.is_object() {
        return Err(bad("not an object".into()));
    }
    let body: BilledBody = serde_json::from_value(value).map_err(|e| bad(e.to_string()))?;
    if i64::try_from(body.count).is_err() {
        return Err(ApiError::BadBilled(format!(
            "count {} is too large",
            body.count
        )));
    }
    Ok(body.count)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_whole_count_is_taken() {
        assert_eq!(parse(br#"{"count": 120}"#).unwrap(), 120);
        assert_eq!(parse(br#"{"count": 0}"#).unwrap(), 0);
        for bad in [
            &br#"{"count": -1}"#[..],
            br#"{"count": 1.5}"#,
            br#"{"count": "120"}"#,
            br#"{"count": null}"#,
            br#"{}"#,
            br#"{"count": 1, "from": "usage_records:x"}"#,
            br#"[120]"#,
            b"120",
            b"",
            br#"{"count": 9223372036854775808}"#,
        ] {
            let e = parse(bad).unwrap_err();
            assert_eq!(e.code(), "bad_billed", "{}", String::from_utf8_lossy(bad));
        }
    }
}
