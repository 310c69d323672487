//! PostgreSQL: a pool of connections, group commit in one statement, cursor exports.
//!
//! Several collector instances may share one database: `event_id` is the primary key of
//! `events` and the insert ignores conflicts, so concurrent deliveries of one event are
//! stored once whichever instance takes them. The writer takes a commit slot and a
//! connection first and then folds in every request that queued meanwhile, so a few commits
//! overlap and each grows with load. A commit answers only after PostgreSQL reports it
//! durable (`synchronous_commit` as the server has it, `on` by default).

use super::copy::{Cell, Dialect, Table, Ty};
use super::{schema, tls};
use super::{
    settle, sighting_row, ActivityRow, Billed, Conflicts, ContextRow, Erased, IdentityRow,
    MonthLine, Options, StoreError, SubjectKind, Summary, TokenIdentity, Write, WriteJob,
    EXPORT_BATCH, MAX_GROUP,
};
use crate::month::Month;
use crate::wire::format_time;
use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod, Runtime};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, Semaphore};
use tokio_postgres::types::ToSql;

/// Most group commits in flight per instance. More only splits the queue into smaller
/// transactions, which cost PostgreSQL more CPU per beacon (docs/collector-bench.md).
const MAX_COMMITS: usize = 4;

/// Any number that no other application of the database would pick for its lock.
/// Longest a group commit may take before its connection is given up as dead: a server
/// that vanished without closing the socket (a failover, a partition) would otherwise hold
/// the writer until the kernel notices, hours later. The group is answered 503; its
/// clients retry, and `event_id` makes the retry safe whether or not it committed.
const COMMIT_TIMEOUT: Duration = Duration::from_secs(10);
const MIGRATION_LOCK: i64 = 0x6d61_755f_6265_6163; // "mau_beac"

/// Inserts a whole group with one statement, which PostgreSQL runs as one transaction (one
/// round trip): new events, then their identities' counts (`still_connected` ones as
/// sightings of source `sdk_still_connected`). Rows come sorted by event_id and identities are upserted in key
/// order, so two instances' transactions take their locks in the same order.
const INSERT_GROUP: &str = "
WITH new AS (
    INSERT INTO events (event_id, identity, month, client_month, occurred_at, sent_at,
                        received_at, event_at, attempt, dedupe, sdk_name, sdk_version,
                        client_version, kind, context, reason)
    SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[],
                         $6::text[], $7::text[], $8::text[], $9::int8[], $10::text[],
                         $11::text[], $12::text[], $13::text[], $14::text[], $15::text[],
                         $16::text[])
    ON CONFLICT (event_id) DO NOTHING
    RETURNING month, identity, event_at, kind, context, reason
), contexts AS (
    INSERT INTO subject_contexts (month, identity, context, first_seen, reason, beacons)
    SELECT month, identity, coalesce(context, ''), min(event_at),
        (array_agg(reason ORDER BY event_at, coalesce(reason, '~') COLLATE \"C\"))[1], count(*)
    FROM new
    GROUP BY month, identity, coalesce(context, '') ORDER BY 1, 2, 3
    ON CONFLICT (month, identity, context) DO UPDATE SET
        reason = CASE WHEN (excluded.first_seen, coalesce(excluded.reason, '~') COLLATE \"C\")
            < (subject_contexts.first_seen, coalesce(subject_contexts.reason, '~') COLLATE \"C\")
            THEN excluded.reason ELSE subject_contexts.reason END,
        first_seen = least(subject_contexts.first_seen, excluded.first_seen),
        beacons = subject_contexts.beacons + excluded.beacons
), still AS (
    INSERT INTO sightings (month, subject_kind, subject, source, first_seen, last_seen, hits)
    SELECT month, 'identity', identity, 'sdk_still_connected', min(event_at), max(event_at),
        count(*) FROM new WHERE kind = 'still_connected'
    GROUP BY month, identity ORDER BY month, identity
    ON CONFLICT (month, subject_kind, subject, source) DO UPDATE SET
        first_seen = least(sightings.first_seen, excluded.first_seen),
        last_seen = greatest(sightings.last_seen, excluded.last_seen),
        hits = sightings.hits + excluded.hits
), connected AS (
    INSERT INTO identities (month, identity, first_seen, last_seen, connects)
    SELECT month, identity, min(event_at), max(event_at), count(*) FROM new
    WHERE kind = 'connected'
    GROUP BY month, identity ORDER BY month, identity
    ON CONFLICT (month, identity) DO UPDATE SET
        first_seen = least(identities.first_seen, excluded.first_seen),
        last_seen = greatest(identities.last_seen, excluded.last_seen),
        connects = identities.connects + excluded.connects
)
SELECT count(*) FROM new";

const SUMMARY: &str = "SELECT count(*), coalesce(sum(connects), 0)::int8, min(first_seen),
    max(last_seen) FROM identities WHERE month = $1";
/// As on SQLite: every month with subjects or a billed count.
const MONTHS: &str = r#"WITH ids AS (
        SELECT month, count(*) AS n, sum(connects)::int8 AS connects, min(first_seen) AS f,
            max(last_seen) AS l FROM identities GROUP BY month),
    subjects AS (
        SELECT month, count(*) AS n FROM (
            SELECT month, 'identity' COLLATE "C" AS kind, identity AS subject FROM identities
            UNION
            SELECT month, subject_kind, subject FROM sightings) AS s
        GROUP BY month),
    months AS (SELECT month FROM subjects UNION SELECT month FROM billed
        UNION SELECT month FROM erased)
    SELECT m.month, coalesce(ids.n, 0)::int8, coalesce(ids.connects, 0)::int8, ids.f, ids.l,
        coalesce(subjects.n, 0)::int8, b.count, b.source, b.recorded_at,
        coalesce(e.subjects, 0)::int8
    FROM months AS m LEFT JOIN ids ON ids.month = m.month
        LEFT JOIN subjects ON subjects.month = m.month
        LEFT JOIN billed AS b ON b.month = m.month
        LEFT JOIN erased AS e ON e.month = m.month
    ORDER BY m.month DESC"#;
/// As on SQLite: the months a subject ($1, of kind $2) has rows in, and its rows.
const SUBJECT_MONTHS: &str = "SELECT month FROM events WHERE identity = $1 AND $2 = 'identity'
    UNION SELECT month FROM identities WHERE identity = $1 AND $2 = 'identity'
    UNION SELECT month FROM tokens WHERE identity = $1 AND $2 = 'identity'
    UNION SELECT month FROM sightings WHERE subject = $1 AND subject_kind = $2
    UNION SELECT month FROM subject_contexts WHERE identity = $1 AND $2 = 'identity'
    ORDER BY 1";
const DELETE_EVENTS: &str = "DELETE FROM events WHERE identity = $1 AND $2 = 'identity'";
const DELETE_IDENTITIES: &str = "DELETE FROM identities WHERE identity = $1 AND $2 = 'identity'";
const DELETE_TOKENS: &str = "DELETE FROM tokens WHERE identity = $1 AND $2 = 'identity'";
const DELETE_SIGHTINGS: &str = "DELETE FROM sightings WHERE subject = $1 AND subject_kind = $2";
const DELETE_CONTEXTS: &str =
    "DELETE FROM subject_contexts WHERE identity = $1 AND $2 = 'identity'";
const COUNT_ERASED: &str = "INSERT INTO erased (month, subjects) VALUES ($1, 1)
    ON CONFLICT (month) DO UPDATE SET subjects = erased.subjects + 1";
const ERASED: &str = "SELECT subjects FROM erased WHERE month = $1";
const SUBJECTS: &str = r#"SELECT identity, 'identity' COLLATE "C" FROM events
    UNION SELECT identity, 'identity' FROM identities
    UNION SELECT identity, 'identity' FROM tokens
    UNION SELECT subject, subject_kind FROM sightings
    UNION SELECT identity, 'identity' FROM subject_contexts"#;
const CONTEXTS: &str = "SELECT identity, context, reason, first_seen, beacons
    FROM subject_contexts WHERE month = $1 ORDER BY identity, first_seen, context";
const CONTEXT_TOTALS: &str = "SELECT month, count(*), sum(beacons)::int8 FROM subject_contexts
    GROUP BY month ORDER BY month";
const BILLED: &str = "SELECT count, source, recorded_at FROM billed WHERE month = $1";
const UPSERT_BILLED: &str = "INSERT INTO billed (month, count, source, recorded_at)
    VALUES ($1, $2, $3, $4) ON CONFLICT (month) DO UPDATE SET
        count = excluded.count, source = excluded.source, recorded_at = excluded.recorded_at";
const DELETE_BILLED: &str = "DELETE FROM billed WHERE month = $1";
const ACTIVITY: &str = "SELECT identity, 'identity', 'sdk_connect', first_seen, last_seen, connects
    FROM identities WHERE month = $1
    UNION ALL
    SELECT subject, subject_kind, source, first_seen, last_seen, 0 FROM sightings WHERE month = $1
    ORDER BY 1, 2, 3";
const IDENTITIES: &str = r#"SELECT subject, kind, string_agg(source, ';' ORDER BY source COLLATE "C"),
    min(first_seen), max(last_seen), sum(connects)::int8 FROM (
        SELECT identity AS subject, 'identity' COLLATE "C" AS kind,
            'sdk_connect' COLLATE "C" AS source, first_seen, last_seen, connects
            FROM identities WHERE month = $1
        UNION ALL
        SELECT subject, subject_kind, source, first_seen, last_seen, 0 FROM sightings
            WHERE month = $1) AS s
    GROUP BY subject, kind ORDER BY subject, kind"#;
const TOKENS: &str = "SELECT identity, count(*), min(issued_at), max(issued_at) FROM tokens
    WHERE month = $1 GROUP BY identity ORDER BY identity";
const STORED_EVENTS: &str =
    "SELECT event_id, identity, month FROM events WHERE event_id = ANY($1::text[])";
const INSERT_TOKEN: &str = "INSERT INTO tokens
    (token_key, identity, month, issued_at, expires_at, received_at)
    VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (token_key) DO NOTHING";
const INSERT_KEY: &str =
    "INSERT INTO delivery_keys (key, seen_at) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING";
const UPSERT_SIGHTING: &str =
    "INSERT INTO sightings (month, subject_kind, subject, source, first_seen, last_seen, hits)
    VALUES ($1, $2, $3, $4, $5, $5, 1)
    ON CONFLICT (month, subject_kind, subject, source) DO UPDATE SET
        first_seen = least(sightings.first_seen, excluded.first_seen),
        last_seen = greatest(sightings.last_seen, excluded.last_seen),
        hits = sightings.hits + 1";

const DIALECT: Dialect = Dialect {
    param: |n| format!("${n}"),
    least: "least",
    greatest: "greatest",
    binary: " COLLATE \"C\"",
};

impl ToSql for Cell {
    fn to_sql(
        &self,
        ty: &tokio_postgres::types::Type,
        out: &mut bytes::BytesMut,
    ) -> Result<tokio_postgres::types::IsNull, Box<dyn std::error::Error + Sync + Send>> {
        match self {
            Cell::Text(t) => t.to_sql(ty, out),
            Cell::Int(n) => n.to_sql(ty, out),
        }
    }

    fn accepts(ty: &tokio_postgres::types::Type) -> bool {
        <Option<String> as ToSql>::accepts(ty) || <i64 as ToSql>::accepts(ty)
    }

    tokio_postgres::types::to_sql_checked!();
}

/// Transient failures (server gone, restarting, out of connections, a lock conflict) are
/// `Unavailable`: the client is told to retry. Anything else is a real error.
impl From<tokio_postgres::Error> for StoreError {
    fn from(e: tokio_postgres::Error) -> StoreError {
        // A refused certificate may be fixed on the server without restarting us: a retry.
        if let Some(msg) = tls::explain(&e) {
            return StoreError::Unavailable(msg);
        }
        let transient = match e.code() {
            // I/O, a closed connection, a timeout; not a type conversion (a bug: 500).
            None => {
                e.is_closed()
                    || std::error::Error::source(&e).is_some_and(|s| s.is::<std::io::Error>())
                    || e.to_string().starts_with("timeout waiting for server")
            }
            // connection, resources, shutdown, conflicts; a cancelled statement; a standby
            // that took writes' place after a failover (read-only transaction).
            Some(c) => ["08", "53", "57P", "40", "57014", "25006"]
                .iter()
                .any(|p| c.code().starts_with(p)),
        };
        let msg = match e.as_db_error() {
            Some(db) => format!("{}: {}", db.code().code(), db.message()),
            None => e.to_string(),
        };
        if transient {
            StoreError::Unavailable(msg)
        } else {
            StoreError::Backend(msg)
        }
    }
}

impl From<deadpool_postgres::PoolError> for StoreError {
    fn from(e: deadpool_postgres::PoolError) -> StoreError {
        match e {
            deadpool_postgres::PoolError::Backend(e) => StoreError::from(e),
            other => StoreError::Unavailable(other.to_string()),
        }
    }
}

#[derive(Clone)]
pub struct PgStore {
    pub(super) writer: Option<mpsc::Sender<WriteJob>>,
    pool: Pool,
}

impl PgStore {
    /// Connects; with `write`, migrates and starts the writer, else only checks the version.
    pub async fn open(url: &str, opts: &Options, write: bool) -> Result<PgStore, StoreError> {
        let (mut config, tls) = tls::parse(url).map_err(|e| StoreError::Config(e.to_string()))?;
        let tls = tls
            .connector()
            .map_err(|e| StoreError::Config(e.to_string()))?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(opts.pool_wait);
        }
        // Notice a peer that vanished without closing the socket in seconds, not hours.
        config.keepalives_idle(Duration::from_secs(15));
        config.tcp_user_timeout(COMMIT_TIMEOUT);
        if config.get_application_name().is_none() {
            config.application_name("mau-collector");
        }
        let manager = Manager::from_config(
            config,
            tls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(opts.pool_size.max(1))
            .wait_timeout(Some(opts.pool_wait))
            .create_timeout(Some(opts.pool_wait))
            .recycle_timeout(Some(opts.pool_wait))
            .runtime(Runtime::Tokio1)
            .build()
            .map_err(|e| StoreError::Config(e.to_string()))?;
        let mut conn = pool.get().await?;
        let writer = if write {
            migrate(&mut conn).await?;
            check_shape(&conn, url).await?;
            let (tx, rx) = mpsc::channel(opts.queue.max(1));
            tokio::spawn(writer(pool.clone(), rx));
            Some(tx)
        } else {
            let current = version(&conn).await?;
            schema::check_current(current, "the database")?;
            check_shape(&conn, url).await?;
            None
        };
        Ok(PgStore { writer, pool })
    }

    /// One round trip on a pooled connection, bounded by the pool's wait.
    pub async fn health(&self) -> Result<(), StoreError> {
        let conn = self.pool.get().await?;
        match tokio::time::timeout(COMMIT_TIMEOUT, conn.simple_query("SELECT 1")).await {
            Ok(r) => r.map(|_| ()).map_err(StoreError::from),
            Err(_) => Err(StoreError::Unavailable("no answer to SELECT 1".into())),
        }
    }

    /// The newest migration applied.
    pub async fn schema_version(&self) -> Result<i64, StoreError> {
        let conn = self.pool.get().await?;
        Ok(conn
            .query_one(
                "SELECT coalesce(max(version), 0)::int8 FROM schema_version",
                &[],
            )
            .await?
            .try_get(0)?)
    }

    pub fn pool_status(&self) -> [(&'static str, usize); 4] {
        let s = self.pool.status();
        [
            ("size", s.size),
            ("available", s.available),
            ("waiting", s.waiting),
            ("max", s.max_size),
        ]
    }

    pub async fn summary(&self, month: Month) -> Result<Summary, StoreError> {
        let conn = self.pool.get().await?;
        let month = month.to_string();
        let stmt = conn.prepare_cached(SUMMARY).await?;
        let r = conn.query_one(&stmt, &[&month]).await?;
        Ok(Summary {
            month,
            unique_identities: r.try_get(0)?,
            connects: r.try_get(1)?,
            first_seen: r.try_get(2)?,
            last_seen: r.try_get(3)?,
        })
    }

    pub async fn months(&self) -> Result<Vec<MonthLine>, StoreError> {
        let conn = self.pool.get().await?;
        let stmt = conn.prepare_cached(MONTHS).await?;
        conn.query(&stmt, &[])
            .await?
            .iter()
            .map(|r| {
                let summary = Summary {
                    month: r.try_get(0)?,
                    unique_identities: r.try_get(1)?,
                    connects: r.try_get(2)?,
                    first_seen: r.try_get(3)?,
                    last_seen: r.try_get(4)?,
                };
                let billed = match (r.try_get(6)?, r.try_get(7)?, r.try_get(8)?) {
                    (Some(n), Some(from), Some(at)) => Some(Billed::stored(n, from, at)),
                    _ => None,
                };
                Ok(MonthLine::new(
                    summary,
                    r.try_get(5)?,
                    r.try_get(9)?,
                    billed,
                ))
            })
            .collect()
    }

    pub async fn billed(&self, month: Month) -> Result<Option<Billed>, StoreError> {
        let conn = self.pool.get().await?;
        let stmt = conn.prepare_cached(BILLED).await?;
        let row = conn.query_opt(&stmt, &[&month.to_string()]).await?;
        row.map(|r| Ok(Billed::stored(r.try_get(0)?, r.try_get(1)?, r.try_get(2)?)))
            .transpose()
    }

    /// One statement, its own transaction: durable when it returns.
    pub async fn set_billed(
        &self,
        month: Month,
        count: i64,
        from: &str,
        at: &str,
    ) -> Result<(), StoreError> {
        let conn = self.pool.get().await?;
        let stmt = conn.prepare_cached(UPSERT_BILLED).await?;
        conn.execute(&stmt, &[&month.to_string(), &count, &from, &at])
            .await?;
        Ok(())
    }

    /// One statement with `$n` parameters; the rows it changed.
    pub async fn execute(&self, sql: &str, params: Vec<Cell>) -> Result<u64, StoreError> {
        let conn = self.pool.get().await?;
        let stmt = conn.prepare_cached(sql).await?;
        let refs: Vec<&(dyn ToSql + Sync)> =
            params.iter().map(|p| p as &(dyn ToSql + Sync)).collect();
        Ok(conn.execute(&stmt, &refs).await?)
    }

    pub async fn clear_billed(&self, month: Month) -> Result<(), StoreError> {
        let conn = self.pool.get().await?;
        let stmt = conn.prepare_cached(DELETE_BILLED).await?;
        conn.execute(&stmt, &[&month.to_string()]).await?;
        Ok(())
    }

    /// In one transaction; a lock conflict with a concurrent commit fails it whole (503).
    pub async fn forget(&self, kind: SubjectKind, subject: &str) -> Result<Erased, StoreError> {
        let mut conn = self.pool.get().await?;
        let t = conn.transaction().await?;
        let kind = kind.as_str();
        let args: [&(dyn tokio_postgres::types::ToSql + Sync); 2] = [&subject, &kind];
        let months: Vec<String> = t
            .query(SUBJECT_MONTHS, &args)
            .await?
            .iter()
            .map(|r| r.try_get(0))
            .collect::<Result<_, _>>()?;
        let erased = Erased {
            events: t.execute(DELETE_EVENTS, &args).await?,
            identities: t.execute(DELETE_IDENTITIES, &args).await?,
            tokens: t.execute(DELETE_TOKENS, &args).await?,
            sightings: t.execute(DELETE_SIGHTINGS, &args).await?,
            contexts: t.execute(DELETE_CONTEXTS, &args).await?,
            months,
        };
        for m in &erased.months {
            t.execute(COUNT_ERASED, &[m]).await?;
        }
        t.commit().await?;
        Ok(erased)
    }

    pub async fn count_before(&self, sql: &str, cutoff: &str) -> Result<u64, StoreError> {
        let conn = self.pool.get().await?;
        let n: i64 = conn.query_one(sql, &[&cutoff]).await?.try_get(0)?;
        Ok(n.max(0) as u64)
    }

    /// One statement, its own transaction.
    pub async fn delete_before(
        &self,
        sql: &str,
        cutoff: &str,
        limit: i64,
    ) -> Result<u64, StoreError> {
        let conn = self.pool.get().await?;
        Ok(conn.execute(sql, &[&cutoff, &limit]).await?)
    }

    /// `copy`: the next batch of `table` after the key `after` (the start without one).
    pub async fn copy_read(
        &self,
        table: &'static Table,
        after: Option<Vec<Cell>>,
        limit: usize,
    ) -> Result<Vec<Vec<Cell>>, StoreError> {
        let conn = self.pool.get().await?;
        let (sql, params) = table.query(&DIALECT, after, limit);
        let refs: Vec<&(dyn ToSql + Sync)> = params.iter().map(|p| p as _).collect();
        conn.query(&sql, &refs)
            .await?
            .iter()
            .map(|r| table.decode(|i| r.try_get(i), |i| r.try_get(i)))
            .collect::<Result<_, _>>()
            .map_err(StoreError::from)
    }

    /// `copy`: writes a batch with one statement (one transaction, column arrays
    /// unnested); the rows that were new or changed.
    pub async fn copy_write(
        &self,
        table: &'static Table,
        rows: Vec<Vec<Cell>>,
    ) -> Result<u64, StoreError> {
        let mut arrays: Vec<Box<dyn ToSql + Sync + Send>> = Vec::new();
        let mut casts = Vec::new();
        for (i, (_, ty)) in table.columns.iter().enumerate() {
            let column = rows.iter().map(|r| r[i].clone());
            casts.push(match ty {
                Ty::Text => format!("${}::text[]", i + 1),
                Ty::Int => format!("${}::int8[]", i + 1),
            });
            arrays.push(match ty {
                Ty::Text => Box::new(
                    column
                        .map(|c| match c {
                            Cell::Text(t) => t,
                            Cell::Int(n) => Some(n.to_string()),
                        })
                        .collect::<Vec<_>>(),
                ),
                Ty::Int => Box::new(
                    column
                        .map(|c| match c {
                            Cell::Int(n) => n,
                            Cell::Text(_) => 0,
                        })
                        .collect::<Vec<_>>(),
                ),
            });
        }
        let sql = format!(
            "{}SELECT * FROM unnest({}) {}",
            table.insert_into(),
            casts.join(", "),
            table.on_conflict(&DIALECT)
        );
        let refs: Vec<&(dyn ToSql + Sync)> = arrays.iter().map(|a| &**a as _).collect();
        let conn = self.pool.get().await?;
        Ok(conn.execute(&sql, &refs).await?)
    }

    pub async fn subjects(&self) -> Result<Vec<(String, String)>, StoreError> {
        let conn = self.pool.get().await?;
        conn.query(SUBJECTS, &[])
            .await?
            .iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
            .collect()
    }

    pub async fn contexts(&self, month: Month) -> Result<Vec<ContextRow>, StoreError> {
        let conn = self.pool.get().await?;
        let stmt = conn.prepare_cached(CONTEXTS).await?;
        conn.query(&stmt, &[&month.to_string()])
            .await?
            .iter()
            .map(|r| {
                Ok(ContextRow::stored(
                    r.try_get(0)?,
                    r.try_get(1)?,
                    r.try_get(2)?,
                    r.try_get(3)?,
                    r.try_get(4)?,
                ))
            })
            .collect()
    }

    pub async fn context_totals(
        &self,
    ) -> Result<std::collections::BTreeMap<String, (i64, i64)>, StoreError> {
        let conn = self.pool.get().await?;
        conn.query(CONTEXT_TOTALS, &[])
            .await?
            .iter()
            .map(|r| Ok((r.try_get(0)?, (r.try_get(1)?, r.try_get(2)?))))
            .collect()
    }

    pub async fn erased(&self, month: Month) -> Result<i64, StoreError> {
        let conn = self.pool.get().await?;
        let row = conn.query_opt(ERASED, &[&month.to_string()]).await?;
        Ok(row.map(|r| r.try_get(0)).transpose()?.unwrap_or(0))
    }

    pub async fn activity(&self, month: Month) -> Result<Vec<ActivityRow>, StoreError> {
        let conn = self.pool.get().await?;
        let stmt = conn.prepare_cached(ACTIVITY).await?;
        conn.query(&stmt, &[&month.to_string()])
            .await?
            .iter()
            .map(|r| {
                Ok(ActivityRow {
                    subject: r.try_get(0)?,
                    subject_kind: r.try_get(1)?,
                    source: r.try_get(2)?,
                    first_seen: r.try_get(3)?,
                    last_seen: r.try_get(4)?,
                    connects: r.try_get(5)?,
                })
            })
            .collect()
    }

    pub async fn tokens(&self, month: Month) -> Result<Vec<TokenIdentity>, StoreError> {
        let conn = self.pool.get().await?;
        let stmt = conn.prepare_cached(TOKENS).await?;
        conn.query(&stmt, &[&month.to_string()])
            .await?
            .iter()
            .map(|r| {
                Ok(TokenIdentity {
                    identity: r.try_get(0)?,
                    tokens: r.try_get(1)?,
                    first_issued: r.try_get(2)?,
                    last_issued: r.try_get(3)?,
                })
            })
            .collect()
    }

    /// Reads through a server-side cursor (a portal in a read-only transaction), fetching
    /// `EXPORT_BATCH` rows at a time, only as fast as the receiver takes them.
    pub fn identities(&self, month: Month, tx: mpsc::Sender<Result<Vec<IdentityRow>, StoreError>>) {
        let pool = self.pool.clone();
        tokio::spawn(async move {
            if let Err(e) = send_identities(&pool, month, &tx).await {
                let _ = tx.send(Err(e)).await;
            }
        });
    }
}

async fn send_identities(
    pool: &Pool,
    month: Month,
    tx: &mpsc::Sender<Result<Vec<IdentityRow>, StoreError>>,
) -> Result<(), StoreError> {
    let mut conn = pool.get().await?;
    let t = conn.build_transaction().read_only(true).start().await?;
    let stmt = t.prepare_cached(IDENTITIES).await?;
    let portal = t.bind(&stmt, &[&month.to_string()]).await?;
    loop {
        let rows = t.query_portal(&portal, EXPORT_BATCH as i32).await?;
        let last = rows.len() < EXPORT_BATCH;
        let batch = rows
            .iter()
            .map(|r| {
                Ok(IdentityRow {
                    identity: r.try_get(0)?,
                    subject_kind: r.try_get(1)?,
                    sources: r.try_get(2)?,
                    first_seen: r.try_get(3)?,
                    last_seen: r.try_get(4)?,
                    connects: r.try_get(5)?,
                })
            })
            .collect::<Result<Vec<_>, tokio_postgres::Error>>()?;
        if !batch.is_empty() && tx.send(Ok(batch)).await.is_err() {
            break; // the reader went away
        }
        if last {
            break;
        }
    }
    t.commit().await?;
    Ok(())
}

/// Applies pending migrations in one transaction holding an advisory lock, so instances
/// starting together wait for each other instead of racing.
async fn migrate(conn: &mut Object) -> Result<(), StoreError> {
    let t = conn.transaction().await?;
    t.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await?;
    // No "already exists, skipping" notices in the log at every start.
    t.batch_execute("SET LOCAL client_min_messages = warning")
        .await?;
    // Created only when missing: PostgreSQL checks CREATE rights even for IF NOT EXISTS, and
    // a role without them must still be able to start on a migrated database.
    let exists: bool = t
        .query_one("SELECT to_regclass('schema_version') IS NOT NULL", &[])
        .await?
        .try_get(0)?;
    if !exists {
        t.batch_execute(
            "CREATE TABLE IF NOT EXISTS schema_version (
            version    BIGINT PRIMARY KEY,
            name       TEXT NOT NULL,
            applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
        )",
        )
        .await?;
    }
    let current: i64 = t
        .query_one(
            "SELECT coalesce(max(version), 0)::int8 FROM schema_version",
            &[],
        )
        .await?
        .try_get(0)?;
    for m in schema::pending(current)? {
        t.batch_execute(m.postgres).await?;
        t.execute(
            "INSERT INTO schema_version (version, name) VALUES ($1, $2)",
            &[&m.version, &m.name],
        )
        .await?;
        tracing::info!(version = m.version, name = m.name, "migration applied");
    }
    t.commit().await?;
    Ok(())
}

/// Prepares every statement the collector runs: a table or column that is not what this
/// build expects is found at start-up, not at the first beacon.
async fn check_shape(conn: &Object, url: &str) -> Result<(), StoreError> {
    for sql in [
        INSERT_GROUP,
        STORED_EVENTS,
        INSERT_TOKEN,
        INSERT_KEY,
        UPSERT_SIGHTING,
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
        DELETE_CONTEXTS,
        CONTEXTS,
        CONTEXT_TOTALS,
        COUNT_ERASED,
        ERASED,
        SUBJECTS,
    ] {
        if let Err(e) = conn.prepare(sql).await {
            let detail = match e.as_db_error() {
                Some(db) => db.message().to_owned(),
                None => return Err(e.into()),
            };
            return Err(StoreError::WrongShape {
                what: super::Db::Postgres(url.to_owned()).to_string(),
                detail,
            });
        }
    }
    Ok(())
}

/// The version of an existing database, without writing.
async fn version(conn: &Object) -> Result<i64, StoreError> {
    let exists: bool = conn
        .query_one("SELECT to_regclass('schema_version') IS NOT NULL", &[])
        .await?
        .try_get(0)?;
    if !exists {
        return Err(StoreError::Foreign("the PostgreSQL database".into()));
    }
    let v: i64 = conn
        .query_one(
            "SELECT coalesce(max(version), 0)::int8 FROM schema_version",
            &[],
        )
        .await?
        .try_get(0)?;
    Ok(v)
}

/// Takes a commit slot and a connection, then everything queued meanwhile, and commits it
/// in a task of its own, so the next group can start on another connection.
async fn writer(pool: Pool, mut rx: mpsc::Receiver<WriteJob>) {
    let slots = Arc::new(Semaphore::new(MAX_COMMITS));
    while let Some(first) = rx.recv().await {
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return; // never closed
        };
        let conn = pool.get().await;
        let mut jobs = vec![first];
        while jobs.len() < MAX_GROUP {
            match rx.try_recv() {
                Ok(job) => jobs.push(job),
                Err(_) => break,
            }
        }
        match conn {
            Err(e) => settle(jobs, Err(e.into())),
            Ok(conn) => {
                tokio::spawn(async move {
                    let _slot = slot;
                    let started = std::time::Instant::now();
                    let result = commit_with_retry(conn, &jobs).await;
                    super::group_done(jobs.len(), started);
                    settle(jobs, result);
                });
            }
        }
    }
}

/// A lock conflict aborts the whole transaction, so trying again is safe; after that,
/// the clients retry. A failed connection is dropped rather than returned to the pool.
async fn commit_with_retry(
    mut conn: Object,
    jobs: &[WriteJob],
) -> Result<Vec<Conflicts>, StoreError> {
    let mut tries = 0;
    loop {
        tries += 1;
        let outcome = match tokio::time::timeout(COMMIT_TIMEOUT, commit(&mut conn, jobs)).await {
            Ok(outcome) => outcome,
            Err(_) => {
                let _ = Object::take(conn);
                return Err(StoreError::Unavailable(format!(
                    "the database did not answer a commit within {} s",
                    COMMIT_TIMEOUT.as_secs()
                )));
            }
        };
        match outcome {
            Ok(c) => return Ok(c),
            Err(e) => {
                let conflict = e.code().is_some_and(|c| c.code().starts_with("40"));
                if conflict && tries < 3 {
                    tokio::time::sleep(Duration::from_millis(5 * tries)).await;
                    continue;
                }
                if conn.is_closed() || e.code().is_none() {
                    let _ = Object::take(conn);
                }
                return Err(e.into());
            }
        }
    }
}

/// Beacons in one statement; tokens and sightings (few, server-side) in one transaction.
/// Both parts are idempotent, so a retry after a conflict stores nothing twice.
async fn commit(
    conn: &mut Object,
    jobs: &[WriteJob],
) -> Result<Vec<Conflicts>, tokio_postgres::Error> {
    let beacons: Vec<_> = jobs
        .iter()
        .flat_map(|j| match &j.write {
            Write::Beacons(r) => r.as_slice(),
            _ => &[],
        })
        .collect();
    let conflicts = if beacons.is_empty() {
        vec![Vec::new(); jobs.len()]
    } else {
        let total = beacons.len();
        let accepted = commit_beacons(conn, beacons).await?;
        let conflicts = conflicts(conn, jobs).await?;
        let conflicted = conflicts.iter().map(Vec::len).sum::<usize>();
        super::BeaconCounts {
            accepted,
            duplicates: total.saturating_sub(accepted + conflicted),
            conflicts: conflicted,
        }
        .record();
        conflicts
    };
    if jobs.iter().all(|j| matches!(j.write, Write::Beacons(_))) {
        return Ok(conflicts);
    }
    let t = conn.transaction().await?;
    let insert_token = t.prepare_cached(INSERT_TOKEN).await?;
    let insert_key = t.prepare_cached(INSERT_KEY).await?;
    let upsert = t.prepare_cached(UPSERT_SIGHTING).await?;
    for job in jobs {
        match &job.write {
            Write::Beacons(_) => {}
            Write::Tokens(tokens) => {
                for tk in tokens {
                    t.execute(
                        &insert_token,
                        &[
                            &tk.key,
                            &tk.identity,
                            &tk.month().to_string(),
                            &format_time(tk.issued_at),
                            &tk.expires_at.map(format_time),
                            &format_time(tk.received_at),
                        ],
                    )
                    .await?;
                }
            }
            Write::Observations(observations) => {
                for o in observations {
                    if let Some(k) = &o.key {
                        let now = format_time(time::OffsetDateTime::now_utc());
                        if t.execute(&insert_key, &[k, &now]).await? == 0 {
                            continue; // delivered before
                        }
                    }
                    for s in &o.sightings {
                        let [a, b, c, d, e] = sighting_row(s);
                        t.execute(&upsert, &[&a, &b, &c, &d, &e]).await?;
                    }
                }
            }
        }
    }
    t.commit().await?;
    Ok(conflicts)
}

/// After the insert: each job's beacons whose `event_id` is stored for another identity
/// or month (stored events never change, so reading after the commit is safe).
async fn conflicts(
    conn: &Object,
    jobs: &[WriteJob],
) -> Result<Vec<Conflicts>, tokio_postgres::Error> {
    let ids: Vec<&str> = jobs
        .iter()
        .flat_map(|j| match &j.write {
            Write::Beacons(r) => r.as_slice(),
            _ => &[],
        })
        .map(|r| r.beacon.event_id.as_str())
        .collect();
    let stmt = conn.prepare_cached(STORED_EVENTS).await?;
    let stored: std::collections::HashMap<String, (String, String)> = conn
        .query(&stmt, &[&ids])
        .await?
        .into_iter()
        .map(|r| Ok((r.try_get(0)?, (r.try_get(1)?, r.try_get(2)?))))
        .collect::<Result<_, tokio_postgres::Error>>()?;
    Ok(jobs
        .iter()
        .map(|j| match &j.write {
            Write::Beacons(records) => records
                .iter()
                .enumerate()
                .filter(|(_, r)| {
                    stored
                        .get(&r.beacon.event_id)
                        .is_some_and(|(identity, month)| super::is_conflict(identity, month, r))
                })
                .map(|(i, _)| i)
                .collect(),
            _ => Vec::new(),
        })
        .collect())
}

async fn commit_beacons(
    conn: &Object,
    mut records: Vec<&crate::wire::Record>,
) -> Result<usize, tokio_postgres::Error> {
    records.sort_by(|a, b| a.beacon.event_id.cmp(&b.beacon.event_id));
    let col = |f: &dyn Fn(&crate::wire::Record) -> String| -> Vec<String> {
        records.iter().map(|r| f(r)).collect()
    };
    let event_id = col(&|r| r.beacon.event_id.clone());
    let identity = col(&|r| r.beacon.identity.clone());
    let month = col(&|r| r.month.to_string());
    let client_month = col(&|r| r.beacon.client_month.to_string());
    let occurred_at = col(&|r| format_time(r.beacon.occurred_at));
    let sent_at = col(&|r| format_time(r.beacon.sent_at));
    let received_at = col(&|r| format_time(r.received_at));
    let event_at = col(&|r| format_time(r.event_at));
    let attempt: Vec<i64> = records.iter().map(|r| r.beacon.attempt.into()).collect();
    let dedupe = col(&|r| r.beacon.dedupe.clone());
    let sdk_name = col(&|r| r.beacon.sdk_name.clone());
    let sdk_version = col(&|r| r.beacon.sdk_version.clone());
    let client_version: Vec<Option<String>> = records
        .iter()
        .map(|r| r.beacon.client_version.clone())
        .collect();
    let kind = col(&|r| r.beacon.kind.as_str().to_owned());
    let context: Vec<Option<String>> = records.iter().map(|r| r.beacon.context.clone()).collect();
    let reason: Vec<Option<String>> = records.iter().map(|r| r.beacon.reason.clone()).collect();
    // One statement is one transaction: a single round trip, atomic, durable on return.
    // It answers how many events were new.
    let stmt = conn.prepare_cached(INSERT_GROUP).await?;
    let new: i64 = conn
        .query_one(
            &stmt,
            &[
                &event_id,
                &identity,
                &month,
                &client_month,
                &occurred_at,
                &sent_at,
                &received_at,
                &event_at,
                &attempt,
                &dedupe,
                &sdk_name,
                &sdk_version,
                &client_version,
                &kind,
                &context,
                &reason,
            ],
        )
        .await?
        .try_get(0)?;
    Ok(usize::try_from(new).unwrap_or(0))
}
