//! Reading JSON without shipping a JSON parser: in the browser the text goes through
//! `JSON.parse` (`platform::json`); natively (tests) through `serde_json`. What is read,
//! and how it is validated, is the same pure code for both (docs/size.md says why: serde
//! deserialization was the largest single cost of the wasm module).

use alloc::{string::String, vec::Vec};

/// A parsed JSON value, read field by field.
pub trait JsonView: Sized {
    /// Parses `text`; `None` when it is not JSON.
    fn parse(text: &str) -> Option<Self>;
    /// `self[key]` when `self` is an object that has it.
    fn field(&self, key: &str) -> Option<Self>;
    /// The value if it is a string.
    fn string(&self) -> Option<String>;
    /// The value if it is a whole number that fits a `u32`.
    fn u32(&self) -> Option<u32>;
    /// The value if it is a number.
    fn number(&self) -> Option<f64>;
    /// Whether the value is a JSON object (not an array, not null).
    fn is_object(&self) -> bool;
    /// Decodes base64url (with or without `=` padding, as JWT libraries differ): the
    /// browser's `atob` in the wasm, no decoder of our own (docs/size.md).
    fn base64url(text: &str) -> Option<Vec<u8>>;
}

#[cfg(test)]
impl JsonView for serde_json::Value {
    fn parse(text: &str) -> Option<Self> {
        serde_json::from_str(text).ok()
    }
    fn field(&self, key: &str) -> Option<Self> {
        self.as_object()?.get(key).cloned()
    }
    fn string(&self) -> Option<String> {
        self.as_str().map(alloc::borrow::ToOwned::to_owned)
    }
    fn u32(&self) -> Option<u32> {
        self.as_u64().and_then(|n| u32::try_from(n).ok())
    }
    fn number(&self) -> Option<f64> {
        self.as_f64()
    }
    fn is_object(&self) -> bool {
        self.is_object()
    }
    fn base64url(text: &str) -> Option<Vec<u8>> {
        use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
        use base64::engine::DecodePaddingMode;
        use base64::{alphabet, Engine};
        const B64URL: GeneralPurpose = GeneralPurpose::new(
            &alphabet::URL_SAFE,
            GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
        );
        B64URL.decode(text).ok()
    }
}
