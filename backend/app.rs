//! The application: shared state, and a server that binds, runs and drains.
//!
//! [`Application::build`] does everything that can fail at start-up — connect, migrate,
//! bind — so that a bad setting stops the process with one sentence before it serves
//! anything. Tests build it with `KETTLE_LISTEN=127.0.0.1:0` and read the port back.

use std::{future::Future, net::SocketAddr, sync::Arc, time::Duration};

use anyhow::anyhow;
use poem::{
    listener::{Acceptor, Listener, TcpAcceptor, TcpListener},
    Server,
};
use secrecy::ExposeSecret;

use crate::{
    accounts::oauth,
    bus::{self, Bus, Delivery},
    config::{redact_url, Config},
    db::Db,
    graphql::{self, KettleSchema},
    http,
    limits::{RateLimiter, RedisStore},
    mail::{self, Mailer},
    meetups,
    metrics::Metrics,
    notifications::dispatch::Dispatcher,
    site,
};

/// How long in-flight requests may take to finish after a shutdown signal.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(20);
/// After the drain, how long closing down may take before the process ends regardless.
const EXIT_GRACE: Duration = Duration::from_secs(5);

/// Everything a request handler may need; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub db: Db,
    pub config: Arc<Config>,
    pub redis: Option<redis::Client>,
    /// The one rate limiter: in Redis when configured, in this process otherwise.
    pub limiter: Arc<RateLimiter>,
    pub metrics: Arc<Metrics>,
    /// Live delivery: this instance's live subscribers, and the way to every other
    /// instance's (Redis when configured, this process otherwise).
    pub bus: Arc<dyn Bus>,
    /// For OAuth2 providers' token and user-info endpoints (no redirects, a timeout).
    pub provider_http: reqwest::Client,
    /// Queues, signs and sends mail.
    pub mailer: Arc<Mailer>,
    /// This installation's id, made once by the database at migration: what calendar
    /// `UID`s are scoped to (see `meetups::calendar`). Read once here, never changes.
    pub instance_id: Arc<str>,
}

impl AppState {
    pub async fn new(config: Config) -> anyhow::Result<AppState> {
        let db = Db::connect(&config).await?;
        db.migrate().await?;
        let redis = match &config.redis_url {
            Some(url) => Some(
                redis::Client::open(url.expose_secret())
                    .map_err(|e| anyhow!("KETTLE_REDIS_URL {} is not usable: {e}", redact_url(url.expose_secret())))?,
            ),
            None => None,
        };
        let limits_store = redis.clone().map(|client| RedisStore::new(client, config.redis_prefix.clone()));
        let bus = bus::build(redis.clone(), &config.redis_prefix);
        let mailer = Mailer::new(&config, &db).await?;
        let instance_id = meetups::calendar::instance_id(&db)
            .await
            .map_err(|e| anyhow!("could not read the instance id (migration 0012): {e:?}"))?
            .into();
        Ok(AppState {
            instance_id,
            mailer,
            bus,
            limiter: Arc::new(RateLimiter::new(config.rate_limits.clone(), limits_store)),
            db,
            config: Arc::new(config),
            redis,
            metrics: Arc::new(Metrics::new()),
            provider_http: oauth::http_client()?,
        })
    }
}

pub struct Application {
    acceptor: TcpAcceptor,
    local_addr: SocketAddr,
    state: AppState,
    schema: KettleSchema,
}

impl Application {
    pub async fn build(mut config: Config) -> anyhow::Result<Application> {
        let listen = config.listen;
        let acceptor = TcpListener::bind(listen)
            .into_acceptor()
            .await
            .map_err(|e| anyhow!("could not listen on {listen}: {}", describe_bind_error(&e)))?;
        let local_addr = acceptor
            .local_addr()
            .first()
            .and_then(|a| a.as_socket_addr().copied())
            .ok_or_else(|| anyhow!("could not tell which address {listen} is bound to"))?;
        if config.public_url_is_default {
            config.public_url = url::Url::parse(&format!("http://{local_addr}"))?;
        }
        let state = AppState::new(config).await?;
        let schema = graphql::build_schema(state.clone());
        Ok(Application { acceptor, local_addr, state, schema })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves until `shutdown` completes, then stops accepting connections and lets
    /// in-flight requests finish (for up to 20 seconds). If closing down has still not
    /// finished 5 seconds after that, the process exits: see [`Watchdog`].
    pub async fn run_until(self, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
        let watchdog = Watchdog::default();
        let armed = watchdog.clone();
        let bus = self.state.bus.clone();
        bus.start();
        let shutdown = async move {
            shutdown.await;
            armed.arm(DRAIN_TIMEOUT + EXIT_GRACE);
            // Live connections are not requests the drain waits for: tell them to go.
            bus.stop();
        };
        let housekeeping = tokio::spawn(housekeeping(self.state.db.clone()));
        let reminders = tokio::spawn(reminders(self.state.clone()));
        let (db, mailer) = (self.state.db.clone(), self.state.mailer.clone());
        let mail_workers = [
            tokio::spawn(mail::sender::run(db.clone(), mailer.clone())),
            tokio::spawn(mail::notification_mail::run(db.clone(), mailer.clone())),
            tokio::spawn(mail::digest::run(db, mailer)),
            tokio::spawn(crate::privacy::export::run(self.state.db.clone())),
        ];
        let dispatcher = Dispatcher::new(self.state.db.clone());
        let dispatching = {
            let (publish_to, wake_from) = (self.state.bus.clone(), self.state.bus.clone());
            let publish = move |notifications| publish_to.publish(Delivery { notifications });
            tokio::spawn(dispatcher.clone().run(publish, move || wake_from.events_announced()))
        };
        let endpoint = http::routes(self.state.clone(), self.schema, site::routes(), site::visit::static_error_page);
        tracing::info!(address = %self.local_addr, database = self.state.db.dialect.name(), "kettle is serving");
        let result = Server::new_with_acceptor(self.acceptor)
            .run_with_graceful_shutdown(endpoint, shutdown, Some(DRAIN_TIMEOUT))
            .await;
        housekeeping.abort();
        reminders.abort();
        dispatching.abort();
        mail_workers.iter().for_each(|worker| worker.abort());
        // Let another instance take over dispatching at once rather than at expiry.
        dispatcher.release().await;
        self.state.bus.stop();
        self.state.db.pool.close().await;
        watchdog.disarm();
        tracing::info!("kettle has stopped");
        result.map_err(|e| anyhow!("the server stopped with an error: {e}"))
    }
}

/// Ends the process if shutting down takes longer than promised. The drain timeout is
/// enforced by timers on the async runtime, and a timer cannot fire while every worker
/// thread is busy with work that does not yield; this thread is the runtime's own, so
/// it keeps the promise whatever the workers are doing.
#[derive(Clone, Default)]
struct Watchdog(Arc<std::sync::Mutex<Option<std::sync::mpsc::Sender<()>>>>);

impl Watchdog {
    fn arm(&self, bound: Duration) {
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = Some(tx);
        std::thread::spawn(move || {
            // Disarming drops the sender, which ends the wait early.
            if let Err(std::sync::mpsc::RecvTimeoutError::Timeout) = rx.recv_timeout(bound) {
                tracing::error!(seconds = bound.as_secs(), "shutdown did not finish in time; exiting now");
                std::process::exit(1);
            }
        });
    }

    fn disarm(&self) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).take();
    }
}

fn describe_bind_error(err: &std::io::Error) -> String {
    match err.kind() {
        std::io::ErrorKind::AddrInUse => "the address is already in use by another program".into(),
        std::io::ErrorKind::PermissionDenied => "permission denied (ports below 1024 need privileges)".into(),
        std::io::ErrorKind::AddrNotAvailable => "that address does not belong to this machine".into(),
        _ => err.to_string(),
    }
}

/// Every five minutes, extends recurring series into the window ahead and records the
/// meetup reminders that have come due. Several instances may run it: each window and
/// each reminder is claimed by one `UPDATE`, so nothing happens twice.
/// The first run waits a tick, so starting the server does no work of this kind.
async fn reminders(state: AppState) {
    let db = state.db;
    let period = Duration::from_secs(5 * 60);
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    loop {
        tick.tick().await;
        let now = crate::db::now_millis();
        match meetups::series::extend_windows(&db, now).await {
            Ok(0) => {}
            Ok(n) => {
                tracing::info!(occurrences = n, "made meetup occurrences for the window ahead");
                state.bus.events_committed();
            }
            Err(err) => tracing::warn!(error = ?err, "could not extend meetup series"),
        }
        match meetups::events::record_due_reminders(&db, now).await {
            Ok(0) => {}
            Ok(n) => {
                tracing::info!(reminders = n, "recorded meetup reminders");
                state.bus.events_committed();
            }
            Err(err) => tracing::warn!(error = ?err, "could not record meetup reminders"),
        }
    }
}

/// Periodic clean-up that needs no coordination (deleting twice is harmless): whatever
/// is past its retention period (`privacy::retention` holds the schedule).
async fn housekeeping(db: Db) {
    let mut tick = tokio::time::interval(Duration::from_secs(60 * 60));
    loop {
        tick.tick().await;
        crate::privacy::retention::housekeeping(&db).await;
    }
}

/// Completes on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
    tracing::info!("shutting down: finishing requests in flight");
}
