//! Revision history of case studies and artefacts: every saved version in full, with the
//! note its author wrote when saving it, and a word-level comparison of any two.
//!
//! The current version lives on the subject's own row (`case_studies`, `artefacts`);
//! each edit first copies the version it replaces, note included, into the subject's
//! revisions table ([`keep`]), then updates the row. A version's time and author are
//! those of the save that made it: for version n, when version n − 1 was replaced and by
//! whom (that revision's `edited_at` and `edited_by`); for version 1, the subject's
//! creation by whoever created it.
//!
//! Readers of a case study see its history from the version that was current when it was
//! first published on: what its authors wrote before publishing stays theirs. Artefacts
//! are public from the start, so everyone sees all of theirs.

pub mod graphql;

use std::{collections::HashMap, time::Duration};

use sqlx::{any::AnyRow, Row};

use crate::{
    cpu,
    db::{Db, Dialect, Tx},
    error::AppResult,
};

/// The longest change note, in characters: a line, as GOV.UK's are.
pub const CHANGE_NOTE_MAX: usize = 300;
/// The most earlier versions read back (the oldest beyond are kept, not listed).
const REVISIONS_MAX: i64 = 200;
/// How long a comparison may take before it settles for a coarser result (whole runs of
/// words rather than the fewest changed words), so that two long, very different bodies
/// cannot hold a thread.
const DIFF_DEADLINE: Duration = Duration::from_millis(200);

/// What has a history.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Subject {
    CaseStudy,
    Artefact,
}

impl Subject {
    /// The subject's table, its revisions table, and the revisions' key to the subject.
    const fn tables(self) -> (&'static str, &'static str, &'static str) {
        match self {
            Subject::CaseStudy => ("case_studies", "case_study_revisions", "case_study_id"),
            Subject::Artefact => ("artefacts", "artefact_revisions", "artefact_id"),
        }
    }

    /// The columns a version's text is made of, the same on both tables.
    pub const fn text_columns(self) -> &'static str {
        match self {
            Subject::CaseStudy => "title, summary, body_source, phase",
            Subject::Artefact => "title, kind, description_source, url, licence, status",
        }
    }
}

/// Where a subject's history starts, and how much of it a reader sees.
#[derive(Clone, Copy, Debug)]
pub struct Origin {
    pub subject: Subject,
    pub id: i64,
    /// The current version's number.
    pub version: i64,
    /// When, and by whom, version 1 was saved.
    pub created_at: i64,
    pub created_by: i64,
    pub seen: Seen,
}

/// How much of a history a reader sees.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Seen {
    All,
    /// From the version current at this time on (a case study's first publication).
    From(i64),
    Nothing,
}

/// One saved version, without its text (see [`text`]).
#[derive(Clone, Debug)]
pub struct Version {
    pub subject: Subject,
    pub subject_id: i64,
    pub version: i64,
    pub title: String,
    pub change_note: String,
    pub saved_at: i64,
    pub saved_by: i64,
    /// Whether it is the subject's current text.
    pub current: bool,
}

/// Locks the subject's row for the rest of `tx` (SQLite's write transaction already
/// excludes other writers) and returns its current version, or `None` when there is no
/// such row. Every edit starts here: two edits of one version must not both copy it into
/// the revisions, so the second waits and then sees the version moved on.
pub async fn lock(tx: &mut Tx, dialect: Dialect, subject: Subject, id: i64) -> AppResult<Option<i64>> {
    let (table, _, _) = subject.tables();
    let sql = format!("SELECT version FROM {table} WHERE id = $1{}", dialect.for_update());
    Ok(sqlx::query_scalar(&sql).bind(id).fetch_optional(&mut **tx).await?)
}

/// Copies the current text of `id` at `version` (locked, see [`lock`]), change note
/// included, into its revisions as replaced by `editor_id` at `now`: the step of every
/// edit before the row changes, in its transaction. Copied in the database, not read
/// into memory.
pub async fn keep(tx: &mut Tx, subject: Subject, id: i64, version: i64, editor_id: i64, now: i64) -> AppResult<()> {
    let (table, revisions, key) = subject.tables();
    let columns = subject.text_columns();
    sqlx::query(&format!(
        "INSERT INTO {revisions} ({key}, version, {columns}, change_note, edited_by, edited_at) \
         SELECT id, version, {columns}, change_note, $1, $2 FROM {table} WHERE id = $3 AND version = $4"
    ))
    .bind(editor_id)
    .bind(now)
    .bind(id)
    .bind(version)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Every version of the subject that the reader may see (`origin.seen`), newest first.
pub async fn versions(db: &Db, origin: Origin) -> AppResult<Vec<Version>> {
    if origin.seen == Seen::Nothing {
        return Ok(Vec::new());
    }
    let (table, revisions, key) = origin.subject.tables();
    let rows = sqlx::query(&format!(
        "SELECT version, title, change_note, edited_by, edited_at FROM {revisions} \
         WHERE {key} = $1 ORDER BY version DESC LIMIT $2"
    ))
    .bind(origin.id)
    .bind(REVISIONS_MAX)
    .fetch_all(&db.pool)
    .await?;
    let (title, change_note): (String, String) =
        sqlx::query_as(&format!("SELECT title, change_note FROM {table} WHERE id = $1"))
            .bind(origin.id)
            .fetch_one(&db.pool)
            .await?;
    // Who replaced each earlier version, and when: the save that made the one after it.
    let mut replaced: HashMap<i64, (i64, i64)> = HashMap::new();
    for row in &rows {
        replaced.insert(row.try_get("version")?, (row.try_get("edited_at")?, row.try_get("edited_by")?));
    }
    let saved = |version: i64| replaced.get(&(version - 1)).copied().unwrap_or((origin.created_at, origin.created_by));
    let version = |number: i64, title: String, change_note: String, current: bool| {
        let (saved_at, saved_by) = saved(number);
        Version {
            subject: origin.subject,
            subject_id: origin.id,
            version: number,
            title,
            change_note,
            saved_at,
            saved_by,
            current,
        }
    };
    let mut list = vec![version(origin.version, title, change_note, true)];
    // The rows are newest first already.
    for row in &rows {
        let number: i64 = row.try_get("version")?;
        if number < origin.version {
            list.push(version(number, row.try_get("title")?, row.try_get("change_note")?, false));
        }
    }
    if let Seen::From(since) = origin.seen {
        // Newest first: keep those saved after `since` and the first saved before it.
        let cut = list.iter().position(|v| v.saved_at <= since).map_or(list.len(), |i| i + 1);
        list.truncate(cut);
    }
    Ok(list)
}

/// The text of one version (which the caller found among [`versions`]): the subject's
/// [`Subject::text_columns`]. Read from the row or from the revisions, whichever holds
/// it now, so an edit saved since the version was listed changes nothing.
pub async fn text(db: &Db, version: &Version) -> AppResult<AnyRow> {
    let (table, revisions, key) = version.subject.tables();
    let columns = version.subject.text_columns();
    Ok(sqlx::query(&format!(
        "SELECT {columns} FROM {table} WHERE id = $1 AND version = $2 \
         UNION ALL SELECT {columns} FROM {revisions} WHERE {key} = $1 AND version = $2"
    ))
    .bind(version.subject_id)
    .bind(version.version)
    .fetch_one(&db.pool)
    .await?)
}

/// What happened to a run of words between two versions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, async_graphql::Enum)]
pub enum Change {
    Unchanged,
    Added,
    Removed,
}

/// A run of text (words and the spaces between them) that changed the same way.
#[derive(Clone, Debug, PartialEq, Eq, async_graphql::SimpleObject)]
pub struct DiffPart {
    pub change: Change,
    pub text: String,
}

/// `old` against `new`, word by word: the runs that stayed, went and came, in reading
/// order (what went before what came in its place). Put together, the unchanged and
/// removed runs are `old` and the unchanged and added ones `new`.
pub fn diff_words(old: &str, new: &str) -> Vec<DiffPart> {
    let diff = similar::TextDiff::configure().timeout(DIFF_DEADLINE).diff_words(old, new);
    let mut parts: Vec<DiffPart> = Vec::new();
    for change in diff.iter_all_changes() {
        let kind = match change.tag() {
            similar::ChangeTag::Equal => Change::Unchanged,
            similar::ChangeTag::Insert => Change::Added,
            similar::ChangeTag::Delete => Change::Removed,
        };
        match parts.last_mut() {
            Some(last) if last.change == kind => last.text.push_str(change.value()),
            _ => parts.push(DiffPart { change: kind, text: change.value().to_string() }),
        }
    }
    parts
}

/// Pairs of texts (old, new) compared word by word on the CPU pool (a body is up to
/// 100 KB): the parts of each pair, in the pairs' order.
pub async fn compare<const N: usize>(pairs: [(String, String); N]) -> AppResult<[Vec<DiffPart>; N]> {
    cpu::off_the_workers(move || pairs.map(|(old, new)| diff_words(&old, &new))).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn joined(parts: &[DiffPart], keep: Change) -> String {
        parts.iter().filter(|p| p.change == Change::Unchanged || p.change == keep).map(|p| p.text.as_str()).collect()
    }

    #[test]
    fn words_that_changed_are_marked_and_both_texts_can_be_rebuilt() {
        let old = "We cut missed bins by 20% in Bath.";
        let new = "We cut missed bins by 35% in Bath and Wells.";
        let parts = diff_words(old, new);
        let part = |change, text: &str| DiffPart { change, text: text.to_string() };
        assert_eq!(
            parts,
            vec![
                part(Change::Unchanged, "We cut missed bins by "),
                part(Change::Removed, "20%"),
                part(Change::Added, "35%"),
                part(Change::Unchanged, " in "),
                part(Change::Removed, "Bath."),
                part(Change::Added, "Bath and Wells."),
            ]
        );
        assert_eq!(joined(&parts, Change::Removed), old);
        assert_eq!(joined(&parts, Change::Added), new);
        assert_eq!(diff_words("same", "same"), vec![part(Change::Unchanged, "same")]);
        assert!(diff_words("", "").is_empty());
    }

    #[test]
    fn long_texts_are_compared_within_the_deadline() {
        let old: String = (0..20_000).map(|i| format!("w{i} ")).collect();
        let new: String = (0..20_000).map(|i| format!("v{} ", i * 7 % 20_000)).collect();
        let started = std::time::Instant::now();
        let parts = diff_words(&old, &new);
        assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
        assert_eq!(joined(&parts, Change::Removed), old);
        assert_eq!(joined(&parts, Change::Added), new);
    }
}
