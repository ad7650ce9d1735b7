//! Validation shared by the text-search capabilities (`geo.geocode`,
//! `news.search`, `web.search`): the query text and the number of results,
//! read the same way with the same messages everywhere.

use super::language::Language;
use super::params::Params;
use crate::error::{Error, Result};

/// Reads the required text parameter `name`: trimmed, non-empty, at most
/// `max_chars` characters.
pub(crate) fn required_text(
    params: &mut Params,
    name: &str,
    max_chars: usize,
    example: &str,
) -> Result<String> {
    let text = params
        .opt_str(name)?
        .ok_or_else(|| Error::invalid(name, format!("is required, e.g. {example:?}")))?;
    if text.chars().count() > max_chars {
        return Err(Error::invalid(
            name,
            format!("must be at most {max_chars} characters"),
        ));
    }
    Ok(text)
}

/// Reads the optional result count `name`, 1 to `max` (default `default`).
pub(crate) fn limit(params: &mut Params, name: &str, default: u8, max: u8) -> Result<u8> {
    match params.opt_u64(name)? {
        None => Ok(default),
        Some(n) if (1..=u64::from(max)).contains(&n) => Ok(n as u8),
        Some(n) => Err(Error::invalid(name, format!("must be 1 to {max}, got {n}"))),
    }
}

/// Reads the optional language parameter `name`.
pub(crate) fn language(params: &mut Params, name: &str) -> Result<Option<Language>> {
    params
        .opt_str(name)?
        .map(|text| Language::parse(name, &text))
        .transpose()
}
