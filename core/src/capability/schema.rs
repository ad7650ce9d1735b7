//! The parameters each capability takes, declared once per request type.
//!
//! A request type's [`ParamTable`] is what its parser reads and what the
//! published schema says, so the two cannot disagree: the parser's view of
//! the parameters only shows
//! the parser the parameters its table declares (any other is refused as
//! unknown, listing the declared ones), and it enforces the declared bounds
//! and defaults of numbers and the declared length of strings. A test runs
//! every declared parameter through its parser (example, default, bounds,
//! choices, required, alternatives).
//!
//! ```
//! use polyrelay::capability::CapabilityId;
//! let table = CapabilityId::WeatherForecast.parameters();
//! let days = table.param("days").unwrap();
//! assert!(!days.required);
//! let schema = CapabilityId::WeatherForecast.parameter_schema();
//! assert_eq!(schema["properties"]["days"]["default"], 3);
//! assert_eq!(schema["properties"]["days"]["maximum"], 16);
//! ```

use serde::Serialize;
use serde_json::{json, Map, Value};

/// What a parameter holds, with the bounds its parser enforces.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ParamKind {
    /// Text, trimmed, not empty.
    String {
        /// Most characters accepted, when limited.
        max_chars: Option<u32>,
    },
    /// A whole number, also accepted as a numeric string.
    Integer {
        /// Smallest value accepted.
        min: u64,
        /// Largest value accepted.
        max: u64,
    },
    /// A number, also accepted as a numeric string.
    Number {
        /// Smallest value accepted.
        min: f64,
        /// Largest value accepted.
        max: f64,
    },
    /// `true` or `false`.
    Boolean,
    /// A list of names, or one string of comma-separated names (`"EUR,GBP"`).
    StringList,
    /// One text or a list of texts, each kept whole (no comma splitting).
    TextList {
        /// Most texts accepted.
        max_items: u32,
        /// Most characters of one text, when limited.
        max_chars: Option<u32>,
    },
    /// A date, `YYYY-MM-DD`, or `latest`.
    Date,
    /// One of a fixed set of words.
    Choice {
        /// The accepted words.
        values: &'static [&'static str],
    },
    /// A chat conversation: a list of `{role, content}` objects, role
    /// `system`, `user`, `assistant` (with `tool_calls`) or `tool` (with
    /// `tool_call_id`).
    Messages,
    /// Functions a model may call: a list of
    /// `{"type": "function", "function": {name, description, parameters}}`
    /// or `{name, description, parameters}` objects.
    Tools,
    /// `auto`, `none`, `required`, or one declared tool.
    ToolChoice,
    /// The form of a chat answer: `{"type": "text" | "json_object"}` or
    /// `{"type": "json_schema", "json_schema": {name, description, schema,
    /// strict}}`, the schema one that compiles.
    ResponseFormat,
    /// Two names without spaces joined by `/`, the second of which may hold
    /// more (`provider/model`, as an embeddings result names its space).
    Qualified {
        /// Most characters accepted.
        max_chars: u32,
    },
}

/// What [`ParamKind::Qualified`] accepts, as a JSON Schema pattern.
const QUALIFIED_PATTERN: &str = r"^[^/\s]+/\S+$";

/// The value a parameter takes when it is not given.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(untagged)]
pub enum ParamDefault {
    /// A whole number.
    Integer(u64),
    /// A word or text.
    Text(&'static str),
    /// A list of names.
    Texts(&'static [&'static str]),
    /// A boolean.
    Boolean(bool),
}

/// One parameter a capability takes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Param {
    /// Its name in the parameter object.
    pub name: &'static str,
    /// What it holds.
    pub kind: ParamKind,
    /// Whether every call must give it (parameters that are one of
    /// several alternatives are not: see [`ParamTable::alternatives`]).
    pub required: bool,
    /// The value used when it is not given; `None` when leaving it out
    /// means something of its own (every currency, the provider's default
    /// model...).
    pub default: Option<ParamDefault>,
    /// One line saying what it is.
    pub description: &'static str,
    /// A valid value, as JSON text.
    pub example: &'static str,
}

impl Param {
    /// A parameter, optional and without a default until
    /// [`Param::required`] or [`Param::or`] says otherwise.
    pub const fn new(
        name: &'static str,
        kind: ParamKind,
        description: &'static str,
        example: &'static str,
    ) -> Self {
        Self {
            name,
            kind,
            required: false,
            default: None,
            description,
            example,
        }
    }

    /// The same parameter, required.
    pub const fn required(self) -> Self {
        Self {
            required: true,
            ..self
        }
    }

    /// The same parameter, with a default.
    pub const fn or(self, default: ParamDefault) -> Self {
        Self {
            default: Some(default),
            ..self
        }
    }

    /// The parameter as a JSON Schema property.
    fn json_schema(&self) -> Value {
        let mut schema = match self.kind {
            ParamKind::String { max_chars } => {
                let mut s = json!({"type": "string", "minLength": 1});
                if let Some(max) = max_chars {
                    s["maxLength"] = max.into();
                }
                s
            }
            ParamKind::Integer { min, max } => {
                json!({"type": "integer", "minimum": min, "maximum": max})
            }
            ParamKind::Number { min, max } => {
                json!({"type": "number", "minimum": min, "maximum": max})
            }
            ParamKind::Boolean => json!({"type": "boolean"}),
            ParamKind::StringList => json!({
                "type": ["array", "string"],
                "items": {"type": "string", "minLength": 1},
                "minItems": 1,
            }),
            ParamKind::TextList {
                max_items,
                max_chars,
            } => {
                let mut text = json!({"type": "string", "minLength": 1});
                if let Some(max) = max_chars {
                    text["maxLength"] = max.into();
                }
                json!({
                    "anyOf": [
                        text,
                        {"type": "array", "items": text, "minItems": 1, "maxItems": max_items},
                    ],
                })
            }
            ParamKind::Date => json!({
                "type": "string",
                "anyOf": [{"format": "date"}, {"const": "latest"}],
            }),
            ParamKind::Choice { values } => json!({"type": "string", "enum": values}),
            ParamKind::Qualified { max_chars } => json!({
                "type": "string",
                "pattern": QUALIFIED_PATTERN,
                "maxLength": max_chars,
            }),
            ParamKind::Messages => json!({
                "type": "array",
                "minItems": 1,
                "items": {
                    "type": "object",
                    "properties": {
                        "role": {"enum": ["system", "user", "assistant", "tool"]},
                        "content": {"type": ["string", "null"]},
                        "tool_calls": {"type": "array", "minItems": 1, "items": tool_call_schema()},
                        "tool_call_id": {"type": "string", "minLength": 1},
                    },
                    "required": ["role"],
                    "additionalProperties": false,
                },
            }),
            ParamKind::Tools => json!({
                "type": "array",
                "minItems": 1,
                "maxItems": crate::capability::llm::tools::MAX_TOOLS,
                "items": {"anyOf": [
                    {
                        "type": "object",
                        "properties": {
                            "type": {"const": "function"},
                            "function": function_schema(),
                        },
                        "required": ["function"],
                        "additionalProperties": false,
                    },
                    function_schema(),
                ]},
            }),
            ParamKind::ToolChoice => json!({
                "anyOf": [
                    {"enum": ["auto", "none", "required"]},
                    {
                        "type": "object",
                        "properties": {
                            "type": {"const": "function"},
                            "function": named_schema(),
                        },
                        "required": ["function"],
                        "additionalProperties": false,
                    },
                    named_schema(),
                ],
            }),
            ParamKind::ResponseFormat => json!({
                "anyOf": [
                    {
                        "type": "object",
                        "properties": {"type": {"enum": ["text", "json_object"]}},
                        "required": ["type"],
                        "additionalProperties": false,
                    },
                    {
                        "type": "object",
                        "properties": {
                            "type": {"const": "json_schema"},
                            "json_schema": {
                                "type": "object",
                                "properties": {
                                    "name": {"type": "string", "pattern": TOOL_NAME_PATTERN},
                                    "description": {"type": "string"},
                                    "schema": {"type": "object"},
                                    "strict": {"type": "boolean"},
                                },
                                "required": ["schema"],
                                "additionalProperties": false,
                            },
                        },
                        "required": ["type", "json_schema"],
                        "additionalProperties": false,
                    },
                ],
            }),
        };
        schema["description"] = self.description.into();
        if let Some(default) = self.default {
            schema["default"] = serde_json::to_value(default).unwrap_or(Value::Null);
        }
        if let Ok(example) = serde_json::from_str::<Value>(self.example) {
            schema["examples"] = json!([example]);
        }
        schema
    }
}

/// What a tool's name is, as a JSON Schema pattern.
const TOOL_NAME_PATTERN: &str = "^[a-zA-Z0-9_-]{1,64}$";

/// A function a model may call, in its short form.
fn function_schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "name": {"type": "string", "pattern": TOOL_NAME_PATTERN},
            "description": {"type": "string"},
            "parameters": {"type": "object", "properties": {"type": {"const": "object"}}, "required": ["type"]},
        },
        "required": ["name"],
        "additionalProperties": false,
    })
}

/// A tool named by `tool_choice`.
fn named_schema() -> Value {
    json!({
        "type": "object",
        "properties": {"name": {"type": "string", "pattern": TOOL_NAME_PATTERN}},
        "required": ["name"],
        "additionalProperties": false,
    })
}

/// A call in an assistant message, in the OpenAI shape or the short one.
fn tool_call_schema() -> Value {
    let name = json!({"type": "string", "pattern": TOOL_NAME_PATTERN});
    let arguments = json!({"type": ["string", "object"]});
    json!({"anyOf": [
        {
            "type": "object",
            "properties": {
                "id": {"type": "string", "minLength": 1},
                "type": {"const": "function"},
                "function": {
                    "type": "object",
                    "properties": {"name": name, "arguments": arguments},
                    "required": ["name"],
                    "additionalProperties": false,
                },
            },
            "required": ["id", "function"],
            "additionalProperties": false,
        },
        {
            "type": "object",
            "properties": {"id": {"type": "string", "minLength": 1}, "name": name, "arguments": arguments},
            "required": ["id", "name"],
            "additionalProperties": false,
        },
    ]})
}

/// How the optional parameters of a request combine, beyond each one's
/// `required` flag.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Alternatives {
    /// Nothing beyond the `required` flags.
    None,
    /// Exactly one of these groups must be given, whole (`lat` and `lon`,
    /// or `city`).
    ExactlyOne(&'static [&'static [&'static str]]),
    /// At least one of these groups must be given, whole.
    AtLeastOne(&'static [&'static [&'static str]]),
}

impl Alternatives {
    /// The groups, whichever rule joins them.
    pub fn groups(self) -> &'static [&'static [&'static str]] {
        match self {
            Self::None => &[],
            Self::ExactlyOne(groups) | Self::AtLeastOne(groups) => groups,
        }
    }
}

/// Every parameter one request type reads.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ParamTable {
    /// The parameters, in the order the request type reads them.
    pub params: &'static [Param],
    /// How optional parameters combine.
    pub alternatives: Alternatives,
}

impl ParamTable {
    /// The declared parameter `name`.
    pub fn param(&self, name: &str) -> Option<&'static Param> {
        self.params.iter().find(|p| p.name == name)
    }

    /// The declared names, in order.
    pub fn names(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.params.iter().map(|p| p.name)
    }

    /// The table as a JSON Schema (draft 2020-12) of the parameter object
    /// of `capability`.
    pub fn json_schema(&self, capability: &str) -> Value {
        let properties: Map<String, Value> = self
            .params
            .iter()
            .map(|p| (p.name.to_string(), p.json_schema()))
            .collect();
        let required: Vec<&str> = self
            .params
            .iter()
            .filter(|p| p.required)
            .map(|p| p.name)
            .collect();
        let mut schema = json!({
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "title": capability,
            "type": "object",
            "properties": properties,
            "required": required,
            "additionalProperties": false,
        });
        let groups = |groups: &[&[&str]]| -> Value {
            groups
                .iter()
                .map(|group| json!({"required": group}))
                .collect()
        };
        match self.alternatives {
            Alternatives::None => {}
            Alternatives::ExactlyOne(g) => schema["oneOf"] = groups(g),
            Alternatives::AtLeastOne(g) => schema["anyOf"] = groups(g),
        }
        schema
    }
}

#[cfg(test)]
mod tests {
    //! Every declared parameter of every capability, run through the
    //! capability's parser: the table and the parser agree on names,
    //! types, required, defaults, bounds, choices and alternatives.

    use serde_json::{json, Map, Value};

    use super::*;
    use crate::capability::{CapabilityId, Request};
    use crate::error::{Error, Result};

    fn example(param: &Param) -> Value {
        serde_json::from_str(param.example)
            .unwrap_or_else(|e| panic!("{}: example {}: {e}", param.name, param.example))
    }

    /// A valid parameter object: the required parameters and the group of
    /// alternatives holding `with` (else the first group), at their examples.
    fn base(table: &ParamTable, with: &str) -> Map<String, Value> {
        let groups = table.alternatives.groups();
        let group: &[&str] = groups
            .iter()
            .find(|g| g.contains(&with))
            .or(groups.first())
            .copied()
            .unwrap_or(&[]);
        table
            .params
            .iter()
            .filter(|p| p.required || group.contains(&p.name))
            .map(|p| (p.name.to_string(), example(p)))
            .collect()
    }

    fn with(mut fields: Map<String, Value>, name: &str, value: Value) -> Map<String, Value> {
        fields.insert(name.to_string(), value);
        fields
    }

    fn parse(capability: CapabilityId, fields: &Map<String, Value>) -> Result<Request> {
        capability.parse(Value::Object(fields.clone()))
    }

    #[track_caller]
    fn accepts(capability: CapabilityId, fields: &Map<String, Value>) -> Request {
        parse(capability, fields).unwrap_or_else(|e| panic!("{capability} refused {fields:?}: {e}"))
    }

    #[track_caller]
    fn rejects(capability: CapabilityId, fields: &Map<String, Value>, name: &str) {
        match parse(capability, fields) {
            Err(Error::InvalidRequest { field, .. })
                if field == name
                    || field.starts_with(&format!("{name}["))
                    || field.starts_with(&format!("{name}.")) => {}
            other => panic!("{capability} with {fields:?}: expected {name} refused, got {other:?}"),
        }
    }

    /// Whether the JSON type of `value` fits `kind`.
    fn fits(kind: ParamKind, value: &Value) -> bool {
        match kind {
            ParamKind::String { .. } | ParamKind::Date | ParamKind::Qualified { .. } => {
                value.is_string()
            }
            ParamKind::Integer { .. } => value.is_u64(),
            ParamKind::Number { .. } => value.is_number(),
            ParamKind::Boolean => value.is_boolean(),
            ParamKind::StringList => value
                .as_array()
                .is_some_and(|items| items.iter().all(Value::is_string)),
            ParamKind::TextList { .. } => {
                value.is_string()
                    || value
                        .as_array()
                        .is_some_and(|items| items.iter().all(Value::is_string))
            }
            ParamKind::Choice { values } => value.as_str().is_some_and(|v| values.contains(&v)),
            ParamKind::Messages | ParamKind::Tools => value
                .as_array()
                .is_some_and(|items| items.iter().all(Value::is_object)),
            ParamKind::ToolChoice => value.is_string() || value.is_object(),
            ParamKind::ResponseFormat => value.is_object(),
        }
    }

    fn text(chars: u32) -> Value {
        "a".repeat(chars as usize).into()
    }

    #[test]
    fn tables_are_consistent() {
        for capability in CapabilityId::ALL.iter().copied() {
            let table = capability.parameters();
            let names: Vec<&str> = table.names().collect();
            for (i, name) in names.iter().enumerate() {
                assert!(!names[..i].contains(name), "{capability}: {name} twice");
            }
            for group in table.alternatives.groups() {
                for name in *group {
                    let param = table.param(name);
                    assert!(param.is_some(), "{capability}: {name} undeclared");
                    assert!(param.is_some_and(|p| !p.required && p.default.is_none()));
                }
            }
            for param in table.params {
                assert!(
                    !param.description.is_empty(),
                    "{capability}: {}",
                    param.name
                );
                assert!(
                    fits(param.kind, &example(param)),
                    "{capability}: example of {}",
                    param.name
                );
                if let Some(default) = param.default {
                    assert!(!param.required, "{capability}: {}", param.name);
                    let default = serde_json::to_value(default).unwrap();
                    assert!(
                        fits(param.kind, &default),
                        "{capability}: default of {}",
                        param.name
                    );
                }
            }
        }
    }

    #[test]
    fn the_parser_reads_every_declared_parameter_as_declared() {
        for capability in CapabilityId::ALL.iter().copied() {
            let table = capability.parameters();
            for param in table.params {
                let name = param.name;
                let base = base(table, name);
                accepts(capability, &base);
                // Read by the parser: given its example, it is accepted.
                accepts(capability, &with(base.clone(), name, example(param)));
                // Of its declared type: a value of no declared type is refused.
                rejects(capability, &with(base.clone(), name, json!({"a": 1})), name);
                if param.required {
                    let mut without = base.clone();
                    without.remove(name);
                    rejects(capability, &without, name);
                }
                if let Some(default) = param.default {
                    let default = serde_json::to_value(default).unwrap();
                    assert_eq!(
                        accepts(capability, &base),
                        accepts(capability, &with(base.clone(), name, default)),
                        "{capability}: leaving {name} out is not its declared default"
                    );
                }
                let at = |value: Value| with(base.clone(), name, value);
                match param.kind {
                    ParamKind::Integer { min, max } => {
                        accepts(capability, &at(min.into()));
                        accepts(capability, &at(max.into()));
                        rejects(capability, &at((max + 1).into()), name);
                        rejects(capability, &at((min as f64 - 1.0).into()), name);
                        rejects(capability, &at(json!(1.5)), name);
                    }
                    ParamKind::Number { min, max } => {
                        accepts(capability, &at(min.into()));
                        accepts(capability, &at(max.into()));
                        rejects(capability, &at((max + 1.0).into()), name);
                        rejects(capability, &at((min - 1.0).into()), name);
                    }
                    ParamKind::String { max_chars } => {
                        if let Some(max) = max_chars {
                            accepts(capability, &at(text(max)));
                            rejects(capability, &at(text(max + 1)), name);
                        }
                        rejects(capability, &at(json!(" ")), name);
                    }
                    ParamKind::TextList {
                        max_items,
                        max_chars,
                    } => {
                        let many = |n: u32| Value::Array(vec![json!("a"); n as usize]);
                        accepts(capability, &at(many(max_items)));
                        rejects(capability, &at(many(max_items + 1)), name);
                        rejects(capability, &at(json!([])), name);
                        if let Some(max) = max_chars {
                            accepts(capability, &at(text(max)));
                            rejects(capability, &at(text(max + 1)), name);
                        }
                    }
                    ParamKind::StringList => {
                        let items: Vec<String> = example(param)
                            .as_array()
                            .into_iter()
                            .flatten()
                            .filter_map(|v| v.as_str().map(str::to_string))
                            .collect();
                        assert_eq!(
                            accepts(capability, &at(example(param))),
                            accepts(capability, &at(items.join(",").into())),
                            "{capability}: {name} as a comma-separated string"
                        );
                        rejects(capability, &at(json!([])), name);
                    }
                    ParamKind::Choice { values } => {
                        for value in values {
                            accepts(capability, &at((*value).into()));
                        }
                        rejects(capability, &at(json!("zz-none-of-them")), name);
                    }
                    ParamKind::Date => {
                        accepts(capability, &at(json!("latest")));
                        rejects(capability, &at(json!("2024-02-30")), name);
                    }
                    ParamKind::Boolean => rejects(capability, &at(json!("yes")), name),
                    ParamKind::Messages => rejects(capability, &at(json!([])), name),
                    ParamKind::Tools => {
                        rejects(capability, &at(json!([])), name);
                        let mut twice = example(param);
                        if let Some(items) = twice.as_array_mut() {
                            items.extend(items.clone());
                        }
                        rejects(capability, &at(twice), name);
                        rejects(capability, &at(json!([{"name": "a b"}])), name);
                        rejects(
                            capability,
                            &at(json!([{"name": "f", "parameters": {"type": "array"}}])),
                            name,
                        );
                        accepts(capability, &at(json!([{"name": "f"}])));
                    }
                    ParamKind::ToolChoice => {
                        for value in ["auto", "none"] {
                            accepts(capability, &at(value.into()));
                        }
                        rejects(capability, &at(json!("zz-none-of-them")), name);
                        // Naming a tool, or requiring one, needs tools.
                        rejects(capability, &at(json!("required")), name);
                        rejects(capability, &at(json!({"name": "f"})), name);
                        let tools = with(base.clone(), "tools", json!([{"name": "f"}]));
                        for value in [
                            json!("required"),
                            json!({"name": "f"}),
                            json!({"type": "function", "function": {"name": "f"}}),
                        ] {
                            accepts(capability, &with(tools.clone(), name, value));
                        }
                        rejects(capability, &with(tools, name, json!({"name": "g"})), name);
                    }
                    ParamKind::ResponseFormat => {
                        for value in [
                            json!({"type": "text"}),
                            json!({"type": "json_object"}),
                            json!({"type": "json_schema", "json_schema": {"schema": {"type": "object"}}}),
                        ] {
                            accepts(capability, &at(value));
                        }
                        for value in [
                            json!("json"),
                            json!({"type": "xml"}),
                            json!({"type": "json_schema"}),
                            json!({"type": "json_schema", "json_schema": {"schema": {"type": 3}}}),
                        ] {
                            rejects(capability, &at(value), name);
                        }
                    }
                    ParamKind::Qualified { max_chars } => {
                        let longest = format!("a/{}", "b".repeat(max_chars as usize - 2));
                        accepts(capability, &at(longest.clone().into()));
                        rejects(capability, &at((longest + "b").into()), name);
                        rejects(capability, &at(json!("ab")), name);
                        rejects(capability, &at(json!("a/b c")), name);
                    }
                }
            }
            // Nothing else is read: an undeclared parameter is refused,
            // naming every declared one.
            let unknown = with(base(table, ""), "zz_unknown", json!(1));
            match parse(capability, &unknown) {
                Err(Error::InvalidRequest { field, expected }) => {
                    assert_eq!(field, "zz_unknown");
                    for name in table.names() {
                        assert!(expected.contains(name), "{capability}: {expected}");
                    }
                }
                other => panic!("{capability}: {other:?}"),
            }
        }
    }

    #[test]
    fn the_parser_applies_the_declared_alternatives() {
        for capability in CapabilityId::ALL.iter().copied() {
            let table = capability.parameters();
            let groups = table.alternatives.groups();
            if groups.is_empty() {
                continue;
            }
            let required: Map<String, Value> = table
                .params
                .iter()
                .filter(|p| p.required)
                .map(|p| (p.name.to_string(), example(p)))
                .collect();
            rejects(capability, &required, groups[0][0]);
            let mut all = required.clone();
            for group in groups {
                let mut alone = required.clone();
                for name in *group {
                    let value = table.param(name).map(example).unwrap_or_default();
                    alone.insert(name.to_string(), value.clone());
                    all.insert(name.to_string(), value);
                }
                accepts(capability, &alone);
                // A group given in part is refused.
                if group.len() > 1 {
                    let mut part = required.clone();
                    part.insert(
                        group[0].to_string(),
                        example(table.param(group[0]).unwrap()),
                    );
                    assert!(parse(capability, &part).is_err(), "{capability}: {part:?}");
                }
            }
            match table.alternatives {
                Alternatives::ExactlyOne(_) => {
                    assert!(parse(capability, &all).is_err(), "{capability}: {all:?}")
                }
                Alternatives::AtLeastOne(_) => {
                    accepts(capability, &all);
                }
                Alternatives::None => {}
            }
        }
    }

    #[test]
    fn the_json_schema_states_the_table() {
        let schema = CapabilityId::WeatherForecast.parameter_schema();
        assert_eq!(schema["title"], "weather.forecast");
        assert_eq!(schema["additionalProperties"], false);
        assert_eq!(schema["properties"]["days"]["type"], "integer");
        assert_eq!(schema["properties"]["days"]["minimum"], 1);
        assert_eq!(schema["properties"]["lat"]["maximum"], 90.0);
        assert_eq!(
            schema["oneOf"],
            json!([{"required": ["lat", "lon"]}, {"required": ["city"]}])
        );
        let chat = CapabilityId::LlmChat.parameter_schema();
        assert_eq!(chat["required"], json!(["messages"]));
        assert_eq!(chat["properties"]["stream"]["default"], false);
        let crypto = CapabilityId::CryptoPrice.parameter_schema();
        assert_eq!(
            crypto["properties"]["vs_currencies"]["default"],
            json!(["USD"])
        );
        let music = CapabilityId::MusicSearch.parameter_schema();
        assert_eq!(
            music["properties"]["type"]["enum"],
            json!(["track", "album", "artist"])
        );
        let all = CapabilityId::parameter_schemas();
        assert_eq!(
            all.as_object().map(|m| m.len()),
            Some(CapabilityId::ALL.len())
        );
    }
}
