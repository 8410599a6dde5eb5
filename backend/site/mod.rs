//! The site: server-rendered pages that are clients of Kettle's own GraphQL API.
//!
//! Each page is a template in `web/templates/` plus a GraphQL document in
//! `web/queries/`, executed in-process with the visitor's identity ([`visit`]). Forms post
//! to handlers that run mutations and show their `userErrors` ([`forms`]). Everything works
//! without JavaScript; `web/static/app.js` only adds small conveniences.
//!
//! Templates use minijinja: it loads templates at run time, so in development an edited
//! template shows on reload without a rebuild (askama would recompile), while release
//! builds embed them ([`assets`]) and parse each once. Its Jinja syntax is familiar to
//! designers, and it escapes HTML by default.

pub mod account;
pub mod admin;
pub mod artefacts;
pub mod assets;
pub mod calendars;
pub mod case_studies;
pub mod comments;
pub mod csrf;
pub mod explorer;
pub mod feeds;
pub mod follows;
pub mod forms;
pub mod history;
pub mod home;
pub mod images;
pub mod meetups;
pub mod members;
pub mod moderation;
pub mod notifications;
pub mod oauth;
pub mod organisations;
pub mod privacy;
pub mod topics;
pub mod unsubscribe;
pub mod visit;
pub mod writing;

use std::{collections::HashMap, sync::LazyLock};

use async_graphql::parser::types::{ExecutableDocument, OperationType, Selection};
use poem::Route;

use crate::http::methods::{get, post};

use crate::graphql::relay;

/// The site's routes; the API and operational routes are added beside them in `http`.
pub fn routes() -> Route {
    Route::new()
        .at("/register", get(account::register_form).post(account::register))
        .at("/sign-in", get(account::sign_in_form).post(account::sign_in))
        .at("/sign-out", post(account::sign_out))
        .at("/forgot-password", get(account::forgot_form).post(account::forgot))
        .at("/reset-password/:token", get(account::reset_form).post(account::reset))
        .at("/verify-email/:token", get(account::verify_form).post(account::verify))
        .at("/auth/:provider/start", get(oauth::start))
        .at("/auth/:provider/callback", get(oauth::callback))
        .at("/settings", get(account::settings))
        .at("/settings/profile", post(account::update_profile))
        .at("/settings/tokens", post(account::create_token))
        .at("/settings/tokens/revoke", post(account::revoke_token))
        .at("/settings/connections/disconnect", post(account::disconnect_identity))
        .at("/settings/email", post(account::change_email))
        .at("/settings/handle", post(account::change_handle))
        .at("/settings/password", post(account::change_password))
        .at("/settings/verification", post(account::resend_verification))
        .at("/settings/data", get(privacy::exports).post(privacy::request_export))
        .at("/settings/data/export/:token", get(privacy::download))
        .at("/settings/delete", get(privacy::delete_form).post(privacy::delete))
        .at("/settings/images", get(images::list))
        .at("/settings/images/:number/delete", get(images::delete_form).post(images::delete))
        .at("/privacy", get(privacy::notice))
        .at("/settings/notifications", get(notifications::settings).post(notifications::update_settings))
        .at("/unsubscribe/:token", get(unsubscribe::confirm).post(unsubscribe::leave))
        .at("/follows", get(follows::list).post(follows::update))
        .at("/notifications", get(notifications::list))
        .at("/notifications/new", get(notifications::new_for_you))
        .at("/notifications/read", post(notifications::mark_read))
        .at("/members", get(members::directory))
        .at("/members/:id", get(members::member))
        .at("/report", get(moderation::report_form).post(moderation::report))
        .at("/moderation", get(moderation::queue))
        .at("/moderation/reviews/:number", get(moderation::review).post(moderation::decide))
        .at("/members/:id/suspend", post(admin::suspend))
        .at("/members/:id/lift", post(admin::lift))
        .at("/members/:id/role", post(admin::set_role))
        .at("/admin/audit", get(admin::audit_log))
        .at("/admin/settings", get(admin::settings).post(admin::save_settings))
        .at("/search", get(case_studies::search))
        .at("/case-studies", get(case_studies::list))
        .at("/case-studies/new", get(case_studies::new_form).post(case_studies::create))
        .at("/case-studies/:number", get(case_studies::show))
        .at("/case-studies/:number/edit", get(case_studies::edit_form).post(case_studies::update))
        .at("/case-studies/:number/publish", post(case_studies::publish))
        .at("/case-studies/:number/delete", get(case_studies::delete_form).post(case_studies::delete))
        .at("/case-studies/:number/history", get(history::case_study))
        .at("/case-studies/:number/history/compare", get(history::case_study_compare))
        .at("/case-studies/:number/useful", post(case_studies::mark_useful))
        .at("/case-studies/:number/bookmark", post(case_studies::bookmark))
        .at("/bookmarks", get(case_studies::bookmarks))
        .at("/case-studies/:number/interest", post(case_studies::register_interest))
        .at("/case-studies/:number/leave", post(case_studies::leave))
        .at("/invitations", get(case_studies::invitations).post(case_studies::respond_to_invitation))
        .at("/artefacts", get(artefacts::list))
        .at("/artefacts/new", get(artefacts::new_form).post(artefacts::create))
        .at("/artefacts/:number", get(artefacts::show))
        .at("/artefacts/:number/edit", get(artefacts::edit_form).post(artefacts::update))
        .at("/artefacts/:number/history", get(history::artefact))
        .at("/artefacts/:number/history/compare", get(history::artefact_compare))
        .at("/artefacts/:number/reuse", post(artefacts::record_reuse))
        .at("/comments", post(comments::post))
        .at("/comments/:number/edit", get(comments::edit_form).post(comments::edit))
        .at("/comments/:number/delete", get(comments::delete_form).post(comments::delete))
        .at("/topics", get(topics::list).post(topics::create))
        .at("/topics/:slug", get(topics::show))
        .at("/topics/:slug/rename", post(topics::rename))
        .at("/topics/:slug/merge", post(topics::merge))
        .at("/organisations", get(organisations::list))
        .at("/organisations/new", get(organisations::new_form).post(organisations::create))
        .at("/organisations/:slug", get(organisations::show))
        .at("/organisations/:slug/join", post(organisations::join))
        .at("/organisations/:slug/requests", post(organisations::decide))
        .at("/open-data/kettle.jsonl", get(crate::open_data::export::download))
        .at("/feeds/case-studies.atom", get(feeds::latest))
        .at("/feeds/topics/:slug", get(feeds::topic))
        .at("/feeds/organisations/:slug", get(feeds::organisation))
        .at("/feeds/artefacts.atom", get(feeds::artefacts))
        .at("/feeds/meetups.atom", get(feeds::meetups))
        .at("/meetups", get(meetups::list))
        .at("/meetups/mine", get(meetups::mine))
        .at("/meetups/calendar", get(meetups::calendar_reset_form).post(meetups::reset_calendar))
        .at("/meetups/new-group", get(meetups::new_group_form).post(meetups::create_group))
        .at("/meetups/groups/:slug", get(meetups::group))
        .at("/meetups/groups/:slug/join", post(meetups::join))
        .at("/meetups/groups/:slug/leave", post(meetups::leave))
        .at("/meetups/groups/:slug/organisers", post(meetups::add_co_organiser))
        .at("/meetups/groups/:slug/schedule", get(meetups::schedule_form).post(meetups::schedule))
        .at("/meetups/events/:number", get(meetups::event))
        .at("/meetups/events/:number/rsvp", post(meetups::rsvp))
        .at("/meetups/events/:number/give-up", get(meetups::give_up_form))
        .at("/meetups/events/:number/cancel", get(meetups::cancel_form).post(meetups::cancel))
        .at("/meetups/events/:number/reinstate", post(meetups::reinstate))
        .at("/meetups/events/:number/copy", post(meetups::copy))
        .at("/meetups/events/:number/agenda", post(meetups::add_agenda_item))
        .at("/meetups/events/:number/agenda/remove", post(meetups::remove_agenda_item))
        .at("/meetups/events/:number/agenda/move", post(meetups::move_agenda_item))
        .at("/meetups/events/:number/agenda/copy", post(meetups::copy_agenda))
        .at("/meetups/events/:number/agenda/:item", get(meetups::agenda_item_form).post(meetups::update_agenda_item))
        .at("/meetups/events/:number/edit", get(meetups::edit_form).post(meetups::edit))
        .at("/meetups/events/:number/series", get(meetups::series).post(meetups::change_series))
        .at("/meetups/events/:number/attendees", get(meetups::attendees))
        .at("/meetups/events/:number/attendees.csv", get(meetups::attendees))
        .at("/meetups/events/:number/remove/:handle", get(meetups::remove_form).post(meetups::remove))
        .at("/meetups/events/:number/readmit", post(meetups::readmit))
        .at("/meetups/events/:number/attendance", post(meetups::attendance))
        .at("/meetups/events/:number/message", post(meetups::send_message))
        .at("/calendars/events/:file", get(calendars::event))
        .at("/calendars/groups/:file", get(calendars::group))
        .at("/calendars/personal/:file", get(calendars::personal))
        .at("/graphql/explorer", get(explorer::page))
        .at("/static/:file", get(assets::serve))
        .at("/robots.txt", get(assets::robots))
        .at("/favicon.ico", get(assets::favicon))
        .at("/*path", get(home::home_or_not_found))
}

/// The absolute address of the page of a case study, artefact or meetup by global id,
/// for what the site publishes to other machines (JSON-LD, see `open_data::json_ld`).
pub(crate) fn page_url(base: &str, id: &str) -> String {
    match relay::parse_global_id(id) {
        Ok((kind, number)) if kind == "MeetupEvent" => format!("{base}/meetups/events/{number}"),
        _ => format!("{base}{}", node_path(id)),
    }
}

/// The global id behind a page's number: `/artefacts/12` shows `Artefact:12`.
pub(crate) fn page_id(type_name: &str, number: &str) -> Option<String> {
    number.parse::<i64>().ok().filter(|n| *n > 0).map(|n| relay::global_id(type_name, n).0)
}

/// The number in a global id (`AgendaItem:12` → 12), as pages' addresses show it.
pub(crate) fn node_number(id: &str) -> Option<i64> {
    relay::parse_global_id(id).ok().map(|(_, number)| number)
}

/// The page of a case study, an artefact or a comment (on its subject's page) by global
/// id; the home page for anything else.
pub(crate) fn node_path(id: &str) -> String {
    match relay::parse_global_id(id) {
        Ok((kind, number)) if kind == "CaseStudy" => format!("/case-studies/{number}"),
        Ok((kind, number)) if kind == "Artefact" => format!("/artefacts/{number}"),
        Ok((kind, number)) if kind == "MeetupEvent" => format!("/meetups/events/{number}"),
        _ => "/".to_string(),
    }
}

/// A page document from `web/queries/`, with the shared fragments it uses, parsed once.
pub struct PageDocument {
    pub source: String,
    pub parsed: ExecutableDocument,
    /// For a mutation document, its one root field (the payload's key in the result):
    /// taken from the document, so a handler cannot name a different one.
    pub mutation_field: Option<String>,
}

/// Every page document, by name (`home`, `create_artefact`), parsed when first needed
/// instead of on every request. A document that does not parse is left out and logged;
/// `page_documents_match_the_schema` keeps that from ever shipping.
static PAGE_DOCUMENTS: LazyLock<HashMap<String, PageDocument>> = LazyLock::new(|| {
    assets::Web::iter()
        .filter(|path| path.starts_with("queries/") && path.ends_with(".graphql") && *path != FRAGMENTS)
        .filter_map(|path| {
            let name = path.trim_start_matches("queries/").trim_end_matches(".graphql").to_string();
            let source = document(&name)?;
            match async_graphql::parser::parse_query(&source) {
                Ok(parsed) => {
                    let mutation_field = mutation_field(&parsed);
                    Some((name, PageDocument { source, parsed, mutation_field }))
                }
                Err(error) => {
                    tracing::error!(document = %name, %error, "a page's GraphQL document does not parse");
                    None
                }
            }
        })
        .collect()
});

/// The one root field of a mutation document, or `None` for a query (or a mutation
/// selecting more or less than one field, which `Visit::mutate` refuses).
fn mutation_field(document: &ExecutableDocument) -> Option<String> {
    let mut operations = document.operations.iter();
    let (_, operation) = operations.next()?;
    if operations.next().is_some() || operation.node.ty != OperationType::Mutation {
        return None;
    }
    match operation.node.selection_set.node.items.as_slice() {
        [only] => match &only.node {
            Selection::Field(field) => Some(field.node.response_key().node.to_string()),
            _ => None,
        },
        _ => None,
    }
}

/// A page document by name.
pub fn page_document(name: &str) -> Option<&'static PageDocument> {
    PAGE_DOCUMENTS.get(name)
}

/// Every page document, by name, for checking against the schema.
pub fn page_documents() -> impl Iterator<Item = (&'static str, &'static PageDocument)> {
    PAGE_DOCUMENTS.iter().map(|(name, document)| (name.as_str(), document))
}

/// Fragments shared by several page documents (a comment thread, say), so each shape
/// is written once.
const FRAGMENTS: &str = "queries/fragments.graphql";

/// A page document with the shared fragments it spreads (and those they spread)
/// appended: GraphQL refuses a document with unused fragments, so only those.
fn document(name: &str) -> Option<String> {
    let mut source = assets::text(&format!("queries/{name}.graphql"))?;
    let shared = assets::text(FRAGMENTS).unwrap_or_default();
    let starts: Vec<usize> =
        shared.match_indices("fragment ").map(|(i, _)| i).filter(|i| *i == 0 || shared[..*i].ends_with('\n')).collect();
    let fragments: Vec<(&str, &str)> = starts
        .iter()
        .enumerate()
        .map(|(k, &start)| {
            let text = shared[start..starts.get(k + 1).copied().unwrap_or(shared.len())].trim();
            (text["fragment ".len()..].split_whitespace().next().unwrap_or_default(), text)
        })
        .collect();
    let spreads = |text: &str, name: &str| {
        text.match_indices(&format!("...{name}"))
            .any(|(i, m)| !text[i + m.len()..].starts_with(|c: char| c.is_alphanumeric() || c == '_'))
    };
    let mut included: Vec<&str> = Vec::new();
    loop {
        let next = fragments.iter().find(|(name, _)| !included.contains(name) && spreads(&source, name));
        let Some((name, text)) = next else { break };
        included.push(name);
        source.push('\n');
        source.push_str(text);
        source.push('\n');
    }
    Some(source)
}
