//! mau-collector: the reference collector for mau-beacon (the command line).

use clap::Parser;
use mau_collector::alerts::AlertConfig;
use mau_collector::config::{
    Cli, Command, CopyArgs, ForgetArgs, LogFormat, PricingArgs, ReportFormat, RetentionArgs,
    ServeArgs, TwilioCommand,
};
use mau_collector::erasure::{self, ErasureKey, ErasureLog};
use mau_collector::http::auth::check_secret;
use mau_collector::http::limits::{LimitConfig, Limits};
use mau_collector::http::Tickets;
use mau_collector::pricing::Pricing;
use mau_collector::reconcile::{self, Billed};
use mau_collector::retention::Retention;
use mau_collector::serve;
use mau_collector::store::{Db, Options, Store, SubjectKind};
use mau_collector::twilio::{rest, sync};
use mau_collector::{app, export, month::Month, ticket, AppState, Origins};
use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;
use tracing_subscriber::EnvFilter;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let filter = match EnvFilter::try_new(&cli.log) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("mau-collector: --log: {e}");
            return ExitCode::from(2);
        }
    };
    // Logs go to stderr; stdout is kept for exports and the listening line.
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match cli.log_format {
        LogFormat::Text => logs.with_ansi(std::io::stderr().is_terminal()).init(),
        LogFormat::Json => logs
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .init(),
    }
    // `copy` names its two stores itself (the global --db is not used).
    if let Command::Copy(args) = &cli.command {
        let ca = cli.db_ca_file.as_deref();
        return exit(runtime(false).and_then(|rt| rt.block_on(copy_cmd(args, ca))));
    }
    let db = match cli.db() {
        Ok(db) => db,
        Err(e) => {
            eprintln!("mau-collector: --db: {e}");
            return ExitCode::from(2);
        }
    };
    let erasure = ErasureConfig {
        key: cli.erasure_key.clone(),
        log: cli.erasure_log.clone(),
    };
    let result = match cli.command {
        Command::Serve(args) => runtime(true).and_then(|rt| {
            let r = rt.block_on(serve(&db, *args, erasure));
            // Connections dropped at the shutdown deadline are not waited for.
            rt.shutdown_timeout(Duration::from_millis(100));
            r
        }),
        Command::Export { month, format } => {
            runtime(false).and_then(|rt| rt.block_on(export_cmd(&db, month, format)))
        }
        Command::Report {
            month,
            billed,
            twilio,
            usage_category,
            format,
            pricing,
        } => {
            let billed = match (twilio, billed) {
                (true, _) => BilledFrom::Twilio(usage_category),
                (false, Some(n)) => BilledFrom::Typed(n),
                (false, None) => BilledFrom::Unknown,
            };
            runtime(false)
                .and_then(|rt| rt.block_on(report_cmd(&db, month, billed, format, &pricing)))
        }
        Command::Forget(args) => {
            runtime(false).and_then(|rt| rt.block_on(forget_cmd(&db, erasure, args)))
        }
        Command::Prune {
            retention,
            max_backdate_days,
            dry_run,
        } => runtime(false)
            .and_then(|rt| rt.block_on(prune_cmd(&db, &retention, max_backdate_days, dry_run))),
        Command::Backup { to } => runtime(false).and_then(|rt| rt.block_on(backup_cmd(&db, &to))),
        Command::Copy(_) => unreachable!("handled above"),
        Command::Twilio {
            command: TwilioCommand::Sync { month, service },
        } => runtime(false).and_then(|rt| rt.block_on(sync_cmd(&db, month, service))),
    };
    exit(result)
}

fn exit(result: Result<(), BoxError>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mau-collector: {e}");
            ExitCode::FAILURE
        }
    }
}

fn runtime(multi_thread: bool) -> Result<tokio::runtime::Runtime, BoxError> {
    let mut b = if multi_thread {
        tokio::runtime::Builder::new_multi_thread()
    } else {
        tokio::runtime::Builder::new_current_thread()
    };
    Ok(b.enable_all().build()?)
}

/// `--erasure-key` and `--erasure-log`, for `serve` and `forget`.
struct ErasureConfig {
    key: Option<String>,
    log: Option<std::path::PathBuf>,
}

impl ErasureConfig {
    /// The log, opened (created if missing) and read; the key is checked first.
    fn open(&self, db: &Db) -> Result<ErasureLog, BoxError> {
        let key = ErasureKey::new(self.key.as_deref())?;
        let path = erasure::log_path(self.log.as_deref(), db)?;
        Ok(ErasureLog::open(path, key)?)
    }
}

async fn serve(db: &Db, args: ServeArgs, erasure: ErasureConfig) -> Result<(), BoxError> {
    let opts = Options {
        queue: args.queue as usize,
        pool_size: args.db_pool as usize,
        pool_wait: Duration::from_millis(args.db_wait_ms),
    };
    // Checked before anything opens: an empty or short secret would make tickets forgeable.
    let tickets = match args.ticket_secret {
        Some(secret) => {
            ticket::check_secret(&secret).map_err(|e| format!("--ticket-secret: {e}"))?;
            Some(Tickets {
                secret,
                required: args.require_ticket,
            })
        }
        None => None,
    };
    // Secrets too short to resist guessing stop the collector; the message never shows them.
    for (flag, secret) in [
        ("--admin-token", &args.admin_token),
        ("--ingest-token", &args.ingest_token),
        ("--metrics-token", &args.metrics_token),
    ] {
        if let Some(secret) = secret {
            check_secret(flag, secret)?;
        }
    }
    // Checked before anything opens, naming the minimum.
    let retention = retention(&args.retention, args.max_backdate_days)?;
    let pricing = Pricing::from_args(&args.pricing)?;
    let alerts = AlertConfig::from_args(&args.alerts, &pricing)?;
    let erasure = match erasure.key {
        Some(_) => Some(Arc::new(erasure.open(db)?)),
        None if args.refuse_erased => {
            return Err("--refuse-erased needs the erasure key (MAU_COLLECTOR_ERASURE_KEY)".into())
        }
        None => None,
    };
    let store = Store::open(db, &opts).await?;
    match &erasure {
        Some(log) => tracing::info!(
            log = %log.path().display(),
            refuse_erased = args.refuse_erased,
            "erasure on: DELETE /v1/subjects/..."
        ),
        None => tracing::info!("erasure off: set MAU_COLLECTOR_ERASURE_KEY to allow it"),
    }
    if args.admin_token.is_none() {
        tracing::warn!("no admin token: read endpoints are closed");
    }
    if let Some(addr) = args.metrics_listen {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        tracing::info!(%addr, "metrics served at /metrics");
        let metrics = mau_collector::http::metrics_app(store.clone());
        tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, metrics).await {
                tracing::error!(error = %e, "metrics listener stopped");
            }
        });
    } else if args.metrics_token.is_none() {
        tracing::info!("metrics off: set --metrics-token or --metrics-listen to serve /metrics");
    }
    if !retention.is_off() {
        tracing::info!(?retention, "retention on: pruning old rows hourly");
        tokio::spawn(mau_collector::retention::run(store.clone(), retention));
    }
    if let Some(alerts) = &alerts {
        tracing::info!(budget = ?alerts.budget, host = alerts.host(), "budget alerts on");
        tokio::spawn(mau_collector::alerts::run(
            store.clone(),
            pricing,
            alerts.clone(),
        ));
    }
    let state = AppState {
        admin_token: args.admin_token,
        metrics_token: args.metrics_token,
        origins: Origins::from_config(&args.allow_origins),
        exports: Arc::new(tokio::sync::Semaphore::new(args.max_exports as usize)),
        static_dir: args.static_dir.clone(),
        ingest_token: args.ingest_token,
        twilio_auth_token: args.twilio_auth_token.filter(|t| !t.is_empty()),
        public_url: args.public_url.filter(|u| !u.is_empty()),
        tickets,
        body_timeout: Duration::from_secs(args.body_timeout),
        export_timeout: Duration::from_secs(args.export_timeout),
        max_backdate: time::Duration::days(args.max_backdate_days.into()),
        limits: Limits::new(LimitConfig {
            per_second: args.rate_limit,
            burst: args.rate_burst,
            identities_per_minute: args.identities_per_minute,
            trusted_proxies: args.trusted_proxies.clone(),
        }),
        erasure,
        refuse_erased: args.refuse_erased,
        pricing,
        budget: alerts.map(|a| a.budget),
        ..AppState::new(store)
    };
    let backend = state.store.backend();
    let listener = tokio::net::TcpListener::bind(args.listen).await?;
    let addr = listener.local_addr()?;
    // One line on stdout, so scripts and tests can learn a port picked with :0.
    println!("listening on http://{addr}");
    std::io::stdout().flush()?;
    tracing::info!(%addr, %db, backend, static_dir = ?args.static_dir, "collector started");
    let limits = serve::Limits {
        header_timeout: Duration::from_secs(args.header_timeout),
        write_timeout: Duration::from_secs(args.write_timeout),
        max_connections: args.max_connections as usize,
        max_per_address: args.max_connections_per_address as usize,
        exempt: args.trusted_proxies.clone(),
        shutdown_timeout: Duration::from_secs(args.shutdown_timeout),
    };
    serve::run(listener, app(state), limits, shutdown_signal()).await;
    tracing::info!("collector stopped");
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
}

async fn export_cmd(db: &Db, month: Month, format: export::Format) -> Result<(), BoxError> {
    let store = Store::open_existing(db).await?;
    let stdout = std::io::stdout().lock();
    export::write_identities(&store, month, format, std::io::BufWriter::new(stdout)).await?;
    Ok(())
}

/// `forget`: one subject, or `--reapply` over the whole store; JSON on stdout.
async fn forget_cmd(db: &Db, erasure: ErasureConfig, args: ForgetArgs) -> Result<(), BoxError> {
    // The key and the log before the store: nothing is erased that cannot be logged.
    let log = erasure.open(db)?;
    if let Db::Sqlite(path) = db {
        if !path.exists() {
            return Err(
                mau_collector::store::StoreError::Missing(path.display().to_string()).into(),
            );
        }
    }
    let store = Store::open(db, &Options::default()).await?;
    let (kind, subject) = match (args.identity, args.address) {
        (Some(i), _) => (SubjectKind::Identity, i),
        (None, Some(a)) => (SubjectKind::Address, a),
        (None, None) => {
            let r = erasure::reapply(&log, &store).await?;
            println!("{}", serde_json::to_string_pretty(&r)?);
            return Ok(());
        }
    };
    let erased = erasure::erase(&log, &store, kind, &subject).await?;
    println!(
        "{}",
        serde_json::to_string_pretty(&erasure::answer(kind, &erased))?
    );
    Ok(())
}

fn retention(args: &RetentionArgs, max_backdate_days: u32) -> Result<Retention, BoxError> {
    Ok(Retention::new(
        args.retain_events_days,
        args.retain_months,
        max_backdate_days,
    )?)
}

/// `prune`: now, or counted with `--dry-run`; JSON on stdout.
async fn prune_cmd(
    db: &Db,
    args: &RetentionArgs,
    max_backdate_days: u32,
    dry_run: bool,
) -> Result<(), BoxError> {
    let retention = retention(args, max_backdate_days)?;
    if retention.is_off() {
        return Err("nothing to prune: give --retain-events-days or --retain-months".into());
    }
    let store = Store::open_existing(db).await?;
    let pruned = mau_collector::retention::prune(&store, retention, dry_run).await?;
    println!("{}", serde_json::to_string_pretty(&pruned)?);
    Ok(())
}

/// `backup --to FILE`: SQLite's consistent online copy; PostgreSQL is pointed at pg_dump.
async fn backup_cmd(db: &Db, to: &std::path::Path) -> Result<(), BoxError> {
    if let Db::Postgres(_) = db {
        return Err(mau_collector::store::StoreError::pg_dump().into());
    }
    let store = Store::open_existing(db).await?;
    let bytes = store.backup(to).await?;
    println!(
        "backup written: {} ({bytes} bytes), a consistent copy; restore by serving it (then run          `mau-collector forget --reapply` against it before traffic)",
        to.display()
    );
    Ok(())
}

/// One end of `copy`: as --db takes it, with --db-ca-file for a PostgreSQL end.
fn copy_end(flag: &str, value: &str, ca: Option<&std::path::Path>) -> Result<Db, BoxError> {
    let db: Db = value.parse().map_err(|e| format!("{flag}: {e}"))?;
    match (&db, ca) {
        (Db::Postgres(_), Some(_)) => {
            Ok(Db::with_ca_file(value, ca).map_err(|e| format!("{flag}: {e}"))?)
        }
        _ => Ok(db),
    }
}

/// `copy --from A --to B`: every table in batches, then the months compared.
async fn copy_cmd(args: &CopyArgs, ca: Option<&std::path::Path>) -> Result<(), BoxError> {
    let from = copy_end("--from", &args.from, ca)?;
    let to = copy_end("--to", &args.to, ca)?;
    if from == to {
        return Err("--from and --to are the same store".into());
    }
    // The source as the CLI reads any store (current schema, nothing created); the
    // target as `serve` opens it (created, migrated; a newer schema refused).
    let source = Store::open_existing(&from).await?;
    let target = Store::open(&to, &Options::default()).await?;
    eprintln!("mau-collector: copying {from} to {to}");
    let started = std::time::Instant::now();
    let copied = mau_collector::copy::run(
        &source,
        &target,
        args.batch,
        Duration::from_millis(args.pause_ms),
        |c| eprintln!("copy {}: {} read, {} written", c.table, c.read, c.written),
    )
    .await?;
    for c in &copied {
        println!(
            "{:<14} {:>10} read {:>10} new or changed",
            c.table, c.read, c.written
        );
    }
    println!("copied in {:.1} s", started.elapsed().as_secs_f64());
    let pairs = mau_collector::copy::compare(&source, &target).await?;
    print!("{}", mau_collector::copy::text(&pairs));
    let differ = pairs.iter().filter(|p| !p.equal()).count();
    if differ > 0 {
        return Err(format!(
            "{differ} month(s) differ between {from} and {to} (source / target above): the \
             source took writes during the copy (run it again), or the target held other data"
        )
        .into());
    }
    println!("every month equal (subjects, erased, connects, billed, contexts and their beacons)");
    Ok(())
}

/// Where the report's billed count comes from.
enum BilledFrom {
    Unknown,
    Typed(u64),
    /// Usage Records, this category.
    Twilio(String),
}

async fn report_cmd(
    db: &Db,
    month: Month,
    billed: BilledFrom,
    format: ReportFormat,
    pricing: &PricingArgs,
) -> Result<(), BoxError> {
    let pricing = Pricing::from_args(pricing)?;
    let store = Store::open_existing(db).await?;
    let from_store = matches!(billed, BilledFrom::Unknown);
    let (billed, usage) = match billed {
        BilledFrom::Unknown => (store.billed(month).await?, Vec::new()),
        BilledFrom::Typed(count) => (
            Some(Billed {
                count,
                from: "typed".into(),
                recorded_at: None,
            }),
            Vec::new(),
        ),
        BilledFrom::Twilio(category) => {
            let client = rest::Client::from_env()?;
            let rows = tokio::task::spawn_blocking(move || client.usage_records(month)).await??;
            let billed = rows
                .iter()
                .find(|r| r.category == category)
                .and_then(|r| r.count.parse::<f64>().ok())
                .map(|n| Billed {
                    count: n.round() as u64,
                    from: format!("usage_records:{category}"),
                    recorded_at: None,
                });
            if billed.is_none() {
                let found: Vec<&str> = rows.iter().map(|r| r.category.as_str()).collect();
                eprintln!(
                    "mau-collector: no Usage Records row with category {category} for {month} \
                     (conversations*/pchat* rows found: {}); pick one with --usage-category",
                    if found.is_empty() {
                        "none".into()
                    } else {
                        found.join(", ")
                    }
                );
            }
            (billed, rows)
        }
    };
    // A count given now is kept for the month: later reports, GET /v1/months and the
    // dashboard use it.
    let billed = match billed {
        Some(b) if !from_store => {
            let b = store.set_billed(month, b.count, &b.from).await?;
            eprintln!(
                "mau-collector: billed count {} ({}) stored for {month}",
                b.count, b.from
            );
            Some(b)
        }
        other => other,
    };
    let report = export::report(&store, month, billed, usage, &pricing).await?;
    match format {
        ReportFormat::Text => print!("{}", reconcile::text(&report)),
        ReportFormat::Json => println!("{}", serde_json::to_string_pretty(&report)?),
    }
    Ok(())
}

async fn sync_cmd(db: &Db, month: Month, service: Option<String>) -> Result<(), BoxError> {
    let client = rest::Client::from_env()?;
    let store = Store::open(db, &Options::default()).await?;
    let terminal = std::io::stderr().is_terminal();
    let mut last = std::time::Instant::now();
    let totals = sync::run(&client, &store, month, service.as_deref(), |t| {
        // A line at most every second (rewritten in place on a terminal).
        if last.elapsed() >= Duration::from_secs(1) {
            last = std::time::Instant::now();
            if terminal {
                eprint!("\r{}", t.progress());
            } else {
                eprintln!("{}", t.progress());
            }
        }
    })
    .await?;
    if terminal {
        eprintln!("\r{}", totals.progress());
    } else {
        eprintln!("{}", totals.progress());
    }
    let waits = client
        .rate_limited
        .load(std::sync::atomic::Ordering::Relaxed);
    println!(
        "twilio sync {month}: {} conversations, {} participants added and {} messages in the month \
         ({} pages, {waits} rate-limit waits); {} subjects recorded as rest_sync ({} chat \
         identities, {} channel addresses). Safe to rerun.",
        totals.conversations,
        totals.participants,
        totals.messages,
        totals.pages,
        totals.identities.len() + totals.addresses.len(),
        totals.identities.len(),
        totals.addresses.len(),
    );
    Ok(())
}
