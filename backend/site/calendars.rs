//! iCalendar feeds (`text/calendar`): one meetup, a group's meetups, and a member's own
//! feed behind a secret address. Calendar apps poll these without cookies, so they need
//! no session; the personal feed is found by its token alone.

use poem::{
    handler,
    http::{header, StatusCode},
    web::Path,
    Request, Response,
};

use crate::{app::AppState, error::AppResult, meetups};

fn state(request: &Request) -> &AppState {
    request.data::<AppState>().expect("AppState is attached to the site's routes")
}

/// The public URL for the events' links, without its trailing slash.
fn base_url(state: &AppState) -> &str {
    state.config.public_url.as_str().trim_end_matches('/')
}

fn site(state: &AppState) -> meetups::calendar::Site<'_> {
    meetups::calendar::Site { base_url: base_url(state), instance_id: &state.instance_id }
}

/// The `webcal:` form of a calendar's `http(s):` address (the template filter `webcal`):
/// the same host and path, which calendar apps open as a subscription rather than a
/// one-off import. Anything else comes back unchanged.
pub fn webcal(url: &str) -> String {
    match url.strip_prefix("https://").or_else(|| url.strip_prefix("http://")) {
        Some(rest) => format!("webcal://{rest}"),
        None => url.to_string(),
    }
}

fn ics(result: AppResult<Option<String>>) -> Response {
    match result {
        Ok(Some(body)) => Response::builder()
            .status(StatusCode::OK)
            .content_type("text/calendar; charset=utf-8")
            .header(header::CACHE_CONTROL, "private, max-age=300")
            .body(body),
        Ok(None) => Response::builder().status(StatusCode::NOT_FOUND).body("No such calendar."),
        Err(err) => {
            err.log_if_internal();
            Response::builder().status(StatusCode::INTERNAL_SERVER_ERROR).body("The calendar could not be made.")
        }
    }
}

/// The number before `.ics` in a path segment such as `42.ics`.
fn stem(segment: &str) -> Option<&str> {
    segment.strip_suffix(".ics")
}

#[handler]
pub async fn event(request: &Request, Path(segment): Path<String>) -> Response {
    let state = state(request);
    ics(async {
        let Some(id) = stem(&segment).and_then(|n| n.parse::<i64>().ok()) else { return Ok(None) };
        let Some(event) = meetups::events::by_ids(&state.db, &[id]).await?.remove(&id) else { return Ok(None) };
        // A meetup the moderators hid is not published, here as on its page.
        if event.hidden_at.is_some() {
            return Ok(None);
        }
        Ok(Some(meetups::calendar::event_feed(&state.db, site(state), &event).await?))
    }
    .await)
}

#[handler]
pub async fn group(request: &Request, Path(segment): Path<String>) -> Response {
    let state = state(request);
    ics(async {
        let Some(slug) = stem(&segment) else { return Ok(None) };
        let Some(group) = meetups::by_slug(&state.db, slug).await? else { return Ok(None) };
        Ok(Some(meetups::calendar::group_feed(&state.db, site(state), &group).await?))
    }
    .await)
}

#[handler]
pub async fn personal(request: &Request, Path(segment): Path<String>) -> Response {
    let state = state(request);
    ics(async {
        let Some(token) = stem(&segment) else { return Ok(None) };
        let Some(member_id) = meetups::calendar::member_for_token(&state.db, token).await? else { return Ok(None) };
        Ok(Some(meetups::calendar::member_feed(&state.db, site(state), member_id).await?))
    }
    .await)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn webcal_keeps_host_and_path() {
        assert_eq!(
            webcal("https://kettle.example.org/calendars/groups/a.ics"),
            "webcal://kettle.example.org/calendars/groups/a.ics"
        );
        assert_eq!(webcal("http://127.0.0.1:8080/x.ics"), "webcal://127.0.0.1:8080/x.ics");
        assert_eq!(webcal("/relative.ics"), "/relative.ics");
    }
}
