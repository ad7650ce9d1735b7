//! ExchangeRate-API Open Access (`open.er-api.com/v6/latest/{base}`):
//! `finance.fx_rates` for 160 currencies, latest only.
//!
//! Keyless, updated once a day, attribution required and no redistribution
//! (so it is dropped when the client is set to commercial use). A
//! historical date is `Unsupported`. Being rate limited answers 429 and
//! unblocks after about 20 minutes, which is the wait used when no
//! `Retry-After` comes. Errors are `{"result":"error","error-type":"…"}`:
//! `unsupported-code` is `NotFound`, `malformed-request` `InvalidRequest`.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::DateTime;
use serde::Deserialize;

use crate::capability::finance::{FxQuery, FxRates};
use crate::capability::marker;
use crate::error::{FailureClass, ProviderFailure};
use crate::provider::{
    Auth, CallContext, Fixture, HttpRequest, HttpResponse, Provider, ProviderInfo, Serves, Step,
};

/// ExchangeRate-API Open Access (<https://www.exchangerate-api.com/docs/free>):
/// keyless daily rates.
#[derive(Debug, Clone, Copy, Default)]
pub struct ExchangeRateApi;

static INFO: ProviderInfo = ProviderInfo {
    id: "exchangerate-api",
    name: "ExchangeRate-API Open Access",
    auth: Auth::Keyless,
    base_url: "https://open.er-api.com",
    docs_url: "https://www.exchangerate-api.com/docs/free",
    terms: "Free, no key; attribution required (\"Rates By Exchange Rate API\"), no \
            redistribution; updated once a day; rate limited (about hourly calls are fine, \
            a 429 unblocks after ~20 minutes).",
    commercial_use: false,
    default_rate_limit: None,
    default_quota: None,
};

/// How long a 429 lasts when the reply does not say.
const BLOCK_WAIT: Duration = Duration::from_secs(20 * 60);

impl Provider for ExchangeRateApi {
    fn info(&self) -> &ProviderInfo {
        &INFO
    }

    fn fixtures(&self) -> &'static [Fixture] {
        FIXTURES
    }
}

crate::serves!(ExchangeRateApi: FxRates);

impl Serves<marker::FxRates> for ExchangeRateApi {
    fn build_request(
        &self,
        q: &FxQuery,
        ctx: &CallContext<'_>,
    ) -> Result<HttpRequest, ProviderFailure> {
        if q.date.is_some() {
            return Err(ProviderFailure::unsupported(
                "ExchangeRate-API Open Access has latest rates only",
            )
            .not_sent());
        }
        Ok(HttpRequest::get(
            ctx.base_url,
            &format!("/v6/latest/{}", q.base.as_str()),
        ))
    }

    fn read_response(
        &self,
        q: &FxQuery,
        _ctx: &CallContext<'_>,
        response: HttpResponse,
    ) -> Result<Step<FxRates>, ProviderFailure> {
        if response.status == 429 {
            return Err(response
                .failure(FailureClass::RateLimited, "ExchangeRate-API: rate limited")
                .retry_after(Some(response.retry_after().unwrap_or(BLOCK_WAIT))));
        }
        if let Ok(error) = serde_json::from_slice::<ErrorReply>(&response.body) {
            if error.result == "error" {
                let class = match error.error_type.as_str() {
                    "unsupported-code" => FailureClass::NotFound,
                    _ => response
                        .status_class()
                        .unwrap_or(FailureClass::InvalidRequest),
                };
                return Err(
                    response.failure(class, format!("ExchangeRate-API: {}", error.error_type))
                );
            }
        }
        response.check_status()?;
        let reply: Reply = response.json()?;
        let status = response.status;
        if !reply.base_code.eq_ignore_ascii_case(q.base.as_str()) {
            return Err(ProviderFailure::malformed(format!(
                "ExchangeRate-API answered for base {:?}, not {}",
                reply.base_code,
                q.base.as_str()
            ))
            .status(status));
        }
        let date = DateTime::from_timestamp(reply.time_last_update_unix, 0)
            .ok_or_else(|| {
                ProviderFailure::malformed("ExchangeRate-API: impossible update time")
                    .status(status)
            })?
            .format("%Y-%m-%d")
            .to_string();
        let rates = FxRates {
            base: q.base.as_str().to_string(),
            date,
            rates: reply.rates,
            source: Some("ExchangeRate-API".to_string()),
        }
        .select(q)
        .map_err(|f| f.status(status))?;
        Ok(Step::Done(rates))
    }
}

#[derive(Deserialize)]
struct ErrorReply {
    result: String,
    #[serde(rename = "error-type", default)]
    error_type: String,
}

#[derive(Deserialize)]
struct Reply {
    time_last_update_unix: i64,
    base_code: String,
    rates: BTreeMap<String, f64>,
}

static FIXTURES: &[Fixture] = fixtures![
    // `GET /v6/latest/EUR` (abridged to the ECB's currencies and a few more).
    Fixture {
        method: "GET",
        path: "/v6/latest/*",
        status: 200,
        body: include_str!("fixtures/exchangerate-api/latest_eur.json"),
    },
];

#[cfg(test)]
mod tests {
    use http::Method;
    use serde_json::json;

    use super::*;
    use crate::providers::test_response;
    use crate::providers::testing::*;

    #[test]
    fn request_is_exact() {
        let r = request("finance.fx_rates", json!({"base": "eur", "symbols": "USD"}));
        let req = ExchangeRateApi.request(&r, &ctx(&ExchangeRateApi)).unwrap();
        assert_eq!(req.method, Method::GET);
        assert_eq!(req.url, "https://open.er-api.com/v6/latest/EUR");
        assert!(req.query.is_empty() && req.headers.is_empty());
        let r = request("finance.fx_rates", json!({"date": "2024-12-13"}));
        let f = ExchangeRateApi
            .request(&r, &ctx(&ExchangeRateApi))
            .unwrap_err();
        assert_eq!(f.class, FailureClass::Unsupported);
    }

    #[test]
    fn fixture_normalises_selected_rates() {
        let body = fixture(&ExchangeRateApi, "/v6/latest/*");
        let r = request(
            "finance.fx_rates",
            json!({"symbols": ["USD", "GBP", "NGN"]}),
        );
        let Data::FxRates(rates) = answer(&ExchangeRateApi, &r, test_response(200, &[], body))
        else {
            panic!("wrong data")
        };
        assert_eq!(rates.base, "EUR");
        assert_eq!(rates.date, "2025-01-15");
        assert_eq!(rates.source.as_deref(), Some("ExchangeRate-API"));
        assert_eq!(
            rates.rates,
            BTreeMap::from([
                ("GBP".to_string(), 0.844786),
                ("NGN".to_string(), 1596.871349),
                ("USD".to_string(), 1.029329),
            ])
        );
        let r = request("finance.fx_rates", json!({}));
        let Data::FxRates(all) = answer(&ExchangeRateApi, &r, test_response(200, &[], body)) else {
            panic!("wrong data")
        };
        assert_eq!(all.rates.len(), 14, "every currency but the base");
    }

    #[test]
    fn error_signals_are_classified() {
        let r = request("finance.fx_rates", json!({"base": "XYZ"}));
        let f = failure(
            &ExchangeRateApi,
            &r,
            test_response(
                404,
                &[],
                r#"{"result":"error","error-type":"unsupported-code"}"#,
            ),
        );
        assert_eq!(f.class, FailureClass::NotFound);
        let f = failure(
            &ExchangeRateApi,
            &r,
            test_response(
                200,
                &[],
                r#"{"result":"error","error-type":"malformed-request"}"#,
            ),
        );
        assert_eq!(f.class, FailureClass::InvalidRequest);
        let f = failure(
            &ExchangeRateApi,
            &r,
            test_response(429, &[], "Too Many Requests"),
        );
        assert_eq!(f.class, FailureClass::RateLimited);
        assert_eq!(f.retry_after, Some(BLOCK_WAIT));
        let f = failure(&ExchangeRateApi, &r, test_response(502, &[], ""));
        assert_eq!(f.class, FailureClass::Transient);
        let f = failure(
            &ExchangeRateApi,
            &r,
            test_response(503, &[], r#"{"result":"error","error-type":"unknown"}"#),
        );
        assert_eq!(f.class, FailureClass::Transient, "an error body on a 5xx");
        let body = fixture(&ExchangeRateApi, "/v6/latest/*");
        let f = failure(&ExchangeRateApi, &r, test_response(200, &[], body));
        assert_eq!(
            f.class,
            FailureClass::MalformedResponse,
            "answer for another base"
        );
        let r = request("finance.fx_rates", json!({"symbols": "XAU"}));
        let f = failure(&ExchangeRateApi, &r, test_response(200, &[], body));
        assert_eq!(f.class, FailureClass::NotFound);
    }

    #[test]
    fn malformed_bodies_never_panic() {
        let body = fixture(&ExchangeRateApi, "/v6/latest/*");
        let r = request("finance.fx_rates", json!({}));
        assert_truncations_are_malformed(&ExchangeRateApi, &r, body);
    }
}
