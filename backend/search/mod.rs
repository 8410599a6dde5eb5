//! Full-text search over published case studies, artefacts and organisations, narrowed by
//! kind, topic and organisation:
//! FTS5 on SQLite and `tsvector` with GIN indexes on PostgreSQL — the one place where the
//! two databases need different SQL, so both versions live here side by side.
//!
//! Only published case studies are indexed (drafts never are), by the same transaction
//! that publishes, edits or archives them, so search can never show a draft.
//!
//! The work of a search is bounded whatever its words: it reads only the most recent
//! [`CANDIDATES`] documents that match (by when they were indexed: FTS5's rowid, the
//! `id` PostgreSQL gives each row), and separately the most recent [`CANDIDATES`] whose
//! *title* matches. Title matches come first, those whose title is most nearly just the
//! words first; then the other matches, newest first. A word in nearly every document
//! therefore costs about what a rare one does, instead of scoring a million matches to
//! show twenty, and an old document titled with the words is still found above newer ones
//! that only mention them. Snippets are made for the returned page only. What lies beyond
//! the candidates is not reached: paging stops at [`OFFSET_MAX`]. (Scoring the bodies too
//! was measured: on SQLite it costs more than all the rest of a search, see
//! `sqlite_search`.)
//!
//! How each database finds the most recent matches cheaply:
//! - SQLite: FTS5 reads a word's document list newest first (`ORDER BY rowid DESC`) and
//!   stops after the limit, for a word in the title as in the body.
//! - PostgreSQL: a GIN index returns every match in no useful order, so fetching the
//!   newest of a million means fetching a million. Migration 0015 numbers the rows (`id`)
//!   and indexes each tsvector together with the block of [`BLOCK`] rows it falls in, so
//!   the index can intersect the words with a window of recent blocks and hand back only
//!   the matches inside it. The window is as wide as needed for the words: ANALYZE's
//!   statistics say what share of documents holds each word (`pg_stats`), and the window
//!   spans enough recent documents to hold four times the candidates (with a filter, the
//!   [`FILTERED_CANDIDATES`] it narrows). Words too rare for a window of at most
//!   [`WINDOW_MAX`] documents are looked up whole (they have few matches); so are all
//!   words before the first ANALYZE. The plan's shape is fixed by
//!   the SQL, not by the values, so a generic plan is as good as a custom one.

pub mod graphql;

use sqlx::Row;

use crate::{
    db::{self, Db, Dialect, Tx},
    error::{AppError, AppResult},
    markdown,
};

pub const QUERY_MAX: usize = 200;
pub const RESULTS_MAX: i64 = 50;
/// How many of the most recent matches are read (and, apart, how many of the most recent
/// title matches), to be ordered title matches first.
pub const CANDIDATES: i64 = 200;
/// How deep paging may go: to the end of the candidates, so the pages of one search never
/// overlap (each page ranks the same candidates) and never reach past them.
pub const OFFSET_MAX: i64 = CANDIDATES - RESULTS_MAX;
/// With a filter (kind, topic or organisation), how many of the most recent matches it
/// narrows, keeping the newest [`CANDIDATES`] that pass. A filter that passes fewer than
/// one in 25 of them can show fewer results than exist (an organisation's own documents
/// among a common word's matches, say); the work stays bounded.
pub const FILTERED_CANDIDATES: i64 = 5_000;
/// PostgreSQL: how much of a body ts_headline is given, in characters, starting this many
/// before the first match (see `postgres_search`): room for a 35-word headline either side.
const PASSAGE_LENGTH: i64 = 800;
const PASSAGE_LEAD: i64 = 300;
/// PostgreSQL: rows of `search_index` per block in the GIN indexes (migration 0015 has the
/// same number in `ARRAY[(id / 1024)::int]`).
const BLOCK: i64 = 1024;
/// PostgreSQL: the most recent documents a window may span (four times as many with a
/// filter, which wants more matches); words too rare to expect enough matches in it are
/// looked up whole: without a filter, words in fewer than 0.6% of documents (a few
/// thousand matches at a million documents); with one, 0.95%. A wider window costs the
/// GIN index more than those few matches do (each block is an entry to merge).
const WINDOW_MAX: i64 = 128 * BLOCK;

/// Marks around matched words in snippets: private-use characters that cannot come from
/// an index row, so the snippet text can be escaped and only they become `<mark>`.
const MARK_START: char = '\u{E000}';
const MARK_END: char = '\u{E001}';

crate::text_enum! {
    #[derive(Clone, Copy, Debug, PartialEq, Eq, async_graphql::Enum)]
    pub enum SearchKind {
        CaseStudy => "case_study",
        Artefact => "artefact",
        Organisation => "organisation",
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

impl Filter {
    /// Whether any filter is set (a filtered search reads more of the recent matches).
    fn narrows(&self) -> bool {
        self.kind.is_some() || self.topic_id.is_some() || self.organisation_id.is_some()
    }
}

/// The filter conditions on a row aliased `row` (its `kind` and `item_id`), the same on both
/// databases; only the filters that are set are written (see [`db::filter_condition`]).
/// Binds: kind $2, topic $6, organisation $7. Each is a lookup by key for the one row, so
/// checking a candidate costs the same however large the topic or organisation: the
/// `LIMIT 1 OFFSET 0` keeps PostgreSQL from turning an EXISTS into a hash of the whole
/// topic (40,000 case studies at a million) to check a few hundred candidates.
fn filter_conditions(filter: &Filter, row: &str) -> String {
    let kind = db::filter_condition(filter.kind.is_some(), "$2", &format!("{row}.kind = $2"));
    let topic = db::filter_condition(
        filter.topic_id.is_some(),
        "$6",
        &format!(
            "(({row}.kind = 'case_study' AND EXISTS (SELECT 1 FROM case_study_topics t \
                 WHERE t.case_study_id = {row}.item_id AND t.topic_id = $6 LIMIT 1 OFFSET 0)) \
              OR ({row}.kind = 'artefact' AND EXISTS (SELECT 1 FROM artefact_topics t \
                 WHERE t.artefact_id = {row}.item_id AND t.topic_id = $6 LIMIT 1 OFFSET 0)))"
        ),
    );
    let organisation = db::filter_condition(
        filter.organisation_id.is_some(),
        "$7",
        &format!(
            "(({row}.kind = 'organisation' AND {row}.item_id = $7) \
              OR ({row}.kind = 'case_study' AND EXISTS (SELECT 1 FROM case_studies c \
                 WHERE c.id = {row}.item_id AND c.organisation_id = $7 LIMIT 1 OFFSET 0)) \
              OR ({row}.kind = 'artefact' AND EXISTS (SELECT 1 FROM artefacts a \
                 WHERE a.id = {row}.item_id AND a.organisation_id = $7 LIMIT 1 OFFSET 0)))"
        ),
    );
    format!("{kind} AND {topic} AND {organisation}")
}

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
    if Dialect::of(tx) == Dialect::Sqlite {
        sqlx::query("INSERT INTO search_rows (kind, item_id, doc) VALUES ($1, $2, last_insert_rowid())")
            .bind(kind.as_str())
            .bind(id)
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}

/// Removes an item's row, if it has one. On SQLite, FTS5 can find a row only by its rowid
/// or its words (`kind` and `item_id` are not indexed, so a condition on them reads every
/// row: seconds at a million), so `search_rows` (migration 0015) keeps each item's rowid.
pub async fn remove(tx: &mut Tx, kind: SearchKind, id: i64) -> AppResult<()> {
    let statements: &[&str] = match Dialect::of(tx) {
        Dialect::Sqlite => &[
            "DELETE FROM search_index WHERE rowid = (SELECT doc FROM search_rows WHERE kind = $1 AND item_id = $2)",
            "DELETE FROM search_rows WHERE kind = $1 AND item_id = $2",
        ],
        Dialect::Postgres => &["DELETE FROM search_index WHERE kind = $1 AND item_id = $2"],
    };
    for sql in statements {
        sqlx::query(sql).bind(kind.as_str()).bind(id).execute(&mut **tx).await?;
    }
    Ok(())
}

pub struct Hit {
    pub kind: SearchKind,
    pub id: i64,
    /// HTML: the text escaped, matched words in `<mark>`.
    pub snippet_html: String,
}

/// At most this many words of a search are used (the rest are left out): more add
/// nothing to relevance, and each is work for the database.
pub const TERMS_MAX: usize = 32;
/// Longer words are cut to this many characters (no real word is longer).
pub const WORD_MAX: usize = 64;

/// One term of a simplified search: a word, or several that must be next to each other
/// (a phrase in quotes, or words joined by punctuation such as `bin-day`); an excluded
/// term is one the results must not have.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Term {
    pub words: Vec<String>,
    pub excluded: bool,
}

/// What someone typed, reduced to what both search engines understand the same way:
/// words (letters and digits), quoted phrases, and a `-` before a word or phrase to
/// exclude it. Every other character separates words, so no run of operators or
/// punctuation reaches the database (PostgreSQL's `websearch_to_tsquery` fails with
/// "tsquery stack too small" on a few dozen hyphens, and FTS5 has a syntax of its own).
/// At most [`TERMS_MAX`] words are kept. An empty result means nothing to search for.
pub fn simplify(text: &str) -> Vec<Term> {
    let mut terms = Vec::new();
    let mut words_left = TERMS_MAX;
    let mut chars = text.chars().peekable();
    while words_left > 0 {
        // Skip to the start of the next chunk; a `-` right before it excludes it.
        let mut excluded = false;
        while let Some(&c) = chars.peek() {
            if c == '"' || is_word_char(c) {
                break;
            }
            excluded = c == '-';
            chars.next();
        }
        let Some(&first) = chars.peek() else { break };
        let mut chunk = String::new();
        if first == '"' {
            // A phrase: up to the closing quote, or the end when there is none.
            chars.next();
            for c in chars.by_ref() {
                if c == '"' {
                    break;
                }
                chunk.push(c);
            }
        } else {
            // Words joined by punctuation, up to white space or a quote.
            while let Some(&c) = chars.peek() {
                if c.is_whitespace() || c == '"' {
                    break;
                }
                chunk.push(c);
                chars.next();
            }
        }
        let words: Vec<String> = chunk
            .split(|c: char| !is_word_char(c))
            .filter(|w| w.chars().any(crate::text::is_visible))
            .take(words_left)
            .map(|w| w.chars().take(WORD_MAX).collect::<String>().to_lowercase())
            .collect();
        if !words.is_empty() {
            words_left -= words.len();
            terms.push(Term { words, excluded });
        }
    }
    terms
}

/// Letters and digits in any script, with the marks that belong to them; not spaces,
/// punctuation, symbols or emoji, and nothing the text policy refuses. (A word must
/// also show something: see [`simplify`].)
fn is_word_char(c: char) -> bool {
    if c.is_alphanumeric() {
        return true;
    }
    let code = c as u32;
    let separator_block = code < 0xC0 // ASCII and Latin-1 punctuation and symbols
        || (0x2000..=0x2BFF).contains(&code) // punctuation, symbols, arrows, shapes
        || (0x2E00..=0x2E7F).contains(&code) // supplemental punctuation
        || (0x3000..=0x303F).contains(&code) // CJK symbols and punctuation
        || (0xFE10..=0xFE6F).contains(&code) // vertical and small forms
        || (0xFF00..=0xFF20).contains(&code) // full-width punctuation
        || (0xFF3B..=0xFF40).contains(&code)
        || (0xFF5B..=0xFF65).contains(&code)
        || (0x1F000..=0x1FAFF).contains(&code); // emoji and other pictographs
    !separator_block && !c.is_whitespace() && crate::text::refusal(c).is_none()
}

/// A term as a quoted phrase, which both query languages read as plain words.
fn quoted(term: &Term) -> String {
    format!("\"{}\"", term.words.join(" "))
}

/// The FTS5 query for simplified terms: every wanted term (FTS5 has no unary NOT, so
/// a search must want something), then `NOT` each excluded one. `in_title` wants each in
/// the title (an excluded term is refused anywhere).
fn fts5_query(terms: &[Term], in_title: bool) -> String {
    let column = if in_title { "title : " } else { "" };
    let wanted: Vec<String> = terms.iter().filter(|t| !t.excluded).map(|t| format!("{column}{}", quoted(t))).collect();
    if wanted.is_empty() {
        return String::new();
    }
    let mut query = wanted.join(" ");
    for term in terms.iter().filter(|t| t.excluded) {
        query.push_str(" NOT ");
        query.push_str(&quoted(term));
    }
    query
}

/// The `websearch_to_tsquery` text for simplified terms: each quoted, excluded ones
/// after a `-`; empty when nothing is wanted (as on SQLite).
fn websearch_query(terms: &[Term]) -> String {
    if terms.iter().all(|t| t.excluded) {
        return String::new();
    }
    terms.iter().map(|t| format!("{}{}", if t.excluded { "-" } else { "" }, quoted(t))).collect::<Vec<_>>().join(" ")
}

/// A query the database could not run (its parser or its limits, never ours): logged,
/// and the search finds nothing rather than failing. Anything else is a real error.
fn is_query_refusal(err: &sqlx::Error, dialect: Dialect) -> bool {
    let sqlx::Error::Database(db) = err else { return false };
    match dialect {
        Dialect::Sqlite => db.message().starts_with("fts5:") || db.message().contains("malformed MATCH"),
        // 42601 syntax error; class 54, program limit exceeded ("tsquery stack too small").
        Dialect::Postgres => db.code().is_some_and(|code| code == "42601" || code.starts_with("54")),
    }
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
    let terms = simplify(text);
    // The one place the two databases need different SQL: the query syntax, how the most
    // recent matches are found, ranking and snippets. The parameters are the same; $9 is
    // what a title must match, $10 and $11 how common the words are (PostgreSQL only).
    let (query, title_query, sql) = match db.dialect {
        Dialect::Sqlite => (fts5_query(&terms, false), fts5_query(&terms, true), sqlite_search(&filter)),
        Dialect::Postgres => {
            let wanted: Vec<Term> = terms.iter().filter(|t| !t.excluded).cloned().collect();
            let excludes = wanted.len() < terms.len();
            (websearch_query(&terms), websearch_query(&wanted), postgres_search(&filter, excludes))
        }
    };
    if query.is_empty() {
        return Ok(vec![]);
    }
    // PostgreSQL sizes its windows from how common the words are: one small query first
    // (kept apart so that planning the search itself stays cheap).
    let (body_share, title_share) = match db.dialect {
        Dialect::Sqlite => (0.0, 0.0),
        Dialect::Postgres => word_shares(db, &title_query).await?,
    };
    let result = sqlx::query(&sql)
        .bind(query)
        .bind(kind)
        .bind(limit)
        .bind(MARK_START.to_string())
        .bind(MARK_END.to_string())
        .bind(filter.topic_id)
        .bind(filter.organisation_id)
        .bind(offset)
        .bind(title_query)
        .bind(body_share)
        .bind(title_share)
        .fetch_all(&db.pool)
        .await;
    let rows = match result {
        Ok(rows) => rows,
        Err(err) if is_query_refusal(&err, db.dialect) => {
            tracing::warn!(error = %err, terms = ?terms, "the database refused a simplified search; it found nothing");
            return Ok(vec![]);
        }
        Err(err) => return Err(err.into()),
    };
    rows.iter()
        .map(|row| {
            let snippet: String = row.try_get("snippet")?;
            Ok(Hit { kind: row.try_get("kind")?, id: row.try_get("item_id")?, snippet_html: highlight(&snippet) })
        })
        .collect::<sqlx::Result<_>>()
        .map_err(Into::into)
}

/// SQLite: the most recent matches of the query ($1) and of the title query ($9); title
/// matches first, by how much of the title the words are (a title that is just the words
/// first: matches counted by highlight() over the title's length, 40 characters being
/// typical), then the others newest first; snippets for the page only. With a filter, the
/// rows it narrows are those no older than the [`FILTERED_CANDIDATES`]th most recent match.
///
/// Not FTS5's bm25(): before it scores the first row it counts every document holding
/// each word (tens of milliseconds for a word in a million documents), the very work that
/// is bounded here. Nor a score of the body: highlight() over a 5 KB body costs ~50 µs a
/// candidate, and a title match is the strong signal.
fn sqlite_search(filter: &Filter) -> String {
    let conditions = filter_conditions(filter, "search_index");
    let newest = |query: &str, score: &str| {
        let floor = if filter.narrows() {
            format!(
                "AND rowid >= (SELECT coalesce(min(doc), 0) FROM (SELECT rowid AS doc FROM search_index \
                     WHERE search_index MATCH {query} ORDER BY rowid DESC LIMIT {FILTERED_CANDIDATES}))"
            )
        } else {
            String::new()
        };
        format!(
            "SELECT * FROM (SELECT rowid AS doc, {score} AS score \
                            FROM search_index WHERE search_index MATCH {query} {floor} AND {conditions} \
                            ORDER BY rowid DESC LIMIT {CANDIDATES})"
        )
    };
    format!(
        "WITH ranked AS ( \
             SELECT doc, max(score) AS score FROM ({body} UNION ALL {title}) \
             GROUP BY doc ORDER BY score DESC, doc DESC LIMIT $3 OFFSET $8) \
         SELECT search_index.kind, search_index.item_id, \
                snippet(search_index, 3, $4, $5, '…', 24) AS snippet \
         FROM ranked CROSS JOIN search_index \
         WHERE search_index.rowid = ranked.doc AND search_index MATCH $1 \
         ORDER BY ranked.score DESC, ranked.doc DESC",
        body = newest("$1", "0.0"),
        // Above 0 for every title match, so they all come first.
        title = newest(
            "$9",
            "(1.0 + length(highlight(search_index, 2, char(1), '')) - length(title)) / (1.0 + length(title) / 40.0)"
        ),
    )
}

/// PostgreSQL: the share of documents whose `document` and whose `title_document` hold the
/// rarest of the wanted words (`words`, as websearch text), from ANALYZE's most common
/// elements (`pg_stats`); a word not among them counts as rare (0), as do all words before
/// the first ANALYZE.
async fn word_shares(db: &Db, words: &str) -> AppResult<(f64, f64)> {
    let share = |column: &str| {
        format!(
            "(SELECT coalesce(min(coalesce(c.share, 0)), 0)::float8 \
              FROM unnest(tsvector_to_array(to_tsvector('english', $1))) AS w(lexeme) \
              LEFT JOIN (SELECT e.lexeme, e.share FROM pg_stats p, \
                           unnest(p.most_common_elems::text::text[], p.most_common_elem_freqs) AS e(lexeme, share) \
                         WHERE p.schemaname = current_schema() AND p.tablename = 'search_index' \
                           AND p.attname = '{column}') c ON c.lexeme = w.lexeme)"
        )
    };
    let sql = format!("SELECT {} AS body, {} AS title", share("document"), share("title_document"));
    let row = sqlx::query(&sql).bind(words).fetch_one(&db.pool).await?;
    Ok((row.try_get("body")?, row.try_get("title")?))
}

/// PostgreSQL: the most recent matches of the query ($1) in `document` and of the title
/// query ($9) in `title_document`, each found through its GIN index inside a window of
/// recent blocks sized from the words' share of documents ($10, $11: [`word_shares`]),
/// or whole for rare words; then title matches first, by ts_rank_cd on the title's own
/// tsvector (small and in the row) divided by its length, so a title that is just the
/// words comes first, then the others newest first, as on SQLite; headlined for the page
/// only. No document is read whole except to check an excluded word and to headline.
///
/// Which way each set is found is decided once, by the `plan` row, and gates the two
/// branches (an uncorrelated subquery in a condition is a one-time filter: the branch not
/// taken never runs). The branches order by `id + 0` so that no plan can walk the `id`
/// index instead, which would read every document back to the first match.
fn postgres_search(filter: &Filter, excludes: bool) -> String {
    // How many of the most recent matches are read: with a filter, as many as it narrows.
    let read = if filter.narrows() { FILTERED_CANDIDATES } else { CANDIDATES };
    // How many matches the window is sized to hold: four times the candidates, against
    // the statistics being off, or (with a filter) the matches it narrows.
    let expected = if filter.narrows() { FILTERED_CANDIDATES } else { 4 * CANDIDATES };
    let window_max = if filter.narrows() { 4 * WINDOW_MAX } else { WINDOW_MAX };
    let conditions = filter_conditions(filter, "m");
    // The blocks of the most recent documents expected to hold `expected` matches, or NULL
    // when that would span more than `window_max` documents. Ids are spent by every
    // indexing (an edit indexes a row again), so a window of ids holds fewer rows than ids:
    // it is widened by the ids per row (`density`, rows over the span of ids in use).
    let window = |share: &str| {
        format!(
            "CASE WHEN {share} > 0 AND {expected}.0 / {share} <= {window_max} THEN \
                 ARRAY(SELECT generate_series( \
                     greatest(0, newest - ceil({expected}.0 / {share} / density)::bigint) / {BLOCK}, \
                     newest / {BLOCK})::int) END"
        )
    };
    // The newest `read` matches, in the window or not, then those that pass the filter.
    // The `plan` row is joined (not read by a subquery) so the branch not taken reads
    // nothing, and so that no plan hands the scan to parallel workers: starting them costs
    // more than a bounded search.
    let newest = |column: &str, query: &str, window: &str| {
        let branch = |gate: &str, in_window: &str| {
            format!(
                "(SELECT m.id FROM (SELECT s.id, s.kind, s.item_id FROM plan p \
                                    JOIN search_index s ON s.{column} @@ p.{query} {in_window} \
                                    WHERE p.{window} {gate} ORDER BY s.id + 0 DESC LIMIT {read}) m \
                  WHERE {conditions} ORDER BY m.id DESC LIMIT {CANDIDATES})"
            )
        };
        format!(
            "{} UNION ALL {}",
            branch("IS NOT NULL", &format!("AND ARRAY[(s.id / {BLOCK})::int] && p.{window}")),
            branch("IS NULL", ""),
        )
    };
    format!(
        "WITH estimate AS MATERIALIZED ( \
             SELECT websearch_to_tsquery('english', $1) AS query, websearch_to_tsquery('english', $9) AS title_query, \
                    $10::float8 AS body_share, $11::float8 AS title_share, newest, \
                    CASE WHEN rows > 0 THEN least(1.0, rows / (newest - oldest + 1)) ELSE 1.0 END AS density \
             FROM (SELECT coalesce(max(id), 0) AS newest, coalesce(min(id), 0) AS oldest, \
                          (SELECT reltuples FROM pg_class WHERE oid = 'search_index'::regclass) AS rows \
                   FROM search_index) ids), \
         plan AS MATERIALIZED ( \
             SELECT query, title_query, {body_window} AS body_window, {title_window} AS title_window, \
                    (tsvector_to_array(to_tsvector('english', $9)))[1] AS lexeme \
             FROM estimate), \
         body AS MATERIALIZED ({body}), \
         title AS MATERIALIZED ({title}), \
         ranked AS ( \
             SELECT s.id, s.kind, s.item_id, s.body, t.id IS NOT NULL AS in_title, \
                    CASE WHEN t.id IS NULL THEN 0 ELSE ts_rank_cd(s.title_document, p.title_query, 2) END AS score \
             FROM (SELECT id FROM body UNION SELECT id FROM title) c \
             JOIN search_index s ON s.id = c.id \
             LEFT JOIN title t ON t.id = c.id \
             CROSS JOIN plan p \
             WHERE {title_matches_whole_query} \
             ORDER BY in_title DESC, score DESC, s.id DESC LIMIT $3 OFFSET $8) \
         SELECT r.kind, r.item_id, ts_headline('english', x.passage, p.query, \
                'StartSel=' || $4 || ', StopSel=' || $5 || ', MaxWords=35, MinWords=15, ShortWord=2') AS snippet \
         FROM ranked r CROSS JOIN plan p \
         CROSS JOIN LATERAL (SELECT coalesce(regexp_instr(r.body, '\\m' || p.lexeme, 1, 1, 0, 'i'), 0) AS at) a \
         CROSS JOIN LATERAL (SELECT greatest(1, a.at - {PASSAGE_LEAD}) AS start) b \
         CROSS JOIN LATERAL (SELECT CASE WHEN a.at = 0 OR length(r.body) <= {PASSAGE_LENGTH} THEN r.body \
                                         ELSE regexp_replace(substr(r.body, b.start, {PASSAGE_LENGTH}), \
                                              CASE WHEN b.start > 1 THEN '^\\S*\\s+' ELSE '^$' END, '') \
                                    END AS passage) x \
         ORDER BY r.in_title DESC, r.score DESC, r.id DESC",
        // ts_headline reads the text it is given whole (about a millisecond for a 5 KB body),
        // so it is given the passage around where one of the words first appears, found by
        // its stem at the start of a word (a stem is nearly always the start of the word it
        // came from): from a little before it, a partial first word left out. A body too
        // short to cut, or in which the stem is not found (an irregular one), goes whole.
        // A title with every wanted word matches the whole query, unless the query excludes
        // a word, which the body may hold: only then is the document read to check.
        title_matches_whole_query = if excludes { "t.id IS NULL OR s.document @@ p.query" } else { "true" },
        body_window = window("body_share"),
        title_window = window("title_share"),
        body = newest("document", "query", "body_window"),
        title = newest("title_document", "title_query", "title_window"),
    )
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

    fn word(w: &str) -> Term {
        Term { words: vec![w.to_string()], excluded: false }
    }

    fn phrase(words: &[&str], excluded: bool) -> Term {
        Term { words: words.iter().map(|w| w.to_string()).collect(), excluded }
    }

    #[test]
    fn searches_simplify_to_words_phrases_and_exclusions() {
        assert_eq!(simplify("bin collection"), vec![word("bin"), word("collection")]);
        assert_eq!(simplify("  Council TAX  "), vec![word("council"), word("tax")]);
        assert_eq!(
            simplify("\"council tax\" -bins"),
            vec![phrase(&["council", "tax"], false), phrase(&["bins"], true)]
        );
        assert_eq!(
            simplify("bin-day e.g. don't"),
            vec![phrase(&["bin", "day"], false), phrase(&["e", "g"], false), phrase(&["don", "t"], false)]
        );
        assert_eq!(simplify("-\"foo bar\" baz"), vec![phrase(&["foo", "bar"], true), word("baz")]);
        assert_eq!(simplify("\"unclosed phrase"), vec![phrase(&["unclosed", "phrase"], false)]);
        assert_eq!(
            simplify("Gwasanaethau Cymraeg ŵyr straße 東京 हिन्दी"),
            vec![word("gwasanaethau"), word("cymraeg"), word("ŵyr"), word("straße"), word("東京"), word("हिन्दी"),]
        );
        // Operators of either engine are only separators.
        assert_eq!(
            simplify("NEAR(a b) OR x* ^y title:z a+b"),
            vec![
                phrase(&["near", "a"], false),
                word("b"),
                word("or"),
                word("x"),
                word("y"),
                phrase(&["title", "z"], false),
                phrase(&["a", "b"], false),
            ]
        );
        // Storms of punctuation leave nothing, or only the words in them.
        for nothing in [
            "",
            "   ",
            "-",
            "--------------------------------------------------",
            "\"\"\"\"",
            "!@#$%^&*()_+{}|:<>?~`",
            "— … “” 🙂🙂",
            "\u{200b}\u{3164}",
        ] {
            assert_eq!(simplify(nothing), vec![], "{nothing:?}");
        }
        assert_eq!(simplify(&format!("{}tea", "-".repeat(40))), vec![phrase(&["tea"], true)]);
        assert_eq!(simplify(&format!("tea {}", "- ".repeat(40))), vec![word("tea")]);
        assert_eq!(simplify("tea----cake"), vec![phrase(&["tea", "cake"], false)]);
    }

    #[test]
    fn searches_are_capped() {
        let many = (0..100).map(|i| format!("w{i}")).collect::<Vec<_>>().join(" ");
        let terms = simplify(&many);
        assert_eq!(terms.len(), TERMS_MAX);
        assert_eq!(terms.last(), Some(&word("w31")));
        let long_phrase = format!("\"{}\" more", "a ".repeat(50));
        let terms = simplify(&long_phrase);
        assert_eq!(terms.len(), 1);
        assert_eq!(terms[0].words.len(), TERMS_MAX);
        assert_eq!(simplify(&"x".repeat(200))[0].words[0].chars().count(), WORD_MAX);
    }

    #[test]
    fn queries_for_each_engine() {
        let terms = simplify("bins \"council tax\" -garden -\"green waste\"");
        assert_eq!(fts5_query(&terms, false), "\"bins\" \"council tax\" NOT \"garden\" NOT \"green waste\"");
        assert_eq!(
            fts5_query(&terms, true),
            "title : \"bins\" title : \"council tax\" NOT \"garden\" NOT \"green waste\""
        );
        assert_eq!(websearch_query(&terms), "\"bins\" \"council tax\" -\"garden\" -\"green waste\"");
        let only_excluded = simplify("-garden -waste");
        assert_eq!(fts5_query(&only_excluded, false), "");
        assert_eq!(fts5_query(&only_excluded, true), "");
        assert_eq!(websearch_query(&only_excluded), "");
        assert_eq!(fts5_query(&[], false), "");
        assert_eq!(websearch_query(&[]), "");
    }

    #[test]
    fn snippets_escape_text_and_mark_matches() {
        assert_eq!(highlight("a <b> \u{E000}bins\u{E001} & c"), "a &lt;b&gt; <mark>bins</mark> &amp; c");
    }
}
