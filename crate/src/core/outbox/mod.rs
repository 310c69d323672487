//! The durable outbox: every beacon is written to storage before its first attempt and
//! removed only after a 2xx or a definitive 4xx. Memory is the truth while the page lives;
//! storage is the mirror that survives it. Keyed per event and per (month, identity), so
//! it cannot grow without bound and no read-modify-write of a shared list races with
//! another tab. Pure: the browser's `localStorage` is one `Store`, tests use another.
//! What a stored value looks like is `record`'s business.

use alloc::{boxed::Box, string::String, vec::Vec};

pub mod record;

use record::{
    counted_key, done_key, queue_key, v1_queue_key, Pending, Read, COUNTED, DONE, QUEUE,
    V1_COUNTED, V1_QUEUE,
};

use serde::{Serialize, Serializer};

use crate::core::clock::{
    month_start, ms_text, next_month_start, parse_iso8601, parse_ms, utc_month, Millis,
};
use crate::core::delivery::{with_status, Backoff, DropReason, Verdict};
use crate::core::json::JsonView;
use crate::core::origin::Origin;
use crate::core::wire::{Beacon, BeaconKind, Dedupe, MAX_IDENTITY_BYTES};

/// Key prefix of everything the SDK stores, whatever its version.
pub const PREFIX: &str = "mau-beacon:";
/// `Retry-After` is honoured up to a day: a stored hold beyond that (a clock that jumped
/// back) is cut to it.
const HOLD_CAP_MS: f64 = 86_400_000.0;

/// A string key-value store (`localStorage` in the browser). Writes may fail (quota,
/// private mode); the outbox then keeps working from memory and says so in its stats.
pub trait Store {
    /// The value under `key`.
    fn get(&self, key: &str) -> Option<String>;
    /// Writes `value`; `Err` with a reason when the store refuses.
    fn set(&mut self, key: &str, value: &str) -> Result<(), String>;
    /// Deletes `key` (missing keys are fine).
    fn remove(&mut self, key: &str);
    /// All keys that start with [`PREFIX`].
    fn keys(&self) -> Vec<String>;
    /// What the store is, for stats.
    fn kind(&self) -> StorageKind;
}

/// A store that lives as long as the page: the fallback when storage is unavailable.
/// A few entries at most, so a `Vec` (B-trees cost ~20 KB of wasm).
#[derive(Debug, Default)]
pub struct MemoryStore(Vec<(String, String)>);

impl Store for MemoryStore {
    fn get(&self, key: &str) -> Option<String> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
    }
    fn set(&mut self, key: &str, value: &str) -> Result<(), String> {
        self.remove(key);
        self.0.push((key.into(), value.into()));
        Ok(())
    }
    fn remove(&mut self, key: &str) {
        self.0.retain(|(k, _)| k != key);
    }
    fn keys(&self) -> Vec<String> {
        self.0
            .iter()
            .map(|(k, _)| k)
            .filter(|k| k.starts_with(PREFIX))
            .cloned()
            .collect()
    }
    fn kind(&self) -> StorageKind {
        StorageKind::Memory
    }
}

/// A beacon to record: a confirmed connect, or a client still connected into a new month.
#[derive(Debug, Clone)]
pub struct Connect {
    /// `connected` or `still_connected`.
    pub kind: BeaconKind,
    /// The billed identity.
    pub identity: String,
    /// The beacon's id, the same on every retry.
    pub event_id: String,
    /// When it happened, by the device clock.
    pub at: Millis,
    /// One beacon per identity and month, or every one.
    pub dedupe: Dedupe,
    /// The client's version, if known.
    pub client_version: Option<String>,
    /// The app's signed ticket, kept so that a retry after a reload still carries it.
    pub ticket: Option<String>,
    /// Where the client was made, kept like the ticket.
    pub origin: Origin,
}

/// How long a tombstone tells the other tabs that a beacon is done.
const DONE_MS: Millis = 3_600_000.0;

/// What `record_connect` did.
#[derive(Debug, Clone, PartialEq)]
pub enum Recorded {
    /// A beacon was queued (and stored, where storage works).
    Queued,
    /// The identity is already counted this month on this device: no beacon.
    AlreadyCounted,
    /// The identity is longer than the collector takes: no beacon, a drop counted as
    /// `identity_too_long` (the collector would answer 400).
    TooLong,
}

/// Counts by reason, serialized as a JSON object (`{"http_400": 1}`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Reasons(Vec<(String, u32)>);

impl Reasons {
    /// The count for `reason`, if any.
    pub fn get(&self, reason: &str) -> Option<u32> {
        self.0.iter().find(|(r, _)| r == reason).map(|(_, n)| *n)
    }

    fn bump(&mut self, reason: &str) {
        match self.0.iter_mut().find(|(r, _)| r == reason) {
            Some((_, n)) => *n += 1,
            None => self.0.push((reason.into(), 1)),
        }
    }
}

impl Serialize for Reasons {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.0.iter().map(|(r, n)| (r, n)))
    }
}

/// Where the outbox keeps beacons (`stats().storage`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub enum StorageKind {
    /// The browser's `localStorage`: beacons survive the page.
    #[default]
    #[serde(rename = "localStorage")]
    LocalStorage,
    /// Storage unavailable or refusing writes: beacons live as long as the page.
    #[serde(rename = "memory")]
    Memory,
}

/// Counts that `tracker.stats()` shows. Field names are the JS ones.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Stats {
    /// Beacons stored and not yet delivered.
    pub pending: u32,
    /// Beacons the collector answered with a 2xx (this page).
    pub delivered: u32,
    /// Beacons or connects given up, all reasons together.
    pub dropped: u32,
    /// `dropped` by reason: `http_400`, `no_identity`, `corrupt_store`, …
    pub drop_reasons: Reasons,
    /// `connected` events seen, reconnects included.
    pub connects_seen: u32,
    /// Beacons queued.
    pub queued: u32,
    /// Connects that sent no beacon because the identity was counted this month already.
    pub deduped: u32,
    /// Failed attempts that will be retried.
    pub retries: u32,
    /// Where beacons are kept: `localStorage`, or `memory` when storage is unavailable.
    pub storage: StorageKind,
    /// Why storage is not used, when it is not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub storage_error: Option<String>,
    /// The last delivery error (network error or HTTP status).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}

/// The queue of beacons and the record of who was counted this month.
pub struct Outbox {
    store: Box<dyn Store>,
    pending: Vec<Pending>,
    /// `counted:` keys of this month (a handful per device), each with its mark (see
    /// `read_mark`; also kept here for when storage fails).
    counted: Vec<(String, String)>,
    backoff: Backoff,
    stats: Stats,
}

impl core::fmt::Debug for Outbox {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Outbox")
            .field("stats", &self.stats)
            .finish()
    }
}

/// How far off a device clock may be while its month marks still hold. The collector
/// counts a beacon in the month of its corrected time (received − the delay the device
/// measured), not of the device clock; so near a month's edge, where a clock this far off
/// could put the collector in the neighbouring month, a mark does not stand in for a beacon.
pub const CLOCK_SLACK_MS: Millis = 6.0 * 3_600_000.0;

/// Whether a month mark made at `mark` (the device time of its beacon) covers a connect at
/// `now`: both lie in one UTC month even shifted by up to `CLOCK_SLACK_MS` either way, so
/// the collector has that month whatever the clock's error. Otherwise the connect sends a
/// beacon: connects in the first and last `CLOCK_SLACK_MS` of a month each do, until a
/// beacon lies well inside it. A mark without a time (0.1.0's `"1"`) covers the month.
pub fn mark_covers(mark: Millis, now: Millis) -> bool {
    mark < 1e12
        || utc_month(mark.min(now) - CLOCK_SLACK_MS) == utc_month(mark.max(now) + CLOCK_SLACK_MS)
}

/// When a client connected all along is reported for a month (`still_connected`): at
/// the month's first instant, and again `CLOCK_SLACK_MS` later, when the beacon lies
/// inside the month whatever the device clock's error (the first may land in the month
/// before by the collector's corrected time, if the clock is ahead; the month rule then
/// lets the second through). The last such moment at or before `now`, and the next one.
pub fn still_connected_checks(now: Millis) -> (Millis, Millis) {
    let start = month_start(now);
    let inside = start + CLOCK_SLACK_MS;
    if now < inside {
        (start, inside)
    } else {
        (inside, next_month_start(now))
    }
}

/// A month mark's device time and the beacon it stands for: `<ms>:<event_id>`. 0.1.0's
/// `1` names no beacon and covers the whole month.
fn read_mark(value: &str) -> (Millis, &str) {
    let (time, id) = match value.bytes().position(|b| b == b':') {
        Some(i) => (
            value.get(..i).unwrap_or(""),
            value.get(i + 1..).unwrap_or(""),
        ),
        None => (value, ""),
    };
    (parse_ms(time).unwrap_or(1.0), id)
}

/// The identity in a mark's `YYYY-MM:identity` rest, if the mark is of `month`. No
/// slicing by index: a slice that can panic links `core::fmt` in (docs/size.md).
fn of_month<'a>(rest: &'a str, month: &str) -> Option<&'a str> {
    rest.strip_prefix(month)?.strip_prefix(':')
}

impl Outbox {
    /// Opens the outbox over `store`: replays what an earlier page left, forgets the
    /// counted marks of other months. `storage_error` says why `store` is memory, if it is.
    pub fn open<J: JsonView>(
        store: Box<dyn Store>,
        backoff: Backoff,
        now: Millis,
        storage_error: Option<String>,
    ) -> Outbox {
        let month = utc_month(now);
        let mut outbox = Outbox {
            stats: Stats {
                storage: store.kind(),
                storage_error,
                ..Stats::default()
            },
            store,
            pending: Vec::new(),
            counted: Vec::new(),
            backoff,
        };
        for key in outbox.store.keys() {
            if let Some(rest) = key.strip_prefix(COUNTED) {
                if of_month(rest, &month).is_some() {
                    let mark = outbox.store.get(&key).unwrap_or_default();
                    outbox.counted.push((key, mark));
                } else {
                    outbox.store.remove(&key);
                }
            } else if let Some(rest) = key.strip_prefix(V1_COUNTED) {
                // 0.1.0's mark: ours from now on. Its own is left for the month, so a 0.1.0
                // tab still open does not count the identity again.
                if let Some(identity) = of_month(rest, &month) {
                    let mark = counted_key(&month, identity);
                    let _ = outbox.store.set(&mark, "1");
                    if !outbox.counted.iter().any(|(k, _)| *k == mark) {
                        outbox.counted.push((mark, "1".into()));
                    }
                } else {
                    outbox.store.remove(&key);
                }
            } else if key.starts_with(DONE) {
                let expires = outbox.store.get(&key).and_then(|v| parse_ms(&v));
                if expires.is_none_or(|e| e <= now) {
                    outbox.store.remove(&key);
                }
            } else if key.starts_with(QUEUE) || key.starts_with(V1_QUEUE) {
                let text = outbox.store.get(&key).unwrap_or_default();
                let read = if key.starts_with(QUEUE) {
                    Pending::from_record::<J>(&text)
                } else {
                    record::read_v1::<J>(&text, now)
                };
                match read {
                    Read::Newer => {}
                    Read::Pending(p) if outbox.knows(&p.beacon.event_id) => {
                        // 0.1.0's copy of a beacon already taken over.
                        outbox.store.remove(&key);
                    }
                    Read::Pending(mut p) if key.ends_with(p.beacon.event_id.as_str()) => {
                        // The backoff is per page; a hold is the collector's and stays.
                        p.hold_until = p.hold_until.min(now + HOLD_CAP_MS);
                        p.next_at = p.hold_until.max(now);
                        if key.starts_with(V1_QUEUE) && outbox.persist(&p) {
                            outbox.store.remove(&key);
                        }
                        outbox.count_stored(&p.beacon, &month, now);
                        outbox.insert_by_age(*p);
                    }
                    _ => {
                        outbox.store.remove(&key);
                        outbox.count_drop(DropReason::CorruptStore);
                    }
                }
            }
        }
        outbox.stats.pending = outbox.pending.len() as u32;
        outbox
    }

    /// A stored beacon of `month` without a mark: its page was closed before the tabs'
    /// lock decided. It will be delivered, so it counts the month here.
    fn count_stored(&mut self, b: &Beacon, month: &str, now: Millis) {
        if b.dedupe != Dedupe::Month || b.month != month {
            return;
        }
        let at = parse_iso8601(&b.occurred_at).unwrap_or(now);
        if self.mark_of(&b.identity, at).is_none() {
            let stored = self.stats.storage == StorageKind::LocalStorage;
            self.mark(&b.identity, at, &b.event_id, stored);
        }
    }

    fn knows(&self, event_id: &str) -> bool {
        self.pending.iter().any(|p| p.beacon.event_id == event_id)
    }

    /// Oldest first; an insertion (a few items) costs less wasm than a sort.
    fn insert_by_age(&mut self, p: Pending) {
        if self.knows(&p.beacon.event_id) {
            return;
        }
        let at = self
            .pending
            .iter()
            .position(|q| q.beacon.occurred_at > p.beacon.occurred_at);
        self.pending.insert(at.unwrap_or(self.pending.len()), p);
    }

    /// Whether `identity` was already reported this UTC month on this device (by this page,
    /// an earlier one, or another tab since this one opened). Near a month's edge a mark
    /// counts only if it holds whatever the clock's error: see [`mark_covers`].
    pub fn is_counted(&self, identity: &str, now: Millis) -> bool {
        let mark = self.mark_of(identity, now);
        mark.is_some_and(|m| mark_covers(read_mark(&m).0, now))
    }

    /// The month mark of `identity` for the month of `at`: the later of storage's and
    /// memory's (memory may have a newer one than storage that refused it).
    fn mark_of(&self, identity: &str, at: Millis) -> Option<String> {
        let marker = counted_key(&utc_month(at), identity);
        let stored = self.store.get(&marker);
        let mine = self.counted.iter().find(|(k, _)| *k == marker);
        match (stored, mine.map(|(_, m)| m.clone())) {
            (Some(a), Some(b)) if read_mark(&b).0 > read_mark(&a).0 => Some(b),
            (a, b) => a.or(b),
        }
    }

    /// Queues (and stores) a beacon for `c` unless `dedupe` is month and the identity is
    /// counted already, and marks the identity counted for the month.
    pub fn record_connect(&mut self, c: Connect) -> Recorded {
        self.record(c, true)
    }

    /// Like [`Outbox::record_connect`], but the month is marked only by [`Outbox::count`],
    /// once the tabs' lock has decided: the beacon is stored at once, so a page killed
    /// before that leaves it to the next page (at worst a second beacon, never none).
    pub fn record_uncounted(&mut self, c: Connect) -> Recorded {
        self.record(c, false)
    }

    fn record(&mut self, c: Connect, mark: bool) -> Recorded {
        if c.kind == BeaconKind::Connected {
            self.stats.connects_seen += 1;
        }
        if c.identity.len() > MAX_IDENTITY_BYTES {
            self.count_drop(DropReason::IdentityTooLong);
            return Recorded::TooLong;
        }
        if c.dedupe == Dedupe::Month && self.is_counted(&c.identity, c.at) {
            self.stats.deduped += 1;
            return Recorded::AlreadyCounted;
        }
        let (identity, at) = (c.identity.clone(), c.at);
        let mut beacon = Beacon {
            kind: c.kind,
            ticket: c.ticket,
            ..Beacon::connected(&c.identity, &c.event_id, at, c.dedupe, c.client_version)
        };
        beacon.set_origin(c.origin);
        let pending = Pending {
            beacon,
            next_at: at,
            hold_until: 0.0,
        };
        // Store BEFORE the first attempt; the mark only when the beacon itself is durable,
        // so a later page never skips an identity whose beacon was lost with this one.
        let stored = self.persist(&pending);
        if mark {
            self.mark(&identity, at, &c.event_id, stored);
        }
        self.pending.push(pending);
        self.stats.queued += 1;
        self.stats.pending = self.pending.len() as u32;
        Recorded::Queued
    }

    /// Marks `identity` counted for the month of `at` by the beacon `event_id` (in storage
    /// too, if `stored`).
    fn mark(&mut self, identity: &str, at: Millis, event_id: &str, stored: bool) {
        let marker = counted_key(&utc_month(at), identity);
        // Whole milliseconds: integer text keeps float formatting out of the wasm.
        let mut value = ms_text(at);
        value.push(':');
        value.push_str(event_id);
        if stored {
            let _ = self.store.set(&marker, &value);
        }
        self.counted.retain(|(k, _)| *k != marker);
        self.counted.push((marker, value));
    }

    /// The tabs' lock decided on a beacon from [`Outbox::record_uncounted`]: it stays and
    /// marks its month, unless another tab held the lock (`elsewhere`) or counted the
    /// identity meanwhile; then it goes, deduped. `at` is the beacon's time. Whether it
    /// stays.
    pub fn count(&mut self, event_id: &str, at: Millis, elsewhere: bool) -> bool {
        let Some(idx) = self
            .pending
            .iter()
            .position(|p| p.beacon.event_id == event_id)
        else {
            return false;
        };
        let identity = self.pending[idx].beacon.identity.clone();
        // Counted by another beacon (a mark may name this one: a page opened meanwhile
        // counted it for us, as a beacon whose page was closed before the lock decided).
        let other = self.mark_of(&identity, at).is_some_and(|m| {
            let (time, id) = read_mark(&m);
            id != event_id && mark_covers(time, at)
        });
        if elsewhere || other {
            self.pending.remove(idx);
            self.done(event_id, at);
            self.stats.queued -= 1;
            self.stats.deduped += 1;
            self.stats.pending = self.pending.len() as u32;
            return false;
        }
        let stored = self.stats.storage == StorageKind::LocalStorage;
        self.mark(&identity, at, event_id, stored);
        true
    }

    /// Forgets the beacons another tab of this profile delivered (or dropped): their
    /// tombstone says so. A record gone without one (storage cleared) is kept, and stored
    /// again at its next attempt.
    pub fn prune_taken(&mut self) {
        let store = &self.store;
        self.pending
            .retain(|p| store.get(&done_key(&p.beacon.event_id)).is_none());
        self.stats.pending = self.pending.len() as u32;
    }

    /// A connect whose identity could not be found: no beacon, but counted as a drop.
    pub fn record_no_identity(&mut self) {
        self.stats.connects_seen += 1;
        self.count_drop(DropReason::NoIdentity);
    }

    /// The next beacon to attempt: the oldest one due at `now` (any, when `force`),
    /// skipping `skip` (those already tried in this pass).
    pub fn next_due(&self, now: Millis, force: bool, skip: &[String]) -> Option<String> {
        self.pending
            .iter()
            .find(|p| {
                (force || p.next_at <= now)
                    && p.hold_until <= now
                    && !skip.contains(&p.beacon.event_id)
            })
            .map(|p| p.beacon.event_id.clone())
    }

    /// Stamps and stores the next attempt of `event_id`; the body to send.
    pub fn begin_attempt(&mut self, event_id: &str, now: Millis) -> Option<String> {
        let p = self
            .pending
            .iter_mut()
            .find(|p| p.beacon.event_id == event_id)?;
        let body = p.beacon.next_attempt(now);
        let p = p.clone();
        self.persist(&p);
        Some(body)
    }

    /// Applies the outcome of an attempt (`Ok(status)` or `Err(network error)`) and says
    /// what became of the beacon; `None` if it was no longer pending.
    pub fn settle(
        &mut self,
        event_id: &str,
        outcome: &Result<u16, String>,
        retry_after_ms: Option<f64>,
        now: Millis,
        rand01: f64,
    ) -> Option<Verdict> {
        let idx = self
            .pending
            .iter()
            .position(|p| p.beacon.event_id == event_id)?;
        let verdict = match outcome {
            Ok(status) => crate::core::delivery::verdict(*status),
            Err(_) => Verdict::Retry,
        };
        match &verdict {
            Verdict::Delivered => {
                let p = self.pending.remove(idx);
                self.done(&p.beacon.event_id, now);
                self.stats.delivered += 1;
            }
            Verdict::Retry => {
                self.stats.retries += 1;
                self.stats.last_error = Some(match outcome {
                    Ok(status) => with_status("HTTP ", *status),
                    Err(e) => e.clone(),
                });
                let p = &mut self.pending[idx];
                let delay = self
                    .backoff
                    .next_delay_ms(p.beacon.attempt, rand01, retry_after_ms);
                p.next_at = now + delay;
                p.hold_until = retry_after_ms.map_or(0.0, |ra| now + ra.min(HOLD_CAP_MS));
                // The schedule is stored too: a reload honours the hold.
                let p = p.clone();
                self.persist(&p);
            }
            Verdict::Drop(reason) => {
                let p = self.pending.remove(idx);
                self.done(&p.beacon.event_id, now);
                // Not counted after all: a later connect may try again.
                let marker = counted_key(&p.beacon.month, &p.beacon.identity);
                self.store.remove(&marker);
                self.counted.retain(|(m, _)| *m != marker);
                self.stats.last_error = Some(reason.name());
                self.count_drop(*reason);
            }
        }
        self.stats.pending = self.pending.len() as u32;
        Some(verdict)
    }

    /// When the earliest waiting beacon is due, if any.
    pub fn next_wake(&self) -> Option<Millis> {
        self.pending.iter().map(|p| p.next_at).reduce(f64::min)
    }

    /// Event ids of the pending beacons the collector has not put on hold, oldest first
    /// (for the last try on `pagehide`).
    pub fn pending_ids(&self, now: Millis) -> Vec<String> {
        self.pending
            .iter()
            .filter(|p| p.hold_until <= now)
            .map(|p| p.beacon.event_id.clone())
            .collect()
    }

    /// A copy of the counters.
    pub fn stats(&self) -> Stats {
        self.stats.clone()
    }

    /// Removes a beacon's record (and 0.1.0's copy, if one could not be taken over).
    fn forget(&mut self, event_id: &str) {
        self.store.remove(&queue_key(event_id));
        self.store.remove(&v1_queue_key(event_id));
    }

    /// Forgets a beacon and leaves a tombstone, so the other tabs forget their copy.
    fn done(&mut self, event_id: &str, now: Millis) {
        self.forget(event_id);
        let _ = self.store.set(&done_key(event_id), &ms_text(now + DONE_MS));
    }

    fn persist(&mut self, p: &Pending) -> bool {
        match self
            .store
            .set(&queue_key(&p.beacon.event_id), &p.to_record())
        {
            Ok(()) => true,
            Err(reason) => {
                self.stats.storage = StorageKind::Memory;
                self.stats.storage_error = Some(reason);
                false
            }
        }
    }

    fn count_drop(&mut self, reason: DropReason) {
        self.stats.dropped += 1;
        self.stats.drop_reasons.bump(&reason.name());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::wire::BeaconKind::Connected;
    use alloc::rc::Rc;
    use core::cell::RefCell;
    use std::collections::BTreeMap;
    use std::string::ToString;

    const NOV: Millis = 1_795_550_932_123.0;
    const DEC: Millis = 1_796_083_200_000.0;

    /// A store shared with the test, so it can look inside and play "next page".
    #[derive(Clone, Default)]
    struct Shared(Rc<RefCell<BTreeMap<String, String>>>, Rc<RefCell<bool>>);

    impl Store for Shared {
        fn get(&self, key: &str) -> Option<String> {
            self.0.borrow().get(key).cloned()
        }
        fn set(&mut self, key: &str, value: &str) -> Result<(), String> {
            if *self.1.borrow() {
                return Err("QuotaExceededError".into());
            }
            self.0.borrow_mut().insert(key.into(), value.into());
            Ok(())
        }
        fn remove(&mut self, key: &str) {
            self.0.borrow_mut().remove(key);
        }
        fn keys(&self) -> Vec<String> {
            self.0
                .borrow()
                .keys()
                .filter(|k| k.starts_with(PREFIX))
                .cloned()
                .collect()
        }
        fn kind(&self) -> StorageKind {
            StorageKind::LocalStorage
        }
    }

    fn c(kind: BeaconKind, identity: &str, event_id: &str, at: Millis, dedupe: Dedupe) -> Connect {
        Connect {
            kind,
            identity: identity.into(),
            event_id: event_id.into(),
            at,
            dedupe,
            client_version: None,
            ticket: None,
            origin: Origin::app(),
        }
    }

    /// A connect of "alice" with month dedupe.
    fn alice(ob: &mut Outbox, event_id: &str, at: Millis) -> Recorded {
        ob.record_connect(c(Connected, "alice", event_id, at, Dedupe::Month))
    }

    fn open(store: &Shared, now: Millis) -> Outbox {
        Outbox::open::<serde_json::Value>(Box::new(store.clone()), Backoff::default(), now, None)
    }

    #[test]
    fn stored_before_first_attempt_and_removed_on_2xx() {
        let store = Shared::default();
        let mut ob = open(&store, NOV);
        assert_eq!(
            ob.record_connect(c(Connected, "alice", "e1", NOV, Dedupe::Month)),
            Recorded::Queued
        );
        assert!(store.get("mau-beacon:v2:q:e1").is_some());
        assert!(store.get("mau-beacon:v2:counted:2026-11:alice").is_some());
        let id = ob.next_due(NOV, false, &[]).unwrap();
        let body = ob.begin_attempt(&id, NOV + 5.0).unwrap();
        assert!(body.contains("\"attempt\":1"));
        ob.settle(&id, &Ok(204), None, NOV + 9.0, 0.5);
        assert!(store.get("mau-beacon:v2:q:e1").is_none());
        let s = ob.stats();
        assert_eq!(
            (s.pending, s.delivered, s.queued, s.connects_seen),
            (0, 1, 1, 1)
        );
        assert!(ob.is_counted("alice", NOV));
    }

    #[test]
    fn an_identity_the_collector_would_refuse_is_refused_here() {
        let store = Shared::default();
        let mut ob = open(&store, NOV);
        let max = "é".repeat(128);
        assert_eq!(
            ob.record_connect(c(Connected, &max, "e1", NOV, Dedupe::Month)),
            Recorded::Queued
        );
        let long = format!("{max}x");
        assert_eq!(
            ob.record_connect(c(Connected, &long, "e2", NOV, Dedupe::Month)),
            Recorded::TooLong
        );
        let s = ob.stats();
        assert_eq!((s.pending, s.dropped, s.connects_seen), (1, 1, 2));
        assert_eq!(s.drop_reasons.get("identity_too_long"), Some(1));
        assert!(store.get("mau-beacon:v2:q:e2").is_none());
    }

    #[test]
    fn one_beacon_per_identity_per_month_unless_none() {
        let store = Shared::default();
        let mut ob = open(&store, NOV);
        ob.record_connect(c(Connected, "alice", "e1", NOV, Dedupe::Month));
        assert_eq!(
            ob.record_connect(c(Connected, "alice", "e2", NOV + 1.0, Dedupe::Month)),
            Recorded::AlreadyCounted
        );
        assert_eq!(
            ob.record_connect(c(Connected, "bob", "e3", NOV + 2.0, Dedupe::Month)),
            Recorded::Queued
        );
        assert_eq!(
            ob.record_connect(c(Connected, "alice", "e4", NOV + 3.0, Dedupe::None)),
            Recorded::Queued
        );
        // A new month counts again.
        assert_eq!(
            ob.record_connect(c(Connected, "alice", "e5", DEC, Dedupe::Month)),
            Recorded::Queued
        );
        let s = ob.stats();
        assert_eq!(
            (s.connects_seen, s.queued, s.deduped, s.pending),
            (5, 4, 1, 4)
        );
    }

    #[test]
    fn another_tab_that_counted_first_is_respected() {
        let store = Shared::default();
        let mut tab_a = open(&store, NOV);
        let mut tab_b = open(&store, NOV);
        assert_eq!(
            tab_a.record_connect(c(Connected, "alice", "e1", NOV, Dedupe::Month)),
            Recorded::Queued
        );
        assert!(tab_b.is_counted("alice", NOV));
        assert_eq!(
            tab_b.record_connect(c(Connected, "alice", "e2", NOV + 5.0, Dedupe::Month)),
            Recorded::AlreadyCounted
        );
    }

    #[test]
    fn next_page_replays_and_remembers_the_month() {
        let store = Shared::default();
        let mut ob = open(&store, NOV);
        ob.record_connect(c(Connected, "alice", "e1", NOV, Dedupe::Month));
        ob.begin_attempt("e1", NOV);
        ob.settle(
            "e1",
            &Err("TypeError: Failed to fetch".into()),
            None,
            NOV,
            0.5,
        );
        drop(ob);
        let mut next = open(&store, NOV + 60_000.0);
        assert_eq!(next.stats().pending, 1);
        assert!(next.is_counted("alice", NOV));
        assert_eq!(
            next.record_connect(c(Connected, "alice", "e9", NOV + 61_000.0, Dedupe::Month)),
            Recorded::AlreadyCounted
        );
        let body = next.begin_attempt("e1", NOV + 60_000.0).unwrap();
        assert!(body.contains("\"attempt\":2"), "{body}");
        assert!(body.contains("\"event_id\":\"e1\""));
    }

    #[test]
    fn next_month_forgets_old_marks_but_not_old_beacons() {
        let store = Shared::default();
        let mut ob = open(&store, NOV);
        ob.record_connect(c(Connected, "alice", "e1", NOV, Dedupe::Month));
        drop(ob);
        let ob = open(&store, DEC);
        assert!(!ob.is_counted("alice", DEC));
        assert!(store.get("mau-beacon:v2:counted:2026-11:alice").is_none());
        assert_eq!(
            ob.stats().pending,
            1,
            "November's beacon is still delivered"
        );
    }

    #[test]
    fn retry_then_drop_on_definitive_4xx() {
        let store = Shared::default();
        let mut ob = open(&store, NOV);
        ob.record_connect(c(Connected, "alice", "e1", NOV, Dedupe::Month));
        ob.begin_attempt("e1", NOV);
        ob.settle("e1", &Ok(503), Some(30_000.0), NOV, 0.5);
        assert_eq!(ob.next_due(NOV + 29_000.0, false, &[]), None);
        assert_eq!(ob.next_wake(), Some(NOV + 30_000.0));
        // Retry-After holds even a forced flush (tab hidden, back online) and pagehide.
        assert_eq!(ob.next_due(NOV + 1.0, true, &[]), None);
        assert!(ob.pending_ids(NOV + 1.0).is_empty());
        assert_eq!(
            ob.next_due(NOV + 30_000.0, true, &[]).as_deref(),
            Some("e1")
        );
        ob.begin_attempt("e1", NOV + 30_000.0);
        ob.settle("e1", &Ok(400), None, NOV + 30_000.0, 0.5);
        let s = ob.stats();
        assert_eq!((s.pending, s.dropped, s.retries), (0, 1, 1));
        assert_eq!(s.drop_reasons.get("http_400"), Some(1));
        assert!(
            store
                .keys()
                .iter()
                .all(|k| k.starts_with("mau-beacon:v2:done:")),
            "only a tombstone left: {:?}",
            store.keys()
        );
        // The identity was never counted by the collector, so a later connect beacons again.
        assert!(!ob.is_counted("alice", NOV));
    }

    #[test]
    fn storage_failure_keeps_working_from_memory() {
        let store = Shared::default();
        *store.1.borrow_mut() = true;
        let mut ob = open(&store, NOV);
        assert_eq!(
            ob.record_connect(c(Connected, "alice", "e1", NOV, Dedupe::Month)),
            Recorded::Queued
        );
        let s = ob.stats();
        assert_eq!(s.storage, StorageKind::Memory);
        assert_eq!(s.storage_error.as_deref(), Some("QuotaExceededError"));
        assert_eq!(s.pending, 1);
        assert!(ob.is_counted("alice", NOV));
        // No durable mark without a durable beacon.
        assert!(store.keys().is_empty());
    }

    #[test]
    fn a_newer_format_is_left_alone() {
        let store = Shared::default();
        let v2 = r#"{"v":2,"identity":"x","event_id":"n"}"#;
        let v3 = r#"{"v":3,"identity":"x","event_id":"m"}"#;
        let mut map = store.0.borrow_mut();
        map.insert("mau-beacon:v1:q:n".into(), v2.into());
        map.insert("mau-beacon:v2:q:m".into(), v3.into());
        drop(map);
        let ob = open(&store, NOV);
        assert_eq!((ob.stats().pending, ob.stats().dropped), (0, 0));
        assert_eq!(store.get("mau-beacon:v1:q:n").as_deref(), Some(v2));
        assert_eq!(store.get("mau-beacon:v2:q:m").as_deref(), Some(v3));
    }

    #[test]
    fn a_retry_after_hold_survives_a_reload() {
        let store = Shared::default();
        let mut ob = open(&store, NOV);
        ob.record_connect(c(Connected, "alice", "e1", NOV, Dedupe::Month));
        ob.begin_attempt("e1", NOV);
        ob.settle("e1", &Ok(429), Some(600_000.0), NOV, 0.5);
        drop(ob);
        let next = open(&store, NOV + 1_000.0);
        assert_eq!(next.stats().pending, 1);
        assert_eq!(next.next_due(NOV + 1_000.0, true, &[]), None);
        assert!(next.pending_ids(NOV + 1_000.0).is_empty());
        assert_eq!(next.next_wake(), Some(NOV + 600_000.0));
        assert_eq!(
            next.next_due(NOV + 600_000.0, false, &[]).as_deref(),
            Some("e1")
        );
        // Without a hold, the next page tries at once (the backoff is per page).
        let mut ob = next;
        ob.begin_attempt("e1", NOV + 600_000.0);
        ob.settle("e1", &Err("offline".into()), None, NOV + 600_000.0, 0.5);
        let later = open(&store, NOV + 600_001.0);
        assert_eq!(
            later.next_due(NOV + 600_001.0, false, &[]).as_deref(),
            Some("e1")
        );
    }

    /// A profile as 0.1.0 left it: its exact keys and values.
    #[test]
    fn what_0_1_0_stored_is_taken_over_and_delivered() {
        let store = Shared::default();
        let v1 = r#"{"v":1,"kind":"connected","identity":"alice","event_id":"old1","month":"2026-11","occurred_at":"2026-11-24T20:08:52.123Z","sent_at":"2026-11-24T20:08:52.140Z","attempt":1,"dedupe":"month","sdk":{"name":"mau-beacon","version":"0.1.0"}}"#;
        let mut map = store.0.borrow_mut();
        map.insert("mau-beacon:v1:q:old1".into(), v1.into());
        map.insert("mau-beacon:v1:counted:2026-11:alice".into(), "1".into());
        map.insert("mau-beacon:v1:counted:2026-10:bob".into(), "1".into());
        drop(map);
        let mut ob = open(&store, NOV);
        assert_eq!(ob.stats().pending, 1);
        assert!(ob.is_counted("alice", NOV));
        assert_eq!(
            ob.record_connect(c(Connected, "alice", "new", NOV, Dedupe::Month)),
            Recorded::AlreadyCounted
        );
        assert!(store.get("mau-beacon:v1:q:old1").is_none(), "taken over");
        assert!(store.get("mau-beacon:v2:q:old1").is_some());
        assert!(store.get("mau-beacon:v2:counted:2026-11:alice").is_some());
        assert!(store.get("mau-beacon:v1:counted:2026-10:bob").is_none());
        let body = ob.begin_attempt("old1", NOV).unwrap();
        assert!(body.contains(r#""event_id":"old1""#), "{body}");
        assert!(body.contains(r#""attempt":2"#), "{body}");
        assert!(body.contains(r#""version":"0.1.0""#), "{body}");
        ob.settle("old1", &Ok(200), None, NOV, 0.5);
        assert_eq!(ob.stats().delivered, 1);
        let keys = store.keys();
        let left = |k: &String| k.contains("counted") || k.contains(":done:");
        assert!(keys.iter().all(left), "{keys:?}");
    }

    #[test]
    fn a_0_1_0_beacon_kept_in_memory_when_storage_is_full() {
        let store = Shared::default();
        let v1 = r#"{"v":1,"kind":"connected","identity":"al","event_id":"o2","month":"2026-11","occurred_at":"2026-11-24T20:08:52.123Z","sent_at":"2026-11-24T20:08:52.123Z","attempt":0,"dedupe":"none","sdk":{"name":"mau-beacon","version":"0.1.0"}}"#;
        store
            .0
            .borrow_mut()
            .insert("mau-beacon:v1:q:o2".into(), v1.into());
        *store.1.borrow_mut() = true;
        let mut ob = open(&store, NOV);
        assert_eq!(ob.stats().pending, 1);
        assert!(store.get("mau-beacon:v1:q:o2").is_some(), "not lost");
        ob.begin_attempt("o2", NOV);
        ob.settle("o2", &Ok(200), None, NOV, 0.5);
        assert!(store.keys().is_empty());
    }

    #[test]
    fn corrupt_items_are_dropped_and_counted() {
        let store = Shared::default();
        store
            .0
            .borrow_mut()
            .insert("mau-beacon:v2:q:x".into(), "{not json".into());
        store
            .0
            .borrow_mut()
            .insert("unrelated".into(), "kept".into());
        let ob = open(&store, NOV);
        let s = ob.stats();
        assert_eq!((s.pending, s.dropped), (0, 1));
        assert_eq!(s.drop_reasons.get("corrupt_store"), Some(1));
        assert_eq!(store.get("unrelated").as_deref(), Some("kept"));
    }

    #[test]
    fn skip_set_limits_one_attempt_per_pass() {
        let store = Shared::default();
        let mut ob = open(&store, NOV);
        ob.record_connect(c(Connected, "a", "e1", NOV, Dedupe::None));
        ob.record_connect(c(Connected, "b", "e2", NOV + 1.0, Dedupe::None));
        let mut skip: Vec<String> = Vec::new();
        assert_eq!(ob.next_due(NOV + 2.0, true, &skip).as_deref(), Some("e1"));
        skip.push("e1".into());
        assert_eq!(ob.next_due(NOV + 2.0, true, &skip).as_deref(), Some("e2"));
        skip.push("e2".into());
        assert_eq!(ob.next_due(NOV + 2.0, true, &skip), None);
        assert_eq!(
            ob.pending_ids(NOV),
            vec!["e1".to_string(), "e2".to_string()]
        );
        // Without Retry-After a failure only backs off: a forced flush may still try.
        ob.begin_attempt("e1", NOV);
        ob.settle("e1", &Ok(503), None, NOV, 0.5);
        assert_eq!(ob.next_due(NOV + 1.0, false, &[]).as_deref(), Some("e2"));
        assert_eq!(ob.next_due(NOV + 1.0, true, &[]).as_deref(), Some("e1"));
        ob.record_no_identity();
        assert_eq!(ob.stats().drop_reasons.get("no_identity"), Some(1));
    }

    #[test]
    fn a_clock_3h_off_near_the_month_edge_cannot_hide_a_month() {
        const H: Millis = 3_600_000.0;
        // 3 h ahead: at 22:00 on Nov 30 (true) the device says Dec 1 01:00. The collector
        // counts that beacon in November; a connect at 02:00 true time must still beacon.
        let store = Shared::default();
        let mut ob = open(&store, DEC + H);
        let ahead = 3.0 * H;
        assert_eq!(
            alice(&mut ob, "e1", DEC - 2.0 * H + ahead),
            Recorded::Queued
        );
        assert_eq!(
            alice(&mut ob, "e2", DEC + 2.0 * H + ahead),
            Recorded::Queued,
            "December would be lost"
        );
        // Well inside the month, the mark holds again.
        let mid = DEC + 10.0 * 24.0 * H;
        assert_eq!(alice(&mut ob, "e3", mid), Recorded::Queued);
        assert_eq!(alice(&mut ob, "e4", mid + H), Recorded::AlreadyCounted);
        // 3 h behind: at 01:00 on Dec 1 (true) the device says Nov 30 22:00, and November
        // is marked already: the connect still beacons, so the collector has December.
        let store = Shared::default();
        let mut ob = open(&store, DEC - 5.0 * H);
        let behind = -3.0 * H;
        alice(&mut ob, "b1", DEC - 6.0 * 24.0 * H);
        assert_eq!(alice(&mut ob, "b2", DEC + H + behind), Recorded::Queued);
        assert!(mark_covers(1.0, DEC), "0.1.0's marks still count");
    }

    #[test]
    fn still_connected_into_a_new_month_is_one_beacon_of_its_own_kind() {
        let store = Shared::default();
        let mut ob = open(&store, NOV);
        ob.record_connect(c(Connected, "alice", "e1", NOV, Dedupe::Month));
        let still = BeaconKind::StillConnected;
        assert_eq!(
            ob.record_connect(c(still, "alice", "e2", DEC, Dedupe::Month)),
            Recorded::Queued
        );
        let body = ob.begin_attempt("e2", DEC).unwrap();
        assert!(body.contains("\"kind\":\"still_connected\""), "{body}");
        assert!(body.contains("\"month\":\"2026-12\""), "{body}");
        // Counted for December, but so near its start that a clock a few hours off could
        // put this beacon in November: a reconnect still beacons until one lies well inside.
        let later = DEC + CLOCK_SLACK_MS + 1.0;
        assert_eq!(alice(&mut ob, "e3", later), Recorded::Queued);
        assert_eq!(alice(&mut ob, "e4", later + 9.0), Recorded::AlreadyCounted);
        assert_eq!(
            ob.stats().connects_seen,
            3,
            "a month turning is not a connect"
        );
    }

    #[test]
    fn a_beacon_another_tab_delivered_is_not_sent_again() {
        let store = Shared::default();
        let mut first = open(&store, NOV);
        first.record_connect(c(Connected, "alice", "e1", NOV, Dedupe::Month));
        drop(first);
        // Two tabs open on the stored beacon; one delivers it.
        let mut tab_a = open(&store, NOV + 1.0);
        let mut tab_b = open(&store, NOV + 1.0);
        tab_a.begin_attempt("e1", NOV + 2.0);
        tab_a.settle("e1", &Ok(204), None, NOV + 3.0, 0.5);
        assert_eq!(tab_b.stats().pending, 1);
        tab_b.prune_taken();
        assert_eq!(tab_b.stats().pending, 0);
        assert_eq!(tab_b.next_due(NOV + 4.0, true, &[]), None);
        assert_eq!(tab_b.stats().delivered, 0, "not this tab's delivery");
        // Storage cleared under a pending beacon (no tombstone): kept, stored again.
        tab_a.record_connect(c(Connected, "bob", "b1", NOV + 5.0, Dedupe::None));
        store.0.borrow_mut().clear();
        tab_a.prune_taken();
        assert_eq!(tab_a.stats().pending, 1);
        assert!(tab_a.begin_attempt("b1", NOV + 6.0).is_some());
        assert!(store.get("mau-beacon:v2:q:b1").is_some());
    }

    #[test]
    fn two_tabs_counting_at_once_keep_one_beacon() {
        let store = Shared::default();
        let mut tab_a = open(&store, NOV);
        let mut tab_b = open(&store, NOV);
        // Both store their beacon at the connect, before the lock decides.
        let uncounted = |ob: &mut Outbox, id: &str| {
            ob.record_uncounted(c(Connected, "alice", id, NOV, Dedupe::Month))
        };
        assert_eq!(uncounted(&mut tab_a, "a1"), Recorded::Queued);
        assert_eq!(uncounted(&mut tab_b, "b1"), Recorded::Queued);
        assert!(
            store.get("mau-beacon:v2:q:b1").is_some(),
            "stored before the lock"
        );
        // The lock goes to one tab, then to the other, which finds the month counted.
        assert!(tab_a.count("a1", NOV, false));
        assert!(!tab_b.count("b1", NOV, false));
        assert!(store.get("mau-beacon:v2:q:b1").is_none());
        assert!(
            store.get("mau-beacon:v2:done:b1").is_some(),
            "a tombstone for the others"
        );
        let (a, b) = (tab_a.stats(), tab_b.stats());
        assert_eq!(
            (a.queued, a.pending, b.queued, b.pending, b.deduped),
            (1, 1, 0, 0, 1)
        );
        // A tab that found the lock held leaves the beacon to the holder.
        let mut tab_c = open(&store, NOV);
        tab_c.record_uncounted(c(Connected, "carol", "c1", NOV, Dedupe::Month));
        assert!(!tab_c.count("c1", NOV, true));
        assert!(!tab_c.is_counted("carol", NOV + 1.0));
    }

    #[test]
    fn a_client_connected_all_along_is_checked_at_the_turn_and_well_inside() {
        let h = 3_600_000.0;
        assert_eq!(
            still_connected_checks(DEC - 1.0),
            (DEC - 30.0 * 24.0 * h + 6.0 * h, DEC)
        );
        assert_eq!(still_connected_checks(DEC), (DEC, DEC + 6.0 * h));
        assert_eq!(
            still_connected_checks(DEC + 6.0 * h),
            (DEC + 6.0 * h, 1_798_761_600_000.0)
        );
        // 3 h ahead: the beacon at the device's turn is November's by the collector, the
        // one 6 h later lies in December either way, and the month rule lets it through.
        let store = Shared::default();
        let mut ob = open(&store, DEC);
        let still = |ob: &mut Outbox, id: &str, at: Millis| {
            ob.record_connect(c(BeaconKind::StillConnected, "al", id, at, Dedupe::Month))
        };
        assert_eq!(still(&mut ob, "s1", DEC), Recorded::Queued);
        assert_eq!(still(&mut ob, "s2", DEC + 6.0 * h), Recorded::Queued);
        assert_eq!(
            still(&mut ob, "s3", DEC + 7.0 * h),
            Recorded::AlreadyCounted
        );
    }

    #[test]
    fn a_beacon_whose_page_closed_before_the_lock_counts_the_month_for_the_next() {
        let store = Shared::default();
        let mut closed = open(&store, NOV);
        closed.record_uncounted(c(Connected, "alice", "a1", NOV, Dedupe::Month));
        drop(closed); // no decision: the page is gone
        let mut next = open(&store, NOV + 1_000.0);
        assert!(next.is_counted("alice", NOV + 2_000.0));
        let again = next.record_connect(c(Connected, "alice", "a2", NOV + 2_000.0, Dedupe::Month));
        assert_eq!(again, Recorded::AlreadyCounted);
        assert_eq!(
            next.next_due(NOV + 3_000.0, true, &[]).as_deref(),
            Some("a1")
        );
        // A tab still deciding keeps its beacon when the mark a new page made names it.
        let mut deciding = open(&store, NOV);
        deciding.record_uncounted(c(Connected, "bob", "b1", NOV, Dedupe::Month));
        let _opened = open(&store, NOV + 10.0);
        assert!(deciding.count("b1", NOV, false), "the mark is its own");
    }
}
