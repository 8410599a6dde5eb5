//! Flags: a member reports a case study, artefact, comment, meetup or member, once, with
//! a reason. A flag joins the item's open review (or opens one) and adds its weight; when
//! the review's weight reaches the auto-hide threshold, the item is hidden until a
//! moderator decides (members are never hidden by flags: flagging one only queues them).
//!
//! **Weight** (in hundredths, stored on the flag when it is made, so later history does
//! not rewrite the queue): Discourse's idea that the people whose reports proved right
//! deserve to be heard sooner.
//! - A moderator's or an admin's flag weighs the auto-hide threshold: they could hide the
//!   item themselves, so their flag does at once.
//! - A member with fewer than [`HISTORY_MIN`] decided flags weighs [`BASE_WEIGHT`] (100).
//! - Otherwise `50 + 150 × upheld / decided`, from 50 (every flag dismissed) to 200
//!   (every flag upheld). A flag is upheld when its review ended in hide, edit or
//!   suspend, and not upheld when it ended in dismiss or restore.
//!
//! With the default threshold of 300, three members without a history hide an item; two
//! whose flags were always upheld do too, and six whose flags were always dismissed.

use sqlx::Row;

use super::{
    reviews::{self, Decision, Target, TargetType},
    settings,
};
use crate::{
    accounts::Role,
    db::{self, Db, Tx},
    error::AppResult,
};

/// A plain member's flag.
pub const BASE_WEIGHT: i64 = 100;
/// Decided flags needed before a member's history changes their weight.
pub const HISTORY_MIN: i64 = 3;
/// The longest note, in characters.
pub const NOTE_MAX: usize = 1_000;
/// What an item that enough flags hid says until a moderator reviews it.
pub const AUTO_HIDDEN_REASON: &str = "Hidden after members flagged it, until a moderator reviews it.";

crate::text_enum! {
    #[derive(Clone, Copy, Debug, PartialEq, Eq, async_graphql::Enum)]
    pub enum FlagReason {
        Spam => "spam",
        OffTopic => "off_topic",
        Inappropriate => "inappropriate",
        /// It exposes someone's personal data.
        PersonalData => "personal_data",
        /// Something else, said in the note.
        Other => "other",
    }
}

/// The weight of a flag by a member of `role` whose past flags were `upheld` and
/// `dismissed` times, against the current `threshold` (see the module doc).
pub fn weight_for(role: Role, upheld: i64, dismissed: i64, threshold: i64) -> i64 {
    if matches!(role, Role::Moderator | Role::Admin) {
        return threshold.max(BASE_WEIGHT);
    }
    let decided = upheld + dismissed;
    if decided < HISTORY_MIN {
        return BASE_WEIGHT;
    }
    50 + 150 * upheld / decided
}

/// A member's decided flags: (upheld, not upheld). Served by `flags_once`, which starts
/// with the flagger.
async fn history(tx: &mut Tx, member_id: i64) -> AppResult<(i64, i64)> {
    let rows = sqlx::query(
        "SELECT r.decision, COUNT(*) FROM flags f JOIN reviews r ON r.id = f.review_id \
         WHERE f.flagger_id = $1 AND r.status = 'decided' GROUP BY r.decision",
    )
    .bind(member_id)
    .fetch_all(&mut **tx)
    .await?;
    let (mut upheld, mut dismissed) = (0, 0);
    for row in rows {
        let decision: Option<Decision> = row.try_get(0)?;
        let count: i64 = row.try_get(1)?;
        match decision {
            Some(Decision::Hide | Decision::Edit | Decision::Suspend) => upheld += count,
            Some(Decision::Dismiss | Decision::Restore) => dismissed += count,
            None => {}
        }
    }
    Ok((upheld, dismissed))
}

/// What became of a flag.
#[derive(Debug)]
pub enum Flagged {
    Done {
        flag_id: i64,
        review_id: i64,
        auto_hidden: bool,
    },
    /// This member flagged this thing before; nothing changed.
    Already,
}

/// Flags `target` for `flagger` (whose role is `role`), with a validated reason and note.
/// The caller has checked that the target exists, the flagger may see it and is not its
/// author. One transaction: the review is joined or opened, the flag added, the weight
/// summed and, at the threshold, the item hidden.
pub async fn flag(
    db: &Db,
    flagger: i64,
    role: Role,
    target: Target,
    reason: FlagReason,
    note: &str,
) -> AppResult<Flagged> {
    // Two first flags at once both try to open the review; the partial unique index lets
    // one in and the other joins it. A review decided between our finding it and adding
    // to it is no longer open: the next round opens a new one.
    for _ in 0..3 {
        let mut tx = db.begin_write().await?;
        let now = db::now_millis();
        let threshold = settings::auto_hide_weight(&mut tx).await?;
        let (upheld, dismissed) = history(&mut tx, flagger).await?;
        let weight = weight_for(role, upheld, dismissed, threshold);
        sqlx::query(
            "INSERT INTO reviews (target_type, target_id, weight, flag_count, status, created_at) \
             VALUES ($1, $2, 0, 0, 'open', $3) ON CONFLICT (target_type, target_id) WHERE status = 'open' DO NOTHING",
        )
        .bind(target.kind.as_str())
        .bind(target.id)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        let review_id: Option<i64> =
            sqlx::query_scalar("SELECT id FROM reviews WHERE target_type = $1 AND target_id = $2 AND status = 'open'")
                .bind(target.kind.as_str())
                .bind(target.id)
                .fetch_optional(&mut *tx)
                .await?;
        let Some(review_id) = review_id else {
            tx.rollback().await?;
            continue;
        };
        let flag_id: Option<i64> = sqlx::query_scalar(
            "INSERT INTO flags (review_id, target_type, target_id, flagger_id, reason, note, weight, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
             ON CONFLICT (flagger_id, target_type, target_id) DO NOTHING RETURNING id",
        )
        .bind(review_id)
        .bind(target.kind.as_str())
        .bind(target.id)
        .bind(flagger)
        .bind(reason.as_str())
        .bind(note.trim())
        .bind(weight)
        .bind(now)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(flag_id) = flag_id else {
            tx.rollback().await?;
            return Ok(Flagged::Already);
        };
        // Adding in the UPDATE (not read, then write) keeps concurrent flags' weights; the
        // status condition catches a decision that committed since we found the review.
        let row = sqlx::query(
            "UPDATE reviews SET weight = weight + $1, flag_count = flag_count + 1 WHERE id = $2 AND status = 'open' \
             RETURNING weight, auto_hidden_at",
        )
        .bind(weight)
        .bind(review_id)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else {
            tx.rollback().await?;
            continue;
        };
        let total: i64 = row.try_get(0)?;
        let already_hidden: Option<i64> = row.try_get(1)?;
        let mut auto_hidden = false;
        if total >= threshold && already_hidden.is_none() && target.kind != TargetType::Member {
            // Only an item that is shown now is hidden by flags: one a moderator already
            // hid keeps the moderator's reason.
            if reviews::hide_in(&mut tx, target, AUTO_HIDDEN_REASON, now, true).await? {
                sqlx::query("UPDATE reviews SET auto_hidden_at = $1 WHERE id = $2")
                    .bind(now)
                    .bind(review_id)
                    .execute(&mut *tx)
                    .await?;
                auto_hidden = true;
            }
        }
        tx.commit().await?;
        return Ok(Flagged::Done { flag_id, review_id, auto_hidden });
    }
    Err(anyhow::anyhow!("could not add a flag to an open review after three attempts").into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weights_follow_the_flaggers_history() {
        assert_eq!(weight_for(Role::Member, 0, 0, 300), 100);
        assert_eq!(weight_for(Role::Member, 2, 0, 300), 100, "too little history to count");
        assert_eq!(weight_for(Role::Member, 3, 0, 300), 200);
        assert_eq!(weight_for(Role::Member, 0, 3, 300), 50);
        assert_eq!(weight_for(Role::Member, 2, 2, 300), 125);
        assert_eq!(weight_for(Role::Moderator, 0, 9, 300), 300);
        assert_eq!(weight_for(Role::Admin, 0, 0, 50), 100, "never below a plain flag");
    }
}
