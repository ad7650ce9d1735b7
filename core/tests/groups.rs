//! Model groups and deployments end to end through the emulator: a call
//! whose `model` names a group walks the group's deployments, each sent its
//! own model and key, each with its own breaker, quota, tokens-per-minute
//! limit and stats; configuration errors name the field.

mod common;

use common::*;
use polyrelay::{Error, ErrorKind};
use serde_json::{json, Value};

fn question(text: &str) -> Value {
    json!({"model": "fast", "messages": [{"role": "user", "content": text}], "max_tokens": 50})
}

/// Two OpenAI deployments (own keys and models, one try each) and a Groq
/// one, in group `fast`; `extra` is appended.
fn config(extra: &str) -> String {
    format!(
        r#"
        [deployments.gpt-eu]
        provider = "openai"
        model = "gpt-4o-mini"
        api_key_env = "OPENAI_KEY_EU"
        retry = {{ max_attempts = 1 }}
        [deployments.gpt-us]
        provider = "openai"
        model = "gpt-4.1"
        api_key_env = "OPENAI_KEY_US"
        retry = {{ max_attempts = 1 }}
        [deployments.groq-llama]
        provider = "groq"
        model = "llama-3.1-8b-instant"
        {extra}
        "#
    )
}

const KEYS: &[(&str, &str)] = &[
    ("OPENAI_KEY_EU", "sk-eu-0123456789abcdef"),
    ("OPENAI_KEY_US", "sk-us-0123456789abcdef"),
    ("GROQ_API_KEY", "gsk_test_groq"),
];

fn sent_model(request: &polyrelay::emulation::RecordedRequest) -> String {
    let body: Value = serde_json::from_slice(&request.body).unwrap();
    body["model"].as_str().unwrap_or_default().to_string()
}

#[tokio::test]
async fn two_deployments_of_one_provider_send_their_own_keys_and_models() {
    let emulator = emulator().await;
    let clock = clock();
    let client = client(
        &emulator,
        &clock,
        &config("[groups.fast]\ndeployments = [\"gpt-eu\", \"gpt-us\", \"groq-llama\"]"),
        KEYS,
    );
    emulator.fault_next("/openai/*", Fault::status(500), 1);

    let reply = client.call("llm.chat", question("hello")).await.unwrap();

    assert_eq!(reply.provider, "openai");
    let trail: Vec<_> = reply
        .attempts
        .iter()
        .map(|a| (a.provider, a.deployment, a.outcome.as_str()))
        .collect();
    assert_eq!(
        trail,
        [
            ("openai", Some("gpt-eu"), "transient"),
            ("openai", Some("gpt-us"), "success"),
        ]
    );
    assert!(reply.attempts[0]
        .to_string()
        .starts_with("openai (gpt-eu): "));
    let sent = emulator.requests_to("/openai/v1/chat/completions");
    assert_eq!(sent.len(), 2);
    assert_eq!(
        sent[0].header("authorization"),
        Some("Bearer sk-eu-0123456789abcdef")
    );
    assert_eq!(sent_model(&sent[0]), "gpt-4o-mini");
    assert_eq!(
        sent[1].header("authorization"),
        Some("Bearer sk-us-0123456789abcdef")
    );
    assert_eq!(sent_model(&sent[1]), "gpt-4.1");
    // Stats per deployment, beside the providers'.
    let stats = client.stats();
    let eu = &stats.providers["gpt-eu"];
    assert_eq!(
        (eu.provider, eu.model.as_deref()),
        (Some("openai"), Some("gpt-4o-mini"))
    );
    assert_eq!(eu.counters.requests, 1);
    assert_eq!(stats.providers["gpt-us"].counters.requests, 1);
    assert_eq!(stats.providers["openai"].counters.requests, 0);
    let json = serde_json::to_value(&stats).unwrap();
    assert!(
        json["openai"].get("provider").is_none(),
        "unchanged for providers"
    );
}

#[tokio::test]
async fn a_group_call_falls_over_to_the_next_deployment_on_a_500() {
    let emulator = emulator().await;
    let clock = clock();
    let client = client(
        &emulator,
        &clock,
        &config("[groups.fast]\ndeployments = [\"gpt-eu\", \"groq-llama\"]"),
        KEYS,
    );
    emulator.fault_always("/openai/*", Fault::status(500));

    let reply = client.call("llm.chat", question("hello")).await.unwrap();

    assert_eq!(reply.provider, "groq");
    assert_eq!(reply.attempts[1].deployment, Some("groq-llama"));
    assert_eq!(emulator.hits("/openai/v1/chat/completions"), 1);
    let groq = &emulator.requests_to("/groq/openai/v1/chat/completions")[0];
    assert_eq!(sent_model(groq), "llama-3.1-8b-instant");
    // A call naming no group keeps the capability's chain and its trail.
    let plain = client
        .call(
            "llm.chat",
            json!({"messages": [{"role": "user", "content": "hello"}], "model": "llama-3.3-70b"}),
        )
        .await
        .unwrap();
    assert!(plain.attempts.iter().all(|a| a.deployment.is_none()));
    let trail = serde_json::to_value(&plain.attempts).unwrap();
    assert!(trail[0].get("deployment").is_none());
}

#[tokio::test]
async fn each_deployment_has_its_own_breaker_and_quota() {
    let emulator = emulator().await;
    let clock = clock();
    let toml = format!(
        r#"
        [cache]
        enabled = false
        [capabilities."llm.chat"]
        chain = ["openai"]
        [deployments.gpt-eu]
        provider = "openai"
        model = "gpt-4o-mini"
        base_url = "{}/openai-eu"
        retry = {{ max_attempts = 1 }}
        breaker = {{ sliding_window_size = 2, minimum_number_of_calls = 2, wait_duration_in_open_state = "10m" }}
        [deployments.gpt-us]
        provider = "openai"
        model = "gpt-4.1"
        daily_quota = 1
        [deployments.groq-llama]
        provider = "groq"
        model = "llama-3.1-8b-instant"
        [groups.fast]
        deployments = ["gpt-eu", "gpt-us", "groq-llama"]
        "#,
        emulator.base_url()
    );
    let client = client(&emulator, &clock, &toml, LLM_KEYS);
    // gpt-eu's region is down.
    emulator.fault_always("/openai-eu/*", Fault::status(503));

    let first = client.call("llm.chat", question("one")).await.unwrap();
    let second = client.call("llm.chat", question("two")).await.unwrap();
    let third = client.call("llm.chat", question("three")).await.unwrap();

    let answered = |r: &polyrelay::Envelope| {
        r.attempts
            .iter()
            .find(|a| a.succeeded())
            .and_then(|a| a.deployment)
    };
    assert_eq!(answered(&first), Some("gpt-us"));
    // gpt-us's quota of one is used up; gpt-eu failed again.
    assert_eq!(answered(&second), Some("groq-llama"));
    assert_eq!(second.attempts[1].outcome.as_str(), "skipped_quota");
    // gpt-eu's breaker opened on its two failures: skipped, nothing sent.
    assert_eq!(third.attempts[0].outcome.as_str(), "skipped_circuit_open");
    assert_eq!(emulator.hits("/openai-eu/v1/chat/completions"), 2);
    let stats = client.stats();
    let state = |name: &str| stats.providers[name].breakers["llm.chat"].state;
    assert_eq!(state("gpt-eu").as_str(), "open");
    assert_eq!(state("gpt-us").as_str(), "closed");
    assert_eq!(state("openai").as_str(), "closed");
    assert_eq!(stats.providers["gpt-us"].quota.as_ref().unwrap().used, 1);
    assert!(stats.providers["openai"].quota.is_none());
    // The provider itself is untouched by its deployments' quota and breaker.
    let plain = client
        .call(
            "llm.chat",
            json!({"messages": [{"role": "user", "content": "hello"}]}),
        )
        .await
        .unwrap();
    assert_eq!(plain.provider, "openai");
    assert_eq!(plain.attempts[0].deployment, None);
}

#[tokio::test]
async fn health_lists_each_group_with_its_deployments_readiness() {
    let emulator = emulator().await;
    let clock = clock();
    let toml = r#"
        [deployments.gpt-eu]
        provider = "openai"
        model = "gpt-4o-mini"
        retry = { max_attempts = 1 }
        breaker = { sliding_window_size = 1, minimum_number_of_calls = 1, wait_duration_in_open_state = "10m" }
        [deployments.gpt-us]
        provider = "openai"
        model = "gpt-4.1"
        api_key_env = "OPENAI_KEY_UNSET"
        [deployments.groq-llama]
        provider = "groq"
        model = "llama-3.1-8b-instant"
        [groups.fast]
        deployments = ["gpt-eu", "gpt-us", "groq-llama"]
        strategy = "least_busy"
        [groups.slow]
        deployments = ["groq-llama"]
        "#;
    let client = client(&emulator, &clock, toml, LLM_KEYS);
    let health = client.health();
    let fast = &health.groups["fast"];
    assert_eq!((fast.capability, fast.strategy), ("llm.chat", "least_busy"));
    assert_eq!(fast.health.status, "degraded");
    assert_eq!(fast.health.ready, ["gpt-eu", "groq-llama"]);
    assert_eq!(
        fast.health.unavailable["gpt-us"],
        "OPENAI_KEY_UNSET is not set"
    );
    assert_eq!(health.groups["slow"].health.status, "healthy");

    // gpt-eu's breaker opens on one failure: the group says so.
    emulator.fault_next("/openai/*", Fault::status(503), 1);
    client.call("llm.chat", question("hello")).await.unwrap();
    let health = client.health();
    let fast = &health.groups["fast"].health;
    assert_eq!(fast.ready, ["groq-llama"]);
    assert_eq!(fast.unavailable["gpt-eu"], "circuit open");
    // The capability's own chain is the providers', untouched.
    assert_eq!(
        health.capabilities["llm.chat"].unavailable.get("openai"),
        None
    );
    let json = serde_json::to_value(&health).unwrap();
    assert_eq!(json["groups"]["fast"]["status"], "degraded");
    assert_eq!(
        json["groups"]["fast"]["unavailable"]["gpt-eu"],
        "circuit open"
    );
    // Its open wait over, the next call would be let through: ready again.
    clock.advance(std::time::Duration::from_secs(601));
    let health = client.health();
    assert_eq!(health.groups["fast"].health.ready, ["gpt-eu", "groq-llama"]);
}

#[tokio::test]
async fn a_deployment_over_its_tokens_per_minute_passes_the_call_on() {
    let emulator = emulator().await;
    let clock = clock();
    let toml = r#"
        [deployments.gpt-eu]
        provider = "openai"
        model = "gpt-4o-mini"
        tpm = 1000
        [deployments.groq-llama]
        provider = "groq"
        model = "llama-3.1-8b-instant"
        [groups.fast]
        deployments = ["gpt-eu", "groq-llama"]
    "#;
    let client = client(&emulator, &clock, toml, LLM_KEYS);
    // The reply reports 990 tokens: far more than the call's estimate.
    emulator.route(
        Method::POST,
        "/openai/v1/chat/completions",
        Reply::json(&json!({
            "id": "c1", "object": "chat.completion", "model": "gpt-4o-mini",
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": "Paris."}}],
            "usage": {"prompt_tokens": 10, "completion_tokens": 980, "total_tokens": 990}
        })),
    );

    let first = client.call("llm.chat", question("one")).await.unwrap();
    assert_eq!(first.attempts[0].deployment, Some("gpt-eu"));
    assert!(first.attempts[0].succeeded());
    // Settled at 990 of 1000: the next call's estimate (51) does not fit.
    let second = client.call("llm.chat", question("two")).await.unwrap();
    let skipped = &second.attempts[0];
    assert_eq!(
        (skipped.deployment, skipped.outcome.as_str()),
        (Some("gpt-eu"), "skipped_rate_limit")
    );
    assert!(
        skipped.reason.contains("tokens-per-minute"),
        "{}",
        skipped.reason
    );
    assert!(skipped.retry_after.is_some());
    assert_eq!(second.provider, "groq");
    assert_eq!(emulator.hits("/openai/v1/chat/completions"), 1);
    // A call larger than a whole minute's tokens never goes to it.
    let big = json!({"model": "fast", "messages": [{"role": "user", "content": "three"}], "max_tokens": 5000});
    let third = client.call("llm.chat", big).await.unwrap();
    assert!(
        third.attempts[0]
            .reason
            .contains("more than its 1000 tokens per minute"),
        "{}",
        third.attempts[0].reason
    );
}

#[tokio::test]
async fn a_group_serves_only_its_capability() {
    let emulator = emulator().await;
    let clock = clock();
    let client = client(
        &emulator,
        &clock,
        &config("[groups.fast]\ndeployments = [\"gpt-eu\"]"),
        KEYS,
    );
    let error = client
        .call("llm.embeddings", json!({"inputs": ["x"], "model": "fast"}))
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::InvalidRequest);
    assert!(
        error.to_string().contains("is a group of llm.chat"),
        "{error}"
    );
}

#[tokio::test]
async fn an_embeddings_group_sends_each_deployments_model_and_names_its_space() {
    let emulator = emulator().await;
    let clock = clock();
    let toml = r#"
        [deployments.small-vectors]
        provider = "openai"
        model = "text-embedding-3-small"
        retry = { max_attempts = 1 }
        [deployments.cohere-vectors]
        provider = "cohere"
        model = "embed-v4.0"
        [groups.vectors]
        capability = "llm.embeddings"
        deployments = ["small-vectors", "cohere-vectors"]
        "#;
    let client = client(&emulator, &clock, toml, LLM_KEYS);
    let texts = json!({"inputs": ["first text", "second"], "model": "vectors"});

    let reply = client.call("llm.embeddings", texts.clone()).await.unwrap();
    let polyrelay::Data::LlmEmbeddings(vectors) = reply.data() else {
        panic!("{:?}", reply.data())
    };
    assert_eq!(vectors.space, "openai/text-embedding-3-small");
    assert_eq!(vectors.vectors.len(), 2);
    let sent = emulator.requests_to("/openai/v1/embeddings");
    assert_eq!(sent_model(&sent[0]), "text-embedding-3-small");

    // The first deployment down: the second answers, in its own space.
    emulator.fault_always("/openai/*", Fault::status(503));
    let texts = json!({"inputs": ["another text", "one more"], "model": "vectors"});
    let reply = client.call("llm.embeddings", texts).await.unwrap();
    let polyrelay::Data::LlmEmbeddings(vectors) = reply.data() else {
        panic!("{:?}", reply.data())
    };
    assert_eq!(vectors.space, "cohere/embed-v4.0");
    let trail: Vec<_> = reply
        .attempts
        .iter()
        .map(|a| (a.deployment, a.outcome.as_str()))
        .collect();
    assert_eq!(
        trail,
        [
            (Some("small-vectors"), "transient"),
            (Some("cohere-vectors"), "success")
        ]
    );
    assert_eq!(
        sent_model(&emulator.requests_to("/cohere/v2/embed")[0]),
        "embed-v4.0"
    );
}

#[test]
fn configuration_errors_name_the_field() {
    let error = |extra: &str| {
        let toml = config(extra);
        match polyrelay::config::Config::from_toml_str(&toml).and_then(|config| {
            polyrelay::Client::builder()
                .config(config)
                .env_vars(Vec::<(String, String)>::new())
                .build()
        }) {
            Err(Error::Config { field, message }) => format!("{field}: {message}"),
            other => panic!("not a config error: {:?}", other.map(|_| ())),
        }
    };
    let cases = [
        (
            "[deployments.x]\nprovider = \"nope\"\nmodel = \"m\"",
            "deployments.x.provider: unknown provider",
        ),
        (
            "[deployments.openai]\nprovider = \"openai\"\nmodel = \"m\"",
            "deployments.openai: a provider has this id",
        ),
        (
            "[deployments.x]\nprovider = \"openai\"\nmodel = \"m\"\nratelimit = \"1/s\"",
            "deployments.x: unknown field `ratelimit`",
        ),
        (
            "[deployments.x]\nprovider = \"openai\"\nmodel = \"m\"\ntpm = 0",
            "deployments.x.tpm: must be at least 1",
        ),
        (
            "[deployments.x]\nprovider = \"openai\"\nmodel = \"m\"\nprice = { input_per_mtok = -1, output_per_mtok = 1 }",
            "deployments.x.price.input_per_mtok: must be",
        ),
        ("[deployments.x]\nprovider = \"openai\"", "deployments.x: missing field `model`"),
        (
            "[groups.fast]\ndeployments = [\"gpt-eu\", \"nope\"]",
            "groups.fast.deployments: unknown deployment \"nope\"",
        ),
        ("[groups.fast]\ndeployments = []", "groups.fast.deployments: must name at least one"),
        (
            "[groups.fast]\ndeployments = [\"gpt-eu\", \"gpt-eu\"]",
            "groups.fast.deployments: names \"gpt-eu\" twice",
        ),
        (
            "[groups.fast]\ndeployments = [\"gpt-eu\"]\nstrategy = \"weighted\"\nweights = { gpt-us = 2 }",
            "groups.fast.weights.gpt-us: is not one of the group's deployments",
        ),
        (
            "[groups.fast]\ndeployments = [\"gpt-eu\"]\nweights = { gpt-eu = 2 }",
            "groups.fast.weights: only apply with strategy = \"weighted\"",
        ),
        (
            "[groups.fast]\ndeployments = [\"gpt-eu\"]\nstrategy = \"weighted\"\nweights = { gpt-eu = 0 }",
            "groups.fast.weights.gpt-eu: must be a number above 0",
        ),
        (
            "[groups.fast]\ndeployments = [\"gpt-eu\"]\nstrategy = \"fastest\"",
            "config: unknown variant `fastest`",
        ),
        (
            "[groups.fast]\ndeployments = [\"gpt-eu\"]\ncapability = \"weather.current\"",
            "groups.fast.capability: must be llm.chat or llm.embeddings",
        ),
        (
            "[groups.fast]\ndeployments = [\"gpt-eu\"]\ncapability = \"llm.embeddings\"\n[deployments.claude]\nprovider = \"anthropic\"\nmodel = \"claude-haiku-4-5\"\n[groups.embed]\ndeployments = [\"claude\"]\ncapability = \"llm.embeddings\"",
            "groups.embed.deployments: deployment \"claude\"'s provider does not serve llm.embeddings",
        ),
        (
            "[groups.\"my group\"]\ndeployments = [\"gpt-eu\"]",
            "groups.my group: a group's name is what a call's model gives",
        ),
    ];
    for (extra, expected) in cases {
        let got = error(extra);
        assert!(
            got.starts_with(expected),
            "{extra}\n got: {got}\nwant: {expected}"
        );
        assert!(!got.contains("sk-"), "no key in {got}");
    }
}

/// Two OpenAI deployments on paths of their own (`/openai-a`, `/openai-b`),
/// one try each, in group `fast` with `strategy`.
fn two_paths(emulator: &Emulator, strategy: &str) -> String {
    let base = emulator.base_url();
    format!(
        r#"
        [cache]
        enabled = false
        [defaults.retry]
        max_attempts = 1
        attempt_timeout = "2s"
        [deployments.a]
        provider = "openai"
        model = "model-a"
        base_url = "{base}/openai-a"
        [deployments.b]
        provider = "openai"
        model = "model-b"
        base_url = "{base}/openai-b"
        [groups.fast]
        deployments = ["a", "b"]
        strategy = "{strategy}"
        "#
    )
}

/// Serves OpenAI's chat reply under `/openai-a` and `/openai-b`.
fn serve_both(emulator: &Emulator) {
    let reply: Value =
        serde_json::from_str(include_str!("../src/providers/fixtures/openai/chat.json")).unwrap();
    for path in [
        "/openai-a/v1/chat/completions",
        "/openai-b/v1/chat/completions",
    ] {
        emulator.route(Method::POST, path, Reply::json(&reply));
    }
}

/// Lets the emulator and the client run until `path` has been requested.
async fn until_requested(emulator: &Emulator, path: &str) {
    for _ in 0..100_000 {
        if emulator.hits(path) > 0 {
            return;
        }
        tokio::task::yield_now().await;
    }
    panic!("{path} was never requested");
}

/// Bounds a call that a wrong order would leave hanging on a clock that
/// does not move.
async fn within_a_second<T>(call: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(std::time::Duration::from_secs(1), call)
        .await
        .expect("the call did not wait on the hanging deployment")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn least_busy_passes_over_a_deployment_with_a_request_in_flight() {
    let emulator = emulator().await;
    let clock = polyrelay::clock::FakeClock::at_epoch();
    let client = client(
        &emulator,
        &clock,
        &two_paths(&emulator, "least_busy"),
        LLM_KEYS,
    );
    serve_both(&emulator);
    emulator.fault_next("/openai-a/*", Fault::Hang, 1);

    // Both idle: a first, as configured; its request hangs, held open.
    let held = {
        let client = client.clone();
        tokio::spawn(async move { client.call("llm.chat", question("one")).await })
    };
    until_requested(&emulator, "/openai-a/v1/chat/completions").await;

    let reply = within_a_second(client.call("llm.chat", question("two")))
        .await
        .unwrap();
    assert_eq!(reply.attempts[0].deployment, Some("b"));
    assert_eq!(reply.attempts.len(), 1);
    held.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lowest_latency_asks_the_faster_deployment_first_once_both_are_measured() {
    let emulator = emulator().await;
    let clock = polyrelay::clock::FakeClock::at_epoch();
    let client = client(
        &emulator,
        &clock,
        &two_paths(&emulator, "lowest_latency"),
        LLM_KEYS,
    );
    serve_both(&emulator);
    emulator.fault_always("/openai-a/*", Fault::Hang);

    // Neither measured: a first; it hangs until its attempt timeout (2 s on
    // the fake clock), which counts as its latency; b answers at once.
    let first = {
        let client = client.clone();
        tokio::spawn(async move { client.call("llm.chat", question("one")).await })
    };
    until_requested(&emulator, "/openai-a/v1/chat/completions").await;
    while clock.pending_timers() == 0 {
        tokio::task::yield_now().await;
    }
    clock.advance(std::time::Duration::from_secs(2));
    let first = within_a_second(first).await.unwrap().unwrap();
    let trail: Vec<_> = first
        .attempts
        .iter()
        .map(|a| (a.deployment, a.outcome.as_str()))
        .collect();
    assert_eq!(trail, [(Some("a"), "transient"), (Some("b"), "success")]);

    // Now b (answered at once) goes first; in configured order the call
    // would hang on a.
    let second = within_a_second(client.call("llm.chat", question("two")))
        .await
        .unwrap();
    assert_eq!(second.attempts[0].deployment, Some("b"));
    assert_eq!(emulator.hits("/openai-a/v1/chat/completions"), 1);
}

#[tokio::test]
async fn cost_asks_the_cheapest_deployment_first_and_unpriced_ones_last() {
    let emulator = emulator().await;
    let clock = clock();
    // `tabled` has no price of its own: the model table's ($0.50 and $1.50
    // a million) puts it between the two configured ones.
    let toml = r#"
        [deployments.unpriced]
        provider = "groq"
        model = "a-model-of-our-own"
        [deployments.tabled]
        provider = "mistral"
        model = "mistral-large-latest"
        [deployments.dear]
        provider = "openai"
        model = "gpt-4.1"
        price = { input_per_mtok = 2.0, output_per_mtok = 8.0 }
        [deployments.cheap]
        provider = "openai"
        model = "gpt-4o-mini"
        price = { input_per_mtok = 0.15, output_per_mtok = 0.6 }
        [groups.fast]
        deployments = ["unpriced", "dear", "tabled", "cheap"]
        strategy = "cost"
    "#;
    let client = client(&emulator, &clock, toml, LLM_KEYS);
    emulator.fault_always("/openai/*", Fault::status(400));
    emulator.fault_always("/mistral/*", Fault::status(400));

    let reply = client.call("llm.chat", question("one")).await.unwrap();

    let order: Vec<_> = reply.attempts.iter().map(|a| a.deployment).collect();
    assert_eq!(
        order,
        [
            Some("cheap"),
            Some("tabled"),
            Some("dear"),
            Some("unpriced")
        ]
    );
    assert_eq!(reply.provider, "groq");
}

#[tokio::test]
async fn weighted_groups_spread_calls_by_weight() {
    let emulator = emulator().await;
    let clock = clock();
    let toml = r#"
        [cache]
        enabled = false
        [deployments.heavy]
        provider = "groq"
        model = "llama-3.1-8b-instant"
        [deployments.light]
        provider = "openai"
        model = "gpt-4o-mini"
        [groups.fast]
        deployments = ["light", "heavy"]
        strategy = "weighted"
        weights = { heavy = 3, light = 1 }
    "#;
    let client = client(&emulator, &clock, toml, LLM_KEYS);
    emulator.set_logging(false);
    let mut heavy = 0;
    const CALLS: u32 = 400;
    for i in 0..CALLS {
        let reply = client
            .call("llm.chat", question(&format!("call {i}")))
            .await
            .unwrap();
        if reply.attempts[0].deployment == Some("heavy") {
            heavy += 1;
        }
    }
    // 3:1 — 300 of 400 expected; the client's seed fixes the draw.
    let share = f64::from(heavy) / f64::from(CALLS);
    assert!((share - 0.75).abs() < 0.06, "{share}");
}

#[tokio::test]
async fn a_streamed_group_call_sends_the_deployments_model_and_counts_the_stream_in_flight() {
    let emulator = emulator().await;
    let clock = clock();
    let client = client(
        &emulator,
        &clock,
        &config(
            "[groups.fast]\ndeployments = [\"gpt-eu\", \"groq-llama\"]\nstrategy = \"least_busy\"",
        ),
        KEYS,
    );
    let body = include_str!("../src/providers/fixtures/openai/chat_stream.sse");
    emulator.route(
        Method::POST,
        "/openai/v1/chat/completions",
        Reply::stream(polyrelay::emulation::Chunk::events(
            body.as_bytes(),
            std::time::Duration::ZERO,
        )),
    );

    let mut open = client.stream("llm.chat", question("one")).unwrap();
    // At its first text the stream is open on gpt-eu, and still in flight
    // there: the next call goes to the idle groq-llama first.
    assert!(matches!(
        open.next().await,
        Some(Ok(polyrelay::ChatChunk::Text(_)))
    ));
    let sent = &emulator.requests_to("/openai/v1/chat/completions")[0];
    assert_eq!(sent_model(sent), "gpt-4o-mini");
    let other = client.call("llm.chat", question("two")).await.unwrap();
    assert_eq!(other.attempts[0].deployment, Some("groq-llama"));
    let end = loop {
        match open.next().await {
            Some(Ok(polyrelay::ChatChunk::Done(end))) => break end,
            Some(Ok(_)) => {}
            other => panic!("{other:?}"),
        }
    };
    assert_eq!(end.envelope.attempts[0].deployment, Some("gpt-eu"));
    drop(open);
    // The stream is over: both idle again, gpt-eu first as configured.
    let third = client.call("llm.chat", question("three")).await.unwrap();
    assert_eq!(third.attempts[0].deployment, Some("gpt-eu"));
}
