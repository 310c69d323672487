//! Slow and idle peers on loopback: partial headers, partial bodies, idle keep-alive and
//! stalled readers are closed in bounded time; past the connection cap new peers wait and
//! are served; SIGTERM with a half-sent request exits within the shutdown deadline.

#[macro_use]
mod common;
use common::*;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// Reads until the peer closes (or `limit` passes); what was read and when it closed.
fn read_until_closed(s: &mut TcpStream, limit: Duration) -> (String, Option<Duration>) {
    let started = Instant::now();
    s.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while started.elapsed() < limit {
        match s.read(&mut buf) {
            Ok(0) => {
                return (
                    String::from_utf8_lossy(&got).into(),
                    Some(started.elapsed()),
                )
            }
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {}
            Err(_) => {
                return (
                    String::from_utf8_lossy(&got).into(),
                    Some(started.elapsed()),
                )
            }
        }
    }
    (String::from_utf8_lossy(&got).into(), None)
}

fn connect(server: &Server) -> TcpStream {
    TcpStream::connect(server.addr()).unwrap()
}

#[test]
fn slow_and_idle_peers_are_closed() {
    let db = TestDb::sqlite();
    let server = Server::start(
        &db,
        &[
            "--header-timeout",
            "1",
            "--body-timeout",
            "1",
            "--max-connections",
            "200",
        ],
    );
    const EACH: usize = 30;
    let started = Instant::now();
    let mut partial_headers = Vec::new();
    let mut partial_bodies = Vec::new();
    let mut idle = Vec::new();
    for _ in 0..EACH {
        let mut s = connect(&server);
        s.write_all(b"POST /v1/beacons HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
            .unwrap();
        partial_headers.push(s);
        let mut s = connect(&server);
        s.write_all(
            b"POST /v1/beacons HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 400\r\n\r\n{\"v\":1,",
        )
        .unwrap();
        partial_bodies.push(s);
        let mut s = connect(&server);
        s.write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            .unwrap();
        idle.push(s);
    }
    let limit = Duration::from_secs(8);
    let mut worst = Duration::ZERO;
    for (kind, conns) in [
        ("partial headers", &mut partial_headers),
        ("partial body", &mut partial_bodies),
        ("idle keep-alive", &mut idle),
    ] {
        for s in conns.iter_mut() {
            let (got, closed) = read_until_closed(s, limit);
            let closed = closed.unwrap_or_else(|| panic!("{kind}: still open after {limit:?}"));
            worst = worst.max(started.elapsed());
            match kind {
                "partial body" => assert!(
                    got.starts_with("HTTP/1.1 408") && got.contains("\"code\":\"body_timeout\""),
                    "{got}"
                ),
                "idle keep-alive" => assert!(got.starts_with("HTTP/1.1 200"), "{got}"),
                _ => {}
            }
            let _ = closed;
        }
    }
    println!(
        "slowloris: {} connections ({EACH} partial headers, {EACH} partial bodies, {EACH} idle \
         keep-alive) all closed within {:.2} s of opening (timeouts 1 s)",
        3 * EACH,
        worst.as_secs_f64()
    );
    let r = send(server.request("GET", "/healthz"), None);
    assert_eq!(r.status, 200);
}

#[test]
fn over_the_cap_new_peers_wait_and_are_served() {
    let db = TestDb::sqlite();
    let server = Server::start(&db, &["--header-timeout", "1", "--max-connections", "4"]);
    // Four silent peers take every slot (the readiness probe's connection is closed).
    std::thread::sleep(Duration::from_millis(200));
    let silent: Vec<TcpStream> = (0..4).map(|_| connect(&server)).collect();
    std::thread::sleep(Duration::from_millis(100));
    let started = Instant::now();
    let agent = ureq::AgentBuilder::new()
        .timeout(Duration::from_secs(10))
        .build();
    let r = agent
        .get(&format!("{}/healthz", server.url))
        .call()
        .expect("served once a slot frees");
    let waited = started.elapsed();
    assert_eq!(r.status(), 200);
    println!(
        "connection cap 4: a fifth peer was served after {:.2} s (the silent ones timed out)",
        waited.as_secs_f64()
    );
    // It did wait for a slot: the cap held.
    assert!(waited >= Duration::from_millis(500), "{waited:?}");
    drop(silent);
}

#[test]
fn sigterm_with_a_half_sent_request_exits_within_the_deadline() {
    let db = TestDb::sqlite();
    let mut server = Server::start(
        &db,
        &[
            "--header-timeout",
            "60",
            "--body-timeout",
            "60",
            "--shutdown-timeout",
            "1",
        ],
    );
    let mut headers = connect(&server);
    headers
        .write_all(b"POST /v1/beacons HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        .unwrap();
    let mut body = connect(&server);
    body.write_all(b"POST /v1/beacons HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 400\r\n\r\n{")
        .unwrap();
    std::thread::sleep(Duration::from_millis(200));
    let (took, status) = server
        .terminate(Duration::from_secs(6))
        .unwrap_or_else(|| panic!("still running 6 s after SIGTERM\n{}", server.logs()));
    println!(
        "SIGTERM with two half-sent requests: exited in {:.2} s (deadline 1 s)",
        took.as_secs_f64()
    );
    assert!(status.success(), "{status}");
    assert!(took < Duration::from_secs(3), "{took:?}");
    assert!(server.logs().contains("shutdown deadline passed"));
}

#[test]
fn a_stalled_export_reader_frees_its_slot() {
    let db = TestDb::sqlite();
    // Create the schema, then 60,000 long identities straight into the file (~15 MB of
    // export: more than the socket buffers hold).
    drop(Server::start(&db, &[]));
    let month = "2026-11";
    db.execute(&format!(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 60000)
         INSERT INTO identities (month, identity, first_seen, last_seen, connects)
         SELECT '{month}', printf('%0200d', i), '2026-11-01T00:00:00.000Z',
                '2026-11-01T00:00:00.000Z', 1 FROM n"
    ));
    let server = Server::start(
        &db,
        &[
            "--admin-token",
            TOKEN,
            "--max-exports",
            "1",
            // Long enough that the held slot is seen before the timeout frees it.
            "--write-timeout",
            "3",
        ],
    );
    let mut stalled = connect(&server);
    write!(
        stalled,
        "GET /v1/months/{month}/identities?format=ndjson HTTP/1.1\r\nHost: 127.0.0.1\r\n\
         Authorization: Bearer {TOKEN}\r\n\r\n"
    )
    .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    // The one export slot is held by the reader that does not read.
    let busy = server.get_admin(&format!("/v1/months/{month}/summary"));
    assert_eq!(busy.status, 200);
    let r = server.get_admin(&format!("/v1/months/{month}/identities?format=ndjson"));
    assert_eq!(r.status, 503, "the slot should be held: {}", r.body);
    let started = Instant::now();
    loop {
        let r = server.get_admin(&format!("/v1/months/{month}/identities?format=ndjson"));
        if r.status == 200 {
            assert_eq!(r.body.lines().count(), 60_000);
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "slot never freed"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    println!(
        "stalled export reader: slot freed {:.2} s after it was seen held (write timeout 3 s)",
        started.elapsed().as_secs_f64()
    );
    drop(stalled);
}
