//! `mau-collector twilio sync`: participant aggregation through the Conversations REST
//! API. For each conversation that existed in the month: participants added in the month
//! (identity, or SMS/WhatsApp address) and authors of messages created in the month, each
//! recorded as source `rest_sync`, keyed by the participant or message sid so that a rerun
//! stores nothing twice.

use super::rest::{month_start, Client, RestError};
use super::webhook::author_kind;
use crate::month::Month;
use crate::store::{Observation, Sighting, Store, StoreError, SubjectKind};
use serde_json::Value;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error(transparent)]
    Rest(#[from] RestError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What one walk saw.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Totals {
    pub pages: u64,
    pub conversations: u64,
    pub participants: u64,
    pub messages: u64,
    /// Sightings recorded (before dedupe on rerun).
    pub sightings: u64,
    pub identities: std::collections::BTreeSet<String>,
    pub addresses: std::collections::BTreeSet<String>,
}

impl Totals {
    /// The one-line progress report.
    pub fn progress(&self) -> String {
        format!(
            "conversations {}, participants in month {}, messages in month {}, subjects {}",
            self.conversations,
            self.participants,
            self.messages,
            self.identities.len() + self.addresses.len()
        )
    }
}

/// Walks the month. `service` selects a Conversation Service (`IS…`); `progress` is called
/// after each conversation.
pub async fn run(
    client: &Client,
    store: &Store,
    month: Month,
    service: Option<&str>,
    mut progress: impl FnMut(&Totals),
) -> Result<Totals, SyncError> {
    let start = month_start(month);
    let end = month_start(Month::of(start + time::Duration::days(32)));
    let prefix = match service {
        Some(s) => format!("/v1/Services/{s}"),
        None => "/v1".to_owned(),
    };
    let mut totals = Totals::default();
    let mut next = Some(client.conversations_url(&format!("{prefix}/Conversations?PageSize=100")));
    while let Some(url) = next.take() {
        let page = get(client, &url).await?;
        totals.pages += 1;
        for conv in list(&page, "conversations", &url)? {
            totals.conversations += 1;
            // A conversation made after the month had no activity in it.
            if date(conv).is_some_and(|d| d >= end) {
                continue;
            }
            let sid = text(conv, "sid");
            let scope = Scope {
                client,
                path: format!("{prefix}/Conversations/{sid}"),
                start,
                end,
            };
            let mut observations = participants(&scope, &mut totals).await?;
            observations.extend(messages(&scope, &mut totals).await?);
            for o in &observations {
                for s in &o.sightings {
                    match s.kind {
                        SubjectKind::Identity => totals.identities.insert(s.subject.clone()),
                        SubjectKind::Address => totals.addresses.insert(s.subject.clone()),
                    };
                    totals.sightings += 1;
                }
            }
            if !observations.is_empty() {
                store.observe(observations).await?;
            }
            progress(&totals);
        }
        next = next_page(client, &page);
    }
    Ok(totals)
}

/// One conversation, and the month's bounds.
struct Scope<'a> {
    client: &'a Client,
    /// `/v1[/Services/IS…]/Conversations/CH…`
    path: String,
    start: OffsetDateTime,
    end: OffsetDateTime,
}

async fn participants(sc: &Scope<'_>, totals: &mut Totals) -> Result<Vec<Observation>, SyncError> {
    let (start, end) = (sc.start, sc.end);
    let mut out = Vec::new();
    let url = format!("{}/Participants?PageSize=100", sc.path);
    walk(sc.client, &url, "participants", totals, |p, totals| {
        let Some(at) = date(p).filter(|d| *d >= start && *d < end) else {
            return true;
        };
        totals.participants += 1;
        let address = p["messaging_binding"]["address"].as_str();
        let subject = match (p["identity"].as_str(), address) {
            (Some(id), _) if !id.is_empty() => Some((SubjectKind::Identity, id)),
            (_, Some(addr)) if !addr.is_empty() => Some((SubjectKind::Address, addr)),
            _ => None,
        };
        if let Some((kind, subject)) = subject {
            out.push(observation(p, kind, subject, at));
        }
        true
    })
    .await?;
    Ok(out)
}

/// Newest first, so the walk stops at the first message older than the month.
async fn messages(sc: &Scope<'_>, totals: &mut Totals) -> Result<Vec<Observation>, SyncError> {
    let (start, end) = (sc.start, sc.end);
    let mut out = Vec::new();
    let url = format!("{}/Messages?Order=desc&PageSize=100", sc.path);
    walk(sc.client, &url, "messages", totals, |m, totals| {
        let Some(at) = date(m) else { return true };
        if at < start {
            return false;
        }
        let author = m["author"].as_str().unwrap_or("");
        if at < end {
            totals.messages += 1;
            if !author.is_empty() && author != "system" {
                out.push(observation(m, author_kind(author), author, at));
            }
        }
        true
    })
    .await?;
    Ok(out)
}

/// Calls `each` on every item of every page from `path` on, until it returns false.
async fn walk(
    client: &Client,
    path: &str,
    key: &str,
    totals: &mut Totals,
    mut each: impl FnMut(&Value, &mut Totals) -> bool,
) -> Result<(), SyncError> {
    let mut next = Some(client.conversations_url(path));
    while let Some(url) = next.take() {
        let page = get(client, &url).await?;
        totals.pages += 1;
        for item in list(&page, key, &url)? {
            if !each(item, totals) {
                return Ok(());
            }
        }
        next = next_page(client, &page);
    }
    Ok(())
}

/// A subject of a REST resource (participant or message), keyed by the resource's sid.
fn observation(
    resource: &Value,
    kind: SubjectKind,
    subject: &str,
    at: OffsetDateTime,
) -> Observation {
    Observation {
        key: Some(format!("rest_sync:{}", text(resource, "sid"))),
        sightings: vec![Sighting {
            kind,
            subject: subject.to_owned(),
            source: "rest_sync".into(),
            at,
        }],
    }
}

async fn get(client: &Client, url: &str) -> Result<Value, RestError> {
    let (client, url) = (client.clone(), url.to_owned());
    tokio::task::spawn_blocking(move || client.get(&url))
        .await
        .unwrap_or_else(|e| Err(RestError::Config(format!("the REST worker stopped: {e}"))))
}

fn list<'a>(page: &'a Value, key: &str, url: &str) -> Result<&'a Vec<Value>, RestError> {
    page[key].as_array().ok_or_else(|| RestError::Shape {
        url: url.to_owned(),
        message: format!("no {key} array"),
    })
}

fn next_page(client: &Client, page: &Value) -> Option<String> {
    page["meta"]["next_page_url"]
        .as_str()
        .filter(|u| !u.is_empty())
        .map(|u| client.follow(u))
}

fn text(v: &Value, key: &str) -> String {
    v[key].as_str().unwrap_or("").to_owned()
}

fn date(v: &Value) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(v["date_created"].as_str()?, &Rfc3339).ok()
}
