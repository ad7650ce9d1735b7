//! Reading loosely typed parameters (JSON from Python, C or a CLI) into
//! validated requests, with errors that name the field.

use serde_json::{Map, Value};

use crate::echo::{echo, echo_key, type_name};
use crate::error::{Error, Result};

/// A parameter object being consumed field by field. [`Params::finish`]
/// rejects any field nobody asked for, so a typo never passes silently.
#[derive(Debug)]
pub struct Params {
    fields: Map<String, Value>,
}

impl Params {
    /// Wraps a JSON value, which must be an object (or null for no parameters).
    pub fn new(value: Value) -> Result<Self> {
        match value {
            Value::Object(fields) => Ok(Self { fields }),
            Value::Null => Ok(Self { fields: Map::new() }),
            other => Err(Error::invalid(
                "params",
                format!("must be an object, got {}", type_name(&other)),
            )),
        }
    }

    fn take(&mut self, name: &str) -> Option<Value> {
        match self.fields.remove(name) {
            Some(Value::Null) | None => None,
            Some(value) => Some(value),
        }
    }

    /// An optional number.
    pub fn opt_f64(&mut self, name: &str) -> Result<Option<f64>> {
        match self.take(name) {
            None => Ok(None),
            Some(Value::Number(n)) => n
                .as_f64()
                .filter(|v| v.is_finite())
                .map(Some)
                .ok_or_else(|| Error::invalid(name, "must be a finite number")),
            Some(Value::String(s)) => s
                .trim()
                .parse::<f64>()
                .ok()
                .filter(|v| v.is_finite())
                .map(Some)
                .ok_or_else(|| Error::invalid(name, format!("must be a number, got {}", echo(&s)))),
            Some(other) => Err(Error::invalid(
                name,
                format!("must be a number, got {}", type_name(&other)),
            )),
        }
    }

    /// An optional non-negative integer.
    pub fn opt_u64(&mut self, name: &str) -> Result<Option<u64>> {
        match self.take(name) {
            None => Ok(None),
            Some(Value::Number(n)) => n
                .as_u64()
                .map(Some)
                .ok_or_else(|| Error::invalid(name, "must be a non-negative integer")),
            Some(Value::String(s)) => s.trim().parse::<u64>().map(Some).map_err(|_| {
                Error::invalid(
                    name,
                    format!("must be a non-negative integer, got {}", echo(&s)),
                )
            }),
            Some(other) => Err(Error::invalid(
                name,
                format!("must be a non-negative integer, got {}", type_name(&other)),
            )),
        }
    }

    /// An optional non-empty string, trimmed.
    pub fn opt_str(&mut self, name: &str) -> Result<Option<String>> {
        match self.take(name) {
            None => Ok(None),
            Some(Value::String(s)) if s.trim().is_empty() => {
                Err(Error::invalid(name, "must not be empty"))
            }
            Some(Value::String(s)) => Ok(Some(s.trim().to_string())),
            Some(other) => Err(Error::invalid(
                name,
                format!("must be a string, got {}", type_name(&other)),
            )),
        }
    }

    /// An optional list of non-empty strings; a single string may also be a
    /// comma-separated list (`"EUR,GBP"`).
    pub fn opt_str_list(&mut self, name: &str) -> Result<Option<Vec<String>>> {
        let items: Vec<String> = match self.take(name) {
            None => return Ok(None),
            Some(Value::String(s)) => s.split(',').map(|p| p.trim().to_string()).collect(),
            Some(Value::Array(values)) => {
                let mut items = Vec::with_capacity(values.len());
                for (i, v) in values.into_iter().enumerate() {
                    match v {
                        Value::String(s) => items.push(s.trim().to_string()),
                        other => {
                            return Err(Error::invalid(
                                format!("{name}[{i}]"),
                                format!("must be a string, got {}", type_name(&other)),
                            ))
                        }
                    }
                }
                items
            }
            Some(other) => {
                return Err(Error::invalid(
                    name,
                    format!("must be a list of strings, got {}", type_name(&other)),
                ))
            }
        };
        if items.is_empty() || items.iter().any(String::is_empty) {
            return Err(Error::invalid(name, "must not contain empty entries"));
        }
        Ok(Some(items))
    }

    /// An optional field as given, for fields with a structure of their own
    /// (a list of chat messages) or text that must stay exactly as sent.
    pub fn opt_value(&mut self, name: &str) -> Option<Value> {
        self.take(name)
    }

    /// An optional string or list of strings kept whole (no comma
    /// splitting), for free text such as sentences to translate. Entries
    /// are trimmed and must not be empty.
    pub fn opt_text_list(&mut self, name: &str) -> Result<Option<Vec<String>>> {
        let (values, listed) = match self.take(name) {
            None => return Ok(None),
            Some(Value::Array(values)) => (values, true),
            Some(single @ Value::String(_)) => (vec![single], false),
            Some(other) => {
                return Err(Error::invalid(
                    name,
                    format!(
                        "must be a string or a list of strings, got {}",
                        type_name(&other)
                    ),
                ))
            }
        };
        if values.is_empty() {
            return Err(Error::invalid(name, "must not be an empty list"));
        }
        let field = |i: usize| {
            if listed {
                format!("{name}[{i}]")
            } else {
                name.to_string()
            }
        };
        let mut texts = Vec::with_capacity(values.len());
        for (i, value) in values.into_iter().enumerate() {
            match value {
                Value::String(s) if !s.trim().is_empty() => texts.push(s.trim().to_string()),
                Value::String(_) => return Err(Error::invalid(field(i), "must not be empty")),
                other => {
                    return Err(Error::invalid(
                        field(i),
                        format!("must be a string, got {}", type_name(&other)),
                    ))
                }
            }
        }
        Ok(Some(texts))
    }

    /// Fails on any field that was not consumed.
    pub fn finish(self, allowed: &[&str]) -> Result<()> {
        match self.fields.keys().next() {
            None => Ok(()),
            Some(unknown) => Err(Error::invalid(
                echo_key(unknown),
                format!(
                    "is not a known parameter; expected one of: {}",
                    allowed.join(", ")
                ),
            )),
        }
    }
}
