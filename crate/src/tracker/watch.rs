//! One watched client: turns its confirmed `connected` events into beacons.

use alloc::{string::String, vec::Vec};

use alloc::rc::{Rc, Weak};
use core::cell::{Cell, RefCell};

use crate::platform::dom::Timer;
use js_sys::{Date, Function, Promise};
use wasm_bindgen::prelude::*;

use crate::core::error::Error;
use crate::core::identity::identity_from_token;
use crate::core::origin::{check_context, Origin, Reason};
use crate::core::wire::{BeaconKind, MAX_IDENTITY_BYTES};
use crate::platform::cell::Access;
use crate::platform::conversations::{self, ConnectionState};
use crate::platform::emitter::{EmitterListener, GuardedListeners};
use crate::platform::js;
use crate::tracker::TrackerInner;

/// Where the identity comes from, in the order the issue of billing demands: what Twilio
/// bills is the token's `grants.identity`.
enum IdentitySource {
    Fixed(String),
    /// Decoded from a token string at `watch()`; the token itself is not kept.
    FromToken(Option<String>),
    /// Called at each connect, so a refreshed token is read.
    TokenFn(Function),
    Client,
}

/// The app's signed ticket for the collector: a string, or a function returning one (or
/// a Promise of one), called at each connect so a fresh ticket is used.
pub(crate) enum Ticket {
    None,
    Fixed(String),
    Fn(Function),
}

pub(crate) struct WatchInner {
    tracker: Rc<TrackerInner>,
    client: JsValue,
    source: IdentitySource,
    ticket: Ticket,
    /// The `context` and `reason` every beacon of this client carries.
    origin: Origin,
    client_version: Option<String>,
    /// Put back if `client.removeAllListeners()` takes it.
    state_listener: RefCell<Option<GuardedListeners>>,
    init_listener: RefCell<Option<EmitterListener>>,
    init_timer: RefCell<Option<Timer>>,
    /// Connect times waiting for the identity to arrive with `initialized`.
    waiting: RefCell<Vec<f64>>,
    /// A token function's unreadable token is reported once, not at every connect.
    token_reported: Cell<bool>,
    stopped: Cell<bool>,
}

/// The handle `tracker.watch()` returns. The watch goes on until `stop()`, even if this
/// handle is garbage-collected.
#[wasm_bindgen]
pub struct Watch {
    inner: Rc<WatchInner>,
}

impl core::fmt::Debug for Watch {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Watch")
            .field("stopped", &self.inner.stopped.get())
            .finish()
    }
}

#[wasm_bindgen]
impl Watch {
    /// Removes every listener this watch added to the client. Safe to call twice.
    pub fn stop(&self) {
        self.inner.stop();
    }

    /// Whether `stop()` was called.
    #[wasm_bindgen(getter)]
    pub fn stopped(&self) -> bool {
        self.inner.stopped.get()
    }
}

impl WatchInner {
    pub(crate) fn start(
        tracker: &Rc<TrackerInner>,
        client: JsValue,
        options: JsValue,
    ) -> Result<Watch, Error> {
        if !conversations::is_client(&client) {
            return Err(Error::config(
                "client",
                "must be a Conversations Client (an object with on/off)",
            ));
        }
        let options = js::object(&options, "options", false)?;
        let identity = js::opt_string(&options, "identity")?;
        let token = js::get(&options, "token");
        let source = if let Some(id) = identity {
            if id.is_empty() {
                return Err(Error::config("identity", "must not be empty"));
            }
            if id.len() > MAX_IDENTITY_BYTES {
                return Err(Error::config(
                    "identity",
                    "is longer than 256 bytes (Twilio's limit)",
                ));
            }
            IdentitySource::Fixed(id)
        } else if let Some(t) = token.as_string() {
            // Reported once, here; the watch then falls back to the client's identity.
            let id = identity_from_token::<JsValue>(&t).unwrap_or_else(|e| {
                js::report(&tracker.on_error, &e);
                None
            });
            IdentitySource::FromToken(id)
        } else if let Some(f) = js::opt_function(&options, "token")
            .map_err(|_| Error::config("token", "must be a string or a function returning one"))?
        {
            IdentitySource::TokenFn(f)
        } else {
            IdentitySource::Client
        };
        let ticket = ticket_option(&options)?;
        let origin = origin_option(&options)?;
        let client_version = conversations::version(&client);
        let inner = Rc::new(WatchInner {
            tracker: tracker.clone(),
            client: client.clone(),
            source,
            ticket,
            origin,
            client_version,
            state_listener: RefCell::new(None),
            init_listener: RefCell::new(None),
            init_timer: RefCell::new(None),
            waiting: RefCell::new(Vec::new()),
            token_reported: Cell::new(false),
            stopped: Cell::new(false),
        });
        let weak = Rc::downgrade(&inner);
        let listener = EmitterListener::new(&client, "connectionStateChanged", move |state| {
            if let Some(w) = weak.upgrade() {
                if ConnectionState::of(&state) == ConnectionState::Connected {
                    w.on_connected();
                }
            }
        })?;
        *inner.state_listener.write() = Some(GuardedListeners::new(
            &client,
            vec![listener],
            tracker.on_error.clone(),
        ));
        tracker.watches.add(inner.clone());
        // A client that is connected already has confirmed its connect.
        if ConnectionState::now(&client) == ConnectionState::Connected {
            inner.on_connected();
        }
        Ok(Watch { inner })
    }

    pub(crate) fn stop(self: &Rc<Self>) {
        if self.stopped.replace(true) {
            return;
        }
        self.state_listener.write().take();
        self.init_listener.write().take();
        self.init_timer.write().take();
        // Connects still waiting for an identity will never get one now: say so in stats.
        let waiting = core::mem::take(&mut *self.waiting.write());
        for _ in waiting {
            self.tracker.record_no_identity();
        }
        self.tracker.watches.remove(self);
    }

    /// The identity known right now, without waiting.
    fn identity_now(&self) -> Option<String> {
        let from_source = match &self.source {
            IdentitySource::Fixed(id) => Some(id.clone()),
            IdentitySource::FromToken(id) => id.clone(),
            IdentitySource::TokenFn(f) => f
                .call0(&JsValue::NULL)
                .ok()
                .and_then(|t| t.as_string())
                .and_then(|t| {
                    identity_from_token::<JsValue>(&t).unwrap_or_else(|e| {
                        if !self.token_reported.replace(true) {
                            js::report(&self.tracker.on_error, &e);
                        }
                        None
                    })
                }),
            IdentitySource::Client => None,
        };
        from_source.or_else(|| self.client_identity())
    }

    /// A new UTC month began: a client still connected is an MAU of it too.
    pub(crate) fn on_month_turn(self: &Rc<Self>) {
        if self.stopped.get() || ConnectionState::now(&self.client) != ConnectionState::Connected {
            return;
        }
        if let Some(identity) = self.identity_now() {
            self.record(BeaconKind::StillConnected, identity, Date::now());
        }
    }

    fn client_identity(&self) -> Option<String> {
        conversations::identity(&self.client)
    }

    fn on_connected(self: &Rc<Self>) {
        if self.stopped.get() {
            return;
        }
        let now = Date::now();
        if let Some(identity) = self.identity_now() {
            self.record(BeaconKind::Connected, identity, now);
            return;
        }
        self.waiting.write().push(now);
        if self.init_listener.read().is_some() {
            return;
        }
        // Wait for `initialized`, which fills `user.identity`, but not forever.
        let weak: Weak<Self> = Rc::downgrade(self);
        let on_init = EmitterListener::new(&self.client, "initialized", move |_| {
            if let Some(w) = weak.upgrade() {
                w.resolve_waiting();
            }
        });
        match on_init {
            Ok(l) => *self.init_listener.write() = Some(l),
            Err(e) => js::report(&self.tracker.on_error, &e),
        }
        let weak: Weak<Self> = Rc::downgrade(self);
        let timer = Timer::new(self.tracker.identity_timeout_ms as u32, move || {
            if let Some(w) = weak.upgrade() {
                w.resolve_waiting();
            }
        });
        *self.init_timer.write() = Some(timer);
    }

    /// `initialized` came, or the wait ran out: beacon the waiting connects, or count
    /// them as dropped for want of an identity.
    fn resolve_waiting(self: &Rc<Self>) {
        if self.stopped.get() {
            return;
        }
        js::drop_later((
            self.init_listener.write().take(),
            self.init_timer.write().take(),
        ));
        let times = core::mem::take(&mut *self.waiting.write());
        let identity = self.client_identity();
        for at in times {
            match &identity {
                Some(id) => self.record(BeaconKind::Connected, id.clone(), at),
                None => self.tracker.record_no_identity(),
            }
        }
    }

    /// Records a connect with the ticket of the moment. A ticket function's Promise is
    /// awaited first; one that fails is reported and the beacon goes without a ticket.
    fn record(self: &Rc<Self>, kind: BeaconKind, identity: String, at: f64) {
        let f = match &self.ticket {
            Ticket::None => return self.record_with(kind, identity, at, None),
            Ticket::Fixed(t) => return self.record_with(kind, identity, at, Some(t.clone())),
            Ticket::Fn(f) => f,
        };
        let value = match f.call0(&JsValue::NULL) {
            Ok(v) => v,
            Err(e) => {
                self.ticket_failed(&e);
                return self.record_with(kind, identity, at, None);
            }
        };
        if let Some(t) = value.as_string() {
            return self.record_with(kind, identity, at, Some(t));
        }
        let this = self.clone();
        js::when(&Promise::resolve(&value), move |settled| {
            let ticket = match settled {
                Ok(v) => v.as_string(),
                Err(e) => {
                    this.ticket_failed(&e);
                    None
                }
            };
            this.record_with(kind, identity, at, ticket);
        });
    }

    fn record_with(&self, kind: BeaconKind, identity: String, at: f64, ticket: Option<String>) {
        let version = self.client_version.clone();
        let origin = self.origin.clone();
        self.tracker
            .record_connect(kind, identity, at, version, ticket, origin);
    }

    fn ticket_failed(&self, e: &JsValue) {
        let e = Error::Callback {
            what: "ticket",
            message: js::message(e),
        };
        js::report(&self.tracker.on_error, &e);
    }
}

/// The `ticket` option: absent, a string, or a function.
pub(crate) fn ticket_option(options: &JsValue) -> Result<Ticket, Error> {
    let value = js::get(options, "ticket");
    if value.is_undefined() || value.is_null() {
        return Ok(Ticket::None);
    }
    if let Some(t) = value.as_string() {
        return Ok(Ticket::Fixed(t));
    }
    match value.dyn_into::<Function>() {
        Ok(f) => Ok(Ticket::Fn(f)),
        Err(_) => Err(Error::config(
            "ticket",
            "must be a string or a function returning one (or a Promise of one)",
        )),
    }
}

/// The `context` option (checked) and the `reason`: `LazyClient` passes the trigger that
/// made its client; a client the app made itself is `app`.
fn origin_option(options: &JsValue) -> Result<Origin, Error> {
    let reason = match js::opt_string(options, "reason")? {
        None => Reason::App,
        Some(r) => Reason::parse(&r).ok_or(Error::config(
            "reason",
            "must be click, visible, focus, key, explicit or app",
        ))?,
    };
    Ok(Origin {
        context: context_option(options)?,
        reason,
    })
}

/// The `context` option of `watch()` and `LazyClient`: absent, or a checked label.
#[inline(never)]
pub(crate) fn context_option(options: &JsValue) -> Result<Option<String>, Error> {
    check_context(js::opt_string(options, "context")?)
}
