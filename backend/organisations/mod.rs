//! Organisations (councils, departments, NHS bodies, charities, suppliers) and who
//! belongs to them. Members ask to join; an organisation's admins approve or decline; the
//! creator is its first admin. A member may belong to several.

pub mod graphql;

use std::collections::HashMap;

use sqlx::{FromRow, Row};

use crate::{
    db::{self, Db, ListOrder},
    error::{AppResult, UserError, UserErrorCode},
    outbox,
    search::{self, SearchKind},
};

pub const NAME_MAX: usize = 120;
pub const SLUG_MAX: usize = 60;
/// The longest web address a link field holds (as stored, after normalising).
pub const URL_MAX: usize = 2_000;

crate::text_enum! {
    #[derive(Clone, Copy, Debug, PartialEq, Eq, async_graphql::Enum)]
    pub enum OrganisationKind {
        Council => "council",
        CentralGovernment => "central_government",
        Nhs => "nhs",
        Charity => "charity",
        Supplier => "supplier",
        Other => "other",
    }
}

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct Organisation {
    pub id: i64,
    pub slug: String,
    pub name: String,
    pub kind: OrganisationKind,
    pub website: Option<String>,
    pub created_at: i64,
}

const COLUMNS: &str = "id, slug, name, kind, website, created_at";

crate::text_enum! {
    #[derive(Clone, Copy, Debug, PartialEq, Eq, async_graphql::Enum)]
    pub enum MembershipStatus {
        Requested => "requested",
        Approved => "approved",
        Declined => "declined",
    }
}

crate::text_enum! {
    #[derive(Clone, Copy, Debug, PartialEq, Eq, async_graphql::Enum)]
    pub enum OrganisationRole {
        Admin => "admin",
        Member => "member",
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Membership {
    pub role: OrganisationRole,
    pub status: MembershipStatus,
}

impl Membership {
    pub fn is_admin(&self) -> bool {
        self.role == OrganisationRole::Admin && self.status == MembershipStatus::Approved
    }
    pub fn is_member(&self) -> bool {
        self.status == MembershipStatus::Approved
    }
}

pub fn check_name(field: &str, name: &str) -> Option<UserError> {
    crate::text::check_name(field, "Name", name, NAME_MAX, true)
}

/// Parses a link field: an http or https address with a host and no user name or
/// password, at most [`URL_MAX`] characters, one line. The result is what to store: the
/// URL as `url::Url` writes it (`HTTPS://Example.ORG` becomes `https://example.org/`, and
/// `https:evil.example` becomes `https://evil.example/`), so every reader of the stored
/// value sees the same address a browser would. `Ok(None)` for an empty optional field.
pub fn web_address(field: &str, label: &str, url: &str, required: bool) -> Result<Option<String>, UserError> {
    if let Some(error) = crate::text::check(field, label, url) {
        return Err(error);
    }
    let url = url.trim();
    if url.is_empty() {
        return match required {
            true => Err(UserError::new(field, UserErrorCode::Blank, format!("Enter the {}.", label.to_lowercase()))),
            false => Ok(None),
        };
    }
    let too_long =
        || UserError::new(field, UserErrorCode::TooLong, format!("{label} must be {URL_MAX} characters or fewer."));
    if url.chars().count() > URL_MAX {
        return Err(too_long());
    }
    let invalid = |message: String| UserError::new(field, UserErrorCode::Invalid, message);
    // The URL parser drops tabs and line breaks silently; an address that has them was
    // pasted wrongly or made to smuggle something, so it is refused instead.
    if url.contains(['\t', '\n', '\r']) {
        return Err(invalid(format!("{label} must be on one line.")));
    }
    let parsed = match url::Url::parse(url) {
        Ok(parsed) if matches!(parsed.scheme(), "http" | "https") && parsed.host().is_some() => parsed,
        _ => return Err(invalid(format!("{label} must be a web address starting with https:// or http://."))),
    };
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(invalid(format!("{label} must not contain a user name or password.")));
    }
    let normalised = String::from(parsed);
    if normalised.chars().count() > URL_MAX {
        return Err(too_long());
    }
    Ok(Some(normalised))
}

pub async fn by_ids(db: &Db, ids: &[i64]) -> AppResult<HashMap<i64, Organisation>> {
    let rows = db::rows_by_ids(db, &format!("SELECT {COLUMNS} FROM organisations WHERE id IN"), ids).await?;
    Ok(rows.iter().map(|r| Organisation::from_row(r).map(|o| (o.id, o))).collect::<sqlx::Result<_>>()?)
}

pub async fn by_slug(db: &Db, slug: &str) -> AppResult<Option<Organisation>> {
    let sql = format!("SELECT {COLUMNS} FROM organisations WHERE slug = $1");
    let row = sqlx::query(&sql).bind(slug.trim().to_ascii_lowercase()).fetch_optional(&db.pool).await?;
    Ok(row.map(|r| Organisation::from_row(&r)).transpose()?)
}

/// Organisations by name, then id (served by `organisations_name`).
pub async fn list(db: &Db, keyset: &db::Keyset<(String, i64)>) -> AppResult<Vec<Organisation>> {
    let rows = db::page_by_name(db, &format!("SELECT {COLUMNS} FROM organisations WHERE 1 = 1"), keyset).await?;
    Ok(rows.iter().map(Organisation::from_row).collect::<sqlx::Result<_>>()?)
}

pub struct NewOrganisation<'a> {
    pub name: &'a str,
    pub kind: OrganisationKind,
    pub website: Option<&'a str>,
}

/// Creates an organisation with `creator` as its first admin, under a slug made from the
/// name (numbered when taken).
pub async fn create(db: &Db, creator: i64, new: &NewOrganisation<'_>) -> AppResult<Organisation> {
    let base = match crate::slug::slugify(new.name, SLUG_MAX - 5) {
        slug if !slug.is_empty() => slug,
        _ => "organisation".to_string(),
    };
    let now = db::now_millis();
    let mut tx = db.begin_write().await?;
    let taken: Vec<String> = sqlx::query_scalar("SELECT slug FROM organisations WHERE slug = $1 OR slug LIKE $2")
        .bind(&base)
        .bind(format!("{base}-%"))
        .fetch_all(&mut *tx)
        .await?;
    let sql = format!(
        "INSERT INTO organisations (slug, name, kind, website, created_by, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $6) ON CONFLICT (slug) DO NOTHING RETURNING {COLUMNS}"
    );
    // Someone creating an organisation of the same name at the same moment may take the
    // slug we saw free (PostgreSQL does not serialise the read above); then the insert
    // does nothing and the next number is tried, without aborting the transaction.
    let candidates =
        (1..).map(|n| if n == 1 { base.clone() } else { format!("{base}-{n}") }).filter(|c| !taken.contains(c));
    let mut organisation = None;
    for candidate in candidates.take(20) {
        let row = sqlx::query(&sql)
            .bind(&candidate)
            .bind(new.name.trim())
            .bind(new.kind.as_str())
            .bind(new.website.map(str::trim).filter(|w| !w.is_empty()))
            .bind(creator)
            .bind(now)
            .fetch_optional(&mut *tx)
            .await?;
        if let Some(row) = row {
            organisation = Some(Organisation::from_row(&row)?);
            break;
        }
    }
    let organisation = organisation.ok_or_else(|| anyhow::anyhow!("no free slug for {base:?}"))?;
    sqlx::query(
        "INSERT INTO organisation_members (organisation_id, member_id, role, status, requested_at, decided_at, decided_by) \
         VALUES ($1, $2, 'admin', 'approved', $3, $3, $2)",
    )
    .bind(organisation.id)
    .bind(creator)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    let about =
        format!("{} {}", organisation.kind.as_str().replace('_', " "), organisation.website.as_deref().unwrap_or(""));
    search::index(&mut tx, SearchKind::Organisation, organisation.id, &organisation.name, &about).await?;
    tx.commit().await?;
    Ok(organisation)
}

pub async fn membership(db: &Db, organisation_id: i64, member_id: i64) -> AppResult<Option<Membership>> {
    let row =
        sqlx::query("SELECT role, status FROM organisation_members WHERE organisation_id = $1 AND member_id = $2")
            .bind(organisation_id)
            .bind(member_id)
            .fetch_optional(&db.pool)
            .await?;
    let Some(row) = row else { return Ok(None) };
    Ok(Some(Membership { role: row.try_get("role")?, status: row.try_get("status")? }))
}

/// Asks to join. A declined member may ask again; asking twice changes nothing.
pub async fn request_to_join(db: &Db, organisation_id: i64, member_id: i64) -> AppResult<Membership> {
    let mut tx = db.begin_write().await?;
    let now = db::now_millis();
    let changed = sqlx::query(
        "INSERT INTO organisation_members (organisation_id, member_id, role, status, requested_at) VALUES ($1, $2, 'member', 'requested', $3) \
         ON CONFLICT (organisation_id, member_id) DO UPDATE SET status = 'requested', requested_at = $3, decided_at = NULL, decided_by = NULL \
         WHERE organisation_members.status = 'declined'",
    )
    .bind(organisation_id)
    .bind(member_id)
    .bind(now)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if changed > 0 {
        let event = outbox::OrganisationJoinRequested { member_id };
        outbox::record(&mut tx, ("Organisation", organisation_id), Some(member_id), event).await?;
    }
    tx.commit().await?;
    Ok(membership(db, organisation_id, member_id).await?.expect("just written"))
}

/// Approves or declines a pending request; false when there was none.
pub async fn decide(db: &Db, organisation_id: i64, member_id: i64, approve: bool, admin_id: i64) -> AppResult<bool> {
    let mut tx = db.begin_write().await?;
    let changed = sqlx::query(
        "UPDATE organisation_members SET status = $1, decided_at = $2, decided_by = $3 \
         WHERE organisation_id = $4 AND member_id = $5 AND status = 'requested'",
    )
    .bind(if approve { "approved" } else { "declined" })
    .bind(db::now_millis())
    .bind(admin_id)
    .bind(organisation_id)
    .bind(member_id)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if changed > 0 {
        let event = outbox::OrganisationJoinDecided { member_id, approved: approve };
        outbox::record(&mut tx, ("Organisation", organisation_id), Some(admin_id), event).await?;
    }
    tx.commit().await?;
    Ok(changed > 0)
}

/// Member ids of an organisation with a given status, by member id (keyset).
pub async fn member_ids(db: &Db, organisation_id: i64, status: &str, keyset: &db::Keyset<i64>) -> AppResult<Vec<i64>> {
    let order = keyset.direction(ListOrder::Ascending);
    let sql = format!(
        "SELECT member_id FROM organisation_members WHERE organisation_id = $1 AND status = $2 \
         AND {} ORDER BY member_id {order} LIMIT $5",
        keyset.conditions("member_id", ListOrder::Ascending, "$3", "$4")
    );
    Ok(sqlx::query_scalar(&sql)
        .bind(organisation_id)
        .bind(status)
        .bind(keyset.after)
        .bind(keyset.before)
        .bind(keyset.fetch)
        .fetch_all(&db.pool)
        .await?)
}

/// The organisations `member_id` asked to join that have not decided yet, oldest request
/// first (at most 20; served by `organisation_members_member`).
pub async fn pending_for(db: &Db, member_id: i64) -> AppResult<Vec<i64>> {
    Ok(sqlx::query_scalar(
        "SELECT organisation_id FROM organisation_members WHERE member_id = $1 AND status = 'requested' \
         ORDER BY requested_at, organisation_id LIMIT 20",
    )
    .bind(member_id)
    .fetch_all(&db.pool)
    .await?)
}

/// A request to join an organisation, waiting for its admins.
#[derive(Clone, Debug)]
pub struct JoinRequest {
    pub organisation_id: i64,
    pub member_id: i64,
    pub requested_at: i64,
}

/// The requests waiting in the organisations `admin_id` administers, oldest first (at
/// most 50): through `organisation_members_member` to their organisations, then each
/// organisation's rows by the primary key.
pub async fn requests_for_admin(db: &Db, admin_id: i64) -> AppResult<Vec<JoinRequest>> {
    let rows: Vec<(i64, i64, i64)> = sqlx::query_as(
        "SELECT r.organisation_id, r.member_id, r.requested_at FROM organisation_members a \
         JOIN organisation_members r ON r.organisation_id = a.organisation_id AND r.status = 'requested' \
         WHERE a.member_id = $1 AND a.role = 'admin' AND a.status = 'approved' \
         ORDER BY r.requested_at, r.organisation_id, r.member_id LIMIT 50",
    )
    .bind(admin_id)
    .fetch_all(&db.pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(organisation_id, member_id, requested_at)| JoinRequest { organisation_id, member_id, requested_at })
        .collect())
}

/// The organisations each member belongs to (approved memberships), by name, at most 100
/// each: what `Member.organisations` loads in one statement for a whole list of members.
/// Served by `organisation_members_member`.
pub async fn ids_of_members(db: &Db, member_ids: &[i64]) -> AppResult<HashMap<i64, Vec<i64>>> {
    let select = "SELECT m.member_id, m.organisation_id FROM organisation_members m \
                  JOIN organisations o ON o.id = m.organisation_id WHERE m.status = 'approved' AND m.member_id IN";
    let mut lists = db::id_lists(db, select, member_ids, "ORDER BY m.member_id, o.name, o.id").await?;
    for list in lists.values_mut() {
        list.truncate(100);
    }
    Ok(lists)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn web_addresses_are_stored_normalised() {
        let stored = |url: &str| web_address("url", "The address", url, true);
        assert_eq!(stored("https://example.org").unwrap().as_deref(), Some("https://example.org/"));
        assert_eq!(
            stored("  HTTPS://Example.ORG/a b?q=1#x ").unwrap().as_deref(),
            Some("https://example.org/a%20b?q=1#x")
        );
        assert_eq!(stored("https:evil.example").unwrap().as_deref(), Some("https://evil.example/"));
        assert_eq!(stored("http://bücher.example/").unwrap().as_deref(), Some("http://xn--bcher-kva.example/"));
        assert_eq!(stored("https://example.org:443/").unwrap().as_deref(), Some("https://example.org/"));
        assert_eq!(web_address("url", "The address", " ", false).unwrap(), None);
        assert_eq!(stored("").unwrap_err().code, UserErrorCode::Blank);
        for bad in [
            "javascript:alert(1)",
            "data:text/html,hi",
            "ftp://example.org/",
            "example.org",
            "//example.org/",
            "https://",
            "https://user:secret@example.org/",
            "https://user@example.org/",
            "https://exam\nple.org/",
            "https://example.org/\r\nSet-Cookie: x=1",
            "https://example.org/\u{0}",
            "https://example.org/\u{b}",
        ] {
            assert_eq!(stored(bad).unwrap_err().code, UserErrorCode::Invalid, "{bad:?} accepted");
        }
        let long = format!("https://example.org/{}", "a".repeat(URL_MAX));
        assert_eq!(stored(&long).unwrap_err().code, UserErrorCode::TooLong);
        // Percent-encoding can lengthen an address past the limit.
        let grows = format!("https://example.org/{}x", " ".repeat(URL_MAX - 30));
        assert_eq!(stored(&grows).unwrap_err().code, UserErrorCode::TooLong);
    }
}
