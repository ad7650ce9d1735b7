//! OpenRouter: `llm.chat` on many vendors' models, through the shared
//! [`OpenAiCompatible`] implementation.
//!
//! The key (`OPENROUTER_API_KEY`) goes in `Authorization: Bearer`. Model ids
//! are vendor-prefixed (`meta-llama/llama-3.3-70b-instruct`); the default is a
//! `:free` model (20 requests/min, 50/day until 10 credits were bought).
//! Quirks: 402 means the credits are used up (quota); 403 means the input
//! was flagged by a model's moderation (a content refusal, with the flagged
//! categories from `metadata.reasons`), not a refused key; once the model
//! has started, a failure
//! comes back as HTTP 200 with `{"error":{"code":502,…}}` in the body, or a
//! choice with `finish_reason: "error"`, both classified by their code; a
//! relayed upstream error keeps the upstream text under `error.metadata.raw`.
//! A request with a `response_format` asks to be routed only to upstreams
//! that take every parameter (`provider.require_parameters`), since one
//! that does not would ignore it.

use super::openai_compat::{NoEmbeddings, OpenAiCompatible, StructuredOutput};
use crate::error::FailureClass;
use crate::provider::{Auth, Fixture, KeyPlacement, ProviderInfo, Quota};

/// OpenRouter (<https://openrouter.ai>): one API in front of most vendors'
/// models, including free ones.
pub static OPENROUTER: OpenAiCompatible = OpenAiCompatible {
    info: &INFO,
    chat_path: "/api/v1/chat/completions",
    chat_model: "meta-llama/llama-3.3-70b-instruct:free",
    embeddings: NoEmbeddings,
    max_tokens_field: "max_tokens",
    model_aliases: &[
        ("llama-3.3-70b", "meta-llama/llama-3.3-70b-instruct"),
        ("llama-3.1-8b", "meta-llama/llama-3.1-8b-instruct"),
        ("gpt-4o-mini", "openai/gpt-4o-mini"),
    ],
    forbidden: FailureClass::ContentFiltered,
    fixtures: FIXTURES,
    stream_usage_option: true,
    stream_fixtures: STREAM_FIXTURES,
    structured_output: StructuredOutput::Schema,
    require_parameters: true,
};

static INFO: ProviderInfo = ProviderInfo {
    id: "openrouter",
    name: "OpenRouter",
    auth: Auth::Key {
        env: "OPENROUTER_API_KEY",
        placement: KeyPlacement::Header {
            name: "Authorization",
            prefix: "Bearer ",
        },
        optional: false,
    },
    base_url: "https://openrouter.ai",
    docs_url: "https://openrouter.ai/docs/api-reference/overview",
    terms: "Free `:free` models: 20 requests/min and 50 requests/day (1,000/day once 10 \
            credits were bought); other models use prepaid credit.",
    commercial_use: true,
    default_rate_limit: Some("20/min"),
    default_quota: Some(Quota::per_day(50)),
};

static FIXTURES: &[Fixture] = fixtures![
    // The free Llama 3.3 70B answering "What is the capital of France?".
    Fixture {
        method: "POST",
        path: "/api/v1/chat/completions",
        status: 200,
        body: include_str!("fixtures/openrouter/chat.json"),
    },
];

static STREAM_FIXTURES: &[Fixture] = fixtures![
    // `openai/gpt-4o-mini` through OpenRouter, after its `: OPENROUTER PROCESSING` comments, usage in a last chunk.
    Fixture {
        method: "POST",
        path: "/api/v1/chat/completions",
        status: 200,
        body: include_str!("fixtures/openrouter/chat_stream.sse"),
    },
];

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use http::Method;

    use super::*;
    use crate::capability::llm::FinishReason;

    use crate::providers::openai_compat::testing::*;
    use crate::providers::testing::*;

    #[test]
    fn requests_are_exact_and_carry_no_key() {
        let req = OPENROUTER
            .request(&chat_request(), &ctx(&OPENROUTER))
            .unwrap();
        assert_eq!(req.method, Method::POST);
        assert_eq!(req.url, "https://openrouter.ai/api/v1/chat/completions");
        assert!(req.headers.is_empty());
        assert_eq!(
            req.json_body().unwrap()["model"],
            "meta-llama/llama-3.3-70b-instruct:free"
        );
        assert!(matches!(
            INFO.auth,
            Auth::Key {
                env: "OPENROUTER_API_KEY",
                placement: KeyPlacement::Header {
                    name: "Authorization",
                    prefix: "Bearer "
                },
                optional: false
            }
        ));
    }

    #[test]
    fn fixture_normalises() {
        let reply = reply_of(
            &OPENROUTER,
            fixture(&OPENROUTER, "/api/v1/chat/completions"),
        );
        assert_eq!(
            reply.id.as_deref(),
            Some("gen-1741569952-AbCdEfGhIjKlMnOpQrSt")
        );
        assert_eq!(reply.model, "meta-llama/llama-3.3-70b-instruct:free");
        assert_eq!(reply.text, "The capital of France is Paris.");
        assert_eq!(reply.finish_reason, Some(FinishReason::Stop));
        assert_eq!(
            (reply.usage.input_tokens, reply.usage.total_tokens),
            (Some(19), Some(27))
        );
        assert_eq!(reply.reasoning, None, "null reasoning");
    }

    #[test]
    fn error_signals_are_classified() {
        assert_common_error_signals(&OPENROUTER);
        let f = class_of(
            &OPENROUTER,
            402,
            &[],
            r#"{"error":{"code":402,"message":"Insufficient credits. Add more using https://openrouter.ai/credits","metadata":{"limit_source":"openrouter_credits"}}}"#,
        );
        assert_eq!(f.class, FailureClass::QuotaExhausted);
        // https://openrouter.ai/docs/api-reference/errors: "403: Your chosen
        // model requires moderation and your input was flagged", with
        // `reasons` and `flagged_input` (the prompt, never repeated) in
        // `metadata`.
        let f = class_of(
            &OPENROUTER,
            403,
            &[],
            r#"{"error":{"code":403,"message":"meta-llama/llama-guard flagged your input","metadata":{"reasons":["violence"],"flagged_input":"how to hurt someone","provider_name":"Together","model_slug":"x"}}}"#,
        );
        assert_eq!(
            f.class,
            FailureClass::ContentFiltered,
            "moderation, not a bad key"
        );
        assert_eq!(f.status, Some(403));
        assert_eq!(
            f.message,
            "OpenRouter: meta-llama/llama-guard flagged your input (flagged: violence)"
        );
        assert!(
            !f.message.contains("hurt"),
            "the flagged input is not echoed"
        );
        let f = class_of(
            &OPENROUTER,
            429,
            &[("retry-after", "12")],
            r#"{"error":{"code":429,"message":"Rate limit exceeded: free-models-per-day. Add 10 credits to unlock 1000 free model requests per day","metadata":{"headers":{"X-RateLimit-Limit":"50","X-RateLimit-Remaining":"0","X-RateLimit-Reset":"1741651200000"}}}}"#,
        );
        assert_eq!(f.class, FailureClass::RateLimited);
        assert_eq!(f.retry_after, Some(Duration::from_secs(12)));
        let f = class_of(
            &OPENROUTER,
            400,
            &[],
            r#"{"error":{"code":400,"message":"This endpoint's maximum context length is 131072 tokens. However, you requested about 140000 tokens."}}"#,
        );
        assert_eq!(f.class, FailureClass::ContextLengthExceeded);
        // A relayed upstream error keeps the upstream's own wording.
        let f = class_of(
            &OPENROUTER,
            400,
            &[],
            r#"{"error":{"code":400,"message":"Provider returned error","metadata":{"provider_name":"Anthropic","raw":"{\"type\":\"error\",\"error\":{\"type\":\"invalid_request_error\",\"message\":\"prompt is too long: 208732 tokens > 200000 maximum\"}}"}}}"#,
        );
        assert_eq!(f.class, FailureClass::ContextLengthExceeded);
    }
}
