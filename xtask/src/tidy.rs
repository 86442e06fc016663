//! Repository policy, checked as tests (rust-analyzer's `tidy.rs`): `cargo test -p xtask`.
//! Manifests are read line by line, without a TOML parser, which is enough for our layout.

use std::fs;
use std::path::{Path, PathBuf};

use crate::util::root;

/// What authtel-core may depend on (STYLE.md §2: core stays light). Add a crate here only with a
/// reason in the pull request: small, I/O-free, no runtime.
const CORE_ALLOWED_DEPENDENCIES: &[&str] = &[
    "thiserror",
    "serde",
    "serde_json",
    "uuid",
    "arc-swap",
    "tracing",
    "pin-project-lite",
    // Keyed pseudonyms (`authtel_core::pseudonym`, issue 13): HMAC-SHA-256 from RustCrypto,
    // pure computation with default features off, already in the tree through sqlx-postgres (SCRAM).
    "hmac",
    "sha2",
];

/// Every `crates/<name>/Cargo.toml` that exists (crates being written may have none yet).
fn crate_manifests() -> Vec<PathBuf> {
    let mut manifests: Vec<PathBuf> = fs::read_dir(root().join("crates"))
        .map(|entries| {
            entries
                .filter_map(|e| e.ok())
                .map(|e| e.path().join("Cargo.toml"))
                .filter(|p| p.is_file())
                .collect()
        })
        .unwrap_or_default();
    manifests.sort();
    manifests
}

/// Names declared in a manifest's `[dependencies]` (and `[target.….dependencies]`) tables,
/// including `[dependencies.name]` sub-tables.
fn dependencies(manifest: &str) -> Vec<String> {
    let mut deps = Vec::new();
    let mut in_deps = false;
    for line in manifest.lines() {
        let line = line.split('#').next().unwrap_or("").trim();
        if let Some(header) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            let header = header.trim();
            let is_deps = |h: &str| {
                h == "dependencies" || (h.starts_with("target.") && h.ends_with(".dependencies"))
            };
            in_deps = is_deps(header);
            if let Some((table, name)) = header.rsplit_once('.')
                && is_deps(table)
            {
                deps.push(name.trim_matches('"').to_owned());
            }
            continue;
        }
        if in_deps && let Some((key, _)) = line.split_once('=') {
            let name = key
                .split('.')
                .next()
                .unwrap_or(key)
                .trim()
                .trim_matches('"');
            if !name.is_empty() {
                deps.push(name.to_owned());
            }
        }
    }
    deps
}

/// Whether a manifest has `[lints]` with `workspace = true`.
fn inherits_workspace_lints(manifest: &str) -> bool {
    let mut in_lints = false;
    for line in manifest.lines() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.starts_with('[') {
            in_lints = line == "[lints]";
        } else if in_lints && line.replace(' ', "") == "workspace=true" {
            return true;
        }
        if line.replace(' ', "") == "lints.workspace=true"
            || line.replace(' ', "") == "lints={workspace=true}"
        {
            return true;
        }
    }
    false
}

fn files_under(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.filter_map(|e| e.ok()) {
        let path = entry.path();
        let name = entry.file_name();
        if name.to_string_lossy().starts_with('.') || name == "target" {
            continue;
        }
        if path.is_dir() {
            files_under(&path, out);
        } else {
            out.push(path);
        }
    }
}

#[test]
fn core_dependencies_are_on_the_allow_list() {
    let path = root().join("crates/authtel-core/Cargo.toml");
    let Ok(manifest) = fs::read_to_string(&path) else {
        return;
    };
    let extra: Vec<String> = dependencies(&manifest)
        .into_iter()
        .filter(|d| !CORE_ALLOWED_DEPENDENCIES.contains(&d.as_str()))
        .collect();
    assert!(
        extra.is_empty(),
        "{} depends on {extra:?}, which are not on authtel-core's allow-list {CORE_ALLOWED_DEPENDENCIES:?}; \
         move that code to authtel-pipeline or a sink crate (STYLE.md section 2), or extend the list \
         in xtask/src/tidy.rs with a reason",
        path.display()
    );
}

#[test]
fn every_crate_inherits_workspace_lints() {
    let missing: Vec<String> = crate_manifests()
        .into_iter()
        .chain([root().join("xtask/Cargo.toml")])
        .filter(|p| !inherits_workspace_lints(&fs::read_to_string(p).unwrap_or_default()))
        .map(|p| p.display().to_string())
        .collect();
    assert!(
        missing.is_empty(),
        "add `[lints]\\nworkspace = true` to: {missing:?}"
    );
}

#[test]
fn no_placeholder_macros_or_ignored_tests() {
    // Built by concatenation so this file does not match itself.
    let needles = [
        ["todo", "!("].concat(),
        ["unimplemented", "!("].concat(),
        ["dbg", "!("].concat(),
        ["#[", "ignore"].concat(),
    ];
    let mut files = Vec::new();
    for dir in ["crates", "examples", "xtask"] {
        files_under(&root().join(dir), &mut files);
    }
    let mut hits = Vec::new();
    for file in files {
        let Ok(text) = fs::read_to_string(&file) else {
            continue;
        };
        for (n, line) in text.lines().enumerate() {
            for needle in &needles {
                if line.contains(needle.as_str()) {
                    hits.push(format!("{}:{}: {needle}", file.display(), n + 1));
                }
            }
        }
    }
    assert!(
        hits.is_empty(),
        "finish or remove these (no placeholders, no ignored tests; STYLE.md section 8):\n{}",
        hits.join("\n")
    );
}

#[test]
fn manifest_parsing_understands_our_layouts() {
    let manifest = "[package]\nname = \"x\"\n\n[dependencies]\nserde.workspace = true\n\
                    thiserror = { workspace = true }\n# tokio = \"1\"\n\n[dependencies.uuid]\nworkspace = true\n\n\
                    [target.'cfg(unix)'.dependencies]\narc-swap = \"1\"\n\n[dev-dependencies]\ntokio = \"1\"\n\n\
                    [lints]\nworkspace = true\n";
    assert_eq!(
        dependencies(manifest),
        ["serde", "thiserror", "uuid", "arc-swap"]
    );
    assert!(inherits_workspace_lints(manifest));
    assert!(!inherits_workspace_lints(
        "[lints.rust]\nworkspace = true\n"
    ));
}
