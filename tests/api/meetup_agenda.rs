//! A meetup's agenda as organisers build it: items with start times worked out from the
//! meetup's start and the lengths before them, changed in place, reordered, an agenda
//! copied onto another meetup, and on the site a case study found by words from its
//! title rather than typed as a number.

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::{
    case_studies::{admin, case_study, create_case_study, create_topic, PUBLISH},
    scenarios,
    site::Browser,
    support::{error_code, user_errors, Client, Scenario, TestApp, PASSWORD},
};

pub fn scenarios() -> Vec<(&'static str, Scenario)> {
    scenarios![
        meetup_agenda_items_start_when_the_one_before_ends_and_change_in_place,
        meetup_agenda_an_agenda_is_copied_onto_another_meetup_within_the_limit,
        meetup_agenda_the_site_changes_reorders_and_finds_the_case_study_by_its_title,
    ]
}

const CREATE_GROUP: &str =
    "mutation($input: CreateMeetupGroupInput!) { createMeetupGroup(input: $input) { group { id slug } userErrors { field code } } }";
const SCHEDULE: &str =
    "mutation($input: ScheduleMeetupInput!) { scheduleMeetup(input: $input) { event { id } userErrors { field code } } }";
const ADD: &str =
    "mutation($input: AddAgendaItemInput!) { addAgendaItem(input: $input) { userErrors { field code } } }";
const UPDATE: &str =
    "mutation($input: UpdateAgendaItemInput!) { updateAgendaItem(input: $input) { userErrors { field code } } }";
const MOVE: &str =
    "mutation($id: ID!, $up: Boolean!) { moveAgendaItem(input: { id: $id, up: $up }) { userErrors { code } } }";
const COPY: &str = "mutation($from: ID!, $to: ID!) { copyMeetupAgenda(input: { fromId: $from, toId: $to }) { \
    userErrors { field code message } } }";
const AGENDA: &str = "query($id: ID!) { node(id: $id) { ... on MeetupEvent { agenda { id title durationMinutes \
    startsAt speaker { handle } speakerName caseStudy { title } } } } }";

async fn group(organiser: &Client, name: &str) -> String {
    let data = organiser.data(CREATE_GROUP, json!({ "input": { "name": name, "region": "North West" } })).await;
    assert_eq!(data["createMeetupGroup"]["userErrors"], json!([]), "{data}");
    data["createMeetupGroup"]["group"]["id"].as_str().unwrap().to_string()
}

/// A meetup of `group` on 10 January 2030 (London is on UTC then) from `start`.
async fn meetup(organiser: &Client, group: &str, start: &str) -> String {
    let input = json!({ "groupId": group, "title": "TeaCamp Leeds", "timeZone": "Europe/London",
        "start": format!("2030-01-10T{start}"), "end": "2030-01-10T21:00", "venueName": "The Tetley", "going": false });
    let data = organiser.data(SCHEDULE, json!({ "input": input })).await;
    assert_eq!(data["scheduleMeetup"]["userErrors"], json!([]), "{data}");
    data["scheduleMeetup"]["event"]["id"].as_str().unwrap().to_string()
}

async fn add(organiser: &Client, event: &str, title: &str, minutes: i64) {
    let input = json!({ "eventId": event, "kind": "TALK", "title": title, "durationMinutes": minutes });
    let data = organiser.data(ADD, json!({ "input": input })).await;
    assert_eq!(data["addAgendaItem"]["userErrors"], json!([]), "{data}");
}

async fn agenda(client: &Client, event: &str) -> Vec<Value> {
    client.data(AGENDA, json!({ "id": event })).await["node"]["agenda"].as_array().unwrap().clone()
}

fn shown(items: &[Value]) -> Vec<(String, String)> {
    items
        .iter()
        .map(|i| (i["title"].as_str().unwrap().to_string(), i["startsAt"].as_str().unwrap()[11..16].to_string()))
        .collect()
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect()
}

async fn meetup_agenda_items_start_when_the_one_before_ends_and_change_in_place(app: TestApp) {
    let olu = app.member("olu@example.org", "Olu").await;
    let ada = app.member("ada@example.org", "Ada").await;
    let event = meetup(&olu, &group(&olu, "TeaCamp Leeds").await, "18:00").await;
    add(&olu, &event, "Welcome", 10).await;
    add(&olu, &event, "Bin reminders", 30).await;
    add(&olu, &event, "Tea", 20).await;
    let items = agenda(&olu, &event).await;
    assert_eq!(shown(&items), pairs(&[("Welcome", "18:00"), ("Bin reminders", "18:10"), ("Tea", "18:40")]));

    // Changed in place: the talk grows, gets its speaker, and the break moves later.
    let input = json!({ "id": items[1]["id"], "kind": "TALK", "title": "How we cut missed bins",
        "speakerHandle": "ada", "durationMinutes": 45 });
    let data = olu.data(UPDATE, json!({ "input": input })).await;
    assert_eq!(data["updateAgendaItem"]["userErrors"], json!([]), "{data}");
    let items = agenda(&olu, &event).await;
    assert_eq!(shown(&items), pairs(&[("Welcome", "18:00"), ("How we cut missed bins", "18:10"), ("Tea", "18:55")]));
    assert_eq!(items[1]["speaker"]["handle"], "ada");

    // Moving the break up a place moves the times with it.
    olu.data(MOVE, json!({ "id": items[2]["id"], "up": true })).await;
    let items = agenda(&olu, &event).await;
    assert_eq!(shown(&items), pairs(&[("Welcome", "18:00"), ("Tea", "18:10"), ("How we cut missed bins", "18:30")]));

    // What cannot be saved is refused, field by field, and nothing changes.
    let bad = json!({ "id": items[2]["id"], "kind": "TALK", "title": " ", "speakerHandle": "nobody",
        "durationMinutes": 481, "caseStudyId": crate::artefacts::unknown("CaseStudy") });
    let data = olu.data(UPDATE, json!({ "input": bad })).await;
    let mut fields: Vec<String> = user_errors(&data["updateAgendaItem"]).into_iter().map(|(f, _)| f).collect();
    fields.sort();
    assert_eq!(fields, ["caseStudyId", "durationMinutes", "speakerHandle", "title"]);
    let mine = json!({ "input": { "id": items[2]["id"], "kind": "BREAK", "title": "Mine", "durationMinutes": 5 } });
    assert_eq!(error_code(&ada.gql(UPDATE, mine).await), "FORBIDDEN");
    assert_eq!(agenda(&olu, &event).await, items);
}

async fn meetup_agenda_an_agenda_is_copied_onto_another_meetup_within_the_limit(app: TestApp) {
    let olu = app.member("olu@example.org", "Olu").await;
    let ada = app.member("ada@example.org", "Ada").await;
    let leeds = group(&olu, "TeaCamp Leeds").await;
    let source = meetup(&olu, &leeds, "18:00").await;
    let target = meetup(&olu, &leeds, "17:00").await;
    for (title, minutes) in [("Welcome", 10), ("Show and tell", 40), ("Tea", 15)] {
        add(&olu, &source, title, minutes).await;
    }
    add(&olu, &target, "Arrivals", 30).await;

    let data = olu.data(COPY, json!({ "from": source, "to": target })).await;
    assert_eq!(data["copyMeetupAgenda"]["userErrors"], json!([]), "{data}");
    assert_eq!(
        shown(&agenda(&olu, &target).await),
        pairs(&[("Arrivals", "17:00"), ("Welcome", "17:30"), ("Show and tell", "17:40"), ("Tea", "18:20")])
    );
    assert_eq!(agenda(&olu, &source).await.len(), 3, "the source keeps its own");

    // Refusals change nothing.
    let elsewhere = meetup(&olu, &group(&olu, "TeaCamp York").await, "18:00").await;
    let refused = |data: Value| user_errors(&data["copyMeetupAgenda"]);
    assert_eq!(
        refused(olu.data(COPY, json!({ "from": elsewhere, "to": target })).await),
        [("fromId".into(), "INVALID".into())]
    );
    assert_eq!(
        refused(olu.data(COPY, json!({ "from": target, "to": target })).await),
        [("toId".into(), "INVALID".into())]
    );
    assert_eq!(error_code(&ada.gql(COPY, json!({ "from": source, "to": target })).await), "FORBIDDEN");
    // Up to 50 in all: 4 + 3 + … the copy that would pass 50 adds nothing.
    for n in 0..44 {
        add(&olu, &target, &format!("Lightning talk {n}"), 5).await;
    }
    assert_eq!(agenda(&olu, &target).await.len(), 48);
    assert_eq!(
        refused(olu.data(COPY, json!({ "from": source, "to": target })).await),
        [("toId".into(), "LIMIT_REACHED".into())]
    );
    assert_eq!(agenda(&olu, &target).await.len(), 48);
    // Not onto a cancelled meetup.
    let cancel = "mutation($id: ID!) { cancelMeetup(input: { id: $id }) { userErrors { code } } }";
    olu.data(cancel, json!({ "id": elsewhere })).await;
    let other_leeds = meetup(&olu, &leeds, "19:00").await;
    olu.data(cancel, json!({ "id": other_leeds })).await;
    assert_eq!(
        refused(olu.data(COPY, json!({ "from": source, "to": other_leeds })).await),
        [("toId".into(), "INVALID".into())]
    );
    assert_eq!(agenda(&olu, &other_leeds).await.len(), 0);
}

async fn meetup_agenda_the_site_changes_reorders_and_finds_the_case_study_by_its_title(app: TestApp) {
    let curator = admin(&app, "curator@example.org", "Curator").await;
    let topic = create_topic(&curator, "Waste").await;
    let ada = app.member("ada@example.org", "Ada").await;
    for title in ["Bin reminders by text", "Bin collection routes", "Parking permits online"] {
        let story = create_case_study(&ada, case_study(title, &[&topic])).await["id"].as_str().unwrap().to_string();
        ada.data(PUBLISH, json!({ "id": story })).await;
    }
    let olu_api = app.member("olu@example.org", "Olu").await;
    let event = meetup(&olu_api, &group(&olu_api, "TeaCamp Leeds").await, "18:00").await;
    let number = crate::artefacts::number("MeetupEvent", &json!(event));
    let mut olu = Browser::new(&app);
    olu.sign_in("olu@example.org", PASSWORD).await;
    let page = format!("/meetups/events/{number}");
    olu.get(&page).await;
    let item = |title: &'static str, case_study: &'static str| {
        vec![("kind", "TALK"), ("title", title), ("speaker", ""), ("durationMinutes", "20"), ("caseStudy", case_study)]
    };

    // Words that match one case study link it at once.
    let added = olu.post(&format!("{page}/agenda"), &item("Parking", "parking permits")).await;
    assert_eq!(added.status, StatusCode::SEE_OTHER, "{}", added.body);
    // Words that match nothing are pointed out, and nothing is added.
    let unknown = olu.post(&format!("{page}/agenda"), &item("Ghosts", "haunted libraries")).await;
    assert_eq!(unknown.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(unknown.body.contains("No published case study matches “haunted libraries”"), "{}", unknown.body);
    // Words that match several offer them to choose from, keeping what was typed.
    let several = olu.post(&format!("{page}/agenda"), &item("Bins", "bin")).await;
    assert_eq!(several.status, StatusCode::OK, "{}", several.body);
    assert!(several.body.contains("Which case study is it about?"), "{}", several.body);
    assert!(several.body.contains("Bin reminders by text") && several.body.contains("Bin collection routes"));
    assert!(several.body.contains("name=\"title\" type=\"text\" value=\"Bins\""), "{}", several.body);
    let attribute = "name=\"caseStudyChoice\" value=\"";
    let start = several.body.find(attribute).unwrap() + attribute.len();
    let choice = several.body[start..start + several.body[start..].find('"').unwrap()].to_string();
    let mut chosen = item("Bins", "bin");
    chosen.push(("caseStudyChoice", choice.as_str()));
    let added = olu.post(&format!("{page}/agenda"), &chosen).await;
    assert_eq!(added.status, StatusCode::SEE_OTHER, "{}", added.body);
    assert_eq!(app.count("SELECT COUNT(*) FROM meetup_agenda_items WHERE case_study_id IS NOT NULL").await, 2);
    assert_eq!(app.count("SELECT COUNT(*) FROM meetup_agenda_items").await, 2);

    // The page shows start times, and buttons that move items without JavaScript.
    let shown = olu.get(&page).await;
    assert!(shown.body.contains("<span class=\"agenda__time\">18:00</span>"), "{}", shown.body);
    assert!(shown.body.contains("<span class=\"agenda__time\">18:20</span>"), "{}", shown.body);
    let items = agenda(&olu_api, &event).await;
    let moved = olu
        .post(&format!("{page}/agenda/move"), &[("item", items[1]["id"].as_str().unwrap()), ("direction", "up")])
        .await;
    assert_eq!(moved.status, StatusCode::SEE_OTHER);
    let titles: Vec<Value> = agenda(&olu_api, &event).await.iter().map(|i| i["title"].clone()).collect();
    assert_eq!(titles, [json!("Bins"), json!("Parking")]);

    // Changing an item: its page is filled in, and saving keeps its place.
    let item_number = crate::artefacts::number("AgendaItem", &items[0]["id"]);
    let form = olu.get(&format!("{page}/agenda/{item_number}")).await;
    assert_eq!(form.status, StatusCode::OK);
    assert!(form.body.contains("name=\"title\" type=\"text\" value=\"Parking\""), "{}", form.body);
    assert!(form.body.contains("value=\"&#x2f;case-studies&#x2f;"), "{}", form.body);
    let saved = olu
        .post(
            &format!("{page}/agenda/{item_number}"),
            &[
                ("kind", "DISCUSSION"),
                ("title", "Parking, together"),
                ("speaker", "@ada"),
                ("durationMinutes", "25"),
                ("caseStudy", ""),
            ],
        )
        .await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.body);
    let items = agenda(&olu_api, &event).await;
    assert_eq!(
        (&items[1]["title"], &items[1]["speaker"]["handle"], &items[1]["caseStudy"]),
        (&json!("Parking, together"), &json!("ada"), &Value::Null)
    );

    // Someone who does not organise it gets no form.
    let mut pat = Browser::new(&app);
    pat.register("pat@example.org", "Pat").await;
    assert_eq!(pat.get(&format!("{page}/agenda/{item_number}")).await.status, StatusCode::FORBIDDEN);
}
