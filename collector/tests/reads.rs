//! Team-only reads (auth, JSON/CSV export over HTTP), the CLI export and report, and the
//! static folder.

#[macro_use]
mod common;
use common::*;
use serde_json::{json, Value};

/// A collector with three identities: "alice" (2 connects), "bob, \"the\" builder" (1),
/// and "carol \"c\" newline" (1): names that need CSV quoting.
fn seeded(db: &TestDb, extra: &[&str]) -> Server {
    let mut args = vec!["--admin-token", TOKEN];
    args.extend_from_slice(extra);
    let server = Server::start(db, &args);
    let batch = json!([
        beacon("alice", "e1"),
        beacon("bob, \"the\" builder", "e2"),
        beacon("alice", "e3"),
        beacon("carol \"c\" newline", "e4"),
    ]);
    let r = server.post(&batch.to_string());
    assert_eq!(r.status, 200, "{}", r.body);
    server
}

fn reads_need_the_admin_token(db: &TestDb) {
    let server = seeded(db, &[]);
    let month = server.month();
    for path in [
        "/v1/months".to_owned(),
        format!("/v1/months/{month}/summary"),
        format!("/v1/months/{month}/identities"),
    ] {
        let none = send(server.request("GET", &path), None);
        assert_eq!(none.status, 401, "{path}");
        assert_eq!(none.json()["code"], "unauthorized");
        assert_eq!(none.header("www-authenticate"), Some("Bearer"));
        assert_eq!(server.get_admin(&path).status, 200, "{path}");
    }
    // A wrong token or scheme, once each: the admin door locks an address out after 5
    // failures (observability.rs).
    {
        let path = "/v1/months";
        let wrong = send(
            server
                .request("GET", path)
                .set("Authorization", "Bearer nope"),
            None,
        );
        assert_eq!(wrong.status, 401, "{path}");
        let basic = send(
            server
                .request("GET", path)
                .set("Authorization", &format!("Basic {TOKEN}")),
            None,
        );
        assert_eq!(basic.status, 401, "{path}");
        assert_eq!(server.get_admin(path).status, 200, "{path}");
    }
}

fn reads_are_closed_without_a_configured_token(db: &TestDb) {
    let server = Server::start(db, &[]);
    assert_eq!(server.post(&beacon("a", "e").to_string()).status, 200);
    let r = server.get_admin("/v1/months");
    assert_eq!(r.status, 403);
    assert_eq!(r.json()["code"], "reads_disabled");
}

fn expected_rows() -> Vec<(String, i64)> {
    vec![
        ("alice".into(), 2),
        ("bob, \"the\" builder".into(), 1),
        ("carol \"c\" newline".into(), 1),
    ]
}

fn identities_as_json_ndjson_and_csv(db: &TestDb) {
    let server = seeded(db, &[]);
    let month = server.month();
    let path = format!("/v1/months/{month}/identities");

    let json_resp = server.get_admin(&path);
    assert_eq!(json_resp.status, 200);
    assert_eq!(json_resp.header("content-type"), Some("application/json"));
    let rows: Vec<Value> = serde_json::from_str(&json_resp.body).unwrap();
    let got: Vec<(String, i64)> = rows
        .iter()
        .map(|r| {
            (
                r["identity"].as_str().unwrap().to_owned(),
                r["connects"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(got, expected_rows());
    for r in &rows {
        let keys: Vec<&String> = r.as_object().unwrap().keys().collect();
        assert_eq!(keys.len(), 6, "{r}");
        assert_eq!(r["subject_kind"], "identity");
        assert_eq!(r["sources"], "sdk_connect");
        assert!(r["first_seen"].as_str().unwrap().ends_with('Z'));
    }

    let nd = server.get_admin(&format!("{path}?format=ndjson"));
    assert_eq!(nd.header("content-type"), Some("application/x-ndjson"));
    let lines: Vec<Value> = nd
        .body
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines, rows);

    let by_query = server.get_admin(&format!("{path}?format=csv"));
    let by_accept = send(
        server
            .request("GET", &path)
            .set("Authorization", &format!("Bearer {TOKEN}"))
            .set("Accept", "text/csv"),
        None,
    );
    assert_eq!(by_query.body, by_accept.body);
    assert!(by_accept
        .header("content-type")
        .unwrap()
        .starts_with("text/csv"));
    assert_csv(&by_query.body);

    let bad = server.get_admin(&format!("{path}?format=xml"));
    assert_eq!(bad.status, 400);
    let bad_month = server.get_admin("/v1/months/2026-13/identities");
    assert_eq!(
        (bad_month.status, bad_month.json()["code"].as_str()),
        (400, Some("bad_request"))
    );

    // A month with no data is an empty list, not an error.
    let empty = server.get_admin("/v1/months/1999-01/identities");
    assert_eq!(empty.json(), json!([]));
    let empty_csv = server.get_admin("/v1/months/1999-01/identities?format=csv");
    assert_eq!(
        empty_csv.body,
        "identity,subject_kind,sources,first_seen,last_seen,connects\n"
    );
}

fn assert_csv(text: &str) {
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    assert_eq!(
        reader.headers().unwrap(),
        vec![
            "identity",
            "subject_kind",
            "sources",
            "first_seen",
            "last_seen",
            "connects"
        ]
    );
    let got: Vec<(String, i64)> = reader
        .records()
        .map(|r| {
            let r = r.unwrap();
            (r[0].to_owned(), r[5].parse().unwrap())
        })
        .collect();
    assert_eq!(got, expected_rows());
    assert!(text.contains("\"bob, \"\"the\"\" builder\""), "{text}");
}

fn cli_export_and_report(db: &TestDb) {
    let server = seeded(db, &[]);
    let month = server.month();
    let dbs = db.arg.as_str();
    let http_json = server
        .get_admin(&format!("/v1/months/{month}/identities"))
        .body;

    // The CLI reads while the server runs (WAL readers do not block the writer).
    let out = cli(&["export", "--month", &month, "--format", "csv", "--db", dbs]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_csv(&String::from_utf8(out.stdout).unwrap());

    let out = cli(&["--db", dbs, "export", "--month", &month, "--format", "json"]);
    assert!(out.status.success());
    assert_eq!(String::from_utf8(out.stdout).unwrap(), http_json);

    let out = cli(&["report", "--month", &month, "--billed", "5", "--db", dbs]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("Subjects seen:              3 (3 chat identities, 0 channel addresses)"),
        "{text}"
    );
    assert!(text.contains("SDK connects:               4"), "{text}");
    assert!(
        text.contains("Unexplained:                2 billed but not seen by any source"),
        "{text}"
    );

    // `--billed 5` was stored for the month: a report without it uses it, and says so.
    let out = cli(&["report", "--month", &month, "--db", dbs]);
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains(
            "Billed by Twilio:           5 (typed with --billed or on the dashboard), stored "
        ),
        "{text}"
    );
    assert!(
        text.contains("Unexplained:                2 billed but not seen by any source"),
        "{text}"
    );

    // Errors are plain and non-zero.
    let missing = db.dir.path().join("missing.db");
    let out = cli(&[
        "report",
        "--month",
        &month,
        "--db",
        missing.to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no database"));
    let out = cli(&["export", "--month", "2026-13", "--db", dbs]);
    assert!(!out.status.success());
}

#[test]
fn serves_a_static_folder_at_the_root() {
    let db = TestDb::sqlite();
    let site = db.dir.path().join("site");
    std::fs::create_dir(&site).unwrap();
    std::fs::write(site.join("index.html"), "<h1>demo</h1>").unwrap();
    std::fs::write(site.join("app.js"), "console.log(1)").unwrap();
    let server = seeded(&db, &["--static-dir", site.to_str().unwrap()]);
    let index = send(server.request("GET", "/"), None);
    assert_eq!((index.status, index.body.as_str()), (200, "<h1>demo</h1>"));
    assert!(index
        .header("content-type")
        .unwrap()
        .starts_with("text/html"));
    let js = send(server.request("GET", "/app.js"), None);
    assert_eq!(js.status, 200);
    // The API still wins over files, and the demo page can read with the token.
    assert_eq!(server.get_admin("/v1/months").status, 200);
    assert_eq!(
        send(server.request("GET", "/missing.html"), None).status,
        404
    );
}

fn large_month_streams_in_many_chunks(db: &TestDb) {
    let server = Server::start(db, &["--admin-token", TOKEN]);
    // 5,000 identities (~600 KB of JSON: many 32 KiB chunks), in 50 arrays of 100.
    for b in 0..50 {
        let batch: Vec<Value> = (0..100)
            .map(|i| {
                beacon(
                    &format!("user-{:05}@example.com", b * 100 + i),
                    &format!("ev-{b}-{i}"),
                )
            })
            .collect();
        assert_eq!(server.post(&Value::Array(batch).to_string()).status, 200);
    }
    let month = server.month();
    let rows: Vec<Value> = serde_json::from_str(
        &server
            .get_admin(&format!("/v1/months/{month}/identities"))
            .body,
    )
    .unwrap();
    assert_eq!(rows.len(), 5000);
    assert_eq!(rows[0]["identity"], "user-00000@example.com");
    assert_eq!(rows[4999]["identity"], "user-04999@example.com");
    let csv = server
        .get_admin(&format!("/v1/months/{month}/identities?format=csv"))
        .body;
    assert_eq!(csv.lines().count(), 5001);
}

both_backends!(
    reads_need_the_admin_token,
    reads_are_closed_without_a_configured_token,
    identities_as_json_ndjson_and_csv,
    cli_export_and_report,
    large_month_streams_in_many_chunks,
);
