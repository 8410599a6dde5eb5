//! Full-text search over published case studies, artefacts and organisations, ranked by
//! relevance, narrowed by kind, topic and organisation:
//! FTS5 on SQLite and `tsvector` with a GIN index on PostgreSQL — the one place where the
//! two databases need different SQL, so both versions live here side by side.
//!
//! Only published case studies are indexed (drafts never are), by the same transaction
//! that publishes, edits or archives them, so search can never show a draft.

use async_graphql::{Context, Object, SimpleObject};
use sqlx::Row;

use crate::{
    db::{Db, Dialect, Tx},
    error::{AppError, AppResult},
    graphql::{ContextExt, Node},
    markdown,
};

pub const QUERY_MAX: usize = 200;
pub const RESULTS_MAX: i64 = 50;
/// How deep into the ranking paging may go: relevance beyond the first few hundred
/// results says little, and each page re-ranks every match.
pub const OFFSET_MAX: i64 = 450;

/// Marks around matched words in snippets: private-use characters that cannot come from
/// an index row, so the snippet text can be escaped and only they become `<mark>`.
const MARK_START: char = '\u{E000}';
const MARK_END: char = '\u{E001}';

#[derive(Clone, Copy, Debug, PartialEq, Eq, async_graphql::Enum)]
pub enum SearchKind {
    CaseStudy,
    Artefact,
    Organisation,
}

impl SearchKind {
    fn as_str(self) -> &'static str {
        match self {
            SearchKind::CaseStudy => "case_study",
            SearchKind::Artefact => "artefact",
            SearchKind::Organisation => "organisation",
        }
    }

    fn parse(text: &str) -> SearchKind {
        match text {
            "artefact" => SearchKind::Artefact,
            "organisation" => SearchKind::Organisation,
            _ => SearchKind::CaseStudy,
        }
    }
}

/// What a search is narrowed to, besides its words.
#[derive(Clone, Copy, Debug, Default)]
pub struct Filter {
    pub kind: Option<SearchKind>,
    /// Case studies and artefacts carrying this topic.
    pub topic_id: Option<i64>,
    /// The organisation itself, and its case studies and artefacts.
    pub organisation_id: Option<i64>,
}

/// The filter conditions, the same on both databases: `kind` and `item_id` are columns of
/// either index table. Binds: kind $2, topic $6, organisation $7.
const FILTERS: &str = "AND ($2 IS NULL OR kind = $2) \
     AND ($6 IS NULL \
       OR (kind = 'case_study' AND item_id IN (SELECT case_study_id FROM case_study_topics WHERE topic_id = $6)) \
       OR (kind = 'artefact' AND item_id IN (SELECT artefact_id FROM artefact_topics WHERE topic_id = $6))) \
     AND ($7 IS NULL OR (kind = 'organisation' AND item_id = $7) \
       OR (kind = 'case_study' AND item_id IN (SELECT id FROM case_studies WHERE organisation_id = $7)) \
       OR (kind = 'artefact' AND item_id IN (SELECT id FROM artefacts WHERE organisation_id = $7)))";

/// Adds or replaces an item's row.
pub async fn index(tx: &mut Tx, kind: SearchKind, id: i64, title: &str, markdown_body: &str) -> AppResult<()> {
    remove(tx, kind, id).await?;
    let body = markdown::plain_text(markdown_body).replace([MARK_START, MARK_END], "");
    let title = title.replace([MARK_START, MARK_END], "");
    sqlx::query("INSERT INTO search_index (kind, item_id, title, body) VALUES ($1, $2, $3, $4)")
        .bind(kind.as_str())
        .bind(id)
        .bind(title)
        .bind(body)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

pub async fn remove(tx: &mut Tx, kind: SearchKind, id: i64) -> AppResult<()> {
    sqlx::query("DELETE FROM search_index WHERE kind = $1 AND item_id = $2")
        .bind(kind.as_str())
        .bind(id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

pub struct Hit {
    pub kind: SearchKind,
    pub id: i64,
    /// HTML: the text escaped, matched words in `<mark>`.
    pub snippet_html: String,
}

/// Turns what someone typed into an FTS5 query: each word quoted (so operators and
/// punctuation are just text), all required.
fn fts5_query(text: &str) -> String {
    text.split_whitespace()
        .map(|word| word.chars().filter(|c| c.is_alphanumeric() || *c == '-' || *c == '\'').collect::<String>())
        .filter(|word| !word.is_empty())
        .map(|word| format!("\"{}\"", word.replace('"', "\"\"")))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The best matches for `text` that pass `filter`, at most [`RESULTS_MAX`].
pub async fn search(db: &Db, text: &str, filter: Filter, limit: i64, offset: i64) -> AppResult<Vec<Hit>> {
    let text = text.trim();
    if text.chars().count() > QUERY_MAX {
        return Err(AppError::bad_input(format!("Search for at most {QUERY_MAX} characters.")));
    }
    let limit = limit.clamp(1, RESULTS_MAX);
    if !(0..=OFFSET_MAX).contains(&offset) {
        return Err(AppError::bad_input(format!("offset must be between 0 and {OFFSET_MAX}.")));
    }
    let kind = filter.kind.map(SearchKind::as_str);
    let rows = match db.dialect {
        Dialect::Sqlite => {
            let query = fts5_query(text);
            if query.is_empty() {
                return Ok(vec![]);
            }
            // bm25 weights: title ten times the body; lower is better.
            sqlx::query(&format!(
                "SELECT kind, item_id, snippet(search_index, 3, $4, $5, '…', 24) AS snippet FROM search_index \
                 WHERE search_index MATCH $1 {FILTERS} \
                 ORDER BY bm25(search_index, 0.0, 0.0, 10.0, 1.0), item_id LIMIT $3 OFFSET $8"
            ))
            .bind(query)
            .bind(kind)
            .bind(limit)
            .bind(MARK_START.to_string())
            .bind(MARK_END.to_string())
            .bind(filter.topic_id)
            .bind(filter.organisation_id)
            .bind(offset)
            .fetch_all(&db.pool)
            .await?
        }
        Dialect::Postgres => {
            sqlx::query(&format!(
                "SELECT kind, item_id, ts_headline('english', body, q, \
                 'StartSel=' || $4 || ', StopSel=' || $5 || ', MaxWords=35, MinWords=15, ShortWord=2') AS snippet \
                 FROM search_index, websearch_to_tsquery('english', $1) AS q \
                 WHERE document @@ q {FILTERS} \
                 ORDER BY ts_rank_cd(document, q) DESC, item_id LIMIT $3 OFFSET $8"
            ))
            .bind(text)
            .bind(kind)
            .bind(limit)
            .bind(MARK_START.to_string())
            .bind(MARK_END.to_string())
            .bind(filter.topic_id)
            .bind(filter.organisation_id)
            .bind(offset)
            .fetch_all(&db.pool)
            .await?
        }
    };
    rows.iter()
        .map(|row| {
            let kind: String = row.try_get("kind")?;
            let snippet: String = row.try_get("snippet")?;
            Ok(Hit { kind: SearchKind::parse(&kind), id: row.try_get("item_id")?, snippet_html: highlight(&snippet) })
        })
        .collect::<sqlx::Result<_>>()
        .map_err(Into::into)
}

/// One search result.
#[derive(SimpleObject)]
pub struct SearchHit {
    pub node: Node,
    /// A passage of the text as HTML: escaped, with the matched words in `<mark>`.
    pub snippet: String,
}

#[derive(Default)]
pub struct SearchQuery;

#[Object]
impl SearchQuery {
    /// Published case studies, artefacts and organisations matching all the words in
    /// `query`, most relevant first, optionally of one kind, with one topic (slug) or from
    /// one organisation (slug). At most 50 at a time; `offset` (up to 450) pages on.
    #[allow(clippy::too_many_arguments)]
    async fn search(
        &self,
        ctx: &Context<'_>,
        query: String,
        kind: Option<SearchKind>,
        topic: Option<String>,
        organisation: Option<String>,
        #[graphql(default = 20)] first: i32,
        #[graphql(default = 0)] offset: i32,
    ) -> async_graphql::Result<Vec<SearchHit>> {
        let db = &ctx.state().db;
        let mut filter = Filter { kind, ..Filter::default() };
        // An unknown topic or organisation matches nothing.
        if let Some(slug) = topic {
            match crate::topics::by_slug(db, &slug).await? {
                Some(topic) => filter.topic_id = Some(topic.merged_into.unwrap_or(topic.id)),
                None => return Ok(Vec::new()),
            }
        }
        if let Some(slug) = organisation {
            match crate::organisations::by_slug(db, &slug).await? {
                Some(organisation) => filter.organisation_id = Some(organisation.id),
                None => return Ok(Vec::new()),
            }
        }
        let hits = search(db, &query, filter, i64::from(first), i64::from(offset)).await?;
        let loaders = ctx.loaders();
        let ids_of = |kind: SearchKind| hits.iter().filter(move |h| h.kind == kind).map(|h| h.id);
        // One statement per kind for the whole result list.
        loaders.case_studies.load_many(ids_of(SearchKind::CaseStudy)).await?;
        loaders.case_study_authors.load_many(ids_of(SearchKind::CaseStudy)).await?;
        loaders.artefacts.load_many(ids_of(SearchKind::Artefact)).await?;
        loaders.organisations.load_many(ids_of(SearchKind::Organisation)).await?;
        let mut results = Vec::with_capacity(hits.len());
        for hit in hits {
            let node = match hit.kind {
                SearchKind::CaseStudy => crate::case_studies::graphql::visible(ctx, hit.id).await?.map(Node::CaseStudy),
                SearchKind::Artefact => loaders.artefacts.load_one(hit.id).await?.map(Node::Artefact),
                SearchKind::Organisation => loaders.organisations.load_one(hit.id).await?.map(Node::Organisation),
            };
            if let Some(node) = node {
                results.push(SearchHit { node, snippet: hit.snippet_html });
            }
        }
        Ok(results)
    }
}

fn highlight(snippet: &str) -> String {
    let mut out = String::with_capacity(snippet.len() + 32);
    for c in snippet.chars() {
        match c {
            MARK_START => out.push_str("<mark>"),
            MARK_END => out.push_str("</mark>"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            other => out.push(other),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_are_quoted_words() {
        assert_eq!(fts5_query("bin collection"), "\"bin\" \"collection\"");
        assert_eq!(fts5_query("NEAR(a b) OR \"x\" -y *"), "\"NEARa\" \"b\" \"OR\" \"x\" \"-y\"");
        assert_eq!(fts5_query("  "), "");
    }

    #[test]
    fn snippets_escape_text_and_mark_matches() {
        assert_eq!(highlight("a <b> \u{E000}bins\u{E001} & c"), "a &lt;b&gt; <mark>bins</mark> &amp; c");
    }
}
