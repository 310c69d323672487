//! LazyClient: one creation, token refresh, failed clients replaced, triggers, shutdown and its state.

use super::*;

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

/// `shutdown()` called from `onStateChange("ready")` wins: the waiting `get()` rejects as
/// after any shutdown, and the client just made is shut down and let go.
#[wasm_bindgen_test]
async fn shutdown_from_on_state_change_ready_wins() {
    let h = lazy_harness("tess");
    let cell: std::rc::Rc<std::cell::OnceCell<LazyClient>> = Default::default();
    let in_callback = cell.clone();
    let on_state = Closure::<dyn Fn(JsValue)>::new(move |s: JsValue| {
        if s.as_string().as_deref() == Some("ready") {
            let _ = in_callback.get().expect("the LazyClient").shutdown();
        }
    });
    let l = cell.get_or_init(|| lazy(&h, &[("onStateChange", on_state.as_ref().clone())]));
    let err = JsFuture::from(l.get())
        .await
        .expect_err("shut down as it connected");
    assert_eq!(text(&err, "code"), "shut_down");
    assert_eq!(l.state(), "closed");
    let client: FakeClient = h.clients().get(0).unchecked_into();
    assert_eq!((h.clients().length(), client.shutdown_calls()), (1, 1));
    assert_eq!(client.total_listeners(), 0);
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
