//! Reviews: the moderators' queue, one open review per flagged item, decided once.
//!
//! A decision and its effect commit together or not at all: the transaction first moves
//! the review from `open` to `decided` with `WHERE status = 'open'`, so of two moderators
//! deciding at once the second finds nothing to move (on PostgreSQL its UPDATE waits for
//! the first's row lock, then sees the row decided; SQLite's write lock queues them) and
//! is told it is already decided, with nothing changed. Then the effect (hide, restore,
//! edit, dismiss, suspend), the audit row and the `moderation.review_decided` event that
//! tells the flaggers and the author.
//!
//! Hidden items: `hidden_at`/`hidden_reason` on the item's row. Hiding also takes a case
//! study or artefact out of the search index (restoring puts it back), so search needs no
//! condition of its own; lists carry `hidden_at IS NULL`; item resolvers blank the content
//! for everyone but its authors and the moderators (see `moderation::graphql`).

use std::collections::HashMap;

use serde_json::json;
use sqlx::{any::AnyRow, Row};

use super::{
    audit::{self, Entry},
    flags::FlagReason,
    suspensions,
};
use crate::{
    db::{self, Db, Keyset, Tx},
    error::{AppError, AppResult},
    history,
    markdown::Rendered,
    outbox,
    search::{self, SearchKind},
};

/// The longest reason a moderator may give, in characters.
pub const REASON_MAX: usize = 1_000;
/// At most this many flags are shown with a review (the count says how many there are).
pub const FLAGS_SHOWN: i64 = 50;

// The text is the name stored in `reviews.target_type`, `flags.target_type` and the
// audit log.
crate::text_enum! {
    /// What can be flagged.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, async_graphql::Enum)]
    #[graphql(name = "ModerationTargetType")]
    pub enum TargetType {
        CaseStudy => "case_study",
        Artefact => "artefact",
        Comment => "comment",
        MeetupEvent => "meetup_event",
        Member => "member",
    }
}

impl TargetType {
    /// Its GraphQL type name, as global ids and outbox subjects name it.
    pub fn node_name(self) -> &'static str {
        match self {
            TargetType::CaseStudy => "CaseStudy",
            TargetType::Artefact => "Artefact",
            TargetType::Comment => "Comment",
            TargetType::MeetupEvent => "MeetupEvent",
            TargetType::Member => "Member",
        }
    }

    pub fn from_node_name(name: &str) -> Option<TargetType> {
        TargetType::ALL.into_iter().find(|t| t.node_name() == name)
    }

    /// The table whose rows carry `hidden_at` (None: members are never hidden).
    fn hidden_table(self) -> Option<&'static str> {
        match self {
            TargetType::CaseStudy => Some("case_studies"),
            TargetType::Artefact => Some("artefacts"),
            TargetType::Comment => Some("comments"),
            TargetType::MeetupEvent => Some("meetup_events"),
            TargetType::Member => None,
        }
    }

    /// How a sentence names it: "your case study".
    pub fn noun(self) -> &'static str {
        match self {
            TargetType::CaseStudy => "case study",
            TargetType::Artefact => "artefact",
            TargetType::Comment => "comment",
            TargetType::MeetupEvent => "meetup",
            TargetType::Member => "profile",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Target {
    pub kind: TargetType,
    pub id: i64,
}

/// What moderation needs to know about a target.
#[derive(Clone, Debug)]
pub struct TargetInfo {
    pub target: Target,
    /// Who wrote it (a case study's accepted co-authors too; a member is their own).
    pub authors: Vec<i64>,
    /// Who a suspension for it suspends.
    pub author_id: i64,
    /// What a notification calls it.
    pub title: String,
    /// Its page.
    pub path: String,
    pub hidden_at: Option<i64>,
    /// Whether members may see it at all (a draft or a deleted comment may not).
    pub public: bool,
}

/// Looks a target up, inside `tx` when given (so a decision sees its own edits).
pub async fn describe(db: &Db, tx: Option<&mut Tx>, target: Target) -> AppResult<Option<TargetInfo>> {
    let sql = match target.kind {
        TargetType::CaseStudy => {
            "SELECT c.author_id, c.title, c.hidden_at, CASE WHEN c.status = 'draft' THEN 0 ELSE 1 END AS public, \
             '' AS extra, 0 AS extra_id FROM case_studies c WHERE c.id = $1"
        }
        TargetType::Artefact => {
            "SELECT created_by AS author_id, title, hidden_at, 1 AS public, '' AS extra, 0 AS extra_id \
             FROM artefacts WHERE id = $1"
        }
        TargetType::Comment => {
            "SELECT c.author_id, COALESCE(s.title, a.title, '') AS title, c.hidden_at, \
             CASE WHEN c.deleted_at IS NULL AND (s.id IS NULL OR s.status <> 'draft') THEN 1 ELSE 0 END AS public, \
             c.subject_type AS extra, c.subject_id AS extra_id FROM comments c \
             LEFT JOIN case_studies s ON c.subject_type = 'case_study' AND s.id = c.subject_id \
             LEFT JOIN artefacts a ON c.subject_type = 'artefact' AND a.id = c.subject_id WHERE c.id = $1"
        }
        TargetType::MeetupEvent => {
            "SELECT created_by AS author_id, title, hidden_at, 1 AS public, '' AS extra, 0 AS extra_id \
             FROM meetup_events WHERE id = $1"
        }
        TargetType::Member => {
            "SELECT id AS author_id, display_name AS title, CAST(NULL AS BIGINT) AS hidden_at, \
             CASE WHEN erased_at IS NULL THEN 1 ELSE 0 END AS public, '' AS extra, 0 AS extra_id \
             FROM members WHERE id = $1"
        }
    };
    let query = sqlx::query(sql).bind(target.id);
    let row = match tx {
        Some(tx) => query.fetch_optional(&mut **tx).await?,
        None => query.fetch_optional(&db.pool).await?,
    };
    let Some(row) = row else { return Ok(None) };
    let author_id: i64 = row.try_get("author_id")?;
    let title: String = row.try_get("title")?;
    let extra: String = row.try_get("extra")?;
    let extra_id: i64 = row.try_get("extra_id")?;
    let (title, path) = match target.kind {
        TargetType::CaseStudy => (title, format!("/case-studies/{}", target.id)),
        TargetType::Artefact => (title, format!("/artefacts/{}", target.id)),
        TargetType::Comment => {
            let base = if extra == "artefact" { "/artefacts" } else { "/case-studies" };
            (format!("a comment on “{title}”"), format!("{base}/{extra_id}#comment-{}", target.id))
        }
        TargetType::MeetupEvent => (title, format!("/meetups/events/{}", target.id)),
        TargetType::Member => (title, format!("/members/{}", target.id)),
    };
    let authors = if target.kind == TargetType::CaseStudy {
        let rows = sqlx::query("SELECT member_id FROM case_study_authors WHERE case_study_id = $1 ORDER BY position")
            .bind(target.id)
            .fetch_all(&db.pool)
            .await?;
        let mut authors: Vec<i64> = rows.iter().map(|r| r.try_get(0)).collect::<sqlx::Result<_>>()?;
        if !authors.contains(&author_id) {
            authors.insert(0, author_id);
        }
        authors
    } else {
        vec![author_id]
    };
    Ok(Some(TargetInfo {
        target,
        authors,
        author_id,
        title,
        path,
        hidden_at: row.try_get("hidden_at")?,
        public: row.try_get::<i64, _>("public")? == 1,
    }))
}

/// Hides `target` inside `tx` with `reason`; with `only_if_shown`, leaves one already
/// hidden as it is. True when the row changed. A hidden case study or artefact leaves
/// the search index.
pub async fn hide_in(tx: &mut Tx, target: Target, reason: &str, now: i64, only_if_shown: bool) -> AppResult<bool> {
    let Some(table) = target.kind.hidden_table() else { return Ok(false) };
    let condition = if only_if_shown { " AND hidden_at IS NULL" } else { "" };
    let changed =
        sqlx::query(&format!("UPDATE {table} SET hidden_at = $1, hidden_reason = $2 WHERE id = $3{condition}"))
            .bind(now)
            .bind(reason)
            .bind(target.id)
            .execute(&mut **tx)
            .await?
            .rows_affected()
            == 1;
    match target.kind {
        TargetType::CaseStudy => search::remove(tx, SearchKind::CaseStudy, target.id).await?,
        TargetType::Artefact => search::remove(tx, SearchKind::Artefact, target.id).await?,
        _ => {}
    }
    Ok(changed)
}

/// Shows `target` again inside `tx`; true when it was hidden. A published case study or
/// an artefact goes back into the search index.
pub async fn restore_in(tx: &mut Tx, target: Target) -> AppResult<bool> {
    let Some(table) = target.kind.hidden_table() else { return Ok(false) };
    let changed = sqlx::query(&format!(
        "UPDATE {table} SET hidden_at = NULL, hidden_reason = NULL WHERE id = $1 AND hidden_at IS NOT NULL"
    ))
    .bind(target.id)
    .execute(&mut **tx)
    .await?
    .rows_affected()
        == 1;
    reindex(tx, target).await?;
    Ok(changed)
}

/// Puts a shown case study (if published) or artefact back into the search index, as
/// their own modules index them.
async fn reindex(tx: &mut Tx, target: Target) -> AppResult<()> {
    match target.kind {
        TargetType::CaseStudy => {
            let row = sqlx::query(
                "SELECT title, summary, body_source FROM case_studies WHERE id = $1 AND status = 'published' \
                 AND hidden_at IS NULL",
            )
            .bind(target.id)
            .fetch_optional(&mut **tx)
            .await?;
            if let Some(row) = row {
                let title: String = row.try_get(0)?;
                let text = format!("{}\n\n{}", row.try_get::<String, _>(1)?, row.try_get::<String, _>(2)?);
                search::index(tx, SearchKind::CaseStudy, target.id, &title, &text).await?;
            }
        }
        TargetType::Artefact => {
            let row = sqlx::query(
                "SELECT title, licence, description_source FROM artefacts WHERE id = $1 AND hidden_at IS NULL",
            )
            .bind(target.id)
            .fetch_optional(&mut **tx)
            .await?;
            if let Some(row) = row {
                let title: String = row.try_get(0)?;
                let text = format!("{}\n\n{}", row.try_get::<String, _>(1)?, row.try_get::<String, _>(2)?);
                search::index(tx, SearchKind::Artefact, target.id, &title, &text).await?;
            }
        }
        _ => {}
    }
    Ok(())
}

crate::text_enum! {
    #[derive(Clone, Copy, Debug, PartialEq, Eq, async_graphql::Enum)]
    #[graphql(name = "ReviewDecision")]
    pub enum Decision {
        /// Hide the item: its author sees it and why, everyone else a placeholder.
        Hide => "hide",
        /// Show the item again.
        Restore => "restore",
        /// Replace the item's text, and show it.
        Edit => "edit",
        /// The flags were not right: show an item they hid, and count them as not upheld.
        Dismiss => "dismiss",
        /// Suspend the author (or the member flagged) and hide the item.
        Suspend => "suspend",
    }
}

crate::text_enum! {
    #[derive(Clone, Copy, Debug, PartialEq, Eq, async_graphql::Enum)]
    pub enum ReviewStatus {
        Open => "open",
        Decided => "decided",
    }
}

#[derive(Clone, Debug)]
pub struct Review {
    pub id: i64,
    pub target: Target,
    pub weight: i64,
    pub flag_count: i64,
    pub status: ReviewStatus,
    pub auto_hidden_at: Option<i64>,
    pub decision: Option<Decision>,
    pub decision_reason: Option<String>,
    pub decided_by: Option<i64>,
    pub decided_at: Option<i64>,
    pub created_at: i64,
}

const REVIEW_COLUMNS: &str = "id, target_type, target_id, weight, flag_count, status, auto_hidden_at, decision, \
     decision_reason, decided_by, decided_at, created_at";

impl Review {
    fn from_row(row: &AnyRow) -> sqlx::Result<Review> {
        Ok(Review {
            id: row.try_get("id")?,
            target: Target { kind: row.try_get("target_type")?, id: row.try_get("target_id")? },
            weight: row.try_get("weight")?,
            flag_count: row.try_get("flag_count")?,
            status: row.try_get("status")?,
            auto_hidden_at: row.try_get("auto_hidden_at")?,
            decision: row.try_get("decision")?,
            decision_reason: row.try_get("decision_reason")?,
            decided_by: row.try_get("decided_by")?,
            decided_at: row.try_get("decided_at")?,
            created_at: row.try_get("created_at")?,
        })
    }
}

#[derive(Clone, Debug)]
pub struct Flag {
    pub id: i64,
    pub review_id: i64,
    pub flagger_id: i64,
    pub reason: FlagReason,
    pub note: String,
    pub weight: i64,
    pub created_at: i64,
}

pub async fn by_ids(db: &Db, ids: &[i64]) -> AppResult<HashMap<i64, Review>> {
    let rows = db::rows_by_ids(db, &format!("SELECT {REVIEW_COLUMNS} FROM reviews WHERE id IN"), ids).await?;
    Ok(rows.iter().map(|r| Review::from_row(r).map(|v| (v.id, v))).collect::<sqlx::Result<_>>()?)
}

/// Open reviews, heaviest first, then oldest first: keyset on (weight, id), served by
/// `reviews_queue`. Mixed directions, so the keyset is spelled out rather than a row
/// comparison.
pub async fn queue(db: &Db, keyset: &Keyset<(i64, i64)>) -> AppResult<Vec<Review>> {
    let (after_weight, after_id) = keyset.after.unzip();
    let (before_weight, before_id) = keyset.before.unzip();
    let order = if keyset.forward { "weight DESC, id ASC" } else { "weight ASC, id DESC" };
    let sql = format!(
        "SELECT {REVIEW_COLUMNS} FROM reviews WHERE status = 'open' AND {} AND {} ORDER BY {order} LIMIT $5",
        db::filter_condition(keyset.after.is_some(), "$1", "(weight < $1 OR (weight = $1 AND id > $2))"),
        db::filter_condition(keyset.before.is_some(), "$3", "(weight > $3 OR (weight = $3 AND id < $4))"),
    );
    let rows = sqlx::query(&sql)
        .bind(after_weight)
        .bind(after_id)
        .bind(before_weight)
        .bind(before_id)
        .bind(keyset.fetch)
        .fetch_all(&db.pool)
        .await?;
    Ok(rows.iter().map(Review::from_row).collect::<sqlx::Result<_>>()?)
}

/// How many reviews are open (for the moderators' link).
pub async fn open_count(db: &Db) -> AppResult<i64> {
    Ok(sqlx::query_scalar("SELECT COUNT(*) FROM reviews WHERE status = 'open'").fetch_one(&db.pool).await?)
}

/// The first [`FLAGS_SHOWN`] flags of each review, oldest first, in one statement
/// (served by `flags_review`).
pub async fn flags_of(db: &Db, review_ids: &[i64]) -> AppResult<HashMap<i64, Vec<Flag>>> {
    let mut map: HashMap<i64, Vec<Flag>> = review_ids.iter().map(|id| (*id, Vec::new())).collect();
    if review_ids.is_empty() {
        return Ok(map);
    }
    let sql = format!(
        "SELECT id, review_id, flagger_id, reason, note, weight, created_at FROM (SELECT f.*, ROW_NUMBER() OVER \
         (PARTITION BY review_id ORDER BY id) AS n FROM flags f WHERE review_id IN ({})) x WHERE n <= {FLAGS_SHOWN} \
         ORDER BY review_id, id",
        db::placeholders(1, review_ids.len())
    );
    let mut query = sqlx::query(&sql);
    for id in review_ids {
        query = query.bind(*id);
    }
    for row in query.fetch_all(&db.pool).await? {
        let flag = Flag {
            id: row.try_get("id")?,
            review_id: row.try_get("review_id")?,
            flagger_id: row.try_get("flagger_id")?,
            reason: row.try_get("reason")?,
            note: row.try_get("note")?,
            weight: row.try_get("weight")?,
            created_at: row.try_get("created_at")?,
        };
        map.entry(flag.review_id).or_default().push(flag);
    }
    Ok(map)
}

/// A flag by id (for the flagger's own answer).
pub async fn flag_by_id(db: &Db, id: i64) -> AppResult<Option<Flag>> {
    let row =
        sqlx::query("SELECT id, review_id, flagger_id, reason, note, weight, created_at FROM flags WHERE id = $1")
            .bind(id)
            .fetch_optional(&db.pool)
            .await?;
    let Some(row) = row else { return Ok(None) };
    Ok(Some(Flag {
        id: row.try_get("id")?,
        review_id: row.try_get("review_id")?,
        flagger_id: row.try_get("flagger_id")?,
        reason: row.try_get("reason")?,
        note: row.try_get("note")?,
        weight: row.try_get("weight")?,
        created_at: row.try_get("created_at")?,
    }))
}

/// A moderator's replacement text, rendered before the transaction that saves it.
pub struct Edit {
    /// A new title (case study, artefact, meetup) or display name; None keeps it.
    pub title: Option<String>,
    /// A new summary (case studies only); None keeps it.
    pub summary: Option<String>,
    /// New Markdown (body, description, comment, or a member's bio) with its rendering;
    /// None keeps it.
    pub body: Option<(String, Rendered)>,
}

/// What a moderator decided, validated.
pub struct Decide<'a> {
    pub actor_id: i64,
    pub review_id: i64,
    pub decision: Decision,
    pub reason: &'a str,
    pub edit: Option<Edit>,
    /// For a suspension: until when (None: until lifted).
    pub suspend_until: Option<i64>,
}

#[derive(Debug)]
pub enum Decided {
    Done(Review),
    /// Someone decided it first; nothing changed.
    AlreadyDecided,
    /// The decision does not fit the item (hiding a member, say), with the input field
    /// at fault and what to do.
    Unfit(&'static str, String),
}

/// Decides a review once, with its effect, audit row and event in one transaction.
pub async fn decide(db: &Db, decide: Decide<'_>) -> AppResult<Decided> {
    let Some(review) = by_ids(db, &[decide.review_id]).await?.remove(&decide.review_id) else {
        return Err(AppError::NotFound("That review"));
    };
    let target = review.target;
    if let Some(unfit) = unfit(target.kind, decide.decision, decide.edit.as_ref()) {
        return Ok(unfit);
    }
    let now = db::now_millis();
    let mut tx = db.begin_write().await?;
    let moved = sqlx::query(
        "UPDATE reviews SET status = 'decided', decision = $1, decision_reason = $2, decided_by = $3, decided_at = $4 \
         WHERE id = $5 AND status = 'open'",
    )
    .bind(decide.decision.as_str())
    .bind(decide.reason)
    .bind(decide.actor_id)
    .bind(now)
    .bind(review.id)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if moved == 0 {
        tx.rollback().await?;
        return Ok(Decided::AlreadyDecided);
    }
    let info = describe(db, Some(&mut tx), target).await?;
    let was_hidden = info.as_ref().is_some_and(|i| i.hidden_at.is_some());
    let mut before = None;
    let mut after = None;
    match decide.decision {
        Decision::Hide => {
            hide_in(&mut tx, target, decide.reason, now, false).await?;
        }
        Decision::Restore => {
            restore_in(&mut tx, target).await?;
        }
        Decision::Dismiss => {
            // Only what the flags themselves hid comes back; a moderator's earlier hiding
            // stands until a moderator restores it.
            if review.auto_hidden_at.is_some() {
                restore_in(&mut tx, target).await?;
            }
        }
        Decision::Edit => {
            if let Some(edit) = &decide.edit {
                let (was, now_is) = apply_edit(&mut tx, db.dialect, target, decide.actor_id, edit, now).await?;
                before = Some(was);
                after = Some(now_is);
            }
            restore_in(&mut tx, target).await?;
        }
        Decision::Suspend => {
            if let Some(info) = &info {
                if info.author_id == decide.actor_id {
                    tx.rollback().await?;
                    return Ok(Decided::Unfit("decision", "You cannot suspend yourself.".into()));
                }
                suspensions::suspend_in(&mut tx, decide.actor_id, info.author_id, decide.suspend_until, decide.reason)
                    .await?;
            }
            hide_in(&mut tx, target, decide.reason, now, false).await?;
        }
    }
    // The suspension audits itself (on the member); every decision also leaves its own
    // row on the item, naming the review.
    let action = match decide.decision {
        Decision::Suspend if target.kind == TargetType::Member => None,
        Decision::Suspend => Some("hide"),
        other => Some(other.as_str()),
    };
    if let Some(action) = action {
        let after = after.unwrap_or_else(|| json!({ "review": review.id }));
        audit::append(
            &mut tx,
            Entry {
                actor_id: Some(decide.actor_id),
                action,
                target_type: target.kind.as_str(),
                target_id: target.id,
                reason: decide.reason,
                before,
                after: Some(after),
            },
        )
        .await?;
    }
    let event = outbox::ReviewDecided {
        review_id: review.id,
        target_type: target.kind.as_str().to_string(),
        decision: decide.decision.as_str().to_string(),
        was_hidden,
    };
    outbox::record(&mut tx, (target.kind.node_name(), target.id), Some(decide.actor_id), event).await?;
    tx.commit().await?;
    let decided = by_ids(db, &[review.id]).await?.remove(&review.id).ok_or(AppError::NotFound("That review"))?;
    Ok(Decided::Done(decided))
}

/// Why `decision` cannot apply to a `kind` of target, if it cannot.
fn unfit(kind: TargetType, decision: Decision, edit: Option<&Edit>) -> Option<Decided> {
    match (kind, decision) {
        (TargetType::Member, Decision::Hide) => {
            Some(Decided::Unfit("decision", "A member cannot be hidden. Suspend them, or edit their profile.".into()))
        }
        (_, Decision::Edit) => match edit {
            None => Some(Decided::Unfit("body", "Give the text that replaces the member's.".into())),
            Some(edit) => {
                if edit.summary.is_some() && kind != TargetType::CaseStudy {
                    return Some(Decided::Unfit("summary", "Only a case study has a summary.".into()));
                }
                if edit.title.is_some() && kind == TargetType::Comment {
                    return Some(Decided::Unfit("title", "A comment has no title.".into()));
                }
                None
            }
        },
        _ => None,
    }
}

/// Replaces a target's text inside `tx`, returning what it was and what it became (for
/// the audit log). A case study or an artefact keeps the text it replaces as a revision,
/// as its authors' edits do.
async fn apply_edit(
    tx: &mut Tx,
    dialect: db::Dialect,
    target: Target,
    actor_id: i64,
    edit: &Edit,
    now: i64,
) -> AppResult<(serde_json::Value, serde_json::Value)> {
    let (table, title_col, summary_col, source_col, html_col, extra) = match target.kind {
        TargetType::CaseStudy => (
            "case_studies",
            "title",
            Some("summary"),
            "body_source",
            "body_html",
            ", version = version + 1, updated_at = $5, change_note = 'Edited by the moderators.'",
        ),
        TargetType::Artefact => (
            "artefacts",
            "title",
            None,
            "description_source",
            "description_html",
            ", version = version + 1, updated_at = $5, change_note = 'Edited by the moderators.'",
        ),
        TargetType::Comment => ("comments", "body_source", None, "body_source", "body_html", ", edited_at = $5"),
        TargetType::MeetupEvent => {
            ("meetup_events", "title", None, "description_source", "description_html", ", updated_at = $5")
        }
        TargetType::Member => ("members", "display_name", None, "bio", "bio", ", updated_at = $5"),
    };
    // A case study or an artefact is locked before its text is read, so the version kept
    // is the one this edit replaces.
    let subject = match target.kind {
        TargetType::CaseStudy => Some(history::Subject::CaseStudy),
        TargetType::Artefact => Some(history::Subject::Artefact),
        _ => None,
    };
    let version = match subject {
        Some(subject) => history::lock(tx, dialect, subject, target.id).await?,
        None => None,
    };
    let summary_select = summary_col.unwrap_or("''");
    let row = sqlx::query(&format!(
        "SELECT {title_col} AS title, {summary_select} AS summary, {source_col} AS source FROM {table} WHERE id = $1"
    ))
    .bind(target.id)
    .fetch_optional(&mut **tx)
    .await?
    .ok_or(AppError::NotFound("What was flagged"))?;
    let old_title: String = row.try_get("title")?;
    let old_summary: String = row.try_get("summary")?;
    let old_source: String = row.try_get("source")?;
    let title = edit.title.clone().unwrap_or_else(|| old_title.clone());
    let summary = edit.summary.clone().unwrap_or_else(|| old_summary.clone());
    let (source, html) = match &edit.body {
        Some((source, rendered)) => (source.clone(), rendered.html.clone()),
        None => (old_source.clone(), String::new()),
    };
    if let (Some(subject), Some(version)) = (subject, version) {
        history::keep(tx, subject, target.id, version, actor_id, now).await?;
    }
    // A member's bio is plain text (its "html" is the source column itself) and a
    // comment has no title: only the columns that exist are set, each bound once.
    let mut sets: Vec<(String, String)> = Vec::new();
    if target.kind != TargetType::Comment {
        sets.push((title_col.to_string(), title.trim().to_string()));
    }
    if let Some(col) = summary_col {
        sets.push((col.to_string(), summary.trim().to_string()));
    }
    sets.push((source_col.to_string(), source.clone()));
    if html_col != source_col && edit.body.is_some() {
        sets.push((html_col.to_string(), html));
    }
    let assignments: Vec<String> = sets.iter().enumerate().map(|(i, (col, _))| format!("{col} = ${}", i + 1)).collect();
    let n = sets.len();
    let extra = extra.replace("$5", &format!("${}", n + 1));
    let sql = format!("UPDATE {table} SET {}{extra} WHERE id = ${}", assignments.join(", "), n + 2);
    let mut query = sqlx::query(&sql);
    for (_, value) in &sets {
        query = query.bind(value.as_str());
    }
    query.bind(now).bind(target.id).execute(&mut **tx).await?;
    let shape = |title: &str, summary: &str, body: &str| {
        let mut value = json!({ "body": body });
        if target.kind != TargetType::Comment {
            value["title"] = json!(title);
        }
        if summary_col.is_some() {
            value["summary"] = json!(summary);
        }
        value
    };
    Ok((shape(&old_title, &old_summary, &old_source), shape(title.trim(), summary.trim(), &source)))
}

/// Hides (`Some(reason)`) or restores (`None`) an item without a review, audited, in one
/// transaction. False when there was nothing to change.
pub async fn set_hidden(db: &Db, actor_id: i64, target: Target, hide: Option<&str>, reason: &str) -> AppResult<bool> {
    let now = db::now_millis();
    let mut tx = db.begin_write().await?;
    let changed = match hide {
        Some(shown_reason) => hide_in(&mut tx, target, shown_reason, now, false).await?,
        None => restore_in(&mut tx, target).await?,
    };
    if !changed && hide.is_none() {
        tx.rollback().await?;
        return Ok(false);
    }
    audit::append(
        &mut tx,
        Entry {
            actor_id: Some(actor_id),
            action: if hide.is_some() { "hide" } else { "restore" },
            target_type: target.kind.as_str(),
            target_id: target.id,
            reason,
            before: None,
            after: None,
        },
    )
    .await?;
    tx.commit().await?;
    Ok(true)
}

/// Hidden state of items, for the resolvers: `(hidden_at, hidden_reason)` by id.
pub async fn hidden_of(db: &Db, kind: TargetType, ids: &[i64]) -> AppResult<HashMap<i64, (i64, String)>> {
    let Some(table) = kind.hidden_table() else { return Ok(HashMap::new()) };
    let select = format!("SELECT id, hidden_at, hidden_reason FROM {table} WHERE hidden_at IS NOT NULL AND id IN");
    let mut map = HashMap::new();
    for row in db::rows_by_ids(db, &select, ids).await? {
        map.insert(row.try_get(0)?, (row.try_get(1)?, row.try_get::<Option<String>, _>(2)?.unwrap_or_default()));
    }
    Ok(map)
}
