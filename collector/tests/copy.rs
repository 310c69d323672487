//! `mau-collector copy`: a month with every source (SDK beacons with a `still_connected`
//! one, tokens, webhooks, Event Streams, REST sync, a billed count, an erasure) goes from
//! SQLite to the backend under test and back to a new SQLite file; each target's export
//! and report equal the source's, a rerun copies nothing new, a copy killed with SIGKILL
//! half-way is finished by running it again, and a target with a newer schema is refused.

#[macro_use]
mod common;
use common::*;
use mau_collector::store::{Db, Observation, Options, Sighting, Store, SubjectKind, TokenRecord};
use serde_json::json;
use std::io::Read;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};
use time::OffsetDateTime;

/// Fills a SQLite store: beacons through the HTTP endpoint, the rest through the store.
fn fill(src: &TestDb) -> String {
    let server = Server::start(src, &["--admin-token", TOKEN]);
    let mut still = beacon("dora", "e6");
    still["kind"] = json!("still_connected");
    // Contexts: alice connects from two, the earlier (by the delay her device measured)
    // arriving second; bob's beacon is an older SDK's, without one.
    let from = |mut b: serde_json::Value, context: &str, reason: &str, occurred: &str| {
        b["context"] = json!(context);
        b["reason"] = json!(reason);
        b["occurred_at"] = json!(occurred);
        b
    };
    let beacons = json!([
        from(
            beacon("alice", "e1"),
            "inbox",
            "app",
            "2026-11-24T20:08:50.000Z"
        ),
        from(
            beacon("alice", "e2"),
            "support-widget",
            "click",
            "2026-11-24T20:08:40.000Z"
        ),
        beacon("bob", "e3"),
        beacon("erin", "e4"),
        beacon("carol/x y+z", "e5"),
        still,
    ]);
    assert_eq!(server.post(&beacons.to_string()).status, 200);
    let month = server.month();
    drop(server);
    let db: Db = src.arg.parse().unwrap();
    rt().block_on(async {
        let store = Store::open(&db, &Options::default()).await.unwrap();
        let now = OffsetDateTime::now_utc();
        let token = |key: &str, identity: &str| TokenRecord {
            key: key.into(),
            identity: identity.into(),
            issued_at: now,
            expires_at: (key == "id:t1").then(|| now + time::Duration::hours(1)),
            received_at: now,
        };
        let tokens = vec![
            token("id:t1", "alice"),
            token("id:t2", "frank"),
            token("id:t3", "erin"),
        ];
        store.log_tokens(tokens).await.unwrap();
        let seen = |kind, subject: &str, source: &str, at| Sighting {
            kind,
            subject: subject.into(),
            source: source.into(),
            at,
        };
        let earlier = now - time::Duration::days(62);
        let observations = vec![
            Observation {
                key: None,
                sightings: vec![
                    seen(
                        SubjectKind::Identity,
                        "alice",
                        "webhook:onMessageAdded",
                        now,
                    ),
                    seen(
                        SubjectKind::Address,
                        "+14155550100",
                        "webhook:onMessageAdded",
                        now,
                    ),
                ],
            },
            Observation {
                key: Some("EV1".into()),
                sightings: vec![seen(
                    SubjectKind::Identity,
                    "gina",
                    "event_stream:message",
                    now,
                )],
            },
            Observation {
                key: Some("IM1".into()),
                sightings: vec![
                    seen(SubjectKind::Identity, "bob", "rest_sync", now),
                    seen(SubjectKind::Address, "+14155550111", "rest_sync", now),
                    seen(SubjectKind::Identity, "erin", "rest_sync", earlier),
                ],
            },
        ];
        store.observe(observations).await.unwrap();
        let m = mau_collector::month::Month::parse(&month).unwrap();
        store.set_billed(m, 12, "typed").await.unwrap();
        let erased = store.forget(SubjectKind::Identity, "erin").await.unwrap();
        assert_eq!(erased.months.len(), 2, "{erased:?}");
    });
    month
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// The month's export (CSV) and report (JSON) as the CLI prints them.
fn views(db: &str, month: &str) -> (String, String) {
    let run = |args: &[&str]| {
        let out = cli(args);
        assert!(out.status.success(), "{args:?}: {}", text(&out.stderr));
        text(&out.stdout)
    };
    let report = run(&["report", "--db", db, "--month", month, "--format", "json"]);
    let mut report: serde_json::Value = serde_json::from_str(&report).unwrap();
    // The forecast is made for the moment of each report (`as_of`); its inputs, the days
    // and the months, are compared.
    report.as_object_mut().unwrap().remove("forecast");
    (
        run(&["export", "--db", db, "--month", month]),
        serde_json::to_string_pretty(&report).unwrap(),
    )
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn copy_cmd(from: &str, to: &str, batch: &str) -> Command {
    let mut c = Command::new(BIN);
    c.args(["copy", "--from", from, "--to", to])
        .env("MAU_COLLECTOR_COPY_BATCH", batch)
        .env_remove("MAU_COLLECTOR_DB");
    c
}

fn copy(from: &str, to: &str, batch: &str) -> Output {
    let out = copy_cmd(from, to, batch).output().unwrap();
    assert!(
        out.status.success(),
        "copy failed: {}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    out
}

/// The rows each table line of a copy's output says were new or changed.
fn written(out: &Output) -> u64 {
    text(&out.stdout)
        .lines()
        .filter_map(|l| l.strip_suffix(" new or changed"))
        .map(|l| l.split_whitespace().last().unwrap().parse::<u64>().unwrap())
        .sum()
}

fn copies_both_ways_and_resumes(mid: &TestDb) {
    let src = TestDb::sqlite();
    let month = fill(&src);
    let want = views(&src.arg, &month);
    assert!(want.1.contains("\"erased\": 1"), "{}", want.1);
    assert!(
        want.1.contains("\"context\": \"support-widget\""),
        "{}",
        want.1
    );
    assert!(!want.0.contains("erin"), "{}", want.0);

    // SQLite to the backend under test, small batches.
    let out = copy(&src.arg, &mid.arg, "2");
    let shown = text(&out.stdout);
    assert!(shown.contains("every month equal"), "{shown}");
    assert!(!shown.contains("DIFFERENT"), "{shown}");
    assert!(written(&out) > 20, "{shown}");
    assert_eq!(views(&mid.arg, &month), want);
    assert_eq!(mid.scalar("SELECT count(*) FROM events"), 5);
    assert_eq!(mid.scalar("SELECT count(*) FROM delivery_keys"), 2);
    assert_eq!(mid.scalar("SELECT count(*) FROM erased"), 2);
    assert_eq!(mid.scalar("SELECT count(*) FROM subject_contexts"), 5);
    assert_eq!(
        mid.scalar(
            "SELECT count(*) FROM subject_contexts WHERE identity = 'alice'
             AND context = 'support-widget' AND reason = 'click'"
        ),
        1
    );
    // A rerun copies nothing new and still compares equal.
    let again = copy(&src.arg, &mid.arg, "3");
    assert_eq!(written(&again), 0, "{}", text(&again.stdout));
    assert_eq!(views(&mid.arg, &month), want);

    // Back to a new SQLite file, killed with SIGKILL after some batches, then rerun.
    let dst = TestDb::sqlite();
    let log = dst.dir.path().join("copy.log");
    let mut child = copy_cmd(&mid.arg, &dst.arg, "1")
        .env("MAU_COLLECTOR_COPY_PAUSE_MS", "100")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while std::fs::read_to_string(&log)
        .unwrap()
        .matches("written")
        .count()
        < 4
    {
        assert!(Instant::now() < deadline, "no progress");
        std::thread::sleep(Duration::from_millis(10));
    }
    child.kill().unwrap();
    let status = child.wait().unwrap();
    assert!(!status.success());
    let mut partial = String::new();
    std::fs::File::open(&log)
        .unwrap()
        .read_to_string(&mut partial)
        .unwrap();
    let events = dst.scalar("SELECT count(*) FROM events");
    assert!(
        (3..5).contains(&events),
        "{events} events after the kill: {partial}"
    );
    assert_eq!(dst.scalar("SELECT count(*) FROM sightings"), 0);
    let out = copy(&mid.arg, &dst.arg, "2");
    assert!(text(&out.stdout).contains("every month equal"));
    assert!(written(&out) > 15, "{}", text(&out.stdout));
    assert_eq!(views(&dst.arg, &month), want);
    assert_eq!(written(&copy(&mid.arg, &dst.arg, "5000")), 0);

    // The comparison fails when the target holds more than the source: more beacons from
    // a context, then one more subject.
    let differs = || {
        let out = copy_cmd(&mid.arg, &dst.arg, "50").output().unwrap();
        assert!(!out.status.success());
        assert!(
            text(&out.stdout).contains("DIFFERENT"),
            "{}",
            text(&out.stdout)
        );
        out
    };
    dst.execute("UPDATE subject_contexts SET beacons = beacons + 1 WHERE identity = 'alice'");
    differs();
    dst.execute(&format!(
        "INSERT INTO identities VALUES ('{month}', 'zed', '{month}-01T00:00:00.000Z',
            '{month}-01T00:00:00.000Z', 1)"
    ));
    let out = differs();
    assert!(
        text(&out.stderr).contains("1 month(s) differ"),
        "{}",
        text(&out.stderr)
    );

    // A target newer than this build is refused, and nothing is copied into it.
    dst.execute(
        "INSERT INTO schema_version (version, name, applied_at)
         VALUES (99, 'future', '2026-11-01T00:00:00.000Z')",
    );
    let out = copy_cmd(&src.arg, &dst.arg, "50").output().unwrap();
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("schema version 99 is newer"),
        "{}",
        text(&out.stderr)
    );
}

both_backends!(copies_both_ways_and_resumes);
