//! `search.meta` end to end through the emulator: every `web.search`
//! engine asked at once, the providers' published example replies merged
//! into one ranking, partial answers when engines fail, suspended engines
//! not asked.

mod common;

use std::collections::HashSet;

use common::*;
use polyrelay::capability::meta_search::{normalize_url, MetaResults};
use polyrelay::{Data, ErrorKind};
use serde_json::{json, Value};

const ENGINES: [&str; 4] = ["wikipedia", "duckduckgo", "searxng", "brave"];
const BRAVE_KEY: &[(&str, &str)] = &[("BRAVE_API_KEY", "test-brave-key")];

fn results(reply: &polyrelay::Envelope) -> &MetaResults {
    match reply.data() {
        Data::MetaSearch(results) => results,
        other => panic!("{other:?}"),
    }
}

fn rust() -> Value {
    json!({"query": "rust"})
}

#[tokio::test]
async fn every_engines_answer_is_merged_into_one_ranking() {
    let emulator = emulator().await;
    let clock = clock();
    let client = client(&emulator, &clock, "", BRAVE_KEY);

    let reply = client.call("search.meta", rust()).await.unwrap();

    assert_eq!(reply.provider, "meta-search");
    let merged = results(&reply);
    assert_eq!(merged.answered, ENGINES);
    assert!(merged.missing.is_empty());
    for engine in ENGINES {
        assert_eq!(
            emulator.requests_to(&format!("/{engine}/*")).len(),
            1,
            "{engine}"
        );
    }
    // Three engines' examples list rust-lang.org (DuckDuckGo, SearXNG and
    // Brave at rank 1): one result, first, naming the three.
    let top = &merged.results[0];
    assert_eq!(top.url, "https://www.rust-lang.org/");
    assert_eq!(top.engines, ["duckduckgo", "searxng", "brave"]);
    // DuckDuckGo's copy leads (first at rank 1); Brave's date fills it in.
    assert_eq!(top.published_at.as_deref(), Some("2025-01-09T00:00:00Z"));
    let expected = 3.0 / 61.0;
    assert!((top.score - expected).abs() < 1e-12, "{}", top.score);
    // The Rust book: SearXNG and Brave at rank 2, its address as they gave it.
    assert_eq!(merged.results[1].url, "https://doc.rust-lang.org/book/");
    assert_eq!(merged.results[1].engines, ["searxng", "brave"]);
    // No page twice; scores never increase.
    let keys: HashSet<String> = merged
        .results
        .iter()
        .map(|r| normalize_url(&r.url))
        .collect();
    assert_eq!(keys.len(), merged.results.len());
    assert!(merged.results.windows(2).all(|w| w[0].score >= w[1].score));
    // An engine with a direct answer (DuckDuckGo, first in the chain with one).
    let answer = merged.answer.as_ref().unwrap();
    assert!(answer.text.starts_with("Rust is a general-purpose"));
    assert_eq!(reply.attempts.len(), 4);
    assert!(reply.attempts.iter().all(|a| a.succeeded()));
}

#[tokio::test]
async fn the_limit_cuts_the_merged_list_and_engines_choose_whom_to_ask() {
    let emulator = emulator().await;
    let clock = clock();
    let client = client(&emulator, &clock, "", BRAVE_KEY);

    let reply = client
        .call("search.meta", json!({"query": "rust", "limit": 2}))
        .await
        .unwrap();
    assert_eq!(results(&reply).results.len(), 2);

    emulator.clear_log();
    let reply = client
        .call(
            "search.meta",
            json!({"query": "rust lang", "engines": "brave,wikipedia"}),
        )
        .await
        .unwrap();
    assert_eq!(results(&reply).answered, ["wikipedia", "brave"]);
    assert!(emulator.requests_to("/duckduckgo/*").is_empty());
    assert!(emulator.requests_to("/searxng/*").is_empty());

    // An engine this client does not have: refused before any request.
    emulator.clear_log();
    let error = client
        .call(
            "search.meta",
            json!({"query": "rust", "engines": ["brave", "bing"]}),
        )
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::InvalidRequest);
    assert!(error.to_string().contains("bing"), "{error}");
    assert!(emulator.requests().is_empty());
}

#[tokio::test]
async fn failing_engines_leave_a_partial_answer_whose_trail_says_which() {
    let emulator = emulator().await;
    let clock = clock();
    let client = client(&emulator, &clock, "", BRAVE_KEY);
    emulator.fault_always("/duckduckgo/*", Fault::status(503));
    emulator.fault_always("/searxng/*", Fault::Malformed);

    let reply = client.call("search.meta", rust()).await.unwrap();

    let merged = results(&reply);
    assert_eq!(merged.answered, ["wikipedia", "brave"]);
    assert_eq!(merged.missing, ["duckduckgo", "searxng"]);
    let outcome = |provider: &str| {
        reply
            .attempts
            .iter()
            .find(|a| a.provider == provider)
            .map(|a| a.outcome.as_str())
            .unwrap()
    };
    assert_eq!(outcome("duckduckgo"), "transient");
    assert_eq!(outcome("searxng"), "malformed_response");
    assert_eq!(outcome("brave"), "success");
    // rust-lang.org now comes from Brave alone.
    let top = merged
        .results
        .iter()
        .find(|r| r.url == "https://www.rust-lang.org/")
        .unwrap();
    assert_eq!(top.engines, ["brave"]);
}

#[tokio::test]
async fn engines_that_cannot_be_asked_now_are_skipped_without_a_request() {
    let emulator = emulator().await;
    let clock = clock();
    // No Brave key; SearXNG's breaker opens on one failure.
    let toml = r#"
        [cache]
        enabled = false
        [providers.searxng]
        retry = { max_attempts = 1 }
        breaker = { sliding_window_size = 1, minimum_number_of_calls = 1, wait_duration_in_open_state = "10m" }
        "#;
    let client = client(&emulator, &clock, toml, &[]);
    emulator.fault_next("/searxng/*", Fault::status(503), 2);
    client.call("search.meta", rust()).await.unwrap();
    let searxng_requests = emulator.requests_to("/searxng/*").len();
    assert!(searxng_requests >= 1);

    let reply = client.call("search.meta", rust()).await.unwrap();

    let merged = results(&reply);
    assert_eq!(merged.answered, ["wikipedia", "duckduckgo"]);
    assert_eq!(merged.missing, ["searxng", "brave"]);
    assert_eq!(emulator.requests_to("/searxng/*").len(), searxng_requests);
    assert!(emulator.requests_to("/brave/*").is_empty());
    let skipped: Vec<_> = reply
        .attempts
        .iter()
        .filter(|a| a.tries == 0)
        .map(|a| (a.provider, a.outcome.as_str(), a.reason.to_string()))
        .collect();
    assert_eq!(
        skipped,
        [
            (
                "searxng",
                "skipped_circuit_open",
                "skipped: circuit open".to_string()
            ),
            (
                "brave",
                "skipped_no_key",
                "skipped: BRAVE_API_KEY is not set".to_string()
            ),
        ]
    );
}

#[tokio::test]
async fn no_engine_answering_fails_the_call_with_every_engines_trail() {
    let emulator = emulator().await;
    let clock = clock();
    let client = client(&emulator, &clock, "", BRAVE_KEY);
    for engine in ENGINES {
        emulator.fault_always(&format!("/{engine}/*"), Fault::status(503));
    }
    let error = client.call("search.meta", rust()).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::ProviderError, "{error}");
    assert!(error.to_string().contains("search.meta"), "{error}");
    let providers: HashSet<&str> = error.attempts().iter().map(|a| a.provider).collect();
    assert_eq!(providers, ENGINES.into_iter().collect());
}

#[tokio::test]
async fn a_merged_answer_is_cached_as_one() {
    let emulator = emulator().await;
    let clock = clock();
    let client = client(&emulator, &clock, "", BRAVE_KEY);
    let first = client.call("search.meta", rust()).await.unwrap();
    let sent = emulator.requests().len();
    let again = client.call("search.meta", rust()).await.unwrap();
    assert!(again.cached && !first.cached);
    assert_eq!(emulator.requests().len(), sent);
    assert_eq!(results(&again), results(&first));
}

#[tokio::test]
async fn engine_weights_scale_an_engines_votes() {
    let emulator = emulator().await;
    let clock = clock();
    let toml = r#"
        [capabilities."search.meta"]
        engine_weights = { wikipedia = 10.0 }
        "#;
    let client = client(&emulator, &clock, toml, BRAVE_KEY);
    let reply = client.call("search.meta", rust()).await.unwrap();
    let top = &results(&reply).results[0];
    // Wikipedia's first result alone (10/61) beats three engines' (3/61).
    assert_eq!(top.engines, ["wikipedia"]);
    assert!((top.score - 10.0 / 61.0).abs() < 1e-12);

    let refused = |toml: &str| {
        let config = polyrelay::config::Config::from_toml_str(toml).unwrap();
        polyrelay::Client::builder()
            .config(config)
            .env_vars(Vec::<(String, String)>::new())
            .build()
            .unwrap_err()
            .to_string()
    };
    let error = refused("[capabilities.\"web.search\"]\nengine_weights = { brave = 2.0 }\n");
    assert!(
        error.contains("`capabilities.web.search.engine_weights`: only a capability"),
        "{error}"
    );
    let error = refused("[capabilities.\"search.meta\"]\nengine_weights = { openai = 2.0 }\n");
    assert!(error.contains("is not a web.search provider"), "{error}");
    assert!(error.contains("openai"), "{error}");
    let error = refused("[capabilities.\"search.meta\"]\nengine_weights = { brave = 0.0 }\n");
    assert!(
        error.contains("engine_weights.brave`: must be a number above 0"),
        "{error}"
    );
}

#[tokio::test]
async fn an_engine_still_busy_at_the_deadline_is_cut_off_and_the_others_answer() {
    let emulator = emulator().await;
    let clock = polyrelay::clock::FakeClock::at_epoch();
    let toml = r#"
        [capabilities."search.meta"]
        total_timeout = "2s"
        "#;
    let client = client(&emulator, &clock, toml, BRAVE_KEY);
    emulator.fault_always("/brave/*", Fault::Hang);
    let call = {
        let client = client.clone();
        tokio::spawn(async move { client.call("search.meta", rust()).await })
    };
    for _ in 0..100_000 {
        if emulator.hits("/brave/*") > 0 && emulator.hits("/wikipedia/*") > 0 {
            break;
        }
        tokio::task::yield_now().await;
    }
    // Let the fast engines answer, then pass the deadline.
    for _ in 0..1000 {
        tokio::task::yield_now().await;
    }
    clock.advance(std::time::Duration::from_millis(2_100));
    let reply = tokio::time::timeout(std::time::Duration::from_secs(5), call)
        .await
        .expect("the deadline ends the call")
        .unwrap()
        .unwrap();
    let merged = results(&reply);
    assert_eq!(merged.missing, ["brave"]);
    assert_eq!(merged.answered, ["wikipedia", "duckduckgo", "searxng"]);
    let brave = reply
        .attempts
        .iter()
        .find(|a| a.provider == "brave")
        .unwrap();
    assert!(
        brave.reason.contains("search.meta's deadline of 2.0 s"),
        "{}",
        brave.reason
    );
}

#[tokio::test]
async fn news_meta_merges_every_news_engines_articles() {
    let emulator = emulator().await;
    let clock = clock();
    let keys = &[
        ("GNEWS_API_KEY", "k-gnews"),
        ("NEWSAPI_API_KEY", "k-newsapi"),
        ("GUARDIAN_API_KEY", "k-guardian"),
    ];
    let client = client(&emulator, &clock, "", keys);
    emulator.fault_always("/hn-algolia/*", Fault::status(503));

    let reply = client
        .call("news.meta", json!({"query": "climate", "limit": 3}))
        .await
        .unwrap();

    let Data::NewsMeta(merged) = reply.data() else {
        panic!("{:?}", reply.data())
    };
    assert_eq!(merged.answered, ["gdelt", "gnews", "newsapi", "guardian"]);
    assert_eq!(merged.missing, ["hn-algolia"]);
    assert_eq!(merged.articles.len(), 3);
    // GDELT's and the Guardian's examples hold the same article: one
    // result, first, the Guardian's author and summary filling GDELT's copy.
    let top = &merged.articles[0];
    assert_eq!(top.engines, ["gdelt", "guardian"]);
    assert_eq!(
        top.article.url,
        "https://www.theguardian.com/environment/2025/jan/15/climate-crisis-record-heat-2024"
    );
    assert_eq!(top.article.author.as_deref(), Some("Damian Carrington"));
    assert!(top.article.summary.is_some());
    assert!((top.article.score.unwrap() - 2.0 / 61.0).abs() < 1e-12);
    let json = serde_json::to_value(reply.data()).unwrap();
    assert_eq!(json["articles"][0]["engines"], json!(["gdelt", "guardian"]));
    assert_eq!(json["articles"][0]["source"]["name"], "The Guardian");
    // The engines' names must be news engines.
    let error = client
        .call("news.meta", json!({"query": "climate", "engines": "brave"}))
        .await
        .unwrap_err();
    assert!(
        error.to_string().contains("news.search providers"),
        "{error}"
    );
}
