//! Reading loosely typed parameters (JSON from Python, C or a CLI) into
//! validated requests, with errors that name the field.

use serde_json::{Map, Value};

use super::schema::{ParamDefault, ParamKind, ParamTable};
use crate::echo::{echo, echo_key, echo_number, type_name};
use crate::error::{Error, Result};

/// A parameter object being consumed field by field, as its request type's
/// [`ParamTable`] declares it. Only declared parameters can be read, with the
/// declared bounds; [`Params::finish`] rejects any field nobody read, so a
/// typo never passes silently and a parameter the table does not declare
/// cannot be accepted.
#[derive(Debug)]
pub struct Params {
    fields: Map<String, Value>,
    table: &'static ParamTable,
}

impl Params {
    /// Wraps a JSON value, which must be an object (or null for no
    /// parameters), for a request type declaring `table`.
    pub fn new(value: Value, table: &'static ParamTable) -> Result<Self> {
        match value {
            Value::Object(fields) => Ok(Self { fields, table }),
            Value::Null => Ok(Self {
                fields: Map::new(),
                table,
            }),
            other => Err(Error::invalid(
                "params",
                format!("must be an object, got {}", type_name(&other)),
            )),
        }
    }

    /// The value of `name`, when the table declares it and it is given
    /// (`null` counts as not given). An undeclared name stays in the object,
    /// for [`Params::finish`] to refuse.
    fn take(&mut self, name: &str) -> Option<Value> {
        // Most optional fields are left out: once every given field is
        // read, skip the table's lookup (a scan comparing names).
        if self.fields.is_empty() {
            return None;
        }
        self.table.param(name)?;
        match self.fields.remove(name) {
            Some(Value::Null) | None => None,
            Some(value) => Some(value),
        }
    }

    fn kind(&self, name: &str) -> Option<ParamKind> {
        self.table.param(name).map(|p| p.kind)
    }

    fn default(&self, name: &str) -> Option<ParamDefault> {
        self.table.param(name).and_then(|p| p.default)
    }

    /// The error for a required parameter left out, with its declared example.
    pub fn missing(&self, name: &str) -> Error {
        match self.table.param(name) {
            Some(param) => Error::invalid(name, format!("is required, e.g. {}", param.example)),
            None => Error::invalid(name, "is required"),
        }
    }

    /// An optional number, within its declared bounds.
    pub fn opt_f64(&mut self, name: &str) -> Result<Option<f64>> {
        let value = self.read_f64(name)?;
        if let (Some(v), Some(ParamKind::Number { min, max })) = (value, self.kind(name)) {
            if !(min..=max).contains(&v) {
                return Err(Error::invalid(
                    name,
                    format!("must be between {min} and {max}, got {}", echo_number(v)),
                ));
            }
        }
        Ok(value)
    }

    fn read_f64(&mut self, name: &str) -> Result<Option<f64>> {
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

    /// An optional non-negative integer, within its declared bounds.
    pub fn opt_u64(&mut self, name: &str) -> Result<Option<u64>> {
        let value = self.read_u64(name)?;
        if let (Some(n), Some(ParamKind::Integer { min, max })) = (value, self.kind(name)) {
            if !(min..=max).contains(&n) {
                return Err(Error::invalid(
                    name,
                    format!("must be {min} to {max}, got {n}"),
                ));
            }
        }
        Ok(value)
    }

    /// A non-negative integer within its declared bounds, or its declared
    /// default; without a default it is required.
    pub fn u64(&mut self, name: &str) -> Result<u64> {
        match (self.opt_u64(name)?, self.default(name)) {
            (Some(n), _) | (None, Some(ParamDefault::Integer(n))) => Ok(n),
            (None, _) => Err(self.missing(name)),
        }
    }

    /// [`Params::u64`] for a parameter whose declared bounds fit a `u8`.
    pub fn u8(&mut self, name: &str) -> Result<u8> {
        self.u64(name).map(|n| u8::try_from(n).unwrap_or(u8::MAX))
    }

    fn read_u64(&mut self, name: &str) -> Result<Option<u64>> {
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

    /// An optional non-empty string, trimmed, at most its declared length.
    pub fn opt_str(&mut self, name: &str) -> Result<Option<String>> {
        let text = match self.take(name) {
            None => return Ok(None),
            Some(Value::String(s)) if s.trim().is_empty() => {
                return Err(Error::invalid(name, "must not be empty"))
            }
            Some(Value::String(s)) => s.trim().to_string(),
            Some(other) => {
                return Err(Error::invalid(
                    name,
                    format!("must be a string, got {}", type_name(&other)),
                ))
            }
        };
        if let Some(
            ParamKind::String {
                max_chars: Some(max),
            }
            | ParamKind::Qualified { max_chars: max },
        ) = self.kind(name)
        {
            if text.chars().nth(max as usize).is_some() {
                return Err(Error::invalid(
                    name,
                    format!("must be at most {max} characters"),
                ));
            }
        }
        Ok(Some(text))
    }

    /// A string as [`Params::opt_str`] reads it, or its declared default;
    /// without a default it is required.
    pub fn str(&mut self, name: &str) -> Result<String> {
        match (self.opt_str(name)?, self.default(name)) {
            (Some(text), _) => Ok(text),
            (None, Some(ParamDefault::Text(text))) => Ok(text.to_string()),
            (None, _) => Err(self.missing(name)),
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

    /// A list as [`Params::opt_str_list`] reads it, or its declared
    /// default; without a default it is required.
    pub fn str_list(&mut self, name: &str) -> Result<Vec<String>> {
        match (self.opt_str_list(name)?, self.default(name)) {
            (Some(items), _) => Ok(items),
            (None, Some(ParamDefault::Texts(items))) => {
                Ok(items.iter().map(|s| s.to_string()).collect())
            }
            (None, _) => Err(self.missing(name)),
        }
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

    /// Fails on any field that was not consumed, naming the declared ones.
    pub fn finish(self) -> Result<()> {
        match self.fields.keys().next() {
            None => Ok(()),
            Some(unknown) => Err(Error::invalid(
                echo_key(unknown),
                format!(
                    "is not a known parameter; expected one of: {}",
                    self.table.names().collect::<Vec<_>>().join(", ")
                ),
            )),
        }
    }
}
