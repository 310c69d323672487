//! Bad input: config errors and MauBeaconError codes, identities the collector would refuse, unreadable tokens.

use super::*;

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
