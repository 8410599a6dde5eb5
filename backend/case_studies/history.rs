//! A case study's history: every saved version in full, with the note its author wrote
//! when saving it, and a word-level comparison of any two.
//!
//! The current version lives on `case_studies`; each edit copies the version it replaces,
//! note included, into `case_study_revisions` (see [`super::update`]). A version's time
//! and author are those of the save that made it: for version n, when version n − 1 was
//! replaced and by whom (that revision's `edited_at` and `edited_by`); for version 1, the
//! case study's creation by its author.
//!
//! Readers see the history from the version that was current when the case study was
//! first published on: what its authors wrote before publishing stays theirs.

use std::{collections::HashMap, time::Duration};

use sqlx::Row;

use super::{CaseStudy, Phase};
use crate::{db::Db, error::AppResult};

/// The longest change note, in characters: a line, as GOV.UK's are.
pub const CHANGE_NOTE_MAX: usize = 300;
/// The most earlier versions read back (the oldest beyond are kept, not listed).
const REVISIONS_MAX: i64 = 200;
/// How long a comparison may take before it settles for a coarser result (whole runs of
/// words rather than the fewest changed words), so that two long, very different bodies
/// cannot hold a thread.
const DIFF_DEADLINE: Duration = Duration::from_millis(200);

/// One saved version, without its text (see [`content`]).
#[derive(Clone, Debug)]
pub struct Version {
    pub case_study_id: i64,
    pub version: i64,
    pub title: String,
    pub change_note: String,
    pub saved_at: i64,
    pub saved_by: i64,
    /// Whether it is the case study's current text.
    pub current: bool,
}

/// A version's text.
#[derive(Clone, Debug)]
pub struct Content {
    pub title: String,
    pub summary: String,
    pub body_source: String,
    pub phase: Phase,
}

/// Every version of `case_study` that `reader` may see, newest first: all of them for its
/// authors (`is_author`), and for everyone else those from the one current at its first
/// publication on (none while it was never published).
pub async fn versions(db: &Db, case_study: &CaseStudy, is_author: bool) -> AppResult<Vec<Version>> {
    let rows = sqlx::query(
        "SELECT version, title, change_note, edited_by, edited_at FROM case_study_revisions \
         WHERE case_study_id = $1 ORDER BY version DESC LIMIT $2",
    )
    .bind(case_study.id)
    .bind(REVISIONS_MAX)
    .fetch_all(&db.pool)
    .await?;
    let current: (String, String) = sqlx::query_as("SELECT title, change_note FROM case_studies WHERE id = $1")
        .bind(case_study.id)
        .fetch_one(&db.pool)
        .await?;
    // Who replaced each earlier version, and when: the save that made the one after it.
    let mut replaced: HashMap<i64, (i64, i64)> = HashMap::new();
    for row in &rows {
        replaced.insert(row.try_get("version")?, (row.try_get("edited_at")?, row.try_get("edited_by")?));
    }
    let saved =
        |version: i64| replaced.get(&(version - 1)).copied().unwrap_or((case_study.created_at, case_study.author_id));
    let (title, change_note) = current;
    let (saved_at, saved_by) = saved(case_study.version);
    let mut list = vec![Version {
        case_study_id: case_study.id,
        version: case_study.version,
        title,
        change_note,
        saved_at,
        saved_by,
        current: true,
    }];
    // The rows are newest first already.
    for row in &rows {
        let version: i64 = row.try_get("version")?;
        if version >= case_study.version {
            continue;
        }
        let (saved_at, saved_by) = saved(version);
        list.push(Version {
            case_study_id: case_study.id,
            version,
            title: row.try_get("title")?,
            change_note: row.try_get("change_note")?,
            saved_at,
            saved_by,
            current: false,
        });
    }
    if is_author {
        return Ok(list);
    }
    let Some(published_at) = case_study.published_at else { return Ok(Vec::new()) };
    // Newest first: keep those saved after publication and the first saved before it.
    let cut = list.iter().position(|v| v.saved_at <= published_at).map_or(list.len(), |i| i + 1);
    list.truncate(cut);
    Ok(list)
}

/// The text of one version (which the caller found among [`versions`]).
pub async fn content(db: &Db, version: &Version) -> AppResult<Content> {
    let row = if version.current {
        sqlx::query("SELECT title, summary, body_source, phase FROM case_studies WHERE id = $1")
            .bind(version.case_study_id)
            .fetch_one(&db.pool)
            .await?
    } else {
        sqlx::query(
            "SELECT title, summary, body_source, phase FROM case_study_revisions WHERE case_study_id = $1 AND version = $2",
        )
        .bind(version.case_study_id)
        .bind(version.version)
        .fetch_one(&db.pool)
        .await?
    };
    Ok(Content {
        title: row.try_get("title")?,
        summary: row.try_get("summary")?,
        body_source: row.try_get("body_source")?,
        phase: row.try_get("phase")?,
    })
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

/// Two versions' titles, summaries and bodies compared, off the async threads (a body is
/// up to 100 KB).
pub async fn compare(old: Content, new: Content) -> AppResult<[Vec<DiffPart>; 3]> {
    let parts = tokio::task::spawn_blocking(move || {
        [
            diff_words(&old.title, &new.title),
            diff_words(&old.summary, &new.summary),
            diff_words(&old.body_source, &new.body_source),
        ]
    })
    .await
    .map_err(|e| anyhow::anyhow!("comparing versions failed: {e}"))?;
    Ok(parts)
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
