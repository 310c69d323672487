//! Errors inside the SDK. At the JS boundary they become an `Error` whose message is
//! [`Error::message`], so every variant names the field or the step that went wrong. The
//! text is joined from static parts rather than formatted: the wasm has no `core::fmt`
//! (docs/size.md); `Display` shows the same text.

use alloc::string::String;

use thiserror::Error;

/// Everything that can go wrong in mau-beacon.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum Error {
    /// A config object was missing, of the wrong type, or held a bad value.
    #[error("{}", self.message())]
    Config {
        /// The field, e.g. `collectorUrl`.
        field: &'static str,
        /// What is wrong with it, e.g. `is required`.
        problem: &'static str,
    },
    /// The access token could not be read for its identity.
    #[error("{}", self.message())]
    Token(&'static str),
    /// The browser API needed is not there (no `window`, no `fetch`).
    #[error("{}", self.message())]
    Unavailable(&'static str),
    /// A callback supplied by the app threw or rejected.
    #[error("{}", self.message())]
    Callback {
        /// Which callback, e.g. `getToken`.
        what: &'static str,
        /// The message of what it threw.
        message: String,
    },
    /// `LazyClient` was used after `shutdown()`.
    #[error("{}", self.message())]
    ShutDown,
    /// Someone removed our listeners from the client (e.g. `client.removeAllListeners()`);
    /// they were attached again.
    #[error("{}", self.message())]
    ListenersRemoved,
    /// An identity longer than the collector takes (Twilio's own limit): refused here,
    /// with a reason, rather than sent for a 400.
    #[error("{}", self.message())]
    IdentityTooLong,
    /// `replaceClient()` while a client is still being created.
    #[error("{}", self.message())]
    Busy,
    /// Delivery failed with no HTTP answer twice in a row: the browser hides why (CORS,
    /// DNS, offline alike), so say the likeliest cause once.
    #[error("{}", self.message())]
    Network,
}

impl Error {
    /// Shorthand for a config error.
    pub fn config(field: &'static str, problem: &'static str) -> Self {
        Error::Config { field, problem }
    }

    /// What went wrong, in words, for the JS `Error`'s `message`.
    pub fn message(&self) -> String {
        let parts: [&str; 4] = match self {
            Error::Config { field, problem } => ["invalid config: `", field, "` ", problem],
            Error::Token(why) => ["access token unreadable: ", why, "", ""],
            Error::Unavailable(what) => [what, " is not available in this environment", "", ""],
            Error::Callback { what, message } => [what, " failed: ", message, ""],
            Error::ShutDown => ["the LazyClient was shut down", "", "", ""],
            Error::ListenersRemoved => ["the client's listeners were removed (removeAllListeners?); mau-beacon attached its own again", "", "", ""],
            Error::IdentityTooLong => ["identity is longer than 256 bytes (Twilio's limit); no beacon sent", "", "", ""],
            Error::Busy => ["a client is being created; replace it once get() has resolved", "", "", ""],
            Error::Network => ["no answer from the collector, twice; beacons wait. ", "On another origin it must allow this page's (CORS: mau-collector --allow-origin); a CSP connect-src or a blocker also stops it", "", ""],
        };
        let mut text = String::from("mau-beacon: ");
        for part in parts {
            text.push_str(part);
        }
        text
    }

    /// The config field at fault, for config errors.
    pub fn field(&self) -> Option<&'static str> {
        match self {
            Error::Config { field, .. } => Some(field),
            _ => None,
        }
    }

    /// The stable `code` the JS `Error` carries, for apps that branch on it.
    pub fn code(&self) -> &'static str {
        match self {
            Error::Config { .. } => "invalid_config",
            Error::Token(_) => "token_unreadable",
            Error::Unavailable(_) => "unavailable",
            Error::Callback { .. } => "callback_failed",
            Error::ShutDown => "shut_down",
            Error::ListenersRemoved => "listeners_removed",
            Error::IdentityTooLong => "identity_too_long",
            Error::Busy => "busy",
            Error::Network => "network",
        }
    }
}
