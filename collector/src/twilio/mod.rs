//! Twilio's side of the audit: signed webhooks and Event Streams, and (from the command
//! line) the REST API: participant aggregation and the billed count from Usage Records.

pub mod rest;
pub mod signature;
pub mod sync;
pub mod webhook;
