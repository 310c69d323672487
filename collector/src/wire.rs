//! Wire format v1: parsing, validation and clock-skew correction.
//!
//! Fields are read from a `serde_json::Value` by hand rather than through a derived
//! struct, so that every error names the field at fault in plain words.

pub use crate::month::Month;
use serde_json::{Map, Value};
use time::format_description::well_known::Rfc3339;
use time::macros::{datetime, format_description};
use time::{Duration, OffsetDateTime, UtcOffset};

/// Largest request body taken, in bytes.
pub const MAX_BODY_BYTES: usize = 64 * 1024;
/// Most beacons in one array body.
pub const MAX_BATCH: usize = 100;
/// Twilio identities are capped at 256 bytes; a longer one cannot be a real identity.
pub const MAX_IDENTITY_BYTES: usize = 256;
pub const MAX_EVENT_ID_CHARS: usize = 128;
/// Longest `context` label: the app's name for where a client was made.
pub const MAX_CONTEXT_BYTES: usize = 64;
/// Longest `reason`: the trigger that made the client.
pub const MAX_REASON_BYTES: usize = 32;
/// Cap for the short free-text fields (sdk name/version, client_version, raw timestamps).
const MAX_SHORT_CHARS: usize = 64;

/// Why a body was refused. Each variant maps to a 4xx answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    #[error("malformed JSON: {0}")]
    Json(String),
    #[error("the body must be a JSON object or an array of objects")]
    NotAnObject,
    #[error("the array is empty")]
    EmptyBatch,
    #[error("the array holds {len} beacons; the limit is {max}")]
    BatchTooLarge { len: usize, max: usize },
    /// One beacon is invalid; `index` is its position when the body was an array.
    #[error("{}{message}", index.map(|i| format!("item {i}: ")).unwrap_or_default())]
    Invalid {
        code: &'static str,
        field: &'static str,
        message: String,
        index: Option<usize>,
    },
}

impl WireError {
    /// The same error, naming the position of the item at fault in an array body.
    pub(crate) fn at(self, i: usize) -> WireError {
        match self {
            WireError::Invalid {
                code,
                field,
                message,
                ..
            } => WireError::Invalid {
                code,
                field,
                message,
                index: Some(i),
            },
            other => other,
        }
    }

    /// A stable machine-readable code for the JSON error body.
    pub fn code(&self) -> &'static str {
        match self {
            WireError::Json(_) => "malformed_json",
            WireError::NotAnObject => "not_an_object",
            WireError::EmptyBatch => "empty_batch",
            WireError::BatchTooLarge { .. } => "batch_too_large",
            WireError::Invalid { code, .. } => code,
        }
    }
}

pub(crate) fn invalid(
    code: &'static str,
    field: &'static str,
    message: impl Into<String>,
) -> WireError {
    WireError::Invalid {
        code,
        field,
        message: message.into(),
        index: None,
    }
}

/// Formats a time as `YYYY-MM-DDTHH:MM:SS.mmmZ`: fixed width, so stored strings sort by time.
pub fn format_time(t: OffsetDateTime) -> String {
    let fmt =
        format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z");
    t.to_offset(UtcOffset::UTC)
        .format(&fmt)
        .unwrap_or_else(|_| String::from("invalid-time"))
}

/// What a beacon reports. Both make the identity an MAU of the event's month.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The client connected.
    Connected,
    /// The client stayed connected into a new UTC month (reported at the boundary), kept
    /// apart so a team can count such subjects either way.
    StillConnected,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Connected => "connected",
            Kind::StillConnected => "still_connected",
        }
    }
}

/// One valid beacon, as sent.
#[derive(Debug, Clone, PartialEq)]
pub struct Beacon {
    pub kind: Kind,
    pub identity: String,
    pub event_id: String,
    pub client_month: Month,
    pub occurred_at: OffsetDateTime,
    pub sent_at: OffsetDateTime,
    pub attempt: u32,
    pub dedupe: String,
    pub sdk_name: String,
    pub sdk_version: String,
    pub client_version: Option<String>,
    /// A signed ticket from the team's backend (see `ticket`); checked, not stored.
    pub ticket: Option<String>,
    /// Where in the app the client was made (`support-widget`); `None` from older SDKs.
    pub context: Option<String>,
    /// What made the client (`click`, `visible`, `app`, ...); stored as sent.
    pub reason: Option<String>,
}

/// A beacon with the collector's own times: what gets stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    pub beacon: Beacon,
    pub received_at: OffsetDateTime,
    /// received − (sent_at − occurred_at): the event time on the collector's clock.
    pub event_at: OffsetDateTime,
    /// The UTC month of `event_at`; this, not the client's `month`, is what counts.
    pub month: Month,
}

/// Earliest event time accepted; anything before is a broken clock pair, not an event.
const EARLIEST: OffsetDateTime = datetime!(2000-01-01 0:00 UTC);

/// Corrects the device clock: the delay the device measured between the event and this
/// send is trusted, its absolute time is not. A negative delay (clock stepped back
/// between the two stamps) counts as zero.
pub fn derive_event_time(
    received_at: OffsetDateTime,
    occurred_at: OffsetDateTime,
    sent_at: OffsetDateTime,
) -> Result<OffsetDateTime, WireError> {
    let delay = (sent_at - occurred_at).max(Duration::ZERO);
    received_at
        .checked_sub(delay)
        .filter(|t| *t >= EARLIEST)
        .ok_or_else(|| {
            invalid(
                "bad_timestamps",
                "occurred_at",
                "occurred_at is implausibly far before sent_at",
            )
        })
}

/// Parses a body (one beacon object or an array of them) into records, all or nothing.
pub fn parse_body(body: &[u8], received_at: OffsetDateTime) -> Result<Vec<Record>, WireError> {
    parse_items(body, |obj| parse_record(obj, received_at))
}

/// Parses one JSON object or an array of 1 to `MAX_BATCH` of them, all or nothing; an
/// error in an array item names its index.
pub(crate) fn parse_items<T>(
    body: &[u8],
    parse: impl Fn(&Map<String, Value>) -> Result<T, WireError>,
) -> Result<Vec<T>, WireError> {
    let value: Value = serde_json::from_slice(body).map_err(|e| WireError::Json(e.to_string()))?;
    match value {
        Value::Object(obj) => Ok(vec![parse(&obj)?]),
        Value::Array(items) => {
            if items.is_empty() {
                return Err(WireError::EmptyBatch);
            }
            if items.len() > MAX_BATCH {
                return Err(WireError::BatchTooLarge {
                    len: items.len(),
                    max: MAX_BATCH,
                });
            }
            items
                .iter()
                .enumerate()
                .map(|(i, item)| {
                    let obj = item.as_object().ok_or_else(|| WireError::Invalid {
                        code: "not_an_object",
                        field: "",
                        message: "must be an object".into(),
                        index: Some(i),
                    })?;
                    parse(obj).map_err(|e| e.at(i))
                })
                .collect()
        }
        _ => Err(WireError::NotAnObject),
    }
}

fn parse_record(
    obj: &Map<String, Value>,
    received_at: OffsetDateTime,
) -> Result<Record, WireError> {
    let beacon = parse_beacon(obj)?;
    let event_at = derive_event_time(received_at, beacon.occurred_at, beacon.sent_at)?;
    Ok(Record {
        month: Month::of(event_at),
        event_at,
        received_at,
        beacon,
    })
}

/// Validates one beacon object. Unknown fields are ignored (forward compatible).
pub fn parse_beacon(obj: &Map<String, Value>) -> Result<Beacon, WireError> {
    // The version comes first: a future version may change everything else.
    let v = required(obj, "v")?;
    match v.as_u64() {
        Some(1) => {}
        Some(n) => {
            return Err(invalid(
                "unsupported_version",
                "v",
                format!("unsupported version {n}; this collector takes v 1"),
            ))
        }
        None => return Err(wrong_type("v", "the number 1")),
    }
    let kind = match string(obj, "kind")? {
        "connected" => Kind::Connected,
        "still_connected" => Kind::StillConnected,
        other => {
            return Err(invalid(
                "bad_kind",
                "kind",
                format!("unknown kind {other:?}; expected \"connected\" or \"still_connected\""),
            ))
        }
    };

    let identity = identity(obj)?;

    let event_id = string(obj, "event_id")?;
    let n = event_id.chars().count();
    if n == 0 || n > MAX_EVENT_ID_CHARS {
        return Err(invalid(
            "bad_event_id",
            "event_id",
            format!("event_id must be 1 to {MAX_EVENT_ID_CHARS} characters; got {n}"),
        ));
    }

    let month_s = string(obj, "month")?;
    let client_month = Month::parse(month_s).ok_or_else(|| {
        invalid(
            "bad_month",
            "month",
            format!("month {month_s:?} is not YYYY-MM"),
        )
    })?;

    let occurred_at = timestamp(obj, "occurred_at")?;
    let sent_at = timestamp(obj, "sent_at")?;

    let attempt = match required(obj, "attempt")?.as_u64() {
        Some(n) if n >= 1 => u32::try_from(n).unwrap_or(u32::MAX),
        Some(_) => {
            return Err(invalid(
                "bad_attempt",
                "attempt",
                "attempt must be 1 or more",
            ))
        }
        None => return Err(wrong_type("attempt", "a whole number")),
    };

    let dedupe = string(obj, "dedupe")?;
    if dedupe != "month" && dedupe != "none" {
        return Err(invalid(
            "bad_dedupe",
            "dedupe",
            format!("dedupe {dedupe:?} is not \"month\" or \"none\""),
        ));
    }

    let sdk = required(obj, "sdk")?
        .as_object()
        .ok_or_else(|| wrong_type("sdk", "an object {name, version}"))?;
    let sdk_name = short(string_in(sdk, "sdk.name", "name")?, "sdk.name")?;
    let sdk_version = short(string_in(sdk, "sdk.version", "version")?, "sdk.version")?;

    let client_version = match obj.get("client_version") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(short(s, "client_version")?),
        Some(_) => return Err(wrong_type("client_version", "a string")),
    };

    let ticket = match obj.get("ticket") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s.len() <= crate::ticket::MAX_TICKET_CHARS => Some(s.clone()),
        Some(Value::String(_)) => {
            return Err(invalid("bad_ticket", "ticket", "ticket is too long"))
        }
        Some(_) => return Err(wrong_type("ticket", "a string")),
    };

    let context = label(
        obj,
        ("context", "bad_context"),
        MAX_CONTEXT_BYTES,
        "letters, digits and . _ : / -",
        |b| b.is_ascii_alphanumeric() || b".-_:/".contains(&b),
    )?;
    let reason = label(
        obj,
        ("reason", "bad_reason"),
        MAX_REASON_BYTES,
        "lowercase letters and _",
        |b| b.is_ascii_lowercase() || b == b'_',
    )?;

    Ok(Beacon {
        context,
        reason,
        ticket,
        kind,
        identity: identity.to_owned(),
        event_id: event_id.to_owned(),
        client_month,
        occurred_at,
        sent_at,
        attempt,
        dedupe: dedupe.to_owned(),
        sdk_name,
        sdk_version,
        client_version,
    })
}

/// The `identity` field: 1 to `MAX_IDENTITY_BYTES` bytes, kept exactly as sent.
pub(crate) fn identity(obj: &Map<String, Value>) -> Result<&str, WireError> {
    let identity = string(obj, "identity")?;
    crate::identity::check(identity).map_err(|r| invalid(r.code(), "identity", r.to_string()))?;
    if identity.len() > MAX_IDENTITY_BYTES {
        return Err(invalid(
            "identity_too_long",
            "identity",
            format!(
                "identity is {} bytes; the limit is {MAX_IDENTITY_BYTES} bytes",
                identity.len()
            ),
        ));
    }
    Ok(identity)
}

pub(crate) fn required<'a>(
    obj: &'a Map<String, Value>,
    field: &'static str,
) -> Result<&'a Value, WireError> {
    match obj.get(field) {
        None | Some(Value::Null) => Err(invalid(
            "missing_field",
            field,
            format!("missing field {field}"),
        )),
        Some(v) => Ok(v),
    }
}

pub(crate) fn wrong_type(field: &'static str, expected: &str) -> WireError {
    invalid("wrong_type", field, format!("{field} must be {expected}"))
}

pub(crate) fn string<'a>(
    obj: &'a Map<String, Value>,
    field: &'static str,
) -> Result<&'a str, WireError> {
    string_in(obj, field, field)
}

/// Reads `key` from `obj`, naming it `field` in errors (for nested fields).
pub(crate) fn string_in<'a>(
    obj: &'a Map<String, Value>,
    field: &'static str,
    key: &str,
) -> Result<&'a str, WireError> {
    match obj.get(key) {
        None | Some(Value::Null) => Err(invalid(
            "missing_field",
            field,
            format!("missing field {field}"),
        )),
        Some(Value::String(s)) => no_nul(s, field),
        Some(_) => Err(wrong_type(field, "a string")),
    }
}

/// PostgreSQL's text cannot hold a NUL character: refusing it here keeps the two backends
/// alike, and keeps one such beacon from failing the whole group it would be committed in.
pub(crate) fn no_nul<'a>(s: &'a str, field: &'static str) -> Result<&'a str, WireError> {
    if s.contains('\0') {
        return Err(invalid(
            "nul_character",
            field,
            format!("{field} contains a NUL character"),
        ));
    }
    Ok(s)
}

/// An optional label of 1 to `max` bytes, each allowed by `ok` (`allowed` says which in
/// words). The message describes the rule and never repeats the value (it sits beside an
/// identity in the beacon).
fn label(
    obj: &Map<String, Value>,
    (field, code): (&'static str, &'static str),
    max: usize,
    allowed: &str,
    ok: impl Fn(u8) -> bool,
) -> Result<Option<String>, WireError> {
    match obj.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if !s.is_empty() && s.len() <= max && s.bytes().all(ok) => {
            Ok(Some(s.clone()))
        }
        Some(_) => Err(invalid(
            code,
            field,
            format!("{field} must be a string of 1 to {max} bytes: {allowed}"),
        )),
    }
}

fn short(s: &str, field: &'static str) -> Result<String, WireError> {
    let s = no_nul(s, field)?;
    if s.is_empty() || s.chars().count() > MAX_SHORT_CHARS {
        return Err(invalid(
            "bad_field",
            field,
            format!("{field} must be 1 to {MAX_SHORT_CHARS} characters"),
        ));
    }
    Ok(s.to_owned())
}

/// An RFC 3339 timestamp in UTC (`Z` or `+00:00`).
fn timestamp(obj: &Map<String, Value>, field: &'static str) -> Result<OffsetDateTime, WireError> {
    let s = string(obj, field)?;
    let bad = || {
        invalid(
            "bad_timestamp",
            field,
            format!("{field} must be an ISO 8601 UTC timestamp like 2026-11-24T20:08:52.123Z"),
        )
    };
    if s.len() > MAX_SHORT_CHARS {
        return Err(bad());
    }
    let t = OffsetDateTime::parse(s, &Rfc3339).map_err(|_| bad())?;
    if t.offset() != UtcOffset::UTC {
        return Err(bad());
    }
    Ok(t)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use time::macros::datetime;

    fn example() -> Value {
        json!({
            "v": 1,
            "kind": "connected",
            "identity": "alice@example.com",
            "event_id": "5f0c3c9e2b7a4d1e8f6a0b1c2d3e4f50",
            "month": "2026-11",
            "occurred_at": "2026-11-24T20:08:52.123Z",
            "sent_at": "2026-11-24T20:08:52.140Z",
            "attempt": 1,
            "dedupe": "month",
            "sdk": { "name": "mau-beacon", "version": "0.1.0" },
            "client_version": "3.0.1"
        })
    }

    const NOW: OffsetDateTime = datetime!(2026-11-24 20:08:53 UTC);

    fn parse(v: &Value) -> Result<Vec<Record>, WireError> {
        parse_body(v.to_string().as_bytes(), NOW)
    }

    fn with(field: &str, value: Value) -> Value {
        let mut v = example();
        v[field] = value;
        v
    }

    fn without(field: &str) -> Value {
        let mut v = example();
        v.as_object_mut().unwrap().remove(field);
        v
    }

    fn code_and_field(r: Result<Vec<Record>, WireError>) -> (String, String) {
        match r {
            Err(WireError::Invalid { code, field, .. }) => (code.into(), field.into()),
            other => panic!("expected Invalid, got {other:?}"),
        }
    }

    #[test]
    fn parses_the_documented_example() {
        let r = parse(&example()).unwrap();
        assert_eq!(r.len(), 1);
        let b = &r[0].beacon;
        assert_eq!(b.identity, "alice@example.com");
        assert_eq!(
            b.client_month,
            Month {
                year: 2026,
                month: 11
            }
        );
        assert_eq!(b.client_version.as_deref(), Some("3.0.1"));
        assert_eq!(r[0].received_at, NOW);
        // 17 ms between occurred_at and sent_at.
        assert_eq!(format_time(r[0].event_at), "2026-11-24T20:08:52.983Z");
        assert_eq!(r[0].month.to_string(), "2026-11");
    }

    #[test]
    fn ignores_unknown_fields_and_optional_client_version() {
        let mut v = without("client_version");
        v["future_field"] = json!({"x": 1});
        assert_eq!(parse(&v).unwrap()[0].beacon.client_version, None);
        assert!(parse(&with("client_version", Value::Null)).is_ok());
    }

    #[test]
    fn array_is_all_or_nothing() {
        let good = example();
        let mut bad = example();
        bad["identity"] = json!("");
        assert_eq!(
            parse(&json!([good.clone(), good.clone()])).unwrap().len(),
            2
        );
        match parse(&json!([good, bad])) {
            Err(WireError::Invalid {
                index: Some(1),
                field: "identity",
                ..
            }) => {}
            other => panic!("{other:?}"),
        }
        assert_eq!(parse(&json!([])), Err(WireError::EmptyBatch));
        let many: Vec<Value> = (0..=MAX_BATCH).map(|_| example()).collect();
        assert!(matches!(
            parse(&json!(many)),
            Err(WireError::BatchTooLarge { len: 101, .. })
        ));
        assert_eq!(code_and_field(parse(&json!([1]))).0, "not_an_object");
    }

    #[test]
    fn refuses_non_objects_and_bad_json() {
        assert_eq!(parse(&json!("hi")), Err(WireError::NotAnObject));
        assert!(matches!(
            parse_body(b"{\"v\":1,", NOW),
            Err(WireError::Json(_))
        ));
        assert!(matches!(
            parse_body(b"\xff\xfe", NOW),
            Err(WireError::Json(_))
        ));
        assert!(matches!(parse_body(b"", NOW), Err(WireError::Json(_))));
    }

    #[test]
    fn missing_fields_are_named() {
        for f in [
            "v",
            "kind",
            "identity",
            "event_id",
            "month",
            "occurred_at",
            "sent_at",
            "attempt",
            "dedupe",
            "sdk",
        ] {
            assert_eq!(
                code_and_field(parse(&without(f))),
                ("missing_field".into(), f.into()),
                "{f}"
            );
        }
        let mut v = example();
        v["sdk"] = json!({"name": "mau-beacon"});
        assert_eq!(
            code_and_field(parse(&v)),
            ("missing_field".into(), "sdk.version".into())
        );
    }

    #[test]
    fn wrong_types_are_named() {
        for (f, val) in [
            ("v", json!("1")),
            ("kind", json!(1)),
            ("identity", json!(42)),
            ("event_id", json!(["x"])),
            ("month", json!(202611)),
            ("occurred_at", json!(1764014932123u64)),
            ("attempt", json!("1")),
            ("attempt", json!(1.5)),
            ("sdk", json!("mau-beacon")),
            ("client_version", json!(3)),
        ] {
            assert_eq!(
                code_and_field(parse(&with(f, val))),
                ("wrong_type".into(), f.into()),
                "{f}"
            );
        }
    }

    #[test]
    fn identity_limits() {
        assert_eq!(
            code_and_field(parse(&with("identity", json!("")))).1,
            "identity"
        );
        let max = "é".repeat(128); // 256 bytes
        assert_eq!(
            parse(&with("identity", json!(max))).unwrap()[0]
                .beacon
                .identity
                .len(),
            256
        );
        let over = "a".repeat(257);
        match parse(&with("identity", json!(over))) {
            Err(
                e @ WireError::Invalid {
                    code: "identity_too_long",
                    ..
                },
            ) => {
                assert!(e.to_string().contains("256 bytes"), "{e}")
            }
            other => panic!("{other:?}"),
        }
        // Not trimmed or altered.
        let spaced = parse(&with("identity", json!(" bob "))).unwrap();
        assert_eq!(spaced[0].beacon.identity, " bob ");
    }

    #[test]
    fn event_id_limits() {
        assert!(parse(&with("event_id", json!("x".repeat(128)))).is_ok());
        assert_eq!(
            code_and_field(parse(&with("event_id", json!("x".repeat(129))))).0,
            "bad_event_id"
        );
        assert_eq!(
            code_and_field(parse(&with("event_id", json!("")))).0,
            "bad_event_id"
        );
    }

    #[test]
    fn context_and_reason_are_optional_labels() {
        let old = parse(&example()).unwrap();
        assert_eq!(old[0].beacon.context, None);
        assert_eq!(old[0].beacon.reason, None);
        let mut v = with("context", json!("support-widget/v2:inbox_1.x"));
        v["reason"] = json!("connect_when_visible");
        let r = parse(&v).unwrap();
        assert_eq!(
            r[0].beacon.context.as_deref(),
            Some("support-widget/v2:inbox_1.x")
        );
        assert_eq!(r[0].beacon.reason.as_deref(), Some("connect_when_visible"));
        // Unknown reasons are stored as sent; null is absent.
        assert!(parse(&with("reason", json!("some_future_trigger"))).is_ok());
        assert_eq!(
            parse(&with("context", Value::Null)).unwrap()[0]
                .beacon
                .context,
            None
        );
        assert!(parse(&with("context", json!("x".repeat(64)))).is_ok());
        assert!(parse(&with("reason", json!("x".repeat(32)))).is_ok());
    }

    #[test]
    fn malformed_context_and_reason_are_refused_by_name_without_echo() {
        for bad in [
            json!(""),
            json!("x".repeat(65)),
            json!("support widget"),
            json!("café"),
            json!("a\u{0}b"),
            json!("alice@example.com"),
            json!(7),
            json!(["inbox"]),
        ] {
            let r = parse(&with("context", bad.clone()));
            assert_eq!(
                code_and_field(r.clone()),
                ("bad_context".into(), "context".into()),
                "{bad}"
            );
            let msg = r.unwrap_err().to_string();
            assert!(!msg.contains("alice") && !msg.contains("widget"), "{msg}");
        }
        for bad in [
            json!(""),
            json!("x".repeat(33)),
            json!("Click"),
            json!("click-2"),
            json!("connect on"),
            json!(true),
        ] {
            assert_eq!(
                code_and_field(parse(&with("reason", bad.clone()))),
                ("bad_reason".into(), "reason".into()),
                "{bad}"
            );
        }
    }

    #[test]
    fn version_kind_dedupe_attempt() {
        assert_eq!(
            code_and_field(parse(&with("v", json!(2)))).0,
            "unsupported_version"
        );
        assert_eq!(
            code_and_field(parse(&with("kind", json!("disconnected")))).0,
            "bad_kind"
        );
        assert_eq!(
            code_and_field(parse(&with("dedupe", json!("week")))).0,
            "bad_dedupe"
        );
        assert!(parse(&with("dedupe", json!("none"))).is_ok());
        let still = parse(&with("kind", json!("still_connected"))).unwrap();
        assert_eq!(still[0].beacon.kind, Kind::StillConnected);
        assert_eq!(parse(&example()).unwrap()[0].beacon.kind, Kind::Connected);
        assert_eq!(
            code_and_field(parse(&with("attempt", json!(0)))).0,
            "bad_attempt"
        );
        assert_eq!(
            parse(&with("attempt", json!(7))).unwrap()[0].beacon.attempt,
            7
        );
    }

    #[test]
    fn month_parsing() {
        assert_eq!(
            Month::parse("2026-01"),
            Some(Month {
                year: 2026,
                month: 1
            })
        );
        assert_eq!(Month::parse("2026-12").unwrap().to_string(), "2026-12");
        for bad in [
            "2026-13",
            "2026-00",
            "2026-1",
            "26-11",
            "2026/11",
            "2026-11-01",
            "２０２６-11",
            "+026-11",
            "",
        ] {
            assert_eq!(Month::parse(bad), None, "{bad}");
            assert_eq!(
                code_and_field(parse(&with("month", json!(bad)))).0,
                "bad_month"
            );
        }
    }

    #[test]
    fn timestamps_must_be_rfc3339_utc() {
        for ok in [
            "2026-11-24T20:08:52Z",
            "2026-11-24T20:08:52.123456Z",
            "2026-11-24T20:08:52.1+00:00",
        ] {
            assert!(parse(&with("occurred_at", json!(ok))).is_ok(), "{ok}");
        }
        for bad in [
            "2026-11-24 20:08:52",
            "2026-11-24T20:08:52.123+01:00",
            "yesterday",
            "2026-13-01T00:00:00Z",
            "",
        ] {
            assert_eq!(
                code_and_field(parse(&with("sent_at", json!(bad)))),
                ("bad_timestamp".into(), "sent_at".into()),
                "{bad}"
            );
        }
    }

    #[test]
    fn skew_correction_trusts_the_delay_not_the_device_clock() {
        // Device clock is a year and a bit ahead; the event happened 5 s before sending.
        let occurred = datetime!(2027-12-31 23:59:55 UTC);
        let sent = datetime!(2028-01-01 0:00:00 UTC);
        let t = derive_event_time(NOW, occurred, sent).unwrap();
        assert_eq!(t, NOW - Duration::seconds(5));
        // A negative delay counts as zero.
        assert_eq!(derive_event_time(NOW, sent, occurred).unwrap(), NOW);
        // An absurd delay is refused, not stored in year 0.
        let r = derive_event_time(NOW, datetime!(0001-01-01 0:00 UTC), sent);
        assert!(matches!(
            r,
            Err(WireError::Invalid {
                code: "bad_timestamps",
                ..
            })
        ));
    }

    #[test]
    fn month_comes_from_the_derived_time_across_a_boundary() {
        // Received 2 s into December; the device says it queued the event for 3 s,
        // and its own clock (and month field) claims December too. The event is November's.
        let received = datetime!(2026-12-01 0:00:02 UTC);
        let mut v = example();
        v["month"] = json!("2026-12");
        v["occurred_at"] = json!("2026-12-01T00:00:10.000Z");
        v["sent_at"] = json!("2026-12-01T00:00:13.000Z");
        let r = parse_body(v.to_string().as_bytes(), received).unwrap();
        assert_eq!(r[0].month.to_string(), "2026-11");
        assert_eq!(format_time(r[0].event_at), "2026-11-30T23:59:59.000Z");
        assert_eq!(r[0].beacon.client_month.to_string(), "2026-12");
        // And the year boundary.
        let received = datetime!(2027-01-01 0:00:00.500 UTC);
        let r = parse_body(v.to_string().as_bytes(), received).unwrap();
        assert_eq!(r[0].month.to_string(), "2026-12");
    }

    #[test]
    fn time_format_is_fixed_width() {
        assert_eq!(
            format_time(datetime!(2026-01-02 3:04:05 UTC)),
            "2026-01-02T03:04:05.000Z"
        );
        assert_eq!(
            format_time(datetime!(2026-01-02 3:04:05.123456 UTC)),
            "2026-01-02T03:04:05.123Z"
        );
    }
}
