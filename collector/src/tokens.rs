//! The token-issuance log: what the team's backend tells us each time it mints a Twilio
//! access token. Identity and times only: a body that carries the token itself is refused,
//! so a credential never reaches the collector's disk or logs.

use crate::store::TokenRecord;
use crate::wire::{invalid, parse_items, wrong_type, WireError};
use serde_json::{Map, Value};
use time::format_description::well_known::Rfc3339;
use time::{OffsetDateTime, UtcOffset};

pub const MAX_TOKEN_ID_CHARS: usize = 128;

/// Field names under which a caller might send the token by mistake.
const TOKEN_FIELDS: &[&str] = &["token", "jwt", "access_token", "accessToken"];

/// Parses one entry or an array of at most 100, all or nothing.
pub fn parse_body(body: &[u8], received_at: OffsetDateTime) -> Result<Vec<TokenRecord>, WireError> {
    parse_items(body, |obj| parse_entry(obj, received_at))
}

fn parse_entry(
    obj: &Map<String, Value>,
    received_at: OffsetDateTime,
) -> Result<TokenRecord, WireError> {
    if let Some(f) = TOKEN_FIELDS.iter().find(|f| obj.contains_key(**f)) {
        return Err(token_refused(f));
    }
    let identity = crate::wire::identity(obj)?;
    let issued_at = time_field(obj, "issued_at")?.ok_or_else(|| {
        invalid(
            "missing_field",
            "issued_at",
            "missing field issued_at".to_owned(),
        )
    })?;
    let expires_at = time_field(obj, "expires_at")?;
    if expires_at.is_some_and(|e| e < issued_at) {
        return Err(invalid(
            "bad_timestamps",
            "expires_at",
            "expires_at is before issued_at",
        ));
    }
    let token_id = match obj.get("token_id") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => {
            let s = crate::wire::no_nul(s, "token_id")?;
            let n = s.chars().count();
            if n == 0 || n > MAX_TOKEN_ID_CHARS {
                return Err(invalid(
                    "bad_token_id",
                    "token_id",
                    format!("token_id must be 1 to {MAX_TOKEN_ID_CHARS} characters; got {n}"),
                ));
            }
            if looks_like_jwt(s) {
                return Err(token_refused("token_id"));
            }
            Some(s)
        }
        Some(_) => return Err(wrong_type("token_id", "a string")),
    };
    let issued = crate::wire::format_time(issued_at);
    let key = match token_id {
        Some(id) => format!("id:{id}"),
        None => format!("at:{identity}\n{issued}"),
    };
    Ok(TokenRecord {
        key,
        identity: identity.to_owned(),
        issued_at,
        expires_at,
        received_at,
    })
}

fn token_refused(field: &'static str) -> WireError {
    invalid(
        "token_not_accepted",
        field,
        format!(
            "{field} looks like an access token; send identity and times only, never the token"
        ),
    )
}

/// A JWT is three base64url parts, the first a JSON header (`eyJ` is `{"`).
fn looks_like_jwt(s: &str) -> bool {
    s.starts_with("eyJ") && s.matches('.').count() == 2
}

/// An optional RFC 3339 timestamp (any offset; stored in UTC).
fn time_field(
    obj: &Map<String, Value>,
    field: &'static str,
) -> Result<Option<OffsetDateTime>, WireError> {
    let s = match obj.get(field) {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::String(s)) => s,
        Some(_) => return Err(wrong_type(field, "an RFC 3339 timestamp string")),
    };
    OffsetDateTime::parse(s, &Rfc3339)
        .ok()
        .filter(|t| s.len() <= 64 && t.year() >= 2000)
        .map(|t| Some(t.to_offset(UtcOffset::UTC)))
        .ok_or_else(|| {
            invalid(
                "bad_timestamp",
                field,
                format!("{field} must be an RFC 3339 timestamp like 2026-11-24T20:08:52Z"),
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use time::macros::datetime;

    const NOW: OffsetDateTime = datetime!(2026-11-24 20:08:53 UTC);

    fn parse(v: Value) -> Result<Vec<TokenRecord>, WireError> {
        parse_body(v.to_string().as_bytes(), NOW)
    }

    fn code(v: Value) -> (&'static str, String) {
        match parse(v).unwrap_err() {
            WireError::Invalid { code, field, .. } => (code, field.to_owned()),
            other => (other.code(), String::new()),
        }
    }

    #[test]
    fn keys_make_repeats_idempotent() {
        let a =
            parse(json!({"identity": "alice", "issued_at": "2026-11-24T21:08:52+01:00"})).unwrap();
        assert_eq!(a[0].key, "at:alice\n2026-11-24T20:08:52.000Z");
        assert_eq!(a[0].month().to_string(), "2026-11");
        let b = parse(
            json!([{"identity": "bob", "issued_at": "2026-11-30T23:59:59Z",
            "expires_at": "2026-12-01T00:59:59Z", "token_id": "req-7"}]),
        )
        .unwrap();
        assert_eq!(b[0].key, "id:req-7");
        assert!(b[0].expires_at.is_some());
    }

    #[test]
    fn the_token_itself_is_refused() {
        let jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJBQyJ9.c2ln";
        for body in [
            json!({"identity": "a", "issued_at": "2026-11-24T20:08:52Z", "token": jwt}),
            json!({"identity": "a", "issued_at": "2026-11-24T20:08:52Z", "accessToken": "x"}),
            json!({"identity": "a", "issued_at": "2026-11-24T20:08:52Z", "token_id": jwt}),
        ] {
            assert_eq!(code(body).0, "token_not_accepted");
        }
    }

    #[test]
    fn bad_entries_name_the_field() {
        assert_eq!(
            code(json!({"issued_at": "2026-11-24T20:08:52Z"})),
            ("missing_field", "identity".into())
        );
        assert_eq!(
            code(json!({"identity": "a"})),
            ("missing_field", "issued_at".into())
        );
        assert_eq!(
            code(json!({"identity": "a", "issued_at": "yesterday"})),
            ("bad_timestamp", "issued_at".into())
        );
        assert_eq!(
            code(json!({"identity": "a", "issued_at": "2026-11-24T20:08:52Z",
                "expires_at": "2026-11-24T19:08:52Z"})),
            ("bad_timestamps", "expires_at".into())
        );
        assert_eq!(
            code(json!({"identity": "", "issued_at": "2026-11-24T20:08:52Z"})).0,
            "bad_identity"
        );
        assert_eq!(
            code(json!({"identity": "a", "issued_at": "2026-11-24T20:08:52Z", "token_id": 7})),
            ("wrong_type", "token_id".into())
        );
        assert_eq!(
            code(json!({"identity": "a\u{0}", "issued_at": "2026-11-24T20:08:52Z"})),
            ("nul_character", "identity".into())
        );
        assert_eq!(
            code(
                json!({"identity": "a", "issued_at": "2026-11-24T20:08:52Z", "token_id": "k\u{0}"})
            ),
            ("nul_character", "token_id".into())
        );
        assert_eq!(code(json!([])).0, "empty_batch");
    }
}
