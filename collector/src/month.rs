//! The UTC calendar month an event counts in: the unit Twilio bills by.

use std::fmt;
use time::{OffsetDateTime, UtcOffset};

/// A UTC calendar month, `YYYY-MM`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Month {
    pub year: i32,
    pub month: u8,
}

impl Month {
    /// Parses exactly `YYYY-MM` with a month from 01 to 12.
    pub fn parse(s: &str) -> Option<Month> {
        let b = s.as_bytes();
        if b.len() != 7 || b[4] != b'-' {
            return None;
        }
        if !b[..4].iter().chain(&b[5..]).all(u8::is_ascii_digit) {
            return None;
        }
        let year: i32 = s[..4].parse().ok()?;
        let month: u8 = s[5..].parse().ok()?;
        (1..=12).contains(&month).then_some(Month { year, month })
    }

    pub fn of(t: OffsetDateTime) -> Month {
        let t = t.to_offset(UtcOffset::UTC);
        Month {
            year: t.year(),
            month: u8::from(t.month()),
        }
    }
}

impl fmt::Display for Month {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}", self.year, self.month)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn month_of_a_time_is_utc() {
        let t = datetime!(2026-12-01 00:30 +01:00);
        assert_eq!(Month::of(t).to_string(), "2026-11");
        assert_eq!(Month::parse("2026-11"), Some(Month::of(t)));
    }
}
