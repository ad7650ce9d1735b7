//! currency-api (fawazahmed0/exchange-api): `finance.fx_rates` from a static
//! JSON file per base currency on the jsDelivr CDN.
//!
//! Keyless, no rate limits, about 200 fiat currencies plus crypto and metals,
//! with daily snapshots since 2024-03 (`@YYYY-MM-DD`). Keys are lower case
//! (`{"date":…,"usd":{"eur":0.92,…}}`) and become upper case. When the caller
//! names no symbols, only ISO 4217 currencies are kept (the file also lists
//! `btc`, `1inch` and the like, which are not currencies). Named symbols are
//! taken as asked. A base or date the CDN does not have is 404 (`NotFound`).
//!
//! The project README also asks clients to fall back to
//! `https://{date|latest}.currency-api.pages.dev/v1/currencies/{base}.json`
//! when jsDelivr fails. That host puts the version in the host name, so it
//! needs a second base URL. It is not wired in yet.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::wire::number;
use crate::capability::finance::{FxQuery, FxRates};
use crate::capability::marker;
use crate::error::{FailureClass, ProviderFailure};
use crate::provider::{
    Auth, CallContext, Fixture, HttpRequest, HttpResponse, Provider, ProviderInfo, Serves, Step,
};

/// currency-api by fawazahmed0 (<https://github.com/fawazahmed0/exchange-api>):
/// keyless daily rates for about 200 currencies, served from a CDN.
#[derive(Debug, Clone, Copy, Default)]
pub struct CurrencyApi;

static INFO: ProviderInfo = ProviderInfo {
    id: "currency-api",
    name: "currency-api (fawazahmed0)",
    auth: Auth::Keyless,
    base_url: "https://cdn.jsdelivr.net",
    docs_url: "https://github.com/fawazahmed0/exchange-api",
    terms: "Free, no key, no rate limits (CC0 data served from the jsDelivr CDN); daily \
            rates aggregated from public sources.",
    commercial_use: true,
    default_rate_limit: None,
    default_quota: None,
};

impl Provider for CurrencyApi {
    fn info(&self) -> &ProviderInfo {
        &INFO
    }

    fn fixtures(&self) -> &'static [Fixture] {
        FIXTURES
    }
}

crate::serves!(CurrencyApi: FxRates);

impl Serves<marker::FxRates> for CurrencyApi {
    fn build_request(
        &self,
        q: &FxQuery,
        ctx: &CallContext<'_>,
    ) -> Result<HttpRequest, ProviderFailure> {
        let version = match q.date {
            Some(date) => date.format("%Y-%m-%d").to_string(),
            None => "latest".to_string(),
        };
        let path = format!(
            "/npm/@fawazahmed0/currency-api@{version}/v1/currencies/{}.json",
            q.base.as_str().to_ascii_lowercase()
        );
        Ok(HttpRequest::get(ctx.base_url, &path))
    }

    fn read_response(
        &self,
        q: &FxQuery,
        _ctx: &CallContext<'_>,
        response: HttpResponse,
    ) -> Result<Step<FxRates>, ProviderFailure> {
        if response.status == 404 {
            let when = q.date.map_or("latest".to_string(), |d| d.to_string());
            return Err(response.failure(
                FailureClass::NotFound,
                format!("currency-api has no {} rates for {when}", q.base.as_str()),
            ));
        }
        response.check_status()?;
        let reply: Reply = response.json()?;
        let base = q.base.as_str().to_ascii_lowercase();
        let table = reply
            .tables
            .get(&base)
            .and_then(serde_json::Value::as_object)
            .ok_or_else(|| {
                ProviderFailure::malformed(format!("currency-api reply has no `{base}` table"))
                    .status(response.status)
            })?;
        let rates: BTreeMap<String, f64> = table
            .iter()
            .filter_map(|(code, rate)| {
                // A rate sent as a numeric string counts (issue #13).
                let rate = match rate {
                    serde_json::Value::String(text) => number(text)?,
                    rate => rate.as_f64()?,
                };
                Some((code.to_ascii_uppercase(), rate))
            })
            .filter(|(code, _)| !q.symbols.is_empty() || is_iso_4217(code))
            .collect();
        let rates = FxRates {
            base: q.base.as_str().to_string(),
            date: reply.date,
            rates,
            source: None,
        }
        .select(q)
        .map_err(|f| f.status(response.status))?;
        Ok(Step::Done(rates))
    }
}

#[derive(Deserialize)]
struct Reply {
    date: String,
    /// The base currency's table, under its lower-case code.
    #[serde(flatten)]
    tables: BTreeMap<String, serde_json::Value>,
}

/// Whether `code` is a current ISO 4217 currency (including the precious
/// metals and the SDR, which the standard lists; excluding fund and test
/// codes).
fn is_iso_4217(code: &str) -> bool {
    ISO_4217.binary_search(&code).is_ok()
}

/// Current ISO 4217 alphabetic codes, sorted.
const ISO_4217: &[&str] = &[
    "AED", "AFN", "ALL", "AMD", "ANG", "AOA", "ARS", "AUD", "AWG", "AZN", "BAM", "BBD", "BDT",
    "BGN", "BHD", "BIF", "BMD", "BND", "BOB", "BRL", "BSD", "BTN", "BWP", "BYN", "BZD", "CAD",
    "CDF", "CHF", "CLP", "CNY", "COP", "CRC", "CUP", "CVE", "CZK", "DJF", "DKK", "DOP", "DZD",
    "EGP", "ERN", "ETB", "EUR", "FJD", "FKP", "GBP", "GEL", "GHS", "GIP", "GMD", "GNF", "GTQ",
    "GYD", "HKD", "HNL", "HTG", "HUF", "IDR", "ILS", "INR", "IQD", "IRR", "ISK", "JMD", "JOD",
    "JPY", "KES", "KGS", "KHR", "KMF", "KPW", "KRW", "KWD", "KYD", "KZT", "LAK", "LBP", "LKR",
    "LRD", "LSL", "LYD", "MAD", "MDL", "MGA", "MKD", "MMK", "MNT", "MOP", "MRU", "MUR", "MVR",
    "MWK", "MXN", "MYR", "MZN", "NAD", "NGN", "NIO", "NOK", "NPR", "NZD", "OMR", "PAB", "PEN",
    "PGK", "PHP", "PKR", "PLN", "PYG", "QAR", "RON", "RSD", "RUB", "RWF", "SAR", "SBD", "SCR",
    "SDG", "SEK", "SGD", "SHP", "SLE", "SOS", "SRD", "SSP", "STN", "SVC", "SYP", "SZL", "THB",
    "TJS", "TMT", "TND", "TOP", "TRY", "TTD", "TWD", "TZS", "UAH", "UGX", "USD", "UYU", "UZS",
    "VED", "VES", "VND", "VUV", "WST", "XAF", "XAG", "XAU", "XCD", "XCG", "XDR", "XOF", "XPD",
    "XPF", "XPT", "YER", "ZAR", "ZMW", "ZWG",
];

static FIXTURES: &[Fixture] = fixtures![
    // `…@latest/v1/currencies/usd.json`, trimmed (the real file has ~340 keys).
    Fixture {
        method: "GET",
        path: "/npm/@fawazahmed0/currency-api@latest/v1/currencies/usd.json",
        status: 200,
        body: include_str!("fixtures/currency-api/latest_usd.json"),
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

    const PATH: &str = "/npm/@fawazahmed0/currency-api@latest/v1/currencies/usd.json";

    #[test]
    fn requests_are_exact() {
        let r = request(
            "finance.fx_rates",
            json!({"base": "USD", "symbols": "EUR,GBP"}),
        );
        let req = CurrencyApi.request(&r, &ctx(&CurrencyApi)).unwrap();
        assert_eq!(req.method, Method::GET);
        assert_eq!(
            req.url,
            "https://cdn.jsdelivr.net/npm/@fawazahmed0/currency-api@latest/v1/currencies/usd.json"
        );
        assert!(req.query.is_empty());
        assert!(req.headers.is_empty());

        let r = request(
            "finance.fx_rates",
            json!({"base": "gbp", "date": "2024-03-06"}),
        );
        let req = CurrencyApi.request(&r, &ctx(&CurrencyApi)).unwrap();
        assert_eq!(
            req.url,
            "https://cdn.jsdelivr.net/npm/@fawazahmed0/currency-api@2024-03-06/v1/currencies/gbp.json"
        );
    }

    #[test]
    fn fixture_normalises_requested_symbols_like_frankfurter() {
        let r = request(
            "finance.fx_rates",
            json!({"base": "USD", "symbols": "GBP,EUR"}),
        );
        let body = fixture(&CurrencyApi, PATH);
        let Data::FxRates(rates) = answer(&CurrencyApi, &r, test_response(200, &[], body)) else {
            panic!("wrong data")
        };
        assert_eq!(rates.base, "USD");
        assert_eq!(rates.date, "2025-01-15");
        assert_eq!(rates.source, None);
        assert_eq!(
            rates.rates,
            BTreeMap::from([
                ("EUR".to_string(), 0.97083216),
                ("GBP".to_string(), 0.81956891)
            ])
        );

        // Non-ISO codes are fine when asked for by name.
        let r = request("finance.fx_rates", json!({"base": "USD", "symbols": "BTC"}));
        let Data::FxRates(rates) = answer(&CurrencyApi, &r, test_response(200, &[], body)) else {
            panic!("wrong data")
        };
        assert_eq!(rates.rates["BTC"], 0.00001034);
    }

    #[test]
    fn without_symbols_only_iso_currencies_are_kept() {
        let r = request("finance.fx_rates", json!({"base": "USD"}));
        let body = fixture(&CurrencyApi, PATH);
        let Data::FxRates(rates) = answer(&CurrencyApi, &r, test_response(200, &[], body)) else {
            panic!("wrong data")
        };
        for gone in ["1INCH", "AAVE", "ADA", "BTC", "ETH", "SHIB", "USDT", "USD"] {
            assert!(!rates.rates.contains_key(gone), "{gone} kept");
        }
        assert_eq!(rates.rates.len(), 28);
        assert_eq!(rates.rates["JPY"], 156.53428103);
        assert_eq!(rates.rates["XAU"], 0.00037103);
    }

    #[test]
    fn iso_table_is_sorted_and_three_letters() {
        assert!(ISO_4217.windows(2).all(|w| w[0] < w[1]));
        assert!(ISO_4217
            .iter()
            .all(|c| c.len() == 3 && c.chars().all(|ch| ch.is_ascii_uppercase())));
        assert!(is_iso_4217("EUR") && !is_iso_4217("BTC") && !is_iso_4217("eur"));
    }

    #[test]
    fn error_signals_are_classified() {
        let r = request(
            "finance.fx_rates",
            json!({"base": "XYZ", "date": "2023-01-01"}),
        );
        let f = failure(
            &CurrencyApi,
            &r,
            test_response(404, &[], "Couldn't find the requested file."),
        );
        assert_eq!(f.class, FailureClass::NotFound);
        assert!(
            f.message.contains("XYZ") && f.message.contains("2023-01-01"),
            "{}",
            f.message
        );

        let f = failure(
            &CurrencyApi,
            &r,
            test_response(429, &[("retry-after", "30")], "Too Many Requests"),
        );
        assert_eq!(f.class, FailureClass::RateLimited);
        assert_eq!(f.retry_after, Some(Duration::from_secs(30)));
        let f = failure(
            &CurrencyApi,
            &r,
            test_response(503, &[], "Service Unavailable"),
        );
        assert_eq!(f.class, FailureClass::Transient);

        // A symbol the file lacks.
        let r = request(
            "finance.fx_rates",
            json!({"base": "USD", "symbols": "EUR,VES"}),
        );
        let body = fixture(&CurrencyApi, PATH);
        let f = failure(&CurrencyApi, &r, test_response(200, &[], body));
        assert_eq!(f.class, FailureClass::NotFound);
    }

    #[test]
    fn malformed_bodies_never_panic() {
        let body = fixture(&CurrencyApi, PATH);
        let r = request("finance.fx_rates", json!({"base": "USD"}));
        assert_truncations_are_malformed(&CurrencyApi, &r, body);
        for bad in [
            "{}",
            r#"{"date":"2025-01-15"}"#,
            r#"{"date":"2025-01-15","usd":[1]}"#,
        ] {
            let f = failure(&CurrencyApi, &r, test_response(200, &[], bad));
            assert_eq!(f.class, FailureClass::MalformedResponse, "{bad}");
        }
        // Answered for another base: no `usd` table.
        let eur = body.replace("\"usd\": {", "\"eur\": {");
        let f = failure(&CurrencyApi, &r, test_response(200, &[], &eur));
        assert_eq!(f.class, FailureClass::MalformedResponse);
    }
}
