//! The savings table: which part of the app made each MAU's client, and which of those
//! MAUs did nothing a server-side source saw. Pure, like `reconcile`: built from the
//! month's `subject_contexts` and activity rows, so the CLI, the HTTP report and the
//! dashboard give the same figures.
//!
//! A subject-month with an SDK connect (`connected` or `still_connected`) counts once, in
//! the row of the context and reason of its first connect of the month. It is *engaged*
//! when a webhook, an Event Stream or a REST sync saw it that month (REST sync stores only
//! participants added and messages written inside the month, so each of its rows is
//! activity in the month), User events apart (`engages`); *idle* otherwise: only SDK connects, `still_connected` and
//! tokens. Idle means "not seen doing anything", not "did nothing": see the README.

use crate::pricing::Pricing;
use crate::reconcile::{group, Report};
use crate::store::{ActivityRow, ContextRow};
use serde::Serialize;
use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write;

/// Source groups that show a subject doing something Twilio bills.
const ACTIVITY_GROUPS: [&str; 3] = ["webhook", "event_stream", "rest_sync"];
/// User events are not engagement: Twilio creates the User at its first connect and, with
/// reachability on, updates it at every connect, so they fire for a client that did nothing.
const CONNECT_ECHOES: [&str; 4] = ["onUserAdded", "onUserUpdated", "user.added", "user.updated"];

/// Whether a sighting from `source` shows the subject active in the month.
pub fn engages(source: &str) -> bool {
    let event = source.split_once(':').map_or("", |(_, e)| e);
    ACTIVITY_GROUPS.contains(&group(source)) && !CONNECT_ECHOES.contains(&event)
}

/// A row's key: the context and reason of a first connect.
type Place<'a> = (Option<&'a str>, Option<&'a str>);

/// The month's table and the price it was costed at.
#[derive(Debug, Clone, PartialEq, Serialize, Default)]
pub struct Savings {
    /// `None`: no price configured, every cost is `null`.
    pub price_per_mau: Option<f64>,
    pub free_mau: u64,
    /// Largest idle cost first (then most idle).
    pub by_context: Vec<ContextLine>,
    /// Idle subjects in all rows.
    pub idle: u64,
    /// What the month's bill would drop by had none of the idle subjects connected: the
    /// free allowance applies to the month as a whole, so this can be less than the sum
    /// of the rows' `idle_cost`.
    pub idle_saving: Option<f64>,
}

/// One context and reason of first connects.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ContextLine {
    /// `None` for beacons without a context.
    pub context: Option<String>,
    pub reason: Option<String>,
    pub subjects: u64,
    pub engaged: u64,
    pub idle: u64,
    /// `price_per_mau × idle`: each idle MAU at the marginal price, the free allowance
    /// left to `Savings::idle_saving`; `None` without a price.
    pub idle_cost: Option<f64>,
}

/// Builds the table from a month's contexts and activity; `seen` is the month's MAU count
/// (for the free allowance).
pub fn build(
    contexts: &[ContextRow],
    activity: &[ActivityRow],
    seen: u64,
    pricing: &Pricing,
) -> Savings {
    // By the subject's text whatever its kind: an identity that looks like a phone number
    // (`+1415…`) is filed as an address when a message's `Author` is all that names it.
    let engaged: BTreeSet<&str> = activity
        .iter()
        .filter(|a| engages(&a.source))
        .map(|a| a.subject.as_str())
        .collect();
    // The first connect of each identity: earliest time, then context, for a stable tie.
    let mut first: HashMap<&str, &ContextRow> = HashMap::new();
    for c in contexts {
        let f = first.entry(&c.identity).or_insert(c);
        if (&c.first_seen, &c.context) < (&f.first_seen, &f.context) {
            *f = c;
        }
    }
    // (context, reason) → (subjects, engaged)
    let mut rows: BTreeMap<Place, (u64, u64)> = BTreeMap::new();
    for (identity, c) in &first {
        let row = rows
            .entry((c.context.as_deref(), c.reason.as_deref()))
            .or_default();
        row.0 += 1;
        if engaged.contains(identity) {
            row.1 += 1;
        }
    }
    let cost = |idle: u64| {
        pricing
            .price_per_mau
            .map(|p| (idle as f64 * p * 100.0).round() / 100.0)
    };
    let mut by_context: Vec<ContextLine> = rows
        .into_iter()
        .map(|((context, reason), (subjects, engaged))| ContextLine {
            context: context.map(str::to_owned),
            reason: reason.map(str::to_owned),
            subjects,
            engaged,
            idle: subjects - engaged,
            idle_cost: cost(subjects - engaged),
        })
        .collect();
    by_context.sort_by(|a, b| {
        let by_cost = match (a.idle_cost, b.idle_cost) {
            (Some(x), Some(y)) => y.partial_cmp(&x).unwrap_or(Ordering::Equal),
            _ => Ordering::Equal,
        };
        by_cost
            .then(b.idle.cmp(&a.idle))
            .then(b.subjects.cmp(&a.subjects))
            .then_with(|| (&a.context, &a.reason).cmp(&(&b.context, &b.reason)))
    });
    let idle = by_context.iter().map(|l| l.idle).sum();
    Savings {
        price_per_mau: pricing.price_per_mau,
        free_mau: pricing.free_mau,
        by_context,
        idle,
        idle_saving: pricing.saving(seen.max(idle), idle),
    }
}

impl Report {
    /// With the month's savings table, costed at `pricing`.
    pub fn with_savings(
        mut self,
        contexts: &[ContextRow],
        activity: &[ActivityRow],
        pricing: &Pricing,
    ) -> Report {
        // The month's size for the free allowance: Twilio's count when known and larger
        // (it also holds subjects no source saw), else the subjects seen.
        let month = self.billed.as_ref().map_or(0, |b| b.count).max(self.seen);
        self.savings = build(contexts, activity, month, pricing);
        self
    }
}

/// The table for people.
pub fn text(s: &Savings) -> String {
    let mut t = String::new();
    let _ = writeln!(
        t,
        "Savings (SDK subjects by the context and reason of their first connect; idle = no \
         webhook, Event Stream or REST sync saw them this month):"
    );
    if s.by_context.is_empty() {
        let _ = writeln!(t, "    no SDK connects this month");
        return t;
    }
    let money = |c: Option<f64>| c.map_or("-".to_owned(), |c| format!("{c:.2}"));
    let _ = writeln!(
        t,
        "    {:<32} {:<12} {:>8} {:>8} {:>8} {:>10}",
        "context", "reason", "subjects", "engaged", "idle", "idle cost"
    );
    for l in &s.by_context {
        let _ = writeln!(
            t,
            "    {:<32} {:<12} {:>8} {:>8} {:>8} {:>10}",
            l.context.as_deref().unwrap_or("(none)"),
            l.reason.as_deref().unwrap_or("-"),
            l.subjects,
            l.engaged,
            l.idle,
            money(l.idle_cost)
        );
    }
    match s.price_per_mau {
        Some(p) => {
            let _ = writeln!(
                t,
                "    {} idle: the bill would be {} lower had they not connected (at {p} per MAU, \
                 first {} MAU free)",
                s.idle,
                money(s.idle_saving),
                s.free_mau
            );
        }
        None => {
            let _ = writeln!(
                t,
                "    {} idle; no price set: add --price-per-mau (and --free-mau) for costs",
                s.idle
            );
        }
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(identity: &str, context: &str, reason: &str, first: &str) -> ContextRow {
        ContextRow::stored(
            identity.into(),
            context.into(),
            (!reason.is_empty()).then(|| reason.into()),
            first.into(),
            1,
        )
    }

    fn seen(subject: &str, source: &str) -> ActivityRow {
        ActivityRow {
            subject_kind: "identity".into(),
            subject: subject.into(),
            source: source.into(),
            first_seen: "2026-11-02T00:00:00.000Z".into(),
            last_seen: "2026-11-02T00:00:00.000Z".into(),
            connects: 0,
        }
    }

    fn priced(price: f64, free: u64) -> Pricing {
        Pricing {
            price_per_mau: Some(price),
            free_mau: free,
        }
    }

    fn line(s: &Savings, context: Option<&str>) -> (u64, u64, u64, Option<f64>) {
        let l = s
            .by_context
            .iter()
            .find(|l| l.context.as_deref() == context)
            .unwrap();
        (l.subjects, l.engaged, l.idle, l.idle_cost)
    }

    #[test]
    fn each_subject_counts_once_in_its_first_context() {
        let contexts = [
            // alice connected from the inbox first, then the widget.
            ctx(
                "alice",
                "support-widget",
                "click",
                "2026-11-05T00:00:00.000Z",
            ),
            ctx("alice", "inbox", "app", "2026-11-01T00:00:00.000Z"),
            ctx("bob", "support-widget", "click", "2026-11-03T00:00:00.000Z"),
            ctx(
                "carol",
                "support-widget",
                "click",
                "2026-11-04T00:00:00.000Z",
            ),
            ctx("dave", "", "", "2026-11-04T00:00:00.000Z"),
        ];
        let activity = [
            seen("alice", "webhook:onMessageAdded"),
            seen("bob", "sdk_still_connected"),
            seen("bob", "sdk_connect"),
            seen("carol", "rest_sync"),
            seen(
                "erin",
                "event_stream:com.twilio.conversations.message.added",
            ),
        ];
        let s = build(&contexts, &activity, 6, &priced(0.05, 0));
        assert_eq!(line(&s, Some("inbox")), (1, 1, 0, Some(0.0)));
        assert_eq!(line(&s, Some("support-widget")), (2, 1, 1, Some(0.05)));
        assert_eq!(line(&s, None), (1, 0, 1, Some(0.05)));
        assert_eq!(s.by_context.len(), 3);
        assert_eq!(s.idle, 2);
        assert_eq!(s.idle_saving, Some(0.1));
        // Largest idle cost first; the tie broken by subjects.
        assert_eq!(
            s.by_context[0].context.as_deref(),
            Some("support-widget"),
            "{s:?}"
        );
        assert_eq!(s.by_context[2].context.as_deref(), Some("inbox"));
    }

    #[test]
    fn user_events_echo_a_connect_and_do_not_engage() {
        for s in [
            "webhook:onMessageAdded",
            "webhook:onParticipantAdded",
            "event_stream:message.added",
            "rest_sync",
        ] {
            assert!(engages(s), "{s}");
        }
        for s in [
            "webhook:onUserAdded",
            "webhook:onUserUpdated",
            "event_stream:user.updated",
            "event_stream:user.added",
            "sdk_connect",
            "sdk_still_connected",
        ] {
            assert!(!engages(s), "{s}");
        }
        let contexts = [ctx("a", "inbox", "app", "2026-11-01T00:00:00.000Z")];
        let s = build(
            &contexts,
            &[seen("a", "webhook:onUserUpdated")],
            1,
            &priced(1.0, 0),
        );
        assert_eq!(line(&s, Some("inbox")), (1, 0, 1, Some(1.0)));
    }

    #[test]
    fn the_free_allowance_applies_to_the_month_not_the_rows() {
        let contexts: Vec<ContextRow> = (0..10)
            .map(|i| ctx(&format!("u{i}"), "inbox", "app", "2026-11-01T00:00:00.000Z"))
            .collect();
        let s = build(&contexts, &[], 12, &priced(1.0, 5));
        assert_eq!(line(&s, Some("inbox")), (10, 0, 10, Some(10.0)));
        // 12 MAU → 7 billed; without the 10 idle, 2 MAU → 0 billed.
        assert_eq!(s.idle_saving, Some(7.0));
    }

    #[test]
    fn no_price_no_costs_and_the_text_says_how() {
        let contexts = [ctx("a", "inbox", "visible", "2026-11-01T00:00:00.000Z")];
        let s = build(&contexts, &[], 1, &Pricing::default());
        assert_eq!(s.by_context[0].idle_cost, None);
        assert_eq!(s.idle_saving, None);
        let t = text(&s);
        assert!(t.contains("inbox") && t.contains("visible"), "{t}");
        assert!(t.contains("--price-per-mau"), "{t}");
        let t = text(&build(&contexts, &[], 1, &priced(0.05, 200)));
        assert!(
            t.contains("0.05") && t.contains("first 200 MAU free"),
            "{t}"
        );
        assert!(text(&Savings::default()).contains("no SDK connects"));
    }
}
