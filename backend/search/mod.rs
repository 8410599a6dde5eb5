//! Full-text search over published case studies, artefacts and organisations, ranked by
//! relevance, narrowed by kind, topic and organisation:
//! FTS5 on SQLite and `tsvector` with a GIN index on PostgreSQL — the one place where the
//! two databases need different SQL, so both versions live here side by side.
//!
//! Only published case studies are indexed (drafts never are), by the same transaction
//! that publishes, edits or archives them, so search can never show a draft.

pub mod graphql;

use sqlx::Row;

use crate::{
    db::{Db, Dialect, Tx},
    error::{AppError, AppResult},
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
/// a search must want something), then `NOT` each excluded one.
fn fts5_query(terms: &[Term]) -> String {
    let wanted: Vec<String> = terms.iter().filter(|t| !t.excluded).map(quoted).collect();
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
    // The one place the two databases need different SQL: the query syntax, ranking and
    // snippets. The parameters are the same.
    let (query, sql) = match db.dialect {
        Dialect::Sqlite => (
            fts5_query(&terms),
            // bm25 weights: title ten times the body; lower is better.
            format!(
                "SELECT kind, item_id, snippet(search_index, 3, $4, $5, '…', 24) AS snippet FROM search_index \
                 WHERE search_index MATCH $1 {FILTERS} \
                 ORDER BY bm25(search_index, 0.0, 0.0, 10.0, 1.0), item_id LIMIT $3 OFFSET $8"
            ),
        ),
        Dialect::Postgres => (
            websearch_query(&terms),
            format!(
                "SELECT kind, item_id, ts_headline('english', body, q, \
                 'StartSel=' || $4 || ', StopSel=' || $5 || ', MaxWords=35, MinWords=15, ShortWord=2') AS snippet \
                 FROM search_index, websearch_to_tsquery('english', $1) AS q \
                 WHERE document @@ q {FILTERS} \
                 ORDER BY ts_rank_cd(document, q) DESC, item_id LIMIT $3 OFFSET $8"
            ),
        ),
    };
    if query.is_empty() {
        return Ok(vec![]);
    }
    let result = sqlx::query(&sql)
        .bind(query)
        .bind(kind)
        .bind(limit)
        .bind(MARK_START.to_string())
        .bind(MARK_END.to_string())
        .bind(filter.topic_id)
        .bind(filter.organisation_id)
        .bind(offset)
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
        assert_eq!(fts5_query(&terms), "\"bins\" \"council tax\" NOT \"garden\" NOT \"green waste\"");
        assert_eq!(websearch_query(&terms), "\"bins\" \"council tax\" -\"garden\" -\"green waste\"");
        let only_excluded = simplify("-garden -waste");
        assert_eq!(fts5_query(&only_excluded), "");
        assert_eq!(websearch_query(&only_excluded), "");
        assert_eq!(fts5_query(&[]), "");
        assert_eq!(websearch_query(&[]), "");
    }

    #[test]
    fn snippets_escape_text_and_mark_matches() {
        assert_eq!(highlight("a <b> \u{E000}bins\u{E001} & c"), "a &lt;b&gt; <mark>bins</mark> &amp; c");
    }
}
