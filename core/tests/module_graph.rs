//! The core's modules depend on each other without cycles: among the
//! top-level modules of `src/` (`engine`, `state`, `provider`, …) and among
//! the mechanisms of `resilience` (`breaker`, `retry`, `cache`, …). A cycle
//! makes every module on it depend on all the others, so none can be read,
//! tested or changed alone.
//!
//! The test reads the sources and collects every `crate::…` path (in `use`
//! statements, in code, and in attribute strings such as
//! `#[serde(with = "crate::duration::serde_secs")]`), plus `super::…` paths
//! inside `resilience`. Comments are ignored, so doc links do not count.
//! Test-only code (`#[cfg(test)]` modules, inline or in their own file) is
//! ignored too: a test may use whatever it needs to build its fixtures
//! (`state::redis`'s tests build a whole `Client`), which is not a
//! dependency of the module itself. Names re-exported at the crate root
//! (`crate::Error`) count for the module that defines them.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Module → module it uses → one file that shows the use.
type Graph = BTreeMap<String, BTreeMap<String, String>>;

#[test]
fn top_level_modules_have_no_cycle() {
    let graph = graph(|module| module.first().cloned());
    assert!(graph.contains_key("engine") && graph.contains_key("state"));
    if let Some(cycle) = find_cycle(&graph) {
        panic!(
            "import cycle among the core's modules:\n{}",
            describe(&graph, &cycle)
        );
    }
}

#[test]
fn resilience_mechanisms_have_no_cycle() {
    let graph = graph(|module| match module {
        [top, mechanism, ..] if top == "resilience" => Some(mechanism.clone()),
        _ => None,
    });
    assert!(graph.contains_key("retry") && graph.contains_key("hedge"));
    if let Some(cycle) = find_cycle(&graph) {
        panic!("import cycle in resilience:\n{}", describe(&graph, &cycle));
    }
}

/// The finder itself finds a cycle, and paths in nested `use` groups.
#[test]
fn a_cycle_is_found_and_use_groups_are_read() {
    let mut graph = Graph::new();
    for (from, to) in [("a", "b"), ("b", "c"), ("c", "a"), ("c", "d")] {
        graph
            .entry(from.into())
            .or_default()
            .insert(to.into(), "x.rs".into());
    }
    assert_eq!(
        find_cycle(&graph),
        Some(vec!["a".into(), "b".into(), "c".into()])
    );
    graph.get_mut("c").map(|uses| uses.remove("a"));
    assert_eq!(find_cycle(&graph), None);

    let code = code_of(
        "use crate::{a::{b, c::D}, e};\n// crate::f in a comment\nlet x = \"crate::g\";\n\
         #[cfg(test)]\nmod tests { use crate::h; fn f() { let _ = \"}\"; } }\nuse super::super::i;",
    );
    let paths: Vec<String> = references(&code, &["x".into(), "y".into()])
        .into_iter()
        .map(|path| path.join("::"))
        .collect();
    assert_eq!(paths, ["a::b", "a::c::D", "e", "g", "i"]);
}

/// The dependency graph of the modules `node` names (`None`: not a node):
/// every file's module path (`["resilience", "retry", "backoff"]`) and the
/// absolute path of each reference are mapped through it.
fn graph(node: impl Fn(&[String]) -> Option<String>) -> Graph {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let aliases = root_aliases(&src);
    let mut graph = Graph::new();
    for file in rust_files(&src) {
        let relative = file.strip_prefix(&src).unwrap().to_path_buf();
        let module = module_path(&relative);
        let Some(from) = node(&module) else { continue };
        let code = code_of(&std::fs::read_to_string(&file).unwrap());
        if code.trim().is_empty() {
            continue; // a test-only file, declared under `#[cfg(test)]`
        }
        let uses = graph.entry(from.clone()).or_default();
        for mut path in references(&code, &module) {
            if let Some(target) = path.first().and_then(|name| aliases.get(name)) {
                path.insert(0, target.clone());
            }
            if let Some(to) = node(&path).filter(|to| *to != from) {
                uses.entry(to)
                    .or_insert_with(|| relative.display().to_string());
            }
        }
    }
    // Paths that name no module (a type at the root seen through an inline
    // module's `super::`) are not edges.
    let modules: BTreeSet<String> = graph.keys().cloned().collect();
    for uses in graph.values_mut() {
        uses.retain(|to, _| modules.contains(to));
    }
    graph
}

/// Every `.rs` file under `dir` but `lib.rs`, and not test-only files.
fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let test_only = test_only_files(dir);
    let mut files = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|ext| ext == "rs")
                && !path.ends_with("lib.rs")
                && !test_only.contains(&path)
            {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

/// Files of modules declared as `#[cfg(test)] mod name;`.
fn test_only_files(src: &Path) -> BTreeSet<PathBuf> {
    let mut files = BTreeSet::new();
    let mut pending = vec![src.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path);
                continue;
            }
            let Ok(text) = std::fs::read_to_string(&path) else {
                continue;
            };
            let base = match path.file_stem().and_then(|s| s.to_str()) {
                Some("mod" | "lib") => dir.clone(),
                Some(stem) => dir.join(stem),
                None => continue,
            };
            let mut rest = text.as_str();
            while let Some(at) = rest.find("#[cfg(test)]") {
                rest = &rest[at + "#[cfg(test)]".len()..];
                let item = rest.trim_start();
                if let Some(name) = item
                    .strip_prefix("mod ")
                    .and_then(|tail| tail.split_once(';'))
                    .map(|(name, _)| name.trim())
                    .filter(|name| name.chars().all(|c| c.is_alphanumeric() || c == '_'))
                {
                    files.insert(base.join(format!("{name}.rs")));
                    files.insert(base.join(name).join("mod.rs"));
                }
            }
        }
    }
    files
}

/// The module path of a file relative to `src/`.
fn module_path(relative: &Path) -> Vec<String> {
    let mut path: Vec<String> = relative
        .with_extension("")
        .iter()
        .map(|part| part.to_string_lossy().into_owned())
        .collect();
    if path.last().is_some_and(|last| last == "mod") {
        path.pop();
    }
    path
}

/// Names the crate root re-exports (`pub use error::{Error, Result};`), with
/// the module that defines each.
fn root_aliases(src: &Path) -> BTreeMap<String, String> {
    let code = code_of(&std::fs::read_to_string(src.join("lib.rs")).unwrap());
    let mut aliases = BTreeMap::new();
    for statement in code.split(';') {
        let Some(tail) = statement.trim().strip_prefix("pub use ") else {
            continue;
        };
        for path in expand(&mut Tokens::new(tail), Vec::new()) {
            if let (Some(module), Some(name)) = (path.first(), path.last()) {
                aliases.insert(name.clone(), module.clone());
            }
        }
    }
    aliases
}

/// The absolute paths a file in `module` refers to: `crate::…`, and
/// `super::…` resolved against `module`.
fn references(code: &str, module: &[String]) -> Vec<Vec<String>> {
    let mut paths = Vec::new();
    let bytes = code.as_bytes();
    let mut at = 0;
    while at < code.len() {
        let rest = &code[at..];
        let starts_word = at == 0 || !is_ident(char::from(bytes[at - 1]));
        let found = if !starts_word {
            None
        } else if let Some(tail) = rest.strip_prefix("crate::") {
            Some((Vec::new(), tail))
        } else if rest.starts_with("super::") {
            let mut base = module.to_vec();
            let mut tail = rest;
            while let Some(next) = tail.strip_prefix("super::") {
                base.pop();
                tail = next;
            }
            Some((base, tail))
        } else {
            None
        };
        match found {
            Some((base, tail)) => {
                let mut tokens = Tokens::new(tail);
                paths.extend(expand(&mut tokens, base));
                at = code.len() - tokens.rest.len();
            }
            None => at += rest.chars().next().map_or(1, char::len_utf8),
        }
    }
    paths
}

/// A path after its first `::`, with `{…}` groups expanded.
fn expand(tokens: &mut Tokens, mut prefix: Vec<String>) -> Vec<Vec<String>> {
    loop {
        if tokens.eat("{") {
            let mut paths = Vec::new();
            loop {
                if tokens.eat("}") {
                    return paths;
                }
                paths.extend(expand(tokens, prefix.clone()));
                if !tokens.eat(",") && !tokens.peek("}") {
                    return paths;
                }
            }
        }
        match tokens.ident() {
            Some(name) if name != "self" => prefix.push(name),
            Some(_) => {}
            None => break,
        }
        if !tokens.eat("::") {
            break;
        }
    }
    if prefix.is_empty() {
        Vec::new()
    } else {
        vec![prefix]
    }
}

/// A cursor over path tokens, skipping whitespace.
struct Tokens<'a> {
    rest: &'a str,
}

impl<'a> Tokens<'a> {
    fn new(rest: &'a str) -> Self {
        Self { rest }
    }

    fn peek(&mut self, token: &str) -> bool {
        self.rest = self.rest.trim_start();
        self.rest.starts_with(token)
    }

    fn eat(&mut self, token: &str) -> bool {
        let found = self.peek(token);
        if found {
            self.rest = &self.rest[token.len()..];
        }
        found
    }

    fn ident(&mut self) -> Option<String> {
        self.rest = self.rest.trim_start();
        let end = self
            .rest
            .find(|c: char| !is_ident(c))
            .unwrap_or(self.rest.len());
        let name = &self.rest[..end];
        if name.is_empty() || name.starts_with(|c: char| c.is_ascii_digit()) {
            return None;
        }
        self.rest = &self.rest[end..];
        Some(name.to_string())
    }
}

fn is_ident(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// The source without comments and without `#[cfg(test)]` modules; string
/// literals are kept (attribute strings name paths).
fn code_of(source: &str) -> String {
    let (mut code, shape) = lex(source);
    let pattern: Vec<char> = "#[cfg(test)]".chars().collect();
    let mut i = 0;
    while i < shape.len() {
        if !shape[i..].starts_with(&pattern) {
            i += 1;
            continue;
        }
        let mut end = i + pattern.len();
        while end < shape.len() && shape[end].is_whitespace() {
            end += 1;
        }
        if shape[end..].starts_with(&['m', 'o', 'd', ' ']) {
            // To the end of the module: its `;` (a file) or its closing `}`.
            let mut depth = 0usize;
            while end < shape.len() {
                match shape[end] {
                    ';' if depth == 0 => break,
                    '{' => depth += 1,
                    '}' if depth == 1 => break,
                    '}' => depth = depth.saturating_sub(1),
                    _ => {}
                }
                end += 1;
            }
            let end = end.min(shape.len() - 1);
            code[i..=end].fill(' ');
        }
        i = end + 1;
    }
    code.into_iter().collect()
}

/// Two views of `source`, char for char: comments blanked in both; string
/// and char literals kept in the first and blanked in the second (so that
/// braces in strings do not count).
fn lex(source: &str) -> (Vec<char>, Vec<char>) {
    let chars: Vec<char> = source.chars().collect();
    let mut code = chars.clone();
    let mut shape = chars.clone();
    let mut i = 0;
    let blank = |view: &mut Vec<char>, from: usize, to: usize| {
        for c in &mut view[from..to] {
            if *c != '\n' {
                *c = ' ';
            }
        }
    };
    while i < chars.len() {
        let next = chars.get(i + 1).copied();
        let previous_is_ident = i > 0 && is_ident(chars[i - 1]);
        if chars[i] == '/' && next == Some('/') {
            let end = (i..chars.len())
                .find(|&j| chars[j] == '\n')
                .unwrap_or(chars.len());
            blank(&mut code, i, end);
            blank(&mut shape, i, end);
            i = end;
        } else if chars[i] == '/' && next == Some('*') {
            let (mut depth, mut j) = (1, i + 2);
            while j < chars.len() && depth > 0 {
                if chars[j] == '/' && chars.get(j + 1) == Some(&'*') {
                    depth += 1;
                    j += 1;
                } else if chars[j] == '*' && chars.get(j + 1) == Some(&'/') {
                    depth -= 1;
                    j += 1;
                }
                j += 1;
            }
            blank(&mut code, i, j);
            blank(&mut shape, i, j);
            i = j;
        } else if chars[i] == 'r'
            && !previous_is_ident
            && matches!(next, Some('"' | '#'))
            && chars[i + 1..].iter().find(|c| **c != '#') == Some(&'"')
        {
            let hashes = chars[i + 1..].iter().take_while(|c| **c == '#').count();
            let open = i + 1 + hashes;
            let close: Vec<char> = std::iter::once('"')
                .chain(std::iter::repeat_n('#', hashes))
                .collect();
            let mut j = open + 1;
            while j < chars.len() && !chars[j..].starts_with(&close) {
                j += 1;
            }
            let end = (j + close.len()).min(chars.len());
            blank(&mut shape, open + 1, j);
            i = end;
        } else if chars[i] == '"' {
            let mut j = i + 1;
            while j < chars.len() && chars[j] != '"' {
                j += if chars[j] == '\\' { 2 } else { 1 };
            }
            blank(&mut shape, i + 1, j.min(chars.len()));
            i = j + 1;
        } else if chars[i] == '\'' && !previous_is_ident {
            // A char literal ('x', '\n', '\u{7f}'), not a lifetime ('a).
            let end = if next == Some('\\') {
                (i + 2..chars.len()).find(|&j| chars[j] == '\'')
            } else if chars.get(i + 2) == Some(&'\'') {
                Some(i + 2)
            } else {
                None
            };
            match end {
                Some(end) => {
                    blank(&mut shape, i + 1, end);
                    i = end + 1;
                }
                None => i += 1,
            }
        } else {
            i += 1;
        }
    }
    (code, shape)
}

/// A cycle of `graph`, its nodes in order, or `None`.
fn find_cycle(graph: &Graph) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        graph: &Graph,
        done: &mut BTreeSet<String>,
        path: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = path.iter().position(|n| n == node) {
            return Some(path[at..].to_vec());
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_string());
        for next in graph.get(node).into_iter().flat_map(BTreeMap::keys) {
            if let Some(cycle) = visit(next, graph, done, path) {
                return Some(cycle);
            }
        }
        path.pop();
        done.insert(node.to_string());
        None
    }
    let mut done = BTreeSet::new();
    graph
        .keys()
        .find_map(|node| visit(node, graph, &mut done, &mut Vec::new()))
}

/// `a → b (in a.rs)` for each edge of `cycle`.
fn describe(graph: &Graph, cycle: &[String]) -> String {
    cycle
        .iter()
        .zip(cycle.iter().cycle().skip(1))
        .map(|(from, to)| format!("  {from} → {to} (in {})", graph[from][to]))
        .collect::<Vec<_>>()
        .join("\n")
}
