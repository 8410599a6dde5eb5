//! How fast the dispatcher turns outbox events into notification rows: rows per second and
//! events per second that `kettle::notifications::dispatch::dispatch_pending` writes while
//! draining a backlog, on SQLite (a temporary file) and, when `KETTLE_BENCH_DATABASE_URL`
//! is set, on PostgreSQL (a fresh database created here and dropped afterwards, so the
//! URL's user must be allowed to create databases). With `KETTLE_BENCH_REDIS_URL` as well,
//! each PostgreSQL scenario is also run the way a server runs it: the dispatcher's rounds
//! with every batch published on the Redis bus, timed until a Redis subscriber has
//! received every inbox row. The issue's goal: at least 25,000 rows a second on
//! PostgreSQL (Discourse's MessageBus publishes about 2,570 a second).
//!
//! ```text
//! export CARGO_TARGET_DIR=$HOME/.cache/kettle-ci/target
//! cargo bench --bench dispatch                      # full sizes, SQLite only
//! KETTLE_BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres \
//! KETTLE_BENCH_REDIS_URL=redis://127.0.0.1:6379 \
//!   cargo bench --bench dispatch                    # SQLite, PostgreSQL, PostgreSQL + Redis
//! cargo bench --bench dispatch -- --quick           # small sizes: a few seconds a backend
//! cargo bench --bench dispatch -- --profile         # also: where the time goes
//! cargo bench --bench dispatch -- --only=mixed      # scenarios whose name contains "mixed"
//! cargo bench --bench dispatch -- --backend=postgres  # one backend (sqlite or postgres)
//! cargo test --bench dispatch                       # a smoke run (small sizes, debug build)
//! ```
//! `KETTLE_BENCH_QUICK=1` is the same as `--quick`, `KETTLE_BENCH_RUNS=n` sets the runs per
//! scenario (full: 3, quick: 1). Run without `--bench` (as `cargo test --all-targets` does)
//! it uses the quick sizes, as a smoke test that the figures are real: every run checks
//! that it wrote exactly the rows the scenario implies and left no event pending.
//!
//! Scenarios; every run of one (and the Redis run, and the profile) is on a database of its
//! own, set up afresh (PostgreSQL: VACUUM ANALYZE after setting up, as autovacuum would):
//! - `fanout M×E`: M members WATCHING one topic (members and follows inserted in bulk with
//!   SQL), a few case studies created and published in it through the domain functions
//!   (`case_studies::create`, `set_status`), and `case_study.published` events for them
//!   up to E in all (the rest inserted with SQL, the same rows `outbox::record` writes):
//!   E × M rows.
//! - `mixed T×W`: many events with few recipients each: T comment events, each on its own
//!   conversation (a case study published through the domain functions, copied T times
//!   with SQL, one comment each by its author), each conversation WATCHED by W members of
//!   a pool: T × W rows, every one in a group of its own.
//!
//! It prints figures and asserts nothing about time: the machine decides that (it is
//! shared, so the load average is printed beside the core count).
//!
//! `--profile` runs each scenario once more with every SQL statement timed (sqlx's own
//! statement log, caught by the tracing layer in `support.rs`) and sums them by statement,
//! and times `recipients::plan` alone over the same events, so the report says how much of
//! the dispatcher's time is planning, inserting, grouping, reading back, or none of those
//! (Rust-side work between statements).

#[path = "support.rs"]
mod support;

use std::{
    fmt::Write as _,
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use anyhow::{bail, ensure, Context as _};
use futures_util::StreamExt;
use kettle::{
    accounts::{self, NewMember, Role},
    case_studies::{self, CaseStudyStatus, Fields, Phase},
    db::{Db, Dialect},
    error::AppError,
    notifications::{
        dispatch::{self, Dispatcher},
        recipients,
    },
    outbox::{self, Recorded},
    topics,
};
use sqlx::{Executor, Row};
use support::{drop_stale_databases, print_profile, scratch_name, thousands, Database, Profiler, Table};

/// Starts the name of each PostgreSQL database (and Redis channel prefix) used here.
const DATABASE_PREFIX: &str = "kettle_bench_";

#[derive(Clone, Copy, Debug)]
enum Shape {
    /// `members` watch one topic; `events` case studies published in it.
    Fanout { members: usize, events: usize },
    /// `threads` comment events, each on its own conversation watched by `watchers` of
    /// `pool` members.
    Mixed { threads: usize, watchers: usize, pool: usize },
}

impl Shape {
    fn name(self) -> String {
        match self {
            Shape::Fanout { members, events } => format!("fanout {}×{}", thousands(members), thousands(events)),
            Shape::Mixed { threads, watchers, .. } => format!("mixed {}×{watchers}", thousands(threads)),
        }
    }

    fn events(self) -> usize {
        match self {
            Shape::Fanout { events, .. } => events,
            Shape::Mixed { threads, .. } => threads,
        }
    }

    fn rows(self) -> usize {
        match self {
            Shape::Fanout { members, events } => members * events,
            Shape::Mixed { threads, watchers, .. } => threads * watchers,
        }
    }
}

struct Options {
    quick: bool,
    runs: usize,
    profile: bool,
    only: Option<String>,
    backend: Option<String>,
}

fn options() -> Options {
    let args: Vec<String> = std::env::args().collect();
    let quick = !args.iter().any(|a| a == "--bench")
        || args.iter().any(|a| a == "--quick")
        || std::env::var("KETTLE_BENCH_QUICK").is_ok_and(|v| v == "1");
    let runs = std::env::var("KETTLE_BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|n| *n > 0)
        .unwrap_or(if quick { 1 } else { 3 });
    let profile = args.iter().any(|a| a == "--profile");
    let only = args.iter().find_map(|a| a.strip_prefix("--only=")).map(str::to_string);
    let backend = args.iter().find_map(|a| a.strip_prefix("--backend=")).map(str::to_string);
    Options { quick, runs, profile, only, backend }
}

fn shapes(quick: bool) -> Vec<Shape> {
    if quick {
        vec![
            Shape::Fanout { members: 1_000, events: 10 },
            Shape::Fanout { members: 10_000, events: 2 },
            Shape::Mixed { threads: 300, watchers: 3, pool: 200 },
        ]
    } else {
        vec![
            Shape::Fanout { members: 1_000, events: 400 },
            Shape::Fanout { members: 10_000, events: 40 },
            Shape::Mixed { threads: 5_000, watchers: 3, pool: 2_000 },
        ]
    }
}

fn main() -> anyhow::Result<()> {
    let options = options();
    let profiler = options.profile.then(|| Profiler::install(STATEMENT_NAMES, &[]));
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(run(&options, profiler.as_deref()))
}

async fn run(options: &Options, profiler: Option<&Profiler>) -> anyhow::Result<()> {
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let load = load.split_whitespace().take(3).collect::<Vec<_>>().join(" ");
    println!(
        "notification dispatch: {cores} cores (load average {load}), {} build, {} sizes, {} run{} per scenario{}",
        if cfg!(debug_assertions) { "debug" } else { "optimised" },
        if options.quick { "quick" } else { "full" },
        options.runs,
        if options.runs == 1 { "" } else { "s" },
        if std::env::args().any(|a| a == "--bench") { "" } else { " (smoke run: pass --bench for figures)" },
    );
    let postgres = std::env::var("KETTLE_BENCH_DATABASE_URL").ok().filter(|u| !u.is_empty());
    let redis = std::env::var("KETTLE_BENCH_REDIS_URL").ok().filter(|u| !u.is_empty());
    if postgres.is_none() {
        println!("PostgreSQL skipped: set KETTLE_BENCH_DATABASE_URL (and KETTLE_BENCH_REDIS_URL) to run it");
    } else if redis.is_none() {
        println!("PostgreSQL + Redis skipped: set KETTLE_BENCH_REDIS_URL to run it");
    }
    println!(
        "{:<10} {:<18} {:>9} {:>7} {:>9} {:>11} {:>10}",
        "backend", "scenario", "rows", "events", "seconds", "rows/s", "events/s"
    );

    let shapes: Vec<Shape> = shapes(options.quick)
        .into_iter()
        .filter(|s| options.only.as_ref().is_none_or(|only| s.name().contains(only.as_str())))
        .collect();
    let mut backends = vec![None];
    backends.extend(postgres.iter().map(Some));
    backends.retain(|b| {
        let name = if b.is_some() { "postgres" } else { "sqlite" };
        options.backend.as_ref().is_none_or(|wanted| wanted == name)
    });
    if let Some(admin_url) = &postgres {
        drop_stale_databases(admin_url, DATABASE_PREFIX).await;
    }
    for admin_url in backends {
        for &shape in &shapes {
            let backend = if admin_url.is_some() { "postgres" } else { "sqlite" };
            scenario(options, profiler, admin_url.map(String::as_str), shape, redis.as_deref())
                .await
                .with_context(|| format!("{} on {backend}", shape.name()))?;
        }
    }
    Ok(())
}

/// A database of its own with the scenario set up, and how long setting up took.
async fn prepared(admin_url: Option<&str>, shape: Shape) -> anyhow::Result<(Database, f64)> {
    let database = Database::create(admin_url, DATABASE_PREFIX).await?;
    let started = Instant::now();
    let outcome = async {
        match shape {
            Shape::Fanout { members, events } => fanout(&database.db, members, events).await?,
            Shape::Mixed { threads, watchers, pool } => mixed(&database.db, threads, watchers, pool).await?,
        }
        analyze(&database.db).await
    }
    .await;
    if let Err(err) = outcome {
        database.remove().await;
        return Err(err);
    }
    Ok((database, started.elapsed().as_secs_f64()))
}

/// One scenario: each run drains the backlog on a database of its own, set up afresh,
/// as are the PostgreSQL + Redis run and the profile. (Draining it again on the same
/// tables would not measure the same thing: on PostgreSQL, the statistics of a
/// notifications table vacuumed empty make the next big batch's plans quadratic.)
async fn scenario(
    options: &Options,
    profiler: Option<&Profiler>,
    admin_url: Option<&str>,
    shape: Shape,
    redis: Option<&str>,
) -> anyhow::Result<()> {
    let mut rates = Vec::new();
    let mut setups = Vec::new();
    let mut label = "";
    for _ in 0..options.runs {
        let (database, setup) = prepared(admin_url, shape).await?;
        label = database.label;
        setups.push(setup);
        let db = &database.db;
        let outcome = async {
            let started = Instant::now();
            let written = dispatch::dispatch_pending(db).await.map_err(AppError::into_anyhow)?;
            let seconds = started.elapsed().as_secs_f64();
            check(db, shape, written).await?;
            Ok::<_, anyhow::Error>((written, seconds))
        }
        .await;
        database.remove().await;
        let (written, seconds) = outcome?;
        rates.push(written as f64 / seconds);
        print_line(label, &shape.name(), written, shape.events(), seconds);
    }
    if rates.len() > 1 {
        rates.sort_by(f64::total_cmp);
        println!(
            "{label:<10} {:<18} median {} rows/s, best {} (setting up took {:.1} s a run)",
            shape.name(),
            thousands(rates[rates.len() / 2] as usize),
            thousands(rates[rates.len() - 1] as usize),
            setups.iter().sum::<f64>() / setups.len() as f64
        );
    }
    if let (Some(url), Some(_)) = (redis, admin_url) {
        let (database, _) = prepared(admin_url, shape).await?;
        let outcome = with_redis(&database.db, shape, url).await;
        database.remove().await;
        outcome?;
    }
    if let Some(profiler) = profiler {
        let (database, _) = prepared(admin_url, shape).await?;
        let outcome = profile(&database.db, shape, profiler, database.label).await;
        database.remove().await;
        outcome?;
    }
    Ok(())
}

fn print_line(backend: &str, scenario: &str, rows: usize, events: usize, seconds: f64) {
    println!(
        "{backend:<10} {scenario:<18} {:>9} {:>7} {seconds:>9.2} {:>11} {:>10}",
        thousands(rows),
        thousands(events),
        thousands((rows as f64 / seconds) as usize),
        thousands((events as f64 / seconds) as usize),
    );
}

/// Every event dispatched, and exactly the rows the scenario implies.
async fn check(db: &Db, shape: Shape, written: usize) -> anyhow::Result<()> {
    ensure!(written == shape.rows(), "{} wrote {written} rows, not {}", shape.name(), shape.rows());
    let rows: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM notifications").fetch_one(&db.pool).await?;
    ensure!(rows as usize == shape.rows(), "{rows} notification rows, not {}", shape.rows());
    let pending = dispatch::pending_count(db).await.map_err(AppError::into_anyhow)?;
    ensure!(pending == 0, "{pending} events are still pending");
    Ok(())
}

/// Fresh planner statistics on PostgreSQL, as a database in use has (the bulk inserts
/// here come faster than autovacuum notices them).
async fn analyze(db: &Db) -> anyhow::Result<()> {
    if db.dialect == Dialect::Postgres {
        db.pool.execute("VACUUM ANALYZE").await?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Setting a scenario up.

/// A member made the way registration makes one.
async fn member(db: &Db, email: &str, name: &str) -> anyhow::Result<i64> {
    let new = NewMember { email, display_name: name, password_hash: None, role: Role::Member };
    let member = accounts::insert_member(db, new).await.map_err(AppError::into_anyhow)?.context("email taken")?;
    Ok(member.id)
}

/// A case study created and published through the domain functions (which record its
/// `case_study.published` event).
async fn published(db: &Db, author: i64, title: &str, topic: i64) -> anyhow::Result<i64> {
    let fields = Fields {
        title: title.to_string(),
        summary: "Residents sign up once and get a text the evening before collection.".into(),
        body_source: "## What we did\n\nWe interviewed 24 residents who had reported a missed collection.".into(),
        phase: Phase::Live,
        organisation_id: None,
        topic_ids: vec![topic],
        co_author_ids: Vec::new(),
    };
    let case_study = case_studies::create(db, author, &fields).await.map_err(AppError::into_anyhow)?;
    case_studies::set_status(db, case_study.id, CaseStudyStatus::Published, author)
        .await
        .map_err(AppError::into_anyhow)?
        .context("the case study was published already")?;
    Ok(case_study.id)
}

/// `n` members `bulk<i>@bench.example`, in one statement per 1,000; returns their ids.
async fn bulk_members(db: &Db, n: usize) -> anyhow::Result<Vec<i64>> {
    let now = kettle::db::now_millis();
    let ids: Vec<usize> = (1..=n).collect();
    for chunk in ids.chunks(1_000) {
        let mut sql = String::from(
            "INSERT INTO members (email, email_normalized, handle, display_name, created_at, updated_at) VALUES ",
        );
        for (k, i) in chunk.iter().enumerate() {
            let sep = if k == 0 { "" } else { ", " };
            write!(
                sql,
                "{sep}('bulk{i}@bench.example', 'bulk{i}@bench.example', 'bulk-{i}', 'Bulk member {i}', {now}, {now})"
            )?;
        }
        db.pool.execute(sql.as_str()).await?;
    }
    let ids: Vec<i64> = sqlx::query_scalar("SELECT id FROM members WHERE email LIKE '%@bench.example' ORDER BY id")
        .fetch_all(&db.pool)
        .await?;
    ensure!(ids.len() == n, "{} bulk members, not {n}", ids.len());
    Ok(ids)
}

/// WATCHING follows, in one statement per 1,000.
async fn bulk_follows(db: &Db, follows: &[(i64, &str, i64)]) -> anyhow::Result<()> {
    let now = kettle::db::now_millis();
    for chunk in follows.chunks(1_000) {
        let mut sql = String::from(
            "INSERT INTO follows (member_id, target_type, target_id, level, created_at, updated_at) VALUES ",
        );
        for (k, (member, target_type, target)) in chunk.iter().enumerate() {
            let sep = if k == 0 { "" } else { ", " };
            write!(sql, "{sep}({member}, '{target_type}', {target}, 'watching', {now}, {now})")?;
        }
        db.pool.execute(sql.as_str()).await?;
    }
    Ok(())
}

async fn pending_kinds(db: &Db) -> anyhow::Result<Vec<(String, i64)>> {
    let rows =
        sqlx::query("SELECT kind, COUNT(*) FROM outbox_events WHERE dispatched_at IS NULL GROUP BY kind ORDER BY kind")
            .fetch_all(&db.pool)
            .await?;
    rows.iter().map(|r| Ok((r.try_get(0)?, r.try_get(1)?))).collect()
}

async fn fanout(db: &Db, members: usize, events: usize) -> anyhow::Result<()> {
    let author = member(db, "author@example.org", "Ada Author").await?;
    let topic = topics::create(db, "Bin collection", "Waste, recycling and the services around them.")
        .await
        .map_err(AppError::into_anyhow)?
        .context("topic taken")?;
    let mut case_studies = Vec::new();
    for i in 0..events.clamp(1, 4) {
        case_studies.push(published(db, author, &format!("Bin collection reminders, part {}", i + 1), topic.id).await?);
    }
    let ids = bulk_members(db, members).await?;
    let follows: Vec<(i64, &str, i64)> = ids.iter().map(|m| (*m, "Topic", topic.id)).collect();
    bulk_follows(db, &follows).await?;

    // The rest of the events: the very rows `outbox::record` writes for a publication.
    let real = pending_kinds(db).await?;
    ensure!(real.len() == 1 && real[0].0 == "case_study.published", "unexpected pending events: {real:?}");
    let mut missing = events - real[0].1 as usize;
    let now = kettle::db::now_millis();
    let mut k = 0;
    while missing > 0 {
        let case_study = case_studies[k % case_studies.len()];
        let title: String = sqlx::query_scalar("SELECT title FROM case_studies WHERE id = $1")
            .bind(case_study)
            .fetch_one(&db.pool)
            .await?;
        let payload = serde_json::to_string(&outbox::CaseStudyPublished { title })?;
        let n = missing.div_ceil(case_studies.len() - k % case_studies.len()).min(missing);
        let mut sql = String::from(
            "INSERT INTO outbox_events (kind, subject_type, subject_id, actor_id, payload, created_at) VALUES ",
        );
        for j in 0..n {
            let sep = if j == 0 { "" } else { ", " };
            write!(sql, "{sep}('case_study.published', 'CaseStudy', $1, $2, $3, {now})")?;
        }
        sqlx::query(&sql).bind(case_study).bind(author).bind(payload).execute(&db.pool).await?;
        missing -= n;
        k += 1;
    }
    let pending = dispatch::pending_count(db).await.map_err(AppError::into_anyhow)?;
    ensure!(pending as usize == events, "{pending} events pending, not {events}");
    Ok(())
}

async fn mixed(db: &Db, threads: usize, watchers: usize, pool: usize) -> anyhow::Result<()> {
    ensure!(pool >= watchers, "a pool of {pool} cannot give {watchers} watchers each");
    let author = member(db, "author@example.org", "Ada Author").await?;
    let topic = topics::create(db, "Bin collection", "Waste, recycling and the services around them.")
        .await
        .map_err(AppError::into_anyhow)?
        .context("topic taken")?;
    let template = published(db, author, "Bin collection reminders by text", topic.id).await?;
    // Its publication tells nobody (nobody follows anything yet); out of the way, for
    // good (a reset between runs makes every event pending again).
    dispatch::dispatch_pending(db).await.map_err(AppError::into_anyhow)?;
    db.pool.execute("DELETE FROM outbox_events").await?;

    // T copies of the published case study, with their author and topic, then one comment
    // each by the author, and its `comment.posted` event as `comments::post` records it.
    let now = kettle::db::now_millis();
    let numbers: Vec<usize> = (1..=threads).collect();
    for chunk in numbers.chunks(1_000) {
        let values: Vec<String> = chunk.iter().map(|i| format!("({i})")).collect();
        let sql = format!(
            "INSERT INTO case_studies (title, summary, body_source, body_html, phase, organisation_id, author_id, status, \
             version, created_at, updated_at, published_at) \
             SELECT c.title || ' ' || n.column1, c.summary, c.body_source, c.body_html, c.phase, c.organisation_id, \
             c.author_id, c.status, c.version, c.created_at, c.updated_at, c.published_at \
             FROM case_studies c, (VALUES {}) n WHERE c.id = {template} ORDER BY n.column1",
            values.join(", ")
        );
        db.pool.execute(sql.as_str()).await?;
    }
    db.pool
        .execute(
            format!(
                "INSERT INTO case_study_authors (case_study_id, member_id, position) \
                 SELECT c.id, a.member_id, a.position FROM case_studies c, case_study_authors a \
                 WHERE a.case_study_id = {template} AND c.id <> {template}"
            )
            .as_str(),
        )
        .await?;
    db.pool
        .execute(
            format!(
                "INSERT INTO case_study_topics (case_study_id, topic_id) SELECT c.id, t.topic_id \
                 FROM case_studies c, case_study_topics t WHERE t.case_study_id = {template} AND c.id <> {template}"
            )
            .as_str(),
        )
        .await?;
    db.pool
        .execute(
            format!(
                "INSERT INTO comments (subject_type, subject_id, parent_id, author_id, body_source, body_html, created_at) \
                 SELECT 'case_study', id, NULL, author_id, 'Did the crews see the texts too?', \
                 '<p>Did the crews see the texts too?</p>', {now} FROM case_studies WHERE id <> {template} ORDER BY id"
            )
            .as_str(),
        )
        .await?;
    db.pool
        .execute(
            format!(
                "INSERT INTO outbox_events (kind, subject_type, subject_id, actor_id, payload, created_at) \
                 SELECT 'comment.posted', 'CaseStudy', subject_id, author_id, \
                 '{{\"commentId\":' || id || ',\"parentId\":null,\"parentAuthorId\":null}}', {now} \
                 FROM comments WHERE subject_type = 'case_study' ORDER BY id"
            )
            .as_str(),
        )
        .await?;

    let conversations: Vec<i64> =
        sqlx::query_scalar(&format!("SELECT id FROM case_studies WHERE id <> {template} ORDER BY id"))
            .fetch_all(&db.pool)
            .await?;
    ensure!(conversations.len() == threads, "{} conversations, not {threads}", conversations.len());
    let ids = bulk_members(db, pool).await?;
    let follows: Vec<(i64, &str, i64)> = conversations
        .iter()
        .enumerate()
        .flat_map(|(t, c)| {
            let ids = &ids;
            (0..watchers).map(move |w| (ids[(t * watchers + w) % ids.len()], "CaseStudy", *c))
        })
        .collect();
    bulk_follows(db, &follows).await?;
    let pending = dispatch::pending_count(db).await.map_err(AppError::into_anyhow)?;
    ensure!(pending as usize == threads, "{pending} events pending, not {threads}");
    // Sanity: each one decodes, as the dispatcher will read it.
    let sample = sqlx::query(&format!(
        "SELECT {} FROM outbox_events WHERE dispatched_at IS NULL ORDER BY id LIMIT 1",
        outbox::COLUMNS
    ))
    .fetch_one(&db.pool)
    .await?;
    if let Err(reason) = Recorded::from_row(&sample)?.event {
        bail!("the comment events do not decode: {reason}");
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// PostgreSQL + Redis: the server's loop, publishing each batch on the Redis bus.

/// Runs the dispatcher the way `Application::run_until` does (rounds, each committed
/// batch's inbox rows published on the bus) and times it twice: until the last batch
/// committed, and until a Redis subscriber has received every inbox row.
async fn with_redis(db: &Db, shape: Shape, url: &str) -> anyhow::Result<()> {
    let prefix = scratch_name(DATABASE_PREFIX);
    let client = redis::Client::open(url).context("KETTLE_BENCH_REDIS_URL")?;
    let bus = kettle::bus::build(Some(client.clone()), &prefix);
    bus.start();
    let deadline = Instant::now() + Duration::from_secs(10);
    while bus.status() != kettle::bus::BusStatus::RedisConnected {
        ensure!(Instant::now() < deadline, "the bus did not connect to Redis: {}", bus.status().as_str());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // Our own subscriber, counting the notifications that go through Redis.
    let mut pubsub = client.get_async_pubsub().await?;
    pubsub.subscribe(format!("{prefix}:live:deliveries")).await?;
    let received = Arc::new(AtomicUsize::new(0));
    let counting = {
        let received = received.clone();
        tokio::spawn(async move {
            let mut messages = pubsub.into_on_message();
            while let Some(message) = messages.next().await {
                let Ok(payload) = message.get_payload::<String>() else { continue };
                let Ok(value) = serde_json::from_str::<serde_json::Value>(&payload) else { continue };
                let n = value["notifications"].as_array().map_or(0, Vec::len);
                received.fetch_add(n, Ordering::SeqCst);
            }
        })
    };

    let dispatcher = Dispatcher::new(db.clone());
    let started = Instant::now();
    let mut written = 0;
    let mut inbox = 0;
    let mut lost = 0;
    loop {
        let Some(batch) = dispatcher.round().await.map_err(AppError::into_anyhow)? else {
            // The lease expired while a batch was being planned or written (nobody else
            // runs here): `Dispatcher::run` sleeps a sweep (2 s), then takes it again.
            lost += 1;
            ensure!(lost <= 100, "the dispatcher keeps losing its lease: no progress");
            tokio::time::sleep(Duration::from_secs(2)).await;
            continue;
        };
        if batch.events == 0 && dispatch::pending_count(db).await.map_err(AppError::into_anyhow)? == 0 {
            break;
        }
        written += batch.written;
        inbox += batch.delivered.len();
        if !batch.delivered.is_empty() {
            bus.publish(kettle::bus::Delivery { notifications: batch.delivered });
        }
    }
    let committed = started.elapsed().as_secs_f64();
    let deadline = Instant::now() + Duration::from_secs(300);
    while received.load(Ordering::SeqCst) < inbox && Instant::now() < deadline {
        let dropped = bus.stats().dropped.load(Ordering::Relaxed);
        if dropped > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let delivered = started.elapsed().as_secs_f64();
    dispatcher.release().await;
    bus.stop();
    counting.abort();
    check(db, shape, written).await?;
    let dropped = bus.stats().dropped.load(Ordering::Relaxed);
    let through = received.load(Ordering::SeqCst);
    print_line("pg+redis", &format!("{} committed", shape.name()), written, shape.events(), committed);
    print_line("pg+redis", &format!("{} on Redis", shape.name()), through, shape.events(), delivered);
    if lost > 0 {
        println!("pg+redis   {} the lease lapsed {lost} times during the run (a batch outlasted it)", shape.name());
    }
    if through < inbox {
        println!(
            "pg+redis   {} only {through} of {inbox} inbox rows reached Redis ({dropped} deliveries dropped)",
            shape.name()
        );
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Profiling: every SQL statement timed, by statement (see `support::Profiler`), and
// planning timed alone.

/// Short names for statements, what each is for when it is one of the dispatcher's: the
/// first whose needle a statement contains.
const STATEMENT_NAMES: &[(&str, &str)] = &[
    ("INSERT INTO notifications", "dispatch: INSERT notification rows"),
    ("SET group_id = id WHERE id >", "dispatch: UPDATE group_id = id (all new)"),
    ("SET group_id = $1 WHERE id IN", "dispatch: UPDATE rows joining a group"),
    ("UPDATE notifications SET group_id", "dispatch: grouping UPDATE"),
    ("MIN(group_id), COUNT(*) FROM notifications", "dispatch: unread groups to join"),
    ("group_key FROM notifications WHERE id >", "dispatch: read back new inbox rows"),
    ("AS group_size FROM notifications n", "dispatch: read back new inbox rows"),
    ("UPDATE outbox_events SET dispatched_at", "dispatch: mark events dispatched"),
    ("FROM outbox_events WHERE dispatched_at IS NULL ORDER BY id", "dispatch: read pending events"),
    ("SELECT COALESCE(MAX(id), 0) FROM notifications", "dispatch: MAX(id) before"),
    ("INSERT INTO leases", "dispatch: lease taken (acquire)"),
    ("UPDATE leases", "dispatch: lease renewed"),
    ("DELETE FROM leases", "dispatch: lease released"),
    ("SELECT member_id, level FROM follows", "plan: followers (follower_levels)"),
    ("FROM notification_kinds_off", "plan: kinds switched off"),
    ("level = 'muted'", "plan: conversation muted"),
    ("kind = 'member.mentioned'", "plan: the comment's mentions"),
    ("FROM members", "plan: actor (member_by_id)"),
    ("FROM case_study_authors", "plan: case study authors"),
    ("FROM case_study_topics", "plan: case study topics"),
    ("FROM case_studies", "plan: case study"),
    ("FROM comments", "plan: comment"),
];

async fn profile(db: &Db, shape: Shape, profiler: &Profiler, label: &str) -> anyhow::Result<()> {
    // 1. The whole dispatch with every statement timed.
    profiler.start();
    let started = Instant::now();
    let written = dispatch::dispatch_pending(db).await.map_err(AppError::into_anyhow)?;
    let total = started.elapsed().as_secs_f64();
    let (statements, in_sql) = profiler.stop();
    check(db, shape, written).await?;

    // 2. Planning alone, over the same events (read the way the dispatcher reads them).
    db.pool.execute("UPDATE outbox_events SET dispatched_at = NULL").await?;
    let rows =
        sqlx::query(&format!("SELECT {} FROM outbox_events WHERE dispatched_at IS NULL ORDER BY id", outbox::COLUMNS))
            .fetch_all(&db.pool)
            .await?;
    let events: Vec<Recorded> = rows.iter().map(Recorded::from_row).collect::<sqlx::Result<_>>()?;
    let started = Instant::now();
    let mut planned = 0;
    for event in &events {
        planned += recipients::plan(db, event).await.map_err(AppError::into_anyhow)?.recipients.len();
    }
    let planning = started.elapsed().as_secs_f64();
    ensure!(planned == shape.rows(), "planning found {planned} recipients, not {}", shape.rows());

    println!(
        "profile {label} {}: {:.2} s with every statement logged ({} rows/s); planning alone {:.2} s \
         ({:.2} ms an event, {} recipients/s)",
        shape.name(),
        total,
        thousands((written as f64 / total) as usize),
        planning,
        planning * 1000.0 / events.len() as f64,
        thousands((planned as f64 / planning) as usize),
    );
    let table = Table { prefix: "  ", written: true, outside: "outside any statement (Rust work, waiting)", note: "" };
    print_profile(&table, &statements, in_sql, total);
    Ok(())
}
