//! POST /v1/beacons: parse, store, and answer only after the commit.

use super::stats::Counters;
use super::App;
use crate::error::ApiError;
use crate::wire::{self, WireError, MAX_BODY_BYTES};
use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, State};
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use axum::Json;
use std::net::SocketAddr;
use time::OffsetDateTime;

/// Takes one beacon or an array, whatever the Content-Type (browsers send text/plain).
/// A refusal is counted by its code.
pub async fn ingest(
    state: State<App>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    store_beacons(state, peer, headers, body)
        .await
        .inspect_err(|e| {
            crate::metrics::get()
                .beacon_refusals
                .get_or_create(&crate::metrics::CodeLabel { code: e.code() })
                .inc();
        })
}

async fn store_beacons(
    State(app): State<App>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let received_at = OffsetDateTime::now_utc();
    // The (bounded) body is read first, so a refusal leaves the connection reusable.
    let bytes = read_body(&app, body, &headers, MAX_BODY_BYTES).await?;
    let client = app.limits.client(peer.map(|p| p.0 .0.ip()), &headers);
    if let Some(c) = client {
        app.limits
            .request(c)
            .inspect_err(|_| Counters::add(&app.refused.rate_limited, 1))?;
    }
    let records = wire::parse_body(&bytes, received_at).inspect_err(|e| {
        if matches!(e.code(), "bad_identity" | "identity_character") {
            Counters::add(&app.refused.bad_identity, 1);
        }
    })?;
    if let Some(i) = records
        .iter()
        .position(|r| received_at - r.event_at > app.max_backdate)
    {
        Counters::add(&app.refused.too_old, 1);
        let e = too_old(app.max_backdate);
        return Err(if records.len() > 1 { e.at(i) } else { e }.into());
    }
    if let Some(t) = &app.tickets {
        check_tickets(t, &records).inspect_err(|_| Counters::add(&app.refused.bad_ticket, 1))?;
    }
    if let Some(c) = client {
        let ids = records.iter().map(|r| r.beacon.identity.as_str());
        app.limits
            .identities(c, ids)
            .inspect_err(|_| Counters::add(&app.refused.identity_capped, 1))?;
    }
    let n = records.len();
    let (records, positions) = super::subjects::keep_unerased(&app, records, "beacon", |r| {
        (
            crate::store::SubjectKind::Identity,
            r.beacon.identity.as_str(),
        )
    });
    let conflicts: Vec<usize> = if records.is_empty() {
        Vec::new()
    } else {
        let c = app.store.insert(records).await?;
        c.into_iter().map(|i| positions[i]).collect()
    };
    tracing::debug!(beacons = n, "stored");
    if !conflicts.is_empty() {
        Counters::add(&app.refused.event_id_conflicts, conflicts.len());
        tracing::warn!(
            ?conflicts,
            "event_id re-delivered for another identity or month"
        );
        return Err(ApiError::Conflict {
            accepted: n - conflicts.len(),
            conflicts,
        });
    }
    // The same answer for a first delivery and a repeat, so retries are harmless.
    Ok(Json(Accepted {
        ok: true,
        accepted: n,
    })
    .into_response())
}

/// With a secret, a ticket that is present must be valid; with `required`, it must be
/// present too. All or nothing, before anything is stored.
fn check_tickets(t: &super::Tickets, records: &[wire::Record]) -> Result<(), ApiError> {
    for (i, r) in records.iter().enumerate() {
        let b = &r.beacon;
        if b.ticket.is_none() && !t.required {
            continue;
        }
        crate::ticket::verify(
            t.secret.as_bytes(),
            b.ticket.as_deref(),
            &b.identity,
            r.event_at,
        )
        .map_err(|reason| ApiError::BadTicket {
            reason,
            index: (records.len() > 1).then_some(i),
        })?;
    }
    Ok(())
}

/// The corrected event time lies before the backdating window.
fn too_old(window: time::Duration) -> WireError {
    wire::invalid(
        "event_too_old",
        "occurred_at",
        format!(
            "the event happened more than {} days before it was received",
            window.whole_days()
        ),
    )
}

#[derive(serde::Serialize)]
struct Accepted {
    ok: bool,
    accepted: usize,
}

/// Past this, an over-limit body is not read to its end: the connection is just closed.
const MAX_DRAIN_BYTES: usize = 1024 * 1024;

/// Reads the body up to `limit` bytes. An over-limit body is still read (and thrown
/// away) up to `MAX_DRAIN_BYTES`, so the client gets to see the 413 instead of a reset.
/// A body slower than the app's `body_timeout` is refused (408), so a slow sender cannot
/// hold a connection and a task for ever.
pub(super) async fn read_body(
    app: &App,
    body: Body,
    headers: &HeaderMap,
    limit: usize,
) -> Result<Bytes, ApiError> {
    tokio::time::timeout(app.body_timeout, read_limited(body, headers, limit))
        .await
        .map_err(|_| ApiError::BodyTimeout)?
}

async fn read_limited(
    mut body: Body,
    headers: &HeaderMap,
    limit: usize,
) -> Result<Bytes, ApiError> {
    use http_body_util::BodyExt;
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let too_large = ApiError::BodyTooLarge { limit };
    if declared.is_some_and(|n| n > MAX_DRAIN_BYTES as u64) {
        return Err(too_large);
    }
    let mut buf = Vec::with_capacity(declared.unwrap_or(1024).min(limit as u64) as usize);
    let mut seen = 0usize;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|_| ApiError::BodyRead)?;
        if let Some(data) = frame.data_ref() {
            seen += data.len();
            if seen > MAX_DRAIN_BYTES {
                break;
            }
            if seen <= limit {
                buf.extend_from_slice(data);
            }
        }
    }
    if seen > limit {
        return Err(too_large);
    }
    Ok(Bytes::from(buf))
}
