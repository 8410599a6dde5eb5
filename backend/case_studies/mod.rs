//! Case studies: what a team did and what it learned, in Markdown with structured fields.
//!
//! A case study starts as a draft that only its authors (the author and the co-authors
//! who accepted their invitation, see [`coauthors`]) can see, anywhere: lists, search,
//! feeds, `node(id:)` and page addresses all go through [`CaseStudy::visible_to`]. Authors
//! edit it; every edit keeps the previous text as a
//! revision (see `history`) and bumps the version, and an edit based on an older version is refused as a
//! conflict, so no one's edit is silently lost.

pub mod coauthors;
pub mod graphql;
pub mod marks;

use std::collections::HashMap;

use sqlx::{FromRow, Row};

use crate::{
    accounts,
    db::{self, Db, ListOrder, Tx},
    error::{AppError, AppResult},
    history, markdown,
    notifications::follows,
    outbox,
    search::{self, SearchKind},
};

pub const TITLE_MAX: usize = 150;
pub const SUMMARY_MAX: usize = 300;
pub const BODY_MAX_BYTES: usize = 100 * 1024;
pub const CO_AUTHORS_MAX: usize = 10;

crate::text_enum! {
    #[derive(Clone, Copy, Debug, PartialEq, Eq, async_graphql::Enum)]
    pub enum Phase {
        Discovery => "discovery",
        Alpha => "alpha",
        Beta => "beta",
        Live => "live",
        Retired => "retired",
    }
}

crate::text_enum! {
    #[derive(Clone, Copy, Debug, PartialEq, Eq, async_graphql::Enum)]
    pub enum CaseStudyStatus {
        Draft => "draft",
        Published => "published",
        Archived => "archived",
    }
}

/// A case study as lists show it: everything but the body, which only a page of its own
/// needs (see [`Body`]), and with the counts every list shows, kept on the row by
/// triggers (migration 0014) so that a list never counts.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct CaseStudy {
    pub id: i64,
    pub title: String,
    pub summary: String,
    pub phase: Phase,
    pub organisation_id: Option<i64>,
    pub author_id: i64,
    pub status: CaseStudyStatus,
    pub version: i64,
    pub created_at: i64,
    pub updated_at: i64,
    pub published_at: Option<i64>,
    /// Hidden by the moderators (see `moderation`): its authors still see it.
    pub hidden_at: Option<i64>,
    pub hidden_reason: Option<String>,
    /// Members who marked it useful.
    pub useful_count: i64,
    /// Comments not deleted, replies included.
    pub comment_count: i64,
    /// Artefacts linked to it.
    pub artefact_count: i64,
}

const COLUMNS: &str =
    "id, title, summary, phase, organisation_id, author_id, status, version, created_at, updated_at, \
                       published_at, hidden_at, hidden_reason, useful_count, comment_count, artefact_count";

fn columns_of(alias: &str) -> String {
    COLUMNS.split(',').map(|c| format!("{alias}.{}", c.trim())).collect::<Vec<_>>().join(", ")
}

/// A case study's body: up to 100 KB of Markdown and its HTML, rendered when saved. Read
/// only where it is shown, through its own loader.
#[derive(Clone, Debug)]
pub struct Body {
    pub source: String,
    pub html: String,
}

/// The bodies of case studies, in one statement.
pub async fn bodies(db: &Db, ids: &[i64]) -> AppResult<HashMap<i64, Body>> {
    let rows = db::rows_by_ids(db, "SELECT id, body_source, body_html FROM case_studies WHERE id IN", ids).await?;
    rows.iter()
        .map(|r| Ok((r.try_get("id")?, Body { source: r.try_get("body_source")?, html: r.try_get("body_html")? })))
        .collect::<sqlx::Result<_>>()
        .map_err(Into::into)
}

/// The Markdown body of one case study, read in `tx`.
async fn body_source(tx: &mut Tx, id: i64) -> AppResult<String> {
    Ok(sqlx::query_scalar("SELECT body_source FROM case_studies WHERE id = $1").bind(id).fetch_one(&mut **tx).await?)
}

impl CaseStudy {
    /// Drafts are for their authors' eyes only; everything else is public.
    pub fn visible_to(&self, viewer: Option<i64>, authors: &[i64]) -> bool {
        self.status != CaseStudyStatus::Draft || viewer.is_some_and(|v| authors.contains(&v))
    }
}

pub async fn by_ids(db: &Db, ids: &[i64]) -> AppResult<HashMap<i64, CaseStudy>> {
    let rows = db::rows_by_ids(db, &format!("SELECT {COLUMNS} FROM case_studies WHERE id IN"), ids).await?;
    Ok(rows.iter().map(|r| CaseStudy::from_row(r).map(|c| (c.id, c))).collect::<sqlx::Result<_>>()?)
}

/// Author and co-author ids of each case study, author first: co-authors who accepted
/// their invitation, never those still invited.
pub async fn authors_of(db: &Db, ids: &[i64]) -> AppResult<HashMap<i64, Vec<i64>>> {
    let select = "SELECT case_study_id, member_id FROM case_study_authors WHERE case_study_id IN";
    Ok(db::id_lists(db, select, ids, "ORDER BY case_study_id, position").await?)
}

/// What a published list is narrowed to.
#[derive(Clone, Copy, Debug, Default)]
pub struct Filter {
    pub topic_id: Option<i64>,
    pub organisation_id: Option<i64>,
    pub phase: Option<Phase>,
    pub author_id: Option<i64>,
}

/// Published case studies, newest first, keyset on (published_at, id). The latest,
/// by-organisation and by-phase lists each have a partial index in that order; topic and
/// author lists start from their link tables' indexes.
pub async fn list_published(db: &Db, filter: Filter, keyset: &db::Keyset<(i64, i64)>) -> AppResult<Vec<CaseStudy>> {
    let (after_at, after_id) = keyset.after.unzip();
    let (before_at, before_id) = keyset.before.unzip();
    let sql = list_published_sql(keyset, &filter);
    let rows = sqlx::query(&sql)
        .bind(filter.organisation_id)
        .bind(filter.phase.map(Phase::as_str))
        .bind(filter.topic_id)
        .bind(filter.author_id)
        .bind(after_at)
        .bind(after_id)
        .bind(before_at)
        .bind(before_id)
        .bind(keyset.fetch)
        .fetch_all(&db.pool)
        .await?;
    Ok(rows.iter().map(CaseStudy::from_row).collect::<sqlx::Result<_>>()?)
}

/// The SQL of [`list_published`], public so a test can check its plan on both databases.
/// Binds: organisation, phase, topic, author, after (published_at, id), before
/// (published_at, id), limit; only the filters that are set become conditions (see
/// [`db::filter_condition`]).
pub fn list_published_sql(keyset: &db::Keyset<(i64, i64)>, filter: &Filter) -> String {
    let order = keyset.direction(ListOrder::Descending);
    let condition = db::filter_condition;
    format!(
        "SELECT {} FROM case_studies c WHERE c.status = 'published' AND c.hidden_at IS NULL AND {} AND {} AND {} AND {} \
         AND {} ORDER BY c.published_at {order}, c.id {order} LIMIT $9",
        columns_of("c"),
        condition(filter.organisation_id.is_some(), "$1", "c.organisation_id = $1"),
        condition(filter.phase.is_some(), "$2", "c.phase = $2"),
        condition(
            filter.topic_id.is_some(),
            "$3",
            "EXISTS (SELECT 1 FROM case_study_topics t WHERE t.case_study_id = c.id AND t.topic_id = $3)"
        ),
        condition(
            filter.author_id.is_some(),
            "$4",
            "EXISTS (SELECT 1 FROM case_study_authors a WHERE a.case_study_id = c.id AND a.member_id = $4)"
        ),
        keyset.conditions("(c.published_at, c.id)", ListOrder::Descending, "($5, $6)", "($7, $8)"),
    )
}

/// A member's own case studies in every state (drafts included), newest first.
pub async fn list_authored(db: &Db, member_id: i64, keyset: &db::Keyset<i64>) -> AppResult<Vec<CaseStudy>> {
    let order = keyset.direction(ListOrder::Descending);
    let sql = format!(
        "SELECT {} FROM case_studies c JOIN case_study_authors a ON a.case_study_id = c.id WHERE a.member_id = $1 \
         AND {} ORDER BY c.id {order} LIMIT $4",
        columns_of("c"),
        keyset.conditions("c.id", ListOrder::Descending, "$2", "$3")
    );
    let rows = sqlx::query(&sql)
        .bind(member_id)
        .bind(keyset.after)
        .bind(keyset.before)
        .bind(keyset.fetch)
        .fetch_all(&db.pool)
        .await?;
    Ok(rows.iter().map(CaseStudy::from_row).collect::<sqlx::Result<_>>()?)
}

/// Validated fields for a new case study or an edit.
#[derive(Clone)]
pub struct Fields {
    pub title: String,
    pub summary: String,
    pub body_source: String,
    pub phase: Phase,
    pub organisation_id: Option<i64>,
    pub topic_ids: Vec<i64>,
    /// Who should be a co-author: those who are not yet are invited (see [`coauthors`]).
    pub co_author_ids: Vec<i64>,
}

/// Sets the topics and co-authors; `inviter_id` is the author saving them.
async fn replace_links(
    tx: &mut Tx,
    case_study_id: i64,
    author_id: i64,
    inviter_id: i64,
    fields: &Fields,
) -> AppResult<()> {
    sqlx::query("DELETE FROM case_study_topics WHERE case_study_id = $1")
        .bind(case_study_id)
        .execute(&mut **tx)
        .await?;
    for topic_id in &fields.topic_ids {
        sqlx::query("INSERT INTO case_study_topics (case_study_id, topic_id) VALUES ($1, $2)")
            .bind(case_study_id)
            .bind(topic_id)
            .execute(&mut **tx)
            .await?;
    }
    coauthors::sync(tx, case_study_id, author_id, inviter_id, &fields.co_author_ids).await
}

pub async fn create(db: &Db, author_id: i64, fields: &Fields) -> AppResult<CaseStudy> {
    let rendered = markdown::render_linked(db, &fields.body_source).await?;
    let now = db::now_millis();
    let mut tx = db.begin_write().await?;
    let sql = format!(
        "INSERT INTO case_studies (title, summary, body_source, body_html, phase, organisation_id, author_id, status, version, \
         created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, 'draft', 1, $8, $8) RETURNING {COLUMNS}"
    );
    let row = sqlx::query(&sql)
        .bind(fields.title.trim())
        .bind(fields.summary.trim())
        .bind(&fields.body_source)
        .bind(&rendered.html)
        .bind(fields.phase.as_str())
        .bind(fields.organisation_id)
        .bind(author_id)
        .bind(now)
        .fetch_one(&mut *tx)
        .await?;
    let case_study = CaseStudy::from_row(&row)?;
    replace_links(&mut tx, case_study.id, author_id, author_id, fields).await?;
    follows::watch_automatically(&mut tx, author_id, follows::Target { type_name: "CaseStudy", id: case_study.id })
        .await?;
    tx.commit().await?;
    Ok(case_study)
}

/// Deletes a draft that was never published, with what hangs off it: follows of it
/// (its authors watch what they write) and, through the foreign keys, its authors,
/// invitations, revisions, marks and links. It has no conversation: nobody can comment
/// on a draft. False when `id` is no such draft. A
/// case study that has been public is archived instead, never deleted: others may have
/// read, linked or reused it.
pub async fn delete_draft(db: &Db, id: i64) -> AppResult<bool> {
    let mut tx = db.begin_write().await?;
    let deleted = sqlx::query("DELETE FROM case_studies WHERE id = $1 AND status = 'draft' AND published_at IS NULL")
        .bind(id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    if deleted == 0 {
        tx.rollback().await?;
        return Ok(false);
    }
    sqlx::query("DELETE FROM follows WHERE target_type = 'CaseStudy' AND target_id = $1")
        .bind(id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(true)
}

pub enum EditOutcome {
    Saved(CaseStudy),
    /// Someone saved a newer version first; this is the current one.
    Conflict(CaseStudy),
}

/// Saves an edit made to `expected_version`, with its `change_note` (checked by the
/// caller; may be empty), keeping the text and note it replaces as a revision.
pub async fn update(
    db: &Db,
    id: i64,
    expected_version: i64,
    editor_id: i64,
    fields: &Fields,
    change_note: &str,
) -> AppResult<EditOutcome> {
    let rendered = markdown::render_linked(db, &fields.body_source).await?;
    let now = db::now_millis();
    let mut tx = db.begin_write().await?;
    // The row is locked for the rest of the transaction (SQLite's write transaction
    // already excludes other writers): the previous text is copied into a revision
    // before the update, so a second edit of the same version must wait here and then
    // see the version moved on, rather than race to insert the same revision.
    let current = sqlx::query(&format!("SELECT {COLUMNS} FROM case_studies WHERE id = $1{}", db.dialect.for_update()))
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?
        .map(|r| CaseStudy::from_row(&r))
        .transpose()?
        .ok_or(AppError::NotFound("That case study"))?;
    if current.version != expected_version {
        return Ok(EditOutcome::Conflict(current));
    }
    history::keep(&mut tx, history::Subject::CaseStudy, id, expected_version, editor_id, now).await?;
    // The version condition is a second guard: the update happens only if nobody saved
    // in between.
    let sql = format!(
        "UPDATE case_studies SET title = $1, summary = $2, body_source = $3, body_html = $4, phase = $5, organisation_id = $6, \
         version = version + 1, updated_at = $7, change_note = $10 WHERE id = $8 AND version = $9 RETURNING {COLUMNS}"
    );
    let row = sqlx::query(&sql)
        .bind(fields.title.trim())
        .bind(fields.summary.trim())
        .bind(&fields.body_source)
        .bind(&rendered.html)
        .bind(fields.phase.as_str())
        .bind(fields.organisation_id)
        .bind(now)
        .bind(id)
        .bind(expected_version)
        .bind(change_note.trim())
        .fetch_optional(&mut *tx)
        .await?;
    let Some(row) = row else {
        tx.rollback().await?;
        let current = by_ids(db, &[id]).await?.remove(&id).ok_or(AppError::NotFound("That case study"))?;
        return Ok(EditOutcome::Conflict(current));
    };
    let saved = CaseStudy::from_row(&row)?;
    replace_links(&mut tx, id, current.author_id, editor_id, fields).await?;
    // A hidden case study stays out of search until a moderator shows it again.
    if saved.status == CaseStudyStatus::Published && saved.hidden_at.is_none() {
        search::index(
            &mut tx,
            SearchKind::CaseStudy,
            id,
            &saved.title,
            &format!("{}\n\n{}", saved.summary, fields.body_source),
        )
        .await?;
        let event = outbox::CaseStudyUpdated { version: saved.version, mentions: rendered.mentions };
        outbox::record(&mut tx, ("CaseStudy", id), Some(editor_id), event).await?;
    }
    tx.commit().await?;
    Ok(EditOutcome::Saved(saved))
}

/// Moves a case study to `status` ("published" or "archived"); publishing for the first
/// time stamps `published_at` and records the event. `None` when it was already there.
pub async fn set_status(db: &Db, id: i64, status: CaseStudyStatus, actor_id: i64) -> AppResult<Option<CaseStudy>> {
    // Who the text mentions is looked up before the transaction, which then holds the
    // write lock only for writing.
    let mentioned = match bodies(db, &[id]).await?.remove(&id) {
        Some(body) if status == CaseStudyStatus::Published => {
            let handles = markdown::mention_candidates(&body.source);
            accounts::ids_by_handle(db, &handles).await?
        }
        _ => HashMap::new(),
    };
    let now = db::now_millis();
    let mut tx = db.begin_write().await?;
    let sql = match status {
        CaseStudyStatus::Published => format!(
            "UPDATE case_studies SET status = 'published', published_at = COALESCE(published_at, $1), updated_at = $1 \
             WHERE id = $2 AND status <> 'published' RETURNING {COLUMNS}"
        ),
        CaseStudyStatus::Archived => format!(
            "UPDATE case_studies SET status = 'archived', updated_at = $1 WHERE id = $2 AND status = 'published' RETURNING {COLUMNS}"
        ),
        CaseStudyStatus::Draft => return Err(AppError::bad_input("A case study cannot go back to being a draft.")),
    };
    let row = sqlx::query(&sql).bind(now).bind(id).fetch_optional(&mut *tx).await?;
    let Some(row) = row else { return Ok(None) };
    let changed = CaseStudy::from_row(&row)?;
    if status == CaseStudyStatus::Published {
        if changed.hidden_at.is_none() {
            let text = format!("{}\n\n{}", changed.summary, body_source(&mut tx, id).await?);
            search::index(&mut tx, SearchKind::CaseStudy, id, &changed.title, &text).await?;
        }
        let event = outbox::CaseStudyPublished { title: changed.title.clone() };
        outbox::record(&mut tx, ("CaseStudy", id), Some(actor_id), event).await?;
        let mentioned_ids: Vec<i64> = mentioned.into_values().collect();
        outbox::record_mentions(&mut tx, ("CaseStudy", id), actor_id, &mentioned_ids).await?;
    } else {
        search::remove(&mut tx, SearchKind::CaseStudy, id).await?;
    }
    tx.commit().await?;
    Ok(Some(changed))
}
