//! When the page gives us a chance to deliver: back `online`, tab hidden, page hidden.
//! Never `unload`/`beforeunload`: they break the back/forward cache and miss mobile
//! app switches. Hooks take callbacks; what to do is the tracker's business.

use alloc::boxed::Box;

use alloc::rc::Rc;

use crate::platform::dom::DomListener;
use crate::platform::js;

/// The page listeners; dropping them unsubscribes.
#[derive(Debug)]
pub struct PageHooks {
    _listeners: [DomListener; 3],
}

impl PageHooks {
    /// Calls `chance` when the page is back online or hidden, `leaving` on `pagehide`;
    /// `None` outside a window (a worker).
    pub fn install(chance: Rc<dyn Fn()>, leaving: Box<dyn Fn()>) -> Option<PageHooks> {
        let window = web_sys::window()?;
        let document = window.document()?;
        let online = {
            let chance = chance.clone();
            DomListener::new(&window, "online", move |_| chance())
        };
        let doc = document.clone();
        let hidden = DomListener::new(&document, "visibilitychange", move |_| {
            // Read as text: web-sys's enum conversion has a formatted panic path (docs/size.md).
            if js::get(&doc, "visibilityState").as_string().as_deref() == Some("hidden") {
                chance();
            }
        });
        let pagehide = DomListener::new(&window, "pagehide", move |_| leaving());
        Some(PageHooks {
            _listeners: [online, hidden, pagehide],
        })
    }
}
