//! The code map's invariants (ARCHITECTURE.md), checked on the source:
//! no import cycles between a crate's modules, only `runner` spawns
//! processes in the core, the sidecar never depends on the core, the core
//! knows nothing of the UI, no source file grows past 500 lines without
//! saying why in its header, and the suites scripts/test runs at once name
//! no bottle in common. No engine needed.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(rust_files(&p));
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
    out.sort();
    out
}

/// The top-level module a file of `src` belongs to (`None` for the crate
/// root and binaries' roots).
fn module_of(src: &Path, file: &Path) -> Option<String> {
    let rel = file.strip_prefix(src).ok()?;
    let first = rel
        .components()
        .next()?
        .as_os_str()
        .to_string_lossy()
        .to_string();
    let name = first.trim_end_matches(".rs").to_string();
    (!["lib", "main", "bin"].contains(&name.as_str())).then_some(name)
}

/// The top-level modules `text` refers to through `crate::…`, including
/// grouped imports (`use crate::{a::b, c}`).
fn crate_refs(text: &str) -> BTreeSet<String> {
    let mut refs = BTreeSet::new();
    let mut rest = text;
    while let Some(i) = rest.find("crate::") {
        rest = &rest[i + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let mut depth = 1;
            let end = group
                .char_indices()
                .find(|(_, c)| {
                    match c {
                        '{' => depth += 1,
                        '}' => depth -= 1,
                        _ => {}
                    }
                    depth == 0
                })
                .map_or(group.len(), |(i, _)| i);
            let mut depth = 0;
            let mut item = String::new();
            for c in group[..end].chars().chain([',']) {
                match c {
                    '{' => depth += 1,
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        if let Some(head) = item.trim().split("::").next().filter(|h| !h.is_empty())
                        {
                            refs.insert(head.to_string());
                        }
                        item.clear();
                        continue;
                    }
                    _ => {}
                }
                item.push(c);
            }
        } else {
            let ident: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            if !ident.is_empty() {
                refs.insert(ident);
            }
        }
    }
    refs
}

/// Module → the modules it uses, for the crate whose sources are in `src`.
fn module_graph(src: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let files = rust_files(src);
    let modules: BTreeSet<String> = files.iter().filter_map(|f| module_of(src, f)).collect();
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for f in &files {
        let Some(m) = module_of(src, f) else { continue };
        let text = std::fs::read_to_string(f).unwrap();
        // Tests may reach anywhere, and comments link anywhere; the shape
        // is about the code itself.
        let code: String = text
            .split("#[cfg(test)]")
            .next()
            .unwrap_or("")
            .lines()
            .filter(|l| !l.trim_start().starts_with("//"))
            .collect::<Vec<_>>()
            .join("\n");
        let uses = graph.entry(m.clone()).or_default();
        for r in crate_refs(&code) {
            if r != m && modules.contains(&r) {
                uses.insert(r);
            }
        }
    }
    graph
}

/// A cycle in `graph`, if there is one, as the path around it.
fn find_cycle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        n: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(i) = path.iter().position(|p| p == n) {
            let mut cycle = path[i..].to_vec();
            cycle.push(n.to_string());
            return Some(cycle);
        }
        if done.contains(n) {
            return None;
        }
        path.push(n.to_string());
        for next in graph.get(n).into_iter().flatten() {
            if let Some(c) = visit(next, graph, path, done) {
                return Some(c);
            }
        }
        path.pop();
        done.insert(n.to_string());
        None
    }
    let mut done = BTreeSet::new();
    graph
        .keys()
        .find_map(|n| visit(n, graph, &mut Vec::new(), &mut done))
}

#[test]
fn no_crate_has_an_import_cycle_between_its_modules() {
    for krate in [
        "core/src",
        "src-tauri/src",
        "cli/src",
        "sidecar/src",
        "sidecar/policy/src",
        "testkit/src",
    ] {
        let graph = module_graph(&root().join(krate));
        assert!(graph.len() > 2, "{krate}: found no modules");
        if let Some(cycle) = find_cycle(&graph) {
            panic!("{krate}: import cycle {}", cycle.join(" → "));
        }
    }
}

#[test]
fn the_cycle_check_finds_a_cycle() {
    let mut g = BTreeMap::new();
    g.insert("a".to_string(), BTreeSet::from(["b".to_string()]));
    g.insert("b".to_string(), BTreeSet::from(["c".to_string()]));
    g.insert("c".to_string(), BTreeSet::from(["a".to_string()]));
    assert_eq!(find_cycle(&g).unwrap(), ["a", "b", "c", "a"]);
    g.get_mut("c").unwrap().clear();
    assert_eq!(find_cycle(&g), None);
    assert_eq!(
        crate_refs(
            "use crate::{backend::{self, Engine}, events::Event};\nlet x = crate::plan::f();"
        ),
        BTreeSet::from(["backend".into(), "events".into(), "plan".into()])
    );
}

#[test]
fn only_the_runner_spawns_processes_in_the_core_and_the_app() {
    let spawns = ["Command::new", "process::Command", "std::process::Stdio"];
    for krate in ["core/src", "src-tauri/src"] {
        let src = root().join(krate);
        for f in rust_files(&src) {
            let rel = f.strip_prefix(&src).unwrap().display().to_string();
            if rel == "runner.rs" {
                continue;
            }
            let text = std::fs::read_to_string(&f).unwrap();
            let code = text.split("#[cfg(test)]").next().unwrap_or("");
            for s in spawns {
                assert!(
                    !code.contains(s),
                    "{krate}/{rel} uses `{s}`: engine commands go through runner"
                );
            }
        }
    }
}

#[test]
fn the_sidecar_never_depends_on_the_core_and_the_core_knows_no_ui() {
    let deps = |toml: &str| std::fs::read_to_string(root().join(toml)).unwrap();
    assert!(!deps("sidecar/Cargo.toml").contains("bottlebar-core"));
    assert!(!deps("sidecar/policy/Cargo.toml").contains("bottlebar-core"));
    let core = deps("core/Cargo.toml");
    for ui in ["tauri", "clap", "indicatif", "anyhow"] {
        assert!(
            !core.contains(&format!("\n{ui}")),
            "core/Cargo.toml depends on {ui}"
        );
    }
}

/// The static builds (on a cold `scripts/test`'s critical path) compile the
/// test kit and what it depends on: never the suites, the core, the
/// WebDriver client or a TLS stack of the system's.
#[test]
fn the_static_test_kit_depends_on_no_suite_code_and_no_webdriver_client() {
    let toml = std::fs::read_to_string(root().join("testkit/Cargo.toml")).unwrap();
    for heavy in [
        "bottlebar-e2e",
        "bottlebar-core",
        "fantoccini",
        "openssl",
        "native-tls",
    ] {
        assert!(
            !toml.contains(heavy),
            "testkit/Cargo.toml depends on {heavy}"
        );
    }
    // Without its default features fantoccini brings no TLS stack (its
    // default is native-tls, that is OpenSSL) into any build.
    for toml in ["tests/Cargo.toml", "src-tauri/Cargo.toml"] {
        let text = std::fs::read_to_string(root().join(toml)).unwrap();
        let line = text
            .lines()
            .find(|l| l.starts_with("fantoccini"))
            .unwrap_or_else(|| panic!("{toml}: no fantoccini"));
        assert!(
            line.contains("default-features = false"),
            "{toml}: {line}: WebDriver is plain HTTP on loopback"
        );
    }
}

#[test]
fn no_source_file_passes_500_lines_without_saying_why() {
    let mut long = Vec::new();
    for dir in [
        "core/src",
        "sidecar/src",
        "sidecar/policy/src",
        "cli/src",
        "src-tauri/src",
        "testkit/src",
    ] {
        for f in rust_files(&root().join(dir)) {
            let text = std::fs::read_to_string(&f).unwrap();
            let header: String = text.lines().take_while(|l| l.starts_with("//!")).collect();
            if text.lines().count() > 500 && !header.contains("Longer than 500 lines because") {
                long.push(format!("{} ({} lines)", f.display(), text.lines().count()));
            }
        }
    }
    assert!(
        long.is_empty(),
        "split these, or say why in their header:\n{}",
        long.join("\n")
    );
}

/// The words of the bash array `name=(…)` in `script`.
fn bash_array(script: &str, name: &str) -> Vec<String> {
    let start = script
        .find(&format!("\n{name}=("))
        .unwrap_or_else(|| panic!("no array `{name}` in scripts/test"));
    let body = &script[start + name.len() + 3..];
    let body = &body[..body.find(')').expect("the array ends")];
    body.split_whitespace().map(String::from).collect()
}

/// The bottle names (`"e2e-…"` literals; one ending in `-` is a prefix the
/// test completes) in the Rust files under `path`.
fn bottle_names(path: &Path) -> BTreeSet<String> {
    let files = if path.is_dir() {
        rust_files(path)
    } else {
        vec![path.to_path_buf()]
    };
    let mut names = BTreeSet::new();
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        for (at, _) in text.match_indices("\"e2e-") {
            let rest = &text[at + 1..];
            let end = rest.find('"').unwrap_or(rest.len());
            let name = &rest[..end];
            if name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            {
                names.insert(name.to_string());
            }
        }
    }
    names
}

/// The pairs of `a` and `b` that are the same bottle, or a prefix one's
/// test completes into the other.
fn clashes(a: &BTreeSet<String>, b: &BTreeSet<String>) -> Vec<(String, String)> {
    let same = |x: &str, y: &str| x == y || (x.ends_with('-') && y.starts_with(x));
    let mut out = Vec::new();
    for x in a {
        for y in b {
            if same(x, y) || same(y, x) {
                out.push((x.clone(), y.clone()));
            }
        }
    }
    out
}

/// scripts/test runs the apple backend's suites beside the Docker-only ones,
/// on one Docker Engine where a bottle's containers are named after it: no
/// Docker-only suite may launch a bottle of the same name.
#[test]
fn no_docker_only_suite_names_a_bottle_the_apple_run_launches_meanwhile() {
    let script = std::fs::read_to_string(root().join("scripts/test")).unwrap();
    let both = bash_array(&script, "both_backends");
    let after = bash_array(&script, "after_apple");
    let mut apple_run = BTreeSet::new();
    let mut beside = BTreeSet::new();
    let mut found = BTreeSet::new();
    for dir in ["tests/tests", "src-tauri/tests"] {
        for e in std::fs::read_dir(root().join(dir)).unwrap().flatten() {
            let path = e.path();
            let stem = path.file_stem().unwrap().to_string_lossy().into_owned();
            if stem == "invariants" {
                continue; // this file: its names are examples
            }
            if both.contains(&stem) {
                apple_run.extend(bottle_names(&path));
            } else if !after.contains(&stem) {
                beside.extend(bottle_names(&path));
            }
            found.insert(stem);
        }
    }
    let missing: Vec<_> = both
        .iter()
        .chain(&after)
        .filter(|s| !found.contains(*s))
        .collect();
    assert!(
        missing.is_empty(),
        "scripts/test names suites that are not there: {missing:?}"
    );
    assert!(
        apple_run.len() > 10 && beside.len() > 10,
        "{apple_run:?} {beside:?}"
    );
    let clashes = clashes(&apple_run, &beside);
    assert!(
        clashes.is_empty(),
        "bottles named both by a suite in scripts/test's `both_backends` and by one run beside \
         it (apple run's, Docker-only's): {clashes:?}"
    );
}

#[test]
fn the_bottle_name_check_finds_a_clash() {
    let set = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<BTreeSet<_>>();
    assert_eq!(
        clashes(
            &set(&["e2e-a", "e2e-many-"]),
            &set(&["e2e-b", "e2e-many-07"])
        ),
        vec![("e2e-many-".to_string(), "e2e-many-07".to_string())]
    );
    assert_eq!(clashes(&set(&["e2e-a"]), &set(&["e2e-a"])).len(), 1);
    assert!(clashes(&set(&["e2e-a"]), &set(&["e2e-ab", "e2e-b"])).is_empty());
    let script = "x\nboth_backends=(a b\n  c)\nafter_apple=(d)\n";
    assert_eq!(bash_array(script, "both_backends"), ["a", "b", "c"]);
    assert_eq!(bash_array(script, "after_apple"), ["d"]);
}
