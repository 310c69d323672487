//! Signed tickets over real HTTP: with --require-ticket only beacons with a valid ticket
//! for their identity, unexpired at their event time, are stored; anything else is 401
//! `bad_ticket` and nothing of the request is stored.

#[macro_use]
mod common;
use common::*;
use mau_collector::ticket::mint;
use serde_json::{json, Value};

const SECRET: &str = "ticket-test-secret";

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn ticketed(identity: &str, event_id: &str, ticket: &str) -> Value {
    let mut b = beacon(identity, event_id);
    b["ticket"] = json!(ticket);
    b
}

/// `MM-DD` of the day `days` after 1 October (within October and November).
fn day_after_oct_1(days: u64) -> String {
    if days < 31 {
        format!("10-{:02}", days + 1)
    } else {
        format!("11-{:02}", days - 30)
    }
}

fn required_tickets_refuse_forgeries(db: &TestDb) {
    let server = Server::start(
        db,
        &[
            "--admin-token",
            TOKEN,
            "--ticket-secret",
            SECRET,
            "--require-ticket",
        ],
    );
    let good = mint(SECRET.as_bytes(), "alice", now() + 3600);
    let r = server.post(&ticketed("alice", "e1", &good).to_string());
    assert_eq!(r.status, 200, "{}", r.body);

    let forged = mint(b"guessed-secret", "mallory", now() + 3600);
    let expired = mint(SECRET.as_bytes(), "bob", now() - 60);
    for (body, what) in [
        (beacon("mallory", "m0"), "missing"),
        (ticketed("mallory", "m1", &good), "another identity's"),
        (ticketed("mallory", "m2", &forged), "forged"),
        (ticketed("bob", "m3", &expired), "expired"),
        (ticketed("mallory", "m4", "v1.123.abc"), "malformed"),
        (
            json!([
                ticketed("carol", "c1", &mint(SECRET.as_bytes(), "carol", now() + 60)),
                ticketed("mallory", "m5", &good)
            ]),
            "one bad in a batch",
        ),
    ] {
        let r = server.post(&body.to_string());
        assert_eq!(r.status, 401, "{what}: {}", r.body);
        assert_eq!(r.json()["code"], "bad_ticket", "{what}");
        assert_eq!(r.json()["field"], "ticket", "{what}");
    }
    // A ticket that expired after the event (the beacon was queued) is still good.
    let mut late = ticketed("dave", "d1", &mint(SECRET.as_bytes(), "dave", now() - 30));
    late["occurred_at"] = json!("2026-11-24T20:00:00.000Z");
    late["sent_at"] = json!("2026-11-24T20:01:00.000Z");
    assert_eq!(server.post(&late.to_string()).status, 200);

    let ids = stored_identities(&server);
    assert_eq!(ids, ["alice".to_owned(), "dave".to_owned()].into());
    assert_eq!(
        server.get_admin("/v1/stats").json()["refused"]["bad_ticket"],
        6
    );
    // The event time is the client's word, so an expired ticket still passes with a claimed
    // earlier event, but only within --max-backdate-days (35) of the receipt.
    let claim = |identity: &str, expired_days: u64, delay_days: u64| {
        let exp = now() - expired_days * 86_400;
        let mut b = ticketed(identity, identity, &mint(SECRET.as_bytes(), identity, exp));
        b["occurred_at"] = json!("2026-10-01T00:00:00.000Z");
        b["sent_at"] = json!(format!(
            "2026-{}T00:00:00.000Z",
            day_after_oct_1(delay_days)
        ));
        server.post(&b.to_string())
    };
    assert_eq!(claim("erin", 30, 31).status, 200, "within the window");
    let r = claim("frank", 40, 41);
    assert_eq!(r.status, 400, "{}", r.body);
    assert_eq!(r.json()["code"], "event_too_old");
}

fn optional_tickets_are_checked_when_present(db: &TestDb) {
    let server = Server::start(db, &["--admin-token", TOKEN, "--ticket-secret", SECRET]);
    assert_eq!(server.post(&beacon("plain", "p1").to_string()).status, 200);
    let forged = mint(b"nope", "eve", now() + 60);
    assert_eq!(
        server
            .post(&ticketed("eve", "e1", &forged).to_string())
            .status,
        401
    );
    assert_eq!(stored_identities(&server), ["plain".to_owned()].into());
}

both_backends!(
    required_tickets_refuse_forgeries,
    optional_tickets_are_checked_when_present
);

/// `serve` with `args` and the secret's env var set to `env` (or cleared): how it exited
/// and what it said, within 30 s (a collector that starts instead is killed and reported).
fn serve_refusal(args: &[&str], env: Option<&str>) -> (Option<i32>, String) {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("t.db");
    let mut cmd = std::process::Command::new(BIN);
    cmd.args(["serve", "--listen", "127.0.0.1:0", "--db"])
        .arg(&db)
        .args(args)
        .env_remove("MAU_COLLECTOR_REQUIRE_TICKET")
        .env_remove("MAU_COLLECTOR_TICKET_SECRET")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped());
    if let Some(v) = env {
        cmd.env("MAU_COLLECTOR_TICKET_SECRET", v);
    }
    let mut child = cmd.spawn().unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while child.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > deadline {
            child.kill().unwrap();
            child.wait().unwrap();
            panic!("serve {args:?} (env {env:?}) started instead of refusing");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn require_ticket_needs_a_secret() {
    let (code, err) = serve_refusal(&["--require-ticket"], None);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("--ticket-secret"), "{err}");
}

#[test]
fn an_empty_or_short_secret_is_refused_at_start() {
    let short = "too-short-secret"[..15].to_owned();
    for (args, env, says) in [
        (
            vec!["--require-ticket", "--ticket-secret", ""],
            None,
            "empty",
        ),
        (vec!["--require-ticket"], Some(""), ""),
        (
            vec!["--require-ticket", "--ticket-secret", &short],
            None,
            "15 bytes",
        ),
        (vec!["--require-ticket"], Some(short.as_str()), "15 bytes"),
        (vec!["--ticket-secret", ""], None, "empty"),
    ] {
        let (code, err) = serve_refusal(&args, env);
        assert!(
            matches!(code, Some(1 | 2)),
            "{args:?} env {env:?}: exit {code:?}\n{err}"
        );
        assert!(
            err.contains("--ticket-secret") && err.contains(says),
            "{args:?} env {env:?}: {err}"
        );
        assert!(!err.contains(&short), "the secret is repeated: {err}");
    }
}
