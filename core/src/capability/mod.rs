//! Capabilities: named operations with a validated request and a normalised
//! answer, whichever provider serves them.
//!
//! Each capability family lives in its own module (schemas and validation);
//! the `capabilities!` table below is the one place that lists them.
//!
//! ```
//! use polyrelay::capability::{CapabilityId, Request};
//! let request = Request::parse("finance.fx_rates", serde_json::json!({"base": "usd", "symbols": "EUR,GBP"})).unwrap();
//! assert_eq!(request.capability(), CapabilityId::FxRates);
//! assert!(Request::parse("finance.fx_rates", serde_json::json!({"base": "dollars"})).is_err());
//! ```

pub mod crypto;
pub mod finance;
pub mod llm;
pub mod media;
pub mod medical;
pub mod meta_search;
pub(crate) mod normalize;
pub(crate) mod params;
pub mod schema;
pub mod weather;
// Group "reference": geocoding, stocks, news, web search, translation, dictionary.
pub mod dictionary;
pub mod geo;
pub mod language;
pub mod news;
mod query;
pub mod search;
pub mod translate;
pub mod video;

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::Serialize;
use serde_json::Value;

use crate::error::{Error, Result};
pub(crate) use params::Params;
pub use schema::ParamTable;

macro_rules! capabilities {
    ($( $variant:ident => $name:literal, $request:ty, $data:ty, ttl $ttl:expr, side_effects $effects:literal; )*) => {
        /// A capability's identity.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum CapabilityId { $(
            #[doc = concat!("`", $name, "`")]
            $variant,
        )* }

        impl CapabilityId {
            /// Every capability, in table order.
            pub const ALL: &'static [CapabilityId] = &[$(CapabilityId::$variant),*];

            /// The dotted name, e.g. `weather.current`.
            pub fn as_str(self) -> &'static str {
                match self { $(CapabilityId::$variant => $name,)* }
            }

            /// This capability alone, as a static slice.
            pub(crate) fn as_slice(self) -> &'static [CapabilityId] {
                match self { $(CapabilityId::$variant => &[CapabilityId::$variant],)* }
            }

            /// How long an answer stays fresh in the cache by default.
            pub fn default_ttl(self) -> Duration {
                match self { $(CapabilityId::$variant => $ttl,)* }
            }

            /// Whether a call changes something at the provider (sends a
            /// message, books, pays). A call without side effects may be
            /// sent again after a 5xx, 408 or timeout whatever its HTTP
            /// method, as the official OpenAI SDK does for chat; one with
            /// side effects only when the reply proves it was not
            /// processed or the provider takes an idempotency key.
            pub fn has_side_effects(self) -> bool {
                match self { $(CapabilityId::$variant => $effects,)* }
            }

            /// Reads a normalised answer of this capability from JSON
            /// (configured providers map their replies into this form).
            pub fn data_from_json(self, value: Value) -> std::result::Result<Data, serde_json::Error> {
                match self { $(CapabilityId::$variant => serde_json::from_value::<$data>(value).map(Data::$variant),)* }
            }

            /// The parameters this capability takes: the table its parser
            /// reads them by (see [`schema`]).
            pub fn parameters(self) -> &'static ParamTable {
                match self { $(CapabilityId::$variant => &<$request>::PARAMS,)* }
            }

            /// Validates loosely typed parameters into this capability's request.
            pub fn parse(self, params: Value) -> Result<Request> {
                let params = Params::new(params, self.parameters())?;
                match self { $(CapabilityId::$variant => Ok(Request::$variant(<$request>::from_params(params)?)),)* }
            }
        }

        impl FromStr for CapabilityId {
            type Err = Error;
            fn from_str(name: &str) -> Result<Self> {
                match name {
                    $($name => Ok(CapabilityId::$variant),)*
                    other => Err(Error::invalid(
                        "capability",
                        format!("must be one of {}, got {}", [$($name),*].join(", "), $crate::echo::echo(other)),
                    )),
                }
            }
        }

        /// A validated request for one capability.
        #[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
        #[serde(untagged)]
        pub enum Request { $(
            #[doc = concat!("`", $name, "`")]
            $variant($request),
        )* }

        impl Request {
            /// The capability this request is for.
            pub fn capability(&self) -> CapabilityId {
                match self { $(Request::$variant(_) => CapabilityId::$variant,)* }
            }
        }

        /// One type per capability, naming it in a provider's
        /// [`Serves`](crate::provider::Serves) implementations.
        pub mod marker {
            use super::*;
            $(
                #[doc = concat!("`", $name, "`")]
                #[derive(Debug, Clone, Copy)]
                pub struct $variant;

                impl Capability for $variant {
                    const ID: CapabilityId = CapabilityId::$variant;
                    type Query = $request;
                    type Data = $data;
                }
            )*
        }

        /// A normalised answer.
        #[derive(Debug, Clone, PartialEq, Serialize)]
        #[serde(untagged)]
        pub enum Data { $(
            #[doc = concat!("`", $name, "`")]
            $variant($data),
        )* }

        impl Data {
            /// The capability this answer is for.
            pub fn capability(&self) -> CapabilityId {
                match self { $(Data::$variant(_) => CapabilityId::$variant,)* }
            }

            /// Reads back an answer of `capability` from the JSON of
            /// [`Data::to_json`] (e.g. from a shared cache).
            pub fn from_json(capability: CapabilityId, value: Value) -> serde_json::Result<Data> {
                match capability { $(CapabilityId::$variant => serde_json::from_value(value).map(Data::$variant),)* }
            }
        }
    };
}

impl Request {
    /// A provider's answer checked against what this request asks of any
    /// answer, whoever wrote it: an `llm.chat` answer against its
    /// `response_format` (parsed into `parsed`). An answer that does not
    /// hold is a malformed answer, so the next provider is asked.
    pub(crate) fn check_answer(
        &self,
        data: Data,
    ) -> std::result::Result<Data, crate::error::ProviderFailure> {
        match (self, data) {
            (Request::LlmChat(query), Data::LlmChat(reply)) => {
                query.check_reply(reply).map(Data::LlmChat)
            }
            (_, data) => Ok(data),
        }
    }
}

/// A capability as a type: its id, its validated query and its answer.
/// Implemented by the types of [`marker`], one per capability, so a
/// provider's [`Serves`](crate::provider::Serves) implementation states in
/// its signature which query it takes and which answer it returns.
pub trait Capability: 'static {
    /// The capability's id.
    const ID: CapabilityId;
    /// Its validated request.
    type Query;
    /// Its normalised answer.
    type Data;
}

// Every capability so far reads or computes (weather, search, LLM chat,
// translation...): none has side effects at the provider.
capabilities! {
    WeatherCurrent => "weather.current", weather::CurrentQuery, weather::CurrentWeather, ttl Duration::from_secs(600), side_effects false;
    WeatherForecast => "weather.forecast", weather::ForecastQuery, weather::Forecast, ttl Duration::from_secs(1800), side_effects false;
    FxRates => "finance.fx_rates", finance::FxQuery, finance::FxRates, ttl Duration::from_secs(3600), side_effects false;
    CryptoPrice => "crypto.price", crypto::CryptoQuery, crypto::CryptoPrices, ttl Duration::from_secs(60), side_effects false;
    // LLM: a repeated identical conversation within minutes is usually the
    // caller retrying, and each answer costs money; embeddings of the same
    // texts by the same model do not change.
    LlmChat => "llm.chat", llm::ChatQuery, llm::ChatReply, ttl Duration::from_secs(600), side_effects false;
    LlmEmbeddings => "llm.embeddings", llm::EmbeddingsQuery, llm::Embeddings, ttl Duration::from_secs(86_400), side_effects false;
    // Media and medical: labels change rarely, searches within hours, catalogues daily.
    DrugLabel => "medical.drug_label", medical::DrugLabelQuery, medical::DrugLabels, ttl Duration::from_secs(86_400), side_effects false;
    LiteratureSearch => "medical.literature_search", media::TextQuery, medical::PaperSearch, ttl Duration::from_secs(21_600), side_effects false;
    ClinicalTrials => "medical.clinical_trials", medical::TrialQuery, medical::TrialSearch, ttl Duration::from_secs(21_600), side_effects false;
    MovieSearch => "entertainment.movie_search", media::TitleQuery, media::TitleSearch, ttl Duration::from_secs(86_400), side_effects false;
    TvShowSearch => "tv.show_search", media::TitleQuery, media::TitleSearch, ttl Duration::from_secs(86_400), side_effects false;
    BooksSearch => "books.search", media::TextQuery, media::BookSearch, ttl Duration::from_secs(86_400), side_effects false;
    MusicSearch => "music.search", media::MusicQuery, media::MusicSearch, ttl Duration::from_secs(86_400), side_effects false;
    VideoSearch => "video.search", media::TextQuery, media::VideoSearch, ttl Duration::from_secs(3_600), side_effects false;
    // A video's facts change little (its view count does); its captions rarely.
    VideoDetails => "video.details", video::DetailsQuery, video::VideoDetails, ttl Duration::from_secs(21_600), side_effects false;
    VideoTranscript => "video.transcript", video::TranscriptQuery, video::Transcript, ttl Duration::from_secs(7 * 86_400), side_effects false;
    // Group "reference".
    Geocode => "geo.geocode", geo::GeocodeQuery, geo::Places, ttl Duration::from_secs(7 * 86_400), side_effects false;
    StockQuote => "finance.quote", finance::StockQuery, finance::StockQuote, ttl Duration::from_secs(60), side_effects false;
    NewsSearch => "news.search", news::NewsQuery, news::NewsResults, ttl Duration::from_secs(900), side_effects false;
    WebSearch => "web.search", search::WebQuery, search::WebResults, ttl Duration::from_secs(3600), side_effects false;
    // Composed: every `web.search` engine at once, merged (no provider serves it alone).
    MetaSearch => "search.meta", meta_search::MetaQuery, meta_search::MetaResults, ttl Duration::from_secs(3600), side_effects false;
    // Composed: every `news.search` engine at once, merged.
    NewsMeta => "news.meta", meta_search::MetaQuery, meta_search::NewsMetaResults, ttl Duration::from_secs(900), side_effects false;
    TranslateText => "translate.text", translate::TranslateQuery, translate::Translations, ttl Duration::from_secs(7 * 86_400), side_effects false;
    DictionaryDefine => "dictionary.define", dictionary::DefineQuery, dictionary::DictionaryEntry, ttl Duration::from_secs(7 * 86_400), side_effects false;
}

impl fmt::Display for CapabilityId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for CapabilityId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl CapabilityId {
    /// The capability whose providers a composed capability asks
    /// (`search.meta` asks every `web.search` engine, `news.meta` every
    /// `news.search` one); `None` for one that providers serve themselves.
    pub fn composed_of(self) -> Option<CapabilityId> {
        match self {
            Self::MetaSearch => Some(Self::WebSearch),
            Self::NewsMeta => Some(Self::NewsSearch),
            _ => None,
        }
    }

    /// The parameters as a JSON Schema (draft 2020-12) of the parameter
    /// object, each with its type, bounds, default and description.
    pub fn parameter_schema(self) -> Value {
        self.parameters().json_schema(self.as_str())
    }

    /// Every capability's [`CapabilityId::parameter_schema`], by name: the
    /// document the bindings publish.
    pub fn parameter_schemas() -> Value {
        Value::Object(
            Self::ALL
                .iter()
                .map(|c| (c.as_str().to_string(), c.parameter_schema()))
                .collect(),
        )
    }
}

impl Request {
    /// Validates `params` for the capability named `capability`.
    pub fn parse(capability: &str, params: Value) -> Result<Self> {
        capability.parse::<CapabilityId>()?.parse(params)
    }

    /// [`Request::parse`], with the caller's analytics tag taken out of
    /// `params`: every capability accepts `tag` this way (LLM calls keep
    /// theirs as their own parameter, which budgets count by).
    pub fn parse_tagged(capability: &str, mut params: Value) -> Result<(Self, Option<String>)> {
        let id = capability.parse::<CapabilityId>()?;
        let tag = match (&mut params, id) {
            (_, CapabilityId::LlmChat | CapabilityId::LlmEmbeddings) => None,
            (Value::Object(fields), _) => match fields.remove("tag") {
                None | Some(Value::Null) => None,
                Some(Value::String(tag)) => {
                    llm::check_tag(&tag).map_err(|e| crate::Error::invalid("tag", e))?;
                    Some(tag)
                }
                Some(other) => {
                    return Err(crate::Error::invalid(
                        "tag",
                        format!("must be a string, got {}", crate::echo::type_name(&other)),
                    ))
                }
            },
            _ => None,
        };
        Ok((id.parse(params)?, tag))
    }

    /// The model the request asks for, for the capabilities that take one.
    pub fn model(&self) -> Option<&str> {
        match self {
            Request::LlmChat(q) => q.model.as_deref(),
            Request::LlmEmbeddings(q) => q.model.as_deref(),
            _ => None,
        }
    }

    /// The caller's tag of an LLM call, which budgets may count by.
    pub fn tag(&self) -> Option<&str> {
        match self {
            Request::LlmChat(q) => q.tag.as_deref(),
            Request::LlmEmbeddings(q) => q.tag.as_deref(),
            _ => None,
        }
    }

    /// This request asking for `model` (a deployment's model id) instead.
    pub(crate) fn with_model(&self, model: &str) -> Request {
        let mut request = self.clone();
        match &mut request {
            Request::LlmChat(q) => q.model = Some(model.to_string()),
            Request::LlmEmbeddings(q) => q.model = Some(model.to_string()),
            _ => {}
        }
        request
    }

    /// The one provider this request may be sent to, when it is pinned
    /// (an embeddings call pinned to a vector space): no other is asked.
    pub fn pinned_provider(&self) -> Option<&str> {
        match self {
            Request::LlmEmbeddings(q) => q.space.as_ref().map(|s| s.provider.as_str()),
            _ => None,
        }
    }
}

impl Data {
    /// The answer as JSON.
    pub fn to_json(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn field_of(err: Error) -> String {
        match err {
            Error::InvalidRequest { field, .. } => field,
            other => panic!("expected InvalidRequest, got {other:?}"),
        }
    }

    #[test]
    fn unknown_capability_names_the_known_ones() {
        let err = Request::parse("weather.now", json!({})).unwrap_err();
        assert!(err.to_string().contains("weather.current"), "{err}");
    }

    #[test]
    fn weather_validation_names_the_field() {
        assert_eq!(
            field_of(Request::parse("weather.current", json!({"lat": 91, "lon": 0})).unwrap_err()),
            "lat"
        );
        assert_eq!(
            field_of(Request::parse("weather.current", json!({"lat": 1})).unwrap_err()),
            "lon"
        );
        assert_eq!(
            field_of(Request::parse("weather.current", json!({})).unwrap_err()),
            "lat"
        );
        assert_eq!(
            field_of(Request::parse("weather.current", json!({"city": "  "})).unwrap_err()),
            "city"
        );
        assert_eq!(
            field_of(
                Request::parse("weather.current", json!({"lat": 1, "lon": 2, "units": "f"}))
                    .unwrap_err()
            ),
            "units"
        );
        assert_eq!(
            field_of(
                Request::parse("weather.forecast", json!({"lat": 1, "lon": 2, "days": 40}))
                    .unwrap_err()
            ),
            "days"
        );
        assert_eq!(
            field_of(Request::parse("weather.current", json!([1, 2])).unwrap_err()),
            "params"
        );
    }

    #[test]
    fn equal_places_make_equal_requests() {
        let a = Request::parse("weather.current", json!({"lat": 52.52, "lon": 13.41})).unwrap();
        let b = Request::parse(
            "weather.current",
            json!({"lon": "13.41000001", "lat": 52.52}),
        )
        .unwrap();
        assert_eq!(a, b);
    }

    #[test]
    fn fx_validation_and_normalisation() {
        let r = Request::parse(
            "finance.fx_rates",
            json!({"base": "usd", "symbols": ["gbp", "EUR", "GBP"]}),
        )
        .unwrap();
        let Request::FxRates(q) = r else { panic!() };
        assert_eq!(q.base.as_str(), "USD");
        assert_eq!(
            q.symbols.iter().map(|c| c.as_str()).collect::<Vec<_>>(),
            ["EUR", "GBP"]
        );
        assert_eq!(
            field_of(Request::parse("finance.fx_rates", json!({"symbols": ["EURO"]})).unwrap_err()),
            "symbols[0]"
        );
        assert_eq!(
            field_of(
                Request::parse("finance.fx_rates", json!({"date": "2024-13-01"})).unwrap_err()
            ),
            "date"
        );
    }

    #[test]
    fn crypto_validation_resolves_names() {
        let r = Request::parse(
            "crypto.price",
            json!({"assets": ["bitcoin", "ETH"], "vs_currencies": "usd,eur"}),
        )
        .unwrap();
        let Request::CryptoPrice(q) = r else { panic!() };
        assert_eq!(q.assets, ["BTC", "ETH"]);
        assert_eq!(q.vs_currencies, ["USD", "EUR"]);
        assert_eq!(
            field_of(Request::parse("crypto.price", json!({})).unwrap_err()),
            "assets"
        );
        assert_eq!(
            field_of(Request::parse("crypto.price", json!({"assets": ["nocoin"]})).unwrap_err()),
            "assets[0]"
        );
    }
}
