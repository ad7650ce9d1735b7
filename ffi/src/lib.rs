//! The C ABI of polyrelay: the same core, providers, fallback and guarantees
//! for C, C++ and every language with a C FFI.
//!
//! A thin layer: every function checks its arguments, runs behind a panic
//! guard, calls the core and turns the outcome into a `pr_status`. Blocking
//! calls run on the core's managed runtime (`polyrelay::internal::shared_runtime`); async
//! calls are spawned on it and report through a callback. The header
//! `include/polyrelay.h` is generated from this crate by cbindgen (see
//! `ffi/cbindgen.toml`); a test fails when it is out of date.
//!
//! Conventions, the same for every function:
//! - Fallible functions return a `pr_status` and take an optional
//!   `pr_error **error` last: NULL when you only want the status, otherwise it
//!   receives an error object on failure (and NULL on success).
//! - Handles (`pr_client`, `pr_result`, `pr_error`, `pr_call_handle`,
//!   `pr_stream`, `pr_auth_keyset`, `pr_auth_issuer`, `pr_auth_verifier`) are
//!   opaque, owned by the caller once handed over, and freed by their
//!   `pr_*_free` function, which ignores NULL.
//! - `const char *` strings read from a handle live as long as the handle;
//!   `char *` strings returned through out-parameters are freed with
//!   `pr_string_free` and nothing else.
//! - No thread-local "last error": everything is in the returned objects.
#![deny(unsafe_op_in_unsafe_fn, clippy::undocumented_unsafe_blocks)]
#![warn(missing_docs)]
#![allow(non_camel_case_types)]

// One group each, so the header lists them in this order: client,
// capabilities, calls, streams, results, tokens, errors, status codes,
// strings.
mod client;

mod capability;

mod call;

mod stream;

mod result;

mod auth;

mod error;

mod status;

mod boundary;

use std::ffi::c_char;

pub use auth::{
    pr_auth_issuer, pr_auth_issuer_free, pr_auth_issuer_issue, pr_auth_issuer_new,
    pr_auth_issuer_refresh, pr_auth_issuer_revoke, pr_auth_issuer_revoke_session,
    pr_auth_issuer_verify, pr_auth_keyset, pr_auth_keyset_add_hmac, pr_auth_keyset_add_jwk,
    pr_auth_keyset_add_private_pem, pr_auth_keyset_add_public_pem, pr_auth_keyset_free,
    pr_auth_keyset_new, pr_auth_keyset_new_from_jwks, pr_auth_keyset_public_jwks,
    pr_auth_keyset_sign_with, pr_auth_verifier, pr_auth_verifier_free, pr_auth_verifier_new,
    pr_auth_verifier_verify,
};
pub use boundary::pr_string_free;
pub use call::{
    pr_call, pr_call_async, pr_call_cancel, pr_call_handle, pr_call_handle_free, pr_callback,
};
pub use capability::pr_capability_parameters_json;
pub use client::{
    pr_client, pr_client_free, pr_client_health_json, pr_client_new,
    pr_client_new_from_config_path, pr_client_new_from_config_text, pr_client_providers_json,
    pr_client_shutdown, pr_client_stats_json,
};
pub use error::{
    pr_error, pr_error_attempts_json, pr_error_claim, pr_error_free, pr_error_http_status,
    pr_error_kind, pr_error_message, pr_error_partial_text, pr_error_provider,
    pr_error_retry_after, pr_error_status,
};
pub use result::{
    pr_result, pr_result_attempts_json, pr_result_cached, pr_result_data_json, pr_result_elapsed,
    pr_result_free, pr_result_provider, pr_result_stale, pr_result_stream_parts_json,
    pr_result_time_to_first_token,
};
pub use status::{pr_status, pr_status_name};
pub use stream::{
    pr_chunk_callback, pr_chunk_kind, pr_stream, pr_stream_free, pr_stream_next, pr_stream_open,
    pr_stream_result, pr_stream_start,
};

/// Major version of the library this header was generated from.
pub const POLYRELAY_VERSION_MAJOR: u32 = 0;
/// Minor version of the library this header was generated from.
pub const POLYRELAY_VERSION_MINOR: u32 = 1;
/// Patch version of the library this header was generated from.
pub const POLYRELAY_VERSION_PATCH: u32 = 0;

/// The version of the library actually loaded, `"MAJOR.MINOR.PATCH"`, to
/// compare with the `POLYRELAY_VERSION_*` macros of the header compiled
/// against. Static: never free it.
///
/// Thread safety: safe from any thread.
#[unsafe(no_mangle)]
pub extern "C" fn pr_version() -> *const c_char {
    concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr().cast()
}

#[cfg(test)]
mod tests {
    use std::ffi::CStr;

    use super::*;

    #[test]
    fn the_version_macros_and_string_match_the_package() {
        let number = |part: &str| part.parse::<u32>().unwrap();
        assert_eq!(
            POLYRELAY_VERSION_MAJOR,
            number(env!("CARGO_PKG_VERSION_MAJOR"))
        );
        assert_eq!(
            POLYRELAY_VERSION_MINOR,
            number(env!("CARGO_PKG_VERSION_MINOR"))
        );
        assert_eq!(
            POLYRELAY_VERSION_PATCH,
            number(env!("CARGO_PKG_VERSION_PATCH"))
        );
        // SAFETY: a static NUL-terminated string.
        let version = unsafe { CStr::from_ptr(pr_version()) };
        assert_eq!(version.to_str().unwrap(), env!("CARGO_PKG_VERSION"));
    }
}
