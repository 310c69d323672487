//! `JsonView` over the browser's `JSON.parse`: the core reads stored records and token
//! payloads through it without a JSON parser in the wasm.

use alloc::{string::String, vec::Vec};

use wasm_bindgen::prelude::*;

use crate::core::json::JsonView;

#[wasm_bindgen]
extern "C" {
    /// The global `atob`: base64 to a "binary string", one char per byte.
    #[wasm_bindgen(catch, js_name = atob)]
    fn atob(text: &str) -> Result<String, JsValue>;
}

impl JsonView for wasm_bindgen::JsValue {
    fn parse(text: &str) -> Option<Self> {
        js_sys::JSON::parse(text).ok()
    }
    fn field(&self, key: &str) -> Option<Self> {
        if !self.is_object() {
            return None;
        }
        let v = js_sys::Reflect::get(self, &wasm_bindgen::JsValue::from_str(key)).ok()?;
        (!v.is_undefined()).then_some(v)
    }
    fn string(&self) -> Option<String> {
        self.as_string()
    }
    fn u32(&self) -> Option<u32> {
        let n = self.as_f64()?;
        ((0.0..=u32::MAX as f64).contains(&n) && n == f64::from(n as u32)).then_some(n as u32)
    }
    fn number(&self) -> Option<f64> {
        self.as_f64()
    }
    fn base64url(text: &str) -> Option<Vec<u8>> {
        // `atob` takes the standard alphabet, padded; it throws on anything else.
        let mut b64: String = text
            .chars()
            .map(|c| match c {
                '-' => '+',
                '_' => '/',
                '+' | '/' => '*',
                c => c,
            })
            .collect();
        while !b64.len().is_multiple_of(4) {
            b64.push('=');
        }
        atob(&b64)
            .ok()?
            .chars()
            .map(|c| u8::try_from(u32::from(c)).ok())
            .collect()
    }
    fn is_object(&self) -> bool {
        self.is_object() && !js_sys::Array::is_array(self)
    }
}
