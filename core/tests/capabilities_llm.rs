//! `llm.chat` and `llm.embeddings` end to end through the emulator: every
//! provider's real wire format, fallback in every error class, the same
//! answer shape whichever provider answers, and no key needed for the local
//! one.

mod common;

use std::time::Duration;

use common::*;
use polyrelay::internal::builtin_providers;
use polyrelay::provider::{Auth, KeyPlacement};
use polyrelay::{Data, Envelope, Error, ErrorKind};
use polyrelay::{NoEmbeddings, OpenAiCompatible};
use serde_json::{json, Value};

fn question() -> Value {
    json!({"messages": [
        {"role": "system", "content": "Answer in one sentence."},
        {"role": "user", "content": "What is the capital of France?"},
    ]})
}

fn texts() -> Value {
    json!({"inputs": ["The capital of France is Paris.", "Paris is in France."]})
}

fn chain(capability: &str, ids: &[&str]) -> String {
    format!("[capabilities.\"{capability}\"]\nchain = {ids:?}\n")
}

/// The JSON structure of an answer: keys, and the type of every value that
/// is not null (a provider may not report an optional count).
fn shape(value: &Value) -> Value {
    match value {
        Value::Object(fields) => {
            Value::Object(fields.iter().map(|(k, v)| (k.clone(), shape(v))).collect())
        }
        Value::Array(items) => Value::Array(items.first().map(shape).into_iter().collect()),
        Value::Null => json!("null"),
        Value::Bool(_) => json!("bool"),
        Value::Number(_) => json!("number"),
        Value::String(_) => json!("string"),
    }
}

fn same_shape(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::String(x), _) | (_, Value::String(x)) if x == "null" => true,
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| same_shape(v, w)))
        }
        (Value::Array(x), Value::Array(y)) => x.iter().zip(y).all(|(v, w)| same_shape(v, w)),
        _ => a == b,
    }
}

fn json_of(reply: &Envelope) -> Value {
    reply.data().to_json()
}

#[tokio::test]
async fn with_no_keys_the_local_model_answers_both_capabilities() {
    let emulator = emulator().await;
    let clock = clock();
    let client = client(&emulator, &clock, "", &[]);

    assert_eq!(
        client.chain(polyrelay::CapabilityId::LlmChat),
        [
            "ollama",
            "groq",
            "gemini",
            "mistral",
            "openrouter",
            "deepseek",
            "together",
            "cohere",
            "openai",
            "anthropic"
        ]
    );
    let reply = client.call("llm.chat", question()).await.unwrap();
    assert_eq!(reply.provider, "ollama");
    let answer = json_of(&reply);
    assert_eq!(answer["text"], "Hello! How are you today?");
    assert_eq!(answer["usage"]["total_tokens"], 324);
    let sent = &emulator.requests_to("/ollama/api/chat")[0];
    let body: Value = serde_json::from_slice(&sent.body).unwrap();
    assert_eq!(
        body["truncate"], false,
        "over-long prompts must fail, not be cut"
    );
    assert_eq!(body["messages"][0]["role"], "system");

    let reply = client.call("llm.embeddings", texts()).await.unwrap();
    assert_eq!(reply.provider, "ollama");
    let answer = json_of(&reply);
    assert_eq!(answer["model"], "all-minilm");
    assert_eq!(answer["dimensions"], 10);
    assert_eq!(answer["vectors"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn invalid_requests_fail_before_anything_is_sent() {
    let emulator = emulator().await;
    let clock = clock();
    let client = client(&emulator, &clock, "", LLM_KEYS);
    for (params, field) in [
        (json!({"messages": []}), "messages"),
        (
            json!({"messages": [{"role": "wizard", "content": "hi"}]}),
            "messages[0].role",
        ),
        (
            json!({"messages": [{"role": "user", "content": "hi"}], "temperature": 3}),
            "temperature",
        ),
        (
            json!({"messages": [{"role": "user", "content": "hi"}], "max_tokens": 0}),
            "max_tokens",
        ),
    ] {
        match client.call("llm.chat", params).await {
            Err(polyrelay::Error::InvalidRequest { field: f, .. }) => assert_eq!(f, field),
            other => panic!("expected an invalid request, got {other:?}"),
        }
    }
    match client.call("llm.embeddings", json!({"inputs": []})).await {
        Err(polyrelay::Error::InvalidRequest { field, .. }) => assert_eq!(field, "inputs"),
        other => panic!("expected an invalid request, got {other:?}"),
    }
    assert!(emulator.requests().is_empty());
}

/// Faults of every class, as the OpenAI-compatible OpenRouter sends them,
/// with the tries each gets on OpenRouter before the call falls back.
fn openrouter_faults() -> Vec<(&'static str, Fault, &'static str, Option<u16>, u32)> {
    let error = |status: u16, message: &str| {
        Reply::json(&json!({"error": {"code": status, "message": message}})).with_status(status)
    };
    vec![
        ("server down", Fault::status(503), "transient", Some(503), 3),
        (
            "rate limited",
            Fault::Respond(
                error(429, "Rate limit exceeded: free-models-per-min.")
                    .with_retry_after(Duration::from_secs(30)),
            ),
            "rate_limited",
            Some(429),
            // Retry-After 30 s would end at the 30 s deadline: no retry.
            1,
        ),
        (
            "credits used up",
            Fault::Respond(error(402, "Insufficient credits.")),
            "quota_exhausted",
            Some(402),
            1,
        ),
        (
            "key refused",
            Fault::Respond(error(401, "No auth credentials found")),
            "auth",
            Some(401),
            1,
        ),
        ("garbage", Fault::Malformed, "malformed_response", Some(200), 1),
        (
            "error inside a 200",
            Fault::Respond(error(502, "Provider returned error").with_status(200)),
            "transient",
            Some(200),
            3,
        ),
        (
            "prompt too long",
            Fault::Respond(error(
                400,
                "This endpoint's maximum context length is 131072 tokens. However, you requested about 140000 tokens.",
            )),
            "context_length_exceeded",
            Some(400),
            1,
        ),
    ]
}

/// Changed by issue #12: chat has no side effects, so a 5xx (or an error
/// inside a 200) is retried on the same provider like a GET, as the official
/// OpenAI SDK does; it used to be sent once. Caller-shaped failures are
/// still sent once.
#[tokio::test]
async fn chat_falls_back_in_every_error_class_retrying_only_transient_failures() {
    for (case, fault, outcome, status, tries) in openrouter_faults() {
        let emulator = emulator().await;
        let clock = clock();
        let client = client(
            &emulator,
            &clock,
            &chain("llm.chat", &["openrouter", "groq"]),
            LLM_KEYS,
        );
        emulator.fault_always("/openrouter/*", fault);

        let reply = client.call("llm.chat", question()).await.unwrap();

        assert_eq!(reply.provider, "groq", "{case}");
        let first = &reply.attempts[0];
        assert_eq!(
            (first.provider, first.outcome.as_str(), first.status),
            ("openrouter", outcome, status),
            "{case}: {}",
            first.reason
        );
        assert_eq!(first.tries, tries, "{case}");
        assert_eq!(
            emulator.hits("/openrouter/api/v1/chat/completions"),
            tries as usize,
            "{case}"
        );
        if outcome == "rate_limited" {
            assert_eq!(first.retry_after, Some(Duration::from_secs(30)));
        }
        assert_eq!(
            json_of(&reply)["model"],
            "llama-3.3-70b-versatile",
            "{case}"
        );
    }
}

#[tokio::test]
async fn embeddings_fall_back_in_every_error_class() {
    let rpc = |code: u16, status: &str, message: &str, details: Value| {
        Fault::Respond(
            Reply::json(&json!({"error": {"code": code, "message": message, "status": status, "details": details}}))
                .with_status(code),
        )
    };
    let cases = vec![
        (
            "overloaded",
            rpc(503, "UNAVAILABLE", "The model is overloaded.", json!([])),
            "transient",
            3,
        ),
        (
            "per-minute limit",
            rpc(
                429,
                "RESOURCE_EXHAUSTED",
                "Quota exceeded",
                json!([
                    {"@type": "type.googleapis.com/google.rpc.QuotaFailure", "violations": [{"quotaId": "EmbedContentRequestsPerMinutePerProjectPerModel-FreeTier"}]},
                    {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "20s"}
                ]),
            ),
            "rate_limited",
            // Retried after 20 s; a second 20 s would pass the 30 s deadline.
            2,
        ),
        (
            "daily quota",
            rpc(
                429,
                "RESOURCE_EXHAUSTED",
                "Quota exceeded",
                json!([
                    {"@type": "type.googleapis.com/google.rpc.QuotaFailure", "violations": [{"quotaId": "EmbedContentRequestsPerDayPerProjectPerModel-FreeTier"}]}
                ]),
            ),
            "quota_exhausted",
            1,
        ),
        (
            "key refused",
            rpc(
                400,
                "INVALID_ARGUMENT",
                "API key not valid. Please pass a valid API key.",
                json!([
                    {"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID", "domain": "googleapis.com"}
                ]),
            ),
            "auth",
            1,
        ),
        ("garbage", Fault::Malformed, "malformed_response", 1),
    ];
    // Changed by issue #12: embeddings have no side effects, so an overload
    // and a short Retry-After are retried on the same provider; they used to
    // fall back after one request.
    for (case, fault, outcome, tries) in cases {
        let emulator = emulator().await;
        let clock = clock();
        let config = chain("llm.embeddings", &["gemini", "cohere"]);
        let client = client(&emulator, &clock, &config, LLM_KEYS);
        emulator.fault_always("/gemini/*", fault);

        let reply = client.call("llm.embeddings", texts()).await.unwrap();

        assert_eq!(reply.provider, "cohere", "{case}");
        let first = &reply.attempts[0];
        assert_eq!(
            (first.provider, first.outcome.as_str()),
            ("gemini", outcome),
            "{case}: {}",
            first.reason
        );
        assert_eq!(first.tries, tries, "{case}");
        if outcome == "rate_limited" {
            assert_eq!(
                first.retry_after,
                Some(Duration::from_secs(20)),
                "from RetryInfo"
            );
        }
        let sent: Value =
            serde_json::from_slice(&emulator.requests_to("/cohere/v2/embed")[0].body).unwrap();
        assert_eq!(sent["input_type"], "search_document");
    }
}

#[tokio::test]
async fn an_embeddings_call_pinned_to_a_vector_space_never_falls_over_to_another() {
    let emulator = emulator().await;
    let clock = clock();
    let config = chain("llm.embeddings", &["gemini", "cohere"]);
    let client = client(&emulator, &clock, &config, LLM_KEYS);

    // Every answer names its space; the first provider's is Gemini's.
    let reply = client.call("llm.embeddings", texts()).await.unwrap();
    let Data::LlmEmbeddings(first) = reply.data() else {
        panic!("{:?}", reply.data())
    };
    assert_eq!(reply.provider, "gemini");
    assert_eq!(first.space, format!("gemini/{}", first.model));

    // Pinned to Cohere's space: Gemini is not asked, Cohere with its model.
    let mut pinned = texts();
    pinned["space"] = json!("cohere/embed-v4.0");
    let reply = client.call("llm.embeddings", pinned.clone()).await.unwrap();
    let Data::LlmEmbeddings(vectors) = reply.data() else {
        panic!("{:?}", reply.data())
    };
    assert_eq!(reply.provider, "cohere");
    assert_eq!(vectors.space, "cohere/embed-v4.0");
    let sent: Value =
        serde_json::from_slice(&emulator.requests_to("/cohere/v2/embed")[0].body).unwrap();
    assert_eq!(sent["model"], "embed-v4.0");
    let gemini = &reply.attempts[0];
    assert_eq!((gemini.provider, gemini.tries), ("gemini", 0));
    assert!(
        gemini.reason.contains("pinned to cohere"),
        "{}",
        gemini.reason
    );

    // When the pinned provider fails, the call fails: Gemini's vectors would
    // not compare with the index's.
    emulator.clear_log();
    emulator.fault_always("/cohere/*", Fault::status(503));
    pinned["purpose"] = json!("query");
    let error = client.call("llm.embeddings", pinned).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::ProviderError, "{error}");
    assert!(emulator.requests_to("/gemini/*").is_empty());
    assert!(emulator
        .requests()
        .iter()
        .all(|r| r.path.starts_with("/cohere/")));

    for (space, field) in [
        (json!("cohere"), "space"),
        (json!("/embed"), "space"),
        (json!("cohere/embed v4"), "space"),
    ] {
        let mut params = texts();
        params["space"] = space;
        match client.call("llm.embeddings", params).await {
            Err(Error::InvalidRequest { field: f, .. }) => assert_eq!(f, field),
            other => panic!("{other:?}"),
        }
    }
    let mut params = texts();
    params["space"] = json!("cohere/embed-v4.0");
    params["model"] = json!("embed-english-v3.0");
    match client.call("llm.embeddings", params).await {
        Err(Error::InvalidRequest { field, .. }) => assert_eq!(field, "model"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn every_provider_answers_in_the_same_shape_with_its_key_in_its_header() {
    for (capability, params) in [("llm.chat", question()), ("llm.embeddings", texts())] {
        let mut shapes: Vec<(&str, Value)> = Vec::new();
        let serving = builtin_providers()
            .iter()
            .filter(|p| p.capabilities().iter().any(|c| c.as_str() == capability));
        for provider in serving {
            let info = provider.info();
            let emulator = emulator().await;
            let clock = clock();
            let client = client(&emulator, &clock, &chain(capability, &[info.id]), LLM_KEYS);

            let reply = client.call(capability, params.clone()).await.unwrap();
            assert_eq!(reply.provider, info.id);

            let sent = emulator
                .requests()
                .into_iter()
                .find(|r| r.path.starts_with(&format!("/{}/", info.id)))
                .unwrap();
            assert_eq!(sent.method, Method::POST, "{}", info.id);
            assert!(
                sent.query_pairs.is_empty(),
                "{}: no key in the URL",
                info.id
            );
            if let Auth::Key {
                env,
                placement: KeyPlacement::Header { name, prefix },
                ..
            } = info.auth
            {
                let key = LLM_KEYS.iter().find(|(k, _)| *k == env).unwrap().1;
                assert_eq!(
                    sent.header(name),
                    Some(format!("{prefix}{key}").as_str()),
                    "{}",
                    info.id
                );
                let body = String::from_utf8_lossy(&sent.body);
                assert!(!body.contains(key), "{}: no key in the body", info.id);
            }
            shapes.push((info.id, shape(&json_of(&reply))));
        }
        let expected = if capability == "llm.chat" { 10 } else { 6 };
        assert_eq!(shapes.len(), expected, "{capability}");
        let (first, reference) = &shapes[0];
        for (id, shape) in &shapes[1..] {
            assert!(
                same_shape(reference, shape),
                "{capability}: {id} answers {shape} but {first} answers {reference}"
            );
        }
    }
}

#[tokio::test]
async fn aliases_pick_each_providers_model_and_skip_the_others() {
    let emulator = emulator().await;
    let clock = clock();
    let config = chain("llm.chat", &["ollama", "gemini", "together"]);
    let client = client(&emulator, &clock, &config, LLM_KEYS);
    emulator.fault_always(
        "/ollama/*",
        Fault::Respond(
            Reply::json(&json!({"error": "model \"llama3.3\" not found, try pulling it first"}))
                .with_status(404),
        ),
    );
    let mut params = question();
    params["model"] = json!("llama-3.3-70b");

    let reply = client.call("llm.chat", params).await.unwrap();

    assert_eq!(reply.provider, "together");
    let outcomes: Vec<(&str, &str, u32)> = reply
        .attempts
        .iter()
        .map(|a| (a.provider, a.outcome.as_str(), a.tries))
        .collect();
    assert_eq!(
        outcomes,
        [
            ("ollama", "invalid_request", 1),
            ("gemini", "unsupported", 0),
            ("together", "success", 1)
        ]
    );
    assert!(reply.attempts[0].reason.contains("ollama pull"));
    let sent = |path: &str| -> Value {
        serde_json::from_slice(&emulator.requests_to(path)[0].body).unwrap()
    };
    assert_eq!(sent("/ollama/api/chat")["model"], "llama3.3");
    assert_eq!(
        sent("/together/v1/chat/completions")["model"],
        "meta-llama/Llama-3.3-70B-Instruct-Turbo"
    );
    assert_eq!(emulator.hits("/gemini/*"), 0);
}

#[tokio::test]
async fn a_temperature_anthropic_cannot_take_skips_it_without_a_request() {
    let emulator = emulator().await;
    let clock = clock();
    let client = client(
        &emulator,
        &clock,
        &chain("llm.chat", &["anthropic", "openai"]),
        LLM_KEYS,
    );
    let mut params = question();
    params["temperature"] = json!(1.5);

    let reply = client.call("llm.chat", params).await.unwrap();

    assert_eq!(reply.provider, "openai");
    assert_eq!(reply.attempts[0].outcome, "unsupported");
    assert_eq!(emulator.hits("/anthropic/*"), 0);
    let sent: Value =
        serde_json::from_slice(&emulator.requests_to("/openai/v1/chat/completions")[0].body)
            .unwrap();
    assert_eq!(sent["temperature"], 1.5);
}

#[tokio::test]
async fn anthropic_overload_falls_back_and_a_daily_quota_benches_until_midnight_pacific() {
    let emulator = emulator().await;
    let clock = clock();
    let config = chain("llm.chat", &["anthropic", "gemini", "mistral"]);
    let client = client(&emulator, &clock, &config, LLM_KEYS);
    emulator.fault_always(
        "/anthropic/*",
        Fault::Respond(
            Reply::json(&json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}))
                .with_status(529),
        ),
    );
    emulator.fault_next(
        "/gemini/*",
        Fault::Respond(
            Reply::json(&json!({"error": {"code": 429, "message": "You exceeded your current quota", "status": "RESOURCE_EXHAUSTED", "details": [
                {"@type": "type.googleapis.com/google.rpc.QuotaFailure", "violations": [{"quotaId": "GenerateRequestsPerDayPerProjectPerModel-FreeTier"}]}
            ]}}))
            .with_status(429),
        ),
        1,
    );

    let reply = client.call("llm.chat", question()).await.unwrap();
    assert_eq!(reply.provider, "mistral");
    let outcomes: Vec<(&str, &str)> = reply
        .attempts
        .iter()
        .map(|a| (a.provider, a.outcome.as_str()))
        .collect();
    assert_eq!(
        outcomes,
        [
            ("anthropic", "transient"),
            ("gemini", "quota_exhausted"),
            ("mistral", "success")
        ]
    );
    assert_eq!(reply.attempts[0].status, Some(529));
    // Changed by issue #12: an overload of chat (no side effects) is retried
    // on the same provider before falling back; it used to be sent once.
    assert_eq!(reply.attempts[0].tries, 3);

    // Another question: Gemini is not asked again before its quota resets,
    // at midnight in California (the fake clock is at 2025-01-01T00:00Z,
    // 16:00 the day before in Los Angeles). A minute later, past Mistral's
    // one request per second:
    clock.advance(Duration::from_secs(60));
    let mut other = question();
    other["messages"][1]["content"] = json!("And of Italy?");
    let reply = client.call("llm.chat", other).await.unwrap();
    let gemini = &reply.attempts[1];
    assert_eq!(
        (gemini.provider, gemini.outcome.as_str()),
        ("gemini", "skipped_benched")
    );
    // Anthropic's retries (backoff on the auto-advancing clock) come first,
    // so Gemini is reached a moment after +60 s.
    let left = gemini.retry_after.unwrap();
    let at_60 = Duration::from_secs(8 * 3600 - 60);
    assert!(
        left <= at_60 && left > at_60 - Duration::from_secs(5),
        "{left:?}"
    );
    assert_eq!(reply.provider, "mistral");
    assert_eq!(emulator.hits("/gemini/*"), 1);
}

/// A self-hosted OpenAI-compatible server (vLLM, LM Studio, a gateway),
/// declared by the application with the shared implementation.
static LOCAL_INFO: polyrelay::provider::ProviderInfo = polyrelay::provider::ProviderInfo {
    id: "vllm",
    name: "Local vLLM",
    auth: Auth::Keyless,
    base_url: "http://localhost:8000",
    docs_url: "https://docs.vllm.ai",
    terms: "self-hosted",
    commercial_use: true,
    default_rate_limit: None,
    default_quota: None,
};

static LOCAL_VLLM: OpenAiCompatible = OpenAiCompatible {
    info: &LOCAL_INFO,
    chat_path: "/v1/chat/completions",
    chat_model: "Qwen/Qwen2.5-7B-Instruct",
    embeddings: NoEmbeddings,
    max_tokens_field: "max_tokens",
    model_aliases: &[],
    forbidden: polyrelay::FailureClass::Auth,
    fixtures: &[],
    stream_usage_option: true,
    stream_fixtures: &[],
    structured_output: polyrelay::StructuredOutput::Schema,
    require_parameters: false,
};

#[tokio::test]
async fn an_application_can_add_its_own_openai_compatible_server() {
    let emulator = emulator().await;
    let clock = clock();
    emulator.route(
        Method::POST,
        "/vllm/v1/chat/completions",
        Reply::json(&json!({"id": "cmpl-1", "object": "chat.completion", "model": "Qwen/Qwen2.5-7B-Instruct",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "Paris."}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 20, "completion_tokens": 3, "total_tokens": 23}})),
    );
    let client = builder(
        &emulator,
        &clock,
        &chain("llm.chat", &["vllm", "ollama"]),
        &[],
    )
    .provider(std::sync::Arc::new(&LOCAL_VLLM))
    .build()
    .unwrap();

    let reply = client.call("llm.chat", question()).await.unwrap();

    assert_eq!(reply.provider, "vllm");
    assert_eq!(json_of(&reply)["text"], "Paris.");
    let sent: Value =
        serde_json::from_slice(&emulator.requests_to("/vllm/v1/chat/completions")[0].body).unwrap();
    assert_eq!(sent["model"], "Qwen/Qwen2.5-7B-Instruct");
}

/// OpenAI's refusal of a prompt its safety system flags: a 400 with code
/// `content_policy_violation`.
fn refusal() -> Fault {
    Fault::Respond(
        Reply::json(&json!({"error": {
            "message": "Your request was rejected as a result of our safety system.",
            "type": "invalid_request_error",
            "param": null,
            "code": "content_policy_violation",
        }}))
        .with_status(400),
    )
}

#[tokio::test]
async fn a_content_refusal_ends_the_call_after_one_request_with_the_reason() {
    let emulator = emulator().await;
    let clock = clock();
    let client = client(
        &emulator,
        &clock,
        &chain("llm.chat", &["openai", "mistral"]),
        LLM_KEYS,
    );
    emulator.fault_always("/openai/*", refusal());

    let error = client.call("llm.chat", question()).await.unwrap_err();

    let polyrelay::Error::ContentFiltered {
        capability,
        provider,
        reason,
        attempts,
    } = &error
    else {
        panic!("expected a content refusal, got {error:?}");
    };
    assert_eq!((*capability, *provider), ("llm.chat", "openai"));
    assert!(
        reason.contains("rejected as a result of our safety system"),
        "{reason}"
    );
    assert!(
        !reason.starts_with("content_filtered"),
        "the provider's words, not the trail's: {reason}"
    );
    assert_eq!(error.kind(), polyrelay::ErrorKind::ContentFiltered);
    assert!(!error.is_retryable());
    assert_eq!(attempts[0].outcome, "content_filtered");
    assert_eq!((attempts[0].status, attempts[0].tries), (Some(400), 1));
    assert!(
        attempts.iter().all(|a| a.provider != "mistral"),
        "{attempts:?}"
    );
    assert_eq!(
        emulator.hits("/openai/v1/chat/completions"),
        1,
        "never retried"
    );
    assert_eq!(emulator.hits("/mistral/*"), 0, "not shopped around");
}

#[tokio::test]
async fn with_content_filtered_fallback_the_next_provider_answers_a_refused_prompt() {
    let emulator = emulator().await;
    let clock = clock();
    let config = format!(
        "{}content_filtered_fallback = true\n",
        chain("llm.chat", &["openai", "mistral"])
    );
    let client = client(&emulator, &clock, &config, LLM_KEYS);
    emulator.fault_always("/openai/*", refusal());

    let reply = client.call("llm.chat", question()).await.unwrap();

    assert_eq!(reply.provider, "mistral");
    let first = &reply.attempts[0];
    assert_eq!(
        (first.provider, first.outcome.as_str(), first.tries),
        ("openai", "content_filtered", 1)
    );
    assert!(first.reason.contains("safety system"), "{}", first.reason);
    assert_eq!(emulator.hits("/openai/*"), 1);
    assert_eq!(json_of(&reply)["text"], "The capital of France is Paris.");
}

#[tokio::test]
async fn a_prompt_gemini_blocks_in_a_200_is_a_content_refusal() {
    let emulator = emulator().await;
    let clock = clock();
    let client = client(
        &emulator,
        &clock,
        &chain("llm.chat", &["gemini", "anthropic"]),
        LLM_KEYS,
    );
    emulator.fault_always(
        "/gemini/*",
        Fault::Respond(Reply::json(&json!({
            "promptFeedback": {"blockReason": "SAFETY", "safetyRatings": [
                {"category": "HARM_CATEGORY_DANGEROUS_CONTENT", "probability": "HIGH"}
            ]},
            "usageMetadata": {"promptTokenCount": 9, "totalTokenCount": 9},
        }))),
    );

    let error = client.call("llm.chat", question()).await.unwrap_err();

    match &error {
        polyrelay::Error::ContentFiltered {
            provider, reason, ..
        } => {
            assert_eq!(*provider, "gemini");
            assert!(
                reason.contains("blocked the prompt (SAFETY: HARM_CATEGORY_DANGEROUS_CONTENT)"),
                "{reason}"
            );
        }
        other => panic!("expected a content refusal, got {other:?}"),
    }
    assert_eq!(emulator.hits("/anthropic/*"), 0);
}
