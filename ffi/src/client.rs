//! The client handle: creation from defaults, TOML text, a TOML file or
//! JSON, shutdown and free, and the JSON views (health, stats, providers).

use std::ffi::c_char;
use std::sync::Arc;

use polyrelay::config::ConfigSource;
use polyrelay::Client;
use serde_json::Value;

use crate::boundary::{give_string, guard, json, live, out_param, report, text, Outcome};
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

/// Builds a client from `source` and the environment and hands it over
/// through `out`.
fn create(out: &mut *mut pr_client, source: ConfigSource) -> Outcome {
    let client = Client::builder().config(source).build()?;
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
    unsafe {
        report(error, || {
            create(out_param(client, "client")?, ConfigSource::Defaults)
        })
    }
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
            create(out, ConfigSource::Toml(text(toml, "toml")?.to_string()))
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
            create(out, ConfigSource::File(text(path, "path")?.into()))
        })
    }
}

/// Creates a client from configuration as JSON text, with the structure of
/// the TOML file (`{"capabilities": {"weather.current": {"chain": [...]}}}`);
/// `POLYRELAY_*` environment variables still override it.
///
/// On success `*client` holds a new client; on failure it is NULL and the
/// status says why (`PR_ERR_CONFIG` naming the field, `PR_ERR_INVALID_JSON`,
/// `PR_ERR_INVALID_UTF8`).
///
/// Thread safety: safe from any thread.
///
/// # Safety
/// `config_json` is NULL or a NUL-terminated string; `client` is valid for
/// one pointer write; `error` is NULL or valid for one pointer write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pr_client_new_from_config_json(
    config_json: *const c_char,
    client: *mut *mut pr_client,
    error: *mut *mut pr_error,
) -> pr_status {
    // SAFETY: the pointers are valid as the caller promised.
    unsafe {
        report(error, || {
            let out = out_param(client, "client")?;
            create(out, ConfigSource::Json(json(config_json, "config_json")?))
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
/// {"provider": "why"}}, ...}, "budgets": {"team-a": {"unit":
/// "usd"|"tokens", "limit": 5.0, "spent": 1.25, "remaining": 3.75,
/// "period": "month", "timezone": "UTC", "date": "2026-03-01",
/// "reset_at": "2026-04-01T00:00:00Z"}}}`. `*json` is freed with
/// `pr_string_free`.
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

/// The client's metrics in the Prometheus text format (version 0.0.4,
/// served as `text/plain; version=0.0.4; charset=utf-8`): calls by
/// capability and outcome, call and upstream latency histograms, overhead,
/// attempts by provider and outcome, tokens, cost, breaker states, quota
/// left and Redis degradation, after writing the client's pending call
/// records. Series carry capability, provider and outcome names, never a
/// key. `*metrics` is freed with `pr_string_free`.
///
/// Thread safety: safe from any thread, concurrently with calls; blocks
/// the calling thread briefly (not from a polyrelay callback).
///
/// # Safety
/// `client` is NULL or a live client; `metrics` is valid for one pointer
/// write; `error` is NULL or valid for one pointer write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pr_client_metrics_text(
    client: *const pr_client,
    metrics: *mut *mut c_char,
    error: *mut *mut pr_error,
) -> pr_status {
    // SAFETY: forwarded from the caller.
    unsafe {
        report(error, || {
            let out = out_param(metrics, "metrics")?;
            let client = live(client, "client")?;
            let rendered = client.client.metrics_text_blocking()?;
            *out = give_string(rendered);
            Ok(())
        })
    }
}

/// Every enabled provider's counters, breakers and quota, as a JSON object
/// keyed by provider id: `{"open-meteo": {"key_set": false, "benched_for":
/// null, "requests": 3, "outcomes": {"success": 3, ...}, "latency_ms_p50":
/// 12.0, "latency_ms_p90": ..., "latency_ms_p99": ..., "breakers":
/// {"weather.current": {...}}, "quota": null}, ...}` (the same object as
/// Python's `Client.stats()`). `*json` is freed with `pr_string_free`.
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

/// Every provider this client knows, enabled or not, as a JSON array of
/// objects (the same as Python's `Client.providers()`): `id`, `name`,
/// `capabilities`, `auth` (`"keyless"`, `"optional_key"` or `"key"`),
/// `key_env` and `key_in` (null when it takes no key), `key_set` (never the
/// key itself), `enabled`, `chains` (its position from 0 in each capability's
/// fallback chain, `{"weather.current": 0}`), `docs_url`, `terms`,
/// `commercial_use`, `default_rate_limit`, `default_daily_quota` and
/// `default_monthly_quota` (a free tier counted per calendar month).
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
    unsafe { json_view(client, json, error, |c| c.catalog().to_json()) }
}
