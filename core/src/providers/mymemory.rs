//! MyMemory `get`: `translate.text`, from its translation memory and
//! machine translation.
//!
//! Keyless: 5,000 characters per day anonymously. It needs the source
//! language (`langpair=en|it`), takes one text of at most 500 bytes per
//! request, and escapes HTML in its output (`l&#39;acqua`), which is
//! decoded here. Requests it cannot take are `Unsupported` and never sent.
//!
//! **Errors arrive inside HTTP 200 bodies**: `responseStatus` (a number or a
//! string) says what happened. 429, `quotaFinished: true` or a
//! "MYMEMORY WARNING: YOU USED ALL AVAILABLE FREE TRANSLATIONS FOR TODAY.
//! NEXT AVAILABLE IN 10 HOURS 20 MINUTES…" text is `QuotaExhausted` for the
//! time the warning names; 403 is a bad request such as an invalid language
//! pair (`InvalidRequest`); 5xx is `Transient`.

use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;

use super::clip;
use super::wire::unescape_html;
use crate::capability::translate::{Translation, Translations};
use crate::capability::{marker, translate};
use crate::error::{FailureClass, ProviderFailure};
use crate::provider::{
    Auth, CallContext, Fixture, HttpRequest, HttpResponse, Provider, ProviderInfo, Serves, Step,
};

/// MyMemory (<https://mymemory.translated.net>): keyless translation,
/// 5,000 characters a day.
#[derive(Debug, Clone, Copy, Default)]
pub struct MyMemory;

static INFO: ProviderInfo = ProviderInfo {
    id: "mymemory",
    name: "MyMemory",
    auth: Auth::Keyless,
    base_url: "https://api.mymemory.translated.net",
    docs_url: "https://mymemory.translated.net/doc/spec.php",
    terms: "Free, no key: 5,000 characters/day anonymously; at most 500 bytes per request; \
            the source language is required.",
    commercial_use: true,
    default_rate_limit: None,
    default_quota: None,
};

/// Longest text MyMemory takes, in bytes.
const MAX_BYTES: usize = 500;

impl Provider for MyMemory {
    fn info(&self) -> &ProviderInfo {
        &INFO
    }

    fn fixtures(&self) -> &'static [Fixture] {
        FIXTURES
    }
}

crate::serves!(MyMemory: TranslateText);

impl Serves<marker::TranslateText> for MyMemory {
    fn build_request(
        &self,
        q: &translate::TranslateQuery,
        ctx: &CallContext<'_>,
    ) -> Result<HttpRequest, ProviderFailure> {
        let text = q.single_text("MyMemory")?;
        if text.len() > MAX_BYTES {
            return Err(ProviderFailure::unsupported(format!(
                "MyMemory takes at most {MAX_BYTES} bytes per text"
            ))
            .not_sent());
        }
        let Some(source) = &q.source_lang else {
            return Err(ProviderFailure::unsupported(
                "MyMemory needs source_lang; it cannot detect it",
            )
            .not_sent());
        };
        let code = |code: &str| {
            if code == "zh" {
                "zh-CN".to_string()
            } else {
                code.to_string()
            }
        };
        Ok(HttpRequest::get(ctx.base_url, "/get")
            .query("q", text)
            .query(
                "langpair",
                format!("{}|{}", code(source.code()), code(q.target_lang.code())),
            ))
    }

    fn read_response(
        &self,
        q: &translate::TranslateQuery,
        _ctx: &CallContext<'_>,
        response: HttpResponse,
    ) -> Result<Step<translate::Translations>, ProviderFailure> {
        response.check_status()?;
        let reply: Reply = response.json()?;
        let status = match &reply.response_status {
            Value::Number(n) => n.as_u64(),
            Value::String(s) => s.trim().parse().ok(),
            _ => None,
        }
        .ok_or_else(|| {
            ProviderFailure::malformed("MyMemory reply without a responseStatus")
                .status(response.status)
        })?;
        let details = reply.response_details.unwrap_or_default();
        let translated = reply.response_data.and_then(|d| d.translated_text);
        let missing = translated.is_none();
        let translated = translated.unwrap_or_default();
        let warning = translated.starts_with("MYMEMORY WARNING");
        if status == 429 || reply.quota_finished == Some(true) || warning {
            let text = if warning { &translated } else { &details };
            return Err(response
                .failure(
                    FailureClass::QuotaExhausted,
                    format!("MyMemory: {}", clip(text)),
                )
                .retry_after(next_available(text)));
        }
        if status != 200 {
            // MyMemory's own `responseStatus`, not HTTP semantics (a 403 is a
            // bad language pair), so not `status_class`.
            let class = match status {
                500..=599 => FailureClass::Transient,
                _ => FailureClass::InvalidRequest,
            };
            let details = if details.is_empty() {
                &translated
            } else {
                &details
            };
            return Err(response.failure(class, format!("MyMemory {status}: {}", clip(details))));
        }
        if missing {
            return Err(ProviderFailure::malformed(
                "MyMemory reply without `responseData.translatedText`",
            )
            .status(response.status));
        }
        if translated.trim().is_empty() {
            return Err(
                ProviderFailure::malformed("MyMemory answered an empty translation")
                    .status(response.status),
            );
        }
        Ok(Step::Done(Translations {
            translations: vec![Translation {
                text: unescape_html(&translated),
                detected_source_lang: None,
                confidence: None,
            }],
            target_lang: q.target_lang.code().to_string(),
            chars_billed: None,
        }))
    }
}

/// The wait in "NEXT AVAILABLE IN 10 HOURS 20 MINUTES 40 SECONDS".
fn next_available(text: &str) -> Option<Duration> {
    let upper = text.to_ascii_uppercase();
    let rest = &upper[upper.find("NEXT AVAILABLE IN")? + "NEXT AVAILABLE IN".len()..];
    let words: Vec<&str> = rest
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .collect();
    let mut seconds = 0u64;
    for pair in words.windows(2) {
        let Ok(n) = pair[0].parse::<u64>() else {
            continue;
        };
        let unit = match pair[1] {
            u if u.starts_with("HOUR") => 3600,
            u if u.starts_with("MINUTE") => 60,
            u if u.starts_with("SECOND") => 1,
            _ => continue,
        };
        seconds = seconds.saturating_add(n.saturating_mul(unit));
    }
    (seconds > 0).then(|| Duration::from_secs(seconds))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Reply {
    response_data: Option<ResponseData>,
    response_status: Value,
    response_details: Option<String>,
    quota_finished: Option<bool>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ResponseData {
    translated_text: Option<String>,
}

static FIXTURES: &[Fixture] = fixtures![
    // `GET /get?q=Hello+world,+how+is+the+water%3F&langpair=en|it`.
    Fixture {
        method: "GET",
        path: "/get",
        status: 200,
        body: include_str!("fixtures/mymemory/hello_it.json"),
    },
];

#[cfg(test)]
mod tests {
    use http::Method;
    use serde_json::json;

    use super::*;
    use crate::providers::test_response;
    use crate::providers::testing::*;

    fn hello() -> Request {
        request(
            "translate.text",
            json!({"text": "Hello world, how is the water?", "source_lang": "en", "target_lang": "it"}),
        )
    }

    #[test]
    fn request_is_exact() {
        let req = MyMemory.request(&hello(), &ctx(&MyMemory)).unwrap();
        assert_eq!(req.method, Method::GET);
        assert_eq!(req.url, "https://api.mymemory.translated.net/get");
        assert_eq!(
            query(&req),
            [
                ("q", "Hello world, how is the water?"),
                ("langpair", "en|it")
            ]
        );
        let r = request(
            "translate.text",
            json!({"text": "Hello", "source_lang": "English", "target_lang": "zh"}),
        );
        let req = MyMemory.request(&r, &ctx(&MyMemory)).unwrap();
        assert_eq!(query(&req)[1], ("langpair", "en|zh-CN"));
    }

    #[test]
    fn requests_it_cannot_take_are_unsupported_and_never_sent() {
        for params in [
            json!({"text": "Hello", "target_lang": "it"}),
            json!({"text": ["a", "b"], "source_lang": "en", "target_lang": "it"}),
            json!({"text": "x".repeat(501), "source_lang": "en", "target_lang": "it"}),
        ] {
            let f = MyMemory
                .request(&request("translate.text", params), &ctx(&MyMemory))
                .unwrap_err();
            assert_eq!(f.class, FailureClass::Unsupported);
            assert!(!f.request_sent);
        }
    }

    #[test]
    fn fixture_normalises_and_unescapes() {
        let body = fixture(&MyMemory, "/get");
        let Data::TranslateText(t) = answer(&MyMemory, &hello(), test_response(200, &[], body))
        else {
            panic!("wrong data")
        };
        assert_eq!(t.target_lang, "it");
        assert_eq!(t.translations.len(), 1);
        assert_eq!(t.translations[0].text, "Ciao mondo, com'è l'acqua?");
        assert_eq!(t.chars_billed, None);
    }

    #[test]
    fn errors_inside_200_bodies_are_classified() {
        let r = hello();
        let quota = r#"{"responseData":{"translatedText":"MYMEMORY WARNING: YOU USED ALL AVAILABLE FREE TRANSLATIONS FOR TODAY. NEXT AVAILABLE IN  10 HOURS 20 MINUTES 40 SECONDS VISIT HTTPS://MYMEMORY.TRANSLATED.NET/DOC/USAGELIMITS.PHP TO TRANSLATE MORE"},"quotaFinished":true,"responseDetails":"MYMEMORY WARNING: YOU USED ALL AVAILABLE FREE TRANSLATIONS FOR TODAY.","responseStatus":429}"#;
        let f = failure(&MyMemory, &r, test_response(200, &[], quota));
        assert_eq!(f.class, FailureClass::QuotaExhausted);
        assert_eq!(f.status, Some(200));
        assert_eq!(
            f.retry_after,
            Some(Duration::from_secs(10 * 3600 + 20 * 60 + 40))
        );

        let bad_pair = r#"{"responseData":{"translatedText":"'XX' IS AN INVALID TARGET LANGUAGE . EXAMPLE: LANGPAIR=EN|IT USING 2 LETTER ISO OR RFC3066 LIKE ZH-CN. ALMOST ALL LANGUAGES SUPPORTED BUT SOME MAY HAVE NO CONTENT"},"quotaFinished":false,"responseDetails":"'XX' IS AN INVALID TARGET LANGUAGE . EXAMPLE: LANGPAIR=EN|IT","responseStatus":"403"}"#;
        let f = failure(&MyMemory, &r, test_response(200, &[], bad_pair));
        assert_eq!(f.class, FailureClass::InvalidRequest);
        assert!(
            f.message.starts_with("MyMemory 403: 'XX' IS AN INVALID"),
            "{}",
            f.message
        );

        let down = r#"{"responseData":{"translatedText":""},"responseDetails":"Service unavailable","responseStatus":503}"#;
        let f = failure(&MyMemory, &r, test_response(200, &[], down));
        assert_eq!(f.class, FailureClass::Transient);

        let f = failure(
            &MyMemory,
            &r,
            test_response(429, &[("retry-after", "60")], ""),
        );
        assert_eq!(f.class, FailureClass::RateLimited);
    }

    #[test]
    fn malformed_bodies_never_panic() {
        let body = fixture(&MyMemory, "/get");
        assert_truncations_are_malformed(&MyMemory, &hello(), body);
        let empty = r#"{"responseData":{"translatedText":"  "},"responseStatus":200}"#;
        let f = failure(&MyMemory, &hello(), test_response(200, &[], empty));
        assert_eq!(f.class, FailureClass::MalformedResponse);
    }
}
