//! Structured output in `llm.chat`: `response_format` asks for an answer in
//! JSON (`json_object`) or in JSON matching a JSON Schema (`json_schema`),
//! in OpenAI's shape. The schema is compiled when the request is read, so a
//! schema that does not compile fails before anything is sent; every answer
//! is then parsed and checked against it, whichever provider wrote it, and
//! one that does not hold is a malformed answer (the next provider is
//! asked), never handed on.
//!
//! ```
//! use polyrelay::capability::Request;
//! use serde_json::json;
//! let person = json!({"type": "json_schema", "json_schema": {
//!     "name": "person",
//!     "schema": {"type": "object", "properties": {"age": {"type": "integer"}}, "required": ["age"]},
//! }});
//! let chat = Request::parse("llm.chat", json!({
//!     "messages": [{"role": "user", "content": "Ada Lovelace's age at death?"}],
//!     "response_format": person,
//! }));
//! assert!(chat.is_ok());
//! let bad = Request::parse("llm.chat", json!({
//!     "messages": [{"role": "user", "content": "Hi"}],
//!     "response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "strin"}}},
//! }));
//! assert!(bad.unwrap_err().to_string().contains("response_format.json_schema.schema"));
//! ```

use std::collections::HashMap;
use std::sync::{Arc, LazyLock};

use parking_lot::Mutex;
use serde::ser::SerializeMap;
use serde::Serialize;
use serde_json::{Map, Value};

use super::tools::{canonical, optional_description, JsonSchema};
use crate::echo::{bound_message, echo, echo_key, type_name};
use crate::error::{Error, ProviderFailure, Result};

/// What form the answer must take.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ResponseFormat {
    /// Any JSON object.
    JsonObject,
    /// JSON matching a schema.
    JsonSchema(SchemaFormat),
}

/// A named JSON Schema the answer must match (OpenAI's `json_schema`).
#[derive(Debug, Clone)]
pub struct SchemaFormat {
    /// Its name: 1 to 64 letters, digits, `_` or `-`.
    pub name: String,
    /// What the answer is, for the model.
    pub description: Option<String>,
    /// The schema, as canonical JSON text (so the query stays a cache key).
    pub schema: JsonSchema,
    /// Whether the provider should constrain its decoding to the schema
    /// (OpenAI's and Groq's `strict`; other providers always constrain
    /// when they can). The answer is checked against the schema either way.
    pub strict: bool,
    /// The compiled schema, shared by the clones of one request.
    validator: Arc<jsonschema::Validator>,
}

// The compiled schema follows from the text: equality and hashing are
// those of the text, so equal requests are equal cache keys.
impl PartialEq for SchemaFormat {
    fn eq(&self, other: &Self) -> bool {
        (&self.name, &self.description, &self.schema, self.strict)
            == (&other.name, &other.description, &other.schema, other.strict)
    }
}

impl Eq for SchemaFormat {}

impl std::hash::Hash for SchemaFormat {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        (&self.name, &self.description, &self.schema, self.strict).hash(state);
    }
}

/// The OpenAI request shape, which the OpenAI-compatible family sends as
/// is: `{"type": "json_object"}` or `{"type": "json_schema", "json_schema":
/// {name, description, schema, strict}}`.
impl Serialize for ResponseFormat {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(2))?;
        match self {
            Self::JsonObject => map.serialize_entry("type", "json_object")?,
            Self::JsonSchema(format) => {
                map.serialize_entry("type", "json_schema")?;
                let mut inner = Map::new();
                inner.insert("name".into(), format.name.clone().into());
                if let Some(description) = &format.description {
                    inner.insert("description".into(), description.clone().into());
                }
                inner.insert("schema".into(), format.schema.to_value());
                inner.insert("strict".into(), format.strict.into());
                map.serialize_entry("json_schema", &inner)?;
            }
        }
        map.end()
    }
}

impl ResponseFormat {
    /// The schema, when there is one.
    pub fn schema(&self) -> Option<&JsonSchema> {
        match self {
            Self::JsonObject => None,
            Self::JsonSchema(format) => Some(&format.schema),
        }
    }

    /// What a provider without a native way to ask for this form is told,
    /// as a system instruction (the answer is checked all the same).
    pub fn instruction(&self) -> String {
        match self {
            Self::JsonObject => {
                "Answer with one JSON object and nothing else: no text before or after it, no code fence."
                    .to_string()
            }
            Self::JsonSchema(format) => format!(
                "Answer with one JSON value and nothing else: no text before or after it, no code fence. \
                 It must match this JSON Schema: {}",
                format.schema.as_str()
            ),
        }
    }

    /// The answer's text as a JSON value of this form, or a malformed
    /// answer naming why: not JSON, not an object (`json_object`), or the
    /// first place where it breaks the schema (its path and the rule, never
    /// the answer's text). An answer wrapped whole in a Markdown code
    /// fence is read inside it: models asked for JSON by instruction alone
    /// (Anthropic's without a schema, any model behind a gateway that drops
    /// the format) often write one.
    pub fn check(&self, text: &str) -> std::result::Result<Value, ProviderFailure> {
        let json = unfenced(text);
        let value: Value = serde_json::from_str(json).map_err(|e| {
            ProviderFailure::malformed(format!(
                "the answer is not JSON ({} characters): {}",
                text.chars().count(),
                bound_message(&e.to_string())
            ))
        })?;
        match self {
            Self::JsonObject if !value.is_object() => Err(ProviderFailure::malformed(format!(
                "the answer is {}, not a JSON object",
                type_name(&value)
            ))),
            Self::JsonObject => Ok(value),
            Self::JsonSchema(format) => {
                let failure = format.validator.iter_errors(&value).next().map(|error| {
                    let at = error.instance_path().to_string();
                    ProviderFailure::malformed(format!(
                        "the answer does not match the schema {} at `{}`: {}",
                        echo(&format.name),
                        if at.is_empty() {
                            "/".to_string()
                        } else {
                            short(&at, 80)
                        },
                        // Masked: the rule, never the answer's value.
                        short(&error.masked().to_string(), 160)
                    ))
                });
                match failure {
                    None => Ok(value),
                    Some(failure) => Err(failure),
                }
            }
        }
    }
}

/// The validator's words (which may hold a key of the schema or of the
/// answer) cut to `max` characters and their length, on one line.
fn short(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        None => bound_message(text),
        Some((cut, _)) => format!(
            "{}… ({} characters)",
            bound_message(&text[..cut]),
            text.chars().count()
        ),
    }
}

/// `text` without a Markdown code fence around all of it (```` ```json ````
/// or ```` ``` ````), else as it is.
fn unfenced(text: &str) -> &str {
    let trimmed = text.trim();
    let Some(inner) = trimmed
        .strip_prefix("```")
        .and_then(|t| t.strip_suffix("```"))
    else {
        return text;
    };
    let inner = inner.strip_prefix("json").unwrap_or(inner);
    match inner.strip_prefix(['\n', '\r', ' ']) {
        Some(body) if !body.contains("```") => body,
        _ => text,
    }
}

/// Reads `response_format`: `{"type": "text"}` (the default: nothing is
/// asked, so `None`), `{"type": "json_object"}`, or `{"type":
/// "json_schema", "json_schema": {name, description, schema, strict}}`,
/// whose schema must compile.
pub(crate) fn parse_response_format(value: Value) -> Result<Option<ResponseFormat>> {
    let Value::Object(mut fields) = value else {
        return Err(Error::invalid(
            "response_format",
            format!(
                "must be {{\"type\": \"text\" | \"json_object\" | \"json_schema\", …}}, got {}",
                type_name(&value)
            ),
        ));
    };
    let kind = match fields.remove("type") {
        Some(Value::String(kind)) => kind,
        None | Some(Value::Null) => {
            return Err(Error::invalid("response_format.type", "is required"))
        }
        Some(other) => {
            return Err(Error::invalid(
                "response_format.type",
                format!("must be a string, got {}", type_name(&other)),
            ))
        }
    };
    let expected = match kind.as_str() {
        "text" | "json_object" => "type",
        "json_schema" => "type and json_schema",
        other => {
            return Err(Error::invalid(
                "response_format.type",
                format!(
                    "must be text, json_object or json_schema, got {}",
                    echo(other)
                ),
            ))
        }
    };
    let inner = fields.remove("json_schema");
    if let Some(unknown) = fields.keys().next() {
        return Err(Error::invalid(
            format!("response_format.{}", echo_key(unknown)),
            format!("is not a known field; expected {expected}"),
        ));
    }
    match kind.as_str() {
        "text" | "json_object" if inner.is_some() => Err(Error::invalid(
            "response_format.json_schema",
            format!("is only for type json_schema, not {kind}"),
        )),
        "text" => Ok(None),
        "json_object" => Ok(Some(ResponseFormat::JsonObject)),
        _ => parse_schema_format(inner).map(|f| Some(ResponseFormat::JsonSchema(f))),
    }
}

fn parse_schema_format(value: Option<Value>) -> Result<SchemaFormat> {
    const AT: &str = "response_format.json_schema";
    let mut fields = match value {
        Some(Value::Object(fields)) => fields,
        None | Some(Value::Null) => {
            return Err(Error::invalid(
                AT,
                "is required: {name, schema, description, strict}",
            ))
        }
        Some(other) => {
            return Err(Error::invalid(
                AT,
                format!(
                    "must be a {{name, schema, description, strict}} object, got {}",
                    type_name(&other)
                ),
            ))
        }
    };
    let name = match fields.remove("name") {
        Some(Value::String(name))
            if (1..=64).contains(&name.len())
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-') =>
        {
            name
        }
        Some(Value::String(name)) => {
            return Err(Error::invalid(
                format!("{AT}.name"),
                format!(
                    "must be 1 to 64 letters, digits, _ or -, got {}",
                    echo(&name)
                ),
            ))
        }
        // OpenAI requires a name; the others take none. One is made rather
        // than refusing a schema that every provider but one would take.
        None | Some(Value::Null) => "response".to_string(),
        Some(other) => {
            return Err(Error::invalid(
                format!("{AT}.name"),
                format!("must be a string, got {}", type_name(&other)),
            ))
        }
    };
    let description =
        optional_description(fields.remove("description"), &format!("{AT}.description"))?;
    let strict = match fields.remove("strict") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(strict)) => strict,
        Some(other) => {
            return Err(Error::invalid(
                format!("{AT}.strict"),
                format!("must be a boolean, got {}", type_name(&other)),
            ))
        }
    };
    let schema = match fields.remove("schema") {
        Some(schema @ Value::Object(_)) => schema,
        None | Some(Value::Null) => {
            return Err(Error::invalid(format!("{AT}.schema"), "is required"))
        }
        Some(other) => {
            return Err(Error::invalid(
                format!("{AT}.schema"),
                format!("must be a JSON Schema object, got {}", type_name(&other)),
            ))
        }
    };
    if let Some(unknown) = fields.keys().next() {
        return Err(Error::invalid(
            format!("{AT}.{}", echo_key(unknown)),
            "is not a known field; expected name, description, schema and strict",
        ));
    }
    let schema = JsonSchema::from_value(canonical(schema));
    let validator = compiled(&schema)?;
    Ok(SchemaFormat {
        name,
        description,
        schema,
        strict,
        validator,
    })
}

/// Most compiled schemas kept; an application uses a handful.
const COMPILED_MAX: usize = 64;

/// Schemas compiled earlier, by their canonical text: an application sends
/// the same few schemas call after call, and compiling one costs far more
/// than finding it here (it is parsed into a tree of validators, its
/// regular expressions built). Each request then holds its compiled schema,
/// so a call compiles at most once, whatever its retries and fallbacks.
static COMPILED: LazyLock<Mutex<HashMap<String, Arc<jsonschema::Validator>>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));

/// The schema compiled, or the invalid request naming why it does not
/// compile. Only the schema itself is read: a `$ref` to anything outside
/// it fails, since nothing is fetched (the crate's HTTP and file
/// resolution are not built in).
fn compiled(schema: &JsonSchema) -> Result<Arc<jsonschema::Validator>> {
    if let Some(validator) = COMPILED.lock().get(schema.as_str()) {
        return Ok(Arc::clone(validator));
    }
    let validator = jsonschema::validator_for(&schema.to_value()).map_err(|e| {
        let at = e.instance_path().to_string();
        Error::invalid(
            "response_format.json_schema.schema",
            format!(
                "is not a valid JSON Schema{}: {}",
                if at.is_empty() {
                    String::new()
                } else {
                    format!(" at `{}`", short(&at, 80))
                },
                // Masked: the rule broken, not the schema's value, which
                // may be anything the caller wrote.
                short(&e.masked().to_string(), 160)
            ),
        )
    })?;
    let validator = Arc::new(validator);
    let mut cache = COMPILED.lock();
    if cache.len() >= COMPILED_MAX {
        // Bounded by dropping one at random: schemas made per call (say,
        // with an enum of today's ids) must not grow it without end.
        if let Some(key) = cache.keys().next().cloned() {
            cache.remove(&key);
        }
    }
    // Another call may have compiled it meanwhile: the first one is kept.
    Ok(Arc::clone(
        cache
            .entry(schema.as_str().to_string())
            .or_insert(validator),
    ))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::error::FailureClass;

    fn field_of(err: Error) -> String {
        match err {
            Error::InvalidRequest { field, .. } => field,
            other => panic!("expected InvalidRequest, got {other:?}"),
        }
    }

    fn person() -> Value {
        json!({"type": "json_schema", "json_schema": {
            "name": "person",
            "strict": true,
            "schema": {
                "type": "object",
                "properties": {"name": {"type": "string"}, "age": {"type": "integer", "minimum": 0}},
                "required": ["name", "age"],
                "additionalProperties": false,
            },
        }})
    }

    fn format(value: Value) -> ResponseFormat {
        parse_response_format(value).unwrap().unwrap()
    }

    #[test]
    fn the_three_shapes_are_read_and_text_asks_nothing() {
        assert_eq!(
            parse_response_format(json!({"type": "text"})).unwrap(),
            None
        );
        assert_eq!(
            format(json!({"type": "json_object"})),
            ResponseFormat::JsonObject
        );
        let ResponseFormat::JsonSchema(schema) = format(person()) else {
            panic!("a schema");
        };
        assert_eq!((schema.name.as_str(), schema.strict), ("person", true));
        // Canonical text: key order does not change the request.
        let reordered = json!({"json_schema": {"schema": {
            "additionalProperties": false,
            "required": ["name", "age"],
            "properties": {"age": {"minimum": 0, "type": "integer"}, "name": {"type": "string"}},
            "type": "object",
        }, "strict": true, "name": "person"}, "type": "json_schema"});
        assert_eq!(format(reordered), format(person()));
        // Serialised in OpenAI's shape.
        let wire = serde_json::to_value(format(person())).unwrap();
        assert_eq!(wire["type"], "json_schema");
        assert_eq!(wire["json_schema"]["name"], "person");
        assert_eq!(wire["json_schema"]["strict"], true);
        assert_eq!(
            wire["json_schema"]["schema"],
            person()["json_schema"]["schema"]
        );
        let unnamed =
            format(json!({"type": "json_schema", "json_schema": {"schema": {"type": "object"}}}));
        assert_eq!(
            serde_json::to_value(unnamed).unwrap()["json_schema"]["name"],
            "response"
        );
    }

    #[test]
    fn errors_name_the_field_and_a_schema_that_does_not_compile_is_refused() {
        let err = |v: Value| field_of(parse_response_format(v).unwrap_err());
        assert_eq!(err(json!("json")), "response_format");
        assert_eq!(err(json!({})), "response_format.type");
        assert_eq!(err(json!({"type": "yaml"})), "response_format.type");
        assert_eq!(
            err(json!({"type": "json_object", "x": 1})),
            "response_format.x"
        );
        assert_eq!(
            err(json!({"type": "json_object", "json_schema": {}})),
            "response_format.json_schema"
        );
        assert_eq!(
            err(json!({"type": "json_schema"})),
            "response_format.json_schema"
        );
        assert_eq!(
            err(json!({"type": "json_schema", "json_schema": {"name": "a b", "schema": {}}})),
            "response_format.json_schema.name"
        );
        assert_eq!(
            err(json!({"type": "json_schema", "json_schema": {"name": "a"}})),
            "response_format.json_schema.schema"
        );
        assert_eq!(
            err(json!({"type": "json_schema", "json_schema": {"schema": {}, "strict": "yes"}})),
            "response_format.json_schema.strict"
        );
        assert_eq!(
            err(json!({"type": "json_schema", "json_schema": {"schema": {}, "extra": 1}})),
            "response_format.json_schema.extra"
        );
        for broken in [
            json!({"type": "strin"}),
            json!({"type": "object", "properties": {"a": {"minimum": "zero"}}}),
            json!({"pattern": "("}),
            json!({"$ref": "https://example.com/schema.json"}),
        ] {
            let e = parse_response_format(
                json!({"type": "json_schema", "json_schema": {"name": "x", "schema": broken}}),
            )
            .unwrap_err();
            let text = e.to_string();
            assert_eq!(field_of(e), "response_format.json_schema.schema", "{text}");
        }
    }

    #[test]
    fn answers_are_parsed_and_checked_naming_the_first_failing_place() {
        let schema = format(person());
        assert_eq!(
            schema.check(r#"{"name": "Ada", "age": 36}"#).unwrap(),
            json!({"name": "Ada", "age": 36})
        );
        let f = schema
            .check(r#"{"name": "Ada", "age": "thirty-six"}"#)
            .unwrap_err();
        assert_eq!(f.class, FailureClass::MalformedResponse);
        assert!(f.message.contains("at `/age`"), "{}", f.message);
        assert!(
            !f.message.contains("thirty-six"),
            "never the answer's value: {}",
            f.message
        );
        let f = schema.check(r#"{"name": "Ada"}"#).unwrap_err();
        assert!(f.message.contains("at `/`"), "{}", f.message);
        assert!(f.message.contains("age"), "{}", f.message);
        let f = schema.check("Ada was 36.").unwrap_err();
        assert!(
            f.message.starts_with("the answer is not JSON"),
            "{}",
            f.message
        );
        assert!(!f.message.contains("Ada"), "{}", f.message);

        let object = ResponseFormat::JsonObject;
        assert_eq!(object.check(" {\"a\": 1}\n").unwrap(), json!({"a": 1}));
        let f = object.check("[1, 2]").unwrap_err();
        assert_eq!(f.message, "the answer is a list, not a JSON object");
    }

    #[test]
    fn a_reply_wrapped_whole_in_a_code_fence_is_read_inside_it() {
        let object = ResponseFormat::JsonObject;
        for text in [
            "```json\n{\"a\": 1}\n```",
            "```\n{\"a\": 1}\n```",
            "  ```json {\"a\": 1}```  ",
        ] {
            assert_eq!(object.check(text).unwrap(), json!({"a": 1}), "{text}");
        }
        for text in [
            "Here it is: ```json\n{\"a\": 1}\n```",
            "```json\n{\"a\": 1}\n``` and ```{}```",
            "```yaml\na: 1\n```",
        ] {
            assert!(object.check(text).is_err(), "{text}");
        }
    }

    #[test]
    fn equal_schemas_share_one_compiled_validator() {
        let (ResponseFormat::JsonSchema(a), ResponseFormat::JsonSchema(b)) =
            (format(person()), format(person()))
        else {
            panic!("schemas");
        };
        assert!(Arc::ptr_eq(&a.validator, &b.validator));
    }

    #[test]
    fn the_instruction_carries_the_schema() {
        let text = format(person()).instruction();
        assert!(text.contains(r#""required":["name","age"]"#), "{text}");
        assert!(ResponseFormat::JsonObject
            .instruction()
            .contains("JSON object"));
    }
}
