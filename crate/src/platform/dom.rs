//! A DOM event listener and a timer as RAII values: dropping one unsubscribes or cancels.
//! gloo-events and gloo-timers do the same, but keep std's panic machinery in the wasm and
//! cost more than these few lines (docs/size.md); the shape follows gloo's.

use alloc::boxed::Box;

use wasm_bindgen::prelude::*;
use web_sys::{Event, EventTarget};

#[wasm_bindgen]
extern "C" {
    /// The global `setTimeout`, in a window and a worker alike.
    #[wasm_bindgen(js_name = setTimeout)]
    pub(crate) fn set_timeout(handler: &JsValue, ms: i32) -> JsValue;
    /// The global `clearTimeout`.
    #[wasm_bindgen(js_name = clearTimeout)]
    fn clear_timeout(id: &JsValue);
}

/// `addEventListener` until dropped.
#[must_use = "the listener is removed as soon as this value is dropped"]
#[derive(Debug)]
pub struct DomListener {
    target: EventTarget,
    event: &'static str,
    callback: Closure<dyn FnMut(Event)>,
}

impl DomListener {
    /// Calls `f` on each `event` at `target`.
    pub fn new(target: &EventTarget, event: &'static str, f: impl FnMut(Event) + 'static) -> Self {
        Self::new_boxed(target, event, Box::new(f))
    }

    /// One non-generic body for every closure type: the glue is instantiated once.
    #[inline(never)]
    fn new_boxed(target: &EventTarget, event: &'static str, f: Box<dyn FnMut(Event)>) -> Self {
        let callback = Closure::wrap(f);
        let _ = target.add_event_listener_with_callback(event, callback.as_ref().unchecked_ref());
        DomListener {
            target: target.clone(),
            event,
            callback,
        }
    }
}

impl Drop for DomListener {
    fn drop(&mut self) {
        let _ = self.target.remove_event_listener_with_callback(
            self.event,
            self.callback.as_ref().unchecked_ref(),
        );
    }
}

/// `setTimeout` until it fires or is dropped.
#[must_use = "the timer is cancelled as soon as this value is dropped"]
#[derive(Debug)]
pub struct Timer {
    id: JsValue,
    _callback: Closure<dyn FnMut()>,
}

impl Timer {
    /// Calls `f` once after `ms` milliseconds.
    pub fn new(ms: u32, f: impl FnOnce() + 'static) -> Self {
        let mut f = Some(f);
        Self::new_boxed(
            ms,
            Box::new(move || {
                if let Some(f) = f.take() {
                    f()
                }
            }),
        )
    }

    #[inline(never)]
    fn new_boxed(ms: u32, f: Box<dyn FnMut()>) -> Self {
        let callback = Closure::wrap(f);
        // Browsers keep delays in an i32: larger ones would fire at once.
        let ms = ms.min(i32::MAX as u32) as i32;
        let id = set_timeout(callback.as_ref(), ms);
        Timer {
            id,
            _callback: callback,
        }
    }
}

impl Drop for Timer {
    fn drop(&mut self) {
        clear_timeout(&self.id);
    }
}
