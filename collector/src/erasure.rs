//! Erasure on request: the erasure log and the erasure itself, shared by the CLI
//! (`forget`) and the HTTP door (`DELETE /v1/subjects/...`).
//!
//! The log records each erasure without the subject in clear: a keyed hash (HMAC-SHA256
//! of the kind and the subject) and the time, one line each, appended to a file outside
//! the database (a restore replaces the database, not the log). A line is written with one
//! `O_APPEND` write and synced before the erasure runs, so an erasure that was answered is
//! always logged, and several processes may append to one file. `forget --reapply` hashes
//! the store's subjects and erases those whose hash is logged.

use crate::store::{Erased, StoreError, SubjectKind};
use crate::wire::format_time;
use hmac::{KeyInit, Mac};
use std::collections::HashSet;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use time::OffsetDateTime;

/// Shortest erasure key accepted, as for the other secrets.
pub const MIN_KEY_BYTES: usize = 16;
/// Longest subject taken for erasure (identities are at most 256 bytes on the wire).
pub const MAX_SUBJECT_BYTES: usize = 1024;

#[derive(Debug, thiserror::Error)]
pub enum ErasureError {
    #[error(
        "no erasure key: set MAU_COLLECTOR_ERASURE_KEY (or --erasure-key), at least \
         {MIN_KEY_BYTES} bytes, and keep it: the erasure log is keyed with it"
    )]
    NoKey,
    #[error(
        "the erasure key is {0} bytes; at least {MIN_KEY_BYTES} are needed (make one with \
         `openssl rand -hex 32`)"
    )]
    ShortKey(usize),
    #[error(
        "no erasure log: a PostgreSQL store needs --erasure-log PATH (env \
         MAU_COLLECTOR_ERASURE_LOG), a file outside the database"
    )]
    NoLogPath,
    #[error("the erasure log {path}: {source}")]
    Log { path: String, source: io::Error },
    #[error("the subject is empty or over {MAX_SUBJECT_BYTES} bytes")]
    BadSubject,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The key the log's hashes are made with. Never printed.
#[derive(Clone)]
pub struct ErasureKey(Vec<u8>);

impl std::fmt::Debug for ErasureKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ErasureKey(..)")
    }
}

impl ErasureKey {
    pub fn new(key: Option<&str>) -> Result<ErasureKey, ErasureError> {
        let key = key.ok_or(ErasureError::NoKey)?;
        if key.len() < MIN_KEY_BYTES {
            return Err(ErasureError::ShortKey(key.len()));
        }
        Ok(ErasureKey(key.as_bytes().to_vec()))
    }

    /// HMAC-SHA256 over `kind`, a newline and the subject, in lower-case hex.
    pub fn hash(&self, kind: SubjectKind, subject: &str) -> String {
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(&self.0)
            .expect("HMAC takes a key of any length");
        mac.update(kind.as_str().as_bytes());
        mac.update(b"\n");
        mac.update(subject.as_bytes());
        crate::twilio::signature::hex(&mac.finalize().into_bytes())
    }
}

/// The erasure log's path: the one given, else beside a SQLite file (`<file>.erasures`).
pub fn log_path(given: Option<&Path>, db: &crate::store::Db) -> Result<PathBuf, ErasureError> {
    match (given, db) {
        (Some(p), _) => Ok(p.to_owned()),
        (None, crate::store::Db::Sqlite(file)) => {
            let mut name = file.file_name().unwrap_or_default().to_owned();
            name.push(".erasures");
            Ok(file.with_file_name(name))
        }
        (None, crate::store::Db::Postgres(_)) => Err(ErasureError::NoLogPath),
    }
}

/// Checks a subject before it is hashed or looked for (the text never goes in an error).
pub fn check_subject(subject: &str) -> Result<(), ErasureError> {
    if subject.is_empty() || subject.len() > MAX_SUBJECT_BYTES {
        return Err(ErasureError::BadSubject);
    }
    Ok(())
}

/// The log file and the hashes read from it so far.
pub struct ErasureLog {
    path: PathBuf,
    key: ErasureKey,
    known: Mutex<Known>,
}

#[derive(Default)]
struct Known {
    hashes: HashSet<String>,
    /// Bytes of the file read (up to the last whole line).
    read: u64,
}

impl std::fmt::Debug for ErasureLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ErasureLog({})", self.path.display())
    }
}

impl ErasureLog {
    /// Opens (creating if missing) the log and reads the hashes it holds.
    pub fn open(path: PathBuf, key: ErasureKey) -> Result<ErasureLog, ErasureError> {
        let log = ErasureLog {
            path,
            key,
            known: Mutex::new(Known::default()),
        };
        log.append_handle().map_err(|e| log.error(e))?;
        log.refresh().map_err(|e| log.error(e))?;
        Ok(log)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn key(&self) -> &ErasureKey {
        &self.key
    }

    fn error(&self, source: io::Error) -> ErasureError {
        ErasureError::Log {
            path: self.path.display().to_string(),
            source,
        }
    }

    fn append_handle(&self) -> io::Result<File> {
        OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
    }

    /// Appends `<time> <hash>` in one write and syncs it; the hash is known at once.
    pub fn record(&self, kind: SubjectKind, subject: &str) -> Result<String, ErasureError> {
        let hash = self.key.hash(kind, subject);
        let line = format!("{} {hash}\n", format_time(OffsetDateTime::now_utc()));
        let write = || -> io::Result<()> {
            let mut f = self.append_handle()?;
            // One write of a short line: with O_APPEND, lines of several processes never
            // interleave.
            f.write_all(line.as_bytes())?;
            f.sync_data()
        };
        write().map_err(|e| self.error(e))?;
        self.lock().hashes.insert(hash.clone());
        Ok(hash)
    }

    /// Which of `subjects` are in the log, rereading the file first if it grew (another
    /// process may have erased since): one `stat` per call, however many subjects.
    pub fn logged<'a>(&self, subjects: impl Iterator<Item = (SubjectKind, &'a str)>) -> Vec<bool> {
        if let Err(e) = self.refresh() {
            tracing::warn!(path = %self.path.display(), error = %e, "erasure log not reread");
        }
        let known = self.lock();
        subjects
            .map(|(kind, subject)| known.hashes.contains(&self.key.hash(kind, subject)))
            .collect()
    }

    /// Whether one subject is in the log.
    #[cfg(test)]
    fn contains(&self, kind: SubjectKind, subject: &str) -> bool {
        self.logged(std::iter::once((kind, subject)))[0]
    }

    /// Every hash logged (after rereading the file).
    pub fn hashes(&self) -> Result<HashSet<String>, ErasureError> {
        self.refresh().map_err(|e| self.error(e))?;
        Ok(self.lock().hashes.clone())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Known> {
        self.known.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Reads what was appended since the last read (everything, if the file shrank).
    fn refresh(&self) -> io::Result<()> {
        let size = std::fs::metadata(&self.path)?.len();
        let mut known = self.lock();
        if size == known.read {
            return Ok(());
        }
        if size < known.read {
            *known = Known::default();
        }
        let mut f = File::open(&self.path)?;
        f.seek(SeekFrom::Start(known.read))?;
        let mut buf = Vec::new();
        f.take(size - known.read).read_to_end(&mut buf)?;
        // Only whole lines: a line being written is read next time.
        let Some(end) = buf.iter().rposition(|&b| b == b'\n') else {
            return Ok(());
        };
        for line in String::from_utf8_lossy(&buf[..=end]).lines() {
            if let Some(hash) = line.split_whitespace().nth(1) {
                known.hashes.insert(hash.to_owned());
            }
        }
        known.read += end as u64 + 1;
        Ok(())
    }
}

/// Logs the subject (synced), then erases it from every table of the store.
pub async fn erase(
    log: &ErasureLog,
    store: &crate::store::Store,
    kind: SubjectKind,
    subject: &str,
) -> Result<Erased, ErasureError> {
    check_subject(subject)?;
    log.record(kind, subject)?;
    let erased = store.forget(kind, subject).await?;
    crate::metrics::get().erasures.inc();
    Ok(erased)
}

/// The answer to one erasure (HTTP and CLI): rows removed per table, and the months.
pub fn answer(kind: SubjectKind, erased: &Erased) -> serde_json::Value {
    serde_json::json!({
        "ok": true,
        "kind": kind,
        "erased": {
            "events": erased.events,
            "identities": erased.identities,
            "tokens": erased.tokens,
            "sightings": erased.sightings,
            "contexts": erased.contexts,
        },
        "months": erased.months,
    })
}

/// What `forget --reapply` did.
#[derive(Debug, Default, serde::Serialize)]
pub struct Reapplied {
    /// Subjects in the store whose hash is logged, erased again.
    pub subjects: u64,
    /// Rows removed, per table, in all.
    pub rows: Erased,
    /// Subjects in the store looked at.
    pub looked_at: u64,
}

/// Erases again every subject of the store whose hash is in the log (after a restore).
pub async fn reapply(
    log: &ErasureLog,
    store: &crate::store::Store,
) -> Result<Reapplied, ErasureError> {
    let logged = log.hashes()?;
    let mut out = Reapplied::default();
    for (kind, subject) in store.subjects().await? {
        out.looked_at += 1;
        if logged.contains(&log.key().hash(kind, &subject)) {
            let erased = store.forget(kind, &subject).await?;
            out.subjects += 1;
            out.rows.add(&erased);
            for m in erased.months {
                if !out.rows.months.contains(&m) {
                    out.rows.months.push(m);
                }
            }
        }
    }
    out.rows.months.sort();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> ErasureKey {
        ErasureKey::new(Some("0123456789abcdef-test")).unwrap()
    }

    #[test]
    fn keys_and_hashes() {
        assert!(matches!(ErasureKey::new(None), Err(ErasureError::NoKey)));
        assert!(matches!(
            ErasureKey::new(Some("short")),
            Err(ErasureError::ShortKey(5))
        ));
        let k = key();
        let h = k.hash(SubjectKind::Identity, "alice");
        assert_eq!(h.len(), 64);
        assert_eq!(h, k.hash(SubjectKind::Identity, "alice"));
        assert_ne!(h, k.hash(SubjectKind::Address, "alice"));
        let other = ErasureKey::new(Some("another-key-of-16+")).unwrap();
        assert_ne!(h, other.hash(SubjectKind::Identity, "alice"));
        assert!(!format!("{k:?}").contains("0123"));
    }

    #[test]
    fn the_log_is_appended_and_reread_by_others() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        let a = ErasureLog::open(path.clone(), key()).unwrap();
        let b = ErasureLog::open(path.clone(), key()).unwrap();
        assert!(!b.contains(SubjectKind::Identity, "alice"));
        a.record(SubjectKind::Identity, "alice").unwrap();
        assert!(a.contains(SubjectKind::Identity, "alice"));
        // The other handle sees the file grow.
        assert!(b.contains(SubjectKind::Identity, "alice"));
        assert!(!b.contains(SubjectKind::Address, "alice"));
        // A half-written line is not read until it is whole.
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        let h = key().hash(SubjectKind::Address, "+15550001");
        f.write_all(format!("2026-12-01T00:00:00.000Z {}", &h[..10]).as_bytes())
            .unwrap();
        assert!(!b.contains(SubjectKind::Address, "+15550001"));
        f.write_all(format!("{}\n", &h[10..]).as_bytes()).unwrap();
        assert!(b.contains(SubjectKind::Address, "+15550001"));
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(!text.contains("alice"), "{text}");
        assert_eq!(text.lines().count(), 2);
        assert_eq!(b.hashes().unwrap().len(), 2);
    }

    #[test]
    fn default_path_beside_sqlite_and_required_for_postgres() {
        let db: crate::store::Db = "data/mau.db".parse().unwrap();
        assert_eq!(
            log_path(None, &db).unwrap(),
            PathBuf::from("data/mau.db.erasures")
        );
        let pg: crate::store::Db = "postgres://u@h/d".parse().unwrap();
        assert!(matches!(log_path(None, &pg), Err(ErasureError::NoLogPath)));
        assert_eq!(
            log_path(Some(Path::new("x.log")), &pg).unwrap(),
            PathBuf::from("x.log")
        );
    }
}
