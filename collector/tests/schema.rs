//! The versioned schema on both backends: instances starting together migrate once, and a
//! database newer than the collector is refused with a clear message.

#[macro_use]
mod common;
use common::*;
use std::time::Duration;

fn instances_starting_together_migrate_once(db: &TestDb) {
    let servers: Vec<Server> = std::thread::scope(|s| {
        let started: Vec<_> = (0..3)
            .map(|_| s.spawn(|| Server::start(db, &["--admin-token", TOKEN])))
            .collect();
        started.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(db.scalar("SELECT count(*) FROM schema_version"), 3);
    assert_eq!(db.scalar("SELECT max(version) FROM schema_version"), 3);
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
    let expected = "database schema version 99 is newer than this mau-collector knows (3)";
    let (mut child, log, line) = spawn_serve(db, &[]);
    let status = wait_exit(&mut child);
    assert!(!status.success(), "started anyway: {line}");
    let logs = std::fs::read_to_string(log).unwrap();
    assert!(logs.contains(expected), "{logs}");
    let out = cli(&["export", "--month", "2026-11", "--db", &db.arg]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains(expected),
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

both_backends!(
    instances_starting_together_migrate_once,
    a_newer_schema_is_refused,
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
        err.contains("has schema version 1, this mau-collector needs 3"),
        "{err}"
    );
    let server = Server::start(&db, &["--admin-token", TOKEN]);
    let s = server.get_admin("/v1/months/2026-10/summary").json();
    assert_eq!(s["connects"], 2, "{s}");
    assert_eq!(db.scalar("SELECT count(*) FROM schema_version"), 3);
    let out = cli(&["report", "--month", "2026-10", "--db", &db.arg]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout)
        .contains("Subjects seen:              1 (1 chat identities"));
}
