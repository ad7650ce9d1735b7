//! `dictionary.define`: the meanings of a word.
//!
//! A provider's several entries for one word (homographs) are merged into
//! one [`DictionaryEntry`] whose senses keep the provider's order. Parts of
//! speech are lower case (`noun`); definitions and examples are plain text.

use serde::{Deserialize, Serialize};

use super::language::Language;
use super::params::Params;
use super::query;
use super::schema::{Alternatives, Param, ParamDefault, ParamKind, ParamTable};
use crate::echo::echo;
use crate::error::{Error, FailureClass, ProviderFailure, Result};

/// Request of `dictionary.define`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct DefineQuery {
    /// The word, as asked (trimmed).
    pub word: String,
    /// The word's language (default English).
    pub language: Language,
}

impl DefineQuery {
    /// The parameters: `word` and `language`.
    pub const PARAMS: ParamTable = ParamTable {
        params: &[
            Param::new(
                "word",
                ParamKind::String {
                    max_chars: Some(100),
                },
                "A word or phrase, without / \\ ? #.",
                r#""serendipity""#,
            )
            .required(),
            query::language_param("language", "The word's language.").or(ParamDefault::Text("en")),
        ],
        alternatives: Alternatives::None,
    };

    /// Validates parameters: `word` (at most 100 characters, no `/`) and
    /// optional `language`.
    pub fn from_params(mut params: Params) -> Result<Self> {
        let word = params.str("word")?;
        if word.contains(['/', '\\', '?', '#']) {
            return Err(Error::invalid(
                "word",
                "must be a word or phrase, without / \\ ? #",
            ));
        }
        let language = Language::parse("language", &params.str("language")?)?;
        params.finish()?;
        Ok(Self { word, language })
    }
}

/// One meaning.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sense {
    /// Part of speech, lower case (`noun`).
    pub part_of_speech: String,
    /// The definition.
    pub definition: String,
    /// An example of use.
    pub example: Option<String>,
    /// Synonyms.
    pub synonyms: Vec<String>,
    /// Antonyms.
    pub antonyms: Vec<String>,
}

/// Answer of `dictionary.define`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DictionaryEntry {
    /// The word as the dictionary spells it.
    pub word: String,
    /// ISO 639-1 code of the word's language.
    pub language: String,
    /// Pronunciation (IPA), when known.
    pub phonetic: Option<String>,
    /// A recording of the pronunciation.
    pub audio_url: Option<String>,
    /// The meanings, in the dictionary's order.
    pub senses: Vec<Sense>,
    /// The dictionary page.
    pub source_url: Option<String>,
}

impl DictionaryEntry {
    /// Fails with `NotFound` when there is no sense, so the next provider
    /// gets a chance.
    pub fn found(self) -> std::result::Result<Self, ProviderFailure> {
        if self.senses.is_empty() {
            Err(ProviderFailure::new(
                FailureClass::NotFound,
                format!("no definition of {}", echo(&self.word)),
            ))
        } else {
            Ok(self)
        }
    }
}
