//! `cost_usd` end to end through the emulator: in a chat and an embeddings
//! result, on the answering provider's trail entry, in the provider's
//! stats and in a stream's final envelope; a cache hit costs nothing,
//! cached prompt tokens are billed at the cached price, the configuration
//! overrides the shipped prices, and an unpriced model answers `null`.

mod common;

use common::*;
use polyrelay::emulation::{Emulator, Method, Reply};
use polyrelay::provider::Provider;
use polyrelay::{ChatChunk, Client, Envelope, Error};
use serde_json::{json, Value};

/// Only OpenAI answers chat and embeddings.
const OPENAI_ONLY: &str = r#"
[capabilities."llm.chat"]
chain = ["openai"]
[capabilities."llm.embeddings"]
chain = ["openai"]
"#;

fn hello() -> Value {
    json!({"messages": [{"role": "user", "content": "Hello"}]})
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-12
}

fn stats_of(client: &Client, provider: &str) -> polyrelay::StatsCounters {
    client.stats().providers[provider].counters.clone()
}

fn answered_cost(envelope: &Envelope) -> Option<f64> {
    envelope
        .attempts
        .iter()
        .find(|a| a.succeeded())
        .and_then(|a| a.cost_usd)
}

#[tokio::test]
async fn a_chat_result_its_trail_and_stats_carry_the_cost_and_a_cache_hit_costs_nothing() {
    let emulator = emulator().await;
    let client = client(&emulator, &clock(), OPENAI_ONLY, LLM_KEYS);
    // The fixture: gpt-4.1-2025-04-14 (priced as gpt-4.1: $2 in, $8 out a
    // million), 19 prompt and 10 generated tokens.
    let expected = (19.0 * 2.0 + 10.0 * 8.0) / 1e6;
    let fresh = client.call("llm.chat", hello()).await.unwrap();
    assert!(!fresh.cached);
    assert!(
        close(fresh.cost_usd.unwrap(), expected),
        "{:?}",
        fresh.cost_usd
    );
    assert!(close(answered_cost(&fresh).unwrap(), expected));
    let json = fresh.to_json();
    assert!(close(json["cost_usd"].as_f64().unwrap(), expected));
    assert!(close(
        json["attempts"][0]["cost_usd"].as_f64().unwrap(),
        expected
    ));
    let stats = stats_of(&client, "openai");
    assert_eq!((stats.input_tokens, stats.output_tokens), (19, 10));
    assert!(close(stats.cost_usd, expected));
    assert_eq!(stats.unpriced_answers, 0);

    let hit = client.call("llm.chat", hello()).await.unwrap();
    assert!(hit.cached);
    assert_eq!(hit.cost_usd, Some(0.0));
    assert_eq!(hit.to_json()["cost_usd"], json!(0.0));
    // Nothing was spent: the stats are those of the one answer.
    assert!(close(stats_of(&client, "openai").cost_usd, expected));
    assert_eq!(stats_of(&client, "openai").input_tokens, 19);
}

#[tokio::test]
async fn cached_prompt_tokens_are_billed_at_the_cached_price() {
    let emulator = Emulator::start().await.unwrap();
    emulator.route(
        Method::POST,
        "/openai/v1/chat/completions",
        Reply::json(&json!({
            "id": "chatcmpl-1",
            "object": "chat.completion",
            "model": "gpt-4o-mini-2024-07-18",
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": "Hi."}}],
            "usage": {"prompt_tokens": 2000, "completion_tokens": 100, "total_tokens": 2100,
                      "prompt_tokens_details": {"cached_tokens": 1500}}
        })),
    );
    let client = client(&emulator, &clock(), OPENAI_ONLY, LLM_KEYS);
    let reply = client.call("llm.chat", hello()).await.unwrap();
    // gpt-4o-mini: 500 fresh × $0.15, 1500 cached × $0.075, 100 out × $0.60.
    let expected = (500.0 * 0.15 + 1500.0 * 0.075 + 100.0 * 0.60) / 1e6;
    assert!(
        close(reply.cost_usd.unwrap(), expected),
        "{:?}",
        reply.cost_usd
    );
}

#[tokio::test]
async fn embeddings_are_priced_by_their_input_tokens() {
    let emulator = emulator().await;
    let client = client(&emulator, &clock(), OPENAI_ONLY, LLM_KEYS);
    let reply = client
        .call("llm.embeddings", json!({"inputs": ["a", "b"]}))
        .await
        .unwrap();
    // text-embedding-3-small, 14 tokens at $0.02 a million.
    let expected = 14.0 * 0.02 / 1e6;
    assert!(
        close(reply.cost_usd.unwrap(), expected),
        "{:?}",
        reply.cost_usd
    );
    assert!(close(answered_cost(&reply).unwrap(), expected));
    assert_eq!(stats_of(&client, "openai").input_tokens, 14);
}

#[tokio::test]
async fn a_stream_ends_with_its_cost_and_a_replay_costs_nothing() {
    let emulator = emulator().await;
    let openai = polyrelay::internal::builtin_providers()
        .iter()
        .copied()
        .find(|p| p.info().id == "openai")
        .unwrap();
    let path = openai.streams_chat().unwrap().stream_fixtures()[0].path;
    emulator.route(
        Method::POST,
        &format!("/openai{path}"),
        polyrelay::emulation::stream_reply(openai, std::time::Duration::ZERO).unwrap(),
    );
    let client = client(&emulator, &clock(), OPENAI_ONLY, LLM_KEYS);
    // gpt-4o-mini-2024-07-18, 19 prompt and 10 generated tokens in the
    // final chunk's usage.
    let expected = (19.0 * 0.15 + 10.0 * 0.60) / 1e6;
    let end = |client: &Client| {
        let mut stream = client.stream("llm.chat", hello()).unwrap();
        async move {
            while let Some(chunk) = stream.next().await {
                if let ChatChunk::Done(end) = chunk.unwrap() {
                    return end;
                }
            }
            panic!("the stream ended without its final chunk")
        }
    };
    let first = end(&client).await;
    assert!(close(first.envelope.cost_usd.unwrap(), expected));
    assert!(close(answered_cost(&first.envelope).unwrap(), expected));
    assert!(close(
        first.to_json()["cost_usd"].as_f64().unwrap(),
        expected
    ));
    let stats = stats_of(&client, "openai");
    assert!(close(stats.cost_usd, expected));
    assert_eq!((stats.input_tokens, stats.output_tokens), (19, 10));

    let replay = end(&client).await;
    assert!(replay.envelope.cached);
    assert_eq!(replay.envelope.cost_usd, Some(0.0));
    assert!(close(stats_of(&client, "openai").cost_usd, expected));
}

#[tokio::test]
async fn the_configuration_overrides_prices_and_prices_models_the_table_lacks() {
    let emulator = emulator().await;
    let toml = format!(
        r#"{OPENAI_ONLY}
[models."openai/gpt-4.1"]
output_per_mtok = 0.0
[models."openai/text-embedding-3-small"]
input_per_mtok = 1.0
"#
    );
    let client = client(&emulator, &clock(), &toml, LLM_KEYS);
    let chat = client.call("llm.chat", hello()).await.unwrap();
    // The input price stays the shipped one; the output is now free.
    assert!(close(chat.cost_usd.unwrap(), 19.0 * 2.0 / 1e6));
    let embeddings = client
        .call("llm.embeddings", json!({"inputs": ["a", "b"]}))
        .await
        .unwrap();
    assert!(close(embeddings.cost_usd.unwrap(), 14.0 / 1e6));
}

#[tokio::test]
async fn an_unpriced_model_costs_null_never_a_guessed_zero() {
    let emulator = Emulator::start().await.unwrap();
    emulator.route(
        Method::POST,
        "/openai/v1/chat/completions",
        Reply::json(&json!({
            "id": "chatcmpl-1",
            "object": "chat.completion",
            "model": "my-finetune",
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": "Hi."}}],
            "usage": {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7}
        })),
    );
    let client = client(&emulator, &clock(), OPENAI_ONLY, LLM_KEYS);
    let reply = client.call("llm.chat", hello()).await.unwrap();
    assert_eq!(reply.cost_usd, None);
    assert_eq!(reply.to_json()["cost_usd"], Value::Null);
    assert!(reply
        .to_json()
        .as_object()
        .unwrap()
        .contains_key("cost_usd"));
    assert_eq!(answered_cost(&reply), None);
    assert!(reply.to_json()["attempts"][0].get("cost_usd").is_none());
    let stats = stats_of(&client, "openai");
    assert_eq!((stats.unpriced_answers, stats.cost_usd), (1, 0.0));
    assert_eq!(stats.input_tokens, 5);
}

#[tokio::test]
async fn other_capabilities_carry_no_cost() {
    let emulator = emulator().await;
    let client = client(&emulator, &clock(), "", &[]);
    let reply = client.call("weather.current", berlin()).await.unwrap();
    assert_eq!(reply.cost_usd, None);
    assert!(reply.to_json().get("cost_usd").is_none());
}

#[test]
fn bad_model_entries_are_configuration_errors_naming_the_field() {
    let build = |toml: &str| {
        Client::builder()
            .config(polyrelay::ConfigSource::Toml(toml.into()))
            .env_vars(Vec::new())
            .build()
    };
    for (toml, field, says) in [
        (
            "[models.\"openai/gpt-4o-mini\"]\ninput_per_mtk = 1.0\n",
            "models",
            "input_per_mtk",
        ),
        (
            "[models.\"openai/gpt-4o-mini\"]\ninput_per_mtok = -1.0\n",
            "models",
            "input_per_mtok",
        ),
        (
            "[models.gpt-4o-mini]\ninput_per_mtok = 1.0\n",
            "models",
            "provider/model",
        ),
        (
            "[models.\"nope/gpt-4o-mini\"]\ninput_per_mtok = 1.0\n",
            "models",
            "unknown provider",
        ),
    ] {
        match build(toml) {
            Err(Error::Config { field: f, message }) => {
                assert!(f.starts_with(field), "{f}: {message}");
                assert!(message.contains(says) || f.contains(says), "{f}: {message}");
            }
            other => panic!("{toml}: {other:?}"),
        }
    }
}
