//! mau-beacon: audit and cut a Twilio Conversations Monthly-Active-User bill from the
//! browser. `MauTracker` reports each confirmed connect to a collector, once per identity
//! per UTC month, and never loses one; `LazyClient` creates the `Client` only when the user
//! needs chat.
//!
//! Layers: `core` is pure (no wasm-bindgen, js-sys or web-sys; tested natively);
//! `platform` adapts the browser with no business rules; `tracker` (with its child
//! `watch`) and `lazy` (with its child `trigger`) are the two features.
//!
//! Ownership, i.e. what keeps what alive:
//! - a `MauTracker` owns its outbox and page hooks; its wake timer holds it while beacons
//!   wait, so delivery goes on after the app drops the handle;
//! - a watch lives in its tracker's registry until `stop()`; a trigger in its
//!   `LazyClient`'s registry until it connects, `stop()` or `shutdown()`;
//! - a `LazyClient` holds itself while it has a client (token refresh must go on);
//!   `shutdown()` lets go.
//!
//! The shipped wasm is `#![no_std]` with a panic handler that traps: std's panic machinery
//! and the formatting it pulls in cost ~10 KB of wasm (docs/size.md). The `std` feature
//! (on in tests, which need std) brings std back; native builds always have it.
#![no_std]
#![deny(missing_docs, missing_debug_implementations)]

#[macro_use]
extern crate alloc;
#[cfg(any(feature = "std", not(target_family = "wasm")))]
extern crate std;

pub mod core;
pub mod platform;

mod lazy;
mod tracker;

/// talc instead of dlmalloc: ~5 KB less wasm; the SDK allocates little (docs/size.md).
#[cfg(all(target_family = "wasm", not(target_feature = "atomics")))]
#[global_allocator]
static ALLOCATOR: talc::wasm::WasmDynamicTalc = talc::wasm::new_wasm_dynamic_allocator();

/// A panic in the shipped wasm is a bug: trap at once, without formatting a message.
#[cfg(all(target_family = "wasm", not(feature = "std")))]
#[panic_handler]
fn panic(_: &::core::panic::PanicInfo) -> ! {
    ::core::arch::wasm32::unreachable()
}

pub use lazy::trigger::Trigger;
pub use lazy::LazyClient;
pub use tracker::watch::Watch;
pub use tracker::MauTracker;

/// The SDK version, also on every beacon.
#[wasm_bindgen::prelude::wasm_bindgen(js_name = version)]
pub fn version() -> alloc::string::String {
    crate::core::wire::SDK_VERSION.into()
}
