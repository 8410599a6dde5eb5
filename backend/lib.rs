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
//!   [`case_studies`], [`artefacts`] (and their reuse), [`history`] (both keep every
//!   version, with a change note, and compare any two), [`comments`], [`meetups`],
//!   [`moderation`] (flags, reviews, suspensions, the audit log) and [`privacy`] (export,
//!   erasure, retention). Changes that others will want to hear about write an event to
//!   the [`outbox`] in the same transaction; [`notifications`] turns events into
//!   notifications and follows, [`bus`] carries them live across instances, and [`mail`]
//!   queues and sends mail and digests. Markdown goes through [`markdown`] on write;
//!   [`search`] keeps the full-text index (FTS5 or tsvector); [`open_data`] publishes
//!   JSON-LD on pages and a JSON Lines export for machines.
//! - [`db`] — one SQL layer over SQLite and PostgreSQL, and the migrations.
//! - [`limits`] — the one rate limiter (Redis when configured, else in process) and the
//!   client's address behind trusted proxies; [`graphql::limits`] bounds each request's
//!   work before it runs; [`text`] — the one policy for what characters text may hold.
//! - [`error`] — the one error type, and when to use a `userError` instead.
//! - [`metrics`] and [`telemetry`] — Prometheus metrics and logs; [`seed`] — demo data.
//!
//! ARCHITECTURE.md, beside the README, gives the decisions behind this shape.

pub mod accounts;
pub mod app;
pub mod artefacts;
pub mod bus;
pub mod case_studies;
pub mod cli;
pub mod comments;
pub mod config;
pub mod cpu;
pub mod db;
pub mod error;
pub mod graphql;
pub mod history;
pub mod http;
pub mod limits;
pub mod mail;
pub mod markdown;
pub mod meetups;
pub mod metrics;
pub mod moderation;
pub mod notifications;
pub mod open_data;
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
pub mod uploads;

#[cfg(test)]
mod layering {
    use std::path::{Path, PathBuf};

    /// The layers above the domain: a domain file that named one of them would make the
    /// module graph one cycle again (see ARCHITECTURE.md, "Dependencies point one way").
    const ABOVE: [&str; 3] = ["graphql", "http", "site"];

    fn rust_files(dir: &Path, found: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                rust_files(&path, found);
            } else if path.extension().is_some_and(|e| e == "rs") {
                found.push(path);
            }
        }
    }

    /// Whether `file` (relative to `backend/`) belongs to a layer above the domain: the
    /// layers' own folders, a module's GraphQL (`graphql.rs` or a `graphql/` folder), and
    /// the wiring at the top.
    fn above_the_domain(file: &str) -> bool {
        ABOVE.iter().any(|layer| file.starts_with(&format!("{layer}/")))
            || file.ends_with("/graphql.rs")
            || file.contains("/graphql/")
            || ["app.rs", "cli.rs", "lib.rs", "main.rs"].contains(&file)
    }

    /// The crate paths a file names: `crate::a::b` anywhere, and each `a` inside
    /// `use crate::{a, b::c}`.
    fn crate_paths(source: &str) -> Vec<String> {
        let code: String =
            source.lines().filter(|line| !line.trim_start().starts_with("//")).collect::<Vec<_>>().join("\n");
        let mut paths = Vec::new();
        for (at, _) in code.match_indices("crate::") {
            let rest = &code[at + "crate::".len()..];
            if let Some(group) = rest.strip_prefix('{') {
                // Split the group at its top-level commas; each item's first name counts.
                let mut depth = 0;
                let mut item = String::new();
                for c in group.chars() {
                    match c {
                        '}' if depth == 0 => break,
                        '{' => depth += 1,
                        '}' => depth -= 1,
                        ',' if depth == 0 => paths.push(first_name(&std::mem::take(&mut item))),
                        _ => item.push(c),
                    }
                }
                paths.push(first_name(&item));
            } else {
                paths.push(first_name(rest));
            }
        }
        paths.retain(|p| !p.is_empty());
        paths
    }

    fn first_name(path: &str) -> String {
        path.trim_start().chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect()
    }

    #[test]
    fn domain_files_do_not_name_the_layers_above() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("backend");
        let mut files = Vec::new();
        rust_files(&root, &mut files);
        let mut offences = Vec::new();
        for path in files {
            let file = path.strip_prefix(&root).unwrap().to_string_lossy().replace('\\', "/");
            if above_the_domain(&file) {
                continue;
            }
            let source = std::fs::read_to_string(&path).unwrap();
            for named in crate_paths(&source) {
                if ABOVE.contains(&named.as_str()) {
                    offences.push(format!("{file} names crate::{named}"));
                }
            }
            // A module's own GraphQL is above its domain files too.
            if source.contains("super::graphql") {
                offences.push(format!("{file} names its module's graphql"));
            }
        }
        assert!(offences.is_empty(), "{offences:#?}");
    }

    #[test]
    fn the_check_sees_grouped_and_plain_paths() {
        let paths = crate_paths(
            "use crate::{\n    db,\n    graphql::{relay, Page},\n    site,\n};\nfn f() { crate::http::x(); }",
        );
        assert_eq!(paths, ["db", "graphql", "site", "http"]);
    }
}
