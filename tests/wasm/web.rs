//! The SDK in a real browser (headless Chromium via wasm-pack), against a test double of
//! the Conversations client (tests/wasm/double.js) and a real HTTP receiver on loopback
//! (tests/support/receiver.mjs; its URL comes from MAU_TEST_RECEIVER at build time).
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

// ---- watching -----------------------------------------------------------------------

#[wasm_bindgen_test]
async fn one_beacon_per_identity_and_month_reconnects_counted() {
    clear_store();
    let url = bucket("once");
    let t = tracker(&url, &[]);
    let client = FakeClient::new("", "3.0.1");
    let watch = t
        .watch(client.clone().into(), Some(token_opts("alice@example.com")))
        .unwrap();
    client.connect();
    client.connect(); // network loss and reconnect: "connected" again
    client.set_state("connecting");
    client.set_state("connected");
    let stats = flush(&t).await;
    let got = attempts(&url).await;
    assert_eq!(got.len(), 1, "one MAU beacon");
    let body = &got[0].1;
    assert_eq!(text(body, "identity"), "alice@example.com");
    assert_eq!(num(body, "v"), 1.0);
    assert_eq!(text(body, "kind"), "connected");
    assert_eq!(text(body, "event_id").len(), 32);
    assert_eq!(text(body, "client_version"), "3.0.1");
    assert_eq!(text(body, "sdk.name"), "mau-beacon");
    assert_eq!(num(body, "attempt"), 1.0);
    assert!(text(body, "month").len() == 7 && text(body, "occurred_at").ends_with('Z'));
    assert!(!js_sys::JSON::stringify(body)
        .unwrap()
        .as_string()
        .unwrap()
        .contains(&make_token("alice@example.com".into())));
    assert_eq!(num(&stats, "connectsSeen"), 3.0);
    assert_eq!(num(&stats, "deduped"), 2.0);
    assert_eq!(num(&stats, "delivered"), 1.0);
    assert_eq!(num(&stats, "pending"), 0.0);
    assert!(t.is_counted_this_month("alice@example.com"));
    assert!(!t.is_counted_this_month("bob"));
    watch.stop();
}

#[wasm_bindgen_test]
async fn dedupe_none_sends_every_connect() {
    clear_store();
    let url = bucket("none");
    let t = tracker(&url, &[("dedupe", "none".into())]);
    let client = FakeClient::new("", "3.0.1");
    let watch = t
        .watch(
            client.clone().into(),
            Some(obj(&[("identity", "carol".into())])),
        )
        .unwrap();
    client.connect();
    client.connect();
    flush(&t).await;
    let got = attempts(&url).await;
    assert_eq!(got.len(), 2);
    assert_ne!(text(&got[0].1, "event_id"), text(&got[1].1, "event_id"));
    assert!(got
        .iter()
        .all(|(_, b)| text(b, "dedupe") == "none" && text(b, "identity") == "carol"));
    watch.stop();
}

#[wasm_bindgen_test]
async fn other_states_never_beacon() {
    clear_store();
    let url = bucket("states");
    let t = tracker(&url, &[]);
    let client = FakeClient::new("dave", "3.0.1");
    let watch = t
        .watch(client.clone().into(), Some(token_opts("dave")))
        .unwrap();
    for s in [
        "connecting",
        "retrying",
        "denied",
        "disconnecting",
        "disconnected",
        "unknown",
        "error",
    ] {
        client.set_state(s);
    }
    client.fail_init(); // initFailed is not a connect either
    let stats = flush(&t).await;
    assert_eq!(attempts(&url).await.len(), 0);
    assert_eq!(num(&stats, "connectsSeen"), 0.0);
    assert_eq!(num(&stats, "queued"), 0.0);
    watch.stop();
}

#[wasm_bindgen_test]
async fn a_client_already_connected_counts_at_watch() {
    clear_store();
    let url = bucket("already");
    let t = tracker(&url, &[]);
    let client = FakeClient::new("", "3.0.1");
    client.connect();
    let watch = t
        .watch(client.clone().into(), Some(token_opts("erin")))
        .unwrap();
    flush(&t).await;
    let got = attempts(&url).await;
    assert_eq!(got.len(), 1);
    assert_eq!(text(&got[0].1, "identity"), "erin");
    watch.stop();
}

#[wasm_bindgen_test]
async fn stop_leaves_zero_listeners() {
    clear_store();
    let t = tracker(&bucket("stop"), &[("identityTimeoutMs", 60_000.into())]);
    let client = FakeClient::new("", "3.0.1");
    let watch = t.watch(client.clone().into(), None).unwrap();
    assert_eq!(client.listener_count("connectionStateChanged"), 1);
    client.connect(); // no identity yet: it waits for `initialized`
    assert_eq!(client.listener_count("initialized"), 1);
    watch.stop();
    assert!(watch.stopped());
    assert_eq!(client.total_listeners(), 0);
    watch.stop(); // twice is fine
                  // The connect that was waiting for an identity is accounted for, not lost silently.
    let stats = t.stats();
    assert_eq!(
        (
            num(&stats, "connectsSeen"),
            num(&stats, "dropReasons.no_identity")
        ),
        (1.0, 1.0)
    );
    client.connect();
    assert_eq!(
        num(&t.stats(), "connectsSeen"),
        1.0,
        "nothing counted after stop()"
    );
}

#[wasm_bindgen_test]
async fn late_identity_from_initialized() {
    clear_store();
    let url = bucket("late");
    let t = tracker(&url, &[]);
    let client = FakeClient::new("frank", "2.7.0");
    let watch = t.watch(client.clone().into(), None).unwrap();
    client.connect();
    sleep(30).await;
    client.initialize();
    flush(&t).await;
    assert_eq!(
        client.listener_count("initialized"),
        0,
        "one-shot listener removed"
    );
    let got = attempts(&url).await;
    assert_eq!(got.len(), 1);
    let body = &got[0].1;
    assert_eq!(text(body, "identity"), "frank");
    assert_eq!(text(body, "client_version"), "2.7.0");
    // The connect time, not the initialized time.
    assert!(text(body, "occurred_at") <= text(body, "sent_at"));
    watch.stop();
}

#[wasm_bindgen_test]
async fn opaque_token_falls_back_to_client_identity() {
    clear_store();
    let url = bucket("opaque");
    let t = tracker(&url, &[]);
    let client = FakeClient::new("gina", "3.0.1");
    let opts = obj(&[("token", make_token(JsValue::NULL).into())]);
    let watch = t.watch(client.clone().into(), Some(opts)).unwrap();
    client.connect();
    client.initialize();
    flush(&t).await;
    let got = attempts(&url).await;
    assert_eq!(got.len(), 1);
    assert_eq!(text(&got[0].1, "identity"), "gina");
    watch.stop();
}

#[wasm_bindgen_test]
async fn token_function_is_read_at_connect() {
    clear_store();
    let url = bucket("tokenfn");
    let t = tracker(&url, &[]);
    let client = FakeClient::new("", "3.0.1");
    let token = make_token("hank".into());
    let f = Function::new_with_args("", &format!("return {:?};", token));
    let watch = t
        .watch(client.clone().into(), Some(obj(&[("token", f.into())])))
        .unwrap();
    client.connect();
    flush(&t).await;
    assert_eq!(text(&attempts(&url).await[0].1, "identity"), "hank");
    watch.stop();
}

#[wasm_bindgen_test]
async fn no_identity_is_counted_as_a_drop() {
    clear_store();
    let url = bucket("noid");
    let t = tracker(&url, &[("identityTimeoutMs", 50.into())]);
    let client = FakeClient::new("", "3.0.1");
    let watch = t.watch(client.clone().into(), None).unwrap();
    client.connect();
    sleep(150).await;
    let stats = flush(&t).await;
    assert_eq!(attempts(&url).await.len(), 0);
    assert_eq!(num(&stats, "dropReasons.no_identity"), 1.0);
    assert_eq!(client.listener_count("initialized"), 0);
    watch.stop();
}

#[wasm_bindgen_test]
async fn handlers_never_throw_into_the_client() {
    clear_store();
    let url = bucket("nothrow");
    let throwing = Function::new_no_args("throw new Error('app bug')");
    let t = tracker(
        &url,
        &[
            ("onEvent", throwing.clone().into()),
            ("onError", throwing.into()),
        ],
    );
    let client = FakeClient::new("", "3.0.1");
    let watch = t
        .watch(client.clone().into(), Some(token_opts("ivy")))
        .unwrap();
    client.set_state("connecting");
    assert_eq!(
        emit_catching(&client, "connectionStateChanged", &"connected".into()),
        None
    );
    assert_eq!(
        emit_catching(&client, "connectionStateChanged", &JsValue::from(42)),
        None
    );
    assert_eq!(
        emit_catching(&client, "connectionStateChanged", &JsValue::UNDEFINED),
        None
    );
    flush(&t).await;
    assert_eq!(attempts(&url).await.len(), 1);
    watch.stop();
}

// ---- delivery -----------------------------------------------------------------------

#[wasm_bindgen_test]
async fn retries_after_503_with_the_same_event_id() {
    clear_store();
    let url = bucket("r503");
    let t = tracker(&format!("{url}?fail=1"), &[]);
    let client = FakeClient::new("", "3.0.1");
    let watch = t
        .watch(client.clone().into(), Some(token_opts("jack")))
        .unwrap();
    client.connect();
    let got = wait_attempts(&url, 2, 5_000).await;
    assert_eq!(got.len(), 2, "retried");
    assert_eq!((got[0].0, got[1].0), (503, 204));
    assert_eq!(text(&got[0].1, "event_id"), text(&got[1].1, "event_id"));
    assert_eq!(
        (num(&got[0].1, "attempt"), num(&got[1].1, "attempt")),
        (1.0, 2.0)
    );
    assert_eq!(
        text(&got[0].1, "occurred_at"),
        text(&got[1].1, "occurred_at")
    );
    let stats = t.stats();
    assert_eq!(
        (
            num(&stats, "delivered"),
            num(&stats, "retries"),
            num(&stats, "pending")
        ),
        (1.0, 1.0, 0.0)
    );
    assert_eq!(
        stored_keys().length(),
        1,
        "only the month mark is left: {:?}",
        stored_keys()
    );
    watch.stop();
}

#[wasm_bindgen_test]
async fn retry_after_is_honoured() {
    clear_store();
    let url = bucket("ra");
    let t = tracker(&format!("{url}?fail=1&status=429&retryAfter=1"), &[]);
    let client = FakeClient::new("", "3.0.1");
    let watch = t
        .watch(client.clone().into(), Some(token_opts("kim")))
        .unwrap();
    client.connect();
    let got = wait_attempts(&url, 2, 5_000).await;
    assert_eq!(got.len(), 2);
    let first = js_sys::Date::parse(&text(&got[0].1, "sent_at"));
    let second = js_sys::Date::parse(&text(&got[1].1, "sent_at"));
    assert!(
        second - first >= 950.0,
        "waited {} ms, Retry-After said 1 s",
        second - first
    );
    watch.stop();
}

#[wasm_bindgen_test]
async fn drops_after_400_and_counts_why() {
    clear_store();
    let url = bucket("r400");
    let t = tracker(&format!("{url}?status=400"), &[]);
    let client = FakeClient::new("", "3.0.1");
    let watch = t
        .watch(client.clone().into(), Some(token_opts("lee")))
        .unwrap();
    client.connect();
    let stats = flush(&t).await;
    assert_eq!(
        attempts(&url).await.len(),
        1,
        "no retry of a definitive 4xx"
    );
    assert_eq!(num(&stats, "dropped"), 1.0);
    assert_eq!(num(&stats, "dropReasons.http_400"), 1.0);
    assert_eq!(num(&stats, "pending"), 0.0);
    assert!(
        !t.is_counted_this_month("lee"),
        "not counted, so a later connect tries again"
    );
    assert_eq!(stored_keys().length(), 0);
    watch.stop();
}

#[wasm_bindgen_test]
async fn replays_at_start_up_what_an_earlier_page_left() {
    clear_store();
    // "Page 1": the collector is unreachable (nothing listens on port 9).
    let first = tracker(
        "http://127.0.0.1:9/b/unreachable",
        &[("retry", obj(&[("baseMs", 60_000.into())]))],
    );
    let client = FakeClient::new("", "3.0.1");
    let watch = first
        .watch(client.clone().into(), Some(token_opts("mia")))
        .unwrap();
    client.connect();
    let stats = flush(&first).await;
    assert_eq!(num(&stats, "pending"), 1.0);
    assert!(!text(&stats, "lastError").is_empty());
    watch.stop();
    drop(first);
    let queued: Vec<String> = stored_keys()
        .iter()
        .filter_map(|k| k.as_string())
        .filter(|k| k.contains(":q:"))
        .collect();
    assert_eq!(
        queued.len(),
        1,
        "stored before the first attempt, kept after failures"
    );
    let event_id = queued[0].rsplit(':').next().unwrap().to_string();

    // "Page 2": a new tracker replays it without any new connect.
    let url = bucket("replay");
    let second = tracker(&url, &[]);
    let got = wait_attempts(&url, 1, 3_000).await;
    assert_eq!(got.len(), 1);
    assert_eq!(text(&got[0].1, "event_id"), event_id);
    assert_eq!(text(&got[0].1, "identity"), "mia");
    assert!(num(&got[0].1, "attempt") >= 2.0);
    assert!(second.is_counted_this_month("mia"));
    flush(&second).await;
    assert_eq!(num(&second.stats(), "pending"), 0.0);
    assert!(stored_keys()
        .iter()
        .all(|k| !k.as_string().unwrap().contains(":q:")));
}

/// A profile as mau-beacon 0.1.0 left it, with its exact keys and values: its beacon is
/// delivered (same event id) and its month's mark still dedupes.
#[wasm_bindgen_test]
async fn upgrade_from_0_1_0_delivers_what_it_stored() {
    clear_store();
    let now = js_sys::Date::new_0();
    let month = format!(
        "{:04}-{:02}",
        now.get_utc_full_year(),
        now.get_utc_month() + 1
    );
    let at = now.to_iso_string().as_string().unwrap();
    let id = "0a1b2c3d4e5f60718293a4b5c6d7e8f9";
    let v1 = format!(
        r#"{{"v":1,"kind":"connected","identity":"ola","event_id":"{id}","month":"{month}","occurred_at":"{at}","sent_at":"{at}","attempt":1,"dedupe":"month","sdk":{{"name":"mau-beacon","version":"0.1.0"}},"client_version":"3.0.1"}}"#
    );
    let storage = web_sys::window().unwrap().local_storage().unwrap().unwrap();
    storage
        .set_item(&format!("mau-beacon:v1:q:{id}"), &v1)
        .unwrap();
    storage
        .set_item(&format!("mau-beacon:v1:counted:{month}:ola"), "1")
        .unwrap();

    let url = bucket("upgrade");
    let t = tracker(&url, &[]);
    let stats = flush(&t).await;
    assert_eq!(num(&stats, "pending"), 0.0);
    assert_eq!(num(&stats, "delivered"), 1.0);
    let got = attempts(&url).await;
    assert_eq!(got.len(), 1);
    assert_eq!(text(&got[0].1, "event_id"), id);
    assert_eq!(text(&got[0].1, "identity"), "ola");
    assert_eq!(text(&got[0].1, "occurred_at"), at);
    assert_eq!(num(&got[0].1, "attempt"), 2.0);
    assert_eq!(text(&got[0].1, "sdk.version"), "0.1.0");
    assert!(t.is_counted_this_month("ola"));
    assert!(stored_keys()
        .iter()
        .all(|k| !k.as_string().unwrap().contains(":q:")));
    let client = FakeClient::new("", "3.0.1");
    let watch = t
        .watch(client.clone().into(), Some(token_opts("ola")))
        .unwrap();
    client.connect();
    assert_eq!(num(&t.stats(), "deduped"), 1.0);
    watch.stop();
}

/// `Retry-After: 600` on one page holds the next page too: no attempt before the hold.
#[wasm_bindgen_test]
async fn a_retry_after_hold_survives_a_reload() {
    clear_store();
    let url = bucket("hold");
    let target = format!("{url}?fail=1&status=429&retryAfter=600");
    let first = tracker(&target, &[]);
    let client = FakeClient::new("", "3.0.1");
    let watch = first
        .watch(client.clone().into(), Some(token_opts("hal")))
        .unwrap();
    client.connect();
    let stats = flush(&first).await;
    assert_eq!(num(&stats, "pending"), 1.0);
    assert_eq!(attempts(&url).await.len(), 1);
    watch.stop();

    // "Page 2": the hold is read from storage; even a flush does not send.
    let second = tracker(&target, &[]);
    let stats = flush(&second).await;
    assert_eq!(num(&stats, "pending"), 1.0);
    assert_eq!(attempts(&url).await.len(), 1, "sent during the hold");
    clear_store();
}

#[wasm_bindgen_test]
async fn works_from_memory_when_storage_fails() {
    clear_store();
    break_storage(true);
    let url = bucket("nostore");
    let t = tracker(&url, &[]);
    let client = FakeClient::new("", "3.0.1");
    let watch = t
        .watch(client.clone().into(), Some(token_opts("ned")))
        .unwrap();
    client.connect();
    let stats = t.stats();
    break_storage(false);
    assert_eq!(text(&stats, "storage"), "memory");
    assert!(!text(&stats, "storageError").is_empty());
    assert_eq!(num(&stats, "pending"), 1.0, "kept in memory");
    flush(&t).await;
    assert_eq!(attempts(&url).await.len(), 1);
    watch.stop();
}

// ---- bad input ----------------------------------------------------------------------

#[wasm_bindgen_test]
fn bad_config_throws_naming_the_field() {
    let cases: Vec<(JsValue, &str)> = vec![
        (JsValue::UNDEFINED, "config"),
        (obj(&[]), "collectorUrl"),
        (obj(&[("collectorUrl", 42.into())]), "collectorUrl"),
        (
            obj(&[("collectorUrl", "ftp://example.com/x".into())]),
            "collectorUrl",
        ),
        (
            obj(&[("collectorUrl", "http://[bad".into())]),
            "collectorUrl",
        ),
        (
            obj(&[
                ("collectorUrl", "https://c.example/v1".into()),
                ("dedupe", "day".into()),
            ]),
            "dedupe",
        ),
        (
            obj(&[
                ("collectorUrl", "https://c.example/v1".into()),
                ("identityTimeoutMs", (-1).into()),
            ]),
            "identityTimeoutMs",
        ),
        (
            obj(&[
                ("collectorUrl", "https://c.example/v1".into()),
                ("onEvent", "yes".into()),
            ]),
            "onEvent",
        ),
        (
            obj(&[
                ("collectorUrl", "https://c.example/v1".into()),
                ("retry", 5.into()),
            ]),
            "retry",
        ),
    ];
    for (config, field) in cases {
        let err = MauTracker::new(config).expect_err(field);
        let message = error_message(err);
        assert!(message.contains(&format!("`{field}`")), "{message}");
    }
    let t = MauTracker::new(obj(&[("collectorUrl", "/v1/beacons".into())])).expect("relative URL");
    assert!(t.collector_url().starts_with("http://") && t.collector_url().ends_with("/v1/beacons"));
    for client in [
        JsValue::NULL,
        obj(&[]),
        obj(&[("on", Function::new_no_args("").into())]),
    ] {
        let message = error_message(t.watch(client, None).expect_err("bad client"));
        assert!(message.contains("`client`"), "{message}");
    }
    let client: JsValue = FakeClient::new("", "3").into();
    let message = error_message(
        t.watch(client, Some(obj(&[("token", 5.into())])))
            .expect_err("bad token"),
    );
    assert!(message.contains("`token`"), "{message}");
    let lazy_err = LazyClient::new(obj(&[("getToken", Function::new_no_args("").into())]))
        .expect_err("no createClient");
    assert!(error_message(lazy_err).contains("`createClient`"));
}

/// Thrown, rejected or handed to `onError`: an `Error` named `MauBeaconError` with a
/// stable `code`, and the `field` for config errors.
#[wasm_bindgen_test]
fn errors_are_mau_beacon_errors_with_codes() {
    let err = MauTracker::new(obj(&[("collectorUrl", 42.into())])).expect_err("bad url");
    assert!(err.is_instance_of::<js_sys::Error>());
    assert_eq!(text(&err, "name"), "MauBeaconError");
    assert_eq!(text(&err, "code"), "invalid_config");
    assert_eq!(text(&err, "field"), "collectorUrl");
    let t = tracker(&bucket("long"), &[]);
    let client: JsValue = FakeClient::new("", "3").into();
    let long = "é".repeat(128) + "x";
    let err = t
        .watch(client, Some(obj(&[("identity", long.as_str().into())])))
        .expect_err("identity too long");
    assert_eq!(text(&err, "code"), "invalid_config");
    assert_eq!(text(&err, "field"), "identity");
}

/// What the collector would refuse with a 400 is refused before sending, with a reason.
#[wasm_bindgen_test]
async fn an_identity_over_256_bytes_is_refused_by_name() {
    clear_store();
    let url = bucket("toolong");
    let (errors, on_error) = error_sink();
    let t = tracker(&url, &[("onError", on_error)]);
    let client = FakeClient::new("", "3.0.1");
    let long = "é".repeat(128) + "x";
    let watch = t
        .watch(client.clone().into(), Some(token_opts(&long)))
        .unwrap();
    client.connect();
    let stats = flush(&t).await;
    assert_eq!(num(&stats, "dropReasons.identity_too_long"), 1.0);
    assert_eq!(num(&stats, "queued"), 0.0);
    assert_eq!(attempts(&url).await.len(), 0);
    assert_eq!(errors.length(), 1);
    assert_eq!(text(&errors.get(0), "code"), "identity_too_long");
    watch.stop();
}

/// A token that cannot be read is said once, not silently dropped and not at every connect.
#[wasm_bindgen_test]
async fn an_unreadable_token_is_reported_once() {
    clear_store();
    let url = bucket("badtoken");
    let (errors, on_error) = error_sink();
    let t = tracker(&url, &[("onError", on_error)]);
    let client = FakeClient::new("gus", "3.0.1");
    let opts = obj(&[("token", "not-a-jwt".into())]);
    let watch = t.watch(client.clone().into(), Some(opts)).unwrap();
    assert_eq!(errors.length(), 1);
    assert_eq!(text(&errors.get(0), "code"), "token_unreadable");
    watch.stop();
    let token_fn = Function::new_no_args("return 'still.not-base64!.jwt'");
    let client = FakeClient::new("gus", "3.0.1");
    let opts = obj(&[("token", token_fn.into())]);
    let watch = t.watch(client.clone().into(), Some(opts)).unwrap();
    client.connect();
    client.initialize();
    client.set_state("disconnected");
    client.connect();
    flush(&t).await;
    assert_eq!(errors.length(), 2, "once per watch");
    assert_eq!(text(&errors.get(1), "code"), "token_unreadable");
    // The client's own identity still counts.
    assert_eq!(text(&attempts(&url).await[0].1, "identity"), "gus");
    watch.stop();
}

// ---- lazy connect -------------------------------------------------------------------

fn lazy(h: &Harness, extra: &[(&str, JsValue)]) -> LazyClient {
    let mut pairs = vec![
        ("createClient", get(h, "createClient")),
        ("getToken", get(h, "getToken")),
    ];
    pairs.extend(extra.iter().cloned());
    LazyClient::new(obj(&pairs)).expect("valid lazy config")
}

/// `shutdown()` is `closed` at once (a `get()` in the same tick rejects and fetches no
/// token), and `onStateChange` hears every change in order.
#[wasm_bindgen_test]
async fn shutdown_is_closed_at_once_and_state_changes_are_heard() {
    let h = lazy_harness("sam");
    let states = Array::new();
    let on_state = Function::new_with_args("s", "this.push(s)").bind0(&states);
    let l = lazy(&h, &[("onStateChange", on_state.into())]);
    JsFuture::from(l.get()).await.expect("client");
    assert_eq!(h.token_calls(), 1);
    let done = l.shutdown();
    assert_eq!(l.state(), "closed");
    let err = JsFuture::from(l.get()).await.expect_err("closed");
    assert_eq!(text(&err, "code"), "shut_down");
    assert_eq!(text(&err, "name"), "MauBeaconError");
    assert_eq!(h.token_calls(), 1, "no token fetched after shutdown()");
    JsFuture::from(done).await.expect("shutdown resolves");
    let seen: Vec<String> = states.iter().filter_map(|s| s.as_string()).collect();
    assert_eq!(seen, ["connecting", "ready", "closed"]);
}

#[wasm_bindgen_test]
async fn lazy_connect_is_single_flight() {
    let h = lazy_harness("olga");
    let l = lazy(&h, &[]);
    sleep(20).await;
    assert_eq!(
        (h.clients().length(), h.token_calls()),
        (0, 0),
        "nothing before a trigger"
    );
    assert_eq!(l.state(), "idle");
    let (a, b, c) = (l.get(), l.get(), l.get());
    assert_eq!(l.state(), "connecting");
    let all = JsFuture::from(Promise::all(&Array::of3(&a, &b, &c)))
        .await
        .unwrap();
    let all: Array = all.into();
    assert_eq!(
        (h.clients().length(), h.token_calls(), l.clients_created()),
        (1, 1, 1)
    );
    assert!(all.get(0) == all.get(1) && all.get(1) == all.get(2));
    assert_eq!(JsFuture::from(l.get()).await.unwrap(), all.get(0));
    assert_eq!(h.clients().length(), 1);
    JsFuture::from(l.shutdown()).await.unwrap();
    assert_eq!(l.state(), "closed");
    let client: FakeClient = all.get(0).unchecked_into();
    assert_eq!(client.shutdown_calls(), 1);
    assert_eq!(client.total_listeners(), 0);
    assert!(
        JsFuture::from(l.get()).await.is_err(),
        "get after shutdown rejects"
    );
}

#[wasm_bindgen_test]
async fn failing_token_rejects_every_waiter_then_retries() {
    let h = lazy_harness("pat");
    h.set_fail_tokens(1);
    let l = lazy(&h, &[]);
    let (a, b) = (l.get(), l.get());
    let ra = JsFuture::from(a).await;
    let rb = JsFuture::from(b).await;
    assert!(ra.is_err() && rb.is_err());
    assert!(error_message(ra.unwrap_err()).contains("token service down"));
    assert_eq!((h.clients().length(), h.token_calls()), (0, 1));
    assert_eq!(l.state(), "idle");
    JsFuture::from(l.get()).await.expect("a later retry works");
    assert_eq!((h.clients().length(), h.token_calls()), (1, 2));
}

#[wasm_bindgen_test]
async fn failed_init_client_is_shut_down_before_another() {
    let h = lazy_harness("quinn");
    let l = lazy(&h, &[]);
    let first: FakeClient = JsFuture::from(l.get()).await.unwrap().unchecked_into();
    first.fail_init();
    let second: FakeClient = JsFuture::from(l.get()).await.unwrap().unchecked_into();
    assert_eq!(h.clients().length(), 2);
    assert_eq!(first.shutdown_calls(), 1, "the failed one is shut down");
    assert_eq!(first.total_listeners(), 0);
    assert_eq!(second.shutdown_calls(), 0);
    JsFuture::from(l.shutdown()).await.unwrap();
}

#[wasm_bindgen_test]
async fn denied_after_initialized_is_replaced_too() {
    let h = lazy_harness("vera");
    let l = lazy(&h, &[]);
    let first: FakeClient = JsFuture::from(l.get()).await.unwrap().unchecked_into();
    first.connect();
    first.initialize();
    first.set_state("connecting"); // a reconnect…
    first.set_state("denied"); // …refused: no initFailed from an initialised client
    let second: FakeClient = JsFuture::from(l.get()).await.unwrap().unchecked_into();
    assert_eq!(h.clients().length(), 2);
    assert_eq!(first.shutdown_calls(), 1);
    second.connect();
    let again: FakeClient = JsFuture::from(l.get()).await.unwrap().unchecked_into();
    assert_eq!(h.clients().length(), 2, "a healthy client is kept");
    assert_eq!(again.shutdown_calls(), 0);
    JsFuture::from(l.shutdown()).await.unwrap();
}

#[wasm_bindgen_test]
async fn token_refresh_and_the_failed_init_guard() {
    let h = lazy_harness("rita");
    let (errors, on_error) = error_sink();
    let l = lazy(&h, &[("onError", on_error)]);
    let client: FakeClient = JsFuture::from(l.get()).await.unwrap().unchecked_into();
    client.connect();
    assert_eq!(
        emit_catching(&client, "tokenAboutToExpire", &JsValue::UNDEFINED),
        None
    );
    sleep(100).await;
    assert_eq!(client.update_token_calls().length(), 1);
    assert_eq!(h.token_calls(), 2);
    assert_eq!(h.clients().length(), 1, "no extra client");
    // After a failed init the real updateToken throws: it is not called, nothing throws.
    client.fail_init();
    assert_eq!(
        emit_catching(&client, "tokenExpired", &JsValue::UNDEFINED),
        None
    );
    sleep(100).await;
    assert_eq!(client.update_token_calls().length(), 1);
    assert_eq!(errors.length(), 0);
    JsFuture::from(l.shutdown()).await.unwrap();
}

#[wasm_bindgen_test]
async fn token_expired_refresh_waits_for_disconnected() {
    let h = lazy_harness("tom");
    let l = lazy(&h, &[]);
    let client: FakeClient = JsFuture::from(l.get()).await.unwrap().unchecked_into();
    client.connect();
    client.initialize();
    client.expire(150);
    sleep(60).await;
    assert_eq!(client.connection_state(), "disconnecting");
    assert_eq!(
        client.update_token_calls().length(),
        0,
        "not during `disconnecting`"
    );
    sleep(400).await;
    assert_eq!(client.dropped_updates(), 0);
    assert_eq!(client.update_token_calls().length(), 1);
    assert_eq!(
        client.connection_state(),
        "connected",
        "reconnected with the new token"
    );
    assert_eq!(h.clients().length(), 1, "no extra client");
    JsFuture::from(l.shutdown()).await.unwrap();
}

#[wasm_bindgen_test]
async fn token_expired_before_initialized_replaces_the_client() {
    let h = lazy_harness("uli");
    let errors = Array::new();
    let on_error = Function::new_with_args("e", "this.push(e.message)").bind0(&errors);
    let l = lazy(&h, &[("onError", on_error.into())]);
    let first: FakeClient = JsFuture::from(l.get()).await.unwrap().unchecked_into();
    first.connect();
    first.expire(50); // before `initialized`: the real updateToken would wait forever
    sleep(300).await;
    assert_eq!(
        first.update_token_calls().length() + first.dropped_updates(),
        0,
        "not called: it cannot work"
    );
    assert_eq!(errors.length(), 1);
    assert!(errors
        .get(0)
        .as_string()
        .unwrap()
        .contains("before the client initialised"));
    let second: FakeClient = JsFuture::from(l.get()).await.unwrap().unchecked_into();
    assert_eq!(h.clients().length(), 2);
    assert_eq!(
        first.shutdown_calls(),
        1,
        "the stuck client is shut down first"
    );
    assert_eq!(second.shutdown_calls(), 0);
    JsFuture::from(l.shutdown()).await.unwrap();
}

#[wasm_bindgen_test]
async fn shutdown_is_bounded_for_a_hanging_client() {
    let h = lazy_harness("sam");
    let l = lazy(&h, &[("shutdownTimeoutMs", 100.into())]);
    let client: FakeClient = JsFuture::from(l.get()).await.unwrap().unchecked_into();
    client.set_shutdown_hangs(true);
    let start = js_sys::Date::now();
    JsFuture::from(l.shutdown()).await.unwrap();
    let took = js_sys::Date::now() - start;
    assert!(took < 2_000.0, "shutdown took {took} ms");
    assert_eq!(client.shutdown_calls(), 1);
}

#[wasm_bindgen_test]
async fn connect_on_first_interaction_once() {
    let h = lazy_harness("tess");
    let l = lazy(&h, &[]);
    let doc = web_sys::window().unwrap().document().unwrap();
    let button = doc.create_element("button").unwrap();
    doc.body().unwrap().append_child(&button).unwrap();
    let trigger = l.connect_on(button.clone().into()).unwrap();
    sleep(30).await;
    assert_eq!(h.token_calls(), 0);
    let click = || {
        button
            .dispatch_event(&web_sys::Event::new("click").unwrap())
            .unwrap()
    };
    click();
    click();
    button
        .dispatch_event(&web_sys::Event::new("keydown").unwrap())
        .unwrap();
    sleep(100).await;
    assert!(trigger.done());
    assert_eq!((h.clients().length(), h.token_calls()), (1, 1));
    assert!(l.connect_on(JsValue::from(3)).is_err(), "not an element");
    JsFuture::from(l.shutdown()).await.unwrap();
    button.remove();
}

#[wasm_bindgen_test]
async fn stopped_trigger_never_connects() {
    let h = lazy_harness("uma");
    let l = lazy(&h, &[]);
    let doc = web_sys::window().unwrap().document().unwrap();
    let button = doc.create_element("button").unwrap();
    doc.body().unwrap().append_child(&button).unwrap();
    let trigger = l.connect_on(button.clone().into()).unwrap();
    trigger.stop();
    button
        .dispatch_event(&web_sys::Event::new("click").unwrap())
        .unwrap();
    sleep(50).await;
    assert_eq!(h.clients().length(), 0);
    button.remove();
}

#[wasm_bindgen_test]
async fn connect_when_visible() {
    let h = lazy_harness("vic");
    let l = lazy(&h, &[]);
    let doc = web_sys::window().unwrap().document().unwrap();
    let widget = doc.create_element("div").unwrap();
    widget
        .set_attribute(
            "style",
            "position:absolute;top:5000px;width:10px;height:10px",
        )
        .unwrap();
    doc.body().unwrap().append_child(&widget).unwrap();
    let trigger = l.connect_when_visible(widget.clone().into()).unwrap();
    sleep(200).await;
    assert_eq!(h.clients().length(), 0, "off screen: no client");
    widget
        .set_attribute("style", "position:absolute;top:0;width:10px;height:10px")
        .unwrap();
    let mut waited = 0;
    while h.clients().length() == 0 && waited < 3_000 {
        sleep(50).await;
        waited += 50;
    }
    assert_eq!(h.clients().length(), 1);
    assert!(trigger.done());
    JsFuture::from(l.shutdown()).await.unwrap();
    widget.remove();
}

#[wasm_bindgen_test]
async fn lazy_with_tracker_watches_and_eager_if_counted() {
    clear_store();
    let url = bucket("lazytrack");
    let t = tracker(&url, &[]);
    let tracker_js = tracker_as_js(t);
    let h = lazy_harness("wes");
    let l = lazy(&h, &[("tracker", tracker_js.clone())]);
    let client: FakeClient = JsFuture::from(l.get()).await.unwrap().unchecked_into();
    client.connect();
    let flush_fn: Function = get(&tracker_js, "flush").unchecked_into();
    JsFuture::from(Promise::from(flush_fn.call0(&tracker_js).unwrap()))
        .await
        .unwrap();
    let got = attempts(&url).await;
    assert_eq!(got.len(), 1);
    assert_eq!(
        text(&got[0].1, "identity"),
        "wes",
        "identity from the token getToken gave"
    );
    JsFuture::from(l.shutdown()).await.unwrap();
    assert_eq!(
        client.total_listeners(),
        0,
        "the watch stopped with shutdown"
    );

    // Counted this month already: connecting at once costs nothing more.
    let h2 = lazy_harness("wes");
    let eager = lazy(
        &h2,
        &[
            ("tracker", tracker_js.clone()),
            ("identity", "wes".into()),
            ("eagerIfCounted", true.into()),
        ],
    );
    sleep(100).await;
    assert_eq!(h2.clients().length(), 1);
    JsFuture::from(eager.shutdown()).await.unwrap();
    let h3 = lazy_harness("xena");
    let not_counted = lazy(
        &h3,
        &[
            ("tracker", tracker_js),
            ("identity", "xena".into()),
            ("eagerIfCounted", true.into()),
        ],
    );
    sleep(100).await;
    assert_eq!(h3.clients().length(), 0);
    JsFuture::from(not_counted.shutdown()).await.unwrap();
}

// ---- found in review: re-entrancy and shutdown races ---------------------------------

#[wasm_bindgen_test]
async fn stop_from_the_apps_own_handler_during_emit_does_not_throw() {
    clear_store();
    let url = bucket("reentrant");
    let t = tracker(&url, &[]);
    let client = FakeClient::new("", "3.0.1");
    // The app's listener comes first and stops the watch when connected. Node's emit calls
    // a copy of the listener list, so ours is still called in that same emit.
    let slot: std::rc::Rc<std::cell::RefCell<Option<mau_beacon::Watch>>> = Default::default();
    let s = slot.clone();
    let stopper = Closure::<dyn FnMut(JsValue)>::new(move |state: JsValue| {
        if state.as_string().as_deref() == Some("connected") {
            if let Some(w) = s.borrow().as_ref() {
                w.stop();
            }
        }
    });
    client.on("connectionStateChanged", stopper.as_ref().unchecked_ref());
    *slot.borrow_mut() = Some(
        t.watch(client.clone().into(), Some(token_opts("olive")))
            .unwrap(),
    );
    client.set_state("connecting");
    assert_eq!(
        emit_catching(&client, "connectionStateChanged", &"connected".into()),
        None
    );
    sleep(20).await;
    assert_eq!(
        client.listener_count("connectionStateChanged"),
        1,
        "only the app's own listener"
    );
    assert_eq!(
        num(&t.stats(), "connectsSeen"),
        0.0,
        "stopped before our listener ran"
    );
    drop(stopper);
}

#[wasm_bindgen_test]
async fn a_refresh_under_way_does_not_revive_a_shut_down_client() {
    let h = lazy_harness("pia");
    let l = lazy(&h, &[]);
    let client: FakeClient = JsFuture::from(l.get()).await.unwrap().unchecked_into();
    client.connect();
    client.initialize();
    h.set_token_delay_ms(150);
    client.emit_event("tokenAboutToExpire");
    sleep(20).await;
    JsFuture::from(l.shutdown()).await.unwrap();
    sleep(300).await;
    assert_eq!(h.token_calls(), 2, "the refresh had started");
    assert_eq!(
        client.update_token_calls().length(),
        0,
        "but never reached the closed client"
    );
}

#[wasm_bindgen_test]
async fn shutdown_during_a_token_fetch_is_bounded_and_creates_nothing() {
    let h = lazy_harness("quentin");
    h.set_hang_tokens(true);
    let l = lazy(&h, &[("shutdownTimeoutMs", 100.into())]);
    let pending = l.get();
    sleep(20).await;
    let start = js_sys::Date::now();
    JsFuture::from(l.shutdown()).await.unwrap();
    assert!(js_sys::Date::now() - start < 1_000.0, "bounded");
    h.set_hang_tokens(false);
    drop(pending);
    sleep(50).await;
    assert_eq!(h.clients().length(), 0);

    // A token arriving after shutdown creates no client either.
    let h = lazy_harness("quentin");
    h.set_token_delay_ms(100);
    let l = lazy(&h, &[]);
    let pending = l.get();
    sleep(20).await;
    JsFuture::from(l.shutdown()).await.unwrap();
    assert!(JsFuture::from(pending).await.is_err());
    assert_eq!(h.clients().length(), 0, "no client made after shutdown");
}

#[wasm_bindgen_test]
async fn a_tracker_that_cannot_watch_does_not_cost_the_chat() {
    let h = lazy_harness("ravi");
    let errors = Array::new();
    let on_error = Function::new_with_args("e", "this.push(e.message)").bind0(&errors);
    let broken = obj(&[(
        "watch",
        Function::new_no_args("throw new Error('tracker freed')").into(),
    )]);
    let l = lazy(&h, &[("tracker", broken), ("onError", on_error.into())]);
    let client: FakeClient = JsFuture::from(l.get())
        .await
        .expect("still a client")
        .unchecked_into();
    assert_eq!(client.shutdown_calls(), 0);
    assert_eq!(errors.length(), 1);
    assert!(errors.get(0).as_string().unwrap().contains("tracker freed"));
    JsFuture::from(l.shutdown()).await.unwrap();
}

#[wasm_bindgen_test]
async fn a_failed_refresh_keeps_a_connected_client() {
    let h = lazy_harness("sia");
    let l = lazy(&h, &[("onError", Function::new_no_args("").into())]);
    let client: FakeClient = JsFuture::from(l.get()).await.unwrap().unchecked_into();
    client.connect();
    client.initialize();
    h.set_fail_tokens(1);
    client.emit_event("tokenAboutToExpire");
    sleep(100).await;
    let again = JsFuture::from(l.get()).await.unwrap();
    assert_eq!(
        again,
        JsValue::from(client.clone()),
        "same client: it is still connected"
    );
    assert_eq!(h.clients().length(), 1);
    JsFuture::from(l.shutdown()).await.unwrap();
}

#[wasm_bindgen_test]
async fn a_trigger_whose_connect_failed_stays_armed() {
    let h = lazy_harness("tara");
    h.set_fail_tokens(1);
    let l = lazy(&h, &[("onError", Function::new_no_args("").into())]);
    let doc = web_sys::window().unwrap().document().unwrap();
    let button = doc.create_element("button").unwrap();
    doc.body().unwrap().append_child(&button).unwrap();
    let trigger = l.connect_on(button.clone().into()).unwrap();
    button
        .dispatch_event(&web_sys::Event::new("click").unwrap())
        .unwrap();
    sleep(100).await;
    assert!(
        !trigger.done(),
        "still armed after the token service failed"
    );
    assert_eq!(h.clients().length(), 0);
    button
        .dispatch_event(&web_sys::Event::new("click").unwrap())
        .unwrap();
    sleep(100).await;
    assert!(trigger.done());
    assert_eq!(h.clients().length(), 1);
    JsFuture::from(l.shutdown()).await.unwrap();
    button.remove();
}

#[wasm_bindgen_test]
fn timer_values_past_what_browsers_take_are_refused() {
    let config = obj(&[
        ("collectorUrl", "https://c.example/v1".into()),
        ("identityTimeoutMs", 3e9.into()),
    ]);
    let message = error_message(MauTracker::new(config).expect_err("too long"));
    assert!(message.contains("`identityTimeoutMs`"), "{message}");
}

// ---- apps that manage the client themselves -------------------------------------------

#[wasm_bindgen_test]
async fn remove_all_listeners_is_noticed_reattached_and_reported_once() {
    clear_store();
    let url = bucket("removeall");
    let (errors, on_error) = error_sink();
    let t = tracker(&url, &[("onError", on_error), ("dedupe", "none".into())]);
    let client = FakeClient::new("", "3.0.1");
    let watch = t
        .watch(client.clone().into(), Some(token_opts("rae")))
        .unwrap();
    client.remove_all_listeners();
    assert_eq!(
        client.total_listeners(),
        0,
        "the app's call removed ours too"
    );
    sleep(10).await;
    assert_eq!(
        client.listener_count("connectionStateChanged"),
        1,
        "attached again"
    );
    assert_eq!(
        client.listener_count("removeListener"),
        1,
        "and still guarded"
    );
    assert_eq!(errors.length(), 1);
    assert_eq!(text(&errors.get(0), "code"), "listeners_removed");
    assert!(error_message(errors.get(0)).contains("removeAllListeners"));
    client.connect();
    flush(&t).await;
    assert_eq!(
        attempts(&url).await.len(),
        1,
        "a connect after removeAllListeners still beacons"
    );

    // Again: still put back, reported only once.
    client.remove_all_listeners();
    sleep(10).await;
    client.set_state("disconnected");
    client.connect();
    flush(&t).await;
    assert_eq!(attempts(&url).await.len(), 2);
    assert_eq!(errors.length(), 1, "reported once");
    watch.stop();
    sleep(10).await;
    assert_eq!(
        client.total_listeners(),
        0,
        "stop() is not mistaken for a removal"
    );
    assert_eq!(errors.length(), 1);
}

fn tracker_as_js(t: MauTracker) -> JsValue {
    // Hand the tracker to LazyClient as JS would: through its JS wrapper.
    let holder = obj(&[]);
    Reflect::set(&holder, &"t".into(), &JsValue::from(t)).unwrap();
    get(&holder, "t")
}

#[wasm_bindgen_test]
async fn refresh_left_to_the_app_and_a_replacement_client() {
    clear_store();
    let url = bucket("replace");
    let tracker_js = tracker_as_js(tracker(&url, &[("dedupe", "none".into())]));
    let h = lazy_harness("yara");
    let l = lazy(
        &h,
        &[
            ("tracker", tracker_js.clone()),
            ("refreshToken", false.into()),
        ],
    );
    let first: FakeClient = JsFuture::from(l.get()).await.unwrap().unchecked_into();
    first.connect();
    first.initialize();
    assert_eq!(
        first.listener_count("tokenAboutToExpire") + first.listener_count("tokenExpired"),
        0
    );
    first.emit_event("tokenAboutToExpire");
    first.expire(20);
    sleep(100).await;
    assert_eq!(
        (h.token_calls(), first.update_token_calls().length()),
        (1, 0),
        "the app refreshes, not LazyClient"
    );

    // The app's own refresh made a new client: hand it over.
    let second = FakeClient::new("yara", "3.0.1");
    l.replace_client(second.clone().into(), Some(make_token("yara".into())))
        .unwrap();
    assert_eq!(
        first.total_listeners(),
        0,
        "the old client is no longer watched"
    );
    assert_eq!(first.shutdown_calls(), 0, "nor shut down: it is the app's");
    assert_eq!(
        JsFuture::from(l.get()).await.unwrap(),
        JsValue::from(second.clone())
    );
    assert_eq!((l.clients_created(), h.clients().length()), (1, 1));
    second.connect();
    let flush_fn: Function = get(&tracker_js, "flush").unchecked_into();
    JsFuture::from(Promise::from(flush_fn.call0(&tracker_js).unwrap()))
        .await
        .unwrap();
    let got = attempts(&url).await;
    assert_eq!(
        got.len(),
        2,
        "the first client's connect and the replacement's"
    );
    assert_eq!(text(&got[1].1, "identity"), "yara");

    assert!(
        l.replace_client(JsValue::from(1), None).is_err(),
        "not a client"
    );
    JsFuture::from(l.shutdown()).await.unwrap();
    assert_eq!((second.shutdown_calls(), second.total_listeners()), (1, 0));
    let after = l.replace_client(FakeClient::new("", "3.0.1").into(), None);
    assert!(error_message(after.expect_err("closed")).contains("shut down"));
}

#[wasm_bindgen_test]
async fn lazy_client_listeners_come_back_after_remove_all_listeners() {
    let h = lazy_harness("zoe");
    let (errors, on_error) = error_sink();
    let l = lazy(&h, &[("onError", on_error)]);
    let client: FakeClient = JsFuture::from(l.get()).await.unwrap().unchecked_into();
    client.connect();
    client.initialize();
    let attached = client.total_listeners();
    client.remove_all_listeners();
    sleep(10).await;
    assert_eq!(
        client.total_listeners(),
        attached,
        "every listener put back"
    );
    assert_eq!(errors.length(), 1);
    assert_eq!(text(&errors.get(0), "code"), "listeners_removed");
    client.emit_event("tokenAboutToExpire");
    sleep(100).await;
    assert_eq!(
        client.update_token_calls().length(),
        1,
        "token refresh still runs"
    );
    JsFuture::from(l.shutdown()).await.unwrap();
    assert_eq!(client.total_listeners(), 0);
    assert_eq!(errors.length(), 1, "shutdown is not mistaken for a removal");
}
