//! Context-window fallback end to end through the emulator: a call whose
//! estimated tokens do not fit a model's context window passes over it
//! without a request; a provider's own `context_length_exceeded` (in its
//! real error format) moves the call on and passes over windows no larger;
//! a group's `context_fallback` group takes what fits none of its
//! deployments; otherwise the call fails with a typed error.

mod common;

use common::*;
use polyrelay::{Error, ErrorKind};
use serde_json::{json, Value};

/// A chat call of group (or model) `model` with a prompt of `chars`
/// characters (`chars / 4 + 4` estimated tokens) and `max_tokens`.
fn question(model: &str, chars: usize, max_tokens: Option<u32>) -> Value {
    let mut call = json!({
        "model": model,
        "messages": [{"role": "user", "content": "x".repeat(chars)}],
    });
    if let Some(max) = max_tokens {
        call["max_tokens"] = json!(max);
    }
    call
}

/// Deployments of invented models whose windows the configuration sets:
/// `gpt-small` (1000 tokens) and `gpt-mid` (4000) at OpenAI, `mistral-8k`
/// and `mistral-4k` at Mistral, `llama-big` (100 000) at Groq and
/// `llama-any` (window unknown) at Groq; then `extra`.
fn config(extra: &str) -> String {
    format!(
        r#"
        [cache]
        enabled = false
        [models."openai/gpt-small"]
        context_window = 1000
        [models."openai/gpt-mid"]
        context_window = 4000
        [models."mistral/mistral-8k"]
        context_window = 8000
        [models."mistral/mistral-4k"]
        context_window = 4000
        [models."groq/llama-big"]
        context_window = 100000
        [deployments.small]
        provider = "openai"
        model = "gpt-small"
        [deployments.mid]
        provider = "openai"
        model = "gpt-mid"
        retry = {{ max_attempts = 1 }}
        [deployments.m8k]
        provider = "mistral"
        model = "mistral-8k"
        [deployments.m4k]
        provider = "mistral"
        model = "mistral-4k"
        [deployments.big]
        provider = "groq"
        model = "llama-big"
        [deployments.any]
        provider = "groq"
        model = "llama-any"
        {extra}
        "#
    )
}

fn trail(attempts: &[polyrelay::Attempt]) -> Vec<(Option<&str>, &str)> {
    attempts
        .iter()
        .map(|a| (a.deployment, a.outcome.as_str()))
        .collect()
}

#[tokio::test]
async fn a_prompt_too_long_for_a_window_skips_it_before_sending() {
    let emulator = emulator().await;
    let clock = clock();
    let client = client(
        &emulator,
        &clock,
        &config("[groups.fast]\ndeployments = [\"small\", \"big\"]"),
        LLM_KEYS,
    );

    // 6000 characters: 1500 + 4 prompt tokens, and 50 for the answer.
    let reply = client
        .call("llm.chat", question("fast", 6000, Some(50)))
        .await
        .unwrap();

    assert_eq!(reply.provider, "groq");
    assert_eq!(
        trail(&reply.attempts),
        [
            (Some("small"), "skipped_context_window"),
            (Some("big"), "success")
        ]
    );
    assert_eq!(
        reply.attempts[0].reason,
        "skipped: estimated 1554 tokens > context window 1000 of openai/gpt-small"
    );
    assert_eq!(reply.attempts[0].tries, 0);
    assert_eq!(
        emulator.hits("/openai/v1/chat/completions"),
        0,
        "nothing sent"
    );
    assert_eq!(emulator.hits("/groq/openai/v1/chat/completions"), 1);
    let stats = client.stats();
    let small = &stats.providers["small"].counters;
    assert_eq!(small.requests, 0);
    assert_eq!(small.outcomes["skipped_context_window"], 1);

    // `max_tokens` is room the window must hold too: 904 prompt tokens fit
    // 1000, not with 200 more for the answer.
    let with_answer = client
        .call("llm.chat", question("fast", 3600, Some(200)))
        .await
        .unwrap();
    assert_eq!(
        with_answer.attempts[0].outcome.as_str(),
        "skipped_context_window"
    );
    let without = client
        .call("llm.chat", question("fast", 3600, None))
        .await
        .unwrap();
    assert_eq!(trail(&without.attempts), [(Some("small"), "success")]);

    // A short prompt is unaffected.
    let short = client
        .call("llm.chat", question("fast", 20, Some(50)))
        .await
        .unwrap();
    assert_eq!(trail(&short.attempts), [(Some("small"), "success")]);
    assert_eq!(emulator.hits("/openai/v1/chat/completions"), 2);
}

#[tokio::test]
async fn a_call_naming_a_model_checks_that_models_window_in_a_plain_chain() {
    let emulator = emulator().await;
    let clock = clock();
    let toml = config("[capabilities.\"llm.chat\"]\nchain = [\"openai\", \"groq\"]");
    let client = client(&emulator, &clock, &toml, LLM_KEYS);

    // gpt-small's window is known at OpenAI; Groq does not know the name,
    // so its window is unknown and it is asked.
    let reply = client
        .call("llm.chat", question("gpt-small", 6000, None))
        .await
        .unwrap();

    assert_eq!(
        reply
            .attempts
            .iter()
            .map(|a| (a.provider, a.outcome.as_str()))
            .collect::<Vec<_>>(),
        [("openai", "skipped_context_window"), ("groq", "success")]
    );
    assert_eq!(emulator.hits("/openai/v1/chat/completions"), 0);
    // A call naming no model runs each provider's default: not checked.
    let default = client
        .call(
            "llm.chat",
            json!({"messages": [{"role": "user", "content": "x".repeat(6000)}]}),
        )
        .await
        .unwrap();
    assert_eq!(default.attempts[0].outcome.as_str(), "success");
}

/// Each provider's real reply to a prompt over its model's window, the
/// path it is sent to, and its deployment's model.
fn overflow_replies() -> Vec<(&'static str, &'static str, Reply)> {
    vec![
        (
            "openai",
            "gpt-8k",
            Reply::json(&json!({"error": {
                "message": "This model's maximum context length is 8192 tokens. However, your messages resulted in 8227 tokens. Please reduce the length of the messages.",
                "type": "invalid_request_error",
                "param": "messages",
                "code": "context_length_exceeded"
            }}))
            .with_status(400),
        ),
        (
            "anthropic",
            "claude-8k",
            Reply::json(&json!({"type": "error", "error": {
                "type": "invalid_request_error",
                "message": "prompt is too long: 8227 tokens > 8000 maximum"
            }}))
            .with_status(400),
        ),
        (
            "gemini",
            "gemini-8k",
            Reply::json(&json!({"error": {
                "code": 400,
                "message": "The input token count (8227) exceeds the maximum number of tokens allowed (8000).",
                "status": "INVALID_ARGUMENT"
            }}))
            .with_status(400),
        ),
        (
            "cohere",
            "command-8k",
            Reply::json(&json!({
                "id": "3b1a0a6e-0000-4000-8000-000000000000",
                "message": "too many tokens: size limit exceeded by 227 tokens. Try using shorter or fewer inputs, or setting prompt_truncation='AUTO'."
            }))
            .with_status(400),
        ),
        (
            "ollama",
            "llama-8k",
            Reply::json(&json!({
                "error": "request (8227 tokens) exceeds the available context size (8000 tokens), try increasing it"
            }))
            .with_status(400),
        ),
    ]
}

#[tokio::test]
async fn a_context_length_reply_moves_on_and_skips_windows_no_larger() {
    for (provider, model, overflow) in overflow_replies() {
        let emulator = emulator().await;
        let clock = clock();
        let toml = config(&format!(
            r#"
            [models."{provider}/{model}"]
            context_window = 8000
            [deployments.first]
            provider = "{provider}"
            model = "{model}"
            breaker = {{ sliding_window_size = 2, minimum_number_of_calls = 2 }}
            [groups.fast]
            deployments = ["first", "m8k", "m4k", "any", "big"]
            "#
        ));
        let client = client(&emulator, &clock, &toml, LLM_KEYS);
        emulator.fault_always(&format!("/{provider}/*"), Fault::Respond(overflow));

        // A short prompt: the estimate fits every window; the provider's
        // own count says otherwise.
        let reply = client
            .call("llm.chat", question("fast", 40, Some(50)))
            .await
            .unwrap();

        assert_eq!(
            trail(&reply.attempts),
            [
                (Some("first"), "context_length_exceeded"),
                (Some("m8k"), "skipped_context_window"),
                (Some("m4k"), "skipped_context_window"),
                (Some("any"), "success"),
            ],
            "{provider}"
        );
        assert_eq!(reply.attempts[0].tries, 1, "{provider}: not retried");
        assert_eq!(
            reply.attempts[1].reason,
            format!(
                "skipped: its context window of 8000 tokens is no larger than 8000 of {provider}/{model}, which refused the prompt as too long"
            )
        );
        assert_eq!(
            emulator.hits("/mistral/v1/chat/completions"),
            0,
            "{provider}"
        );
        // The prompt's fault, not the provider's health: the breaker stays
        // closed however often it happens.
        for _ in 0..3 {
            client
                .call("llm.chat", question("fast", 40, Some(50)))
                .await
                .unwrap();
        }
        let stats = client.stats();
        assert_eq!(
            stats.providers["first"].breakers["llm.chat"].state.as_str(),
            "closed",
            "{provider}"
        );
    }
}

#[tokio::test]
async fn a_larger_window_is_still_asked_after_a_context_length_reply() {
    let emulator = emulator().await;
    let clock = clock();
    let client = client(
        &emulator,
        &clock,
        &config("[groups.fast]\ndeployments = [\"m4k\", \"mid\", \"m8k\"]"),
        LLM_KEYS,
    );
    emulator.fault_always(
        "/mistral/*",
        Fault::Respond(
            Reply::json(&json!({
                "object": "error",
                "message": "Prompt contains 4100 tokens and 0 draft tokens, too large for model with 4000 maximum context length",
                "type": "invalid_request_error",
                "param": null,
                "code": null
            }))
            .with_status(400),
        ),
    );

    let error = client
        .call("llm.chat", question("fast", 40, None))
        .await
        .unwrap_err();

    // m4k refused; mid (4000, no larger) passed over; m8k (8000) asked.
    assert_eq!(
        trail(error.attempts()),
        [
            (Some("m4k"), "context_length_exceeded"),
            (Some("mid"), "skipped_context_window"),
            (Some("m8k"), "context_length_exceeded"),
        ]
    );
    assert_eq!(error.kind(), ErrorKind::ContextLengthExceeded);
    assert!(matches!(
        error,
        Error::ContextLengthExceeded {
            estimated_tokens: 14,
            largest_window: Some(8000),
            ..
        }
    ));
    assert_eq!(emulator.hits("/mistral/v1/chat/completions"), 2);
    assert_eq!(emulator.hits("/openai/v1/chat/completions"), 0);
}

#[tokio::test]
async fn context_fallback_continues_in_another_group() {
    let emulator = emulator().await;
    let clock = clock();
    let client = client(
        &emulator,
        &clock,
        &config(
            r#"
            [groups.fast]
            deployments = ["small", "mid"]
            context_fallback = "long"
            [groups.long]
            deployments = ["m4k", "big"]
            "#,
        ),
        LLM_KEYS,
    );

    // 20 000 characters: 5004 tokens, over every window of `fast`.
    let reply = client
        .call("llm.chat", question("fast", 20_000, None))
        .await
        .unwrap();

    assert_eq!(reply.provider, "groq");
    assert_eq!(
        trail(&reply.attempts),
        [
            (Some("small"), "skipped_context_window"),
            (Some("mid"), "skipped_context_window"),
            (Some("m4k"), "skipped_context_window"),
            (Some("big"), "success"),
        ]
    );
    assert!(
        reply.attempts[3]
            .reason
            .starts_with("context fallback from group fast; "),
        "{}",
        reply.attempts[3].reason
    );
    assert_eq!(emulator.requests().len(), 1);

    // A real context_length_exceeded moves the call on too.
    emulator.fault_next(
        "/openai/*",
        Fault::Respond(
            Reply::json(&json!({"error": {
                "message": "This model's maximum context length is 4000 tokens.",
                "type": "invalid_request_error",
                "code": "context_length_exceeded"
            }}))
            .with_status(400),
        ),
        1,
    );
    let reply = client
        .call("llm.chat", question("fast", 14_000, None))
        .await
        .unwrap();
    assert_eq!(
        trail(&reply.attempts),
        [
            (Some("small"), "skipped_context_window"),
            (Some("mid"), "context_length_exceeded"),
            (Some("m4k"), "skipped_context_window"),
            (Some("big"), "success"),
        ]
    );

    // A deployment that fits and fails for another reason is no reason to
    // change groups: the call fails as any other.
    // (Twice: a provider that failed so gets a second chance.)
    emulator.fault_next("/openai/*", Fault::status(500), 2);
    let error = client
        .call("llm.chat", question("fast", 14_000, None))
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::AllProvidersFailed);
    assert_eq!(error.attempts().len(), 2);
    assert_eq!(emulator.hits("/groq/openai/v1/chat/completions"), 2);
}

#[tokio::test]
async fn without_a_fitting_window_the_call_fails_with_a_typed_error() {
    let emulator = emulator().await;
    let clock = clock();
    let client = client(
        &emulator,
        &clock,
        &config(
            r#"
            [groups.fast]
            deployments = ["small", "mid"]
            context_fallback = "long"
            [groups.long]
            deployments = ["m8k"]
            "#,
        ),
        LLM_KEYS,
    );

    let error = client
        .call("llm.chat", question("fast", 40_000, Some(100)))
        .await
        .unwrap_err();

    assert_eq!(error.kind(), ErrorKind::ContextLengthExceeded);
    assert!(!error.is_retryable());
    let Error::ContextLengthExceeded {
        estimated_tokens,
        largest_window,
        ref attempts,
        ..
    } = error
    else {
        panic!("{error:?}")
    };
    assert_eq!(estimated_tokens, 10_000 + 4 + 100);
    assert_eq!(largest_window, Some(8000));
    assert_eq!(attempts.len(), 3, "both groups' trails");
    let text = error.to_string();
    assert!(
        text.starts_with("llm.chat: the prompt (about 10104 tokens) fits no model's context window (the largest tried holds 8000)."),
        "{text}"
    );
    assert!(emulator.requests().is_empty(), "nothing sent");
}

#[test]
fn context_fallback_must_name_another_group_of_the_same_capability() {
    let base = config("");
    for (groups, field, words) in [
        (
            "[groups.fast]\ndeployments = [\"small\"]\ncontext_fallback = \"nope\"",
            "groups.fast.context_fallback",
            "unknown group",
        ),
        (
            "[groups.fast]\ndeployments = [\"small\"]\ncontext_fallback = \"fast\"",
            "groups.fast.context_fallback",
            "itself",
        ),
        (
            "[groups.fast]\ndeployments = [\"small\"]\ncontext_fallback = \"vectors\"\n[groups.vectors]\ndeployments = [\"m8k\"]\ncapability = \"llm.embeddings\"",
            "groups.fast.context_fallback",
            "another capability",
        ),
        (
            "[groups.a]\ndeployments = [\"small\"]\ncontext_fallback = \"b\"\n[groups.b]\ndeployments = [\"big\"]\ncontext_fallback = \"a\"",
            "groups.a.context_fallback",
            "cycle",
        ),
    ] {
        let error = polyrelay::config::Config::from_toml_str(&format!("{base}\n{groups}"))
            .and_then(|c| c.validate().map(|_| c))
            .unwrap_err();
        match &error {
            Error::Config { field: f, message } => {
                assert_eq!(f, field, "{message}");
                assert!(message.contains(words), "{message}");
            }
            other => panic!("{other:?}"),
        }
    }
}

#[tokio::test]
async fn a_stream_passes_over_a_window_too_small_before_opening() {
    let emulator = emulator().await;
    let clock = clock();
    let groq = polyrelay::internal::builtin_providers()
        .iter()
        .copied()
        .find(|p| p.info().id == "groq")
        .unwrap();
    let path = format!(
        "/groq{}",
        groq.streams_chat().unwrap().stream_fixtures()[0].path
    );
    let reply = polyrelay::emulation::stream_reply(groq, std::time::Duration::ZERO).unwrap();
    emulator.route(Method::POST, &path, reply);
    let client = client(
        &emulator,
        &clock,
        &config("[groups.fast]\ndeployments = [\"small\", \"big\"]"),
        LLM_KEYS,
    );

    let mut stream = client
        .stream("llm.chat", question("fast", 6000, None))
        .unwrap();
    let end = loop {
        match stream.next().await {
            Some(Ok(polyrelay::ChatChunk::Done(end))) => break end,
            Some(Ok(_)) => {}
            other => panic!("{other:?}"),
        }
    };

    assert_eq!(
        trail(&end.envelope.attempts),
        [
            (Some("small"), "skipped_context_window"),
            (Some("big"), "success")
        ]
    );
    assert_eq!(emulator.hits("/openai/v1/chat/completions"), 0);
}
