//! Comments on case studies and artefacts: Markdown, rendered on write like everything
//! members write, with `@mentions`, and one level of replies (a reply to a reply joins
//! the same thread), which keeps threads readable and their queries simple.
//!
//! Members edit and delete their own comments; moderators and admins may delete any. A
//! deleted comment that has replies stays as a placeholder with its text gone, so the
//! replies keep their context; without replies it goes entirely.

pub mod graphql;

use std::collections::HashMap;

use sqlx::{any::AnyRow, Row};

use crate::{
    db::{self, text_enum::UnknownValue, Db, ListOrder},
    error::{AppError, AppResult},
    markdown,
    notifications::follows,
    outbox,
};

pub const BODY_MAX: usize = 10_000;
/// How many comments one case study or artefact may gather, replies included.
pub const PER_SUBJECT_MAX: i64 = 2_000;
/// How many replies one thread may gather.
pub const REPLIES_MAX: i64 = 200;

/// What a comment is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Subject {
    CaseStudy(i64),
    Artefact(i64),
}

impl Subject {
    fn parts(self) -> (&'static str, i64) {
        match self {
            Subject::CaseStudy(id) => ("case_study", id),
            Subject::Artefact(id) => ("artefact", id),
        }
    }

    /// The subject's GraphQL type name and id, as outbox events name subjects.
    pub fn node(self) -> (&'static str, i64) {
        match self {
            Subject::CaseStudy(id) => ("CaseStudy", id),
            Subject::Artefact(id) => ("Artefact", id),
        }
    }
}

#[derive(Clone, Debug)]
pub struct Comment {
    pub id: i64,
    pub subject: Subject,
    pub parent_id: Option<i64>,
    pub author_id: i64,
    pub body_source: String,
    pub body_html: String,
    pub created_at: i64,
    pub edited_at: Option<i64>,
    pub deleted_at: Option<i64>,
    /// Hidden by the moderators (see `moderation`): it keeps its place in the thread as a
    /// placeholder, as a deleted comment with replies does, and its author still sees it.
    pub hidden_at: Option<i64>,
    pub hidden_reason: Option<String>,
}

const COLUMNS: &str =
    "id, subject_type, subject_id, parent_id, author_id, body_source, body_html, created_at, edited_at, \
     deleted_at, hidden_at, hidden_reason";

impl Comment {
    fn from_row(row: &AnyRow) -> sqlx::Result<Comment> {
        let subject_id: i64 = row.try_get("subject_id")?;
        let subject = match row.try_get::<String, _>("subject_type")?.as_str() {
            "case_study" => Subject::CaseStudy(subject_id),
            "artefact" => Subject::Artefact(subject_id),
            other => return Err(sqlx::Error::Decode(UnknownValue::new("Subject", other).into())),
        };
        Ok(Comment {
            id: row.try_get("id")?,
            subject,
            parent_id: row.try_get("parent_id")?,
            author_id: row.try_get("author_id")?,
            body_source: row.try_get("body_source")?,
            body_html: row.try_get("body_html")?,
            created_at: row.try_get("created_at")?,
            edited_at: row.try_get("edited_at")?,
            deleted_at: row.try_get("deleted_at")?,
            hidden_at: row.try_get("hidden_at")?,
            hidden_reason: row.try_get("hidden_reason")?,
        })
    }
}

pub async fn by_ids(db: &Db, ids: &[i64]) -> AppResult<HashMap<i64, Comment>> {
    let rows = db::rows_by_ids(db, &format!("SELECT {COLUMNS} FROM comments WHERE id IN"), ids).await?;
    Ok(rows.iter().map(|r| Comment::from_row(r).map(|c| (c.id, c))).collect::<sqlx::Result<_>>()?)
}

/// A subject's top-level comments, oldest first, keyset on id (served by
/// `comments_subject`).
pub async fn threads(db: &Db, subject: Subject, keyset: &db::Keyset<i64>) -> AppResult<Vec<Comment>> {
    let order = keyset.direction(ListOrder::Ascending);
    let (subject_type, subject_id) = subject.parts();
    let sql = format!(
        "SELECT {COLUMNS} FROM comments WHERE subject_type = $1 AND subject_id = $2 AND parent_id IS NULL \
         AND {} ORDER BY id {order} LIMIT $5",
        keyset.conditions("id", ListOrder::Ascending, "$3", "$4")
    );
    let rows = sqlx::query(&sql)
        .bind(subject_type)
        .bind(subject_id)
        .bind(keyset.after)
        .bind(keyset.before)
        .bind(keyset.fetch)
        .fetch_all(&db.pool)
        .await?;
    Ok(rows.iter().map(Comment::from_row).collect::<sqlx::Result<_>>()?)
}

/// The replies to each comment, oldest first (served by `comments_replies`).
pub async fn replies_of(db: &Db, ids: &[i64]) -> AppResult<HashMap<i64, Vec<Comment>>> {
    let mut map: HashMap<i64, Vec<Comment>> = ids.iter().map(|id| (*id, Vec::new())).collect();
    let select = format!("SELECT {COLUMNS} FROM comments WHERE parent_id IN");
    for row in db::rows_by_ids_grouped(db, &select, ids, "ORDER BY parent_id, id").await? {
        let reply = Comment::from_row(&row)?;
        map.entry(reply.parent_id.unwrap_or_default()).or_default().push(reply);
    }
    Ok(map)
}

pub enum Posted {
    Done(Comment),
    /// The subject or the thread is full.
    Full(&'static str),
}

/// Posts a comment (a reply when `parent` is given: a top-level comment of the same
/// subject), recording `comment.posted` and a `member.mentioned` for each mention.
pub async fn post(
    db: &Db,
    subject: Subject,
    parent: Option<&Comment>,
    author_id: i64,
    body: &str,
) -> AppResult<Posted> {
    let rendered = markdown::render_linked(db, body.trim()).await?;
    let (subject_type, subject_id) = subject.parts();
    let now = db::now_millis();
    let mut tx = db.begin_write().await?;
    // The counts below and the insert happen under one lock, or parallel posts would all
    // see room for one more: SQLite's write transaction excludes other writers, and on
    // PostgreSQL the subject's row is locked first, so posts about one subject (and so
    // to each of its threads) queue behind each other.
    let subject_table = match subject {
        Subject::CaseStudy(_) => "case_studies",
        Subject::Artefact(_) => "artefacts",
    };
    sqlx::query(&format!("SELECT id FROM {subject_table} WHERE id = $1{}", db.dialect.for_update()))
        .bind(subject_id)
        .fetch_optional(&mut *tx)
        .await?;
    let total: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM comments WHERE subject_type = $1 AND subject_id = $2")
        .bind(subject_type)
        .bind(subject_id)
        .fetch_one(&mut *tx)
        .await?;
    if total >= PER_SUBJECT_MAX {
        return Ok(Posted::Full("This conversation is full: it has reached 2,000 comments."));
    }
    if let Some(parent) = parent {
        let replies: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM comments WHERE parent_id = $1")
            .bind(parent.id)
            .fetch_one(&mut *tx)
            .await?;
        if replies >= REPLIES_MAX {
            return Ok(Posted::Full("This thread is full: it has reached 200 replies. Start a new comment instead."));
        }
    }
    let row = sqlx::query(&format!(
        "INSERT INTO comments (subject_type, subject_id, parent_id, author_id, body_source, body_html, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING {COLUMNS}"
    ))
    .bind(subject_type)
    .bind(subject_id)
    .bind(parent.map(|p| p.id))
    .bind(author_id)
    .bind(body.trim())
    .bind(&rendered.html)
    .bind(now)
    .fetch_one(&mut *tx)
    .await?;
    let comment = Comment::from_row(&row)?;
    let event = outbox::CommentPosted {
        comment_id: comment.id,
        parent_id: comment.parent_id,
        parent_author_id: parent.map(|p| p.author_id),
    };
    outbox::record(&mut tx, subject.node(), Some(author_id), event).await?;
    outbox::record_mentions(&mut tx, ("Comment", comment.id), author_id, &rendered.mentioned_ids).await?;
    let (type_name, id) = subject.node();
    follows::watch_automatically(&mut tx, author_id, follows::Target { type_name, id }).await?;
    tx.commit().await?;
    Ok(Posted::Done(comment))
}

/// Replaces a comment's text. Mentions added by the edit are not announced again: an
/// edit should not become a way to notify someone twice.
pub async fn edit(db: &Db, id: i64, body: &str) -> AppResult<Comment> {
    let rendered = markdown::render_linked(db, body.trim()).await?;
    let row = sqlx::query(&format!(
        "UPDATE comments SET body_source = $1, body_html = $2, edited_at = $3 WHERE id = $4 AND deleted_at IS NULL \
         RETURNING {COLUMNS}"
    ))
    .bind(body.trim())
    .bind(&rendered.html)
    .bind(db::now_millis())
    .bind(id)
    .fetch_optional(&db.pool)
    .await?;
    row.map(|r| Comment::from_row(&r)).transpose()?.ok_or(AppError::NotFound("That comment"))
}

/// Deletes a comment: a placeholder when it has replies, gone otherwise; a placeholder
/// whose last reply goes, goes too. `moderator` (their id and reason) when someone other
/// than the author deletes it: the audit row commits with the deletion. It names the
/// author by id and the subject, not the text, which the log would otherwise keep for
/// ever, past any erasure.
pub async fn delete(db: &Db, comment: &Comment, moderator: Option<(i64, &str)>) -> AppResult<()> {
    let mut tx = db.begin_write().await?;
    if let Some((actor_id, reason)) = moderator {
        let (subject_type, subject_id) = comment.subject.parts();
        crate::moderation::audit::append(
            &mut tx,
            crate::moderation::audit::Entry {
                actor_id: Some(actor_id),
                action: crate::moderation::audit::DELETE_COMMENT,
                target_type: "comment",
                target_id: comment.id,
                reason,
                before: Some(serde_json::json!({
                    "author": comment.author_id,
                    "subjectType": subject_type,
                    "subjectId": subject_id,
                    "parent": comment.parent_id,
                })),
                after: None,
            },
        )
        .await?;
    }
    let replies: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM comments WHERE parent_id = $1")
        .bind(comment.id)
        .fetch_one(&mut *tx)
        .await?;
    if replies > 0 {
        sqlx::query("UPDATE comments SET body_source = '', body_html = '', deleted_at = $1 WHERE id = $2")
            .bind(db::now_millis())
            .bind(comment.id)
            .execute(&mut *tx)
            .await?;
    } else {
        sqlx::query("DELETE FROM comments WHERE id = $1").bind(comment.id).execute(&mut *tx).await?;
        if let Some(parent_id) = comment.parent_id {
            sqlx::query(
                "DELETE FROM comments WHERE id = $1 AND deleted_at IS NOT NULL \
                 AND NOT EXISTS (SELECT 1 FROM comments r WHERE r.parent_id = $1)",
            )
            .bind(parent_id)
            .execute(&mut *tx)
            .await?;
        }
    }
    tx.commit().await?;
    Ok(())
}
