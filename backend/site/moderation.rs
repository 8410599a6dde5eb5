//! Moderation pages: the report form any member reaches from a case study, artefact,
//! comment, meetup or member page (`/report?target=<id>`), and for moderators the queue
//! (`/moderation`) and one review with its flags and the decision form
//! (`/moderation/reviews/<n>`). Everyone else gets the 403 page from the API's FORBIDDEN.

use poem::{handler, http::StatusCode, web::Path, Body, Request, Response};
use serde_json::{json, Value};

use super::{
    forms::{form_errors, query_params, refused, respond},
    page_id,
    visit::{Form, Mutation, Stop, Visit},
};

/// Longer than any global id; anything else is not something to report.
const TARGET_MAX: usize = 100;

/// The reasons, in the order the form offers them, with what each says.
const REASONS: [(&str, &str, &str); 5] = [
    ("SPAM", "Spam", "Advertising, or posted to promote something."),
    ("OFF_TOPIC", "Off-topic", "Not about public-sector digital work."),
    ("INAPPROPRIATE", "Inappropriate", "Rude, abusive or otherwise not acceptable here."),
    ("PERSONAL_DATA", "Personal data exposed", "It shows someone's personal details, such as a phone number."),
    ("OTHER", "Something else", "Tell us what is wrong in the box below."),
];

/// The decisions, in the order the review form offers them.
const DECISIONS: [(&str, &str, &str); 5] = [
    ("HIDE", "Hide it", "Its author still sees it, with your reason; everyone else sees that it was hidden."),
    ("RESTORE", "Show it", "Leave it up, or show it again if it is hidden."),
    ("EDIT", "Edit it", "Replace its text with yours below, and show it."),
    ("DISMISS", "Dismiss the flags", "The flags were not right: anything they hid is shown again."),
    ("SUSPEND", "Suspend the author", "Suspends whoever wrote it (or the member reported) and hides it."),
];

fn reasons() -> Value {
    REASONS.iter().map(|(value, label, hint)| json!({ "value": value, "label": label, "hint": hint })).collect()
}

fn decisions() -> Value {
    DECISIONS.iter().map(|(value, label, hint)| json!({ "value": value, "label": label, "hint": hint })).collect()
}

/// The report form for `target`, with `values` and `errors` when shown again.
async fn report_page(visit: &Visit, target: &str, status: StatusCode, extra: Value) -> Result<Response, Stop> {
    let data = visit.query("moderation_report_target", json!({ "id": target })).await?;
    if data["target"].is_null() || data["target"]["__typename"] == "Organisation" {
        return Ok(visit.not_found().await);
    }
    let mut context = json!({ "target_id": target, "reasons": reasons() });
    if let (Some(context), Some(extra)) = (context.as_object_mut(), extra.as_object()) {
        context.extend(extra.clone());
    }
    Ok(visit.render(status, "moderation_report.html", &data, context))
}

fn target_from(text: Option<&str>) -> Option<String> {
    text.map(str::trim).filter(|t| !t.is_empty() && t.len() <= TARGET_MAX).map(str::to_string)
}

/// `GET /report?target=<id>`: what to report and why (members only).
#[handler]
pub async fn report_form(request: &Request) -> Response {
    respond(
        async {
            let visit = Visit::new(request).await?;
            if !visit.signed_in() {
                return Ok(visit.sign_in_first());
            }
            let Some(target) = target_from(query_params(request).get("target").map(String::as_str)) else {
                return Ok(visit.not_found().await);
            };
            report_page(&visit, &target, StatusCode::OK, json!({ "values": {} })).await
        }
        .await,
    )
}

/// `POST /report`: flags it; the form again with its problems, or the thanks.
#[handler]
pub async fn report(request: &Request, body: Body) -> Response {
    respond(
        async {
            let (mut visit, form) = Visit::posted(request, body).await?;
            let Some(target) = target_from(form.get("target")) else { return Ok(visit.not_found().await) };
            let reason = form.text("reason");
            let note = form.text("note");
            let values = json!({ "reason": reason, "note": note });
            if !REASONS.iter().any(|(value, _, _)| *value == reason) {
                let errors = refused("Choose why you are reporting it.".into(), "reason");
                let extra = json!({ "values": values, "errors": errors });
                return report_page(&visit, &target, StatusCode::UNPROCESSABLE_ENTITY, extra).await;
            }
            let input = json!({ "targetId": target, "reason": reason, "note": note });
            let errors = match visit.mutate("moderation_flag", json!({ "input": input })).await? {
                Mutation::Done(_) => {
                    return report_page(&visit, &target, StatusCode::OK, json!({ "done": true, "values": {} })).await;
                }
                Mutation::Invalid(errors) if errors.iter().any(|e| e["code"] == "ALREADY_FLAGGED") => {
                    return report_page(
                        &visit,
                        &target,
                        StatusCode::OK,
                        json!({ "done": true, "already": true, "values": {} }),
                    )
                    .await;
                }
                Mutation::Invalid(errors) => form_errors(&errors, "reason"),
                Mutation::Refused(message) => refused(message, "reason"),
            };
            // A problem with the target itself (your own, say) is shown at the top.
            let extra = json!({ "values": values, "errors": errors });
            report_page(&visit, &target, StatusCode::UNPROCESSABLE_ENTITY, extra).await
        }
        .await,
    )
}

/// `GET /moderation`: the open reviews, heaviest first (moderators and admins only).
#[handler]
pub async fn queue(request: &Request) -> Response {
    respond(
        async {
            let visit = Visit::new(request).await?;
            if !visit.signed_in() {
                return Ok(visit.sign_in_first());
            }
            let params = query_params(request);
            let after = params.get("after").filter(|a| !a.is_empty() && a.len() <= TARGET_MAX).cloned();
            let data = visit.query("moderation_queue", json!({ "after": after })).await?;
            let extra = json!({ "decided": params.get("decided") });
            Ok(visit.render(StatusCode::OK, "moderation_queue.html", &data, extra))
        }
        .await,
    )
}

async fn review_page(visit: &Visit, number: &str, status: StatusCode, extra: Value) -> Result<Response, Stop> {
    let Some(id) = page_id("Review", number) else { return Ok(visit.not_found().await) };
    let data = visit.query("moderation_review", json!({ "id": id })).await?;
    if data["review"].is_null() {
        return Ok(visit.not_found().await);
    }
    let mut context = json!({ "number": number, "decisions": decisions() });
    if let (Some(context), Some(extra)) = (context.as_object_mut(), extra.as_object()) {
        context.extend(extra.clone());
    }
    Ok(visit.render(status, "moderation_review.html", &data, context))
}

/// `GET /moderation/reviews/<n>`: one review, its flags, and the decision form.
#[handler]
pub async fn review(request: &Request, Path(number): Path<String>) -> Response {
    respond(
        async {
            let visit = Visit::new(request).await?;
            if !visit.signed_in() {
                return Ok(visit.sign_in_first());
            }
            review_page(&visit, &number, StatusCode::OK, json!({ "values": {} })).await
        }
        .await,
    )
}

/// A date field (`2027-01-31`) as the instant it starts in UTC; `Err` when it is not one.
fn date_start(text: &str) -> Result<Option<String>, ()> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    let date: jiff::civil::Date = text.parse().map_err(|_| ())?;
    Ok(Some(format!("{date}T00:00:00Z")))
}

fn optional(form: &Form, name: &str) -> Option<String> {
    form.get(name).filter(|v| !v.trim().is_empty()).map(str::to_string)
}

/// `POST /moderation/reviews/<n>`: decides it; the queue, or the form with its problems.
#[handler]
pub async fn decide(request: &Request, Path(number): Path<String>, body: Body) -> Response {
    respond(
        async {
            let (mut visit, form) = Visit::posted(request, body).await?;
            let Some(id) = page_id("Review", &number) else { return Ok(visit.not_found().await) };
            let decision = form.text("decision");
            let values = json!({
                "decision": decision, "reason": form.text("reason"), "suspend_until": form.text("suspend_until"),
                "title": form.text("title"), "summary": form.text("summary"), "body": form.text("body"),
            });
            let show_again = |errors: Value| json!({ "values": values.clone(), "errors": errors });
            if !DECISIONS.iter().any(|(value, _, _)| *value == decision) {
                let errors = refused("Choose what to do.".into(), "decision");
                return review_page(&visit, &number, StatusCode::UNPROCESSABLE_ENTITY, show_again(errors)).await;
            }
            let Ok(suspend_until) = date_start(&form.text("suspend_until")) else {
                let errors = refused("Enter the date as year-month-day, like 2027-01-31.".into(), "suspend_until");
                return review_page(&visit, &number, StatusCode::UNPROCESSABLE_ENTITY, show_again(errors)).await;
            };
            let editing = decision == "EDIT";
            let input = json!({
                "reviewId": id,
                "decision": decision,
                "reason": form.text("reason"),
                "suspendUntil": if decision == "SUSPEND" { suspend_until } else { None },
                "title": if editing { optional(&form, "title") } else { None },
                "summary": if editing { optional(&form, "summary") } else { None },
                "body": if editing { optional(&form, "body") } else { None },
            });
            let errors = match visit.mutate("moderation_decide", json!({ "input": input })).await? {
                Mutation::Done(_) => return Ok(visit.redirect("/moderation?decided=1")),
                Mutation::Invalid(errors) => {
                    // The form calls the end date what it is.
                    let errors: Vec<Value> = errors
                        .into_iter()
                        .map(|mut e| {
                            if e["field"] == "suspendUntil" {
                                e["field"] = json!("suspend_until");
                            }
                            e
                        })
                        .collect();
                    form_errors(&errors, "decision")
                }
                Mutation::Refused(message) => refused(message, "decision"),
            };
            review_page(&visit, &number, StatusCode::UNPROCESSABLE_ENTITY, show_again(errors)).await
        }
        .await,
    )
}
