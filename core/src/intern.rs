//! Interned text: one `&'static str` per distinct value, for the names of
//! providers declared at run time (configured custom providers).
//!
//! Provider ids and key names are `&'static str` throughout the pipeline (in
//! every trail entry, stats key and state-store call), which keeps the hot
//! path free of reference counting. A configured provider's names are
//! interned once per distinct text, so building many clients from the same
//! configuration allocates them once, not once per build. The set only
//! grows with distinct names in the configurations a process loads: a
//! handful of short strings. Ten lines here rather than a dependency.

use std::collections::HashSet;
use std::sync::OnceLock;

use parking_lot::Mutex;

/// The one `&'static str` equal to `text`.
pub(crate) fn intern(text: &str) -> &'static str {
    static SET: OnceLock<Mutex<HashSet<&'static str>>> = OnceLock::new();
    let mut set = SET.get_or_init(Default::default).lock();
    if let Some(found) = set.get(text) {
        return found;
    }
    let leaked: &'static str = Box::leak(text.to_owned().into_boxed_str());
    set.insert(leaked);
    leaked
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_text_is_stored_once() {
        let a = intern(&String::from("acme-weather"));
        let b = intern(&String::from("acme-weather"));
        assert!(std::ptr::eq(a, b));
        assert_eq!(a, "acme-weather");
        assert!(!std::ptr::eq(a, intern("acme-news")));
    }
}
