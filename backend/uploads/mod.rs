//! Images members upload to show in what they write.
//!
//! An upload is checked and re-encoded by [`processing`] (content sniffing, size and
//! pixel limits, metadata stripped, resized), then kept in the database: the image's row
//! in `images` and each width's bytes in `image_files`. The database rather than a
//! folder or an object store, because then every instance behind a load balancer serves
//! the same images with nothing more to run or configure, one backup holds everything,
//! and an upload, a deletion or an erasure is one transaction with the quota it counts
//! against. Images are small after re-encoding (a few hundred KB over every width) and
//! served with immutable caching, so each is read from the database rarely.
//!
//! An image's address is `/uploads/<key>.<png|jpg>` (its largest width) or
//! `/uploads/<key>-<width>.<ext>`, from a random key: it never changes, and cannot be
//! guessed. Markdown shows an image only when it points at such an address
//! ([`crate::markdown`] looks the keys up as it renders, for the `alt`, size and
//! `srcset`); any other image stays a link.
//!
//! Each member's images count towards a quota (`KETTLE_IMAGE_QUOTA_MB`), kept as a
//! running total on their row so that the check is one conditional update. Erasing a
//! member deletes their images.

pub mod graphql;
pub mod processing;

use std::collections::HashMap;

use rand::RngCore;
use sqlx::{any::AnyRow, Row};

use crate::{
    db::{self, Db, Keyset, ListOrder},
    error::AppResult,
    markdown,
};
pub use processing::{Format, Processed, Refused};

/// The longest alt text, in characters.
pub const ALT_MAX: usize = 300;
/// The prefix of every image's address.
pub const PATH_PREFIX: &str = "/uploads/";

#[derive(Clone, Debug)]
pub struct Image {
    pub id: i64,
    pub key: String,
    pub owner_id: i64,
    pub alt: String,
    pub format: Format,
    pub width: i64,
    pub height: i64,
    pub bytes: i64,
    pub created_at: i64,
}

const COLUMNS: &str = "id, key, owner_id, alt, format, width, height, bytes, created_at";

impl Image {
    fn from_row(row: &AnyRow) -> sqlx::Result<Image> {
        let format: String = row.try_get("format")?;
        Ok(Image {
            id: row.try_get("id")?,
            key: row.try_get("key")?,
            owner_id: row.try_get("owner_id")?,
            alt: row.try_get("alt")?,
            format: Format::parse(&format)
                .ok_or_else(|| sqlx::Error::Decode(format!("image format {format:?}").into()))?,
            width: row.try_get("width")?,
            height: row.try_get("height")?,
            bytes: row.try_get("bytes")?,
            created_at: row.try_get("created_at")?,
        })
    }

    /// The address of its largest width.
    pub fn path(&self) -> String {
        format!("{PATH_PREFIX}{}.{}", self.key, self.format.extension())
    }

    /// The address of one of its widths.
    pub fn path_at(&self, width: i64) -> String {
        if width == self.width {
            self.path()
        } else {
            format!("{PATH_PREFIX}{}-{width}.{}", self.key, self.format.extension())
        }
    }

    /// The widths it is kept at, smallest first.
    pub fn widths(&self) -> Vec<i64> {
        let mut widths: Vec<i64> =
            processing::WIDTHS.iter().map(|w| i64::from(*w)).filter(|w| *w < self.width).collect();
        widths.push(self.width);
        widths
    }

    /// What to write in Markdown to show it.
    pub fn markdown_snippet(&self) -> String {
        let alt: String = self
            .alt
            .chars()
            .map(|c| if matches!(c, '[' | ']' | '\\') { ' ' } else { c })
            .collect::<String>()
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        format!("![{alt}]({})", self.path())
    }
}

/// Bytes as people read them: "1.5 MB", "300 KB" (megabytes of 1,000,000 bytes, as the
/// quota is set).
pub fn size_for_people(bytes: i64) -> String {
    if bytes >= 1_000_000 {
        format!("{:.1} MB", bytes as f64 / 1_000_000.0)
    } else {
        format!("{} KB", (bytes + 999) / 1000)
    }
}

/// Which image and width an address under [`PATH_PREFIX`] names: `<key>.<ext>` or
/// `<key>-<width>.<ext>`, the key 32 lower-case hex digits.
pub fn parse_address(name: &str) -> Option<(&str, Option<i64>)> {
    let (stem, extension) = name.rsplit_once('.')?;
    if !matches!(extension, "png" | "jpg") {
        return None;
    }
    let (key, width) = match stem.split_once('-') {
        Some((key, width)) if !width.is_empty() && width.len() <= 5 && width.bytes().all(|b| b.is_ascii_digit()) => {
            (key, Some(width.parse().ok()?))
        }
        Some(_) => return None,
        None => (stem, None),
    };
    is_key(key).then_some((key, width))
}

fn is_key(key: &str) -> bool {
    key.len() == 32 && key.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// The key in a Markdown image's address, when it is one of Kettle's uploads (the path
/// alone, or this site's absolute URL is not accepted: only the path).
pub fn key_of_url(url: &str) -> Option<&str> {
    parse_address(url.strip_prefix(PATH_PREFIX)?).map(|(key, _)| key)
}

fn new_key() -> String {
    let mut bytes = [0u8; 16];
    rand::thread_rng().fill_bytes(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A member's usage against their quota, in bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Usage {
    pub used: i64,
    pub limit: i64,
}

/// Keeps a processed upload for `owner_id`, or says how far over the quota it would go.
pub async fn store(
    db: &Db,
    owner_id: i64,
    alt: &str,
    processed: &Processed,
    quota: i64,
) -> AppResult<Result<Image, Usage>> {
    let bytes = processed.bytes() as i64;
    let mut tx = db.begin_write().await?;
    // One conditional update: two uploads at once queue on the member's row, and the
    // second sees the first's bytes.
    let counted =
        sqlx::query("UPDATE members SET image_bytes = image_bytes + $1 WHERE id = $2 AND image_bytes + $1 <= $3")
            .bind(bytes)
            .bind(owner_id)
            .bind(quota)
            .execute(&mut *tx)
            .await?
            .rows_affected();
    if counted == 0 {
        let used: i64 = sqlx::query_scalar("SELECT image_bytes FROM members WHERE id = $1")
            .bind(owner_id)
            .fetch_one(&mut *tx)
            .await?;
        return Ok(Err(Usage { used, limit: quota }));
    }
    let largest = processed.largest();
    let row = sqlx::query(&format!(
        "INSERT INTO images (key, owner_id, alt, format, width, height, bytes, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING {COLUMNS}"
    ))
    .bind(new_key())
    .bind(owner_id)
    .bind(alt)
    .bind(processed.format.name())
    .bind(i64::from(largest.width))
    .bind(i64::from(largest.height))
    .bind(bytes)
    .bind(db::now_millis())
    .fetch_one(&mut *tx)
    .await?;
    let image = Image::from_row(&row)?;
    for file in &processed.files {
        sqlx::query("INSERT INTO image_files (image_id, width, height, data) VALUES ($1, $2, $3, $4)")
            .bind(image.id)
            .bind(i64::from(file.width))
            .bind(i64::from(file.height))
            .bind(file.data.as_slice())
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(Ok(image))
}

/// The bytes of one width of the image under `key` (its largest when `width` is
/// `None`), and how it is encoded.
pub async fn file(db: &Db, key: &str, width: Option<i64>) -> AppResult<Option<(Format, Vec<u8>)>> {
    let row = sqlx::query(
        "SELECT i.format, f.data FROM images i JOIN image_files f ON f.image_id = i.id \
         WHERE i.key = $1 AND f.width = COALESCE($2, i.width)",
    )
    .bind(key)
    .bind(width)
    .fetch_optional(&db.pool)
    .await?;
    let Some(row) = row else { return Ok(None) };
    let format: String = row.try_get("format")?;
    let Some(format) = Format::parse(&format) else { return Ok(None) };
    Ok(Some((format, row.try_get("data")?)))
}

/// The images under `keys` (at most as many as [`crate::markdown::IMAGES_MAX`]), by key.
pub async fn by_keys(db: &Db, keys: &[String]) -> AppResult<HashMap<String, Image>> {
    if keys.is_empty() {
        return Ok(HashMap::new());
    }
    let sql = format!("SELECT {COLUMNS} FROM images WHERE key IN ({})", db::placeholders(1, keys.len()));
    let mut query = sqlx::query(&sql);
    for key in keys {
        query = query.bind(key.as_str());
    }
    let rows = query.fetch_all(&db.pool).await?;
    rows.iter()
        .map(|row| Image::from_row(row).map(|image| (image.key.clone(), image)))
        .collect::<sqlx::Result<_>>()
        .map_err(Into::into)
}

pub async fn by_id(db: &Db, id: i64) -> AppResult<Option<Image>> {
    let row =
        sqlx::query(&format!("SELECT {COLUMNS} FROM images WHERE id = $1")).bind(id).fetch_optional(&db.pool).await?;
    Ok(row.as_ref().map(Image::from_row).transpose()?)
}

/// A member's images, newest first.
pub async fn of_member(db: &Db, owner_id: i64, keyset: &Keyset<i64>) -> AppResult<Vec<Image>> {
    let order = keyset.direction(ListOrder::Descending);
    let sql = format!(
        "SELECT {COLUMNS} FROM images WHERE owner_id = $1 AND {} ORDER BY id {order} LIMIT $4",
        keyset.conditions("id", ListOrder::Descending, "$2", "$3")
    );
    let rows = sqlx::query(&sql)
        .bind(owner_id)
        .bind(keyset.after)
        .bind(keyset.before)
        .bind(keyset.fetch)
        .fetch_all(&db.pool)
        .await?;
    Ok(rows.iter().map(Image::from_row).collect::<sqlx::Result<_>>()?)
}

/// The bytes a member's images take.
pub async fn used_by(db: &Db, owner_id: i64) -> AppResult<i64> {
    Ok(sqlx::query_scalar("SELECT image_bytes FROM members WHERE id = $1")
        .bind(owner_id)
        .fetch_optional(&db.pool)
        .await?
        .unwrap_or(0))
}

/// Deletes an image of `owner_id`'s, giving its bytes back to their quota and rendering
/// again the texts that showed it; false when they have no such image.
pub async fn delete(db: &Db, owner_id: i64, id: i64) -> AppResult<bool> {
    let mut tx = db.begin_write().await?;
    let deleted: Option<(String, i64)> =
        sqlx::query_as("DELETE FROM images WHERE id = $1 AND owner_id = $2 RETURNING key, bytes")
            .bind(id)
            .bind(owner_id)
            .fetch_optional(&mut *tx)
            .await?;
    let Some((key, bytes)) = deleted else { return Ok(false) };
    render_again_without(db, &mut tx, &[key]).await?;
    sqlx::query("UPDATE members SET image_bytes = image_bytes - $1 WHERE id = $2")
        .bind(bytes)
        .bind(owner_id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(true)
}

/// Renders again, in `tx`, anyone's text that showed one of the images under `keys`
/// (being deleted in `tx`), so that neither the image nor the alt text its owner gave it
/// stays in it: where the text gave no description of its own, nothing shows. It reads
/// every text showing any upload (deleting is rare; a text's HTML names its images'
/// keys).
pub async fn render_again_without(db: &Db, tx: &mut db::Tx, keys: &[String]) -> AppResult<()> {
    if keys.is_empty() {
        return Ok(());
    }
    for (table, source, html) in markdown::STORED {
        let Some(html) = html else { continue };
        let rows: Vec<(i64, String, String)> = sqlx::query_as(&format!(
            "SELECT id, {source}, {html} FROM {table} WHERE {html} LIKE '%<img src=\"/uploads/%'"
        ))
        .fetch_all(&mut **tx)
        .await?;
        for (id, text, shown) in rows {
            if !keys.iter().any(|key| shown.contains(&format!("/uploads/{key}"))) {
                continue;
            }
            let rendered = markdown::render_linked_without(db, &text, keys).await?;
            sqlx::query(&format!("UPDATE {table} SET {html} = $1 WHERE id = $2"))
                .bind(&rendered.html)
                .bind(id)
                .execute(&mut **tx)
                .await?;
        }
    }
    Ok(())
}

/// Deletes every image of a member's, in their erasure's transaction.
pub async fn delete_all_of(tx: &mut db::Tx, owner_id: i64) -> sqlx::Result<()> {
    // Deleted explicitly rather than by the foreign key's cascade: SQLite checks
    // cascades row by row, and this is one statement either way.
    sqlx::query("DELETE FROM image_files WHERE image_id IN (SELECT id FROM images WHERE owner_id = $1)")
        .bind(owner_id)
        .execute(&mut **tx)
        .await?;
    sqlx::query("DELETE FROM images WHERE owner_id = $1").bind(owner_id).execute(&mut **tx).await?;
    sqlx::query("UPDATE members SET image_bytes = 0 WHERE id = $1").bind(owner_id).execute(&mut **tx).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_name_a_key_and_maybe_a_width() {
        let key = "0123456789abcdef0123456789abcdef";
        assert_eq!(parse_address(&format!("{key}.png")), Some((key, None)));
        assert_eq!(parse_address(&format!("{key}-480.jpg")), Some((key, Some(480))));
        assert_eq!(parse_address(&format!("{key}.gif")), None);
        assert_eq!(parse_address(&format!("{key}-.png")), None);
        assert_eq!(parse_address(&format!("{key}-4x.png")), None);
        assert_eq!(parse_address("0123456789ABCDEF0123456789ABCDEF.png"), None);
        assert_eq!(parse_address("../../etc/passwd.png"), None);
        assert_eq!(key_of_url(&format!("/uploads/{key}-960.jpg")), Some(key));
        assert_eq!(key_of_url(&format!("https://example.org/uploads/{key}.png")), None);
        assert_eq!(new_key().len(), 32);
        assert!(is_key(&new_key()));
    }
}
