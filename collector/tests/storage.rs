//! Storage identity and soundness: a SQLite file deleted or replaced under the collector is
//! answered 503 before any 2xx and shown by /healthz; a damaged, foreign or wrongly shaped
//! database is refused at start-up with a message naming it.

#[macro_use]
mod common;
use common::*;
use std::io::{Seek, SeekFrom, Write};
use std::process::Child;
use std::time::{Duration, Instant};

/// Starts `serve`, expecting it to refuse: its exit status and log.
fn refused(db: &TestDb) -> (std::process::ExitStatus, String) {
    let (mut child, log, line): (Child, _, String) = spawn_serve(db, &[]);
    assert!(line.is_empty(), "it started: {line}");
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "still running");
        std::thread::sleep(Duration::from_millis(20));
    };
    (status, std::fs::read_to_string(log).unwrap())
}

#[test]
fn deleted_folder_is_answered_503_and_shown_by_healthz() {
    let db = TestDb::sqlite();
    let server = Server::start(&db, &["--admin-token", TOKEN]);
    assert_eq!(server.post(&beacon("before", "e0").to_string()).status, 200);
    // Everything in the folder goes, as with `rm -rf` of the data directory.
    for entry in std::fs::read_dir(db.dir.path()).unwrap() {
        let path = entry.unwrap().path();
        if path.to_string_lossy().contains("c.db") {
            std::fs::remove_file(path).unwrap();
        }
    }
    let mut refused = 0;
    for i in 0..40 {
        let r = server.post(&beacon(&format!("after-{i}"), &format!("a{i}")).to_string());
        assert_eq!(r.status, 503, "{}", r.body);
        assert_eq!(r.json()["code"], "storage_replaced");
        assert!(r.header("retry-after").is_some());
        refused += 1;
    }
    println!("folder deleted under the collector: {refused} of 40 beacons answered 503, none 2xx");
    let h = send(server.request("GET", "/healthz"), None);
    assert_eq!(h.status, 503, "{}", h.body);
    assert_eq!(h.json()["code"], "storage_replaced");
    assert!(server.logs().contains("STORAGE LOST"), "{}", server.logs());
}

#[test]
fn replaced_file_is_answered_503() {
    let db = TestDb::sqlite();
    let server = Server::start(&db, &[]);
    assert_eq!(server.post(&beacon("before", "e0").to_string()).status, 200);
    // Another database swapped in at the same path (a restore gone wrong).
    let other = db.dir.path().join("other.db");
    rusqlite::Connection::open(&other)
        .unwrap()
        .execute_batch("CREATE TABLE t (x)")
        .unwrap();
    std::fs::rename(&other, &db.arg).unwrap();
    let r = server.post(&beacon("after", "e1").to_string());
    assert_eq!(r.status, 503, "{}", r.body);
    assert_eq!(r.json()["code"], "storage_replaced");
    assert_eq!(send(server.request("GET", "/healthz"), None).status, 503);
}

#[test]
fn damaged_sqlite_file_is_refused_at_start() {
    let db = TestDb::sqlite();
    {
        let server = Server::start(&db, &[]);
        let batch: Vec<_> = (0..100)
            .map(|i| beacon(&format!("{i:0>200}"), &format!("e{i}")))
            .collect();
        for _ in 0..3 {
            let r = server.post(&serde_json::Value::Array(batch.clone()).to_string());
            assert_eq!(r.status, 200);
        }
    }
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)");
    let size = std::fs::metadata(&db.arg).unwrap().len();
    assert!(size > 8 * 4096, "{size}");
    // Garbage over the inner pages (not the header page).
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .open(&db.arg)
        .unwrap();
    f.seek(SeekFrom::Start(2 * 4096)).unwrap();
    f.write_all(&vec![0xA5; (size - 3 * 4096) as usize])
        .unwrap();
    drop(f);
    let (status, log) = refused(&db);
    assert!(!status.success());
    assert!(log.contains("is damaged") && log.contains(&db.arg), "{log}");
    // The CLI refuses it too.
    let out = cli(&["export", "--month", "2026-11", "--db", &db.arg]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("is damaged"));
}

#[test]
fn another_programs_sqlite_file_is_refused_and_left_alone() {
    let db = TestDb::sqlite();
    db.execute("CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT)");
    let (status, log) = refused(&db);
    assert!(!status.success());
    assert!(
        log.contains(&format!("{} is not a mau-collector database", db.arg)),
        "{log}"
    );
    assert_eq!(
        db.scalar("SELECT count(*) FROM sqlite_master WHERE type = 'table'"),
        1
    );
}

/// A database that claims the current version but whose tables are not ours.
fn wrong_shape_is_refused_naming_the_database(db: &TestDb) {
    // At the latest version, so no migration runs: only the shape check can refuse it.
    let versions: Vec<String> = (1..=mau_collector::store::schema::latest())
        .map(|v| format!("({v}, 'm{v}', 'x')"))
        .collect();
    db.execute(&format!(
        "CREATE TABLE schema_version (version BIGINT PRIMARY KEY, name TEXT NOT NULL,
             applied_at TEXT NOT NULL);
         INSERT INTO schema_version VALUES {};
         CREATE TABLE events (event_id TEXT PRIMARY KEY, who TEXT);
         CREATE TABLE identities (month TEXT, identity TEXT);",
        versions.join(", ")
    ));
    let (status, log) = refused(db);
    assert!(!status.success());
    let name = match db.backend {
        Backend::Sqlite => db.arg.clone(),
        Backend::Postgres => db.arg.rsplit('/').next().unwrap().to_owned(),
    };
    assert!(
        log.contains("does not have the tables this mau-collector expects") && log.contains(&name),
        "{log}"
    );
}

both_backends!(wrong_shape_is_refused_naming_the_database);
