//! The "reference" group's capabilities through the emulator: each falls
//! back from a failing primary to the next provider in every error class
//! the primary signals, with the same answer shape whichever provider
//! answers; with no key set, every capability that has a keyless provider
//! answers. The same holds for the weather, FX and crypto providers this
//! group added.

mod common;

use std::time::Duration;

use common::*;
use polyrelay::ErrorKind;
use serde_json::{json, Value};

/// How the primary is made to fail.
enum Trigger {
    /// The emulator answers the primary's every request with this.
    Fault(Fault),
    /// The primary's daily quota is one request, spent by a first call.
    DailyQuotaSpent,
}

/// One fallback scenario: the primary fails, the secondary answers.
struct Scenario {
    capability: &'static str,
    params: Value,
    primary: &'static str,
    secondary: &'static str,
    trigger: Trigger,
    /// The primary's outcome in the trail.
    outcome: &'static str,
    /// Key variables (fake keys for keyed providers).
    vars: &'static [(&'static str, &'static str)],
}

fn config(s: &Scenario) -> String {
    let quota = match s.trigger {
        Trigger::DailyQuotaSpent => format!("[providers.{}]\ndaily_quota = 1\n", s.primary),
        Trigger::Fault(_) => String::new(),
    };
    format!(
        r#"
[cache]
enabled = false

[defaults]
rate_limit = "off"
daily_quota = 0

[defaults.retry]
max_attempts = 1

[capabilities."{}"]
chain = ["{}", "{}"]

{quota}"#,
        s.capability, s.primary, s.secondary
    )
}

/// Runs a scenario: checks the trail and returns the primary's normal
/// answer and the secondary's fallback answer as JSON.
async fn fall_back(s: Scenario) -> (Value, Value) {
    let emulator = emulator().await;
    let clock = clock();
    let client = client(&emulator, &clock, &config(&s), s.vars);
    let label = format!("{} → {} ({})", s.primary, s.secondary, s.outcome);

    let healthy = client.call(s.capability, s.params.clone()).await;
    let healthy = healthy.unwrap_or_else(|e| panic!("{label}: healthy call failed: {e}"));
    assert_eq!(healthy.provider, s.primary, "{label}");

    match s.trigger {
        Trigger::Fault(fault) => emulator.fault_always(&format!("/{}/*", s.primary), fault),
        Trigger::DailyQuotaSpent => {}
    }
    let reply = client.call(s.capability, s.params.clone()).await;
    let reply = reply.unwrap_or_else(|e| panic!("{label}: fallback failed: {e}"));
    assert_eq!(reply.provider, s.secondary, "{label}");
    let first = &reply.attempts[0];
    assert_eq!(
        (first.provider, first.outcome.as_str()),
        (s.primary, s.outcome),
        "{label}: {}",
        first.reason
    );
    assert!(reply.attempts[1].succeeded(), "{label}");
    if first.status == Some(429) && s.outcome == "rate_limited" {
        assert_eq!(
            first.retry_after,
            Some(Duration::from_secs(30)),
            "{label}: Retry-After kept"
        );
    }
    (healthy.data().to_json(), reply.data().to_json())
}

/// Asserts that two answers have the same shape: the same keys at every
/// level, with values of the same JSON type wherever both are non-null.
/// `strict: false` tolerates keys only one side has (schemas that omit
/// unknown optional fields instead of sending `null`).
fn assert_same_shape(a: &Value, b: &Value, strict: bool, at: &str) {
    match (a, b) {
        (Value::Null, _) | (_, Value::Null) => {}
        (Value::Object(x), Value::Object(y)) => {
            if strict {
                let keys_x: Vec<&String> = x.keys().collect();
                let keys_y: Vec<&String> = y.keys().collect();
                assert_eq!(keys_x, keys_y, "keys at {at}");
            }
            for (key, value) in x {
                if let Some(other) = y.get(key) {
                    assert_same_shape(value, other, strict, &format!("{at}.{key}"));
                }
            }
        }
        (Value::Array(x), Value::Array(y)) => {
            if let (Some(first), Some(other)) = (x.first(), y.first()) {
                assert_same_shape(first, other, strict, &format!("{at}[0]"));
            }
        }
        (Value::Number(_), Value::Number(_))
        | (Value::String(_), Value::String(_))
        | (Value::Bool(_), Value::Bool(_)) => {}
        _ => panic!("different types at {at}: {a} vs {b}"),
    }
}

/// Runs every scenario and checks that all answers share one shape.
async fn check(scenarios: Vec<Scenario>, strict: bool) {
    let mut answers = Vec::new();
    for scenario in scenarios {
        let (healthy, fallback) = fall_back(scenario).await;
        answers.push(healthy);
        answers.push(fallback);
    }
    for answer in &answers[1..] {
        assert_same_shape(&answers[0], answer, strict, "data");
    }
}

fn status(code: u16) -> Trigger {
    Trigger::Fault(Fault::status(code))
}

fn throttled() -> Trigger {
    Trigger::Fault(Fault::Respond(
        Reply::new(429).with_retry_after(Duration::from_secs(30)),
    ))
}

fn malformed() -> Trigger {
    Trigger::Fault(Fault::Malformed)
}

fn reply(status: u16, body: Value) -> Trigger {
    Trigger::Fault(Fault::Respond(Reply::json(&body).with_status(status)))
}

fn text(status: u16, body: &str) -> Trigger {
    Trigger::Fault(Fault::Respond(
        Reply::text(body.to_string()).with_status(status),
    ))
}

/// The usual failures of a primary, by class.
fn common_failures(
    capability: &'static str,
    params: &Value,
    primary: &'static str,
    secondary: &'static str,
    vars: &'static [(&'static str, &'static str)],
) -> Vec<Scenario> {
    [
        (status(503), "transient"),
        (throttled(), "rate_limited"),
        (malformed(), "malformed_response"),
    ]
    .into_iter()
    .map(|(trigger, outcome)| Scenario {
        capability,
        params: params.clone(),
        primary,
        secondary,
        trigger,
        outcome,
        vars,
    })
    .collect()
}

#[tokio::test]
async fn geocoding_falls_back_in_every_error_class() {
    let params = json!({"query": "Pariser Platz 1, Berlin"});
    let mut scenarios = common_failures("geo.geocode", &params, "nominatim", "photon", &[]);
    scenarios.push(Scenario {
        capability: "geo.geocode",
        params: params.clone(),
        primary: "nominatim",
        secondary: "photon",
        trigger: Trigger::DailyQuotaSpent,
        outcome: "skipped_quota",
        vars: &[],
    });
    scenarios.push(Scenario {
        capability: "geo.geocode",
        params: params.clone(),
        primary: "nominatim",
        secondary: "open-meteo-geocoding",
        trigger: text(403, "<html>Access blocked: no valid User-Agent</html>"),
        outcome: "auth",
        vars: &[],
    });
    check(scenarios, true).await;
}

const STOCK_KEYS: &[(&str, &str)] = &[
    ("TWELVE_DATA_API_KEY", "td-test"),
    ("FINNHUB_API_KEY", "fh-test"),
    ("ALPHA_VANTAGE_API_KEY", "av-test"),
    ("FMP_API_KEY", "fmp-test"),
];

#[tokio::test]
async fn stock_quotes_fall_back_in_every_error_class() {
    let params = json!({"symbol": "AAPL"});
    let scenario = |primary, secondary, trigger, outcome| Scenario {
        capability: "finance.quote",
        params: params.clone(),
        primary,
        secondary,
        trigger,
        outcome,
        vars: STOCK_KEYS,
    };
    let mut scenarios = common_failures(
        "finance.quote",
        &params,
        "twelve-data",
        "finnhub",
        STOCK_KEYS,
    );
    scenarios.extend([
        // Errors inside 200 bodies.
        scenario(
            "twelve-data",
            "finnhub",
            reply(200, json!({"code": 429, "message": "You have run out of API credits for the current minute.", "status": "error"})),
            "rate_limited",
        ),
        scenario(
            "twelve-data",
            "fmp",
            reply(200, json!({"code": 429, "message": "You have run out of API credits for the day.", "status": "error"})),
            "quota_exhausted",
        ),
        scenario(
            "alpha-vantage",
            "twelve-data",
            reply(200, json!({"Information": "Thank you for using Alpha Vantage! Our standard API rate limit is 25 requests per day."})),
            "quota_exhausted",
        ),
        scenario(
            "alpha-vantage",
            "finnhub",
            reply(200, json!({"Note": "Thank you for using Alpha Vantage! Our standard API call frequency is 5 calls per minute."})),
            "rate_limited",
        ),
        // A refused key.
        scenario(
            "finnhub",
            "fmp",
            reply(401, json!({"error": "Invalid API key."})),
            "auth",
        ),
        scenario(
            "fmp",
            "alpha-vantage",
            reply(429, json!({"Error Message": "Limit Reach . Please upgrade your plan."})),
            "quota_exhausted",
        ),
    ]);
    check(scenarios, true).await;
}

const NEWS_KEYS: &[(&str, &str)] = &[
    ("GNEWS_API_KEY", "gn-test"),
    ("NEWSAPI_API_KEY", "na-test"),
    ("GUARDIAN_API_KEY", "gu-test"),
];

#[tokio::test]
async fn news_search_falls_back_in_every_error_class() {
    let params = json!({"query": "climate"});
    let scenario = |primary, secondary, trigger, outcome| Scenario {
        capability: "news.search",
        params: params.clone(),
        primary,
        secondary,
        trigger,
        outcome,
        vars: NEWS_KEYS,
    };
    let mut scenarios = common_failures("news.search", &params, "gdelt", "hn-algolia", NEWS_KEYS);
    scenarios.extend([
        // GDELT's plain-text throttling message inside a 200.
        scenario(
            "gdelt",
            "hn-algolia",
            text(200, "Please limit requests to one every 5 seconds or contact kalev.leetaru5@gmail.com for larger queries."),
            "rate_limited",
        ),
        scenario(
            "gnews",
            "gdelt",
            reply(403, json!({"errors": ["You have reached your request limit for today."]})),
            "quota_exhausted",
        ),
        scenario(
            "gnews",
            "guardian",
            reply(401, json!({"errors": ["Your API key is invalid."]})),
            "auth",
        ),
        scenario(
            "newsapi",
            "guardian",
            reply(429, json!({"status": "error", "code": "apiKeyExhausted", "message": "Your API key has no more requests available."})),
            "quota_exhausted",
        ),
        scenario("guardian", "newsapi", reply(401, json!({"message": "Unauthorized"})), "auth"),
    ]);
    check(scenarios, true).await;
}

const SEARCH_KEYS: &[(&str, &str)] = &[("BRAVE_API_KEY", "br-test")];

#[tokio::test]
async fn web_search_falls_back_in_every_error_class() {
    let params = json!({"query": "rust programming"});
    let scenario = |primary, secondary, trigger, outcome| Scenario {
        capability: "web.search",
        params: params.clone(),
        primary,
        secondary,
        trigger,
        outcome,
        vars: SEARCH_KEYS,
    };
    let mut scenarios = common_failures(
        "web.search",
        &params,
        "wikipedia",
        "duckduckgo",
        SEARCH_KEYS,
    );
    scenarios.extend([
        // MediaWiki's throttling inside a 200.
        scenario(
            "wikipedia",
            "searxng",
            reply(200, json!({"error": {"code": "ratelimited", "info": "You've exceeded your rate limit."}})),
            "rate_limited",
        ),
        scenario("wikipedia", "brave", Trigger::DailyQuotaSpent, "skipped_quota"),
        scenario(
            "brave",
            "wikipedia",
            reply(401, json!({"type": "ErrorResponse", "error": {"code": "SUBSCRIPTION_TOKEN_INVALID", "detail": "The provided subscription token is invalid."}})),
            "auth",
        ),
        scenario(
            "searxng",
            "duckduckgo",
            text(403, "Forbidden"),
            "auth",
        ),
    ]);
    check(scenarios, true).await;
}

const TRANSLATE_KEYS: &[(&str, &str)] = &[("DEEPL_API_KEY", "dl-test:fx")];

#[tokio::test]
async fn translation_falls_back_in_every_error_class() {
    let params = json!({"text": "Hello world", "source_lang": "en", "target_lang": "it"});
    let scenario = |primary, secondary, trigger, outcome| Scenario {
        capability: "translate.text",
        params: params.clone(),
        primary,
        secondary,
        trigger,
        outcome,
        vars: TRANSLATE_KEYS,
    };
    let mut scenarios = common_failures(
        "translate.text",
        &params,
        "mymemory",
        "libretranslate",
        TRANSLATE_KEYS,
    );
    scenarios.extend([
        // MyMemory's quota inside a 200.
        scenario(
            "mymemory",
            "deepl",
            reply(200, json!({"responseData": {"translatedText": "MYMEMORY WARNING: YOU USED ALL AVAILABLE FREE TRANSLATIONS FOR TODAY. NEXT AVAILABLE IN 10 HOURS 20 MINUTES 40 SECONDS"}, "quotaFinished": true, "responseDetails": "", "responseStatus": 429})),
            "quota_exhausted",
        ),
        scenario(
            "deepl",
            "mymemory",
            reply(456, json!({"message": "Quota Exceeded"})),
            "quota_exhausted",
        ),
        scenario(
            "deepl",
            "libretranslate",
            reply(403, json!({"message": "Authorization failure, check auth_key"})),
            "auth",
        ),
    ]);
    check(scenarios, true).await;
}

#[tokio::test]
async fn dictionary_falls_back_in_every_error_class() {
    let params = json!({"word": "hello"});
    let scenario = |primary, secondary, trigger, outcome| Scenario {
        capability: "dictionary.define",
        params: params.clone(),
        primary,
        secondary,
        trigger,
        outcome,
        vars: &[],
    };
    let mut scenarios = common_failures(
        "dictionary.define",
        &params,
        "free-dictionary",
        "wiktionary",
        &[],
    );
    scenarios.extend([
        scenario(
            "free-dictionary",
            "wiktionary",
            Trigger::DailyQuotaSpent,
            "skipped_quota",
        ),
        scenario(
            "wiktionary",
            "free-dictionary",
            text(403, "Please set a user-agent"),
            "auth",
        ),
        scenario(
            "free-dictionary",
            "wiktionary",
            reply(
                404,
                json!({"title": "No Definitions Found", "message": "Sorry pal."}),
            ),
            "not_found",
        ),
    ]);
    check(scenarios, true).await;
}

const WEATHER_KEYS: &[(&str, &str)] = &[
    ("WEATHERAPI_API_KEY", "wa-test"),
    ("OPENWEATHER_API_KEY", "ow-test"),
];

#[tokio::test]
async fn added_weather_providers_fall_back_in_every_error_class() {
    let topeka = json!({"lat": 39.0469, "lon": -95.6775});
    let scenario = |capability, primary, secondary, trigger, outcome| Scenario {
        capability,
        params: topeka.clone(),
        primary,
        secondary,
        trigger,
        outcome,
        vars: WEATHER_KEYS,
    };
    let mut scenarios = common_failures(
        "weather.current",
        &topeka,
        "nws",
        "weatherapi",
        WEATHER_KEYS,
    );
    scenarios.extend([
        scenario("weather.current", "nws", "openweathermap", text(403, "Forbidden"), "auth"),
        scenario(
            "weather.forecast",
            "weatherapi",
            "nws",
            reply(403, json!({"error": {"code": 2007, "message": "API key has exceeded calls per month quota."}})),
            "quota_exhausted",
        ),
        scenario(
            "weather.current",
            "openweathermap",
            "nws",
            reply(401, json!({"cod": 401, "message": "Invalid API key."})),
            "auth",
        ),
        scenario(
            "weather.forecast",
            "nws",
            "openweathermap",
            reply(404, json!({"title": "Data Unavailable For Requested Point", "status": 404})),
            "not_found",
        ),
    ]);
    // Current weather and forecasts are checked for shape separately.
    let (current, forecast): (Vec<_>, Vec<_>) = scenarios
        .into_iter()
        .partition(|s| s.capability == "weather.current");
    check(current, false).await;
    check(forecast, false).await;
}

#[tokio::test]
async fn added_fx_and_crypto_providers_fall_back_in_every_error_class() {
    let fx = json!({"base": "EUR", "symbols": ["USD", "GBP"]});
    let mut fx_scenarios = common_failures(
        "finance.fx_rates",
        &fx,
        "exchangerate-api",
        "frankfurter",
        &[],
    );
    fx_scenarios.push(Scenario {
        capability: "finance.fx_rates",
        params: fx.clone(),
        primary: "exchangerate-api",
        secondary: "frankfurter",
        trigger: reply(
            200,
            json!({"result": "error", "error-type": "unsupported-code"}),
        ),
        outcome: "not_found",
        vars: &[],
    });
    check(fx_scenarios, false).await;

    let crypto = json!({"assets": ["BTC", "ETH"]});
    let scenario = |primary, secondary, trigger, outcome| Scenario {
        capability: "crypto.price",
        params: crypto.clone(),
        primary,
        secondary,
        trigger,
        outcome,
        vars: &[],
    };
    let mut crypto_scenarios = common_failures("crypto.price", &crypto, "kraken", "binance", &[]);
    crypto_scenarios.extend([
        // Kraken's errors inside a 200.
        scenario(
            "kraken",
            "binance",
            reply(
                200,
                json!({"error": ["EAPI:Rate limit exceeded"], "result": {}}),
            ),
            "rate_limited",
        ),
        // Binance's IP ban after ignored 429s.
        scenario(
            "binance",
            "kraken",
            Trigger::Fault(Fault::Respond(
                Reply::json(
                    &json!({"code": -1003, "msg": "Way too much request weight used; IP banned."}),
                )
                .with_status(418)
                .with_retry_after(Duration::from_secs(120)),
            )),
            "quota_exhausted",
        ),
        scenario(
            "binance",
            "coingecko",
            reply(
                451,
                json!({"code": 0, "msg": "Service unavailable from a restricted location."}),
            ),
            "auth",
        ),
    ]);
    check(crypto_scenarios, false).await;
}

#[tokio::test]
async fn with_no_keys_every_keyless_capability_answers_through_the_emulator() {
    let emulator = emulator().await;
    let clock = clock();
    let client = client(&emulator, &clock, "", &[]);
    let calls = [
        (
            "geo.geocode",
            json!({"query": "Berlin"}),
            "open-meteo-geocoding",
        ),
        ("news.search", json!({"query": "climate"}), "gdelt"),
        (
            "web.search",
            json!({"query": "rust programming"}),
            "wikipedia",
        ),
        (
            "translate.text",
            json!({"text": "Hello world", "source_lang": "en", "target_lang": "it"}),
            "mymemory",
        ),
        // Without a source language MyMemory steps aside for a detector.
        (
            "translate.text",
            json!({"text": "Hello world", "target_lang": "es"}),
            "libretranslate",
        ),
        (
            "dictionary.define",
            json!({"word": "hello"}),
            "free-dictionary",
        ),
    ];
    for (capability, params, provider) in calls {
        let reply = client
            .call(capability, params)
            .await
            .unwrap_or_else(|e| panic!("{capability}: {e}"));
        assert_eq!(reply.provider, provider, "{capability}");
    }

    // Stock quotes have no keyless provider: the error says a key is missing.
    let error = client
        .call("finance.quote", json!({"symbol": "AAPL"}))
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::MissingKey, "{error}");
    assert!(error.to_string().contains("FINNHUB_API_KEY"), "{error}");
}

#[tokio::test]
async fn multi_step_nws_answers_both_weather_capabilities_through_the_emulator() {
    let emulator = emulator().await;
    let clock = clock();
    let config = r#"
[capabilities."weather.current"]
chain = ["nws"]
[capabilities."weather.forecast"]
chain = ["nws"]
"#;
    let client = client(&emulator, &clock, config, &[]);
    let topeka = json!({"lat": 39.0469, "lon": -95.6775});
    let current = client
        .call("weather.current", topeka.clone())
        .await
        .unwrap();
    assert_eq!(current.data().to_json()["temperature_c"], -6.1);
    let forecast = client.call("weather.forecast", topeka).await.unwrap();
    assert_eq!(forecast.data().to_json()["daily"][0]["temp_max_c"], 5.0);
    let paths: Vec<String> = emulator.requests().iter().map(|r| r.path.clone()).collect();
    assert_eq!(
        paths,
        [
            "/nws/points/39.0469,-95.6775",
            "/nws/gridpoints/TOP/31,80/stations",
            "/nws/stations/KTOP/observations/latest",
            "/nws/points/39.0469,-95.6775",
            "/nws/gridpoints/TOP/31,80/forecast",
        ]
    );
    assert!(emulator
        .requests()
        .iter()
        .all(|r| r.header("accept") == Some("application/geo+json")));
}

#[tokio::test]
async fn keys_go_where_each_provider_takes_them() {
    let emulator = emulator().await;
    let clock = clock();
    let config = r#"
[capabilities."finance.quote"]
chain = ["twelve-data"]
[capabilities."news.search"]
chain = ["guardian"]
[capabilities."translate.text"]
chain = ["deepl"]
"#;
    let client = client(
        &emulator,
        &clock,
        config,
        &[
            ("TWELVE_DATA_API_KEY", "td-secret"),
            ("GUARDIAN_API_KEY", "gu-secret"),
            ("DEEPL_API_KEY", "dl-secret:fx"),
        ],
    );
    client
        .call("finance.quote", json!({"symbol": "AAPL"}))
        .await
        .unwrap();
    client
        .call("news.search", json!({"query": "climate"}))
        .await
        .unwrap();
    client
        .call(
            "translate.text",
            json!({"text": "Hello, world!", "target_lang": "de"}),
        )
        .await
        .unwrap();
    let requests = emulator.requests();
    let quote = &requests[0];
    assert_eq!(quote.header("authorization"), Some("apikey td-secret"));
    assert_eq!(quote.query_param("apikey"), None);
    let news = &requests[1];
    assert_eq!(news.query_param("api-key"), Some("gu-secret"));
    let translate = &requests[2];
    assert_eq!(
        translate.header("authorization"),
        Some("DeepL-Auth-Key dl-secret:fx")
    );
}
