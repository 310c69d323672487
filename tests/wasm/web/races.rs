//! Found in review: re-entrancy and shutdown races.

use super::*;

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
