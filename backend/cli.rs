//! The `kettle` command line: `serve` (the default), `migrate`, `schema`, `seed`,
//! `dispatch`, `digest`, `admin`.

use std::io::{BufRead, IsTerminal};

use anyhow::bail;
use clap::{Parser, Subcommand};

use crate::{
    accounts::{self, passwords, NewMember, Role},
    app::{self, AppState, Application},
    config::Config,
    db::Db,
    error::AppError,
    graphql, telemetry,
};

const CONFIGURATION_HELP: &str = "\
Configuration comes from environment variables (or a kettle.toml with the same names in
lower case, without KETTLE_; KETTLE_CONFIG names another file):
  KETTLE_LISTEN           address to serve on                   [default: 127.0.0.1:8080]
  KETTLE_DATA_DIR         the SQLite file and mail folder       [default: ./kettle-data]
  KETTLE_DATABASE_URL     sqlite://… or postgres://…            [default: SQLite in the data dir]
  KETTLE_REDIS_URL        redis://… for several instances       [default: none, in-process]
  KETTLE_REDIS_PREFIX     put before every Redis key            [default: kettle]
  KETTLE_PUBLIC_URL       the site's address as users see it    [default: http://KETTLE_LISTEN]
  KETTLE_LOG              log filter, such as info or kettle=debug [default: info]
  KETTLE_LOG_FORMAT       text or json                          [default: text]
  KETTLE_REGISTRATION     open or closed (no new accounts)      [default: open]
  KETTLE_TRUSTED_PROXIES  address ranges whose X-Forwarded-For is believed [default: none]
  KETTLE_RATE_LIMITS      overrides: name=count/seconds, …      [default: built in]
  KETTLE_SMTP_URL         smtp://… or smtps://… to send mail    [default: .eml files in the data dir]
  KETTLE_MAIL_FROM        the sender of every message           [default: Kettle <noreply@public host>]
  KETTLE_MAIL_DELAY       seconds notification mail waits       [default: 600]
  KETTLE_IMAGE_QUOTA_MB   megabytes of images per member        [default: 100]
Sign-in providers, one set per NAME (letters and digits):
  KETTLE_OAUTH_<NAME>_CLIENT_ID, _CLIENT_SECRET   the client's credentials (required)
  KETTLE_OAUTH_<NAME>_PRESET                      github, google or microsoft (then _TENANT)
  KETTLE_OAUTH_<NAME>_AUTH_URL, _TOKEN_URL, _USERINFO_URL   endpoints, without a preset
  KETTLE_OAUTH_<NAME>_SCOPES                      [default: openid email profile]
  KETTLE_OAUTH_<NAME>_LABEL                       the button's name [default: NAME]
  KETTLE_OAUTH_<NAME>_SUBJECT_FIELD, _EMAIL_FIELD, _NAME_FIELD, _EMAIL_VERIFIED_FIELD
                                                  user-info fields [default: sub, email, name, email_verified]
See the README for each in full.";

#[derive(Parser)]
#[command(name = "kettle", version, about = "Kettle: a knowledge-sharing forum for public-sector digital practitioners.", after_help = CONFIGURATION_HELP)]
pub struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the site and the GraphQL API (what runs with no subcommand).
    #[command(after_help = CONFIGURATION_HELP)]
    Serve,
    /// Apply database migrations, then exit (serve also does this at start-up).
    #[command(after_help = CONFIGURATION_HELP)]
    Migrate,
    /// Print the GraphQL schema (SDL); schema.graphql in the repository holds the same.
    Schema,
    /// Fill an empty instance with data.
    Seed {
        /// A small, believable community of members, organisations, topics and case
        /// studies, so a newcomer sees a living site. Prints the demo password.
        #[arg(long)]
        demo: bool,
    },
    /// Turn every pending outbox event into notifications now, then exit: for after a
    /// restore, or when no server runs. Waits for the dispatcher lease if a server holds
    /// it; live subscribers are not told (they catch up when they reconnect).
    #[command(after_help = CONFIGURATION_HELP)]
    Dispatch,
    /// Digests: send the ones that are due now, or see what they would say.
    Digest {
        #[command(subcommand)]
        command: DigestCommand,
    },
    /// Manage administrator accounts.
    Admin {
        #[command(subcommand)]
        command: AdminCommand,
    },
}

#[derive(Subcommand)]
enum DigestCommand {
    /// Send every digest that is due now (what each server does once a minute), then
    /// exit, printing for each member the address, the subject and what was in it. Safe
    /// beside running servers: each digest goes out once per period whoever sends it.
    /// Queued mail is then sent at once (a running server's sender would also send it).
    #[command(after_help = CONFIGURATION_HELP)]
    Run {
        /// Show what would be sent, without queueing anything or moving any schedule on.
        #[arg(long)]
        dry_run: bool,
        /// Only this member's digest, sent now even if it is not due yet: it stands for
        /// their next period, so the one after that comes next.
        #[arg(long, value_name = "EMAIL")]
        member: Option<String>,
        /// Sweep as if it were this instant (RFC 3339, such as 2027-03-14T12:00:00Z):
        /// for trying schedules out, and for tests.
        #[arg(long, hide = true, value_name = "INSTANT")]
        now: Option<jiff::Timestamp>,
    },
}

#[derive(Subcommand)]
enum AdminCommand {
    /// Create an administrator account. The password is read from a prompt, or from the
    /// first line of standard input when that is not a terminal; never from an argument.
    Create {
        #[arg(long)]
        email: String,
        #[arg(long)]
        display_name: String,
    },
    /// Make an existing member an administrator.
    Promote {
        #[arg(long)]
        email: String,
    },
}

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command.unwrap_or(Command::Serve) {
        Command::Schema => {
            print!("{}", graphql::sdl());
            Ok(())
        }
        Command::Serve => {
            let config = Config::load()?;
            telemetry::init(&config)?;
            Application::build(config).await?.run_until(app::shutdown_signal()).await
        }
        Command::Migrate => {
            let config = Config::load()?;
            telemetry::init(&config)?;
            let db = Db::connect(&config).await?;
            db.migrate().await?;
            println!("The {} database is up to date.", db.dialect.name());
            Ok(())
        }
        Command::Seed { demo } => {
            if !demo {
                bail!("say what to seed: kettle seed --demo");
            }
            let config = Config::load()?;
            let state = AppState::new(config).await?;
            println!("{}", crate::seed::demo(&state.db).await?);
            Ok(())
        }
        Command::Dispatch => {
            let config = Config::load()?;
            telemetry::init(&config)?;
            let db = Db::connect(&config).await?;
            db.migrate().await?;
            let written = crate::notifications::dispatch::dispatch_pending(&db)
                .await
                .map_err(crate::error::AppError::into_anyhow)?;
            println!("Dispatched every pending event: {written} notifications written.");
            Ok(())
        }
        Command::Digest { command: DigestCommand::Run { dry_run, member, now } } => {
            let config = Config::load()?;
            telemetry::init(&config)?;
            let state = AppState::new(config).await?;
            digest_run(&state, dry_run, member.as_deref(), now).await
        }
        Command::Admin { command } => {
            let config = Config::load()?;
            let state = AppState::new(config).await?;
            match command {
                AdminCommand::Create { email, display_name } => create_admin(&state, &email, &display_name).await,
                AdminCommand::Promote { email } => {
                    // Audited like a promotion in the site, with no actor: the operator.
                    let target = accounts::RoleTarget::Email(&email);
                    match accounts::change_role(&state.db, None, target, Role::Admin, "kettle admin promote")
                        .await
                        .map_err(AppError::into_anyhow)?
                    {
                        accounts::RoleChange::Done(member) => {
                            println!("{} is now an administrator.", member.email);
                            Ok(())
                        }
                        accounts::RoleChange::NotFound => bail!("there is no member with the email address {email}"),
                        // Promoting never removes an admin, so this cannot happen.
                        accounts::RoleChange::LastAdmin => bail!("{email} could not be promoted"),
                    }
                }
            }
        }
    }
}

/// `kettle digest run`: sweeps (or sends one member's digest), printing a line a member.
async fn digest_run(
    state: &AppState,
    dry_run: bool,
    member: Option<&str>,
    now: Option<jiff::Timestamp>,
) -> anyhow::Result<()> {
    use crate::mail::{digest, sender};

    let now = now.map_or_else(crate::db::now_millis, |t| t.as_millisecond());
    let (db, mailer) = (&state.db, &state.mailer);
    let deliveries = match member {
        Some(email) => match digest::send_now(db, mailer, email, now, dry_run).await.map_err(AppError::into_anyhow)? {
            Some(delivery) => vec![delivery],
            None => bail!("there is no member with the email address {email}"),
        },
        None => digest::sweep_all(db, mailer, now, dry_run).await.map_err(AppError::into_anyhow)?,
    };
    let (sent, would) = if dry_run { ("would send", "would be") } else { ("sent", "is") };
    let mut totals = [0usize; 4];
    for delivery in &deliveries {
        let next = match delivery.next_at.and_then(|t| jiff::Timestamp::from_millisecond(t).ok()) {
            Some(next) => format!("next {would} due {next}"),
            None => format!("none {would} due"),
        };
        let address = &delivery.address;
        match &delivery.outcome {
            digest::Outcome::Queued => {
                totals[0] += 1;
                println!("{sent}: {address}: \"{}\" ({}); {next}", delivery.subject, delivery.counts.describe());
            }
            digest::Outcome::Empty => {
                totals[1] += 1;
                println!("nothing new: {address}: no digest; {next}");
            }
            digest::Outcome::Off(why) => {
                totals[2] += 1;
                println!("no digest: {address}: {why}");
            }
            digest::Outcome::TakenElsewhere => {
                totals[3] += 1;
                println!("skipped: {address}: another instance sent this period's digest");
            }
        }
    }
    let [queued, empty, off, skipped] = totals;
    if dry_run {
        println!(
            "Dry run: {} due; {queued} would be sent, {empty} with nothing new, {off} get none. Nothing was changed.",
            deliveries.len()
        );
        return Ok(());
    }
    println!(
        "{} due: {queued} sent, {empty} with nothing new, {off} get none, {skipped} sent by another instance.",
        deliveries.len()
    );
    if queued > 0 {
        // Deliver now rather than leave it to a server (there may be none running).
        let mut delivered = 0;
        loop {
            let round = sender::send_due(db, mailer, crate::db::now_millis()).await.map_err(AppError::into_anyhow)?;
            if round == 0 {
                break;
            }
            delivered += round;
        }
        println!("Handed {delivered} queued messages to the mail transport.");
    }
    Ok(())
}

async fn create_admin(state: &AppState, email: &str, display_name: &str) -> anyhow::Result<()> {
    let problems = [accounts::check_email("email", email), accounts::check_display_name("displayName", display_name)];
    if let Some(problem) = problems.into_iter().flatten().next() {
        bail!("{}", problem.message);
    }
    let password = read_password()?;
    if let Some(problem) = passwords::check_new_password("password", &password, &[email, display_name]) {
        bail!("{}", problem.message);
    }
    let hash = passwords::hash(password).await.map_err(AppError::into_anyhow)?;
    let new = NewMember { email, display_name, password_hash: Some(&hash), role: Role::Admin };
    match accounts::insert_member(&state.db, new).await.map_err(AppError::into_anyhow)? {
        Some(member) => {
            // Whoever runs the server vouches for the address: the first admin gets mail
            // without a link to follow (there may be no mail set up yet to send one).
            accounts::recovery::mark_verified_now(&state.db, member.id, &member.email)
                .await
                .map_err(AppError::into_anyhow)?;
            println!("Created the administrator {} ({}).", member.display_name, member.email);
            Ok(())
        }
        None => {
            bail!("a member with the email address {email} already exists; use `kettle admin promote --email {email}`")
        }
    }
}

fn read_password() -> anyhow::Result<String> {
    if std::io::stdin().is_terminal() {
        let first = rpassword::prompt_password("Password: ")?;
        let second = rpassword::prompt_password("Password again: ")?;
        if first != second {
            bail!("the two passwords differ");
        }
        Ok(first)
    } else {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line)?;
        let password = line.trim_end_matches(['\r', '\n']).to_string();
        if password.is_empty() {
            bail!("no password on standard input");
        }
        Ok(password)
    }
}

#[cfg(test)]
mod tests {
    use super::CONFIGURATION_HELP;

    /// `kettle --help` lists every setting the configuration reads: each `KETTLE_…` name
    /// in config.rs, and each OAuth provider setting.
    #[test]
    fn help_lists_every_setting() {
        let source = include_str!("config.rs");
        let mut names: Vec<&str> = source
            .match_indices("\"KETTLE_")
            .map(|(at, _)| {
                let rest = &source[at + 1..];
                &rest[..rest.find(|c: char| !(c.is_ascii_uppercase() || c == '_')).unwrap_or(rest.len())]
            })
            .filter(|name| *name != "KETTLE_" && *name != "KETTLE_OAUTH_")
            .collect();
        names.sort_unstable();
        names.dedup();
        assert!(names.len() >= 15, "{names:?}");
        for name in names {
            assert!(CONFIGURATION_HELP.contains(name), "kettle --help does not mention {name}");
        }
        for setting in crate::config::OAUTH_SETTINGS {
            assert!(CONFIGURATION_HELP.contains(&format!("_{setting}")), "kettle --help does not mention {setting}");
        }
    }
}
