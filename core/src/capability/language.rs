//! Languages as ISO 639-1 codes, the one form every capability that takes a
//! language uses (`translate.text`, `dictionary.define`, `news.search`, …).
//!
//! Callers may write `"en"`, `"EN"`, `"en-US"`, `"zh_Hans"`, `"eng"`, `"ger"`
//! or `"German"`; all become the two-letter code. Providers spell languages
//! in their own way (DeepL `DE`, GDELT `sourcelang:german`, MyMemory
//! `zh-CN`) and map from this code.
//!
//! ```
//! use polyrelay::capability::language::Language;
//! assert_eq!(Language::parse("lang", "pt-BR").unwrap().code(), "pt");
//! assert_eq!(Language::parse("lang", "ger").unwrap().code(), "de");
//! assert_eq!(Language::parse("lang", "french").unwrap().name(), Some("French"));
//! assert!(Language::parse("lang", "Klingonese").is_err());
//! ```

use serde::{Deserialize, Serialize};

use crate::echo::echo;
use crate::error::{Error, Result};

/// A language by its ISO 639-1 code, lower case (`de`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Language(String);

/// Languages known by name and three-letter code: ISO 639-1, ISO 639-2/T,
/// ISO 639-2/B (where it differs), English name.
const KNOWN: &[(&str, &str, &str, &str)] = &[
    ("af", "afr", "afr", "Afrikaans"),
    ("ar", "ara", "ara", "Arabic"),
    ("bg", "bul", "bul", "Bulgarian"),
    ("bn", "ben", "ben", "Bengali"),
    ("ca", "cat", "cat", "Catalan"),
    ("cs", "ces", "cze", "Czech"),
    ("cy", "cym", "wel", "Welsh"),
    ("da", "dan", "dan", "Danish"),
    ("de", "deu", "ger", "German"),
    ("el", "ell", "gre", "Greek"),
    ("en", "eng", "eng", "English"),
    ("eo", "epo", "epo", "Esperanto"),
    ("es", "spa", "spa", "Spanish"),
    ("et", "est", "est", "Estonian"),
    ("eu", "eus", "baq", "Basque"),
    ("fa", "fas", "per", "Persian"),
    ("fi", "fin", "fin", "Finnish"),
    ("fr", "fra", "fre", "French"),
    ("ga", "gle", "gle", "Irish"),
    ("gl", "glg", "glg", "Galician"),
    ("he", "heb", "heb", "Hebrew"),
    ("hi", "hin", "hin", "Hindi"),
    ("hr", "hrv", "hrv", "Croatian"),
    ("hu", "hun", "hun", "Hungarian"),
    ("id", "ind", "ind", "Indonesian"),
    ("is", "isl", "ice", "Icelandic"),
    ("it", "ita", "ita", "Italian"),
    ("ja", "jpn", "jpn", "Japanese"),
    ("ko", "kor", "kor", "Korean"),
    ("la", "lat", "lat", "Latin"),
    ("lt", "lit", "lit", "Lithuanian"),
    ("lv", "lav", "lav", "Latvian"),
    ("ms", "msa", "may", "Malay"),
    ("nb", "nob", "nob", "Norwegian Bokmål"),
    ("nl", "nld", "dut", "Dutch"),
    ("no", "nor", "nor", "Norwegian"),
    ("pl", "pol", "pol", "Polish"),
    ("pt", "por", "por", "Portuguese"),
    ("ro", "ron", "rum", "Romanian"),
    ("ru", "rus", "rus", "Russian"),
    ("sk", "slk", "slo", "Slovak"),
    ("sl", "slv", "slv", "Slovenian"),
    ("sq", "sqi", "alb", "Albanian"),
    ("sr", "srp", "srp", "Serbian"),
    ("sv", "swe", "swe", "Swedish"),
    ("sw", "swa", "swa", "Swahili"),
    ("ta", "tam", "tam", "Tamil"),
    ("th", "tha", "tha", "Thai"),
    ("tl", "tgl", "tgl", "Tagalog"),
    ("tr", "tur", "tur", "Turkish"),
    ("uk", "ukr", "ukr", "Ukrainian"),
    ("ur", "urd", "urd", "Urdu"),
    ("vi", "vie", "vie", "Vietnamese"),
    ("zh", "zho", "chi", "Chinese"),
];

impl Language {
    /// English, the default where a capability needs some language.
    pub fn english() -> Self {
        Self("en".to_string())
    }

    /// Validates a language written as an ISO 639-1 code, a BCP 47 tag
    /// (the region or script is dropped), an ISO 639-2 code or an English
    /// name; `field` names the parameter in the error.
    pub fn parse(field: &str, text: &str) -> Result<Self> {
        let text = text.trim();
        let primary = text.split(['-', '_']).next().unwrap_or(text);
        let by_code = match primary.len() {
            2 if primary.chars().all(|c| c.is_ascii_alphabetic()) => {
                Some(primary.to_ascii_lowercase())
            }
            3 => KNOWN
                .iter()
                .find(|(_, t, b, _)| {
                    t.eq_ignore_ascii_case(primary) || b.eq_ignore_ascii_case(primary)
                })
                .map(|(code, ..)| code.to_string()),
            _ => None,
        };
        by_code
            .or_else(|| {
                KNOWN
                    .iter()
                    .find(|(.., name)| name.eq_ignore_ascii_case(text))
                    .map(|(code, ..)| code.to_string())
            })
            .map(Self)
            .ok_or_else(|| {
                Error::invalid(
                    field,
                    format!(
                        "must be an ISO 639-1 language code such as \"en\" or \"de\", got {}",
                        echo(text)
                    ),
                )
            })
    }

    /// The two-letter code, lower case.
    pub fn code(&self) -> &str {
        &self.0
    }

    /// The English name, for the languages polyrelay knows by name.
    pub fn name(&self) -> Option<&'static str> {
        KNOWN
            .iter()
            .find(|(code, ..)| *code == self.0)
            .map(|(.., name)| *name)
    }

    /// Whether this is English.
    pub fn is_english(&self) -> bool {
        self.0 == "en"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(text: &str) -> String {
        Language::parse("lang", text).unwrap().code().to_string()
    }

    #[test]
    fn every_spelling_becomes_the_two_letter_code() {
        assert_eq!(code("en"), "en");
        assert_eq!(code(" DE "), "de");
        assert_eq!(code("en-US"), "en");
        assert_eq!(code("zh_Hans"), "zh");
        assert_eq!(code("deu"), "de");
        assert_eq!(code("ger"), "de");
        assert_eq!(code("FRE"), "fr");
        assert_eq!(code("Spanish"), "es");
        assert_eq!(code("norwegian bokmål"), "nb");
        // An unlisted but well-formed ISO 639-1 code passes through.
        assert_eq!(code("yo"), "yo");
    }

    #[test]
    fn garbage_is_rejected_naming_the_field() {
        for bad in ["", "e", "xyz", "english please", "1a", "Klingonese"] {
            match Language::parse("target_lang", bad) {
                Err(Error::InvalidRequest { field, .. }) => assert_eq!(field, "target_lang"),
                other => panic!("{bad:?}: {other:?}"),
            }
        }
    }

    #[test]
    fn the_table_is_sorted_and_well_formed() {
        for pair in KNOWN.windows(2) {
            assert!(pair[0].0 < pair[1].0, "{} before {}", pair[0].0, pair[1].0);
        }
        for (code, t, b, name) in KNOWN {
            assert!(code.len() == 2 && t.len() == 3 && b.len() == 3 && !name.is_empty());
        }
    }

    #[test]
    fn names_are_known_for_the_table() {
        assert_eq!(Language::parse("l", "ja").unwrap().name(), Some("Japanese"));
        assert_eq!(Language::parse("l", "yo").unwrap().name(), None);
        assert!(Language::english().is_english());
    }
}
