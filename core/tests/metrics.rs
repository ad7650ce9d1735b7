//! Prometheus exposition: after calls that succeed, fall back, fail and hit
//! the cache, `Client::metrics_text` has exactly the expected series. The
//! text is parsed line by line (Prometheus text format 0.0.4), not grepped.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::{client, clock, emulator, openai_chat_reply, Fault};
use serde_json::json;

/// Weather: open-meteo, then met-norway (cached by default); FX:
/// frankfurter alone; chat: OpenAI. One try per provider, so attempts and
/// HTTP requests are equal.
const CONFIG: &str = r#"
[capabilities."weather.current"]
chain = ["open-meteo", "met-norway"]

[capabilities."finance.fx_rates"]
chain = ["frankfurter"]

[capabilities."llm.chat"]
chain = ["openai"]

[providers.open-meteo]
retry = { max_attempts = 1 }

[providers.frankfurter]
retry = { max_attempts = 1 }
"#;

const OPENAI_KEY: &str = "sk-metrics-secret-7f3a9c0d2e";

/// One sample: metric name, labels, value.
#[derive(Debug)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

/// Parses the text format strictly: every line is a comment (`# HELP` or
/// `# TYPE`) or `name{label="value",...} number`.
fn parse(text: &str) -> (Vec<Sample>, BTreeMap<String, String>) {
    let mut samples = Vec::new();
    let mut types = BTreeMap::new();
    for line in text.lines().filter(|l| !l.is_empty()) {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').expect("TYPE name kind");
            types.insert(name.to_string(), kind.to_string());
            continue;
        }
        if line.starts_with("# HELP ") {
            continue;
        }
        assert!(!line.starts_with('#'), "unexpected comment: {line}");
        let (series, value) = line.rsplit_once(' ').expect("series value");
        let value = match value {
            "+Inf" => f64::INFINITY,
            v => v.parse().unwrap_or_else(|_| panic!("bad value in {line}")),
        };
        let (name, labels) = match series.split_once('{') {
            None => (series, BTreeMap::new()),
            Some((name, rest)) => {
                let body = rest.strip_suffix('}').expect("labels close");
                let labels = body
                    .split(',')
                    .filter(|p| !p.is_empty())
                    .map(|pair| {
                        let (k, v) = pair.split_once('=').expect("label=value");
                        let v = v.strip_prefix('"').and_then(|v| v.strip_suffix('"'));
                        (k.to_string(), v.expect("quoted value").to_string())
                    })
                    .collect();
                (name, labels)
            }
        };
        assert!(
            name.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':'),
            "bad metric name in {line}"
        );
        samples.push(Sample {
            name: name.to_string(),
            labels,
            value,
        });
    }
    (samples, types)
}

/// The value of the one sample named `name` with exactly `labels`.
fn value(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> f64 {
    let want: BTreeMap<String, String> = labels
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let found: Vec<&Sample> = samples
        .iter()
        .filter(|s| s.name == name && s.labels == want)
        .collect();
    assert_eq!(found.len(), 1, "{name} {labels:?}: {found:?}");
    found[0].value
}

/// Checks the histogram `name` for `labels`: buckets cumulative, `+Inf`
/// equal to `_count`; returns `_count`.
fn histogram_count(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> f64 {
    let want: BTreeMap<String, String> = labels
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let mut buckets: Vec<(f64, f64)> = samples
        .iter()
        .filter(|s| s.name == format!("{name}_bucket"))
        .filter(|s| {
            let mut rest = s.labels.clone();
            rest.remove("le");
            rest == want
        })
        .map(|s| {
            let le = &s.labels["le"];
            let le = if le == "+Inf" {
                f64::INFINITY
            } else {
                le.parse().expect("le is a number")
            };
            (le, s.value)
        })
        .collect();
    assert!(buckets.len() > 10, "{name} {labels:?} has buckets");
    let in_order = buckets.clone();
    buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
    assert_eq!(in_order, buckets, "le bounds in increasing order");
    assert!(
        buckets.windows(2).all(|w| w[0].1 <= w[1].1),
        "{name} {labels:?} buckets cumulative: {buckets:?}"
    );
    let count = value(samples, &format!("{name}_count"), labels);
    assert_eq!(buckets.last().map(|b| b.0), Some(f64::INFINITY));
    assert_eq!(buckets.last().map(|b| b.1), Some(count), "+Inf = _count");
    value(samples, &format!("{name}_sum"), labels);
    count
}

#[tokio::test]
async fn the_text_counts_successes_fallbacks_failures_and_cache_hits_exactly() {
    let emulator = emulator().await;
    openai_chat_reply(&emulator);
    emulator.fault_always("/open-meteo/*", Fault::status(503));
    emulator.fault_always("/frankfurter/*", Fault::status(503));
    let clock = clock();
    let client = client(&emulator, &clock, CONFIG, &[("OPENAI_API_KEY", OPENAI_KEY)]);

    // 2 weather calls answered by the fallback, then 1 of them from the cache.
    for lat in [1.0, 2.0, 1.0] {
        let reply = client
            .call("weather.current", json!({"lat": lat, "lon": 13.41}))
            .await
            .unwrap();
        assert_eq!(reply.provider, "met-norway");
    }
    // 1 call every provider of fails.
    let error = client
        .call(
            "finance.fx_rates",
            json!({"base": "EUR", "symbols": ["JPY"]}),
        )
        .await
        .unwrap_err();
    let failure = error.kind().as_str();
    // Every provider failing transiently earns the chain a second pass, so
    // frankfurter's turns are read from the trail.
    let frankfurter_turns: u32 = error
        .attempts()
        .iter()
        .filter(|a| a.provider == "frankfurter")
        .map(|a| a.tries)
        .sum();
    assert!(frankfurter_turns >= 1);
    // 1 chat.
    client
        .call(
            "llm.chat",
            json!({"messages": [{"role": "user", "content": "Hello"}]}),
        )
        .await
        .unwrap();

    let text = client.metrics_text().await;
    assert!(!text.contains(OPENAI_KEY), "the key leaks:\n{text}");
    assert!(!text.contains("metrics-secret"), "part of the key leaks");
    let (samples, types) = parse(&text);

    let calls = "polyrelay_calls_total";
    assert_eq!(types[calls], "counter");
    let weather = "weather.current";
    let fx = "finance.fx_rates";
    let chat = "llm.chat";
    for (capability, outcome, n) in [
        (weather, "success", 2.0),
        (weather, "cached", 1.0),
        (fx, failure, 1.0),
        (chat, "success", 1.0),
    ] {
        assert_eq!(
            value(
                &samples,
                calls,
                &[("capability", capability), ("outcome", outcome)]
            ),
            n,
            "{capability} {outcome}"
        );
    }
    assert_eq!(
        samples.iter().filter(|s| s.name == calls).count(),
        4,
        "no other call series"
    );
    assert_eq!(
        value(
            &samples,
            "polyrelay_cache_hits_total",
            &[("capability", weather)]
        ),
        1.0
    );
    assert_eq!(
        value(
            &samples,
            "polyrelay_cache_hits_total",
            &[("capability", fx)]
        ),
        0.0
    );

    // Call latency and overhead: one observation per call.
    for (capability, n) in [(weather, 3.0), (fx, 1.0), (chat, 1.0)] {
        for name in [
            "polyrelay_call_duration_seconds",
            "polyrelay_overhead_duration_seconds",
        ] {
            assert_eq!(types[name], "histogram");
            assert_eq!(
                histogram_count(&samples, name, &[("capability", capability)]),
                n,
                "{name} {capability}"
            );
        }
    }

    // Attempts by provider and outcome; one HTTP exchange each.
    let attempts = "polyrelay_provider_attempts_total";
    for (provider, outcome, n) in [
        ("open-meteo", "transient", 2.0),
        ("met-norway", "success", 2.0),
        ("frankfurter", "transient", f64::from(frankfurter_turns)),
        ("openai", "success", 1.0),
    ] {
        assert_eq!(
            value(
                &samples,
                attempts,
                &[("provider", provider), ("outcome", outcome)]
            ),
            n,
            "{provider} {outcome}"
        );
        assert_eq!(
            histogram_count(
                &samples,
                "polyrelay_upstream_request_duration_seconds",
                &[("provider", provider)]
            ),
            n,
            "{provider} requests"
        );
    }
    for (direction, n) in [("input", 6.0), ("output", 10.0)] {
        assert_eq!(
            value(
                &samples,
                "polyrelay_tokens_total",
                &[("provider", "openai"), ("direction", direction)]
            ),
            n
        );
    }

    // Breakers: exactly one state per breaker, closed after 2 failures.
    let breaker = |state: &str| {
        value(
            &samples,
            "polyrelay_breaker_state",
            &[
                ("provider", "open-meteo"),
                ("capability", weather),
                ("state", state),
            ],
        )
    };
    assert_eq!(
        (breaker("closed"), breaker("open"), breaker("half_open")),
        (1.0, 0.0, 0.0)
    );
    assert_eq!(value(&samples, "polyrelay_redis_degraded", &[]), 0.0);
    // Providers never asked show no series.
    assert!(!samples
        .iter()
        .any(|s| s.labels.get("provider").map(String::as_str) == Some("anthropic")));
    assert_eq!(
        value(
            &samples,
            "polyrelay_capability_ready_providers",
            &[("capability", weather)]
        ),
        2.0
    );
}

#[tokio::test]
async fn quota_left_is_shown_per_provider() {
    let emulator = emulator().await;
    let clock = clock();
    let client = client(
        &emulator,
        &clock,
        r#"
[capabilities."weather.current"]
chain = ["open-meteo"]

[providers.open-meteo]
daily_quota = 5
"#,
        &[],
    );
    client
        .call("weather.current", json!({"lat": 1.0, "lon": 2.0}))
        .await
        .unwrap();
    let (samples, _) = parse(&client.metrics_text().await);
    assert_eq!(
        value(
            &samples,
            "polyrelay_quota_remaining",
            &[("provider", "open-meteo")]
        ),
        4.0
    );
}

#[tokio::test]
async fn overhead_is_the_call_time_minus_the_upstream_time() {
    // The real clock: the emulator's 60 ms delay is upstream time.
    let emulator = emulator().await;
    emulator.fault_always("/open-meteo/*", Fault::Latency(Duration::from_millis(60)));
    let client = polyrelay::Client::builder()
        .config(
            polyrelay::Config::from_toml_str(
                "[capabilities.\"weather.current\"]\nchain = [\"open-meteo\"]\n",
            )
            .unwrap(),
        )
        .env_vars(vec![(
            "POLYRELAY_EMULATOR_URL".to_string(),
            emulator.base_url(),
        )])
        .build()
        .unwrap();
    client
        .call("weather.current", json!({"lat": 1.0, "lon": 2.0}))
        .await
        .unwrap();
    let (samples, _) = parse(&client.metrics_text().await);
    let labels = [("capability", "weather.current")];
    let call = value(&samples, "polyrelay_call_duration_seconds_sum", &labels);
    let overhead = value(&samples, "polyrelay_overhead_duration_seconds_sum", &labels);
    let upstream = value(
        &samples,
        "polyrelay_upstream_request_duration_seconds_sum",
        &[("provider", "open-meteo")],
    );
    assert!(call >= 0.060, "call {call}");
    assert!(upstream >= 0.060, "upstream {upstream}");
    assert!(overhead < call - 0.055, "overhead {overhead} of {call}");
    assert!(
        (call - overhead - upstream).abs() < 0.002,
        "call {call} = overhead {overhead} + upstream {upstream}"
    );
}
