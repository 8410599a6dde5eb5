//! The people at a meetup, as its organisers see them: the organiser who schedules it
//! counted as going unless they say no (one-off, series and copies), taking someone off
//! it (the seat goes to the first waiting, exactly once; they are told and cannot simply
//! answer again until an organiser lets them), recording who came (and the CSV), and
//! writing to those going, within a limit. Through the API and through the site.

use futures_util::future::join_all;
use reqwest::StatusCode;
use serde_json::{json, Value};
use sqlx::Row;

use crate::{
    artefacts::number,
    mailbox,
    notifications::dispatched,
    scenarios,
    site::{organise_a_meetup, Browser},
    support::{error_code, user_errors, Client, Scenario, TestApp},
};

pub fn scenarios() -> Vec<(&'static str, Scenario)> {
    scenarios![
        meetup_people_the_organiser_who_schedules_is_going_unless_they_say_no,
        meetup_people_removing_an_attendee_frees_the_seat_promotes_once_and_tells_them,
        meetup_people_only_organisers_manage_the_people_and_nothing_changes_when_refused,
        meetup_people_attendance_is_recorded_after_the_start_and_in_the_csv,
        meetup_people_a_message_reaches_those_going_by_notification_and_mail_within_a_limit,
        meetup_people_the_site_asks_before_taking_someone_off_and_lets_them_back,
        meetup_people_the_site_records_who_came_and_writes_to_those_going,
    ]
}

const CREATE_GROUP: &str =
    "mutation($input: CreateMeetupGroupInput!) { createMeetupGroup(input: $input) { group { id slug } userErrors { field code } } }";
const JOIN: &str = "mutation($id: ID!) { joinMeetupGroup(input: { groupId: $id }) { userErrors { code } } }";
const SCHEDULE: &str = "mutation($input: ScheduleMeetupInput!) { scheduleMeetup(input: $input) { \
    event { id goingCount viewerRsvp { status } } userErrors { field code message } } }";
const SERIES: &str = "mutation($input: ScheduleMeetupSeriesInput!) { scheduleMeetupSeries(input: $input) { \
    events { id goingCount } userErrors { field code message } } }";
const COPY: &str = "mutation($input: CopyMeetupInput!) { copyMeetup(input: $input) { \
    event { id goingCount } userErrors { field code message } } }";
const RSVP: &str = "mutation($id: ID!, $going: Boolean!) { rsvp(input: { eventId: $id, going: $going }) { \
    rsvp { status waitlistPosition removedByOrganisers } event { goingCount } userErrors { field code message } } }";
const REMOVE: &str = "mutation($e: ID!, $m: ID!) { removeMeetupAttendee(input: { eventId: $e, memberId: $m }) { \
    event { goingCount } userErrors { field code message } } }";
const READMIT: &str = "mutation($e: ID!, $m: ID!) { readmitMeetupMember(input: { eventId: $e, memberId: $m }) { \
    userErrors { field code message } } }";
const ATTENDANCE: &str =
    "mutation($e: ID!, $a: [ID!]!) { recordMeetupAttendance(input: { eventId: $e, attended: $a }) { \
    userErrors { field code message } } }";
const MESSAGE: &str = "mutation($e: ID!, $m: String!, $w: Boolean!) { messageMeetupAttendees(input: \
    { eventId: $e, message: $m, includeWaitlist: $w }) { recipients userErrors { field code message } } }";
const PEOPLE: &str = "query($id: ID!) { node(id: $id) { ... on MeetupEvent { goingCount \
    answers { status attended waitlistPosition member { handle } } removedMembers { member { handle } } } } }";

async fn group(organiser: &Client, name: &str) -> String {
    let data = organiser.data(CREATE_GROUP, json!({ "input": { "name": name, "region": "North West" } })).await;
    assert_eq!(data["createMeetupGroup"]["userErrors"], json!([]), "{data}");
    data["createMeetupGroup"]["group"]["id"].as_str().unwrap().to_string()
}

fn fields(group_id: &str, capacity: Option<i64>) -> Value {
    json!({
        "groupId": group_id,
        "title": "TeaCamp Leeds",
        "timeZone": "Europe/London",
        "start": "2030-01-10T18:00",
        "end": "2030-01-10T20:00",
        "venueName": "The Tetley",
        "capacity": capacity,
    })
}

async fn schedule(organiser: &Client, input: Value) -> Value {
    let data = organiser.data(SCHEDULE, json!({ "input": input })).await;
    assert_eq!(data["scheduleMeetup"]["userErrors"], json!([]), "{data}");
    data["scheduleMeetup"]["event"].clone()
}

async fn answer(client: &Client, event: &str, going: bool) -> Value {
    client.data(RSVP, json!({ "id": event, "going": going })).await["rsvp"].clone()
}

async fn id_of(client: &Client) -> String {
    client.viewer_id().await.expect("signed in")
}

/// (handle, STATUS, attended) of everyone going or waiting, in order.
async fn people(organiser: &Client, event: &str) -> Vec<(String, String, bool)> {
    let data = organiser.data(PEOPLE, json!({ "id": event })).await;
    data["node"]["answers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            let handle = a["member"]["handle"].as_str().unwrap().to_string();
            (handle, a["status"].as_str().unwrap().to_string(), a["attended"].as_bool().unwrap())
        })
        .collect()
}

fn person(handle: &str, status: &str, attended: bool) -> (String, String, bool) {
    (handle.to_string(), status.to_string(), attended)
}

/// (handle, KIND, summary) of the notifications written after `after`, by id.
async fn told_since(app: &TestApp, after: i64) -> Vec<(String, String, String)> {
    dispatched(app).await;
    let rows = sqlx::query(
        "SELECT m.handle, UPPER(n.kind) AS kind, n.summary FROM notifications n JOIN members m ON m.id = n.member_id \
         WHERE n.id > $1 ORDER BY n.id",
    )
    .bind(after)
    .fetch_all(&app.state().db.pool)
    .await
    .unwrap();
    rows.iter().map(|r| (r.get("handle"), r.get("kind"), r.get("summary"))).collect()
}

async fn last_notification(app: &TestApp) -> i64 {
    dispatched(app).await;
    app.count("SELECT COALESCE(MAX(id), 0) FROM notifications").await
}

/// Sweeps the notification mail as if its delay had passed.
async fn sweep_later(app: &TestApp) -> usize {
    dispatched(app).await;
    let state = app.state();
    let later = kettle::db::now_millis() + state.mailer.delay.as_millis() as i64 + 1_000;
    kettle::mail::notification_mail::sweep(&state.db, &state.mailer, later).await.unwrap()
}

/// Moves a meetup so that it started an hour ago and ends in an hour.
async fn started(app: &TestApp, event: &str) {
    let now = kettle::db::now_millis();
    let id = number("MeetupEvent", &json!(event));
    app.execute_sql(&format!(
        "UPDATE meetup_events SET starts_at = {}, ends_at = {} WHERE id = {id}",
        now - 3_600_000,
        now + 3_600_000
    ))
    .await;
}

async fn meetup_people_the_organiser_who_schedules_is_going_unless_they_say_no(app: TestApp) {
    let olu = app.member("olu@example.org", "Olu").await;
    let ada = app.member("ada@example.org", "Ada").await;
    let id = group(&olu, "TeaCamp North").await;

    // By default the organiser is going, and takes a seat: with one seat, the next waits.
    let one = schedule(&olu, fields(&id, Some(1))).await;
    assert_eq!(one["goingCount"], 1);
    assert_eq!(one["viewerRsvp"]["status"], "GOING");
    let event = one["id"].as_str().unwrap();
    assert_eq!(answer(&ada, event, true).await["rsvp"]["status"], "WAITLISTED");
    assert_eq!(people(&olu, event).await, vec![person("olu", "GOING", false), person("ada", "WAITLISTED", false)]);

    // Saying no: nobody is going, and the organiser has no answer at all.
    let mut input = fields(&id, Some(1));
    input["going"] = json!(false);
    let none = schedule(&olu, input).await;
    assert_eq!((none["goingCount"].clone(), none["viewerRsvp"].clone()), (json!(0), Value::Null));
    assert_eq!(answer(&ada, none["id"].as_str().unwrap(), true).await["rsvp"]["status"], "GOING");

    // A series: the organiser is going to every occurrence made now, and to those the
    // rolling window makes later; without it, to none.
    // A series starting next week, so that its first weeks are made at once.
    let next_week = jiff::Timestamp::now()
        .checked_add(jiff::SignedDuration::from_hours(24 * 7))
        .unwrap()
        .to_zoned(jiff::tz::TimeZone::get("Europe/London").unwrap())
        .datetime();
    let (start, end) =
        (next_week.strftime("%Y-%m-%dT18:00").to_string(), next_week.strftime("%Y-%m-%dT20:00").to_string());
    let series = |going: bool| {
        let mut input = fields(&id, Some(10));
        input["start"] = json!(start);
        input["end"] = json!(end);
        input["recurrence"] = json!({ "frequency": "WEEKLY", "count": 60 });
        input["going"] = json!(going);
        json!({ "input": input })
    };
    let made = olu.data(SERIES, series(true)).await;
    let events = made["scheduleMeetupSeries"]["events"].as_array().unwrap().clone();
    assert!(events.len() > 20, "{made}");
    assert!(events.iter().all(|e| e["goingCount"] == 1), "{made}");
    let quiet = olu.data(SERIES, series(false)).await;
    let quiet_events = quiet["scheduleMeetupSeries"]["events"].as_array().unwrap().clone();
    assert!(quiet_events.iter().all(|e| e["goingCount"] == 0), "{quiet}");
    let before = app.count("SELECT COUNT(*) FROM meetup_events WHERE series_id IS NOT NULL").await;
    let later = kettle::db::now_millis() + 60 * 24 * 60 * 60 * 1000;
    let extended = kettle::meetups::series::extend_windows(&app.state().db, later).await.unwrap();
    assert!(extended > 0);
    assert_eq!(
        app.count("SELECT COUNT(*) FROM meetup_events WHERE series_id IS NOT NULL").await,
        before + extended as i64
    );
    let first_series = number("MeetupEvent", &events[0]["id"]);
    let series_of = |id: i64| format!("(SELECT series_id FROM meetup_events WHERE id = {id})");
    assert_eq!(
        app.count(&format!(
            "SELECT COUNT(*) FROM meetup_events WHERE series_id = {} AND going_count <> 1",
            series_of(first_series)
        ))
        .await,
        0,
        "the organiser is going to the later occurrences too"
    );
    let second_series = number("MeetupEvent", &quiet_events[0]["id"]);
    assert_eq!(
        app.count(&format!(
            "SELECT COUNT(*) FROM meetup_events WHERE series_id = {} AND going_count <> 0",
            series_of(second_series)
        ))
        .await,
        0
    );
    // Each seat counted is an RSVP: the count and the answers agree everywhere.
    assert_eq!(
        app.count(
            "SELECT COUNT(*) FROM meetup_events e WHERE going_count <> \
             (SELECT COUNT(*) FROM meetup_rsvps r WHERE r.event_id = e.id AND r.status = 'going')"
        )
        .await,
        0
    );

    // A copy: whoever copies it is going, unless they say no; nobody else is.
    let copy = |going: Option<bool>| {
        let mut input = json!({ "id": event, "start": "2030-02-14T18:00" });
        if let Some(going) = going {
            input["going"] = json!(going);
        }
        json!({ "input": input })
    };
    let copied = olu.data(COPY, copy(None)).await;
    assert_eq!(copied["copyMeetup"]["event"]["goingCount"], 1, "{copied}");
    let copied_id = copied["copyMeetup"]["event"]["id"].as_str().unwrap().to_string();
    assert_eq!(people(&olu, &copied_id).await, vec![person("olu", "GOING", false)]);
    let copied = olu.data(COPY, copy(Some(false))).await;
    assert_eq!(copied["copyMeetup"]["event"]["goingCount"], 0, "{copied}");
}

async fn meetup_people_removing_an_attendee_frees_the_seat_promotes_once_and_tells_them(app: TestApp) {
    let olu = app.verified_member("olu@example.org", "Olu").await;
    let ada = app.verified_member("ada@example.org", "Ada").await;
    let bea = app.verified_member("bea@example.org", "Bea").await;
    let cy = app.verified_member("cy@example.org", "Cy").await;
    let id = group(&olu, "TeaCamp North").await;
    // Two seats: Olu and Ada; Bea then Cy wait.
    let event = schedule(&olu, fields(&id, Some(2))).await["id"].as_str().unwrap().to_string();
    answer(&ada, &event, true).await;
    answer(&bea, &event, true).await;
    answer(&cy, &event, true).await;
    let (ada_id, cy_id) = (id_of(&ada).await, id_of(&cy).await);
    let after = last_notification(&app).await;
    let promoted = "SELECT COUNT(*) FROM outbox_events WHERE kind = 'meetup.rsvp_promoted'";

    // Taking Ada off, five times at once: one takes, the seat goes to Bea exactly once.
    let attempts = join_all((0..5).map(|_| olu.data(REMOVE, json!({ "e": event, "m": ada_id })))).await;
    let done = attempts.iter().filter(|d| d["removeMeetupAttendee"]["userErrors"] == json!([])).count();
    assert_eq!(done, 1, "{attempts:?}");
    for refused in attempts.iter().filter(|d| d["removeMeetupAttendee"]["userErrors"] != json!([])) {
        assert_eq!(user_errors(&refused["removeMeetupAttendee"]), vec![("memberId".into(), "NOT_FOUND".into())]);
    }
    assert_eq!(app.count(promoted).await, 1);
    assert_eq!(
        people(&olu, &event).await,
        vec![person("olu", "GOING", false), person("bea", "GOING", false), person("cy", "WAITLISTED", false)]
    );
    let data = olu.data(PEOPLE, json!({ "id": event })).await;
    assert_eq!(data["node"]["goingCount"], 2);
    assert_eq!(data["node"]["removedMembers"], json!([{ "member": { "handle": "ada" } }]));

    // Ada is told, and so is Bea of her seat; nobody else.
    let mut told = told_since(&app, after).await;
    told.sort();
    assert_eq!(
        told,
        vec![
            (
                "ada".into(),
                "RSVP_REMOVED".into(),
                "The organisers took you off the list of those going to “TeaCamp Leeds”; ask them if you think this is a mistake".into()
            ),
            ("bea".into(), "WAITLIST_PROMOTED".into(), "You have a place at “TeaCamp Leeds”: you moved up from the waitlist".into()),
        ]
    );
    // By mail too (the default for both kinds).
    sweep_later(&app).await;
    let mail = mailbox::wait_for(&app, "ada@example.org", |m| m.subject.contains("took you off")).await;
    assert!(mail.text.contains("TeaCamp Leeds"), "{}", mail.text);

    // Ada cannot simply answer going again, nor join the waitlist; saying no is fine.
    let refused = answer(&ada, &event, true).await;
    assert_eq!(user_errors(&refused), vec![("eventId".into(), "INVALID".into())]);
    assert!(refused["userErrors"][0]["message"].as_str().unwrap().contains("organisers took you off"), "{refused}");
    assert_eq!(answer(&ada, &event, false).await["userErrors"], json!([]));
    let data = ada.data(RSVP, json!({ "id": event, "going": true })).await;
    assert_eq!(data["rsvp"]["userErrors"][0]["code"], "INVALID");
    let mine = "query($id: ID!) { node(id: $id) { ... on MeetupEvent { viewerRsvp { status removedByOrganisers } } } }";
    let data = ada.data(mine, json!({ "id": event })).await;
    assert_eq!(data["node"]["viewerRsvp"], json!({ "status": "NOT_GOING", "removedByOrganisers": true }));
    assert_eq!(people(&olu, &event).await.len(), 3);

    // Someone waiting can be taken off too: those after move up, nobody is promoted.
    let data = olu.data(REMOVE, json!({ "e": event, "m": cy_id })).await;
    assert_eq!(data["removeMeetupAttendee"]["userErrors"], json!([]), "{data}");
    assert_eq!(app.count(promoted).await, 1);
    assert_eq!(people(&olu, &event).await, vec![person("olu", "GOING", false), person("bea", "GOING", false)]);
    let told = told_since(&app, after).await;
    assert!(told.iter().any(|(h, _, s)| h == "cy" && s.contains("off the waitlist for")), "{told:?}");

    // Organisers do not take themselves off (they answer no), nor someone not answering.
    let olu_id = id_of(&olu).await;
    let data = olu.data(REMOVE, json!({ "e": event, "m": olu_id })).await;
    assert_eq!(user_errors(&data["removeMeetupAttendee"]), vec![("memberId".into(), "INVALID".into())]);
    let data = olu.data(REMOVE, json!({ "e": event, "m": "not-an-id" })).await;
    assert_eq!(user_errors(&data["removeMeetupAttendee"]), vec![("memberId".into(), "NOT_FOUND".into())]);

    // An organiser lets Ada answer again: she is not put back, but may answer, and waits
    // like anyone, since it is full. Letting her back twice says she was not removed.
    let data = olu.data(READMIT, json!({ "e": event, "m": ada_id })).await;
    assert_eq!(data["readmitMeetupMember"]["userErrors"], json!([]), "{data}");
    let data = olu.data(READMIT, json!({ "e": event, "m": ada_id })).await;
    assert_eq!(user_errors(&data["readmitMeetupMember"]), vec![("memberId".into(), "NOT_FOUND".into())]);
    assert_eq!(people(&olu, &event).await.len(), 2);
    let back = answer(&ada, &event, true).await;
    assert_eq!(back["rsvp"], json!({ "status": "WAITLISTED", "waitlistPosition": 1, "removedByOrganisers": false }));
    let data = olu.data(PEOPLE, json!({ "id": event })).await;
    assert_eq!(data["node"]["removedMembers"], json!([{ "member": { "handle": "cy" } }]), "Cy is still off it");
    // Bea is left alone throughout.
    let data = bea.data(mine, json!({ "id": event })).await;
    assert_eq!(data["node"]["viewerRsvp"], json!({ "status": "GOING", "removedByOrganisers": false }));

    // Once it has ended, nobody is taken off.
    let number = number("MeetupEvent", &json!(event));
    app.execute_sql(&format!("UPDATE meetup_events SET starts_at = 1, ends_at = 2 WHERE id = {number}")).await;
    let data = olu.data(REMOVE, json!({ "e": event, "m": id_of(&bea).await })).await;
    assert_eq!(user_errors(&data["removeMeetupAttendee"]), vec![("eventId".into(), "INVALID".into())]);
}

async fn meetup_people_only_organisers_manage_the_people_and_nothing_changes_when_refused(app: TestApp) {
    let olu = app.member("olu@example.org", "Olu").await;
    let pat = app.member("pat@example.org", "Pat").await;
    let ada = app.member("ada@example.org", "Ada").await;
    let id = group(&olu, "TeaCamp North").await;
    // Pat belongs to the group but does not organise it.
    assert_eq!(pat.data(JOIN, json!({ "id": id })).await["joinMeetupGroup"]["userErrors"], json!([]));
    let event = schedule(&olu, fields(&id, Some(1))).await["id"].as_str().unwrap().to_string();
    answer(&ada, &event, true).await;
    answer(&pat, &event, true).await;
    let before = people(&olu, &event).await;
    let outbox = app.count("SELECT COUNT(*) FROM outbox_events").await;
    let (olu_id, ada_id) = (id_of(&olu).await, id_of(&ada).await);
    started(&app, &event).await;

    let anonymous = app.anonymous();
    for (client, expected) in [(&pat, "FORBIDDEN"), (&ada, "FORBIDDEN"), (&anonymous, "UNAUTHENTICATED")] {
        for (query, variables) in [
            (REMOVE, json!({ "e": event, "m": olu_id })),
            (READMIT, json!({ "e": event, "m": ada_id })),
            (ATTENDANCE, json!({ "e": event, "a": [olu_id] })),
            (MESSAGE, json!({ "e": event, "m": "Spam", "w": true })),
        ] {
            let body = client.gql(query, variables).await;
            assert_eq!(error_code(&body), expected, "{query}: {body}");
        }
        // The list of people itself is for organisers only.
        assert_eq!(error_code(&client.gql(PEOPLE, json!({ "id": event })).await), "FORBIDDEN");
    }
    assert_eq!(people(&olu, &event).await, before);
    assert_eq!(app.count("SELECT COUNT(*) FROM outbox_events").await, outbox);
    assert_eq!(app.count("SELECT COUNT(*) FROM meetup_rsvps WHERE attended_at IS NOT NULL").await, 0);
    // An organiser of another group is no organiser of this one.
    let other = app.member("oz@example.org", "Oz").await;
    group(&other, "TeaCamp South").await;
    assert_eq!(error_code(&other.gql(REMOVE, json!({ "e": event, "m": olu_id })).await), "FORBIDDEN");
    // An event that does not exist is a user error, for organisers and others alike.
    let unknown = crate::artefacts::unknown("MeetupEvent");
    let data = olu.data(REMOVE, json!({ "e": unknown, "m": ada_id })).await;
    assert_eq!(user_errors(&data["removeMeetupAttendee"]), vec![("id".into(), "NOT_FOUND".into())]);
}

async fn meetup_people_attendance_is_recorded_after_the_start_and_in_the_csv(app: TestApp) {
    let olu = app.member("olu@example.org", "Olu").await;
    let ada = app.member("ada@example.org", "Ada").await;
    let bea = app.member("bea@example.org", "Bea").await;
    let cy = app.member("cy@example.org", "Cy").await;
    let id = group(&olu, "TeaCamp North").await;
    let event = schedule(&olu, fields(&id, Some(3))).await["id"].as_str().unwrap().to_string();
    for client in [&ada, &bea, &cy] {
        answer(client, &event, true).await;
    }
    let (olu_id, ada_id, bea_id, cy_id) = (id_of(&olu).await, id_of(&ada).await, id_of(&bea).await, id_of(&cy).await);

    // Before it starts, nobody has come.
    let data = olu.data(ATTENDANCE, json!({ "e": event, "a": [ada_id] })).await;
    assert_eq!(user_errors(&data["recordMeetupAttendance"]), vec![("eventId".into(), "INVALID".into())]);
    started(&app, &event).await;
    // Only those going: Cy is waiting, so the whole list is refused and nothing is saved.
    let data = olu.data(ATTENDANCE, json!({ "e": event, "a": [ada_id, cy_id] })).await;
    assert_eq!(user_errors(&data["recordMeetupAttendance"]), vec![("attended".into(), "INVALID".into())]);
    let data = olu.data(ATTENDANCE, json!({ "e": event, "a": ["nonsense"] })).await;
    assert_eq!(user_errors(&data["recordMeetupAttendance"]), vec![("attended".into(), "NOT_FOUND".into())]);
    let too_many: Vec<String> = (0..10_001).map(|_| olu_id.clone()).collect();
    let data = olu.data(ATTENDANCE, json!({ "e": event, "a": too_many })).await;
    assert_eq!(user_errors(&data["recordMeetupAttendance"]), vec![("attended".into(), "TOO_LONG".into())]);
    assert_eq!(app.count("SELECT COUNT(*) FROM meetup_rsvps WHERE attended_at IS NOT NULL").await, 0);

    // Olu and Ada came (Ada listed twice counts once); Bea did not.
    let data = olu.data(ATTENDANCE, json!({ "e": event, "a": [olu_id, ada_id, ada_id] })).await;
    assert_eq!(data["recordMeetupAttendance"]["userErrors"], json!([]), "{data}");
    assert_eq!(
        people(&olu, &event).await,
        vec![
            person("olu", "GOING", true),
            person("ada", "GOING", true),
            person("bea", "GOING", false),
            person("cy", "WAITLISTED", false)
        ]
    );
    // Saving again replaces the list.
    let data = olu.data(ATTENDANCE, json!({ "e": event, "a": [bea_id] })).await;
    assert_eq!(data["recordMeetupAttendance"]["userErrors"], json!([]), "{data}");
    assert_eq!(
        people(&olu, &event).await.into_iter().filter(|p| p.2).map(|p| p.0).collect::<Vec<_>>(),
        vec!["bea".to_string()]
    );
    let data = olu.data(ATTENDANCE, json!({ "e": event, "a": [olu_id, bea_id] })).await;
    assert_eq!(data["recordMeetupAttendance"]["userErrors"], json!([]), "{data}");
    // A cancelled meetup had nobody come; what was saved before stays.
    let other = schedule(&olu, fields(&id, None)).await["id"].as_str().unwrap().to_string();
    started(&app, &other).await;
    olu.data("mutation($id: ID!) { cancelMeetup(input: { id: $id }) { userErrors { code } } }", json!({ "id": other }))
        .await;
    let data = olu.data(ATTENDANCE, json!({ "e": other, "a": [olu_id] })).await;
    assert_eq!(user_errors(&data["recordMeetupAttendance"]), vec![("eventId".into(), "INVALID".into())]);

    // A full hall: 1,200 going, 1,100 of whom came, saved in one go.
    let big = schedule(&olu, fields(&id, None)).await["id"].as_str().unwrap().to_string();
    let big_number = number("MeetupEvent", &json!(big));
    let now = kettle::db::now_millis();
    let members: Vec<String> = (0..1_200)
        .map(|i| format!("('hall{i}@example.org', 'hall{i}@example.org', 'hall-{i}', 'Hall {i}', {now}, {now})"))
        .collect();
    app.execute_sql(&format!(
        "INSERT INTO members (email, email_normalized, handle, display_name, created_at, updated_at) VALUES {}",
        members.join(", ")
    ))
    .await;
    app.execute_sql(&format!(
        "INSERT INTO meetup_rsvps (event_id, member_id, status, created_at, updated_at) \
         SELECT {big_number}, id, 'going', {now}, {now} FROM members WHERE email LIKE 'hall%@example.org'"
    ))
    .await;
    started(&app, &big).await;
    let hall: Vec<i64> =
        sqlx::query_scalar("SELECT id FROM members WHERE email LIKE 'hall%@example.org' ORDER BY id LIMIT 1100")
            .fetch_all(&app.state().db.pool)
            .await
            .unwrap();
    let came: Vec<String> =
        hall.iter().map(|id| kettle::graphql::relay::global_id("Member", *id).to_string()).collect();
    let data = olu.data(ATTENDANCE, json!({ "e": big, "a": came })).await;
    assert_eq!(data["recordMeetupAttendance"]["userErrors"], json!([]), "{data}");
    let attended =
        format!("SELECT COUNT(*) FROM meetup_rsvps WHERE event_id = {big_number} AND attended_at IS NOT NULL");
    assert_eq!(app.count(&attended).await, 1_100);

    // The CSV says who came among those going, and nothing for the waitlist.
    let mut browser = Browser::new(&app);
    browser.sign_in("olu@example.org", crate::support::PASSWORD).await;
    let number = number("MeetupEvent", &json!(event));
    let response = browser.http.get(app.url(&format!("/meetups/events/{number}/attendees.csv"))).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let csv = response.text().await.unwrap();
    let lines: Vec<&str> = csv.trim_start_matches('\u{feff}').split("\r\n").collect();
    assert_eq!(lines[0], "status,position,display name,handle,organisations,answered,attended");
    let ends: Vec<(&str, &str)> =
        lines[1..5].iter().map(|l| (l.split(',').nth(3).unwrap(), l.rsplit(',').next().unwrap())).collect();
    assert_eq!(ends, [("\"olu\"", "yes"), ("\"ada\"", "no"), ("\"bea\"", "yes"), ("\"cy\"", "")], "{csv}");
    // And the page shows the boxes ticked as saved.
    let page = browser.get(&format!("/meetups/events/{number}/attendees")).await;
    assert_eq!(page.body.matches("name=\"attended\"").count(), 3, "{}", page.body);
    assert_eq!(page.body.matches(" checked>").count(), 2, "{}", page.body);
}

async fn meetup_people_a_message_reaches_those_going_by_notification_and_mail_within_a_limit(app: TestApp) {
    let olu = app.verified_member("olu@example.org", "Olu").await;
    let ada = app.verified_member("ada@example.org", "Ada").await;
    let bea = app.verified_member("bea@example.org", "Bea").await;
    let id = group(&olu, "TeaCamp North").await;
    let event = schedule(&olu, fields(&id, Some(2))).await["id"].as_str().unwrap().to_string();
    let send = |message: &str, waitlist: bool| json!({ "e": event, "m": message, "w": waitlist });

    // Nobody but the organiser going: nobody to tell, and the limit is not spent.
    let data = olu.data(MESSAGE, send("Anyone?", false)).await;
    assert_eq!(user_errors(&data["messageMeetupAttendees"]), vec![("message".into(), "INVALID".into())]);
    answer(&ada, &event, true).await;
    answer(&bea, &event, true).await;
    let outbox = app.count("SELECT COUNT(*) FROM outbox_events").await;
    // Bounded and checked: empty, too long, control characters.
    let data = olu.data(MESSAGE, send("  ", false)).await;
    assert_eq!(user_errors(&data["messageMeetupAttendees"]), vec![("message".into(), "BLANK".into())]);
    let data = olu.data(MESSAGE, send(&"x".repeat(1_001), false)).await;
    assert_eq!(user_errors(&data["messageMeetupAttendees"]), vec![("message".into(), "TOO_LONG".into())]);
    assert!(olu.gql(MESSAGE, send("Bell\u{7}", false)).await["errors"].is_array());
    assert_eq!(app.count("SELECT COUNT(*) FROM outbox_events").await, outbox, "nothing was sent");

    // To those going: Ada, not Bea (waiting), nor Olu who wrote it.
    let after = last_notification(&app).await;
    let data = olu.data(MESSAGE, send("We are in room 2 tonight.", false)).await;
    assert_eq!(data["messageMeetupAttendees"], json!({ "recipients": 1, "userErrors": [] }));
    let summary = "Olu wrote about “TeaCamp Leeds”: We are in room 2 tonight.".to_string();
    assert_eq!(told_since(&app, after).await, vec![("ada".into(), "MEETUP_MESSAGE".into(), summary.clone())]);
    // With the waitlist: both.
    let after = last_notification(&app).await;
    let data = olu.data(MESSAGE, send(&"y".repeat(1_000), true)).await;
    assert_eq!(data["messageMeetupAttendees"]["recipients"], 2, "{data}");
    let told: Vec<String> = told_since(&app, after).await.into_iter().map(|(h, _, _)| h).collect();
    assert_eq!(told, ["ada", "bea"]);
    // By mail, to those who chose it (the default).
    sweep_later(&app).await;
    let mail = mailbox::wait_for(&app, "ada@example.org", |m| m.subject.contains("room 2")).await;
    assert!(mail.text.contains("We are in room 2 tonight."), "{}", mail.text);
    mailbox::wait_for(&app, "bea@example.org", |m| m.subject.contains("Olu wrote about")).await;
    assert!(mailbox::to(&app, "bea@example.org").iter().all(|m| !m.subject.contains("room 2")));

    // Three a day per meetup, whichever organiser writes: the fourth is refused, and
    // nothing is recorded for it.
    let data = olu.data(MESSAGE, send("Third", false)).await;
    assert_eq!(data["messageMeetupAttendees"]["userErrors"], json!([]), "{data}");
    let outbox = app.count("SELECT COUNT(*) FROM outbox_events").await;
    let body = olu.gql(MESSAGE, send("Fourth", false)).await;
    assert_eq!(error_code(&body), "RATE_LIMITED", "{body}");
    assert_eq!(app.count("SELECT COUNT(*) FROM outbox_events").await, outbox);
    // Another meetup has its own count.
    let other = schedule(&olu, fields(&id, None)).await["id"].as_str().unwrap().to_string();
    answer(&ada, &other, true).await;
    let data = olu.data(MESSAGE, json!({ "e": other, "m": "Hello", "w": false })).await;
    assert_eq!(data["messageMeetupAttendees"]["recipients"], 1, "{data}");
    // One the moderators hid sends nothing.
    let hidden = schedule(&olu, fields(&id, None)).await["id"].as_str().unwrap().to_string();
    answer(&ada, &hidden, true).await;
    let hidden_number = number("MeetupEvent", &json!(hidden));
    app.execute_sql(&format!("UPDATE meetup_events SET hidden_at = 1 WHERE id = {hidden_number}")).await;
    let data = olu.data(MESSAGE, json!({ "e": hidden, "m": "Hello", "w": false })).await;
    assert_eq!(user_errors(&data["messageMeetupAttendees"]), vec![("eventId".into(), "INVALID".into())]);
    // A cancelled meetup told its people with the cancellation.
    let cancel = "mutation($id: ID!) { cancelMeetup(input: { id: $id }) { userErrors { code } } }";
    olu.data(cancel, json!({ "id": other })).await;
    let data = olu.data(MESSAGE, json!({ "e": other, "m": "Hello", "w": false })).await;
    assert_eq!(user_errors(&data["messageMeetupAttendees"]), vec![("eventId".into(), "INVALID".into())]);
}

// ---------------------------------------------------------------------------------------
// Through the site.

/// The values of `attribute="…"` that follow `marker` in `html`, in order.
fn values_after(html: &str, marker: &str) -> Vec<String> {
    html.match_indices(marker)
        .map(|(at, _)| {
            let rest = &html[at + marker.len()..];
            let start = rest.find("value=\"").unwrap() + 7;
            rest[start..start + rest[start..].find('"').unwrap()].to_string()
        })
        .collect()
}

async fn meetup_people_the_site_asks_before_taking_someone_off_and_lets_them_back(app: TestApp) {
    let mut olu = Browser::new(&app);
    olu.register("olu@example.org", "Olu").await;
    // The schedule form offers "I'm going", ticked.
    let event = organise_a_meetup(&mut olu, "TeaCamp North", "2").await;
    let form = olu.get("/meetups/groups/teacamp-north/schedule").await;
    assert!(
        form.body.contains("id=\"going\" name=\"going\" value=\"1\" aria-describedby=\"going-hint\" checked"),
        "{}",
        form.body
    );
    // The helper's form sent no box (unticked): the organiser is not going.
    let going = "SELECT COUNT(*) FROM meetup_rsvps WHERE status = 'going'";
    assert_eq!(app.count(going).await, 0);
    let mut pat = Browser::new(&app);
    pat.register("pat@example.org", "Pat").await;
    pat.get(&event).await;
    pat.post(&format!("{event}/rsvp"), &[("going", "1")]).await;
    let mut ada = Browser::new(&app);
    ada.register("ada@example.org", "Ada").await;
    ada.get(&event).await;
    ada.post(&format!("{event}/rsvp"), &[("going", "1")]).await;
    assert_eq!(app.count(going).await, 2);

    // The list links to a page that asks first, and changes nothing.
    let list = olu.get(&format!("{event}/attendees")).await;
    assert!(list.body.contains(&format!("href=\"{event}/remove/pat\"")), "{}", list.body);
    let ask = olu.get(&format!("{event}/remove/pat")).await;
    assert_eq!(ask.status, StatusCode::OK);
    assert!(
        ask.body.contains("Take Pat off this meetup?") && ask.body.contains("Their seat becomes free."),
        "{}",
        ask.body
    );
    assert_eq!(app.count(going).await, 2, "asking changes nothing");
    // Not for anyone else: Ada is no organiser.
    assert_eq!(ada.get(&format!("{event}/remove/pat")).await.status, StatusCode::FORBIDDEN);
    // Someone not going: back to the list.
    assert_eq!(olu.get(&format!("{event}/remove/nobody")).await.location(), format!("{event}/attendees"));

    let member = values_after(&ask.body, "name=\"member\"").remove(0);
    let done = olu.post(&format!("{event}/remove/pat"), &[("member", &member)]).await;
    assert_eq!(done.location(), format!("{event}/attendees?note=removed"));
    assert_eq!(app.count(going).await, 1);
    let list = olu.get(done.location()).await;
    assert!(
        list.body.contains("They are off the meetup") && list.body.contains("Taken off this meetup"),
        "{}",
        list.body
    );
    // Sent twice (a second tab): explained on the page, nothing more changes.
    olu.get(&format!("{event}/attendees")).await;
    let again = olu.post(&format!("{event}/remove/pat"), &[("member", &member)]).await;
    assert_eq!(again.location(), format!("{event}/attendees"), "not going any more: back to the list");

    // Pat is told on the meetup's page, and cannot answer going.
    let page = pat.get(&event).await;
    assert!(page.body.contains("The organisers took you off this meetup"), "{}", page.body);
    assert!(!page.body.contains("I'm going</button>"), "{}", page.body);
    let refused = pat.post(&format!("{event}/rsvp"), &[("going", "1")]).await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(refused.body.contains("cannot say you are going"), "{}", refused.body);
    assert_eq!(app.count(going).await, 1);

    // Only organisers let someone back; then Pat may answer again.
    let list = olu.get(&format!("{event}/attendees")).await;
    assert_eq!(values_after(&list.body, "name=\"member\""), vec![member.as_str()], "{}", list.body);
    ada.get(&event).await;
    let forbidden = ada.post(&format!("{event}/readmit"), &[("member", &member)]).await;
    assert_eq!(forbidden.status, StatusCode::FORBIDDEN);
    let back = olu.post(&format!("{event}/readmit"), &[("member", &member)]).await;
    assert_eq!(back.location(), format!("{event}/attendees?note=readmitted"));
    let again = olu.post(&format!("{event}/readmit"), &[("member", &member)]).await;
    assert_eq!(again.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(again.body.contains("They were not taken off this meetup."), "{}", again.body);
    pat.get(&event).await;
    assert_eq!(pat.post(&format!("{event}/rsvp"), &[("going", "1")]).await.location(), event);
    assert_eq!(app.count(going).await, 2);
}

async fn meetup_people_the_site_records_who_came_and_writes_to_those_going(app: TestApp) {
    let mut olu = Browser::new(&app);
    olu.register("olu@example.org", "Olu").await;
    let event = organise_a_meetup(&mut olu, "TeaCamp North", "").await;
    let mut pat = Browser::new(&app);
    pat.register("pat@example.org", "Pat").await;
    pat.get(&event).await;
    pat.post(&format!("{event}/rsvp"), &[("going", "1")]).await;

    // Before it starts there is nothing to tick; writing to those going is offered.
    let list = olu.get(&format!("{event}/attendees")).await;
    assert!(!list.body.contains("Save who came") && list.body.contains("Write to those going"), "{}", list.body);
    // An empty message is explained beside the field.
    let refused = olu.post(&format!("{event}/message"), &[("message", "")]).await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        refused.body.contains("Enter your message.") && refused.body.contains("href=\"#message\""),
        "{}",
        refused.body
    );
    let sent = olu.post(&format!("{event}/message"), &[("message", "Doors open at 5.")]).await;
    assert_eq!(sent.location(), format!("{event}/attendees?note=sent&to=1"));
    assert!(olu.get(sent.location()).await.body.contains("Your message is on its way to 1 person."));
    dispatched(&app).await;
    assert_eq!(app.count("SELECT COUNT(*) FROM notifications WHERE kind = 'meetup_message'").await, 1);

    // Once started: one form of checkboxes.
    let number: i64 = event.trim_start_matches("/meetups/events/").parse().unwrap();
    let id = kettle::graphql::relay::global_id("MeetupEvent", number).to_string();
    started(&app, &id).await;
    let list = olu.get(&format!("{event}/attendees")).await;
    assert!(list.body.contains("Save who came"), "{}", list.body);
    let boxes = values_after(&list.body, "name=\"attended\"");
    assert_eq!(boxes.len(), 1, "Pat is the one going: {}", list.body);
    let saved = olu.post(&format!("{event}/attendance"), &[("attended", &boxes[0])]).await;
    assert_eq!(saved.location(), format!("{event}/attendees?note=attendance"));
    let list = olu.get(saved.location()).await;
    assert!(list.body.contains("Saved who came.") && list.body.contains(" checked>"), "{}", list.body);
    assert_eq!(app.count("SELECT COUNT(*) FROM meetup_rsvps WHERE attended_at IS NOT NULL").await, 1);
    // Nothing ticked: nobody came.
    olu.post(&format!("{event}/attendance"), &[]).await;
    assert_eq!(app.count("SELECT COUNT(*) FROM meetup_rsvps WHERE attended_at IS NOT NULL").await, 0);
    // Someone not going is refused, on the page, with what was ticked kept.
    let refused = olu.post(&format!("{event}/attendance"), &[("attended", &crate::artefacts::unknown("Member"))]).await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(refused.body.contains("href=\"#attendance-heading\""), "{}", refused.body);
    // Pat is no organiser.
    pat.get(&event).await;
    assert_eq!(
        pat.post(&format!("{event}/attendance"), &[("attended", &boxes[0])]).await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(pat.post(&format!("{event}/message"), &[("message", "Hi")]).await.status, StatusCode::FORBIDDEN);
}
