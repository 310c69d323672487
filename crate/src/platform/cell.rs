//! `RefCell` access that traps on a conflict. A double borrow is a bug either way, but
//! `borrow()`'s panic formats its error, and that alone keeps about 3.5 KB of `core::fmt`
//! in the wasm (docs/size.md). Natively and in the browser tests it still panics.

use core::cell::{Ref, RefCell, RefMut};

/// `borrow()` and `borrow_mut()` without a formatting panic.
pub trait Access<T> {
    /// Like `RefCell::borrow`.
    fn read(&self) -> Ref<'_, T>;
    /// Like `RefCell::borrow_mut`.
    fn write(&self) -> RefMut<'_, T>;
}

impl<T> Access<T> for RefCell<T> {
    #[inline]
    fn read(&self) -> Ref<'_, T> {
        self.try_borrow().unwrap_or_else(|_| conflict())
    }
    #[inline]
    fn write(&self) -> RefMut<'_, T> {
        self.try_borrow_mut().unwrap_or_else(|_| conflict())
    }
}

#[cold]
fn conflict() -> ! {
    #[cfg(all(target_family = "wasm", not(feature = "std")))]
    ::core::arch::wasm32::unreachable();
    #[cfg(not(all(target_family = "wasm", not(feature = "std"))))]
    panic!("a RefCell was borrowed while borrowed mutably");
}
