//! `LazyClient`: creates the Conversations `Client` only when the user truly needs chat,
//! exactly once, because Twilio bills every identity whose client connects. Its child
//! module `trigger` decides when.

use alloc::{string::String, string::ToString, vec::Vec};

pub mod trigger;

use alloc::rc::Rc;
use core::cell::{Cell, RefCell};

use alloc::boxed::Box;
use js_sys::{Function, Object, Promise, Reflect};
use wasm_bindgen::prelude::*;

use crate::core::error::Error;
use crate::core::origin::Reason;
use crate::platform::cell::Access;
use crate::platform::conversations::{self, ConnectionState};
use crate::platform::emitter::{EmitterListener, GuardedListeners};
use crate::platform::js;
use crate::platform::registry::Registry;
use trigger::{Trigger, TriggerInner};

/// Longest wait for the client to leave `disconnecting`, and for `updateToken` to settle.
const REFRESH_WAIT_MS: f64 = 10_000.0;
const STUCK: &str = "the token expired before the client initialised, so it cannot take a new one; the next get() creates a new client";

/// Calls `then` once `client.connectionState` is not `disconnecting` (at most `ms` later).
fn until_not_disconnecting(client: &JsValue, ms: f64, then: impl FnOnce() + 'static) {
    if ConnectionState::now(client) != ConnectionState::Disconnecting {
        return then();
    }
    let mut listener = None;
    let left = Promise::new(&mut |resolve, _| {
        listener = EmitterListener::new(client, "connectionStateChanged", move |state| {
            if ConnectionState::of(&state) != ConnectionState::Disconnecting {
                let _ = resolve.call0(&JsValue::NULL);
            }
        })
        .ok();
    });
    js::when(&js::bounded(&left, ms), move |_| {
        drop(listener);
        then()
    });
}

/// The rest of a task that waits on promises, called once with the previous step's outcome.
type Then<T> = Box<dyn FnOnce(Result<T, Error>)>;

enum State {
    Idle,
    /// A token fetch and `createClient` under way; every caller shares this promise.
    Connecting(Promise),
    Ready(Live),
    Closed,
}

impl State {
    /// The name JS sees (`LazyClientState`).
    fn name(&self) -> &'static str {
        match self {
            State::Idle => "idle",
            State::Connecting(_) => "connecting",
            State::Ready(_) => "ready",
            State::Closed => "closed",
        }
    }
}

/// What a created client's listeners share with the refresh task.
#[derive(Default)]
struct Flags {
    /// `initFailed` or `denied` seen and no `connected` since, or left unusable by a
    /// failed refresh: the next `get()` replaces the client.
    failed: Cell<bool>,
    initialized: Cell<bool>,
    refreshing: Cell<bool>,
    /// Shut down: a refresh still under way must not revive it (Twilio would bill it).
    closed: Cell<bool>,
}

/// A created client and what we attached to it.
struct Live {
    client: JsValue,
    /// Put back if `client.removeAllListeners()` takes them.
    listeners: GuardedListeners,
    /// The tracker's watch handle, stopped at shutdown.
    watch: Option<JsValue>,
    flags: Rc<Flags>,
}

pub(crate) struct LazyInner {
    create_client: Function,
    get_token: Function,
    /// `false`: the app refreshes tokens itself (often by making a new client, handed over
    /// with `replaceClient`); LazyClient then never listens for token expiry.
    refresh_token: bool,
    tracker: Option<JsValue>,
    shutdown_timeout_ms: f64,
    pub(crate) on_error: Option<Function>,
    on_state_change: Option<Function>,
    state: RefCell<State>,
    created: Cell<u32>,
    /// Armed triggers. They live until they connect, `stop()` or `shutdown()`.
    pub(crate) triggers: Registry<TriggerInner>,
    /// Itself, while it has a client: token refresh must go on even if the app lets go of
    /// its `LazyClient` handle (which wasm-bindgen frees when collected). `shutdown()` ends it.
    keep_alive: RefCell<Option<Rc<LazyInner>>>,
    /// The `ticket` config, handed to the tracker's watch as given.
    ticket: JsValue,
    /// The ticket of the latest `getToken` that returned `{ token, ticket }`.
    token_ticket: RefCell<Option<String>>,
    /// The `context` config, handed to the tracker's watch.
    context: Option<String>,
    /// What started the creation under way (or the last one): the watch's `reason`.
    reason: Cell<Reason>,
}

/// Creates a Conversations `Client` on first need (a click, the chat widget becoming
/// visible, or `get()`), exactly once however many triggers fire at the same time.
#[wasm_bindgen]
pub struct LazyClient {
    inner: Rc<LazyInner>,
}

impl core::fmt::Debug for LazyClient {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("LazyClient")
            .field("created", &self.inner.created.get())
            .finish()
    }
}

#[wasm_bindgen]
impl LazyClient {
    /// Nothing is created and no token fetched here, unless `eagerIfCounted` is set and
    /// `identity` is already counted this month (connecting costs nothing extra then).
    #[wasm_bindgen(constructor)]
    pub fn new(
        #[wasm_bindgen(unchecked_param_type = "LazyClientConfig")] config: JsValue,
    ) -> Result<LazyClient, JsValue> {
        let config = js::object(&config, "config", true)?;
        let tracker = match js::get(&config, "tracker") {
            t if t.is_undefined() || t.is_null() => None,
            t if js::method(&t, "watch").is_some() => Some(t),
            _ => return Err(Error::config("tracker", "must be a MauTracker").into()),
        };
        let identity = js::opt_string(&config, "identity")?;
        let eager = js::opt_bool(&config, "eagerIfCounted")?.unwrap_or(false);
        // Checked here, so a wrong type throws at construction, naming the field.
        crate::tracker::watch::ticket_option(&config)?;
        let context = crate::tracker::watch::context_option(&config)?;
        let inner = Rc::new(LazyInner {
            create_client: js::function(&config, "createClient")?,
            get_token: js::function(&config, "getToken")?,
            refresh_token: js::opt_bool(&config, "refreshToken")?.unwrap_or(true),
            tracker,
            shutdown_timeout_ms: js::opt_ms(&config, "shutdownTimeoutMs")?.unwrap_or(5_000.0),
            on_error: js::opt_function(&config, "onError")?,
            on_state_change: js::opt_function(&config, "onStateChange")?,
            state: RefCell::new(State::Idle),
            created: Cell::new(0),
            triggers: Registry::default(),
            keep_alive: RefCell::new(None),
            ticket: js::get(&config, "ticket"),
            token_ticket: RefCell::new(None),
            context,
            reason: Cell::new(Reason::Explicit),
        });
        if eager {
            let counted = match (&inner.tracker, &identity) {
                (Some(t), Some(id)) => js::method(t, "isCountedThisMonth")
                    .and_then(|f| f.call1(t, &JsValue::from_str(id)).ok())
                    .and_then(|v| v.as_bool())
                    .unwrap_or(false),
                _ => false,
            };
            if counted {
                inner.trigger();
            }
        }
        Ok(LazyClient { inner })
    }

    /// The client, created on the first call; concurrent calls share one creation. A
    /// failed `getToken`/`createClient` rejects every waiter; the next call tries again.
    #[wasm_bindgen(unchecked_return_type = "Promise<ConversationsClientLike>")]
    pub fn get(&self) -> Promise {
        LazyInner::get(&self.inner, Reason::Explicit)
    }

    /// Connects on the first `click`, `focusin` or `keydown` inside `target` (reported as
    /// reason `click`, `focus` or `key`; a click's own focus is `click`).
    #[wasm_bindgen(js_name = connectOn)]
    pub fn connect_on(
        &self,
        #[wasm_bindgen(unchecked_param_type = "EventTarget")] target: JsValue,
    ) -> Result<Trigger, JsValue> {
        Ok(TriggerInner::on_interaction(&self.inner, target)?)
    }

    /// Connects when `element` becomes visible (an `IntersectionObserver`).
    #[wasm_bindgen(js_name = connectWhenVisible)]
    pub fn connect_when_visible(
        &self,
        #[wasm_bindgen(unchecked_param_type = "Element")] element: JsValue,
    ) -> Result<Trigger, JsValue> {
        Ok(TriggerInner::when_visible(&self.inner, element)?)
    }

    /// Shuts the client down (bounded by `shutdownTimeoutMs`: the real client can hang for
    /// a minute or more when it never initialised), disarms the triggers; `get()` rejects after.
    /// The state is `closed` when this returns: a `get()` in the same tick rejects.
    #[wasm_bindgen(unchecked_return_type = "Promise<void>")]
    pub fn shutdown(&self) -> Promise {
        let inner = self.inner.clone();
        let previous = inner.enter(State::Closed);
        let _ = inner.keep_alive.take();
        for t in inner.triggers.take_all() {
            t.disarm();
        }
        match previous {
            // The creation sees `Closed` when it ends and shuts its client itself; a
            // `getToken` that never settles must not hold `shutdown()` forever.
            State::Connecting(p) => js::bounded(&p, inner.shutdown_timeout_ms),
            // Detached now, so no refresh starts; only the client's own shutdown is awaited.
            State::Ready(live) => inner.close(live),
            State::Idle | State::Closed => Promise::resolve(&JsValue::UNDEFINED),
        }
    }

    /// Hands over a client the app made itself (say, after its own token refresh): the
    /// tracker watches it instead of the old one, `get()` resolves to it and `shutdown()`
    /// shuts it down. The old client is let go, not shut down: that stays with the app.
    #[wasm_bindgen(js_name = replaceClient)]
    pub fn replace_client(
        &self,
        #[wasm_bindgen(unchecked_param_type = "ConversationsClientLike")] client: JsValue,
        token: Option<String>,
    ) -> Result<(), JsValue> {
        Ok(self.inner.replace(&client, token.as_deref())?)
    }

    /// `idle`, `connecting`, `ready` or `closed`.
    #[wasm_bindgen(getter, unchecked_return_type = "LazyClientState")]
    pub fn state(&self) -> String {
        self.inner.state.read().name().into()
    }

    /// How many clients this `LazyClient` has created (1 in a healthy session).
    #[wasm_bindgen(getter, js_name = clientsCreated)]
    pub fn clients_created(&self) -> u32 {
        self.inner.created.get()
    }
}

impl LazyInner {
    /// Moves to `next`; `onStateChange` hears of it when the state's name changes.
    fn enter(&self, next: State) -> State {
        let before = self.state.read().name();
        let previous = self.state.replace(next);
        let after = self.state.read().name();
        if before != after {
            js::notify(&self.on_state_change, &JsValue::from_str(after));
        }
        previous
    }

    /// The client, or the creation every caller shares; `reason` is what the beacons of a
    /// client created now say made it.
    pub(crate) fn get(this: &Rc<Self>, reason: Reason) -> Promise {
        match &*this.state.read() {
            State::Closed => return Promise::reject(&JsValue::from(Error::ShutDown)),
            State::Connecting(p) => return p.clone(),
            State::Ready(live) if !live.flags.failed.get() => {
                return Promise::resolve(&live.client)
            }
            State::Ready(_) | State::Idle => {}
        }
        this.reason.set(reason);
        let stale = match this.state.replace(State::Idle) {
            State::Ready(live) => Some(live),
            _ => None,
        };
        let mut start = Some((this.clone(), stale));
        let creation = Promise::new(&mut |resolve, reject| {
            let Some((inner, stale)) = start.take() else {
                return;
            };
            // Later, so the state below is set before anything can settle.
            js::later(move || {
                let create = move |inner: Rc<Self>| {
                    let this = inner.clone();
                    inner.create(Box::new(move |r| this.created(r, resolve, reject)))
                };
                match stale {
                    // The real client retries forever after a failed init: end it before
                    // the next.
                    Some(live) => js::when(&inner.close(live), move |_| create(inner)),
                    None => create(inner),
                }
            });
        });
        this.enter(State::Connecting(creation.clone()));
        creation
    }

    /// The end of a creation: `resolve` or `reject` the promise every `get()` shares.
    fn created(self: &Rc<Self>, result: Result<Live, Error>, resolve: Function, reject: Function) {
        let closed = matches!(&*self.state.read(), State::Closed);
        let failed = match result {
            Ok(live) if closed => {
                let shut_down = JsValue::from(Error::ShutDown);
                return js::when(&self.close(live), move |_| {
                    let _ = reject.call1(&JsValue::NULL, &shut_down);
                });
            }
            Ok(live) => {
                let client = live.client.clone();
                // Held before `onStateChange` hears "ready": a `shutdown()` from inside it
                // lets go, and then every waiting `get()` rejects as after any shutdown.
                *self.keep_alive.write() = Some(self.clone());
                self.enter(State::Ready(live));
                let shut_down = matches!(&*self.state.read(), State::Closed);
                let _ = match shut_down {
                    true => reject.call1(&JsValue::NULL, &Error::ShutDown.into()),
                    false => resolve.call1(&JsValue::NULL, &client),
                };
                return;
            }
            Err(e) => e,
        };
        if !closed {
            self.enter(State::Idle);
        }
        let _ = reject.call1(&JsValue::NULL, &JsValue::from(failed));
    }

    /// `get()` for `eagerIfCounted` (the app's own choice: `explicit`): failures go to
    /// `onError`, never thrown.
    fn trigger(self: &Rc<Self>) {
        let on_error = self.on_error.clone();
        js::when(&LazyInner::get(self, Reason::Explicit), move |result| {
            if let Err(e) = result {
                js::notify(&on_error, &e);
            }
        });
    }

    /// Calls `getToken` and hands on the token it gives (keeping its ticket, if any).
    fn fetch_token(self: &Rc<Self>, then: Then<String>) {
        match self.get_token.call0(&JsValue::NULL) {
            Ok(value) => {
                let inner = self.clone();
                js::when(&Promise::resolve(&value), move |settled| {
                    then(
                        settled
                            .map_err(token_failed)
                            .and_then(|t| inner.read_token(t)),
                    )
                })
            }
            Err(e) => then(Err(token_failed(e))),
        }
    }

    /// The token in what `getToken` gave: a string, or `{ token, ticket }`.
    fn read_token(&self, mut token: JsValue) -> Result<String, Error> {
        // `{ token, ticket }`: the ticket goes with the beacons of this client.
        if token.is_object() {
            let ticket = js::get(&token, "ticket");
            match ticket.as_string() {
                Some(t) => *self.token_ticket.write() = Some(t),
                None if ticket.is_undefined() || ticket.is_null() => {}
                None => {
                    return Err(Error::Callback {
                        what: "getToken",
                        message: "returned a ticket that is not a string".into(),
                    })
                }
            }
            token = js::get(&token, "token");
        }
        match token.as_string() {
            Some(t) if !t.is_empty() => Ok(t),
            _ => Err(Error::Callback {
                what: "getToken",
                message: "did not return a non-empty string".into(),
            }),
        }
    }

    /// A token, then a client with our listeners on it.
    fn create(self: &Rc<Self>, then: Then<Live>) {
        let inner = self.clone();
        self.fetch_token(Box::new(move |token| {
            let client = token.and_then(|token| Ok((inner.new_client(&token)?, token)));
            let (client, token) = match client {
                Ok(made) => made,
                Err(e) => return then(Err(e)),
            };
            match inner.attach(&client, Some(&token), inner.reason.get()) {
                Ok(live) => then(Ok(live)),
                // A client we cannot look after must not stay connected.
                Err(e) => js::when(
                    &shutdown_client(&client, inner.shutdown_timeout_ms, &inner.on_error),
                    move |_| then(Err(e)),
                ),
            }
        }));
    }

    /// `createClient(token)`, unless shut down while the token was on its way: create
    /// nothing then, Twilio would bill it.
    fn new_client(&self, token: &str) -> Result<JsValue, Error> {
        if matches!(&*self.state.read(), State::Closed) {
            return Err(Error::ShutDown);
        }
        let client = self
            .create_client
            .call1(&JsValue::NULL, &JsValue::from_str(token))
            .map_err(|e| Error::Callback {
                what: "createClient",
                message: js::message(&e),
            })?;
        if !conversations::is_client(&client) {
            return Err(Error::Callback {
                what: "createClient",
                message: "did not return a Client (an object with on/off)".into(),
            });
        }
        self.created.set(self.created.get() + 1);
        Ok(client)
    }

    fn replace(self: &Rc<Self>, client: &JsValue, token: Option<&str>) -> Result<(), Error> {
        match &*self.state.read() {
            State::Closed => return Err(Error::ShutDown),
            State::Connecting(_) => return Err(Error::Busy),
            State::Idle | State::Ready(_) => {}
        }
        if !conversations::is_client(client) {
            return Err(Error::config(
                "client",
                "must be a Conversations Client (an object with on/off)",
            ));
        }
        let live = self.attach(client, token, Reason::App)?;
        // Held first, so a `shutdown()` from `onStateChange` lets go (see `created`).
        *self.keep_alive.write() = Some(self.clone());
        if let State::Ready(old) = self.enter(State::Ready(live)) {
            old.detach();
        }
        Ok(())
    }

    /// The watch's `ticket`: the configured one, else a function reading the ticket of
    /// the latest `getToken` (refreshed with the token), when it gave one.
    fn watch_ticket(self: &Rc<Self>) -> Option<JsValue> {
        if !(self.ticket.is_undefined() || self.ticket.is_null()) {
            return Some(self.ticket.clone());
        }
        self.token_ticket.read().as_ref()?;
        let weak = Rc::downgrade(self);
        let current = Closure::<dyn Fn() -> JsValue>::new(move || {
            weak.upgrade()
                .and_then(|s| s.token_ticket.read().clone())
                .map_or(JsValue::UNDEFINED, JsValue::from)
        });
        Some(current.into_js_value())
    }

    /// Subscribes to the new client: token refresh, failure tracking, the tracker's watch.
    fn attach(
        self: &Rc<Self>,
        client: &JsValue,
        token: Option<&str>,
        reason: Reason,
    ) -> Result<Live, Error> {
        let flags = Rc::new(Flags::default());
        let mut listeners = Vec::new();
        let refresh_events: &[&'static str] = if self.refresh_token {
            &["tokenAboutToExpire", "tokenExpired"]
        } else {
            &[]
        };
        for &event in refresh_events {
            let weak = Rc::downgrade(self);
            let (c, f) = (client.clone(), flags.clone());
            listeners.push(EmitterListener::new(client, event, move |_| {
                if let Some(inner) = weak.upgrade() {
                    inner.refresh(c.clone(), f.clone());
                }
            })?);
        }
        let f = flags.clone();
        listeners.push(EmitterListener::new(client, "initialized", move |_| {
            f.initialized.set(true)
        })?);
        let f = flags.clone();
        listeners.push(EmitterListener::new(client, "initFailed", move |_| {
            f.failed.set(true)
        })?);
        let f = flags.clone();
        listeners.push(EmitterListener::new(
            client,
            "connectionStateChanged",
            move |state| {
                match ConnectionState::of(&state) {
                    ConnectionState::Connected => f.failed.set(false),
                    // Terminal: the real client does not retry a denied token, and a client that
                    // was initialised already emits no `initFailed` for it.
                    ConnectionState::Denied => f.failed.set(true),
                    _ => {}
                }
            },
        )?);
        // Not being watched must not cost the user their chat: report it, keep the client.
        let watch = self.tracker.as_ref().and_then(|tracker| {
            let options = Object::new();
            if let Some(token) = token {
                let _ = Reflect::set(&options, &"token".into(), &JsValue::from_str(token));
            }
            if let Some(ticket) = self.watch_ticket() {
                let _ = Reflect::set(&options, &"ticket".into(), &ticket);
            }
            if let Some(context) = &self.context {
                let _ = Reflect::set(&options, &"context".into(), &JsValue::from_str(context));
            }
            let reason = JsValue::from_str(reason.as_str());
            let _ = Reflect::set(&options, &"reason".into(), &reason);
            let watched = js::method(tracker, "watch")
                .ok_or_else(|| "tracker has no watch()".to_string())
                .and_then(|watch| {
                    watch
                        .call2(tracker, client, &options)
                        .map_err(|e| js::message(&e))
                });
            watched
                .map_err(|message| {
                    js::report(
                        &self.on_error,
                        &Error::Callback {
                            what: "tracker.watch",
                            message,
                        },
                    )
                })
                .ok()
        });
        let listeners = GuardedListeners::new(client, listeners, self.on_error.clone());
        Ok(Live {
            client: client.clone(),
            listeners,
            watch,
            flags,
        })
    }

    /// `tokenAboutToExpire`/`tokenExpired`: a fresh token through `getToken`, handed to
    /// `updateToken`. Skipped for a client whose init failed, where the real
    /// `updateToken` throws; the next `get()` replaces that client instead, as it does a
    /// client whose token expired before `initialized` (its `updateToken` never settles)
    /// and any client a failed refresh leaves disconnected.
    fn refresh(self: &Rc<Self>, client: JsValue, flags: Rc<Flags>) {
        if flags.refreshing.replace(true) {
            return;
        }
        let (inner, c, f) = (self.clone(), client.clone(), flags.clone());
        self.refresh_once(
            client,
            flags,
            Box::new(move |result| {
                f.refreshing.set(false);
                if let Err(e) = result {
                    if f.closed.get() {
                        return;
                    }
                    if ConnectionState::now(&c) != ConnectionState::Connected {
                        f.failed.set(true);
                    }
                    js::report(&inner.on_error, &e);
                }
            }),
        );
    }

    fn refresh_once(self: &Rc<Self>, client: JsValue, flags: Rc<Flags>, then: Then<()>) {
        self.fetch_token(Box::new(move |token| {
            let token = match token {
                Ok(t) if !(flags.failed.get() || flags.closed.get()) => t,
                Ok(_) => return then(Ok(())),
                Err(e) => return then(Err(e)),
            };
            let Some(update) = js::method(&client, "updateToken") else {
                return then(Err(Error::Callback {
                    what: "updateToken",
                    message: "client has no updateToken".into(),
                }));
            };
            // After a 410 the real client is `disconnecting` for ~3 s and silently drops an
            // `updateToken` made then (it never reconnects): wait for `disconnected`.
            until_not_disconnecting(&client.clone(), REFRESH_WAIT_MS, move || {
                if flags.closed.get() {
                    return then(Ok(()));
                }
                // The real `updateToken` first awaits initialisation, which a client cut off
                // before `initialized` never finishes: only a new client helps then.
                let state = ConnectionState::now(&client);
                if !flags.initialized.get() && state == ConnectionState::Disconnected {
                    return then(Err(Error::Callback {
                        what: "updateToken",
                        message: STUCK.into(),
                    }));
                }
                let returned = match update.call1(&client, &JsValue::from_str(&token)) {
                    Ok(returned) => returned,
                    Err(e) => return then(Err(update_failed(e))),
                };
                // Bounded, so one lost promise cannot block every later refresh.
                js::within(
                    &Promise::resolve(&returned),
                    REFRESH_WAIT_MS,
                    move |settled| {
                        then(match settled {
                            Some(settled) => settled.map(|_| ()).map_err(update_failed),
                            None => Err(Error::Callback {
                                what: "updateToken",
                                message: "did not settle within 10 s".into(),
                            }),
                        })
                    },
                );
            });
        }));
    }

    /// Detaches from `live` and shuts its client down: resolves when that is done, or
    /// after the timeout.
    fn close(&self, live: Live) -> Promise {
        shutdown_client(&live.detach(), self.shutdown_timeout_ms, &self.on_error)
    }
}

fn token_failed(e: JsValue) -> Error {
    Error::Callback {
        what: "getToken",
        message: js::message(&e),
    }
}

fn update_failed(e: JsValue) -> Error {
    Error::Callback {
        what: "updateToken",
        message: js::message(&e),
    }
}

impl Live {
    /// Removes our listeners and stops the tracker's watch; the client itself goes on.
    fn detach(self) -> JsValue {
        self.flags.closed.set(true);
        drop(self.listeners);
        if let Some(watch) = &self.watch {
            if let Some(stop) = js::method(watch, "stop") {
                let _ = stop.call0(watch);
            }
        }
        self.client
    }
}

/// `client.shutdown()`: resolves when it has, or after `ms`; what it throws goes to `onError`.
fn shutdown_client(client: &JsValue, ms: f64, on_error: &Option<Function>) -> Promise {
    let Some(shutdown) = js::method(client, "shutdown") else {
        return Promise::resolve(&JsValue::UNDEFINED);
    };
    match shutdown.call0(client) {
        Ok(done) => js::bounded(&done, ms),
        Err(e) => {
            js::report(
                on_error,
                &Error::Callback {
                    what: "client.shutdown",
                    message: js::message(&e),
                },
            );
            Promise::resolve(&JsValue::UNDEFINED)
        }
    }
}
