//! Idempotency keys: what makes re-sending a request with side effects safe.

use std::fmt;

use rand::Rng;
use uuid::Uuid;

/// The `Idempotency-Key` of a non-idempotent call (IETF
/// draft-ietf-httpapi-idempotency-key-header): a random UUIDv4.
///
/// Policy: generate **one key per logical call per provider**. Send the same
/// key on every retry (and hedge) to that provider, so the provider can
/// de-duplicate a request whose response was lost; generate a **new key for
/// the next fallback provider**, since keys are meaningless across providers
/// and must not collide with unrelated calls. Without a key, a POST or PATCH
/// whose body was sent is never retried.
///
/// ```
/// use polyrelay::internal::resilience::retry::{IdempotencyKey, RandomSource};
///
/// let random = RandomSource::with_seed(1);
/// let key = IdempotencyKey::generate(&mut random.rng());
/// assert_eq!(key.to_string().len(), 36);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct IdempotencyKey(Uuid);

impl IdempotencyKey {
    /// The request header that carries the key.
    pub const HEADER: &'static str = "Idempotency-Key";

    /// A new random key (version 4, RFC 9562 variant) drawn from `rng`.
    pub fn generate<R: Rng + ?Sized>(rng: &mut R) -> Self {
        Self(uuid::Builder::from_random_bytes(rng.random()).into_uuid())
    }

    /// The key as a UUID.
    pub fn as_uuid(&self) -> Uuid {
        self.0
    }
}

impl fmt::Display for IdempotencyKey {
    /// Lower-case hyphenated form, the header value.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0.hyphenated(), f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resilience::retry::RandomSource;

    // ---- idempotency keys ----

    #[test]
    fn idempotency_keys_are_random_v4_uuids_reproducible_by_seed() {
        let keys = |seed| {
            let random = RandomSource::with_seed(seed);
            (0..3)
                .map(|_| IdempotencyKey::generate(&mut random.rng()))
                .collect::<Vec<_>>()
        };
        let first = keys(21);
        assert_eq!(first, keys(21));
        assert_ne!(first, keys(22));
        assert_ne!(first[0], first[1], "a new key for the next provider");
        for key in &first {
            assert_eq!(key.as_uuid().get_version(), Some(uuid::Version::Random));
            assert_eq!(key.as_uuid().get_variant(), uuid::Variant::RFC4122);
            let text = key.to_string();
            assert_eq!(text.len(), 36);
            assert_eq!(text, text.to_lowercase());
            assert_eq!(Uuid::parse_str(&text).unwrap(), key.as_uuid());
        }
    }
}
