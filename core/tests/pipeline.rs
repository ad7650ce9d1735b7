//! End-to-end behaviour of the call pipeline through the public Rust API,
//! against real loopback servers speaking the providers' wire formats.

mod common;

use std::time::Duration;

use common::*;
use polyrelay::clock::Clock;
use polyrelay::{Error, ErrorKind};
use serde_json::json;

const WEATHER_CHAIN: &str = r#"
[capabilities."weather.current"]
chain = ["open-meteo", "met-norway", "wttr-in"]
"#;

#[tokio::test]
async fn primary_down_is_answered_by_the_next_provider_with_the_trail_saying_why() {
    let emulator = emulator().await;
    let clock = clock();
    let client = client(&emulator, &clock, WEATHER_CHAIN, &[]);
    emulator.fault_always("/open-meteo/*", Fault::status(503));

    let reply = client.call("weather.current", berlin()).await.unwrap();

    assert_eq!(reply.provider, "met-norway");
    assert!(!reply.cached && !reply.stale);
    let first = &reply.attempts[0];
    assert_eq!(
        (first.provider, first.outcome.as_str(), first.status),
        ("open-meteo", "transient", Some(503))
    );
    assert_eq!(first.tries, 3, "max_attempts = 3 counts the first call");
    assert!(first.reason.contains("503"), "{}", first.reason);
    assert!(reply.attempts[1].succeeded());
    assert_eq!(emulator.hits("/open-meteo/v1/forecast"), 3);
    assert_eq!(
        emulator.hits("/wttr-in/*"),
        0,
        "the chain stops at the first answer"
    );
}

#[tokio::test]
async fn all_down_serves_the_last_good_answer_flagged_stale() {
    let emulator = emulator().await;
    let clock = clock();
    let config = format!("{WEATHER_CHAIN}\n[cache]\nstale_if_error = \"1h\"\n");
    let client = client(&emulator, &clock, &config, &[]);
    let fresh = client.call("weather.current", berlin()).await.unwrap();
    assert_eq!(fresh.provider, "open-meteo");

    // Still fresh: answered from the cache without any request.
    let hits = emulator.requests().len();
    let again = client.call("weather.current", berlin()).await.unwrap();
    assert!(again.cached && !again.stale && again.attempts.is_empty());
    assert_eq!(emulator.requests().len(), hits);

    // Past freshness with every provider down: the stale answer, with the trail.
    clock.advance(Duration::from_secs(601));
    for provider in ["open-meteo", "met-norway", "wttr-in"] {
        emulator.fault_always(&format!("/{provider}/*"), Fault::status(500));
    }
    let stale = client.call("weather.current", berlin()).await.unwrap();
    assert!(stale.cached && stale.stale);
    assert_eq!(stale.provider, "open-meteo");
    assert_eq!(stale.data(), fresh.data());
    assert_eq!(stale.attempts.len(), 3);
    assert!(stale.attempts.iter().all(|a| a.outcome == "transient"));
}

#[tokio::test]
async fn all_down_and_nothing_cached_fails_with_the_whole_trail() {
    let emulator = emulator().await;
    let clock = clock();
    let client = client(&emulator, &clock, WEATHER_CHAIN, &[]);
    emulator.fault_always("/open-meteo/*", Fault::status(502));
    emulator.fault_always("/met-norway/*", Fault::Reset);
    emulator.fault_always("/wttr-in/*", Fault::Malformed);

    let error = client.call("weather.current", berlin()).await.unwrap_err();

    assert_eq!(
        error.kind(),
        ErrorKind::ProviderError,
        "every provider failed on its side"
    );
    let outcomes: Vec<_> = error
        .attempts()
        .iter()
        .map(|a| (a.provider, a.outcome.as_str()))
        .collect();
    assert_eq!(
        outcomes,
        [
            ("open-meteo", "transient"),
            ("met-norway", "transient"),
            ("wttr-in", "malformed_response")
        ]
    );
    let message = error.to_string();
    for provider in ["open-meteo", "met-norway", "wttr-in"] {
        assert!(message.contains(provider), "{message}");
    }
    assert!(
        message.starts_with("weather.current: no provider could answer"),
        "{message}"
    );
}

#[tokio::test]
async fn a_missing_key_skips_the_provider_with_a_reason_and_never_fails_the_call() {
    let emulator = emulator().await;
    let clock = clock();
    let keyed = TestWeather::keyed("keyed-weather", "KEYED_WEATHER_API_KEY");
    keyed.serve(&emulator, 30.0);
    let config = r#"
[capabilities."weather.current"]
chain = ["keyed-weather", "open-meteo"]
"#;
    let client = builder(&emulator, &clock, config, &[])
        .provider(keyed.clone())
        .build()
        .unwrap();

    let reply = client.call("weather.current", berlin()).await.unwrap();

    assert_eq!(reply.provider, "open-meteo");
    let skipped = &reply.attempts[0];
    assert_eq!(
        (skipped.provider, skipped.outcome.as_str(), skipped.tries),
        ("keyed-weather", "skipped_no_key", 0)
    );
    assert_eq!(skipped.reason, "skipped: KEYED_WEATHER_API_KEY is not set");
    assert_eq!(emulator.hits(&keyed.path()), 0);

    // With the key set, the same provider answers, the key sent as its header.
    let client = builder(
        &emulator,
        &clock,
        config,
        &[("KEYED_WEATHER_API_KEY", "k-123456")],
    )
    .provider(keyed.clone())
    .build()
    .unwrap();
    let reply = client.call("weather.current", berlin()).await.unwrap();
    assert_eq!(reply.provider, "keyed-weather");
    assert_eq!(temperature(&reply), 30.0);
    let sent = emulator.requests_to(&keyed.path());
    assert_eq!(sent[0].header("x-api-key"), Some("k-123456"));
    assert_eq!(sent[0].query_param("lat"), Some("52.52"));
}

#[tokio::test]
async fn a_hanging_provider_never_holds_a_call_past_the_total_deadline() {
    let emulator = emulator().await;
    let clock = clock();
    let config = r#"
total_timeout = "30s"
[defaults.retry]
attempt_timeout = "10s"
[capabilities."weather.current"]
chain = ["open-meteo"]
"#;
    let client = client(&emulator, &clock, config, &[]);
    emulator.fault_always("/open-meteo/*", Fault::Hang);

    let call = spawn_berlin_call(&client);
    // Drive virtual time in 10 ms steps while the call waits on real sockets.
    while !call.is_finished() {
        clock.advance(Duration::from_millis(10));
        tokio::time::sleep(Duration::from_micros(300)).await;
        assert!(
            clock.now() < Duration::from_secs(40),
            "the call outlived its deadline"
        );
    }
    let error = call.await.unwrap().unwrap_err();
    let Error::Timeout {
        deadline, attempts, ..
    } = &error
    else {
        panic!("expected Timeout, got {error:?}");
    };
    assert_eq!(*deadline, Duration::from_secs(30));
    let elapsed = clock.now();
    assert!(
        elapsed >= Duration::from_secs(30) && elapsed <= Duration::from_millis(30_020),
        "ended at {elapsed:?}"
    );
    assert_eq!(attempts[0].tries, 3, "10 s + 10 s + cut at 30 s");
    assert!(
        attempts[0].reason.contains("total deadline"),
        "{}",
        attempts[0].reason
    );
    // Every hung request was abandoned by the client, none left open.
    emulator
        .wait_for_closed_early("/open-meteo/v1/forecast", 3, Duration::from_secs(2))
        .await
        .unwrap();
}

#[tokio::test]
async fn invalid_parameters_fail_before_any_network_call() {
    let emulator = emulator().await;
    let clock = clock();
    let client = client(&emulator, &clock, "", &[]);
    let error = client
        .call("weather.current", json!({"lat": 123, "lon": 13}))
        .await
        .unwrap_err();
    assert!(
        matches!(&error, Error::InvalidRequest { field, .. } if field == "lat"),
        "{error}"
    );
    let error = client
        .call("weather.tomorrow", json!({}))
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::InvalidRequest);
    assert!(emulator.requests().is_empty());
}

#[tokio::test]
async fn retry_after_seconds_sets_the_next_try_exactly() {
    let emulator = emulator().await;
    let clock = clock();
    let config = r#"
[capabilities."weather.current"]
chain = ["open-meteo"]
"#;
    let client = client(&emulator, &clock, config, &[]);
    emulator.fault_next(
        "/open-meteo/*",
        Fault::Respond(Reply::new(429).with_header("retry-after", "3")),
        1,
    );
    let started = clock.now();
    let reply = client.call("weather.current", berlin()).await.unwrap();
    assert_eq!(reply.provider, "open-meteo");
    assert_eq!(reply.attempts[0].tries, 2);
    // The header replaced the backoff: exactly 3 s of virtual time passed.
    assert_eq!(clock.now() - started, Duration::from_secs(3));
}

#[tokio::test]
async fn retry_after_above_the_cap_fails_over_at_once_and_benches_the_provider() {
    let emulator = emulator().await;
    let clock = clock();
    let config = format!("{WEATHER_CHAIN}\n[cache]\nenabled = false\n");
    let client = client(&emulator, &clock, &config, &[]);
    emulator.fault_always(
        "/open-meteo/*",
        Fault::Respond(Reply::new(429).with_header("retry-after", "3600")),
    );
    let reply = client.call("weather.current", berlin()).await.unwrap();
    assert_eq!(reply.provider, "met-norway");
    assert_eq!(reply.attempts[0].tries, 1, "no retry on a 1 h Retry-After");
    assert_eq!(clock.now(), Duration::ZERO, "failed over at once");

    // Later calls skip open-meteo until +3600 s, then try it again.
    clock.advance(Duration::from_secs(3599));
    let reply = client.call("weather.current", berlin()).await.unwrap();
    assert_eq!(reply.attempts[0].outcome, "skipped_benched");
    assert_eq!(emulator.hits("/open-meteo/v1/forecast"), 1);
    emulator.clear_faults();
    clock.advance(Duration::from_secs(1));
    let reply = client.call("weather.current", berlin()).await.unwrap();
    assert_eq!(reply.provider, "open-meteo");
}

#[tokio::test]
async fn a_lone_provider_benched_by_its_retry_after_makes_the_next_call_rate_limited() {
    let emulator = emulator().await;
    let clock = clock();
    let config = r#"
[capabilities."weather.current"]
chain = ["open-meteo"]
[cache]
enabled = false
"#;
    let client = client(&emulator, &clock, config, &[]);
    emulator.fault_always(
        "/open-meteo/*",
        Fault::Respond(Reply::new(429).with_header("retry-after", "3600")),
    );
    let error = client.call("weather.current", berlin()).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::RateLimited);
    assert_eq!(
        error.attempts()[0].tries,
        1,
        "no retry on a 1 h Retry-After"
    );

    clock.advance(Duration::from_secs(600));
    let error = client.call("weather.current", berlin()).await.unwrap_err();

    assert_eq!(error.kind(), ErrorKind::RateLimited);
    assert!(error.is_retryable());
    assert_eq!(error.attempts()[0].outcome, "skipped_benched");
    let wait = error.retry_after().expect("the wait is known");
    assert!(
        wait <= Duration::from_secs(3000) && wait > Duration::from_secs(2990),
        "{wait:?}"
    );
    assert!(
        error.to_string().contains("may answer again in 3000"),
        "{error}"
    );
    assert_eq!(
        emulator.hits("/open-meteo/v1/forecast"),
        1,
        "benched: not asked"
    );
}

#[tokio::test]
async fn client_errors_are_not_retried_and_server_errors_are_retried_up_to_max_attempts() {
    let emulator = emulator().await;
    let clock = clock();
    let config = r#"
[capabilities."weather.current"]
chain = ["open-meteo"]
[cache]
enabled = false
"#;
    let client = client(&emulator, &clock, config, &[]);
    emulator.fault_always("/open-meteo/*", Fault::status(400));
    let error = client.call("weather.current", berlin()).await.unwrap_err();
    assert_eq!(error.attempts()[0].outcome, "invalid_request");
    assert_eq!(emulator.hits("/open-meteo/v1/forecast"), 1);

    emulator.clear_faults();
    emulator.clear_log();
    emulator.fault_always("/open-meteo/*", Fault::status(503));
    let error = client.call("weather.current", berlin()).await.unwrap_err();
    // Changed by issue #12: after its max_attempts (3), a provider that
    // failed as an unhealthy one gets one more single try later in the call
    // (its second chance): providers flap.
    let attempt = &error.attempts()[0];
    assert_eq!(attempt.tries, 4);
    assert!(
        attempt.reason.contains("second chance of open-meteo"),
        "{}",
        attempt.reason
    );
    assert_eq!(emulator.hits("/open-meteo/v1/forecast"), 4);
}

#[tokio::test]
async fn an_open_breaker_skips_the_provider_until_its_wait_is_over() {
    let emulator = emulator().await;
    let clock = clock();
    let config = r#"
[capabilities."weather.current"]
chain = ["open-meteo", "met-norway"]
[cache]
enabled = false
[providers.open-meteo]
retry = { max_attempts = 1 }
breaker = { sliding_window_size = 4, minimum_number_of_calls = 4, wait_duration_in_open_state = "30s" }
"#;
    let client = client(&emulator, &clock, config, &[]);
    emulator.fault_always("/open-meteo/*", Fault::status(503));
    for _ in 0..4 {
        let reply = client.call("weather.current", berlin()).await.unwrap();
        assert_eq!(reply.attempts[0].outcome, "transient");
    }
    let reply = client.call("weather.current", berlin()).await.unwrap();
    let skipped = &reply.attempts[0];
    assert_eq!(skipped.outcome, "skipped_circuit_open");
    assert_eq!(skipped.reason, "skipped: circuit open for 30.0 s");
    assert_eq!(emulator.hits("/open-meteo/v1/forecast"), 4);
    assert_eq!(
        client.health().capabilities["weather.current"].status,
        "degraded"
    );

    emulator.clear_faults();
    clock.advance(Duration::from_secs(30));
    let reply = client.call("weather.current", berlin()).await.unwrap();
    assert_eq!(reply.provider, "open-meteo", "half-open probe succeeds");
}

#[tokio::test]
async fn a_used_up_daily_quota_skips_the_provider_until_local_midnight() {
    let emulator = emulator().await;
    let clock = clock();
    let config = r#"
timezone = "Europe/Paris"
[capabilities."weather.current"]
chain = ["open-meteo", "met-norway"]
[cache]
enabled = false
[providers.open-meteo]
daily_quota = 2
"#;
    let client = client(&emulator, &clock, config, &[]);
    for _ in 0..2 {
        assert_eq!(
            client
                .call("weather.current", berlin())
                .await
                .unwrap()
                .provider,
            "open-meteo"
        );
    }
    let reply = client.call("weather.current", berlin()).await.unwrap();
    assert_eq!(reply.provider, "met-norway");
    assert_eq!(reply.attempts[0].outcome, "skipped_quota");
    // 2025-01-01T00:00Z is 01:00 in Paris: the next day starts at 23:00Z.
    assert_eq!(
        reply.attempts[0].retry_after,
        Some(Duration::from_secs(23 * 3600))
    );
    assert_eq!(emulator.hits("/open-meteo/v1/forecast"), 2);
    let stats = client.stats();
    let quota = stats.providers["open-meteo"].quota.clone().unwrap();
    assert_eq!(quota.remaining, 0);

    clock.advance(Duration::from_secs(23 * 3600));
    assert_eq!(
        client
            .call("weather.current", berlin())
            .await
            .unwrap()
            .provider,
        "open-meteo"
    );
}

#[tokio::test]
async fn when_every_quota_is_used_up_the_error_says_when_the_first_resets_on_the_clients_clock() {
    let emulator = emulator().await;
    let clock = clock();
    let config = r#"
timezone = "Europe/Paris"
[capabilities."weather.current"]
chain = ["open-meteo"]
[cache]
enabled = false
[providers.open-meteo]
daily_quota = 1
"#;
    let client = client(&emulator, &clock, config, &[]);
    client.call("weather.current", berlin()).await.unwrap();
    clock.advance(Duration::from_secs(3600));
    let error = client.call("weather.current", berlin()).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::QuotaExhausted);
    // The clock says 01:00Z (02:00 in Paris): Paris's next day starts at 23:00Z.
    assert_eq!(
        error.reset_at(),
        Some("2025-01-01T23:00:00Z".parse().unwrap())
    );
    assert_eq!(error.retry_after(), Some(Duration::from_secs(22 * 3600)));
    assert_eq!(emulator.hits("/open-meteo/v1/forecast"), 1);
}

/// A quota counted per month stays used up across the month's days, and
/// comes back on the 1st of the next month in the configured zone.
#[tokio::test]
async fn a_used_up_monthly_quota_skips_the_provider_until_the_next_month() {
    let emulator = emulator().await;
    let clock = clock();
    let config = r#"
timezone = "Europe/Paris"
[capabilities."weather.current"]
chain = ["open-meteo", "met-norway"]
[cache]
enabled = false
[providers.open-meteo]
monthly_quota = 2
"#;
    let client = client(&emulator, &clock, config, &[]);
    let answered_by = || async { client.call("weather.current", berlin()).await.unwrap() };
    for _ in 0..2 {
        assert_eq!(answered_by().await.provider, "open-meteo");
    }
    // 2025-01-01T00:00Z; February starts at 2025-01-31T23:00Z in Paris.
    let until_february = Duration::from_secs((30 * 24 + 23) * 3600);
    let reply = answered_by().await;
    assert_eq!(reply.provider, "met-norway");
    assert_eq!(reply.attempts[0].outcome, "skipped_quota");
    assert_eq!(reply.attempts[0].retry_after, Some(until_february));
    let quota = client.stats().providers["open-meteo"]
        .quota
        .clone()
        .unwrap();
    assert_eq!(quota.period, polyrelay::provider::QuotaPeriod::Month);
    assert_eq!(quota.date.to_string(), "2025-01-01");

    // A new day is not a new month.
    clock.advance(Duration::from_secs(2 * 24 * 3600));
    assert_eq!(answered_by().await.provider, "met-norway");
    clock.advance(until_february - Duration::from_secs(2 * 24 * 3600));
    assert_eq!(answered_by().await.provider, "open-meteo");
    assert_eq!(emulator.hits("/open-meteo/v1/forecast"), 3);
}

#[tokio::test]
async fn not_found_everywhere_is_a_not_found_error_remembered_by_the_cache() {
    let emulator = emulator().await;
    let clock = clock();
    let config = r#"
[capabilities."finance.fx_rates"]
chain = ["frankfurter", "currency-api"]
"#;
    let client = client(&emulator, &clock, config, &[]);
    emulator.fault_always(
        "/frankfurter/*",
        Fault::Respond(Reply::json(&json!({"message": "not found"})).with_status(404)),
    );
    emulator.fault_always(
        "/currency-api/*",
        Fault::Respond(Reply::text("Not found").with_status(404)),
    );
    let params = json!({"base": "USD", "symbols": ["EUR"]});
    let error = client
        .call("finance.fx_rates", params.clone())
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::NotFound, "{error}");
    let hits = emulator.requests().len();
    assert_eq!(hits, 2);
    let error = client.call("finance.fx_rates", params).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::NotFound);
    assert_eq!(
        emulator.requests().len(),
        hits,
        "the negative answer was cached"
    );
}

#[tokio::test]
async fn malformed_and_oversized_replies_fall_back_instead_of_failing() {
    let emulator = emulator().await;
    let clock = clock();
    let config =
        format!("max_response_bytes = 100000\n{WEATHER_CHAIN}\n[cache]\nenabled = false\n");
    let client = client(&emulator, &clock, &config, &[]);
    emulator.fault_always("/open-meteo/*", Fault::Malformed);
    emulator.fault_always("/met-norway/*", Fault::Oversized(50_000_000));
    let reply = client.call("weather.current", berlin()).await.unwrap();
    assert_eq!(reply.provider, "wttr-in");
    assert_eq!(reply.attempts[0].outcome, "malformed_response");
    assert_eq!(reply.attempts[1].outcome, "malformed_response");
    assert!(
        reply.attempts[1].reason.contains("limit"),
        "{}",
        reply.attempts[1].reason
    );
}

/// Changed by issue #12: a POST used to be re-sent
/// after a reset only with an idempotency key. Capabilities now declare
/// whether their calls have side effects, and weather has none, so a reset
/// POST is re-sent like a GET (as the official OpenAI SDK does); the rule for
/// calls with side effects is pinned by the policy table (`policy.rs`).
/// Idempotency keys still stay the same across a provider's retries and
/// change for the next provider.
#[tokio::test]
async fn a_post_without_side_effects_is_retried_after_a_reset_with_one_idempotency_key() {
    let emulator = emulator().await;
    let clock = clock();
    let plain = TestWeather::post("post-plain", None);
    let keyed_a = TestWeather::post("post-idem-a", Some("idempotency-key"));
    let keyed_b = TestWeather::post("post-idem-b", Some("idempotency-key"));
    for provider in [&plain, &keyed_a, &keyed_b] {
        provider.serve(&emulator, 10.0);
    }
    let config = r#"
[capabilities."weather.current"]
chain = ["post-plain", "post-idem-a", "post-idem-b"]
[cache]
enabled = false
"#;
    let client = builder(&emulator, &clock, config, &[])
        .provider(plain.clone())
        .provider(keyed_a.clone())
        .provider(keyed_b.clone())
        .build()
        .unwrap();
    emulator.fault_always(&plain.path(), Fault::Reset);
    emulator.fault_always(&keyed_a.path(), Fault::Reset);
    emulator.fault_next(&keyed_b.path(), Fault::Reset, 1);

    let reply = client.call("weather.current", berlin()).await.unwrap();

    assert_eq!(reply.provider, "post-idem-b");
    assert_eq!(
        emulator.hits(&plain.path()),
        3,
        "a POST without side effects is retried like a GET"
    );
    assert!(emulator
        .requests_to(&plain.path())
        .iter()
        .all(|r| r.header("idempotency-key").is_none()));
    assert_eq!(emulator.hits(&keyed_a.path()), 3);
    let key_of = |path: String| -> Vec<String> {
        emulator
            .requests_to(&path)
            .iter()
            .map(|r| r.header("idempotency-key").unwrap().to_string())
            .collect()
    };
    let a = key_of(keyed_a.path());
    let b = key_of(keyed_b.path());
    assert!(
        a.iter().all(|k| *k == a[0]),
        "one key across a provider's retries"
    );
    assert_eq!(b.len(), 2);
    assert_eq!(b[0], b[1]);
    assert_ne!(a[0], b[0], "a new key for the next provider");
}

#[tokio::test]
async fn a_refused_connection_falls_back_at_once_and_benches_the_provider_briefly() {
    let emulator = emulator().await;
    let clock = clock();
    // Nothing listens on port 9 of the loopback.
    let config = r#"
[capabilities."weather.current"]
chain = ["open-meteo", "met-norway"]
[cache]
enabled = false
[providers.open-meteo]
base_url = "http://127.0.0.1:9"
"#;
    let client = client(&emulator, &clock, config, &[]);
    let reply = client.call("weather.current", berlin()).await.unwrap();
    assert_eq!(reply.provider, "met-norway");
    assert_eq!(
        (reply.attempts[0].outcome.as_str(), reply.attempts[0].tries),
        ("transient", 1)
    );
    assert_eq!(
        clock.now(),
        Duration::ZERO,
        "no backoff spent on a refused connection"
    );

    let reply = client.call("weather.current", berlin()).await.unwrap();
    assert_eq!(reply.attempts[0].outcome, "skipped_benched");
    assert!(
        reply.attempts[0].reason.contains("connection refused"),
        "{}",
        reply.attempts[0].reason
    );
    clock.advance(Duration::from_secs(30));
    let reply = client.call("weather.current", berlin()).await.unwrap();
    assert_eq!(reply.attempts[0].tries, 1, "tried again after the bench");
}

#[tokio::test]
async fn a_retry_refused_by_a_guard_keeps_the_provider_failure_in_the_trail() {
    let emulator = emulator().await;
    let clock = clock();
    let config = r#"
[capabilities."weather.current"]
chain = ["open-meteo", "met-norway"]
[cache]
enabled = false
[providers.open-meteo]
rate_limit = { rate = "1/min", burst = 1 }
"#;
    let client = client(&emulator, &clock, config, &[]);
    emulator.fault_always("/open-meteo/*", Fault::status(503));
    let reply = client.call("weather.current", berlin()).await.unwrap();
    assert_eq!(reply.provider, "met-norway");
    let first = &reply.attempts[0];
    assert_eq!(
        (first.outcome.as_str(), first.status, first.tries),
        ("transient", Some(503), 1)
    );
    assert!(
        first.reason.contains("503") && first.reason.contains("retry skipped: client rate limit"),
        "{}",
        first.reason
    );
}
