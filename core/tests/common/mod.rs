//! Shared test fixtures: an emulator serving every built-in provider's real
//! wire format, clients pointed at it, and a small configurable provider for
//! cases no keyless built-in provider can show (keys, POST).
#![allow(dead_code)]

use std::sync::Arc;

use polyrelay::capability::weather::{Condition, CurrentQuery, CurrentWeather, GeoPoint};
use polyrelay::capability::{marker, CapabilityId, Data};
use polyrelay::clock::FakeClock;
use polyrelay::config::Config;
#[allow(unused_imports)]
pub use polyrelay::emulation::{Emulator, Fault, Method, Reply};
use polyrelay::provider::{
    Auth, CallContext, HttpRequest, HttpResponse, Provider, ProviderInfo, Serves, Step,
};
use polyrelay::Client;
use polyrelay::ProviderFailure;

/// A fake key for every keyed LLM provider (OpenAI's long enough to be
/// redacted where a reply echoes it).
pub const LLM_KEYS: &[(&str, &str)] = &[
    ("OPENAI_API_KEY", "sk-test-openai-0123456789"),
    ("ANTHROPIC_API_KEY", "sk-ant-test"),
    ("GEMINI_API_KEY", "AIza-test-gemini"),
    ("MISTRAL_API_KEY", "test-mistral"),
    ("GROQ_API_KEY", "gsk_test_groq"),
    ("COHERE_API_KEY", "test-cohere"),
    ("DEEPSEEK_API_KEY", "sk-test-deepseek"),
    ("OPENROUTER_API_KEY", "sk-or-v1-test"),
    ("TOGETHER_API_KEY", "test-together"),
];

/// OpenAI's chat completions answer every request with "Hi." (6 prompt
/// and 10 completion tokens of gpt-4o-mini).
pub fn openai_chat_reply(emulator: &Emulator) {
    emulator.route(
        Method::POST,
        "/openai/v1/chat/completions",
        Reply::json(&serde_json::json!({
            "id": "chatcmpl-1",
            "object": "chat.completion",
            "model": "gpt-4o-mini",
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": "Hi."}}],
            "usage": {"prompt_tokens": 6, "completion_tokens": 10, "total_tokens": 16}
        })),
    );
}

/// An emulator serving the fixtures of every built-in provider under `/{id}`.
pub async fn emulator() -> Emulator {
    let emulator = Emulator::start().await.expect("emulator starts");
    polyrelay::emulation::mount_builtin(&emulator);
    emulator
}

/// A fake clock at 2025-01-01T00:00Z whose backoff sleeps jump time.
pub fn clock() -> FakeClock {
    let clock = FakeClock::at_epoch();
    clock.auto_advance(true);
    clock
}

/// A client on `clock`, every provider pointed at `emulator`, configured by
/// `toml`, seeing only the environment variables in `vars`.
pub fn client(emulator: &Emulator, clock: &FakeClock, toml: &str, vars: &[(&str, &str)]) -> Client {
    builder(emulator, clock, toml, vars)
        .build()
        .expect("client builds")
}

/// The builder behind [`client`], to add providers.
pub fn builder(
    emulator: &Emulator,
    clock: &FakeClock,
    toml: &str,
    vars: &[(&str, &str)],
) -> polyrelay::ClientBuilder {
    let mut env: Vec<(String, String)> =
        vec![("POLYRELAY_EMULATOR_URL".into(), emulator.base_url())];
    env.extend(vars.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    Client::builder()
        .config(Config::from_toml_str(toml).expect("test config parses"))
        .env_vars(env)
        .clock(clock.shared())
        .seed(7)
}

/// A `weather.current` call for Berlin on its own task, so that the test
/// can move the clock or the emulator while it runs.
pub fn spawn_berlin_call(
    client: &Client,
) -> tokio::task::JoinHandle<polyrelay::Result<polyrelay::Envelope>> {
    let client = client.clone();
    tokio::spawn(async move { client.call("weather.current", berlin()).await })
}

/// Berlin.
pub fn berlin() -> serde_json::Value {
    serde_json::json!({"lat": 52.52, "lon": 13.41})
}

/// A minimal `weather.current` provider: `GET|POST /{id}/weather` answering
/// `{"temp": 21.5}`.
pub struct TestWeather {
    info: ProviderInfo,
    post: bool,
    idempotency_header: Option<&'static str>,
}

impl TestWeather {
    /// A keyless GET provider.
    pub fn keyless(id: &'static str) -> Arc<Self> {
        Self::build(id, Auth::Keyless, false, None)
    }

    /// A provider that needs the key in `env`, sent as the `x-api-key` header.
    pub fn keyed(id: &'static str, env: &'static str) -> Arc<Self> {
        let auth = Auth::Key {
            env,
            placement: polyrelay::provider::KeyPlacement::Header {
                name: "x-api-key",
                prefix: "",
            },
            optional: false,
        };
        Self::build(id, auth, false, None)
    }

    /// A keyless POST provider, optionally de-duplicating by an idempotency header.
    pub fn post(id: &'static str, idempotency_header: Option<&'static str>) -> Arc<Self> {
        Self::build(id, Auth::Keyless, true, idempotency_header)
    }

    fn build(
        id: &'static str,
        auth: Auth,
        post: bool,
        idempotency_header: Option<&'static str>,
    ) -> Arc<Self> {
        let info = ProviderInfo {
            id,
            name: id,
            auth,
            base_url: "http://127.0.0.1:9",
            docs_url: "https://example.invalid/docs",
            terms: "test provider",
            commercial_use: true,
            default_rate_limit: None,
            default_quota: None,
        };
        Arc::new(Self {
            info,
            post,
            idempotency_header,
        })
    }

    /// The emulator path this provider calls.
    pub fn path(&self) -> String {
        format!("/{}/weather", self.info.id)
    }

    /// Serves a normal answer for this provider on `emulator`.
    pub fn serve(&self, emulator: &Emulator, temp: f64) {
        let method = if self.post { Method::POST } else { Method::GET };
        emulator.route(
            method,
            &self.path(),
            Reply::json(&serde_json::json!({ "temp": temp })),
        );
    }
}

impl Provider for TestWeather {
    fn info(&self) -> &ProviderInfo {
        &self.info
    }

    fn idempotency_header(&self) -> Option<&'static str> {
        self.idempotency_header
    }
}

polyrelay::serves!(TestWeather: WeatherCurrent);

impl Serves<marker::WeatherCurrent> for TestWeather {
    fn build_request(
        &self,
        query: &CurrentQuery,
        ctx: &CallContext<'_>,
    ) -> Result<HttpRequest, ProviderFailure> {
        let coords = query.location.coordinates()?;
        Ok(if self.post {
            HttpRequest::post_json(
                ctx.base_url,
                "/weather",
                serde_json::json!({"lat": coords.lat.get(), "lon": coords.lon.get()}),
            )
        } else {
            HttpRequest::get(ctx.base_url, "/weather")
                .query("lat", coords.lat.to_param())
                .query("lon", coords.lon.to_param())
        })
    }

    fn read_response(
        &self,
        _: &CurrentQuery,
        _: &CallContext<'_>,
        response: HttpResponse,
    ) -> Result<Step<CurrentWeather>, ProviderFailure> {
        response.check_status()?;
        let body: serde_json::Value = response.json()?;
        let temp = body["temp"]
            .as_f64()
            .ok_or_else(|| ProviderFailure::malformed("no temp"))?;
        Ok(Step::Done(CurrentWeather {
            location: GeoPoint {
                lat: 0.0,
                lon: 0.0,
                name: None,
                country_code: None,
                timezone: None,
            },
            observed_at: "2025-01-01T00:00:00Z".into(),
            temperature_c: temp,
            feels_like_c: None,
            humidity_pct: None,
            wind_speed_ms: None,
            wind_dir_deg: None,
            pressure_hpa: None,
            precipitation_mm: None,
            cloud_cover_pct: None,
            condition: Condition::from_wmo(0),
        }))
    }
}

/// The temperature of a `weather.current` answer.
pub fn temperature(reply: &polyrelay::Envelope) -> f64 {
    match reply.data() {
        Data::WeatherCurrent(w) => w.temperature_c,
        other => panic!("not weather.current: {other:?}"),
    }
}

/// A valid request for each capability. A new capability must be added here.
pub fn example_params(capability: CapabilityId) -> serde_json::Value {
    match capability.as_str() {
        "weather.current" | "weather.forecast" => berlin(),
        "finance.fx_rates" => serde_json::json!({"base": "EUR", "symbols": ["USD"]}),
        "crypto.price" => serde_json::json!({"assets": ["BTC"], "vs_currencies": ["USD"]}),
        "llm.chat" => serde_json::json!({"messages": [{"role": "user", "content": "Say hi"}]}),
        "llm.embeddings" => serde_json::json!({"inputs": ["first text", "second text"]}),
        "geo.geocode" => serde_json::json!({"query": "Berlin"}),
        "finance.quote" => serde_json::json!({"symbol": "AAPL"}),
        "news.search" => serde_json::json!({"query": "climate"}),
        "web.search" => serde_json::json!({"query": "rust programming"}),
        "translate.text" => {
            serde_json::json!({"text": "Hello world", "source_lang": "en", "target_lang": "de"})
        }
        "dictionary.define" => serde_json::json!({"word": "serendipity"}),
        "medical.drug_label" => serde_json::json!({"name": "ibuprofen"}),
        "medical.literature_search" => serde_json::json!({"query": "malaria vaccine"}),
        "medical.clinical_trials" => serde_json::json!({"condition": "malaria"}),
        "entertainment.movie_search" => serde_json::json!({"query": "terminator"}),
        "tv.show_search" => serde_json::json!({"query": "breaking bad"}),
        "books.search" => serde_json::json!({"query": "dune"}),
        "music.search" => serde_json::json!({"query": "daft punk"}),
        "video.search" => serde_json::json!({"query": "apollo 11"}),
        // Dailymotion's fixture id; the Internet Archive answers any.
        "video.details" | "video.transcript" => serde_json::json!({"id": "x7tgad0"}),
        other => panic!("add an example request for {other} to core/tests/common/mod.rs"),
    }
}
