//! Time to copy a store with many identities from SQLite to PostgreSQL, to rerun the copy
//! (nothing new), and to copy it back to a new SQLite file. Run:
//! `cargo run --release -p mau-collector --example copy_bench -- POSTGRES_URL [IDENTITIES]`
//! (an empty PostgreSQL database; default 300000 identities). Each identity has one event
//! and one identities row; every tenth a token and a sighting.

use mau_collector::copy;
use mau_collector::store::{Db, Options, Store};
use std::time::{Duration, Instant};

/// The rows, made by SQLite itself (a recursive counter), in one transaction.
fn fill_sql(n: usize) -> String {
    let at = "'2026-11-15T12:00:00.000Z'";
    let ids = format!(
        "WITH RECURSIVE c(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM c WHERE i + 1 < {n})"
    );
    let who = "printf('user-%07d@example.com', i)";
    format!(
        "BEGIN;
         {ids} INSERT INTO events (event_id, identity, month, client_month, occurred_at,
            sent_at, received_at, event_at, attempt, dedupe, sdk_name, sdk_version, kind)
            SELECT 'ev-' || i, {who}, '2026-11', '2026-11', {at}, {at}, {at}, {at}, 1,
                'month', 'mau-beacon', '0.1.0', 'connected' FROM c;
         {ids} INSERT INTO identities SELECT '2026-11', {who}, {at}, {at}, 1 FROM c;
         {ids} INSERT INTO tokens SELECT 'id:t' || i, {who}, '2026-11', {at}, NULL, {at}
            FROM c WHERE i % 10 = 0;
         {ids} INSERT INTO sightings SELECT '2026-11', 'identity', {who},
            'webhook:onMessageAdded', {at}, {at}, 1 FROM c WHERE i % 10 = 0;
         COMMIT;"
    )
}

async fn timed_copy(
    what: &str,
    from: &Store,
    to: &Store,
) -> Result<(), Box<dyn std::error::Error>> {
    let started = Instant::now();
    let copied = copy::run(from, to, copy::BATCH, Duration::ZERO, |_| {}).await?;
    let took = started.elapsed().as_secs_f64();
    let read: u64 = copied.iter().map(|c| c.read).sum();
    let written: u64 = copied.iter().map(|c| c.written).sum();
    let started = Instant::now();
    let pairs = copy::compare(from, to).await?;
    println!(
        "{what}: {read} rows read, {written} written in {took:.1} s ({:.0} rows/s); \
         comparison {:.2} s, {}",
        read as f64 / took,
        started.elapsed().as_secs_f64(),
        if pairs.iter().all(|p| p.equal()) {
            "equal"
        } else {
            "DIFFERENT"
        }
    );
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::args()
        .nth(1)
        .ok_or("usage: copy_bench POSTGRES_URL [IDENTITIES]")?;
    let n: usize = std::env::args()
        .nth(2)
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(300_000);
    let dir = std::env::temp_dir().join(format!("mau-copy-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let path = dir.join("source.db");
    let sqlite = Db::Sqlite(path.clone());
    Store::open(&sqlite, &Options::default()).await?;
    let started = Instant::now();
    rusqlite::Connection::open(&path)?.execute_batch(&fill_sql(n))?;
    println!(
        "filled {n} identities in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    let source = Store::open_existing(&sqlite).await?;
    let pg = Store::open(&url.parse::<Db>()?, &Options::default()).await?;
    timed_copy("SQLite -> PostgreSQL", &source, &pg).await?;
    timed_copy("rerun (nothing new)", &source, &pg).await?;
    let back = Store::open(&Db::Sqlite(dir.join("back.db")), &Options::default()).await?;
    timed_copy("PostgreSQL -> SQLite", &pg, &back).await?;
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}
