//! SQLite storage: one writer thread with group commit, and short-lived read connections.
//!
//! Durability: WAL with `synchronous=FULL`, so a commit is fsynced before the writer
//! answers, and an HTTP 2xx is only sent after that answer. Requests that arrive while a
//! commit is in flight are gathered into the next transaction (group commit), which keeps
//! the fsync count low under load.

use crate::error::ApiError;
use crate::wire::{format_time, Month, Record};
use rusqlite::{params, Connection, OpenFlags, OptionalExtension};
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

/// Most requests folded into one transaction.
const MAX_GROUP: usize = 512;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS events (
    event_id       TEXT PRIMARY KEY,
    identity       TEXT NOT NULL,
    month          TEXT NOT NULL,  -- UTC month of event_at (what counts)
    client_month   TEXT NOT NULL,  -- the device's month field, kept for audit
    occurred_at    TEXT NOT NULL,  -- device clock
    sent_at        TEXT NOT NULL,  -- device clock, of the attempt that got stored
    received_at    TEXT NOT NULL,  -- collector clock
    event_at       TEXT NOT NULL,  -- received_at - (sent_at - occurred_at)
    attempt        INTEGER NOT NULL,
    dedupe         TEXT NOT NULL,
    sdk_name       TEXT NOT NULL,
    sdk_version    TEXT NOT NULL,
    client_version TEXT
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS identities (
    month      TEXT NOT NULL,
    identity   TEXT NOT NULL,
    first_seen TEXT NOT NULL,
    last_seen  TEXT NOT NULL,
    connects   INTEGER NOT NULL,
    PRIMARY KEY (month, identity)
) WITHOUT ROWID;
";

const INSERT_EVENT: &str = "INSERT OR IGNORE INTO events
    (event_id, identity, month, client_month, occurred_at, sent_at, received_at, event_at,
     attempt, dedupe, sdk_name, sdk_version, client_version)
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)";

const UPSERT_IDENTITY: &str =
    "INSERT INTO identities (month, identity, first_seen, last_seen, connects)
    VALUES (?1, ?2, ?3, ?3, 1)
    ON CONFLICT (month, identity) DO UPDATE SET
        first_seen = min(first_seen, excluded.first_seen),
        last_seen = max(last_seen, excluded.last_seen),
        connects = connects + 1";

#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("cannot open the database: {0}")]
    Sql(#[from] rusqlite::Error),
    #[error("cannot start the writer thread: {0}")]
    Thread(std::io::Error),
}

struct WriteJob {
    records: Vec<Record>,
    done: oneshot::Sender<Result<(), String>>,
}

/// Handle to the writer thread. Cloning is cheap; the thread stops when all handles drop.
#[derive(Clone)]
pub struct Store {
    tx: mpsc::Sender<WriteJob>,
    path: PathBuf,
}

impl Store {
    /// Opens (creating if needed) the database and starts the writer thread.
    /// `queue` bounds the requests waiting for the writer; past it, callers get `Overloaded`.
    pub fn open(path: &Path, queue: usize) -> Result<Store, OpenError> {
        let mut conn = Connection::open(path)?;
        conn.busy_timeout(Duration::from_secs(5))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.execute_batch(SCHEMA)?;
        let (tx, mut rx) = mpsc::channel::<WriteJob>(queue.max(1));
        std::thread::Builder::new()
            .name("sqlite-writer".into())
            .spawn(move || {
                while let Some(first) = rx.blocking_recv() {
                    let mut jobs = vec![first];
                    while jobs.len() < MAX_GROUP {
                        match rx.try_recv() {
                            Ok(job) => jobs.push(job),
                            Err(_) => break,
                        }
                    }
                    let result = write_group(&mut conn, &jobs).map_err(|e| e.to_string());
                    for job in jobs {
                        // The requester may have gone away; the data is stored regardless.
                        let _ = job.done.send(result.clone());
                    }
                }
            })
            .map_err(OpenError::Thread)?;
        Ok(Store {
            tx,
            path: path.to_owned(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Stores the records of one request in one transaction; returns once committed.
    pub async fn insert(&self, records: Vec<Record>) -> Result<(), ApiError> {
        let (done, wait) = oneshot::channel();
        self.tx
            .try_send(WriteJob { records, done })
            .map_err(|e| match e {
                mpsc::error::TrySendError::Full(_) => ApiError::Overloaded,
                mpsc::error::TrySendError::Closed(_) => ApiError::Storage("writer stopped".into()),
            })?;
        match wait.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(ApiError::Storage(e)),
            Err(_) => Err(ApiError::Storage("writer stopped".into())),
        }
    }
}

fn write_group(conn: &mut Connection, jobs: &[WriteJob]) -> rusqlite::Result<()> {
    let tx = conn.transaction()?;
    {
        let mut insert = tx.prepare_cached(INSERT_EVENT)?;
        let mut upsert = tx.prepare_cached(UPSERT_IDENTITY)?;
        for r in jobs.iter().flat_map(|j| &j.records) {
            let b = &r.beacon;
            let month = r.month.to_string();
            let event_at = format_time(r.event_at);
            let inserted = insert.execute(params![
                b.event_id,
                b.identity,
                month,
                b.client_month.to_string(),
                format_time(b.occurred_at),
                format_time(b.sent_at),
                format_time(r.received_at),
                event_at,
                b.attempt,
                b.dedupe,
                b.sdk_name,
                b.sdk_version,
                b.client_version,
            ])?;
            // A known event_id is a retry: counted once.
            if inserted == 1 {
                upsert.execute(params![month, b.identity, event_at])?;
            }
        }
    }
    tx.commit()
}

/// Opens an existing database for reading (fails if it does not exist).
pub fn open_reader(path: &Path) -> rusqlite::Result<Connection> {
    // Read-write flags (without CREATE) so a WAL database opens even when its -shm
    // file is missing; query_only keeps this connection from writing.
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_NO_MUTEX
        | OpenFlags::SQLITE_OPEN_URI;
    let conn = Connection::open_with_flags(path, flags)?;
    conn.busy_timeout(Duration::from_secs(5))?;
    conn.pragma_update(None, "query_only", true)?;
    Ok(conn)
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

pub fn summary(conn: &Connection, month: Month) -> rusqlite::Result<Summary> {
    let month = month.to_string();
    conn.query_row(
        "SELECT count(*), coalesce(sum(connects), 0), min(first_seen), max(last_seen)
         FROM identities WHERE month = ?1",
        [&month],
        |r| {
            Ok(Summary {
                month: month.clone(),
                unique_identities: r.get(0)?,
                connects: r.get(1)?,
                first_seen: r.get(2)?,
                last_seen: r.get(3)?,
            })
        },
    )
}

/// Every month that has data, newest first, with its summary.
pub fn months(conn: &Connection) -> rusqlite::Result<Vec<Summary>> {
    let mut stmt = conn.prepare(
        "SELECT month, count(*), sum(connects), min(first_seen), max(last_seen)
         FROM identities GROUP BY month ORDER BY month DESC",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok(Summary {
            month: r.get(0)?,
            unique_identities: r.get(1)?,
            connects: r.get(2)?,
            first_seen: r.get(3)?,
            last_seen: r.get(4)?,
        })
    })?;
    rows.collect()
}

/// Calls `each` for every identity of `month`, in identity order, one row at a time
/// (nothing is gathered in memory). Stops at the first error from `each`.
pub fn for_each_identity<E: From<rusqlite::Error>>(
    conn: &Connection,
    month: Month,
    mut each: impl FnMut(IdentityRow) -> Result<(), E>,
) -> Result<u64, E> {
    let mut stmt = conn.prepare(
        "SELECT identity, first_seen, last_seen, connects FROM identities
         WHERE month = ?1 ORDER BY identity",
    )?;
    let mut rows = stmt.query([month.to_string()])?;
    let mut n = 0;
    while let Some(r) = rows.next()? {
        each(IdentityRow {
            identity: r.get(0)?,
            first_seen: r.get(1)?,
            last_seen: r.get(2)?,
            connects: r.get(3)?,
        })?;
        n += 1;
    }
    Ok(n)
}

/// Whether a database has the collector's tables (so a read of a wrong file says so).
pub fn check_schema(conn: &Connection) -> rusqlite::Result<bool> {
    conn.query_row(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'identities'",
        [],
        |_| Ok(()),
    )
    .optional()
    .map(|o| o.is_some())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::parse_body;
    use serde_json::json;
    use time::macros::datetime;

    fn beacon(identity: &str, event_id: &str) -> Vec<u8> {
        json!({
            "v": 1, "kind": "connected", "identity": identity, "event_id": event_id,
            "month": "2026-11", "occurred_at": "2026-11-24T20:08:52.123Z",
            "sent_at": "2026-11-24T20:08:52.140Z", "attempt": 1, "dedupe": "none",
            "sdk": {"name": "mau-beacon", "version": "0.1.0"}
        })
        .to_string()
        .into_bytes()
    }

    #[tokio::test]
    async fn counts_distinct_events_per_identity_and_month() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let store = Store::open(&path, 8).unwrap();
        let t1 = datetime!(2026-11-24 20:08:53 UTC);
        let t2 = datetime!(2026-11-25 10:00:00 UTC);
        let t3 = datetime!(2026-12-01 0:00:00.010 UTC);
        for (body, at) in [
            (beacon("alice", "e1"), t1),
            (beacon("alice", "e1"), t2), // retry: ignored
            (beacon("alice", "e2"), t2),
            (beacon("bob", "e3"), t1),
            (beacon("bob", "e4"), t3), // derived time 2026-11-30T23:59:59.993Z
            (beacon("bob", "e5"), t3 + time::Duration::seconds(1)), // December
        ] {
            store.insert(parse_body(&body, at).unwrap()).await.unwrap();
        }
        let conn = open_reader(&path).unwrap();
        assert!(check_schema(&conn).unwrap());
        let nov = Month::parse("2026-11").unwrap();
        let s = summary(&conn, nov).unwrap();
        assert_eq!((s.unique_identities, s.connects), (2, 4));
        assert_eq!(s.first_seen.as_deref(), Some("2026-11-24T20:08:52.983Z"));
        assert_eq!(s.last_seen.as_deref(), Some("2026-11-30T23:59:59.993Z"));
        let mut rows = vec![];
        for_each_identity::<rusqlite::Error>(&conn, nov, |r| {
            rows.push(r);
            Ok(())
        })
        .unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!((rows[0].identity.as_str(), rows[0].connects), ("alice", 2));
        assert_eq!(rows[0].last_seen, "2026-11-25T09:59:59.983Z");
        assert_eq!((rows[1].identity.as_str(), rows[1].connects), ("bob", 2));
        let all = months(&conn).unwrap();
        assert_eq!(
            all.iter().map(|m| m.month.as_str()).collect::<Vec<_>>(),
            ["2026-12", "2026-11"]
        );
    }

    #[tokio::test]
    async fn full_queue_is_overload() {
        // A store whose writer never runs: the second request finds the queue full.
        let (tx, _rx) = mpsc::channel(1);
        let store = Store {
            tx,
            path: PathBuf::new(),
        };
        let recs = parse_body(&beacon("a", "e"), datetime!(2026-11-24 20:08:53 UTC)).unwrap();
        let s2 = store.clone();
        let r2 = recs.clone();
        let first = tokio::spawn(async move { s2.insert(r2).await });
        tokio::task::yield_now().await;
        while store.tx.capacity() > 0 {
            tokio::task::yield_now().await;
        }
        assert!(matches!(
            store.insert(recs).await,
            Err(ApiError::Overloaded)
        ));
        first.abort();
    }

    #[test]
    fn reader_fails_on_a_missing_file() {
        let dir = tempfile::tempdir().unwrap();
        assert!(open_reader(&dir.path().join("nope.db")).is_err());
    }
}
