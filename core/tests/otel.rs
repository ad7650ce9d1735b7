//! OpenTelemetry spans of calls and attempts (feature `otel`): the span tree
//! of a call with a fallback and of a cache hit, caught by the SDK's
//! in-memory exporter, and an OTLP/HTTP export received by a loopback
//! collector and decoded.

mod common;

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use common::*;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use opentelemetry::trace::{SpanId, SpanKind, Status};
use opentelemetry::Value;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SpanData};
use parking_lot::Mutex;
use polyrelay::telemetry::Telemetry;
use prost::Message;
use tracing_subscriber::layer::SubscriberExt;

/// A key no span may carry: the failing provider also echoes it in its
/// error body.
const KEY: &str = "otel-SECRET-key-5f0c9a71";

/// `openweathermap` (keyed, in the query string) first, answering 503 once
/// tried; `open-meteo` second. One try each, so that each provider is one
/// attempt.
const CHAIN: &str = r#"
[defaults.retry]
max_attempts = 1
[capabilities."weather.current"]
chain = ["openweathermap", "open-meteo"]
"#;

fn in_memory() -> (Telemetry, InMemorySpanExporter) {
    let exporter = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(exporter.clone())
        .build();
    (Telemetry::with_provider(provider), exporter)
}

fn attribute<'a>(span: &'a SpanData, key: &str) -> Option<&'a Value> {
    span.attributes
        .iter()
        .find(|kv| kv.key.as_str() == key)
        .map(|kv| &kv.value)
}

fn text(span: &SpanData, key: &str) -> Option<String> {
    attribute(span, key).map(|v| v.as_str().into_owned())
}

/// Every attribute and event value of `span`, as text.
fn all_values(span: &SpanData) -> Vec<String> {
    let mut values: Vec<String> = span
        .attributes
        .iter()
        .map(|kv| format!("{}={}", kv.key, kv.value))
        .collect();
    for event in span.events.iter() {
        values.push(event.name.to_string());
        values.extend(
            event
                .attributes
                .iter()
                .map(|kv| format!("{}={}", kv.key, kv.value)),
        );
    }
    values.push(format!("{:?}", span.status));
    values
}

fn failing_provider(emulator: &Emulator) {
    emulator.fault_always(
        "/openweathermap/*",
        Fault::Respond(
            Reply::new(503).with_body(format!(r#"{{"cod":503,"message":"busy, key {KEY}"}}"#)),
        ),
    );
}

#[tokio::test]
async fn a_call_with_a_fallback_is_one_root_span_with_an_attempt_child_per_provider() {
    let (telemetry, exporter) = in_memory();
    let _default =
        tracing::subscriber::set_default(tracing_subscriber::registry().with(telemetry.layer()));
    let emulator = emulator().await;
    let clock = clock();
    let client = client(&emulator, &clock, CHAIN, &[("OPENWEATHER_API_KEY", KEY)]);
    failing_provider(&emulator);

    let reply = client.call("weather.current", berlin()).await.unwrap();
    assert_eq!(reply.provider, "open-meteo");
    assert!(
        emulator
            .requests()
            .iter()
            .any(|r| format!("{r:?}").contains(KEY)),
        "the key was sent: the test would prove nothing otherwise"
    );

    let spans = exporter.get_finished_spans().unwrap();
    let calls: Vec<&SpanData> = spans
        .iter()
        .filter(|s| s.name == "polyrelay.call")
        .collect();
    assert_eq!(calls.len(), 1, "{spans:#?}");
    let call = calls[0];
    assert_eq!(call.parent_span_id, SpanId::INVALID, "the call is a root");
    assert_eq!(text(call, "capability").as_deref(), Some("weather.current"));
    assert_eq!(text(call, "outcome").as_deref(), Some("success"));
    assert_eq!(text(call, "provider").as_deref(), Some("open-meteo"));
    assert_eq!(attribute(call, "cached"), Some(&Value::Bool(false)));
    assert_eq!(attribute(call, "stale"), Some(&Value::Bool(false)));
    assert_eq!(attribute(call, "error.type"), None);

    let attempts: Vec<&SpanData> = spans
        .iter()
        .filter(|s| s.name == "polyrelay.attempt")
        .collect();
    assert_eq!(attempts.len(), 2, "{spans:#?}");
    for attempt in &attempts {
        assert_eq!(attempt.parent_span_id, call.span_context.span_id());
        assert_eq!(
            attempt.span_context.trace_id(),
            call.span_context.trace_id()
        );
        assert_eq!(attempt.span_kind, SpanKind::Client);
        assert_eq!(attribute(attempt, "attempt"), Some(&Value::I64(1)));
    }
    // Ended in order: the failed attempt first.
    let (failed, answered) = (attempts[0], attempts[1]);
    assert_eq!(text(failed, "provider").as_deref(), Some("openweathermap"));
    assert_eq!(
        attribute(failed, "http.response.status_code"),
        Some(&Value::I64(503))
    );
    assert_eq!(text(failed, "outcome").as_deref(), Some("transient"));
    assert_eq!(text(failed, "error.type").as_deref(), Some("transient"));
    assert!(matches!(failed.status, Status::Error { .. }));
    assert_eq!(text(answered, "provider").as_deref(), Some("open-meteo"));
    assert_eq!(
        attribute(answered, "http.response.status_code"),
        Some(&Value::I64(200))
    );
    assert_eq!(text(answered, "outcome").as_deref(), Some("success"));
    assert_eq!(attribute(answered, "error.type"), None);
    assert_eq!(answered.status, Status::Unset);

    for span in &spans {
        for value in all_values(span) {
            assert!(!value.contains(KEY), "{}: {value}", span.name);
            assert!(!value.contains("appid"), "{}: {value}", span.name);
        }
    }
}

#[tokio::test]
async fn a_cache_hit_is_a_root_span_without_attempts() {
    let (telemetry, exporter) = in_memory();
    let _default =
        tracing::subscriber::set_default(tracing_subscriber::registry().with(telemetry.layer()));
    let emulator = emulator().await;
    let clock = clock();
    let client = client(&emulator, &clock, CHAIN, &[("OPENWEATHER_API_KEY", KEY)]);
    client.call("weather.current", berlin()).await.unwrap();
    exporter.reset();

    let hit = client.call("weather.current", berlin()).await.unwrap();
    assert!(hit.cached);

    let spans = exporter.get_finished_spans().unwrap();
    let names: Vec<&str> = spans.iter().map(|s| s.name.as_ref()).collect();
    assert_eq!(names, ["polyrelay.call"]);
    let call = &spans[0];
    assert_eq!(call.parent_span_id, SpanId::INVALID);
    assert_eq!(attribute(call, "cached"), Some(&Value::Bool(true)));
    assert_eq!(attribute(call, "stale"), Some(&Value::Bool(false)));
    assert_eq!(text(call, "provider").as_deref(), Some("openweathermap"));
}

#[tokio::test]
async fn a_failed_call_is_marked_with_its_error_type() {
    let (telemetry, exporter) = in_memory();
    let _default =
        tracing::subscriber::set_default(tracing_subscriber::registry().with(telemetry.layer()));
    let emulator = emulator().await;
    let clock = clock();
    let client = client(&emulator, &clock, CHAIN, &[("OPENWEATHER_API_KEY", KEY)]);
    failing_provider(&emulator);
    emulator.fault_always("/open-meteo/*", Fault::status(500));

    let error = client.call("weather.current", berlin()).await.unwrap_err();

    let spans = exporter.get_finished_spans().unwrap();
    let call = spans.iter().find(|s| s.name == "polyrelay.call").unwrap();
    let kind = error.kind().as_str();
    assert_eq!(text(call, "outcome").as_deref(), Some(kind));
    assert_eq!(text(call, "error.type").as_deref(), Some(kind));
    assert!(matches!(call.status, Status::Error { .. }));
    // Every provider's attempts (the chain may be walked more than once
    // before the call gives up), each failed and under the call.
    let children: Vec<&SpanData> = spans
        .iter()
        .filter(|s| s.parent_span_id == call.span_context.span_id())
        .collect();
    let mut providers: Vec<String> = children
        .iter()
        .filter_map(|s| text(s, "provider"))
        .collect();
    providers.sort_unstable();
    providers.dedup();
    assert_eq!(providers, ["open-meteo", "openweathermap"]);
    for child in children {
        assert_eq!(child.name, "polyrelay.attempt");
        assert!(matches!(child.status, Status::Error { .. }));
        assert_eq!(text(child, "error.type").as_deref(), Some("transient"));
    }
}

/// A loopback OTLP/HTTP collector: the bodies POSTed to `/v1/traces`.
async fn collector() -> (String, Arc<Mutex<Vec<(String, Bytes)>>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let received: Arc<Mutex<Vec<(String, Bytes)>>> = Arc::default();
    let kept = Arc::clone(&received);
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let kept = Arc::clone(&kept);
            tokio::spawn(async move {
                let service = service_fn(move |request: Request<Incoming>| {
                    let kept = Arc::clone(&kept);
                    async move {
                        let path = request.uri().path().to_owned();
                        let content_type = request
                            .headers()
                            .get("content-type")
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or_default()
                            .to_owned();
                        let body = request.into_body().collect().await.unwrap().to_bytes();
                        kept.lock().push((format!("{path} {content_type}"), body));
                        Ok::<_, Infallible>(Response::new(Full::new(Bytes::new())))
                    }
                });
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    (url, received)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_are_exported_over_otlp_http_as_protobuf() {
    let (endpoint, received) = collector().await;
    let telemetry = Telemetry::otlp(Some(&endpoint), "otel-test").unwrap();
    let _default =
        tracing::subscriber::set_default(tracing_subscriber::registry().with(telemetry.layer()));
    let emulator = emulator().await;
    let clock = clock();
    let client = client(&emulator, &clock, CHAIN, &[("OPENWEATHER_API_KEY", KEY)]);
    failing_provider(&emulator);
    client.call("weather.current", berlin()).await.unwrap();

    // Exported by the batch processor's thread, to the collector served on
    // this runtime's workers.
    tokio::task::block_in_place(|| telemetry.flush()).unwrap();

    let received = received.lock().clone();
    assert_eq!(received.len(), 1, "one export");
    let (request, body) = &received[0];
    assert_eq!(request, "/v1/traces application/x-protobuf");
    assert!(
        !String::from_utf8_lossy(body).contains(KEY),
        "no key in the export"
    );
    let export = ExportTraceServiceRequest::decode(body.clone()).unwrap();
    let resource = export.resource_spans[0].resource.as_ref().unwrap();
    assert!(resource
        .attributes
        .iter()
        .any(|kv| kv.key == "service.name" && format!("{:?}", kv.value).contains("otel-test")));
    let spans: Vec<_> = export
        .resource_spans
        .iter()
        .flat_map(|r| &r.scope_spans)
        .flat_map(|s| &s.spans)
        .collect();
    let mut names: Vec<&str> = spans.iter().map(|s| s.name.as_str()).collect();
    names.sort_unstable();
    assert_eq!(
        names,
        ["polyrelay.attempt", "polyrelay.attempt", "polyrelay.call"]
    );
    let call = spans.iter().find(|s| s.name == "polyrelay.call").unwrap();
    assert!(call.parent_span_id.is_empty());
    for attempt in spans.iter().filter(|s| s.name == "polyrelay.attempt") {
        assert_eq!(attempt.parent_span_id, call.span_id);
        assert_eq!(attempt.trace_id, call.trace_id);
    }
}

#[test]
fn an_endpoint_that_is_not_an_http_url_is_a_config_error() {
    for endpoint in ["127.0.0.1:4318", "ftp://127.0.0.1:4318", ""] {
        let error = Telemetry::otlp(Some(endpoint), "otel-test").unwrap_err();
        assert_eq!(error.kind(), polyrelay::ErrorKind::Config, "{endpoint}");
        assert!(
            error.to_string().contains("telemetry.otlp_endpoint"),
            "{error}"
        );
    }
}
