//! DeepL API `v2/translate`: `translate.text`, up to 50 texts per request,
//! with detection and billed characters.
//!
//! Needs a key (`DEEPL_API_KEY`), sent by the pipeline as
//! `Authorization: DeepL-Auth-Key …`. Free keys end in `:fx` and belong to
//! `api-free.deepl.com`, the default base URL; Pro keys need
//! `providers.deepl.base_url = "https://api.deepl.com"`. (The provider never
//! sees the key, so it cannot pick the host; DeepL's 403 "Wrong endpoint"
//! says so, and the failure message repeats it.) DeepL spells languages in
//! upper case (`DE`).
//!
//! **456 means the monthly character quota is used up** (`QuotaExhausted`).
//! 429 and 529 are too many requests, 403 a refused key, 400/413/414 bad or
//! too large requests. Errors are `{"message":"…"}`.

use serde::Deserialize;
use serde_json::json;

use super::clip;
use crate::capability::translate::{Translation, Translations};
use crate::capability::{marker, translate};
use crate::error::{FailureClass, ProviderFailure};
use crate::provider::{
    Auth, CallContext, Fixture, HttpRequest, HttpResponse, KeyPlacement, Provider, ProviderInfo,
    Serves, Step,
};

/// DeepL (<https://www.deepl.com/pro-api>): neural translation with a free
/// or Pro key.
#[derive(Debug, Clone, Copy, Default)]
pub struct DeepL;

static INFO: ProviderInfo = ProviderInfo {
    id: "deepl",
    name: "DeepL API",
    auth: Auth::Key {
        env: "DEEPL_API_KEY",
        placement: KeyPlacement::Header {
            name: "Authorization",
            prefix: "DeepL-Auth-Key ",
        },
        optional: false,
    },
    base_url: "https://api-free.deepl.com",
    docs_url: "https://developers.deepl.com/docs/api-reference/translate",
    terms: "DeepL API Free: 500,000 characters/month (keys end in :fx, host \
            api-free.deepl.com); Pro keys use api.deepl.com (set the base URL).",
    commercial_use: true,
    default_rate_limit: None,
    default_quota: None,
};

impl Provider for DeepL {
    fn info(&self) -> &ProviderInfo {
        &INFO
    }

    fn fixtures(&self) -> &'static [Fixture] {
        FIXTURES
    }
}

crate::serves!(DeepL: TranslateText);

impl Serves<marker::TranslateText> for DeepL {
    fn build_request(
        &self,
        q: &translate::TranslateQuery,
        ctx: &CallContext<'_>,
    ) -> Result<HttpRequest, ProviderFailure> {
        let mut body = json!({
            "text": q.texts,
            "target_lang": q.target_lang.code().to_ascii_uppercase(),
            "show_billed_characters": true,
        });
        if let Some(source) = &q.source_lang {
            body["source_lang"] = json!(source.code().to_ascii_uppercase());
        }
        Ok(HttpRequest::post_json(ctx.base_url, "/v2/translate", body))
    }

    fn read_response(
        &self,
        q: &translate::TranslateQuery,
        ctx: &CallContext<'_>,
        response: HttpResponse,
    ) -> Result<Step<translate::Translations>, ProviderFailure> {
        if !response.is_success() {
            let message = serde_json::from_slice::<ErrorReply>(&response.body)
                .map(|r| format!("DeepL: {}", clip(&r.message)))
                .unwrap_or_else(|_| response.body_excerpt());
            let class = match response.status {
                456 => FailureClass::QuotaExhausted,
                429 | 529 => FailureClass::RateLimited,
                413 | 414 => FailureClass::InvalidRequest,
                403 => {
                    let host = if ctx.base_url.contains("api-free.") {
                        "keys not ending in :fx need base_url https://api.deepl.com"
                    } else {
                        "free keys (ending in :fx) need base_url https://api-free.deepl.com"
                    };
                    return Err(response.failure(FailureClass::Auth, format!("{message} ({host})")));
                }
                _ => response
                    .status_class()
                    .unwrap_or(FailureClass::MalformedResponse),
            };
            return Err(response.failure(class, message));
        }
        let reply: Reply = response.json()?;
        if reply.translations.len() != q.texts.len() {
            return Err(ProviderFailure::malformed(format!(
                "DeepL answered {} translations for {} texts",
                reply.translations.len(),
                q.texts.len()
            ))
            .status(response.status));
        }
        let billed: Option<u64> = reply.translations.iter().map(|t| t.billed_characters).sum();
        let translations = reply
            .translations
            .into_iter()
            .map(|t| Translation {
                text: t.text,
                detected_source_lang: t.detected_source_language.map(|l| l.to_ascii_lowercase()),
                confidence: None,
            })
            .collect();
        Ok(Step::Done(Translations {
            translations,
            target_lang: q.target_lang.code().to_string(),
            chars_billed: billed,
        }))
    }
}

#[derive(Deserialize)]
struct ErrorReply {
    message: String,
}

#[derive(Deserialize)]
struct Reply {
    translations: Vec<Item>,
}

#[derive(Deserialize)]
struct Item {
    detected_source_language: Option<String>,
    text: String,
    billed_characters: Option<u64>,
}

static FIXTURES: &[Fixture] = fixtures![
    // `POST /v2/translate` with `{"text":["Hello, world!"],"target_lang":"DE",…}`.
    Fixture {
        method: "POST",
        path: "/v2/translate",
        status: 200,
        body: include_str!("fixtures/deepl/hello_de.json"),
    },
];

#[cfg(test)]
mod tests {
    use http::Method;

    use super::*;
    use crate::providers::test_response;
    use crate::providers::testing::*;

    fn hello() -> Request {
        request(
            "translate.text",
            json!({"text": "Hello, world!", "target_lang": "de"}),
        )
    }

    #[test]
    fn request_is_exact_and_the_key_goes_in_a_header() {
        let r = request(
            "translate.text",
            json!({"text": ["Hello", "World"], "source_lang": "en", "target_lang": "pt-BR"}),
        );
        let req = DeepL.request(&r, &ctx(&DeepL)).unwrap();
        assert_eq!(req.method, Method::POST);
        assert_eq!(req.url, "https://api-free.deepl.com/v2/translate");
        assert!(req.query.is_empty() && req.headers.is_empty());
        assert_eq!(
            req.json_body(),
            Some(json!({
                "text": ["Hello", "World"],
                "target_lang": "PT",
                "source_lang": "EN",
                "show_billed_characters": true,
            }))
        );
        assert!(matches!(
            DeepL.info().auth,
            Auth::Key {
                env: "DEEPL_API_KEY",
                placement: KeyPlacement::Header {
                    name: "Authorization",
                    prefix: "DeepL-Auth-Key "
                },
                optional: false
            }
        ));
    }

    #[test]
    fn fixture_normalises_with_billing() {
        let body = fixture(&DeepL, "/v2/translate");
        let Data::TranslateText(t) = answer(&DeepL, &hello(), test_response(200, &[], body)) else {
            panic!("wrong data")
        };
        assert_eq!(t.target_lang, "de");
        assert_eq!(t.translations[0].text, "Hallo, Welt!");
        assert_eq!(
            t.translations[0].detected_source_lang.as_deref(),
            Some("en")
        );
        assert_eq!(t.chars_billed, Some(13));
    }

    #[test]
    fn error_signals_are_classified() {
        let r = hello();
        let f = failure(
            &DeepL,
            &r,
            test_response(456, &[], r#"{"message":"Quota Exceeded"}"#),
        );
        assert_eq!(f.class, FailureClass::QuotaExhausted);
        assert_eq!(f.message, "DeepL: Quota Exceeded");
        let f = failure(
            &DeepL,
            &r,
            test_response(
                429,
                &[("retry-after", "2")],
                r#"{"message":"Too many requests"}"#,
            ),
        );
        assert_eq!(f.class, FailureClass::RateLimited);
        assert_eq!(f.retry_after, Some(std::time::Duration::from_secs(2)));
        let f = failure(
            &DeepL,
            &r,
            test_response(529, &[], r#"{"message":"Too many requests"}"#),
        );
        assert_eq!(f.class, FailureClass::RateLimited);
        let f = failure(
            &DeepL,
            &r,
            test_response(
                403,
                &[],
                r#"{"message":"Wrong endpoint. Use https://api.deepl.com"}"#,
            ),
        );
        assert_eq!(f.class, FailureClass::Auth);
        assert!(
            f.message.contains("base_url https://api.deepl.com"),
            "{}",
            f.message
        );
        let f = failure(
            &DeepL,
            &r,
            test_response(
                400,
                &[],
                r#"{"message":"Value for 'target_lang' not supported."}"#,
            ),
        );
        assert_eq!(f.class, FailureClass::InvalidRequest);
        let f = failure(
            &DeepL,
            &r,
            test_response(413, &[], r#"{"message":"Request Entity Too Large"}"#),
        );
        assert_eq!(f.class, FailureClass::InvalidRequest);
        let f = failure(&DeepL, &r, test_response(503, &[], ""));
        assert_eq!(f.class, FailureClass::Transient);
    }

    #[test]
    fn malformed_bodies_never_panic() {
        let body = fixture(&DeepL, "/v2/translate");
        assert_truncations_are_malformed(&DeepL, &hello(), body);
        let two = r#"{"translations":[{"text":"a"},{"text":"b"}]}"#;
        let f = failure(&DeepL, &hello(), test_response(200, &[], two));
        assert_eq!(f.class, FailureClass::MalformedResponse);
    }
}
