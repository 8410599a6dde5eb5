//! The site: pages, forms, CSRF, security headers, assets, and the page documents.

use std::sync::Arc;

use async_graphql::extensions::{Extension, ExtensionContext, ExtensionFactory, NextExecute};
use reqwest::{header::HeaderMap, redirect::Policy, StatusCode};

use crate::{
    scenarios,
    support::{Scenario, TestApp, PASSWORD},
};

pub fn scenarios() -> Vec<(&'static str, Scenario)> {
    scenarios![
        page_documents_match_the_schema,
        every_form_reaches_its_mutation,
        pages_carry_security_headers_and_a_csrf_cookie,
        forms_without_the_csrf_token_are_refused,
        registering_through_the_form,
        signing_in_returns_only_inside_the_site,
        settings_need_signing_in_and_save_the_profile,
        tokens_are_shown_once_and_revoked_through_the_site,
        member_profiles_escape_what_members_write,
        static_assets_are_hashed_cached_and_compressed,
        cookies_are_secure_behind_https,
        case_studies_are_written_previewed_published_and_edited_in_the_site,
        atom_feeds_are_valid_and_leave_out_drafts,
        search_page_shows_escaped_highlighted_results,
        meetup_pages_ask_for_sign_in_and_keep_organiser_pages_to_organisers,
        the_schedule_form_explains_problems_and_keeps_what_was_typed,
        the_attendee_csv_defuses_formulas,
        deleting_a_comment_asks_first,
        deleting_a_draft_asks_first,
        images_are_uploaded_from_the_forms_that_take_markdown,
        your_images_are_listed_and_deleted_after_asking,
        an_artefacts_updates_are_listed_and_compared,
        the_member_directory_page_finds_handles,
        a_handle_is_changed_in_settings_and_the_old_address_leads_on,
        profiles_show_organisations_work_and_groups,
        pending_join_requests_show_to_the_requester_and_the_admins,
        giving_up_a_seat_in_a_full_meetup_asks_first_and_going_offers_the_group,
        cancelling_asks_first_and_a_cancelled_meetup_can_be_put_back_on,
        a_meetup_is_copied_to_a_new_date_from_its_page,
        the_follow_control_works_without_javascript,
        the_header_counts_unread_notifications_and_the_inbox_reads_them,
        notification_settings_switch_kinds_off,
    ]
}

/// A browser without JavaScript: keeps cookies, does not follow redirects, and sends the
/// CSRF token of the last page it saw with each form.
pub(crate) struct Browser {
    app: TestApp,
    pub(crate) http: reqwest::Client,
    pub(crate) csrf: Option<String>,
}

pub(crate) struct Page {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) body: String,
}

impl Page {
    pub(crate) fn location(&self) -> &str {
        self.headers.get("location").map(|l| l.to_str().unwrap()).unwrap_or("")
    }
    fn set_cookies(&self) -> Vec<String> {
        self.headers.get_all("set-cookie").iter().map(|v| v.to_str().unwrap().to_string()).collect()
    }
}

impl Browser {
    pub(crate) fn new(app: &TestApp) -> Browser {
        let http = reqwest::Client::builder().cookie_store(true).redirect(Policy::none()).build().unwrap();
        Browser { app: app.clone(), http, csrf: None }
    }

    async fn page(&mut self, response: reqwest::Response) -> Page {
        let status = response.status();
        let headers = response.headers().clone();
        let body = response.text().await.unwrap();
        if let Some(start) = body.find("name=\"csrf_token\" value=\"") {
            let rest = &body[start + 25..];
            self.csrf = Some(rest[..rest.find('"').unwrap()].to_string());
        }
        Page { status, headers, body }
    }

    pub(crate) async fn get(&mut self, path: &str) -> Page {
        let response = self.http.get(self.app.url(path)).send().await.unwrap();
        self.page(response).await
    }

    /// Posts a form with the CSRF token of the last page seen.
    pub(crate) async fn post(&mut self, path: &str, fields: &[(&str, &str)]) -> Page {
        let token = self.csrf.clone().expect("a page with a form was seen first");
        let mut form: Vec<(&str, &str)> = vec![("csrf_token", token.as_str())];
        form.extend_from_slice(fields);
        let response = self.http.post(self.app.url(path)).form(&form).send().await.unwrap();
        self.page(response).await
    }

    /// Posts a form as `multipart/form-data` (as a form that can hold an image sends
    /// itself), with the CSRF token of the last page seen and, optionally, a file as
    /// `image`: `(file name, content type, bytes)`.
    pub(crate) async fn post_multipart(
        &mut self,
        path: &str,
        fields: &[(&str, &str)],
        file: Option<(&str, &str, &[u8])>,
    ) -> Page {
        let token = self.csrf.clone().expect("a page with a form was seen first");
        let boundary = "kettle-test-boundary-7d1f";
        let mut body = Vec::new();
        for (name, value) in [("csrf_token", token.as_str())].iter().chain(fields) {
            body.extend_from_slice(
                format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n")
                    .as_bytes(),
            );
        }
        // A browser sends an empty file part when no file was chosen.
        let (file_name, content_type, bytes) = file.unwrap_or(("", "application/octet-stream", b""));
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"image\"; filename=\"{file_name}\"\r\nContent-Type: {content_type}\r\n\r\n"
            )
            .as_bytes(),
        );
        body.extend_from_slice(bytes);
        body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
        let response = self
            .http
            .post(self.app.url(path))
            .header("content-type", format!("multipart/form-data; boundary={boundary}"))
            .body(body)
            .send()
            .await
            .unwrap();
        self.page(response).await
    }

    /// Registers through the form, then signs in (registering does not sign in).
    pub(crate) async fn register(&mut self, email: &str, name: &str) {
        self.get("/register").await;
        let page = self.post("/register", &[("email", email), ("displayName", name), ("password", PASSWORD)]).await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.body);
        assert!(page.body.contains("Check your email"), "{}", page.body);
        self.sign_in(email, PASSWORD).await;
    }

    /// Signs in through the form.
    pub(crate) async fn sign_in(&mut self, email: &str, password: &str) {
        self.get("/sign-in").await;
        let page = self.post("/sign-in", &[("email", email), ("password", password)]).await;
        assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    }
}

struct ValidateOnly;

impl ExtensionFactory for ValidateOnly {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(ValidateOnly)
    }
}

#[async_trait::async_trait]
impl Extension for ValidateOnly {
    // Validation has passed by the time execution starts: stop there.
    async fn execute(&self, _: &ExtensionContext<'_>, _: Option<&str>, _: NextExecute<'_>) -> async_graphql::Response {
        async_graphql::Response::new(async_graphql::Value::Null)
    }
}

async fn page_documents_match_the_schema(_app: TestApp) {
    let schema = kettle::graphql::schema_builder().extension(ValidateOnly).finish();
    let documents: Vec<_> = kettle::site::page_documents().collect();
    // Every file parsed: one that did not would be missing here.
    let files = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/web/queries"))
        .unwrap()
        .filter(|entry| entry.as_ref().unwrap().file_name() != "fragments.graphql")
        .count();
    assert_eq!(documents.len(), files);
    for (name, document) in &documents {
        let response = schema.execute(async_graphql::Request::new(document.source.clone())).await;
        assert!(response.errors.is_empty(), "{name} no longer matches the schema: {:?}", response.errors);
    }
    // The check can fail: a document asking for a field that does not exist.
    let response = schema.execute("query { viewer { noSuchField } }").await;
    assert!(!response.errors.is_empty());
}

/// Every form reaches its mutation: each `visit.mutate("name", …)` (or `mutate_with`,
/// which sends a file too) in the site's handlers
/// names a document that exists and selects exactly one mutation field, which is where
/// the payload is read from (so no handler can read a misspelt field and take the null
/// it finds for success).
async fn every_form_reaches_its_mutation(_app: TestApp) {
    let site = concat!(env!("CARGO_MANIFEST_DIR"), "/backend/site");
    // The handlers that choose between two documents pass the name on as a variable.
    let mut named: Vec<String> =
        ["join_meetup_group", "leave_meetup_group", "rename_topic", "merge_topic"].map(String::from).to_vec();
    for entry in std::fs::read_dir(site).unwrap() {
        let source = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        for call in [".mutate(\"", ".mutate_with(\""] {
            for (at, _) in source.match_indices(call) {
                let rest = &source[at + call.len()..];
                named.push(rest[..rest.find('"').unwrap()].to_string());
            }
        }
    }
    assert!(named.len() >= 50, "{named:?}");
    for name in &named {
        let document = kettle::site::page_document(name).unwrap_or_else(|| panic!("no document {name}"));
        assert!(document.mutation_field.is_some(), "{name} is not a document with one mutation field");
    }
    // The check can fail: a query document has no mutation field.
    assert!(kettle::site::page_document("home").unwrap().mutation_field.is_none());
}

const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'";

async fn pages_carry_security_headers_and_a_csrf_cookie(app: TestApp) {
    let mut browser = Browser::new(&app);
    for (path, status) in
        [("/", 200), ("/register", 200), ("/sign-in", 200), ("/no/such/page", 404), ("/members/garbage", 404)]
    {
        let page = browser.get(path).await;
        assert_eq!(page.status.as_u16(), status, "{path}");
        assert_eq!(page.headers["content-security-policy"], CSP, "{path}");
        assert_eq!(page.headers["x-frame-options"], "DENY");
        assert_eq!(page.headers["x-content-type-options"], "nosniff");
        assert_eq!(page.headers["content-type"], "text/html; charset=utf-8");
        assert!(page.body.contains("<html lang=\"en-GB\">") && page.body.contains("Skip to main content"), "{path}");
        assert!(
            !page.body.contains("<script>") && !page.body.contains(" style="),
            "no inline script or style on {path}"
        );
    }
    // The CSRF cookie is set once and then kept.
    let mut fresh = Browser::new(&app);
    let first = fresh.get("/").await;
    let cookie = first.set_cookies().into_iter().find(|c| c.starts_with("kettle_csrf=")).expect("a CSRF cookie");
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax") && !cookie.contains("Secure"), "{cookie}");
    assert!(fresh.get("/").await.set_cookies().is_empty());
}

async fn forms_without_the_csrf_token_are_refused(app: TestApp) {
    let mut browser = Browser::new(&app);
    browser.get("/register").await;
    let fields = [("email", "ada@example.org"), ("displayName", "Ada"), ("password", PASSWORD)];
    let response = browser.http.post(app.url("/register")).form(&fields).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert!(response.text().await.unwrap().contains("This form has expired"));
    let mut forged = fields.to_vec();
    forged.push(("csrf_token", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"));
    let response = browser.http.post(app.url("/register")).form(&forged).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    // Another browser's token does not work with this browser's cookie.
    let mut other = Browser::new(&app);
    other.get("/register").await;
    browser.csrf = other.csrf.clone();
    let page = browser.post("/register", &fields).await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    // Nor does a large form get through.
    browser.get("/register").await;
    let huge = "x".repeat(100 * 1024);
    let page = browser
        .post("/register", &[("email", "ada@example.org"), ("displayName", &huge), ("password", PASSWORD)])
        .await;
    assert_eq!(page.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(app.count("SELECT COUNT(*) FROM members").await, 0);
}

async fn registering_through_the_form(app: TestApp) {
    let mut browser = Browser::new(&app);
    browser.get("/register").await;
    let page = browser
        .post(
            "/register",
            &[("email", "not an email"), ("displayName", "Ada <b>"), ("password", "secret-password-echo")],
        )
        .await;
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(page.body.contains("<title>Error: Create an account – Kettle</title>"), "{}", page.body);
    assert!(page.body.contains("There is a problem"));
    assert!(page.body.contains("<a href=\"#email\">Enter an email address in the correct format"), "{}", page.body);
    assert!(page.body.contains("id=\"email-error\""));
    // What was typed is kept (escaped), except the password.
    assert!(page.body.contains("value=\"Ada &lt;b&gt;\""), "{}", page.body);
    assert!(!page.body.contains("secret-password-echo"));
    assert_eq!(app.count("SELECT COUNT(*) FROM members").await, 0);

    let page = browser
        .post("/register", &[("email", "ada@example.org"), ("displayName", "Ada"), ("password", PASSWORD)])
        .await;
    // Not signed in: the page is the same whether the address was new or taken.
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("Check your email") && page.body.contains("ada@example.org"), "{}", page.body);
    assert!(!page.set_cookies().iter().any(|c| c.starts_with("kettle_session=")));
    assert_eq!(app.count("SELECT COUNT(*) FROM members").await, 1);
    browser.get("/sign-in").await;
    let page = browser.post("/sign-in", &[("email", "ada@example.org"), ("password", PASSWORD)]).await;
    assert_eq!((page.status, page.location()), (StatusCode::SEE_OTHER, "/"));
    let session = page.set_cookies().into_iter().find(|c| c.starts_with("kettle_session=")).expect("signed in");
    assert!(session.contains("HttpOnly") && session.contains("SameSite=Lax"));
    let home = browser.get("/").await;
    assert!(home.body.contains("Welcome back, Ada"), "{}", home.body);
    // Signing out through the header's button.
    let page = browser.post("/sign-out", &[]).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    let home = browser.get(page.location()).await;
    assert!(home.body.contains("You have signed out"));
    assert_eq!(app.count("SELECT COUNT(*) FROM sessions").await, 0);
}

async fn signing_in_returns_only_inside_the_site(app: TestApp) {
    app.member("ada@example.org", "Ada").await;
    let mut browser = Browser::new(&app);
    let page = browser.get("/settings").await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    assert_eq!(page.location(), "/sign-in?return_to=%2Fsettings");
    let form = browser.get(page.location()).await;
    assert!(form.body.contains("name=\"return_to\" value=\"&#x2f;settings\""), "{}", form.body);

    let wrong = browser
        .post("/sign-in", &[("email", "ada@example.org"), ("password", "not it at all"), ("return_to", "/settings")])
        .await;
    assert_eq!(wrong.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(wrong.body.contains("Email address or password is incorrect."));

    let page = browser
        .post("/sign-in", &[("email", "ada@example.org"), ("password", PASSWORD), ("return_to", "/settings")])
        .await;
    assert_eq!((page.status, page.location()), (StatusCode::SEE_OTHER, "/settings"));
    for evil in ["//evil.example/x", "https://evil.example/", "/\\evil.example"] {
        let mut other = Browser::new(&app);
        other.get("/sign-in").await;
        let page =
            other.post("/sign-in", &[("email", "ada@example.org"), ("password", PASSWORD), ("return_to", evil)]).await;
        assert_eq!((page.status, page.location()), (StatusCode::SEE_OTHER, "/"), "{evil}");
    }
    // Signed in, the sign-in page sends you on.
    assert_eq!(browser.get("/sign-in?return_to=/settings").await.location(), "/settings");
}

async fn settings_need_signing_in_and_save_the_profile(app: TestApp) {
    let mut browser = Browser::new(&app);
    browser.register("ada@example.org", "Ada").await;
    let page = browser.get("/settings").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("Signed in as ada@example.org."));
    assert!(page.body.contains("<option value=\"Europe&#x2f;London\" selected>"), "the current zone is selected");

    let page = browser
        .post("/settings/profile", &[("displayName", ""), ("bio", &"b".repeat(600)), ("timeZone", "Mars/Base")])
        .await;
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
    for anchor in ["#displayName", "#bio", "#timeZone"] {
        assert!(page.body.contains(&format!("<a href=\"{anchor}\">")), "{anchor}");
    }
    // A control character pasted into a field (Word's line break is U+000B) is refused at
    // the GraphQL boundary, and the form shows why beside the field.
    let page = browser
        .post("/settings/profile", &[("displayName", "Ada"), ("bio", "Line\u{b}break"), ("timeZone", "Asia/Tokyo")])
        .await;
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(page.body.contains("<a href=\"#bio\">") && page.body.contains("U+000B"), "{}", page.body);
    let page = browser
        .post("/settings/profile", &[("displayName", "Ada L."), ("bio", "Researcher."), ("timeZone", "Asia/Tokyo")])
        .await;
    assert_eq!((page.status, page.location()), (StatusCode::SEE_OTHER, "/settings?saved=profile"));
    let page = browser.get(page.location()).await;
    assert!(page.body.contains("Your profile has been saved."));
    assert!(page.body.contains("<option value=\"Asia&#x2f;Tokyo\" selected>"));
    assert!(page.body.contains(">Ada L.</a>"), "the header shows the new name");
}

async fn tokens_are_shown_once_and_revoked_through_the_site(app: TestApp) {
    let mut browser = Browser::new(&app);
    browser.register("ada@example.org", "Ada").await;
    browser.get("/settings").await;
    let page = browser.post("/settings/tokens", &[("name", ""), ("expiresInDays", "90")]).await;
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(page.body.contains("<a href=\"#name\">"));

    let page = browser.post("/settings/tokens", &[("name", "report script"), ("expiresInDays", "30")]).await;
    assert_eq!(page.status, StatusCode::OK);
    let start = page.body.find("value=\"kpat_").expect("the new token is shown") + 7;
    let secret = page.body[start..start + 48].to_string();
    // It works against the API, and the settings page never shows it again.
    let client = app.anonymous().with_token(&secret);
    assert!(client.viewer_id().await.is_some());
    let again = browser.get("/settings").await;
    assert!(!again.body.contains(&secret) && again.body.contains("report script"));

    let id_start = again.body.find("name=\"id\" value=\"").unwrap() + 17;
    let id = again.body[id_start..].split('"').next().unwrap().to_string();
    let page = browser.post("/settings/tokens/revoke", &[("id", &id)]).await;
    assert_eq!(page.location(), "/settings?saved=revoked");
    assert_eq!(client.post("{ viewer { id } }", serde_json::json!({})).await.status(), 401);
    assert!(browser.get("/settings?saved=revoked").await.body.contains("You have no access tokens."));
}

async fn member_profiles_escape_what_members_write(app: TestApp) {
    let member = app.member("ada@example.org", "<script>alert(1)</script>").await;
    let handle = member.data("{ viewer { handle } }", serde_json::json!({})).await["viewer"]["handle"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(handle, "script-alert-1-script");
    let page = Browser::new(&app).get(&format!("/members/@{handle}")).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("&lt;script&gt;alert(1)&lt;&#x2f;script&gt;"), "{}", page.body);
    assert!(!page.body.contains("<script>alert(1)"));
    // Handles ignore case, leading to the one address; other forms of it are not profiles.
    let capitals = Browser::new(&app).get(&format!("/members/@{}", handle.to_uppercase())).await;
    assert_eq!((capitals.status, capitals.location()), (StatusCode::SEE_OTHER, format!("/members/@{handle}").as_str()));
    for missing in
        ["/members/@nobody", &format!("/members/{handle}"), "/members/@", &format!("/members/@{}", "x".repeat(200))]
    {
        assert_eq!(Browser::new(&app).get(missing).await.status, StatusCode::NOT_FOUND, "{missing}");
    }
}

async fn static_assets_are_hashed_cached_and_compressed(app: TestApp) {
    let mut browser = Browser::new(&app);
    let home = browser.get("/").await;
    let start = home.body.find("/static/app.").unwrap();
    let css = home.body[start..].split('"').next().unwrap().to_string();
    assert!(css.ends_with(".css"), "{css}");
    let response = app.http().get(app.url(&css)).header("accept-encoding", "gzip").send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["cache-control"], "public, max-age=31536000, immutable");
    assert_eq!(response.headers()["content-type"], "text/css");
    assert_eq!(response.headers()["content-encoding"], "gzip");
    let stale = app.http().get(app.url("/static/app.00000000.css")).send().await.unwrap();
    assert_eq!(stale.status(), 200);
    assert_eq!(stale.headers()["cache-control"], "public, max-age=60");
    for missing in ["/static/nope.00000000.css", "/static/app.css", "/static/..%2f..%2fCargo.toml"] {
        assert_eq!(app.http().get(app.url(missing)).send().await.unwrap().status(), 404, "{missing}");
    }
}

async fn cookies_are_secure_behind_https(app: TestApp) {
    let secure = TestApp::spawn_with(app.backend(), &[("KETTLE_PUBLIC_URL", "https://kettle.example.org")]).await;
    secure.member("ada@example.org", "Ada").await;
    let mut browser = Browser::new(&secure);
    let page = browser.get("/sign-in").await;
    // Behind https cookies carry the __Host- prefix, and browsers are told to stay on https.
    assert!(page.set_cookies().iter().any(|c| c.starts_with("__Host-kettle_csrf=") && c.contains("; Secure")));
    assert_eq!(page.headers["strict-transport-security"], "max-age=31536000");
    // reqwest keeps Secure cookies for https only, so send the token by hand.
    let token = browser.csrf.clone().unwrap();
    let cookie = page.set_cookies()[0].split(';').next().unwrap().to_string();
    let response = browser
        .http
        .post(secure.url("/sign-in"))
        .header("cookie", cookie.as_str())
        .form(&[("csrf_token", token.as_str()), ("email", "ada@example.org"), ("password", PASSWORD)])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let session: Vec<String> =
        response.headers().get_all("set-cookie").iter().map(|v| v.to_str().unwrap().to_string()).collect();
    assert!(session.iter().any(|c| c.starts_with("__Host-kettle_session=") && c.contains("; Secure")), "{session:?}");
    // The token from the signed-out page does not work for the new session: tokens are
    // bound to the session they were issued in.
    let session_cookie = session.iter().find(|c| c.starts_with("__Host-kettle_session=")).unwrap();
    let both = format!("{cookie}; {}", session_cookie.split(';').next().unwrap());
    let response = browser
        .http
        .post(secure.url("/sign-out"))
        .header("cookie", both.as_str())
        .form(&[("csrf_token", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let settings = browser.http.get(secure.url("/settings")).header("cookie", both.as_str()).send().await.unwrap();
    let body = settings.text().await.unwrap();
    let bound =
        body.split("name=\"csrf_token\" value=\"").nth(1).and_then(|r| r.split('"').next()).unwrap().to_string();
    assert_ne!(bound, token);
    let response = browser
        .http
        .post(secure.url("/sign-out"))
        .header("cookie", both.as_str())
        .form(&[("csrf_token", bound.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    secure.finish().await;
}

async fn case_studies_are_written_previewed_published_and_edited_in_the_site(app: TestApp) {
    let curator = app.member("curator@example.org", "Curator").await;
    app.execute_sql("UPDATE members SET role = 'admin' WHERE email_normalized = 'curator@example.org'").await;
    let topic = curator
        .data("mutation { createTopic(input: { name: \"Bin collection\" }) { topic { id } } }", serde_json::json!({}))
        .await["createTopic"]["topic"]["id"]
        .as_str()
        .unwrap()
        .to_string();

    let mut ada = Browser::new(&app);
    ada.register("ada@example.org", "Ada").await;
    let form = ada.get("/case-studies/new").await;
    assert_eq!(form.status, StatusCode::OK);
    assert!(form.body.contains("value=\"") && form.body.contains("Bin collection"));

    // Preview renders (and sanitises) without saving.
    let body = "## What we did\n\nWe asked @ada. <script>alert(1)</script>";
    let preview = ada.post("/case-studies/new", &[("action", "preview"), ("title", "Bins"), ("body", body)]).await;
    assert_eq!(preview.status, StatusCode::OK);
    assert!(
        preview.body.contains("<h2>What we did</h2>") && preview.body.contains("class=\"mention\""),
        "{}",
        preview.body
    );
    assert!(!preview.body.contains("<script>alert(1)"));
    assert!(preview.body.contains("data-focus-on-load>"), "the preview takes the focus");
    assert!(!preview.body.contains("anyone's handle"), "@ada is someone's");
    let unknown =
        ada.post("/case-studies/new", &[("action", "preview"), ("title", "Bins"), ("body", "Ask @nobody-here.")]).await;
    assert!(
        unknown.body.contains("@nobody-here is not anyone's handle on Kettle, so it stays as text"),
        "{}",
        unknown.body
    );
    assert!(preview.body.contains("We asked @ada. &lt;script&gt;"), "the source is kept in the textarea, escaped");
    assert_eq!(app.count("SELECT COUNT(*) FROM case_studies").await, 0);

    let invalid = ada
        .post(
            "/case-studies/new",
            &[("action", "save"), ("title", ""), ("summary", "s"), ("body", body), ("phase", "LIVE")],
        )
        .await;
    assert_eq!(invalid.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        invalid.body.contains("<a href=\"#title\">") && invalid.body.contains("<a href=\"#topicIds\">"),
        "{}",
        invalid.body
    );
    assert!(invalid.body.contains("value=\"LIVE\" checked"), "the chosen phase is kept");
    // No phase is chosen for the writer; one must be.
    let form = ada.get("/case-studies/new").await;
    assert!(form.body.contains("name=\"phase\"") && !form.body.contains(" checked>"), "{}", form.body);
    let unchosen =
        ada.post("/case-studies/new", &[("action", "save"), ("title", "Bins"), ("summary", "s"), ("body", body)]).await;
    assert_eq!(unchosen.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(unchosen.body.contains("<a href=\"#phase\">Choose the service&#x27;s phase.</a>"), "{}", unchosen.body);
    assert!(unchosen.body.contains("id=\"phase\" name=\"phase\" value=\"DISCOVERY\">"), "{}", unchosen.body);
    assert_eq!(app.count("SELECT COUNT(*) FROM case_studies").await, 0);

    let fields = [
        ("action", "save"),
        ("title", "Bins online"),
        ("summary", "Reminders by text."),
        ("body", body),
        ("phase", "LIVE"),
        ("topicIds", topic.as_str()),
    ];
    let saved = ada.post("/case-studies/new", &fields).await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER);
    let path = saved.location().to_string();
    assert!(path.starts_with("/case-studies/"), "{path}");

    // A draft is a page that does not exist, for anyone but its authors.
    let mut grace = Browser::new(&app);
    assert_eq!(grace.get(&path).await.status, StatusCode::NOT_FOUND);
    assert!(!grace.get("/case-studies").await.body.contains("Bins online"));
    let draft = ada.get(&path).await;
    assert!(draft.body.contains("Only its authors can see it."));

    let published = ada.post(&format!("{path}/publish"), &[]).await;
    assert_eq!(published.location(), format!("{path}?published=1"));
    let page = grace.get(&path).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        page.body.contains("<h1 class=\"heading-xl\">Bins online</h1>") && !page.body.contains("Edit this case study")
    );
    for list in ["/", "/case-studies", "/topics/bin-collection", "/case-studies?phase=LIVE&topic=bin-collection"] {
        assert!(grace.get(list).await.body.contains("Bins online"), "{list}");
    }
    assert!(!grace.get("/case-studies?phase=ALPHA").await.body.contains("Bins online"));

    // Two edits from version 1: the second is refused and says why.
    let edit = ada.get(&format!("{path}/edit")).await;
    assert!(edit.body.contains("name=\"version\" value=\"1\""));
    assert!(edit.body.contains("What changed (optional for a typo fixed)"), "{}", edit.body);
    let mut changed = fields.to_vec();
    changed.push(("version", "1"));
    changed[1] = ("title", "Bins online, again");
    changed.push(("changeNote", "Said it <again>"));
    let saved = ada.post(&format!("{path}/edit"), &changed).await;
    assert_eq!(saved.location(), format!("{path}?saved=1"));
    assert!(ada.get(saved.location()).await.body.contains("Your changes are saved and published."));
    // Readers see when and why it last changed, and every update, and what changed.
    let page = grace.get(&path).await;
    assert!(
        page.body.contains(": Said it &lt;again&gt; — <a href=\"") && page.body.contains("see all updates"),
        "{}",
        page.body
    );
    let history = grace.get(&format!("{path}/history")).await;
    assert_eq!(history.status, StatusCode::OK);
    assert!(history.body.contains("<strong>Version 2</strong>") && history.body.contains("Said it &lt;again&gt;"));
    assert!(history.body.contains("No note: a small correction."), "version 1 has none");
    let compare = grace.get(&format!("{path}/history/compare?from=1&to=2")).await;
    assert_eq!(compare.status, StatusCode::OK);
    assert!(
        compare.body.contains("<ins class=\"diff__added\"><span class=\"visually-hidden\">[added: </span>again</ins>")
            || compare.body.contains("again<span class=\"visually-hidden\">]</span></ins>"),
        "{}",
        compare.body
    );
    for bad in ["from=1&to=99", "from=x&to=2", "from=1&to=99999999999"] {
        let page = grace.get(&format!("{path}/history/compare?{bad}")).await;
        assert!(matches!(page.status.as_u16(), 303 | 404), "{bad}: {}", page.status);
    }
    changed.retain(|(name, _)| *name != "changeNote");
    changed[1] = ("title", "A stale title");
    let conflict = ada.post(&format!("{path}/edit"), &changed).await;
    assert_eq!(conflict.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(conflict.body.contains("Someone saved a newer version"), "{}", conflict.body);
    assert!(grace.get(&path).await.body.contains("Bins online, again"));
    // Others cannot edit, but can mark it useful and say they are working on it too.
    grace.register("grace@example.org", "Grace").await;
    assert_eq!(grace.get(&format!("{path}/edit")).await.status, StatusCode::FORBIDDEN);
    let page = grace.get(&path).await;
    assert!(page.body.contains("0 members found this useful."));
    assert_eq!(grace.post(&format!("{path}/useful"), &[("on", "1")]).await.location(), path);
    assert!(grace.get(&path).await.body.contains("1 member found this useful."));
    let too_long = "n".repeat(501);
    let refused = grace.post(&format!("{path}/interest"), &[("note", too_long.as_str())]).await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(refused.body.contains("<a href=\"#note\">"));
    let interested = grace.post(&format!("{path}/interest"), &[("note", "Wessex is starting this <too>.")]).await;
    assert_eq!(interested.location(), format!("{path}?interested=1"));
    assert!(!grace.get(&path).await.body.contains("Who else is working on this"), "only authors see who");
    let seen = ada.get(&path).await;
    assert!(
        seen.body.contains("Who else is working on this") && seen.body.contains("Wessex is starting this &lt;too&gt;."),
        "{}",
        seen.body
    );
    for missing in ["/case-studies/999", "/case-studies/abc", "/topics/nope", "/organisations/nope"] {
        assert_eq!(grace.get(missing).await.status, StatusCode::NOT_FOUND, "{missing}");
    }
}

async fn atom_feeds_are_valid_and_leave_out_drafts(app: TestApp) {
    use serde_json::json;
    let curator = app.member("curator@example.org", "Curator").await;
    app.execute_sql("UPDATE members SET role = 'admin' WHERE email_normalized = 'curator@example.org'").await;
    let mut topics = Vec::new();
    for name in ["Bins", "Parks"] {
        let data = curator
            .data("mutation($n: String!) { createTopic(input: { name: $n }) { topic { id } } }", json!({ "n": name }))
            .await;
        topics.push(data["createTopic"]["topic"]["id"].as_str().unwrap().to_string());
    }
    let ada = app.member("ada@example.org", "Ada & Co").await;
    const CREATE: &str =
        "mutation($input: CreateCaseStudyInput!) { createCaseStudy(input: $input) { caseStudy { id } } }";
    let mut ids = Vec::new();
    for (title, topic) in [("Bins <online>", &topics[0]), ("Parks booking", &topics[1]), ("Secret draft", &topics[0])] {
        let input = json!({ "title": title, "summary": "What & why", "body": "We **did** it.", "phase": "LIVE", "topicIds": [topic] });
        let id = ada.data(CREATE, json!({ "input": input })).await["createCaseStudy"]["caseStudy"]["id"]
            .as_str()
            .unwrap()
            .to_string();
        if title != "Secret draft" {
            ada.data(
                "mutation($id: ID!) { publishCaseStudy(input: { id: $id }) { caseStudy { id } } }",
                json!({ "id": id }),
            )
            .await;
        }
        ids.push(id);
    }

    let fetch = |path: &'static str| {
        let app = app.clone();
        async move {
            let response = app.http().get(app.url(path)).send().await.unwrap();
            let status = response.status();
            let content_type =
                response.headers().get("content-type").map(|v| v.to_str().unwrap().to_string()).unwrap_or_default();
            (status, content_type, response.text().await.unwrap())
        }
    };
    let (status, content_type, xml) = fetch("/feeds/case-studies.atom").await;
    assert_eq!((status, content_type.as_str()), (StatusCode::OK, "application/atom+xml; charset=utf-8"));
    let document = roxmltree::Document::parse(&xml).unwrap_or_else(|e| panic!("not XML ({e}): {xml}"));
    let feed = document.root_element();
    assert_eq!((feed.tag_name().name(), feed.tag_name().namespace()), ("feed", Some("http://www.w3.org/2005/Atom")));
    let child = |node: roxmltree::Node, name: &str| {
        node.children().find(|c| c.tag_name().name() == name).map(|c| c.text().unwrap_or("").to_string())
    };
    for required in ["id", "title", "updated"] {
        assert!(child(feed, required).is_some_and(|t| !t.is_empty()), "feed lacks {required}");
    }
    let entries: Vec<roxmltree::Node> = feed.children().filter(|c| c.tag_name().name() == "entry").collect();
    assert_eq!(entries.len(), 2, "the draft is left out: {xml}");
    let newest = entries[0];
    assert_eq!(child(newest, "title").unwrap(), "Parks booking");
    assert_eq!(child(entries[1], "title").unwrap(), "Bins <online>", "escaped in XML, intact when parsed");
    let number = kettle::graphql::relay::parse_global_id_of("CaseStudy", &ids[1]).unwrap();
    // Served from a bare IP address (no host name for a tag URI): the permanent address.
    assert_eq!(child(newest, "id").unwrap(), app.url(&format!("/case-studies/{number}")));
    assert_eq!(child(newest, "content").unwrap(), "<p>We <strong>did</strong> it.</p>\n", "HTML content, escaped once");
    for required in ["updated", "published", "author", "summary", "link"] {
        assert!(newest.children().any(|c| c.tag_name().name() == required), "entry lacks {required}");
    }
    let updated = child(feed, "updated").unwrap();
    assert!(updated.parse::<jiff::Timestamp>().is_ok(), "{updated}");
    let link = newest.children().find(|c| c.tag_name().name() == "link").unwrap();
    assert_eq!(link.attribute("href"), Some(app.url(&format!("/case-studies/{number}")).as_str()));

    // The same entries keep their ids and times when fetched again.
    assert_eq!(fetch("/feeds/case-studies.atom").await.2, xml);
    let (_, _, bins) = fetch("/feeds/topics/bins.atom").await;
    let bins = roxmltree::Document::parse(&bins).unwrap();
    let titles: Vec<String> =
        bins.descendants().filter(|n| n.tag_name().name() == "entry").filter_map(|e| child(e, "title")).collect();
    assert_eq!(titles, ["Bins <online>"]);
    assert_eq!(fetch("/feeds/topics/no-such-topic.atom").await.0, StatusCode::NOT_FOUND);
    assert_eq!(fetch("/feeds/organisations/no-such-organisation.atom").await.0, StatusCode::NOT_FOUND);
}

async fn search_page_shows_escaped_highlighted_results(app: TestApp) {
    use serde_json::json;
    let curator = app.member("curator@example.org", "Curator").await;
    app.execute_sql("UPDATE members SET role = 'admin' WHERE email_normalized = 'curator@example.org'").await;
    let topic = curator.data("mutation { createTopic(input: { name: \"Waste\" }) { topic { id } } }", json!({})).await
        ["createTopic"]["topic"]["id"]
        .clone();
    let input = json!({ "title": "Bins <b>online</b>", "summary": "Texts before collection day.", "body": "Residents & <i>bins</i>.", "phase": "LIVE", "topicIds": [topic] });
    let id = curator
        .data(
            "mutation($input: CreateCaseStudyInput!) { createCaseStudy(input: $input) { caseStudy { id } } }",
            json!({ "input": input }),
        )
        .await["createCaseStudy"]["caseStudy"]["id"]
        .clone();
    curator
        .data("mutation($id: ID!) { publishCaseStudy(input: { id: $id }) { caseStudy { id } } }", json!({ "id": id }))
        .await;

    let mut browser = Browser::new(&app);
    let empty = browser.get("/search").await;
    assert_eq!(empty.status, StatusCode::OK);
    assert!(!empty.body.contains("result"));
    let page = browser.get("/search?q=bins&kind=CASE_STUDY").await;
    assert!(page.body.contains("1 result for “bins”"), "{}", page.body);
    assert!(page.body.contains("Bins &lt;b&gt;online&lt;&#x2f;b&gt;"), "titles are escaped: {}", page.body);
    assert!(page.body.contains("<mark>bins</mark>") && !page.body.contains("<i>bins"), "{}", page.body);
    let none = browser.get("/search?q=%3Cscript%3E&kind=NONSENSE").await;
    assert!(none.body.contains("0 results for “&lt;script&gt;”"), "{}", none.body);
    let long = browser.get(&format!("/search?q={}", "x".repeat(500))).await;
    assert_eq!(long.status, StatusCode::OK, "an over-long query is cut, not an error");
}

/// Starts a group and schedules a one-off meetup through the forms; returns the meetup's
/// page, such as `/meetups/events/1`.
pub(crate) async fn organise_a_meetup(organiser: &mut Browser, group: &str, capacity: &str) -> String {
    organiser.get("/meetups/new-group").await;
    let created = organiser.post("/meetups/new-group", &[("name", group), ("region", "North West")]).await;
    assert_eq!(created.status, StatusCode::SEE_OTHER, "{}", created.body);
    let slug = created.location().trim_start_matches("/meetups/groups/").to_string();
    let scheduled = organiser
        .post(
            &format!("/meetups/groups/{slug}/schedule"),
            &[
                ("title", "TeaCamp"),
                ("description", "Tea and *talk*."),
                ("timeZone", "Europe/London"),
                ("date", "2030-01-10"),
                ("startTime", "16:00"),
                ("endTime", "18:00"),
                ("repeat", "NONE"),
                ("weekdayOrdinal", "2"),
                ("count", "6"),
                ("until", ""),
                ("venueName", "The Federation"),
                ("venueAddress", "Federation Street, Manchester"),
                ("venueDirections", ""),
                ("onlineUrl", ""),
                ("capacity", capacity),
            ],
        )
        .await;
    assert_eq!(scheduled.status, StatusCode::SEE_OTHER, "{}", scheduled.body);
    let location = scheduled.location();
    assert!(location.starts_with("/meetups/events/") && location.ends_with("?scheduled=1"), "{location}");
    location.trim_end_matches("?scheduled=1").to_string()
}

/// The `value` of the input with the id `name` on a page.
fn input_value(body: &str, name: &str) -> String {
    let start = body.find(&format!("id=\"{name}\" name=\"{name}\"")).unwrap_or_else(|| panic!("no {name} in {body}"));
    let tag = &body[start..start + body[start..].find('>').unwrap()];
    tag.split(" value=\"").nth(1).map(|v| v[..v.find('"').unwrap()].to_string()).unwrap_or_default()
}

async fn meetup_pages_ask_for_sign_in_and_keep_organiser_pages_to_organisers(app: TestApp) {
    let mut olu = Browser::new(&app);
    olu.register("olu@example.org", "Olu").await;
    let event = organise_a_meetup(&mut olu, "TeaCamp North", "").await;

    // Anyone may look; doing anything needs signing in first, and comes back afterwards.
    let mut visitor = Browser::new(&app);
    for path in ["/meetups", "/meetups/groups/teacamp-north", event.as_str()] {
        assert_eq!(visitor.get(path).await.status, StatusCode::OK, "{path}");
    }
    assert!(visitor.get(&event).await.body.contains("to say you are going"));
    let private = [
        "/meetups/new-group".to_string(),
        "/meetups/mine".to_string(),
        "/meetups/groups/teacamp-north/schedule".to_string(),
        format!("{event}/edit"),
        format!("{event}/attendees"),
        format!("{event}/attendees.csv"),
        format!("{event}/cancel"),
    ];
    for path in &private {
        let page = visitor.get(path).await;
        let back = url::form_urlencoded::byte_serialize(path.as_bytes()).collect::<String>();
        assert_eq!(
            (page.status, page.location()),
            (StatusCode::SEE_OTHER, format!("/sign-in?return_to={back}").as_str())
        );
    }
    for missing in ["/meetups/groups/nope", "/meetups/events/999999", "/meetups/events/abc", "/meetups/events/1x/edit"]
    {
        assert_eq!(olu.get(missing).await.status, StatusCode::NOT_FOUND, "{missing}");
    }

    // A member who does not organise the group cannot change it or see who is going.
    let mut pat = Browser::new(&app);
    pat.register("pat@example.org", "Pat").await;
    for path in [
        format!("{event}/edit"),
        format!("{event}/attendees"),
        format!("{event}/attendees.csv"),
        format!("{event}/cancel"),
    ] {
        let page = pat.get(&path).await;
        assert_eq!(page.status, StatusCode::FORBIDDEN, "{path}");
        assert!(page.headers["content-type"].to_str().unwrap().starts_with("text/html"), "{path}");
        assert!(!page.body.contains("status,position"), "{path}");
    }
    let fields = [
        ("title", "Taken over"),
        ("timeZone", "Europe/London"),
        ("date", "2030-01-10"),
        ("startTime", "16:00"),
        ("endTime", "18:00"),
        ("venueName", "Elsewhere"),
    ];
    let refused = pat.post(&format!("{event}/edit"), &fields).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert_eq!(pat.post(&format!("{event}/cancel"), &[("scope", "THIS")]).await.status, StatusCode::FORBIDDEN);
    assert_eq!(pat.post(&format!("{event}/reinstate"), &[]).await.status, StatusCode::FORBIDDEN);
    assert_eq!(
        app.count("SELECT COUNT(*) FROM meetup_events WHERE title = 'TeaCamp' AND status = 'scheduled'").await,
        1
    );

    // Forms without the CSRF token are refused, and change nothing.
    for (path, fields) in [
        (format!("{event}/rsvp"), vec![("going", "1")]),
        ("/meetups/new-group".to_string(), vec![("name", "Forged"), ("region", "Anywhere")]),
        ("/meetups/groups/teacamp-north/join".to_string(), vec![]),
        ("/meetups/calendar".to_string(), vec![]),
    ] {
        let response = pat.http.post(app.url(&path)).form(&fields).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{path}");
        assert!(response.text().await.unwrap().contains("This form has expired"), "{path}");
    }
    assert_eq!(app.count("SELECT COUNT(*) FROM meetup_rsvps").await, 0);
    assert_eq!(app.count("SELECT COUNT(*) FROM meetup_groups").await, 1);
    // With the token, the same RSVP goes through.
    assert_eq!(pat.post(&format!("{event}/rsvp"), &[("going", "1")]).await.location(), event);
    assert!(pat.get(&event).await.body.contains("You are going."));
}

async fn cancelling_asks_first_and_a_cancelled_meetup_can_be_put_back_on(app: TestApp) {
    let mut olu = Browser::new(&app);
    olu.register("olu@example.org", "Olu").await;
    let event = organise_a_meetup(&mut olu, "TeaCamp North", "1").await;
    let mut pat = Browser::new(&app);
    pat.register("pat@example.org", "Pat").await;
    pat.get(&event).await;
    pat.post(&format!("{event}/rsvp"), &[("going", "1")]).await;
    let mut ada = Browser::new(&app);
    ada.register("ada@example.org", "Ada").await;
    ada.get(&event).await;
    ada.post(&format!("{event}/rsvp"), &[("going", "1")]).await;
    assert!(ada.get(&event).await.body.contains("you are number 1 on the waitlist"));
    let status = || app.count("SELECT COUNT(*) FROM meetup_events WHERE status = 'cancelled'");

    // The organiser's page links to a page that asks first, saying who will be told.
    let page = olu.get(&event).await;
    assert!(page.body.contains(&format!("href=\"{event}/cancel\"")), "{}", page.body);
    assert!(!page.body.contains(&format!("action=\"{event}/cancel\"")), "no one-click cancel");
    let ask = olu.get(&format!("{event}/cancel")).await;
    assert_eq!(ask.status, StatusCode::OK);
    assert!(ask.body.contains("1 person is going and 1 is waiting for a seat."), "{}", ask.body);
    assert!(ask.body.contains("name=\"message\"") && ask.body.contains("No, keep it"), "{}", ask.body);
    assert!(!ask.body.contains("name=\"scope\""), "a meetup that does not repeat has no choice of which");

    // Too long a message is explained, kept, and cancels nothing.
    let long = "Sorry. ".repeat(150);
    let refused = olu.post(&format!("{event}/cancel"), &[("scope", "THIS"), ("message", &long)]).await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(refused.body.contains("must be 1000 characters or fewer") && refused.body.contains("Sorry. Sorry."));
    assert_eq!(status().await, 0);

    let message = "The venue <flooded>.\nWe meet again in March.";
    let done = olu.post(&format!("{event}/cancel"), &[("scope", "THIS"), ("message", message)]).await;
    assert_eq!(done.location(), format!("{event}?cancelled=1"));
    assert_eq!(status().await, 1);
    let page = olu.get(done.location()).await;
    assert!(page.body.contains("The meetup is cancelled. Those going and waiting are told"), "{}", page.body);
    for (who, page) in [("organiser", page), ("attendee", pat.get(&event).await)] {
        let body = &page.body;
        assert!(body.contains("<strong>Cancelled.</strong>"), "{who}");
        assert!(body.contains("The venue &lt;flooded&gt;.\nWe meet again in March."), "{who}: {body}");
        assert!(!body.contains("<dt>Seats</dt>") && !body.contains("You are going."), "{who}");
        assert!(!body.contains("Add to the agenda") && !body.contains("I'm going"), "{who}");
        assert_eq!(body.contains("Put this meetup back on"), who == "organiser", "{who}");
    }
    assert!(olu.get(&format!("{event}/cancel")).await.body.contains("It is already cancelled."));

    // Put back on: as it was, the waitlist in its order.
    assert_eq!(pat.post(&format!("{event}/reinstate"), &[]).await.status, StatusCode::FORBIDDEN);
    olu.get(&event).await;
    let back = olu.post(&format!("{event}/reinstate"), &[]).await;
    assert_eq!(back.location(), format!("{event}?reinstated=1"));
    assert_eq!(status().await, 0);
    assert!(olu.get(back.location()).await.body.contains("The meetup is back on."));
    let page = pat.get(&event).await;
    assert!(page.body.contains("You are going.") && !page.body.contains("flooded"), "{}", page.body);
    assert!(ada.get(&event).await.body.contains("you are number 1 on the waitlist"));
    // Once more: it is on, so there is nothing to put back.
    olu.get(&event).await;
    let again = olu.post(&format!("{event}/reinstate"), &[]).await;
    assert_eq!(again.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(again.body.contains("It is not cancelled."), "{}", again.body);
}

async fn a_meetup_is_copied_to_a_new_date_from_its_page(app: TestApp) {
    let mut olu = Browser::new(&app);
    olu.register("olu@example.org", "Olu").await;
    let event = organise_a_meetup(&mut olu, "TeaCamp North", "").await;
    let page = olu.get(&event).await;
    assert!(page.body.contains(&format!("action=\"{event}/copy\"")), "{}", page.body);
    assert_eq!(input_value(&page.body, "time"), "16:00", "the time is offered as this one's");

    // A date that is not one is explained on the page, with what was typed kept.
    let bad = olu.post(&format!("{event}/copy"), &[("date", "14 Feb"), ("time", "16:00")]).await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(bad.body.contains("<a href=\"#date\">Enter the start as a date and time"), "{}", bad.body);
    assert_eq!(input_value(&bad.body, "date"), "14 Feb");
    assert_eq!(app.count("SELECT COUNT(*) FROM meetup_events").await, 1);

    let done = olu.post(&format!("{event}/copy"), &[("date", "2030-02-14"), ("time", "18:30")]).await;
    let location = done.location().to_string();
    assert!(location.starts_with("/meetups/events/") && location.ends_with("?scheduled=1"), "{location}");
    assert_ne!(location.trim_end_matches("?scheduled=1"), event);
    let copy = olu.get(&location).await;
    assert!(copy.body.contains("Thursday 14 February 2030, 18:30 to 20:30"), "{}", copy.body);
    assert_eq!(app.count("SELECT COUNT(*) FROM meetup_events WHERE local_start = '2030-02-14T18:30:00'").await, 1);

    // Only organisers.
    let mut pat = Browser::new(&app);
    pat.register("pat@example.org", "Pat").await;
    let page = pat.get(&event).await;
    assert!(!page.body.contains("Copy the meetup"));
    let refused = pat.post(&format!("{event}/copy"), &[("date", "2030-02-21"), ("time", "16:00")]).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert_eq!(app.count("SELECT COUNT(*) FROM meetup_events").await, 2);
}

async fn the_schedule_form_explains_problems_and_keeps_what_was_typed(app: TestApp) {
    let mut olu = Browser::new(&app);
    olu.register("olu@example.org", "Olu").await;
    let event = organise_a_meetup(&mut olu, "TeaCamp North", "").await;
    let form = olu.get("/meetups/groups/teacamp-north/schedule").await;
    assert_eq!(form.status, StatusCode::OK);
    assert!(form.body.contains("<option value=\"Europe&#x2f;London\" selected>"), "London is the default");
    assert!(!form.body.contains("value=\"None\"") && !form.body.contains("value=\"none\""), "{}", form.body);

    let typed = [
        ("title", "Tea <camp>"),
        ("description", "Bring a mug"),
        ("timeZone", "Asia/Tokyo"),
        ("date", "2030-01-10"),
        ("startTime", "16:00"),
        ("endTime", ""),
        ("repeat", "NONE"),
        ("venueName", ""),
        ("venueAddress", ""),
        ("onlineUrl", ""),
        ("capacity", "lots"),
    ];
    let page = olu.post("/meetups/groups/teacamp-north/schedule", &typed).await;
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(page.body.contains("<title>Error: Schedule a meetup – Kettle</title>"), "{}", page.body);
    assert!(page.body.contains("There is a problem"));
    for anchor in ["#endTime", "#venueName", "#capacity"] {
        assert!(page.body.contains(&format!("<a href=\"{anchor}\">")), "{anchor}: {}", page.body);
    }
    assert!(
        page.body.contains("id=\"endTime-error\"")
            && page.body.contains("aria-describedby=\"endTime-hint endTime-error\"")
    );
    assert!(page.body.contains("value=\"Tea &lt;camp&gt;\""), "the title is kept, escaped");
    assert!(page.body.contains(">Bring a mug</textarea>"));
    assert!(page.body.contains("<option value=\"Asia&#x2f;Tokyo\" selected>"), "the zone is kept");
    assert!(page.body.contains("value=\"2030-01-10\"") && page.body.contains("value=\"16:00\""), "{}", page.body);
    assert!(page.body.contains("value=\"lots\"") && page.body.contains("Enter when it ends, in 24-hour time"));
    assert_eq!(app.count("SELECT COUNT(*) FROM meetup_events").await, 1);

    // A series whose first date is not the weekday it repeats on says so, by the recurrence.
    let series = [
        ("title", "TeaCamp monthly"),
        ("timeZone", "Europe/London"),
        ("date", "2030-01-03"),
        ("startTime", "16:00"),
        ("endTime", "18:00"),
        ("repeat", "MONTHLY_BY_WEEKDAY"),
        ("weekdayOrdinal", "2"),
        ("count", "6"),
        ("until", ""),
        ("venueName", "The Federation"),
    ];
    let page = olu.post("/meetups/groups/teacamp-north/schedule", &series).await;
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(page.body.contains("<a href=\"#recurrence\">"), "{}", page.body);
    assert!(page.body.contains("value=\"MONTHLY_BY_WEEKDAY\" checked"), "the choice is kept");
    assert!(page.body.contains("<option value=\"2\" selected>Second</option>"));
    assert_eq!(app.count("SELECT COUNT(*) FROM meetup_events").await, 1);

    // The change form shows the meetup as it is (no online link, no seat limit), and
    // saving it unchanged works.
    let form = olu.get(&format!("{event}/edit")).await;
    assert_eq!(form.status, StatusCode::OK);
    let shown = |name: &str| input_value(&form.body, name);
    assert_eq!(
        ["title", "date", "startTime", "endTime", "endDate", "venueName", "venueDirections", "onlineUrl", "capacity"]
            .map(shown),
        ["TeaCamp", "2030-01-10", "16:00", "18:00", "", "The Federation", "", "", ""],
        "{}",
        form.body
    );
    assert!(form.body.contains(">Tea and *talk*.</textarea>"));
    // Sent back as a browser would: what the form showed.
    let (directions, online, capacity) = (shown("venueDirections"), shown("onlineUrl"), shown("capacity"));
    let unchanged = [
        ("title", "TeaCamp"),
        ("description", "Tea and *talk*."),
        ("timeZone", "Europe/London"),
        ("date", "2030-01-10"),
        ("startTime", "16:00"),
        ("endTime", "18:00"),
        ("venueName", "The Federation"),
        ("venueAddress", "Federation Street, Manchester"),
        ("venueDirections", directions.as_str()),
        ("onlineUrl", online.as_str()),
        ("capacity", capacity.as_str()),
    ];
    let saved = olu.post(&format!("{event}/edit"), &unchanged).await;
    assert_eq!((saved.status, saved.location()), (StatusCode::SEE_OTHER, format!("{event}?changed=1").as_str()));
    let mut moved = unchanged.to_vec();
    moved[4] = ("startTime", "17:00");
    moved[5] = ("endTime", "16:30");
    let page = olu.post(&format!("{event}/edit"), &moved).await;
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(page.body.contains("<title>Error: Change this meetup – Kettle</title>"));
    assert!(page.body.contains("The end must be after the start.") && page.body.contains("value=\"16:30\""));
    assert!(page.body.contains("href=\"#endTime\""), "the problem is on the end time: {}", page.body);
    // Past midnight: an end day; a date the form cannot read is the form's to explain.
    let mut late = unchanged.to_vec();
    late[5] = ("endTime", "01:00");
    late.push(("endDate", "2030-01-11"));
    let saved = olu.post(&format!("{event}/edit"), &late).await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.body);
    let form = olu.get(&format!("{event}/edit")).await;
    assert_eq!(input_value(&form.body, "endDate"), "2030-01-11");
    let mut unreadable = unchanged.to_vec();
    unreadable[3] = ("date", "10th January");
    let page = olu.post(&format!("{event}/edit"), &unreadable).await;
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(page.body.contains("Enter the day it happens on") && page.body.contains("href=\"#date\""), "{}", page.body);
}

async fn deleting_a_comment_asks_first(app: TestApp) {
    let ada = app.member("ada@example.org", "Ada").await;
    let bob = app.member("bob@example.org", "Bob").await;
    let root = crate::case_studies::admin(&app, "root@example.org", "Root").await;
    let topic = crate::case_studies::create_topic(&root, "Waste").await;
    let study = crate::comments::published(&ada, &topic, "Bin reminders").await;
    let comment = crate::comments::post(&bob, &study, None, "Nice <b>work</b>.").await;
    let number = crate::artefacts::number("Comment", &serde_json::json!(comment));
    let page_of = format!("/case-studies/{}", crate::artefacts::number("CaseStudy", &serde_json::json!(study)));

    let mut browser = Browser::new(&app);
    browser.sign_in("bob@example.org", PASSWORD).await;
    // The page links to a question, not to a button that deletes at once.
    let page = browser.get(&page_of).await;
    assert!(page.body.contains(&format!("href=\"/comments/{number}/delete\"")), "{}", page.body);
    assert!(!page.body.contains(&format!("action=\"/comments/{number}/delete\"")));
    let ask = browser.get(&format!("/comments/{number}/delete")).await;
    assert_eq!(ask.status, StatusCode::OK);
    assert!(ask.body.contains("Delete this comment?") && ask.body.contains("<p>Nice work.</p>"), "{}", ask.body);
    let back = format!("href=\"{}#comment-{number}\">No, keep it", page_of.replace('/', "&#x2f;"));
    assert!(ask.body.contains(&back), "{}", ask.body);
    // Someone else may not delete it, nor be asked; a stranger is asked to sign in.
    let mut ada_browser = Browser::new(&app);
    ada_browser.sign_in("ada@example.org", PASSWORD).await;
    assert_eq!(ada_browser.get(&format!("/comments/{number}/delete")).await.status, StatusCode::FORBIDDEN);
    assert_eq!(Browser::new(&app).get(&format!("/comments/{number}/delete")).await.status, StatusCode::SEE_OTHER);
    let comments = "SELECT COUNT(*) FROM comments";
    assert_eq!(app.count(comments).await, 1);

    let done = browser.post(&format!("/comments/{number}/delete"), &[]).await;
    assert_eq!(done.location(), format!("{page_of}#comments"));
    assert_eq!(app.count(comments).await, 0, "without replies, it is gone");
    assert_eq!(browser.get(&format!("/comments/{number}/delete")).await.status, StatusCode::NOT_FOUND);
}

async fn pending_join_requests_show_to_the_requester_and_the_admins(app: TestApp) {
    use serde_json::json;
    let ada = app.member("ada@example.org", "Ada").await;
    let (organisation, slug) = crate::case_studies::create_organisation(&ada, "Bath Council").await;
    let mut bob = Browser::new(&app);
    bob.register("bob@example.org", "Bob").await;
    bob.get(&format!("/organisations/{slug}")).await;
    assert_eq!(bob.post(&format!("/organisations/{slug}/join"), &[]).await.status, StatusCode::SEE_OTHER);

    // Bob sees that he is waiting, and why the form does not offer Bath Council yet.
    let home = bob.get("/").await;
    assert!(home.body.contains("an admin there has not decided yet"), "{}", home.body);
    assert!(home.body.contains("Join your organisation"), "where to start says how");
    let form = bob.get("/case-studies/new").await;
    assert!(form.body.contains("Bath Council is not offered yet"), "{}", form.body);
    assert!(!form.body.contains(&format!("<option value=\"{organisation}\"")));
    // Ada, its admin, sees who waits for her.
    let mut ada_browser = Browser::new(&app);
    ada_browser.sign_in("ada@example.org", PASSWORD).await;
    let home = ada_browser.get("/").await;
    assert!(home.body.contains("Waiting for you to decide"), "{}", home.body);
    assert!(home.body.contains(">Bob</a> asked to join <a href="), "{}", home.body);
    // Nobody else sees them.
    const PENDING: &str = "{ member(handle: \"bob\") { pendingOrganisations { name } } }";
    assert_eq!(ada.data(PENDING, json!({})).await["member"]["pendingOrganisations"], json!([]));
    const TO_DECIDE: &str = "{ member(handle: \"ada\") { joinRequestsToDecide { member { handle } } } }";
    let bob_client = app.sign_in("bob@example.org", PASSWORD).await;
    assert_eq!(bob_client.data(TO_DECIDE, json!({})).await["member"]["joinRequestsToDecide"], json!([]));
    assert_eq!(
        ada.data("{ viewer { joinRequestsToDecide { member { handle } organisation { name } } } }", json!({})).await,
        json!({ "viewer": { "joinRequestsToDecide": [{ "member": { "handle": "bob" }, "organisation": { "name": "Bath Council" } }] } })
    );

    // Approved: no longer waiting, and offered in the form.
    let bob_id = bob_client.viewer_id().await.unwrap();
    const DECIDE: &str = "mutation($input: DecideMembershipRequestInput!) { decideMembershipRequest(input: $input) { userErrors { code } } }";
    let input = json!({ "input": { "organisationId": organisation, "memberId": bob_id, "approve": true } });
    assert_eq!(ada.data(DECIDE, input).await["decideMembershipRequest"]["userErrors"], json!([]));
    assert!(!bob.get("/").await.body.contains("an admin there has not decided yet"));
    assert!(!ada_browser.get("/").await.body.contains("Waiting for you to decide"));
    let form = bob.get("/case-studies/new").await;
    assert!(form.body.contains(">Bath Council</option>") && !form.body.contains("is not offered yet"), "{}", form.body);
}

async fn deleting_a_draft_asks_first(app: TestApp) {
    let root = crate::case_studies::admin(&app, "root@example.org", "Root").await;
    let topic = crate::case_studies::create_topic(&root, "Waste").await;
    let mut ada = Browser::new(&app);
    ada.register("ada@example.org", "Ada").await;
    ada.get("/case-studies/new").await;
    let fields = [
        ("action", "save"),
        ("title", "Bins"),
        ("summary", "Reminders."),
        ("body", "We texted."),
        ("phase", "LIVE"),
        ("topicIds", topic.as_str()),
    ];
    let saved = ada.post("/case-studies/new", &fields).await;
    let path = saved.location().to_string();
    let page = ada.get(&path).await;
    assert!(page.body.contains(&format!("href=\"{path}/delete\">Delete this draft")), "{}", page.body);
    let ask = ada.get(&format!("{path}/delete")).await;
    assert_eq!(ask.status, StatusCode::OK);
    assert!(ask.body.contains("Delete the draft “Bins”?") && ask.body.contains("No, keep it"), "{}", ask.body);
    // Nobody else is asked, nor can delete it.
    let mut bob = Browser::new(&app);
    bob.register("bob@example.org", "Bob").await;
    assert_ne!(bob.get(&format!("{path}/delete")).await.status, StatusCode::OK);
    bob.get("/").await;
    bob.post(&format!("{path}/delete"), &[]).await;
    assert_eq!(app.count("SELECT COUNT(*) FROM case_studies").await, 1);

    let done = ada.post(&format!("{path}/delete"), &[]).await;
    assert_eq!(done.location(), "/?draft_deleted=1");
    assert!(ada.get(done.location()).await.body.contains("Your draft is deleted."));
    assert_eq!(app.count("SELECT COUNT(*) FROM case_studies").await, 0);
    assert_eq!(ada.get(&path).await.status, StatusCode::NOT_FOUND);
}

async fn profiles_show_organisations_work_and_groups(app: TestApp) {
    use serde_json::json;
    let root = crate::case_studies::admin(&app, "root@example.org", "Root").await;
    let topic = crate::case_studies::create_topic(&root, "Waste").await;
    let ada = app.member("ada@example.org", "Ada").await;
    crate::case_studies::create_organisation(&ada, "Bath Council").await;
    crate::comments::published(&ada, &topic, "Bin reminders").await;
    crate::case_studies::create_case_study(&ada, crate::case_studies::case_study("Not yet", &[&topic])).await;
    crate::artefacts::share(&ada, crate::artefacts::artefact("Reminder service", &[&topic])).await;
    ada.data(
        "mutation { createMeetupGroup(input: { name: \"TeaCamp West\", region: \"South West\" }) { userErrors { code } } }",
        json!({}),
    )
    .await;
    let page = Browser::new(&app).get("/members/@ada").await;
    assert_eq!(page.status, StatusCode::OK);
    for part in ["Bath Council</a>", "Bin reminders</a>", "Reminder service</a> (code)", "TeaCamp West</a>"] {
        assert!(page.body.contains(part), "{part}: {}", page.body);
    }
    assert!(!page.body.contains("Not yet"), "a draft is not on a profile");
    let empty = Browser::new(&app).get("/members/@root").await;
    assert!(empty.body.contains("None published yet.") && empty.body.contains("None yet."), "{}", empty.body);
}

async fn giving_up_a_seat_in_a_full_meetup_asks_first_and_going_offers_the_group(app: TestApp) {
    let mut olu = Browser::new(&app);
    olu.register("olu@example.org", "Olu").await;
    let event = organise_a_meetup(&mut olu, "TeaCamp North", "1").await;
    let mut pat = Browser::new(&app);
    pat.register("pat@example.org", "Pat").await;
    pat.get(&event).await;
    pat.post(&format!("{event}/rsvp"), &[("going", "1")]).await;

    // Going, and not in the group: the page offers to join it.
    let page = pat.get(&event).await;
    assert!(page.body.contains("Join TeaCamp North to hear of its next meetups."), "{}", page.body);
    assert!(page.body.contains("action=\"/meetups/groups/teacamp-north/join\""));
    // Full: giving up the seat asks first, and says where it goes.
    assert!(page.body.contains(&format!("href=\"{event}/give-up\"")), "{}", page.body);
    let ask = pat.get(&format!("{event}/give-up")).await;
    assert_eq!(ask.status, StatusCode::OK);
    assert!(ask.body.contains("your seat goes to the first person on the waitlist"), "{}", ask.body);
    assert!(ask.body.contains("No, keep my seat"));
    let going = "SELECT COUNT(*) FROM meetup_rsvps WHERE status = 'going'";
    assert_eq!(app.count(going).await, 1, "asking changes nothing");
    assert_eq!(pat.post(&format!("{event}/rsvp"), &[("going", "0")]).await.location(), event);
    assert_eq!(app.count(going).await, 0);
    // Not going any more: nothing to give up, and no offer.
    assert_eq!(pat.get(&format!("{event}/give-up")).await.location(), event);
    assert!(!pat.get(&event).await.body.contains("to hear of its next meetups"));
    // With seats left, saying no needs no question; a member of the group is not asked to join.
    let mut ada = Browser::new(&app);
    ada.register("ada@example.org", "Ada").await;
    ada.get("/meetups/groups/teacamp-north").await;
    ada.post("/meetups/groups/teacamp-north/join", &[]).await;
    ada.get(&event).await;
    ada.post(&format!("{event}/rsvp"), &[("going", "1")]).await;
    let page = ada.get(&event).await;
    assert!(
        page.body.contains("You are going.") && !page.body.contains("to hear of its next meetups"),
        "{}",
        page.body
    );
    // The group page lists who organises it and who belongs.
    let group = pat.get("/meetups/groups/teacamp-north").await;
    let people = &group.body[group.body.find("id=\"people-heading\"").expect("a People section")..];
    let organised =
        &people[people.find("Organised by").unwrap()..people.find("<h3 class=\"heading-s\">Members").unwrap()];
    assert!(organised.contains("href=\"/members/@olu\">Olu</a>") && !organised.contains("Ada"), "{people}");
    assert!(people.contains("href=\"/members/@ada\">Ada</a>") && !people.contains("Pat"), "{people}");
}

async fn the_attendee_csv_defuses_formulas(app: TestApp) {
    let mut olu = Browser::new(&app);
    olu.register("olu@example.org", "Olu").await;
    let event = organise_a_meetup(&mut olu, "TeaCamp North", "1").await;
    let mut members = Vec::new();
    for (email, name) in
        [("eve@example.org", "=HYPERLINK(\"https://evil.example\")"), ("pat@example.org", "Pat \"Tea\", Esq.")]
    {
        let mut member = Browser::new(&app);
        member.register(email, name).await;
        member.get(&event).await;
        assert_eq!(member.post(&format!("{event}/rsvp"), &[("going", "1")]).await.status, StatusCode::SEE_OTHER);
        members.push(member);
    }
    // Each sees where they stand in their own list.
    assert!(members[0].get("/meetups/mine").await.body.contains("You are going."));
    assert!(members[1].get("/meetups/mine").await.body.contains("You are number 1 on the waitlist."));

    let page = olu.get(&format!("{event}/attendees")).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("=HYPERLINK(&quot;https:&#x2f;&#x2f;evil.example&quot;)"), "{}", page.body);
    let response = olu.http.get(app.url(&format!("{event}/attendees.csv"))).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "text/csv; charset=utf-8");
    let number = event.trim_start_matches("/meetups/events/");
    assert_eq!(
        response.headers()["content-disposition"],
        format!("attachment; filename=\"meetup-{number}-attendees.csv\"").as_str()
    );
    assert_eq!(response.headers()["cache-control"], "no-store");
    let bytes = response.bytes().await.unwrap();
    // UTF-8 with a byte order mark, so that spreadsheet tools read names correctly.
    assert_eq!(bytes[..3], [0xef, 0xbb, 0xbf]);
    let csv = String::from_utf8(bytes[3..].to_vec()).unwrap();
    let lines: Vec<&str> = csv.split("\r\n").collect();
    assert_eq!(lines.len(), 4, "a header, one going, one waiting, and the last line's end: {csv:?}");
    assert_eq!(lines[0], "status,position,display name,handle,organisations,answered,attended");
    // The name a spreadsheet would run as a formula is quoted with a leading apostrophe,
    // and its double quotes doubled.
    assert!(lines[1].starts_with("going,1,\"'=HYPERLINK(\"\"https://evil.example\"\")\",\""), "{csv}");
    assert!(lines[2].starts_with("waitlisted,1,\"Pat \"\"Tea\"\", Esq.\",\""), "{csv}");
    // The handle as it is, no organisation, and when they answered, in the organiser's zone.
    assert!(lines[2].contains(",\"pat-tea-esq\",\"\","), "{csv}");
    let answered = jiff::civil::DateTime::strptime("%Y-%m-%d %H:%M", lines[2].rsplit(',').nth(1).unwrap()).unwrap();
    let now = jiff::Timestamp::now().to_zoned(jiff::tz::TimeZone::get("Europe/London").unwrap()).datetime();
    assert!(answered <= now && now.duration_since(answered) < jiff::SignedDuration::from_mins(5), "{csv}");
    assert!(page.body.contains("<th scope=\"col\">Answered</th>") && page.body.contains("None given"), "{}", page.body);
    assert_eq!(lines[3], "");
}

/// A topic made by an administrator, for the follow tests: its global id.
async fn topic_for_following(app: &TestApp, name: &str) -> String {
    let curator = app.member("curator@example.org", "Curator").await;
    app.execute_sql("UPDATE members SET role = 'admin' WHERE email_normalized = 'curator@example.org'").await;
    let data = curator
        .data(
            "mutation($n: String!) { createTopic(input: { name: $n }) { topic { id } } }",
            serde_json::json!({ "n": name }),
        )
        .await;
    data["createTopic"]["topic"]["id"].as_str().unwrap().to_string()
}

async fn the_follow_control_works_without_javascript(app: TestApp) {
    let topic = topic_for_following(&app, "Bin collection").await;
    let mut ada = Browser::new(&app);
    // Signed out: a way to sign in, and no form.
    let page = ada.get("/topics/bin-collection").await;
    assert!(page.body.contains("to follow this") && !page.body.contains("action=\"&#x2f;follows\""), "{}", page.body);
    ada.register("ada@example.org", "Ada").await;
    let page = ada.get("/topics/bin-collection").await;
    assert!(
        page.body.contains("You are not following this.") && page.body.contains("<option value=\"NONE\" selected>")
    );
    assert!(page.body.contains(&format!("name=\"targetId\" value=\"{topic}\"")), "{}", page.body);

    // A form without this browser's CSRF token follows nothing.
    let fields = [("targetId", topic.as_str()), ("level", "WATCHING"), ("return_to", "/topics/bin-collection#follow")];
    let response = ada.http.post(app.url("/follows")).form(&fields).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert_eq!(app.count("SELECT COUNT(*) FROM follows WHERE target_type = 'Topic'").await, 0);

    let page = ada.post("/follows", &fields).await;
    assert_eq!((page.status, page.location()), (StatusCode::SEE_OTHER, "/topics/bin-collection#follow"));
    let page = ada.get("/topics/bin-collection").await;
    assert!(page.body.contains("You are watching this:") && page.body.contains("<option value=\"WATCHING\" selected>"));
    let list = ada.get("/follows").await;
    assert!(list.body.contains(">Bin collection</a>") && list.body.contains("<option value=\"WATCHING\" selected>"));

    // Only paths inside the site are returned to.
    for evil in ["//evil.example/", "https://evil.example/", "/\\evil.example"] {
        let page = ada.post("/follows", &[("targetId", &topic), ("level", "DIGEST"), ("return_to", evil)]).await;
        assert_eq!((page.status, page.location()), (StatusCode::SEE_OTHER, "/follows"), "{evil}");
    }
    assert!(ada.get("/topics/bin-collection").await.body.contains("You follow this in your digest."));
    // A level that does not exist, or no target, is a page that says so.
    let page = ada.post("/follows", &[("targetId", &topic), ("level", "LOUD"), ("return_to", "/follows")]).await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST);
    assert!(page.body.contains("You cannot follow this"));
    let page = ada.post("/follows", &[("targetId", ""), ("level", "WATCHING"), ("return_to", "/follows")]).await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST);
    let page =
        ada.post("/follows", &[("targetId", "not-an-id"), ("level", "WATCHING"), ("return_to", "/follows")]).await;
    assert!(page.status.is_client_error(), "{}", page.status);
    assert_eq!(app.count("SELECT COUNT(*) FROM follows WHERE target_type = 'Topic'").await, 1);

    // Not following any more.
    let page = ada.post("/follows", &[("targetId", &topic), ("level", "NONE"), ("return_to", "/follows")]).await;
    assert_eq!(page.location(), "/follows");
    assert!(ada.get("/follows").await.body.contains("You do not follow anything yet."));
    assert_eq!(app.count("SELECT COUNT(*) FROM follows WHERE target_type = 'Topic'").await, 0);

    // Signed out, the pages and the form ask to sign in first, coming back to the page.
    let mut stranger = Browser::new(&app);
    stranger.get("/sign-in").await;
    for path in ["/follows", "/notifications", "/notifications/new", "/settings/notifications"] {
        let page = stranger.get(path).await;
        assert_eq!(page.status, StatusCode::SEE_OTHER, "{path}");
        assert!(page.location().starts_with("/sign-in?return_to="), "{path}");
    }
    let page = stranger.post("/follows", &fields).await;
    assert_eq!(page.location(), "/sign-in?return_to=%2Ftopics%2Fbin-collection");
}

async fn the_header_counts_unread_notifications_and_the_inbox_reads_them(app: TestApp) {
    use serde_json::json;
    let topic = topic_for_following(&app, "Street lighting").await;
    let mut ada = Browser::new(&app);
    ada.register("ada@example.org", "Ada").await;
    let home = ada.get("/").await;
    assert!(
        home.body.contains(">Notifications<span class=\"notifications-link__unread\" data-unread hidden>"),
        "{}",
        home.body
    );
    assert!(!home.body.contains("data-after="), "no notification yet");
    let empty = ada.get("/notifications").await;
    assert!(empty.body.contains("You have no notifications yet.") && !empty.body.contains("Mark all as read"));
    ada.get("/topics/street-lighting").await;
    ada.post("/follows", &[("targetId", &topic), ("level", "WATCHING"), ("return_to", "/topics/street-lighting")])
        .await;

    let wyn = app.member("wyn@example.org", "Wyn").await;
    let created = wyn
        .data(
            "mutation($input: CreateCaseStudyInput!) { createCaseStudy(input: $input) { caseStudy { id } } }",
            json!({ "input": { "title": "Lights <dimmed>", "summary": "Part-night lighting.", "body": "Text.", "phase": "LIVE", "topicIds": [topic] } }),
        )
        .await;
    let id = created["createCaseStudy"]["caseStudy"]["id"].as_str().unwrap().to_string();
    wyn.data("mutation($id: ID!) { publishCaseStudy(input: { id: $id }) { caseStudy { id } } }", json!({ "id": id }))
        .await;

    // The dispatcher writes the notification soon after the event commits.
    let mut home = ada.get("/").await;
    for _ in 0..100 {
        // The count and the cursor are two fields, read on two connections: a page
        // rendered while the dispatcher commits may have one without the other.
        if home.body.contains("data-unread-count>1<") && home.body.contains("data-after=\"") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        home = ada.get("/").await;
    }
    assert!(
        home.body.contains(
            ">Notifications<span class=\"notifications-link__unread\" data-unread><span class=\"visually-hidden\">, </span><span class=\"count\" data-unread-count>1</span><span class=\"visually-hidden\"> unread</span></span></a>"
        ),
        "{}",
        home.body
    );
    assert!(home.body.contains("data-after=\""), "the live count's starting cursor");
    // Every page has it, the error pages too.
    assert!(ada.get("/no/such/page").await.body.contains("data-unread-count>1<"));
    assert!(ada.get("/settings").await.body.contains("data-unread-count>1<"));

    let inbox = ada.get("/notifications").await;
    assert!(inbox.body.contains("You have 1 unread notification."), "{}", inbox.body);
    assert!(inbox.body.contains("Unread</strong>") && inbox.body.contains("Lights &lt;dimmed&gt;"), "{}", inbox.body);
    let number = id_number(&id);
    assert!(inbox.body.contains(&format!("href=\"&#x2f;case-studies&#x2f;{number}")), "links to the case study");
    let new_for_you = ada.get("/notifications/new").await;
    assert!(new_for_you.body.contains("Lights &lt;dimmed&gt;"), "{}", new_for_you.body);
    let again = ada.get("/notifications/new").await;
    assert!(again.body.contains("Nothing new in what you follow since your last visit."), "{}", again.body);

    // Mark all as read, without JavaScript.
    let response = ada.http.post(app.url("/notifications/read")).form(&[("upTo", "")]).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN, "the form needs its CSRF token");
    ada.get("/notifications").await;
    let page = ada.post("/notifications/read", &[]).await;
    assert_eq!(page.location(), "/notifications?marked=all");
    let inbox = ada.get(page.location()).await;
    assert!(
        inbox.body.contains("Your notifications are marked as read.")
            && inbox.body.contains("You have no unread notifications.")
    );
    assert!(inbox.body.contains("data-unread hidden>") && !inbox.body.contains("Unread</strong>"));
}

fn id_number(id: &str) -> i64 {
    kettle::graphql::relay::parse_global_id(id).unwrap().1
}

async fn notification_settings_switch_kinds_off(app: TestApp) {
    let mut ada = Browser::new(&app);
    ada.register("ada@example.org", "Ada").await;
    let page = ada.get("/settings/notifications").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("Someone mentions you"), "{}", page.body);
    assert!(page.body.contains("name=\"choice-new_comment\" value=\"DIGEST\" checked"), "{}", page.body);
    assert!(page.body.contains("id=\"autoWatch\" name=\"autoWatch\" value=\"on\" checked"));
    // Mentions and new comments off, the rest on the site only; auto-watch off.
    let fields: Vec<(String, &str)> = kettle::site::notifications::KINDS
        .iter()
        .map(|(name, _, _)| {
            let choice = if ["MENTIONED", "NEW_COMMENT"].contains(name) { "OFF" } else { "SITE" };
            (format!("choice-{}", name.to_lowercase()), choice)
        })
        .collect();
    let fields: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (k.as_str(), *v)).collect();
    let page = ada.post("/settings/notifications", &fields).await;
    assert_eq!(page.location(), "/settings/notifications?saved=1", "{}", page.body);
    let page = ada.get(page.location()).await;
    assert!(page.body.contains("Your notification settings have been saved."));
    assert!(
        page.body.contains("name=\"choice-mentioned\" value=\"OFF\" checked")
            && page.body.contains("name=\"choice-new_comment\" value=\"OFF\" checked"),
        "{}",
        page.body
    );
    assert!(page.body.contains("name=\"choice-replied\" value=\"SITE\" checked"));
    assert!(page.body.contains("id=\"autoWatch\" name=\"autoWatch\" value=\"on\" aria-describedby"));
    let response =
        ada.http.post(app.url("/settings/notifications")).form(&[("choice-mentioned", "EMAIL")]).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert_eq!(app.count("SELECT COUNT(*) FROM notification_kinds_off").await, 2);
    assert_eq!(app.count("SELECT COUNT(*) FROM members WHERE auto_watch_off_at IS NOT NULL").await, 1);
}

/// A PNG of `width` × `height` (a gradient).
fn png(width: u32, height: u32) -> Vec<u8> {
    let image = image::RgbImage::from_fn(width, height, |x, y| image::Rgb([(x % 256) as u8, (y % 256) as u8, 120]));
    let mut out = std::io::Cursor::new(Vec::new());
    image.write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

/// An image is added from the case study, artefact and comment forms without
/// JavaScript: the whole form goes (multipart) with "Upload image", and comes back with
/// the image's Markdown at the end of the text, shown in the preview, and nothing typed
/// lost; a file that is not an image, a missing file or missing alt text is explained
/// beside its field and stores nothing.
async fn images_are_uploaded_from_the_forms_that_take_markdown(app: TestApp) {
    let mut ada = Browser::new(&app);
    ada.register("ada@example.org", "Ada").await;
    ada.get("/case-studies/new").await;
    let picture = png(1200, 600);
    let typed = [("title", "Bins"), ("summary", "Reminders."), ("body", "What we did.")];
    let upload = |alt: &'static str| {
        let mut fields = typed.to_vec();
        fields.extend([("image_alt", alt), ("action", "upload")]);
        fields
    };

    let added = ada
        .post_multipart("/case-studies/new", &upload("Chart of bins"), Some(("chart.png", "image/png", &picture)))
        .await;
    assert_eq!(added.status, StatusCode::OK, "{}", added.body);
    assert!(
        added.body.contains("What we did.\n\n![Chart of bins]("),
        "the Markdown goes at the end of the text: {}",
        added.body
    );
    assert!(
        added.body.contains("<img src=\"/uploads/") && added.body.contains("alt=\"Chart of bins\""),
        "{}",
        added.body
    );
    assert!(added.body.contains("Your image is at the end of the text"), "{}", added.body);
    assert!(added.body.contains("value=\"Bins\""), "the title is kept");
    assert_eq!(app.count("SELECT COUNT(*) FROM images").await, 1);
    assert_eq!(app.count("SELECT COUNT(*) FROM case_studies").await, 0, "uploading saves nothing else");

    // Problems are told beside their fields, and nothing is stored.
    let text = ada
        .post_multipart("/case-studies/new", &upload("A note"), Some(("note.png", "image/png", b"just words")))
        .await;
    assert_eq!(text.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(text.body.contains("<a href=\"#image\">The file is not an image Kettle can show"), "{}", text.body);
    assert!(text.body.contains("value=\"A note\""), "the alt text is kept");
    let none = ada.post_multipart("/case-studies/new", &upload("A chart"), None).await;
    assert!(none.body.contains("<a href=\"#image\">Choose an image to upload.</a>"), "{}", none.body);
    let no_alt = ada.post_multipart("/case-studies/new", &upload(""), Some(("chart.png", "image/png", &picture))).await;
    assert!(no_alt.body.contains("<a href=\"#image_alt\">Describe what the image shows"), "{}", no_alt.body);
    assert_eq!(app.count("SELECT COUNT(*) FROM images").await, 1);

    // The same from a comment's own page.
    let ada_api = app.sign_in("ada@example.org", PASSWORD).await;
    let topic = {
        let curator = app.member("curator@example.org", "Curator").await;
        app.execute_sql("UPDATE members SET role = 'admin' WHERE email_normalized = 'curator@example.org'").await;
        curator
            .data("mutation { createTopic(input: { name: \"Waste\" }) { topic { id } } }", serde_json::json!({}))
            .await["createTopic"]["topic"]["id"]
            .clone()
    };
    let artefact = ada_api
        .data(
            "mutation ($input: CreateArtefactInput!) { createArtefact(input: $input) { artefact { id } } }",
            serde_json::json!({ "input": { "title": "Bin letter", "kind": "TEMPLATE_OR_DOCUMENT", "status": "IN_USE", "description": "A letter.", "url": "https://example.org/letter", "licence": "OGL-UK-3.0", "topicIds": [topic] } }),
        )
        .await["createArtefact"]["artefact"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    ada.get("/artefacts/new").await;
    let fields = [
        ("subjectId", artefact.as_str()),
        ("body", "Here it is in use."),
        ("image_alt", "The letter on a desk"),
        ("action", "upload"),
    ];
    let comment = ada.post_multipart("/comments", &fields, Some(("desk.png", "image/png", &png(300, 200)))).await;
    assert_eq!(comment.status, StatusCode::OK, "{}", comment.body);
    assert!(comment.body.contains("Here it is in use.\n\n![The letter on a desk]("), "{}", comment.body);
    assert!(comment.body.contains("alt=\"The letter on a desk\""), "{}", comment.body);
    assert_eq!(app.count("SELECT COUNT(*) FROM images").await, 2);
    assert_eq!(app.count("SELECT COUNT(*) FROM comments").await, 0);

    // Only the forms that take Markdown read an image's megabytes, and only from a member:
    // another form sent as multipart keeps the usual 64 KB limit, and a visitor who is
    // not signed in is sent to sign in before anything is read.
    ada.get("/settings").await;
    let big = vec![b'x'; 70 * 1024];
    let settings =
        ada.post_multipart("/settings/profile", &[("displayName", "Ada")], Some(("big.png", "image/png", &big))).await;
    assert_eq!(settings.status, StatusCode::PAYLOAD_TOO_LARGE, "{}", settings.body);
    let mut visitor = Browser::new(&app);
    visitor.get("/sign-in").await;
    let anonymous = visitor
        .post_multipart("/case-studies/new", &upload("A chart"), Some(("chart.png", "image/png", &picture)))
        .await;
    assert_eq!(anonymous.status, StatusCode::SEE_OTHER);
    assert!(anonymous.location().starts_with("/sign-in"), "{}", anonymous.location());
    assert_eq!(app.count("SELECT COUNT(*) FROM images").await, 2);
}

/// "Your images" lists what the member uploaded, with the quota used and the Markdown to
/// show each; deleting one asks first, on a page only its owner reaches.
async fn your_images_are_listed_and_deleted_after_asking(app: TestApp) {
    let mut ada = Browser::new(&app);
    ada.register("ada@example.org", "Ada").await;
    ada.get("/case-studies/new").await;
    let fields = [("title", "Bins"), ("body", "Text."), ("image_alt", "A bin lorry at dawn"), ("action", "upload")];
    let added =
        ada.post_multipart("/case-studies/new", &fields, Some(("lorry.png", "image/png", &png(700, 350)))).await;
    assert_eq!(added.status, StatusCode::OK, "{}", added.body);

    let list = ada.get("/settings/images").await;
    assert_eq!(list.status, StatusCode::OK);
    assert!(list.body.contains("A bin lorry at dawn") && list.body.contains("700 × 350 pixels"), "{}", list.body);
    assert!(list.body.contains("of the 100.0 MB yours may take"), "{}", list.body);
    assert!(list.body.contains("value=\"![A bin lorry at dawn]("), "the Markdown to copy: {}", list.body);
    let start = list.body.find("/settings/images/").expect("a delete link");
    let path = &list.body[start..start + list.body[start..].find('"').unwrap()];
    assert!(path.ends_with("/delete"), "{path}");

    let ask = ada.get(path).await;
    assert_eq!(ask.status, StatusCode::OK);
    assert!(ask.body.contains("Delete this image?") && ask.body.contains("No, keep it"), "{}", ask.body);
    // Nobody else reaches it, and signed out the list asks to sign in.
    let mut grace = Browser::new(&app);
    grace.register("grace@example.org", "Grace").await;
    assert_eq!(grace.get(path).await.status, StatusCode::NOT_FOUND);
    grace.get("/settings").await;
    assert_eq!(grace.post(path, &[]).await.status, StatusCode::NOT_FOUND);
    assert_eq!(app.count("SELECT COUNT(*) FROM images").await, 1);
    let visitor = Browser::new(&app).get("/settings/images").await;
    assert_eq!(visitor.status, StatusCode::SEE_OTHER);

    let deleted = ada.post(path, &[]).await;
    assert_eq!(deleted.status, StatusCode::SEE_OTHER);
    assert_eq!(deleted.location(), "/settings/images?deleted=1");
    assert_eq!(app.count("SELECT COUNT(*) FROM images").await, 0);
    let after = ada.get("/settings/images?deleted=1").await;
    assert!(
        after.body.contains("The image is deleted.") && after.body.contains("You have not uploaded any images"),
        "{}",
        after.body
    );
}

/// An artefact's edit form asks what changed; the page then says it was saved, shows
/// "Last updated … — see all updates", and its history lists and compares the versions.
async fn an_artefacts_updates_are_listed_and_compared(app: TestApp) {
    let mut ada = Browser::new(&app);
    ada.register("ada@example.org", "Ada").await;
    let curator = crate::case_studies::admin(&app, "curator@example.org", "Curator").await;
    let topic = crate::case_studies::create_topic(&curator, "Waste").await;
    let ada_api = app.sign_in("ada@example.org", PASSWORD).await;
    let mut input = crate::artefacts::artefact("Bin letter", &[&topic]);
    input["licence"] = serde_json::json!("OGL-UK-3.0");
    input["kind"] = serde_json::json!("TEMPLATE_OR_DOCUMENT");
    let id = crate::artefacts::share(&ada_api, input).await["id"].clone();
    let path = format!("/artefacts/{}", crate::artefacts::number("Artefact", &id));
    // One version only: nothing to list yet.
    assert!(!ada.get(&path).await.body.contains("see all updates"));

    let form = ada.get(&format!("{path}/edit")).await;
    assert!(form.body.contains("What changed (optional for a typo fixed)"), "{}", form.body);
    let fields = [
        ("version", "1"),
        ("title", "Bin letter"),
        ("kind", "TEMPLATE_OR_DOCUMENT"),
        ("description", "A letter <b>residents</b> understand."),
        ("url", "https://example.org/letter"),
        ("licence", "MIT"),
        ("status", "IN_USE"),
        ("topicIds", topic.as_str()),
        ("changeNote", "Relicensed <MIT>"),
        ("action", "save"),
    ];
    let saved = ada.post(&format!("{path}/edit"), &fields).await;
    assert_eq!(saved.location(), format!("{path}?saved=1"), "{}", saved.body);
    let page = ada.get(saved.location()).await;
    assert!(page.body.contains("Your changes are saved."), "{}", page.body);
    let mut grace = Browser::new(&app);
    let page = grace.get(&path).await;
    assert!(
        page.body.contains(": Relicensed &lt;MIT&gt; — <a href=\"&#x2f;artefacts&#x2f;")
            || page.body.contains(": Relicensed &lt;MIT&gt; — <a href=\"/artefacts/"),
        "{}",
        page.body
    );

    let history = grace.get(&format!("{path}/history")).await;
    assert_eq!(history.status, StatusCode::OK);
    assert!(history.body.contains("<strong>Version 2</strong>") && history.body.contains("Relicensed &lt;MIT&gt;"));
    assert!(history.body.contains("No note: a small correction."), "version 1 has none: {}", history.body);
    assert!(!history.body.contains("As one of its authors"), "that is for case studies");
    let compare = grace.get(&format!("{path}/history/compare?from=1&to=2")).await;
    assert_eq!(compare.status, StatusCode::OK);
    for shown in [
        "<h2 class=\"heading-m\">The description (Markdown)</h2>",
        "[taken out: </span>OGL-UK-3.0",
        "[added: </span>MIT",
        "<dt>Kind</dt><dd>Template or document</dd>",
    ] {
        assert!(compare.body.contains(shown), "{shown}: {}", compare.body);
    }
    for bad in ["from=1&to=99", "from=x&to=2", "to=2"] {
        let page = grace.get(&format!("{path}/history/compare?{bad}")).await;
        assert!(matches!(page.status.as_u16(), 303 | 404), "{bad}: {}", page.status);
    }
    assert_eq!(grace.get("/artefacts/999999/history").await.status, StatusCode::NOT_FOUND);
    assert_eq!(grace.get("/artefacts/abc/history").await.status, StatusCode::NOT_FOUND);
}

/// `/members` lists everyone by handle and finds handles by their start: where a writer
/// without JavaScript finds whom to mention (every Markdown field's hint links it).
async fn the_member_directory_page_finds_handles(app: TestApp) {
    for (i, name) in ["Grace Hopper", "Ada Lovelace"].iter().enumerate() {
        app.member(&format!("member{i}@example.org"), name).await;
    }
    let mut visitor = Browser::new(&app);
    let home = visitor.get("/").await;
    assert!(home.body.contains("<a href=\"/members\">Members</a>"), "the footer links it");
    let all = visitor.get("/members").await;
    assert_eq!(all.status, StatusCode::OK);
    let (ada, grace) = (all.body.find("@ada-lovelace").unwrap(), all.body.find("@grace-hopper").unwrap());
    assert!(ada < grace, "by handle");
    let found = visitor.get("/members?q=Grace+H").await;
    assert!(found.body.contains("Grace Hopper") && !found.body.contains("Ada Lovelace"), "{}", found.body);
    assert!(found.body.contains("value=\"Grace H\""), "the search stays in its field");
    let none = visitor.get("/members?q=%25").await;
    assert_eq!(none.status, StatusCode::OK);
    assert!(
        none.body.contains("No member&#x27;s handle starts with that.")
            || none.body.contains("No member's handle starts with that."),
        "{}",
        none.body
    );
    let huge = format!("/members?q={}", "g".repeat(5_000));
    assert_eq!(visitor.get(&huge).await.status, StatusCode::OK);

    let mut ada_browser = Browser::new(&app);
    ada_browser.register("ada@example.org", "Ada").await;
    let form = ada_browser.get("/case-studies/new").await;
    assert!(form.body.contains("data-mentions>"), "{}", form.body);
    assert!(
        form.body.contains("<a href=\"/members\" target=\"_blank\" rel=\"noopener\">Find a member"),
        "{}",
        form.body
    );
}

/// Settings change the handle; the old profile address leads to the new one, and the
/// form waits 30 days for the next change.
async fn a_handle_is_changed_in_settings_and_the_old_address_leads_on(app: TestApp) {
    let mut ada = Browser::new(&app);
    ada.register("ada@example.org", "Ada Lovelace").await;
    let settings = ada.get("/settings").await;
    assert!(settings.body.contains("Others mention you as <strong>@ada-lovelace</strong>"), "{}", settings.body);
    let refused = ada.post("/settings/handle", &[("handle", "Not a handle!")]).await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        refused.body.contains("<title>Error: Settings") && refused.body.contains("href=\"#handle\""),
        "{}",
        refused.body
    );
    assert!(refused.body.contains("value=\"Not a handle!\""), "what was typed stays");
    let changed = ada.post("/settings/handle", &[("handle", "countess")]).await;
    assert_eq!(changed.location(), "/settings?saved=handle#handle-heading");
    let page = ada.get("/settings?saved=handle").await;
    assert!(page.body.contains("Your handle is now @countess."), "{}", page.body);
    assert!(page.body.contains("you can change it again from") && !page.body.contains("action=\"/settings/handle\""));

    let mut visitor = Browser::new(&app);
    let old = visitor.get("/members/@ada-lovelace").await;
    assert_eq!((old.status, old.location()), (StatusCode::SEE_OTHER, "/members/@countess"));
    let capitals = visitor.get("/members/@Countess").await;
    assert_eq!(capitals.location(), "/members/@countess");
    assert_eq!(visitor.get("/members/@countess").await.status, StatusCode::OK);
    assert_eq!(visitor.get("/members/@nobody-at-all").await.status, StatusCode::NOT_FOUND);
}
