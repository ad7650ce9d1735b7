//! Spending budgets end to end through the emulator, on a fake clock: a
//! request that does not fit in a budget is never sent (the emulator's
//! request counts say so) and the call falls over to a provider outside the
//! budget; reservations are settled with the usage the answer reports;
//! budgets in tokens and in dollars, scoped by provider, deployment, group
//! and caller tag, per day and per month; their state in `health()`.

mod common;

use std::time::Duration;

use common::*;
use polyrelay::{Client, Error, ErrorKind};
use serde_json::{json, Value};

const OPENAI: &str = "/openai/v1/chat/completions";
const GROQ: &str = "/groq/openai/v1/chat/completions";

/// "Hello" with `max_tokens = 10`: estimated at 6 prompt tokens (5
/// characters / 4, rounded up, and 4 for the message) and 10 to write.
fn hello() -> Value {
    json!({"messages": [{"role": "user", "content": "Hello"}], "max_tokens": 10})
}

fn with(mut params: Value, key: &str, value: &str) -> Value {
    params[key] = json!(value);
    params
}

/// An OpenAI-style chat answer from `model` reporting `prompt` and
/// `completion` tokens.
fn answer(model: &str, prompt: u64, completion: u64) -> Reply {
    Reply::json(&json!({
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "model": model,
        "choices": [{"index": 0, "finish_reason": "stop",
                     "message": {"role": "assistant", "content": "Hi."}}],
        "usage": {"prompt_tokens": prompt, "completion_tokens": completion,
                  "total_tokens": prompt + completion}
    }))
}

/// OpenAI then Groq answer chat (one try each, no cache), both reporting
/// `prompt` and `completion` tokens; `extra` is appended.
async fn setup(prompt: u64, completion: u64, extra: &str) -> (Emulator, Client) {
    let emulator = emulator().await;
    emulator.route(Method::POST, OPENAI, answer("my-model", prompt, completion));
    emulator.route(Method::POST, GROQ, answer("my-model", prompt, completion));
    let toml = format!(
        r#"
        [cache]
        enabled = false
        [defaults]
        retry = {{ max_attempts = 1 }}
        [capabilities."llm.chat"]
        chain = ["openai", "groq"]
        {extra}
        "#
    );
    let client = client(&emulator, &clock(), &toml, LLM_KEYS);
    (emulator, client)
}

fn budget(client: &Client, name: &str) -> polyrelay::BudgetSnapshot {
    client.health().budgets[name].clone()
}

fn trail(reply: &polyrelay::Envelope) -> Vec<(&'static str, &'static str)> {
    reply
        .attempts
        .iter()
        .map(|a| (a.provider, a.outcome.as_str()))
        .collect()
}

fn refused(error: &Error) -> Vec<(&'static str, String)> {
    error
        .attempts()
        .iter()
        .map(|a| (a.provider, a.outcome.as_str().to_string()))
        .collect()
}

#[tokio::test]
async fn a_token_budget_stops_at_its_limit_and_nothing_is_sent_past_it() {
    // 16 tokens a call, estimated and reported alike: 6 calls fit in 100.
    let (emulator, client) = setup(
        6,
        10,
        "[budgets.all]\ntokens = 100\nproviders = [\"openai\", \"groq\"]",
    )
    .await;
    for _ in 0..6 {
        let reply = client.call("llm.chat", hello()).await.unwrap();
        assert_eq!(trail(&reply), [("openai", "success")]);
    }
    let state = budget(&client, "all");
    assert_eq!(
        (state.spent, state.remaining, state.limit),
        (96.0, 4.0, 100.0)
    );
    let error = client.call("llm.chat", hello()).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::QuotaExhausted);
    assert_eq!(
        refused(&error),
        [
            ("openai", "skipped_budget".to_string()),
            ("groq", "skipped_budget".to_string())
        ]
    );
    let reason = error.attempts()[0].reason.to_string();
    assert!(
        reason.contains("budget all has 4 tokens left, the request is estimated at 16 tokens"),
        "{reason}"
    );
    assert_eq!(
        error.reset_at(),
        Some("2025-02-01T00:00:00Z".parse().unwrap()),
        "a month's budget resets on the 1st"
    );
    assert_eq!(emulator.hits(OPENAI), 6, "the refused call sent nothing");
    assert_eq!(emulator.hits(GROQ), 0);
    assert_eq!(
        budget(&client, "all").spent,
        96.0,
        "a refusal takes nothing"
    );
}

#[tokio::test]
async fn settling_gives_back_what_an_answer_did_not_use_and_charges_what_it_did() {
    // Estimated at 16, reported 2: each call gives 14 back, so 10 calls
    // fit in 100 tokens where their estimates alone would not (160).
    let (emulator, client) = setup(1, 1, "[budgets.b]\ntokens = 100").await;
    for _ in 0..10 {
        client.call("llm.chat", hello()).await.unwrap();
    }
    assert_eq!(budget(&client, "b").spent, 20.0);
    assert_eq!(emulator.hits(OPENAI), 10);

    // Estimated at 16, reported 40: charged in full, past the limit.
    let (emulator, client) = setup(30, 10, "[budgets.b]\ntokens = 100").await;
    for _ in 0..3 {
        client.call("llm.chat", hello()).await.unwrap();
    }
    let state = budget(&client, "b");
    assert_eq!((state.spent, state.remaining), (120.0, 0.0));
    let error = client.call("llm.chat", hello()).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::QuotaExhausted);
    assert_eq!(emulator.hits(OPENAI), 3);
}

#[tokio::test]
async fn a_failed_request_gives_its_reservation_back() {
    let (emulator, client) = setup(6, 10, "[budgets.b]\ntokens = 16").await;
    emulator.fault_next("/openai/*", Fault::status(500), 1);
    let reply = client.call("llm.chat", hello()).await.unwrap();
    assert_eq!(
        trail(&reply),
        [("openai", "transient"), ("groq", "success")]
    );
    assert_eq!(
        budget(&client, "b").spent,
        16.0,
        "only groq's answer counts"
    );
}

#[tokio::test]
async fn a_dollar_budget_counts_millionths_at_the_deployments_price_and_refuses_the_unpriced() {
    // 6 × $1 + 10 × $2 a million tokens = 26 µ$ a call: 3 calls fit in
    // 100 µ$.
    let extra = r#"
        [deployments.mine]
        provider = "openai"
        model = "my-model"
        price = { input_per_mtok = 1.0, output_per_mtok = 2.0 }
        [groups.fast]
        deployments = ["mine"]
        [budgets.usd]
        usd = 0.0001
    "#;
    let (emulator, client) = setup(6, 10, extra).await;
    let call = || client.call("llm.chat", with(hello(), "model", "fast"));
    for _ in 0..3 {
        call().await.unwrap();
    }
    let state = budget(&client, "usd");
    assert!((state.spent - 78e-6).abs() < 1e-12, "{state:?}");
    assert_eq!(state.unit, polyrelay::BudgetUnit::Usd);
    let error = call().await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::QuotaExhausted);
    assert!(error.attempts()[0]
        .reason
        .contains("budget usd has $0.000022 left, the request is estimated at $0.000026"));
    assert_eq!(emulator.hits(OPENAI), 3);

    // A model no price is known for: a dollar budget cannot count it, so
    // it is not sent; Groq, asked for a model it has no price for either,
    // is refused too.
    let error = client
        .call("llm.chat", with(hello(), "model", "unknown-model"))
        .await
        .unwrap_err();
    assert_eq!(
        refused(&error),
        [
            ("openai", "skipped_budget".to_string()),
            ("groq", "skipped_budget".to_string())
        ]
    );
    let reason = error.attempts()[0].reason.to_string();
    assert!(
        reason.contains("openai/unknown-model has no price"),
        "{reason}"
    );
    assert_eq!(emulator.hits(OPENAI), 3);
    assert_eq!(emulator.hits(GROQ), 0);
}

#[tokio::test]
async fn a_provider_budget_passes_the_call_to_a_provider_outside_it() {
    let (emulator, client) =
        setup(6, 10, "[budgets.o]\ntokens = 16\nproviders = [\"openai\"]").await;
    let first = client.call("llm.chat", hello()).await.unwrap();
    assert_eq!(trail(&first), [("openai", "success")]);
    let second = client.call("llm.chat", hello()).await.unwrap();
    assert_eq!(
        trail(&second),
        [("openai", "skipped_budget"), ("groq", "success")]
    );
    assert_eq!((emulator.hits(OPENAI), emulator.hits(GROQ)), (1, 1));
    assert_eq!(budget(&client, "o").spent, 16.0, "groq is not counted");
}

#[tokio::test]
async fn a_tag_budget_counts_only_its_callers() {
    // Team A's calls to OpenAI: both lists must match.
    let (emulator, client) = setup(
        6,
        10,
        "[budgets.team-a]\ntokens = 16\ntags = [\"team-a\"]\nproviders = [\"openai\"]",
    )
    .await;
    let tagged = || client.call("llm.chat", with(hello(), "tag", "team-a"));
    assert_eq!(trail(&tagged().await.unwrap()), [("openai", "success")]);
    assert_eq!(
        trail(&tagged().await.unwrap()),
        [("openai", "skipped_budget"), ("groq", "success")]
    );
    let other = client
        .call("llm.chat", with(hello(), "tag", "team-b"))
        .await
        .unwrap();
    assert_eq!(trail(&other), [("openai", "success")]);
    let untagged = client.call("llm.chat", hello()).await.unwrap();
    assert_eq!(trail(&untagged), [("openai", "success")]);
    assert_eq!((emulator.hits(OPENAI), emulator.hits(GROQ)), (3, 1));
    assert_eq!(budget(&client, "team-a").spent, 16.0);

    // Without a provider list, Team A's calls count wherever they go.
    let (emulator, client) =
        setup(6, 10, "[budgets.team-a]\ntokens = 16\ntags = [\"team-a\"]").await;
    let tagged = || client.call("llm.chat", with(hello(), "tag", "team-a"));
    tagged().await.unwrap();
    assert_eq!(
        tagged().await.unwrap_err().kind(),
        ErrorKind::QuotaExhausted
    );
    assert_eq!((emulator.hits(OPENAI), emulator.hits(GROQ)), (1, 0));

    match client
        .call("llm.chat", with(hello(), "tag", "team a"))
        .await
    {
        Err(Error::InvalidRequest { field, .. }) => assert_eq!(field, "tag"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn deployment_and_group_budgets_count_their_own_calls() {
    let deployments = r#"
        [deployments.gpt-eu]
        provider = "openai"
        model = "gpt-4o-mini"
        [deployments.gpt-us]
        provider = "openai"
        model = "gpt-4.1"
        [groups.fast]
        deployments = ["gpt-eu", "gpt-us"]
    "#;
    let (emulator, client) = setup(
        6,
        10,
        &format!("{deployments}\n[budgets.eu]\ntokens = 16\ndeployments = [\"gpt-eu\"]"),
    )
    .await;
    let fast = || client.call("llm.chat", with(hello(), "model", "fast"));
    let deployments_of = |reply: &polyrelay::Envelope| {
        reply
            .attempts
            .iter()
            .map(|a| (a.deployment.unwrap_or("-"), a.outcome.as_str()))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        deployments_of(&fast().await.unwrap()),
        [("gpt-eu", "success")]
    );
    assert_eq!(
        deployments_of(&fast().await.unwrap()),
        [("gpt-eu", "skipped_budget"), ("gpt-us", "success")]
    );
    assert_eq!(emulator.hits(OPENAI), 2);

    let (emulator, client) = setup(
        6,
        10,
        &format!("{deployments}\n[budgets.g]\ntokens = 32\ngroups = [\"fast\"]"),
    )
    .await;
    let fast = || client.call("llm.chat", with(hello(), "model", "fast"));
    fast().await.unwrap();
    fast().await.unwrap();
    let error = fast().await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::QuotaExhausted);
    assert_eq!(emulator.hits(OPENAI), 2);
    // The same provider outside the group is not counted.
    let plain = client.call("llm.chat", hello()).await.unwrap();
    assert_eq!(trail(&plain), [("openai", "success")]);
    assert_eq!(budget(&client, "g").spent, 32.0);
}

#[tokio::test]
async fn a_days_budget_resets_at_midnight_and_a_months_on_the_first() {
    let emulator = emulator().await;
    emulator.route(Method::POST, OPENAI, answer("my-model", 6, 10));
    let toml = r#"
        timezone = "Europe/Paris"
        [cache]
        enabled = false
        [capabilities."llm.chat"]
        chain = ["openai"]
        [budgets.daily]
        tokens = 16
        period = "day"
        tags = ["d"]
        [budgets.monthly]
        tokens = 16
        tags = ["m"]
    "#;
    let clock = clock();
    // 2025-01-01T00:00Z is 01:00 in Paris.
    let client = client(&emulator, &clock, toml, LLM_KEYS);
    let call = |tag: &str| client.call("llm.chat", with(hello(), "tag", tag));
    call("d").await.unwrap();
    call("m").await.unwrap();
    let error = call("d").await.unwrap_err();
    assert_eq!(
        error.reset_at(),
        Some("2025-01-01T23:00:00Z".parse().unwrap()),
        "Paris's midnight"
    );
    assert!(call("m").await.is_err());
    let daily = budget(&client, "daily");
    assert_eq!(daily.reset_at.to_rfc3339(), "2025-01-01T23:00:00+00:00");
    assert_eq!(daily.timezone, "Europe/Paris");

    clock.set_wall("2025-01-01T23:00:00Z".parse().unwrap());
    call("d").await.unwrap();
    assert!(
        call("m").await.is_err(),
        "a new day does not restore the month"
    );
    assert_eq!(budget(&client, "daily").spent, 16.0);

    clock.set_wall("2025-01-31T21:00:00Z".parse().unwrap());
    assert!(call("m").await.is_err());
    clock.advance(Duration::from_secs(2 * 3600));
    call("m").await.unwrap();
    let monthly = budget(&client, "monthly");
    assert_eq!(monthly.date.to_string(), "2025-02-01");
    assert_eq!(monthly.spent, 16.0);
    assert_eq!(emulator.hits(OPENAI), 4);
}

#[tokio::test]
async fn a_stream_settles_its_budget_with_the_usage_of_its_final_event() {
    let emulator = emulator().await;
    let openai = polyrelay::internal::builtin_providers()
        .iter()
        .copied()
        .find(|p| polyrelay::provider::Provider::info(p).id == "openai")
        .unwrap();
    let path = polyrelay::provider::Provider::streams_chat(&openai)
        .unwrap()
        .stream_fixtures()[0]
        .path;
    emulator.route(
        Method::POST,
        &format!("/openai{path}"),
        polyrelay::emulation::stream_reply(openai, Duration::ZERO).unwrap(),
    );
    let toml = r#"
        [cache]
        enabled = false
        [capabilities."llm.chat"]
        chain = ["openai"]
        [budgets.b]
        tokens = 1000
    "#;
    let client = client(&emulator, &clock(), toml, LLM_KEYS);
    let mut stream = client.stream("llm.chat", hello()).unwrap();
    let mut done = false;
    while let Some(chunk) = stream.next().await {
        done |= matches!(chunk.unwrap(), polyrelay::ChatChunk::Done(_));
    }
    assert!(done);
    // The fixture's final chunk reports 19 prompt and 10 generated tokens
    // (the estimate was 16).
    assert_eq!(budget(&client, "b").spent, 29.0);
}

#[test]
fn configuration_errors_name_the_budget_and_its_field() {
    let field = |toml: &str| {
        let built = polyrelay::config::Config::from_toml_str(toml)
            .and_then(|config| Client::builder().config(config).env_vars([]).build());
        match built {
            Err(Error::Config { field, .. }) => field,
            other => panic!("{other:?}"),
        }
    };
    assert_eq!(
        field("[budgets.b]\ntokens = 5\nproviders = [\"nope\"]"),
        "budgets.b.providers"
    );
    assert_eq!(
        field("[budgets.b]\ntokens = 5\ngroups = [\"fast\"]"),
        "budgets.b.groups"
    );
    assert_eq!(
        field("[budgets.b]\ntokens = 5\ndeployments = [\"x\"]"),
        "budgets.b.deployments"
    );
    assert_eq!(field("[budgets.b]\nusd = 5\ntokens = 5"), "budgets.b");
    assert_eq!(field("[budgets.b]\nusd = -5"), "budgets.b.usd");
}

#[tokio::test]
async fn embeddings_count_their_input_tokens() {
    let emulator = emulator().await;
    let toml = r#"
        [cache]
        enabled = false
        [capabilities."llm.embeddings"]
        chain = ["openai"]
        [budgets.vectors]
        tokens = 20
        tags = ["index"]
    "#;
    let client = client(&emulator, &clock(), toml, LLM_KEYS);
    let embed = || {
        client.call(
            "llm.embeddings",
            json!({"inputs": ["a", "b"], "tag": "index"}),
        )
    };
    // Estimated at 2 tokens; the fixture reports 14.
    embed().await.unwrap();
    assert_eq!(budget(&client, "vectors").spent, 14.0);
    embed().await.unwrap();
    assert_eq!(budget(&client, "vectors").spent, 28.0);
    let error = embed().await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::QuotaExhausted);
    assert_eq!(emulator.hits("/openai/v1/embeddings"), 2);
}
