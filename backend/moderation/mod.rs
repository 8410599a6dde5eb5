//! Keeping the space trustworthy: members flag things, moderators review them in a queue
//! and decide once (hide, restore, edit, dismiss, suspend), and every moderator and admin
//! action leaves a row in the append-only [`audit`] log.
//!
//! - [`audit`] — the audit log: appended in the transaction of the action it records.
//! - [`settings`] — site settings admins change (such as the auto-hide threshold).
//! - [`suspensions`] — suspending a member for a period or until lifted.
//! - [`flags`] — a member flags a thing once; weighted flags open a review and, at the
//!   threshold, hide the item until a moderator decides.
//! - [`reviews`] — the queue, deciding a review once, and hiding and restoring items.
//! - [`graphql`] — `flag`, `moderationQueue`, `review`, `decideReview`, `hideContent`,
//!   `restoreContent`, and the rule for who sees a hidden item.
//! - [`graphql::admin`] — the API for suspensions, roles, the audit log and site settings.

pub mod audit;
pub mod flags;
pub mod graphql;
pub mod reviews;
pub mod settings;
pub mod suspensions;
