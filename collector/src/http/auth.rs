//! The bearer secrets: the admin token for team-only reads (behind a door that logs and
//! slows down failed attempts per address), and the ingest token for the token log.

use super::{App, AppState};
use crate::error::ApiError;
use crate::metrics::{self, ReasonLabel};
use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::http::{header, HeaderMap};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Shortest bearer secret the collector starts with, as for ticket secrets.
pub const MIN_SECRET_BYTES: usize = 16;

/// Checks a configured bearer secret's length without ever showing it.
pub fn check_secret(flag: &str, secret: &str) -> Result<(), String> {
    if secret.len() < MIN_SECRET_BYTES {
        return Err(format!(
            "{flag}: the secret is {} bytes; at least {MIN_SECRET_BYTES} are needed (make one \
             with `openssl rand -hex 32`)",
            secret.len()
        ));
    }
    Ok(())
}

/// Team-only reads need `Authorization: Bearer <admin token>`.
pub fn authorize(app: &AppState, headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(expected) = app.admin_token.as_deref() else {
        return Err(ApiError::ReadsDisabled);
    };
    bearer(headers, expected)
}

/// The token log needs `Authorization: Bearer <ingest token>`.
pub fn authorize_ingest(app: &AppState, headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(expected) = app.ingest_token.as_deref() else {
        return Err(ApiError::TokensDisabled);
    };
    bearer(headers, expected).map_err(|_| ApiError::IngestUnauthorized)
}

pub(super) fn bearer(headers: &HeaderMap, expected: &str) -> Result<(), ApiError> {
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        // The scheme is case-insensitive (RFC 9110 §11.1): `bearer` works too.
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim());
    match given {
        Some(t) if constant_time_eq(t.as_bytes(), expected.as_bytes()) => Ok(()),
        _ => Err(ApiError::Unauthorized),
    }
}

/// Compares without an early exit, so timing does not leak how much of a guess was right.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    a.ct_eq(b).into()
}

/// Failed admin attempts an address may make per window before it is refused outright.
pub const MAX_FAILURES: u32 = 5;
/// The window those failures are counted in (fixed, from the first failure).
pub const FAILURE_WINDOW: Duration = Duration::from_secs(60);
/// Addresses remembered at once; past it, expired windows are dropped first.
const MAX_TRACKED: usize = 100_000;

/// Failed admin attempts by client address (IPv6: its /64, as the rate limits).
#[derive(Default)]
pub struct AdminDoor(Mutex<HashMap<IpAddr, (Instant, u32)>>);

impl AdminDoor {
    /// How long `client` must wait, if it used up its failures in the current window.
    fn locked(&self, client: IpAddr) -> Option<Duration> {
        let map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let (start, n) = map.get(&client)?;
        let left = FAILURE_WINDOW.checked_sub(start.elapsed())?;
        (*n >= MAX_FAILURES).then_some(left)
    }

    /// Counts a failure.
    fn fail(&self, client: IpAddr) {
        let now = Instant::now();
        let mut map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() >= MAX_TRACKED {
            map.retain(|_, (start, _)| now - *start < FAILURE_WINDOW);
        }
        if map.len() >= MAX_TRACKED && !map.contains_key(&client) {
            return;
        }
        let entry = map.entry(client).or_insert((now, 0));
        if now - entry.0 >= FAILURE_WINDOW {
            *entry = (now, 0);
        }
        entry.1 += 1;
    }
}

/// Guards the admin routes: an address that failed `MAX_FAILURES` times within the window
/// gets 429 `too_many_failures` (with `Retry-After`) without its token being looked at;
/// each failure (a wrong credential; a missing one is no guess) is logged with the address
/// and route, never the token tried.
pub async fn admin_door(State(app): State<App>, req: Request, next: Next) -> Response {
    let Some(expected) = app.admin_token.as_deref() else {
        // The handler answers 403 reads_disabled.
        return next.run(req).await;
    };
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    let client = app
        .limits
        .client(peer, req.headers())
        .map(super::limits::limit_key);
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or("", |p| p.as_str())
        .to_owned();
    let count = |reason| {
        metrics::get()
            .admin_failures
            .get_or_create(&ReasonLabel { reason })
            .inc();
    };
    if let Some(wait) = client.and_then(|c| app.admin_door.locked(c)) {
        count("locked");
        return ApiError::AdminLocked(wait).into_response();
    }
    if let Err(e) = bearer(req.headers(), expected) {
        if !req.headers().contains_key(header::AUTHORIZATION) {
            // No credential: not a guess, nothing to slow down.
            return e.into_response();
        }
        count("bad_token");
        if let Some(c) = client {
            app.admin_door.fail(c);
        }
        let client = client.map_or_else(|| "-".to_owned(), |c| c.to_string());
        tracing::warn!(%client, %route, "admin authentication failed");
        return e.into_response();
    }
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_is_locked_after_its_failures_and_others_are_not() {
        let door = AdminDoor::default();
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        for _ in 0..MAX_FAILURES - 1 {
            door.fail(a);
        }
        assert_eq!(door.locked(a), None);
        door.fail(a);
        let wait = door.locked(a).expect("locked after the last failure");
        assert!(wait <= FAILURE_WINDOW && wait > Duration::from_secs(50));
        assert_eq!(door.locked(b), None);
    }

    #[test]
    fn short_secrets_are_refused_without_being_shown() {
        let e = check_secret("--admin-token", "hunter2").unwrap_err();
        assert!(e.contains("7 bytes") && !e.contains("hunter2"), "{e}");
        assert!(check_secret("--admin-token", "0123456789abcdef").is_ok());
    }
}
