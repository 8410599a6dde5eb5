//! The artefact pages: the list (filtered and sorted by reuse), an artefact with its
//! reuse stories and conversation, the form to share or edit one (with a preview), and
//! "we reused this".

use poem::{handler, http::StatusCode, web::Path, Body, Request, Response};
use serde_json::{json, Value};

use super::{
    forms::{form_errors, query_params, refused, respond},
    node_path, page_id,
    visit::{Form, Mutation, Stop, Visit},
    writing,
};

/// The artefact kinds and statuses as GraphQL names them, in the order forms offer them.
const KINDS: [&str; 8] = [
    "CODE",
    "DESIGN_PATTERN",
    "TEMPLATE_OR_DOCUMENT",
    "RESEARCH",
    "DATASET",
    "PROCUREMENT_OR_CONTRACT",
    "SERVICE_COMPONENT",
    "OTHER",
];
const STATUSES: [&str; 3] = ["EXPERIMENTAL", "IN_USE", "DEPRECATED"];

#[handler]
pub async fn list(request: &Request) -> Response {
    respond(
        async {
            let visit = Visit::new(request).await?;
            let params = query_params(request);
            let text = |name: &str| params.get(name).filter(|v| !v.is_empty() && v.len() <= 200).cloned();
            let one_of = |name: &str, allowed: &[&str]| text(name).filter(|v| allowed.contains(&v.as_str()));
            let filters = json!({
                "after": text("after"),
                "topic": text("topic"),
                "organisation": text("organisation"),
                "kind": one_of("kind", &KINDS),
                "status": one_of("status", &STATUSES),
                // An explicit null would be refused for an argument with a default.
                "sort": one_of("sort", &["NEWEST", "MOST_REUSED"]).unwrap_or_else(|| "NEWEST".into()),
            });
            let data = visit.query("artefacts", filters.clone()).await?;
            Ok(visit.render(StatusCode::OK, "artefacts.html", &data, json!({ "filters": filters, "kinds": KINDS })))
        }
        .await,
    )
}

#[handler]
pub async fn show(request: &Request, Path(number): Path<String>) -> Response {
    respond(show_page(request, &number, StatusCode::OK, json!({})).await)
}

/// The artefact's page, with `extra` (a form's errors and values) when a form on it
/// failed.
async fn show_page(request: &Request, number: &str, status: StatusCode, extra: Value) -> Result<Response, Stop> {
    let visit = Visit::new(request).await?;
    let Some(id) = page_id("Artefact", number) else { return Ok(visit.not_found().await) };
    let params = query_params(request);
    let after = params.get("after").filter(|a| a.len() <= 200);
    let data = visit.query("artefact", json!({ "id": id, "after": after })).await?;
    if data["artefact"].is_null() {
        return Ok(visit.not_found().await);
    }
    let base = visit.base_url();
    let json_ld = crate::open_data::json_ld::artefact(&data, &base, &|id| super::page_url(&base, id));
    // The reuse form: the member's published case studies to link, and their own story
    // (if they told one) to edit, beside their colleagues'.
    let signed_in_with_organisation =
        data["viewer"]["organisations"].as_array().is_some_and(|organisations| !organisations.is_empty());
    let my_case_studies = if signed_in_with_organisation {
        let mine = visit.query("reuse_form", json!({})).await?;
        let edges = mine["myCaseStudies"]["edges"].as_array().cloned().unwrap_or_default();
        edges.into_iter().map(|e| e["node"].clone()).filter(|n| n["status"] == "PUBLISHED").collect()
    } else {
        Vec::new()
    };
    let mut context = json!({
        "number": number, "reused": params.contains_key("reused"), "saved": params.contains_key("saved"), "kinds": KINDS, "json_ld": json_ld,
        "my_case_studies": my_case_studies, "reuse": own_story(&data),
    });
    if let (Some(object), Value::Object(more)) = (context.as_object_mut(), extra) {
        object.extend(more);
    }
    Ok(visit.render(status, "artefact.html", &data, context))
}

/// The signed-in member's own reuse story on the artefact in `data`, as the reuse form
/// shows it; null when they have told none.
fn own_story(data: &Value) -> Value {
    let Some(handle) = data["viewer"]["handle"].as_str() else { return Value::Null };
    for reuse in data["artefact"]["reuses"].as_array().into_iter().flatten() {
        for story in reuse["stories"].as_array().into_iter().flatten() {
            if story["member"]["handle"] == handle {
                return json!({
                    "organisationId": reuse["organisation"]["id"], "note": story["note"],
                    "caseStudyId": story["caseStudy"]["id"],
                });
            }
        }
    }
    Value::Null
}

/// The form's fields, as the template shows them and the mutations take them.
fn values_from(form: &Form) -> Value {
    json!({
        "title": form.text("title"),
        "kind": form.text("kind"),
        "description": form.text("description"),
        "url": form.text("url"),
        "licence": form.text("licence"),
        "status": form.text("status"),
        "organisationId": form.text("organisationId"),
        "adaptedFromId": form.text("adaptedFromId"),
        "topicIds": form.all("topicIds"),
        "caseStudyIds": form.all("caseStudyIds"),
        "publiccode": form.text("publiccode"),
        "version": form.text("version"),
        "changeNote": form.text("changeNote"),
    })
}

fn input_from(values: &Value) -> Value {
    let optional = |name: &str| values[name].as_str().filter(|v| !v.is_empty()).map(str::to_string);
    // Radios always send a listed value; anything else (a hand-made request) falls back to
    // the first rather than failing the whole form on GraphQL enum coercion.
    let pick = |name: &str, allowed: &[&'static str]| {
        values[name].as_str().filter(|v| allowed.contains(v)).unwrap_or(allowed[0]).to_string()
    };
    json!({
        "title": values["title"],
        "kind": pick("kind", &KINDS),
        "description": values["description"],
        "url": values["url"],
        "licence": values["licence"],
        "status": pick("status", &STATUSES),
        "organisationId": optional("organisationId"),
        "adaptedFromId": optional("adaptedFromId"),
        "topicIds": values["topicIds"],
        "caseStudyIds": values["caseStudyIds"],
        "publiccode": optional("publiccode"),
    })
}

/// Renders the form: for the artefact `number`, or a new one. A new artefact may start
/// from a case study (`case_study`) or from the artefact it adapts (`adapted_from`).
async fn render_form(
    visit: &Visit,
    status: StatusCode,
    number: Option<&str>,
    values: Value,
    extra: Value,
) -> Result<Response, Stop> {
    let data = match number {
        Some(number) => {
            let id = page_id("Artefact", number).unwrap_or_default();
            let data = visit.query("artefact_edit", json!({ "id": id })).await?;
            if data["artefact"].is_null() {
                return Ok(visit.not_found().await);
            }
            if data["artefact"]["viewerCanEdit"] != true {
                return Ok(visit
                    .error_page(
                        StatusCode::FORBIDDEN,
                        "You cannot edit this artefact",
                        "Only the member who shared it and its organisation's admins can.",
                    )
                    .await);
            }
            data
        }
        None => {
            let case_study = values["caseStudyIds"][0].as_str().unwrap_or_default();
            let adapted_from = values["adaptedFromId"].as_str().unwrap_or_default();
            let variables = json!({
                "caseStudy": case_study, "withCaseStudy": !case_study.is_empty(),
                "adaptedFrom": adapted_from, "withAdaptedFrom": !adapted_from.is_empty(),
            });
            visit.query("artefact_new", variables).await?
        }
    };
    let mut context = json!({ "values": values, "number": number, "kinds": KINDS, "statuses": STATUSES });
    if let (Some(object), Value::Object(more)) = (context.as_object_mut(), extra) {
        object.extend(more);
    }
    Ok(visit.render(status, "artefact_form.html", &data, context))
}

#[handler]
pub async fn new_form(request: &Request) -> Response {
    respond(
        async {
            let visit = Visit::new(request).await?;
            if !visit.signed_in() {
                return Ok(visit.sign_in_first());
            }
            let params = query_params(request);
            let case_study = params.get("case_study").and_then(|n| page_id("CaseStudy", n));
            let adapted_from = params.get("adapted_from").and_then(|n| page_id("Artefact", n));
            let values = json!({
                "kind": KINDS[0], "status": STATUSES[0], "topicIds": [],
                "caseStudyIds": case_study.into_iter().collect::<Vec<_>>(),
                "adaptedFromId": adapted_from,
            });
            render_form(&visit, StatusCode::OK, None, values, json!({})).await
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
            let Some(id) = page_id("Artefact", &number) else { return Ok(visit.not_found().await) };
            let data = visit.query("artefact_edit", json!({ "id": id })).await?;
            let current = &data["artefact"];
            if current.is_null() {
                return Ok(visit.not_found().await);
            }
            let ids = |items: &Value| -> Vec<Value> {
                items.as_array().map(|items| items.iter().map(|item| item["id"].clone()).collect()).unwrap_or_default()
            };
            let values = json!({
                "title": current["title"], "kind": current["kind"], "description": current["description"],
                "url": current["url"], "licence": current["licence"], "status": current["status"],
                "organisationId": current["organisation"]["id"], "adaptedFromId": current["adaptedFrom"]["id"],
                "topicIds": ids(&current["topics"]), "caseStudyIds": ids(&current["caseStudies"]),
                "version": current["version"],
                "publiccode": current["publiccode"]["source"],
            });
            render_form(&visit, StatusCode::OK, Some(&number), values, json!({})).await
        }
        .await,
    )
}

/// Saves (or previews) the form, for a new artefact when `number` is `None`.
async fn submit(request: &Request, body: Body, number: Option<String>) -> Result<Response, Stop> {
    let (mut visit, form) = Visit::posted_with_image(request, body).await?;
    let mut values = values_from(&form);
    match form.get("action") {
        Some("preview") => {
            let preview = writing::preview(&visit, &values["description"], "description").await;
            return render_form(&visit, StatusCode::OK, number.as_deref(), values, preview).await;
        }
        Some("upload") => {
            let (status, next) = writing::add_image(&mut visit, &form, &mut values, "description").await?;
            return render_form(&visit, status, number.as_deref(), values, next).await;
        }
        _ => {}
    }
    let mut input = input_from(&values);
    let outcome = match &number {
        None => visit.mutate("create_artefact", json!({ "input": input })).await?,
        Some(number) => {
            input["id"] = json!(page_id("Artefact", number).unwrap_or_default());
            input["version"] = json!(values["version"].as_str().and_then(|v| v.parse::<i64>().ok()).unwrap_or(0));
            input["changeNote"] = values["changeNote"].clone();
            visit.mutate("update_artefact", json!({ "input": input })).await?
        }
    };
    let errors = match outcome {
        Mutation::Done(payload) => {
            let path = node_path(payload["artefact"]["id"].as_str().unwrap_or(""));
            // An edit says it was saved; a new artefact's page is confirmation enough.
            return Ok(visit.redirect(&if number.is_some() { format!("{path}?saved=1") } else { path }));
        }
        Mutation::Invalid(errors) => form_errors(&errors, "title"),
        Mutation::Refused(message) => refused(message, "title"),
    };
    render_form(&visit, StatusCode::UNPROCESSABLE_ENTITY, number.as_deref(), values, json!({ "errors": errors })).await
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
pub async fn record_reuse(request: &Request, body: Body, Path(number): Path<String>) -> Response {
    respond(
        async {
            let (mut visit, form) = Visit::posted(request, body).await?;
            let Some(id) = page_id("Artefact", &number) else { return Ok(visit.not_found().await) };
            let case_study = Some(form.text("caseStudyId")).filter(|c| !c.is_empty());
            let input = json!({
                "artefactId": id,
                "organisationId": form.text("organisationId"),
                "note": form.text("note"),
                "caseStudyId": case_study,
            });
            let errors = match visit.mutate("record_reuse", json!({ "input": input })).await? {
                Mutation::Done(_) => return Ok(visit.redirect(&format!("/artefacts/{number}?reused=1#reuse"))),
                Mutation::Invalid(errors) => form_errors(&errors, "organisationId"),
                Mutation::Refused(message) => refused(message, "organisationId"),
            };
            let reuse = json!({
                "organisationId": form.text("organisationId"), "note": form.text("note"), "caseStudyId": case_study,
            });
            let extra = json!({ "errors": errors, "reuse": reuse });
            show_page(request, &number, StatusCode::UNPROCESSABLE_ENTITY, extra).await
        }
        .await,
    )
}
