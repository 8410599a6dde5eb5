//! The sender: claims due messages, sends them, records what happened.
//!
//! Every instance runs one. A round ([`send_due`]) claims up to a batch of due messages
//! for a minute (so no other sender takes them), sends each, and records the outcome
//! only if it still holds the claim:
//! - sent: `sent`;
//! - list mail (anything with an unsubscribe link) to a member who is no longer verified,
//!   or whose address bounces: `skipped`, unsent;
//! - a temporary failure: back to `pending`, due again after a backoff of 1, 5 and 15
//!   minutes, 1, 3, then 6 hours; after [`MAX_ATTEMPTS`] attempts, `failed`;
//! - a permanent failure (the address cannot receive mail): `failed`, and the address is
//!   marked as bouncing.
//!
//! Delivery is at least once: a sender that dies after the server took a message but
//! before recording it leaves its claim to expire, and then the message goes once more,
//! with the same `Message-ID` (so receivers can drop it). That is at most one duplicate
//! per crash, and never a lost message.

use std::{
    sync::Arc,
    time::{Duration, Instant, SystemTime},
};

use super::{
    queue::{self, Claimed, CLAIM_MILLIS, MAX_ATTEMPTS},
    transport::{self, SendError},
    Mailer,
};
use crate::{
    db::{self, Db},
    error::AppResult,
};

/// How long after a round starts it may begin sending another message. With each send
/// bounded by [`transport::SMTP_TIMEOUT`], the last one ends before the round's claims
/// expire; what was not begun is released for the next round.
const START_SENDING_FOR: Duration = Duration::from_millis(CLAIM_MILLIS as u64 / 2 - 5_000);

/// How long the sender sleeps when nothing wakes it.
const POLL: Duration = Duration::from_secs(2);

/// When a message that failed temporarily on its `attempt`th try goes again.
pub fn backoff_millis(attempt: i64) -> i64 {
    const MINUTE: i64 = 60_000;
    match attempt {
        ..=1 => MINUTE,
        2 => 5 * MINUTE,
        3 => 15 * MINUTE,
        4 => 60 * MINUTE,
        5 => 3 * 60 * MINUTE,
        _ => 6 * 60 * MINUTE,
    }
}

/// One round: claims what is due at `now` and sends it. Returns how many messages it
/// claimed (a full batch means more may be waiting).
pub async fn send_due(db: &Db, mailer: &Mailer, now: i64) -> AppResult<usize> {
    let started = Instant::now();
    let claimed = queue::claim(db, now).await?;
    let count = claimed.len();
    let mut claimed = claimed.into_iter();
    for message in claimed.by_ref() {
        deliver(db, mailer, &message, now).await?;
        if started.elapsed() > START_SENDING_FOR {
            break;
        }
    }
    for message in claimed {
        queue::release(db, &message).await?;
    }
    Ok(count)
}

async fn deliver(db: &Db, mailer: &Mailer, message: &Claimed, now: i64) -> AppResult<()> {
    let id = message.id;
    let template = message.template.as_str();
    // List mail goes only to members who still take mail: the address may have bounced,
    // or been changed and not verified yet, since it was queued.
    if message.mail.unsubscribe_url.is_some() && !queue::recipient_takes_mail(db, message.member_id).await? {
        let recorded = queue::mark_done(db, message, "skipped", Some("the address is unverified or bouncing")).await?;
        log_lost_claim(recorded, id);
        tracing::info!(mail = id, template, "skipped mail to an unverified or bouncing address");
        return Ok(());
    }
    let date = SystemTime::UNIX_EPOCH + Duration::from_millis(now.max(0) as u64);
    let built = match transport::build(&mailer.from, &message.mail, date) {
        Ok(built) => built,
        Err(error) => {
            // Nothing about it will change by waiting, and it says nothing about the address.
            tracing::error!(mail = id, template, error, "could not build a message; giving it up");
            log_lost_claim(queue::mark_done(db, message, "failed", Some(&transport::short(&error))).await?, id);
            return Ok(());
        }
    };
    match mailer.transport.send(&message.file_name(), &built).await {
        Ok(()) => {
            log_lost_claim(queue::mark_sent(db, message, now).await?, id);
            tracing::info!(mail = id, template, attempt = message.attempts, "sent mail");
        }
        Err(SendError::Temporary(error)) if message.attempts >= MAX_ATTEMPTS => {
            tracing::error!(mail = id, template, attempts = message.attempts, error, "giving up on mail after retries");
            log_lost_claim(queue::mark_done(db, message, "failed", Some(&error)).await?, id);
        }
        Err(SendError::Temporary(error)) => {
            let retry_at = now + backoff_millis(message.attempts);
            tracing::warn!(mail = id, template, attempt = message.attempts, error, "mail not sent; will retry");
            log_lost_claim(queue::mark_retry(db, message, retry_at, &error).await?, id);
        }
        Err(SendError::Permanent(error)) => {
            tracing::warn!(mail = id, template, error, "mail refused for good; marking the address as bouncing");
            log_lost_claim(queue::mark_bounced(db, message, now, &error).await?, id);
        }
    }
    Ok(())
}

/// Another sender took the message over after our claim ran out (we were too slow, or
/// paused): its outcome is theirs to record, and the message may go twice.
fn log_lost_claim(recorded: bool, id: i64) {
    if !recorded {
        tracing::warn!(mail = id, "lost the claim on a message before recording it; another sender has it");
    }
}

/// Runs on every instance until the server stops: a round whenever something was queued
/// on this instance, and every two seconds for what other instances queued or what
/// became due.
pub async fn run(db: Db, mailer: Arc<Mailer>) {
    loop {
        let full = match send_due(&db, &mailer, db::now_millis()).await {
            Ok(count) => count as i64 >= queue::BATCH,
            Err(err) => {
                tracing::warn!(error = ?err, "the mail sender's round failed");
                false
            }
        };
        if !full {
            tokio::select! {
                _ = mailer.woken() => {}
                _ = tokio::time::sleep(POLL) => {}
            }
        }
    }
}
