//! A local stand-in for Twilio's REST API, for `twilio sync` and `report --twilio`: the
//! Conversations API (conversations, participants, messages with `Order`, paging through
//! `meta.next_page_url`) and Usage Records (`usage_records`, paging through
//! `next_page_uri`), in the JSON shapes Twilio documents. Basic auth is checked, and the
//! second conversations page answers one 429 with `Retry-After: 1` before it serves.
//! Pages hold at most 2 items (Twilio: up to 100 or 1000) so that paging is exercised.

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use mau_collector::month::Month;
use mau_collector::twilio::rest::{month_dates, month_start};
use mau_collector::wire::format_time;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use time::Duration;

pub const ACCOUNT: &str = "AC0123456789abcdef0123456789abcdef";
pub const AUTH_TOKEN: &str = "stand-in-auth-token";
const PAGE_MAX: usize = 2;

pub struct FakeTwilio {
    pub url: String,
    /// Every request line served (method and path with query), in order.
    pub log: Arc<Mutex<Vec<String>>>,
    _runtime: tokio::runtime::Runtime,
}

struct Data {
    month: Month,
    conversations: Vec<Value>,
    participants: HashMap<String, Vec<Value>>,
    messages: HashMap<String, Vec<Value>>,
    usage: Vec<Value>,
    throttled: Mutex<bool>,
    log: Arc<Mutex<Vec<String>>>,
}

type Shared = Arc<Data>;

impl FakeTwilio {
    /// Serves the fixture for `month` on a free loopback port.
    pub fn start(month: Month) -> FakeTwilio {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let log = Arc::new(Mutex::new(Vec::new()));
        let data = Arc::new(fixture(month, log.clone()));
        let app = Router::new()
            .route("/v1/Conversations", get(conversations))
            .route("/v1/Conversations/{sid}/Participants", get(participants))
            .route("/v1/Conversations/{sid}/Messages", get(messages))
            .route(
                "/2010-04-01/Accounts/{account}/Usage/Records/Monthly.json",
                get(usage),
            )
            .with_state(data);
        runtime.spawn(async move { axum::serve(listener, app).await });
        FakeTwilio {
            url,
            log,
            _runtime: runtime,
        }
    }

    pub fn requests(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }
}

/// The month's story. CH1 began the month before: alice (chat) and an SMS number were
/// added in the month, old-timer before it; messages from before, in and after the month.
/// CH2 began in the month with bob and a WhatsApp number. CH3 began after the month.
fn fixture(month: Month, log: Arc<Mutex<Vec<String>>>) -> Data {
    let m0 = month_start(month);
    let at =
        |days: i64, hours: i64| format_time(m0 + Duration::days(days) + Duration::hours(hours));
    let next = Month::of(m0 + Duration::days(40)); // a day of the month after
    let after = |days: i64| format_time(month_start(next) + Duration::days(days));
    let conv = |sid: &str, created: String| {
        json!({
            "account_sid": ACCOUNT, "chat_service_sid": "IS00000000000000000000000000000000",
            "messaging_service_sid": "MG00000000000000000000000000000000", "sid": sid,
            "friendly_name": format!("Conversation {sid}"), "unique_name": null,
            "attributes": "{}", "state": "active", "date_created": created,
            "date_updated": created, "timers": {}, "bindings": null,
            "url": format!("https://conversations.twilio.com/v1/Conversations/{sid}"),
            "links": {
                "participants": format!("https://conversations.twilio.com/v1/Conversations/{sid}/Participants"),
                "messages": format!("https://conversations.twilio.com/v1/Conversations/{sid}/Messages"),
                "webhooks": format!("https://conversations.twilio.com/v1/Conversations/{sid}/Webhooks"),
            }
        })
    };
    let part = |ch: &str,
                sid: &str,
                identity: Option<&str>,
                binding: Option<(&str, &str)>,
                created: String| {
        json!({
            "account_sid": ACCOUNT, "conversation_sid": ch, "sid": sid, "identity": identity,
            "attributes": "{}", "role_sid": "RL00000000000000000000000000000000",
            "messaging_binding": binding.map(|(t, a)| json!({
                "type": t, "address": a, "proxy_address": "+14155559999"
            })),
            "date_created": created, "date_updated": created,
            "last_read_message_index": null, "last_read_timestamp": null,
            "url": format!("https://conversations.twilio.com/v1/Conversations/{ch}/Participants/{sid}"),
        })
    };
    let msg = |ch: &str, index: u64, author: &str, created: String| {
        json!({
            "account_sid": ACCOUNT, "conversation_sid": ch, "sid": format!("IM{ch}{index:03}"),
            "index": index, "author": author, "body": "hello", "media": null,
            "attributes": "{}", "participant_sid": null, "date_created": created,
            "date_updated": created, "delivery": null,
            "url": format!("https://conversations.twilio.com/v1/Conversations/{ch}/Messages/IM{index}"),
            "links": {}
        })
    };
    let before = format_time(m0 - Duration::days(15));
    let participants = HashMap::from([
        (
            "CH1".to_owned(),
            vec![
                part(
                    "CH1",
                    "MB11",
                    Some("old-timer"),
                    None,
                    format_time(m0 - Duration::days(20)),
                ),
                part("CH1", "MB12", Some("alice"), None, at(1, 9)),
                part(
                    "CH1",
                    "MB13",
                    None,
                    Some(("sms", "+14155550100")),
                    at(2, 10),
                ),
            ],
        ),
        (
            "CH2".to_owned(),
            vec![
                part("CH2", "MB21", Some("bob"), None, at(9, 8)),
                part(
                    "CH2",
                    "MB22",
                    None,
                    Some(("whatsapp", "whatsapp:+14155550101")),
                    at(9, 8),
                ),
            ],
        ),
        (
            "CH3".to_owned(),
            vec![part("CH3", "MB31", Some("zed"), None, after(1))],
        ),
    ]);
    let messages = HashMap::from([
        (
            "CH1".to_owned(),
            vec![
                msg("CH1", 0, "alice", format_time(m0 - Duration::days(9))),
                msg("CH1", 1, "alice", format_time(m0 - Duration::days(7))),
                msg(
                    "CH1",
                    2,
                    "someone-else",
                    format_time(m0 - Duration::days(5)),
                ),
                msg("CH1", 3, "old-timer", at(4, 12)),
                msg("CH1", 4, "+14155550100", at(5, 12)),
                msg("CH1", 5, "system", at(6, 12)),
                msg("CH1", 6, "alice", at(7, 12)),
            ],
        ),
        (
            "CH2".to_owned(),
            vec![
                msg("CH2", 0, "bob", at(10, 1)),
                msg("CH2", 1, "whatsapp:+14155550101", at(11, 1)),
                msg("CH2", 2, "carol", after(0)),
            ],
        ),
        ("CH3".to_owned(), vec![msg("CH3", 0, "zed", after(1))]),
    ]);
    let (start, end) = month_dates(month);
    let usage = |category: &str, description: &str, count: &str, unit: &str| {
        json!({
            "account_sid": ACCOUNT, "api_version": "2010-04-01", "as_of": format!("{end}T23:59:59+00:00"),
            "category": category, "description": description, "count": count,
            "count_unit": unit, "usage": count, "usage_unit": unit, "price": "0.0",
            "price_unit": "usd", "start_date": start, "end_date": end,
            "uri": format!("/2010-04-01/Accounts/{ACCOUNT}/Usage/Records/Monthly.json?Category={category}"),
            "subresource_uris": {}
        })
    };
    Data {
        month,
        conversations: vec![
            conv("CH1", before),
            conv("CH2", at(9, 7)),
            conv("CH3", after(1)),
        ],
        participants,
        messages,
        usage: vec![
            usage("sms", "SMS", "120", "messages"),
            usage(
                "pchat-users",
                "Conversations Monthly Active Users",
                "9",
                "users",
            ),
            usage(
                "conversations-participants",
                "Conversations Participants",
                "11",
                "participants",
            ),
            usage("calls", "Voice Minutes", "3", "calls"),
        ],
        throttled: Mutex::new(false),
        log,
    }
}

fn authorized(headers: &HeaderMap) -> bool {
    use base64::Engine;
    let expected =
        base64::engine::general_purpose::STANDARD.encode(format!("{ACCOUNT}:{AUTH_TOKEN}"));
    headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == format!("Basic {expected}"))
}

fn twilio_error(status: StatusCode, code: u32, message: &str) -> Response {
    (
        status,
        Json(json!({
            "code": code, "message": message,
            "more_info": format!("https://www.twilio.com/docs/errors/{code}"),
            "status": status.as_u16()
        })),
    )
        .into_response()
}

/// One page of `items` in Twilio's Conversations paging shape.
fn page(path: &str, key: &str, items: &[Value], q: &HashMap<String, String>) -> Response {
    let size = q
        .get("PageSize")
        .and_then(|s| s.parse().ok())
        .unwrap_or(50usize)
        .clamp(1, PAGE_MAX);
    let n: usize = q.get("Page").and_then(|s| s.parse().ok()).unwrap_or(0);
    let order = q
        .get("Order")
        .map(|o| format!("&Order={o}"))
        .unwrap_or_default();
    let link = |p: usize| {
        format!("https://conversations.twilio.com{path}?PageSize={size}&Page={p}&PageToken=PT{p}{order}")
    };
    let chunk: Vec<Value> = items.iter().skip(n * size).take(size).cloned().collect();
    let more = (n + 1) * size < items.len();
    Json(json!({
        key: chunk,
        "meta": {
            "page": n, "page_size": size, "first_page_url": link(0),
            "previous_page_url": if n > 0 { Value::from(link(n - 1)) } else { Value::Null },
            "url": link(n),
            "next_page_url": if more { Value::from(link(n + 1)) } else { Value::Null },
            "key": key
        }
    }))
    .into_response()
}

/// Logs the request; an error answer unless it carries the stand-in's credentials.
fn refused(
    data: &Data,
    headers: &HeaderMap,
    what: &str,
    q: &HashMap<String, String>,
) -> Option<Response> {
    let page = q.get("Page").map_or("0", String::as_str);
    data.log.lock().unwrap().push(format!("{what} page {page}"));
    (!authorized(headers)).then(|| twilio_error(StatusCode::UNAUTHORIZED, 20003, "Authenticate"))
}

fn not_found() -> Response {
    twilio_error(
        StatusCode::NOT_FOUND,
        20404,
        "The requested resource was not found",
    )
}

async fn conversations(
    State(data): State<Shared>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    if let Some(r) = refused(&data, &headers, "GET /v1/Conversations", &q) {
        return r;
    }
    if q.get("Page").map(String::as_str) == Some("1") {
        let mut throttled = data.throttled.lock().unwrap();
        if !*throttled {
            *throttled = true;
            let mut r = twilio_error(StatusCode::TOO_MANY_REQUESTS, 20429, "Too Many Requests");
            r.headers_mut().insert("retry-after", "1".parse().unwrap());
            return r;
        }
    }
    page(
        "/v1/Conversations",
        "conversations",
        &data.conversations,
        &q,
    )
}

async fn participants(
    State(data): State<Shared>,
    Path(sid): Path<String>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    if let Some(r) = refused(&data, &headers, &format!("GET participants of {sid}"), &q) {
        return r;
    }
    let Some(items) = data.participants.get(&sid) else {
        return not_found();
    };
    let path = format!("/v1/Conversations/{sid}/Participants");
    page(&path, "participants", items, &q)
}

async fn messages(
    State(data): State<Shared>,
    Path(sid): Path<String>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    if let Some(r) = refused(&data, &headers, &format!("GET messages of {sid}"), &q) {
        return r;
    }
    let Some(items) = data.messages.get(&sid) else {
        return not_found();
    };
    let mut items = items.clone();
    if q.get("Order").map(String::as_str) == Some("desc") {
        items.reverse();
    }
    let path = format!("/v1/Conversations/{sid}/Messages");
    page(&path, "messages", &items, &q)
}

async fn usage(
    State(data): State<Shared>,
    Path(account): Path<String>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    if let Some(r) = refused(&data, &headers, "GET usage records", &q) {
        return r;
    }
    if account != ACCOUNT {
        return not_found();
    }
    let (start, end) = month_dates(data.month);
    let in_month = q.get("StartDate") == Some(&start) && q.get("EndDate") == Some(&end);
    let rows: Vec<Value> = if in_month {
        data.usage.clone()
    } else {
        Vec::new()
    };
    let size = 2usize;
    let n: usize = q.get("Page").and_then(|s| s.parse().ok()).unwrap_or(0);
    let path = format!("/2010-04-01/Accounts/{ACCOUNT}/Usage/Records/Monthly.json");
    let uri = |p: usize| format!("{path}?StartDate={start}&EndDate={end}&PageSize={size}&Page={p}");
    let more = (n + 1) * size < rows.len();
    Json(json!({
        "usage_records": rows.iter().skip(n * size).take(size).collect::<Vec<_>>(),
        "page": n, "page_size": size, "start": n * size, "end": n * size + size - 1,
        "uri": uri(n), "first_page_uri": uri(0),
        "previous_page_uri": if n > 0 { Value::from(uri(n - 1)) } else { Value::Null },
        "next_page_uri": if more { Value::from(uri(n + 1)) } else { Value::Null },
    }))
    .into_response()
}
