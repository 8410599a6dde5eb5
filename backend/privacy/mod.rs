//! What a data protection officer asks for: each member's right of access ([`export`])
//! and right to erasure ([`erasure`]), and pruning what Kettle no longer needs
//! ([`retention`]).
//!
//! A guided tour:
//! - [`export`] — a member asks for a copy of their data (`requestDataExport`); it is
//!   built off the request into one JSON document with a section for every table that
//!   refers to them, and downloaded through a link that needs their session too and
//!   expires after 7 days.
//! - [`erasure`] — deleting an account (`deleteAccount`, confirmed with the password or a
//!   fresh provider sign-in) or an admin erasing one on request (`eraseMember`, audited):
//!   one transaction removes what is personal and leaves a tombstone, "a former member",
//!   as the author of what others rely on.
//! - [`retention`] — the schedule of how long everything is kept, in one place, and the
//!   hourly pruning that keeps to it; the privacy page (`/privacy`) shows the same table.
//! - [`graphql`] — the mutations above and `Member.dataExports`.

pub mod erasure;
pub mod export;
pub mod graphql;
pub mod retention;
