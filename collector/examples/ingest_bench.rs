//! Ingest benchmark: prints figures, asserts nothing about speed.
//!
//! For each backend (SQLite, PostgreSQL) and each number of concurrent keep-alive clients
//! (1, 16, 64) it starts a release collector on a loopback port with a fresh database, and
//! in each of RUNS runs sends single-beacon POSTs for SECONDS, then asks the same server
//! for `/healthz` (a constant answer) for SECONDS: the ratio of the two medians says how
//! close ingest comes to this machine's HTTP ceiling. Every beacon is a new identity (the
//! SDK sends one beacon per identity and month), so the bytes on disk divided by the
//! stored identities is the cost of one identity-month. Every 2xx is a durable commit.
//!
//! Evidence for what limits each backend: CPU seconds of the collector, of PostgreSQL and
//! of the load generator per wall second (2 cores are shared by all three); for SQLite the
//! fsync calls and their mean time (the collector runs under `strace -c` when strace is
//! installed, filtered by seccomp so other calls run untraced); for PostgreSQL the commits,
//! WAL syncs and WAL sync time from `pg_stat_database` and `pg_stat_wal`.
//!
//!     bash scripts/bench-collector.sh      # starts a throwaway PostgreSQL, runs this
//!
//! Knobs (environment): BENCH_PG_URL (an admin URL; without it PostgreSQL is skipped),
//! BENCH_SECONDS (4), BENCH_RUNS (3), BENCH_CLIENTS ("1,16,64"), BENCH_DB ("sqlite,postgres"),
//! BENCH_PG_POOL (the collector's `--db-pool`, 16),
//! MAU_COLLECTOR_BIN (a collector binary instead of building one). Loopback only; every
//! run stops by itself.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

const TOKEN: &str = "bench-token";

fn knob(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_owned())
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

/// A collector process (possibly under strace); stopped with SIGTERM on drop.
struct Collector {
    child: Child,
    /// The collector itself (the child of strace when traced).
    pid: u32,
    url: String,
}

impl Collector {
    fn start(bin: &Path, db: &str, pool: &str, strace_out: Option<&Path>) -> Collector {
        let mut cmd = match strace_out {
            Some(out) => {
                let mut c = Command::new("strace");
                c.args([
                    "-f",
                    "--seccomp-bpf",
                    "-c",
                    "-w",
                    "-e",
                    "trace=fsync,fdatasync",
                    "-o",
                ])
                .arg(out)
                .arg(bin);
                c
            }
            None => Command::new(bin),
        };
        let mut child = cmd
            .args(["serve", "--listen", "127.0.0.1:0", "--admin-token", TOKEN])
            .args(["--db", db, "--db-pool", pool])
            // All load comes from loopback: measure the store, not the per-address limits.
            .args(["--rate-limit", "0", "--identities-per-minute", "0"])
            .args(["--max-connections-per-address", "0"])
            .env("MAU_COLLECTOR_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start collector");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("listening line");
        let url = line.trim().trim_start_matches("listening on ").to_owned();
        assert!(url.starts_with("http://127.0.0.1:"), "unexpected: {line:?}");
        let pid = if strace_out.is_some() {
            let children = format!("/proc/{0}/task/{0}/children", child.id());
            std::fs::read_to_string(children)
                .ok()
                .and_then(|s| s.split_whitespace().next()?.parse().ok())
                .expect("collector under strace")
        } else {
            child.id()
        };
        Collector { child, pid, url }
    }

    /// SIGTERM to the collector, then wait (strace writes its summary when it ends).
    fn stop(mut self) {
        let _ = Command::new("kill").arg(self.pid.to_string()).status();
        let _ = self.child.wait();
    }
}

impl Drop for Collector {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

static NEXT_ID: AtomicU64 = AtomicU64::new(0);

fn beacon() -> String {
    let n = NEXT_ID.fetch_add(1, Ordering::Relaxed);
    format!(
        concat!(
            r#"{{"v":1,"kind":"connected","identity":"user-{n:09}@example.com","#,
            r#""event_id":"{n:032x}","month":"2026-11","#,
            r#""occurred_at":"2026-11-24T20:08:52.123Z","sent_at":"2026-11-24T20:08:52.140Z","#,
            r#""attempt":1,"dedupe":"month","sdk":{{"name":"mau-beacon","version":"0.1.0"}}}}"#
        ),
        n = n
    )
}

struct Phase {
    ok: usize,
    failed: usize,
    elapsed: Duration,
    latencies: Vec<Duration>,
}

/// `clients` keep-alive clients send requests for `secs`: ingest POSTs or /healthz GETs.
fn phase(url: &str, clients: usize, secs: Duration, ingest: bool) -> Phase {
    let start = Instant::now();
    let handles: Vec<_> = (0..clients)
        .map(|_| {
            let url = url.to_owned();
            std::thread::spawn(move || {
                let agent = ureq::AgentBuilder::new()
                    .timeout(Duration::from_secs(30))
                    .max_idle_connections_per_host(1)
                    .build();
                let (mut ok, mut failed, mut lat) = (0, 0, Vec::new());
                while start.elapsed() < secs {
                    let t = Instant::now();
                    let r = if ingest {
                        agent
                            .post(&format!("{url}/v1/beacons"))
                            .set("Content-Type", "text/plain;charset=UTF-8")
                            .send_string(&beacon())
                    } else {
                        agent.get(&format!("{url}/healthz")).call()
                    };
                    lat.push(t.elapsed());
                    match r {
                        // Read the body so the connection is reused.
                        Ok(resp) if resp.status() / 100 == 2 => {
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
    let mut p = Phase {
        ok: 0,
        failed: 0,
        elapsed: Duration::ZERO,
        latencies: Vec::new(),
    };
    for h in handles {
        let (ok, failed, lat) = h.join().expect("client thread");
        p.ok += ok;
        p.failed += failed;
        p.latencies.extend(lat);
    }
    p.elapsed = start.elapsed();
    p
}

/// CPU seconds (user + system, plus reaped children) of a process, from /proc.
fn cpu_secs(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    // After the name: state ppid ... utime(11) stime(12) cutime(13) cstime(14).
    let ticks: u64 = (11..=14)
        .filter_map(|i| fields.get(i)?.parse::<u64>().ok())
        .sum();
    ticks as f64 / 100.0
}

fn parent_of(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(')')?
        .1
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// CPU seconds of the PostgreSQL postmaster and all its children.
fn pg_cpu_secs(postmaster: u32) -> f64 {
    let mut total = cpu_secs(postmaster);
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        if let Some(pid) = entry.file_name().to_str().and_then(|s| s.parse().ok()) {
            if parent_of(pid) == Some(postmaster) {
                total += cpu_secs(pid);
            }
        }
    }
    total
}

/// A small synchronous PostgreSQL client for setup and statistics.
struct Pg {
    rt: tokio::runtime::Runtime,
    client: tokio_postgres::Client,
}

impl Pg {
    fn connect(url: &str) -> Pg {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let client = rt.block_on(async {
            let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
                .await
                .expect("connect to PostgreSQL");
            tokio::spawn(conn);
            client
        });
        Pg { rt, client }
    }

    fn exec(&self, sql: &str) {
        self.rt
            .block_on(self.client.batch_execute(sql))
            .unwrap_or_else(|e| panic!("{sql}: {e:?}"));
    }

    fn f64s(&self, sql: &str) -> Vec<f64> {
        let row = self
            .rt
            .block_on(self.client.query_one(sql, &[]))
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
        (0..row.len()).map(|i| row.get::<_, f64>(i)).collect()
    }
}

/// Commits, WAL syncs and WAL sync milliseconds so far (cluster-wide; only the benchmark
/// writes to this cluster).
const PG_STATS: &str = "SELECT (SELECT sum(xact_commit) FROM pg_stat_database)::float8,
    wal_sync::float8, wal_sync_time::float8 FROM pg_stat_wal";

#[derive(Default)]
struct Row {
    backend: &'static str,
    clients: usize,
    ingest: f64,
    healthz: f64,
    p50: f64,
    p99: f64,
    failed: usize,
    cpu_collector: f64,
    cpu_pg: f64,
    cpu_client: f64,
    /// SQLite: fsync calls and mean ms (strace); PostgreSQL: commits, WAL syncs, mean ms.
    syncs: Option<(f64, f64)>,
    commits: Option<f64>,
    beacons: usize,
    /// Beacons stored over the span the sync counts cover.
    synced_beacons: usize,
    bytes_per_identity: f64,
    /// The machine's 1-minute load average after the row (other work competes for the CPU).
    load: String,
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn percentile_ms(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let idx = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[idx].as_secs_f64() * 1000.0
}

/// Reads `strace -c` output: (calls, total seconds) over fsync and fdatasync.
fn strace_syncs(path: &Path) -> Option<(f64, f64)> {
    let text = std::fs::read_to_string(path).ok()?;
    let mut calls = 0.0;
    let mut secs = 0.0;
    for line in text.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() >= 5 && (f.last() == Some(&"fsync") || f.last() == Some(&"fdatasync")) {
            secs += f[1].parse::<f64>().unwrap_or(0.0);
            calls += f[3].parse::<f64>().unwrap_or(0.0);
        }
    }
    Some((calls, secs))
}

fn measure(
    bin: &Path,
    backend: &'static str,
    clients: usize,
    secs: Duration,
    runs: usize,
    pg_admin: Option<&str>,
) -> Row {
    let dir = tempfile::tempdir().expect("temp dir");
    let strace = backend == "sqlite"
        && Command::new("strace")
            .arg("-V")
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
    let strace_out = dir.path().join("strace.txt");
    let (db, admin) = match backend {
        "sqlite" => (dir.path().join("bench.db").display().to_string(), None),
        _ => {
            let admin = Pg::connect(pg_admin.expect("BENCH_PG_URL"));
            let name = format!("mau_bench_{clients}");
            admin.exec(&format!("DROP DATABASE IF EXISTS {name}"));
            admin.exec(&format!("CREATE DATABASE {name}"));
            let base = pg_admin.unwrap().rsplit_once('/').unwrap().0;
            (format!("{base}/{name}"), Some(admin))
        }
    };
    let pool = knob("BENCH_PG_POOL", "16");
    let collector = Collector::start(bin, &db, &pool, strace.then_some(strace_out.as_path()));
    let url = collector.url.clone();
    let ready = Instant::now();
    while ureq::get(&format!("{url}/healthz")).call().is_err() {
        assert!(ready.elapsed() < Duration::from_secs(30), "not ready");
        std::thread::sleep(Duration::from_millis(20));
    }
    let postmaster = admin.as_ref().map(|a| {
        let pid = a.f64s("SELECT pg_backend_pid()::float8")[0] as u32;
        parent_of(pid).expect("postmaster")
    });
    // Warm-up: connections, statement caches, page cache.
    let warm = phase(&url, clients, Duration::from_secs(1), true);

    let mut row = Row {
        backend,
        clients,
        ..Row::default()
    };
    let (mut ingest, mut healthz, mut lat) = (vec![], vec![], vec![]);
    let (mut wall, mut cpu_c, mut cpu_pg, mut cpu_self) = (0.0, 0.0, 0.0, 0.0);
    let stats_before = admin.as_ref().map(|a| a.f64s(PG_STATS));
    for _ in 0..runs {
        let (c0, p0, s0) = (
            cpu_secs(collector.pid),
            postmaster.map_or(0.0, pg_cpu_secs),
            cpu_secs(std::process::id()),
        );
        let p = phase(&url, clients, secs, true);
        wall += p.elapsed.as_secs_f64();
        cpu_c += cpu_secs(collector.pid) - c0;
        cpu_pg += postmaster.map_or(0.0, pg_cpu_secs) - p0;
        cpu_self += cpu_secs(std::process::id()) - s0;
        ingest.push(p.ok as f64 / p.elapsed.as_secs_f64());
        row.failed += p.failed;
        row.beacons += p.ok;
        lat.extend(p.latencies);
        let h = phase(&url, clients, secs, false);
        healthz.push(h.ok as f64 / h.elapsed.as_secs_f64());
    }
    lat.sort();
    row.ingest = median(&mut ingest);
    row.healthz = median(&mut healthz);
    row.p50 = percentile_ms(&lat, 0.50);
    row.p99 = percentile_ms(&lat, 0.99);
    row.cpu_collector = cpu_c / wall;
    row.cpu_pg = cpu_pg / wall;
    row.cpu_client = cpu_self / wall;
    if let (Some(a), Some(before)) = (&admin, stats_before) {
        let after = a.f64s(PG_STATS);
        row.commits = Some(after[0] - before[0]);
        row.syncs = Some((after[1] - before[1], (after[2] - before[2]) / 1000.0));
    }
    collector.stop();
    if strace {
        // strace counted from the start, warm-up included.
        row.syncs = strace_syncs(&strace_out);
        row.synced_beacons = row.beacons + warm.ok;
    }

    // Bytes on disk per identity-month (every beacon was a new identity).
    let (bytes, identities) = match &admin {
        None => {
            let conn = rusqlite::Connection::open(&db).expect("open bench db");
            let _: (i64, i64, i64) = conn
                .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?))
                })
                .expect("checkpoint");
            let n: f64 = conn
                .query_row("SELECT count(*) FROM identities", [], |r| {
                    r.get::<_, i64>(0)
                })
                .expect("count") as f64;
            drop(conn);
            let size: u64 = ["", "-wal", "-shm"]
                .iter()
                .filter_map(|s| std::fs::metadata(format!("{db}{s}")).ok())
                .map(|m| m.len())
                .sum();
            (size as f64, n)
        }
        Some(_) => {
            let c = Pg::connect(&db);
            c.exec("VACUUM ANALYZE");
            let v = c.f64s(
                "SELECT (pg_total_relation_size('events') + pg_total_relation_size('identities'))::float8,
                        (SELECT count(*) FROM identities)::float8",
            );
            (v[0], v[1])
        }
    };
    row.bytes_per_identity = bytes / identities.max(1.0);
    row.load = std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next().map(str::to_owned))
        .unwrap_or_default();
    if let Some(a) = admin {
        a.exec(&format!(
            "DROP DATABASE IF EXISTS mau_bench_{clients} WITH (FORCE)"
        ));
    }
    row
}

fn main() {
    let secs = Duration::from_secs_f64(knob("BENCH_SECONDS", "4").parse().unwrap_or(4.0));
    let runs: usize = knob("BENCH_RUNS", "3").parse().unwrap_or(3).max(1);
    let clients: Vec<usize> = knob("BENCH_CLIENTS", "1,16,64")
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    let pg = std::env::var("BENCH_PG_URL").ok().filter(|u| !u.is_empty());
    let mut backends: Vec<&'static str> = knob("BENCH_DB", "sqlite,postgres")
        .split(',')
        .filter_map(|b| match b.trim() {
            "sqlite" => Some("sqlite"),
            "postgres" => Some("postgres"),
            _ => None,
        })
        .collect();
    if pg.is_none() && backends.contains(&"postgres") {
        println!("PostgreSQL skipped: set BENCH_PG_URL (scripts/bench-collector.sh does)");
        backends.retain(|b| *b != "postgres");
    }
    if let Some(url) = &pg {
        // WAL sync times are counted only with this on (a superuser setting).
        let a = Pg::connect(url);
        a.exec("ALTER SYSTEM SET track_wal_io_timing = on");
        a.exec("SELECT pg_reload_conf()");
    }
    let bin = collector_bin();
    println!(
        "mau-collector ingest benchmark: {runs} runs x ({:.0} s ingest + {:.0} s /healthz) per row, one beacon per POST",
        secs.as_secs_f64(),
        secs.as_secs_f64()
    );
    println!("binary: {}", bin.display());
    println!(
        "machine: {} logical CPUs shared by the load generator, the collector and PostgreSQL",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    let started = Instant::now();
    let mut rows = Vec::new();
    for backend in &backends {
        for &c in &clients {
            let r = measure(&bin, backend, c, secs, runs, pg.as_deref());
            eprintln!(
                "  {backend} x{c}: {:.0} beacons/s ({:.0?} elapsed)",
                r.ingest,
                started.elapsed()
            );
            rows.push(r);
        }
    }

    println!();
    println!("| backend | clients | ingest/s (median) | /healthz/s (median) | ratio | p50 ms | p99 ms | CPU cores: collector / PostgreSQL / load generator | syncs | beacons per commit | bytes per identity-month | load avg |");
    println!("|---|---:|---:|---:|---:|---:|---:|---|---|---:|---:|---:|");
    for r in &rows {
        let syncs = match r.syncs {
            Some((n, s)) if n > 0.0 => format!(
                "{} {:.0} ({:.2} ms mean)",
                if r.backend == "sqlite" {
                    "fsync"
                } else {
                    "WAL sync"
                },
                n,
                s * 1000.0 / n
            ),
            _ => "-".into(),
        };
        let per_commit = match (r.backend, r.commits, r.syncs) {
            ("postgres", Some(c), _) if c > 0.0 => format!("{:.1}", r.beacons as f64 / c),
            // WAL mode: one fsync per commit (plus rare checkpoint fsyncs), so an upper bound.
            ("sqlite", _, Some((n, _))) if n > 0.0 => {
                format!("≤{:.1}", r.synced_beacons as f64 / n)
            }
            _ => "-".into(),
        };
        println!(
            "| {} | {} | {:.0} | {:.0} | {:.1}% | {:.2} | {:.2} | {:.2} / {:.2} / {:.2} | {} | {} | {:.0} | {} |{}",
            r.backend,
            r.clients,
            r.ingest,
            r.healthz,
            100.0 * r.ingest / r.healthz,
            r.p50,
            r.p99,
            r.cpu_collector,
            r.cpu_pg,
            r.cpu_client,
            syncs,
            per_commit,
            r.bytes_per_identity,
            r.load,
            if r.failed > 0 {
                format!(" {} failed", r.failed)
            } else {
                String::new()
            }
        );
    }
}
