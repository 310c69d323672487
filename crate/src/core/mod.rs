//! The pure core: what a beacon is, when to send it, what a response means, how beacons
//! are stored. No wasm-bindgen, js-sys or web-sys in here (a test enforces it): time,
//! randomness, storage and JSON parsing come in from `platform`, so every rule is tested
//! natively and deterministically.

pub mod clock;
pub mod delivery;
pub mod error;
pub mod identity;
pub mod json;
pub mod origin;
pub mod outbox;
pub mod tabs;
pub mod wire;

#[cfg(test)]
mod purity {
    use std::path::Path;

    /// Every file under `src/core` is read: none may name a browser binding crate, so the
    /// core builds and is tested without a browser.
    fn check(dir: &Path, seen: &mut usize) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                check(&path, seen);
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            for banned in ["wasm_bindgen", "js_sys", "web_sys", "gloo"] {
                // This file names them in its own test, on purpose.
                if path.ends_with("core/mod.rs") {
                    continue;
                }
                assert!(!text.contains(banned), "{} uses {banned}", path.display());
            }
            *seen += 1;
        }
    }

    #[test]
    fn core_has_no_browser_bindings() {
        let mut seen = 0;
        check(
            &Path::new(env!("CARGO_MANIFEST_DIR")).join("src/core"),
            &mut seen,
        );
        assert!(seen >= 7, "only {seen} files checked");
    }
}
