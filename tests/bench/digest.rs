//! How fast digests are built and queued: digests a second that
//! `kettle::mail::digest::sweep` builds, renders and queues while sweeping a population
//! whose digests are all due, on SQLite (a temporary file) and, when
//! `KETTLE_BENCH_DATABASE_URL` is set, on PostgreSQL (a fresh database created here and
//! dropped afterwards, so the URL's user must be allowed to create databases). The
//! issue's goal: at least 2,000 a second on PostgreSQL for 100,000 members following 200
//! topics (Discourse enqueues a job per user). It also shows that a sweep with nobody due
//! costs one indexed query: it counts the statements such a sweep runs, and prints the
//! due query's plan, which must use `members_next_digest`.
//!
//! ```text
//! export CARGO_TARGET_DIR=$HOME/.cache/kettle-ci/target
//! cargo bench --bench digest                        # full size, SQLite only
//! KETTLE_BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres \
//!   cargo bench --bench digest                      # SQLite and PostgreSQL
//! cargo bench --bench digest -- --quick             # small size: seconds a backend
//! cargo bench --bench digest -- --backend=postgres  # one backend (sqlite or postgres)
//! cargo bench --bench digest -- --profile           # also: where the time goes
//! cargo test --bench digest                         # a smoke run (small size, debug build)
//! ```
//! `KETTLE_BENCH_QUICK=1` is the same as `--quick`. Run without `--bench` (as `cargo test
//! --all-targets` does) it uses the quick size, as a smoke test that the figures are
//! real: every run checks that each member got exactly one digest, with what their
//! notifications imply, and that afterwards nobody is due.
//!
//! The population, inserted with bulk SQL (what the dispatcher would have written, much
//! faster): M members, verified, weekly digests, all due now, in a few time zones; 200
//! topics, each member following one or two; per topic three published case studies
//! (useful marks 0..5), two artefacts (reuse counts 0..7), a meetup next month and a
//! conversation with two new comments; and one `digest` notification row per member,
//! followed topic and item (8 per topic: 8 to 16 per member, about 12 on average). On
//! PostgreSQL, VACUUM ANALYZE after setting up, as autovacuum would.
//!
//! `--profile` runs the sweep once more with every SQL statement timed (sqlx's statement
//! log, caught by the tracing layer in `support.rs`), summed by statement, so the report
//! says how much of the time is reading, writing, or outside SQL (building and rendering).

#[path = "support.rs"]
mod support;

use std::{fmt::Write as _, time::Instant};

use anyhow::{ensure, Context as _};
use kettle::{
    db::{Db, Dialect},
    error::AppError,
    mail::{digest, Mailer},
};
use sqlx::{Executor, Row};
use support::{drop_stale_databases, print_profile, thousands, Database, Profiler, Table};

/// Starts the name of each PostgreSQL database created here.
const DATABASE_PREFIX: &str = "kettle_bench_digest_";

struct Options {
    quick: bool,
    profile: bool,
    backend: Option<String>,
}

fn options() -> Options {
    let args: Vec<String> = std::env::args().collect();
    let quick = !args.iter().any(|a| a == "--bench")
        || args.iter().any(|a| a == "--quick")
        || std::env::var("KETTLE_BENCH_QUICK").is_ok_and(|v| v == "1");
    let profile = args.iter().any(|a| a == "--profile");
    let backend = args.iter().find_map(|a| a.strip_prefix("--backend=")).map(str::to_string);
    Options { quick, profile, backend }
}

/// Members and topics.
fn size(quick: bool) -> (usize, usize) {
    if quick {
        (2_000, 20)
    } else {
        (100_000, 200)
    }
}

fn main() -> anyhow::Result<()> {
    let options = options();
    let profiler = Profiler::install(STATEMENT_NAMES, SKIPPED_STATEMENTS);
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(run(&options, &profiler))
}

async fn run(options: &Options, profiler: &Profiler) -> anyhow::Result<()> {
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let load = load.split_whitespace().take(3).collect::<Vec<_>>().join(" ");
    let (members, topics) = size(options.quick);
    println!(
        "digests: {cores} cores (load average {load}), {} build, {} members following {} topics{}",
        if cfg!(debug_assertions) { "debug" } else { "optimised" },
        thousands(members),
        topics,
        if std::env::args().any(|a| a == "--bench") { "" } else { " (smoke run: pass --bench for figures)" },
    );
    let postgres = std::env::var("KETTLE_BENCH_DATABASE_URL").ok().filter(|u| !u.is_empty());
    if postgres.is_none() {
        println!("PostgreSQL skipped: set KETTLE_BENCH_DATABASE_URL to run it");
    }
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
        let name = if admin_url.is_some() { "postgres" } else { "sqlite" };
        let database = Database::create(admin_url.map(String::as_str), DATABASE_PREFIX).await?;
        let outcome = scenario(&database, members, topics, profiler, false).await;
        database.remove().await;
        outcome.with_context(|| format!("on {name}"))?;
        if options.profile {
            let database = Database::create(admin_url.map(String::as_str), DATABASE_PREFIX).await?;
            let outcome = scenario(&database, members, topics, profiler, true).await;
            database.remove().await;
            outcome.with_context(|| format!("profiling on {name}"))?;
        }
    }
    Ok(())
}

/// Sets the population up, sweeps until nobody is due, checks, and prints the figures.
async fn scenario(
    database: &Database,
    members: usize,
    topics: usize,
    profiler: &Profiler,
    profile: bool,
) -> anyhow::Result<()> {
    let (db, label) = (&database.db, database.label);
    let mailer = &Mailer::new(&database.config, db).await?;
    let now = kettle::db::now_millis();
    let started = Instant::now();
    let rows = populate(db, members, topics, now).await?;
    let setup = started.elapsed().as_secs_f64();
    println!(
        "{label:<8} set up {} members, {} digest notifications ({:.1} a member) in {setup:.1} s",
        thousands(members),
        thousands(rows),
        rows as f64 / members as f64
    );

    profiler.start();
    let started = Instant::now();
    let mut total = digest::SweepOutcome::default();
    let mut sweeps = 0;
    loop {
        let outcome = digest::sweep(db, mailer, now).await.map_err(AppError::into_anyhow)?;
        sweeps += 1;
        total.due += outcome.due;
        total.sent += outcome.sent;
        total.empty += outcome.empty;
        total.off += outcome.off;
        total.skipped += outcome.skipped;
        if outcome.due as i64 != digest::BATCH || !outcome.progressed() {
            break;
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    let (profiled, in_sql) = profiler.stop();
    ensure!(total.sent == members, "{} digests sent, not {members}: {total:?}", total.sent);
    let queued: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM mail_queue WHERE template = 'digest'").fetch_one(&db.pool).await?;
    ensure!(queued as usize == members, "{queued} digests queued, not {members}");
    let distinct: i64 =
        sqlx::query_scalar("SELECT COUNT(DISTINCT member_id) FROM mail_queue WHERE template = 'digest'")
            .fetch_one(&db.pool)
            .await?;
    ensure!(distinct as usize == members, "{distinct} members got a digest, not {members}");
    let sample: String =
        sqlx::query_scalar("SELECT subject FROM mail_queue WHERE template = 'digest' ORDER BY id LIMIT 1")
            .fetch_one(&db.pool)
            .await?;
    let bytes: i64 = sqlx::query_scalar(
        "SELECT CAST(SUM(LENGTH(text_body) + LENGTH(html_body)) AS BIGINT) FROM mail_queue WHERE template = 'digest'",
    )
    .fetch_one(&db.pool)
    .await?;
    println!(
        "{label:<8} {}swept {} due digests in {sweeps} sweeps, {seconds:.2} s: {} digests built and queued a second \
         ({:.1} ms a sweep of {}; {:.1} KB of mail each)",
        if profile { "(profiled) " } else { "" },
        thousands(total.due),
        thousands((total.sent as f64 / seconds) as usize),
        seconds * 1000.0 / sweeps as f64,
        digest::BATCH,
        bytes as f64 / members as f64 / 1024.0,
    );
    println!("{label:<8} e.g. \"{sample}\"");
    if profile {
        let table = Table {
            prefix: &format!("{label:<8} "),
            written: false,
            outside: "outside SQL (building, rendering)",
            note: "; they overlap when several writers run",
        };
        print_profile(&table, &profiled, in_sql, seconds);
        print_rendering(label)?;
        return Ok(());
    }

    // Nobody is due now: a sweep is one statement, through the index.
    profiler.start();
    let outcome = digest::sweep(db, mailer, now).await.map_err(AppError::into_anyhow)?;
    let (ran, _) = profiler.stop();
    ensure!(outcome == digest::SweepOutcome::default(), "somebody is still due: {outcome:?}");
    let count: u64 = ran.values().map(|s| s.count).sum();
    println!(
        "{label:<8} a sweep with nobody due ran {count} statement{}: {}",
        if count == 1 { "" } else { "s" },
        ran.keys().cloned().collect::<Vec<_>>().join(" | ")
    );
    ensure!(count == 1, "a sweep with nobody due ran {count} statements");
    let plan = plan(db, now).await?;
    println!("{label:<8} its plan: {}", plan.join(" / "));
    ensure!(plan.iter().any(|l| l.contains("members_next_digest")), "the due query does not use members_next_digest");
    Ok(())
}

/// The due query's plan on `db`.
async fn plan(db: &Db, now: i64) -> anyhow::Result<Vec<String>> {
    let explain = match db.dialect {
        Dialect::Sqlite => format!("EXPLAIN QUERY PLAN {}", digest::DUE_SQL),
        Dialect::Postgres => format!("EXPLAIN {}", digest::DUE_SQL),
    };
    let rows = sqlx::query(&explain).bind(now).bind(digest::BATCH).fetch_all(&db.pool).await?;
    rows.iter()
        .map(|row| {
            Ok(match db.dialect {
                Dialect::Sqlite => row.try_get::<String, _>("detail")?,
                Dialect::Postgres => row.try_get::<String, _>(0)?.trim().to_string(),
            })
        })
        .collect()
}

// ---------------------------------------------------------------------------------------
// The population.

/// Inserts everything (see the module comment); returns the digest rows written.
async fn populate(db: &Db, members: usize, topics: usize, now: i64) -> anyhow::Result<usize> {
    let pool = &db.pool;
    pool.execute(
        format!(
            "INSERT INTO members (email, email_normalized, handle, display_name, created_at, updated_at) \
             VALUES ('author@bench.example', 'author@bench.example', 'author', 'Ada Author', {now}, {now})"
        )
        .as_str(),
    )
    .await?;
    let author: i64 = sqlx::query_scalar("SELECT id FROM members WHERE handle = 'author'").fetch_one(pool).await?;
    let zones = ["Europe/London", "America/New_York", "Europe/Paris", "Asia/Kolkata", "Australia/Sydney"];
    insert_rows(
        db,
        "INSERT INTO members (email, email_normalized, handle, display_name, time_zone, created_at, updated_at, \
         email_verified_at, digest_frequency, digest_weekday, digest_hour, next_digest_at) VALUES ",
        members,
        |i, sql| {
            let zone = zones[i % zones.len()];
            let due = now - (i as i64 % 3_600) * 1_000;
            write!(
                sql,
                "('m{i}@bench.example', 'm{i}@bench.example', 'm-{i}', 'Member {i}', '{zone}', {now}, {now}, {now}, \
                 'weekly', {}, {}, {due})",
                i % 7 + 1,
                i % 24
            )
        },
    )
    .await?;
    insert_rows(db, "INSERT INTO topics (slug, name, created_at, updated_at) VALUES ", topics, |t, sql| {
        write!(sql, "('topic-{t}', 'Topic {t}', {now}, {now})")
    })
    .await?;
    // Members follow one or two topics, by the digest.
    pool.execute(
        format!(
            "INSERT INTO follows (member_id, target_type, target_id, level, created_at, updated_at) \
             SELECT m.id, 'Topic', t.id, 'digest', {now}, {now} FROM members m JOIN topics t \
             ON t.slug = 'topic-' || CAST(m.id % {topics} AS TEXT) WHERE m.id <> {author}"
        )
        .as_str(),
    )
    .await?;
    pool.execute(
        format!(
            "INSERT INTO follows (member_id, target_type, target_id, level, created_at, updated_at) \
             SELECT m.id, 'Topic', t.id, 'digest', {now}, {now} FROM members m JOIN topics t \
             ON t.slug = 'topic-' || CAST((m.id * 7 + 3) % {topics} AS TEXT) \
             WHERE m.id <> {author} AND m.id % 2 = 0 AND (m.id * 7 + 3) % {topics} <> m.id % {topics}"
        )
        .as_str(),
    )
    .await?;

    // What is new in each topic: case studies, artefacts, a meetup, comments.
    let topic_ids: Vec<i64> = sqlx::query_scalar("SELECT id FROM topics ORDER BY id").fetch_all(pool).await?;
    insert_rows(
        db,
        "INSERT INTO case_studies (title, summary, body_source, body_html, phase, author_id, status, version, \
         created_at, updated_at, published_at) VALUES ",
        topics * 3,
        |i, sql| {
            write!(
                sql,
                "('Case study {i}: reminders by text for topic {}', 'A summary.', 'Body.', '<p>Body.</p>', 'live', \
                 {author}, 'published', 1, {now}, {now}, {now})",
                i / 3
            )
        },
    )
    .await?;
    let case_studies: Vec<i64> = sqlx::query_scalar("SELECT id FROM case_studies ORDER BY id").fetch_all(pool).await?;
    insert_rows(db, "INSERT INTO case_study_topics (case_study_id, topic_id) VALUES ", case_studies.len(), |i, sql| {
        write!(sql, "({}, {})", case_studies[i], topic_ids[i / 3])
    })
    .await?;
    // Useful marks: 0..5 a case study, from the first members.
    let marks: Vec<(i64, i64)> =
        case_studies.iter().enumerate().flat_map(|(i, c)| (0..(i % 6) as i64).map(move |m| (*c, m + 2))).collect();
    insert_rows(
        db,
        "INSERT INTO case_study_marks (case_study_id, member_id, kind, created_at) VALUES ",
        marks.len(),
        |i, sql| write!(sql, "({}, {}, 'useful', {now})", marks[i].0, marks[i].1),
    )
    .await?;
    insert_rows(
        db,
        "INSERT INTO artefacts (title, kind, description_source, description_html, url, licence, status, created_by, \
         reuse_count, version, created_at, updated_at) VALUES ",
        topics * 2,
        |i, sql| {
            write!(
                sql,
                "('Artefact {i}', 'code', 'A kit.', '<p>A kit.</p>', 'https://example.org/{i}', 'MIT', 'in_use', \
                 {author}, {}, 1, {now}, {now})",
                i % 8
            )
        },
    )
    .await?;
    let artefacts: Vec<i64> = sqlx::query_scalar("SELECT id FROM artefacts ORDER BY id").fetch_all(pool).await?;
    pool.execute(
        format!(
            "INSERT INTO meetup_groups (slug, name, description_source, description_html, region, created_by, \
             created_at, updated_at) VALUES ('bench', 'Bench group', '', '', 'North West', {author}, {now}, {now})"
        )
        .as_str(),
    )
    .await
    .context("a meetup group (check the columns of meetup_groups)")?;
    let group: i64 = sqlx::query_scalar("SELECT id FROM meetup_groups").fetch_one(pool).await?;
    let month = 30 * 86_400_000i64;
    insert_rows(
        db,
        "INSERT INTO meetup_events (group_id, title, description_source, description_html, time_zone, local_start, \
         local_end, starts_at, ends_at, status, created_by, created_at, updated_at) VALUES ",
        topics,
        |i, sql| {
            let start = now + month + i as i64 * 3_600_000;
            write!(
                sql,
                "({group}, 'Meetup {i}', '', '', 'Europe/London', '2030-01-01T18:00', '2030-01-01T20:00', {start}, \
                 {}, 'scheduled', {author}, {now}, {now})",
                start + 7_200_000
            )
        },
    )
    .await?;
    let meetups: Vec<i64> = sqlx::query_scalar("SELECT id FROM meetup_events ORDER BY id").fetch_all(pool).await?;

    // Per topic, 8 items, each what one outbox event would tell the topic's followers.
    pool.execute(
        "CREATE TABLE bench_items (topic_id BIGINT NOT NULL, event_id BIGINT NOT NULL, kind TEXT NOT NULL, \
         subject_type TEXT NOT NULL, subject_id BIGINT NOT NULL, title TEXT NOT NULL, summary TEXT NOT NULL, \
         path TEXT NOT NULL)",
    )
    .await?;
    let mut items: Vec<(i64, &str, &str, i64, String, String, String)> = Vec::new();
    for (t, topic) in topic_ids.iter().enumerate() {
        for c in &case_studies[t * 3..t * 3 + 3] {
            let title = format!("Case study {c}");
            items.push((
                *topic,
                "new_case_study",
                "CaseStudy",
                *c,
                title.clone(),
                format!("Ada Author published “{title}”"),
                format!("/case-studies/{c}"),
            ));
        }
        for a in &artefacts[t * 2..t * 2 + 2] {
            let title = format!("Artefact {a}");
            items.push((
                *topic,
                "new_artefact",
                "Artefact",
                *a,
                title.clone(),
                format!("Ada Author published the artefact “{title}”"),
                format!("/artefacts/{a}"),
            ));
        }
        let m = meetups[t];
        items.push((
            *topic,
            "new_meetup",
            "MeetupEvent",
            m,
            format!("Meetup {m}"),
            format!("New meetup in Bench group: “Meetup {m}”"),
            format!("/meetups/events/{m}"),
        ));
        let c = case_studies[t * 3];
        for n in 0..2 {
            items.push((
                *topic,
                "new_comment",
                "CaseStudy",
                c,
                format!("Case study {c}"),
                format!("Someone commented on “Case study {c}”"),
                format!("/case-studies/{c}#comment-{}", t * 2 + n),
            ));
        }
    }
    insert_rows(
        db,
        "INSERT INTO bench_items (topic_id, event_id, kind, subject_type, subject_id, title, summary, path) VALUES ",
        items.len(),
        |i, sql| {
            let (topic, kind, subject_type, subject_id, title, summary, path) = &items[i];
            write!(
                sql,
                "({topic}, {}, '{kind}', '{subject_type}', {subject_id}, '{title}', '{summary}', '{path}')",
                i + 1
            )
        },
    )
    .await?;
    let written = pool
        .execute(
            format!(
                "INSERT INTO notifications (member_id, event_id, kind, channel, subject_type, subject_id, subject_title, \
                 actor_id, group_key, group_id, summary, path, created_at) \
                 SELECT f.member_id, i.event_id, i.kind, 'digest', i.subject_type, i.subject_id, i.title, {author}, \
                 'event:' || CAST(i.event_id AS TEXT), 0, i.summary, i.path, {now} \
                 FROM follows f JOIN bench_items i ON i.topic_id = f.target_id AND f.target_type = 'Topic'"
            )
            .as_str(),
        )
        .await?
        .rows_affected();
    pool.execute("UPDATE notifications SET group_id = id").await?;
    if db.dialect == Dialect::Postgres {
        pool.execute("VACUUM ANALYZE").await?;
    }
    Ok(written as usize)
}

/// Inserts `n` rows, `row` writing the i-th one's `(…)`, 500 to a statement.
async fn insert_rows(
    db: &Db,
    head: &str,
    n: usize,
    row: impl Fn(usize, &mut String) -> std::fmt::Result,
) -> anyhow::Result<()> {
    let indices: Vec<usize> = (0..n).collect();
    for chunk in indices.chunks(500) {
        let mut sql = String::from(head);
        for (k, i) in chunk.iter().enumerate() {
            if k > 0 {
                sql.push_str(", ");
            }
            row(*i, &mut sql)?;
        }
        db.pool.execute(sql.as_str()).await?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Profiling: the sweep's statements, by name (see `support::Profiler`).

/// Short names for the sweep's statements: the first whose needle a statement contains.
const STATEMENT_NAMES: &[(&str, &str)] = &[
    ("WHERE next_digest_at IS NOT NULL AND next_digest_at <=", "due members (members_next_digest)"),
    ("WITH due AS", "what the digests cover (notifications)"),
    ("FROM case_studies c", "case studies and useful marks"),
    ("FROM artefacts", "artefacts and reuse counts"),
    ("FROM meetup_events", "meetups"),
    ("FOR UPDATE SKIP LOCKED", "lock the batch's members"),
    ("UPDATE members SET next_digest_at", "advance schedules and cursors (CAS)"),
    ("INSERT INTO mail_queue", "queue one digest"),
    ("BEGIN", "BEGIN"),
    ("COMMIT", "COMMIT"),
];

/// A new pooled connection's set-up is not the sweep's.
const SKIPPED_STATEMENTS: &[&str] = &["PRAGMA"];

/// How long rendering one digest like the benchmark's takes (both parts).
fn print_rendering(label: &str) -> anyhow::Result<()> {
    let item = |title: &str, path: &str, detail: Option<&str>, starts_at: Option<i64>| serde_json::json!({ "title": title, "path": path, "detail": detail, "starts_at": starts_at });
    let context = serde_json::json!({
        "name": "Member 12",
        "zone": "Europe/London",
        "frequency": "weekly",
        "base_url": "https://kettle.example.org",
        "subject": "Your weekly Kettle digest: 3 case studies, 2 artefacts, 1 meetup, 1 busy conversation",
        "unsubscribe_url": "https://kettle.example.org/unsubscribe/12.digest.0123456789abcdef0123456789abcdef",
        "sections": [
            { "key": "case_studies", "title": "New case studies", "more": 0, "more_path": "/notifications/new", "items": [
                item("Case study 1: reminders by text", "/case-studies/1", Some("marked useful by 5 people"), None),
                item("Case study 2: reminders by text", "/case-studies/2", Some("marked useful by 1 person"), None),
                item("Case study 3: reminders by text", "/case-studies/3", None, None) ] },
            { "key": "artefacts", "title": "New artefacts", "more": 0, "more_path": "/notifications/new", "items": [
                item("Artefact 1", "/artefacts/1", Some("used by 7 organisations"), None),
                item("Artefact 2", "/artefacts/2", Some("not reused yet"), None) ] },
            { "key": "meetups", "title": "Meetups coming up", "more": 0, "more_path": "/meetups", "items": [
                item("Meetup 1", "/meetups/events/1", None, Some(1_900_000_000_000i64)) ] },
            { "key": "conversations", "title": "Busy conversations", "more": 0, "more_path": "/notifications/new", "items": [
                item("2 new comments on “Case study 1”", "/case-studies/1", None, None) ] },
        ],
    });
    let runs = 2_000;
    let started = Instant::now();
    for _ in 0..runs {
        kettle::mail::render::render("digest", &context).map_err(AppError::into_anyhow)?;
    }
    println!(
        "{label:<8} rendering one such digest (text and HTML) alone: {:.0} µs",
        started.elapsed().as_secs_f64() * 1e6 / runs as f64
    );
    Ok(())
}
