//! LibreTranslate `translate`: `translate.text` with language detection,
//! on a self-hosted instance or libretranslate.com.
//!
//! Keyless on your own instance (set `providers.libretranslate.base_url`);
//! the public libretranslate.com needs a key (`LIBRETRANSLATE_API_KEY`).
//! LibreTranslate reads `api_key` only from the JSON body or the form and
//! query parameters, never from a header, and polyrelay never puts a key in
//! a body. So the request is a `POST /translate` carrying every parameter
//! in the query string (which LibreTranslate reads like a form), with the
//! key placed there by the pipeline. That limits it to one text of at most
//! 2,000 characters per request; other requests are `Unsupported`.
//!
//! Errors are `{"error":"…"}`: 400 is a bad request, or a missing key when
//! the message asks for one ("Visit <https://portal.libretranslate.com> to get
//! an API key"), then `Auth` like 403 (invalid key, or banned for too many
//! limit violations); 429 "Slowdown: …" is `RateLimited`.

use http::Method;
use serde::Deserialize;

use super::clip;
use super::wire::non_empty;
use crate::capability::translate::{Translation, Translations};
use crate::capability::{marker, translate};
use crate::error::{FailureClass, ProviderFailure};
use crate::provider::{
    Auth, CallContext, Fixture, HttpRequest, HttpResponse, KeyPlacement, Provider, ProviderInfo,
    Serves, Step,
};

/// LibreTranslate (<https://libretranslate.com>): open-source machine
/// translation, keyless when self-hosted.
#[derive(Debug, Clone, Copy, Default)]
pub struct LibreTranslate;

static INFO: ProviderInfo = ProviderInfo {
    id: "libretranslate",
    name: "LibreTranslate",
    auth: Auth::Key {
        env: "LIBRETRANSLATE_API_KEY",
        // LibreTranslate accepts no header; the query string is read as a form.
        placement: KeyPlacement::Query { param: "api_key" },
        optional: true,
    },
    base_url: "https://libretranslate.com",
    docs_url: "https://docs.libretranslate.com/guides/api_usage/",
    terms: "Open source (AGPL): keyless on a self-hosted instance (set \
            providers.libretranslate.base_url); libretranslate.com needs a paid or \
            trial key.",
    commercial_use: true,
    default_rate_limit: None,
    default_quota: None,
};

/// Longest text sent in a query string.
const MAX_CHARS: usize = 2_000;

impl Provider for LibreTranslate {
    fn info(&self) -> &ProviderInfo {
        &INFO
    }

    fn fixtures(&self) -> &'static [Fixture] {
        FIXTURES
    }
}

crate::serves!(LibreTranslate: TranslateText);

impl Serves<marker::TranslateText> for LibreTranslate {
    fn build_request(
        &self,
        q: &translate::TranslateQuery,
        ctx: &CallContext<'_>,
    ) -> Result<HttpRequest, ProviderFailure> {
        let text = q.single_text("LibreTranslate")?;
        if text.chars().count() > MAX_CHARS {
            return Err(ProviderFailure::unsupported(format!(
                "LibreTranslate takes at most {MAX_CHARS} characters per text here"
            ))
            .not_sent());
        }
        let source = q.source_lang.as_ref().map_or("auto", |l| l.code());
        let get = HttpRequest::get(ctx.base_url, "/translate");
        Ok(HttpRequest {
            method: Method::POST,
            ..get
        }
        .query("q", text)
        .query("source", source)
        .query("target", q.target_lang.code())
        .query("format", "text"))
    }

    fn read_response(
        &self,
        q: &translate::TranslateQuery,
        _ctx: &CallContext<'_>,
        response: HttpResponse,
    ) -> Result<Step<translate::Translations>, ProviderFailure> {
        if !response.is_success() {
            let error = serde_json::from_slice::<ErrorReply>(&response.body)
                .map(|r| r.error)
                .unwrap_or_default();
            let message = if error.is_empty() {
                response.body_excerpt()
            } else {
                format!("LibreTranslate: {}", clip(&error))
            };
            let wants_key = error.to_ascii_lowercase().contains("api key");
            if response.status == 403 || (response.status == 400 && wants_key) {
                return Err(response.failure(FailureClass::Auth, message));
            }
            response.check_status().map_err(|mut failure| {
                failure.message = message;
                failure
            })?;
        }
        let reply: Reply = response.json()?;
        if reply.translated_text.trim().is_empty() {
            return Err(
                ProviderFailure::malformed("LibreTranslate answered an empty translation")
                    .status(response.status),
            );
        }
        let detected = reply.detected_language;
        Ok(Step::Done(Translations {
            translations: vec![Translation {
                text: reply.translated_text,
                detected_source_lang: detected
                    .as_ref()
                    .and_then(|d| non_empty(d.language.clone())),
                confidence: detected
                    .and_then(|d| d.confidence)
                    .map(|c| (c / 100.0).clamp(0.0, 1.0)),
            }],
            target_lang: q.target_lang.code().to_string(),
            chars_billed: None,
        }))
    }
}

#[derive(Deserialize)]
struct ErrorReply {
    error: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Reply {
    translated_text: String,
    detected_language: Option<Detected>,
}

#[derive(Deserialize)]
struct Detected {
    confidence: Option<f64>,
    language: Option<String>,
}

static FIXTURES: &[Fixture] = fixtures![
    // `POST /translate` with `{"q": "Bonjour!", "source": "auto", "target": "en"}`.
    Fixture {
        method: "POST",
        path: "/translate",
        status: 200,
        body: include_str!("fixtures/libretranslate/auto_detect.json"),
    },
];

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::providers::test_response;
    use crate::providers::testing::*;

    fn hello() -> Request {
        request(
            "translate.text",
            json!({"text": "Hello world!", "target_lang": "es"}),
        )
    }

    #[test]
    fn request_is_exact_and_the_key_is_declared_for_the_query() {
        let req = LibreTranslate
            .request(&hello(), &ctx(&LibreTranslate))
            .unwrap();
        assert_eq!(req.method, Method::POST);
        assert_eq!(req.url, "https://libretranslate.com/translate");
        assert_eq!(
            query(&req),
            [
                ("q", "Hello world!"),
                ("source", "auto"),
                ("target", "es"),
                ("format", "text"),
            ]
        );
        assert!(req.body.is_none() && req.headers.is_empty());
        assert!(LibreTranslate.info().is_keyless());
        assert!(matches!(
            LibreTranslate.info().auth,
            Auth::Key {
                placement: KeyPlacement::Query { param: "api_key" },
                optional: true,
                ..
            }
        ));
        let r = request(
            "translate.text",
            json!({"text": "Hallo", "source_lang": "de", "target_lang": "en"}),
        );
        let req = LibreTranslate.request(&r, &ctx(&LibreTranslate)).unwrap();
        assert_eq!(query(&req)[1], ("source", "de"));
        let r = request(
            "translate.text",
            json!({"text": ["a", "b"], "target_lang": "en"}),
        );
        let f = LibreTranslate
            .request(&r, &ctx(&LibreTranslate))
            .unwrap_err();
        assert_eq!(f.class, FailureClass::Unsupported);
    }

    #[test]
    fn fixture_normalises_with_the_detected_language() {
        let body = fixture(&LibreTranslate, "/translate");
        let Data::TranslateText(t) =
            answer(&LibreTranslate, &hello(), test_response(200, &[], body))
        else {
            panic!("wrong data")
        };
        let first = &t.translations[0];
        assert_eq!(first.text, "Hello!");
        assert_eq!(first.detected_source_lang.as_deref(), Some("fr"));
        assert_eq!(first.confidence, Some(0.9));
    }

    #[test]
    fn error_signals_are_classified() {
        let r = hello();
        let f = failure(
            &LibreTranslate,
            &r,
            test_response(
                400,
                &[],
                r#"{"error":"Visit https://portal.libretranslate.com to get an API key"}"#,
            ),
        );
        assert_eq!(f.class, FailureClass::Auth);
        let f = failure(
            &LibreTranslate,
            &r,
            test_response(403, &[], r#"{"error":"Invalid API key"}"#),
        );
        assert_eq!(f.class, FailureClass::Auth);
        assert_eq!(f.message, "LibreTranslate: Invalid API key");
        let f = failure(
            &LibreTranslate,
            &r,
            test_response(400, &[], r#"{"error":"xx is not supported"}"#),
        );
        assert_eq!(f.class, FailureClass::InvalidRequest);
        let f = failure(
            &LibreTranslate,
            &r,
            test_response(429, &[], r#"{"error":"Slowdown: 30 per 1 minute"}"#),
        );
        assert_eq!(f.class, FailureClass::RateLimited);
        assert_eq!(f.message, "LibreTranslate: Slowdown: 30 per 1 minute");
        let f = failure(
            &LibreTranslate,
            &r,
            test_response(500, &[], r#"{"error":"Cannot translate text"}"#),
        );
        assert_eq!(f.class, FailureClass::Transient);
    }

    #[test]
    fn malformed_bodies_never_panic() {
        let body = fixture(&LibreTranslate, "/translate");
        assert_truncations_are_malformed(&LibreTranslate, &hello(), body);
    }
}
