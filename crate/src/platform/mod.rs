//! Browser adapters with no business rules: config readers and callbacks, the event
//! emitter and DOM listeners, `localStorage`, `fetch`, page lifecycle hooks, locks across tabs, the month turning, and the
//! shape of the Conversations `Client`.

pub mod cell;
pub mod conversations;
pub mod dom;
pub mod emitter;
pub mod js;
pub mod json;
pub mod local_store;
pub mod month_turn;
pub mod page;
pub mod registry;
pub mod tab_lock;
pub mod transport;
mod types;
