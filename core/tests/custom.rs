//! A provider declared only in the configuration file answers a capability.

mod common;

use common::*;
use serde_json::json;

const CONFIG: &str = r#"
[capabilities."weather.current"]
chain = ["acme-weather", "open-meteo"]

[cache]
enabled = false

[custom_providers.acme-weather]
capability = "weather.current"
base_url = "https://api.acme.example"
path = "/v2/now"
query = { latitude = "{location.lat}", longitude = "{location.lon}", units = "metric" }
auth = { env = "ACME_API_KEY", header = "x-api-key" }

[custom_providers.acme-weather.response]
observed_at = "/data/time"
temperature_c = "/data/temp"
humidity_pct = "/data/rh"
"location.lat" = "/lat"
"location.lon" = "/lon"
"condition.code" = "/data/wmo"
"condition.text" = { value = "reported by Acme" }

[[custom_providers.acme-weather.errors]]
pointer = "/error/code"
equals = "QUOTA"
class = "quota_exhausted"
"#;

fn acme_reply() -> Reply {
    Reply::json(&json!({
        "lat": 52.52, "lon": 13.41,
        "data": {"time": "2025-01-01T12:00:00Z", "temp": 4.5, "rh": 77, "wmo": 3}
    }))
}

#[tokio::test]
async fn a_configured_provider_answers_through_the_pipeline() {
    let emulator = emulator().await;
    emulator.route(Method::GET, "/acme-weather/v2/now", acme_reply());
    let clock = clock();
    let client = client(
        &emulator,
        &clock,
        CONFIG,
        &[("ACME_API_KEY", "acme-secret-1234")],
    );

    let reply = client.call("weather.current", berlin()).await.unwrap();

    assert_eq!(reply.provider, "acme-weather");
    let data = reply.data().to_json();
    assert_eq!(data["temperature_c"], 4.5);
    assert_eq!(data["humidity_pct"], 77.0);
    assert_eq!(
        data["condition"],
        json!({"code": 3, "text": "reported by Acme"})
    );
    let sent = &emulator.requests_to("/acme-weather/v2/now")[0];
    assert_eq!(sent.query_param("latitude"), Some("52.52"));
    assert_eq!(sent.query_param("units"), Some("metric"));
    assert_eq!(sent.header("x-api-key"), Some("acme-secret-1234"));
}

#[tokio::test]
async fn its_error_rules_classify_replies_and_the_chain_falls_back() {
    let emulator = emulator().await;
    emulator.route(
        Method::GET,
        "/acme-weather/v2/now",
        Reply::json(&json!({"error": {"code": "QUOTA"}})),
    );
    let clock = clock();
    let client = client(
        &emulator,
        &clock,
        CONFIG,
        &[("ACME_API_KEY", "acme-secret-1234")],
    );
    let reply = client.call("weather.current", berlin()).await.unwrap();
    assert_eq!(reply.provider, "open-meteo");
    assert_eq!(reply.attempts[0].outcome, "quota_exhausted");
    assert_eq!(reply.attempts[0].tries, 1);

    // Without its key it is skipped like any keyed provider.
    let keyless = common::client(&emulator, &clock, CONFIG, &[]);
    let reply = keyless.call("weather.current", berlin()).await.unwrap();
    assert_eq!(reply.attempts[0].reason, "skipped: ACME_API_KEY is not set");
}

#[test]
fn mistakes_in_a_declaration_name_the_field() {
    let bad = |edit: &str| {
        let text = format!("[custom_providers.acme]\ncapability = \"weather.current\"\nbase_url = \"https://x.example\"\n{edit}\n[custom_providers.acme.response]\ntemperature_c = \"/t\"\n");
        let config = polyrelay::config::Config::from_toml_str(&text).unwrap();
        match polyrelay::Client::builder()
            .config(config)
            .env_vars(Vec::new())
            .build()
        {
            Err(polyrelay::Error::Config { field, .. }) => field,
            other => panic!("expected a config error, got {other:?}"),
        }
    };
    assert_eq!(bad("method = \"PUT\""), "custom_providers.acme.method");
    assert_eq!(bad("auth = { env = \"K\" }"), "custom_providers.acme.auth");
    assert_eq!(
        bad("errors = [{ class = \"sometimes\" }]"),
        "custom_providers.acme.errors[0].class"
    );
}

#[tokio::test]
async fn a_value_in_a_path_placeholder_cannot_add_a_path_level_or_a_query() {
    let emulator = emulator().await;
    emulator.route(Method::GET, "/acme-weather/*", acme_reply());
    let clock = clock();
    let config = CONFIG
        .replace(
            r#"path = "/v2/now""#,
            r#"path = "/v2/city/{location.city}/now""#,
        )
        .replace(
            r#"query = { latitude = "{location.lat}", longitude = "{location.lon}", units = "metric" }"#,
            r#"query = { units = "metric" }"#,
        )
        .replace(r#"["acme-weather", "open-meteo"]"#, r#"["acme-weather"]"#);
    let client = client(
        &emulator,
        &clock,
        &config,
        &[("ACME_API_KEY", "acme-secret-1234")],
    );

    let reply = client
        .call("weather.current", json!({"city": "../admin?x=1#y"}))
        .await
        .unwrap();

    assert_eq!(reply.provider, "acme-weather");
    let sent = &emulator.requests_to("/acme-weather/*")[0];
    assert_eq!(
        sent.path,
        "/acme-weather/v2/city/..%2Fadmin%3Fx%3D1%23y/now"
    );
    assert_eq!(sent.query_param("x"), None);
    assert_eq!(sent.query_param("units"), Some("metric"));

    // `..` alone would be resolved into a move up the path: never sent.
    let refused = client
        .call("weather.current", json!({"city": ".."}))
        .await
        .unwrap_err();
    assert_eq!(refused.attempts()[0].provider, "acme-weather");
    assert_eq!(refused.attempts()[0].outcome, "unsupported");
    assert_eq!(emulator.requests_to("/acme-weather/*").len(), 1);
}
