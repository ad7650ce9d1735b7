//! Wiktionary definitions (Wikimedia REST API `page/definition`):
//! `dictionary.define` from the English Wiktionary.
//!
//! Keyless; Wikimedia requires an identifying User-Agent (the pipeline
//! sends the client-wide one) and refuses generic ones with 403, classified
//! as `Auth` since it does not fix itself until the configuration changes.
//! The reply maps language codes to entries (`{"en":[…],"fr":[…]}`): the
//! requested language's are used, and their definitions are in English
//! whatever the word's language. Definitions and examples are HTML. An
//! unknown word is a 404 problem document (`NotFound`), as is a word with
//! no entry in the requested language.

use serde::Deserialize;
use serde_json::Value;
use std::collections::HashMap;

use super::clip;
use super::wire::{html_to_text, path_segment};
use crate::capability::dictionary::{DefineQuery, DictionaryEntry, Sense};
use crate::capability::marker;
use crate::error::{FailureClass, ProviderFailure};
use crate::provider::{
    Auth, CallContext, Fixture, HttpRequest, HttpResponse, Provider, ProviderInfo, Serves, Step,
};

/// Wiktionary (<https://en.wiktionary.org/api/rest_v1/>): keyless
/// definitions of words in many languages, explained in English.
#[derive(Debug, Clone, Copy, Default)]
pub struct Wiktionary;

static INFO: ProviderInfo = ProviderInfo {
    id: "wiktionary",
    name: "Wiktionary (Wikimedia REST)",
    auth: Auth::Keyless,
    base_url: "https://en.wiktionary.org",
    docs_url: "https://en.wiktionary.org/api/rest_v1/#/Page%20content/get_page_definition__term_",
    terms: "Free; requires an identifying User-Agent with contact details (Wikimedia \
            User-Agent policy); content under CC BY-SA 4.0 (attribution required). \
            Definitions are in English.",
    commercial_use: true,
    default_rate_limit: None,
    default_quota: None,
};

/// The word as a page title in a path: spaces become underscores.
fn title(word: &str) -> String {
    path_segment(&word.replace(' ', "_"))
}

impl Provider for Wiktionary {
    fn info(&self) -> &ProviderInfo {
        &INFO
    }

    fn fixtures(&self) -> &'static [Fixture] {
        FIXTURES
    }
}

crate::serves!(Wiktionary: DictionaryDefine);

impl Serves<marker::DictionaryDefine> for Wiktionary {
    fn build_request(
        &self,
        q: &DefineQuery,
        ctx: &CallContext<'_>,
    ) -> Result<HttpRequest, ProviderFailure> {
        let path = format!("/api/rest_v1/page/definition/{}", title(&q.word));
        Ok(HttpRequest::get(ctx.base_url, &path))
    }

    fn read_response(
        &self,
        q: &DefineQuery,
        ctx: &CallContext<'_>,
        response: HttpResponse,
    ) -> Result<Step<DictionaryEntry>, ProviderFailure> {
        if response.status == 403 {
            return Err(response.failure(
                FailureClass::Auth,
                "Wikimedia refused the request (403): its policy requires an identifying \
                 User-Agent with contact details; set the client's User-Agent and contact",
            ));
        }
        response.check_status().map_err(|mut failure| {
            #[derive(Deserialize)]
            struct Problem {
                title: Option<String>,
                detail: Option<String>,
            }
            if let Ok(p) = serde_json::from_slice::<Problem>(&response.body) {
                let text = [p.title, p.detail]
                    .into_iter()
                    .flatten()
                    .collect::<Vec<_>>();
                if !text.is_empty() {
                    failure.message = format!("Wiktionary: {}", clip(&text.join(" ")));
                }
            }
            failure
        })?;
        // Only the language asked for is read: another entry may be
        // anything (issue #13).
        let by_language: HashMap<String, Value> = response.json()?;
        let usages: Vec<Usage> = match by_language.get(q.language.code()) {
            None => Vec::new(),
            Some(entry) => response.json_part(entry)?,
        };
        let senses = usages
            .into_iter()
            .flat_map(|usage| {
                let part_of_speech = usage.part_of_speech.to_lowercase();
                usage.definitions.into_iter().filter_map(move |d| {
                    // A definition without its text is left out.
                    let definition = html_to_text(&d.definition?);
                    if definition.is_empty() {
                        return None;
                    }
                    let example = d
                        .parsed_examples
                        .into_iter()
                        .filter_map(|p| p.example)
                        .chain(d.examples.into_iter().flatten())
                        .map(|html| html_to_text(&html))
                        .find(|t| !t.is_empty());
                    Some(Sense {
                        part_of_speech: part_of_speech.clone(),
                        definition,
                        example,
                        synonyms: Vec::new(),
                        antonyms: Vec::new(),
                    })
                })
            })
            .collect();
        let entry = DictionaryEntry {
            word: q.word.clone(),
            language: q.language.code().to_string(),
            phonetic: None,
            audio_url: None,
            senses,
            source_url: Some(format!(
                "{}/wiki/{}",
                ctx.base_url.trim_end_matches('/'),
                title(&q.word)
            )),
        }
        .found()
        .map_err(|f| f.status(response.status))?;
        Ok(Step::Done(entry))
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Usage {
    part_of_speech: String,
    definitions: Vec<Definition>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Definition {
    definition: Option<String>,
    #[serde(default)]
    examples: Vec<Option<String>>,
    #[serde(default)]
    parsed_examples: Vec<ParsedExample>,
}

#[derive(Deserialize)]
struct ParsedExample {
    example: Option<String>,
}

static FIXTURES: &[Fixture] = fixtures![
    // `GET /api/rest_v1/page/definition/hello`.
    Fixture {
        method: "GET",
        path: "/api/rest_v1/page/definition/*",
        status: 200,
        body: include_str!("fixtures/wiktionary/hello.json"),
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
        request("dictionary.define", json!({"word": "hello"}))
    }

    #[test]
    fn request_is_exact() {
        let req = Wiktionary.request(&hello(), &ctx(&Wiktionary)).unwrap();
        assert_eq!(req.method, Method::GET);
        assert_eq!(
            req.url,
            "https://en.wiktionary.org/api/rest_v1/page/definition/hello"
        );
        assert!(req.query.is_empty() && req.headers.is_empty());
        let r = request("dictionary.define", json!({"word": "ice cream"}));
        let req = Wiktionary.request(&r, &ctx(&Wiktionary)).unwrap();
        assert!(
            req.url.ends_with("/page/definition/ice_cream"),
            "{}",
            req.url
        );
    }

    #[test]
    fn fixture_normalises_the_requested_language() {
        let body = fixture(&Wiktionary, "/api/rest_v1/page/definition/*");
        let Data::DictionaryDefine(entry) =
            answer(&Wiktionary, &hello(), test_response(200, &[], body))
        else {
            panic!("wrong data")
        };
        assert_eq!(entry.language, "en");
        assert_eq!(entry.senses.len(), 2, "the empty definition is dropped");
        let first = &entry.senses[0];
        assert_eq!(first.part_of_speech, "interjection");
        assert_eq!(
            first.definition,
            "A greeting (salutation) said when meeting someone or acknowledging someone’s arrival or presence."
        );
        assert_eq!(first.example.as_deref(), Some("Hello, everyone."));
        assert_eq!(
            entry.senses[1].definition,
            "\"Hello!\" or an equivalent greeting."
        );
        assert_eq!(
            entry.source_url.as_deref(),
            Some("https://en.wiktionary.org/wiki/hello")
        );

        let r = request(
            "dictionary.define",
            json!({"word": "hello", "language": "fr"}),
        );
        let Data::DictionaryDefine(entry) = answer(&Wiktionary, &r, test_response(200, &[], body))
        else {
            panic!("wrong data")
        };
        assert_eq!(entry.senses[0].definition, "hello (informal greeting)");
        let r = request(
            "dictionary.define",
            json!({"word": "hello", "language": "ja"}),
        );
        let f = failure(&Wiktionary, &r, test_response(200, &[], body));
        assert_eq!(f.class, FailureClass::NotFound);
    }

    #[test]
    fn error_signals_are_classified() {
        let r = hello();
        let f = failure(
            &Wiktionary,
            &r,
            test_response(
                404,
                &[],
                r#"{"type":"https://mediawiki.org/wiki/HyperSwitch/errors/not_found","title":"Not found.","method":"get","detail":"Page or revision not found.","uri":"/en.wiktionary.org/v1/page/definition/xyzzyq"}"#,
            ),
        );
        assert_eq!(f.class, FailureClass::NotFound);
        assert_eq!(
            f.message,
            "Wiktionary: Not found. Page or revision not found."
        );
        let f = failure(
            &Wiktionary,
            &r,
            test_response(403, &[], "Please set a user-agent"),
        );
        assert_eq!(f.class, FailureClass::Auth);
        let f = failure(
            &Wiktionary,
            &r,
            test_response(429, &[("retry-after", "5")], ""),
        );
        assert_eq!(f.class, FailureClass::RateLimited);
        let f = failure(&Wiktionary, &r, test_response(503, &[], ""));
        assert_eq!(f.class, FailureClass::Transient);
    }

    #[test]
    fn malformed_bodies_never_panic() {
        let body = fixture(&Wiktionary, "/api/rest_v1/page/definition/*");
        assert_truncations_are_malformed(&Wiktionary, &hello(), body);
    }
}
