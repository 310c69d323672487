//! When the page gives us a chance to deliver: back `online`, tab hidden, page hidden.
//! Never `unload`/`beforeunload`: they break the back/forward cache and miss mobile
//! app switches.

use std::rc::Weak;

use gloo_events::EventListener;
use web_sys::VisibilityState;

use crate::tracker::TrackerInner;

/// The tracker's page listeners; dropping them unsubscribes.
#[derive(Debug)]
pub struct PageHooks {
    _listeners: [EventListener; 3],
}

impl PageHooks {
    /// Listens for the tracker while it lives; `None` outside a window (a worker).
    pub(crate) fn install(tracker: Weak<TrackerInner>) -> Option<PageHooks> {
        let window = web_sys::window()?;
        let document = window.document()?;
        let online = {
            let tracker = tracker.clone();
            EventListener::new(&window, "online", move |_| {
                if let Some(t) = tracker.upgrade() {
                    let _ = TrackerInner::schedule(&t, true);
                }
            })
        };
        let hidden = {
            let tracker = tracker.clone();
            let doc = document.clone();
            EventListener::new(&document, "visibilitychange", move |_| {
                if doc.visibility_state() == VisibilityState::Hidden {
                    if let Some(t) = tracker.upgrade() {
                        let _ = TrackerInner::schedule(&t, true);
                    }
                }
            })
        };
        let pagehide = EventListener::new(&window, "pagehide", move |_| {
            if let Some(t) = tracker.upgrade() {
                t.last_try();
            }
        });
        Some(PageHooks {
            _listeners: [online, hidden, pagehide],
        })
    }
}
