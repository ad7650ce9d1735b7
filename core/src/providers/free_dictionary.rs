//! Free Dictionary API (dictionaryapi.dev): `dictionary.define` with
//! phonetics, audio, examples, synonyms and antonyms.
//!
//! Keyless and free. The language is part of the path
//! (`/api/v2/entries/en/hello`); English has by far the best coverage. The
//! reply is one entry per homograph, merged here into one entry whose
//! senses keep the dictionary's order. Errors are
//! `{"title":"…","message":"…","resolution":"…"}`: 404 "No Definitions
//! Found" is `NotFound`, 429 "API Rate Limit Exceeded" is `RateLimited`.

use serde::Deserialize;

use super::clip;
use super::wire::{non_empty, path_segment};
use crate::capability::dictionary::{DefineQuery, DictionaryEntry, Sense};
use crate::capability::marker;
use crate::error::ProviderFailure;
use crate::provider::{
    Auth, CallContext, Fixture, HttpRequest, HttpResponse, Provider, ProviderInfo, Serves, Step,
};

/// Free Dictionary API (<https://dictionaryapi.dev>): keyless definitions,
/// best in English.
#[derive(Debug, Clone, Copy, Default)]
pub struct FreeDictionary;

static INFO: ProviderInfo = ProviderInfo {
    id: "free-dictionary",
    name: "Free Dictionary API",
    auth: Auth::Keyless,
    base_url: "https://api.dictionaryapi.dev",
    docs_url: "https://dictionaryapi.dev",
    terms: "Free, no key, donation-funded; data from Wiktionary (CC BY-SA 3.0). No \
            published rate limit; throttled clients get 429.",
    commercial_use: true,
    default_rate_limit: None,
    default_quota: None,
};

impl Provider for FreeDictionary {
    fn info(&self) -> &ProviderInfo {
        &INFO
    }

    fn fixtures(&self) -> &'static [Fixture] {
        FIXTURES
    }
}

crate::serves!(FreeDictionary: DictionaryDefine);

impl Serves<marker::DictionaryDefine> for FreeDictionary {
    fn build_request(
        &self,
        q: &DefineQuery,
        ctx: &CallContext<'_>,
    ) -> Result<HttpRequest, ProviderFailure> {
        let path = format!(
            "/api/v2/entries/{}/{}",
            q.language.code(),
            path_segment(&q.word)
        );
        Ok(HttpRequest::get(ctx.base_url, &path))
    }

    fn read_response(
        &self,
        q: &DefineQuery,
        _ctx: &CallContext<'_>,
        response: HttpResponse,
    ) -> Result<Step<DictionaryEntry>, ProviderFailure> {
        response.check_status().map_err(|mut failure| {
            #[derive(Deserialize)]
            struct ErrorReply {
                title: String,
                message: Option<String>,
            }
            if let Ok(reply) = serde_json::from_slice::<ErrorReply>(&response.body) {
                let detail = reply.message.map(|m| format!(": {m}")).unwrap_or_default();
                failure.message = format!(
                    "Free Dictionary: {}",
                    clip(&format!("{}{detail}", reply.title))
                );
            }
            failure
        })?;
        let entries: Vec<Entry> = response.json()?;
        let first = entries.first();
        let word = first.map_or_else(|| q.word.clone(), |e| e.word.clone());
        let phonetic = entries.iter().find_map(|e| {
            non_empty(e.phonetic.clone())
                .or_else(|| e.phonetics.iter().find_map(|p| non_empty(p.text.clone())))
        });
        let audio_url = entries
            .iter()
            .flat_map(|e| &e.phonetics)
            .find_map(|p| non_empty(p.audio.clone()));
        let source_url = entries
            .iter()
            .flat_map(|e| &e.source_urls)
            .find_map(|u| non_empty(Some(u.clone())));
        // A meaning's `null` definitions would read as none: the reply is
        // broken, as when the list is missing.
        if entries
            .iter()
            .flat_map(|e| &e.meanings)
            .any(|m| m.definitions.is_none())
        {
            return Err(ProviderFailure::malformed(
                "Free Dictionary meaning without `definitions`",
            )
            .status(response.status));
        }
        let senses = entries
            .into_iter()
            .flat_map(|e| e.meanings)
            .flat_map(|meaning| {
                let part_of_speech = meaning.part_of_speech.to_lowercase();
                let (shared_synonyms, shared_antonyms) = (meaning.synonyms, meaning.antonyms);
                meaning
                    .definitions
                    .unwrap_or_default()
                    .into_iter()
                    .enumerate()
                    .filter_map(move |(i, d)| {
                        // Meaning-level synonyms belong with its first sense.
                        let own = |mine: Vec<String>, shared: &Vec<String>| {
                            if mine.is_empty() && i == 0 {
                                shared.clone()
                            } else {
                                mine
                            }
                        };
                        Some(Sense {
                            part_of_speech: part_of_speech.clone(),
                            definition: non_empty(d.definition)?,
                            example: non_empty(d.example),
                            synonyms: own(d.synonyms, &shared_synonyms),
                            antonyms: own(d.antonyms, &shared_antonyms),
                        })
                    })
            })
            .collect();
        let entry = DictionaryEntry {
            word,
            language: q.language.code().to_string(),
            phonetic,
            audio_url,
            senses,
            source_url,
        }
        .found()
        .map_err(|f| f.status(response.status))?;
        Ok(Step::Done(entry))
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Entry {
    word: String,
    phonetic: Option<String>,
    #[serde(default)]
    phonetics: Vec<Phonetic>,
    meanings: Vec<Meaning>,
    #[serde(default)]
    source_urls: Vec<String>,
}

#[derive(Deserialize)]
struct Phonetic {
    text: Option<String>,
    audio: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Meaning {
    part_of_speech: String,
    definitions: Option<Vec<Definition>>,
    #[serde(default)]
    synonyms: Vec<String>,
    #[serde(default)]
    antonyms: Vec<String>,
}

#[derive(Deserialize)]
struct Definition {
    definition: Option<String>,
    example: Option<String>,
    #[serde(default)]
    synonyms: Vec<String>,
    #[serde(default)]
    antonyms: Vec<String>,
}

static FIXTURES: &[Fixture] = fixtures![
    // `GET /api/v2/entries/en/hello`.
    Fixture {
        method: "GET",
        path: "/api/v2/entries/*",
        status: 200,
        body: include_str!("fixtures/free-dictionary/hello.json"),
    },
];

#[cfg(test)]
mod tests {
    use http::Method;
    use serde_json::json;

    use super::*;
    use crate::error::FailureClass;
    use crate::providers::test_response;
    use crate::providers::testing::*;

    fn hello() -> Request {
        request("dictionary.define", json!({"word": "hello"}))
    }

    #[test]
    fn request_is_exact_with_the_word_encoded() {
        let req = FreeDictionary
            .request(&hello(), &ctx(&FreeDictionary))
            .unwrap();
        assert_eq!(req.method, Method::GET);
        assert_eq!(
            req.url,
            "https://api.dictionaryapi.dev/api/v2/entries/en/hello"
        );
        assert!(req.query.is_empty() && req.headers.is_empty());
        let r = request(
            "dictionary.define",
            json!({"word": "crème brûlée", "language": "French"}),
        );
        let req = FreeDictionary.request(&r, &ctx(&FreeDictionary)).unwrap();
        assert_eq!(
            req.url,
            "https://api.dictionaryapi.dev/api/v2/entries/fr/cr%C3%A8me%20br%C3%BBl%C3%A9e"
        );
    }

    #[test]
    fn fixture_normalises_and_merges_senses() {
        let body = fixture(&FreeDictionary, "/api/v2/entries/*");
        let Data::DictionaryDefine(entry) =
            answer(&FreeDictionary, &hello(), test_response(200, &[], body))
        else {
            panic!("wrong data")
        };
        assert_eq!(entry.word, "hello");
        assert_eq!(entry.language, "en");
        assert_eq!(entry.phonetic.as_deref(), Some("/həˈləʊ/"));
        assert_eq!(
            entry.audio_url.as_deref(),
            Some("https://api.dictionaryapi.dev/media/pronunciations/en/hello-uk.mp3")
        );
        assert_eq!(
            entry.source_url.as_deref(),
            Some("https://en.wiktionary.org/wiki/hello")
        );
        let parts: Vec<&str> = entry
            .senses
            .iter()
            .map(|s| s.part_of_speech.as_str())
            .collect();
        assert_eq!(parts, ["noun", "verb", "interjection", "interjection"]);
        assert_eq!(entry.senses[0].synonyms, ["greeting"]);
        assert_eq!(entry.senses[2].example.as_deref(), Some("Hello, everyone."));
        assert_eq!(entry.senses[2].antonyms, ["bye", "goodbye"]);
        assert_eq!(entry.senses[3].antonyms, ["goodbye"]);
    }

    #[test]
    fn error_signals_are_classified() {
        let r = hello();
        let f = failure(
            &FreeDictionary,
            &r,
            test_response(
                404,
                &[],
                r#"{"title":"No Definitions Found","message":"Sorry pal, we couldn't find definitions for the word you were looking for.","resolution":"You can try the search again at later time or head to the web instead."}"#,
            ),
        );
        assert_eq!(f.class, FailureClass::NotFound);
        assert!(
            f.message
                .starts_with("Free Dictionary: No Definitions Found"),
            "{}",
            f.message
        );
        let f = failure(
            &FreeDictionary,
            &r,
            test_response(
                429,
                &[("retry-after", "10")],
                r#"{"title":"API Rate Limit Exceeded","message":"Sorry pal, you were just rate limited by the upstream server.","resolution":"You can try the search again at later time or head to the web instead."}"#,
            ),
        );
        assert_eq!(f.class, FailureClass::RateLimited);
        assert_eq!(f.retry_after, Some(std::time::Duration::from_secs(10)));
        let f = failure(&FreeDictionary, &r, test_response(200, &[], "[]"));
        assert_eq!(f.class, FailureClass::NotFound);
        let f = failure(&FreeDictionary, &r, test_response(500, &[], ""));
        assert_eq!(f.class, FailureClass::Transient);
    }

    #[test]
    fn malformed_bodies_never_panic() {
        let r = hello();
        let body = fixture(&FreeDictionary, "/api/v2/entries/*");
        assert_cuts_of_a_list_are_malformed(&FreeDictionary, &r, body);
        let f = failure(
            &FreeDictionary,
            &r,
            test_response(200, &[], r#"[{"word":1}]"#),
        );
        assert_eq!(f.class, FailureClass::MalformedResponse);
    }
}
