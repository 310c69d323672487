//! The service in process (`app()` driven with `oneshot`, no socket), on both backends.

#[macro_use]
mod common;
use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use common::{beacon, TestDb, TOKEN};
use http_body_util::BodyExt;
use mau_collector::store::{Db, Options, Store, StoreError};
use mau_collector::{app, AppState, Origins};
use serde_json::{json, Value};
use std::sync::Arc;
use tower::ServiceExt;

async fn state(db: &TestDb) -> AppState {
    let db: Db = db.arg.parse().unwrap();
    AppState {
        admin_token: Some(TOKEN.into()),
        origins: Origins::from_config(&[]),
        exports: Arc::new(tokio::sync::Semaphore::new(2)),
        static_dir: None,
        ..AppState::new(Store::open(&db, &Options::default()).await.unwrap())
    }
}

async fn call(router: &axum::Router, req: Request<Body>) -> (StatusCode, String) {
    let resp = router.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8(body.to_vec()).unwrap())
}

fn post(body: &Value) -> Request<Body> {
    Request::post("/v1/beacons")
        .body(Body::from(body.to_string()))
        .unwrap()
}

fn get(path: &str) -> Request<Body> {
    Request::get(path)
        .header(header::AUTHORIZATION, format!("Bearer {TOKEN}"))
        .body(Body::empty())
        .unwrap()
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// 40 requests at once (each beacon sent twice) share commits and count once each; the
/// export crosses several cursor batches in identity order.
fn concurrent_requests_in_process(db: &TestDb) {
    runtime().block_on(async {
        let router = app(state(db).await);
        let posts = (0..40).map(|i| {
            let router = router.clone();
            async move {
                let batch: Vec<Value> = (0..60)
                    .map(|j| {
                        let n = (i / 2) * 60 + j; // requests 2k and 2k+1 are the same
                        beacon(&format!("user-{n:05}"), &format!("ev-{n}"))
                    })
                    .collect();
                call(&router, post(&Value::Array(batch))).await
            }
        });
        for (status, body) in futures_util::future::join_all(posts).await {
            assert_eq!(status, StatusCode::OK, "{body}");
            assert_eq!(
                serde_json::from_str::<Value>(&body).unwrap()["accepted"],
                60
            );
        }
        let (_, months) = call(&router, get("/v1/months")).await;
        let months: Value = serde_json::from_str(&months).unwrap();
        assert_eq!(months.as_array().unwrap().len(), 1, "{months}");
        let month = months[0]["month"].as_str().unwrap().to_owned();
        assert_eq!(months[0]["unique_identities"], 1200);
        assert_eq!(months[0]["connects"], 1200);
        let (status, csv) = call(
            &router,
            get(&format!("/v1/months/{month}/identities?format=csv")),
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        let names: Vec<&str> = csv
            .lines()
            .skip(1)
            .map(|l| l.split(',').next().unwrap())
            .collect();
        assert_eq!(names.len(), 1200);
        assert!(names.windows(2).all(|w| w[0] < w[1]), "not in order");
        let (_, empty) = call(&router, get("/v1/months/1999-01/identities")).await;
        assert_eq!(serde_json::from_str::<Value>(&empty).unwrap(), json!([]));
    });
}

both_backends!(concurrent_requests_in_process);

/// A PostgreSQL that cannot be reached at start-up is a clear "unavailable" error.
#[test]
fn unreachable_postgres_is_unavailable() {
    runtime().block_on(async {
        // Port 1 on loopback: nothing listens there.
        let db: Db = "postgres://mau@127.0.0.1:1/mau".parse().unwrap();
        match Store::open(&db, &Options::default()).await {
            Err(e @ StoreError::Unavailable(_)) => {
                assert!(
                    e.to_string().starts_with("the database is unavailable"),
                    "{e}"
                )
            }
            Err(e) => panic!("unexpected error: {e}"),
            Ok(_) => panic!("opened a database that is not there"),
        }
    });
}
