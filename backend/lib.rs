//! Kettle, a knowledge-sharing forum for public-sector digital practitioners.
//!
//! A guided tour, from the outside in:
//! - [`cli`] — the `kettle` command and its subcommands; [`config`] — settings from the
//!   environment or `kettle.toml`, with defaults that work on a laptop.
//! - [`app`] — the shared [`app::AppState`] and the [`app::Application`] that binds,
//!   serves and drains on shutdown.
//! - [`http`] — routes and the middleware every request passes (request id, metrics,
//!   security headers); [`http::graphql`] speaks GraphQL over HTTP.
//! - [`site`] — the server-rendered pages, each a template plus a GraphQL document run
//!   in-process against the same schema as the API.
//! - [`graphql`] — the schema's roots and conventions (Relay ids and connections,
//!   `userErrors`, DataLoaders); each domain module contributes its own types to it.
//! - Domain modules own their types, SQL and GraphQL: [`accounts`] (members, passwords,
//!   sessions, access tokens, sign-in throttling), [`organisations`], [`topics`],
//!   [`case_studies`], [`artefacts`] (and their reuse), [`comments`], [`meetups`]. Changes that others will want to hear about write an event to the
//!   [`outbox`] in the same transaction; Markdown goes through [`markdown`] on write;
//!   [`search`] keeps the full-text index (FTS5 or tsvector).
//! - [`db`] — one SQL layer over SQLite and PostgreSQL, and the migrations.
//! - [`limits`] — the one rate limiter (Redis when configured, else in process) and the
//!   client's address behind trusted proxies; [`graphql::limits`] bounds each request's
//!   work before it runs; [`text`] — the one policy for what characters text may hold.
//! - [`error`] — the one error type, and when to use a `userError` instead.
//! - [`metrics`] and [`telemetry`] — Prometheus metrics and logs.

pub mod accounts;
pub mod app;
pub mod artefacts;
pub mod bus;
pub mod case_studies;
pub mod cli;
pub mod comments;
pub mod config;
pub mod db;
pub mod error;
pub mod graphql;
pub mod http;
pub mod limits;
pub mod mail;
pub mod markdown;
pub mod meetups;
pub mod metrics;
pub mod moderation;
pub mod notifications;
pub mod organisations;
pub mod outbox;
pub mod privacy;
pub mod search;
pub mod seed;
pub mod site;
pub mod slug;
pub mod telemetry;
pub mod text;
pub mod topics;
