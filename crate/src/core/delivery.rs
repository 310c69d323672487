//! When to try a beacon again, and whether a response means delivered, retry or drop.
//! Pure: the browser side only feeds it statuses, headers and random numbers.

use alloc::string::String;

use crate::core::clock::Millis;

/// Exponential backoff with jitter. Never gives up: an audit beacon is retried until a
/// 2xx or a definitive 4xx.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Backoff {
    /// Delay before the first retry.
    pub base_ms: f64,
    /// Upper bound of the exponential part.
    pub max_ms: f64,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            base_ms: 1_000.0,
            max_ms: 60_000.0,
        }
    }
}

/// `Retry-After` is honoured up to a day; a larger value is a misconfigured server.
const RETRY_AFTER_CAP_MS: f64 = 86_400_000.0;

impl Backoff {
    /// Delay after the `failures`-th failed attempt (1-based), with ±25 % jitter from
    /// `rand01` in [0, 1) so that many devices do not retry in lockstep.
    pub fn delay_ms(&self, failures: u32, rand01: f64) -> f64 {
        let exp = failures.saturating_sub(1).min(30);
        let raw = (self.base_ms * f64::from(1u32 << exp)).min(self.max_ms);
        let r = if rand01.is_finite() {
            rand01.clamp(0.0, 1.0)
        } else {
            0.0
        };
        let jitter = 1.0 + (r * 2.0 - 1.0) * 0.25;
        (raw * jitter).max(0.0)
    }

    /// The wait before the next attempt: the backoff, or the server's `Retry-After` when
    /// that is longer.
    pub fn next_delay_ms(&self, failures: u32, rand01: f64, retry_after_ms: Option<f64>) -> f64 {
        let backoff = self.delay_ms(failures, rand01);
        match retry_after_ms {
            Some(ra) => backoff.max(ra.min(RETRY_AFTER_CAP_MS)),
            None => backoff,
        }
    }
}

/// Why a beacon (or a connect) was given up; its name is the key in `stats().dropReasons`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropReason {
    /// The collector answered this definitive status (`http_400`, `http_413`, …).
    Http(u16),
    /// A connect whose identity never became known.
    NoIdentity,
    /// A stored value that is not a whole record.
    CorruptStore,
    /// An identity over 256 bytes, which the collector refuses.
    IdentityTooLong,
}

impl DropReason {
    /// The stats key and event text.
    pub fn name(self) -> String {
        match self {
            DropReason::Http(status) => with_status("http_", status),
            DropReason::NoIdentity => "no_identity".into(),
            DropReason::CorruptStore => "corrupt_store".into(),
            DropReason::IdentityTooLong => "identity_too_long".into(),
        }
    }
}

/// `prefix` and an HTTP status's three digits, without `core::fmt` (which the wasm
/// leaves out: docs/size.md).
pub fn with_status(prefix: &str, status: u16) -> String {
    let mut s = String::from(prefix);
    let mut div = 100;
    while div > 0 {
        s.push(char::from(b'0' + (status / div % 10) as u8));
        div /= 10;
    }
    s
}

/// What to do with a beacon after an attempt.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// A 2xx: the collector has it.
    Delivered,
    /// Network error, 408, 429 or 5xx: keep it and try again.
    Retry,
    /// Any other status: the collector will never take it; drop it and count why.
    Drop(DropReason),
}

/// The status table of `docs/wire-format.md`.
pub fn verdict(status: u16) -> Verdict {
    match status {
        200..=299 => Verdict::Delivered,
        408 | 429 | 500..=599 => Verdict::Retry,
        // 0 is an opaque answer; 1xx/3xx never reach fetch's caller in CORS mode. Keep them.
        0..=199 | 300..=399 => Verdict::Retry,
        other => Verdict::Drop(DropReason::Http(other)),
    }
}

/// `Retry-After` as milliseconds from `now`: delta-seconds, or an HTTP date read by
/// `parse_date` (the browser's `Date.parse`, which costs no wasm; `httpdate` in tests).
pub fn parse_retry_after(
    value: &str,
    now: Millis,
    parse_date: impl Fn(&str) -> Option<Millis>,
) -> Option<f64> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(secs as f64 * 1_000.0);
    }
    if !value.ends_with("GMT") {
        return None;
    }
    let when = parse_date(value).filter(|ms| ms.is_finite())?;
    Some((when - now).max(0.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_up_to_the_cap() {
        let b = Backoff::default();
        assert_eq!(b.delay_ms(1, 0.5), 1_000.0);
        assert_eq!(b.delay_ms(2, 0.5), 2_000.0);
        assert_eq!(b.delay_ms(5, 0.5), 16_000.0);
        assert_eq!(b.delay_ms(7, 0.5), 60_000.0);
        assert_eq!(b.delay_ms(1_000, 0.5), 60_000.0);
        assert_eq!(b.delay_ms(0, 0.5), 1_000.0);
    }

    #[test]
    fn jitter_stays_within_a_quarter() {
        let b = Backoff::default();
        assert_eq!(b.delay_ms(3, 0.0), 3_000.0);
        assert_eq!(b.delay_ms(3, 0.999_999_9).round(), 5_000.0);
        assert_eq!(b.delay_ms(3, f64::NAN), 4_000.0 * 0.75);
    }

    #[test]
    fn retry_after_wins_when_longer() {
        let b = Backoff::default();
        assert_eq!(b.next_delay_ms(1, 0.5, Some(30_000.0)), 30_000.0);
        assert_eq!(b.next_delay_ms(5, 0.5, Some(1_000.0)), 16_000.0);
        assert_eq!(b.next_delay_ms(1, 0.5, Some(1e12)), RETRY_AFTER_CAP_MS);
    }

    #[test]
    fn drop_reason_names() {
        assert_eq!(DropReason::Http(400).name(), "http_400");
        assert_eq!(DropReason::Http(451).name(), "http_451");
        assert_eq!(DropReason::IdentityTooLong.name(), "identity_too_long");
    }

    #[test]
    fn status_table() {
        assert_eq!(verdict(200), Verdict::Delivered);
        assert_eq!(verdict(204), Verdict::Delivered);
        for s in [408, 429, 500, 502, 503, 504, 0] {
            assert_eq!(verdict(s), Verdict::Retry, "{s}");
        }
        assert_eq!(verdict(400), Verdict::Drop(DropReason::Http(400)));
        assert_eq!(verdict(401), Verdict::Drop(DropReason::Http(401)));
        assert_eq!(verdict(413), Verdict::Drop(DropReason::Http(413)));
        assert_eq!(verdict(422), Verdict::Drop(DropReason::Http(422)));
    }

    fn http_date(s: &str) -> Option<Millis> {
        let t = httpdate::parse_http_date(s).ok()?;
        Some(t.duration_since(std::time::UNIX_EPOCH).ok()?.as_millis() as f64)
    }

    fn parse_retry_after(value: &str, now: Millis) -> Option<f64> {
        super::parse_retry_after(value, now, http_date)
    }

    #[test]
    fn parses_retry_after_forms() {
        assert_eq!(parse_retry_after("120", 0.0), Some(120_000.0));
        assert_eq!(parse_retry_after(" 0 ", 0.0), Some(0.0));
        // Sun, 06 Nov 1994 08:49:37 GMT = 784111777 s.
        let now = 784_111_777_000.0 - 5_000.0;
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", now),
            Some(5_000.0)
        );
        // A date in the past means "now".
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", now + 1e7),
            Some(0.0)
        );
        assert_eq!(parse_retry_after("soon", 0.0), None);
        assert_eq!(parse_retry_after("-3", 0.0), None);
        assert_eq!(parse_retry_after("", 0.0), None);
        assert_eq!(
            parse_retry_after("Sun, 32 Nov 1994 08:49:37 GMT", 0.0),
            None
        );
    }
}
