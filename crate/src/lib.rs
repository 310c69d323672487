//! mau-beacon: audit and cut a Twilio Conversations Monthly-Active-User bill from the browser.
#![deny(missing_docs, missing_debug_implementations)]

pub mod backoff;
pub mod beacon;
pub mod clock;
pub mod error;
pub mod outbox;
pub mod token;
