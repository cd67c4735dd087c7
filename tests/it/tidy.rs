//! Repository rules checked as tests: the crate graph points one way, every crate is in the
//! architecture document, and every module says what it is for.

use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn crates() -> Vec<PathBuf> {
    let mut dirs: Vec<_> = std::fs::read_dir(root().join("crates"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("Cargo.toml").exists())
        .collect();
    dirs.sort();
    dirs
}

/// The `[dependencies]` table of a manifest (not dev-dependencies), as dependency names.
fn dependencies(manifest: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(manifest).unwrap();
    let mut in_deps = false;
    let mut names = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            in_deps = line == "[dependencies]";
            continue;
        }
        if in_deps && !line.is_empty() && !line.starts_with('#') {
            let name = line.split(['=', '.']).next().unwrap().trim();
            names.push(name.to_owned());
        }
    }
    names
}

#[test]
fn library_crates_never_depend_on_the_api() {
    for krate in ["engine", "metamodel", "scheduler", "connector-api", "connector-text"] {
        let manifest = root().join("crates").join(krate).join("Cargo.toml");
        if !manifest.exists() {
            continue;
        }
        let deps = dependencies(&manifest);
        assert!(!deps.iter().any(|d| d == "workbench-api"), "{krate} depends on the api crate");
        assert!(!deps.iter().any(|d| d == "axum"), "{krate} depends on axum");
    }
}

#[test]
fn connector_crates_depend_only_on_the_connector_api_among_ours() {
    let manifest = root().join("crates/connector-text/Cargo.toml");
    let ours: Vec<_> = dependencies(&manifest)
        .into_iter()
        .filter(|d| d.starts_with("workbench") || d.starts_with("connector"))
        .collect();
    assert_eq!(ours, ["connector-api"]);
}

#[test]
fn every_crate_is_in_the_architecture_document() {
    let doc = std::fs::read_to_string(root().join("docs/ARCHITECTURE.md")).unwrap();
    for dir in crates() {
        let name = dir.file_name().unwrap().to_str().unwrap();
        assert!(doc.contains(&format!("`crates/{name}`")), "docs/ARCHITECTURE.md omits {name}");
    }
}

#[test]
fn every_module_opens_with_a_doc_comment() {
    let mut missing = Vec::new();
    let mut stack: Vec<PathBuf> = crates().into_iter().map(|c| c.join("src")).collect();
    stack.push(root().join("src"));
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path).unwrap();
                if !text.trim_start().starts_with("//!") {
                    missing.push(path.display().to_string());
                }
            }
        }
    }
    assert!(missing.is_empty(), "modules without a `//!` header: {missing:?}");
}
