//! Budgets end to end through the emulator: a caller tag's token budget
//! refuses the request that would go over it before it is sent and comes
//! back with its period; a dollar budget reserves a request's estimate and
//! settles to what the reply reports, so cheap answers leave room for more;
//! a dollar budget refuses a model it cannot price. (Exact across processes
//! through Redis: `redis.rs`.)

mod common;

use std::time::Duration;

use common::*;
use polyrelay::ErrorKind;
use serde_json::{json, Value};

/// OpenAI's recorded chat reply counts 19 prompt and 10 answer tokens, and
/// is priced as gpt-4.1 ($2 in, $8 out a million).
const REPLY_TOKENS: u64 = 29;

/// "Hello" is estimated at 2 tokens, plus 4 for the message: 6. With
/// `max_tokens` 23 the estimate is the reply's 29 tokens exactly.
fn hello(tag: &str, max_tokens: u64) -> Value {
    json!({
        "messages": [{"role": "user", "content": "Hello"}],
        "max_tokens": max_tokens,
        "tag": tag,
    })
}

fn config(budgets: &str) -> String {
    format!(
        r#"
timezone = "Europe/Paris"
[cache]
enabled = false
[capabilities."llm.chat"]
chain = ["openai"]
{budgets}
"#
    )
}

#[tokio::test]
async fn a_tags_token_budget_refuses_what_would_go_over_it_until_its_next_period() {
    let emulator = emulator().await;
    let clock = clock();
    let toml = config(&format!(
        "[budgets.alice]\ntokens = {}\nperiod = \"day\"\ntags = [\"alice\"]\n",
        3 * REPLY_TOKENS
    ));
    let client = client(&emulator, &clock, &toml, LLM_KEYS);
    for _ in 0..3 {
        client.call("llm.chat", hello("alice", 23)).await.unwrap();
    }
    let refused = client
        .call("llm.chat", hello("alice", 23))
        .await
        .unwrap_err();
    assert_eq!(refused.kind(), ErrorKind::QuotaExhausted);
    let attempt = &refused.attempts()[0];
    assert_eq!(attempt.outcome, "skipped_quota");
    assert!(attempt.reason.contains("budget `alice`"), "{attempt}");
    // 2025-01-01T00:00Z is 01:00 in Paris: the next day starts at 23:00Z.
    assert_eq!(attempt.retry_after, Some(Duration::from_secs(23 * 3600)));
    assert_eq!(attempt.tries, 0, "refused before sending");
    assert_eq!(emulator.hits("/openai/v1/chat/completions"), 3);

    // Other callers are not counted by Alice's budget.
    client.call("llm.chat", hello("bob", 23)).await.unwrap();
    // A smaller request still fits nowhere: the budget is spent.
    assert!(client.call("llm.chat", hello("alice", 1)).await.is_err());

    clock.advance(Duration::from_secs(23 * 3600));
    client.call("llm.chat", hello("alice", 23)).await.unwrap();
    assert_eq!(emulator.hits("/openai/v1/chat/completions"), 5);
}

/// A request reserves its estimate (6 prompt tokens and its `max_tokens`
/// of 1,000 answer tokens: $0.008012) and is settled to its reply's cost
/// ($0.000118). Against $0.01, 17 requests fit (16 × 118 + 8,012 ≤ 10,000
/// micro-dollars); held at their estimates, one would.
#[tokio::test]
async fn a_dollar_budget_settles_each_request_to_its_reported_cost() {
    let emulator = emulator().await;
    let client = client(
        &emulator,
        &clock(),
        &config("[budgets.all]\nusd = 0.01\n"),
        LLM_KEYS,
    );
    let mut answered = 0;
    while client.call("llm.chat", hello("any", 1000)).await.is_ok() {
        answered += 1;
        assert!(answered <= 17, "the budget let more through than it holds");
    }
    assert_eq!(answered, 17);
    assert_eq!(emulator.hits("/openai/v1/chat/completions"), 17);
}

#[tokio::test]
async fn a_dollar_budget_refuses_a_model_it_cannot_price() {
    let emulator = emulator().await;
    let client = client(
        &emulator,
        &clock(),
        &config("[budgets.all]\nusd = 5.0\nproviders = [\"openai\"]\n"),
        LLM_KEYS,
    );
    let params = json!({
        "messages": [{"role": "user", "content": "Hello"}],
        "model": "a-model-of-our-own",
    });
    let error = client.call("llm.chat", params).await.unwrap_err();
    let attempt = &error.attempts()[0];
    assert!(attempt.reason.contains("no known price"), "{attempt}");
    assert_eq!(attempt.retry_after, None);
    assert_eq!(emulator.hits("/openai/v1/chat/completions"), 0);
}

#[tokio::test]
async fn budget_settings_are_checked_and_name_the_field() {
    let error = |budgets: &str| {
        let toml = config(budgets);
        match polyrelay::Config::from_toml_str(&toml).and_then(|c| {
            polyrelay::Client::builder()
                .config(c)
                .env_vars(Vec::<(String, String)>::new())
                .build()
        }) {
            Err(polyrelay::Error::Config { field, .. }) => field,
            other => panic!("not a config error: {:?}", other.map(|_| ())),
        }
    };
    assert_eq!(
        error("[budgets.a]\nusd = 1.0\ntokens = 5\n"),
        "budgets.a.tokens"
    );
    assert_eq!(error("[budgets.a]\nperiod = \"day\"\n"), "budgets.a.usd");
    assert_eq!(
        error("[budgets.a]\nusd = 1.0\nproviders = [\"nope\"]\n"),
        "budgets.a.providers"
    );
    assert!(error("[budgets.a]\nusd = 1.0\nweekly = true\n").starts_with("budgets"));
}
