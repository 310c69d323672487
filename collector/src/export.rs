//! Export of a month's MAU subjects (JSON array, NDJSON or CSV) and the reconciliation report.
//!
//! Rows arrive in bounded batches from the store and are encoded batch by batch, so the
//! CLI (stdout) and the HTTP endpoint (a chunked body) share the code and never hold a
//! whole month.

use crate::month::Month;
use crate::pricing::Pricing;
use crate::reconcile::{self, Billed, Report, UsageRow};
use crate::store::{IdentityRow, Store, StoreError};
use std::io::{self, Write};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// A JSON array of {identity, subject_kind, sources, first_seen, last_seen, connects}.
    Json,
    /// One such JSON object per line.
    Ndjson,
    /// CSV with a header row; cells a spreadsheet would run as formulas get a leading `'`.
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
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("write: {0}")]
    Io(#[from] io::Error),
    #[error("csv: {0}")]
    Csv(#[from] csv::Error),
    #[error("json: {0}")]
    Json(#[from] serde_json::Error),
}

/// A CSV cell a spreadsheet would run as a formula (it begins with `=`, `+`, `-`, `@`, tab
/// or CR) gets a leading apostrophe, which makes it text (OWASP's CSV injection rule); the
/// CSV writer quotes it as RFC 4180 needs. `None` when the cell is safe as it is.
pub fn spreadsheet_safe(cell: &str) -> Option<String> {
    cell.starts_with(['=', '+', '-', '@', '\t', '\r'])
        .then(|| format!("'{cell}"))
}

/// Turns batches of rows into bytes of one format: `start`, then `rows` per batch, then
/// `finish`. Pure, so the CLI and the HTTP body share it and it is tested alone.
pub struct Encoder {
    format: Format,
    rows: u64,
}

impl Encoder {
    pub fn new(format: Format) -> Encoder {
        Encoder { format, rows: 0 }
    }

    /// Rows encoded so far.
    pub fn count(&self) -> u64 {
        self.rows
    }

    /// What comes before the first row (an empty month still gets its CSV header).
    pub fn start(&self) -> Vec<u8> {
        match self.format {
            Format::Csv => {
                b"identity,subject_kind,sources,first_seen,last_seen,connects\n".to_vec()
            }
            Format::Json => b"[".to_vec(),
            Format::Ndjson => Vec::new(),
        }
    }

    pub fn rows(&mut self, batch: &[IdentityRow]) -> Result<Vec<u8>, ExportError> {
        let mut out = Vec::with_capacity(batch.len() * 96);
        match self.format {
            Format::Csv => {
                let mut w = csv::WriterBuilder::new()
                    .has_headers(false)
                    .from_writer(&mut out);
                for r in batch {
                    match spreadsheet_safe(&r.identity) {
                        None => w.serialize(r)?,
                        Some(identity) => w.serialize(IdentityRow {
                            identity,
                            ..r.clone()
                        })?,
                    }
                }
                w.flush()?;
            }
            Format::Json => {
                for (i, r) in batch.iter().enumerate() {
                    let first = self.rows == 0 && i == 0;
                    out.extend_from_slice(if first { b"\n" } else { b",\n" });
                    serde_json::to_writer(&mut out, r)?;
                }
            }
            Format::Ndjson => {
                for r in batch {
                    serde_json::to_writer(&mut out, r)?;
                    out.push(b'\n');
                }
            }
        }
        self.rows += batch.len() as u64;
        Ok(out)
    }

    pub fn finish(&self) -> Vec<u8> {
        match (self.format, self.rows) {
            (Format::Json, 0) => b"]\n".to_vec(),
            (Format::Json, _) => b"\n]\n".to_vec(),
            _ => Vec::new(),
        }
    }
}

/// Writes every identity of `month` to `out` (the CLI); returns how many.
pub async fn write_identities<W: Write>(
    store: &Store,
    month: Month,
    format: Format,
    mut out: W,
) -> Result<u64, ExportError> {
    let mut rows = store.identities(month).await?;
    let mut enc = Encoder::new(format);
    out.write_all(&enc.start())?;
    while let Some(batch) = rows.next().await {
        out.write_all(&enc.rows(&batch?)?)?;
    }
    out.write_all(&enc.finish())?;
    out.flush()?;
    Ok(enc.count())
}

/// The month's reconciliation report, read from the store, with its savings and (the
/// current month only) its forecast.
pub async fn report(
    store: &Store,
    month: Month,
    billed: Option<Billed>,
    usage_records: Vec<UsageRow>,
    pricing: &Pricing,
) -> Result<Report, StoreError> {
    let activity = store.activity(month).await?;
    let contexts = store.contexts(month).await?;
    let tokens = store.tokens(month).await?;
    let erased = store.erased(month).await?;
    let report = reconcile::build(
        &month.to_string(),
        &activity,
        &tokens,
        billed,
        usage_records,
    )
    .with_erased(erased.max(0) as u64)
    .with_savings(&contexts, &activity, pricing);
    crate::forecast::attach(store, report, pricing).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(identity: &str) -> IdentityRow {
        IdentityRow {
            identity: identity.into(),
            subject_kind: "identity".into(),
            sources: "sdk_connect;webhook:onMessageAdded".into(),
            first_seen: "2026-11-01T00:00:01.000Z".into(),
            last_seen: "2026-11-02T00:00:01.000Z".into(),
            connects: 2,
        }
    }

    fn encode(format: Format, batches: &[Vec<IdentityRow>]) -> String {
        let mut enc = Encoder::new(format);
        let mut out = enc.start();
        for b in batches {
            out.extend(enc.rows(b).unwrap());
        }
        out.extend(enc.finish());
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn csv_cells_that_would_be_formulas_are_text() {
        let rows = vec![
            row("=HYPERLINK(\"http://x\",\"y\")"),
            row("+14155550100"),
            row("-1+1"),
            row("@SUM(A1)"),
            row("a=b"),
        ];
        let csv = encode(Format::Csv, std::slice::from_ref(&rows));
        let lines: Vec<&str> = csv
            .lines()
            .skip(1)
            .map(|l| l.split(',').next().unwrap())
            .collect();
        assert_eq!(
            lines,
            [
                "\"'=HYPERLINK(\"\"http://x\"\"",
                "'+14155550100",
                "'-1+1",
                "'@SUM(A1)",
                "a=b"
            ]
        );
        // A CSV reader gets the apostrophe and the rest intact.
        let mut r = csv::Reader::from_reader(csv.as_bytes());
        let first: Vec<String> = r.records().map(|x| x.unwrap()[0].to_owned()).collect();
        assert_eq!(first[0], "'=HYPERLINK(\"http://x\",\"y\")");
        assert_eq!(spreadsheet_safe("\tx").as_deref(), Some("'\tx"));
        assert_eq!(spreadsheet_safe("\rx").as_deref(), Some("'\rx"));
        // JSON and NDJSON keep identities exactly.
        let json = encode(Format::Ndjson, &[rows]);
        assert!(json.starts_with("{\"identity\":\"=HYPERLINK"), "{json}");
    }

    #[test]
    fn batches_join_into_one_document() {
        let batches = [vec![row("a"), row("b, \"c\"")], vec![], vec![row("d")]];
        let json = encode(Format::Json, &batches);
        let v: Vec<IdentityRow> = serde_json::from_str::<Vec<serde_json::Value>>(&json)
            .unwrap()
            .into_iter()
            .map(|v| row(v["identity"].as_str().unwrap()))
            .collect();
        assert_eq!(v.len(), 3, "{json}");
        assert_eq!(encode(Format::Json, &[]), "[]\n");
        let csv = encode(Format::Csv, &batches);
        assert_eq!(csv.lines().count(), 4, "{csv}");
        assert!(csv.contains("\"b, \"\"c\"\"\""), "{csv}");
        assert_eq!(
            encode(Format::Csv, &[]),
            "identity,subject_kind,sources,first_seen,last_seen,connects\n"
        );
        assert_eq!(encode(Format::Ndjson, &batches).lines().count(), 3);
        assert_eq!(encode(Format::Ndjson, &[]), "");
    }

    #[test]
    fn format_names() {
        assert_eq!(Format::parse("CSV"), Some(Format::Csv));
        assert_eq!(Format::parse("ndjson"), Some(Format::Ndjson));
        assert_eq!(Format::parse("xml"), None);
    }
}
