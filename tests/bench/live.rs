//! Live delivery at scale: how long a notification takes from the commit that causes it
//! to each of N connected subscribers, and how much memory an idle subscriber costs the
//! server.
//!
//! ```text
//! export CARGO_TARGET_DIR=$HOME/.cache/kettle-ci/target
//! cargo bench --bench live                       # 1,000 and 10,000 subscribers, SQLite
//! KETTLE_BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres \
//! KETTLE_BENCH_REDIS_URL=redis://127.0.0.1:6379 \
//!   cargo bench --bench live                     # also PostgreSQL with the Redis bus
//! KETTLE_BENCH_SUBSCRIBERS=2000 cargo bench --bench live   # other sizes (comma-separated)
//! cargo test --bench live                        # a smoke run: 20 subscribers, debug build
//! ```
//! `KETTLE_BENCH_ROUNDS=n` sets how many case studies are published per size (full: 3,
//! smoke: 1). Run without `--bench` (as `cargo test --all-targets` does) it is the smoke
//! run, which checks that every subscriber received every notification.
//!
//! The scenario, per backend and size N, each on a fresh database:
//! 1. a child process (this program again) writes N members WATCHING one topic, each with
//!    a session, and an author (members and follows in bulk with SQL, sessions and the
//!    topic through the domain functions);
//! 2. another child (one per scenario, so that no scenario reuses memory an earlier one
//!    freed) starts a Kettle server on that database (the real `Application`, with the
//!    Redis bus when configured) and notes its resident memory and Rust heap;
//! 3. another child process opens N WebSockets to `/graphql/ws`, one per member (bearer
//!    token on the upgrade), each subscribed to `notificationAdded`; once the server's hub
//!    holds N subscriptions and has settled, its resident memory again: the difference
//!    over N is the cost of one idle subscriber (connection, WebSocket buffers, GraphQL
//!    subscription, hub entry);
//! 4. per round, the client process publishes one of the author's draft case studies in
//!    the topic through `/graphql`; the dispatcher writes N notifications and publishes
//!    them on the bus; each client notes when its `next` arrives.
//!
//! Latency is reported from three instants: the publish request's response (the
//! publishing transaction committed just before it), the publish request being sent (an
//! upper bound), and the dispatcher's commit (the moment it handed the batch to the bus,
//! which the server's process reads from the bus's counters). Clients and server share the
//! machine's two cores, so the figures include the clients' own work. It prints figures
//! and asserts nothing about time.

use std::{
    alloc::{GlobalAlloc, Layout, System},
    collections::HashMap,
    fmt::Write as _,
    io::{BufRead, Write as _},
    path::{Path, PathBuf},
    process::{Command, Stdio},
    sync::{
        atomic::{AtomicIsize, AtomicUsize, Ordering},
        Arc,
    },
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use anyhow::{bail, ensure, Context as _};
use futures_util::{SinkExt, StreamExt};
use kettle::{
    accounts::credentials, app::Application, config::Config, db::Db, error::AppError, graphql::relay, topics,
};
use serde_json::{json, Value};
use sqlx::{Connection, Executor, PgConnection};
use tokio_tungstenite::tungstenite::{client::IntoClientRequest, http::HeaderValue, Message};

/// Counts the bytes Rust code holds on the heap, so that the server's share of an idle
/// subscriber can be told exactly, beside the resident memory the kernel reports (which
/// also holds the allocator's slack and SQLite's page cache, allocated in C).
struct Counting;

static HEAP: AtomicIsize = AtomicIsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let pointer = unsafe { System.alloc(layout) };
        if !pointer.is_null() {
            HEAP.fetch_add(layout.size() as isize, Ordering::Relaxed);
        }
        pointer
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let pointer = unsafe { System.alloc_zeroed(layout) };
        if !pointer.is_null() {
            HEAP.fetch_add(layout.size() as isize, Ordering::Relaxed);
        }
        pointer
    }

    unsafe fn dealloc(&self, pointer: *mut u8, layout: Layout) {
        unsafe { System.dealloc(pointer, layout) };
        HEAP.fetch_sub(layout.size() as isize, Ordering::Relaxed);
    }

    unsafe fn realloc(&self, pointer: *mut u8, layout: Layout, size: usize) -> *mut u8 {
        let moved = unsafe { System.realloc(pointer, layout, size) };
        if !moved.is_null() {
            HEAP.fetch_add(size as isize - layout.size() as isize, Ordering::Relaxed);
        }
        moved
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

const ROLE: &str = "KETTLE_LIVE_BENCH_ROLE";
const SUBSCRIPTION: &str = "subscription { notificationAdded { id kind summary path } }";
/// Rate limits for the benchmark: every client comes from 127.0.0.1.
const LIMITS: &str = "register_address=1000000/3600, writes_member=1000000/3600, \
                      graphql_cost_client=1000000000/60, sign_in_address=1000000/900";

fn main() -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    match std::env::var(ROLE).as_deref() {
        Ok("seed") => runtime.block_on(seed()),
        Ok("clients") => runtime.block_on(clients()),
        Ok("server") => runtime.block_on(server()),
        _ => runtime.block_on(run()),
    }
}

fn micros(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH).map(|d| d.as_micros() as u64).unwrap_or(0)
}

/// Resident memory of this process, in KiB.
fn resident_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

struct Options {
    full: bool,
    sizes: Vec<usize>,
    rounds: usize,
}

fn options() -> Options {
    let full = std::env::args().any(|a| a == "--bench");
    let sizes = std::env::var("KETTLE_BENCH_SUBSCRIBERS")
        .ok()
        .map(|v| v.split(',').filter_map(|n| n.trim().parse().ok()).collect::<Vec<usize>>())
        .filter(|v| !v.is_empty())
        .unwrap_or(if full { vec![1_000, 10_000] } else { vec![20] });
    let rounds = std::env::var("KETTLE_BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|n| *n > 0)
        .unwrap_or(if full { 3 } else { 1 });
    Options { full, sizes, rounds }
}

async fn run() -> anyhow::Result<()> {
    let options = options();
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let load = load.split_whitespace().take(3).collect::<Vec<_>>().join(" ");
    println!(
        "live delivery: {cores} cores (load average {load}), {} build, {} round{} per size{}",
        if cfg!(debug_assertions) { "debug" } else { "optimised" },
        options.rounds,
        if options.rounds == 1 { "" } else { "s" },
        if options.full { "" } else { " (smoke run: pass --bench for figures)" },
    );
    let postgres = std::env::var("KETTLE_BENCH_DATABASE_URL").ok().filter(|u| !u.is_empty());
    let redis = std::env::var("KETTLE_BENCH_REDIS_URL").ok().filter(|u| !u.is_empty());
    if postgres.is_none() {
        println!("PostgreSQL skipped: set KETTLE_BENCH_DATABASE_URL (and KETTLE_BENCH_REDIS_URL) to run it");
    } else if redis.is_none() {
        println!("PostgreSQL runs with the in-process bus: set KETTLE_BENCH_REDIS_URL for the Redis bus");
    }
    let mut backends = vec![None];
    backends.extend(postgres.iter().map(Some));
    for admin_url in backends {
        for &n in &options.sizes {
            // Each scenario's server is a process of its own, so that its resident memory
            // is not memory an earlier scenario freed and this one reused.
            let mut server = Command::new(std::env::current_exe()?);
            server.env(ROLE, "server").env("KETTLE_BENCH_N", n.to_string()).args(std::env::args().skip(1));
            match admin_url {
                Some(url) => server.env("KETTLE_BENCH_ADMIN_URL", url),
                None => server.env_remove("KETTLE_BENCH_ADMIN_URL"),
            };
            let status = server.stdin(Stdio::null()).status().context("the server process runs")?;
            ensure!(status.success(), "{n} subscribers: the scenario failed");
        }
    }
    Ok(())
}

/// The server's process for one scenario: a fresh database, the server, its figures.
async fn server() -> anyhow::Result<()> {
    let options = options();
    let n: usize = std::env::var("KETTLE_BENCH_N")?.parse()?;
    let admin_url = std::env::var("KETTLE_BENCH_ADMIN_URL").ok();
    let redis = std::env::var("KETTLE_BENCH_REDIS_URL").ok().filter(|u| !u.is_empty());
    let database = Database::create(admin_url.as_deref()).await?;
    let outcome = scenario(&options, &database, n, admin_url.as_deref().and(redis.as_deref())).await;
    database.remove().await;
    outcome.with_context(|| format!("{n} subscribers on {}", database.label))
}

async fn scenario(options: &Options, database: &Database, n: usize, redis: Option<&str>) -> anyhow::Result<()> {
    let label = format!("{}{}", database.label, if redis.is_some() { " + Redis" } else { "" });
    let tokens = database.dir.path().join("tokens.txt");
    let seeded = Command::new(std::env::current_exe()?)
        .env(ROLE, "seed")
        .env("KETTLE_BENCH_URL", &database.url)
        .env("KETTLE_BENCH_N", n.to_string())
        .env("KETTLE_BENCH_TOKENS", &tokens)
        .stdin(Stdio::null())
        .status()
        .context("the seeding process runs")?;
    ensure!(seeded.success(), "seeding failed");

    let mut vars: HashMap<String, String> = HashMap::from([
        ("KETTLE_LISTEN".into(), "127.0.0.1:0".into()),
        ("KETTLE_DATA_DIR".into(), database.dir.path().display().to_string()),
        ("KETTLE_DATABASE_URL".into(), database.url.clone()),
        ("KETTLE_RATE_LIMITS".into(), LIMITS.into()),
        ("KETTLE_REDIS_PREFIX".into(), format!("kettle_live_bench_{}", std::process::id())),
    ]);
    if let Some(redis) = redis {
        vars.insert("KETTLE_REDIS_URL".into(), redis.into());
    }
    let application = Application::build(Config::from_vars(vars)?).await?;
    let address = application.local_addr();
    let state = application.state().clone();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(application.run_until(async move {
        let _ = stopped.await;
    }));
    if redis.is_some() {
        let deadline = Instant::now() + Duration::from_secs(10);
        while state.bus.status() != kettle::bus::BusStatus::RedisConnected {
            ensure!(Instant::now() < deadline, "the bus did not connect to Redis");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let before = resident_kib();
    let heap_before = HEAP.load(Ordering::Relaxed);

    let mut child = tokio::process::Command::new(std::env::current_exe()?)
        .env(ROLE, "clients")
        .env("KETTLE_BENCH_ADDRESS", address.to_string())
        .env("KETTLE_BENCH_TOKENS", &tokens)
        .env("KETTLE_BENCH_ROUNDS", options.rounds.to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .context("the client process starts")?;
    let mut to_child = child.stdin.take().context("stdin")?;
    let mut from_child =
        tokio::io::AsyncBufReadExt::lines(tokio::io::BufReader::new(child.stdout.take().context("stdout")?));
    let line = from_child.next_line().await?.context("the client process ended early")?;
    ensure!(line == "ready", "the client process said {line:?}");

    let hub = state.bus.hub().clone();
    let deadline = Instant::now() + Duration::from_secs(120);
    while hub.subscriptions() < n {
        ensure!(Instant::now() < deadline, "{} of {n} subscriptions after two minutes", hub.subscriptions());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = resident_kib();
    let heap = (HEAP.load(Ordering::Relaxed) - heap_before) as f64 / 1024.0 / n as f64;
    let per = (after.saturating_sub(before)) as f64 / n as f64;
    println!(
        "{label:<20} {n:>6} subscribers: per idle subscriber {per:.1} KiB resident ({} KiB before, {} KiB after), \
         {heap:.1} KiB of it Rust's heap",
        thousands(before as usize),
        thousands(after as usize),
    );

    let mut from_response = Vec::new();
    let mut from_request = Vec::new();
    let mut from_dispatch = Vec::new();
    let mut missing = 0;
    for round in 0..options.rounds {
        use tokio::io::AsyncWriteExt;
        to_child.write_all(b"go\n").await?;
        let line = from_child.next_line().await?.context("the client process ended early")?;
        let report: Value = serde_json::from_str(line.strip_prefix("round ").context("a round report")?)?;
        let (now_instant, now_system) = (Instant::now(), SystemTime::now());
        let dispatched = state.bus.stats().last_publish().context("the dispatcher published nothing")?;
        let dispatched = micros(now_system - now_instant.duration_since(dispatched));
        let sent = report["sent"].as_u64().context("sent")?;
        let answered = report["answered"].as_u64().context("answered")?;
        let arrivals: Vec<u64> = serde_json::from_value(report["arrivals"].clone())?;
        missing += n - arrivals.len();
        for at in arrivals {
            from_response.push(at.saturating_sub(answered));
            from_request.push(at.saturating_sub(sent));
            from_dispatch.push(at.saturating_sub(dispatched));
        }
        if !options.full {
            ensure!(missing == 0, "round {round}: {missing} subscribers received nothing");
        }
    }
    for (what, samples) in [
        ("from the publish response (commit)", &mut from_response),
        ("from the publish request", &mut from_request),
        ("from the dispatcher's commit", &mut from_dispatch),
    ] {
        println!("{label:<20} {n:>6} subscribers: delivery {what:<36} {}", percentiles(samples));
    }
    if missing > 0 {
        println!("{label:<20} {n:>6} subscribers: {missing} deliveries did not arrive within two minutes");
    }
    {
        use tokio::io::AsyncWriteExt;
        to_child.write_all(b"done\n").await?;
    }
    let _ = tokio::time::timeout(Duration::from_secs(30), child.wait()).await;
    let _ = stop.send(());
    let _ = tokio::time::timeout(Duration::from_secs(30), server).await;
    Ok(())
}

fn percentiles(samples: &mut [u64]) -> String {
    if samples.is_empty() {
        return "no samples".into();
    }
    samples.sort_unstable();
    let at = |p: f64| samples[((samples.len() as f64 * p).ceil() as usize).clamp(1, samples.len()) - 1];
    let ms = |us: u64| us as f64 / 1000.0;
    format!(
        "p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms ({} samples)",
        ms(at(0.50)),
        ms(at(0.99)),
        ms(at(1.0)),
        thousands(samples.len())
    )
}

fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A fresh database: a SQLite file in a temporary directory, or a PostgreSQL database
/// created here and dropped by [`Database::remove`].
struct Database {
    label: &'static str,
    url: String,
    dir: tempfile::TempDir,
    postgres: Option<(String, String)>,
}

static DATABASES: AtomicUsize = AtomicUsize::new(0);

impl Database {
    async fn create(admin_url: Option<&str>) -> anyhow::Result<Database> {
        let dir = tempfile::tempdir()?;
        let Some(admin_url) = admin_url else {
            let url = format!("sqlite://{}", dir.path().join("bench.db").display());
            return Ok(Database { label: "sqlite", url, dir, postgres: None });
        };
        let name = format!("kettle_live_bench_{}_{}", std::process::id(), DATABASES.fetch_add(1, Ordering::SeqCst));
        let mut admin = PgConnection::connect(admin_url).await.context("connect to KETTLE_BENCH_DATABASE_URL")?;
        admin.execute(format!("CREATE DATABASE \"{name}\"").as_str()).await?;
        admin.close().await?;
        let mut url = url::Url::parse(admin_url).context("KETTLE_BENCH_DATABASE_URL is a URL")?;
        url.set_path(&name);
        Ok(Database { label: "postgres", url: url.to_string(), dir, postgres: Some((admin_url.to_string(), name)) })
    }

    async fn remove(&self) {
        if let Some((admin_url, name)) = &self.postgres {
            if let Ok(mut admin) = PgConnection::connect(admin_url).await {
                let _ = admin.execute(format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)").as_str()).await;
            }
        }
    }
}

/// The seeding child: N members watching one topic, each with a session, and an author.
/// Writes the author's token, the topic's id, then one member token a line.
async fn seed() -> anyhow::Result<()> {
    let url = std::env::var("KETTLE_BENCH_URL")?;
    let n: usize = std::env::var("KETTLE_BENCH_N")?.parse()?;
    let out = PathBuf::from(std::env::var("KETTLE_BENCH_TOKENS")?);
    let data_dir = out.parent().unwrap_or(Path::new(".")).display().to_string();
    let config =
        Config::from_vars([("KETTLE_DATABASE_URL".to_string(), url), ("KETTLE_DATA_DIR".to_string(), data_dir)])?;
    let db = Db::connect(&config).await?;
    db.migrate().await?;
    let now = kettle::db::now_millis();
    let mut members =
        vec![format!("('author@bench.example', 'author@bench.example', 'author', 'Ada Author', {now}, {now})")];
    members.extend(
        (0..n).map(|i| format!("('m{i}@bench.example', 'm{i}@bench.example', 'm-{i}', 'Member {i}', {now}, {now})")),
    );
    for chunk in members.chunks(1_000) {
        let sql = format!(
            "INSERT INTO members (email, email_normalized, handle, display_name, created_at, updated_at) VALUES {}",
            chunk.join(", ")
        );
        db.pool.execute(sql.as_str()).await?;
    }
    let ids: Vec<i64> = sqlx::query_scalar(
        "SELECT id FROM members WHERE email LIKE '%@bench.example' AND email <> 'author@bench.example' ORDER BY id",
    )
    .fetch_all(&db.pool)
    .await?;
    ensure!(ids.len() == n, "{} members, not {n}", ids.len());
    let author: i64 =
        sqlx::query_scalar("SELECT id FROM members WHERE email = 'author@bench.example'").fetch_one(&db.pool).await?;
    let topic = topics::create(&db, "Bin collection", "Waste, recycling and the services around them.")
        .await
        .map_err(AppError::into_anyhow)?
        .context("the topic exists already")?;
    for chunk in ids.chunks(1_000) {
        let mut follows = String::from(
            "INSERT INTO follows (member_id, target_type, target_id, level, created_at, updated_at) VALUES ",
        );
        for (k, id) in chunk.iter().enumerate() {
            let separator = if k == 0 { "" } else { ", " };
            write!(follows, "{separator}({id}, 'Topic', {}, 'watching', {now}, {now})", topic.id)?;
        }
        db.pool.execute(follows.as_str()).await?;
    }
    let mut file = std::io::BufWriter::new(std::fs::File::create(&out)?);
    writeln!(file, "{}", session(&db, author).await?)?;
    writeln!(file, "{}", relay::global_id("Topic", topic.id).as_str())?;
    for &id in &ids {
        writeln!(file, "{}", session(&db, id).await?)?;
    }
    file.flush()?;
    Ok(())
}

async fn session(db: &Db, member_id: i64) -> anyhow::Result<String> {
    Ok(credentials::create_session(db, member_id).await.map_err(AppError::into_anyhow)?.token)
}

/// The clients' child: opens a subscription per member token, says `ready`, then for each
/// `go` on its input publishes a draft and reports when each subscriber heard of it.
async fn clients() -> anyhow::Result<()> {
    let address = std::env::var("KETTLE_BENCH_ADDRESS")?;
    let rounds: usize = std::env::var("KETTLE_BENCH_ROUNDS")?.parse()?;
    let text = std::fs::read_to_string(std::env::var("KETTLE_BENCH_TOKENS")?)?;
    let mut lines = text.lines();
    let author = lines.next().context("the author's token")?.to_string();
    let topic = lines.next().context("the topic")?.to_string();
    let members: Vec<String> = lines.map(str::to_string).collect();
    let n = members.len();

    let http = reqwest::Client::new();
    let graphql = |query: &'static str, variables: Value| {
        let request = http
            .post(format!("http://{address}/graphql"))
            .bearer_auth(&author)
            .json(&json!({ "query": query, "variables": variables }));
        async move {
            let body: Value = request.send().await?.json().await?;
            if body.get("errors").is_some() {
                bail!("GraphQL errors: {body}");
            }
            Ok::<Value, anyhow::Error>(body["data"].clone())
        }
    };
    let mut drafts = Vec::new();
    for round in 0..rounds {
        let input = json!({ "input": {
            "title": format!("Bin reminders, part {}", round + 1),
            "summary": "We moved bin collection reminders online.",
            "body": "## What we did\n\nWe tested with residents.",
            "phase": "LIVE",
            "topicIds": [topic],
        } });
        let data = graphql(
            "mutation($input: CreateCaseStudyInput!) { createCaseStudy(input: $input) { caseStudy { id } userErrors { message } } }",
            input,
        )
        .await?;
        drafts.push(data["createCaseStudy"]["caseStudy"]["id"].as_str().context("a draft")?.to_string());
    }

    let (arrived, mut arrivals) = tokio::sync::mpsc::unbounded_channel::<u64>();
    let connected = Arc::new(AtomicUsize::new(0));
    let mut opened = futures_util::stream::iter(members.into_iter().map(|token| {
        let (address, arrived, connected) = (address.clone(), arrived.clone(), connected.clone());
        async move {
            let mut socket = subscriber(&address, &token).await?;
            connected.fetch_add(1, Ordering::Relaxed);
            tokio::spawn(async move {
                while let Some(Ok(message)) = socket.next().await {
                    let Message::Text(text) = message else { continue };
                    if text.as_str().contains("\"type\":\"next\"") {
                        let _ = arrived.send(micros(SystemTime::now()));
                    } else if text.as_str().contains("\"type\":\"ping\"") {
                        let _ = socket.send(Message::text(r#"{"type":"pong"}"#)).await;
                    }
                }
            });
            Ok::<(), anyhow::Error>(())
        }
    }))
    .buffer_unordered(64);
    while let Some(result) = opened.next().await {
        result?;
    }
    drop(opened);
    ensure!(connected.load(Ordering::Relaxed) == n, "not every subscriber connected");
    println!("ready");

    let stdin = std::io::stdin();
    let mut round = 0;
    for line in stdin.lock().lines() {
        match line?.as_str() {
            "go" => {
                let draft = drafts.get(round).context("more rounds than drafts")?.clone();
                round += 1;
                let sent = micros(SystemTime::now());
                graphql(
                    "mutation($id: ID!) { publishCaseStudy(input: { id: $id }) { caseStudy { status } userErrors { message } } }",
                    json!({ "id": draft }),
                )
                .await?;
                let answered = micros(SystemTime::now());
                let mut times = Vec::with_capacity(n);
                let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
                while times.len() < n {
                    match tokio::time::timeout_at(deadline, arrivals.recv()).await {
                        Ok(Some(at)) => times.push(at),
                        _ => break,
                    }
                }
                println!("round {}", json!({ "sent": sent, "answered": answered, "arrivals": times }));
            }
            _ => break,
        }
    }
    Ok(())
}

type Socket = tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>;

/// One signed-in subscriber, acknowledged and subscribed.
async fn subscriber(address: &str, token: &str) -> anyhow::Result<Socket> {
    let mut request = format!("ws://{address}/graphql/ws").into_client_request()?;
    request.headers_mut().insert("sec-websocket-protocol", HeaderValue::from_static("graphql-transport-ws"));
    request.headers_mut().insert("authorization", HeaderValue::from_str(&format!("Bearer {token}"))?);
    let stream = tokio::net::TcpStream::connect(address).await?;
    let (mut socket, _) = tokio_tungstenite::client_async(request, stream).await?;
    socket.send(Message::text(r#"{"type":"connection_init"}"#)).await?;
    match socket.next().await {
        Some(Ok(Message::Text(text))) if text.as_str().contains("connection_ack") => {}
        other => bail!("no connection_ack: {other:?}"),
    }
    let subscribe = json!({ "id": "1", "type": "subscribe", "payload": { "query": SUBSCRIPTION } });
    socket.send(Message::text(subscribe.to_string())).await?;
    Ok(socket)
}
