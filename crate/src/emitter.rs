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
    off: Function,
    /// `Some` until dropped (then freed a microtask later, see `Drop`).
    callback: Option<Closure<dyn FnMut(JsValue)>>,
}

impl EmitterListener {
    /// Subscribes `f` to `event` on `target`.
    pub fn new(target: &JsValue, event: &'static str, f: impl FnMut(JsValue) + 'static) -> Result<Self, Error> {
        let (on, off) = methods(target).ok_or(Error::config("client", "must have on/off or addListener/removeListener"))?;
        let callback = Closure::<dyn FnMut(JsValue)>::new(f);
        on.call2(target, &JsValue::from_str(event), callback.as_ref())
            .map_err(|e| Error::Callback { what: "client.on", message: js::message(&e) })?;
        Ok(EmitterListener { target: target.clone(), event, off, callback: Some(callback) })
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
