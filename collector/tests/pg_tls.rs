//! PostgreSQL over TLS: against a cluster with `ssl=on` and a CA of its own, each `sslmode`
//! connects (and the connections are TLS, or not) or is refused with a message that names
//! the problem and never the password; against one without TLS, `require` is refused and
//! `prefer` falls back.

mod common;
use common::*;

/// `db`'s URL with a password (never to be shown), `host` for 127.0.0.1, and `query`.
fn url(db: &TestDb, host: &str, query: &str) -> String {
    let rest = db
        .arg
        .strip_prefix("postgres://postgres@127.0.0.1")
        .unwrap();
    format!("postgres://postgres:pw-never-shown@{host}{rest}?{query}")
}

/// Runs `serve` on `url` (plus `extra` flags), stores and reads a beacon of `identity`, and
/// counts the collector's connections to the database with and without TLS, as the server
/// sees them. `identity` is also the connections' application_name.
fn serve_on(db: &mut TestDb, url: &str, extra: &[&str], identity: &str) -> (i64, i64) {
    let url = format!("{url}&application_name={identity}");
    let plain_url = std::mem::replace(&mut db.arg, url);
    let server = Server::start(db, &[&["--admin-token", TOKEN][..], extra].concat());
    db.arg = plain_url;
    let r = server.post(&beacon(identity, &format!("ev-{identity}")).to_string());
    assert_eq!(r.status, 200, "{}\n{}", r.body, server.logs());
    let ids = server.get_admin(&format!("/v1/months/{}/identities", server.month()));
    assert!(ids.body.contains(identity), "{}", ids.body);
    let count = |ssl: bool| {
        db.scalar(&format!(
            "SELECT count(*) FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid)
             WHERE a.application_name = '{identity}' AND s.ssl = {ssl}"
        ))
    };
    (count(true), count(false))
}

/// The CLI's refusal to open `url`: its message.
fn refused(url: &str, extra: &[&str]) -> String {
    let out = cli(&[&["--db", url, "report", "--month", "2026-11"][..], extra].concat());
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(!out.status.success(), "{err}");
    assert!(!err.contains("pw-never-shown"), "{err}");
    err
}

#[test]
fn tls_modes_against_a_cluster_with_its_own_ca() {
    let Some(cluster) = PgCluster::start_tls() else {
        return;
    };
    let (ca, other_ca) = (cluster.tls_file("ca.crt"), cluster.tls_file("other-ca.crt"));
    let mut db = TestDb::postgres_on(&cluster.admin_url);
    // The certificate names localhost only; hostaddr keeps the traffic on 127.0.0.1.
    let localhost = |db: &TestDb, q: &str| url(db, "localhost", &format!("hostaddr=127.0.0.1&{q}"));

    let full = localhost(&db, &format!("sslmode=verify-full&sslrootcert={ca}"));
    let (tls, plain) = serve_on(&mut db, &full, &[], "full");
    assert!(
        tls > 0 && plain == 0,
        "verify-full: {tls} TLS, {plain} plain"
    );

    let wrong_ca = localhost(&db, &format!("sslmode=verify-full&sslrootcert={other_ca}"));
    let err = refused(&wrong_ca, &[]);
    assert!(
        err.contains(&format!("TLS: unknown certificate authority: the server's certificate is not signed by the CA file {other_ca}")),
        "{err}"
    );

    let wrong_host = url(
        &db,
        "127.0.0.1",
        &format!("sslmode=verify-full&sslrootcert={ca}"),
    );
    let err = refused(&wrong_host, &[]);
    assert!(
        err.contains("TLS: certificate not valid for host 127.0.0.1 (it names localhost)"),
        "{err}"
    );

    // verify-ca checks the chain only, so 127.0.0.1 will do; the CA by the flag this time.
    let chain_only = url(&db, "127.0.0.1", "sslmode=verify-ca");
    let (tls, plain) = serve_on(&mut db, &chain_only, &["--db-ca-file", &ca], "chain");
    assert!(tls > 0 && plain == 0, "verify-ca: {tls} TLS, {plain} plain");
    let err = refused(&chain_only, &["--db-ca-file", &other_ca]);
    assert!(err.contains("TLS: unknown certificate authority"), "{err}");

    let require = url(&db, "127.0.0.1", "sslmode=require");
    let (tls, plain) = serve_on(&mut db, &require, &[], "require");
    assert!(tls > 0 && plain == 0, "require: {tls} TLS, {plain} plain");

    let disable = url(&db, "127.0.0.1", "sslmode=disable");
    let (tls, plain) = serve_on(&mut db, &disable, &[], "disable");
    assert!(tls == 0 && plain > 0, "disable: {tls} TLS, {plain} plain");
}

#[test]
fn without_tls_on_the_server_require_is_refused_and_prefer_falls_back() {
    let Some(mut db) = TestDb::postgres() else {
        return;
    };
    let err = refused(&url(&db, "127.0.0.1", "sslmode=require"), &[]);
    assert!(
        err.contains("TLS: the server does not offer TLS, which the sslmode requires"),
        "{err}"
    );
    let prefer = url(&db, "127.0.0.1", "sslmode=prefer");
    let (tls, plain) = serve_on(&mut db, &prefer, &[], "prefer");
    assert!(tls == 0 && plain > 0, "prefer: {tls} TLS, {plain} plain");
}
