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
#![deny(missing_docs, missing_debug_implementations)]

pub mod core;
pub mod platform;

mod lazy;
mod tracker;

/// talc instead of dlmalloc: ~5 KB less wasm; the SDK allocates little (docs/size.md).
#[cfg(all(target_family = "wasm", not(target_feature = "atomics")))]
#[global_allocator]
static ALLOCATOR: talc::wasm::WasmDynamicTalc = talc::wasm::new_wasm_dynamic_allocator();

pub use lazy::trigger::Trigger;
pub use lazy::LazyClient;
pub use tracker::watch::Watch;
pub use tracker::MauTracker;

/// The SDK version, also on every beacon.
#[wasm_bindgen::prelude::wasm_bindgen(js_name = version)]
pub fn version() -> String {
    crate::core::wire::SDK_VERSION.into()
}
