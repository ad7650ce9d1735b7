//! Finnhub `quote`: `finance.quote` for US stocks in real time.
//!
//! Needs a free key (`FINNHUB_API_KEY`), sent by the pipeline as the
//! `X-Finnhub-Token` header. The free plan allows 60 calls/min (plus a
//! global 30 calls/s). The reply is terse: `c` current, `d` change, `dp`
//! change %, `h`/`l`/`o` session high/low/open, `pc` previous close, `t`
//! Unix time. An unknown symbol is not an error: it answers all zeros,
//! which is `NotFound` here. 401 is a bad key; 403 means the plan does not
//! cover the symbol (`Unsupported`, so another provider is tried without
//! counting against Finnhub); 429 is the rate limit.

use chrono::DateTime;
use serde::Deserialize;

use super::{clip, utc_text};
use crate::capability::finance::{StockQuery, StockQuote};
use crate::capability::marker;
use crate::error::{FailureClass, ProviderFailure};
use crate::provider::{
    Auth, CallContext, Fixture, HttpRequest, HttpResponse, KeyPlacement, Provider, ProviderInfo,
    Serves, Step,
};

/// Finnhub (<https://finnhub.io>): real-time US stock quotes with a free key.
#[derive(Debug, Clone, Copy, Default)]
pub struct Finnhub;

static INFO: ProviderInfo = ProviderInfo {
    id: "finnhub",
    name: "Finnhub",
    auth: Auth::Key {
        env: "FINNHUB_API_KEY",
        placement: KeyPlacement::Header {
            name: "X-Finnhub-Token",
            prefix: "",
        },
        optional: false,
    },
    base_url: "https://finnhub.io",
    docs_url: "https://finnhub.io/docs/api/quote",
    terms: "Free key: 60 calls/min and at most 30 calls/s; US stocks on the free plan, \
            other markets need a paid plan.",
    commercial_use: true,
    default_rate_limit: Some("60/min"),
    default_quota: None,
};

impl Provider for Finnhub {
    fn info(&self) -> &ProviderInfo {
        &INFO
    }

    fn fixtures(&self) -> &'static [Fixture] {
        FIXTURES
    }
}

crate::serves!(Finnhub: StockQuote);

impl Serves<marker::StockQuote> for Finnhub {
    fn build_request(
        &self,
        q: &StockQuery,
        ctx: &CallContext<'_>,
    ) -> Result<HttpRequest, ProviderFailure> {
        Ok(HttpRequest::get(ctx.base_url, "/api/v1/quote").query("symbol", q.symbol.as_str()))
    }

    fn read_response(
        &self,
        q: &StockQuery,
        _ctx: &CallContext<'_>,
        response: HttpResponse,
    ) -> Result<Step<StockQuote>, ProviderFailure> {
        let message = || {
            #[derive(Deserialize)]
            struct ErrorReply {
                error: String,
            }
            serde_json::from_slice::<ErrorReply>(&response.body)
                .map(|r| format!("Finnhub: {}", clip(&r.error)))
                .unwrap_or_else(|_| response.body_excerpt())
        };
        if response.status == 403 {
            return Err(response.failure(FailureClass::Unsupported, message()));
        }
        response.check_status().map_err(|mut failure| {
            failure.message = message();
            failure
        })?;
        let reply: Reply = response.json()?;
        let as_of = DateTime::from_timestamp(reply.t, 0).filter(|_| reply.t > 0);
        let (Some(price), Some(as_of)) = (reply.c.filter(|c| *c > 0.0), as_of) else {
            return Err(response.failure(
                FailureClass::NotFound,
                format!("Finnhub has no quote for {}", q.symbol),
            ));
        };
        let mut quote = StockQuote::new(&q.symbol, price, utc_text(as_of));
        quote.open = reply.o;
        quote.high = reply.h;
        quote.low = reply.l;
        quote.previous_close = reply.pc;
        quote.change = reply.d;
        quote.change_pct = reply.dp;
        Ok(Step::Done(quote))
    }
}

#[derive(Deserialize)]
struct Reply {
    c: Option<f64>,
    d: Option<f64>,
    dp: Option<f64>,
    h: Option<f64>,
    l: Option<f64>,
    o: Option<f64>,
    pc: Option<f64>,
    t: i64,
}

static FIXTURES: &[Fixture] = fixtures![
    // `GET /api/v1/quote?symbol=AAPL`.
    Fixture {
        method: "GET",
        path: "/api/v1/quote",
        status: 200,
        body: include_str!("fixtures/finnhub/aapl.json"),
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
        request("finance.quote", json!({"symbol": "aapl"}))
    }

    #[test]
    fn request_is_exact_and_the_key_goes_in_a_header() {
        let req = Finnhub.request(&aapl(), &ctx(&Finnhub)).unwrap();
        assert_eq!(req.method, Method::GET);
        assert_eq!(req.url, "https://finnhub.io/api/v1/quote");
        assert_eq!(query(&req), [("symbol", "AAPL")]);
        assert!(req.headers.is_empty(), "the pipeline adds the key");
        assert!(matches!(
            Finnhub.info().auth,
            Auth::Key {
                env: "FINNHUB_API_KEY",
                placement: KeyPlacement::Header {
                    name: "X-Finnhub-Token",
                    prefix: ""
                },
                optional: false
            }
        ));
    }

    #[test]
    fn fixture_normalises_the_quote() {
        let body = fixture(&Finnhub, "/api/v1/quote");
        let Data::StockQuote(q) = answer(&Finnhub, &aapl(), test_response(200, &[], body)) else {
            panic!("wrong data")
        };
        assert_eq!(q.symbol, "AAPL");
        assert_eq!(q.price, 261.74);
        // The documented example predates `d` and `dp`.
        assert_eq!((q.change, q.change_pct), (None, None));
        assert_eq!(
            (q.open, q.high, q.low),
            (Some(261.07), Some(263.31), Some(260.68))
        );
        assert_eq!(q.previous_close, Some(259.45));
        assert_eq!(q.as_of, "2020-02-25T14:30:00Z");
        assert_eq!((q.name, q.volume), (None, None));

        let with_change = body.replace(r#""h":"#, r#""d":2.29,"dp":0.8826,"h":"#);
        let Data::StockQuote(q) = answer(&Finnhub, &aapl(), test_response(200, &[], &with_change))
        else {
            panic!("wrong data")
        };
        assert_eq!((q.change, q.change_pct), (Some(2.29), Some(0.8826)));
    }

    #[test]
    fn error_signals_are_classified() {
        let zeros = r#"{"c":0,"d":null,"dp":null,"h":0,"l":0,"o":0,"pc":0,"t":0}"#;
        let f = failure(&Finnhub, &aapl(), test_response(200, &[], zeros));
        assert_eq!(f.class, FailureClass::NotFound);
        let f = failure(
            &Finnhub,
            &aapl(),
            test_response(401, &[], r#"{"error":"Invalid API key."}"#),
        );
        assert_eq!(f.class, FailureClass::Auth);
        assert_eq!(f.message, "Finnhub: Invalid API key.");
        let f = failure(
            &Finnhub,
            &aapl(),
            test_response(
                403,
                &[],
                r#"{"error":"You don't have access to this resource."}"#,
            ),
        );
        assert_eq!(f.class, FailureClass::Unsupported);
        let f = failure(
            &Finnhub,
            &aapl(),
            test_response(
                429,
                &[("retry-after", "20")],
                r#"{"error":"API limit reached. Please try again later. Remaining Limit: 0"}"#,
            ),
        );
        assert_eq!(f.class, FailureClass::RateLimited);
        assert_eq!(f.retry_after, Some(Duration::from_secs(20)));
        let f = failure(
            &Finnhub,
            &aapl(),
            test_response(502, &[], "<html>bad</html>"),
        );
        assert_eq!(f.class, FailureClass::Transient);
    }

    #[test]
    fn malformed_bodies_never_panic() {
        let body = fixture(&Finnhub, "/api/v1/quote");
        assert_truncations_are_malformed(&Finnhub, &aapl(), body);
    }
}
