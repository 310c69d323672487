//! The billed count kept per month (schema 4), on both backends: set over HTTP (the
//! dashboard's endpoint) and by `report --billed`, read back by `GET /v1/months`, the HTTP
//! report and the CLI report; bad input answered 4xx JSON; cleared on request.

#[macro_use]
mod common;
use common::*;
use serde_json::{json, Value};

fn billed_request(
    server: &Server,
    method: &str,
    month: &str,
    token: Option<&str>,
) -> ureq::Request {
    let req = server.request(method, &format!("/v1/months/{month}/billed"));
    match token {
        Some(t) => req.set("Authorization", &format!("Bearer {t}")),
        None => req,
    }
}

fn put_billed(server: &Server, month: &str, body: &str) -> Resp {
    send(
        billed_request(server, "PUT", month, Some(TOKEN)).set("Content-Type", "application/json"),
        Some(body),
    )
}

/// The line of `month` in `GET /v1/months`.
fn month_line(server: &Server, month: &str) -> Value {
    server.month_line(month)
}

fn report_json(db: &TestDb, args: &[&str]) -> (Value, String) {
    let mut all = vec!["report", "--format", "json", "--db", &db.arg];
    all.extend_from_slice(args);
    let out = cli(&all);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{err}");
    (serde_json::from_slice(&out.stdout).unwrap(), err)
}

fn billed_is_kept_per_month(db: &TestDb) {
    let server = Server::start(db, &["--admin-token", TOKEN]);
    let beacons = json!([beacon("alice", "e1"), beacon("bob", "e2")]);
    assert_eq!(server.post(&beacons.to_string()).status, 200);
    let month = server.month();
    let line = month_line(&server, &month);
    assert_eq!(
        (&line["subjects"], &line["billed"], &line["unexplained"]),
        (&json!(2), &Value::Null, &Value::Null),
        "{line}"
    );
    assert_eq!(
        line["unique_identities"], 2,
        "the summary fields stay: {line}"
    );

    // Set from the dashboard's endpoint.
    let r = put_billed(&server, &month, r#"{"count": 5}"#);
    assert_eq!(r.status, 200, "{}", r.body);
    let set = r.json();
    assert_eq!(
        (&set["month"], &set["billed"]["count"]),
        (&json!(month), &json!(5))
    );
    assert_eq!(set["billed"]["from"], "typed");
    let at = set["billed"]["recorded_at"].as_str().unwrap().to_owned();
    assert!(at.ends_with('Z') && at.len() == 24, "{at}");
    let line = month_line(&server, &month);
    assert_eq!(line["billed"], set["billed"], "{line}");
    assert_eq!(
        (&line["subjects"], &line["unexplained"]),
        (&json!(2), &json!(3))
    );
    let http = server
        .get_admin(&format!("/v1/months/{month}/report"))
        .json();
    assert_eq!(
        (&http["billed"], &http["unexplained"]),
        (&set["billed"], &json!(3))
    );

    // A report without --billed or --twilio uses the stored count, and says so.
    let (cli_report, err) = report_json(db, &["--month", &month]);
    assert_same_report(&cli_report, &http, "CLI and HTTP give the same report");
    assert!(
        !err.contains("stored for"),
        "nothing stored by a plain report: {err}"
    );
    let out = cli(&["report", "--month", &month, "--db", &db.arg]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(&format!(
            "Billed by Twilio:           5 (typed with --billed or on the dashboard), stored {at}"
        )),
        "{text}"
    );

    // `report --billed` stores it: for a month with no data, and replacing one.
    let (r, err) = report_json(db, &["--month", "2020-01", "--billed", "7"]);
    assert!(
        err.contains("billed count 7 (typed) stored for 2020-01"),
        "{err}"
    );
    assert_eq!(
        (&r["billed"]["count"], &r["unexplained"]),
        (&json!(7), &json!(7))
    );
    let (_, err) = report_json(db, &["--month", &month, "--billed", "4"]);
    assert!(err.contains(&format!("stored for {month}")), "{err}");
    let months: Vec<Value> = server.months();
    let names: Vec<&str> = months
        .iter()
        .map(|m| m["month"].as_str().unwrap())
        .collect();
    assert_eq!(names, [month.as_str(), "2020-01"], "newest first");
    assert_eq!(
        (&months[0]["billed"]["count"], &months[0]["unexplained"]),
        (&json!(4), &json!(2))
    );
    assert_eq!(
        (
            &months[1]["subjects"],
            &months[1]["unique_identities"],
            &months[1]["billed"]["count"]
        ),
        (&json!(0), &json!(0), &json!(7))
    );
    let http = server
        .get_admin(&format!("/v1/months/{month}/report"))
        .json();
    assert_eq!(http["billed"]["count"], 4);

    // `?billed=N` is for one answer only: nothing is stored.
    let once = server
        .get_admin(&format!("/v1/months/{month}/report?billed=9"))
        .json();
    assert_eq!(once["billed"], json!({"count": 9, "from": "typed"}));
    assert_eq!(month_line(&server, &month)["billed"]["count"], 4);

    // Cleared: the month without data leaves the list; clearing again is the same answer.
    for _ in 0..2 {
        let r = send(
            billed_request(&server, "DELETE", "2020-01", Some(TOKEN)),
            None,
        );
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(r.json(), json!({"month": "2020-01", "billed": null}));
    }
    assert_eq!(server.month(), month);
    let (r, _) = report_json(db, &["--month", "2020-01"]);
    assert_eq!(r["billed"], Value::Null);

    // Kept across a restart (a durable write, not a cache).
    drop(server);
    let server = Server::start(db, &["--admin-token", TOKEN]);
    assert_eq!(month_line(&server, &month)["billed"]["count"], 4);
}

fn bad_billed_input_is_refused(db: &TestDb) {
    let server = Server::start(db, &["--admin-token", TOKEN]);
    let month = "2026-11";
    assert_eq!(put_billed(&server, month, r#"{"count": 12}"#).status, 200);
    let code = |r: &Resp| (r.status, r.json()["code"].as_str().unwrap_or("").to_owned());
    for body in [
        r#"{"count": -1}"#,
        r#"{"count": 1.5}"#,
        r#"{"count": "12"}"#,
        r#"{"count": null}"#,
        r#"{}"#,
        r#"[12]"#,
        r#"{"count": 3, "from": "usage_records:pchat-users"}"#,
        r#"{"count": 9223372036854775808}"#,
        "twelve",
        "",
    ] {
        let r = put_billed(&server, month, body);
        assert_eq!(code(&r), (400, "bad_billed".into()), "{body}: {}", r.body);
    }
    let r = put_billed(&server, "2026-13", r#"{"count": 1}"#);
    assert_eq!(code(&r), (400, "bad_request".into()), "{}", r.body);
    let big = format!(r#"{{"count": 1, "pad": "{}"}}"#, "x".repeat(4096));
    assert_eq!(code(&put_billed(&server, month, &big)).0, 413);
    for token in [None, Some("wrong")] {
        let r = send(
            billed_request(&server, "PUT", month, token),
            Some(r#"{"count": 1}"#),
        );
        assert_eq!(code(&r), (401, "unauthorized".into()), "{}", r.body);
        let r = send(billed_request(&server, "DELETE", month, token), None);
        assert_eq!(code(&r), (401, "unauthorized".into()), "{}", r.body);
    }
    let r = send(billed_request(&server, "GET", month, Some(TOKEN)), None);
    assert_eq!(code(&r), (405, "method_not_allowed".into()), "{}", r.body);
    // Nothing above changed the stored count.
    assert_eq!(month_line(&server, month)["billed"]["count"], 12);
    let out = cli(&[
        "report",
        "--month",
        month,
        "--billed",
        "9223372036854775808",
        "--db",
        &db.arg,
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("is too large"), "{err}");
    assert_eq!(month_line(&server, month)["billed"]["count"], 12);
}

both_backends!(billed_is_kept_per_month, bad_billed_input_is_refused);
