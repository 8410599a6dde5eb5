//! Mail: everything Kettle sends, from the transaction that causes it to the wire.
//!
//! The path of a message, end to end:
//! 1. Whatever causes it (a registration, a reset request, a notification that stayed
//!    unread, a digest falling due) renders it from `web/templates/mail/` ([`render`])
//!    and queues it ([`queue::enqueue`]) in the same transaction as its cause, under an
//!    idempotency key: a cause done twice queues one message.
//! 2. The sender ([`sender`]), on every instance, claims due messages for a while, sends
//!    them through the transport ([`transport`]: `.eml` files under `<data dir>/mail/`, or
//!    SMTP) and records the outcome. A temporary failure is retried with backoff; a
//!    permanent one marks the address as bouncing. A sender that dies after sending but
//!    before recording leaves its claim to expire, so the message goes out once more with
//!    the same `Message-ID`: at most one duplicate, never a loss.
//!
//! What is queued: account mail ([`crate::accounts::recovery`]: verification, password
//! reset, "someone tried to register with your address"), mail about notifications
//! ([`notification_mail`]: after a short delay, only if still unread, only for kinds
//! the member wants by mail), and digests ([`digest`], at each member's hour in their
//! own time zone, exactly once per period). Everything but security mail carries a
//! one-click unsubscribe link ([`unsubscribe`]).

pub mod digest;
pub mod notification_mail;
pub mod queue;
pub mod render;
pub mod sender;
pub mod transport;
pub mod unsubscribe;

use std::{sync::Arc, time::Duration};

use lettre::message::Mailbox;
use rand::RngCore;
use sqlx::Row;

use crate::{config::Config, db, db::Db};

pub use queue::{enqueue, Outgoing};
pub use unsubscribe::List;

/// What every part of mail needs to know: where links point, who sends, how to sign
/// unsubscribe links, and how to reach the sender.
pub struct Mailer {
    /// Links in mail are absolute, to this (`KETTLE_PUBLIC_URL`).
    pub public_url: url::Url,
    pub from: Mailbox,
    /// How long mail about a notification waits for the member to read it on the site.
    pub delay: Duration,
    pub transport: transport::Transport,
    /// Signs unsubscribe links; shared by every instance through the database.
    signing_key: Vec<u8>,
    /// Wakes this instance's sender when something was queued.
    wake: tokio::sync::Notify,
}

impl Mailer {
    pub async fn new(config: &Config, db: &Db) -> anyhow::Result<Arc<Mailer>> {
        let from: Mailbox = config
            .mail_from
            .parse()
            .map_err(|e| anyhow::anyhow!("KETTLE_MAIL_FROM {:?} is not a usable address: {e}", config.mail_from))?;
        Ok(Arc::new(Mailer {
            public_url: config.public_url.clone(),
            from,
            delay: config.mail_delay,
            transport: transport::Transport::from_config(config)?,
            signing_key: site_secret(db, "unsubscribe").await?,
            wake: tokio::sync::Notify::new(),
        }))
    }

    /// An absolute link to a path of the site (`/case-studies/3` → `https://…/case-studies/3`).
    pub fn link(&self, path: &str) -> String {
        let base = self.public_url.as_str().trim_end_matches('/');
        if path.starts_with('/') {
            format!("{base}{path}")
        } else {
            format!("{base}/{path}")
        }
    }

    /// The host that names our messages (`Message-ID: <…@host>`).
    pub fn host(&self) -> &str {
        self.public_url.host_str().unwrap_or("localhost")
    }

    /// Tells this instance's sender that a transaction which queued mail has committed.
    pub fn queued(&self) {
        self.wake.notify_one();
    }

    pub(crate) async fn woken(&self) {
        self.wake.notified().await
    }
}

/// A random secret every instance shares, made by whichever asks first.
async fn site_secret(db: &Db, name: &str) -> anyhow::Result<Vec<u8>> {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    let fresh: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    sqlx::query(
        "INSERT INTO site_secrets (name, secret, created_at) VALUES ($1, $2, $3) ON CONFLICT (name) DO NOTHING",
    )
    .bind(name)
    .bind(&fresh)
    .bind(db::now_millis())
    .execute(&db.pool)
    .await?;
    let row = sqlx::query("SELECT secret FROM site_secrets WHERE name = $1").bind(name).fetch_one(&db.pool).await?;
    let secret: String = row.try_get(0)?;
    Ok(secret.into_bytes())
}
