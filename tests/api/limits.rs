//! The one rate limiter, limit by limit: each is counted where it should be (in Redis
//! when configured), refuses with RATE_LIMITED past its count, writes nothing when it
//! refuses, and counts clients by the address the trusted proxy reports.

use serde_json::{json, Value};

use crate::{
    scenarios,
    support::{error_code, Scenario, TestApp, PASSWORD},
};

pub fn scenarios() -> Vec<(&'static str, Scenario)> {
    scenarios![
        limits_registrations_are_limited_per_address_even_in_one_request,
        limits_forwarded_addresses_count_only_behind_trusted_proxies,
        limits_writes_previews_and_query_cost_are_limited,
        limits_a_flooded_address_still_lets_a_member_with_the_right_password_in,
        limits_counts_live_in_redis_when_it_is_configured,
    ]
}

const REGISTER: &str =
    "mutation($input: RegisterInput!) { register(input: $input) { email userErrors { field code } } }";

fn registration(email: &str) -> Value {
    json!({ "input": { "email": email, "password": PASSWORD, "displayName": "Someone" } })
}

/// Sends a GraphQL request with extra headers, returning the JSON body.
async fn post(app: &TestApp, headers: &[(&str, &str)], query: &str, variables: Value) -> Value {
    let mut request = app.http().post(app.url("/graphql")).json(&json!({ "query": query, "variables": variables }));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.expect("the server answers");
    assert_eq!(response.status(), 200);
    response.json().await.expect("JSON")
}

async fn limits_registrations_are_limited_per_address_even_in_one_request(app: TestApp) {
    let app = TestApp::spawn_with(app.backend(), &[("KETTLE_RATE_LIMITS", "register_address=3/3600")]).await;
    // Fifty aliased registrations in one request are refused whole, before any hashing.
    let many: String = (0..50)
        .map(|i| format!("r{i}: register(input: {{ email: \"r{i}@example.org\", password: \"{PASSWORD}\", displayName: \"R\" }}) {{ email }} "))
        .collect();
    let body = post(&app, &[], &format!("mutation {{ {many} }}"), json!({})).await;
    assert_eq!(error_code(&body), "QUERY_TOO_COMPLEX", "{body}");
    assert_eq!(app.count("SELECT COUNT(*) FROM members").await, 0);
    // Five in one request (the most a mutation may hold): three accounts, two refusals.
    let five: String = (0..5)
        .map(|i| format!("r{i}: register(input: {{ email: \"r{i}@example.org\", password: \"{PASSWORD}\", displayName: \"R\" }}) {{ email }} "))
        .collect();
    let body = post(&app, &[], &format!("mutation {{ {five} }}"), json!({})).await;
    let tokens = (0..5).filter(|i| body["data"][format!("r{i}")]["email"].is_string()).count();
    let limited = body["errors"].as_array().map_or(0, |errors| {
        errors
            .iter()
            .filter(|e| {
                e["extensions"]["code"] == "RATE_LIMITED" && e["extensions"]["retryAfterSeconds"].as_u64().is_some()
            })
            .count()
    });
    assert_eq!((tokens, limited), (3, 2), "{body}");
    assert_eq!(app.count("SELECT COUNT(*) FROM members").await, 3);
    let body = post(&app, &[], REGISTER, registration("late@example.org")).await;
    assert_eq!(error_code(&body), "RATE_LIMITED");
    assert_eq!(app.count("SELECT COUNT(*) FROM members").await, 3);
    app.finish().await;
}

async fn limits_forwarded_addresses_count_only_behind_trusted_proxies(app: TestApp) {
    let limits = ("KETTLE_RATE_LIMITS", "register_address=1/3600");
    let behind = TestApp::spawn_with(app.backend(), &[limits, ("KETTLE_TRUSTED_PROXIES", "127.0.0.0/8, ::1")]).await;
    let from = |address: &'static str| [("x-forwarded-for", address)];
    let body = post(&behind, &from("198.51.100.1"), REGISTER, registration("a@example.org")).await;
    assert!(body["data"]["register"]["email"].is_string(), "{body}");
    let body = post(&behind, &from("198.51.100.1"), REGISTER, registration("b@example.org")).await;
    assert_eq!(error_code(&body), "RATE_LIMITED", "the same client behind the proxy: {body}");
    // Another client behind the same proxy has its own count; a spoofed first hop does
    // not change who the proxy says is asking.
    let body = post(&behind, &from("198.51.100.2"), REGISTER, registration("c@example.org")).await;
    assert!(body["data"]["register"]["email"].is_string(), "{body}");
    let body = post(&behind, &from("203.0.113.7, 198.51.100.2"), REGISTER, registration("d@example.org")).await;
    assert_eq!(error_code(&body), "RATE_LIMITED", "{body}");
    behind.finish().await;

    // Without trusted proxies the header is ignored: everyone here is 127.0.0.1.
    let direct = TestApp::spawn_with(app.backend(), &[limits]).await;
    let body = post(&direct, &from("198.51.100.1"), REGISTER, registration("a@example.org")).await;
    assert!(body["data"]["register"]["email"].is_string(), "{body}");
    let body = post(&direct, &from("198.51.100.9"), REGISTER, registration("b@example.org")).await;
    assert_eq!(error_code(&body), "RATE_LIMITED", "{body}");
    direct.finish().await;
}

async fn limits_writes_previews_and_query_cost_are_limited(app: TestApp) {
    let app = TestApp::spawn_with(
        app.backend(),
        &[("KETTLE_RATE_LIMITS", "writes_member=3/3600, preview_client=2/60, register_address=100/3600")],
    )
    .await;
    let ada = app.member("ada@example.org", "Ada").await;
    let create = "mutation($input: CreateAccessTokenInput!) { createAccessToken(input: $input) { accessToken { id } userErrors { code } } }";
    for i in 0..3 {
        let data = ada.data(create, json!({ "input": { "name": format!("token {i}") } })).await;
        assert!(data["createAccessToken"]["accessToken"]["id"].is_string(), "{data}");
    }
    let body = ada.gql(create, json!({ "input": { "name": "one too many" } })).await;
    assert_eq!(error_code(&body), "RATE_LIMITED", "{body}");
    assert_eq!(body["errors"][0]["path"], json!(["createAccessToken"]));
    assert_eq!(app.count("SELECT COUNT(*) FROM access_tokens").await, 3);
    // Signing out is not a write that counts.
    assert!(ada.gql("mutation { signOut { signedOut } }", json!({})).await.get("errors").is_none());

    let preview = "query($s: String!) { markdownPreview(source: $s) }";
    let anonymous = app.anonymous();
    for _ in 0..2 {
        assert!(anonymous.data(preview, json!({ "s": "*hello*" })).await["markdownPreview"].is_string());
    }
    assert_eq!(error_code(&anonymous.gql(preview, json!({ "s": "*hello*" })).await), "RATE_LIMITED");
    app.finish().await;

    // The summed complexity of one address's queries.
    let app = TestApp::spawn_with(app.backend(), &[("KETTLE_RATE_LIMITS", "graphql_cost_client=10/60")]).await;
    let anonymous = app.anonymous();
    let query = "{ viewer { id } }";
    let mut answered = 0;
    let refused = loop {
        let body = anonymous.gql(query, json!({})).await;
        if body.get("errors").is_some() {
            break body;
        }
        answered += 1;
        assert!(answered < 10, "never refused");
    };
    assert_eq!(error_code(&refused), "RATE_LIMITED", "{refused}");
    assert!(answered >= 1, "the first query is within the limit");
    app.finish().await;
}

/// Many failures from one address (everyone behind one proxy shares it) do not lock out
/// a member who types the right password: they are slowed, and still let in.
async fn limits_a_flooded_address_still_lets_a_member_with_the_right_password_in(app: TestApp) {
    let app = TestApp::spawn_with(
        app.backend(),
        &[("KETTLE_RATE_LIMITS", "sign_in_address=5/900, register_address=100/3600")],
    )
    .await;
    app.member("member@example.org", "Member").await;
    let sign_in = "mutation($input: SignInInput!) { signIn(input: $input) { token userErrors { code } } }";
    let anonymous = app.anonymous();
    for i in 0..5 {
        let input = json!({ "input": { "email": format!("victim{i}@example.org"), "password": "wrong wrong wrong" } });
        let data = anonymous.data(sign_in, input).await;
        assert_eq!(data["signIn"]["userErrors"][0]["code"], "INVALID_CREDENTIALS");
    }
    let started = std::time::Instant::now();
    let data =
        anonymous.data(sign_in, json!({ "input": { "email": "member@example.org", "password": PASSWORD } })).await;
    assert!(data["signIn"]["token"].is_string(), "{data}");
    assert!(started.elapsed() >= std::time::Duration::from_secs(1), "a flooded address is slowed down");
    // An account that already failed from here gets no further try.
    let again =
        anonymous.gql(sign_in, json!({ "input": { "email": "victim0@example.org", "password": "still wrong" } })).await;
    assert_eq!(error_code(&again), "RATE_LIMITED", "{again}");
    app.finish().await;
}

async fn limits_counts_live_in_redis_when_it_is_configured(app: TestApp) {
    let Some(redis_url) = (match app.backend() {
        crate::support::Backend::Postgres { redis_url, .. } => redis_url.clone(),
        crate::support::Backend::Sqlite => None,
    }) else {
        // The embedded mode has no Redis: counts live in the process (the unit tests of
        // `limits` cover that store).
        assert_eq!(app.state().limiter.store_status(), "in process");
        return;
    };
    let data = app
        .anonymous()
        .data(
            "mutation($input: SignInInput!) { signIn(input: $input) { userErrors { code } } }",
            json!({ "input": { "email": "nobody@example.org", "password": "wrong wrong wrong" } }),
        )
        .await;
    assert_eq!(data["signIn"]["userErrors"][0]["code"], "INVALID_CREDENTIALS");
    let prefix = app.state().config.redis_prefix.clone();
    let client = redis::Client::open(redis_url.as_str()).unwrap();
    let mut connection = client.get_multiplexed_async_connection().await.unwrap();
    let keys: Vec<String> =
        redis::cmd("KEYS").arg(format!("{prefix}:limit:*")).query_async(&mut connection).await.unwrap();
    assert!(keys.contains(&format!("{prefix}:limit:sign_in_account:nobody@example.org")), "{keys:?}");
    assert!(keys.iter().any(|k| k.starts_with(&format!("{prefix}:limit:sign_in_address:"))), "{keys:?}");
    let ttl: i64 = redis::cmd("PTTL")
        .arg(format!("{prefix}:limit:sign_in_account:nobody@example.org"))
        .query_async(&mut connection)
        .await
        .unwrap();
    assert!(ttl > 0 && ttl <= 15 * 60 * 1000, "every count expires with its window: {ttl}");
}
