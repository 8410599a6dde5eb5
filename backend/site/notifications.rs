//! Notifications in the site: the inbox at `/notifications` (grouped entries, unread ones
//! marked, "mark all as read"), "new for you" at `/notifications/new` (what is new in what
//! the member follows since their last visit), and `/settings/notifications` (which kinds
//! to hear about, and whether to watch what they write automatically).
//!
//! The header's unread count is not here: every page document asks for it through the
//! `Header` fragment (`web/queries/fragments.graphql`), and `web/static/app.js` keeps it
//! live over `/graphql/ws`.

use poem::{handler, http::StatusCode, Body, Request, Response};
use serde_json::{json, Value};

use super::{
    pages::{form_errors, query_params, refused, respond},
    visit::{safe_return_to, Mutation, Stop, Visit},
};

/// Every notification kind, with the sentence the settings page shows for it, in two
/// groups: things about the member, and things from what they follow.
pub const KINDS: [(&str, &str, Group); 16] = [
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
                    visit.mutate("mark_new_for_you_seen", "markNewForYouSeen", json!({})).await?
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
            match visit.mutate("mark_notifications_read", "markNotificationsRead", json!({ "input": input })).await? {
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

/// The kinds, with whether each is on, for the settings template.
fn kinds_for(disabled: &[String], chosen: Option<&[String]>) -> Value {
    let entry = |(name, label, _): &(&str, &str, Group)| {
        let on = match chosen {
            Some(chosen) => chosen.iter().any(|c| c == name),
            None => !disabled.iter().any(|d| d == name),
        };
        json!({ "name": name, "label": label, "on": on })
    };
    let of = |group: Group| KINDS.iter().filter(|k| k.2 == group).map(entry).collect::<Vec<_>>();
    json!({ "about_you": of(Group::AboutYou), "followed": of(Group::Followed) })
}

async fn render_settings(visit: &Visit, status: StatusCode, extra: Value) -> Result<Response, Stop> {
    if !visit.signed_in() {
        return Err(Box::new(visit.sign_in_first()));
    }
    let data = visit.query("notification_settings", json!({})).await?;
    let current = &data["viewer"]["notificationSettings"];
    let disabled: Vec<String> = current["disabledKinds"]
        .as_array()
        .map(|kinds| kinds.iter().filter_map(|k| k.as_str().map(str::to_string)).collect())
        .unwrap_or_default();
    let chosen: Option<Vec<String>> =
        extra["chosen"].as_array().map(|kinds| kinds.iter().filter_map(|k| k.as_str().map(str::to_string)).collect());
    let mut context = json!({
        "kinds": kinds_for(&disabled, chosen.as_deref()),
        "auto_watch": extra.get("auto_watch").cloned().unwrap_or_else(|| current["autoWatch"].clone()),
    });
    if let (Some(object), Value::Object(more)) = (context.as_object_mut(), extra) {
        object.extend(more.into_iter().filter(|(k, _)| k != "chosen" && k != "auto_watch"));
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

/// `POST /settings/notifications`: the kinds left ticked stay on; the rest are switched off.
#[handler]
pub async fn update_settings(request: &Request, body: Body) -> Response {
    respond(
        async {
            let (mut visit, form) = Visit::posted(request, body).await?;
            let chosen: Vec<String> = form.all("kinds");
            let disabled: Vec<&str> =
                KINDS.iter().map(|(name, _, _)| *name).filter(|name| !chosen.iter().any(|c| c == name)).collect();
            let auto_watch = form.get("autoWatch") == Some("on");
            let input = json!({ "disabledKinds": disabled, "autoWatch": auto_watch });
            let errors = match visit
                .mutate("update_notification_settings", "updateNotificationSettings", json!({ "input": input }))
                .await?
            {
                Mutation::Done(_) => return Ok(visit.redirect("/settings/notifications?saved=1")),
                Mutation::Invalid(errors) => form_errors(&errors, "kinds"),
                Mutation::Refused(message) => refused(message, "kinds"),
            };
            let extra = json!({ "errors": errors, "chosen": chosen, "auto_watch": auto_watch });
            render_settings(&visit, StatusCode::UNPROCESSABLE_ENTITY, extra).await
        }
        .await,
    )
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
    fn unticked_kinds_are_off_and_a_resent_form_keeps_what_was_ticked() {
        let kinds = kinds_for(&["MENTIONED".to_string()], None);
        assert_eq!(kinds["about_you"][0], json!({ "name": "MENTIONED", "label": "Someone mentions you", "on": false }));
        assert_eq!(kinds["followed"][0]["on"], true);
        let kinds = kinds_for(&[], Some(&["MENTIONED".to_string()]));
        assert_eq!(kinds["about_you"][0]["on"], true);
        assert_eq!(kinds["about_you"][1]["on"], false);
    }
}
