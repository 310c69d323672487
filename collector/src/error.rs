//! Every way a request can fail, and the HTTP answer for each.
//!
//! All errors answer with a JSON body `{"error": "<what went wrong>", "code": "<stable code>"}`,
//! plus `field` and `index` when one beacon field is at fault.

use crate::store::StoreError;
use crate::wire::WireError;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;

/// Seconds a client should wait after an overload answer.
pub const RETRY_AFTER_SECS: u32 = 1;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error(transparent)]
    Wire(#[from] WireError),
    #[error("the request body is over the {limit}-byte limit")]
    BodyTooLarge { limit: usize },
    #[error("the request body could not be read")]
    BodyRead,
    #[error("the request body did not arrive in time")]
    BodyTimeout,
    #[error("missing or wrong admin token (send Authorization: Bearer <token>)")]
    Unauthorized,
    #[error("reads are disabled: the collector was started without an admin token")]
    ReadsDisabled,
    #[error("missing or wrong ingest token (send Authorization: Bearer <ingest token>)")]
    IngestUnauthorized,
    #[error("the token log is disabled: the collector was started without an ingest token")]
    TokensDisabled,
    #[error("Twilio webhooks are disabled: the collector was started without TWILIO_AUTH_TOKEN")]
    WebhooksDisabled,
    #[error("missing X-Twilio-Signature header")]
    MissingSignature,
    #[error("X-Twilio-Signature does not match this request")]
    BadSignature,
    #[error("the collector is busy; retry later")]
    Overloaded,
    #[error("too many open connections from this address; retry later")]
    TooManyConnections,
    #[error("the database is unavailable; retry later")]
    Unavailable(String),
    #[error("the database file was deleted or replaced under the collector; nothing was stored")]
    StorageReplaced(String),
    #[error("storage error")]
    Storage(String),
    #[error("{0}")]
    BadRequest(String),
    /// A billed count that is not `{"count": N}` with N a whole number.
    #[error("{0}")]
    BadBilled(String),
    #[error(transparent)]
    Limited(#[from] crate::http::limits::Refusal),
    #[error("{}{reason}", index.map(|i| format!("item {i}: ")).unwrap_or_default())]
    BadTicket {
        reason: crate::ticket::TicketError,
        index: Option<usize>,
    },
    #[error("not found")]
    NotFound,
    #[error("event_id already stored for another identity or month (items {conflicts:?}); the others were stored")]
    Conflict {
        accepted: usize,
        conflicts: Vec<usize>,
    },
    #[error("method not allowed")]
    MethodNotAllowed,
    #[error("too many failed admin attempts from this address; retry after {} s", .0.as_secs().max(1))]
    AdminLocked(std::time::Duration),
    #[error("metrics are not served on this address: scrape the --metrics-listen address, or start the collector with --metrics-token (env MAU_COLLECTOR_METRICS_TOKEN)")]
    MetricsDisabled,
    #[error("missing or wrong metrics token (send Authorization: Bearer <metrics token>)")]
    MetricsUnauthorized,
    #[error("not ready: {0}")]
    NotReady(&'static str),
    #[error("erasure is disabled: the collector was started without an erasure key (MAU_COLLECTOR_ERASURE_KEY or --erasure-key)")]
    ErasureDisabled,
    /// The subject or its kind is not one that can be erased (never names the subject).
    #[error("{0}")]
    BadSubject(&'static str),
    /// The erasure log could not be written: nothing was erased.
    #[error("the erasure log could not be written; nothing was erased")]
    ErasureLog(String),
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Wire(WireError::BatchTooLarge { .. }) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Wire(_)
            | ApiError::BadRequest(_)
            | ApiError::BadBilled(_)
            | ApiError::BadSubject(_)
            | ApiError::BodyRead => StatusCode::BAD_REQUEST,
            ApiError::BodyTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::BodyTimeout => StatusCode::REQUEST_TIMEOUT,
            ApiError::Unauthorized | ApiError::IngestUnauthorized | ApiError::BadTicket { .. } => {
                StatusCode::UNAUTHORIZED
            }
            ApiError::ReadsDisabled
            | ApiError::TokensDisabled
            | ApiError::WebhooksDisabled
            | ApiError::MissingSignature
            | ApiError::BadSignature => StatusCode::FORBIDDEN,
            ApiError::Overloaded
            | ApiError::TooManyConnections
            | ApiError::Unavailable(_)
            | ApiError::StorageReplaced(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Storage(_) => StatusCode::INTERNAL_SERVER_ERROR,
            ApiError::NotFound => StatusCode::NOT_FOUND,
            ApiError::Limited(_) => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Conflict { .. } => StatusCode::CONFLICT,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::AdminLocked(_) => StatusCode::TOO_MANY_REQUESTS,
            ApiError::MetricsDisabled => StatusCode::FORBIDDEN,
            ApiError::MetricsUnauthorized => StatusCode::UNAUTHORIZED,
            ApiError::NotReady(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::ErasureDisabled => StatusCode::FORBIDDEN,
            ApiError::ErasureLog(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            ApiError::Wire(w) => w.code(),
            ApiError::BodyTooLarge { .. } => "body_too_large",
            ApiError::BodyRead => "body_unreadable",
            ApiError::BodyTimeout => "body_timeout",
            ApiError::Unauthorized | ApiError::IngestUnauthorized => "unauthorized",
            ApiError::ReadsDisabled => "reads_disabled",
            ApiError::TokensDisabled => "tokens_disabled",
            ApiError::WebhooksDisabled => "webhooks_disabled",
            ApiError::MissingSignature => "missing_signature",
            ApiError::BadSignature => "bad_signature",
            ApiError::Overloaded => "overloaded",
            ApiError::TooManyConnections => "too_many_connections",
            ApiError::Unavailable(_) => "storage_unavailable",
            ApiError::StorageReplaced(_) => "storage_replaced",
            ApiError::Storage(_) => "storage_error",
            ApiError::BadRequest(_) => "bad_request",
            ApiError::BadBilled(_) => "bad_billed",
            ApiError::NotFound => "not_found",
            ApiError::BadTicket { .. } => "bad_ticket",
            ApiError::Limited(r) => r.code(),
            ApiError::Conflict { .. } => "event_id_conflict",
            ApiError::MethodNotAllowed => "method_not_allowed",
            ApiError::AdminLocked(_) => "too_many_failures",
            ApiError::MetricsDisabled => "metrics_disabled",
            ApiError::MetricsUnauthorized => "unauthorized",
            ApiError::NotReady(_) => "not_ready",
            ApiError::ErasureDisabled => "erasure_disabled",
            ApiError::BadSubject(_) => "bad_subject",
            ApiError::ErasureLog(_) => "erasure_log_error",
        }
    }

    pub fn body(&self) -> ErrorBody {
        let (field, index) = match self {
            ApiError::Wire(WireError::Invalid { field, index, .. }) => {
                ((!field.is_empty()).then_some(*field), *index)
            }
            ApiError::BadTicket { index, .. } => (Some("ticket"), *index),
            _ => (None, None),
        };
        let (accepted, conflicts) = match self {
            ApiError::Conflict {
                accepted,
                conflicts,
            } => (Some(*accepted), Some(conflicts.clone())),
            _ => (None, None),
        };
        ErrorBody {
            error: self.to_string(),
            code: self.code(),
            field,
            index,
            accepted,
            conflicts,
        }
    }
}

/// The JSON error body, fields in this order.
#[derive(Debug, Serialize)]
pub struct ErrorBody {
    pub error: String,
    pub code: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub index: Option<usize>,
    /// A 409: how many beacons were stored, and the positions of those that were not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub accepted: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub conflicts: Option<Vec<usize>>,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match &self {
            // The detail goes to the log only: it may hold paths or host names.
            ApiError::Storage(detail) => tracing::error!(%detail, "storage error"),
            ApiError::Unavailable(detail) => tracing::warn!(%detail, "database unavailable"),
            ApiError::StorageReplaced(detail) => tracing::error!(%detail, "storage lost"),
            ApiError::ErasureLog(detail) => tracing::error!(%detail, "erasure log not written"),
            _ => {}
        }
        if matches!(
            self,
            ApiError::Storage(_) | ApiError::Unavailable(_) | ApiError::StorageReplaced(_)
        ) {
            crate::metrics::get().storage_error(self.code());
        }
        let mut resp = (self.status(), Json(self.body())).into_response();
        let headers = resp.headers_mut();
        match self {
            ApiError::Overloaded
            | ApiError::TooManyConnections
            | ApiError::Unavailable(_)
            | ApiError::StorageReplaced(_)
            | ApiError::Storage(_) => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECS));
            }
            ApiError::Limited(r) => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from(r.retry_after_secs()));
            }
            ApiError::AdminLocked(wait) => {
                let secs = wait.as_secs_f64().ceil().max(1.0) as u64;
                headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
            }
            ApiError::Unauthorized
            | ApiError::IngestUnauthorized
            | ApiError::MetricsUnauthorized => {
                headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            _ => {}
        }
        resp
    }
}

impl ApiError {
    /// The whole HTTP/1.1 answer as bytes, closing the connection: for the accept loop,
    /// which refuses a connection before any request is read.
    pub fn raw_response(&self) -> Vec<u8> {
        let body = serde_json::to_vec(&self.body()).unwrap_or_default();
        let status = self.status();
        let mut out = format!(
            "HTTP/1.1 {} {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\
             retry-after: {RETRY_AFTER_SECS}\r\nconnection: close\r\n\r\n",
            status.as_u16(),
            status.canonical_reason().unwrap_or(""),
            body.len()
        )
        .into_bytes();
        out.extend_from_slice(&body);
        out
    }
}

/// A database that is away or busy is a 503 the client retries; anything else is a 500.
impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Busy => ApiError::Overloaded,
            StoreError::Unavailable(m) => ApiError::Unavailable(m),
            StoreError::Replaced(m) => ApiError::StorageReplaced(m),
            other => ApiError::Storage(other.to_string()),
        }
    }
}

impl From<crate::erasure::ErasureError> for ApiError {
    fn from(e: crate::erasure::ErasureError) -> Self {
        use crate::erasure::ErasureError as E;
        match e {
            E::Store(s) => s.into(),
            E::BadSubject => ApiError::BadSubject("the subject is empty or too long"),
            E::NoKey | E::ShortKey(_) | E::NoLogPath => ApiError::ErasureDisabled,
            e @ E::Log { .. } => ApiError::ErasureLog(e.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overload_answers_503_with_retry_after() {
        let r = ApiError::Overloaded.into_response();
        assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(r.headers()[header::RETRY_AFTER], "1");
        let r = ApiError::from(StoreError::Unavailable("connection refused".into()));
        assert_eq!(r.code(), "storage_unavailable");
        let r = r.into_response();
        assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(r.headers()[header::RETRY_AFTER], "1");
        assert_eq!(
            ApiError::from(StoreError::Busy).status(),
            StatusCode::SERVICE_UNAVAILABLE
        );
    }

    #[test]
    fn invalid_field_is_named_in_the_body() {
        let e = ApiError::Wire(WireError::Invalid {
            code: "identity_too_long",
            field: "identity",
            message: "identity is 300 bytes; the limit is 256 bytes".into(),
            index: Some(2),
        });
        assert_eq!(e.status(), StatusCode::BAD_REQUEST);
        assert_eq!(
            serde_json::to_string(&e.body()).unwrap(),
            r#"{"error":"item 2: identity is 300 bytes; the limit is 256 bytes","code":"identity_too_long","field":"identity","index":2}"#
        );
        assert_eq!(
            serde_json::to_string(&ApiError::NotFound.body()).unwrap(),
            r#"{"error":"not found","code":"not_found"}"#
        );
    }
}
