//! The beacon itself: wire format v1 (`docs/wire-format.md`).

use alloc::string::String;

use serde::Serialize;

use crate::core::json::JsonView;
use crate::core::origin::{Origin, Reason};

use crate::core::clock::{iso8601, utc_month, Millis};

/// The SDK's name and version, sent with every beacon.
pub const SDK_NAME: &str = "mau-beacon";
/// Cargo's version of this crate, which is also the npm package's.
pub const SDK_VERSION: &str = env!("CARGO_PKG_VERSION");

/// The longest identity the collector takes, in UTF-8 bytes (Twilio's own limit).
pub const MAX_IDENTITY_BYTES: usize = 256;

/// What a beacon reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BeaconKind {
    /// A confirmed `connected`: what Twilio bills.
    Connected,
    /// A client connected before the UTC month began and still connected when it did.
    StillConnected,
}

impl BeaconKind {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            BeaconKind::Connected => "connected",
            BeaconKind::StillConnected => "still_connected",
        }
    }

    /// Reads the wire name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "connected" => Some(BeaconKind::Connected),
            "still_connected" => Some(BeaconKind::StillConnected),
            _ => None,
        }
    }
}

/// How often one identity is reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Dedupe {
    /// One beacon per identity per UTC month on this device: what the bill needs.
    Month,
    /// Every confirmed connect.
    None,
}

impl Dedupe {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Dedupe::Month => "month",
            Dedupe::None => "none",
        }
    }

    /// Parses the config value.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "month" => Some(Dedupe::Month),
            "none" => Some(Dedupe::None),
            _ => None,
        }
    }
}

/// `{ name, version }` of the sender.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Sdk {
    /// Always `mau-beacon`.
    pub name: String,
    /// The SDK version that built the beacon.
    pub version: String,
}

/// One confirmed connect of one identity, as it goes on the wire and into storage.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Beacon {
    /// Format version, 1.
    pub v: u32,
    /// `connected`.
    pub kind: BeaconKind,
    /// The billed identity.
    pub identity: String,
    /// Unique per event, the same on every retry.
    pub event_id: String,
    /// `YYYY-MM` of `occurred_at`.
    pub month: String,
    /// When `connected` was seen.
    pub occurred_at: String,
    /// When this attempt was made (restamped on each).
    pub sent_at: String,
    /// 1-based attempt number.
    pub attempt: u32,
    /// `month` or `none`.
    pub dedupe: Dedupe,
    /// Who sent it.
    pub sdk: Sdk,
    /// `Client.version` of the Conversations SDK, when it has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_version: Option<String>,
    /// A signed ticket from the app's backend, checked by a collector that asks for one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ticket: Option<String>,
    /// The app's label for the place that made the client, when it gave one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub context: Option<String>,
    /// What made the client; always set by this SDK, absent from what 0.2 stored.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<Reason>,
}

impl Beacon {
    /// A fresh beacon for a connect seen at `occurred`; not yet attempted.
    pub fn connected(
        identity: &str,
        event_id: &str,
        occurred: Millis,
        dedupe: Dedupe,
        client_version: Option<String>,
    ) -> Beacon {
        let occurred_at = iso8601(occurred);
        Beacon {
            v: 1,
            kind: BeaconKind::Connected,
            identity: identity.into(),
            event_id: event_id.into(),
            month: utc_month(occurred),
            sent_at: occurred_at.clone(),
            occurred_at,
            attempt: 0,
            dedupe,
            sdk: Sdk {
                name: SDK_NAME.into(),
                version: SDK_VERSION.into(),
            },
            client_version,
            ticket: None,
            context: None,
            reason: None,
        }
    }

    /// Where the client was made, for the wire and the stored record. Set in place: a
    /// `Beacon` moved whole costs a copy of it in the wasm (docs/size.md).
    pub fn set_origin(&mut self, origin: Origin) {
        self.context = origin.context;
        self.reason = Some(origin.reason);
    }

    /// Stamps the next attempt and returns the body to send.
    pub fn next_attempt(&mut self, now: Millis) -> String {
        self.attempt += 1;
        self.sent_at = iso8601(now);
        self.to_json()
    }

    /// The JSON text (wire body and storage value alike).
    pub fn to_json(&self) -> String {
        // Serializing plain strings and numbers to a String cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Reads a stored beacon back; `None` for anything that is not a whole v1 beacon.
    pub fn from_json<J: JsonView>(text: &str) -> Option<Beacon> {
        let j = J::parse(text)?;
        (j.field("v")?.u32()? == 1).then_some(())?;
        Beacon::from_v1(&j)
    }

    /// Reads a parsed v1 body (its `v` already checked).
    pub fn from_v1<J: JsonView>(j: &J) -> Option<Beacon> {
        let sdk = j.field("sdk")?;
        let sdk = Sdk {
            name: sdk.field("name")?.string()?,
            version: sdk.field("version")?.string()?,
        };
        Beacon::from_fields(j, "sent_at", sdk)
    }

    /// The fields a v1 body and a stored record share, read once for both (one copy of the
    /// reader in the wasm); `sent_at` is the key the attempt time is read from.
    pub fn from_fields<J: JsonView>(j: &J, sent_at: &str, sdk: Sdk) -> Option<Beacon> {
        let s = |key: &str| j.field(key).and_then(|v| v.string());
        let beacon = Beacon {
            v: 1,
            kind: BeaconKind::parse(&s("kind")?)?,
            identity: s("identity")?,
            event_id: s("event_id")?,
            month: s("month")?,
            occurred_at: s("occurred_at")?,
            sent_at: s(sent_at)?,
            attempt: j.field("attempt")?.u32()?,
            dedupe: Dedupe::parse(&s("dedupe")?)?,
            sdk,
            client_version: s("client_version"),
            ticket: s("ticket"),
            context: s("context"),
            reason: s("reason").and_then(|r| Reason::parse(&r)),
        };
        (!beacon.identity.is_empty() && !beacon.event_id.is_empty()).then_some(beacon)
    }
}

/// 16 random bytes as 32 lowercase hex characters.
pub fn event_id(random: &[u8; 16]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(32);
    for b in random {
        s.push(HEX[(b >> 4) as usize] as char);
        s.push(HEX[(b & 15) as usize] as char);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOV_24: Millis = 1_795_550_932_123.0;

    #[test]
    fn builds_wire_format_v1() {
        let mut b = Beacon::connected("alice", "ab12", NOV_24, Dedupe::Month, Some("3.0.1".into()));
        let body = b.next_attempt(NOV_24 + 17.0);
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["v"], 1);
        assert_eq!(v["kind"], "connected");
        assert_eq!(v["identity"], "alice");
        assert_eq!(v["event_id"], "ab12");
        assert_eq!(v["month"], "2026-11");
        assert_eq!(v["occurred_at"], "2026-11-24T20:08:52.123Z");
        assert_eq!(v["sent_at"], "2026-11-24T20:08:52.140Z");
        assert_eq!(v["attempt"], 1);
        assert_eq!(v["dedupe"], "month");
        assert_eq!(v["sdk"]["name"], "mau-beacon");
        assert_eq!(v["sdk"]["version"], SDK_VERSION);
        assert_eq!(v["client_version"], "3.0.1");
        assert!(!body.contains("token"));
    }

    #[test]
    fn retries_keep_the_id_and_restamp() {
        let mut b = Beacon::connected("bo", "id1", NOV_24, Dedupe::None, None);
        b.next_attempt(NOV_24);
        let second = b.next_attempt(NOV_24 + 60_000.0);
        let v: serde_json::Value = serde_json::from_str(&second).unwrap();
        assert_eq!(v["event_id"], "id1");
        assert_eq!(v["attempt"], 2);
        assert_eq!(v["occurred_at"], "2026-11-24T20:08:52.123Z");
        assert_eq!(v["sent_at"], "2026-11-24T20:09:52.123Z");
        assert!(v.get("client_version").is_none());
    }

    #[test]
    fn storage_round_trip_and_rejects() {
        let b = Beacon::connected("ü \"quoted\"", "e", NOV_24, Dedupe::Month, None);
        let read = Beacon::from_json::<serde_json::Value>;
        assert_eq!(read(&b.to_json()), Some(b.clone()));
        assert_eq!(read("{}"), None);
        assert_eq!(read("garbage"), None);
        assert_eq!(read("[1]"), None);
        assert_eq!(
            read(&b.to_json().replace("\"attempt\":0", "\"attempt\":\"0\"")),
            None
        );
        let mut v2 = b;
        v2.v = 2;
        assert_eq!(read(&v2.to_json()), None);
    }

    fn fixture(name: &str) -> serde_json::Value {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/fixtures/wire/");
        let text = std::fs::read_to_string(format!("{path}{name}")).unwrap();
        let mut v: serde_json::Value = serde_json::from_str(&text).unwrap();
        // The one field that follows the release.
        v["sdk"]["version"] = SDK_VERSION.into();
        v
    }

    fn produced(mut b: Beacon, attempts: u32, sent: Millis) -> serde_json::Value {
        for _ in 1..attempts {
            b.next_attempt(sent);
        }
        serde_json::from_str(&b.next_attempt(sent)).unwrap()
    }

    /// The wire contract: the serializer writes the golden fixtures the collector's own
    /// test feeds its parser (`collector/tests/wire_fixtures.rs`).
    #[test]
    fn writes_the_golden_fixtures() {
        let mut b = Beacon::connected(
            "alice@example.com",
            "5f0c3c9e2b7a4d1e8f6a0b1c2d3e4f50",
            NOV_24,
            Dedupe::Month,
            Some("3.0.1".into()),
        );
        b.set_origin(Origin {
            context: Some("support-widget".into()),
            reason: Reason::Click,
        });
        assert_eq!(produced(b, 1, NOV_24 + 17.0), fixture("connected.json"));
        // 2026-11-30T23:59:59.999Z, sent a minute later in December.
        let end_of_nov = 1_796_083_199_999.0;
        let mut b = Beacon::connected(
            "jürgen \"q\" ü?>",
            "00000000000000000000000000000001",
            end_of_nov,
            Dedupe::None,
            None,
        );
        b.set_origin(Origin::app());
        assert_eq!(
            produced(b, 3, end_of_nov + 60_000.0),
            fixture("retried-no-client-version.json")
        );
        let max = fixture("identity-256-bytes.json");
        assert_eq!(max["identity"].as_str().unwrap().len(), MAX_IDENTITY_BYTES);
        let refused = fixture("refused-identity-257-bytes.json");
        assert_eq!(
            refused["identity"].as_str().unwrap().len(),
            MAX_IDENTITY_BYTES + 1
        );
    }

    #[test]
    fn event_ids_are_hex() {
        let id = event_id(&[0, 1, 0xab, 0xff, 16, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x7f]);
        assert_eq!(id, "0001abff10000000000000000000007f");
        assert_eq!(Dedupe::parse("month"), Some(Dedupe::Month));
        assert_eq!(Dedupe::parse("none"), Some(Dedupe::None));
        assert_eq!(Dedupe::parse("day"), None);
    }
}
