//! SQLite: one writer thread with group commit, and short-lived read connections.
//!
//! Durability: WAL with `synchronous=FULL`, so a commit is fsynced before the writer
//! answers. Requests that arrive while a commit is in flight are gathered into the next
//! transaction (group commit), which keeps the fsync count low under load.

use super::copy::{Cell, Dialect, Table};
use super::schema::{self, MIGRATIONS};
use super::{
    settle, sighting_row, ActivityRow, Billed, Conflicts, ContextRow, Erased, IdentityRow,
    MonthLine, Options, StoreError, SubjectKind, Summary, TokenIdentity, Write, WriteJob,
    EXPORT_BATCH, MAX_GROUP, STILL_SOURCE,
};
use crate::month::Month;
use crate::wire::{format_time, Kind};
use rusqlite::{params, Connection, ErrorCode, OpenFlags, OptionalExtension, TransactionBehavior};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::sync::mpsc;

const INSERT_EVENT: &str = "INSERT INTO events
    (event_id, identity, month, client_month, occurred_at, sent_at, received_at, event_at,
     attempt, dedupe, sdk_name, sdk_version, client_version, kind, context, reason)
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)
    ON CONFLICT (event_id) DO NOTHING";

const UPSERT_IDENTITY: &str =
    "INSERT INTO identities (month, identity, first_seen, last_seen, connects)
    VALUES (?1, ?2, ?3, ?3, 1)
    ON CONFLICT (month, identity) DO UPDATE SET
        first_seen = min(first_seen, excluded.first_seen),
        last_seen = max(last_seen, excluded.last_seen),
        connects = connects + 1";

/// The reason follows the earliest connect: an earlier event arriving late replaces it. At
/// equal times the smaller reason (NULL last) wins, as on PostgreSQL and in `copy`.
const UPSERT_CONTEXT: &str =
    "INSERT INTO subject_contexts (month, identity, context, first_seen, reason, beacons)
    VALUES (?1, ?2, ?3, ?4, ?5, 1)
    ON CONFLICT (month, identity, context) DO UPDATE SET
        reason = CASE WHEN (excluded.first_seen, coalesce(excluded.reason, '~'))
            < (first_seen, coalesce(reason, '~')) THEN excluded.reason ELSE reason END,
        first_seen = min(first_seen, excluded.first_seen),
        beacons = beacons + 1";

const STORED_EVENT: &str = "SELECT identity, month FROM events WHERE event_id = ?1";

const INSERT_TOKEN: &str = "INSERT INTO tokens
    (token_key, identity, month, issued_at, expires_at, received_at)
    VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (token_key) DO NOTHING";

const INSERT_KEY: &str =
    "INSERT INTO delivery_keys (key, seen_at) VALUES (?1, ?2) ON CONFLICT (key) DO NOTHING";

const UPSERT_SIGHTING: &str =
    "INSERT INTO sightings (month, subject_kind, subject, source, first_seen, last_seen, hits)
    VALUES (?1, ?2, ?3, ?4, ?5, ?5, 1)
    ON CONFLICT (month, subject_kind, subject, source) DO UPDATE SET
        first_seen = min(first_seen, excluded.first_seen),
        last_seen = max(last_seen, excluded.last_seen),
        hits = hits + 1";

const DIALECT: Dialect = Dialect {
    param: |n| format!("?{n}"),
    least: "min",
    greatest: "max",
    binary: "",
};

impl rusqlite::ToSql for Cell {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        match self {
            Cell::Text(t) => t.to_sql(),
            Cell::Int(n) => n.to_sql(),
        }
    }
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> StoreError {
        match e.sqlite_error_code() {
            Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => {
                StoreError::Unavailable(e.to_string())
            }
            _ => StoreError::Backend(e.to_string()),
        }
    }
}

#[derive(Clone)]
pub struct SqliteStore {
    pub(super) writer: Option<mpsc::Sender<WriteJob>>,
    path: PathBuf,
    /// The file opened, to notice it being deleted or replaced under us.
    file: Option<FileId>,
}

/// A file's identity: device and inode.
type FileId = (u64, u64);

#[cfg(unix)]
fn file_id(path: &Path) -> std::io::Result<FileId> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(path)?;
    Ok((m.dev(), m.ino()))
}

#[cfg(not(unix))]
fn file_id(path: &Path) -> std::io::Result<FileId> {
    std::fs::metadata(path).map(|_| (0, 0))
}

/// Is the path still the file opened? One `stat`, so cheap enough for every commit.
fn same_file(path: &Path, opened: FileId) -> Result<(), StoreError> {
    match file_id(path) {
        Ok(id) if id == opened => Ok(()),
        _ => Err(StoreError::Replaced(path.display().to_string())),
    }
}

/// `PRAGMA quick_check` (O(N), no index-content check): refuses a damaged file at start-up.
fn quick_check(conn: &Connection, path: &Path) -> Result<(), StoreError> {
    let damaged = |detail: String| StoreError::Damaged {
        path: path.display().to_string(),
        detail,
    };
    let mut stmt = conn
        .prepare("PRAGMA quick_check(5)")
        .map_err(|e| damaged(e.to_string()))?;
    let lines: Vec<String> = stmt
        .query_map([], |r| r.get(0))
        .and_then(|rows| rows.collect())
        .map_err(|e| damaged(e.to_string()))?;
    if lines != ["ok"] {
        return Err(damaged(lines.join("; ")));
    }
    Ok(())
}

/// Prepares every statement the collector runs: a table or column that is not what this
/// build expects is found here, at start-up, not at the first beacon.
fn check_shape(conn: &Connection, path: &Path) -> Result<(), StoreError> {
    for sql in [
        INSERT_EVENT,
        UPSERT_IDENTITY,
        STORED_EVENT,
        INSERT_TOKEN,
        INSERT_KEY,
        UPSERT_SIGHTING,
        UPSERT_CONTEXT,
        CONTEXTS,
        CONTEXT_TOTALS,
        DELETE_CONTEXTS,
        SUMMARY,
        MONTHS,
        ACTIVITY,
        IDENTITIES,
        TOKENS,
        BILLED,
        UPSERT_BILLED,
        DELETE_BILLED,
        SUBJECT_MONTHS,
        DELETE_EVENTS,
        DELETE_IDENTITIES,
        DELETE_TOKENS,
        DELETE_SIGHTINGS,
        COUNT_ERASED,
        ERASED,
        SUBJECTS,
    ] {
        conn.prepare(sql).map_err(|e| StoreError::WrongShape {
            what: path.display().to_string(),
            detail: e.to_string(),
        })?;
    }
    Ok(())
}

impl SqliteStore {
    pub async fn open(path: PathBuf, opts: &Options) -> Result<SqliteStore, StoreError> {
        let p = path.clone();
        let (conn, file) = blocking(move || {
            let mut conn = Connection::open(&p)?;
            conn.busy_timeout(Duration::from_secs(5))?;
            quick_check(&conn, &p)?;
            conn.pragma_update(None, "journal_mode", "WAL")?;
            conn.pragma_update(None, "synchronous", "FULL")?;
            migrate(&mut conn, &p)?;
            check_shape(&conn, &p)?;
            let file = file_id(&p).map_err(|e| StoreError::Backend(e.to_string()))?;
            Ok((conn, file))
        })
        .await?;
        let (tx, rx) = mpsc::channel::<WriteJob>(opts.queue.max(1));
        let p = path.clone();
        std::thread::Builder::new()
            .name("sqlite-writer".into())
            .spawn(move || writer(conn, rx, &p, file))
            .map_err(|e| StoreError::Backend(format!("cannot start the writer thread: {e}")))?;
        Ok(SqliteStore {
            writer: Some(tx),
            path,
            file: Some(file),
        })
    }

    pub async fn open_existing(path: PathBuf) -> Result<SqliteStore, StoreError> {
        let p = path.clone();
        blocking(move || {
            if !p.exists() {
                return Err(StoreError::Missing(p.display().to_string()));
            }
            let conn = open_reader(&p)?;
            quick_check(&conn, &p)?;
            schema::check_current(version(&conn)?, &p.display().to_string())?;
            check_shape(&conn, &p)
        })
        .await?;
        Ok(SqliteStore {
            writer: None,
            path,
            file: None,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn health(&self) -> Result<(), StoreError> {
        match self.file {
            Some(id) => same_file(&self.path, id),
            None => Ok(()),
        }
    }

    /// The newest migration applied.
    pub async fn schema_version(&self) -> Result<i64, StoreError> {
        self.read(|c| {
            c.query_row(
                "SELECT coalesce(max(version), 0) FROM schema_version",
                [],
                |r| r.get(0),
            )
        })
        .await
    }

    pub async fn summary(&self, month: Month) -> Result<Summary, StoreError> {
        self.read(move |c| summary(c, month)).await
    }

    pub async fn months(&self) -> Result<Vec<MonthLine>, StoreError> {
        self.read(months).await
    }

    pub async fn billed(&self, month: Month) -> Result<Option<Billed>, StoreError> {
        self.read(move |c| {
            c.query_row(BILLED, [month.to_string()], |r| {
                Ok(Billed::stored(r.get(0)?, r.get(1)?, r.get(2)?))
            })
            .optional()
        })
        .await
    }

    pub async fn set_billed(
        &self,
        month: Month,
        count: i64,
        from: &str,
        at: &str,
    ) -> Result<(), StoreError> {
        let (from, at) = (from.to_owned(), at.to_owned());
        self.write_direct(move |c| {
            c.execute(UPSERT_BILLED, params![month.to_string(), count, from, at])
                .map(drop)
        })
        .await
    }

    pub async fn clear_billed(&self, month: Month) -> Result<(), StoreError> {
        self.write_direct(move |c| c.execute(DELETE_BILLED, [month.to_string()]).map(drop))
            .await
    }

    /// One transaction that takes the write lock first (`BEGIN IMMEDIATE`), so it waits
    /// behind a group commit rather than failing half-way.
    pub async fn forget(&self, kind: SubjectKind, subject: String) -> Result<Erased, StoreError> {
        self.write_direct(move |c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let args = params![subject, kind.as_str()];
            let months: Vec<String> = tx
                .prepare(SUBJECT_MONTHS)?
                .query_map(args, |r| r.get(0))?
                .collect::<rusqlite::Result<_>>()?;
            let erased = Erased {
                events: tx.execute(DELETE_EVENTS, args)? as u64,
                identities: tx.execute(DELETE_IDENTITIES, args)? as u64,
                tokens: tx.execute(DELETE_TOKENS, args)? as u64,
                sightings: tx.execute(DELETE_SIGHTINGS, args)? as u64,
                contexts: tx.execute(DELETE_CONTEXTS, args)? as u64,
                months,
            };
            for m in &erased.months {
                tx.execute(COUNT_ERASED, [m])?;
            }
            tx.commit()?;
            Ok(erased)
        })
        .await
    }

    pub async fn backup(&self, to: PathBuf) -> Result<u64, StoreError> {
        let path = self.path.clone();
        blocking(move || {
            if to.exists() {
                return Err(StoreError::Config(format!(
                    "{} exists; the backup goes to a new file",
                    to.display()
                )));
            }
            let mut partial = to.clone().into_os_string();
            partial.push(".partial");
            let partial = PathBuf::from(partial);
            let io = |e: std::io::Error| StoreError::Backend(format!("backup: {e}"));
            if partial.exists() {
                std::fs::remove_file(&partial).map_err(io)?;
            }
            let target = partial
                .to_str()
                .ok_or_else(|| StoreError::Config("the backup path is not UTF-8".into()))?;
            // One read transaction: a snapshot, while the writer goes on committing.
            open_conn(&path, false)?.execute("VACUUM INTO ?1", [target])?;
            std::fs::File::open(&partial)
                .and_then(|f| f.sync_all())
                .map_err(io)?;
            quick_check(&open_reader(&partial)?, &partial)?;
            std::fs::rename(&partial, &to).map_err(io)?;
            if let Some(dir) = to.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::File::open(dir)
                    .and_then(|d| d.sync_all())
                    .map_err(io)?;
            }
            Ok(std::fs::metadata(&to).map_err(io)?.len())
        })
        .await
    }

    pub async fn count_before(&self, sql: String, cutoff: String) -> Result<u64, StoreError> {
        self.read(move |c| c.query_row(&sql, [cutoff], |r| r.get::<_, i64>(0)))
            .await
            .map(|n| n.max(0) as u64)
    }

    pub async fn delete_before(
        &self,
        sql: String,
        cutoff: String,
        limit: i64,
    ) -> Result<u64, StoreError> {
        self.write_direct(move |c| c.execute(&sql, params![cutoff, limit]))
            .await
            .map(|n| n as u64)
    }

    pub async fn subjects(&self) -> Result<Vec<(String, String)>, StoreError> {
        self.read(|c| {
            c.prepare(SUBJECTS)?
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect()
        })
        .await
    }

    pub async fn contexts(&self, month: Month) -> Result<Vec<ContextRow>, StoreError> {
        self.read(move |c| {
            c.prepare(CONTEXTS)?
                .query_map([month.to_string()], |r| {
                    Ok(ContextRow::stored(
                        r.get(0)?,
                        r.get(1)?,
                        r.get(2)?,
                        r.get(3)?,
                        r.get(4)?,
                    ))
                })?
                .collect()
        })
        .await
    }

    pub async fn context_totals(&self) -> Result<BTreeMap<String, (i64, i64)>, StoreError> {
        self.read(|c| {
            c.prepare(CONTEXT_TOTALS)?
                .query_map([], |r| Ok((r.get(0)?, (r.get(1)?, r.get(2)?))))?
                .collect()
        })
        .await
    }

    pub async fn erased(&self, month: Month) -> Result<i64, StoreError> {
        self.read(move |c| {
            c.query_row(ERASED, [month.to_string()], |r| r.get(0))
                .optional()
                .map(|n| n.unwrap_or(0))
        })
        .await
    }

    /// `copy`: the next batch of `table` after the key `after` (the start without one).
    pub async fn copy_read(
        &self,
        table: &'static Table,
        after: Option<Vec<Cell>>,
        limit: usize,
    ) -> Result<Vec<Vec<Cell>>, StoreError> {
        self.read(move |c| {
            let (sql, params) = table.query(&DIALECT, after, limit);
            let mut stmt = c.prepare(&sql)?;
            let rows = stmt.query_map(rusqlite::params_from_iter(params.iter()), |r| {
                table.decode(|i| r.get(i), |i| r.get(i))
            })?;
            rows.collect()
        })
        .await
    }

    /// `copy`: writes a batch in one transaction; the rows that were new or changed.
    pub async fn copy_write(
        &self,
        table: &'static Table,
        rows: Vec<Vec<Cell>>,
    ) -> Result<u64, StoreError> {
        self.write_direct(move |c| {
            let params: Vec<String> = (1..=table.columns.len()).map(DIALECT.param).collect();
            let sql = format!(
                "{}VALUES ({}) {}",
                table.insert_into(),
                params.join(", "),
                table.on_conflict(&DIALECT)
            );
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let mut n = 0;
            {
                let mut stmt = tx.prepare(&sql)?;
                for row in &rows {
                    n += stmt.execute(rusqlite::params_from_iter(row.iter()))? as u64;
                }
            }
            tx.commit()?;
            Ok(n)
        })
        .await
    }

    /// One statement written with `$n` parameters (as for PostgreSQL), on a connection of
    /// its own; the rows it changed.
    pub async fn execute(&self, sql: &'static str, params: Vec<Cell>) -> Result<u64, StoreError> {
        self.write_direct(move |c| {
            let sql = sql.replace('$', "?");
            Ok(c.execute(&sql, rusqlite::params_from_iter(params.iter()))? as u64)
        })
        .await
    }

    /// Work on a connection of its own, durable on return (`synchronous=FULL`); the busy
    /// timeout queues it behind a group commit in progress.
    async fn write_direct<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> rusqlite::Result<T> + Send + 'static,
    ) -> Result<T, StoreError> {
        self.health()?;
        let path = self.path.clone();
        blocking(move || {
            let mut conn = open_conn(&path, false)?;
            conn.pragma_update(None, "synchronous", "FULL")?;
            Ok(f(&mut conn)?)
        })
        .await
    }

    pub async fn activity(&self, month: Month) -> Result<Vec<ActivityRow>, StoreError> {
        self.read(move |c| {
            let mut stmt = c.prepare(ACTIVITY)?;
            let rows = stmt.query_map([month.to_string()], |r| {
                Ok(ActivityRow {
                    subject: r.get(0)?,
                    subject_kind: r.get(1)?,
                    source: r.get(2)?,
                    first_seen: r.get(3)?,
                    last_seen: r.get(4)?,
                    connects: r.get(5)?,
                })
            })?;
            rows.collect()
        })
        .await
    }

    pub async fn tokens(&self, month: Month) -> Result<Vec<TokenIdentity>, StoreError> {
        self.read(move |c| {
            let mut stmt = c.prepare(TOKENS)?;
            let rows = stmt.query_map([month.to_string()], |r| {
                Ok(TokenIdentity {
                    identity: r.get(0)?,
                    tokens: r.get(1)?,
                    first_issued: r.get(2)?,
                    last_issued: r.get(3)?,
                })
            })?;
            rows.collect()
        })
        .await
    }

    /// Reads on a blocking thread, sending batches until the receiver goes away.
    pub fn identities(&self, month: Month, tx: mpsc::Sender<Result<Vec<IdentityRow>, StoreError>>) {
        let path = self.path.clone();
        tokio::task::spawn_blocking(move || {
            let result = open_reader(&path)
                .map_err(StoreError::from)
                .and_then(|c| send_identities(&c, month, &tx));
            if let Err(e) = result {
                let _ = tx.blocking_send(Err(e));
            }
        });
    }

    /// Runs a short read on a blocking thread with its own connection.
    async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
    ) -> Result<T, StoreError> {
        let path = self.path.clone();
        blocking(move || Ok(f(&open_reader(&path)?)?)).await
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| StoreError::Backend(e.to_string()))?
}

/// Applies pending migrations; `BEGIN IMMEDIATE` takes the write lock before reading the
/// version, so two processes cannot both apply the same step.
fn migrate(conn: &mut Connection, path: &Path) -> Result<(), StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    // Another program's database (tables, none of ours) is refused, not added to.
    let tables: i64 = tx.query_row(
        "SELECT count(*) FROM sqlite_master WHERE type = 'table'",
        [],
        |r| r.get(0),
    )?;
    if tables > 0 {
        version(&tx).map_err(|e| match e {
            StoreError::Foreign(_) => StoreError::Foreign(path.display().to_string()),
            other => other,
        })?;
    }
    tx.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_version (
            version    INTEGER PRIMARY KEY,
            name       TEXT NOT NULL,
            applied_at TEXT NOT NULL
        )",
    )?;
    let current: i64 = tx.query_row(
        "SELECT coalesce(max(version), 0) FROM schema_version",
        [],
        |r| r.get(0),
    )?;
    for m in schema::pending(current)? {
        tx.execute_batch(m.sqlite)?;
        tx.execute(
            "INSERT INTO schema_version (version, name, applied_at) VALUES (?1, ?2, ?3)",
            params![
                m.version,
                m.name,
                format_time(time::OffsetDateTime::now_utc())
            ],
        )?;
        tracing::info!(version = m.version, name = m.name, "migration applied");
    }
    tx.commit()?;
    Ok(())
}

/// The schema version of an existing database, without writing. A mau-collector 0.1 file
/// (tables, no version table) has exactly the tables of version 1.
fn version(conn: &Connection) -> Result<i64, StoreError> {
    let has = |table: &str| -> rusqlite::Result<bool> {
        conn.query_row(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?1",
            [table],
            |_| Ok(()),
        )
        .optional()
        .map(|o| o.is_some())
    };
    if has("schema_version")? {
        Ok(conn.query_row(
            "SELECT coalesce(max(version), 0) FROM schema_version",
            [],
            |r| r.get(0),
        )?)
    } else if has("identities")? && has("events")? {
        Ok(MIGRATIONS[0].version)
    } else {
        let path = conn.path().unwrap_or("the file").to_owned();
        Err(StoreError::Foreign(path))
    }
}

/// Commits groups; after each commit, checks that the path still names the file written
/// to, so a deleted or swapped file is answered 503 rather than acknowledged into nowhere.
fn writer(mut conn: Connection, mut rx: mpsc::Receiver<WriteJob>, path: &Path, file: FileId) {
    let mut lost = false;
    while let Some(first) = rx.blocking_recv() {
        let mut jobs = vec![first];
        while jobs.len() < MAX_GROUP {
            match rx.try_recv() {
                Ok(job) => jobs.push(job),
                Err(_) => break,
            }
        }
        let started = std::time::Instant::now();
        let result = if lost {
            Err(StoreError::Replaced(path.display().to_string()))
        } else {
            write_group(&mut conn, &jobs)
                .map_err(StoreError::from)
                .and_then(|c| same_file(path, file).map(|()| c))
        };
        super::group_done(jobs.len(), started);
        if let Err(e @ StoreError::Replaced(_)) = &result {
            if !lost {
                tracing::error!(error = %e, "STORAGE LOST: answering 503 to every write until restarted");
            }
            lost = true;
        }
        settle(jobs, result);
    }
}

fn write_group(conn: &mut Connection, jobs: &[WriteJob]) -> rusqlite::Result<Vec<Conflicts>> {
    let tx = conn.transaction()?;
    let mut conflicts = Vec::with_capacity(jobs.len());
    let mut counts = super::BeaconCounts::default();
    for job in jobs {
        conflicts.push(Vec::new());
        match &job.write {
            Write::Beacons(records) => {
                *conflicts.last_mut().unwrap() = write_beacons(&tx, records, &mut counts)?
            }
            Write::Tokens(tokens) => {
                let mut insert = tx.prepare_cached(INSERT_TOKEN)?;
                for t in tokens {
                    insert.execute(params![
                        t.key,
                        t.identity,
                        t.month().to_string(),
                        format_time(t.issued_at),
                        t.expires_at.map(format_time),
                        format_time(t.received_at),
                    ])?;
                }
            }
            Write::Observations(observations) => {
                let mut key = tx.prepare_cached(INSERT_KEY)?;
                let mut upsert = tx.prepare_cached(UPSERT_SIGHTING)?;
                for o in observations {
                    if let Some(k) = &o.key {
                        let now = format_time(time::OffsetDateTime::now_utc());
                        if key.execute(params![k, now])? == 0 {
                            continue; // delivered before
                        }
                    }
                    for s in &o.sightings {
                        upsert.execute(sighting_row(s))?;
                    }
                }
            }
        }
    }
    tx.commit()?;
    counts.record();
    Ok(conflicts)
}

/// Inserts new events and counts them; a known `event_id` is a retry (counted once) when
/// it was stored for the same identity and month (or a month next to it, near their
/// boundary: `is_conflict`), else a conflict.
fn write_beacons(
    tx: &rusqlite::Transaction,
    records: &[crate::wire::Record],
    counts: &mut super::BeaconCounts,
) -> rusqlite::Result<Conflicts> {
    let mut insert = tx.prepare_cached(INSERT_EVENT)?;
    let mut upsert = tx.prepare_cached(UPSERT_IDENTITY)?;
    let mut stored = tx.prepare_cached(STORED_EVENT)?;
    let mut still = tx.prepare_cached(UPSERT_SIGHTING)?;
    let mut context = tx.prepare_cached(UPSERT_CONTEXT)?;
    let mut conflicts = Vec::new();
    for (i, r) in records.iter().enumerate() {
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
            b.kind.as_str(),
            b.context,
            b.reason,
        ])?;
        if inserted != 0 {
            context.execute(params![
                month,
                b.identity,
                b.context.as_deref().unwrap_or(""),
                event_at,
                b.reason,
            ])?;
        }
        if inserted == 0 {
            let (identity, was): (String, String) =
                stored.query_row([&b.event_id], |r| Ok((r.get(0)?, r.get(1)?)))?;
            if super::is_conflict(&identity, &was, r) {
                conflicts.push(i);
                counts.conflicts += 1;
            } else {
                counts.duplicates += 1;
            }
        } else if b.kind == Kind::Connected {
            counts.accepted += 1;
            upsert.execute(params![month, b.identity, event_at])?;
        } else {
            counts.accepted += 1;
            still.execute(params![
                month,
                "identity",
                b.identity,
                STILL_SOURCE,
                event_at
            ])?;
        }
    }
    Ok(conflicts)
}

/// Opens an existing database for reading (fails if it does not exist).
fn open_reader(path: &Path) -> rusqlite::Result<Connection> {
    open_conn(path, true)
}

/// Opens an existing database (never creates one); `query_only` keeps it from writing.
fn open_conn(path: &Path, query_only: bool) -> rusqlite::Result<Connection> {
    // Read-write flags (without CREATE) so a WAL database opens even when its -shm
    // file is missing.
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_NO_MUTEX
        | OpenFlags::SQLITE_OPEN_URI;
    let conn = Connection::open_with_flags(path, flags)?;
    conn.busy_timeout(Duration::from_secs(5))?;
    conn.pragma_update(None, "query_only", query_only)?;
    Ok(conn)
}

const SUMMARY: &str = "SELECT count(*), coalesce(sum(connects), 0), min(first_seen), max(last_seen)
    FROM identities WHERE month = ?1";
/// Every month with subjects (any source) or a billed count: the beacon summary, the
/// subjects of all sources (as the report's `seen`) and the stored billed count.
const MONTHS: &str = "WITH ids AS (
        SELECT month, count(*) AS n, sum(connects) AS connects, min(first_seen) AS f,
            max(last_seen) AS l FROM identities GROUP BY month),
    subjects AS (
        SELECT month, count(*) AS n FROM (
            SELECT month, 'identity' AS kind, identity AS subject FROM identities
            UNION
            SELECT month, subject_kind, subject FROM sightings)
        GROUP BY month),
    months AS (SELECT month FROM subjects UNION SELECT month FROM billed
        UNION SELECT month FROM erased)
    SELECT m.month, coalesce(ids.n, 0), coalesce(ids.connects, 0), ids.f, ids.l,
        coalesce(subjects.n, 0), b.count, b.source, b.recorded_at, coalesce(e.subjects, 0)
    FROM months AS m LEFT JOIN ids ON ids.month = m.month
        LEFT JOIN subjects ON subjects.month = m.month
        LEFT JOIN billed AS b ON b.month = m.month
        LEFT JOIN erased AS e ON e.month = m.month
    ORDER BY m.month DESC";
/// The months a subject (?1, of kind ?2) has rows in. Events, identities and tokens hold
/// chat identities only; sightings hold both kinds.
const SUBJECT_MONTHS: &str = "SELECT month FROM events WHERE identity = ?1 AND ?2 = 'identity'
    UNION SELECT month FROM identities WHERE identity = ?1 AND ?2 = 'identity'
    UNION SELECT month FROM tokens WHERE identity = ?1 AND ?2 = 'identity'
    UNION SELECT month FROM sightings WHERE subject = ?1 AND subject_kind = ?2
    UNION SELECT month FROM subject_contexts WHERE identity = ?1 AND ?2 = 'identity'
    ORDER BY 1";
const DELETE_EVENTS: &str = "DELETE FROM events WHERE identity = ?1 AND ?2 = 'identity'";
const DELETE_IDENTITIES: &str = "DELETE FROM identities WHERE identity = ?1 AND ?2 = 'identity'";
const DELETE_TOKENS: &str = "DELETE FROM tokens WHERE identity = ?1 AND ?2 = 'identity'";
const DELETE_SIGHTINGS: &str = "DELETE FROM sightings WHERE subject = ?1 AND subject_kind = ?2";
const DELETE_CONTEXTS: &str =
    "DELETE FROM subject_contexts WHERE identity = ?1 AND ?2 = 'identity'";
const COUNT_ERASED: &str = "INSERT INTO erased (month, subjects) VALUES (?1, 1)
    ON CONFLICT (month) DO UPDATE SET subjects = erased.subjects + 1";
const ERASED: &str = "SELECT subjects FROM erased WHERE month = ?1";
/// Every subject in any table: chat identities and channel addresses.
const SUBJECTS: &str = "SELECT identity, 'identity' FROM events
    UNION SELECT identity, 'identity' FROM identities
    UNION SELECT identity, 'identity' FROM tokens
    UNION SELECT subject, subject_kind FROM sightings
    UNION SELECT identity, 'identity' FROM subject_contexts";
const CONTEXTS: &str = "SELECT identity, context, reason, first_seen, beacons
    FROM subject_contexts WHERE month = ?1 ORDER BY identity, first_seen, context";
const CONTEXT_TOTALS: &str =
    "SELECT month, count(*), sum(beacons) FROM subject_contexts GROUP BY month ORDER BY month";
const BILLED: &str = "SELECT count, source, recorded_at FROM billed WHERE month = ?1";
const UPSERT_BILLED: &str = "INSERT INTO billed (month, count, source, recorded_at)
    VALUES (?1, ?2, ?3, ?4) ON CONFLICT (month) DO UPDATE SET
        count = excluded.count, source = excluded.source, recorded_at = excluded.recorded_at";
const DELETE_BILLED: &str = "DELETE FROM billed WHERE month = ?1";
/// Every (subject, source) of a month: SDK connects and server-side sightings.
const ACTIVITY: &str = "SELECT identity, 'identity', 'sdk_connect', first_seen, last_seen, connects
    FROM identities WHERE month = ?1
    UNION ALL
    SELECT subject, subject_kind, source, first_seen, last_seen, 0 FROM sightings WHERE month = ?1
    ORDER BY 1, 2, 3";
/// One row per subject, its sources merged.
const IDENTITIES: &str = "SELECT subject, kind, group_concat(source, ';' ORDER BY source),
    min(first_seen), max(last_seen), sum(connects) FROM (
        SELECT identity AS subject, 'identity' AS kind, 'sdk_connect' AS source, first_seen,
            last_seen, connects FROM identities WHERE month = ?1
        UNION ALL
        SELECT subject, subject_kind, source, first_seen, last_seen, 0 FROM sightings
            WHERE month = ?1)
    GROUP BY subject, kind ORDER BY subject, kind";
const TOKENS: &str = "SELECT identity, count(*), min(issued_at), max(issued_at) FROM tokens
    WHERE month = ?1 GROUP BY identity ORDER BY identity";

fn summary(conn: &Connection, month: Month) -> rusqlite::Result<Summary> {
    let month = month.to_string();
    conn.query_row(SUMMARY, [&month], |r| {
        Ok(Summary {
            month: month.clone(),
            unique_identities: r.get(0)?,
            connects: r.get(1)?,
            first_seen: r.get(2)?,
            last_seen: r.get(3)?,
        })
    })
}

fn months(conn: &Connection) -> rusqlite::Result<Vec<MonthLine>> {
    let mut stmt = conn.prepare(MONTHS)?;
    let rows = stmt.query_map([], |r| {
        let summary = Summary {
            month: r.get(0)?,
            unique_identities: r.get(1)?,
            connects: r.get(2)?,
            first_seen: r.get(3)?,
            last_seen: r.get(4)?,
        };
        let billed = match (r.get(6)?, r.get(7)?, r.get(8)?) {
            (Some(n), Some(from), Some(at)) => Some(Billed::stored(n, from, at)),
            _ => None,
        };
        Ok(MonthLine::new(summary, r.get(5)?, r.get(9)?, billed))
    })?;
    rows.collect()
}

/// Walks the month's rows with one statement, sending a batch every `EXPORT_BATCH` rows.
fn send_identities(
    conn: &Connection,
    month: Month,
    tx: &mpsc::Sender<Result<Vec<IdentityRow>, StoreError>>,
) -> Result<(), StoreError> {
    let mut stmt = conn.prepare(IDENTITIES)?;
    let mut rows = stmt.query([month.to_string()])?;
    let mut batch = Vec::with_capacity(EXPORT_BATCH);
    while let Some(r) = rows.next()? {
        batch.push(IdentityRow {
            identity: r.get(0)?,
            subject_kind: r.get(1)?,
            sources: r.get(2)?,
            first_seen: r.get(3)?,
            last_seen: r.get(4)?,
            connects: r.get(5)?,
        });
        if batch.len() == EXPORT_BATCH {
            let full = std::mem::replace(&mut batch, Vec::with_capacity(EXPORT_BATCH));
            if tx.blocking_send(Ok(full)).is_err() {
                return Ok(()); // the reader went away
            }
        }
    }
    if !batch.is_empty() {
        let _ = tx.blocking_send(Ok(batch));
    }
    Ok(())
}
