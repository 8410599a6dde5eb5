//! Data rights: the personal data export, erasure (by the member and by an admin), the
//! retention schedule, and the privacy pages.
//!
//! The erasure scan test is the heart of it: a member who has done everything is
//! exported, and the export is checked against every row the database's own catalogue
//! says refers to them; then they are erased, and every text column of every table is
//! searched for anything that identified them.

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::{
    artefacts::{artefact, number, share},
    case_studies::{admin, case_study, create_case_study, create_organisation, create_topic, PUBLISH, UPDATE},
    scenarios,
    site::Browser,
    support::{error_code, user_errors, Backend, Client, Scenario, TestApp, PASSWORD},
};

pub fn scenarios() -> Vec<(&'static str, Scenario)> {
    scenarios![
        privacy_export_is_built_in_the_background_and_downloaded_only_by_its_member,
        privacy_delete_account_needs_a_session_and_the_password,
        privacy_a_passwordless_member_deletes_after_a_fresh_sign_in,
        privacy_admins_erase_members_on_request_and_it_is_audited,
        privacy_erasure_scan_finds_nothing_personal_and_others_content_reads,
        privacy_retention_prunes_each_kind_and_keeps_newer_rows,
        privacy_pages_explain_and_let_members_export_and_delete,
    ]
}

const REQUEST_EXPORT: &str =
    "mutation { requestDataExport { dataExport { id status expiresAt downloadUrl } userErrors { field code } } }";
const EXPORTS: &str =
    "{ viewer { dataExports(first: 10) { edges { node { id status createdAt readyAt expiresAt downloadUrl } } } } }";
const DELETE: &str =
    "mutation($input: DeleteAccountInput!) { deleteAccount(input: $input) { erased userErrors { field code message } } }";
const ERASE: &str =
    "mutation($input: EraseMemberInput!) { eraseMember(input: $input) { erased userErrors { field code message } } }";

/// Asks for an export and waits until it is ready; its download URL.
async fn export_ready(client: &Client) -> String {
    let asked = client.data(REQUEST_EXPORT, json!({})).await;
    let id = asked["requestDataExport"]["dataExport"]["id"].clone();
    assert!(id.is_string(), "{asked}");
    for _ in 0..200 {
        let data = client.data(EXPORTS, json!({})).await;
        let edges = data["viewer"]["dataExports"]["edges"].as_array().unwrap().clone();
        let node = edges.iter().map(|e| &e["node"]).find(|n| n["id"] == id).cloned().expect("the export is listed");
        if node["status"] == "READY" {
            return node["downloadUrl"].as_str().expect("a ready export has a link").to_string();
        }
        assert_eq!(node["status"], "PENDING", "{node}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("the export was never built");
}

/// Downloads with the client's session as the browser's cookie (or none).
async fn download(app: &TestApp, url: &str, session: Option<&str>) -> reqwest::Response {
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let mut request = http.get(url);
    if let Some(session) = session {
        request = request.header("cookie", format!("kettle_session={session}"));
    }
    let _ = app;
    request.send().await.unwrap()
}

/// True when the client's credential no longer signs anyone in (a bearer token that
/// does not is refused with 401).
async fn signed_out(client: &Client) -> bool {
    let response = client.post("{ viewer { id } }", json!({})).await;
    let status = response.status();
    let body: Value = response.json().await.unwrap();
    status == StatusCode::UNAUTHORIZED && error_code(&body) == "UNAUTHENTICATED"
        || body["data"]["viewer"].is_null() && status == StatusCode::OK
}

async fn id_of(app: &TestApp, email: &str) -> i64 {
    app.count(&format!("SELECT id FROM members WHERE email_normalized = '{email}'")).await
}

async fn privacy_export_is_built_in_the_background_and_downloaded_only_by_its_member(app: TestApp) {
    let body = app.anonymous().gql(REQUEST_EXPORT, json!({})).await;
    assert_eq!(error_code(&body), "UNAUTHENTICATED");
    let ada = app.member("ada@example.org", "Ada").await;
    let grace = app.member("grace@example.org", "Grace").await;

    let url = export_ready(&ada).await;
    assert!(url.starts_with(&app.url("/settings/data/export/")), "{url}");
    let response = download(&app, &url, Some(ada.token())).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "application/json");
    let disposition = response.headers()["content-disposition"].to_str().unwrap().to_string();
    assert!(disposition.starts_with("attachment;") && disposition.contains(".json"), "{disposition}");
    let document: Value = response.json().await.unwrap();
    assert_eq!(document["sections"]["members.id"][0]["email"], "ada@example.org");
    let text = document.to_string();
    assert!(!text.contains("token_hash") && !text.contains("password_hash") && !text.contains("kses_"), "{text}");

    // Someone else's session, no session, or a forged token: nothing.
    assert_eq!(download(&app, &url, Some(grace.token())).await.status(), StatusCode::NOT_FOUND);
    let anonymous = download(&app, &url, None).await;
    assert_ne!(anonymous.status(), StatusCode::OK);
    assert!(!anonymous.text().await.unwrap().contains("ada@example.org"));
    let last = if url.ends_with('0') { '1' } else { '0' };
    let forged = format!("{}{last}", &url[..url.len() - 1]);
    assert_eq!(download(&app, &forged, Some(ada.token())).await.status(), StatusCode::NOT_FOUND);

    // Only the member lists their exports.
    let ada_handle = "ada";
    let others = grace
        .gql(
            "query($h: String!) { member(handle: $h) { dataExports { edges { node { id } } } } }",
            json!({ "h": ada_handle }),
        )
        .await;
    assert_eq!(error_code(&others), "FORBIDDEN");

    // Three a day; the fourth is refused and records nothing.
    ada.data(REQUEST_EXPORT, json!({})).await;
    ada.data(REQUEST_EXPORT, json!({})).await;
    let before = app.count("SELECT COUNT(*) FROM data_exports").await;
    let refused = ada.gql(REQUEST_EXPORT, json!({})).await;
    assert_eq!(error_code(&refused), "RATE_LIMITED");
    assert_eq!(app.count("SELECT COUNT(*) FROM data_exports").await, before);
    // Grace has her own allowance.
    grace.data(REQUEST_EXPORT, json!({})).await;

    // Expired: the link is dead, and the list no longer shows it.
    app.execute_sql("UPDATE data_exports SET expires_at = 1").await;
    assert_eq!(download(&app, &url, Some(ada.token())).await.status(), StatusCode::NOT_FOUND);
    assert_eq!(ada.data(EXPORTS, json!({})).await["viewer"]["dataExports"]["edges"], json!([]));
}

async fn privacy_delete_account_needs_a_session_and_the_password(app: TestApp) {
    let body = app.anonymous().gql(DELETE, json!({ "input": { "password": PASSWORD } })).await;
    assert_eq!(error_code(&body), "UNAUTHENTICATED");
    let ada = app.member("ada@example.org", "Ada").await;
    let grace = app.member("grace@example.org", "Grace").await;
    let ada_id = id_of(&app, "ada@example.org").await;

    // An access token (for scripts) cannot delete the account.
    let created = ada
        .data("mutation { createAccessToken(input: { name: \"script\" }) { token userErrors { code } } }", json!({}))
        .await;
    let token = created["createAccessToken"]["token"].as_str().unwrap();
    let body = ada.with_token(token).gql(DELETE, json!({ "input": { "password": PASSWORD } })).await;
    assert_eq!(error_code(&body), "FORBIDDEN");

    // No password, or the wrong one: nothing changes.
    for (password, code) in [(json!(null), "BLANK"), (json!("not my password at all"), "INVALID_CREDENTIALS")] {
        let refused = ada.data(DELETE, json!({ "input": { "password": password } })).await;
        assert_eq!(refused["deleteAccount"]["erased"], false);
        assert_eq!(user_errors(&refused["deleteAccount"]), vec![("password".to_string(), code.to_string())]);
    }
    assert_eq!(app.count("SELECT COUNT(*) FROM members WHERE erased_at IS NOT NULL").await, 0);
    assert!(ada.viewer_id().await.is_some());

    let deleted = ada.data(DELETE, json!({ "input": { "password": PASSWORD } })).await;
    assert_eq!(deleted["deleteAccount"], json!({ "erased": true, "userErrors": [] }));
    assert_eq!(
        app.count(&format!("SELECT COUNT(*) FROM members WHERE id = {ada_id} AND erased_at IS NOT NULL")).await,
        1
    );
    // Signed out everywhere, the token too, and the address and password sign nobody in.
    assert!(signed_out(&ada).await);
    assert!(signed_out(&ada.with_token(token)).await);
    let sign_in = app
        .anonymous()
        .gql(
            "mutation($input: SignInInput!) { signIn(input: $input) { token userErrors { code } } }",
            json!({ "input": { "email": "ada@example.org", "password": PASSWORD } }),
        )
        .await;
    assert!(sign_in["data"]["signIn"]["token"].is_null(), "{sign_in}");
    // Grace is untouched, and the address is free to register again.
    assert!(grace.viewer_id().await.is_some());
    app.member("ada@example.org", "Ada again").await;
}

async fn privacy_a_passwordless_member_deletes_after_a_fresh_sign_in(app: TestApp) {
    let ada = app.member("ada@example.org", "Ada").await;
    // As if she had only ever signed in with a provider.
    app.execute_sql("UPDATE members SET password_hash = NULL WHERE email_normalized = 'ada@example.org'").await;
    app.execute_sql(&format!(
        "UPDATE sessions SET created_at = {} WHERE member_id = {}",
        kettle::db::now_millis() - 11 * 60 * 1000,
        id_of(&app, "ada@example.org").await
    ))
    .await;
    let stale = ada.data(DELETE, json!({ "input": {} })).await;
    assert_eq!(stale["deleteAccount"]["erased"], false);
    assert_eq!(user_errors(&stale["deleteAccount"]), vec![("password".to_string(), "INVALID".to_string())]);
    assert_eq!(app.count("SELECT COUNT(*) FROM members WHERE erased_at IS NOT NULL").await, 0);

    // A session opened just now (what a provider sign-in makes) is the proof.
    app.execute_sql(&format!("UPDATE sessions SET created_at = {}", kettle::db::now_millis())).await;
    let deleted = ada.data(DELETE, json!({ "input": {} })).await;
    assert_eq!(deleted["deleteAccount"], json!({ "erased": true, "userErrors": [] }));
    assert_eq!(app.count("SELECT COUNT(*) FROM members WHERE erased_at IS NOT NULL").await, 1);
}

async fn privacy_admins_erase_members_on_request_and_it_is_audited(app: TestApp) {
    let tess = admin(&app, "tess@example.org", "Tess").await;
    let ada = app.member("ada@example.org", "Ada").await;
    let grace = app.member("grace@example.org", "Grace").await;
    let mary = app.member("mary@example.org", "Mary").await;
    app.execute_sql("UPDATE members SET role = 'moderator' WHERE email_normalized = 'mary@example.org'").await;
    let ada_id = id_of(&app, "ada@example.org").await;
    let ada_global = kettle::graphql::relay::global_id("Member", ada_id).to_string();
    let input = json!({ "input": { "memberId": ada_global, "reason": "Request ref 2026-118" } });

    assert_eq!(error_code(&app.anonymous().gql(ERASE, input.clone()).await), "UNAUTHENTICATED");
    for (who, client) in [("a member", &grace), ("the member themself", &ada), ("a moderator", &mary)] {
        let body = client.gql(ERASE, input.clone()).await;
        assert_eq!(error_code(&body), "FORBIDDEN", "{who}");
    }
    assert_eq!(app.count("SELECT COUNT(*) FROM members WHERE erased_at IS NOT NULL").await, 0);

    let blank = tess.data(ERASE, json!({ "input": { "memberId": ada_global, "reason": " " } })).await;
    assert_eq!(user_errors(&blank["eraseMember"]), vec![("reason".to_string(), "BLANK".to_string())]);
    let tess_global = kettle::graphql::relay::global_id("Member", id_of(&app, "tess@example.org").await).to_string();
    let own = tess.data(ERASE, json!({ "input": { "memberId": tess_global, "reason": "test" } })).await;
    assert_eq!(user_errors(&own["eraseMember"]), vec![("memberId".to_string(), "INVALID".to_string())]);
    let unknown = kettle::graphql::relay::global_id("Member", 9999).to_string();
    let missing = tess.gql(ERASE, json!({ "input": { "memberId": unknown, "reason": "test" } })).await;
    assert_eq!(error_code(&missing), "NOT_FOUND");
    assert_eq!(app.count("SELECT COUNT(*) FROM audit_log").await, 0, "refusals audit nothing");

    let done = tess.data(ERASE, input.clone()).await;
    assert_eq!(done["eraseMember"], json!({ "erased": true, "userErrors": [] }));
    assert!(signed_out(&ada).await, "her sessions ended");
    let tess_id = id_of(&app, "tess@example.org").await;
    assert_eq!(
        app.count(&format!(
            "SELECT COUNT(*) FROM audit_log WHERE action = 'erase_member' AND target_type = 'member' \
             AND target_id = {ada_id} AND actor_id = {tess_id} AND reason = 'Request ref 2026-118'"
        ))
        .await,
        1
    );
    // Once erased, there is nothing left to erase.
    assert_eq!(error_code(&tess.gql(ERASE, input).await), "NOT_FOUND");
    assert_eq!(app.count("SELECT COUNT(*) FROM audit_log").await, 1);
}

// ---------------------------------------------------------------------------------------
// The erasure scan

/// `(table, column)` of every column that refers to a member: the foreign keys to
/// `members`, read from the database's catalogue, and columns named like a member
/// reference that have none (the audit log's, on purpose).
async fn member_reference_columns(app: &TestApp) -> Vec<(String, String)> {
    let db = &app.state().db;
    let sql = match app.backend() {
        Backend::Sqlite => {
            "SELECT m.name, p.\"from\" FROM sqlite_master m, pragma_foreign_key_list(m.name) p \
             WHERE m.type = 'table' AND p.\"table\" = 'members' \
             UNION SELECT m.name, c.name FROM sqlite_master m, pragma_table_info(m.name) c \
             WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%' AND (c.name LIKE '%member_id' OR c.name = 'actor_id')"
        }
        Backend::Postgres { .. } => {
            "SELECT kcu.table_name::text, kcu.column_name::text FROM information_schema.table_constraints tc \
             JOIN information_schema.key_column_usage kcu ON kcu.constraint_name = tc.constraint_name \
               AND kcu.table_schema = tc.table_schema \
             JOIN information_schema.constraint_column_usage ccu ON ccu.constraint_name = tc.constraint_name \
               AND ccu.table_schema = tc.table_schema \
             WHERE tc.constraint_type = 'FOREIGN KEY' AND ccu.table_name = 'members' AND tc.table_schema = current_schema() \
             UNION SELECT table_name::text, column_name::text FROM information_schema.columns \
             WHERE table_schema = current_schema() AND (column_name LIKE '%member_id' OR column_name = 'actor_id')"
        }
    };
    let mut columns: Vec<(String, String)> = sqlx::query_as(sql).fetch_all(&db.pool).await.unwrap();
    columns.sort();
    columns.dedup();
    columns
}

/// `(table, column)` of every column that can hold text, from the catalogue.
async fn text_columns(app: &TestApp) -> Vec<(String, String)> {
    let sql = match app.backend() {
        Backend::Sqlite => {
            "SELECT m.name, c.name FROM sqlite_master m, pragma_table_info(m.name) c \
             WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%' AND m.name NOT LIKE '_sqlx%' \
             AND (UPPER(c.type) LIKE '%TEXT%' OR UPPER(c.type) LIKE '%CHAR%' OR UPPER(c.type) LIKE '%CLOB%' OR c.type = '')"
        }
        Backend::Postgres { .. } => {
            "SELECT c.table_name::text, c.column_name::text FROM information_schema.columns c \
             JOIN information_schema.tables t ON t.table_name = c.table_name AND t.table_schema = c.table_schema \
             WHERE c.table_schema = current_schema() AND t.table_type = 'BASE TABLE' AND c.table_name NOT LIKE '_sqlx%' \
             AND c.data_type IN ('text', 'character varying', 'character', 'json', 'jsonb')"
        }
    };
    sqlx::query_as(sql).fetch_all(&app.state().db.pool).await.unwrap()
}

/// Where any of `needles` (compared without case) appears in any text column.
async fn scan(app: &TestApp, needles: &[String]) -> Vec<String> {
    let columns = text_columns(app).await;
    assert!(columns.len() > 40, "the catalogue lists the text columns: {columns:?}");
    let mut found = Vec::new();
    for (table, column) in columns {
        for needle in needles {
            let sql = format!("SELECT COUNT(*) FROM \"{table}\" WHERE LOWER(CAST(\"{column}\" AS TEXT)) LIKE $1");
            let n: i64 = sqlx::query_scalar(&sql)
                .bind(format!("%{}%", needle.to_lowercase()))
                .fetch_one(&app.state().db.pool)
                .await
                .unwrap_or_else(|e| panic!("{sql}: {e}"));
            if n > 0 {
                found.push(format!("{table}.{column} holds {needle:?} ({n} rows)"));
            }
        }
    }
    found
}

const POST_COMMENT: &str =
    "mutation($input: PostCommentInput!) { postComment(input: $input) { comment { id } userErrors { field code } } }";
const GROUP: &str = "mutation($input: CreateMeetupGroupInput!) { createMeetupGroup(input: $input) { group { id } userErrors { field code } } }";
const SCHEDULE: &str = "mutation($input: ScheduleMeetupInput!) { scheduleMeetup(input: $input) { event { id } userErrors { field code message } } }";
const RSVP: &str =
    "mutation($id: ID!) { rsvp(input: { eventId: $id, going: true }) { rsvp { status } userErrors { code } } }";

async fn comment(client: &Client, subject: &str, parent: Option<&str>, body: &str) -> String {
    let data =
        client.data(POST_COMMENT, json!({ "input": { "subjectId": subject, "parentId": parent, "body": body } })).await;
    assert_eq!(data["postComment"]["userErrors"], json!([]), "{data}");
    data["postComment"]["comment"]["id"].as_str().unwrap().to_string()
}

async fn privacy_erasure_scan_finds_nothing_personal_and_others_content_reads(app: TestApp) {
    let tess = admin(&app, "tess@example.org", "Tess").await;
    let topic = create_topic(&tess, "Bin collections").await;
    let ada = app.verified_member("ada.lovelace@example.org", "Ada Lovelace").await;
    let grace = app.verified_member("grace@example.org", "Grace Hopper").await;
    let bob = app.member("bob@example.org", "Bob Brown").await;
    let ada_id = id_of(&app, "ada.lovelace@example.org").await;
    let bob_id = id_of(&app, "bob@example.org").await;
    let ada_global = kettle::graphql::relay::global_id("Member", ada_id).to_string();
    assert_eq!(
        app.count(&format!("SELECT COUNT(*) FROM members WHERE handle = 'ada-lovelace' AND id = {ada_id}")).await,
        1
    );

    // Organisations: Ada's, which Grace joins with Ada's approval; Grace's own.
    let (ada_org, _) = create_organisation(&ada, "Analytical Council").await;
    let (grace_org, _) = create_organisation(&grace, "Harvard Borough").await;
    grace
        .data(
            "mutation($id: ID!) { requestToJoinOrganisation(input: { organisationId: $id }) { userErrors { code } } }",
            json!({ "id": ada_org }),
        )
        .await;
    ada.data(
        "mutation($input: DecideMembershipRequestInput!) { decideMembershipRequest(input: $input) { userErrors { code } } }",
        json!({ "input": { "organisationId": ada_org, "memberId": grace.viewer_id().await.unwrap(), "approve": true } }),
    )
    .await;

    // Case studies: Ada's published one (edited once: a revision), her draft (which
    // invites Grace), and Grace's published one, which mentions Ada.
    let published = create_case_study(&ada, case_study("Engines for bins", &[&topic])).await;
    ada.data(PUBLISH, json!({ "id": published["id"] })).await;
    let mut edit = case_study("Engines for bin rounds", &[&topic]);
    edit["id"] = published["id"].clone();
    edit["version"] = published["version"].clone();
    let updated = ada.data(UPDATE, json!({ "input": edit })).await;
    assert_eq!(updated["updateCaseStudy"]["userErrors"], json!([]), "{updated}");
    let mut draft_input = case_study("Half-finished notes", &[&topic]);
    draft_input["coAuthorHandles"] = json!(["grace-hopper"]);
    let draft = create_case_study(&ada, draft_input).await;
    let mut grace_input = case_study("Compilers for councils", &[&topic]);
    grace_input["body"] = json!("Built with help from @ada-lovelace, who found the bug.");
    grace_input["coAuthorHandles"] = json!(["ada-lovelace"]);
    let graces = create_case_study(&grace, grace_input).await;
    grace.data(PUBLISH, json!({ "id": graces["id"] })).await;

    // Marks, bookmarks, interest.
    for mutation in ["markCaseStudyUseful", "bookmarkCaseStudy"] {
        let data = ada
            .data(
                &format!(
                    "mutation($id: ID!) {{ {mutation}(input: {{ id: $id, on: true }}) {{ userErrors {{ code }} }} }}"
                ),
                json!({ "id": graces["id"] }),
            )
            .await;
        assert_eq!(data[mutation]["userErrors"], json!([]), "{data}");
    }
    ada.data(
        "mutation($id: ID!) { registerInterest(input: { id: $id, note: \"Same in Analytical Council\" }) { userErrors { code } } }",
        json!({ "id": graces["id"] }),
    )
    .await;

    // Comments: Ada's with a reply (stays), Ada's without (goes), Grace's mentioning Ada.
    let kept = comment(&ada, graces["id"].as_str().unwrap(), None, "We did this too, ask me.").await;
    comment(&grace, graces["id"].as_str().unwrap(), Some(&kept), "Thanks, I will!").await;
    let gone = comment(&ada, graces["id"].as_str().unwrap(), None, "One more thought.").await;
    let mention =
        comment(&grace, published["id"].as_str().unwrap(), None, "Great work @ada-lovelace, thank you.").await;

    // Artefacts: one Grace's organisation reuses (stays), one nobody uses (goes).
    let reused = share(&ada, artefact("Bin round planner", &[&topic])).await;
    let unused = share(&ada, artefact("Old spreadsheet", &[&topic])).await;
    let recorded = grace
        .data(
            "mutation($input: RecordReuseInput!) { recordReuse(input: $input) { userErrors { field code } } }",
            json!({ "input": { "artefactId": reused["id"], "organisationId": grace_org, "note": "Used it in Harvard" } }),
        )
        .await;
    assert_eq!(recorded["recordReuse"]["userErrors"], json!([]), "{recorded}");

    // Follows, and a member following Ada.
    for (client, target) in
        [(&ada, topic.clone()), (&ada, grace.viewer_id().await.unwrap()), (&bob, ada_global.clone())]
    {
        let data = client
            .data(
                "mutation($input: FollowInput!) { follow(input: $input) { userErrors { field code } } }",
                json!({ "input": { "targetId": target, "level": "WATCHING" } }),
            )
            .await;
        assert_eq!(data["follow"]["userErrors"], json!([]), "{data}");
    }
    ada.data(
        "mutation($input: UpdateNotificationSettingsInput!) { updateNotificationSettings(input: $input) { userErrors { field code } } }",
        json!({ "input": { "mailChoices": [{ "kind": "MENTIONED", "choice": "DIGEST" }], "disabledKinds": ["NEW_MEETUP"] } }),
    )
    .await;

    // A meetup of Grace's with one seat: Ada has it, Bob waits.
    let group = grace.data(GROUP, json!({ "input": { "name": "TeaCamp Boston", "region": "online" } })).await;
    let group_id = group["createMeetupGroup"]["group"]["id"].as_str().unwrap().to_string();
    ada.data(
        "mutation($id: ID!) { joinMeetupGroup(input: { groupId: $id }) { group { memberCount } } }",
        json!({ "id": group_id }),
    )
    .await;
    let event = grace
        .data(
            SCHEDULE,
            json!({ "input": {
                "groupId": group_id, "title": "TeaCamp", "description": "Tea with @ada-lovelace.", "timeZone": "Europe/London",
                "start": "2030-01-10T18:00", "end": "2030-01-10T20:00", "venueName": "", "venueAddress": "",
                "onlineUrl": "https://meet.example.org/tea", "capacity": 1, "going": false,
            } }),
        )
        .await;
    assert_eq!(event["scheduleMeetup"]["userErrors"], json!([]), "{event}");
    let event_id = event["scheduleMeetup"]["event"]["id"].as_str().unwrap().to_string();
    assert_eq!(ada.data(RSVP, json!({ "id": event_id })).await["rsvp"]["rsvp"]["status"], "GOING");
    assert_eq!(bob.data(RSVP, json!({ "id": event_id })).await["rsvp"]["rsvp"]["status"], "WAITLISTED");

    // Credentials and rows only SQL makes here: an identity, a flag, a mail link.
    ada.data("mutation { createAccessToken(input: { name: \"Ada's script\" }) { token } }", json!({})).await;
    let now = kettle::db::now_millis();
    app.execute_sql(&format!(
        "INSERT INTO member_identities (provider, subject, member_id, email, created_at, last_used_at) \
         VALUES ('github', 'gh-subject-ada-7781', {ada_id}, 'ada.lovelace@github.example', {now}, {now})"
    ))
    .await;
    app.execute_sql(&format!(
        "INSERT INTO reviews (target_type, target_id, weight, flag_count, created_at) VALUES ('comment', {}, 100, 1, {now})",
        number("Comment", &json!(mention))
    ))
    .await;
    app.execute_sql(&format!(
        "INSERT INTO flags (review_id, target_type, target_id, flagger_id, reason, note, weight, created_at) \
         SELECT id, 'comment', target_id, {ada_id}, 'other', 'flagged by Ada Lovelace', 100, {now} FROM reviews"
    ))
    .await;

    // Mail to Grace that names Ada, as notification mail does once its delay passes.
    app.execute_sql(&format!(
        "INSERT INTO mail_queue (idempotency_key, member_id, to_address, to_name, template, subject, text_body, \
         html_body, message_id, status, next_attempt_at, created_at, sent_at) VALUES ('notification:test', {}, \
         'grace@example.org', 'Grace Hopper', 'notification', 'Ada Lovelace commented on your case study', \
         'Ada Lovelace commented. Her profile: /members/ada-lovelace', '<p>Ada Lovelace commented.</p>', \
         'm-test@example.org', 'sent', 0, {now}, {now})",
        id_of(&app, "grace@example.org").await
    ))
    .await;

    // Notifications both ways.
    kettle::notifications::dispatch::dispatch_pending(&app.state().db).await.unwrap();
    assert!(app.count(&format!("SELECT COUNT(*) FROM notifications WHERE member_id = {ada_id}")).await > 0);
    assert!(app.count(&format!("SELECT COUNT(*) FROM notifications WHERE actor_id = {ada_id}")).await > 0);
    assert!(
        app.count("SELECT COUNT(*) FROM notifications WHERE summary LIKE '%Ada Lovelace%'").await > 0,
        "others were told by name"
    );

    // She changed her handle after Grace mentioned her: the old one is still hers.
    let changed = ada
        .data(
            "mutation { changeHandle(input: { handle: \"countess-of-lovelace\" }) { userErrors { code } } }",
            json!({}),
        )
        .await;
    assert_eq!(changed["changeHandle"]["userErrors"], json!([]), "{changed}");

    // ---- Export: every row that refers to Ada is in the section of its reference.
    let url = export_ready(&ada).await;
    let response = download(&app, &url, Some(ada.token())).await;
    assert_eq!(response.status(), StatusCode::OK);
    let document: Value = response.json().await.unwrap();
    let sections = &document["sections"];
    let mut references = member_reference_columns(&app).await;
    references.push(("members".to_string(), "id".to_string()));
    assert!(references.len() > 30, "the catalogue lists the member references: {references:?}");
    let mut non_empty = Vec::new();
    for (table, column) in &references {
        let rows = app.count(&format!("SELECT COUNT(*) FROM \"{table}\" WHERE \"{column}\" = {ada_id}")).await;
        let key = format!("{table}.{column}");
        let section = sections[&key]
            .as_array()
            .unwrap_or_else(|| panic!("the export has no section for {key}, which refers to members"));
        assert_eq!(section.len() as i64, rows, "{key}: the export has {} rows, the database {rows}", section.len());
        if rows > 0 {
            non_empty.push(key);
        }
    }
    for key in [
        "members.id",
        "member_identities.member_id",
        "sessions.member_id",
        "access_tokens.member_id",
        "organisation_members.member_id",
        "organisation_members.decided_by",
        "case_studies.author_id",
        "case_study_revisions.edited_by",
        "member_handle_history.member_id",
        "case_study_marks.member_id",
        "case_study_interests.member_id",
        "artefacts.created_by",
        "comments.author_id",
        "follows.member_id",
        "notifications.member_id",
        "notification_mail_choices.member_id",
        "meetup_rsvps.member_id",
        "meetup_group_members.member_id",
        "flags.flagger_id",
        "data_exports.member_id",
        "case_study_coauthor_invitations.invitee_id",
    ] {
        assert!(non_empty.iter().any(|k| k == key), "the scenario made rows for {key}: {non_empty:?}");
    }
    let drafts = sections["case_studies.author_id"].as_array().unwrap();
    assert!(drafts.iter().any(|c| c["status"] == "draft" && c["body_source"].as_str().unwrap().contains("*tested*")));
    assert_eq!(sections["member_identities.member_id"][0]["subject"], "gh-subject-ada-7781");
    let text = document.to_string();
    assert!(!text.contains("token_hash") && !text.contains("$argon2"), "no secrets in the export");

    // ---- Erase.
    let needles: Vec<String> = vec![
        "ada.lovelace@example.org".into(),
        "ada-lovelace".into(),
        "countess-of-lovelace".into(),
        "Ada Lovelace".into(),
        "gh-subject-ada-7781".into(),
        "ada.lovelace@github.example".into(),
        ada_global.clone(),
    ];
    // Before: the scan sees her all over the database, others' text included.
    let before = scan(&app, &needles).await;
    for place in [
        "members.email",
        "member_identities.subject",
        "notifications.summary",
        "comments.body_source",
        "case_studies.body_source",
        "mail_queue.subject",
    ] {
        assert!(before.iter().any(|f| f.starts_with(place)), "the scan finds her in {place}: {before:?}");
    }
    let deleted = ada.data(DELETE, json!({ "input": { "password": PASSWORD } })).await;
    assert_eq!(deleted["deleteAccount"], json!({ "erased": true, "userErrors": [] }));
    kettle::notifications::dispatch::dispatch_pending(&app.state().db).await.unwrap();

    let found = scan(&app, &needles).await;
    assert!(found.is_empty(), "personal data left after erasure:\n{}", found.join("\n"));
    // The scan can find things: Grace is still there.
    let control = scan(&app, &["grace@example.org".to_string()]).await;
    assert!(!control.is_empty());

    assert_eq!(
        app.count(
            "SELECT COUNT(*) FROM mail_queue WHERE idempotency_key = 'notification:test' \
             AND subject = 'a former member commented on your case study'"
        )
        .await,
        1,
        "Grace keeps her mail, without Ada's name"
    );

    // Bob got Ada's seat.
    assert_eq!(
        app.count(&format!("SELECT COUNT(*) FROM meetup_rsvps WHERE member_id = {bob_id} AND status = 'going'")).await,
        1
    );
    assert_eq!(app.count("SELECT COUNT(*) FROM outbox_events WHERE kind = 'meetup.rsvp_promoted'").await, 1);

    // What others rely on still reads, attributed to a former member.
    let read = bob
        .data(
            "query($id: ID!) { node(id: $id) { ... on CaseStudy { title status authors { displayName } } } }",
            json!({ "id": published["id"] }),
        )
        .await;
    assert_eq!(
        read["node"],
        json!({ "title": "Engines for bin rounds", "status": "PUBLISHED", "authors": [{ "displayName": "a former member" }] })
    );
    let comment_read = bob
        .data("query($id: ID!) { node(id: $id) { ... on Comment { body bodyHtml } } }", json!({ "id": mention }))
        .await;
    assert_eq!(comment_read["node"]["body"], "Great work a former member, thank you.");
    assert!(comment_read["node"]["bodyHtml"].as_str().unwrap().contains("Great work a former member"));
    let graces_read = bob
        .data("query($id: ID!) { node(id: $id) { ... on CaseStudy { bodyHtml } } }", json!({ "id": graces["id"] }))
        .await;
    assert!(graces_read["node"]["bodyHtml"].as_str().unwrap().contains("help from a former member"), "{graces_read}");
    let kept_read = bob.data("query($id: ID!) { node(id: $id) { id } }", json!({ "id": kept })).await;
    assert!(kept_read["node"]["id"].is_string(), "a comment with replies stays");
    let gone_read = bob.data("query($id: ID!) { node(id: $id) { id } }", json!({ "id": gone })).await;
    assert!(gone_read["node"].is_null(), "a comment without replies goes");
    assert!(bob.data("query($id: ID!) { node(id: $id) { id } }", json!({ "id": draft["id"] })).await["node"].is_null());
    assert_eq!(
        app.count(&format!("SELECT COUNT(*) FROM case_studies WHERE id = {}", number("CaseStudy", &draft["id"]))).await,
        0
    );
    assert_eq!(
        app.count(&format!("SELECT COUNT(*) FROM artefacts WHERE id = {}", number("Artefact", &reused["id"]))).await,
        1
    );
    assert_eq!(
        app.count(&format!("SELECT COUNT(*) FROM artefacts WHERE id = {}", number("Artefact", &unused["id"]))).await,
        0
    );
    // The work is still found by search, from its refreshed index row.
    let search = bob.data("query { search(query: \"compilers councils\") { __typename } }", json!({})).await;
    assert!(!search["search"].as_array().unwrap().is_empty(), "{search}");
}

// ---------------------------------------------------------------------------------------
// Retention

async fn privacy_retention_prunes_each_kind_and_keeps_newer_rows(app: TestApp) {
    app.member("ada@example.org", "Ada").await;
    let ada = id_of(&app, "ada@example.org").await;
    let now = kettle::db::now_millis();
    let day = 24 * 60 * 60 * 1000_i64;
    let minute = 60 * 1000_i64;
    let inserts = [
        format!("INSERT INTO sessions (member_id, token_hash, created_at, expires_at) VALUES ({ada}, 'old-session', {}, {})", now - 40 * day, now - minute),
        format!("INSERT INTO account_tokens (member_id, purpose, token_hash, created_at, expires_at, used_at) VALUES ({ada}, 'verify_email', 'used-long-ago', {}, {}, {})", now - 20 * day, now + day, now - 8 * day),
        format!("INSERT INTO account_tokens (member_id, purpose, token_hash, created_at, expires_at, used_at) VALUES ({ada}, 'verify_email', 'used-recently', {}, {}, {})", now - 2 * day, now + day, now - day),
        format!("INSERT INTO account_tokens (member_id, purpose, token_hash, created_at, expires_at) VALUES ({ada}, 'reset_password', 'expired-long-ago', {}, {})", now - 20 * day, now - 8 * day),
        format!("INSERT INTO account_tokens (member_id, purpose, token_hash, created_at, expires_at) VALUES ({ada}, 'reset_password', 'expired-recently', {}, {})", now - 3 * day, now - day),
        format!("INSERT INTO oauth_states (state_hash, provider, pkce_verifier, browser_hash, return_to, created_at, expires_at) VALUES ('stale', 'github', 'v', 'b', '/', {}, {})", now - 2 * 60 * minute, now + minute),
        format!("INSERT INTO oauth_states (state_hash, provider, pkce_verifier, browser_hash, return_to, created_at, expires_at) VALUES ('fresh', 'github', 'v', 'b', '/', {}, {})", now - minute, now + 9 * minute),
        format!("INSERT INTO data_exports (member_id, status, token_hash, content, created_at, expires_at) VALUES ({ada}, 'ready', 'expired-export', '{{}}', {}, {})", now - 8 * day, now - minute),
        format!("INSERT INTO data_exports (member_id, status, token_hash, content, created_at, expires_at) VALUES ({ada}, 'ready', 'live-export', '{{}}', {}, {})", now - day, now + 6 * day),
        format!("INSERT INTO notifications (member_id, event_id, kind, channel, subject_type, subject_id, subject_title, group_key, summary, path, created_at, read_at) VALUES ({ada}, 1, 'mentioned', 'inbox', 'CaseStudy', 1, 't', 'k', 'old read', '/', {}, {})", now - 100 * day, now - 91 * day),
        format!("INSERT INTO notifications (member_id, event_id, kind, channel, subject_type, subject_id, subject_title, group_key, summary, path, created_at, read_at) VALUES ({ada}, 2, 'mentioned', 'inbox', 'CaseStudy', 1, 't', 'k', 'recent read', '/', {}, {})", now - 10 * day, now - day),
        format!("INSERT INTO notifications (member_id, event_id, kind, channel, subject_type, subject_id, subject_title, group_key, summary, path, created_at) VALUES ({ada}, 3, 'mentioned', 'inbox', 'CaseStudy', 1, 't', 'k', 'old unread', '/', {})", now - 100 * day),
        format!("INSERT INTO outbox_events (kind, subject_type, subject_id, payload, created_at, dispatched_at) VALUES ('x.old', 'CaseStudy', 1, '{{}}', {}, {})", now - 40 * day, now - 31 * day),
        format!("INSERT INTO outbox_events (kind, subject_type, subject_id, payload, created_at, dispatched_at) VALUES ('x.new', 'CaseStudy', 1, '{{}}', {}, {})", now - 2 * day, now - day),
        format!("INSERT INTO mail_queue (idempotency_key, member_id, to_address, to_name, template, subject, text_body, html_body, message_id, status, next_attempt_at, created_at, sent_at) VALUES ('old', {ada}, 'a@example.org', 'A', 't', 's', 't', 'h', 'm1', 'sent', 0, {}, {})", now - 31 * day, now - 31 * day),
        format!("INSERT INTO mail_queue (idempotency_key, member_id, to_address, to_name, template, subject, text_body, html_body, message_id, status, next_attempt_at, created_at, sent_at) VALUES ('new', {ada}, 'a@example.org', 'A', 't', 's', 't', 'h', 'm2', 'sent', 0, {}, {})", now - day, now - day),
    ];
    for sql in &inserts {
        app.execute_sql(sql).await;
    }
    let pruned = kettle::privacy::retention::run(&app.state().db, now).await.unwrap();
    assert_eq!(pruned.sessions, 1);
    assert_eq!(pruned.account_tokens, 2);
    assert_eq!(pruned.oauth_states, 1);
    assert_eq!(pruned.data_exports, 1);
    assert_eq!(pruned.mail, 1);

    let left = |sql: &'static str| {
        let app = app.clone();
        async move { app.count(sql).await }
    };
    assert_eq!(left("SELECT COUNT(*) FROM sessions WHERE token_hash = 'old-session'").await, 0);
    assert_eq!(left("SELECT COUNT(*) FROM sessions").await, 1, "the live session from signing in stays");
    assert_eq!(
        left("SELECT COUNT(*) FROM account_tokens WHERE token_hash IN ('used-recently', 'expired-recently')").await,
        2
    );
    assert_eq!(
        left("SELECT COUNT(*) FROM account_tokens WHERE token_hash IN ('used-long-ago', 'expired-long-ago')").await,
        0
    );
    assert_eq!(left("SELECT COUNT(*) FROM oauth_states WHERE state_hash = 'fresh'").await, 1);
    assert_eq!(left("SELECT COUNT(*) FROM oauth_states").await, 1);
    assert_eq!(left("SELECT COUNT(*) FROM data_exports WHERE token_hash = 'live-export'").await, 1);
    assert_eq!(left("SELECT COUNT(*) FROM data_exports").await, 1);
    assert_eq!(left("SELECT COUNT(*) FROM notifications WHERE summary = 'old read'").await, 0);
    assert_eq!(left("SELECT COUNT(*) FROM notifications WHERE summary IN ('recent read', 'old unread')").await, 2);
    assert_eq!(left("SELECT COUNT(*) FROM outbox_events WHERE kind = 'x.old'").await, 0);
    assert_eq!(left("SELECT COUNT(*) FROM outbox_events WHERE kind = 'x.new'").await, 1);
    assert_eq!(left("SELECT COUNT(*) FROM mail_queue WHERE idempotency_key = 'old'").await, 0);
    assert_eq!(left("SELECT COUNT(*) FROM mail_queue WHERE idempotency_key = 'new'").await, 1);
    // A second run finds nothing more.
    assert_eq!(kettle::privacy::retention::run(&app.state().db, now).await.unwrap().total(), 0);
}

// ---------------------------------------------------------------------------------------
// The pages

async fn privacy_pages_explain_and_let_members_export_and_delete(app: TestApp) {
    let mut visitor = Browser::new(&app);
    let home = visitor.get("/").await;
    assert!(home.body.contains("href=\"/privacy\""), "the footer links the privacy page");
    let page = visitor.get("/privacy").await;
    assert_eq!(page.status, StatusCode::OK);
    for expected in
        ["kettle_session", "kettle_csrf", "90 days", "30 days", "7 days", "/settings/data", "/settings/delete"]
    {
        assert!(page.body.contains(expected), "the privacy page mentions {expected}");
    }
    // Settings pages need a member.
    assert_eq!(visitor.get("/settings/data").await.status, StatusCode::SEE_OTHER);

    let mut ada = Browser::new(&app);
    ada.register("ada@example.org", "Ada").await;
    let settings = ada.get("/settings").await;
    assert!(settings.body.contains("href=\"/settings/data\"") && settings.body.contains("href=\"/settings/delete\""));
    let data = ada.get("/settings/data").await;
    assert_eq!(data.status, StatusCode::OK);
    let asked = ada.post("/settings/data", &[]).await;
    assert_eq!(asked.status, StatusCode::SEE_OTHER, "{}", asked.body);
    let mut link = None;
    let mut last = String::new();
    for _ in 0..200 {
        let listed = ada.get("/settings/data").await;
        // minijinja escapes `/` in attributes as `&#x2f;`, which every browser decodes.
        last = listed.body.replace("&#x2f;", "/");
        if let Some(start) = last.find("/settings/data/export/") {
            let rest = &last[start..];
            link = Some(rest[..rest.find('"').unwrap()].to_string());
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let link = link.unwrap_or_else(|| panic!("the page links the export once ready: {last}"));
    let response = ada.http.get(app.url(&link)).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.headers()["content-disposition"].to_str().unwrap().starts_with("attachment"));
    let document: Value = response.json().await.unwrap();
    assert_eq!(document["sections"]["members.id"][0]["email"], "ada@example.org");

    let form = ada.get("/settings/delete").await;
    assert_eq!(form.status, StatusCode::OK);
    assert!(form.body.contains("a former member"));
    let wrong = ada.post("/settings/delete", &[("password", "not the password at all")]).await;
    assert_eq!(wrong.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(wrong.body.contains("error-summary") || wrong.body.contains("There is a problem"), "{}", wrong.body);
    assert_eq!(app.count("SELECT COUNT(*) FROM members WHERE erased_at IS NOT NULL").await, 0);
    let done = ada.post("/settings/delete", &[("password", PASSWORD)]).await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.body);
    assert_eq!(app.count("SELECT COUNT(*) FROM members WHERE erased_at IS NOT NULL").await, 1);
    assert_eq!(ada.get("/settings").await.status, StatusCode::SEE_OTHER, "signed out");
}
