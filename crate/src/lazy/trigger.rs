//! What makes a `LazyClient` connect: a first interaction or the chat becoming visible.
//! A trigger connects once, then removes its listeners.

use alloc::vec::Vec;

use alloc::rc::Rc;
use core::cell::{Cell, RefCell};

use crate::platform::dom::DomListener;
use js_sys::Array;
use wasm_bindgen::prelude::*;
use web_sys::{Element, EventTarget, IntersectionObserver, IntersectionObserverEntry};

use crate::core::error::Error;
use crate::core::origin::Reason;
use crate::lazy::LazyInner;
use crate::platform::cell::Access;
use crate::platform::js;

type ObserverCallback = Closure<dyn FnMut(Array, IntersectionObserver)>;

pub(crate) struct TriggerInner {
    lazy: Rc<LazyInner>,
    listeners: RefCell<Vec<DomListener>>,
    observer: RefCell<Option<(IntersectionObserver, ObserverCallback)>>,
    /// A connect it started is under way.
    connecting: Cell<bool>,
    /// A pointer went down inside the target: the focus that follows is a click's.
    pressed: Cell<bool>,
    done: Cell<bool>,
}

/// An armed trigger. It stays armed until its connect succeeds or `stop()`, even if this
/// handle is garbage-collected.
#[wasm_bindgen]
pub struct Trigger {
    inner: Rc<TriggerInner>,
}

impl core::fmt::Debug for Trigger {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Trigger")
            .field("done", &self.inner.done.get())
            .finish()
    }
}

#[wasm_bindgen]
impl Trigger {
    /// Disarms the trigger without connecting.
    pub fn stop(&self) {
        self.inner.disarm();
    }

    /// Whether it connected or was stopped.
    #[wasm_bindgen(getter)]
    pub fn done(&self) -> bool {
        self.inner.done.get()
    }
}

impl TriggerInner {
    fn arm(lazy: &Rc<LazyInner>) -> Rc<TriggerInner> {
        let t = Rc::new(TriggerInner {
            lazy: lazy.clone(),
            listeners: RefCell::new(Vec::new()),
            observer: RefCell::new(None),
            connecting: Cell::new(false),
            pressed: Cell::new(false),
            done: Cell::new(false),
        });
        lazy.triggers.add(t.clone());
        t
    }

    pub(crate) fn on_interaction(lazy: &Rc<LazyInner>, target: JsValue) -> Result<Trigger, Error> {
        let target: EventTarget = target
            .dyn_into()
            .map_err(|_| Error::config("target", "must be a DOM element or event target"))?;
        let t = TriggerInner::arm(lazy);
        // `pointerdown` connects nothing: it tells a click's own `focusin` (which comes
        // before the `click`) from focus moved by the keyboard.
        let listeners = [
            ("pointerdown", None),
            ("click", Some(Reason::Click)),
            ("focusin", Some(Reason::Focus)),
            ("keydown", Some(Reason::Key)),
        ]
        .into_iter()
        .map(|(event, reason)| {
            let weak = Rc::downgrade(&t);
            DomListener::new(&target, event, move |_| {
                if let Some(t) = weak.upgrade() {
                    t.on_event(reason);
                }
            })
        })
        .collect();
        *t.listeners.write() = listeners;
        Ok(Trigger { inner: t })
    }

    pub(crate) fn when_visible(lazy: &Rc<LazyInner>, element: JsValue) -> Result<Trigger, Error> {
        let element: Element = element
            .dyn_into()
            .map_err(|_| Error::config("element", "must be a DOM element"))?;
        let t = TriggerInner::arm(lazy);
        let weak = Rc::downgrade(&t);
        let callback = ObserverCallback::new(move |entries: Array, _| {
            let visible = entries.iter().any(|e| {
                e.unchecked_into::<IntersectionObserverEntry>()
                    .is_intersecting()
            });
            if let (true, Some(t)) = (visible, weak.upgrade()) {
                t.fire(Reason::Visible);
            }
        });
        let Ok(observer) = IntersectionObserver::new(callback.as_ref().unchecked_ref()) else {
            t.disarm();
            return Err(Error::Unavailable("IntersectionObserver"));
        };
        observer.observe(&element);
        *t.observer.write() = Some((observer, callback));
        Ok(Trigger { inner: t })
    }

    /// An interaction inside the target: `None` is a pointer going down.
    fn on_event(self: &Rc<Self>, reason: Option<Reason>) {
        // A press marks only the event that follows it (a click's own `focusin`), not a
        // keyboard focus after a touch scroll or a drag that never clicked.
        match (reason, reason.is_some() && self.pressed.replace(false)) {
            (None, _) => self.pressed.set(true),
            (Some(Reason::Focus), true) => self.fire(Reason::Click),
            (Some(reason), _) => self.fire(reason),
        }
    }

    /// Connects, for `reason`; disarms once connected. A failed connect leaves it armed, so
    /// the next interaction tries again (the failure goes to `onError`).
    fn fire(self: &Rc<Self>, reason: Reason) {
        if self.done.get() || self.connecting.replace(true) {
            return;
        }
        let trigger = self.clone();
        js::when(&LazyInner::get(&self.lazy, reason), move |result| {
            trigger.connecting.set(false);
            match result {
                Ok(_) => trigger.disarm(),
                Err(e) => js::notify(&trigger.lazy.on_error, &e),
            }
        });
    }

    /// Removes the listeners (after the current event: they may be running now).
    pub(crate) fn disarm(self: &Rc<Self>) {
        if self.done.replace(true) {
            return;
        }
        let observer = self.observer.write().take();
        if let Some((o, _)) = &observer {
            o.disconnect();
        }
        js::drop_later((core::mem::take(&mut *self.listeners.write()), observer));
        self.lazy.triggers.remove(self);
    }
}
