//! Notifications through the API: follows at levels, who is told of what (every kind,
//! each with its negatives: the actor, a switched-off kind, a muted follow, drafts and
//! private data, a member who may no longer see the subject), the inbox with its groups,
//! reading, settings, and a dispatcher that never tells anyone twice.
//!
//! The dispatcher runs in the server, woken when events commit; [`dispatched`] waits until
//! the outbox is empty, and only then does a test look at what was (not) written. Every
//! notification a test sees, in the database or through the API, is checked for the
//! meetups' online links ([`PRIVATE`]): nobody is ever told one.

use std::time::Duration;

use serde_json::{json, Value};
use sqlx::Row;

use crate::{
    artefacts::{artefact, number, share, unknown},
    case_studies::{admin, case_study, create_case_study, create_organisation, create_topic, PUBLISH, UPDATE},
    comments::post,
    scenarios,
    support::{error_code, user_errors, Client, Scenario, TestApp},
};

pub fn scenarios() -> Vec<(&'static str, Scenario)> {
    scenarios![
        notifications_follow_api_has_levels_and_refuses_bad_targets,
        notifications_settings_round_trip,
        notifications_mentions_reach_the_member_once_they_can_see_it,
        notifications_replies_and_comments_reach_authors_unless_muted_or_off,
        notifications_commenting_and_writing_watch_the_conversation,
        notifications_reuse_interest_and_invitations_reach_the_people_concerned,
        notifications_meetup_changes_reach_those_going_or_waiting,
        notifications_join_requests_reach_admins_and_decisions_the_asker,
        notifications_followers_hear_of_new_case_studies_and_artefacts,
        notifications_group_and_topic_followers_hear_of_new_meetups,
        notifications_digest_follows_wait_for_new_for_you,
        notifications_a_burst_of_comments_is_one_entry_and_buries_nothing,
        notifications_are_read_by_id_up_to_or_all_and_only_by_their_owner,
        notifications_nobody_is_told_what_they_may_no_longer_see,
        notifications_dispatching_twice_tells_nobody_twice,
    ]
}

/// What every meetup's online link in these tests contains. No notification may carry it.
const PRIVATE: &str = "private-room";
/// A meetup's online link, for those going only.
const ONLINE_URL: &str = "https://meet.example.org/private-room-4471";

const FOLLOW: &str = "mutation($input: FollowInput!) { follow(input: $input) { follow { level createdAt target { __typename id } } userErrors { field code message } } }";
const UNFOLLOW: &str =
    "mutation($id: ID!) { unfollow(input: { targetId: $id }) { targetId userErrors { field code message } } }";
const LEVEL: &str = "query($id: ID!) { node(id: $id) { \
    ... on Topic { viewerFollowLevel } ... on Organisation { viewerFollowLevel } \
    ... on MeetupGroup { viewerFollowLevel } ... on Member { viewerFollowLevel } \
    ... on CaseStudy { viewerFollowLevel } ... on Artefact { viewerFollowLevel } } }";
const FOLLOWS: &str = "query($first: Int, $after: String) { viewer { follows(first: $first, after: $after) { \
    edges { cursor node { level createdAt target { __typename id } } } pageInfo { hasNextPage endCursor } } } }";
const INBOX: &str = "query($first: Int, $after: String, $unread: Boolean) { viewer { unreadNotificationCount \
    notifications(first: $first, after: $after, unreadOnly: $unread) { \
    edges { cursor node { id kind createdAt readAt actor { handle } subject { __typename id } summary path groupSize } } \
    pageInfo { hasNextPage endCursor } } } }";
const NEW_FOR_YOU: &str = "{ viewer { followedSeenAt newForYou(first: 100) { edges { node { id kind \
    actor { handle } subject { __typename id } summary path groupSize } } } } }";
const MARK: &str = "mutation($input: MarkNotificationsReadInput!) { markNotificationsRead(input: $input) { unreadCount userErrors { field code message } } }";
const SETTINGS: &str = "mutation($input: UpdateNotificationSettingsInput!) { updateNotificationSettings(input: $input) { settings { disabledKinds autoWatch } userErrors { field code message } } }";
const DELETE_COMMENT: &str =
    "mutation($id: ID!) { deleteComment(input: { id: $id }) { deletedCommentId userErrors { field code } } }";
const JOIN_ORGANISATION: &str =
    "mutation($id: ID!) { requestToJoinOrganisation(input: { organisationId: $id }) { userErrors { field code } } }";
const DECIDE: &str = "mutation($input: DecideMembershipRequestInput!) { decideMembershipRequest(input: $input) { membership { status } userErrors { field code } } }";
const CREATE_GROUP: &str = "mutation($input: CreateMeetupGroupInput!) { createMeetupGroup(input: $input) { group { id } userErrors { field code } } }";
const JOIN_GROUP: &str =
    "mutation($id: ID!) { joinMeetupGroup(input: { groupId: $id }) { group { viewerRole } userErrors { field code } } }";
const SCHEDULE: &str = "mutation($input: ScheduleMeetupInput!) { scheduleMeetup(input: $input) { event { id onlineUrl } userErrors { field code message } } }";
const UPDATE_MEETUP: &str = "mutation($input: UpdateMeetupInput!) { updateMeetup(input: $input) { event { id sequence } userErrors { field code } } }";
const CANCEL_MEETUP: &str =
    "mutation($id: ID!) { cancelMeetup(input: { id: $id }) { event { status } userErrors { field code } } }";
const RSVP: &str = "mutation($id: ID!, $going: Boolean!) { rsvp(input: { eventId: $id, going: $going }) { rsvp { status waitlistPosition } userErrors { field code } } }";
const INTEREST: &str = "mutation($id: ID!, $note: String!) { registerInterest(input: { id: $id, note: $note }) { userErrors { field code } } }";
const RECORD_REUSE: &str =
    "mutation($input: RecordReuseInput!) { recordReuse(input: $input) { userErrors { field code } } }";
const RESPOND: &str = "mutation($id: ID!) { respondToCoAuthorInvitation(input: { caseStudyId: $id, accept: true }) { userErrors { field code } } }";

// ---------------------------------------------------------------------------------------
// Waiting for the dispatcher, and what it wrote.

/// Waits (at most 10 s) until the dispatcher has dispatched every event in the outbox.
pub(crate) async fn dispatched(app: &TestApp) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let waiting = app.count("SELECT COUNT(*) FROM outbox_events WHERE dispatched_at IS NULL").await;
        if waiting == 0 {
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "{waiting} events still undispatched after 10 s");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The notification rows the dispatcher writes from one point on, as
/// (recipient's handle, KIND, channel), sorted: so a test says exactly who was told what,
/// and that nobody else was, and nobody twice.
struct Written {
    after: i64,
}

type Told = (String, String, String);

impl Written {
    async fn from_now(app: &TestApp) -> Written {
        dispatched(app).await;
        Written { after: app.count("SELECT COALESCE(MAX(id), 0) FROM notifications").await }
    }

    /// Waits for the dispatcher, then returns what it wrote since the last look.
    async fn since(&mut self, app: &TestApp) -> Vec<Told> {
        dispatched(app).await;
        let rows = sqlx::query(
            "SELECT n.id, m.handle, UPPER(n.kind) AS kind, n.channel, n.summary, n.path FROM notifications n \
             JOIN members m ON m.id = n.member_id WHERE n.id > $1 ORDER BY n.id",
        )
        .bind(self.after)
        .fetch_all(&app.state().db.pool)
        .await
        .unwrap();
        let mut told = Vec::new();
        for row in rows {
            let (id, summary, path): (i64, String, String) = (row.get("id"), row.get("summary"), row.get("path"));
            assert!(!summary.contains(PRIVATE) && !path.contains(PRIVATE), "an online link in {summary:?} {path:?}");
            self.after = self.after.max(id);
            told.push((row.get("handle"), row.get("kind"), row.get("channel")));
        }
        told.sort();
        told
    }
}

fn told(list: &[(&str, &str, &str)]) -> Vec<Told> {
    let mut list: Vec<Told> = list.iter().map(|(h, k, c)| (h.to_string(), k.to_string(), c.to_string())).collect();
    list.sort();
    list
}

/// Told at once, in the inbox.
fn inboxed(list: &[(&str, &str)]) -> Vec<Told> {
    told(&list.iter().map(|(h, k)| (*h, *k, "inbox")).collect::<Vec<_>>())
}

// ---------------------------------------------------------------------------------------
// The inbox through the API.

/// Checks an entry carries no online link, and returns it.
fn clean(entry: &Value) -> &Value {
    for field in ["summary", "path"] {
        let text = entry[field].as_str().unwrap_or_else(|| panic!("no {field} in {entry}"));
        assert!(!text.contains(PRIVATE), "an online link in {entry}");
    }
    entry
}

/// The viewer's inbox entries, newest first (the first 100), and the unread count.
async fn inbox_of(client: &Client, unread_only: bool) -> (Vec<Value>, i64) {
    let data = client.data(INBOX, json!({ "first": 100, "unread": unread_only })).await;
    let viewer = &data["viewer"];
    let entries: Vec<Value> = viewer["notifications"]["edges"]
        .as_array()
        .unwrap_or_else(|| panic!("no notifications in {data}"))
        .iter()
        .map(|e| clean(&e["node"]).clone())
        .collect();
    (entries, viewer["unreadNotificationCount"].as_i64().unwrap())
}

async fn inbox(client: &Client) -> Vec<Value> {
    inbox_of(client, false).await.0
}

async fn unread_count(client: &Client) -> i64 {
    inbox_of(client, false).await.1
}

/// Marks everything the viewer has read.
async fn read_all(client: &Client) {
    let marked = client.data(MARK, json!({ "input": {} })).await;
    assert_eq!(marked["markNotificationsRead"], json!({ "unreadCount": 0, "userErrors": [] }));
}

/// The kinds of the viewer's inbox entries, newest first.
async fn kinds(client: &Client) -> Vec<String> {
    inbox(client).await.iter().map(|e| e["kind"].as_str().unwrap().to_string()).collect()
}

/// The viewer's newest inbox entry.
async fn newest(client: &Client) -> Value {
    inbox(client).await.into_iter().next().expect("a notification")
}

async fn new_for_you(client: &Client) -> Vec<Value> {
    let data = client.data(NEW_FOR_YOU, json!({})).await;
    data["viewer"]["newForYou"]["edges"].as_array().unwrap().iter().map(|e| clean(&e["node"]).clone()).collect()
}

/// What one notification should say.
struct Expect<'a> {
    kind: &'a str,
    actor: Option<&'a str>,
    /// The global id of what it is about; `None` when the viewer may not see it.
    subject: Option<&'a str>,
    path: &'a str,
    /// Words the summary must contain (a title, who did it), compared ignoring case.
    words: &'a [&'a str],
}

#[track_caller]
fn check(entry: &Value, expect: Expect) {
    assert_eq!(entry["kind"], expect.kind, "{entry}");
    assert_eq!(entry["actor"]["handle"].as_str(), expect.actor, "actor of {entry}");
    assert_eq!(entry["subject"]["id"].as_str(), expect.subject, "subject of {entry}");
    assert_eq!(entry["path"], expect.path, "path of {entry}");
    assert_eq!(entry["groupSize"], 1, "{entry}");
    assert_eq!(entry["readAt"], Value::Null, "{entry}");
    assert!(entry["id"].as_str().is_some_and(|id| id.len() > 1), "{entry}");
    let summary = entry["summary"].as_str().unwrap().to_lowercase();
    for word in expect.words {
        assert!(summary.contains(&word.to_lowercase()), "{word:?} is not in the summary of {entry}");
    }
    assert!(!summary.contains('<') && !summary.contains("&lt;"), "plain text: {entry}");
}

// ---------------------------------------------------------------------------------------
// Follows and settings.

async fn follow(client: &Client, target: &str, level: &str) -> Value {
    let data = client.data(FOLLOW, json!({ "input": { "targetId": target, "level": level } })).await;
    assert_eq!(data["follow"]["userErrors"], json!([]), "{data}");
    data["follow"].clone()
}

async fn level(client: &Client, target: &str) -> Value {
    let data = client.data(LEVEL, json!({ "id": target })).await;
    assert!(data["node"].is_object(), "{target} is not visible: {data}");
    data["node"]["viewerFollowLevel"].clone()
}

async fn settings(client: &Client, input: Value) -> Value {
    let data = client.data(SETTINGS, json!({ "input": input })).await;
    assert_eq!(data["updateNotificationSettings"]["userErrors"], json!([]), "{data}");
    data["updateNotificationSettings"]["settings"].clone()
}

async fn switch_off(client: &Client, kinds: &[&str]) {
    let saved = settings(client, json!({ "disabledKinds": kinds })).await;
    assert_eq!(saved["disabledKinds"], json!(kinds));
}

async fn auto_watch_off(client: &Client) {
    assert_eq!(settings(client, json!({ "autoWatch": false })).await["autoWatch"], false);
}

/// A follow refused: a user error or BAD_USER_INPUT (either is a clear no).
async fn refused_follow(client: &Client, target: &str, why: &str) {
    let body = client.gql(FOLLOW, json!({ "input": { "targetId": target, "level": "WATCHING" } })).await;
    if body.get("errors").is_some() {
        assert_eq!(error_code(&body), "BAD_USER_INPUT", "{why}: {body}");
    } else {
        assert!(!user_errors(&body["data"]["follow"]).is_empty(), "{why}: {body}");
        assert_eq!(body["data"]["follow"]["follow"], Value::Null, "{why}: {body}");
    }
}

// ---------------------------------------------------------------------------------------
// Making things to be told about.

async fn published(author: &Client, title: &str, topics: &[&str], organisation: Option<&str>) -> String {
    let mut input = case_study(title, topics);
    if let Some(organisation) = organisation {
        input["organisationId"] = json!(organisation);
    }
    let id = create_case_study(author, input).await["id"].as_str().unwrap().to_string();
    let data = author.data(PUBLISH, json!({ "id": id })).await;
    assert_eq!(data["publishCaseStudy"]["userErrors"], json!([]), "{data}");
    id
}

async fn shared(creator: &Client, title: &str, topics: &[&str], organisation: Option<&str>) -> String {
    let mut input = artefact(title, topics);
    if let Some(organisation) = organisation {
        input["organisationId"] = json!(organisation);
    }
    share(creator, input).await["id"].as_str().unwrap().to_string()
}

async fn id_of(client: &Client) -> String {
    client.viewer_id().await.expect("signed in")
}

async fn request_to_join(client: &Client, organisation: &str) {
    let data = client.data(JOIN_ORGANISATION, json!({ "id": organisation })).await;
    assert_eq!(data["requestToJoinOrganisation"]["userErrors"], json!([]), "{data}");
}

async fn decide(admin: &Client, organisation: &str, member: &Client, approve: bool) {
    let member_id = id_of(member).await;
    let input = json!({ "organisationId": organisation, "memberId": member_id, "approve": approve });
    let data = admin.data(DECIDE, json!({ "input": input })).await;
    assert_eq!(data["decideMembershipRequest"]["userErrors"], json!([]), "{data}");
}

async fn join_organisation(member: &Client, admin: &Client, organisation: &str) {
    request_to_join(member, organisation).await;
    decide(admin, organisation, member, true).await;
}

async fn meetup_group(organiser: &Client, name: &str) -> String {
    let data = organiser.data(CREATE_GROUP, json!({ "input": { "name": name, "region": "North West" } })).await;
    assert_eq!(data["createMeetupGroup"]["userErrors"], json!([]), "{data}");
    data["createMeetupGroup"]["group"]["id"].as_str().unwrap().to_string()
}

async fn join_group(member: &Client, group: &str) {
    let data = member.data(JOIN_GROUP, json!({ "id": group })).await;
    assert_eq!(data["joinMeetupGroup"]["userErrors"], json!([]), "{data}");
}

/// Wall-clock times in London `hours` from now, and two hours later.
fn london_in(hours: i64) -> (String, String) {
    let at = jiff::Timestamp::now().checked_add(jiff::SignedDuration::from_hours(hours)).unwrap();
    let local = at.to_zoned(jiff::tz::TimeZone::get("Europe/London").unwrap()).datetime();
    let end = local.checked_add(jiff::SignedDuration::from_hours(2)).unwrap();
    (local.strftime("%Y-%m-%dT%H:%M").to_string(), end.strftime("%Y-%m-%dT%H:%M").to_string())
}

/// The organiser is not going: these scenarios count who else hears what.
fn meetup_input(group: &str, title: &str, (start, end): &(String, String), capacity: Option<i64>) -> Value {
    json!({
        "groupId": group,
        "going": false,
        "title": title,
        "description": "Tea, cake and *talking shop*.",
        "timeZone": "Europe/London",
        "start": start,
        "end": end,
        "venueName": "The Federation",
        "venueAddress": "Federation Street, Manchester",
        "onlineUrl": ONLINE_URL,
        "capacity": capacity,
    })
}

async fn schedule(organiser: &Client, input: Value) -> String {
    let data = organiser.data(SCHEDULE, json!({ "input": input })).await;
    assert_eq!(data["scheduleMeetup"]["userErrors"], json!([]), "{data}");
    assert_eq!(data["scheduleMeetup"]["event"]["onlineUrl"], ONLINE_URL, "the organiser sees the link");
    data["scheduleMeetup"]["event"]["id"].as_str().unwrap().to_string()
}

async fn rsvp(client: &Client, event: &str, going: bool) -> Value {
    let data = client.data(RSVP, json!({ "id": event, "going": going })).await;
    assert_eq!(data["rsvp"]["userErrors"], json!([]), "{data}");
    data["rsvp"]["rsvp"].clone()
}

async fn update_meetup(organiser: &Client, event: &str, mut input: Value) {
    input.as_object_mut().unwrap().remove("groupId");
    input.as_object_mut().unwrap().remove("going");
    input["id"] = json!(event);
    let data = organiser.data(UPDATE_MEETUP, json!({ "input": input })).await;
    assert_eq!(data["updateMeetup"]["userErrors"], json!([]), "{data}");
}

async fn register_interest(client: &Client, case_study: &str, note: &str) {
    let data = client.data(INTEREST, json!({ "id": case_study, "note": note })).await;
    assert_eq!(data["registerInterest"]["userErrors"], json!([]), "{data}");
}

async fn record_reuse(client: &Client, artefact: &str, organisation: &str, note: &str) {
    let input = json!({ "artefactId": artefact, "organisationId": organisation, "note": note });
    let data = client.data(RECORD_REUSE, json!({ "input": input })).await;
    assert_eq!(data["recordReuse"]["userErrors"], json!([]), "{data}");
}

/// A draft by `author` that names `handles` as co-authors; returns its id.
async fn draft_inviting(author: &Client, title: &str, topic: &str, handles: &[&str]) -> String {
    let mut input = case_study(title, &[topic]);
    input["coAuthorHandles"] = json!(handles);
    create_case_study(author, input).await["id"].as_str().unwrap().to_string()
}

async fn accept_invitation(client: &Client, case_study: &str) {
    let data = client.data(RESPOND, json!({ "id": case_study })).await;
    assert_eq!(data["respondToCoAuthorInvitation"]["userErrors"], json!([]), "{data}");
}

fn path_of(type_name: &str, id: &str) -> String {
    let n = number(type_name, &json!(id));
    match type_name {
        "CaseStudy" => format!("/case-studies/{n}"),
        "Artefact" => format!("/artefacts/{n}"),
        "MeetupEvent" => format!("/meetups/events/{n}"),
        other => panic!("no page for {other}"),
    }
}

fn comment_path(type_name: &str, subject: &str, comment: &str) -> String {
    format!("{}#comment-{}", path_of(type_name, subject), number("Comment", &json!(comment)))
}

// ---------------------------------------------------------------------------------------
// Holding the dispatcher off, to change what a member may see between an event and its
// dispatch.

/// Takes the dispatcher's lease for a holder that is not running, so no instance
/// dispatches until [`release_dispatch`].
async fn hold_dispatch(app: &TestApp) {
    dispatched(app).await;
    let far = kettle::db::now_millis() + 3_600_000;
    app.execute_sql(&format!(
        "UPDATE leases SET holder = 'notifications-test', fence = fence + 1, expires_at = {far} WHERE name = '{LEASE}'"
    ))
    .await;
    app.execute_sql(&format!(
        "INSERT INTO leases (name, holder, fence, expires_at) SELECT '{LEASE}', 'notifications-test', 1, {far} \
         WHERE NOT EXISTS (SELECT 1 FROM leases WHERE name = '{LEASE}')"
    ))
    .await;
}

/// Lets the lease lapse, so the server's dispatcher takes it over.
async fn release_dispatch(app: &TestApp) {
    app.execute_sql(&format!(
        "UPDATE leases SET expires_at = 0 WHERE name = '{LEASE}' AND holder = 'notifications-test'"
    ))
    .await;
}

/// The name of the dispatcher's lease.
const LEASE: &str = "dispatcher";

// =======================================================================================
// Scenarios.

async fn notifications_follow_api_has_levels_and_refuses_bad_targets(app: TestApp) {
    let curator = admin(&app, "curator@example.org", "Curator").await;
    let topic = create_topic(&curator, "Libraries").await;
    let ada = app.member("ada@example.org", "Ada").await;
    let grace = app.member("grace@example.org", "Grace").await;
    let (organisation, _) = create_organisation(&ada, "Barsetshire Council").await;
    let group = meetup_group(&ada, "TeaCamp North").await;
    let ada_id = id_of(&ada).await;
    let grace_id = id_of(&grace).await;
    let story = published(&ada, "Library cards", &[&topic], None).await;
    let thing = shared(&ada, "Card checker", &[&topic], None).await;
    let targets = [
        (topic.clone(), "Topic", "WATCHING"),
        (organisation.clone(), "Organisation", "DIGEST"),
        (group.clone(), "MeetupGroup", "MUTED"),
        (ada_id.clone(), "Member", "WATCHING"),
        (story.clone(), "CaseStudy", "DIGEST"),
        (thing.clone(), "Artefact", "MUTED"),
    ];

    // Not following anything yet; nobody signed out follows anything.
    for (id, _, _) in &targets {
        assert_eq!(level(&grace, id).await, Value::Null, "{id}");
        assert_eq!(level(&app.anonymous(), id).await, Value::Null, "{id}");
    }
    // One of each followable type, at each level.
    for (id, type_name, wanted) in &targets {
        let payload = follow(&grace, id, wanted).await;
        let made = &payload["follow"];
        assert_eq!(made["level"], *wanted, "{payload}");
        assert_eq!(made["target"], json!({ "__typename": type_name, "id": id }), "{payload}");
        assert!(made["createdAt"].is_string(), "{payload}");
        assert_eq!(level(&grace, id).await, json!(wanted), "{type_name}");
        assert_eq!(level(&app.anonymous(), id).await, Value::Null, "signed out, for {type_name}");
    }
    // Grace's follows are hers: Ada, who wrote the case study and the artefact and started
    // the group, watches those (automatically) and nothing else of these.
    assert_eq!(level(&ada, &story).await, "WATCHING");
    assert_eq!(level(&ada, &thing).await, "WATCHING");
    assert_eq!(level(&ada, &group).await, "WATCHING");
    assert_eq!(level(&ada, &topic).await, Value::Null);
    assert_eq!(level(&ada, &organisation).await, Value::Null);

    // Following again changes the level, never adds a second follow.
    assert_eq!(follow(&grace, &topic, "MUTED").await["follow"]["level"], "MUTED");
    assert_eq!(follow(&grace, &topic, "WATCHING").await["follow"]["level"], "WATCHING");
    assert_eq!(level(&grace, &topic).await, "WATCHING");
    let grace_number = number("Member", &json!(grace_id));
    let count_follows = format!("SELECT COUNT(*) FROM follows WHERE member_id = {grace_number}");
    assert_eq!(app.count(&count_follows).await, 6);

    // The list pages, newest first, through every follow once.
    let first = grace.data(FOLLOWS, json!({ "first": 4 })).await;
    let page = &first["viewer"]["follows"];
    assert_eq!(page["edges"].as_array().unwrap().len(), 4, "{first}");
    assert_eq!(page["pageInfo"]["hasNextPage"], true);
    let rest = grace.data(FOLLOWS, json!({ "first": 4, "after": page["pageInfo"]["endCursor"] })).await;
    let rest_page = &rest["viewer"]["follows"];
    assert_eq!(rest_page["pageInfo"]["hasNextPage"], false, "{rest}");
    let mut listed: Vec<(String, String, String)> = page["edges"]
        .as_array()
        .unwrap()
        .iter()
        .chain(rest_page["edges"].as_array().unwrap())
        .map(|e| {
            let node = &e["node"];
            assert!(node["createdAt"].is_string(), "{node}");
            (
                node["target"]["id"].as_str().unwrap().to_string(),
                node["target"]["__typename"].as_str().unwrap().to_string(),
                node["level"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    // Newest first: the case study and artefact follows came last.
    assert_eq!(listed[0].1, "Artefact", "{listed:?}");
    assert_eq!(listed[1].1, "CaseStudy", "{listed:?}");
    listed.sort();
    let mut expected: Vec<(String, String, String)> =
        targets.iter().map(|(id, t, l)| (id.clone(), t.to_string(), l.to_string())).collect();
    expected.sort();
    assert_eq!(listed, expected);
    assert_eq!(error_code(&grace.gql(FOLLOWS, json!({ "first": 101 })).await), "BAD_USER_INPUT");
    assert_eq!(error_code(&grace.gql(FOLLOWS, json!({ "after": "not a cursor" })).await), "BAD_USER_INPUT");
    // Ada's list has only what she watches automatically.
    let adas = ada.data(FOLLOWS, json!({})).await;
    let mut ada_targets: Vec<&str> = adas["viewer"]["follows"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"]["target"]["id"].as_str().unwrap())
        .collect();
    ada_targets.sort();
    let mut authored = [thing.as_str(), story.as_str(), group.as_str()];
    authored.sort();
    assert_eq!(ada_targets, authored, "{adas}");

    // Unfollowing: gone from the level and the list.
    let gone = grace.data(UNFOLLOW, json!({ "id": organisation })).await;
    assert_eq!(gone["unfollow"], json!({ "targetId": organisation, "userErrors": [] }));
    assert_eq!(level(&grace, &organisation).await, Value::Null);
    assert_eq!(app.count(&count_follows).await, 5);
    let again = grace.gql(UNFOLLOW, json!({ "id": organisation })).await;
    assert_eq!(app.count(&count_follows).await, 5, "unfollowing twice: {again}");

    // Refused, and nothing written: what does not exist, what cannot be followed, a draft
    // Grace cannot see, and herself.
    let comment = post(&ada, &story, None, "A comment is not followed on its own.").await;
    let draft = create_case_study(&ada, case_study("Not yet", &[&topic])).await["id"].as_str().unwrap().to_string();
    let bad = [
        (unknown("Topic"), "an unknown topic"),
        (unknown("CaseStudy"), "an unknown case study"),
        (unknown("Member"), "an unknown member"),
        ("garbage".to_string(), "not an id"),
        (comment, "a comment"),
        (draft.clone(), "someone else's draft"),
        (grace_id.clone(), "herself"),
    ];
    for (target, why) in &bad {
        refused_follow(&grace, target, why).await;
    }
    assert_eq!(app.count(&count_follows).await, 5);
    let body = grace.gql(LEVEL, json!({ "id": draft })).await;
    assert_eq!(body["data"]["node"], Value::Null, "the draft stays hidden: {body}");
    assert_eq!(level(&grace, &grace_id).await, Value::Null, "nobody follows themself");

    // Signed out: neither following nor a list.
    let anonymous = app.anonymous();
    let body = anonymous.gql(FOLLOW, json!({ "input": { "targetId": topic, "level": "WATCHING" } })).await;
    assert_eq!(error_code(&body), "UNAUTHENTICATED");
    assert_eq!(error_code(&anonymous.gql(UNFOLLOW, json!({ "id": topic })).await), "UNAUTHENTICATED");
    assert_eq!(anonymous.data(FOLLOWS, json!({})).await["viewer"], Value::Null);
    // Another member's follows are not shown to anyone else.
    let body = ada.gql("{ member(handle: \"grace\") { follows { edges { node { level } } } } }", json!({})).await;
    let shown = &body["data"]["member"]["follows"];
    assert!(shown.is_null(), "Grace's follows shown to Ada: {body}");
}

async fn notifications_settings_round_trip(app: TestApp) {
    const READ: &str = "{ viewer { notificationSettings { disabledKinds autoWatch } } }";
    let ada = app.member("ada@example.org", "Ada").await;
    let grace = app.member("grace@example.org", "Grace").await;
    let fresh = ada.data(READ, json!({})).await;
    assert_eq!(fresh["viewer"]["notificationSettings"], json!({ "disabledKinds": [], "autoWatch": true }));

    let saved = settings(&ada, json!({ "disabledKinds": ["NEW_COMMENT", "MENTIONED", "NEW_COMMENT"] })).await;
    let mut kinds: Vec<&str> = saved["disabledKinds"].as_array().unwrap().iter().map(|k| k.as_str().unwrap()).collect();
    kinds.sort();
    assert_eq!(kinds, ["MENTIONED", "NEW_COMMENT"], "each kind once: {saved}");
    assert_eq!(saved["autoWatch"], true);
    // Giving only one setting leaves the other as it was.
    let saved = settings(&ada, json!({ "autoWatch": false })).await;
    assert_eq!(saved["autoWatch"], false);
    assert_eq!(saved["disabledKinds"].as_array().unwrap().len(), 2, "{saved}");
    let saved = settings(&ada, json!({ "disabledKinds": ["JOIN_REQUESTED"] })).await;
    assert_eq!(saved, json!({ "disabledKinds": ["JOIN_REQUESTED"], "autoWatch": false }));
    let read = ada.data(READ, json!({})).await;
    assert_eq!(read["viewer"]["notificationSettings"], saved);
    // Someone else's are untouched; an unknown kind is refused by the schema.
    assert_eq!(
        grace.data(READ, json!({})).await["viewer"]["notificationSettings"],
        json!({ "disabledKinds": [], "autoWatch": true })
    );
    let body = ada.gql(SETTINGS, json!({ "input": { "disabledKinds": ["EVERYTHING"] } })).await;
    assert!(body.get("errors").is_some(), "{body}");
    assert_eq!(ada.data(READ, json!({})).await["viewer"]["notificationSettings"], saved);
    let saved = settings(&ada, json!({ "disabledKinds": [], "autoWatch": true })).await;
    assert_eq!(saved, json!({ "disabledKinds": [], "autoWatch": true }));
    let body = app.anonymous().gql(SETTINGS, json!({ "input": { "autoWatch": false } })).await;
    assert_eq!(error_code(&body), "UNAUTHENTICATED");
}

async fn notifications_mentions_reach_the_member_once_they_can_see_it(app: TestApp) {
    let curator = admin(&app, "curator@example.org", "Curator").await;
    let topic = create_topic(&curator, "Libraries").await;
    let ada = app.member("ada@example.org", "Ada").await;
    let grace = app.member("grace@example.org", "Grace").await;
    let mary = app.member("mary@example.org", "Mary").await;
    let lin = app.member("lin@example.org", "Lin").await;
    switch_off(&lin, &["MENTIONED"]).await;
    let mut written = Written::from_now(&app).await;

    // A mention in a draft tells nobody, however often the draft is saved.
    let mut input = case_study("Library cards", &[&topic]);
    input["body"] = json!("Thanks to @grace and @lin for the research, and to me, @ada.");
    let story = create_case_study(&ada, input.clone()).await["id"].as_str().unwrap().to_string();
    input["id"] = json!(story);
    input["version"] = json!(1);
    input["body"] = json!("Thanks to @grace and @lin for the research, and to me, @ada. Also @mary.");
    let saved = ada.data(UPDATE, json!({ "input": input })).await;
    assert_eq!(saved["updateCaseStudy"]["userErrors"], json!([]), "{saved}");
    assert_eq!(written.since(&app).await, vec![], "a draft tells nobody");
    assert_eq!(inbox(&grace).await, Vec::<Value>::new());

    // Published: those mentioned are told, once each; not Lin (switched off), not Ada (her
    // own words).
    ada.data(PUBLISH, json!({ "id": story })).await;
    assert_eq!(written.since(&app).await, inboxed(&[("grace", "MENTIONED"), ("mary", "MENTIONED")]));
    let path = path_of("CaseStudy", &story);
    let expect = Expect {
        kind: "MENTIONED",
        actor: Some("ada"),
        subject: Some(&story),
        path: &path,
        words: &["Library cards", "Ada"],
    };
    check(&newest(&grace).await, expect);
    assert_eq!(unread_count(&grace).await, 1);
    assert_eq!(inbox(&lin).await, Vec::<Value>::new());
    assert_eq!(inbox(&ada).await, Vec::<Value>::new());

    // In a comment: the link goes to the comment. The author hears of the comment, not of
    // a mention.
    let comment = post(&mary, &story, None, "@grace, did you try the reading list?").await;
    assert_eq!(written.since(&app).await, inboxed(&[("ada", "COMMENTED_ON_YOURS"), ("grace", "MENTIONED")]));
    let path = comment_path("CaseStudy", &story, &comment);
    let expect =
        Expect { kind: "MENTIONED", actor: Some("mary"), subject: Some(&story), path: &path, words: &["Mary"] };
    check(&newest(&grace).await, expect);

    // In an artefact's description; and its creator mentioning herself tells nobody.
    let mut input = artefact("Reading list builder", &[&topic]);
    input["description"] = json!("Built with @grace; maintained by me, @lin.");
    let thing = share(&lin, input).await["id"].as_str().unwrap().to_string();
    assert_eq!(written.since(&app).await, inboxed(&[("grace", "MENTIONED")]));
    let path = path_of("Artefact", &thing);
    let expect = Expect {
        kind: "MENTIONED",
        actor: Some("lin"),
        subject: Some(&thing),
        path: &path,
        words: &["Reading list builder", "Lin"],
    };
    check(&newest(&grace).await, expect);

    // A muted conversation still lets a mention through.
    follow(&grace, &story, "MUTED").await;
    follow(&ada, &story, "MUTED").await;
    let again = post(&mary, &story, None, "Ping @grace and @ada once more.").await;
    assert_eq!(
        written.since(&app).await,
        inboxed(&[("ada", "MENTIONED"), ("grace", "MENTIONED")]),
        "mentions get through a mute; the comment itself does not reach Ada"
    );
    let path = comment_path("CaseStudy", &story, &again);
    check(
        &newest(&ada).await,
        Expect { kind: "MENTIONED", actor: Some("mary"), subject: Some(&story), path: &path, words: &["Mary"] },
    );

    // Mentioning yourself in a comment tells you nothing (Mary watches the conversation
    // since she commented, so she hears of the comment).
    post(&ada, &story, None, "Note to self, @ada: answer Mary.").await;
    assert_eq!(written.since(&app).await, inboxed(&[("mary", "NEW_COMMENT")]));
    // An edit that adds a mention does not announce it.
    let edit =
        "mutation($id: ID!, $body: String!) { editComment(input: { id: $id, body: $body }) { userErrors { code } } }";
    mary.data(edit, json!({ "id": comment, "body": "@grace and now @lin too" })).await;
    assert_eq!(written.since(&app).await, vec![], "an edit tells nobody");
}

async fn notifications_replies_and_comments_reach_authors_unless_muted_or_off(app: TestApp) {
    let curator = admin(&app, "curator@example.org", "Curator").await;
    let topic = create_topic(&curator, "Housing").await;
    let ada = app.member("ada@example.org", "Ada").await;
    let bob = app.member("bob@example.org", "Bob").await;
    let grace = app.member("grace@example.org", "Grace").await;
    let mary = app.member("mary@example.org", "Mary").await;
    let zed = app.member("zed@example.org", "Zed").await;
    let lin = app.member("lin@example.org", "Lin").await;
    // Bob and Zed watch nothing automatically, so all they hear is what is about them.
    auto_watch_off(&bob).await;
    auto_watch_off(&zed).await;
    let story = draft_inviting(&ada, "Repairs online", &topic, &["bob"]).await;
    accept_invitation(&bob, &story).await;
    ada.data(PUBLISH, json!({ "id": story })).await;
    let mut written = Written::from_now(&app).await;

    // A comment: both authors hear of it; not the one who wrote it.
    let first = post(&grace, &story, None, "How long did the discovery take?").await;
    assert_eq!(written.since(&app).await, inboxed(&[("ada", "COMMENTED_ON_YOURS"), ("bob", "COMMENTED_ON_YOURS")]));
    let path = comment_path("CaseStudy", &story, &first);
    let expect = Expect {
        kind: "COMMENTED_ON_YOURS",
        actor: Some("grace"),
        subject: Some(&story),
        path: &path,
        words: &["Repairs online", "Grace"],
    };
    check(&newest(&bob).await, expect);
    assert_eq!(inbox(&grace).await, Vec::<Value>::new());

    // A reply by an author: the comment's author hears of the reply (once, though she
    // also watches the conversation now); the other author of the comment; not the one
    // replying.
    let reply = post(&ada, &story, Some(&first), "About six weeks.").await;
    assert_eq!(written.since(&app).await, inboxed(&[("bob", "COMMENTED_ON_YOURS"), ("grace", "REPLIED")]));
    let path = comment_path("CaseStudy", &story, &reply);
    let expect = Expect {
        kind: "REPLIED",
        actor: Some("ada"),
        subject: Some(&story),
        path: &path,
        words: &["Repairs online", "Ada"],
    };
    check(&newest(&grace).await, expect);

    // Replying to your own comment tells you nothing.
    post(&grace, &story, Some(&first), "Thanks!").await;
    assert_eq!(written.since(&app).await, inboxed(&[("ada", "COMMENTED_ON_YOURS"), ("bob", "COMMENTED_ON_YOURS")]));
    // Nor does an author commenting on their own case study tell them.
    post(&bob, &story, None, "We have published the code too.").await;
    assert_eq!(written.since(&app).await, inboxed(&[("ada", "COMMENTED_ON_YOURS"), ("grace", "NEW_COMMENT")]));

    // Switched off: Zed, who watches nothing, is not told of a reply to him; Bob is not
    // told of comments on his case study.
    let zeds = post(&zed, &story, None, "Did tenants like it?").await;
    assert_eq!(
        written.since(&app).await,
        inboxed(&[("ada", "COMMENTED_ON_YOURS"), ("bob", "COMMENTED_ON_YOURS"), ("grace", "NEW_COMMENT")])
    );
    post(&mary, &story, Some(&zeds), "Ours did.").await;
    assert_eq!(
        written.since(&app).await,
        inboxed(&[
            ("ada", "COMMENTED_ON_YOURS"),
            ("bob", "COMMENTED_ON_YOURS"),
            ("grace", "NEW_COMMENT"),
            ("zed", "REPLIED")
        ])
    );
    switch_off(&zed, &["REPLIED"]).await;
    switch_off(&bob, &["COMMENTED_ON_YOURS"]).await;
    post(&mary, &story, Some(&zeds), "Mostly.").await;
    assert_eq!(written.since(&app).await, inboxed(&[("ada", "COMMENTED_ON_YOURS"), ("grace", "NEW_COMMENT")]));

    // Muting the conversation silences replies, comments on yours and new comments.
    follow(&ada, &story, "MUTED").await;
    follow(&grace, &story, "MUTED").await;
    follow(&mary, &story, "MUTED").await;
    post(&lin, &story, Some(&first), "Six weeks is quick.").await;
    post(&lin, &story, None, "A new thread.").await;
    assert_eq!(written.since(&app).await, vec![], "all muted or off");
    // ... until unmuted.
    grace.data(UNFOLLOW, json!({ "id": story })).await;
    post(&lin, &story, Some(&first), "Really quick.").await;
    assert_eq!(written.since(&app).await, inboxed(&[("grace", "REPLIED")]));

    // An artefact's creator hears of comments on it.
    let thing = shared(&lin, "Repairs booking", &[&topic], None).await;
    let on_thing = post(&zed, &thing, None, "Is there an API?").await;
    assert_eq!(written.since(&app).await, inboxed(&[("lin", "COMMENTED_ON_YOURS")]));
    let path = comment_path("Artefact", &thing, &on_thing);
    let expect = Expect {
        kind: "COMMENTED_ON_YOURS",
        actor: Some("zed"),
        subject: Some(&thing),
        path: &path,
        words: &["Repairs booking", "Zed"],
    };
    check(&newest(&lin).await, expect);
    switch_off(&zed, &[]).await;
    let reply = post(&lin, &thing, Some(&on_thing), "Yes, REST.").await;
    assert_eq!(written.since(&app).await, inboxed(&[("zed", "REPLIED")]));
    let path = comment_path("Artefact", &thing, &reply);
    check(
        &newest(&zed).await,
        Expect { kind: "REPLIED", actor: Some("lin"), subject: Some(&thing), path: &path, words: &["Repairs booking"] },
    );
}

async fn notifications_commenting_and_writing_watch_the_conversation(app: TestApp) {
    let curator = admin(&app, "curator@example.org", "Curator").await;
    let topic = create_topic(&curator, "Parking").await;
    let ada = app.member("ada@example.org", "Ada").await;
    let grace = app.member("grace@example.org", "Grace").await;
    let mary = app.member("mary@example.org", "Mary").await;
    let lin = app.member("lin@example.org", "Lin").await;
    let zed = app.member("zed@example.org", "Zed").await;
    auto_watch_off(&zed).await;

    // Writing watches what you wrote.
    let story = published(&ada, "Permit checker", &[&topic], None).await;
    assert_eq!(level(&ada, &story).await, "WATCHING");
    let mut written = Written::from_now(&app).await;

    // Commenting watches the conversation; the author hears of it as theirs, not as new.
    post(&grace, &story, None, "How do you check residency?").await;
    assert_eq!(level(&grace, &story).await, "WATCHING");
    assert_eq!(written.since(&app).await, inboxed(&[("ada", "COMMENTED_ON_YOURS")]));
    // Not with automatic watching off.
    post(&zed, &story, None, "Council tax records?").await;
    assert_eq!(level(&zed, &story).await, Value::Null);
    assert_eq!(written.since(&app).await, inboxed(&[("ada", "COMMENTED_ON_YOURS"), ("grace", "NEW_COMMENT")]));
    // A follow chosen before is kept, whatever its level.
    follow(&lin, &story, "DIGEST").await;
    post(&lin, &story, None, "We use the electoral roll.").await;
    assert_eq!(level(&lin, &story).await, "DIGEST");
    assert_eq!(written.since(&app).await, inboxed(&[("ada", "COMMENTED_ON_YOURS"), ("grace", "NEW_COMMENT")]));

    // A new comment: the author, those watching (at once) and those with it in their
    // digest; Zed, who commented without watching, hears nothing. (Grace reads what she
    // has first, so the new one stands alone rather than joining their group.)
    read_all(&grace).await;
    let comment = post(&mary, &story, None, "We ask for a bill.").await;
    assert_eq!(
        written.since(&app).await,
        told(&[
            ("ada", "COMMENTED_ON_YOURS", "inbox"),
            ("grace", "NEW_COMMENT", "inbox"),
            ("lin", "NEW_COMMENT", "digest"),
        ])
    );
    let path = comment_path("CaseStudy", &story, &comment);
    let expect = Expect {
        kind: "NEW_COMMENT",
        actor: Some("mary"),
        subject: Some(&story),
        path: &path,
        words: &["Permit checker", "Mary"],
    };
    check(&newest(&grace).await, expect);
    assert_eq!(inbox(&lin).await, Vec::<Value>::new(), "a digest follow never reaches the inbox");
    assert_eq!(unread_count(&lin).await, 0);
    let digest = new_for_you(&lin).await;
    assert_eq!(digest.len(), 1, "{digest:?}");
    assert_eq!((digest[0]["kind"].as_str(), digest[0]["subject"]["id"].as_str()), (Some("NEW_COMMENT"), Some(&*story)));
    assert_eq!(inbox(&zed).await, Vec::<Value>::new());

    // Muted: the conversation's new comments stop.
    follow(&grace, &story, "MUTED").await;
    post(&mary, &story, None, "Or a tenancy agreement.").await;
    assert_eq!(
        written.since(&app).await,
        told(&[("ada", "COMMENTED_ON_YOURS", "inbox"), ("lin", "NEW_COMMENT", "digest")])
    );
    // Commenting again does not undo a mute.
    post(&grace, &story, None, "Muted, but still talking.").await;
    assert_eq!(level(&grace, &story).await, "MUTED");
    written.since(&app).await;
    // Switched off: Mary, watching, hears of no new comment (Lin's digest still does).
    switch_off(&mary, &["NEW_COMMENT"]).await;
    post(&zed, &story, None, "Any numbers?").await;
    assert_eq!(
        written.since(&app).await,
        told(&[("ada", "COMMENTED_ON_YOURS", "inbox"), ("lin", "NEW_COMMENT", "digest")])
    );
    switch_off(&mary, &[]).await;

    // Sharing an artefact watches it; joining a group watches the group.
    let thing = shared(&lin, "Permit rules", &[&topic], None).await;
    assert_eq!(level(&lin, &thing).await, "WATCHING");
    let zeds = shared(&zed, "Permit letters", &[&topic], None).await;
    assert_eq!(level(&zed, &zeds).await, Value::Null);
    let group = meetup_group(&ada, "TeaCamp South").await;
    join_group(&grace, &group).await;
    assert_eq!(level(&grace, &group).await, "WATCHING");
    join_group(&zed, &group).await;
    assert_eq!(level(&zed, &group).await, Value::Null);
    // Commenting on an artefact watches it too, and its followers hear of comments.
    post(&mary, &thing, None, "Does it handle visitors?").await;
    assert_eq!(level(&mary, &thing).await, "WATCHING");
    assert_eq!(written.since(&app).await, inboxed(&[("lin", "COMMENTED_ON_YOURS")]));
    post(&grace, &thing, None, "And carers?").await;
    assert_eq!(written.since(&app).await, inboxed(&[("lin", "COMMENTED_ON_YOURS"), ("mary", "NEW_COMMENT")]));

    // Switched back on, automatic watching works again.
    assert_eq!(settings(&zed, json!({ "autoWatch": true })).await["autoWatch"], true);
    post(&zed, &thing, None, "Now I watch.").await;
    assert_eq!(level(&zed, &thing).await, "WATCHING");
}

async fn notifications_reuse_interest_and_invitations_reach_the_people_concerned(app: TestApp) {
    let curator = admin(&app, "curator@example.org", "Curator").await;
    let topic = create_topic(&curator, "Waste").await;
    let ada = app.member("ada@example.org", "Ada").await;
    let dora = app.member("dora@example.org", "Dora").await;
    let eve = app.member("eve@example.org", "Eve").await;
    let grace = app.member("grace@example.org", "Grace").await;
    let mary = app.member("mary@example.org", "Mary").await;
    let lin = app.member("lin@example.org", "Lin").await;
    let (barset, _) = create_organisation(&ada, "Barsetshire Council").await;
    join_organisation(&dora, &ada, &barset).await;
    request_to_join(&eve, &barset).await; // asked, never approved
    let (wessex, _) = create_organisation(&grace, "Wessex Council").await;
    let (mercia, _) = create_organisation(&grace, "Mercia Council").await;
    join_organisation(&ada, &grace, &wessex).await;
    let reminders = shared(&ada, "Reminder service", &[&topic], Some(&barset)).await;
    let letters = shared(&ada, "Letter templates", &[&topic], Some(&barset)).await;
    let lins = shared(&lin, "Collection map", &[&topic], None).await;
    let mut written = Written::from_now(&app).await;

    // Another organisation reuses Barsetshire's artefact: its approved members hear of it;
    // not Eve, who only asked to join; not Grace, who recorded it.
    record_reuse(&grace, &reminders, &wessex, "We run it for Wessex now.").await;
    assert_eq!(written.since(&app).await, inboxed(&[("ada", "ARTEFACT_REUSED"), ("dora", "ARTEFACT_REUSED")]));
    let path = path_of("Artefact", &reminders);
    let expect = Expect {
        kind: "ARTEFACT_REUSED",
        actor: Some("grace"),
        subject: Some(&reminders),
        path: &path,
        words: &["Reminder service", "Wessex Council"],
    };
    check(&newest(&dora).await, expect);
    assert_eq!(inbox(&eve).await, Vec::<Value>::new());
    // Editing the record is not news.
    record_reuse(&grace, &reminders, &wessex, "We run it for Wessex and Mercia's trial.").await;
    assert_eq!(written.since(&app).await, vec![]);
    // Ada, in Wessex too, records a reuse of her own organisation's artefact for Wessex:
    // she is not told of what she did.
    record_reuse(&ada, &letters, &wessex, "Wessex uses the letters.").await;
    assert_eq!(written.since(&app).await, inboxed(&[("dora", "ARTEFACT_REUSED")]));
    // An artefact with no organisation: its creator hears of it.
    record_reuse(&grace, &lins, &wessex, "Our map too.").await;
    assert_eq!(written.since(&app).await, inboxed(&[("lin", "ARTEFACT_REUSED")]));
    // Switched off.
    switch_off(&dora, &["ARTEFACT_REUSED"]).await;
    record_reuse(&grace, &reminders, &mercia, "Mercia now as well.").await;
    assert_eq!(written.since(&app).await, inboxed(&[("ada", "ARTEFACT_REUSED")]));

    // Co-author invitations: to the invitee, who cannot see the draft, so it is not their
    // subject, and the link is to their invitations.
    let draft = draft_inviting(&ada, "Food waste trial", &topic, &["mary"]).await;
    assert_eq!(written.since(&app).await, inboxed(&[("mary", "COAUTHOR_INVITED")]));
    let expect = Expect {
        kind: "COAUTHOR_INVITED",
        actor: Some("ada"),
        subject: None,
        path: "/invitations",
        words: &["Food waste trial", "Ada"],
    };
    check(&newest(&mary).await, expect);
    accept_invitation(&mary, &draft).await;
    ada.data(PUBLISH, json!({ "id": draft })).await;
    assert_eq!(written.since(&app).await, vec![], "nobody follows anything here");
    // Naming a co-author of a published case study: it is the invitee's to see.
    let mut edit = case_study("Food waste trial", &[&topic]);
    edit["id"] = json!(draft);
    edit["version"] = json!(1);
    edit["coAuthorHandles"] = json!(["mary", "lin"]);
    let saved = ada.data(UPDATE, json!({ "input": edit })).await;
    assert_eq!(saved["updateCaseStudy"]["userErrors"], json!([]), "{saved}");
    assert_eq!(written.since(&app).await, inboxed(&[("lin", "COAUTHOR_INVITED")]));
    let expect = Expect {
        kind: "COAUTHOR_INVITED",
        actor: Some("ada"),
        subject: Some(&draft),
        path: "/invitations",
        words: &["Food waste trial"],
    };
    check(&newest(&lin).await, expect);
    // Switched off.
    switch_off(&eve, &["COAUTHOR_INVITED"]).await;
    draft_inviting(&ada, "Garden waste", &topic, &["eve"]).await;
    assert_eq!(written.since(&app).await, vec![]);

    // Interest: both authors hear of it; not the one interested; once, however often they
    // change their note.
    register_interest(&grace, &draft, "Wessex is starting the same trial.").await;
    assert_eq!(written.since(&app).await, inboxed(&[("ada", "INTEREST_REGISTERED"), ("mary", "INTEREST_REGISTERED")]));
    let path = path_of("CaseStudy", &draft);
    let expect = Expect {
        kind: "INTEREST_REGISTERED",
        actor: Some("grace"),
        subject: Some(&draft),
        path: &path,
        words: &["Food waste trial", "Grace"],
    };
    check(&newest(&mary).await, expect);
    register_interest(&grace, &draft, "Wessex starts in January.").await;
    assert_eq!(written.since(&app).await, vec![]);
    switch_off(&mary, &["INTEREST_REGISTERED"]).await;
    register_interest(&dora, &draft, "Barsetshire too.").await;
    assert_eq!(written.since(&app).await, inboxed(&[("ada", "INTEREST_REGISTERED")]));
}

async fn notifications_meetup_changes_reach_those_going_or_waiting(app: TestApp) {
    let olu = app.member("olu@example.org", "Olu").await;
    let ada = app.member("ada@example.org", "Ada").await;
    let bea = app.member("bea@example.org", "Bea").await;
    let cal = app.member("cal@example.org", "Cal").await;
    let fay = app.member("fay@example.org", "Fay").await;
    let dan = app.member("dan@example.org", "Dan").await;
    let group = meetup_group(&olu, "TeaCamp North").await;
    join_group(&dan, &group).await;
    // Starts in about 12 hours, so its reminder is due; two seats.
    let times = london_in(12);
    let input = meetup_input(&group, "TeaCamp Manchester", &times, Some(2));
    let event = schedule(&olu, input.clone()).await;
    let path = path_of("MeetupEvent", &event);
    assert_eq!(rsvp(&ada, &event, true).await["status"], "GOING");
    assert_eq!(rsvp(&fay, &event, true).await["status"], "GOING");
    assert_eq!(rsvp(&bea, &event, true).await["status"], "WAITLISTED");
    assert_eq!(rsvp(&cal, &event, true).await["status"], "WAITLISTED");
    let mut written = Written::from_now(&app).await;

    // Fay drops out: Bea moves up, and only she is told.
    rsvp(&fay, &event, false).await;
    assert_eq!(written.since(&app).await, inboxed(&[("bea", "WAITLIST_PROMOTED")]));
    let expect = Expect {
        kind: "WAITLIST_PROMOTED",
        actor: None,
        subject: Some(&event),
        path: &path,
        words: &["TeaCamp Manchester"],
    };
    check(&newest(&bea).await, expect);

    // The reminder: those going, not those waiting, nor those who dropped out.
    let now = jiff::Timestamp::now().as_millisecond();
    assert_eq!(kettle::meetups::events::record_due_reminders(&app.state().db, now).await.unwrap(), 1);
    assert_eq!(written.since(&app).await, inboxed(&[("ada", "MEETUP_REMINDER"), ("bea", "MEETUP_REMINDER")]));
    let expect = Expect {
        kind: "MEETUP_REMINDER",
        actor: None,
        subject: Some(&event),
        path: &path,
        words: &["TeaCamp Manchester"],
    };
    check(&newest(&ada).await, expect);

    // A new title alone is not a change anyone is told of.
    let mut renamed = input.clone();
    renamed["title"] = json!("TeaCamp Manchester (with cake)");
    update_meetup(&olu, &event, renamed.clone()).await;
    assert_eq!(written.since(&app).await, vec![]);

    // Moved an hour later: those going and those waiting; not the organiser who moved it,
    // not Fay, not Dan (in the group, not going), not Ada (switched off).
    switch_off(&ada, &["MEETUP_CHANGED"]).await;
    let mut moved = renamed.clone();
    moved["start"] = json!(london_in(13).0);
    moved["end"] = json!(london_in(13).1);
    update_meetup(&olu, &event, moved.clone()).await;
    assert_eq!(written.since(&app).await, inboxed(&[("bea", "MEETUP_CHANGED"), ("cal", "MEETUP_CHANGED")]));
    let expect = Expect {
        kind: "MEETUP_CHANGED",
        actor: Some("olu"),
        subject: Some(&event),
        path: &path,
        words: &["TeaCamp Manchester (with cake)"],
    };
    check(&newest(&cal).await, expect);
    // A new online link is a change of place, told without the link: Cal, who is
    // waiting, must not learn it.
    let mut relinked = moved.clone();
    relinked["onlineUrl"] = json!("https://meet.example.org/private-room-9902");
    update_meetup(&olu, &event, relinked).await;
    assert_eq!(written.since(&app).await, inboxed(&[("bea", "MEETUP_CHANGED"), ("cal", "MEETUP_CHANGED")]));
    assert_eq!(
        cal.data("query($id: ID!) { node(id: $id) { ... on MeetupEvent { onlineUrl } } }", json!({ "id": event }))
            .await["node"]["onlineUrl"],
        Value::Null,
        "waiting is not going"
    );

    // The moves re-armed the reminder: those going, but not Bea, who switched reminders
    // off.
    switch_off(&bea, &["MEETUP_REMINDER"]).await;
    let now = jiff::Timestamp::now().as_millisecond();
    assert_eq!(kettle::meetups::events::record_due_reminders(&app.state().db, now).await.unwrap(), 1);
    assert_eq!(written.since(&app).await, inboxed(&[("ada", "MEETUP_REMINDER")]));

    // Bea drops out: Cal moves up, but switched that off (and cancellations too).
    switch_off(&cal, &["WAITLIST_PROMOTED", "MEETUP_CANCELLED"]).await;
    rsvp(&bea, &event, false).await;
    let seen = cal
        .data(
            "query($id: ID!) { node(id: $id) { ... on MeetupEvent { viewerRsvp { status } } } }",
            json!({ "id": event }),
        )
        .await;
    assert_eq!(seen["node"]["viewerRsvp"]["status"], "GOING", "{seen}");
    assert_eq!(written.since(&app).await, vec![]);

    // Cancelled: those going or waiting: Ada (only changes are off for her); not Cal
    // (cancellations off), not Bea (she dropped out), not the organiser who cancelled.
    let cancelled = olu.data(CANCEL_MEETUP, json!({ "id": event })).await;
    assert_eq!(cancelled["cancelMeetup"]["event"]["status"], "CANCELLED", "{cancelled}");
    assert_eq!(written.since(&app).await, inboxed(&[("ada", "MEETUP_CANCELLED")]));
    let expect = Expect {
        kind: "MEETUP_CANCELLED",
        actor: Some("olu"),
        subject: Some(&event),
        path: &path,
        words: &["TeaCamp Manchester (with cake)"],
    };
    check(&newest(&ada).await, expect);
    // A cancelled meetup's reminder never comes.
    let later = jiff::Timestamp::now().as_millisecond();
    assert_eq!(kettle::meetups::events::record_due_reminders(&app.state().db, later).await.unwrap(), 0);
    for member in [&olu, &fay] {
        assert_eq!(inbox(member).await, Vec::<Value>::new());
    }
    assert_eq!(kinds(&dan).await, ["NEW_MEETUP"], "Dan, watching the group, heard only of the meetup itself");
    // Everything anyone was told, through the API, without the link.
    for member in [&ada, &bea, &cal] {
        assert!(!inbox(member).await.is_empty());
    }
}

async fn notifications_join_requests_reach_admins_and_decisions_the_asker(app: TestApp) {
    let ada = app.member("ada@example.org", "Ada").await;
    let carol = app.member("carol@example.org", "Carol").await;
    let dora = app.member("dora@example.org", "Dora").await;
    let eve = app.member("eve@example.org", "Eve").await;
    let fay = app.member("fay@example.org", "Fay").await;
    let gus = app.member("gus@example.org", "Gus").await;
    let grace = app.member("grace@example.org", "Grace").await;
    let (barset, slug) = create_organisation(&ada, "Barsetshire Council").await;
    create_organisation(&grace, "Wessex Council").await;
    join_organisation(&carol, &ada, &barset).await;
    join_organisation(&dora, &ada, &barset).await;
    // Carol is a second admin (there is no API for that yet).
    app.execute_sql(&format!(
        "UPDATE organisation_members SET role = 'admin' WHERE member_id = {} AND organisation_id = {}",
        number("Member", &json!(id_of(&carol).await)),
        number("Organisation", &json!(barset))
    ))
    .await;
    let mut written = Written::from_now(&app).await;

    // A request: the organisation's admins, and nobody else: not Dora (a plain member),
    // not Grace (an admin elsewhere), not Eve who asked.
    request_to_join(&eve, &barset).await;
    assert_eq!(written.since(&app).await, inboxed(&[("ada", "JOIN_REQUESTED"), ("carol", "JOIN_REQUESTED")]));
    let path = format!("/organisations/{slug}");
    let subject = barset.clone();
    let expect = Expect {
        kind: "JOIN_REQUESTED",
        actor: Some("eve"),
        subject: Some(&subject),
        path: &path,
        words: &["Barsetshire Council", "Eve"],
    };
    check(&newest(&carol).await, expect);
    assert_eq!(kinds(&dora).await, ["JOIN_DECIDED"], "only her own decision");
    assert_eq!(inbox(&grace).await, Vec::<Value>::new());
    assert_eq!(inbox(&eve).await, Vec::<Value>::new());
    // Asking twice is one request.
    request_to_join(&eve, &barset).await;
    assert_eq!(written.since(&app).await, vec![]);
    // Switched off.
    switch_off(&carol, &["JOIN_REQUESTED"]).await;
    request_to_join(&fay, &barset).await;
    assert_eq!(written.since(&app).await, inboxed(&[("ada", "JOIN_REQUESTED")]));

    // Decisions: the member who asked hears, approved or declined; the admin who decided
    // does not.
    decide(&ada, &barset, &eve, true).await;
    assert_eq!(written.since(&app).await, inboxed(&[("eve", "JOIN_DECIDED")]));
    let expect = Expect {
        kind: "JOIN_DECIDED",
        actor: Some("ada"),
        subject: Some(&subject),
        path: &path,
        words: &["Barsetshire Council", "approved"],
    };
    check(&newest(&eve).await, expect);
    decide(&carol, &barset, &fay, false).await;
    assert_eq!(written.since(&app).await, inboxed(&[("fay", "JOIN_DECIDED")]));
    let expect = Expect {
        kind: "JOIN_DECIDED",
        actor: Some("carol"),
        subject: Some(&subject),
        path: &path,
        words: &["Barsetshire Council", "declined"],
    };
    check(&newest(&fay).await, expect);
    // Deciding again changes nothing and tells nobody.
    let again = ada
        .data(DECIDE, json!({ "input": { "organisationId": barset, "memberId": id_of(&fay).await, "approve": true } }))
        .await;
    assert_eq!(written.since(&app).await, vec![], "{again}");
    // Switched off.
    switch_off(&gus, &["JOIN_DECIDED"]).await;
    request_to_join(&gus, &barset).await;
    assert_eq!(written.since(&app).await, inboxed(&[("ada", "JOIN_REQUESTED")]));
    decide(&ada, &barset, &gus, true).await;
    assert_eq!(written.since(&app).await, vec![]);
    assert_eq!(kinds(&dora).await, ["JOIN_DECIDED"], "a plain member never sees a request");
}

async fn notifications_followers_hear_of_new_case_studies_and_artefacts(app: TestApp) {
    let curator = admin(&app, "curator@example.org", "Curator").await;
    let waste = create_topic(&curator, "Waste").await;
    let parks = create_topic(&curator, "Parks").await;
    let ada = app.member("ada@example.org", "Ada").await;
    let bob = app.member("bob@example.org", "Bob").await;
    let (barset, _) = create_organisation(&ada, "Barsetshire Council").await;
    let ada_id = id_of(&ada).await;
    let wat = app.member("wat@example.org", "Wat").await;
    let dig = app.member("dig@example.org", "Dig").await;
    let mut_ = app.member("mut@example.org", "Mut").await;
    let orgw = app.member("orgw@example.org", "Orgw").await;
    let fan = app.member("fan@example.org", "Fan").await;
    let all = app.member("all@example.org", "All").await;
    let off = app.member("off@example.org", "Off").await;
    let other = app.member("other@example.org", "Other").await;
    follow(&wat, &waste, "WATCHING").await;
    follow(&dig, &waste, "DIGEST").await;
    follow(&mut_, &waste, "MUTED").await;
    follow(&mut_, &barset, "WATCHING").await;
    follow(&mut_, &ada_id, "WATCHING").await;
    follow(&orgw, &barset, "WATCHING").await;
    follow(&fan, &ada_id, "WATCHING").await;
    for target in [&waste, &barset, &ada_id] {
        follow(&all, target, "WATCHING").await;
    }
    follow(&off, &waste, "WATCHING").await;
    switch_off(&off, &["NEW_CASE_STUDY"]).await;
    follow(&other, &parks, "WATCHING").await;
    follow(&ada, &waste, "WATCHING").await;
    follow(&bob, &waste, "WATCHING").await;
    let mut written = Written::from_now(&app).await;

    // A draft tells no follower, however it changes.
    let mut input = case_study("Food waste trial", &[&waste]);
    input["organisationId"] = json!(barset);
    input["coAuthorHandles"] = json!(["bob"]);
    let story = create_case_study(&ada, input.clone()).await["id"].as_str().unwrap().to_string();
    assert_eq!(written.since(&app).await, inboxed(&[("bob", "COAUTHOR_INVITED")]));
    accept_invitation(&bob, &story).await;
    input["id"] = json!(story);
    input["version"] = json!(1);
    input["coAuthorHandles"] = json!(["bob"]);
    input["title"] = json!("Food waste collection trial");
    let saved = bob.data(UPDATE, json!({ "input": input })).await;
    assert_eq!(saved["updateCaseStudy"]["userErrors"], json!([]), "{saved}");
    assert_eq!(written.since(&app).await, vec![], "nothing about the draft");

    // Published: followers of its topic, organisation or authors, once each, by level;
    // muted anywhere wins; not its authors; not a follower of another topic.
    ada.data(PUBLISH, json!({ "id": story })).await;
    assert_eq!(
        written.since(&app).await,
        told(&[
            ("all", "NEW_CASE_STUDY", "inbox"),
            ("dig", "NEW_CASE_STUDY", "digest"),
            ("fan", "NEW_CASE_STUDY", "inbox"),
            ("orgw", "NEW_CASE_STUDY", "inbox"),
            ("wat", "NEW_CASE_STUDY", "inbox"),
        ])
    );
    let path = path_of("CaseStudy", &story);
    let expect = Expect {
        kind: "NEW_CASE_STUDY",
        actor: Some("ada"),
        subject: Some(&story),
        path: &path,
        words: &["Food waste collection trial"],
    };
    check(&newest(&wat).await, expect);
    check(
        &newest(&fan).await,
        Expect {
            kind: "NEW_CASE_STUDY",
            actor: Some("ada"),
            subject: Some(&story),
            path: &path,
            words: &["Food waste collection trial"],
        },
    );
    for member in [&mut_, &off, &other, &ada, &dig] {
        assert_eq!(inbox(member).await, Vec::<Value>::new());
    }
    assert_eq!(kinds(&bob).await, ["COAUTHOR_INVITED"], "not told of his own case study");

    // An artefact: followers of its topic, organisation or creator.
    let thing = shared(&ada, "Caddy tracker", &[&waste, &parks], Some(&barset)).await;
    assert_eq!(
        written.since(&app).await,
        told(&[
            ("all", "NEW_ARTEFACT", "inbox"),
            ("bob", "NEW_ARTEFACT", "inbox"),
            ("dig", "NEW_ARTEFACT", "digest"),
            ("fan", "NEW_ARTEFACT", "inbox"),
            ("off", "NEW_ARTEFACT", "inbox"),
            ("orgw", "NEW_ARTEFACT", "inbox"),
            ("other", "NEW_ARTEFACT", "inbox"),
            ("wat", "NEW_ARTEFACT", "inbox"),
        ])
    );
    let path = path_of("Artefact", &thing);
    let expect = Expect {
        kind: "NEW_ARTEFACT",
        actor: Some("ada"),
        subject: Some(&thing),
        path: &path,
        words: &["Caddy tracker"],
    };
    check(&newest(&other).await, expect);
    // Bob shares one of his own: those following Ada hear nothing of it; Bob is not told.
    switch_off(&other, &["NEW_ARTEFACT"]).await;
    shared(&bob, "Bob's bin map", &[&parks], None).await;
    assert_eq!(written.since(&app).await, vec![]);
}

async fn notifications_group_and_topic_followers_hear_of_new_meetups(app: TestApp) {
    let curator = admin(&app, "curator@example.org", "Curator").await;
    let topic = create_topic(&curator, "Accessibility").await;
    let olu = app.member("olu@example.org", "Olu").await;
    let pat = app.member("pat@example.org", "Pat").await;
    let quin = app.member("quin@example.org", "Quin").await;
    let tess = app.member("tess@example.org", "Tess").await;
    let mo = app.member("mo@example.org", "Mo").await;
    let dee = app.member("dee@example.org", "Dee").await;
    let ren = app.member("ren@example.org", "Ren").await;
    let group = meetup_group(&olu, "TeaCamp North").await;
    join_group(&pat, &group).await;
    assert_eq!(level(&pat, &group).await, "WATCHING", "joining watches the group");
    auto_watch_off(&quin).await;
    join_group(&quin, &group).await;
    assert_eq!(level(&quin, &group).await, Value::Null);
    follow(&tess, &topic, "WATCHING").await;
    join_group(&mo, &group).await;
    follow(&mo, &topic, "MUTED").await;
    follow(&dee, &group, "DIGEST").await;
    join_group(&ren, &group).await;
    switch_off(&ren, &["NEW_MEETUP"]).await;
    follow(&olu, &topic, "WATCHING").await;
    let mut written = Written::from_now(&app).await;

    let mut input = meetup_input(&group, "Accessible forms clinic", &london_in(24 * 30), Some(20));
    input["topicIds"] = json!([topic]);
    let event = schedule(&olu, input).await;
    assert_eq!(
        written.since(&app).await,
        told(&[("dee", "NEW_MEETUP", "digest"), ("pat", "NEW_MEETUP", "inbox"), ("tess", "NEW_MEETUP", "inbox")])
    );
    let path = path_of("MeetupEvent", &event);
    let expect = Expect {
        kind: "NEW_MEETUP",
        actor: Some("olu"),
        subject: Some(&event),
        path: &path,
        words: &["Accessible forms clinic"],
    };
    check(&newest(&tess).await, expect);
    let digest = new_for_you(&dee).await;
    assert_eq!(digest.len(), 1, "{digest:?}");
    assert_eq!(digest[0]["subject"]["id"], json!(event));
    for member in [&olu, &quin, &mo, &ren, &dee] {
        assert_eq!(inbox(member).await, Vec::<Value>::new());
    }
    // Its link is still only for those going.
    let seen = tess
        .data("query($id: ID!) { node(id: $id) { ... on MeetupEvent { onlineUrl } } }", json!({ "id": event }))
        .await;
    assert_eq!(seen["node"]["onlineUrl"], Value::Null);
}

async fn notifications_digest_follows_wait_for_new_for_you(app: TestApp) {
    let curator = admin(&app, "curator@example.org", "Curator").await;
    let topic = create_topic(&curator, "Transport").await;
    let ada = app.member("ada@example.org", "Ada").await;
    let dig = app.member("dig@example.org", "Dig").await;
    let wat = app.member("wat@example.org", "Wat").await;
    follow(&dig, &topic, "DIGEST").await;
    follow(&wat, &topic, "WATCHING").await;
    let mut written = Written::from_now(&app).await;
    let fresh = dig.data(NEW_FOR_YOU, json!({})).await;
    assert_eq!(fresh["viewer"]["followedSeenAt"], Value::Null);
    assert_eq!(fresh["viewer"]["newForYou"]["edges"], json!([]));

    let first = published(&ada, "Bus passes", &[&topic], None).await;
    assert_eq!(
        written.since(&app).await,
        told(&[("dig", "NEW_CASE_STUDY", "digest"), ("wat", "NEW_CASE_STUDY", "inbox")])
    );
    // Nothing in the inbox, nothing unread; there in "new for you".
    let (entries, unread) = inbox_of(&dig, false).await;
    assert_eq!((entries, unread), (vec![], 0));
    assert_eq!(inbox_of(&dig, true).await.0, Vec::<Value>::new());
    let news = new_for_you(&dig).await;
    assert_eq!(news.len(), 1, "{news:?}");
    let path = path_of("CaseStudy", &first);
    let expect = Expect {
        kind: "NEW_CASE_STUDY",
        actor: Some("ada"),
        subject: Some(&first),
        path: &path,
        words: &["Bus passes"],
    };
    check(&news[0], expect);
    // Watching members see followed news both in the inbox and "new for you".
    assert_eq!(new_for_you(&wat).await.len(), 1);
    assert_eq!(unread_count(&wat).await, 1);
    // Marking everything read leaves a digest row for the digest.
    let marked = dig.data(MARK, json!({ "input": {} })).await;
    assert_eq!(marked["markNotificationsRead"]["unreadCount"], 0);

    // Seen: only what comes after shows.
    let seen = dig.data("mutation { markNewForYouSeen { followedSeenAt } }", json!({})).await;
    let seen_at = seen["markNewForYouSeen"]["followedSeenAt"].clone();
    assert!(seen_at.is_string(), "{seen}");
    assert_eq!(dig.data(NEW_FOR_YOU, json!({})).await["viewer"]["followedSeenAt"], seen_at);
    assert_eq!(new_for_you(&dig).await, Vec::<Value>::new());
    let second = published(&ada, "Tram tickets", &[&topic], None).await;
    written.since(&app).await;
    let news = new_for_you(&dig).await;
    assert_eq!(news.len(), 1, "{news:?}");
    assert_eq!(news[0]["subject"]["id"], json!(second));
    assert_eq!(unread_count(&dig).await, 0);
    assert_eq!(new_for_you(&wat).await.len(), 2, "Wat never marked it seen");
    assert_eq!(
        error_code(&app.anonymous().gql("mutation { markNewForYouSeen { followedSeenAt } }", json!({})).await),
        "UNAUTHENTICATED"
    );
}

async fn notifications_a_burst_of_comments_is_one_entry_and_buries_nothing(app: TestApp) {
    let curator = admin(&app, "curator@example.org", "Curator").await;
    let topic = create_topic(&curator, "Libraries").await;
    let ada = app.member("ada@example.org", "Ada").await;
    let grace = app.member("grace@example.org", "Grace").await;
    let mary = app.member("mary@example.org", "Mary").await;
    let lin = app.member("lin@example.org", "Lin").await;
    let busy = published(&ada, "Library cards", &[&topic], None).await;
    let quiet = published(&ada, "Reading lists", &[&topic], None).await;
    let mut written = Written::from_now(&app).await;

    // Something about another case study first, then a burst of five comments.
    register_interest(&lin, &quiet, "Same here.").await;
    written.since(&app).await;
    let mut last = String::new();
    for (who, body) in [(&grace, "One"), (&mary, "Two"), (&grace, "Three"), (&mary, "Four"), (&lin, "Five")] {
        last = post(who, &busy, None, body).await;
    }
    let made = written.since(&app).await;
    assert_eq!(made.iter().filter(|t| t.0 == "ada").count(), 5, "{made:?}");

    let data = ada.data(INBOX, json!({ "first": 2, "unread": false })).await;
    let page = &data["viewer"]["notifications"];
    let entries: Vec<&Value> = page["edges"].as_array().unwrap().iter().map(|e| clean(&e["node"])).collect();
    assert_eq!(entries.len(), 2, "{data}");
    let burst = entries[0];
    assert_eq!(burst["kind"], "COMMENTED_ON_YOURS", "{burst}");
    assert_eq!(burst["groupSize"], 5, "{burst}");
    assert_eq!(burst["summary"], "5 new comments on “Library cards”", "{burst}");
    assert_eq!(burst["subject"]["id"], json!(busy));
    assert_eq!(burst["actor"]["handle"], "lin", "the newest comment's author");
    assert_eq!(burst["path"], comment_path("CaseStudy", &busy, &last));
    let older = entries[1];
    assert_eq!(older["kind"], "INTEREST_REGISTERED", "not buried: {data}");
    assert_eq!(older["groupSize"], 1);
    assert_eq!(older["subject"]["id"], json!(quiet));
    assert_eq!(page["pageInfo"]["hasNextPage"], false, "{data}");
    assert_eq!(data["viewer"]["unreadNotificationCount"], 2, "one per entry");
    assert_eq!(inbox_of(&ada, true).await.0.len(), 2);

    // Reading the group reads all five; the other stays unread.
    let marked = ada.data(MARK, json!({ "input": { "ids": [burst["id"]] } })).await;
    assert_eq!(marked["markNotificationsRead"], json!({ "unreadCount": 1, "userErrors": [] }));
    let (entries, unread) = inbox_of(&ada, false).await;
    assert_eq!(unread, 1);
    assert_eq!(entries.len(), 2);
    assert!(entries[0]["readAt"].is_string(), "{:?}", entries[0]);
    assert_eq!(entries[1]["readAt"], Value::Null);
    let unread_entries = inbox_of(&ada, true).await.0;
    assert_eq!(unread_entries.len(), 1);
    assert_eq!(unread_entries[0]["id"], older["id"]);

    // A comment after the group was read starts a new entry.
    let next = post(&mary, &busy, None, "Six").await;
    written.since(&app).await;
    let (entries, unread) = inbox_of(&ada, false).await;
    assert_eq!(unread, 2);
    let sizes: Vec<(i64, bool)> =
        entries.iter().map(|e| (e["groupSize"].as_i64().unwrap(), e["readAt"].is_null())).collect();
    assert_eq!(sizes, [(1, true), (5, false), (1, true)], "{entries:?}");
    let path = comment_path("CaseStudy", &busy, &next);
    check(
        &entries[0],
        Expect {
            kind: "COMMENTED_ON_YOURS",
            actor: Some("mary"),
            subject: Some(&busy),
            path: &path,
            words: &["Library cards", "Mary"],
        },
    );
    // Paging goes on from the cursor without repeating anything.
    let first = ada.data(INBOX, json!({ "first": 1, "unread": false })).await;
    let cursor = first["viewer"]["notifications"]["pageInfo"]["endCursor"].clone();
    let rest = ada.data(INBOX, json!({ "first": 5, "after": cursor, "unread": false })).await;
    let ids: Vec<&Value> =
        rest["viewer"]["notifications"]["edges"].as_array().unwrap().iter().map(|e| &e["node"]["id"]).collect();
    assert_eq!(ids, [&entries[1]["id"], &entries[2]["id"]]);
}

async fn notifications_are_read_by_id_up_to_or_all_and_only_by_their_owner(app: TestApp) {
    let curator = admin(&app, "curator@example.org", "Curator").await;
    let topic = create_topic(&curator, "Housing").await;
    let ada = app.member("ada@example.org", "Ada").await;
    let grace = app.member("grace@example.org", "Grace").await;
    let mary = app.member("mary@example.org", "Mary").await;
    let mut stories = Vec::new();
    for title in ["One", "Two", "Three", "Four"] {
        stories.push(published(&ada, title, &[&topic], None).await);
    }
    let graces = published(&grace, "Grace's", &[&topic], None).await;
    let mut written = Written::from_now(&app).await;
    for story in &stories {
        register_interest(&mary, story, "Us too.").await;
    }
    register_interest(&mary, &graces, "Us too.").await;
    written.since(&app).await;

    // Newest first: n[0] is about "Four".
    let (entries, unread) = inbox_of(&ada, false).await;
    assert_eq!(unread, 4);
    let n: Vec<Value> = entries.iter().map(|e| e["id"].clone()).collect();
    assert_eq!(n.len(), 4);
    assert_eq!(entries[0]["subject"]["id"], json!(stories[3]));
    let theirs = newest(&grace).await["id"].clone();

    // By id.
    let marked = ada.data(MARK, json!({ "input": { "ids": [n[1]] } })).await;
    assert_eq!(marked["markNotificationsRead"], json!({ "unreadCount": 3, "userErrors": [] }));
    let unread_ids: Vec<Value> = inbox_of(&ada, true).await.0.iter().map(|e| e["id"].clone()).collect();
    assert_eq!(unread_ids, [n[0].clone(), n[2].clone(), n[3].clone()]);
    let (entries, _) = inbox_of(&ada, false).await;
    assert!(entries[1]["readAt"].is_string(), "{:?}", entries[1]);
    // Twice is the same.
    let marked = ada.data(MARK, json!({ "input": { "ids": [n[1]] } })).await;
    assert_eq!(marked["markNotificationsRead"]["unreadCount"], 3);

    // Someone else's ids do nothing, to theirs or to the one asking.
    let marked = grace.data(MARK, json!({ "input": { "ids": [n[0], n[2]] } })).await;
    assert_eq!(marked["markNotificationsRead"]["unreadCount"], 1, "Grace's own count: {marked}");
    assert_eq!(unread_count(&ada).await, 3);
    assert_eq!(unread_count(&grace).await, 1);
    let marked = ada.data(MARK, json!({ "input": { "ids": [theirs] } })).await;
    assert_eq!(marked["markNotificationsRead"]["unreadCount"], 3);
    assert_eq!(unread_count(&grace).await, 1);
    // Nor are they visible: not as a node, not through someone else's member page.
    let body = grace.gql("query($id: ID!) { node(id: $id) { id } }", json!({ "id": n[0] })).await;
    assert_eq!(body["data"]["node"], Value::Null, "{body}");
    let body = ada.gql("query($id: ID!) { node(id: $id) { id } }", json!({ "id": n[0] })).await;
    assert_eq!(body["data"]["node"]["id"], n[0], "her own is: {body}");
    let body = grace
        .gql(
            "{ member(handle: \"ada\") { unreadNotificationCount notifications { edges { node { id } } } } }",
            json!({}),
        )
        .await;
    let member = &body["data"]["member"];
    assert!(
        member.is_null() || (member["notifications"].is_null() && member["unreadNotificationCount"].is_null()),
        "Ada's inbox shown to Grace: {body}"
    );
    // A garbage id is refused or ignored, and changes nothing.
    let body = ada.gql(MARK, json!({ "input": { "ids": ["garbage"] } })).await;
    if body.get("errors").is_some() {
        assert_eq!(error_code(&body), "BAD_USER_INPUT", "{body}");
    } else if user_errors(&body["data"]["markNotificationsRead"]).is_empty() {
        assert_eq!(body["data"]["markNotificationsRead"]["unreadCount"], 3, "{body}");
    }
    assert_eq!(unread_count(&ada).await, 3);

    // Up to one: everything older too (and it), nothing newer.
    let marked = ada.data(MARK, json!({ "input": { "upTo": n[2] } })).await;
    assert_eq!(marked["markNotificationsRead"], json!({ "unreadCount": 1, "userErrors": [] }));
    let unread_ids: Vec<Value> = inbox_of(&ada, true).await.0.iter().map(|e| e["id"].clone()).collect();
    assert_eq!(unread_ids, [n[0].clone()]);
    assert_eq!(unread_count(&grace).await, 1);

    // Neither: all.
    let marked = ada.data(MARK, json!({ "input": {} })).await;
    assert_eq!(marked["markNotificationsRead"], json!({ "unreadCount": 0, "userErrors": [] }));
    let (entries, unread) = inbox_of(&ada, false).await;
    assert_eq!(unread, 0);
    assert_eq!(entries.len(), 4, "read, still listed");
    assert!(entries.iter().all(|e| e["readAt"].is_string()), "{entries:?}");
    assert_eq!(inbox_of(&ada, true).await.0, Vec::<Value>::new());
    assert_eq!(unread_count(&grace).await, 1, "hers untouched");

    // Signed out: nothing to read or mark.
    let anonymous = app.anonymous();
    assert_eq!(error_code(&anonymous.gql(MARK, json!({ "input": {} })).await), "UNAUTHENTICATED");
    assert_eq!(anonymous.data(INBOX, json!({ "unread": false })).await["viewer"], Value::Null);
    assert_eq!(error_code(&ada.gql(INBOX, json!({ "first": 101, "unread": false })).await), "BAD_USER_INPUT");

    // The agreed API: `unreadOnly: Boolean`, so leaving it out (literally, or as an unset
    // variable) lists everything.
    let literal = ada.data("{ viewer { notifications { edges { node { id } } } } }", json!({})).await;
    assert_eq!(literal["viewer"]["notifications"]["edges"].as_array().unwrap().len(), 4);
    let body = ada.gql(INBOX, json!({ "first": 10 })).await;
    assert!(body.get("errors").is_none(), "unreadOnly left unset must mean all, as agreed: {body}");
    assert_eq!(body["data"]["viewer"]["notifications"]["edges"].as_array().unwrap().len(), 4);
}

async fn notifications_nobody_is_told_what_they_may_no_longer_see(app: TestApp) {
    let curator = admin(&app, "curator@example.org", "Curator").await;
    let topic = create_topic(&curator, "Waste").await;
    let ada = app.member("ada@example.org", "Ada").await;
    let carol = app.member("carol@example.org", "Carol").await;
    let eve = app.member("eve@example.org", "Eve").await;
    let grace = app.member("grace@example.org", "Grace").await;
    let lin = app.member("lin@example.org", "Lin").await;
    let mary = app.member("mary@example.org", "Mary").await;
    let (barset, _) = create_organisation(&ada, "Barsetshire Council").await;
    join_organisation(&carol, &ada, &barset).await;
    let carol_number = number("Member", &json!(id_of(&carol).await));
    let barset_number = number("Organisation", &json!(barset));
    let carol_is = |role: &str| {
        format!(
            "UPDATE organisation_members SET role = '{role}' WHERE member_id = {carol_number} \
             AND organisation_id = {barset_number}"
        )
    };
    app.execute_sql(&carol_is("admin")).await;
    let story = published(&ada, "Food waste trial", &[&topic], None).await;
    let mut written = Written::from_now(&app).await;

    // Held off: a comment mentioning Grace is deleted, Carol stops being an admin, and an
    // invitation is withdrawn, all before the dispatcher gets to their events.
    hold_dispatch(&app).await;
    let before = app.count("SELECT COUNT(*) FROM notifications").await;
    let comment = post(&mary, &story, None, "@grace have a look at this.").await;
    let kept = post(&mary, &story, None, "@grace and at this.").await;
    request_to_join(&eve, &barset).await;
    let draft = draft_inviting(&ada, "Garden waste", &topic, &["lin"]).await;
    let deleted = mary.data(DELETE_COMMENT, json!({ "id": comment })).await;
    assert_eq!(deleted["deleteComment"]["userErrors"], json!([]), "{deleted}");
    app.execute_sql(&carol_is("member")).await;
    let mut withdrawn = case_study("Garden waste", &[&topic]);
    withdrawn["id"] = json!(draft);
    withdrawn["version"] = json!(1);
    withdrawn["coAuthorHandles"] = json!([]);
    let saved = ada.data(UPDATE, json!({ "input": withdrawn })).await;
    assert_eq!(saved["updateCaseStudy"]["userErrors"], json!([]), "{saved}");
    assert!(
        app.count("SELECT COUNT(*) FROM outbox_events WHERE dispatched_at IS NULL").await >= 6,
        "the events wait for the dispatcher"
    );
    assert_eq!(app.count("SELECT COUNT(*) FROM notifications").await, before, "nothing dispatched while held");
    release_dispatch(&app).await;
    // Something new wakes the dispatcher, which takes the lapsed lease over.
    post(&ada, &story, None, "Thanks Mary.").await;

    assert_eq!(
        written.since(&app).await,
        inboxed(&[
            ("ada", "COMMENTED_ON_YOURS"),
            ("ada", "JOIN_REQUESTED"),
            ("grace", "MENTIONED"),
            ("mary", "NEW_COMMENT"),
        ]),
        "the deleted comment tells nobody; the demoted admin hears nothing of the request; \
         the withdrawn invitee nothing of the invitation"
    );
    let path = comment_path("CaseStudy", &story, &kept);
    check(
        &newest(&grace).await,
        Expect { kind: "MENTIONED", actor: Some("mary"), subject: Some(&story), path: &path, words: &["Mary"] },
    );
    assert_eq!(kinds(&carol).await, ["JOIN_DECIDED"], "only her own decision");
    assert_eq!(inbox(&lin).await, Vec::<Value>::new());

    // Told, and then what it is about goes out of reach: the entry stays, its subject
    // follows what the member may see now.
    let secret = draft_inviting(&ada, "Secret plan", &topic, &["mary"]).await;
    written.since(&app).await;
    let invitation = newest(&mary).await;
    assert_eq!((invitation["kind"].as_str(), &invitation["subject"]), (Some("COAUTHOR_INVITED"), &Value::Null));
    accept_invitation(&mary, &secret).await;
    assert_eq!(newest(&mary).await["subject"]["id"], json!(secret), "a co-author may see the draft");
    let left = mary
        .data(
            "mutation($id: ID!) { leaveCaseStudy(input: { id: $id }) { userErrors { field code } } }",
            json!({ "id": secret }),
        )
        .await;
    assert_eq!(left["leaveCaseStudy"]["userErrors"], json!([]), "{left}");
    let after = newest(&mary).await;
    assert_eq!(after["id"], invitation["id"]);
    assert_eq!(after["subject"], Value::Null, "no longer hers to see: {after}");
    assert!(!after["summary"].as_str().unwrap().is_empty());
}

async fn notifications_dispatching_twice_tells_nobody_twice(app: TestApp) {
    let curator = admin(&app, "curator@example.org", "Curator").await;
    let topic = create_topic(&curator, "Parks").await;
    let ada = app.member("ada@example.org", "Ada").await;
    let grace = app.member("grace@example.org", "Grace").await;
    let mary = app.member("mary@example.org", "Mary").await;
    follow(&mary, &topic, "WATCHING").await;
    let story = published(&ada, "Park bookings", &[&topic], None).await;
    let first = post(&grace, &story, None, "Hello @mary.").await;
    post(&ada, &story, Some(&first), "Hello both.").await;
    register_interest(&grace, &story, "Us too.").await;
    let mut written = Written::from_now(&app).await;
    let before = app.count("SELECT COUNT(*) FROM notifications").await;
    assert!(before >= 5, "{before}");
    let per_event = "SELECT COUNT(*) FROM (SELECT event_id, member_id FROM notifications \
                     GROUP BY event_id, member_id HAVING COUNT(*) > 1) AS twice";
    assert_eq!(app.count(per_event).await, 0);
    let (entries_before, unread_before) = inbox_of(&ada, false).await;

    // Every event as if never dispatched; something new wakes the dispatcher.
    app.execute_sql("UPDATE outbox_events SET dispatched_at = NULL").await;
    let events = app.count("SELECT COUNT(*) FROM outbox_events").await;
    assert_eq!(app.count("SELECT COUNT(*) FROM outbox_events WHERE dispatched_at IS NULL").await, events);
    published(&curator, "Nobody follows this", &[&create_topic(&curator, "Quiet").await], None).await;
    assert_eq!(written.since(&app).await, vec![], "nothing written twice");
    assert_eq!(app.count("SELECT COUNT(*) FROM notifications").await, before);
    assert_eq!(app.count(per_event).await, 0);
    assert_eq!(inbox_of(&ada, false).await, (entries_before, unread_before));
    // And once more, all of them at once.
    app.execute_sql("UPDATE outbox_events SET dispatched_at = NULL").await;
    post(&ada, &story, None, "Waking the dispatcher.").await;
    assert_eq!(written.since(&app).await, inboxed(&[("grace", "NEW_COMMENT")]), "only the new comment's");
    assert_eq!(app.count("SELECT COUNT(*) FROM notifications").await, before + 1);
    assert_eq!(app.count(per_event).await, 0);
}
