//! The native client behind `polyrelay.Client` and `polyrelay.AsyncClient`.

use std::collections::BTreeMap;
use std::path::PathBuf;

use parking_lot::RwLock;
use polyrelay::config::ConfigSource;
use polyrelay::{CapabilityId, Error, Request};
use pyo3::prelude::*;
use pyo3::types::PyDict;
use serde_json::Value;

use crate::batch::{Batch, BatchProgress};
use crate::clock::FakeClock;
use crate::result::CallResult;
use crate::stream::{AsyncChatStream, ChatStream};
use crate::{assistant, bridge, convert, errors, logs};

/// One polyrelay client: providers, breakers, limits and cache, shared by
/// every thread and task that uses it.
#[pyclass(module = "polyrelay._native", name = "Client", frozen)]
pub(crate) struct Client {
    inner: RwLock<Option<polyrelay::Client>>,
}

impl Client {
    /// The core client, or `UsageError` once closed.
    fn core(&self, py: Python<'_>) -> PyResult<polyrelay::Client> {
        self.inner.read().clone().ok_or_else(|| {
            errors::to_py(
                py,
                Error::Usage {
                    message: "this polyrelay client is closed".to_string(),
                },
            )
        })
    }

    /// Validates a call before anything is sent.
    pub(crate) fn request(
        py: Python<'_>,
        capability: &str,
        params: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Request> {
        let params = convert::optional_params(py, params)?;
        Request::parse(capability, params).map_err(|e| errors::to_py(py, e))
    }

    /// [`Client::request`] with the caller's `tag` taken out of `params`
    /// (recorded in analytics; see `Request::parse_tagged`).
    fn tagged_request(
        py: Python<'_>,
        capability: &str,
        params: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<(Request, Option<String>)> {
        let params = convert::optional_params(py, params)?;
        Request::parse_tagged(capability, params).map_err(|e| errors::to_py(py, e))
    }

    fn analytics_query(
        py: Python<'_>,
        query: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<polyrelay::analytics::AnalyticsQuery> {
        let query = match query {
            Some(query) => convert::params(py, query)?,
            None => Value::Object(Default::default()),
        };
        polyrelay::analytics::AnalyticsQuery::from_json(query).map_err(|e| errors::to_py(py, e))
    }

    /// A core stream of `capability`, its parameters checked.
    fn open_stream(
        &self,
        py: Python<'_>,
        capability: &str,
        params: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<polyrelay::ChatStream> {
        logs::refresh(py);
        let client = self.core(py)?;
        let params = convert::optional_params(py, params)?;
        client
            .stream(capability, params)
            .map_err(|e| errors::to_py(py, e))
    }
}

#[pymethods]
impl Client {
    /// Builds a client. At most one of `config` (a dict), `config_path` (a
    /// TOML file) and `config_toml` (TOML text) may be given; without any,
    /// the file named by `POLYRELAY_CONFIG` in `env` (if set) is read.
    /// `POLYRELAY_*` overrides and provider keys are read from `env`.
    /// `clock` (tests) replaces the system clock.
    #[new]
    #[pyo3(signature = (*, config=None, config_path=None, config_toml=None, env=None, api_keys=None, testing=false, seed=None, clock=None))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        config: Option<&Bound<'_, PyDict>>,
        config_path: Option<PathBuf>,
        config_toml: Option<String>,
        env: Option<BTreeMap<String, String>>,
        api_keys: Option<BTreeMap<String, String>>,
        testing: bool,
        seed: Option<u64>,
        clock: Option<PyRef<'_, FakeClock>>,
    ) -> PyResult<Self> {
        logs::refresh(py);
        let config = match config {
            Some(dict) => Some(
                convert::from_py(py, dict.as_any(), "config").map_err(|_| config_type_error(py))?,
            ),
            None => None,
        };
        let source = match (config, config_path, config_toml) {
            (None, None, None) => ConfigSource::Defaults,
            (Some(json), None, None) => ConfigSource::Json(json),
            (None, Some(path), None) => ConfigSource::File(path),
            (None, None, Some(text)) => ConfigSource::Toml(text),
            _ => {
                return Err(errors::to_py(
                    py,
                    Error::config(
                        "config",
                        "give one of a dict, a file path or TOML text, not several",
                    ),
                ))
            }
        };
        let mut builder = polyrelay::Client::builder().config(source).testing(testing);
        if let Some(env) = env {
            builder = builder.env_vars(env);
        }
        for (provider, key) in api_keys.unwrap_or_default() {
            builder = builder.api_key(&provider, key);
        }
        if let Some(seed) = seed {
            builder = builder.seed(seed);
        }
        if let Some(clock) = clock {
            builder = builder.clock(clock.shared());
        }
        let client = py
            .detach(move || builder.build())
            .map_err(|e| errors::to_py(py, e))?;
        Ok(Self {
            inner: RwLock::new(Some(client)),
        })
    }

    /// Calls `capability` and blocks until it is answered, with the GIL
    /// released; Ctrl-C cancels the call.
    #[pyo3(signature = (capability, params=None))]
    fn call(
        &self,
        py: Python<'_>,
        capability: &str,
        params: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<CallResult> {
        logs::refresh(py);
        let client = self.core(py)?;
        let (request, tag) = Self::tagged_request(py, capability, params)?;
        let envelope = bridge::block_on(py, async move {
            client.request_tagged(request, tag.as_deref()).await
        })?
        .map_err(|e| errors::to_py(py, e))?;
        Ok(CallResult::new(envelope))
    }

    /// Calls `capability` from asyncio: an awaitable of the result.
    /// Cancelling it cancels the call and its HTTP request.
    #[pyo3(signature = (capability, params=None))]
    fn acall<'py>(
        &self,
        py: Python<'py>,
        capability: &str,
        params: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        logs::refresh(py);
        let client = self.core(py)?;
        let (request, tag) = Self::tagged_request(py, capability, params)?;
        bridge::awaitable(py, async move {
            client
                .request_tagged(request, tag.as_deref())
                .await
                .map(CallResult::new)
        })
    }

    /// Analytics rows (plain dicts) of `query`: `by`, `group_by`,
    /// `capability`, `provider`, `tag`, `since`, `until` (RFC 3339).
    #[pyo3(signature = (query=None))]
    fn analytics(&self, py: Python<'_>, query: Option<&Bound<'_, PyDict>>) -> PyResult<Py<PyAny>> {
        let client = self.core(py)?;
        let query = Self::analytics_query(py, query)?;
        let rows = bridge::block_on(py, async move { client.analytics(&query).await })?
            .map_err(|e| errors::to_py(py, e))?;
        convert::serialize(py, &rows)
    }

    /// [`Client::analytics`] from asyncio.
    #[pyo3(signature = (query=None))]
    fn aanalytics<'py>(
        &self,
        py: Python<'py>,
        query: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let client = self.core(py)?;
        let query = Self::analytics_query(py, query)?;
        bridge::awaitable(py, async move {
            client.analytics(&query).await.and_then(|rows| {
                serde_json::to_value(rows)
                    .map(convert::Json)
                    .map_err(|e| Error::Usage {
                        message: format!("cannot serialise analytics rows: {e}"),
                    })
            })
        })
    }

    /// The analytics recorder's counters: `store`, `recorded`, `dropped`, …
    fn analytics_status(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        convert::serialize(py, &self.core(py)?.analytics_status())
    }

    /// Opens a streamed answer of `capability` (only `llm.chat` streams),
    /// read with `for`. Parameters are checked now; nothing is sent before
    /// the first chunk is asked for.
    #[pyo3(signature = (capability, params=None))]
    fn stream(
        &self,
        py: Python<'_>,
        capability: &str,
        params: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<ChatStream> {
        Ok(ChatStream::new(self.open_stream(py, capability, params)?))
    }

    /// [`stream`](Self::stream), read with `async for`.
    #[pyo3(signature = (capability, params=None))]
    fn astream(
        &self,
        py: Python<'_>,
        capability: &str,
        params: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<AsyncChatStream> {
        Ok(AsyncChatStream::new(
            self.open_stream(py, capability, params)?,
        ))
    }

    /// Asks the assistant `question` (continuing `conversation`, JSON
    /// text, or the conversation stored under `conversation_id`, saved
    /// again with the answer) with `options` (JSON text: tools and limits),
    /// blocking with the GIL released; returns the reply as JSON text.
    #[pyo3(signature = (question, options, conversation=None, conversation_id=None))]
    fn assistant(
        &self,
        py: Python<'_>,
        question: String,
        options: &str,
        conversation: Option<&str>,
        conversation_id: Option<String>,
    ) -> PyResult<String> {
        let client = self.core(py)?;
        let (assistant, start) =
            assistant::prepare(py, &client, options, conversation, conversation_id)?;
        bridge::block_on(py, assistant::ask(assistant, question, start))?
            .map_err(|e| errors::to_py(py, e))
    }

    /// [`assistant`](Self::assistant) from asyncio: an awaitable of the
    /// reply's JSON text.
    #[pyo3(signature = (question, options, conversation=None, conversation_id=None))]
    fn aassistant<'py>(
        &self,
        py: Python<'py>,
        question: String,
        options: &str,
        conversation: Option<&str>,
        conversation_id: Option<String>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let client = self.core(py)?;
        let (assistant, start) =
            assistant::prepare(py, &client, options, conversation, conversation_id)?;
        bridge::awaitable(py, assistant::ask(assistant, question, start))
    }

    /// [`assistant`](Self::assistant) as a stream of events (JSON text);
    /// the question is checked now, nothing is sent before the first read.
    #[pyo3(signature = (question, options, conversation=None, conversation_id=None))]
    fn assistant_stream(
        &self,
        py: Python<'_>,
        question: &str,
        options: &str,
        conversation: Option<&str>,
        conversation_id: Option<String>,
    ) -> PyResult<assistant::AssistantStream> {
        let client = self.core(py)?;
        let (assistant, start) =
            assistant::prepare(py, &client, options, conversation, conversation_id)?;
        let stream =
            assistant::ask_stream(&assistant, question, start).map_err(|e| errors::to_py(py, e))?;
        Ok(assistant::AssistantStream::new(stream))
    }

    /// Saves `conversation` (JSON text) under `id` in the analytics store,
    /// replacing what was there; blocking with the GIL released.
    fn save_conversation(&self, py: Python<'_>, id: String, conversation: &str) -> PyResult<()> {
        let client = self.core(py)?;
        let conversation = assistant::parse_conversation(py, conversation)?;
        bridge::block_on(py, async move {
            client.save_conversation(&id, &conversation).await
        })?
        .map_err(|e| errors::to_py(py, e))
    }

    /// [`save_conversation`](Self::save_conversation) from asyncio.
    fn asave_conversation<'py>(
        &self,
        py: Python<'py>,
        id: String,
        conversation: &str,
    ) -> PyResult<Bound<'py, PyAny>> {
        let client = self.core(py)?;
        let conversation = assistant::parse_conversation(py, conversation)?;
        bridge::awaitable(py, async move {
            client.save_conversation(&id, &conversation).await
        })
    }

    /// The conversation saved under `id` as JSON text; `None` when none is.
    fn conversation(&self, py: Python<'_>, id: String) -> PyResult<Option<String>> {
        let client = self.core(py)?;
        bridge::block_on(py, async move { conversation_text(&client, &id).await })?
            .map_err(|e| errors::to_py(py, e))
    }

    /// [`conversation`](Self::conversation) from asyncio.
    fn aconversation<'py>(&self, py: Python<'py>, id: String) -> PyResult<Bound<'py, PyAny>> {
        let client = self.core(py)?;
        bridge::awaitable(py, async move { conversation_text(&client, &id).await })
    }

    /// Deletes the conversation saved under `id`; whether there was one.
    fn delete_conversation(&self, py: Python<'_>, id: String) -> PyResult<bool> {
        let client = self.core(py)?;
        bridge::block_on(py, async move { client.delete_conversation(&id).await })?
            .map_err(|e| errors::to_py(py, e))
    }

    /// [`delete_conversation`](Self::delete_conversation) from asyncio.
    fn adelete_conversation<'py>(
        &self,
        py: Python<'py>,
        id: String,
    ) -> PyResult<Bound<'py, PyAny>> {
        let client = self.core(py)?;
        bridge::awaitable(py, async move { client.delete_conversation(&id).await })
    }

    /// The ids of the saved conversations, most recently updated first,
    /// `limit` at most (a limit below 1 is refused).
    fn conversation_ids(&self, py: Python<'_>, limit: i64) -> PyResult<Vec<String>> {
        let client = self.core(py)?;
        let limit = usize::try_from(limit).unwrap_or(0);
        bridge::block_on(py, async move { client.conversation_ids(limit).await })?
            .map_err(|e| errors::to_py(py, e))
    }

    /// [`conversation_ids`](Self::conversation_ids) from asyncio.
    fn aconversation_ids<'py>(&self, py: Python<'py>, limit: i64) -> PyResult<Bound<'py, PyAny>> {
        let client = self.core(py)?;
        let limit = usize::try_from(limit).unwrap_or(0);
        bridge::awaitable(py, async move { client.conversation_ids(limit).await })
    }

    /// Calls `capability` once per item of `params` with at most
    /// `concurrency` calls in flight, blocking (GIL released, Ctrl-C
    /// cancels) until all are done; returns the results in input order.
    /// A failure is raised at once, cancelling the calls still running,
    /// unless `return_exceptions` puts each exception in its item's place.
    /// `progress` counts finished calls; `on_wait` is called on this thread
    /// about every 50 ms while waiting (to redraw a progress display).
    #[pyo3(signature = (capability, params, concurrency, return_exceptions=false, progress=None, on_wait=None))]
    #[allow(clippy::too_many_arguments)]
    fn batch<'py>(
        &self,
        py: Python<'py>,
        capability: &str,
        params: Vec<Option<Bound<'py, PyDict>>>,
        concurrency: usize,
        return_exceptions: bool,
        progress: Option<&BatchProgress>,
        on_wait: Option<Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        logs::refresh(py);
        let client = self.core(py)?;
        let batch = Batch::prepare(
            py,
            capability,
            params,
            concurrency,
            return_exceptions,
            progress,
        )?;
        let waited = |_: Python<'_>| on_wait.as_ref().map_or(Ok(()), |f| f.call0().map(drop));
        let finished = bridge::block_on_with(py, batch.run(client), waited)?
            .map_err(|e| errors::to_py(py, e))?;
        Ok(finished.into_pyobject(py)?.into_any())
    }

    /// [`batch`](Self::batch) from asyncio: an awaitable of the results.
    /// Cancelling it cancels every call still running.
    #[pyo3(signature = (capability, params, concurrency, return_exceptions=false, progress=None))]
    fn abatch<'py>(
        &self,
        py: Python<'py>,
        capability: &str,
        params: Vec<Option<Bound<'py, PyDict>>>,
        concurrency: usize,
        return_exceptions: bool,
        progress: Option<&BatchProgress>,
    ) -> PyResult<Bound<'py, PyAny>> {
        logs::refresh(py);
        let client = self.core(py)?;
        let batch = Batch::prepare(
            py,
            capability,
            params,
            concurrency,
            return_exceptions,
            progress,
        )?;
        bridge::awaitable(py, batch.run(client))
    }

    /// Which capabilities can be served now, and by whom.
    fn health(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        let client = self.core(py)?;
        let health = py.detach(move || client.health());
        convert::serialize(py, &health)
    }

    /// The Prometheus text of the client's metrics (see the core's
    /// `Client::metrics_text`); the GIL is released while pending call
    /// records are written.
    fn metrics_text(&self, py: Python<'_>) -> PyResult<String> {
        let client = self.core(py)?;
        bridge::block_on(py, async move { client.metrics_text().await })
    }

    /// Whether the client's Redis answers a `PING` now (`None` without
    /// Redis); the GIL is released while waiting (at most 1 s).
    fn ping_redis(&self, py: Python<'_>) -> PyResult<Option<bool>> {
        let client = self.core(py)?;
        bridge::block_on(py, async move { client.ping_redis().await })
    }

    /// `ping_redis` from asyncio: an awaitable of the same answer.
    fn aping_redis<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let client = self.core(py)?;
        bridge::awaitable(py, async move {
            Ok::<_, polyrelay::Error>(client.ping_redis().await)
        })
    }

    /// Counters, latency, breakers and quota of every enabled provider, by id.
    fn stats(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        let client = self.core(py)?;
        let stats = py.detach(move || client.stats());
        convert::serialize(py, &stats)
    }

    /// The core's catalog of every provider this client knows: `enabled`,
    /// `key_set` (never the key itself) and its place in each chain.
    fn providers(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        convert::serialize(py, self.core(py)?.catalog())
    }

    /// Provider ids of `capability`'s fallback chain, in order.
    fn chain(&self, py: Python<'_>, capability: &str) -> PyResult<Vec<&'static str>> {
        let id: CapabilityId = capability.parse().map_err(|e| errors::to_py(py, e))?;
        Ok(self.core(py)?.chain(id))
    }

    /// Releases providers, cache and connections; later calls raise
    /// `UsageError`. Calls already running finish normally.
    fn close(&self, py: Python<'_>) {
        let closed = self.inner.write().take();
        if let Some(client) = closed {
            // What the client recorded reaches the analytics store before
            // it goes (a command-line call, then the process exits).
            let _ = bridge::block_on(py, async move { client.flush_analytics().await });
        }
    }

    /// Whether `close()` was called.
    #[getter]
    fn closed(&self) -> bool {
        self.inner.read().is_none()
    }

    fn __repr__(&self) -> String {
        match self.inner.read().as_ref() {
            Some(client) => format!("<polyrelay._native.{client:?}>"),
            None => "<polyrelay._native.Client (closed)>".to_string(),
        }
    }
}

/// The conversation saved under `id` as JSON text.
async fn conversation_text(
    client: &polyrelay::Client,
    id: &str,
) -> polyrelay::Result<Option<String>> {
    Ok(client
        .conversation(id)
        .await?
        .map(|conversation| conversation.to_json().to_string()))
}

fn config_type_error(py: Python<'_>) -> PyErr {
    errors::to_py(
        py,
        Error::config(
            "config",
            "must contain only strings, numbers, booleans, lists and dicts",
        ),
    )
}
