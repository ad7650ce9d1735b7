//! A provider key never appears in logs, errors, Debug output, envelopes,
//! stats or health, whatever happens to the calls that use it.

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};

use common::*;
use polyrelay::config::Config;
use serde_json::json;

const KEY: &str = "sk-live-7d1f0c9e5b2a4e6f8a3c";

/// Collects everything the tracing subscriber writes.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Captured {
    type Writer = Captured;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

#[tokio::test]
async fn the_key_never_leaks_into_logs_errors_debug_stats_or_health() {
    let captured = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(captured.clone())
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let emulator = emulator().await;
    let clock = clock();
    let keyed = TestWeather::keyed("keyed-weather", "KEYED_WEATHER_API_KEY");
    keyed.serve(&emulator, 12.5);
    let config = r#"
[capabilities."weather.current"]
chain = ["keyed-weather"]
[cache]
enabled = false
"#;
    let builder = builder(&emulator, &clock, config, &[("KEYED_WEATHER_API_KEY", KEY)])
        .provider(keyed.clone());
    let mut seen: Vec<String> = vec![format!("{builder:?}")];
    let client = builder.build().unwrap();
    seen.push(format!("{client:?}"));

    // A success: the key is really sent, as the provider's header.
    let reply = client.call("weather.current", berlin()).await.unwrap();
    assert_eq!(
        emulator.requests_to(&keyed.path())[0].header("x-api-key"),
        Some(KEY)
    );
    seen.push(format!("{reply:?}"));
    seen.push(reply.to_json().to_string());

    // A provider that echoes the refused key in its error body.
    emulator.fault_next(
        &keyed.path(),
        Fault::Respond(
            Reply::json(&json!({"error": format!("invalid api key {KEY}")})).with_status(401),
        ),
        1,
    );
    let error = client.call("weather.current", berlin()).await.unwrap_err();
    assert!(
        error.attempts()[0].reason.contains("[redacted]"),
        "{}",
        error.attempts()[0].reason
    );
    seen.push(error.to_string());
    seen.push(format!("{error:?}"));

    // Transport failures and retries.
    emulator.fault_always(&keyed.path(), Fault::Reset);
    let later = json!({"lat": 48.85, "lon": 2.35});
    clock.advance(std::time::Duration::from_secs(7200));
    let error = client.call("weather.current", later).await.unwrap_err();
    seen.push(error.to_string());
    seen.push(format!("{error:?}"));

    seen.push(serde_json::to_string(&client.stats()).unwrap());
    seen.push(format!("{:?}", client.stats()));
    seen.push(serde_json::to_string(&client.health()).unwrap());
    seen.push(format!(
        "{:?}",
        Config::from_vars([("KEYED_WEATHER_API_KEY".to_string(), KEY.to_string())]).unwrap()
    ));
    let logs = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(
        logs.contains("keyed-weather"),
        "the provider's turns were logged"
    );
    seen.push(logs);

    for (i, text) in seen.iter().enumerate() {
        // Neither the key nor a recognisable part of it.
        assert!(!text.contains(KEY), "output #{i} leaks the key: {text}");
        assert!(
            !text.contains(&KEY[8..20]),
            "output #{i} leaks part of the key: {text}"
        );
    }
}
