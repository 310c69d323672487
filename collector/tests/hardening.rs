//! Refusals that keep the audit list honest: backdating past the window, conflicting
//! re-deliveries of an event_id; each with its code, counted in /v1/stats.

#[macro_use]
mod common;
use common::*;
use serde_json::{json, Value};

fn start(db: &TestDb, extra: &[&str]) -> Server {
    let mut args = vec!["--admin-token", TOKEN];
    args.extend_from_slice(extra);
    Server::start(db, &args)
}

fn refused(server: &Server) -> Value {
    let r = server.get_admin("/v1/stats");
    assert_eq!(r.status, 200, "{}", r.body);
    r.json()["refused"].clone()
}

/// A beacon whose device says the event happened `delay` before sending.
fn delayed(identity: &str, event_id: &str, delay: time::Duration) -> Value {
    let mut b = beacon(identity, event_id);
    let sent = time::OffsetDateTime::parse(
        "2026-11-24T20:08:52.140Z",
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    let occurred = sent - delay;
    b["occurred_at"] = json!(occurred
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap());
    b
}

/// A beacon whose device says the event happened `days` before sending.
fn backdated(identity: &str, event_id: &str, days: u32) -> Value {
    delayed(identity, event_id, time::Duration::days(days.into()))
}

/// A beacon whose corrected event time will be `offset` from the start of this UTC month.
fn at_month_start(identity: &str, event_id: &str, offset: time::Duration) -> Value {
    let now = time::OffsetDateTime::now_utc();
    let start = now
        .replace_day(1)
        .unwrap()
        .replace_time(time::Time::MIDNIGHT);
    delayed(identity, event_id, now - (start + offset))
}

fn backdating_is_bounded(db: &TestDb) {
    let server = start(db, &[]);
    let r = server.post(&backdated("old", "o1", 36).to_string());
    assert_eq!(r.status, 400, "{}", r.body);
    assert_eq!(r.json()["code"], "event_too_old");
    assert_eq!(r.json()["field"], "occurred_at");
    // An array is all or nothing, and names the item.
    let r = server.post(&json!([beacon("fresh", "f1"), backdated("old", "o2", 400)]).to_string());
    assert_eq!(r.status, 400, "{}", r.body);
    assert_eq!(r.json()["index"], 1);
    // Inside the window: stored, in its (earlier) month.
    let r = server.post(&backdated("queued", "q1", 20).to_string());
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(refused(&server)["too_old"], 2);
    let total: i64 = server
        .months()
        .iter()
        .map(|m| m["unique_identities"].as_i64().unwrap())
        .sum();
    assert_eq!(total, 1);
    drop(server);
    // The window is configurable.
    let server = start(db, &["--max-backdate-days", "2"]);
    let r = server.post(&backdated("queued3", "q3", 3).to_string());
    assert_eq!(r.json()["code"], "event_too_old", "{}", r.body);
}

fn conflicting_redelivery_is_409(db: &TestDb) {
    let server = start(db, &[]);
    assert_eq!(server.post(&beacon("alice", "e1").to_string()).status, 200);
    let r = server.post(&beacon("mallory", "e1").to_string());
    assert_eq!(r.status, 409, "{}", r.body);
    assert_eq!(r.json()["code"], "event_id_conflict");
    assert_eq!(r.json()["accepted"], 0);
    assert_eq!(r.json()["conflicts"], json!([0]));
    // In a batch, the others are stored and the conflict is named.
    let r = server.post(&json!([beacon("mallory", "e1"), beacon("carol", "e2")]).to_string());
    assert_eq!(r.status, 409, "{}", r.body);
    assert_eq!(r.json()["accepted"], 1);
    assert_eq!(r.json()["conflicts"], json!([0]));
    // The real retry is still a harmless repeat.
    let mut retry = beacon("alice", "e1");
    retry["attempt"] = json!(2);
    assert_eq!(server.post(&retry.to_string()).status, 200);
    assert_eq!(refused(&server)["event_id_conflicts"], 2);
    let ids = stored_identities(&server);
    assert!(ids.contains("alice") && ids.contains("carol"), "{ids:?}");
    assert!(!ids.contains("mallory"), "{ids:?}");
    // A retry whose corrected time crossed the month's start by the network delay is the
    // same event; the same event_id an hour into the month is not.
    let s = time::Duration::seconds;
    assert_eq!(
        server
            .post(&at_month_start("dave", "b1", s(-2)).to_string())
            .status,
        200
    );
    let r = server.post(&at_month_start("dave", "b1", s(2)).to_string());
    assert_eq!(r.status, 200, "{}", r.body);
    let r = server.post(&at_month_start("dave", "b1", s(3600)).to_string());
    assert_eq!(r.status, 409, "{}", r.body);
    assert_eq!(refused(&server)["event_id_conflicts"], 3);
}

fn identity_hygiene(db: &TestDb) {
    let server = start(db, &[]);
    for (i, (id, code)) in [
        ("   ", "bad_identity"),
        ("\u{202E}ecila", "identity_character"),
        ("al\u{200B}ice", "identity_character"),
        ("ali\u{7}ce", "identity_character"),
        ("bob\u{2067}", "identity_character"),
        ("al\u{2061}ice", "identity_character"),
        ("\u{3164}alice", "identity_character"),
    ]
    .into_iter()
    .enumerate()
    {
        let r = server.post(&beacon(id, &format!("x{i}")).to_string());
        assert_eq!(
            (r.status, r.json()["code"].as_str()),
            (400, Some(code)),
            "{id:?}: {}",
            r.body
        );
        assert_eq!(r.json()["field"], "identity");
    }
    // Case and width are kept: each is what Twilio would bill, flagged for a person.
    for (i, id) in ["alice", "Alice", "alice ", "ａｌｉｃｅ", "аlice", "bob"]
        .iter()
        .enumerate()
    {
        assert_eq!(
            server
                .post(&beacon(id, &format!("e{i}")).to_string())
                .status,
            200
        );
    }
    let month = server.month();
    let report = server
        .get_admin(&format!("/v1/months/{month}/report"))
        .json();
    assert_eq!(report["identities"], 6);
    // The Cyrillic а groups by its confusable skeleton.
    assert_eq!(
        report["lookalikes"],
        json!([["Alice", "alice", "alice ", "аlice", "ａｌｉｃｅ"]])
    );
    assert_eq!(refused(&server)["bad_identity"], 7);
    // The CLI report says it too.
    let out = cli(&["report", "--month", &month, "--db", &db.arg]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("Look-alike identities") && text.contains("\"alice \""),
        "{text}"
    );
}

fn csv_export_neutralises_formulas(db: &TestDb) {
    let server = start(db, &[]);
    let batch = json!([
        beacon("=HYPERLINK(\"http://evil.example\",\"x\")", "e1"),
        beacon("@SUM(1+1)*cmd|' /C calc'!A0", "e2"),
        beacon("-2+3", "e3"),
        beacon("plain", "e4"),
    ]);
    assert_eq!(server.post(&batch.to_string()).status, 200);
    let month = server.month();
    let csv = server
        .get_admin(&format!("/v1/months/{month}/identities?format=csv"))
        .body;
    let firsts: Vec<String> = csv::Reader::from_reader(csv.as_bytes())
        .records()
        .map(|r| r.unwrap()[0].to_owned())
        .collect();
    assert_eq!(
        firsts,
        [
            "'-2+3",
            "'=HYPERLINK(\"http://evil.example\",\"x\")",
            "'@SUM(1+1)*cmd|' /C calc'!A0",
            "plain"
        ]
    );
    assert!(
        !csv.lines()
            .skip(1)
            .any(|l| l.starts_with(['=', '+', '-', '@'])),
        "{csv}"
    );
    // The command line's export neutralises them the same way.
    let out = cli(&[
        "export", "--month", &month, "--format", "csv", "--db", &db.arg,
    ]);
    assert!(out.status.success(), "{out:?}");
    let cli_firsts: Vec<String> = csv::Reader::from_reader(&out.stdout[..])
        .records()
        .map(|r| r.unwrap()[0].to_owned())
        .collect();
    assert_eq!(cli_firsts, firsts);
    // JSON is unchanged.
    let ids = stored_identities(&server);
    assert!(ids.contains("-2+3") && ids.contains("plain"), "{ids:?}");
}

both_backends!(
    backdating_is_bounded,
    conflicting_redelivery_is_409,
    identity_hygiene,
    csv_export_neutralises_formulas
);

#[test]
fn every_reachable_error_is_json_with_a_code() {
    let db = TestDb::sqlite();
    let server = start(&db, &[]);
    // Lowercase scheme is fine.
    let r = send(
        server
            .request("GET", "/v1/months")
            .set("Authorization", &format!("bearer {TOKEN}")),
        None,
    );
    assert_eq!(r.status, 200, "{}", r.body);
    for (path, status, code) in [
        ("/v1/months/%FF%FE/summary", 400, "bad_request"),
        (
            "/v1/months/2026-11/identities?format=json&format=csv",
            400,
            "bad_request",
        ),
        ("/nothing-here", 404, "not_found"),
    ] {
        let r = server.get_admin(path);
        assert_eq!(r.status, status, "{path}: {}", r.body);
        assert_eq!(r.json()["code"], code, "{path}");
        assert!(!r.json()["error"].as_str().unwrap().is_empty());
    }
    let r = send(server.request("DELETE", "/v1/beacons"), None);
    assert_eq!(
        (r.status, r.json()["code"].as_str()),
        (405, Some("method_not_allowed"))
    );
}

#[test]
fn static_dir_never_leaks_links_or_the_database() {
    let db = TestDb::sqlite();
    let site = db.dir.path().join("site");
    std::fs::create_dir(&site).unwrap();
    std::fs::write(site.join("index.html"), "<h1>demo</h1>").unwrap();
    let secret = db.dir.path().join("secret.txt");
    std::fs::write(&secret, "top secret").unwrap();
    std::os::unix::fs::symlink(&secret, site.join("link.txt")).unwrap();
    std::os::unix::fs::symlink(db.dir.path(), site.join("up")).unwrap();
    // The database kept inside the served folder.
    let mut inside = TestDb::sqlite();
    inside.arg = site.join("mau.db").to_str().unwrap().to_owned();
    let server = Server::start(
        &inside,
        &[
            "--admin-token",
            TOKEN,
            "--static-dir",
            site.to_str().unwrap(),
        ],
    );
    assert_eq!(server.post(&beacon("alice", "e1").to_string()).status, 200);
    assert_eq!(send(server.request("GET", "/"), None).status, 200);
    for path in [
        "/link.txt",
        "/up/secret.txt",
        "/mau.db",
        "/mau.db-wal",
        "/mau.db-shm",
        "/missing.html",
    ] {
        let r = send(server.request("GET", path), None);
        assert_eq!(r.status, 404, "{path}: {}", r.body);
        assert_eq!(r.json()["code"], "not_found", "{path}");
        assert!(
            !r.body.contains("top secret") && !r.body.contains("SQLite"),
            "{path}"
        );
    }
    let r = send(server.request("POST", "/index.html"), Some("x"));
    assert_eq!(
        (r.status, r.json()["code"].as_str()),
        (405, Some("method_not_allowed")),
        "{}",
        r.body
    );
    drop(db);
}
