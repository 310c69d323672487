//! Browser adapters with no business rules: config readers and callbacks, the event
//! emitter and DOM listeners, `localStorage`, `fetch`, page lifecycle hooks, and the
//! shape of the Conversations `Client`.

pub mod conversations;
pub mod dom;
pub mod emitter;
pub mod js;
pub mod json;
pub mod local_store;
pub mod page;
pub mod registry;
pub mod transport;
mod types;
