//! Retention: raw `events` (and delivery keys) older than N days, and the monthly rows
//! (`identities`, `sightings`, `tokens`) of months older than M, pruned in small batches so
//! ingest goes on; by `serve` in the background (hourly) and by `mau-collector prune`.
//!
//! The limits keep what deduplication needs: a beacon whose corrected event time is older
//! than the backdating window is refused before it reaches the store, so an event older
//! than the window (plus a day of margin) can never be retried into a second count, and
//! the months such a beacon could still land in are kept.

use crate::month::Month;
use crate::store::{Store, StoreError};
use crate::wire::format_time;
use serde::Serialize;
use std::time::Duration;
use time::OffsetDateTime;

/// Rows deleted per statement (each its own short transaction).
pub const PRUNE_BATCH: u64 = 1000;
/// Pause between batches, so ingest's commits get the lock in between.
pub const PRUNE_PAUSE: Duration = Duration::from_millis(20);
/// How often `serve` prunes.
const EVERY: Duration = Duration::from_secs(3600);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RetentionError {
    #[error(
        "--retain-events-days {given} is below the minimum {min}: raw events must outlive the \
         backdating window (--max-backdate-days) by a day, or a retried beacon could count twice"
    )]
    TooFewDays { given: u32, min: u32 },
    #[error(
        "--retain-months {given} is below the minimum {min}: a beacon may still land in the \
         months the backdating window (--max-backdate-days) reaches"
    )]
    TooFewMonths { given: u32, min: u32 },
}

/// What to keep; `None` keeps everything.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Retention {
    pub events_days: Option<u32>,
    pub months: Option<u32>,
}

/// The oldest time and month kept: rows before them go.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Cutoffs {
    /// Events whose `event_at` (and delivery keys whose `seen_at`) is before this go.
    pub events_before: Option<String>,
    /// Monthly rows of months before this go.
    pub months_before: Option<String>,
}

impl Retention {
    /// Checked against the backdating window.
    pub fn new(
        events_days: Option<u32>,
        months: Option<u32>,
        max_backdate_days: u32,
    ) -> Result<Retention, RetentionError> {
        let min = max_backdate_days + 1;
        if let Some(given) = events_days.filter(|&d| d < min) {
            return Err(RetentionError::TooFewDays { given, min });
        }
        // The window reaches back at most this many month boundaries, plus this month.
        let min = max_backdate_days.div_ceil(28) + 1;
        if let Some(given) = months.filter(|&m| m < min) {
            return Err(RetentionError::TooFewMonths { given, min });
        }
        Ok(Retention {
            events_days,
            months,
        })
    }

    pub fn is_off(&self) -> bool {
        self.events_days.is_none() && self.months.is_none()
    }

    pub fn cutoffs(&self, now: OffsetDateTime) -> Cutoffs {
        Cutoffs {
            events_before: self
                .events_days
                .map(|d| format_time(now - time::Duration::days(d.into()))),
            months_before: self.months.map(|m| {
                let this = Month::of(now);
                let index = this.year * 12 + i32::from(this.month) - 1 - (m as i32 - 1);
                Month {
                    year: index.div_euclid(12),
                    month: (index.rem_euclid(12) + 1) as u8,
                }
                .to_string()
            }),
        }
    }
}

/// What one prune did (or, dry, would do): rows per table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Pruned {
    pub dry_run: bool,
    #[serde(flatten)]
    pub cutoffs: Cutoffs,
    pub rows: std::collections::BTreeMap<&'static str, u64>,
}

/// Prunes now (or counts, dry).
pub async fn prune(
    store: &Store,
    retention: Retention,
    dry_run: bool,
) -> Result<Pruned, StoreError> {
    let cutoffs = retention.cutoffs(OffsetDateTime::now_utc());
    let rows = store.prune(&cutoffs, dry_run).await?;
    Ok(Pruned {
        dry_run,
        cutoffs,
        rows,
    })
}

/// `serve`'s background pruning: at start, then hourly. Failures are logged and retried
/// at the next round.
pub async fn run(store: Store, retention: Retention) {
    loop {
        match prune(&store, retention, false).await {
            Ok(p) if p.rows.values().any(|&n| n > 0) => {
                tracing::info!(rows = ?p.rows, "retention: old rows pruned")
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "retention: prune failed; retried next round"),
        }
        tokio::time::sleep(EVERY).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minimums_follow_the_backdating_window() {
        assert_eq!(
            Retention::new(Some(35), None, 35),
            Err(RetentionError::TooFewDays { given: 35, min: 36 })
        );
        assert_eq!(
            Retention::new(None, Some(2), 35),
            Err(RetentionError::TooFewMonths { given: 2, min: 3 })
        );
        assert!(Retention::new(Some(36), Some(3), 35).is_ok());
        assert!(Retention::new(None, None, 35).unwrap().is_off());
        let e = Retention::new(Some(1), None, 1).unwrap_err().to_string();
        assert!(e.contains("minimum 2"), "{e}");
    }

    #[test]
    fn cutoffs() {
        let now = time::macros::datetime!(2026-02-10 12:00 UTC);
        let c = Retention::new(Some(40), Some(3), 35).unwrap().cutoffs(now);
        assert_eq!(c.events_before.as_deref(), Some("2026-01-01T12:00:00.000Z"));
        assert_eq!(c.months_before.as_deref(), Some("2025-12"));
        let c = Retention::new(None, Some(14), 35).unwrap().cutoffs(now);
        assert_eq!(c.months_before.as_deref(), Some("2025-01"));
        assert_eq!(c.events_before, None);
    }
}
