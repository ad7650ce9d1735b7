//! Reading loosely typed parameters (JSON from Python, C or a CLI) into
//! validated requests, with errors that name the field.

use serde_json::{Map, Value};

use super::schema::{ParamDefault, ParamKind, ParamTable};
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
        if let Some(ParamKind::String {
            max_chars: Some(max),
        }) = self.kind(name)
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

/// Longest caller value an error message shows whole, in characters.
const ECHO_MAX_CHARS: usize = 40;

/// A caller's value as error messages show it: quoted and escaped like
/// `{:?}` (so the message stays one line), whole up to
/// [`ECHO_MAX_CHARS`] characters, else its first characters and its length,
/// `"aaaa…" (100000 characters)`, so a huge value cannot make a huge message.
pub(crate) fn echo(value: &str) -> String {
    // Counts stop early: a 100 kB value costs no more than a short one.
    match value.char_indices().nth(ECHO_MAX_CHARS) {
        None => format!("{value:?}"),
        Some((cut, _)) => format!(
            "{:?} ({} characters)",
            format!("{}…", &value[..cut]),
            value.chars().count()
        ),
    }
}

/// Longest name (a parameter, a configuration key or variable) used whole
/// as an error's field; real ones such as
/// `POLYRELAY_FINANCIAL_MODELING_PREP_API_KEY_ENV` pass 40 characters.
const KEY_MAX_CHARS: usize = 100;

/// A caller's name used as an error's field: as given when at most
/// [`KEY_MAX_CHARS`] characters and printable (the usual case, so `field`
/// stays matchable), else [`echo`]ed.
pub(crate) fn echo_key(key: &str) -> String {
    if key.chars().nth(KEY_MAX_CHARS).is_none() && !key.chars().any(char::is_control) {
        key.to_string()
    } else {
        echo(key)
    }
}

/// A caller's number as error messages show it: as written when short,
/// else in exact scientific notation (`1e300` rather than 301 digits).
pub(crate) fn echo_number(value: f64) -> String {
    let plain = value.to_string();
    if plain.len() <= ECHO_MAX_CHARS {
        plain
    } else {
        format!("{value:e}")
    }
}

/// Longest message of another library (serde, toml) kept whole.
const FOREIGN_MAX_CHARS: usize = 300;

/// A message of another library, which may quote a caller's value whole
/// (serde's `invalid type: string "…"`): its first [`FOREIGN_MAX_CHARS`]
/// characters and its length when longer, control characters escaped.
pub(crate) fn bound_message(text: &str) -> String {
    let mut out = String::new();
    for c in text.chars().take(FOREIGN_MAX_CHARS) {
        if c.is_control() {
            out.extend(c.escape_debug());
        } else {
            out.push(c);
        }
    }
    if text.chars().nth(FOREIGN_MAX_CHARS).is_some() {
        out.push_str(&format!("… ({} characters)", text.chars().count()));
    }
    out
}

/// How a JSON value is described in error messages ("a number").
pub(crate) fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_values_are_echoed_whole_and_quoted() {
        assert_eq!(echo("dollars"), "\"dollars\"");
        assert_eq!(echo(""), "\"\"");
        let forty = "a".repeat(40);
        assert_eq!(echo(&forty), format!("\"{forty}\""));
    }

    #[test]
    fn long_values_are_cut_with_their_length() {
        let forty_one = "a".repeat(41);
        assert_eq!(
            echo(&forty_one),
            format!("\"{}…\" (41 characters)", "a".repeat(40))
        );
        let huge = "a".repeat(100_000);
        assert_eq!(
            echo(&huge),
            format!("\"{}…\" (100000 characters)", "a".repeat(40))
        );
    }

    #[test]
    fn characters_are_counted_and_never_split() {
        // Two-byte and four-byte characters: 40 of them fit, whatever their bytes.
        let forty = "é".repeat(40);
        assert_eq!(echo(&forty), format!("\"{forty}\""));
        let long = "𝄞".repeat(50_000);
        assert_eq!(
            echo(&long),
            format!("\"{}…\" (50000 characters)", "𝄞".repeat(40))
        );
        // A cut right after a multibyte character near the limit.
        let mixed = format!("{}ü{}", "a".repeat(39), "b".repeat(10));
        assert_eq!(
            echo(&mixed),
            format!("\"{}ü…\" (50 characters)", "a".repeat(39))
        );
    }

    #[test]
    fn control_characters_are_escaped_onto_one_line() {
        assert_eq!(echo("a\nb\t\u{0}"), "\"a\\nb\\t\\0\"");
        let long = "x\r\n".repeat(30);
        let shown = echo(&long);
        assert!(!shown.contains(['\n', '\r']), "{shown}");
        assert!(shown.ends_with("(90 characters)"), "{shown}");
    }

    #[test]
    fn keys_stay_plain_unless_long_or_unprintable() {
        assert_eq!(echo_key("bsae"), "bsae");
        assert_eq!(echo_key("a\nb"), "\"a\\nb\"");
        let hundred = "K".repeat(100);
        assert_eq!(echo_key(&hundred), hundred);
        assert_eq!(
            echo_key(&"k".repeat(101)),
            format!("\"{}…\" (101 characters)", "k".repeat(40))
        );
    }

    #[test]
    fn foreign_messages_are_cut_onto_one_line() {
        assert_eq!(bound_message("expected u64"), "expected u64");
        assert_eq!(bound_message("a\nb"), "a\\nb");
        let long = format!("invalid type: string \"{}\"", "ж".repeat(1000));
        let cut = bound_message(&long);
        assert_eq!(
            cut.chars().count(),
            300 + "… (1023 characters)".chars().count()
        );
        assert!(cut.ends_with("ж… (1023 characters)"), "{cut}");
    }

    #[test]
    fn numbers_stay_short() {
        assert_eq!(echo_number(91.5), "91.5");
        assert_eq!(echo_number(-200.0), "-200");
        assert_eq!(echo_number(1e300), "1e300");
        assert_eq!(echo_number(-1.5e308), "-1.5e308");
    }
}
