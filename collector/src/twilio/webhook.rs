//! MAU subjects in what Twilio sends: Conversations webhook parameters and Event Streams
//! CloudEvents. Chat identities come from `Identity`, `ClientIdentity` and `Author`;
//! channel addresses from `MessagingBinding.Address` (SMS/WhatsApp participants) and the
//! `Author` of their messages. Names are matched without regard to case, so the camelCase
//! fields of Event Streams data read the same as the webhook's.

use crate::store::{Observation, Sighting, SubjectKind};
use crate::wire::WireError;
use serde_json::Value;
use time::format_description::well_known::Rfc3339;
use time::{Duration, OffsetDateTime};

/// Most CloudEvents taken in one Event Streams delivery.
pub const MAX_EVENTS: usize = 1000;
/// How far an event's own `time` may lie before its receipt (Event Streams retries for
/// up to 4 hours); older or future times fall back to the receipt time.
const MAX_EVENT_AGE: Duration = Duration::hours(6);

/// The subjects named by one webhook's (or one event's) fields, each once.
pub fn sightings(fields: &[(String, String)], source: &str, at: OffsetDateTime) -> Vec<Sighting> {
    let get = |name: &'static str| {
        fields
            .iter()
            .filter(move |(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            // (a NUL cannot be stored in PostgreSQL's text, and no real subject has one)
            .filter(|v| !v.is_empty() && !v.contains('\0'))
    };
    let mut found: Vec<(SubjectKind, &str)> = Vec::new();
    for v in get("Identity").chain(get("ClientIdentity")) {
        found.push((SubjectKind::Identity, v));
    }
    let chat_binding = get("MessagingBinding.Type").any(|t| t.eq_ignore_ascii_case("chat"));
    if !chat_binding {
        for v in get("MessagingBinding.Address") {
            found.push((SubjectKind::Address, v));
        }
    }
    for v in get("Author") {
        if v != "system" {
            found.push((author_kind(v), v));
        }
    }
    found.sort_unstable();
    found.dedup();
    found
        .into_iter()
        .map(|(kind, subject)| Sighting {
            kind,
            subject: subject.to_owned(),
            source: source.to_owned(),
            at,
        })
        .collect()
}

/// An author is a channel address when it looks like one: an E.164 number (`+14155550100`)
/// or a prefixed address (`whatsapp:+1…`, `messenger:…`); otherwise a chat identity.
pub fn author_kind(author: &str) -> SubjectKind {
    let e164 = author.len() > 1
        && author.starts_with('+')
        && author[1..].bytes().all(|b| b.is_ascii_digit());
    let prefixed = ["whatsapp:", "messenger:", "gbm:", "rcs:"]
        .iter()
        .any(|p| author.len() > p.len() && author[..p.len()].eq_ignore_ascii_case(p));
    if e164 || prefixed {
        SubjectKind::Address
    } else {
        SubjectKind::Identity
    }
}

/// Parses an Event Streams delivery (a JSON array of CloudEvents, or one) into one
/// observation per event, keyed by the CloudEvent `id` so redeliveries count once.
pub fn parse_events(
    body: &[u8],
    received_at: OffsetDateTime,
) -> Result<Vec<Observation>, WireError> {
    let bad = |field: &'static str, message: String| WireError::Invalid {
        code: "bad_event",
        field,
        message,
        index: None,
    };
    let value: Value = serde_json::from_slice(body).map_err(|e| WireError::Json(e.to_string()))?;
    let events = match value {
        Value::Array(a) => a,
        obj @ Value::Object(_) => vec![obj],
        _ => return Err(WireError::NotAnObject),
    };
    if events.len() > MAX_EVENTS {
        return Err(WireError::BatchTooLarge {
            len: events.len(),
            max: MAX_EVENTS,
        });
    }
    events
        .iter()
        .enumerate()
        .map(|(i, e)| {
            let id = e["id"]
                .as_str()
                .filter(|s| !s.is_empty() && s.len() <= 256 && !s.contains('\0'))
                .ok_or_else(|| bad("id", "each CloudEvent needs a string id".into()).at(i))?;
            let kind = e["type"]
                .as_str()
                .filter(|s| !s.is_empty() && s.len() <= 256 && !s.contains('\0'))
                .ok_or_else(|| bad("type", "each CloudEvent needs a string type".into()).at(i))?;
            let at = e["time"]
                .as_str()
                .and_then(|t| OffsetDateTime::parse(t, &Rfc3339).ok())
                .filter(|t| *t <= received_at && received_at - *t <= MAX_EVENT_AGE)
                .unwrap_or(received_at);
            let mut fields = Vec::new();
            flatten("", &e["data"], &mut fields);
            let short = kind
                .strip_prefix("com.twilio.conversations.")
                .unwrap_or(kind);
            Ok(Observation {
                key: Some(format!("event_stream:{id}")),
                sightings: sightings(&fields, &format!("event_stream:{short}"), at),
            })
        })
        .collect()
}

/// `{"messagingBinding": {"address": "+1…"}}` becomes `("messagingBinding.address", "+1…")`;
/// arrays repeat their key.
fn flatten(prefix: &str, v: &Value, out: &mut Vec<(String, String)>) {
    match v {
        Value::Object(map) => {
            for (k, v) in map {
                let key = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten(&key, v, out);
            }
        }
        Value::Array(items) => items.iter().for_each(|v| flatten(prefix, v, out)),
        Value::String(s) => out.push((prefix.to_owned(), s.clone())),
        Value::Null => {}
        other => out.push((prefix.to_owned(), other.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use time::macros::datetime;

    const NOW: OffsetDateTime = datetime!(2026-11-24 20:00 UTC);

    fn subjects(fields: &[(&str, &str)]) -> Vec<(SubjectKind, String)> {
        let f: Vec<(String, String)> = fields
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        sightings(&f, "webhook:x", NOW)
            .into_iter()
            .map(|s| (s.kind, s.subject))
            .collect()
    }

    #[test]
    fn webhook_fields_to_subjects() {
        use SubjectKind::*;
        assert_eq!(
            subjects(&[
                ("EventType", "onMessageAdded"),
                ("ClientIdentity", "alice"),
                ("Author", "alice")
            ]),
            [(Identity, "alice".into())]
        );
        assert_eq!(
            subjects(&[("Author", "+14155550100"), ("Source", "API")]),
            [(Address, "+14155550100".into())]
        );
        assert_eq!(subjects(&[("Author", "system")]), []);
        assert_eq!(subjects(&[("Identity", "a\u{0}b")]), []);
        assert_eq!(
            subjects(&[
                ("MessagingBinding.Type", "WHATSAPP"),
                ("MessagingBinding.Address", "whatsapp:+14155550101"),
                ("MessagingBinding.ProxyAddress", "whatsapp:+14155559999"),
            ]),
            [(Address, "whatsapp:+14155550101".into())]
        );
        assert_eq!(
            subjects(&[
                ("MessagingBinding.Address", "+1325"),
                ("MessagingBinding.Address", "+1415")
            ])
            .len(),
            2
        );
        assert_eq!(
            subjects(&[("Identity", "bob"), ("MessagingBinding.Type", "CHAT")]),
            [(Identity, "bob".into())]
        );
        assert_eq!(author_kind("messenger:123"), Address);
        assert_eq!(author_kind("+"), Identity);
        assert_eq!(author_kind("bob+1@example.com"), Identity);
    }

    #[test]
    fn cloudevents_keyed_by_id_with_their_time() {
        let body = json!([{
            "specversion": "1.0", "id": "EZ1", "type": "com.twilio.conversations.message.added",
            "source": "/v1/Conversations/CH1/Messages/IM1", "time": "2026-11-24T19:00:00Z",
            "data": {"author": "+14155550100", "conversationSid": "CH1"}
        }, {
            "id": "EZ2", "type": "com.twilio.conversations.participant.added",
            "time": "2020-01-01T00:00:00Z",
            "data": {"identity": "carol", "messagingBinding": null}
        }]);
        let obs = parse_events(body.to_string().as_bytes(), NOW).unwrap();
        assert_eq!(obs[0].key.as_deref(), Some("event_stream:EZ1"));
        assert_eq!(obs[0].sightings[0].source, "event_stream:message.added");
        assert_eq!(obs[0].sightings[0].kind, SubjectKind::Address);
        assert_eq!(obs[0].sightings[0].at, datetime!(2026-11-24 19:00 UTC));
        // Too old to be a retry: the receipt time counts.
        assert_eq!(obs[1].sightings[0].at, NOW);
        assert_eq!(obs[1].sightings[0].subject, "carol");
        let err = parse_events(br#"[{"type": "x"}]"#, NOW).unwrap_err();
        assert!(matches!(
            err,
            WireError::Invalid {
                field: "id",
                index: Some(0),
                ..
            }
        ));
        assert!(parse_events(b"7", NOW).is_err());
        assert!(parse_events(b"[", NOW).is_err());
    }
}
