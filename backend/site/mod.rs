//! The site: server-rendered pages that are clients of Kettle's own GraphQL API.
//!
//! Each page is a template in `web/templates/` plus a GraphQL document in
//! `web/queries/`, executed in-process with the visitor's identity ([`visit`]). Forms post
//! to handlers that run mutations and show their `userErrors` ([`pages`]). Everything works
//! without JavaScript; `web/static/app.js` only adds small conveniences.
//!
//! Templates use minijinja: it loads templates at run time, so in development an edited
//! template shows on reload without a rebuild (askama would recompile), while release
//! builds embed them ([`assets`]) and parse each once. Its Jinja syntax is familiar to
//! designers, and it escapes HTML by default.

pub mod assets;
pub mod csrf;
pub mod feeds;
pub mod knowledge;
pub mod pages;
pub mod visit;

use poem::{get, post, Route};

/// The site's routes; the API and operational routes are added beside them in `http`.
pub fn routes() -> Route {
    Route::new()
        .at("/register", get(pages::register_form).post(pages::register))
        .at("/sign-in", get(pages::sign_in_form).post(pages::sign_in))
        .at("/sign-out", post(pages::sign_out))
        .at("/settings", get(pages::settings))
        .at("/settings/profile", post(pages::update_profile))
        .at("/settings/tokens", post(pages::create_token))
        .at("/settings/tokens/revoke", post(pages::revoke_token))
        .at("/members/:id", get(pages::member))
        .at("/search", get(knowledge::search))
        .at("/case-studies", get(knowledge::list))
        .at("/case-studies/new", get(knowledge::new_form).post(knowledge::create))
        .at("/case-studies/:number", get(knowledge::show))
        .at("/case-studies/:number/edit", get(knowledge::edit_form).post(knowledge::update))
        .at("/case-studies/:number/publish", post(knowledge::publish))
        .at("/case-studies/:number/useful", post(knowledge::mark_useful))
        .at("/case-studies/:number/interest", post(knowledge::register_interest))
        .at("/topics/:slug", get(knowledge::topic))
        .at("/organisations/:slug", get(knowledge::organisation))
        .at("/feeds/case-studies.atom", get(feeds::latest))
        .at("/feeds/topics/:slug", get(feeds::topic))
        .at("/feeds/organisations/:slug", get(feeds::organisation))
        .at("/static/:file", get(assets::serve))
        .at("/*path", get(pages::home_or_not_found))
}

/// The GraphQL documents in `web/queries/`, by name, for checking against the schema.
pub fn page_documents() -> Vec<(String, String)> {
    assets::Web::iter()
        .filter(|path| path.starts_with("queries/") && path.ends_with(".graphql"))
        .filter_map(|path| assets::text(&path).map(|text| (path.to_string(), text)))
        .collect()
}
