//! `translate.text`: one or more texts into a target language.
//!
//! Languages are ISO 639-1 codes ([`Language`]); each provider maps them to
//! its own spelling (DeepL `DE`, MyMemory `en|it`). Without `source_lang`
//! the provider detects it, where it can.

use serde::{Deserialize, Serialize};

use super::language::Language;
use super::params::Params;
use super::query;
use super::schema::{Alternatives, Param, ParamDefault, ParamKind, ParamTable};
use crate::error::{Error, ProviderFailure, Result};

/// Most texts in one request.
const MAX_TEXTS: usize = 50;
/// Most characters in one text.
const MAX_CHARS: usize = 5_000;

/// Request of `translate.text`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct TranslateQuery {
    /// The texts, in order (1 to 50, each at most 5,000 characters).
    pub texts: Vec<String>,
    /// Language to translate into.
    pub target_lang: Language,
    /// Language of the texts; `None` to let the provider detect it.
    pub source_lang: Option<Language>,
}

impl TranslateQuery {
    /// The parameters: `text`, `target_lang`, `source_lang`.
    pub const PARAMS: ParamTable = ParamTable {
        params: &[
            Param::new(
                "text",
                ParamKind::TextList {
                    max_items: MAX_TEXTS as u32,
                    max_chars: Some(MAX_CHARS as u32),
                },
                "The text, or several texts, to translate.",
                r#""Hello""#,
            )
            .required(),
            query::language_param("target_lang", "The language to translate into.").required(),
            query::language_param(
                "source_lang",
                "The language of the text, or auto to detect it.",
            )
            .or(ParamDefault::Text("auto")),
        ],
        alternatives: Alternatives::None,
    };

    /// Validates parameters: `text` (a string or a list of strings),
    /// `target_lang`, and optional `source_lang` (`"auto"` means detect).
    pub fn from_params(mut params: Params) -> Result<Self> {
        let texts = params
            .opt_text_list("text")?
            .ok_or_else(|| params.missing("text"))?;
        if texts.len() > MAX_TEXTS {
            return Err(Error::invalid(
                "text",
                format!("must hold at most {MAX_TEXTS} texts"),
            ));
        }
        if let Some(i) = texts.iter().position(|t| t.chars().count() > MAX_CHARS) {
            let field = if texts.len() == 1 {
                "text".to_string()
            } else {
                format!("text[{i}]")
            };
            return Err(Error::invalid(
                field,
                format!("must be at most {MAX_CHARS} characters"),
            ));
        }
        let target_lang = Language::parse("target_lang", &params.str("target_lang")?)?;
        let source_lang = match params.str("source_lang")? {
            auto if auto.eq_ignore_ascii_case("auto") => None,
            text => Some(Language::parse("source_lang", &text)?),
        };
        params.finish()?;
        Ok(Self {
            texts,
            target_lang,
            source_lang,
        })
    }

    /// The single text of a one-text request, or `Unsupported` for a
    /// provider (`name`) that translates one text per request.
    pub fn single_text(&self, name: &str) -> std::result::Result<&str, ProviderFailure> {
        match self.texts.as_slice() {
            [text] => Ok(text),
            _ => Err(ProviderFailure::unsupported(format!(
                "{name} translates one text per request"
            ))
            .not_sent()),
        }
    }
}

/// One translated text.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Translation {
    /// The translation.
    pub text: String,
    /// ISO 639-1 code of the detected source language, when detected.
    pub detected_source_lang: Option<String>,
    /// How sure the provider is of the detected language, 0 to 1.
    pub confidence: Option<f64>,
}

/// Answer of `translate.text`: one translation per text, in request order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Translations {
    /// The translations.
    pub translations: Vec<Translation>,
    /// ISO 639-1 code of the target language.
    pub target_lang: String,
    /// Characters billed, when the provider reports them.
    pub chars_billed: Option<u64>,
}
