//! POST /v1/beacons over real HTTP: storage, idempotency and every kind of bad input.

#[macro_use]
mod common;
use common::*;
use serde_json::{json, Value};

fn start(db: &TestDb) -> Server {
    Server::start(db, &["--admin-token", TOKEN])
}

fn stores_a_beacon_and_counts_repeats_once(db: &TestDb) {
    let server = start(db);
    let body = beacon("alice@example.com", "5f0c3c9e2b7a4d1e8f6a0b1c2d3e4f50").to_string();
    let first = server.post(&body);
    assert_eq!(first.status, 200, "{}", first.body);
    assert_eq!(first.json(), json!({"ok": true, "accepted": 1}));

    // A retry of the same event (new attempt, new sent_at) is answered the same way.
    let mut retry = beacon("alice@example.com", "5f0c3c9e2b7a4d1e8f6a0b1c2d3e4f50");
    retry["attempt"] = json!(2);
    retry["sent_at"] = json!("2026-11-24T20:09:30.000Z");
    let again = server.post(&retry.to_string());
    assert_eq!((again.status, again.json()), (first.status, first.json()));

    // A second connect of the same identity counts as a connect, not a new identity.
    assert_eq!(
        server
            .post(&beacon("alice@example.com", "e2").to_string())
            .status,
        200
    );

    let month = server.month();
    let s = server
        .get_admin(&format!("/v1/months/{month}/summary"))
        .json();
    assert_eq!(s["unique_identities"], 1);
    assert_eq!(s["connects"], 2);
    assert!(s["first_seen"].as_str().unwrap() <= s["last_seen"].as_str().unwrap());
}

fn takes_an_array_whatever_the_content_type(db: &TestDb) {
    let server = start(db);
    let batch = json!([
        beacon("a", "e1"),
        beacon("b", "e2"),
        beacon("a", "e3"),
        beacon("a", "e1")
    ]);
    for ct in [
        "application/json",
        "text/plain;charset=UTF-8",
        "application/octet-stream",
    ] {
        let r = send(
            server
                .request("POST", "/v1/beacons")
                .set("Content-Type", ct),
            Some(&batch.to_string()),
        );
        assert_eq!(r.status, 200, "{ct}: {}", r.body);
        assert_eq!(r.json()["accepted"], 4);
    }
    let month = server.month();
    let s = server
        .get_admin(&format!("/v1/months/{month}/summary"))
        .json();
    assert_eq!(
        (s["unique_identities"].as_i64(), s["connects"].as_i64()),
        (Some(2), Some(3))
    );
}

/// Each case: body, expected status, expected `code`, text the error must contain, field.
fn bad_inputs() -> Vec<(&'static str, String, u16, &'static str, &'static str)> {
    let with = |field: &str, value: Value| {
        let mut b = beacon("mallory", "bad-1");
        b[field] = value;
        b.to_string()
    };
    let without = |field: &str| {
        let mut b = beacon("mallory", "bad-1");
        b.as_object_mut().unwrap().remove(field);
        b.to_string()
    };
    let mut oversized = beacon("mallory", "bad-1");
    oversized["padding"] = json!("x".repeat(70 * 1024));
    let too_many: Vec<Value> = (0..101)
        .map(|i| beacon("mallory", &format!("e{i}")))
        .collect();
    let mut bad_item = beacon("mallory", "bad-2");
    bad_item["month"] = json!("2026-13");
    vec![
        (
            "malformed JSON",
            "{\"v\": 1, \"kind\":".into(),
            400,
            "malformed_json",
            "",
        ),
        ("not JSON at all", "hello".into(), 400, "malformed_json", ""),
        ("empty body", String::new(), 400, "malformed_json", ""),
        ("a bare string", "\"hi\"".into(), 400, "not_an_object", ""),
        (
            "wrong type",
            with("identity", json!(12)),
            400,
            "wrong_type",
            "identity",
        ),
        (
            "missing field",
            without("event_id"),
            400,
            "missing_field",
            "event_id",
        ),
        (
            "empty identity",
            with("identity", json!("")),
            400,
            "bad_identity",
            "identity",
        ),
        (
            "a NUL in the identity (PostgreSQL's text cannot hold one)",
            with("identity", json!("a\u{0}b")),
            400,
            "nul_character",
            "identity",
        ),
        (
            "a NUL in client_version",
            with("client_version", json!("3.0.1\u{0}")),
            400,
            "nul_character",
            "client_version",
        ),
        (
            "over-long identity",
            with("identity", json!("i".repeat(257))),
            400,
            "identity_too_long",
            "identity",
        ),
        (
            "bad month",
            with("month", json!("2026-13")),
            400,
            "bad_month",
            "month",
        ),
        (
            "unknown v",
            with("v", json!(2)),
            400,
            "unsupported_version",
            "v",
        ),
        (
            "bad timestamp",
            with("occurred_at", json!("yesterday")),
            400,
            "bad_timestamp",
            "occurred_at",
        ),
        (
            "body over 64 KiB",
            oversized.to_string(),
            413,
            "body_too_large",
            "",
        ),
        (
            "array over 100",
            Value::Array(too_many).to_string(),
            413,
            "batch_too_large",
            "",
        ),
        ("empty array", "[]".into(), 400, "empty_batch", ""),
        (
            "array with one bad item",
            json!([beacon("good", "good-1"), bad_item]).to_string(),
            400,
            "bad_month",
            "month",
        ),
    ]
}

fn bad_input_is_a_4xx_with_a_json_error_and_stores_nothing(db: &TestDb) {
    let mut server = start(db);
    for (name, body, status, code, field) in bad_inputs() {
        let r = server.post(&body);
        assert_eq!(r.status, status, "{name}: {}", r.body);
        assert!(
            r.header("content-type")
                .unwrap_or("")
                .starts_with("application/json"),
            "{name}"
        );
        let err = r.json();
        assert_eq!(err["code"], code, "{name}: {err}");
        assert!(
            !err["error"].as_str().unwrap_or("").is_empty(),
            "{name}: {err}"
        );
        if !field.is_empty() {
            assert_eq!(err["field"], field, "{name}: {err}");
        }
        server.assert_alive();
    }
    // Named limits are stated in the message.
    let long = server.post(&{
        let mut b = beacon("x", "y");
        b["identity"] = json!("i".repeat(300));
        b.to_string()
    });
    assert!(
        long.json()["error"].as_str().unwrap().contains("256 bytes"),
        "{}",
        long.body
    );
    let item = server.post(&json!([beacon("ok", "ok-1"), {"v": 1}]).to_string());
    assert_eq!(item.json()["index"], 1, "{}", item.body);

    // Nothing at all was stored, not even the good half of the mixed array.
    assert!(server.months().is_empty(), "{:?}", server.months());
    // And the collector still takes good beacons.
    assert_eq!(
        server.post(&beacon("after", "after-1").to_string()).status,
        200
    );
    assert_eq!(server.months().len(), 1);
}

#[test]
fn oversized_body_without_content_length_is_413() {
    let db = TestDb::sqlite();
    let mut server = start(&db);
    // A chunked upload: the limit must hold while reading, not only on Content-Length.
    let big = vec![b' '; 80 * 1024];
    let r = server
        .request("POST", "/v1/beacons")
        .send(std::io::Cursor::new(big));
    let status = match r {
        Ok(r) => r.status(),
        Err(ureq::Error::Status(s, _)) => s,
        Err(e) => panic!("{e}"),
    };
    assert_eq!(status, 413);
    server.assert_alive();
}

#[test]
fn unknown_paths_and_methods_are_json_errors() {
    let db = TestDb::sqlite();
    let mut server = start(&db);
    let r = send(server.request("GET", "/nope"), None);
    assert_eq!(r.status, 404);
    assert_eq!(r.json()["code"], "not_found");
    let r = send(server.request("GET", "/v1/beacons"), None);
    assert_eq!(r.status, 405);
    assert_eq!(r.json()["code"], "method_not_allowed");
    server.assert_alive();
}

both_backends!(
    stores_a_beacon_and_counts_repeats_once,
    takes_an_array_whatever_the_content_type,
    bad_input_is_a_4xx_with_a_json_error_and_stores_nothing,
);
