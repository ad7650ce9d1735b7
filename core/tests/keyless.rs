//! A fresh install with no keys serves every capability that has a keyless
//! provider: here, through the emulator, with an empty environment.

mod common;

use common::*;
use polyrelay::CapabilityId;
use serde_json::{json, Value};

/// A valid request for each capability. A new capability must be added here.
fn example(capability: CapabilityId) -> Value {
    match capability.as_str() {
        "weather.current" | "weather.forecast" => berlin(),
        "finance.fx_rates" => json!({"base": "EUR", "symbols": ["USD"]}),
        "crypto.price" => json!({"assets": ["BTC"], "vs_currencies": ["USD"]}),
        "llm.chat" => json!({"messages": [{"role": "user", "content": "Say hi"}]}),
        "llm.embeddings" => json!({"inputs": ["first text", "second text"]}),
        "geo.geocode" => json!({"query": "Berlin"}),
        "finance.quote" => json!({"symbol": "AAPL"}),
        "news.search" => json!({"query": "climate"}),
        "web.search" => json!({"query": "rust programming"}),
        "translate.text" => {
            json!({"text": "Hello world", "source_lang": "en", "target_lang": "de"})
        }
        "dictionary.define" => json!({"word": "serendipity"}),
        "medical.drug_label" => json!({"name": "ibuprofen"}),
        "medical.literature_search" => json!({"query": "malaria vaccine"}),
        "medical.clinical_trials" => json!({"condition": "malaria"}),
        "entertainment.movie_search" => json!({"query": "terminator"}),
        "tv.show_search" => json!({"query": "breaking bad"}),
        "books.search" => json!({"query": "dune"}),
        "music.search" => json!({"query": "daft punk"}),
        "video.search" => json!({"query": "apollo 11"}),
        other => panic!("add an example request for {other} to core/tests/keyless.rs"),
    }
}

#[tokio::test]
async fn every_capability_with_a_keyless_provider_answers_without_any_key() {
    let emulator = emulator().await;
    let clock = clock();
    let client = client(&emulator, &clock, "", &[]);
    let mut served = 0;
    for capability in CapabilityId::ALL {
        let keyless = client
            .chain(*capability)
            .iter()
            .any(|id| polyrelay::providers::find(id).is_some_and(|p| p.info().is_keyless()));
        if !keyless {
            continue;
        }
        let reply = client
            .call(capability.as_str(), example(*capability))
            .await
            .unwrap_or_else(|e| panic!("{capability}: {e}"));
        let provider = polyrelay::providers::find(reply.provider).unwrap();
        assert!(
            provider.info().is_keyless(),
            "{capability} answered by keyed {}",
            reply.provider
        );
        served += 1;
    }
    assert!(served >= 19, "only {served} capabilities served");
}
