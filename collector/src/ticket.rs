//! Signed tickets: proof from the team's backend that it gave this identity a session, so
//! a beacon cannot be forged by anyone who merely knows the collector's URL.
//!
//! `v1.<exp>.<sig>`: `exp` is Unix seconds, `sig` is base64url without padding of
//! HMAC-SHA256(secret, "v1." + exp + "." + identity). The signature covers `exp` exactly as
//! written in the ticket.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use time::OffsetDateTime;

/// Shortest secret taken. An empty or short secret makes tickets forgeable, so the
/// collector refuses to start with one rather than check against it.
pub const MIN_SECRET_BYTES: usize = 16;

/// Why a configured secret is refused (the message never repeats the secret).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    #[error("the ticket secret is empty")]
    Empty,
    #[error("the ticket secret has {0} bytes; at least {MIN_SECRET_BYTES} are needed (use a random one, e.g. `openssl rand -base64 32`)")]
    TooShort(usize),
}

/// Checks a secret before the collector uses it.
pub fn check_secret(secret: &str) -> Result<(), SecretError> {
    match secret.len() {
        0 => Err(SecretError::Empty),
        n if n < MIN_SECRET_BYTES => Err(SecretError::TooShort(n)),
        _ => Ok(()),
    }
}

/// Longest ticket taken: `v1.` + 20 digits + `.` + 43 characters, with room to spare.
pub const MAX_TICKET_CHARS: usize = 128;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TicketError {
    #[error("the beacon has no ticket")]
    Missing,
    #[error("the ticket is not v1.<exp>.<sig>")]
    Malformed,
    #[error("the ticket's signature does not match this identity")]
    BadSignature,
    #[error("the ticket had expired when the event happened")]
    Expired,
}

fn mac(secret: &[u8], exp: &str, identity: &str) -> Hmac<Sha256> {
    // HMAC takes a key of any length.
    let mut m = <Hmac<Sha256> as KeyInit>::new_from_slice(secret).expect("any key length");
    m.update(b"v1.");
    m.update(exp.as_bytes());
    m.update(b".");
    m.update(identity.as_bytes());
    m
}

/// Mints a ticket for `identity`, valid until `exp` (Unix seconds): what a backend in Rust
/// runs beside minting the Twilio access token.
pub fn mint(secret: &[u8], identity: &str, exp: u64) -> String {
    let exp = exp.to_string();
    let sig = URL_SAFE_NO_PAD.encode(mac(secret, &exp, identity).finalize().into_bytes());
    format!("v1.{exp}.{sig}")
}

/// Checks a ticket against the beacon's identity and corrected event time; the signature
/// is compared in constant time (`verify_slice`).
pub fn verify(
    secret: &[u8],
    ticket: Option<&str>,
    identity: &str,
    event_at: OffsetDateTime,
) -> Result<(), TicketError> {
    let ticket = ticket.ok_or(TicketError::Missing)?;
    let (exp, sig) = parse(ticket)?;
    mac(secret, exp, identity)
        .verify_slice(&sig)
        .map_err(|_| TicketError::BadSignature)?;
    let exp: i64 = exp.parse().map_err(|_| TicketError::Malformed)?;
    if event_at.unix_timestamp() > exp {
        return Err(TicketError::Expired);
    }
    Ok(())
}

/// Splits `v1.<exp>.<sig>`: `exp` 1 to 19 ASCII digits, `sig` 32 bytes in base64url.
pub fn parse(ticket: &str) -> Result<(&str, Vec<u8>), TicketError> {
    if ticket.len() > MAX_TICKET_CHARS {
        return Err(TicketError::Malformed);
    }
    let rest = ticket.strip_prefix("v1.").ok_or(TicketError::Malformed)?;
    let (exp, sig) = rest.split_once('.').ok_or(TicketError::Malformed)?;
    if exp.is_empty() || exp.len() > 19 || !exp.bytes().all(|b| b.is_ascii_digit()) {
        return Err(TicketError::Malformed);
    }
    let sig = URL_SAFE_NO_PAD
        .decode(sig)
        .map_err(|_| TicketError::Malformed)?;
    if sig.len() != 32 {
        return Err(TicketError::Malformed);
    }
    Ok((exp, sig))
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    const SECRET: &[u8] = b"test-ticket-secret";
    /// Computed independently (Python's hmac module); the Node snippet's test checks it too.
    const KNOWN: &str = "v1.1767225600.GDzdOW0gHjGifB63TF0M7ahPj-3o_O5MbCWGetLIYyk";

    #[test]
    fn mint_matches_the_known_answer() {
        assert_eq!(mint(SECRET, "alice@example.com", 1_767_225_600), KNOWN);
    }

    #[test]
    fn verify_identity_expiry_and_shape() {
        let before = datetime!(2025-12-31 23:59:59 UTC);
        let after = datetime!(2026-01-01 0:00:01 UTC);
        let id = "alice@example.com";
        assert_eq!(verify(SECRET, Some(KNOWN), id, before), Ok(()));
        // Valid up to and including exp.
        assert_eq!(
            verify(SECRET, Some(KNOWN), id, datetime!(2026-01-01 0:00 UTC)),
            Ok(())
        );
        assert_eq!(
            verify(SECRET, Some(KNOWN), id, after),
            Err(TicketError::Expired)
        );
        assert_eq!(
            verify(SECRET, Some(KNOWN), "mallory@example.com", before),
            Err(TicketError::BadSignature)
        );
        assert_eq!(
            verify(b"other", Some(KNOWN), id, before),
            Err(TicketError::BadSignature)
        );
        assert_eq!(verify(SECRET, None, id, before), Err(TicketError::Missing));
        // A later exp under the same signature is not taken.
        let moved = KNOWN.replace("1767225600", "1867225600");
        assert_eq!(
            verify(SECRET, Some(&moved), id, before),
            Err(TicketError::BadSignature)
        );
        for bad in [
            "",
            "v1",
            "v2.1767225600.GDzdOW0gHjGifB63TF0M7ahPj-3o_O5MbCWGetLIYyk",
            "v1..GDzdOW0gHjGifB63TF0M7ahPj-3o_O5MbCWGetLIYyk",
            "v1.-1.GDzdOW0gHjGifB63TF0M7ahPj-3o_O5MbCWGetLIYyk",
            "v1.1767225600.GDzdOW0gHjGifB63TF0M7ahPj-3o_O5MbCWGetLIYy",
            "v1.1767225600.GDzdOW0gHjGifB63TF0M7ahPj+3o/O5MbCWGetLIYyk",
            "v1.1767225600.GDzdOW0gHjGifB63TF0M7ahPj-3o_O5MbCWGetLIYyk=",
            "v1.99999999999999999999.GDzdOW0gHjGifB63TF0M7ahPj-3o_O5MbCWGetLIYyk",
        ] {
            assert_eq!(parse(bad).err(), Some(TicketError::Malformed), "{bad}");
        }
    }

    #[test]
    fn short_secrets_are_refused() {
        assert_eq!(check_secret(""), Err(SecretError::Empty));
        assert_eq!(
            check_secret("fifteen-bytes!!"),
            Err(SecretError::TooShort(15))
        );
        assert_eq!(check_secret("sixteen-bytes!!!"), Ok(()));
    }
}
