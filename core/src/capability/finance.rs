//! `finance.fx_rates`: requests and normalised answers.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use super::params::Params;
use crate::error::{Error, Result};

/// An ISO 4217 currency code, upper case (`EUR`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Currency(String);

impl Currency {
    /// Validates and upper-cases a three-letter code.
    pub fn parse(field: &str, code: &str) -> Result<Self> {
        let code = code.trim();
        if code.len() == 3 && code.chars().all(|c| c.is_ascii_alphabetic()) {
            Ok(Self(code.to_ascii_uppercase()))
        } else {
            Err(Error::invalid(
                field,
                format!("must be a three-letter ISO 4217 code such as EUR, got {code:?}"),
            ))
        }
    }

    /// The upper-case code.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Request of `finance.fx_rates`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct FxQuery {
    /// Base currency (default EUR).
    pub base: Currency,
    /// Quote currencies; empty means every currency the provider has.
    pub symbols: Vec<Currency>,
    /// A past date for historical rates; `None` for the latest.
    pub date: Option<NaiveDate>,
}

impl FxQuery {
    /// Validates parameters: `base`, `symbols` (list or `"EUR,GBP"`), `date`.
    pub fn from_params(mut params: Params) -> Result<Self> {
        let base = match params.opt_str("base")? {
            Some(code) => Currency::parse("base", &code)?,
            None => Currency("EUR".to_string()),
        };
        let mut symbols = Vec::new();
        for (i, code) in params
            .opt_str_list("symbols")?
            .unwrap_or_default()
            .iter()
            .enumerate()
        {
            let currency = Currency::parse(&format!("symbols[{i}]"), code)?;
            if currency != base && !symbols.contains(&currency) {
                symbols.push(currency);
            }
        }
        symbols.sort();
        let date = match params.opt_str("date")? {
            None => None,
            Some(text) if text == "latest" => None,
            Some(text) => Some(NaiveDate::parse_from_str(&text, "%Y-%m-%d").map_err(|_| {
                Error::invalid(
                    "date",
                    format!("must be YYYY-MM-DD or \"latest\", got {text:?}"),
                )
            })?),
        };
        params.finish(&["base", "symbols", "date"])?;
        Ok(Self {
            base,
            symbols,
            date,
        })
    }
}

/// Answer of `finance.fx_rates`: how many units of each quote currency one
/// unit of `base` buys.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FxRates {
    /// Base currency, upper case.
    pub base: String,
    /// Date of the rates, `YYYY-MM-DD`.
    pub date: String,
    /// Quote per one base, upper-case codes.
    pub rates: BTreeMap<String, f64>,
    /// Where the rates come from (e.g. `ECB`), when known.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub source: Option<String>,
}

impl FxRates {
    /// Keeps only the requested symbols (all when none were asked for) and
    /// fails with `NotFound` when a requested one is missing, so every
    /// provider answers the same question.
    pub fn select(
        mut self,
        query: &FxQuery,
    ) -> std::result::Result<Self, crate::error::ProviderFailure> {
        if query.symbols.is_empty() {
            self.rates.remove(query.base.as_str());
            return Ok(self);
        }
        let mut picked = BTreeMap::new();
        for symbol in &query.symbols {
            match self.rates.get(symbol.as_str()) {
                Some(rate) => {
                    picked.insert(symbol.as_str().to_string(), *rate);
                }
                None => {
                    return Err(crate::error::ProviderFailure::new(
                        crate::error::FailureClass::NotFound,
                        format!("no rate for {}", symbol.as_str()),
                    ))
                }
            }
        }
        self.rates = picked;
        Ok(self)
    }
}
