//! The `kettle` command line: `serve` (the default), `migrate`, `schema`, `admin`.

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
  KETTLE_LISTEN        address to serve on              [default: 127.0.0.1:8080]
  KETTLE_DATA_DIR      where the SQLite file lives       [default: ./kettle-data]
  KETTLE_DATABASE_URL  sqlite://… or postgres://…       [default: SQLite in the data dir]
  KETTLE_REDIS_URL     redis://… for several instances   [default: none, in-process]
  KETTLE_PUBLIC_URL    the site's address as users see it [default: http://KETTLE_LISTEN]
  KETTLE_LOG           log filter, such as info or kettle=debug [default: info]
  KETTLE_LOG_FORMAT    text or json                      [default: text]";

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
    /// Manage administrator accounts.
    Admin {
        #[command(subcommand)]
        command: AdminCommand,
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
        Command::Admin { command } => {
            let config = Config::load()?;
            let state = AppState::new(config).await?;
            match command {
                AdminCommand::Create { email, display_name } => create_admin(&state, &email, &display_name).await,
                AdminCommand::Promote { email } => {
                    match accounts::set_role(&state.db, &email, Role::Admin).await.map_err(AppError::into_anyhow)? {
                        Some(member) => {
                            println!("{} is now an administrator.", member.email);
                            Ok(())
                        }
                        None => bail!("there is no member with the email address {email}"),
                    }
                }
            }
        }
    }
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
