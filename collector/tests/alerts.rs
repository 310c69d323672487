//! Budget alerts against a real receiver on 127.0.0.1, and the forecast in the report:
//! once per month and kind across a restart and across two instances, retries with
//! backoff, ingest untouched by a receiver that hangs, and the flags refused by name.

#[macro_use]
mod common;
use common::*;
use serde_json::{json, Value};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use time::OffsetDateTime;

/// What the receiver answers a request with.
#[derive(Clone, Copy, Debug)]
enum Answer {
    Status(u16),
    /// Never answers (until the test ends).
    Hang,
}

/// A POST the receiver took.
#[derive(Clone, Debug)]
struct Hit {
    at: Instant,
    content_type: String,
    body: Value,
    answered: u16,
}

#[derive(Default)]
struct Script {
    /// Answers for the next requests, in order; 200 once empty.
    answers: VecDeque<Answer>,
    hits: Vec<Hit>,
    hanging: usize,
}

/// An HTTP receiver (axum) on a free loopback port, in a thread of its own.
struct Receiver {
    url: String,
    script: Arc<Mutex<Script>>,
}

impl Receiver {
    fn start(answers: &[Answer]) -> Receiver {
        use axum::body::Bytes;
        use axum::extract::State;
        use axum::http::{HeaderMap, StatusCode};
        let script = Arc::new(Mutex::new(Script {
            answers: answers.iter().copied().collect(),
            ..Script::default()
        }));
        let (tx, rx) = std::sync::mpsc::channel();
        let s = script.clone();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                tx.send(listener.local_addr().unwrap()).unwrap();
                let hook = |State(s): State<Arc<Mutex<Script>>>,
                            headers: HeaderMap,
                            body: Bytes| async move {
                    let answer = s.lock().unwrap().answers.pop_front();
                    let answer = answer.unwrap_or(Answer::Status(200));
                    let hit = Hit {
                        at: Instant::now(),
                        content_type: headers
                            .get("content-type")
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or("")
                            .to_owned(),
                        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
                        answered: match answer {
                            Answer::Status(c) => c,
                            Answer::Hang => 0,
                        },
                    };
                    s.lock().unwrap().hits.push(hit);
                    match answer {
                        Answer::Status(c) => StatusCode::from_u16(c).unwrap(),
                        Answer::Hang => {
                            s.lock().unwrap().hanging += 1;
                            std::future::pending::<StatusCode>().await
                        }
                    }
                };
                let app = axum::Router::new()
                    .route("/hook/secret-part", axum::routing::post(hook))
                    .with_state(s);
                axum::serve(listener, app).await.unwrap();
            });
        });
        let addr = rx.recv().unwrap();
        Receiver {
            url: format!("http://{addr}/hook/secret-part"),
            script,
        }
    }

    fn hits(&self) -> Vec<Hit> {
        self.script.lock().unwrap().hits.clone()
    }

    /// The alerts answered 2xx, by kind.
    fn delivered(&self) -> Vec<String> {
        let mut kinds: Vec<String> = self
            .hits()
            .iter()
            .filter(|h| (200..300).contains(&h.answered))
            .map(|h| h.body["kind"].as_str().unwrap_or("?").to_owned())
            .collect();
        kinds.sort();
        kinds
    }

    /// Waits until `n` alerts were delivered (or 20 s passed).
    fn wait_delivered(&self, n: usize) -> Vec<String> {
        let deadline = Instant::now() + Duration::from_secs(20);
        while self.delivered().len() < n && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        self.delivered()
    }
}

const CHECK_MS: &str = "50";

fn alert_flags<'a>(receiver: &'a Receiver, budget: &'a str) -> Vec<&'a str> {
    vec![
        "--admin-token",
        TOKEN,
        "--budget-mau",
        budget,
        "--alert-url",
        &receiver.url,
        "--alert-check-ms",
        CHECK_MS,
        "--alert-retry-ms",
        "200",
        "--price-per-mau",
        "0.05",
    ]
}

fn post_identities(server: &Server, names: &[&str]) {
    for n in names {
        let r = server.post(&beacon(n, &format!("ev-{n}")).to_string());
        assert_eq!(r.status, 200, "{}", r.body);
    }
}

fn both_kinds() -> Vec<String> {
    vec!["actual".into(), "forecast".into()]
}

fn once_per_kind_across_a_restart(db: &TestDb) {
    let receiver = Receiver::start(&[]);
    let mut server = Server::start(db, &alert_flags(&receiver, "2"));
    post_identities(&server, &["alice@example.com", "bob@example.com"]);
    // Two subjects, budget 2: not over yet (the forecast may be, it grows with the month).
    std::thread::sleep(Duration::from_millis(300));
    assert!(!receiver.delivered().contains(&"actual".to_owned()));
    post_identities(&server, &["carol@example.com"]);
    assert_eq!(receiver.wait_delivered(2), both_kinds());
    for h in receiver.hits() {
        assert_eq!(h.content_type, "application/json");
        let text = h.body["text"].as_str().unwrap();
        let month = server.month();
        assert!(
            text.contains(&month) && text.contains("budget of 2 MAU"),
            "{text}"
        );
        assert!(!h.body.to_string().contains("example.com"), "{}", h.body);
        assert_eq!(h.body["budget_mau"], 2);
    }
    let actual = receiver
        .hits()
        .into_iter()
        .find(|h| h.body["kind"] == "actual")
        .unwrap();
    assert_eq!(actual.body["subjects"], 3);
    // The log names the receiver's host, never its path (it holds the secret).
    let logs = server.logs();
    assert!(logs.contains("budget alert sent"), "{logs}");
    assert!(
        logs.contains("127.0.0.1") && !logs.contains("secret-part"),
        "{logs}"
    );
    // The report carries the forecast and the budget the dashboard draws.
    let month = server.month();
    let r = server
        .get_admin(&format!("/v1/months/{month}/report"))
        .json();
    assert_eq!(r["budget"], json!({ "mau": 2, "usd": null }));
    let f = &r["forecast"];
    assert_eq!(f["method"], "trend", "{r}");
    let (p, lo, hi) = (&f["projected_subjects"], &f["low"], &f["high"]);
    assert!(lo.as_u64() >= Some(3) && lo.as_u64() <= p.as_u64() && p.as_u64() <= hi.as_u64());
    // Restarted on the same store: the alerts are remembered, not sent again.
    server.kill9();
    let mut server = Server::start(db, &alert_flags(&receiver, "2"));
    post_identities(&server, &["dave@example.com"]);
    std::thread::sleep(Duration::from_millis(1000));
    assert_eq!(receiver.delivered(), both_kinds());
    assert_eq!(receiver.hits().len(), 2);
    assert!(server.logs().contains("budget alerts on"));
    server.assert_alive();
    assert_eq!(
        db.scalar("SELECT count(*) FROM alerts WHERE state = 'sent' AND attempts = 1"),
        2
    );
    // `copy` takes the alerts along: a collector on the copy would not send them again.
    let to = db.dir.path().join("copy.db");
    let out = cli(&["copy", "--from", &db.arg, "--to", to.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let copied: i64 = rusqlite::Connection::open(&to)
        .unwrap()
        .query_row(
            "SELECT count(*) FROM alerts WHERE state = 'sent'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(copied, 2);
}

fn receiver_failures_are_retried_with_backoff(db: &TestDb) {
    let receiver = Receiver::start(&[
        Answer::Status(500),
        Answer::Status(503),
        Answer::Status(500),
        Answer::Status(429),
    ]);
    let mut flags = alert_flags(&receiver, "0");
    flags.extend(["--metrics-token", "test-metrics-token-0123456789"]);
    let server = Server::start(db, &flags);
    post_identities(&server, &["erin@example.com"]);
    assert_eq!(receiver.wait_delivered(2), both_kinds());
    std::thread::sleep(Duration::from_millis(500));
    let hits = receiver.hits();
    assert_eq!(hits.len(), 6, "4 failures and 2 deliveries: {hits:?}");
    // Per kind, each pause is at least the one before doubled (first 200 ms).
    for kind in ["actual", "forecast"] {
        let times: Vec<Instant> = hits
            .iter()
            .filter(|h| h.body["kind"] == kind)
            .map(|h| h.at)
            .collect();
        let gaps: Vec<Duration> = times.windows(2).map(|w| w[1] - w[0]).collect();
        for (i, gap) in gaps.iter().enumerate() {
            let min = Duration::from_millis(200 << i) * 9 / 10;
            assert!(*gap >= min, "{kind}: pause {i} was {gap:?}, under {min:?}");
        }
    }
    let metrics = send(
        server
            .request("GET", "/metrics")
            .set("Authorization", "Bearer test-metrics-token-0123456789"),
        None,
    )
    .body;
    let count = |result: &str| -> u64 {
        metrics
            .lines()
            .filter(|l| l.starts_with("mau_collector_budget_alerts_total{"))
            .filter(|l| l.contains(&format!("result=\"{result}\"")))
            .map(|l| l.rsplit(' ').next().unwrap().parse::<u64>().unwrap())
            .sum()
    };
    assert_eq!((count("sent"), count("failed")), (2, 4), "{metrics}");
    assert!(!metrics.contains("secret-part"));
}

fn two_instances_send_once(db: &TestDb) {
    let receiver = Receiver::start(&[]);
    let a = Server::start(db, &alert_flags(&receiver, "1"));
    let b = Server::start(db, &alert_flags(&receiver, "1"));
    post_identities(&a, &["frank@example.com"]);
    post_identities(&b, &["grace@example.com"]);
    assert_eq!(receiver.wait_delivered(2), both_kinds());
    // Both instances kept checking for another second: still one alert per kind.
    std::thread::sleep(Duration::from_millis(1000));
    assert_eq!(receiver.hits().len(), 2, "{:?}", receiver.hits());
    assert_eq!(
        db.scalar("SELECT count(*) FROM alerts WHERE state = 'sent' AND attempts = 1"),
        2
    );
}

fn ingest_answers_while_the_receiver_hangs(db: &TestDb) {
    let receiver = Receiver::start(&[Answer::Hang, Answer::Hang]);
    let server = Server::start(db, &alert_flags(&receiver, "0"));
    post_identities(&server, &["heidi@example.com"]);
    let deadline = Instant::now() + Duration::from_secs(10);
    while receiver.script.lock().unwrap().hanging < 2 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(receiver.script.lock().unwrap().hanging, 2);
    // Both alerts hang at the receiver; beacons are still taken at once.
    let started = Instant::now();
    for i in 0..20 {
        let id = format!("user{i}@example.com");
        let r = server.post(&beacon(&id, &format!("hang-{i}")).to_string());
        assert_eq!(r.status, 200, "{}", r.body);
    }
    let took = started.elapsed();
    assert!(took < Duration::from_secs(5), "20 beacons took {took:?}");
    assert_eq!(server.month_line(&server.month())["subjects"], 21);
    assert_eq!(receiver.delivered(), Vec::<String>::new());
}

/// A beacon whose corrected event time is `at` on the server's clock (a few ms off).
fn beacon_at(identity: &str, at: OffsetDateTime) -> String {
    let sent = OffsetDateTime::now_utc();
    let mut b = beacon(identity, &format!("h-{identity}"));
    let fmt = |t: OffsetDateTime| mau_collector::wire::format_time(t);
    b["occurred_at"] = json!(fmt(sent - (OffsetDateTime::now_utc() - at)));
    b["sent_at"] = json!(fmt(sent));
    b.to_string()
}

fn the_forecast_uses_previous_months(db: &TestDb) {
    let server = Server::start(
        db,
        &[
            "--admin-token",
            TOKEN,
            "--max-backdate-days",
            "100",
            "--price-per-mau",
            "0.05",
        ],
    );
    let now = OffsetDateTime::now_utc();
    let this = now
        .replace_day(1)
        .unwrap()
        .replace_time(time::Time::MIDNIGHT);
    // Two previous months, each with subjects on its first days and later.
    let mut start = this;
    for m in 0..2 {
        start = (start - time::Duration::days(1)).replace_day(1).unwrap();
        for (i, day) in [0, 1, 5, 12, 20].iter().enumerate() {
            let at = start + time::Duration::days(*day) + time::Duration::hours(12);
            let r = server.post(&beacon_at(&format!("m{m}-{i}"), at));
            assert_eq!(r.status, 200, "{}", r.body);
        }
    }
    post_identities(&server, &["now-1", "now-2"]);
    let month = mau_collector::month::Month::of(now).to_string();
    let r = server
        .get_admin(&format!("/v1/months/{month}/report"))
        .json();
    let f = &r["forecast"];
    assert_eq!(f["method"], "history:2", "{r}");
    assert!(f["projected_subjects"].as_u64().unwrap() >= 2, "{f}");
    assert_eq!(r["budget"], Value::Null);
    let cost = f["projected_cost"].as_f64().unwrap();
    assert!((cost - f["projected_subjects"].as_f64().unwrap() * 0.05).abs() < 0.01);
    // A previous month has no forecast.
    let prev = mau_collector::month::Month::of(start).to_string();
    let old = server
        .get_admin(&format!("/v1/months/{prev}/report"))
        .json();
    assert_eq!(
        (old["seen"].as_u64(), &old["forecast"]),
        (Some(5), &Value::Null)
    );
    // The command line prints it too.
    let out = cli(&["report", "--db", &db.arg, "--month", &month]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("Forecast for month's end:") && text.contains("history:2"),
        "{text}"
    );
}

both_backends!(
    once_per_kind_across_a_restart,
    receiver_failures_are_retried_with_backoff,
    two_instances_send_once,
    ingest_answers_while_the_receiver_hangs,
    the_forecast_uses_previous_months,
);

#[test]
fn bad_flag_combinations_are_refused_by_name() {
    let db = TestDb::sqlite();
    let secret = "https://hooks.example/services/T0/B0/very-secret";
    let cases: [(&[&str], &str); 5] = [
        (&["--budget-mau", "10"], "--alert-url"),
        (&["--alert-url", secret], "--budget-mau or --budget-usd"),
        (
            &["--budget-usd", "5", "--alert-url", secret],
            "--price-per-mau",
        ),
        (
            &[
                "--budget-mau",
                "10",
                "--alert-url",
                "http://hooks.example/very-secret",
            ],
            "--alert-url must be https",
        ),
        (
            &["--budget-mau", "10", "--alert-url", "hooks"],
            "--alert-url is not a URL",
        ),
    ];
    for (flags, named) in cases {
        let out = std::process::Command::new(BIN)
            .args(["serve", "--listen", "127.0.0.1:0", "--db", &db.arg])
            .args(flags)
            .env_remove("MAU_COLLECTOR_ALERT_URL")
            .env_remove("MAU_COLLECTOR_BUDGET_MAU")
            .env_remove("MAU_COLLECTOR_PRICE_PER_MAU")
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{flags:?} was accepted");
        assert!(err.contains(named), "{flags:?}: {err}");
        assert!(!err.contains("very-secret"), "{err}");
    }
    // Nothing was opened: the checks come before the store.
    assert!(!std::path::Path::new(&db.arg).exists());
}
