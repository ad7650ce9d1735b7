//! The future every store of shared state returns ([`StateStore`] for
//! quotas and rate limits, [`TokenStore`] for auth tokens). It lives apart
//! from both so that neither module depends on the other for it.
//!
//! [`StateStore`]: crate::state::StateStore
//! [`TokenStore`]: crate::auth::TokenStore

use futures::future::{BoxFuture, Either};

/// What a store operation returns: ready at once for in-memory state (no
/// allocation on the hot path), or a boxed future for a store that does I/O.
pub type StateFuture<'a, T> = Either<std::future::Ready<T>, BoxFuture<'a, T>>;

/// An answer that is already known.
pub fn ready<'a, T>(value: T) -> StateFuture<'a, T> {
    Either::Left(std::future::ready(value))
}
