//! Groq: `llm.chat` on open-weight models, through the shared
//! [`OpenAiCompatible`] implementation.
//!
//! Quirk: the OpenAI-compatible API lives under `/openai/v1`. The free plan
//! limits each model per organization (the default
//! `llama-3.3-70b-versatile`: 30 requests/min, 1,000/day); every response
//! carries `x-ratelimit-*` headers and a 429 carries `retry-after`. The key
//! (`GROQ_API_KEY`) goes in `Authorization: Bearer`. The usage block adds
//! timing fields (`queue_time`, …), which are ignored. A JSON Schema answer
//! is asked with `response_format` only of the models that take one
//! (GPT-OSS, Kimi K2, Llama 4); the others are given JSON mode and the
//! schema in a system instruction.

use super::openai_compat::{NoEmbeddings, OpenAiCompatible, StructuredOutput};
use crate::error::FailureClass;
use crate::provider::{Auth, Fixture, KeyPlacement, ProviderInfo, Quota};

/// Groq (<https://console.groq.com>): fast inference of Llama and other
/// open-weight models, with a free plan.
pub static GROQ: OpenAiCompatible = OpenAiCompatible {
    info: &INFO,
    chat_path: "/openai/v1/chat/completions",
    chat_model: "llama-3.3-70b-versatile",
    embeddings: NoEmbeddings,
    max_tokens_field: "max_tokens",
    model_aliases: &[
        ("llama-3.3-70b", "llama-3.3-70b-versatile"),
        ("llama-3.1-8b", "llama-3.1-8b-instant"),
    ],
    forbidden: FailureClass::Auth,
    fixtures: FIXTURES,
    stream_usage_option: true,
    stream_fixtures: STREAM_FIXTURES,
    structured_output: StructuredOutput::SchemaOn(GROQ_SCHEMA_MODELS),
    require_parameters: false,
};

/// The models Groq's structured-outputs guide lists as taking a
/// `json_schema` (by id prefix); the others, the default included, take
/// JSON mode only and refuse a schema with a 400.
static GROQ_SCHEMA_MODELS: &[&str] = &[
    "openai/gpt-oss-",
    "moonshotai/kimi-k2",
    "meta-llama/llama-4-",
];

static INFO: ProviderInfo = ProviderInfo {
    id: "groq",
    name: "Groq",
    auth: Auth::Key {
        env: "GROQ_API_KEY",
        placement: KeyPlacement::Header {
            name: "Authorization",
            prefix: "Bearer ",
        },
        optional: false,
    },
    base_url: "https://api.groq.com",
    docs_url: "https://console.groq.com/docs/api-reference",
    terms: "Free plan with limits per model and organization (llama-3.3-70b-versatile: \
            30 requests/min, 1,000 requests/day); paid plans above.",
    commercial_use: true,
    default_rate_limit: Some("30/min"),
    default_quota: Some(Quota::per_day(1_000)),
};

static FIXTURES: &[Fixture] = fixtures![
    // `llama-3.3-70b-versatile` answering "What is the capital of France?".
    Fixture {
        method: "POST",
        path: "/openai/v1/chat/completions",
        status: 200,
        body: include_str!("fixtures/groq/chat.json"),
    },
];

static STREAM_FIXTURES: &[Fixture] = fixtures![
    // `llama-3.3-70b-versatile` streaming an answer, usage under `x_groq` in the last chunk.
    Fixture {
        method: "POST",
        path: "/openai/v1/chat/completions",
        status: 200,
        body: include_str!("fixtures/groq/chat_stream.sse"),
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
    fn requests_use_the_openai_prefix_and_carry_no_key() {
        let req = GROQ.request(&chat_request(), &ctx(&GROQ)).unwrap();
        assert_eq!(req.method, Method::POST);
        assert_eq!(req.url, "https://api.groq.com/openai/v1/chat/completions");
        assert!(req.headers.is_empty());
        assert_eq!(req.json_body().unwrap()["model"], "llama-3.3-70b-versatile");
        assert!(matches!(
            INFO.auth,
            Auth::Key {
                env: "GROQ_API_KEY",
                placement: KeyPlacement::Header {
                    name: "Authorization",
                    prefix: "Bearer "
                },
                optional: false
            }
        ));
    }

    #[test]
    fn fixture_normalises_despite_timing_fields() {
        let reply = reply_of(&GROQ, fixture(&GROQ, "/openai/v1/chat/completions"));
        assert_eq!(reply.model, "llama-3.3-70b-versatile");
        assert_eq!(reply.text, "The capital of France is Paris.");
        assert_eq!(reply.finish_reason, Some(FinishReason::Stop));
        assert_eq!(
            (
                reply.usage.input_tokens,
                reply.usage.output_tokens,
                reply.usage.total_tokens
            ),
            (Some(45), Some(8), Some(53))
        );
        assert_eq!(
            reply.id.as_deref(),
            Some("chatcmpl-f51b2cd2-bef7-417e-964e-a08f0b513c22")
        );
    }

    #[test]
    fn error_signals_are_classified() {
        assert_common_error_signals(&GROQ);
        // A tokens-per-minute limit is throttling, not a context overflow.
        let f = class_of(
            &GROQ,
            413,
            &[("retry-after", "2")],
            r#"{"error":{"message":"Request too large for model `llama-3.3-70b-versatile` in organization `org_01` on tokens per minute (TPM): Limit 6000, Requested 7000, please reduce your message size and try again.","type":"tokens","code":"rate_limit_exceeded"}}"#,
        );
        assert_eq!(f.class, FailureClass::InvalidRequest);
        assert_eq!(f.retry_after, Some(Duration::from_secs(2)));
        let f = class_of(
            &GROQ,
            400,
            &[],
            r#"{"error":{"message":"Please reduce the length of the messages or completion.","type":"invalid_request_error","param":"messages","code":"context_length_exceeded"}}"#,
        );
        assert_eq!(f.class, FailureClass::ContextLengthExceeded);
    }
}
