//! `crypto.price`: requests, normalised answers and the asset id table.
//!
//! Providers name the same coin differently (`bitcoin` at CoinGecko,
//! `btc-bitcoin` at CoinPaprika, base asset `BTC` of `BTCUSDT` at Binance,
//! `XBT` of `XBTUSD` at Kraken). Requests use the ticker symbol; this table
//! maps it to each provider's id so a fallback answers the same question.

use serde::{Deserialize, Serialize};

use super::params::Params;
use super::schema::{Alternatives, Param, ParamDefault, ParamKind, ParamTable};
use crate::echo::echo;
use crate::error::{Error, Result};

/// A known asset: its symbol and ids at each provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AssetIds {
    /// Ticker symbol, upper case.
    pub symbol: &'static str,
    /// Human name.
    pub name: &'static str,
    /// CoinGecko id.
    pub coingecko: &'static str,
    /// CoinPaprika id.
    pub coinpaprika: &'static str,
    /// Binance base asset (`BTC` in `BTCUSDT`), if Binance lists it.
    pub binance: Option<&'static str>,
    /// Kraken asset code (`XBT` in `XBTUSD`), if Kraken lists it.
    pub kraken: Option<&'static str>,
}

const ASSETS: &[AssetIds] = &[
    AssetIds {
        symbol: "BTC",
        name: "Bitcoin",
        coingecko: "bitcoin",
        coinpaprika: "btc-bitcoin",
        binance: Some("BTC"),
        kraken: Some("XBT"),
    },
    AssetIds {
        symbol: "ETH",
        name: "Ethereum",
        coingecko: "ethereum",
        coinpaprika: "eth-ethereum",
        binance: Some("ETH"),
        kraken: Some("ETH"),
    },
    AssetIds {
        symbol: "USDT",
        name: "Tether",
        coingecko: "tether",
        coinpaprika: "usdt-tether",
        binance: Some("USDT"),
        kraken: Some("USDT"),
    },
    AssetIds {
        symbol: "BNB",
        name: "BNB",
        coingecko: "binancecoin",
        coinpaprika: "bnb-binance-coin",
        binance: Some("BNB"),
        kraken: None,
    },
    AssetIds {
        symbol: "SOL",
        name: "Solana",
        coingecko: "solana",
        coinpaprika: "sol-solana",
        binance: Some("SOL"),
        kraken: Some("SOL"),
    },
    AssetIds {
        symbol: "XRP",
        name: "XRP",
        coingecko: "ripple",
        coinpaprika: "xrp-xrp",
        binance: Some("XRP"),
        kraken: Some("XRP"),
    },
    AssetIds {
        symbol: "USDC",
        name: "USD Coin",
        coingecko: "usd-coin",
        coinpaprika: "usdc-usd-coin",
        binance: Some("USDC"),
        kraken: Some("USDC"),
    },
    AssetIds {
        symbol: "ADA",
        name: "Cardano",
        coingecko: "cardano",
        coinpaprika: "ada-cardano",
        binance: Some("ADA"),
        kraken: Some("ADA"),
    },
    AssetIds {
        symbol: "DOGE",
        name: "Dogecoin",
        coingecko: "dogecoin",
        coinpaprika: "doge-dogecoin",
        binance: Some("DOGE"),
        kraken: Some("XDG"),
    },
    AssetIds {
        symbol: "TRX",
        name: "TRON",
        coingecko: "tron",
        coinpaprika: "trx-tron",
        binance: Some("TRX"),
        kraken: Some("TRX"),
    },
    AssetIds {
        symbol: "DOT",
        name: "Polkadot",
        coingecko: "polkadot",
        coinpaprika: "dot-polkadot",
        binance: Some("DOT"),
        kraken: Some("DOT"),
    },
    AssetIds {
        symbol: "LTC",
        name: "Litecoin",
        coingecko: "litecoin",
        coinpaprika: "ltc-litecoin",
        binance: Some("LTC"),
        kraken: Some("LTC"),
    },
    AssetIds {
        symbol: "LINK",
        name: "Chainlink",
        coingecko: "chainlink",
        coinpaprika: "link-chainlink",
        binance: Some("LINK"),
        kraken: Some("LINK"),
    },
    AssetIds {
        symbol: "AVAX",
        name: "Avalanche",
        coingecko: "avalanche-2",
        coinpaprika: "avax-avalanche",
        binance: Some("AVAX"),
        kraken: Some("AVAX"),
    },
    AssetIds {
        symbol: "XLM",
        name: "Stellar",
        coingecko: "stellar",
        coinpaprika: "xlm-stellar",
        binance: Some("XLM"),
        kraken: Some("XLM"),
    },
    AssetIds {
        symbol: "BCH",
        name: "Bitcoin Cash",
        coingecko: "bitcoin-cash",
        coinpaprika: "bch-bitcoin-cash",
        binance: Some("BCH"),
        kraken: Some("BCH"),
    },
];

/// Looks an asset up by symbol (`BTC`), CoinGecko id (`bitcoin`) or name.
pub fn lookup(asset: &str) -> Option<&'static AssetIds> {
    ASSETS.iter().find(|a| {
        a.symbol.eq_ignore_ascii_case(asset)
            || a.coingecko.eq_ignore_ascii_case(asset)
            || a.name.eq_ignore_ascii_case(asset)
    })
}

/// Request of `crypto.price`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct CryptoQuery {
    /// Assets by symbol (upper case, e.g. `BTC`), resolved through [`lookup`].
    pub assets: Vec<String>,
    /// Quote currencies, upper case (default `USD`).
    pub vs_currencies: Vec<String>,
}

impl CryptoQuery {
    /// The parameters: `assets` and `vs_currencies`.
    pub const PARAMS: ParamTable = ParamTable {
        params: &[
            Param::new(
                "assets",
                ParamKind::StringList,
                "Crypto assets by symbol or name (BTC, ethereum).",
                r#"["BTC", "ETH"]"#,
            )
            .required(),
            Param::new(
                "vs_currencies",
                ParamKind::StringList,
                "Currencies to price them in (USD, EUR).",
                r#"["EUR"]"#,
            )
            .or(ParamDefault::Texts(&["USD"])),
        ],
        alternatives: Alternatives::None,
    };

    /// Validates parameters: `assets` (symbols or names) and `vs_currencies`.
    pub fn from_params(mut params: Params) -> Result<Self> {
        let raw = params.str_list("assets")?;
        let mut assets = Vec::new();
        for (i, name) in raw.iter().enumerate() {
            let asset = lookup(name).ok_or_else(|| {
                Error::invalid(
                    format!("assets[{i}]"),
                    format!(
                        "is not a known asset ({}); known: {}",
                        echo(name),
                        ASSETS
                            .iter()
                            .map(|a| a.symbol)
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                )
            })?;
            if !assets.iter().any(|s| s == asset.symbol) {
                assets.push(asset.symbol.to_string());
            }
        }
        let mut vs_currencies = Vec::new();
        for (i, code) in params.str_list("vs_currencies")?.iter().enumerate() {
            if !(2..=5).contains(&code.len()) || !code.chars().all(|c| c.is_ascii_alphabetic()) {
                return Err(Error::invalid(
                    format!("vs_currencies[{i}]"),
                    format!("must be a currency code such as USD, got {}", echo(code)),
                ));
            }
            let code = code.to_ascii_uppercase();
            if !vs_currencies.contains(&code) {
                vs_currencies.push(code);
            }
        }
        params.finish()?;
        Ok(Self {
            assets,
            vs_currencies,
        })
    }

    /// The table entries of the requested assets, in request order.
    pub fn asset_ids(&self) -> impl Iterator<Item = &'static AssetIds> + '_ {
        self.assets.iter().filter_map(|s| lookup(s))
    }
}

/// The asset a quote is about.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AssetRef {
    /// polyrelay's id: the upper-case symbol.
    pub id: String,
    /// Ticker symbol.
    pub symbol: String,
    /// Human name.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub name: Option<String>,
}

/// One price.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CryptoQuote {
    /// The asset.
    pub asset: AssetRef,
    /// Quote currency, upper case.
    pub vs_currency: String,
    /// Price of one unit.
    pub price: f64,
    /// Change over 24 h, %.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub change_24h_pct: Option<f64>,
    /// Market capitalisation.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub market_cap: Option<f64>,
    /// Volume over 24 h.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub volume_24h: Option<f64>,
    /// When the price was last updated, ISO-8601.
    pub as_of: String,
}

impl CryptoQuote {
    /// A quote for a table asset.
    pub fn new(asset: &AssetIds, vs_currency: &str, price: f64, as_of: String) -> Self {
        Self {
            asset: AssetRef {
                id: asset.symbol.to_string(),
                symbol: asset.symbol.to_string(),
                name: Some(asset.name.to_string()),
            },
            vs_currency: vs_currency.to_string(),
            price,
            change_24h_pct: None,
            market_cap: None,
            volume_24h: None,
            as_of,
        }
    }
}

/// Answer of `crypto.price`: one quote per asset and currency, in request order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CryptoPrices {
    /// The quotes.
    pub quotes: Vec<CryptoQuote>,
}
