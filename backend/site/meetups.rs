//! The meetup pages: groups, scheduling a meetup or a recurring series, a meetup with
//! its RSVP (and waitlist place) and calendar link, the organiser's attendee list (and
//! CSV; taking someone off after asking, letting them back, ticking who came, writing to
//! those going), moving or cancelling a meetup, and "my meetups" with a personal calendar.

use jiff::civil;
use poem::{
    handler,
    http::{header, StatusCode},
    web::Path,
    Body, Request, Response,
};
use serde_json::{json, Value};

use super::{
    forms::{form_errors, query_params, refused, respond},
    page_id,
    visit::{time_zone_names, Form, Mutation, Stop, Visit},
};

const REPEATS: [&str; 5] = ["NONE", "WEEKLY", "FORTNIGHTLY", "MONTHLY_BY_DATE", "MONTHLY_BY_WEEKDAY"];

#[handler]
pub async fn list(request: &Request) -> Response {
    respond(
        async {
            let visit = Visit::new(request).await?;
            let after = query_params(request).remove("after").filter(|a| a.len() <= 200);
            let data = visit.query("meetups", json!({ "after": after })).await?;
            Ok(visit.render(StatusCode::OK, "meetups.html", &data, json!({})))
        }
        .await,
    )
}

async fn render_group_form(visit: &Visit, status: StatusCode, values: Value, errors: Value) -> Result<Response, Stop> {
    let data = visit.query("meetup_group_new", json!({})).await?;
    Ok(visit.render(status, "meetup_group_form.html", &data, json!({ "values": values, "errors": errors })))
}

#[handler]
pub async fn new_group_form(request: &Request) -> Response {
    respond(
        async {
            let visit = Visit::new(request).await?;
            if !visit.signed_in() {
                return Ok(visit.sign_in_first());
            }
            render_group_form(&visit, StatusCode::OK, json!({}), Value::Null).await
        }
        .await,
    )
}

#[handler]
pub async fn create_group(request: &Request, body: Body) -> Response {
    respond(
        async {
            let (mut visit, form) = Visit::posted(request, body).await?;
            let input =
                json!({ "name": form.text("name"), "region": form.text("region"), "description": form.text("description") });
            let errors = match visit.mutate("create_meetup_group", json!({ "input": input })).await? {
                Mutation::Done(payload) => {
                    let slug = payload["group"]["slug"].as_str().unwrap_or_default();
                    return Ok(visit.redirect(&format!("/meetups/groups/{slug}")));
                }
                Mutation::Invalid(errors) => form_errors(&errors, "name"),
                Mutation::Refused(message) => refused(message, "name"),
            };
            render_group_form(&visit, StatusCode::UNPROCESSABLE_ENTITY, input, errors).await
        }
        .await,
    )
}

#[handler]
pub async fn group(request: &Request, Path(slug): Path<String>) -> Response {
    respond(
        async {
            let visit = Visit::new(request).await?;
            let data = visit.query("meetup_group", json!({ "slug": slug })).await?;
            if data["group"].is_null() {
                return Ok(visit.not_found().await);
            }
            let note = query_params(request).remove("note");
            Ok(visit.render(StatusCode::OK, "meetup_group.html", &data, json!({ "note": note })))
        }
        .await,
    )
}

/// Joins or leaves the group at `slug`.
async fn membership(request: &Request, body: Body, slug: &str, document: &str) -> Result<Response, Stop> {
    let (mut visit, _) = Visit::posted(request, body).await?;
    let data = visit.query("meetup_group", json!({ "slug": slug })).await?;
    let Some(id) = data["group"]["id"].as_str().map(str::to_string) else { return Ok(visit.not_found().await) };
    let note = match visit.mutate(document, json!({ "input": { "groupId": id } })).await? {
        Mutation::Done(_) => {
            if document == "join_meetup_group" {
                "joined"
            } else {
                "left"
            }
        }
        Mutation::Invalid(_) | Mutation::Refused(_) => "last-organiser",
    };
    Ok(visit.redirect(&format!("/meetups/groups/{slug}?note={note}")))
}

#[handler]
pub async fn add_co_organiser(request: &Request, body: Body, Path(slug): Path<String>) -> Response {
    respond(
        async {
            let (mut visit, form) = Visit::posted(request, body).await?;
            let data = visit.query("meetup_group", json!({ "slug": slug })).await?;
            let Some(id) = data["group"]["id"].as_str().map(str::to_string) else { return Ok(visit.not_found().await) };
            let input = json!({ "groupId": id, "handle": form.text("handle").trim().trim_start_matches('@') });
            let errors = match visit.mutate("add_co_organiser", json!({ "input": input })).await? {
                Mutation::Done(_) => return Ok(visit.redirect(&format!("/meetups/groups/{slug}?note=co-organiser"))),
                Mutation::Invalid(errors) => form_errors(&errors, "handle"),
                Mutation::Refused(message) => refused(message, "handle"),
            };
            let extra = json!({ "errors": errors, "handle": form.text("handle") });
            Ok(visit.render(StatusCode::UNPROCESSABLE_ENTITY, "meetup_group.html", &data, extra))
        }
        .await,
    )
}

#[handler]
pub async fn join(request: &Request, body: Body, Path(slug): Path<String>) -> Response {
    respond(membership(request, body, &slug, "join_meetup_group").await)
}

#[handler]
pub async fn leave(request: &Request, body: Body, Path(slug): Path<String>) -> Response {
    respond(membership(request, body, &slug, "leave_meetup_group").await)
}

/// The scheduling form: a new meetup (or series) for the group `slug`, or changes to the
/// meetup `number`.
async fn render_event_form(
    visit: &Visit,
    status: StatusCode,
    target: (&str, &str),
    values: Value,
    errors: Value,
) -> Result<Response, Stop> {
    let data = visit.query("viewer", json!({})).await?;
    let (kind, key) = target;
    let context = json!({
        "values": values, "errors": errors, "time_zones": time_zone_names(), "repeats": REPEATS,
        "editing": kind == "event", "key": key,
    });
    Ok(visit.render(status, "meetup_event_form.html", &data, context))
}

#[handler]
pub async fn schedule_form(request: &Request, Path(slug): Path<String>) -> Response {
    respond(
        async {
            let visit = Visit::new(request).await?;
            if !visit.signed_in() {
                return Ok(visit.sign_in_first());
            }
            let data = visit.query("meetup_group", json!({ "slug": slug })).await?;
            if data["group"].is_null() {
                return Ok(visit.not_found().await);
            }
            if data["group"]["viewerRole"] != "ORGANISER" {
                let message = "Only the group's organisers can schedule its meetups.";
                return Ok(visit.error_page(StatusCode::FORBIDDEN, "This is for organisers", message).await);
            }
            let values = json!({
                "timeZone": "Europe/London", "repeat": "NONE", "weekdayOrdinal": "2", "count": "6", "going": "1",
            });
            render_event_form(&visit, StatusCode::OK, ("group", &slug), values, Value::Null).await
        }
        .await,
    )
}

fn event_values(form: &Form) -> Value {
    let names = [
        "title",
        "description",
        "timeZone",
        "date",
        "startTime",
        "endTime",
        "endDate",
        "venueName",
        "venueAddress",
        "venueDirections",
        "onlineUrl",
        "capacity",
        "repeat",
        "weekdayOrdinal",
        "count",
        "until",
        "going",
    ];
    Value::Object(names.iter().map(|n| (n.to_string(), json!(form.text(n)))).collect())
}

/// The event's fields as the API takes them, from the form's: the date and times become
/// the API's local start and end (see [`local_times`]). Date and times the form cannot
/// read go as a blank start and end, which the API refuses, so that the page shows its
/// other problems too; [`on_form_fields`] puts the form's words for them in place of the
/// API's.
fn event_fields(values: &Value) -> (Value, Vec<Value>) {
    let text = |name: &str| values[name].as_str().unwrap_or_default().to_string();
    let optional = |name: &str| Some(text(name)).filter(|v| !v.trim().is_empty());
    let (start, end, problems) = match local_times(values) {
        Ok((start, end)) => (start, end, Vec::new()),
        Err(problems) => (String::new(), String::new(), problems),
    };
    // A capacity that is not a number is sent as one that fails validation, so the form
    // says so beside the field.
    let capacity = optional("capacity").map(|c| c.trim().parse::<i64>().unwrap_or(0));
    let input = json!({
        "title": text("title"), "description": text("description"), "timeZone": text("timeZone"),
        "start": start, "end": end, "venueName": text("venueName"), "venueAddress": text("venueAddress"),
        "venueDirections": text("venueDirections"), "onlineUrl": optional("onlineUrl"), "capacity": capacity,
    });
    (input, problems)
}

/// The local start and end ("2027-03-11T18:30:00") from the form's date, start and end
/// times (24-hour) and the day it ends on, which is the same day when left blank. A date
/// input sends `2027-03-11` whatever the browser shows; a time input sends `18:30`.
fn local_times(values: &Value) -> Result<(String, String), Vec<Value>> {
    let text = |name: &str| values[name].as_str().unwrap_or_default().trim().to_string();
    let mut problems = Vec::new();
    let mut read = |name: &str, message: &str| -> Option<String> {
        let value = text(name);
        let parsed = match name {
            "startTime" | "endTime" => value.parse::<civil::Time>().is_ok(),
            _ => value.parse::<civil::Date>().is_ok(),
        };
        if !parsed {
            problems.push(json!({ "field": name, "message": message }));
        }
        Some(value).filter(|_| parsed)
    };
    let date = read("date", "Enter the day it happens on, in the date picker or as your browser shows dates.");
    let start = read("startTime", "Enter when it starts, in 24-hour time, such as 18:30.");
    let end = read("endTime", "Enter when it ends, in 24-hour time, such as 20:00.");
    let end_date = if text("endDate").is_empty() {
        date.clone()
    } else {
        read("endDate", "Enter the day it ends on, or leave it blank when it ends the same day.")
    };
    match (date, start, end, end_date) {
        (Some(date), Some(start), Some(end), Some(end_date)) => {
            Ok((format!("{date}T{start}"), format!("{end_date}T{end}")))
        }
        _ => Err(problems),
    }
}

/// The API's problems with the local start and end, on the form's fields for them; when
/// the form could not read its date and times (`own`), its words instead.
fn on_form_fields(errors: Vec<Value>, own: Vec<Value>) -> Vec<Value> {
    let mut errors: Vec<Value> = errors
        .into_iter()
        .filter(|e| own.is_empty() || !matches!(e["field"].as_str(), Some("start" | "end")))
        .map(|mut error| {
            match error["field"].as_str() {
                Some("start") => error["field"] = json!("date"),
                Some("end") => error["field"] = json!("endTime"),
                _ => {}
            }
            error
        })
        .collect();
    errors.extend(own);
    errors
}

/// The API's recurrence from a form's `weekdayOrdinal`, `count` and `until` (a last date
/// wins over a count) for `repeat`, one of [`REPEATS`] but `NONE`.
fn recurrence(repeat: &str, values: &Value) -> Value {
    let count = values["count"].as_str().and_then(|c| c.trim().parse::<i64>().ok());
    let until = values["until"].as_str().filter(|u| !u.trim().is_empty());
    let ordinal = values["weekdayOrdinal"].as_str().and_then(|o| o.parse::<i64>().ok());
    json!({
        "frequency": repeat,
        "weekdayOrdinal": if repeat == "MONTHLY_BY_WEEKDAY" { ordinal } else { None },
        "count": if until.is_some() { None } else { count },
        "until": until,
    })
}

#[handler]
pub async fn schedule(request: &Request, body: Body, Path(slug): Path<String>) -> Response {
    respond(
        async {
            let (mut visit, form) = Visit::posted(request, body).await?;
            let data = visit.query("meetup_group", json!({ "slug": slug })).await?;
            let Some(group_id) = data["group"]["id"].as_str().map(str::to_string) else {
                return Ok(visit.not_found().await);
            };
            let values = event_values(&form);
            let (mut input, own) = event_fields(&values);
            input["groupId"] = json!(group_id);
            // An unticked box sends nothing: not going.
            input["going"] = json!(values["going"] == "1");
            let repeat = values["repeat"].as_str().filter(|r| REPEATS.contains(r)).unwrap_or("NONE");
            let outcome = if repeat == "NONE" {
                visit.mutate("schedule_meetup", json!({ "input": input })).await?
            } else {
                input["recurrence"] = recurrence(repeat, &values);
                visit.mutate("schedule_meetup_series", json!({ "input": input })).await?
            };
            let errors = match outcome {
                Mutation::Done(payload) => {
                    let first = payload["event"]["id"].as_str().or(payload["events"][0]["id"].as_str());
                    return Ok(match first.and_then(|id| crate::graphql::relay::parse_global_id(id).ok()) {
                        Some((_, number)) => visit.redirect(&format!("/meetups/events/{number}?scheduled=1")),
                        None => visit.redirect(&format!("/meetups/groups/{slug}")),
                    });
                }
                Mutation::Invalid(errors) => form_errors(&on_form_fields(errors, own), "title"),
                Mutation::Refused(message) => refused(message, "title"),
            };
            render_event_form(&visit, StatusCode::UNPROCESSABLE_ENTITY, ("group", &slug), values, errors).await
        }
        .await,
    )
}

#[handler]
pub async fn event(request: &Request, Path(number): Path<String>) -> Response {
    respond(event_page(request, &number, StatusCode::OK, json!({})).await)
}

/// A meetup's page; `extra` carries a failed agenda form's errors and values.
async fn event_page(request: &Request, number: &str, status: StatusCode, extra: Value) -> Result<Response, Stop> {
    let visit = Visit::new(request).await?;
    let Some(id) = page_id("MeetupEvent", number) else { return Ok(visit.not_found().await) };
    let data = visit.query("meetup_event", json!({ "id": id })).await?;
    if data["event"].is_null() {
        return Ok(visit.not_found().await);
    }
    let params = query_params(request);
    let base = visit.base_url();
    let mut context = json!({
        "number": number,
        "scheduled": params.contains_key("scheduled"),
        "changed": params.contains_key("changed"),
        "cancelled": params.contains_key("cancelled"),
        "reinstated": params.contains_key("reinstated"),
        "agenda_copied": params.contains_key("agenda-copied"),
        "json_ld": crate::open_data::json_ld::meetup_event(&data, &base, &|id| super::page_url(&base, id)),
    });
    if let (Some(object), Value::Object(more)) = (context.as_object_mut(), extra) {
        object.extend(more);
    }
    Ok(visit.render(status, "meetup_event.html", &data, context))
}

/// What an agenda form's case study field names.
enum Named {
    /// A case study (its id), or none.
    CaseStudy(Option<String>),
    /// Several match the words given: the form offers them to choose from.
    Choose(Vec<Value>),
    /// None matches; the message says so.
    Unknown(String),
}

/// The case study an agenda form names: one chosen from those a search offered
/// (`caseStudyChoice`), or the `caseStudy` field: blank for none, a case study's address
/// or number, or words from its title, which are searched for.
async fn named_case_study(visit: &Visit, form: &Form) -> Result<Named, Stop> {
    if let Some(choice) = form.get("caseStudyChoice").filter(|c| !c.is_empty()) {
        return Ok(Named::CaseStudy(Some(choice.to_string())));
    }
    let written = form.text("caseStudy");
    let words = written.trim();
    if words.is_empty() {
        return Ok(Named::CaseStudy(None));
    }
    let number = words.rsplit("/case-studies/").next().unwrap_or(words).trim_start_matches('#');
    if let Some(id) = page_id("CaseStudy", number.trim_end_matches('/')) {
        return Ok(Named::CaseStudy(Some(id)));
    }
    // A search reads at most a few hundred characters; a title needs far fewer.
    let words: String = words.chars().take(100).collect();
    let data = visit.query("agenda_case_studies", json!({ "words": words })).await?;
    let mut hits: Vec<Value> = data["hits"].as_array().cloned().unwrap_or_default();
    hits.retain(|hit| hit["node"]["title"].is_string());
    Ok(match hits.len() {
        0 => Named::Unknown(format!("No published case study matches “{words}”: try other words from its title.")),
        1 => Named::CaseStudy(hits[0]["node"]["id"].as_str().map(str::to_string)),
        _ => Named::Choose(hits),
    })
}

/// An agenda form's fields as the API takes them (but the case study), and as the form
/// shows them again.
fn agenda_fields(form: &Form) -> (Value, Value) {
    let kind = form.get("kind").filter(|k| ["TALK", "DISCUSSION", "BREAK"].contains(k)).unwrap_or("TALK");
    let speaker = form.text("speaker");
    let (handle, name) = match speaker.trim().strip_prefix('@') {
        Some(handle) => (Some(handle.to_string()), String::new()),
        None => (None, speaker.trim().to_string()),
    };
    let input = json!({
        "kind": kind, "title": form.text("title"), "speakerHandle": handle, "speakerName": name,
        "durationMinutes": form.text("durationMinutes").trim().parse::<i64>().unwrap_or(0),
    });
    let values = json!({
        "kind": kind, "title": form.text("title"), "speaker": speaker,
        "durationMinutes": form.text("durationMinutes"), "caseStudy": form.text("caseStudy"),
    });
    (input, values)
}

/// Saves an agenda form with `document` (adding or changing an item), once its case
/// study is known; otherwise, or when the API refuses it, the errors to show and the
/// case studies to choose from.
async fn save_agenda_item(
    visit: &mut Visit,
    form: &Form,
    document: &str,
    mut input: Value,
) -> Result<Result<(), (Value, Value)>, Stop> {
    input["caseStudyId"] = match named_case_study(visit, form).await? {
        Named::CaseStudy(id) => json!(id),
        Named::Choose(hits) => {
            let message = "Several case studies match: choose the one it is about.";
            let errors = if form.get("caseStudyChoice").is_some() {
                refused(message.into(), "caseStudyChoice")
            } else {
                Value::Null
            };
            return Ok(Err((errors, json!(hits))));
        }
        Named::Unknown(message) => return Ok(Err((refused(message, "caseStudy"), Value::Null))),
    };
    Ok(match visit.mutate(document, json!({ "input": input })).await? {
        Mutation::Done(_) => Ok(()),
        Mutation::Invalid(mut errors) => {
            for error in errors.iter_mut().filter(|e| e["field"] == "caseStudyId" || e["field"] == "speakerHandle") {
                error["field"] = json!(if error["field"] == "caseStudyId" { "caseStudy" } else { "speaker" });
            }
            Err((form_errors(&errors, "title"), Value::Null))
        }
        Mutation::Refused(message) => Err((refused(message, "title"), Value::Null)),
    })
}

#[handler]
pub async fn add_agenda_item(request: &Request, body: Body, Path(number): Path<String>) -> Response {
    respond(
        async {
            let (mut visit, form) = Visit::posted(request, body).await?;
            let Some(id) = page_id("MeetupEvent", &number) else { return Ok(visit.not_found().await) };
            let (mut input, values) = agenda_fields(&form);
            input["eventId"] = json!(id);
            let (errors, choices) = match save_agenda_item(&mut visit, &form, "add_agenda_item", input).await? {
                Ok(()) => return Ok(visit.redirect(&format!("/meetups/events/{number}#agenda"))),
                Err(problems) => problems,
            };
            let status = if choices.is_null() { StatusCode::UNPROCESSABLE_ENTITY } else { StatusCode::OK };
            let extra = json!({ "errors": errors, "agenda": values, "choices": choices });
            event_page(request, &number, status, extra).await
        }
        .await,
    )
}

/// The page that changes one agenda item; `values`, `errors` and `choices` from a form
/// sent before, or the item as it is.
async fn agenda_item_page(
    visit: &Visit,
    number: &str,
    item_number: &str,
    status: StatusCode,
    sent: Option<(Value, Value, Value)>,
) -> Result<Response, Stop> {
    let data = match organised(visit, number, "meetup_event").await? {
        Ok(data) => data,
        Err(page) => return Ok(page),
    };
    let item = data["event"]["agenda"]
        .as_array()
        .and_then(|items| {
            items.iter().find(|i| i["id"].as_str().and_then(super::node_number) == item_number.parse::<i64>().ok())
        })
        .cloned();
    let Some(item) = item else { return Ok(visit.not_found().await) };
    let (values, errors, choices) = sent.unwrap_or_else(|| {
        let speaker = match item["speaker"]["handle"].as_str() {
            Some(handle) => format!("@{handle}"),
            None => item["speakerName"].as_str().unwrap_or_default().to_string(),
        };
        let case_study = item["caseStudy"]["id"].as_str().map(super::node_path).unwrap_or_default();
        let values = json!({
            "kind": item["kind"], "title": item["title"], "speaker": speaker,
            "durationMinutes": item["durationMinutes"].to_string(), "caseStudy": case_study,
        });
        (values, Value::Null, Value::Null)
    });
    let context = json!({
        "number": number, "item_number": item_number, "item": item, "values": values, "errors": errors, "choices": choices,
    });
    Ok(visit.render(status, "meetup_agenda_item.html", &data, context))
}

#[handler]
pub async fn agenda_item_form(request: &Request, Path((number, item)): Path<(String, String)>) -> Response {
    respond(
        async {
            let visit = Visit::new(request).await?;
            if !visit.signed_in() {
                return Ok(visit.sign_in_first());
            }
            agenda_item_page(&visit, &number, &item, StatusCode::OK, None).await
        }
        .await,
    )
}

#[handler]
pub async fn update_agenda_item(
    request: &Request,
    body: Body,
    Path((number, item)): Path<(String, String)>,
) -> Response {
    respond(
        async {
            let (mut visit, form) = Visit::posted(request, body).await?;
            let Some(id) = page_id("AgendaItem", &item) else { return Ok(visit.not_found().await) };
            let (mut input, values) = agenda_fields(&form);
            input["id"] = json!(id);
            let (errors, choices) = match save_agenda_item(&mut visit, &form, "update_agenda_item", input).await? {
                Ok(()) => return Ok(visit.redirect(&format!("/meetups/events/{number}#agenda"))),
                Err(problems) => problems,
            };
            let status = if choices.is_null() { StatusCode::UNPROCESSABLE_ENTITY } else { StatusCode::OK };
            agenda_item_page(&visit, &number, &item, status, Some((values, errors, choices))).await
        }
        .await,
    )
}

#[handler]
pub async fn remove_agenda_item(request: &Request, body: Body, Path(number): Path<String>) -> Response {
    respond(
        async {
            let (mut visit, form) = Visit::posted(request, body).await?;
            if page_id("MeetupEvent", &number).is_none() {
                return Ok(visit.not_found().await);
            }
            let item = json!({ "input": { "id": form.text("item") } });
            visit.mutate("remove_agenda_item", item).await?;
            Ok(visit.redirect(&format!("/meetups/events/{number}#agenda")))
        }
        .await,
    )
}

/// Moves an agenda item one place up or down: a button per direction, which works
/// without JavaScript.
#[handler]
pub async fn move_agenda_item(request: &Request, body: Body, Path(number): Path<String>) -> Response {
    respond(
        async {
            let (mut visit, form) = Visit::posted(request, body).await?;
            if page_id("MeetupEvent", &number).is_none() {
                return Ok(visit.not_found().await);
            }
            let input = json!({ "input": { "id": form.text("item"), "up": form.get("direction") == Some("up") } });
            visit.mutate("move_agenda_item", input).await?;
            Ok(visit.redirect(&format!("/meetups/events/{number}#agenda")))
        }
        .await,
    )
}

/// Copies this meetup's agenda onto another of the group's, chosen from those to come.
#[handler]
pub async fn copy_agenda(request: &Request, body: Body, Path(number): Path<String>) -> Response {
    respond(
        async {
            let (mut visit, form) = Visit::posted(request, body).await?;
            let Some(id) = page_id("MeetupEvent", &number) else { return Ok(visit.not_found().await) };
            let input = json!({ "input": { "fromId": id, "toId": form.text("to") } });
            let errors = match visit.mutate("copy_meetup_agenda", input).await? {
                Mutation::Done(payload) => {
                    let to = payload["event"]["id"].as_str().map(super::node_path);
                    return Ok(visit.redirect(&format!("{}?agenda-copied=1#agenda", to.unwrap_or_default())));
                }
                Mutation::Invalid(errors) => {
                    let errors: Vec<Value> = errors
                        .into_iter()
                        .map(|mut e| {
                            e["field"] = json!("to");
                            e
                        })
                        .collect();
                    form_errors(&errors, "to")
                }
                Mutation::Refused(message) => refused(message, "to"),
            };
            event_page(request, &number, StatusCode::UNPROCESSABLE_ENTITY, json!({ "errors": errors })).await
        }
        .await,
    )
}

#[handler]
pub async fn rsvp(request: &Request, body: Body, Path(number): Path<String>) -> Response {
    respond(
        async {
            let (mut visit, form) = Visit::posted(request, body).await?;
            let Some(id) = page_id("MeetupEvent", &number) else { return Ok(visit.not_found().await) };
            let input = json!({ "eventId": id, "going": form.get("going") == Some("1") });
            let errors = match visit.mutate("rsvp", json!({ "input": input })).await? {
                Mutation::Done(_) => return Ok(visit.redirect(&format!("/meetups/events/{number}"))),
                // A cancelled or finished meetup: say so on its page.
                Mutation::Invalid(errors) => form_errors(&errors, "rsvp-heading"),
                Mutation::Refused(message) => refused(message, "rsvp-heading"),
            };
            event_page(request, &number, StatusCode::UNPROCESSABLE_ENTITY, json!({ "errors": errors })).await
        }
        .await,
    )
}

/// The page that asks before a member gives up a seat in a full meetup, which goes to
/// the first on the waitlist at once.
#[handler]
pub async fn give_up_form(request: &Request, Path(number): Path<String>) -> Response {
    respond(
        async {
            let visit = Visit::new(request).await?;
            if !visit.signed_in() {
                return Ok(visit.sign_in_first());
            }
            let Some(id) = page_id("MeetupEvent", &number) else { return Ok(visit.not_found().await) };
            let data = visit.query("meetup_give_up", json!({ "id": id })).await?;
            if data["event"].is_null() {
                return Ok(visit.not_found().await);
            }
            if data["event"]["viewerRsvp"]["status"] != "GOING" {
                return Ok(visit.redirect(&format!("/meetups/events/{number}")));
            }
            Ok(visit.render(StatusCode::OK, "meetup_give_up.html", &data, json!({ "number": number })))
        }
        .await,
    )
}

/// The page that asks an organiser to confirm a cancellation: who will be told, which
/// occurrences (for a series), and a message for them.
#[handler]
pub async fn cancel_form(request: &Request, Path(number): Path<String>) -> Response {
    respond(
        async {
            let visit = Visit::new(request).await?;
            if !visit.signed_in() {
                return Ok(visit.sign_in_first());
            }
            match organised(&visit, &number, "meetup_cancel").await? {
                Ok(data) => Ok(render_cancel(&visit, StatusCode::OK, &number, &data, json!({}), Value::Null)),
                Err(page) => Ok(page),
            }
        }
        .await,
    )
}

fn render_cancel(
    visit: &Visit,
    status: StatusCode,
    number: &str,
    data: &Value,
    values: Value,
    errors: Value,
) -> Response {
    let context = json!({ "number": number, "values": values, "errors": errors });
    visit.render(status, "meetup_cancel.html", data, context)
}

#[handler]
pub async fn cancel(request: &Request, body: Body, Path(number): Path<String>) -> Response {
    respond(
        async {
            let (mut visit, form) = Visit::posted(request, body).await?;
            let Some(id) = page_id("MeetupEvent", &number) else { return Ok(visit.not_found().await) };
            let scope = if form.get("scope") == Some("THIS_AND_FOLLOWING") { "THIS_AND_FOLLOWING" } else { "THIS" };
            let input = json!({ "id": id, "scope": scope, "message": form.text("message") });
            let errors = match visit.mutate("cancel_meetup", json!({ "input": input })).await? {
                Mutation::Done(_) => return Ok(visit.redirect(&format!("/meetups/events/{number}?cancelled=1"))),
                Mutation::Invalid(errors) => form_errors(&errors, "message"),
                Mutation::Refused(message) => refused(message, "message"),
            };
            let data = match organised(&visit, &number, "meetup_cancel").await? {
                Ok(data) => data,
                Err(page) => return Ok(page),
            };
            let values = json!({ "scope": scope, "message": form.text("message") });
            Ok(render_cancel(&visit, StatusCode::UNPROCESSABLE_ENTITY, &number, &data, values, errors))
        }
        .await,
    )
}

#[handler]
pub async fn reinstate(request: &Request, body: Body, Path(number): Path<String>) -> Response {
    respond(
        async {
            let (mut visit, _) = Visit::posted(request, body).await?;
            let Some(id) = page_id("MeetupEvent", &number) else { return Ok(visit.not_found().await) };
            let errors = match visit.mutate("reinstate_meetup", json!({ "input": { "id": id } })).await? {
                Mutation::Done(_) => return Ok(visit.redirect(&format!("/meetups/events/{number}?reinstated=1"))),
                Mutation::Invalid(errors) => form_errors(&errors, "organise-heading"),
                Mutation::Refused(message) => refused(message, "organise-heading"),
            };
            event_page(request, &number, StatusCode::UNPROCESSABLE_ENTITY, json!({ "errors": errors })).await
        }
        .await,
    )
}

/// Copies a meetup to a new date, from the form on its page: a date and a time, in the
/// meetup's own zone, and whether to keep the agenda.
#[handler]
pub async fn copy(request: &Request, body: Body, Path(number): Path<String>) -> Response {
    respond(
        async {
            let (mut visit, form) = Visit::posted(request, body).await?;
            let Some(id) = page_id("MeetupEvent", &number) else { return Ok(visit.not_found().await) };
            let (date, time) = (form.text("date"), form.text("time"));
            let start = format!("{}T{}", date.trim(), time.trim());
            let input = json!({ "id": id, "start": start, "agenda": form.get("agenda") == Some("1") });
            let errors = match visit.mutate("copy_meetup", json!({ "input": input })).await? {
                Mutation::Done(payload) => {
                    let copy =
                        payload["event"]["id"].as_str().and_then(|id| crate::graphql::relay::parse_global_id(id).ok());
                    let path = copy.map(|(_, number)| format!("/meetups/events/{number}?scheduled=1"));
                    return Ok(visit.redirect(&path.unwrap_or_else(|| format!("/meetups/events/{number}"))));
                }
                // The API names the start; the form has a date and a time for it.
                Mutation::Invalid(mut errors) => {
                    for error in errors.iter_mut().filter(|e| e["field"] == "start") {
                        error["field"] = json!("date");
                    }
                    form_errors(&errors, "date")
                }
                Mutation::Refused(message) => refused(message, "date"),
            };
            let values = json!({ "date": date, "time": time, "agenda": form.get("agenda") == Some("1") });
            event_page(request, &number, StatusCode::UNPROCESSABLE_ENTITY, json!({ "errors": errors, "copy": values }))
                .await
        }
        .await,
    )
}

/// Every date of a meetup's series, and for its organisers a form that changes how often
/// it meets from this meetup on.
#[handler]
pub async fn series(request: &Request, Path(number): Path<String>) -> Response {
    respond(
        async {
            let visit = Visit::new(request).await?;
            let Some(data) = series_of(&visit, &number).await? else { return Ok(visit.not_found().await) };
            let rule = &data["event"]["seriesRule"];
            let values = json!({
                "repeat": rule["frequency"],
                "weekdayOrdinal": rule["weekdayOrdinal"].as_i64().unwrap_or(2).to_string(),
                "firstDate": data["event"]["localStart"].as_str().and_then(|s| s.get(..10)),
                "count": rule["count"].as_i64().map(|c| c.to_string()),
                "until": rule["until"],
            });
            let changed = query_params(request).remove("changed").filter(|c| c.parse::<u32>().is_ok());
            let context = json!({ "number": number, "values": values, "changed": changed });
            Ok(visit.render(StatusCode::OK, "meetup_series.html", &data, context))
        }
        .await,
    )
}

/// The meetup `number` with its series; `None` when there is no such meetup or it does
/// not repeat.
async fn series_of(visit: &Visit, number: &str) -> Result<Option<Value>, Stop> {
    let Some(id) = page_id("MeetupEvent", number) else { return Ok(None) };
    let data = visit.query("meetup_series", json!({ "id": id })).await?;
    Ok(Some(data).filter(|d| !d["event"]["seriesRule"].is_null()))
}

#[handler]
pub async fn change_series(request: &Request, body: Body, Path(number): Path<String>) -> Response {
    respond(
        async {
            let (mut visit, form) = Visit::posted(request, body).await?;
            let Some(id) = page_id("MeetupEvent", &number) else { return Ok(visit.not_found().await) };
            let names = ["repeat", "weekdayOrdinal", "firstDate", "count", "until", "message"];
            let values: Value = names.iter().map(|n| (n.to_string(), json!(form.text(n)))).collect();
            let repeat = values["repeat"].as_str().filter(|r| REPEATS[1..].contains(r)).unwrap_or("WEEKLY");
            let input = json!({
                "id": id, "firstDate": values["firstDate"], "recurrence": recurrence(repeat, &values),
                "message": values["message"],
            });
            let errors = match visit.mutate("change_meetup_series", json!({ "input": input })).await? {
                Mutation::Done(payload) => {
                    let cancelled = payload["cancelled"].as_array().map_or(0, Vec::len);
                    return Ok(visit.redirect(&format!("/meetups/events/{number}/series?changed={cancelled}")));
                }
                // A problem with the meetup itself (it has started) is shown at the rule.
                Mutation::Invalid(mut errors) => {
                    for error in errors.iter_mut().filter(|e| e["field"] == "id") {
                        error["field"] = json!("recurrence");
                    }
                    form_errors(&errors, "recurrence")
                }
                Mutation::Refused(message) => refused(message, "recurrence"),
            };
            let Some(data) = series_of(&visit, &number).await? else { return Ok(visit.not_found().await) };
            let context = json!({ "number": number, "values": values, "errors": errors });
            Ok(visit.render(StatusCode::UNPROCESSABLE_ENTITY, "meetup_series.html", &data, context))
        }
        .await,
    )
}

/// The meetup `number` if the visitor organises it.
async fn organised(visit: &Visit, number: &str, document: &str) -> Result<Result<Value, Response>, Stop> {
    let Some(id) = page_id("MeetupEvent", number) else { return Ok(Err(visit.not_found().await)) };
    let data = visit.query(document, json!({ "id": id })).await?;
    if data["event"].is_null() {
        return Ok(Err(visit.not_found().await));
    }
    if data["event"]["viewerIsOrganiser"] != true {
        let message = "Only the group's organisers can.";
        return Ok(Err(visit.error_page(StatusCode::FORBIDDEN, "This is for organisers", message).await));
    }
    Ok(Ok(data))
}

#[handler]
pub async fn edit_form(request: &Request, Path(number): Path<String>) -> Response {
    respond(
        async {
            let visit = Visit::new(request).await?;
            if !visit.signed_in() {
                return Ok(visit.sign_in_first());
            }
            let data = match organised(&visit, &number, "meetup_event_edit").await? {
                Ok(data) => data,
                Err(page) => return Ok(page),
            };
            let e = &data["event"];
            // "2027-03-11T16:00:00": the date, and the time to the minute.
            let part = |text: &Value, range: std::ops::Range<usize>| text.as_str().and_then(|t| t.get(range)).map(str::to_string);
            let (start_date, end_date) = (part(&e["localStart"], 0..10), part(&e["localEnd"], 0..10));
            let values = json!({
                "title": e["title"], "description": e["description"], "timeZone": e["timeZone"],
                "date": start_date, "startTime": part(&e["localStart"], 11..16), "endTime": part(&e["localEnd"], 11..16),
                "endDate": if end_date != start_date { end_date } else { None },
                "venueName": e["venue"]["name"], "venueAddress": e["venue"]["address"],
                "venueDirections": e["venue"]["directions"], "onlineUrl": e["onlineUrl"],
                "capacity": e["capacity"].as_i64().map(|c| c.to_string()),
                "series": e["series"], "scope": "THIS",
            });
            render_event_form(&visit, StatusCode::OK, ("event", &number), values, Value::Null).await
        }
        .await,
    )
}

#[handler]
pub async fn edit(request: &Request, body: Body, Path(number): Path<String>) -> Response {
    respond(
        async {
            let (mut visit, form) = Visit::posted(request, body).await?;
            let Some(id) = page_id("MeetupEvent", &number) else { return Ok(visit.not_found().await) };
            let mut values = event_values(&form);
            let following = form.get("scope") == Some("THIS_AND_FOLLOWING");
            let scope = if following { "THIS_AND_FOLLOWING" } else { "THIS" };
            values["series"] = json!(form.text("series"));
            values["scope"] = json!(scope);
            let (mut input, own) = event_fields(&values);
            input["id"] = json!(id);
            input["scope"] = json!(scope);
            let errors = match visit.mutate("update_meetup", json!({ "input": input })).await? {
                Mutation::Done(_) => return Ok(visit.redirect(&format!("/meetups/events/{number}?changed=1"))),
                Mutation::Invalid(errors) => form_errors(&on_form_fields(errors, own), "title"),
                Mutation::Refused(message) => refused(message, "title"),
            };
            render_event_form(&visit, StatusCode::UNPROCESSABLE_ENTITY, ("event", &number), values, errors).await
        }
        .await,
    )
}

#[handler]
pub async fn attendees(request: &Request, Path(number): Path<String>) -> Response {
    respond(
        async {
            let visit = Visit::new(request).await?;
            if !visit.signed_in() {
                return Ok(visit.sign_in_first());
            }
            let csv = request.uri().path().ends_with(".csv");
            let data = match organised(&visit, &number, "meetup_attendees").await? {
                Ok(data) => data,
                Err(page) => return Ok(page),
            };
            if csv {
                let zone = data["viewer"]["timeZone"].as_str().unwrap_or(crate::accounts::DEFAULT_TIME_ZONE);
                return Ok(attendee_csv(&data["event"], &number, zone));
            }
            let params = query_params(request);
            let note =
                params.get("note").filter(|n| ["removed", "readmitted", "attendance", "sent"].contains(&n.as_str()));
            let sent_to = params.get("to").and_then(|n| n.parse::<i64>().ok());
            let context = json!({ "number": number, "note": note, "sent_to": sent_to, "values": {} });
            Ok(visit.render(StatusCode::OK, "meetup_attendees.html", &data, context))
        }
        .await,
    )
}

/// Errors shown at one place on the page: the API names its own fields (`eventId`,
/// `memberId`), which these forms do not have.
fn all_at(mut errors: Vec<Value>, field: &str) -> Value {
    for error in &mut errors {
        error["field"] = json!(field);
    }
    form_errors(&errors, field)
}

/// The attendee page again, with a failed form's errors and values (`extra`).
async fn attendees_again(visit: &Visit, number: &str, extra: Value) -> Result<Response, Stop> {
    let mut data = match organised(visit, number, "meetup_attendees").await? {
        Ok(data) => data,
        Err(page) => return Ok(page),
    };
    let mut context = json!({ "number": number, "values": {} });
    if let (Some(object), Value::Object(more)) = (context.as_object_mut(), extra) {
        object.extend(more);
    }
    // Ticked boxes as sent, so a refused list is not lost.
    if let Some(ticked) = context.get("ticked").and_then(Value::as_array).cloned() {
        for answer in data["event"]["answers"].as_array_mut().into_iter().flatten() {
            answer["attended"] = json!(ticked.contains(&answer["member"]["id"]));
        }
    }
    Ok(visit.render(StatusCode::UNPROCESSABLE_ENTITY, "meetup_attendees.html", &data, context))
}

/// The page that asks an organiser before taking someone off a meetup: who, what happens
/// to their seat, and that they are told.
#[handler]
pub async fn remove_form(request: &Request, Path((number, handle)): Path<(String, String)>) -> Response {
    respond(
        async {
            let visit = Visit::new(request).await?;
            if !visit.signed_in() {
                return Ok(visit.sign_in_first());
            }
            render_remove(&visit, StatusCode::OK, &number, &handle, Value::Null).await
        }
        .await,
    )
}

async fn render_remove(
    visit: &Visit,
    status: StatusCode,
    number: &str,
    handle: &str,
    errors: Value,
) -> Result<Response, Stop> {
    let data = match organised(visit, number, "meetup_remove").await? {
        Ok(data) => data,
        Err(page) => return Ok(page),
    };
    let answers = data["event"]["answers"].as_array().cloned().unwrap_or_default();
    let Some(answer) = answers.iter().find(|a| a["member"]["handle"] == handle).cloned() else {
        // Not going nor waiting (any more): the list says who is.
        return Ok(visit.redirect(&format!("/meetups/events/{number}/attendees")));
    };
    let next = answers.iter().find(|a| a["status"] == "WAITLISTED" && a["member"]["handle"] != handle).cloned();
    let context = json!({ "number": number, "answer": answer, "next": next, "errors": errors });
    Ok(visit.render(status, "meetup_remove.html", &data, context))
}

#[handler]
pub async fn remove(request: &Request, body: Body, Path((number, handle)): Path<(String, String)>) -> Response {
    respond(
        async {
            let (mut visit, form) = Visit::posted(request, body).await?;
            let Some(id) = page_id("MeetupEvent", &number) else { return Ok(visit.not_found().await) };
            let input = json!({ "eventId": id, "memberId": form.text("member") });
            let errors = match visit.mutate("remove_meetup_attendee", json!({ "input": input })).await? {
                Mutation::Done(_) => {
                    return Ok(visit.redirect(&format!("/meetups/events/{number}/attendees?note=removed")))
                }
                Mutation::Invalid(errors) => all_at(errors, "remove-heading"),
                Mutation::Refused(message) => refused(message, "remove-heading"),
            };
            render_remove(&visit, StatusCode::UNPROCESSABLE_ENTITY, &number, &handle, errors).await
        }
        .await,
    )
}

/// Lets someone taken off the meetup answer again.
#[handler]
pub async fn readmit(request: &Request, body: Body, Path(number): Path<String>) -> Response {
    respond(
        async {
            let (mut visit, form) = Visit::posted(request, body).await?;
            let Some(id) = page_id("MeetupEvent", &number) else { return Ok(visit.not_found().await) };
            let input = json!({ "eventId": id, "memberId": form.text("member") });
            let errors = match visit.mutate("readmit_meetup_member", json!({ "input": input })).await? {
                Mutation::Done(_) => {
                    return Ok(visit.redirect(&format!("/meetups/events/{number}/attendees?note=readmitted")))
                }
                Mutation::Invalid(errors) => all_at(errors, "removed-heading"),
                Mutation::Refused(message) => refused(message, "removed-heading"),
            };
            attendees_again(&visit, &number, json!({ "errors": errors })).await
        }
        .await,
    )
}

/// Saves who came: one form of checkboxes, one per member going.
#[handler]
pub async fn attendance(request: &Request, body: Body, Path(number): Path<String>) -> Response {
    respond(
        async {
            let (mut visit, form) = Visit::posted(request, body).await?;
            let Some(id) = page_id("MeetupEvent", &number) else { return Ok(visit.not_found().await) };
            let ticked = form.all("attended");
            let input = json!({ "eventId": id, "attended": ticked });
            let errors = match visit.mutate("record_meetup_attendance", json!({ "input": input })).await? {
                Mutation::Done(_) => {
                    return Ok(visit.redirect(&format!("/meetups/events/{number}/attendees?note=attendance")))
                }
                Mutation::Invalid(errors) => all_at(errors, "attendance-heading"),
                Mutation::Refused(message) => refused(message, "attendance-heading"),
            };
            attendees_again(&visit, &number, json!({ "errors": errors, "ticked": ticked })).await
        }
        .await,
    )
}

/// Writes to those going (and, if ticked, those waiting).
#[handler]
pub async fn send_message(request: &Request, body: Body, Path(number): Path<String>) -> Response {
    respond(
        async {
            let (mut visit, form) = Visit::posted(request, body).await?;
            let Some(id) = page_id("MeetupEvent", &number) else { return Ok(visit.not_found().await) };
            let waitlist = form.get("includeWaitlist") == Some("1");
            let input = json!({ "eventId": id, "message": form.text("message"), "includeWaitlist": waitlist });
            let errors = match visit.mutate("message_meetup_attendees", json!({ "input": input })).await? {
                Mutation::Done(payload) => {
                    let to = payload["recipients"].as_i64().unwrap_or(0);
                    return Ok(visit.redirect(&format!("/meetups/events/{number}/attendees?note=sent&to={to}")));
                }
                Mutation::Invalid(errors) => all_at(errors, "message"),
                Mutation::Refused(message) => refused(message, "message"),
            };
            let values = json!({ "message": form.text("message"), "includeWaitlist": waitlist });
            attendees_again(&visit, &number, json!({ "errors": errors, "values": values })).await
        }
        .await,
    )
}

/// The attendee list as CSV: who is going, then the waitlist in order, with each one's
/// organisations, when they answered (in `zone`, the organiser's) and, once the meetup
/// has started, whether they came (`yes` or `no` for those going; empty before, and for
/// the waitlist). UTF-8 with a byte order mark, without which spreadsheet tools read
/// names with accents as Latin-1.
fn attendee_csv(meetup: &Value, number: &str, zone: &str) -> Response {
    // What the text policy refuses is left out (names stored before it existed may have
    // it); a cell a spreadsheet would run as a formula is prefixed with a quote; quotes
    // are doubled and every cell is quoted.
    let cell = |text: &str| {
        let text = crate::text::strip_refused(text);
        let text = if text.starts_with(['=', '+', '-', '@', '\t', '\r', '\n']) {
            format!("'{text}")
        } else {
            text.to_string()
        };
        format!("\"{}\"", text.replace('"', "\"\""))
    };
    let zone = jiff::tz::TimeZone::get(zone).unwrap_or(jiff::tz::TimeZone::UTC);
    let mut out = String::from("\u{feff}status,position,display name,handle,organisations,answered,attended\r\n");
    let started = meetup["started"] == true;
    let mut places = [0, 0];
    for answer in meetup["answers"].as_array().into_iter().flatten() {
        let (status, place) = match answer["status"].as_str() {
            Some("GOING") => ("going", &mut places[0]),
            Some("WAITLISTED") => ("waitlisted", &mut places[1]),
            _ => continue,
        };
        *place += 1;
        let member = &answer["member"];
        let organisations: Vec<&str> =
            member["organisations"].as_array().into_iter().flatten().filter_map(|o| o["name"].as_str()).collect();
        let answered = answer["answeredAt"]
            .as_str()
            .and_then(|at| at.parse::<jiff::Timestamp>().ok())
            .map(|at| at.to_zoned(zone.clone()).strftime("%Y-%m-%d %H:%M").to_string())
            .unwrap_or_default();
        let attended = match (started, status, answer["attended"] == true) {
            (true, "going", true) => "yes",
            (true, "going", false) => "no",
            _ => "",
        };
        out.push_str(&format!(
            "{status},{place},{},{},{},{answered},{attended}\r\n",
            cell(member["displayName"].as_str().unwrap_or_default()),
            cell(member["handle"].as_str().unwrap_or_default()),
            cell(&organisations.join("; ")),
        ));
    }
    Response::builder()
        .status(StatusCode::OK)
        .content_type("text/csv; charset=utf-8")
        .header(header::CONTENT_DISPOSITION, format!("attachment; filename=\"meetup-{number}-attendees.csv\""))
        .header(header::CACHE_CONTROL, "no-store")
        .body(out)
}

#[handler]
pub async fn mine(request: &Request) -> Response {
    respond(my_meetups(request).await)
}

/// "My meetups" with the member's calendar address, which stays visible (it is kept, not
/// just its hash: see `meetups::calendar::reset_token`).
async fn my_meetups(request: &Request) -> Result<Response, Stop> {
    let visit = Visit::new(request).await?;
    if !visit.signed_in() {
        return Ok(visit.sign_in_first());
    }
    let mut params = query_params(request);
    let after = params.remove("after").filter(|a| a.len() <= 200);
    let note = params.remove("note").filter(|n| n == "calendar-reset");
    let data = visit.query("my_meetups", json!({ "after": after })).await?;
    Ok(visit.render(StatusCode::OK, "my_meetups.html", &data, json!({ "note": note })))
}

/// The step before making a new calendar address: the current one stops working, so
/// every calendar app subscribed to it must be given the new one.
async fn confirm_calendar_reset(visit: &Visit) -> Result<Response, Stop> {
    let data = visit.query("my_meetups", json!({ "after": null })).await?;
    if data["calendarFeed"].is_null() {
        // Nothing to replace: "My meetups" offers to make the first address.
        return Ok(visit.redirect("/meetups/mine#calendar-heading"));
    }
    Ok(visit.render(StatusCode::OK, "calendar_reset.html", &data, json!({})))
}

#[handler]
pub async fn calendar_reset_form(request: &Request) -> Response {
    respond(
        async {
            let visit = Visit::new(request).await?;
            if !visit.signed_in() {
                return Ok(visit.sign_in_first());
            }
            confirm_calendar_reset(&visit).await
        }
        .await,
    )
}

/// Makes a calendar address. Replacing one that exists needs `confirm=yes` (from the
/// confirmation page); without it this shows that page and changes nothing.
#[handler]
pub async fn reset_calendar(request: &Request, body: Body) -> Response {
    respond(
        async {
            let (mut visit, form) = Visit::posted(request, body).await?;
            if !visit.signed_in() {
                return Ok(visit.sign_in_first());
            }
            let current = visit.query("my_meetups", json!({ "after": null })).await?;
            if !current["calendarFeed"].is_null() && form.text("confirm") != "yes" {
                return confirm_calendar_reset(&visit).await;
            }
            match visit.mutate("reset_calendar_feed", json!({})).await? {
                Mutation::Done(_) => Ok(visit.redirect("/meetups/mine?note=calendar-reset#calendar-heading")),
                Mutation::Invalid(_) | Mutation::Refused(_) => Ok(visit.redirect("/meetups/mine#calendar-heading")),
            }
        }
        .await,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attendee_csv_emits_only_clean_quoted_cells() {
        let answer = |status: &str, name: &str, handle: &str, organisations: Value| {
            json!({
                "status": status, "answeredAt": "2027-03-01T09:30:00Z", "attended": handle == "ada",
                "member": { "displayName": name, "handle": handle, "organisations": organisations },
            })
        };
        let meetup = json!({
            "started": true,
            "answers": [
                answer("GOING", "Ada \"the\" Lovelace", "ada", json!([{ "name": "Bath Council" }, { "name": "NHS Wales" }])),
                answer("GOING", "=HYPERLINK(\"x\")", "eve", json!([])),
                answer("GOING", "Old\u{b}row\u{fffe}\u{0}", "old", json!([{ "name": "-Minus Ltd" }])),
                answer("WAITLISTED", "\tTabbed", "tab", json!([])),
                answer("NOT_GOING", "Nobody", "no", json!([])),
            ],
        });
        let response = attendee_csv(&meetup, "7", "Europe/Paris");
        let body = futures_util::FutureExt::now_or_never(response.into_body().into_string()).unwrap().unwrap();
        assert_eq!(
            body,
            "\u{feff}status,position,display name,handle,organisations,answered,attended\r\n\
             going,1,\"Ada \"\"the\"\" Lovelace\",\"ada\",\"Bath Council; NHS Wales\",2027-03-01 10:30,yes\r\n\
             going,2,\"'=HYPERLINK(\"\"x\"\")\",\"eve\",\"\",2027-03-01 10:30,no\r\n\
             going,3,\"Oldrow\",\"old\",\"'-Minus Ltd\",2027-03-01 10:30,no\r\n\
             waitlisted,1,\"'\tTabbed\",\"tab\",\"\",2027-03-01 10:30,\r\n"
        );
    }
}
