//! mau-collector: the reference collector for mau-beacon (the command line).

use clap::Parser;
use mau_collector::config::{Cli, Command, ReportFormat, ServeArgs};
use mau_collector::reconcile::{self, Billed};
use mau_collector::store::{Db, Options, Store};
use mau_collector::{app, export, month::Month, AppState, Origins};
use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;
use tracing_subscriber::EnvFilter;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Logs go to stderr; stdout is kept for exports and the listening line.
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_env("MAU_COLLECTOR_LOG").unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    let db = match cli.db() {
        Ok(db) => db,
        Err(e) => {
            eprintln!("mau-collector: --db: {e}");
            return ExitCode::from(2);
        }
    };
    let result = match cli.command {
        Command::Serve(args) => runtime(true).and_then(|rt| rt.block_on(serve(&db, args))),
        Command::Export { month, format } => {
            runtime(false).and_then(|rt| rt.block_on(export_cmd(&db, month, format)))
        }
        Command::Report {
            month,
            billed,
            format,
        } => runtime(false).and_then(|rt| rt.block_on(report_cmd(&db, month, billed, format))),
    };
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

async fn serve(db: &Db, args: ServeArgs) -> Result<(), BoxError> {
    let opts = Options {
        queue: args.queue as usize,
        pool_size: args.db_pool as usize,
        pool_wait: Duration::from_millis(args.db_wait_ms),
    };
    let store = Store::open(db, &opts).await?;
    if args.admin_token.is_none() {
        tracing::warn!("no admin token: read endpoints are closed");
    }
    let state = AppState {
        admin_token: args.admin_token.filter(|t| !t.is_empty()),
        origins: Origins::from_config(&args.allow_origins),
        exports: Arc::new(tokio::sync::Semaphore::new(args.max_exports as usize)),
        static_dir: args.static_dir.clone(),
        ingest_token: args.ingest_token.filter(|t| !t.is_empty()),
        twilio_auth_token: args.twilio_auth_token.filter(|t| !t.is_empty()),
        public_url: args.public_url.filter(|u| !u.is_empty()),
        ..AppState::new(store)
    };
    let backend = state.store.backend();
    let listener = tokio::net::TcpListener::bind(args.listen).await?;
    let addr = listener.local_addr()?;
    // One line on stdout, so scripts and tests can learn a port picked with :0.
    println!("listening on http://{addr}");
    std::io::stdout().flush()?;
    tracing::info!(%addr, %db, backend, static_dir = ?args.static_dir, "collector started");
    axum::serve(listener, app(state))
        .with_graceful_shutdown(shutdown_signal())
        .await?;
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

async fn report_cmd(
    db: &Db,
    month: Month,
    billed: Option<u64>,
    format: ReportFormat,
) -> Result<(), BoxError> {
    let store = Store::open_existing(db).await?;
    let billed = billed.map(|count| Billed {
        count,
        from: "typed".into(),
    });
    let report = export::report(&store, month, billed, Vec::new()).await?;
    match format {
        ReportFormat::Text => print!("{}", reconcile::text(&report)),
        ReportFormat::Json => println!("{}", serde_json::to_string_pretty(&report)?),
    }
    Ok(())
}
