//! Retention on both backends: `prune --dry-run` counts and deletes nothing, `prune`
//! deletes raw events and delivery keys older than --retain-events-days and the monthly
//! rows (contexts per subject-month too) of months older than --retain-months, a retried
//! beacon inside the window is still deduplicated afterwards, a value below the minimum is refused naming it, and `serve`
//! prunes in the background.

#[macro_use]
mod common;
use common::*;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

fn days_ago(days: i64) -> String {
    mau_collector::wire::format_time(time::OffsetDateTime::now_utc() - time::Duration::days(days))
}

/// An event received `days` ago, and a delivery key seen then; monthly rows in 2020-01.
fn old_rows(db: &TestDb, days: i64) {
    let at = days_ago(days);
    let month = &at[..7];
    db.execute(&format!(
        "INSERT INTO events (event_id, identity, month, client_month, occurred_at, sent_at,
            received_at, event_at, attempt, dedupe, sdk_name, sdk_version, kind)
         VALUES ('old-event', 'old-user', '{month}', '{month}', '{at}', '{at}', '{at}', '{at}',
            1, 'month', 'mau-beacon', '0.1.0', 'connected');
         INSERT INTO delivery_keys VALUES ('EX-old', '{at}');
         INSERT INTO identities VALUES ('2020-01', 'old-user', '2020-01-05T00:00:00.000Z',
            '2020-01-05T00:00:00.000Z', 1);
         INSERT INTO subject_contexts VALUES ('2020-01', 'old-user', 'inbox',
            '2020-01-05T00:00:00.000Z', 'click', 1);
         INSERT INTO sightings VALUES ('2020-01', 'address', '+14155550100', 'rest_sync',
            '2020-01-05T00:00:00.000Z', '2020-01-05T00:00:00.000Z', 1);
         INSERT INTO tokens VALUES ('id:old', 'old-user', '2020-01', '2020-01-05T00:00:00.000Z',
            NULL, '2020-01-05T00:00:01.000Z');
         INSERT INTO billed VALUES ('2020-01', 3, 'typed', '2020-02-01T00:00:00.000Z');"
    ));
}

fn counts(db: &TestDb) -> [i64; 7] {
    [
        "events",
        "delivery_keys",
        "identities",
        "sightings",
        "tokens",
        "billed",
        "subject_contexts",
    ]
    .map(|t| db.scalar(&format!("SELECT count(*) FROM {t}")))
}

fn prune(db: &TestDb, args: &[&str]) -> (bool, Value, String) {
    let mut all = vec!["prune", "--db", &db.arg, "--max-backdate-days", "1"];
    all.extend_from_slice(args);
    let out = cli(&all);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    let json = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    (out.status.success(), json, err)
}

fn prune_keeps_what_dedupe_needs(db: &TestDb) {
    let server = Server::start(db, &["--admin-token", TOKEN, "--max-backdate-days", "1"]);
    let fresh = beacon("fresh-user", "fresh-event").to_string();
    assert_eq!(server.post(&fresh).status, 200);
    old_rows(db, 10);
    let before = counts(db);
    assert_eq!(before, [2, 1, 2, 1, 1, 1, 2]);

    // Below the minimum: refused, naming it.
    let (ok, _, err) = prune(db, &["--retain-events-days", "1"]);
    assert!(!ok && err.contains("minimum 2"), "{err}");
    let (ok, _, err) = prune(db, &["--retain-months", "1"]);
    assert!(!ok && err.contains("minimum 2"), "{err}");
    let (ok, _, err) = prune(db, &[]);
    assert!(!ok && err.contains("nothing to prune"), "{err}");

    let args = ["--retain-events-days", "3", "--retain-months", "3"];
    let (ok, dry, err) = prune(db, &[&args[..], &["--dry-run"]].concat());
    assert!(ok, "{err}");
    let expected = json!({
        "events": 1, "delivery_keys": 1, "identities": 1, "sightings": 1, "tokens": 1,
        "subject_contexts": 1
    });
    assert_eq!(
        (&dry["dry_run"], &dry["rows"]),
        (&json!(true), &expected),
        "{dry}"
    );
    assert_eq!(counts(db), before, "a dry run deletes nothing");

    let (ok, done, err) = prune(db, &args);
    assert!(ok, "{err}");
    assert_eq!(
        (&done["dry_run"], &done["rows"]),
        (&json!(false), &expected),
        "{done}"
    );
    assert_eq!(counts(db), [1, 0, 1, 0, 0, 1, 1], "billed counts stay");
    assert_eq!(
        db.scalar("SELECT count(*) FROM events WHERE event_id = 'fresh-event'"),
        1
    );

    // The retry of a beacon inside the window is still a duplicate: counted once.
    assert_eq!(server.post(&fresh).status, 200);
    let month = server.months()[0]["month"].as_str().unwrap().to_owned();
    let summary = server
        .get_admin(&format!("/v1/months/{month}/summary"))
        .json();
    assert_eq!(summary["connects"], 1, "{summary}");
    let (_, again, _) = prune(db, &args);
    assert_eq!(
        again["rows"],
        json!({"events": 0, "delivery_keys": 0, "identities": 0, "sightings": 0, "tokens": 0,
            "subject_contexts": 0})
    );
}

fn serve_prunes_in_the_background(db: &TestDb) {
    // A database with an old event, then a collector that keeps 2 days.
    drop(Server::start(db, &[]));
    old_rows(db, 10);
    let (mut child, _, _) = spawn_serve(
        db,
        &["--max-backdate-days", "1", "--retain-events-days", "2"],
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    // Events and delivery keys go in separate batches: wait for both.
    while counts(db)[..2] != [0, 0] && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(
        counts(db),
        [0, 0, 1, 1, 1, 1, 1],
        "events pruned, months kept"
    );
    // A retention below the minimum stops serve at start.
    let out = std::process::Command::new(BIN)
        .args(["serve", "--listen", "127.0.0.1:0", "--db", &db.arg])
        .args(["--max-backdate-days", "35", "--retain-events-days", "30"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("minimum 36"), "{err}");
}

both_backends!(
    prune_keeps_what_dedupe_needs,
    serve_prunes_in_the_background
);
