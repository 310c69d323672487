//! One version everywhere: the workspace's `Cargo.toml` is the source of truth; both crates
//! inherit it, and the npm package, its lock, the binary's `--version` and the changelog
//! must agree with it (`/healthz` is checked in observability.rs, the SDK's `sdk.version`
//! on the wire in the end-to-end package test).

mod common;
use common::*;
use serde_json::Value;
use std::path::Path;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap()
}

fn read(path: &str) -> String {
    std::fs::read_to_string(root().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The `version = "…"` of the `[workspace.package]` table.
fn workspace_version() -> String {
    let toml = read("Cargo.toml");
    let table = toml
        .split("[workspace.package]")
        .nth(1)
        .expect("a [workspace.package] table");
    let line = table
        .lines()
        .find(|l| l.trim_start().starts_with("version"))
        .expect("a version in [workspace.package]");
    line.split('"').nth(1).unwrap().to_owned()
}

#[test]
fn every_place_that_names_the_version_agrees() {
    let v = workspace_version();
    assert_eq!(env!("CARGO_PKG_VERSION"), v, "the collector crate");
    for krate in ["crate/Cargo.toml", "collector/Cargo.toml"] {
        assert!(
            read(krate).contains("version.workspace = true"),
            "{krate} must inherit the workspace version"
        );
    }
    let pkg: Value = serde_json::from_str(&read("package.json")).unwrap();
    assert_eq!(pkg["version"], v.as_str(), "package.json");
    let lock: Value = serde_json::from_str(&read("package-lock.json")).unwrap();
    assert_eq!(lock["version"], v.as_str(), "package-lock.json");
    assert_eq!(
        lock["packages"][""]["version"],
        v.as_str(),
        "package-lock.json"
    );
    let out = cli(&["--version"]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("mau-collector {v}")
    );
    let changelog = read("CHANGELOG.md");
    assert!(
        changelog.contains(&format!("## [{v}]"))
            || changelog.contains(&format!("To be released as {v}.")),
        "CHANGELOG.md has no section for {v}"
    );
}

#[test]
fn both_licences_ship_with_each_package() {
    for dir in ["", "crate/", "collector/"] {
        for name in ["LICENSE-MIT", "LICENSE-APACHE"] {
            let text = read(&format!("{dir}{name}"));
            assert_eq!(text, read(name), "{dir}{name} differs from the root's");
        }
    }
    assert!(read("LICENSE-APACHE").contains("Apache License"));
    assert!(read("LICENSE-MIT").contains("Permission is hereby granted"));
}
