//! The account side of mail: verifying an address (on registering and on a change of
//! address), the forgotten-password journey, changing a password, and the security mail
//! around them, read back from the `.eml` files with an independent MIME parser.
//!
//! Each token is checked for single use, expiry (by moving it back in time in the
//! database) and forgery; registering and asking for a reset are checked to answer the
//! same whether or not the address has an account.

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::{
    mailbox::{self, Mail},
    scenarios,
    site::Browser,
    support::{error_code, user_errors, Client, Scenario, TestApp, PASSWORD},
};

pub fn scenarios() -> Vec<(&'static str, Scenario)> {
    scenarios![
        mail_accounts_registration_mails_a_link_that_verifies_once,
        mail_accounts_a_taken_address_is_told_by_mail_not_in_the_answer,
        mail_accounts_password_reset_works_once_ends_sessions_and_expires,
        mail_accounts_change_password_needs_the_current_one_and_ends_other_sessions,
        mail_accounts_a_new_address_counts_only_once_confirmed,
        mail_accounts_links_are_capped_and_requests_limited,
        mail_accounts_forgot_and_reset_password_through_the_site,
        mail_accounts_settings_confirm_and_change_the_address_and_password,
    ]
}

const REGISTER: &str =
    "mutation($input: RegisterInput!) { register(input: $input) { email userErrors { field message code } } }";
const VERIFY: &str = "mutation($input: VerifyEmailInput!) { verifyEmail(input: $input) { member { id } token userErrors { field message code } } }";
const RESEND: &str = "mutation { resendVerification { email userErrors { field message code } } }";
const REQUEST_RESET: &str = "mutation($input: RequestPasswordResetInput!) { requestPasswordReset(input: $input) { sent userErrors { field message code } } }";
const RESET: &str = "mutation($input: ResetPasswordInput!) { resetPassword(input: $input) { token member { id } userErrors { field message code } } }";
const CHANGE_PASSWORD: &str = "mutation($input: ChangePasswordInput!) { changePassword(input: $input) { member { id } userErrors { field message code } } }";
const CHANGE_EMAIL: &str = "mutation($input: ChangeEmailInput!) { changeEmail(input: $input) { member { email pendingEmail } userErrors { field message code } } }";
const ME: &str = "{ viewer { id email emailVerified emailBouncing pendingEmail } }";
const NEW_PASSWORD: &str = "teapot lanterns drift across harbours";

fn one(field: &str, code: &str) -> Vec<(String, String)> {
    vec![(field.to_string(), code.to_string())]
}

/// Every message Kettle sends is `multipart/alternative` with both parts; security mail
/// carries no unsubscribe header (it cannot be unsubscribed from).
fn assert_security_mail(mail: &Mail) {
    assert_eq!(mail.content_type, "multipart/alternative", "{}", mail.raw);
    assert!(!mail.text.trim().is_empty() && !mail.html.trim().is_empty(), "{}", mail.raw);
    assert!(mail.header("list-unsubscribe").is_none(), "security mail has no unsubscribe: {}", mail.raw);
    assert!(mail.header("list-unsubscribe-post").is_none());
    assert!(mail.message_id.contains('@'), "{}", mail.message_id);
}

/// The link in `mail` to a path under `prefix` (`/verify-email/`), absolute, in both
/// parts; and the token at its end.
fn link(app: &TestApp, mail: &Mail, prefix: &str) -> (String, String) {
    let absolute = app.url(prefix);
    let link = mail.link(&absolute).unwrap_or_else(|| panic!("no {absolute} link in {}", mail.text));
    // minijinja escapes `/` in HTML as `&#x2f;`, which every reader decodes.
    let html = mail.html.replace("&#x2f;", "/").replace("&amp;", "&");
    assert!(html.contains(&format!("href=\"{link}\"")), "the HTML part has the same link: {}", mail.html);
    let token = link.trim_start_matches(&absolute).to_string();
    assert!(token.len() >= 40 && !token.contains('/'), "{token}");
    (link, token)
}

/// Waits for a message to `address` whose subject contains `subject` and that was not
/// seen before (by Message-ID).
async fn next_mail(app: &TestApp, address: &str, subject: &str, seen: &[&Mail]) -> Mail {
    let seen: Vec<String> = seen.iter().map(|m| m.message_id.clone()).collect();
    mailbox::wait_for(app, address, |m| m.subject.contains(subject) && !seen.contains(&m.message_id)).await
}

async fn register(app: &TestApp, email: &str, name: &str) -> Value {
    let input = json!({ "email": email, "password": PASSWORD, "displayName": name });
    app.anonymous().data(REGISTER, json!({ "input": input })).await["register"].clone()
}

async fn me(client: &Client) -> Value {
    client.data(ME, json!({})).await["viewer"].clone()
}

/// Whether signing in with this email and password works.
async fn signs_in(app: &TestApp, email: &str, password: &str) -> bool {
    let body = app
        .anonymous()
        .gql(
            "mutation($input: SignInInput!) { signIn(input: $input) { token } }",
            json!({ "input": { "email": email, "password": password } }),
        )
        .await;
    body["data"]["signIn"]["token"].is_string()
}

/// Whether a bearer token still signs anyone in.
async fn works(client: &Client) -> bool {
    let status = client.post("{ viewer { id } }", json!({})).await.status();
    assert!(status == 200 || status == 401, "{status}");
    status == 200
}

/// The `<main>` of a page, with `replace` made `with`: what two answers that must not
/// tell addresses apart are compared by (the CSRF token in the header differs per browser).
fn main_of(body: &str, replace: &str, with: &str) -> String {
    let start = body.find("<main").expect("a main element");
    let end = body.find("</main>").expect("a main element");
    body[start..end].replace(replace, with)
}

async fn mail_accounts_registration_mails_a_link_that_verifies_once(app: TestApp) {
    let registered = register(&app, "Ada@Example.org", "Ada Lovelace").await;
    assert_eq!(registered, json!({ "email": "Ada@Example.org", "userErrors": [] }));
    let mail = next_mail(&app, "ada@example.org", "Confirm your email address", &[]).await;
    assert_security_mail(&mail);
    assert!(mail.text.contains("Hello Ada Lovelace") && mail.text.contains("24 hours"), "{}", mail.text);
    let (url, token) = link(&app, &mail, "/verify-email/");
    // Only a hash of the token is stored.
    assert_eq!(app.count(&format!("SELECT COUNT(*) FROM account_tokens WHERE token_hash = '{token}'")).await, 0);

    let ada = app.sign_in("ada@example.org", PASSWORD).await;
    assert_eq!(me(&ada).await["emailVerified"], false, "signing in does not verify");
    // Unverified, the member reads and posts, but their digest is not scheduled.
    assert_eq!(app.count("SELECT COUNT(*) FROM members WHERE next_digest_at IS NOT NULL").await, 0);

    // Opening the link (as a link scanner does) changes nothing: it shows a button.
    let mut browser = Browser::new(&app);
    let page = browser.get(url.trim_start_matches(&app.url(""))).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(page.body.contains("Confirm my email address") && page.body.contains("Ada@Example.org"));
    assert_eq!(app.count("SELECT COUNT(*) FROM account_tokens WHERE used_at IS NULL").await, 1);
    assert_eq!(me(&ada).await["emailVerified"], false);

    // Pressing it verifies the address and signs this (signed-out) browser in.
    let page = browser.post(&format!("/verify-email/{token}"), &[]).await;
    assert_eq!((page.status, page.location()), (StatusCode::SEE_OTHER, "/settings?saved=verified"), "{}", page.body);
    assert!(page.headers.get_all("set-cookie").iter().any(|c| c.to_str().unwrap().starts_with("kettle_session=kses_")));
    let settings = browser.get("/settings?saved=verified").await;
    assert_eq!(settings.status, StatusCode::OK);
    assert!(settings.body.contains("Your email address is confirmed.") && settings.body.contains("It is confirmed."));
    assert_eq!(me(&ada).await["emailVerified"], true);
    assert_eq!(app.count("SELECT COUNT(*) FROM members WHERE next_digest_at IS NOT NULL").await, 1, "digest scheduled");

    // Used once, the link works no more: not through the page, nor the API.
    let again = Browser::new(&app).get(&format!("/verify-email/{token}")).await;
    assert_eq!(again.status, StatusCode::NOT_FOUND);
    assert!(again.body.contains("This link has expired"), "{}", again.body);
    let body = app.anonymous().data(VERIFY, json!({ "input": { "token": token } })).await;
    assert_eq!(user_errors(&body["verifyEmail"]), one("token", "INVALID"));
    assert_eq!(body["verifyEmail"]["token"], json!(null), "no session for a used link");

    // Forged or malformed tokens are refused the same way, and change nothing.
    for forged in ["x".repeat(43), String::new(), "a".repeat(5000), format!("{token}x")] {
        let body = app.anonymous().data(VERIFY, json!({ "input": { "token": forged } })).await;
        assert_eq!(user_errors(&body["verifyEmail"]), one("token", "INVALID"), "{forged}");
    }
    for path in ["/verify-email/not%20a%20token", "/verify-email/..%2f..", &format!("/verify-email/{}", "y".repeat(43))]
    {
        assert_eq!(Browser::new(&app).get(path).await.status, StatusCode::NOT_FOUND, "{path}");
    }

    // Another member: a link that has expired is refused, and only the latest link works.
    register(&app, "grace@example.org", "Grace").await;
    let first = next_mail(&app, "grace@example.org", "Confirm", &[]).await;
    let grace = app.sign_in("grace@example.org", PASSWORD).await;
    assert_eq!(grace.data(RESEND, json!({})).await["resendVerification"]["email"], "grace@example.org");
    let second = next_mail(&app, "grace@example.org", "Confirm", &[&first]).await;
    let (_, old_token) = link(&app, &first, "/verify-email/");
    let (_, new_token) = link(&app, &second, "/verify-email/");
    let body = grace.data(VERIFY, json!({ "input": { "token": old_token } })).await;
    assert_eq!(user_errors(&body["verifyEmail"]), one("token", "INVALID"), "replaced by the newer link");
    let day = 24 * 60 * 60 * 1000 + 1;
    app.execute_sql(&format!(
        "UPDATE account_tokens SET created_at = created_at - {day}, expires_at = expires_at - {day} WHERE used_at IS NULL"
    ))
    .await;
    let body = grace.data(VERIFY, json!({ "input": { "token": new_token } })).await;
    assert_eq!(user_errors(&body["verifyEmail"]), one("token", "INVALID"), "expired after 24 hours");
    assert_eq!(me(&grace).await["emailVerified"], false);

    // A fresh link, used by several requests at once, works exactly once.
    grace.data(RESEND, json!({})).await;
    let third = next_mail(&app, "grace@example.org", "Confirm", &[&first, &second]).await;
    let (_, token) = link(&app, &third, "/verify-email/");
    let attempts = (0..6).map(|_| {
        let anon = app.anonymous();
        let token = token.clone();
        async move { anon.data(VERIFY, json!({ "input": { "token": token } })).await }
    });
    let results = futures_util::future::join_all(attempts).await;
    let worked: Vec<&Value> = results.iter().filter(|b| b["verifyEmail"]["userErrors"] == json!([])).collect();
    assert_eq!(worked.len(), 1, "{results:?}");
    // The one that worked was signed out, so it was signed in.
    let session = worked[0]["verifyEmail"]["token"].as_str().expect("a session");
    assert_eq!(me(&app.anonymous().with_token(session)).await["email"], "grace@example.org");
    assert_eq!(me(&grace).await["emailVerified"], true);
    // Verified, nothing is left to send.
    let body = grace.data(RESEND, json!({})).await;
    assert_eq!(user_errors(&body["resendVerification"]), one("", "INVALID"));
    // Only the member themself sees the state of their address.
    let handle = grace.data("{ viewer { handle } }", json!({})).await["viewer"]["handle"].clone();
    let seen = ada
        .data(
            "query($h: String!) { member(handle: $h) { email emailVerified emailBouncing pendingEmail } }",
            json!({ "h": handle }),
        )
        .await;
    assert_eq!(
        seen["member"],
        json!({ "email": null, "emailVerified": null, "emailBouncing": null, "pendingEmail": null })
    );
}

async fn mail_accounts_a_taken_address_is_told_by_mail_not_in_the_answer(app: TestApp) {
    app.member("ada@example.org", "Ada").await;
    let welcome = next_mail(&app, "ada@example.org", "Confirm", &[]).await;

    // Through the API: the same answer as for a new address.
    let taken = register(&app, "ADA@example.org", "Mallory").await;
    let fresh = register(&app, "grace@example.org", "Grace").await;
    assert_eq!(taken, json!({ "email": "ADA@example.org", "userErrors": [] }));
    assert_eq!(fresh, json!({ "email": "grace@example.org", "userErrors": [] }));
    assert_eq!(app.count("SELECT COUNT(*) FROM members").await, 2);

    // The owner is told by mail, with ways back in, and their account is unchanged.
    let warning = next_mail(&app, "ada@example.org", "Someone tried to create", &[&welcome]).await;
    assert_security_mail(&warning);
    assert!(warning.text.contains("You already have an account"), "{}", warning.text);
    assert!(warning.link(&app.url("/sign-in")).is_some(), "{}", warning.text);
    assert!(warning.link(&app.url("/forgot-password")).is_some(), "{}", warning.text);
    assert!(!warning.text.contains("Mallory") && !warning.html.contains("Mallory"));
    assert!(signs_in(&app, "ada@example.org", PASSWORD).await);

    // Through the site: the same page for a taken address as for a new one.
    let mut browser = Browser::new(&app);
    browser.get("/register").await;
    let taken =
        browser.post("/register", &[("email", "ada@example.org"), ("displayName", "M"), ("password", PASSWORD)]).await;
    let mut other = Browser::new(&app);
    other.get("/register").await;
    let fresh =
        other.post("/register", &[("email", "olu@example.org"), ("displayName", "M"), ("password", PASSWORD)]).await;
    assert_eq!((taken.status, fresh.status), (StatusCode::OK, StatusCode::OK));
    assert_eq!(
        main_of(&taken.body, "ada@example.org", "ADDRESS"),
        main_of(&fresh.body, "olu@example.org", "ADDRESS"),
        "the pages differ"
    );
    assert!(taken.body.contains("Check your email"));
    assert_eq!(app.count("SELECT COUNT(*) FROM members").await, 3);
    // However many tries in an hour, the owner gets one warning.
    assert_eq!(app.count("SELECT COUNT(*) FROM mail_queue WHERE template = 'register_attempt'").await, 1);
    // No verification link went to the taken address again.
    assert_eq!(
        app.count("SELECT COUNT(*) FROM mail_queue WHERE template = 'verify_email' AND to_address = 'ada@example.org'")
            .await,
        1
    );
}

async fn mail_accounts_password_reset_works_once_ends_sessions_and_expires(app: TestApp) {
    let old = app.member("ada@example.org", "Ada").await;
    let other = app.sign_in("ada@example.org", PASSWORD).await;

    // Known or unknown, the answer is the same; a malformed address is a userError.
    let unknown = app.anonymous().data(REQUEST_RESET, json!({ "input": { "email": "nobody@example.org" } })).await;
    let known = app.anonymous().data(REQUEST_RESET, json!({ "input": { "email": " ADA@example.org" } })).await;
    assert_eq!(unknown, known);
    assert_eq!(known["requestPasswordReset"], json!({ "sent": true, "userErrors": [] }));
    let bad = app.anonymous().data(REQUEST_RESET, json!({ "input": { "email": "ada" } })).await;
    assert_eq!(user_errors(&bad["requestPasswordReset"]), one("email", "INVALID"));

    let mail = next_mail(&app, "ada@example.org", "Reset your Kettle password", &[]).await;
    assert_security_mail(&mail);
    assert!(mail.text.contains("60 minutes"), "{}", mail.text);
    let (_, token) = link(&app, &mail, "/reset-password/");
    // Once sent, the queue keeps no copy of the link: the token table holds only its hash.
    let kept = "SELECT COUNT(*) FROM mail_queue WHERE template = 'reset_password' AND status = 'sent' \
                AND text_body = '' AND html_body = ''";
    for _ in 0..100 {
        if app.count(kept).await == 1 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(app.count(kept).await, 1, "the sent reset mail's bodies are emptied");
    // Nothing went to the address without an account.
    assert_eq!(app.count("SELECT COUNT(*) FROM mail_queue WHERE to_address = 'nobody@example.org'").await, 0);
    assert!(mailbox::to(&app, "nobody@example.org").is_empty());

    // A weak password is refused and the link keeps working.
    let body = app.anonymous().data(RESET, json!({ "input": { "token": token, "password": "password123" } })).await;
    assert_eq!(user_errors(&body["resetPassword"]), one("password", "WEAK_PASSWORD"));
    let unused = "SELECT COUNT(*) FROM account_tokens WHERE purpose = 'reset_password' AND used_at IS NULL";
    assert_eq!(app.count(unused).await, 1);

    let body = app.anonymous().data(RESET, json!({ "input": { "token": token, "password": NEW_PASSWORD } })).await;
    assert_eq!(body["resetPassword"]["userErrors"], json!([]), "{body}");
    let fresh = app.anonymous().with_token(body["resetPassword"]["token"].as_str().expect("signed in"));
    assert_eq!(me(&fresh).await["email"], "ada@example.org");
    // Every session from before ends; the new password works, the old one does not.
    assert!(!works(&old).await && !works(&other).await);
    assert!(works(&fresh).await);
    assert!(signs_in(&app, "ada@example.org", NEW_PASSWORD).await);
    assert!(!signs_in(&app, "ada@example.org", PASSWORD).await);
    // Following the link proved the address.
    assert_eq!(me(&fresh).await["emailVerified"], true);

    // Used once, it works no more.
    let body = app.anonymous().data(RESET, json!({ "input": { "token": token, "password": PASSWORD } })).await;
    assert_eq!(user_errors(&body["resetPassword"]), one("token", "INVALID"));
    assert_eq!(body["resetPassword"]["token"], json!(null));
    // Nor does a forged one.
    let body = app.anonymous().data(RESET, json!({ "input": { "token": "z".repeat(43), "password": PASSWORD } })).await;
    assert_eq!(user_errors(&body["resetPassword"]), one("token", "INVALID"));

    // A new link, an hour and a moment old, has expired: nothing changes.
    app.anonymous().data(REQUEST_RESET, json!({ "input": { "email": "ada@example.org" } })).await;
    let later = next_mail(&app, "ada@example.org", "Reset", &[&mail]).await;
    let (_, token) = link(&app, &later, "/reset-password/");
    let hour = 60 * 60 * 1000 + 1;
    app.execute_sql(&format!(
        "UPDATE account_tokens SET created_at = created_at - {hour}, expires_at = expires_at - {hour} WHERE used_at IS NULL"
    ))
    .await;
    let body = app.anonymous().data(RESET, json!({ "input": { "token": token, "password": PASSWORD } })).await;
    assert_eq!(user_errors(&body["resetPassword"]), one("token", "INVALID"));
    assert!(signs_in(&app, "ada@example.org", NEW_PASSWORD).await && works(&fresh).await);
}

async fn mail_accounts_change_password_needs_the_current_one_and_ends_other_sessions(app: TestApp) {
    let ada = app.member("ada@example.org", "Ada").await;
    let elsewhere = app.sign_in("ada@example.org", PASSWORD).await;
    let change =
        |current: Option<&str>, new: &str| json!({ "input": { "currentPassword": current, "newPassword": new } });

    let body = ada.data(CHANGE_PASSWORD, change(None, NEW_PASSWORD)).await;
    assert_eq!(user_errors(&body["changePassword"]), one("currentPassword", "BLANK"));
    let body = ada.data(CHANGE_PASSWORD, change(Some("not my password at all"), NEW_PASSWORD)).await;
    assert_eq!(user_errors(&body["changePassword"]), one("currentPassword", "INVALID_CREDENTIALS"));
    let body = ada.data(CHANGE_PASSWORD, change(Some(PASSWORD), "password123")).await;
    assert_eq!(user_errors(&body["changePassword"]), one("newPassword", "WEAK_PASSWORD"));
    assert!(works(&elsewhere).await && signs_in(&app, "ada@example.org", PASSWORD).await, "nothing changed");

    // An access token (made for scripts) cannot change how the member signs in.
    let pat = ada.data("mutation { createAccessToken(input: { name: \"script\" }) { token } }", json!({})).await
        ["createAccessToken"]["token"]
        .as_str()
        .unwrap()
        .to_string();
    let script = app.anonymous().with_token(&pat);
    let body = script.gql(CHANGE_PASSWORD, change(Some(PASSWORD), NEW_PASSWORD)).await;
    assert_eq!(error_code(&body), "FORBIDDEN");
    let body = app.anonymous().gql(CHANGE_PASSWORD, change(Some(PASSWORD), NEW_PASSWORD)).await;
    assert_eq!(error_code(&body), "UNAUTHENTICATED");

    let body = ada.data(CHANGE_PASSWORD, change(Some(PASSWORD), NEW_PASSWORD)).await;
    assert_eq!(body["changePassword"]["userErrors"], json!([]), "{body}");
    // This session stays; the other ends. Access tokens are not sessions: they stay.
    assert!(works(&ada).await, "the session that changed it stays signed in");
    assert!(!works(&elsewhere).await, "other sessions end");
    assert!(works(&script).await);
    assert!(signs_in(&app, "ada@example.org", NEW_PASSWORD).await);
    assert!(!signs_in(&app, "ada@example.org", PASSWORD).await);
}

async fn mail_accounts_a_new_address_counts_only_once_confirmed(app: TestApp) {
    let ada = app.verified_member("ada@example.org", "Ada").await;
    app.member("grace@example.org", "Grace").await;
    let email =
        |email: &str, password: Option<&str>| json!({ "input": { "email": email, "currentPassword": password } });
    let links = "SELECT COUNT(*) FROM account_tokens";
    let before = app.count(links).await;

    for (input, expected) in [
        (email("new@example.org", Some("not my password at all")), one("currentPassword", "INVALID_CREDENTIALS")),
        (email("new@example.org", None), one("currentPassword", "BLANK")),
        (email("ADA@example.org", Some(PASSWORD)), one("email", "INVALID")),
        (email("not an address", Some(PASSWORD)), one("email", "INVALID")),
    ] {
        let body = ada.data(CHANGE_EMAIL, input.clone()).await;
        assert_eq!(user_errors(&body["changeEmail"]), expected, "{input}");
    }
    assert_eq!(app.count(links).await, before, "nothing sent");

    // An address that has an account gets the same answer; following its link changes
    // nothing, and says why.
    let body = ada.data(CHANGE_EMAIL, email("Grace@example.org", Some(PASSWORD))).await;
    assert_eq!(
        body["changeEmail"],
        json!({ "member": { "email": "ada@example.org", "pendingEmail": "Grace@example.org" }, "userErrors": [] })
    );
    let to_grace = mailbox::wait_for(&app, "grace@example.org", |m| m.text.contains("change the email address")).await;
    let (_, token) = link(&app, &to_grace, "/verify-email/");
    let body = ada.data(VERIFY, json!({ "input": { "token": token } })).await;
    assert_eq!(user_errors(&body["verifyEmail"]), one("token", "TAKEN"));
    assert_eq!(me(&ada).await["email"], "ada@example.org");

    // A free address: the link goes there, a notice to the current address.
    let body = ada.data(CHANGE_EMAIL, email("new@example.org", Some(PASSWORD))).await;
    assert_eq!(body["changeEmail"]["userErrors"], json!([]));
    let confirm = next_mail(&app, "new@example.org", "Confirm your email address", &[]).await;
    assert_security_mail(&confirm);
    assert!(confirm.text.contains("change the email address"), "{}", confirm.text);
    let notice = mailbox::wait_for(&app, "ada@example.org", |m| {
        m.subject.contains("being changed") && m.text.contains("new@example.org")
    })
    .await;
    assert_security_mail(&notice);
    assert!(notice.text.contains("new@example.org") && notice.link(&app.url("/forgot-password")).is_some());
    // Until confirmed, the address stays, and signing in uses it.
    let now = me(&ada).await;
    assert_eq!(
        (&now["email"], &now["pendingEmail"], &now["emailVerified"]),
        (&json!("ada@example.org"), &json!("new@example.org"), &json!(true))
    );
    assert!(signs_in(&app, "ada@example.org", PASSWORD).await && !signs_in(&app, "new@example.org", PASSWORD).await);

    let (_, token) = link(&app, &confirm, "/verify-email/");
    let body = ada.data(VERIFY, json!({ "input": { "token": token } })).await;
    assert_eq!(body["verifyEmail"]["userErrors"], json!([]), "{body}");
    assert_eq!(body["verifyEmail"]["token"], json!(null), "already signed in: no new session");
    let now = me(&ada).await;
    assert_eq!(
        (&now["email"], &now["pendingEmail"], &now["emailVerified"]),
        (&json!("new@example.org"), &json!(null), &json!(true))
    );
    assert!(signs_in(&app, "new@example.org", PASSWORD).await && !signs_in(&app, "ada@example.org", PASSWORD).await);

    // A change waiting for confirmation ends with a password reset (the notice's advice).
    ada.data(CHANGE_EMAIL, email("intruder@example.org", Some(PASSWORD))).await;
    let intruder = next_mail(&app, "intruder@example.org", "Confirm", &[]).await;
    app.anonymous().data(REQUEST_RESET, json!({ "input": { "email": "new@example.org" } })).await;
    let reset = next_mail(&app, "new@example.org", "Reset", &[]).await;
    let (_, reset_token) = link(&app, &reset, "/reset-password/");
    app.anonymous().data(RESET, json!({ "input": { "token": reset_token, "password": NEW_PASSWORD } })).await;
    let (_, token) = link(&app, &intruder, "/verify-email/");
    let body = app.anonymous().data(VERIFY, json!({ "input": { "token": token } })).await;
    assert_eq!(user_errors(&body["verifyEmail"]), one("token", "INVALID"));
    assert_eq!(app.count("SELECT COUNT(*) FROM members WHERE email = 'new@example.org'").await, 1);
}

async fn mail_accounts_links_are_capped_and_requests_limited(app: TestApp) {
    let app = TestApp::spawn_with(app.backend(), &[("KETTLE_RATE_LIMITS", "password_reset_address=8/3600")]).await;
    app.member("ada@example.org", "Ada").await;
    // Seven requests for one member: five links in the hour, then nothing more is sent,
    // though the answer never changes.
    for _ in 0..7 {
        let body = app.anonymous().data(REQUEST_RESET, json!({ "input": { "email": "ada@example.org" } })).await;
        assert_eq!(body["requestPasswordReset"], json!({ "sent": true, "userErrors": [] }));
    }
    assert_eq!(app.count("SELECT COUNT(*) FROM account_tokens WHERE purpose = 'reset_password'").await, 5);
    assert_eq!(app.count("SELECT COUNT(*) FROM mail_queue WHERE template = 'reset_password'").await, 5);
    // Only the latest link works.
    assert_eq!(
        app.count("SELECT COUNT(*) FROM account_tokens WHERE used_at IS NULL AND expires_at = created_at + 3600000")
            .await,
        1
    );
    // Requests from one client address are limited whoever they are for.
    app.anonymous().data(REQUEST_RESET, json!({ "input": { "email": "someone@example.org" } })).await;
    let body = app.anonymous().gql(REQUEST_RESET, json!({ "input": { "email": "other@example.org" } })).await;
    assert_eq!(error_code(&body), "RATE_LIMITED", "{body}");

    // Mail that is not about the account waits for a verified address: the sender skips it.
    let id = app.count("SELECT id FROM members WHERE email_normalized = 'ada@example.org'").await;
    let state = app.state();
    let mut tx = state.db.begin_write().await.unwrap();
    let outgoing = kettle::mail::Outgoing {
        key: format!("test:{id}"),
        member_id: Some(id),
        to_address: "ada@example.org",
        to_name: "Ada",
        template: "plain",
        list: Some(kettle::mail::List::Digest),
        subject: "Not for the unverified".into(),
        context: json!({ "body": "Hello." }),
    };
    kettle::mail::enqueue(&mut tx, &state.mailer, outgoing).await.unwrap();
    tx.commit().await.unwrap();
    state.mailer.queued();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while app
        .count("SELECT COUNT(*) FROM mail_queue WHERE subject = 'Not for the unverified' AND status = 'skipped'")
        .await
        == 0
    {
        assert!(std::time::Instant::now() < deadline, "the list mail was not skipped");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(mailbox::to(&app, "ada@example.org").iter().all(|m| m.subject != "Not for the unverified"));
    app.finish().await;
}

async fn mail_accounts_forgot_and_reset_password_through_the_site(app: TestApp) {
    let old = app.member("ada@example.org", "Ada").await;
    let mut browser = Browser::new(&app);
    let sign_in = browser.get("/sign-in").await;
    assert!(sign_in.body.contains("<a href=\"/forgot-password\">Forgot your password?</a>"), "{}", sign_in.body);

    let form = browser.get("/forgot-password").await;
    assert_eq!(form.status, StatusCode::OK);
    assert!(form.body.contains("<label class=\"label\" for=\"email\">Email address</label>"));
    let page = browser.post("/forgot-password", &[("email", "not an address")]).await;
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(page.body.contains("There is a problem") && page.body.contains("<a href=\"#email\">"), "{}", page.body);
    assert!(page.body.contains("<title>Error: Reset your password – Kettle</title>"));

    // The same page whether or not the address has an account.
    let unknown = browser.post("/forgot-password", &[("email", "nobody@example.org")]).await;
    let known = browser.post("/forgot-password", &[("email", "ada@example.org")]).await;
    assert_eq!((unknown.status, known.status), (StatusCode::OK, StatusCode::OK));
    assert!(known.body.contains("Check your email") && known.body.contains("If an account uses"), "{}", known.body);
    assert_eq!(
        main_of(&unknown.body, "nobody@example.org", "ADDRESS"),
        main_of(&known.body, "ada@example.org", "ADDRESS")
    );

    let mail = next_mail(&app, "ada@example.org", "Reset", &[]).await;
    let (url, token) = link(&app, &mail, "/reset-password/");
    // Opening the link shows the form and uses nothing.
    let form = browser.get(url.trim_start_matches(&app.url(""))).await;
    assert_eq!(form.status, StatusCode::OK, "{}", form.body);
    assert!(form.body.contains("Choose a new password") && form.body.contains("autocomplete=\"new-password\""));
    assert_eq!(app.count("SELECT COUNT(*) FROM account_tokens WHERE used_at IS NOT NULL").await, 0);

    let path = format!("/reset-password/{token}");
    let page = browser.post(&path, &[("password", "password123")]).await;
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(page.body.contains("<a href=\"#password\">Choose a password that is harder to guess"), "{}", page.body);
    let page = browser.post(&path, &[("password", NEW_PASSWORD)]).await;
    assert_eq!(
        (page.status, page.location()),
        (StatusCode::SEE_OTHER, "/settings?saved=password-reset"),
        "{}",
        page.body
    );
    let settings = browser.get(page.location()).await;
    assert_eq!(settings.status, StatusCode::OK, "signed in by the reset");
    assert!(settings.body.contains("Your new password is saved"), "{}", settings.body);
    assert!(!works(&old).await, "the session from before ended");
    assert!(signs_in(&app, "ada@example.org", NEW_PASSWORD).await);

    // The link is spent.
    let again = Browser::new(&app).get(&path).await;
    assert_eq!(again.status, StatusCode::NOT_FOUND);
    assert!(again.body.contains("This link has expired") && again.body.contains("/forgot-password"));
    let mut late = Browser::new(&app);
    late.get("/forgot-password").await;
    let page = late.post(&path, &[("password", "yet another long passphrase")]).await;
    assert_eq!(page.status, StatusCode::NOT_FOUND);
    assert!(signs_in(&app, "ada@example.org", NEW_PASSWORD).await);
    // Forms need their CSRF token here too.
    let response = app.http().post(app.url(&path)).form(&[("password", NEW_PASSWORD)]).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
}

async fn mail_accounts_settings_confirm_and_change_the_address_and_password(app: TestApp) {
    let mut browser = Browser::new(&app);
    browser.register("ada@example.org", "Ada").await;
    let welcome = next_mail(&app, "ada@example.org", "Confirm", &[]).await;
    let settings = browser.get("/settings").await;
    assert!(settings.body.contains("It is not confirmed yet"), "{}", settings.body);
    assert!(settings.body.contains("Send the link again"));

    let page = browser.post("/settings/verification", &[]).await;
    assert_eq!(page.location(), "/settings?saved=verification-sent#email");
    assert!(browser.get("/settings?saved=verification-sent").await.body.contains("We have sent you a new link"));
    let again = next_mail(&app, "ada@example.org", "Confirm", &[&welcome]).await;

    // The password: the current one is required, and its error sits beside its field.
    browser.get("/settings").await;
    let page = browser
        .post("/settings/password", &[("currentPassword", "wrong password here"), ("newPassword", NEW_PASSWORD)])
        .await;
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        page.body.contains("<a href=\"#currentPassword\">Your current password is incorrect.</a>"),
        "{}",
        page.body
    );
    assert!(page.body.contains("id=\"currentPassword-error\""));
    let page =
        browser.post("/settings/password", &[("currentPassword", PASSWORD), ("newPassword", NEW_PASSWORD)]).await;
    assert_eq!(page.location(), "/settings?saved=password#password");
    assert!(browser.get("/settings?saved=password").await.body.contains("Your password has been changed."));

    // The address: the new one waits for its link, which confirms it from the page.
    let page = browser.post("/settings/email", &[("newEmail", "nope"), ("emailPassword", NEW_PASSWORD)]).await;
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(page.body.contains("<a href=\"#newEmail\">"), "{}", page.body);
    let page =
        browser.post("/settings/email", &[("newEmail", "ada@council.example"), ("emailPassword", NEW_PASSWORD)]).await;
    assert_eq!(page.location(), "/settings?saved=email-change-sent#email", "{}", page.body);
    let settings = browser.get("/settings?saved=email-change-sent").await;
    assert!(
        settings.body.contains("You asked to change your address to <strong>ada@council.example</strong>"),
        "{}",
        settings.body
    );
    let confirm = next_mail(&app, "ada@council.example", "Confirm", &[]).await;
    let (_, token) = link(&app, &confirm, "/verify-email/");
    // The earlier link for the old address was replaced by this one.
    let (_, stale) = link(&app, &again, "/verify-email/");
    assert_eq!(browser.get(&format!("/verify-email/{stale}")).await.status, StatusCode::NOT_FOUND);
    let page = browser.get(&format!("/verify-email/{token}")).await;
    assert!(page.body.contains("ada@council.example"));
    let page = browser.post(&format!("/verify-email/{token}"), &[]).await;
    assert_eq!(page.location(), "/settings?saved=verified");
    let settings = browser.get("/settings?saved=verified").await;
    assert!(
        settings.body.contains("Your email address is <strong>ada@council.example</strong>. It is confirmed."),
        "{}",
        settings.body
    );
}
