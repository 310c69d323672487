//! Rows and time for erasing one subject from a store with many identities, and for
//! `forget --reapply` over all of them. Run:
//! `cargo run --release -p mau-collector --example erase_bench -- [IDENTITIES] [POSTGRES_URL]`
//! (default 300000 on a new SQLite file; with a URL, on that empty PostgreSQL database). Each identity has one event and one identities row; every tenth a
//! token and a sighting; the erased subject has rows in three months.

use mau_collector::erasure::{self, ErasureKey, ErasureLog};
use mau_collector::store::{Db, Options, Store, SubjectKind};
use std::time::Instant;

const TARGET: &str = "erase-me@example.com";

fn fill(path: &std::path::Path, n: usize) -> rusqlite::Result<()> {
    let mut c = rusqlite::Connection::open(path)?;
    let tx = c.transaction()?;
    {
        let mut event = tx.prepare(
            "INSERT INTO events (event_id, identity, month, client_month, occurred_at, sent_at,
                received_at, event_at, attempt, dedupe, sdk_name, sdk_version, kind)
             VALUES (?1, ?2, ?3, ?3, ?4, ?4, ?4, ?4, 1, 'month', 'mau-beacon', '0.1.0',
                'connected')",
        )?;
        let mut ident = tx.prepare("INSERT INTO identities VALUES (?1, ?2, ?3, ?3, 1)")?;
        let mut token = tx.prepare("INSERT INTO tokens VALUES (?1, ?2, ?3, ?4, NULL, ?4)")?;
        let mut sighting = tx.prepare(
            "INSERT INTO sightings VALUES (?1, 'identity', ?2, 'webhook:onMessageAdded', ?3, ?3, 1)",
        )?;
        let at = "2026-11-15T12:00:00.000Z";
        for i in 0..n {
            let id = format!("user-{i:07}@example.com");
            event.execute(rusqlite::params![format!("ev-{i}"), id, "2026-11", at])?;
            ident.execute(rusqlite::params!["2026-11", id, at])?;
            if i % 10 == 0 {
                token.execute(rusqlite::params![format!("id:t{i}"), id, "2026-11", at])?;
                sighting.execute(rusqlite::params!["2026-11", id, at])?;
            }
        }
        for (k, month) in ["2026-09", "2026-10", "2026-11"].iter().enumerate() {
            let at = format!("{month}-15T12:00:00.000Z");
            event.execute(rusqlite::params![format!("target-{k}"), TARGET, month, at])?;
            ident.execute(rusqlite::params![month, TARGET, at])?;
            token.execute(rusqlite::params![
                format!("id:target{k}"),
                TARGET,
                month,
                at
            ])?;
            sighting.execute(rusqlite::params![month, TARGET, at])?;
        }
    }
    tx.commit()
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let n: usize = std::env::args()
        .nth(1)
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(300_000);
    let dir = tempfile_dir()?;
    let path = dir.join("bench.db");
    let pg = std::env::args().nth(2);
    let db = match &pg {
        Some(url) => Db::Postgres(url.clone()),
        None => Db::Sqlite(path.clone()),
    };
    Store::open(&db, &Options::default()).await?;
    let started = Instant::now();
    match &pg {
        Some(url) => fill_pg(url, n).await?,
        None => fill(&path, n)?,
    }
    println!(
        "filled {n} identities in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let store = Store::open(&db, &Options::default()).await?;
    let key = ErasureKey::new(Some("bench-erasure-key-0123456789"))?;
    let log = ErasureLog::open(dir.join("erasures.log"), key)?;

    let started = Instant::now();
    let erased = erasure::erase(&log, &store, SubjectKind::Identity, TARGET).await?;
    let took = started.elapsed();
    println!(
        "erase one subject (log synced + one transaction): {} rows ({} events, {} identities, \
         {} tokens, {} sightings) in {} months, {:.1} ms",
        erased.rows(),
        erased.events,
        erased.identities,
        erased.tokens,
        erased.sightings,
        erased.months.len(),
        took.as_secs_f64() * 1000.0
    );
    let started = Instant::now();
    let again = erasure::erase(&log, &store, SubjectKind::Identity, TARGET).await?;
    println!(
        "erase it again (idempotent): {} rows, {:.1} ms",
        again.rows(),
        started.elapsed().as_secs_f64() * 1000.0
    );
    // A restore brings the subject back; reapply finds it among all subjects.
    match &pg {
        Some(url) => {
            pg_client(url)
                .await?
                .batch_execute(&target_only_sql())
                .await?
        }
        None => rusqlite::Connection::open(&path)?.execute_batch(&target_only_sql())?,
    }
    let started = Instant::now();
    let r = erasure::reapply(&log, &store).await?;
    println!(
        "forget --reapply over {} subjects: {} erased again ({} rows), {:.1} s",
        r.looked_at,
        r.subjects,
        r.rows.rows(),
        started.elapsed().as_secs_f64()
    );
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}

fn target_only_sql() -> String {
    format!(
        "INSERT INTO identities VALUES ('2026-11', '{TARGET}', '2026-11-15T12:00:00.000Z',
            '2026-11-15T12:00:00.000Z', 1)"
    )
}

async fn pg_client(url: &str) -> Result<tokio_postgres::Client, tokio_postgres::Error> {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls).await?;
    tokio::spawn(conn);
    Ok(client)
}

/// The same rows as `fill`, made by the server (generate_series).
async fn fill_pg(url: &str, n: usize) -> Result<(), tokio_postgres::Error> {
    let at = "'2026-11-15T12:00:00.000Z'";
    let id = "'user-' || lpad(i::text, 7, '0') || '@example.com'";
    let mut sql = format!(
        "INSERT INTO events (event_id, identity, month, client_month, occurred_at, sent_at,
            received_at, event_at, attempt, dedupe, sdk_name, sdk_version, kind)
         SELECT 'ev-' || i, {id}, '2026-11', '2026-11', {at}, {at}, {at}, {at}, 1, 'month',
            'mau-beacon', '0.1.0', 'connected' FROM generate_series(0, {n} - 1) AS i;
         INSERT INTO identities SELECT '2026-11', {id}, {at}, {at}, 1
            FROM generate_series(0, {n} - 1) AS i;
         INSERT INTO tokens SELECT 'id:t' || i, {id}, '2026-11', {at}, NULL, {at}
            FROM generate_series(0, {n} - 1, 10) AS i;
         INSERT INTO sightings SELECT '2026-11', 'identity', {id}, 'webhook:onMessageAdded',
            {at}, {at}, 1 FROM generate_series(0, {n} - 1, 10) AS i;"
    );
    for (k, month) in ["2026-09", "2026-10", "2026-11"].iter().enumerate() {
        let at = format!("'{month}-15T12:00:00.000Z'");
        sql.push_str(&format!(
            "INSERT INTO events (event_id, identity, month, client_month, occurred_at, sent_at,
                received_at, event_at, attempt, dedupe, sdk_name, sdk_version, kind)
             VALUES ('target-{k}', '{TARGET}', '{month}', '{month}', {at}, {at}, {at}, {at}, 1,
                'month', 'mau-beacon', '0.1.0', 'connected');
             INSERT INTO identities VALUES ('{month}', '{TARGET}', {at}, {at}, 1);
             INSERT INTO tokens VALUES ('id:target{k}', '{TARGET}', '{month}', {at}, NULL, {at});
             INSERT INTO sightings VALUES ('{month}', 'identity', '{TARGET}',
                'webhook:onMessageAdded', {at}, {at}, 1);"
        ));
    }
    pg_client(url).await?.batch_execute(&sql).await?;
    pg_client(url).await?.batch_execute("ANALYZE").await
}

fn tempfile_dir() -> std::io::Result<std::path::PathBuf> {
    let dir = std::env::temp_dir().join(format!("mau-erase-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}
