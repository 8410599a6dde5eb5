//! iCalendar feeds as calendar apps see them, read back by the `icalendar` and `ical`
//! crates and Python's `icalendar` (tests/ical/check_calendar.py): each event names its
//! group as organiser, links back to its page and carries its agenda; UIDs name the
//! installation, not the host, so they survive a new public address; an empty personal
//! calendar is still a valid one; and the personal address can be seen again, while
//! replacing it takes a confirmation.

use std::collections::HashMap;
use std::io::BufReader;

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::{
    feeds::python,
    scenarios,
    site::Browser,
    support::{Client, Peer, Scenario, TestApp},
};

pub fn scenarios() -> Vec<(&'static str, Scenario)> {
    scenarios![
        events_name_their_group_link_back_and_carry_the_agenda,
        uids_survive_a_new_public_address,
        an_empty_personal_calendar_is_still_valid,
        the_calendar_address_is_shown_again_and_resetting_asks_first,
    ]
}

/// Set to 1 (as tests/run does) to make a missing Python `icalendar` a failure.
const REQUIRE_ICALENDAR: &str = "KETTLE_REQUIRE_PYTHON_ICALENDAR";

const GROUP: &str =
    "mutation($input: CreateMeetupGroupInput!) { createMeetupGroup(input: $input) { group { id slug } } }";
const SCHEDULE: &str =
    "mutation($input: ScheduleMeetupInput!) { scheduleMeetup(input: $input) { event { id } userErrors { code } } }";
const AGENDA: &str =
    "mutation($input: AddAgendaItemInput!) { addAgendaItem(input: $input) { userErrors { field code message } } }";
const RSVP: &str = "mutation($id: ID!) { rsvp(input: { eventId: $id, going: true }) { userErrors { code } } }";
const RESET: &str = "mutation { resetCalendarFeed { url } }";

/// A group with one meetup; returns (group slug, event id).
async fn meetup(organiser: &Client) -> (String, String) {
    let group = organiser.data(GROUP, json!({ "input": { "name": "TeaCamp, North", "region": "North West" } })).await;
    let group = &group["createMeetupGroup"]["group"];
    let event = organiser
        .data(
            SCHEDULE,
            json!({ "input": {
                "groupId": group["id"], "title": "TeaCamp", "description": "Tea and *cake*.",
                "timeZone": "Europe/London", "start": "2030-01-10T18:00", "end": "2030-01-10T20:00",
                "venueName": "The Federation", "onlineUrl": "https://meet.example.org/teacamp",
            } }),
        )
        .await;
    let event = &event["scheduleMeetup"]["event"]["id"];
    (group["slug"].as_str().unwrap().to_string(), event.as_str().unwrap().to_string())
}

async fn get(url: &str) -> (StatusCode, String) {
    let response = reqwest::get(url).await.unwrap();
    (response.status(), response.text().await.unwrap())
}

/// A VEVENT's properties by name: value (unescaped) and parameters.
type Properties = HashMap<String, (String, Vec<(String, String)>)>;

/// Every component's name and, for VEVENTs, their properties (unescaped by the
/// `icalendar` crate), after checking that the `ical` crate reads the feed too.
fn parse(text: &str) -> (Vec<String>, Vec<Properties>) {
    let mut ical = ical::IcalParser::new(BufReader::new(text.as_bytes()));
    let read = ical.next().expect("one calendar").unwrap_or_else(|e| panic!("ical crate: {e}\n{text}"));
    assert!(!read.events.is_empty() || !read.timezones.is_empty(), "the ical crate sees no component:\n{text}");
    let unfolded = icalendar::parser::unfold(text);
    let calendar = icalendar::parser::read_calendar(&unfolded).unwrap_or_else(|e| panic!("{e}\n{text}"));
    let names = calendar.components.iter().map(|c| c.name.to_string()).collect();
    let events = calendar
        .components
        .iter()
        .filter(|c| c.name == "VEVENT")
        .map(|c| {
            c.properties
                .iter()
                .map(|p| {
                    let params = p
                        .params
                        .iter()
                        .map(|q| (q.key.to_string(), q.val.as_ref().map(|v| v.to_string()).unwrap_or_default()))
                        .collect();
                    (p.name.to_string(), (p.val.to_string(), params))
                })
                .collect()
        })
        .collect();
    (names, events)
}

fn python_calendar(text: &str) -> Option<Value> {
    python("icalendar", REQUIRE_ICALENDAR, "tests/ical/check_calendar.py", text)
        .map(|out| serde_json::from_str(&out).unwrap())
}

fn is_utc_stamp(value: &str) -> bool {
    value.len() == 16
        && value.ends_with('Z')
        && value.as_bytes()[8] == b'T'
        && value[..8].bytes().chain(value[9..15].bytes()).all(|b| b.is_ascii_digit())
}

async fn events_name_their_group_link_back_and_carry_the_agenda(app: TestApp) {
    let olu = app.member("olu@example.org", "Olu").await;
    let ada = app.member("ada@example.org", "Ada Lovelace").await;
    let (slug, event) = meetup(&olu).await;
    let ada_handle =
        ada.data("{ viewer { handle } }", json!({})).await["viewer"]["handle"].as_str().unwrap().to_string();
    let before: i64 = app.count("SELECT updated_at FROM meetup_events").await;
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    for (kind, title, speaker_handle, speaker_name, minutes) in [
        ("TALK", "Bins, online", Some(ada_handle.as_str()), "", 20),
        ("BREAK", "Tea", None, "", 10),
        ("DISCUSSION", "What next?", None, "Grace Hopper", 30),
    ] {
        let input = json!({
            "eventId": event, "kind": kind, "title": title, "speakerHandle": speaker_handle,
            "speakerName": speaker_name, "durationMinutes": minutes,
        });
        let data = olu.data(AGENDA, json!({ "input": input })).await;
        assert_eq!(data["addAgendaItem"]["userErrors"], json!([]), "{data}");
    }
    // The agenda is part of the event as calendars have it, so changing it marks the
    // event as modified (LAST-MODIFIED and DTSTAMP follow).
    assert!(app.count("SELECT updated_at FROM meetup_events").await > before);
    ada.data(RSVP, json!({ "id": event })).await;
    let personal = ada.data(RESET, json!({})).await["resetCalendarFeed"]["url"].as_str().unwrap().to_string();
    let base = app.url("");
    let number = kettle::graphql::relay::parse_global_id_of("MeetupEvent", &event).unwrap();

    for (url, going) in [
        (personal, true),
        (app.url(&format!("/calendars/groups/{slug}.ics")), false),
        (app.url(&format!("/calendars/events/{number}.ics")), false),
    ] {
        let (status, text) = get(&url).await;
        assert_eq!(status, StatusCode::OK, "{url}");
        assert!(!text.contains("METHOD:"), "a published feed, not an iTIP message:\n{text}");
        let (_, events) = parse(&text);
        assert_eq!(events.len(), 1, "{text}");
        let e = &events[0];
        assert_eq!(e["URL"].0, format!("{base}/meetups/events/{number}"), "links back to the meetup's page");
        let (organizer, params) = &e["ORGANIZER"];
        assert_eq!(organizer, &format!("{base}/meetups/groups/{slug}"), "a cal-address: the group's page");
        assert!(params.iter().any(|(k, v)| k == "CN" && v.trim_matches('"') == "TeaCamp, North"), "{params:?}");
        let description = &e["DESCRIPTION"].0;
        assert!(description.starts_with("Tea and cake."), "{description}");
        assert!(
            description.contains("Agenda:\n18:00 Bins, online (Ada Lovelace), 20 min\n18:20 Tea, 10 min\n18:30 What next? (Grace Hopper), 30 min"),
            "{description}"
        );
        assert_eq!(description.contains("https://meet.example.org/teacamp"), going, "only those going get the link");
        let stamp = &e["DTSTAMP"].0;
        assert!(is_utc_stamp(stamp), "{stamp}");
        assert_eq!(stamp, &e["LAST-MODIFIED"].0, "the last revision in the store");

        if let Some(parsed) = python_calendar(&text) {
            assert_eq!(parsed["method"], "");
            let event = &parsed["events"][0];
            assert_eq!(event["url"], e["URL"].0.as_str());
            assert_eq!(event["organizer"], organizer.as_str());
            assert_eq!(event["organizer_cn"], "TeaCamp, North");
            assert_eq!(event["description"], description.as_str());
            assert_eq!(event["dtstamp_raw"], stamp.as_str());
        }
    }
}

async fn uids_survive_a_new_public_address(app: TestApp) {
    let olu = app.member("olu@example.org", "Olu").await;
    let (slug, _) = meetup(&olu).await;
    let instance: String = sqlx::query_scalar("SELECT instance_id FROM instance")
        .fetch_one(&app.state().db.pool)
        .await
        .expect("migration 0012 made the instance id");
    assert!(instance.len() == 32 && instance.bytes().all(|b| b.is_ascii_hexdigit()), "{instance}");
    assert_eq!(&*app.state().instance_id, instance.as_str());

    let path = format!("/calendars/groups/{slug}.ics");
    let (_, here) = get(&app.url(&path)).await;
    let moved = Peer::start_at(&app, "https://kettle.moved.example").await;
    let (_, there) = get(&moved.url(&path)).await;
    moved.stop().await;
    let (_, here) = parse(&here);
    let (_, there) = parse(&there);
    assert_eq!(here[0]["UID"].0, there[0]["UID"].0, "same UID under either address");
    assert!(here[0]["UID"].0.starts_with("meetup-event-"), "{}", here[0]["UID"].0);
    assert!(here[0]["UID"].0.ends_with(&format!("@{instance}.kettle")), "{}", here[0]["UID"].0);
    // The links do follow the new address.
    assert!(there[0]["URL"].0.starts_with("https://kettle.moved.example/meetups/events/"));
}

async fn an_empty_personal_calendar_is_still_valid(app: TestApp) {
    let ada = app.member("ada@example.org", "Ada").await;
    let url = ada.data(RESET, json!({})).await["resetCalendarFeed"]["url"].as_str().unwrap().to_string();
    let (status, text) = get(&url).await;
    assert_eq!(status, StatusCode::OK);
    // RFC 5545 §3.4: a calendar holds at least one component.
    let (components, events) = parse(&text);
    assert!(events.is_empty());
    assert_eq!(components, ["VTIMEZONE"], "{text}");
    if let Some(parsed) = python_calendar(&text) {
        assert_eq!(parsed["components"], json!(["VTIMEZONE"]));
    }
}

async fn the_calendar_address_is_shown_again_and_resetting_asks_first(app: TestApp) {
    app.member("ada@example.org", "Ada").await;
    let mut browser = Browser::new(&app);
    browser.sign_in("ada@example.org", crate::support::PASSWORD).await;
    let page = browser.get("/meetups/mine").await;
    assert!(page.body.contains("Get my calendar address"), "{}", page.body);
    // With no address yet there is nothing to confirm replacing.
    assert_eq!(browser.get("/meetups/calendar").await.location(), "/meetups/mine#calendar-heading");
    // The first address needs no confirmation: there is nothing to lose.
    let made = browser.post("/meetups/calendar", &[]).await;
    assert_eq!(made.status, StatusCode::SEE_OTHER);
    assert!(made.location().starts_with("/meetups/mine?note=calendar-reset"), "{}", made.location());
    // Templates escape `/` in values as `&#x2f;`.
    let unescape = |body: String| body.replace("&#x2f;", "/").replace("&amp;", "&");
    let address = |body: &str| {
        let start = body.find("id=\"calendar-url\" readonly value=\"").map(|i| i + 34)?;
        Some(body[start..start + body[start..].find('"')?].to_string())
    };
    let first = address(&unescape(browser.get("/meetups/mine").await.body)).expect("the address is shown");
    assert!(first.contains("/calendars/personal/kcal_"), "{first}");
    // Seen again later, unchanged, with a webcal: link to subscribe.
    let again = unescape(browser.get("/meetups/mine").await.body);
    assert_eq!(address(&again).as_deref(), Some(first.as_str()));
    let webcal = first.replacen("http://", "webcal://", 1);
    assert!(again.contains(&format!("href=\"{webcal}\"")), "{again}");
    assert_eq!(get(&first).await.0, StatusCode::OK);

    // Replacing it asks first; posting without the confirmation changes nothing.
    let confirm = browser.get("/meetups/calendar").await;
    assert_eq!(confirm.status, StatusCode::OK);
    assert!(confirm.body.contains("name=\"confirm\" value=\"yes\""), "{}", confirm.body);
    let unconfirmed = browser.post("/meetups/calendar", &[]).await;
    assert_eq!(unconfirmed.status, StatusCode::OK);
    assert!(unconfirmed.body.contains("Make a new calendar address?"), "{}", unconfirmed.body);
    assert_eq!(address(&unescape(browser.get("/meetups/mine").await.body)).as_deref(), Some(first.as_str()));
    assert_eq!(get(&first).await.0, StatusCode::OK);

    let reset = browser.post("/meetups/calendar", &[("confirm", "yes")]).await;
    assert_eq!(reset.status, StatusCode::SEE_OTHER);
    let second = address(&unescape(browser.get("/meetups/mine").await.body)).expect("the new address is shown");
    assert_ne!(second, first);
    assert_eq!(get(&first).await.0, StatusCode::NOT_FOUND, "the old address stops working");
    assert_eq!(get(&second).await.0, StatusCode::OK);

    // The group and event pages offer webcal: subscriptions beside the downloads.
    let olu = app.member("olu@example.org", "Olu").await;
    let (slug, event) = meetup(&olu).await;
    let number = kettle::graphql::relay::parse_global_id_of("MeetupEvent", &event).unwrap();
    let webcal_base = app.url("").replacen("http://", "webcal://", 1);
    let group_page = unescape(browser.get(&format!("/meetups/groups/{slug}")).await.body);
    assert!(group_page.contains(&format!("href=\"{webcal_base}/calendars/groups/{slug}.ics\"")), "{group_page}");
    let event_page = unescape(browser.get(&format!("/meetups/events/{number}")).await.body);
    assert!(event_page.contains(&format!("href=\"{webcal_base}/calendars/events/{number}.ics\"")), "{event_page}");
}
