//! The storage record: what the outbox keeps per beacon in `localStorage`. Versioned on
//! its own (`v: 2`), apart from the wire body, so a wire change is no storage migration;
//! it holds the schedule, so a collector's `Retry-After` hold survives a reload.
//!
//! Keys: `mau-beacon:v2:q:<event_id>` (one record per beacon) and
//! `mau-beacon:v2:counted:<YYYY-MM>:<identity>` (`"1"`, the month's dedupe mark).
//! 0.1.0 stored the wire body itself under `mau-beacon:v1:q:<event_id>` and marks under
//! `mau-beacon:v1:counted:`; [`read_v1`] takes those over.

use alloc::{boxed::Box, string::String};

use serde::Serialize;

use crate::core::clock::Millis;
use crate::core::json::JsonView;
use crate::core::wire::{Beacon, Sdk, SDK_NAME};

/// The record format this SDK writes.
pub const RECORD_VERSION: u32 = 2;
/// Key prefix of one beacon's record.
pub const QUEUE: &str = "mau-beacon:v2:q:";
/// Key prefix of a month's dedupe mark.
pub const COUNTED: &str = "mau-beacon:v2:counted:";
/// Key prefix of a delivered (or dropped) beacon's tombstone, holding its expiry: tells
/// the profile's other tabs to forget their copy.
pub const DONE: &str = "mau-beacon:v2:done:";
/// 0.1.0's beacon keys: the value is the v1 wire body.
pub const V1_QUEUE: &str = "mau-beacon:v1:q:";
/// 0.1.0's dedupe marks, same layout as ours.
pub const V1_COUNTED: &str = "mau-beacon:v1:counted:";

/// A beacon waiting for delivery, with its schedule.
#[derive(Debug, Clone, PartialEq)]
pub struct Pending {
    /// What is sent (restamped on each attempt).
    pub beacon: Beacon,
    /// When the backoff allows the next attempt (an explicit flush may go earlier).
    pub next_at: Millis,
    /// Until when the collector asked not to be sent to (`Retry-After`): nothing goes earlier.
    pub hold_until: Millis,
}

/// What a stored value turned out to be.
#[derive(Debug, PartialEq)]
pub enum Read {
    /// A record of ours.
    Pending(Box<Pending>),
    /// A record of a newer SDK (another tab): not ours to judge, left in place.
    Newer,
    /// Not a whole record: dropped and counted as `corrupt_store`.
    Corrupt,
}

#[derive(Serialize)]
struct Record<'a> {
    v: u32,
    event_id: &'a str,
    kind: &'a str,
    identity: &'a str,
    month: &'a str,
    occurred_at: &'a str,
    dedupe: &'a str,
    sdk_version: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    client_version: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ticket: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    context: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'a str>,
    attempt: u32,
    /// Whole milliseconds: integers keep float formatting out of the wasm.
    next_at: u64,
    hold_until: u64,
}

/// A time as stored: whole milliseconds, never negative.
fn ms(t: Millis) -> u64 {
    if t.is_finite() && t > 0.0 {
        t as u64
    } else {
        0
    }
}

impl Pending {
    /// The record's JSON text.
    pub fn to_record(&self) -> String {
        let b = &self.beacon;
        let record = Record {
            v: RECORD_VERSION,
            event_id: &b.event_id,
            kind: b.kind.as_str(),
            identity: &b.identity,
            month: &b.month,
            occurred_at: &b.occurred_at,
            dedupe: b.dedupe.as_str(),
            sdk_version: &b.sdk.version,
            client_version: b.client_version.as_deref(),
            ticket: b.ticket.as_deref(),
            context: b.context.as_deref(),
            reason: b.reason.map(|r| r.as_str()),
            attempt: b.attempt,
            next_at: ms(self.next_at),
            hold_until: ms(self.hold_until),
        };
        // Plain strings and integers to a String cannot fail.
        serde_json::to_string(&record).unwrap_or_default()
    }

    /// Reads a record back.
    pub fn from_record<J: JsonView>(text: &str) -> Read {
        let Some(j) = J::parse(text) else {
            return Read::Corrupt;
        };
        match j.field("v").and_then(|v| v.u32()) {
            Some(RECORD_VERSION) => {}
            Some(v) if v > RECORD_VERSION => return Read::Newer,
            _ => return Read::Corrupt,
        }
        let s = |key: &str| j.field(key).and_then(|v| v.string());
        let n = |key: &str| {
            j.field(key)
                .and_then(|v| v.number())
                .filter(|n| n.is_finite() && *n >= 0.0)
        };
        let read = || -> Option<Pending> {
            let sdk = Sdk {
                name: SDK_NAME.into(),
                version: s("sdk_version")?,
            };
            // A record keeps no `sent_at`: each attempt stamps its own.
            let beacon = Beacon::from_fields(&j, "occurred_at", sdk)?;
            Some(Pending {
                beacon,
                next_at: n("next_at")?,
                hold_until: n("hold_until")?,
            })
        };
        read().map_or(Read::Corrupt, |p| Read::Pending(Box::new(p)))
    }
}

/// A value 0.1.0 stored under [`V1_QUEUE`]: the v1 wire body, no schedule (due now).
pub fn read_v1<J: JsonView>(text: &str, now: Millis) -> Read {
    let Some(j) = J::parse(text) else {
        return Read::Corrupt;
    };
    match j.field("v").and_then(|v| v.u32()) {
        Some(1) => {}
        Some(_) => return Read::Newer,
        None => return Read::Corrupt,
    }
    match Beacon::from_v1(&j) {
        Some(beacon) => Read::Pending(Box::new(Pending {
            beacon,
            next_at: now,
            hold_until: 0.0,
        })),
        None => Read::Corrupt,
    }
}

/// The key of `event_id`'s record.
pub fn queue_key(event_id: &str) -> String {
    let mut k = String::from(QUEUE);
    k.push_str(event_id);
    k
}

/// The key of `event_id`'s tombstone.
pub fn done_key(event_id: &str) -> String {
    let mut k = String::from(DONE);
    k.push_str(event_id);
    k
}

/// The key of 0.1.0's copy of `event_id`.
pub fn v1_queue_key(event_id: &str) -> String {
    let mut k = String::from(V1_QUEUE);
    k.push_str(event_id);
    k
}

/// The dedupe mark of `identity` in `month`.
pub fn counted_key(month: &str, identity: &str) -> String {
    let mut k = String::with_capacity(COUNTED.len() + month.len() + 1 + identity.len());
    k.push_str(COUNTED);
    k.push_str(month);
    k.push(':');
    k.push_str(identity);
    k
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::origin::{Origin, Reason};
    use crate::core::wire::Dedupe;

    const NOV: Millis = 1_795_550_932_123.0;

    fn read(text: &str) -> Read {
        Pending::from_record::<serde_json::Value>(text)
    }

    #[test]
    fn round_trip_keeps_the_schedule() {
        let mut beacon =
            Beacon::connected("ü \"q\"", "e1", NOV, Dedupe::Month, Some("3.0.1".into()));
        beacon.attempt = 3;
        let p = Pending {
            beacon,
            next_at: NOV + 1_000.0,
            hold_until: NOV + 600_000.0,
        };
        let text = p.to_record();
        assert!(text.starts_with(r#"{"v":2,"#), "{text}");
        assert!(text.contains(r#""hold_until":1795551532123"#), "{text}");
        assert!(
            !text.contains("sent_at"),
            "the wire's send stamp is not stored"
        );
        match read(&text) {
            Read::Pending(back) => {
                assert_eq!(back.beacon.attempt, 3);
                assert_eq!(back.hold_until, NOV + 600_000.0);
                assert_eq!(back.next_at, NOV + 1_000.0);
                assert_eq!(back.beacon.identity, "ü \"q\"");
                assert_eq!(back.beacon.client_version.as_deref(), Some("3.0.1"));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn the_ticket_is_kept_for_a_retry_after_a_reload() {
        let beacon = Beacon {
            ticket: Some("v1.1767225600.sig".into()),
            ..Beacon::connected("alice", "e1", NOV, Dedupe::Month, None)
        };
        let p = Pending {
            beacon,
            next_at: NOV,
            hold_until: 0.0,
        };
        match read(&p.to_record()) {
            Read::Pending(mut back) => {
                assert_eq!(back.beacon.ticket.as_deref(), Some("v1.1767225600.sig"));
                let wire = back.beacon.next_attempt(NOV + 5.0);
                assert!(wire.contains(r#""ticket":"v1.1767225600.sig""#), "{wire}");
            }
            other => panic!("{other:?}"),
        }
        // Without one, neither the record nor the wire has the field.
        let plain = Beacon::connected("bob", "e2", NOV, Dedupe::Month, None);
        assert!(!plain.to_json().contains("ticket"));
    }

    #[test]
    fn context_and_reason_are_kept_for_a_retry_after_a_reload() {
        let origin = Origin {
            context: Some("support-widget".into()),
            reason: Reason::Click,
        };
        let mut beacon = Beacon::connected("alice", "e1", NOV, Dedupe::Month, None);
        beacon.set_origin(origin);
        let p = Pending {
            beacon,
            next_at: NOV,
            hold_until: 0.0,
        };
        let record = p.to_record();
        assert!(
            record.contains(r#""context":"support-widget","reason":"click""#),
            "{record}"
        );
        let Read::Pending(mut back) = read(&record) else {
            panic!("not read: {record}")
        };
        assert_eq!(back.beacon.context.as_deref(), Some("support-widget"));
        assert_eq!(back.beacon.reason, Some(Reason::Click));
        let wire: serde_json::Value =
            serde_json::from_str(&back.beacon.next_attempt(NOV + 5.0)).unwrap();
        assert_eq!(wire["context"], "support-widget");
        assert_eq!(wire["reason"], "click");
        // A 0.2 record has neither: read as it is, sent without them.
        let old = Beacon::connected("bob", "e2", NOV, Dedupe::Month, None);
        let Read::Pending(back) = read(
            &Pending {
                beacon: old,
                next_at: NOV,
                hold_until: 0.0,
            }
            .to_record(),
        ) else {
            panic!("not read")
        };
        assert_eq!((&back.beacon.context, back.beacon.reason), (&None, None));
        assert!(!back.beacon.to_json().contains("reason"));
    }

    #[test]
    fn newer_and_corrupt_records() {
        assert_eq!(read(r#"{"v":3,"anything":true}"#), Read::Newer);
        assert_eq!(read(r#"{"v":1}"#), Read::Corrupt);
        assert_eq!(read("{not json"), Read::Corrupt);
        assert_eq!(read(r#"{"v":2,"event_id":"e"}"#), Read::Corrupt);
        assert_eq!(
            read_v1::<serde_json::Value>(r#"{"v":2,"identity":"x"}"#, NOV),
            Read::Newer
        );
    }

    /// 0.1.0's exact stored value: the v1 wire body of an attempted beacon.
    #[test]
    fn reads_what_0_1_0_stored() {
        let v1 = r#"{"v":1,"kind":"connected","identity":"alice@example.com","event_id":"5f0c3c9e2b7a4d1e8f6a0b1c2d3e4f50","month":"2026-11","occurred_at":"2026-11-24T20:08:52.123Z","sent_at":"2026-11-24T20:08:52.140Z","attempt":1,"dedupe":"month","sdk":{"name":"mau-beacon","version":"0.1.0"},"client_version":"2.6.0"}"#;
        let Read::Pending(p) = read_v1::<serde_json::Value>(v1, NOV) else {
            panic!("not read")
        };
        assert_eq!(p.beacon.event_id, "5f0c3c9e2b7a4d1e8f6a0b1c2d3e4f50");
        assert_eq!(p.beacon.sdk.version, "0.1.0");
        assert_eq!((p.next_at, p.hold_until), (NOV, 0.0));
        let Read::Pending(again) = read(&p.to_record()) else {
            panic!("record not read")
        };
        assert_eq!(again.beacon.attempt, 1);
        assert_eq!(again.beacon.occurred_at, "2026-11-24T20:08:52.123Z");
    }
}
