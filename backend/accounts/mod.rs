//! Members: who they are, how they prove it, and what they may do.
//!
//! - this module: the [`Member`] record, its validation rules and its SQL;
//! - [`passwords`]: argon2id hashing (off the async threads) and the strength check;
//! - [`credentials`]: sign-in sessions and personal access tokens, and turning either
//!   into an [`Identity`];
//! - [`throttle`]: slowing down, then refusing, repeated failed sign-ins;
//! - [`oauth`]: signing in with an identity provider (OAuth2 with PKCE), and linking one;
//! - [`recovery`]: proving who holds an address with single-use links by mail
//!   (verification, password reset, a change of address) and the security mail around
//!   them, registration included;
//! - [`graphql`]: the `Member` and `AccessToken` types, `viewer`, and the account
//!   mutations.

pub mod credentials;
pub mod graphql;
pub mod oauth;
pub mod passwords;
pub mod recovery;
pub mod throttle;

use std::collections::HashMap;

use sqlx::{any::AnyRow, Row};

use crate::{
    db::{self, Db, Tx},
    error::{AppError, AppResult, UserError, UserErrorCode},
    text,
};

pub use credentials::Identity;

pub const EMAIL_MAX: usize = 254;
pub const DISPLAY_NAME_MAX: usize = 80;
pub const BIO_MAX: usize = 500;
pub const TIME_ZONE_MAX: usize = 64;
pub const DEFAULT_TIME_ZONE: &str = "Europe/London";

crate::text_enum! {
    #[derive(Clone, Copy, Debug, PartialEq, Eq, async_graphql::Enum)]
    pub enum Role {
        Member => "member",
        Moderator => "moderator",
        Admin => "admin",
    }
}

#[derive(Clone, Debug)]
pub struct Member {
    pub id: i64,
    pub email: String,
    /// The unique, URL-safe name used in `@mentions` and profile addresses.
    pub handle: String,
    pub display_name: String,
    pub bio: String,
    pub time_zone: String,
    pub role: Role,
    pub created_at: i64,
    pub suspended_at: Option<i64>,
    /// The end of a time-limited suspension (None with `suspended_at` set: until lifted),
    /// and the reason the member is shown. See [`Member::suspension_in_force`].
    pub suspended_until: Option<i64>,
    pub suspension_reason: Option<String>,
    /// When the member proved they receive mail at `email`; until then they get no mail
    /// but verification.
    pub email_verified_at: Option<i64>,
    /// When mail to `email` last failed for good; mail (but security mail) stops until
    /// the address is verified again.
    pub email_bouncing_at: Option<i64>,
    /// When the member last chose their handle (see [`change_handle`]); never, for the
    /// one Kettle made from their name.
    pub handle_changed_at: Option<i64>,
}

const MEMBER_COLUMNS: &str = "id, email, handle, display_name, bio, time_zone, role, created_at, suspended_at, \
     suspended_until, suspension_reason, \
     email_verified_at, email_bouncing_at, handle_changed_at";

impl Member {
    fn from_row(row: &AnyRow) -> sqlx::Result<Member> {
        Ok(Member {
            id: row.try_get("id")?,
            email: row.try_get("email")?,
            handle: row.try_get::<Option<String>, _>("handle")?.unwrap_or_default(),
            display_name: row.try_get("display_name")?,
            bio: row.try_get("bio")?,
            time_zone: row.try_get("time_zone")?,
            role: row.try_get("role")?,
            created_at: row.try_get("created_at")?,
            suspended_at: row.try_get("suspended_at")?,
            suspended_until: row.try_get("suspended_until")?,
            suspension_reason: row.try_get("suspension_reason")?,
            email_verified_at: row.try_get("email_verified_at")?,
            email_bouncing_at: row.try_get("email_bouncing_at")?,
            handle_changed_at: row.try_get("handle_changed_at")?,
        })
    }
}

impl Member {
    /// From when the member may choose a new handle; `None`: now.
    pub fn handle_changeable_from(&self) -> Option<i64> {
        self.handle_changed_at.map(|at| at + HANDLE_CHANGE_INTERVAL_MS)
    }

    /// Whether a suspension is in force at `now`: a time-limited one ends by itself, with
    /// nothing to run at its end.
    pub fn is_suspended(&self, now: i64) -> bool {
        crate::moderation::suspensions::in_force(self.suspended_at, self.suspended_until, now)
    }

    /// What a suspended member is told when they try to sign in: until when (a date in
    /// their own time zone) and why, so they know what happened without asking anyone.
    pub fn suspension_notice(&self) -> String {
        let until = self.suspended_until.and_then(|t| jiff::Timestamp::from_millisecond(t).ok()).map(|t| {
            let zone = jiff::tz::TimeZone::get(&self.time_zone).unwrap_or(jiff::tz::TimeZone::UTC);
            t.to_zoned(zone).strftime("%-d %B %Y").to_string()
        });
        let mut notice = match until {
            Some(date) => format!("This account is suspended until {date}"),
            None => "This account is suspended".to_string(),
        };
        let reason = self.suspension_reason.as_deref().unwrap_or("").trim();
        if !reason.is_empty() {
            notice.push_str(": ");
            notice.push_str(reason);
        }
        if !notice.ends_with(['.', '!', '?']) {
            notice.push('.');
        }
        notice.push_str(" Contact the site's moderators if you think this is a mistake.");
        notice
    }
}

/// Loads members by id in one statement (what the GraphQL DataLoader calls).
pub async fn members_by_ids(db: &Db, ids: &[i64]) -> AppResult<HashMap<i64, Member>> {
    let rows = db::rows_by_ids(db, &format!("SELECT {MEMBER_COLUMNS} FROM members WHERE id IN"), ids).await?;
    Ok(rows.iter().map(|r| Member::from_row(r).map(|m| (m.id, m))).collect::<sqlx::Result<_>>()?)
}

pub async fn member_by_id(db: &Db, id: i64) -> AppResult<Option<Member>> {
    Ok(members_by_ids(db, &[id]).await?.remove(&id))
}

/// The member with this email (compared without case) and their password hash.
pub async fn member_with_password(db: &Db, email: &str) -> AppResult<Option<(Member, Option<String>)>> {
    let sql = format!("SELECT {MEMBER_COLUMNS}, password_hash FROM members WHERE email_normalized = $1");
    let row = sqlx::query(&sql).bind(normalize_email(email)).fetch_optional(&db.pool).await?;
    match row {
        Some(row) => Ok(Some((Member::from_row(&row)?, row.try_get("password_hash")?))),
        None => Ok(None),
    }
}

pub struct NewMember<'a> {
    pub email: &'a str,
    pub display_name: &'a str,
    pub password_hash: Option<&'a str>,
    pub role: Role,
}

/// Inserts a member; `Ok(None)` when the email is already taken (by any case variant).
/// The handle comes from the display name, with a number added when it is taken.
pub async fn insert_member(db: &Db, new: NewMember<'_>) -> AppResult<Option<Member>> {
    let mut tx = db.begin_write().await?;
    let member = insert_member_in(&mut tx, new).await?;
    tx.commit().await?;
    Ok(member)
}

/// [`insert_member`] inside a transaction, so that what goes with a new member (its
/// verification link and mail) commits with it or not at all.
///
/// A conflict does nothing (`ON CONFLICT DO NOTHING`) rather than fail: on PostgreSQL a
/// failed statement would abort the whole transaction, and the handle may need another
/// try. Which key conflicted is then read back: the email (someone has it: `None`), or
/// else the handle (try the next one). A handle another member gave up is as taken as
/// one in use (see [`change_handle`]).
pub async fn insert_member_in(tx: &mut Tx, new: NewMember<'_>) -> AppResult<Option<Member>> {
    let now = db::now_millis();
    let sql = format!(
        "INSERT INTO members (email, email_normalized, handle, password_hash, display_name, role, time_zone, created_at, updated_at) \
         SELECT $1, $2, $3, $4, $5, $6, $7, $8, $8 \
         WHERE NOT EXISTS (SELECT 1 FROM member_handle_history WHERE handle = $3) \
         ON CONFLICT DO NOTHING RETURNING {MEMBER_COLUMNS}"
    );
    let base = match crate::slug::slugify(new.display_name, crate::markdown::HANDLE_MAX - 5) {
        slug if slug.len() >= crate::markdown::HANDLE_MIN => slug,
        _ => "member".to_string(),
    };
    let normalized = normalize_email(new.email);
    for attempt in 0..20u32 {
        let handle = match attempt {
            0 => base.clone(),
            1..=9 => format!("{base}-{}", attempt + 1),
            _ => format!("{base}-{}", rand::random::<u16>() % 10_000),
        };
        let row = sqlx::query(&sql)
            .bind(new.email.trim())
            .bind(&normalized)
            .bind(&handle)
            .bind(new.password_hash)
            .bind(new.display_name.trim())
            .bind(new.role.as_str())
            .bind(DEFAULT_TIME_ZONE)
            .bind(now)
            .fetch_optional(&mut **tx)
            .await?;
        if let Some(row) = row {
            return Ok(Some(Member::from_row(&row)?));
        }
        let email_taken: Option<i64> = sqlx::query_scalar("SELECT id FROM members WHERE email_normalized = $1")
            .bind(&normalized)
            .fetch_optional(&mut **tx)
            .await?;
        if email_taken.is_some() {
            return Ok(None);
        }
    }
    Err(anyhow::anyhow!("no free handle for {base:?} after 20 attempts").into())
}

/// The member with this handle (without the `@`, any case), or who had it before.
pub async fn member_by_handle(db: &Db, handle: &str) -> AppResult<Option<Member>> {
    let handle = handle.trim().trim_start_matches('@').to_ascii_lowercase();
    if handle.len() > crate::markdown::HANDLE_MAX {
        return Ok(None);
    }
    // A handle the member gave up finds them too (their row carries the one they use now).
    let sql = format!(
        "SELECT {MEMBER_COLUMNS} FROM members WHERE handle = $1 \
         UNION ALL SELECT {MEMBER_COLUMNS} FROM members WHERE id = \
         (SELECT member_id FROM member_handle_history WHERE handle = $1)"
    );
    let row = sqlx::query(&sql).bind(handle).fetch_optional(&db.pool).await?;
    Ok(row.map(|r| Member::from_row(&r)).transpose()?)
}

/// The longest prefix the member directory looks up.
pub const DIRECTORY_PREFIX_MAX: usize = crate::markdown::HANDLE_MAX;

/// A handle prefix as typed ("@Grace H", "grace-h") as handles spell it ("grace-h"):
/// what the directory and `@mention` suggestions look up.
pub fn handle_prefix(typed: &str) -> String {
    let typed = typed.trim().trim_start_matches('@');
    let mut prefix = crate::slug::slugify(typed, DIRECTORY_PREFIX_MAX);
    // slugify drops a trailing hyphen, which is half of a handle typed so far.
    if typed.ends_with(['-', ' ']) && !prefix.is_empty() && prefix.len() < DIRECTORY_PREFIX_MAX {
        prefix.push('-');
    }
    prefix
}

/// The member directory: members (not erased) by handle, A to Z, those whose handle
/// starts with `prefix` when one is given (see [`handle_prefix`]). Handles are ASCII, so
/// the prefix is a range on `members_handle_bytewise`, compared byte by byte on both
/// databases (see [`db::Dialect::bytewise`]).
pub async fn directory(db: &Db, prefix: &str, keyset: &db::Keyset<String>) -> AppResult<Vec<Member>> {
    let set = !prefix.is_empty();
    let rows = sqlx::query(&directory_sql(db.dialect, set, keyset))
        .bind(set.then_some(prefix))
        // After every handle that starts with the prefix: the prefix and a byte above
        // every character a handle holds.
        .bind(set.then(|| format!("{prefix}\u{7f}")))
        .bind(keyset.after.as_deref())
        .bind(keyset.before.as_deref())
        .bind(keyset.fetch)
        .fetch_all(&db.pool)
        .await?;
    Ok(rows.iter().map(Member::from_row).collect::<sqlx::Result<_>>()?)
}

/// The SQL of [`directory`], public so a test can check its plans on both databases.
/// Binds: the prefix and the end of its range (when `prefixed`), after, before, limit.
pub fn directory_sql(dialect: db::Dialect, prefixed: bool, keyset: &db::Keyset<String>) -> String {
    let handle = format!("handle{}", dialect.bytewise());
    let order = keyset.direction(db::ListOrder::Ascending);
    format!(
        "SELECT {MEMBER_COLUMNS} FROM members WHERE erased_at IS NULL AND {} AND {} ORDER BY {handle} {order} LIMIT $5",
        if prefixed { format!("{handle} >= $1 AND {handle} < $2") } else { "$1 IS NULL AND $2 IS NULL".to_string() },
        keyset.conditions(&handle, db::ListOrder::Ascending, "$3", "$4"),
    )
}

/// The ids of the members with these (lower-case) handles, by handle; handles nobody
/// has are left out. For linking `@mentions`: a handle a member gave up still reaches
/// them (see [`change_handle`]).
pub async fn ids_by_handle(db: &Db, handles: &[String]) -> AppResult<HashMap<String, i64>> {
    if handles.is_empty() {
        return Ok(HashMap::new());
    }
    let list = db::placeholders(1, handles.len());
    let sql = format!(
        "SELECT handle, id FROM members WHERE handle IN ({list}) \
         UNION ALL SELECT handle, member_id FROM member_handle_history WHERE handle IN ({list})"
    );
    let mut query = sqlx::query_as::<_, (String, i64)>(&sql);
    for handle in handles {
        query = query.bind(handle);
    }
    Ok(query.fetch_all(&db.pool).await?.into_iter().collect())
}

/// How long a member waits between choosing handles: links and mentions made with each
/// handle keep working, but people learn a handle, and a new one every day would be
/// confusing (or a way to pass as others).
pub const HANDLE_CHANGE_INTERVAL_MS: i64 = 30 * 24 * 60 * 60 * 1000;

/// Whether `handle` may be chosen: 2 to 30 lower-case letters, digits and hyphens,
/// starting and ending with a letter or digit, as the handles Kettle makes from names.
pub fn check_handle(field: &str, handle: &str) -> Option<UserError> {
    let bytes = handle.as_bytes();
    let shaped = bytes.iter().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
        && !handle.starts_with('-')
        && !handle.ends_with('-')
        && !handle.contains("--");
    if handle.len() < crate::markdown::HANDLE_MIN {
        Some(UserError::new(field, UserErrorCode::TooShort, "A handle needs at least 2 characters."))
    } else if handle.len() > crate::markdown::HANDLE_MAX {
        Some(UserError::new(field, UserErrorCode::TooLong, "A handle can be at most 30 characters."))
    } else if !shaped {
        Some(UserError::new(
            field,
            UserErrorCode::Invalid,
            "A handle is lower-case letters, digits and single hyphens between them, such as grace-hopper.",
        ))
    } else {
        None
    }
}

/// What became of a request for a new handle.
// Returned once per request and matched at once, as `RoleChange` is.
#[allow(clippy::large_enum_variant)]
pub enum HandleChange {
    Changed(Member),
    /// Another member has it, now or before.
    Taken,
    /// The last change was less than [`HANDLE_CHANGE_INTERVAL_MS`] ago; the next may be
    /// made from this instant.
    TooSoon(i64),
}

/// Gives the member `handle` (checked with [`check_handle`]), keeping the one it
/// replaces as theirs in `member_handle_history`: `/members/@old` leads to them, mentions
/// of it still reach them, and nobody else can take it. One of their own former handles
/// can be taken back. The member's row is locked first, so two changes at once are one
/// after the other.
pub async fn change_handle(db: &Db, member_id: i64, handle: &str) -> AppResult<HandleChange> {
    let now = db::now_millis();
    let mut tx = db.begin_write().await?;
    let locked = format!("SELECT {MEMBER_COLUMNS} FROM members WHERE id = $1{}", db.dialect.for_update());
    let row = sqlx::query(&locked).bind(member_id).fetch_optional(&mut *tx).await?.ok_or(AppError::NotFound("You"))?;
    let member = Member::from_row(&row)?;
    if member.handle == handle {
        return Ok(HandleChange::Changed(member));
    }
    if let Some(next) = member.handle_changeable_from() {
        if now < next {
            return Ok(HandleChange::TooSoon(next));
        }
    }
    let holders: Vec<i64> = sqlx::query_scalar(
        "SELECT id FROM members WHERE handle = $1 UNION ALL SELECT member_id FROM member_handle_history WHERE handle = $1",
    )
    .bind(handle)
    .fetch_all(&mut *tx)
    .await?;
    if holders.iter().any(|holder| *holder != member_id) {
        return Ok(HandleChange::Taken);
    }
    sqlx::query("DELETE FROM member_handle_history WHERE handle = $1 AND member_id = $2")
        .bind(handle)
        .bind(member_id)
        .execute(&mut *tx)
        .await?;
    sqlx::query("INSERT INTO member_handle_history (handle, member_id, retired_at) VALUES ($1, $2, $3)")
        .bind(&member.handle)
        .bind(member_id)
        .bind(now)
        .execute(&mut *tx)
        .await?;
    let update = format!(
        "UPDATE members SET handle = $1, handle_changed_at = $2, updated_at = $2 WHERE id = $3 RETURNING {MEMBER_COLUMNS}"
    );
    match sqlx::query(&update).bind(handle).bind(now).bind(member_id).fetch_one(&mut *tx).await {
        Ok(row) => {
            tx.commit().await?;
            Ok(HandleChange::Changed(Member::from_row(&row)?))
        }
        // Someone registered with it since the check: theirs now.
        Err(err) if db::is_unique_violation(&err, "members", "handle") => Ok(HandleChange::Taken),
        Err(err) => Err(err.into()),
    }
}

pub struct ProfileChanges {
    pub display_name: Option<String>,
    pub bio: Option<String>,
    pub time_zone: Option<String>,
}

/// Saves profile changes. A new time zone moves the member's next digest to their hour
/// in it, in the same transaction.
pub async fn update_profile(db: &Db, member_id: i64, changes: &ProfileChanges) -> AppResult<Member> {
    let sql = format!(
        "UPDATE members SET display_name = COALESCE($1, display_name), bio = COALESCE($2, bio), \
         time_zone = COALESCE($3, time_zone), updated_at = $4 WHERE id = $5 RETURNING {MEMBER_COLUMNS}"
    );
    let now = db::now_millis();
    let mut tx = db.begin_write().await?;
    let row = sqlx::query(&sql)
        .bind(changes.display_name.as_deref().map(str::trim))
        .bind(changes.bio.as_deref().map(str::trim))
        .bind(changes.time_zone.as_deref().map(str::trim))
        .bind(now)
        .bind(member_id)
        .fetch_one(&mut *tx)
        .await?;
    if changes.time_zone.is_some() {
        crate::mail::digest::reschedule(&mut tx, member_id, now).await?;
    }
    tx.commit().await?;
    Ok(Member::from_row(&row)?)
}

/// Whose role changes: by id (an admin in the site) or by address (the operator, with
/// `kettle admin promote`).
pub enum RoleTarget<'a> {
    Id(i64),
    Email(&'a str),
}

// Returned once per request and matched at once: boxing the member would only add an
// allocation.
#[allow(clippy::large_enum_variant)]
pub enum RoleChange {
    /// Changed (or already so, which changes and records nothing).
    Done(Member),
    NotFound,
    /// The member is the last admin who can still sign in: demoting them would leave
    /// nobody to run the site.
    LastAdmin,
}

/// Changes a member's role and records it in the audit log (before and after) in the same
/// transaction. `actor_id` is None for the operator at the command line.
///
/// The last admin check counts admins under a lock on every admin row: on PostgreSQL two
/// admins demoting each other at once would otherwise each see the other still there
/// (SQLite's write transaction already runs them one after the other).
pub async fn change_role(
    db: &Db,
    actor_id: Option<i64>,
    target: RoleTarget<'_>,
    role: Role,
    reason: &str,
) -> AppResult<RoleChange> {
    let now = db::now_millis();
    let mut tx = db.begin_write().await?;
    sqlx::query(&format!("SELECT id FROM members WHERE role = 'admin'{}", db.dialect.for_update()))
        .fetch_all(&mut *tx)
        .await?;
    let row = match target {
        RoleTarget::Id(id) => {
            sqlx::query(&format!("SELECT {MEMBER_COLUMNS} FROM members WHERE id = $1{}", db.dialect.for_update()))
                .bind(id)
                .fetch_optional(&mut *tx)
                .await?
        }
        RoleTarget::Email(email) => {
            sqlx::query(&format!(
                "SELECT {MEMBER_COLUMNS} FROM members WHERE email_normalized = $1{}",
                db.dialect.for_update()
            ))
            .bind(normalize_email(email))
            .fetch_optional(&mut *tx)
            .await?
        }
    };
    let Some(member) = row.map(|r| Member::from_row(&r)).transpose()? else { return Ok(RoleChange::NotFound) };
    if member.role == role {
        return Ok(RoleChange::Done(member));
    }
    if member.role == Role::Admin {
        // Admins who can act: not suspended (or whose suspension has ended).
        let others: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM members WHERE role = 'admin' AND id <> $1 \
             AND (suspended_at IS NULL OR (suspended_until IS NOT NULL AND suspended_until <= $2))",
        )
        .bind(member.id)
        .bind(now)
        .fetch_one(&mut *tx)
        .await?;
        if others == 0 {
            return Ok(RoleChange::LastAdmin);
        }
    }
    let row =
        sqlx::query(&format!("UPDATE members SET role = $1, updated_at = $2 WHERE id = $3 RETURNING {MEMBER_COLUMNS}"))
            .bind(role.as_str())
            .bind(now)
            .bind(member.id)
            .fetch_one(&mut *tx)
            .await?;
    crate::moderation::audit::append(
        &mut tx,
        crate::moderation::audit::Entry {
            actor_id,
            action: crate::moderation::audit::SET_ROLE,
            target_type: "member",
            target_id: member.id,
            reason,
            before: Some(serde_json::json!({ "role": member.role.as_str() })),
            after: Some(serde_json::json!({ "role": role.as_str() })),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(RoleChange::Done(Member::from_row(&row)?))
}

pub fn normalize_email(email: &str) -> String {
    email.trim().to_lowercase()
}

// ---------------------------------------------------------------------------------------
// Validation: each check returns the user error to show beside its field.

pub fn check_email(field: &str, email: &str) -> Option<UserError> {
    let email = email.trim();
    if email.is_empty() {
        return Some(UserError::new(field, UserErrorCode::Blank, "Enter your email address."));
    }
    if email.chars().count() > EMAIL_MAX {
        return Some(UserError::new(
            field,
            UserErrorCode::TooLong,
            format!("Email address must be {EMAIL_MAX} characters or fewer."),
        ));
    }
    let invalid = |message: &str| Some(UserError::new(field, UserErrorCode::Invalid, message));
    let Some((local, domain)) = email.rsplit_once('@') else {
        return invalid("Enter an email address in the correct format, like name@example.org.");
    };
    if local.len() > EMAIL_LOCAL_MAX {
        return Some(UserError::new(
            field,
            UserErrorCode::TooLong,
            format!("The part of the email address before the @ must be {EMAIL_LOCAL_MAX} characters or fewer."),
        ));
    }
    if !is_dot_atom(local) || !is_host_name(domain) {
        return invalid("Enter an email address in the correct format, like name@example.org.");
    }
    None
}

/// The longest part before the `@` (RFC 5321 §4.5.3.1.1), in octets.
pub const EMAIL_LOCAL_MAX: usize = 64;
/// The longest domain name (RFC 1035, without the final dot), in octets.
pub const DOMAIN_MAX: usize = 253;

/// An RFC 5322 dot-atom: runs of `atext` joined by single dots. Quoted local parts
/// (`"a b"@example.org`) are valid mail addresses, but no one needs one for a forum and
/// they are where header injection hides, so they are not accepted.
fn is_dot_atom(local: &str) -> bool {
    let atext = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-/=?^_`{|}~".contains(c);
    !local.is_empty() && local.split('.').all(|atom| !atom.is_empty() && atom.chars().all(atext))
}

/// A host name of at least two letter-digit-hyphen labels (1 to 63 characters, no
/// hyphen at either end), at most 253 characters, under an alphabetic top-level domain
/// of two letters or more, or a punycode one (`xn--…`). Addresses at IP literals or
/// at single-label hosts cannot reach anyone outside one network.
fn is_host_name(domain: &str) -> bool {
    let labels: Vec<&str> = domain.split('.').collect();
    let ldh = |label: &&str| {
        (1..=63).contains(&label.len())
            && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            && !label.starts_with('-')
            && !label.ends_with('-')
    };
    let Some(tld) = labels.last() else { return false };
    let tld_ok = (tld.len() >= 2 && tld.chars().all(|c| c.is_ascii_alphabetic()))
        || (tld.len() > 4 && tld[..4].eq_ignore_ascii_case("xn--"));
    domain.len() <= DOMAIN_MAX && labels.len() >= 2 && labels.iter().all(ldh) && tld_ok
}

/// Checks multi-line text (a bio, a summary, a note): the text policy, present when
/// `required`, at most `max` characters. Newlines are kept; names and titles use
/// [`text::check_line`] instead.
pub fn check_text(field: &str, label: &str, value: &str, max: usize, required: bool) -> Option<UserError> {
    if let Some(error) = text::check(field, label, value) {
        return Some(error);
    }
    let value = value.trim();
    if required && value.is_empty() {
        return Some(UserError::new(field, UserErrorCode::Blank, format!("Enter your {}.", label.to_lowercase())));
    }
    if value.chars().count() > max {
        return Some(UserError::new(
            field,
            UserErrorCode::TooLong,
            format!("{label} must be {max} characters or fewer."),
        ));
    }
    None
}

/// A display name goes into pages, mail headers and calendars: one line, something
/// visible, and no direction changes that could make it read as someone else's.
pub fn check_display_name(field: &str, name: &str) -> Option<UserError> {
    text::check_name(field, "Display name", name, DISPLAY_NAME_MAX, true)
}

pub fn check_time_zone(field: &str, zone: &str) -> Option<UserError> {
    let zone = zone.trim();
    if zone.is_empty() || zone.len() > TIME_ZONE_MAX || jiff::tz::TimeZone::get(zone).is_err() {
        return Some(UserError::new(
            field,
            UserErrorCode::Invalid,
            "Choose a time zone from the list, such as Europe/London.",
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails() {
        for good in [
            "ada@example.org",
            "  Ada@Example.ORG ",
            "ada.lovelace+kettle@council.gov.uk",
            "o'brien@example.ie",
            "x_y-z@sub-domain.example.co.uk",
            "a@xn--bcher-kva.example",
            "a@example.xn--p1ai",
            "1@2.example",
        ] {
            assert!(check_email("email", good).is_none(), "{good:?} refused");
        }
        for bad in [
            "",
            "ada",
            "ada@",
            "@example.org",
            "ada@example",
            "a b@example.org",
            "a@b@example.org",
            "ada@.org",
            "<script>@x.y",
            "a@b..c",
            "a@-b.org",
            "a@b-.org",
            "a@b.c",
            "a@b.c0m",
            "a@b.org.",
            ".ada@example.org",
            "ada.@example.org",
            "ada..lovelace@example.org",
            "\"ada\"@example.org",
            "ada(comment)@example.org",
            "ada@[127.0.0.1]",
            "ada@example.org\r\nBcc: x@example.org",
            "adä@example.org",
            "ada@exämple.org",
            "ada@under_score.org",
        ] {
            assert!(check_email("email", bad).is_some(), "{bad:?} accepted");
        }
        let long_local = format!("{}@example.org", "a".repeat(65));
        assert_eq!(check_email("email", &long_local).unwrap().code, UserErrorCode::TooLong);
        assert!(check_email("email", &format!("{}@example.org", "a".repeat(64))).is_none());
        let long_label = format!("a@{}.org", "b".repeat(64));
        assert!(check_email("email", &long_label).is_some());
        let long_domain = format!("a@{}org", "abcdefghi.".repeat(26));
        assert!(long_domain.len() - 2 > DOMAIN_MAX);
        assert!(check_email("email", &long_domain).is_some());
        assert_eq!(normalize_email("  Ada@Example.ORG "), "ada@example.org");
    }

    #[test]
    fn multi_line_text_keeps_newlines_and_refuses_controls() {
        assert!(check_text("bio", "Bio", "Line one\nLine two\r\n\tindented", 500, false).is_none());
        assert!(check_text("bio", "Bio", "", 500, false).is_none());
        assert_eq!(check_text("bio", "Bio", "  ", 500, true).unwrap().code, UserErrorCode::Blank);
        assert_eq!(check_text("bio", "Bio", &"x".repeat(501), 500, false).unwrap().code, UserErrorCode::TooLong);
        for refused in ["a\u{0}b", "a\u{b}b", "a\u{1b}[31mb", "a\u{85}b", "a\u{fffe}b"] {
            let error = check_text("bio", "Bio", refused, 500, false).unwrap_or_else(|| panic!("{refused:?}"));
            assert_eq!(error.code, UserErrorCode::Invalid);
        }
    }

    #[test]
    fn time_zones() {
        assert!(check_time_zone("timeZone", "Europe/London").is_none());
        assert!(check_time_zone("timeZone", "America/Argentina/Buenos_Aires").is_none());
        assert!(check_time_zone("timeZone", "Mars/Olympus_Mons").is_some());
        assert!(check_time_zone("timeZone", "").is_some());
    }

    #[test]
    fn display_names() {
        assert!(check_display_name("displayName", "Ada Lovelace").is_none());
        assert!(check_display_name("displayName", "   ").is_some());
        assert!(check_display_name("displayName", &"x".repeat(81)).is_some());
        assert!(check_display_name("displayName", "Ada\u{0007}").is_some());
        assert!(check_display_name("displayName", "Ada\nLovelace").is_some());
        // A bare carriage return would let a name add mail headers.
        assert!(check_display_name("displayName", "Ada\rBcc: everyone@example.org").is_some());
        assert!(check_display_name("displayName", "\u{200b}\u{3164}").is_some());
        assert!(check_display_name("displayName", "Ada\u{202e}ecalevoL").is_some());
        assert!(check_display_name("displayName", "  Ada Lovelace  ").is_none());
    }
}
