//! `mau-collector copy`: moves every table from one store to another (SQLite or
//! PostgreSQL, either way), in bounded batches, each its own transaction, then compares
//! the months on both sides.
//!
//! A batch is read in key order after the last key read; the next batch is read while
//! the current one is written, so at most two batches are in memory. Writing is an
//! insert that skips (or, for monthly aggregates, merges without adding) a row already in
//! the target (`store::copy`), so a rerun copies nothing new and a run killed half-way is
//! finished by running it again.

use crate::store::copy::{Cell, TABLES};
use crate::store::{MonthLine, Store, StoreError};
use serde::Serialize;
use std::collections::BTreeMap;
use std::time::Duration;

/// Rows per batch unless told otherwise.
pub const BATCH: u32 = 5000;

/// One table's rows: read from the source, and new or changed in the target.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Copied {
    pub table: &'static str,
    pub read: u64,
    pub written: u64,
}

/// Copies every table, batch by batch; `progress` hears each batch committed.
pub async fn run(
    from: &Store,
    to: &Store,
    batch: u32,
    pause: Duration,
    mut progress: impl FnMut(&Copied),
) -> Result<Vec<Copied>, StoreError> {
    let batch = batch.max(1) as usize;
    let mut out = Vec::new();
    for table in TABLES {
        let mut copied = Copied {
            table: table.name,
            ..Copied::default()
        };
        let mut rows = from.copy_read(table, None, batch).await?;
        while !rows.is_empty() {
            let last: Option<Vec<Cell>> = (rows.len() == batch)
                .then(|| rows.last().map(|r| r[..table.key].to_vec()))
                .flatten();
            copied.read += rows.len() as u64;
            let write = to.copy_write(table, rows);
            let (written, next) = match last {
                Some(after) => {
                    let (w, n) = tokio::join!(write, from.copy_read(table, Some(after), batch));
                    (w?, n?)
                }
                None => (write.await?, Vec::new()),
            };
            copied.written += written;
            progress(&copied);
            if !pause.is_zero() {
                tokio::time::sleep(pause).await;
            }
            rows = next;
        }
        out.push(copied);
    }
    Ok(out)
}

/// A month's counts on one side.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    /// Unique MAU subjects from every source (the report's `seen`).
    pub subjects: i64,
    /// Subjects erased on request.
    pub erased: i64,
    /// SDK connect beacons.
    pub connects: i64,
    pub billed: Option<u64>,
    /// (identity, context) rows where SDK clients connected from, and their beacons: the
    /// savings table's input.
    pub contexts: (i64, i64),
}

impl From<&MonthLine> for Counts {
    fn from(m: &MonthLine) -> Counts {
        Counts {
            subjects: m.subjects,
            erased: m.erased,
            connects: m.summary.connects,
            billed: m.billed.as_ref().map(|b| b.count),
            contexts: (0, 0),
        }
    }
}

/// One month on both sides.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MonthPair {
    pub month: String,
    pub from: Counts,
    pub to: Counts,
}

impl MonthPair {
    pub fn equal(&self) -> bool {
        self.from == self.to
    }
}

/// Every month either side has, oldest first (a month missing on one side counts zero).
pub async fn compare(from: &Store, to: &Store) -> Result<Vec<MonthPair>, StoreError> {
    let mut months: BTreeMap<String, (Counts, Counts)> = BTreeMap::new();
    for m in from.months().await? {
        months.entry(m.summary.month.clone()).or_default().0 = Counts::from(&m);
    }
    for m in to.months().await? {
        months.entry(m.summary.month.clone()).or_default().1 = Counts::from(&m);
    }
    for (month, n) in from.context_totals().await? {
        months.entry(month).or_default().0.contexts = n;
    }
    for (month, n) in to.context_totals().await? {
        months.entry(month).or_default().1.contexts = n;
    }
    Ok(months
        .into_iter()
        .map(|(month, (from, to))| MonthPair { month, from, to })
        .collect())
}

/// The comparison as a table, one month a line: `source / target` for each count.
pub fn text(pairs: &[MonthPair]) -> String {
    let billed = |b: Option<u64>| b.map_or("-".to_owned(), |n| n.to_string());
    let mut s = format!(
        "{:<8} {:>21} {:>13} {:>21} {:>13} {:>21}\n",
        "month", "subjects", "erased", "connects", "billed", "contexts:beacons"
    );
    for p in pairs {
        let pair = |a: String, b: String| format!("{a} / {b}");
        s.push_str(&format!(
            "{:<8} {:>21} {:>13} {:>21} {:>13} {:>21}  {}\n",
            p.month,
            pair(p.from.subjects.to_string(), p.to.subjects.to_string()),
            pair(p.from.erased.to_string(), p.to.erased.to_string()),
            pair(p.from.connects.to_string(), p.to.connects.to_string()),
            pair(billed(p.from.billed), billed(p.to.billed)),
            pair(
                format!("{}:{}", p.from.contexts.0, p.from.contexts.1),
                format!("{}:{}", p.to.contexts.0, p.to.contexts.1)
            ),
            if p.equal() { "equal" } else { "DIFFERENT" }
        ));
    }
    s
}
