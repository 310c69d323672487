//! The savings table end to end, on both backends: a simulated month of raw HTTP beacons
//! (contexts and reasons, several contexts per subject, first connects arriving out of
//! order, `still_connected`, retries, older beacons without a context) with signed
//! webhooks, Event Streams and tokens beside them, and an erased subject; the table in
//! `GET /v1/months/{M}/report` and the CLI report equals the one computed here from what
//! was sent. Malformed `context`/`reason` are refused by name with nothing stored.

#[macro_use]
mod common;
use common::*;
use mau_collector::wire::format_time;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use time::{Duration, OffsetDateTime};

const AUTH: &str = "twilio-test-auth-token";
const PUBLIC: &str = "https://collector.example.com/t";
const INGEST: &str = "test-ingest-secret";
const PRICE: f64 = 0.05;
const FREE: u64 = 3;
const CONTEXTS: [Option<&str>; 4] = [
    Some("support-widget"),
    Some("inbox"),
    Some("settings/profile"),
    None,
];
const REASONS: [&str; 6] = ["click", "visible", "app", "explicit", "focus", "key"];

fn server(db: &TestDb) -> Server {
    let log = db.dir.path().join("erasures.log");
    Server::start(
        db,
        &[
            "--admin-token",
            TOKEN,
            "--ingest-token",
            INGEST,
            "--twilio-auth-token",
            AUTH,
            "--public-url",
            PUBLIC,
            "--erasure-key",
            "savings-test-erasure-key",
            "--erasure-log",
            log.to_str().unwrap(),
            "--price-per-mau",
            "0.05",
            "--free-mau",
            "3",
        ],
    )
}

/// A beacon whose event happened `back_s` seconds before it is received (the delay the
/// device measured), from `context` for `reason`.
fn connect(
    identity: &str,
    event_id: &str,
    still: bool,
    context: Option<&str>,
    reason: Option<&str>,
    back_s: i64,
) -> Value {
    let mut b = beacon(identity, event_id);
    let sent = time::macros::datetime!(2026-11-24 20:08:52.140 UTC);
    b["occurred_at"] = json!(format_time(sent - Duration::seconds(back_s)));
    if still {
        b["kind"] = json!("still_connected");
    }
    if let Some(c) = context {
        b["context"] = json!(c);
    }
    if let Some(r) = reason {
        b["reason"] = json!(r);
    }
    b
}

/// A signed onMessageAdded webhook authored by `author`.
fn webhook(server: &Server, author: &str) {
    signed(
        server,
        &[("EventType", "onMessageAdded"), ("Author", author)],
    );
}

fn signed(server: &Server, params: &[(&str, &str)]) {
    let r = signed_webhook(server, AUTH, PUBLIC, params);
    assert_eq!(r.status, 200, "{}", r.body);
}

/// One Event Streams delivery of a message by each author.
fn event_stream(server: &Server, authors: &[String]) {
    let now = format_time(OffsetDateTime::now_utc());
    let events: Vec<Value> = authors
        .iter()
        .enumerate()
        .map(|(i, a)| {
            json!({"id": format!("EV{i}"), "type": "com.twilio.conversations.message.added",
                   "time": now, "data": {"author": a}})
        })
        .collect();
    let r = signed_events(server, AUTH, PUBLIC, &json!(events).to_string());
    assert_eq!(r.status, 200, "{}", r.body);
}

/// Beacons are back-dated by up to a minute: too near the start of a month they would
/// fall in the previous one, so wait that out (two minutes a month at most).
fn clear_of_month_start() {
    let now = OffsetDateTime::now_utc();
    let into =
        (now.day() as i64 - 1) * 86_400 + now.hour() as i64 * 3600 + now.minute() as i64 * 60;
    if into < 120 {
        std::thread::sleep(std::time::Duration::from_secs((125 - into) as u64));
    }
}

/// A small deterministic generator (the month must be the same on every run).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, n: usize) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        ((self.0 >> 33) % n as u64) as usize
    }
}

/// What the test sent for one subject's SDK connects: (back_s, context, reason).
type Connects = Vec<(i64, Option<&'static str>, Option<&'static str>)>;

/// A table row as compared: context, reason, subjects, engaged, idle, idle cost (cents).
type Row = (Option<String>, Option<String>, u64, u64, u64, Option<i64>);

fn rows_of(savings: &Value) -> BTreeSet<Row> {
    savings["by_context"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["context"].as_str().map(str::to_owned),
                r["reason"].as_str().map(str::to_owned),
                r["subjects"].as_u64().unwrap(),
                r["engaged"].as_u64().unwrap(),
                r["idle"].as_u64().unwrap(),
                r["idle_cost"].as_f64().map(|c| (c * 100.0).round() as i64),
            )
        })
        .collect()
}

/// The table from what was sent: each subject in the row of its earliest connect.
fn ground_truth(
    sent: &BTreeMap<String, Connects>,
    engaged: &BTreeSet<String>,
    priced: bool,
) -> BTreeSet<Row> {
    let mut rows: BTreeMap<(Option<String>, Option<String>), (u64, u64)> = BTreeMap::new();
    for (identity, connects) in sent {
        let first = connects.iter().max_by_key(|c| c.0).unwrap();
        let row = rows
            .entry((first.1.map(str::to_owned), first.2.map(str::to_owned)))
            .or_default();
        row.0 += 1;
        row.1 += u64::from(engaged.contains(identity));
    }
    rows.into_iter()
        .map(|((c, r), (subjects, engaged))| {
            let idle = subjects - engaged;
            let cost = priced.then(|| (idle as f64 * PRICE * 100.0).round() as i64);
            (c, r, subjects, engaged, idle, cost)
        })
        .collect()
}

fn report_cli(db: &TestDb, month: &str, extra: &[&str]) -> String {
    let mut args = vec!["report", "--db", &db.arg, "--month", month];
    args.extend_from_slice(extra);
    let out = cli(&args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn the_table_equals_the_simulated_month(db: &TestDb) {
    clear_of_month_start();
    let server = server(db);
    let mut rng = Lcg(21);
    let mut sent: BTreeMap<String, Connects> = BTreeMap::new();
    let mut beacons: Vec<Value> = Vec::new();
    let mut n = 0;
    let mut id = || {
        n += 1;
        format!("ev-{n:04}")
    };
    for i in 0..36 {
        let identity = format!("user-{i:02}");
        // Distinct delays 10 s apart, so receipt order cannot reorder them.
        let mut slots = vec![5, 15, 25, 35, 45, 55];
        for _ in 0..1 + rng.next(3) {
            let back = slots.remove(rng.next(slots.len()));
            let context = CONTEXTS[rng.next(CONTEXTS.len())];
            // Older SDKs send neither field.
            let reason = context.map(|_| REASONS[rng.next(REASONS.len())]);
            let still = rng.next(5) == 0;
            beacons.push(connect(&identity, &id(), still, context, reason, back));
            sent.entry(identity.clone())
                .or_default()
                .push((back, context, reason));
        }
    }
    // Sent in a shuffled order, a few per request: a later request often carries an
    // earlier connect.
    for i in (1..beacons.len()).rev() {
        beacons.swap(i, rng.next(i + 1));
    }
    for chunk in beacons.chunks(7) {
        let r = server.post(&json!(chunk).to_string());
        assert_eq!(r.status, 200, "{}", r.body);
    }
    // Retries (same event_id, a later attempt) change nothing.
    for b in beacons.iter().take(5) {
        let mut retry = b.clone();
        retry["attempt"] = json!(2);
        assert_eq!(server.post(&retry.to_string()).status, 200);
    }
    // One subject, spelled out: its widget connect happened first but arrives last.
    let late = connect("late-first", &id(), false, Some("inbox"), Some("app"), 5);
    assert_eq!(server.post(&late.to_string()).status, 200);
    let early = connect(
        "late-first",
        &id(),
        false,
        Some("support-widget"),
        Some("click"),
        55,
    );
    assert_eq!(server.post(&early.to_string()).status, 200);
    sent.insert(
        "late-first".into(),
        vec![
            (5, Some("inbox"), Some("app")),
            (55, Some("support-widget"), Some("click")),
        ],
    );

    // Server-side activity: webhooks for every third, Event Streams for every fifth.
    let mut engaged: BTreeSet<String> = BTreeSet::new();
    for i in (0..36).step_by(3) {
        let identity = format!("user-{i:02}");
        webhook(&server, &identity);
        engaged.insert(identity);
    }
    let streamed: Vec<String> = (0..36).step_by(5).map(|i| format!("user-{i:02}")).collect();
    event_stream(&server, &streamed);
    engaged.extend(streamed);
    // Seen server-side only (not in the table), and a token and a User update for an idle
    // subject (neither makes it engaged: both come with a mere connect).
    signed(
        &server,
        &[("EventType", "onUserUpdated"), ("Identity", "user-01")],
    );
    webhook(&server, "server-only");
    webhook(&server, "+14155550100");
    let now = format_time(OffsetDateTime::now_utc());
    let r = send(
        server
            .request("POST", "/v1/tokens")
            .set("Authorization", &format!("Bearer {INGEST}")),
        Some(&json!([{"identity": "user-01", "issued_at": now}]).to_string()),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(!engaged.contains("user-01"));

    // An erased subject leaves the table.
    let gone = connect("gone", &id(), false, Some("inbox"), Some("click"), 30);
    assert_eq!(server.post(&gone.to_string()).status, 200);
    webhook(&server, "gone");
    let r = send(
        server
            .request("DELETE", "/v1/subjects/identity/gone")
            .set("Authorization", &format!("Bearer {TOKEN}")),
        None,
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["erased"]["contexts"], 1, "{}", r.body);

    let month = server.month();
    let report = server
        .get_admin(&format!("/v1/months/{month}/report"))
        .json();
    let savings = &report["savings"];
    let want = ground_truth(&sent, &engaged, true);
    assert_eq!(rows_of(savings), want, "{savings}");
    assert!(want.len() >= 8, "a real split: {want:?}");
    assert!(
        want.iter()
            .any(|r| r.0.as_deref() == Some("support-widget") && r.1.as_deref() == Some("click")),
        "{want:?}"
    );
    // Largest idle cost first.
    let costs: Vec<f64> = savings["by_context"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["idle_cost"].as_f64().unwrap())
        .collect();
    assert!(costs.windows(2).all(|w| w[0] >= w[1]), "{costs:?}");
    // The month's saving: the bill for every subject minus the bill without the idle ones.
    let seen = report["seen"].as_u64().unwrap();
    assert_eq!(seen, sent.len() as u64 + 2, "{report}");
    let idle: u64 = want.iter().map(|r| r.4).sum();
    let bill = |n: u64| n.saturating_sub(FREE) as f64 * PRICE;
    assert_eq!(savings["idle"], idle);
    let saving = savings["idle_saving"].as_f64().unwrap();
    assert!(
        (saving - (bill(seen) - bill(seen - idle))).abs() < 0.001,
        "{savings}"
    );
    assert_eq!(
        (&savings["price_per_mau"], &savings["free_mau"]),
        (&json!(0.05), &json!(3))
    );

    // The CLI: the same table priced, none without a price, and a readable text table.
    let json_cli: Value = serde_json::from_str(&report_cli(
        db,
        &month,
        &[
            "--format",
            "json",
            "--price-per-mau",
            "0.05",
            "--free-mau",
            "3",
        ],
    ))
    .unwrap();
    assert_eq!(json_cli["savings"], *savings);
    let unpriced: Value =
        serde_json::from_str(&report_cli(db, &month, &["--format", "json"])).unwrap();
    assert_eq!(
        rows_of(&unpriced["savings"]),
        ground_truth(&sent, &engaged, false)
    );
    assert_eq!(unpriced["savings"]["price_per_mau"], Value::Null);
    let text = report_cli(db, &month, &["--price-per-mau", "0.05"]);
    assert!(text.contains("Savings"), "{text}");
    let widget = text
        .lines()
        .find(|l| l.trim_start().starts_with("support-widget") && l.contains("click"))
        .unwrap_or_else(|| panic!("{text}"));
    let want_widget = want
        .iter()
        .find(|r| r.0.as_deref() == Some("support-widget") && r.1.as_deref() == Some("click"))
        .unwrap();
    let cells: Vec<String> = widget.split_whitespace().map(str::to_owned).collect();
    let figures = [want_widget.2, want_widget.3, want_widget.4].map(|n| n.to_string());
    assert_eq!(cells[2..5], figures, "{text}");
}

fn malformed_context_or_reason_is_refused_and_nothing_stored(db: &TestDb) {
    let server = server(db);
    let good = connect(
        "alice@example.com",
        "g1",
        false,
        Some("inbox"),
        Some("app"),
        1,
    );
    for (field, value, code) in [
        ("context", json!("support widget"), "bad_context"),
        ("context", json!("x".repeat(65)), "bad_context"),
        ("context", json!(""), "bad_context"),
        ("context", json!(12), "bad_context"),
        ("reason", json!("Click"), "bad_reason"),
        ("reason", json!("x".repeat(33)), "bad_reason"),
    ] {
        let mut bad = good.clone();
        bad["event_id"] = json!("b1");
        bad[field] = value;
        // Alone, and in a batch with a good one: all or nothing.
        for (body, index) in [
            (bad.to_string(), None),
            (json!([good, bad]).to_string(), Some(1)),
        ] {
            let r = server.post(&body);
            assert_eq!(r.status, 400, "{}", r.body);
            let e = r.json();
            assert_eq!(
                (e["code"].as_str(), e["field"].as_str()),
                (Some(code), Some(field))
            );
            assert_eq!(e["index"].as_u64(), index, "{e}");
            assert!(e["error"].as_str().unwrap().contains(field), "{e}");
            assert!(!r.body.contains("alice") && !r.body.contains("support widget"));
        }
    }
    for table in ["events", "identities", "subject_contexts"] {
        assert_eq!(
            db.scalar(&format!("SELECT count(*) FROM {table}")),
            0,
            "{table}"
        );
    }
    // The good one alone is taken, its context and reason stored with the raw event.
    assert_eq!(server.post(&good.to_string()).status, 200);
    assert_eq!(
        db.scalar("SELECT count(*) FROM events WHERE context = 'inbox' AND reason = 'app'"),
        1
    );
}

/// Two connects from one context at the same corrected time keep the same reason on both
/// backends, whatever their order: the smaller one. And an identity that looks like a phone
/// number, which a message's `Author` files as an address, is engaged by that message.
fn ties_and_phone_number_identities(db: &TestDb) {
    clear_of_month_start();
    let server = server(db);
    for (who, first, second) in [("tie-a", "visible", "app"), ("tie-b", "app", "visible")] {
        let batch = json!([
            connect(
                who,
                &format!("{who}-1"),
                false,
                Some("inbox"),
                Some(first),
                5
            ),
            connect(
                who,
                &format!("{who}-2"),
                false,
                Some("inbox"),
                Some(second),
                5
            ),
        ]);
        assert_eq!(server.post(&batch.to_string()).status, 200);
    }
    assert_eq!(
        db.scalar("SELECT count(*) FROM subject_contexts WHERE reason = 'app' AND beacons = 2"),
        2
    );
    let phone = "+14155550100";
    let b = connect(phone, "phone-1", false, Some("phone"), Some("click"), 1);
    assert_eq!(server.post(&b.to_string()).status, 200);
    webhook(&server, phone);
    let month = server.months()[0]["month"].as_str().unwrap().to_owned();
    let report = server
        .get_admin(&format!("/v1/months/{month}/report"))
        .json();
    let row = report["savings"]["by_context"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["context"] == "phone")
        .cloned();
    assert_eq!(
        row.map(|r| (r["subjects"].clone(), r["engaged"].clone())),
        Some((json!(1), json!(1))),
        "{report}"
    );
}

both_backends!(
    ties_and_phone_number_identities,
    the_table_equals_the_simulated_month,
    malformed_context_or_reason_is_refused_and_nothing_stored,
);
