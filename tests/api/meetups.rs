//! Meetups through the API: groups, events with local times, RSVPs with a waitlist that
//! stays fair under load, and the outbox events reminders and change notices come from.

use futures_util::future::join_all;
use serde_json::{json, Value};

use crate::{
    scenarios,
    support::{error_code, user_errors, Client, Scenario, TestApp},
};

pub fn scenarios() -> Vec<(&'static str, Scenario)> {
    scenarios![
        groups_have_organisers_and_members,
        events_keep_local_time_and_validate_their_fields,
        a_full_event_waitlists_and_promotes_in_order,
        simultaneous_rsvps_never_exceed_capacity_or_promote_twice,
        changes_bump_the_sequence_and_rearm_reminders,
        calendar_feeds_follow_changes_and_keep_cancellations,
        series_keep_wall_clock_time_and_roll_forward,
        agendas_are_ordered_and_link_case_studies,
        a_meetup_is_copied_to_a_new_date_with_its_agenda,
        organisers_see_who_answered_when_and_from_which_organisation,
        the_meetup_journey_through_the_api,
    ]
}

const CREATE_GROUP: &str = "mutation($input: CreateMeetupGroupInput!) { createMeetupGroup(input: $input) { group { id slug viewerRole } userErrors { field code } } }";
const SCHEDULE: &str = "mutation($input: ScheduleMeetupInput!) { scheduleMeetup(input: $input) { event { id localStart startsAt endsAt timeZone capacity sequence status } userErrors { field code message } } }";
const UPDATE: &str = "mutation($input: UpdateMeetupInput!) { updateMeetup(input: $input) { event { id startsAt sequence capacity goingCount } userErrors { field code } } }";
const RSVP: &str = "mutation($id: ID!, $going: Boolean!) { rsvp(input: { eventId: $id, going: $going }) { rsvp { status waitlistPosition } event { goingCount seatsLeft } userErrors { field code message } } }";
const EVENT: &str = "query($id: ID!) { node(id: $id) { ... on MeetupEvent { goingCount onlineUrl isOnline viewerRsvp { status waitlistPosition } } } }";

async fn group(organiser: &Client, name: &str) -> String {
    let data = organiser.data(CREATE_GROUP, json!({ "input": { "name": name, "region": "North West" } })).await;
    assert_eq!(data["createMeetupGroup"]["userErrors"], json!([]), "{data}");
    data["createMeetupGroup"]["group"]["id"].as_str().unwrap().to_string()
}

/// The organiser is not going (these scenarios are about members' answers; that the
/// organiser goes unless they say no is `meetup_people`'s).
fn event_input(group_id: &str, start: &str, end: &str, capacity: Option<i64>) -> Value {
    json!({
        "groupId": group_id,
        "going": false,
        "title": "TeaCamp Manchester",
        "description": "Tea, cake and *talking shop*.",
        "timeZone": "Europe/London",
        "start": start,
        "end": end,
        "venueName": "The Federation",
        "venueAddress": "Federation Street, Manchester",
        "onlineUrl": "https://meet.example.org/teacamp",
        "capacity": capacity,
    })
}

async fn schedule(organiser: &Client, input: Value) -> Value {
    let data = organiser.data(SCHEDULE, json!({ "input": input })).await;
    assert_eq!(data["scheduleMeetup"]["userErrors"], json!([]), "{data}");
    data["scheduleMeetup"]["event"].clone()
}

async fn rsvp(client: &Client, id: &str, going: bool) -> Value {
    let data = client.data(RSVP, json!({ "id": id, "going": going })).await;
    assert_eq!(data["rsvp"]["userErrors"], json!([]), "{data}");
    data["rsvp"].clone()
}

async fn groups_have_organisers_and_members(app: TestApp) {
    let olu = app.member("olu@example.org", "Olu").await;
    let pat = app.member("pat@example.org", "Pat").await;
    let bad = olu.data(CREATE_GROUP, json!({ "input": { "name": "", "region": "" } })).await;
    assert_eq!(
        user_errors(&bad["createMeetupGroup"]),
        vec![("name".into(), "BLANK".into()), ("region".into(), "BLANK".into())]
    );
    assert_eq!(app.count("SELECT COUNT(*) FROM meetup_groups").await, 0);
    let data = olu.data(CREATE_GROUP, json!({ "input": { "name": "TeaCamp North", "region": "North West" } })).await;
    let created = &data["createMeetupGroup"]["group"];
    assert_eq!(created["slug"], "teacamp-north");
    assert_eq!(created["viewerRole"], "ORGANISER");
    let id = created["id"].as_str().unwrap();

    const JOIN: &str =
        "mutation($id: ID!) { joinMeetupGroup(input: { groupId: $id }) { group { viewerRole memberCount } } }";
    const LEAVE: &str =
        "mutation($id: ID!) { leaveMeetupGroup(input: { groupId: $id }) { userErrors { field code } } }";
    let joined = pat.data(JOIN, json!({ "id": id })).await;
    assert_eq!(joined["joinMeetupGroup"]["group"], json!({ "viewerRole": "MEMBER", "memberCount": 2 }));
    // Only organisers schedule; the last organiser cannot leave.
    let refused =
        pat.gql(SCHEDULE, json!({ "input": event_input(id, "2030-01-10T18:00", "2030-01-10T20:00", None) })).await;
    assert_eq!(error_code(&refused), "FORBIDDEN");
    assert_eq!(
        user_errors(&olu.data(LEAVE, json!({ "id": id })).await["leaveMeetupGroup"]),
        vec![("groupId".into(), "INVALID".into())]
    );
    const CO: &str =
        "mutation($id: ID!) { addCoOrganiser(input: { groupId: $id, handle: \"pat\" }) { userErrors { code } } }";
    olu.data(CO, json!({ "id": id })).await;
    assert_eq!(olu.data(LEAVE, json!({ "id": id })).await["leaveMeetupGroup"]["userErrors"], json!([]));
    schedule(&pat, event_input(id, "2030-01-10T18:00", "2030-01-10T20:00", None)).await;
    assert_eq!(app.count("SELECT COUNT(*) FROM outbox_events WHERE kind = 'meetup.scheduled'").await, 1);
}

async fn events_keep_local_time_and_validate_their_fields(app: TestApp) {
    let olu = app.member("olu@example.org", "Olu").await;
    let id = group(&olu, "TeaCamp North").await;
    // Winter (GMT) and summer (BST): the same 16:00 local is an hour apart in UTC.
    let winter = schedule(&olu, event_input(&id, "2030-01-10T16:00", "2030-01-10T18:00", None)).await;
    assert_eq!(winter["startsAt"], "2030-01-10T16:00:00Z");
    assert_eq!(winter["localStart"], "2030-01-10T16:00:00");
    let summer = schedule(&olu, event_input(&id, "2030-07-11T16:00", "2030-07-11T18:00", None)).await;
    assert_eq!(summer["startsAt"], "2030-07-11T15:00:00Z");
    // 01:30 on the morning the clocks go forward does not exist: it means just after the gap.
    let gap = schedule(&olu, event_input(&id, "2030-03-31T01:30", "2030-03-31T03:30", None)).await;
    assert_eq!(gap["startsAt"], "2030-03-31T01:30:00Z");
    // 01:30 on the morning the clocks go back happens twice: it means the first.
    let overlap = schedule(&olu, event_input(&id, "2030-10-27T01:30", "2030-10-27T03:00", None)).await;
    assert_eq!(overlap["startsAt"], "2030-10-27T00:30:00Z");

    let mut bad = event_input(&id, "next thursday", "2030-01-10T15:00", Some(0));
    bad["timeZone"] = json!("Mars/Olympus_Mons");
    bad["onlineUrl"] = json!("javascript:alert(1)");
    bad["title"] = json!("");
    let refused = olu.data(SCHEDULE, json!({ "input": bad })).await;
    let mut fields: Vec<String> = user_errors(&refused["scheduleMeetup"]).into_iter().map(|(f, _)| f).collect();
    fields.sort();
    assert_eq!(fields, ["capacity", "onlineUrl", "start", "timeZone", "title"], "{refused}");
    let backwards =
        olu.data(SCHEDULE, json!({ "input": event_input(&id, "2030-01-10T18:00", "2030-01-10T17:00", None) })).await;
    assert_eq!(user_errors(&backwards["scheduleMeetup"]), vec![("end".into(), "INVALID".into())]);
    let mut nowhere = event_input(&id, "2030-01-10T18:00", "2030-01-10T19:00", None);
    nowhere["venueName"] = json!("");
    nowhere["venueAddress"] = json!("");
    nowhere["onlineUrl"] = Value::Null;
    let nowhere = olu.data(SCHEDULE, json!({ "input": nowhere })).await;
    assert_eq!(user_errors(&nowhere["scheduleMeetup"]), vec![("venueName".into(), "BLANK".into())]);
    assert_eq!(app.count("SELECT COUNT(*) FROM meetup_events").await, 4);

    // The online link is for those going (and organisers) only.
    let pat = app.member("pat@example.org", "Pat").await;
    let event_id = winter["id"].as_str().unwrap();
    let seen = pat.data(EVENT, json!({ "id": event_id })).await;
    assert_eq!(seen["node"]["onlineUrl"], Value::Null);
    assert_eq!(seen["node"]["isOnline"], true);
    assert_eq!(app.anonymous().data(EVENT, json!({ "id": event_id })).await["node"]["onlineUrl"], Value::Null);
    rsvp(&pat, event_id, true).await;
    let going = pat.data(EVENT, json!({ "id": event_id })).await;
    assert_eq!(going["node"]["onlineUrl"], "https://meet.example.org/teacamp");
}

async fn a_full_event_waitlists_and_promotes_in_order(app: TestApp) {
    let olu = app.member("olu@example.org", "Olu").await;
    let id = group(&olu, "TeaCamp North").await;
    let event = schedule(&olu, event_input(&id, "2030-01-10T16:00", "2030-01-10T18:00", Some(1))).await;
    let event_id = event["id"].as_str().unwrap();
    let ada = app.member("ada@example.org", "Ada").await;
    let bea = app.member("bea@example.org", "Bea").await;
    let cal = app.member("cal@example.org", "Cal").await;
    assert_eq!(rsvp(&ada, event_id, true).await["rsvp"], json!({ "status": "GOING", "waitlistPosition": null }));
    assert_eq!(rsvp(&bea, event_id, true).await["rsvp"], json!({ "status": "WAITLISTED", "waitlistPosition": 1 }));
    assert_eq!(rsvp(&cal, event_id, true).await["rsvp"], json!({ "status": "WAITLISTED", "waitlistPosition": 2 }));
    // Answering again changes nothing and keeps the place in the queue.
    assert_eq!(rsvp(&bea, event_id, true).await["rsvp"]["waitlistPosition"], 1);
    assert_eq!(app.count("SELECT COUNT(*) FROM meetup_rsvps").await, 3);

    // Ada drops out: Bea (first in line) is promoted, once, and Cal moves up.
    let dropped = rsvp(&ada, event_id, false).await;
    assert_eq!(dropped["rsvp"]["status"], "NOT_GOING");
    assert_eq!(dropped["event"]["goingCount"], 1);
    assert_eq!(bea.data(EVENT, json!({ "id": event_id })).await["node"]["viewerRsvp"]["status"], "GOING");
    assert_eq!(cal.data(EVENT, json!({ "id": event_id })).await["node"]["viewerRsvp"]["waitlistPosition"], 1);
    assert_eq!(app.count("SELECT COUNT(*) FROM outbox_events WHERE kind = 'meetup.rsvp_promoted'").await, 1);

    // The organiser raises the capacity: Cal is promoted too.
    let mut raised = event_input(&id, "2030-01-10T16:00", "2030-01-10T18:00", Some(3));
    raised.as_object_mut().unwrap().remove("groupId");
    raised.as_object_mut().unwrap().remove("going");
    raised["id"] = json!(event_id);
    let updated = olu.data(UPDATE, json!({ "input": raised })).await;
    assert_eq!(updated["updateMeetup"]["event"]["goingCount"], 2, "{updated}");
    assert_eq!(app.count("SELECT COUNT(*) FROM outbox_events WHERE kind = 'meetup.rsvp_promoted'").await, 2);
    const PEOPLE: &str =
        "query($id: ID!) { node(id: $id) { ... on MeetupEvent { attendees { handle } waitlist { handle } } } }";
    let people = olu.data(PEOPLE, json!({ "id": event_id })).await;
    assert_eq!(people["node"]["attendees"], json!([{ "handle": "bea" }, { "handle": "cal" }]));
    assert_eq!(error_code(&bea.gql(PEOPLE, json!({ "id": event_id })).await), "FORBIDDEN");

    // A cancelled event takes no answers.
    olu.data(
        "mutation($id: ID!) { cancelMeetup(input: { id: $id }) { event { status sequence } } }",
        json!({ "id": event_id }),
    )
    .await;
    let late = ada.data(RSVP, json!({ "id": event_id, "going": true })).await;
    assert_eq!(user_errors(&late["rsvp"]), vec![("eventId".into(), "INVALID".into())]);
}

async fn simultaneous_rsvps_never_exceed_capacity_or_promote_twice(app: TestApp) {
    let olu = app.member("olu@example.org", "Olu").await;
    let id = group(&olu, "TeaCamp North").await;
    let event = schedule(&olu, event_input(&id, "2030-01-10T16:00", "2030-01-10T18:00", Some(3))).await;
    let event_id = event["id"].as_str().unwrap().to_string();
    let mut members = Vec::new();
    for i in 0..16 {
        members.push(app.member(&format!("m{i}@example.org"), &format!("Member {i}")).await);
    }
    // Everyone answers at once for three seats.
    let answers = join_all(members.iter().map(|m| m.data(RSVP, json!({ "id": event_id, "going": true })))).await;
    let going = answers.iter().filter(|a| a["rsvp"]["rsvp"]["status"] == "GOING").count();
    assert_eq!(going, 3, "exactly the capacity goes");
    let count = |status: &str| format!("SELECT COUNT(*) FROM meetup_rsvps WHERE status = '{status}'");
    assert_eq!(app.count(&count("going")).await, 3);
    assert_eq!(app.count(&count("waitlisted")).await, 13);
    assert_eq!(app.count("SELECT going_count FROM meetup_events").await, 3);
    let mut positions: Vec<i64> =
        answers.iter().filter_map(|a| a["rsvp"]["rsvp"]["waitlistPosition"].as_i64()).collect();
    positions.sort();
    assert_eq!(positions, (1..=13).collect::<Vec<i64>>(), "each waitlisted member has their own place");

    // The three going drop out at once, while the waitlisted answer again: exactly three
    // are promoted, each once, and the seats stay within capacity.
    let leaving: Vec<&Client> =
        members.iter().zip(&answers).filter(|(_, a)| a["rsvp"]["rsvp"]["status"] == "GOING").map(|(m, _)| m).collect();
    let again: Vec<&Client> =
        members.iter().zip(&answers).filter(|(_, a)| a["rsvp"]["rsvp"]["status"] != "GOING").map(|(m, _)| m).collect();
    let drops = join_all(leaving.iter().map(|m| m.data(RSVP, json!({ "id": event_id, "going": false }))));
    let repeats = join_all(again.iter().map(|m| m.data(RSVP, json!({ "id": event_id, "going": true }))));
    futures_util::future::join(drops, repeats).await;
    assert_eq!(app.count(&count("going")).await, 3);
    assert_eq!(app.count("SELECT going_count FROM meetup_events").await, 3);
    assert_eq!(app.count("SELECT COUNT(*) FROM outbox_events WHERE kind = 'meetup.rsvp_promoted'").await, 3);
    assert_eq!(
        app.count(
            "SELECT COUNT(*) FROM (SELECT subject_id, payload FROM outbox_events WHERE kind = 'meetup.rsvp_promoted' \
             GROUP BY subject_id, payload HAVING COUNT(*) > 1) AS twice"
        )
        .await,
        0,
        "nobody is promoted twice"
    );
}

async fn changes_bump_the_sequence_and_rearm_reminders(app: TestApp) {
    let olu = app.member("olu@example.org", "Olu").await;
    let id = group(&olu, "TeaCamp North").await;
    // Starts in about 12 hours: its reminder is due now.
    let soon = jiff::Timestamp::now().checked_add(jiff::SignedDuration::from_hours(12)).unwrap();
    let local = soon.to_zoned(jiff::tz::TimeZone::get("Europe/London").unwrap()).datetime();
    let start = local.strftime("%Y-%m-%dT%H:%M").to_string();
    let end = local.checked_add(jiff::SignedDuration::from_hours(2)).unwrap().strftime("%Y-%m-%dT%H:%M").to_string();
    let event = schedule(&olu, event_input(&id, &start, &end, None)).await;
    let event_id = event["id"].as_str().unwrap();
    let db = &app.state().db;
    let now = jiff::Timestamp::now().as_millisecond();
    assert_eq!(kettle::meetups::events::record_due_reminders(db, now).await.unwrap(), 1);
    assert_eq!(kettle::meetups::events::record_due_reminders(db, now).await.unwrap(), 0, "never twice");

    // Editing the title alone changes nothing calendars care about.
    let mut input = event_input(&id, &start, &end, None);
    input.as_object_mut().unwrap().remove("groupId");
    input.as_object_mut().unwrap().remove("going");
    input["id"] = json!(event_id);
    input["title"] = json!("TeaCamp Manchester (with cake)");
    let retitled = olu.data(UPDATE, json!({ "input": input.clone() })).await;
    assert_eq!(retitled["updateMeetup"]["event"]["sequence"], 0);
    assert_eq!(kettle::meetups::events::record_due_reminders(db, now).await.unwrap(), 0);
    // Moving it an hour later bumps SEQUENCE, announces the change, and re-arms the reminder.
    let later = local.checked_add(jiff::SignedDuration::from_hours(1)).unwrap();
    input["start"] = json!(later.strftime("%Y-%m-%dT%H:%M").to_string());
    let moved = olu.data(UPDATE, json!({ "input": input })).await;
    assert_eq!(moved["updateMeetup"]["event"]["sequence"], 1, "{moved}");
    assert_eq!(app.count("SELECT COUNT(*) FROM outbox_events WHERE kind = 'meetup.changed'").await, 1);
    assert_eq!(kettle::meetups::events::record_due_reminders(db, now).await.unwrap(), 1);
    let cancelled = olu
        .data(
            "mutation($id: ID!) { cancelMeetup(input: { id: $id }) { event { status sequence } } }",
            json!({ "id": event_id }),
        )
        .await;
    assert_eq!(cancelled["cancelMeetup"]["event"], json!({ "status": "CANCELLED", "sequence": 2 }));
    assert_eq!(app.count("SELECT COUNT(*) FROM outbox_events WHERE kind = 'meetup.reminder_due'").await, 2);
}

/// The VEVENTs of a feed, read by an independent parser, as property maps.
fn parse_feed(text: &str) -> Vec<std::collections::HashMap<String, String>> {
    let unfolded = icalendar::parser::unfold(text);
    let calendar = icalendar::parser::read_calendar(&unfolded).unwrap_or_else(|e| panic!("{e}\n{text}"));
    calendar
        .components
        .iter()
        .filter(|c| c.name == "VEVENT")
        .map(|c| {
            c.properties
                .iter()
                .map(|p| {
                    let tzid = p.params.iter().find(|param| param.key == "TZID").and_then(|param| param.val.as_ref());
                    let name = match tzid {
                        Some(tz) => format!("{};TZID={}", p.name, tz.as_str()),
                        None => p.name.to_string(),
                    };
                    (name, p.val.to_string())
                })
                .collect()
        })
        .collect()
}

async fn calendar_feeds_follow_changes_and_keep_cancellations(app: TestApp) {
    let olu = app.member("olu@example.org", "Olu").await;
    let pat = app.member("pat@example.org", "Pat").await;
    let id = group(&olu, "TeaCamp North").await;
    let slug = "teacamp-north";
    let first = schedule(&olu, event_input(&id, "2030-03-14T16:00", "2030-03-14T18:00", None)).await;
    let second = schedule(&olu, event_input(&id, "2030-04-11T16:00", "2030-04-11T18:00", None)).await;
    let (first_id, second_id) = (first["id"].as_str().unwrap(), second["id"].as_str().unwrap());
    rsvp(&pat, first_id, true).await;
    rsvp(&pat, second_id, true).await;

    const RESET: &str = "mutation { resetCalendarFeed { url } }";
    let url = pat.data(RESET, json!({})).await["resetCalendarFeed"]["url"].as_str().unwrap().to_string();
    let fetch = |url: String| async move {
        let response = reqwest::get(&url).await.unwrap();
        let status = response.status().as_u16();
        let kind = response.headers().get("content-type").map(|v| v.to_str().unwrap().to_string()).unwrap_or_default();
        (status, kind, response.text().await.unwrap())
    };
    let (status, kind, feed) = fetch(url.clone()).await;
    assert_eq!((status, kind.as_str()), (200, "text/calendar; charset=utf-8"));
    let events = parse_feed(&feed);
    assert_eq!(events.len(), 2, "{feed}");
    assert_eq!(events[0]["DTSTART;TZID=Europe/London"], "20300314T160000");
    assert_eq!(events[0]["SEQUENCE"], "0");
    assert!(events[0]["DESCRIPTION"].contains("https://meet.example.org/teacamp"), "those going get the link");
    assert!(feed.contains("BEGIN:VTIMEZONE\r\nTZID:Europe/London"), "{feed}");
    let uid = events[0]["UID"].clone();

    // The organiser moves the first and cancels the second: the feed follows, with a
    // higher SEQUENCE, the same UID, and the cancelled one kept as cancelled.
    let mut moved = event_input(&id, "2030-03-14T17:00", "2030-03-14T19:00", None);
    moved.as_object_mut().unwrap().remove("groupId");
    moved.as_object_mut().unwrap().remove("going");
    moved["id"] = json!(first_id);
    olu.data(UPDATE, json!({ "input": moved })).await;
    olu.data(
        "mutation($id: ID!) { cancelMeetup(input: { id: $id }) { event { status } } }",
        json!({ "id": second_id }),
    )
    .await;
    let events = parse_feed(&fetch(url.clone()).await.2);
    assert_eq!(events[0]["UID"], uid);
    assert_eq!(events[0]["DTSTART;TZID=Europe/London"], "20300314T170000");
    assert_eq!(events[0]["SEQUENCE"], "1");
    assert_eq!(events[1]["STATUS"], "CANCELLED");
    assert_eq!(events[1]["SEQUENCE"], "1");

    // The group's feed is public, without the online links; one event has its own.
    let base = url.split("/calendars/").next().unwrap().to_string();
    let (status, _, group_feed) = fetch(format!("{base}/calendars/groups/{slug}.ics")).await;
    assert_eq!(status, 200);
    let group_events = parse_feed(&group_feed);
    assert_eq!(group_events.len(), 2);
    assert!(!group_feed.contains("meet.example.org"), "{group_feed}");
    let number = first_id.to_string();
    let global = kettle::graphql::relay::parse_global_id(&number).unwrap().1;
    assert_eq!(parse_feed(&fetch(format!("{base}/calendars/events/{global}.ics")).await.2).len(), 1);

    // Resetting the address retires the old one.
    let fresh = pat.data(RESET, json!({})).await["resetCalendarFeed"]["url"].as_str().unwrap().to_string();
    assert_ne!(fresh, url);
    assert_eq!(fetch(url).await.0, 404);
    assert_eq!(fetch(fresh).await.0, 200);
    assert_eq!(fetch(format!("{base}/calendars/personal/kcal_guess.ics")).await.0, 404);
}

async fn series_keep_wall_clock_time_and_roll_forward(app: TestApp) {
    const SERIES: &str = "mutation($input: ScheduleMeetupSeriesInput!) { scheduleMeetupSeries(input: $input) { description events { id localStart startsAt series } userErrors { field code message } } }";
    let olu = app.member("olu@example.org", "Olu").await;
    let id = group(&olu, "TeaCamp North").await;
    // Weekly on Thursdays at 16:00 London, across the clocks going forward on 28 March 2027.
    let mut input = event_input(&id, "2027-03-18T16:00", "2027-03-18T18:00", None);
    input["recurrence"] = json!({ "frequency": "WEEKLY", "count": 4 });
    let data = olu.data(SERIES, json!({ "input": input })).await;
    let series = &data["scheduleMeetupSeries"];
    assert_eq!(series["userErrors"], json!([]), "{data}");
    assert_eq!(series["description"], "Every week on Thursday at 16:00 (Europe/London), 4 times");
    let starts: Vec<&str> =
        series["events"].as_array().unwrap().iter().map(|e| e["startsAt"].as_str().unwrap()).collect();
    assert_eq!(
        starts,
        ["2027-03-18T16:00:00Z", "2027-03-25T16:00:00Z", "2027-04-01T15:00:00Z", "2027-04-08T15:00:00Z"],
        "16:00 local on both sides of the change"
    );
    assert_eq!(series["events"][2]["localStart"], "2027-04-01T16:00:00");

    // Monthly on the second Thursday, beyond the window: made as time passes, once.
    let mut monthly = event_input(&id, "2027-01-14T16:00", "2027-01-14T18:00", Some(20));
    monthly["recurrence"] = json!({ "frequency": "MONTHLY_BY_WEEKDAY", "weekdayOrdinal": 2, "until": "2029-12-31" });
    let data = olu.data(SERIES, json!({ "input": monthly })).await;
    let made = data["scheduleMeetupSeries"]["events"].as_array().unwrap().len() as i64;
    assert!((1..36).contains(&made), "only the window ahead is made: {made}");
    let db = &app.state().db;
    let later = jiff::Timestamp::now().as_millisecond() + 2 * 365 * 24 * 60 * 60 * 1000;
    let added = kettle::meetups::series::extend_windows(db, later).await.unwrap() as i64;
    assert!(added > 0, "the window moved on");
    assert_eq!(kettle::meetups::series::extend_windows(db, later).await.unwrap(), 0, "and nothing twice");
    let total = app.count("SELECT COUNT(*) FROM meetup_events WHERE series_id IS NOT NULL").await;
    assert_eq!(total, 4 + made + added);
    // Two instances extending at the same moment: each occurrence is made once, by one.
    let further = later + 365 * 24 * 60 * 60 * 1000;
    let (one, two) = futures_util::future::join(
        kettle::meetups::series::extend_windows(db, further),
        kettle::meetups::series::extend_windows(db, further),
    )
    .await;
    let extended = (one.unwrap() + two.unwrap()) as i64;
    assert!(extended > 0, "the window moved on again");
    let now_total = app.count("SELECT COUNT(*) FROM meetup_events WHERE series_id IS NOT NULL").await;
    assert_eq!(now_total, total + extended, "nothing made twice");

    // Changing "this and following" from the second: each keeps its date at the new time.
    let second = series["events"][1]["id"].as_str().unwrap();
    let mut later = event_input(&id, "2027-03-25T17:00", "2027-03-25T19:00", None);
    later.as_object_mut().unwrap().remove("groupId");
    later.as_object_mut().unwrap().remove("going");
    later["id"] = json!(second);
    later["scope"] = json!("THIS_AND_FOLLOWING");
    let changed = olu.data(UPDATE, json!({ "input": later.clone() })).await;
    assert_eq!(changed["updateMeetup"]["userErrors"], json!([]), "{changed}");
    const STARTS: &str = "query($id: ID!) { node(id: $id) { ... on MeetupEvent { startsAt sequence } } }";
    let mut after = Vec::new();
    for event in series["events"].as_array().unwrap() {
        let node = olu.data(STARTS, json!({ "id": event["id"] })).await["node"].clone();
        after.push((node["startsAt"].as_str().unwrap().to_string(), node["sequence"].as_i64().unwrap()));
    }
    assert_eq!(
        after,
        [
            ("2027-03-18T16:00:00Z".to_string(), 0),
            ("2027-03-25T17:00:00Z".to_string(), 1),
            ("2027-04-01T16:00:00Z".to_string(), 1),
            ("2027-04-08T16:00:00Z".to_string(), 1),
        ],
        "17:00 London from the second on, across the clock change"
    );
    later["start"] = json!("2027-03-26T17:00");
    later["end"] = json!("2027-03-26T19:00");
    let moved_day = olu.data(UPDATE, json!({ "input": later })).await;
    assert_eq!(user_errors(&moved_day["updateMeetup"]), vec![("start".into(), "INVALID".into())]);

    // Cancelling "this and following" from the third weekly meetup cancels the last two.
    let third = series["events"][2]["id"].as_str().unwrap();
    const CANCEL: &str = "mutation($id: ID!) { cancelMeetup(input: { id: $id, scope: THIS_AND_FOLLOWING }) { event { status } userErrors { code } } }";
    assert_eq!(olu.data(CANCEL, json!({ "id": third })).await["cancelMeetup"]["event"]["status"], "CANCELLED");
    assert_eq!(app.count("SELECT COUNT(*) FROM meetup_events WHERE status = 'cancelled'").await, 2);

    // A rule that cannot be: "second Thursday" starting on a first Thursday.
    let mut wrong = event_input(&id, "2027-01-07T16:00", "2027-01-07T18:00", None);
    wrong["recurrence"] = json!({ "frequency": "MONTHLY_BY_WEEKDAY", "weekdayOrdinal": 2, "count": 3 });
    let refused = olu.data(SERIES, json!({ "input": wrong })).await;
    assert_eq!(user_errors(&refused["scheduleMeetupSeries"]), vec![("recurrence".into(), "INVALID".into())]);
    let mut endless = event_input(&id, "2027-01-07T16:00", "2027-01-07T18:00", None);
    endless["recurrence"] = json!({ "frequency": "WEEKLY" });
    let refused = olu.data(SERIES, json!({ "input": endless })).await;
    assert_eq!(user_errors(&refused["scheduleMeetupSeries"]), vec![("recurrence".into(), "INVALID".into())]);
}

async fn agendas_are_ordered_and_link_case_studies(app: TestApp) {
    use crate::case_studies::{admin, case_study, create_case_study, create_topic, PUBLISH};
    let curator = admin(&app, "curator@example.org", "Curator").await;
    let topic = create_topic(&curator, "Waste").await;
    let olu = app.member("olu@example.org", "Olu").await;
    let ada = app.member("ada@example.org", "Ada").await;
    let story =
        create_case_study(&ada, case_study("Bin reminders", &[&topic])).await["id"].as_str().unwrap().to_string();
    ada.data(PUBLISH, json!({ "id": story })).await;
    let draft = create_case_study(&ada, case_study("Not yet", &[&topic])).await["id"].as_str().unwrap().to_string();
    let id = group(&olu, "TeaCamp North").await;
    let event = schedule(&olu, event_input(&id, "2030-01-10T16:00", "2030-01-10T18:00", None)).await;
    let event_id = event["id"].as_str().unwrap();

    const ADD: &str =
        "mutation($input: AddAgendaItemInput!) { addAgendaItem(input: $input) { userErrors { field code } } }";
    let item = |title: &str, extra: Value| {
        let mut input = json!({ "eventId": event_id, "kind": "TALK", "title": title, "durationMinutes": 20 });
        input.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        json!({ "input": input })
    };
    let talk =
        olu.data(ADD, item("How we cut missed bins", json!({ "speakerHandle": "ada", "caseStudyId": story }))).await;
    assert_eq!(talk["addAgendaItem"]["userErrors"], json!([]), "{talk}");
    olu.data(ADD, item("Tea", json!({ "kind": "BREAK", "durationMinutes": 15 }))).await;
    olu.data(ADD, item("Open floor", json!({ "kind": "DISCUSSION", "speakerName": "Everyone" }))).await;
    let bad =
        olu.data(ADD, item("", json!({ "durationMinutes": 0, "speakerHandle": "nobody", "caseStudyId": draft }))).await;
    let mut fields: Vec<String> = user_errors(&bad["addAgendaItem"]).into_iter().map(|(f, _)| f).collect();
    fields.sort();
    assert_eq!(fields, ["caseStudyId", "durationMinutes", "speakerHandle", "title"]);
    assert_eq!(error_code(&ada.gql(ADD, item("Mine", json!({}))).await), "FORBIDDEN");

    const AGENDA: &str = "query($id: ID!) { node(id: $id) { ... on MeetupEvent { agenda { id kind title speaker { handle } speakerName caseStudy { title } } } } }";
    let agenda = olu.data(AGENDA, json!({ "id": event_id })).await["node"]["agenda"].clone();
    let titles: Vec<&str> = agenda.as_array().unwrap().iter().map(|i| i["title"].as_str().unwrap()).collect();
    assert_eq!(titles, ["How we cut missed bins", "Tea", "Open floor"]);
    assert_eq!(agenda[0]["speaker"]["handle"], "ada");
    assert_eq!(agenda[0]["caseStudy"]["title"], "Bin reminders");

    // Moving the discussion up, then removing the break.
    const MOVE: &str = "mutation($id: ID!) { moveAgendaItem(input: { id: $id, up: true }) { userErrors { code } } }";
    const REMOVE: &str = "mutation($id: ID!) { removeAgendaItem(input: { id: $id }) { userErrors { code } } }";
    olu.data(MOVE, json!({ "id": agenda[2]["id"] })).await;
    olu.data(REMOVE, json!({ "id": agenda[1]["id"] })).await;
    let agenda = olu.data(AGENDA, json!({ "id": event_id })).await["node"]["agenda"].clone();
    let titles: Vec<&str> = agenda.as_array().unwrap().iter().map(|i| i["title"].as_str().unwrap()).collect();
    assert_eq!(titles, ["How we cut missed bins", "Open floor"]);

    // The case study shows where it was talked about.
    const TALKED: &str = "query($id: ID!) { node(id: $id) { ... on CaseStudy { talkedAboutAt { title } } } }";
    let talked = app.anonymous().data(TALKED, json!({ "id": story })).await;
    assert_eq!(talked["node"]["talkedAboutAt"], json!([{ "title": "TeaCamp Manchester" }]));
}

async fn a_meetup_is_copied_to_a_new_date_with_its_agenda(app: TestApp) {
    let olu = app.member("olu@example.org", "Olu").await;
    let ada = app.member("ada@example.org", "Ada").await;
    let id = group(&olu, "TeaCamp North").await;
    // In summer time, two and a half hours, two seats, with an agenda and Ada going.
    let source = schedule(&olu, event_input(&id, "2030-07-11T16:00", "2030-07-11T18:30", Some(2))).await;
    let source_id = source["id"].as_str().unwrap();
    const ADD: &str =
        "mutation($input: AddAgendaItemInput!) { addAgendaItem(input: $input) { userErrors { field code } } }";
    for (title, speaker) in [("Bins", json!({ "speakerHandle": "ada" })), ("Tea", json!({ "kind": "BREAK" }))] {
        let mut input = json!({ "eventId": source_id, "kind": "TALK", "title": title, "durationMinutes": 20 });
        input.as_object_mut().unwrap().extend(speaker.as_object().unwrap().clone());
        assert_eq!(olu.data(ADD, json!({ "input": input })).await["addAgendaItem"]["userErrors"], json!([]));
    }
    rsvp(&ada, source_id, true).await;
    olu.data(
        "mutation($id: ID!) { cancelMeetup(input: { id: $id }) { userErrors { code } } }",
        json!({ "id": source_id }),
    )
    .await;

    const COPY: &str = "mutation($input: CopyMeetupInput!) { copyMeetup(input: $input) { event { id title status \
        localStart startsAt endsAt capacity goingCount series viewerRsvp { status } \
        agenda { kind title durationMinutes speaker { handle } } } userErrors { field code message } } }";
    let copy = |start: &str, agenda: bool| json!({ "input": { "id": source_id, "start": start, "agenda": agenda, "going": false } });
    let events = || app.count("SELECT COUNT(*) FROM meetup_events");
    let scheduled = "SELECT COUNT(*) FROM outbox_events WHERE kind = 'meetup.scheduled'";
    let (before, announced) = (events().await, app.count(scheduled).await);

    // Only organisers copy; a start that is not a time, or out of bounds, copies nothing.
    assert_eq!(error_code(&ada.gql(COPY, copy("2030-12-12T16:00", true)).await), "FORBIDDEN");
    for bad in ["next Thursday", "2099-01-01T10:00", "1999-12-31T10:00", ""] {
        let data = olu.data(COPY, copy(bad, true)).await;
        assert_eq!(user_errors(&data["copyMeetup"]), vec![("start".into(), "INVALID".into())], "{bad}: {data}");
        assert!(data["copyMeetup"]["event"].is_null());
    }
    let missing =
        olu.data(COPY, json!({ "input": { "id": "TWVldHVwRXZlbnQ6OTk5OTk", "start": "2030-12-12T16:00" } })).await;
    assert_eq!(user_errors(&missing["copyMeetup"]), vec![("id".into(), "NOT_FOUND".into())]);
    assert_eq!((events().await, app.count(scheduled).await), (before, announced));

    // Copied to a winter date: the same wall-clock time and length (GMT now, so the UTC
    // instants differ by the hour), the same seats and agenda, scheduled though the
    // original is cancelled, and nobody going yet.
    let data = olu.data(COPY, copy("2030-12-12T16:00", true)).await;
    let copied = &data["copyMeetup"]["event"];
    assert_eq!(data["copyMeetup"]["userErrors"], json!([]), "{data}");
    assert_eq!(copied["title"], "TeaCamp Manchester");
    assert_eq!(copied["status"], "SCHEDULED");
    assert_eq!(copied["localStart"], "2030-12-12T16:00:00");
    assert_eq!(
        (&copied["startsAt"], &copied["endsAt"]),
        (&json!("2030-12-12T16:00:00Z"), &json!("2030-12-12T18:30:00Z"))
    );
    assert_eq!((&copied["capacity"], &copied["goingCount"], &copied["series"]), (&json!(2), &json!(0), &Value::Null));
    assert_eq!(
        copied["agenda"],
        json!([
            { "kind": "TALK", "title": "Bins", "durationMinutes": 20, "speaker": { "handle": "ada" } },
            { "kind": "BREAK", "title": "Tea", "durationMinutes": 20, "speaker": null },
        ])
    );
    let copy_id = copied["id"].as_str().unwrap();
    assert_ne!(copy_id, source_id);
    assert!(ada.data(EVENT, json!({ "id": copy_id })).await["node"]["viewerRsvp"].is_null());
    assert_eq!(app.count(scheduled).await, announced + 1, "followers hear of the copy as of any new meetup");
    // The original is as it was.
    let original = ada.data(EVENT, json!({ "id": source_id })).await;
    assert_eq!(original["node"]["viewerRsvp"]["status"], "GOING");

    // Without the agenda.
    let data = olu.data(COPY, copy("2031-01-09T16:00", false)).await;
    assert_eq!(data["copyMeetup"]["event"]["agenda"], json!([]), "{data}");
    assert_eq!(events().await, before + 2);
}

async fn organisers_see_who_answered_when_and_from_which_organisation(app: TestApp) {
    let olu = app.member("olu@example.org", "Olu").await;
    let ada = app.member("ada@example.org", "Ada").await;
    let bea = app.member("bea@example.org", "Bea").await;
    let cy = app.member("cy@example.org", "Cy").await;
    // Ada belongs to two organisations, listed by name; the others to none.
    crate::case_studies::create_organisation(&ada, "Wiltshire Council").await;
    crate::case_studies::create_organisation(&ada, "Bath Council").await;
    let id = group(&olu, "TeaCamp North").await;
    let event = schedule(&olu, event_input(&id, "2030-01-10T16:00", "2030-01-10T18:00", Some(1))).await;
    let event_id = event["id"].as_str().unwrap();
    let before = kettle::db::now_millis();
    for member in [&ada, &bea, &cy] {
        rsvp(member, event_id, true).await;
    }
    const ANSWERS: &str = "query($id: ID!) { node(id: $id) { ... on MeetupEvent { answers { status answeredAt \
        waitlistPosition member { handle organisations { name } } } } } }";
    let data = olu.data(ANSWERS, json!({ "id": event_id })).await;
    let answers = data["node"]["answers"].as_array().unwrap();
    let summary: Vec<(String, String, Value, Vec<String>)> = answers
        .iter()
        .map(|a| {
            let organisations = a["member"]["organisations"].as_array().unwrap();
            (
                a["member"]["handle"].as_str().unwrap().to_string(),
                a["status"].as_str().unwrap().to_string(),
                a["waitlistPosition"].clone(),
                organisations.iter().map(|o| o["name"].as_str().unwrap().to_string()).collect(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            ("ada".into(), "GOING".into(), Value::Null, vec!["Bath Council".into(), "Wiltshire Council".into()]),
            ("bea".into(), "WAITLISTED".into(), json!(1), vec![]),
            ("cy".into(), "WAITLISTED".into(), json!(2), vec![]),
        ]
    );
    for answer in answers {
        let at = answer["answeredAt"].as_str().unwrap().parse::<jiff::Timestamp>().unwrap().as_millisecond();
        assert!(at >= before - 1_000 && at <= kettle::db::now_millis(), "{answer}");
    }
    // Only organisers see who answered.
    let refused = ada.gql(ANSWERS, json!({ "id": event_id })).await;
    assert_eq!(error_code(&refused), "FORBIDDEN");
}

/// The journey: an organiser creates a monthly series; two members RSVP to a
/// one-seat occurrence; the second is waitlisted and promoted when the first cancels;
/// the organiser moves that occurrence and the second member's calendar shows the new
/// time with a higher SEQUENCE.
async fn the_meetup_journey_through_the_api(app: TestApp) {
    const SERIES: &str = "mutation($input: ScheduleMeetupSeriesInput!) { scheduleMeetupSeries(input: $input) { description events { id localStart } userErrors { field code message } } }";
    let olu = app.member("olu@example.org", "Olu").await;
    let ada = app.member("ada@example.org", "Ada").await;
    let bea = app.member("bea@example.org", "Bea").await;
    let id = group(&olu, "TeaCamp North").await;
    // The second Thursday of the month after next, so the series is always ahead.
    let zone = jiff::tz::TimeZone::get("Europe/London").unwrap();
    let month = jiff::Zoned::now()
        .with_time_zone(zone)
        .date()
        .first_of_month()
        .checked_add(jiff::Span::new().months(2))
        .unwrap();
    let day = month.nth_weekday_of_month(2, jiff::civil::Weekday::Thursday).unwrap();
    let mut input = event_input(&id, &format!("{day}T16:00"), &format!("{day}T18:00"), Some(1));
    input["recurrence"] = json!({ "frequency": "MONTHLY_BY_WEEKDAY", "weekdayOrdinal": 2, "count": 6 });
    let data = olu.data(SERIES, json!({ "input": input })).await;
    let series = &data["scheduleMeetupSeries"];
    assert_eq!(series["userErrors"], json!([]), "{data}");
    assert!(series["description"].as_str().unwrap().starts_with("Second Thursday of each month at 16:00"), "{data}");
    let first = series["events"][0]["id"].as_str().unwrap();

    assert_eq!(rsvp(&ada, first, true).await["rsvp"]["status"], "GOING");
    assert_eq!(rsvp(&bea, first, true).await["rsvp"], json!({ "status": "WAITLISTED", "waitlistPosition": 1 }));
    let feed = bea.data("mutation { resetCalendarFeed { url } }", json!({})).await["resetCalendarFeed"]["url"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(parse_feed(&reqwest::get(&feed).await.unwrap().text().await.unwrap()).is_empty(), "not going yet");
    rsvp(&ada, first, false).await;
    assert_eq!(bea.data(EVENT, json!({ "id": first })).await["node"]["viewerRsvp"]["status"], "GOING");
    let before = parse_feed(&reqwest::get(&feed).await.unwrap().text().await.unwrap());
    assert_eq!(before.len(), 1);
    assert_eq!(before[0]["DTSTART;TZID=Europe/London"], format!("{}T160000", day.strftime("%Y%m%d")));

    let mut moved = event_input(&id, &format!("{day}T17:00"), &format!("{day}T19:00"), Some(1));
    moved.as_object_mut().unwrap().remove("groupId");
    moved.as_object_mut().unwrap().remove("going");
    moved["id"] = json!(first);
    olu.data(UPDATE, json!({ "input": moved })).await;
    let after = parse_feed(&reqwest::get(&feed).await.unwrap().text().await.unwrap());
    assert_eq!(after[0]["DTSTART;TZID=Europe/London"], format!("{}T170000", day.strftime("%Y%m%d")));
    assert_eq!(after[0]["UID"], before[0]["UID"]);
    let sequence = |e: &std::collections::HashMap<String, String>| e["SEQUENCE"].parse::<i64>().unwrap();
    assert_eq!(sequence(&after[0]), sequence(&before[0]) + 1);
    assert_eq!(app.count("SELECT COUNT(*) FROM outbox_events WHERE kind = 'meetup.rsvp_promoted'").await, 1);
    assert_eq!(app.count("SELECT COUNT(*) FROM outbox_events WHERE kind = 'meetup.changed'").await, 1);
}
