//! DeepSeek: `llm.chat`, through the shared [`OpenAiCompatible`]
//! implementation.
//!
//! Prepaid credit; the key (`DEEPSEEK_API_KEY`) goes in
//! `Authorization: Bearer`. Quirks: the API has no `/v1` prefix; there is
//! no fixed rate limit, and under load the connection is held open with
//! blank keep-alive lines before the JSON body (tolerated when parsing);
//! 402 means the balance is used up (quota), 503 "server overloaded"
//! (transient). `deepseek-reasoner` returns its reasoning as
//! `reasoning_content`, and usage counts cached prompt tokens as
//! `prompt_cache_hit_tokens`. Its JSON output is JSON mode alone
//! (`json_object`): a JSON Schema answer is asked in JSON mode with the
//! schema told in a system instruction.

use super::openai_compat::{NoEmbeddings, OpenAiCompatible, StructuredOutput};
use crate::error::FailureClass;
use crate::provider::{Auth, Fixture, KeyPlacement, ProviderInfo};

/// DeepSeek (<https://platform.deepseek.com>): DeepSeek-V3 chat and the R1
/// reasoner.
pub static DEEPSEEK: OpenAiCompatible = OpenAiCompatible {
    info: &INFO,
    chat_path: "/chat/completions",
    chat_model: "deepseek-chat",
    embeddings: NoEmbeddings,
    max_tokens_field: "max_tokens",
    model_aliases: &[],
    forbidden: FailureClass::Auth,
    fixtures: FIXTURES,
    stream_usage_option: true,
    stream_fixtures: STREAM_FIXTURES,
    structured_output: StructuredOutput::ObjectOnly,
    require_parameters: false,
};

static INFO: ProviderInfo = ProviderInfo {
    id: "deepseek",
    name: "DeepSeek",
    auth: Auth::Key {
        env: "DEEPSEEK_API_KEY",
        placement: KeyPlacement::Header {
            name: "Authorization",
            prefix: "Bearer ",
        },
        optional: false,
    },
    base_url: "https://api.deepseek.com",
    docs_url: "https://api-docs.deepseek.com/api/create-chat-completion",
    terms: "Prepaid credit (HTTP 402 when used up); no fixed rate limit, busy periods \
            hold the connection open for up to 10 minutes.",
    commercial_use: true,
    default_rate_limit: None,
    default_quota: None,
};

static FIXTURES: &[Fixture] = fixtures![
    // `deepseek-chat` answering after two keep-alive blank lines, as it does
    // under load; part of the prompt came from DeepSeek's cache.
    Fixture {
        method: "POST",
        path: "/chat/completions",
        status: 200,
        body: include_str!("fixtures/deepseek/chat.json"),
    },
];

static STREAM_FIXTURES: &[Fixture] = fixtures![
    // `deepseek-reasoner` streaming its reasoning, then its answer, after a keep-alive comment.
    Fixture {
        method: "POST",
        path: "/chat/completions",
        status: 200,
        body: include_str!("fixtures/deepseek/chat_stream.sse"),
    },
];

#[cfg(test)]
mod tests {
    use http::Method;

    use super::*;
    use crate::capability::llm::FinishReason;

    use crate::providers::openai_compat::testing::*;
    use crate::providers::testing::*;

    #[test]
    fn requests_have_no_version_prefix_and_carry_no_key() {
        let req = DEEPSEEK.request(&chat_request(), &ctx(&DEEPSEEK)).unwrap();
        assert_eq!(req.method, Method::POST);
        assert_eq!(req.url, "https://api.deepseek.com/chat/completions");
        assert!(req.headers.is_empty());
        assert_eq!(req.json_body().unwrap()["model"], "deepseek-chat");
        assert!(matches!(
            INFO.auth,
            Auth::Key {
                env: "DEEPSEEK_API_KEY",
                placement: KeyPlacement::Header {
                    name: "Authorization",
                    prefix: "Bearer "
                },
                optional: false
            }
        ));
    }

    #[test]
    fn keep_alive_blank_lines_before_the_body_are_tolerated() {
        assert!(fixture(&DEEPSEEK, "/chat/completions").starts_with("\n\n{"));
        let reply = reply_of(&DEEPSEEK, fixture(&DEEPSEEK, "/chat/completions"));
        assert_eq!(reply.model, "deepseek-chat");
        assert_eq!(reply.text, "The capital of France is Paris.");
        assert_eq!(reply.finish_reason, Some(FinishReason::Stop));
        assert_eq!(
            (reply.usage.input_tokens, reply.usage.output_tokens),
            (Some(80), Some(8))
        );
        assert_eq!(reply.usage.cached_input_tokens, Some(64));
        // Blank lines alone (the connection closed while waiting) are malformed.
        let f = class_of(&DEEPSEEK, 200, &[], "\n\n\n");
        assert_eq!(f.class, FailureClass::MalformedResponse);
    }

    #[test]
    fn the_reasoner_returns_its_reasoning_and_cache_hits_without_details() {
        let body = "\n{\"id\":\"r1\",\"object\":\"chat.completion\",\"model\":\"deepseek-reasoner\",\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":\"Paris.\",\"reasoning_content\":\"France's capital is Paris.\"},\"finish_reason\":\"stop\"}],\"usage\":{\"prompt_tokens\":20,\"completion_tokens\":40,\"total_tokens\":60,\"prompt_cache_hit_tokens\":12,\"prompt_cache_miss_tokens\":8,\"completion_tokens_details\":{\"reasoning_tokens\":35}}}";
        let reply = reply_of(&DEEPSEEK, body);
        assert_eq!(
            reply.reasoning.as_deref(),
            Some("France's capital is Paris.")
        );
        assert_eq!(reply.usage.cached_input_tokens, Some(12));
        assert_eq!(reply.usage.reasoning_tokens, Some(35));
    }

    #[test]
    fn error_signals_are_classified() {
        assert_common_error_signals(&DEEPSEEK);
        let f = class_of(
            &DEEPSEEK,
            402,
            &[],
            r#"{"error":{"message":"Insufficient Balance","type":"unknown_error","param":null,"code":"invalid_request_error"}}"#,
        );
        assert_eq!(f.class, FailureClass::QuotaExhausted);
        assert_eq!(f.message, "DeepSeek: Insufficient Balance");
        let f = class_of(
            &DEEPSEEK,
            503,
            &[],
            r#"{"error":{"message":"Server overloaded, please try again later","type":"server_error"}}"#,
        );
        assert_eq!(f.class, FailureClass::Transient);
        let f = class_of(
            &DEEPSEEK,
            400,
            &[],
            r#"{"error":{"message":"This model's maximum context length is 65536 tokens. However, you requested 70000 tokens (69000 in the messages, 1000 in the completion). Please reduce the length of the messages or completion.","type":"invalid_request_error","param":null,"code":"invalid_request_error"}}"#,
        );
        assert_eq!(f.class, FailureClass::ContextLengthExceeded);
    }
}
