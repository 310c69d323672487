//! mau-collector as a library: the HTTP service (`app`), its storage and the wire format,
//! so tests can drive the service in process and the binary stays a thin command line.

pub mod alerts;
pub mod config;
pub mod copy;
pub mod erasure;
pub mod error;
pub mod export;
pub mod forecast;
pub mod http;
pub mod identity;
pub mod metrics;
pub mod month;
pub mod pricing;
pub mod reconcile;
pub mod retention;
pub mod savings;
pub mod serve;
pub mod store;
pub mod ticket;
pub mod tokens;
pub mod twilio;
pub mod wire;

pub use http::{app, AppState, Origins};
