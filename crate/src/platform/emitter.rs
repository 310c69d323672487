//! A listener on a Node-style event emitter (the Conversations `Client`), removed when
//! dropped: gloo's `EventListener`, for `on`/`off` instead of the DOM's methods.

use alloc::rc::Rc;
use alloc::{boxed::Box, vec::Vec};
use core::cell::{Cell, RefCell};

use js_sys::Function;
use wasm_bindgen::prelude::*;

use crate::core::error::Error;
use crate::platform::cell::Access;
use crate::platform::conversations::methods;
use crate::platform::js;

/// One subscription. Dropping it unsubscribes.
#[must_use = "the listener is removed as soon as this value is dropped"]
#[derive(Debug)]
pub struct EmitterListener {
    target: JsValue,
    event: &'static str,
    on: Function,
    off: Function,
    /// `Some` until dropped (then freed a microtask later, see `Drop`). Two arguments, for
    /// `removeListener(event, listener)`; one-argument events get `undefined` as the second.
    callback: Option<Closure<dyn FnMut(JsValue, JsValue)>>,
}

impl EmitterListener {
    /// Subscribes `f` to `event` on `target`.
    pub fn new(
        target: &JsValue,
        event: &'static str,
        mut f: impl FnMut(JsValue) + 'static,
    ) -> Result<Self, Error> {
        Self::new2(target, event, Box::new(move |a, _| f(a)))
    }

    /// Subscribes `f`, which takes the event's first two arguments, to `event` on `target`.
    /// Boxed and not generic: one copy of the closure glue for every listener (docs/size.md).
    #[inline(never)]
    fn new2(
        target: &JsValue,
        event: &'static str,
        f: Box<dyn FnMut(JsValue, JsValue)>,
    ) -> Result<Self, Error> {
        let (on, off) = methods(target).ok_or(Error::config(
            "client",
            "must have on/off or addListener/removeListener",
        ))?;
        let listener = EmitterListener {
            target: target.clone(),
            event,
            on,
            off,
            callback: Some(Closure::wrap(f)),
        };
        listener.subscribe()?;
        Ok(listener)
    }

    fn function(&self) -> Option<&JsValue> {
        self.callback.as_ref().map(|c| c.as_ref())
    }

    fn subscribe(&self) -> Result<(), Error> {
        let Some(f) = self.function() else {
            return Ok(());
        };
        self.on
            .call2(&self.target, &JsValue::from_str(self.event), f)
            .map(|_| ())
            .map_err(|e| Error::Callback {
                what: "client.on",
                message: js::message(&e),
            })
    }

    /// Whether `listener` is this subscription's function (as `removeListener` reports it).
    fn is(&self, listener: &JsValue) -> bool {
        self.function()
            .is_some_and(|f| js_sys::Object::is(f, listener))
    }

    /// Subscribes again after someone else removed us (`client.removeAllListeners()`).
    /// Off first, so a listener that was not removed is not added twice.
    fn reattach(&self) -> Result<(), Error> {
        if let Some(f) = self.function() {
            let _ = self
                .off
                .call2(&self.target, &JsValue::from_str(self.event), f);
        }
        self.subscribe()
    }
}

impl Drop for EmitterListener {
    /// Unsubscribes at once, but frees the closure only on the next microtask: Node's
    /// `emit` calls a copy of the listener list, so a listener removed during an emit (say
    /// `watch.stop()` from the app's own handler) is still called in that emit, and a freed
    /// closure would throw into the client. The callbacks hold `Weak`s and check `stopped`,
    /// so that late call does nothing.
    fn drop(&mut self) {
        if let Some(callback) = self.callback.take() {
            let _ = self.off.call2(
                &self.target,
                &JsValue::from_str(self.event),
                callback.as_ref(),
            );
            js::drop_later(callback);
        }
    }
}

/// Listeners on one client that come back when someone else removes them: an app's
/// `client.removeAllListeners()` takes ours too. Emitters built on Node's or the `events`
/// package's `EventEmitter` (the real client is) announce each removal on `removeListener`;
/// others go unguarded. Dropping it removes every listener.
#[must_use = "the listeners are removed as soon as this value is dropped"]
#[derive(Debug)]
pub struct GuardedListeners {
    inner: Rc<Guarded>,
}

#[derive(Debug)]
struct Guarded {
    listeners: RefCell<Vec<EmitterListener>>,
    guard: RefCell<Option<EmitterListener>>,
    on_error: Option<Function>,
    queued: Cell<bool>,
    reported: Cell<bool>,
    dropped: Cell<bool>,
}

impl GuardedListeners {
    /// Guards `listeners` on `target`; a removal is reported once through `on_error`.
    pub fn new(
        target: &JsValue,
        listeners: Vec<EmitterListener>,
        on_error: Option<Function>,
    ) -> Self {
        let inner = Rc::new(Guarded {
            listeners: RefCell::new(listeners),
            guard: RefCell::new(None),
            on_error,
            queued: Cell::new(false),
            reported: Cell::new(false),
            dropped: Cell::new(false),
        });
        let weak = Rc::downgrade(&inner);
        let on_removal = move |_event, listener: JsValue| {
            let Some(g) = weak.upgrade() else { return };
            if g.dropped.get() || !g.listeners.read().iter().any(|l| l.is(&listener)) {
                return;
            }
            // `removeAllListeners()` clears the emitter after its last `removeListener`
            // event: attach again once it is done.
            if !g.queued.replace(true) {
                js::later(move || g.reattach());
            }
        };
        let guard = EmitterListener::new2(target, "removeListener", Box::new(on_removal));
        *inner.guard.write() = guard.ok();
        GuardedListeners { inner }
    }
}

impl Guarded {
    /// Puts back what was removed behind our back and says so, once. `queued` stays set
    /// while our own `off`/`on` run, so the removals they announce don't queue another
    /// round; no borrow is held across a call into the app (`onError` may stop us).
    fn reattach(&self) {
        if !self.dropped.get() {
            let result = {
                let (listeners, guard) = (self.listeners.read(), self.guard.read());
                listeners
                    .iter()
                    .chain(guard.iter())
                    .try_for_each(EmitterListener::reattach)
            };
            if self.dropped.get() {
                // Dropped by a listener of the emitter's own events while we re-attached.
                self.clear();
            } else {
                if !self.reported.replace(true) {
                    js::report(&self.on_error, &Error::ListenersRemoved);
                }
                if let Err(e) = result {
                    js::report(&self.on_error, &e);
                }
            }
        }
        self.queued.set(false);
    }

    /// Removes every listener; left to `reattach` when it holds them right now.
    fn clear(&self) {
        if let Ok(mut guard) = self.guard.try_borrow_mut() {
            guard.take();
        }
        if let Ok(mut listeners) = self.listeners.try_borrow_mut() {
            listeners.clear();
        }
    }
}

impl Drop for GuardedListeners {
    fn drop(&mut self) {
        self.inner.dropped.set(true);
        self.inner.clear();
    }
}
