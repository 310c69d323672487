//! Storage behind one interface, two implementations: SQLite (one file, the default) and
//! PostgreSQL (several collector instances on one database). Knows nothing of HTTP.
//!
//! Both promise the same: `insert` returns only after the commit is durable; an `event_id`
//! is stored once (a unique key and an insert that ignores conflicts); concurrent requests
//! share one transaction (group commit); exports stream in bounded batches.
//!
//! A new kind of record is a migration in `schema`, a method on `Store`, and its statement
//! in each backend; writes that must be acknowledged only after the commit go through the
//! same group writer (a variant of `Write`). Beacons, the token log and server-side
//! sightings (webhooks, Event Streams, REST sync) all do.

pub mod copy;
mod postgres;
pub mod schema;
mod sqlite;
mod tls;

use crate::month::Month;
use crate::wire::{format_time, Record};
use serde::Serialize;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;
use time::OffsetDateTime;
use tokio::sync::{mpsc, oneshot};

/// Most requests folded into one transaction.
const MAX_GROUP: usize = 512;
/// The source under which `still_connected` beacons' identities are recorded.
pub const STILL_SOURCE: &str = "sdk_still_connected";
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
    #[error(
        "{what} does not have the tables this mau-collector expects ({detail}); refusing to start"
    )]
    WrongShape { what: String, detail: String },
    #[error("{path} is damaged (integrity check: {detail}); restore it from a backup")]
    Damaged { path: String, detail: String },
    /// The file at the path is no longer the one open: deleted or swapped under us.
    #[error("the database file {0} was deleted or replaced while the collector ran; restart it")]
    Replaced(String),
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
        if is_postgres(s) {
            tls::parse(s).map_err(|e| e.to_string())?;
            Ok(Db::Postgres(s.to_owned()))
        } else if s.is_empty() {
            Err("the database path is empty".into())
        } else {
            Ok(Db::Sqlite(s.into()))
        }
    }
}

fn is_postgres(db: &str) -> bool {
    db.starts_with("postgres://") || db.starts_with("postgresql://")
}

/// Never prints a password: PostgreSQL shows as `postgres://host:port/dbname`.
impl fmt::Display for Db {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Db::Sqlite(p) => write!(f, "{}", p.display()),
            Db::Postgres(url) => {
                let Ok((c, _)) = tls::parse(url) else {
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

impl Db {
    /// `--db` with `--db-ca-file`: the CA that PostgreSQL's certificate must chain to,
    /// winning over `sslrootcert` in the URL. A SQLite file has no use for one: an error.
    pub fn with_ca_file(db: &str, ca: Option<&Path>) -> Result<Db, String> {
        match ca {
            None => db.parse(),
            Some(ca) if is_postgres(db) => tls::with_ca_file(db, ca)?.parse(),
            Some(_) => Err("--db-ca-file is for a PostgreSQL database only".into()),
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

/// One MAU subject's line in a month, all sources merged. `identity` holds the subject
/// (a chat identity or a channel address, see `subject_kind`): the name 0.1 exports had.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IdentityRow {
    pub identity: String,
    pub subject_kind: String,
    /// Every source that saw it, sorted, `;`-separated: `sdk_connect;webhook:onMessageAdded`.
    pub sources: String,
    pub first_seen: String,
    pub last_seen: String,
    /// SDK connect beacons (distinct `event_id`s); 0 for subjects seen only server-side.
    pub connects: i64,
}

/// One subject seen by one source in a month (the report's input).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ActivityRow {
    pub subject_kind: String,
    pub subject: String,
    pub source: String,
    pub first_seen: String,
    pub last_seen: String,
    pub connects: i64,
}

/// One context an identity's SDK clients connected from in a month (`subject_contexts`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ContextRow {
    pub identity: String,
    /// `None` for beacons without a context (older SDKs, or none given).
    pub context: Option<String>,
    /// The reason of the first connect from this context.
    pub reason: Option<String>,
    /// The first connect's corrected event time.
    pub first_seen: String,
    /// Connect and still_connected beacons from this context.
    pub beacons: i64,
}

impl ContextRow {
    /// A stored row; `''` is the stored form of "no context".
    pub(crate) fn stored(
        identity: String,
        context: String,
        reason: Option<String>,
        first_seen: String,
        beacons: i64,
    ) -> ContextRow {
        ContextRow {
            identity,
            context: (!context.is_empty()).then_some(context),
            reason,
            first_seen,
            beacons,
        }
    }
}

/// The tokens logged for one identity in a month.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TokenIdentity {
    pub identity: String,
    pub tokens: i64,
    pub first_issued: String,
    pub last_issued: String,
}

/// An access token the team's backend issued: who and when, never the token itself.
#[derive(Debug, Clone, PartialEq)]
pub struct TokenRecord {
    /// Idempotency key: `id:<token_id>`, else `at:<identity>\n<issued_at>`.
    pub key: String,
    pub identity: String,
    pub issued_at: OffsetDateTime,
    pub expires_at: Option<OffsetDateTime>,
    pub received_at: OffsetDateTime,
}

impl TokenRecord {
    /// The UTC month the token was issued in.
    pub fn month(&self) -> Month {
        Month::of(self.issued_at)
    }
}

/// What an MAU subject is: Twilio counts chat identities and channel addresses apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SubjectKind {
    Identity,
    Address,
}

impl SubjectKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SubjectKind::Identity => "identity",
            SubjectKind::Address => "address",
        }
    }

    /// `identity` or `address`.
    pub fn parse(s: &str) -> Option<SubjectKind> {
        match s {
            "identity" => Some(SubjectKind::Identity),
            "address" => Some(SubjectKind::Address),
            _ => None,
        }
    }
}

/// A subject seen by a server-side source at a time.
#[derive(Debug, Clone, PartialEq)]
pub struct Sighting {
    pub kind: SubjectKind,
    pub subject: String,
    /// `webhook:<EventType>`, `event_stream:<type>` or `rest_sync`.
    pub source: String,
    pub at: OffsetDateTime,
}

/// The sightings of one delivery. With a key (an Event Streams `id`, a REST resource
/// sid), the first delivery is stored and later ones with the same key are ignored.
#[derive(Debug, Clone, PartialEq)]
pub struct Observation {
    pub key: Option<String>,
    pub sightings: Vec<Sighting>,
}

/// What one request asks the group writer to commit.
pub(crate) enum Write {
    Beacons(Vec<Record>),
    Tokens(Vec<TokenRecord>),
    Observations(Vec<Observation>),
}

/// Column values of a sighting row: month, kind, subject, source, time.
pub(crate) fn sighting_row(s: &Sighting) -> [String; 5] {
    [
        Month::of(s.at).to_string(),
        s.kind.as_str().to_owned(),
        s.subject.clone(),
        s.source.clone(),
        format_time(s.at),
    ]
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub month: String,
    pub unique_identities: i64,
    pub connects: i64,
    pub first_seen: Option<String>,
    pub last_seen: Option<String>,
}

/// Twilio's billed count for a month and where it came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Billed {
    pub count: u64,
    /// `typed` (`--billed`, the dashboard) or `usage_records:<category>`.
    pub from: String,
    /// When it was stored; absent for a count given with one request only (`?billed=N`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recorded_at: Option<String>,
}

impl Billed {
    /// A count read from the `billed` table (never negative: only `set_billed` writes it).
    pub(crate) fn stored(count: i64, from: String, recorded_at: String) -> Billed {
        Billed {
            count: count.max(0) as u64,
            from,
            recorded_at: Some(recorded_at),
        }
    }
}

/// A table retention prunes: its key, and the column compared with the cutoff.
pub(crate) struct PruneTarget {
    pub table: &'static str,
    pub key: &'static str,
    pub column: &'static str,
    /// Compared with the month cutoff (else with the events' time cutoff).
    pub by_month: bool,
}

/// Raw events and delivery keys by time; the monthly rows by month. `billed` and `erased`
/// (counts, no subject) are kept.
pub(crate) const PRUNE_TARGETS: [PruneTarget; 6] = [
    PruneTarget {
        table: "events",
        key: "event_id",
        column: "event_at",
        by_month: false,
    },
    PruneTarget {
        table: "delivery_keys",
        key: "key",
        column: "seen_at",
        by_month: false,
    },
    PruneTarget {
        table: "identities",
        key: "month, identity",
        column: "month",
        by_month: true,
    },
    PruneTarget {
        table: "sightings",
        key: "month, subject_kind, subject, source",
        column: "month",
        by_month: true,
    },
    PruneTarget {
        table: "tokens",
        key: "token_key",
        column: "month",
        by_month: true,
    },
    PruneTarget {
        table: "subject_contexts",
        key: "month, identity, context",
        column: "month",
        by_month: true,
    },
];

impl PruneTarget {
    /// The count and the batch delete, with `?n` (SQLite) or `$n` (PostgreSQL) parameters:
    /// 1 the cutoff, 2 the batch size.
    pub(crate) fn sql(&self, sigil: char) -> (String, String) {
        let (table, key, column) = (self.table, self.key, self.column);
        (
            format!("SELECT count(*) FROM {table} WHERE {column} < {sigil}1"),
            format!(
                "DELETE FROM {table} WHERE ({key}) IN \
                 (SELECT {key} FROM {table} WHERE {column} < {sigil}1 LIMIT {sigil}2)"
            ),
        )
    }
}

/// The rows one erasure removed, per table, and the months the subject had rows in.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Erased {
    pub events: u64,
    pub identities: u64,
    pub tokens: u64,
    pub sightings: u64,
    /// Rows of `subject_contexts` (where its clients connected from).
    pub contexts: u64,
    /// Each of these months now counts the subject once among its erased subjects.
    pub months: Vec<String>,
}

impl Erased {
    /// Rows removed in all tables.
    pub fn rows(&self) -> u64 {
        self.events + self.identities + self.tokens + self.sightings + self.contexts
    }

    /// Adds another erasure's rows (for `forget --reapply`'s totals).
    pub fn add(&mut self, other: &Erased) {
        self.events += other.events;
        self.identities += other.identities;
        self.tokens += other.tokens;
        self.sightings += other.sightings;
        self.contexts += other.contexts;
    }
}

/// One month of `GET /v1/months`: the beacon summary, the subjects of every source and
/// the stored billed count, so the gap of each month shows without its report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MonthLine {
    #[serde(flatten)]
    pub summary: Summary,
    /// Unique MAU subjects from every source: the report's `seen`.
    pub subjects: i64,
    /// Subjects of the month erased on request (no longer in `subjects`).
    pub erased: i64,
    pub billed: Option<Billed>,
    /// billed − (subjects + erased), as the report's `unexplained`; null without a billed
    /// count.
    pub unexplained: Option<i64>,
}

impl MonthLine {
    pub(crate) fn new(
        summary: Summary,
        subjects: i64,
        erased: i64,
        billed: Option<Billed>,
    ) -> MonthLine {
        MonthLine {
            summary,
            subjects,
            erased,
            unexplained: billed.as_ref().map(|b| b.count as i64 - subjects - erased),
            billed,
        }
    }
}

/// The row a billed count is stored as: the count (refused past `i64::MAX`) and the time.
pub(crate) fn billed_row(count: u64) -> Result<(i64, String), StoreError> {
    let count = i64::try_from(count)
        .map_err(|_| StoreError::Config(format!("billed count {count} is too large")))?;
    Ok((count, format_time(OffsetDateTime::now_utc())))
}

/// Positions, in one write, of the beacons whose `event_id` was already stored for another
/// identity or month: not stored, and answered as a conflict.
pub type Conflicts = Vec<usize>;

/// How near a month's boundary a re-delivery's corrected event time may fall in the month
/// next to the one stored and still be the same event: the correction moves by the
/// network delay between deliveries.
pub(crate) const BOUNDARY_SLACK: time::Duration = time::Duration::minutes(10);

/// Whether a beacon whose `event_id` is already stored (for `identity` in `month`) is a
/// conflict rather than a retry: another identity, or another month, unless the two
/// months meet within `BOUNDARY_SLACK` of the new event time.
pub(crate) fn is_conflict(identity: &str, month: &str, r: &Record) -> bool {
    if identity != r.beacon.identity {
        return true;
    }
    if month == r.month.to_string() {
        return false;
    }
    let near = |t: OffsetDateTime| Month::of(t).to_string() == month;
    !(near(r.event_at - BOUNDARY_SLACK) || near(r.event_at + BOUNDARY_SLACK))
}

/// What one group commit did with its beacons, counted into the metrics once committed.
#[derive(Debug, Default)]
pub(crate) struct BeaconCounts {
    /// Stored now.
    pub accepted: usize,
    /// A retry of a beacon stored before: answered as stored, not stored again.
    pub duplicates: usize,
    /// An `event_id` stored for another identity or month.
    pub conflicts: usize,
}

impl BeaconCounts {
    pub(crate) fn record(&self) {
        let m = &crate::metrics::get().beacons;
        for (result, n) in [
            ("accepted", self.accepted),
            ("duplicate", self.duplicates),
            ("conflict", self.conflicts),
        ] {
            m.get_or_create(&crate::metrics::ResultLabel { result })
                .inc_by(n as u64);
        }
    }
}

/// Counts a group commit (its size and how long it took) into the metrics.
pub(crate) fn group_done(writes: usize, started: std::time::Instant) {
    let m = crate::metrics::get();
    m.group_commits.observe(writes as f64);
    m.group_commit_seconds
        .observe(started.elapsed().as_secs_f64());
}

/// A write waiting for its group's commit.
struct WriteJob {
    write: Write,
    done: oneshot::Sender<Result<Conflicts, StoreError>>,
}

/// Sends the jobs' records to the group writer and waits for the commit.
async fn submit(
    tx: &Option<mpsc::Sender<WriteJob>>,
    write: Write,
) -> Result<Conflicts, StoreError> {
    let Some(tx) = tx else {
        return Err(StoreError::Config("this store was opened read-only".into()));
    };
    let (done, wait) = oneshot::channel();
    tx.try_send(WriteJob { write, done }).map_err(|e| match e {
        mpsc::error::TrySendError::Full(_) => StoreError::Busy,
        mpsc::error::TrySendError::Closed(_) => StoreError::Backend("writer stopped".into()),
    })?;
    wait.await
        .unwrap_or_else(|_| Err(StoreError::Backend("writer stopped".into())))
}

/// Answers every job of a group: its own conflicts after a commit, or the group's error.
fn settle(jobs: Vec<WriteJob>, result: Result<Vec<Conflicts>, StoreError>) {
    let mut conflicts = match &result {
        Ok(c) => c.clone().into_iter(),
        Err(_) => Vec::new().into_iter(),
    };
    for job in jobs {
        let r = match &result {
            Ok(_) => Ok(conflicts.next().unwrap_or_default()),
            Err(e) => Err(e.clone_for_job()),
        };
        // The requester may have gone away; the data is stored regardless.
        let _ = job.done.send(r);
    }
}

impl StoreError {
    /// `backup` on PostgreSQL: its own tools do it.
    pub fn pg_dump() -> StoreError {
        StoreError::Config(
            "a PostgreSQL store is backed up with pg_dump, e.g. `pg_dump --format=custom \
             --file=mau-collector.dump \"$MAU_COLLECTOR_DB\"` (README: Operating the data)"
                .into(),
        )
    }

    /// One error answers many requests of a group.
    fn clone_for_job(&self) -> StoreError {
        match self {
            StoreError::Unavailable(m) => StoreError::Unavailable(m.clone()),
            StoreError::Busy => StoreError::Busy,
            StoreError::Replaced(p) => StoreError::Replaced(p.clone()),
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

    /// Whether the database still answers (PostgreSQL) or is still the file opened (SQLite).
    pub async fn health(&self) -> Result<(), StoreError> {
        match self {
            Store::Sqlite(s) => s.health(),
            Store::Postgres(s) => s.health().await,
        }
    }

    /// Ready for traffic: healthy, and the schema is the one this build knows (another
    /// instance may have migrated a shared database further).
    pub async fn ready(&self) -> Result<(), StoreError> {
        self.health().await?;
        let found = match self {
            Store::Sqlite(s) => s.schema_version().await?,
            Store::Postgres(s) => s.schema_version().await?,
        };
        schema::check_current(found, "the database")
    }

    /// PostgreSQL: the pool's connections (open, idle, waited for, most); `None` on SQLite.
    pub fn pool_status(&self) -> Option<[(&'static str, usize); 4]> {
        match self {
            Store::Sqlite(_) => None,
            Store::Postgres(s) => Some(s.pool_status()),
        }
    }

    /// The SQLite file, if that is the backend.
    pub fn file(&self) -> Option<&std::path::Path> {
        match self {
            Store::Sqlite(s) => Some(s.path()),
            Store::Postgres(_) => None,
        }
    }

    pub fn backend(&self) -> &'static str {
        match self {
            Store::Sqlite(_) => "sqlite",
            Store::Postgres(_) => "postgres",
        }
    }

    /// Stores the records of one request; returns once they are committed, with the
    /// positions of those whose `event_id` is taken by another identity or month.
    pub async fn insert(&self, records: Vec<Record>) -> Result<Conflicts, StoreError> {
        self.write(Write::Beacons(records)).await
    }

    /// Logs issued tokens (idempotent on their key); returns once committed.
    pub async fn log_tokens(&self, tokens: Vec<TokenRecord>) -> Result<(), StoreError> {
        self.write(Write::Tokens(tokens)).await.map(drop)
    }

    /// Records server-side sightings (keyed deliveries once); returns once committed.
    pub async fn observe(&self, observations: Vec<Observation>) -> Result<(), StoreError> {
        self.write(Write::Observations(observations))
            .await
            .map(drop)
    }

    async fn write(&self, write: Write) -> Result<Conflicts, StoreError> {
        match self {
            Store::Sqlite(s) => submit(&s.writer, write).await,
            Store::Postgres(s) => submit(&s.writer, write).await,
        }
    }

    /// Every (subject, source) pair of a month, ordered by subject, kind, source.
    pub async fn activity(&self, month: Month) -> Result<Vec<ActivityRow>, StoreError> {
        match self {
            Store::Sqlite(s) => s.activity(month).await,
            Store::Postgres(s) => s.activity(month).await,
        }
    }

    /// Every (identity, context) a month's SDK clients connected from, ordered by identity,
    /// then first connect, then context: an identity's first row is its first connect.
    pub async fn contexts(&self, month: Month) -> Result<Vec<ContextRow>, StoreError> {
        match self {
            Store::Sqlite(s) => s.contexts(month).await,
            Store::Postgres(s) => s.contexts(month).await,
        }
    }

    /// Per month: the `subject_contexts` rows and their beacons (for `copy`'s comparison).
    pub async fn context_totals(
        &self,
    ) -> Result<std::collections::BTreeMap<String, (i64, i64)>, StoreError> {
        match self {
            Store::Sqlite(s) => s.context_totals().await,
            Store::Postgres(s) => s.context_totals().await,
        }
    }

    /// The identities that had tokens issued in a month, with counts.
    pub async fn tokens(&self, month: Month) -> Result<Vec<TokenIdentity>, StoreError> {
        match self {
            Store::Sqlite(s) => s.tokens(month).await,
            Store::Postgres(s) => s.tokens(month).await,
        }
    }

    pub async fn summary(&self, month: Month) -> Result<Summary, StoreError> {
        match self {
            Store::Sqlite(s) => s.summary(month).await,
            Store::Postgres(s) => s.summary(month).await,
        }
    }

    /// Every month that has subjects or a billed count, newest first.
    pub async fn months(&self) -> Result<Vec<MonthLine>, StoreError> {
        match self {
            Store::Sqlite(s) => s.months().await,
            Store::Postgres(s) => s.months().await,
        }
    }

    /// The month's stored billed count, if one was stored.
    pub async fn billed(&self, month: Month) -> Result<Option<Billed>, StoreError> {
        match self {
            Store::Sqlite(s) => s.billed(month).await,
            Store::Postgres(s) => s.billed(month).await,
        }
    }

    /// Stores (or replaces) the month's billed count; returns it as stored. A direct write,
    /// not through the group writer: it is rare, and the CLI (which has no writer) makes it.
    pub async fn set_billed(
        &self,
        month: Month,
        count: u64,
        from: &str,
    ) -> Result<Billed, StoreError> {
        let (n, at) = billed_row(count)?;
        match self {
            Store::Sqlite(s) => s.set_billed(month, n, from, &at).await?,
            Store::Postgres(s) => s.set_billed(month, n, from, &at).await?,
        }
        Ok(Billed::stored(n, from.to_owned(), at))
    }

    /// Forgets the month's billed count (nothing happens if there was none).
    pub async fn clear_billed(&self, month: Month) -> Result<(), StoreError> {
        match self {
            Store::Sqlite(s) => s.clear_billed(month).await,
            Store::Postgres(s) => s.clear_billed(month).await,
        }
    }

    /// Removes a subject from every table and every month in one transaction, and counts
    /// it once as erased in each month it had rows in. A subject with no rows: all zero.
    pub async fn forget(&self, kind: SubjectKind, subject: &str) -> Result<Erased, StoreError> {
        match self {
            Store::Sqlite(s) => s.forget(kind, subject.to_owned()).await,
            Store::Postgres(s) => s.forget(kind, subject).await,
        }
    }

    /// Every subject the store holds, in any table and month (for `forget --reapply`);
    /// the backends answer (subject, kind).
    pub async fn subjects(&self) -> Result<Vec<(SubjectKind, String)>, StoreError> {
        let rows = match self {
            Store::Sqlite(s) => s.subjects().await?,
            Store::Postgres(s) => s.subjects().await?,
        };
        Ok(rows
            .into_iter()
            .filter_map(|(subject, kind)| SubjectKind::parse(&kind).map(|k| (k, subject)))
            .collect())
    }

    /// A consistent copy of a SQLite store, taken while it serves (`VACUUM INTO` a new
    /// file, synced, checked, then renamed into place); the copy's size. PostgreSQL: an
    /// error naming pg_dump.
    pub async fn backup(&self, to: &Path) -> Result<u64, StoreError> {
        match self {
            Store::Sqlite(s) => s.backup(to.to_owned()).await,
            Store::Postgres(_) => Err(StoreError::pg_dump()),
        }
    }

    /// Deletes (or, dry, counts) the rows before the cutoffs, table by table, in batches of
    /// `PRUNE_BATCH` rows, each its own transaction, pausing between them.
    pub async fn prune(
        &self,
        cut: &crate::retention::Cutoffs,
        dry_run: bool,
    ) -> Result<std::collections::BTreeMap<&'static str, u64>, StoreError> {
        use crate::retention::{PRUNE_BATCH, PRUNE_PAUSE};
        let mut out = std::collections::BTreeMap::new();
        for t in PRUNE_TARGETS {
            let cutoff = if t.by_month {
                &cut.months_before
            } else {
                &cut.events_before
            };
            let Some(cutoff) = cutoff.clone() else {
                continue;
            };
            let (count, delete) = match self {
                Store::Sqlite(_) => t.sql('?'),
                Store::Postgres(_) => t.sql('$'),
            };
            let n = if dry_run {
                match self {
                    Store::Sqlite(s) => s.count_before(count, cutoff).await?,
                    Store::Postgres(s) => s.count_before(&count, &cutoff).await?,
                }
            } else {
                let mut n = 0;
                loop {
                    let batch = PRUNE_BATCH as i64;
                    let d = match self {
                        Store::Sqlite(s) => {
                            s.delete_before(delete.clone(), cutoff.clone(), batch)
                                .await?
                        }
                        Store::Postgres(s) => s.delete_before(&delete, &cutoff, batch).await?,
                    };
                    n += d;
                    if d < PRUNE_BATCH {
                        break n;
                    }
                    tokio::time::sleep(PRUNE_PAUSE).await;
                }
            };
            out.insert(t.table, n);
        }
        Ok(out)
    }

    /// `copy`: the next batch of a table in key order after the key `after` (the first
    /// batch without one): at most `limit` rows, key columns first.
    pub async fn copy_read(
        &self,
        table: &'static copy::Table,
        after: Option<Vec<copy::Cell>>,
        limit: usize,
    ) -> Result<Vec<Vec<copy::Cell>>, StoreError> {
        match self {
            Store::Sqlite(s) => s.copy_read(table, after, limit).await,
            Store::Postgres(s) => s.copy_read(table, after, limit).await,
        }
    }

    /// `copy`: writes rows read by `copy_read` in one transaction (a key already there is
    /// merged as the table says); how many rows were new or changed.
    pub async fn copy_write(
        &self,
        table: &'static copy::Table,
        rows: Vec<Vec<copy::Cell>>,
    ) -> Result<u64, StoreError> {
        match self {
            Store::Sqlite(s) => s.copy_write(table, rows).await,
            Store::Postgres(s) => s.copy_write(table, rows).await,
        }
    }

    /// One direct statement (not through the group writer), written with `$n`
    /// parameters; the rows it changed. For small state such as the alerts' claims.
    pub(crate) async fn execute(
        &self,
        sql: &'static str,
        params: Vec<copy::Cell>,
    ) -> Result<u64, StoreError> {
        match self {
            Store::Sqlite(s) => s.execute(sql, params).await,
            Store::Postgres(s) => s.execute(sql, params).await,
        }
    }

    /// How many subjects of the month were erased on request.
    pub async fn erased(&self, month: Month) -> Result<i64, StoreError> {
        match self {
            Store::Sqlite(s) => s.erased(month).await,
            Store::Postgres(s) => s.erased(month).await,
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
            write: Write::Beacons(vec![]),
            done,
        })
        .unwrap();
        let tx = Some(tx);
        let empty = || Write::Tokens(vec![]);
        assert!(matches!(submit(&tx, empty()).await, Err(StoreError::Busy)));
        drop(rx);
        assert!(matches!(
            submit(&tx, empty()).await,
            Err(StoreError::Backend(_))
        ));
        assert!(matches!(
            submit(&None, empty()).await,
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
