//! UTC time as the wire format writes it: ISO 8601 with milliseconds, and the `YYYY-MM`
//! month that Twilio bills by. Pure, so it is tested natively.

use alloc::string::String;

/// Milliseconds since the Unix epoch, as `Date.now()` gives them.
pub type Millis = f64;

/// 0000-01-01T00:00:00.000Z and 9999-12-31T23:59:59.999Z: the years ISO 8601 writes in four
/// digits. Anything outside (a broken clock) clamps to the epoch rather than panic.
const MIN_MS: f64 = -62_167_219_200_000.0;
const MAX_MS: f64 = 253_402_300_799_999.0;
const DAY_MS: i64 = 86_400_000;

/// A UTC time split into fields.
struct Parts {
    year: u32,
    month: u32,
    day: u32,
    ms_of_day: u32,
}

/// Days since 1970-01-01 as (year, month, day) in the proleptic Gregorian calendar
/// (H. Hinnant's `civil_from_days`: a few lines instead of a date crate in the wasm).
fn civil(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

fn parts(ms: Millis) -> Parts {
    let ms = if (MIN_MS..=MAX_MS).contains(&ms) {
        // `f64::floor` is std-only; `as` truncates towards zero.
        let t = ms as i64;
        t - i64::from((t as f64) > ms)
    } else {
        0
    };
    let (year, month, day) = civil(ms.div_euclid(DAY_MS));
    Parts {
        year: year as u32,
        month,
        day,
        ms_of_day: ms.rem_euclid(DAY_MS) as u32,
    }
}

/// `value` in exactly `width` decimal digits (it never has more here).
fn push_padded(out: &mut String, value: u32, width: u32) {
    let mut div = 10u32.pow(width - 1);
    while div > 0 {
        out.push(char::from(b'0' + (value / div % 10) as u8));
        div /= 10;
    }
}

/// The UTC calendar month, `YYYY-MM`: the bucket Twilio counts a user in.
pub fn utc_month(ms: Millis) -> String {
    let t = parts(ms);
    let mut s = String::with_capacity(24);
    push_padded(&mut s, t.year, 4);
    s.push('-');
    push_padded(&mut s, t.month, 2);
    s
}

/// The first instant of the UTC month after the one `ms` is in: 32 days past this
/// month's first is inside the next one, whose first is then a subtraction away.
pub fn next_month_start(ms: Millis) -> Millis {
    month_start(month_start(ms) + 32.0 * DAY_MS as f64)
}

/// The first instant of the UTC month `ms` is in.
pub fn month_start(ms: Millis) -> Millis {
    let t = parts(ms);
    ms - f64::from(t.day - 1) * DAY_MS as f64 - f64::from(t.ms_of_day)
}

/// Reads back what [`iso8601`] writes (`2026-11-24T20:08:52.123Z`, nothing else).
pub fn parse_iso8601(text: &str) -> Option<Millis> {
    let n = |from: usize, to: usize| text.get(from..to)?.parse::<i64>().ok();
    if text.len() != 24 || !text.ends_with('Z') {
        return None;
    }
    let (year, month, day) = (n(0, 4)?, n(5, 7)?, n(8, 10)?);
    // Days since 1970-01-01 (H. Hinnant's `days_from_civil`).
    let y = if month <= 2 { year - 1 } else { year };
    let doy = (153 * (month + if month > 2 { -3 } else { 9 }) + 2) / 5 + day - 1;
    let doe = y.rem_euclid(400) * 365 + y.rem_euclid(400) / 4 - y.rem_euclid(400) / 100 + doy;
    let days = y.div_euclid(400) * 146_097 + doe - 719_468;
    let ms = ((n(11, 13)? * 60 + n(14, 16)?) * 60 + n(17, 19)?) * 1_000 + n(20, 23)?;
    Some((days * DAY_MS + ms) as Millis)
}

/// `ms` in whole milliseconds as decimal text (a month mark, a claim's expiry). By hand:
/// integer formatting through `core::fmt` would add kilobytes to the wasm.
pub fn ms_text(ms: Millis) -> String {
    let n = ms as u64;
    let mut s = String::new();
    let mut div = 1u64;
    while n / div >= 10 {
        div *= 10;
    }
    while div > 0 {
        s.push(char::from(b'0' + (n / div % 10) as u8));
        div /= 10;
    }
    s
}

/// Reads [`ms_text`] back; `None` for anything else (0.1.0's mark `"1"` reads as 1).
pub fn parse_ms(text: &str) -> Option<Millis> {
    text.parse::<u64>().ok().map(|n| n as Millis)
}

/// `2026-11-24T20:08:52.123Z`. Out-of-range inputs clamp to the epoch rather than panic.
pub fn iso8601(ms: Millis) -> String {
    let t = parts(ms);
    let mut s = utc_month(ms);
    let d = t.ms_of_day;
    let rest = [
        ('-', t.day, 2),
        ('T', d / 3_600_000, 2),
        (':', d / 60_000 % 60, 2),
        (':', d / 1_000 % 60, 2),
        ('.', d % 1_000, 3),
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
    fn the_next_month_starts_at_utc_midnight_on_the_first() {
        let nov_24 = 1_795_550_932_123.0;
        let dec_1 = 1_796_083_200_000.0;
        assert_eq!(next_month_start(nov_24), dec_1);
        assert_eq!(next_month_start(dec_1 - 1.0), dec_1);
        assert_eq!(month_start(dec_1 + 86_400_000.0 * 3.5), dec_1);
        assert_eq!(
            next_month_start(dec_1),
            1_798_761_600_000.0,
            "and the year turns"
        );
        // Leap February (from its first), and January 31st.
        assert_eq!(
            iso8601(next_month_start(1_706_745_600_000.0)),
            "2024-03-01T00:00:00.000Z"
        );
        assert_eq!(
            iso8601(next_month_start(1_706_659_200_000.0)),
            "2024-02-01T00:00:00.000Z"
        );
    }

    #[test]
    fn iso_text_reads_back() {
        for ms in [
            0.0,
            1_795_550_932_123.0,
            1_709_164_800_000.0,
            951_782_400_000.0,
            -1.0,
        ] {
            assert_eq!(parse_iso8601(&iso8601(ms)), Some(ms), "{}", iso8601(ms));
        }
        assert_eq!(parse_iso8601("2026-11-24T20:08:52Z"), None);
        assert_eq!(parse_iso8601("garbage"), None);
    }

    #[test]
    fn whole_milliseconds_as_text_and_back() {
        assert_eq!(ms_text(1_795_550_932_123.9), "1795550932123");
        assert_eq!(ms_text(0.0), "0");
        assert_eq!(ms_text(10.0), "10");
        assert_eq!(parse_ms("1795550932123"), Some(1_795_550_932_123.0));
        assert_eq!(parse_ms("1"), Some(1.0));
        assert_eq!(parse_ms("x"), None);
    }

    #[test]
    fn absurd_clocks_do_not_panic() {
        assert_eq!(utc_month(f64::NAN), "1970-01");
        assert_eq!(utc_month(1e30), "1970-01");
        assert_eq!(utc_month(-1e30), "1970-01");
        assert_eq!(iso8601(MAX_MS), "9999-12-31T23:59:59.999Z");
        assert_eq!(iso8601(MIN_MS), "0000-01-01T00:00:00.000Z");
        assert_eq!(iso8601(-1.0), "1969-12-31T23:59:59.999Z");
    }

    /// Every day from 1900 to 2100 against a plain day-by-day count.
    #[test]
    fn calendar_matches_a_day_count() {
        let leap = |y: i64| (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
        let mut days = -25_567; // 1900-01-01
        for year in 1900..2100 {
            for month in 1..=12u32 {
                let len = match month {
                    2 if leap(year) => 29,
                    2 => 28,
                    4 | 6 | 9 | 11 => 30,
                    _ => 31,
                };
                for day in 1..=len {
                    assert_eq!(civil(days), (year, month, day));
                    days += 1;
                }
            }
        }
    }
}
