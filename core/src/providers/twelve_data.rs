//! Twelve Data `quote`: `finance.quote` with name, exchange and currency.
//!
//! Needs a free key (`TWELVE_DATA_API_KEY`), sent by the pipeline as
//! `Authorization: apikey …`. The Basic plan has 8 API credits per minute
//! and 800 per day, one credit per symbol. Numbers come as strings.
//!
//! **Errors arrive inside HTTP 200 bodies** as
//! `{"code":429,"message":"…","status":"error"}`, so the body is checked
//! before anything else. `code` 429 means out of credits: "for the current
//! minute" is `RateLimited` (wait for the next minute), "for the day" is
//! `QuotaExhausted` until midnight UTC. 401 is a bad key, 403 a symbol the
//! plan does not cover (`Unsupported`), 404 an unknown symbol, 400 bad
//! parameters, 5xx the provider's own trouble.

use chrono::DateTime;
use serde::Deserialize;

use super::wire::{flexible_f64_opt, next_utc_midnight};
use super::{clip, utc_text};
use crate::capability::finance::{StockQuery, StockQuote};
use crate::capability::marker;
use crate::error::{FailureClass, ProviderFailure};
use crate::provider::{
    Auth, CallContext, Fixture, HttpRequest, HttpResponse, KeyPlacement, Provider, ProviderInfo,
    Quota, Serves, Step,
};

/// Twelve Data (<https://twelvedata.com>): stock quotes with a free key.
#[derive(Debug, Clone, Copy, Default)]
pub struct TwelveData;

static INFO: ProviderInfo = ProviderInfo {
    id: "twelve-data",
    name: "Twelve Data",
    auth: Auth::Key {
        env: "TWELVE_DATA_API_KEY",
        placement: KeyPlacement::Header {
            name: "Authorization",
            prefix: "apikey ",
        },
        optional: false,
    },
    base_url: "https://api.twelvedata.com",
    docs_url: "https://twelvedata.com/docs#quote",
    terms: "Free Basic plan: 8 API credits/min and 800/day (one credit per symbol); \
            US markets on the free plan.",
    commercial_use: true,
    default_rate_limit: Some("8/min"),
    default_quota: Some(Quota::per_day(800)),
};

impl Provider for TwelveData {
    fn info(&self) -> &ProviderInfo {
        &INFO
    }

    fn fixtures(&self) -> &'static [Fixture] {
        FIXTURES
    }
}

crate::serves!(TwelveData: StockQuote);

impl Serves<marker::StockQuote> for TwelveData {
    fn build_request(
        &self,
        q: &StockQuery,
        ctx: &CallContext<'_>,
    ) -> Result<HttpRequest, ProviderFailure> {
        Ok(HttpRequest::get(ctx.base_url, "/quote").query("symbol", q.symbol.as_str()))
    }

    fn read_response(
        &self,
        q: &StockQuery,
        _ctx: &CallContext<'_>,
        response: HttpResponse,
    ) -> Result<Step<StockQuote>, ProviderFailure> {
        // The error envelope, in a 200 or an error status alike.
        if let Ok(error) = serde_json::from_slice::<ErrorReply>(&response.body) {
            if error.status == "error" {
                return Err(classify(&response, error.code, &error.message));
            }
        }
        response.check_status()?;
        let quote: Quote = response.json()?;
        // `timestamp` is the opening of the day's bar, not the time of the
        // price: no stand-in for `last_quote_at` (issue #13).
        let as_of = quote
            .last_quote_at
            .and_then(|secs| DateTime::from_timestamp(secs, 0))
            .ok_or_else(|| {
                ProviderFailure::malformed("Twelve Data quote without `last_quote_at`")
                    .status(response.status)
            })?;
        let close = quote.close.ok_or_else(|| {
            ProviderFailure::malformed("Twelve Data quote without `close`").status(response.status)
        })?;
        let mut out = StockQuote::new(&q.symbol, close, utc_text(as_of));
        out.name = quote.name;
        out.exchange = quote.exchange;
        out.currency = quote.currency.map(|c| c.to_ascii_uppercase());
        out.open = quote.open;
        out.high = quote.high;
        out.low = quote.low;
        out.previous_close = quote.previous_close;
        out.change = quote.change;
        out.change_pct = quote.percent_change;
        out.volume = quote.volume;
        out.market_open = quote.is_market_open;
        Ok(Step::Done(out))
    }
}

/// The class of a Twelve Data error `code` (their codes mirror HTTP).
fn classify(response: &HttpResponse, code: u16, message: &str) -> ProviderFailure {
    let text = format!("Twelve Data: {}", clip(message));
    let lower = message.to_ascii_lowercase();
    let class = match code {
        429 if lower.contains("for the day") => {
            return ProviderFailure::new(FailureClass::QuotaExhausted, text)
                .status(response.status)
                .reset_at(next_utc_midnight(response.received_at));
        }
        429 => {
            let wait = response
                .retry_after()
                .unwrap_or(std::time::Duration::from_secs(60));
            return ProviderFailure::new(FailureClass::RateLimited, text)
                .status(response.status)
                .retry_after(Some(wait));
        }
        401 => FailureClass::Auth,
        403 => FailureClass::Unsupported,
        404 => FailureClass::NotFound,
        500..=599 => FailureClass::Transient,
        _ => FailureClass::InvalidRequest,
    };
    response.failure(class, text)
}

#[derive(Deserialize)]
struct ErrorReply {
    code: u16,
    message: String,
    status: String,
}

#[derive(Deserialize)]
struct Quote {
    name: Option<String>,
    exchange: Option<String>,
    currency: Option<String>,
    last_quote_at: Option<i64>,
    #[serde(default, deserialize_with = "flexible_f64_opt")]
    open: Option<f64>,
    #[serde(default, deserialize_with = "flexible_f64_opt")]
    high: Option<f64>,
    #[serde(default, deserialize_with = "flexible_f64_opt")]
    low: Option<f64>,
    #[serde(default, deserialize_with = "flexible_f64_opt")]
    close: Option<f64>,
    #[serde(default, deserialize_with = "flexible_f64_opt")]
    volume: Option<f64>,
    #[serde(default, deserialize_with = "flexible_f64_opt")]
    previous_close: Option<f64>,
    #[serde(default, deserialize_with = "flexible_f64_opt")]
    change: Option<f64>,
    #[serde(default, deserialize_with = "flexible_f64_opt")]
    percent_change: Option<f64>,
    is_market_open: Option<bool>,
}

static FIXTURES: &[Fixture] = fixtures![
    // `GET /quote?symbol=AAPL`.
    Fixture {
        method: "GET",
        path: "/quote",
        status: 200,
        body: include_str!("fixtures/twelve-data/aapl.json"),
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

    fn aapl() -> Request {
        request("finance.quote", json!({"symbol": "AAPL"}))
    }

    fn error_body(code: u16, message: &str) -> String {
        json!({"code": code, "message": message, "status": "error"}).to_string()
    }

    #[test]
    fn request_is_exact_and_the_key_goes_in_a_header() {
        let req = TwelveData.request(&aapl(), &ctx(&TwelveData)).unwrap();
        assert_eq!(req.method, Method::GET);
        assert_eq!(req.url, "https://api.twelvedata.com/quote");
        assert_eq!(query(&req), [("symbol", "AAPL")]);
        assert!(req.headers.is_empty());
        assert!(matches!(
            TwelveData.info().auth,
            Auth::Key {
                placement: KeyPlacement::Header {
                    name: "Authorization",
                    prefix: "apikey "
                },
                optional: false,
                ..
            }
        ));
    }

    #[test]
    fn fixture_normalises_string_numbers() {
        let body = fixture(&TwelveData, "/quote");
        let Data::StockQuote(q) = answer(&TwelveData, &aapl(), test_response(200, &[], body))
        else {
            panic!("wrong data")
        };
        assert_eq!(q.name.as_deref(), Some("Apple Inc."));
        assert_eq!(q.exchange.as_deref(), Some("NASDAQ"));
        assert_eq!(q.currency.as_deref(), Some("USD"));
        assert_eq!(q.price, 237.87);
        assert_eq!(q.open, Some(234.64));
        assert_eq!(q.previous_close, Some(233.28));
        assert_eq!(q.change_pct, Some(1.96759));
        assert_eq!(q.volume, Some(39_832_000.0));
        assert_eq!(q.market_open, Some(false));
        assert_eq!(q.as_of, "2025-01-15T21:00:00Z");
    }

    #[test]
    fn errors_inside_200_bodies_are_classified() {
        let r = aapl();
        let minute = error_body(429, "You have run out of API credits for the current minute. 9 API credits were used, with the current limit being 8. Wait for the next minute or consider switching to a higher tier plan at https://twelvedata.com/pricing");
        let f = failure(&TwelveData, &r, test_response(200, &[], &minute));
        assert_eq!(f.class, FailureClass::RateLimited);
        assert_eq!(f.status, Some(200));
        assert_eq!(f.retry_after, Some(Duration::from_secs(60)));

        let day = error_body(429, "You have run out of API credits for the day. 801 API credits were used, with the current limit being 800.");
        let f = failure(&TwelveData, &r, test_response(200, &[], &day));
        assert_eq!(f.class, FailureClass::QuotaExhausted);
        assert_eq!(f.reset_at, Some("2025-01-16T00:00:00Z".parse().unwrap()));

        let cases = [
            (
                401,
                "**apikey** parameter is incorrect or not specified.",
                FailureClass::Auth,
            ),
            (
                403,
                "**symbol** SAP is available starting with Grow plan.",
                FailureClass::Unsupported,
            ),
            (404, "**symbol** not found: ZZZZ.", FailureClass::NotFound),
            (
                400,
                "**symbol** parameter is missing.",
                FailureClass::InvalidRequest,
            ),
            (500, "Internal error", FailureClass::Transient),
        ];
        for (code, message, class) in cases {
            let f = failure(
                &TwelveData,
                &r,
                test_response(200, &[], &error_body(code, message)),
            );
            assert_eq!(f.class, class, "{code}");
            assert!(f.message.starts_with("Twelve Data: "), "{}", f.message);
        }
        // The same envelope with a real error status.
        let f = failure(
            &TwelveData,
            &r,
            test_response(401, &[], &error_body(401, "bad key")),
        );
        assert_eq!(f.class, FailureClass::Auth);
        let f = failure(
            &TwelveData,
            &r,
            test_response(503, &[], "<html>down</html>"),
        );
        assert_eq!(f.class, FailureClass::Transient);
    }

    #[test]
    fn malformed_bodies_never_panic() {
        let body = fixture(&TwelveData, "/quote");
        assert_truncations_are_malformed(&TwelveData, &aapl(), body);
        let bad = body.replace("\"237.87000\"", "\"n/a\"");
        let f = failure(&TwelveData, &aapl(), test_response(200, &[], &bad));
        assert_eq!(f.class, FailureClass::MalformedResponse);
    }
}
