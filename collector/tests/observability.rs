//! Running the collector in production: /metrics read by Prometheus' own checker and moving
//! with traffic, JSON logs with one access line per request and no secret or identity,
//! liveness and readiness, the admin door (short tokens, failures logged and limited), and
//! the warning about an untrusted proxy.

#[macro_use]
mod common;
use common::*;
use serde_json::Value;
use std::process::{Command, Stdio};

const METRICS_TOKEN: &str = "test-metrics-token-0123";
const IDENTITY: &str = "olga.metrics@example.com";

fn start(db: &TestDb, extra: &[&str]) -> Server {
    let mut args = vec![
        "--admin-token",
        TOKEN,
        "--metrics-token",
        METRICS_TOKEN,
        "--log-format",
        "json",
        "--log",
        "info",
    ];
    args.extend_from_slice(extra);
    Server::start(db, &args)
}

fn scrape(server: &Server) -> String {
    let r = send(
        server
            .request("GET", "/metrics")
            .set("Authorization", &format!("Bearer {METRICS_TOKEN}")),
        None,
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        r.header("content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    r.body
}

/// The value of the sample whose name and labels start as `prefix` (labels in the
/// encoder's order), or 0 when absent.
fn sample(text: &str, prefix: &str) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(prefix))
        .filter_map(|l| l.rsplit_once(' ')?.1.parse::<f64>().ok())
        .sum()
}

/// `promtool check metrics` (Prometheus' own linter and parser) on a scrape.
fn promtool(text: &str) {
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool (Debian package `prometheus`; scripts/setup.sh installs it)");
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "promtool: {said}\n{text}");
    assert!(said.trim().is_empty(), "promtool found problems: {said}");
}

/// Every stderr line parsed as one JSON object.
fn json_logs(server: &Server) -> Vec<Value> {
    server
        .logs()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: not JSON: {l}")))
        .collect()
}

fn metrics_move_with_traffic_and_parse(db: &TestDb) {
    let server = start(db, &[]);
    let before = scrape(&server);
    promtool(&before);
    assert!(
        before.contains(&format!(
            "mau_collector_build_info{{version=\"{}\"}} 1",
            env!("CARGO_PKG_VERSION")
        )),
        "{before}"
    );
    let b = beacon(IDENTITY, "metrics-1").to_string();
    assert_eq!(server.post(&b).status, 200);
    assert_eq!(server.post(&b).status, 200, "a retry is answered alike");
    let mut bad = beacon(IDENTITY, "metrics-2");
    bad["identity"] = Value::String(String::new());
    assert_eq!(server.post(&bad.to_string()).status, 400);
    assert_eq!(
        server
            .get_admin(&format!("/v1/months/{}/summary", server.month()))
            .status,
        200
    );
    let after = scrape(&server);
    promtool(&after);
    let moved = |prefix: &str| sample(&after, prefix) - sample(&before, prefix);
    assert_eq!(
        moved("mau_collector_beacons_total{result=\"accepted\"}"),
        1.0
    );
    assert_eq!(
        moved("mau_collector_beacons_total{result=\"duplicate\"}"),
        1.0
    );
    assert_eq!(
        moved("mau_collector_beacon_requests_refused_total{code=\"bad_identity\"}"),
        1.0,
        "{after}"
    );
    assert_eq!(
        moved(
            "mau_collector_http_requests_total{method=\"POST\",route=\"/v1/beacons\",status=\"200\"}"
        ),
        2.0
    );
    assert_eq!(
        moved(
            "mau_collector_http_requests_total{method=\"GET\",route=\"/v1/months/{month}/summary\",status=\"200\"}"
        ),
        1.0,
        "route templates, not raw paths"
    );
    assert!(moved("mau_collector_group_commit_writes_count") >= 2.0);
    assert!(
        moved("mau_collector_http_request_duration_seconds_count{route=\"/v1/beacons\"}") >= 3.0
    );
    assert!(sample(&after, "mau_collector_open_connections") >= 1.0);
    if db.backend == Backend::Postgres {
        assert!(sample(&after, "mau_collector_db_pool_connections{state=\"max\"}") >= 1.0);
    }
    for secret in [IDENTITY, TOKEN, METRICS_TOKEN, "metrics-1"] {
        assert!(!after.contains(secret), "{secret} in a metric");
    }
}

fn json_logs_hold_one_access_line_per_request_and_no_secret(db: &TestDb) {
    let server = start(db, &[]);
    let b = beacon(IDENTITY, "logs-1").to_string();
    assert_eq!(server.post(&b).status, 200);
    let month = server.month();
    let wrong = send(
        server
            .request("GET", &format!("/v1/months/{month}/identities"))
            .set("Authorization", "Bearer not-the-token-but-long"),
        None,
    );
    assert_eq!(wrong.status, 401);
    let lines = json_logs(&server);
    let access: Vec<&Value> = lines
        .iter()
        .filter(|l| l["target"] == "mau_collector::access")
        .collect();
    let beacon_line = access
        .iter()
        .find(|l| l["route"] == "/v1/beacons")
        .expect("an access line for the beacon");
    assert_eq!(beacon_line["method"], "POST");
    assert_eq!(beacon_line["status"], 200);
    assert_eq!(beacon_line["client"], "127.0.0.1");
    assert!(beacon_line["duration_ms"].as_f64().is_some());
    assert!(beacon_line["bytes"].as_u64().is_some_and(|n| n > 0));
    assert!(access
        .iter()
        .any(|l| l["route"] == "/v1/months/{month}/identities" && l["status"] == 401));
    let failed = lines
        .iter()
        .find(|l| l["message"] == "admin authentication failed")
        .expect("the failed admin attempt is logged");
    assert_eq!(failed["client"], "127.0.0.1");
    assert_eq!(failed["route"], "/v1/months/{month}/identities");
    let all = server.logs();
    for secret in [
        IDENTITY,
        TOKEN,
        METRICS_TOKEN,
        "not-the-token-but-long",
        "logs-1",
    ] {
        assert!(!all.contains(secret), "{secret} in the logs");
    }
}

fn liveness_and_readiness(db: &TestDb) {
    let server = start(db, &[]);
    for path in ["/livez", "/readyz", "/healthz"] {
        let r = send(server.request("GET", path), None);
        assert_eq!(r.status, 200, "{path}: {}", r.body);
        assert_eq!(r.json()["ok"], true);
    }
    assert_eq!(
        send(server.request("GET", "/healthz"), None).json()["version"],
        env!("CARGO_PKG_VERSION")
    );
    if db.backend == Backend::Sqlite {
        // The file deleted under the collector: not ready, but alive.
        std::fs::remove_file(&server.db).unwrap();
        let r = send(server.request("GET", "/readyz"), None);
        assert_eq!(r.status, 503, "{}", r.body);
        assert_eq!(r.json()["code"], "not_ready");
        assert!(!r.body.contains(&server.db), "no path in the answer");
        assert_eq!(send(server.request("GET", "/livez"), None).status, 200);
    } else {
        // A newer schema applied by another instance: not ready.
        db.execute("INSERT INTO schema_version (version, name) VALUES (999, 'from the future')");
        let r = send(server.request("GET", "/readyz"), None);
        assert_eq!(r.status, 503, "{}", r.body);
        assert_eq!(r.json()["code"], "not_ready");
        db.execute("DELETE FROM schema_version WHERE version = 999");
        assert_eq!(send(server.request("GET", "/readyz"), None).status, 200);
    }
}

both_backends!(
    metrics_move_with_traffic_and_parse,
    json_logs_hold_one_access_line_per_request_and_no_secret,
    liveness_and_readiness,
);

#[test]
fn metrics_are_off_unless_asked_for_and_a_listener_of_their_own_needs_no_token() {
    let db = TestDb::sqlite();
    let off = Server::start(&db, &["--admin-token", TOKEN]);
    let r = send(off.request("GET", "/metrics"), None);
    assert_eq!(r.status, 403);
    assert_eq!(r.json()["code"], "metrics_disabled");
    assert!(off.logs().contains("metrics off"), "{}", off.logs());

    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let listen = format!("127.0.0.1:{port}");
    let on = Server::start(&db, &["--metrics-listen", &listen]);
    let r = send(ureq::get(&format!("http://{listen}/metrics")), None);
    assert_eq!(r.status, 200);
    promtool(&r.body);
    assert!(r.body.contains("mau_collector_build_info"));
    // The main listener still keeps them behind a token it does not have.
    assert_eq!(send(on.request("GET", "/metrics"), None).status, 403);

    let wrong = Server::start(&db, &["--metrics-token", METRICS_TOKEN]);
    let r = send(
        wrong
            .request("GET", "/metrics")
            .set("Authorization", "Bearer nope-nope-nope-nope"),
        None,
    );
    assert_eq!(r.status, 401);
}

#[test]
fn short_secrets_stop_the_collector_without_being_echoed() {
    let db = TestDb::sqlite();
    for flag in ["--admin-token", "--ingest-token", "--metrics-token"] {
        let (mut child, log, line) = spawn_serve(&db, &[flag, "s3cr3t"]);
        let status = child.wait().unwrap();
        assert!(!status.success(), "{flag}: started with a 6-byte secret");
        assert!(line.is_empty(), "{line}");
        let said = std::fs::read_to_string(log).unwrap();
        assert!(
            said.contains(flag) && said.contains("at least 16"),
            "{said}"
        );
        assert!(!said.contains("s3cr3t"), "the secret was echoed: {said}");
    }
}

#[test]
fn failed_admin_attempts_are_limited_per_address() {
    let db = TestDb::sqlite();
    let server = start(&db, &[]);
    let guess = |token: &str| {
        send(
            server
                .request("GET", "/v1/months")
                .set("Authorization", &format!("Bearer {token}")),
            None,
        )
    };
    for i in 0..5 {
        let r = guess(&format!("wrong-guess-number-{i}"));
        assert_eq!(r.status, 401, "{}", r.body);
    }
    // Locked: even the right token waits, so guessing gains nothing.
    let r = guess(TOKEN);
    assert_eq!(r.status, 429, "{}", r.body);
    assert_eq!(r.json()["code"], "too_many_failures");
    let wait: u64 = r.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=60).contains(&wait), "{wait}");
    // Beacons are not behind the door.
    assert_eq!(server.post(&beacon("x", "door-1").to_string()).status, 200);
    let m = scrape(&server);
    assert!(
        sample(
            &m,
            "mau_collector_admin_auth_failures_total{reason=\"bad_token\"}"
        ) >= 5.0
    );
    assert!(
        sample(
            &m,
            "mau_collector_admin_auth_failures_total{reason=\"locked\"}"
        ) >= 1.0
    );
    let logs = json_logs(&server);
    let failures = logs
        .iter()
        .filter(|l| l["message"] == "admin authentication failed")
        .count();
    assert_eq!(failures, 5);
    assert!(!server.logs().contains("wrong-guess-number"));
}

#[test]
fn forwarded_for_from_an_untrusted_peer_is_warned_about_once() {
    let db = TestDb::sqlite();
    let server = start(&db, &[]);
    for i in 0..3 {
        let r = send(
            server
                .request("POST", "/v1/beacons")
                .set("X-Forwarded-For", "203.0.113.7"),
            Some(&beacon("p", &format!("xff-{i}")).to_string()),
        );
        assert_eq!(r.status, 200);
    }
    let warned: Vec<Value> = json_logs(&server)
        .into_iter()
        .filter(|l| {
            l["message"]
                .as_str()
                .is_some_and(|m| m.contains("not a --trusted-proxy"))
        })
        .collect();
    assert_eq!(warned.len(), 1, "{warned:?}");
    assert_eq!(warned[0]["peer"], "127.0.0.1");
    assert_eq!(warned[0]["level"], "WARN");
}
