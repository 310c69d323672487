//! Ingest benchmark: prints figures, asserts nothing about speed.
//!
//! Starts the release collector on a loopback port with a temporary database, then for
//! each of RUNS runs sends BEACONS single-beacon POSTs from CLIENTS concurrent keep-alive
//! clients, and prints beacons/second per run, the median, and p50/p99/max latency.
//! Every answer is a durable commit (WAL, synchronous=FULL), so this measures the real
//! path, fsyncs included. Traffic goes to 127.0.0.1 only; the run is bounded in count
//! and time and stops by itself.
//!
//!     cargo run --release -p mau-collector --example ingest_bench
//!
//! Knobs (environment): BENCH_BEACONS (default 20000), BENCH_CLIENTS (16), BENCH_RUNS (5),
//! MAU_COLLECTOR_BIN (a collector binary to use instead of building one).

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const TOKEN: &str = "bench-token";
/// A run that takes longer than this stops early (and says so).
const RUN_TIME_LIMIT: Duration = Duration::from_secs(120);

fn knob(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
        .max(1)
}

/// The collector binary beside this example (target/<profile>/mau-collector), built
/// first: `cargo run --example` builds only the example, so the binary could be stale.
fn collector_bin() -> PathBuf {
    if let Ok(p) = std::env::var("MAU_COLLECTOR_BIN") {
        return p.into();
    }
    let exe = std::env::current_exe().expect("current exe");
    let dir = exe.parent().and_then(|d| d.parent()).expect("target dir");
    let bin = dir.join(format!("mau-collector{}", std::env::consts::EXE_SUFFIX));
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let release = dir.file_name().is_some_and(|n| n == "release");
    let ok = Command::new(cargo)
        .args([
            "build",
            "-q",
            "-p",
            "mau-collector",
            "--bin",
            "mau-collector",
        ])
        .args(release.then_some("--release"))
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    assert!(ok && bin.exists(), "could not build {}", bin.display());
    bin
}

struct Collector(Child);

impl Drop for Collector {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn beacon(run: usize, client: usize, i: usize, identities: usize) -> String {
    format!(
        concat!(
            r#"{{"v":1,"kind":"connected","identity":"user-{id}@example.com","#,
            r#""event_id":"{run:04x}{client:04x}{i:024x}","month":"2026-11","#,
            r#""occurred_at":"2026-11-24T20:08:52.123Z","sent_at":"2026-11-24T20:08:52.140Z","#,
            r#""attempt":1,"dedupe":"none","sdk":{{"name":"mau-beacon","version":"0.1.0"}}}}"#
        ),
        id = (client * 7919 + i) % identities,
        run = run,
        client = client,
        i = i,
    )
}

struct RunResult {
    ok: usize,
    failed: usize,
    elapsed: Duration,
    latencies: Vec<Duration>,
    timed_out: bool,
}

fn run_once(url: &str, run: usize, beacons: usize, clients: usize) -> RunResult {
    let deadline = Instant::now() + RUN_TIME_LIMIT;
    let timed_out = Arc::new(AtomicBool::new(false));
    let start = Instant::now();
    let handles: Vec<_> = (0..clients)
        .map(|c| {
            let url = format!("{url}/v1/beacons");
            let timed_out = timed_out.clone();
            // Split the count evenly; the first clients take the remainder.
            let n = beacons / clients + usize::from(c < beacons % clients);
            std::thread::spawn(move || {
                let agent = ureq::AgentBuilder::new()
                    .timeout(Duration::from_secs(30))
                    .max_idle_connections_per_host(1)
                    .build();
                let (mut ok, mut failed, mut lat) = (0, 0, Vec::with_capacity(n));
                for i in 0..n {
                    if Instant::now() > deadline {
                        timed_out.store(true, Ordering::Relaxed);
                        break;
                    }
                    let body = beacon(run, c, i, 5000);
                    let t = Instant::now();
                    let r = agent
                        .post(&url)
                        .set("Content-Type", "text/plain;charset=UTF-8")
                        .send_string(&body);
                    lat.push(t.elapsed());
                    match r {
                        Ok(resp) if resp.status() / 100 == 2 => {
                            // Read the body so the connection is reused.
                            let _ = resp.into_string();
                            ok += 1;
                        }
                        _ => failed += 1,
                    }
                }
                (ok, failed, lat)
            })
        })
        .collect();
    let mut result = RunResult {
        ok: 0,
        failed: 0,
        elapsed: Duration::ZERO,
        latencies: Vec::with_capacity(beacons),
        timed_out: false,
    };
    for h in handles {
        let (ok, failed, lat) = h.join().expect("client thread");
        result.ok += ok;
        result.failed += failed;
        result.latencies.extend(lat);
    }
    result.elapsed = start.elapsed();
    result.timed_out = timed_out.load(Ordering::Relaxed);
    result
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let idx = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[idx]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn main() {
    let beacons = knob("BENCH_BEACONS", 20_000);
    let clients = knob("BENCH_CLIENTS", 16);
    let runs = knob("BENCH_RUNS", 5);
    let bin = collector_bin();
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("bench.db");

    let mut child = Command::new(&bin)
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--admin-token",
            TOKEN,
            "--db",
        ])
        .arg(&db)
        .env("MAU_COLLECTOR_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start collector");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("listening line");
    let collector = Collector(child);
    let url = line.trim().trim_start_matches("listening on ").to_owned();
    assert!(url.starts_with("http://127.0.0.1:"), "unexpected: {line:?}");
    let ready = Instant::now();
    while ureq::get(&format!("{url}/healthz")).call().is_err() {
        assert!(
            ready.elapsed() < Duration::from_secs(30),
            "collector not ready"
        );
        std::thread::sleep(Duration::from_millis(20));
    }

    println!(
        "mau-collector ingest benchmark: {runs} runs x {beacons} beacons, {clients} keep-alive clients, one beacon per POST"
    );
    println!("binary: {}", bin.display());
    println!(
        "machine: {} logical CPUs (client and server share them)",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    // Warm-up: page cache, connection setup, SQLite statement cache.
    let _ = run_once(&url, 0xffff, 1000, clients);

    let mut rates = Vec::new();
    let mut all = Vec::new();
    let mut total_ok = 1000;
    for run in 1..=runs {
        let r = run_once(&url, run, beacons, clients);
        let rate = r.ok as f64 / r.elapsed.as_secs_f64();
        let mut lat = r.latencies.clone();
        lat.sort();
        println!(
            "run {run}: {:>6} ok, {} failed in {:>6.2} s = {:>8.0} beacons/s  (p50 {:.2} ms, p99 {:.2} ms){}",
            r.ok,
            r.failed,
            r.elapsed.as_secs_f64(),
            rate,
            ms(percentile(&lat, 0.50)),
            ms(percentile(&lat, 0.99)),
            if r.timed_out { "  [stopped at the time limit]" } else { "" },
        );
        total_ok += r.ok;
        rates.push(rate);
        all.extend(r.latencies);
    }
    rates.sort_by(f64::total_cmp);
    all.sort();
    println!("median: {:.0} beacons/s", rates[rates.len() / 2]);
    println!(
        "latency over all runs: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        ms(percentile(&all, 0.50)),
        ms(percentile(&all, 0.99)),
        ms(all.last().copied().unwrap_or_default()),
    );

    // Sanity: every 2xx is a stored, distinct connect.
    let months = ureq::get(&format!("{url}/v1/months"))
        .set("Authorization", &format!("Bearer {TOKEN}"))
        .call()
        .ok()
        .and_then(|r| r.into_string().ok())
        .unwrap_or_default();
    let stored: i64 = serde_json::from_str::<serde_json::Value>(&months)
        .ok()
        .and_then(|v| {
            v.as_array()
                .map(|a| a.iter().filter_map(|m| m["connects"].as_i64()).sum())
        })
        .unwrap_or(-1);
    println!("stored connects: {stored} (2xx answers: {total_ok})");
    drop(collector);
}
