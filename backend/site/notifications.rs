//! Notifications in the site: the inbox at `/notifications` (grouped entries, unread ones
//! marked, "mark all as read"), "new for you" at `/notifications/new` (what is new in what
//! the member follows since their last visit), and `/settings/notifications` (per kind:
//! by email at once, in the digest, on the site only, or not at all; whether to watch
//! what they write automatically; and the digest's frequency, day and hour).
//!
//! The header's unread count is not here: every page document asks for it through the
//! `Header` fragment (`web/queries/fragments.graphql`), and `web/static/app.js` keeps it
//! live over `/graphql/ws`.

use poem::{handler, http::StatusCode, Body, Request, Response};
use serde_json::{json, Value};

use super::{
    forms::{form_errors, query_params, refused, respond},
    visit::{safe_return_to, Form, Mutation, Stop, Visit},
};

/// Every notification kind, with the sentence the settings page shows for it, in two
/// groups: things about the member, and things from what they follow.
pub const KINDS: [(&str, &str, Group); 18] = [
    ("MENTIONED", "Someone mentions you", Group::AboutYou),
    ("REPLIED", "Someone replies to your comment", Group::AboutYou),
    ("COMMENTED_ON_YOURS", "Someone comments on your case study or artefact", Group::AboutYou),
    ("ARTEFACT_REUSED", "Another organisation reuses your organisation's artefact", Group::AboutYou),
    ("INTEREST_REGISTERED", "Someone is working on the same problem as your case study", Group::AboutYou),
    ("WAITLIST_PROMOTED", "You move up from a meetup's waitlist", Group::AboutYou),
    ("MEETUP_CHANGED", "A meetup you are going to, or waiting for, changes time or place", Group::AboutYou),
    ("MEETUP_CANCELLED", "A meetup you are going to, or waiting for, is cancelled", Group::AboutYou),
    ("MEETUP_REMINDER", "A meetup you are going to starts in 24 hours", Group::AboutYou),
    ("JOIN_REQUESTED", "Someone asks to join an organisation you administer", Group::AboutYou),
    ("JOIN_DECIDED", "Your request to join an organisation is decided", Group::AboutYou),
    ("COAUTHOR_INVITED", "You are invited to co-author a case study", Group::AboutYou),
    ("REPORT_DECIDED", "The moderators decide about something you reported", Group::AboutYou),
    ("CONTENT_MODERATED", "The moderators hide, edit or restore something you wrote", Group::AboutYou),
    ("NEW_CASE_STUDY", "A case study is published in something you follow", Group::Followed),
    ("NEW_ARTEFACT", "An artefact is shared in something you follow", Group::Followed),
    ("NEW_MEETUP", "A meetup is scheduled in a group or topic you follow", Group::Followed),
    ("NEW_COMMENT", "Someone comments in a conversation you follow", Group::Followed),
];

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Group {
    AboutYou,
    Followed,
}

/// A cursor or id from a query string or form: global ids and cursors are short.
const ID_LIMIT: usize = 200;

fn cursor(request: &Request) -> Option<String> {
    query_params(request).remove("after").filter(|a| !a.is_empty() && a.len() <= ID_LIMIT)
}

/// `GET /notifications`: the inbox, newest first, twenty entries a page.
#[handler]
pub async fn list(request: &Request) -> Response {
    respond(
        async {
            let visit = Visit::new(request).await?;
            if !visit.signed_in() {
                return Ok(visit.sign_in_first());
            }
            let after = cursor(request);
            let data = visit.query("notifications", json!({ "after": after })).await?;
            let marked = query_params(request).remove("marked");
            let extra = json!({ "tab": "all", "after": after, "marked": marked });
            Ok(visit.render(StatusCode::OK, "notifications.html", &data, extra))
        }
        .await,
    )
}

/// `GET /notifications/new`: what is new in what the member follows since their last
/// visit here. The visit is recorded once they have seen the whole list (its last page):
/// recording it on the first page would empty the pages after it.
#[handler]
pub async fn new_for_you(request: &Request) -> Response {
    respond(
        async {
            let mut visit = Visit::new(request).await?;
            if !visit.signed_in() {
                return Ok(visit.sign_in_first());
            }
            let after = cursor(request);
            let data = visit.query("new_for_you", json!({ "after": after })).await?;
            let page =
                visit.render(StatusCode::OK, "notifications.html", &data, json!({ "tab": "new", "after": after }));
            let seen_all = data.pointer("/viewer/newForYou/pageInfo/hasNextPage") == Some(&Value::Bool(false));
            if page.status() == StatusCode::OK && seen_all {
                // The page is already rendered: a failure here only means the same items
                // show again next time, so it does not replace the page.
                if let Mutation::Invalid(_) | Mutation::Refused(_) =
                    visit.mutate("mark_new_for_you_seen", json!({})).await?
                {
                    tracing::warn!("recording a visit to new for you was refused");
                }
            }
            Ok(page)
        }
        .await,
    )
}

/// `POST /notifications/read`: marks one entry (`id`), or everything up to the newest the
/// page showed (`upTo`), or everything, as read; then back to the list.
#[handler]
pub async fn mark_read(request: &Request, body: Body) -> Response {
    respond(
        async {
            let (mut visit, form) = Visit::posted(request, body).await?;
            if !visit.signed_in() {
                return Ok(visit.redirect("/sign-in?return_to=%2Fnotifications"));
            }
            let id = form.get("id").filter(|v| !v.is_empty() && v.len() <= ID_LIMIT);
            let up_to = form.get("upTo").filter(|v| !v.is_empty() && v.len() <= ID_LIMIT);
            let input = match (id, up_to) {
                (Some(id), _) => json!({ "ids": [id] }),
                (None, Some(up_to)) => json!({ "upTo": up_to }),
                (None, None) => json!({}),
            };
            let back = if id.is_some() {
                safe_return_to(form.get("return_to"))
                    .filter(|p| p.starts_with("/notifications"))
                    .unwrap_or_else(|| "/notifications".to_string())
            } else {
                "/notifications?marked=all".to_string()
            };
            match visit.mutate("mark_notifications_read", json!({ "input": input })).await? {
                Mutation::Done(_) => Ok(visit.redirect(&back)),
                // An entry that is gone or not theirs: the list shows the truth either way.
                Mutation::Invalid(_) => Ok(visit.redirect("/notifications")),
                Mutation::Refused(message) => Ok(visit
                    .error_page(StatusCode::UNPROCESSABLE_ENTITY, "Your notifications were not changed", &message)
                    .await),
            }
        }
        .await,
    )
}

/// How a kind can reach the member, as the settings page offers it: the three mail
/// choices, and switching the kind off altogether (`OFF`, the `disabledKinds` setting).
pub const CHOICES: [(&str, &str); 4] =
    [("EMAIL", "By email at once"), ("DIGEST", "In my digest"), ("SITE", "On the site only"), ("OFF", "Not at all")];

const WEEKDAYS: [&str; 7] = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"];

/// The kinds, each with what is chosen for it (`EMAIL`, `DIGEST`, `SITE` or `OFF`), for
/// the settings template: from the saved settings, or from a form sent back with a
/// problem (`sent`, by kind).
fn kinds_for(current: &Value, sent: Option<&serde_json::Map<String, Value>>) -> Value {
    let disabled: Vec<&str> =
        current["disabledKinds"].as_array().map(|k| k.iter().filter_map(|k| k.as_str()).collect()).unwrap_or_default();
    let chosen = |name: &str| -> String {
        if let Some(value) = sent.and_then(|sent| sent.get(name)).and_then(|v| v.as_str()) {
            return value.to_string();
        }
        if disabled.contains(&name) {
            return "OFF".into();
        }
        current["mailChoices"]
            .as_array()
            .and_then(|choices| choices.iter().find(|c| c["kind"] == name))
            .and_then(|c| c["choice"].as_str())
            .unwrap_or("SITE")
            .to_string()
    };
    let entry = |(name, label, _): &(&str, &str, Group)| json!({ "name": name, "label": label, "choice": chosen(name), "field": format!("choice-{}", name.to_lowercase()) });
    let of = |group: Group| KINDS.iter().filter(|k| k.2 == group).map(entry).collect::<Vec<_>>();
    json!({ "about_you": of(Group::AboutYou), "followed": of(Group::Followed) })
}

/// The digest's schedule for the template: from the saved settings, or as sent.
fn digest_for(current: &Value, sent: Option<&Value>) -> Value {
    let pick = |field: &str| match sent.and_then(|s| s.get(field)) {
        Some(value) if !value.is_null() => value.clone(),
        _ => current[field].clone(),
    };
    json!({
        "frequency": pick("digestFrequency"),
        "weekday": pick("digestWeekday").as_i64().map(|d| d.to_string()).unwrap_or_else(|| pick("digestWeekday").as_str().unwrap_or("").to_string()),
        "hour": pick("digestHour").as_i64().map(|h| h.to_string()).unwrap_or_else(|| pick("digestHour").as_str().unwrap_or("").to_string()),
        "next_at": current["nextDigestAt"].clone(),
    })
}

async fn render_settings(visit: &Visit, status: StatusCode, extra: Value) -> Result<Response, Stop> {
    if !visit.signed_in() {
        return Err(Box::new(visit.sign_in_first()));
    }
    let data = visit.query("notification_settings", json!({})).await?;
    let current = &data["viewer"]["notificationSettings"];
    let weekdays: Vec<Value> =
        WEEKDAYS.iter().enumerate().map(|(i, name)| json!({ "value": (i + 1).to_string(), "name": name })).collect();
    let hours: Vec<Value> = (0..24).map(|h| json!({ "value": h.to_string(), "name": format!("{h:02}:00") })).collect();
    let mut context = json!({
        "kinds": kinds_for(current, extra.get("sent_kinds").and_then(|k| k.as_object())),
        "choices": CHOICES.iter().map(|(value, label)| json!({ "value": value, "label": label })).collect::<Vec<_>>(),
        "digest": digest_for(current, extra.get("sent_digest")),
        "weekdays": weekdays,
        "hours": hours,
        "auto_watch": extra.get("auto_watch").cloned().unwrap_or_else(|| current["autoWatch"].clone()),
    });
    if let (Some(object), Value::Object(more)) = (context.as_object_mut(), extra) {
        object.extend(
            more.into_iter().filter(|(k, _)| !matches!(k.as_str(), "sent_kinds" | "sent_digest" | "auto_watch")),
        );
    }
    Ok(visit.render(status, "notification_settings.html", &data, context))
}

/// `GET /settings/notifications`.
#[handler]
pub async fn settings(request: &Request) -> Response {
    respond(
        async {
            let visit = Visit::new(request).await?;
            let saved = query_params(request).contains_key("saved");
            render_settings(&visit, StatusCode::OK, json!({ "saved": saved })).await
        }
        .await,
    )
}

/// What the settings form asks for, as the mutation's input, with the problems found in
/// the form itself (a value no control on the page can send), by field.
fn settings_input(form: &Form) -> (Value, serde_json::Map<String, Value>, Value, Vec<Value>) {
    let mut problems = Vec::new();
    let mut disabled = Vec::new();
    let mut mail_choices = Vec::new();
    let mut sent = serde_json::Map::new();
    for (name, label, _) in KINDS {
        let field = format!("choice-{}", name.to_lowercase());
        match form.get(&field) {
            // Not sent (a page from before this kind existed): left as it is.
            None => {}
            Some("OFF") => disabled.push(name),
            Some(choice @ ("EMAIL" | "DIGEST" | "SITE")) => {
                mail_choices.push(json!({ "kind": name, "choice": choice }))
            }
            Some(_) => {
                let message = format!("Choose how to hear when: {}", label.to_lowercase());
                problems.push(json!({ "field": field, "message": message }));
                continue;
            }
        }
        if let Some(value) = form.get(&field) {
            sent.insert(name.to_string(), json!(value));
        }
    }
    let frequency = match form.get("digestFrequency") {
        Some(f @ ("DAILY" | "WEEKLY" | "NEVER")) => Some(f),
        None => None,
        Some(_) => {
            problems.push(json!({ "field": "digestFrequency", "message": "Choose how often to get your digest" }));
            None
        }
    };
    let number = |field: &str, message: &str, problems: &mut Vec<Value>| match form.get(field) {
        None => None,
        Some(text) => match text.trim().parse::<i64>() {
            Ok(n) => Some(n),
            Err(_) => {
                problems.push(json!({ "field": field, "message": message }));
                None
            }
        },
    };
    let weekday = number("digestWeekday", "Choose the day for a weekly digest", &mut problems);
    let hour = number("digestHour", "Choose the time for your digest", &mut problems);
    let input = json!({
        "disabledKinds": disabled,
        "mailChoices": mail_choices,
        "autoWatch": form.get("autoWatch") == Some("on"),
        "digestFrequency": frequency,
        "digestWeekday": weekday,
        "digestHour": hour,
    });
    let sent_digest = json!({
        "digestFrequency": form.get("digestFrequency"),
        "digestWeekday": form.get("digestWeekday"),
        "digestHour": form.get("digestHour"),
    });
    (input, sent, sent_digest, problems)
}

/// `POST /settings/notifications`: every kind's choice, automatic watching, and the
/// digest's schedule, saved together or not at all.
#[handler]
pub async fn update_settings(request: &Request, body: Body) -> Response {
    respond(
        async {
            let (mut visit, form) = Visit::posted(request, body).await?;
            let (input, sent_kinds, sent_digest, problems) = settings_input(&form);
            let errors = if !problems.is_empty() {
                form_errors(&problems, FIRST_FIELD)
            } else {
                match visit.mutate("update_notification_settings", json!({ "input": input })).await? {
                    Mutation::Done(_) => return Ok(visit.redirect("/settings/notifications?saved=1")),
                    Mutation::Invalid(errors) => form_errors(&on_the_page(errors), FIRST_FIELD),
                    Mutation::Refused(message) => refused(message, FIRST_FIELD),
                }
            };
            let extra = json!({
                "errors": errors,
                "sent_kinds": sent_kinds,
                "sent_digest": sent_digest,
                "auto_watch": input["autoWatch"],
            });
            render_settings(&visit, StatusCode::UNPROCESSABLE_ENTITY, extra).await
        }
        .await,
    )
}

/// The first control of the settings form, where problems with no control of their own
/// are shown.
const FIRST_FIELD: &str = "choice-mentioned";

/// Points errors about the kinds as a whole at the first kind's control.
fn on_the_page(errors: Vec<Value>) -> Vec<Value> {
    errors
        .into_iter()
        .map(|mut e| {
            if matches!(e["field"].as_str(), Some("disabledKinds" | "mailChoices") | None) {
                e["field"] = json!(FIRST_FIELD);
            }
            e
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_is_listed_once_with_a_sentence() {
        let mut names: Vec<&str> = KINDS.iter().map(|k| k.0).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), KINDS.len());
        assert!(KINDS.iter().all(|k| !k.1.is_empty() && !k.1.ends_with('.')));
    }

    #[test]
    fn each_kind_shows_its_choice_or_off_and_a_resent_form_keeps_what_was_sent() {
        let current = json!({
            "disabledKinds": ["REPLIED"],
            "mailChoices": [{ "kind": "MENTIONED", "choice": "EMAIL" }, { "kind": "NEW_COMMENT", "choice": "DIGEST" }],
        });
        let kinds = kinds_for(&current, None);
        assert_eq!(kinds["about_you"][0]["choice"], "EMAIL");
        assert_eq!(kinds["about_you"][0]["field"], "choice-mentioned");
        assert_eq!(kinds["about_you"][1]["choice"], "OFF");
        assert_eq!(kinds["followed"][3]["choice"], "DIGEST");
        let sent = json!({ "MENTIONED": "SITE" });
        let kinds = kinds_for(&current, sent.as_object());
        assert_eq!(kinds["about_you"][0]["choice"], "SITE");
        assert_eq!(kinds["about_you"][1]["choice"], "OFF");
    }
}
