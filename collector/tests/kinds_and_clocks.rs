//! Over real HTTP on both backends: `still_connected` beacons count as MAUs but are
//! reported apart, and a device clock hours off either way lands the event at the same
//! corrected time and month.

#[macro_use]
mod common;
use common::*;
use serde_json::{json, Value};
use time::format_description::well_known::Rfc3339;
use time::{Duration, OffsetDateTime};

fn start(db: &TestDb) -> Server {
    Server::start(db, &["--admin-token", TOKEN])
}

fn still(identity: &str, event_id: &str) -> Value {
    let mut b = beacon(identity, event_id);
    b["kind"] = json!("still_connected");
    b
}

fn by_identity(server: &Server, month: &str) -> Vec<(String, String, i64)> {
    let r = server.get_admin(&format!("/v1/months/{month}/identities"));
    assert_eq!(r.status, 200, "{}", r.body);
    r.json()
        .as_array()
        .unwrap()
        .iter()
        .map(|row| {
            (
                row["identity"].as_str().unwrap().to_owned(),
                row["sources"].as_str().unwrap().to_owned(),
                row["connects"].as_i64().unwrap(),
            )
        })
        .collect()
}

fn still_connected_counts_and_is_reported_apart(db: &TestDb) {
    let server = start(db);
    // alice connected this month and was also still connected at its start; bob only the latter.
    let batch = json!([
        beacon("alice", "c1"),
        still("alice", "s1"),
        still("bob", "s2"),
    ]);
    assert_eq!(server.post(&batch.to_string()).status, 200);
    // A retry of bob's beacon is stored once.
    let mut retry = still("bob", "s2");
    retry["attempt"] = json!(2);
    assert_eq!(server.post(&retry.to_string()).status, 200);

    let month = server.month();
    assert_eq!(
        by_identity(&server, &month),
        vec![
            ("alice".into(), "sdk_connect;sdk_still_connected".into(), 1),
            ("bob".into(), "sdk_still_connected".into(), 0),
        ]
    );
    let report = server
        .get_admin(&format!("/v1/months/{month}/report"))
        .json();
    assert_eq!(report["seen"], 2, "{report}");
    assert_eq!(report["connects"], 1, "{report}");
    assert_eq!(report["still_connected_only"], 1, "{report}");
    assert_eq!(report["by_source"]["sdk_still_connected"], 2, "{report}");

    let out = cli(&["report", "--month", &month, "--db", db.arg.as_str()]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("Only still connected:       1"), "{text}");
    assert!(text.contains("sdk_still_connected only"), "{text}");
    let events = db.scalar("SELECT count(*) FROM events WHERE kind = 'still_connected'");
    assert_eq!(events, 2);
}

fn iso(t: OffsetDateTime) -> String {
    mau_collector::wire::format_time(t)
}

fn skewed_clocks_land_at_the_same_corrected_time(db: &TestDb) {
    let server = start(db);
    // Three devices saw a connect 2 s before sending: one on time, one 3 h ahead, one 3 h
    // behind. Near a month's edge, ±3 h on the device would put the device's own month off.
    let now = OffsetDateTime::now_utc();
    let mut sent = Vec::new();
    for (id, skew) in [("on-time", 0), ("ahead", 3), ("behind", -3)] {
        let device_now = now + Duration::hours(skew);
        let mut b = beacon(id, &format!("clock-{id}"));
        let occurred = device_now - Duration::seconds(2);
        b["occurred_at"] = json!(iso(occurred));
        b["sent_at"] = json!(iso(device_now));
        b["month"] = json!(mau_collector::wire::Month::of(occurred).to_string());
        sent.push(b);
    }
    let before = OffsetDateTime::now_utc();
    for b in &sent {
        assert_eq!(server.post(&b.to_string()).status, 200);
    }
    let after = OffsetDateTime::now_utc();
    let month = mau_collector::wire::Month::of(before - Duration::seconds(2)).to_string();
    let r = server.get_admin(&format!("/v1/months/{month}/identities"));
    let rows = r.json();
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), 3, "{rows:?}");
    for row in rows {
        let t = OffsetDateTime::parse(row["first_seen"].as_str().unwrap(), &Rfc3339).unwrap();
        // received − 2 s, on the collector's clock, whatever the device said.
        assert!(
            t >= before - Duration::seconds(2) - Duration::milliseconds(1)
                && t <= after - Duration::seconds(2),
            "{row}"
        );
    }
}

both_backends!(
    still_connected_counts_and_is_reported_apart,
    skewed_clocks_land_at_the_same_corrected_time,
);
