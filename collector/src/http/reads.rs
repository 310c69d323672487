//! Team-only reads: months, a month's summary, and the streamed identity export.

use super::auth::authorize;
use super::App;
use crate::error::ApiError;
use crate::export::{Encoder, Format};
use crate::month::Month;
use crate::reconcile::Billed;
use crate::serve::{Cutoff, CutoffSender};
use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use axum::Json;
use serde::Deserialize;
use std::io;

pub async fn list_months(State(app): State<App>, headers: HeaderMap) -> Result<Response, ApiError> {
    authorize(&app, &headers)?;
    Ok(Json(app.store.months().await?).into_response())
}

pub async fn month_summary(
    State(app): State<App>,
    Path(month): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    authorize(&app, &headers)?;
    let month = month_param(&month)?;
    Ok(Json(app.store.summary(month).await?).into_response())
}

#[derive(Deserialize)]
pub struct ReportQuery {
    billed: Option<String>,
}

/// The month's reconciliation (admin), with the month's stored billed count; `?billed=N`
/// sets another beside it for this answer only (nothing is stored).
pub async fn report(
    State(app): State<App>,
    Path(month): Path<String>,
    Query(q): Query<ReportQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    authorize(&app, &headers)?;
    let month = month_param(&month)?;
    let billed = match q.billed.as_deref().filter(|b| !b.is_empty()) {
        None => app.store.billed(month).await?,
        Some(b) => Some(Billed {
            count: b
                .parse()
                .map_err(|_| ApiError::BadRequest(format!("billed {b:?} is not a whole number")))?,
            from: "typed".into(),
            recorded_at: None,
        }),
    };
    let mut report =
        crate::export::report(&app.store, month, billed, Vec::new(), &app.pricing).await?;
    report.budget = app.budget.clone();
    let mut resp = Json(report).into_response();
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(resp)
}

pub(super) fn month_param(s: &str) -> Result<Month, ApiError> {
    Month::parse(s).ok_or_else(|| ApiError::BadRequest(format!("month {s:?} is not YYYY-MM")))
}

#[derive(Deserialize)]
pub struct FormatQuery {
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

/// Streams a month's identities: batches go from the database cursor to the socket as
/// the client takes them, so memory stays flat whatever the month's size. The first
/// batch is read before the answer, so a failing query is an error answer, not a cut 200.
/// The whole answer has `--export-timeout`: past it the connection is dropped and the
/// export slot freed, however slowly the reader keeps reading.
pub async fn identities(
    State(app): State<App>,
    Path(month): Path<String>,
    Query(q): Query<FormatQuery>,
    cutoff: Option<Extension<CutoffSender>>,
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
    let deadline = tokio::time::Instant::now() + app.export_timeout;
    let cutoff = cutoff.map(|Extension(c)| Cutoff::at(&c, deadline));
    let permit = (permit, cutoff);
    let rows = app.store.identities(month).await?;
    let enc = Encoder::new(format);
    let head = Bytes::from(enc.start());
    // State: the rows (None once finished) and the encoder; the permit and the cutoff
    // live as long.
    let body = futures_util::stream::unfold(
        (Some(rows), enc, permit),
        move |(rows, mut enc, permit)| async move {
            let mut rows = rows?;
            match rows.next().await {
                Some(Ok(batch)) => {
                    let chunk = enc.rows(&batch).map_err(io::Error::other);
                    Some((chunk.map(Bytes::from), (Some(rows), enc, permit)))
                }
                Some(Err(e)) => {
                    tracing::warn!(%month, error = %e, "export stopped");
                    // Cut the body so the client sees a failed transfer, not a short file.
                    Some((Err(io::Error::other("export stopped")), (None, enc, permit)))
                }
                None => {
                    tracing::info!(%month, rows = enc.count(), ?format, "export streamed");
                    let tail = Bytes::from(enc.finish());
                    Some((Ok(tail), (None, enc, permit)))
                }
            }
        },
    );
    let stream = futures_util::StreamExt::chain(
        futures_util::stream::once(async move { Ok::<_, io::Error>(head) }),
        body,
    );
    let mut resp = Response::new(Body::from_stream(stream));
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(format.content_type()),
    );
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(resp)
}

#[cfg(test)]
mod tests {
    use super::*;

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
