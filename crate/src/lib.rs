//! mau-beacon: audit and cut a Twilio Conversations Monthly-Active-User bill from the
//! browser. `MauTracker` reports each confirmed connect to a collector, once per identity
//! per UTC month, and never loses one; `LazyClient` creates the `Client` only when the user
//! needs chat. Pure logic (beacon, month, backoff, token, outbox) has no web-sys in it and
//! is tested natively.
#![deny(missing_docs, missing_debug_implementations)]

pub mod backoff;
pub mod beacon;
pub mod clock;
pub mod error;
pub mod json;
pub mod outbox;
pub mod token;

mod emitter;
mod js;
mod lazy;
mod lifecycle;
mod storage;
mod tracker;
mod transport;
mod trigger;
mod types;
mod watch;

/// talc instead of dlmalloc: ~5 KB less wasm; the SDK allocates little (docs/size.md).
#[cfg(all(target_family = "wasm", not(target_feature = "atomics")))]
#[global_allocator]
static ALLOCATOR: talc::wasm::WasmDynamicTalc = talc::wasm::new_wasm_dynamic_allocator();

pub use lazy::LazyClient;
pub use tracker::MauTracker;
pub use trigger::Trigger;
pub use watch::Watch;

/// The SDK version, also on every beacon.
#[wasm_bindgen::prelude::wasm_bindgen(js_name = version)]
pub fn version() -> String {
    beacon::SDK_VERSION.into()
}
