//! Token state: refresh-token rotation and the revocation denylist.
//!
//! Every operation is one atomic step on the backend (one Lua script on
//! Redis), so two concurrent presentations of the same refresh token can
//! never both rotate. Entries carry a TTL equal to the remaining life of the
//! token they are about, so the state prunes itself.

use std::collections::HashMap;
use std::fmt;
use std::time::Duration;

use parking_lot::Mutex;

use crate::clock::SharedClock;
use crate::state_future::{ready, StateFuture};

/// The store could not answer (e.g. Redis unreachable). The caller decides
/// what that means through [`super::RevocationFailMode`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("token store unavailable")]
pub struct StoreUnavailable;

/// The refresh token a rotation hands out in place of the one presented.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Successor {
    /// Its `jti`.
    pub jti: String,
    /// Its `iat`, seconds since the epoch; with the presented token's claims
    /// this is enough to mint it again, byte for byte, during the grace
    /// window, so no token is ever stored.
    pub issued_at: i64,
}

/// One presentation of a refresh token, for [`TokenStore::use_refresh`].
#[derive(Debug, Clone)]
pub struct RefreshUse<'a> {
    /// The presented token's `jti`.
    pub jti: &'a str,
    /// Its family (`sid`): every refresh token descending from one login.
    pub family: &'a str,
    /// The successor to record if this is the token's first use.
    pub successor: Successor,
    /// How long to remember the use: the token's remaining life plus leeway
    /// (after that it is expired and can no longer be presented).
    pub remember_for: Duration,
    /// A second presentation within this long of the first returns the same
    /// successor instead of counting as reuse; zero disables it.
    pub grace: Duration,
    /// How long a family revoked for reuse stays denied: the longest any of
    /// its tokens can still live, plus leeway.
    pub family_ttl: Duration,
}

/// What presenting a refresh token did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefreshOutcome {
    /// First use: it is now spent and the successor recorded.
    Rotated,
    /// A repeat within the grace window: here is the successor recorded at
    /// the first use. Nothing was revoked.
    Replayed(Successor),
    /// A repeat after the grace window: the whole family is now revoked.
    Reused,
    /// The token or its family was already on the denylist.
    Revoked,
}

/// Atomic operations on token state.
///
/// Implementations answer [`StoreUnavailable`] rather than guessing when
/// their backend is unreachable; the issuer then fails closed or open as
/// configured.
pub trait TokenStore: Send + Sync + fmt::Debug {
    /// In one atomic step: if the token or its family is denied, `Revoked`;
    /// if the token was used before, `Replayed` within the grace window,
    /// otherwise deny the family for `family_ttl` and answer `Reused`;
    /// otherwise mark it used with its successor and answer `Rotated`.
    fn use_refresh<'a>(
        &'a self,
        presented: RefreshUse<'a>,
    ) -> StateFuture<'a, Result<RefreshOutcome, StoreUnavailable>>;

    /// Denies one token (`jti`) for `ttl`.
    fn revoke_token<'a>(
        &'a self,
        jti: &'a str,
        ttl: Duration,
    ) -> StateFuture<'a, Result<(), StoreUnavailable>>;

    /// Denies every token of a family (`sid`) for `ttl`.
    fn revoke_family<'a>(
        &'a self,
        family: &'a str,
        ttl: Duration,
    ) -> StateFuture<'a, Result<(), StoreUnavailable>>;

    /// Whether the token `jti` or its family is denied.
    fn is_revoked<'a>(
        &'a self,
        jti: &'a str,
        family: Option<&'a str>,
    ) -> StateFuture<'a, Result<bool, StoreUnavailable>>;

    /// A short name for health reports (`memory`, `redis`).
    fn backend(&self) -> &'static str;
}

/// The embedded default: token state in this process's memory, expiring on
/// the injected clock. Never unavailable.
pub struct InMemoryTokenStore {
    clock: SharedClock,
    tables: Mutex<Tables>,
}

#[derive(Default)]
struct Tables {
    /// Spent refresh tokens by `jti`.
    used: HashMap<String, Spent>,
    /// Denied token `jti`s, with their expiry (monotonic).
    denied_tokens: HashMap<String, Duration>,
    /// Denied families, with their expiry (monotonic).
    denied_families: HashMap<String, Duration>,
    /// Entry count at which expired entries are next swept.
    sweep_at: usize,
}

struct Spent {
    at: Duration,
    successor: Successor,
    expires: Duration,
}

/// Sweeps run when the tables have doubled since the last one, and not below
/// this size, so their cost is amortised over the inserts.
const MIN_SWEEP: usize = 1024;

impl fmt::Debug for InMemoryTokenStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let tables = self.tables.lock();
        f.debug_struct("InMemoryTokenStore")
            .field("spent", &tables.used.len())
            .field("denied_tokens", &tables.denied_tokens.len())
            .field("denied_families", &tables.denied_families.len())
            .finish()
    }
}

impl InMemoryTokenStore {
    /// An empty store on `clock`.
    pub fn new(clock: SharedClock) -> Self {
        Self {
            clock,
            tables: Mutex::new(Tables {
                sweep_at: MIN_SWEEP,
                ..Tables::default()
            }),
        }
    }

    /// How much longer the token `jti` stays on the denylist, if it is on it.
    pub fn revoked_token_ttl(&self, jti: &str) -> Option<Duration> {
        let now = self.clock.now();
        let tables = self.tables.lock();
        live(tables.denied_tokens.get(jti), now).map(|expires| expires - now)
    }

    /// How much longer the family stays on the denylist, if it is on it.
    pub fn revoked_family_ttl(&self, family: &str) -> Option<Duration> {
        let now = self.clock.now();
        let tables = self.tables.lock();
        live(tables.denied_families.get(family), now).map(|expires| expires - now)
    }

    fn deny(&self, family: bool, id: &str, ttl: Duration) {
        let now = self.clock.now();
        let mut tables = self.tables.lock();
        let table = if family {
            &mut tables.denied_families
        } else {
            &mut tables.denied_tokens
        };
        deny_until(table, id, now.saturating_add(ttl));
        tables.sweep_if_grown(now);
    }
}

/// Denies `id` until `expires`, never shortening an existing denial.
fn deny_until(table: &mut HashMap<String, Duration>, id: &str, expires: Duration) {
    let entry = table.entry(id.to_owned()).or_insert(expires);
    *entry = (*entry).max(expires);
}

fn live(expires: Option<&Duration>, now: Duration) -> Option<Duration> {
    expires.copied().filter(|&expires| expires > now)
}

impl Tables {
    fn sweep_if_grown(&mut self, now: Duration) {
        let len = self.used.len() + self.denied_tokens.len() + self.denied_families.len();
        if len < self.sweep_at {
            return;
        }
        self.used.retain(|_, spent| spent.expires > now);
        self.denied_tokens.retain(|_, &mut expires| expires > now);
        self.denied_families.retain(|_, &mut expires| expires > now);
        let len = self.used.len() + self.denied_tokens.len() + self.denied_families.len();
        self.sweep_at = (len * 2).max(MIN_SWEEP);
    }

    fn denied(&self, jti: &str, family: Option<&str>, now: Duration) -> bool {
        live(self.denied_tokens.get(jti), now).is_some()
            || family.is_some_and(|family| live(self.denied_families.get(family), now).is_some())
    }
}

impl TokenStore for InMemoryTokenStore {
    fn use_refresh<'a>(
        &'a self,
        presented: RefreshUse<'a>,
    ) -> StateFuture<'a, Result<RefreshOutcome, StoreUnavailable>> {
        let now = self.clock.now();
        let mut tables = self.tables.lock();
        if tables.denied(presented.jti, Some(presented.family), now) {
            return ready(Ok(RefreshOutcome::Revoked));
        }
        if let Some(spent) = tables.used.get(presented.jti).filter(|s| s.expires > now) {
            if now.saturating_sub(spent.at) < presented.grace {
                return ready(Ok(RefreshOutcome::Replayed(spent.successor.clone())));
            }
            let expires = now.saturating_add(presented.family_ttl);
            deny_until(&mut tables.denied_families, presented.family, expires);
            tables.sweep_if_grown(now);
            return ready(Ok(RefreshOutcome::Reused));
        }
        tables.used.insert(
            presented.jti.to_owned(),
            Spent {
                at: now,
                successor: presented.successor,
                expires: now.saturating_add(presented.remember_for),
            },
        );
        tables.sweep_if_grown(now);
        ready(Ok(RefreshOutcome::Rotated))
    }

    fn revoke_token<'a>(
        &'a self,
        jti: &'a str,
        ttl: Duration,
    ) -> StateFuture<'a, Result<(), StoreUnavailable>> {
        self.deny(false, jti, ttl);
        ready(Ok(()))
    }

    fn revoke_family<'a>(
        &'a self,
        family: &'a str,
        ttl: Duration,
    ) -> StateFuture<'a, Result<(), StoreUnavailable>> {
        self.deny(true, family, ttl);
        ready(Ok(()))
    }

    fn is_revoked<'a>(
        &'a self,
        jti: &'a str,
        family: Option<&'a str>,
    ) -> StateFuture<'a, Result<bool, StoreUnavailable>> {
        let now = self.clock.now();
        ready(Ok(self.tables.lock().denied(jti, family, now)))
    }

    fn backend(&self) -> &'static str {
        "memory"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::FakeClock;

    fn presented<'a>(jti: &'a str, grace: u64) -> RefreshUse<'a> {
        RefreshUse {
            jti,
            family: "fam",
            successor: Successor {
                jti: format!("{jti}-child"),
                issued_at: 7,
            },
            remember_for: Duration::from_secs(100),
            grace: Duration::from_secs(grace),
            family_ttl: Duration::from_secs(1000),
        }
    }

    #[tokio::test]
    async fn first_use_rotates_second_revokes_the_family() {
        let clock = FakeClock::at_epoch();
        let store = InMemoryTokenStore::new(clock.shared());
        assert_eq!(
            store.use_refresh(presented("r1", 0)).await,
            Ok(RefreshOutcome::Rotated)
        );
        assert_eq!(
            store.use_refresh(presented("r1", 0)).await,
            Ok(RefreshOutcome::Reused)
        );
        assert_eq!(store.is_revoked("r2", Some("fam")).await, Ok(true));
        assert_eq!(store.is_revoked("r2", Some("other")).await, Ok(false));
        assert_eq!(
            store.use_refresh(presented("r2", 0)).await,
            Ok(RefreshOutcome::Revoked)
        );
        assert_eq!(
            store.revoked_family_ttl("fam"),
            Some(Duration::from_secs(1000))
        );
        clock.advance(Duration::from_secs(1000));
        assert_eq!(store.revoked_family_ttl("fam"), None);
        assert_eq!(store.is_revoked("r2", Some("fam")).await, Ok(false));
    }

    #[tokio::test]
    async fn grace_window_replays_the_recorded_successor() {
        let clock = FakeClock::at_epoch();
        let store = InMemoryTokenStore::new(clock.shared());
        store.use_refresh(presented("r1", 10)).await.unwrap();
        clock.advance(Duration::from_millis(9_999));
        let mut again = presented("r1", 10);
        again.successor.jti = "different".into();
        assert_eq!(
            store.use_refresh(again).await,
            Ok(RefreshOutcome::Replayed(Successor {
                jti: "r1-child".into(),
                issued_at: 7
            }))
        );
        clock.advance(Duration::from_millis(1));
        assert_eq!(
            store.use_refresh(presented("r1", 10)).await,
            Ok(RefreshOutcome::Reused)
        );
    }

    #[tokio::test]
    async fn entries_expire_and_are_swept() {
        let clock = FakeClock::at_epoch();
        let store = InMemoryTokenStore::new(clock.shared());
        for i in 0..MIN_SWEEP - 1 {
            store
                .revoke_token(&format!("t{i}"), Duration::from_secs(5))
                .await
                .unwrap();
        }
        assert_eq!(store.revoked_token_ttl("t0"), Some(Duration::from_secs(5)));
        clock.advance(Duration::from_secs(5));
        assert_eq!(store.revoked_token_ttl("t0"), None);
        store
            .revoke_token("late", Duration::from_secs(5))
            .await
            .unwrap();
        let tables = store.tables.lock();
        assert_eq!(tables.denied_tokens.len(), 1);
        assert_eq!(tables.sweep_at, MIN_SWEEP);
    }
}
