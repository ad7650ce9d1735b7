//! `finance.fx_rates` and `finance.quote`: requests and normalised answers.
//!
//! Stock symbols are US-style tickers as Finnhub and Twelve Data spell them
//! (`AAPL`, share classes with a dot: `BRK.B`); [`StockQuery::dashed_symbol`]
//! gives the `BRK-B` form of providers that use a dash.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use super::params::Params;
use super::schema::{Alternatives, Param, ParamDefault, ParamKind, ParamTable};
use crate::echo::echo;
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
                format!(
                    "must be a three-letter ISO 4217 code such as EUR, got {}",
                    echo(code)
                ),
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
    /// The parameters: `base`, `symbols`, `date`.
    pub const PARAMS: ParamTable = ParamTable {
        params: &[
            Param::new(
                "base",
                ParamKind::String { max_chars: None },
                "Base currency, an ISO 4217 code.",
                r#""USD""#,
            )
            .or(ParamDefault::Text("EUR")),
            Param::new(
                "symbols",
                ParamKind::StringList,
                "Quote currencies, ISO 4217 codes; every currency the provider has when left out.",
                r#"["GBP", "JPY"]"#,
            ),
            Param::new(
                "date",
                ParamKind::Date,
                "A past date for historical rates, or latest.",
                r#""2024-01-15""#,
            )
            .or(ParamDefault::Text("latest")),
        ],
        alternatives: Alternatives::None,
    };

    /// Validates parameters: `base`, `symbols` (list or `"EUR,GBP"`), `date`.
    pub fn from_params(mut params: Params) -> Result<Self> {
        let base = Currency::parse("base", &params.str("base")?)?;
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
        let date = match params.str("date")? {
            text if text == "latest" => None,
            text => Some(NaiveDate::parse_from_str(&text, "%Y-%m-%d").map_err(|_| {
                Error::invalid(
                    "date",
                    format!("must be YYYY-MM-DD or \"latest\", got {}", echo(&text)),
                )
            })?),
        };
        params.finish()?;
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

/// Request of `finance.quote`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct StockQuery {
    /// Ticker symbol, upper case (`AAPL`, `BRK.B`).
    pub symbol: String,
}

impl StockQuery {
    /// The parameter: `symbol`.
    pub const PARAMS: ParamTable = ParamTable {
        params: &[Param::new(
            "symbol",
            ParamKind::String {
                max_chars: Some(15),
            },
            "A ticker symbol: letters, digits, ., - and ^ (AAPL, BRK.B).",
            r#""AAPL""#,
        )
        .required()],
        alternatives: Alternatives::None,
    };

    /// Validates parameters: `symbol` (letters, digits, `.`, `-`, `^`; at
    /// most 15 characters).
    pub fn from_params(mut params: Params) -> Result<Self> {
        let symbol = params.str("symbol")?;
        let valid = symbol
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '^'));
        if !valid {
            return Err(Error::invalid(
                "symbol",
                format!(
                    "must be a ticker symbol such as AAPL or BRK.B, got {}",
                    echo(&symbol)
                ),
            ));
        }
        params.finish()?;
        Ok(Self {
            symbol: symbol.to_ascii_uppercase(),
        })
    }

    /// The symbol with a share-class dot as a dash (`BRK.B` → `BRK-B`), as
    /// Financial Modeling Prep spells it. Only a one-letter class A to C
    /// counts; other dotted suffixes are exchanges (`VOD.L`) and stay.
    pub fn dashed_symbol(&self) -> String {
        match self.symbol.rsplit_once('.') {
            Some((root, class)) if matches!(class, "A" | "B" | "C") => format!("{root}-{class}"),
            _ => self.symbol.clone(),
        }
    }
}

/// Answer of `finance.quote`: the latest price of one stock. Fields a
/// provider does not send are `null`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StockQuote {
    /// Ticker symbol as asked.
    pub symbol: String,
    /// Company name.
    pub name: Option<String>,
    /// Exchange (`NASDAQ`).
    pub exchange: Option<String>,
    /// Trading currency, upper case.
    pub currency: Option<String>,
    /// Latest price.
    pub price: f64,
    /// Opening price of the session.
    pub open: Option<f64>,
    /// Session high.
    pub high: Option<f64>,
    /// Session low.
    pub low: Option<f64>,
    /// Previous close.
    pub previous_close: Option<f64>,
    /// Change since the previous close.
    pub change: Option<f64>,
    /// Change since the previous close, %.
    pub change_pct: Option<f64>,
    /// Shares traded in the session.
    pub volume: Option<f64>,
    /// Time of the price, ISO-8601 (a date alone for end-of-day providers).
    pub as_of: String,
    /// Whether the market is open, when the provider says.
    pub market_open: Option<bool>,
}

impl StockQuote {
    /// A quote with only the symbol, price and time; callers fill in the rest.
    pub fn new(symbol: &str, price: f64, as_of: String) -> Self {
        Self {
            symbol: symbol.to_string(),
            name: None,
            exchange: None,
            currency: None,
            price,
            open: None,
            high: None,
            low: None,
            previous_close: None,
            change: None,
            change_pct: None,
            volume: None,
            as_of,
            market_open: None,
        }
    }
}
