//! mau-collector: the reference collector for mau-beacon.

mod config;
mod error;
mod export;
mod http;
mod store;
mod wire;

use clap::Parser;
use config::{Cli, Command, ServeArgs};
use std::io::{IsTerminal, Write};
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
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
    let result = match cli.command {
        Command::Serve(args) => serve(&cli.db, args),
        Command::Export { month, format } => export_cmd(&cli.db, month, format),
        Command::Report { month, billed } => report_cmd(&cli.db, month, billed),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mau-collector: {e}");
            ExitCode::FAILURE
        }
    }
}

fn serve(db: &Path, args: ServeArgs) -> Result<(), BoxError> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let store = store::Store::open(db, args.queue as usize)?;
        let origins = http::Origins::from_config(&args.allow_origins);
        if args.admin_token.is_none() {
            tracing::warn!("no admin token: read endpoints are closed");
        }
        let state = http::AppState {
            db_path: store.path().to_owned(),
            store,
            admin_token: args.admin_token.filter(|t| !t.is_empty()),
            origins,
            exports: Arc::new(tokio::sync::Semaphore::new(args.max_exports as usize)),
        };
        let app = http::router(state, args.static_dir.clone());
        let listener = tokio::net::TcpListener::bind(args.listen).await?;
        let addr = listener.local_addr()?;
        // One line on stdout, so scripts and tests can learn a port picked with :0.
        println!("listening on http://{addr}");
        std::io::stdout().flush()?;
        tracing::info!(%addr, db = %db.display(), static_dir = ?args.static_dir, "collector started");
        axum::serve(listener, app)
            .with_graceful_shutdown(shutdown_signal())
            .await?;
        tracing::info!("collector stopped");
        Ok(())
    })
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

fn open_existing(db: &Path) -> Result<rusqlite::Connection, BoxError> {
    if !db.exists() {
        return Err(format!("no database at {}", db.display()).into());
    }
    let conn = store::open_reader(db)?;
    if !store::check_schema(&conn)? {
        return Err(format!("{} is not a mau-collector database", db.display()).into());
    }
    Ok(conn)
}

fn export_cmd(db: &Path, month: wire::Month, format: export::Format) -> Result<(), BoxError> {
    let conn = open_existing(db)?;
    let stdout = std::io::stdout().lock();
    export::write_identities(&conn, month, format, std::io::BufWriter::new(stdout))?;
    Ok(())
}

fn report_cmd(db: &Path, month: wire::Month, billed: Option<u64>) -> Result<(), BoxError> {
    let conn = open_existing(db)?;
    let summary = store::summary(&conn, month)?;
    print!("{}", export::report_text(&summary, billed));
    Ok(())
}
