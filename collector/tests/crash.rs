//! Durability: a 2xx means on disk. Kill -9 right after the answer, restart, still there.

mod common;
use common::*;

#[test]
fn kill_9_after_2xx_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("c.db");
    let mut server = Server::start(&db, &["--admin-token", TOKEN]);
    // A batch, then single beacons, the last one killed right after its answer.
    let batch: Vec<_> = (0..50).map(|i| beacon(&format!("batch-{i}"), &format!("b{i}"))).collect();
    assert_eq!(server.post(&serde_json::Value::Array(batch).to_string()).status, 200);
    for i in 0..20 {
        let r = server.post(&beacon(&format!("single-{i}"), &format!("s{i}")).to_string());
        assert_eq!(r.status, 200, "{}", r.body);
    }
    let last = server.post(&beacon("last-before-crash", "crash-1").to_string());
    assert_eq!(last.status, 200);
    server.kill9();

    let server = Server::start(&db, &["--admin-token", TOKEN]);
    let month = server.month();
    let s = server.get_admin(&format!("/v1/months/{month}/summary")).json();
    assert_eq!(s["unique_identities"], 71, "{s}");
    let ids = server.get_admin(&format!("/v1/months/{month}/identities")).body;
    assert!(ids.contains("\"last-before-crash\""), "{ids}");

    // The retry the SDK would send after a crash is still recognised as a repeat.
    assert_eq!(server.post(&beacon("last-before-crash", "crash-1").to_string()).status, 200);
    let s = server.get_admin(&format!("/v1/months/{month}/summary")).json();
    assert_eq!(s["connects"], 71);
    drop(server);

    // The CLI reads the same file after the server is gone.
    let out = cli(&["export", "--month", &month, "--format", "csv", "--db", db.to_str().unwrap()]);
    assert!(out.status.success());
    assert!(String::from_utf8(out.stdout).unwrap().contains("last-before-crash,"));
}
