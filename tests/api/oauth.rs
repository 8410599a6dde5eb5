//! Signing in with OAuth2 providers (authorization code with PKCE), against the mock
//! provider in `oauth_provider`: new members, returning members, linking by verified
//! email and from settings, disconnecting, every failure, and the configuration.
//!
//! Most scenarios run on a second server configured with mock providers (the mocks must
//! be running first, so their addresses can go in its configuration):
//!
//! - `LOCAL` ("Local ID") and `OTHER` ("Other ID"), each its own mock with the default
//!   fields;
//! - `HUB` (no label, so "Hub"), its own mock, reading `id` (a number), `mail` and `login`,
//!   asking for `read:user user:email`, and with an empty verified-email field: it never
//!   vouches for an email;
//! - `DEAD` ("Dead ID"): authorises at `LOCAL`'s mock, but its token and user-info
//!   endpoints are a port nobody listens on.

use std::{future::Future, panic::AssertUnwindSafe, time::Duration};

use futures_util::FutureExt;
use reqwest::redirect::Policy;
use serde_json::{json, Value};

use crate::{
    oauth_provider::{profile, s256, MockProvider, TokenReply, UserinfoReply, CLIENT_ID, CLIENT_SECRET},
    support::{kettle_command, user_errors, Scenario, TestApp, PASSWORD},
};

/// Scenarios that get a [`Fixture`], named `oauth::<name>` so that `oauth` selects them all.
macro_rules! with_providers {
    ($($name:ident),* $(,)?) => {
        vec![$((concat!("oauth::", stringify!($name)), (|app| Box::pin(with_providers(app, $name))) as Scenario)),*]
    };
}

/// Scenarios that get the plain server, named likewise.
macro_rules! plain {
    ($($name:ident),* $(,)?) => {
        vec![$((concat!("oauth::", stringify!($name)), (|app| Box::pin($name(app))) as Scenario)),*]
    };
}

pub fn scenarios() -> Vec<(&'static str, Scenario)> {
    let mut scenarios = with_providers![
        a_new_member_signs_up_through_a_provider,
        unsafe_return_addresses_land_on_the_home_page,
        a_returning_member_signs_in_to_the_same_account,
        a_verified_email_links_to_the_existing_member,
        an_unverified_email_of_an_existing_member_is_refused,
        a_provider_that_never_verifies_emails_never_links_by_email,
        suspended_members_cannot_sign_in_with_a_provider,
        connecting_from_settings_then_signing_in_with_the_provider,
        an_identity_connected_to_someone_else_cannot_be_connected_again,
        disconnecting_keeps_a_way_to_sign_in,
        disconnecting_through_the_settings_page,
        declined_consent_signs_nobody_in,
        missing_and_unknown_states_are_refused,
        states_are_single_use_and_bound_to_the_browser,
        expired_states_are_refused,
        token_endpoint_failures_sign_nobody_in,
        user_info_failures_sign_nobody_in,
        an_unreachable_provider_signs_nobody_in,
        a_slow_provider_times_out,
        the_sign_in_page_and_the_api_list_the_providers,
        presets_fill_in_the_provider_addresses,
    ];
    scenarios.extend(plain![
        the_mock_provider_insists_on_pkce,
        without_providers_there_are_no_buttons,
        incomplete_provider_configuration_stops_start_up,
        the_client_secret_is_never_logged,
        closed_registration_lets_members_in_but_creates_nobody,
    ]);
    scenarios
}

// ---------------------------------------------------------------------------------------
// The fixture: mocks and a server configured with them
// ---------------------------------------------------------------------------------------

#[derive(Clone)]
struct Fixture {
    app: TestApp,
    local: MockProvider,
    other: MockProvider,
    hub: MockProvider,
}

/// A port nothing listens on (bound, then released).
fn dead_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// Starts the mocks and a server configured with them, runs `test`, and always stops the
/// server (dropping its PostgreSQL database) before passing on a failure.
async fn with_providers<F, Fut>(base: TestApp, test: F)
where
    F: FnOnce(Fixture) -> Fut,
    Fut: Future<Output = ()>,
{
    let (local, other, hub) = (MockProvider::start().await, MockProvider::start().await, MockProvider::start().await);
    let mut vars = local.env("LOCAL", "Local ID");
    vars.extend(other.env("OTHER", "Other ID"));
    vars.extend(hub.env("HUB", ""));
    vars.extend([
        ("KETTLE_OAUTH_HUB_SCOPES".to_string(), "read:user user:email".to_string()),
        ("KETTLE_OAUTH_HUB_SUBJECT_FIELD".to_string(), "id".to_string()),
        ("KETTLE_OAUTH_HUB_EMAIL_FIELD".to_string(), "mail".to_string()),
        ("KETTLE_OAUTH_HUB_EMAIL_VERIFIED_FIELD".to_string(), String::new()),
        ("KETTLE_OAUTH_HUB_NAME_FIELD".to_string(), "login".to_string()),
    ]);
    let dead = format!("http://127.0.0.1:{}", dead_port());
    vars.extend([
        ("KETTLE_OAUTH_DEAD_CLIENT_ID".to_string(), CLIENT_ID.to_string()),
        ("KETTLE_OAUTH_DEAD_CLIENT_SECRET".to_string(), CLIENT_SECRET.to_string()),
        ("KETTLE_OAUTH_DEAD_AUTH_URL".to_string(), local.endpoint("/authorize")),
        ("KETTLE_OAUTH_DEAD_TOKEN_URL".to_string(), format!("{dead}/token")),
        ("KETTLE_OAUTH_DEAD_USERINFO_URL".to_string(), format!("{dead}/userinfo")),
        ("KETTLE_OAUTH_DEAD_LABEL".to_string(), "Dead ID".to_string()),
    ]);
    let refs: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let app = TestApp::spawn_with(base.backend(), &refs).await;
    let fixture = Fixture { app: app.clone(), local: local.clone(), other: other.clone(), hub: hub.clone() };
    let outcome = AssertUnwindSafe(test(fixture)).catch_unwind().await;
    app.finish().await;
    for mock in [local, other, hub] {
        mock.stop();
    }
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

// ---------------------------------------------------------------------------------------
// A browser without JavaScript that follows no redirects by itself
// ---------------------------------------------------------------------------------------

struct Browser {
    app: TestApp,
    http: reqwest::Client,
}

#[derive(Debug)]
struct Reply {
    status: u16,
    location: String,
    cookies: Vec<String>,
    content_type: String,
    body: String,
}

impl Reply {
    /// The session cookie this response sets, if it sets one.
    fn session(&self) -> Option<String> {
        self.cookies
            .iter()
            .filter_map(|c| c.strip_prefix("kettle_session="))
            .map(|rest| rest.split(';').next().unwrap_or("").to_string())
            .find(|value| !value.is_empty())
    }

    /// Asserts a successful sign-in that returns to `location`; the session cookie.
    fn signed_in_to(&self, location: &str) -> String {
        assert_eq!((self.status, self.location.as_str()), (303, location), "{}", self.body);
        let session = self.session().unwrap_or_else(|| panic!("a session cookie in {:?}", self.cookies));
        assert!(session.starts_with("kses_"), "{session}");
        session
    }
}

impl Browser {
    fn new(app: &TestApp) -> Browser {
        let http = reqwest::Client::builder()
            .cookie_store(true)
            .redirect(Policy::none())
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap();
        Browser { app: app.clone(), http }
    }

    async fn get(&self, url: &str) -> Reply {
        let url = if url.starts_with("http") { url.to_string() } else { self.app.url(url) };
        let response = self.http.get(&url).send().await.unwrap_or_else(|e| panic!("GET {url}: {e}"));
        let header = |name: &str| response.headers().get(name).map(|v| v.to_str().unwrap().to_string());
        let (location, content_type) =
            (header("location").unwrap_or_default(), header("content-type").unwrap_or_default());
        let cookies =
            response.headers().get_all("set-cookie").iter().map(|v| v.to_str().unwrap().to_string()).collect();
        Reply {
            status: response.status().as_u16(),
            location,
            cookies,
            content_type,
            body: response.text().await.unwrap(),
        }
    }

    /// Starts at Kettle and lets the provider consent: the callback address the provider
    /// sends the browser back to.
    async fn through_provider(&self, start: &str) -> String {
        let started = self.get(start).await;
        assert_eq!(started.status, 303, "{start}: {}", started.body);
        assert!(
            started.location.starts_with("http://127.0.0.1:"),
            "{start} goes to the provider: {}",
            started.location
        );
        let consented = self.get(&started.location).await;
        assert_eq!(consented.status, 303, "the provider consents: {}", consented.body);
        consented.location
    }

    /// The whole round trip: start, provider, callback.
    async fn sign_in_with(&self, start: &str) -> Reply {
        let callback = self.through_provider(start).await;
        self.get(&callback).await
    }

    /// A GraphQL request with this browser's cookies.
    async fn gql(&self, query: &str, variables: Value) -> Value {
        let response = self
            .http
            .post(self.app.url("/graphql"))
            .json(&json!({ "query": query, "variables": variables }))
            .send()
            .await
            .unwrap();
        let body: Value = response.json().await.unwrap();
        assert!(body.get("errors").is_none(), "{body}");
        body["data"].clone()
    }

    /// Registers with a password through the API, then signs this browser in with it
    /// (registering does not sign in).
    async fn register(&self, email: &str, name: &str) {
        let data = self
            .gql(
                "mutation($input: RegisterInput!) { register(input: $input) { userErrors { code } } }",
                json!({ "input": { "email": email, "password": PASSWORD, "displayName": name } }),
            )
            .await;
        assert_eq!(data["register"]["userErrors"], json!([]));
        let data = self
            .gql(
                "mutation($input: SignInInput!) { signIn(input: $input) { userErrors { code } } }",
                json!({ "input": { "email": email, "password": PASSWORD } }),
            )
            .await;
        assert_eq!(data["signIn"]["userErrors"], json!([]));
    }
}

// ---------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------

#[derive(Debug, PartialEq, Eq)]
struct Counts {
    members: i64,
    identities: i64,
    sessions: i64,
}

async fn counts(app: &TestApp) -> Counts {
    Counts {
        members: app.count("SELECT COUNT(*) FROM members").await,
        identities: app.count("SELECT COUNT(*) FROM member_identities").await,
        sessions: app.count("SELECT COUNT(*) FROM sessions").await,
    }
}

/// A failure: an HTML page with `status` saying each of `words` (ignoring case), no
/// session, and nothing created since `before`.
async fn assert_failure(app: &TestApp, before: &Counts, reply: &Reply, status: u16, words: &[&str]) {
    assert_eq!(reply.status, status, "{}", reply.body);
    assert!(reply.content_type.starts_with("text/html"), "an HTML page, not {}", reply.content_type);
    let text = page_text(&reply.body).to_lowercase();
    for word in words {
        assert!(text.contains(&word.to_lowercase()), "{word:?} is not in the page: {text}");
    }
    assert_eq!(reply.session(), None, "no session: {:?}", reply.cookies);
    assert_eq!(&counts(app).await, before, "nothing was created");
}

/// minijinja's escapes, undone.
fn unescape(text: &str) -> String {
    text.replace("&#x2f;", "/")
        .replace("&#x27;", "'")
        .replace("&quot;", "\"")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&#x3d;", "=")
        .replace("&amp;", "&")
}

/// The text of a fragment of HTML, tags removed and spaces collapsed.
fn page_text(html: &str) -> String {
    let mut text = String::new();
    let mut in_tag = false;
    for c in html.chars() {
        match c {
            '<' => in_tag = true,
            '>' if in_tag => {
                in_tag = false;
                text.push(' ');
            }
            _ if !in_tag => text.push(c),
            _ => {}
        }
    }
    unescape(&text.split_whitespace().collect::<Vec<_>>().join(" "))
}

/// The page's links as (text, href).
fn links(html: &str) -> Vec<(String, String)> {
    let mut found = Vec::new();
    let mut rest = html;
    while let Some(start) = rest.find("<a ") {
        rest = &rest[start..];
        let (Some(tag_end), Some(close)) = (rest.find('>'), rest.find("</a>")) else { break };
        let tag = &rest[..tag_end];
        let href = tag.find("href=\"").map(|i| tag[i + 6..].split('"').next().unwrap_or("")).unwrap_or("");
        found.push((page_text(&rest[tag_end + 1..close]), unescape(href)));
        rest = &rest[close..];
    }
    found
}

/// The href of the link whose text is `text`, if there is one.
fn link_to(html: &str, text: &str) -> Option<String> {
    links(html).into_iter().find(|(t, _)| t == text).map(|(_, href)| href)
}

/// A URL's query as a map.
fn query_of(url: &str) -> std::collections::HashMap<String, String> {
    url::Url::parse(url).unwrap().query_pairs().into_owned().collect()
}

const VIEWER: &str = "{ viewer { id email displayName identities { provider label email createdAt } } }";

async fn viewer(app: &TestApp, session: &str) -> Value {
    app.anonymous().with_cookie(session).data(VIEWER, json!({})).await["viewer"].clone()
}

async fn member_id(app: &TestApp, email: &str) -> i64 {
    app.count(&format!("SELECT id FROM members WHERE email_normalized = '{}'", email.to_lowercase())).await
}

// ---------------------------------------------------------------------------------------
// Signing in
// ---------------------------------------------------------------------------------------

async fn a_new_member_signs_up_through_a_provider(f: Fixture) {
    let app = &f.app;
    f.local.set_profile(profile("ada-1", "ada@example.org", true, "Ada Lovelace"));
    let browser = Browser::new(app);

    // Leaving for the provider: everything a PKCE authorisation request needs, and a CSRF
    // cookie for a browser that had none.
    let started = browser.get("/auth/local/start?return_to=/settings").await;
    assert_eq!(started.status, 303, "{}", started.body);
    assert!(started.location.starts_with(&f.local.endpoint("/authorize?")), "{}", started.location);
    assert!(started.cookies.iter().any(|c| c.starts_with("kettle_csrf=")), "{:?}", started.cookies);
    let query = query_of(&started.location);
    assert_eq!(query["response_type"], "code");
    assert_eq!(query["client_id"], CLIENT_ID);
    assert_eq!(query["redirect_uri"], app.url("/auth/local/callback"));
    assert_eq!(query["scope"], "openid email profile");
    assert_eq!(query["code_challenge_method"], "S256");
    assert_eq!(query["code_challenge"].len(), 43, "a SHA-256 challenge: {}", query["code_challenge"]);
    assert!(query["state"].len() >= 16, "a random state: {}", query["state"]);
    assert!(!started.location.contains(CLIENT_SECRET));
    // Each start has its own state and challenge.
    let again = query_of(&Browser::new(app).get("/auth/local/start").await.location);
    assert_ne!(again["state"], query["state"]);
    assert_ne!(again["code_challenge"], query["code_challenge"]);

    // The provider consents and sends the browser back; Kettle creates the member.
    let consented = browser.get(&started.location).await;
    assert_eq!(consented.status, 303, "{}", consented.body);
    assert!(consented.location.starts_with(&app.url("/auth/local/callback?")), "{}", consented.location);
    let reply = browser.get(&consented.location).await;
    let session = reply.signed_in_to("/settings");
    assert!(reply.cookies.iter().any(|c| c.starts_with("kettle_session=") && c.contains("HttpOnly")));

    let ada = viewer(app, &session).await;
    assert_eq!(ada["email"], "ada@example.org");
    assert_eq!(ada["displayName"], "Ada Lovelace");
    assert_eq!(ada["identities"].as_array().unwrap().len(), 1, "{ada}");
    let identity = &ada["identities"][0];
    assert_eq!(
        (&identity["provider"], &identity["label"], &identity["email"]),
        (&json!("local"), &json!("Local ID"), &json!("ada@example.org"))
    );
    assert!(identity["createdAt"].is_string() || identity["createdAt"].is_number(), "{identity}");
    assert_eq!(counts(app).await, Counts { members: 1, identities: 1, sessions: 1 });
    let id = member_id(app, "ada@example.org").await;
    let linked = format!(
        "SELECT COUNT(*) FROM member_identities WHERE provider = 'local' AND subject = 'ada-1' AND member_id = {id} AND email = 'ada@example.org'"
    );
    assert_eq!(app.count(&linked).await, 1);
    assert_eq!(app.count("SELECT COUNT(*) FROM members WHERE password_hash IS NULL").await, 1, "no password");
    // The provider verified the address, so Kettle need not send a link to verify it.
    assert_eq!(app.count("SELECT COUNT(*) FROM members WHERE email_verified_at IS NOT NULL").await, 1);
    // The settings page it returned to works with that session.
    let settings = browser.get("/settings").await;
    assert_eq!(settings.status, 200);
    assert!(page_text(&settings.body).contains("ada@example.org"));

    // The provider checked the PKCE verifier and the client, and was asked for the profile
    // with the token it issued.
    let received = f.local.received();
    assert_eq!(received.exchanges_verified, 1, "{:?}", received.exchanges_refused);
    let form = &received.token_forms[0];
    assert_eq!(form["grant_type"], "authorization_code");
    assert_eq!(form["redirect_uri"], app.url("/auth/local/callback"));
    assert_eq!(s256(&form["code_verifier"]), query["code_challenge"]);
    assert!((43..=128).contains(&form["code_verifier"].len()));
    assert!(received.basic_auth == 1 || form.get("client_secret").map(String::as_str) == Some(CLIENT_SECRET));
    assert_eq!(received.userinfo_requests.len(), 1);
    assert!(received.userinfo_requests[0].starts_with("Bearer "), "{:?}", received.userinfo_requests);

    // Without a name, the display name is the email's local part; without a return
    // address, the home page.
    f.local.set_profile(json!({ "sub": "grace-1", "email": "grace@example.org", "email_verified": true }));
    let grace = Browser::new(app);
    let session = grace.sign_in_with("/auth/local/start").await.signed_in_to("/");
    assert_eq!(viewer(app, &session).await["displayName"], "grace");

    // A numeric subject is read as text.
    f.local.set_profile(json!({ "sub": 4242, "email": "alan@example.org", "email_verified": true, "name": "Alan" }));
    Browser::new(app).sign_in_with("/auth/local/start").await.signed_in_to("/");
    assert_eq!(app.count("SELECT COUNT(*) FROM member_identities WHERE subject = '4242'").await, 1);
    assert_eq!(counts(app).await, Counts { members: 3, identities: 3, sessions: 3 });
}

async fn unsafe_return_addresses_land_on_the_home_page(f: Fixture) {
    let app = &f.app;
    f.local.set_profile(profile("ada-1", "ada@example.org", true, "Ada"));
    let encode = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    let inside = format!("/auth/local/start?return_to={}", encode("/case-studies?topic=waste"));
    Browser::new(app).sign_in_with(&inside).await.signed_in_to("/case-studies?topic=waste");
    for evil in ["//evil.example", "https://evil.example/", "/\\evil.example", "javascript:alert(1)", "evil.example"] {
        let start = format!("/auth/local/start?return_to={}", encode(evil));
        let reply = Browser::new(app).sign_in_with(&start).await;
        assert_eq!((reply.status, reply.location.as_str()), (303, "/"), "{evil}");
        assert!(reply.session().is_some(), "{evil}: still signed in");
    }
    assert_eq!(app.count("SELECT COUNT(*) FROM members").await, 1);
}

async fn a_returning_member_signs_in_to_the_same_account(f: Fixture) {
    let app = &f.app;
    f.local.set_profile(profile("ada-1", "ada@example.org", true, "Ada Lovelace"));
    let first = Browser::new(app).sign_in_with("/auth/local/start").await.signed_in_to("/");
    let id = viewer(app, &first).await["id"].clone();

    // Later, in another browser, and with a changed email and name at the provider: the
    // identity decides, so it is the same member.
    f.local.set_profile(profile("ada-1", "ada.lovelace@example.net", true, "Ada King"));
    let second = Browser::new(app).sign_in_with("/auth/local/start").await.signed_in_to("/");
    assert_ne!(first, second, "a new session");
    assert_eq!(viewer(app, &second).await["id"], id);
    assert_eq!(counts(app).await, Counts { members: 1, identities: 1, sessions: 2 });
    assert_eq!(f.local.received().exchanges_verified, 2);
}

async fn a_verified_email_links_to_the_existing_member(f: Fixture) {
    let app = &f.app;
    let ada = app.member("ada@example.org", "Ada Lovelace").await;
    let id = ada.viewer_id().await.unwrap();
    f.local.set_profile(profile("ada-1", "ada@example.org", true, "Someone Else"));
    let session =
        Browser::new(app).sign_in_with("/auth/local/start?return_to=/settings").await.signed_in_to("/settings");
    let viewer = viewer(app, &session).await;
    assert_eq!(viewer["id"], id);
    assert_eq!(viewer["displayName"], "Ada Lovelace", "the member's own name is kept");
    assert_eq!(viewer["identities"][0]["provider"], "local");
    assert_eq!(app.count("SELECT COUNT(*) FROM members").await, 1);
    let member = member_id(app, "ada@example.org").await;
    assert_eq!(app.count(&format!("SELECT COUNT(*) FROM member_identities WHERE member_id = {member}")).await, 1);
    // The provider vouched for the address the member registered with.
    let verified = format!("SELECT COUNT(*) FROM members WHERE id = {member} AND email_verified_at IS NOT NULL");
    assert_eq!(app.count(&verified).await, 1);
    // The password still works too.
    let signed_in = app
        .anonymous()
        .data(
            "mutation($input: SignInInput!) { signIn(input: $input) { member { id } } }",
            json!({ "input": { "email": "ada@example.org", "password": PASSWORD } }),
        )
        .await;
    assert_eq!(signed_in["signIn"]["member"]["id"], id);
}

async fn an_unverified_email_of_an_existing_member_is_refused(f: Fixture) {
    let app = &f.app;
    app.member("ada@example.org", "Ada Lovelace").await;
    let before = counts(app).await;
    for (label, profile) in [
        ("unverified", profile("mallory-1", "ada@example.org", false, "Mallory")),
        ("not said", json!({ "sub": "mallory-2", "email": "ada@example.org", "name": "Mallory" })),
        ("unverified, other case", profile("mallory-3", "ADA@Example.org", false, "Mallory")),
    ] {
        f.local.set_profile(profile);
        let reply = Browser::new(app).sign_in_with("/auth/local/start").await;
        assert_failure(app, &before, &reply, 409, &["already has an account"]).await;
        assert!(!reply.body.contains("mallory"), "{label}");
    }
}

async fn a_provider_that_never_verifies_emails_never_links_by_email(f: Fixture) {
    let app = &f.app;
    app.member("ada@example.org", "Ada Lovelace").await;
    let before = counts(app).await;
    // HUB's verified-email field is empty: its `email_verified: true` means nothing.
    f.hub.set_profile(json!({ "id": 77, "mail": "ada@example.org", "email_verified": true, "login": "ada" }));
    let browser = Browser::new(app);
    let started = browser.get("/auth/hub/start").await;
    let query = query_of(&started.location);
    assert_eq!(query["scope"], "read:user user:email");
    assert_eq!(query["redirect_uri"], app.url("/auth/hub/callback"));
    let reply = browser.get(&browser.get(&started.location).await.location).await;
    assert_failure(app, &before, &reply, 409, &["already has an account"]).await;

    // A new email makes a new member, read through HUB's field names.
    f.hub.set_profile(json!({ "id": 78, "mail": "grace@example.org", "login": "ghopper" }));
    let session = Browser::new(app).sign_in_with("/auth/hub/start").await.signed_in_to("/");
    let grace = viewer(app, &session).await;
    assert_eq!((&grace["email"], &grace["displayName"]), (&json!("grace@example.org"), &json!("ghopper")));
    // A provider that verifies nothing vouches for nothing.
    let unverified =
        "SELECT COUNT(*) FROM members WHERE email_normalized = 'grace@example.org' AND email_verified_at IS NULL";
    assert_eq!(app.count(unverified).await, 1);
    assert_eq!(grace["identities"][0]["label"], "Hub");
    assert_eq!(app.count("SELECT COUNT(*) FROM member_identities WHERE provider = 'hub' AND subject = '78'").await, 1);
}

/// As with a password (`accounts::suspended_members_cannot_sign_in`): no session is made,
/// whether the identity is linked already or found by its verified email.
async fn suspended_members_cannot_sign_in_with_a_provider(f: Fixture) {
    let app = &f.app;
    f.local.set_profile(profile("ada-1", "ada@example.org", true, "Ada"));
    Browser::new(app).sign_in_with("/auth/local/start").await.signed_in_to("/");
    app.member("grace@example.org", "Grace").await;
    app.execute_sql(&format!("UPDATE members SET suspended_at = {}", kettle::db::now_millis())).await;
    let before = counts(app).await;
    for (who, profile) in [
        ("linked", profile("ada-1", "ada@example.org", true, "Ada")),
        ("by verified email", profile("grace-1", "grace@example.org", true, "Grace")),
    ] {
        f.local.set_profile(profile);
        let reply = Browser::new(app).sign_in_with("/auth/local/start").await;
        assert!(reply.session().is_none(), "{who}: a session for a suspended member: {reply:?}");
        assert!((400..500).contains(&reply.status), "{who}: {}: {}", reply.status, reply.body);
        assert_eq!(counts(app).await.sessions, before.sessions, "{who}");
    }
}

// ---------------------------------------------------------------------------------------
// Connecting and disconnecting
// ---------------------------------------------------------------------------------------

async fn connecting_from_settings_then_signing_in_with_the_provider(f: Fixture) {
    let app = &f.app;
    let browser = Browser::new(app);
    browser.register("ada@example.org", "Ada Lovelace").await;
    let id = browser.gql("{ viewer { id } }", json!({})).await["viewer"]["id"].clone();

    // Settings offers each provider not yet connected.
    let settings = browser.get("/settings").await;
    assert_eq!(settings.status, 200);
    let href = link_to(&settings.body, "Connect Local ID").unwrap_or_else(|| panic!("{:?}", links(&settings.body)));
    let href = url::Url::parse(&app.url("/")).unwrap().join(&href).unwrap();
    assert_eq!(href.path(), "/auth/local/start");
    assert_eq!(query_of(href.as_str()).get("link").map(String::as_str), Some("1"));
    assert!(link_to(&settings.body, "Connect Other ID").is_some());

    // Any email will do when connecting: the member is signed in.
    f.local.set_profile(profile("ada-work", "ada@work.example", false, "A. Lovelace"));
    let reply = browser.sign_in_with(href.as_str()).await;
    assert_eq!((reply.status, reply.location.as_str()), (303, "/settings?connected=local"), "{}", reply.body);
    let identities = browser.gql("{ viewer { identities { provider label email } } }", json!({})).await;
    assert_eq!(
        identities["viewer"]["identities"],
        json!([{ "provider": "local", "label": "Local ID", "email": "ada@work.example" }])
    );
    let settings = browser.get("/settings?connected=local").await;
    assert!(page_text(&settings.body).contains("ada@work.example"), "settings lists the connection");
    assert!(link_to(&settings.body, "Connect Local ID").is_none(), "no longer offered");
    assert!(link_to(&settings.body, "Connect Other ID").is_some());

    // Signed out, the provider signs Ada in to the same account.
    let out = browser.gql("mutation { signOut { signedOut } }", json!({})).await;
    assert_eq!(out["signOut"]["signedOut"], true);
    let session = Browser::new(app).sign_in_with("/auth/local/start").await.signed_in_to("/");
    assert_eq!(viewer(app, &session).await["id"], id);
    assert_eq!(app.count("SELECT COUNT(*) FROM members").await, 1);

    // Connecting needs signing in first.
    let anonymous = Browser::new(app).get("/auth/local/start?link=1").await;
    assert!(!anonymous.location.starts_with(&f.local.url), "not sent to the provider: {}", anonymous.location);
}

async fn an_identity_connected_to_someone_else_cannot_be_connected_again(f: Fixture) {
    let app = &f.app;
    f.local.set_profile(profile("grace-1", "grace@example.org", true, "Grace Hopper"));
    Browser::new(app).sign_in_with("/auth/local/start").await.signed_in_to("/");
    let grace = member_id(app, "grace@example.org").await;

    let ada = Browser::new(app);
    ada.register("ada@example.org", "Ada Lovelace").await;
    let before = counts(app).await;
    let reply = ada.sign_in_with("/auth/local/start?link=1").await;
    assert_failure(app, &before, &reply, 409, &["already connected"]).await;
    let identities = ada.gql("{ viewer { identities { provider } } }", json!({})).await;
    assert_eq!(identities["viewer"]["identities"], json!([]));
    let still = format!("SELECT COUNT(*) FROM member_identities WHERE subject = 'grace-1' AND member_id = {grace}");
    assert_eq!(app.count(&still).await, 1);
}

const DISCONNECT: &str = "mutation($input: DisconnectIdentityInput!) { disconnectIdentity(input: $input) { member { id } userErrors { field message code } } }";

async fn disconnecting_keeps_a_way_to_sign_in(f: Fixture) {
    let app = &f.app;
    // Grace has no password: her only provider is her only way in.
    let grace = Browser::new(app);
    f.local.set_profile(profile("grace-1", "grace@example.org", true, "Grace Hopper"));
    let session = grace.sign_in_with("/auth/local/start").await.signed_in_to("/");
    let client = app.anonymous().with_cookie(&session);
    let refused = client.data(DISCONNECT, json!({ "input": { "provider": "local" } })).await;
    assert_eq!(user_errors(&refused["disconnectIdentity"]), vec![("provider".to_string(), "INVALID".to_string())]);
    assert!(!refused["disconnectIdentity"]["userErrors"][0]["message"].as_str().unwrap().is_empty());
    assert_eq!(app.count("SELECT COUNT(*) FROM member_identities").await, 1);
    let not_connected = client.data(DISCONNECT, json!({ "input": { "provider": "other" } })).await;
    assert_eq!(
        user_errors(&not_connected["disconnectIdentity"]),
        vec![("provider".to_string(), "NOT_FOUND".to_string())]
    );

    // With a second provider connected, one may go; then the other is the last.
    f.other.set_profile(profile("grace-other", "grace@other.example", true, "Grace"));
    let reply = grace.sign_in_with("/auth/other/start?link=1").await;
    assert_eq!((reply.status, reply.location.as_str()), (303, "/settings?connected=other"), "{}", reply.body);
    let done = client.data(DISCONNECT, json!({ "input": { "provider": "local" } })).await;
    assert_eq!(done["disconnectIdentity"]["userErrors"], json!([]));
    assert!(done["disconnectIdentity"]["member"]["id"].is_string());
    let refused = client.data(DISCONNECT, json!({ "input": { "provider": "other" } })).await;
    assert_eq!(user_errors(&refused["disconnectIdentity"]), vec![("provider".to_string(), "INVALID".to_string())]);
    let left = client.data("{ viewer { identities { provider } } }", json!({})).await;
    assert_eq!(left["viewer"]["identities"], json!([{ "provider": "other" }]));

    // Ada has a password, so her only provider may go.
    let ada = Browser::new(app);
    ada.register("ada@example.org", "Ada Lovelace").await;
    f.local.set_profile(profile("ada-1", "ada@work.example", true, "Ada"));
    let reply = ada.sign_in_with("/auth/local/start?link=1").await;
    assert_eq!(reply.location, "/settings?connected=local", "{}", reply.body);
    let done = ada.gql(DISCONNECT, json!({ "input": { "provider": "local" } })).await;
    assert_eq!(done["disconnectIdentity"]["userErrors"], json!([]));
    assert_eq!(ada.gql("{ viewer { identities { provider } } }", json!({})).await["viewer"]["identities"], json!([]));
    let ada_id = member_id(app, "ada@example.org").await;
    assert_eq!(app.count(&format!("SELECT COUNT(*) FROM member_identities WHERE member_id = {ada_id}")).await, 0);

    // Anonymous visitors cannot disconnect anything.
    let response = app.anonymous().post(DISCONNECT, json!({ "input": { "provider": "other" } })).await;
    let body: Value = response.json().await.unwrap();
    assert!(body.get("errors").is_some(), "{body}");
    assert_eq!(app.count("SELECT COUNT(*) FROM member_identities").await, 1);
}

/// The settings page's form posts `disconnectIdentity`: refused as the last way in, with
/// the reason on the page; done otherwise.
async fn disconnecting_through_the_settings_page(f: Fixture) {
    let app = &f.app;
    f.local.set_profile(profile("grace-1", "grace@example.org", true, "Grace Hopper"));
    f.other.set_profile(profile("grace-2", "grace@other.example", true, "Grace"));
    let grace = Browser::new(app);
    grace.sign_in_with("/auth/local/start").await.signed_in_to("/");
    let settings = grace.get("/settings").await;
    let text = page_text(&settings.body);
    assert!(text.contains("Connected as grace@example.org"), "{text}");
    let token = csrf_token(&settings.body);

    let post = |fields: Vec<(&'static str, String)>| {
        let http = grace.http.clone();
        let url = app.url("/settings/connections/disconnect");
        async move {
            let response = http.post(url).form(&fields).send().await.unwrap();
            let status = response.status().as_u16();
            let location = response.headers().get("location").map(|l| l.to_str().unwrap().to_string());
            (status, location, response.text().await.unwrap())
        }
    };
    let (status, _, body) = post(vec![("csrf_token", token.clone()), ("provider", "local".into())]).await;
    assert_eq!(status, 422, "{body}");
    assert!(page_text(&body).contains("only way you can sign in"), "{}", page_text(&body));
    assert_eq!(app.count("SELECT COUNT(*) FROM member_identities").await, 1);
    // Without the CSRF token nothing happens either.
    let (status, _, _) = post(vec![("provider", "local".into())]).await;
    assert_ne!(status, 303);

    let reply = grace.sign_in_with("/auth/other/start?link=1").await;
    assert_eq!(reply.location, "/settings?connected=other", "{}", reply.body);
    let (status, location, body) = post(vec![("csrf_token", token), ("provider", "local".into())]).await;
    assert_eq!((status, location.as_deref()), (303, Some("/settings?saved=disconnected")), "{body}");
    let settings = grace.get("/settings?saved=disconnected").await;
    assert!(page_text(&settings.body).contains("The provider is disconnected"));
    assert!(link_to(&settings.body, "Connect Local ID").is_some(), "offered again");
    assert_eq!(app.count("SELECT COUNT(*) FROM member_identities WHERE provider = 'other'").await, 1);
    assert_eq!(app.count("SELECT COUNT(*) FROM member_identities").await, 1);
}

fn csrf_token(html: &str) -> String {
    let start = html.find("name=\"csrf_token\" value=\"").expect("a form with a CSRF token") + 25;
    html[start..].split('"').next().unwrap().to_string()
}

// ---------------------------------------------------------------------------------------
// Failures
// ---------------------------------------------------------------------------------------

async fn declined_consent_signs_nobody_in(f: Fixture) {
    let app = &f.app;
    let before = counts(app).await;
    f.local.set(|b| b.decline = true);
    let browser = Browser::new(app);
    let callback = browser.through_provider("/auth/local/start").await;
    assert_eq!(query_of(&callback).get("error").map(String::as_str), Some("access_denied"));
    let reply = browser.get(&callback).await;
    assert_failure(app, &before, &reply, 400, &["declined"]).await;
    assert!(f.local.received().token_forms.is_empty(), "no code was exchanged");
}

async fn missing_and_unknown_states_are_refused(f: Fixture) {
    let app = &f.app;
    f.local.set_profile(profile("ada-1", "ada@example.org", true, "Ada"));
    let browser = Browser::new(app);
    // A real code from the provider, but not with the state it came with.
    let callback = browser.through_provider("/auth/local/start").await;
    let code = query_of(&callback)["code"].clone();
    let before = counts(app).await;
    for path in [
        format!("/auth/local/callback?code={code}"),
        format!("/auth/local/callback?code={code}&state=nope"),
        "/auth/local/callback".to_string(),
        "/auth/local/callback?state=nope".to_string(),
    ] {
        let reply = browser.get(&path).await;
        assert_failure(app, &before, &reply, 400, &["expired"]).await;
    }
    assert!(f.local.received().token_forms.is_empty(), "no code was exchanged");
    // A provider that is not configured has no callback.
    assert_eq!(browser.get("/auth/nosuch/callback?state=x&code=y").await.status, 404);
    assert_eq!(browser.get("/auth/nosuch/start").await.status, 404);
}

async fn states_are_single_use_and_bound_to_the_browser(f: Fixture) {
    let app = &f.app;
    f.local.set_profile(profile("ada-1", "ada@example.org", true, "Ada"));

    // Another browser cannot finish a sign-in this one started.
    let before = counts(app).await;
    let ada = Browser::new(app);
    let callback = ada.through_provider("/auth/local/start").await;
    let reply = Browser::new(app).get(&callback).await;
    assert_failure(app, &before, &reply, 400, &["expired"]).await;
    // Nor can one with a CSRF cookie of its own.
    let other = Browser::new(app);
    assert_eq!(other.get("/sign-in").await.status, 200);
    let callback = ada.through_provider("/auth/local/start").await;
    let reply = other.get(&callback).await;
    assert_failure(app, &before, &reply, 400, &["expired"]).await;
    assert_eq!(f.local.received().exchanges_verified, 0, "no code was exchanged");

    // The browser that started it can, once.
    let callback = ada.through_provider("/auth/local/start").await;
    ada.get(&callback).await.signed_in_to("/");
    let after = counts(app).await;
    let replay = ada.get(&callback).await;
    assert_failure(app, &after, &replay, 400, &["expired"]).await;
    assert_eq!(f.local.received().token_forms.len(), 1, "the replay never reached the provider");
}

async fn expired_states_are_refused(f: Fixture) {
    let app = &f.app;
    f.local.set_profile(profile("ada-1", "ada@example.org", true, "Ada"));
    let before = counts(app).await;
    let browser = Browser::new(app);
    let callback = browser.through_provider("/auth/local/start").await;
    assert_eq!(app.count("SELECT COUNT(*) FROM oauth_states").await, 1);
    // Ten minutes pass.
    let ten_minutes = 10 * 60 * 1000;
    assert!(
        app.count(&format!("SELECT COUNT(*) FROM oauth_states WHERE expires_at - created_at = {ten_minutes}")).await
            == 1,
        "states last ten minutes"
    );
    app.execute_sql("UPDATE oauth_states SET expires_at = 0").await;
    let reply = browser.get(&callback).await;
    assert_failure(app, &before, &reply, 400, &["expired"]).await;
    assert!(f.local.received().token_forms.is_empty(), "no code was exchanged");
}

async fn token_endpoint_failures_sign_nobody_in(f: Fixture) {
    let app = &f.app;
    f.local.set_profile(profile("ada-1", "ada@example.org", true, "Ada"));
    let before = counts(app).await;
    for (reply, status, words) in [
        (TokenReply::InvalidGrant, 400, &["did not accept"][..]),
        (TokenReply::NotJson, 502, &["could not use"][..]),
        (TokenReply::NoAccessToken, 502, &["could not use"][..]),
        (TokenReply::Redirect, 502, &["could not use"][..]),
    ] {
        f.local.set(|b| b.token = reply);
        let page = Browser::new(app).sign_in_with("/auth/local/start").await;
        assert_eq!(page.status, status, "{reply:?}: {}", page.body);
        assert_failure(app, &before, &page, status, words).await;
    }
    assert_eq!(f.local.received().redirects_followed, 0, "the token endpoint's redirect was not followed");
    assert!(f.local.received().userinfo_requests.is_empty());
    // And it still works once the provider behaves.
    f.local.set(|b| b.token = TokenReply::Normal);
    Browser::new(app).sign_in_with("/auth/local/start").await.signed_in_to("/");
}

async fn user_info_failures_sign_nobody_in(f: Fixture) {
    let app = &f.app;
    f.local.set_profile(profile("ada-1", "ada@example.org", true, "Ada"));
    let before = counts(app).await;
    for reply in [UserinfoReply::ServerError, UserinfoReply::NotJson, UserinfoReply::NoSubject] {
        f.local.set(|b| b.userinfo = reply);
        let page = Browser::new(app).sign_in_with("/auth/local/start").await;
        assert_eq!(page.status, 502, "{reply:?}: {}", page.body);
        assert_failure(app, &before, &page, 502, &["could not use"]).await;
    }
    assert_eq!(f.local.received().userinfo_requests.len(), 3);
}

async fn an_unreachable_provider_signs_nobody_in(f: Fixture) {
    let app = &f.app;
    let before = counts(app).await;
    // DEAD authorises at the LOCAL mock, whose token endpoint then refuses connections.
    let reply = Browser::new(app).sign_in_with("/auth/dead/start").await;
    assert!(matches!(reply.status, 502 | 504), "{}: {}", reply.status, reply.body);
    assert_failure(app, &before, &reply, reply.status, &["Dead ID", "reach"]).await;
}

async fn a_slow_provider_times_out(f: Fixture) {
    let app = &f.app;
    f.local.set_profile(profile("ada-1", "ada@example.org", true, "Ada"));
    f.local.set(|b| b.token = TokenReply::Slow);
    let before = counts(app).await;
    let browser = Browser::new(app);
    let callback = browser.through_provider("/auth/local/start").await;
    let started = std::time::Instant::now();
    let reply = browser.get(&callback).await;
    let waited = started.elapsed();
    assert!(matches!(reply.status, 502 | 504), "{}: {}", reply.status, reply.body);
    assert_failure(app, &before, &reply, reply.status, &["Local ID"]).await;
    assert!(waited >= Duration::from_secs(4) && waited < Duration::from_millis(7500), "gave up after {waited:?}");
}

// ---------------------------------------------------------------------------------------
// Pages, API and configuration
// ---------------------------------------------------------------------------------------

async fn the_sign_in_page_and_the_api_list_the_providers(f: Fixture) {
    let app = &f.app;
    let page = Browser::new(app).get("/sign-in").await;
    assert_eq!(page.status, 200);
    for (name, label) in [("local", "Local ID"), ("other", "Other ID"), ("hub", "Hub"), ("dead", "Dead ID")] {
        let href = link_to(&page.body, &format!("Sign in with {label}"))
            .unwrap_or_else(|| panic!("a {label} button in {:?}", links(&page.body)));
        assert_eq!(href, format!("/auth/{name}/start"));
    }
    assert!(!page.body.contains(CLIENT_SECRET) && !page.body.contains(CLIENT_ID));
    // The return address goes along.
    let page = Browser::new(app).get("/sign-in?return_to=/case-studies").await;
    let href = link_to(&page.body, "Sign in with Local ID").unwrap();
    let href = url::Url::parse(&app.url("/")).unwrap().join(&href).unwrap();
    assert_eq!(href.path(), "/auth/local/start");
    assert_eq!(query_of(href.as_str())["return_to"], "/case-studies");

    let response = app.anonymous().post("{ oauthProviders { name label } }", json!({})).await;
    let text = response.text().await.unwrap();
    assert!(!text.contains(CLIENT_SECRET) && !text.contains(CLIENT_ID), "{text}");
    let body: Value = serde_json::from_str(&text).unwrap();
    let mut listed: Vec<(String, String)> = body["data"]["oauthProviders"]
        .as_array()
        .unwrap_or_else(|| panic!("{body}"))
        .iter()
        .map(|p| (p["name"].as_str().unwrap().to_string(), p["label"].as_str().unwrap().to_string()))
        .collect();
    listed.sort();
    let expected = [("dead", "Dead ID"), ("hub", "Hub"), ("local", "Local ID"), ("other", "Other ID")];
    assert_eq!(listed, expected.map(|(n, l)| (n.to_string(), l.to_string())));
    // The type has nothing secret to ask for.
    let typename = app.anonymous().data("{ oauthProviders { __typename } }", json!({})).await["oauthProviders"][0]
        ["__typename"]
        .as_str()
        .unwrap()
        .to_string();
    let fields = app
        .anonymous()
        .data("query($t: String!) { __type(name: $t) { fields { name } } }", json!({ "t": typename }))
        .await;
    for field in fields["__type"]["fields"].as_array().unwrap() {
        let name = field["name"].as_str().unwrap().to_lowercase();
        assert!(!name.contains("secret") && !name.contains("client"), "{name}");
    }
}

async fn presets_fill_in_the_provider_addresses(f: Fixture) {
    let app = TestApp::spawn_with(
        f.app.backend(),
        &[
            ("KETTLE_OAUTH_GH_PRESET", "github"),
            ("KETTLE_OAUTH_GH_CLIENT_ID", "gh-client"),
            ("KETTLE_OAUTH_GH_CLIENT_SECRET", "gh-secret"),
            ("KETTLE_OAUTH_GOOG_PRESET", "google"),
            ("KETTLE_OAUTH_GOOG_CLIENT_ID", "goog-client"),
            ("KETTLE_OAUTH_GOOG_CLIENT_SECRET", "goog-secret"),
            ("KETTLE_OAUTH_MS_PRESET", "microsoft"),
            ("KETTLE_OAUTH_MS_TENANT", "contoso"),
            ("KETTLE_OAUTH_MS_CLIENT_ID", "ms-client"),
            ("KETTLE_OAUTH_MS_CLIENT_SECRET", "ms-secret"),
        ],
    )
    .await;
    let outcome = AssertUnwindSafe(async {
        for (name, prefix, client) in [
            ("gh", "https://github.com/login/oauth/authorize?", "gh-client"),
            ("goog", "https://accounts.google.com/", "goog-client"),
            ("ms", "https://login.microsoftonline.com/contoso/", "ms-client"),
        ] {
            let started = Browser::new(&app).get(&format!("/auth/{name}/start")).await;
            assert_eq!(started.status, 303, "{}", started.body);
            assert!(started.location.starts_with(prefix), "{name}: {}", started.location);
            let query = query_of(&started.location);
            assert_eq!(query["client_id"], client);
            assert_eq!(query["redirect_uri"], app.url(&format!("/auth/{name}/callback")));
            assert_eq!(query["code_challenge_method"], "S256");
        }
        let page = Browser::new(&app).get("/sign-in").await;
        assert!(links(&page.body).iter().filter(|(text, _)| text.starts_with("Sign in with ")).count() == 3);
    })
    .catch_unwind()
    .await;
    app.finish().await;
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

async fn the_mock_provider_insists_on_pkce(_app: TestApp) {
    // The mock's own checks, so that the other scenarios' passes mean something.
    let mock = MockProvider::start().await;
    mock.set_profile(profile("ada-1", "ada@example.org", true, "Ada"));
    let http = reqwest::Client::builder().redirect(Policy::none()).build().unwrap();
    let redirect_uri = "http://127.0.0.1:9/auth/local/callback";
    let verifier = "correct-horse-battery-staple-correct-horse-battery";
    let authorize = |challenge: String| {
        let http = http.clone();
        let url = mock.endpoint("/authorize");
        async move {
            let response = http
                .get(url)
                .query(&[
                    ("response_type", "code"),
                    ("client_id", CLIENT_ID),
                    ("redirect_uri", redirect_uri),
                    ("scope", "openid"),
                    ("state", "s1"),
                    ("code_challenge", &challenge),
                    ("code_challenge_method", "S256"),
                ])
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 303);
            let location = response.headers()["location"].to_str().unwrap().to_string();
            assert!(location.starts_with(redirect_uri), "{location}");
            let query = query_of(&location);
            assert_eq!(query["state"], "s1");
            query["code"].clone()
        }
    };
    let exchange = |code: String, verifier: &'static str, secret: &'static str| {
        let http = http.clone();
        let url = mock.endpoint("/token");
        async move {
            let response = http
                .post(url)
                .basic_auth(CLIENT_ID, Some(secret))
                .form(&[
                    ("grant_type", "authorization_code"),
                    ("code", &code),
                    ("redirect_uri", redirect_uri),
                    ("code_verifier", verifier),
                ])
                .send()
                .await
                .unwrap();
            (response.status().as_u16(), response.json::<Value>().await.unwrap())
        }
    };

    // A wrong verifier is refused, and the code is then spent.
    let code = authorize(s256(verifier)).await;
    let (status, body) =
        exchange(code.clone(), "not-the-verifier-not-the-verifier-not-the-verifier", CLIENT_SECRET).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_grant")));
    assert_eq!(exchange(code, verifier, CLIENT_SECRET).await.0, 400, "codes are single use");
    // A wrong client secret is refused.
    let code = authorize(s256(verifier)).await;
    assert_eq!(exchange(code, verifier, "wrong").await.0, 401);
    // The right verifier gets a token, and the token the profile.
    let code = authorize(s256(verifier)).await;
    let (status, body) = exchange(code, verifier, CLIENT_SECRET).await;
    assert_eq!(status, 200, "{body}");
    let token = body["access_token"].as_str().unwrap();
    let profile: Value =
        http.get(mock.endpoint("/userinfo")).bearer_auth(token).send().await.unwrap().json().await.unwrap();
    assert_eq!(profile["sub"], "ada-1");
    assert_eq!(http.get(mock.endpoint("/userinfo")).bearer_auth("forged").send().await.unwrap().status(), 401);
    // A plain challenge method, or none, is refused outright.
    let plain = http
        .get(mock.endpoint("/authorize"))
        .query(&[("response_type", "code"), ("client_id", CLIENT_ID), ("redirect_uri", redirect_uri), ("state", "s")])
        .send()
        .await
        .unwrap();
    assert_eq!(plain.status(), 400);

    let received = mock.received();
    assert_eq!(received.exchanges_verified, 1);
    assert_eq!(received.basic_auth, 4);
    assert!(received.exchanges_refused.iter().any(|r| r.contains("code_verifier")), "{:?}", received.exchanges_refused);
    assert!(received.exchanges_refused.iter().any(|r| r.contains("already used")));
    mock.stop();
}

async fn without_providers_there_are_no_buttons(app: TestApp) {
    let browser = Browser::new(&app);
    let page = browser.get("/sign-in?return_to=/settings").await;
    assert_eq!(page.status, 200);
    assert!(!page.body.contains("Sign in with"), "{}", page.body);
    assert!(!page.body.contains("/auth/"), "{}", page.body);
    let data = app.anonymous().data("{ oauthProviders { name label } }", json!({})).await;
    assert_eq!(data["oauthProviders"], json!([]));
    assert_eq!(browser.get("/auth/local/start").await.status, 404);
    assert_eq!(browser.get("/auth/local/callback?state=x&code=y").await.status, 404);
    // A member's identities are simply empty.
    let member = app.member("ada@example.org", "Ada").await;
    assert_eq!(
        member.data("{ viewer { identities { provider } } }", json!({})).await["viewer"]["identities"],
        json!([])
    );
}

async fn incomplete_provider_configuration_stops_start_up(app: TestApp) {
    let complete = [
        ("CLIENT_ID", "client"),
        ("CLIENT_SECRET", "secret"),
        ("AUTH_URL", "http://127.0.0.1:9/authorize"),
        ("TOKEN_URL", "http://127.0.0.1:9/token"),
        ("USERINFO_URL", "http://127.0.0.1:9/userinfo"),
    ];
    let cases: Vec<(Vec<(&str, &str)>, &str)> = vec![
        (complete.iter().copied().filter(|(k, _)| *k != "TOKEN_URL").collect(), "KETTLE_OAUTH_BROKEN_TOKEN_URL"),
        (
            complete.iter().copied().filter(|(k, _)| *k != "CLIENT_SECRET").collect(),
            "KETTLE_OAUTH_BROKEN_CLIENT_SECRET",
        ),
        (vec![("CLIENT_ID", "client")], "KETTLE_OAUTH_BROKEN_"),
        (
            vec![("PRESET", "myspace"), ("CLIENT_ID", "client"), ("CLIENT_SECRET", "secret")],
            "KETTLE_OAUTH_BROKEN_PRESET",
        ),
        (vec![("PRESET", "github"), ("CLIENT_SECRET", "secret")], "KETTLE_OAUTH_BROKEN_CLIENT_ID"),
    ];
    for (settings, named) in cases {
        let mut command = kettle_command(&app);
        command.env("KETTLE_LISTEN", "127.0.0.1:0").arg("serve");
        for (setting, value) in &settings {
            command.env(format!("KETTLE_OAUTH_BROKEN_{setting}"), value);
        }
        let output = tokio::time::timeout(Duration::from_secs(60), command.output())
            .await
            .expect("kettle exits without serving")
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{settings:?}: {stderr}");
        let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
        assert_eq!(lines.len(), 1, "one line: {stderr}");
        assert!(
            lines[0].starts_with("kettle: ") && lines[0].contains(named),
            "{settings:?} should name {named}: {stderr}"
        );
        assert!(!stderr.contains("secret\""), "{stderr}");
    }
}

/// With `KETTLE_REGISTRATION=closed`, a provider still signs in linked members and links
/// a verified email, but creates nobody.
async fn closed_registration_lets_members_in_but_creates_nobody(base: TestApp) {
    let mock = MockProvider::start().await;
    let mut vars = mock.env("LOCAL", "Local ID");
    vars.push(("KETTLE_REGISTRATION".into(), "closed".into()));
    let refs: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let app = TestApp::spawn_with(base.backend(), &refs).await;
    let outcome = AssertUnwindSafe(async {
        // Nobody can register, so an administrator makes the one member.
        let mut command = kettle_command(&app);
        command.args(["admin", "create", "--email", "ada@example.org", "--display-name", "Ada Lovelace"]);
        command.stdin(std::process::Stdio::piped());
        let mut child = command.spawn().unwrap();
        {
            use tokio::io::AsyncWriteExt;
            let mut stdin = child.stdin.take().unwrap();
            stdin.write_all(format!("{PASSWORD}\n").as_bytes()).await.unwrap();
        }
        let output = tokio::time::timeout(Duration::from_secs(60), child.wait_with_output()).await.unwrap().unwrap();
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));

        let before = counts(&app).await;
        mock.set_profile(profile("grace-1", "grace@example.org", true, "Grace Hopper"));
        let reply = Browser::new(&app).sign_in_with("/auth/local/start").await;
        assert_failure(&app, &before, &reply, 403, &["not taking new members"]).await;

        mock.set_profile(profile("ada-1", "ada@example.org", true, "Ada"));
        Browser::new(&app).sign_in_with("/auth/local/start").await.signed_in_to("/");
        assert_eq!(app.count("SELECT COUNT(*) FROM members").await, 1);
        assert_eq!(app.count("SELECT COUNT(*) FROM member_identities").await, 1);
    })
    .catch_unwind()
    .await;
    app.finish().await;
    mock.stop();
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

/// The real binary, logging everything at debug level as JSON: a whole sign-in and a
/// refused one leave the client secret out of the logs, and the failure is logged.
async fn the_client_secret_is_never_logged(app: TestApp) {
    use tokio::io::AsyncBufReadExt;

    let mock = MockProvider::start().await;
    mock.set_profile(profile("ada-1", "ada@example.org", true, "Ada"));
    let mut command = kettle_command(&app);
    command
        .env("KETTLE_LISTEN", "127.0.0.1:0")
        .env("KETTLE_LOG_FORMAT", "json")
        .env("KETTLE_LOG", "debug")
        .envs(mock.env("LOCAL", "Local ID"))
        .arg("serve");
    let mut child = command.spawn().expect("kettle serve starts");
    let mut lines = tokio::io::BufReader::new(child.stderr.take().unwrap()).lines();
    let (address_tx, address_rx) = tokio::sync::oneshot::channel::<String>();
    // Reads every line (so the pipe never fills), noting the address once it is serving.
    let reader = tokio::spawn(async move {
        let mut address_tx = Some(address_tx);
        let mut all = Vec::new();
        while let Ok(Some(line)) = lines.next_line().await {
            let event: Value = serde_json::from_str(&line).unwrap_or_default();
            if event["message"] == "kettle is serving" {
                if let Some(tx) = address_tx.take() {
                    let _ = tx.send(event["address"].as_str().unwrap_or_default().to_string());
                }
            }
            all.push(line);
        }
        all
    });
    let address = tokio::time::timeout(Duration::from_secs(30), address_rx).await.expect("kettle serves").unwrap();

    let outcome = AssertUnwindSafe(async {
        let http = reqwest::Client::builder().cookie_store(true).redirect(Policy::none()).build().unwrap();
        let get = |url: String| {
            let http = http.clone();
            async move { http.get(url).send().await.unwrap() }
        };
        let started = get(format!("http://{address}/auth/local/start")).await;
        assert_eq!(started.status(), 303);
        let consented = get(started.headers()["location"].to_str().unwrap().to_string()).await;
        let callback = consented.headers()["location"].to_str().unwrap().to_string();
        assert!(callback.starts_with(&format!("http://{address}/auth/local/callback?")), "{callback}");
        let done = get(callback).await;
        assert_eq!(done.status(), 303);
        assert_eq!(mock.received().exchanges_verified, 1);

        mock.set(|b| b.token = TokenReply::InvalidGrant);
        let started = get(format!("http://{address}/auth/local/start")).await;
        let consented = get(started.headers()["location"].to_str().unwrap().to_string()).await;
        let refused = get(consented.headers()["location"].to_str().unwrap().to_string()).await;
        assert_eq!(refused.status(), 400);
    })
    .catch_unwind()
    .await;
    child.kill().await.ok();
    let logs = tokio::time::timeout(Duration::from_secs(10), reader).await.expect("the log ends").unwrap();
    mock.stop();
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
    assert!(logs.len() > 10, "debug logging is on: {logs:?}");
    let secret_lines: Vec<&String> = logs.iter().filter(|l| l.contains(CLIENT_SECRET)).collect();
    assert!(secret_lines.is_empty(), "the client secret was logged: {secret_lines:?}");
    // Nor its Basic-auth form.
    let basic =
        base64::Engine::encode(&base64::engine::general_purpose::STANDARD, format!("{CLIENT_ID}:{CLIENT_SECRET}"));
    assert!(!logs.iter().any(|l| l.contains(&basic)), "the Basic credentials were logged");
    let failures: Vec<&String> =
        logs.iter().filter(|l| l.contains("\"WARN\"") && l.to_lowercase().contains("local")).collect();
    assert!(!failures.is_empty(), "the refused sign-in was logged as a warning");
}
