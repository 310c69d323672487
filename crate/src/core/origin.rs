//! Where a client was made: the app's `context` label for the place (`"support-widget"`)
//! and the `reason` that made it (a click, the widget becoming visible, the app itself).
//! Both go on the beacon (wire v1, additive), so the collector can say which part of the
//! app makes each MAU and which of those did nothing.

use alloc::string::String;

use serde::{Serialize, Serializer};

use crate::core::error::Error;

/// The longest `context`, in bytes.
pub const MAX_CONTEXT_BYTES: usize = 64;

/// What made the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// `LazyClient.connectOn`: a `click` inside the target.
    Click,
    /// `LazyClient.connectWhenVisible`: the element became visible.
    Visible,
    /// `LazyClient.connectOn`: focus moved inside the target (`focusin`).
    Focus,
    /// `LazyClient.connectOn`: a `keydown` inside the target.
    Key,
    /// The app asked for the client: `LazyClient.get()`, or `eagerIfCounted`.
    Explicit,
    /// The app made the client itself and handed it to `watch()` (or `replaceClient`).
    App,
}

impl Reason {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Click => "click",
            Reason::Visible => "visible",
            Reason::Focus => "focus",
            Reason::Key => "key",
            Reason::Explicit => "explicit",
            Reason::App => "app",
        }
    }

    /// Reads the wire name; `None` for a name this SDK does not send.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "click" => Reason::Click,
            "visible" => Reason::Visible,
            "focus" => Reason::Focus,
            "key" => Reason::Key,
            "explicit" => Reason::Explicit,
            "app" => Reason::App,
            _ => return None,
        })
    }
}

/// As its wire name (a derived `Serialize` costs more wasm for the same JSON).
impl Serialize for Reason {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// The context and reason of one watched client, given to each of its beacons.
#[derive(Debug, Clone, PartialEq)]
pub struct Origin {
    /// The app's label, when it gave one.
    pub context: Option<String>,
    /// What made the client.
    pub reason: Reason,
}

impl Origin {
    /// A client the app made itself, with no label.
    pub fn app() -> Origin {
        Origin {
            context: None,
            reason: Reason::App,
        }
    }
}

/// Checks a `context` label: 1–64 bytes of `A-Z a-z 0-9 . _ : / -`, so it is safe in a
/// report, a CSV cell and a metric label.
pub fn check_context(context: Option<String>) -> Result<Option<String>, Error> {
    match context {
        Some(c) if !is_context(&c) => Err(Error::config(
            "context",
            "must be 1 to 64 characters of A-Z a-z 0-9 . _ : / -",
        )),
        c => Ok(c),
    }
}

fn is_context(c: &str) -> bool {
    if c.is_empty() || c.len() > MAX_CONTEXT_BYTES {
        return false;
    }
    for b in c.bytes() {
        if !(b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'/' | b'-')) {
            return false;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contexts_taken_and_refused() {
        for good in [
            "inbox",
            "support-widget",
            "a",
            "app/help:v2.1_x",
            &"x".repeat(64),
        ] {
            assert_eq!(
                check_context(Some(good.into())),
                Ok(Some(good.into())),
                "{good}"
            );
        }
        assert_eq!(check_context(None), Ok(None));
        for bad in [
            "",
            "has space",
            "ü",
            "semi;colon",
            "new\nline",
            &"x".repeat(65),
            "a,b",
            "\"q\"",
        ] {
            let e = check_context(Some(bad.into())).unwrap_err();
            assert_eq!(e.code(), "invalid_config", "{bad:?}");
            assert_eq!(e.field(), Some("context"), "{bad:?}");
            assert!(e.message().contains("`context`"), "{}", e.message());
        }
    }

    #[test]
    fn reasons_round_trip_their_wire_names() {
        for (r, name) in [
            (Reason::Click, "click"),
            (Reason::Visible, "visible"),
            (Reason::Focus, "focus"),
            (Reason::Key, "key"),
            (Reason::Explicit, "explicit"),
            (Reason::App, "app"),
        ] {
            assert_eq!(r.as_str(), name);
            assert_eq!(Reason::parse(name), Some(r));
            assert_eq!(serde_json::to_string(&r).unwrap(), format!("\"{name}\""));
        }
        assert_eq!(Reason::parse("hover"), None);
        assert_eq!(Reason::parse("Click"), None);
    }
}
