//! CORS: configured origins are echoed with credentials; others get no CORS headers.

mod common;
use common::*;

const APP: &str = "https://app.example";

fn start(origins: &[&str]) -> (TestDb, Server) {
    let db = TestDb::sqlite();
    let mut args = vec!["--admin-token", TOKEN];
    for o in origins {
        args.extend(["--allow-origin", o]);
    }
    let server = Server::start(&db, &args);
    (db, server)
}

fn post_from(server: &Server, origin: &str) -> Resp {
    send(
        server
            .request("POST", "/v1/beacons")
            .set("Origin", origin)
            .set("Content-Type", "text/plain;charset=UTF-8"),
        Some(&beacon("alice", origin).to_string()),
    )
}

/// Caches must keep answers for different origins apart.
fn varies_on_origin(r: &Resp) -> bool {
    r.header("vary")
        .is_some_and(|v| v.to_ascii_lowercase().contains("origin"))
}

fn preflight(server: &Server, origin: &str) -> Resp {
    send(
        server
            .request("OPTIONS", "/v1/beacons")
            .set("Origin", origin)
            .set("Access-Control-Request-Method", "POST")
            .set("Access-Control-Request-Headers", "content-type"),
        None,
    )
}

#[test]
fn allowed_origin_is_echoed_with_credentials() {
    let (_dir, server) = start(&[APP, "https://other.example"]);
    let r = post_from(&server, APP);
    assert_eq!(r.status, 200);
    assert_eq!(r.header("access-control-allow-origin"), Some(APP));
    assert_eq!(r.header("access-control-allow-credentials"), Some("true"));
    assert_eq!(
        r.header("access-control-expose-headers")
            .map(str::to_ascii_lowercase),
        Some("retry-after".into())
    );
    assert!(varies_on_origin(&r));
    // Errors carry the headers too, so the page can read why.
    let bad = send(
        server.request("POST", "/v1/beacons").set("Origin", APP),
        Some("{"),
    );
    assert_eq!(bad.status, 400);
    assert_eq!(bad.header("access-control-allow-origin"), Some(APP));
}

#[test]
fn disallowed_origin_gets_no_cors_headers() {
    let (_dir, server) = start(&[APP]);
    let r = post_from(&server, "https://evil.example");
    // Without Allow-Origin the browser keeps the answer from the page, whatever else is sent.
    assert_eq!(r.header("access-control-allow-origin"), None);
    assert!(varies_on_origin(&r));
    // Default configuration: no cross-origin access at all.
    let (_dir2, plain) = start(&[]);
    assert_eq!(
        post_from(&plain, APP).header("access-control-allow-origin"),
        None
    );
}

#[test]
fn preflight_is_answered_for_allowed_origins_only() {
    let (_dir, server) = start(&[APP]);
    let ok = preflight(&server, APP);
    assert!((200..300).contains(&ok.status), "{}", ok.status);
    assert_eq!(ok.header("access-control-allow-origin"), Some(APP));
    assert_eq!(ok.header("access-control-allow-credentials"), Some("true"));
    let methods = ok.header("access-control-allow-methods").unwrap();
    assert!(
        methods.contains("POST") && methods.contains("GET"),
        "{methods}"
    );
    let headers = ok
        .header("access-control-allow-headers")
        .unwrap()
        .to_ascii_lowercase();
    assert!(
        headers.contains("content-type") && headers.contains("authorization"),
        "{headers}"
    );
    assert!(varies_on_origin(&ok));

    // Another origin's preflight gets no CORS headers, so its browser refuses the request.
    let no = preflight(&server, "https://evil.example");
    assert_eq!(no.header("access-control-allow-origin"), None);
}

#[test]
fn star_allows_any_origin_by_echoing_it() {
    let (_dir, server) = start(&["*"]);
    for origin in ["https://a.example", "http://localhost:5173"] {
        let r = post_from(&server, origin);
        assert_eq!(r.header("access-control-allow-origin"), Some(origin));
        assert_eq!(r.header("access-control-allow-credentials"), Some("true"));
        assert_eq!(
            preflight(&server, origin).header("access-control-allow-origin"),
            Some(origin)
        );
    }
}
