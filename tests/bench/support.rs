//! Support shared by the benches that run on a scratch database (`digest` and `dispatch`,
//! each including this file with `#[path]`, since one bench target cannot import
//! another's modules): [`Database`], a fresh SQLite file or PostgreSQL database, and
//! [`drop_stale_databases`] for those a killed run left behind; [`Profiler`], which times
//! every SQL statement (sqlx's own statement log, caught by a tracing layer) and prints
//! the sums by statement; and [`thousands`].

use std::{
    collections::HashMap,
    sync::{
        atomic::{AtomicBool, AtomicUsize, Ordering},
        Arc, Mutex,
    },
    time::{Duration, Instant},
};

use anyhow::Context as _;
use kettle::{config::Config, db::Db};
use sqlx::{Connection, Executor, PgConnection};
use tracing_subscriber::Layer as _;

// ---------------------------------------------------------------------------------------
// Databases.

static DATABASES: AtomicUsize = AtomicUsize::new(0);

/// A name no other run uses: `prefix`, this process's id and a counter, as
/// `kettle_bench_digest_4242_0` (which [`drop_stale_databases`] reads the id back from).
pub fn scratch_name(prefix: &str) -> String {
    format!("{prefix}{}_{}", std::process::id(), DATABASES.fetch_add(1, Ordering::SeqCst))
}

/// Drops the benchmark databases named `prefix…` left behind by runs whose process is
/// gone (killed).
pub async fn drop_stale_databases(admin_url: &str, prefix: &str) {
    let Ok(mut conn) = PgConnection::connect(admin_url).await else { return };
    let names: Vec<String> = sqlx::query_scalar("SELECT datname FROM pg_database WHERE datname LIKE $1 || '%'")
        .bind(prefix)
        .fetch_all(&mut conn)
        .await
        .unwrap_or_default();
    for name in names {
        let pid = name.trim_start_matches(prefix).split('_').next().unwrap_or("");
        // Not a number: another bench's database (`kettle_bench_digest_…` under `kettle_bench_`).
        let is_pid = !pid.is_empty() && pid.bytes().all(|b| b.is_ascii_digit());
        if is_pid && !std::path::Path::new(&format!("/proc/{pid}")).exists() {
            let _ = conn.execute(format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)").as_str()).await;
        }
    }
}

/// A migrated database of its own: a SQLite file in a temporary directory, or, given
/// the admin URL, a PostgreSQL database created for it (see [`scratch_name`]).
pub struct Database {
    pub label: &'static str,
    pub db: Db,
    /// What it was opened with (the public URL is set, for mail's links).
    #[allow(dead_code, reason = "read by the digest bench only (for its mailer)")]
    pub config: Config,
    /// The SQLite file's directory, removed on drop.
    _dir: tempfile::TempDir,
    /// PostgreSQL: the admin URL and the database to drop.
    postgres: Option<(String, String)>,
}

impl Database {
    /// `prefix` starts a PostgreSQL database's name, as in [`scratch_name`].
    pub async fn create(admin_url: Option<&str>, prefix: &str) -> anyhow::Result<Database> {
        let dir = tempfile::tempdir()?;
        let (label, url, postgres) = match admin_url {
            None => ("sqlite", format!("sqlite://{}", dir.path().join("bench.db").display()), None),
            Some(admin_url) => {
                let name = scratch_name(prefix);
                let mut conn =
                    PgConnection::connect(admin_url).await.context("connect to KETTLE_BENCH_DATABASE_URL")?;
                conn.execute(format!("CREATE DATABASE \"{name}\"").as_str()).await?;
                conn.close().await?;
                let mut url = url::Url::parse(admin_url).context("KETTLE_BENCH_DATABASE_URL is a URL")?;
                url.set_path(&name);
                ("postgres", url.to_string(), Some((admin_url.to_string(), name)))
            }
        };
        let config = Config::from_vars([
            ("KETTLE_DATA_DIR".to_string(), dir.path().display().to_string()),
            ("KETTLE_DATABASE_URL".to_string(), url),
            ("KETTLE_PUBLIC_URL".to_string(), "https://kettle.example.org".to_string()),
        ])?;
        let db = Db::connect(&config).await?;
        db.migrate().await?;
        Ok(Database { label, db, config, _dir: dir, postgres })
    }

    /// Closes the pool and, on PostgreSQL, drops the database.
    pub async fn remove(&self) {
        self.db.pool.close().await;
        if let Some((admin_url, name)) = &self.postgres {
            if let Ok(mut conn) = PgConnection::connect(admin_url).await {
                let _ = conn.execute(format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)").as_str()).await;
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// Counting and timing statements: sqlx logs each one (`sqlx::query`), a layer here sums them.

#[derive(Default, Clone)]
pub struct Stat {
    pub count: u64,
    pub seconds: f64,
    pub returned: u64,
    /// Rows written (SELECTs' counts left out: SQLite reports the last write's for them).
    pub affected: u64,
}

/// Sums sqlx's per-statement log (`sqlx::query` events: elapsed, rows) by statement,
/// between [`Profiler::start`] and [`Profiler::stop`].
pub struct Profiler {
    on: AtomicBool,
    /// A statement's short name: the name of the first needle its SQL contains, else its
    /// first 60 characters.
    names: &'static [(&'static str, &'static str)],
    /// Statements starting with one of these are not counted at all.
    skip: &'static [&'static str],
    statements: Mutex<HashMap<String, Stat>>,
    /// When each statement ended, and how long it took: their union is the time spent in
    /// SQL (statements on several connections may overlap).
    intervals: Mutex<Vec<(Instant, f64)>>,
}

impl Profiler {
    /// Installs the tracing layer (once a process); `names` and `skip` as in [`Profiler`].
    pub fn install(names: &'static [(&'static str, &'static str)], skip: &'static [&'static str]) -> Arc<Profiler> {
        use tracing_subscriber::{filter::Targets, layer::SubscriberExt, util::SubscriberInitExt};
        let profiler = Arc::new(Profiler {
            on: AtomicBool::new(false),
            names,
            skip,
            statements: Mutex::new(HashMap::new()),
            intervals: Mutex::new(Vec::new()),
        });
        tracing_subscriber::registry()
            .with(Layer(profiler.clone()).with_filter(Targets::new().with_target("sqlx::query", tracing::Level::TRACE)))
            .init();
        profiler
    }

    /// Forgets what was counted so far and starts counting.
    pub fn start(&self) {
        self.statements.lock().unwrap_or_else(|e| e.into_inner()).clear();
        self.intervals.lock().unwrap_or_else(|e| e.into_inner()).clear();
        self.on.store(true, Ordering::SeqCst);
    }

    /// The statements run since [`Profiler::start`], by name, and the time spent in SQL
    /// (statements at the same time counted once).
    pub fn stop(&self) -> (HashMap<String, Stat>, f64) {
        self.on.store(false, Ordering::SeqCst);
        let statements = std::mem::take(&mut *self.statements.lock().unwrap_or_else(|e| e.into_inner()));
        let mut intervals: Vec<(Instant, Instant)> =
            std::mem::take(&mut *self.intervals.lock().unwrap_or_else(|e| e.into_inner()))
                .into_iter()
                .map(|(end, seconds)| (end.checked_sub(Duration::from_secs_f64(seconds)).unwrap_or(end), end))
                .collect();
        intervals.sort();
        let mut union = 0.0;
        let mut current: Option<(Instant, Instant)> = None;
        for (start, end) in intervals {
            current = match current {
                Some((s, e)) if start <= e => Some((s, e.max(end))),
                Some((s, e)) => {
                    union += (e - s).as_secs_f64();
                    Some((start, end))
                }
                None => Some((start, end)),
            };
        }
        if let Some((s, e)) = current {
            union += (e - s).as_secs_f64();
        }
        (statements, union)
    }

    /// A short name for a statement (see [`Profiler`]).
    fn statement_name(&self, sql: &str) -> String {
        let sql = sql.split_whitespace().collect::<Vec<_>>().join(" ");
        for (needle, name) in self.names {
            if sql.contains(needle) {
                return name.to_string();
            }
        }
        sql.chars().take(60).collect()
    }
}

struct Layer(Arc<Profiler>);

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Layer {
    fn on_event(&self, event: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        if !self.0.on.load(Ordering::Relaxed) {
            return;
        }
        #[derive(Default)]
        struct Fields {
            summary: String,
            statement: String,
            seconds: f64,
            returned: u64,
            affected: u64,
        }
        impl tracing::field::Visit for Fields {
            fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
                match field.name() {
                    "summary" => self.summary = value.to_string(),
                    "db.statement" => self.statement = value.to_string(),
                    _ => {}
                }
            }
            fn record_u64(&mut self, field: &tracing::field::Field, value: u64) {
                match field.name() {
                    "rows_returned" => self.returned = value,
                    "rows_affected" => self.affected = value,
                    _ => {}
                }
            }
            fn record_f64(&mut self, field: &tracing::field::Field, value: f64) {
                if field.name() == "elapsed_secs" {
                    self.seconds = value;
                }
            }
            fn record_debug(&mut self, _: &tracing::field::Field, _: &dyn std::fmt::Debug) {}
        }
        let end = Instant::now();
        let mut fields = Fields::default();
        event.record(&mut fields);
        let sql = if fields.statement.trim().is_empty() { &fields.summary } else { &fields.statement };
        if self.0.skip.iter().any(|prefix| sql.trim_start().starts_with(prefix)) {
            return;
        }
        self.0.intervals.lock().unwrap_or_else(|e| e.into_inner()).push((end, fields.seconds));
        let key = self.0.statement_name(sql);
        let mut statements = self.0.statements.lock().unwrap_or_else(|e| e.into_inner());
        let stat = statements.entry(key).or_default();
        stat.count += 1;
        stat.seconds += fields.seconds;
        stat.returned += fields.returned;
        if !sql.trim_start().to_ascii_uppercase().starts_with("SELECT") {
            stat.affected += fields.affected;
        }
    }
}

/// How the statements table looks: each line starts with `prefix`, `written` adds a
/// column of rows written, `outside` names the last line (the time outside SQL) and
/// `note` follows its sum of the statements' times.
pub struct Table<'a> {
    pub prefix: &'a str,
    pub written: bool,
    pub outside: &'a str,
    pub note: &'a str,
}

/// Prints `statements` (from [`Profiler::stop`]), slowest first, with their shares of
/// `total` seconds, then the time outside SQL (`total - in_sql`).
pub fn print_profile(table: &Table<'_>, statements: &HashMap<String, Stat>, in_sql: f64, total: f64) {
    let prefix = table.prefix;
    let mut sorted: Vec<(&String, &Stat)> = statements.iter().collect();
    sorted.sort_by(|a, b| b.1.seconds.total_cmp(&a.1.seconds));
    let summed: f64 = sorted.iter().map(|(_, s)| s.seconds).sum();
    let written = if table.written { format!(" {:>10}", "written") } else { String::new() };
    println!("{prefix}{:<42} {:>8} {:>9} {:>6} {:>10}{written}", "statement", "count", "seconds", "share", "returned");
    for (name, stat) in &sorted {
        let written = if table.written { format!(" {:>10}", thousands(stat.affected as usize)) } else { String::new() };
        println!(
            "{prefix}{name:<42} {:>8} {:>9.3} {:>5.1}% {:>10}{written}",
            thousands(stat.count as usize),
            stat.seconds,
            100.0 * stat.seconds / total,
            thousands(stat.returned as usize)
        );
    }
    println!(
        "{prefix}{:<42} {:>8} {:>9.3} {:>5.1}%  (statements summed: {summed:.3} s{})",
        table.outside,
        "",
        total - in_sql,
        100.0 * (total - in_sql) / total,
        table.note
    );
}

/// 12345 as "12,345".
pub fn thousands(n: usize) -> String {
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
