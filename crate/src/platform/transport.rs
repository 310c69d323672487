//! Sending one beacon. `fetch` with `keepalive` is the main path because it reports a
//! status; `sendBeacon` is only a last try on `pagehide` (its `true` is not delivery).

use alloc::{boxed::Box, string::String};

use wasm_bindgen::prelude::*;
use web_sys::{AbortSignal, RequestInit, RequestRedirect, Response};

use crate::platform::js;

#[wasm_bindgen]
extern "C" {
    /// The global `fetch`, in a window and a worker alike (gloo-net's binding, without the
    /// crate: docs/size.md).
    #[wasm_bindgen(js_name = fetch)]
    fn fetch(request: &web_sys::Request) -> js_sys::Promise;
}

/// An attempt that has no answer after this long counts as a network error.
const ATTEMPT_TIMEOUT_MS: u32 = 30_000;

/// `AbortSignal.timeout(ms)` where the browser has it (Chrome 103+, Safari 16+).
fn timeout_signal(ms: u32) -> Option<AbortSignal> {
    let class = js::get(&js_sys::global(), "AbortSignal");
    js::method(&class, "timeout")?;
    Some(AbortSignal::timeout_with_u32(ms))
}

/// What an attempt came back with: `Ok((status, Retry-After))` or `Err(network error)`.
pub type Outcome = Result<(u16, Option<String>), String>;

/// POSTs `body` as `text/plain;charset=UTF-8` (a string body's default type, so no CORS
/// preflight) with no custom headers, and hands `done` the outcome.
pub fn post(url: &str, body: &str, done: Box<dyn FnOnce(Outcome)>) {
    let init = RequestInit::new();
    init.set_method("POST");
    init.set_body(&JsValue::from_str(body));
    // web-sys has no setter for `keepalive`; the field is standard (Chrome 66+, Safari 13+).
    let _ = js_sys::Reflect::set(&init, &JsValue::from_str("keepalive"), &JsValue::TRUE);
    // A redirect would turn the POST into a GET and its 404 into a drop: fail and retry instead.
    init.set_redirect(RequestRedirect::Error);
    // A collector that accepts and never answers must not stall delivery for good.
    if let Some(signal) = timeout_signal(ATTEMPT_TIMEOUT_MS) {
        init.set_signal(Some(&signal));
    }
    let request = match web_sys::Request::new_with_str_and_init(url, &init) {
        Ok(request) => request,
        Err(e) => return done(Err(js::message(&e))),
    };
    // Bounded here too: where `AbortSignal.timeout` is missing, a stalled request would
    // hold the profile's send lock for good.
    js::within(
        &fetch(&request),
        ATTEMPT_TIMEOUT_MS as f64,
        move |settled| {
            done(match settled {
                Some(Ok(response)) => {
                    let response: Response = response.unchecked_into();
                    let retry_after = response.headers().get("retry-after").ok().flatten();
                    Ok((response.status(), retry_after))
                }
                Some(Err(e)) => Err(js::message(&e)),
                None => Err("timed out".into()),
            })
        },
    );
}

/// `navigator.sendBeacon`: queued or not, never a delivery confirmation.
pub fn send_beacon(url: &str, body: &str) -> bool {
    web_sys::window()
        .and_then(|w| w.navigator().send_beacon_with_opt_str(url, Some(body)).ok())
        .unwrap_or(false)
}

/// Whether the browser says it is offline: a failed attempt then says nothing about the
/// collector or its CORS rules.
pub fn offline() -> bool {
    web_sys::window().is_some_and(|w| !w.navigator().on_line())
}
