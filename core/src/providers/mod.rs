//! The built-in providers, one file each, and their registry.
//!
//! Every provider is a unit struct implementing [`Provider`] in its own module.
//! Adding one is one line in the `providers!` list below: the macro declares
//! the module and registers the provider in [`builtin`].

use chrono::{DateTime, SecondsFormat, Utc};

use crate::error::ProviderFailure;
use crate::provider::Provider;

/// A provider's canned replies (see [`Provider::fixtures`]), each body loaded
/// from its file under `providers/fixtures/<id>/`. They exist only with the
/// `emulator` feature or in tests: elsewhere the list is empty and its bodies
/// are never read, so a plain build carries none of them.
#[cfg(any(test, feature = "emulator"))]
macro_rules! fixtures {
    ($($fixture:expr),* $(,)?) => {
        &[$($fixture),*]
    };
}

/// Without the emulator: no fixtures (see above).
#[cfg(not(any(test, feature = "emulator")))]
macro_rules! fixtures {
    ($($fixture:expr),* $(,)?) => {
        &[]
    };
}

/// Declares each provider module, re-exports its struct and registers it.
macro_rules! providers {
    ($($module:ident :: $provider:ident),* $(,)?) => {
        $(pub mod $module;)*

        static BUILTIN: &[&dyn Provider] = &[$(&$module::$provider),*];
    };
}

// Order matters: within a capability it is the default fallback order
// (keyless, most reliable first).
providers! {
    open_meteo::OpenMeteo,
    met_norway::MetNorway,
    wttr_in::WttrIn,
    frankfurter::Frankfurter,
    currency_api::CurrencyApi,
    coingecko::CoinGecko,
    coinpaprika::CoinPaprika,
    // LLM (llm.chat, llm.embeddings), in the default chain order: the local,
    // keyless Ollama first, then free tiers, then paid. The OpenAI-compatible
    // ones are statics of the shared `openai_compat::OpenAiCompatible`.
    ollama::Ollama,
    groq::GROQ,
    gemini::Gemini,
    mistral::MISTRAL,
    openrouter::OPENROUTER,
    deepseek::DEEPSEEK,
    together::TOGETHER,
    cohere::Cohere,
    openai::OPENAI,
    anthropic::Anthropic,
    // Media and medical (issue #3). Keyless first within each capability;
    // iTunes sits after TVmaze and the book providers, before the music ones.
    openfda::OpenFda,
    dailymed::DailyMed,
    rxnav::RxNav,
    pubmed::PubMed,
    clinicaltrials_gov::ClinicalTrialsGov,
    europepmc::EuropePmc,
    openalex::OpenAlex,
    openlibrary::OpenLibrary,
    gutendex::Gutendex,
    google_books::GoogleBooks,
    tvmaze::Tvmaze,
    itunes::Itunes,
    deezer::Deezer,
    musicbrainz::MusicBrainz,
    internet_archive::InternetArchive,
    dailymotion::Dailymotion,
    tmdb::Tmdb,
    omdb::Omdb,
    youtube::YouTube,
    // Group "reference": geocoding, stocks, news, web search, translation,
    // dictionary, and more weather, FX and crypto sources (keyless first).
    open_meteo_geocoding::OpenMeteoGeocoding,
    nominatim::Nominatim,
    photon::Photon,
    finnhub::Finnhub,
    twelve_data::TwelveData,
    alpha_vantage::AlphaVantage,
    fmp::Fmp,
    gdelt::Gdelt,
    hn_algolia::HnAlgolia,
    gnews::GNews,
    newsapi::NewsApi,
    guardian::Guardian,
    wikipedia::Wikipedia,
    duckduckgo::DuckDuckGo,
    searxng::Searxng,
    brave::Brave,
    mymemory::MyMemory,
    libretranslate::LibreTranslate,
    deepl::DeepL,
    free_dictionary::FreeDictionary,
    wiktionary::Wiktionary,
    nws::Nws,
    weatherapi::WeatherApi,
    openweathermap::OpenWeatherMap,
    exchangerate_api::ExchangeRateApi,
    binance::Binance,
    kraken::Kraken,
}

// LLM: the OpenAI chat-completions wire format, shared by several providers.
pub mod openai_compat;

// Group "reference": wire-format pieces its providers share (also used by
// the providers declared in the configuration, `crate::custom`).
pub(crate) mod wire;

/// Every built-in provider, in the default fallback order.
pub fn builtin() -> &'static [&'static dyn Provider] {
    BUILTIN
}

/// The built-in provider with this id (`"open-meteo"`), if any.
pub fn find(id: &str) -> Option<&'static dyn Provider> {
    BUILTIN.iter().copied().find(|p| p.info().id == id)
}

/// The items of a list reply that can be read: one broken item is left
/// out rather than refusing the others; when every item is broken, the
/// reply is malformed and says why the first was (`provider` names it).
pub(crate) fn readable_items<T>(
    provider: &str,
    items: impl IntoIterator<Item = Result<T, String>>,
) -> Result<Vec<T>, ProviderFailure> {
    let mut first_broken = None;
    let mut found = 0;
    let read: Vec<T> = items
        .into_iter()
        .filter_map(|item| {
            found += 1;
            item.map_err(|why| first_broken.get_or_insert(why).clone())
                .ok()
        })
        .collect();
    match first_broken {
        Some(why) if read.is_empty() && found > 0 => Err(ProviderFailure::malformed(format!(
            "{provider} reply: {why}"
        ))),
        _ => Ok(read),
    }
}

/// A UTC instant as ISO-8601 with seconds, e.g. `2025-01-15T13:45:00Z`, the
/// one timestamp form every provider's answer uses.
pub(crate) fn utc_text(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// A provider's own error text, whitespace-collapsed and cut to 200
/// characters so a trail stays readable.
pub(crate) fn clip(text: &str) -> String {
    let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
    match text.char_indices().nth(200) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text,
    }
}

/// A response built in memory, for provider tests.
#[cfg(test)]
pub(crate) fn test_response(
    status: u16,
    headers: &[(&'static str, &str)],
    body: &str,
) -> crate::provider::HttpResponse {
    let mut map = http::HeaderMap::new();
    for (name, value) in headers {
        map.insert(*name, value.parse().unwrap());
    }
    crate::provider::HttpResponse {
        status,
        headers: map,
        body: bytes::Bytes::copy_from_slice(body.as_bytes()),
        received_at: "2025-01-15T14:05:00Z".parse().unwrap(),
    }
}

/// Shared pieces of the provider tests.
#[cfg(test)]
pub(crate) mod testing {
    use super::*;
    use crate::error::FailureClass;
    // What every provider test names, glob-imported with this module.
    pub(crate) use crate::capability::{Data, Request};
    pub(crate) use crate::provider::Dispatch;
    use crate::provider::{CallContext, HttpRequest, Step};

    /// A call context with the provider's default base URL.
    pub(crate) fn ctx(provider: &dyn Provider) -> CallContext<'static> {
        CallContext {
            base_url: provider.info().base_url,
            user_agent: "polyrelay-test/0.1 (ops@example.com)",
        }
    }

    /// A validated request.
    pub(crate) fn request(capability: &str, params: serde_json::Value) -> Request {
        Request::parse(capability, params).unwrap()
    }

    /// The request's query pairs as plain strings.
    pub(crate) fn query(req: &HttpRequest) -> Vec<(&str, &str)> {
        req.query
            .iter()
            .map(|(k, v)| (k.as_ref(), v.as_str()))
            .collect()
    }

    /// The body of the provider's fixture at `path`.
    pub(crate) fn fixture(provider: &dyn Provider, path: &str) -> &'static str {
        provider
            .fixtures()
            .iter()
            .find(|f| f.path == path)
            .unwrap_or_else(|| panic!("no fixture at {path}"))
            .body
    }

    /// Runs `response()` and expects a final answer.
    pub(crate) fn answer(
        provider: &dyn Provider,
        request: &Request,
        response: crate::provider::HttpResponse,
    ) -> Data {
        match provider.response(request, &ctx(provider), response) {
            Ok(Step::Done(data)) => data,
            other => panic!("expected an answer, got {other:?}"),
        }
    }

    /// Runs `response()` and expects a failure.
    pub(crate) fn failure(
        provider: &dyn Provider,
        request: &Request,
        response: crate::provider::HttpResponse,
    ) -> ProviderFailure {
        match provider.response(request, &ctx(provider), response) {
            Err(failure) => failure,
            Ok(step) => panic!("expected a failure, got {step:?}"),
        }
    }

    /// Feeds every prefix of `body` and a few corruptions to `response()`:
    /// each must fail as malformed (or, for an empty prefix, any failure),
    /// never panic or succeed.
    pub(crate) fn assert_truncations_are_malformed(
        provider: &dyn Provider,
        request: &Request,
        body: &str,
    ) {
        // A fixture file may end in a newline; cutting only that is no cut.
        let body = body.trim_end();
        let cuts = [0, 1, body.len() / 3, body.len() / 2, body.len() - 1];
        for cut in cuts {
            let mut end = cut;
            while !body.is_char_boundary(end) {
                end -= 1;
            }
            let f = failure(provider, request, test_response(200, &[], &body[..end]));
            assert_eq!(
                f.class,
                FailureClass::MalformedResponse,
                "cut at {end}: {f}"
            );
        }
        for garbage in ["null", "[]", "\"text\"", "<html>busy</html>"] {
            let f = failure(provider, request, test_response(200, &[], garbage));
            assert_eq!(f.class, FailureClass::MalformedResponse, "{garbage}: {f}");
        }
    }

    /// Like [`assert_truncations_are_malformed`] for providers whose answer
    /// is a JSON array, where `[]` is a valid "nothing found".
    pub(crate) fn assert_cuts_of_a_list_are_malformed(
        provider: &dyn Provider,
        request: &Request,
        body: &str,
    ) {
        for cut in [0, 1, body.len() / 3, body.len() / 2, body.len() - 1] {
            let mut end = cut;
            while !body.is_char_boundary(end) {
                end -= 1;
            }
            let f = failure(provider, request, test_response(200, &[], &body[..end]));
            assert_eq!(
                f.class,
                FailureClass::MalformedResponse,
                "cut at {end}: {f}"
            );
        }
        for garbage in ["null", "{}", "\"text\"", "<html>busy</html>", "[1]"] {
            let f = failure(provider, request, test_response(200, &[], garbage));
            assert_eq!(f.class, FailureClass::MalformedResponse, "{garbage}: {f}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capability::CapabilityId;

    #[test]
    fn ids_are_unique_and_lower_case_with_dashes() {
        let mut ids: Vec<&str> = builtin().iter().map(|p| p.info().id).collect();
        for id in &ids {
            assert!(
                !id.is_empty()
                    && !id.starts_with('-')
                    && !id.ends_with('-')
                    && id
                        .chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'),
                "bad id {id:?}"
            );
        }
        let count = ids.len();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), count, "duplicate provider id");
    }

    #[test]
    fn every_provider_serves_something_and_declares_fixtures() {
        for provider in builtin() {
            let info = provider.info();
            assert!(
                !provider.capabilities().is_empty(),
                "{} serves nothing",
                info.id
            );
            assert!(
                !provider.fixtures().is_empty(),
                "{} has no fixtures",
                info.id
            );
            // Plain HTTP only for a local server (Ollama).
            assert!(
                info.base_url.starts_with("https://")
                    || info.base_url.starts_with("http://localhost:"),
                "{}",
                info.id
            );
            assert!(info.docs_url.starts_with("https://"), "{}", info.id);
            for fixture in provider.fixtures() {
                assert!(
                    fixture.path.starts_with('/'),
                    "{}: {}",
                    info.id,
                    fixture.path
                );
            }
        }
    }

    #[test]
    fn every_capability_has_a_keyless_provider() {
        // No stock-quote provider offers an official keyless API.
        const KEYED_ONLY: &[CapabilityId] = &[CapabilityId::StockQuote];
        // A composed capability asks another's providers.
        for capability in CapabilityId::ALL
            .iter()
            .filter(|c| c.composed_of().is_none())
        {
            let served = builtin()
                .iter()
                .any(|p| p.capabilities().contains(capability));
            assert!(served, "no provider for {capability}");
            if KEYED_ONLY.contains(capability) {
                continue;
            }
            assert!(
                builtin()
                    .iter()
                    .any(|p| p.info().is_keyless() && p.capabilities().contains(capability)),
                "no keyless provider for {capability}"
            );
        }
    }

    #[test]
    fn every_chat_provider_streams_with_a_recorded_stream() {
        for provider in builtin() {
            let chats = provider.capabilities().contains(&CapabilityId::LlmChat);
            match provider.streams_chat() {
                Some(streams) => assert!(
                    chats && !streams.stream_fixtures().is_empty(),
                    "{}",
                    provider.info().id
                ),
                None => assert!(!chats, "{} chats but does not stream", provider.info().id),
            }
        }
    }

    #[test]
    fn find_by_id() {
        assert_eq!(find("coingecko").map(|p| p.info().id), Some("coingecko"));
        assert!(find("nope").is_none());
    }

    #[test]
    fn clip_collapses_and_cuts() {
        assert_eq!(clip("  a \n b  "), "a b");
        let long = "é".repeat(300);
        assert_eq!(clip(&long).chars().count(), 201);
    }
}
