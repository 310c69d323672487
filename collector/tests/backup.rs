//! `backup --to FILE` under live ingest: a consistent copy of a SQLite store taken while
//! beacons keep arriving, restored (served), made lawful again with `forget --reapply`:
//! no beacon acknowledged before the backup began is lost, and a subject erased after the
//! backup is gone again. PostgreSQL is pointed at pg_dump.

#[macro_use]
mod common;
use common::*;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const KEY: &str = "erasure-key-for-tests-0123";

fn cli_env(args: &[&str]) -> std::process::Output {
    std::process::Command::new(BIN)
        .args(args)
        .env_remove("MAU_COLLECTOR_DB")
        .env("MAU_COLLECTOR_ERASURE_KEY", KEY)
        .output()
        .unwrap()
}

fn backup_under_live_ingest_then_restore(db: &TestDb) {
    let copy = db.dir.path().join("copy.db");
    let copy_arg = copy.to_str().unwrap().to_owned();
    if db.backend == Backend::Postgres {
        let out = cli(&["backup", "--to", &copy_arg, "--db", &db.arg]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success() && err.contains("pg_dump"), "{err}");
        assert!(!err.contains("postgres@"), "no URL echoed: {err}");
        return;
    }
    let log = db.dir.path().join("erasures.log");
    let log_arg = log.to_str().unwrap().to_owned();
    let server = Server::start(
        db,
        &[
            "--admin-token",
            TOKEN,
            "--erasure-key",
            KEY,
            "--erasure-log",
            &log_arg,
        ],
    );
    assert_eq!(
        server.post(&beacon("erase-me", "e0").to_string()).status,
        200
    );

    // Clients posting beacons without pause; each acknowledged event_id is recorded.
    let acked = Arc::new(Mutex::new(Vec::<String>::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let (acked, stop) = (acked.clone(), stop.clone());
            let url = format!("{}/v1/beacons", server.url);
            std::thread::spawn(move || {
                let agent = ureq::AgentBuilder::new()
                    .timeout(Duration::from_secs(20))
                    .build();
                let mut i = 0;
                while !stop.load(Ordering::SeqCst) {
                    let id = format!("load-{t}-{i}");
                    let body = beacon(&id, &id).to_string();
                    match agent.post(&url).send_string(&body) {
                        Ok(r) if r.status() == 200 => acked.lock().unwrap().push(id),
                        other => panic!("{id}: {:?}", other.map(|r| r.status())),
                    }
                    i += 1;
                }
            })
        })
        .collect();
    while acked.lock().unwrap().len() < 200 {
        std::thread::sleep(Duration::from_millis(5));
    }
    // Everything acknowledged before the backup starts must be in it.
    let before: Vec<String> = acked.lock().unwrap().clone();
    let out = cli(&["backup", "--to", &copy_arg, "--db", &db.arg]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("backup written"));
    let during = acked.lock().unwrap().len() - before.len();
    std::thread::sleep(Duration::from_millis(200));
    stop.store(true, Ordering::SeqCst);
    for t in threads {
        t.join().unwrap();
    }
    let total = acked.lock().unwrap().len();
    assert!(
        total > before.len(),
        "ingest went on during and after the backup"
    );
    // A second backup to the same file is refused: nothing is overwritten.
    let again = cli(&["backup", "--to", &copy_arg, "--db", &db.arg]);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("exists"));

    // Erased after the backup was taken: the copy still holds it.
    let r = send(
        server
            .request("DELETE", "/v1/subjects/identity/erase-me")
            .set("Authorization", &format!("Bearer {TOKEN}")),
        None,
    );
    assert_eq!(r.status, 200, "{}", r.body);
    drop(server);

    // Restore: the copy put in place of a database, made lawful again, then served.
    let restored = TestDb::sqlite();
    std::fs::copy(&copy, &restored.arg).unwrap();
    let count = |sql: &str| restored.scalar(sql);
    assert_eq!(
        count("SELECT count(*) FROM events WHERE identity = 'erase-me'"),
        1
    );
    let out = cli_env(&[
        "forget",
        "--reapply",
        "--db",
        &restored.arg,
        "--erasure-log",
        &log_arg,
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (&r["subjects"], &r["rows"]["events"]),
        (&1.into(), &1.into()),
        "{r}"
    );
    let server = Server::start(&restored, &["--admin-token", TOKEN]);
    assert_eq!(
        count("SELECT count(*) FROM events WHERE identity = 'erase-me'"),
        0
    );
    let stored = stored_identities(&server);
    let lost: Vec<&String> = before.iter().filter(|id| !stored.contains(*id)).collect();
    assert!(
        lost.is_empty(),
        "acknowledged before the backup, lost: {lost:?}"
    );
    assert!(!stored.contains("erase-me"));
    assert_eq!(server.months()[0]["erased"], 1);
    eprintln!(
        "backup under load: {} acknowledged before it, {during} while it ran, {} in all; \
         {} in the copy",
        before.len(),
        total,
        stored.len()
    );
}

both_backends!(backup_under_live_ingest_then_restore);
