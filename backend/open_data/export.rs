//! `GET /open-data/kettle.jsonl`: every published case study, every artefact and every
//! reuse record, one JSON object a line (JSON Lines), in the format README's "Open data"
//! section documents ([`super::FORMAT_VERSION`]).
//!
//! The body is streamed: the export walks each table with keyset pages of [`PAGE`] rows
//! (the same list queries and indexes the site's lists use) and sends each page's lines
//! as it goes, so the server holds one page at a time whatever the size of the site, and
//! the first lines leave before the last are read. What leaves is what a signed-out
//! visitor sees: no drafts, nothing the moderators hid, no e-mail addresses, and members
//! erased under the right to erasure only as "a former member", without a profile.
//! A failure mid-way ends the response without its final chunk, so a client sees an
//! incomplete download rather than a short file that looks whole.

use std::collections::{HashMap, HashSet};

use futures_util::{stream, TryStreamExt};
use poem::{
    handler,
    http::{header, StatusCode},
    Body, Request, Response,
};
use serde_json::{json, Value};
use sqlx::Row;
use tokio::sync::Semaphore;

use super::{CONTENT_LICENCE, FORMAT_VERSION};
use crate::{
    app::AppState,
    artefacts::{self, publiccode, reuse},
    case_studies::{self, CaseStudy, CaseStudyStatus},
    db::{self, Db, Keyset},
    error::AppResult,
    organisations::{self, Organisation},
    privacy::erasure::FORMER_MEMBER,
    topics::{self, Tagged, Topic},
};

/// Rows read (and lines sent) at a time.
pub const PAGE: i64 = 100;

/// Where the walk has got to: each list's keyset cursor.
enum Stage {
    /// Newest first, after (published_at, id).
    CaseStudies(Option<(i64, i64)>),
    /// Newest first, after id.
    Artefacts(Option<i64>),
    /// By (artefact, organisation), after that pair.
    Reuses(Option<(i64, i64)>),
    Done,
}

/// How many exports one instance streams at once. Each reads every published row, so
/// without a bound a handful of clients asking again and again would keep the database
/// busy; past it, a client is asked to come back (503 with `Retry-After`), and a cache in
/// front keeps the answer for five minutes anyway.
const AT_ONCE: usize = 2;
static RUNNING: Semaphore = Semaphore::const_new(AT_ONCE);

#[handler]
pub async fn download(request: &Request) -> Response {
    let state = request.data::<AppState>().expect("AppState is attached to the site's routes").clone();
    let Ok(permit) = RUNNING.try_acquire() else {
        return Response::builder()
            .status(StatusCode::SERVICE_UNAVAILABLE)
            .content_type("text/plain; charset=utf-8")
            .header(header::RETRY_AFTER, "60")
            .body("The open data export is busy: try again in a minute.");
    };
    let base = state.config.public_url.as_str().trim_end_matches('/').to_string();
    // The permit goes with the stream and is given back when the body ends or is dropped.
    let lines = stream::try_unfold((Stage::CaseStudies(None), permit), move |(stage, permit)| {
        let (db, base) = (state.db.clone(), base.clone());
        async move { Ok(next_chunk(&db, &base, stage).await?.map(|(lines, next)| (lines, (next, permit)))) }
    })
    .map_err(|err: crate::error::AppError| {
        err.log_if_internal();
        std::io::Error::other("the open data export failed")
    });
    Response::builder()
        .content_type("application/jsonl; charset=utf-8")
        .header(header::CACHE_CONTROL, "public, max-age=300")
        .header(header::CONTENT_DISPOSITION, "inline; filename=\"kettle.jsonl\"")
        .body(Body::from_bytes_stream(lines))
}

/// The next page's lines and where to go on from, or `None` at the end.
async fn next_chunk(db: &Db, base: &str, mut stage: Stage) -> AppResult<Option<(Vec<u8>, Stage)>> {
    loop {
        let (records, next) = match stage {
            Stage::Done => return Ok(None),
            Stage::CaseStudies(after) => {
                let keyset = Keyset { after, before: None, forward: true, fetch: PAGE };
                let rows = case_studies::list_published(db, case_studies::Filter::default(), &keyset).await?;
                let next = match rows.last() {
                    Some(last) => Stage::CaseStudies(Some((last.published_at.unwrap_or_default(), last.id))),
                    None => Stage::Artefacts(None),
                };
                (case_study_records(db, base, &rows).await?, next)
            }
            Stage::Artefacts(after) => {
                let keyset = Keyset { after: after.map(|id| (0, id)), before: None, forward: true, fetch: PAGE };
                let rows =
                    artefacts::list(db, artefacts::Filter::default(), artefacts::ArtefactSort::Newest, &keyset).await?;
                let next = match rows.last() {
                    Some(last) => Stage::Artefacts(Some(last.id)),
                    None => Stage::Reuses(None),
                };
                (artefact_records(db, base, &rows).await?, next)
            }
            Stage::Reuses(after) => {
                let rows = reuse::page_all(db, after, PAGE).await?;
                let next = match rows.last() {
                    Some(last) => Stage::Reuses(Some((last.artefact_id, last.organisation_id))),
                    None => Stage::Done,
                };
                (reuse_records(db, base, &rows).await?, next)
            }
        };
        if records.is_empty() {
            stage = next;
            continue;
        }
        let mut chunk = Vec::with_capacity(records.len() * 512);
        for record in records {
            // serde_json escapes line breaks inside strings, so each record is one line.
            serde_json::to_writer(&mut chunk, &record).map_err(anyhow::Error::from)?;
            chunk.push(b'\n');
        }
        return Ok(Some((chunk, next)));
    }
}

/// An instant as RFC 3339 in UTC, as the API writes them.
fn instant(millis: i64) -> Value {
    jiff::Timestamp::from_millisecond(millis).map(|t| json!(t.to_string())).unwrap_or(Value::Null)
}

/// A member as the export names them: their display name and profile, or only "a former
/// member" once erased.
struct Person {
    handle: String,
    display_name: String,
    erased: bool,
}

async fn people(db: &Db, ids: &HashSet<i64>) -> AppResult<HashMap<i64, Person>> {
    let ids: Vec<i64> = ids.iter().copied().collect();
    let rows = db::rows_by_ids(db, "SELECT id, handle, display_name, erased_at FROM members WHERE id IN", &ids).await?;
    let mut found = HashMap::new();
    for row in rows {
        let person = Person {
            handle: row.try_get::<Option<String>, _>("handle")?.unwrap_or_default(),
            display_name: row.try_get("display_name")?,
            erased: row.try_get::<Option<i64>, _>("erased_at")?.is_some(),
        };
        found.insert(row.try_get::<i64, _>("id")?, person);
    }
    Ok(found)
}

fn person(base: &str, people: &HashMap<i64, Person>, id: i64) -> Value {
    match people.get(&id) {
        Some(p) if !p.erased => json!({ "id": format!("{base}/members/@{}", p.handle), "name": p.display_name }),
        _ => json!({ "id": null, "name": FORMER_MEMBER }),
    }
}

fn organisation(base: &str, organisations: &HashMap<i64, Organisation>, id: Option<i64>) -> Value {
    match id.and_then(|id| organisations.get(&id)) {
        Some(o) => json!({ "id": format!("{base}/organisations/{}", o.slug), "name": o.name }),
        None => Value::Null,
    }
}

/// An item's topics (sorted by name, as `topics::of_items` gives them).
fn topic_list(base: &str, topics: Option<&Vec<Topic>>) -> Value {
    let list = topics.into_iter().flatten();
    Value::Array(list.map(|t| json!({ "id": format!("{base}/topics/{}", t.slug), "name": t.name })).collect())
}

fn case_study_url(base: &str, id: i64) -> String {
    format!("{base}/case-studies/{id}")
}

fn artefact_url(base: &str, id: i64) -> String {
    format!("{base}/artefacts/{id}")
}

/// Whether a linked case study may be named: published and not hidden.
fn is_public(case_study: &CaseStudy) -> bool {
    case_study.status == CaseStudyStatus::Published && case_study.hidden_at.is_none()
}

async fn case_study_records(db: &Db, base: &str, rows: &[CaseStudy]) -> AppResult<Vec<Value>> {
    let ids: Vec<i64> = rows.iter().map(|c| c.id).collect();
    let authors = case_studies::authors_of(db, &ids).await?;
    let topics = topics::of_items(db, Tagged::CaseStudies, &ids).await?;
    let bodies = case_studies::bodies(db, &ids).await?;
    let people = people(db, &authors.values().flatten().copied().collect()).await?;
    let organisation_ids: Vec<i64> = rows.iter().filter_map(|c| c.organisation_id).collect();
    let organisations = organisations::by_ids(db, &organisation_ids).await?;
    Ok(rows
        .iter()
        .map(|c| {
            let author_ids = authors.get(&c.id).cloned().unwrap_or_else(|| vec![c.author_id]);
            json!({
                "type": "caseStudy",
                "formatVersion": FORMAT_VERSION,
                "id": case_study_url(base, c.id),
                "title": c.title,
                "summary": c.summary,
                "body": bodies.get(&c.id).map_or("", |b| b.source.as_str()),
                "phase": c.phase.as_str(),
                "organisation": organisation(base, &organisations, c.organisation_id),
                "authors": author_ids.iter().map(|id| person(base, &people, *id)).collect::<Vec<_>>(),
                "topics": topic_list(base, topics.get(&c.id)),
                "licence": CONTENT_LICENCE,
                "publishedAt": c.published_at.map(instant),
                "updatedAt": instant(c.updated_at),
            })
        })
        .collect())
}

async fn artefact_records(db: &Db, base: &str, rows: &[artefacts::Artefact]) -> AppResult<Vec<Value>> {
    let ids: Vec<i64> = rows.iter().map(|a| a.id).collect();
    let topics = topics::of_items(db, Tagged::Artefacts, &ids).await?;
    let case_study_links = artefacts::case_studies_of(db, &ids).await?;
    let publiccodes = publiccode::of_artefacts(db, &ids).await?;
    let linked: Vec<i64> = case_study_links.values().flatten().copied().collect::<HashSet<_>>().into_iter().collect();
    let case_studies = case_studies::by_ids(db, &linked).await?;
    let origins: Vec<i64> = rows.iter().filter_map(|a| a.adapted_from_id).collect();
    let origins = artefacts::by_ids(db, &origins).await?;
    let people = people(db, &rows.iter().map(|a| a.created_by).collect()).await?;
    let organisation_ids: Vec<i64> = rows.iter().filter_map(|a| a.organisation_id).collect();
    let organisations = organisations::by_ids(db, &organisation_ids).await?;
    Ok(rows
        .iter()
        .map(|a| {
            let case_study_ids: Vec<String> = case_study_links
                .get(&a.id)
                .into_iter()
                .flatten()
                .filter(|id| case_studies.get(id).is_some_and(is_public))
                .map(|id| case_study_url(base, *id))
                .collect();
            let adapted_from = a
                .adapted_from_id
                .filter(|id| origins.get(id).is_some_and(|o| o.hidden_at.is_none()))
                .map(|id| artefact_url(base, id));
            let publiccode = publiccodes.get(&a.id).map(|p| {
                json!({
                    "publiccodeYmlVersion": p.yml_version,
                    "name": p.name,
                    "url": p.url,
                    "licence": p.licence,
                    "maintenanceType": p.maintenance_type.as_str(),
                    "developmentStatus": p.development_status.as_str(),
                    "descriptionLanguage": p.description_language,
                    "shortDescription": p.short_description,
                    "longDescription": p.long_description,
                    "source": p.source,
                })
            });
            json!({
                "type": "artefact",
                "formatVersion": FORMAT_VERSION,
                "id": artefact_url(base, a.id),
                "title": a.title,
                "kind": a.kind.as_str(),
                "status": a.status.as_str(),
                "description": a.description_source,
                "url": a.url,
                "licence": a.licence,
                "organisation": organisation(base, &organisations, a.organisation_id),
                "sharedBy": person(base, &people, a.created_by),
                "topics": topic_list(base, topics.get(&a.id)),
                "adaptedFrom": adapted_from,
                "caseStudies": case_study_ids,
                "reuseCount": a.reuse_count,
                "publiccode": publiccode,
                "createdAt": instant(a.created_at),
                "updatedAt": instant(a.updated_at),
            })
        })
        .collect())
}

async fn reuse_records(db: &Db, base: &str, rows: &[reuse::Reuse]) -> AppResult<Vec<Value>> {
    let organisation_ids: Vec<i64> = rows.iter().map(|r| r.organisation_id).collect();
    let organisations = organisations::by_ids(db, &organisation_ids).await?;
    let linked: Vec<i64> = rows.iter().filter_map(|r| r.case_study_id).collect();
    let case_studies = case_studies::by_ids(db, &linked).await?;
    Ok(rows
        .iter()
        .map(|r| {
            let case_study = r
                .case_study_id
                .filter(|id| case_studies.get(id).is_some_and(is_public))
                .map(|id| case_study_url(base, id));
            json!({
                "type": "reuse",
                "formatVersion": FORMAT_VERSION,
                // One record per artefact and organisation, so the pair names it for good.
                "id": format!("{}#reuse-{}", artefact_url(base, r.artefact_id), r.organisation_id),
                "artefact": artefact_url(base, r.artefact_id),
                "organisation": organisation(base, &organisations, Some(r.organisation_id)),
                "note": r.note,
                "caseStudy": case_study,
                "licence": CONTENT_LICENCE,
                "createdAt": instant(r.created_at),
                "updatedAt": instant(r.updated_at),
            })
        })
        .collect())
}
