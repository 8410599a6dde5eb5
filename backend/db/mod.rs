//! Storage: one SQL layer for SQLite and PostgreSQL.
//!
//! We use sqlx's `Any` driver rather than two typed pools behind a trait. Every query is
//! written once, with `$1` placeholders, and runs on both databases; the few things that
//! truly differ (how a write transaction begins, full-text search, claiming jobs) live in
//! [`Dialect`]. The price is that columns stay within the types `Any` maps — integers,
//! floats, text and blobs — so ids are `BIGINT`, instants are `BIGINT` Unix milliseconds
//! (see [`now_millis`]), enums are `TEXT` with `CHECK` constraints and flags are nullable
//! timestamps. Measured on this machine, keyset pages through `Any` cost the same as
//! through the native drivers (see ARCHITECTURE.md, "Data"); if a hot path ever shows otherwise,
//! that path can take the native pool out of [`Db`] without changing the rest.
//!
//! SQLite runs in WAL mode with foreign keys on and a busy timeout, and write transactions
//! begin `IMMEDIATE` ([`Db::begin_write`]) so that two writers queue for the lock instead
//! of failing when a read transaction tries to upgrade.

use std::{borrow::Cow, collections::HashMap, str::FromStr, time::Duration};

use anyhow::{anyhow, Context};
use secrecy::ExposeSecret;
use sqlx::{
    any::AnyPoolOptions,
    migrate::{Migration, MigrationType, Migrator},
    sqlite::{SqliteConnectOptions, SqliteJournalMode},
    AnyPool, ConnectOptions, Connection, Executor, Row, Transaction,
};

use crate::config::{redact_url, Config};

pub mod text_enum;

mod migrations {
    include!(concat!(env!("OUT_DIR"), "/migrations.rs"));
}

pub type Tx = Transaction<'static, sqlx::Any>;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

impl Dialect {
    pub fn name(self) -> &'static str {
        match self {
            Dialect::Sqlite => "SQLite",
            Dialect::Postgres => "PostgreSQL",
        }
    }

    /// Which database a transaction is on, for code given a transaction rather than a [`Db`].
    pub fn of(tx: &mut Tx) -> Dialect {
        if tx.backend_name() == Dialect::Sqlite.name() {
            Dialect::Sqlite
        } else {
            Dialect::Postgres
        }
    }

    /// What locks the rows a `SELECT` reads until the transaction ends: nothing on SQLite,
    /// whose write transactions already exclude other writers.
    pub fn for_update(self) -> &'static str {
        match self {
            Dialect::Sqlite => "",
            Dialect::Postgres => " FOR UPDATE",
        }
    }

    /// Compares text byte by byte, whatever the database's collation: what a range on
    /// ASCII text (a prefix, `>= 'ab' AND < 'ab\x7f'`) needs to mean what it says.
    /// SQLite's default already does; PostgreSQL's follows the locale, which skips
    /// punctuation. An index the range is to use must be made with the same collation.
    pub fn bytewise(self) -> &'static str {
        match self {
            Dialect::Sqlite => "",
            Dialect::Postgres => " COLLATE \"C\"",
        }
    }

    /// The statement that opens a transaction which will write.
    fn begin_write(self) -> &'static str {
        match self {
            // Take the write lock up front: a deferred transaction that reads and then
            // writes fails with SQLITE_BUSY when another writer got there first.
            Dialect::Sqlite => "BEGIN IMMEDIATE",
            Dialect::Postgres => "BEGIN",
        }
    }
}

/// The shared connection pool and the dialect it speaks.
#[derive(Clone)]
pub struct Db {
    pub pool: AnyPool,
    pub dialect: Dialect,
}

impl Db {
    /// Connects to the configured database, creating the SQLite file (and the data
    /// directory) when they do not exist yet.
    pub async fn connect(config: &Config) -> anyhow::Result<Db> {
        sqlx::any::install_default_drivers();
        let url = config.database_url.expose_secret();
        let shown = redact_url(url);
        let dialect = if url.starts_with("sqlite:") { Dialect::Sqlite } else { Dialect::Postgres };

        // No ping before handing out a pooled connection: sqlx's default makes a round trip
        // to the database before every statement (a profile of the front page put 11% of
        // the server's CPU in those pings, against 12% in the statements themselves). A
        // connection that died while idle fails its next statement instead, and the pool
        // drops it; sqlx closes connections idle for ten minutes in any case.
        let mut options = AnyPoolOptions::new().acquire_timeout(Duration::from_secs(5)).test_before_acquire(false);
        if dialect == Dialect::Sqlite {
            prepare_sqlite_file(url).await.with_context(|| format!("could not open the SQLite database {shown}"))?;
            options = options.max_connections(8).after_connect(|conn, _| {
                Box::pin(async move {
                    // WAL is a property of the file (set in prepare_sqlite_file); these two
                    // are per connection. NORMAL sync is durable across crashes under WAL.
                    conn.execute("PRAGMA synchronous = NORMAL; PRAGMA busy_timeout = 10000").await?;
                    Ok(())
                })
            });
        } else {
            options = options.max_connections(16).after_connect(|conn, _| {
                Box::pin(async move {
                    // No JIT compilation: Kettle's statements run in milliseconds, and a plan
                    // whose estimate passes `jit_above_cost` (a filtered search, whose bounded
                    // subqueries are costed as if unbounded) spent 50 ms compiling to run 2 ms.
                    conn.execute("SET jit = off").await?;
                    Ok(())
                })
            });
        }

        let pool = options
            .connect(url)
            .await
            .map_err(|e| anyhow!("could not connect to the database at {shown}: {}", describe(&e)))?;
        Ok(Db { pool, dialect })
    }

    /// Applies every migration not yet applied. Safe to run from several instances at once:
    /// PostgreSQL takes an advisory lock, SQLite its write lock.
    pub async fn migrate(&self) -> anyhow::Result<()> {
        let migrations: Vec<Migration> = migrations::MIGRATIONS
            .iter()
            .map(|&(version, description, sqlite, postgres)| {
                let sql = match self.dialect {
                    Dialect::Sqlite => sqlite,
                    Dialect::Postgres => postgres,
                };
                Migration::new(version, Cow::Borrowed(description), MigrationType::Simple, Cow::Borrowed(sql), false)
            })
            .collect();
        let migrator = Migrator { migrations: Cow::Owned(migrations), ..Migrator::DEFAULT };
        migrator.run(&self.pool).await.map_err(|e| anyhow!("could not migrate the database: {e}"))?;
        Ok(())
    }

    /// Opens a transaction for work that writes.
    pub async fn begin_write(&self) -> sqlx::Result<Tx> {
        self.pool.begin_with(self.dialect.begin_write()).await
    }

    /// A cheap round trip, for readiness checks.
    pub async fn ping(&self) -> sqlx::Result<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await.map(|_| ())
    }
}

async fn prepare_sqlite_file(url: &str) -> anyhow::Result<()> {
    let options = SqliteConnectOptions::from_str(url)?.create_if_missing(true).journal_mode(SqliteJournalMode::Wal);
    if let Some(parent) = options.get_filename().parent() {
        if !parent.as_os_str().is_empty() {
            std::fs::create_dir_all(parent).with_context(|| format!("could not create {}", parent.display()))?;
        }
    }
    let conn = options.connect().await.map_err(|e| anyhow!(describe(&e)))?;
    conn.close().await?;
    Ok(())
}

/// A short description of a connection failure, without the URL (which may hold secrets).
fn describe(err: &sqlx::Error) -> String {
    match err {
        sqlx::Error::Io(io) => io.to_string(),
        sqlx::Error::PoolTimedOut => "no connection within 5 seconds".into(),
        sqlx::Error::Database(db) => db.message().to_string(),
        other => other.to_string(),
    }
}

/// True when `err` is a unique-constraint violation on `table.column`.
///
/// PostgreSQL reports the constraint's name, which our migrations keep at PostgreSQL's
/// default `<table>_<column>_key`; SQLite reports `table.column` in its message.
pub fn is_unique_violation(err: &sqlx::Error, table: &str, column: &str) -> bool {
    let sqlx::Error::Database(db) = err else { return false };
    if !db.is_unique_violation() {
        return false;
    }
    match db.constraint() {
        Some(name) => name == format!("{table}_{column}_key"),
        None => db.message().contains(&format!("{table}.{column}")),
    }
}

/// Milliseconds since the Unix epoch, UTC: how every instant is stored.
pub fn now_millis() -> i64 {
    jiff::Timestamp::now().as_millisecond()
}

/// Runs `select` (which ends in `WHERE <column> IN`) for a list of ids, in one
/// statement. What the DataLoaders call.
pub async fn rows_by_ids(db: &Db, select: &str, ids: &[i64]) -> sqlx::Result<Vec<sqlx::any::AnyRow>> {
    rows_by_ids_grouped(db, select, ids, "").await
}

/// [`rows_by_ids`] with a tail after the id list, such as `GROUP BY …` or `ORDER BY …`.
pub async fn rows_by_ids_grouped(
    db: &Db,
    select: &str,
    ids: &[i64],
    tail: &str,
) -> sqlx::Result<Vec<sqlx::any::AnyRow>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let sql = format!("{select} ({}) {tail}", placeholders(1, ids.len()));
    let mut query = sqlx::query(&sql);
    for id in ids {
        query = query.bind(*id);
    }
    query.fetch_all(&db.pool).await
}

/// `(id, other id)` rows of `select` (which ends in `WHERE <column> IN`) grouped by the
/// first, in the order `tail` sorts them; every id asked for gets an entry. What the
/// link-table loaders (topics, authors, artefacts of an item) call.
pub async fn id_lists(db: &Db, select: &str, ids: &[i64], tail: &str) -> sqlx::Result<HashMap<i64, Vec<i64>>> {
    let mut map: HashMap<i64, Vec<i64>> = ids.iter().map(|id| (*id, Vec::new())).collect();
    for row in rows_by_ids_grouped(db, select, ids, tail).await? {
        map.entry(row.try_get(0)?).or_default().push(row.try_get(1)?);
    }
    Ok(map)
}

/// `(id, count)` rows of `select` (a `SELECT id, COUNT(*) … WHERE <column> IN`), grouped by
/// `group_by`; every id asked for gets an entry, zero when it has no rows.
pub async fn counts(db: &Db, select: &str, ids: &[i64], group_by: &str) -> sqlx::Result<HashMap<i64, i64>> {
    let mut counts: HashMap<i64, i64> = ids.iter().map(|id| (*id, 0)).collect();
    for row in rows_by_ids_grouped(db, select, ids, &format!("GROUP BY {group_by}")).await? {
        counts.insert(row.try_get(0)?, row.try_get(1)?);
    }
    Ok(counts)
}

/// One page of rows in (name, id) order: `select` is a `SELECT … FROM … WHERE <filter>`
/// to which the keyset conditions, order and limit are added. The lists of
/// organisations and topics, each served by an index on (name, id).
pub async fn page_by_name(
    db: &Db,
    select: &str,
    keyset: &Keyset<(String, i64)>,
) -> sqlx::Result<Vec<sqlx::any::AnyRow>> {
    let (after_name, after_id) = keyset.after.clone().unzip();
    let (before_name, before_id) = keyset.before.clone().unzip();
    let order = keyset.direction(ListOrder::Ascending);
    let sql = format!(
        "{select} AND {} ORDER BY name {order}, id {order} LIMIT $5",
        keyset.conditions("(name, id)", ListOrder::Ascending, "($1, $2)", "($3, $4)")
    );
    sqlx::query(&sql)
        .bind(after_name)
        .bind(after_id)
        .bind(before_name)
        .bind(before_id)
        .bind(keyset.fetch)
        .fetch_all(&db.pool)
        .await
}

/// What a SQL query for one page of a list needs to know. For a list in ascending key
/// order, `after` means "key greater than" and a forward page orders ascending; for a
/// list in descending order (newest first), `after` means "key less than" and a forward
/// page orders descending. A backward page (`last`/`before`) orders the other way, and
/// the connection turns its rows round again (see `graphql::relay::Page`).
#[derive(Clone, Debug)]
pub struct Keyset<K> {
    /// Only rows that come after this key in the list's order.
    pub after: Option<K>,
    /// Only rows that come before this key in the list's order.
    pub before: Option<K>,
    /// Fetch in the list's own order (true) or reversed (false).
    pub forward: bool,
    /// How many rows to fetch: one more than the page.
    pub fetch: i64,
}

/// The direction a keyset list runs in its own order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ListOrder {
    /// Smallest key first (names A to Z, soonest first).
    Ascending,
    /// Largest key first (newest first).
    Descending,
}

impl<K> Keyset<K> {
    /// The bounds of this page as SQL conditions on `key`, the sort key (`c.id`, or a row
    /// such as `(c.published_at, c.id)`), for a list in `order`; `after` and `before` are
    /// the placeholders the bounds are bound to (`$5`, or `($5, $6)`). A bound that is set
    /// becomes a condition an index can serve; one that is not becomes `$n IS NULL` on
    /// its placeholders, never `($5 IS NULL OR key < $5)`: under a generic plan (which
    /// PostgreSQL may choose for a prepared statement after five executions, and SQLite
    /// always uses) such an OR cannot use the index, and a page deep in a long list walks
    /// all of it. See [`filter_condition`].
    pub fn conditions(&self, key: &str, order: ListOrder, after: &str, before: &str) -> String {
        let (after_op, before_op) = match order {
            ListOrder::Ascending => (">", "<"),
            ListOrder::Descending => ("<", ">"),
        };
        let bound = |set: bool, op: &str, placeholders: &str| {
            if set {
                format!("{key} {op} {placeholders}")
            } else {
                let unset: Vec<String> = placeholders
                    .split(|c: char| !(c == '$' || c.is_ascii_digit()))
                    .filter(|p| p.starts_with('$'))
                    .map(|p| format!("{p} IS NULL"))
                    .collect();
                unset.join(" AND ")
            }
        };
        format!(
            "{} AND {}",
            bound(self.after.is_some(), after_op, after),
            bound(self.before.is_some(), before_op, before)
        )
    }

    /// `ASC` or `DESC`: the direction this page is fetched in (a backward page runs
    /// against the list's order; see [`Keyset::forward`]).
    pub fn direction(&self, order: ListOrder) -> &'static str {
        match (order, self.forward) {
            (ListOrder::Ascending, true) | (ListOrder::Descending, false) => "ASC",
            (ListOrder::Ascending, false) | (ListOrder::Descending, true) => "DESC",
        }
    }
}

/// One optional filter of a list query: `condition` when the filter is set, otherwise a
/// condition on its `parameter` alone (`$1 IS NULL`), which keeps every parameter in the
/// text so the binds are the same whichever filters are set. Not one statement for all
/// with `($1 IS NULL OR kind = $1)`: SQLite plans a statement once, without the values,
/// and cannot use an index for a condition inside such an OR, so a list narrowed to a
/// rare value would walk the whole table.
pub fn filter_condition(set: bool, parameter: &str, condition: &str) -> String {
    if set {
        condition.to_string()
    } else {
        format!("{parameter} IS NULL")
    }
}

/// Builds `$start, $start+1, …` for an `IN (…)` list of `count` values.
pub fn placeholders(start: usize, count: usize) -> String {
    (start..start + count).map(|i| format!("${i}")).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keyset_conditions_name_only_the_bounds_that_are_set() {
        let page =
            |after: Option<(i64, i64)>, before: Option<(i64, i64)>| Keyset { after, before, forward: true, fetch: 21 };
        let key = "(c.published_at, c.id)";
        assert_eq!(
            page(None, None).conditions(key, ListOrder::Descending, "($5, $6)", "($7, $8)"),
            "$5 IS NULL AND $6 IS NULL AND $7 IS NULL AND $8 IS NULL"
        );
        assert_eq!(
            page(Some((1, 2)), None).conditions(key, ListOrder::Descending, "($5, $6)", "($7, $8)"),
            "(c.published_at, c.id) < ($5, $6) AND $7 IS NULL AND $8 IS NULL"
        );
        assert_eq!(
            page(None, Some((1, 2))).conditions("(name, id)", ListOrder::Ascending, "($1, $2)", "($3, $4)"),
            "$1 IS NULL AND $2 IS NULL AND (name, id) < ($3, $4)"
        );
        let single = Keyset { after: Some(5_i64), before: None, forward: false, fetch: 11 };
        assert_eq!(single.conditions("id", ListOrder::Descending, "$2", "$3"), "id < $2 AND $3 IS NULL");
        assert_eq!(single.direction(ListOrder::Descending), "ASC");
        assert_eq!(single.direction(ListOrder::Ascending), "DESC");
    }
}
