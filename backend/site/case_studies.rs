//! The pages of the knowledge core: case study lists, a case study, the form to write or
//! edit one (with a preview that works without JavaScript), co-author invitations and
//! their answers, and search.

use poem::{handler, http::StatusCode, web::Path, Body, Request, Response};
use serde_json::{json, Value};

use super::{
    forms::{form_errors, query_params, refused, respond},
    visit::{Form, Mutation, Stop, Visit},
    writing,
};

/// The service phases as GraphQL names them, in order.
const PHASES: [&str; 5] = ["DISCOVERY", "ALPHA", "BETA", "LIVE", "RETIRED"];

/// The global id behind `/case-studies/<number>`.
fn case_study_id(number: &str) -> Option<String> {
    super::page_id("CaseStudy", number)
}

/// Keeps a list's filters (and adds a cursor) in its "next page" link.
fn list_variables(request: &Request) -> Value {
    let params = query_params(request);
    let text = |name: &str| params.get(name).filter(|v| !v.is_empty() && v.len() <= 200).cloned();
    let phase = text("phase")
        .map(|p| p.to_ascii_uppercase())
        .filter(|p| ["DISCOVERY", "ALPHA", "BETA", "LIVE", "RETIRED"].contains(&p.as_str()));
    json!({ "after": text("after"), "topic": text("topic"), "phase": phase })
}

#[handler]
pub async fn list(request: &Request) -> Response {
    respond(
        async {
            let visit = Visit::new(request).await?;
            let variables = list_variables(request);
            let mut query = variables.clone();
            // Signed-in members are told when someone asked them to co-author.
            query["signedIn"] = json!(visit.signed_in());
            let data = visit.query("case_studies", query).await?;
            let extra = json!({ "filters": variables, "left": query_params(request).contains_key("left") });
            Ok(visit.render(StatusCode::OK, "case_studies.html", &data, extra))
        }
        .await,
    )
}

#[handler]
pub async fn show(request: &Request, Path(number): Path<String>) -> Response {
    respond(
        async {
            let visit = Visit::new(request).await?;
            let Some(id) = case_study_id(&number) else { return Ok(visit.not_found().await) };
            let data = visit.query("case_study", json!({ "id": id })).await?;
            if data["caseStudy"].is_null() {
                return Ok(visit.not_found().await);
            }
            let params = query_params(request);
            // Only authors may see who else is interested and who is invited to co-author;
            // for them, one more document.
            let for_authors = if data["caseStudy"]["viewerCanEdit"] == true {
                visit.query("case_study_interest", json!({ "id": id })).await?["caseStudy"].clone()
            } else {
                Value::Null
            };
            let base = visit.base_url();
            let extra = json!({
                "number": number,
                "published": params.contains_key("published"),
                "saved": params.contains_key("saved"),
                "interest_registered": params.contains_key("interested"),
                "joined": params.contains_key("joined"),
                "left": params.contains_key("left"),
                "interest": for_authors["interest"],
                "pending": for_authors["pendingCoAuthors"],
                "json_ld": crate::open_data::json_ld::case_study(&data, &base, &|id| super::page_url(&base, id)),
            });
            Ok(visit.render(StatusCode::OK, "case_study.html", &data, extra))
        }
        .await,
    )
}

/// The form's fields, as the template shows them and the mutations take them.
fn values_from(form: &Form) -> Value {
    json!({
        "title": form.text("title"),
        "summary": form.text("summary"),
        "body": form.text("body"),
        "phase": form.text("phase"),
        "organisationId": form.text("organisationId"),
        "topicIds": form.all("topicIds"),
        "coAuthors": form.text("coAuthors"),
        "version": form.text("version"),
        "changeNote": form.text("changeNote"),
    })
}

fn input_from(values: &Value) -> Value {
    let handles: Vec<String> = values["coAuthors"]
        .as_str()
        .unwrap_or("")
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|h| !h.is_empty())
        .map(|h| h.trim_start_matches('@').to_string())
        .take(50)
        .collect();
    let organisation_id = values["organisationId"].as_str().filter(|o| !o.is_empty());
    json!({
        "title": values["title"],
        "summary": values["summary"],
        "body": values["body"],
        // None chosen (the form chooses none), or anything but a phase (a hand-made
        // request), is null: the API says to choose one, rather than the whole form
        // failing on GraphQL enum coercion.
        "phase": values["phase"].as_str().filter(|p| PHASES.contains(p)),
        "organisationId": organisation_id,
        "topicIds": values["topicIds"],
        "coAuthorHandles": handles,
    })
}

async fn render_form(
    visit: &Visit,
    status: StatusCode,
    number: Option<&str>,
    values: Value,
    extra: Value,
) -> Result<Response, Stop> {
    let data = match number {
        Some(number) => {
            let id = case_study_id(number).unwrap_or_default();
            let data = visit.query("case_study_edit", json!({ "id": id })).await?;
            if data["caseStudy"].is_null() {
                return Ok(visit.not_found().await);
            }
            if data["caseStudy"]["viewerCanEdit"] != true {
                return Ok(visit
                    .error_page(StatusCode::FORBIDDEN, "You cannot edit this case study", "Only its authors can.")
                    .await);
            }
            data
        }
        None => visit.query("case_study_new", json!({})).await?,
    };
    // Who was invited and has not answered, for the co-author field's hint.
    let pending: Vec<String> = data["caseStudy"]["pendingCoAuthors"]
        .as_array()
        .map(|members| {
            members
                .iter()
                .map(|m| {
                    format!("{} (@{})", m["displayName"].as_str().unwrap_or(""), m["handle"].as_str().unwrap_or(""))
                })
                .collect()
        })
        .unwrap_or_default();
    let mut context = json!({ "values": values, "number": number, "pending_co_authors": pending.join(", ") });
    if let (Some(object), Value::Object(more)) = (context.as_object_mut(), extra) {
        object.extend(more);
    }
    Ok(visit.render(status, "case_study_form.html", &data, context))
}

#[handler]
pub async fn new_form(request: &Request) -> Response {
    respond(
        async {
            let visit = Visit::new(request).await?;
            if !visit.signed_in() {
                return Ok(visit.sign_in_first());
            }
            render_form(&visit, StatusCode::OK, None, json!({ "topicIds": [] }), json!({})).await
        }
        .await,
    )
}

#[handler]
pub async fn edit_form(request: &Request, Path(number): Path<String>) -> Response {
    respond(
        async {
            let visit = Visit::new(request).await?;
            if !visit.signed_in() {
                return Ok(visit.sign_in_first());
            }
            let Some(id) = case_study_id(&number) else { return Ok(visit.not_found().await) };
            let data = visit.query("case_study_edit", json!({ "id": id })).await?;
            let current = &data["caseStudy"];
            if current.is_null() {
                return Ok(visit.not_found().await);
            }
            let topic_ids: Vec<Value> = current["topics"].as_array().map(|t| t.iter().map(|t| t["id"].clone()).collect()).unwrap_or_default();
            // Co-authors, then those invited who have not answered: the list to keep. Who
            // declined is not on it, so saving again does not invite them again.
            let handles = |members: &Value, skip: usize| -> Vec<String> {
                members.as_array()
                    .map(|a| a.iter().skip(skip).filter_map(|a| a["handle"].as_str().map(|h| format!("@{h}"))).collect())
                    .unwrap_or_default()
            };
            let mut co_authors = handles(&current["authors"], 1);
            co_authors.extend(handles(&current["pendingCoAuthors"], 0));
            let values = json!({
                "title": current["title"], "summary": current["summary"], "body": current["body"], "phase": current["phase"],
                "organisationId": current["organisation"]["id"], "topicIds": topic_ids, "coAuthors": co_authors.join(", "),
                "version": current["version"],
            });
            render_form(&visit, StatusCode::OK, Some(&number), values, json!({})).await
        }
        .await,
    )
}

/// Saves (or previews) the form, for a new case study when `number` is `None`.
async fn submit(request: &Request, body: Body, number: Option<String>) -> Result<Response, Stop> {
    let (mut visit, form) = Visit::posted_with_image(request, body).await?;
    let mut values = values_from(&form);
    match form.get("action") {
        Some("preview") => {
            let preview = writing::preview(&visit, &values["body"], "body").await;
            return render_form(&visit, StatusCode::OK, number.as_deref(), values, preview).await;
        }
        Some("upload") => {
            let (status, next) = writing::add_image(&mut visit, &form, &mut values, "body").await?;
            return render_form(&visit, status, number.as_deref(), values, next).await;
        }
        _ => {}
    }
    let mut input = input_from(&values);
    let outcome = match &number {
        None => visit.mutate("create_case_study", json!({ "input": input })).await?,
        Some(number) => {
            input["id"] = json!(case_study_id(number).unwrap_or_default());
            input["version"] = json!(values["version"].as_str().and_then(|v| v.parse::<i64>().ok()).unwrap_or(0));
            input["changeNote"] = values["changeNote"].clone();
            visit.mutate("update_case_study", json!({ "input": input })).await?
        }
    };
    let errors = match outcome {
        Mutation::Done(payload) => {
            let path = super::node_path(payload["caseStudy"]["id"].as_str().unwrap_or(""));
            // An edit says it was saved; a new draft's page says it is a draft.
            return Ok(visit.redirect(&if number.is_some() { format!("{path}?saved=1") } else { path }));
        }
        Mutation::Invalid(errors) => form_errors(&errors, "title"),
        Mutation::Refused(message) => refused(message, "title"),
    };
    render_form(&visit, StatusCode::UNPROCESSABLE_ENTITY, number.as_deref(), values, json!({ "errors": errors })).await
}

/// Asks before a draft is deleted.
#[handler]
pub async fn delete_form(request: &Request, Path(number): Path<String>) -> Response {
    respond(
        async {
            let visit = Visit::new(request).await?;
            if !visit.signed_in() {
                return Ok(visit.sign_in_first());
            }
            let Some(id) = case_study_id(&number) else { return Ok(visit.not_found().await) };
            let data = visit.query("case_study", json!({ "id": id })).await?;
            let cs = &data["caseStudy"];
            if cs.is_null() {
                return Ok(visit.not_found().await);
            }
            let starter = cs["authors"][0]["handle"] == data["viewer"]["handle"];
            if cs["status"] != "DRAFT" || !cs["publishedAt"].is_null() || !starter {
                let message = "Only a draft that was never published can be deleted, by the author who started it.";
                return Ok(visit.error_page(StatusCode::FORBIDDEN, "You cannot delete this", message).await);
            }
            Ok(visit.render(StatusCode::OK, "case_study_delete.html", &data, json!({ "number": number })))
        }
        .await,
    )
}

#[handler]
pub async fn delete(request: &Request, body: Body, Path(number): Path<String>) -> Response {
    respond(
        async {
            let (mut visit, _) = Visit::posted(request, body).await?;
            let Some(id) = case_study_id(&number) else { return Ok(visit.not_found().await) };
            match visit.mutate("delete_case_study_draft", json!({ "input": { "id": id } })).await? {
                Mutation::Done(_) => Ok(visit.redirect("/?draft_deleted=1")),
                Mutation::Invalid(errors) => {
                    let message = errors.first().and_then(|e| e["message"].as_str()).unwrap_or("It cannot be deleted.");
                    Ok(visit.error_page(StatusCode::UNPROCESSABLE_ENTITY, "The draft was not deleted", message).await)
                }
                Mutation::Refused(message) => {
                    Ok(visit.error_page(StatusCode::UNPROCESSABLE_ENTITY, "The draft was not deleted", &message).await)
                }
            }
        }
        .await,
    )
}

#[handler]
pub async fn create(request: &Request, body: Body) -> Response {
    respond(submit(request, body, None).await)
}

#[handler]
pub async fn update(request: &Request, body: Body, Path(number): Path<String>) -> Response {
    respond(submit(request, body, Some(number)).await)
}

#[handler]
pub async fn publish(request: &Request, body: Body, Path(number): Path<String>) -> Response {
    respond(
        async {
            let (mut visit, _) = Visit::posted(request, body).await?;
            let Some(id) = case_study_id(&number) else { return Ok(visit.not_found().await) };
            match visit.mutate("publish_case_study", json!({ "input": { "id": id } })).await? {
                Mutation::Done(_) => Ok(visit.redirect(&format!("/case-studies/{number}?published=1"))),
                Mutation::Invalid(_) | Mutation::Refused(_) => Ok(visit.not_found().await),
            }
        }
        .await,
    )
}

#[handler]
pub async fn mark_useful(request: &Request, body: Body, Path(number): Path<String>) -> Response {
    respond(
        async {
            let (mut visit, form) = Visit::posted(request, body).await?;
            let Some(id) = case_study_id(&number) else { return Ok(visit.not_found().await) };
            let input = json!({ "id": id, "on": form.get("on") == Some("1") });
            visit.mutate("mark_useful", json!({ "input": input })).await?;
            Ok(visit.redirect(&format!("/case-studies/{number}")))
        }
        .await,
    )
}

#[handler]
pub async fn bookmark(request: &Request, body: Body, Path(number): Path<String>) -> Response {
    respond(
        async {
            let (mut visit, form) = Visit::posted(request, body).await?;
            let Some(id) = case_study_id(&number) else { return Ok(visit.not_found().await) };
            let input = json!({ "id": id, "on": form.get("on") == Some("1") });
            visit.mutate("bookmark", json!({ "input": input })).await?;
            Ok(visit.redirect(&format!("/case-studies/{number}")))
        }
        .await,
    )
}

#[handler]
pub async fn bookmarks(request: &Request) -> Response {
    respond(
        async {
            let visit = Visit::new(request).await?;
            if !visit.signed_in() {
                return Ok(visit.sign_in_first());
            }
            let after = query_params(request).remove("after").filter(|a| a.len() <= 200);
            let data = visit.query("bookmarks", json!({ "after": after })).await?;
            Ok(visit.render(StatusCode::OK, "bookmarks.html", &data, json!({})))
        }
        .await,
    )
}

#[handler]
pub async fn register_interest(request: &Request, body: Body, Path(number): Path<String>) -> Response {
    respond(
        async {
            let (mut visit, form) = Visit::posted(request, body).await?;
            let Some(id) = case_study_id(&number) else { return Ok(visit.not_found().await) };
            let input = json!({ "id": id, "note": form.text("note") });
            let errors = match visit.mutate("register_interest", json!({ "input": input })).await? {
                Mutation::Done(_) => return Ok(visit.redirect(&format!("/case-studies/{number}?interested=1"))),
                Mutation::Invalid(errors) => form_errors(&errors, "note"),
                Mutation::Refused(message) => refused(message, "note"),
            };
            let data = visit.query("case_study", json!({ "id": id })).await?;
            if data["caseStudy"].is_null() {
                return Ok(visit.not_found().await);
            }
            let extra = json!({ "number": number, "errors": errors });
            Ok(visit.render(StatusCode::UNPROCESSABLE_ENTITY, "case_study.html", &data, extra))
        }
        .await,
    )
}

/// Stops the signed-in member being a co-author of the case study `number`.
#[handler]
pub async fn leave(request: &Request, body: Body, Path(number): Path<String>) -> Response {
    respond(
        async {
            let (mut visit, _) = Visit::posted(request, body).await?;
            let Some(id) = case_study_id(&number) else { return Ok(visit.not_found().await) };
            match visit.mutate("leave_case_study", json!({ "input": { "id": id } })).await? {
                // A draft they can no longer see: back to the list, which says so.
                Mutation::Done(payload) if payload["caseStudy"].is_null() => Ok(visit.redirect("/case-studies?left=1")),
                Mutation::Done(_) => Ok(visit.redirect(&format!("/case-studies/{number}?left=1"))),
                Mutation::Invalid(_) | Mutation::Refused(_) => Ok(visit.redirect(&format!("/case-studies/{number}"))),
            }
        }
        .await,
    )
}

async fn render_invitations(
    visit: &Visit,
    request: &Request,
    status: StatusCode,
    extra: Value,
) -> Result<Response, Stop> {
    let after = query_params(request).remove("after").filter(|a| a.len() <= 200);
    let data = visit.query("coauthor_invitations", json!({ "after": after })).await?;
    Ok(visit.render(status, "coauthor_invitations.html", &data, extra))
}

/// The signed-in member's invitations to co-author, each with Accept and Decline.
#[handler]
pub async fn invitations(request: &Request) -> Response {
    respond(
        async {
            let visit = Visit::new(request).await?;
            if !visit.signed_in() {
                return Ok(visit.sign_in_first());
            }
            let declined = query_params(request).contains_key("declined");
            render_invitations(&visit, request, StatusCode::OK, json!({ "declined": declined })).await
        }
        .await,
    )
}

/// Accepts or declines one invitation: accepting opens the case study, now theirs too.
#[handler]
pub async fn respond_to_invitation(request: &Request, body: Body) -> Response {
    respond(
        async {
            let (mut visit, form) = Visit::posted(request, body).await?;
            let accept = form.get("answer") == Some("accept");
            let input = json!({ "caseStudyId": form.text("caseStudyId"), "accept": accept });
            let message = match visit.mutate("respond_to_coauthor_invitation", json!({ "input": input })).await? {
                Mutation::Done(payload) => {
                    let path = super::node_path(payload["invitation"]["caseStudyId"].as_str().unwrap_or(""));
                    return Ok(visit.redirect(&if accept {
                        format!("{path}?joined=1")
                    } else {
                        "/invitations?declined=1".into()
                    }));
                }
                Mutation::Invalid(errors) => {
                    errors.first().and_then(|e| e["message"].as_str()).unwrap_or_default().to_string()
                }
                Mutation::Refused(message) => message,
            };
            // The summary's link goes to the list of invitations.
            let errors = json!({ "list": [{ "field": "invitations", "message": message }], "by_field": {} });
            render_invitations(&visit, request, StatusCode::UNPROCESSABLE_ENTITY, json!({ "errors": errors })).await
        }
        .await,
    )
}

#[handler]
pub async fn search(request: &Request) -> Response {
    respond(
        async {
            let visit = Visit::new(request).await?;
            let params = query_params(request);
            let q: String =
                params.get("q").map(|q| q.trim().chars().take(crate::search::QUERY_MAX).collect()).unwrap_or_default();
            let kind = params
                .get("kind")
                .filter(|k| ["CASE_STUDY", "ARTEFACT", "ORGANISATION"].contains(&k.as_str()))
                .cloned();
            let topic = params.get("topic").filter(|t| !t.is_empty() && t.len() <= 200).cloned();
            let offset = params
                .get("offset")
                .and_then(|o| o.parse::<i64>().ok())
                .map_or(0, |o| o.clamp(0, crate::search::OFFSET_MAX));
            let variables =
                json!({ "q": q, "kind": kind, "topic": topic, "offset": offset, "searching": !q.is_empty() });
            let data = visit.query("search", variables).await?;
            let more = data["search"].as_array().is_some_and(|hits| hits.len() == 50)
                && offset + 50 <= crate::search::OFFSET_MAX;
            let extra = json!({ "q": q, "kind": kind, "topic": topic, "offset": offset, "more": more });
            Ok(visit.render(StatusCode::OK, "search.html", &data, extra))
        }
        .await,
    )
}
