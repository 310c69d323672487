//! One tab at a time across a browser profile: `navigator.locks` (Web Locks) where the
//! browser has it, else a claim in `localStorage` that the other tabs see as their storage
//! learns of it (the rules are `core::tabs`'). A held lock is a value: dropping it
//! releases the lock `hold_ms` later, so what was written under it reaches the other
//! tabs' storage before one of them can take it.

use alloc::{boxed::Box, string::String};
use core::sync::atomic::{AtomicBool, Ordering};

use js_sys::{Date, Function, Math, Object, Promise, Reflect};
use wasm_bindgen::prelude::*;

use crate::core::clock::ms_text;
use crate::core::outbox::Store;
use crate::core::tabs;
use crate::platform::dom::set_timeout;
use crate::platform::js;
use crate::platform::local_store::LocalStore;

#[wasm_bindgen]
extern "C" {
    /// `navigator.locks` (web-sys binds it only behind its unstable-APIs flag).
    type LockManager;
    #[wasm_bindgen(method, catch)]
    fn request(
        this: &LockManager,
        name: &str,
        options: &JsValue,
        callback: &JsValue,
    ) -> Result<Promise, JsValue>;
}

/// How long a storage claim stays in force if its tab dies holding it.
const CLAIM_MS: f64 = 10_000.0;
/// How long a tab waits for the other tabs' claims to reach its storage.
const CLAIM_WAIT_MS: f64 = 250.0;
/// This page has cleared the claims no tab will ask for again (`tabs::clear_lapsed_claims`).
static SWEPT: AtomicBool = AtomicBool::new(false);

fn call(f: &Function, arg: &JsValue) {
    let _ = f.call1(&JsValue::UNDEFINED, arg);
}

/// Asks for the lock `name`. Resolves with what [`Held::new`] takes: the lock's release
/// function when granted; `null` when another tab holds it and `if_available` was asked
/// (otherwise the wait goes on until it is free); `undefined` when no lock can be had
/// here (no storage, a failed request), and this tab goes on alone.
pub fn acquire(name: &str, if_available: bool) -> Promise {
    let locks = web_sys::window()
        .map(|w| js::get(&w.navigator(), "locks"))
        .filter(JsValue::is_object);
    let name = String::from(name);
    Promise::new(&mut |grant, _| match &locks {
        Some(locks) => web_lock(locks.unchecked_ref(), &name, if_available, grant),
        None => claim(tabs::claim_key(&name), if_available, grant),
    })
}

fn web_lock(locks: &LockManager, name: &str, if_available: bool, grant: Function) {
    let on_fail = grant.clone();
    // Web Locks hold the lock until the promise the callback returns settles.
    let callback = Closure::once_into_js(move |lock: JsValue| -> Promise {
        if lock.is_null() {
            call(&grant, &JsValue::NULL);
            return Promise::resolve(&JsValue::UNDEFINED);
        }
        Promise::new(&mut |release, _| call(&grant, &release))
    });
    let options = Object::new();
    let _ = Reflect::set(&options, &"ifAvailable".into(), &if_available.into());
    match locks.request(name, &options, &callback) {
        // A grant already made is not undone by a later call: promises settle once.
        Ok(request) => js::when(&request, move |settled| {
            if settled.is_err() {
                call(&on_fail, &JsValue::UNDEFINED)
            }
        }),
        Err(_) => call(&on_fail, &JsValue::UNDEFINED),
    }
}

fn claim(key: String, if_available: bool, grant: Function) {
    let Ok(mut store) = LocalStore::open() else {
        return call(&grant, &JsValue::UNDEFINED);
    };
    if tabs::claim_holder(store.get(&key).as_deref(), Date::now()).is_some() {
        if if_available {
            return call(&grant, &JsValue::NULL);
        }
        return js::after(CLAIM_WAIT_MS, move || claim(key, false, grant));
    }
    // Old months' claims pile up across page loads, so one sweep a page is enough.
    if !SWEPT.swap(true, Ordering::Relaxed) {
        tabs::clear_lapsed_claims(&mut store, Date::now());
    }
    let token = ms_text(Math::random() * 1e15);
    let value = tabs::claim_value(Date::now() + CLAIM_MS, &token);
    if store.set(&key, &value).is_err() {
        return call(&grant, &JsValue::UNDEFINED);
    }
    js::after(CLAIM_WAIT_MS, move || {
        let now = Date::now();
        if tabs::claim_holder(store.get(&key).as_deref(), now) != Some(token.as_str()) {
            return match if_available {
                true => call(&grant, &JsValue::NULL),
                false => claim(key, false, grant),
            };
        }
        let release = Closure::once_into_js(move || {
            // Ours, lapsed or not (a claim in force from 0 on).
            if tabs::claim_holder(store.get(&key).as_deref(), 0.0) == Some(token.as_str()) {
                store.remove(&key);
            }
        });
        call(&grant, &release);
    });
}

/// Runs `f` under the lock `name` (or on its own, see [`acquire`]): `f(true)` when this
/// tab holds it or goes on alone, `f(false)` when another tab holds it (never waited for).
/// Resolves once `f` has run; the lock is released `hold_ms` after.
pub fn with_lock(name: &str, hold_ms: i32, f: Box<dyn FnOnce(bool)>) -> Promise {
    let granted = acquire(name, true);
    let mut f = Some(f);
    Promise::new(&mut |done, _| {
        let Some(f) = f.take() else { return };
        js::when(&granted, move |granted| {
            let held = Held::new(granted.unwrap_or(JsValue::UNDEFINED), hold_ms);
            f(held.is_some());
            call(&done, &JsValue::UNDEFINED);
        });
    })
}

/// A lock this tab holds (or goes on without), released `hold_ms` after it is dropped.
#[derive(Debug)]
pub struct Held {
    release: JsValue,
    hold_ms: i32,
}

impl Held {
    /// From what [`acquire`] resolved with: `None` when another tab holds the lock.
    pub fn new(granted: JsValue, hold_ms: i32) -> Option<Held> {
        (!granted.is_null()).then_some(Held {
            release: granted,
            hold_ms,
        })
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        if self.release.is_function() {
            set_timeout(&self.release, self.hold_ms);
        }
    }
}
