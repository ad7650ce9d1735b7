//! Error messages stay short whatever the caller sends: a value an error
//! echoes is cut to a prefix with its length (`"qqqq…" (100000 characters)`).
//!
//! Every capability is driven from valid example parameters that together
//! use every parameter it accepts (checked against the validator's own
//! list): each value in them, at any depth, is replaced by oversized text,
//! and each object gets an oversized unknown key. An oversized value may be
//! accepted (free text such as a prompt); whenever it is refused, the error
//! must be an invalid request, short, on one line, and must give the length
//! when it shows any of the value.

use std::collections::BTreeSet;

use polyrelay::capability::{CapabilityId, Request};
use polyrelay::config::Config;
use polyrelay::Error;
use serde_json::{json, Value};

const N: usize = 100_000;
const LENGTH: &str = "(100000 characters)";
/// Longest Display accepted for one invalid value or field.
const MAX_MESSAGE: usize = 400;

/// Valid parameters of `capability`; alternatives (lat/lon or city, a list
/// or a single text) get an example each. The match has no wildcard, so a
/// new capability does not compile here until it has examples.
fn examples(capability: CapabilityId) -> Vec<Value> {
    use CapabilityId::*;
    match capability {
        WeatherCurrent => vec![
            json!({"lat": 52.52, "lon": 13.41}),
            json!({"city": "Berlin"}),
        ],
        WeatherForecast => vec![
            json!({"lat": 52.52, "lon": 13.41, "days": 3}),
            json!({"city": "Berlin", "days": 3}),
        ],
        FxRates => vec![
            json!({"base": "USD", "symbols": ["EUR", "GBP"], "date": "2024-01-02"}),
            json!({"symbols": "EUR,GBP", "date": "latest"}),
        ],
        CryptoPrice => vec![
            json!({"assets": ["bitcoin", "ETH"], "vs_currencies": "usd,eur"}),
            json!({"assets": "BTC", "vs_currencies": ["usd"]}),
        ],
        LlmChat => vec![
            json!({
                "messages": [
                    {"role": "system", "content": "Answer briefly."},
                    {"role": "user", "content": "Capital of France?"}
                ],
                "model": "gpt-4o-mini",
                "max_tokens": 50,
                "temperature": 0.2,
                "stream": false
            }),
            json!({
                "messages": [
                    {"role": "user", "content": "Weather in Paris?"},
                    {"role": "assistant", "content": "", "tool_calls": [
                        {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\": \"Paris\"}"}}
                    ]},
                    {"role": "tool", "tool_call_id": "call_1", "content": "{\"temperature_c\": 14}"}
                ],
                "tools": [{"type": "function", "function": {
                    "name": "get_weather",
                    "description": "Current weather of a city",
                    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}
                }}],
                "tool_choice": {"type": "function", "function": {"name": "get_weather"}}
            }),
            json!({
                "messages": [{"role": "user", "content": "Capital of France and its population?"}],
                "response_format": {"type": "json_schema", "json_schema": {
                    "name": "city",
                    "description": "A city",
                    "schema": {"type": "object", "properties": {"name": {"type": "string"}}},
                    "strict": true
                }},
                "tag": "team-a"
            }),
        ],
        LlmEmbeddings => vec![
            json!({"inputs": ["first", "second"], "model": "text-embedding-3-small", "purpose": "query"}),
            json!({"inputs": "one text", "purpose": "document"}),
            json!({"inputs": "one text", "space": "openai/text-embedding-3-small", "tag": "team-a"}),
        ],
        DrugLabel => vec![json!({"name": "ibuprofen", "limit": 5})],
        LiteratureSearch | BooksSearch | VideoSearch => {
            vec![json!({"query": "malaria", "limit": 10})]
        }
        ClinicalTrials => vec![json!({
            "query": "vaccine", "condition": "malaria", "status": "recruiting", "limit": 10
        })],
        MovieSearch | TvShowSearch => vec![
            json!({"query": "terminator", "year": 1984, "limit": 5}),
            json!({"imdb_id": "tt0088247", "limit": 5}),
        ],
        MusicSearch => vec![json!({"query": "daft punk", "type": "album", "limit": 5})],
        VideoDetails => vec![
            json!({"id": "x7tgad0"}),
            json!({"id": "https://www.youtube.com/watch?v=S9HdPi9Ikhk"}),
        ],
        VideoTranscript => vec![json!({"id": "x7tgad0", "language": "en"})],
        Geocode => vec![json!({
            "query": "Berlin", "limit": 5, "language": "de", "country_code": "DE"
        })],
        StockQuote => vec![json!({"symbol": "BRK.B"})],
        NewsSearch => vec![json!({"query": "climate", "language": "en", "limit": 10})],
        WebSearch => vec![json!({"query": "rust", "language": "english", "limit": 10})],
        MetaSearch | NewsMeta => vec![
            json!({"query": "rust", "language": "en", "limit": 10, "engines": ["brave", "searxng"]}),
            json!({"query": "rust", "engines": "brave,searxng"}),
        ],
        TranslateText => vec![
            json!({"text": ["Hello", "Goodbye"], "target_lang": "de", "source_lang": "en"}),
            json!({"text": "Hello", "target_lang": "de", "source_lang": "auto"}),
        ],
        DictionaryDefine => vec![json!({"word": "serendipity", "language": "en"})],
    }
}

/// The parameters `capability` accepts, as its validator lists them when
/// it meets an unknown one.
fn accepted(capability: CapabilityId, example: &Value) -> BTreeSet<String> {
    let mut params = example.clone();
    params["zz_unknown"] = json!(1);
    match capability.parse(params) {
        Err(Error::InvalidRequest { field, expected }) if field == "zz_unknown" => expected
            .split_once("expected one of: ")
            .map(|(_, list)| list.split(", ").map(str::to_string).collect())
            .unwrap_or_else(|| panic!("{capability}: no list in {expected:?}")),
        other => panic!("{capability}: unknown parameter not refused: {other:?}"),
    }
}

/// One step into a JSON value.
#[derive(Debug, Clone)]
enum Step {
    Key(String),
    Index(usize),
}

/// Every position in `value` (objects' fields and lists' items at any
/// depth), containers included.
fn positions(value: &Value, at: Vec<Step>, out: &mut Vec<Vec<Step>>) {
    match value {
        Value::Object(map) => {
            for (key, inner) in map {
                let mut here = at.clone();
                here.push(Step::Key(key.clone()));
                out.push(here.clone());
                positions(inner, here, out);
            }
        }
        Value::Array(items) => {
            for (i, inner) in items.iter().enumerate() {
                let mut here = at.clone();
                here.push(Step::Index(i));
                out.push(here.clone());
                positions(inner, here, out);
            }
        }
        _ => {}
    }
}

/// Positions of every object in `value`, the root included.
fn objects(value: &Value, at: Vec<Step>, out: &mut Vec<Vec<Step>>) {
    if value.is_object() {
        out.push(at.clone());
    }
    let mut all = Vec::new();
    positions(value, at, &mut all);
    out.extend(all.into_iter().filter(|p| pointer(value, p).is_object()));
}

fn pointer<'a>(value: &'a Value, path: &[Step]) -> &'a Value {
    path.iter().fold(value, |v, step| match step {
        Step::Key(k) => &v[k.as_str()],
        Step::Index(i) => &v[*i],
    })
}

fn slot<'a>(value: &'a mut Value, path: &[Step]) -> &'a mut Value {
    path.iter().fold(value, |v, step| match step {
        Step::Key(k) => &mut v[k.as_str()],
        Step::Index(i) => &mut v[*i],
    })
}

fn name(path: &[Step]) -> String {
    path.iter()
        .map(|s| match s {
            Step::Key(k) => format!(".{k}"),
            Step::Index(i) => format!("[{i}]"),
        })
        .collect()
}

/// An oversized value and what its echo looks like once escaped.
struct Huge {
    value: String,
    /// Text that appears in a message exactly when it shows the value.
    shown: &'static str,
}

fn huge_texts() -> Vec<Huge> {
    vec![
        Huge {
            value: "q".repeat(N),
            shown: "qqqqqqqq",
        },
        // Two bytes per character: the length counts characters.
        Huge {
            value: "ж".repeat(N),
            shown: "жжжжжжжж",
        },
        // Control characters must not break the message onto new lines.
        // (ending in a letter, as values are trimmed).
        Huge {
            value: format!("{}qq", "q\n".repeat(N / 2 - 1)),
            shown: "q\\nq\\nq\\n",
        },
    ]
}

/// What the cases found.
#[derive(Default)]
struct Tally {
    /// Positions (capability, example, field at any depth) replaced.
    fields: usize,
    cases: usize,
    refused: usize,
    echoed: usize,
}

/// Checks one refusal; `must_echo` when the message has to show the value.
fn check_error(tally: &mut Tally, case: &str, err: Error, huge: Option<&Huge>, must_echo: bool) {
    tally.refused += 1;
    let text = err.to_string();
    assert!(
        matches!(err, Error::InvalidRequest { .. }),
        "{case}: not an invalid request: {text:.300}"
    );
    assert!(
        text.len() < MAX_MESSAGE,
        "{case}: {} bytes: {text:.600}",
        text.len()
    );
    assert!(!text.contains(['\n', '\r']), "{case}: not one line: {text}");
    if let Some(huge) = huge {
        let echoed = text.to_lowercase().contains(huge.shown);
        assert!(!must_echo || echoed, "{case}: value not shown: {text}");
        if echoed {
            tally.echoed += 1;
            assert!(text.contains(LENGTH), "{case}: no length: {text}");
        }
    }
}

fn run(
    tally: &mut Tally,
    capability: CapabilityId,
    params: Value,
    case: &str,
    huge: Option<&Huge>,
) {
    tally.cases += 1;
    if let Err(err) = Request::parse(capability.as_str(), params) {
        check_error(tally, case, err, huge, false);
    }
}

#[test]
fn examples_are_valid_and_use_every_parameter() {
    for &capability in CapabilityId::ALL {
        let examples = examples(capability);
        let mut used = BTreeSet::new();
        for example in &examples {
            if let Err(err) = capability.parse(example.clone()) {
                panic!("{capability}: example {example} refused: {err}");
            }
            used.extend(
                example
                    .as_object()
                    .into_iter()
                    .flat_map(|m| m.keys().cloned()),
            );
        }
        assert_eq!(
            used,
            accepted(capability, &examples[0]),
            "{capability}: the examples must use every accepted parameter"
        );
    }
}

#[test]
fn every_parameter_of_every_capability_echoes_bounded() {
    let mut tally = Tally::default();
    for &capability in CapabilityId::ALL {
        for (e, example) in examples(capability).iter().enumerate() {
            let mut all = Vec::new();
            positions(example, Vec::new(), &mut all);
            for path in &all {
                tally.fields += 1;
                let case = format!("{capability} example {e} {}", name(path));
                for huge in &huge_texts() {
                    let mut params = example.clone();
                    *slot(&mut params, path) = Value::String(huge.value.clone());
                    run(&mut tally, capability, params, &case, Some(huge));
                }
                if pointer(example, path).is_number() {
                    // A number written as a huge string, and huge numbers.
                    let digits = Huge {
                        value: "9".repeat(N),
                        shown: "99999999",
                    };
                    let mut params = example.clone();
                    *slot(&mut params, path) = Value::String(digits.value.clone());
                    run(&mut tally, capability, params, &case, Some(&digits));
                    for number in [1e308, -1e308] {
                        let mut params = example.clone();
                        *slot(&mut params, path) = json!(number);
                        run(&mut tally, capability, params, &case, None);
                    }
                }
            }
            let mut holders = Vec::new();
            objects(example, Vec::new(), &mut holders);
            // A tool's `parameters` and a response format's `schema` are
            // JSON Schemas, free-form: any keyword may appear in them.
            holders.retain(|path| {
                !path
                    .iter()
                    .any(|s| matches!(s, Step::Key(k) if k == "parameters" || k == "schema"))
            });
            for path in &holders {
                let case = format!("{capability} example {e} unknown key in {}", name(path));
                for huge in &huge_texts() {
                    let mut params = example.clone();
                    slot(&mut params, path)[huge.value.as_str()] = json!(1);
                    tally.cases += 1;
                    match Request::parse(capability.as_str(), params) {
                        Ok(_) => panic!("{case}: unknown key accepted"),
                        Err(err) => check_error(&mut tally, &case, err, Some(huge), true),
                    }
                }
            }
        }
    }
    // Figures printed for the record (`--nocapture`); the floors catch a
    // harness that stopped reaching the validators.
    println!(
        "{} fields, {} cases, {} refused, {} showed a cut value",
        tally.fields, tally.cases, tally.refused, tally.echoed
    );
    assert!(
        tally.refused > tally.cases / 2,
        "{} of {}",
        tally.refused,
        tally.cases
    );
    assert!(tally.echoed > 100, "{} echoed", tally.echoed);
}

#[test]
fn a_huge_capability_name_is_cut() {
    let listed = Request::parse("q", json!({}))
        .unwrap_err()
        .to_string()
        .len();
    for huge in &huge_texts() {
        let err = Request::parse(&huge.value, json!({})).unwrap_err();
        let text = err.to_string();
        assert!(matches!(err, Error::InvalidRequest { .. }), "{text:.300}");
        // The message lists every capability; the name adds a bounded echo.
        assert!(
            text.len() < listed + 120,
            "{} bytes: {text:.600}",
            text.len()
        );
        assert!(text.to_lowercase().contains(huge.shown), "{text}");
        assert!(text.contains(LENGTH), "{text}");
        assert!(!text.contains('\n'), "{text}");
    }
}

/// A configuration error: short, one line, and giving the length when it
/// shows the value.
fn check_config(case: &str, result: polyrelay::Result<Config>) {
    let err = match result {
        Ok(_) => panic!("{case}: accepted"),
        Err(err) => err,
    };
    let text = err.to_string();
    assert!(matches!(err, Error::Config { .. }), "{case}: {text:.300}");
    assert!(
        text.len() < MAX_MESSAGE,
        "{case}: {} bytes: {text:.600}",
        text.len()
    );
    assert!(!text.contains('\n'), "{case}: {text}");
    assert!(text.contains("characters)"), "{case}: no length: {text}");
}

#[test]
fn configuration_errors_cut_huge_values() {
    let q = "q".repeat(N);
    let upper = "Q".repeat(N);
    let vars = |name: &str, value: &str| Config::from_vars([(name.to_string(), value.to_string())]);
    for name in [
        "POLYRELAY_TIMEZONE",
        "POLYRELAY_COMMERCIAL",
        "POLYRELAY_CACHE",
        "POLYRELAY_TOTAL_TIMEOUT",
        "POLYRELAY_EMULATOR_URL",
        "POLYRELAY_OPEN_METEO_BASE_URL",
        "POLYRELAY_OPEN_METEO_RATE_LIMIT",
        "POLYRELAY_OPEN_METEO_DAILY_QUOTA",
        "POLYRELAY_OPEN_METEO_ENABLED",
    ] {
        check_config(name, vars(name, &q));
    }
    check_config(
        "unknown chain",
        vars(&format!("POLYRELAY_CHAIN_{upper}"), "x"),
    );
    check_config(
        "unknown provider",
        vars(&format!("POLYRELAY_{upper}_BASE_URL"), "x"),
    );
    check_config("unknown variable", vars(&format!("POLYRELAY_{upper}"), "x"));
    for (case, json) in [
        ("capability key", json!({"capabilities": {&q: {}}})),
        // Provider ids are checked against the registry by the client;
        // here the key only names the field of a bad setting.
        (
            "provider key",
            json!({"providers": {&q: {"daily_quota": "x"}}}),
        ),
        (
            "unknown setting",
            json!({"providers": {"open-meteo": {&q: 1}}}),
        ),
        (
            "quota as text",
            json!({"providers": {"open-meteo": {"daily_quota": &q}}}),
        ),
        (
            "rate",
            json!({"providers": {"open-meteo": {"rate_limit": &q}}}),
        ),
        (
            "timeout",
            json!({"providers": {"open-meteo": {"retry": {"attempt_timeout": &q}}}}),
        ),
        ("timezone", json!({"timezone": &q})),
        ("top-level key", json!({&q: 1})),
    ] {
        check_config(case, Config::from_json(json));
    }
    check_config(
        "toml line",
        Config::from_toml_str(&format!("timezone = {q}")),
    );
    let err = polyrelay::internal::duration::parse(&q).unwrap_err();
    assert!(
        err.len() < MAX_MESSAGE && err.contains(LENGTH),
        "{err:.600}"
    );
}

#[test]
fn unknown_providers_named_by_the_configuration_are_cut() {
    let q = "q".repeat(N);
    for (case, json) in [
        ("provider table", json!({"providers": {&q: {}}})),
        (
            "chain entry",
            json!({"capabilities": {"weather.current": {"chain": [&q]}}}),
        ),
    ] {
        let config = Config::from_json(json).expect("checked when the client is built");
        let built = polyrelay::Client::builder().config(config).build();
        let text = built.expect_err(case).to_string();
        // The list of known providers makes it long, but not the id.
        assert!(!text.contains(&"q".repeat(100)), "{case}: {text:.600}");
        assert!(text.contains(LENGTH), "{case}: {text}");
    }
}
