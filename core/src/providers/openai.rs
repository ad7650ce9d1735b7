//! OpenAI: `llm.chat` (chat completions) and `llm.embeddings`, through the
//! shared [`OpenAiCompatible`] implementation.
//!
//! Paid only; the key (`OPENAI_API_KEY`) goes in `Authorization: Bearer`.
//! Quirks: the output limit is sent as `max_completion_tokens` (reasoning
//! models refuse `max_tokens`), and a 429 means two different things: code
//! `rate_limit_exceeded` is a rate limit worth waiting for, code
//! `insufficient_quota` is exhausted billing (quota, not retried).
//! OpenAI documents no idempotency header for chat completions, so a sent
//! request is never repeated.

use super::openai_compat::{EmbeddingsEndpoint, OpenAiCompatible, StructuredOutput};
use crate::error::FailureClass;
use crate::provider::{Auth, Fixture, KeyPlacement, ProviderInfo};

/// OpenAI (<https://platform.openai.com>): GPT chat models and the
/// `text-embedding-3` models.
pub static OPENAI: OpenAiCompatible<EmbeddingsEndpoint> = OpenAiCompatible {
    info: &INFO,
    chat_path: "/v1/chat/completions",
    chat_model: "gpt-4o-mini",
    embeddings: EmbeddingsEndpoint {
        path: "/v1/embeddings",
        model: "text-embedding-3-small",
    },
    max_tokens_field: "max_completion_tokens",
    model_aliases: &[("gpt-4o-mini", "gpt-4o-mini")],
    forbidden: FailureClass::Auth,
    fixtures: FIXTURES,
    stream_usage_option: true,
    stream_fixtures: STREAM_FIXTURES,
    structured_output: StructuredOutput::Schema,
    require_parameters: false,
};

static INFO: ProviderInfo = ProviderInfo {
    id: "openai",
    name: "OpenAI",
    auth: Auth::Key {
        env: "OPENAI_API_KEY",
        placement: KeyPlacement::Header {
            name: "Authorization",
            prefix: "Bearer ",
        },
        optional: false,
    },
    base_url: "https://api.openai.com",
    docs_url: "https://platform.openai.com/docs/api-reference/chat",
    terms: "Paid API without a free tier; rate limits depend on the account's usage tier \
            and the model.",
    commercial_use: true,
    default_rate_limit: None,
    default_quota: None,
};

static FIXTURES: &[Fixture] = fixtures![
    // The API reference's example: `gpt-4.1` answering "Hello!".
    Fixture {
        method: "POST",
        path: "/v1/chat/completions",
        status: 200,
        body: include_str!("fixtures/openai/chat.json"),
    },
    // Two inputs (vectors shortened from 1536 dimensions).
    Fixture {
        method: "POST",
        path: "/v1/embeddings",
        status: 200,
        body: include_str!("fixtures/openai/embeddings.json"),
    },
];

static STREAM_FIXTURES: &[Fixture] = fixtures![
    // `gpt-4o-mini` streaming "Hello! How can I assist you today?" with `stream_options.include_usage`: usage in a last chunk without choices.
    Fixture {
        method: "POST",
        path: "/v1/chat/completions",
        status: 200,
        body: include_str!("fixtures/openai/chat_stream.sse"),
    },
];

#[cfg(test)]
mod tests {
    use http::Method;
    use serde_json::json;

    use super::*;
    use crate::capability::llm::FinishReason;
    use crate::capability::Data;

    use crate::providers::openai_compat::testing::*;
    use crate::providers::test_response;
    use crate::providers::testing::*;

    #[test]
    fn requests_are_exact_and_carry_no_key() {
        let req = OPENAI.request(&chat_request(), &ctx(&OPENAI)).unwrap();
        assert_eq!(req.method, Method::POST);
        assert_eq!(req.url, "https://api.openai.com/v1/chat/completions");
        assert!(req.headers.is_empty() && req.query.is_empty());
        let body = req.json_body().unwrap();
        assert_eq!(body["max_completion_tokens"], 64);
        assert!(body.get("max_tokens").is_none());

        let req = OPENAI
            .request(&embeddings_request(), &ctx(&OPENAI))
            .unwrap();
        assert_eq!(req.url, "https://api.openai.com/v1/embeddings");
        assert_eq!(
            req.json_body().unwrap(),
            json!({"model": "text-embedding-3-small", "input": ["The capital of France is Paris.", "Paris is in France."]})
        );
        assert_eq!(
            INFO.auth,
            Auth::Key {
                env: "OPENAI_API_KEY",
                placement: KeyPlacement::Header {
                    name: "Authorization",
                    prefix: "Bearer "
                },
                optional: false,
            }
        );
    }

    #[test]
    fn fixtures_normalise() {
        let reply = reply_of(&OPENAI, fixture(&OPENAI, "/v1/chat/completions"));
        assert_eq!(
            reply.id.as_deref(),
            Some("chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT")
        );
        assert_eq!(reply.model, "gpt-4.1-2025-04-14");
        assert_eq!(reply.text, "Hello! How can I assist you today?");
        assert_eq!(reply.finish_reason, Some(FinishReason::Stop));
        assert_eq!(
            (
                reply.usage.input_tokens,
                reply.usage.output_tokens,
                reply.usage.total_tokens
            ),
            (Some(19), Some(10), Some(29))
        );
        assert_eq!(reply.usage.cached_input_tokens, Some(0));
        assert_eq!(reply.usage.reasoning_tokens, Some(0));
        assert_eq!(reply.reasoning, None);

        let Data::LlmEmbeddings(e) = answer(
            &OPENAI,
            &embeddings_request(),
            test_response(200, &[], fixture(&OPENAI, "/v1/embeddings")),
        ) else {
            panic!("wrong data")
        };
        assert_eq!(e.model, "text-embedding-3-small");
        assert_eq!(e.dimensions, 6);
        assert_eq!(e.vectors[1][0], 0.0123441);
        assert_eq!(e.usage.input_tokens, Some(14));
    }

    #[test]
    fn a_429_is_a_rate_limit_or_exhausted_billing_by_its_code() {
        assert_common_error_signals(&OPENAI);
        let f = class_of(
            &OPENAI,
            429,
            &[],
            r#"{"error":{"message":"You exceeded your current quota, please check your plan and billing details.","type":"insufficient_quota","param":null,"code":"insufficient_quota"}}"#,
        );
        assert_eq!(f.class, FailureClass::QuotaExhausted);
        assert!(
            f.message.starts_with("OpenAI: You exceeded"),
            "{}",
            f.message
        );
        let f = class_of(
            &OPENAI,
            403,
            &[],
            r#"{"error":{"code":"unsupported_country_region_territory","message":"Country, region, or territory not supported","param":null,"type":"request_forbidden"}}"#,
        );
        assert_eq!(f.class, FailureClass::Auth);
    }
}
