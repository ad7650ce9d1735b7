//! Tool calls in `llm.chat`: the functions a model may call (`tools`),
//! whether and which it must call (`tool_choice`), and the calls it makes
//! (`tool_calls`), read from the OpenAI request shape or a short form and
//! validated before any provider sees them.
//!
//! ```
//! use polyrelay::capability::Request;
//! use serde_json::json;
//! let weather = json!({"type": "function", "function": {
//!     "name": "get_weather",
//!     "description": "Current weather of a city",
//!     "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
//! }});
//! let chat = Request::parse("llm.chat", json!({
//!     "messages": [{"role": "user", "content": "Weather in Paris?"}],
//!     "tools": [weather],
//!     "tool_choice": "required",
//! }));
//! assert!(chat.is_ok());
//! let bad = Request::parse("llm.chat", json!({
//!     "messages": [{"role": "user", "content": "Hi"}],
//!     "tools": [{"name": "get weather", "parameters": {"type": "object"}}],
//! }));
//! assert!(bad.unwrap_err().to_string().contains("tools[0].name"));
//! ```

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::echo::{echo, echo_key, type_name};
use crate::error::{Error, Result};

/// Most tools one call may declare (OpenAI's limit, the lowest of the
/// providers that state one).
pub const MAX_TOOLS: usize = 128;

/// A function the model may call.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct Tool {
    /// Its name: 1 to 64 letters, digits, `_` or `-`.
    pub name: String,
    /// What it does, for the model.
    pub description: Option<String>,
    /// Its arguments, as a JSON Schema object.
    pub parameters: JsonSchema,
}

/// A JSON Schema kept as canonical JSON text (keys sorted, no spaces), so
/// that requests holding one stay exact cache keys.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct JsonSchema(String);

impl JsonSchema {
    /// A schema already in canonical form ([`canonical`]).
    pub(crate) fn from_value(schema: Value) -> Self {
        Self(schema.to_string())
    }

    /// The schema as canonical JSON text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The schema as a JSON value.
    pub fn to_value(&self) -> Value {
        // Made from a JSON value, so it always parses.
        serde_json::from_str(&self.0).unwrap_or(Value::Null)
    }
}

impl Serialize for JsonSchema {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        self.to_value().serialize(s)
    }
}

/// Whether, and which, tool the model must call.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ToolChoice {
    /// The model decides (every provider's default).
    Auto,
    /// No tool: the model answers in text.
    None,
    /// At least one tool, any of them.
    Required,
    /// This tool.
    Tool(String),
}

/// A call the model made (or made earlier, in the conversation).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ToolCall {
    /// The call's id, which the `tool` message with its result names.
    /// Providers that give none (Gemini, Ollama) get one made from the
    /// call's position (`call_0`, …).
    pub id: String,
    /// The tool called.
    pub name: String,
    /// Its arguments: a JSON object as text, as the model wrote it (a
    /// model may write invalid JSON; check before use).
    pub arguments: String,
}

impl ToolCall {
    /// The id given to the call at `index` of an answer when the provider
    /// gives none: the same answer always gets the same ids.
    pub fn id_for(index: usize) -> String {
        format!("call_{index}")
    }

    /// The arguments as a JSON object, for providers that take an object;
    /// text that is no JSON object (only possible for calls a model wrote)
    /// is sent as the empty object.
    pub fn arguments_object(&self) -> Value {
        match serde_json::from_str(&self.arguments) {
            Ok(Value::Object(fields)) => Value::Object(fields),
            _ => Value::Object(Map::new()),
        }
    }
}

/// Reads `tools`: a non-empty list of functions in the OpenAI shape
/// (`{"type": "function", "function": {name, description, parameters}}`)
/// or the short one (`{name, description, parameters}`), names unique.
pub(crate) fn parse_tools(value: Value) -> Result<Vec<Tool>> {
    let items = match value {
        Value::Array(items) if items.is_empty() => {
            return Err(Error::invalid(
                "tools",
                "must hold at least one tool; leave it out for none",
            ))
        }
        Value::Array(items) if items.len() > MAX_TOOLS => {
            return Err(Error::invalid(
                "tools",
                format!("must hold at most {MAX_TOOLS} tools, got {}", items.len()),
            ))
        }
        Value::Array(items) => items,
        other => {
            return Err(Error::invalid(
                "tools",
                format!(
                    "must be a list of {{type: function, function: {{name, description, parameters}}}} objects, got {}",
                    type_name(&other)
                ),
            ))
        }
    };
    let mut tools: Vec<Tool> = Vec::with_capacity(items.len());
    for (i, item) in items.into_iter().enumerate() {
        let (at, mut fields) = function_fields(item, format!("tools[{i}]"))?;
        let name = parse_name(fields.remove("name"), &format!("{at}.name"))?;
        if tools.iter().any(|t| t.name == name) {
            return Err(Error::invalid(
                format!("{at}.name"),
                format!("must be unique, {} is declared twice", echo(&name)),
            ));
        }
        let description =
            optional_description(fields.remove("description"), &format!("{at}.description"))?;
        let parameters = match fields.remove("parameters") {
            // A function without arguments.
            None | Some(Value::Null) => {
                serde_json::json!({"type": "object", "properties": {}})
            }
            Some(Value::Object(schema)) if schema.get("type") == Some(&"object".into()) => {
                Value::Object(schema)
            }
            Some(other) => {
                return Err(Error::invalid(
                    format!("{at}.parameters"),
                    format!(
                        "must be a JSON Schema of type object, got {}",
                        match &other {
                            Value::Object(_) => "a schema of another type",
                            other => type_name(other),
                        }
                    ),
                ))
            }
        };
        // `strict` (OpenAI) is read by no other provider: refused rather
        // than honoured by some and dropped by others.
        if let Some(unknown) = fields.keys().next() {
            return Err(Error::invalid(
                format!("{at}.{}", echo_key(unknown)),
                "is not a known field; expected name, description and parameters",
            ));
        }
        tools.push(Tool {
            name,
            description,
            parameters: JsonSchema::from_value(canonical(parameters)),
        });
    }
    Ok(tools)
}

/// The fields of a function in either shape, and the path they are at.
fn function_fields(item: Value, at: String) -> Result<(String, Map<String, Value>)> {
    let Value::Object(mut fields) = item else {
        return Err(Error::invalid(
            at,
            format!(
                "must be a {{type: function, function: {{…}}}} object, got {}",
                type_name(&item)
            ),
        ));
    };
    // `type` may also sit beside the fields of the short form, as in
    // OpenAI's Responses API.
    match fields.remove("type") {
        Some(Value::String(kind)) if kind == "function" => {}
        None => {}
        Some(other) => {
            return Err(Error::invalid(
                format!("{at}.type"),
                format!("must be function, got {}", shown(&other)),
            ))
        }
    }
    if !fields.contains_key("function") {
        return Ok((at, fields));
    }
    if let Some(unknown) = fields.keys().find(|k| *k != "function") {
        return Err(Error::invalid(
            format!("{at}.{}", echo_key(unknown)),
            "is not a known field; expected type and function",
        ));
    }
    match fields.remove("function") {
        Some(Value::Object(function)) => Ok((format!("{at}.function"), function)),
        other => Err(Error::invalid(
            format!("{at}.function"),
            format!(
                "must be a {{name, description, parameters}} object, got {}",
                other.as_ref().map_or("nothing", type_name)
            ),
        )),
    }
}

/// An optional description (of a tool, of a response format's schema):
/// blank text is none.
pub(super) fn optional_description(value: Option<Value>, field: &str) -> Result<Option<String>> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) => Ok((!text.trim().is_empty()).then_some(text)),
        Some(other) => Err(Error::invalid(
            field,
            format!("must be a string, got {}", type_name(&other)),
        )),
    }
}

/// A tool name as every provider accepts it: `^[a-zA-Z0-9_-]{1,64}$`.
fn parse_name(value: Option<Value>, field: &str) -> Result<String> {
    match value {
        Some(Value::String(name))
            if (1..=64).contains(&name.len())
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-') =>
        {
            Ok(name)
        }
        Some(Value::String(name)) => Err(Error::invalid(
            field,
            format!(
                "must be 1 to 64 letters, digits, _ or -, got {}",
                echo(&name)
            ),
        )),
        None | Some(Value::Null) => Err(Error::invalid(field, "is required")),
        Some(other) => Err(Error::invalid(
            field,
            format!("must be a string, got {}", type_name(&other)),
        )),
    }
}

/// Reads `tool_choice`: `"auto"`, `"none"`, `"required"`, or a tool as
/// `{"type": "function", "function": {"name": …}}` or `{"name": …}`, which
/// must be declared. Without tools only `auto` and `none` are accepted, and
/// both mean nothing.
pub(crate) fn parse_tool_choice(value: Value, tools: &[Tool]) -> Result<Option<ToolChoice>> {
    let choice = match value {
        Value::String(word) => match word.as_str() {
            "auto" => ToolChoice::Auto,
            "none" => ToolChoice::None,
            "required" => ToolChoice::Required,
            other => {
                return Err(Error::invalid(
                    "tool_choice",
                    format!(
                        "must be auto, none, required or {{\"type\": \"function\", \"function\": {{\"name\": …}}}}, got {}",
                        echo(other)
                    ),
                ))
            }
        },
        item @ Value::Object(_) => {
            let (at, mut fields) = function_fields(item, "tool_choice".into())?;
            let name = parse_name(fields.remove("name"), &format!("{at}.name"))?;
            if let Some(unknown) = fields.keys().next() {
                return Err(Error::invalid(
                    format!("{at}.{}", echo_key(unknown)),
                    "is not a known field; expected name",
                ));
            }
            if !tools.iter().any(|t| t.name == name) {
                return Err(Error::invalid(
                    format!("{at}.name"),
                    format!("must name a tool declared in tools, got {}", echo(&name)),
                ));
            }
            ToolChoice::Tool(name)
        }
        other => {
            return Err(Error::invalid(
                "tool_choice",
                format!(
                    "must be a string or a {{type, function}} object, got {}",
                    type_name(&other)
                ),
            ))
        }
    };
    if tools.is_empty() {
        return match choice {
            ToolChoice::Auto | ToolChoice::None => Ok(None),
            _ => Err(Error::invalid(
                "tool_choice",
                "asks for a tool call, but no tools are declared",
            )),
        };
    }
    Ok(Some(choice))
}

/// Reads an assistant message's `tool_calls` at `at`: a non-empty list in
/// the OpenAI shape (`{"id", "type": "function", "function": {"name",
/// "arguments"}}`) or the short one (`{"id", "name", "arguments"}`), the
/// arguments a JSON object or its text; ids unique.
pub(crate) fn parse_tool_calls(value: Value, at: &str) -> Result<Vec<ToolCall>> {
    let items = match value {
        Value::Array(items) if !items.is_empty() => items,
        other => {
            return Err(Error::invalid(
                at,
                format!(
                    "must be a non-empty list of {{id, type: function, function: {{name, arguments}}}} objects, got {}",
                    match &other {
                        Value::Array(_) => "an empty list",
                        other => type_name(other),
                    }
                ),
            ))
        }
    };
    let mut calls: Vec<ToolCall> = Vec::with_capacity(items.len());
    for (i, item) in items.into_iter().enumerate() {
        let here = format!("{at}[{i}]");
        let Value::Object(mut outer) = item else {
            return Err(Error::invalid(
                here,
                format!("must be an object, got {}", type_name(&item)),
            ));
        };
        let id = match outer.remove("id") {
            Some(Value::String(id)) if !id.trim().is_empty() => id,
            Some(Value::String(_)) | None | Some(Value::Null) => {
                return Err(Error::invalid(
                    format!("{here}.id"),
                    "is required and must not be empty",
                ))
            }
            Some(other) => {
                return Err(Error::invalid(
                    format!("{here}.id"),
                    format!("must be a string, got {}", type_name(&other)),
                ))
            }
        };
        if calls.iter().any(|c| c.id == id) {
            return Err(Error::invalid(
                format!("{here}.id"),
                format!("must be unique, {} is used twice", echo(&id)),
            ));
        }
        let (fn_at, mut fields) = function_fields(Value::Object(outer), here)?;
        let name = parse_name(fields.remove("name"), &format!("{fn_at}.name"))?;
        let arguments = match fields.remove("arguments") {
            None | Some(Value::Null) => "{}".to_string(),
            Some(Value::Object(args)) => canonical(Value::Object(args)).to_string(),
            Some(Value::String(text)) => match serde_json::from_str::<Value>(&text) {
                Ok(args @ Value::Object(_)) => canonical(args).to_string(),
                _ => {
                    return Err(Error::invalid(
                        format!("{fn_at}.arguments"),
                        "must be a JSON object or its text",
                    ))
                }
            },
            Some(other) => {
                return Err(Error::invalid(
                    format!("{fn_at}.arguments"),
                    format!("must be a JSON object, got {}", type_name(&other)),
                ))
            }
        };
        if let Some(unknown) = fields.keys().next() {
            return Err(Error::invalid(
                format!("{fn_at}.{}", echo_key(unknown)),
                "is not a known field; expected id, name and arguments",
            ));
        }
        calls.push(ToolCall {
            id,
            name,
            arguments,
        });
    }
    Ok(calls)
}

/// A short description of a JSON value for an error message.
fn shown(value: &Value) -> String {
    match value {
        Value::String(text) => echo(text),
        other => type_name(other).to_string(),
    }
}

/// `value` with every object's keys in sorted order, whatever the map type.
pub(crate) fn canonical(value: Value) -> Value {
    match value {
        Value::Object(fields) => {
            let mut entries: Vec<(String, Value)> = fields.into_iter().collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            Value::Object(
                entries
                    .into_iter()
                    .map(|(k, v)| (k, canonical(v)))
                    .collect(),
            )
        }
        Value::Array(items) => Value::Array(items.into_iter().map(canonical).collect()),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn field_of(err: Error) -> String {
        match err {
            Error::InvalidRequest { field, .. } => field,
            other => panic!("expected InvalidRequest, got {other:?}"),
        }
    }

    fn weather() -> Value {
        json!({"type": "function", "function": {
            "name": "get_weather",
            "description": "Weather of a city",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
        }})
    }

    #[test]
    fn both_shapes_read_the_same_tool_with_canonical_parameters() {
        let long = parse_tools(json!([weather()])).unwrap();
        let short = parse_tools(json!([{
            "name": "get_weather",
            "description": "Weather of a city",
            "parameters": {"required": ["city"], "type": "object", "properties": {"city": {"type": "string"}}},
        }]))
        .unwrap();
        assert_eq!(long, short, "key order does not change the request");
        assert_eq!(
            long[0].parameters.as_str(),
            r#"{"properties":{"city":{"type":"string"}},"required":["city"],"type":"object"}"#
        );
        let bare = parse_tools(json!([{"name": "now"}])).unwrap();
        assert_eq!(
            bare[0].parameters.to_value(),
            json!({"type": "object", "properties": {}})
        );
        assert_eq!(bare[0].description, None);
    }

    #[test]
    fn tool_errors_name_the_field() {
        let err = |v: Value| field_of(parse_tools(v).unwrap_err());
        assert_eq!(err(json!([])), "tools");
        assert_eq!(err(json!({"name": "x"})), "tools");
        assert_eq!(err(json!([weather(), 3])), "tools[1]");
        assert_eq!(
            err(json!([weather(), {"type": "function", "function": {"name": "a b"}}])),
            "tools[1].function.name"
        );
        assert_eq!(err(json!([{"name": "x".repeat(65)}])), "tools[0].name");
        assert_eq!(err(json!([{"description": "no name"}])), "tools[0].name");
        assert_eq!(err(json!([weather(), weather()])), "tools[1].function.name");
        assert_eq!(
            err(json!([{"name": "x", "parameters": {"type": "string"}}])),
            "tools[0].parameters"
        );
        assert_eq!(
            err(json!([{"name": "x", "parameters": "{}"}])),
            "tools[0].parameters"
        );
        assert_eq!(
            err(json!([{"type": "retrieval", "function": {"name": "x"}}])),
            "tools[0].type"
        );
        assert_eq!(
            err(json!([{"name": "x", "strict": true}])),
            "tools[0].strict"
        );
        let many: Vec<Value> = (0..=MAX_TOOLS)
            .map(|i| json!({"name": format!("t{i}")}))
            .collect();
        assert_eq!(err(Value::Array(many)), "tools");
    }

    #[test]
    fn tool_choice_must_name_a_declared_tool() {
        let tools = parse_tools(json!([weather()])).unwrap();
        let choice = |v: Value| parse_tool_choice(v, &tools);
        assert_eq!(choice(json!("auto")).unwrap(), Some(ToolChoice::Auto));
        assert_eq!(choice(json!("none")).unwrap(), Some(ToolChoice::None));
        assert_eq!(
            choice(json!("required")).unwrap(),
            Some(ToolChoice::Required)
        );
        let named = Some(ToolChoice::Tool("get_weather".into()));
        assert_eq!(
            choice(json!({"type": "function", "function": {"name": "get_weather"}})).unwrap(),
            named
        );
        assert_eq!(choice(json!({"name": "get_weather"})).unwrap(), named);
        assert_eq!(
            choice(json!({"type": "function", "name": "get_weather"})).unwrap(),
            named
        );
        let err = |v: Value| field_of(choice(v).unwrap_err());
        assert_eq!(
            err(json!({"type": "function", "function": {"name": "other"}})),
            "tool_choice.function.name"
        );
        assert_eq!(err(json!({"name": "other"})), "tool_choice.name");
        assert_eq!(err(json!("any")), "tool_choice");
        assert_eq!(err(json!(3)), "tool_choice");
        // Without tools, auto and none say nothing; anything else is refused.
        assert_eq!(parse_tool_choice(json!("none"), &[]).unwrap(), None);
        assert_eq!(
            field_of(parse_tool_choice(json!("required"), &[]).unwrap_err()),
            "tool_choice"
        );
    }

    #[test]
    fn tool_calls_are_read_in_both_shapes_with_arguments_as_object_text() {
        let long = parse_tool_calls(
            json!([{"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\": \"Paris\"}"}}]),
            "m",
        )
        .unwrap();
        let short = parse_tool_calls(
            json!([{"id": "call_1", "name": "get_weather", "arguments": {"city": "Paris"}}]),
            "m",
        )
        .unwrap();
        assert_eq!(long, short);
        assert_eq!(long[0].arguments, r#"{"city":"Paris"}"#);
        assert_eq!(long[0].arguments_object(), json!({"city": "Paris"}));
        let err = |v: Value| field_of(parse_tool_calls(v, "m").unwrap_err());
        assert_eq!(err(json!([])), "m");
        assert_eq!(err(json!([{"name": "f"}])), "m[0].id");
        assert_eq!(
            err(json!([{"id": "a", "function": {"name": "f", "arguments": "[1]"}}])),
            "m[0].function.arguments"
        );
        assert_eq!(
            err(json!([{"id": "a", "name": "f"}, {"id": "a", "name": "g"}])),
            "m[1].id"
        );
        assert_eq!(err(json!([{"id": "a", "name": "f", "x": 1}])), "m[0].x");
    }
}
