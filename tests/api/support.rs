//! The test harness: a real Kettle server on port 0, on a fresh database, for each test.
//!
//! Every scenario runs once per backend: SQLite always, and PostgreSQL (with Redis) when
//! `KETTLE_TEST_DATABASE_URL` (and `KETTLE_TEST_REDIS_URL`) are set. A backend that is not
//! configured shows as *ignored* with the reason, never as a pass; with
//! `KETTLE_TEST_REQUIRE_ALL=1` (what the README's test command sets) a missing backend
//! fails the run instead.

use std::{
    collections::HashMap,
    future::Future,
    pin::Pin,
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc, Mutex,
    },
    time::Duration,
};

use kettle::{
    app::{AppState, Application},
    config::Config,
};
use serde_json::{json, Value};
use sqlx::{Connection, Executor, PgConnection};

pub type Scenario = fn(TestApp) -> Pin<Box<dyn Future<Output = ()> + Send>>;

/// Lists scenarios by function name: `scenarios![module::a, module::b]`.
#[macro_export]
macro_rules! scenarios {
    ($($name:path),* $(,)?) => {
        vec![$((stringify!($name), (|app| Box::pin($name(app))) as $crate::support::Scenario)),*]
    };
}

#[derive(Clone, Debug)]
pub enum Backend {
    Sqlite,
    Postgres { admin_url: String, redis_url: Option<String> },
}

impl Backend {
    pub fn name(&self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres { .. } => "postgres",
        }
    }
}

/// The backends to run on, and for those that cannot run, why.
pub fn backends() -> Vec<Result<Backend, (&'static str, String)>> {
    let require_all = std::env::var("KETTLE_TEST_REQUIRE_ALL").is_ok_and(|v| v == "1");
    let postgres = match std::env::var("KETTLE_TEST_DATABASE_URL") {
        Ok(url) if !url.is_empty() => Ok(Backend::Postgres {
            admin_url: url,
            redis_url: std::env::var("KETTLE_TEST_REDIS_URL").ok().filter(|u| !u.is_empty()),
        }),
        _ => {
            let reason = "KETTLE_TEST_DATABASE_URL is not set, so PostgreSQL and Redis were skipped".to_string();
            if require_all {
                panic!("KETTLE_TEST_REQUIRE_ALL=1 but {reason}");
            }
            Err(("postgres", reason))
        }
    };
    if let Ok(Backend::Postgres { redis_url: None, .. }) = &postgres {
        if require_all {
            panic!("KETTLE_TEST_REQUIRE_ALL=1 but KETTLE_TEST_REDIS_URL is not set");
        }
    }
    vec![Ok(Backend::Sqlite), postgres]
}

static DATABASE_COUNTER: AtomicUsize = AtomicUsize::new(0);

/// The rate limits every test app starts with unless it sets `KETTLE_RATE_LIMITS` itself.
pub const GENEROUS_LIMITS: &str = "register_address=100000/3600, writes_member=100000/3600, \
     preview_client=100000/60, graphql_cost_client=1000000000/60, sign_in_address=100000/900";

/// Drops test databases left behind by earlier runs whose process is gone.
pub async fn drop_stale_databases(admin_url: &str) {
    let Ok(mut conn) = PgConnection::connect(admin_url).await else { return };
    let names: Vec<String> = sqlx::query_scalar("SELECT datname FROM pg_database WHERE datname LIKE 'kettle_test_%'")
        .fetch_all(&mut conn)
        .await
        .unwrap_or_default();
    for name in names {
        let pid = name.trim_start_matches("kettle_test_").split('_').next().unwrap_or("");
        if !pid.is_empty() && !std::path::Path::new(&format!("/proc/{pid}")).exists() {
            let _ = conn.execute(format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)").as_str()).await;
        }
    }
}

#[derive(Clone)]
pub struct TestApp {
    inner: Arc<Inner>,
}

struct Inner {
    pub address: String,
    pub backend: Backend,
    pub database_url: String,
    pub data_dir: tempfile::TempDir,
    state: AppState,
    postgres_database: Option<String>,
    shutdown: Mutex<Option<tokio::sync::oneshot::Sender<()>>>,
    server: Mutex<Option<tokio::task::JoinHandle<anyhow::Result<()>>>>,
    http: reqwest::Client,
}

impl TestApp {
    pub async fn spawn(backend: &Backend) -> TestApp {
        Self::spawn_with(backend, &[]).await
    }

    /// Starts a server; `extra` adds or overrides configuration variables.
    pub async fn spawn_with(backend: &Backend, extra: &[(&str, &str)]) -> TestApp {
        let data_dir = tempfile::tempdir().expect("a temporary directory");
        let (database_url, postgres_database, redis_url) = match backend {
            Backend::Sqlite => (format!("sqlite://{}", data_dir.path().join("kettle.db").display()), None, None),
            Backend::Postgres { admin_url, redis_url } => {
                let name =
                    format!("kettle_test_{}_{}", std::process::id(), DATABASE_COUNTER.fetch_add(1, Ordering::SeqCst));
                let mut conn = PgConnection::connect(admin_url).await.expect("connect to KETTLE_TEST_DATABASE_URL");
                conn.execute(format!("CREATE DATABASE \"{name}\"").as_str()).await.expect("create a test database");
                conn.close().await.ok();
                let mut url = url::Url::parse(admin_url).expect("KETTLE_TEST_DATABASE_URL is a URL");
                url.set_path(&name);
                (url.to_string(), Some(name), redis_url.clone())
            }
        };
        let mut vars: HashMap<String, String> = HashMap::from([
            ("KETTLE_LISTEN".into(), "127.0.0.1:0".into()),
            ("KETTLE_DATA_DIR".into(), data_dir.path().display().to_string()),
            ("KETTLE_DATABASE_URL".into(), database_url.clone()),
        ]);
        if let Some(redis) = redis_url {
            vars.insert("KETTLE_REDIS_URL".into(), redis);
        }
        // Tests register many members and write a lot from one address; the limits' own
        // tests set theirs. Each app keeps its Redis keys apart from parallel tests'.
        vars.insert("KETTLE_RATE_LIMITS".into(), GENEROUS_LIMITS.into());
        vars.insert(
            "KETTLE_REDIS_PREFIX".into(),
            format!("kettle_test_{}_{}", std::process::id(), DATABASE_COUNTER.fetch_add(1, Ordering::SeqCst)),
        );
        for (k, v) in extra {
            vars.insert(k.to_string(), v.to_string());
        }
        let config = Config::from_vars(vars).expect("a valid test configuration");
        let application = Application::build(config).await.expect("the application starts");
        let address = format!("http://{}", application.local_addr());
        let state = application.state().clone();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(application.run_until(async move {
            let _ = rx.await;
        }));
        TestApp {
            inner: Arc::new(Inner {
                address,
                backend: backend.clone(),
                database_url,
                data_dir,
                state,
                postgres_database,
                shutdown: Mutex::new(Some(tx)),
                server: Mutex::new(Some(server)),
                http: reqwest::Client::builder().timeout(Duration::from_secs(30)).build().unwrap(),
            }),
        }
    }

    /// Stops the server and drops the PostgreSQL database.
    pub async fn finish(&self) {
        if let Some(tx) = self.inner.shutdown.lock().unwrap().take() {
            let _ = tx.send(());
        }
        let server = self.inner.server.lock().unwrap().take();
        if let Some(server) = server {
            let _ = tokio::time::timeout(Duration::from_secs(30), server).await;
        }
        self.inner.state.db.pool.close().await;
        if let (Backend::Postgres { admin_url, .. }, Some(name)) = (&self.inner.backend, &self.inner.postgres_database)
        {
            if let Ok(mut conn) = PgConnection::connect(admin_url).await {
                let _ = conn.execute(format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)").as_str()).await;
            }
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.inner.address)
    }

    pub fn backend(&self) -> &Backend {
        &self.inner.backend
    }

    pub fn database_url(&self) -> &str {
        &self.inner.database_url
    }

    pub fn data_dir(&self) -> &std::path::Path {
        self.inner.data_dir.path()
    }

    pub fn http(&self) -> &reqwest::Client {
        &self.inner.http
    }

    pub fn state(&self) -> &AppState {
        &self.inner.state
    }

    /// Runs a SQL statement that returns one integer, straight against the database.
    pub async fn count(&self, sql: &str) -> i64 {
        sqlx::query_scalar::<_, i64>(sql).fetch_one(&self.inner.state.db.pool).await.expect("count query")
    }

    pub async fn execute_sql(&self, sql: &str) {
        sqlx::query(sql).execute(&self.inner.state.db.pool).await.expect("statement");
    }

    /// A client without credentials.
    pub fn anonymous(&self) -> Client {
        Client { app: self.clone(), token: None, cookie: None }
    }

    /// Registers a member and returns a client signed in as them (with their password:
    /// registering does not sign in). Their address is not verified; see
    /// [`TestApp::verified_member`].
    pub async fn member(&self, email: &str, display_name: &str) -> Client {
        let body = self
            .anonymous()
            .gql(
                "mutation($input: RegisterInput!) { register(input: $input) { email userErrors { field message } } }",
                json!({ "input": { "email": email, "password": PASSWORD, "displayName": display_name } }),
            )
            .await;
        assert_eq!(body["data"]["register"]["userErrors"], json!([]), "registration failed: {body}");
        self.sign_in(email, PASSWORD).await
    }

    /// A client signed in with this email and password.
    pub async fn sign_in(&self, email: &str, password: &str) -> Client {
        let body = self
            .anonymous()
            .gql(
                "mutation($input: SignInInput!) { signIn(input: $input) { token userErrors { field message } } }",
                json!({ "input": { "email": email, "password": password } }),
            )
            .await;
        let payload = &body["data"]["signIn"];
        assert_eq!(payload["userErrors"], json!([]), "sign-in failed: {body}");
        Client { app: self.clone(), token: Some(payload["token"].as_str().unwrap().to_string()), cookie: None }
    }

    /// A member whose address is verified (as if they had followed the link), so that
    /// they get mail and digests.
    pub async fn verified_member(&self, email: &str, display_name: &str) -> Client {
        let client = self.member(email, display_name).await;
        let db = &self.state().db;
        let now = kettle::db::now_millis();
        let mut tx = db.begin_write().await.unwrap();
        let id: i64 =
            sqlx::query_scalar("UPDATE members SET email_verified_at = $1 WHERE email_normalized = $2 RETURNING id")
                .bind(now)
                .bind(email.trim().to_lowercase())
                .fetch_one(&mut *tx)
                .await
                .unwrap();
        kettle::mail::digest::reschedule(&mut tx, id, now).await.unwrap();
        tx.commit().await.unwrap();
        client
    }
}

/// A password that passes the strength check.
pub const PASSWORD: &str = "kettle whistles over marmalade";

/// A GraphQL client: anonymous, with a bearer token, or with a session cookie.
#[derive(Clone)]
pub struct Client {
    pub app: TestApp,
    pub token: Option<String>,
    pub cookie: Option<String>,
}

impl Client {
    pub fn with_token(&self, token: &str) -> Client {
        Client { app: self.app.clone(), token: Some(token.to_string()), cookie: None }
    }

    pub fn with_cookie(&self, cookie: &str) -> Client {
        Client { app: self.app.clone(), token: None, cookie: Some(cookie.to_string()) }
    }

    pub fn token(&self) -> &str {
        self.token.as_deref().expect("a signed-in client")
    }

    pub async fn post(&self, query: &str, variables: Value) -> reqwest::Response {
        let mut request =
            self.app.http().post(self.app.url("/graphql")).json(&json!({ "query": query, "variables": variables }));
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        if let Some(cookie) = &self.cookie {
            request = request.header("cookie", format!("kettle_session={cookie}"));
        }
        request.send().await.expect("the server answers")
    }

    /// Sends a GraphQL request and returns the whole JSON body, expecting HTTP 200.
    pub async fn gql(&self, query: &str, variables: Value) -> Value {
        let response = self.post(query, variables).await;
        let status = response.status();
        let body: Value = response.json().await.expect("a JSON body");
        assert_eq!(status, 200, "unexpected status, body: {body}");
        body
    }

    /// Sends a GraphQL request that must succeed without errors, returning `data`.
    pub async fn data(&self, query: &str, variables: Value) -> Value {
        let body = self.gql(query, variables).await;
        assert!(body.get("errors").is_none(), "unexpected errors: {body}");
        body["data"].clone()
    }

    pub async fn viewer_id(&self) -> Option<String> {
        let data = self.data("{ viewer { id } }", json!({})).await;
        data["viewer"]["id"].as_str().map(str::to_string)
    }
}

/// The `extensions.code` of the first error in a GraphQL response body.
pub fn error_code(body: &Value) -> &str {
    body["errors"][0]["extensions"]["code"].as_str().unwrap_or_else(|| panic!("no error code in {body}"))
}

/// The codes of a payload's `userErrors`, as (field, code) pairs.
pub fn user_errors(payload: &Value) -> Vec<(String, String)> {
    payload["userErrors"]
        .as_array()
        .unwrap_or_else(|| panic!("no userErrors in {payload}"))
        .iter()
        .map(|e| (e["field"].as_str().unwrap_or("").to_string(), e["code"].as_str().unwrap_or("").to_string()))
        .collect()
}

/// The `kettle` binary, set up to use this test's database and data directory, with a
/// clean environment and piped output.
pub fn kettle_command(app: &TestApp) -> tokio::process::Command {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_kettle"));
    command
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("KETTLE_DATA_DIR", app.data_dir())
        .env("KETTLE_DATABASE_URL", app.database_url())
        .current_dir(app.data_dir())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    command
}

/// A second server, the real binary on the same database as `app`, that logs every SQL
/// statement (`sqlx::query` at debug) and every request it served. Requests go one at a
/// time, so the statements logged before each "served" line are that request's: what
/// [`StatementLog::request`] counts.
pub struct StatementLog {
    child: tokio::process::Child,
    lines: tokio::io::Lines<tokio::io::BufReader<tokio::process::ChildStderr>>,
    address: String,
    http: reqwest::Client,
}

impl StatementLog {
    pub async fn start(app: &TestApp) -> StatementLog {
        use tokio::io::AsyncBufReadExt;

        let mut command = kettle_command(app);
        command
            .env("KETTLE_LISTEN", "127.0.0.1:0")
            .env("KETTLE_LOG_FORMAT", "json")
            .env("KETTLE_LOG", "warn,kettle=info,sqlx::query=debug")
            .arg("serve");
        let mut child = command.spawn().expect("kettle serve starts");
        let mut lines = tokio::io::BufReader::new(child.stderr.take().unwrap()).lines();
        let address = loop {
            let line = lines.next_line().await.unwrap().expect("kettle logs");
            let event: Value = serde_json::from_str(&line).unwrap();
            if event["message"] == "kettle is serving" {
                break event["address"].as_str().unwrap().to_string();
            }
        };
        StatementLog { child, lines, address, http: reqwest::Client::new() }
    }

    /// Sends one anonymous GraphQL request; returns its body and how many SQL statements
    /// serving it ran.
    pub async fn request(&mut self, query: &str, variables: Value) -> (Value, usize) {
        let response = self
            .http
            .post(format!("http://{}/graphql", self.address))
            .json(&json!({ "query": query, "variables": variables }))
            .send()
            .await
            .unwrap();
        let body: Value = response.json().await.unwrap();
        let mut statements = 0;
        loop {
            let line =
                tokio::time::timeout(Duration::from_secs(10), self.lines.next_line()).await.unwrap().unwrap().unwrap();
            let event: Value = serde_json::from_str(&line).unwrap_or_default();
            // Not the request's own: a new pooled connection's set-up pragmas (the pool may
            // open one at any moment) and the housekeeping task's clean-up.
            let summary = event["summary"].as_str().unwrap_or("");
            let background = summary.starts_with("PRAGMA")
                || summary.starts_with("DELETE FROM sessions")
                || summary.starts_with("DELETE FROM oauth_states");
            if event["target"] == "sqlx::query" && !background {
                statements += 1;
            } else if event["message"] == "served" {
                break;
            }
        }
        (body, statements)
    }

    /// Counts the statements of `query` for each page size in `sizes` (with `$n` set to
    /// it), after one warm-up request: the first request also opens database connections
    /// (and SQLite runs its per-connection pragmas then). `check` looks at each body.
    pub async fn counts_for_page_sizes(
        &mut self,
        query: &str,
        sizes: &[usize],
        mut check: impl FnMut(usize, &Value),
    ) -> Vec<usize> {
        let warm_up = *sizes.last().expect("a page size");
        self.request(query, json!({ "n": warm_up })).await;
        let mut counts = Vec::new();
        for &n in sizes {
            let (body, statements) = self.request(query, json!({ "n": n })).await;
            assert!(body.get("errors").is_none(), "{body}");
            check(n, &body);
            counts.push(statements);
        }
        counts
    }

    pub async fn stop(mut self) {
        self.child.kill().await.ok();
    }
}

/// A statement of the query under test, to bind parameters to.
pub type AnyQuery<'q> = sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>;

/// The plan of `sql` on the test's database, one line per step: SQLite's `EXPLAIN QUERY
/// PLAN` details, or PostgreSQL's generic plan, told to avoid sequential scans (on a tiny
/// table it would prefer them whatever the indexes; the question is whether an index can
/// serve the query). The generic plan is the one PostgreSQL may settle on for a prepared
/// statement after five runs, made for any values (SQLite's plans are always of this
/// kind), so a condition that only the values would let an index serve shows up. `bind`
/// binds the statement's parameters.
pub async fn query_plan(
    app: &TestApp,
    sql: &str,
    bind: impl for<'q> FnOnce(AnyQuery<'q>) -> AnyQuery<'q>,
) -> Vec<String> {
    plan(app, sql, true, bind).await
}

/// [`query_plan`], but on PostgreSQL the plan made for the values bound: for a question
/// of how selective a value is.
pub async fn query_plan_for_values(
    app: &TestApp,
    sql: &str,
    bind: impl for<'q> FnOnce(AnyQuery<'q>) -> AnyQuery<'q>,
) -> Vec<String> {
    plan(app, sql, false, bind).await
}

async fn plan(
    app: &TestApp,
    sql: &str,
    generic: bool,
    bind: impl for<'q> FnOnce(AnyQuery<'q>) -> AnyQuery<'q>,
) -> Vec<String> {
    use kettle::db::Dialect;
    use sqlx::Row;

    let db = &app.state().db;
    let mut tx = db.pool.begin().await.unwrap();
    let rows = match db.dialect {
        Dialect::Sqlite => bind(sqlx::query(&format!("EXPLAIN QUERY PLAN {sql}"))).fetch_all(&mut *tx).await.unwrap(),
        Dialect::Postgres if !generic => {
            sqlx::query("SET LOCAL enable_seqscan = off").execute(&mut *tx).await.unwrap();
            bind(sqlx::query(&format!("EXPLAIN {sql}"))).fetch_all(&mut *tx).await.unwrap()
        }
        Dialect::Postgres => {
            sqlx::query("SET LOCAL enable_seqscan = off").execute(&mut *tx).await.unwrap();
            // EXPLAIN with bound values would plan for those values, so the statement
            // runs once to be prepared, and its generic plan is explained.
            sqlx::query("SET LOCAL plan_cache_mode = force_generic_plan").execute(&mut *tx).await.unwrap();
            bind(sqlx::query(sql)).fetch_all(&mut *tx).await.unwrap();
            let (name, parameters): (String, i32) = sqlx::query_as(
                "SELECT name, cardinality(parameter_types) FROM pg_prepared_statements WHERE statement = $1",
            )
            .bind(sql)
            .fetch_one(&mut *tx)
            .await
            .expect("the statement was prepared");
            let values = vec!["NULL"; parameters as usize].join(", ");
            let execute = if values.is_empty() { name } else { format!("{name}({values})") };
            sqlx::query(&format!("EXPLAIN EXECUTE {execute}")).fetch_all(&mut *tx).await.unwrap()
        }
    };
    tx.rollback().await.unwrap();
    rows.iter()
        .map(|row| match db.dialect {
            Dialect::Sqlite => row.try_get::<String, _>("detail").unwrap(),
            Dialect::Postgres => row.try_get::<String, _>(0).unwrap(),
        })
        .collect()
}

/// A second server on the same database, data directory and Redis (with the same key
/// prefix) as a test app, the way a scaled deployment runs several instances. On SQLite
/// the two share the database file.
pub struct Peer {
    address: String,
    state: AppState,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

impl Peer {
    /// Starts one beside `app`, with `app`'s configuration on another free port.
    pub async fn start(app: &TestApp) -> Peer {
        Peer::start_with(app, None).await
    }

    /// [`Peer::start`], but with `public_url` as its configured public address, as when
    /// a site moves to a new host name.
    pub async fn start_at(app: &TestApp, public_url: &str) -> Peer {
        Peer::start_with(app, Some(public_url)).await
    }

    async fn start_with(app: &TestApp, public_url: Option<&str>) -> Peer {
        let mut config: Config = (*app.state().config).clone();
        config.listen = "127.0.0.1:0".parse().unwrap();
        config.public_url_is_default = public_url.is_none();
        if let Some(url) = public_url {
            config.public_url = url::Url::parse(url).expect("a public URL");
        }
        let application = Application::build(config).await.expect("the second instance starts");
        let address = format!("http://{}", application.local_addr());
        let state = application.state().clone();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(application.run_until(async move {
            let _ = rx.await;
        }));
        Peer { address, state, shutdown: Some(tx), server: Some(server) }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(server) = self.server.take() {
            let _ = tokio::time::timeout(Duration::from_secs(30), server).await;
        }
        self.state.db.pool.close().await;
    }
}

/// Runs `body` against an app of its own with `vars` (configuration a scenario needs
/// that the shared app does not have), and always finishes that app.
pub async fn with_own_app<F, Fut>(app: &TestApp, vars: &[(&str, &str)], body: F)
where
    F: FnOnce(TestApp) -> Fut,
    Fut: Future<Output = ()>,
{
    use futures_util::FutureExt;
    let own = TestApp::spawn_with(app.backend(), vars).await;
    let outcome = std::panic::AssertUnwindSafe(body(own.clone())).catch_unwind().await;
    own.finish().await;
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}
