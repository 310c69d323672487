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
fn one_address_cannot_hold_every_connection() {
    let db = TestDb::sqlite();
    let server = Server::start(
        &db,
        &[
            "--header-timeout",
            "30",
            "--max-connections-per-address",
            "3",
        ],
    );
    // Silent connections until one is answered at once (the test's own HTTP client may
    // keep one open too): at most three are held.
    let mut silent = Vec::new();
    let (answer, closed) = loop {
        assert!(silent.len() <= 3, "{} held", silent.len());
        let mut c = connect(&server);
        c.set_read_timeout(Some(Duration::from_millis(300)))
            .unwrap();
        let mut first = [0u8; 1];
        match c.read(&mut first) {
            Ok(1) => {
                let (rest, closed) = read_until_closed(&mut c, Duration::from_secs(5));
                break (format!("{}{rest}", first[0] as char), closed);
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                silent.push(c)
            }
            other => panic!("{other:?}"),
        }
    };
    assert!(silent.len() >= 2, "refused with {} held", silent.len());
    assert!(closed.is_some(), "not closed: {answer:?}");
    assert!(answer.starts_with("HTTP/1.1 503 "), "{answer:?}");
    assert!(answer.contains("retry-after: "), "{answer:?}");
    let body: serde_json::Value =
        serde_json::from_str(answer.split("\r\n\r\n").nth(1).unwrap()).unwrap();
    assert_eq!(body["code"], "too_many_connections");
    // One closes: the address is served again.
    drop(silent.pop());
    std::thread::sleep(Duration::from_millis(200));
    let r = ureq::get(&format!("{}/healthz", server.url))
        .timeout(Duration::from_secs(5))
        .call()
        .expect("served under the cap");
    assert_eq!(r.status(), 200);
    drop(silent);
    let mut server = server;
    server.assert_alive();
}

/// Kills and reaps a child on drop, even when the test fails.
struct Reaped(std::process::Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// With the process at its file limit, accepting fails: that is logged, the collector
/// keeps running, and serves again once peers leave.
#[test]
fn out_of_file_descriptors_is_logged_and_survived() {
    use std::io::BufRead;
    let db = TestDb::sqlite();
    let log = db.dir.path().join("fd-limit.log");
    let mut child = std::process::Command::new("sh")
        .args(["-c", "ulimit -n 48 && exec \"$0\" \"$@\""])
        .arg(BIN)
        .args(["serve", "--listen", "127.0.0.1:0", "--db", &db.arg])
        .args([
            "--header-timeout",
            "30",
            "--max-connections-per-address",
            "0",
        ])
        .env("MAU_COLLECTOR_LOG", "info")
        .stdout(std::process::Stdio::piped())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let mut child = Reaped(child);
    let addr = line
        .trim()
        .strip_prefix("listening on http://")
        .unwrap_or_else(|| panic!("{line:?}"))
        .to_owned();
    // 80 silent peers against 48 descriptors: the kernel completes the handshakes, the
    // collector cannot accept them all.
    let peers: Vec<TcpStream> = (0..80)
        .map(|_| TcpStream::connect(&addr).unwrap())
        .collect();
    let deadline = Instant::now() + Duration::from_secs(10);
    let logged = loop {
        let text = std::fs::read_to_string(&log).unwrap();
        if text.contains("accept failed") || Instant::now() > deadline {
            break text;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(logged.contains("accept failed"), "{logged}");
    assert!(child.0.try_wait().unwrap().is_none(), "exited\n{logged}");
    drop(peers);
    let started = Instant::now();
    let status = loop {
        let r = ureq::get(&format!("http://{addr}/healthz"))
            .timeout(Duration::from_secs(5))
            .call();
        match r {
            Ok(r) => break r.status(),
            Err(_) if started.elapsed() < Duration::from_secs(20) => {
                std::thread::sleep(Duration::from_millis(200))
            }
            Err(e) => panic!("not served after the peers left: {e}"),
        }
    };
    assert_eq!(status, 200);
    println!(
        "file limit 48, 80 peers: accept failures logged; served {:.2} s after they left",
        started.elapsed().as_secs_f64()
    );
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

/// A collector with one export slot and `extra` flags over a database holding 60,000 long
/// identities in one month (~15 MB of export: more than the socket buffers hold); and
/// that month.
fn big_export_server(extra: &[&str]) -> (Server, TestDb, &'static str) {
    let db = TestDb::sqlite();
    // Create the schema, then write straight into the file.
    drop(Server::start(&db, &[]));
    let month = "2026-11";
    db.execute(&format!(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 60000)
         INSERT INTO identities (month, identity, first_seen, last_seen, connects)
         SELECT '{month}', printf('%0200d', i), '2026-11-01T00:00:00.000Z',
                '2026-11-01T00:00:00.000Z', 1 FROM n"
    ));
    let mut args = vec!["--admin-token", TOKEN, "--max-exports", "1"];
    args.extend_from_slice(extra);
    (Server::start(&db, &args), db, month)
}

/// Starts an export on a raw connection, then, after it has begun, checks that it holds
/// the one export slot; how long from then until an export of `probe` (a month, and its
/// count of identities) is served.
fn slot_freed_after(
    server: &Server,
    month: &str,
    export: &mut TcpStream,
    probe: (&str, usize),
) -> Duration {
    write!(
        export,
        "GET /v1/months/{month}/identities?format=ndjson HTTP/1.1\r\nHost: 127.0.0.1\r\n\
         Authorization: Bearer {TOKEN}\r\n\r\n"
    )
    .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let busy = server.get_admin(&format!("/v1/months/{month}/summary"));
    assert_eq!(busy.status, 200);
    let r = server.get_admin(&format!("/v1/months/{month}/identities?format=ndjson"));
    assert_eq!(r.status, 503, "the slot should be held: {}", r.body);
    let started = Instant::now();
    loop {
        let r = server.get_admin(&format!("/v1/months/{}/identities?format=ndjson", probe.0));
        if r.status == 200 {
            assert_eq!(r.body.lines().count(), probe.1);
            return started.elapsed();
        }
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "slot never freed"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_stalled_export_reader_frees_its_slot() {
    // A write timeout long enough that the held slot is seen before it frees it.
    let (server, _db, month) = big_export_server(&["--write-timeout", "3"]);
    let mut stalled = connect(&server);
    let freed = slot_freed_after(&server, month, &mut stalled, (month, 60_000));
    println!(
        "stalled export reader: slot freed {:.2} s after it was seen held (write timeout 3 s)",
        freed.as_secs_f64()
    );
    drop(stalled);
}

/// A reader that keeps taking a little (so no write stays blocked for the write timeout)
/// is cut at the export deadline.
#[test]
fn a_slow_export_reader_is_cut_at_the_export_deadline() {
    let (server, _db, month) =
        big_export_server(&["--write-timeout", "60", "--export-timeout", "3"]);
    let mut slow = connect(&server);
    let mut reader = slow.try_clone().unwrap();
    let started = Instant::now();
    let freed_seen = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let drain = freed_seen.clone();
    let trickle = std::thread::spawn(move || {
        reader
            .set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        let mut got = 0usize;
        let mut buf = [0u8; 65536];
        // At most 30 s: the deadline is 3 s.
        while started.elapsed() < Duration::from_secs(30) {
            // A trickle until the slot is seen free; then take what the kernel still
            // holds, to reach the end the server made.
            let want = if drain.load(std::sync::atomic::Ordering::SeqCst) {
                buf.len()
            } else {
                256
            };
            match reader.read(&mut buf[..want]) {
                Ok(0) => return (got, Some(started.elapsed())),
                Ok(n) => got += n,
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                Err(_) => return (got, Some(started.elapsed())),
            }
            if want < buf.len() {
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        (got, None)
    });
    // The probe is an empty month: the whole export could outlast the short deadline on
    // a busy machine.
    let freed = slot_freed_after(&server, month, &mut slow, ("2026-10", 0));
    freed_seen.store(true, std::sync::atomic::Ordering::SeqCst);
    let (got, closed) = trickle.join().unwrap();
    let closed = closed.expect("the slow reader's connection was never closed");
    println!(
        "slow export reader ({got} bytes taken): cut {:.2} s after its request, slot free \
         {:.2} s after it was seen held (export timeout 3 s)",
        closed.as_secs_f64(),
        freed.as_secs_f64()
    );
    assert!(got < 60_000 * 200, "the export finished: {got} bytes");
    assert!(closed >= Duration::from_secs(3), "cut early: {closed:?}");
    assert!(
        freed < Duration::from_secs(10),
        "slot freed late: {freed:?}"
    );
    let mut server = server;
    server.assert_alive();
}
