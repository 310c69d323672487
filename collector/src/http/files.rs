//! The optional static folder (`--static-dir`): tower-http's `ServeDir`, behind a check
//! that the file's real path (symlinks resolved) is inside the folder and is not the
//! database, so a link or a database kept in the folder never leaks.

use axum::body::Body;
use axum::extract::Request;
use axum::response::{IntoResponse, Response};
use std::path::{Component, Path, PathBuf};
use tower::ServiceExt;
use tower_http::services::ServeDir;

use crate::error::ApiError;

#[derive(Clone)]
pub struct StaticFiles {
    /// The folder, canonical.
    root: PathBuf,
    /// Files never served: the SQLite database and its journal files, and the erasure
    /// log, canonical.
    deny: Vec<PathBuf>,
    dir: ServeDir,
}

impl StaticFiles {
    pub fn new(root: &Path, db_file: Option<&Path>, erasure_log: Option<&Path>) -> StaticFiles {
        let canonical = root.canonicalize().unwrap_or_else(|_| root.to_owned());
        let deny = db_file
            .into_iter()
            .flat_map(|db| {
                ["", "-wal", "-shm", "-journal"].map(|suffix| {
                    let mut p = db.as_os_str().to_owned();
                    p.push(suffix);
                    PathBuf::from(p)
                })
            })
            .chain(erasure_log.map(Path::to_owned))
            .filter_map(|p| p.canonicalize().ok().or(Some(p)))
            .collect();
        StaticFiles {
            root: canonical,
            deny,
            dir: ServeDir::new(root),
        }
    }

    pub async fn serve(self, req: Request) -> Response {
        if !self.allowed(req.uri().path()) {
            return ApiError::NotFound.into_response();
        }
        match self.dir.oneshot(req).await {
            Ok(r) => r.map(Body::new),
            Err(e) => match e {},
        }
    }

    /// Whether the file a URL path names resolves inside the folder and is not denied. A
    /// path that does not exist is left to `ServeDir` (its 404).
    fn allowed(&self, url_path: &str) -> bool {
        let Ok(decoded) = percent_encoding::percent_decode_str(url_path).decode_utf8() else {
            return false;
        };
        let mut path = self.root.clone();
        for c in Path::new(decoded.trim_start_matches('/')).components() {
            match c {
                Component::Normal(part) => path.push(part),
                Component::CurDir => {}
                _ => return false,
            }
        }
        if path.is_dir() {
            path.push("index.html");
        }
        match path.canonicalize() {
            Ok(real) => real.starts_with(&self.root) && !self.deny.contains(&real),
            // Missing files: refused if a denied name, else ServeDir answers 404.
            Err(_) => !self.deny.contains(&path),
        }
    }
}
