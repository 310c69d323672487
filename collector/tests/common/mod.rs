//! Shared helpers: a database of either backend, the real binary on a free loopback
//! port, and HTTP to it.
#![allow(dead_code)]

#[macro_use]
mod db;
pub use db::*;
pub mod fake_twilio;

use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_mau-collector");
pub const TOKEN: &str = "test-admin-token";

/// A running collector; killed (and reaped) on drop, even when a test fails.
pub struct Server {
    child: Option<Child>,
    pub url: String,
    /// The `--db` value.
    pub db: String,
    log: PathBuf,
    agent: ureq::Agent,
}

/// Starts `serve` on 127.0.0.1:0 with `db` and `extra` flags; the child, its log, and the
/// first stdout line (or what came instead).
pub fn spawn_serve(db: &TestDb, extra: &[&str]) -> (Child, PathBuf, String) {
    static N: AtomicUsize = AtomicUsize::new(0);
    let log = db
        .dir
        .path()
        .join(format!("server-{}.log", N.fetch_add(1, Ordering::SeqCst)));
    let stderr = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log)
        .unwrap();
    let mut child = Command::new(BIN)
        .args(["serve", "--listen", "127.0.0.1:0", "--db", &db.arg])
        .args(extra)
        .env_remove("MAU_COLLECTOR_ADMIN_TOKEN")
        .env_remove("MAU_COLLECTOR_ALLOW_ORIGIN")
        .env_remove("MAU_COLLECTOR_STATIC_DIR")
        .env_remove("MAU_COLLECTOR_DB")
        .env_remove("MAU_COLLECTOR_INGEST_TOKEN")
        .env_remove("MAU_COLLECTOR_PUBLIC_URL")
        .env_remove("TWILIO_AUTH_TOKEN")
        .env_remove("MAU_COLLECTOR_METRICS_TOKEN")
        .env_remove("MAU_COLLECTOR_METRICS_LISTEN")
        .env_remove("MAU_COLLECTOR_LOG_FORMAT")
        // Test load comes from one address: per-address limits are off unless a test
        // turns them on with the flags (which win over these).
        .env("MAU_COLLECTOR_RATE_LIMIT", "0")
        .env("MAU_COLLECTOR_IDENTITIES_PER_MINUTE", "0")
        .env("MAU_COLLECTOR_MAX_CONNECTIONS_PER_ADDRESS", "0")
        .env_remove("MAU_COLLECTOR_TRUSTED_PROXY")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(stderr)
        .spawn()
        .expect("spawn mau-collector");
    // The first stdout line names the port the OS picked.
    let mut line = String::new();
    let stdout = child.stdout.take().unwrap();
    BufReader::new(stdout).read_line(&mut line).unwrap();
    (child, log, line)
}

impl Server {
    /// Starts `serve` on 127.0.0.1:0 with `db`, plus `extra` flags; waits for /healthz.
    pub fn start(db: &TestDb, extra: &[&str]) -> Server {
        let (child, log, line) = spawn_serve(db, extra);
        let mut server = Server {
            url: line
                .trim()
                .strip_prefix("listening on ")
                .unwrap_or("")
                .to_owned(),
            child: Some(child),
            db: db.arg.clone(),
            log,
            agent: ureq::AgentBuilder::new()
                .timeout(Duration::from_secs(30))
                .build(),
        };
        assert!(
            server.url.starts_with("http://127.0.0.1:"),
            "no listening line: {line:?}\n{}",
            server.logs()
        );
        server.wait_ready();
        server
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(r) = self.agent.get(&format!("{}/healthz", self.url)).call() {
                if r.status() == 200 {
                    return;
                }
            }
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                panic!("collector exited with {status}\n{}", self.logs());
            }
            assert!(
                Instant::now() < deadline,
                "collector not ready\n{}",
                self.logs()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGKILL, no chance to flush anything.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            c.kill().unwrap();
            c.wait().unwrap();
        }
    }

    /// Sends SIGTERM and waits at most `limit` for the exit; the time taken, if it exited.
    pub fn terminate(&mut self, limit: Duration) -> Option<(Duration, std::process::ExitStatus)> {
        let child = self.child.as_mut()?;
        let started = Instant::now();
        let ok = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill -TERM failed");
        while started.elapsed() < limit {
            if let Some(status) = child.try_wait().unwrap() {
                self.child = None;
                return Some((started.elapsed(), status));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        None
    }

    /// The `host:port` the server listens on.
    pub fn addr(&self) -> &str {
        self.url.strip_prefix("http://").unwrap_or(&self.url)
    }

    pub fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| c.try_wait().ok().flatten().is_none())
    }

    pub fn request(&self, method: &str, path: &str) -> ureq::Request {
        self.agent.request(method, &format!("{}{}", self.url, path))
    }

    pub fn post(&self, body: &str) -> Resp {
        send(
            self.request("POST", "/v1/beacons")
                .set("Content-Type", "text/plain;charset=UTF-8"),
            Some(body),
        )
    }

    pub fn get_admin(&self, path: &str) -> Resp {
        send(
            self.request("GET", path)
                .set("Authorization", &format!("Bearer {TOKEN}")),
            None,
        )
    }

    /// The months that hold data (the server's clock decides which month "now" is).
    pub fn months(&self) -> Vec<Value> {
        let r = self.get_admin("/v1/months");
        assert_eq!(r.status, 200, "{}", r.body);
        r.json().as_array().unwrap().clone()
    }

    /// The line of `month` in `GET /v1/months`; panics when it is not there.
    pub fn month_line(&self, month: &str) -> Value {
        let months = self.months();
        months
            .iter()
            .find(|m| m["month"] == month)
            .cloned()
            .unwrap_or_else(|| panic!("{month} not in {months:?}"))
    }

    /// The only month with data; panics when there is not exactly one.
    pub fn month(&self) -> String {
        let m = self.months();
        assert_eq!(m.len(), 1, "{m:?}");
        m[0]["month"].as_str().unwrap().to_owned()
    }

    pub fn assert_alive(&mut self) {
        assert!(self.is_running(), "collector died\n{}", self.logs());
        let r = send(self.request("GET", "/healthz"), None);
        assert_eq!(r.status, 200);
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }
}

/// Sends a request; a 4xx/5xx is a normal answer here, not an error.
pub fn send(req: ureq::Request, body: Option<&str>) -> Resp {
    let result = match body {
        Some(b) => req.send_string(b),
        None => req.call(),
    };
    let resp = match result {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("transport error: {e}"),
    };
    let status = resp.status();
    let headers = resp
        .headers_names()
        .into_iter()
        .flat_map(|n| {
            let vals: Vec<String> = resp.all(&n).into_iter().map(str::to_owned).collect();
            vals.into_iter().map(move |v| (n.clone(), v))
        })
        .collect();
    let mut body = String::new();
    resp.into_reader().read_to_string(&mut body).unwrap();
    Resp {
        status,
        headers,
        body,
    }
}

/// A valid beacon. occurred_at/sent_at are 17 ms apart, so the event lands "now" on the
/// server's clock whatever the dates say.
pub fn beacon(identity: &str, event_id: &str) -> Value {
    json!({
        "v": 1,
        "kind": "connected",
        "identity": identity,
        "event_id": event_id,
        "month": "2026-11",
        "occurred_at": "2026-11-24T20:08:52.123Z",
        "sent_at": "2026-11-24T20:08:52.140Z",
        "attempt": 1,
        "dedupe": "month",
        "sdk": { "name": "mau-beacon", "version": "0.1.0" },
        "client_version": "3.0.1"
    })
}

/// Runs the CLI with `args`.
pub fn cli(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .env_remove("MAU_COLLECTOR_DB")
        .output()
        .expect("run mau-collector")
}

/// What a load run saw: every event_id answered 2xx, and the failures by kind.
#[derive(Debug, Default)]
pub struct LoadOutcome {
    pub acked: Vec<String>,
    /// 503 answers that carried Retry-After (the database away or busy).
    pub unavailable: usize,
    /// Anything else that was not a 2xx: status or transport error, one line each.
    pub failures: Vec<String>,
}

/// Concurrent keep-alive clients posting single beacons, bounded in count; client `t`
/// posts to `urls[t % urls.len()]` the events `event_id(t, i)` (identity = event_id).
pub struct Load {
    count: std::sync::Arc<AtomicUsize>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    threads: Vec<std::thread::JoinHandle<LoadOutcome>>,
}

impl Load {
    /// With `retry_503`, a client retries a 503 (as the SDK does, faster) until
    /// `retry_for` has passed; otherwise it stops at its first failure.
    pub fn start(
        urls: &[String],
        clients: usize,
        per_client: usize,
        event_id: fn(usize, usize) -> String,
        retry_503: Option<Duration>,
    ) -> Load {
        let count = std::sync::Arc::new(AtomicUsize::new(0));
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let threads = (0..clients)
            .map(|t| {
                let url = format!("{}/v1/beacons", urls[t % urls.len()]);
                let (count, stop) = (count.clone(), stop.clone());
                std::thread::spawn(move || {
                    let agent = ureq::AgentBuilder::new()
                        .timeout(Duration::from_secs(20))
                        .build();
                    let mut out = LoadOutcome::default();
                    'events: for i in 0..per_client {
                        let id = event_id(t, i);
                        let body = beacon(&id, &id).to_string();
                        let started = Instant::now();
                        loop {
                            if stop.load(Ordering::SeqCst) {
                                break 'events;
                            }
                            match agent.post(&url).send_string(&body) {
                                Ok(r) if r.status() == 200 => {
                                    out.acked.push(id);
                                    count.fetch_add(1, Ordering::SeqCst);
                                    break;
                                }
                                Err(ureq::Error::Status(503, r))
                                    if r.header("retry-after").is_some() =>
                                {
                                    out.unavailable += 1;
                                    match retry_503 {
                                        Some(limit) if started.elapsed() < limit => {
                                            std::thread::sleep(Duration::from_millis(100));
                                        }
                                        _ => break 'events,
                                    }
                                }
                                Ok(r) => {
                                    out.failures.push(format!("{id}: status {}", r.status()));
                                    break 'events;
                                }
                                Err(e) => {
                                    out.failures.push(format!("{id}: {e}"));
                                    break 'events;
                                }
                            }
                        }
                    }
                    out
                })
            })
            .collect();
        Load {
            count,
            stop,
            threads,
        }
    }

    /// Waits until `n` beacons were acknowledged in all (or every client is done).
    pub fn wait_for(&self, n: usize) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while self.count.load(Ordering::SeqCst) < n
            && !self.threads.iter().all(|t| t.is_finished())
            && Instant::now() < deadline
        {
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    pub fn acked_so_far(&self) -> usize {
        self.count.load(Ordering::SeqCst)
    }

    /// Stops the clients (each finishes its current request) and gathers what they saw.
    pub fn finish(self) -> LoadOutcome {
        self.stop.store(true, Ordering::SeqCst);
        self.join()
    }

    /// Lets every client run to its end.
    pub fn join(self) -> LoadOutcome {
        let mut all = LoadOutcome::default();
        for t in self.threads {
            let o = t.join().unwrap();
            all.acked.extend(o.acked);
            all.unavailable += o.unavailable;
            all.failures.extend(o.failures);
        }
        all
    }
}

/// The identities of the server's only month, read through the NDJSON export.
pub fn stored_identities(server: &Server) -> std::collections::HashSet<String> {
    let month = server.month();
    let r = server.get_admin(&format!("/v1/months/{month}/identities?format=ndjson"));
    assert_eq!(r.status, 200, "{}", r.body);
    r.body
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["identity"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect()
}

/// Panics naming a few acknowledged beacons that are not stored.
pub fn assert_none_lost(acked: &[String], stored: &std::collections::HashSet<String>) {
    let lost: Vec<&String> = acked.iter().filter(|id| !stored.contains(*id)).collect();
    assert!(
        lost.is_empty(),
        "{} of {} acknowledged beacons lost, e.g. {:?}",
        lost.len(),
        acked.len(),
        &lost[..lost.len().min(5)]
    );
}

/// Posts a Conversations webhook (form) signed with `auth` as Twilio signs a call to
/// `public` + `/v1/twilio/conversations`.
pub fn signed_webhook(server: &Server, auth: &str, public: &str, params: &[(&str, &str)]) -> Resp {
    let params: Vec<(String, String)> = params
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let url = format!("{public}/v1/twilio/conversations");
    let sig = mau_collector::twilio::signature::expected(auth, &url, &params);
    let mut form = form_urlencoded::Serializer::new(String::new());
    for (k, v) in &params {
        form.append_pair(k, v);
    }
    send(
        server
            .request("POST", "/v1/twilio/conversations")
            .set("Content-Type", "application/x-www-form-urlencoded")
            .set("X-Twilio-Signature", &sig),
        Some(&form.finish()),
    )
}

/// Posts an Event Streams delivery signed with the bodySHA256 variant.
pub fn signed_events(server: &Server, auth: &str, public: &str, body: &str) -> Resp {
    use sha2::Digest;
    let hash: String = sha2::Sha256::digest(body.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let path = format!("/v1/twilio/events?bodySHA256={hash}");
    let sig = mau_collector::twilio::signature::expected(auth, &format!("{public}{path}"), &[]);
    send(
        server
            .request("POST", &path)
            .set("Content-Type", "application/json")
            .set("X-Twilio-Signature", &sig),
        Some(body),
    )
}

/// Two reports of the current month are the same but for their forecasts, each made for its
/// own moment (`as_of`): both have one, by the same method.
pub fn assert_same_report(a: &Value, b: &Value, what: &str) {
    let strip = |r: &Value| {
        let mut r = r.clone();
        let f = r.as_object_mut().unwrap().remove("forecast");
        (r, f.map(|f| f["method"].clone()))
    };
    let ((a, fa), (b, fb)) = (strip(a), strip(b));
    assert!(
        fa.is_some() && fa == fb,
        "{what}: forecasts {fa:?} / {fb:?}"
    );
    assert_eq!(a, b, "{what}");
}
