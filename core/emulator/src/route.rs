//! Path patterns and the route table.

use std::fmt;
use std::sync::Arc;

use hyper::Method;

use crate::log::RecordedRequest;
use crate::reply::Reply;

/// A path pattern: an exact path, or a prefix when it ends in `*`.
///
/// `/v1/forecast` matches only that path; `/open-meteo/*` matches every path that
/// starts with `/open-meteo/`; `*` alone matches every path. Query strings never
/// take part in matching.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum PathPattern {
    Exact(String),
    Prefix(String),
}

impl PathPattern {
    pub(crate) fn parse(pattern: &str) -> Self {
        match pattern.strip_suffix('*') {
            Some(prefix) => Self::Prefix(prefix.to_owned()),
            None => Self::Exact(pattern.to_owned()),
        }
    }

    pub(crate) fn matches(&self, path: &str) -> bool {
        match self {
            Self::Exact(exact) => path == exact,
            Self::Prefix(prefix) => path.starts_with(prefix.as_str()),
        }
    }

    /// Orders matching patterns: an exact path beats any prefix, a longer prefix
    /// beats a shorter one.
    fn specificity(&self) -> (bool, usize) {
        match self {
            Self::Exact(exact) => (true, exact.len()),
            Self::Prefix(prefix) => (false, prefix.len()),
        }
    }
}

/// Computes a reply from the request, for routes whose answer depends on it.
pub(crate) type ReplyFn = Arc<dyn Fn(&RecordedRequest) -> Reply + Send + Sync>;

/// How a route answers.
#[derive(Clone)]
pub(crate) enum Handler {
    Fixed(Arc<Reply>),
    Computed(ReplyFn),
}

#[derive(Clone)]
pub(crate) struct Route {
    method: Method,
    pattern: PathPattern,
    handler: Handler,
}

/// A set of routes to [`mount`](crate::Emulator::mount) under a path prefix, so one
/// emulator can serve several providers side by side.
///
/// ```
/// use polyrelay_emulator::{Method, Reply, Routes};
///
/// let open_meteo = Routes::new()
///     .route(Method::GET, "/v1/forecast", Reply::json(&serde_json::json!({"current": {}})))
///     .route(Method::GET, "/v1/*", Reply::new(404));
/// # let _ = open_meteo;
/// ```
#[derive(Clone, Default)]
pub struct Routes {
    routes: Vec<Route>,
}

impl Routes {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Answers `method` requests to `path` (exact, or a prefix ending in `*`) with `reply`.
    #[must_use]
    pub fn route(mut self, method: Method, path: &str, reply: Reply) -> Self {
        insert(
            &mut self.routes,
            method,
            PathPattern::parse(path),
            Handler::Fixed(Arc::new(reply)),
        );
        self
    }

    /// Answers `method` requests to `path` with a reply computed from each request,
    /// e.g. to answer by query parameter.
    #[must_use]
    pub fn route_with<F>(mut self, method: Method, path: &str, reply: F) -> Self
    where
        F: Fn(&RecordedRequest) -> Reply + Send + Sync + 'static,
    {
        insert(
            &mut self.routes,
            method,
            PathPattern::parse(path),
            Handler::Computed(Arc::new(reply)),
        );
        self
    }

    /// Moves every route of this set under `prefix` into `table`.
    pub(crate) fn mount_into(self, prefix: &str, table: &mut Vec<Route>) {
        let prefix = prefix.trim_end_matches('/');
        for route in self.routes {
            let pattern = match route.pattern {
                PathPattern::Exact(path) => PathPattern::Exact(join(prefix, &path)),
                PathPattern::Prefix(path) => PathPattern::Prefix(join(prefix, &path)),
            };
            insert(table, route.method, pattern, route.handler);
        }
    }
}

impl fmt::Debug for Routes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.routes.iter().map(|r| (&r.method, &r.pattern)))
            .finish()
    }
}

fn join(prefix: &str, path: &str) -> String {
    if path.starts_with('/') {
        format!("{prefix}{path}")
    } else {
        format!("{prefix}/{path}")
    }
}

/// Adds a route, replacing the one with the same method and pattern.
pub(crate) fn insert(
    table: &mut Vec<Route>,
    method: Method,
    pattern: PathPattern,
    handler: Handler,
) {
    match table
        .iter_mut()
        .find(|r| r.method == method && r.pattern == pattern)
    {
        Some(existing) => existing.handler = handler,
        None => table.push(Route {
            method,
            pattern,
            handler,
        }),
    }
}

/// What the route table says about a request.
pub(crate) enum Lookup {
    Found(Handler),
    /// The path is routed, but not for this method; carries the `Allow` header value.
    MethodNotAllowed(String),
    NotFound,
}

/// Finds the most specific route for `method` and `path`.
pub(crate) fn lookup(table: &[Route], method: &Method, path: &str) -> Lookup {
    let mut best: Option<&Route> = None;
    let mut path_routed = false;
    for route in table.iter().filter(|r| r.pattern.matches(path)) {
        path_routed = true;
        if route.method == *method
            && best.is_none_or(|b| route.pattern.specificity() > b.pattern.specificity())
        {
            best = Some(route);
        }
    }
    match best {
        Some(route) => Lookup::Found(route.handler.clone()),
        None if path_routed => {
            let mut allowed: Vec<&str> = table
                .iter()
                .filter(|r| r.pattern.matches(path))
                .map(|r| r.method.as_str())
                .collect();
            allowed.sort_unstable();
            allowed.dedup();
            Lookup::MethodNotAllowed(allowed.join(", "))
        }
        None => Lookup::NotFound,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixed(status: u16) -> Handler {
        Handler::Fixed(Arc::new(Reply::new(status)))
    }

    fn status_of(found: Lookup) -> u16 {
        match found {
            Lookup::Found(Handler::Fixed(reply)) => reply.status(),
            Lookup::Found(Handler::Computed(_)) => 0,
            Lookup::MethodNotAllowed(_) => 405,
            Lookup::NotFound => 404,
        }
    }

    #[test]
    fn patterns_match_exact_paths_and_star_prefixes() {
        assert!(PathPattern::parse("/a/b").matches("/a/b"));
        assert!(!PathPattern::parse("/a/b").matches("/a/b/c"));
        assert!(PathPattern::parse("/a/*").matches("/a/b/c"));
        assert!(!PathPattern::parse("/a/*").matches("/a"));
        assert!(PathPattern::parse("*").matches("/anything"));
    }

    #[test]
    fn exact_beats_prefix_and_longer_prefix_beats_shorter() {
        let mut table = Vec::new();
        insert(
            &mut table,
            Method::GET,
            PathPattern::parse("/a/*"),
            fixed(201),
        );
        insert(
            &mut table,
            Method::GET,
            PathPattern::parse("/a/b/*"),
            fixed(202),
        );
        insert(
            &mut table,
            Method::GET,
            PathPattern::parse("/a/b/c"),
            fixed(203),
        );
        assert_eq!(status_of(lookup(&table, &Method::GET, "/a/x")), 201);
        assert_eq!(status_of(lookup(&table, &Method::GET, "/a/b/x")), 202);
        assert_eq!(status_of(lookup(&table, &Method::GET, "/a/b/c")), 203);
        assert_eq!(status_of(lookup(&table, &Method::GET, "/b")), 404);
    }

    #[test]
    fn same_method_and_pattern_replaces_the_route() {
        let mut table = Vec::new();
        insert(
            &mut table,
            Method::GET,
            PathPattern::parse("/a"),
            fixed(201),
        );
        insert(
            &mut table,
            Method::GET,
            PathPattern::parse("/a"),
            fixed(202),
        );
        assert_eq!(table.len(), 1);
        assert_eq!(status_of(lookup(&table, &Method::GET, "/a")), 202);
    }

    #[test]
    fn wrong_method_lists_allowed_methods() {
        let mut table = Vec::new();
        insert(
            &mut table,
            Method::POST,
            PathPattern::parse("/a"),
            fixed(200),
        );
        insert(
            &mut table,
            Method::GET,
            PathPattern::parse("/a"),
            fixed(200),
        );
        match lookup(&table, &Method::DELETE, "/a") {
            Lookup::MethodNotAllowed(allow) => assert_eq!(allow, "GET, POST"),
            _ => panic!("expected 405"),
        }
    }

    #[test]
    fn mounting_prefixes_every_pattern() {
        let mut table = Vec::new();
        Routes::new()
            .route(Method::GET, "/v1/forecast", Reply::new(201))
            .route(Method::GET, "v1/*", Reply::new(202))
            .route(Method::GET, "*", Reply::new(203))
            .mount_into("/open-meteo/", &mut table);
        assert_eq!(
            status_of(lookup(&table, &Method::GET, "/open-meteo/v1/forecast")),
            201
        );
        assert_eq!(
            status_of(lookup(&table, &Method::GET, "/open-meteo/v1/other")),
            202
        );
        assert_eq!(
            status_of(lookup(&table, &Method::GET, "/open-meteo/x")),
            203
        );
        assert_eq!(status_of(lookup(&table, &Method::GET, "/open-meteox")), 404);
        assert_eq!(status_of(lookup(&table, &Method::GET, "/v1/forecast")), 404);
    }
}
