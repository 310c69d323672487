//! The collector's metrics, in the Prometheus text format (prometheus-client).
//!
//! One set per process, like the default registries of Prometheus' own clients: the
//! accept loop, the storage writers and the handlers all count into it without being
//! handed it. Labels are route templates, methods, status and error codes, event types
//! that passed Twilio's signature check: never an identity, a token, a ticket or a raw path.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::{Registry, Unit};
use std::sync::LazyLock;

/// The `Content-Type` of a scrape.
pub use prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub method: String,
    /// The route template (`/v1/months/{month}/report`), `static` or `unmatched`.
    pub route: String,
    pub status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabel {
    pub route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabel {
    /// `accepted` (stored now), `duplicate` (a retry of one stored before), `conflict`.
    pub result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CodeLabel {
    /// The stable error code of the answer.
    pub code: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SignatureLabels {
    /// `conversations` (webhooks) or `events` (Event Streams).
    pub endpoint: &'static str,
    /// `valid`, `missing`, `bad`, or `disabled` (no auth token configured).
    pub signature: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TypeLabels {
    pub endpoint: &'static str,
    /// The webhook's `EventType` or the event's `type`, read only after the signature held.
    pub r#type: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabel {
    pub reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct AlertLabels {
    /// `forecast` or `actual`.
    pub kind: &'static str,
    /// `sent` (the receiver took it), `failed` (an attempt the receiver refused or missed).
    pub result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct VersionLabel {
    pub version: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PoolLabel {
    /// `size` (open), `available` (idle), `waiting` (tasks waiting for one), `max`.
    pub state: &'static str,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

/// Every metric the collector exports.
pub struct Metrics {
    pub requests: Family<RequestLabels, Counter>,
    pub request_seconds: HistogramFamily<RouteLabel>,
    pub beacons: Family<ResultLabel, Counter>,
    pub beacon_refusals: Family<CodeLabel, Counter>,
    pub group_commits: Histogram,
    pub group_commit_seconds: Histogram,
    pub twilio_requests: Family<SignatureLabels, Counter>,
    pub twilio_types: Family<TypeLabels, Counter>,
    pub tokens_logged: Counter,
    pub erasures: Counter,
    pub erased_refused: Family<ReasonLabel, Counter>,
    pub connections_refused: Family<ReasonLabel, Counter>,
    pub open_connections: Gauge,
    pub storage_errors: Family<CodeLabel, Counter>,
    pub admin_failures: Family<ReasonLabel, Counter>,
    pub pool: Family<PoolLabel, Gauge>,
    pub alerts: Family<AlertLabels, Counter>,
    registry: Registry,
}

fn latency_buckets() -> Histogram {
    // 1 ms to about 16 s.
    Histogram::new(exponential_buckets(0.001, 2.0, 15))
}

impl Metrics {
    fn new() -> Metrics {
        let mut m = Metrics {
            requests: Family::default(),
            request_seconds: Family::new_with_constructor(latency_buckets),
            beacons: Family::default(),
            beacon_refusals: Family::default(),
            group_commits: Histogram::new(exponential_buckets(1.0, 2.0, 10)),
            group_commit_seconds: latency_buckets(),
            twilio_requests: Family::default(),
            twilio_types: Family::default(),
            tokens_logged: Counter::default(),
            erasures: Counter::default(),
            erased_refused: Family::default(),
            connections_refused: Family::default(),
            open_connections: Gauge::default(),
            storage_errors: Family::default(),
            admin_failures: Family::default(),
            pool: Family::default(),
            alerts: Family::default(),
            registry: Registry::with_prefix("mau_collector"),
        };
        let build: Family<VersionLabel, Gauge> = Family::default();
        build
            .get_or_create(&VersionLabel {
                version: env!("CARGO_PKG_VERSION"),
            })
            .set(1);
        m.registry
            .register("build_info", "The collector's version (always 1)", build);
        m.registry.register(
            "http_requests",
            "HTTP requests answered, by method, route template and status",
            m.requests.clone(),
        );
        m.registry.register_with_unit(
            "http_request_duration",
            "Time from a request's arrival to its answer's headers, by route template",
            Unit::Seconds,
            m.request_seconds.clone(),
        );
        m.registry.register(
            "beacons",
            "Beacons committed: accepted (new), duplicate (a retry of one stored), conflict",
            m.beacons.clone(),
        );
        m.registry.register(
            "beacon_requests_refused",
            "POST /v1/beacons requests refused, by error code (nothing stored)",
            m.beacon_refusals.clone(),
        );
        m.registry.register(
            "group_commit_writes",
            "Write requests folded into one storage transaction",
            m.group_commits.clone(),
        );
        m.registry.register_with_unit(
            "group_commit_duration",
            "Time one group commit took, durable on return",
            Unit::Seconds,
            m.group_commit_seconds.clone(),
        );
        m.registry.register(
            "twilio_requests",
            "Twilio webhook and Event Streams requests, by endpoint and signature result",
            m.twilio_requests.clone(),
        );
        m.registry.register(
            "twilio_events",
            "Signed Twilio webhooks and Event Streams events, by endpoint and type",
            m.twilio_types.clone(),
        );
        m.registry.register(
            "tokens_logged",
            "Token-log entries committed (POST /v1/tokens)",
            m.tokens_logged.clone(),
        );
        m.registry.register(
            "erasures",
            "Subjects erased on request by this process (HTTP and CLI)",
            m.erasures.clone(),
        );
        m.registry.register(
            "erased_refused",
            "Items for subjects in the erasure log taken (2xx) but not stored \
             (--refuse-erased), by kind: beacon, token, sighting",
            m.erased_refused.clone(),
        );
        m.registry.register(
            "connections_refused",
            "Connections answered 503 and closed: per_address (the per-address cap)",
            m.connections_refused.clone(),
        );
        m.registry.register(
            "open_connections",
            "HTTP connections open now",
            m.open_connections.clone(),
        );
        m.registry.register(
            "storage_errors",
            "Requests answered with a storage error, by code",
            m.storage_errors.clone(),
        );
        m.registry.register(
            "admin_auth_failures",
            "Admin requests refused: bad_token, or locked (too many failures from the address)",
            m.admin_failures.clone(),
        );
        m.registry.register(
            "db_pool_connections",
            "PostgreSQL pool: size, available, waiting, max (0 on SQLite)",
            m.pool.clone(),
        );
        m.registry.register(
            "budget_alerts",
            "Budget alert attempts, by kind (forecast, actual) and result (sent, failed)",
            m.alerts.clone(),
        );
        m
    }

    /// The whole scrape, Prometheus text format 0.0.4.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::prometheus_text::encode(&mut out, &self.registry);
        out
    }

    /// Counts an answer's storage error.
    pub fn storage_error(&self, code: &'static str) {
        self.storage_errors.get_or_create(&CodeLabel { code }).inc();
    }
}

/// The process's metrics.
pub fn get() -> &'static Metrics {
    static METRICS: LazyLock<Metrics> = LazyLock::new(Metrics::new);
    &METRICS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_carry_the_prefix_and_units() {
        let m = get();
        m.tokens_logged.inc();
        m.group_commit_seconds.observe(0.002);
        let text = m.encode();
        assert!(
            text.contains("mau_collector_build_info{version=\""),
            "{text}"
        );
        assert!(text.contains("# TYPE mau_collector_tokens_logged_total counter"));
        assert!(text.contains("mau_collector_group_commit_duration_seconds_bucket{le=\""));
    }
}
