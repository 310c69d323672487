//! Per-client limits on `POST /v1/beacons`: a token bucket of requests per address
//! (governor), and a cap on distinct identities per address per minute. The address is
//! the peer's, or the one a `--trusted-proxy` put in `X-Forwarded-For`; an IPv6 client
//! is limited by its /64 prefix, since one host commonly holds a whole /64.

use axum::http::HeaderMap;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};
use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Configuration; a zero turns a limit off.
#[derive(Debug, Clone, Default)]
pub struct LimitConfig {
    /// Requests per second per address (the bucket's refill rate).
    pub per_second: u32,
    /// Requests an address may make at once (the bucket's size).
    pub burst: u32,
    /// Distinct identities per address per minute.
    pub identities_per_minute: u32,
    /// Peers whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<IpAddr>,
}

/// Why a request was refused, and how long to wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("too many requests from this address; retry after {} s", self.retry_after_secs())]
    RateLimited(Duration),
    #[error(
        "too many new identities from this address this minute; retry after {} s",
        self.retry_after_secs()
    )]
    TooManyIdentities(Duration),
}

impl Refusal {
    /// The stable code of the HTTP error.
    pub fn code(&self) -> &'static str {
        match self {
            Refusal::RateLimited(_) => "rate_limited",
            Refusal::TooManyIdentities(_) => "too_many_identities",
        }
    }

    /// Whole seconds to wait (`Retry-After`), rounded up, at least 1.
    pub fn retry_after_secs(&self) -> u64 {
        let (Refusal::RateLimited(w) | Refusal::TooManyIdentities(w)) = self;
        w.as_secs_f64().ceil().max(1.0) as u64
    }
}

pub struct Limits {
    config: LimitConfig,
    requests: Option<DefaultKeyedRateLimiter<IpAddr>>,
    identities: Mutex<Windows>,
    /// Most addresses whose identities are tracked at once.
    max_addresses: usize,
    checks: AtomicU64,
}

/// Every address's window, and when the expired ones were last dropped.
struct Windows {
    by_address: HashMap<IpAddr, Window>,
    swept: Instant,
}

/// The identities one address sent in the current minute.
struct Window {
    started: Instant,
    seen: HashSet<String>,
}

const MINUTE: Duration = Duration::from_secs(60);
const SECOND: Duration = Duration::from_secs(1);

/// Addresses tracked by the identity cap at once. When that many sent identities within
/// the last minute, a new address waits (429) rather than the table growing without end.
pub const MAX_TRACKED_ADDRESSES: usize = 100_000;

/// The key limits are counted under: an IPv4 address, or an IPv6 address's /64 prefix.
pub fn limit_key(client: IpAddr) -> IpAddr {
    match client.to_canonical() {
        IpAddr::V6(v6) => IpAddr::V6((u128::from(v6) & !u128::from(u64::MAX)).into()),
        v4 => v4,
    }
}

impl Limits {
    pub fn new(config: LimitConfig) -> Limits {
        let requests = NonZeroU32::new(config.per_second).map(|rate| {
            let burst = NonZeroU32::new(config.burst).unwrap_or(rate);
            DefaultKeyedRateLimiter::keyed(Quota::per_second(rate).allow_burst(burst))
        });
        Limits {
            config,
            requests,
            identities: Mutex::new(Windows {
                by_address: HashMap::new(),
                swept: Instant::now(),
            }),
            max_addresses: MAX_TRACKED_ADDRESSES,
            checks: AtomicU64::new(0),
        }
    }

    /// The client's address: the peer, unless the peer is a trusted proxy.
    pub fn client(&self, peer: Option<IpAddr>, headers: &HeaderMap) -> Option<IpAddr> {
        let peer = peer?;
        let forwarded = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok());
        Some(client_ip(peer, forwarded, &self.config.trusted_proxies))
    }

    /// Whether `peer` is a `--trusted-proxy`.
    pub fn is_trusted(&self, peer: IpAddr) -> bool {
        let peer = peer.to_canonical();
        self.config
            .trusted_proxies
            .iter()
            .any(|t| t.to_canonical() == peer)
    }

    /// Takes one request from the address's bucket.
    pub fn request(&self, client: IpAddr) -> Result<(), Refusal> {
        let Some(limiter) = &self.requests else {
            return Ok(());
        };
        // Forget idle addresses now and then, so the table stays small.
        if self.checks.fetch_add(1, Ordering::Relaxed) % 4096 == 4095 {
            limiter.retain_recent();
        }
        limiter.check_key(&limit_key(client)).map_err(|not_until| {
            Refusal::RateLimited(not_until.wait_time_from(DefaultClock::default().now()))
        })
    }

    /// Admits a request's identities if the address stays within its distinct identities
    /// for this minute; all or nothing.
    pub fn identities<'a>(
        &self,
        client: IpAddr,
        ids: impl Iterator<Item = &'a str>,
    ) -> Result<(), Refusal> {
        let cap = self.config.identities_per_minute as usize;
        if cap == 0 {
            return Ok(());
        }
        let now = Instant::now();
        let client = limit_key(client);
        let mut all = self.identities.lock().unwrap_or_else(|p| p.into_inner());
        // Expired windows are dropped once a minute (or when the table is full and the last
        // sweep is a second old), not on every request.
        let since = now - all.swept;
        if since >= MINUTE || (all.by_address.len() >= self.max_addresses && since >= SECOND) {
            all.by_address.retain(|_, w| now - w.started < MINUTE);
            all.swept = now;
        }
        if !all.by_address.contains_key(&client) && all.by_address.len() >= self.max_addresses {
            // Every tracked window ends within a minute.
            return Err(Refusal::TooManyIdentities(MINUTE));
        }
        let w = all.by_address.entry(client).or_insert_with(|| Window {
            started: now,
            seen: HashSet::new(),
        });
        if now - w.started >= MINUTE {
            w.started = now;
            w.seen.clear();
        }
        let new: HashSet<&str> = ids.filter(|id| !w.seen.contains(*id)).collect();
        if w.seen.len() + new.len() > cap {
            return Err(Refusal::TooManyIdentities(MINUTE - (now - w.started)));
        }
        w.seen.extend(new.into_iter().map(str::to_owned));
        Ok(())
    }
}

/// The client of a request: walking `X-Forwarded-For` from the right (the entries the
/// nearest proxies added), the first address that is not a trusted proxy. Only when the
/// peer itself is trusted; a malformed entry (a hop with a port included) stops the walk
/// at the last trusted hop. Addresses are canonical: an IPv4-mapped IPv6 address (as a
/// dual-stack socket reports IPv4 peers) is its IPv4 address.
pub fn client_ip<'a>(
    peer: IpAddr,
    forwarded: impl Iterator<Item = &'a str>,
    trusted: &[IpAddr],
) -> IpAddr {
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|t| t.to_canonical() == *ip);
    let peer = peer.to_canonical();
    if !is_trusted(&peer) {
        return peer;
    }
    let hops: Vec<&str> = forwarded.flat_map(|v| v.split(',')).collect();
    let mut client = peer;
    for hop in hops.iter().rev() {
        match hop.trim().parse::<IpAddr>() {
            Ok(ip) => {
                client = ip.to_canonical();
                if !is_trusted(&client) {
                    break;
                }
            }
            Err(_) => break,
        }
    }
    client
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn forwarded_for_only_from_trusted_proxies() {
        let proxy = [ip("10.0.0.1")];
        let xff = |v: &'static str| std::iter::once(v);
        // An untrusted peer's header is ignored.
        assert_eq!(
            client_ip(ip("203.0.113.9"), xff("1.2.3.4"), &proxy),
            ip("203.0.113.9")
        );
        // A trusted proxy's last hop is the client; spoofed entries to its left are not.
        assert_eq!(
            client_ip(ip("10.0.0.1"), xff("6.6.6.6, 1.2.3.4"), &proxy),
            ip("1.2.3.4")
        );
        // Chained trusted proxies are skipped.
        let two = [ip("10.0.0.1"), ip("10.0.0.2")];
        assert_eq!(
            client_ip(ip("10.0.0.1"), xff("1.2.3.4, 10.0.0.2"), &two),
            ip("1.2.3.4")
        );
        // Garbage or no header: the peer (or the last trusted hop).
        assert_eq!(
            client_ip(ip("10.0.0.1"), xff("not-an-ip"), &proxy),
            ip("10.0.0.1")
        );
        assert_eq!(
            client_ip(ip("10.0.0.1"), std::iter::empty(), &proxy),
            ip("10.0.0.1")
        );
        assert_eq!(client_ip(ip("10.0.0.1"), xff(" ::1 "), &proxy), ip("::1"));
        // A hop with a port is malformed: the walk stops at the last trusted hop.
        assert_eq!(
            client_ip(ip("10.0.0.1"), xff("1.2.3.4:5678"), &proxy),
            ip("10.0.0.1")
        );
    }

    #[test]
    fn ipv4_mapped_addresses_are_their_ipv4_address() {
        let xff = |v: &'static str| std::iter::once(v);
        // A dual-stack listener reports an IPv4 proxy as ::ffff:a.b.c.d.
        assert_eq!(
            client_ip(ip("::ffff:10.0.0.1"), xff("1.2.3.4"), &[ip("10.0.0.1")]),
            ip("1.2.3.4")
        );
        // A proxy configured mapped is trusted as its IPv4 address too.
        assert_eq!(
            client_ip(ip("10.0.0.1"), xff("1.2.3.4"), &[ip("::ffff:10.0.0.1")]),
            ip("1.2.3.4")
        );
        // Mapped hops are walked through and name the same client as unmapped ones.
        let two = [ip("10.0.0.1"), ip("10.0.0.2")];
        assert_eq!(
            client_ip(ip("10.0.0.1"), xff("::ffff:1.2.3.4, ::ffff:10.0.0.2"), &two),
            ip("1.2.3.4")
        );
        // An untrusted mapped peer shares its IPv4 address's limits.
        assert_eq!(
            client_ip(ip("::ffff:203.0.113.9"), xff("1.2.3.4"), &two),
            ip("203.0.113.9")
        );
    }

    #[test]
    fn identity_cap_counts_distinct_identities() {
        let l = Limits::new(LimitConfig {
            identities_per_minute: 3,
            ..LimitConfig::default()
        });
        let a = ip("1.1.1.1");
        assert!(l.identities(a, ["x", "y"].into_iter()).is_ok());
        // Repeats are free.
        assert!(l.identities(a, ["x", "y", "x"].into_iter()).is_ok());
        assert!(l.identities(a, ["z"].into_iter()).is_ok());
        assert!(matches!(
            l.identities(a, ["w"].into_iter()),
            Err(Refusal::TooManyIdentities(_))
        ));
        // Another address has its own budget.
        assert!(l.identities(ip("2.2.2.2"), ["w"].into_iter()).is_ok());
    }

    #[test]
    fn token_bucket_per_address() {
        let l = Limits::new(LimitConfig {
            per_second: 1,
            burst: 2,
            ..LimitConfig::default()
        });
        let a = ip("1.1.1.1");
        assert!(l.request(a).is_ok());
        assert!(l.request(a).is_ok());
        match l.request(a) {
            Err(Refusal::RateLimited(wait)) => assert!(wait <= Duration::from_secs(1)),
            other => panic!("{other:?}"),
        }
        assert!(l.request(ip("2.2.2.2")).is_ok());
        // Off when zero.
        let off = Limits::new(LimitConfig::default());
        assert!((0..1000).all(|_| off.request(a).is_ok()));
    }

    #[test]
    fn ipv6_clients_are_limited_by_their_64_prefix() {
        let l = Limits::new(LimitConfig {
            per_second: 1,
            burst: 1,
            identities_per_minute: 1,
            ..LimitConfig::default()
        });
        assert!(l.request(ip("2001:db8:1:2::1")).is_ok());
        // Another address in the same /64 shares the bucket and the identity budget.
        assert!(l.request(ip("2001:db8:1:2:ffff::9")).is_err());
        assert!(l
            .identities(ip("2001:db8:1:2::1"), ["a"].into_iter())
            .is_ok());
        assert!(l
            .identities(ip("2001:db8:1:2::7"), ["b"].into_iter())
            .is_err());
        // The next /64 has its own; IPv4 (mapped or not) is keyed by the whole address.
        assert!(l.request(ip("2001:db8:1:3::1")).is_ok());
        assert!(l.request(ip("192.0.2.1")).is_ok());
        assert!(l.request(ip("::ffff:192.0.2.1")).is_err());
        assert!(l.request(ip("192.0.2.2")).is_ok());
    }

    #[test]
    fn the_identity_table_has_a_hard_cap() {
        let mut l = Limits::new(LimitConfig {
            identities_per_minute: 5,
            ..LimitConfig::default()
        });
        l.max_addresses = 3;
        for n in 1..=3 {
            let a = ip(&format!("192.0.2.{n}"));
            assert!(l.identities(a, ["x"].into_iter()).is_ok());
        }
        // A fourth address waits; the tracked ones go on within their budgets.
        match l.identities(ip("192.0.2.4"), ["x"].into_iter()) {
            Err(Refusal::TooManyIdentities(wait)) => assert!(wait <= MINUTE, "{wait:?}"),
            other => panic!("{other:?}"),
        }
        assert!(l.identities(ip("192.0.2.1"), ["y"].into_iter()).is_ok());
        let table = l.identities.lock().unwrap();
        assert_eq!(table.by_address.len(), 3);
    }

    #[test]
    fn refusals_have_codes_and_messages() {
        let r = Refusal::RateLimited(Duration::from_millis(1500));
        assert_eq!(r.code(), "rate_limited");
        assert_eq!(r.retry_after_secs(), 2);
        assert_eq!(
            r.to_string(),
            "too many requests from this address; retry after 2 s"
        );
        assert_eq!(Refusal::RateLimited(Duration::ZERO).retry_after_secs(), 1);
        let r = Refusal::TooManyIdentities(MINUTE);
        assert_eq!(r.code(), "too_many_identities");
        assert!(r.to_string().contains("new identities"), "{r}");
    }
}
