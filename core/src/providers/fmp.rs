//! Financial Modeling Prep `stable/quote`: `finance.quote` with name,
//! exchange, volume and market cap.
//!
//! Needs a free key (`FMP_API_KEY`), read from the query string
//! (`apikey=`). The free Basic plan allows 250 requests per day (the
//! default daily quota). FMP spells share classes with a dash (`BRK-B`),
//! so the symbol is mapped ([`StockQuery::dashed_symbol`]).
//!
//! The reply is an array with one quote; an unknown symbol is `[]`
//! (`NotFound`). Errors are `{"Error Message": "…"}`, with 401 for a bad key,
//! 402/403 for premium symbols and endpoints, 429 "Limit Reach" for the
//! used-up daily quota; older deployments send the same bodies with 200, so
//! the text decides.
//!
//! [`StockQuery::dashed_symbol`]: crate::capability::finance::StockQuery::dashed_symbol

use chrono::DateTime;
use serde::Deserialize;

use super::{clip, utc_text};
use crate::capability::finance::{StockQuery, StockQuote};
use crate::capability::marker;
use crate::error::{FailureClass, ProviderFailure};
use crate::provider::{
    Auth, CallContext, Fixture, HttpRequest, HttpResponse, KeyPlacement, Provider, ProviderInfo,
    Quota, Serves, Step,
};

/// Financial Modeling Prep (<https://site.financialmodelingprep.com>):
/// stock quotes with a free key, 250 requests a day.
#[derive(Debug, Clone, Copy, Default)]
pub struct Fmp;

static INFO: ProviderInfo = ProviderInfo {
    id: "fmp",
    name: "Financial Modeling Prep",
    auth: Auth::Key {
        env: "FMP_API_KEY",
        placement: KeyPlacement::Query { param: "apikey" },
        optional: false,
    },
    base_url: "https://financialmodelingprep.com",
    docs_url: "https://site.financialmodelingprep.com/developer/docs/stable/quote",
    terms: "Free Basic plan: 250 requests/day, US symbols, end-of-day or delayed data.",
    commercial_use: true,
    default_rate_limit: None,
    default_quota: Some(Quota::per_day(250)),
};

impl Provider for Fmp {
    fn info(&self) -> &ProviderInfo {
        &INFO
    }

    fn fixtures(&self) -> &'static [Fixture] {
        FIXTURES
    }
}

crate::serves!(Fmp: StockQuote);

impl Serves<marker::StockQuote> for Fmp {
    fn build_request(
        &self,
        q: &StockQuery,
        ctx: &CallContext<'_>,
    ) -> Result<HttpRequest, ProviderFailure> {
        Ok(HttpRequest::get(ctx.base_url, "/stable/quote").query("symbol", q.dashed_symbol()))
    }

    fn read_response(
        &self,
        q: &StockQuery,
        _ctx: &CallContext<'_>,
        response: HttpResponse,
    ) -> Result<Step<StockQuote>, ProviderFailure> {
        if let Ok(ErrorReply { message }) = serde_json::from_slice(&response.body) {
            return Err(classify(&response, &message));
        }
        response.check_status()?;
        let quotes: Vec<Quote> = response.json()?;
        let Some(quote) = quotes.into_iter().next() else {
            return Err(response.failure(
                FailureClass::NotFound,
                format!("FMP has no quote for {}", q.symbol),
            ));
        };
        let as_of = DateTime::from_timestamp(quote.timestamp, 0).ok_or_else(|| {
            ProviderFailure::malformed("FMP quote with an impossible timestamp")
                .status(response.status)
        })?;
        let mut out = StockQuote::new(&q.symbol, quote.price, utc_text(as_of));
        out.name = quote.name;
        out.exchange = quote.exchange;
        out.open = quote.open;
        out.high = quote.day_high;
        out.low = quote.day_low;
        out.previous_close = quote.previous_close;
        out.change = quote.change;
        out.change_pct = quote.change_percentage;
        out.volume = quote.volume;
        Ok(Step::Done(out))
    }
}

fn classify(response: &HttpResponse, message: &str) -> ProviderFailure {
    let lower = message.to_ascii_lowercase();
    let class = if lower.contains("limit reach") {
        FailureClass::QuotaExhausted
    } else if lower.contains("api key") {
        FailureClass::Auth
    } else if lower.contains("premium")
        || lower.contains("exclusive")
        || lower.contains("special endpoint")
    {
        FailureClass::Unsupported
    } else {
        response
            .status_class()
            .unwrap_or(FailureClass::InvalidRequest)
    };
    response.failure(class, format!("FMP: {}", clip(message)))
}

#[derive(Deserialize)]
struct ErrorReply {
    #[serde(rename = "Error Message")]
    message: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Quote {
    name: Option<String>,
    price: f64,
    change_percentage: Option<f64>,
    change: Option<f64>,
    volume: Option<f64>,
    day_low: Option<f64>,
    day_high: Option<f64>,
    exchange: Option<String>,
    open: Option<f64>,
    previous_close: Option<f64>,
    timestamp: i64,
}

static FIXTURES: &[Fixture] = fixtures![
    // `GET /stable/quote?symbol=AAPL`.
    Fixture {
        method: "GET",
        path: "/stable/quote",
        status: 200,
        body: include_str!("fixtures/fmp/aapl.json"),
    },
];

#[cfg(test)]
mod tests {
    use http::Method;
    use serde_json::json;

    use super::*;
    use crate::providers::test_response;
    use crate::providers::testing::*;

    fn aapl() -> Request {
        request("finance.quote", json!({"symbol": "AAPL"}))
    }

    #[test]
    fn request_is_exact_with_the_dashed_share_class() {
        let req = Fmp.request(&aapl(), &ctx(&Fmp)).unwrap();
        assert_eq!(req.method, Method::GET);
        assert_eq!(req.url, "https://financialmodelingprep.com/stable/quote");
        assert_eq!(query(&req), [("symbol", "AAPL")]);
        assert!(req.headers.is_empty());
        let r = request("finance.quote", json!({"symbol": "brk.b"}));
        assert_eq!(
            query(&Fmp.request(&r, &ctx(&Fmp)).unwrap()),
            [("symbol", "BRK-B")]
        );
        let r = request("finance.quote", json!({"symbol": "VOD.L"}));
        assert_eq!(
            query(&Fmp.request(&r, &ctx(&Fmp)).unwrap()),
            [("symbol", "VOD.L")]
        );
        assert!(matches!(
            Fmp.info().auth,
            Auth::Key {
                placement: KeyPlacement::Query { param: "apikey" },
                ..
            }
        ));
    }

    #[test]
    fn fixture_normalises_the_quote() {
        let body = fixture(&Fmp, "/stable/quote");
        let Data::StockQuote(q) = answer(&Fmp, &aapl(), test_response(200, &[], body)) else {
            panic!("wrong data")
        };
        assert_eq!(q.name.as_deref(), Some("Apple Inc."));
        assert_eq!(q.exchange.as_deref(), Some("NASDAQ"));
        assert_eq!(q.price, 268.47);
        assert_eq!((q.low, q.high), (Some(266.82), Some(272.29)));
        assert_eq!(q.change_pct, Some(-0.48189));
        assert_eq!(q.volume, Some(45_140_079.0));
        assert_eq!(q.as_of, "2025-11-07T21:00:02Z");
    }

    #[test]
    fn error_signals_are_classified() {
        let cases = [
            (401, "Invalid API KEY. Feel free to create a Free API Key.", FailureClass::Auth),
            (429, "Limit Reach . Please upgrade your plan or visit our documentation for more details at https://site.financialmodelingprep.com/developer/docs/pricing ", FailureClass::QuotaExhausted),
            (402, "Premium Query Parameter: 'symbol' is not available on your plan.", FailureClass::Unsupported),
            (403, "Exclusive Endpoint : This endpoint is not available under your current subscription.", FailureClass::Unsupported),
            (200, "Limit Reach . Please upgrade your plan.", FailureClass::QuotaExhausted),
            (400, "Invalid parameters.", FailureClass::InvalidRequest),
        ];
        for (status, message, class) in cases {
            let body = json!({"Error Message": message}).to_string();
            let f = failure(&Fmp, &aapl(), test_response(status, &[], &body));
            assert_eq!(f.class, class, "{status} {message}");
            assert!(f.message.starts_with("FMP: "), "{}", f.message);
        }
        let f = failure(&Fmp, &aapl(), test_response(200, &[], "[]"));
        assert_eq!(f.class, FailureClass::NotFound);
        let f = failure(&Fmp, &aapl(), test_response(500, &[], ""));
        assert_eq!(f.class, FailureClass::Transient);
    }

    #[test]
    fn malformed_bodies_never_panic() {
        let body = fixture(&Fmp, "/stable/quote");
        assert_cuts_of_a_list_are_malformed(&Fmp, &aapl(), body);
        let f = failure(&Fmp, &aapl(), test_response(200, &[], r#"[{"price":"x"}]"#));
        assert_eq!(f.class, FailureClass::MalformedResponse);
    }
}
