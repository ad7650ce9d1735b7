//! OpenTelemetry traces (feature `otel`): polyrelay's `tracing` spans
//! exported over OTLP/HTTP (protobuf).
//!
//! Each call is a `polyrelay.call` span (capability, outcome, cached, stale,
//! the provider that answered, `error.type` on failure) and each HTTP
//! exchange with a provider a `polyrelay.attempt` child (`otel.kind`
//! client: provider, attempt number, `http.response.status_code`, outcome,
//! `error.type` on failure). A cache hit is a call span without children; a
//! background cache refresh is a `polyrelay.refresh` root. Spans carry names,
//! numbers and classes only: never a parameter, URL, header or key.
//!
//! ```no_run
//! # fn main() -> polyrelay::Result<()> {
//! // Exports to $OTEL_EXPORTER_OTLP_ENDPOINT (default http://localhost:4318)
//! // until `telemetry` is dropped, which flushes what is left.
//! let telemetry = polyrelay::telemetry::init_otlp(None, "my-service")?;
//! # drop(telemetry); Ok(()) }
//! ```
//!
//! An application with its own `tracing` subscriber adds
//! [`Telemetry::layer`] to it instead of [`Telemetry::install_global`].

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{Protocol, WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::trace::SdkTracerProvider;
use opentelemetry_sdk::Resource;
use tracing::level_filters::LevelFilter;
use tracing::Subscriber;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::Layer;

use crate::Error;

/// The path of the traces signal under an OTLP/HTTP endpoint.
const TRACES_PATH: &str = "/v1/traces";

/// The tracer provider polyrelay's spans go to; flushes and shuts it down
/// when dropped.
pub struct Telemetry {
    provider: SdkTracerProvider,
}

impl std::fmt::Debug for Telemetry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Telemetry").finish_non_exhaustive()
    }
}

impl Telemetry {
    /// Spans batched and exported over OTLP/HTTP (protobuf) to `endpoint`,
    /// the collector's base URL (e.g. `http://127.0.0.1:4318`; `/v1/traces`
    /// is appended), under the resource's `service.name` `service_name`.
    /// Without `endpoint`, the standard variables decide
    /// (`OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`, `OTEL_EXPORTER_OTLP_ENDPOINT`,
    /// else `http://localhost:4318`); `OTEL_EXPORTER_OTLP_HEADERS` and
    /// `OTEL_EXPORTER_OTLP_TIMEOUT` apply as well.
    pub fn otlp(endpoint: Option<&str>, service_name: &str) -> Result<Self, Error> {
        // reqwest is built without a default TLS crypto provider (see
        // `transport`); a second install is a harmless no-op error.
        let _ = rustls::crypto::ring::default_provider().install_default();
        // The blocking client runs its own runtime: built on a thread of its
        // own, so that this works from inside an async runtime too.
        let client = std::thread::spawn(|| reqwest::blocking::Client::builder().build())
            .join()
            .map_err(|_| Error::config("telemetry", "building the OTLP HTTP client panicked"))?
            .map_err(|e| {
                Error::config(
                    "telemetry",
                    format!("cannot build the OTLP HTTP client: {e}"),
                )
            })?;
        let mut exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_protocol(Protocol::HttpBinary)
            .with_http_client(client);
        if let Some(endpoint) = endpoint {
            exporter = exporter.with_endpoint(traces_url(endpoint)?);
        }
        let exporter = exporter.build().map_err(|e| {
            Error::config(
                "telemetry.otlp_endpoint",
                format!("cannot build the OTLP exporter: {e}"),
            )
        })?;
        let provider = SdkTracerProvider::builder()
            .with_batch_exporter(exporter)
            .with_resource(
                Resource::builder()
                    .with_service_name(service_name.to_owned())
                    .build(),
            )
            .build();
        Ok(Self::with_provider(provider))
    }

    /// Spans go to `provider`, set up by the caller (another exporter, a
    /// sampler, the SDK's in-memory exporter in tests).
    pub fn with_provider(provider: SdkTracerProvider) -> Self {
        Self { provider }
    }

    /// The tracer provider.
    pub fn provider(&self) -> &SdkTracerProvider {
        &self.provider
    }

    /// A `tracing` layer turning polyrelay's spans (and the events inside
    /// them) into OpenTelemetry spans, for an application's own subscriber.
    /// It enables polyrelay's debug-level spans (the attempts) for itself
    /// only: other layers keep their own levels.
    pub fn layer<S>(&self) -> impl Layer<S> + 'static
    where
        S: Subscriber + for<'span> LookupSpan<'span> + Send + Sync,
    {
        tracing_opentelemetry::layer()
            .with_tracer(self.provider.tracer("polyrelay"))
            .with_filter(Targets::new().with_target("polyrelay", LevelFilter::DEBUG))
    }

    /// Installs a global `tracing` subscriber holding only [`Self::layer`].
    /// Fails if the process already has a global subscriber: add the layer
    /// to that one instead.
    pub fn install_global(&self) -> Result<(), Error> {
        tracing::subscriber::set_global_default(tracing_subscriber::registry().with(self.layer()))
            .map_err(|_| Error::Usage {
                message: "a global tracing subscriber is already installed: add \
                              `Telemetry::layer()` to it instead"
                    .into(),
            })
    }

    /// Exports the spans ended so far now.
    pub fn flush(&self) -> Result<(), Error> {
        self.provider.force_flush().map_err(|e| Error::Usage {
            message: format!("flushing the spans failed: {e}"),
        })
    }
}

impl Drop for Telemetry {
    fn drop(&mut self) {
        // Exports what is still batched; the error of a collector that is
        // gone has nowhere to go.
        let _ = self.provider.shutdown();
    }
}

/// [`Telemetry::otlp`] then [`Telemetry::install_global`]: spans exported
/// over OTLP until the returned value is dropped.
pub fn init_otlp(endpoint: Option<&str>, service_name: &str) -> Result<Telemetry, Error> {
    let telemetry = Telemetry::otlp(endpoint, service_name)?;
    telemetry.install_global()?;
    Ok(telemetry)
}

/// The traces URL under the OTLP/HTTP base URL `endpoint`, as the
/// specification builds it from `OTEL_EXPORTER_OTLP_ENDPOINT`.
fn traces_url(endpoint: &str) -> Result<String, Error> {
    let url = url::Url::parse(endpoint).map_err(|e| {
        Error::config(
            "telemetry.otlp_endpoint",
            format!("not a URL ({e}): expected e.g. http://127.0.0.1:4318"),
        )
    })?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(Error::config(
            "telemetry.otlp_endpoint",
            "must be an http:// or https:// URL",
        ));
    }
    let base = endpoint.trim_end_matches('/');
    Ok(if base.ends_with(TRACES_PATH) {
        base.to_owned()
    } else {
        format!("{base}{TRACES_PATH}")
    })
}
