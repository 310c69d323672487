//! GET /v1/stats (admin): what the collector refused since start, by reason, so an attack
//! or a misconfigured client shows up as numbers rather than silence.

use super::auth::authorize;
use super::App;
use crate::error::ApiError;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Debug, Default, Serialize)]
pub struct Counters {
    /// Beacons whose `event_id` was stored before for another identity or month (409).
    pub event_id_conflicts: AtomicU64,
    /// Beacons whose corrected event time is older than the backdating window.
    pub too_old: AtomicU64,
    /// Requests refused by the per-address rate limit (429).
    pub rate_limited: AtomicU64,
    /// Requests refused by the cap on new identities per address (429).
    pub identity_capped: AtomicU64,
    /// Beacons refused for their identity's characters.
    pub bad_identity: AtomicU64,
    /// Beacons refused for a missing or invalid ticket (401).
    pub bad_ticket: AtomicU64,
    /// Beacons, tokens and sightings of erased subjects taken but not stored
    /// (`--refuse-erased`).
    pub erased: AtomicU64,
}

impl Counters {
    pub fn add(counter: &AtomicU64, n: usize) {
        counter.fetch_add(n as u64, Ordering::Relaxed);
    }
}

pub async fn stats(State(app): State<App>, headers: HeaderMap) -> Result<Response, ApiError> {
    authorize(&app, &headers)?;
    Ok(Json(serde_json::json!({ "refused": &app.refused })).into_response())
}
