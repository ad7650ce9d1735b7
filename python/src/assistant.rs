//! The assistant (`client.assistant(...)`): options, conversation and
//! reply cross the boundary as JSON text, which `polyrelay/_assistant.py`
//! wraps; the loop is the core's (`polyrelay::assistant`).

use std::sync::Arc;

use polyrelay::assistant::{Assistant, AssistantStream as CoreStream, Conversation};
use pyo3::prelude::*;
use serde_json::Value;
use tokio::sync::Mutex;

use crate::{bridge, errors, logs};

/// Where an ask's conversation comes from: given (or none), or kept under
/// an id in the analytics store.
pub(crate) enum Start {
    Given(Option<Conversation>),
    Saved(String),
}

/// The assistant and conversation of one ask, checked now: a conversation
/// and a conversation id together are refused.
pub(crate) fn prepare(
    py: Python<'_>,
    client: &polyrelay::Client,
    options: &str,
    conversation: Option<&str>,
    conversation_id: Option<String>,
) -> PyResult<(Assistant, Start)> {
    logs::refresh(py);
    let options: Value = serde_json::from_str(options)
        .map_err(|e| errors::internal(py, &format!("assistant options: {e}")))?;
    let assistant = Assistant::from_options(client, &options).map_err(|e| errors::to_py(py, e))?;
    let start =
        match (conversation, conversation_id) {
            (Some(_), Some(_)) => return Err(errors::to_py(
                py,
                polyrelay::Error::invalid(
                    "conversation",
                    "cannot be given with conversation_id: the stored conversation is continued",
                ),
            )),
            (None, Some(id)) => Start::Saved(id),
            (None, None) => Start::Given(None),
            (Some(text), None) => Start::Given(Some(parse_conversation(py, text)?)),
        };
    Ok((assistant, start))
}

/// A conversation from its JSON text.
pub(crate) fn parse_conversation(py: Python<'_>, text: &str) -> PyResult<Conversation> {
    let value: Value = serde_json::from_str(text).map_err(|_| {
        errors::to_py(
            py,
            polyrelay::Error::invalid("conversation", "must be JSON"),
        )
    })?;
    Conversation::from_json(value).map_err(|e| errors::to_py(py, e))
}

/// Asks `question`, from `start`.
pub(crate) async fn ask(
    assistant: Assistant,
    question: String,
    start: Start,
) -> polyrelay::Result<String> {
    let reply = match start {
        Start::Given(conversation) => assistant.ask(&question, conversation).await?,
        Start::Saved(id) => assistant.ask_saved(&question, &id).await?,
    };
    Ok(reply_json(&reply))
}

/// The events of `question`, from `start`; checked now.
pub(crate) fn ask_stream(
    assistant: &Assistant,
    question: &str,
    start: Start,
) -> polyrelay::Result<CoreStream> {
    match start {
        Start::Given(conversation) => assistant.ask_stream(question, conversation),
        Start::Saved(id) => assistant.ask_stream_saved(question, &id),
    }
}

/// The JSON text of a reply.
fn reply_json(reply: &polyrelay::assistant::AssistantReply) -> String {
    reply.to_json().to_string()
}

/// A streamed assistant answer: each event as JSON text.
#[pyclass(module = "polyrelay._native", name = "AssistantStream", frozen)]
pub(crate) struct AssistantStream {
    /// `None` once closed or ended.
    inner: Arc<Mutex<Option<CoreStream>>>,
}

impl AssistantStream {
    pub(crate) fn new(stream: CoreStream) -> Self {
        Self {
            inner: Arc::new(Mutex::new(Some(stream))),
        }
    }

    /// The next event's JSON, `None` at the end; the stream is dropped
    /// after its last event or an error.
    async fn read(inner: Arc<Mutex<Option<CoreStream>>>) -> polyrelay::Result<Option<String>> {
        let mut guard = inner.lock().await;
        let Some(stream) = guard.as_mut() else {
            return Ok(None);
        };
        match stream.next().await {
            Some(Ok(event)) => {
                if matches!(event, polyrelay::assistant::AssistantEvent::Done(_)) {
                    *guard = None;
                }
                Ok(Some(event.to_json().to_string()))
            }
            Some(Err(error)) => {
                *guard = None;
                Err(error)
            }
            None => {
                *guard = None;
                Ok(None)
            }
        }
    }
}

#[pymethods]
impl AssistantStream {
    /// The next event as JSON text, blocking with the GIL released;
    /// `None` at the end.
    fn next_event(&self, py: Python<'_>) -> PyResult<Option<String>> {
        bridge::block_on(py, Self::read(Arc::clone(&self.inner)))?.map_err(|e| errors::to_py(py, e))
    }

    /// [`next_event`](Self::next_event) from asyncio: an awaitable.
    fn anext_event<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        bridge::awaitable(py, Self::read(Arc::clone(&self.inner)))
    }

    /// Drops the stream (and the LLM request in flight, if any); harmless
    /// once ended. A read in progress keeps it until it returns.
    fn close(&self) {
        if let Ok(mut guard) = self.inner.try_lock() {
            *guard = None;
        }
    }
}
