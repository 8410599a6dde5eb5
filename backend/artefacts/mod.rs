//! Artefacts: the things teams made that others can reuse (code, patterns, templates,
//! research, datasets, contracts, service components), each with a licence, a status,
//! the organisation that maintains it and, optionally, the artefact it was adapted from.
//!
//! Artefacts are public from the moment they are shared: unlike a case study there is
//! nothing to draft, since the thing itself already lives elsewhere (at its URL). The
//! member who shared one and the admins of its maintaining organisation may edit it;
//! edits carry the version they started from, as case studies do, and keep the version
//! they replace in its history (see `history`).
//!
//! - [`reuse`]: "we reused this", one record per organisation and artefact;
//! - [`publiccode`]: a code artefact's `publiccode.yml`, checked and stored beside it;
//! - [`graphql`]: the `Artefact` type, the lists and the mutations.

pub mod graphql;
pub mod publiccode;
pub mod reuse;

use std::collections::HashMap;

use sqlx::{any::AnyRow, Row};

use crate::{
    db::{self, Db, ListOrder, Tx},
    error::{AppError, AppResult},
    history, markdown,
    notifications::follows,
    outbox,
    search::{self, SearchKind},
};

pub const TITLE_MAX: usize = 150;
pub const DESCRIPTION_MAX_BYTES: usize = 50 * 1024;
pub const LICENCE_MAX: usize = 60;
/// How many case studies one artefact may link to.
pub const CASE_STUDIES_MAX: usize = 10;
/// How far an adapted-from chain is followed when checking for loops.
pub const LINEAGE_MAX: usize = 50;

crate::text_enum! {
    #[derive(Clone, Copy, Debug, PartialEq, Eq, async_graphql::Enum)]
    pub enum ArtefactKind {
        Code => "code",
        DesignPattern => "design_pattern",
        TemplateOrDocument => "template",
        Research => "research",
        Dataset => "dataset",
        ProcurementOrContract => "procurement",
        ServiceComponent => "service_component",
        Other => "other",
    }
}

crate::text_enum! {
    #[derive(Clone, Copy, Debug, PartialEq, Eq, async_graphql::Enum)]
    pub enum ArtefactStatus {
        Experimental => "experimental",
        InUse => "in_use",
        Deprecated => "deprecated",
    }
}

#[derive(Clone, Debug)]
pub struct Artefact {
    pub id: i64,
    pub title: String,
    pub kind: ArtefactKind,
    pub description_source: String,
    pub description_html: String,
    pub url: String,
    pub licence: String,
    pub status: ArtefactStatus,
    pub organisation_id: Option<i64>,
    pub adapted_from_id: Option<i64>,
    pub created_by: i64,
    pub reuse_count: i64,
    pub version: i64,
    pub created_at: i64,
    pub updated_at: i64,
    /// Hidden by the moderators (see `moderation`): the member who shared it still sees it.
    pub hidden_at: Option<i64>,
    pub hidden_reason: Option<String>,
    /// Comments not deleted, replies included; kept on the row by triggers (migration 0014).
    pub comment_count: i64,
}

const COLUMNS: &str = "id, title, kind, description_source, description_html, url, licence, status, organisation_id, \
                       adapted_from_id, created_by, reuse_count, version, created_at, updated_at, hidden_at, hidden_reason, \
                       comment_count";

impl Artefact {
    fn from_row(row: &AnyRow) -> sqlx::Result<Artefact> {
        Ok(Artefact {
            id: row.try_get("id")?,
            title: row.try_get("title")?,
            kind: row.try_get("kind")?,
            description_source: row.try_get("description_source")?,
            description_html: row.try_get("description_html")?,
            url: row.try_get("url")?,
            licence: row.try_get("licence")?,
            status: row.try_get("status")?,
            organisation_id: row.try_get("organisation_id")?,
            adapted_from_id: row.try_get("adapted_from_id")?,
            created_by: row.try_get("created_by")?,
            reuse_count: row.try_get("reuse_count")?,
            version: row.try_get("version")?,
            created_at: row.try_get("created_at")?,
            updated_at: row.try_get("updated_at")?,
            hidden_at: row.try_get("hidden_at")?,
            hidden_reason: row.try_get("hidden_reason")?,
            comment_count: row.try_get("comment_count")?,
        })
    }
}

/// The SPDX spelling of a licence identifier typed in any case (`ogl-uk-3.0` becomes
/// `OGL-UK-3.0`), or `None` when SPDX has no such licence.
pub fn canonical_licence(text: &str) -> Option<&'static str> {
    let text = text.trim();
    spdx::identifiers::LICENSES.iter().find(|l| l.name.eq_ignore_ascii_case(text)).map(|l| l.name)
}

/// The licence's full name (`Open Government Licence v3.0`), for pages.
pub fn licence_name(id: &str) -> Option<&'static str> {
    spdx::license_id(id).map(|l| l.full_name)
}

/// The artefacts `member_id` shared that are not hidden, newest first, at most `limit`
/// (their profile's list; served by `artefacts_by_sharer`).
pub async fn shared_by(db: &Db, member_id: i64, limit: i64) -> AppResult<Vec<i64>> {
    Ok(sqlx::query_scalar(
        "SELECT id FROM artefacts WHERE created_by = $1 AND hidden_at IS NULL ORDER BY id DESC LIMIT $2",
    )
    .bind(member_id)
    .bind(limit.clamp(1, 50))
    .fetch_all(&db.pool)
    .await?)
}

pub async fn by_ids(db: &Db, ids: &[i64]) -> AppResult<HashMap<i64, Artefact>> {
    let rows = db::rows_by_ids(db, &format!("SELECT {COLUMNS} FROM artefacts WHERE id IN"), ids).await?;
    Ok(rows.iter().map(|r| Artefact::from_row(r).map(|a| (a.id, a))).collect::<sqlx::Result<_>>()?)
}

/// Ids of the case studies each artefact links to.
pub async fn case_studies_of(db: &Db, ids: &[i64]) -> AppResult<HashMap<i64, Vec<i64>>> {
    let select = "SELECT artefact_id, case_study_id FROM artefact_case_studies WHERE artefact_id IN";
    Ok(db::id_lists(db, select, ids, "ORDER BY artefact_id, case_study_id").await?)
}

/// Ids of the artefacts linked to each case study, newest first.
pub async fn of_case_studies(db: &Db, ids: &[i64]) -> AppResult<HashMap<i64, Vec<i64>>> {
    let select = "SELECT case_study_id, artefact_id FROM artefact_case_studies WHERE case_study_id IN";
    Ok(db::id_lists(db, select, ids, "ORDER BY case_study_id, artefact_id DESC").await?)
}

/// Ids of the artefacts adapted from each artefact, newest first (at most 100 each,
/// which the page says).
pub async fn adaptations_of(db: &Db, ids: &[i64]) -> AppResult<HashMap<i64, Vec<i64>>> {
    let select = "SELECT adapted_from_id, id FROM artefacts WHERE adapted_from_id IN";
    let mut map = db::id_lists(db, select, ids, "ORDER BY adapted_from_id, id DESC").await?;
    map.values_mut().for_each(|list| list.truncate(100));
    Ok(map)
}

/// How a list of artefacts is ordered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, async_graphql::Enum)]
pub enum ArtefactSort {
    /// Most recently shared first.
    #[default]
    Newest,
    /// Reused by the most organisations first; the newest first among equals.
    MostReused,
}

/// What a list of artefacts is narrowed to.
#[derive(Clone, Copy, Debug, Default)]
pub struct Filter {
    pub kind: Option<ArtefactKind>,
    pub status: Option<ArtefactStatus>,
    pub topic_id: Option<i64>,
    pub organisation_id: Option<i64>,
}

/// One page of artefacts. Newest first is a keyset on id, most reused on (reuse_count,
/// id); both are read from the key `(reuse_count or 0, id)`, so one cursor type serves
/// both orders. The kind, status and organisation lists each have an index in id order,
/// topic lists start from `artefact_topics_topic`, and the reuse order has its own.
pub async fn list(
    db: &Db,
    filter: Filter,
    sort: ArtefactSort,
    keyset: &db::Keyset<(i64, i64)>,
) -> AppResult<Vec<Artefact>> {
    let (after_count, after_id) = keyset.after.unzip();
    let (before_count, before_id) = keyset.before.unzip();
    let rows = sqlx::query(&list_sql(sort, keyset, &filter))
        .bind(filter.kind.map(ArtefactKind::as_str))
        .bind(filter.status.map(ArtefactStatus::as_str))
        .bind(filter.topic_id)
        .bind(filter.organisation_id)
        .bind(after_count)
        .bind(after_id)
        .bind(before_count)
        .bind(before_id)
        .bind(keyset.fetch)
        .fetch_all(&db.pool)
        .await?;
    Ok(rows.iter().map(Artefact::from_row).collect::<sqlx::Result<_>>()?)
}

/// The cursor key of an artefact in a list ordered by `sort`.
pub fn sort_key(sort: ArtefactSort, artefact: &Artefact) -> (i64, i64) {
    match sort {
        ArtefactSort::Newest => (0, artefact.id),
        ArtefactSort::MostReused => (artefact.reuse_count, artefact.id),
    }
}

/// The SQL of [`list`], public so a test can check its plans on both databases. Binds:
/// kind, status, topic, organisation, after (count, id), before (count, id), limit; only
/// the filters that are set become conditions (see [`db::filter_condition`]).
pub fn list_sql(sort: ArtefactSort, bounds: &db::Keyset<(i64, i64)>, filter: &Filter) -> String {
    let order = bounds.direction(ListOrder::Descending);
    // Newest first reads only the id half of the (count, id) key; $5 and $7 go unused.
    let (keyset, order_by) = match sort {
        ArtefactSort::Newest => (bounds.conditions("a.id", ListOrder::Descending, "$6", "$8"), format!("a.id {order}")),
        ArtefactSort::MostReused => (
            bounds.conditions("(a.reuse_count, a.id)", ListOrder::Descending, "($5, $6)", "($7, $8)"),
            format!("a.reuse_count {order}, a.id {order}"),
        ),
    };
    let condition = db::filter_condition;
    format!(
        "SELECT {} FROM artefacts a WHERE a.hidden_at IS NULL AND {} AND {} AND {} AND {} AND {keyset} ORDER BY {order_by} LIMIT $9",
        COLUMNS.split(',').map(|c| format!("a.{}", c.trim())).collect::<Vec<_>>().join(", "),
        condition(filter.kind.is_some(), "$1", "a.kind = $1"),
        condition(filter.status.is_some(), "$2", "a.status = $2"),
        condition(
            filter.topic_id.is_some(),
            "$3",
            "EXISTS (SELECT 1 FROM artefact_topics t WHERE t.artefact_id = a.id AND t.topic_id = $3)"
        ),
        condition(filter.organisation_id.is_some(), "$4", "a.organisation_id = $4"),
    )
}

/// Validated fields for a new artefact or an edit.
pub struct Fields {
    pub title: String,
    pub kind: ArtefactKind,
    pub description_source: String,
    pub url: String,
    pub licence: String,
    pub status: ArtefactStatus,
    pub organisation_id: Option<i64>,
    pub adapted_from_id: Option<i64>,
    pub topic_ids: Vec<i64>,
    pub case_study_ids: Vec<i64>,
    /// A code artefact's checked publiccode.yml; `None` removes any it had.
    pub publiccode: Option<publiccode::Publiccode>,
}

async fn replace_links(tx: &mut Tx, artefact_id: i64, fields: &Fields) -> AppResult<()> {
    sqlx::query("DELETE FROM artefact_topics WHERE artefact_id = $1").bind(artefact_id).execute(&mut **tx).await?;
    for topic_id in &fields.topic_ids {
        sqlx::query("INSERT INTO artefact_topics (artefact_id, topic_id) VALUES ($1, $2)")
            .bind(artefact_id)
            .bind(topic_id)
            .execute(&mut **tx)
            .await?;
    }
    sqlx::query("DELETE FROM artefact_case_studies WHERE artefact_id = $1")
        .bind(artefact_id)
        .execute(&mut **tx)
        .await?;
    for case_study_id in &fields.case_study_ids {
        sqlx::query("INSERT INTO artefact_case_studies (artefact_id, case_study_id) VALUES ($1, $2)")
            .bind(artefact_id)
            .bind(case_study_id)
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}

async fn index_for_search(tx: &mut Tx, artefact: &Artefact) -> AppResult<()> {
    let text = format!("{}\n\n{}", artefact.licence, artefact.description_source);
    search::index(tx, SearchKind::Artefact, artefact.id, &artefact.title, &text).await
}

/// Shares an artefact: public at once, indexed for search, and announced in the outbox.
pub async fn create(db: &Db, member_id: i64, fields: &Fields) -> AppResult<Artefact> {
    let rendered = markdown::render_linked(db, &fields.description_source).await?;
    let now = db::now_millis();
    let mut tx = db.begin_write().await?;
    let sql = format!(
        "INSERT INTO artefacts (title, kind, description_source, description_html, url, licence, status, organisation_id, \
         adapted_from_id, created_by, reuse_count, version, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 0, 1, $11, $11) RETURNING {COLUMNS}"
    );
    let row = sqlx::query(&sql)
        .bind(fields.title.trim())
        .bind(fields.kind.as_str())
        .bind(&fields.description_source)
        .bind(&rendered.html)
        .bind(fields.url.trim())
        .bind(&fields.licence)
        .bind(fields.status.as_str())
        .bind(fields.organisation_id)
        .bind(fields.adapted_from_id)
        .bind(member_id)
        .bind(now)
        .fetch_one(&mut *tx)
        .await?;
    let artefact = Artefact::from_row(&row)?;
    replace_links(&mut tx, artefact.id, fields).await?;
    publiccode::replace(&mut tx, artefact.id, fields.publiccode.as_ref()).await?;
    index_for_search(&mut tx, &artefact).await?;
    let event = outbox::ArtefactPublished {
        title: artefact.title.clone(),
        organisation_id: artefact.organisation_id,
        adapted_from_id: artefact.adapted_from_id,
        case_study_ids: fields.case_study_ids.clone(),
    };
    outbox::record(&mut tx, ("Artefact", artefact.id), Some(member_id), event).await?;
    outbox::record_mentions(&mut tx, ("Artefact", artefact.id), member_id, &rendered.mentioned_ids).await?;
    follows::watch_automatically(&mut tx, member_id, follows::Target { type_name: "Artefact", id: artefact.id })
        .await?;
    tx.commit().await?;
    Ok(artefact)
}

pub enum EditOutcome {
    Saved(Artefact),
    /// Someone saved a newer version first; this is the current one.
    Conflict(Artefact),
}

/// Saves `editor_id`'s edit made to `expected_version`, keeping the version it replaces
/// in the history with its change note (see `case_studies::update` for why the version
/// condition is enough).
pub async fn update(
    db: &Db,
    id: i64,
    expected_version: i64,
    editor_id: i64,
    fields: &Fields,
    change_note: &str,
) -> AppResult<EditOutcome> {
    let rendered = markdown::render_linked(db, &fields.description_source).await?;
    let now = db::now_millis();
    let mut tx = db.begin_write().await?;
    match history::lock(&mut tx, db.dialect, history::Subject::Artefact, id).await? {
        None => return Err(AppError::NotFound("That artefact")),
        Some(version) if version != expected_version => {
            tx.rollback().await?;
            let current = by_ids(db, &[id]).await?.remove(&id).ok_or(AppError::NotFound("That artefact"))?;
            return Ok(EditOutcome::Conflict(current));
        }
        Some(_) => history::keep(&mut tx, history::Subject::Artefact, id, expected_version, editor_id, now).await?,
    }
    let sql = format!(
        "UPDATE artefacts SET title = $1, kind = $2, description_source = $3, description_html = $4, url = $5, licence = $6, \
         status = $7, organisation_id = $8, adapted_from_id = $9, version = version + 1, updated_at = $10, change_note = $13 \
         WHERE id = $11 AND version = $12 RETURNING {COLUMNS}"
    );
    let row = sqlx::query(&sql)
        .bind(fields.title.trim())
        .bind(fields.kind.as_str())
        .bind(&fields.description_source)
        .bind(&rendered.html)
        .bind(fields.url.trim())
        .bind(&fields.licence)
        .bind(fields.status.as_str())
        .bind(fields.organisation_id)
        .bind(fields.adapted_from_id)
        .bind(now)
        .bind(id)
        .bind(expected_version)
        .bind(change_note.trim())
        .fetch_optional(&mut *tx)
        .await?;
    let Some(row) = row else {
        tx.rollback().await?;
        let current = by_ids(db, &[id]).await?.remove(&id).ok_or(AppError::NotFound("That artefact"))?;
        return Ok(EditOutcome::Conflict(current));
    };
    let saved = Artefact::from_row(&row)?;
    replace_links(&mut tx, id, fields).await?;
    publiccode::replace(&mut tx, id, fields.publiccode.as_ref()).await?;
    // A hidden artefact stays out of search until a moderator shows it again.
    if saved.hidden_at.is_none() {
        index_for_search(&mut tx, &saved).await?;
    }
    tx.commit().await?;
    Ok(EditOutcome::Saved(saved))
}

/// Whether making `id` adapted from `candidate` would close a loop: true when `id` is
/// `candidate` or one of its ancestors. Chains longer than [`LINEAGE_MAX`] count as a
/// loop too, so the check is bounded.
pub async fn would_loop(db: &Db, id: i64, candidate: i64) -> AppResult<bool> {
    let mut current = Some(candidate);
    for _ in 0..LINEAGE_MAX {
        match current {
            None => return Ok(false),
            Some(step) if step == id => return Ok(true),
            Some(step) => {
                current = sqlx::query_scalar::<_, Option<i64>>("SELECT adapted_from_id FROM artefacts WHERE id = $1")
                    .bind(step)
                    .fetch_optional(&db.pool)
                    .await?
                    .flatten();
            }
        }
    }
    Ok(current.is_some())
}
