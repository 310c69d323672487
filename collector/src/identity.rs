//! Identity hygiene: the characters an identity may not hold, and the look-alike key the
//! report groups identities by.
//!
//! Identities are stored exactly as sent (Twilio bills them case-sensitively), so nothing
//! is folded on the way in; invisible and direction-changing characters are refused,
//! since no real identity needs them and they make two users look like one.

use caseless::Caseless;
use icu_properties::props::{DefaultIgnorableCodePoint, GeneralCategory};
use icu_properties::{
    CodePointMapData, CodePointMapDataBorrowed, CodePointSetData, CodePointSetDataBorrowed,
};
use std::collections::BTreeMap;
use unicode_normalization::UnicodeNormalization;
use unicode_security::confusable_detection::skeleton;

/// Why an identity is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("identity is empty or only whitespace")]
    Blank,
    #[error("identity contains U+{code:04X} ({what})", code = *.0 as u32, what = .1)]
    Character(char, &'static str),
}

impl Refusal {
    /// The stable code of the HTTP error.
    pub fn code(&self) -> &'static str {
        match self {
            Refusal::Blank => "bad_identity",
            Refusal::Character(..) => "identity_character",
        }
    }
}

/// Refuses an identity that is empty or only whitespace, or that holds a character a
/// reader cannot see or that reorders the text: controls, format characters (general
/// category Cf: BiDi controls, zero-width characters, invisible operators, tags) and
/// Default_Ignorable_Code_Point (fillers, variation selectors, the combining grapheme
/// joiner). The zero-width joiner is refused too, on purpose: it joins emoji sequences,
/// which no sign-in identity needs, and renders as nothing between letters.
pub fn check(identity: &str) -> Result<(), Refusal> {
    if identity.trim().is_empty() {
        return Err(Refusal::Blank);
    }
    match identity.chars().find_map(|c| forbidden(c).map(|w| (c, w))) {
        Some((c, what)) => Err(Refusal::Character(c, what)),
        None => Ok(()),
    }
}

fn forbidden(c: char) -> Option<&'static str> {
    const GC: CodePointMapDataBorrowed<'static, GeneralCategory> =
        CodePointMapData::<GeneralCategory>::new();
    const IGNORABLE: CodePointSetDataBorrowed<'static> =
        CodePointSetData::new::<DefaultIgnorableCodePoint>();
    match c {
        _ if c.is_control() => Some("a control character"),
        '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' => Some("a BiDi override or isolate"),
        '\u{200E}' | '\u{200F}' | '\u{061C}' => Some("a BiDi mark"),
        '\u{200D}' => Some("a zero-width joiner"),
        _ if GC.get(c) == GeneralCategory::Format => Some("an invisible format character"),
        _ if IGNORABLE.contains(c) => Some("a default-ignorable character"),
        _ => None,
    }
}

/// What two identities a person would read as the same share: surrounding whitespace
/// dropped, then Unicode's compatibility caseless form (NFKD of case-folded NFKD, D146),
/// then its UTS #39 confusable skeleton, so letters of other scripts that look alike
/// (Cyrillic `а` for Latin `a`) group too.
pub fn lookalike_key(identity: &str) -> String {
    let caseless: String = identity
        .trim()
        .chars()
        .nfd()
        .default_case_fold()
        .nfkd()
        .default_case_fold()
        .nfkd()
        .collect();
    skeleton(&caseless).collect()
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
            // Beyond a hand-made list: invisible operators, the combining grapheme joiner,
            // Hangul fillers, variation selectors, tags, interlinear annotations, the ZWJ.
            ("a\u{2061}b", "identity_character"),
            ("a\u{2064}b", "identity_character"),
            ("a\u{034F}b", "identity_character"),
            ("\u{115F}alice", "identity_character"),
            ("alice\u{1160}", "identity_character"),
            ("al\u{3164}ice", "identity_character"),
            ("al\u{FFA0}ice", "identity_character"),
            ("alice\u{FE0F}", "identity_character"),
            ("alice\u{E0041}", "identity_character"),
            ("alice\u{E007F}", "identity_character"),
            ("a\u{FFF9}b", "identity_character"),
            ("a\u{FFFB}b", "identity_character"),
            ("a\u{00AD}b", "identity_character"),
            ("a\u{200D}b", "identity_character"),
        ] {
            assert_eq!(check(id).map_err(|r| r.code()), Err(code), "{id:?}");
        }
        let r = check("a\u{202E}b").unwrap_err();
        assert_eq!(
            r.to_string(),
            "identity contains U+202E (a BiDi override or isolate)"
        );
        assert_eq!(
            check("a\u{3164}").unwrap_err().to_string(),
            "identity contains U+3164 (a default-ignorable character)"
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
    fn lookalikes_fold_case_width_spaces_and_confusables() {
        let groups = lookalikes([
            "alice",
            "Alice",
            "ALICE ",
            "ａｌｉｃｅ", // fullwidth
            "bob",
            "Straße",
            "STRASSE",
            "аlice", // Cyrillic а: another script, the same skeleton
            "alice",
            "раураl", // all Cyrillic but the l
            "paypal",
            "Zoë",
        ]);
        assert_eq!(
            groups,
            vec![
                vec!["ALICE ", "Alice", "alice", "аlice", "ａｌｉｃｅ"],
                vec!["STRASSE", "Straße"],
                vec!["paypal", "раураl"],
            ]
        );
        assert!(lookalikes(["a", "b"]).is_empty());
    }
}
