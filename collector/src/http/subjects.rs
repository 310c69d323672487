//! DELETE /v1/subjects/{identity|address}/{subject} (admin): erasure on request. The
//! subject is logged (keyed hash, synced) and then removed from every table and month in
//! one transaction; the answer gives the rows removed per table. Idempotent. The subject
//! (URL-encoded in the path, decoded here) never appears in a log line or an error.

use super::auth::authorize;
use super::App;
use crate::erasure;
use crate::error::ApiError;
use crate::store::SubjectKind;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::Json;

pub async fn forget(
    State(app): State<App>,
    path: Result<Path<(String, String)>, PathRejection>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    authorize(&app, &headers)?;
    // axum's own rejection would quote the path, and with it the subject.
    let Ok(Path((kind, subject))) = path else {
        return Err(ApiError::BadSubject(
            "the subject is not valid UTF-8 once decoded",
        ));
    };
    let kind = SubjectKind::parse(&kind)
        .ok_or(ApiError::BadSubject("the kind must be identity or address"))?;
    let log = app.erasure.as_deref().ok_or(ApiError::ErasureDisabled)?;
    let erased = erasure::erase(log, &app.store, kind, &subject).await?;
    tracing::info!(
        kind = kind.as_str(),
        rows = erased.rows(),
        months = erased.months.len(),
        "subject erased on request"
    );
    Ok(Json(erasure::answer(kind, &erased)).into_response())
}

/// With `--refuse-erased`, drops the items whose subject is in the erasure log: they are
/// answered as taken (so senders stop retrying) but not stored, and counted under `what`
/// (`beacon`, `token`, `sighting`). The kept items, with their positions in `items`.
pub(super) fn keep_unerased<T>(
    app: &super::AppState,
    items: Vec<T>,
    what: &'static str,
    subject: impl Fn(&T) -> (SubjectKind, &str),
) -> (Vec<T>, Vec<usize>) {
    let log = match &app.erasure {
        Some(log) if app.refuse_erased => log,
        _ => {
            let positions = (0..items.len()).collect();
            return (items, positions);
        }
    };
    let total = items.len();
    let erased = log.logged(items.iter().map(&subject));
    let (kept, positions): (Vec<T>, Vec<usize>) = items
        .into_iter()
        .enumerate()
        .filter(|(i, _)| !erased[*i])
        .map(|(i, item)| (item, i))
        .unzip();
    let dropped = total - kept.len();
    if dropped > 0 {
        super::stats::Counters::add(&app.refused.erased, dropped);
        crate::metrics::get()
            .erased_refused
            .get_or_create(&crate::metrics::ReasonLabel { reason: what })
            .inc_by(dropped as u64);
    }
    (kept, positions)
}
