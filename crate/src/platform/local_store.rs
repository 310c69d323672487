//! `localStorage` as an outbox `Store`. Missing, disabled or full storage is not an
//! error for the app: the outbox falls back to memory and `stats()` says why.

use alloc::{string::String, vec::Vec};

use web_sys::Storage;

use crate::core::outbox::{StorageKind, Store, PREFIX};
use crate::platform::js;

/// The browser's `localStorage`.
#[derive(Debug)]
pub struct LocalStore(Storage);

impl LocalStore {
    /// `localStorage` if the page has it, else why not. No probe write at start-up: a
    /// store that refuses writes (private mode, quota) is found at the first beacon, and
    /// the outbox then says so in its stats.
    pub fn open() -> Result<LocalStore, String> {
        let window = web_sys::window().ok_or("no window")?;
        let storage = window
            .local_storage()
            .map_err(|e| js::message(&e))?
            .ok_or("localStorage is not available")?;
        Ok(LocalStore(storage))
    }
}

impl Store for LocalStore {
    fn get(&self, key: &str) -> Option<String> {
        self.0.get_item(key).ok().flatten()
    }
    fn set(&mut self, key: &str, value: &str) -> Result<(), String> {
        self.0.set_item(key, value).map_err(|e| js::message(&e))
    }
    fn remove(&mut self, key: &str) {
        let _ = self.0.remove_item(key);
    }
    fn keys(&self) -> Vec<String> {
        let n = self.0.length().unwrap_or(0);
        (0..n)
            .filter_map(|i| self.0.key(i).ok().flatten())
            .filter(|k| k.starts_with(PREFIX))
            .collect()
    }
    fn kind(&self) -> StorageKind {
        StorageKind::LocalStorage
    }
}
