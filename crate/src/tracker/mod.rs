//! `MauTracker`: owns the outbox, delivers it, and hands out watches (its child module).

use alloc::{boxed::Box, string::String, vec::Vec};

pub mod watch;

use alloc::rc::Rc;
use core::cell::{Cell, RefCell};

use crate::platform::dom::Timer;
use js_sys::{Date, Function, Math, Promise};
use serde::Serialize;
use wasm_bindgen::prelude::*;

use crate::core::delivery::{parse_retry_after, Backoff, DropReason, Verdict};
use crate::core::error::Error;
use crate::core::origin::Origin;
use crate::core::outbox::{Connect, MemoryStore, Outbox, Recorded, Store};
use crate::core::tabs;
use crate::core::wire::{event_id, BeaconKind, Dedupe};
use crate::platform::cell::Access;
use crate::platform::js;
use crate::platform::local_store::LocalStore;
use crate::platform::month_turn::MonthTurn;
use crate::platform::page::PageHooks;
use crate::platform::registry::Registry;
use crate::platform::tab_lock::{self, Held};
use crate::platform::transport;
use watch::{Watch, WatchInner};

/// Longest single timer: the browser clamps larger delays to "now".
const MAX_WAKE_MS: f64 = 86_400_000.0;
/// How long the identity-month lock is kept after the mark is written, so the other tabs'
/// storage has it before one of them can check.
const COUNT_HOLD_MS: i32 = 1_000;
/// How long the send lock is kept after a pass, so the records it removed are gone from
/// the other tabs' storage before one of them starts its own.
const SEND_HOLD_MS: i32 = 100;
/// When another tab is delivering, look again this much later.
const BUSY_RETRY_MS: f64 = 500.0;
/// Keepalive requests share 64 KiB per page; stay under it on `pagehide`.
const PAGEHIDE_BUDGET: usize = 60_000;
/// Attempts in a row with no HTTP answer before `onError` hears `network` (once).
const NETWORK_FAILS_REPORTED: u8 = 2;

/// `BeaconEvent.type`: one step of a beacon's life.
#[derive(Debug, Clone, Copy, Serialize)]
#[serde(rename_all = "snake_case")]
enum EventKind {
    Queued,
    Deduped,
    Delivered,
    Retry,
    Dropped,
    NoIdentity,
}

/// What `onEvent` receives, so an app (or the demo) can show the beacon log.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct BeaconEvent<'a> {
    #[serde(rename = "type")]
    kind: EventKind,
    #[serde(skip_serializing_if = "Option::is_none")]
    identity: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    event_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    status: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'a str>,
}

impl BeaconEvent<'_> {
    /// An event with no details; set the ones it has with struct update syntax.
    fn of(kind: EventKind) -> Self {
        BeaconEvent {
            kind,
            identity: None,
            event_id: None,
            status: None,
            error: None,
        }
    }
}

pub(crate) struct TrackerInner {
    url: String,
    pub(crate) dedupe: Dedupe,
    pub(crate) identity_timeout_ms: f64,
    outbox: RefCell<Outbox>,
    pub(crate) on_error: Option<Function>,
    on_event: Option<Function>,
    /// The last delivery pass; the next one runs after it, so passes never overlap.
    chain: RefCell<Promise>,
    /// The beacons waiting for the tabs' count lock; a pass waits for them.
    counting: RefCell<Promise>,
    /// A background pass is queued and has not started yet.
    bg_queued: Cell<bool>,
    wake: RefCell<Option<Timer>>,
    page: RefCell<Option<PageHooks>>,
    /// Reports the clients still connected when a new UTC month begins.
    month_turn: RefCell<Option<MonthTurn>>,
    /// Live watches. A watch lives until `stop()`, not until its handle is collected.
    pub(crate) watches: Registry<WatchInner>,
    /// Attempts in a row that got no HTTP answer; past the threshold `network` is reported.
    network_fails: Cell<u8>,
    /// `dispose()` was called: no timer is armed and no pass started in the background.
    disposed: Cell<bool>,
}

/// Watches Conversations clients and reports each identity's confirmed connect to the
/// collector, once per UTC month, without ever losing a beacon.
#[wasm_bindgen]
pub struct MauTracker {
    inner: Rc<TrackerInner>,
}

impl core::fmt::Debug for MauTracker {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("MauTracker")
            .field("url", &self.inner.url)
            .finish()
    }
}

fn collector_url(raw: Option<String>) -> Result<String, Error> {
    let raw = raw.ok_or(Error::config("collectorUrl", "is required"))?;
    let base = web_sys::window().and_then(|w| w.location().href().ok());
    let url = match base {
        Some(base) => web_sys::Url::new_with_base(&raw, &base),
        None => web_sys::Url::new(&raw),
    }
    .map_err(|_| Error::config("collectorUrl", "is not a valid URL"))?;
    match url.protocol().as_str() {
        "http:" | "https:" => Ok(url.href()),
        _ => Err(Error::config("collectorUrl", "must be an http(s) URL")),
    }
}

fn open_store() -> (Box<dyn Store>, Option<String>) {
    match LocalStore::open() {
        Ok(store) => (Box::new(store), None),
        Err(why) => (Box::new(MemoryStore::default()), Some(why)),
    }
}

fn random_event_id() -> String {
    let mut bytes = [0u8; 16];
    let filled = web_sys::window()
        .and_then(|w| w.crypto().ok())
        .and_then(|c| c.get_random_values_with_u8_array(&mut bytes).ok())
        .is_some();
    if !filled {
        for b in bytes.iter_mut() {
            *b = (Math::random() * 256.0) as u8;
        }
    }
    event_id(&bytes)
}

#[wasm_bindgen]
impl MauTracker {
    /// Creates a tracker; throws an `Error` naming the field when the config is wrong.
    /// Replays at once what an earlier page left undelivered.
    #[wasm_bindgen(constructor)]
    pub fn new(
        #[wasm_bindgen(unchecked_param_type = "MauTrackerConfig")] config: JsValue,
    ) -> Result<MauTracker, JsValue> {
        Ok(MauTracker {
            inner: TrackerInner::new(&config)?,
        })
    }

    /// Starts watching `client`'s `connectionStateChanged`. The identity comes from
    /// `options.identity`, else the token's `grants.identity`, else `client.user.identity`
    /// (waiting for `initialized`, bounded by `identityTimeoutMs`).
    pub fn watch(
        &self,
        #[wasm_bindgen(unchecked_param_type = "ConversationsClientLike")] client: JsValue,
        #[wasm_bindgen(unchecked_optional_param_type = "WatchOptions")] options: Option<JsValue>,
    ) -> Result<Watch, JsValue> {
        Ok(WatchInner::start(
            &self.inner,
            client,
            options.unwrap_or(JsValue::UNDEFINED),
        )?)
    }

    /// Tries every pending beacon now, backoff or not; resolves with the stats after.
    #[wasm_bindgen(unchecked_return_type = "Promise<MauStats>")]
    pub fn flush(&self) -> Promise {
        TrackerInner::schedule(&self.inner, true)
    }

    /// Counters: pending, delivered, dropped by reason, connects seen, storage in use.
    #[wasm_bindgen(unchecked_return_type = "MauStats")]
    pub fn stats(&self) -> JsValue {
        self.inner.stats_js()
    }

    /// Whether `identity` was already reported this UTC month from this device.
    #[wasm_bindgen(js_name = isCountedThisMonth)]
    pub fn is_counted_this_month(&self, identity: &str) -> bool {
        self.inner.outbox.read().is_counted(identity, Date::now())
    }

    /// The collector URL in use (resolved against the page).
    #[wasm_bindgen(getter, js_name = collectorUrl)]
    pub fn collector_url(&self) -> String {
        self.inner.url.clone()
    }

    /// Stops its watches, timers and page hooks and frees this handle (a later call
    /// throws). Beacons not yet delivered stay stored: the next tracker on this origin sends
    /// them. For a tracker that must not outlive its owner (a test, a hot-reloaded module).
    pub fn dispose(self) {
        self.inner.dispose();
    }
}

impl TrackerInner {
    fn new(config: &JsValue) -> Result<Rc<TrackerInner>, Error> {
        let config = js::object(config, "config", true)?;
        let url = collector_url(js::opt_string(&config, "collectorUrl")?)?;
        let dedupe = match js::opt_string(&config, "dedupe")? {
            None => Dedupe::Month,
            Some(d) => {
                Dedupe::parse(&d).ok_or(Error::config("dedupe", "must be \"month\" or \"none\""))?
            }
        };
        let identity_timeout_ms = js::opt_ms(&config, "identityTimeoutMs")?.unwrap_or(30_000.0);
        let retry = js::object(&js::get(&config, "retry"), "retry", false)?;
        let mut backoff = Backoff::default();
        if let Some(base) = js::opt_ms(&retry, "baseMs")? {
            backoff.base_ms = base;
        }
        if let Some(max) = js::opt_ms(&retry, "maxMs")? {
            backoff.max_ms = max;
        }
        let on_error = js::opt_function(&config, "onError")?;
        let on_event = js::opt_function(&config, "onEvent")?;
        let (store, storage_error) = open_store();
        let outbox = Outbox::open::<JsValue>(store, backoff, Date::now(), storage_error);
        let has_pending = outbox.next_wake().is_some();
        let inner = Rc::new(TrackerInner {
            url,
            dedupe,
            identity_timeout_ms,
            outbox: RefCell::new(outbox),
            on_error,
            on_event,
            chain: RefCell::new(Promise::resolve(&JsValue::UNDEFINED)),
            counting: RefCell::new(Promise::resolve(&JsValue::UNDEFINED)),
            bg_queued: Cell::new(false),
            wake: RefCell::new(None),
            page: RefCell::new(None),
            month_turn: RefCell::new(None),
            watches: Registry::default(),
            network_fails: Cell::new(0),
            disposed: Cell::new(false),
        });
        let weak = Rc::downgrade(&inner);
        let chance = Rc::new(move || {
            if let Some(t) = weak.upgrade() {
                let _ = TrackerInner::schedule(&t, true);
            }
        });
        let weak = Rc::downgrade(&inner);
        let leaving = Box::new(move || {
            if let Some(t) = weak.upgrade() {
                t.last_try();
            }
        });
        *inner.page.write() = PageHooks::install(chance, leaving);
        let weak = Rc::downgrade(&inner);
        let on_turn = Box::new(move || {
            if let Some(t) = weak.upgrade() {
                for watch in t.watches.snapshot() {
                    watch.on_month_turn();
                }
            }
        });
        *inner.month_turn.write() = Some(MonthTurn::new(on_turn));
        if has_pending {
            TrackerInner::kick(&inner);
        }
        Ok(inner)
    }

    fn stats_js(&self) -> JsValue {
        js::to_js(&self.outbox.read().stats())
    }

    fn emit(&self, event: BeaconEvent) {
        if self.on_event.is_some() {
            js::notify(&self.on_event, &js::to_js(&event));
        }
    }

    /// A beacon of `kind` for `identity` at `at`: stored (unless counted) and delivered.
    /// With month dedupe, the month is marked under the identity-month's lock across this
    /// profile's tabs, so tabs connecting at once send one beacon: the beacon is stored at
    /// once, and the lock decides whether it stays (a tab that finds the lock held, or the
    /// month counted by then, drops its own as deduped).
    pub(crate) fn record_connect(
        self: &Rc<Self>,
        kind: BeaconKind,
        identity: String,
        at: f64,
        client_version: Option<String>,
        ticket: Option<String>,
        origin: Origin,
    ) {
        let id = random_event_id();
        let c = Connect {
            kind,
            identity: identity.clone(),
            event_id: id.clone(),
            at,
            dedupe: self.dedupe,
            client_version,
            ticket,
            origin,
        };
        let lock = self.dedupe == Dedupe::Month && !self.outbox.read().is_counted(&identity, at);
        let recorded = match lock {
            true => self.outbox.write().record_uncounted(c),
            false => self.outbox.write().record_connect(c),
        };
        match recorded {
            Recorded::Queued if lock => self.count_under_lock(identity, id, at),
            Recorded::Queued => self.queued(&identity, &id),
            Recorded::AlreadyCounted => self.emit(BeaconEvent {
                identity: Some(&identity),
                ..BeaconEvent::of(EventKind::Deduped)
            }),
            Recorded::TooLong => {
                let reason = DropReason::IdentityTooLong.name();
                self.emit(BeaconEvent {
                    error: Some(&reason),
                    ..BeaconEvent::of(EventKind::Dropped)
                });
                js::report(&self.on_error, &Error::IdentityTooLong);
            }
        }
    }

    /// The tabs' lock decides whether the stored beacon `id` stays; a pass waits for it.
    fn count_under_lock(self: &Rc<Self>, identity: String, id: String, at: f64) {
        let this = self.clone();
        let counted = tab_lock::with_lock(
            &tabs::count_lock(&identity, at),
            COUNT_HOLD_MS,
            Box::new(move |held| {
                if this.outbox.write().count(&id, at, !held) {
                    return this.queued(&identity, &id);
                }
                this.emit(BeaconEvent {
                    identity: Some(&identity),
                    ..BeaconEvent::of(EventKind::Deduped)
                });
            }),
        );
        let all = js_sys::Array::of2(&self.counting.read(), &counted);
        *self.counting.write() = Promise::all(&all);
    }

    /// A beacon is queued for good: say so, and deliver.
    fn queued(self: &Rc<Self>, identity: &str, id: &str) {
        self.emit(BeaconEvent {
            identity: Some(identity),
            event_id: Some(id),
            ..BeaconEvent::of(EventKind::Queued)
        });
        TrackerInner::kick(self);
    }

    /// A connect whose identity never became known.
    pub(crate) fn record_no_identity(&self) {
        self.outbox.write().record_no_identity();
        self.emit(BeaconEvent::of(EventKind::NoIdentity));
    }

    /// A background delivery pass; its result shows in `stats()`.
    pub(crate) fn kick(this: &Rc<Self>) {
        if !this.disposed.get() {
            let _ = TrackerInner::schedule(this, false);
        }
    }

    /// Lets go of everything that keeps the tracker running: watches (and through them the
    /// clients' listeners), the wake and month timers, the page listeners.
    fn dispose(&self) {
        self.disposed.set(true);
        for watch in self.watches.take_all() {
            watch.stop();
        }
        self.wake.write().take();
        self.page.write().take();
        self.month_turn.write().take();
    }

    /// Queues a delivery pass after the current one (and after the connects waiting for
    /// their count lock). Background passes (`force == false`) coalesce; explicit `flush()`
    /// always gets a pass of its own. Resolves with the stats after it.
    pub(crate) fn schedule(this: &Rc<Self>, force: bool) -> Promise {
        if !force && this.bg_queued.replace(true) {
            return this.chain.read().clone();
        }
        let before = js_sys::Array::of2(&this.chain.read(), &this.counting.read());
        let before = Promise::all(&before);
        let pass = Promise::new(&mut |done, _| {
            let inner = this.clone();
            js::when(&before, move |_| {
                if !force {
                    inner.bg_queued.set(false);
                }
                TrackerInner::start_pass(inner, force, done);
            });
        });
        *this.chain.write() = pass.clone();
        pass
    }

    /// Stored beacons are sent by one tab at a time: a background pass comes back later
    /// when another tab is delivering, a flush waits for it.
    fn start_pass(self: Rc<Self>, force: bool, done: Function) {
        let granted = tab_lock::acquire(tabs::SEND_LOCK, !force);
        js::when(&granted, move |granted| {
            let Some(held) = Held::new(granted.unwrap_or(JsValue::UNDEFINED), SEND_HOLD_MS) else {
                self.arm_wake(BUSY_RETRY_MS);
                return js::notify(&Some(done), &self.stats_js());
            };
            self.outbox.write().prune_taken();
            self.next_attempt(force, Vec::new(), held, done);
        });
    }

    /// Tries the next due beacon not yet `tried` in this pass, one at a time (well inside
    /// the keepalive budget); at the end, sets the timer for the next one due.
    fn next_attempt(
        self: Rc<Self>,
        force: bool,
        mut tried: Vec<String>,
        held: Held,
        done: Function,
    ) {
        let next = {
            let mut outbox = self.outbox.write();
            outbox.next_due(Date::now(), force, &tried).and_then(|id| {
                outbox
                    .begin_attempt(&id, Date::now())
                    .map(|body| (id, body))
            })
        };
        let Some((id, body)) = next else {
            self.arm_wake(0.0);
            drop(held);
            return js::notify(&Some(done), &self.stats_js());
        };
        tried.push(id.clone());
        let url = self.url.clone();
        transport::post(
            &url,
            &body,
            Box::new(move |outcome| {
                self.settle(&id, outcome);
                self.next_attempt(force, tried, held, done);
            }),
        );
    }

    /// What an attempt came back with: the outbox's verdict, and the event that says it.
    fn settle(&self, id: &str, outcome: transport::Outcome) {
        let (status, retry_after) = match outcome {
            Ok((status, retry_after)) => (Ok(status), retry_after),
            Err(e) => (Err(e), None),
        };
        let now = Date::now();
        let retry_after =
            retry_after.and_then(|ra| parse_retry_after(&ra, now, |d| Some(Date::parse(d))));
        self.count_network_failure(status.is_err());
        let verdict = self
            .outbox
            .write()
            .settle(id, &status, retry_after, now, Math::random());
        let attempt = BeaconEvent {
            event_id: Some(id),
            status: status.as_ref().ok().copied(),
            ..BeaconEvent::of(EventKind::Delivered)
        };
        match verdict {
            None => {}
            Some(Verdict::Delivered) => self.emit(attempt),
            Some(Verdict::Retry) => self.emit(BeaconEvent {
                kind: EventKind::Retry,
                error: status.as_ref().err().map(String::as_str),
                ..attempt
            }),
            Some(Verdict::Drop(reason)) => self.emit(BeaconEvent {
                kind: EventKind::Dropped,
                error: Some(&reason.name()),
                ..attempt
            }),
        }
    }

    /// Reports `network` once per tracker, when attempts keep getting no HTTP answer (the
    /// browser gives the same opaque error for CORS, DNS and a collector that is down).
    fn count_network_failure(&self, failed: bool) {
        // Offline, or after dispose(): not the collector's doing, not worth a report.
        if failed && (self.disposed.get() || crate::platform::transport::offline()) {
            return;
        }
        let before = self.network_fails.get();
        // Once reported, the count stays past the threshold: never a second report.
        if !failed && before < NETWORK_FAILS_REPORTED {
            return self.network_fails.set(0);
        }
        if !failed {
            return;
        }
        let fails = before.saturating_add(1);
        self.network_fails.set(fails);
        if fails == NETWORK_FAILS_REPORTED {
            js::report(&self.on_error, &Error::Network);
        }
    }

    /// Sets the timer for the next beacon due, `min_ms` from now at the soonest.
    fn arm_wake(self: &Rc<Self>, min_ms: f64) {
        if self.disposed.get() {
            return;
        }
        let next = self.outbox.read().next_wake();
        let timer = next.map(|at| {
            // Not `clamp`: its check formats floats into the wasm.
            let delay = (at - Date::now()).max(min_ms).min(MAX_WAKE_MS) as u32;
            // A strong reference: while beacons wait, the tracker lives on even if the app
            // lets go of its handle. Delivered, the timer goes and so does the cycle.
            let inner = self.clone();
            Timer::new(delay, move || TrackerInner::kick(&inner))
        });
        *self.wake.write() = timer;
    }

    /// `pagehide`: a last `sendBeacon` of each pending beacon (those another tab delivered
    /// forgotten first), a beacon still waiting for the tabs' lock included: a second
    /// beacon for the month is better than none. They stay stored until a later attempt
    /// gets a 2xx.
    fn last_try(&self) {
        self.outbox.write().prune_taken();
        let mut budget = PAGEHIDE_BUDGET;
        let ids = self.outbox.read().pending_ids(Date::now());
        for id in ids {
            let body = self.outbox.write().begin_attempt(&id, Date::now());
            let Some(body) = body else { continue };
            if body.len() > budget {
                break;
            }
            budget -= body.len();
            transport::send_beacon(&self.url, &body);
        }
    }
}
