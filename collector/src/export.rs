//! Export of a month's identities (JSON array, NDJSON or CSV) and the billing report.
//!
//! Writers take any `io::Write` and are fed one row at a time, so the CLI (stdout) and
//! the HTTP endpoint (a chunked body) share the same code and never hold a whole month.

use crate::store::{self, IdentityRow, Summary};
use crate::wire::Month;
use rusqlite::Connection;
use std::io::{self, Write};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// A JSON array of {identity, first_seen, last_seen, connects}.
    Json,
    /// One such JSON object per line.
    Ndjson,
    /// CSV with a header row.
    Csv,
}

impl Format {
    pub fn parse(s: &str) -> Option<Format> {
        match s.to_ascii_lowercase().as_str() {
            "json" => Some(Format::Json),
            "ndjson" | "jsonl" => Some(Format::Ndjson),
            "csv" => Some(Format::Csv),
            _ => None,
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Format::Json => "application/json",
            Format::Ndjson => "application/x-ndjson",
            Format::Csv => "text/csv; charset=utf-8",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("database: {0}")]
    Sql(#[from] rusqlite::Error),
    #[error("write: {0}")]
    Io(#[from] io::Error),
    #[error("csv: {0}")]
    Csv(#[from] csv::Error),
    #[error("json: {0}")]
    Json(#[from] serde_json::Error),
}

/// Writes every identity of `month` to `out`; returns how many.
pub fn write_identities<W: Write>(
    conn: &Connection,
    month: Month,
    format: Format,
    out: W,
) -> Result<u64, ExportError> {
    match format {
        Format::Csv => {
            let mut w = csv::WriterBuilder::new()
                .has_headers(false)
                .from_writer(out);
            // Written by hand so an empty month still gets its header row.
            w.write_record(["identity", "first_seen", "last_seen", "connects"])?;
            let n = store::for_each_identity(conn, month, |r: IdentityRow| {
                w.serialize(&r).map_err(ExportError::from)
            })?;
            w.flush()?;
            Ok(n)
        }
        Format::Json => {
            let mut out = out;
            out.write_all(b"[")?;
            let mut first = true;
            let n = store::for_each_identity(conn, month, |r: IdentityRow| {
                out.write_all(if first { b"\n" } else { b",\n" })?;
                first = false;
                serde_json::to_writer(&mut out, &r).map_err(ExportError::from)
            })?;
            out.write_all(if n == 0 { b"]\n" } else { b"\n]\n" })?;
            out.flush()?;
            Ok(n)
        }
        Format::Ndjson => {
            let mut out = out;
            let n = store::for_each_identity(conn, month, |r: IdentityRow| {
                serde_json::to_writer(&mut out, &r)?;
                out.write_all(b"\n").map_err(ExportError::from)
            })?;
            out.flush()?;
            Ok(n)
        }
    }
}

/// The human report: counts, and the gap against what Twilio billed when known.
pub fn report_text(s: &Summary, billed: Option<u64>) -> String {
    let mut text = format!(
        "Month {} (UTC, by corrected event time)\n\
         Unique identities: {}\n\
         Connects: {}\n\
         First seen: {}\n\
         Last seen: {}\n",
        s.month,
        s.unique_identities,
        s.connects,
        s.first_seen.as_deref().unwrap_or("-"),
        s.last_seen.as_deref().unwrap_or("-"),
    );
    if let Some(billed) = billed {
        let seen = u64::try_from(s.unique_identities).unwrap_or(0);
        let verdict = match billed.cmp(&seen) {
            std::cmp::Ordering::Greater => {
                format!("{} not seen by the collector", billed - seen)
            }
            std::cmp::Ordering::Less => {
                format!("{} more than Twilio billed", seen - billed)
            }
            std::cmp::Ordering::Equal => "the counts match".to_owned(),
        };
        text.push_str(&format!(
            "Twilio billed {billed}, collector saw {seen} unique identities: {verdict}\n"
        ));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary(n: i64) -> Summary {
        Summary {
            month: "2026-11".into(),
            unique_identities: n,
            connects: n * 2,
            first_seen: Some("2026-11-01T00:00:01.000Z".into()),
            last_seen: Some("2026-11-30T23:59:59.000Z".into()),
        }
    }

    #[test]
    fn report_states_the_gap() {
        let t = report_text(&summary(117), Some(120));
        assert!(t.contains("Twilio billed 120, collector saw 117 unique identities: 3 not seen by the collector"), "{t}");
        assert!(report_text(&summary(5), Some(3)).contains("2 more than Twilio billed"));
        assert!(report_text(&summary(5), Some(5)).contains("the counts match"));
        assert!(!report_text(&summary(5), None).contains("Twilio"));
    }

    #[test]
    fn format_names() {
        assert_eq!(Format::parse("CSV"), Some(Format::Csv));
        assert_eq!(Format::parse("ndjson"), Some(Format::Ndjson));
        assert_eq!(Format::parse("xml"), None);
    }
}
