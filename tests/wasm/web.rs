//! The SDK in a real browser (headless Chromium via wasm-pack), against a test double of
//! the Conversations client (tests/wasm/double.js) and a real HTTP receiver on loopback
//! (tests/support/receiver.mjs; its URL comes from MAU_TEST_RECEIVER at build time).
//! One binary (one browser start), one module per behaviour under `web/`.
#![cfg(target_arch = "wasm32")]

use js_sys::{Array, Function, Object, Promise, Reflect};
use mau_beacon::{LazyClient, MauTracker};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

const RECEIVER: &str = match option_env!("MAU_TEST_RECEIVER") {
    Some(url) => url,
    None => "http://127.0.0.1:8799",
};

#[wasm_bindgen(module = "/../tests/wasm/double.js")]
extern "C" {
    #[derive(Clone)]
    type FakeClient;
    #[wasm_bindgen(constructor)]
    fn new(identity: &str, version: &str) -> FakeClient;
    #[wasm_bindgen(method)]
    fn connect(this: &FakeClient);
    #[wasm_bindgen(method, js_name = setState)]
    fn set_state(this: &FakeClient, state: &str);
    #[wasm_bindgen(method)]
    fn initialize(this: &FakeClient);
    #[wasm_bindgen(method, js_name = failInit)]
    fn fail_init(this: &FakeClient);
    #[wasm_bindgen(method, js_name = listenerCount)]
    fn listener_count(this: &FakeClient, event: &str) -> u32;
    #[wasm_bindgen(method, js_name = totalListeners)]
    fn total_listeners(this: &FakeClient) -> u32;
    #[wasm_bindgen(method, getter, js_name = shutdownCalls)]
    fn shutdown_calls(this: &FakeClient) -> u32;
    #[wasm_bindgen(method, setter, js_name = shutdownHangs)]
    fn set_shutdown_hangs(this: &FakeClient, hangs: bool);
    #[wasm_bindgen(method)]
    fn expire(this: &FakeClient, disconnect_after_ms: u32);
    #[wasm_bindgen(method)]
    fn on(this: &FakeClient, event: &str, listener: &Function);
    #[wasm_bindgen(method, js_name = emit)]
    fn emit_event(this: &FakeClient, event: &str) -> bool;
    #[wasm_bindgen(method, js_name = removeAllListeners)]
    fn remove_all_listeners(this: &FakeClient);
    #[wasm_bindgen(method, js_name = removeAllListeners)]
    fn remove_all_listeners_of(this: &FakeClient, event: &str);
    #[wasm_bindgen(method, getter, js_name = droppedUpdates)]
    fn dropped_updates(this: &FakeClient) -> u32;
    #[wasm_bindgen(method, getter, js_name = connectionState)]
    fn connection_state(this: &FakeClient) -> String;
    #[wasm_bindgen(method, getter, js_name = updateTokenCalls)]
    fn update_token_calls(this: &FakeClient) -> Array;
    #[wasm_bindgen(js_name = makeToken)]
    fn make_token(identity: JsValue) -> String;

    type Harness;
    #[wasm_bindgen(js_name = lazyHarness)]
    fn lazy_harness(identity: &str) -> Harness;
    #[wasm_bindgen(method, getter)]
    fn clients(this: &Harness) -> Array;
    #[wasm_bindgen(method, getter, js_name = tokenCalls)]
    fn token_calls(this: &Harness) -> u32;
    #[wasm_bindgen(method, setter, js_name = failTokens)]
    fn set_fail_tokens(this: &Harness, n: u32);
    #[wasm_bindgen(method, setter, js_name = tokenDelayMs)]
    fn set_token_delay_ms(this: &Harness, ms: u32);
    #[wasm_bindgen(method, setter, js_name = hangTokens)]
    fn set_hang_tokens(this: &Harness, hang: bool);

    #[wasm_bindgen(js_name = clearStore)]
    fn clear_store();
    #[wasm_bindgen(js_name = storedKeys)]
    fn stored_keys() -> Array;
    #[wasm_bindgen(js_name = breakStorage)]
    fn break_storage(broken: bool);
    #[wasm_bindgen(js_name = attempts)]
    fn attempts_js(url: &str) -> Promise;
    #[wasm_bindgen(js_name = sleep)]
    fn sleep_js(ms: u32) -> Promise;
    #[wasm_bindgen(js_name = emitCatching)]
    fn emit_catching(client: &FakeClient, event: &str, arg: &JsValue) -> Option<String>;
}

// ---- helpers ------------------------------------------------------------------------

fn bucket(name: &str) -> String {
    format!(
        "{RECEIVER}/b/{name}-{}",
        (js_sys::Math::random() * 1e9) as u64
    )
}

async fn sleep(ms: u32) {
    let _ = JsFuture::from(sleep_js(ms)).await;
}

/// What the receiver got at `url`: (status, body) per attempt.
async fn attempts(url: &str) -> Vec<(u32, JsValue)> {
    let list: Array = JsFuture::from(attempts_js(url))
        .await
        .expect("receiver reachable")
        .into();
    list.iter()
        .map(|a| (get(&a, "status").as_f64().unwrap() as u32, get(&a, "body")))
        .collect()
}

/// Polls until the receiver has `n` attempts at `url` (at most `ms`).
async fn wait_attempts(url: &str, n: usize, ms: u32) -> Vec<(u32, JsValue)> {
    let mut waited = 0;
    loop {
        let got = attempts(url).await;
        if got.len() >= n || waited >= ms {
            return got;
        }
        sleep(25).await;
        waited += 25;
    }
}

fn get(v: &JsValue, path: &str) -> JsValue {
    path.split('.').fold(v.clone(), |v, k| {
        Reflect::get(&v, &k.into()).unwrap_or(JsValue::UNDEFINED)
    })
}

fn num(v: &JsValue, path: &str) -> f64 {
    get(v, path).as_f64().unwrap_or(f64::NAN)
}

fn text(v: &JsValue, path: &str) -> String {
    get(v, path).as_string().unwrap_or_default()
}

fn obj(pairs: &[(&str, JsValue)]) -> JsValue {
    let o = Object::new();
    for (k, v) in pairs {
        Reflect::set(&o, &(*k).into(), v).unwrap();
    }
    o.into()
}

fn tracker(url: &str, extra: &[(&str, JsValue)]) -> MauTracker {
    let mut pairs = vec![
        ("collectorUrl", JsValue::from_str(url)),
        (
            "retry",
            obj(&[("baseMs", 40.into()), ("maxMs", 200.into())]),
        ),
    ];
    pairs.extend(extra.iter().cloned());
    MauTracker::new(obj(&pairs)).expect("valid config")
}

fn token_opts(identity: &str) -> JsValue {
    obj(&[("token", make_token(identity.into()).into())])
}

async fn flush(t: &MauTracker) -> JsValue {
    JsFuture::from(t.flush()).await.expect("flush resolves")
}

fn error_message(e: JsValue) -> String {
    text(&e, "message")
}

/// An `onError` that collects what it gets, and the array it collects into.
fn error_sink() -> (Array, JsValue) {
    let errors = Array::new();
    let on_error = Function::new_with_args("e", "this.push(e)").bind0(&errors);
    (errors, on_error.into())
}

fn lazy(h: &Harness, extra: &[(&str, JsValue)]) -> LazyClient {
    let mut pairs = vec![
        ("createClient", get(h, "createClient")),
        ("getToken", get(h, "getToken")),
    ];
    pairs.extend(extra.iter().cloned());
    LazyClient::new(obj(&pairs)).expect("valid lazy config")
}

fn tracker_as_js(t: MauTracker) -> JsValue {
    // Hand the tracker to LazyClient as JS would: through its JS wrapper.
    let holder = obj(&[]);
    Reflect::set(&holder, &"t".into(), &JsValue::from(t)).unwrap();
    get(&holder, "t")
}

// ---- behaviours ---------------------------------------------------------------------

#[path = "web/bad_input.rs"]
mod bad_input;
#[path = "web/delivery.rs"]
mod delivery;
#[path = "web/lazy_connect.rs"]
mod lazy_connect;
#[path = "web/origin.rs"]
mod origin;
#[path = "web/own_client.rs"]
mod own_client;
#[path = "web/races.rs"]
mod races;
#[path = "web/watching.rs"]
mod watching;
