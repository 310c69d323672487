//! Per-address limits on loopback: the token bucket answers 429 + Retry-After (exposed to
//! browsers), X-Forwarded-For counts only from a trusted proxy, and the cap on distinct
//! identities per minute bounds how many invented users one address can add.

#[macro_use]
mod common;
use common::*;
use serde_json::json;

const ORIGIN: &str = "https://app.example";

fn post_as(server: &Server, body: &str, forwarded: Option<&str>) -> Resp {
    let mut req = server
        .request("POST", "/v1/beacons")
        .set("Content-Type", "text/plain;charset=UTF-8")
        .set("Origin", ORIGIN);
    if let Some(f) = forwarded {
        req = req.set("X-Forwarded-For", f);
    }
    send(req, Some(body))
}

#[test]
fn token_bucket_per_address_with_retry_after() {
    let db = TestDb::sqlite();
    let server = Server::start(
        &db,
        &[
            "--admin-token",
            TOKEN,
            "--allow-origin",
            ORIGIN,
            "--rate-limit",
            "5",
            "--rate-burst",
            "10",
            "--identities-per-minute",
            "0",
            "--trusted-proxy",
            "127.0.0.1",
        ],
    );
    let (mut ok, mut limited) = (0, 0);
    let started = std::time::Instant::now();
    for i in 0..30 {
        let r = post_as(
            &server,
            &beacon(&format!("u{i}"), &format!("e{i}")).to_string(),
            None,
        );
        match r.status {
            200 => ok += 1,
            429 => {
                limited += 1;
                assert_eq!(r.json()["code"], "rate_limited");
                let wait: u64 = r.header("retry-after").unwrap().parse().unwrap();
                assert!((1..=1).contains(&wait), "{wait}");
                let exposed = r.header("access-control-expose-headers").unwrap_or("");
                assert!(
                    exposed.to_ascii_lowercase().contains("retry-after"),
                    "{exposed}"
                );
            }
            s => panic!("{s}: {}", r.body),
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    println!(
        "rate limit 5/s burst 10: 30 back-to-back posts in {elapsed:.2} s -> {ok} stored, \
         {limited} answered 429"
    );
    // The burst, plus what refilled while the posts ran (measured, so a slow machine is
    // not a failure), and no more.
    let refilled = (5.0 * elapsed).ceil() as usize;
    assert!(
        ok >= 10 && ok <= 10 + refilled + 1,
        "{ok} in {elapsed:.2} s"
    );
    assert!(limited > 0, "no 429 in {elapsed:.2} s");
    // Another client behind the trusted proxy has its own bucket.
    let r = post_as(
        &server,
        &beacon("other", "o1").to_string(),
        Some("198.51.100.7"),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    // After the wait, the first client is served again.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    assert_eq!(
        post_as(&server, &beacon("again", "a1").to_string(), None).status,
        200
    );
    let stats = server.get_admin("/v1/stats").json();
    assert_eq!(stats["refused"]["rate_limited"], limited);
}

#[test]
fn forwarded_for_from_an_untrusted_peer_is_ignored() {
    let db = TestDb::sqlite();
    let server = Server::start(&db, &["--rate-limit", "1", "--rate-burst", "2"]);
    let mut statuses = Vec::new();
    let started = std::time::Instant::now();
    for i in 0..8 {
        // Each request claims another client address: no use, the peer is not trusted.
        let r = post_as(
            &server,
            &beacon(&format!("s{i}"), &format!("s{i}")).to_string(),
            Some(&format!("203.0.113.{i}")),
        );
        statuses.push(r.status);
    }
    let elapsed = started.elapsed().as_secs_f64();
    // One bucket for all: the burst of 2, plus 1 a second while the posts ran. Eight
    // addresses with their own buckets would all have been served.
    let ok = statuses.iter().filter(|&&s| s == 200).count();
    assert_eq!(statuses[..2], [200, 200]);
    assert!(
        statuses.iter().all(|&s| s == 200 || s == 429),
        "{statuses:?}"
    );
    assert!(
        ok <= 2 + elapsed.ceil() as usize && ok < statuses.len(),
        "{statuses:?} in {elapsed:.2} s"
    );
}

#[test]
fn invented_identities_per_address_are_capped() {
    let db = TestDb::sqlite();
    let server = Server::start(
        &db,
        &[
            "--admin-token",
            TOKEN,
            "--identities-per-minute",
            "50",
            "--rate-limit",
            "0",
        ],
    );
    let started = std::time::Instant::now();
    let (mut stored, mut capped) = (0, 0);
    for b in 0..20 {
        let batch: Vec<_> = (0..10)
            .map(|i| beacon(&format!("fake-{b}-{i}"), &format!("f{b}-{i}")))
            .collect();
        let r = post_as(&server, &json!(batch).to_string(), None);
        match r.status {
            200 => stored += 10,
            429 => {
                capped += 1;
                assert_eq!(r.json()["code"], "too_many_identities");
                let wait: u64 = r.header("retry-after").unwrap().parse().unwrap();
                assert!((1..=60).contains(&wait), "{wait}");
            }
            s => panic!("{s}: {}", r.body),
        }
    }
    println!(
        "identity cap 50/min: 200 invented identities in {:.2} s -> {stored} stored, {capped} \
         batches refused",
        started.elapsed().as_secs_f64()
    );
    assert_eq!(stored, 50);
    // Identities already seen this minute still connect.
    let r = post_as(&server, &beacon("fake-0-0", "again").to_string(), None);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(stored_identities(&server).len(), 50);
    assert_eq!(
        server.get_admin("/v1/stats").json()["refused"]["identity_capped"],
        capped
    );
}
