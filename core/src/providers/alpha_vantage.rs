//! Alpha Vantage `GLOBAL_QUOTE`: `finance.quote`, end of day or delayed.
//!
//! Needs a free key (`ALPHA_VANTAGE_API_KEY`). Alpha Vantage reads it only
//! from the query string (`apikey=`), so that is where the pipeline puts
//! it. The free key allows 25 requests per day (the default daily quota).
//! Numbers are strings, the change percent carries a `%`, and the time is
//! only the latest trading day.
//!
//! **Errors arrive inside HTTP 200 bodies**, as one-key objects:
//! * `{"Information": "…rate limit is 25 requests per day…"}`: the daily
//!   quota is used up (`QuotaExhausted`);
//! * `{"Information": "…premium endpoint…"}`: not on the free plan
//!   (`Unsupported`);
//! * `{"Information": "…demo API key…"}` or an `"Error Message"` about the
//!   `apikey`: a bad key (`Auth`);
//! * `{"Note": "…call frequency…"}` (and per-second / burst messages):
//!   throttled (`RateLimited`, one minute);
//! * any other `"Error Message"`: bad parameters (`InvalidRequest`).
//!
//! An unknown symbol answers `{"Global Quote": {}}` (`NotFound`).

use std::collections::HashMap;
use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;

use super::clip;
use super::wire::number_of;
use crate::capability::finance::{StockQuery, StockQuote};
use crate::capability::marker;
use crate::error::{FailureClass, ProviderFailure};
use crate::provider::{
    Auth, CallContext, Fixture, HttpRequest, HttpResponse, KeyPlacement, Provider, ProviderInfo,
    Quota, Serves, Step,
};

/// Alpha Vantage (<https://www.alphavantage.co>): stock quotes with a free
/// key, 25 requests a day.
#[derive(Debug, Clone, Copy, Default)]
pub struct AlphaVantage;

static INFO: ProviderInfo = ProviderInfo {
    id: "alpha-vantage",
    name: "Alpha Vantage",
    auth: Auth::Key {
        env: "ALPHA_VANTAGE_API_KEY",
        // Alpha Vantage accepts the key only as a query parameter.
        placement: KeyPlacement::Query { param: "apikey" },
        optional: false,
    },
    base_url: "https://www.alphavantage.co",
    docs_url: "https://www.alphavantage.co/documentation/#latestprice",
    terms: "Free key: 25 requests/day; quotes are end of day or delayed on the free plan.",
    commercial_use: true,
    default_rate_limit: None,
    default_quota: Some(Quota::per_day(25)),
};

impl Provider for AlphaVantage {
    fn info(&self) -> &ProviderInfo {
        &INFO
    }

    fn fixtures(&self) -> &'static [Fixture] {
        FIXTURES
    }
}

crate::serves!(AlphaVantage: StockQuote);

impl Serves<marker::StockQuote> for AlphaVantage {
    fn build_request(
        &self,
        q: &StockQuery,
        ctx: &CallContext<'_>,
    ) -> Result<HttpRequest, ProviderFailure> {
        Ok(HttpRequest::get(ctx.base_url, "/query")
            .query("function", "GLOBAL_QUOTE")
            .query("symbol", q.symbol.as_str()))
    }

    fn read_response(
        &self,
        q: &StockQuery,
        _ctx: &CallContext<'_>,
        response: HttpResponse,
    ) -> Result<Step<StockQuote>, ProviderFailure> {
        response.check_status()?;
        let reply: Reply = response.json()?;
        if let Some(failure) = reply.failure(&response) {
            return Err(failure);
        }
        let fields = reply.quote.ok_or_else(|| {
            ProviderFailure::malformed("Alpha Vantage reply without \"Global Quote\"")
                .status(response.status)
        })?;
        if fields.is_empty() {
            return Err(response.failure(
                FailureClass::NotFound,
                format!("Alpha Vantage has no quote for {}", q.symbol),
            ));
        }
        let text = |name: &str| match fields.get(name)? {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        };
        let field = |name: &str| fields.get(name).and_then(number_of);
        let malformed = |what: &str| {
            ProviderFailure::malformed(format!("Alpha Vantage quote without `{what}`"))
                .status(response.status)
        };
        let price = field("05. price").ok_or_else(|| malformed("05. price"))?;
        let day = text("07. latest trading day")
            .filter(|d| chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d").is_ok())
            .ok_or_else(|| malformed("07. latest trading day"))?;
        let mut quote = StockQuote::new(&q.symbol, price, day);
        quote.open = field("02. open");
        quote.high = field("03. high");
        quote.low = field("04. low");
        quote.volume = field("06. volume");
        quote.previous_close = field("08. previous close");
        quote.change = field("09. change");
        quote.change_pct = field("10. change percent");
        Ok(Step::Done(quote))
    }
}

#[derive(Deserialize)]
struct Reply {
    #[serde(rename = "Global Quote")]
    /// Text by field name; a field of another kind is ignored (issue #13).
    quote: Option<HashMap<String, Value>>,
    #[serde(rename = "Information")]
    information: Option<String>,
    #[serde(rename = "Note")]
    note: Option<String>,
    #[serde(rename = "Error Message")]
    error: Option<String>,
}

impl Reply {
    /// The failure an in-body message stands for, if any.
    fn failure(&self, response: &HttpResponse) -> Option<ProviderFailure> {
        let throttled = |text: &str| {
            response
                .failure(
                    FailureClass::RateLimited,
                    format!("Alpha Vantage: {}", clip(text)),
                )
                .retry_after(Some(Duration::from_secs(60)))
        };
        let (text, class) = match (&self.error, &self.information, &self.note) {
            (Some(error), _, _) if mentions_key(error) => (error, FailureClass::Auth),
            (Some(error), _, _) => (error, FailureClass::InvalidRequest),
            (None, Some(info), _) => {
                let lower = info.to_ascii_lowercase();
                let class = if lower.contains("per day") {
                    FailureClass::QuotaExhausted
                } else if lower.contains("premium endpoint") {
                    FailureClass::Unsupported
                } else if mentions_key(info) {
                    FailureClass::Auth
                } else {
                    return Some(throttled(info));
                };
                (info, class)
            }
            // `Note` is the call-frequency message.
            (None, None, Some(note)) => return Some(throttled(note)),
            (None, None, None) => return None,
        };
        Some(response.failure(class, format!("Alpha Vantage: {}", clip(text))))
    }
}

fn mentions_key(text: &str) -> bool {
    let lower = text.to_ascii_lowercase();
    lower.contains("apikey") || lower.contains("api key")
}

static FIXTURES: &[Fixture] = fixtures![
    // `GET /query?function=GLOBAL_QUOTE&symbol=IBM`.
    Fixture {
        method: "GET",
        path: "/query",
        status: 200,
        body: include_str!("fixtures/alpha-vantage/ibm.json"),
    },
];

#[cfg(test)]
mod tests {
    use http::Method;
    use serde_json::json;

    use super::*;
    use crate::providers::test_response;
    use crate::providers::testing::*;

    fn ibm() -> Request {
        request("finance.quote", json!({"symbol": "IBM"}))
    }

    fn body_failure(key: &str, text: &str) -> ProviderFailure {
        let body = json!({ key: text }).to_string();
        failure(&AlphaVantage, &ibm(), test_response(200, &[], &body))
    }

    #[test]
    fn request_is_exact_and_the_key_is_declared_for_the_query() {
        let req = AlphaVantage.request(&ibm(), &ctx(&AlphaVantage)).unwrap();
        assert_eq!(req.method, Method::GET);
        assert_eq!(req.url, "https://www.alphavantage.co/query");
        assert_eq!(
            query(&req),
            [("function", "GLOBAL_QUOTE"), ("symbol", "IBM")]
        );
        assert!(req.headers.is_empty());
        assert!(matches!(
            AlphaVantage.info().auth,
            Auth::Key {
                placement: KeyPlacement::Query { param: "apikey" },
                ..
            }
        ));
    }

    #[test]
    fn fixture_normalises_the_numbered_fields() {
        let body = fixture(&AlphaVantage, "/query");
        let Data::StockQuote(q) = answer(&AlphaVantage, &ibm(), test_response(200, &[], body))
        else {
            panic!("wrong data")
        };
        assert_eq!(q.price, 222.64);
        assert_eq!(q.open, Some(221.82));
        assert_eq!(q.high, Some(222.99));
        assert_eq!(q.volume, Some(3_347_618.0));
        assert_eq!(q.previous_close, Some(219.97));
        assert_eq!(q.change, Some(2.67));
        assert_eq!(q.change_pct, Some(1.2138), "the % is stripped");
        assert_eq!(q.as_of, "2025-01-15");
        assert_eq!(q.name, None);
    }

    #[test]
    fn errors_inside_200_bodies_are_classified() {
        let f = body_failure("Information", "Thank you for using Alpha Vantage! Our standard API rate limit is 25 requests per day. Please subscribe to any of the premium plans at https://www.alphavantage.co/premium/ to instantly remove all daily rate limits.");
        assert_eq!(f.class, FailureClass::QuotaExhausted);
        assert_eq!(f.status, Some(200));

        let f = body_failure("Information", "Thank you for using Alpha Vantage! This is a premium endpoint. You may subscribe to any of the premium plans at https://www.alphavantage.co/premium/ to instantly unlock all premium endpoints");
        assert_eq!(f.class, FailureClass::Unsupported);

        let f = body_failure("Information", "The **demo** API key is for demo purposes only. Please claim your free API key at (https://www.alphavantage.co/support/#api-key) to explore our full API offerings.");
        assert_eq!(f.class, FailureClass::Auth);

        let f = body_failure("Note", "Thank you for using Alpha Vantage! Our standard API call frequency is 5 calls per minute and 500 calls per day. Please visit https://www.alphavantage.co/premium/ if you would like to target a higher API call frequency.");
        assert_eq!(f.class, FailureClass::RateLimited);
        assert_eq!(f.retry_after, Some(Duration::from_secs(60)));
        let f = body_failure("Information", "Burst pattern detected: please consider spreading out your free API requests more sparingly (1 request per second limit).");
        assert_eq!(f.class, FailureClass::RateLimited);
        assert_eq!(f.retry_after, Some(Duration::from_secs(60)));

        let f = body_failure("Error Message", "the parameter apikey is invalid or missing. Please claim your free API key on (https://www.alphavantage.co/support/#api-key).");
        assert_eq!(f.class, FailureClass::Auth);
        let f = body_failure("Error Message", "Invalid API call. Please retry or visit the documentation (https://www.alphavantage.co/documentation/) for GLOBAL_QUOTE.");
        assert_eq!(f.class, FailureClass::InvalidRequest);
        assert!(
            f.message.starts_with("Alpha Vantage: Invalid API call"),
            "{}",
            f.message
        );

        let f = failure(
            &AlphaVantage,
            &ibm(),
            test_response(200, &[], r#"{"Global Quote": {}}"#),
        );
        assert_eq!(f.class, FailureClass::NotFound);
        let f = failure(&AlphaVantage, &ibm(), test_response(503, &[], "down"));
        assert_eq!(f.class, FailureClass::Transient);
    }

    #[test]
    fn malformed_bodies_never_panic() {
        let body = fixture(&AlphaVantage, "/query");
        assert_truncations_are_malformed(&AlphaVantage, &ibm(), body);
        let f = failure(&AlphaVantage, &ibm(), test_response(200, &[], "{}"));
        assert_eq!(f.class, FailureClass::MalformedResponse);
        let bad = body.replace("\"222.6400\"", "\"-\"");
        let f = failure(&AlphaVantage, &ibm(), test_response(200, &[], &bad));
        assert_eq!(f.class, FailureClass::MalformedResponse);
    }
}
