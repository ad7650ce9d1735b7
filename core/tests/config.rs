//! Configuration: works with nothing, overrides in order, and every mistake
//! is an error naming the field.

use polyrelay::config::Config;
use polyrelay::{CapabilityId, Client, Error};

fn build(toml: &str, vars: &[(&str, &str)]) -> Result<Client, Error> {
    Client::builder()
        .config(Config::from_toml_str(toml)?)
        .env_vars(vars.iter().map(|(k, v)| (k.to_string(), v.to_string())))
        .build()
}

fn field(result: Result<Client, Error>) -> String {
    match result {
        Err(Error::Config { field, .. }) => field,
        Err(other) => panic!("expected a config error, got {other}"),
        Ok(_) => panic!("expected a config error, got a client"),
    }
}

#[test]
fn no_file_and_no_keys_gives_a_working_client_with_keyless_providers_first() {
    // No stock-quote provider offers an official keyless API.
    const KEYED_ONLY: &[CapabilityId] = &[CapabilityId::StockQuote];
    let client = build("", &[]).unwrap();
    // A composed capability (search.meta) asks another's providers.
    for capability in CapabilityId::ALL
        .iter()
        .filter(|c| c.composed_of().is_none())
    {
        let chain = client.chain(*capability);
        assert!(!chain.is_empty(), "{capability} has no provider");
        let first = polyrelay::internal::find_provider(chain[0]).unwrap();
        assert_eq!(
            first.info().is_keyless(),
            !KEYED_ONLY.contains(capability),
            "{capability} starts with {}",
            chain[0]
        );
    }
    let health = client.health();
    for (name, capability) in &health.capabilities {
        let keyed_only = KEYED_ONLY.iter().any(|c| c.as_str() == *name);
        assert_eq!(capability.status == "down", keyed_only, "{name}");
    }
}

#[test]
fn mistakes_are_errors_naming_the_field() {
    assert_eq!(field(build("timezone = \"Mars/Olympus\"", &[])), "timezone");
    assert_eq!(field(build("colour = 1", &[])), "config");
    assert_eq!(
        field(build(
            "[providers.open-meteo]\nretry = { attempt_timeout = \"soon\" }",
            &[]
        )),
        "providers.open-meteo"
    );
    assert_eq!(
        field(build(
            "[providers.open-meteo]\nretry = { max_attempts = 0 }",
            &[]
        )),
        "providers.open-meteo.retry.max_attempts"
    );
    assert_eq!(
        field(build(
            "[providers.open-meteo]\nbreaker = { failure_rate_threshold = 120 }",
            &[]
        )),
        "providers.open-meteo.breaker.failure_rate_threshold"
    );
    assert_eq!(
        field(build("[providers.no-such-provider]\nenabled = true", &[])),
        "providers.no-such-provider"
    );
    assert_eq!(
        field(build(
            "[capabilities.\"weather.current\"]\nchain = [\"frankfurter\"]",
            &[]
        )),
        "capabilities.weather.current.chain"
    );
    assert_eq!(
        field(build("[capabilities.\"weather.now\"]\nchain = []", &[])),
        "capabilities.weather.now"
    );
    assert_eq!(
        field(build("[providers.open-meteo]\nbase_url = \"ftp://x\"", &[])),
        "providers.open-meteo.base_url"
    );
    assert_eq!(
        field(build("", &[("POLYRELAY_COLOUR", "blue")])),
        "POLYRELAY_COLOUR"
    );
    assert_eq!(
        field(build("", &[("POLYRELAY_TOTAL_TIMEOUT", "forever")])),
        "POLYRELAY_TOTAL_TIMEOUT"
    );
    assert_eq!(
        field(build("", &[("POLYRELAY_NOPE_BASE_URL", "http://x")])),
        "POLYRELAY_NOPE_BASE_URL"
    );
}

#[test]
fn the_environment_overrides_the_file() {
    let client = build(
        "[capabilities.\"weather.current\"]\nchain = [\"open-meteo\", \"met-norway\"]",
        &[("POLYRELAY_CHAIN_WEATHER_CURRENT", "met-norway")],
    )
    .unwrap();
    assert_eq!(client.chain(CapabilityId::WeatherCurrent), ["met-norway"]);

    let client = build("", &[("POLYRELAY_OPEN_METEO_ENABLED", "false")]).unwrap();
    assert!(!client
        .chain(CapabilityId::WeatherCurrent)
        .contains(&"open-meteo"));
}

#[test]
fn provider_tables_merge_over_defaults() {
    let config = Config::from_toml_str(
        r#"
[defaults.retry]
max_attempts = 5
attempt_timeout = "2s"
[providers.open-meteo]
retry = { max_attempts = 2 }
"#,
    )
    .unwrap();
    let merged = config.provider_settings("open-meteo").unwrap();
    assert_eq!(merged.retry.max_attempts, 2);
    assert_eq!(
        merged.retry.attempt_timeout,
        std::time::Duration::from_secs(2)
    );
    let other = config.provider_settings("met-norway").unwrap();
    assert_eq!(other.retry.max_attempts, 5);
}

#[test]
fn commercial_mode_drops_providers_whose_free_terms_forbid_it() {
    let client = build("commercial = true", &[]).unwrap();
    for capability in CapabilityId::ALL {
        for id in client.chain(*capability) {
            assert!(
                polyrelay::internal::find_provider(id)
                    .unwrap()
                    .info()
                    .commercial_use,
                "{id}"
            );
        }
    }
    assert!(!client
        .chain(CapabilityId::WeatherCurrent)
        .contains(&"open-meteo"));
}
