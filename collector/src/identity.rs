//! Identity hygiene: the characters an identity may not hold, and the look-alike key the
//! report groups identities by.
//!
//! Identities are stored exactly as sent (Twilio bills them case-sensitively), so nothing
//! is folded on the way in; invisible and direction-changing characters are refused,
//! since no real identity needs them and they make two users look like one.

use caseless::Caseless;
use std::collections::BTreeMap;
use unicode_normalization::UnicodeNormalization;

/// Why an identity's characters are refused: a stable code and a message for people.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub code: &'static str,
    pub message: String,
}

/// Refuses an identity that is empty or only whitespace, or that holds a control,
/// BiDi embedding/override/isolate/mark, or zero-width character.
pub fn check(identity: &str) -> Result<(), Refusal> {
    if identity.trim().is_empty() {
        return Err(Refusal {
            code: "bad_identity",
            message: "identity is empty or only whitespace".into(),
        });
    }
    if let Some((c, what)) = identity.chars().find_map(|c| forbidden(c).map(|w| (c, w))) {
        return Err(Refusal {
            code: "identity_character",
            message: format!("identity contains U+{:04X} ({what})", c as u32),
        });
    }
    Ok(())
}

fn forbidden(c: char) -> Option<&'static str> {
    match c {
        _ if c.is_control() => Some("a control character"),
        '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' => Some("a BiDi override or isolate"),
        '\u{200E}' | '\u{200F}' | '\u{061C}' => Some("a BiDi mark"),
        '\u{200B}'..='\u{200D}' | '\u{2060}' | '\u{FEFF}' | '\u{180E}' | '\u{00AD}' => {
            Some("a zero-width character")
        }
        _ => None,
    }
}

/// What two identities a person would read as the same share: surrounding whitespace
/// dropped, then Unicode's compatibility caseless form (NFKD of case-folded NFKD, D146).
pub fn lookalike_key(identity: &str) -> String {
    identity
        .trim()
        .chars()
        .nfd()
        .default_case_fold()
        .nfkd()
        .default_case_fold()
        .nfkd()
        .collect()
}

/// Groups of two or more distinct identities with the same look-alike key, each sorted,
/// the groups in order of their first member.
pub fn lookalikes<'a>(identities: impl IntoIterator<Item = &'a str>) -> Vec<Vec<String>> {
    let mut by_key: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for id in identities {
        let group = by_key.entry(lookalike_key(id)).or_default();
        if !group.iter().any(|g| g == id) {
            group.push(id.to_owned());
        }
    }
    let mut groups: Vec<Vec<String>> = by_key
        .into_values()
        .filter(|g| g.len() > 1)
        .map(|mut g| {
            g.sort();
            g
        })
        .collect();
    groups.sort();
    groups
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_invisible_and_empty() {
        for (id, code) in [
            ("", "bad_identity"),
            ("   \t", "bad_identity"),
            ("\u{3000}", "bad_identity"),
            ("ali\u{7}ce", "identity_character"),
            ("alice\n", "identity_character"),
            ("\u{202E}ecila", "identity_character"),
            ("al\u{2066}ice", "identity_character"),
            ("al\u{200B}ice", "identity_character"),
            ("alice\u{FEFF}", "identity_character"),
            ("al\u{200F}ice", "identity_character"),
        ] {
            assert_eq!(check(id).map_err(|r| r.code), Err(code), "{id:?}");
        }
        let r = check("a\u{202E}b").unwrap_err();
        assert_eq!(
            r.message,
            "identity contains U+202E (a BiDi override or isolate)"
        );
        for ok in [
            "alice",
            "Alice",
            " bob ",
            "Зоя",
            "李雷",
            "x@example.com",
            "+14155550100",
        ] {
            assert_eq!(check(ok), Ok(()), "{ok}");
        }
    }

    #[test]
    fn lookalikes_fold_case_width_and_spaces_only() {
        let groups = lookalikes([
            "alice",
            "Alice",
            "ALICE ",
            "ａｌｉｃｅ", // fullwidth
            "bob",
            "Straße",
            "STRASSE",
            "аlice", // Cyrillic а: another script, not folded together
            "alice",
        ]);
        assert_eq!(
            groups,
            vec![
                vec!["ALICE ", "Alice", "alice", "ａｌｉｃｅ"],
                vec!["STRASSE", "Straße"],
            ]
        );
        assert!(lookalikes(["a", "b"]).is_empty());
    }
}
