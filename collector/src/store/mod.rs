//! Storage behind one interface, two implementations: SQLite (one file, the default) and
//! PostgreSQL (several collector instances on one database). Knows nothing of HTTP.
//!
//! Both promise the same: `insert` returns only after the commit is durable; an `event_id`
//! is stored once (a unique key and an insert that ignores conflicts); concurrent requests
//! share one transaction (group commit); exports stream in bounded batches.
//!
//! A new kind of record (say, a log of issued tokens) is a migration in `schema`, a method
//! on `Store`, and its statement in each backend; writes that must be acknowledged only
//! after the commit go through the same group writer (its job type gains a variant).

mod postgres;
pub mod schema;
mod sqlite;

use crate::month::Month;
use crate::wire::Record;
use serde::Serialize;
use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

/// Most requests folded into one transaction.
const MAX_GROUP: usize = 512;
/// Rows per batch of an export (and per fetch from a PostgreSQL cursor).
const EXPORT_BATCH: usize = 1000;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database cannot be reached or is restarting: worth a retry later.
    #[error("the database is unavailable: {0}")]
    Unavailable(String),
    /// More writes waiting than the queue holds.
    #[error("the write queue is full")]
    Busy,
    #[error(
        "database schema version {found} is newer than this mau-collector knows ({known}); \
         upgrade mau-collector or point it at another database"
    )]
    NewerSchema { found: i64, known: i64 },
    #[error(
        "{what} has schema version {found}, this mau-collector needs {known}; \
         run `mau-collector serve` once against it to migrate"
    )]
    OlderSchema {
        found: i64,
        known: i64,
        what: String,
    },
    #[error("{0} is not a mau-collector database")]
    Foreign(String),
    #[error("no database at {0}")]
    Missing(String),
    #[error("{0}")]
    Config(String),
    #[error("database error: {0}")]
    Backend(String),
}

/// Where the data lives: a `postgres://` or `postgresql://` URL, or else a SQLite file path.
#[derive(Clone, PartialEq, Eq)]
pub enum Db {
    Sqlite(PathBuf),
    Postgres(String),
}

impl FromStr for Db {
    type Err = String;

    fn from_str(s: &str) -> Result<Db, String> {
        if s.starts_with("postgres://") || s.starts_with("postgresql://") {
            s.parse::<tokio_postgres::Config>()
                .map_err(|e| format!("bad PostgreSQL URL: {e}"))?;
            Ok(Db::Postgres(s.to_owned()))
        } else if s.is_empty() {
            Err("the database path is empty".into())
        } else {
            Ok(Db::Sqlite(s.into()))
        }
    }
}

/// Never prints a password: PostgreSQL shows as `postgres://host:port/dbname`.
impl fmt::Display for Db {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Db::Sqlite(p) => write!(f, "{}", p.display()),
            Db::Postgres(url) => {
                let Ok(c) = url.parse::<tokio_postgres::Config>() else {
                    return f.write_str("postgres://?");
                };
                let host = match c.get_hosts().first() {
                    Some(tokio_postgres::config::Host::Tcp(h)) => h.clone(),
                    Some(tokio_postgres::config::Host::Unix(p)) => p.display().to_string(),
                    None => "localhost".into(),
                };
                let port = c.get_ports().first().copied().unwrap_or(5432);
                write!(
                    f,
                    "postgres://{host}:{port}/{}",
                    c.get_dbname().unwrap_or("")
                )
            }
        }
    }
}

impl fmt::Debug for Db {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Db({self})")
    }
}

/// Tuning for `Store::open`.
#[derive(Debug, Clone)]
pub struct Options {
    /// Most write requests waiting; past it, `insert` answers `Busy`.
    pub queue: usize,
    /// PostgreSQL: most connections per instance.
    pub pool_size: usize,
    /// PostgreSQL: longest wait for a connection (or for a new one to connect).
    pub pool_wait: Duration,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            queue: 1024,
            pool_size: 16,
            pool_wait: Duration::from_secs(2),
        }
    }
}

/// One identity's line in a month.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IdentityRow {
    pub identity: String,
    pub first_seen: String,
    pub last_seen: String,
    pub connects: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub month: String,
    pub unique_identities: i64,
    pub connects: i64,
    pub first_seen: Option<String>,
    pub last_seen: Option<String>,
}

/// A write waiting for its group's commit.
struct WriteJob {
    records: Vec<Record>,
    done: oneshot::Sender<Result<(), StoreError>>,
}

/// Sends the jobs' records to the group writer and waits for the commit.
async fn submit(
    tx: &Option<mpsc::Sender<WriteJob>>,
    records: Vec<Record>,
) -> Result<(), StoreError> {
    let Some(tx) = tx else {
        return Err(StoreError::Config("this store was opened read-only".into()));
    };
    let (done, wait) = oneshot::channel();
    tx.try_send(WriteJob { records, done })
        .map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => StoreError::Busy,
            mpsc::error::TrySendError::Closed(_) => StoreError::Backend("writer stopped".into()),
        })?;
    wait.await
        .unwrap_or_else(|_| Err(StoreError::Backend("writer stopped".into())))
}

/// Answers every job of a group with the same result.
fn settle(jobs: Vec<WriteJob>, result: Result<(), StoreError>) {
    for job in jobs {
        let r = match &result {
            Ok(()) => Ok(()),
            Err(e) => Err(e.clone_for_job()),
        };
        // The requester may have gone away; the data is stored regardless.
        let _ = job.done.send(r);
    }
}

impl StoreError {
    /// One error answers many requests of a group.
    fn clone_for_job(&self) -> StoreError {
        match self {
            StoreError::Unavailable(m) => StoreError::Unavailable(m.clone()),
            StoreError::Busy => StoreError::Busy,
            other => StoreError::Backend(other.to_string()),
        }
    }
}

/// A month's identities in identity order, arriving in batches from a producer that holds
/// the database cursor; at most two batches wait, so memory stays flat.
pub struct Rows {
    first: Option<Vec<IdentityRow>>,
    rx: mpsc::Receiver<Result<Vec<IdentityRow>, StoreError>>,
}

impl Rows {
    /// Waits for the first batch, so a failing query is an error here, before any answer.
    async fn start(
        mut rx: mpsc::Receiver<Result<Vec<IdentityRow>, StoreError>>,
    ) -> Result<Rows, StoreError> {
        let first = match rx.recv().await {
            Some(r) => Some(r?),
            None => None,
        };
        Ok(Rows { first, rx })
    }

    /// The next batch; `None` at the end. An error means the export is incomplete.
    pub async fn next(&mut self) -> Option<Result<Vec<IdentityRow>, StoreError>> {
        match self.first.take() {
            Some(b) => Some(Ok(b)),
            None => self.rx.recv().await,
        }
    }
}

/// Handle to the storage; cloning is cheap.
#[derive(Clone)]
pub enum Store {
    Sqlite(sqlite::SqliteStore),
    Postgres(postgres::PgStore),
}

impl Store {
    /// Opens the database (creating a SQLite file if missing), applies pending migrations
    /// under a lock, and starts the group writer.
    pub async fn open(db: &Db, opts: &Options) -> Result<Store, StoreError> {
        Ok(match db {
            Db::Sqlite(p) => Store::Sqlite(sqlite::SqliteStore::open(p.clone(), opts).await?),
            Db::Postgres(u) => Store::Postgres(postgres::PgStore::open(u, opts, true).await?),
        })
    }

    /// For reading an existing database (the CLI): nothing is created or migrated.
    pub async fn open_existing(db: &Db) -> Result<Store, StoreError> {
        Ok(match db {
            Db::Sqlite(p) => Store::Sqlite(sqlite::SqliteStore::open_existing(p.clone()).await?),
            Db::Postgres(u) => {
                let opts = Options {
                    pool_size: 2,
                    ..Options::default()
                };
                Store::Postgres(postgres::PgStore::open(u, &opts, false).await?)
            }
        })
    }

    pub fn backend(&self) -> &'static str {
        match self {
            Store::Sqlite(_) => "sqlite",
            Store::Postgres(_) => "postgres",
        }
    }

    /// Stores the records of one request; returns once they are committed.
    pub async fn insert(&self, records: Vec<Record>) -> Result<(), StoreError> {
        match self {
            Store::Sqlite(s) => submit(&s.writer, records).await,
            Store::Postgres(s) => submit(&s.writer, records).await,
        }
    }

    pub async fn summary(&self, month: Month) -> Result<Summary, StoreError> {
        match self {
            Store::Sqlite(s) => s.summary(month).await,
            Store::Postgres(s) => s.summary(month).await,
        }
    }

    /// Every month that has data, newest first.
    pub async fn months(&self) -> Result<Vec<Summary>, StoreError> {
        match self {
            Store::Sqlite(s) => s.months().await,
            Store::Postgres(s) => s.months().await,
        }
    }

    /// Streams a month's identities in identity order.
    pub async fn identities(&self, month: Month) -> Result<Rows, StoreError> {
        let (tx, rx) = mpsc::channel(2);
        match self {
            Store::Sqlite(s) => s.identities(month, tx),
            Store::Postgres(s) => s.identities(month, tx),
        }
        Rows::start(rx).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn full_queue_is_busy_and_a_stopped_writer_an_error() {
        let (tx, rx) = mpsc::channel(1);
        let (done, _wait) = oneshot::channel();
        tx.try_send(WriteJob {
            records: vec![],
            done,
        })
        .unwrap();
        let tx = Some(tx);
        assert!(matches!(submit(&tx, vec![]).await, Err(StoreError::Busy)));
        drop(rx);
        assert!(matches!(
            submit(&tx, vec![]).await,
            Err(StoreError::Backend(_))
        ));
        assert!(matches!(
            submit(&None, vec![]).await,
            Err(StoreError::Config(_))
        ));
    }

    #[test]
    fn db_kind_from_the_value() {
        assert_eq!(
            "data/mau.db".parse::<Db>().unwrap(),
            Db::Sqlite("data/mau.db".into())
        );
        for url in [
            "postgres://mau@127.0.0.1:5432/mau",
            "postgresql://mau:secret@db.example:6543/audit",
        ] {
            assert!(matches!(url.parse::<Db>(), Ok(Db::Postgres(_))), "{url}");
        }
        assert!("".parse::<Db>().is_err());
        let shown = "postgresql://mau:secret@db.example:6543/audit"
            .parse::<Db>()
            .unwrap()
            .to_string();
        assert_eq!(shown, "postgres://db.example:6543/audit");
        assert!(!format!("{:?}", "postgres://u:pw@h/d".parse::<Db>().unwrap()).contains("pw"));
    }
}
