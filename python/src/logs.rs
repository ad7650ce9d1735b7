//! Rust `tracing` events as Python `logging` records under the `polyrelay`
//! logger (`polyrelay::engine` → `polyrelay.engine`).
//!
//! Events below the logger's effective level cost one atomic load: the
//! level is mirrored into [`THRESHOLD`] whenever a client is built or called
//! (and by `polyrelay._native.sync_log_level()`). Enabled events attach to
//! the interpreter from whatever thread they happen on and go through
//! `Logger.handle`, with the event's file and line, and its fields (and
//! those of its spans) in `record.polyrelay`. The core never logs keys.

use std::sync::atomic::{AtomicU8, Ordering};

use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::PyDict;
use serde_json::Value;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::subscriber::Interest;
use tracing::{Event, Level, Metadata, Subscriber};
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::prelude::*;
use tracing_subscriber::registry::LookupSpan;

/// The effective level of the `polyrelay` logger, as a Python level number.
/// Starts above every level: nothing is forwarded before the first sync.
static THRESHOLD: AtomicU8 = AtomicU8::new(u8::MAX);

static LOGGING: PyOnceLock<Py<PyModule>> = PyOnceLock::new();
static ROOT_LOGGER: PyOnceLock<Py<PyAny>> = PyOnceLock::new();

/// Installs the forwarding subscriber for this extension's copy of
/// `tracing` (a no-op if one is already installed).
pub(crate) fn install() {
    let _ =
        tracing::subscriber::set_global_default(tracing_subscriber::registry().with(PythonLogging));
}

/// Mirrors the `polyrelay` logger's effective level. Cheap; errors (e.g.
/// during interpreter shutdown) leave the previous level in place.
pub(crate) fn refresh(py: Python<'_>) {
    let level = ROOT_LOGGER
        .get_or_try_init(py, || {
            py.import("logging")?
                .call_method1("getLogger", ("polyrelay",))
                .map(Bound::unbind)
        })
        .and_then(|logger| {
            logger
                .bind(py)
                .call_method0(pyo3::intern!(py, "getEffectiveLevel"))?
                .extract::<u32>()
        });
    if let Ok(level) = level {
        THRESHOLD.store(level.min(u32::from(u8::MAX)) as u8, Ordering::Relaxed);
    }
}

/// Re-reads the `polyrelay` logger's level now (after configuring logging
/// while no client is being called, e.g. before a background refresh).
#[pyfunction]
pub(crate) fn sync_log_level(py: Python<'_>) {
    refresh(py);
}

fn python_level(level: Level) -> u8 {
    match level {
        Level::TRACE => 5,
        Level::DEBUG => 10,
        Level::INFO => 20,
        Level::WARN => 30,
        Level::ERROR => 40,
    }
}

/// `polyrelay::engine` → `polyrelay.engine`; anything else is filed under
/// `polyrelay.` so that one logger governs all of it.
fn logger_name(target: &str) -> String {
    let target = target
        .strip_prefix("polyrelay_emulator")
        .map(|rest| format!("polyrelay::emulator{rest}"))
        .unwrap_or_else(|| target.to_string());
    let dotted = target.replace("::", ".");
    if dotted == "polyrelay" || dotted.starts_with("polyrelay.") {
        dotted
    } else {
        format!("polyrelay.{dotted}")
    }
}

/// Fields of an event or span, in order.
#[derive(Default)]
struct Fields {
    message: Option<String>,
    values: Vec<(&'static str, Value)>,
}

impl Fields {
    fn push(&mut self, field: &Field, value: Value) {
        if field.name() == "message" {
            self.message = Some(match value {
                Value::String(text) => text,
                other => other.to_string(),
            });
        } else {
            self.values.push((field.name(), value));
        }
    }

    fn write_to(&self, out: &mut String) {
        for (name, value) in &self.values {
            out.push(' ');
            out.push_str(name);
            out.push('=');
            match value {
                Value::String(text) => out.push_str(text),
                other => out.push_str(&other.to_string()),
            }
        }
    }
}

impl Visit for Fields {
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.push(field, Value::from(value));
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.push(field, Value::from(value));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.push(field, Value::from(value));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.push(field, Value::from(value));
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.push(field, Value::from(value));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.push(field, Value::from(format!("{value:?}")));
    }
}

/// The layer that hands events to Python.
struct PythonLogging;

impl<S> Layer<S> for PythonLogging
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn register_callsite(&self, _metadata: &'static Metadata<'static>) -> Interest {
        // The level can change at any time: ask `enabled` on every hit.
        Interest::sometimes()
    }

    fn enabled(&self, metadata: &Metadata<'_>, _ctx: Context<'_, S>) -> bool {
        python_level(*metadata.level()) >= THRESHOLD.load(Ordering::Relaxed)
    }

    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let mut fields = Fields::default();
        attrs.record(&mut fields);
        if let Some(span) = ctx.span(id) {
            span.extensions_mut().insert(fields);
        }
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        if let Some(span) = ctx.span(id) {
            if let Some(fields) = span.extensions_mut().get_mut::<Fields>() {
                values.record(fields);
            }
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let metadata = event.metadata();
        let mut fields = Fields::default();
        event.record(&mut fields);
        let mut message = fields.message.clone().unwrap_or_default();
        fields.write_to(&mut message);
        let mut all: Vec<(&'static str, Value)> = Vec::new();
        if let Some(scope) = ctx.event_scope(event) {
            for span in scope.from_root() {
                message.push_str(" [");
                message.push_str(span.name());
                if let Some(span_fields) = span.extensions().get::<Fields>() {
                    span_fields.write_to(&mut message);
                    all.extend(span_fields.values.iter().cloned());
                }
                message.push(']');
            }
        }
        all.extend(fields.values);
        let level = python_level(*metadata.level());
        let name = logger_name(metadata.target());
        let _ = Python::try_attach(|py| -> PyResult<()> {
            let logging =
                LOGGING.get_or_try_init(py, || py.import("logging").map(Bound::unbind))?;
            let logger = logging
                .bind(py)
                .call_method1("getLogger", (name.as_str(),))?;
            if !logger.call_method1("isEnabledFor", (level,))?.is_truthy()? {
                return Ok(());
            }
            let structured = PyDict::new(py);
            for (key, value) in &all {
                structured.set_item(*key, crate::convert::to_py(py, value)?)?;
            }
            let extra = PyDict::new(py);
            extra.set_item("polyrelay", structured)?;
            let record = logger.call_method1(
                "makeRecord",
                (
                    name.as_str(),
                    level,
                    metadata.file().unwrap_or("<rust>"),
                    metadata.line().unwrap_or(0),
                    message.as_str(),
                    (),
                    py.None(),
                    metadata.module_path().unwrap_or("polyrelay"),
                    extra,
                ),
            )?;
            logger.call_method1("handle", (record,))?;
            Ok(())
        });
    }
}
