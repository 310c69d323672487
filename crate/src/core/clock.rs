//! UTC time as the wire format writes it: ISO 8601 with milliseconds, and the `YYYY-MM`
//! month that Twilio bills by. Pure, so it is tested natively.

use time::OffsetDateTime;

/// Milliseconds since the Unix epoch, as `Date.now()` gives them.
pub type Millis = f64;

/// The time and its milliseconds; out-of-range inputs clamp to the epoch.
fn to_datetime(ms: Millis) -> (OffsetDateTime, u32) {
    let ms = if ms.is_finite() { ms.floor() as i64 } else { 0 };
    match OffsetDateTime::from_unix_timestamp(ms.div_euclid(1000)) {
        Ok(t) => (t, ms.rem_euclid(1000) as u32),
        Err(_) => (OffsetDateTime::UNIX_EPOCH, 0),
    }
}

fn push_padded(out: &mut String, value: u32, width: usize) {
    let digits = value.to_string();
    for _ in digits.len()..width {
        out.push('0');
    }
    out.push_str(&digits);
}

/// The UTC calendar month, `YYYY-MM`: the bucket Twilio counts a user in.
pub fn utc_month(ms: Millis) -> String {
    let (t, _) = to_datetime(ms);
    let mut s = String::with_capacity(24);
    push_padded(&mut s, t.year().max(0) as u32, 4);
    s.push('-');
    push_padded(&mut s, u8::from(t.month()) as u32, 2);
    s
}

/// `2026-11-24T20:08:52.123Z`. Out-of-range inputs clamp to the epoch rather than panic.
pub fn iso8601(ms: Millis) -> String {
    let (t, millis) = to_datetime(ms);
    let mut s = utc_month(ms);
    let rest = [
        ('-', t.day() as u32, 2),
        ('T', t.hour() as u32, 2),
        (':', t.minute() as u32, 2),
        (':', t.second() as u32, 2),
        ('.', millis, 3),
    ];
    for (separator, value, width) in rest {
        s.push(separator);
        push_padded(&mut s, value, width);
    }
    s.push('Z');
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_iso_with_millis() {
        assert_eq!(iso8601(0.0), "1970-01-01T00:00:00.000Z");
        // 2026-11-24T20:08:52.123Z
        assert_eq!(iso8601(1_795_550_932_123.0), "2026-11-24T20:08:52.123Z");
        // Fractions of a millisecond are cut, not rounded up into the next second.
        assert_eq!(iso8601(1_795_550_932_999.9), "2026-11-24T20:08:52.999Z");
    }

    #[test]
    fn month_boundaries_are_utc() {
        // 2026-11-30T23:59:59.999Z is still November; one ms later is December.
        let last = 1_796_083_199_999.0;
        assert_eq!(iso8601(last), "2026-11-30T23:59:59.999Z");
        assert_eq!(utc_month(last), "2026-11");
        assert_eq!(utc_month(last + 1.0), "2026-12");
        // New year.
        assert_eq!(utc_month(1_798_761_600_000.0), "2027-01");
        assert_eq!(utc_month(1_798_761_599_999.0), "2026-12");
        // Leap day.
        assert_eq!(iso8601(1_709_164_800_000.0), "2024-02-29T00:00:00.000Z");
    }

    #[test]
    fn absurd_clocks_do_not_panic() {
        assert_eq!(utc_month(f64::NAN), "1970-01");
        assert_eq!(utc_month(1e30), "1970-01");
        assert_eq!(utc_month(-1e30), "1970-01");
    }
}
