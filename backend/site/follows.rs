//! Following: the control on every followable page (a topic, an organisation, a meetup
//! group, a member, a case study or an artefact) posts here, and `/follows` lists what the
//! member follows, each with the same control.
//!
//! One form does everything: a level (`WATCHING`, `DIGEST`, `MUTED`) runs the `follow`
//! mutation, `NONE` runs `unfollow`. It works without JavaScript and comes back to the
//! page it was sent from (`return_to`, a path inside the site only).

use poem::{handler, http::StatusCode, Body, Request, Response};
use serde_json::{json, Value};

use super::{
    forms::{query_params, respond},
    visit::{safe_return_to, Mutation, Stop, Visit},
};

/// The levels the API knows; "not following" is `NONE` in the form.
const LEVELS: [&str; 3] = ["WATCHING", "DIGEST", "MUTED"];

/// The longest id a form may name: global ids are short; anything longer is not one.
const ID_LIMIT: usize = 200;

/// `GET /follows`: what the viewer follows, twenty at a time.
#[handler]
pub async fn list(request: &Request) -> Response {
    respond(
        async {
            let visit = Visit::new(request).await?;
            if !visit.signed_in() {
                return Ok(visit.sign_in_first());
            }
            let after = query_params(request).remove("after").filter(|a| !a.is_empty() && a.len() <= ID_LIMIT);
            let data = visit.query("follows", json!({ "after": after })).await?;
            Ok(visit.render(StatusCode::OK, "follows.html", &data, json!({ "after": after })))
        }
        .await,
    )
}

/// `POST /follows`: sets how the viewer follows `targetId` (or stops), then goes back.
#[handler]
pub async fn update(request: &Request, body: Body) -> Response {
    respond(
        async {
            let (mut visit, form) = Visit::posted(request, body).await?;
            let return_to = safe_return_to(form.get("return_to")).unwrap_or_else(|| "/follows".to_string());
            if !visit.signed_in() {
                return Ok(sign_in_then(&visit, &return_to));
            }
            let target = form.text("targetId");
            if target.is_empty() || target.len() > ID_LIMIT {
                return Err(
                    cannot_follow(&visit, StatusCode::BAD_REQUEST, "The form did not say what to follow.").await
                );
            }
            let level = form.text("level");
            let outcome = match level.as_str() {
                "NONE" => visit.mutate("unfollow", json!({ "input": { "targetId": target } })).await?,
                level if LEVELS.contains(&level) => {
                    let input = json!({ "targetId": target, "level": level });
                    visit.mutate("follow", json!({ "input": input })).await?
                }
                _ => {
                    let message = "Choose watching, digest, muted or not following.";
                    return Err(cannot_follow(&visit, StatusCode::BAD_REQUEST, message).await);
                }
            };
            match outcome {
                Mutation::Done(_) => Ok(visit.redirect(&return_to)),
                Mutation::Invalid(errors) => {
                    let message = first_message(&errors);
                    Err(cannot_follow(&visit, StatusCode::UNPROCESSABLE_ENTITY, &message).await)
                }
                Mutation::Refused(message) => {
                    Err(cannot_follow(&visit, StatusCode::UNPROCESSABLE_ENTITY, &message).await)
                }
            }
        }
        .await,
    )
}

/// The sign-in page, coming back to the page the form was on (not to this POST's path).
fn sign_in_then(visit: &Visit, return_to: &str) -> Response {
    let back = return_to.split('#').next().unwrap_or("/");
    visit.redirect(&format!(
        "/sign-in?return_to={}",
        url::form_urlencoded::byte_serialize(back.as_bytes()).collect::<String>()
    ))
}

fn first_message(errors: &[Value]) -> String {
    errors.iter().filter_map(|e| e["message"].as_str()).next().unwrap_or("That cannot be followed.").to_string()
}

async fn cannot_follow(visit: &Visit, status: StatusCode, message: &str) -> Stop {
    Box::new(visit.error_page(status, "You cannot follow this", message).await)
}
