//! [`RedisTokenStore`]: refresh-token rotation and the revocation denylist
//! shared through Redis, so every process issuing
//! tokens sees every other's rotations and revocations.
//!
//! Keys (after `key_prefix`):
//!
//! * `auth:{<family>}:used:<jti>`: a spent refresh token, a hash of when it
//!   was spent (server ms) and its successor's `jti` and `iat`;
//! * `auth:{<family>}:revoked`: the family is denied;
//! * `auth:jti:{<jti>}`: the token `jti` is denied (revoking a token names
//!   no family, so this key carries the `jti` as its own hash tag).
//!
//! The keys a refresh touches atomically share the family hash tag, so the
//! script runs on a Cluster. Every key is written with a TTL (the remaining
//! life of what it is about, plus leeway) in the same command, and a denial
//! is never shortened. Key names hold ids only, never token text: an id that
//! is not a short `[A-Za-z0-9_-]` string (ours are random UUIDs) is replaced
//! by its SHA-256.
//!
//! Unlike quotas and limits, token state has no local fallback: when Redis
//! errs, is slow past `state_timeout`, or its breaker is open, every
//! operation answers [`StoreUnavailable`], and the issuer fails closed unless
//! `revocation_fail_mode = open`.

use std::borrow::Cow;
use std::fmt;
use std::time::Duration;

use futures::future::Either;
use redis::{AsyncCommands, Script};
use sha2::{Digest, Sha256};

use super::backend::RedisBackend;
use super::scripts::TimeSource;
use crate::auth::{RefreshOutcome, RefreshUse, StoreUnavailable, Successor, TokenStore};
use crate::state::StateFuture;

/// Longest id used verbatim in a key name.
const MAX_PLAIN_ID: usize = 64;

/// Effects replication for servers before Redis 7 (the script calls `TIME`
/// and then writes).
const PRELUDE: &str = "if redis.replicate_commands then pcall(redis.replicate_commands) end\n";

/// One presentation of a refresh token, atomically.
///
/// `KEYS[1]` the token's `used` hash, `KEYS[2]` the family's denial (same
/// hash tag). `ARGV`: successor jti, successor iat, remember ms, grace ms,
/// family denial ms. Reply `{code, successor jti, successor iat}`, code 0
/// rotated, 1 replayed (with the recorded successor), 2 reused (family now
/// denied), 3 family already denied.
const USE_BODY: &str = r"
if redis.call('EXISTS', KEYS[2]) == 1 then
  return {3, '', 0}
end
local spent = redis.call('HMGET', KEYS[1], 'at', 'jti', 'iat')
if spent[1] then
  if now - tonumber(spent[1]) < tonumber(ARGV[4]) then
    return {1, spent[2], tonumber(spent[3])}
  end
  local ttl = tonumber(ARGV[5])
  if redis.call('PTTL', KEYS[2]) < ttl then
    redis.call('SET', KEYS[2], '1', 'PX', ttl)
  end
  return {2, '', 0}
end
redis.call('HSET', KEYS[1], 'at', now, 'jti', ARGV[1], 'iat', ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return {0, '', 0}
";

/// Denies `KEYS[1]` for `ARGV[1]` ms, never shortening a longer denial (and
/// giving a TTL to a key found without one).
const DENY: &str = r"
local ttl = tonumber(ARGV[1])
if redis.call('PTTL', KEYS[1]) < ttl then
  redis.call('SET', KEYS[1], '1', 'PX', ttl)
end
return 1
";

/// Refresh-token rotation with reuse detection, and the `jti`/family
/// denylist, on Redis: the [`TokenStore`] to give every
/// [`TokenIssuer`](crate::auth::TokenIssuer) of a deployment, so that a refresh token spent
/// on one process is spent on all.
///
/// Each operation is bounded by the backend's `state_timeout` and its
/// breaker; an unreachable or slow Redis answers [`StoreUnavailable`], never
/// a guess.
///
/// ```no_run
/// use polyrelay::auth::{IssuerConfig, TokenIssuer, Keyset};
/// use polyrelay::clock::SystemClock;
/// use polyrelay::internal::state::redis::{RedisBackend, RedisConfig, RedisTokenStore};
/// use std::sync::Arc;
///
/// # fn demo(keys: Keyset) -> Result<(), Box<dyn std::error::Error>> {
/// let clock = SystemClock::shared();
/// let backend = RedisBackend::new(&RedisConfig::new("redis://127.0.0.1:6379"), clock.clone())?;
/// let store = Arc::new(RedisTokenStore::new(backend));
/// let config = IssuerConfig::new("https://auth.example", ["my-api"]);
/// let issuer = TokenIssuer::new(config, keys, store, clock)?;
/// # Ok(()) }
/// ```
pub struct RedisTokenStore {
    backend: RedisBackend,
    use_script: Script,
    deny_script: Script,
    time: TimeSource,
}

impl fmt::Debug for RedisTokenStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisTokenStore")
            .field("backend", &self.backend)
            .finish()
    }
}

impl RedisTokenStore {
    /// A store on `backend` (which may be shared with the quota store and
    /// the cache tier). Never connects here.
    pub fn new(backend: RedisBackend) -> Self {
        Self::with_time(backend, TimeSource::Server)
    }

    fn with_time(backend: RedisBackend, time: TimeSource) -> Self {
        let now = match time {
            TimeSource::Server => {
                "local t = redis.call('TIME')\nlocal now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"
            }
            #[cfg(test)]
            TimeSource::Argument => "local now = tonumber(ARGV[#ARGV])\n",
        };
        Self {
            use_script: Script::new(&format!("{PRELUDE}{now}{USE_BODY}")),
            deny_script: Script::new(DENY),
            backend,
            time,
        }
    }

    /// The backend's counters and breaker state.
    pub fn stats(&self) -> super::RedisStats {
        self.backend.stats()
    }

    /// The test time source: the injected clock's wall time, in ms.
    fn now_argument(&self) -> Option<i64> {
        match self.time {
            TimeSource::Server => None,
            #[cfg(test)]
            TimeSource::Argument => Some(self.backend.clock().wall().timestamp_millis()),
        }
    }

    fn family_key(&self, family: &str, rest: &str) -> String {
        self.backend
            .key(&format!("auth:{{{}}}:{rest}", key_id(family)))
    }

    fn token_key(&self, jti: &str) -> String {
        self.backend.key(&format!("auth:jti:{{{}}}", key_id(jti)))
    }

    async fn deny(&self, key: String, ttl: Duration) -> Result<(), StoreUnavailable> {
        let ttl = millis(ttl);
        self.backend
            .run(self.backend.config().state_timeout, |mut connection| {
                let mut invocation = self.deny_script.key(&key);
                invocation.arg(ttl);
                async move { invocation.invoke_async::<i64>(&mut connection).await }
            })
            .await
            .map(drop)
            .map_err(|_| StoreUnavailable)
    }

    async fn use_refresh_now(
        &self,
        presented: RefreshUse<'_>,
    ) -> Result<RefreshOutcome, StoreUnavailable> {
        let denied_key = self.token_key(presented.jti);
        let used_key =
            self.family_key(presented.family, &format!("used:{}", key_id(presented.jti)));
        let family_key = self.family_key(presented.family, "revoked");
        let now_argument = self.now_argument();
        let (code, jti, issued_at): (i64, String, i64) = self
            .backend
            .run(self.backend.config().state_timeout, |mut connection| {
                let mut invocation = self.use_script.key(&used_key);
                invocation
                    .key(&family_key)
                    .arg(&presented.successor.jti)
                    .arg(presented.successor.issued_at)
                    .arg(millis(presented.remember_for))
                    .arg(u64::try_from(presented.grace.as_millis()).unwrap_or(u64::MAX))
                    .arg(millis(presented.family_ttl));
                if let Some(now) = now_argument {
                    invocation.arg(now);
                }
                let denied_key = &denied_key;
                async move {
                    // The token's own denial lives in its own slot; checked
                    // first, on the same deadline.
                    if connection.exists::<_, bool>(denied_key).await? {
                        return Ok((3, String::new(), 0));
                    }
                    invocation.invoke_async(&mut connection).await
                }
            })
            .await
            .map_err(|_| StoreUnavailable)?;
        Ok(match code {
            0 => RefreshOutcome::Rotated,
            1 => RefreshOutcome::Replayed(Successor { jti, issued_at }),
            2 => RefreshOutcome::Reused,
            _ => RefreshOutcome::Revoked,
        })
    }

    async fn is_revoked_now(
        &self,
        jti: &str,
        family: Option<&str>,
    ) -> Result<bool, StoreUnavailable> {
        let token_key = self.token_key(jti);
        let family_key = family.map(|family| self.family_key(family, "revoked"));
        self.backend
            .run(self.backend.config().state_timeout, |connection| {
                let (token_key, family_key) = (&token_key, &family_key);
                let mut token_connection = connection.clone();
                let mut family_connection = connection;
                // Two slots on a Cluster: two commands, sent together.
                async move {
                    let token = token_connection.exists::<_, bool>(token_key);
                    let family = async {
                        match family_key {
                            Some(key) => family_connection.exists::<_, bool>(key).await,
                            None => Ok(false),
                        }
                    };
                    let (token, family) = futures::try_join!(token, family)?;
                    Ok(token || family)
                }
            })
            .await
            .map_err(|_| StoreUnavailable)
    }
}

/// `id` if it is a short `[A-Za-z0-9_-]` string (our random ids), else its
/// SHA-256 in hex: a key name never holds token text, braces or separators.
fn key_id(id: &str) -> Cow<'_, str> {
    let plain = !id.is_empty()
        && id.len() <= MAX_PLAIN_ID
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if plain {
        Cow::Borrowed(id)
    } else {
        Cow::Owned(hex::encode(Sha256::digest(id.as_bytes())))
    }
}

/// Whole milliseconds of a TTL, at least 1 (Redis refuses a zero `PX`).
fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis())
        .unwrap_or(u64::MAX)
        .max(1)
}

impl TokenStore for RedisTokenStore {
    fn use_refresh<'a>(
        &'a self,
        presented: RefreshUse<'a>,
    ) -> StateFuture<'a, Result<RefreshOutcome, StoreUnavailable>> {
        Either::Right(Box::pin(self.use_refresh_now(presented)))
    }

    fn revoke_token<'a>(
        &'a self,
        jti: &'a str,
        ttl: Duration,
    ) -> StateFuture<'a, Result<(), StoreUnavailable>> {
        Either::Right(Box::pin(self.deny(self.token_key(jti), ttl)))
    }

    fn revoke_family<'a>(
        &'a self,
        family: &'a str,
        ttl: Duration,
    ) -> StateFuture<'a, Result<(), StoreUnavailable>> {
        Either::Right(Box::pin(self.deny(self.family_key(family, "revoked"), ttl)))
    }

    fn is_revoked<'a>(
        &'a self,
        jti: &'a str,
        family: Option<&'a str>,
    ) -> StateFuture<'a, Result<bool, StoreUnavailable>> {
        Either::Right(Box::pin(self.is_revoked_now(jti, family)))
    }

    fn backend(&self) -> &'static str {
        "redis"
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use chrono::{DateTime, Utc};

    use super::super::test_server::{free_port, RedisServer};
    use super::super::RedisConfig;
    use super::*;
    use crate::auth::{
        Algorithm, AuthError, IssuerConfig, Key, Keyset, RevocationFailMode, TokenIssuer,
    };
    use crate::clock::FakeClock;

    fn clock_near_now() -> FakeClock {
        FakeClock::new(DateTime::from_timestamp(Utc::now().timestamp(), 0).unwrap())
    }

    fn store(url: &str, clock: &FakeClock, time: TimeSource) -> Arc<RedisTokenStore> {
        let backend = RedisBackend::new(&RedisConfig::new(url), clock.shared()).unwrap();
        Arc::new(RedisTokenStore::with_time(backend, time))
    }

    fn issuer(store: Arc<RedisTokenStore>, clock: &FakeClock, config: IssuerConfig) -> TokenIssuer {
        let mut keys = Keyset::new();
        keys.insert(Key::hmac("k1", Algorithm::HS256, &[7u8; 32]).unwrap())
            .unwrap();
        keys.sign_with("k1").unwrap();
        TokenIssuer::new(config, keys, store, clock.shared()).unwrap()
    }

    fn config() -> IssuerConfig {
        IssuerConfig::new("https://issuer", ["api"])
    }

    fn claim(issuer: &TokenIssuer, token: &str, name: &str) -> String {
        let claims = issuer.verifier().verify(token).unwrap().into_map();
        claims[name].as_str().unwrap().to_string()
    }

    fn no_map() -> serde_json::Map<String, serde_json::Value> {
        serde_json::Map::new()
    }

    // R1 → (A2, R2); R1 again → Reused, the family revoked.
    #[tokio::test]
    async fn rotation_then_reuse_revokes_the_whole_family() {
        let server = RedisServer::start();
        let clock = clock_near_now();
        let issuer = issuer(
            store(&server.url(), &clock, TimeSource::Server),
            &clock,
            config(),
        );
        let first = issuer.issue("user", no_map()).unwrap();
        let second = issuer.refresh(&first.refresh_token).await.unwrap();
        assert_ne!(second.refresh_token, first.refresh_token);
        assert!(issuer.verify_access(&second.access_token).await.is_ok());

        assert_eq!(
            issuer.refresh(&first.refresh_token).await,
            Err(AuthError::Reused)
        );
        assert_eq!(
            issuer.refresh(&second.refresh_token).await,
            Err(AuthError::Revoked)
        );
        assert_eq!(
            issuer.verify_access(&second.access_token).await,
            Err(AuthError::Revoked)
        );

        let family = claim(&issuer, &first.refresh_token, "sid");
        let family_key = format!("polyrelay:auth:{{{family}}}:revoked");
        let ttl = server.pttl(&family_key);
        let most = (14 * 86_400 + 60) * 1000;
        assert!(ttl > most - 5_000 && ttl <= most, "family TTL {ttl}");
        // Every key has a TTL, shares the family's hash tag, and names ids,
        // never token text.
        let keys = server.keys("polyrelay:*");
        assert_eq!(keys.len(), 2, "the spent R1 and the family: {keys:?}");
        for key in &keys {
            assert!(server.pttl(key) > 0, "{key}");
            assert!(
                key.starts_with(&format!("polyrelay:auth:{{{family}}}:")),
                "{key}"
            );
            for token in [&first.refresh_token, &second.refresh_token] {
                for part in token.split('.') {
                    assert!(!key.contains(part), "{key}");
                }
            }
        }
    }

    // With grace = 10 s, R1 again returns the same R2 and
    // revokes nothing.
    #[tokio::test]
    async fn within_grace_the_same_successor_is_returned() {
        let server = RedisServer::start();
        let clock = clock_near_now();
        let config = IssuerConfig {
            reuse_grace: Duration::from_secs(10),
            ..config()
        };
        let issuer = issuer(
            store(&server.url(), &clock, TimeSource::Server),
            &clock,
            config,
        );
        let first = issuer.issue("user", no_map()).unwrap();
        let second = issuer.refresh(&first.refresh_token).await.unwrap();
        clock.advance(Duration::from_secs(3));
        let again = issuer.refresh(&first.refresh_token).await.unwrap();
        assert_eq!(again.refresh_token, second.refresh_token);
        assert!(issuer.refresh(&second.refresh_token).await.is_ok());
        assert!(issuer.verify_access(&again.access_token).await.is_ok());
    }

    // The grace window is measured by the script: at 9.999 s a replay, at
    // 10 s reuse (script time injected, as for the quota script).
    #[tokio::test]
    async fn grace_ends_exactly_after_the_window() {
        let server = RedisServer::start();
        let clock = clock_near_now();
        let store = store(&server.url(), &clock, TimeSource::Argument);
        let presented = |successor: &str| RefreshUse {
            jti: "r1",
            family: "fam",
            successor: Successor {
                jti: successor.into(),
                issued_at: 1_700_000_000,
            },
            remember_for: Duration::from_secs(100),
            grace: Duration::from_secs(10),
            family_ttl: Duration::from_secs(1000),
        };
        assert_eq!(
            store.use_refresh(presented("r2")).await,
            Ok(RefreshOutcome::Rotated)
        );
        clock.advance(Duration::from_millis(9_999));
        assert_eq!(
            store.use_refresh(presented("other")).await,
            Ok(RefreshOutcome::Replayed(Successor {
                jti: "r2".into(),
                issued_at: 1_700_000_000
            }))
        );
        assert_eq!(store.is_revoked("r2", Some("fam")).await, Ok(false));
        clock.advance(Duration::from_millis(1));
        assert_eq!(
            store.use_refresh(presented("other")).await,
            Ok(RefreshOutcome::Reused)
        );
        assert_eq!(store.is_revoked("r2", Some("fam")).await, Ok(true));
        assert_eq!(
            store.use_refresh(presented("other")).await,
            Ok(RefreshOutcome::Revoked)
        );
        let ttl = server.pttl("polyrelay:auth:{fam}:used:r1");
        assert!(ttl > 0 && ttl <= 100_000, "{ttl}");

        // Grace 0: a repeat in the very same millisecond is reuse.
        let no_grace = || RefreshUse {
            jti: "s1",
            family: "fam2",
            grace: Duration::ZERO,
            ..presented("s2")
        };
        assert_eq!(
            store.use_refresh(no_grace()).await,
            Ok(RefreshOutcome::Rotated)
        );
        assert_eq!(
            store.use_refresh(no_grace()).await,
            Ok(RefreshOutcome::Reused)
        );
    }

    // A revoked jti stays rejected until its exp, and its
    // denylist TTL is ≤ exp − now + leeway.
    #[tokio::test]
    async fn a_revoked_token_stays_denied_until_it_expires() {
        let server = RedisServer::start();
        let clock = clock_near_now();
        let issuer = issuer(
            store(&server.url(), &clock, TimeSource::Server),
            &clock,
            config(),
        );
        let pair = issuer.issue("user", no_map()).unwrap();
        issuer.revoke(&pair.access_token).await.unwrap();
        let jti = claim(&issuer, &pair.access_token, "jti");
        let ttl = server.pttl(&format!("polyrelay:auth:jti:{{{jti}}}"));
        let bound = (900 + 60) * 1000;
        assert!(ttl > bound - 5_000 && ttl <= bound, "TTL {ttl}");
        for step in [0, 600, 299] {
            clock.advance(Duration::from_secs(step));
            assert_eq!(
                issuer.verify_access(&pair.access_token).await,
                Err(AuthError::Revoked),
                "+{step} s"
            );
        }
        // A second, shorter revocation never shortens the first.
        issuer.revoke(&pair.access_token).await.unwrap();
        assert!(server.pttl(&format!("polyrelay:auth:jti:{{{jti}}}")) > bound - 5_000);
        clock.advance(Duration::from_secs(61));
        assert_eq!(
            issuer.verify_access(&pair.access_token).await,
            Err(AuthError::Expired)
        );
        // Other tokens of the login are untouched; logout denies them all.
        assert!(issuer.refresh(&pair.refresh_token).await.is_ok());
    }

    // Issue #6: two issuers sharing one Redis see each other's rotations.
    #[tokio::test]
    async fn issuers_sharing_redis_share_rotations_and_revocations() {
        let server = RedisServer::start();
        let clock = clock_near_now();
        let a = issuer(
            store(&server.url(), &clock, TimeSource::Server),
            &clock,
            config(),
        );
        let b = issuer(
            store(&server.url(), &clock, TimeSource::Server),
            &clock,
            config(),
        );
        let first = a.issue("user", no_map()).unwrap();
        let second = b.refresh(&first.refresh_token).await.unwrap();
        assert_eq!(
            a.refresh(&first.refresh_token).await,
            Err(AuthError::Reused)
        );
        assert_eq!(
            b.refresh(&second.refresh_token).await,
            Err(AuthError::Revoked)
        );

        let other = b.issue("user", no_map()).unwrap();
        a.revoke_session(&other.access_token).await.unwrap();
        assert_eq!(
            b.verify_access(&other.access_token).await,
            Err(AuthError::Revoked)
        );
        assert_eq!(
            b.refresh(&other.refresh_token).await,
            Err(AuthError::Revoked)
        );
    }

    // Redis down with fail mode closed →
    // Unavailable, never a success; `open` lets the refresh through.
    #[tokio::test]
    async fn redis_down_fails_closed() {
        let mut server = RedisServer::start();
        let clock = clock_near_now();
        let closed = issuer(
            store(&server.url(), &clock, TimeSource::Server),
            &clock,
            config(),
        );
        let open_config = IssuerConfig {
            revocation_fail_mode: RevocationFailMode::Open,
            ..config()
        };
        let open = issuer(
            store(&server.url(), &clock, TimeSource::Server),
            &clock,
            open_config,
        );
        let pair = closed.issue("user", no_map()).unwrap();
        assert!(closed.verify_access(&pair.access_token).await.is_ok());

        // Paused: the deadline (or the response timeout) cuts it off.
        server.pause();
        assert_eq!(
            closed.refresh(&pair.refresh_token).await,
            Err(AuthError::Unavailable)
        );
        server.resume();
        server.kill();
        assert_eq!(
            closed.refresh(&pair.refresh_token).await,
            Err(AuthError::Unavailable)
        );
        assert_eq!(
            closed.verify_access(&pair.access_token).await,
            Err(AuthError::Unavailable)
        );
        assert_eq!(
            closed.revoke(&pair.access_token).await,
            Err(AuthError::Unavailable)
        );
        assert!(open.refresh(&pair.refresh_token).await.is_ok());

        // Nothing listening from the start: unavailable, and the breaker
        // then answers without trying.
        let dead = store(
            &format!("redis://127.0.0.1:{}", free_port(false)),
            &clock,
            TimeSource::Server,
        );
        for _ in 0..7 {
            assert_eq!(dead.is_revoked("j", None).await, Err(StoreUnavailable));
        }
        let stats = dead.stats();
        assert_eq!((stats.failures, stats.short_circuited), (5, 2));
    }

    #[test]
    fn key_ids_are_plain_ids_or_hashes() {
        assert_eq!(key_id("0123abcdef"), "0123abcdef");
        let token = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.sig";
        for odd in [token, "a{b}", "", &"x".repeat(65), "a:b"] {
            let id = key_id(odd);
            assert_eq!(id.len(), 64, "{odd}");
            assert!(id.bytes().all(|b| b.is_ascii_hexdigit()));
        }
    }
}
