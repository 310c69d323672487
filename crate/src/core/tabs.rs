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

/// Key prefix of the storage claims, and of the count locks' claims.
const CLAIM: &str = "mau-beacon:claim:";
const COUNT_CLAIM: &str = "mau-beacon:claim:count:";
const DAY_MS: Millis = 86_400_000.0;

/// Storage key of the claim of the lock `name`.
pub fn claim_key(name: &str) -> String {
    let mut key = String::from(CLAIM);
    key.push_str(name.strip_prefix(PREFIX).unwrap_or(name));
    key
}

/// Removes the claims of count locks whose month ended over a day ago. Releasing removes
/// a claim, but a tab that dies holding one leaves its key, one per identity and month in
/// a browser without Web Locks. Nothing newer is touched: a tab's view of storage can lag
/// another tab's write, so removing a lapsed claim of a lock still asked for could remove
/// a claim just made in its place.
pub fn clear_lapsed_claims(store: &mut dyn Store, now: Millis) {
    let over = utc_month(now - DAY_MS);
    for key in store.keys() {
        let month = key.strip_prefix(COUNT_CLAIM).and_then(|rest| rest.get(..7));
        if month.is_some_and(|m| m < over.as_str())
            && claim_holder(store.get(&key).as_deref(), now).is_none()
        {
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
    fn only_claims_of_months_over_for_a_day_are_cleared() {
        use crate::core::outbox::MemoryStore;
        use alloc::vec::Vec;
        const DEC_1: Millis = 1_796_083_200_000.0; // 2026-12-01T00:00:00Z
        let mut store = MemoryStore::default();
        let oct = claim_key(&count_lock("a@x", NOV - 30.0 * DAY_MS));
        let nov = claim_key(&count_lock("b@x", NOV));
        let nov_in_force = claim_key(&count_lock("c@x", NOV));
        for (key, value) in [
            (&oct, claim_value(NOV, "dead tab")),
            (&nov, claim_value(NOV, "dead tab")),
            (&nov_in_force, claim_value(DEC_1 + DAY_MS + 2.0, "t1")),
        ] {
            let _ = store.set(key, &value);
        }
        let _ = store.set(&claim_key(SEND_LOCK), &claim_value(NOV, "dead tab"));
        let _ = store.set("mau-beacon:v2:counted:2026-10:a@x", "1");
        let sorted = |store: &MemoryStore| {
            let mut keys = store.keys();
            keys.sort();
            keys
        };
        let all = sorted(&store);
        clear_lapsed_claims(&mut store, NOV);
        let mut left: Vec<String> = all.iter().filter(|k| **k != oct).cloned().collect();
        assert_eq!(sorted(&store), left, "October's claim goes, nothing else");
        // November is over, but not for a day yet.
        clear_lapsed_claims(&mut store, DEC_1 + DAY_MS - 1.0);
        assert_eq!(sorted(&store), left);
        // A day after it: November's lapsed claim goes; one still in force stays.
        clear_lapsed_claims(&mut store, DEC_1 + DAY_MS + 1.0);
        left.retain(|k| *k != nov);
        assert_eq!(sorted(&store), left);
    }
}
