//! A tolerant reading of provider replies: what a provider's JSON may drift
//! to without changing its meaning is accepted, and what cannot be read is
//! reported with the path of the field.
//!
//! [`read`] first deserializes the reply as the adapter declares it, which
//! costs nothing extra for replies as documented. Only when that fails is
//! the reply read again through [`Tolerant`], a deserializer over
//! `serde_json::Value` that
//!
//! - accepts a number sent as a numeric string (`"1.0293"`, `" 42 "`) and a
//!   boolean sent as `"true"`/`"false"`,
//! - accepts a number where text is expected (an id `123` for `"123"`),
//! - reads a field's `null` as an empty list or map (`Option` fields read
//!   `null` as `None`, and absent fields as their default, as serde always
//!   does); a whole reply of `null` stays an error,
//! - names the field of any error (`at `current.temperature_2m`: invalid
//!   type: null, expected f64`), so that a reply missing a required fact
//!   fails as malformed with that fact's name.
//!
//! Unknown fields are ignored by serde's derive already. No crate does this
//! coercion for a whole document (`serde_with` and `serde-aux` do it field
//! by field, which would mean annotating every number of every adapter), so
//! it is written here, about 300 lines in one place.

use std::fmt;
use std::rc::Rc;

use serde::de::{self, DeserializeOwned, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde::forward_to_deserialize_any;
use serde_json::{Map, Value};

/// Reads `body` as `T`: strictly first, then tolerantly (see the module).
pub(crate) fn read<T: DeserializeOwned>(body: &[u8]) -> Result<T, String> {
    let strict = match serde_json::from_slice::<T>(body) {
        Ok(value) => return Ok(value),
        Err(error) => error,
    };
    // Not JSON at all: the parser's message (line and column) says more.
    let Ok(document) = serde_json::from_slice::<Value>(body) else {
        return Err(strict.to_string());
    };
    from_value(&document).map_err(|e| e.to_string())
}

/// Reads an already parsed document tolerantly.
pub(crate) fn from_value<T: DeserializeOwned>(document: &Value) -> Result<T, ReadError> {
    T::deserialize(Tolerant {
        value: document,
        path: None,
    })
}

/// Why a document could not be read, and where.
#[derive(Debug)]
pub(crate) struct ReadError {
    /// The innermost field the error arose in; `None` at the root.
    path: Option<String>,
    message: String,
}

impl fmt::Display for ReadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.path {
            Some(path) => write!(f, "at `{path}`: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

impl std::error::Error for ReadError {}

impl de::Error for ReadError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        Self {
            path: None,
            message: msg.to_string(),
        }
    }

    // JSON's `null` reaches visitors as a unit: call it by its name.
    fn invalid_type(unexpected: de::Unexpected<'_>, expected: &dyn de::Expected) -> Self {
        match unexpected {
            de::Unexpected::Unit => {
                Self::custom(format_args!("invalid type: null, expected {expected}"))
            }
            other => Self::custom(format_args!("invalid type: {other}, expected {expected}")),
        }
    }
}

/// A place in the document: a linked list from the leaf up, built only on
/// the tolerant (slow) path.
#[derive(Debug)]
struct Place {
    parent: Path,
    step: Step,
}

#[derive(Debug)]
enum Step {
    Key(String),
    Index(usize),
}

type Path = Option<Rc<Place>>;

fn child(parent: &Path, step: Step) -> Path {
    Some(Rc::new(Place {
        parent: parent.clone(),
        step,
    }))
}

fn path_text(path: &Path) -> Option<String> {
    let mut steps = Vec::new();
    let mut here = path.as_deref();
    while let Some(place) = here {
        steps.push(&place.step);
        here = place.parent.as_deref();
    }
    if steps.is_empty() {
        return None;
    }
    let mut text = String::new();
    for step in steps.iter().rev() {
        match step {
            Step::Key(key) => {
                if !text.is_empty() {
                    text.push('.');
                }
                text.push_str(key);
            }
            Step::Index(i) => text.push_str(&format!("[{i}]")),
        }
    }
    Some(text)
}

/// The innermost place wins: an error keeps the path it was first given.
fn located<T>(path: &Path, result: Result<T, ReadError>) -> Result<T, ReadError> {
    result.map_err(|mut error| {
        if error.path.is_none() {
            error.path = path_text(path);
        }
        error
    })
}

/// The tolerant deserializer of one value of the document.
struct Tolerant<'de> {
    value: &'de Value,
    path: Path,
}

impl<'de> Tolerant<'de> {
    fn visit_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ReadError> {
        let path = self.path.clone();
        let result = match self.value {
            Value::Null => visitor.visit_unit(),
            Value::Bool(b) => visitor.visit_bool(*b),
            Value::Number(n) => visit_number(n, visitor),
            Value::String(s) => visitor.visit_borrowed_str(s),
            Value::Array(items) => visitor.visit_seq(Items {
                items: items.iter().enumerate(),
                path: self.path,
            }),
            Value::Object(map) => visitor.visit_map(Fields::new(map, self.path)),
        };
        located(&path, result)
    }

    /// A number, or a string holding one.
    fn visit_numeric<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ReadError> {
        let Value::String(text) = self.value else {
            return self.visit_any(visitor);
        };
        let text = text.trim();
        let result = if let Ok(n) = text.parse::<u64>() {
            visitor.visit_u64(n)
        } else if let Ok(n) = text.parse::<i64>() {
            visitor.visit_i64(n)
        } else if let Some(n) = text.parse::<f64>().ok().filter(|n| n.is_finite()) {
            visitor.visit_f64(n)
        } else {
            return self.visit_any(visitor);
        };
        located(&self.path, result)
    }
}

fn visit_number<'de, V: Visitor<'de>>(
    n: &serde_json::Number,
    visitor: V,
) -> Result<V::Value, ReadError> {
    if let Some(u) = n.as_u64() {
        visitor.visit_u64(u)
    } else if let Some(i) = n.as_i64() {
        visitor.visit_i64(i)
    } else {
        visitor.visit_f64(n.as_f64().unwrap_or(f64::NAN))
    }
}

macro_rules! numeric {
    ($($method:ident)*) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ReadError> {
            self.visit_numeric(visitor)
        }
    )*};
}

impl<'de> de::Deserializer<'de> for Tolerant<'de> {
    type Error = ReadError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ReadError> {
        self.visit_any(visitor)
    }

    numeric! {
        deserialize_i8 deserialize_i16 deserialize_i32 deserialize_i64 deserialize_i128
        deserialize_u8 deserialize_u16 deserialize_u32 deserialize_u64 deserialize_u128
        deserialize_f32 deserialize_f64
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ReadError> {
        match self.value.as_str().map(str::trim) {
            Some("true") => located(&self.path, visitor.visit_bool(true)),
            Some("false") => located(&self.path, visitor.visit_bool(false)),
            _ => self.visit_any(visitor),
        }
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ReadError> {
        match self.value {
            Value::Number(n) => located(&self.path, visitor.visit_string(n.to_string())),
            _ => self.visit_any(visitor),
        }
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ReadError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ReadError> {
        match self.value {
            Value::Null => located(&self.path, visitor.visit_none()),
            _ => {
                let path = self.path.clone();
                located(&path, visitor.visit_some(self))
            }
        }
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ReadError> {
        match self.value {
            // A whole reply of `null` is no answer, not an empty one.
            Value::Null if self.path.is_some() => located(
                &self.path,
                visitor.visit_seq(Items {
                    items: [].iter().enumerate(),
                    path: self.path.clone(),
                }),
            ),
            _ => self.visit_any(visitor),
        }
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ReadError> {
        match self.value {
            Value::Null if self.path.is_some() => {
                static EMPTY: std::sync::LazyLock<Map<String, Value>> =
                    std::sync::LazyLock::new(Map::new);
                let path = self.path.clone();
                located(&path, visitor.visit_map(Fields::new(&EMPTY, self.path)))
            }
            _ => self.visit_any(visitor),
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, ReadError> {
        let path = self.path.clone();
        located(&path, visitor.visit_newtype_struct(self))
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, ReadError> {
        let result = de::Deserializer::deserialize_enum(self.value, name, variants, visitor)
            .map_err(<ReadError as de::Error>::custom);
        located(&self.path, result)
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ReadError> {
        visitor.visit_unit()
    }

    forward_to_deserialize_any! {
        char bytes byte_buf unit unit_struct tuple_struct struct identifier
    }

    fn deserialize_tuple<V: Visitor<'de>>(
        self,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, ReadError> {
        self.deserialize_seq(visitor)
    }
}

/// The items of an array.
struct Items<'de> {
    items: std::iter::Enumerate<std::slice::Iter<'de, Value>>,
    path: Path,
}

impl<'de> SeqAccess<'de> for Items<'de> {
    type Error = ReadError;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, ReadError> {
        match self.items.next() {
            None => Ok(None),
            Some((i, value)) => seed
                .deserialize(Tolerant {
                    value,
                    path: child(&self.path, Step::Index(i)),
                })
                .map(Some),
        }
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.items.len())
    }
}

/// The fields of an object.
struct Fields<'de> {
    fields: serde_json::map::Iter<'de>,
    value: Option<(&'de String, &'de Value)>,
    path: Path,
}

impl<'de> Fields<'de> {
    fn new(map: &'de Map<String, Value>, path: Path) -> Self {
        Self {
            fields: map.iter(),
            value: None,
            path,
        }
    }
}

impl<'de> MapAccess<'de> for Fields<'de> {
    type Error = ReadError;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, ReadError> {
        match self.fields.next() {
            None => Ok(None),
            Some((key, value)) => {
                self.value = Some((key, value));
                seed.deserialize(Key(key)).map(Some)
            }
        }
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, ReadError> {
        let Some((key, value)) = self.value.take() else {
            return Err(de::Error::custom("a value without its key"));
        };
        seed.deserialize(Tolerant {
            value,
            path: child(&self.path, Step::Key(key.clone())),
        })
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.fields.len())
    }
}

/// An object's key: text, or a number for maps keyed by numbers.
struct Key<'de>(&'de str);

impl<'de> de::Deserializer<'de> for Key<'de> {
    type Error = ReadError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ReadError> {
        visitor.visit_borrowed_str(self.0)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, ReadError> {
        let key = de::value::BorrowedStrDeserializer::<'de, ReadError>::new(self.0);
        key.deserialize_enum(name, variants, visitor)
    }

    fn deserialize_u64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ReadError> {
        match self.0.parse() {
            Ok(n) => visitor.visit_u64(n),
            Err(_) => visitor.visit_borrowed_str(self.0),
        }
    }

    fn deserialize_i64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ReadError> {
        match self.0.parse() {
            Ok(n) => visitor.visit_i64(n),
            Err(_) => visitor.visit_borrowed_str(self.0),
        }
    }

    forward_to_deserialize_any! {
        bool i8 i16 i32 i128 u8 u16 u32 u128 f32 f64 char str string bytes byte_buf option
        unit unit_struct newtype_struct seq tuple tuple_struct map struct identifier ignored_any
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde::Deserialize;

    use super::*;

    #[derive(Debug, Deserialize, PartialEq)]
    struct Reply {
        id: String,
        count: u32,
        temp: f64,
        ok: bool,
        #[serde(default)]
        tags: Vec<String>,
        note: Option<String>,
        rates: BTreeMap<String, f64>,
        inner: Inner,
    }

    #[derive(Debug, Deserialize, PartialEq)]
    struct Inner {
        value: f64,
    }

    fn expected() -> Reply {
        Reply {
            id: "123".into(),
            count: 7,
            temp: 21.5,
            ok: true,
            tags: vec![],
            note: None,
            rates: BTreeMap::from([("USD".to_string(), 1.03)]),
            inner: Inner { value: 2.0 },
        }
    }

    #[test]
    fn a_documented_reply_is_read_as_is() {
        let body = br#"{"id":"123","count":7,"temp":21.5,"ok":true,"note":null,
            "rates":{"USD":1.03},"inner":{"value":2.0}}"#;
        assert_eq!(read::<Reply>(body).unwrap(), expected());
    }

    #[test]
    fn numbers_as_strings_ids_as_numbers_and_null_lists_are_accepted() {
        let body = br#"{"id":123,"count":"7","temp":" 21.5","ok":"true","tags":null,
            "rates":{"USD":"1.03"},"inner":{"value":"2"},"extra":{"x":[1]}}"#;
        assert_eq!(read::<Reply>(body).unwrap(), expected());
    }

    #[test]
    fn an_unreadable_field_is_named_with_its_path() {
        let body = br#"{"id":"1","count":7,"temp":21.5,"ok":true,
            "rates":{"USD":null},"inner":{"value":2}}"#;
        let error = read::<Reply>(body).unwrap_err();
        assert!(
            error.starts_with("at `rates.USD`: invalid type: null"),
            "{error}"
        );

        let body = br#"{"id":"1","count":7,"temp":21.5,"ok":true,"rates":{},"inner":{}}"#;
        let error = read::<Reply>(body).unwrap_err();
        assert_eq!(error, "at `inner`: missing field `value`");

        let body =
            br#"{"id":"1","count":"seven","temp":21.5,"ok":true,"rates":{},"inner":{"value":1}}"#;
        let error = read::<Reply>(body).unwrap_err();
        assert!(
            error.starts_with("at `count`: invalid type: string \"seven\""),
            "{error}"
        );

        let body = br#"[{"value": 1}, {"value": "x"}]"#;
        let error = read::<Vec<Inner>>(body).unwrap_err();
        assert!(error.starts_with("at `[1].value`:"), "{error}");
    }

    #[test]
    fn text_that_is_not_json_keeps_the_parser_message() {
        let error = read::<Reply>(b"{\"id\": ").unwrap_err();
        assert!(error.contains("line 1 column"), "{error}");
    }

    #[test]
    fn untagged_enums_and_integer_ranges_still_work() {
        #[derive(Debug, Deserialize, PartialEq)]
        #[serde(untagged)]
        enum Either {
            Number(f64),
            Text(String),
        }
        let v: Vec<Either> = from_value(&serde_json::json!([1.5, "a"])).unwrap();
        assert_eq!(v, vec![Either::Number(1.5), Either::Text("a".into())]);
        let error = from_value::<u8>(&serde_json::json!("300")).unwrap_err();
        assert!(error.to_string().contains("300"), "{error}");
    }
}
