//! Erasure on request, on both backends: `DELETE /v1/subjects/...` and `forget` remove a
//! subject from every table and month (rows per table answered, idempotent), the report
//! counts it as erased beside the billed figure, the erasure log holds keyed hashes only,
//! `forget --reapply` erases logged subjects again, and `--refuse-erased` takes (2xx) but
//! does not store what arrives for them, also when another process erased them.

#[macro_use]
mod common;
use common::*;
use serde_json::{json, Value};
use std::path::PathBuf;

const KEY: &str = "erasure-key-for-tests-0123";
const INGEST: &str = "test-ingest-secret";
const AUTH: &str = "twilio-test-auth-token";
const PUBLIC: &str = "https://collector.example.com/t";
const SMS: &str = "+14155550100";

fn log_path(db: &TestDb) -> PathBuf {
    db.dir.path().join("erasures.log")
}

/// A collector with every door open: admin, token log, Twilio, erasure.
fn server(db: &TestDb, extra: &[&str]) -> Server {
    let log = log_path(db);
    let mut args = vec![
        "--admin-token",
        TOKEN,
        "--ingest-token",
        INGEST,
        "--twilio-auth-token",
        AUTH,
        "--public-url",
        PUBLIC,
        "--erasure-key",
        KEY,
        "--erasure-log",
        log.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    Server::start(db, &args)
}

fn delete(server: &Server, kind: &str, encoded: &str, token: Option<&str>) -> Resp {
    let mut req = server.request("DELETE", &format!("/v1/subjects/{kind}/{encoded}"));
    if let Some(t) = token {
        req = req.set("Authorization", &format!("Bearer {t}"));
    }
    send(req, None)
}

fn encode(subject: &str) -> String {
    percent_encoding::utf8_percent_encode(subject, percent_encoding::NON_ALPHANUMERIC).to_string()
}

fn post_tokens(server: &Server, identities: &[&str]) -> Resp {
    let now = mau_collector::wire::format_time(time::OffsetDateTime::now_utc());
    let body: Vec<Value> = identities
        .iter()
        .map(|i| json!({ "identity": i, "issued_at": now }))
        .collect();
    send(
        server
            .request("POST", "/v1/tokens")
            .set("Authorization", &format!("Bearer {INGEST}")),
        Some(&json!(body).to_string()),
    )
}

/// A signed onMessageAdded webhook authored by `author`.
fn webhook(server: &Server, author: &str) -> Resp {
    let params = [
        ("EventType", "onMessageAdded"),
        ("Source", "SDK"),
        ("Author", author),
        ("ConversationSid", "CH1"),
    ];
    signed_webhook(server, AUTH, PUBLIC, &params)
}

fn still_connected(identity: &str, event_id: &str) -> Value {
    let mut b = beacon(identity, event_id);
    b["kind"] = json!("still_connected");
    b
}

/// Rows of `subject` per table, read from the database directly.
fn rows_of(db: &TestDb, subject: &str) -> [i64; 5] {
    let q = |sql: &str| db.scalar(&sql.replace("?", &format!("'{subject}'")));
    [
        q("SELECT count(*) FROM events WHERE identity = ?"),
        q("SELECT count(*) FROM identities WHERE identity = ?"),
        q("SELECT count(*) FROM tokens WHERE identity = ?"),
        q("SELECT count(*) FROM sightings WHERE subject = ?"),
        q("SELECT count(*) FROM subject_contexts WHERE identity = ?"),
    ]
}

fn answered_rows(r: &Value) -> [i64; 5] {
    ["events", "identities", "tokens", "sightings", "contexts"]
        .map(|t| r["erased"][t].as_i64().unwrap())
}

fn erasure_removes_a_subject_everywhere(db: &TestDb) {
    // The log lives in the folder served as static files: it is never served.
    let dir = db.dir.path().to_str().unwrap().to_owned();
    let server = server(db, &["--static-dir", &dir]);
    let beacons = json!([
        beacon("alice", "e1"),
        beacon("alice", "e2"),
        still_connected("alice", "e3"),
        beacon("bob", "e4"),
        beacon("carol/x y+z", "e5"),
    ]);
    assert_eq!(server.post(&beacons.to_string()).status, 200);
    assert_eq!(post_tokens(&server, &["alice", "bob"]).status, 200);
    assert_eq!(webhook(&server, "alice").status, 200);
    assert_eq!(webhook(&server, SMS).status, 200);
    let month = server.month();
    // An older month too: the subject goes from every month.
    db.execute(
        "INSERT INTO identities VALUES ('2026-10', 'alice', '2026-10-01T00:00:00.000Z',
            '2026-10-02T00:00:00.000Z', 1);
         INSERT INTO subject_contexts VALUES ('2026-10', 'alice', 'inbox',
            '2026-10-01T00:00:00.000Z', 'click', 1);
         INSERT INTO sightings VALUES ('2026-10', 'identity', 'alice', 'rest_sync',
            '2026-10-03T00:00:00.000Z', '2026-10-03T00:00:00.000Z', 1);",
    );
    let before = rows_of(db, "alice");
    assert!(before.iter().all(|&n| n > 0), "{before:?}");
    let put = send(
        server
            .request("PUT", &format!("/v1/months/{month}/billed"))
            .set("Authorization", &format!("Bearer {TOKEN}")),
        Some(r#"{"count": 4}"#),
    );
    assert_eq!(put.status, 200, "{}", put.body);

    // The admin door, and a kind that is neither.
    let r = delete(&server, "identity", "alice", None);
    assert_eq!(
        (r.status, r.json()["code"].as_str()),
        (401, Some("unauthorized"))
    );
    let r = delete(&server, "person", "alice", Some(TOKEN));
    assert_eq!(
        (r.status, r.json()["code"].as_str()),
        (400, Some("bad_subject"))
    );
    assert!(!r.body.contains("alice"), "{}", r.body);
    assert_eq!(rows_of(db, "alice"), before, "nothing erased by refusals");

    let r = delete(&server, "identity", "alice", Some(TOKEN));
    assert_eq!(r.status, 200, "{}", r.body);
    let answer = r.json();
    assert_eq!(answered_rows(&answer), before, "{answer}");
    assert_eq!(answer["months"], json!(["2026-10", month]), "{answer}");
    assert_eq!(rows_of(db, "alice"), [0; 5]);
    assert_eq!(rows_of(db, "bob")[..3], [1, 1, 1], "bob stays");

    // Gone from the export, the report, the summary and the months; counted as erased.
    let export = server.get_admin(&format!("/v1/months/{month}/identities?format=ndjson"));
    assert!(!export.body.contains("alice"), "{}", export.body);
    assert_eq!(export.body.lines().count(), 3, "{}", export.body);
    let out = cli(&["export", "--month", &month, "--db", &db.arg]);
    assert!(!String::from_utf8_lossy(&out.stdout).contains("alice"));
    let report = server
        .get_admin(&format!("/v1/months/{month}/report"))
        .json();
    assert_eq!(
        (&report["seen"], &report["erased"], &report["unexplained"]),
        (&json!(3), &json!(1), &json!(0)),
        "billed 4 = 3 seen + 1 erased: {report}"
    );
    assert!(!report.to_string().contains("alice"), "{report}");
    let text = cli(&["report", "--month", &month, "--db", &db.arg]);
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains("Erased on request:          1"), "{text}");
    assert!(text.contains("Unexplained:                0"), "{text}");
    let summary = server
        .get_admin(&format!("/v1/months/{month}/summary"))
        .json();
    assert_eq!(summary["unique_identities"], 2, "{summary}");
    let line = server.month_line(&month);
    assert_eq!(
        (&line["subjects"], &line["erased"], &line["unexplained"]),
        (&json!(3), &json!(1), &json!(0)),
        "{line}"
    );
    let old = server.month_line("2026-10");
    assert_eq!((&old["subjects"], &old["erased"]), (&json!(0), &json!(1)));

    // Idempotent: nothing left, success, and not counted twice.
    let again = delete(&server, "identity", "alice", Some(TOKEN));
    assert_eq!(again.status, 200, "{}", again.body);
    assert_eq!(answered_rows(&again.json()), [0; 5]);
    assert_eq!(again.json()["months"], json!([]));
    assert_eq!(server.month_line(&month)["erased"], 1);

    // A channel address and an identity with URL-special characters, URL-encoded.
    let r = delete(&server, "address", &encode(SMS), Some(TOKEN));
    assert_eq!(answered_rows(&r.json()), [0, 0, 0, 1, 0], "{}", r.body);
    let r = delete(&server, "identity", &encode("carol/x y+z"), Some(TOKEN));
    assert_eq!(answered_rows(&r.json()), [1, 1, 0, 0, 1], "{}", r.body);
    assert_eq!(server.month_line(&month)["erased"], 3);

    let served = send(server.request("GET", "/erasures.log"), None);
    assert_eq!(served.status, 404, "{}", served.body);
    // The log: one line per erasure, a time and a hash, never the subject.
    let log = std::fs::read_to_string(log_path(db)).unwrap();
    assert_eq!(log.lines().count(), 4, "{log}");
    for line in log.lines() {
        let parts: Vec<&str> = line.split(' ').collect();
        assert!(parts.len() == 2 && parts[1].len() == 64, "{line}");
    }
    for secret in ["alice", "14155550100", "carol", KEY] {
        assert!(!log.contains(secret), "{log}");
        assert!(!server.logs().contains(secret), "{}", server.logs());
    }
}

fn erasure_needs_a_key(db: &TestDb) {
    let plain = Server::start(db, &["--admin-token", TOKEN]);
    assert_eq!(plain.post(&beacon("alice", "e1").to_string()).status, 200);
    let r = delete(&plain, "identity", "alice", Some(TOKEN));
    assert_eq!(r.status, 403, "{}", r.body);
    assert_eq!(r.json()["code"], "erasure_disabled");
    assert!(r.json()["error"]
        .as_str()
        .unwrap()
        .contains("MAU_COLLECTOR_ERASURE_KEY"));
    let log = log_path(db);
    let log = log.to_str().unwrap();
    for (args, says) in [
        (vec![], "no erasure key"),
        (vec!["--erasure-key", "short"], "at least 16"),
    ] {
        let mut all = vec![
            "forget",
            "--identity",
            "alice",
            "--db",
            &db.arg,
            "--erasure-log",
            log,
        ];
        all.extend(args);
        let out = cli(&all);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success() && err.contains(says), "{err}");
        assert!(!err.contains("alice"), "{err}");
    }
    if db.backend == Backend::Postgres {
        let out = cli(&[
            "forget",
            "--identity",
            "alice",
            "--db",
            &db.arg,
            "--erasure-key",
            KEY,
        ]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("needs --erasure-log"), "{err}");
    }
    assert_eq!(rows_of(db, "alice")[0], 1, "nothing erased without a key");
}

/// `forget` with the key in the environment (as README says), `--erasure-log` beside.
fn forget(db: &TestDb, key: &str, args: &[&str]) -> Value {
    let log = log_path(db);
    let out = std::process::Command::new(BIN)
        .args([
            "forget",
            "--db",
            &db.arg,
            "--erasure-log",
            log.to_str().unwrap(),
        ])
        .args(args)
        .env_remove("MAU_COLLECTOR_DB")
        .env("MAU_COLLECTOR_ERASURE_KEY", key)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn cli_forget_and_reapply(db: &TestDb) {
    let plain = Server::start(db, &["--admin-token", TOKEN]);
    let beacons = json!([
        beacon("alice", "e1"),
        beacon("bob", "e2"),
        beacon(SMS, "e3")
    ]);
    assert_eq!(plain.post(&beacons.to_string()).status, 200);
    let r = forget(db, KEY, &["--identity", "alice"]);
    assert_eq!(answered_rows(&r), [1, 1, 0, 0, 1], "{r}");
    let r = forget(db, KEY, &["--identity", "alice"]);
    assert_eq!(answered_rows(&r), [0; 5], "idempotent: {r}");

    // Without --refuse-erased, later activity is new and stored (erasure is of the past);
    // here it stands for rows a restored backup brings back.
    assert_eq!(plain.post(&beacon("alice", "e4").to_string()).status, 200);
    assert_eq!(rows_of(db, "alice")[..2], [1, 1]);

    // Another key hashes differently: nothing matches.
    let r = forget(db, "some-other-key-0123456", &["--reapply"]);
    assert_eq!(
        (&r["subjects"], &r["looked_at"]),
        (&json!(0), &json!(3)),
        "{r}"
    );
    assert_eq!(rows_of(db, "alice")[..2], [1, 1]);
    let r = forget(db, KEY, &["--reapply"]);
    assert_eq!(
        (&r["subjects"], &r["looked_at"]),
        (&json!(1), &json!(3)),
        "{r}"
    );
    assert_eq!(
        answered_rows(&json!({ "erased": r["rows"] })),
        [1, 1, 0, 0, 1]
    );
    assert_eq!(rows_of(db, "alice"), [0; 5]);
    assert_eq!(rows_of(db, "bob")[..2], [1, 1]);
    let r = forget(db, KEY, &["--reapply"]);
    assert_eq!(r["subjects"], 0, "{r}");
    let out = cli(&["forget", "--reapply", "--identity", "x", "--db", &db.arg]);
    assert!(
        !out.status.success(),
        "one of --identity, --address, --reapply"
    );
}

fn refuse_erased_takes_and_drops(db: &TestDb) {
    let metrics = "test-metrics-token-0123";
    let server = server(db, &["--refuse-erased", "--metrics-token", metrics]);
    // Erased by another process (the CLI): the server sees the log grow.
    forget(db, KEY, &["--identity", "alice"]);
    let r = server.post(&json!([beacon("alice", "e1"), beacon("bob", "e2")]).to_string());
    assert_eq!(
        (r.status, r.json()["accepted"].clone()),
        (200, json!(2)),
        "{}",
        r.body
    );
    let r = server.post(&beacon("alice", "e3").to_string());
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(post_tokens(&server, &["alice"]).status, 200);
    assert_eq!(webhook(&server, "alice").status, 200);
    assert_eq!(rows_of(db, "alice"), [0; 5], "taken, not stored");
    assert_eq!(
        rows_of(db, "bob")[..2],
        [1, 1],
        "the rest of a batch is stored"
    );
    let stats = server.get_admin("/v1/stats").json();
    assert_eq!(stats["refused"]["erased"], 4, "{stats}");
    let scrape = send(
        server
            .request("GET", "/metrics")
            .set("Authorization", &format!("Bearer {metrics}")),
        None,
    );
    for line in [
        "mau_collector_erased_refused_total{reason=\"beacon\"} 2",
        "mau_collector_erased_refused_total{reason=\"token\"} 1",
        "mau_collector_erased_refused_total{reason=\"sighting\"} 1",
    ] {
        assert!(scrape.body.contains(line), "{line}\n{}", scrape.body);
    }
    // Erased through this server: refused from then on.
    assert_eq!(delete(&server, "identity", "bob", Some(TOKEN)).status, 200);
    assert_eq!(server.post(&beacon("bob", "e4").to_string()).status, 200);
    assert_eq!(rows_of(db, "bob")[0], 0);
    // --refuse-erased without a key does not start.
    let out = std::process::Command::new(BIN)
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--db",
            &db.arg,
            "--refuse-erased",
        ])
        .env_remove("MAU_COLLECTOR_ERASURE_KEY")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("needs the erasure key"),
        "{err}"
    );
}

both_backends!(
    erasure_removes_a_subject_everywhere,
    erasure_needs_a_key,
    cli_forget_and_reapply,
    refuse_erased_takes_and_drops,
);
