//! The identity Twilio bills is `grants.identity` inside the access token (a JWT). It is
//! readable the moment the token exists, long before the client's `user.identity` is filled.
//! The token is a credential: this module reads it and keeps nothing of it but the identity.

use alloc::string::String;

use crate::core::error::Error;
use crate::core::json::JsonView;

/// `Ok(Some(identity))` for a token that names one, `Ok(None)` for a well-formed token
/// without `grants.identity` (opaque to us), `Err` for something that is not a JWT.
pub fn identity_from_token<J: JsonView>(token: &str) -> Result<Option<String>, Error> {
    // `['.']`, not `'.'`: the char searcher slices a buffer, and its panic path links
    // `core::fmt` into the wasm (docs/size.md).
    let mut parts = token.trim().split(['.']);
    let (Some(_header), Some(payload), Some(_sig), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(Error::Token(
            "not a JWT (expected three dot-separated parts)",
        ));
    };
    let bytes = J::base64url(payload).ok_or(Error::Token("payload is not base64url"))?;
    let text = String::from_utf8(bytes).map_err(|_| Error::Token("payload is not UTF-8"))?;
    let payload = J::parse(&text)
        .filter(JsonView::is_object)
        .ok_or(Error::Token("payload is not a JSON object"))?;
    let Some(identity) = payload.field("grants").and_then(|g| g.field("identity")) else {
        return Ok(None);
    };
    match identity.string() {
        Some(id) => Ok(Some(id).filter(|id| !id.is_empty())),
        None => Err(Error::Token("grants.identity is not a string")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;

    fn identity_from_token(token: &str) -> Result<Option<String>, Error> {
        super::identity_from_token::<serde_json::Value>(token)
    }

    fn jwt(payload: &str) -> String {
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        format!(
            "{}.{}.c2ln",
            b64.encode(r#"{"alg":"HS256","typ":"JWT","cty":"twilio-fpa;v=1"}"#),
            b64.encode(payload)
        )
    }

    #[test]
    fn reads_grants_identity() {
        let t = jwt(
            r#"{"jti":"SK1-1","iss":"SK1","sub":"AC1","exp":9,"grants":{"identity":"alice@example.com","chat":{"service_sid":"IS1"}}}"#,
        );
        assert_eq!(
            identity_from_token(&t),
            Ok(Some("alice@example.com".into()))
        );
    }

    #[test]
    fn unicode_and_url_safe_alphabet() {
        // "ü?>" produces '-' and '_' in base64url.
        let t = jwt(r#"{"grants":{"identity":"jürgen ü?>"}}"#);
        assert_eq!(identity_from_token(&t), Ok(Some("jürgen ü?>".into())));
    }

    #[test]
    fn padded_payload_is_accepted() {
        let pad = base64::engine::general_purpose::URL_SAFE;
        let t = format!("e30.{}.sig", pad.encode(r#"{"grants":{"identity":"bo"}}"#));
        assert!(t.contains('='));
        assert_eq!(identity_from_token(&t), Ok(Some("bo".into())));
    }

    #[test]
    fn no_identity_is_none_not_error() {
        assert_eq!(identity_from_token(&jwt(r#"{"grants":{}}"#)), Ok(None));
        assert_eq!(identity_from_token(&jwt(r#"{"sub":"AC1"}"#)), Ok(None));
        assert_eq!(
            identity_from_token(&jwt(r#"{"grants":{"identity":""}}"#)),
            Ok(None)
        );
    }

    #[test]
    fn malformed_tokens_are_errors() {
        for bad in [
            "",
            "opaque-token",
            "a.b",
            "a.b.c.d",
            "e30.***.sig",
            "e30..sig",
        ] {
            assert!(identity_from_token(bad).is_err(), "{bad:?}");
        }
        // Valid base64 but not JSON / not an object / wrong type.
        assert!(identity_from_token(&jwt("not json")).is_err());
        assert!(identity_from_token(&jwt("[1,2]")).is_err());
        assert!(identity_from_token(&jwt(r#"{"grants":{"identity":42}}"#)).is_err());
    }
}
