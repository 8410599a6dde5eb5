//! Digests: what is new in what a member follows, at their hour in their time zone.
//!
//! **Schedule.** A member's digest goes out daily at `digest_hour`, or weekly on
//! `digest_weekday` at `digest_hour`, in their own `time_zone`. [`next_due`] turns that
//! into the next instant (UTC) strictly after a given one, through jiff: an hour that a
//! daylight-saving change skips is shifted forward, an hour it repeats uses the earlier
//! instant. The result is stored in `members.next_digest_at` ([`reschedule`]), which is
//! NULL when no digest will go out (frequency never, an unverified or bouncing address).
//!
//! **Sweep.** Every instance runs [`run`]: once a minute it calls [`sweep`] until nobody
//! is due. A sweep reads at most [`BATCH`] due members through the partial index
//! `members_next_digest` — with nobody due, that one indexed query is all it costs, so
//! the cost grows with the members who are due, never with all members. For a batch:
//! one query reads what each member's digest covers (grouped by subject, see
//! [`covered`]), three more enrich it (useful marks, reuse counts, meetup times), and the
//! digests are built in Rust. Then one transaction (on PostgreSQL, [`WRITERS`] at once,
//! each for a share of the batch), for each member, advances `next_digest_at` and the
//! cursor `digest_after_id` by compare-and-set on the `next_digest_at` it read, and
//! queues the mail under the key `digest:<member>:<due millis>`.
//!
//! **Exactly once.** Two instances sweeping at once read the same due members; on
//! PostgreSQL each locks the rows it will advance with `FOR UPDATE SKIP LOCKED` (so the
//! other skips them, and neither waits or deadlocks), and on SQLite the write lock lets
//! one batch through at a time. Either way the compare-and-set lets only the first
//! advance a member, and only the one that advanced it queues its mail, in the same
//! transaction; a member someone else advanced is skipped, the rest of the batch goes on.
//! An instance killed mid-sweep has committed whole transactions or nothing of one: what
//! it did not commit is still due, and the next sweep (on any instance) does it. The
//! idempotency key makes a digest queued twice for one period impossible even so.
//!
//! **Contents.** What the member follows at `DIGEST` or `WATCHING` level, since the last
//! digest (notification rows after `digest_after_id`): rows kept for the digest
//! (channel `digest`), and inbox rows, still unread, of kinds the member wants in the
//! digest (`MailChoice::Digest`). In sections, each most useful first, at most
//! [`SECTION_ITEMS`] items with "and N more": new case studies (by useful marks), new
//! artefacts (by reuse), meetups coming up (still scheduled, by start, in the member's
//! zone), busy conversations (new comments by conversation, by count), and what is
//! about the member (other kinds they chose to get in the digest). An empty digest is
//! not sent; its schedule and cursor move on all the same.

use std::{
    collections::{HashMap, HashSet},
    sync::{Arc, LazyLock},
    time::Duration,
};

use jiff::{civil::Date, tz::TimeZone, Timestamp};
use serde::Serialize;
use serde_json::json;
use sqlx::{any::AnyRow, Row};

use super::{List, Mailer, Outgoing};
use crate::{
    db::{self, Db, Dialect, Tx},
    error::AppResult,
    meetups::events::EventStatus,
    moderation::suspensions,
    notifications::{
        inbox::{default_choice, DigestFrequency, MailChoice},
        Channel, Notification, NotificationKind,
    },
};

/// Members per sweep: a handful of queries, and one transaction (a few on PostgreSQL).
pub const BATCH: i64 = 200;
/// Items shown per section; the rest are "and N more".
pub const SECTION_ITEMS: usize = 5;
/// Subjects read per member and kind (the newest). What a digest can show is far less;
/// this bounds a batch's memory when a member follows a great deal. Counts beyond it are
/// still exact (every subject is counted as the rows stream past).
const SUBJECTS_READ: usize = 100;
/// How often each instance looks for due digests.
const SWEEP_EVERY: Duration = Duration::from_secs(60);
/// Ids per `IN (…)` list in the enrichment queries.
const IDS_PER_QUERY: usize = 500;

// ---------------------------------------------------------------------------------------
// Schedule.

/// The first local time at `hour`:00 (weekly: on ISO `weekday`, Monday = 1) strictly
/// after `after`, in `zone` (an unknown zone counts as UTC). A time a daylight-saving gap
/// skips is shifted forward by the gap; a time a fold repeats is its earlier instant.
/// `None` for [`DigestFrequency::Never`] or an hour or weekday out of range.
pub fn next_due(
    zone: &str,
    frequency: DigestFrequency,
    weekday: i64,
    hour: i64,
    after: Timestamp,
) -> Option<Timestamp> {
    if !(0..=23).contains(&hour) || (frequency == DigestFrequency::Weekly && !(1..=7).contains(&weekday)) {
        return None;
    }
    let weekly = match frequency {
        DigestFrequency::Never => return None,
        DigestFrequency::Daily => false,
        DigestFrequency::Weekly => true,
    };
    let tz = TimeZone::get(zone).unwrap_or(TimeZone::UTC);
    // Start the day before `after`'s local date: an hour shifted forward out of a gap can
    // land on the next local day's instant only in theory, but starting a day early costs
    // nothing and keeps "strictly after" the only test.
    let mut date: Date = after.to_zoned(tz.clone()).date().yesterday().ok()?;
    // At most 9 days: a week plus the day before plus slack for a skipped candidate.
    for _ in 0..10 {
        if !weekly || i64::from(date.weekday().to_monday_one_offset()) == weekday {
            let local = date.at(hour as i8, 0, 0, 0);
            // `compatible`: a gap shifts forward, a fold takes the earlier instant.
            if let Ok(instant) = tz.to_ambiguous_timestamp(local).compatible() {
                if instant > after {
                    return Some(instant);
                }
            }
        }
        date = date.tomorrow().ok()?;
    }
    None
}

/// The schedule columns of a member, as read for [`reschedule`] and the sweep.
#[derive(Clone, Debug)]
struct Schedule {
    time_zone: String,
    frequency: DigestFrequency,
    weekday: i64,
    hour: i64,
    verified: bool,
    bouncing: bool,
}

impl Schedule {
    fn from_row(row: &AnyRow) -> sqlx::Result<Schedule> {
        Ok(Schedule {
            time_zone: row.try_get("time_zone")?,
            frequency: row.try_get("digest_frequency")?,
            weekday: row.try_get("digest_weekday")?,
            hour: row.try_get("digest_hour")?,
            verified: row.try_get::<Option<i64>, _>("email_verified_at")?.is_some(),
            bouncing: row.try_get::<Option<i64>, _>("email_bouncing_at")?.is_some(),
        })
    }

    /// Why no digest goes out at all, if none does.
    fn off_because(&self) -> Option<&'static str> {
        if self.frequency == DigestFrequency::Never {
            Some("their digest is off")
        } else if !self.verified {
            Some("their address is not verified")
        } else if self.bouncing {
            Some("mail to their address bounces")
        } else {
            None
        }
    }

    /// The next digest strictly after `after` (millis), or `None` when none will go out.
    fn next_after(&self, after: i64) -> Option<i64> {
        if self.off_because().is_some() {
            return None;
        }
        let after = Timestamp::from_millisecond(after).ok()?;
        next_due(&self.time_zone, self.frequency, self.weekday, self.hour, after).map(|t| t.as_millisecond())
    }
}

/// Sets when the member's next digest is due from their settings, zone and address
/// (none while the address is unverified or bouncing, or the frequency is never). Call it
/// in the transaction that changed any of those.
///
/// A member whose digest starts again (none was due, one is now: newly verified, turned
/// back on, verified again after bouncing) starts from now: their first digest covers
/// what is new from here on, not everything kept while they got none.
pub async fn reschedule(tx: &mut Tx, member_id: i64, now: i64) -> AppResult<()> {
    let row = sqlx::query(
        "SELECT time_zone, digest_frequency, digest_weekday, digest_hour, email_verified_at, email_bouncing_at, \
         next_digest_at FROM members WHERE id = $1",
    )
    .bind(member_id)
    .fetch_optional(&mut **tx)
    .await?;
    let Some(row) = row else { return Ok(()) };
    let schedule = Schedule::from_row(&row)?;
    let was: Option<i64> = row.try_get("next_digest_at")?;
    let next = schedule.next_after(now);
    if was.is_none() && next.is_some() {
        sqlx::query(
            "UPDATE members SET next_digest_at = $1, digest_after_id = \
             COALESCE((SELECT MAX(id) FROM notifications WHERE member_id = $2), digest_after_id) WHERE id = $2",
        )
        .bind(next)
        .bind(member_id)
        .execute(&mut **tx)
        .await?;
    } else {
        sqlx::query("UPDATE members SET next_digest_at = $1 WHERE id = $2")
            .bind(next)
            .bind(member_id)
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// What a sweep reports.

/// What one sweep did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SweepOutcome {
    /// Members that were due (at most [`BATCH`]).
    pub due: usize,
    /// Digests queued.
    pub sent: usize,
    /// Members with nothing new: schedule advanced, nothing sent.
    pub empty: usize,
    /// Members advanced without a digest because none may go out (their address is
    /// unverified or bouncing, the digest is off, or the member is suspended).
    pub off: usize,
    /// Members another sweep advanced first (or was advancing): left to it.
    pub skipped: usize,
}

impl SweepOutcome {
    /// Whether this sweep advanced anyone: if not, sweeping again at once is pointless.
    pub fn progressed(&self) -> bool {
        self.sent + self.empty + self.off > 0
    }
}

/// How many items of each section a digest has.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    pub case_studies: usize,
    pub artefacts: usize,
    pub meetups: usize,
    pub conversations: usize,
    pub about_you: usize,
}

impl Counts {
    pub fn is_empty(&self) -> bool {
        self.total() == 0
    }

    pub fn total(&self) -> usize {
        self.case_studies + self.artefacts + self.meetups + self.conversations + self.about_you
    }

    /// "2 case studies, 1 artefact, 3 meetups": what the subject line says.
    pub fn describe(&self) -> String {
        let parts = [
            (self.case_studies, "case study", "case studies"),
            (self.artefacts, "artefact", "artefacts"),
            (self.meetups, "meetup", "meetups"),
            (self.conversations, "busy conversation", "busy conversations"),
            (self.about_you, "update about you", "updates about you"),
        ];
        let said: Vec<String> = parts
            .iter()
            .filter(|(n, ..)| *n > 0)
            .map(|(n, one, many)| format!("{n} {}", if *n == 1 { one } else { many }))
            .collect();
        if said.is_empty() {
            "nothing new".into()
        } else {
            said.join(", ")
        }
    }
}

/// What happened to one member's digest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Queued (a dry run: would have been).
    Queued,
    /// Nothing new: nothing sent, the schedule moved on (a dry run: would have).
    Empty,
    /// No digest may go out (why); the schedule was set accordingly.
    Off(&'static str),
    /// Another sweep advanced this member first.
    TakenElsewhere,
}

/// One member's digest in a sweep, for the command line.
#[derive(Clone, Debug)]
pub struct Delivery {
    pub member_id: i64,
    pub address: String,
    pub subject: String,
    pub counts: Counts,
    /// The period it stands for (the `next_digest_at` it was due at).
    pub due_at: i64,
    /// When the next one is due, as set (a dry run: as it would be set).
    pub next_at: Option<i64>,
    pub outcome: Outcome,
}

// ---------------------------------------------------------------------------------------
// Sweeping.

/// A member as the sweep reads them.
#[derive(Clone, Debug)]
struct Due {
    id: i64,
    email: String,
    display_name: String,
    schedule: Schedule,
    suspended: bool,
    due_at: i64,
}

const DUE_COLUMNS: &str = "id, email, display_name, time_zone, digest_frequency, digest_weekday, digest_hour, \
                           next_digest_at, email_verified_at, email_bouncing_at, suspended_at, suspended_until";

impl Due {
    fn from_row(row: &AnyRow) -> sqlx::Result<Due> {
        Ok(Due {
            id: row.try_get("id")?,
            email: row.try_get("email")?,
            display_name: row.try_get("display_name")?,
            schedule: Schedule::from_row(row)?,
            suspended: suspended_now(row)?,
            due_at: row.try_get("next_digest_at")?,
        })
    }

    fn off_because(&self) -> Option<&'static str> {
        self.schedule.off_because().or(if self.suspended { Some("the member is suspended") } else { None })
    }
}

/// Whether the member row's suspension is in force now (a time-limited one ends by itself).
fn suspended_now(row: &AnyRow) -> sqlx::Result<bool> {
    Ok(suspensions::in_force(row.try_get("suspended_at")?, row.try_get("suspended_until")?, db::now_millis()))
}

/// The sweep's one query when nobody is due: served by the partial index
/// `members_next_digest`, oldest due first.
pub const DUE_SQL: &str = "SELECT id, email, display_name, time_zone, digest_frequency, digest_weekday, digest_hour, \
     next_digest_at, email_verified_at, email_bouncing_at, suspended_at, suspended_until FROM members \
     WHERE next_digest_at IS NOT NULL AND next_digest_at <= $1 ORDER BY next_digest_at LIMIT $2";

async fn due(db: &Db, now: i64) -> AppResult<Vec<Due>> {
    let rows = sqlx::query(DUE_SQL).bind(now).bind(BATCH).fetch_all(&db.pool).await?;
    Ok(rows.iter().map(Due::from_row).collect::<sqlx::Result<_>>()?)
}

/// Sends the digests due at `now`: one batch of at most [`BATCH`] members (call again
/// while it returns a full batch that made progress; [`run`] does).
pub async fn sweep(db: &Db, mailer: &Mailer, now: i64) -> AppResult<SweepOutcome> {
    let members = due(db, now).await?;
    if members.is_empty() {
        return Ok(SweepOutcome::default());
    }
    let deliveries = process(db, mailer, members, now, Mode::Send).await?;
    Ok(outcome_of(&deliveries))
}

fn outcome_of(deliveries: &[Delivery]) -> SweepOutcome {
    let mut outcome = SweepOutcome { due: deliveries.len(), ..SweepOutcome::default() };
    for delivery in deliveries {
        match delivery.outcome {
            Outcome::Queued => outcome.sent += 1,
            Outcome::Empty => outcome.empty += 1,
            Outcome::Off(_) => outcome.off += 1,
            Outcome::TakenElsewhere => outcome.skipped += 1,
        }
    }
    outcome
}

/// Sweeps until nobody is due at `now` (or no sweep makes progress: another instance
/// holds the rest), returning every member's delivery. With `dry_run`, builds every due
/// digest and says what would be sent, changing nothing. What `kettle digest run` does.
pub async fn sweep_all(db: &Db, mailer: &Mailer, now: i64, dry_run: bool) -> AppResult<Vec<Delivery>> {
    let mut all = Vec::new();
    if dry_run {
        // Nothing advances, so page through the due members instead of re-reading them.
        let mut after: Option<(i64, i64)> = None;
        loop {
            let (after_due, after_id) = after.unzip();
            let rows = sqlx::query(&format!(
                "SELECT {DUE_COLUMNS} FROM members WHERE next_digest_at IS NOT NULL AND next_digest_at <= $1 \
                 AND {} ORDER BY next_digest_at, id LIMIT $4",
                db::filter_condition(after.is_some(), "$2", "(next_digest_at, id) > ($2, $3)")
            ))
            .bind(now)
            .bind(after_due)
            .bind(after_id)
            .bind(BATCH)
            .fetch_all(&db.pool)
            .await?;
            let members: Vec<Due> = rows.iter().map(Due::from_row).collect::<sqlx::Result<_>>()?;
            let Some(last) = members.last() else { break };
            after = Some((last.due_at, last.id));
            let full = members.len() as i64 == BATCH;
            all.extend(process(db, mailer, members, now, Mode::DryRun).await?);
            if !full {
                break;
            }
        }
        return Ok(all);
    }
    loop {
        let members = due(db, now).await?;
        let full = members.len() as i64 == BATCH;
        if members.is_empty() {
            break;
        }
        let deliveries = process(db, mailer, members, now, Mode::Send).await?;
        let progressed = outcome_of(&deliveries).progressed();
        all.extend(deliveries);
        if !full || !progressed {
            break;
        }
    }
    Ok(all)
}

/// One member's digest now, due or not (`kettle digest run --member`): it stands for the
/// member's next period, which it uses up (the one after comes next). `None` when there
/// is no such member. A member who gets no digest at all is reported as [`Outcome::Off`]
/// and left as they are.
pub async fn send_now(db: &Db, mailer: &Mailer, email: &str, now: i64, dry_run: bool) -> AppResult<Option<Delivery>> {
    let row = sqlx::query(&format!("SELECT {DUE_COLUMNS} FROM members WHERE email_normalized = $1"))
        .bind(email.trim().to_lowercase())
        .fetch_optional(&db.pool)
        .await?;
    let Some(row) = row else { return Ok(None) };
    let next: Option<i64> = row.try_get("next_digest_at")?;
    if next.is_none() {
        // Read the schedule alone (the due columns need a due time) to say why.
        let schedule = Schedule::from_row(&row)?;
        let suspended = suspended_now(&row)?;
        let why = schedule.off_because().or(suspended.then_some("the member is suspended")).unwrap_or("none is due");
        return Ok(Some(Delivery {
            member_id: row.try_get("id")?,
            address: row.try_get("email")?,
            subject: String::new(),
            counts: Counts::default(),
            due_at: now,
            next_at: None,
            outcome: Outcome::Off(why),
        }));
    }
    let member = Due::from_row(&row)?;
    let mode = if dry_run { Mode::DryRun } else { Mode::Send };
    Ok(process(db, mailer, vec![member], now, mode).await?.into_iter().next())
}

/// Runs on every instance until the server stops: sweeps every minute, until nobody is
/// due. Errors are logged, and the next minute tries again (what a failed transaction
/// did not commit is still due, so nothing is lost).
pub async fn run(db: Db, mailer: Arc<Mailer>) {
    loop {
        loop {
            match sweep(&db, &mailer, db::now_millis()).await {
                Ok(outcome) => {
                    if outcome.due > 0 {
                        tracing::info!(
                            due = outcome.due,
                            sent = outcome.sent,
                            empty = outcome.empty,
                            off = outcome.off,
                            skipped = outcome.skipped,
                            "digest sweep"
                        );
                    }
                    if outcome.due as i64 != BATCH || !outcome.progressed() {
                        break;
                    }
                }
                Err(err) => {
                    tracing::warn!(error = ?err, "the digest sweep failed; trying again in a minute");
                    break;
                }
            }
        }
        tokio::time::sleep(SWEEP_EVERY).await;
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Send,
    DryRun,
}

/// One member's digest as planned, before it is written.
struct Planned {
    delivery: Delivery,
    /// The cursor to store (`None`: unchanged, when the member gets no digest).
    after_id: Option<i64>,
    /// The templates' context, when there is something to send.
    mail: Option<serde_json::Value>,
    display_name: String,
}

/// Transactions a batch is written in at once, on PostgreSQL: while one renders its
/// messages, another's statements run, so the database and this process work at the
/// same time. SQLite has one writer at a time: one transaction.
const WRITERS: usize = 4;

/// Builds the digests of `members` (due at their `due_at`, swept at `now`), then, unless
/// a dry run, advances each and queues its mail (see [`write`]).
async fn process(db: &Db, mailer: &Mailer, members: Vec<Due>, now: i64, mode: Mode) -> AppResult<Vec<Delivery>> {
    let wanted: Vec<i64> = members.iter().filter(|m| m.off_because().is_none()).map(|m| m.id).collect();
    let covered = covered(db, &wanted).await?;
    let facts = Facts::load(db, &covered).await?;

    let mut planned = Vec::with_capacity(members.len());
    for member in members {
        // The period after the one this digest stands for: a digest sent early by hand
        // uses up its period rather than repeating it.
        let next_at = member.schedule.next_after(now.max(member.due_at));
        let mut delivery = Delivery {
            member_id: member.id,
            address: member.email.clone(),
            subject: String::new(),
            counts: Counts::default(),
            due_at: member.due_at,
            next_at,
            outcome: Outcome::Empty,
        };
        if let Some(why) = member.off_because() {
            // A suspended member keeps their schedule; the others get none until they
            // change what stops it (which reschedules them).
            delivery.next_at = if member.suspended && member.schedule.off_because().is_none() { next_at } else { None };
            delivery.outcome = Outcome::Off(why);
            planned.push(Planned { delivery, after_id: None, mail: None, display_name: member.display_name });
            continue;
        }
        let rows = covered.get(&member.id);
        let after_id = rows.map(|r| r.top_id);
        let digest = build(rows, &facts, now);
        delivery.counts = digest.counts;
        let mail = if digest.counts.is_empty() {
            None
        } else {
            delivery.subject = subject(member.schedule.frequency, &digest.counts);
            delivery.outcome = Outcome::Queued;
            Some(json!({
                "name": member.display_name,
                "zone": zone_name(&member.schedule.time_zone),
                "frequency": member.schedule.frequency.as_str(),
                "counts": digest.counts,
                "sections": digest.sections,
            }))
        };
        planned.push(Planned { delivery, after_id, mail, display_name: member.display_name });
    }
    if mode == Mode::DryRun {
        return Ok(planned.into_iter().map(|p| p.delivery).collect());
    }

    let writers = if db.dialect == Dialect::Postgres { WRITERS } else { 1 };
    let per_writer = planned.len().div_ceil(writers).max(1);
    let mut groups: Vec<Vec<Planned>> = Vec::new();
    let mut rest = planned.into_iter().peekable();
    while rest.peek().is_some() {
        groups.push(rest.by_ref().take(per_writer).collect());
    }
    let results = futures_util::future::join_all(groups.into_iter().map(|group| write(db, mailer, group))).await;
    let mut deliveries = Vec::new();
    let mut queued = false;
    let mut failed = None;
    for result in results {
        match result {
            Ok((group, any)) => {
                deliveries.extend(group);
                queued |= any;
            }
            // The others committed (or not) on their own; this group's members are still
            // due, and the next sweep does them.
            Err(err) => failed = Some(err),
        }
    }
    if queued {
        mailer.queued();
    }
    match failed {
        Some(err) => Err(err),
        None => Ok(deliveries),
    }
}

/// Writes a group of planned digests in one transaction: advances each member by
/// compare-and-set on the due time the sweep read, and queues the digests of those it
/// advanced. Returns the deliveries, and whether anything was queued.
async fn write(db: &Db, mailer: &Mailer, planned: Vec<Planned>) -> AppResult<(Vec<Delivery>, bool)> {
    let mut tx = db.begin_write().await?;
    let ids: Vec<i64> = planned.iter().map(|p| p.delivery.member_id).collect();
    // PostgreSQL: lock the rows this group will advance, in id order, skipping those
    // another sweep holds (it is doing them); neither waits for the other, and no two
    // groups can deadlock. SQLite's write lock already makes writers take turns.
    let mine: HashSet<i64> = if db.dialect == Dialect::Postgres {
        let sql = format!(
            "SELECT id FROM members WHERE id IN ({}) ORDER BY id FOR UPDATE SKIP LOCKED",
            db::placeholders(1, ids.len())
        );
        let mut query = sqlx::query(&sql);
        for id in &ids {
            query = query.bind(*id);
        }
        query.fetch_all(&mut *tx).await?.iter().map(|r| r.try_get(0)).collect::<sqlx::Result<_>>()?
    } else {
        ids.iter().copied().collect()
    };
    // One compare-and-set for the group: a member advances only from the due time this
    // sweep read; anyone another sweep already advanced is left out, the rest go on.
    let cas: Vec<&Planned> = planned.iter().filter(|p| mine.contains(&p.delivery.member_id)).collect();
    let mut advanced: HashSet<i64> = HashSet::new();
    for chunk in cas.chunks(BATCH as usize) {
        let values: Vec<String> = (0..chunk.len()).map(|i| format!("({})", db::placeholders(i * 4 + 1, 4))).collect();
        let sql = format!(
            "UPDATE members SET next_digest_at = v.column2, digest_after_id = COALESCE(v.column3, digest_after_id) \
             FROM (VALUES {}) AS v WHERE members.id = v.column1 AND members.next_digest_at = v.column4 \
             RETURNING members.id",
            values.join(", ")
        );
        let mut query = sqlx::query(&sql);
        for p in chunk {
            query = query.bind(p.delivery.member_id).bind(p.delivery.next_at).bind(p.after_id).bind(p.delivery.due_at);
        }
        for row in query.fetch_all(&mut *tx).await? {
            advanced.insert(row.try_get(0)?);
        }
    }
    let mut queued = false;
    let mut deliveries = Vec::with_capacity(planned.len());
    for p in planned {
        let Planned { mut delivery, mail, display_name, .. } = p;
        if !advanced.contains(&delivery.member_id) {
            delivery.outcome = Outcome::TakenElsewhere;
            deliveries.push(delivery);
            continue;
        }
        if let Some(context) = mail {
            let outgoing = Outgoing {
                key: format!("digest:{}:{}", delivery.member_id, delivery.due_at),
                member_id: Some(delivery.member_id),
                to_address: &delivery.address,
                to_name: &display_name,
                template: "digest",
                list: Some(List::Digest),
                subject: delivery.subject.clone(),
                context,
            };
            queued |= super::enqueue(&mut tx, mailer, outgoing).await?;
        }
        deliveries.push(delivery);
    }
    tx.commit().await?;
    Ok((deliveries, queued))
}

/// The zone templates format times in: the member's, if we know it.
fn zone_name(zone: &str) -> &str {
    if TimeZone::get(zone).is_ok() {
        zone
    } else {
        "UTC"
    }
}

fn subject(frequency: DigestFrequency, counts: &Counts) -> String {
    format!("Your {} Kettle digest: {}", frequency.as_str(), counts.describe())
}

// ---------------------------------------------------------------------------------------
// What a digest covers.

/// One subject's new notifications of one kind, for one member.
#[derive(Clone, Debug)]
struct Entry {
    kind: NotificationKind,
    subject_type: String,
    subject_id: i64,
    title: String,
    summary: String,
    path: String,
    /// How many notifications (new comments on a conversation, …).
    count: i64,
    last_id: i64,
}

/// What one member's digest covers.
#[derive(Clone, Debug, Default)]
struct Covered {
    /// The newest notification covered: the member's cursor after this digest.
    top_id: i64,
    entries: Vec<Entry>,
    /// Subjects per kind, including those beyond [`SUBJECTS_READ`].
    subjects: HashMap<NotificationKind, i64>,
}

/// Kinds whose inbox rows go to the digest unless the member chose otherwise.
static DIGEST_BY_DEFAULT: LazyLock<String> = LazyLock::new(|| {
    let kinds: Vec<String> = NotificationKind::ALL
        .into_iter()
        .filter(|k| default_choice(*k) == MailChoice::Digest)
        .map(|k| format!("'{}'", k.as_str()))
        .collect();
    kinds.join(", ")
});

/// What the digests of `members` cover, in one statement: their notifications after
/// their cursors, kept for the digest or (unread, in the inbox) of a kind they want in
/// the digest, grouped by kind and subject. Read as a stream, keeping per member and kind
/// the newest [`SUBJECTS_READ`] subjects (and the number of them all), so a member who
/// follows a great deal costs no more memory than that.
async fn covered(db: &Db, members: &[i64]) -> AppResult<HashMap<i64, Covered>> {
    use futures_util::TryStreamExt;

    if members.is_empty() {
        return Ok(HashMap::new());
    }
    // Two arms, so that each is a range on notifications_member (member, channel, id).
    let columns = "n.member_id, n.kind, n.subject_type, n.subject_id, n.subject_title, n.summary, n.path, n.id";
    let sql = format!(
        "WITH due AS (SELECT id, digest_after_id FROM members WHERE id IN ({ids})), \
         covered AS ( \
           SELECT {columns} FROM due JOIN notifications n \
             ON n.member_id = due.id AND n.channel = '{digest}' AND n.id > due.digest_after_id \
           UNION ALL \
           SELECT {columns} FROM due JOIN notifications n \
             ON n.member_id = due.id AND n.channel = '{inbox}' AND n.id > due.digest_after_id \
             LEFT JOIN notification_mail_choices c ON c.member_id = n.member_id AND c.kind = n.kind \
           WHERE n.read_at IS NULL AND (c.choice = 'digest' OR (c.choice IS NULL AND n.kind IN ({defaults}))) \
         ) \
         SELECT member_id, kind, subject_type, subject_id, MAX(subject_title) AS title, MAX(summary) AS summary, \
           MAX(path) AS path, COUNT(*) AS n, MAX(id) AS last_id \
         FROM covered GROUP BY member_id, kind, subject_type, subject_id",
        ids = db::placeholders(1, members.len()),
        digest = Channel::Digest.as_str(),
        inbox = Channel::Inbox.as_str(),
        defaults = *DIGEST_BY_DEFAULT,
    );
    let mut query = sqlx::query(&sql);
    for id in members {
        query = query.bind(*id);
    }
    let mut covered: HashMap<i64, Covered> = HashMap::new();
    let mut rows = query.fetch(&db.pool);
    while let Some(row) = rows.try_next().await? {
        let member_id: i64 = row.try_get("member_id")?;
        let kind: String = row.try_get("kind")?;
        let last_id: i64 = row.try_get("last_id")?;
        let entry = covered.entry(member_id).or_default();
        entry.top_id = entry.top_id.max(last_id);
        // A kind this build does not know (a newer instance wrote it) is left out, but
        // its rows are covered all the same (the cursor passes them).
        let Ok(kind) = NotificationKind::parse(&kind) else { continue };
        *entry.subjects.entry(kind).or_default() += 1;
        entry.entries.push(Entry {
            kind,
            subject_type: row.try_get("subject_type")?,
            subject_id: row.try_get("subject_id")?,
            title: row.try_get("title")?,
            summary: row.try_get("summary")?,
            path: row.try_get("path")?,
            count: row.try_get("n")?,
            last_id,
        });
        if entry.entries.len() > 2 * NotificationKind::ALL.len() * SUBJECTS_READ {
            entry.keep_newest();
        }
    }
    for entry in covered.values_mut() {
        entry.keep_newest();
    }
    Ok(covered)
}

impl Covered {
    /// Keeps the newest [`SUBJECTS_READ`] entries of each kind (`subjects` still counts
    /// them all).
    fn keep_newest(&mut self) {
        if self.entries.len() <= SUBJECTS_READ {
            return;
        }
        self.entries.sort_unstable_by_key(|e| (e.kind.as_str(), std::cmp::Reverse(e.last_id)));
        let mut kept: HashMap<NotificationKind, usize> = HashMap::new();
        self.entries.retain(|e| {
            let n = kept.entry(e.kind).or_default();
            *n += 1;
            *n <= SUBJECTS_READ
        });
    }
}

/// What the digests need to know about their subjects now: case studies still published
/// (with their useful marks), artefacts (with reuse counts), meetups (start and status).
#[derive(Default)]
struct Facts {
    case_studies: HashMap<i64, (String, i64)>,
    artefacts: HashMap<i64, (String, i64)>,
    meetups: HashMap<i64, (String, i64, bool)>,
}

impl Facts {
    async fn load(db: &Db, covered: &HashMap<i64, Covered>) -> AppResult<Facts> {
        let mut case_studies = HashSet::new();
        let mut artefacts = HashSet::new();
        let mut meetups = HashSet::new();
        for entry in covered.values().flat_map(|c| &c.entries) {
            match (entry.kind, entry.subject_type.as_str()) {
                (NotificationKind::NewCaseStudy, "CaseStudy") => case_studies.insert(entry.subject_id),
                (NotificationKind::NewArtefact, "Artefact") => artefacts.insert(entry.subject_id),
                (NotificationKind::NewMeetup, "MeetupEvent") => meetups.insert(entry.subject_id),
                _ => false,
            };
        }
        let case_studies: Vec<i64> = case_studies.into_iter().collect();
        let artefacts: Vec<i64> = artefacts.into_iter().collect();
        let meetups: Vec<i64> = meetups.into_iter().collect();
        let (c, a, m) = futures_util::future::join3(
            fetch(
                db,
                "SELECT c.id, c.title, (SELECT COUNT(*) FROM case_study_marks k WHERE k.case_study_id = c.id \
                 AND k.kind = 'useful') FROM case_studies c WHERE c.status = 'published' AND c.hidden_at IS NULL \
                 AND c.id IN",
                &case_studies,
            ),
            // What the moderators hid since it was announced stays out (an entry without
            // its facts is skipped).
            fetch(db, "SELECT id, title, reuse_count FROM artefacts WHERE hidden_at IS NULL AND id IN", &artefacts),
            fetch(
                db,
                "SELECT id, title, starts_at, status FROM meetup_events WHERE hidden_at IS NULL AND id IN",
                &meetups,
            ),
        )
        .await;
        let mut facts = Facts::default();
        for row in c? {
            facts.case_studies.insert(row.try_get(0)?, (row.try_get(1)?, row.try_get(2)?));
        }
        for row in a? {
            facts.artefacts.insert(row.try_get(0)?, (row.try_get(1)?, row.try_get(2)?));
        }
        for row in m? {
            let status: EventStatus = row.try_get(3)?;
            facts.meetups.insert(row.try_get(0)?, (row.try_get(1)?, row.try_get(2)?, status == EventStatus::Scheduled));
        }
        Ok(facts)
    }
}

async fn fetch(db: &Db, select: &str, ids: &[i64]) -> AppResult<Vec<AnyRow>> {
    let mut rows = Vec::new();
    for chunk in ids.chunks(IDS_PER_QUERY) {
        rows.extend(db::rows_by_ids(db, select, chunk).await?);
    }
    Ok(rows)
}

// ---------------------------------------------------------------------------------------
// Building a digest.

#[derive(Clone, Debug, Serialize)]
struct Item {
    title: String,
    /// Site path; templates make it absolute.
    path: String,
    detail: Option<String>,
    /// A meetup's start (millis), shown in the member's zone.
    starts_at: Option<i64>,
}

#[derive(Clone, Debug, Serialize)]
struct Section {
    /// Stable name, for templates and tests (`case_studies`, …).
    key: &'static str,
    title: &'static str,
    items: Vec<Item>,
    /// How many more than shown.
    more: usize,
    /// Where the rest are.
    more_path: &'static str,
}

struct Digest {
    sections: Vec<Section>,
    counts: Counts,
}

/// Orders `(sort key, item)` pairs, keeps [`SECTION_ITEMS`], and counts the rest (plus
/// `unread`: subjects beyond what was read).
fn section(
    key: &'static str,
    title: &'static str,
    more_path: &'static str,
    mut items: Vec<(SortKey, Item)>,
    unread: i64,
) -> Option<Section> {
    let total = items.len() + unread.max(0) as usize;
    if total == 0 {
        return None;
    }
    items.sort_by_key(|a| a.0);
    let shown: Vec<Item> = items.into_iter().take(SECTION_ITEMS).map(|(_, item)| item).collect();
    Some(Section { key, title, more: total - shown.len(), items: shown, more_path })
}

/// Sorts ascending: "most useful first" keys are negated.
type SortKey = (i64, i64);

fn build(covered: Option<&Covered>, facts: &Facts, now: i64) -> Digest {
    let empty = Covered::default();
    let covered = covered.unwrap_or(&empty);
    let unread = |kinds: &[NotificationKind]| -> i64 {
        kinds
            .iter()
            .map(|k| {
                let read = covered.entries.iter().filter(|e| e.kind == *k).count() as i64;
                covered.subjects.get(k).copied().unwrap_or(0) - read
            })
            .sum()
    };
    let mut case_studies = Vec::new();
    let mut artefacts = Vec::new();
    let mut meetups = Vec::new();
    let mut conversations = Vec::new();
    let mut about_you = Vec::new();
    for entry in &covered.entries {
        match entry.kind {
            NotificationKind::NewCaseStudy => {
                // Gone, or no longer published: not worth telling.
                let Some((title, useful)) = facts.case_studies.get(&entry.subject_id) else { continue };
                let detail = match useful {
                    0 => None,
                    1 => Some("marked useful by 1 person".to_string()),
                    n => Some(format!("marked useful by {n} people")),
                };
                let item = Item { title: title.clone(), path: entry.path.clone(), detail, starts_at: None };
                case_studies.push(((-useful, -entry.last_id), item));
            }
            NotificationKind::NewArtefact => {
                let Some((title, reuses)) = facts.artefacts.get(&entry.subject_id) else { continue };
                let detail = match reuses {
                    0 => "not reused yet".to_string(),
                    1 => "used by 1 organisation".to_string(),
                    n => format!("used by {n} organisations"),
                };
                let item =
                    Item { title: title.clone(), path: entry.path.clone(), detail: Some(detail), starts_at: None };
                artefacts.push(((-reuses, -entry.last_id), item));
            }
            NotificationKind::NewMeetup => {
                // Only what is still coming up.
                let Some((title, starts_at, scheduled)) = facts.meetups.get(&entry.subject_id) else { continue };
                if !scheduled || *starts_at <= now {
                    continue;
                }
                let item =
                    Item { title: title.clone(), path: entry.path.clone(), detail: None, starts_at: Some(*starts_at) };
                meetups.push(((*starts_at, entry.subject_id), item));
            }
            NotificationKind::NewComment => {
                // The conversation, not one comment in it.
                let path = entry.path.split('#').next().unwrap_or(&entry.path).to_string();
                let title = as_notification(entry).display_summary();
                conversations
                    .push(((-entry.count, -entry.last_id), Item { title, path, detail: None, starts_at: None }));
            }
            _ => {
                let title = as_notification(entry).display_summary();
                about_you.push((
                    (-entry.last_id, 0),
                    Item { title, path: entry.path.clone(), detail: None, starts_at: None },
                ));
            }
        }
    }
    use NotificationKind as K;
    let others: Vec<NotificationKind> = NotificationKind::ALL
        .into_iter()
        .filter(|k| !matches!(k, K::NewCaseStudy | K::NewArtefact | K::NewMeetup | K::NewComment))
        .collect();
    let sections: Vec<Section> = [
        section("case_studies", "New case studies", "/notifications/new", case_studies, unread(&[K::NewCaseStudy])),
        section("artefacts", "New artefacts", "/notifications/new", artefacts, unread(&[K::NewArtefact])),
        section("meetups", "Meetups coming up", "/meetups", meetups, unread(&[K::NewMeetup])),
        section("conversations", "Busy conversations", "/notifications/new", conversations, unread(&[K::NewComment])),
        section("about_you", "About you", "/notifications", about_you, unread(&others)),
    ]
    .into_iter()
    .flatten()
    .collect();
    let count = |key: &str| sections.iter().find(|s| s.key == key).map_or(0, |s| s.items.len() + s.more);
    let counts = Counts {
        case_studies: count("case_studies"),
        artefacts: count("artefacts"),
        meetups: count("meetups"),
        conversations: count("conversations"),
        about_you: count("about_you"),
    };
    Digest { sections, counts }
}

/// An entry as a notification group, for its wording ("5 new comments on “…”").
fn as_notification(entry: &Entry) -> Notification {
    Notification {
        id: entry.last_id,
        member_id: 0,
        kind: entry.kind,
        channel: Channel::Digest,
        subject_type: entry.subject_type.clone(),
        subject_id: entry.subject_id,
        subject_title: entry.title.clone(),
        actor_id: None,
        group_id: entry.last_id,
        group_size: entry.count,
        summary: entry.summary.clone(),
        path: entry.path.clone(),
        created_at: 0,
        read_at: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    fn daily(zone: &str, hour: i64, after: &str) -> String {
        next_due(zone, DigestFrequency::Daily, 1, hour, at(after)).unwrap().to_string()
    }

    #[test]
    fn daily_at_eight_keeps_local_time_across_new_york_changes() {
        let ny = "America/New_York";
        // Spring forward: Sunday 8 March 2026, 02:00 EST -> 03:00 EDT.
        assert_eq!(daily(ny, 8, "2026-03-07T00:00:00Z"), "2026-03-07T13:00:00Z"); // EST
        assert_eq!(daily(ny, 8, "2026-03-07T13:00:00Z"), "2026-03-08T12:00:00Z"); // EDT, strictly after
        assert_eq!(daily(ny, 8, "2026-03-08T12:00:00Z"), "2026-03-09T12:00:00Z");
        // Fall back: Sunday 1 November 2026, 02:00 EDT -> 01:00 EST.
        assert_eq!(daily(ny, 8, "2026-10-31T00:00:00Z"), "2026-10-31T12:00:00Z"); // EDT
        assert_eq!(daily(ny, 8, "2026-10-31T12:00:00Z"), "2026-11-01T13:00:00Z"); // EST
        assert_eq!(daily(ny, 8, "2026-11-01T13:00:00Z"), "2026-11-02T13:00:00Z");
    }

    #[test]
    fn daily_at_eight_keeps_local_time_across_london_changes() {
        let london = "Europe/London";
        // Spring forward: Sunday 29 March 2026, 01:00 GMT -> 02:00 BST.
        assert_eq!(daily(london, 8, "2026-03-28T00:00:00Z"), "2026-03-28T08:00:00Z");
        assert_eq!(daily(london, 8, "2026-03-28T08:00:00Z"), "2026-03-29T07:00:00Z");
        // Fall back: Sunday 25 October 2026, 02:00 BST -> 01:00 GMT.
        assert_eq!(daily(london, 8, "2026-10-24T08:00:00Z"), "2026-10-25T08:00:00Z");
        assert_eq!(daily(london, 8, "2026-10-24T06:00:00Z"), "2026-10-24T07:00:00Z");
    }

    #[test]
    fn an_hour_in_a_gap_moves_forward_and_a_repeated_hour_is_the_earlier() {
        let ny = "America/New_York";
        let london = "Europe/London";
        // New York 02:00 on 8 March 2026 does not exist: 03:00 EDT (07:00Z).
        assert_eq!(daily(ny, 2, "2026-03-07T08:00:00Z"), "2026-03-08T07:00:00Z");
        assert_eq!(daily(ny, 1, "2026-03-07T07:00:00Z"), "2026-03-08T06:00:00Z"); // 01:00 EST
        assert_eq!(daily(ny, 2, "2026-03-08T07:00:00Z"), "2026-03-09T06:00:00Z"); // 02:00 EDT
                                                                                  // New York 01:00 on 1 November 2026 happens twice: the first, 01:00 EDT (05:00Z).
        assert_eq!(daily(ny, 1, "2026-10-31T06:00:00Z"), "2026-11-01T05:00:00Z");
        // ... and the second is not another digest: the next is the 2nd, 01:00 EST.
        assert_eq!(daily(ny, 1, "2026-11-01T05:00:00Z"), "2026-11-02T06:00:00Z");
        assert_eq!(daily(ny, 2, "2026-10-31T07:00:00Z"), "2026-11-01T07:00:00Z"); // 02:00 EST
                                                                                  // London 01:00 on 29 March 2026 does not exist: 02:00 BST (01:00Z).
        assert_eq!(daily(london, 1, "2026-03-28T02:00:00Z"), "2026-03-29T01:00:00Z");
        assert_eq!(daily(london, 2, "2026-03-28T02:00:00Z"), "2026-03-29T01:00:00Z"); // 02:00 BST
        assert_eq!(daily(london, 1, "2026-03-29T01:00:00Z"), "2026-03-30T00:00:00Z"); // 01:00 BST
                                                                                      // London 01:00 on 25 October 2026 happens twice: 01:00 BST (00:00Z) first.
        assert_eq!(daily(london, 1, "2026-10-24T01:00:00Z"), "2026-10-25T00:00:00Z");
        assert_eq!(daily(london, 1, "2026-10-25T00:00:00Z"), "2026-10-26T01:00:00Z");
        assert_eq!(daily(london, 2, "2026-10-24T01:00:00Z"), "2026-10-25T02:00:00Z");
        // 02:00 GMT
    }

    #[test]
    fn weekly_goes_out_on_the_chosen_weekday() {
        let weekly = |zone: &str, weekday: i64, hour: i64, after: &str| {
            next_due(zone, DigestFrequency::Weekly, weekday, hour, at(after)).unwrap().to_string()
        };
        // Wednesday = 3. Monday 2 March 2026 -> Wednesday 4 March, 09:00 EST.
        assert_eq!(weekly("America/New_York", 3, 9, "2026-03-02T12:00:00Z"), "2026-03-04T14:00:00Z");
        // From that instant, a week on, now in EDT.
        assert_eq!(weekly("America/New_York", 3, 9, "2026-03-04T14:00:00Z"), "2026-03-11T13:00:00Z");
        // Sunday = 7, on the day of the UK change, at 08:00 BST.
        assert_eq!(weekly("Europe/London", 7, 8, "2026-03-23T00:00:00Z"), "2026-03-29T07:00:00Z");
        // Same day, before the hour: today.
        assert_eq!(weekly("Europe/London", 1, 8, "2026-03-30T06:59:59Z"), "2026-03-30T07:00:00Z");
        // Same day, after the hour: next week.
        assert_eq!(weekly("Europe/London", 1, 8, "2026-03-30T07:00:00Z"), "2026-04-06T07:00:00Z");
    }

    #[test]
    fn never_or_out_of_range_has_no_next_and_an_unknown_zone_is_utc() {
        let after = at("2026-06-01T00:00:00Z");
        assert_eq!(next_due("Europe/London", DigestFrequency::Never, 1, 8, after), None);
        assert_eq!(next_due("Europe/London", DigestFrequency::Daily, 1, 24, after), None);
        assert_eq!(next_due("Europe/London", DigestFrequency::Weekly, 8, 8, after), None);
        assert_eq!(
            next_due("Mars/Olympus_Mons", DigestFrequency::Daily, 1, 8, after).unwrap().to_string(),
            "2026-06-01T08:00:00Z"
        );
    }

    #[test]
    fn the_due_query_reads_the_columns_a_due_member_needs() {
        assert!(DUE_SQL.contains(DUE_COLUMNS));
    }

    #[test]
    fn the_subject_says_what_is_inside() {
        let counts = Counts { case_studies: 2, artefacts: 1, meetups: 3, conversations: 0, about_you: 1 };
        assert_eq!(
            subject(DigestFrequency::Weekly, &counts),
            "Your weekly Kettle digest: 2 case studies, 1 artefact, 3 meetups, 1 update about you"
        );
    }
}
