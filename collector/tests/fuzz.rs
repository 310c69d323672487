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

proptest! {
    #![proptest_config(config(2000))]

    #[test]
    fn parse_body_never_panics_on_bytes(body in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = wire::parse_body(&body, OffsetDateTime::now_utc());
    }

    #[test]
    fn parse_body_never_panics_on_mutated_beacons(b in mutated_beacon()) {
        let now = OffsetDateTime::now_utc();
        let _ = wire::parse_body(b.to_string().as_bytes(), now);
        // All or nothing: a batch holding it is either wholly taken or refused.
        let batch = json!([beacon("ok", "ok-1"), b]);
        if let Ok(records) = wire::parse_body(batch.to_string().as_bytes(), now) {
            prop_assert_eq!(records.len(), 2);
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
        let named = client == peer
            || xff.split(',').any(|h| h.trim().parse::<IpAddr>() == Ok(client));
        prop_assert!(named);
        if !trust {
            prop_assert_eq!(client, peer);
        }
    }

    #[test]
    fn identity_check_never_panics_and_keeps_invisibles_out(id in "\\PC{0,20}[\\x00-\\x1f\\u{200b}\\u{202e}\\u{2066}]?\\PC{0,20}") {
        if identity::check(&id).is_ok() {
            let invisible = id.chars().any(|c| c.is_control()
                || matches!(c, '\u{200B}' | '\u{202E}' | '\u{2066}'));
            prop_assert!(!invisible, "{:?} taken", id);
            prop_assert!(!id.trim().is_empty());
        }
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
