//! The versioned schema on both backends: instances starting together migrate once, and a
//! database newer than the collector is refused with a clear message.

#[macro_use]
mod common;
use common::*;
use mau_collector::store::schema::{latest, MIGRATIONS};
use serde_json::{json, Value};
use std::time::Duration;

fn instances_starting_together_migrate_once(db: &TestDb) {
    let servers: Vec<Server> = std::thread::scope(|s| {
        let started: Vec<_> = (0..3)
            .map(|_| s.spawn(|| Server::start(db, &["--admin-token", TOKEN])))
            .collect();
        started.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(db.scalar("SELECT count(*) FROM schema_version"), latest());
    assert_eq!(
        db.scalar("SELECT max(version) FROM schema_version"),
        latest()
    );
    for (i, s) in servers.iter().enumerate() {
        let r = s.post(&beacon("alice", &format!("e{i}")).to_string());
        assert_eq!(r.status, 200, "{}", r.body);
    }
    let s = servers[0]
        .get_admin(&format!("/v1/months/{}/summary", servers[0].month()))
        .json();
    assert_eq!(s["connects"], 3, "{s}");
}

fn a_newer_schema_is_refused(db: &TestDb) {
    drop(Server::start(db, &[]));
    db.execute(
        "INSERT INTO schema_version (version, name, applied_at)
         VALUES (99, 'from a later release', '2030-01-01T00:00:00.000Z')",
    );
    let expected = format!(
        "database schema version 99 is newer than this mau-collector knows ({})",
        latest()
    );
    let (mut child, log, line) = spawn_serve(db, &[]);
    let status = wait_exit(&mut child);
    assert!(!status.success(), "started anyway: {line}");
    let logs = std::fs::read_to_string(log).unwrap();
    assert!(logs.contains(&expected), "{logs}");
    let out = cli(&["export", "--month", "2026-11", "--db", &db.arg]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains(&expected),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn wait_exit(child: &mut std::process::Child) -> std::process::ExitStatus {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return s;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("collector neither started nor exited");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A database as a release with schema `version` left it: that release's migrations and
/// their rows in `schema_version`.
fn at_version(db: &TestDb, version: i64) {
    let table = match db.backend {
        Backend::Sqlite => {
            "version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL"
        }
        Backend::Postgres => {
            "version BIGINT PRIMARY KEY, name TEXT NOT NULL,
             applied_at TIMESTAMPTZ NOT NULL DEFAULT now()"
        }
    };
    db.execute(&format!("CREATE TABLE schema_version ({table})"));
    for m in MIGRATIONS.iter().take_while(|m| m.version <= version) {
        db.execute(match db.backend {
            Backend::Sqlite => m.sqlite,
            Backend::Postgres => m.postgres,
        });
        db.execute(&format!(
            "INSERT INTO schema_version VALUES ({}, '{}', '2026-11-01T00:00:00.000Z')",
            m.version, m.name
        ));
    }
}

/// Version 3 (still_connected, before billed counts) to 4: the rows stay, the months list
/// them with no billed count, the CLI refuses version 3 until `serve` migrated it, and the
/// new table takes a count.
fn version_3_migrates_to_4_keeping_its_data(db: &TestDb) {
    at_version(db, 3);
    db.execute(
        "INSERT INTO identities VALUES ('2026-10', 'old-friend', '2026-10-01T00:00:00.000Z',
            '2026-10-02T00:00:00.000Z', 2);
         INSERT INTO sightings VALUES ('2026-10', 'address', '+14155550100', 'rest_sync',
            '2026-10-03T00:00:00.000Z', '2026-10-03T00:00:00.000Z', 1);
         INSERT INTO tokens VALUES ('id:k1', 'old-friend', '2026-10', '2026-10-01T00:00:00.000Z',
            NULL, '2026-10-01T00:00:01.000Z');",
    );
    let out = cli(&["report", "--month", "2026-10", "--db", &db.arg]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!(
            "has schema version 3, this mau-collector needs {}",
            latest()
        )),
        "{err}"
    );
    let server = Server::start(db, &["--admin-token", TOKEN]);
    assert_eq!(
        db.scalar("SELECT max(version) FROM schema_version"),
        latest()
    );
    assert_eq!(db.scalar("SELECT count(*) FROM billed"), 0);
    let months = server.months();
    assert_eq!(months.len(), 1, "{months:?}");
    assert_eq!(
        (
            &months[0]["month"],
            &months[0]["unique_identities"],
            &months[0]["connects"],
            &months[0]["subjects"],
            &months[0]["billed"]
        ),
        (
            &json!("2026-10"),
            &json!(1),
            &json!(2),
            &json!(2),
            &serde_json::Value::Null
        ),
        "{months:?}"
    );
    let r = send(
        server
            .request("PUT", "/v1/months/2026-10/billed")
            .set("Authorization", &format!("Bearer {TOKEN}")),
        Some(r#"{"count": 3}"#),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let report = server.get_admin("/v1/months/2026-10/report").json();
    assert_eq!(
        (
            &report["seen"],
            &report["tokens_issued"],
            &report["billed"]["count"],
            &report["unexplained"]
        ),
        (&json!(2), &json!(1), &json!(3), &json!(1)),
        "{report}"
    );
}

/// Version 4 to 5 (erasures counted per month, subject indexes): the rows stay, months
/// show 0 erased, and a subject of the old rows can be erased.
fn version_4_migrates_to_5_and_erases_old_rows(db: &TestDb) {
    at_version(db, 4);
    db.execute(
        "INSERT INTO identities VALUES ('2026-10', 'old-friend', '2026-10-01T00:00:00.000Z',
            '2026-10-02T00:00:00.000Z', 2);
         INSERT INTO tokens VALUES ('at:old-friend', 'old-friend', '2026-10',
            '2026-10-01T00:00:00.000Z', NULL, '2026-10-01T00:00:01.000Z');",
    );
    let log = db.dir.path().join("erasures.log");
    let server = Server::start(
        db,
        &[
            "--admin-token",
            TOKEN,
            "--erasure-key",
            "a-key-of-sixteen-bytes",
            "--erasure-log",
            log.to_str().unwrap(),
        ],
    );
    assert_eq!(
        db.scalar("SELECT max(version) FROM schema_version"),
        latest()
    );
    assert_eq!(server.months()[0]["erased"], 0);
    let r = send(
        server
            .request("DELETE", "/v1/subjects/identity/old-friend")
            .set("Authorization", &format!("Bearer {TOKEN}")),
        None,
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        (
            &r.json()["erased"]["identities"],
            &r.json()["erased"]["tokens"]
        ),
        (&json!(1), &json!(1))
    );
    let months = server.months();
    assert_eq!(
        (&months[0]["subjects"], &months[0]["erased"]),
        (&json!(0), &json!(1)),
        "{months:?}"
    );
}

/// Version 5 to 6 (beacon context and reason, contexts per subject-month) and 7 (budget
/// alerts): old events get
/// no context, and the subjects that connected before (SDK connects and still_connected)
/// stay in the savings table, under no context; new beacons carry theirs.
fn version_5_migrates_to_7_keeping_old_connects_in_the_savings_table(db: &TestDb) {
    at_version(db, 5);
    db.execute(
        "INSERT INTO events (event_id, identity, month, client_month, occurred_at, sent_at,
            received_at, event_at, attempt, dedupe, sdk_name, sdk_version, kind)
         VALUES ('old-e1', 'old-friend', '2026-10', '2026-10', '2026-10-01T00:00:00.000Z',
            '2026-10-01T00:00:00.000Z', '2026-10-01T00:00:00.000Z', '2026-10-01T00:00:00.000Z',
            1, 'month', 'mau-beacon', '0.1.0', 'connected');
         INSERT INTO identities VALUES ('2026-10', 'old-friend', '2026-10-01T00:00:00.000Z',
            '2026-10-02T00:00:00.000Z', 2);
         INSERT INTO identities VALUES ('2026-10', 'both', '2026-10-05T00:00:00.000Z',
            '2026-10-05T00:00:00.000Z', 1);
         INSERT INTO sightings VALUES ('2026-10', 'identity', 'both', 'sdk_still_connected',
            '2026-10-01T00:00:00.000Z', '2026-10-01T00:00:00.000Z', 1);
         INSERT INTO sightings VALUES ('2026-10', 'identity', 'stayed', 'sdk_still_connected',
            '2026-10-01T00:00:00.000Z', '2026-10-01T00:00:00.000Z', 1);
         INSERT INTO sightings VALUES ('2026-10', 'identity', 'old-friend',
            'webhook:onMessageAdded', '2026-10-03T00:00:00.000Z', '2026-10-03T00:00:00.000Z', 1);",
    );
    let server = Server::start(db, &["--admin-token", TOKEN]);
    assert_eq!(
        db.scalar("SELECT max(version) FROM schema_version"),
        latest()
    );
    assert_eq!(
        db.scalar("SELECT count(*) FROM events WHERE context IS NULL AND reason IS NULL"),
        1
    );
    // 'both' connected and stayed connected: one row, its two beacons, the earlier time.
    assert_eq!(
        db.scalar(
            "SELECT count(*) FROM subject_contexts WHERE identity = 'both' AND beacons = 2
             AND first_seen = '2026-10-01T00:00:00.000Z' AND context = ''"
        ),
        1
    );
    let report = server.get_admin("/v1/months/2026-10/report").json();
    assert_eq!(
        report["savings"]["by_context"],
        json!([{"context": null, "reason": null, "subjects": 3, "engaged": 1, "idle": 2,
                "idle_cost": null}]),
        "{report}"
    );
    // Version 7, the budget alerts' table, starts empty: no alert was sent for a month
    // before it existed; a past month has no forecast.
    assert_eq!(db.scalar("SELECT count(*) FROM alerts"), 0);
    assert_eq!(report["forecast"], Value::Null, "{report}");
    let mut b = beacon("new-friend", "new-e1");
    b["context"] = json!("inbox");
    b["reason"] = json!("visible");
    assert_eq!(server.post(&b.to_string()).status, 200);
    let month = server.months()[0]["month"].as_str().unwrap().to_owned();
    let report = server
        .get_admin(&format!("/v1/months/{month}/report"))
        .json();
    assert_eq!(
        report["savings"]["by_context"][0]["context"], "inbox",
        "{report}"
    );
}

both_backends!(
    version_5_migrates_to_7_keeping_old_connects_in_the_savings_table,
    version_4_migrates_to_5_and_erases_old_rows,
    instances_starting_together_migrate_once,
    a_newer_schema_is_refused,
    version_3_migrates_to_4_keeping_its_data,
);

#[test]
fn cli_refuses_a_file_that_is_not_a_collector_database() {
    let db = TestDb::sqlite();
    db.execute("CREATE TABLE notes (body TEXT)");
    let out = cli(&["report", "--month", "2026-11", "--db", &db.arg]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("is not a mau-collector database"), "{err}");
}

/// A file made by mau-collector 0.1 (the tables, no version table) is version 1: the CLI
/// asks for a migration, and `serve` records version 1, migrates to the latest and keeps the data.
#[test]
fn a_database_from_0_1_is_adopted() {
    let db = TestDb::sqlite();
    db.execute(
        "CREATE TABLE events (event_id TEXT PRIMARY KEY, identity TEXT NOT NULL,
            month TEXT NOT NULL, client_month TEXT NOT NULL, occurred_at TEXT NOT NULL,
            sent_at TEXT NOT NULL, received_at TEXT NOT NULL, event_at TEXT NOT NULL,
            attempt INTEGER NOT NULL, dedupe TEXT NOT NULL, sdk_name TEXT NOT NULL,
            sdk_version TEXT NOT NULL, client_version TEXT) WITHOUT ROWID;
         CREATE TABLE identities (month TEXT NOT NULL, identity TEXT NOT NULL,
            first_seen TEXT NOT NULL, last_seen TEXT NOT NULL, connects INTEGER NOT NULL,
            PRIMARY KEY (month, identity)) WITHOUT ROWID;
         INSERT INTO identities VALUES ('2026-10', 'old-friend', '2026-10-01T00:00:00.000Z',
            '2026-10-02T00:00:00.000Z', 2);",
    );
    let out = cli(&["report", "--month", "2026-10", "--db", &db.arg]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!(
            "has schema version 1, this mau-collector needs {}",
            latest()
        )),
        "{err}"
    );
    let server = Server::start(&db, &["--admin-token", TOKEN]);
    let s = server.get_admin("/v1/months/2026-10/summary").json();
    assert_eq!(s["connects"], 2, "{s}");
    assert_eq!(db.scalar("SELECT count(*) FROM schema_version"), latest());
    let out = cli(&["report", "--month", "2026-10", "--db", &db.arg]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout)
        .contains("Subjects seen:              1 (1 chat identities"));
}
