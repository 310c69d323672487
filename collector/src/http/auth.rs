//! The admin token for team-only reads.

use super::AppState;
use crate::error::ApiError;
use axum::http::{header, HeaderMap};

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

fn bearer(headers: &HeaderMap, expected: &str) -> Result<(), ApiError> {
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
