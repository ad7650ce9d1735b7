//! Parameters shared by the search capabilities (`geo.geocode`,
//! `news.search`, `web.search`, media and medical searches, …): the query
//! text, the number of results and the language, declared and read the same
//! way everywhere.

use super::language::Language;
use super::params::Params;
use super::schema::{Param, ParamDefault, ParamKind};
use crate::error::Result;

/// The search text `query`, at most `max_chars` characters.
pub(crate) const fn text(
    max_chars: u32,
    description: &'static str,
    example: &'static str,
) -> Param {
    Param::new(
        "query",
        ParamKind::String {
            max_chars: Some(max_chars),
        },
        description,
        example,
    )
}

/// The result count `limit`, 1 to `max`, `default` when left out.
pub(crate) const fn limit(default: u64, max: u64) -> Param {
    Param::new(
        "limit",
        ParamKind::Integer { min: 1, max },
        "Most results to return.",
        "3",
    )
    .or(ParamDefault::Integer(default))
}

/// An optional language `name`, as [`Language::parse`] reads it.
pub(crate) const fn language_param(name: &'static str, description: &'static str) -> Param {
    Param::new(
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
