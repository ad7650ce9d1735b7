//! Mistral AI: `llm.chat` and `llm.embeddings`, through the shared
//! [`OpenAiCompatible`] implementation.
//!
//! The free "Experiment" tier allows 1 request/s per workspace; the key
//! (`MISTRAL_API_KEY`) goes in `Authorization: Bearer`. Quirks handled by the
//! shared code: the finish reason `model_length` (the context window filled
//! up), error bodies without an `error` wrapper
//! (`{"object":"error","message":…}`), and the context error worded "too
//! large for model with N maximum context length".

use super::openai_compat::{EmbeddingsEndpoint, OpenAiCompatible, StructuredOutput};
use crate::error::FailureClass;
use crate::provider::{Auth, Fixture, KeyPlacement, ProviderInfo};

/// Mistral AI (<https://docs.mistral.ai>): Mistral chat models and
/// `mistral-embed`.
pub static MISTRAL: OpenAiCompatible<EmbeddingsEndpoint> = OpenAiCompatible {
    info: &INFO,
    chat_path: "/v1/chat/completions",
    chat_model: "mistral-small-latest",
    embeddings: EmbeddingsEndpoint {
        path: "/v1/embeddings",
        model: "mistral-embed",
    },
    max_tokens_field: "max_tokens",
    model_aliases: &[],
    forbidden: FailureClass::Auth,
    fixtures: FIXTURES,
    stream_usage_option: false,
    stream_fixtures: STREAM_FIXTURES,
    structured_output: StructuredOutput::Schema,
    require_parameters: false,
};

static INFO: ProviderInfo = ProviderInfo {
    id: "mistral",
    name: "Mistral AI",
    auth: Auth::Key {
        env: "MISTRAL_API_KEY",
        placement: KeyPlacement::Header {
            name: "Authorization",
            prefix: "Bearer ",
        },
        optional: false,
    },
    base_url: "https://api.mistral.ai",
    docs_url: "https://docs.mistral.ai/api/",
    terms: "Free Experiment tier for prototyping: 1 request/s, 500,000 tokens/min and \
            1 billion tokens/month per workspace; paid tiers above.",
    commercial_use: true,
    default_rate_limit: Some("1/s"),
    default_quota: None,
};

static FIXTURES: &[Fixture] = fixtures![
    // `mistral-small-latest` answering "What is the capital of France?".
    Fixture {
        method: "POST",
        path: "/v1/chat/completions",
        status: 200,
        body: include_str!("fixtures/mistral/chat.json"),
    },
    // Two inputs (vectors shortened from 1024 dimensions).
    Fixture {
        method: "POST",
        path: "/v1/embeddings",
        status: 200,
        body: include_str!("fixtures/mistral/embeddings.json"),
    },
];

static STREAM_FIXTURES: &[Fixture] = fixtures![
    // `mistral-small-latest` streaming an answer, usage in the last chunk (Mistral sends it without being asked).
    Fixture {
        method: "POST",
        path: "/v1/chat/completions",
        status: 200,
        body: include_str!("fixtures/mistral/chat_stream.sse"),
    },
];

#[cfg(test)]
mod tests {
    use http::Method;

    use super::*;
    use crate::capability::llm::FinishReason;
    use crate::capability::Data;

    use crate::providers::openai_compat::testing::*;
    use crate::providers::test_response;
    use crate::providers::testing::*;

    #[test]
    fn requests_are_exact_and_carry_no_key() {
        let req = MISTRAL.request(&chat_request(), &ctx(&MISTRAL)).unwrap();
        assert_eq!(req.method, Method::POST);
        assert_eq!(req.url, "https://api.mistral.ai/v1/chat/completions");
        assert!(req.headers.is_empty());
        assert_eq!(req.json_body().unwrap()["max_tokens"], 64);
        let req = MISTRAL
            .request(&embeddings_request(), &ctx(&MISTRAL))
            .unwrap();
        assert_eq!(req.url, "https://api.mistral.ai/v1/embeddings");
        assert_eq!(req.json_body().unwrap()["model"], "mistral-embed");
        assert!(matches!(
            INFO.auth,
            Auth::Key {
                env: "MISTRAL_API_KEY",
                placement: KeyPlacement::Header {
                    name: "Authorization",
                    prefix: "Bearer "
                },
                optional: false
            }
        ));
    }

    #[test]
    fn fixtures_normalise() {
        let reply = reply_of(&MISTRAL, fixture(&MISTRAL, "/v1/chat/completions"));
        assert_eq!(
            reply.id.as_deref(),
            Some("cf79f7daaee244b1a0ae5c7b1444424a")
        );
        assert_eq!(reply.model, "mistral-small-latest");
        assert_eq!(reply.text, "The capital of France is Paris.");
        assert_eq!(reply.finish_reason, Some(FinishReason::Stop));
        assert_eq!(
            (reply.usage.input_tokens, reply.usage.output_tokens),
            (Some(21), Some(9))
        );
        assert_eq!(reply.usage.cached_input_tokens, None);

        let Data::LlmEmbeddings(e) = answer(
            &MISTRAL,
            &embeddings_request(),
            test_response(200, &[], fixture(&MISTRAL, "/v1/embeddings")),
        ) else {
            panic!("wrong data")
        };
        assert_eq!((e.model.as_str(), e.dimensions), ("mistral-embed", 5));
        assert_eq!(f64::from(e.vectors[0][1]), 0.07012939453125);
        assert_eq!(e.usage.input_tokens, Some(15));
    }

    #[test]
    fn error_signals_are_classified() {
        assert_common_error_signals(&MISTRAL);
        let f = class_of(
            &MISTRAL,
            401,
            &[],
            r#"{"message":"Unauthorized","request_id":"8f1cf0a2b7e2c4d6"}"#,
        );
        assert_eq!(f.class, FailureClass::Auth);
        assert_eq!(f.message, "Mistral AI: Unauthorized");
        let body = r#"{"id":"x","model":"mistral-small-latest","choices":[{"index":0,"message":{"role":"assistant","content":"Paris is"},"finish_reason":"model_length"}]}"#;
        assert_eq!(
            reply_of(&MISTRAL, body).finish_reason,
            Some(FinishReason::ContextLength)
        );
    }
}
