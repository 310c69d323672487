//! A listener on a Node-style event emitter (the Conversations `Client`), removed when
//! dropped: gloo's `EventListener`, for `on`/`off` instead of the DOM's methods.

use js_sys::Function;
use wasm_bindgen::prelude::*;

use crate::error::Error;
use crate::js;

/// `on`/`off`, else `addListener`/`removeListener`.
pub fn methods(target: &JsValue) -> Option<(Function, Function)> {
    match (js::method(target, "on"), js::method(target, "off")) {
        (Some(on), Some(off)) => Some((on, off)),
        _ => Some((js::method(target, "addListener")?, js::method(target, "removeListener")?)),
    }
}

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
    pub fn new(target: &JsValue, event: &'static str, mut f: impl FnMut(JsValue) + 'static) -> Result<Self, Error> {
        Self::new2(target, event, move |a, _| f(a))
    }

    /// Subscribes `f`, which takes the event's first two arguments, to `event` on `target`.
    pub fn new2(target: &JsValue, event: &'static str, f: impl FnMut(JsValue, JsValue) + 'static) -> Result<Self, Error> {
        let (on, off) = methods(target).ok_or(Error::config("client", "must have on/off or addListener/removeListener"))?;
        let listener = EmitterListener { target: target.clone(), event, on, off, callback: Some(Closure::new(f)) };
        listener.subscribe()?;
        Ok(listener)
    }

    fn function(&self) -> Option<&JsValue> {
        self.callback.as_ref().map(|c| c.as_ref())
    }

    fn subscribe(&self) -> Result<(), Error> {
        let Some(f) = self.function() else { return Ok(()) };
        self.on
            .call2(&self.target, &JsValue::from_str(self.event), f)
            .map(|_| ())
            .map_err(|e| Error::Callback { what: "client.on", message: js::message(&e) })
    }

    /// Whether `listener` is this subscription's function (as `removeListener` reports it).
    pub fn is(&self, listener: &JsValue) -> bool {
        self.function().is_some_and(|f| js_sys::Object::is(f, listener))
    }

    /// Subscribes again after someone else removed us (`client.removeAllListeners()`).
    /// Off first, so a listener that was not removed is not added twice.
    pub fn reattach(&self) -> Result<(), Error> {
        if let Some(f) = self.function() {
            let _ = self.off.call2(&self.target, &JsValue::from_str(self.event), f);
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
            let _ = self.off.call2(&self.target, &JsValue::from_str(self.event), callback.as_ref());
            js::drop_later(callback);
        }
    }
}
