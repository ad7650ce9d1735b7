//! polyrelay's central promise: a call fails only when no provider of its
//! chain can answer before the call's deadline. Second pass, last-resort
//! probe, safe retries, the fallback reserve and hedging, on the emulator.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use polyrelay::clock::Clock;
use polyrelay::ErrorKind;

const NO_CACHE: &str = "[cache]\nenabled = false\n";

#[tokio::test]
async fn a_second_pass_waits_exactly_until_the_rate_limit_slot() {
    let emulator = emulator().await;
    let clock = clock();
    let config = format!(
        r#"{NO_CACHE}
[capabilities."weather.current"]
chain = ["open-meteo"]
[providers.open-meteo]
rate_limit = "1/s"
"#
    );
    let client = client(&emulator, &clock, &config, &[]);
    client.call("weather.current", berlin()).await.unwrap();
    clock.advance(Duration::from_millis(400));

    let started = clock.now();
    let reply = client.call("weather.current", berlin()).await.unwrap();

    assert_eq!(reply.provider, "open-meteo");
    assert_eq!(
        clock.now() - started,
        Duration::from_millis(600),
        "waited exactly until the next slot"
    );
    let entry = &reply.attempts[0];
    assert_eq!((entry.outcome.as_str(), entry.tries), ("success", 1));
    assert!(
        entry
            .reason
            .starts_with("waited 600 ms for open-meteo's rate-limit slot; answered"),
        "{}",
        entry.reason
    );
    assert_eq!(emulator.hits("/open-meteo/*"), 2);
}

#[tokio::test]
async fn max_wait_zero_fails_at_once_with_the_wait_in_the_error() {
    let emulator = emulator().await;
    let clock = clock();
    let config = format!(
        r#"{NO_CACHE}
[capabilities."weather.current"]
chain = ["open-meteo"]
max_wait = "0s"
[providers.open-meteo]
rate_limit = "1/s"
"#
    );
    let client = client(&emulator, &clock, &config, &[]);
    client.call("weather.current", berlin()).await.unwrap();

    let error = client
        .call("weather.current", berlin())
        .await
        .expect_err("fail-fast keeps today's behaviour");

    assert_eq!(error.kind(), ErrorKind::RateLimited);
    assert_eq!(error.retry_after(), Some(Duration::from_secs(1)));
    assert_eq!(clock.now(), Duration::ZERO, "nothing waited");
}

#[tokio::test]
async fn the_wait_is_bounded_by_max_wait_and_by_the_deadline() {
    let emulator = emulator().await;
    let clock = clock();
    // Slot in 2 s: more than max_wait (1 s) in one client, past the
    // deadline (1.5 s) in the other.
    for extra in ["max_wait = \"1s\"", "total_timeout = \"1.5s\""] {
        let config = format!(
            r#"{NO_CACHE}
[capabilities."weather.current"]
chain = ["open-meteo"]
{extra}
[providers.open-meteo]
rate_limit = "1/2s"
"#
        );
        let client = client(&emulator, &clock, &config, &[]);
        client.call("weather.current", berlin()).await.unwrap();
        let started = clock.now();
        let error = client.call("weather.current", berlin()).await.unwrap_err();
        assert_eq!(error.kind(), ErrorKind::RateLimited, "{extra}");
        assert_eq!(clock.now(), started, "{extra}: did not wait");
        clock.advance(Duration::from_secs(5));
    }
}

#[tokio::test]
async fn a_single_provider_recovers_from_a_429_and_a_500_on_the_same_provider() {
    let emulator = emulator().await;
    let clock = clock();
    let config =
        format!("{NO_CACHE}\n[capabilities.\"weather.current\"]\nchain = [\"open-meteo\"]\n");
    let client = client(&emulator, &clock, &config, &[]);

    emulator.fault_next(
        "/open-meteo/*",
        Fault::Respond(Reply::new(429).with_retry_after(Duration::from_secs(1))),
        1,
    );
    let started = clock.now();
    let reply = client.call("weather.current", berlin()).await.unwrap();
    assert_eq!(reply.attempts[0].tries, 2);
    assert_eq!(
        clock.now() - started,
        Duration::from_secs(1),
        "honoured Retry-After"
    );

    emulator.fault_next("/open-meteo/*", Fault::status(500), 1);
    let reply = client.call("weather.current", berlin()).await.unwrap();
    assert_eq!(reply.provider, "open-meteo");
    assert_eq!(reply.attempts[0].tries, 2);
    assert_eq!(emulator.hits("/open-meteo/*"), 4);
}

#[tokio::test]
async fn a_silent_provider_leaves_time_for_the_fallback() {
    let emulator = emulator().await;
    let clock = clock();
    let config = format!(
        r#"{NO_CACHE}
[capabilities."weather.current"]
chain = ["open-meteo", "met-norway"]
total_timeout = "5s"
[defaults.retry]
attempt_timeout = "5s"
"#
    );
    let client = Arc::new(client(&emulator, &clock, &config, &[]));
    emulator.fault_always("/open-meteo/*", Fault::Hang);

    let call = spawn_berlin_call(&client);
    emulator
        .wait_for_requests("/open-meteo/*", 1, Duration::from_secs(5))
        .await
        .unwrap();
    // The attempt may use the deadline less the 1 s fallback reserve.
    clock.advance(Duration::from_millis(3999));
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(
        emulator.hits("/met-norway/*"),
        0,
        "still waiting at 3.999 s"
    );
    clock.advance(Duration::from_millis(1));
    let reply = call.await.unwrap().unwrap();

    assert_eq!(reply.provider, "met-norway");
    assert!(clock.now() < Duration::from_secs(5));
    assert!(
        reply.attempts[0]
            .reason
            .contains("kept for the next provider"),
        "{}",
        reply.attempts[0].reason
    );
}

#[tokio::test]
async fn the_last_available_provider_is_never_cut_short_by_the_reserve() {
    let emulator = emulator().await;
    let clock = clock();
    // One provider: nothing to keep time for.
    let config = format!(
        r#"{NO_CACHE}
[capabilities."weather.current"]
chain = ["open-meteo"]
total_timeout = "5s"
[defaults.retry]
attempt_timeout = "5s"
max_attempts = 1
"#
    );
    let client = Arc::new(client(&emulator, &clock, &config, &[]));
    emulator.fault_next(
        "/open-meteo/*",
        Fault::Latency(Duration::from_millis(300)),
        1,
    );
    let call = spawn_berlin_call(&client);
    emulator
        .wait_for_requests("/open-meteo/*", 1, Duration::from_secs(5))
        .await
        .unwrap();
    // Past where a reserve would have cut the attempt: it goes on.
    clock.advance(Duration::from_millis(4500));
    let reply = call.await.unwrap().unwrap();
    assert_eq!(reply.provider, "open-meteo");
}

/// Both providers' breakers open after two failures each; then open-meteo
/// heals (slowly). N concurrent calls: exactly one request to open-meteo
/// while its probe is in flight (met-norway, still failing, is probed at
/// most once), every call answered.
#[tokio::test]
async fn one_last_resort_probe_serves_many_concurrent_calls() {
    let emulator = emulator().await;
    let clock = clock();
    let config = format!(
        r#"{NO_CACHE}
[capabilities."weather.current"]
chain = ["open-meteo", "met-norway"]
[defaults]
breaker = {{ sliding_window_size = 2, minimum_number_of_calls = 2, wait_duration_in_open_state = "60s" }}
retry = {{ max_attempts = 1 }}
"#
    );
    let client = Arc::new(client(&emulator, &clock, &config, &[]));
    emulator.fault_always("/open-meteo/*", Fault::status(503));
    emulator.fault_always("/met-norway/*", Fault::status(503));
    for _ in 0..2 {
        let error = client.call("weather.current", berlin()).await.unwrap_err();
        assert_eq!(error.kind(), ErrorKind::ProviderError);
    }
    for provider in ["open-meteo", "met-norway"] {
        let snapshot = client.stats();
        let stats = &snapshot.providers[provider];
        assert_eq!(
            stats.breakers["weather.current"].state.as_str(),
            "open",
            "{provider}"
        );
    }
    // The failing calls probed too while they had time left: the next
    // probe is due one probe interval later.
    clock.advance(Duration::from_secs(1));
    emulator.clear_faults();
    emulator.clear_log();
    emulator.fault_always("/open-meteo/*", Fault::Latency(Duration::from_millis(400)));
    emulator.fault_always("/met-norway/*", Fault::status(503));

    const N: usize = 8;
    let calls: Vec<_> = (0..N).map(|_| spawn_berlin_call(&client)).collect();
    emulator
        .wait_for_requests("/open-meteo/*", 1, Duration::from_secs(5))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert_eq!(emulator.hits("/open-meteo/*"), 1, "one probe in flight");
    assert!(emulator.hits("/met-norway/*") <= 1, "one probe at most");

    let mut probes = 0;
    for call in calls {
        let reply = call.await.unwrap().unwrap();
        assert_eq!(reply.provider, "open-meteo");
        let reason = &reply.attempts[0].reason;
        if reason.contains("answered a last-resort probe") {
            probes += 1;
        } else {
            assert!(
                reason.starts_with("waited") && reason.contains("another call's probe"),
                "{reason}"
            );
        }
    }
    assert_eq!(probes, 1);
}

#[tokio::test]
async fn probes_are_spaced_by_the_probe_interval_and_a_failed_probe_reopens() {
    let emulator = emulator().await;
    let clock = clock();
    let config = format!(
        r#"{NO_CACHE}
[capabilities."weather.current"]
chain = ["open-meteo"]
max_wait = "0s"
[providers.open-meteo]
breaker = {{ sliding_window_size = 2, minimum_number_of_calls = 2, wait_duration_in_open_state = "60s" }}
retry = {{ max_attempts = 1 }}
probe_interval = "10s"
"#
    );
    let client = client(&emulator, &clock, &config, &[]);
    emulator.fault_always("/open-meteo/*", Fault::status(503));
    for _ in 0..2 {
        client.call("weather.current", berlin()).await.unwrap_err();
    }
    assert_eq!(
        emulator.hits("/open-meteo/*"),
        2,
        "no probe right after its own failure"
    );
    // Open: the next call probes (and fails, re-opening the breaker).
    let error = client.call("weather.current", berlin()).await.unwrap_err();
    assert_eq!(emulator.hits("/open-meteo/*"), 3, "{error}");
    // Within the probe interval: no request at all.
    clock.advance(Duration::from_secs(9));
    let error = client.call("weather.current", berlin()).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::CircuitOpen);
    assert_eq!(emulator.hits("/open-meteo/*"), 3);
    // After it, a new probe; the provider has recovered.
    clock.advance(Duration::from_secs(1));
    emulator.clear_faults();
    let reply = client.call("weather.current", berlin()).await.unwrap();
    assert_eq!(
        reply.attempts[0].reason,
        "last-resort probe while its circuit was open; answered a last-resort probe"
    );
}

#[tokio::test]
async fn the_probe_can_be_turned_off() {
    let emulator = emulator().await;
    let clock = clock();
    let config = format!(
        r#"{NO_CACHE}
[capabilities."weather.current"]
chain = ["open-meteo"]
last_resort_probe = false
[providers.open-meteo]
breaker = {{ sliding_window_size = 2, minimum_number_of_calls = 2, wait_duration_in_open_state = "60s" }}
retry = {{ max_attempts = 1 }}
"#
    );
    let client = client(&emulator, &clock, &config, &[]);
    emulator.fault_always("/open-meteo/*", Fault::status(503));
    for _ in 0..2 {
        client.call("weather.current", berlin()).await.unwrap_err();
    }
    emulator.clear_faults();
    let error = client.call("weather.current", berlin()).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::CircuitOpen);
    assert_eq!(emulator.hits("/open-meteo/*"), 2);
}

#[tokio::test]
async fn a_slow_provider_is_hedged_and_the_loser_is_cancelled() {
    let emulator = emulator().await;
    let clock = clock();
    let config = format!(
        r#"{NO_CACHE}
[capabilities."weather.current"]
chain = ["open-meteo", "met-norway"]
hedge = {{ after = "50ms", budget = 1.0 }}
"#
    );
    let client = Arc::new(client(&emulator, &clock, &config, &[]));
    emulator.fault_next("/open-meteo/*", Fault::Hang, 1);
    let call = spawn_berlin_call(&client);
    emulator
        .wait_for_requests("/open-meteo/*", 1, Duration::from_secs(5))
        .await
        .unwrap();
    clock.advance(Duration::from_millis(50));
    let reply = call.await.unwrap().unwrap();

    assert_eq!(reply.provider, "met-norway");
    let outcomes: Vec<_> = reply
        .attempts
        .iter()
        .map(|a| (a.provider, a.outcome.as_str(), a.hedged))
        .collect();
    assert_eq!(
        outcomes,
        [
            ("open-meteo", "cancelled", false),
            ("met-norway", "success", true)
        ]
    );
    emulator
        .wait_for_closed_early("/open-meteo/*", 1, Duration::from_secs(5))
        .await
        .expect("the loser's request is closed");

    // A fast primary is never hedged.
    let reply = client.call("weather.current", berlin()).await.unwrap();
    assert_eq!(reply.provider, "open-meteo");
    assert_eq!(reply.attempts.len(), 1);
    assert_eq!(emulator.hits("/met-norway/*"), 1);
}

#[tokio::test]
async fn an_attempt_timeout_longer_than_the_deadline_is_reported() {
    let emulator = emulator().await;
    let clock = clock();
    let config = r#"
[capabilities."weather.current"]
chain = ["open-meteo", "met-norway"]
total_timeout = "11s"
[providers.open-meteo.retry]
attempt_timeout = "12s"
"#;
    let warned = client(&emulator, &clock, config, &[]);
    let warnings = warned.health().config_warnings;
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(
        warnings[0].starts_with("providers.open-meteo.retry.attempt_timeout (12.0 s)")
            && warnings[0].contains("weather.current (11.0 s)"),
        "{}",
        warnings[0]
    );
    let defaults = client(&emulator, &clock, "", &[]);
    assert!(defaults.health().config_warnings.is_empty());
}

/// A provider benched by a `Retry-After` shorter than the deadline may be
/// probed before its bench ends when nothing else can answer (a flapping
/// provider's 429 says little about the next second); with `max_wait =
/// "0s"` the call fails fast with `RateLimited` instead, without a request.
#[tokio::test]
async fn a_short_retry_after_bench_is_probed_unless_the_call_may_not_wait() {
    for (max_wait, probed) in [("30s", true), ("0s", false)] {
        let emulator = emulator().await;
        let clock = clock();
        let config = format!(
            r#"{NO_CACHE}
[capabilities."weather.current"]
chain = ["open-meteo", "met-norway"]
max_wait = "{max_wait}"
[defaults]
retry = {{ max_attempts = 1, max_retry_after = "1s" }}
"#
        );
        let client = client(&emulator, &clock, &config, &[]);
        let too_many = Fault::Respond(Reply::new(429).with_header("retry-after", "20"));
        emulator.fault_next("/open-meteo/*", too_many.clone(), 1);
        emulator.fault_always("/met-norway/*", Fault::status(404));
        emulator.fault_next("/met-norway/*", too_many, 1);
        // Both answer 429 with a 20 s wait: both benched.
        let first = client.call("weather.current", berlin()).await;
        let hits = emulator.hits("/open-meteo/*");
        if probed {
            // Within the call's 30 s: probed once a probe interval after
            // its own 429, and open-meteo has recovered.
            let reply = first.unwrap();
            assert_eq!(reply.provider, "open-meteo");
            assert!(
                reply.attempts[0]
                    .reason
                    .contains("answered a last-resort probe"),
                "{:?}",
                reply.attempts
            );
            assert_eq!(hits, 2);
        } else {
            let error = first.unwrap_err();
            assert_eq!(error.kind(), ErrorKind::RateLimited, "{error}");
            assert_eq!(hits, 1, "not probed: the call may not wait");
            let error = client.call("weather.current", berlin()).await.unwrap_err();
            assert_eq!(error.kind(), ErrorKind::RateLimited, "{error}");
            assert_eq!(emulator.hits("/open-meteo/*"), 1, "still benched");
        }
    }
}

#[tokio::test]
async fn a_provider_that_recovers_while_the_call_is_busy_elsewhere_is_asked_again() {
    let emulator = emulator().await;
    let clock = clock();
    let config = format!(
        r#"{NO_CACHE}
[capabilities."weather.current"]
chain = ["met-norway", "open-meteo"]
total_timeout = "10s"
[defaults]
retry = {{ max_attempts = 1, attempt_timeout = "2s" }}
[providers.met-norway]
breaker = {{ sliding_window_size = 2, minimum_number_of_calls = 2, wait_duration_in_open_state = "60s" }}
[providers.open-meteo]
rate_limit = "3/min"
"#
    );
    let client = Arc::new(client(&emulator, &clock, &config, &[]));
    // met-norway fails twice (its breaker opens); open-meteo answers.
    emulator.fault_always("/met-norway/*", Fault::status(503));
    for _ in 0..2 {
        let reply = client.call("weather.current", berlin()).await.unwrap();
        assert_eq!(reply.provider, "open-meteo");
    }
    emulator.clear_faults();
    emulator.fault_always("/open-meteo/*", Fault::Hang);

    // Call X passes met-norway over (open for 60 s) and hangs on open-meteo
    // with the last rate-limit slot.
    let x = spawn_berlin_call(&client);
    emulator
        .wait_for_requests("/open-meteo/*", 3, Duration::from_secs(5))
        .await
        .unwrap();
    // Call Y finds no slot on open-meteo and probes met-norway, which has
    // recovered. X is busy and does not hear it.
    let y = client.call("weather.current", berlin()).await.unwrap();
    assert_eq!(y.provider, "met-norway");
    assert!(
        y.attempts[0]
            .reason
            .contains("answered a last-resort probe"),
        "{}",
        y.attempts[0].reason
    );
    // X's attempt times out; the probe's answer is not lost on it.
    clock.advance(Duration::from_secs(2));
    let x = x.await.unwrap().unwrap();
    assert_eq!(x.provider, "met-norway");
    assert_eq!(
        x.attempts[0].reason,
        "another call's probe of it answered meanwhile; answered",
    );
    assert_eq!(x.attempts[1].outcome.as_str(), "transient", "{x:?}");
    assert_eq!(
        emulator.hits("/met-norway/*"),
        4,
        "2 failures, Y's probe, X"
    );
}
