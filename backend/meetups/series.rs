//! Recurring series: a [`Rule`] plus the fields each occurrence starts with. Occurrences
//! are real event rows, made ahead for a rolling window ([`WINDOW_MS`]) and extended as
//! time passes, so RSVPs, agendas and changes attach to each one. An organiser changes
//! one occurrence like any event, or cancels it, or cancels it and every one after it
//! (which also stops the series making more).

use jiff::{civil, Timestamp};
use serde_json::{json, Value};
use sqlx::Row;

use super::{
    events::{self, Event, Fields, Times},
    recurrence::{Frequency, Occurrence, Rule, SeriesEnd},
};
use crate::{
    db::{self, Db},
    error::{AppError, AppResult},
    markdown,
};

/// How far ahead occurrences exist: about six months.
pub const WINDOW_MS: i64 = 183 * 24 * 60 * 60 * 1000;

/// A rule as stored, with the index its first occurrence takes: 0, until the rule is
/// changed; then past the indices already used, so that the meetups kept from before
/// keep theirs and `(series_id, series_index)` stays unique.
struct Stored {
    rule: Rule,
    index_base: i64,
}

impl Stored {
    /// Plain JSON fields (jiff's dates as their ISO text).
    fn json(&self) -> String {
        let rule = &self.rule;
        let (until, count) = match rule.end {
            SeriesEnd::Until(date) => (Some(date.to_string()), None),
            SeriesEnd::Count(count) => (None, Some(count)),
        };
        json!({
            "frequency": rule.frequency.as_str(),
            "weekdayOrdinal": rule.weekday_ordinal,
            "start": rule.start.to_string(),
            "durationMinutes": rule.duration_minutes,
            "timeZone": rule.time_zone,
            "until": until,
            "count": count,
            "indexBase": self.index_base,
        })
        .to_string()
    }

    fn parse(text: &str) -> AppResult<Stored> {
        let value: Value = serde_json::from_str(text).unwrap_or_default();
        let text = |name: &str| value[name].as_str().unwrap_or_default().to_string();
        let bad = |what: &str| AppError::from(anyhow::anyhow!("a stored series rule has a bad {what}"));
        let end = match (value["until"].as_str(), value["count"].as_u64()) {
            (Some(until), _) => SeriesEnd::Until(until.parse::<civil::Date>().map_err(|_| bad("until"))?),
            (None, Some(count)) => SeriesEnd::Count(u32::try_from(count).map_err(|_| bad("count"))?),
            (None, None) => return Err(bad("end")),
        };
        let rule = Rule {
            frequency: text("frequency").parse::<Frequency>().map_err(|_| bad("frequency"))?,
            weekday_ordinal: value["weekdayOrdinal"].as_i64().map(|n| n as i8),
            start: text("start").parse().map_err(|_| bad("start"))?,
            duration_minutes: value["durationMinutes"].as_i64().ok_or_else(|| bad("duration"))?,
            time_zone: text("timeZone"),
            end,
        };
        Ok(Stored { rule, index_base: value["indexBase"].as_i64().unwrap_or(0) })
    }

    /// The occurrence's key in `meetup_events`.
    fn key(&self, series_id: i64, occurrence: &Occurrence) -> (i64, i64) {
        (series_id, self.index_base + i64::from(occurrence.index))
    }
}

fn times_of(occurrence: &Occurrence) -> Times {
    Times {
        local_start: occurrence.local_start,
        local_end: occurrence.local_end,
        starts_at: occurrence.start.as_millisecond(),
        ends_at: occurrence.end.as_millisecond(),
    }
}

/// What every occurrence starts with, as stored. `schedulerGoing`: whoever started the
/// series is going to each occurrence as it is made (absent in series started before
/// the choice existed, which read as not going).
fn template_json(fields: &Fields, html: &str, topic_ids: &[i64], going: bool) -> Value {
    json!({
        "schedulerGoing": going,
        "title": fields.title, "description": fields.description, "descriptionHtml": html,
        "venueName": fields.venue_name, "venueAddress": fields.venue_address,
        "venueDirections": fields.venue_directions, "onlineUrl": fields.online_url,
        "capacity": fields.capacity, "topicIds": topic_ids,
    })
}

fn template_from(value: &Value, rule: &Rule) -> (Fields, String, Vec<i64>) {
    let text = |name: &str| value[name].as_str().unwrap_or_default().to_string();
    let fields = Fields {
        title: text("title"),
        description: text("description"),
        time_zone: rule.time_zone.clone(),
        local_start: rule.start,
        local_end: rule.start,
        venue_name: text("venueName"),
        venue_address: text("venueAddress"),
        venue_directions: text("venueDirections"),
        online_url: value["onlineUrl"].as_str().map(str::to_string),
        capacity: value["capacity"].as_i64(),
    };
    let topics = value["topicIds"].as_array().map(|a| a.iter().filter_map(Value::as_i64).collect()).unwrap_or_default();
    (fields, text("descriptionHtml"), topics)
}

/// Starts a series and makes its occurrences for the window ahead. Returns its id and
/// the occurrences made. With `going`, whoever starts it is going to every occurrence,
/// those made now and those the window makes later (while they still organise the group).
pub async fn create(
    db: &Db,
    group_id: i64,
    member_id: i64,
    rule: &Rule,
    fields: &Fields,
    topic_ids: &[i64],
    going: bool,
) -> AppResult<(i64, Vec<Event>)> {
    let rendered = markdown::render_linked(db, &fields.description).await?;
    let now = db::now_millis();
    let mut tx = db.begin_write().await?;
    let horizon = now + WINDOW_MS;
    let stored = Stored { rule: rule.clone(), index_base: 0 };
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO meetup_series (group_id, rule, template, generated_until, created_by, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $6) RETURNING id",
    )
    .bind(group_id)
    .bind(stored.json())
    .bind(template_json(fields, &rendered.html, topic_ids, going).to_string())
    .bind(horizon)
    .bind(member_id)
    .bind(now)
    .fetch_one(&mut *tx)
    .await?;
    let mut made = Vec::new();
    for occurrence in rule.occurrences_between(Timestamp::UNIX_EPOCH, millis(horizon)) {
        let index = Some(stored.key(id, &occurrence));
        let times = times_of(&occurrence);
        let event =
            events::insert(&mut tx, group_id, member_id, fields, &rendered.html, times, index, topic_ids).await?;
        made.push(if going { events::scheduler_going(&mut tx, event).await? } else { event });
    }
    tx.commit().await?;
    Ok((id, made))
}

fn millis(ms: i64) -> Timestamp {
    Timestamp::from_millisecond(ms).unwrap_or(Timestamp::MAX)
}

/// Makes the occurrences that have come into the window since it was last extended, for
/// every series that needs it. Safe to run on several instances at once: an occurrence
/// is made once, whoever gets there first.
pub async fn extend_windows(db: &Db, now: i64) -> AppResult<usize> {
    let horizon = now + WINDOW_MS;
    let rows = sqlx::query(
        "SELECT id, group_id, rule, template, generated_until, stopped_from, created_by FROM meetup_series \
         WHERE generated_until < $1 ORDER BY generated_until LIMIT 100",
    )
    .bind(horizon - 24 * 60 * 60 * 1000)
    .fetch_all(&db.pool)
    .await?;
    let mut made = 0;
    for row in rows {
        let id: i64 = row.try_get("id")?;
        let stored = Stored::parse(&row.try_get::<String, _>("rule")?)?;
        let template: Value = serde_json::from_str(&row.try_get::<String, _>("template")?).unwrap_or_default();
        let (fields, html, topic_ids) = template_from(&template, &stored.rule);
        let from: i64 = row.try_get("generated_until")?;
        let until = row.try_get::<Option<i64>, _>("stopped_from")?.map_or(horizon, |stop| stop.min(horizon));
        let mut tx = db.begin_write().await?;
        // Claims the window: a second instance finds it extended and does nothing.
        let claimed =
            sqlx::query("UPDATE meetup_series SET generated_until = $1 WHERE id = $2 AND generated_until = $3")
                .bind(horizon)
                .bind(id)
                .bind(from)
                .execute(&mut *tx)
                .await?
                .rows_affected();
        if claimed == 0 {
            continue;
        }
        let (group_id, by): (i64, i64) = (row.try_get("group_id")?, row.try_get("created_by")?);
        let going = scheduler_goes(&mut tx, &template, group_id, by).await?;
        for occurrence in stored.rule.occurrences_between(millis(from), millis(until.max(from))) {
            let index = Some(stored.key(id, &occurrence));
            let times = times_of(&occurrence);
            let event = events::insert(&mut tx, group_id, by, &fields, &html, times, index, &topic_ids).await?;
            if going {
                events::scheduler_going(&mut tx, event).await?;
            }
            made += 1;
        }
        tx.commit().await?;
    }
    Ok(made)
}

/// Whether whoever started the series goes to the meetups it makes now: if they chose
/// to, and still organise the group (someone who left is not signed up for its meetups).
async fn scheduler_goes(tx: &mut db::Tx, template: &Value, group_id: i64, by: i64) -> AppResult<bool> {
    if template["schedulerGoing"].as_bool() != Some(true) {
        return Ok(false);
    }
    let organises: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM meetup_group_members WHERE group_id = $1 AND member_id = $2 AND role = 'organiser'",
    )
    .bind(group_id)
    .bind(by)
    .fetch_one(&mut **tx)
    .await?;
    Ok(organises > 0)
}

/// Cancels an occurrence and every later one of its series, and stops the series making
/// more; each keeps `message` for those going and waiting (see `events::cancel`).
/// Returns how many were cancelled.
pub async fn cancel_from(db: &Db, event: &Event, member_id: i64, message: Option<&str>) -> AppResult<u64> {
    let Some(series_id) = event.series_id else { return Ok(0) };
    let now = db::now_millis();
    let mut tx = db.begin_write().await?;
    sqlx::query("UPDATE meetup_series SET stopped_from = $1, updated_at = $2 WHERE id = $3")
        .bind(event.starts_at)
        .bind(now)
        .bind(series_id)
        .execute(&mut *tx)
        .await?;
    let mut cancelled = 0;
    for later in events::of_series_from(&mut tx, series_id, event.starts_at).await? {
        if events::cancel_in(&mut tx, later.id, member_id, message, Some(series_id)).await?.is_some() {
            cancelled += 1;
        }
    }
    tx.commit().await?;
    Ok(cancelled)
}

/// A series' rule; `None` when there is no such series.
pub async fn rule_of(db: &Db, series_id: i64) -> AppResult<Option<Rule>> {
    let text: Option<String> = sqlx::query_scalar("SELECT rule FROM meetup_series WHERE id = $1")
        .bind(series_id)
        .fetch_optional(&db.pool)
        .await?;
    Ok(text.map(|text| Stored::parse(&text)).transpose()?.map(|stored| stored.rule))
}

/// A series' rule, described for people ("Second Thursday of each month at 16:00 …").
pub async fn describe(db: &Db, series_id: i64) -> AppResult<Option<String>> {
    Ok(rule_of(db, series_id).await?.map(|rule| rule.describe()))
}

/// Applies an edit to an occurrence and every later one of its series, in one
/// transaction: each keeps its own date and takes the new time of day, length, place and
/// words; the series' rule and template follow, so occurrences made later match. (Moving
/// them to other days is a new series.) Returns how many were changed.
pub async fn update_following(
    db: &Db,
    event: &Event,
    member_id: i64,
    fields: &Fields,
    topic_ids: &[i64],
) -> AppResult<usize> {
    let Some(series_id) = event.series_id else { return Ok(0) };
    let rendered = markdown::render_linked(db, &fields.description).await?;
    let zone = jiff::tz::TimeZone::get(&fields.time_zone).map_err(|_| AppError::bad_input("Unknown time zone."))?;
    let length = fields.local_start.duration_until(fields.local_end);
    let mut tx = db.begin_write().await?;
    let rows: Vec<(i64, String)> = sqlx::query_as(
        "SELECT id, local_start FROM meetup_events WHERE series_id = $1 AND starts_at >= $2 AND status = 'scheduled' \
         ORDER BY starts_at, id",
    )
    .bind(series_id)
    .bind(event.starts_at)
    .fetch_all(&mut *tx)
    .await?;
    for (id, local_start) in &rows {
        let date = local_start.parse::<civil::DateTime>().map_err(anyhow::Error::from)?.date();
        let local_start = date.to_datetime(fields.local_start.time());
        let local_end = local_start.checked_add(length).map_err(anyhow::Error::from)?;
        let times = Times {
            local_start,
            local_end,
            starts_at: events::instant(local_start, &zone)?.as_millisecond(),
            ends_at: events::instant(local_end, &zone)?.as_millisecond(),
        };
        events::update_in(&mut tx, db.dialect, *id, member_id, fields, &rendered.html, times, topic_ids).await?;
    }
    let (stored, template): (String, String) = sqlx::query_as("SELECT rule, template FROM meetup_series WHERE id = $1")
        .bind(series_id)
        .fetch_one(&mut *tx)
        .await?;
    // The scheduler's choice to go is theirs, not the edit's: it is kept.
    let going = serde_json::from_str::<Value>(&template).unwrap_or_default()["schedulerGoing"].as_bool() == Some(true);
    let mut stored = Stored::parse(&stored)?;
    let rule = &mut stored.rule;
    rule.start = rule.start.date().to_datetime(fields.local_start.time());
    rule.duration_minutes = length.as_mins();
    rule.time_zone = fields.time_zone.clone();
    sqlx::query("UPDATE meetup_series SET rule = $1, template = $2, updated_at = $3 WHERE id = $4")
        .bind(stored.json())
        .bind(template_json(fields, &rendered.html, topic_ids, going).to_string())
        .bind(db::now_millis())
        .bind(series_id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(rows.len())
}

/// What changing a series' rule did to its meetups from the chosen one on.
pub struct Rescheduled {
    /// Those on the new rule's dates: kept (with their answers, agenda and any change
    /// made to them alone) or made, in time order.
    pub events: Vec<Event>,
    /// Those on dates the new rule does not have, now cancelled.
    pub cancelled: Vec<Event>,
}

/// Gives `from`'s series a new rule from `from` on (`rule` starts on or after its date,
/// keeping the series' time of day, length and zone; checked by the caller). Meetups
/// before `from` stay as they were. From `from` on, a meetup on one of the new rule's
/// dates stays, with its answers and agenda, cancelled or not; any other that was on is
/// cancelled, with `message`, and those going and waiting are told; the new rule's
/// other dates in the window get new meetups, as the series' first did. Later windows
/// follow the new rule. A series cancelled from some date on makes nothing after it.
pub async fn change_rule(
    db: &Db,
    from: &Event,
    member_id: i64,
    rule: &Rule,
    message: Option<&str>,
) -> AppResult<Rescheduled> {
    let Some(series_id) = from.series_id else { return Ok(Rescheduled { events: vec![], cancelled: vec![] }) };
    let now = db::now_millis();
    let horizon = now + WINDOW_MS;
    let mut tx = db.begin_write().await?;
    // Locked first: a window being extended at the same time waits, then finds the
    // series extended by the new rule and does nothing.
    let row = sqlx::query(&format!(
        "SELECT group_id, template, stopped_from, created_by FROM meetup_series WHERE id = $1{}",
        db.dialect.for_update()
    ))
    .bind(series_id)
    .fetch_one(&mut *tx)
    .await?;
    let (group_id, by): (i64, i64) = (row.try_get("group_id")?, row.try_get("created_by")?);
    let template: Value = serde_json::from_str(&row.try_get::<String, _>("template")?).unwrap_or_default();
    let until = row.try_get::<Option<i64>, _>("stopped_from")?.map_or(horizon, |stop| stop.min(horizon));
    let used: Option<i64> = sqlx::query_scalar("SELECT MAX(series_index) FROM meetup_events WHERE series_id = $1")
        .bind(series_id)
        .fetch_one(&mut *tx)
        .await?;
    let stored = Stored { rule: rule.clone(), index_base: used.map_or(0, |last| last + 1) };

    let mut existing: Vec<Option<Event>> =
        events::of_series_from(&mut tx, series_id, from.starts_at).await?.into_iter().map(Some).collect();
    let date_of = |event: &Event| event.local_start.get(..10).map(str::to_string);
    let (fields, html, topic_ids) = template_from(&template, rule);
    let going = scheduler_goes(&mut tx, &template, group_id, by).await?;
    let mut kept_or_made = Vec::new();
    for occurrence in rule.occurrences_between(Timestamp::UNIX_EPOCH, millis(until)) {
        let (_, index) = stored.key(series_id, &occurrence);
        let date = Some(occurrence.local_start.date().to_string());
        let same_day = existing.iter_mut().find(|slot| slot.as_ref().is_some_and(|e| date_of(e) == date));
        if let Some(event) = same_day.and_then(Option::take) {
            sqlx::query("UPDATE meetup_events SET series_index = $1 WHERE id = $2")
                .bind(index)
                .bind(event.id)
                .execute(&mut *tx)
                .await?;
            kept_or_made.push(event);
            continue;
        }
        let times = times_of(&occurrence);
        let event =
            events::insert(&mut tx, group_id, by, &fields, &html, times, Some((series_id, index)), &topic_ids).await?;
        kept_or_made.push(if going { events::scheduler_going(&mut tx, event).await? } else { event });
    }
    let mut cancelled = Vec::new();
    for event in existing.into_iter().flatten() {
        if let Some(event) = events::cancel_in(&mut tx, event.id, member_id, message, Some(series_id)).await? {
            cancelled.push(event);
        }
    }
    sqlx::query("UPDATE meetup_series SET rule = $1, generated_until = $2, updated_at = $3 WHERE id = $4")
        .bind(stored.json())
        .bind(horizon)
        .bind(now)
        .bind(series_id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    kept_or_made.sort_by_key(|event| (event.starts_at, event.id));
    Ok(Rescheduled { events: kept_or_made, cancelled })
}
