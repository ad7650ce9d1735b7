//! Frankfurter: `finance.fx_rates` from the European Central Bank's
//! reference rates.
//!
//! Keyless, open source, no published quota. The rates are published on ECB
//! working days, so a weekend date answers with the previous working day's
//! date. Errors are `{"message":"…"}` with 404 (unknown currency or date) or
//! 422 (bad parameters).

use std::collections::BTreeMap;

use serde::Deserialize;

use super::clip;
use crate::capability::finance::{FxQuery, FxRates};
use crate::capability::marker;
use crate::error::ProviderFailure;
use crate::provider::{
    Auth, CallContext, Fixture, HttpRequest, HttpResponse, Provider, ProviderInfo, Serves, Step,
};

/// Frankfurter (<https://frankfurter.dev>): keyless ECB reference rates,
/// latest or historical since 1999.
#[derive(Debug, Clone, Copy, Default)]
pub struct Frankfurter;

static INFO: ProviderInfo = ProviderInfo {
    id: "frankfurter",
    name: "Frankfurter",
    auth: Auth::Keyless,
    base_url: "https://api.frankfurter.dev",
    docs_url: "https://frankfurter.dev",
    terms: "Free and open source, no key and no published quota; ECB reference rates \
            (about 30 currencies), updated on ECB working days.",
    commercial_use: true,
    default_rate_limit: None,
    default_quota: None,
};

impl Provider for Frankfurter {
    fn info(&self) -> &ProviderInfo {
        &INFO
    }

    fn fixtures(&self) -> &'static [Fixture] {
        FIXTURES
    }
}

crate::serves!(Frankfurter: FxRates);

impl Serves<marker::FxRates> for Frankfurter {
    fn build_request(
        &self,
        q: &FxQuery,
        ctx: &CallContext<'_>,
    ) -> Result<HttpRequest, ProviderFailure> {
        let path = match q.date {
            Some(date) => format!("/v1/{}", date.format("%Y-%m-%d")),
            None => "/v1/latest".to_string(),
        };
        let req = HttpRequest::get(ctx.base_url, &path).query("base", q.base.as_str());
        Ok(if q.symbols.is_empty() {
            req
        } else {
            let symbols: Vec<&str> = q.symbols.iter().map(|c| c.as_str()).collect();
            req.query("symbols", symbols.join(","))
        })
    }

    fn read_response(
        &self,
        q: &FxQuery,
        _ctx: &CallContext<'_>,
        response: HttpResponse,
    ) -> Result<Step<FxRates>, ProviderFailure> {
        response.check_status().map_err(|mut failure| {
            if let Ok(ErrorReply { message }) = serde_json::from_slice(&response.body) {
                failure.message = format!("Frankfurter: {}", clip(&message));
            }
            failure
        })?;
        let reply: Reply = response.json()?;
        if !reply.base.eq_ignore_ascii_case(q.base.as_str()) {
            return Err(ProviderFailure::malformed(format!(
                "Frankfurter answered for base {:?}, not {}",
                reply.base,
                q.base.as_str()
            ))
            .status(response.status));
        }
        let rates = FxRates {
            base: q.base.as_str().to_string(),
            date: reply.date,
            rates: reply.rates,
            source: Some("ECB".to_string()),
        }
        .select(q)
        .map_err(|f| f.status(response.status))?;
        Ok(Step::Done(rates))
    }
}

#[derive(Deserialize)]
struct ErrorReply {
    message: String,
}

#[derive(Deserialize)]
struct Reply {
    base: String,
    date: String,
    rates: BTreeMap<String, f64>,
}

static FIXTURES: &[Fixture] = fixtures![
    // `GET /v1/latest?base=EUR` (every currency).
    Fixture {
        method: "GET",
        path: "/v1/latest",
        status: 200,
        body: include_str!("fixtures/frankfurter/latest_eur.json"),
    },
    // `GET /v1/2024-12-14?base=EUR&symbols=GBP,USD`: a Saturday, answered with
    // Friday's rates.
    Fixture {
        method: "GET",
        path: "/v1/*",
        status: 200,
        body: include_str!("fixtures/frankfurter/historical_eur.json"),
    },
];

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use http::Method;
    use serde_json::json;

    use super::*;
    use crate::error::FailureClass;
    use crate::providers::test_response;
    use crate::providers::testing::*;

    #[test]
    fn requests_are_exact() {
        let r = request(
            "finance.fx_rates",
            json!({"base": "usd", "symbols": "gbp,EUR"}),
        );
        let req = Frankfurter.request(&r, &ctx(&Frankfurter)).unwrap();
        assert_eq!(req.method, Method::GET);
        assert_eq!(req.url, "https://api.frankfurter.dev/v1/latest");
        assert_eq!(query(&req), [("base", "USD"), ("symbols", "EUR,GBP")]);
        assert!(req.headers.is_empty());

        let r = request("finance.fx_rates", json!({"date": "2024-12-14"}));
        let req = Frankfurter.request(&r, &ctx(&Frankfurter)).unwrap();
        assert_eq!(req.url, "https://api.frankfurter.dev/v1/2024-12-14");
        assert_eq!(query(&req), [("base", "EUR")]);

        let r = request("weather.current", json!({"lat": 1, "lon": 2}));
        let err = Frankfurter.request(&r, &ctx(&Frankfurter)).unwrap_err();
        assert_eq!(err.class, FailureClass::Unsupported);
    }

    #[test]
    fn fixture_normalises_selected_rates() {
        let r = request(
            "finance.fx_rates",
            json!({"base": "EUR", "symbols": ["USD", "GBP"]}),
        );
        let body = fixture(&Frankfurter, "/v1/latest");
        let Data::FxRates(rates) = answer(&Frankfurter, &r, test_response(200, &[], body)) else {
            panic!("wrong data")
        };
        assert_eq!(rates.base, "EUR");
        assert_eq!(rates.date, "2025-01-15");
        assert_eq!(rates.source.as_deref(), Some("ECB"));
        assert_eq!(
            rates.rates,
            BTreeMap::from([("GBP".to_string(), 0.84503), ("USD".to_string(), 1.0293)])
        );
    }

    #[test]
    fn fixture_normalises_all_rates_and_history() {
        let r = request("finance.fx_rates", json!({}));
        let body = fixture(&Frankfurter, "/v1/latest");
        let Data::FxRates(rates) = answer(&Frankfurter, &r, test_response(200, &[], body)) else {
            panic!("wrong data")
        };
        assert_eq!(rates.rates.len(), 30);
        assert_eq!(rates.rates["JPY"], 161.97);
        assert_eq!(rates.rates["IDR"], 16793.0);
        assert!(!rates.rates.contains_key("EUR"));

        let r = request(
            "finance.fx_rates",
            json!({"date": "2024-12-14", "symbols": "USD"}),
        );
        let body = fixture(&Frankfurter, "/v1/*");
        let Data::FxRates(rates) = answer(&Frankfurter, &r, test_response(200, &[], body)) else {
            panic!("wrong data")
        };
        assert_eq!(rates.date, "2024-12-13");
        assert_eq!(rates.rates, BTreeMap::from([("USD".to_string(), 1.0478)]));
    }

    #[test]
    fn a_missing_symbol_is_not_found_and_a_wrong_base_is_malformed() {
        let body = fixture(&Frankfurter, "/v1/latest");
        let r = request("finance.fx_rates", json!({"symbols": "USD,XAU"}));
        let f = failure(&Frankfurter, &r, test_response(200, &[], body));
        assert_eq!(f.class, FailureClass::NotFound);
        assert!(f.message.contains("XAU"), "{}", f.message);

        let r = request("finance.fx_rates", json!({"base": "USD"}));
        let f = failure(&Frankfurter, &r, test_response(200, &[], body));
        assert_eq!(f.class, FailureClass::MalformedResponse);
    }

    #[test]
    fn error_signals_are_classified() {
        let r = request("finance.fx_rates", json!({"base": "XYZ"}));
        let f = failure(
            &Frankfurter,
            &r,
            test_response(404, &[], r#"{"message":"not found"}"#),
        );
        assert_eq!(f.class, FailureClass::NotFound);
        assert_eq!(f.message, "Frankfurter: not found");

        let f = failure(
            &Frankfurter,
            &r,
            test_response(422, &[], r#"{"message":"invalid date"}"#),
        );
        assert_eq!(f.class, FailureClass::InvalidRequest);
        assert_eq!(f.status, Some(422));

        let f = failure(
            &Frankfurter,
            &r,
            test_response(429, &[("retry-after", "30")], "Too Many Requests"),
        );
        assert_eq!(f.class, FailureClass::RateLimited);
        assert_eq!(f.retry_after, Some(Duration::from_secs(30)));

        let f = failure(
            &Frankfurter,
            &r,
            test_response(502, &[], "<html>bad gateway</html>"),
        );
        assert_eq!(f.class, FailureClass::Transient);
    }

    #[test]
    fn malformed_bodies_never_panic() {
        let body = fixture(&Frankfurter, "/v1/latest");
        for r in [
            request("finance.fx_rates", json!({})),
            request("finance.fx_rates", json!({"symbols": "USD"})),
        ] {
            assert_truncations_are_malformed(&Frankfurter, &r, body);
            // A number sent as a numeric string is read as the number (#13,
            // provider/tolerant.rs): the answer does not change.
            let drifted = body.replace("1.0293", "\"1.0293\"");
            assert_eq!(
                answer(&Frankfurter, &r, test_response(200, &[], &drifted)),
                answer(&Frankfurter, &r, test_response(200, &[], body))
            );
        }
    }
}
