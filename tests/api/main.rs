//! Integration tests: each scenario starts the real server on port 0 and talks HTTP to
//! it, on every configured database (see `support`).

mod accounts;
mod artefacts;
mod bounds;
mod calendars;
mod case_studies;
mod cli;
mod coauthors;
mod comments;
mod digests;
mod dispatch;
mod feeds;
mod fuzz;
mod hostile;
mod limits;
mod live;
mod mail_accounts;
mod mail_delivery;
mod mail_notifications;
mod mailbox;
mod meetup_agenda;
mod meetup_people;
mod meetup_series;
mod meetups;
mod moderation;
mod notifications;
mod oauth;
mod oauth_provider;
mod open_data;
mod privacy;
mod protocol;
mod search_bounds;
mod service;
mod site;
mod smtp_server;
mod stored_text;
mod support;
mod suspensions;
mod uploads;

use std::panic::AssertUnwindSafe;

use futures_util::FutureExt;
use libtest_mimic::{Arguments, Failed, Trial};
use support::{Backend, Scenario, TestApp};

fn main() {
    let args = Arguments::from_args();
    let scenarios: Vec<(&str, Scenario)> = [
        accounts::scenarios(),
        case_studies::scenarios(),
        coauthors::scenarios(),
        artefacts::scenarios(),
        comments::scenarios(),
        meetups::scenarios(),
        meetup_agenda::scenarios(),
        meetup_people::scenarios(),
        meetup_series::scenarios(),
        calendars::scenarios(),
        feeds::scenarios(),
        protocol::scenarios(),
        service::scenarios(),
        site::scenarios(),
        cli::scenarios(),
        oauth::scenarios(),
        hostile::scenarios(),
        fuzz::scenarios(),
        bounds::scenarios(),
        limits::scenarios(),
        live::scenarios(),
        notifications::scenarios(),
        dispatch::scenarios(),
        digests::scenarios(),
        mail_accounts::scenarios(),
        mail_notifications::scenarios(),
        mail_delivery::scenarios(),
        moderation::scenarios(),
        suspensions::scenarios(),
        privacy::scenarios(),
        stored_text::scenarios(),
        open_data::scenarios(),
        search_bounds::scenarios(),
        uploads::scenarios(),
    ]
    .concat();

    let backends = support::backends();
    for backend in backends.iter().flatten() {
        if let Backend::Postgres { admin_url, .. } = backend {
            runtime().block_on(support::drop_stale_databases(admin_url));
        }
    }

    let mut trials = Vec::new();
    for backend in &backends {
        for &(name, scenario) in &scenarios {
            let name = name.replace("::", "/");
            match backend {
                Ok(backend) => {
                    let backend = backend.clone();
                    trials.push(Trial::test(format!("{}/{name}", backend.name()), move || run(&backend, scenario)));
                }
                Err((backend, reason)) => {
                    let reason = reason.clone();
                    trials.push(
                        Trial::test(format!("{backend}/{name}"), move || Err(Failed::from(reason)))
                            .with_ignored_flag(true),
                    );
                }
            }
        }
    }
    if let Some(Err((_, reason))) = backends.iter().find(|b| b.is_err()) {
        eprintln!("note: {reason}; set it to run them (the README's test command does).");
    }
    libtest_mimic::run(&args, trials).exit();
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("a tokio runtime")
}

fn run(backend: &Backend, scenario: Scenario) -> Result<(), Failed> {
    runtime().block_on(async {
        let app = TestApp::spawn(backend).await;
        let outcome = AssertUnwindSafe(scenario(app.clone())).catch_unwind().await;
        app.finish().await;
        outcome.map_err(|panic| {
            let message = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "the test panicked".into());
            Failed::from(message)
        })
    })
}
