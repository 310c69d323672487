//! One tab at a time across a browser profile: the names of the locks, and the rules of
//! the storage claim used where the browser has no Web Locks.
//!
//! Without Web Locks a tab claims a lock by writing `<expiry>:<token>` under the lock's
//! key, waits long enough for every tab's write to reach every tab's storage, and reads
//! it back: the last write wins, and every tab reads the same one. A claim in force that
//! another tab wrote first is a lock held; an expired one (its tab died holding it) is
//! nothing.

use alloc::string::String;

use crate::core::clock::{ms_text, parse_ms, utc_month, Millis};
use crate::core::outbox::{Store, PREFIX};

/// The lock for counting `identity` in the UTC month of `at`: whoever holds it checks and
/// sets the month mark, so two tabs connecting at once send one beacon.
pub fn count_lock(identity: &str, at: Millis) -> String {
    let mut name = String::from(PREFIX);
    for part in ["count:", &utc_month(at), ":", identity] {
        name.push_str(part);
    }
    name
}

/// The lock for a delivery pass: stored beacons are sent by one tab at a time.
pub const SEND_LOCK: &str = "mau-beacon:send";

/// Key prefix of the storage claims.
const CLAIM: &str = "mau-beacon:claim:";

/// Storage key of the claim of the lock `name`.
pub fn claim_key(name: &str) -> String {
    let mut key = String::from(CLAIM);
    key.push_str(name.strip_prefix(PREFIX).unwrap_or(name));
    key
}

/// Removes the claims no longer in force. A tab that dies holding one leaves its key
/// (releasing removes it), and count locks are per identity and month, so such keys
/// would pile up in a browser without Web Locks.
pub fn clear_lapsed_claims(store: &mut dyn Store, now: Millis) {
    for key in store.keys() {
        if key.starts_with(CLAIM) && claim_holder(store.get(&key).as_deref(), now).is_none() {
            store.remove(&key);
        }
    }
}

/// A claim by `token` in force until `expires`.
pub fn claim_value(expires: Millis, token: &str) -> String {
    let mut value = ms_text(expires);
    value.push(':');
    value.push_str(token);
    value
}

/// The token of the claim `value` if it is still in force at `now`.
pub fn claim_holder(value: Option<&str>, now: Millis) -> Option<&str> {
    // By byte, not `split_once(':')`: a char pattern links slicing panics into the wasm.
    let value = value?;
    let colon = value.bytes().position(|b| b == b':')?;
    let expires = parse_ms(value.get(..colon)?)?;
    (expires > now).then_some(value.get(colon + 1..)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOV: Millis = 1_795_550_932_123.0;

    #[test]
    fn count_lock_is_per_identity_and_month() {
        assert_eq!(count_lock("a@x", NOV), "mau-beacon:count:2026-11:a@x");
        let dec = NOV + 8.0 * 86_400_000.0;
        assert_ne!(count_lock("a@x", NOV), count_lock("a@x", dec));
        assert_ne!(count_lock("a@x", NOV), count_lock("b@x", NOV));
    }

    #[test]
    fn a_claim_holds_until_it_expires() {
        let value = claim_value(NOV + 5_000.0, "t1");
        assert_eq!(value, "1795550937123:t1");
        assert_eq!(claim_holder(Some(&value), NOV), Some("t1"));
        assert_eq!(claim_holder(Some(&value), NOV + 5_000.0), None, "expired");
        assert_eq!(claim_holder(None, NOV), None);
        assert_eq!(claim_holder(Some("garbage"), NOV), None);
        assert_eq!(claim_holder(Some("x:t1"), NOV), None);
        assert_eq!(claim_key(SEND_LOCK), "mau-beacon:claim:send");
    }

    #[test]
    fn lapsed_claims_are_cleared_and_nothing_else() {
        use crate::core::outbox::MemoryStore;
        let mut store = MemoryStore::default();
        let lapsed = claim_key(&count_lock("a@x", NOV));
        let in_force = claim_key(&count_lock("b@x", NOV));
        let _ = store.set(&lapsed, &claim_value(NOV, "dead tab"));
        let _ = store.set(&in_force, &claim_value(NOV + 1.0, "t2"));
        let _ = store.set("mau-beacon:claim:garbled", "x");
        let _ = store.set("mau-beacon:v2:counted:2026-11:a@x", "1");
        clear_lapsed_claims(&mut store, NOV);
        let mut keys = store.keys();
        keys.sort();
        assert_eq!(
            keys,
            [
                "mau-beacon:claim:count:2026-11:b@x",
                "mau-beacon:v2:counted:2026-11:a@x"
            ]
        );
    }
}
