//! Suspensions, roles, site settings and the audit log: who may do each (anonymous, a
//! member, the member concerned, a moderator, an admin), a suspension taking effect on a
//! live session and a live access token, a time-limited one ending by itself, lifting,
//! the last-admin rule, an audit row for every action with its filters, proof that no
//! API path (and no direct SQL) changes the log, and the site's forms and sign-in notice.

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::{
    artefacts::{artefact, share},
    case_studies::create_topic,
    comments::post,
    scenarios,
    site::Browser,
    support::{error_code, kettle_command, query_plan_for_values, user_errors, Client, Scenario, TestApp, PASSWORD},
};

pub fn scenarios() -> Vec<(&'static str, Scenario)> {
    scenarios![
        suspensions_authorisation_matrix,
        suspensions_take_effect_on_a_live_session_and_a_live_token,
        suspensions_time_limited_end_by_themselves,
        suspensions_are_lifted_and_kept_in_history,
        suspensions_input_is_checked_and_changes_nothing,
        suspensions_role_changes_keep_an_admin,
        suspensions_every_action_is_audited_and_filtered,
        suspensions_audit_log_is_append_only,
        suspensions_audit_log_filters_are_served_by_indexes,
        suspensions_site_forms_and_the_sign_in_notice,
    ]
}

const SUSPEND: &str = "mutation($input: SuspendMemberInput!) { suspendMember(input: $input) { member { id suspension { reason startsAt endsAt } } userErrors { field message code } } }";
const LIFT: &str = "mutation($input: LiftSuspensionInput!) { liftSuspension(input: $input) { member { id suspension { reason } } userErrors { field message code } } }";
const SET_ROLE: &str = "mutation($input: SetMemberRoleInput!) { setMemberRole(input: $input) { member { id role } userErrors { field message code } } }";
const SET_WEIGHT: &str = "mutation($input: SetAutoHideWeightInput!) { setAutoHideWeight(input: $input) { siteSettings { autoHideWeight } userErrors { field message code } } }";
const AUDIT: &str = "query($first: Int, $after: String, $actor: ID, $target: ID, $action: String) { auditLog(first: $first, after: $after, actor: $actor, target: $target, action: $action) { edges { cursor node { id action targetType targetId reason before after createdAt actor { handle } target { id } } } pageInfo { hasNextPage endCursor } } }";
const SIGN_IN: &str =
    "mutation($input: SignInInput!) { signIn(input: $input) { token userErrors { field message code } } }";
const MEMBER: &str = "query($handle: String!) { member(handle: $handle) { id role suspension { reason startsAt endsAt } suspensionHistory(first: 10) { edges { node { reason endsAt liftedAt liftReason suspendedBy { handle } liftedBy { handle } } } } } }";

/// A signed-in member made a moderator or an admin straight in the database (a role is
/// read on every request, so the client's session sees it at once).
async fn with_role(app: &TestApp, email: &str, name: &str, role: &str) -> Client {
    let client = app.member(email, name).await;
    app.execute_sql(&format!("UPDATE members SET role = '{role}' WHERE email_normalized = '{email}'")).await;
    client
}

async fn id_of(client: &Client) -> String {
    client.viewer_id().await.expect("a signed-in client")
}

async fn handle_of(client: &Client) -> String {
    client.data("{ viewer { handle } }", json!({})).await["viewer"]["handle"].as_str().unwrap().to_string()
}

fn suspend_input(member: &str, reason: &str, until: Option<&str>) -> Value {
    json!({ "input": { "memberId": member, "reason": reason, "until": until } })
}

/// An RFC 3339 instant `days` from now.
fn days_from_now(days: i64) -> String {
    jiff::Timestamp::now().checked_add(jiff::SignedDuration::from_hours(24 * days)).unwrap().to_string()
}

/// The date a sign-in notice shows for an instant, in Europe/London (every test member's zone).
fn london_date(instant: &str) -> String {
    let t: jiff::Timestamp = instant.parse().unwrap();
    t.to_zoned(jiff::tz::TimeZone::get("Europe/London").unwrap()).strftime("%-d %B %Y").to_string()
}

/// The value of the first hidden input called `name` on a page.
fn hidden_value(body: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = body.find(&marker).unwrap_or_else(|| panic!("no {name} in {body}")) + marker.len();
    body[start..start + body[start..].find('"').unwrap()].to_string()
}

async fn audit_count(app: &TestApp) -> i64 {
    app.count("SELECT COUNT(*) FROM audit_log").await
}

/// Every row of the audit log, each column as text, in id order.
async fn audit_rows(app: &TestApp) -> Vec<String> {
    use sqlx::Row;
    let rows = sqlx::query(
        "SELECT id, actor_id, action, target_type, target_id, reason, before_value, after_value, created_at \
         FROM audit_log ORDER BY id",
    )
    .fetch_all(&app.state().db.pool)
    .await
    .unwrap();
    rows.iter()
        .map(|r| {
            format!(
                "{}|{:?}|{}|{}|{}|{}|{:?}|{:?}|{}",
                r.get::<i64, _>(0),
                r.get::<Option<i64>, _>(1),
                r.get::<String, _>(2),
                r.get::<String, _>(3),
                r.get::<i64, _>(4),
                r.get::<String, _>(5),
                r.get::<Option<String>, _>(6),
                r.get::<Option<String>, _>(7),
                r.get::<i64, _>(8),
            )
        })
        .collect()
}

async fn audit(client: &Client, variables: Value) -> Vec<Value> {
    let data = client.data(AUDIT, variables).await;
    data["auditLog"]["edges"].as_array().unwrap().iter().map(|e| e["node"].clone()).collect()
}

fn actions(entries: &[Value]) -> Vec<&str> {
    entries.iter().map(|e| e["action"].as_str().unwrap()).collect()
}

async fn suspensions_authorisation_matrix(app: TestApp) {
    let admin = with_role(&app, "admin@example.org", "Admin", "admin").await;
    let other_admin = with_role(&app, "admin2@example.org", "Second Admin", "admin").await;
    let moderator = with_role(&app, "mod@example.org", "Moderator", "moderator").await;
    let other_moderator = with_role(&app, "mod2@example.org", "Other Moderator", "moderator").await;
    let member = app.member("member@example.org", "Member").await;
    let target = app.member("target@example.org", "Target").await;
    let (admin_id, other_admin_id) = (id_of(&admin).await, id_of(&other_admin).await);
    let (moderator_id, other_moderator_id) = (id_of(&moderator).await, id_of(&other_moderator).await);
    let target_id = id_of(&target).await;
    let anonymous = app.anonymous();
    let before = audit_count(&app).await;

    // Anonymous: UNAUTHENTICATED everywhere. A member, and the member concerned
    // themself: FORBIDDEN.
    for (client, code) in [(&anonymous, "UNAUTHENTICATED"), (&member, "FORBIDDEN"), (&target, "FORBIDDEN")] {
        let body = client.gql(SUSPEND, suspend_input(&target_id, "Spam", None)).await;
        assert_eq!(error_code(&body), code, "suspendMember: {body}");
        let body = client.gql(LIFT, json!({ "input": { "memberId": target_id, "reason": "Sorry" } })).await;
        assert_eq!(error_code(&body), code, "liftSuspension: {body}");
        let body =
            client.gql(SET_ROLE, json!({ "input": { "memberId": target_id, "role": "ADMIN", "reason": "Me" } })).await;
        assert_eq!(error_code(&body), code, "setMemberRole: {body}");
        let body = client.gql(SET_WEIGHT, json!({ "input": { "weight": 500, "reason": "Quieter" } })).await;
        assert_eq!(error_code(&body), code, "setAutoHideWeight: {body}");
        let body = client.gql(AUDIT, json!({})).await;
        assert_eq!(error_code(&body), code, "auditLog: {body}");
        let body = client.gql("{ siteSettings { autoHideWeight } }", json!({})).await;
        assert_eq!(error_code(&body), code, "siteSettings: {body}");
    }
    assert_eq!(audit_count(&app).await, before, "refusals write nothing");
    assert_eq!(app.count("SELECT COUNT(*) FROM suspensions").await, 0);
    assert_eq!(app.count("SELECT COUNT(*) FROM members WHERE role <> 'member'").await, 4);

    // A moderator: plain members only, and only suspensions; reads the log and settings.
    for other in [&admin_id, &other_moderator_id] {
        let body = moderator.gql(SUSPEND, suspend_input(other, "Spam", None)).await;
        assert_eq!(error_code(&body), "FORBIDDEN", "{body}");
        let body = moderator.gql(LIFT, json!({ "input": { "memberId": other, "reason": "Sorry" } })).await;
        assert_eq!(error_code(&body), "FORBIDDEN", "{body}");
    }
    let body = moderator
        .gql(SET_ROLE, json!({ "input": { "memberId": target_id, "role": "MODERATOR", "reason": "Help" } }))
        .await;
    assert_eq!(error_code(&body), "FORBIDDEN");
    let body = moderator.gql(SET_WEIGHT, json!({ "input": { "weight": 500, "reason": "Quieter" } })).await;
    assert_eq!(error_code(&body), "FORBIDDEN");
    assert_eq!(
        moderator.data("{ siteSettings { autoHideWeight } }", json!({})).await["siteSettings"]["autoHideWeight"],
        300
    );
    // Nobody suspends themselves: a moderator is told so rather than refused.
    let data = moderator.data(SUSPEND, suspend_input(&moderator_id, "Testing", None)).await;
    assert_eq!(user_errors(&data["suspendMember"]), vec![("memberId".to_string(), "INVALID".to_string())]);
    let data = moderator.data(SUSPEND, suspend_input(&target_id, "Spam links in every comment", None)).await;
    assert_eq!(data["suspendMember"]["userErrors"], json!([]), "{data}");
    assert_eq!(data["suspendMember"]["member"]["suspension"]["reason"], "Spam links in every comment");
    let data = moderator.data(LIFT, json!({ "input": { "memberId": target_id, "reason": "Appealed" } })).await;
    assert_eq!(data["liftSuspension"]["userErrors"], json!([]), "{data}");
    assert!(!audit(&moderator, json!({})).await.is_empty());

    // An admin: anyone but themselves, roles and settings too.
    let data = admin.data(SUSPEND, suspend_input(&admin_id, "Testing", None)).await;
    assert_eq!(user_errors(&data["suspendMember"]), vec![("memberId".to_string(), "INVALID".to_string())]);
    for other in [&other_admin_id, &other_moderator_id] {
        let data = admin.data(SUSPEND, suspend_input(other, "Misused the role", Some(&days_from_now(7)))).await;
        assert_eq!(data["suspendMember"]["userErrors"], json!([]), "{data}");
        let data = admin.data(LIFT, json!({ "input": { "memberId": other, "reason": "Talked it over" } })).await;
        assert_eq!(data["liftSuspension"]["userErrors"], json!([]), "{data}");
    }
    let data = admin
        .data(SET_ROLE, json!({ "input": { "memberId": target_id, "role": "MODERATOR", "reason": "Volunteered" } }))
        .await;
    assert_eq!(data["setMemberRole"]["member"]["role"], "MODERATOR", "{data}");
    let data = admin.data(SET_WEIGHT, json!({ "input": { "weight": 500, "reason": "Too many false alarms" } })).await;
    assert_eq!(data["setAutoHideWeight"]["siteSettings"]["autoHideWeight"], 500, "{data}");
    // An unknown member is NOT_FOUND; an id of another type is bad input.
    let ghost = kettle::graphql::relay::global_id("Member", 999_999).0;
    assert_eq!(error_code(&admin.gql(SUSPEND, suspend_input(&ghost, "Spam", None)).await), "NOT_FOUND");
    let topic = create_topic(&admin, "Housing").await;
    assert_eq!(error_code(&admin.gql(SUSPEND, suspend_input(&topic, "Spam", None)).await), "BAD_USER_INPUT");
    // 2 by the moderator, 4 by the admin on the others, a role and a setting.
    assert_eq!(audit_count(&app).await, before + 8);
}

async fn suspensions_take_effect_on_a_live_session_and_a_live_token(app: TestApp) {
    let moderator = with_role(&app, "mod@example.org", "Moderator", "moderator").await;
    let ada = app.member("ada@example.org", "Ada").await;
    let ada_id = id_of(&ada).await;
    // A browser's session cookie and a script's access token, both taken before.
    let session = ada.token().to_string();
    let cookie = ada.with_cookie(&session);
    let created = ada
        .data("mutation { createAccessToken(input: { name: \"script\" }) { token userErrors { code } } }", json!({}))
        .await;
    let script = ada.with_token(created["createAccessToken"]["token"].as_str().unwrap());
    assert_eq!(cookie.viewer_id().await.as_deref(), Some(ada_id.as_str()));
    assert_eq!(script.viewer_id().await.as_deref(), Some(ada_id.as_str()));
    let topic = create_topic(&with_role(&app, "admin@example.org", "Admin", "admin").await, "Waste").await;
    let thing = share(&script, artefact("Bin reminder service", &[&topic])).await["id"].as_str().unwrap().to_string();

    let until = days_from_now(5);
    let data = moderator.data(SUSPEND, suspend_input(&ada_id, "Posting other people's addresses", Some(&until))).await;
    assert_eq!(data["suspendMember"]["userErrors"], json!([]), "{data}");

    // The very next request of each is signed out: the cookie reads as anonymous and
    // every write is UNAUTHENTICATED; the token is refused outright (401).
    assert_eq!(cookie.viewer_id().await, None);
    let writes = [
        (
            "mutation($s: ID!) { postComment(input: { subjectId: $s, body: \"Still here\" }) { comment { id } } }",
            json!({ "s": thing }),
        ),
        ("mutation { updateProfile(input: { bio: \"Back\" }) { member { id } } }", json!({})),
        (
            "mutation($t: ID!) { follow(input: { targetId: $t, level: WATCHING }) { follow { level } } }",
            json!({ "t": topic }),
        ),
        ("mutation { createAccessToken(input: { name: \"another\" }) { token } }", json!({})),
    ];
    for (query, variables) in &writes {
        let body = cookie.gql(query, variables.clone()).await;
        assert_eq!(error_code(&body), "UNAUTHENTICATED", "{query}: {body}");
        let response = script.post(query, variables.clone()).await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{query}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(error_code(&body), "UNAUTHENTICATED", "{body}");
    }
    assert_eq!(app.count("SELECT COUNT(*) FROM comments").await, 0, "nothing was written");
    assert_eq!(
        app.count("SELECT COUNT(*) FROM sessions WHERE member_id IN (SELECT id FROM members WHERE handle = 'ada')")
            .await,
        0
    );

    // Signing in is refused with the reason and the end date.
    let body =
        app.anonymous().data(SIGN_IN, json!({ "input": { "email": "ada@example.org", "password": PASSWORD } })).await;
    let payload = &body["signIn"];
    assert!(payload["token"].is_null(), "{payload}");
    let message = payload["userErrors"][0]["message"].as_str().unwrap();
    assert!(
        message.contains(&format!("suspended until {}: Posting other people's addresses", london_date(&until))),
        "{message}"
    );
    // The wrong password still says only that it is wrong: a suspension is no oracle.
    let body = app
        .anonymous()
        .data(SIGN_IN, json!({ "input": { "email": "ada@example.org", "password": "not the password at all" } }))
        .await;
    assert!(!body["signIn"]["userErrors"][0]["message"].as_str().unwrap().contains("suspended"), "{body}");
}

async fn suspensions_time_limited_end_by_themselves(app: TestApp) {
    let moderator = with_role(&app, "mod@example.org", "Moderator", "moderator").await;
    let ada = app.member("ada@example.org", "Ada").await;
    let ada_id = id_of(&ada).await;
    let created = ada.data("mutation { createAccessToken(input: { name: \"script\" }) { token } }", json!({})).await;
    let script = ada.with_token(created["createAccessToken"]["token"].as_str().unwrap());
    let data = moderator.data(SUSPEND, suspend_input(&ada_id, "Cooling off", Some(&days_from_now(2)))).await;
    assert_eq!(data["suspendMember"]["userErrors"], json!([]), "{data}");
    assert_eq!(script.post("{ viewer { id } }", json!({})).await.status(), StatusCode::UNAUTHORIZED);
    let refused =
        app.anonymous().data(SIGN_IN, json!({ "input": { "email": "ada@example.org", "password": PASSWORD } })).await;
    assert!(refused["signIn"]["token"].is_null());

    // Two days pass: nothing runs, and the suspension has ended by itself.
    let past = kettle::db::now_millis() - 1_000;
    app.execute_sql(&format!("UPDATE members SET suspended_until = {past} WHERE handle = 'ada'")).await;
    app.execute_sql(&format!("UPDATE suspensions SET ends_at = {past}")).await;
    let signed_in =
        app.anonymous().data(SIGN_IN, json!({ "input": { "email": "ada@example.org", "password": PASSWORD } })).await;
    assert_eq!(signed_in["signIn"]["userErrors"], json!([]), "{signed_in}");
    assert!(signed_in["signIn"]["token"].is_string());
    // The token was never revoked, so it works again; nobody sees a suspension.
    assert_eq!(script.viewer_id().await.as_deref(), Some(ada_id.as_str()));
    let seen = moderator.data(MEMBER, json!({ "handle": "ada" })).await;
    assert!(seen["member"]["suspension"].is_null(), "{seen}");
    // Lifting an ended suspension has nothing to lift.
    let data = moderator.data(LIFT, json!({ "input": { "memberId": ada_id, "reason": "Over" } })).await;
    assert_eq!(user_errors(&data["liftSuspension"]), vec![("memberId".to_string(), "INVALID".to_string())]);
}

async fn suspensions_are_lifted_and_kept_in_history(app: TestApp) {
    let moderator = with_role(&app, "mod@example.org", "Moderator", "moderator").await;
    let ada = app.member("ada@example.org", "Ada").await;
    let grace = app.member("grace@example.org", "Grace").await;
    let ada_id = id_of(&ada).await;
    let mod_handle = handle_of(&moderator).await;

    let data = moderator.data(SUSPEND, suspend_input(&ada_id, "First warning ignored", Some(&days_from_now(3)))).await;
    assert_eq!(data["suspendMember"]["userErrors"], json!([]));
    // A second suspension replaces the first: indefinite now.
    let data = moderator.data(SUSPEND, suspend_input(&ada_id, "Kept posting spam", None)).await;
    let suspension = &data["suspendMember"]["member"]["suspension"];
    assert_eq!(suspension["reason"], "Kept posting spam");
    assert!(suspension["endsAt"].is_null() && suspension["startsAt"].is_string(), "{suspension}");

    // What others see: moderators the suspension and its history; members neither.
    let seen = moderator.data(MEMBER, json!({ "handle": "ada" })).await["member"].clone();
    assert_eq!(seen["suspension"]["reason"], "Kept posting spam");
    let history = seen["suspensionHistory"]["edges"].as_array().unwrap().clone();
    assert_eq!(history.len(), 2, "{seen}");
    assert_eq!(history[0]["node"]["reason"], "Kept posting spam");
    assert!(history[0]["node"]["liftedAt"].is_null());
    assert_eq!(history[1]["node"]["liftReason"], "replaced by a new suspension");
    assert_eq!(history[1]["node"]["suspendedBy"]["handle"], json!(mod_handle));
    for client in [&grace, &app.anonymous()] {
        let other = client.data(MEMBER, json!({ "handle": "ada" })).await["member"].clone();
        assert!(other["suspension"].is_null() && other["suspensionHistory"].is_null(), "{other}");
    }

    let data = moderator.data(LIFT, json!({ "input": { "memberId": ada_id, "reason": "Promised to stop" } })).await;
    assert_eq!(data["liftSuspension"]["userErrors"], json!([]), "{data}");
    assert!(data["liftSuspension"]["member"]["suspension"].is_null());
    let ada = app.sign_in("ada@example.org", PASSWORD).await;
    assert_eq!(ada.viewer_id().await.as_deref(), Some(ada_id.as_str()));
    // The member sees no suspension on themself now.
    assert!(ada.data(MEMBER, json!({ "handle": "ada" })).await["member"]["suspension"].is_null());
    let history =
        moderator.data(MEMBER, json!({ "handle": "ada" })).await["member"]["suspensionHistory"]["edges"].clone();
    assert_eq!(history[0]["node"]["liftReason"], "Promised to stop");
    assert_eq!(history[0]["node"]["liftedBy"]["handle"], json!(mod_handle));
    // Nothing left to lift.
    let data = moderator.data(LIFT, json!({ "input": { "memberId": ada_id, "reason": "Again" } })).await;
    assert_eq!(user_errors(&data["liftSuspension"]), vec![("memberId".to_string(), "INVALID".to_string())]);
    assert_eq!(app.count("SELECT COUNT(*) FROM audit_log WHERE action = 'suspend'").await, 2);
    assert_eq!(app.count("SELECT COUNT(*) FROM audit_log WHERE action = 'lift_suspension'").await, 1);
}

async fn suspensions_input_is_checked_and_changes_nothing(app: TestApp) {
    let admin = with_role(&app, "admin@example.org", "Admin", "admin").await;
    let ada = app.member("ada@example.org", "Ada").await;
    let ada_id = id_of(&ada).await;
    let yesterday = days_from_now(-1);
    let too_far = days_from_now(11 * 366);
    let cases = [
        (suspend_input(&ada_id, "   ", None), vec![("reason", "BLANK")]),
        (suspend_input(&ada_id, &"x".repeat(501), None), vec![("reason", "TOO_LONG")]),
        (suspend_input(&ada_id, "Spam", Some(&yesterday)), vec![("until", "INVALID")]),
        (suspend_input(&ada_id, "Spam", Some(&too_far)), vec![("until", "INVALID")]),
        (suspend_input(&ada_id, "", Some(&yesterday)), vec![("reason", "BLANK"), ("until", "INVALID")]),
    ];
    for (variables, expected) in cases {
        let data = admin.data(SUSPEND, variables.clone()).await;
        let expected: Vec<(String, String)> = expected.iter().map(|(f, c)| (f.to_string(), c.to_string())).collect();
        assert_eq!(user_errors(&data["suspendMember"]), expected, "{variables}");
    }
    // Refused characters are refused at the boundary, naming the field.
    let body = admin.gql(SUSPEND, suspend_input(&ada_id, "Spam\u{0}", None)).await;
    assert_eq!(error_code(&body), "BAD_USER_INPUT", "{body}");
    let response = admin
        .post(SUSPEND, json!({ "input": { "memberId": ada_id, "reason": "Spam", "until": "next tuesday" } }))
        .await;
    let body: Value = response.json().await.unwrap();
    assert!(body["errors"][0]["message"].as_str().unwrap().contains("RFC 3339"), "{body}");
    for weight in [99, 10_001, -5] {
        let data = admin.data(SET_WEIGHT, json!({ "input": { "weight": weight, "reason": "Try" } })).await;
        assert_eq!(user_errors(&data["setAutoHideWeight"]), vec![("weight".to_string(), "INVALID".to_string())]);
    }
    let data = admin.data(SET_WEIGHT, json!({ "input": { "weight": 400, "reason": "" } })).await;
    assert_eq!(user_errors(&data["setAutoHideWeight"]), vec![("reason".to_string(), "BLANK".to_string())]);
    let data = admin.data(SET_ROLE, json!({ "input": { "memberId": ada_id, "role": "ADMIN", "reason": "" } })).await;
    assert_eq!(user_errors(&data["setMemberRole"]), vec![("reason".to_string(), "BLANK".to_string())]);
    let body = admin.gql(AUDIT, json!({ "action": "x".repeat(65) })).await;
    assert_eq!(error_code(&body), "BAD_USER_INPUT");
    let body = admin.gql(AUDIT, json!({ "actor": "nonsense" })).await;
    assert_eq!(error_code(&body), "BAD_USER_INPUT");
    // Nothing was written by any of it.
    assert_eq!(audit_count(&app).await, 0);
    assert_eq!(app.count("SELECT COUNT(*) FROM suspensions").await, 0);
    assert_eq!(app.count("SELECT COUNT(*) FROM members WHERE suspended_at IS NOT NULL").await, 0);
    assert_eq!(app.count("SELECT COUNT(*) FROM site_settings").await, 0);
    assert_eq!(app.count("SELECT COUNT(*) FROM members WHERE role = 'admin'").await, 1);
}

async fn suspensions_role_changes_keep_an_admin(app: TestApp) {
    let admin = with_role(&app, "admin@example.org", "Admin", "admin").await;
    let ada = app.member("ada@example.org", "Ada").await;
    let (admin_id, ada_id) = (id_of(&admin).await, id_of(&ada).await);

    // The only admin cannot step down.
    let data =
        admin.data(SET_ROLE, json!({ "input": { "memberId": admin_id, "role": "MEMBER", "reason": "Leaving" } })).await;
    assert_eq!(user_errors(&data["setMemberRole"]), vec![("role".to_string(), "INVALID".to_string())]);
    assert_eq!(app.count("SELECT COUNT(*) FROM members WHERE role = 'admin'").await, 1);

    // Promotion takes effect on the member's next request, with their live session.
    let data = admin
        .data(SET_ROLE, json!({ "input": { "memberId": ada_id, "role": "MODERATOR", "reason": "Volunteered" } }))
        .await;
    assert_eq!(data["setMemberRole"]["member"]["role"], "MODERATOR");
    assert!(ada.gql(AUDIT, json!({})).await.get("errors").is_none());
    let data = admin
        .data(SET_ROLE, json!({ "input": { "memberId": ada_id, "role": "ADMIN", "reason": "Runs the meetups" } }))
        .await;
    assert_eq!(data["setMemberRole"]["member"]["role"], "ADMIN");
    // Setting the role it already has records nothing.
    admin.data(SET_ROLE, json!({ "input": { "memberId": ada_id, "role": "ADMIN", "reason": "Again" } })).await;
    // Now there is another admin, the first may step down; then Ada is the last.
    let data =
        admin.data(SET_ROLE, json!({ "input": { "memberId": admin_id, "role": "MEMBER", "reason": "Leaving" } })).await;
    assert_eq!(data["setMemberRole"]["member"]["role"], "MEMBER", "{data}");
    let body =
        admin.gql(SET_ROLE, json!({ "input": { "memberId": ada_id, "role": "MEMBER", "reason": "Revenge" } })).await;
    assert_eq!(error_code(&body), "FORBIDDEN", "no longer an admin: {body}");
    let data =
        ada.data(SET_ROLE, json!({ "input": { "memberId": ada_id, "role": "MEMBER", "reason": "Leaving" } })).await;
    assert_eq!(user_errors(&data["setMemberRole"]), vec![("role".to_string(), "INVALID".to_string())]);

    // Each change is audited with the role before and after.
    let entries = audit(&ada, json!({ "action": "set_role" })).await;
    let changes: Vec<(String, String, String)> = entries
        .iter()
        .map(|e| {
            (
                e["actor"]["handle"].as_str().unwrap_or("-").to_string(),
                e["before"].as_str().unwrap().to_string(),
                e["after"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let admin_handle = "admin".to_string();
    assert_eq!(
        changes,
        vec![
            (admin_handle.clone(), r#"{"role":"admin"}"#.into(), r#"{"role":"member"}"#.into()),
            (admin_handle.clone(), r#"{"role":"moderator"}"#.into(), r#"{"role":"admin"}"#.into()),
            (admin_handle, r#"{"role":"member"}"#.into(), r#"{"role":"moderator"}"#.into()),
        ]
    );
    assert_eq!(entries[0]["reason"], "Leaving");

    // The operator's promotion at the command line is audited too, with no actor.
    let grace = app.member("grace@example.org", "Grace").await;
    let output =
        kettle_command(&app).args(["admin", "promote", "--email", "grace@example.org"]).output().await.unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let entry = &audit(&ada, json!({ "first": 1 })).await[0];
    assert_eq!(entry["action"], "set_role");
    assert!(entry["actor"].is_null(), "{entry}");
    assert_eq!(entry["reason"], "kettle admin promote");
    assert_eq!(entry["targetId"], json!(id_of(&grace).await));
    assert_eq!(entry["after"], r#"{"role":"admin"}"#);
}

async fn suspensions_every_action_is_audited_and_filtered(app: TestApp) {
    let admin = with_role(&app, "admin@example.org", "Admin", "admin").await;
    let moderator = with_role(&app, "mod@example.org", "Moderator", "moderator").await;
    let ada = app.member("ada@example.org", "Ada").await;
    let grace = app.member("grace@example.org", "Grace").await;
    let (admin_id, moderator_id, ada_id, grace_id) =
        (id_of(&admin).await, id_of(&moderator).await, id_of(&ada).await, id_of(&grace).await);

    // A topic merge, a moderator deleting Grace's comment (Ada deleting her own is not a
    // moderator action), a suspension and its lifting, a role change and a setting.
    let housing = create_topic(&admin, "Housing").await;
    let homes = create_topic(&admin, "Homes").await;
    let merged = moderator
        .data(
            "mutation($input: MergeTopicInput!) { mergeTopic(input: $input) { userErrors { code } } }",
            json!({ "input": { "id": homes, "intoId": housing, "reason": "Same thing" } }),
        )
        .await;
    assert_eq!(merged["mergeTopic"]["userErrors"], json!([]));
    let thing = share(&ada, artefact("Repairs tracker", &[&housing])).await["id"].as_str().unwrap().to_string();
    let own = post(&ada, &thing, None, "Mine").await;
    let theirs = post(&grace, &thing, None, "Buy cheap watches").await;
    const DELETE: &str = "mutation($input: DeleteCommentInput!) { deleteComment(input: $input) { deletedCommentId userErrors { code } } }";
    ada.data(DELETE, json!({ "input": { "id": own } })).await;
    let deleted = moderator.data(DELETE, json!({ "input": { "id": theirs, "reason": "Spam" } })).await;
    assert_eq!(deleted["deleteComment"]["deletedCommentId"], json!(theirs));
    moderator.data(SUSPEND, suspend_input(&grace_id, "Spam", None)).await;
    moderator.data(LIFT, json!({ "input": { "memberId": grace_id, "reason": "Appeal upheld" } })).await;
    admin
        .data(SET_ROLE, json!({ "input": { "memberId": ada_id, "role": "MODERATOR", "reason": "Volunteered" } }))
        .await;
    admin.data(SET_WEIGHT, json!({ "input": { "weight": 600, "reason": "Fewer false alarms" } })).await;

    // Everything, newest first, each with who, what, on what, why and when.
    let all = audit(&moderator, json!({})).await;
    assert_eq!(
        actions(&all),
        vec!["set_site_setting", "set_role", "lift_suspension", "suspend", "delete_comment", "merge_topic"]
    );
    let ids: std::collections::HashSet<&str> = all.iter().map(|e| e["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), all.len());
    let by_action = |name: &str| all.iter().find(|e| e["action"] == name).unwrap().clone();
    let merge = by_action("merge_topic");
    assert_eq!(merge["targetType"], "topic");
    assert_eq!(merge["targetId"], json!(homes));
    assert_eq!(merge["target"]["id"], json!(homes), "a merged topic still exists");
    assert_eq!(merge["reason"], "Same thing");
    assert!(merge["after"].as_str().unwrap().contains("housing"), "{merge}");
    let delete = by_action("delete_comment");
    assert_eq!((delete["targetType"].as_str(), delete["targetId"].as_str()), (Some("comment"), Some(theirs.as_str())));
    assert!(delete["target"].is_null(), "the comment is gone");
    assert!(!delete["before"].as_str().unwrap().contains("watches"), "the log keeps no comment text: {delete}");
    assert_eq!(delete["actor"]["handle"], "moderator");
    let setting = by_action("set_site_setting");
    assert_eq!(setting["before"], r#"{"auto_hide_weight":300}"#);
    assert_eq!(setting["after"], r#"{"auto_hide_weight":600}"#);
    assert_eq!(setting["targetType"], "site_setting");
    let suspend = by_action("suspend");
    assert_eq!(suspend["target"]["id"], json!(grace_id));
    assert!(all.iter().all(|e| e["createdAt"].as_str().unwrap().ends_with('Z')));

    // Filters: by actor, by target, by action, and together.
    assert_eq!(
        actions(&audit(&moderator, json!({ "actor": moderator_id })).await),
        vec!["lift_suspension", "suspend", "delete_comment", "merge_topic"]
    );
    assert_eq!(actions(&audit(&moderator, json!({ "actor": admin_id })).await), vec!["set_site_setting", "set_role"]);
    assert_eq!(actions(&audit(&moderator, json!({ "target": grace_id })).await), vec!["lift_suspension", "suspend"]);
    assert_eq!(actions(&audit(&moderator, json!({ "target": ada_id })).await), vec!["set_role"]);
    assert_eq!(actions(&audit(&moderator, json!({ "action": "suspend" })).await), vec!["suspend"]);
    assert_eq!(
        actions(&audit(&moderator, json!({ "actor": admin_id, "action": "set_role", "target": ada_id })).await),
        vec!["set_role"]
    );
    assert!(audit(&moderator, json!({ "actor": ada_id })).await.is_empty());
    assert!(audit(&moderator, json!({ "action": "no_such_action" })).await.is_empty());

    // Keyset pages, newest first, with no overlap.
    let first = moderator.data(AUDIT, json!({ "first": 4 })).await["auditLog"].clone();
    assert_eq!(first["pageInfo"]["hasNextPage"], true);
    let next =
        moderator.data(AUDIT, json!({ "first": 4, "after": first["pageInfo"]["endCursor"] })).await["auditLog"].clone();
    assert_eq!(next["pageInfo"]["hasNextPage"], false);
    let paged: Vec<&str> = first["edges"]
        .as_array()
        .unwrap()
        .iter()
        .chain(next["edges"].as_array().unwrap())
        .map(|e| e["node"]["action"].as_str().unwrap())
        .collect();
    assert_eq!(paged, actions(&all));
}

async fn suspensions_audit_log_is_append_only(app: TestApp) {
    let admin = with_role(&app, "admin@example.org", "Admin", "admin").await;
    let moderator = with_role(&app, "mod@example.org", "Moderator", "moderator").await;
    let ada = app.member("ada@example.org", "Ada").await;
    let ada_id = id_of(&ada).await;
    let (admin_id, moderator_id) = (id_of(&admin).await, id_of(&moderator).await);
    // Some history first.
    moderator.data(SUSPEND, suspend_input(&ada_id, "Spam", None)).await;
    moderator.data(LIFT, json!({ "input": { "memberId": ada_id, "reason": "Appeal" } })).await;
    admin.data(SET_WEIGHT, json!({ "input": { "weight": 700, "reason": "Calmer" } })).await;
    let topic = create_topic(&admin, "Parks").await;
    let other = create_topic(&admin, "Green spaces").await;
    let ada = app.sign_in("ada@example.org", PASSWORD).await;
    let thing = share(&ada, artefact("Park booking", &[&topic])).await["id"].as_str().unwrap().to_string();
    let comment = post(&ada, &thing, None, "First").await;
    let history = audit_rows(&app).await;
    assert_eq!(history.len(), 3);

    // Every mutation that writes the log, as a member and as a moderator (allowed or not),
    // aimed at the members and things the rows above are about.
    let mutations: Vec<(&str, Value)> = vec![
        (SUSPEND, suspend_input(&ada_id, "Again", None)),
        (SUSPEND, suspend_input(&admin_id, "Coup", None)),
        (SUSPEND, suspend_input(&moderator_id, "Coup", None)),
        (LIFT, json!({ "input": { "memberId": ada_id, "reason": "Appeal" } })),
        (LIFT, json!({ "input": { "memberId": admin_id, "reason": "Appeal" } })),
        (SET_ROLE, json!({ "input": { "memberId": moderator_id, "role": "ADMIN", "reason": "Me" } })),
        (SET_ROLE, json!({ "input": { "memberId": admin_id, "role": "MEMBER", "reason": "Coup" } })),
        (SET_WEIGHT, json!({ "input": { "weight": 100, "reason": "Louder" } })),
        (
            "mutation($input: MergeTopicInput!) { mergeTopic(input: $input) { userErrors { code } } }",
            json!({ "input": { "id": other, "intoId": topic, "reason": "Same" } }),
        ),
        (
            "mutation($input: DeleteCommentInput!) { deleteComment(input: $input) { userErrors { code } } }",
            json!({ "input": { "id": comment, "reason": "Test" } }),
        ),
    ];
    let member = app.member("member@example.org", "Member").await;
    for client in [&member, &moderator] {
        for (query, variables) in &mutations {
            client.gql(query, variables.clone()).await;
        }
    }
    let after = audit_rows(&app).await;
    assert!(after.len() > history.len(), "the moderator's allowed actions were appended");
    assert_eq!(after[..history.len()], history[..], "every earlier row is exactly as it was");

    // No API field exists to change or remove an entry.
    let fields = admin.data("{ __schema { mutationType { fields { name } } } }", json!({})).await;
    let names: Vec<String> = fields["__schema"]["mutationType"]["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap().to_lowercase())
        .collect();
    assert!(!names.iter().any(|n| n.contains("audit")), "{names:?}");

    // The database itself refuses, on both databases.
    let pool = &app.state().db.pool;
    for statement in [
        "UPDATE audit_log SET reason = 'nothing to see'",
        "UPDATE audit_log SET actor_id = NULL WHERE id = (SELECT MIN(id) FROM audit_log)",
        "DELETE FROM audit_log",
        "DELETE FROM audit_log WHERE id = (SELECT MAX(id) FROM audit_log)",
    ] {
        let result = sqlx::query(statement).execute(pool).await;
        let error = result.expect_err(statement).to_string();
        assert!(error.contains("append-only"), "{statement}: {error}");
    }
    if matches!(app.backend(), crate::support::Backend::Postgres { .. }) {
        let error = sqlx::query("TRUNCATE audit_log").execute(pool).await.expect_err("TRUNCATE").to_string();
        assert!(error.contains("append-only"), "{error}");
    }
    assert_eq!(audit_rows(&app).await, after);
}

async fn suspensions_site_forms_and_the_sign_in_notice(app: TestApp) {
    let _admin = with_role(&app, "admin@example.org", "Admin", "admin").await;
    let _moderator = with_role(&app, "mod@example.org", "Moderator", "moderator").await;
    app.member("ada@example.org", "Ada Lovelace").await;
    let mut moderator = Browser::new(&app);
    moderator.sign_in("mod@example.org", PASSWORD).await;
    let mut ada = Browser::new(&app);
    ada.sign_in("ada@example.org", PASSWORD).await;
    assert!(ada.get("/settings").await.body.contains("ada@example.org"));

    // A member sees no moderation forms, and no admin pages.
    let page = ada.get("/members/@admin").await;
    assert!(!page.body.contains("/suspend\"") && !page.body.contains("Change role"), "{}", page.body);
    assert_eq!(ada.get("/admin/audit").await.status, StatusCode::FORBIDDEN);
    assert_eq!(ada.get("/admin/settings").await.status, StatusCode::FORBIDDEN);
    assert_eq!(Browser::new(&app).get("/admin/audit").await.status, StatusCode::SEE_OTHER);

    // A moderator suspends through the member page: problems first, then for real.
    let page = moderator.get("/members/@ada-lovelace").await;
    assert!(page.body.contains("action=\"/members/@ada-lovelace/suspend\""), "{}", page.body);
    assert!(!page.body.contains("Change role"), "roles are for admins");
    let member_id = hidden_value(&page.body, "memberId");
    // 8 December next year: in the future, and well within the ten years allowed.
    let year = (jiff::Zoned::now().year() + 1).to_string();
    let form = |reason: &'static str, day: &'static str| {
        vec![
            ("memberId", member_id.clone()),
            ("reason", reason.to_string()),
            ("untilDay", day.to_string()),
            ("untilMonth", "12".to_string()),
            ("untilYear", year.clone()),
        ]
    };
    let fields = form("", "31");
    let fields: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let page = moderator.post("/members/@ada-lovelace/suspend", &fields).await;
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(page.body.contains("There is a problem") && page.body.contains("Enter a reason."), "{}", page.body);
    assert!(page.body.contains("value=\"31\""), "what was typed stays");
    let fields = form("Shared a resident's address", "32");
    let fields: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let page = moderator.post("/members/@ada-lovelace/suspend", &fields).await;
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(page.body.contains("such as 8 12 2026"), "not a date");
    let end = jiff::civil::date(year.parse().unwrap(), 12, 8);
    let fields = vec![
        ("memberId", member_id.as_str()),
        ("reason", "Shared a resident's address"),
        ("untilDay", "8"),
        ("untilMonth", "12"),
        ("untilYear", year.as_str()),
    ];
    let page = moderator.post("/members/@ada-lovelace/suspend", &fields).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    let page = moderator.get(page.location()).await;
    assert!(page.body.contains("is suspended and has been signed out everywhere"), "{}", page.body);
    assert!(page.body.contains("Lift suspension") && page.body.contains("Suspension history"));
    let ends: i64 = app.count("SELECT suspended_until FROM members WHERE handle = 'ada-lovelace'").await;
    let expected =
        end.to_zoned(jiff::tz::TimeZone::get("Europe/London").unwrap()).unwrap().timestamp().as_millisecond();
    assert_eq!(ends, expected, "the start of that day where the moderator is");

    // Ada's browser is signed out at once; signing in tells her why and until when.
    assert_eq!(ada.get("/settings").await.status, StatusCode::SEE_OTHER);
    ada.get("/sign-in").await;
    let page = ada.post("/sign-in", &[("email", "ada@example.org"), ("password", PASSWORD)]).await;
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        page.body
            .contains(&format!("This account is suspended until 8 December {year}: Shared a resident&#x27;s address.")),
        "{}",
        page.body
    );

    // The audit page lists it, and filters by actor, action and target.
    let page = moderator.get("/admin/audit").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("Shared a resident&#x27;s address") && page.body.contains("Suspend"), "{}", page.body);
    let page = moderator.get("/admin/audit?actor=%40moderator&action=suspend&target=%40ada-lovelace").await;
    assert!(page.body.contains("Shared a resident&#x27;s address"), "{}", page.body);
    let page = moderator.get("/admin/audit?action=set_role").await;
    assert!(page.body.contains("No entries match."), "{}", page.body);
    let page = moderator.get("/admin/audit?actor=%40nobody-here").await;
    assert!(page.body.contains("Nobody has the handle @nobody-here."), "{}", page.body);

    // Lifting through the page.
    moderator.get("/members/@ada-lovelace").await;
    let page = moderator
        .post("/members/@ada-lovelace/lift", &[("memberId", member_id.as_str()), ("liftReason", "Apologised")])
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    ada.sign_in("ada@example.org", PASSWORD).await;

    // An admin changes a role and the threshold through the site.
    let mut admin = Browser::new(&app);
    admin.sign_in("admin@example.org", PASSWORD).await;
    let page = admin.get("/members/@ada-lovelace").await;
    assert!(page.body.contains("Change role"));
    let page = admin
        .post(
            "/members/@ada-lovelace/role",
            &[("memberId", member_id.as_str()), ("role", "MODERATOR"), ("roleReason", "Volunteered")],
        )
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    assert_eq!(app.count("SELECT COUNT(*) FROM members WHERE handle = 'ada-lovelace' AND role = 'moderator'").await, 1);
    let page = admin.get("/admin/settings").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("value=\"300\""), "{}", page.body);
    let page = admin.post("/admin/settings", &[("weight", "lots"), ("reason", "Quieter")]).await;
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
    let page = admin.post("/admin/settings", &[("weight", "50"), ("reason", "Quieter")]).await;
    assert!(page.body.contains("between 100 and 10000"), "{}", page.body);
    let page = admin.post("/admin/settings", &[("weight", "450"), ("reason", "Quieter")]).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    assert!(admin.get("/admin/settings?saved=1").await.body.contains("value=\"450\""));
    // A moderator may not change settings through the site either.
    assert_eq!(moderator.get("/admin/settings").await.status, StatusCode::FORBIDDEN);
}

/// Each filter of the audit log, alone and with a cursor, is served by its index, and the
/// newest-first order comes from the index too (no sort after the fact). The whole log,
/// unfiltered, walks the primary key backwards.
async fn suspensions_audit_log_filters_are_served_by_indexes(app: TestApp) {
    use kettle::{
        db::Keyset,
        moderation::audit::{list_sql, Filter},
    };

    // A log of some size, so that PostgreSQL's planner weighs the plans as it would in
    // use (on an empty table it sorts a handful of rows instead): 5,000 entries by 1,000
    // actors on 2,500 targets, one in a hundred a suspension. (For a value found all over
    // the log, walking the primary key backwards and stopping at the limit is the better
    // plan, and PostgreSQL rightly takes it; the indexes are for the rare ones.)
    app.execute_sql(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 5000) \
         INSERT INTO audit_log (actor_id, action, target_type, target_id, reason, created_at) \
         SELECT i % 1000, CASE WHEN i % 100 = 0 THEN 'suspend' ELSE 'delete_comment' END, \
         'member', i % 2500, 'seeded', i FROM n",
    )
    .await;
    app.execute_sql("ANALYZE audit_log").await;
    let target = Some(("member".to_string(), 1i64));
    let cases = [
        (Filter::default(), "audit_log"),
        (Filter { actor_id: Some(1), ..Filter::default() }, "audit_log_actor"),
        (Filter { target: target.clone(), ..Filter::default() }, "audit_log_target"),
        (Filter { action: Some("suspend".into()), ..Filter::default() }, "audit_log_action"),
    ];
    for (filter, wanted) in cases {
        for after in [None, Some(1_000i64)] {
            let keyset = Keyset { after, before: None, forward: true, fetch: 21 };
            let sql = list_sql(&filter, &keyset);
            let (target_type, target_id) = filter.target.clone().unzip();
            let plan = query_plan_for_values(&app, &sql, |query| {
                query
                    .bind(filter.actor_id)
                    .bind(target_type)
                    .bind(target_id)
                    .bind(filter.action.clone())
                    .bind(after)
                    .bind(None::<i64>)
                    .bind(21i64)
            })
            .await;
            let text = plan.join("\n");
            assert!(text.contains(wanted), "{filter:?} after {after:?} is not served by {wanted}: {text}");
            assert!(!text.contains("Seq Scan"), "{text}");
            // SQLite reads the index in order. PostgreSQL may gather a rare value's few rows
            // through the index and sort just those, which is as good.
            assert!(!text.contains("TEMP B-TREE"), "sorted after the fact: {text}");
            if wanted != "audit_log" {
                assert!(!text.contains("SCAN audit_log\n") && !text.ends_with("SCAN audit_log"), "{text}");
            }
        }
    }
}
