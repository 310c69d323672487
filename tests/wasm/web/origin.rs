//! Where a client was made: `context` from the app, `reason` from what made the client,
//! on every beacon and in the stored record.
use super::*;

fn button() -> web_sys::Element {
    let doc = web_sys::window().unwrap().document().unwrap();
    let b = doc.create_element("button").unwrap();
    doc.body().unwrap().append_child(&b).unwrap();
    b
}

fn fire(target: &web_sys::Element, events: &[&str]) {
    for e in events {
        let event = web_sys::Event::new(e).unwrap();
        target.dispatch_event(&event).unwrap();
    }
}

/// `tracker.flush()` through the tracker's JS wrapper.
async fn flush_js(tracker: &JsValue) {
    let flush_fn: Function = get(tracker, "flush").unchecked_into();
    JsFuture::from(Promise::from(flush_fn.call0(tracker).unwrap()))
        .await
        .unwrap();
}

/// Waits for the lazy client's first client, connects it and flushes the tracker.
async fn connect_created(h: &Harness, tracker: &JsValue) {
    let mut waited = 0;
    while h.clients().length() == 0 && waited < 3_000 {
        sleep(25).await;
        waited += 25;
    }
    let client: FakeClient = h.clients().get(0).unchecked_into();
    client.connect();
    flush_js(tracker).await;
}

/// Connects the lazy client's first client and returns the beacon it sent.
async fn beacon_of(h: &Harness, tracker: &JsValue, url: &str) -> JsValue {
    connect_created(h, tracker).await;
    let got = wait_attempts(url, 1, 3_000).await;
    assert_eq!(got.len(), 1, "{url}");
    got[0].1.clone()
}

#[wasm_bindgen_test]
async fn each_trigger_names_its_reason_and_the_context_goes_along() {
    clear_store();
    // (identity, how the client is made, the reason its beacon must carry)
    let cases: [(&str, &[&str], &str); 4] = [
        // A mouse click focuses the button first: still a click.
        ("ori-click", &["pointerdown", "focusin", "click"], "click"),
        ("ori-focus", &["focusin"], "focus"),
        ("ori-key", &["keydown"], "key"),
        ("ori-get", &[], "explicit"),
    ];
    for (identity, events, reason) in cases {
        let url = bucket(identity);
        let t = tracker_as_js(tracker(&url, &[]));
        let h = lazy_harness(identity);
        let l = lazy(
            &h,
            &[("tracker", t.clone()), ("context", "support-widget".into())],
        );
        let b = button();
        let _trigger = l.connect_on(b.clone().into()).unwrap();
        if events.is_empty() {
            let _ = l.get();
        }
        fire(&b, events);
        let beacon = beacon_of(&h, &t, &url).await;
        assert_eq!(text(&beacon, "reason"), reason, "{identity}");
        assert_eq!(text(&beacon, "context"), "support-widget", "{identity}");
        JsFuture::from(l.shutdown()).await.unwrap();
        b.remove();
    }
}

#[wasm_bindgen_test]
async fn visible_and_replaced_clients() {
    clear_store();
    let doc = web_sys::window().unwrap().document().unwrap();
    // Visible: the widget scrolled into view.
    let url = bucket("ori-visible");
    let t = tracker_as_js(tracker(&url, &[]));
    let h = lazy_harness("ori-visible");
    let l = lazy(
        &h,
        &[("tracker", t.clone()), ("context", "help/panel".into())],
    );
    let widget = doc.create_element("div").unwrap();
    widget
        .set_attribute("style", "position:absolute;top:0;width:10px;height:10px")
        .unwrap();
    doc.body().unwrap().append_child(&widget).unwrap();
    let _trigger = l.connect_when_visible(widget.clone().into()).unwrap();
    let beacon = beacon_of(&h, &t, &url).await;
    assert_eq!(text(&beacon, "reason"), "visible");
    assert_eq!(text(&beacon, "context"), "help/panel");
    JsFuture::from(l.shutdown()).await.unwrap();
    widget.remove();

    // A client the app made and handed over: `app`; no context given, none sent.
    let url = bucket("ori-replaced");
    let t = tracker_as_js(tracker(&url, &[("dedupe", "none".into())]));
    let h = lazy_harness("ori-replaced");
    let l = lazy(&h, &[("tracker", t.clone())]);
    let own = FakeClient::new("ori-replaced", "3.0.1");
    l.replace_client(own.clone().into(), Some(make_token("ori-replaced".into())))
        .unwrap();
    own.connect();
    flush_js(&t).await;
    let got = wait_attempts(&url, 1, 3_000).await;
    assert_eq!(text(&got[0].1, "reason"), "app");
    assert!(get(&got[0].1, "context").is_undefined(), "no context given");
    JsFuture::from(l.shutdown()).await.unwrap();
}

#[wasm_bindgen_test]
async fn watch_context_and_reason_options() {
    clear_store();
    let url = bucket("ori-watch");
    let t = tracker(&url, &[("dedupe", "none".into())]);
    let plain = FakeClient::new("", "3.0.1");
    let labelled = FakeClient::new("", "3.0.1");
    let _a = t
        .watch(plain.clone().into(), Some(token_opts("ori-a")))
        .unwrap();
    let opts = obj(&[("identity", "ori-b".into()), ("context", "inbox".into())]);
    let _b = t.watch(labelled.clone().into(), Some(opts)).unwrap();
    plain.connect();
    labelled.connect();
    flush(&t).await;
    let got = wait_attempts(&url, 2, 3_000).await;
    let by = |id: &str| {
        got.iter()
            .map(|(_, b)| b.clone())
            .find(|b| text(b, "identity") == id)
            .unwrap()
    };
    assert_eq!(text(&by("ori-a"), "reason"), "app");
    assert!(get(&by("ori-a"), "context").is_undefined());
    assert_eq!(text(&by("ori-b"), "reason"), "app");
    assert_eq!(text(&by("ori-b"), "context"), "inbox");

    // Malformed: refused at once, naming the field.
    for bad in [
        JsValue::from(""),
        JsValue::from("two words"),
        JsValue::from("x".repeat(65)),
        JsValue::from(7),
    ] {
        let e = t
            .watch(
                FakeClient::new("", "3.0.1").into(),
                Some(obj(&[("context", bad.clone())])),
            )
            .unwrap_err();
        assert_eq!(text(&e, "code"), "invalid_config", "{bad:?}");
        assert_eq!(text(&e, "field"), "context", "{bad:?}");
        let h = lazy_harness("ori-bad");
        let config = obj(&[
            ("createClient", get(&h, "createClient")),
            ("getToken", get(&h, "getToken")),
            ("context", bad.clone()),
        ]);
        let e = LazyClient::new(config).unwrap_err();
        assert_eq!(text(&e, "field"), "context", "{bad:?}");
        assert!(error_message(e).contains("`context`"));
    }
    let e = t
        .watch(
            FakeClient::new("", "3.0.1").into(),
            Some(obj(&[("reason", "hover".into())])),
        )
        .unwrap_err();
    assert_eq!(text(&e, "field"), "reason");
}

#[wasm_bindgen_test]
async fn a_retry_after_a_reload_carries_context_and_reason() {
    clear_store();
    // "Page 1": the collector is unreachable; the beacon stays stored.
    let first = tracker(
        "http://127.0.0.1:9/b/unreachable",
        &[("retry", obj(&[("baseMs", 60_000.into())]))],
    );
    let first_js = tracker_as_js(first);
    let h = lazy_harness("ori-reload");
    let l = lazy(
        &h,
        &[("tracker", first_js.clone()), ("context", "inbox".into())],
    );
    let b = button();
    let _trigger = l.connect_on(b.clone().into()).unwrap();
    fire(&b, &["keydown"]);
    connect_created(&h, &first_js).await;
    JsFuture::from(l.shutdown()).await.unwrap();
    b.remove();
    // The page goes: its tracker with it.
    let free: Function = get(&first_js, "free").unchecked_into();
    free.call0(&first_js).unwrap();
    let storage = web_sys::window().unwrap().local_storage().unwrap().unwrap();
    let record = stored_keys()
        .iter()
        .filter_map(|k| k.as_string())
        .find(|k| k.contains(":q:"))
        .and_then(|k| storage.get_item(&k).unwrap())
        .expect("the beacon is stored");
    assert!(record.contains(r#""context":"inbox""#), "{record}");
    assert!(record.contains(r#""reason":"key""#), "{record}");

    // "Page 2": a new tracker sends what page 1 stored, with both fields.
    let url = bucket("ori-reload");
    let _second = tracker(&url, &[]);
    let got = wait_attempts(&url, 1, 3_000).await;
    assert_eq!(got.len(), 1);
    assert_eq!(text(&got[0].1, "identity"), "ori-reload");
    assert_eq!(text(&got[0].1, "context"), "inbox");
    assert_eq!(text(&got[0].1, "reason"), "key");
    assert!(num(&got[0].1, "attempt") >= 2.0);
}
