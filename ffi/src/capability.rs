//! What the core declares about capabilities, for C callers that check or
//! document parameters before calling.

use std::ffi::c_char;

use polyrelay::CapabilityId;

use crate::boundary::{give_string, out_param, report, text};
use crate::error::pr_error;
use crate::status::pr_status;

/// The parameters of a capability as a JSON Schema (draft 2020-12) of its
/// parameter object: for each parameter its type, bounds, default,
/// whether it is required and a description; `oneOf`/`anyOf` say which
/// parameters are alternatives (`lat` and `lon`, or `city`). With
/// `capability` NULL, an object of every capability's schema by name
/// (`{"weather.current": {...}, ...}`). Needs no client. `*json` is freed
/// with `pr_string_free`.
///
/// Fails with `PR_ERR_INVALID_REQUEST` for an unknown capability.
///
/// Thread safety: safe from any thread.
///
/// # Safety
/// `capability` is NULL or a NUL-terminated string; `json` is valid for one
/// pointer write; `error` is NULL or valid for one pointer write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pr_capability_parameters_json(
    capability: *const c_char,
    json: *mut *mut c_char,
    error: *mut *mut pr_error,
) -> pr_status {
    // SAFETY: the pointers are valid as the caller promised.
    unsafe {
        report(error, || {
            let out = out_param(json, "json")?;
            let schema = if capability.is_null() {
                CapabilityId::parameter_schemas()
            } else {
                text(capability, "capability")?
                    .parse::<CapabilityId>()?
                    .parameter_schema()
            };
            *out = give_string(schema.to_string());
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use std::ffi::CStr;
    use std::ptr;

    use serde_json::Value;

    use super::*;
    use crate::boundary::pr_string_free;

    fn schema(capability: Option<&CStr>) -> (pr_status, Option<Value>) {
        let mut json: *mut c_char = ptr::null_mut();
        let name = capability.map_or(ptr::null(), CStr::as_ptr);
        // SAFETY: valid pointers; no error object wanted.
        let status = unsafe { pr_capability_parameters_json(name, &mut json, ptr::null_mut()) };
        if json.is_null() {
            return (status, None);
        }
        // SAFETY: a string just handed over, freed once below.
        let value = serde_json::from_str(unsafe { CStr::from_ptr(json) }.to_str().unwrap()).ok();
        // SAFETY: as above.
        unsafe { pr_string_free(json) };
        (status, value)
    }

    #[test]
    fn the_schemas_are_the_cores() {
        assert_eq!(
            schema(None),
            (pr_status::PR_OK, Some(CapabilityId::parameter_schemas()))
        );
        assert_eq!(
            schema(Some(c"weather.forecast")),
            (
                pr_status::PR_OK,
                Some(CapabilityId::WeatherForecast.parameter_schema())
            )
        );
        assert_eq!(
            schema(Some(c"weather.tomorrow")),
            (pr_status::PR_ERR_INVALID_REQUEST, None)
        );
    }
}
