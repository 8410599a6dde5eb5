//! Relay conventions: opaque global ids, and connections paged by keyset cursors.
//!
//! A list resolver turns its `first/after/last/before` arguments into a [`Page`], asks its
//! SQL for [`Page::keyset`] (one row more than the page, to know whether
//! another page follows), and hands the rows back to [`Page::connection`]. Cursors are the
//! row's sort key, so a page never shifts when rows are added before it, and no query ever
//! uses `OFFSET`.

use async_graphql::{
    connection::{Connection, Edge},
    OutputType, ID,
};
use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use serde::{de::DeserializeOwned, Serialize};

use crate::{
    db::Keyset,
    error::{AppError, AppResult},
};

pub const PAGE_SIZE_DEFAULT: usize = 20;
pub const PAGE_SIZE_MAX: usize = 100;

/// The global id of the `id`th object of GraphQL type `type_name`.
pub fn global_id(type_name: &str, id: i64) -> ID {
    ID(URL_SAFE_NO_PAD.encode(format!("{type_name}:{id}")))
}

/// Splits a global id into its type name and database id.
pub fn parse_global_id(id: &str) -> AppResult<(String, i64)> {
    let invalid = || AppError::bad_input(format!("{:?} is not a valid id.", truncate(id, 40)));
    let bytes = URL_SAFE_NO_PAD.decode(id.as_bytes()).map_err(|_| invalid())?;
    let text = String::from_utf8(bytes).map_err(|_| invalid())?;
    let (type_name, number) = text.split_once(':').ok_or_else(invalid)?;
    let number: i64 = number.parse().map_err(|_| invalid())?;
    Ok((type_name.to_string(), number))
}

/// The database id inside a global id that must be of type `type_name`.
pub fn parse_global_id_of(type_name: &str, id: &str) -> AppResult<i64> {
    match parse_global_id(id)? {
        (t, number) if t == type_name => Ok(number),
        _ => Err(AppError::bad_input(format!("{:?} is not the id of a {type_name}.", truncate(id, 40)))),
    }
}

fn truncate(text: &str, max: usize) -> String {
    text.chars().take(max).collect()
}

/// One requested page of a list ordered by a key `K`.
#[derive(Debug, Clone)]
pub struct Page<K> {
    after: Option<K>,
    before: Option<K>,
    limit: usize,
    backward: bool,
}

impl<K: Serialize + DeserializeOwned + Clone> Page<K> {
    pub fn new(
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> AppResult<Page<K>> {
        let size = |name: &str, n: i32| -> AppResult<usize> {
            if n < 0 || n as usize > PAGE_SIZE_MAX {
                return Err(AppError::bad_input(format!("{name} must be between 0 and {PAGE_SIZE_MAX}.")));
            }
            Ok(n as usize)
        };
        let (limit, backward) = match (first, last) {
            (Some(_), Some(_)) => return Err(AppError::bad_input("Pass first or last, not both.")),
            (Some(n), None) => (size("first", n)?, false),
            (None, Some(n)) => (size("last", n)?, true),
            (None, None) => (PAGE_SIZE_DEFAULT, before.is_some() && after.is_none()),
        };
        Ok(Page {
            after: after.map(|c| decode_cursor("after", &c)).transpose()?,
            before: before.map(|c| decode_cursor("before", &c)).transpose()?,
            limit,
            backward,
        })
    }

    pub fn keyset(&self) -> Keyset<K> {
        Keyset {
            after: self.after.clone(),
            before: self.before.clone(),
            forward: !self.backward,
            fetch: self.limit as i64 + 1,
        }
    }

    /// Builds the connection from rows fetched as [`Page::keyset`] asked.
    pub fn connection<T: OutputType>(&self, mut rows: Vec<T>, key: impl Fn(&T) -> K) -> Connection<String, T> {
        let has_more = rows.len() > self.limit;
        rows.truncate(self.limit);
        if self.backward {
            rows.reverse();
        }
        let (has_previous, has_next) =
            if self.backward { (has_more, self.before.is_some()) } else { (self.after.is_some(), has_more) };
        let mut connection = Connection::new(has_previous, has_next);
        connection.edges.extend(rows.into_iter().map(|row| Edge::new(encode_cursor(&key(&row)), row)));
        connection
    }
}

fn encode_cursor<K: Serialize>(key: &K) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(key).unwrap_or_default())
}

fn decode_cursor<K: DeserializeOwned>(name: &str, cursor: &str) -> AppResult<K> {
    URL_SAFE_NO_PAD
        .decode(cursor.as_bytes())
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .ok_or_else(|| AppError::bad_input(format!("{name} is not a cursor from this list.")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn global_ids_round_trip_and_reject_garbage() {
        let id = global_id("Member", 42);
        assert_eq!(parse_global_id(&id).unwrap(), ("Member".to_string(), 42));
        assert_eq!(parse_global_id_of("Member", &id).unwrap(), 42);
        assert!(parse_global_id_of("AccessToken", &id).is_err());
        for bad in ["", "!!!", "TWVtYmVy", "TWVtYmVyOng"] {
            assert!(parse_global_id(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn pages_are_capped_and_exclusive() {
        assert!(Page::<i64>::new(Some(101), None, None, None).is_err());
        assert!(Page::<i64>::new(Some(-1), None, None, None).is_err());
        assert!(Page::<i64>::new(Some(5), None, Some(5), None).is_err());
        assert!(Page::<i64>::new(Some(5), Some("nope".into()), None, None).is_err());
        let page = Page::<i64>::new(Some(2), None, None, None).unwrap();
        let connection = page.connection(vec![9i64, 8, 7], |n| *n);
        assert_eq!(connection.edges.len(), 2);
        assert!(connection.has_next_page && !connection.has_previous_page);
        let next = Page::<i64>::new(Some(2), Some(connection.edges[1].cursor.clone()), None, None).unwrap();
        assert_eq!(next.keyset().after, Some(8));
    }
}
