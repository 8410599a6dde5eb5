//! Operating Kettle: health, readiness, metrics, and the checked-in schema.

use serde_json::json;

use crate::{
    scenarios,
    support::{Backend, Scenario, TestApp},
};

pub fn scenarios() -> Vec<(&'static str, Scenario)> {
    scenarios![
        health_and_readiness,
        readiness_reports_an_unreachable_redis,
        metrics_count_requests_and_operations,
        schema_file_matches_the_code,
    ]
}

async fn health_and_readiness(app: TestApp) {
    let response = app.http().get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    // Live delivery connects to Redis just after the server starts serving.
    let mut body = serde_json::Value::Null;
    for _ in 0..50 {
        let response = app.http().get(app.url("/readyz")).send().await.unwrap();
        assert_eq!(response.status(), 200);
        body = response.json().await.unwrap();
        if body["liveDelivery"] != "redis: connecting" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let (redis, rate_limits, live) = match app.backend() {
        Backend::Postgres { redis_url: Some(_), .. } => ("ok", "redis", "redis: connected"),
        _ => ("not configured", "in process", "in-process"),
    };
    assert_eq!(
        body,
        json!({ "ready": true, "database": "ok", "redis": redis, "rateLimits": rate_limits, "liveDelivery": live })
    );

    // With the database gone, the process is alive but not ready.
    app.state().db.pool.close().await;
    let response = app.http().get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(response.status(), 503);
    assert_eq!(response.json::<serde_json::Value>().await.unwrap()["database"], "unreachable");
    assert_eq!(app.http().get(app.url("/healthz")).send().await.unwrap().status(), 200);
    // And an API request gets an apology with a request id, not a dropped connection.
    let body = app.anonymous().post("{ viewer { id } }", json!({})).await;
    assert_eq!(body.status(), 200);
    let body: serde_json::Value = app
        .http()
        .post(app.url("/graphql"))
        .bearer_auth("kses_anything")
        .json(&json!({ "query": "{ viewer { id } }" }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body["errors"][0]["extensions"]["code"], "INTERNAL");
    assert!(body["errors"][0]["extensions"]["requestId"].as_str().is_some_and(|id| !id.is_empty()));
    assert!(!body.to_string().contains("pool"), "no internal detail leaks: {body}");
}

/// Without Redis the site stays up: still ready (the database answers), saying that
/// rate limits are counted in this process, and those limits still hold.
async fn readiness_reports_an_unreachable_redis(app: TestApp) {
    // A second server, pointed at a Redis that is not there.
    let broken = TestApp::spawn_with(
        app.backend(),
        &[("KETTLE_REDIS_URL", "redis://127.0.0.1:1"), ("KETTLE_RATE_LIMITS", "register_address=2/600")],
    )
    .await;
    let response = broken.http().get(broken.url("/readyz")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(
        (body["database"].as_str(), body["redis"].as_str(), body["rateLimits"].as_str()),
        (Some("ok"), Some("unreachable"), Some("in process (redis is not answering)"))
    );
    broken.member("first@example.org", "First").await;
    broken.member("second@example.org", "Second").await;
    let refused = broken
        .anonymous()
        .gql(
            "mutation($input: RegisterInput!) { register(input: $input) { email } }",
            json!({ "input": { "email": "third@example.org", "password": crate::support::PASSWORD, "displayName": "Third" } }),
        )
        .await;
    assert_eq!(crate::support::error_code(&refused), "RATE_LIMITED", "{refused}");
    assert_eq!(broken.count("SELECT COUNT(*) FROM members WHERE email = 'third@example.org'").await, 0);
    broken.finish().await;
}

async fn metrics_count_requests_and_operations(app: TestApp) {
    app.anonymous().gql("{ viewer { id } }", json!({})).await;
    app.anonymous().gql("{ nope }", json!({})).await;
    app.anonymous().gql("mutation { signOut { signedOut } }", json!({})).await;
    let text = app.http().get(app.url("/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(text.contains(r#"kettle_http_requests_total{method="POST",route="/graphql",status="200"} 3"#), "{text}");
    assert!(text.contains(r#"kettle_graphql_operations_total{outcome="ok",type="query"} 1"#), "{text}");
    assert!(text.contains(r#"kettle_graphql_operations_total{outcome="ok",type="mutation"} 1"#), "{text}");
    assert!(text.contains(r#"kettle_graphql_operations_total{outcome="error",type="query"} 1"#), "{text}");
    assert!(text.contains("kettle_http_request_duration_seconds_bucket"), "{text}");
    assert!(text.contains(r#"kettle_db_pool_connections{state="max"}"#), "{text}");
    // Unknown paths share the catch-all route's label, so scanning cannot grow the series.
    app.http().get(app.url("/random/1")).send().await.unwrap();
    app.http().get(app.url("/random/2")).send().await.unwrap();
    // Every route is labelled by its own pattern, never the raw path, with no route
    // left over as "other".
    for path in ["/artefacts", "/artefacts/1", "/artefacts/2", "/meetups/events/7", "/feeds/topics/none.atom"] {
        app.http().get(app.url(path)).send().await.unwrap();
    }
    let text = app.http().get(app.url("/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(text.contains(r#"kettle_http_requests_total{method="GET",route="/*path",status="404"} 2"#), "{text}");
    assert!(text.contains(r#"kettle_http_requests_total{method="GET",route="/artefacts",status="200"} 1"#), "{text}");
    assert!(
        text.contains(r#"kettle_http_requests_total{method="GET",route="/artefacts/:number",status="404"} 2"#),
        "{text}"
    );
    assert!(
        text.contains(r#"kettle_http_requests_total{method="GET",route="/meetups/events/:number",status="404"} 1"#),
        "{text}"
    );
    assert!(
        text.contains(r#"kettle_http_requests_total{method="GET",route="/feeds/topics/:slug",status="404"} 1"#),
        "{text}"
    );
    assert!(!text.contains(r#"route="other""#), "{text}");
}

async fn schema_file_matches_the_code(_app: TestApp) {
    let checked_in = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/schema.graphql")).unwrap();
    let current = kettle::graphql::sdl();
    assert!(
        checked_in == current,
        "schema.graphql is out of date: run `cargo run -- schema > schema.graphql` and review the difference"
    );
}
