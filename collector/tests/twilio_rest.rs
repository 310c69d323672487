//! `twilio sync` and `report --twilio` against a local stand-in of Twilio's REST API
//! (tests/common/fake_twilio.rs): paging, a 429 with Retry-After, safe reruns, and the
//! billed count from Usage Records.

#[macro_use]
mod common;
use common::fake_twilio::{FakeTwilio, ACCOUNT, AUTH_TOKEN};
use common::*;
use mau_collector::month::Month;
use serde_json::Value;
use std::process::{Command, Output};

const MONTH: &str = "2026-10";

/// Runs the CLI with Twilio's credentials and the stand-in as both Twilio hosts.
fn twilio_cli(fake: &FakeTwilio, token: &str, args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .env_remove("MAU_COLLECTOR_DB")
        .env_remove("TWILIO_API_KEY")
        .env_remove("TWILIO_API_SECRET")
        .env("MAU_TWILIO_BASE_URL", &fake.url)
        .env("TWILIO_ACCOUNT_SID", ACCOUNT)
        .env("TWILIO_AUTH_TOKEN", token)
        .output()
        .expect("run mau-collector")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn sync(fake: &FakeTwilio, db: &TestDb) -> (String, String) {
    let out = twilio_cli(
        fake,
        AUTH_TOKEN,
        &["twilio", "sync", "--month", MONTH, "--db", &db.arg],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    (text(&out.stdout), text(&out.stderr))
}

fn sync_walks_pages_waits_out_a_429_and_reruns_safely(db: &TestDb) {
    let fake = FakeTwilio::start(Month::parse(MONTH).unwrap());
    let (stdout, stderr) = sync(&fake, db);
    eprintln!("{stderr}{stdout}"); // the sample in the README
    assert!(
        stderr.contains("twilio: 429 from /v1/Conversations?"),
        "{stderr}"
    );
    assert!(stderr.contains("retrying in 1.0 s"), "{stderr}");
    assert!(
        stderr
            .contains("conversations 3, participants in month 4, messages in month 6, subjects 5"),
        "{stderr}"
    );
    assert!(
        stdout.contains("3 conversations, 4 participants added and 6 messages in the month"),
        "{stdout}"
    );
    assert!(stdout.contains("1 rate-limit waits"), "{stdout}");
    assert!(
        stdout
            .contains("5 subjects recorded as rest_sync (3 chat identities, 2 channel addresses)"),
        "{stdout}"
    );
    let requests = fake.requests();
    // Paging: page 1 of the conversations asked twice (429, then served).
    assert_eq!(
        requests
            .iter()
            .filter(|r| *r == "GET /v1/Conversations page 1")
            .count(),
        2,
        "{requests:?}"
    );
    // Newest messages first: the walk stops at the first page older than the month...
    assert!(
        requests.contains(&"GET messages of CH1 page 2".to_owned()),
        "{requests:?}"
    );
    assert!(
        !requests.contains(&"GET messages of CH1 page 3".to_owned()),
        "{requests:?}"
    );
    // ...and a conversation begun after the month is not opened.
    assert!(!requests.iter().any(|r| r.contains("CH3")), "{requests:?}");

    let out = cli(&[
        "export", "--month", MONTH, "--format", "json", "--db", &db.arg,
    ]);
    let rows: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    let got: Vec<(&str, &str, &str)> = rows
        .iter()
        .map(|r| {
            (
                r["identity"].as_str().unwrap(),
                r["subject_kind"].as_str().unwrap(),
                r["sources"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("+14155550100", "address", "rest_sync"),
            ("alice", "identity", "rest_sync"),
            ("bob", "identity", "rest_sync"),
            ("old-timer", "identity", "rest_sync"),
            ("whatsapp:+14155550101", "address", "rest_sync"),
        ]
    );
    let hits = "SELECT CAST(sum(hits) AS BIGINT) FROM sightings";
    let before = (
        db.scalar(hits),
        db.scalar("SELECT count(*) FROM delivery_keys"),
    );
    // 4 participants added and 5 messages by people (not `system`) in the month.
    assert_eq!(before, (9, 9));
    let (again, _) = sync(&fake, db);
    assert!(
        again.contains("5 subjects recorded as rest_sync"),
        "{again}"
    );
    assert_eq!(
        (
            db.scalar(hits),
            db.scalar("SELECT count(*) FROM delivery_keys")
        ),
        before
    );

    let denied = twilio_cli(
        &fake,
        "wrong-token",
        &["twilio", "sync", "--month", MONTH, "--db", &db.arg],
    );
    assert!(!denied.status.success());
    let err = text(&denied.stderr);
    assert!(
        err.contains("Twilio answered 401") && err.contains("Authenticate"),
        "{err}"
    );
    assert!(
        !err.contains("wrong-token"),
        "the secret is never printed: {err}"
    );
}

fn report_reads_the_billed_count_from_usage_records(db: &TestDb) {
    let fake = FakeTwilio::start(Month::parse(MONTH).unwrap());
    sync(&fake, db);
    let report = |extra: &[&str]| {
        let mut args = vec!["report", "--month", MONTH, "--twilio", "--db", &db.arg];
        args.extend_from_slice(extra);
        let out = twilio_cli(&fake, AUTH_TOKEN, &args);
        assert!(out.status.success(), "{}", text(&out.stderr));
        (text(&out.stdout), text(&out.stderr))
    };
    let (t, err) = report(&[]);
    eprintln!("{t}"); // the sample in the README
    assert!(
        err.contains(&format!(
            "billed count 9 (usage_records:pchat-users) stored for {MONTH}"
        )),
        "{err}"
    );
    assert!(
        t.contains("Billed by Twilio:           9 (usage_records:pchat-users)"),
        "{t}"
    );
    assert!(t.contains("usage record pchat-users"), "{t}");
    assert!(t.contains("usage record conversations-participants"), "{t}");
    assert!(
        !t.contains("usage record sms") && !t.contains("calls"),
        "{t}"
    );
    assert!(
        t.contains("Unexplained:                4 billed but not seen by any source"),
        "{t}"
    );
    let (t, _) = report(&["--usage-category", "conversations-participants"]);
    assert!(
        t.contains("Billed by Twilio:           11 (usage_records:conversations-participants)"),
        "{t}"
    );
    let (j, _) = report(&["--format", "json"]);
    let j: Value = serde_json::from_str(&j).unwrap();
    assert_eq!(j["usage_records"].as_array().unwrap().len(), 2, "{j}");
    assert_eq!(j["usage_records"][0]["count"], "9");
    assert_eq!(j["unexplained"], 4);
    let (t, err) = report(&["--usage-category", "pchat-nothing"]);
    assert!(
        err.contains("no Usage Records row with category pchat-nothing"),
        "{err}"
    );
    assert!(
        err.contains("pchat-users, conversations-participants"),
        "{err}"
    );
    assert!(t.contains("unknown"), "{t}");
    // A report without --twilio uses the count the last one found (nothing was stored for
    // the category without a row).
    let out = cli(&[
        "report", "--month", MONTH, "--format", "json", "--db", &db.arg,
    ]);
    let j: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (&j["billed"]["count"], &j["billed"]["from"]),
        (
            &serde_json::json!(9),
            &serde_json::json!("usage_records:pchat-users")
        )
    );
    assert!(j["billed"]["recorded_at"].is_string(), "{j}");
    // Four rows on two pages: the second one was followed each time.
    let pages = fake
        .requests()
        .iter()
        .filter(|r| r.starts_with("GET usage records page 1"))
        .count();
    assert!(pages >= 1, "{:?}", fake.requests());
    let conflict = cli(&[
        "report", "--month", MONTH, "--twilio", "--billed", "3", "--db", &db.arg,
    ]);
    assert!(!conflict.status.success());
}

both_backends!(
    sync_walks_pages_waits_out_a_429_and_reruns_safely,
    report_reads_the_billed_count_from_usage_records,
);
