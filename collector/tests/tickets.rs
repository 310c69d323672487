//! Signed tickets over real HTTP: with --require-ticket only beacons with a valid ticket
//! for their identity, unexpired at their event time, are stored; anything else is 401
//! `bad_ticket` and nothing of the request is stored.

#[macro_use]
mod common;
use common::*;
use mau_collector::ticket::mint;
use serde_json::{json, Value};

const SECRET: &str = "ticket-test-secret";

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn ticketed(identity: &str, event_id: &str, ticket: &str) -> Value {
    let mut b = beacon(identity, event_id);
    b["ticket"] = json!(ticket);
    b
}

fn required_tickets_refuse_forgeries(db: &TestDb) {
    let server = Server::start(
        db,
        &[
            "--admin-token",
            TOKEN,
            "--ticket-secret",
            SECRET,
            "--require-ticket",
        ],
    );
    let good = mint(SECRET.as_bytes(), "alice", now() + 3600);
    let r = server.post(&ticketed("alice", "e1", &good).to_string());
    assert_eq!(r.status, 200, "{}", r.body);

    let forged = mint(b"guessed-secret", "mallory", now() + 3600);
    let expired = mint(SECRET.as_bytes(), "bob", now() - 60);
    for (body, what) in [
        (beacon("mallory", "m0"), "missing"),
        (ticketed("mallory", "m1", &good), "another identity's"),
        (ticketed("mallory", "m2", &forged), "forged"),
        (ticketed("bob", "m3", &expired), "expired"),
        (ticketed("mallory", "m4", "v1.123.abc"), "malformed"),
        (
            json!([
                ticketed("carol", "c1", &mint(SECRET.as_bytes(), "carol", now() + 60)),
                ticketed("mallory", "m5", &good)
            ]),
            "one bad in a batch",
        ),
    ] {
        let r = server.post(&body.to_string());
        assert_eq!(r.status, 401, "{what}: {}", r.body);
        assert_eq!(r.json()["code"], "bad_ticket", "{what}");
        assert_eq!(r.json()["field"], "ticket", "{what}");
    }
    // A ticket that expired after the event (the beacon was queued) is still good.
    let mut late = ticketed("dave", "d1", &mint(SECRET.as_bytes(), "dave", now() - 30));
    late["occurred_at"] = json!("2026-11-24T20:00:00.000Z");
    late["sent_at"] = json!("2026-11-24T20:01:00.000Z");
    assert_eq!(server.post(&late.to_string()).status, 200);

    let ids = stored_identities(&server);
    assert_eq!(ids, ["alice".to_owned(), "dave".to_owned()].into());
    assert_eq!(
        server.get_admin("/v1/stats").json()["refused"]["bad_ticket"],
        6
    );
}

fn optional_tickets_are_checked_when_present(db: &TestDb) {
    let server = Server::start(db, &["--admin-token", TOKEN, "--ticket-secret", SECRET]);
    assert_eq!(server.post(&beacon("plain", "p1").to_string()).status, 200);
    let forged = mint(b"nope", "eve", now() + 60);
    assert_eq!(
        server
            .post(&ticketed("eve", "e1", &forged).to_string())
            .status,
        401
    );
    assert_eq!(stored_identities(&server), ["plain".to_owned()].into());
}

both_backends!(
    required_tickets_refuse_forgeries,
    optional_tickets_are_checked_when_present
);

#[test]
fn require_ticket_needs_a_secret() {
    let out = cli(&["serve", "--require-ticket", "--listen", "127.0.0.1:0"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--ticket-secret"));
}
