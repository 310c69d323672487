//! Reading config objects and calling app callbacks without panicking: every read is a
//! `Reflect` call that yields a named `Error` instead of a trap. Config is read field by
//! field rather than through serde, which costs far more wasm (docs/size.md).

use alloc::{boxed::Box, string::String};

use js_sys::{Function, Promise, Reflect};
use wasm_bindgen::prelude::*;

use crate::core::error::Error;
use crate::platform::dom::set_timeout;

/// `obj[name]`, `undefined` when absent or when `obj` is not an object.
pub fn get(obj: &JsValue, name: &str) -> JsValue {
    if !obj.is_object() && !obj.is_function() {
        return JsValue::UNDEFINED;
    }
    Reflect::get(obj, &JsValue::from_str(name)).unwrap_or(JsValue::UNDEFINED)
}

/// The config object itself: `undefined` is allowed where the whole object is optional.
pub fn object(value: &JsValue, field: &'static str, required: bool) -> Result<JsValue, Error> {
    if value.is_undefined() || value.is_null() {
        return if required {
            Err(Error::config(field, "is required"))
        } else {
            Ok(JsValue::UNDEFINED)
        };
    }
    if value.is_object() {
        Ok(value.clone())
    } else {
        Err(Error::config(field, "must be an object"))
    }
}

/// `obj[name]` converted by `convert`; `None` when absent, a config error saying `problem`
/// when present but not convertible.
fn optional<T>(
    obj: &JsValue,
    name: &'static str,
    problem: &'static str,
    convert: impl FnOnce(JsValue) -> Option<T>,
) -> Result<Option<T>, Error> {
    let v = get(obj, name);
    if v.is_undefined() || v.is_null() {
        return Ok(None);
    }
    convert(v).map(Some).ok_or(Error::config(name, problem))
}

/// An optional string field.
pub fn opt_string(obj: &JsValue, name: &'static str) -> Result<Option<String>, Error> {
    optional(obj, name, "must be a string", |v| v.as_string())
}

/// An optional function field.
pub fn opt_function(obj: &JsValue, name: &'static str) -> Result<Option<Function>, Error> {
    optional(obj, name, "must be a function", |v| {
        v.dyn_into::<Function>().ok()
    })
}

/// A required function field.
pub fn function(obj: &JsValue, name: &'static str) -> Result<Function, Error> {
    opt_function(obj, name)?.ok_or(Error::config(name, "is required (a function)"))
}

/// An optional boolean field.
pub fn opt_bool(obj: &JsValue, name: &'static str) -> Result<Option<bool>, Error> {
    optional(obj, name, "must be a boolean", |v| v.as_bool())
}

/// The longest delay a browser timer takes: browsers keep delays in an i32, and a larger
/// one fires at once.
pub const MAX_TIMER_MS: f64 = 2_147_483_647.0;

/// An optional number of milliseconds a timer can wait.
pub fn opt_ms(obj: &JsValue, name: &'static str) -> Result<Option<f64>, Error> {
    optional(
        obj,
        name,
        "must be a number of milliseconds from 0 to 2147483647",
        |v| v.as_f64().filter(|n| (0.0..=MAX_TIMER_MS).contains(n)),
    )
}

/// `obj[name]` if it is a function.
pub fn method(obj: &JsValue, name: &str) -> Option<Function> {
    get(obj, name).dyn_into::<Function>().ok()
}

/// The message of something thrown: `error.message`, else its string form.
pub fn message(thrown: &JsValue) -> String {
    get(thrown, "message")
        .as_string()
        .or_else(|| thrown.as_string())
        .unwrap_or_else(|| "unknown error".into())
}

#[wasm_bindgen]
extern "C" {
    /// A promise, for a `then` that takes any functions: js-sys's `then2` takes only Rust
    /// closures, and `when` and `bounded` hand it bound functions.
    type Thenable;
    #[wasm_bindgen(method)]
    fn then(this: &Thenable, on_fulfilled: &JsValue, on_rejected: &JsValue);
}

/// `promise.then(on_fulfilled, on_rejected)`.
fn then(promise: &Promise, on_fulfilled: &JsValue, on_rejected: &JsValue) {
    promise
        .unchecked_ref::<Thenable>()
        .then(on_fulfilled, on_rejected);
}

/// What a promise settled with: `Ok(value)` or `Err(reason)`.
pub type Settled = Result<JsValue, JsValue>;

/// Calls `f` once `promise` settles. A callback on the promise instead of an `async` block:
/// each future costs a state machine and the executor's glue in the wasm (docs/size.md).
pub fn when(promise: &Promise, f: impl FnOnce(Settled) + 'static) {
    when_boxed(promise, Box::new(f));
}

/// One non-generic body, so the closure glue is instantiated once. One one-shot function
/// that JS owns, bound once per outcome: it frees itself when called, or goes with the
/// promise when that is collected (wasm-bindgen's finalizer frees what it held).
#[inline(never)]
fn when_boxed(promise: &Promise, f: Box<dyn FnOnce(Settled)>) {
    let settle = Closure::once_into_js(move |fulfilled: JsValue, v: JsValue| {
        f(if fulfilled.is_truthy() { Ok(v) } else { Err(v) })
    });
    let settle: &Function = settle.unchecked_ref();
    let outcome = |fulfilled: bool| JsValue::from(settle.bind1(&JsValue::NULL, &fulfilled.into()));
    then(promise, &outcome(true), &outcome(false));
}

/// Calls `f` after `ms`: a short wait that belongs to work already under way (a claim
/// settling) and is not cancelled; the timer holds only the promise's `resolve`.
pub fn after(ms: f64, f: impl FnOnce() + 'static) {
    when(&timeout(ms, &JsValue::UNDEFINED), move |_| f());
}

/// Calls `f` on the next microtask.
pub fn later(f: impl FnOnce() + 'static) {
    when(&Promise::resolve(&JsValue::UNDEFINED), move |_| f());
}

/// A promise that resolves to `value` after `ms`. The timer holds nothing but the promise's
/// `resolve`, so it is harmless when it fires after the wait is over.
pub fn timeout(ms: f64, value: &JsValue) -> Promise {
    Promise::new(&mut |resolve, _| {
        set_timeout(&resolve.bind1(&JsValue::NULL, value).into(), ms as i32);
    })
}

/// A promise that resolves to `undefined` once `value` settles either way, or after `ms`.
/// A plain value counts as settled.
pub fn bounded(value: &JsValue, ms: f64) -> Promise {
    Promise::new(&mut |resolve, _| {
        let done = resolve.bind1(&JsValue::NULL, &JsValue::UNDEFINED).into();
        set_timeout(&done, ms as i32);
        then(&Promise::resolve(value), &done, &done);
    })
}

/// Calls `f` with what `promise` settled with, or `None` if it has not settled within `ms`.
pub fn within(promise: &Promise, ms: f64, f: impl FnOnce(Option<Settled>) + 'static) {
    let marker: JsValue = js_sys::Object::new().into();
    let race = Promise::race(&js_sys::Array::of2(promise, &timeout(ms, &marker)));
    when(&race, move |settled| {
        f(match settled {
            Ok(v) if js_sys::Object::is(&v, &marker) => None,
            settled => Some(settled),
        })
    });
}

/// Calls an app callback with one argument, swallowing what it throws: nothing the
/// app's own handler does may break ours.
pub fn notify(callback: &Option<Function>, arg: &JsValue) {
    if let Some(f) = callback {
        let _ = f.call1(&JsValue::NULL, arg);
    }
}

/// An SDK error as JS sees it: an `Error` named `MauBeaconError` with a stable `code`
/// (and `field`, for config errors), thrown, rejected or handed to `onError`.
impl From<Error> for JsValue {
    fn from(err: Error) -> JsValue {
        let e = js_sys::Error::new(&err.message());
        e.set_name("MauBeaconError");
        let set = |k: &str, v: &str| {
            let _ = Reflect::set(&e, &JsValue::from_str(k), &JsValue::from_str(v));
        };
        set("code", err.code());
        if let Some(field) = err.field() {
            set("field", field);
        }
        e.into()
    }
}

/// Hands an SDK error to the app's `onError` as a `MauBeaconError`.
pub fn report(on_error: &Option<Function>, err: &Error) {
    if on_error.is_some() {
        notify(on_error, &JsValue::from(err.clone()));
    }
}

/// Drops `value` on the next microtask, after the event being dispatched now: a listener
/// removed during a dispatch may still be called by it (Node's `emit` iterates a copy).
pub fn drop_later<T: 'static>(value: T) {
    later(move || drop(value));
}

/// A plain JS object from a `Serialize` value, through the JSON the SDK already links
/// for beacons (serde-wasm-bindgen cost ~5 KB more wasm; docs/size.md).
pub fn to_js<T: serde::Serialize>(value: &T) -> JsValue {
    serde_json::to_string(value)
        .ok()
        .and_then(|text| js_sys::JSON::parse(&text).ok())
        .unwrap_or(JsValue::UNDEFINED)
}
