//! The token log and Twilio's calls against the real binary on both backends: bearer auth
//! and idempotency, signed webhooks recorded as the right subjects, refused signatures
//! counted with nothing stored, and Event Streams redeliveries stored once.

#[macro_use]
mod common;
use common::*;
use mau_collector::twilio::signature;
use serde_json::{json, Value};
use sha2::Digest;

const INGEST: &str = "test-ingest-secret";
const AUTH: &str = "twilio-test-auth-token";
const PUBLIC: &str = "https://collector.example.com/t";

/// A collector taking Twilio's calls at the public URL `PUBLIC`.
fn twilio_server(db: &TestDb, extra: &[&str]) -> Server {
    let mut args = vec![
        "--admin-token",
        TOKEN,
        "--twilio-auth-token",
        AUTH,
        "--public-url",
        PUBLIC,
    ];
    args.extend_from_slice(extra);
    Server::start(db, &args)
}

fn form(params: &[(&str, &str)]) -> String {
    let mut s = form_urlencoded::Serializer::new(String::new());
    for (k, v) in params {
        s.append_pair(k, v);
    }
    s.finish()
}

fn owned(params: &[(&str, &str)]) -> Vec<(String, String)> {
    params
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Posts a form webhook signed as Twilio signs a call to `signed_url`.
fn webhook(server: &Server, params: &[(&str, &str)], signed_url: &str) -> Resp {
    let sig = signature::expected(AUTH, signed_url, &owned(params));
    send(
        server
            .request("POST", "/v1/twilio/conversations")
            .set("Content-Type", "application/x-www-form-urlencoded")
            .set("X-Twilio-Signature", &sig),
        Some(&form(params)),
    )
}

fn hook_url() -> String {
    format!("{PUBLIC}/v1/twilio/conversations")
}

fn post_tokens(server: &Server, bearer: Option<&str>, body: &Value) -> Resp {
    let mut req = server.request("POST", "/v1/tokens");
    if let Some(b) = bearer {
        req = req.set("Authorization", &format!("Bearer {b}"));
    }
    send(req, Some(&body.to_string()))
}

fn now_iso() -> String {
    mau_collector::wire::format_time(time::OffsetDateTime::now_utc())
}

fn token_log_needs_its_bearer_and_is_idempotent(db: &TestDb) {
    let closed = Server::start(db, &["--admin-token", TOKEN]);
    let entry = json!({"identity": "alice", "issued_at": now_iso(), "token_id": "t-1"});
    let r = post_tokens(&closed, Some(INGEST), &entry);
    assert_eq!(
        (r.status, r.json()["code"].clone()),
        (403, json!("tokens_disabled"))
    );
    drop(closed);

    let server = Server::start(db, &["--admin-token", TOKEN, "--ingest-token", INGEST]);
    for bearer in [None, Some("wrong"), Some(TOKEN)] {
        let r = post_tokens(&server, bearer, &entry);
        assert_eq!(r.status, 401, "{bearer:?}: {}", r.body);
        assert_eq!(r.json()["code"], "unauthorized");
    }
    let issued = now_iso();
    let batch = json!([
        entry,
        {"identity": "bob", "issued_at": issued, "expires_at": issued},
        {"identity": "bob", "issued_at": issued},
    ]);
    for _ in 0..2 {
        let r = post_tokens(&server, Some(INGEST), &batch);
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(r.json()["accepted"], 3);
    }
    // Same token_id again, other identity: the first delivery wins.
    let again = json!({"identity": "mallory", "issued_at": now_iso(), "token_id": "t-1"});
    assert_eq!(post_tokens(&server, Some(INGEST), &again).status, 200);
    assert_eq!(db.scalar("SELECT count(*) FROM tokens"), 2);
    assert_eq!(
        db.scalar("SELECT count(*) FROM tokens WHERE identity = 'mallory'"),
        0
    );
    // The token itself is refused, and nothing of the batch is stored.
    let jwt = "eyJhbGciOiJIUzI1NiJ9.eyJncmFudHMiOnt9fQ.c2lnbmF0dXJl";
    let leak = json!([{"identity": "carol", "issued_at": now_iso()},
                      {"identity": "dave", "issued_at": now_iso(), "token": jwt}]);
    let r = post_tokens(&server, Some(INGEST), &leak);
    assert_eq!(r.status, 400);
    let e = r.json();
    assert_eq!(
        (e["code"].as_str(), e["field"].as_str(), e["index"].as_u64()),
        (Some("token_not_accepted"), Some("token"), Some(1))
    );
    let bad = post_tokens(
        &server,
        Some(INGEST),
        &json!({"identity": "x", "issued_at": "soon"}),
    );
    assert_eq!(
        (bad.status, bad.json()["field"].clone()),
        (400, json!("issued_at"))
    );
    assert_eq!(db.scalar("SELECT count(*) FROM tokens"), 2);
    assert!(!server.logs().contains(jwt) && !server.logs().contains(INGEST));
}

/// Every subject of the month's export, as (subject, kind, sources).
fn export(server: &Server) -> Vec<(String, String, String)> {
    let month = mau_collector::month::Month::of(time::OffsetDateTime::now_utc());
    let r = server.get_admin(&format!("/v1/months/{month}/identities?format=ndjson"));
    assert_eq!(r.status, 200, "{}", r.body);
    r.body
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            let s = |k: &str| v[k].as_str().unwrap().to_owned();
            (s("identity"), s("subject_kind"), s("sources"))
        })
        .collect()
}

fn webhooks_record_each_subject_with_its_event(db: &TestDb) {
    let server = twilio_server(db, &[]);
    let common = [("AccountSid", "AC00000000000000000000000000000000")];
    let hooks: Vec<Vec<(&str, &str)>> = vec![
        vec![
            ("EventType", "onMessageAdded"),
            ("Source", "SDK"),
            ("ClientIdentity", "alice"),
            ("Author", "alice"),
            ("ConversationSid", "CH1"),
            ("MessageSid", "IM1"),
            ("Body", "hi & bye"),
            ("Index", "0"),
        ],
        vec![
            ("EventType", "onMessageAdded"),
            ("Source", "API"),
            ("Author", "+14155550100"),
            ("ConversationSid", "CH1"),
            ("MessageSid", "IM2"),
            ("Body", "from SMS"),
        ],
        vec![
            ("EventType", "onMessageAdded"),
            ("Source", "API"),
            ("Author", "system"),
        ],
        vec![
            ("EventType", "onParticipantAdded"),
            ("Source", "API"),
            ("ConversationSid", "CH1"),
            ("ParticipantSid", "MB1"),
            ("MessagingBinding.Type", "SMS"),
            ("MessagingBinding.Address", "+14155550101"),
            ("MessagingBinding.ProxyAddress", "+14155559999"),
        ],
        vec![
            ("EventType", "onParticipantAdded"),
            ("Source", "API"),
            ("Identity", "bob"),
            ("ConversationSid", "CH1"),
            ("ParticipantSid", "MB2"),
        ],
        vec![
            ("EventType", "onUserUpdated"),
            ("Source", "API"),
            ("Identity", "carol"),
            ("UserSid", "US1"),
        ],
        vec![
            ("EventType", "onMessageAdd"),
            ("Source", "SDK"),
            ("ClientIdentity", "dave"),
            ("Author", "dave"),
        ],
    ];
    for h in &hooks {
        let params: Vec<(&str, &str)> = common.iter().chain(h).copied().collect();
        let r = webhook(&server, &params, &hook_url());
        assert_eq!((r.status, r.body.as_str()), (200, "{}"), "{h:?}");
    }
    // GET with query parameters, group MMS: the address repeats.
    let q = form(&[
        ("EventType", "onConversationAdded"),
        ("MessagingBinding.Address", "+14155550102"),
        ("MessagingBinding.Address", "+14155550101"),
    ]);
    let path = format!("/v1/twilio/conversations?{q}");
    let sig = signature::expected(AUTH, &format!("{PUBLIC}{path}"), &[]);
    let r = send(
        server.request("GET", &path).set("X-Twilio-Signature", &sig),
        None,
    );
    assert_eq!(r.status, 200, "{}", r.body);

    let rows = export(&server);
    let row = |s: &str, k: &str, src: &str| (s.to_owned(), k.to_owned(), src.to_owned());
    assert_eq!(
        rows,
        vec![
            row("+14155550100", "address", "webhook:onMessageAdded"),
            row(
                "+14155550101",
                "address",
                "webhook:onConversationAdded;webhook:onParticipantAdded"
            ),
            row("+14155550102", "address", "webhook:onConversationAdded"),
            row("alice", "identity", "webhook:onMessageAdded"),
            row("bob", "identity", "webhook:onParticipantAdded"),
            row("carol", "identity", "webhook:onUserUpdated"),
            row("dave", "identity", "webhook:onMessageAdd"),
        ]
    );
    // Signed with X-Forwarded-Proto when no public URL is set.
    drop(server);
    let server = Server::start(db, &["--admin-token", TOKEN, "--twilio-auth-token", AUTH]);
    let params = [("EventType", "onMessageAdded"), ("Author", "erin")];
    let host = server.url.strip_prefix("http://").unwrap().to_owned();
    let url = format!("https://{host}/v1/twilio/conversations");
    let sig = signature::expected(AUTH, &url, &owned(&params));
    let r = send(
        server
            .request("POST", "/v1/twilio/conversations")
            .set("X-Forwarded-Proto", "https")
            .set("X-Twilio-Signature", &sig),
        Some(&form(&params)),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(export(&server).iter().any(|(s, _, _)| s == "erin"));
}

fn bad_signatures_are_refused_counted_and_not_stored(db: &TestDb) {
    let off = Server::start(db, &["--admin-token", TOKEN]);
    let params = [("EventType", "onMessageAdded"), ("Author", "mallory")];
    let r = webhook(&off, &params, &hook_url());
    assert_eq!(
        (r.status, r.json()["code"].clone()),
        (403, json!("webhooks_disabled"))
    );
    drop(off);

    let server = twilio_server(db, &[]);
    let unsigned = send(
        server.request("POST", "/v1/twilio/conversations"),
        Some(&form(&params)),
    );
    assert_eq!(
        (unsigned.status, unsigned.json()["code"].clone()),
        (403, json!("missing_signature"))
    );
    let other_url = webhook(
        &server,
        &params,
        "https://evil.example/v1/twilio/conversations",
    );
    assert_eq!(
        (other_url.status, other_url.json()["code"].clone()),
        (403, json!("bad_signature"))
    );
    // A valid signature over other parameters does not cover these.
    let sig = signature::expected(
        AUTH,
        &hook_url(),
        &owned(&[("EventType", "onMessageAdded"), ("Author", "alice")]),
    );
    let swapped = send(
        server
            .request("POST", "/v1/twilio/conversations")
            .set("X-Twilio-Signature", &sig),
        Some(&form(&params)),
    );
    assert_eq!(swapped.status, 403);
    let events = send(
        server
            .request("POST", "/v1/twilio/events?bodySHA256=00")
            .set("X-Twilio-Signature", "x"),
        Some("[]"),
    );
    assert_eq!(events.status, 403);
    assert_eq!(db.scalar("SELECT count(*) FROM sightings"), 0);
    let status = server.get_admin("/v1/twilio/status").json();
    assert_eq!(status["counters"]["signature_failures"], 4, "{status}");
    assert_eq!(status["counters"]["webhooks_accepted"], 0, "{status}");
    assert!(
        !server.logs().contains("mallory"),
        "the body is never logged"
    );
    // Signed but without EventType: a 4xx naming the field.
    let r = webhook(&server, &[("Author", "x")], &hook_url());
    assert_eq!(
        (r.status, r.json()["field"].clone()),
        (400, json!("EventType"))
    );
}

/// Posts an Event Streams delivery signed with the bodySHA256 variant.
fn deliver(server: &Server, body: &str) -> Resp {
    signed_events(server, AUTH, PUBLIC, body)
}

fn event_streams_redeliveries_count_once(db: &TestDb) {
    let server = twilio_server(db, &[]);
    let now = now_iso();
    let batch = json!([
        {"specversion": "1.0", "id": "EZ0001", "type": "com.twilio.conversations.message.added",
         "source": "/v1/Conversations/CH1/Messages/IM1", "time": now,
         "datacontenttype": "application/json",
         "data": {"author": "+14155550103", "conversationSid": "CH1", "messageSid": "IM1"}},
        {"specversion": "1.0", "id": "EZ0002", "type": "com.twilio.conversations.participant.added",
         "source": "/v1/Conversations/CH1/Participants/MB1", "time": now,
         "data": {"identity": "frank", "conversationSid": "CH1"}},
    ])
    .to_string();
    for _ in 0..3 {
        let r = deliver(&server, &batch);
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(r.json()["accepted"], 2);
    }
    assert_eq!(db.scalar("SELECT count(*) FROM delivery_keys"), 2);
    assert_eq!(
        db.scalar("SELECT CAST(sum(hits) AS BIGINT) FROM sightings"),
        2
    );
    let rows = export(&server);
    assert_eq!(
        rows,
        vec![
            (
                "+14155550103".into(),
                "address".into(),
                "event_stream:message.added".into()
            ),
            (
                "frank".into(),
                "identity".into(),
                "event_stream:participant.added".into()
            ),
        ]
    );
    // The signature covers the hash; a body that does not hash to it is refused.
    let sig_for_batch = deliver(&server, &batch);
    assert_eq!(sig_for_batch.status, 200);
    let hash: String = sha2::Sha256::digest(batch.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let path = format!("/v1/twilio/events?bodySHA256={hash}");
    let sig = signature::expected(AUTH, &format!("{PUBLIC}{path}"), &[]);
    let tampered = send(
        server
            .request("POST", &path)
            .set("X-Twilio-Signature", &sig),
        Some(&batch.replace("frank", "frenk")),
    );
    assert_eq!(
        (tampered.status, tampered.json()["code"].clone()),
        (403, json!("bad_signature"))
    );
    let malformed = deliver(
        &server,
        r#"[{"type": "com.twilio.conversations.message.added"}]"#,
    );
    assert_eq!(
        (malformed.status, malformed.json()["field"].clone()),
        (400, json!("id"))
    );
}

/// A fixture month through the real endpoints: SDK beacons, the token log, webhooks and
/// Event Streams; then the report's figures from the CLI and over HTTP.
fn reconciliation_figures_of_a_fixture_month(db: &TestDb) {
    let server = twilio_server(db, &["--ingest-token", INGEST]);
    let beacons = json!([
        beacon("alice", "b1"),
        beacon("alice", "b2"),
        beacon("bob", "b3"),
        beacon("carol", "b4")
    ]);
    assert_eq!(server.post(&beacons.to_string()).status, 200);
    let issued = now_iso();
    let tokens = json!([
        {"identity": "alice", "issued_at": issued, "token_id": "k1"},
        {"identity": "alice", "issued_at": issued, "token_id": "k2"},
        {"identity": "bob", "issued_at": issued},
        {"identity": "zoe", "issued_at": issued},
    ]);
    assert_eq!(post_tokens(&server, Some(INGEST), &tokens).status, 200);
    for h in [
        vec![
            ("EventType", "onMessageAdded"),
            ("ClientIdentity", "alice"),
            ("Author", "alice"),
        ],
        vec![("EventType", "onMessageAdded"), ("Author", "+14155550100")],
        vec![("EventType", "onParticipantAdded"), ("Identity", "dave")],
    ] {
        assert_eq!(webhook(&server, &h, &hook_url()).status, 200);
    }
    let events = json!([
        {"id": "EZ1", "type": "com.twilio.conversations.participant.added", "time": issued,
         "data": {"identity": "erin"}},
        {"id": "EZ2", "type": "com.twilio.conversations.message.added", "time": issued,
         "data": {"author": "+14155550100"}},
    ]);
    assert_eq!(deliver(&server, &events.to_string()).status, 200);

    let month = mau_collector::month::Month::of(time::OffsetDateTime::now_utc()).to_string();
    let out = cli(&[
        "report", "--month", &month, "--billed", "9", "--format", "json", "--db", &db.arg,
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    // `--billed 9` was stored for the month: the HTTP report reads it.
    let http = server.get_admin(&format!("/v1/months/{month}/report"));
    assert_eq!(http.status, 200, "{}", http.body);
    assert_same_report(&http.json(), &r, "CLI and HTTP give the same report");
    assert_eq!(
        (
            r["seen"].clone(),
            r["identities"].clone(),
            r["addresses"].clone()
        ),
        (json!(6), json!(5), json!(1))
    );
    assert_eq!(
        (&r["billed"]["count"], &r["billed"]["from"]),
        (&json!(9), &json!("typed"))
    );
    assert!(r["billed"]["recorded_at"].is_string(), "{}", r["billed"]);
    assert_eq!(r["unexplained"], 3);
    assert_eq!(r["connects"], 4);
    assert_eq!(
        r["by_source"],
        json!({
            "event_stream:message.added": 1, "event_stream:participant.added": 1,
            "sdk_connect": 3, "webhook:onMessageAdded": 2, "webhook:onParticipantAdded": 1
        })
    );
    assert_eq!(
        r["overlaps"],
        json!([
            {"sources": "sdk_connect", "subjects": 2},
            {"sources": "event_stream", "subjects": 1},
            {"sources": "event_stream+webhook", "subjects": 1},
            {"sources": "sdk_connect+webhook", "subjects": 1},
            {"sources": "webhook", "subjects": 1},
        ])
    );
    assert_eq!(r["tokens_issued"], 4);
    assert_eq!(r["token_identities"], 3);
    assert_eq!(r["tokens_never_connected"], json!(["zoe"]));
    assert_eq!(r["connected_without_token"], json!(["carol"]));
    let last_day = r["days"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last_day["total"], 6, "{last_day}");
    assert_eq!(last_day["by_source"]["sdk_connect"], 3, "{last_day}");

    let text = cli(&[
        "report", "--month", &month, "--billed", "9", "--db", &db.arg,
    ]);
    let text = String::from_utf8(text.stdout).unwrap();
    eprintln!("{text}");
    assert!(
        text.contains("Subjects seen:              6 (5 chat identities, 1 channel addresses)"),
        "{text}"
    );
    assert!(
        text.contains("Unexplained:                3 billed but not seen by any source"),
        "{text}"
    );

    let rows = export(&server);
    assert!(
        rows.contains(&(
            "alice".into(),
            "identity".into(),
            "sdk_connect;webhook:onMessageAdded".into()
        )),
        "{rows:?}"
    );
    assert!(
        rows.contains(&(
            "+14155550100".into(),
            "address".into(),
            "event_stream:message.added;webhook:onMessageAdded".into()
        )),
        "{rows:?}"
    );
    let bad = server.get_admin(&format!("/v1/months/{month}/report?billed=lots"));
    assert_eq!(
        (bad.status, bad.json()["code"].clone()),
        (400, json!("bad_request"))
    );
}

both_backends!(
    reconciliation_figures_of_a_fixture_month,
    token_log_needs_its_bearer_and_is_idempotent,
    webhooks_record_each_subject_with_its_event,
    bad_signatures_are_refused_counted_and_not_stored,
    event_streams_redeliveries_count_once,
);
