//! A tour of polyrelay: one call answered through a fallback chain, an
//! outage, the cache, a stale answer, and a failure that says why.
//!
//! Runs offline by default against the built-in emulator (every provider's
//! real wire format on 127.0.0.1). `--live` calls the real providers instead.
//!
//! ```sh
//! cargo run -p polyrelay --example tour
//! ```

use std::time::Duration;

use polyrelay::config::Config;
use polyrelay::emulation::{self, Fault};
use polyrelay::{Client, Envelope};
use serde_json::json;

fn show(title: &str, reply: &Envelope) {
    println!("\n== {title}");
    println!(
        "answered by {} (cached: {}, stale: {}) in {:.1} ms",
        reply.provider,
        reply.cached,
        reply.stale,
        reply.elapsed.as_secs_f64() * 1000.0
    );
    println!("data: {}", reply.data().to_json());
    for attempt in &reply.attempts {
        println!("  trail: {attempt}");
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let live = std::env::args().any(|a| a == "--live");
    let emulator = if live {
        None
    } else {
        Some(emulation::start()?)
    };
    let mut config = Config::from_toml_str(
        r#"
user_agent = "polyrelay-tour/0.1"
[cache]
stale_if_error = "1h"
[defaults.retry]
initial_delay = "50ms"
[capabilities."weather.current"]
chain = ["open-meteo", "met-norway", "wttr-in"]
cache_ttl = "1s"
"#,
    )?;
    config.emulator_url = emulator.as_ref().map(|e| e.base_url());
    let client = Client::builder().config(config).build()?;
    println!(
        "polyrelay tour ({}); weather.current chain: {:?}",
        if live {
            "live providers"
        } else {
            "offline emulator"
        },
        client.chain(polyrelay::CapabilityId::WeatherCurrent)
    );

    let berlin = json!({"lat": 52.52, "lon": 13.41});
    let reply = client.call("weather.current", berlin.clone()).await?;
    show("1. a call through the fallback chain", &reply);

    let reply = client.call("weather.current", berlin.clone()).await?;
    show(
        "2. the same call again: a cache hit, no request sent",
        &reply,
    );

    let rates = client
        .call(
            "finance.fx_rates",
            json!({"base": "EUR", "symbols": ["USD", "GBP", "JPY"]}),
        )
        .await?;
    show("3. another capability: FX rates", &rates);

    let Some(emulator) = emulator else {
        return Ok(());
    };
    emulator.fault_always("/open-meteo/*", Fault::status(503));
    let paris = json!({"lat": 48.8566, "lon": 2.3522});
    let reply = client.call("weather.current", paris).await?;
    show(
        "4. open-meteo is down (HTTP 503): met-norway answers",
        &reply,
    );

    tokio::time::sleep(Duration::from_millis(1100)).await;
    for provider in ["open-meteo", "met-norway", "wttr-in"] {
        emulator.fault_always(&format!("/{provider}/*"), Fault::status(500));
    }
    let reply = client.call("weather.current", berlin).await?;
    show(
        "5. every provider is down: the last good answer, flagged stale",
        &reply,
    );

    println!("\n== 6. every provider down and nothing cached: a clear error");
    match client
        .call("weather.current", json!({"lat": 40.71, "lon": -74.0}))
        .await
    {
        Ok(reply) => println!("unexpected answer from {}", reply.provider),
        Err(error) => println!("{} error: {error}", error.kind().as_str()),
    }

    println!("\n== 7. health");
    println!(
        "{}",
        serde_json::to_string_pretty(&client.health().capabilities["weather.current"])?
    );
    Ok(())
}
