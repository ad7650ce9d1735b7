//! The edge between C and Rust: the panic guard every exported function sits
//! behind, and the checks that turn raw arguments into Rust values or a
//! status code (NULL, invalid UTF-8, invalid JSON).

use std::ffi::{c_char, CStr, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr;

use serde_json::Value;

use crate::error::pr_error;
use crate::status::pr_status;

/// What an exported function's body returns: success, or the error to hand
/// to the caller.
pub(crate) type Outcome<T = ()> = Result<T, pr_error>;

/// Runs `body`, returning `on_panic` instead of unwinding into C.
pub(crate) fn guard<R>(on_panic: R, body: impl FnOnce() -> R) -> R {
    catch_unwind(AssertUnwindSafe(body)).unwrap_or(on_panic)
}

/// Frees a handle the caller hands back (its destructor runs behind the
/// panic guard). NULL is ignored.
///
/// # Safety
/// `handle` is NULL or a pointer from `Box::into_raw`, not yet freed.
pub(crate) unsafe fn free_handle<T>(handle: *mut T) {
    if !handle.is_null() {
        // SAFETY: a pointer from `Box::into_raw`, handed back once.
        guard((), || drop(unsafe { Box::from_raw(handle) }));
    }
}

/// Runs the body of a function that returns a status and reports failures
/// through an optional `pr_error **error`: clears `*error`, runs `body`
/// behind the panic guard (a panic becomes `PR_ERR_PANIC`) and, on failure,
/// hands the error object over when `error` is not NULL.
///
/// # Safety
/// `error` is NULL or valid for one pointer write.
pub(crate) unsafe fn report(
    error: *mut *mut pr_error,
    body: impl FnOnce() -> Outcome,
) -> pr_status {
    if !error.is_null() {
        // SAFETY: non-NULL and writable, as the caller promised.
        unsafe { error.write(ptr::null_mut()) };
    }
    let failure = match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(())) => return pr_status::PR_OK,
        Ok(Err(failure)) => failure,
        Err(payload) => pr_error::panic(payload.as_ref()),
    };
    let status = failure.status;
    if !error.is_null() {
        // SAFETY: as above.
        unsafe { error.write(Box::into_raw(Box::new(failure))) };
    }
    status
}

/// A required out-parameter, set to NULL until there is something to put in it.
///
/// # Safety
/// `out` is NULL or valid for pointer reads and writes for `'a`.
pub(crate) unsafe fn out_param<'a, T>(out: *mut *mut T, name: &str) -> Outcome<&'a mut *mut T> {
    // SAFETY: NULL or valid, as the caller promised.
    let out = unsafe { out.as_mut() }.ok_or_else(|| pr_error::null_argument(name))?;
    *out = ptr::null_mut();
    Ok(out)
}

/// An optional out-parameter (NULL when the caller does not want it), set
/// to NULL until there is something to put in it.
///
/// # Safety
/// `out` is NULL or valid for pointer reads and writes for `'a`.
pub(crate) unsafe fn optional_out_param<'a, T>(out: *mut *mut T) -> Option<&'a mut *mut T> {
    // SAFETY: NULL or valid, as the caller promised.
    let out = unsafe { out.as_mut() }?;
    *out = ptr::null_mut();
    Some(out)
}

/// A handle argument, which must be live.
///
/// # Safety
/// `handle` is NULL or points to a live `T` for `'a`.
pub(crate) unsafe fn live<'a, T>(handle: *const T, name: &str) -> Outcome<&'a T> {
    // SAFETY: NULL or live, as the caller promised.
    unsafe { handle.as_ref() }.ok_or_else(|| pr_error::null_argument(name))
}

/// A NUL-terminated UTF-8 string argument.
///
/// # Safety
/// `text` is NULL or a NUL-terminated string that lives for `'a`.
pub(crate) unsafe fn text<'a>(text: *const c_char, name: &str) -> Outcome<&'a str> {
    if text.is_null() {
        return Err(pr_error::null_argument(name));
    }
    // SAFETY: non-NULL and NUL-terminated, as the caller promised.
    let bytes = unsafe { CStr::from_ptr(text) };
    bytes.to_str().map_err(|e| {
        pr_error::new(
            pr_status::PR_ERR_INVALID_UTF8,
            format!(
                "`{name}` is not valid UTF-8 (first invalid byte at offset {})",
                e.valid_up_to()
            ),
        )
    })
}

/// A JSON string argument.
///
/// # Safety
/// As for [`text`].
pub(crate) unsafe fn json(json: *const c_char, name: &str) -> Outcome<Value> {
    // SAFETY: forwarded from the caller.
    let json = unsafe { text(json, name) }?;
    serde_json::from_str(json).map_err(|e| {
        pr_error::new(
            pr_status::PR_ERR_INVALID_JSON,
            format!("`{name}` is not valid JSON: {e}"),
        )
    })
}

/// `text` as a C string; a NUL inside (which no JSON or message of ours
/// contains) becomes U+FFFD rather than cutting the text short.
pub(crate) fn c_string(text: String) -> CString {
    CString::new(text).unwrap_or_else(|e| {
        let text = String::from_utf8_lossy(&e.into_vec()).replace('\0', "\u{fffd}");
        CString::new(text).unwrap_or_default()
    })
}

/// Hands `text` to C as a string only `pr_string_free` may free.
pub(crate) fn give_string(text: String) -> *mut c_char {
    c_string(text).into_raw()
}

/// Frees a string that polyrelay returned (a JSON document). NULL is ignored.
/// Strings read from a result or an error belong to that object and must not
/// be passed here; static strings (`pr_version`, `pr_status_name`) neither.
///
/// Thread safety: any thread, but not concurrently with any other use of the
/// same string.
///
/// # Safety
/// `string` is NULL or a string returned by polyrelay as `char *`, not yet
/// freed.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pr_string_free(string: *mut c_char) {
    if !string.is_null() {
        // SAFETY: the caller hands back a pointer from `CString::into_raw`, once.
        guard((), || drop(unsafe { CString::from_raw(string) }));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_becomes_a_status_and_an_error_naming_it() {
        let mut error: *mut pr_error = ptr::null_mut();
        // SAFETY: `error` is a valid out-parameter.
        let status = unsafe { report(&mut error, || panic!("provider bug")) };
        assert_eq!(status, pr_status::PR_ERR_PANIC);
        assert!(!error.is_null());
        // SAFETY: `error` was just handed over.
        let message = unsafe { CStr::from_ptr(crate::error::pr_error_message(error)) };
        assert!(
            message.to_str().unwrap().contains("provider bug"),
            "{message:?}"
        );
        // SAFETY: freed once.
        unsafe { crate::error::pr_error_free(error) };
    }

    #[test]
    fn a_panic_with_no_error_out_parameter_still_returns_the_status() {
        // SAFETY: NULL means "no error object wanted".
        let status = unsafe { report(ptr::null_mut(), || panic!("again")) };
        assert_eq!(status, pr_status::PR_ERR_PANIC);
        assert_eq!(guard(7, || panic!("value")), 7);
    }

    #[test]
    fn a_nul_inside_a_message_does_not_cut_it_short() {
        let text = c_string("before\0after".to_string());
        assert_eq!(text.to_str().unwrap(), "before\u{fffd}after");
    }
}
