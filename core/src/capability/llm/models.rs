//! Prices and context windows of LLM models, and what an answer cost.
//!
//! The table ships as `core/data/llm_models.toml` (its date and sources at
//! the top), compiled in and parsed once, on first use. The configuration's
//! `[models."provider/model"]` tables override it field by field, or add
//! models it does not know (a self-hosted OpenAI-compatible server):
//!
//! ```toml
//! [models."openai/gpt-4o-mini"]
//! input_per_mtok = 0.15
//! output_per_mtok = 0.60
//!
//! [models."my-vllm/llama-3.3-70b"]
//! input_per_mtok = 0.0
//! output_per_mtok = 0.0
//! context_window = 32768
//! ```
//!
//! # Finding a model
//!
//! Entries are per provider and per model id as that provider names it.
//! Replies name their model in several forms, so [`ModelTable::lookup`]
//! tries, in order, and answers `None` when nothing matches:
//!
//! 1. the id as given, without regard to case;
//! 2. without a `models/` prefix (Gemini's `models/gemini-2.5-flash`);
//! 3. without a trailing date snapshot, `-YYYY-MM-DD` (OpenAI's
//!    `gpt-4o-mini-2024-07-18`) or `-YYYYMMDD` (Anthropic's
//!    `claude-haiku-4-5-20251001`);
//! 4. the provider's wildcards: `*<suffix>` for ids ending in the suffix,
//!    longest first (OpenRouter's `*:free`), then `*` for any model
//!    (Ollama, which runs models locally at no charge).
//!
//! # What an answer cost
//!
//! [`ModelInfo::chat_cost`]: prompt tokens read from the provider's prompt
//! cache at the cached price (the input price when the table has none), the
//! rest of the prompt at the input price, generated tokens (reasoning
//! included) at the output price. Embeddings: input tokens at the input
//! price. An unknown model, an unknown price or usage the provider did not
//! report gives `None`, never a guessed 0; a model known to be free gives 0.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::LazyLock;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{ChatQuery, EmbeddingUsage, TokenUsage};
use crate::capability::Data;

/// The shipped table, as compiled in.
const SHIPPED_TOML: &str = include_str!("../../../data/llm_models.toml");

/// Tokens in a million, the unit prices are quoted per.
const MTOK: f64 = 1_000_000.0;

/// What is known of one model: prices in US dollars per million tokens and
/// its limits. Every field is optional: what could not be sourced is absent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelInfo {
    /// Price of a prompt token (for embeddings: of an embedded token).
    pub input_per_mtok: Option<f64>,
    /// Price of a generated token, reasoning included.
    pub output_per_mtok: Option<f64>,
    /// Price of a prompt token read from the provider's prompt cache.
    pub cached_input_per_mtok: Option<f64>,
    /// Most tokens a request may hold (prompt and answer together, as the
    /// provider counts them); for an embedding model, one input's.
    pub context_window: Option<u64>,
    /// Most tokens one answer may hold.
    pub max_output_tokens: Option<u64>,
}

impl ModelInfo {
    /// Reads an entry (of the data file or of `[models."provider/model"]`);
    /// the error names the offending field.
    pub(crate) fn from_value(value: Value) -> Result<Self, String> {
        let info: Self = serde_json::from_value(value).map_err(|e| e.to_string())?;
        let prices = [
            ("input_per_mtok", info.input_per_mtok),
            ("output_per_mtok", info.output_per_mtok),
            ("cached_input_per_mtok", info.cached_input_per_mtok),
        ];
        for (field, price) in prices {
            if price.is_some_and(|p| !p.is_finite() || p < 0.0) {
                return Err(format!("{field} must be a number of dollars, 0 or more"));
            }
        }
        if info.context_window == Some(0) {
            return Err("context_window must be at least 1".into());
        }
        if info.max_output_tokens == Some(0) {
            return Err("max_output_tokens must be at least 1".into());
        }
        Ok(info)
    }

    /// `over`'s fields where it has them, this entry's elsewhere.
    fn overridden_by(self, over: ModelInfo) -> ModelInfo {
        ModelInfo {
            input_per_mtok: over.input_per_mtok.or(self.input_per_mtok),
            output_per_mtok: over.output_per_mtok.or(self.output_per_mtok),
            cached_input_per_mtok: over.cached_input_per_mtok.or(self.cached_input_per_mtok),
            context_window: over.context_window.or(self.context_window),
            max_output_tokens: over.max_output_tokens.or(self.max_output_tokens),
        }
    }

    /// What a chat answer with `usage` cost, in US dollars; `None` when a
    /// price or a count it needs is unknown.
    ///
    /// ```
    /// use polyrelay::capability::llm::{models::ModelInfo, TokenUsage};
    /// let model = ModelInfo {
    ///     input_per_mtok: Some(1.0),
    ///     cached_input_per_mtok: Some(0.1),
    ///     output_per_mtok: Some(5.0),
    ///     ..ModelInfo::default()
    /// };
    /// let mut usage = TokenUsage::new(Some(1_000_000), Some(100_000));
    /// usage.cached_input_tokens = Some(400_000);
    /// // 600k fresh at $1, 400k cached at $0.10, 100k out at $5.
    /// assert!((model.chat_cost(&usage).unwrap() - 1.14).abs() < 1e-9);
    /// ```
    pub fn chat_cost(&self, usage: &TokenUsage) -> Option<f64> {
        let input = usage.input_tokens?;
        let output = usage.output_tokens?;
        let input_price = self.input_per_mtok?;
        let output_price = self.output_per_mtok?;
        let cached = usage.cached_input_tokens.unwrap_or(0).min(input);
        let cached_price = self.cached_input_per_mtok.unwrap_or(input_price);
        Some(
            ((input - cached) as f64 * input_price
                + cached as f64 * cached_price
                + output as f64 * output_price)
                / MTOK,
        )
    }

    /// What an embeddings answer with `usage` cost, in US dollars; `None`
    /// when the price or the count is unknown.
    pub fn embeddings_cost(&self, usage: &EmbeddingUsage) -> Option<f64> {
        Some(usage.input_tokens? as f64 * self.input_per_mtok? / MTOK)
    }
}

/// One provider's entries.
#[derive(Debug, Clone, Default)]
struct ProviderModels {
    /// By lower-case model id. Looked up at the end of every LLM call:
    /// foldhash, not SipHash (only the shipped table and the configuration
    /// insert keys).
    exact: HashMap<String, ModelInfo, foldhash::fast::RandomState>,
    /// `*<suffix>` entries, longest suffix first (`*` alone last).
    wildcards: Vec<(String, ModelInfo)>,
}

impl ProviderModels {
    fn insert(&mut self, model: &str, info: ModelInfo) {
        match model.strip_prefix('*') {
            Some(suffix) => {
                let suffix = suffix.to_ascii_lowercase();
                match self.wildcards.iter_mut().find(|(s, _)| *s == suffix) {
                    Some((_, known)) => *known = known.overridden_by(info),
                    None => {
                        self.wildcards.push((suffix, info));
                        self.wildcards
                            .sort_by_key(|(s, _)| std::cmp::Reverse(s.len()));
                    }
                }
            }
            None => {
                let known = self.exact.entry(model.to_ascii_lowercase()).or_default();
                *known = known.overridden_by(info);
            }
        }
    }
}

/// Model prices and limits by provider and model: the shipped table, with
/// the configuration's overrides once a client is built. See the module
/// docs for how a model is found.
#[derive(Debug, Clone, Default)]
pub struct ModelTable {
    providers: HashMap<String, ProviderModels, foldhash::fast::RandomState>,
    as_of: String,
}

static SHIPPED: LazyLock<ModelTable> = LazyLock::new(|| {
    ModelTable::parse(SHIPPED_TOML).unwrap_or_else(|e| {
        // A test parses the file; this is only reached by a broken build.
        tracing::error!("the shipped model table does not parse: {e}");
        ModelTable::default()
    })
});

impl ModelTable {
    /// The table shipped with polyrelay, parsed on first use.
    pub fn shipped() -> &'static ModelTable {
        &SHIPPED
    }

    /// The date the table's numbers were read from their sources
    /// (`YYYY-MM-DD`).
    pub fn as_of(&self) -> &str {
        &self.as_of
    }

    /// Reads the data file's form: `as_of`, `sources`, then one table per
    /// provider of entries by model id, each with an optional `source`.
    fn parse(text: &str) -> Result<Self, String> {
        let value: toml::Value = toml::from_str(text).map_err(|e| e.to_string())?;
        let Value::Object(mut top) = serde_json::to_value(value).map_err(|e| e.to_string())? else {
            return Err("not a table".into());
        };
        let as_of = match top.remove("as_of") {
            Some(Value::String(date)) => date,
            _ => return Err("as_of must be the date of the numbers".into()),
        };
        match top.remove("sources") {
            Some(Value::Array(urls)) if !urls.is_empty() && urls.iter().all(Value::is_string) => {}
            _ => return Err("sources must list the URLs the numbers come from".into()),
        }
        let mut table = ModelTable {
            as_of,
            ..ModelTable::default()
        };
        for (provider, models) in top {
            let Value::Object(models) = models else {
                return Err(format!("{provider} must be a table of models"));
            };
            for (model, entry) in models {
                let Value::Object(mut entry) = entry else {
                    return Err(format!("{provider}.{model} must be a table"));
                };
                if !matches!(entry.remove("source"), None | Some(Value::String(_))) {
                    return Err(format!("{provider}.{model}.source must be a URL"));
                }
                let info = ModelInfo::from_value(Value::Object(entry))
                    .map_err(|e| format!("{provider}.{model}: {e}"))?;
                table.insert(&provider, &model, info);
            }
        }
        Ok(table)
    }

    /// Sets `provider`'s `model` (`*…` for a wildcard), over what is known
    /// of it field by field.
    pub(crate) fn insert(&mut self, provider: &str, model: &str, info: ModelInfo) {
        self.providers
            .entry(provider.to_string())
            .or_default()
            .insert(model, info);
    }

    /// What is known of `provider`'s `model`, found as the module docs say.
    ///
    /// ```
    /// use polyrelay::capability::llm::models::ModelTable;
    /// let table = ModelTable::shipped();
    /// let dated = table.lookup("openai", "gpt-4o-mini-2024-07-18").unwrap();
    /// assert_eq!(dated, table.lookup("openai", "gpt-4o-mini").unwrap());
    /// assert!(table.lookup("openai", "no-such-model").is_none());
    /// ```
    pub fn lookup(&self, provider: &str, model: &str) -> Option<ModelInfo> {
        let models = self.providers.get(provider)?;
        let model = model.trim();
        // Replies mostly name their model in lower case: no copy then.
        let model: Cow<'_, str> = if model.bytes().any(|b| b.is_ascii_uppercase()) {
            Cow::Owned(model.to_ascii_lowercase())
        } else {
            Cow::Borrowed(model)
        };
        let unprefixed = model.strip_prefix("models/").unwrap_or(&model);
        let undated = without_date(unprefixed);
        let found = [&*model, unprefixed, undated]
            .into_iter()
            .find_map(|id| models.exact.get(id))
            .or_else(|| {
                models
                    .wildcards
                    .iter()
                    .find(|(suffix, _)| unprefixed.ends_with(suffix.as_str()))
                    .map(|(_, info)| info)
            });
        found.copied()
    }

    /// What `provider`'s answer `data` cost, in US dollars: `None` for an
    /// answer that is not an LLM's, an unknown model, an unknown price or
    /// unreported usage.
    pub fn cost(&self, provider: &str, data: &Data) -> Option<f64> {
        self.spend(provider, data).and_then(|spend| spend.cost_usd)
    }

    /// The tokens and cost of `provider`'s answer `data`; `None` for an
    /// answer that is not an LLM's.
    pub(crate) fn spend(&self, provider: &str, data: &Data) -> Option<Spend> {
        match data {
            Data::LlmChat(reply) => Some(Spend {
                input_tokens: reply.usage.input_tokens,
                output_tokens: reply.usage.output_tokens,
                cost_usd: self
                    .lookup(provider, &reply.model)
                    .and_then(|m| m.chat_cost(&reply.usage)),
            }),
            Data::LlmEmbeddings(embeddings) => Some(Spend {
                input_tokens: embeddings.usage.input_tokens,
                output_tokens: Some(0),
                cost_usd: self
                    .lookup(provider, &embeddings.model)
                    .and_then(|m| m.embeddings_cost(&embeddings.usage)),
            }),
            _ => None,
        }
    }
}

/// What one LLM answer took and cost, as far as known.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Spend {
    pub input_tokens: Option<u64>,
    pub output_tokens: Option<u64>,
    pub cost_usd: Option<f64>,
}

/// `model` without a trailing `-YYYY-MM-DD` or `-YYYYMMDD` snapshot date
/// (unchanged when it has none).
fn without_date(model: &str) -> &str {
    // Bytes, not `str` slices: a name from a reply may hold any character,
    // and the cut is made only after an ASCII date, on a boundary.
    let is_date = |s: &[u8]| {
        let digit_at = |i: usize| s[i].is_ascii_digit();
        let shape_ok = match s.len() {
            10 => {
                s[4] == b'-' && s[7] == b'-' && [0, 1, 2, 3, 5, 6, 8, 9].into_iter().all(digit_at)
            }
            8 => (0..8).all(digit_at),
            _ => false,
        };
        shape_ok && (s.starts_with(b"19") || s.starts_with(b"20"))
    };
    let bytes = model.as_bytes();
    for len in [10, 8] {
        if bytes.len() > len + 1 {
            let cut = bytes.len() - len;
            if bytes[cut - 1] == b'-' && is_date(&bytes[cut..]) {
                return &model[..cut - 1];
            }
        }
    }
    model
}

/// Tokens `text` will likely take: a quarter of its characters, rounded up
/// (OpenAI's rule of thumb for English text; code and most other scripts
/// take more tokens per character, so this underestimates them). Meant for
/// budgets and context-window checks before a request is sent, where the
/// provider's count is not known yet; reported usage replaces it after.
///
/// ```
/// use polyrelay::capability::llm::models::estimate_tokens;
/// assert_eq!(estimate_tokens(""), 0);
/// assert_eq!(estimate_tokens("Hello, world"), 3);
/// ```
pub fn estimate_tokens(text: &str) -> u64 {
    (text.chars().count() as u64).div_ceil(4)
}

/// Framing tokens counted per message (role and separators), as OpenAI's
/// counting guide does for its chat format.
const TOKENS_PER_MESSAGE: u64 = 4;

/// Prompt tokens `query` will likely take ([`estimate_tokens`] of every
/// message's text, tool call and tool schema, plus [`TOKENS_PER_MESSAGE`]
/// per message), and the most it may take with its answer: that plus
/// `max_tokens` when the request sets one.
pub fn estimate_chat_tokens(query: &ChatQuery) -> (u64, Option<u64>) {
    let messages: u64 = query
        .messages
        .iter()
        .map(|m| {
            let calls: u64 = m
                .tool_calls
                .iter()
                .map(|c| estimate_tokens(&c.name) + estimate_tokens(&c.arguments))
                .sum();
            TOKENS_PER_MESSAGE + estimate_tokens(&m.content) + calls
        })
        .sum();
    let tools: u64 = query
        .tools
        .iter()
        .map(|t| {
            estimate_tokens(&t.name)
                + t.description.as_deref().map_or(0, estimate_tokens)
                + estimate_tokens(t.parameters.as_str())
        })
        .sum();
    let prompt = messages + tools;
    (prompt, query.max_tokens.map(|m| prompt + u64::from(m)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capability::llm::{ChatReply, Embeddings};
    use crate::capability::Request;
    use serde_json::json;

    fn info(input: f64, cached: Option<f64>, output: f64) -> ModelInfo {
        ModelInfo {
            input_per_mtok: Some(input),
            cached_input_per_mtok: cached,
            output_per_mtok: Some(output),
            ..ModelInfo::default()
        }
    }

    #[test]
    fn shipped_table_parses_and_is_consistent() {
        let table = ModelTable::parse(SHIPPED_TOML).unwrap();
        assert_eq!(table.as_of(), ModelTable::shipped().as_of());
        assert!(chrono::NaiveDate::parse_from_str(table.as_of(), "%Y-%m-%d").is_ok());
        // Every LLM provider of the registry has entries, each default model
        // among them (OpenRouter's through its `:free` wildcard).
        for (provider, model) in [
            ("openai", "gpt-4o-mini"),
            ("openai", "text-embedding-3-small"),
            ("anthropic", "claude-haiku-4-5"),
            ("gemini", "gemini-2.5-flash"),
            ("gemini", "gemini-embedding-001"),
            ("cohere", "command-r-08-2024"),
            ("cohere", "embed-v4.0"),
            ("mistral", "mistral-small-latest"),
            ("mistral", "mistral-embed"),
            ("groq", "llama-3.3-70b-versatile"),
            ("deepseek", "deepseek-chat"),
            ("together", "meta-llama/Llama-3.3-70B-Instruct-Turbo"),
            ("openrouter", "meta-llama/llama-3.3-70b-instruct:free"),
            ("ollama", "llama3.2"),
        ] {
            let known = table.lookup(provider, model);
            assert!(
                known.is_some_and(|m| m.input_per_mtok.is_some()),
                "{provider}/{model}"
            );
        }
        for (provider, models) in &table.providers {
            assert!(
                crate::providers::builtin()
                    .iter()
                    .any(|p| p.info().id == provider),
                "{provider} is no provider"
            );
            for (model, m) in models
                .exact
                .iter()
                .chain(models.wildcards.iter().map(|(s, m)| (s, m)))
            {
                // A cached token never costs more than a fresh one; an
                // answer never fits more than the window.
                if let (Some(cached), Some(input)) = (m.cached_input_per_mtok, m.input_per_mtok) {
                    assert!(cached <= input, "{provider}/{model}");
                }
                if let (Some(window), Some(out)) = (m.context_window, m.max_output_tokens) {
                    assert!(out <= window, "{provider}/{model}");
                }
                assert!(m.cached_input_per_mtok.is_none() || m.input_per_mtok.is_some());
            }
        }
    }

    #[test]
    fn the_data_file_refuses_entries_it_cannot_read() {
        let head = "as_of = \"2026-01-01\"\nsources = [\"https://example.com\"]\n";
        for (body, names) in [
            ("[openai.x]\ninput_per_mtk = 1.0\n", "input_per_mtk"),
            ("[openai.x]\ninput_per_mtok = -1.0\n", "input_per_mtok"),
            ("[openai.x]\ncontext_window = 0\n", "context_window"),
            ("[openai.x]\nsource = 3\n", "source"),
        ] {
            let error = ModelTable::parse(&format!("{head}{body}")).unwrap_err();
            assert!(
                error.contains(names) && error.contains("openai.x"),
                "{error}"
            );
        }
        assert!(ModelTable::parse("[openai.x]\ninput_per_mtok = 1.0\n")
            .unwrap_err()
            .contains("as_of"));
    }

    #[test]
    fn lookup_finds_the_names_replies_carry() {
        let table = ModelTable::shipped();
        let mini = table.lookup("openai", "gpt-4o-mini").unwrap();
        assert_eq!(mini.input_per_mtok, Some(0.15));
        assert_eq!(table.lookup("openai", "gpt-4o-mini-2024-07-18"), Some(mini));
        assert_eq!(table.lookup("openai", "GPT-4o-Mini"), Some(mini));
        let haiku = table.lookup("anthropic", "claude-haiku-4-5").unwrap();
        assert_eq!(
            table.lookup("anthropic", "claude-haiku-4-5-20251001"),
            Some(haiku)
        );
        let flash = table.lookup("gemini", "gemini-2.5-flash").unwrap();
        assert_eq!(
            table.lookup("gemini", "models/gemini-2.5-flash"),
            Some(flash)
        );
        // OpenRouter's vendor/model ids, and its free variants.
        assert_eq!(
            table
                .lookup("openrouter", "openai/gpt-4.1-mini")
                .unwrap()
                .output_per_mtok,
            Some(1.6)
        );
        let free = table.lookup("openrouter", "qwen/qwen3-coder:free").unwrap();
        assert_eq!(
            (free.input_per_mtok, free.output_per_mtok),
            (Some(0.0), Some(0.0))
        );
        assert!(table.lookup("openrouter", "qwen/qwen3-coder").is_none());
        // The same open model costs what its host charges.
        let groq = table.lookup("groq", "llama-3.3-70b-versatile").unwrap();
        let together = table
            .lookup("together", "meta-llama/Llama-3.3-70B-Instruct-Turbo")
            .unwrap();
        assert_ne!(groq.input_per_mtok, together.input_per_mtok);
        // Ollama: anything, at no charge, window unknown.
        let local = table.lookup("ollama", "qwen2.5:7b").unwrap();
        assert_eq!(local.output_per_mtok, Some(0.0));
        assert_eq!(local.context_window, None);
        // Unknown model, unknown provider, a date that is not one.
        assert!(table.lookup("openai", "gpt-9").is_none());
        assert!(table.lookup("nope", "gpt-4o-mini").is_none());
        assert!(table.lookup("openai", "gpt-4o-mini-12345678").is_none());
    }

    #[test]
    fn dates_are_only_snapshot_dates() {
        assert_eq!(without_date("gpt-4o-2024-08-06"), "gpt-4o");
        assert_eq!(without_date("claude-opus-4-1-20250805"), "claude-opus-4-1");
        assert_eq!(without_date("command-r-08-2024"), "command-r-08-2024");
        assert_eq!(without_date("20250805"), "20250805");
        assert_eq!(without_date("x-2024-0806"), "x-2024-0806");
        // A name from a reply may hold any character: no cut inside one
        // (here the 8th and 10th bytes from the end are inside a two-byte
        // letter).
        for name in ["жжжжжжжжжжx", "жжжжжжжжж-x", "x-жжжж"] {
            assert_eq!(without_date(name), name);
        }
        assert_eq!(ModelTable::shipped().lookup("openai", "ЖЖЖЖЖЖЖЖЖЖx"), None);
    }

    #[test]
    fn overrides_change_fields_and_add_models() {
        let mut table = ModelTable::shipped().clone();
        table.insert(
            "openai",
            "gpt-4o-mini",
            ModelInfo {
                output_per_mtok: Some(1.0),
                ..ModelInfo::default()
            },
        );
        table.insert(
            "my-vllm",
            "llama",
            ModelInfo {
                context_window: Some(32768),
                ..ModelInfo::default()
            },
        );
        let mini = table.lookup("openai", "gpt-4o-mini-2024-07-18").unwrap();
        assert_eq!(
            (mini.input_per_mtok, mini.output_per_mtok),
            (Some(0.15), Some(1.0))
        );
        let own = table.lookup("my-vllm", "llama").unwrap();
        assert_eq!(own.context_window, Some(32768));
        assert_eq!(own.input_per_mtok, None);
        // The shipped table is untouched.
        assert_eq!(
            ModelTable::shipped()
                .lookup("openai", "gpt-4o-mini")
                .unwrap()
                .output_per_mtok,
            Some(0.6)
        );
    }

    #[test]
    fn cost_bills_cached_tokens_at_the_cached_price() {
        let mut usage = TokenUsage::new(Some(2_000), Some(500));
        usage.cached_input_tokens = Some(1_500);
        let model = info(1.0, Some(0.1), 5.0);
        // 500 fresh × $1 + 1500 cached × $0.10 + 500 out × $5, per million.
        let expected = (500.0 + 150.0 + 2_500.0) / 1e6;
        assert!((model.chat_cost(&usage).unwrap() - expected).abs() < 1e-15);
        // No cached price: cached tokens at the input price.
        let plain = info(1.0, None, 5.0);
        assert!((plain.chat_cost(&usage).unwrap() - 4_500.0 / 1e6).abs() < 1e-15);
        // More cached than prompt tokens (a provider's miscount) is capped.
        usage.cached_input_tokens = Some(9_999);
        assert!((model.chat_cost(&usage).unwrap() - 2_700.0 / 1e6).abs() < 1e-15);
    }

    #[test]
    fn unknown_usage_or_price_costs_nothing_known() {
        let model = info(1.0, None, 5.0);
        assert_eq!(model.chat_cost(&TokenUsage::new(None, Some(3))), None);
        assert_eq!(model.chat_cost(&TokenUsage::new(Some(3), None)), None);
        let no_output_price = ModelInfo {
            input_per_mtok: Some(1.0),
            ..ModelInfo::default()
        };
        assert_eq!(
            no_output_price.chat_cost(&TokenUsage::new(Some(3), Some(3))),
            None
        );
        assert_eq!(
            model.embeddings_cost(&EmbeddingUsage { input_tokens: None }),
            None
        );
        let free = info(0.0, None, 0.0);
        assert_eq!(
            free.chat_cost(&TokenUsage::new(Some(3), Some(3))),
            Some(0.0)
        );
    }

    #[test]
    fn an_answer_is_priced_by_its_provider_and_model() {
        let table = ModelTable::shipped();
        let reply = |model: &str| {
            Data::LlmChat(ChatReply {
                id: None,
                model: model.into(),
                text: "Paris.".into(),
                tool_calls: Vec::new(),
                reasoning: None,
                finish_reason: None,
                usage: TokenUsage::new(Some(1_000_000), Some(1_000_000)),
                parsed: None,
            })
        };
        let cost = table
            .cost("openai", &reply("gpt-4o-mini-2024-07-18"))
            .unwrap();
        assert!((cost - 0.75).abs() < 1e-12);
        assert_eq!(table.cost("openai", &reply("unknown-model")), None);
        let embeddings = Data::LlmEmbeddings(
            Embeddings::new(
                "openai",
                "text-embedding-3-small".into(),
                vec![vec![0.5]],
                1,
                EmbeddingUsage {
                    input_tokens: Some(1_000_000),
                },
            )
            .unwrap(),
        );
        assert!((table.cost("openai", &embeddings).unwrap() - 0.02).abs() < 1e-12);
    }

    #[test]
    fn token_estimates_count_a_quarter_of_the_characters() {
        assert_eq!(estimate_tokens("abcd"), 1);
        assert_eq!(estimate_tokens("abcde"), 2);
        // Characters, not bytes.
        assert_eq!(estimate_tokens("éééé"), 1);
        let Request::LlmChat(query) = Request::parse(
            "llm.chat",
            json!({
                "messages": [
                    {"role": "system", "content": "Be brief."},
                    {"role": "user", "content": "Capital of France?"}
                ],
                "max_tokens": 10
            }),
        )
        .unwrap() else {
            unreachable!()
        };
        // (4 + 3) + (4 + 5) prompt tokens, then 10 more for the answer.
        assert_eq!(estimate_chat_tokens(&query), (16, Some(26)));
    }
}
