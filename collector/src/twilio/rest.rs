//! A small blocking client for the two Twilio REST APIs the command line reads:
//! Conversations (participant aggregation) and Usage Records (the billed count).
//! Paging follows Twilio's links; 429 and 503 answers are retried after `Retry-After`
//! (or a growing pause), up to `MAX_TRIES`.

use crate::reconcile::UsageRow;
use base64::Engine;
use serde_json::Value;
use std::time::Duration;

pub const API_BASE: &str = "https://api.twilio.com";
pub const CONVERSATIONS_BASE: &str = "https://conversations.twilio.com";
const MAX_TRIES: u32 = 8;
const MAX_PAUSE: Duration = Duration::from_secs(60);

#[derive(Debug, thiserror::Error)]
pub enum RestError {
    #[error("{0}")]
    Config(String),
    #[error("Twilio answered {status} for {url}: {message}")]
    Status {
        status: u16,
        url: String,
        message: String,
    },
    #[error("cannot reach Twilio at {url}: {message}")]
    Transport { url: String, message: String },
    #[error("unexpected answer from {url}: {message}")]
    Shape { url: String, message: String },
}

/// Credentials and base URLs; cheap to clone.
#[derive(Clone)]
pub struct Client {
    api: String,
    conversations: String,
    authorization: String,
    pub account_sid: Option<String>,
    agent: ureq::Agent,
    /// Rate-limit answers met so far.
    pub rate_limited: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Client({}, {})", self.api, self.conversations)
    }
}

impl Client {
    /// From the environment: `TWILIO_ACCOUNT_SID` with `TWILIO_AUTH_TOKEN`, or an API key
    /// (`TWILIO_API_KEY` + `TWILIO_API_SECRET`, with `TWILIO_ACCOUNT_SID` for Usage
    /// Records). `MAU_TWILIO_BASE_URL` replaces both Twilio hosts (tests, proxies).
    pub fn from_env() -> Result<Client, RestError> {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        let account_sid = var("TWILIO_ACCOUNT_SID");
        let (user, secret) = match (var("TWILIO_API_KEY"), var("TWILIO_API_SECRET")) {
            (Some(k), Some(s)) => (k, s),
            _ => match (account_sid.clone(), var("TWILIO_AUTH_TOKEN")) {
                (Some(a), Some(t)) => (a, t),
                _ => {
                    return Err(RestError::Config(
                        "set TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN (or TWILIO_API_KEY and \
                         TWILIO_API_SECRET) in the environment"
                            .into(),
                    ))
                }
            },
        };
        let base = var("MAU_TWILIO_BASE_URL").map(|b| b.trim_end_matches('/').to_owned());
        Ok(Client::new(base, account_sid, &user, &secret))
    }

    pub fn new(
        base: Option<String>,
        account_sid: Option<String>,
        user: &str,
        secret: &str,
    ) -> Client {
        let basic = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{secret}"));
        Client {
            api: base.clone().unwrap_or_else(|| API_BASE.into()),
            conversations: base.unwrap_or_else(|| CONVERSATIONS_BASE.into()),
            authorization: format!("Basic {basic}"),
            account_sid,
            agent: ureq::AgentBuilder::new()
                .timeout(Duration::from_secs(60))
                .user_agent(concat!("mau-collector/", env!("CARGO_PKG_VERSION")))
                .build(),
            rate_limited: Default::default(),
        }
    }

    /// A Conversations API URL for `path` (e.g. `/v1/Conversations?PageSize=100`).
    pub fn conversations_url(&self, path: &str) -> String {
        format!("{}{path}", self.conversations)
    }

    /// A link Twilio returned, sent to the configured base when one replaces Twilio's.
    pub fn follow(&self, link: &str) -> String {
        for (host, base) in [
            (CONVERSATIONS_BASE, &self.conversations),
            (API_BASE, &self.api),
        ] {
            if let Some(rest) = link.strip_prefix(host) {
                return format!("{base}{rest}");
            }
        }
        if link.starts_with('/') {
            format!("{}{link}", self.api)
        } else {
            link.to_owned()
        }
    }

    /// GETs JSON, retrying rate limits and passing outages.
    pub fn get(&self, url: &str) -> Result<Value, RestError> {
        let mut tries = 0;
        loop {
            tries += 1;
            let result = self
                .agent
                .get(url)
                .set("Authorization", &self.authorization)
                .set("Accept", "application/json")
                .call();
            let (status, retry_after, resp) = match result {
                Ok(resp) => {
                    return read_json(resp).map_err(|e| RestError::Shape {
                        url: url.to_owned(),
                        message: e.to_string(),
                    })
                }
                Err(ureq::Error::Status(status, resp)) => {
                    let after = resp
                        .header("retry-after")
                        .and_then(|v| v.trim().parse::<u64>().ok());
                    (status, after, resp)
                }
                Err(e) => {
                    return Err(RestError::Transport {
                        url: url.to_owned(),
                        message: e.to_string(),
                    })
                }
            };
            if (status == 429 || status == 503) && tries < MAX_TRIES {
                if status == 429 {
                    self.rate_limited
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
                let pause = retry_after
                    .map(Duration::from_secs)
                    .unwrap_or(Duration::from_millis(500 << tries))
                    .min(MAX_PAUSE);
                eprintln!(
                    "twilio: {status} from {}, retrying in {:.1} s",
                    path_of(url),
                    pause.as_secs_f32()
                );
                std::thread::sleep(pause);
                continue;
            }
            let body: Value = read_json(resp).unwrap_or(Value::Null);
            return Err(RestError::Status {
                status,
                url: url.to_owned(),
                message: body["message"].as_str().unwrap_or("").to_owned(),
            });
        }
    }

    /// Every Usage Records row of `month` whose category starts with `conversations` or
    /// `pchat`, across pages.
    pub fn usage_records(&self, month: crate::month::Month) -> Result<Vec<UsageRow>, RestError> {
        let account = self.account_sid.as_deref().ok_or_else(|| {
            RestError::Config("Usage Records need TWILIO_ACCOUNT_SID in the environment".into())
        })?;
        let (start, end) = month_dates(month);
        let mut url = format!(
            "{}/2010-04-01/Accounts/{account}/Usage/Records/Monthly.json?StartDate={start}&EndDate={end}&PageSize=1000",
            self.api
        );
        let mut rows = Vec::new();
        loop {
            let page = self.get(&url)?;
            let records = page["usage_records"]
                .as_array()
                .ok_or_else(|| RestError::Shape {
                    url: url.clone(),
                    message: "no usage_records array".into(),
                })?;
            let s = |v: &Value, k: &str| match &v[k] {
                Value::String(s) => s.clone(),
                Value::Null => String::new(),
                other => other.to_string(),
            };
            rows.extend(
                records
                    .iter()
                    .filter(|r| {
                        let c = r["category"].as_str().unwrap_or("");
                        c.starts_with("conversations") || c.starts_with("pchat")
                    })
                    .map(|r| UsageRow {
                        category: s(r, "category"),
                        description: s(r, "description"),
                        count: s(r, "count"),
                        count_unit: s(r, "count_unit"),
                        price: s(r, "price"),
                        start_date: s(r, "start_date"),
                        end_date: s(r, "end_date"),
                    }),
            );
            match page["next_page_uri"].as_str().filter(|u| !u.is_empty()) {
                Some(next) => url = self.follow(next),
                None => return Ok(rows),
            }
        }
    }
}

/// The first and last day of a month, `YYYY-MM-DD` (Usage Records take GMT dates).
pub fn month_dates(m: crate::month::Month) -> (String, String) {
    let next = crate::month::Month::of(
        month_start(m).replace_day(28).unwrap_or(month_start(m)) + time::Duration::days(7),
    );
    let last = month_start(next) - time::Duration::days(1);
    (format!("{m}-01"), format!("{m}-{:02}", last.day()))
}

/// Midnight UTC on the first day of the month.
pub fn month_start(m: crate::month::Month) -> time::OffsetDateTime {
    let month = time::Month::try_from(m.month).unwrap_or(time::Month::January);
    time::Date::from_calendar_date(m.year, month, 1)
        .unwrap_or(time::Date::MIN)
        .midnight()
        .assume_utc()
}

fn read_json(resp: ureq::Response) -> Result<Value, String> {
    let text = resp.into_string().map_err(|e| e.to_string())?;
    serde_json::from_str(&text).map_err(|e| e.to_string())
}

fn path_of(url: &str) -> &str {
    url.find("://")
        .and_then(|i| url[i + 3..].find('/').map(|j| &url[i + 3 + j..]))
        .unwrap_or(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn month_bounds() {
        let m = |s| crate::month::Month::parse(s).unwrap();
        assert_eq!(
            month_dates(m("2026-11")),
            ("2026-11-01".into(), "2026-11-30".into())
        );
        assert_eq!(
            month_dates(m("2028-02")),
            ("2028-02-01".into(), "2028-02-29".into())
        );
        assert_eq!(
            month_dates(m("2026-12")),
            ("2026-12-01".into(), "2026-12-31".into())
        );
    }

    #[test]
    fn links_follow_the_configured_base() {
        let c = Client::new(Some("http://127.0.0.1:9".into()), None, "u", "p");
        assert_eq!(
            c.follow("https://conversations.twilio.com/v1/Conversations?Page=1"),
            "http://127.0.0.1:9/v1/Conversations?Page=1"
        );
        assert_eq!(
            c.follow("/2010-04-01/Accounts/AC1/Usage/Records/Monthly.json?Page=1"),
            "http://127.0.0.1:9/2010-04-01/Accounts/AC1/Usage/Records/Monthly.json?Page=1"
        );
        assert!(!format!("{c:?}").contains("Basic"));
    }
}
