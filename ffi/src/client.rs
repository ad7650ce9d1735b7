//! The client handle: creation from defaults, TOML text or a TOML file,
//! shutdown and free, and the JSON views (health, stats, chains).

use std::ffi::c_char;
use std::sync::Arc;

use polyrelay::config::Config;
use polyrelay::{CapabilityId, Client};
use serde_json::{Map, Value};

use crate::boundary::{give_string, guard, live, out_param, report, text, Outcome};
use crate::call::InFlightCalls;
use crate::error::pr_error;
use crate::status::pr_status;

/// One resilient client over every configured provider: fallback chains,
/// breakers, limits, quotas and cache, shared by every call made with it.
/// Create it once and share it; free it with `pr_client_free`.
///
/// Thread safety: every function taking a `pr_client *` may be called from
/// any number of threads at once, except `pr_client_free`, which must be the
/// last use.
pub struct pr_client {
    pub(crate) client: Client,
    pub(crate) calls: Arc<InFlightCalls>,
}

/// Builds a client from `config` (or from the environment when `None`) and
/// hands it over through `out`.
fn create(out: &mut *mut pr_client, config: Option<Config>) -> Outcome {
    let builder = Client::builder();
    let builder = match config {
        Some(config) => builder.config(config),
        None => builder,
    };
    let client = builder.build()?;
    *out = Box::into_raw(Box::new(pr_client {
        client,
        calls: Arc::new(InFlightCalls::default()),
    }));
    Ok(())
}

/// Creates a client with the default configuration: the file named by
/// `POLYRELAY_CONFIG` if set, then every `POLYRELAY_*` variable and
/// provider key from the environment. Never touches the network.
///
/// On success `*client` holds a new client (free it with `pr_client_free`);
/// on failure it is NULL and the status says why (`PR_ERR_CONFIG`).
///
/// Thread safety: safe from any thread.
///
/// # Safety
/// `client` is valid for one pointer write; `error` is NULL or valid for one
/// pointer write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pr_client_new(
    client: *mut *mut pr_client,
    error: *mut *mut pr_error,
) -> pr_status {
    // SAFETY: the pointers are valid as the caller promised.
    unsafe { report(error, || create(out_param(client, "client")?, None)) }
}

/// Creates a client from TOML configuration text (see the README for the
/// keys); `POLYRELAY_*` environment variables still override it.
///
/// On success `*client` holds a new client; on failure it is NULL and the
/// status says why (`PR_ERR_CONFIG` naming the field, `PR_ERR_INVALID_UTF8`).
///
/// Thread safety: safe from any thread.
///
/// # Safety
/// `toml` is NULL or a NUL-terminated string; `client` is valid for one
/// pointer write; `error` is NULL or valid for one pointer write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pr_client_new_from_config_text(
    toml: *const c_char,
    client: *mut *mut pr_client,
    error: *mut *mut pr_error,
) -> pr_status {
    // SAFETY: the pointers are valid as the caller promised.
    unsafe {
        report(error, || {
            let out = out_param(client, "client")?;
            let config = Config::from_toml_str(text(toml, "toml")?)?;
            create(out, Some(config))
        })
    }
}

/// Creates a client from a TOML configuration file at `path` (UTF-8);
/// `POLYRELAY_*` environment variables still override it.
///
/// On success `*client` holds a new client; on failure it is NULL and the
/// status says why (`PR_ERR_CONFIG` for an unreadable file or a bad field).
///
/// Thread safety: safe from any thread.
///
/// # Safety
/// `path` is NULL or a NUL-terminated string; `client` is valid for one
/// pointer write; `error` is NULL or valid for one pointer write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pr_client_new_from_config_path(
    path: *const c_char,
    client: *mut *mut pr_client,
    error: *mut *mut pr_error,
) -> pr_status {
    // SAFETY: the pointers are valid as the caller promised.
    unsafe {
        report(error, || {
            let out = out_param(client, "client")?;
            let config = Config::from_file(text(path, "path")?)?;
            create(out, Some(config))
        })
    }
}

/// Shuts the client down: every call in flight on it ends with
/// `PR_ERR_SHUTDOWN` (an async call's callback fires with that status, still
/// exactly once), new calls fail with `PR_ERR_SHUTDOWN`, and this function
/// waits until every callback of this client has returned, so `user_data`
/// may be released afterwards. Calling it again is harmless.
///
/// Called from inside a callback it cannot wait for that callback: it then
/// only signals, and the remaining callbacks fire shortly afterwards.
///
/// Thread safety: safe from any thread, concurrently with calls on the same
/// client. Do not hold a lock that a callback needs while calling it.
///
/// # Safety
/// `client` is NULL or a live client.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pr_client_shutdown(client: *const pr_client) -> pr_status {
    // SAFETY: NULL or live, as the caller promised.
    unsafe {
        report(std::ptr::null_mut(), || {
            live(client, "client")?.calls.shut_down();
            Ok(())
        })
    }
}

/// Shuts the client down (see `pr_client_shutdown`: calls in flight end with
/// `PR_ERR_SHUTDOWN` and their callbacks have returned when this returns)
/// and frees it. NULL is ignored.
///
/// Thread safety: any thread, but it must be the last use of the client:
/// no other thread may be using or starting to use it.
///
/// # Safety
/// `client` is NULL or a client from `pr_client_new*` not yet freed; it is
/// invalid afterwards.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pr_client_free(client: *mut pr_client) {
    if !client.is_null() {
        guard((), || {
            // SAFETY: the caller hands back a pointer from `Box::into_raw`, once.
            let client = unsafe { Box::from_raw(client) };
            client.calls.shut_down();
        });
    }
}

/// Writes `json(client)` to `*out` as a string for `pr_string_free`.
///
/// # Safety
/// As for the exported functions below.
unsafe fn json_view(
    client: *const pr_client,
    out: *mut *mut c_char,
    error: *mut *mut pr_error,
    json: impl FnOnce(&Client) -> Value,
) -> pr_status {
    // SAFETY: the pointers are valid as the caller promised.
    unsafe {
        report(error, || {
            let out = out_param(out, "json")?;
            let client = live(client, "client")?;
            *out = give_string(json(&client.client).to_string());
            Ok(())
        })
    }
}

/// Which capabilities can be served right now, and by whom, as JSON:
/// `{"state_backend": "memory", "capabilities": {"weather.current":
/// {"status": "healthy"|"degraded"|"down", "ready": [...], "unavailable":
/// {"provider": "why"}}, ...}}`. `*json` is freed with `pr_string_free`.
///
/// Thread safety: safe from any thread, concurrently with calls.
///
/// # Safety
/// `client` is NULL or a live client; `json` is valid for one pointer write;
/// `error` is NULL or valid for one pointer write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pr_client_health_json(
    client: *const pr_client,
    json: *mut *mut c_char,
    error: *mut *mut pr_error,
) -> pr_status {
    // SAFETY: forwarded from the caller.
    unsafe {
        json_view(client, json, error, |c| {
            serde_json::to_value(c.health()).unwrap_or_default()
        })
    }
}

/// Every enabled provider's counters, breakers and quota, as a JSON array of
/// objects (`provider`, `key_set`, `requests`, ..., `breakers`, `quota`).
/// `*json` is freed with `pr_string_free`.
///
/// Thread safety: safe from any thread, concurrently with calls.
///
/// # Safety
/// `client` is NULL or a live client; `json` is valid for one pointer write;
/// `error` is NULL or valid for one pointer write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pr_client_stats_json(
    client: *const pr_client,
    json: *mut *mut c_char,
    error: *mut *mut pr_error,
) -> pr_status {
    // SAFETY: forwarded from the caller.
    unsafe {
        json_view(client, json, error, |c| {
            serde_json::to_value(c.stats()).unwrap_or_default()
        })
    }
}

/// The providers, as a JSON object: `"providers"` lists every built-in
/// provider (id, capabilities, keyless, key variable and placement, docs URL,
/// terms, commercial use, default limits) and `"chains"` gives this client's
/// fallback order per capability (`{"weather.current": ["open-meteo", ...]}`).
/// `*json` is freed with `pr_string_free`.
///
/// Thread safety: safe from any thread, concurrently with calls.
///
/// # Safety
/// `client` is NULL or a live client; `json` is valid for one pointer write;
/// `error` is NULL or valid for one pointer write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pr_client_providers_json(
    client: *const pr_client,
    json: *mut *mut c_char,
    error: *mut *mut pr_error,
) -> pr_status {
    // SAFETY: forwarded from the caller.
    unsafe {
        json_view(client, json, error, |c| {
            let chains: Map<String, Value> = CapabilityId::ALL
                .iter()
                .map(|capability| (capability.as_str().to_string(), c.chain(*capability).into()))
                .collect();
            serde_json::json!({
                "providers": polyrelay::catalog::listing(),
                "chains": chains,
            })
        })
    }
}
