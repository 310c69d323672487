//! Durability: a 2xx means on disk. Kill -9 right after the answer, restart, still there.

#[macro_use]
mod common;
use common::*;

fn kill_9_after_2xx_loses_nothing(db: &TestDb) {
    let mut server = Server::start(db, &["--admin-token", TOKEN]);
    // A batch, then single beacons, the last one killed right after its answer.
    let batch: Vec<_> = (0..50)
        .map(|i| beacon(&format!("batch-{i}"), &format!("b{i}")))
        .collect();
    assert_eq!(
        server
            .post(&serde_json::Value::Array(batch).to_string())
            .status,
        200
    );
    for i in 0..20 {
        let r = server.post(&beacon(&format!("single-{i}"), &format!("s{i}")).to_string());
        assert_eq!(r.status, 200, "{}", r.body);
    }
    let last = server.post(&beacon("last-before-crash", "crash-1").to_string());
    assert_eq!(last.status, 200);
    server.kill9();

    let server = Server::start(db, &["--admin-token", TOKEN]);
    let month = server.month();
    let s = server
        .get_admin(&format!("/v1/months/{month}/summary"))
        .json();
    assert_eq!(s["unique_identities"], 71, "{s}");
    let ids = server
        .get_admin(&format!("/v1/months/{month}/identities"))
        .body;
    assert!(ids.contains("\"last-before-crash\""), "{ids}");

    // The retry the SDK would send after a crash is still recognised as a repeat.
    assert_eq!(
        server
            .post(&beacon("last-before-crash", "crash-1").to_string())
            .status,
        200
    );
    let s = server
        .get_admin(&format!("/v1/months/{month}/summary"))
        .json();
    assert_eq!(s["connects"], 71);
    drop(server);

    // The CLI reads the same file after the server is gone.
    let out = cli(&[
        "export", "--month", &month, "--format", "csv", "--db", &db.arg,
    ]);
    assert!(out.status.success());
    assert!(String::from_utf8(out.stdout)
        .unwrap()
        .contains("last-before-crash,"));
}

fn kill_9_under_concurrent_load_keeps_every_acknowledged_beacon(db: &TestDb) {
    let mut server = Server::start(db, &["--admin-token", TOKEN]);
    // Bounded: 4 clients, at most 2,000 posts each, each stopping at its first failure.
    let load = Load::start(
        std::slice::from_ref(&server.url),
        4,
        2000,
        |t, i| format!("t{t}-{i}"),
        None,
    );
    // Kill while the clients are still sending.
    load.wait_for(300);
    server.kill9();
    let out = load.finish();
    assert!(
        out.acked.len() >= 300,
        "only {} acknowledged",
        out.acked.len()
    );

    let server = Server::start(db, &["--admin-token", TOKEN]);
    assert_none_lost(&out.acked, &stored_identities(&server));
}

both_backends!(
    kill_9_after_2xx_loses_nothing,
    kill_9_under_concurrent_load_keeps_every_acknowledged_beacon,
);
