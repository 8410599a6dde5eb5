//! `notificationAdded`: a member's new inbox notifications, live, with no gap and no
//! duplicate across reconnections.
//!
//! A client passes the id of the last notification it saw. The subscription then:
//! 1. joins this instance's hub *first*, so that anything committed from now on is held
//!    for it;
//! 2. replays from the database everything after that id, oldest first, page by page;
//! 3. goes live, skipping what the replay already sent (any live notification whose id
//!    is not above the last one sent).
//!
//! Ids only grow, so "the last id sent" is the whole cursor. When the server ends the
//! stream (live delivery restarted, or the client read too slowly) it says so, and a
//! client that subscribes again from its last id misses nothing.

use std::{collections::VecDeque, sync::Arc};

use async_graphql::{Context, ErrorExtensions, Subscription, ID};
use futures_util::Stream;

use crate::notifications::{inbox, Channel, Notification};
use crate::{
    bus::{CloseReason, ConnectionSignal, Subscription as Live},
    db::Db,
    error::AppResult,
    graphql::{relay, ContextExt},
};

/// Notifications read from the database per replay query.
const REPLAY_PAGE: i64 = 100;

#[derive(Default)]
pub struct NotificationSubscription;

#[Subscription]
impl NotificationSubscription {
    /// Your new inbox notifications as they are written, oldest first. With `after` (the
    /// id of the last notification you saw), everything since is replayed first, then new
    /// ones follow with no gap and no duplicate; without it, only new ones come. When the
    /// server ends the stream or the connection (live delivery restarted, or you read too
    /// slowly), subscribe again with the id of the last one you received. Sign-in required.
    async fn notification_added(
        &self,
        ctx: &Context<'_>,
        after: Option<ID>,
    ) -> async_graphql::Result<impl Stream<Item = async_graphql::Result<Notification>>> {
        let member_id = ctx.require_viewer()?.member.id;
        let after = after.map(|id| relay::parse_global_id_of("Notification", &id)).transpose()?;
        let state = ctx.state();
        // Over a WebSocket, the hub closes the connection itself when it ends this.
        let connection = ctx.data_opt::<Arc<ConnectionSignal>>().cloned();
        let live = state.bus.hub().subscribe(member_id, connection);
        let (last, replaying) = match after {
            Some(id) => (id.max(0), true),
            None => (inbox::latest_id(&state.db, member_id).await?, false),
        };
        let feed = Feed { db: state.db.clone(), member_id, last, replaying, page: VecDeque::new(), live };
        Ok(futures_util::stream::unfold(Some(feed), |feed| async move {
            let mut feed = feed?;
            match feed.next().await {
                Ok(notification) => Some((Ok(notification), Some(feed))),
                Err(err) => Some((Err(err), None)),
            }
        }))
    }
}

struct Feed {
    db: Db,
    member_id: i64,
    /// The id of the last notification sent (or the starting cursor).
    last: i64,
    replaying: bool,
    page: VecDeque<Notification>,
    live: Live,
}

impl Feed {
    async fn next(&mut self) -> async_graphql::Result<Notification> {
        loop {
            if let Some(notification) = self.page.pop_front() {
                self.last = notification.id;
                return Ok(notification);
            }
            if self.replaying {
                // Boxed: an idle subscription then keeps no room for a database query.
                let page = Box::pin(self.replay()).await?;
                self.replaying = page.len() as i64 == REPLAY_PAGE;
                self.page = page.into();
                continue;
            }
            match self.live.recv().await {
                Ok(notification) if notification.id > self.last && notification.channel == Channel::Inbox => {
                    self.last = notification.id;
                    return Ok(Arc::unwrap_or_clone(notification));
                }
                Ok(_) => continue,
                Err(reason) => return Err(ended(reason)),
            }
        }
    }

    async fn replay(&self) -> AppResult<Vec<Notification>> {
        inbox::after(&self.db, self.member_id, self.last, REPLAY_PAGE).await
    }
}

/// The error that ends the stream, with a code a client can act on.
fn ended(reason: CloseReason) -> async_graphql::Error {
    let (message, code) = match reason {
        CloseReason::TooSlow => ("Notifications came faster than they were read.", "TOO_SLOW"),
        CloseReason::Resync => ("Live delivery restarted after an interruption.", "RESYNC"),
        CloseReason::ShuttingDown => ("The server is restarting.", "SHUTTING_DOWN"),
    };
    async_graphql::Error::new(format!("{message} Subscribe again with the id of the last notification you received."))
        .extend_with(|_, ext| ext.set("code", code))
}
