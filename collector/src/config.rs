//! Command line and environment configuration.

use crate::export::Format;
use crate::month::Month;
use crate::store::Db;
use clap::{Args, Parser, Subcommand};
use std::net::SocketAddr;
use std::path::PathBuf;

/// Reference collector for mau-beacon: stores connect beacons and reports the
/// Monthly Active Users a Twilio Conversations bill should match.
#[derive(Debug, Parser)]
#[command(name = "mau-collector", version, about)]
pub struct Cli {
    /// Where beacons are stored: a SQLite file (created by `serve` if missing), or a
    /// PostgreSQL database as `postgres://user[:password]@host:port/dbname` (or
    /// `postgresql://`; TLS with `?sslmode=verify-full` and the rest of libpq's modes).
    /// Put a URL with a password in the env var, not the flag, which shows in the process
    /// list.
    #[arg(
        long,
        global = true,
        value_name = "PATH|URL",
        env = "MAU_COLLECTOR_DB",
        hide_env_values = true,
        default_value = "mau-collector.db"
    )]
    pub db: String,

    /// Log format on stderr: `text`, or `json` (one object a line, for log shippers).
    #[arg(
        long,
        global = true,
        value_enum,
        env = "MAU_COLLECTOR_LOG_FORMAT",
        default_value = "text",
        hide_env_values = true
    )]
    pub log_format: LogFormat,

    /// Which logs to keep, in tracing's filter syntax: `info`, `warn`, `debug`,
    /// `info,mau_collector::access=off` (drops the access log).
    #[arg(
        long = "log",
        global = true,
        value_name = "FILTER",
        env = "MAU_COLLECTOR_LOG",
        default_value = "info",
        hide_env_values = true
    )]
    pub log: String,

    /// PostgreSQL over TLS: the CA (PEM) that the server's certificate must chain to.
    /// Wins over `sslrootcert` in the `--db` URL; with it, `sslmode=prefer` and `require`
    /// check the chain as `verify-ca` does.
    #[arg(
        long,
        global = true,
        value_name = "PATH",
        env = "MAU_COLLECTOR_DB_CA_FILE",
        hide_env_values = true
    )]
    pub db_ca_file: Option<PathBuf>,

    /// The key the erasure log's hashes are made with (HMAC-SHA256), at least 16 bytes.
    /// Without one, erasure is refused. Keep it: a lost key makes the log unusable for
    /// `forget --reapply`. Use the env var: flags show in process lists.
    #[arg(
        long,
        global = true,
        value_name = "KEY",
        env = "MAU_COLLECTOR_ERASURE_KEY",
        hide_env_values = true
    )]
    pub erasure_key: Option<String>,

    /// The erasure log: an append-only file outside the database, one line per erasure
    /// (time and keyed hash). Default: beside a SQLite file (`<file>.erasures`); required
    /// with PostgreSQL. Every instance and the CLI must use the same file.
    #[arg(
        long,
        global = true,
        value_name = "PATH",
        env = "MAU_COLLECTOR_ERASURE_LOG",
        hide_env_values = true
    )]
    pub erasure_log: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

impl Cli {
    /// The database to use. Parsed here rather than by clap, whose error would repeat the
    /// value, and with it a password in the URL.
    pub fn db(&self) -> Result<Db, String> {
        Db::with_ca_file(&self.db, self.db_ca_file.as_deref())
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HTTP collector.
    Serve(Box<ServeArgs>),
    /// Write a month's identities to stdout.
    Export {
        /// The UTC month, YYYY-MM.
        #[arg(long, value_name = "YYYY-MM", value_parser = parse_month)]
        month: Month,
        /// Output format.
        #[arg(long, value_enum, default_value = "csv")]
        format: Format,
    },
    /// Print a month's reconciliation: subjects per source, tokens, and the gap against
    /// Twilio's billed count. Without --billed or --twilio, the count stored for the month
    /// (by an earlier report or the dashboard) is used.
    Report {
        /// The UTC month, YYYY-MM.
        #[arg(long, value_name = "YYYY-MM", value_parser = parse_month)]
        month: Month,
        /// The MAU count on the Twilio bill for that month, typed by hand; stored for the
        /// month (replacing any stored before).
        #[arg(long, value_name = "N")]
        billed: Option<u64>,
        /// Read the billed count from Twilio's Usage Records API (credentials from
        /// TWILIO_ACCOUNT_SID + TWILIO_AUTH_TOKEN, or TWILIO_API_KEY + TWILIO_API_SECRET);
        /// a count found is stored for the month (replacing any stored before).
        #[arg(long, conflicts_with = "billed")]
        twilio: bool,
        /// The Usage Records category that holds the Conversations MAU count.
        #[arg(long, value_name = "CATEGORY", default_value = "pchat-users")]
        usage_category: String,
        /// Output format.
        #[arg(long, value_enum, default_value = "text")]
        format: ReportFormat,
        #[command(flatten)]
        pricing: PricingArgs,
    },
    /// Erase a subject on request: log its keyed hash (synced), then remove it from every
    /// table and month in one transaction. Prints the rows removed per table (JSON).
    /// Idempotent. Needs the erasure key (MAU_COLLECTOR_ERASURE_KEY).
    Forget(ForgetArgs),
    /// Prune old rows now, as `serve` does hourly with the same flags: raw events and
    /// delivery keys older than --retain-events-days, monthly rows of months older than
    /// --retain-months. Prints the rows per table (JSON).
    Prune {
        #[command(flatten)]
        retention: RetentionArgs,
        /// The backdating window `serve` uses: the retention may not be shorter.
        #[arg(long, value_name = "DAYS", env = "MAU_COLLECTOR_MAX_BACKDATE_DAYS",
              default_value_t = 35, value_parser = clap::value_parser!(u32).range(1..=3650),
              hide_env_values = true)]
        max_backdate_days: u32,
        /// Count what would go; delete nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// A consistent copy of a SQLite store, taken while it serves (PostgreSQL: pg_dump).
    Backup {
        /// The copy to write; refused if it exists.
        #[arg(long, value_name = "FILE")]
        to: PathBuf,
    },
    /// Copy every table from one store to another (SQLite or PostgreSQL, either way), in
    /// batches each committed on its own, then compare each month's counts on both sides
    /// (exit status 1 if they differ). The target is created or migrated as `serve` would;
    /// the source must be current. Safe to rerun: rows already copied are not copied again,
    /// and a run stopped half-way is finished by running it again. --db-ca-file applies to
    /// the PostgreSQL ends.
    Copy(CopyArgs),
    /// Read what Twilio knows (REST API).
    Twilio {
        #[command(subcommand)]
        command: TwilioCommand,
    },
}

#[derive(Debug, Subcommand)]
pub enum TwilioCommand {
    /// Walk the Conversations REST API for a month (conversations, participants added,
    /// message authors) and record every subject as source `rest_sync`. Safe to rerun.
    /// Credentials from the environment: TWILIO_ACCOUNT_SID + TWILIO_AUTH_TOKEN, or
    /// TWILIO_API_KEY + TWILIO_API_SECRET (with TWILIO_ACCOUNT_SID).
    Sync {
        /// The UTC month, YYYY-MM.
        #[arg(long, value_name = "YYYY-MM", value_parser = parse_month)]
        month: Month,
        /// A Conversation Service SID (IS…) to walk instead of the default service.
        #[arg(long, value_name = "IS_SID")]
        service: Option<String>,
    },
}

/// `copy`: the two stores.
#[derive(Debug, Args)]
pub struct CopyArgs {
    /// The store to read: a SQLite file or a `postgres://` URL (as --db takes it).
    #[arg(
        long,
        value_name = "PATH|URL",
        env = "MAU_COLLECTOR_COPY_FROM",
        hide_env_values = true
    )]
    pub from: String,
    /// The store to write: a SQLite file (created if missing) or a `postgres://` URL.
    #[arg(
        long,
        value_name = "PATH|URL",
        env = "MAU_COLLECTOR_COPY_TO",
        hide_env_values = true
    )]
    pub to: String,
    /// Rows per batch (each batch is one transaction).
    #[arg(long, hide = true, env = "MAU_COLLECTOR_COPY_BATCH", default_value_t = crate::copy::BATCH,
          value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub batch: u32,
    /// A pause after each batch (for tests that stop a copy half-way).
    #[arg(
        long,
        hide = true,
        env = "MAU_COLLECTOR_COPY_PAUSE_MS",
        default_value_t = 0
    )]
    pub pause_ms: u64,
}

/// The team's price per MAU, for the costs in the report, the forecast and the budget.
#[derive(Debug, Clone, Args)]
pub struct PricingArgs {
    /// What one MAU costs (Twilio's list price: 0.05 USD). Without it, costs are unknown
    /// and shown as such.
    #[arg(
        long,
        value_name = "PRICE",
        env = "MAU_COLLECTOR_PRICE_PER_MAU",
        hide_env_values = true
    )]
    pub price_per_mau: Option<f64>,
    /// MAUs each month that cost nothing (Twilio's list: 200).
    #[arg(
        long,
        value_name = "N",
        env = "MAU_COLLECTOR_FREE_MAU",
        default_value_t = 0,
        hide_env_values = true
    )]
    pub free_mau: u64,
}

/// Budget alerts: a POST to `--alert-url` when the month's forecast, then its actual
/// count, goes over a budget.
#[derive(Debug, Clone, Args)]
pub struct AlertArgs {
    /// Alert when the month's MAU subjects (forecast or actual) go over this many.
    #[arg(
        long,
        value_name = "N",
        env = "MAU_COLLECTOR_BUDGET_MAU",
        hide_env_values = true
    )]
    pub budget_mau: Option<u64>,
    /// Alert when the month's bill (forecast or actual) goes over this amount; needs
    /// --price-per-mau.
    #[arg(
        long,
        value_name = "AMOUNT",
        env = "MAU_COLLECTOR_BUDGET_USD",
        hide_env_values = true
    )]
    pub budget_usd: Option<f64>,
    /// Where alerts are POSTed (JSON with a `text` field: a Slack or Teams incoming
    /// webhook takes it as is). https, or http to a loopback host. It usually holds a
    /// secret: use the env var, not the flag, which shows in the process list.
    #[arg(
        long,
        value_name = "URL",
        env = "MAU_COLLECTOR_ALERT_URL",
        hide_env_values = true
    )]
    pub alert_url: Option<String>,
    /// For tests only: how often the budget is checked (default each minute).
    #[arg(long, hide = true, env = "MAU_COLLECTOR_ALERT_CHECK_MS", default_value_t = 60_000,
          value_parser = clap::value_parser!(u64).range(10..=86_400_000), hide_env_values = true)]
    pub alert_check_ms: u64,
    /// For tests only: the first pause before a failed alert is sent again (doubling).
    #[arg(long, hide = true, env = "MAU_COLLECTOR_ALERT_RETRY_MS", default_value_t = 2_000,
          value_parser = clap::value_parser!(u64).range(10..=3_600_000), hide_env_values = true)]
    pub alert_retry_ms: u64,
}

/// How long rows are kept (default: for ever).
#[derive(Debug, Args)]
pub struct RetentionArgs {
    /// Keep raw events (and delivery keys) this many days, then prune them; at least
    /// --max-backdate-days + 1. Monthly counts are not touched.
    #[arg(
        long,
        value_name = "DAYS",
        env = "MAU_COLLECTOR_RETAIN_EVENTS_DAYS",
        hide_env_values = true
    )]
    pub retain_events_days: Option<u32>,
    /// Keep the monthly rows (identities, sightings, tokens) of this many months, the
    /// current one included; older months are pruned (their billed and erased counts stay).
    #[arg(
        long,
        value_name = "MONTHS",
        env = "MAU_COLLECTOR_RETAIN_MONTHS",
        hide_env_values = true
    )]
    pub retain_months: Option<u32>,
}

#[derive(Debug, Args)]
#[group(required = true, multiple = false)]
pub struct ForgetArgs {
    /// A chat identity to erase.
    #[arg(long, value_name = "IDENTITY")]
    pub identity: Option<String>,
    /// A channel address to erase (e.g. +14155550100, whatsapp:+14155550100).
    #[arg(long, value_name = "ADDRESS")]
    pub address: Option<String>,
    /// Erase again every subject of the store whose hash is in the erasure log (run it
    /// after restoring a backup, before serving).
    #[arg(long)]
    pub reapply: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ReportFormat {
    Text,
    Json,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address and port to listen on. Port 0 picks a free port; the bound address is
    /// printed on stdout as `listening on http://ADDR`.
    #[arg(
        long,
        value_name = "ADDR:PORT",
        env = "MAU_COLLECTOR_LISTEN",
        default_value = "127.0.0.1:8787",
        hide_env_values = true
    )]
    pub listen: SocketAddr,

    /// Token for the read endpoints (`Authorization: Bearer TOKEN`), at least 16 bytes.
    /// Without one, reads are closed. Use the env var: flags show in process lists.
    #[arg(
        long,
        value_name = "TOKEN",
        env = "MAU_COLLECTOR_ADMIN_TOKEN",
        hide_env_values = true
    )]
    pub admin_token: Option<String>,

    /// Bearer secret for `POST /v1/tokens`, the token-issuance log your backend writes, at
    /// least 16 bytes. Distinct from the admin token. Without one, the endpoint answers 403.
    #[arg(
        long,
        value_name = "SECRET",
        env = "MAU_COLLECTOR_INGEST_TOKEN",
        hide_env_values = true
    )]
    pub ingest_token: Option<String>,

    /// Twilio account auth token, to check `X-Twilio-Signature` on webhooks and Event
    /// Streams deliveries. Without one, those endpoints answer 403.
    #[arg(
        long,
        value_name = "TOKEN",
        env = "TWILIO_AUTH_TOKEN",
        hide_env_values = true
    )]
    pub twilio_auth_token: Option<String>,

    /// The collector's base URL as Twilio calls it, e.g. https://app.example.com/t (what
    /// the signature covers). Default: from the Host and X-Forwarded-Proto headers.
    #[arg(
        long,
        value_name = "URL",
        env = "MAU_COLLECTOR_PUBLIC_URL",
        hide_env_values = true
    )]
    pub public_url: Option<String>,

    /// Origin allowed to call the collector from a browser, e.g. https://app.example.com.
    /// Repeat the flag (or comma-separate in the env var) for several; `*` allows any
    /// origin (echoed back, since credentials are allowed). Default: same-origin only.
    #[arg(
        long = "allow-origin",
        value_name = "ORIGIN",
        env = "MAU_COLLECTOR_ALLOW_ORIGIN",
        value_delimiter = ',',
        hide_env_values = true
    )]
    pub allow_origins: Vec<String>,

    /// Serve this folder's files at `/` (index.html for `/`), e.g. the demo page.
    #[arg(
        long,
        value_name = "DIR",
        env = "MAU_COLLECTOR_STATIC_DIR",
        hide_env_values = true
    )]
    pub static_dir: Option<PathBuf>,

    /// Most ingest requests waiting for the disk; past it, requests get 503 + Retry-After.
    #[arg(long, value_name = "N", env = "MAU_COLLECTOR_QUEUE", default_value_t = 1024,
          value_parser = clap::value_parser!(u32).range(1..=1_000_000), hide_env_values = true)]
    pub queue: u32,

    /// Most exports streaming at once; past it, reads get 503 + Retry-After.
    #[arg(long, value_name = "N", env = "MAU_COLLECTOR_MAX_EXPORTS", default_value_t = 4,
          value_parser = clap::value_parser!(u32).range(1..=1000), hide_env_values = true)]
    pub max_exports: u32,

    /// Longest an identity export may take from its answer's start to its end; then the
    /// connection is dropped and the export slot freed (a reader that takes a byte now and
    /// then never trips the write timeout).
    #[arg(long, value_name = "SECS", env = "MAU_COLLECTOR_EXPORT_TIMEOUT", default_value_t = 600,
          value_parser = clap::value_parser!(u64).range(1..=86_400), hide_env_values = true)]
    pub export_timeout: u64,

    /// PostgreSQL: most connections this instance opens (commits run in parallel up to it).
    #[arg(long, value_name = "N", env = "MAU_COLLECTOR_DB_POOL", default_value_t = 16,
          value_parser = clap::value_parser!(u32).range(1..=1000), hide_env_values = true)]
    pub db_pool: u32,

    /// PostgreSQL: longest wait for a free or new connection, in milliseconds; past it,
    /// requests get 503 + Retry-After.
    #[arg(long, value_name = "MS", env = "MAU_COLLECTOR_DB_WAIT_MS", default_value_t = 2000,
          value_parser = clap::value_parser!(u64).range(1..=600_000), hide_env_values = true)]
    pub db_wait_ms: u64,

    /// Seconds a peer may take to send a request's headers, counted from the connection's
    /// start or the end of the previous answer (so also the idle keep-alive timeout).
    #[arg(long, value_name = "SECS", env = "MAU_COLLECTOR_HEADER_TIMEOUT", default_value_t = 10,
          value_parser = clap::value_parser!(u64).range(1..=3600), hide_env_values = true)]
    pub header_timeout: u64,

    /// Seconds a peer may take to send a request body; past it: 408 `body_timeout`.
    #[arg(long, value_name = "SECS", env = "MAU_COLLECTOR_BODY_TIMEOUT", default_value_t = 10,
          value_parser = clap::value_parser!(u64).range(1..=3600), hide_env_values = true)]
    pub body_timeout: u64,

    /// Seconds a write to a peer may stay blocked (a reader that stopped reading, e.g. a
    /// stalled export) before the connection is closed.
    #[arg(long, value_name = "SECS", env = "MAU_COLLECTOR_WRITE_TIMEOUT", default_value_t = 30,
          value_parser = clap::value_parser!(u64).range(1..=3600), hide_env_values = true)]
    pub write_timeout: u64,

    /// Most connections open at once; past it, new ones wait in the listen backlog until
    /// one closes. Keep it under the process's file limit (`ulimit -n`).
    #[arg(long, value_name = "N", env = "MAU_COLLECTOR_MAX_CONNECTIONS", default_value_t = 512,
          value_parser = clap::value_parser!(u32).range(1..=1_000_000), hide_env_values = true)]
    pub max_connections: u32,

    /// Most connections open at once from one client address (IPv6: one /64), so one peer
    /// cannot take every slot; past it a new one is answered 503 `too_many_connections`
    /// and closed. Trusted proxies are exempt. 0 turns the cap off.
    #[arg(
        long,
        value_name = "N",
        env = "MAU_COLLECTOR_MAX_CONNECTIONS_PER_ADDRESS",
        default_value_t = 64,
        hide_env_values = true
    )]
    pub max_connections_per_address: u32,

    /// On SIGTERM or SIGINT: seconds open requests get to finish before their connections
    /// are dropped and the process exits.
    #[arg(long, value_name = "SECS", env = "MAU_COLLECTOR_SHUTDOWN_TIMEOUT", default_value_t = 10,
          value_parser = clap::value_parser!(u64).range(0..=3600), hide_env_values = true)]
    pub shutdown_timeout: u64,

    /// Days a beacon's corrected event time may lie before its receipt; older beacons get
    /// 400 `event_too_old`. A month thus stops taking beacons this many days after it ends
    /// (which can be after Twilio billed it).
    #[arg(long, value_name = "DAYS", env = "MAU_COLLECTOR_MAX_BACKDATE_DAYS", default_value_t = 35,
          value_parser = clap::value_parser!(u32).range(1..=3650), hide_env_values = true)]
    pub max_backdate_days: u32,

    /// Beacon requests per second per client address (token bucket refill); 0 turns the
    /// limit off. Past it: 429 `rate_limited` with Retry-After.
    #[arg(
        long,
        value_name = "N",
        env = "MAU_COLLECTOR_RATE_LIMIT",
        default_value_t = 20,
        hide_env_values = true
    )]
    pub rate_limit: u32,

    /// Beacon requests a client address may send at once (token bucket size).
    #[arg(
        long,
        value_name = "N",
        env = "MAU_COLLECTOR_RATE_BURST",
        default_value_t = 100,
        hide_env_values = true
    )]
    pub rate_burst: u32,

    /// Distinct identities per client address per minute; 0 turns the cap off. Past it:
    /// 429 `too_many_identities` with Retry-After.
    #[arg(
        long,
        value_name = "N",
        env = "MAU_COLLECTOR_IDENTITIES_PER_MINUTE",
        default_value_t = 600,
        hide_env_values = true
    )]
    pub identities_per_minute: u32,

    /// A reverse proxy's address whose X-Forwarded-For names the client; repeat for several
    /// (comma-separated in the env var). Without one, the peer address is the client.
    #[arg(
        long = "trusted-proxy",
        value_name = "IP",
        env = "MAU_COLLECTOR_TRUSTED_PROXY",
        value_delimiter = ',',
        hide_env_values = true
    )]
    pub trusted_proxies: Vec<std::net::IpAddr>,

    /// Secret shared with the backend that mints tickets (`v1.<exp>.<sig>`); beacons that
    /// carry a ticket are checked against it. Use the env var: flags show in process lists.
    #[arg(
        long,
        value_name = "SECRET",
        env = "MAU_COLLECTOR_TICKET_SECRET",
        hide_env_values = true
    )]
    pub ticket_secret: Option<String>,

    /// Refuse every beacon without a valid ticket (401 `bad_ticket`, nothing stored).
    #[arg(
        long,
        env = "MAU_COLLECTOR_REQUIRE_TICKET",
        requires = "ticket_secret",
        hide_env_values = true
    )]
    pub require_ticket: bool,

    /// Beacons, tokens and sightings of subjects in the erasure log are answered 2xx and
    /// not stored (counted in /v1/stats and metrics). Without it, they are new activity and
    /// stored as usual: erasure is of the past, not a block list. Needs the erasure key.
    #[arg(long, env = "MAU_COLLECTOR_REFUSE_ERASED", hide_env_values = true)]
    pub refuse_erased: bool,

    #[command(flatten)]
    pub retention: RetentionArgs,

    #[command(flatten)]
    pub pricing: PricingArgs,

    #[command(flatten)]
    pub alerts: AlertArgs,

    /// Serve `GET /metrics` (Prometheus text format) on this listener to requests with
    /// `Authorization: Bearer TOKEN` (at least 16 bytes). Without it or --metrics-listen,
    /// metrics are off and /metrics answers 403.
    #[arg(
        long,
        value_name = "TOKEN",
        env = "MAU_COLLECTOR_METRICS_TOKEN",
        hide_env_values = true
    )]
    pub metrics_token: Option<String>,

    /// Serve `GET /metrics` without a token on a listener of its own, e.g. 127.0.0.1:9187:
    /// an address only your Prometheus reaches.
    #[arg(
        long,
        value_name = "ADDR:PORT",
        env = "MAU_COLLECTOR_METRICS_LISTEN",
        hide_env_values = true
    )]
    pub metrics_listen: Option<SocketAddr>,
}

fn parse_month(s: &str) -> Result<Month, String> {
    Month::parse(s).ok_or_else(|| format!("{s:?} is not a month like 2026-11"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn db_flag_works_after_the_subcommand() {
        let cli = Cli::try_parse_from([
            "mau-collector",
            "export",
            "--month",
            "2026-11",
            "--format",
            "json",
            "--db",
            "x.db",
        ])
        .unwrap();
        assert_eq!(cli.db(), Ok(Db::Sqlite(PathBuf::from("x.db"))));
        let pg = Cli::try_parse_from([
            "mau-collector",
            "--db",
            "postgresql://mau@127.0.0.1:5432/mau",
            "report",
            "--month",
            "2026-11",
        ])
        .unwrap();
        assert!(matches!(pg.db(), Ok(Db::Postgres(_))));
        let bad = Cli::try_parse_from([
            "mau-collector",
            "--db",
            "postgres://u:hunter2@h:x/d",
            "report",
            "--month",
            "2026-11",
        ])
        .unwrap()
        .db();
        let err = format!("{bad:?}");
        assert!(
            err.contains("bad PostgreSQL URL") && !err.contains("hunter2"),
            "{err}"
        );
        assert!(matches!(
            cli.command,
            Command::Export {
                format: Format::Json,
                ..
            }
        ));
        assert!(Cli::try_parse_from(["mau-collector", "report", "--month", "2026-13"]).is_err());
    }

    #[test]
    fn db_ca_file_goes_with_a_postgres_url_only() {
        let parse = |db: &str| {
            Cli::try_parse_from([
                "mau-collector",
                "--db",
                db,
                "--db-ca-file",
                "ca.pem",
                "report",
                "--month",
                "2026-11",
            ])
            .unwrap()
            .db()
        };
        // verify-ca needs a CA, which the flag gives.
        let pg = parse("postgres://u@h/d?sslmode=verify-ca").unwrap();
        assert!(matches!(pg, Db::Postgres(u) if u.ends_with("sslrootcert=ca%2Epem")));
        assert!(parse("x.db")
            .unwrap_err()
            .contains("--db-ca-file is for a PostgreSQL"));
    }

    #[test]
    fn origins_repeat() {
        let cli = Cli::try_parse_from([
            "mau-collector",
            "serve",
            "--allow-origin",
            "https://a.example",
            "--allow-origin",
            "https://b.example",
        ])
        .unwrap();
        let Command::Serve(s) = cli.command else {
            panic!()
        };
        assert_eq!(s.allow_origins, ["https://a.example", "https://b.example"]);
        assert_eq!(s.listen.to_string(), "127.0.0.1:8787");
    }
}
