//! CoinGecko `simple/price`: `crypto.price` for several assets and quote
//! currencies in one request.
//!
//! Works without a key at a low, variable rate. A free Demo key
//! (`COINGECKO_API_KEY`) raises it to about 30 calls/min. The pipeline adds
//! the key as the `x-cg-demo-api-key` header. This provider never sees it.
//! Assets are asked for by CoinGecko id (`bitcoin`) from the shared asset
//! table. An id CoinGecko does not know is simply missing from the reply
//! (`NotFound`). Throttling is 429 with
//! `{"status":{"error_code":429,"error_message":"…"}}` and usually a
//! `Retry-After`.

use std::collections::HashMap;

use chrono::DateTime;
use serde::Deserialize;
use serde_json::Value;

use super::wire::number_of;
use super::{clip, utc_text};
use crate::capability::crypto::{CryptoPrices, CryptoQuery, CryptoQuote};
use crate::capability::marker;
use crate::error::{FailureClass, ProviderFailure};
use crate::provider::{
    Auth, CallContext, Fixture, HttpRequest, HttpResponse, KeyPlacement, Provider, ProviderInfo,
    Serves, Step,
};

/// CoinGecko (<https://www.coingecko.com/en/api>): prices, 24 h change,
/// market cap and volume for thousands of coins; keyless or with a free
/// Demo key.
#[derive(Debug, Clone, Copy, Default)]
pub struct CoinGecko;

static INFO: ProviderInfo = ProviderInfo {
    id: "coingecko",
    name: "CoinGecko",
    auth: Auth::Key {
        env: "COINGECKO_API_KEY",
        placement: KeyPlacement::Header {
            name: "x-cg-demo-api-key",
            prefix: "",
        },
        optional: true,
    },
    base_url: "https://api.coingecko.com",
    docs_url: "https://docs.coingecko.com/v3.0.1/reference/simple-price",
    terms: "Keyless access at a low, variable rate; the free Demo key gives about 30 \
            calls/min and 10,000 calls/month. Attribution to CoinGecko required.",
    commercial_use: true,
    default_rate_limit: Some("30/min"),
    default_quota: None,
};

impl Provider for CoinGecko {
    fn info(&self) -> &ProviderInfo {
        &INFO
    }

    fn fixtures(&self) -> &'static [Fixture] {
        FIXTURES
    }
}

crate::serves!(CoinGecko: CryptoPrice);

impl Serves<marker::CryptoPrice> for CoinGecko {
    fn build_request(
        &self,
        q: &CryptoQuery,
        ctx: &CallContext<'_>,
    ) -> Result<HttpRequest, ProviderFailure> {
        let ids: Vec<&str> = q.asset_ids().map(|a| a.coingecko).collect();
        let vs: Vec<String> = q
            .vs_currencies
            .iter()
            .map(|c| c.to_ascii_lowercase())
            .collect();
        Ok(HttpRequest::get(ctx.base_url, "/api/v3/simple/price")
            .query("ids", ids.join(","))
            .query("vs_currencies", vs.join(","))
            .query("include_24hr_change", "true")
            .query("include_market_cap", "true")
            .query("include_24hr_vol", "true")
            .query("include_last_updated_at", "true"))
    }

    fn read_response(
        &self,
        q: &CryptoQuery,
        _ctx: &CallContext<'_>,
        response: HttpResponse,
    ) -> Result<Step<CryptoPrices>, ProviderFailure> {
        response.check_status().map_err(|mut failure| {
            if let Some(message) = error_message(&response.body) {
                failure.message = format!("CoinGecko: {}", clip(&message));
            }
            failure
        })?;
        // Read by asset id: another entry may be anything (issue #13).
        let reply: HashMap<String, Value> = response.json()?;
        let not_found = |what: String| {
            ProviderFailure::new(FailureClass::NotFound, what).status(response.status)
        };
        let mut quotes = Vec::with_capacity(q.assets.len() * q.vs_currencies.len());
        for asset in q.asset_ids() {
            let fields = reply
                .get(asset.coingecko)
                .ok_or_else(|| not_found(format!("CoinGecko has no {}", asset.symbol)))?;
            let field = |name: &str| fields.get(name).and_then(number_of);
            // The time of the price is a fact of the answer: no stand-in.
            let as_of = field("last_updated_at")
                .and_then(|secs| DateTime::from_timestamp(secs as i64, 0))
                .ok_or_else(|| {
                    ProviderFailure::malformed(format!(
                        "CoinGecko {} without `last_updated_at`",
                        asset.coingecko
                    ))
                    .status(response.status)
                })?;
            for vs in &q.vs_currencies {
                let vs_lower = vs.to_ascii_lowercase();
                let price = field(&vs_lower).ok_or_else(|| {
                    not_found(format!("CoinGecko has no {vs} price for {}", asset.symbol))
                })?;
                let mut quote = CryptoQuote::new(asset, vs, price, utc_text(as_of));
                quote.change_24h_pct = field(&format!("{vs_lower}_24h_change"));
                quote.market_cap = field(&format!("{vs_lower}_market_cap"));
                quote.volume_24h = field(&format!("{vs_lower}_24h_vol"));
                quotes.push(quote);
            }
        }
        Ok(Step::Done(CryptoPrices { quotes }))
    }
}

/// The text of CoinGecko's error bodies: `{"status":{"error_message":…}}`
/// or `{"error":"…"}`.
fn error_message(body: &[u8]) -> Option<String> {
    #[derive(Deserialize)]
    struct ErrorReply {
        status: Option<Status>,
        error: Option<String>,
    }
    #[derive(Deserialize)]
    struct Status {
        error_message: Option<String>,
    }
    let reply: ErrorReply = serde_json::from_slice(body).ok()?;
    reply.status.and_then(|s| s.error_message).or(reply.error)
}

static FIXTURES: &[Fixture] = fixtures![
    // `ids=bitcoin,ethereum&vs_currencies=usd,eur` with every `include_*`.
    Fixture {
        method: "GET",
        path: "/api/v3/simple/price",
        status: 200,
        body: include_str!("fixtures/coingecko/btc_eth_usd_eur.json"),
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
        request(
            "crypto.price",
            json!({"assets": ["BTC", "ethereum"], "vs_currencies": "usd,EUR"}),
        )
    }

    #[test]
    fn request_is_exact_and_carries_no_key() {
        let req = CoinGecko.request(&btc_eth(), &ctx(&CoinGecko)).unwrap();
        assert_eq!(req.method, Method::GET);
        assert_eq!(req.url, "https://api.coingecko.com/api/v3/simple/price");
        assert_eq!(
            query(&req),
            [
                ("ids", "bitcoin,ethereum"),
                ("vs_currencies", "usd,eur"),
                ("include_24hr_change", "true"),
                ("include_market_cap", "true"),
                ("include_24hr_vol", "true"),
                ("include_last_updated_at", "true"),
            ]
        );
        // The pipeline adds the key; the provider's request never has one.
        assert!(req.headers.is_empty());
        assert!(!req.url.contains("key") && req.query.iter().all(|(k, _)| !k.contains("key")));
        assert_eq!(
            CoinGecko.info().auth,
            Auth::Key {
                env: "COINGECKO_API_KEY",
                placement: KeyPlacement::Header {
                    name: "x-cg-demo-api-key",
                    prefix: ""
                },
                optional: true,
            }
        );
        assert!(CoinGecko.info().is_keyless());
    }

    #[test]
    fn fixture_normalises_quotes_in_request_order() {
        let body = fixture(&CoinGecko, "/api/v3/simple/price");
        let reply = test_response(200, &[], body);
        let Data::CryptoPrice(prices) = answer(&CoinGecko, &btc_eth(), reply) else {
            panic!("wrong data")
        };
        let pairs: Vec<(&str, &str)> = prices
            .quotes
            .iter()
            .map(|q| (q.asset.id.as_str(), q.vs_currency.as_str()))
            .collect();
        assert_eq!(
            pairs,
            [
                ("BTC", "USD"),
                ("BTC", "EUR"),
                ("ETH", "USD"),
                ("ETH", "EUR")
            ]
        );
        let btc_eur = &prices.quotes[1];
        assert_eq!(btc_eur.asset.symbol, "BTC");
        assert_eq!(btc_eur.asset.name.as_deref(), Some("Bitcoin"));
        assert_eq!(btc_eur.price, 97065.0);
        assert_eq!(btc_eur.change_24h_pct, Some(2.5518844513));
        // serde_json's default float parsing may be off in the last digit.
        assert!((btc_eur.market_cap.unwrap() - 1922770193187.6714).abs() < 0.01);
        assert_eq!(btc_eur.volume_24h, Some(50873931040.66196));
        assert_eq!(btc_eur.as_of, "2025-01-15T14:00:04Z");
        assert_eq!(prices.quotes[2].price, 3317.32);
        assert_eq!(prices.quotes[2].as_of, "2025-01-15T13:59:57Z");

        // Only ETH asked for: only ETH answered, even though BTC is in the body.
        let r = request("crypto.price", json!({"assets": "ETH"}));
        let Data::CryptoPrice(prices) = answer(&CoinGecko, &r, test_response(200, &[], body))
        else {
            panic!("wrong data")
        };
        assert_eq!(prices.quotes.len(), 1);
        assert_eq!(prices.quotes[0].vs_currency, "USD");
    }

    #[test]
    fn missing_assets_and_currencies_are_not_found() {
        let f = failure(&CoinGecko, &btc_eth(), test_response(200, &[], "{}"));
        assert_eq!(f.class, FailureClass::NotFound);
        assert!(f.message.contains("BTC"), "{}", f.message);

        let body = fixture(&CoinGecko, "/api/v3/simple/price");
        let r = request(
            "crypto.price",
            json!({"assets": "BTC", "vs_currencies": "JPY"}),
        );
        let f = failure(&CoinGecko, &r, test_response(200, &[], body));
        assert_eq!(f.class, FailureClass::NotFound);
        assert!(f.message.contains("JPY"), "{}", f.message);
    }

    #[test]
    fn error_signals_are_classified() {
        let f = failure(
            &CoinGecko,
            &btc_eth(),
            test_response(
                429,
                &[("retry-after", "30"), ("content-type", "application/json")],
                r#"{"status":{"error_code":429,"error_message":"You've exceeded the Rate Limit. Please visit https://www.coingecko.com/en/api/pricing to subscribe to our API plans for higher rate limits."}}"#,
            ),
        );
        assert_eq!(f.class, FailureClass::RateLimited);
        assert_eq!(f.retry_after, Some(Duration::from_secs(30)));
        assert!(
            f.message.starts_with("CoinGecko: You've exceeded"),
            "{}",
            f.message
        );

        let f = failure(
            &CoinGecko,
            &btc_eth(),
            test_response(
                401,
                &[],
                r#"{"status":{"error_code":10002,"error_message":"API Key Missing"}}"#,
            ),
        );
        assert_eq!(f.class, FailureClass::Auth);
        let f = failure(
            &CoinGecko,
            &btc_eth(),
            test_response(400, &[], r#"{"error":"invalid vs_currency"}"#),
        );
        assert_eq!(f.class, FailureClass::InvalidRequest);
        assert_eq!(f.message, "CoinGecko: invalid vs_currency");
        let f = failure(
            &CoinGecko,
            &btc_eth(),
            test_response(503, &[], "<html>503</html>"),
        );
        assert_eq!(f.class, FailureClass::Transient);
    }

    #[test]
    fn malformed_bodies_never_panic() {
        let body = fixture(&CoinGecko, "/api/v3/simple/price");
        assert_truncations_are_malformed(&CoinGecko, &btc_eth(), body);
        // A number sent as a numeric string is read as the number (#13,
        // provider/tolerant.rs): the answer does not change.
        let drifted = body.replace("99895", "\"99895\"");
        assert_eq!(
            answer(&CoinGecko, &btc_eth(), test_response(200, &[], &drifted)),
            answer(&CoinGecko, &btc_eth(), test_response(200, &[], body))
        );
    }
}
