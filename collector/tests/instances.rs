//! Several collector instances on one PostgreSQL, and PostgreSQL going away under load.

#[macro_use]
mod common;
use common::*;
use std::time::Duration;

/// Two instances take the same event_ids at the same time: each is stored once.
#[test]
fn two_instances_store_each_concurrent_delivery_once() {
    let Some(db) = TestDb::postgres() else { return };
    let a = Server::start(&db, &["--admin-token", TOKEN]);
    let b = Server::start(&db, &["--admin-token", TOKEN]);
    // Clients 2k (to A) and 2k+1 (to B) send the same 300 events: 6 clients, 1,800 posts.
    let out = Load::start(
        &[a.url.clone(), b.url.clone()],
        6,
        300,
        |t, i| format!("pair{}-{i}", t / 2),
        Some(Duration::from_secs(30)), // a 503 is retried, as the SDK would
    )
    .join();
    assert!(out.failures.is_empty(), "{:?}", out.failures);
    assert_eq!(out.acked.len(), 1800);
    let distinct = 3 * 300;
    assert_eq!(db.scalar("SELECT count(*) FROM events"), distinct);
    let s = a
        .get_admin(&format!("/v1/months/{}/summary", a.month()))
        .json();
    assert_eq!(s["unique_identities"], distinct, "{s}");
    assert_eq!(s["connects"], distinct, "{s}");
    // Both instances read the same truth.
    assert_eq!(stored_identities(&a), stored_identities(&b));
}

/// One of two instances is killed with -9 under load: every 2xx from either is stored.
#[test]
fn kill_9_of_one_instance_under_load_loses_no_acknowledged_beacon() {
    let Some(db) = TestDb::postgres() else { return };
    let mut a = Server::start(&db, &["--admin-token", TOKEN]);
    let b = Server::start(&db, &["--admin-token", TOKEN]);
    let load = Load::start(
        &[a.url.clone(), b.url.clone()],
        8,
        1500,
        |t, i| format!("c{t}-{i}"),
        Some(Duration::from_secs(30)),
    );
    load.wait_for(600);
    a.kill9();
    // B keeps taking beacons after A is gone.
    let before = load.acked_so_far();
    load.wait_for(before + 200);
    let out = load.finish();
    println!("acked {} ({before} when A was killed)", out.acked.len());
    assert!(out.acked.len() >= before + 200, "{}", out.acked.len());
    assert_none_lost(&out.acked, &stored_identities(&b));
}

/// PostgreSQL crashes (immediate stop) and comes back under load: clients get 503 with
/// Retry-After meanwhile, never a 500; no 2xx'd beacon is lost; the collector recovers
/// without a restart.
#[test]
fn postgres_restart_under_load_loses_nothing_and_recovers() {
    let Some(mut cluster) = PgCluster::start() else {
        return;
    };
    let db = TestDb::postgres_on(&cluster.admin_url);
    let mut server = Server::start(&db, &["--admin-token", TOKEN, "--db-wait-ms", "500"]);
    let load = Load::start(
        std::slice::from_ref(&server.url),
        4,
        1500,
        |t, i| format!("r{t}-{i}"),
        Some(Duration::from_secs(30)),
    );
    load.wait_for(400);
    cluster.stop("immediate");
    let acked_at_stop = load.acked_so_far();
    std::thread::sleep(Duration::from_millis(1500));
    // While PostgreSQL is down: a clear 503 with Retry-After, and the process is up.
    let down = server.post(&beacon("while-down", "while-down").to_string());
    assert_eq!(down.status, 503, "{}", down.body);
    assert_eq!(down.json()["code"], "storage_unavailable");
    assert!(down.header("retry-after").is_some());
    // The process is up and says its storage is not.
    assert!(server.is_running(), "{}", server.logs());
    let health = send(server.request("GET", "/healthz"), None);
    assert_eq!(health.status, 503, "{}", health.body);
    assert_eq!(health.json()["code"], "storage_unavailable");
    cluster.restart();
    load.wait_for(acked_at_stop + 400);
    server.assert_alive();
    let out = load.finish();
    println!(
        "acked {} ({} before the stop), 503s {}",
        out.acked.len(),
        acked_at_stop,
        out.unavailable
    );
    assert!(out.failures.is_empty(), "{:?}", out.failures);
    assert!(out.unavailable > 0, "no client saw the outage");
    assert!(
        out.acked.len() >= acked_at_stop + 400,
        "{}",
        out.acked.len()
    );
    // Same process, recovered: the retried beacon now goes in.
    assert!(server.is_running());
    assert_eq!(
        server
            .post(&beacon("while-down", "while-down").to_string())
            .status,
        200
    );
    let stored = stored_identities(&server);
    assert_none_lost(&out.acked, &stored);
    assert!(stored.contains("while-down"));
    assert_eq!(
        db.scalar("SELECT count(*) FROM events"),
        stored.len() as i64
    );
}
