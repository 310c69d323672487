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
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex};

    let mut server = Server::start(db, &["--admin-token", TOKEN]);
    let acked = Arc::new(Mutex::new(Vec::<String>::new()));
    let count = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let url = format!("{}/v1/beacons", server.url);
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let (acked, count, stop, url) =
                (acked.clone(), count.clone(), stop.clone(), url.clone());
            std::thread::spawn(move || {
                let agent = ureq::agent();
                // Bounded: at most 2,000 posts per thread, stopping at the first failure.
                for i in 0..2000 {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let id = format!("t{t}-{i}");
                    match agent.post(&url).send_string(&beacon(&id, &id).to_string()) {
                        Ok(r) if r.status() == 200 => {
                            acked.lock().unwrap().push(id);
                            count.fetch_add(1, Ordering::SeqCst);
                        }
                        _ => break,
                    }
                }
            })
        })
        .collect();
    // Kill while the clients are still sending.
    while count.load(Ordering::SeqCst) < 300 && !threads.iter().all(|t| t.is_finished()) {
        std::thread::yield_now();
    }
    server.kill9();
    stop.store(true, Ordering::SeqCst);
    for t in threads {
        t.join().unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    assert!(acked.len() >= 300, "only {} acknowledged", acked.len());

    let server = Server::start(db, &["--admin-token", TOKEN]);
    let month = server.month();
    let body = server
        .get_admin(&format!("/v1/months/{month}/identities?format=ndjson"))
        .body;
    let stored: std::collections::HashSet<String> = body
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["identity"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    let lost: Vec<&String> = acked.iter().filter(|id| !stored.contains(*id)).collect();
    assert!(
        lost.is_empty(),
        "{} acknowledged beacons lost, e.g. {:?}",
        lost.len(),
        &lost[..lost.len().min(5)]
    );
}

both_backends!(
    kill_9_after_2xx_loses_nothing,
    kill_9_under_concurrent_load_keeps_every_acknowledged_beacon,
);
