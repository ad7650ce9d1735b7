//! Binance public market data (`api/v3/ticker/24hr`): `crypto.price` from
//! the largest exchange's order books.
//!
//! Keyless, on the market-data-only host `data-api.binance.vision`. Prices
//! are for trading pairs: the asset's Binance base asset from the shared
//! table, quoted in the requested currency, **with USD mapped to the USDT
//! stablecoin** (`BTC` in `USD` is `BTCUSDT`), since Binance has no USD
//! books; other currencies are used as given (`BTCEUR`). A pair Binance
//! does not list fails the whole request with `-1121 Invalid symbol`
//! (`NotFound`). Prices and volumes are strings; the 24 h change and the
//! quote-currency volume come with them.
//!
//! Limits are per IP and weight-based: over them Binance answers **429 with
//! `Retry-After`**, and clients that keep going get **418, an IP ban** for
//! the `Retry-After` period (`QuotaExhausted`, so the provider is benched
//! until then). 451 is a region Binance refuses to serve (`Auth`, since it
//! does not fix itself). Errors are `{"code":-1121,"msg":"Invalid symbol."}`.

use chrono::DateTime;
use serde::Deserialize;

use super::wire::flexible_f64_opt;
use super::{clip, utc_text};
use crate::capability::crypto::{AssetIds, CryptoPrices, CryptoQuery, CryptoQuote};
use crate::capability::marker;
use crate::error::{FailureClass, ProviderFailure};
use crate::provider::{
    Auth, CallContext, Fixture, HttpRequest, HttpResponse, Provider, ProviderInfo, Serves, Step,
};

/// Binance (<https://developers.binance.com>): keyless exchange prices.
#[derive(Debug, Clone, Copy, Default)]
pub struct Binance;

static INFO: ProviderInfo = ProviderInfo {
    id: "binance",
    name: "Binance public market data",
    auth: Auth::Keyless,
    base_url: "https://data-api.binance.vision",
    docs_url:
        "https://developers.binance.com/docs/binance-spot-api-docs/rest-api/market-data-endpoints",
    terms: "Public market data, no key; weight-based limits per IP (429, then 418 bans for \
            clients that ignore them); not served in some regions (451). USD prices are \
            USDT prices.",
    commercial_use: true,
    default_rate_limit: Some("1200/min"),
    default_quota: None,
};

/// Binance's trading pair for `asset` in `vs` (USD becomes USDT), or `None`
/// when Binance cannot price it.
fn pair(asset: &AssetIds, vs: &str) -> Option<String> {
    let base = asset.binance?;
    let quote = if vs == "USD" { "USDT" } else { vs };
    (base != quote).then(|| format!("{base}{quote}"))
}

impl Provider for Binance {
    fn info(&self) -> &ProviderInfo {
        &INFO
    }

    fn fixtures(&self) -> &'static [Fixture] {
        FIXTURES
    }
}

crate::serves!(Binance: CryptoPrice);

impl Serves<marker::CryptoPrice> for Binance {
    fn build_request(
        &self,
        q: &CryptoQuery,
        ctx: &CallContext<'_>,
    ) -> Result<HttpRequest, ProviderFailure> {
        let mut symbols = Vec::new();
        for asset in q.asset_ids() {
            for vs in &q.vs_currencies {
                let symbol = pair(asset, vs).ok_or_else(|| {
                    ProviderFailure::unsupported(format!(
                        "Binance has no {} market in {vs}",
                        asset.symbol
                    ))
                    .not_sent()
                })?;
                symbols.push(format!("\"{symbol}\""));
            }
        }
        Ok(HttpRequest::get(ctx.base_url, "/api/v3/ticker/24hr")
            .query("symbols", format!("[{}]", symbols.join(","))))
    }

    fn read_response(
        &self,
        q: &CryptoQuery,
        _ctx: &CallContext<'_>,
        response: HttpResponse,
    ) -> Result<Step<CryptoPrices>, ProviderFailure> {
        let error = serde_json::from_slice::<ErrorReply>(&response.body).ok();
        let message = || {
            error.as_ref().map_or_else(
                || response.body_excerpt(),
                |e| format!("Binance {}: {}", e.code, clip(&e.msg)),
            )
        };
        let class = match (response.status, error.as_ref().map(|e| e.code)) {
            (418, _) => Some(FailureClass::QuotaExhausted),
            (451, _) => Some(FailureClass::Auth),
            (_, Some(-1121)) => Some(FailureClass::NotFound),
            _ => None,
        };
        if let Some(class) = class {
            return Err(response.failure(class, message()));
        }
        response.check_status().map_err(|mut failure| {
            failure.message = message();
            failure
        })?;
        let tickers: Vec<Ticker> = response.json()?;
        let mut quotes = Vec::with_capacity(tickers.len());
        for asset in q.asset_ids() {
            for vs in &q.vs_currencies {
                let symbol = pair(asset, vs).unwrap_or_default();
                let found = tickers
                    .iter()
                    .find(|t| t.symbol.as_deref() == Some(symbol.as_str()));
                let ticker = found.ok_or_else(|| {
                    response.failure(
                        FailureClass::NotFound,
                        format!("Binance answered no {symbol} ticker"),
                    )
                })?;
                // The time of the price is a fact of the answer: no stand-in.
                let as_of = ticker
                    .close_time
                    .and_then(DateTime::from_timestamp_millis)
                    .ok_or_else(|| {
                        ProviderFailure::malformed(format!(
                            "Binance {symbol} ticker without `closeTime`"
                        ))
                        .status(response.status)
                    })?;
                let price = ticker.last_price.ok_or_else(|| {
                    ProviderFailure::malformed(format!(
                        "Binance {symbol} ticker without `lastPrice`"
                    ))
                    .status(response.status)
                })?;
                let mut quote = CryptoQuote::new(asset, vs, price, utc_text(as_of));
                quote.change_24h_pct = ticker.price_change_percent;
                quote.volume_24h = ticker.quote_volume;
                quotes.push(quote);
            }
        }
        Ok(Step::Done(CryptoPrices { quotes }))
    }
}

#[derive(Deserialize)]
struct ErrorReply {
    code: i64,
    msg: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Ticker {
    symbol: Option<String>,
    #[serde(default, deserialize_with = "flexible_f64_opt")]
    price_change_percent: Option<f64>,
    #[serde(default, deserialize_with = "flexible_f64_opt")]
    last_price: Option<f64>,
    #[serde(default, deserialize_with = "flexible_f64_opt")]
    quote_volume: Option<f64>,
    close_time: Option<i64>,
}

static FIXTURES: &[Fixture] = fixtures![
    // `GET /api/v3/ticker/24hr?symbols=["BTCUSDT","ETHUSDT"]`.
    Fixture {
        method: "GET",
        path: "/api/v3/ticker/24hr",
        status: 200,
        body: include_str!("fixtures/binance/btc_eth_usdt.json"),
    },
];

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use http::Method;
    use serde_json::json;

    use super::*;
    use crate::providers::test_response;
    use crate::providers::testing::*;

    fn btc_eth() -> Request {
        request("crypto.price", json!({"assets": ["BTC", "ethereum"]}))
    }

    #[test]
    fn request_maps_assets_to_pairs() {
        let req = Binance.request(&btc_eth(), &ctx(&Binance)).unwrap();
        assert_eq!(req.method, Method::GET);
        assert_eq!(
            req.url,
            "https://data-api.binance.vision/api/v3/ticker/24hr"
        );
        assert_eq!(query(&req), [("symbols", r#"["BTCUSDT","ETHUSDT"]"#)]);
        assert!(req.headers.is_empty());
        let r = request(
            "crypto.price",
            json!({"assets": "DOGE", "vs_currencies": "usd,eur"}),
        );
        let req = Binance.request(&r, &ctx(&Binance)).unwrap();
        assert_eq!(query(&req), [("symbols", r#"["DOGEUSDT","DOGEEUR"]"#)]);
        // USDT priced in USD would be USDTUSDT: not a market.
        let r = request("crypto.price", json!({"assets": "USDT"}));
        let f = Binance.request(&r, &ctx(&Binance)).unwrap_err();
        assert_eq!(f.class, FailureClass::Unsupported);
    }

    #[test]
    fn fixture_normalises_string_prices() {
        let body = fixture(&Binance, "/api/v3/ticker/24hr");
        let Data::CryptoPrice(prices) = answer(&Binance, &btc_eth(), test_response(200, &[], body))
        else {
            panic!("wrong data")
        };
        assert_eq!(prices.quotes.len(), 2);
        let btc = &prices.quotes[0];
        assert_eq!(btc.asset.id, "BTC");
        assert_eq!(btc.asset.name.as_deref(), Some("Bitcoin"));
        assert_eq!(btc.vs_currency, "USD");
        assert_eq!(btc.price, 99864.01);
        assert_eq!(btc.change_24h_pct, Some(2.578));
        assert_eq!(btc.volume_24h, Some(2_395_243_712.384_224));
        assert_eq!(btc.market_cap, None);
        assert_eq!(btc.as_of, "2025-01-15T13:59:59Z");
        assert_eq!(prices.quotes[1].price, 3319.0);
    }

    #[test]
    fn error_signals_are_classified() {
        let r = btc_eth();
        let f = failure(
            &Binance,
            &r,
            test_response(400, &[], r#"{"code":-1121,"msg":"Invalid symbol."}"#),
        );
        assert_eq!(f.class, FailureClass::NotFound);
        assert_eq!(f.message, "Binance -1121: Invalid symbol.");
        let f = failure(
            &Binance,
            &r,
            test_response(
                429,
                &[("retry-after", "37")],
                r#"{"code":-1003,"msg":"Too much request weight used; current limit is 6000 request weight per 1 MINUTE."}"#,
            ),
        );
        assert_eq!(f.class, FailureClass::RateLimited);
        assert_eq!(f.retry_after, Some(Duration::from_secs(37)));
        let f = failure(
            &Binance,
            &r,
            test_response(
                418,
                &[("retry-after", "7200")],
                r#"{"code":-1003,"msg":"Way too much request weight used; IP banned until 1736957000000."}"#,
            ),
        );
        assert_eq!(f.class, FailureClass::QuotaExhausted);
        assert_eq!(f.retry_after, Some(Duration::from_secs(7200)));
        let f = failure(
            &Binance,
            &r,
            test_response(
                451,
                &[],
                r#"{"code":0,"msg":"Service unavailable from a restricted location."}"#,
            ),
        );
        assert_eq!(f.class, FailureClass::Auth);
        let f = failure(
            &Binance,
            &r,
            test_response(
                400,
                &[],
                r#"{"code":-1100,"msg":"Illegal characters found in parameter 'symbols'."}"#,
            ),
        );
        assert_eq!(f.class, FailureClass::InvalidRequest);
        let f = failure(&Binance, &r, test_response(503, &[], ""));
        assert_eq!(f.class, FailureClass::Transient);
        let only_btc = r#"[{"symbol":"BTCUSDT","lastPrice":"1","closeTime":0}]"#;
        let f = failure(&Binance, &r, test_response(200, &[], only_btc));
        assert_eq!(f.class, FailureClass::NotFound);
    }

    #[test]
    fn malformed_bodies_never_panic() {
        let body = fixture(&Binance, "/api/v3/ticker/24hr");
        assert_cuts_of_a_list_are_malformed(&Binance, &btc_eth(), body);
        let bad = body.replace("\"99864.01000000\"", "\"lots\"");
        let f = failure(&Binance, &btc_eth(), test_response(200, &[], &bad));
        assert_eq!(f.class, FailureClass::MalformedResponse);
    }
}
