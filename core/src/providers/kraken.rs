//! Kraken public `Ticker`: `crypto.price` from Kraken's order books.
//!
//! Keyless, about one public call per second. Kraken names assets its own
//! way (`XBT` for bitcoin, `XDG` for dogecoin) and answers under legacy pair
//! names (`XBTUSD` comes back as `XXBTZUSD`, `XDGUSD` as `XDGUSD`), so both
//! spellings are matched. Prices are strings: `c[0]` is the last trade;
//! the 24 h volume (`v[1]`, in the asset) times the 24 h average price
//! (`p[1]`) gives the volume in the quote currency. Kraken's `o` is the
//! opening price of the UTC day, not of the last 24 h, so no 24 h change is
//! reported, and the ticker has no time of its own.
//!
//! **Errors arrive inside HTTP 200 bodies** as `{"error":["EAPI:Rate limit
//! exceeded"],"result":{}}`: rate and "too many requests" errors are
//! `RateLimited`, `EQuery:Unknown asset pair` is `NotFound`,
//! `EService:Unavailable`/`Busy` are `Transient`, others `InvalidRequest`.

use std::collections::HashMap;

use serde::Deserialize;
use serde_json::Value;

use super::wire::number_of;
use super::{clip, utc_text};
use crate::capability::crypto::{CryptoPrices, CryptoQuery, CryptoQuote};
use crate::capability::marker;
use crate::error::{FailureClass, ProviderFailure};
use crate::provider::{
    Auth, CallContext, Fixture, HttpRequest, HttpResponse, Provider, ProviderInfo, Serves, Step,
};

/// Kraken (<https://docs.kraken.com/api/>): keyless exchange prices.
#[derive(Debug, Clone, Copy, Default)]
pub struct Kraken;

static INFO: ProviderInfo = ProviderInfo {
    id: "kraken",
    name: "Kraken public market data",
    auth: Auth::Keyless,
    base_url: "https://api.kraken.com",
    docs_url: "https://docs.kraken.com/api/docs/rest-api/get-ticker-information",
    terms: "Public market data, no key; about one public call per second per IP.",
    commercial_use: true,
    default_rate_limit: Some("1/s"),
    default_quota: None,
};

/// How Kraken may name the pair of asset `asset` in `quote` in its reply.
fn names(asset: &str, quote: &str) -> [String; 4] {
    [
        format!("{asset}{quote}"),
        format!("X{asset}Z{quote}"),
        format!("{asset}Z{quote}"),
        format!("X{asset}{quote}"),
    ]
}

impl Provider for Kraken {
    fn info(&self) -> &ProviderInfo {
        &INFO
    }

    fn fixtures(&self) -> &'static [Fixture] {
        FIXTURES
    }
}

crate::serves!(Kraken: CryptoPrice);

impl Serves<marker::CryptoPrice> for Kraken {
    fn build_request(
        &self,
        q: &CryptoQuery,
        ctx: &CallContext<'_>,
    ) -> Result<HttpRequest, ProviderFailure> {
        let mut pairs = Vec::new();
        for asset in q.asset_ids() {
            let code = asset.kraken.ok_or_else(|| {
                ProviderFailure::unsupported(format!("Kraken does not list {}", asset.symbol))
                    .not_sent()
            })?;
            for vs in &q.vs_currencies {
                if code == vs {
                    return Err(ProviderFailure::unsupported(format!(
                        "Kraken has no {code} market in {vs}"
                    ))
                    .not_sent());
                }
                pairs.push(format!("{code}{vs}"));
            }
        }
        Ok(HttpRequest::get(ctx.base_url, "/0/public/Ticker").query("pair", pairs.join(",")))
    }

    fn read_response(
        &self,
        q: &CryptoQuery,
        _ctx: &CallContext<'_>,
        response: HttpResponse,
    ) -> Result<Step<CryptoPrices>, ProviderFailure> {
        response.check_status()?;
        let reply: Reply = response.json()?;
        if let Some(error) = reply.error.first() {
            return Err(classify(&response, error, &reply.error));
        }
        let result = reply.result.ok_or_else(|| {
            ProviderFailure::malformed("Kraken reply without `result`").status(response.status)
        })?;
        let as_of = utc_text(response.received_at);
        let mut quotes = Vec::new();
        for asset in q.asset_ids() {
            let code = asset.kraken.unwrap_or_default();
            for vs in &q.vs_currencies {
                let ticker = names(code, vs)
                    .iter()
                    .find_map(|name| result.get(name).filter(|t| t.is_object()))
                    .ok_or_else(|| {
                        response.failure(
                            FailureClass::NotFound,
                            format!("Kraken answered no {code}{vs} ticker"),
                        )
                    })?;
                // `[today, last 24 hours]` or `[price, lot volume]`, as text.
                let item = |field: &str, i: usize| number_of(ticker.get(field)?.get(i)?);
                // Last trade: `c`.
                let price = item("c", 0).ok_or_else(|| {
                    ProviderFailure::malformed(format!(
                        "Kraken {code}{vs} ticker without a price (`c`)"
                    ))
                    .status(response.status)
                })?;
                let mut quote = CryptoQuote::new(asset, vs, price, as_of.clone());
                // Volume `v` times its volume-weighted average price `p`.
                quote.volume_24h = item("v", 1)
                    .zip(item("p", 1))
                    .map(|(volume, average)| volume * average);
                quotes.push(quote);
            }
        }
        Ok(Step::Done(CryptoPrices { quotes }))
    }
}

fn classify(response: &HttpResponse, first: &str, all: &[String]) -> ProviderFailure {
    let class = if first.contains("Rate limit") || first.contains("Too many requests") {
        FailureClass::RateLimited
    } else if first.starts_with("EQuery:Unknown asset pair") {
        FailureClass::NotFound
    } else if first.starts_with("EService:") {
        FailureClass::Transient
    } else {
        FailureClass::InvalidRequest
    };
    response.failure(class, format!("Kraken: {}", clip(&all.join(", "))))
}

#[derive(Deserialize)]
struct Reply {
    #[serde(default)]
    error: Vec<String>,
    /// Tickers by pair name, read only for the pairs asked for: another
    /// entry may be anything (issue #13).
    result: Option<HashMap<String, Value>>,
}

static FIXTURES: &[Fixture] = fixtures![
    // `GET /0/public/Ticker?pair=XBTUSD,ETHUSD`.
    Fixture {
        method: "GET",
        path: "/0/public/Ticker",
        status: 200,
        body: include_str!("fixtures/kraken/xbt_eth_usd.json"),
    },
];

#[cfg(test)]
mod tests {
    use http::Method;
    use serde_json::json;

    use super::*;
    use crate::providers::test_response;
    use crate::providers::testing::*;

    fn btc_eth() -> Request {
        request("crypto.price", json!({"assets": ["BTC", "ETH"]}))
    }

    fn error(errors: &str) -> ProviderFailure {
        let body = format!(r#"{{"error":{errors},"result":{{}}}}"#);
        failure(&Kraken, &btc_eth(), test_response(200, &[], &body))
    }

    #[test]
    fn request_uses_kraken_asset_codes() {
        let req = Kraken.request(&btc_eth(), &ctx(&Kraken)).unwrap();
        assert_eq!(req.method, Method::GET);
        assert_eq!(req.url, "https://api.kraken.com/0/public/Ticker");
        assert_eq!(query(&req), [("pair", "XBTUSD,ETHUSD")]);
        assert!(req.headers.is_empty());
        let r = request(
            "crypto.price",
            json!({"assets": "DOGE", "vs_currencies": "EUR"}),
        );
        assert_eq!(
            query(&Kraken.request(&r, &ctx(&Kraken)).unwrap()),
            [("pair", "XDGEUR")]
        );
        let r = request("crypto.price", json!({"assets": "BNB"}));
        let f = Kraken.request(&r, &ctx(&Kraken)).unwrap_err();
        assert_eq!(f.class, FailureClass::Unsupported);
    }

    #[test]
    fn fixture_normalises_legacy_pair_names() {
        let body = fixture(&Kraken, "/0/public/Ticker");
        let Data::CryptoPrice(prices) = answer(&Kraken, &btc_eth(), test_response(200, &[], body))
        else {
            panic!("wrong data")
        };
        let btc = &prices.quotes[0];
        assert_eq!(
            (btc.asset.id.as_str(), btc.vs_currency.as_str()),
            ("BTC", "USD")
        );
        assert_eq!(btc.price, 99871.0);
        let volume = btc.volume_24h.unwrap();
        assert!(
            (volume - 1502.93720617 * 98544.62011).abs() < 1e-3,
            "{volume}"
        );
        assert_eq!(btc.change_24h_pct, None);
        assert_eq!(btc.as_of, "2025-01-15T14:05:00Z", "the arrival time");
        assert_eq!(prices.quotes[1].price, 3319.3);
    }

    #[test]
    fn errors_inside_200_bodies_are_classified() {
        let f = error(r#"["EAPI:Rate limit exceeded"]"#);
        assert_eq!(f.class, FailureClass::RateLimited);
        assert_eq!(f.status, Some(200));
        assert_eq!(f.message, "Kraken: EAPI:Rate limit exceeded");
        assert_eq!(
            error(r#"["EGeneral:Too many requests"]"#).class,
            FailureClass::RateLimited
        );
        assert_eq!(
            error(r#"["EQuery:Unknown asset pair"]"#).class,
            FailureClass::NotFound
        );
        assert_eq!(
            error(r#"["EService:Unavailable"]"#).class,
            FailureClass::Transient
        );
        assert_eq!(error(r#"["EService:Busy"]"#).class, FailureClass::Transient);
        assert_eq!(
            error(r#"["EGeneral:Invalid arguments"]"#).class,
            FailureClass::InvalidRequest
        );
        let f = failure(
            &Kraken,
            &btc_eth(),
            test_response(
                200,
                &[],
                r#"{"error":[],"result":{"XXBTZUSD":{"c":["1","1"]}}}"#,
            ),
        );
        assert_eq!(f.class, FailureClass::NotFound, "ETH missing");
        let f = failure(&Kraken, &btc_eth(), test_response(520, &[], ""));
        assert_eq!(f.class, FailureClass::Transient);
    }

    #[test]
    fn malformed_bodies_never_panic() {
        let body = fixture(&Kraken, "/0/public/Ticker");
        assert_truncations_are_malformed(&Kraken, &btc_eth(), body);
        let bad = body.replace("\"99871.00000\",\"0.00050020\"", "\"n/a\",\"0\"");
        let f = failure(&Kraken, &btc_eth(), test_response(200, &[], &bad));
        assert_eq!(f.class, FailureClass::MalformedResponse);
    }
}
