//! The shape of the source tree as DESIGN §7 draws it, checked on the source itself: the
//! layers (the folders `core`, `adapters` and `flow`, then the front: `cli` and `demo`; the
//! simulator apart) only use what is below them, no adapter imports another, nothing but
//! the command line uses `cli`, the task lifecycle reaches GitHub only through its seam, and
//! no two sibling modules anywhere import each other in a circle. A change that breaks
//! the layering fails here, naming the import.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// A module path from the crate root, e.g. `["flow", "run"]`.
type ModPath = Vec<String>;

/// Every module of `src/` (one per file; `mod.rs` and `lib.rs` name their folder) and the
/// text of its file with comments removed.
fn modules() -> BTreeMap<ModPath, String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    walk(&root, &mut files);
    files
        .into_iter()
        .filter(|p| p.file_name().is_some_and(|n| n != "main.rs"))
        .map(|p| {
            let rel = p.strip_prefix(&root).unwrap().with_extension("");
            let mut path: ModPath = rel
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect();
            if path.last().is_some_and(|l| l == "mod" || l == "lib") {
                path.pop();
            }
            let text = std::fs::read_to_string(&p).unwrap();
            (path, strip_comments(&text))
        })
        .collect()
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            walk(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The text without `//` comments (doc links are not dependencies) and string literals.
fn strip_comments(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for line in text.lines() {
        let mut in_string = false;
        let mut prev = '\0';
        let mut kept = String::new();
        for (i, c) in line.char_indices() {
            if !in_string && c == '/' && line[i..].starts_with("//") {
                break;
            }
            if c == '"' && prev != '\\' {
                in_string = !in_string;
            } else if !in_string {
                kept.push(c);
            }
            prev = c;
        }
        out.push_str(&kept);
        out.push('\n');
    }
    out
}

/// The paths a file names that start with `crate`, `super` or `self`, `use` groups
/// (`use crate::{a::b, c}`) expanded.
fn named_paths(text: &str) -> Vec<Vec<String>> {
    let mut paths = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find("use ") {
        let before_ok = at == 0 || !rest.as_bytes()[at - 1].is_ascii_alphanumeric();
        let tail = &rest[at + 4..];
        let end = tail.find(';').unwrap_or(tail.len());
        if before_ok {
            expand(&without_aliases(&tail[..end]), &mut Vec::new(), &mut paths);
        }
        rest = &tail[end.min(tail.len())..];
    }
    // Paths used in place: `crate::x::y(...)`, `super::z::W`.
    let bytes = text.as_bytes();
    for head in ["crate::", "super::"] {
        let mut from = 0;
        while let Some(i) = text[from..].find(head) {
            let start = from + i;
            from = start + head.len();
            if start > 0 && (bytes[start - 1].is_ascii_alphanumeric() || bytes[start - 1] == b'_') {
                continue;
            }
            let path: String = text[start..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == ':')
                .collect();
            paths.push(
                path.split("::")
                    .filter(|s| !s.is_empty())
                    .map(str::to_string)
                    .collect(),
            );
        }
    }
    paths
        .into_iter()
        .filter(|p| {
            p.first()
                .is_some_and(|h| h == "crate" || h == "super" || h == "self")
        })
        .collect()
}

/// A `use` declaration without whitespace and without its `as` renames (`a::{b as c, d}`
/// becomes `a::{b,d}`).
fn without_aliases(decl: &str) -> String {
    let mut out = String::new();
    let mut words = decl.split_whitespace();
    while let Some(word) = words.next() {
        if word == "as" {
            // The new name goes; what follows it (`,` or `}`) stays.
            let alias = words.next().unwrap_or("");
            out.extend(
                alias
                    .chars()
                    .skip_while(|c| c.is_alphanumeric() || *c == '_'),
            );
        } else {
            out.push_str(word);
        }
    }
    out
}

/// Expand one `use` declaration (whitespace removed) into its paths.
fn expand(decl: &str, prefix: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
    if let Some(open) = decl.find('{') {
        let head: Vec<String> = decl[..open]
            .split("::")
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect();
        let inner = &decl[open + 1..decl.rfind('}').unwrap_or(decl.len())];
        let mut depth = 0;
        let mut start = 0;
        let mut parts = Vec::new();
        for (i, c) in inner.char_indices() {
            match c {
                '{' => depth += 1,
                '}' => depth -= 1,
                ',' if depth == 0 => {
                    parts.push(&inner[start..i]);
                    start = i + 1;
                }
                _ => {}
            }
        }
        parts.push(&inner[start..]);
        let len = prefix.len();
        prefix.extend(head);
        for part in parts.into_iter().filter(|p| !p.is_empty()) {
            expand(part, prefix, out);
        }
        prefix.truncate(len);
    } else {
        let mut path = prefix.clone();
        path.extend(
            decl.split("::")
                .filter(|s| !s.is_empty())
                .map(str::to_string),
        );
        out.push(path);
    }
}

/// The module a path names: the longest prefix that is a module (items and re-exports
/// resolve to the module that holds them).
fn resolve(from: &ModPath, path: &[String], modules: &BTreeMap<ModPath, String>) -> ModPath {
    let mut base = from.clone();
    let mut rest = path;
    if rest.first().is_some_and(|h| h == "crate") {
        base.clear();
        rest = &rest[1..];
    } else {
        while let Some(h) = rest.first() {
            match h.as_str() {
                "super" => {
                    base.pop();
                }
                "self" => {}
                _ => break,
            }
            rest = &rest[1..];
        }
    }
    for segment in rest {
        base.push(segment.clone());
        if !modules.contains_key(&base) {
            base.pop();
            break;
        }
    }
    base
}

/// Every import between two sibling modules: (parent, from child, to child) → one file and
/// path that makes it, for the message.
type Edges = BTreeMap<(ModPath, String, String), String>;

/// Every import between two sibling modules of `modules`.
fn sibling_edges(modules: &BTreeMap<ModPath, String>) -> Edges {
    let mut edges = BTreeMap::new();
    for (from, text) in modules {
        for path in named_paths(text) {
            let to = resolve(from, &path, modules);
            let common = from.iter().zip(&to).take_while(|(a, b)| a == b).count();
            if common < from.len() && common < to.len() {
                let key = (
                    from[..common].to_vec(),
                    from[common].clone(),
                    to[common].clone(),
                );
                edges
                    .entry(key)
                    .or_insert_with(|| format!("{} uses {}", from.join("::"), path.join("::")));
            }
        }
    }
    edges
}

/// The import cycles among sibling modules, each told as the imports that make it.
fn cycles(edges: &Edges) -> Vec<String> {
    let mut graphs: BTreeMap<ModPath, BTreeMap<String, BTreeSet<String>>> = BTreeMap::new();
    for (parent, from, to) in edges.keys() {
        graphs
            .entry(parent.clone())
            .or_default()
            .entry(from.clone())
            .or_default()
            .insert(to.clone());
    }
    let mut found = Vec::new();
    for (parent, graph) in &graphs {
        for start in graph.keys() {
            // A way back to `start` through the graph is a cycle through it.
            let mut stack = vec![vec![start.clone()]];
            let mut seen = BTreeSet::new();
            while let Some(trail) = stack.pop() {
                let node = trail.last().unwrap();
                for next in graph.get(node).into_iter().flatten() {
                    if next == start {
                        let mut hops = trail.clone();
                        hops.push(start.clone());
                        let how: Vec<String> = hops
                            .windows(2)
                            .map(|w| edges[&(parent.clone(), w[0].clone(), w[1].clone())].clone())
                            .collect();
                        let place = if parent.is_empty() {
                            "the crate".to_string()
                        } else {
                            parent.join("::")
                        };
                        // One report per cycle, whichever member it starts from.
                        let mut members = trail.clone();
                        members.sort();
                        found.push((members, format!("in {place}: {}", how.join("; "))));
                    } else if seen.insert(next.clone()) {
                        let mut longer = trail.clone();
                        longer.push(next.clone());
                        stack.push(longer);
                    }
                }
            }
        }
    }
    found.sort();
    found.dedup_by(|a, b| a.0 == b.0);
    found.into_iter().map(|(_, how)| how).collect()
}

#[test]
fn no_two_sibling_modules_import_each_other_in_a_circle() {
    let found = cycles(&sibling_edges(&modules()));
    assert!(
        found.is_empty(),
        "import cycles between sibling modules:\n{}",
        found.join("\n")
    );
}

/// The layers of DESIGN §7 as the top-level folders of `src/`, bottom first; a layer may
/// use itself and the layers below it. The command line (`cli`) and the offline demo make
/// the front.
const LAYERS: &[&[&str]] = &[&["core"], &["adapters"], &["flow"], &["cli", "demo"]];

/// The imports between top-level modules (the layers) that go against their order, and any
/// import of the simulator's other than GitHub's wire types (`adapters::github::types`).
fn layer_crossings(edges: &Edges, modules: &BTreeMap<ModPath, String>) -> Vec<String> {
    let layer_of = |m: &str| LAYERS.iter().position(|ms| ms.contains(&m));
    let mut wrong = Vec::new();
    for ((parent, from, to), how) in edges {
        if !parent.is_empty() {
            continue;
        }
        let ok = match (from.as_str(), to.as_str()) {
            // Checked below, import by import.
            ("sim", "adapters") => true,
            ("sim", _) => false,
            (from, "sim") => from == "cli" || from == "demo",
            (from, to) => match (layer_of(from), layer_of(to)) {
                (Some(a), Some(b)) => b <= a,
                _ => false,
            },
        };
        if !ok {
            wrong.push(how.clone());
        }
    }
    // The simulator stands apart: it serves GitHub's wire types, nothing else of the gate.
    for (from, text) in modules {
        if from.first().is_none_or(|m| m != "sim") {
            continue;
        }
        for path in named_paths(text) {
            let to = resolve(from, &path, modules);
            if to.first().is_some_and(|m| m == "adapters")
                && to.get(1..3) != Some(&["github".to_string(), "types".to_string()][..])
            {
                wrong.push(format!("{} uses {}", from.join("::"), path.join("::")));
            }
        }
    }
    // A `use` is also found as a path in place: one line each.
    wrong.sort();
    wrong.dedup();
    wrong
}

#[test]
fn each_layer_uses_only_itself_and_the_layers_below() {
    let modules = modules();
    let wrong = layer_crossings(&sibling_edges(&modules), &modules);
    assert!(
        wrong.is_empty(),
        "imports against the layers:\n{}",
        wrong.join("\n")
    );
}

#[test]
fn the_source_tree_is_the_layers() {
    let modules = modules();
    let top: BTreeSet<&str> = modules
        .keys()
        .filter(|m| m.len() == 1)
        .map(|m| m[0].as_str())
        .collect();
    let mut expected: BTreeSet<&str> = LAYERS.iter().flat_map(|ms| ms.iter().copied()).collect();
    expected.insert("sim");
    assert_eq!(
        top, expected,
        "the top of src/ holds the layers' folders and nothing else"
    );
}

/// The imports from one adapter into another: each owns one outside thing and knows
/// nothing of the others (DESIGN §7); what one needs of another comes in as a value.
fn adapters_importing_adapters(edges: &Edges) -> Vec<String> {
    edges
        .iter()
        .filter(|((parent, _, _), _)| parent.len() == 1 && parent[0] == "adapters")
        .map(|(_, how)| how.clone())
        .collect()
}

#[test]
fn no_adapter_imports_another() {
    let wrong = adapters_importing_adapters(&sibling_edges(&modules()));
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// The paths in `text` that name GitHub's HTTP client (`adapters::github::Client`).
fn names_the_http_client(text: &str) -> Vec<String> {
    named_paths(text)
        .into_iter()
        .filter(|p| p.ends_with(&["github".to_string(), "Client".to_string()]))
        .map(|p| p.join("::"))
        .collect()
}

/// The task lifecycle's steps (budget, admission, start, the repair round's create) reach
/// GitHub only through their seam, `flow::TaskApi`, so that a flow test can script them:
/// none of them names the HTTP client.
#[test]
fn the_task_lifecycle_reaches_github_only_through_its_seam() {
    let modules = modules();
    let lifecycle = [
        "flow::budget",
        "flow::admission",
        "flow::admission::counter",
        "flow::start",
        "flow::round",
    ];
    let mut wrong = Vec::new();
    for name in lifecycle {
        let path: ModPath = name.split("::").map(str::to_string).collect();
        let text = modules
            .get(&path)
            .unwrap_or_else(|| panic!("{name} is no module any more: update this list"));
        wrong.extend(
            names_the_http_client(text)
                .into_iter()
                .map(|p| format!("{name} names {p}")),
        );
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    // The check sees the client however it is imported.
    for text in [
        "use crate::adapters::github::{ApiError, Client};",
        "fn f(c: &crate::adapters::github::Client) {}",
    ] {
        assert_eq!(names_the_http_client(text).len(), 1, "{text}");
    }
}

#[test]
fn nothing_below_the_command_line_uses_it() {
    let wrong: Vec<String> = sibling_edges(&modules())
        .into_iter()
        .filter(|((parent, from, to), _)| parent.is_empty() && to == "cli" && from != "cli")
        .map(|(_, how)| how)
        .collect();
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn the_checker_sees_an_import_cycle_and_a_layer_crossing() {
    let m = |s: &str| s.split("::").map(str::to_string).collect::<ModPath>();
    let tree = |files: &[(&str, &str)]| -> BTreeMap<ModPath, String> {
        files
            .iter()
            .map(|(p, t)| (m(p), strip_comments(t)))
            .collect()
    };
    // A straight tree: no cycle, no crossing.
    let straight = tree(&[
        ("flow", ""),
        (
            "flow::a",
            "use super::b::X;\nfn f() { crate::core::scope::decide(); }",
        ),
        ("flow::b", "use crate::flow::c;"),
        (
            "flow::c",
            "// crate::flow::a::Y is only named in a comment\nlet s = \"crate::flow::a\";",
        ),
        ("core", ""),
        ("core::scope", ""),
        ("sim", "use crate::adapters::github::types::Task;"),
    ]);
    let edges = sibling_edges(&straight);
    assert!(cycles(&edges).is_empty(), "{:?}", cycles(&edges));
    assert!(layer_crossings(&edges, &straight).is_empty());
    // a -> b -> c -> a, through a `use` group, and core using the flow.
    let knotted = tree(&[
        ("flow", ""),
        ("flow::a", "use super::b::X;"),
        (
            "flow::b",
            "use crate::flow::{c::Z as Zed, d};\nuse std::assert as _;",
        ),
        ("flow::c", "fn g() { super::a::run() }"),
        ("flow::d", ""),
        ("core", "use crate::flow::a;"),
        ("adapters", ""),
        ("adapters::git", ""),
        ("sim", "use crate::adapters::git;"),
    ]);
    let edges = sibling_edges(&knotted);
    assert_eq!(
        cycles(&edges),
        vec![
            "in flow: flow::a uses super::b::X; flow::b uses crate::flow::c::Z; flow::c uses super::a::run"
        ]
    );
    assert_eq!(
        layer_crossings(&edges, &knotted),
        vec!["core uses crate::flow::a", "sim uses crate::adapters::git"]
    );
    // GitHub's client is not a wire type: the simulator may not use it either.
    let client = tree(&[
        ("adapters", ""),
        ("adapters::github", ""),
        ("adapters::github::types", ""),
        (
            "sim",
            "use crate::adapters::github::types::Task;\nuse crate::adapters::github::Client;",
        ),
    ]);
    assert_eq!(
        layer_crossings(&sibling_edges(&client), &client),
        vec!["sim uses crate::adapters::github::Client"]
    );
    // One adapter reaching into another; a module inside one adapter using its sibling
    // there is that adapter's own business.
    let adapters = tree(&[
        ("adapters", ""),
        ("adapters::audit", "use crate::adapters::actions::Masker;"),
        ("adapters::actions", ""),
        ("adapters::checks", ""),
        ("adapters::checks::container", "use super::docker::Engine;"),
        ("adapters::checks::docker", ""),
    ]);
    assert_eq!(
        adapters_importing_adapters(&sibling_edges(&adapters)),
        vec!["adapters::audit uses crate::adapters::actions::Masker"]
    );
}
