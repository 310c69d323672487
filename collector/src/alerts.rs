//! Budget alerts: one POST when the month's forecast first goes over the budget (MAU
//! subjects or bill), and one when the month's actual figures do; each (month, kind) at
//! most once, across restarts and instances.
//!
//! A background task checks the current month (each minute) and never touches ingest: it
//! reads the store like a report does. Before sending, an instance claims the alert's row
//! (`alerts`, keyed by month and kind) in one statement: a new row, or a `sending` row whose
//! lease has run out. The lease covers the next step (a send, or the pause before the next
//! try) plus `LEASE_SLACK`, so an instance that dies mid-send is replaced by another (or by
//! itself restarted) once the lease ends. The one case of two POSTs: an instance that dies
//! after the receiver took the alert and before the row says `sent`.
//!
//! Receiver failures (5xx, 408, 429, timeouts, refused connections) are retried with a
//! pause doubling from `--alert-retry-ms` up to `MAX_PAUSE`. Other 4xx answers (a deleted
//! or mistyped webhook) are retried every `REFUSED_PAUSE` until fixed, logged as errors.
//! The URL usually holds a secret: logs name its host only.

use crate::config::AlertArgs;
use crate::forecast::{self, Curve, Forecast};
use crate::month::Month;
use crate::pricing::Pricing;
use crate::store::copy::Cell;
use crate::store::{Store, StoreError};
use crate::wire::format_time;
use serde::Serialize;
use serde_json::json;
use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use time::OffsetDateTime;

/// Longest pause between tries after a receiver failure.
const MAX_PAUSE: Duration = Duration::from_secs(300);
/// Pause between tries after a 4xx other than 408 and 429.
const REFUSED_PAUSE: Duration = Duration::from_secs(3600);
/// Longest a POST may take.
const SEND_TIMEOUT: Duration = Duration::from_secs(10);
/// Added to every lease, for clocks and database round trips.
const LEASE_SLACK: Duration = Duration::from_secs(60);
/// How long the previous months' curves are reused before being read again.
const HISTORY_FOR: Duration = Duration::from_secs(3600);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AlertConfigError {
    #[error("--budget-mau and --budget-usd need --alert-url (MAU_COLLECTOR_ALERT_URL): where to send the alert")]
    NoUrl,
    #[error("--alert-url needs a budget: --budget-mau or --budget-usd")]
    NoBudget,
    #[error("--budget-usd needs --price-per-mau: without a price the bill is unknown")]
    NoPrice,
    #[error("--budget-usd must be a number of at least 0")]
    BadUsd,
    #[error("--alert-url is not a URL")]
    BadUrl,
    #[error("--alert-url must be https (http only to a loopback host such as 127.0.0.1); got {scheme} to {host}")]
    Insecure { scheme: String, host: String },
}

/// The budget, as the report carries it (`budget: { mau, usd }`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Budget {
    pub mau: Option<u64>,
    pub usd: Option<f64>,
}

/// A checked alert configuration. Debug output hides the URL.
#[derive(Clone)]
pub struct AlertConfig {
    pub budget: Budget,
    url: String,
    host: String,
    check_every: Duration,
    retry_first: Duration,
}

impl std::fmt::Debug for AlertConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AlertConfig({:?}, to host {})", self.budget, self.host)
    }
}

impl AlertConfig {
    /// `None` when no budget and no URL are set; refuses a half or unsafe configuration.
    pub fn from_args(
        args: &AlertArgs,
        pricing: &Pricing,
    ) -> Result<Option<AlertConfig>, AlertConfigError> {
        let url = args.alert_url.as_deref().filter(|u| !u.is_empty());
        let budget = Budget {
            mau: args.budget_mau,
            usd: args.budget_usd,
        };
        let url = match (url, budget.mau.is_some() || budget.usd.is_some()) {
            (None, false) => return Ok(None),
            (None, true) => return Err(AlertConfigError::NoUrl),
            (Some(_), false) => return Err(AlertConfigError::NoBudget),
            (Some(u), true) => u,
        };
        if let Some(usd) = budget.usd {
            if !usd.is_finite() || usd < 0.0 {
                return Err(AlertConfigError::BadUsd);
            }
            if pricing.price_per_mau.is_none() {
                return Err(AlertConfigError::NoPrice);
            }
        }
        let parsed = url::Url::parse(url).map_err(|_| AlertConfigError::BadUrl)?;
        let host = parsed.host().ok_or(AlertConfigError::BadUrl)?.to_string();
        let loopback = match parsed.host() {
            Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
            Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
            Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
            None => false,
        };
        match parsed.scheme() {
            "https" => {}
            "http" if loopback => {}
            scheme => {
                return Err(AlertConfigError::Insecure {
                    scheme: scheme.to_owned(),
                    host,
                })
            }
        }
        Ok(Some(AlertConfig {
            budget,
            url: url.to_owned(),
            host,
            check_every: Duration::from_millis(args.alert_check_ms),
            retry_first: Duration::from_millis(args.alert_retry_ms),
        }))
    }

    /// The receiver's host: what logs show of the URL.
    pub fn host(&self) -> &str {
        &self.host
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// The forecast went over the budget.
    Forecast,
    /// The month's actual figures did.
    Actual,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Forecast => "forecast",
            Kind::Actual => "actual",
        }
    }
}

/// The month's figures at a check: counts and money only, no subject.
#[derive(Debug, Clone, PartialEq)]
pub struct Figures {
    pub month: String,
    pub subjects: u64,
    pub cost: Option<f64>,
    pub forecast: Option<Forecast>,
}

fn over(budget: &Budget, subjects: u64, cost: Option<f64>) -> bool {
    budget.mau.is_some_and(|b| subjects > b) || budget.usd.zip(cost).is_some_and(|(b, c)| c > b)
}

/// The kinds of alert the figures call for.
pub fn due(budget: &Budget, f: &Figures) -> Vec<Kind> {
    let mut kinds = Vec::new();
    if let Some(fc) = &f.forecast {
        if over(budget, fc.projected_subjects, fc.projected_cost) {
            kinds.push(Kind::Forecast);
        }
    }
    if over(budget, f.subjects, f.cost) {
        kinds.push(Kind::Actual);
    }
    kinds
}

/// The JSON sent: a sentence for people in `text` (what Slack and Teams show), and the
/// figures for programs.
pub fn payload(kind: Kind, budget: &Budget, f: &Figures) -> serde_json::Value {
    let money = |c: Option<f64>| c.map(|c| format!(", bill {c:.2} USD")).unwrap_or_default();
    let limits: Vec<String> = budget
        .mau
        .map(|m| format!("{m} MAU"))
        .into_iter()
        .chain(budget.usd.map(|u| format!("{u:.2} USD")))
        .collect();
    let limits = limits.join(" / ");
    let fc = f.forecast.as_ref();
    let text = match (kind, fc) {
        (Kind::Forecast, Some(fc)) => format!(
            "MAU budget alert for {}: the month is forecast to end at {} MAU (band {} to {}){}, \
             over the budget of {limits}. So far: {} MAU{}.",
            f.month,
            fc.projected_subjects,
            fc.low,
            fc.high,
            money(fc.projected_cost),
            f.subjects,
            money(f.cost)
        ),
        _ => format!(
            "MAU budget alert for {}: the month has reached {} MAU{}, over the budget of {limits}.",
            f.month,
            f.subjects,
            money(f.cost)
        ),
    };
    json!({
        "text": text,
        "month": f.month,
        "kind": kind.as_str(),
        "budget_mau": budget.mau,
        "budget_usd": budget.usd,
        "subjects": f.subjects,
        "cost": f.cost,
        "projected_subjects": fc.map(|f| f.projected_subjects),
        "projected_low": fc.map(|f| f.low),
        "projected_high": fc.map(|f| f.high),
        "projected_cost": fc.and_then(|f| f.projected_cost),
        "method": fc.map(|f| f.method.clone()),
    })
}

/// What a receiver made of one POST.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Sent(u16),
    /// Worth trying again soon: 5xx, 408, 429, a timeout, no connection.
    Failed(String),
    /// Another 4xx (or a redirect): the URL is wrong or revoked.
    Refused(u16),
}

impl Outcome {
    fn status(&self) -> String {
        match self {
            Outcome::Sent(s) | Outcome::Refused(s) => s.to_string(),
            Outcome::Failed(why) => why.clone(),
        }
    }
}

/// The pause before try `attempt + 1` (`attempt` from 1).
pub fn pause(first: Duration, attempt: u32, outcome: &Outcome) -> Duration {
    match outcome {
        Outcome::Refused(_) => REFUSED_PAUSE,
        _ => first
            .saturating_mul(1u32 << attempt.saturating_sub(1).min(20))
            .min(MAX_PAUSE),
    }
}

/// One POST (blocking). Errors never carry the URL.
fn post(agent: &ureq::Agent, url: &str, body: &str) -> Outcome {
    let result = agent
        .post(url)
        .set("Content-Type", "application/json")
        .send_string(body);
    match result {
        Ok(r) if (200..300).contains(&r.status()) => Outcome::Sent(r.status()),
        Ok(r) => Outcome::Refused(r.status()),
        Err(ureq::Error::Status(s, _)) if s == 408 || s == 429 || s >= 500 => {
            Outcome::Failed(s.to_string())
        }
        Err(ureq::Error::Status(s, _)) => Outcome::Refused(s),
        Err(ureq::Error::Transport(t)) => Outcome::Failed(t.kind().to_string()),
    }
}

const CLAIM: &str = "INSERT INTO alerts
    (month, kind, state, owner, lease_until, attempts, last_status, updated_at, sent_at)
    VALUES ($1, $2, 'sending', $3, $4, 0, NULL, $5, NULL)
    ON CONFLICT (month, kind) DO UPDATE SET owner = excluded.owner,
        lease_until = excluded.lease_until, updated_at = excluded.updated_at
    WHERE alerts.state = 'sending'
        AND (alerts.owner = excluded.owner OR alerts.lease_until < excluded.updated_at)";
const STEP: &str = "UPDATE alerts SET lease_until = $4, attempts = attempts + $5,
    last_status = coalesce($6, last_status), updated_at = $7
    WHERE month = $1 AND kind = $2 AND owner = $3 AND state = 'sending'";
const SENT: &str = "UPDATE alerts SET state = 'sent', last_status = $4, updated_at = $5,
    sent_at = $5 WHERE month = $1 AND kind = $2 AND owner = $3 AND state = 'sending'";

fn text(s: impl Into<String>) -> Cell {
    Cell::Text(Some(s.into()))
}

fn until(d: Duration) -> String {
    format_time(OffsetDateTime::now_utc() + d + LEASE_SLACK)
}

/// One alert's row, as this instance (`owner`) sees it.
struct Claim<'a> {
    store: &'a Store,
    month: String,
    kind: Kind,
    owner: &'a str,
}

impl Claim<'_> {
    fn key(&self) -> Vec<Cell> {
        vec![
            text(&self.month),
            text(self.kind.as_str()),
            text(self.owner),
        ]
    }

    /// Takes the alert: true when it was free (new, or a lapsed lease) or already ours.
    async fn take(&self, lease: Duration) -> Result<bool, StoreError> {
        let mut p = self.key();
        p.extend([
            text(until(lease)),
            text(format_time(OffsetDateTime::now_utc())),
        ]);
        Ok(self.store.execute(CLAIM, p).await? == 1)
    }

    /// Extends the lease (counting a try, noting the last answer); false once not ours.
    async fn step(
        &self,
        lease: Duration,
        attempt: bool,
        status: Option<String>,
    ) -> Result<bool, StoreError> {
        let mut p = self.key();
        p.extend([
            text(until(lease)),
            Cell::Int(attempt.into()),
            Cell::Text(status),
            text(format_time(OffsetDateTime::now_utc())),
        ]);
        Ok(self.store.execute(STEP, p).await? == 1)
    }

    async fn sent(&self, status: String) -> Result<bool, StoreError> {
        let mut p = self.key();
        p.extend([text(status), text(format_time(OffsetDateTime::now_utc()))]);
        Ok(self.store.execute(SENT, p).await? == 1)
    }
}

/// A name for this process in the `alerts` table: pid and start time.
pub fn instance_name() -> String {
    format!(
        "pid{}-{}",
        std::process::id(),
        OffsetDateTime::now_utc().unix_timestamp_nanos()
    )
}

/// The month's figures now: its subjects, their bill, the forecast.
pub async fn figures(
    store: &Store,
    month: Month,
    history: &[Curve],
    pricing: &Pricing,
    now: OffsetDateTime,
) -> Result<Figures, StoreError> {
    let current = Curve::from_activity(month, &store.activity(month).await?);
    let subjects = current.last();
    Ok(Figures {
        month: month.to_string(),
        subjects,
        cost: pricing.bill(subjects),
        forecast: forecast::project_month(month, current, history, pricing, now),
    })
}

/// The checking task of `serve`: runs until the process ends.
pub async fn run(store: Store, pricing: Pricing, config: AlertConfig) {
    let config = Arc::new(config);
    let owner: Arc<str> = instance_name().into();
    let busy: Arc<Mutex<HashSet<(String, Kind)>>> = Default::default();
    let mut history: Option<(Month, std::time::Instant, Vec<Curve>)> = None;
    let mut tick = tokio::time::interval(config.check_every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let now = OffsetDateTime::now_utc();
        let month = Month::of(now);
        let stale =
            !matches!(&history, Some((m, at, _)) if *m == month && at.elapsed() < HISTORY_FOR);
        if stale {
            match forecast::history(&store, month).await {
                Ok(h) => history = Some((month, std::time::Instant::now(), h)),
                Err(e) => {
                    tracing::warn!(error = %e, "budget check: cannot read previous months");
                    continue;
                }
            }
        }
        let curves = history.as_ref().map(|h| h.2.as_slice()).unwrap_or(&[]);
        let f = match figures(&store, month, curves, &pricing, now).await {
            Ok(f) => f,
            Err(e) => {
                tracing::warn!(error = %e, "budget check: cannot read the month");
                continue;
            }
        };
        for kind in due(&config.budget, &f) {
            let key = (f.month.clone(), kind);
            if busy
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .contains(&key)
            {
                continue;
            }
            let claim = Claim {
                store: &store,
                month: f.month.clone(),
                kind,
                owner: &owner,
            };
            match claim.take(SEND_TIMEOUT).await {
                Ok(true) => {}
                Ok(false) => continue,
                Err(e) => {
                    tracing::warn!(error = %e, kind = kind.as_str(), "budget alert: cannot claim");
                    continue;
                }
            }
            busy.lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(key.clone());
            let body = payload(kind, &config.budget, &f).to_string();
            let (store, config, owner, busy) =
                (store.clone(), config.clone(), owner.clone(), busy.clone());
            tokio::spawn(async move {
                let claim = Claim {
                    store: &store,
                    month: key.0.clone(),
                    kind,
                    owner: &owner,
                };
                deliver(&claim, &config, body).await;
                busy.lock().unwrap_or_else(|e| e.into_inner()).remove(&key);
            });
        }
    }
}

/// Sends one claimed alert until the receiver takes it (or the claim is lost).
async fn deliver(claim: &Claim<'_>, config: &AlertConfig, body: String) {
    let agent = ureq::AgentBuilder::new()
        .timeout(SEND_TIMEOUT)
        .redirects(0)
        .user_agent(concat!("mau-collector/", env!("CARGO_PKG_VERSION")))
        .build();
    let (month, kind, host) = (&claim.month, claim.kind.as_str(), config.host());
    let counter = |result| {
        crate::metrics::get()
            .alerts
            .get_or_create(&crate::metrics::AlertLabels { kind, result })
            .inc()
    };
    let mut attempt = 0u32;
    loop {
        attempt += 1;
        match claim.step(SEND_TIMEOUT, true, None).await {
            Ok(true) => {}
            Ok(false) => {
                tracing::warn!(%month, kind, "budget alert: another instance took it over");
                return;
            }
            Err(e) => {
                tracing::warn!(%month, kind, error = %e, "budget alert: store unavailable");
                tokio::time::sleep(config.retry_first).await;
                continue;
            }
        }
        let (a, url, b) = (agent.clone(), config.url.clone(), body.clone());
        let outcome = tokio::task::spawn_blocking(move || post(&a, &url, &b))
            .await
            .unwrap_or_else(|e| Outcome::Failed(e.to_string()));
        if let Outcome::Sent(status) = outcome {
            counter("sent");
            tracing::info!(%month, kind, host, status, attempt, "budget alert sent");
            // The receiver has it: marking it sent is retried while the store is away.
            let mut wait = config.retry_first;
            while let Err(e) = claim.sent(status.to_string()).await {
                tracing::warn!(%month, kind, error = %e, "budget alert: cannot mark it sent");
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(MAX_PAUSE);
            }
            return;
        }
        counter("failed");
        let wait = pause(config.retry_first, attempt, &outcome);
        let status = outcome.status();
        match outcome {
            Outcome::Refused(_) => tracing::error!(
                %month, kind, host, %status, attempt, retry_in_s = wait.as_secs(),
                "budget alert refused by the receiver: check --alert-url"
            ),
            _ => tracing::warn!(
                %month, kind, host, %status, attempt, retry_in_ms = wait.as_millis() as u64,
                "budget alert not delivered; retrying"
            ),
        }
        if let Err(e) = claim.step(wait, false, Some(status)).await {
            tracing::warn!(%month, kind, error = %e, "budget alert: store unavailable");
        }
        tokio::time::sleep(wait).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(mau: Option<u64>, usd: Option<f64>, url: Option<&str>) -> AlertArgs {
        AlertArgs {
            budget_mau: mau,
            budget_usd: usd,
            alert_url: url.map(str::to_owned),
            alert_check_ms: 60_000,
            alert_retry_ms: 2_000,
        }
    }

    fn priced() -> Pricing {
        Pricing {
            price_per_mau: Some(0.05),
            free_mau: 200,
        }
    }

    #[test]
    fn half_or_unsafe_configurations_are_refused_by_flag() {
        let p = priced();
        let e = |a: AlertArgs, p: &Pricing| AlertConfig::from_args(&a, p).unwrap_err();
        assert_eq!(e(args(Some(5), None, None), &p), AlertConfigError::NoUrl);
        let url = Some("https://hooks.slack.com/services/T/B/secret");
        assert_eq!(e(args(None, None, url), &p), AlertConfigError::NoBudget);
        assert_eq!(
            e(args(None, Some(10.0), url), &Pricing::default()),
            AlertConfigError::NoPrice
        );
        assert_eq!(e(args(None, Some(-1.0), url), &p), AlertConfigError::BadUsd);
        let insecure = e(
            args(Some(5), None, Some("http://hooks.example/x/secret")),
            &p,
        );
        let msg = insecure.to_string();
        assert!(
            msg.contains("--alert-url") && msg.contains("hooks.example"),
            "{msg}"
        );
        assert!(!msg.contains("secret"), "{msg}");
        assert!(e(args(Some(5), None, Some("not a url")), &p)
            .to_string()
            .contains("--alert-url"));
        assert!(AlertConfig::from_args(&args(None, None, None), &p)
            .unwrap()
            .is_none());
        for ok in [
            "https://hooks.slack.com/services/T/B/secret",
            "http://127.0.0.1:9/x",
            "http://[::1]:9/x",
            "http://localhost/x",
        ] {
            let c = AlertConfig::from_args(&args(Some(5), Some(1.0), Some(ok)), &p)
                .unwrap()
                .unwrap();
            assert!(!format!("{c:?}").contains("/x"), "{c:?}");
        }
        let c = AlertConfig::from_args(&args(Some(5), None, url), &p)
            .unwrap()
            .unwrap();
        assert_eq!(c.host(), "hooks.slack.com");
    }

    fn figures(subjects: u64, projected: u64) -> Figures {
        let p = priced();
        Figures {
            month: "2026-12".into(),
            subjects,
            cost: p.bill(subjects),
            forecast: Some(Forecast {
                projected_subjects: projected,
                low: projected - 10,
                high: projected + 10,
                projected_cost: p.bill(projected),
                method: "history:3".into(),
                as_of: "2026-12-10T00:00:00.000Z".into(),
            }),
        }
    }

    #[test]
    fn forecast_then_actual_over_either_budget() {
        let mau = Budget {
            mau: Some(1000),
            usd: None,
        };
        assert_eq!(due(&mau, &figures(400, 1000)), []);
        assert_eq!(due(&mau, &figures(400, 1001)), [Kind::Forecast]);
        assert_eq!(
            due(&mau, &figures(1001, 1500)),
            [Kind::Forecast, Kind::Actual]
        );
        // 40 USD is 1000 MAU past the 200 free.
        let usd = Budget {
            mau: None,
            usd: Some(40.0),
        };
        assert_eq!(due(&usd, &figures(1000, 1201)), [Kind::Forecast]);
        assert_eq!(due(&usd, &figures(1201, 1300)).len(), 2);
        let none = Figures {
            forecast: None,
            ..figures(10, 20)
        };
        assert_eq!(due(&mau, &none), []);
    }

    #[test]
    fn the_payload_says_it_in_a_sentence_with_the_figures() {
        let b = Budget {
            mau: Some(1000),
            usd: Some(40.0),
        };
        let v = payload(Kind::Forecast, &b, &figures(400, 1234));
        let t = v["text"].as_str().unwrap();
        assert!(
            t.contains("2026-12") && t.contains("1234 MAU") && t.contains("1000 MAU / 40.00 USD"),
            "{t}"
        );
        assert_eq!(
            (&v["kind"], &v["subjects"], &v["projected_subjects"]),
            (&json!("forecast"), &json!(400), &json!(1234))
        );
        assert_eq!(v["projected_cost"], json!(51.7));
        let a = payload(Kind::Actual, &b, &figures(1001, 1234));
        assert!(a["text"]
            .as_str()
            .unwrap()
            .contains("has reached 1001 MAU, bill 40.05 USD"));
    }

    #[test]
    fn pauses_double_up_to_a_cap_and_a_refusal_waits_long() {
        let f = Outcome::Failed("500".into());
        let first = Duration::from_secs(2);
        assert_eq!(pause(first, 1, &f), first);
        assert_eq!(pause(first, 3, &f), Duration::from_secs(8));
        assert_eq!(pause(first, 40, &f), MAX_PAUSE);
        assert_eq!(pause(first, 1, &Outcome::Refused(404)), REFUSED_PAUSE);
    }
}
