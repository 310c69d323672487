//! A fresh database for one test, on either backend, and the macro that runs a test on both.
//!
//! PostgreSQL tests use the cluster named by `MAU_TEST_PG_URL` (an admin URL; README's
//! test command starts a throwaway one). Without it they fail under CI and, locally, say
//! loudly that they were skipped: they never pass silently.

use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use tempfile::TempDir;

/// Runs each named `fn(&TestDb)` as two tests, `sqlite::name` and `postgres::name`.
#[allow(unused_macros)]
macro_rules! both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(#[test]
            fn $name() {
                super::$name(&crate::common::TestDb::sqlite());
            })*
        }
        mod postgres {
            $(#[test]
            fn $name() {
                if let Some(db) = crate::common::TestDb::postgres() {
                    super::$name(&db);
                }
            })*
        }
    };
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

pub struct TestDb {
    /// Scratch space: the SQLite file, server logs, static files.
    pub dir: TempDir,
    /// What `--db` gets.
    pub arg: String,
    pub backend: Backend,
    /// PostgreSQL: the admin URL and the database name, dropped at the end.
    pg: Option<(String, String)>,
}

/// The admin URL of the test cluster. Without one the PostgreSQL variants fail, so that a
/// run never looks green without having tested them, unless `MAU_SKIP_PG=1` asks to skip
/// them (then `None`, after a notice).
pub fn pg_admin_url() -> Option<String> {
    if let Some(url) = std::env::var("MAU_TEST_PG_URL")
        .ok()
        .filter(|u| !u.is_empty())
    {
        return Some(url);
    }
    let skip = std::env::var("MAU_SKIP_PG").is_ok_and(|v| v == "1");
    let ci = std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0");
    assert!(
        skip && !ci,
        "MAU_TEST_PG_URL is not set: the PostgreSQL tests cannot run. `bash scripts/test.sh` \
         starts a throwaway cluster and sets it; MAU_SKIP_PG=1 skips them (not under CI)"
    );
    // Straight to stderr, past the test harness's capture, so the skip is seen.
    use std::io::Write;
    let _ = writeln!(
        std::io::stderr(),
        "SKIPPED: PostgreSQL variant not run (MAU_SKIP_PG=1)"
    );
    None
}

impl TestDb {
    pub fn sqlite() -> TestDb {
        let dir = tempfile::tempdir().unwrap();
        let arg = dir.path().join("c.db").to_str().unwrap().to_owned();
        TestDb {
            dir,
            arg,
            backend: Backend::Sqlite,
            pg: None,
        }
    }

    pub fn postgres() -> Option<TestDb> {
        pg_admin_url().map(|admin| TestDb::postgres_on(&admin))
    }

    /// A new, empty database on the cluster at `admin`.
    pub fn postgres_on(admin: &str) -> TestDb {
        static N: AtomicUsize = AtomicUsize::new(0);
        let name = format!(
            "mau_test_{}_{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        );
        pg_run(admin, &format!("CREATE DATABASE {name}"));
        let base = admin.rsplit_once('/').expect("URL with a database").0;
        TestDb {
            dir: tempfile::tempdir().unwrap(),
            arg: format!("{base}/{name}"),
            backend: Backend::Postgres,
            pg: Some((admin.to_owned(), name)),
        }
    }

    /// Runs statements on the database directly (not through the collector).
    pub fn execute(&self, sql: &str) {
        match self.backend {
            Backend::Sqlite => rusqlite::Connection::open(&self.arg)
                .unwrap()
                .execute_batch(sql)
                .unwrap(),
            Backend::Postgres => pg_run(&self.arg, sql),
        }
    }

    /// A query's single whole-number answer, read directly from the database.
    pub fn scalar(&self, sql: &str) -> i64 {
        match self.backend {
            Backend::Sqlite => rusqlite::Connection::open(&self.arg)
                .unwrap()
                .query_row(sql, [], |r| r.get(0))
                .unwrap(),
            Backend::Postgres => block_on(async {
                let client = pg_connect(&self.arg).await;
                client.query_one(sql, &[]).await.unwrap().get(0)
            }),
        }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Some((admin, name)) = &self.pg {
            let sql = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
            // Best effort: the cluster may be stopped, and is thrown away anyway.
            let _ = std::panic::catch_unwind(|| pg_run(admin, &sql));
        }
    }
}

fn block_on<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

async fn pg_connect(url: &str) -> tokio_postgres::Client {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap_or_else(|e| panic!("cannot connect to the test PostgreSQL: {e}"));
    tokio::spawn(conn);
    client
}

fn pg_run(url: &str, sql: &str) {
    block_on(async { pg_connect(url).await.batch_execute(sql).await.unwrap() })
}

/// A cluster of its own (for tests that stop PostgreSQL), from `scripts/pg.sh`; stopped
/// on drop. Runs only where the shared test cluster is configured.
pub struct PgCluster {
    dir: TempDir,
    pub admin_url: String,
    running: bool,
}

const PG_SH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/pg.sh");

impl PgCluster {
    pub fn start() -> Option<PgCluster> {
        PgCluster::start_with(&[])
    }

    /// With `ssl=on` and the certificates `pg.sh` makes (see `tls_file`).
    pub fn start_tls() -> Option<PgCluster> {
        PgCluster::start_with(&["tls"])
    }

    fn start_with(extra: &[&str]) -> Option<PgCluster> {
        pg_admin_url()?;
        let dir = tempfile::tempdir().unwrap();
        let mut c = PgCluster {
            dir,
            admin_url: String::new(),
            running: false,
        };
        c.admin_url = c.pg_sh(&[&["start"], extra].concat());
        c.running = true;
        Some(c)
    }

    fn pg_sh(&self, args: &[&str]) -> String {
        let out = Command::new("bash")
            .arg(PG_SH)
            .arg(args[0])
            .arg(self.dir.path())
            .args(&args[1..])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "pg.sh {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    }

    /// A file of a TLS cluster: `ca.crt`, `other-ca.crt` (did not sign the server's).
    pub fn tls_file(&self, name: &str) -> String {
        let path = self.dir.path().join("tls").join(name);
        assert!(path.is_file(), "{} is missing", path.display());
        path.to_str().unwrap().to_owned()
    }

    /// `immediate` is a crash: no checkpoint, recovery from the WAL at the next start.
    pub fn stop(&mut self, mode: &str) {
        self.pg_sh(&["stop", mode]);
        self.running = false;
    }

    /// Starts again on the same port, so clients' URLs stay valid.
    pub fn restart(&mut self) {
        self.pg_sh(&["start"]);
        self.running = true;
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        if self.running {
            let _ = Command::new("bash")
                .arg(PG_SH)
                .arg("stop")
                .arg(self.dir.path())
                .arg("immediate")
                .output();
        }
    }
}
