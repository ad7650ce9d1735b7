//! The schema-drift suite: every built-in provider must read the replies its
//! provider may send tomorrow, not only the one in its fixture.
//!
//! For each provider, each capability it serves and each step of the
//! exchange (multi-step providers have several), the fixture's JSON is
//! mutated mechanically, one change per mutant:
//!
//! - `drop`: a field removed;
//! - `null`: a field set to `null`;
//! - `swap`: a number sent as a numeric string, and an id (`id`, `*_id`,
//!   `*Id`) sent as a number when it is a numeric string;
//! - `unknown`: an unknown field added to an object;
//! - `empty`: an array emptied.
//!
//! A `swap` or `unknown` mutant must give exactly the fixture's answer. A
//! `drop`, `null` or `empty` mutant must give the same answer less what came
//! from the data it took away (a fact may become `null` or go missing, a
//! list may lose the item the mutant broke, the items made from the removed
//! data or all of its items, a text derived from the removed data may fall
//! back to another source or lose the removed word), or fail
//! as `malformed_response` naming the field (then the field is required),
//! or as `not_found` (it took away what was asked for). Anything else
//! (another answer, another failure, a panic) is a defect, listed in a
//! table per provider.
//!
//! Runs as a plain program (`harness = false`) so that the count of mutants
//! per provider is printed in every test run.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::process::ExitCode;

use polyrelay::capability::{CapabilityId, Data, Request};
use polyrelay::provider::{CallContext, Fixture, HttpRequest, HttpResponse, Provider, Step};
use polyrelay::{FailureClass, ProviderFailure};
use serde_json::Value;

const BASE_URL: &str = "http://drift.invalid";
const USER_AGENT: &str = "polyrelay-drift/0.1 (drift@example.invalid)";
const UNKNOWN_FIELD: &str = "polyrelay_drift_unknown";
/// Array items mutated: the first and the last (the rest are alike).
const ITEMS_MUTATED: usize = 2;

/// Defects known and not yet fixed, one file per provider, one line per
/// mutant (`exchange | kind | field`); none now, and the folder is absent.
/// The suite fails on a defect not listed and on a listed one that is gone,
/// so the list only shrinks. `POLYRELAY_DRIFT_BLESS=1` rewrites the files
/// from the current run.
const KNOWN_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/drift_known");

fn main() -> ExitCode {
    let bless = std::env::var_os("POLYRELAY_DRIFT_BLESS").is_some();
    let (mut total, mut known_total, mut new_total, mut fixed_total) = (0, 0, 0, 0);
    for provider in polyrelay::internal::builtin_providers() {
        let report = check(*provider);
        total += report.mutants();
        let file = format!("{KNOWN_DIR}/{}.txt", report.provider);
        let found: BTreeSet<String> = report.defects.iter().map(Defect::line).collect();
        if bless {
            if found.is_empty() {
                let _ = std::fs::remove_file(&file);
            } else {
                let text: Vec<&str> = found.iter().map(String::as_str).collect();
                std::fs::create_dir_all(KNOWN_DIR).expect("the known-defects folder");
                std::fs::write(&file, text.join("\n") + "\n").expect("a known-defects file");
            }
        }
        let known: BTreeSet<String> = std::fs::read_to_string(&file)
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .filter(|l| !l.trim().is_empty())
            .collect();
        let new: Vec<&Defect> = report
            .defects
            .iter()
            .filter(|d| !known.contains(&d.line()))
            .collect();
        let fixed: Vec<&String> = known.difference(&found).collect();
        println!("{report}; known defects {}", known.len());
        if !new.is_empty() {
            println!("  new defects:\n{}", Report::table(&new));
        }
        for line in &fixed {
            println!("  fixed (remove from {file}): {line}");
        }
        known_total += known.len();
        new_total += new.len();
        fixed_total += fixed.len();
    }
    println!(
        "schema drift: {} providers, {total} mutants, {known_total} known defects, \
         {new_total} new, {fixed_total} fixed but still listed",
        polyrelay::internal::builtin_providers().len()
    );
    if new_total == 0 && fixed_total == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// One kind of change to a reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    Drop,
    Null,
    Swap,
    Unknown,
    Empty,
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Kind::Drop => "drop",
            Kind::Null => "null",
            Kind::Swap => "swap",
            Kind::Unknown => "unknown",
            Kind::Empty => "empty",
        })
    }
}

/// A step in a JSON document.
#[derive(Debug, Clone)]
enum Seg {
    Key(String),
    Index(usize),
}

fn path_text(path: &[Seg]) -> String {
    let mut text = String::new();
    for seg in path {
        match seg {
            Seg::Key(k) => {
                if !text.is_empty() {
                    text.push('.');
                }
                text.push_str(k);
            }
            Seg::Index(i) => text.push_str(&format!("[{i}]")),
        }
    }
    if text.is_empty() {
        "(root)".into()
    } else {
        text
    }
}

struct Mutant {
    kind: Kind,
    path: Vec<Seg>,
    body: Value,
    /// The texts the mutant took away (the key, strings and numbers of the
    /// value): a fact derived from them may fall back to another source.
    removed: Vec<String>,
}

/// The texts of `key` and `value` that a fact may have been derived from.
fn texts(key: Option<&str>, value: &Value) -> Vec<String> {
    let mut out: Vec<String> = key.map(str::to_string).into_iter().collect();
    leaves(value, true, &mut out);
    out
}

/// The strings and numbers of `value` as texts, with its keys if `keys`.
fn leaves(value: &Value, keys: bool, out: &mut Vec<String>) {
    match value {
        Value::String(s) => out.push(s.clone()),
        Value::Number(n) => out.push(n.to_string()),
        Value::Array(items) => items.iter().for_each(|v| leaves(v, keys, out)),
        Value::Object(map) => map.iter().for_each(|(k, v)| {
            if keys {
                out.push(k.clone());
            }
            leaves(v, keys, out)
        }),
        _ => {}
    }
}

/// Whether `text` contains one of the `removed` texts, as adapters pass
/// them on: in any case (a DOI is lower-cased) and over HTTPS (an `http://`
/// link is upgraded). Short texts ("en", "1") are in too many facts to say
/// anything.
fn derived(text: &str, removed: &[String]) -> bool {
    let text = text.to_lowercase();
    removed
        .iter()
        .filter(|r| r.chars().count() >= 4)
        .map(|r| r.to_lowercase())
        .any(|r| {
            let r = r.strip_prefix("http://").unwrap_or(&r);
            text.contains(r)
        })
}

/// Whether an item of an answer's list was made from the `removed` data:
/// one of its values is derived from it (its keys are the answer's own).
fn derived_item(item: &Value, removed: &[String]) -> bool {
    let mut values = Vec::new();
    leaves(item, false, &mut values);
    values.iter().any(|v| derived(v, removed))
}

/// The words of a text, punctuation left out.
fn words(text: &str) -> Vec<&str> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .collect()
}

/// Whether `got` is `want` less one word that the mutant removed (a house
/// number left out of an address, a word of a rebuilt abstract).
fn less_a_removed_word(want: &str, got: &str, removed: &[String]) -> bool {
    let (want, got) = (words(want), words(got));
    want.len() == got.len() + 1
        && (0..want.len()).any(|skip| {
            removed.iter().any(|r| r == want[skip])
                && want[..skip].iter().chain(&want[skip + 1..]).eq(got.iter())
        })
}

/// Whether `got` is `want` with items left out, each one the mutant broke
/// or made from what it removed (`may_leave`), the others as `covers` has
/// them.
fn leaves_out(
    want: &[Value],
    got: &[Value],
    may_leave: &dyn Fn(&Value) -> bool,
    removed: &[String],
    at: &str,
) -> bool {
    match (want.split_first(), got.split_first()) {
        (_, None) => want.iter().all(may_leave),
        (None, Some(_)) => false,
        (Some((w, want_rest)), Some((g, got_rest))) => {
            (covers(w, g, removed, at).is_none()
                && leaves_out(want_rest, got_rest, may_leave, removed, at))
                || (may_leave(w) && leaves_out(want_rest, got, may_leave, removed, at))
        }
    }
}

/// Every mutant of `doc`.
fn mutants(doc: &Value) -> Vec<Mutant> {
    let mut out = Vec::new();
    let mut path = Vec::new();
    walk(doc, doc, &mut path, &mut out);
    out
}

fn walk(root: &Value, here: &Value, path: &mut Vec<Seg>, out: &mut Vec<Mutant>) {
    let add = |out: &mut Vec<Mutant>, kind: Kind, path: &[Seg], change: &dyn Fn(&mut Value)| {
        let mut body = root.clone();
        change(&mut body);
        let removed = match (kind, path.last()) {
            (Kind::Drop | Kind::Null | Kind::Empty, last) => {
                let key = match last {
                    Some(Seg::Key(k)) => Some(k.as_str()),
                    _ => None,
                };
                texts(key, get(root, path).unwrap_or(&Value::Null))
            }
            _ => Vec::new(),
        };
        out.push(Mutant {
            kind,
            path: path.to_vec(),
            body,
            removed,
        });
    };
    match here {
        Value::Object(map) => {
            // A map of numbers (rates by currency) gains an entry, not an
            // unknown field: that would be another currency.
            let numeric_map = !map.is_empty() && map.values().all(Value::is_number);
            // A tool call's arguments (Anthropic `input`, Gemini `args`,
            // Ollama `arguments`) are the model's data, passed on whole: an
            // added entry is another argument, not an unknown field.
            let arguments = matches!(
                path.last(),
                Some(Seg::Key(k)) if matches!(k.as_str(), "input" | "args" | "arguments")
            );
            if !numeric_map && !arguments {
                add(out, Kind::Unknown, path, &|body| {
                    if let Some(Value::Object(m)) = at(body, path) {
                        m.insert(
                            UNKNOWN_FIELD.into(),
                            serde_json::json!({"a": [1, "x", null], "b": {"c": true}}),
                        );
                    }
                });
            }
            for (key, value) in map {
                path.push(Seg::Key(key.clone()));
                add(out, Kind::Drop, path, &|body| {
                    if let Some((Value::Object(parent), Seg::Key(k))) = parent_of(body, path) {
                        parent.remove(k);
                    }
                });
                if !value.is_null() {
                    add(out, Kind::Null, path, &|body| {
                        if let Some(v) = at(body, path) {
                            *v = Value::Null;
                        }
                    });
                }
                if let Some(swapped) = swapped(key, value) {
                    add(out, Kind::Swap, path, &|body| {
                        if let Some(v) = at(body, path) {
                            *v = swapped.clone();
                        }
                    });
                }
                walk(root, value, path, out);
                path.pop();
            }
        }
        Value::Array(items) => {
            if !items.is_empty() {
                add(out, Kind::Empty, path, &|body| {
                    if let Some(Value::Array(a)) = at(body, path) {
                        a.clear();
                    }
                });
            }
            let last = items.len().saturating_sub(1);
            for (i, item) in items.iter().enumerate() {
                if i >= ITEMS_MUTATED - 1 && i != last {
                    continue;
                }
                if let Some(swapped) = item.is_number().then(|| swapped("", item)).flatten() {
                    path.push(Seg::Index(i));
                    add(out, Kind::Swap, path, &|body| {
                        if let Some(v) = at(body, path) {
                            *v = swapped.clone();
                        }
                    });
                    path.pop();
                }
                path.push(Seg::Index(i));
                walk(root, item, path, out);
                path.pop();
            }
        }
        _ => {}
    }
}

/// A number as its numeric string; an id's numeric string as a number.
fn swapped(key: &str, value: &Value) -> Option<Value> {
    match value {
        Value::Number(n) => Some(Value::String(n.to_string())),
        Value::String(s) if is_id(key) => {
            let n: serde_json::Number = s.parse().ok()?;
            (n.to_string() == *s).then_some(Value::Number(n))
        }
        _ => None,
    }
}

fn is_id(key: &str) -> bool {
    key == "id" || key.ends_with("_id") || key.ends_with("Id") || key.ends_with("ID")
}

fn get<'v>(doc: &'v Value, path: &[Seg]) -> Option<&'v Value> {
    path.iter().try_fold(doc, |here, seg| match (here, seg) {
        (Value::Object(m), Seg::Key(k)) => m.get(k),
        (Value::Array(a), Seg::Index(i)) => a.get(*i),
        _ => None,
    })
}

fn at<'v>(doc: &'v mut Value, path: &[Seg]) -> Option<&'v mut Value> {
    let mut here = doc;
    for seg in path {
        here = match (here, seg) {
            (Value::Object(m), Seg::Key(k)) => m.get_mut(k)?,
            (Value::Array(a), Seg::Index(i)) => a.get_mut(*i)?,
            _ => return None,
        };
    }
    Some(here)
}

fn parent_of<'v, 'p>(doc: &'v mut Value, path: &'p [Seg]) -> Option<(&'v mut Value, &'p Seg)> {
    let (last, parent) = path.split_last()?;
    Some((at(doc, parent)?, last))
}

/// The name a failure must mention for a mutant of `path`: the last key.
fn field_name(path: &[Seg]) -> Option<&str> {
    path.iter().rev().find_map(|seg| match seg {
        Seg::Key(k) => Some(k.as_str()),
        Seg::Index(_) => None,
    })
}

/// One exchange of a provider: the request, and the fixtures of its steps.
struct Exchange {
    capability: &'static str,
    request: Request,
    steps: Vec<&'static Fixture>,
    answer: Value,
}

/// The fixture the emulator would serve for `req`: an exact path first,
/// then the longest `*` prefix.
fn fixture_for(provider: &dyn Provider, req: &HttpRequest) -> Option<&'static Fixture> {
    let path = req.url.split_once(BASE_URL)?.1;
    // A fragment (a provider's note to itself) is never sent.
    let path = path.split('#').next().unwrap_or_default();
    let path = if path.is_empty() { "/" } else { path };
    let fixtures = provider.fixtures();
    let same_method = |f: &&Fixture| f.method.eq_ignore_ascii_case(req.method.as_str());
    fixtures
        .iter()
        .filter(same_method)
        .find(|f| f.path == path)
        .or_else(|| {
            fixtures
                .iter()
                .filter(same_method)
                .filter_map(|f| Some((f, f.path.strip_suffix('*')?)))
                .filter(|(_, prefix)| path.starts_with(prefix))
                .max_by_key(|(_, prefix)| prefix.len())
                .map(|(f, _)| f)
        })
}

fn ctx() -> CallContext<'static> {
    CallContext {
        base_url: BASE_URL,
        user_agent: USER_AGENT,
    }
}

fn response(status: u16, body: &str, url: &str) -> HttpResponse {
    let mut headers = http::HeaderMap::new();
    headers.insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    HttpResponse {
        status,
        headers,
        body: bytes::Bytes::copy_from_slice(body.as_bytes()),
        received_at: "2025-01-15T14:05:00Z".parse().expect("a valid date"),
        url: url.to_string(),
    }
}

/// Runs the exchange, each step answered by its fixture, or by `mutated`'s
/// body at its step; `used` gets the fixtures served.
fn run(
    provider: &dyn Provider,
    request: &Request,
    mutated: Option<(usize, &str)>,
    used: &mut Vec<&'static Fixture>,
) -> Result<Data, String> {
    let mut http = provider
        .request(request, &ctx())
        .map_err(|f| format!("request: {f}"))?;
    for i in 0..8 {
        let fixture = fixture_for(provider, &http)
            .ok_or_else(|| format!("no fixture for {} {}", http.method, http.url))?;
        used.push(fixture);
        let text = match mutated {
            Some((step, body)) if step == i => body,
            _ => fixture.body,
        };
        match provider.response(request, &ctx(), response(fixture.status, text, &http.url)) {
            Ok(Step::Done(data)) => return Ok(data),
            Ok(Step::Next(next)) => http = next,
            Err(failure) => return Err(describe(&failure)),
        }
    }
    Err("more than 8 steps".into())
}

fn describe(failure: &ProviderFailure) -> String {
    format!("{}: {}", failure.class.as_str(), failure.message)
}

/// The exchange a sample request of `capability` goes through.
fn exchange(provider: &dyn Provider, capability: CapabilityId) -> Result<Exchange, String> {
    let mut samples = vec![common::example_params(capability)];
    // YouTube's fixture is of YouTube ids, which the sample's is not.
    if capability == CapabilityId::VideoDetails {
        samples.push(serde_json::json!({"id": "S9HdPi9Ikhk"}));
    }
    // Fixtures recorded for another base currency.
    if capability == CapabilityId::FxRates {
        samples.push(serde_json::json!({"base": "USD", "symbols": ["EUR"]}));
    }
    let mut why = String::new();
    for params in samples {
        match exchange_with(provider, capability, params) {
            Ok(exchange) => return Ok(exchange),
            Err(e) => why = e,
        }
    }
    Err(why)
}

fn exchange_with(
    provider: &dyn Provider,
    capability: CapabilityId,
    params: Value,
) -> Result<Exchange, String> {
    let request =
        Request::parse(capability.as_str(), params).map_err(|e| format!("sample request: {e}"))?;
    let mut steps = Vec::new();
    let data = run(provider, &request, None, &mut steps).map_err(|why| match steps.last() {
        Some(fixture) => format!("fixture {}: {why}", fixture.path),
        None => why,
    })?;
    Ok(Exchange {
        capability: capability.as_str(),
        request,
        steps,
        answer: data.to_json(),
    })
}

/// The label of the exchange of a chat request with tools.
const TOOLS_EXCHANGE: &str = "llm.chat (tools)";

/// Replies calling a tool, per provider. They answer the path of the plain
/// chat reply, so they are not among the fixtures the emulator serves by
/// default; the OpenAI-compatible providers share OpenAI's.
fn tool_reply(id: &str) -> Option<&'static Fixture> {
    const fn reply(body: &'static str) -> Fixture {
        Fixture {
            method: "POST",
            path: "(tool call)",
            status: 200,
            body,
        }
    }
    static OPENAI: Fixture = reply(include_str!(
        "../src/providers/fixtures/openai/chat_tool_calls.json"
    ));
    static ANTHROPIC: Fixture = reply(include_str!(
        "../src/providers/fixtures/anthropic/message_tool_use.json"
    ));
    static GEMINI: Fixture = reply(include_str!(
        "../src/providers/fixtures/gemini/generate_function_call.json"
    ));
    static COHERE: Fixture = reply(include_str!(
        "../src/providers/fixtures/cohere/chat_tool_calls.json"
    ));
    static OLLAMA: Fixture = reply(include_str!(
        "../src/providers/fixtures/ollama/chat_tool_calls.json"
    ));
    match id {
        "openai" | "groq" | "mistral" | "deepseek" | "openrouter" | "together" => Some(&OPENAI),
        "anthropic" => Some(&ANTHROPIC),
        "gemini" => Some(&GEMINI),
        "cohere" => Some(&COHERE),
        "ollama" => Some(&OLLAMA),
        _ => None,
    }
}

/// The exchange of a chat request with tools answered by the provider's
/// tool-call reply, for the providers that have one.
fn tool_exchange(provider: &dyn Provider) -> Option<Result<Exchange, String>> {
    let fixture = tool_reply(provider.info().id)?;
    let mut params = common::example_params(CapabilityId::LlmChat);
    params["tools"] =
        serde_json::json!([{"name": "get_weather", "parameters": {"type": "object"}}]);
    let request = match Request::parse(CapabilityId::LlmChat.as_str(), params) {
        Ok(request) => request,
        Err(e) => return Some(Err(format!("sample request: {e}"))),
    };
    let answer = run(provider, &request, Some((0, fixture.body)), &mut Vec::new());
    Some(answer.map(|data| Exchange {
        capability: TOOLS_EXCHANGE,
        request,
        steps: vec![fixture],
        answer: data.to_json(),
    }))
}

/// What a mutant led to, judged.
enum Verdict {
    /// Same facts (less optional ones where allowed).
    Same,
    /// Failed as malformed, naming the field: the field is required.
    Required,
    Defect(String),
}

fn judge(exchange: &Exchange, mutant: &Mutant, result: Result<Data, String>) -> Verdict {
    let lenient = matches!(mutant.kind, Kind::Drop | Kind::Null | Kind::Empty);
    match result {
        Ok(data) => {
            let answer = data.to_json();
            let mismatch = if lenient {
                covers(&exchange.answer, &answer, &mutant.removed, "")
            } else if answer == exchange.answer {
                None
            } else {
                Some(format!(
                    "a different answer: {}",
                    diff(&exchange.answer, &answer, "")
                ))
            };
            match mismatch {
                None => Verdict::Same,
                Some(why) => Verdict::Defect(why),
            }
        }
        Err(failure) => {
            let named = field_name(&mutant.path).is_some_and(|name| failure.contains(name));
            if lenient && failure.starts_with(FailureClass::MalformedResponse.as_str()) && named {
                Verdict::Required
            } else if lenient && failure.starts_with(FailureClass::NotFound.as_str()) {
                // The mutant removed what was asked for (the rate, the only
                // result): "nothing found" is the honest answer.
                Verdict::Same
            } else {
                Verdict::Defect(format!("failed: {failure}"))
            }
        }
    }
}

/// Whether `got` has every fact of `want` after a mutant took data away:
/// a fact may have become `null` or gone missing (optional), a list may have
/// lost one item, the items made from the removed data (a group of related
/// topics, the brands of a drug) or all of them (its source is gone), and a
/// text derived from what was removed may fall back to another (a PubMed
/// link to a DOI link) or lose the removed word. `None` when it does; else
/// where not.
fn covers(want: &Value, got: &Value, removed: &[String], at: &str) -> Option<String> {
    match (want, got) {
        (_, Value::Null) => None,
        (Value::Object(w), Value::Object(g)) => w.iter().find_map(|(k, wv)| {
            let here = format!("{at}.{k}");
            match g.get(k) {
                None => None,
                Some(gv) => covers(wv, gv, removed, &here),
            }
        }),
        (Value::Array(w), Value::Array(g)) => {
            if g.is_empty() {
                return None;
            }
            if g.len() == w.len() {
                return w
                    .iter()
                    .zip(g)
                    .enumerate()
                    .find_map(|(i, (wv, gv))| covers(wv, gv, removed, &format!("{at}[{i}]")));
            }
            if g.len() > w.len() {
                return Some(format!("{at}: {} items instead of {}", g.len(), w.len()));
            }
            // Any one item left out (the one the mutant broke), or any
            // number of items made from the removed data.
            let any_one = g.len() + 1 == w.len() && leaves_out(w, g, &|_| true, removed, at);
            let made_from_removed =
                || leaves_out(w, g, &|item| derived_item(item, removed), removed, at);
            (!any_one && !made_from_removed()).then(|| {
                format!(
                    "{at}: {} items instead of {}, or an item changed besides those left out",
                    g.len(),
                    w.len()
                )
            })
        }
        (Value::String(w), Value::String(g))
            if !g.is_empty() && (derived(w, removed) || less_a_removed_word(w, g, removed)) =>
        {
            None
        }
        (w, g) if w == g => None,
        (w, g) => Some(format!("{at}: {g} instead of {w}")),
    }
}

/// Where two answers first differ, for the report.
fn diff(want: &Value, got: &Value, at: &str) -> String {
    match (want, got) {
        (Value::Object(w), Value::Object(g)) => {
            let keys: BTreeSet<&String> = w.keys().chain(g.keys()).collect();
            for k in keys {
                let (wv, gv) = (w.get(k), g.get(k));
                if wv != gv {
                    return match (wv, gv) {
                        (Some(wv), Some(gv)) => diff(wv, gv, &format!("{at}.{k}")),
                        _ => format!("{at}.{k}: {gv:?} instead of {wv:?}"),
                    };
                }
            }
            format!("{at}: equal")
        }
        (Value::Array(w), Value::Array(g)) if w.len() == g.len() => w
            .iter()
            .zip(g)
            .enumerate()
            .find(|(_, (wv, gv))| wv != gv)
            .map(|(i, (wv, gv))| diff(wv, gv, &format!("{at}[{i}]")))
            .unwrap_or_else(|| format!("{at}: equal")),
        (w, g) => format!("{at}: {g} instead of {w}"),
    }
}

/// A mutant the provider did not read as it should.
struct Defect {
    exchange: String,
    kind: Kind,
    path: String,
    why: String,
}

impl Defect {
    /// Its line in the known-defects file.
    fn line(&self) -> String {
        format!("{} | {} | {}", self.exchange, self.kind, self.path)
    }
}

#[derive(Default)]
struct Report {
    provider: &'static str,
    counts: BTreeMap<Kind, usize>,
    required: BTreeSet<String>,
    not_json: Vec<String>,
    defects: Vec<Defect>,
}

impl Report {
    fn mutants(&self) -> usize {
        self.counts.values().sum()
    }

    fn table(defects: &[&Defect]) -> String {
        let mut lines = vec![format!(
            "  | {:<22} | {:<7} | {:<40} | outcome",
            "exchange", "mutant", "field"
        )];
        for d in defects {
            let why: String = d.why.chars().take(160).collect();
            lines.push(format!(
                "  | {:<22} | {:<7} | {:<40} | {why}",
                d.exchange,
                d.kind.to_string(),
                d.path
            ));
        }
        lines.join("\n")
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let counts: Vec<String> = self
            .counts
            .iter()
            .map(|(k, n)| format!("{k} {n}"))
            .collect();
        write!(
            f,
            "{:<24} {:>5} mutants ({}); required: {}; defects {}",
            self.provider,
            self.mutants(),
            counts.join(", "),
            if self.required.is_empty() {
                "none".to_string()
            } else {
                self.required.iter().cloned().collect::<Vec<_>>().join(", ")
            },
            self.defects.len()
        )?;
        for note in &self.not_json {
            write!(f, "\n  not mutated: {note}")?;
        }
        Ok(())
    }
}

fn check(provider: &dyn Provider) -> Report {
    let info = provider.info();
    let mut report = Report {
        provider: info.id,
        ..Report::default()
    };
    let mut exchanges = Vec::new();
    for capability in provider.capabilities() {
        match exchange(provider, *capability) {
            Ok(exchange) => exchanges.push(exchange),
            Err(why) => report.defects.push(Defect {
                exchange: capability.as_str().to_string(),
                kind: Kind::Unknown,
                path: "(no exchange)".into(),
                why: format!("the fixture does not answer the sample request: {why}"),
            }),
        }
    }
    if let Some(tools) = tool_exchange(provider) {
        match tools {
            Ok(exchange) => exchanges.push(exchange),
            Err(why) => report.defects.push(Defect {
                exchange: TOOLS_EXCHANGE.to_string(),
                kind: Kind::Unknown,
                path: "(no exchange)".into(),
                why: format!("the tool-call reply does not answer the sample request: {why}"),
            }),
        }
    }
    for exchange in exchanges {
        for (step, fixture) in exchange.steps.iter().enumerate() {
            let label = if exchange.steps.len() > 1 {
                format!("{} step {}", exchange.capability, step + 1)
            } else {
                exchange.capability.to_string()
            };
            let Ok(doc) = serde_json::from_str::<Value>(fixture.body) else {
                report
                    .not_json
                    .push(format!("{label}: {} is not JSON", fixture.path));
                continue;
            };
            for mutant in mutants(&doc) {
                *report.counts.entry(mutant.kind).or_default() += 1;
                let body = mutant.body.to_string();
                let result = catch_unwind(AssertUnwindSafe(|| {
                    run(
                        provider,
                        &exchange.request,
                        Some((step, &body)),
                        &mut Vec::new(),
                    )
                }))
                .unwrap_or_else(|_| Err("panicked".into()));
                match judge(&exchange, &mutant, result) {
                    Verdict::Same => {}
                    Verdict::Required => {
                        report.required.insert(path_text(&mutant.path));
                    }
                    Verdict::Defect(why) => report.defects.push(Defect {
                        exchange: label.clone(),
                        kind: mutant.kind,
                        path: path_text(&mutant.path),
                        why,
                    }),
                }
            }
        }
    }
    report
}
