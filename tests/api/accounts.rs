//! Registration, sign-in, sessions, profiles and access tokens.

use serde_json::json;

use crate::{
    scenarios,
    support::{error_code, query_plan, user_errors, Backend, Scenario, TestApp, PASSWORD},
};

pub fn scenarios() -> Vec<(&'static str, Scenario)> {
    scenarios![
        register_sign_in_and_sign_out,
        registration_rejects_bad_input_and_changes_nothing,
        emails_are_unique_whatever_their_case,
        simultaneous_registrations_with_one_email_make_one_account,
        wrong_email_and_wrong_password_get_the_same_answer,
        repeated_failures_are_refused_for_a_while,
        browser_sessions_travel_in_a_cookie,
        sessions_expire_and_slide,
        sign_out_everywhere_ends_every_session,
        suspended_members_cannot_sign_in,
        profile_updates_are_validated,
        access_tokens_are_shown_once_listed_and_revoked,
        access_tokens_belong_to_their_member,
        access_tokens_page_with_keyset_cursors,
        handles_are_unique_and_derived_from_names,
        the_member_directory_finds_handles_by_their_start,
        the_member_directory_reads_one_range_of_an_index,
        a_changed_handle_keeps_the_old_one_leading_to_its_member,
        members_asking_for_one_handle_at_once_get_it_once,
    ]
}

const REGISTER: &str =
    "mutation($input: RegisterInput!) { register(input: $input) { email userErrors { field message code } } }";
const SIGN_IN: &str = "mutation($input: SignInInput!) { signIn(input: $input) { token member { id } userErrors { field message code } } }";
const SIGN_OUT: &str = "mutation($input: SignOutInput) { signOut(input: $input) { signedOut userErrors { code } } }";

async fn register_sign_in_and_sign_out(app: TestApp) {
    let anon = app.anonymous();
    let response = anon
        .post(
            REGISTER,
            json!({ "input": { "email": "Ada@Example.org", "password": PASSWORD, "displayName": "  Ada Lovelace " } }),
        )
        .await;
    // Registering does not sign in: the answer must be the same for a taken address.
    assert!(response.headers().get("set-cookie").is_none(), "{:?}", response.headers());
    assert_eq!(response.headers().get("cache-control").unwrap(), "no-store");
    let body: serde_json::Value = response.json().await.unwrap();
    let payload = &body["data"]["register"];
    assert_eq!(payload, &json!({ "email": "Ada@Example.org", "userErrors": [] }));
    assert_eq!(app.count("SELECT COUNT(*) FROM sessions").await, 0);

    // Signing in with the password works at once (the address need not be verified).
    let response = anon.post(SIGN_IN, json!({ "input": { "email": "Ada@Example.org", "password": PASSWORD } })).await;
    let cookie = response.headers().get("set-cookie").expect("a session cookie").to_str().unwrap().to_string();
    assert!(cookie.starts_with("kettle_session=kses_"), "{cookie}");
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax") && !cookie.contains("Secure"), "{cookie}");
    let body: serde_json::Value = response.json().await.unwrap();
    let member_id = body["data"]["signIn"]["member"]["id"].as_str().unwrap().to_string();

    // The session token works, and the viewer sees their own email.
    let ada = anon.with_token(body["data"]["signIn"]["token"].as_str().unwrap());
    let viewer = ada.data("{ viewer { id email displayName role timeZone bio emailVerified } }", json!({})).await;
    assert_eq!(
        viewer["viewer"],
        json!({ "id": member_id, "email": "Ada@Example.org", "displayName": "Ada Lovelace", "role": "MEMBER",
                "timeZone": "Europe/London", "bio": "", "emailVerified": false })
    );

    // Signing in ignores the email's case and gives a new, different session.
    let signed_in = anon.data(SIGN_IN, json!({ "input": { "email": " ada@EXAMPLE.org", "password": PASSWORD } })).await;
    let second = signed_in["signIn"]["token"].as_str().unwrap();
    assert_eq!(signed_in["signIn"]["member"]["id"], member_id);
    assert_ne!(second, ada.token());
    assert_eq!(app.count("SELECT COUNT(*) FROM sessions").await, 2);

    // Signing out ends that session only.
    let out = anon.with_token(second).data(SIGN_OUT, json!({})).await;
    assert_eq!(out["signOut"], json!({ "signedOut": true, "userErrors": [] }));
    let response = anon.with_token(second).post("{ viewer { id } }", json!({})).await;
    assert_eq!(response.status(), 401);
    assert_eq!(ada.viewer_id().await.as_deref(), Some(member_id.as_str()));
    assert_eq!(app.count("SELECT COUNT(*) FROM sessions").await, 1);
    // Only a hash of each token is stored.
    assert_eq!(app.count(&format!("SELECT COUNT(*) FROM sessions WHERE token_hash = '{}'", ada.token())).await, 0);

    // Anonymous viewers are simply null.
    assert_eq!(anon.data("{ viewer { id } }", json!({})).await["viewer"], json!(null));
}

async fn registration_rejects_bad_input_and_changes_nothing(app: TestApp) {
    let anon = app.anonymous();
    let cases = [
        (json!({ "email": "not-an-email", "password": PASSWORD, "displayName": "Ada" }), vec![("email", "INVALID")]),
        (json!({ "email": "", "password": PASSWORD, "displayName": "Ada" }), vec![("email", "BLANK")]),
        (
            json!({ "email": format!("{}@example.org", "a".repeat(250)), "password": PASSWORD, "displayName": "Ada" }),
            vec![("email", "TOO_LONG")],
        ),
        (
            json!({ "email": "ada@example.org", "password": "short", "displayName": "Ada" }),
            vec![("password", "TOO_SHORT")],
        ),
        (
            json!({ "email": "ada@example.org", "password": "password123", "displayName": "Ada" }),
            vec![("password", "WEAK_PASSWORD")],
        ),
        (
            json!({ "email": "ada@example.org", "password": "ada@example.org", "displayName": "Ada" }),
            vec![("password", "WEAK_PASSWORD")],
        ),
        (
            json!({ "email": "ada@example.org", "password": "x".repeat(300), "displayName": "Ada" }),
            vec![("password", "TOO_LONG")],
        ),
        (
            json!({ "email": "ada@example.org", "password": PASSWORD, "displayName": "A".repeat(81) }),
            vec![("displayName", "TOO_LONG")],
        ),
        (
            json!({ "email": "ada@example.org", "password": PASSWORD, "displayName": "   " }),
            vec![("displayName", "BLANK")],
        ),
        (
            json!({ "email": "ada@example.org", "password": PASSWORD, "displayName": "Ada\rLovelace" }),
            vec![("displayName", "INVALID")],
        ),
        // Every problem is reported at once, each beside its field.
        (
            json!({ "email": "nope", "password": "short", "displayName": "" }),
            vec![("email", "INVALID"), ("displayName", "BLANK"), ("password", "TOO_SHORT")],
        ),
    ];
    for (input, expected) in cases {
        let body = anon.gql(REGISTER, json!({ "input": input })).await;
        let payload = &body["data"]["register"];
        let expected: Vec<(String, String)> = expected.iter().map(|(f, c)| (f.to_string(), c.to_string())).collect();
        assert_eq!(user_errors(payload), expected, "for {input}");
        assert_eq!(payload["email"], json!(null));
        for error in payload["userErrors"].as_array().unwrap() {
            assert!(error["message"].as_str().unwrap().ends_with('.'), "a sentence: {error}");
        }
    }
    // A control character is refused at the boundary, before any resolver runs, with the
    // field named.
    let body = anon
        .gql(
            REGISTER,
            json!({ "input": { "email": "ada@example.org", "password": PASSWORD, "displayName": "Ada\u{0}" } }),
        )
        .await;
    assert_eq!(error_code(&body), "BAD_USER_INPUT");
    assert_eq!(body["errors"][0]["extensions"]["field"], "displayName", "{body}");
    assert_eq!(body["errors"][0]["extensions"]["argument"], "input.displayName", "{body}");
    // A missing field is a GraphQL validation error, not a userError.
    let body = anon.gql(REGISTER, json!({ "input": { "email": "ada@example.org", "password": PASSWORD } })).await;
    assert_eq!(error_code(&body), "BAD_USER_INPUT");
    // An unknown input field likewise.
    let body = anon.gql(REGISTER, json!({ "input": { "email": "ada@example.org", "password": PASSWORD, "displayName": "Ada", "role": "ADMIN" } })).await;
    assert_eq!(error_code(&body), "BAD_USER_INPUT");
    assert_eq!(app.count("SELECT COUNT(*) FROM members").await, 0);
    assert_eq!(app.count("SELECT COUNT(*) FROM sessions").await, 0);
}

async fn emails_are_unique_whatever_their_case(app: TestApp) {
    app.member("grace@example.org", "Grace").await;
    let body = app
        .anonymous()
        .gql(
            REGISTER,
            json!({ "input": { "email": "GRACE@example.ORG", "password": PASSWORD, "displayName": "Other Grace" } }),
        )
        .await;
    // Said by mail to the address's owner, not here (see mail_accounts).
    assert_eq!(body["data"]["register"], json!({ "email": "GRACE@example.ORG", "userErrors": [] }));
    assert_eq!(app.count("SELECT COUNT(*) FROM members").await, 1);
    // The password of the attempt opens nothing.
    let other = app
        .anonymous()
        .gql(
            SIGN_IN,
            json!({ "input": { "email": "grace@example.org", "password": "another strong passphrase here" } }),
        )
        .await;
    assert_eq!(user_errors(&other["data"]["signIn"]), vec![(String::new(), "INVALID_CREDENTIALS".to_string())]);
}

async fn simultaneous_registrations_with_one_email_make_one_account(app: TestApp) {
    let attempts = (0..20).map(|i| {
        let anon = app.anonymous();
        async move {
            let email = if i % 2 == 0 { "Same@Example.org" } else { "same@example.org" };
            anon.gql(
                REGISTER,
                json!({ "input": { "email": email, "password": PASSWORD, "displayName": format!("Racer {i}") } }),
            )
            .await
        }
    });
    let results = futures_util::future::join_all(attempts).await;
    // Every attempt gets the same answer; one of them made the account.
    for body in &results {
        assert_eq!(body["data"]["register"]["userErrors"], json!([]), "{body}");
    }
    assert_eq!(app.count("SELECT COUNT(*) FROM members").await, 1);
    assert_eq!(app.count("SELECT COUNT(*) FROM sessions").await, 0);
    // One verification link for the one account; the others told its owner, once an hour.
    assert_eq!(app.count("SELECT COUNT(*) FROM account_tokens WHERE purpose = 'verify_email'").await, 1);
    assert_eq!(app.count("SELECT COUNT(*) FROM mail_queue WHERE template = 'register_attempt'").await, 1);
}

async fn wrong_email_and_wrong_password_get_the_same_answer(app: TestApp) {
    app.member("ada@example.org", "Ada").await;
    let anon = app.anonymous();
    let wrong_password =
        anon.gql(SIGN_IN, json!({ "input": { "email": "ada@example.org", "password": "not the password" } })).await;
    let unknown_email =
        anon.gql(SIGN_IN, json!({ "input": { "email": "nobody@example.org", "password": "not the password" } })).await;
    assert_eq!(wrong_password, unknown_email);
    assert_eq!(
        user_errors(&wrong_password["data"]["signIn"]),
        vec![(String::new(), "INVALID_CREDENTIALS".to_string())]
    );
    assert_eq!(wrong_password["data"]["signIn"]["token"], json!(null));
    // Oversized input is turned away the same way, without hashing it.
    let huge =
        anon.gql(SIGN_IN, json!({ "input": { "email": "ada@example.org", "password": "x".repeat(10_000) } })).await;
    assert_eq!(huge, wrong_password);
    assert_eq!(app.count("SELECT COUNT(*) FROM sessions").await, 1);
}

async fn repeated_failures_are_refused_for_a_while(app: TestApp) {
    app.member("ada@example.org", "Ada").await;
    app.member("grace@example.org", "Grace").await;
    let anon = app.anonymous();
    let started = std::time::Instant::now();
    for _ in 0..10 {
        let body = anon
            .gql(SIGN_IN, json!({ "input": { "email": "ada@example.org", "password": "guess guess guess" } }))
            .await;
        assert_eq!(user_errors(&body["data"]["signIn"])[0].1, "INVALID_CREDENTIALS");
    }
    // Failures past the third were slowed down: 100 ms more for each.
    assert!(started.elapsed() >= std::time::Duration::from_millis(2_800), "{:?}", started.elapsed());
    // Now even the right password is refused, with a code and a retry time.
    let body = anon.gql(SIGN_IN, json!({ "input": { "email": "ADA@example.org", "password": PASSWORD } })).await;
    assert_eq!(error_code(&body), "RATE_LIMITED");
    assert!(body["errors"][0]["extensions"]["retryAfterSeconds"].as_u64().unwrap() > 800);
    assert_eq!(body["data"], json!(null));
    // Another member is not locked out by Ada's attacker.
    let body = anon.data(SIGN_IN, json!({ "input": { "email": "grace@example.org", "password": PASSWORD } })).await;
    assert!(body["signIn"]["token"].is_string());
    assert_eq!(app.count("SELECT COUNT(*) FROM sessions").await, 3);
}

async fn browser_sessions_travel_in_a_cookie(app: TestApp) {
    let ada = app.member("ada@example.org", "Ada").await;
    let browser = ada.with_cookie(ada.token());
    assert!(browser.viewer_id().await.is_some());
    // A stale cookie means signed out, not an error: the page still renders.
    let stale = ada.with_cookie("kses_no-such-session");
    assert_eq!(stale.viewer_id().await, None);
    // Signing out through the cookie clears it.
    let response = browser.post(SIGN_OUT, json!({})).await;
    let cleared = response.headers().get("set-cookie").unwrap().to_str().unwrap().to_string();
    assert!(cleared.starts_with("kettle_session=;") && cleared.contains("Max-Age=0"), "{cleared}");
    assert_eq!(browser.viewer_id().await, None);
}

async fn sessions_expire_and_slide(app: TestApp) {
    let ada = app.member("ada@example.org", "Ada").await;
    let now = kettle::db::now_millis();
    // A session near the end of its idle lifetime is renewed when used.
    app.execute_sql(&format!("UPDATE sessions SET expires_at = {}", now + 60 * 60 * 1000)).await;
    assert!(ada.viewer_id().await.is_some());
    let expires = app.count("SELECT expires_at FROM sessions").await;
    assert!(expires > now + 29 * 24 * 60 * 60 * 1000, "renewed to about 30 days: {}", expires - now);
    // ...but never beyond its absolute lifetime.
    app.execute_sql(&format!(
        "UPDATE sessions SET created_at = {}, expires_at = {}",
        now - 179 * 86_400_000,
        now + 1000 * 60
    ))
    .await;
    assert!(ada.viewer_id().await.is_some());
    let expires = app.count("SELECT expires_at FROM sessions").await;
    assert!(expires <= now - 179 * 86_400_000 + 180 * 86_400_000 + 1000, "capped: {}", expires - now);
    // An expired session no longer signs anyone in.
    app.execute_sql(&format!("UPDATE sessions SET expires_at = {}", now - 1)).await;
    let response = ada.post("{ viewer { id } }", json!({})).await;
    assert_eq!(response.status(), 401);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(error_code(&body), "UNAUTHENTICATED");
}

async fn sign_out_everywhere_ends_every_session(app: TestApp) {
    let ada = app.member("ada@example.org", "Ada").await;
    let anon = app.anonymous();
    let other = anon.data(SIGN_IN, json!({ "input": { "email": "ada@example.org", "password": PASSWORD } })).await;
    let other = anon.with_token(other["signIn"]["token"].as_str().unwrap());
    let grace = app.member("grace@example.org", "Grace").await;
    ada.data(SIGN_OUT, json!({ "input": { "everywhere": true } })).await;
    assert_eq!(other.post("{ viewer { id } }", json!({})).await.status(), 401);
    assert_eq!(ada.post("{ viewer { id } }", json!({})).await.status(), 401);
    assert!(grace.viewer_id().await.is_some());
}

async fn suspended_members_cannot_sign_in(app: TestApp) {
    let ada = app.member("ada@example.org", "Ada").await;
    app.execute_sql(&format!("UPDATE members SET suspended_at = {}", kettle::db::now_millis())).await;
    assert_eq!(ada.post("{ viewer { id } }", json!({})).await.status(), 401);
    let body =
        app.anonymous().gql(SIGN_IN, json!({ "input": { "email": "ada@example.org", "password": PASSWORD } })).await;
    assert_eq!(user_errors(&body["data"]["signIn"]), vec![(String::new(), "INVALID".to_string())]);
    assert!(body["data"]["signIn"]["userErrors"][0]["message"].as_str().unwrap().contains("suspended"));
    assert_eq!(app.count("SELECT COUNT(*) FROM sessions").await, 1);
}

const UPDATE_PROFILE: &str = "mutation($input: UpdateProfileInput!) { updateProfile(input: $input) { member { displayName bio timeZone } userErrors { field code message } } }";

async fn profile_updates_are_validated(app: TestApp) {
    let ada = app.member("ada@example.org", "Ada").await;
    let data = ada
        .data(
            UPDATE_PROFILE,
            json!({ "input": { "bio": "Service designer at a county council.", "timeZone": "America/New_York" } }),
        )
        .await;
    assert_eq!(
        data["updateProfile"]["member"],
        json!({ "displayName": "Ada", "bio": "Service designer at a county council.", "timeZone": "America/New_York" })
    );
    let body = ada
        .gql(
            UPDATE_PROFILE,
            json!({ "input": { "displayName": "x".repeat(200), "bio": "b".repeat(501), "timeZone": "Mars/Base" } }),
        )
        .await;
    assert_eq!(
        user_errors(&body["data"]["updateProfile"]),
        vec![
            ("displayName".into(), "TOO_LONG".into()),
            ("bio".into(), "TOO_LONG".into()),
            ("timeZone".into(), "INVALID".into())
        ]
    );
    // Nothing changed.
    let viewer = ada.data("{ viewer { displayName bio timeZone } }", json!({})).await;
    assert_eq!(viewer["viewer"], data["updateProfile"]["member"]);
    let body = app.anonymous().gql(UPDATE_PROFILE, json!({ "input": { "bio": "hi" } })).await;
    assert_eq!(error_code(&body), "UNAUTHENTICATED");
}

const CREATE_TOKEN: &str = "mutation($input: CreateAccessTokenInput!) { createAccessToken(input: $input) { token accessToken { id name hint expiresAt } userErrors { field code } } }";
const REVOKE_TOKEN: &str = "mutation($input: RevokeAccessTokenInput!) { revokeAccessToken(input: $input) { accessToken { id revokedAt } userErrors { field code } } }";

async fn access_tokens_are_shown_once_listed_and_revoked(app: TestApp) {
    let ada = app.member("ada@example.org", "Ada").await;
    let created = ada.data(CREATE_TOKEN, json!({ "input": { "name": "weekly report", "expiresInDays": 30 } })).await;
    let payload = &created["createAccessToken"];
    let secret = payload["token"].as_str().unwrap();
    assert!(secret.starts_with("kpat_"));
    assert_eq!(payload["accessToken"]["hint"], secret[secret.len() - 4..]);
    assert!(payload["accessToken"]["expiresAt"].is_string());
    let token_id = payload["accessToken"]["id"].as_str().unwrap();

    // The secret works as a bearer token and is never listed again.
    let script = ada.with_token(secret);
    let listed =
        script.data("{ viewer { accessTokens { edges { node { id name hint lastUsedAt } } } } }", json!({})).await;
    let listed_text = listed.to_string();
    assert!(!listed_text.contains(secret));
    assert_eq!(listed["viewer"]["accessTokens"]["edges"][0]["node"]["id"], token_id);
    assert!(listed["viewer"]["accessTokens"]["edges"][0]["node"]["lastUsedAt"].is_string());
    // A token cannot mint more tokens.
    let body = script.gql(CREATE_TOKEN, json!({ "input": { "name": "sneaky" } })).await;
    assert_eq!(error_code(&body), "FORBIDDEN");

    // Bad input.
    let body = ada.gql(CREATE_TOKEN, json!({ "input": { "name": " ", "expiresInDays": 0 } })).await;
    assert_eq!(
        user_errors(&body["data"]["createAccessToken"]),
        vec![("name".into(), "BLANK".into()), ("expiresInDays".into(), "INVALID".into())]
    );

    // Revoking stops it at once; revoking twice finds nothing.
    let revoked = ada.data(REVOKE_TOKEN, json!({ "input": { "id": token_id } })).await;
    assert!(revoked["revokeAccessToken"]["accessToken"]["revokedAt"].is_string());
    assert_eq!(script.post("{ viewer { id } }", json!({})).await.status(), 401);
    let again = ada.data(REVOKE_TOKEN, json!({ "input": { "id": token_id } })).await;
    assert_eq!(user_errors(&again["revokeAccessToken"]), vec![("id".into(), "NOT_FOUND".into())]);
    let garbage = ada.data(REVOKE_TOKEN, json!({ "input": { "id": "garbage" } })).await;
    assert_eq!(user_errors(&garbage["revokeAccessToken"]), vec![("id".into(), "NOT_FOUND".into())]);
    let listed = ada.data("{ viewer { accessTokens { edges { node { id } } } } }", json!({})).await;
    assert_eq!(listed["viewer"]["accessTokens"]["edges"], json!([]));
}

async fn access_tokens_belong_to_their_member(app: TestApp) {
    let ada = app.member("ada@example.org", "Ada").await;
    let grace = app.member("grace@example.org", "Grace").await;
    let created = ada.data(CREATE_TOKEN, json!({ "input": { "name": "mine" } })).await;
    let token_id = created["createAccessToken"]["accessToken"]["id"].as_str().unwrap();
    let ada_id = ada.viewer_id().await.unwrap();

    // Grace cannot revoke, see, or list Ada's tokens, nor see her email.
    let attempt = grace.data(REVOKE_TOKEN, json!({ "input": { "id": token_id } })).await;
    assert_eq!(user_errors(&attempt["revokeAccessToken"]), vec![("id".into(), "NOT_FOUND".into())]);
    let node = grace.data("query($id: ID!) { node(id: $id) { id } }", json!({ "id": token_id })).await;
    assert_eq!(node["node"], json!(null));
    let body = grace
        .gql("query($id: ID!) { node(id: $id) { ... on Member { displayName email accessTokens { edges { cursor } } } } }", json!({ "id": ada_id }))
        .await;
    assert_eq!(error_code(&body), "FORBIDDEN");
    let profile = grace
        .data("query($id: ID!) { node(id: $id) { ... on Member { displayName email } } }", json!({ "id": ada_id }))
        .await;
    assert_eq!(profile["node"], json!({ "displayName": "Ada", "email": null }));
    // Ada can fetch her token by id.
    let own =
        ada.data("query($id: ID!) { node(id: $id) { ... on AccessToken { name } } }", json!({ "id": token_id })).await;
    assert_eq!(own["node"]["name"], "mine");
    assert_eq!(app.count("SELECT COUNT(*) FROM access_tokens WHERE revoked_at IS NULL").await, 1);
}

async fn access_tokens_page_with_keyset_cursors(app: TestApp) {
    let ada = app.member("ada@example.org", "Ada").await;
    for i in 0..5 {
        ada.data(CREATE_TOKEN, json!({ "input": { "name": format!("token {i}") } })).await;
    }
    const PAGE: &str = "query($first: Int, $after: String, $last: Int, $before: String) { viewer { accessTokens(first: $first, after: $after, last: $last, before: $before) { edges { cursor node { name } } pageInfo { hasNextPage hasPreviousPage startCursor endCursor } } } }";
    let names = |data: &serde_json::Value| -> Vec<String> {
        data["viewer"]["accessTokens"]["edges"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["node"]["name"].as_str().unwrap().to_string())
            .collect()
    };
    let first = ada.data(PAGE, json!({ "first": 2 })).await;
    assert_eq!(names(&first), ["token 4", "token 3"]);
    assert_eq!(first["viewer"]["accessTokens"]["pageInfo"]["hasNextPage"], true);
    let end = first["viewer"]["accessTokens"]["pageInfo"]["endCursor"].clone();
    // A token created meanwhile does not shift the next page.
    ada.data(CREATE_TOKEN, json!({ "input": { "name": "token 5" } })).await;
    let second = ada.data(PAGE, json!({ "first": 2, "after": end })).await;
    assert_eq!(names(&second), ["token 2", "token 1"]);
    let third =
        ada.data(PAGE, json!({ "first": 2, "after": second["viewer"]["accessTokens"]["pageInfo"]["endCursor"] })).await;
    assert_eq!(names(&third), ["token 0"]);
    assert_eq!(third["viewer"]["accessTokens"]["pageInfo"]["hasNextPage"], false);
    // Backwards from the end.
    let back = ada
        .data(PAGE, json!({ "last": 2, "before": third["viewer"]["accessTokens"]["pageInfo"]["startCursor"] }))
        .await;
    assert_eq!(names(&back), ["token 2", "token 1"]);
    assert_eq!(back["viewer"]["accessTokens"]["pageInfo"]["hasPreviousPage"], true);
    // Limits and garbage.
    for vars in [
        json!({ "first": 101 }),
        json!({ "first": -1 }),
        json!({ "first": 1, "last": 1 }),
        json!({ "after": "bogus!" }),
    ] {
        let body = ada.gql(PAGE, vars.clone()).await;
        assert_eq!(error_code(&body), "BAD_USER_INPUT", "for {vars}");
    }
}

async fn handles_are_unique_and_derived_from_names(app: TestApp) {
    let mut handles = Vec::new();
    for (i, name) in ["Ada Lovelace", "Ada Lovelace", "ada lovelace!", "李", "Zoë"].iter().enumerate() {
        let member = app.member(&format!("member{i}@example.org"), name).await;
        let data = member.data("{ viewer { handle } }", json!({})).await;
        handles.push(data["viewer"]["handle"].as_str().unwrap().to_string());
    }
    assert_eq!(handles, ["ada-lovelace", "ada-lovelace-2", "ada-lovelace-3", "member", "zoe"]);
    let found = app.anonymous().data("{ member(handle: \"@ADA-lovelace-2\") { displayName } }", json!({})).await;
    assert_eq!(found["member"]["displayName"], "Ada Lovelace");
    let missing = app.anonymous().data("{ member(handle: \"nobody\") { displayName } }", json!({})).await;
    assert_eq!(missing["member"], json!(null));
}

const DIRECTORY: &str =
    "query($q: String!, $first: Int, $after: String) { members(startingWith: $q, first: $first, after: $after) { \
    nodes { handle displayName } pageInfo { hasNextPage endCursor } } }";

/// The directory (and `@mention` suggestions) lists members by handle, those whose handle
/// starts with what was typed as a name or a handle; erased members are not in it.
async fn the_member_directory_finds_handles_by_their_start(app: TestApp) {
    for (i, name) in
        ["Grace Hopper", "Grace Kelly", "Gracie Fields", "Ada Lovelace", "Zoë Wanamaker", "Gone"].iter().enumerate()
    {
        app.member(&format!("member{i}@example.org"), name).await;
    }
    app.execute_sql("UPDATE members SET erased_at = 1, display_name = 'a former member' WHERE handle = 'gone'").await;
    let anonymous = app.anonymous();
    let handles = |data: &serde_json::Value| -> Vec<String> {
        let nodes = data["members"]["nodes"].as_array().unwrap();
        nodes.iter().map(|n| n["handle"].as_str().unwrap().to_string()).collect()
    };
    let find = |q: &str| json!({ "q": q, "first": 10 });
    assert_eq!(
        handles(&anonymous.data(DIRECTORY, find("")).await),
        ["ada-lovelace", "grace-hopper", "grace-kelly", "gracie-fields", "zoe-wanamaker"]
    );
    for (typed, found) in [
        ("grace", &["grace-hopper", "grace-kelly"][..]),
        ("Grace H", &["grace-hopper"]),
        ("@GRACE-", &["grace-hopper", "grace-kelly"]),
        ("grac", &["grace-hopper", "grace-kelly", "gracie-fields"]),
        ("Zoë", &["zoe-wanamaker"]),
        ("@", &["ada-lovelace", "grace-hopper", "grace-kelly", "gracie-fields", "zoe-wanamaker"]),
        ("gone", &[]),
        ("%", &[]),
        ("_", &[]),
        ("grace' OR 1=1 --", &[]),
    ] {
        assert_eq!(handles(&anonymous.data(DIRECTORY, find(typed)).await), found, "{typed:?}");
    }
    // A control character is refused, as in any text; long input is cut, not refused.
    let refused: serde_json::Value = anonymous.post(DIRECTORY, find("gra\u{7f}")).await.json().await.unwrap();
    assert_eq!(error_code(&refused), "BAD_USER_INPUT");
    assert!(handles(&anonymous.data(DIRECTORY, find(&"g".repeat(10_000))).await).is_empty());

    // Pages follow each other by handle.
    let first = anonymous.data(DIRECTORY, json!({ "q": "gra", "first": 2 })).await;
    assert_eq!(handles(&first), ["grace-hopper", "grace-kelly"]);
    assert_eq!(first["members"]["pageInfo"]["hasNextPage"], true);
    let after = first["members"]["pageInfo"]["endCursor"].clone();
    let second = anonymous.data(DIRECTORY, json!({ "q": "gra", "first": 2, "after": after })).await;
    assert_eq!(handles(&second), ["gracie-fields"]);
    assert_eq!(second["members"]["pageInfo"]["hasNextPage"], false);
}

/// A prefix is one range of an index compared byte by byte, whatever PostgreSQL's locale.
async fn the_member_directory_reads_one_range_of_an_index(app: TestApp) {
    let db = &app.state().db;
    let first_page = kettle::db::Keyset { after: None, before: None, forward: true, fetch: 11 };
    let sql = kettle::accounts::directory_sql(db.dialect, true, &first_page);
    let plan = query_plan(&app, &sql, |query| {
        query.bind(Some("gra")).bind(Some("gra\u{7f}")).bind(None::<String>).bind(None::<String>).bind(11i64)
    })
    .await
    .join("\n");
    eprintln!("{} plan:\n{plan}", app.backend().name());
    let wanted = match app.backend() {
        Backend::Sqlite => "members_handle_key",
        Backend::Postgres { .. } => "members_handle_bytewise",
    };
    assert!(plan.contains(wanted), "{plan}");
    assert!(!plan.contains("Seq Scan") && !plan.contains("TEMP B-TREE"), "{plan}");
}

const CHANGE_HANDLE: &str = "mutation($handle: String!) { changeHandle(input: { handle: $handle }) { \
    member { handle nextHandleChangeAt } userErrors { field code message } } }";

/// A member chooses a new handle once every 30 days; the old one stays theirs: it finds
/// them, mentions of it reach them, and nobody else can take it.
async fn a_changed_handle_keeps_the_old_one_leading_to_its_member(app: TestApp) {
    let ada = app.member("ada@example.org", "Ada Lovelace").await;
    let grace = app.member("grace@example.org", "Grace Hopper").await;
    let change = |handle: &str| json!({ "handle": handle });
    // Bad handles are refused and change nothing.
    for (handle, code) in [
        ("a", "TOO_SHORT"),
        (&"a".repeat(31)[..], "TOO_LONG"),
        ("Ada", "INVALID"),
        ("-ada", "INVALID"),
        ("ada--l", "INVALID"),
        ("ada_l", "INVALID"),
        ("ädä", "INVALID"),
        ("grace-hopper", "TAKEN"),
    ] {
        let data = ada.data(CHANGE_HANDLE, change(handle)).await;
        assert_eq!(user_errors(&data["changeHandle"]), vec![("handle".into(), code.into())], "{handle}");
    }
    assert_eq!(app.count("SELECT COUNT(*) FROM member_handle_history").await, 0);

    let data = ada.data(CHANGE_HANDLE, change("@countess")).await;
    assert_eq!(data["changeHandle"]["userErrors"], json!([]), "{data}");
    assert_eq!(data["changeHandle"]["member"]["handle"], "countess");
    assert!(data["changeHandle"]["member"]["nextHandleChangeAt"].is_string(), "{data}");
    // The old handle finds her, and a mention of it reaches her.
    let found = app.anonymous().data("{ member(handle: \"ada-lovelace\") { handle } }", json!({})).await;
    assert_eq!(found["member"]["handle"], "countess");
    let known = kettle::accounts::ids_by_handle(&app.state().db, &["ada-lovelace".to_string()]).await.unwrap();
    assert_eq!(known.len(), 1);
    // Nobody else can take it: not by changing, nor by registering with the same name.
    let data = grace.data(CHANGE_HANDLE, change("ada-lovelace")).await;
    assert_eq!(user_errors(&data["changeHandle"]), vec![("handle".into(), "TAKEN".into())]);
    let twin = app.member("twin@example.org", "Ada Lovelace").await;
    assert_eq!(twin.data("{ viewer { handle } }", json!({})).await["viewer"]["handle"], "ada-lovelace-2");
    // A second change within 30 days waits, saying until when.
    let data = ada.data(CHANGE_HANDLE, change("enchantress")).await;
    assert_eq!(user_errors(&data["changeHandle"]), vec![("handle".into(), "LIMIT_REACHED".into())]);
    assert!(data["changeHandle"]["userErrors"][0]["message"]
        .as_str()
        .unwrap()
        .contains("You can change it again from"));
    // A month on, she may take her old handle back; the one she gives up stays hers.
    app.execute_sql("UPDATE members SET handle_changed_at = handle_changed_at - 2678400000 WHERE handle = 'countess'")
        .await;
    let data = ada.data(CHANGE_HANDLE, change("ada-lovelace")).await;
    assert_eq!(data["changeHandle"]["member"]["handle"], "ada-lovelace", "{data}");
    assert_eq!(app.count("SELECT COUNT(*) FROM member_handle_history WHERE handle = 'countess'").await, 1);
    assert_eq!(app.count("SELECT COUNT(*) FROM member_handle_history WHERE handle = 'ada-lovelace'").await, 0);
    // Keeping the handle one has changes nothing and needs no wait.
    let data = grace.data(CHANGE_HANDLE, change("grace-hopper")).await;
    assert_eq!(data["changeHandle"]["member"]["nextHandleChangeAt"], json!(null), "{data}");
    // Signed out, there is nobody to change.
    let anonymous: serde_json::Value = app.anonymous().post(CHANGE_HANDLE, change("x-y")).await.json().await.unwrap();
    assert_eq!(error_code(&anonymous), "UNAUTHENTICATED");
}

/// Several members asking for the same free handle at once: exactly one gets it, the
/// others are told it is taken, and nobody's own handle is lost on the way.
async fn members_asking_for_one_handle_at_once_get_it_once(app: TestApp) {
    let mut members = Vec::new();
    for i in 0..6 {
        members.push(app.member(&format!("m{i}@example.org"), &format!("Member {i}")).await);
    }
    let asks = members.iter().map(|member| member.data(CHANGE_HANDLE, json!({ "handle": "the-one" })));
    let results = futures_util::future::join_all(asks).await;
    let won = results.iter().filter(|r| r["changeHandle"]["userErrors"] == json!([])).count();
    let taken =
        results.iter().filter(|r| user_errors(&r["changeHandle"]) == vec![("handle".into(), "TAKEN".into())]).count();
    assert_eq!((won, taken), (1, 5), "{results:?}");
    assert_eq!(app.count("SELECT COUNT(*) FROM members WHERE handle = 'the-one'").await, 1);
    // Only the winner gave a handle up; the others keep theirs, with no history.
    assert_eq!(app.count("SELECT COUNT(*) FROM member_handle_history").await, 1);
    assert_eq!(app.count("SELECT COUNT(*) FROM members WHERE handle LIKE 'member-%'").await, 5);
}
