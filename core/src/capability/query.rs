//! Parameters shared by the text-search capabilities (`geo.geocode`,
//! `news.search`, `web.search`, `dictionary.define`): the query text, the
//! number of results and the language, declared and read the same way
//! everywhere.

use super::language::Language;
use super::params::Params;
use super::schema::{Param, ParamDefault, ParamKind};
use crate::error::Result;

/// The required search text `query`, at most `max_chars` characters.
pub(crate) const fn text(max_chars: u32, example: &'static str) -> Param {
    Param::optional(
        "query",
        ParamKind::String {
            max_chars: Some(max_chars),
        },
        "What to search for.",
        example,
    )
    .required()
}

/// The result count `limit`, 1 to `max`, `default` when left out.
pub(crate) const fn limit(default: u64, max: u64) -> Param {
    Param::optional(
        "limit",
        ParamKind::Integer { min: 1, max },
        "Most results to return.",
        "3",
    )
    .or(ParamDefault::Integer(default))
}

/// An optional language `name`, as [`Language::parse`] reads it.
pub(crate) const fn language_param(name: &'static str, description: &'static str) -> Param {
    Param::optional(
        name,
        ParamKind::String { max_chars: None },
        description,
        r#""de""#,
    )
}

/// Reads the optional language parameter `name`.
pub(crate) fn language(params: &mut Params, name: &str) -> Result<Option<Language>> {
    params
        .opt_str(name)?
        .map(|text| Language::parse(name, &text))
        .transpose()
}
