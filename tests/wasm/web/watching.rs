//! Watching a client: which connects beacon, whose identity, and listeners left behind.

use super::*;

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
