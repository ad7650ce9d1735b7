//! `Client::batch`: many calls at once, bounded, in any order, each result
//! tagged with its request's position.

mod common;

use std::num::NonZeroUsize;
use std::time::Duration;

use common::*;
use futures::StreamExt;
use polyrelay::{Client, Request};
use serde_json::json;

fn live_client(emulator: &Emulator) -> Client {
    Client::builder()
        .env_vars([("POLYRELAY_EMULATOR_URL".to_string(), emulator.base_url())])
        .testing(true)
        .build()
        .expect("client builds")
}

fn weather_at(lat: f64) -> Request {
    Request::parse("weather.current", json!({"lat": lat, "lon": 13.41})).expect("valid")
}

fn fx(base: &str) -> Request {
    Request::parse("finance.fx_rates", json!({"base": base})).expect("valid")
}

fn width(n: usize) -> NonZeroUsize {
    NonZeroUsize::new(n).expect("not zero")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_request_is_answered_once_tagged_with_its_position() {
    let emulator = emulator().await;
    let client = live_client(&emulator);
    let requests = vec![
        weather_at(1.0),
        fx("EUR"),
        weather_at(2.0),
        fx("USD"),
        weather_at(3.0),
    ];

    let mut finished: Vec<_> = client.batch(requests, width(3)).collect().await;
    finished.sort_by_key(|(index, _)| *index);

    let indices: Vec<usize> = finished.iter().map(|(i, _)| *i).collect();
    assert_eq!(indices, [0, 1, 2, 3, 4]);
    let capabilities: Vec<&str> = finished
        .iter()
        .map(|(_, outcome)| outcome.as_ref().expect("answered").capability.as_str())
        .collect();
    assert_eq!(
        capabilities,
        [
            "weather.current",
            "finance.fx_rates",
            "weather.current",
            "finance.fx_rates",
            "weather.current"
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_more_than_concurrency_calls_are_in_flight_upstream() {
    let emulator = emulator().await;
    emulator.fault_always("/open-meteo/*", Fault::Latency(Duration::from_millis(20)));
    let client = live_client(&emulator);

    for concurrency in [1, 3] {
        emulator.reset_peak_in_flight();
        let requests = (0..9).map(|i| weather_at(10.0 * concurrency as f64 + i as f64));
        let finished: Vec<_> = client
            .batch(requests.collect::<Vec<_>>(), width(concurrency))
            .collect()
            .await;
        assert_eq!(finished.len(), 9);
        assert!(finished.iter().all(|(_, outcome)| outcome.is_ok()));
        assert_eq!(
            emulator.peak_in_flight(),
            concurrency as u64,
            "concurrency {concurrency}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_come_back_in_their_place_and_the_rest_still_run() {
    let emulator = emulator().await;
    let client = Client::builder()
        .config(
            polyrelay::config::Config::from_toml_str(
                "[capabilities.\"finance.fx_rates\"]\nchain = [\"frankfurter\"]\n",
            )
            .expect("config parses"),
        )
        .env_vars([("POLYRELAY_EMULATOR_URL".to_string(), emulator.base_url())])
        .testing(true)
        .build()
        .expect("client builds");
    emulator.fault_always("/frankfurter/*", Fault::status(404));

    let mut finished: Vec<_> = client
        .batch(vec![weather_at(1.0), fx("EUR"), weather_at(2.0)], width(2))
        .collect()
        .await;
    finished.sort_by_key(|(index, _)| *index);

    assert!(finished[0].1.is_ok() && finished[2].1.is_ok());
    assert!(finished[1].1.is_err(), "{:?}", finished[1].1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_the_batch_cancels_the_calls_still_running() {
    let emulator = emulator().await;
    emulator.fault_always("/open-meteo/*", Fault::Hang);
    let client = live_client(&emulator);
    let mut batch = client.batch(
        (0..5).map(|i| weather_at(i as f64)).collect::<Vec<_>>(),
        width(2),
    );

    let nothing = tokio::time::timeout(Duration::from_millis(50), batch.next()).await;
    assert!(nothing.is_err(), "hanging calls cannot finish");
    emulator
        .wait_for_requests("/open-meteo/*", 2, Duration::from_secs(2))
        .await
        .expect("two calls started");
    drop(batch);

    let closed = emulator
        .wait_for_closed_early("/open-meteo/*", 2, Duration::from_secs(2))
        .await
        .expect("both calls were cancelled");
    assert_eq!(closed.len(), 2);
    assert_eq!(
        emulator.hits("/open-meteo/*"),
        2,
        "no third call was started"
    );
}
