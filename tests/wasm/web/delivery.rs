//! Delivery: retries, Retry-After, drops, replay by the next page, storage upgrades and failures.

use super::*;

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
    let keys: Vec<String> = stored_keys().iter().filter_map(|k| k.as_string()).collect();
    assert_eq!(keys.len(), 2, "the month mark and the tombstone: {keys:?}");
    assert!(keys.iter().any(|k| k.contains(":done:")), "{keys:?}");
    assert!(keys.iter().any(|k| k.contains(":counted:")), "{keys:?}");
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
    let keys: Vec<String> = stored_keys().iter().filter_map(|k| k.as_string()).collect();
    assert!(
        keys.len() == 1 && keys[0].contains(":done:"),
        "only the tombstone that tells other tabs: {keys:?}"
    );
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
    let keys: Vec<String> = stored_keys().iter().filter_map(|k| k.as_string()).collect();
    assert!(keys.iter().all(|k| !k.contains(":q:")), "{keys:?}");
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
    // A first connect of the month is counted under a lock shared by the profile's tabs, a
    // little later; the flush waits for it, then delivers from memory.
    let stats = flush(&t).await;
    break_storage(false);
    assert_eq!(text(&stats, "storage"), "memory");
    assert!(!text(&stats, "storageError").is_empty());
    assert_eq!(num(&stats, "queued"), 1.0, "kept in memory");
    assert_eq!(num(&stats, "delivered"), 1.0, "from memory");
    assert_eq!(attempts(&url).await.len(), 1);
    watch.stop();
}
