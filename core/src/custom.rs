//! Providers declared in the configuration file, without recompiling.
//!
//! A REST provider is described by its base URL, where the key goes, how
//! request parameters fill the path and query, how the JSON reply maps onto
//! the capability's normalised answer (JSON pointers), and which replies are
//! errors. It then behaves like any built-in provider: same pipeline, same
//! guards, same trail.
//!
//! ```toml
//! [custom_providers.acme-weather]
//! capability = "weather.current"
//! base_url = "https://api.acme.example"
//! path = "/v2/now"
//! query = { latitude = "{location.lat}", longitude = "{location.lon}", units = "metric" }
//! auth = { env = "ACME_API_KEY", header = "x-api-key" }
//!
//! [custom_providers.acme-weather.response]
//! observed_at = "/data/time"
//! temperature_c = "/data/temp"
//! humidity_pct = "/data/rh"
//! "location.lat" = "/lat"
//! "location.lon" = "/lon"
//! "condition.code" = "/data/wmo"
//! "condition.text" = { value = "see code" }
//!
//! [[custom_providers.acme-weather.errors]]
//! pointer = "/error/code"
//! equals = "QUOTA"
//! class = "quota_exhausted"
//! ```
//!
//! Placeholders `{a.b}` read the validated request (as its JSON form: see
//! each capability's request type). A response mapping value is a JSON
//! pointer into the reply, `{ value = … }` for a constant, or
//! `{ from = "/items", each = { … } }` to map every element of an array.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::capability::{CapabilityId, Request};
use crate::echo::{echo, echo_key};
use crate::error::{Error, FailureClass, ProviderFailure, Result};
use crate::intern::intern;
use crate::provider::{
    not_served, Auth, CallContext, Dispatch, HttpRequest, HttpResponse, KeyPlacement, Provider,
    ProviderInfo, Step,
};
use crate::providers::wire::path_segment;

/// A provider as declared under `[custom_providers.<id>]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CustomProviderSpec {
    /// The capability it serves.
    pub capability: String,
    /// Base URL.
    pub base_url: String,
    /// `GET` (default) or `POST` (then the query table becomes a JSON body).
    #[serde(default = "default_method")]
    pub method: String,
    /// Path after the base URL; may hold placeholders, whose values are
    /// percent-encoded as one path segment each (a value cannot add a path
    /// level or a query).
    #[serde(default)]
    pub path: String,
    /// Query parameters (or body fields for POST); values may hold placeholders.
    #[serde(default)]
    pub query: BTreeMap<String, String>,
    /// Extra headers.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Where the key goes; absent for keyless providers.
    pub auth: Option<CustomAuth>,
    /// Reply field → answer field mapping.
    pub response: Map<String, Value>,
    /// Rules that turn a reply into a classified failure, checked in order
    /// before the default status classification.
    #[serde(default)]
    pub errors: Vec<ErrorRule>,
    /// Documentation URL.
    #[serde(default)]
    pub docs_url: String,
    /// Whether the free terms allow commercial use (default true).
    #[serde(default = "yes")]
    pub commercial_use: bool,
}

fn default_method() -> String {
    "GET".to_string()
}

fn yes() -> bool {
    true
}

/// Key placement of a custom provider: exactly one of `header` or `query`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CustomAuth {
    /// Environment variable holding the key.
    pub env: String,
    /// Header name.
    pub header: Option<String>,
    /// Text before the key in the header (e.g. `"Bearer "`).
    #[serde(default)]
    pub prefix: String,
    /// Query parameter name (only when the provider accepts no header).
    pub query: Option<String>,
    /// Whether the provider also works without a key.
    #[serde(default)]
    pub optional: bool,
}

/// One error rule: when the status and/or body match, the reply is a failure
/// of `class`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ErrorRule {
    /// Matches this HTTP status only.
    pub status: Option<u16>,
    /// JSON pointer into the reply that must exist.
    pub pointer: Option<String>,
    /// The value at `pointer` must equal this.
    pub equals: Option<Value>,
    /// The body text must contain this.
    pub contains: Option<String>,
    /// The failure class (`transient`, `rate_limited`, `quota_exhausted`,
    /// `auth`, `invalid_request`, `not_found`, `malformed_response`).
    pub class: String,
}

/// A provider built from a [`CustomProviderSpec`].
#[derive(Debug)]
pub struct CustomProvider {
    info: ProviderInfo,
    spec: CustomProviderSpec,
    capability: CapabilityId,
    rules: Vec<(ErrorRule, FailureClass)>,
}

fn class_named(name: &str) -> Option<FailureClass> {
    Some(match name {
        "transient" => FailureClass::Transient,
        "rate_limited" => FailureClass::RateLimited,
        "quota_exhausted" => FailureClass::QuotaExhausted,
        "auth" => FailureClass::Auth,
        "invalid_request" => FailureClass::InvalidRequest,
        "not_found" => FailureClass::NotFound,
        "malformed_response" => FailureClass::MalformedResponse,
        _ => return None,
    })
}

impl CustomProvider {
    /// Validates `spec` (errors name the field under `custom_providers.<id>`)
    /// and builds the provider. Its description lives for the rest of the
    /// process, like a built-in provider's.
    pub fn new(id: &str, spec: CustomProviderSpec) -> Result<Self> {
        let shown_id = echo_key(id);
        let field = |name: &str| format!("custom_providers.{shown_id}.{name}");
        if id.is_empty()
            || !id
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        {
            return Err(Error::config(
                format!("custom_providers.{shown_id}"),
                "ids are lower-case letters, digits and dashes",
            ));
        }
        let capability: CapabilityId = spec.capability.parse().map_err(|_| {
            Error::config(
                field("capability"),
                format!("no capability is named {}", echo(&spec.capability)),
            )
        })?;
        match url::Url::parse(&spec.base_url) {
            Ok(u) if matches!(u.scheme(), "http" | "https") => {}
            _ => return Err(Error::config(field("base_url"), "must be an http(s) URL")),
        }
        if !matches!(spec.method.as_str(), "GET" | "POST") {
            return Err(Error::config(field("method"), "must be GET or POST"));
        }
        check_mapping(&spec.response, &field("response"))?;
        let mut rules = Vec::new();
        for (i, rule) in spec.errors.iter().enumerate() {
            let class = class_named(&rule.class).ok_or_else(|| {
                Error::config(
                    field(&format!("errors[{i}].class")),
                    format!("unknown failure class {}", echo(&rule.class)),
                )
            })?;
            if let Some(pointer) = &rule.pointer {
                check_pointer(pointer, &field(&format!("errors[{i}].pointer")))?;
            }
            rules.push((rule.clone(), class));
        }
        let auth = match &spec.auth {
            None => Auth::Keyless,
            Some(auth) => {
                let placement = match (&auth.header, &auth.query) {
                    (Some(name), None) => KeyPlacement::Header {
                        name: intern(name),
                        prefix: intern(&auth.prefix),
                    },
                    (None, Some(param)) => KeyPlacement::Query {
                        param: intern(param),
                    },
                    _ => {
                        return Err(Error::config(
                            field("auth"),
                            "give exactly one of `header` or `query`",
                        ))
                    }
                };
                Auth::Key {
                    env: intern(&auth.env),
                    placement,
                    optional: auth.optional,
                }
            }
        };
        let info = ProviderInfo {
            id: intern(id),
            name: intern(id),
            auth,
            base_url: intern(&spec.base_url),
            docs_url: intern(&spec.docs_url),
            terms: "declared in the configuration",
            commercial_use: spec.commercial_use,
            default_rate_limit: None,
            default_quota: None,
        };
        Ok(Self {
            info,
            spec,
            capability,
            rules,
        })
    }
}

fn check_pointer(pointer: &str, field: &str) -> Result<()> {
    if pointer.is_empty() || pointer.starts_with('/') {
        Ok(())
    } else {
        Err(Error::config(
            field,
            format!("JSON pointers start with '/', got {}", echo(pointer)),
        ))
    }
}

fn check_mapping(mapping: &Map<String, Value>, field: &str) -> Result<()> {
    for (target, source) in mapping {
        let here = format!("{field}.{}", echo_key(target));
        match source {
            Value::String(pointer) => check_pointer(pointer, &here)?,
            Value::Object(table) if table.contains_key("value") && table.len() == 1 => {}
            Value::Object(table) => match (table.get("from"), table.get("each")) {
                (Some(Value::String(from)), Some(Value::Object(each))) if table.len() == 2 => {
                    check_pointer(from, &format!("{here}.from"))?;
                    check_mapping(each, &format!("{here}.each"))?;
                }
                _ => {
                    return Err(Error::config(
                        here,
                        "expected a pointer, { value = … } or { from = …, each = { … } }",
                    ))
                }
            },
            _ => {
                return Err(Error::config(
                    here,
                    "expected a pointer, { value = … } or { from = …, each = { … } }",
                ))
            }
        }
    }
    Ok(())
}

/// Replaces `{a.b}` placeholders with values from the request's JSON form,
/// each passed through `encode` (a caller's value must not add a path level
/// or a query to a path; query values are encoded by the transport).
fn fill(
    template: &str,
    request: &Value,
    encode: fn(&str) -> Option<String>,
) -> std::result::Result<String, ProviderFailure> {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let close = rest[open..].find('}').map(|c| open + c).ok_or_else(|| {
            ProviderFailure::unsupported(format!("unclosed placeholder in {}", echo(template)))
        })?;
        let path = &rest[open + 1..close];
        let pointer = format!("/{}", path.replace('.', "/"));
        let value = request
            .pointer(&pointer)
            .ok_or_else(|| ProviderFailure::unsupported(format!("the request has no {path}")))?;
        let text = match value {
            Value::String(s) => s.clone(),
            Value::Null => {
                return Err(ProviderFailure::unsupported(format!(
                    "the request has no {path}"
                )))
            }
            other => other.to_string(),
        };
        let encoded = encode(&text).ok_or_else(|| {
            ProviderFailure::unsupported(format!(
                "{path} cannot be a path segment: {}",
                echo(&text)
            ))
        })?;
        out.push_str(&encoded);
        rest = &rest[close + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// A caller's value as one path segment: percent-encoded, and never `.` or
/// `..`, which URL parsing resolves (`%2E%2E` too) into a move up the path.
fn segment(value: &str) -> Option<String> {
    (!matches!(value, "." | "..")).then(|| path_segment(value))
}

/// Builds the answer object from `mapping` over `reply`.
fn map(mapping: &Map<String, Value>, reply: &Value) -> std::result::Result<Value, ProviderFailure> {
    let mut out = Value::Object(Map::new());
    for (target, source) in mapping {
        let value = match source {
            Value::String(pointer) => match reply.pointer(pointer) {
                Some(v) => v.clone(),
                None => continue, // optional fields may be absent; required ones fail below
            },
            Value::Object(table) => {
                match (table.get("value"), table.get("from"), table.get("each")) {
                    (Some(constant), _, _) => constant.clone(),
                    (None, Some(Value::String(from)), Some(Value::Object(each))) => {
                        let items =
                            reply
                                .pointer(from)
                                .and_then(Value::as_array)
                                .ok_or_else(|| {
                                    ProviderFailure::malformed(format!("no list at {from}"))
                                })?;
                        Value::Array(
                            items
                                .iter()
                                .map(|item| map(each, item))
                                .collect::<std::result::Result<_, _>>()?,
                        )
                    }
                    _ => continue,
                }
            }
            _ => continue,
        };
        set(&mut out, target, value);
    }
    Ok(out)
}

fn set(root: &mut Value, dotted: &str, value: Value) {
    let mut node = root;
    let mut parts = dotted.split('.').peekable();
    while let Some(part) = parts.next() {
        let Value::Object(object) = node else { return };
        if parts.peek().is_none() {
            object.insert(part.to_string(), value);
            return;
        }
        node = object
            .entry(part.to_string())
            .or_insert_with(|| Value::Object(Map::new()));
    }
}

impl Provider for CustomProvider {
    fn info(&self) -> &ProviderInfo {
        &self.info
    }
}

/// Written by hand, not by `serves!`: the capability is chosen at run time.
/// The answer is read as the request's capability (the one configured), so
/// it is of the request's capability as `serves!` guarantees for the others.
impl Dispatch for CustomProvider {
    fn capabilities(&self) -> &'static [CapabilityId] {
        self.capability.as_slice()
    }

    fn request(
        &self,
        request: &Request,
        ctx: &CallContext<'_>,
    ) -> std::result::Result<HttpRequest, ProviderFailure> {
        if request.capability() != self.capability {
            return Err(not_served(self, request));
        }
        let params = serde_json::to_value(request)
            .map_err(|e| ProviderFailure::unsupported(e.to_string()))?;
        let path = fill(&self.spec.path, &params, segment)?;
        let mut fields = Vec::with_capacity(self.spec.query.len());
        for (name, template) in &self.spec.query {
            fields.push((
                name.clone(),
                fill(template, &params, |v| Some(v.to_string()))?,
            ));
        }
        let mut http = if self.spec.method == "POST" {
            let body: Map<String, Value> = fields
                .into_iter()
                .map(|(k, v)| (k, Value::String(v)))
                .collect();
            HttpRequest::post_json(ctx.base_url, &path, Value::Object(body))
        } else {
            let mut http = HttpRequest::get(ctx.base_url, &path);
            http.query = fields.into_iter().map(|(k, v)| (k.into(), v)).collect();
            http
        };
        http.headers = self
            .spec
            .headers
            .iter()
            .map(|(k, v)| (k.clone().into(), v.clone()))
            .collect();
        Ok(http)
    }

    fn response(
        &self,
        request: &Request,
        _: &CallContext<'_>,
        response: HttpResponse,
    ) -> std::result::Result<Step, ProviderFailure> {
        if request.capability() != self.capability {
            return Err(not_served(self, request));
        }
        let reply: Option<Value> = serde_json::from_slice(&response.body).ok();
        let text = String::from_utf8_lossy(&response.body);
        for (rule, class) in &self.rules {
            let status_ok = rule.status.is_none_or(|s| s == response.status);
            let pointer_ok = match (&rule.pointer, &reply) {
                (None, _) => true,
                (Some(pointer), Some(reply)) => match (reply.pointer(pointer), &rule.equals) {
                    (Some(found), Some(expected)) => found == expected,
                    (Some(_), None) => true,
                    (None, _) => false,
                },
                (Some(_), None) => false,
            };
            let contains_ok = rule
                .contains
                .as_ref()
                .is_none_or(|c| text.contains(c.as_str()));
            if status_ok && pointer_ok && contains_ok {
                return Err(response.failure(*class, response.body_excerpt()));
            }
        }
        response.check_status()?;
        let reply = reply.ok_or_else(|| {
            ProviderFailure::malformed("the reply is not JSON").status(response.status)
        })?;
        let answer = map(&self.spec.response, &reply)?;
        self.capability
            .data_from_json(answer)
            .map(Step::Done)
            .map_err(|e| {
                ProviderFailure::malformed(format!(
                    "the mapped reply does not fit {}: {e}",
                    self.capability
                ))
            })
    }
}
