//! A series as a whole: every date of it, and changing how often it meets from one of its
//! meetups on (those on the new dates stay with who is going; the others are cancelled
//! and their people told; the new dates are made; later windows follow the new rule).
//! Through the API and through the site.

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::{
    artefacts::number,
    notifications::dispatched,
    scenarios,
    site::Browser,
    support::{error_code, user_errors, Client, Scenario, TestApp, PASSWORD},
};

pub fn scenarios() -> Vec<(&'static str, Scenario)> {
    scenarios![
        meetup_series_a_new_rule_keeps_the_meetups_on_its_dates_and_cancels_the_rest,
        meetup_series_changes_that_cannot_be_made_are_refused_and_change_nothing,
        meetup_series_the_site_lists_every_date_and_changes_the_rule,
    ]
}

const CREATE_GROUP: &str =
    "mutation($input: CreateMeetupGroupInput!) { createMeetupGroup(input: $input) { group { id slug } userErrors { field code } } }";
const SERIES: &str = "mutation($input: ScheduleMeetupSeriesInput!) { scheduleMeetupSeries(input: $input) { \
    events { id localStart } userErrors { field code message } } }";
const CHANGE: &str = "mutation($input: ChangeMeetupSeriesInput!) { changeMeetupSeries(input: $input) { \
    description events { id localStart status goingCount } cancelled { id localStart status } \
    userErrors { field code message } } }";
const RSVP: &str =
    "mutation($id: ID!) { rsvp(input: { eventId: $id, going: true }) { rsvp { status } userErrors { code } } }";
const DATES: &str = "query($id: ID!) { node(id: $id) { ... on MeetupEvent { series \
    seriesRule { frequency weekdayOrdinal firstDate until count } \
    seriesEvents { id localStart status goingCount } } } }";

/// A date `days` from now in London, as `2027-03-11`.
fn days_ahead(days: i64) -> jiff::civil::Date {
    jiff::Timestamp::now()
        .checked_add(jiff::SignedDuration::from_hours(24 * days))
        .unwrap()
        .to_zoned(jiff::tz::TimeZone::get("Europe/London").unwrap())
        .date()
}

/// A weekly series of `count` meetups at 18:00 from a week today, by `olu`, who is not
/// going (so each count is the members'); its meetups in order.
async fn weekly_series(olu: &Client, count: i64) -> Vec<Value> {
    let created = olu.data(CREATE_GROUP, json!({ "input": { "name": "TeaCamp Leeds", "region": "Yorkshire" } })).await;
    let group = created["createMeetupGroup"]["group"]["id"].as_str().unwrap().to_string();
    let first = days_ahead(7);
    let input = json!({
        "groupId": group, "title": "TeaCamp Leeds", "timeZone": "Europe/London", "venueName": "The Tetley",
        "start": format!("{first}T18:00"), "end": format!("{first}T20:00"), "going": false,
        "recurrence": { "frequency": "WEEKLY", "count": count },
    });
    let data = olu.data(SERIES, json!({ "input": input })).await;
    assert_eq!(data["scheduleMeetupSeries"]["userErrors"], json!([]), "{data}");
    data["scheduleMeetupSeries"]["events"].as_array().unwrap().clone()
}

/// "Thursday", for `2027-03-11`.
fn weekday(date: &str) -> String {
    date.parse::<jiff::civil::Date>().unwrap().strftime("%A").to_string()
}

fn dates(events: &Value) -> Vec<String> {
    events.as_array().unwrap().iter().map(|e| e["localStart"].as_str().unwrap()[..10].to_string()).collect()
}

fn statuses(events: &Value) -> Vec<&str> {
    events.as_array().unwrap().iter().map(|e| e["status"].as_str().unwrap()).collect()
}

async fn meetup_series_a_new_rule_keeps_the_meetups_on_its_dates_and_cancels_the_rest(app: TestApp) {
    let olu = app.member("olu@example.org", "Olu").await;
    let ada = app.member("ada@example.org", "Ada").await;
    let events = weekly_series(&olu, 8).await;
    assert_eq!(events.len(), 8);
    let id = |n: usize| events[n]["id"].as_str().unwrap().to_string();
    let date = |n: usize| events[n]["localStart"].as_str().unwrap()[..10].to_string();
    // Ada goes to the third (which stays) and the fourth (which the change drops).
    for n in [2, 3] {
        assert_eq!(ada.data(RSVP, json!({ "id": id(n) })).await["rsvp"]["rsvp"]["status"], "GOING");
    }
    assert_eq!(app.count("SELECT COUNT(*) FROM meetup_rsvps WHERE status = 'going'").await, 2);

    // From the third on, every two weeks, three times: the third, fifth and seventh stay.
    let input = json!({ "id": id(2), "recurrence": { "frequency": "FORTNIGHTLY", "count": 3 },
        "message": "We now meet every other Thursday." });
    let data = olu.data(CHANGE, json!({ "input": input })).await;
    let change = &data["changeMeetupSeries"];
    assert_eq!(change["userErrors"], json!([]), "{data}");
    let described = format!("Every two weeks on {} at 18:00 (Europe/London), 3 times", weekday(&date(2)));
    assert_eq!(change["description"], described, "{data}");
    assert_eq!(dates(&change["events"]), vec![date(2), date(4), date(6)]);
    let kept: Vec<&str> = change["events"].as_array().unwrap().iter().map(|e| e["id"].as_str().unwrap()).collect();
    assert_eq!(kept, vec![id(2), id(4), id(6)], "the meetups on the new dates are the same meetups");
    assert_eq!(change["events"][0]["goingCount"], 1, "Ada is still going to the one that stayed");
    assert_eq!(dates(&change["cancelled"]), vec![date(3), date(5), date(7)]);
    assert_eq!(statuses(&change["cancelled"]), vec!["CANCELLED"; 3]);

    // The series as a whole: the first two as they were, then the new rule's dates.
    let whole = olu.data(DATES, json!({ "id": id(0) })).await;
    let node = &whole["node"];
    assert_eq!(dates(&node["seriesEvents"]), (0..8).map(date).collect::<Vec<_>>());
    assert_eq!(
        statuses(&node["seriesEvents"]),
        vec!["SCHEDULED", "SCHEDULED", "SCHEDULED", "CANCELLED", "SCHEDULED", "CANCELLED", "SCHEDULED", "CANCELLED"]
    );
    assert_eq!(
        node["seriesRule"],
        json!({ "frequency": "FORTNIGHTLY", "weekdayOrdinal": null, "firstDate": date(2), "until": null, "count": 3 })
    );

    // Ada hears of the one she was going to that is gone, with the message; not of the
    // one that stayed.
    dispatched(&app).await;
    let told = "SELECT COUNT(*) FROM notifications n JOIN members m ON m.id = n.member_id \
        WHERE m.handle = 'ada' AND n.kind = 'meetup_cancelled' AND n.channel = 'inbox'";
    assert_eq!(app.count(told).await, 1);
    let with_message = format!(
        "SELECT COUNT(*) FROM meetup_events WHERE cancel_message = 'We now meet every other Thursday.' AND id IN ({}, {}, {})",
        number("MeetupEvent", &json!(id(3))),
        number("MeetupEvent", &json!(id(5))),
        number("MeetupEvent", &json!(id(7)))
    );
    assert_eq!(app.count(&with_message).await, 3);

    // The window moving on makes nothing more: the new rule has its three.
    let db = &app.state().db;
    let later = kettle::db::now_millis() + 400 * 24 * 60 * 60 * 1000;
    assert_eq!(kettle::meetups::series::extend_windows(db, later).await.unwrap(), 0);

    // A second change, from the fifth on, to the next day of the week: new dates are
    // made, and the keys of the meetups from before both changes stay distinct.
    let friday = date(4).parse::<jiff::civil::Date>().unwrap().tomorrow().unwrap();
    let input =
        json!({ "id": id(4), "firstDate": friday.to_string(), "recurrence": { "frequency": "WEEKLY", "count": 2 } });
    let data = olu.data(CHANGE, json!({ "input": input })).await;
    let change = &data["changeMeetupSeries"];
    assert_eq!(change["userErrors"], json!([]), "{data}");
    assert_eq!(
        dates(&change["events"]),
        vec![friday.to_string(), friday.checked_add(jiff::Span::new().days(7)).unwrap().to_string()]
    );
    assert!(change["events"].as_array().unwrap().iter().all(|e| e["id"] != json!(id(4)) && e["id"] != json!(id(6))));
    assert_eq!(dates(&change["cancelled"]), vec![date(4), date(6)]);
    assert_eq!(
        app.count(&format!(
            "SELECT COUNT(*) FROM meetup_events WHERE status = 'scheduled' AND series_id = \
             (SELECT series_id FROM meetup_events WHERE id = {})",
            number("MeetupEvent", &json!(id(0)))
        ))
        .await,
        5,
        "the first three, and two on the new day"
    );
    let whole = olu.data(DATES, json!({ "id": id(0) })).await;
    assert_eq!(whole["node"]["seriesEvents"].as_array().unwrap().len(), 10);
    let described = format!("Every week on {} at 18:00", weekday(&friday.to_string()));
    assert!(whole["node"]["series"].as_str().unwrap().starts_with(&described), "{whole}");
}

async fn meetup_series_changes_that_cannot_be_made_are_refused_and_change_nothing(app: TestApp) {
    let olu = app.member("olu@example.org", "Olu").await;
    let ada = app.member("ada@example.org", "Ada").await;
    let events = weekly_series(&olu, 4).await;
    let second = events[1]["id"].as_str().unwrap().to_string();
    let second_date = events[1]["localStart"].as_str().unwrap()[..10].to_string();
    let before = olu.data(DATES, json!({ "id": second })).await;
    let weekly = json!({ "frequency": "WEEKLY", "count": 3 });

    // Only organisers.
    let input = json!({ "input": { "id": second, "recurrence": weekly } });
    assert_eq!(error_code(&ada.gql(CHANGE, input).await), "FORBIDDEN");

    let refusals = [
        (json!({ "id": second, "firstDate": "2020-01-02", "recurrence": weekly }), "firstDate", "INVALID"),
        (json!({ "id": second, "firstDate": "next Tuesday", "recurrence": weekly }), "firstDate", "INVALID"),
        (json!({ "id": second, "recurrence": { "frequency": "WEEKLY", "count": 0 } }), "recurrence", "INVALID"),
        (
            json!({ "id": second, "recurrence": { "frequency": "WEEKLY", "count": 3, "until": "2031-01-01" } }),
            "recurrence",
            "INVALID",
        ),
        (
            json!({ "id": second, "recurrence": { "frequency": "WEEKLY", "until": "2199-01-01" } }),
            "recurrence",
            "INVALID",
        ),
        // There is no fifth weekday of the month to choose.
        (
            json!({ "id": second, "recurrence": { "frequency": "MONTHLY_BY_WEEKDAY", "weekdayOrdinal": 5, "count": 3 } }),
            "recurrence",
            "INVALID",
        ),
        (json!({ "id": second, "recurrence": weekly, "message": "x".repeat(1_001) }), "message", "TOO_LONG"),
    ];
    for (input, field, code) in refusals {
        let data = olu.data(CHANGE, json!({ "input": input })).await;
        assert_eq!(user_errors(&data["changeMeetupSeries"]), vec![(field.to_string(), code.to_string())], "{input}");
        assert!(!data["changeMeetupSeries"]["userErrors"][0]["message"].as_str().unwrap().is_empty());
    }

    // A one-off has no series to change.
    let one_off = olu
        .data(
            "mutation($input: CopyMeetupInput!) { copyMeetup(input: $input) { event { id } } }",
            json!({ "input": { "id": second, "start": format!("{second_date}T09:00"), "going": false } }),
        )
        .await;
    let one_off = one_off["copyMeetup"]["event"]["id"].as_str().unwrap().to_string();
    let data = olu.data(CHANGE, json!({ "input": { "id": one_off, "recurrence": weekly } })).await;
    assert_eq!(user_errors(&data["changeMeetupSeries"]), vec![("id".to_string(), "INVALID".to_string())]);

    // A meetup that has started.
    let first_number = number("MeetupEvent", &events[0]["id"]);
    app.execute_sql(&format!(
        "UPDATE meetup_events SET starts_at = {} WHERE id = {first_number}",
        kettle::db::now_millis() - 60_000
    ))
    .await;
    let data = olu.data(CHANGE, json!({ "input": { "id": events[0]["id"], "recurrence": weekly } })).await;
    assert_eq!(user_errors(&data["changeMeetupSeries"]), vec![("id".to_string(), "INVALID".to_string())]);

    // Nothing changed: the same dates, statuses and rule (the first's start aside).
    let after = olu.data(DATES, json!({ "id": second })).await;
    assert_eq!(
        (dates(&after["node"]["seriesEvents"]), &after["node"]["seriesRule"]),
        (dates(&before["node"]["seriesEvents"]), &before["node"]["seriesRule"])
    );
    assert_eq!(app.count("SELECT COUNT(*) FROM meetup_events WHERE status = 'cancelled'").await, 0);
}

async fn meetup_series_the_site_lists_every_date_and_changes_the_rule(app: TestApp) {
    let olu_api = app.member("olu@example.org", "Olu").await;
    let events = weekly_series(&olu_api, 4).await;
    let mut olu = Browser::new(&app);
    olu.sign_in("olu@example.org", PASSWORD).await;
    let third = number("MeetupEvent", &events[2]["id"]);
    let page = olu.get(&format!("/meetups/events/{third}")).await;
    assert!(page.body.contains(&format!("href=\"/meetups/events/{third}/series\"")), "{}", page.body);

    // Every date, and a form filled with the rule as it is.
    let series = olu.get(&format!("/meetups/events/{third}/series")).await;
    assert_eq!(series.status, StatusCode::OK);
    let list = &series.body[series.body.find("<ol class=\"series-dates\">").unwrap()..];
    let list = &list[..list.find("</ol>").unwrap()];
    assert_eq!(list.matches("<li>").count(), 4, "{list}");
    assert!(series.body.contains("(this meetup)"));
    assert!(series.body.contains("id=\"repeat-weekly\" name=\"repeat\" value=\"WEEKLY\" checked"), "{}", series.body);
    assert!(series.body.contains("name=\"count\" type=\"text\" value=\"4\""), "{}", series.body);

    // A problem is shown on the form, and nothing changes.
    let form = [("repeat", "WEEKLY"), ("firstDate", "2020-01-01"), ("count", "2"), ("message", "")];
    let refused = olu.post(&format!("/meetups/events/{third}/series"), &form).await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", refused.body);
    assert!(refused.body.contains("The first date must be on or after this meetup&#x27;s."), "{}", refused.body);
    assert_eq!(app.count("SELECT COUNT(*) FROM meetup_events WHERE status = 'cancelled'").await, 0);

    // Fortnightly from the third: the fourth is cancelled, and the page says so.
    let form =
        [("repeat", "FORTNIGHTLY"), ("firstDate", ""), ("count", "2"), ("until", ""), ("message", "Fortnightly now.")];
    let posted = olu.post(&format!("/meetups/events/{third}/series"), &form).await;
    assert_eq!(posted.status, StatusCode::SEE_OTHER, "{}", posted.body);
    assert_eq!(posted.location(), format!("/meetups/events/{third}/series?changed=1"));
    let changed = olu.get(posted.location()).await;
    let described = format!(
        "The series is changed: Every two weeks on {} at 18:00",
        weekday(&events[2]["localStart"].as_str().unwrap()[..10])
    );
    assert!(changed.body.contains(&described), "{}", changed.body);
    assert!(changed.body.contains("1 meetup on a date it no longer has is cancelled"), "{}", changed.body);
    assert_eq!(changed.body.matches("Cancelled</span>").count(), 1);

    // The change form of a meetup in a series asks which meetups to change.
    let edit = olu.get(&format!("/meetups/events/{third}/edit")).await;
    assert!(edit.body.contains("value=\"THIS_AND_FOLLOWING\""), "{}", edit.body);
    // Someone who does not organise it sees the dates but no form.
    let mut pat = Browser::new(&app);
    pat.register("pat@example.org", "Pat").await;
    let seen = pat.get(&format!("/meetups/events/{third}/series")).await;
    assert_eq!(seen.status, StatusCode::OK);
    assert!(!seen.body.contains("Change the series"));
    // A one-off has no series page.
    assert_eq!(pat.get("/meetups/events/999999/series").await.status, StatusCode::NOT_FOUND);
}
