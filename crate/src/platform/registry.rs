//! One registry for "lives until `stop()`": a watch or a trigger stays alive while it is
//! armed, even if the app drops its JS handle (which wasm-bindgen frees when collected).
//! Its owner holds the registry; `stop()` takes the entry out.

use alloc::vec::Vec;

use alloc::rc::Rc;
use core::cell::RefCell;

use crate::platform::cell::Access;

/// The armed entries of one owner.
#[derive(Debug)]
pub struct Registry<T>(RefCell<Vec<Rc<T>>>);

impl<T> Default for Registry<T> {
    fn default() -> Self {
        Registry(RefCell::new(Vec::new()))
    }
}

impl<T> Registry<T> {
    /// Keeps `entry` alive until [`Registry::remove`] or [`Registry::take_all`].
    pub fn add(&self, entry: Rc<T>) {
        self.0.write().push(entry);
    }

    /// Lets `entry` go (by identity).
    pub fn remove(&self, entry: &Rc<T>) {
        self.0.write().retain(|e| !Rc::ptr_eq(e, entry));
    }

    /// The entries now, for a visit that may add or remove entries.
    pub fn snapshot(&self) -> Vec<Rc<T>> {
        self.0.read().clone()
    }

    /// Lets every entry go and hands them over, e.g. to disarm them.
    pub fn take_all(&self) -> Vec<Rc<T>> {
        core::mem::take(&mut *self.0.write())
    }
}
