//! The wire contract, collector side: every golden fixture in `tests/fixtures/wire/` that
//! the SDK produces is taken, and `refused-*` ones are refused with the code the SDK names.

#[macro_use]
mod common;
use common::*;
use std::path::PathBuf;

fn fixtures() -> Vec<(String, String)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/wire");
    let mut files: Vec<(String, String)> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read_to_string(&p).unwrap())
        })
        .collect();
    files.sort();
    files
}

fn the_collector_takes_what_the_sdk_sends_and_refuses_what_it_refuses(db: &TestDb) {
    let server = Server::start(db, &["--admin-token", TOKEN]);
    let all = fixtures();
    assert!(all.len() >= 7, "fixtures missing: {all:?}");
    for (name, body) in &all {
        let r = server.post(body);
        if name.starts_with("refused-") {
            assert_eq!(r.status, 400, "{name}: {}", r.body);
            // The code is in the name: `refused-<code>-<what>.json`; the identity one
            // predates that rule.
            let code = ["bad_context", "bad_reason"]
                .into_iter()
                .find(|c| name.contains(c))
                .unwrap_or("identity_too_long");
            assert_eq!(r.json()["code"], code, "{name}: {}", r.body);
        } else {
            assert_eq!(r.status, 200, "{name}: {}", r.body);
            assert_eq!(r.json()["accepted"], 1, "{name}: {}", r.body);
        }
    }
}

both_backends!(the_collector_takes_what_the_sdk_sends_and_refuses_what_it_refuses);
