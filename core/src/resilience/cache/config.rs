//! The cache's settings, as read from the configuration file.

use std::time::Duration;

use serde::Deserialize;

use super::TtlPolicy;
use crate::duration::serde_secs;

/// Longest duration [`CacheConfig::validate`] accepts for any of its fields.
const MAX_CONFIG_DURATION: Duration = Duration::from_secs(365 * 86_400);

/// Cache settings, as read from the configuration file.
///
/// ```
/// use polyrelay::internal::resilience::cache::CacheConfig;
/// use std::time::Duration;
///
/// let config: CacheConfig = toml::from_str(r#"
///     ttl = "2m"
///     stale_while_revalidate = "30s"
///     negative_ttl = 30
/// "#).unwrap();
/// assert_eq!(config.ttl, Duration::from_secs(120));
/// assert_eq!(config.negative_ttl, Duration::from_secs(30));
/// config.validate().unwrap();
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CacheConfig {
    /// When false every call goes to the pipeline and nothing is stored.
    pub enabled: bool,
    /// How long a stored value is fresh (served without any upstream call).
    /// Capabilities may override it through [`TtlPolicy`].
    #[serde(deserialize_with = "serde_secs::deserialize")]
    pub ttl: Duration,
    /// How long past freshness a value is served at once while one background
    /// refresh runs (RFC 5861). Zero turns it off.
    #[serde(deserialize_with = "serde_secs::deserialize")]
    pub stale_while_revalidate: Duration,
    /// How long past freshness a value may still be served when the refresh
    /// fails (RFC 5861; the fail-safe of `FusionCache`).
    #[serde(deserialize_with = "serde_secs::deserialize")]
    pub stale_if_error: Duration,
    /// How long an authoritative "not found" answer is stored.
    #[serde(deserialize_with = "serde_secs::deserialize")]
    pub negative_ttl: Duration,
    /// After a failed refresh, how long the stale value is served without
    /// calling upstream again.
    #[serde(deserialize_with = "serde_secs::deserialize")]
    pub fail_safe_throttle: Duration,
    /// Upper bound on the number of stored entries.
    pub max_entries: u64,
}

impl Default for CacheConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            ttl: Duration::from_secs(60),
            stale_while_revalidate: Duration::ZERO,
            stale_if_error: Duration::from_secs(86_400),
            negative_ttl: Duration::from_secs(60),
            fail_safe_throttle: Duration::from_secs(30),
            max_entries: 10_000,
        }
    }
}

/// A [`CacheConfig`] field with an unusable value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cache.{field}: {reason}")]
pub struct InvalidCacheConfig {
    /// The offending field, named as in the configuration file.
    pub field: &'static str,
    /// What is wrong with it.
    pub reason: &'static str,
}

impl CacheConfig {
    /// Checks the settings.
    ///
    /// # Errors
    ///
    /// [`InvalidCacheConfig`] naming the first bad field: a zero `ttl`, a
    /// duration over 365 days, or a zero `max_entries`.
    pub fn validate(&self) -> Result<(), InvalidCacheConfig> {
        if self.ttl.is_zero() {
            return Err(InvalidCacheConfig {
                field: "ttl",
                reason: "must be greater than zero",
            });
        }
        let durations = [
            ("ttl", self.ttl),
            ("stale_while_revalidate", self.stale_while_revalidate),
            ("stale_if_error", self.stale_if_error),
            ("negative_ttl", self.negative_ttl),
            ("fail_safe_throttle", self.fail_safe_throttle),
        ];
        if let Some((field, _)) = durations
            .iter()
            .find(|(_, value)| *value > MAX_CONFIG_DURATION)
        {
            return Err(InvalidCacheConfig {
                field,
                reason: "must be at most 365 days",
            });
        }
        if self.max_entries == 0 {
            return Err(InvalidCacheConfig {
                field: "max_entries",
                reason: "must be at least 1",
            });
        }
        Ok(())
    }

    /// The logical lifetimes these settings give every entry, for callers with
    /// no per-capability override.
    #[must_use]
    pub fn ttl_policy(&self) -> TtlPolicy {
        TtlPolicy {
            ttl: self.ttl,
            stale_while_revalidate: self.stale_while_revalidate,
            stale_if_error: self.stale_if_error,
            negative_ttl: self.negative_ttl,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resilience::cache::test_fixtures::secs;

    #[test]
    fn config_reads_durations_in_every_form_and_rejects_unknown_fields() {
        let config: CacheConfig = toml::from_str(
            r#"
            ttl = "500ms"
            stale_while_revalidate = "2m"
            stale_if_error = "1d"
            negative_ttl = 30
            fail_safe_throttle = "1h"
            max_entries = 5
            "#,
        )
        .unwrap();
        assert_eq!(config.ttl, Duration::from_millis(500));
        assert_eq!(config.stale_while_revalidate, secs(120));
        assert_eq!(config.stale_if_error, secs(86_400));
        assert_eq!(config.negative_ttl, secs(30));
        assert_eq!(config.fail_safe_throttle, secs(3_600));
        assert!(config.enabled);

        let defaults: CacheConfig = toml::from_str("").unwrap();
        assert_eq!(defaults, CacheConfig::default());
        assert_eq!(defaults.ttl_policy().ttl, secs(60));

        assert!(toml::from_str::<CacheConfig>("tll = \"1s\"").is_err());
        for bad in ["ttl = \"10 parsecs\"", "ttl = -1", "ttl = \"\""] {
            assert!(toml::from_str::<CacheConfig>(bad).is_err(), "{bad}");
        }
        // Decimals are accepted, as everywhere else in the config.
        let decimal: CacheConfig = toml::from_str("ttl = \"1.5s\"").unwrap();
        assert_eq!(decimal.ttl, Duration::from_millis(1500));
    }

    #[test]
    fn validate_names_the_bad_field() {
        assert_eq!(CacheConfig::default().validate(), Ok(()));
        let field = |config: CacheConfig| config.validate().unwrap_err().field;
        let base = CacheConfig::default;
        assert_eq!(
            field(CacheConfig {
                ttl: Duration::ZERO,
                ..base()
            }),
            "ttl"
        );
        assert_eq!(
            field(CacheConfig {
                stale_if_error: secs(400 * 86_400),
                ..base()
            }),
            "stale_if_error"
        );
        assert_eq!(
            field(CacheConfig {
                max_entries: 0,
                ..base()
            }),
            "max_entries"
        );
        let error = CacheConfig {
            negative_ttl: secs(u64::MAX),
            ..base()
        }
        .validate()
        .unwrap_err();
        assert_eq!(
            error.to_string(),
            "cache.negative_ttl: must be at most 365 days"
        );
    }
}
