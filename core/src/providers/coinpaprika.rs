//! CoinPaprika tickers: `crypto.price` for one asset per request.
//!
//! Keyless on the free plan (20,000 calls/month, for hobby and
//! non-commercial use). `GET /v1/tickers/{id}?quotes=USD,EUR` answers one
//! coin in the asked quote currencies.
//!
//! **Multi-asset requests are `Unsupported`.** They would need one request
//! per asset, and the [`Provider`] trait cannot carry quotes from one step to
//! the next: `response()` sees the original request and the latest response
//! only. (`/v1/tickers` without an id returns every coin, several MB, which
//! is out of proportion.) The pipeline skips this provider for such requests
//! without counting it as a failure.
//!
//! The monthly allowance is enforced as a daily quota of 645: 20,000 / 31,
//! rounded down, so even a 31-day month stays within the allowance.
//! Exceeding the allowance is 402 (`QuotaExhausted`); an unknown id is 404
//! `{"error":"id not found"}`.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::Value;

use super::wire::number_of;
use super::{clip, utc_text};
use crate::capability::crypto::{CryptoPrices, CryptoQuery, CryptoQuote};
use crate::capability::marker;
use crate::error::{FailureClass, ProviderFailure};
use crate::provider::{
    Auth, CallContext, Fixture, HttpRequest, HttpResponse, Provider, ProviderInfo, Quota, Serves,
    Step,
};

/// CoinPaprika (<https://coinpaprika.com/api>): keyless crypto tickers, one
/// asset per request, free for non-commercial use.
#[derive(Debug, Clone, Copy, Default)]
pub struct CoinPaprika;

static INFO: ProviderInfo = ProviderInfo {
    id: "coinpaprika",
    name: "CoinPaprika",
    auth: Auth::Keyless,
    base_url: "https://api.coinpaprika.com",
    docs_url: "https://docs.coinpaprika.com",
    terms: "Free plan without a key: 20,000 calls/month, for hobby and non-commercial use; \
            paid plans (api-pro.coinpaprika.com) for commercial use.",
    commercial_use: false,
    default_rate_limit: None,
    default_quota: Some(Quota::per_month(20_000)),
};

impl Provider for CoinPaprika {
    fn info(&self) -> &ProviderInfo {
        &INFO
    }

    fn fixtures(&self) -> &'static [Fixture] {
        FIXTURES
    }
}

crate::serves!(CoinPaprika: CryptoPrice);

impl Serves<marker::CryptoPrice> for CoinPaprika {
    fn build_request(
        &self,
        q: &CryptoQuery,
        ctx: &CallContext<'_>,
    ) -> Result<HttpRequest, ProviderFailure> {
        let asset = match (q.asset_ids().next(), q.assets.len()) {
            (Some(asset), 1) => asset,
            _ => {
                return Err(ProviderFailure::unsupported(
                    "coinpaprika answers one asset per request",
                )
                .not_sent())
            }
        };
        Ok(
            HttpRequest::get(ctx.base_url, &format!("/v1/tickers/{}", asset.coinpaprika))
                .query("quotes", q.vs_currencies.join(",")),
        )
    }

    fn read_response(
        &self,
        q: &CryptoQuery,
        _ctx: &CallContext<'_>,
        response: HttpResponse,
    ) -> Result<Step<CryptoPrices>, ProviderFailure> {
        let Some(asset) = q.asset_ids().next() else {
            return Err(ProviderFailure::unsupported("no asset asked for").not_sent());
        };
        response.check_status().map_err(|mut failure| {
            if let Ok(ErrorReply { error }) = serde_json::from_slice(&response.body) {
                failure.message = format!("CoinPaprika: {}", clip(&error));
            }
            failure
        })?;
        let ticker: Ticker = response.json()?;
        if ticker.id != asset.coinpaprika {
            return Err(ProviderFailure::malformed(format!(
                "CoinPaprika answered for {:?}, not {}",
                ticker.id, asset.coinpaprika
            ))
            .status(response.status));
        }
        // The time of the price is a fact of the answer: no stand-in.
        let as_of = utc_text(ticker.last_updated.ok_or_else(|| {
            ProviderFailure::malformed("CoinPaprika ticker without `last_updated`")
                .status(response.status)
        })?);
        let quotes = q
            .vs_currencies
            .iter()
            .map(|vs| {
                let quote = ticker.quotes.get(vs).ok_or_else(|| {
                    ProviderFailure::new(
                        FailureClass::NotFound,
                        format!("CoinPaprika has no {vs} price for {}", asset.symbol),
                    )
                    .status(response.status)
                })?;
                let field = |name: &str| quote.get(name).and_then(number_of);
                let price = field("price").ok_or_else(|| {
                    ProviderFailure::malformed(format!("CoinPaprika quotes.{vs} without `price`"))
                        .status(response.status)
                })?;
                let mut out = CryptoQuote::new(asset, vs, price, as_of.clone());
                out.change_24h_pct = field("percent_change_24h");
                out.market_cap = field("market_cap");
                out.volume_24h = field("volume_24h");
                Ok(out)
            })
            .collect::<Result<_, ProviderFailure>>()?;
        Ok(Step::Done(CryptoPrices { quotes }))
    }
}

#[derive(Deserialize)]
struct ErrorReply {
    error: String,
}

#[derive(Deserialize)]
struct Ticker {
    id: String,
    last_updated: Option<DateTime<Utc>>,
    /// Quotes by currency, read only for the currencies asked for: another
    /// entry may be anything (issue #13).
    #[serde(default)]
    quotes: HashMap<String, Value>,
}

static FIXTURES: &[Fixture] = fixtures![
    // `GET /v1/tickers/btc-bitcoin?quotes=USD,EUR`.
    Fixture {
        method: "GET",
        path: "/v1/tickers/btc-bitcoin",
        status: 200,
        body: include_str!("fixtures/coinpaprika/btc.json"),
    },
    // `GET /v1/tickers/eth-ethereum?quotes=USD,EUR`.
    Fixture {
        method: "GET",
        path: "/v1/tickers/eth-ethereum",
        status: 200,
        body: include_str!("fixtures/coinpaprika/eth.json"),
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

    fn btc() -> Request {
        request(
            "crypto.price",
            json!({"assets": "bitcoin", "vs_currencies": ["usd", "eur"]}),
        )
    }

    #[test]
    fn request_is_exact_for_one_asset() {
        let req = CoinPaprika.request(&btc(), &ctx(&CoinPaprika)).unwrap();
        assert_eq!(req.method, Method::GET);
        assert_eq!(
            req.url,
            "https://api.coinpaprika.com/v1/tickers/btc-bitcoin"
        );
        assert_eq!(query(&req), [("quotes", "USD,EUR")]);
        assert!(req.headers.is_empty());
    }

    #[test]
    fn several_assets_are_unsupported() {
        let r = request("crypto.price", json!({"assets": ["BTC", "ETH"]}));
        let err = CoinPaprika.request(&r, &ctx(&CoinPaprika)).unwrap_err();
        assert_eq!(err.class, FailureClass::Unsupported);
        assert!(!err.request_sent);
    }

    #[test]
    fn fixture_normalises_quotes_like_coingecko() {
        let body = fixture(&CoinPaprika, "/v1/tickers/btc-bitcoin");
        let Data::CryptoPrice(prices) = answer(&CoinPaprika, &btc(), test_response(200, &[], body))
        else {
            panic!("wrong data")
        };
        let pairs: Vec<(&str, &str)> = prices
            .quotes
            .iter()
            .map(|q| (q.asset.id.as_str(), q.vs_currency.as_str()))
            .collect();
        assert_eq!(pairs, [("BTC", "USD"), ("BTC", "EUR")]);
        let usd = &prices.quotes[0];
        assert_eq!(usd.asset.name.as_deref(), Some("Bitcoin"));
        // serde_json's default float parsing may be off in the last digit.
        let close = |a: f64, b: f64| (a - b).abs() < 1e-6 * b.abs();
        assert!(close(usd.price, 99918.73416210285));
        assert_eq!(usd.change_24h_pct, Some(2.62));
        assert_eq!(usd.market_cap, Some(1979889826581.0));
        assert!(close(usd.volume_24h.unwrap(), 41474099487.47853));
        assert_eq!(usd.as_of, "2025-01-15T14:02:41Z");
        assert!(close(prices.quotes[1].price, 97050.14718921797));

        let r = request("crypto.price", json!({"assets": "ETH"}));
        let body = fixture(&CoinPaprika, "/v1/tickers/eth-ethereum");
        let Data::CryptoPrice(prices) = answer(&CoinPaprika, &r, test_response(200, &[], body))
        else {
            panic!("wrong data")
        };
        assert_eq!(prices.quotes.len(), 1);
        assert_eq!(prices.quotes[0].asset.id, "ETH");
        assert!((prices.quotes[0].price - 3316.9176553946).abs() < 1e-6);
    }

    #[test]
    fn error_signals_are_classified() {
        let f = failure(
            &CoinPaprika,
            &btc(),
            test_response(404, &[], r#"{"error":"id not found"}"#),
        );
        assert_eq!(f.class, FailureClass::NotFound);
        assert_eq!(f.message, "CoinPaprika: id not found");

        let f = failure(
            &CoinPaprika,
            &btc(),
            test_response(402, &[], r#"{"error":"Free plan limit reached"}"#),
        );
        assert_eq!(f.class, FailureClass::QuotaExhausted);
        let f = failure(
            &CoinPaprika,
            &btc(),
            test_response(
                429,
                &[("retry-after", "30")],
                r#"{"error":"too many requests"}"#,
            ),
        );
        assert_eq!(f.class, FailureClass::RateLimited);
        assert_eq!(f.retry_after, Some(Duration::from_secs(30)));
        let f = failure(
            &CoinPaprika,
            &btc(),
            test_response(400, &[], r#"{"error":"invalid quotes"}"#),
        );
        assert_eq!(f.class, FailureClass::InvalidRequest);
        let f = failure(&CoinPaprika, &btc(), test_response(500, &[], ""));
        assert_eq!(f.class, FailureClass::Transient);

        // A quote currency the ticker lacks.
        let r = request(
            "crypto.price",
            json!({"assets": "BTC", "vs_currencies": "USD,XYZ"}),
        );
        let body = fixture(&CoinPaprika, "/v1/tickers/btc-bitcoin");
        let f = failure(&CoinPaprika, &r, test_response(200, &[], body));
        assert_eq!(f.class, FailureClass::NotFound);
        assert!(f.message.contains("XYZ"), "{}", f.message);
    }

    #[test]
    fn malformed_bodies_never_panic() {
        let body = fixture(&CoinPaprika, "/v1/tickers/btc-bitcoin");
        assert_truncations_are_malformed(&CoinPaprika, &btc(), body);
        let eth = fixture(&CoinPaprika, "/v1/tickers/eth-ethereum");
        for bad in [
            "{}",
            eth,
            &body.replace("\"price\":99918", "\"price\":\"99918\""),
        ] {
            let f = failure(&CoinPaprika, &btc(), test_response(200, &[], bad));
            assert_eq!(f.class, FailureClass::MalformedResponse);
        }
    }
}
