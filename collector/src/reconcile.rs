//! The month's reconciliation: every MAU subject from every source set beside the count
//! Twilio bills, the token log, and what stays unexplained. Pure: built from rows the
//! store returns, so the CLI, the HTTP report and the dashboard give the same figures.

pub use crate::store::Billed;
use crate::store::{ActivityRow, TokenIdentity, STILL_SOURCE};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write;

/// Longest list the text report prints in full; JSON always has every entry.
const TEXT_LIST: usize = 10;

/// One Usage Records row, as Twilio returns it (count is a string there).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UsageRow {
    pub category: String,
    pub description: String,
    pub count: String,
    pub count_unit: String,
    pub price: String,
    pub start_date: String,
    pub end_date: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Overlap {
    /// Source groups joined by `+`, e.g. `sdk_connect+webhook`.
    pub sources: String,
    pub subjects: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Day {
    /// `YYYY-MM-DD` (UTC).
    pub day: String,
    /// Subjects first seen on or before this day.
    pub total: u64,
    /// The same, per source group (a subject counts in each group that saw it).
    pub by_source: BTreeMap<String, u64>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    pub month: String,
    pub billed: Option<Billed>,
    /// Every `conversations*`/`pchat*` Usage Records row, when read from Twilio.
    pub usage_records: Vec<UsageRow>,
    /// Unique subjects from any billable source.
    pub seen: u64,
    pub identities: u64,
    pub addresses: u64,
    /// Unique subjects per exact source (`sdk_connect`, `webhook:onMessageAdded`, ...).
    pub by_source: BTreeMap<String, u64>,
    /// Unique subjects per source group: `sdk_connect`, `webhook`, `event_stream`, `rest_sync`.
    pub by_group: BTreeMap<String, u64>,
    /// Subjects per exact combination of source groups, largest first.
    pub overlaps: Vec<Overlap>,
    pub connects: i64,
    /// Subjects seen only through `still_connected` beacons (connected before the month
    /// began, still connected in it): in `seen`; subtract them to count connects only.
    pub still_connected_only: u64,
    pub first_seen: Option<String>,
    pub last_seen: Option<String>,
    /// Tokens logged in the month, and to how many identities.
    pub tokens_issued: i64,
    pub token_identities: u64,
    /// Identities with a token logged but no SDK connect: not billed for connecting.
    pub tokens_never_connected: Vec<String>,
    /// Identities that connected (SDK beacon) with no token logged that month: a code path
    /// that does not log, or a forged beacon.
    pub connected_without_token: Vec<String>,
    /// Subjects of the month erased on request: no longer in `seen`, still in Twilio's
    /// count. A number only.
    pub erased: u64,
    /// billed − (seen + erased): above zero, subjects Twilio counted that no source saw;
    /// below zero, subjects seen that Twilio did not bill.
    pub unexplained: Option<i64>,
    pub days: Vec<Day>,
    /// Chat identities that read alike (same after trimming, NFKC, case folding and the UTS #39 skeleton), for a
    /// person to check: each may be a separate billed user, or one user counted twice.
    pub lookalikes: Vec<Vec<String>>,
    /// Where SDK subjects' clients were made, and which of them did nothing seen
    /// (`savings`).
    pub savings: crate::savings::Savings,
    /// The month-end forecast: the current month only (null for any other).
    pub forecast: Option<crate::forecast::Forecast>,
    /// The budget `serve` alerts on (`--budget-mau`, `--budget-usd`); null without one.
    pub budget: Option<crate::alerts::Budget>,
}

/// The group of a source: the part before `:`.
pub fn group(source: &str) -> &str {
    source.split(':').next().unwrap_or(source)
}

/// Builds the report from a month's activity rows and token log.
pub fn build(
    month: &str,
    activity: &[ActivityRow],
    tokens: &[TokenIdentity],
    billed: Option<Billed>,
    usage_records: Vec<UsageRow>,
) -> Report {
    struct Subject<'a> {
        groups: BTreeSet<&'a str>,
        first_by_group: BTreeMap<&'a str, &'a str>,
        first: &'a str,
    }
    let mut subjects: HashMap<(&str, &str), Subject> = HashMap::new();
    let mut by_source: BTreeMap<String, BTreeSet<(&str, &str)>> = BTreeMap::new();
    let mut connected: BTreeSet<&str> = BTreeSet::new();
    let (mut connects, mut first_seen, mut last_seen) = (0, None::<&str>, None::<&str>);
    for r in activity {
        let key = (r.subject_kind.as_str(), r.subject.as_str());
        let g = group(&r.source);
        let s = subjects.entry(key).or_insert(Subject {
            groups: BTreeSet::new(),
            first_by_group: BTreeMap::new(),
            first: &r.first_seen,
        });
        s.groups.insert(g);
        s.first = s.first.min(&r.first_seen);
        let f = s.first_by_group.entry(g).or_insert(&r.first_seen);
        *f = (*f).min(&r.first_seen);
        by_source.entry(r.source.clone()).or_default().insert(key);
        if r.source == "sdk_connect" {
            connected.insert(&r.subject);
            connects += r.connects;
        }
        first_seen = Some(first_seen.map_or(r.first_seen.as_str(), |f| f.min(&r.first_seen)));
        last_seen = Some(last_seen.map_or(r.last_seen.as_str(), |l| l.max(&r.last_seen)));
    }
    let seen = subjects.len() as u64;
    let still_connected_only = subjects
        .values()
        .filter(|s| s.groups.len() == 1 && s.groups.contains(STILL_SOURCE))
        .count() as u64;
    let identities = subjects.keys().filter(|(k, _)| *k == "identity").count() as u64;

    let mut by_group: BTreeMap<String, u64> = BTreeMap::new();
    let mut combos: BTreeMap<String, u64> = BTreeMap::new();
    for s in subjects.values() {
        for g in &s.groups {
            *by_group.entry((*g).to_owned()).or_default() += 1;
        }
        let combo: Vec<&str> = s.groups.iter().copied().collect();
        *combos.entry(combo.join("+")).or_default() += 1;
    }
    let mut overlaps: Vec<Overlap> = combos
        .into_iter()
        .map(|(sources, subjects)| Overlap { sources, subjects })
        .collect();
    overlaps.sort_by(|a, b| b.subjects.cmp(&a.subjects).then(a.sources.cmp(&b.sources)));

    let with_token: BTreeSet<&str> = tokens.iter().map(|t| t.identity.as_str()).collect();
    let tokens_never_connected = with_token
        .difference(&connected)
        .map(|s| (*s).to_owned())
        .collect();
    let connected_without_token = connected
        .difference(&with_token)
        .map(|s| (*s).to_owned())
        .collect();

    Report {
        month: month.to_owned(),
        erased: 0,
        unexplained: billed.as_ref().map(|b| b.count as i64 - seen as i64),
        billed,
        usage_records,
        seen,
        identities,
        addresses: seen - identities,
        by_source: by_source
            .into_iter()
            .map(|(k, v)| (k, v.len() as u64))
            .collect(),
        by_group,
        overlaps,
        connects,
        still_connected_only,
        first_seen: first_seen.map(str::to_owned),
        last_seen: last_seen.map(str::to_owned),
        tokens_issued: tokens.iter().map(|t| t.tokens).sum(),
        token_identities: with_token.len() as u64,
        tokens_never_connected,
        connected_without_token,
        days: days(subjects.values().map(|s| (s.first, &s.first_by_group))),
        lookalikes: crate::identity::lookalikes(
            subjects
                .keys()
                .filter(|(k, _)| *k == "identity")
                .map(|(_, s)| *s),
        ),
        savings: Default::default(),
        forecast: None,
        budget: None,
    }
}

impl Report {
    /// With the month's count of subjects erased on request, which explains that much of
    /// the gap to Twilio's count.
    pub fn with_erased(mut self, erased: u64) -> Report {
        self.erased = erased;
        self.unexplained = self.unexplained.map(|u| u - erased as i64);
        self
    }
}

/// Cumulative subjects per day, from the first day with data to the last.
fn days<'a>(firsts: impl Iterator<Item = (&'a str, &'a BTreeMap<&'a str, &'a str>)>) -> Vec<Day> {
    let day = |t: &str| t.get(..10).unwrap_or(t).to_owned();
    let mut new_total: BTreeMap<String, u64> = BTreeMap::new();
    let mut new_by: BTreeMap<String, BTreeMap<String, u64>> = BTreeMap::new();
    for (first, by_group) in firsts {
        *new_total.entry(day(first)).or_default() += 1;
        for (g, f) in by_group {
            *new_by
                .entry(day(f))
                .or_default()
                .entry((*g).to_owned())
                .or_default() += 1;
        }
    }
    let all: BTreeSet<&String> = new_total.keys().chain(new_by.keys()).collect();
    let (mut total, mut by) = (0, BTreeMap::<String, u64>::new());
    all.into_iter()
        .map(|d| {
            total += new_total.get(d).copied().unwrap_or(0);
            for (g, n) in new_by.get(d).into_iter().flatten() {
                *by.entry(g.clone()).or_default() += n;
            }
            Day {
                day: d.clone(),
                total,
                by_source: by.clone(),
            }
        })
        .collect()
}

/// The report for people.
pub fn text(r: &Report) -> String {
    let mut t = String::new();
    let _ = writeln!(t, "Month {} (UTC)", r.month);
    match &r.billed {
        Some(b) => {
            let from = match b.from.as_str() {
                "typed" => "typed with --billed or on the dashboard",
                other => other,
            };
            // A stored count says when it was stored: a report without --billed or
            // --twilio uses the one stored for the month.
            let stored = b
                .recorded_at
                .as_ref()
                .map(|at| format!(", stored {at}"))
                .unwrap_or_default();
            let _ = writeln!(
                t,
                "Billed by Twilio:           {} ({from}){stored}",
                b.count
            );
        }
        None => {
            let _ = writeln!(
                t,
                "Billed by Twilio:           unknown (add --twilio or --billed N)"
            );
        }
    }
    for u in &r.usage_records {
        let _ = writeln!(
            t,
            "  usage record {:<26} {:>8} {} ({}, {} to {}, price {})",
            u.category, u.count, u.count_unit, u.description, u.start_date, u.end_date, u.price
        );
    }
    let _ = writeln!(
        t,
        "Subjects seen:              {} ({} chat identities, {} channel addresses)",
        r.seen, r.identities, r.addresses
    );
    let _ = writeln!(t, "  by source:");
    for (s, n) in &r.by_source {
        let _ = writeln!(t, "    {s:<40} {n:>8}");
    }
    let _ = writeln!(t, "  overlaps (subjects per combination of sources):");
    for o in &r.overlaps {
        let name = if o.sources.contains('+') {
            o.sources.replace('+', " + ")
        } else {
            format!("{} only", o.sources)
        };
        let _ = writeln!(t, "    {name:<40} {:>8}", o.subjects);
    }
    let _ = writeln!(t, "SDK connects:               {}", r.connects);
    let _ = writeln!(
        t,
        "Only still connected:       {} (in Subjects seen; subtract to count connects only)",
        r.still_connected_only
    );
    let _ = writeln!(
        t,
        "First seen / last seen:     {} / {}",
        r.first_seen.as_deref().unwrap_or("-"),
        r.last_seen.as_deref().unwrap_or("-")
    );
    let _ = writeln!(
        t,
        "Tokens issued:              {} to {} identities",
        r.tokens_issued, r.token_identities
    );
    list(
        &mut t,
        "  never connected (no MAU from connecting: money saved)",
        &r.tokens_never_connected,
    );
    let note = if r.token_identities == 0 {
        " (no tokens were logged this month)"
    } else {
        ""
    };
    list(
        &mut t,
        &format!("Connected with no token logged{note}"),
        &r.connected_without_token,
    );
    let _ = writeln!(
        t,
        "Look-alike identities (same after NFKC + case folding + confusable skeleton; check by hand): {}",
        r.lookalikes.len()
    );
    for g in r.lookalikes.iter().take(TEXT_LIST) {
        let quoted: Vec<String> = g.iter().map(|i| format!("{i:?}")).collect();
        let _ = writeln!(t, "    {}", quoted.join("  "));
    }
    if let Some(f) = &r.forecast {
        t.push_str(&crate::forecast::text(f));
    }
    if r.erased > 0 {
        let _ = writeln!(
            t,
            "Erased on request:          {} (subjects of this month, no longer in Subjects seen)",
            r.erased
        );
    }
    match r.unexplained {
        None => {}
        Some(0) => {
            let _ = writeln!(t, "Unexplained:                0 (the counts match)");
        }
        Some(n) if n > 0 => {
            let _ = writeln!(
                t,
                "Unexplained:                {n} billed but not seen by any source"
            );
        }
        Some(n) => {
            let _ = writeln!(
                t,
                "Unexplained:                {} seen but not billed (sources Twilio does not count?)",
                -n
            );
        }
    }
    t.push_str(&crate::savings::text(&r.savings));
    t
}

fn list(t: &mut String, title: &str, items: &[String]) {
    let _ = writeln!(t, "{title}: {}", items.len());
    for i in items.iter().take(TEXT_LIST) {
        let _ = writeln!(t, "    {i}");
    }
    if items.len() > TEXT_LIST {
        let _ = writeln!(
            t,
            "    ... and {} more (--format json lists all)",
            items.len() - TEXT_LIST
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(kind: &str, subject: &str, source: &str, first: &str, connects: i64) -> ActivityRow {
        ActivityRow {
            subject_kind: kind.into(),
            subject: subject.into(),
            source: source.into(),
            first_seen: first.into(),
            last_seen: first.replace("T0", "T2"),
            connects,
        }
    }

    #[test]
    fn figures_of_a_small_month() {
        let activity = [
            row(
                "identity",
                "alice",
                "sdk_connect",
                "2026-11-02T08:00:00.000Z",
                3,
            ),
            row(
                "identity",
                "alice",
                "webhook:onMessageAdded",
                "2026-11-01T08:00:00.000Z",
                0,
            ),
            row(
                "identity",
                "bob",
                "sdk_connect",
                "2026-11-03T08:00:00.000Z",
                1,
            ),
            row(
                "address",
                "+14155550100",
                "webhook:onMessageAdded",
                "2026-11-03T09:00:00.000Z",
                0,
            ),
            row(
                "address",
                "+14155550100",
                "rest_sync",
                "2026-11-03T09:00:00.000Z",
                0,
            ),
        ];
        let tokens = [
            TokenIdentity {
                identity: "alice".into(),
                tokens: 2,
                first_issued: "x".into(),
                last_issued: "x".into(),
            },
            TokenIdentity {
                identity: "zoe".into(),
                tokens: 1,
                first_issued: "x".into(),
                last_issued: "x".into(),
            },
        ];
        let billed = Billed {
            count: 5,
            from: "typed".into(),
            recorded_at: Some("2026-12-01T09:00:00.000Z".into()),
        };
        let r = build("2026-11", &activity, &tokens, Some(billed), vec![]);
        assert_eq!((r.seen, r.identities, r.addresses), (3, 2, 1));
        assert_eq!(r.by_source["sdk_connect"], 2);
        assert_eq!(r.by_source["webhook:onMessageAdded"], 2);
        assert_eq!(r.by_group["webhook"], 2);
        assert_eq!(
            r.overlaps,
            [
                Overlap {
                    sources: "rest_sync+webhook".into(),
                    subjects: 1
                },
                Overlap {
                    sources: "sdk_connect".into(),
                    subjects: 1
                },
                Overlap {
                    sources: "sdk_connect+webhook".into(),
                    subjects: 1
                },
            ]
        );
        assert_eq!(r.connects, 4);
        assert_eq!(r.tokens_issued, 3);
        assert_eq!(r.tokens_never_connected, ["zoe"]);
        assert_eq!(r.connected_without_token, ["bob"]);
        assert_eq!(r.unexplained, Some(2));
        assert_eq!(r.first_seen.as_deref(), Some("2026-11-01T08:00:00.000Z"));
        let days: Vec<(String, u64)> = r.days.iter().map(|d| (d.day.clone(), d.total)).collect();
        assert_eq!(
            days,
            [
                ("2026-11-01".into(), 1),
                ("2026-11-02".into(), 1),
                ("2026-11-03".into(), 3)
            ]
        );
        assert_eq!(r.days[1].by_source["sdk_connect"], 1);
        assert_eq!(r.days[2].by_source["sdk_connect"], 2);
        assert_eq!(r.days[2].by_source["webhook"], 2);
        let t = text(&r);
        assert!(
            t.contains("Subjects seen:              3 (2 chat identities, 1 channel addresses)"),
            "{t}"
        );
        assert!(t.contains("sdk_connect + webhook"), "{t}");
        assert!(
            t.contains("Billed by Twilio:           5 (typed with --billed or on the dashboard), stored 2026-12-01T09:00:00.000Z"),
            "{t}"
        );
        assert!(
            t.contains("Unexplained:                2 billed but not seen by any source"),
            "{t}"
        );
    }

    #[test]
    fn an_empty_month() {
        let r = build("2026-11", &[], &[], None, vec![]);
        assert_eq!(r.clone().with_erased(2).unexplained, None);
        let billed = Billed {
            count: 5,
            from: "typed".into(),
            recorded_at: None,
        };
        let gap = build("2026-11", &[], &[], Some(billed), vec![]).with_erased(2);
        assert_eq!((gap.erased, gap.unexplained), (2, Some(3)));
        assert!(text(&gap).contains("Erased on request:          2"));
        assert!(!text(&r).contains("Erased on request"));
        assert_eq!((r.seen, r.unexplained, r.days.len()), (0, None, 0));
        let t = text(&r);
        assert!(t.contains("unknown (add --twilio or --billed N)"), "{t}");
        assert!(!t.contains("Unexplained"), "{t}");
    }
}
