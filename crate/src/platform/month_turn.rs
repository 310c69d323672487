//! The moments a client connected all along is reported for a month
//! (`core::outbox::still_connected_checks`), as a value: a timer to the next one (armed
//! again in steps past the browser's 2^31−1 ms timer limit) and a look at the clock
//! whenever the page becomes visible again (timers sleep with the machine and are
//! throttled in the background). No polling. Dropping it cancels both.

use alloc::{boxed::Box, rc::Rc, rc::Weak};
use core::cell::{Cell, RefCell};

use js_sys::Date;

use crate::core::outbox::still_connected_checks;
use crate::platform::cell::Access;
use crate::platform::dom::{DomListener, Timer};

/// Calls back once each time such a moment has passed.
pub struct MonthTurn {
    _state: Rc<State>,
    _visible: Option<DomListener>,
}

impl core::fmt::Debug for MonthTurn {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("MonthTurn")
    }
}

struct State {
    /// The last moment passed, by the device clock.
    last: Cell<f64>,
    timer: RefCell<Option<Timer>>,
    on_turn: Box<dyn Fn()>,
}

impl MonthTurn {
    /// Calls `on_turn` when such a moment has passed since the last call (or since now).
    pub fn new(on_turn: Box<dyn Fn()>) -> MonthTurn {
        let state = Rc::new(State {
            last: Cell::new(still_connected_checks(Date::now()).0),
            timer: RefCell::new(None),
            on_turn,
        });
        arm(&state);
        let weak = Rc::downgrade(&state);
        let visible = web_sys::window().and_then(|w| w.document()).map(|doc| {
            let target = doc.clone();
            DomListener::new(&doc, "visibilitychange", move |_| {
                // Read as text: web-sys's enum costs more wasm (docs/size.md).
                let visible = crate::platform::js::get(&target, "visibilityState");
                if visible.as_string().as_deref() == Some("visible") {
                    check(&weak);
                }
            })
        });
        MonthTurn {
            _state: state,
            _visible: visible,
        }
    }
}

/// The timer to the next moment (`Timer` caps the delay at the browser's limit; firing
/// early, it is armed again from `check`).
fn arm(state: &Rc<State>) {
    let now = Date::now();
    let weak: Weak<State> = Rc::downgrade(state);
    let next = still_connected_checks(now).1;
    let timer = Timer::new((next - now) as u32, move || check(&weak));
    *state.timer.write() = Some(timer);
}

/// Calls back if a moment passed, and sets the timer anew either way.
fn check(weak: &Weak<State>) {
    let Some(state) = weak.upgrade() else { return };
    let passed = still_connected_checks(Date::now()).0;
    if passed > state.last.get() {
        state.last.set(passed);
        (state.on_turn)();
    }
    arm(&state);
}
