//! Apps that manage the client themselves: removeAllListeners, refreshToken false, replaceClient.

use super::*;

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

/// One event's listeners removed (`removeAllListeners("connectionStateChanged")`) leaves the
/// guard and the LazyClient's other listeners in place: re-attaching those must not announce
/// removals that start another round (the page would spin in microtasks and never get here).
#[wasm_bindgen_test]
async fn lazy_client_survives_one_events_listeners_removed() {
    let h = lazy_harness("una");
    let (errors, on_error) = error_sink();
    let l = lazy(&h, &[("onError", on_error)]);
    let client: FakeClient = JsFuture::from(l.get()).await.unwrap().unchecked_into();
    let attached = client.total_listeners();
    client.remove_all_listeners_of("connectionStateChanged");
    sleep(10).await;
    assert_eq!(
        client.total_listeners(),
        attached,
        "every listener put back"
    );
    assert_eq!(errors.length(), 1, "reported once");
    assert_eq!(text(&errors.get(0), "code"), "listeners_removed");
    JsFuture::from(l.shutdown()).await.unwrap();
    assert_eq!(client.total_listeners(), 0);
}
