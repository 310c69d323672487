//! The Conversations `Client` as mau-beacon sees it, in one place: its TypeScript shape,
//! its connection states, and how its emitter methods, identity and version are read.

use alloc::string::String;

use js_sys::Function;
use wasm_bindgen::prelude::*;

use crate::platform::js;

#[wasm_bindgen(typescript_custom_section)]
const TS: &'static str = r#"
/** The states a Conversations `Client` reports. Only `"connected"` is a confirmed connect. */
export type ConnectionState =
  | "unknown" | "connecting" | "connected" | "disconnecting"
  | "disconnected" | "denied" | "retrying" | "error";

/** What mau-beacon registers with a client: it takes whatever the client passes. */
export type ClientListener = (...args: unknown[]) => void;

/** An emitter with `on`/`off`: the Conversations `Client`, a Node `EventEmitter` (subclass). */
export interface EmitterOnOff {
  on(event: string, listener: ClientListener): unknown;
  off(event: string, listener: ClientListener): unknown;
}

/** An emitter with `addListener`/`removeListener` only. */
export interface EmitterAddListener {
  addListener(event: string, listener: ClientListener): unknown;
  removeListener(event: string, listener: ClientListener): unknown;
}

/** The part of a Conversations `Client` mau-beacon uses: an event emitter with
 * `on`/`off` (or `addListener`/`removeListener`), whatever its listeners' parameter types
 * (the real `Client`'s typed events, a Node `EventEmitter` subclass's untyped ones); an object
 * without emitter methods is not one. */
export type ConversationsClientLike = (EmitterOnOff | EmitterAddListener) & {
  readonly connectionState?: string;
  readonly user?: { readonly identity?: string };
  readonly version?: string;
  updateToken?(token: string): unknown;
  shutdown?(): unknown;
};
"#;

/// `client.connectionState` and the `connectionStateChanged` argument.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectionState {
    /// The only confirmed connect: what Twilio bills.
    Connected,
    /// Leaving; after a token expiry the real client stays here ~3 s.
    Disconnecting,
    /// Gone; a client cut off before `initialized` never comes back by itself.
    Disconnected,
    /// Terminal: the real client does not retry a denied token.
    Denied,
    /// `unknown`, `connecting`, `retrying`, `error`, or anything newer.
    Other,
}

impl ConnectionState {
    /// Reads a state value; anything not a known string is `Other`.
    pub fn of(value: &JsValue) -> ConnectionState {
        match value.as_string().as_deref() {
            Some("connected") => ConnectionState::Connected,
            Some("disconnecting") => ConnectionState::Disconnecting,
            Some("disconnected") => ConnectionState::Disconnected,
            Some("denied") => ConnectionState::Denied,
            _ => ConnectionState::Other,
        }
    }

    /// `client.connectionState` now.
    pub fn now(client: &JsValue) -> ConnectionState {
        ConnectionState::of(&js::get(client, "connectionState"))
    }
}

/// `on`/`off`, else `addListener`/`removeListener`.
pub fn methods(target: &JsValue) -> Option<(Function, Function)> {
    match (js::method(target, "on"), js::method(target, "off")) {
        (Some(on), Some(off)) => Some((on, off)),
        _ => Some((
            js::method(target, "addListener")?,
            js::method(target, "removeListener")?,
        )),
    }
}

/// Whether `value` can be watched: an object with emitter methods.
pub fn is_client(value: &JsValue) -> bool {
    value.is_object() && methods(value).is_some()
}

fn non_empty(s: Option<String>) -> Option<String> {
    s.filter(|s| !s.is_empty())
}

/// `client.user.identity`, filled once the client is `initialized`.
pub fn identity(client: &JsValue) -> Option<String> {
    non_empty(js::get(&js::get(client, "user"), "identity").as_string())
}

/// `client.version`, else the class's static `version` (the real `Client` has that).
pub fn version(client: &JsValue) -> Option<String> {
    non_empty(js::get(client, "version").as_string())
        .or_else(|| non_empty(js::get(&js::get(client, "constructor"), "version").as_string()))
}
