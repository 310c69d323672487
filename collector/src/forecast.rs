//! The month-end forecast: how many MAU subjects the current month will end with, a
//! low–high band, and the bill. Pure: built from cumulative curves (subjects first seen
//! by each day) and an explicit `as_of`, so the report, the dashboard, the budget alerts
//! and the backtest bench (`examples/forecast_backtest.rs`) share one computation and
//! tests choose the clock.
//!
//! Two methods. `history:N`: the previous N complete months' curves, each as a fraction of
//! its final count at the same point of the month (time normalised for month length); the
//! month so far divided by those fractions gives one projection per month: their median
//! is the forecast, their spread the band, widened while the month is young and the
//! history short. `trend`, when no previous month is usable: the month's new-subject rate
//! carried to the month's end, slowing as it slowed over the last two weeks.

use crate::month::Month;
use crate::pricing::Pricing;
use crate::store::ActivityRow;
use serde::Serialize;
use std::collections::HashMap;
use time::OffsetDateTime;

/// Most previous months the history method reads.
pub const HISTORY_MONTHS: usize = 6;
/// The history method's margin at the month's start with one month of history: the band
/// is at least ±this share of the forecast, shrinking with the month's progress and with
/// the square root of the months of history.
const HISTORY_MARGIN: f64 = 0.6;
/// The trend method's band around its projected growth.
const TREND_SPREAD: f64 = 0.5;
/// The trend's longest window, in days: two of them are compared.
const TREND_WINDOW: f64 = 7.0;

/// A month's cumulative count: `cumulative[k]` subjects were first seen by the end of
/// day `k + 1`. A month in progress has fewer entries than days.
#[derive(Debug, Clone, PartialEq)]
pub struct Curve {
    pub days_in_month: u8,
    pub cumulative: Vec<u64>,
}

/// The forecast as the report carries it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Forecast {
    pub projected_subjects: u64,
    pub low: u64,
    pub high: u64,
    /// `Pricing::bill` of `projected_subjects`; null without a price.
    pub projected_cost: Option<f64>,
    /// `history:N` (N previous months' shapes) or `trend` (no usable history).
    pub method: String,
    /// The time the forecast is for (UTC).
    pub as_of: String,
}

/// The figures before pricing.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Projection {
    pub projected: u64,
    pub low: u64,
    pub high: u64,
    /// Months of history used; 0 for the trend.
    pub history: usize,
}

impl Projection {
    pub fn method(&self) -> String {
        match self.history {
            0 => "trend".into(),
            n => format!("history:{n}"),
        }
    }
}

pub fn days_in(month: Month) -> u8 {
    time::Month::try_from(month.month)
        .map(|m| m.length(month.year))
        .unwrap_or(30)
}

impl Curve {
    /// From `(day of month, subjects first seen that day)`, the days in any order.
    pub fn from_new(days_in_month: u8, new: impl IntoIterator<Item = (u8, u64)>) -> Curve {
        let mut per_day = vec![0u64; days_in_month as usize];
        let mut last = 0;
        for (d, n) in new {
            let i = (d.clamp(1, days_in_month) - 1) as usize;
            per_day[i] += n;
            last = last.max(i + 1);
        }
        per_day.truncate(last);
        let mut total = 0;
        let cumulative = per_day
            .into_iter()
            .map(|n| {
                total += n;
                total
            })
            .collect();
        Curve {
            days_in_month,
            cumulative,
        }
    }

    /// A month's curve from its activity rows: each subject on the day of its first sighting.
    pub fn from_activity(month: Month, activity: &[ActivityRow]) -> Curve {
        let mut first: HashMap<(&str, &str), &str> = HashMap::new();
        for r in activity {
            let f = first
                .entry((&r.subject_kind, &r.subject))
                .or_insert(&r.first_seen);
            *f = (*f).min(&r.first_seen);
        }
        let mut new: HashMap<u8, u64> = HashMap::new();
        for f in first.values() {
            *new.entry(day_of(f)).or_default() += 1;
        }
        Curve::from_new(days_in(month), new)
    }

    /// The count at the end of the data.
    pub fn last(&self) -> u64 {
        self.cumulative.last().copied().unwrap_or(0)
    }

    /// The count `x` days after the month began, linear within a day (0 at the start);
    /// past the data, the last count.
    pub fn at(&self, x: f64) -> f64 {
        if x <= 0.0 || self.cumulative.is_empty() {
            return 0.0;
        }
        let k = x.floor() as usize;
        let before = if k == 0 {
            0.0
        } else {
            self.cumulative.get(k - 1).copied().unwrap_or(self.last()) as f64
        };
        let after = self.cumulative.get(k).copied().unwrap_or(self.last()) as f64;
        before + (after - before) * (x - k as f64)
    }

    /// Whether it can serve as history: it has subjects on its first two days (the
    /// collector saw the month from its start) and some subjects at all.
    pub fn usable(&self) -> bool {
        self.cumulative.get(1).is_some_and(|&n| n > 0) && self.last() > 0
    }
}

/// The day of month of a `YYYY-MM-DD...` time.
fn day_of(t: &str) -> u8 {
    t.get(8..10).and_then(|d| d.parse().ok()).unwrap_or(1)
}

/// Days since the month began at `now` (fractional).
pub fn elapsed_days(now: OffsetDateTime) -> f64 {
    let now = now.to_offset(time::UtcOffset::UTC);
    (now.day() - 1) as f64 + now.time().as_hms().0 as f64 / 24.0 + now.minute() as f64 / 1440.0
}

/// Projects the month-end count of `current` (the month so far, `elapsed` days in) from
/// `history` (previous complete months; unusable ones are skipped).
pub fn project(current: &Curve, elapsed: f64, history: &[Curve]) -> Projection {
    let d = current.days_in_month as f64;
    let elapsed = elapsed.clamp(0.0, d);
    let t = elapsed / d;
    let now = current.last();
    let usable: Vec<&Curve> = history.iter().filter(|c| c.usable()).collect();
    if usable.is_empty() {
        return trend(current, elapsed, now);
    }
    let n = usable.len();
    let margin = HISTORY_MARGIN * (1.0 - t) / (n as f64).sqrt();
    let band = |est: f64, lo: f64, hi: f64| Projection {
        projected: est.round().max(now as f64) as u64,
        low: lo.min(est * (1.0 - margin)).round().max(now as f64) as u64,
        high: hi.max(est * (1.0 + margin)).round().max(now as f64) as u64,
        history: n,
    };
    if now == 0 {
        // Nothing yet: the previous months' finals are all there is to go on.
        let mut finals: Vec<f64> = usable.iter().map(|c| c.last() as f64).collect();
        finals.sort_by(f64::total_cmp);
        let est = median(&finals);
        let p = band(est, 0.0, finals[n - 1] * (1.0 + margin));
        return Projection { low: 0, ..p };
    }
    let mut ratios: Vec<f64> = usable
        .iter()
        .filter_map(|c| {
            let f = c.at(t * c.days_in_month as f64) / c.last() as f64;
            (f > 0.0).then(|| 1.0 / f)
        })
        .collect();
    if ratios.is_empty() {
        // Every previous month had nothing this early: its shape says nothing yet.
        return trend(current, elapsed, now);
    }
    ratios.sort_by(f64::total_cmp);
    let now_f = now as f64;
    band(
        now_f * median(&ratios),
        now_f * ratios[0],
        now_f * ratios[ratios.len() - 1],
    )
}

/// The new-subject rate carried to the month's end, slowing as it has been slowing: the
/// rate over the recent half of the last two weeks against the older half gives a daily
/// decay (at most 1: a growing rate is carried flat). The band: half the projected growth
/// to the recent rate carried flat, plus `TREND_SPREAD`.
fn trend(current: &Curve, elapsed: f64, now: u64) -> Projection {
    let d = current.days_in_month as f64;
    let left = d - elapsed;
    let now_f = now as f64;
    if elapsed <= 0.0 {
        return Projection {
            projected: now,
            low: now,
            high: now,
            history: 0,
        };
    }
    let half = (elapsed / 2.0).min(TREND_WINDOW);
    let mid = current.at(elapsed - half);
    let older = (mid - current.at(elapsed - 2.0 * half)) / half;
    let recent = (now_f - mid) / half;
    // Under two days there is no telling a slowdown from noise: the band carries both.
    let decay = if elapsed < 2.0 || older <= 0.0 {
        1.0
    } else {
        (recent / older).powf(1.0 / half).min(1.0)
    };
    let growth = if decay >= 1.0 {
        recent * left
    } else {
        recent * decay * (1.0 - decay.powf(left)) / (1.0 - decay)
    };
    let flat = recent.max(now_f / elapsed) * left;
    let at = |g: f64| (now_f + g).round().max(now_f) as u64;
    let central = if elapsed < 2.0 { growth / 2.0 } else { growth };
    Projection {
        projected: at(central),
        low: at(central * (1.0 - TREND_SPREAD)),
        high: at(flat.max(growth) * (1.0 + TREND_SPREAD)),
        history: 0,
    }
}

fn median(sorted: &[f64]) -> f64 {
    let n = sorted.len();
    if n % 2 == 1 {
        sorted[n / 2]
    } else {
        (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
    }
}

/// The current month's curve from the report's days (`YYYY-MM-DD`, cumulative totals).
pub fn current_curve(month: Month, days: &[crate::reconcile::Day]) -> Curve {
    let mut prev = 0;
    let new = days.iter().map(|d| {
        let n = d.total - prev;
        prev = d.total;
        (day_of(&d.day), n)
    });
    Curve::from_new(days_in(month), new)
}

/// The report's forecast for `month` at `now`: `None` unless `month` is the month of `now`.
pub fn forecast(
    month: Month,
    days: &[crate::reconcile::Day],
    history: &[Curve],
    pricing: &Pricing,
    now: OffsetDateTime,
) -> Option<Forecast> {
    project_month(month, current_curve(month, days), history, pricing, now)
}

/// The forecast of `month` so far (`current`) at `now`; `None` unless it is the month of
/// `now`.
pub fn project_month(
    month: Month,
    mut current: Curve,
    history: &[Curve],
    pricing: &Pricing,
    now: OffsetDateTime,
) -> Option<Forecast> {
    if Month::of(now) != month {
        return None;
    }
    // Days since the last new subject count as days with none.
    let today = now.to_offset(time::UtcOffset::UTC).day() as usize;
    let last = current.last();
    current
        .cumulative
        .resize(today.max(current.cumulative.len()), last);
    let p = project(&current, elapsed_days(now), history);
    Some(Forecast {
        projected_subjects: p.projected,
        low: p.low,
        high: p.high,
        projected_cost: pricing.bill(p.projected),
        method: p.method(),
        as_of: crate::wire::format_time(now),
    })
}

/// The curves of up to `HISTORY_MONTHS` months before `month` that hold data, newest first.
pub async fn history(
    store: &crate::store::Store,
    month: Month,
) -> Result<Vec<Curve>, crate::store::StoreError> {
    let mut months: Vec<Month> = store
        .months()
        .await?
        .iter()
        .filter_map(|l| Month::parse(&l.summary.month))
        .filter(|m| *m < month)
        .collect();
    months.sort();
    months.reverse();
    months.truncate(HISTORY_MONTHS);
    let mut curves = Vec::with_capacity(months.len());
    for m in months {
        curves.push(Curve::from_activity(m, &store.activity(m).await?));
    }
    Ok(curves)
}

/// Adds the forecast to a report read now (the current month only).
pub async fn attach(
    store: &crate::store::Store,
    mut report: crate::reconcile::Report,
    pricing: &Pricing,
) -> Result<crate::reconcile::Report, crate::store::StoreError> {
    let now = OffsetDateTime::now_utc();
    if let Some(month) = Month::parse(&report.month).filter(|m| *m == Month::of(now)) {
        let history = history(store, month).await?;
        report.forecast = forecast(month, &report.days, &history, pricing, now);
    }
    Ok(report)
}

/// The forecast in the text report.
pub fn text(f: &Forecast) -> String {
    let cost = f
        .projected_cost
        .map(|c| format!(", bill {c:.2}"))
        .unwrap_or_default();
    format!(
        "Forecast for month's end:   {} subjects (band {} to {}){cost}; method {}, as of {}\n",
        f.projected_subjects, f.low, f.high, f.method, f.as_of
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    /// A 30-day month where `per_day` new subjects come each day.
    fn linear(per_day: u64, days: usize) -> Curve {
        Curve::from_new(30, (1..=days as u8).map(|d| (d, per_day)))
    }

    /// A month of 30 days where half the final count arrives on day 1, the rest evenly.
    fn front(final_count: u64) -> Curve {
        let first = final_count / 2;
        let rest = (final_count - first) / 29;
        Curve::from_new(
            30,
            std::iter::once((1, first + (final_count - first) % 29))
                .chain((2..=30).map(|d| (d, rest))),
        )
    }

    #[test]
    fn a_curve_counts_and_interpolates() {
        let c = Curve::from_new(30, [(3, 2), (1, 4), (1, 1)]);
        assert_eq!(c.cumulative, [5, 5, 7]);
        assert_eq!(c.at(0.0), 0.0);
        assert_eq!(c.at(0.5), 2.5);
        assert_eq!(c.at(2.5), 6.0);
        assert_eq!(c.at(10.0), 7.0);
        assert!(c.usable());
        assert!(!Curve::from_new(30, [(5, 3)]).usable());
    }

    #[test]
    fn history_of_the_same_shape_projects_the_same_final() {
        // Three previous months shaped alike (sizes differ): the month so far at day 10
        // projects its own final exactly, and the band holds it.
        let history = [front(3000), front(6000), front(1500)];
        let now = Curve {
            cumulative: front(900).cumulative[..10].to_vec(),
            ..front(900)
        };
        let p = project(&now, 10.0, &history);
        assert_eq!(p.history, 3);
        assert!((p.projected as i64 - 900).abs() <= 18, "{p:?}");
        assert!(p.low <= 900 && 900 <= p.high, "{p:?}");
        assert!(p.low >= now.last(), "{p:?}");
        assert_eq!(p.method(), "history:3");
    }

    #[test]
    fn the_band_narrows_as_the_month_goes() {
        let history = [linear(10, 30)];
        let width = |day: usize| {
            let p = project(&linear(20, day), day as f64, &history);
            assert!((p.projected as i64 - 600).abs() <= 1, "{p:?}");
            (p.high - p.low) as f64 / p.projected as f64
        };
        let (w1, w14, w28) = (width(1), width(14), width(28));
        assert!(w1 > 1.0, "day 1 must be wide: {w1}");
        assert!(w1 > w14 && w14 > w28, "{w1} {w14} {w28}");
    }

    #[test]
    fn without_history_the_trend_carries_the_recent_rate() {
        let p = project(&linear(10, 10), 10.0, &[]);
        assert_eq!(p.method(), "trend");
        assert_eq!(p.projected, 300);
        assert_eq!((p.low, p.high), (200, 400));
        // A month that stopped growing keeps its count, with room above only.
        let flat = Curve::from_new(30, [(1, 100), (10, 0)]);
        let p = project(&flat, 10.0, &[]);
        assert_eq!((p.projected, p.low), (100, 100));
        assert!(p.high > 100, "{p:?}");
        // A month that began a moment ago: nothing to extrapolate from, a count of zero.
        let p = project(&Curve::from_new(30, []), 0.0, &[]);
        assert_eq!((p.projected, p.low, p.high), (0, 0, 0));
    }

    #[test]
    fn the_trend_slows_as_the_new_subjects_slow() {
        // New subjects fall by a tenth a day: linear extrapolation would overshoot.
        let new = |d: u8| (1000.0 * 0.9f64.powi(d as i32 - 1)).round() as u64;
        let so_far = Curve::from_new(30, (1..=14).map(|d| (d, new(d))));
        let truth: u64 = (1..=30).map(new).sum();
        let p = project(&so_far, 14.0, &[]);
        // The last week's rate carried flat would say 1.4 times the truth; the slowing
        // trend overshoots by a few percent (it uses the week's mean rate, a few days old:
        // the backtest found that better on months of mixed users than a geometric decay).
        let err = (p.projected as f64 - truth as f64).abs() / truth as f64;
        assert!(err < 0.10, "{p:?} vs {truth}");
        assert!(p.low <= truth && truth <= p.high, "{p:?} vs {truth}");
    }

    #[test]
    fn a_history_that_started_late_is_not_used() {
        // The collector was installed on the 20th of that month: its shape is no guide.
        let late = Curve::from_new(30, (20..=30).map(|d| (d, 50)));
        assert_eq!(project(&linear(10, 10), 10.0, &[late]).method(), "trend");
    }

    #[test]
    fn an_empty_month_so_far_falls_back_to_the_previous_finals() {
        let p = project(
            &Curve::from_new(30, []),
            0.2,
            &[linear(10, 30), linear(20, 30)],
        );
        assert_eq!((p.projected, p.low), (450, 0));
        assert!(p.high >= 600, "{p:?}");
    }

    #[test]
    fn the_report_forecast_is_for_the_current_month_only() {
        let days = vec![crate::reconcile::Day {
            day: "2026-12-02".into(),
            total: 40,
            by_source: Default::default(),
        }];
        let pricing = Pricing {
            price_per_mau: Some(0.05),
            free_mau: 200,
        };
        let dec = Month::parse("2026-12").unwrap();
        let now = datetime!(2026-12-05 12:00 UTC);
        let f = forecast(dec, &days, &[], &pricing, now).unwrap();
        assert_eq!(f.method, "trend");
        assert_eq!(f.as_of, "2026-12-05T12:00:00.000Z");
        // Days 3 to 5 had no new subject: the rate stopped, so does the forecast; the
        // band still leaves room for the rate since the 1st carried flat.
        assert_eq!((f.projected_subjects, f.low), (40, 40));
        assert_eq!(f.high, 40 + (40.0 / 4.5 * 26.5 * 1.5f64).round() as u64);
        assert_eq!(f.projected_cost, pricing.bill(f.projected_subjects));
        let nov = Month::parse("2026-11").unwrap();
        assert_eq!(forecast(nov, &days, &[], &pricing, now), None);
        assert!(text(&f).contains("method trend"), "{}", text(&f));
        assert_eq!(days_in(Month::parse("2028-02").unwrap()), 29);
        assert_eq!(elapsed_days(datetime!(2026-12-01 06:00 UTC)), 0.25);
    }
}
