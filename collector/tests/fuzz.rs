//! Property tests (proptest, bounded cases, in `cargo test`): the beacon parser and the
//! new parsers (tickets, X-Forwarded-For, identity checks) never panic on any input, and a
//! batch with one bad item stores nothing over real HTTP.

#[macro_use]
mod common;
use common::*;
use mau_collector::http::limits::client_ip;
use mau_collector::{identity, ticket, wire};
use proptest::prelude::*;
use serde_json::{json, Value};
use std::net::IpAddr;
use time::OffsetDateTime;

fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// JSON values shaped like beacons, with any field replaced by junk.
fn mutated_beacon() -> impl Strategy<Value = Value> {
    let junk = prop_oneof![
        Just(Value::Null),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        ".{0,300}".prop_map(Value::from),
        Just(json!([])),
        Just(json!({"x": 1})),
    ];
    let fields = [
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
        "client_version",
        "ticket",
    ];
    (0..fields.len(), junk, ".{1,40}").prop_map(move |(i, junk, id)| {
        let mut b = beacon(&id, &format!("e-{id}"));
        b[fields[i]] = junk;
        b
    })
}

/// Format (Cf) and Default_Ignorable_Code_Point characters, as listed in Unicode 16's
/// DerivedGeneralCategory.txt and DerivedCoreProperties.txt: kept apart from the
/// implementation (which asks a Unicode data crate) so one checks the other.
const INVISIBLE: &[(u32, u32)] = &[
    (0x00AD, 0x00AD),
    (0x034F, 0x034F),
    (0x0600, 0x0605),
    (0x061C, 0x061C),
    (0x06DD, 0x06DD),
    (0x070F, 0x070F),
    (0x0890, 0x0891),
    (0x08E2, 0x08E2),
    (0x115F, 0x1160),
    (0x17B4, 0x17B5),
    (0x180B, 0x180F),
    (0x200B, 0x200F),
    (0x202A, 0x202E),
    (0x2060, 0x206F),
    (0x3164, 0x3164),
    (0xFE00, 0xFE0F),
    (0xFEFF, 0xFEFF),
    (0xFFA0, 0xFFA0),
    (0xFFF0, 0xFFFB),
    (0x110BD, 0x110BD),
    (0x110CD, 0x110CD),
    (0x13430, 0x1343F),
    (0x1BCA0, 0x1BCA3),
    (0x1D173, 0x1D17A),
    (0xE0000, 0xE0FFF),
];

fn is_invisible(c: char) -> bool {
    INVISIBLE
        .iter()
        .any(|&(lo, hi)| (lo..=hi).contains(&(c as u32)))
}

/// One character from `INVISIBLE`.
fn invisible() -> impl Strategy<Value = char> {
    proptest::sample::select(INVISIBLE.to_vec())
        .prop_flat_map(|(lo, hi)| lo..=hi)
        .prop_map(|n| char::from_u32(n).expect("no surrogates listed"))
}

proptest! {
    #![proptest_config(config(2000))]

    #[test]
    fn parse_body_never_panics_on_bytes(body in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = wire::parse_body(&body, OffsetDateTime::now_utc());
    }

    #[test]
    fn parse_body_never_panics_on_mutated_beacons(b in mutated_beacon()) {
        let now = OffsetDateTime::now_utc();
        let alone = wire::parse_body(b.to_string().as_bytes(), now);
        // All or nothing: a batch holding it is taken whole exactly when it is taken alone,
        // and then holds it as parsed alone, after the good one.
        let batch = json!([beacon("ok", "ok-1"), b]);
        match (wire::parse_body(batch.to_string().as_bytes(), now), alone) {
            (Ok(records), Ok(one)) => {
                prop_assert_eq!(records.len(), 2);
                prop_assert_eq!(&records[0].beacon.identity, "ok");
                prop_assert_eq!(&records[1].beacon.identity, &one[0].beacon.identity);
                prop_assert_eq!(&records[1].beacon.event_id, &one[0].beacon.event_id);
            }
            (Err(_), Err(_)) => {}
            (batch, alone) => prop_assert!(false, "batch {:?} but alone {:?}", batch.is_ok(), alone.is_ok()),
        }
    }

    #[test]
    fn ticket_parse_and_verify_never_panic(t in ".{0,200}", id in ".{0,64}", secret in ".{0,64}") {
        let _ = ticket::parse(&t);
        let _ = ticket::verify(secret.as_bytes(), Some(&t), &id, OffsetDateTime::now_utc());
        // What is minted verifies, for any identity and secret.
        let minted = ticket::mint(secret.as_bytes(), &id, 4_000_000_000);
        prop_assert!(ticket::verify(secret.as_bytes(), Some(&minted), &id, OffsetDateTime::now_utc()).is_ok());
    }

    #[test]
    fn forwarded_for_never_panics_and_names_a_known_address(
        xff in "[0-9a-f:., ]{0,80}",
        peer in any::<IpAddr>(),
        trust in any::<bool>(),
    ) {
        let trusted: Vec<IpAddr> = if trust { vec![peer] } else { vec![] };
        let client = client_ip(peer, std::iter::once(xff.as_str()), &trusted);
        // Addresses come back canonical (IPv4-mapped IPv6 as IPv4).
        let named = client == peer.to_canonical()
            || xff.split(',').any(|h| h.trim().parse::<IpAddr>().map(|ip| ip.to_canonical()) == Ok(client));
        prop_assert!(named);
        if !trust {
            prop_assert_eq!(client, peer.to_canonical());
        }
    }

    #[test]
    fn identity_check_never_panics_and_keeps_invisibles_out(
        id in "\\PC{0,20}",
        inserted in proptest::option::of((invisible(), 0usize..=20)),
    ) {
        let mut id = id;
        if let Some((c, at)) = inserted {
            let at = id.char_indices().nth(at).map_or(id.len(), |(i, _)| i);
            id.insert(at, c);
        }
        let taken = identity::check(&id).is_ok();
        if taken {
            prop_assert!(!id.trim().is_empty());
        }
        let bad = id.chars().find(|&c| c.is_control() || is_invisible(c));
        prop_assert!(!(taken && bad.is_some()), "{:?} taken with {:?}", id, bad);
        let _ = identity::lookalike_key(&id);
    }
}

/// Identities stored over every month.
fn count(server: &Server) -> usize {
    server
        .months()
        .iter()
        .map(|m| m["unique_identities"].as_u64().unwrap() as usize)
        .sum()
}

/// Over real HTTP: batches with one corrupted item at a random place store nothing; the
/// same batch without it is stored whole.
#[test]
fn no_partial_write_over_http() {
    let db = TestDb::sqlite();
    let server = Server::start(&db, &["--admin-token", TOKEN]);
    let mut runner = proptest::test_runner::TestRunner::new(config(48));
    let stored = std::cell::Cell::new(0usize);
    let n = std::cell::Cell::new(0usize);
    runner
        .run(
            &(mutated_beacon(), 1usize..6, 0usize..6),
            |(bad, len, at)| {
                n.set(n.get() + 1);
                let n = n.get();
                let mut items: Vec<Value> = (0..len)
                    .map(|i| beacon(&format!("p{n}-{i}"), &format!("p{n}-{i}")))
                    .collect();
                let at = at.min(len);
                let bad_alone = server.post(&bad.to_string());
                items.insert(at, bad);
                let r = server.post(&Value::Array(items.clone()).to_string());
                prop_assert!(r.status < 500, "{}", r.body);
                if r.status == 200 {
                    prop_assert_eq!(bad_alone.status, 200);
                    stored.set(count(&server));
                } else {
                    prop_assert!(r.json()["code"].is_string(), "{}", r.body);
                    prop_assert_eq!(count(&server), stored.get(), "partial write");
                    items.remove(at);
                    let ok = server.post(&Value::Array(items).to_string());
                    prop_assert_eq!(ok.status, 200, "{}", ok.body);
                    stored.set(count(&server));
                }
                Ok(())
            },
        )
        .unwrap();
    let mut server = server;
    server.assert_alive();
}
