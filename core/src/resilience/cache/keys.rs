//! Cache keys for shared tiers: a hash of a request's canonical form, so
//! reordered parameters give the same key and no key reveals its input.

use std::fmt::{self, Write as _};

use sha2::{Digest, Sha256};

/// The cache key of a request: `v1:{namespace}:{sha256 hex}` over a canonical
/// form of `canonical_json`, in which object keys are sorted recursively and
/// integral floats are written as integers, so reordered parameters and `1.0`
/// versus `1` give the same key.
///
/// The caller builds `canonical_json`: defaults
/// materialised, strings normalised, and only allow-listed headers. Keys never
/// contain secrets because requests hold none: auth is applied later by the
/// pipeline, and the hash keeps even the parameters out of key names seen by
/// Redis `KEYS`/`MONITOR`. `namespace` (e.g. `provider:endpoint:method`) stays
/// readable and must not hold secrets either.
///
/// ```
/// use polyrelay::internal::resilience::cache::stable_key;
/// use serde_json::json;
///
/// let a = stable_key("open-meteo:forecast:GET", &json!({"lat": 48.85, "lon": 2.35}));
/// let b = stable_key("open-meteo:forecast:GET", &json!({"lon": 2.35, "lat": 48.85}));
/// assert_eq!(a, b);
/// assert!(a.starts_with("v1:open-meteo:forecast:GET:"));
/// ```
#[must_use]
pub fn stable_key(namespace: &str, canonical_json: &serde_json::Value) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut hasher = Sha256::new();
    hash_canonical(&mut hasher, canonical_json);
    let digest = hasher.finalize();
    let mut key = String::with_capacity(4 + namespace.len() + 2 * digest.len());
    key.push_str("v1:");
    key.push_str(namespace);
    key.push(':');
    for byte in digest {
        key.push(char::from(HEX[usize::from(byte >> 4)]));
        key.push(char::from(HEX[usize::from(byte & 0x0f)]));
    }
    key
}

/// Feeds an unambiguous encoding of `value` to `hasher`: a type tag, then
/// length-prefixed contents, object entries in key order.
fn hash_canonical(hasher: &mut Sha256, value: &serde_json::Value) {
    use serde_json::Value;
    match value {
        Value::Null => hasher.update(b"n"),
        Value::Bool(true) => hasher.update(b"t"),
        Value::Bool(false) => hasher.update(b"f"),
        Value::Number(number) => {
            // Terminated rather than length-prefixed: number text holds no ';'.
            hasher.update(b"d");
            let integral = number
                .as_f64()
                .filter(|float| number.is_f64() && float.fract() == 0.0 && float.abs() < 9.0e15);
            let mut text = HashWriter(hasher);
            // The cast is exact: the value is integral and below 2^53.
            // Writing into a hasher cannot fail.
            let _ = match integral {
                Some(float) => write!(text, "{}", float as i64),
                None => write!(text, "{number}"),
            };
            hasher.update(b";");
        }
        Value::String(text) => {
            hasher.update(b"s");
            hash_bytes(hasher, text.as_bytes());
        }
        Value::Array(items) => {
            hasher.update(b"a");
            hasher.update((items.len() as u64).to_le_bytes());
            for item in items {
                hash_canonical(hasher, item);
            }
        }
        Value::Object(map) => {
            let mut entries: Vec<_> = map.iter().collect();
            entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
            hasher.update(b"o");
            hasher.update((entries.len() as u64).to_le_bytes());
            for (name, item) in entries {
                hash_bytes(hasher, name.as_bytes());
                hash_canonical(hasher, item);
            }
        }
    }
}

/// Formats straight into the hasher, so hashing a number allocates nothing.
struct HashWriter<'a>(&'a mut Sha256);

impl fmt::Write for HashWriter<'_> {
    fn write_str(&mut self, text: &str) -> fmt::Result {
        self.0.update(text.as_bytes());
        Ok(())
    }
}

fn hash_bytes(hasher: &mut Sha256, bytes: &[u8]) {
    hasher.update((bytes.len() as u64).to_le_bytes());
    hasher.update(bytes);
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    // Key hygiene.
    #[test]
    fn stable_key_ignores_key_order_and_reveals_no_input() {
        let a =
            json!({"q": "paris", "units": {"temp": "c", "wind": "kmh"}, "n": 1, "list": [1, "x"]});
        let b = json!({"list": [1, "x"], "units": {"wind": "kmh", "temp": "c"}, "n": 1.0, "q": "paris"});
        let key_a = stable_key("owm:weather:GET", &a);
        assert_eq!(key_a, stable_key("owm:weather:GET", &b));

        let hash = key_a.strip_prefix("v1:owm:weather:GET:").unwrap();
        assert_eq!(hash.len(), 64);
        assert!(hash
            .bytes()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
        for input in ["paris", "units", "temp", "kmh", "list", "\"q\""] {
            assert!(!hash.contains(input), "{input} leaked into {key_a}");
        }

        let different = [
            json!({"q": "pariS", "units": {"temp": "c", "wind": "kmh"}, "n": 1, "list": [1, "x"]}),
            json!({"q": "paris", "units": {"temp": "c", "wind": "kmh"}, "n": 1, "list": ["x", 1]}),
            json!({"q": "paris", "units": {"temp": "c", "wind": "kmh"}, "n": 1.5, "list": [1, "x"]}),
            json!({"q": ["paris"], "units": {"temp": "c", "wind": "kmh"}, "n": 1, "list": [1, "x"]}),
        ];
        for other in &different {
            assert_ne!(stable_key("owm:weather:GET", other), key_a);
        }
        assert_ne!(stable_key("owm:weather:POST", &a), key_a);
        // Length prefixes keep nested boundaries apart.
        assert_ne!(
            stable_key("ns", &json!(["ab", "c"])),
            stable_key("ns", &json!(["a", "bc"]))
        );
    }
}
