//! Together AI: `llm.chat` and `llm.embeddings` on open-weight models,
//! through the shared [`OpenAiCompatible`] implementation.
//!
//! Paid credit with per-model limits by account tier; the key
//! (`TOGETHER_API_KEY`) goes in `Authorization: Bearer`. Model ids are
//! `<org>/<model>` (`meta-llama/Llama-3.3-70B-Instruct-Turbo`); the context
//! error reads "… is longer than the model's context length".

use super::openai_compat::{EmbeddingsEndpoint, OpenAiCompatible, StructuredOutput};
use crate::error::FailureClass;
use crate::provider::{Auth, Fixture, KeyPlacement, ProviderInfo};

/// Together AI (<https://www.together.ai>): hosted open-weight chat and
/// embedding models.
pub static TOGETHER: OpenAiCompatible<EmbeddingsEndpoint> = OpenAiCompatible {
    info: &INFO,
    chat_path: "/v1/chat/completions",
    chat_model: "meta-llama/Llama-3.3-70B-Instruct-Turbo",
    embeddings: EmbeddingsEndpoint {
        path: "/v1/embeddings",
        model: "BAAI/bge-large-en-v1.5",
    },
    max_tokens_field: "max_tokens",
    model_aliases: &[
        ("llama-3.3-70b", "meta-llama/Llama-3.3-70B-Instruct-Turbo"),
        (
            "llama-3.1-8b",
            "meta-llama/Meta-Llama-3.1-8B-Instruct-Turbo",
        ),
    ],
    forbidden: FailureClass::Auth,
    fixtures: FIXTURES,
    stream_usage_option: false,
    stream_fixtures: STREAM_FIXTURES,
    structured_output: StructuredOutput::Schema,
    require_parameters: false,
};

static INFO: ProviderInfo = ProviderInfo {
    id: "together",
    name: "Together AI",
    auth: Auth::Key {
        env: "TOGETHER_API_KEY",
        placement: KeyPlacement::Header {
            name: "Authorization",
            prefix: "Bearer ",
        },
        optional: false,
    },
    base_url: "https://api.together.xyz",
    docs_url: "https://docs.together.ai/reference/chat-completions-1",
    terms: "Prepaid credit; requests and tokens per minute are limited per model by \
            account tier.",
    commercial_use: true,
    default_rate_limit: None,
    default_quota: None,
};

static FIXTURES: &[Fixture] = fixtures![
    // Llama 3.3 70B Turbo answering "What is the capital of France?".
    Fixture {
        method: "POST",
        path: "/v1/chat/completions",
        status: 200,
        body: include_str!("fixtures/together/chat.json"),
    },
    // Two inputs (vectors shortened from 1024 dimensions); no usage block.
    Fixture {
        method: "POST",
        path: "/v1/embeddings",
        status: 200,
        body: include_str!("fixtures/together/embeddings.json"),
    },
];

static STREAM_FIXTURES: &[Fixture] = fixtures![
    // `Llama-3.3-70B-Instruct-Turbo` streaming an answer, usage in the last chunk.
    Fixture {
        method: "POST",
        path: "/v1/chat/completions",
        status: 200,
        body: include_str!("fixtures/together/chat_stream.sse"),
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
        let req = TOGETHER.request(&chat_request(), &ctx(&TOGETHER)).unwrap();
        assert_eq!(req.method, Method::POST);
        assert_eq!(req.url, "https://api.together.xyz/v1/chat/completions");
        assert!(req.headers.is_empty());
        let req = TOGETHER
            .request(&embeddings_request(), &ctx(&TOGETHER))
            .unwrap();
        assert_eq!(req.url, "https://api.together.xyz/v1/embeddings");
        assert_eq!(req.json_body().unwrap()["model"], "BAAI/bge-large-en-v1.5");
        assert!(matches!(
            INFO.auth,
            Auth::Key {
                env: "TOGETHER_API_KEY",
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
        let reply = reply_of(&TOGETHER, fixture(&TOGETHER, "/v1/chat/completions"));
        assert_eq!(reply.model, "meta-llama/Llama-3.3-70B-Instruct-Turbo");
        assert_eq!(reply.text, "The capital of France is Paris.");
        assert_eq!(reply.finish_reason, Some(FinishReason::Stop));
        assert_eq!(
            (reply.usage.input_tokens, reply.usage.output_tokens),
            (Some(45), Some(8))
        );

        let Data::LlmEmbeddings(e) = answer(
            &TOGETHER,
            &embeddings_request(),
            test_response(200, &[], fixture(&TOGETHER, "/v1/embeddings")),
        ) else {
            panic!("wrong data")
        };
        assert_eq!(
            (e.model.as_str(), e.dimensions),
            ("BAAI/bge-large-en-v1.5", 4)
        );
        assert_eq!(f64::from(e.vectors[1][3]), -0.0140380859375);
        assert_eq!(e.usage.input_tokens, None);
    }

    #[test]
    fn error_signals_are_classified() {
        assert_common_error_signals(&TOGETHER);
        let f = class_of(
            &TOGETHER,
            400,
            &[],
            r#"{"error":{"message":"Input validation error: `inputs` tokens + `max_new_tokens` must be <= 131073. Given: 140000 `inputs` tokens and 64 `max_new_tokens`","type":"invalid_request_error","param":null,"code":null}}"#,
        );
        assert_eq!(
            f.class,
            FailureClass::ContextLengthExceeded,
            "TGI's wording"
        );
        let f = class_of(
            &TOGETHER,
            400,
            &[],
            r#"{"error":{"message":"The input (140000 tokens) is longer than the model's context length (131072 tokens).","type":"invalid_request_error","param":null,"code":null}}"#,
        );
        assert_eq!(f.class, FailureClass::ContextLengthExceeded);
    }
}
