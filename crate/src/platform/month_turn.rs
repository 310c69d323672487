//! The UTC month turning, as a value: a timer to the next month's first instant (armed
//! again in steps past the browser's 2^31−1 ms timer limit) and a look at the clock
//! whenever the page becomes visible again (timers sleep with the machine and are
//! throttled in the background). No polling. Dropping it cancels both.

use crate::platform::cell::Access;
use alloc::{boxed::Box, rc::Rc, rc::Weak, string::String};
use core::cell::RefCell;

use js_sys::Date;

use crate::core::clock::{next_month_start, utc_month};
use crate::platform::dom::{DomListener, Timer};

/// Calls back once each time the UTC month (by the device clock) has turned.
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
    month: RefCell<String>,
    timer: RefCell<Option<Timer>>,
    on_turn: Box<dyn Fn()>,
}

impl MonthTurn {
    /// Calls `on_turn` when a new UTC month has begun since the last call (or since now).
    pub fn new(on_turn: Box<dyn Fn()>) -> MonthTurn {
        let state = Rc::new(State {
            month: RefCell::new(utc_month(Date::now())),
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

/// The timer to the next month's start (`Timer` caps the delay at the browser's limit;
/// firing early, it is armed again from `check`).
fn arm(state: &Rc<State>) {
    let now = Date::now();
    let weak: Weak<State> = Rc::downgrade(state);
    let timer = Timer::new((next_month_start(now) - now) as u32, move || check(&weak));
    *state.timer.write() = Some(timer);
}

/// Calls back if the month turned, and sets the timer anew either way.
fn check(weak: &Weak<State>) {
    let Some(state) = weak.upgrade() else { return };
    let now = utc_month(Date::now());
    let turned = *state.month.read() != now;
    if turned {
        *state.month.write() = now;
        (state.on_turn)();
    }
    arm(&state);
}
