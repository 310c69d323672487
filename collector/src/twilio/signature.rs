//! `X-Twilio-Signature`, checked the way Twilio's own helper libraries check it
//! (twilio-python `request_validator.py`, twilio-node `webhooks.ts`):
//! base64(HMAC-SHA1(auth token, URL + each parameter name + value, names sorted, a name's
//! values sorted, duplicates once)). JSON bodies (Event Streams) put `bodySHA256` in the
//! URL's query: the signature covers the URL alone and the body must hash to that value.
//! Both libraries accept the URL with and without its port (`:443`/`:80` added when
//! missing, any port removed), since Twilio signs either form.

use base64::Engine;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Digest;
use subtle::ConstantTimeEq;

/// The signature Twilio sends for `url` and form `params`.
pub fn expected(auth_token: &str, url: &str, params: &[(String, String)]) -> String {
    let mut sorted: Vec<(&str, &str)> = params
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    sorted.sort_unstable();
    sorted.dedup();
    let mut mac = Hmac::<sha1::Sha1>::new_from_slice(auth_token.as_bytes())
        .expect("HMAC takes any key length");
    mac.update(url.as_bytes());
    for (k, v) in sorted {
        mac.update(k.as_bytes());
        mac.update(v.as_bytes());
    }
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// A form (or query-string) request: valid if the URL with or without its port matches.
pub fn validate(auth_token: &str, signature: &str, url: &str, params: &[(String, String)]) -> bool {
    let sig = signature.as_bytes();
    // Both variants are always computed, so timing does not tell which one matched.
    let a = expected(auth_token, &without_port(url), params)
        .as_bytes()
        .ct_eq(sig);
    let b = expected(auth_token, &with_port(url), params)
        .as_bytes()
        .ct_eq(sig);
    (a | b).into()
}

/// A JSON request: the URL carries `bodySHA256`, which must equal hex(SHA-256(body)),
/// and the signature covers the URL with no parameters.
pub fn validate_with_body(auth_token: &str, signature: &str, url: &str, body: &[u8]) -> bool {
    let Some(claimed) = query_param(url, "bodySHA256") else {
        return false;
    };
    let actual = hex(&sha2::Sha256::digest(body));
    let body_ok: bool = actual.as_bytes().ct_eq(claimed.as_bytes()).into();
    validate(auth_token, signature, url, &[]) & body_ok
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn query_param(url: &str, name: &str) -> Option<String> {
    let query = url.split_once('?')?.1.split('#').next()?;
    form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// `scheme://[user@]host[:port]` and the rest, split as the libraries' URL parsers do.
struct Parts<'a> {
    prefix: &'a str,
    host: &'a str,
    port: Option<&'a str>,
    rest: &'a str,
    https: bool,
}

fn parts(url: &str) -> Option<Parts<'_>> {
    let scheme_end = url.find("://")? + 3;
    let after = &url[scheme_end..];
    let auth_len = after.find(['/', '?', '#']).unwrap_or(after.len());
    let authority = &after[..auth_len];
    let host_start = authority.rfind('@').map_or(0, |i| i + 1);
    let hostport = &authority[host_start..];
    let (host, port) = match hostport.rsplit_once(':') {
        Some((h, p)) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => (h, Some(p)),
        _ => (hostport, None),
    };
    Some(Parts {
        prefix: &url[..scheme_end + host_start],
        host,
        port,
        rest: &after[auth_len..],
        https: url[..scheme_end].eq_ignore_ascii_case("https://"),
    })
}

fn without_port(url: &str) -> String {
    match parts(url) {
        Some(p) => format!("{}{}{}", p.prefix, p.host, p.rest),
        None => url.to_owned(),
    }
}

fn with_port(url: &str) -> String {
    match parts(url) {
        Some(p) if p.port.is_none() => {
            let port = if p.https { 443 } else { 80 };
            format!("{}{}:{port}{}", p.prefix, p.host, p.rest)
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    //! The vectors are Twilio's, copied from its helper libraries' test suites:
    //! twilio-python `tests/unit/test_request_validator.py` and twilio-node
    //! `spec/validation.spec.js` (token "12345", the same URL and parameters in both).
    use super::*;

    const TOKEN: &str = "12345";
    const URL: &str = "https://mycompany.com/myapp.php?foo=1&bar=2";
    const BODY: &str = r#"{"property": "value", "boolean": true}"#;
    const BODY_HASH: &str = "0a1ff7634d9ab3b95db5c9a2dfe9416e41502b283a80c7cf19632632f96e6620";

    fn params() -> Vec<(String, String)> {
        [
            ("CallSid", "CA1234567890ABCDE"),
            ("Caller", "+14158675309"),
            ("Digits", "1234"),
            ("From", "+14158675309"),
            ("To", "+18005551212"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    }

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn form_params() {
        // python test_compute_signature / node "should succeed with the correct signature"
        assert_eq!(
            expected(TOKEN, URL, &params()),
            "RSOYDt4T1cUTdK1PDd93/VVr8B8="
        );
        assert!(validate(
            TOKEN,
            "RSOYDt4T1cUTdK1PDd93/VVr8B8=",
            URL,
            &params()
        ));
        // node "should fail when given the wrong signature"
        assert!(!validate(TOKEN, "WRONG_SIGNATURE", URL, &params()));
        assert!(!validate(TOKEN, "", URL, &params()));
        assert!(!validate(
            "54321",
            "RSOYDt4T1cUTdK1PDd93/VVr8B8=",
            URL,
            &params()
        ));
        let mut tampered = params();
        tampered[2].1 = "9999".into();
        assert!(!validate(
            TOKEN,
            "RSOYDt4T1cUTdK1PDd93/VVr8B8=",
            URL,
            &tampered
        ));
    }

    #[test]
    fn repeated_keys_sorted_and_deduplicated() {
        // python test_compute_signature_duplicate_multi_dict
        let p = pairs(&[
            ("Sid", "CA123"),
            ("SidAccount", "AC123"),
            ("Digits", "5678"),
            ("Digits", "1234"),
            ("Digits", "1234"),
        ]);
        assert_eq!(expected(TOKEN, URL, &p), "IK+Dwps556ElfBT0I3Rgjkr1wJU=");
        // node "should validate request body with an array parameter", both orders
        for order in [
            ["+1325xxxxxxx", "+1415xxxxxxx"],
            ["+1415xxxxxxx", "+1325xxxxxxx"],
        ] {
            let p = pairs(&[
                ("MessagingBinding.Address", order[0]),
                ("MessagingBinding.Address", order[1]),
            ]);
            assert!(validate(TOKEN, "83O6e2vORAoJHUNzJjDWN1jz+BA=", URL, &p));
        }
    }

    #[test]
    fn port_variants() {
        // python test_validation_removes_port_on_https / node "by stripping them"
        let with_1234 = URL.replace(".com", ".com:1234");
        assert!(validate(
            TOKEN,
            "RSOYDt4T1cUTdK1PDd93/VVr8B8=",
            &with_1234,
            &params()
        ));
        // python test_validation_removes_port_on_http / node "http urls with ports"
        let http_1234 = with_1234.replace("https", "http");
        assert!(validate(
            TOKEN,
            "Zmvh+3yNM1Phv2jhDCwEM3q5ebU=",
            &http_1234,
            &params()
        ));
        // python test_validation_adds_port_on_https / node "adding standard port 443"
        assert!(validate(
            TOKEN,
            "kvajT1Ptam85bY51eRf/AJRuM3w=",
            URL,
            &params()
        ));
        // python test_validation_adds_port_on_http / node "adding standard port 80"
        let http = URL.replace("https", "http");
        assert!(validate(
            TOKEN,
            "0ZXoZLH/DfblKGATFgpif+LLRf4=",
            &http,
            &params()
        ));
        // node "urls with credentials", "just username", "credentials by adding port"
        let creds = "https://user:pass@mycompany.com/myapp.php?foo=1&bar=2";
        assert!(validate(
            TOKEN,
            "CukzLTc1tT5dXEDIHm/tKBanW10=",
            creds,
            &params()
        ));
        let user = "https://user@mycompany.com/myapp.php?foo=1&bar=2";
        assert!(validate(
            TOKEN,
            "2YRLlVAflCqxaNicjMpJcSTgzSs=",
            user,
            &params()
        ));
        assert!(validate(
            TOKEN,
            "ZQFR1PTIZXF2MXB8ZnKCvnnA+rI=",
            creds,
            &params()
        ));
        // A signature for another port is not one of the variants.
        assert!(!validate(
            TOKEN,
            "Zmvh+3yNM1Phv2jhDCwEM3q5ebU=",
            &http,
            &params()
        ));
    }

    #[test]
    fn json_body_variant() {
        // python test_compute_hash_unicode / node "should validate post body correctly"
        assert_eq!(hex(&sha2::Sha256::digest(BODY.as_bytes())), BODY_HASH);
        // python test_validation_of_body_succeeds / node "should validate request body when given"
        let url = format!("{URL}&bodySHA256={BODY_HASH}");
        let sig = "a9nBmqA0ju/hNViExpshrM61xv4=";
        assert!(validate_with_body(TOKEN, sig, &url, BODY.as_bytes()));
        // node "should validate request body when empty"
        let empty = "44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a";
        let url_empty = format!("{URL}&bodySHA256={empty}");
        assert!(validate_with_body(
            TOKEN,
            "Ldidvp12m26NI7eqEvxnEpkd9Hc=",
            &url_empty,
            b"{}"
        ));
        // node "should validate request body with only sha param"
        let short = format!("https://mycompany.com/myapp.php?bodySHA256={BODY_HASH}");
        assert!(validate_with_body(
            TOKEN,
            "y77kIzt2vzLz71DgmJGsen2scGs=",
            &short,
            BODY.as_bytes()
        ));
        // A changed body fails even with the right signature; so do a missing hash
        // parameter (node "given body but no bodySHA256 param") and a wrong signature.
        assert!(!validate_with_body(
            TOKEN,
            sig,
            &url,
            b"{\"property\": \"other\"}"
        ));
        assert!(!validate_with_body(
            TOKEN,
            "RSOYDt4T1cUTdK1PDd93/VVr8B8=",
            URL,
            BODY.as_bytes()
        ));
        assert!(!validate_with_body(TOKEN, "WRONG", &url, BODY.as_bytes()));
    }
}
