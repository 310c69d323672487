//! Errors inside the SDK. At the JS boundary they become a `JsError` whose message is the
//! `Display` text, so every variant names the field or the step that went wrong.

use thiserror::Error;

/// Everything that can go wrong in mau-beacon.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum Error {
    /// A config object was missing, of the wrong type, or held a bad value.
    #[error("mau-beacon: invalid config: `{field}` {problem}")]
    Config {
        /// The field, e.g. `collectorUrl`.
        field: &'static str,
        /// What is wrong with it, e.g. `is required`.
        problem: &'static str,
    },
    /// The access token could not be read for its identity.
    #[error("mau-beacon: access token unreadable: {0}")]
    Token(&'static str),
    /// The browser API needed is not there (no `window`, no `fetch`).
    #[error("mau-beacon: {0} is not available in this environment")]
    Unavailable(&'static str),
    /// A callback supplied by the app threw or rejected.
    #[error("mau-beacon: {what} failed: {message}")]
    Callback {
        /// Which callback, e.g. `getToken`.
        what: &'static str,
        /// The message of what it threw.
        message: String,
    },
    /// `LazyClient` was used after `shutdown()`.
    #[error("mau-beacon: the LazyClient was shut down")]
    ShutDown,
    /// Someone removed our listeners from the client (e.g. `client.removeAllListeners()`);
    /// they were attached again.
    #[error("mau-beacon: the client's listeners were removed (removeAllListeners?); mau-beacon attached its own again")]
    ListenersRemoved,
    /// An identity longer than the collector takes (Twilio's own limit): refused here,
    /// with a reason, rather than sent for a 400.
    #[error("mau-beacon: identity is longer than 256 bytes (Twilio's limit); no beacon sent")]
    IdentityTooLong,
    /// `replaceClient()` while a client is still being created.
    #[error("mau-beacon: a client is being created; replace it once get() has resolved")]
    Busy,
}

impl Error {
    /// Shorthand for a config error.
    pub fn config(field: &'static str, problem: &'static str) -> Self {
        Error::Config { field, problem }
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
        }
    }
}
