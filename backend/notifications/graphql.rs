//! The GraphQL face of follows and notifications: the `Notification` and `Follow` objects,
//! the viewer's inbox fields (resolved for `Member` in `accounts::graphql`, which calls
//! the functions here), and the mutations.

use std::collections::HashMap;

use async_graphql::{
    connection::Connection,
    dataloader::{DataLoader, HashMapCache, Loader},
    Context, InputObject, Object, SimpleObject, ID,
};

use super::{
    follows::{self, FollowLevel, Target},
    inbox::{self, DigestFrequency, MailChoice, Marking, Settings, SettingsChange},
    Notification, NotificationKind,
};
use crate::{
    accounts::Member,
    db::{self, Db},
    error::{AppError, AppResult},
    graphql::{
        relay::{self, Page},
        ContextExt, DateTime, Node, UserError, UserErrorCode,
    },
};

#[Object]
impl Notification {
    /// Also the cursor to pass to `notificationAdded(after:)`.
    pub async fn id(&self) -> ID {
        relay::global_id("Notification", self.id)
    }

    async fn kind(&self) -> NotificationKind {
        self.kind
    }

    async fn created_at(&self) -> DateTime {
        DateTime(self.created_at)
    }

    async fn read_at(&self) -> Option<DateTime> {
        self.read_at.map(DateTime)
    }

    /// Who did it; null for what nobody did (a reminder) or an account since deleted.
    async fn actor(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Member>> {
        Ok(match self.actor_id {
            Some(id) => ctx.loaders().members.load_one(id).await?,
            None => None,
        })
    }

    /// What it is about; null when the viewer may no longer see it.
    async fn subject(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Node>> {
        Ok(crate::graphql::load_node(ctx, &relay::global_id(&self.subject_type, self.subject_id)).await?)
    }

    /// One line of plain text; for a group, how many and about what.
    async fn summary(&self) -> String {
        self.display_summary()
    }

    /// Where on the site to read it.
    async fn path(&self) -> &str {
        &self.path
    }

    /// How many notifications this entry stands for (1 when it stands alone).
    async fn group_size(&self) -> i64 {
        self.group_size
    }
}

/// Something the viewer follows, and how closely.
pub struct Follow(follows::Follow);

#[Object]
impl Follow {
    async fn target(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Node>> {
        let target = self.0.target;
        Ok(crate::graphql::load_node(ctx, &relay::global_id(target.type_name, target.id)).await?)
    }

    async fn level(&self) -> FollowLevel {
        self.0.level
    }

    async fn created_at(&self) -> DateTime {
        DateTime(self.0.created_at)
    }
}

#[derive(SimpleObject)]
pub struct NotificationSettings {
    /// Kinds of notification switched off.
    disabled_kinds: Vec<NotificationKind>,
    /// Whether writing or commenting on something watches it.
    auto_watch: bool,
    /// How each kind reaches the viewer beyond the site: one entry per kind, with the
    /// choice in force (theirs, or the default).
    mail_choices: Vec<KindMailChoice>,
    digest_frequency: DigestFrequency,
    /// The day of a weekly digest, Monday = 1 to Sunday = 7.
    digest_weekday: i64,
    /// The hour (0 to 23) the digest goes out, in the viewer's time zone.
    digest_hour: i64,
    /// When the next digest is due; null when none will go (never, or an address that is
    /// not verified or is bouncing).
    next_digest_at: Option<DateTime>,
}

/// How one kind of notification reaches the member beyond the site.
#[derive(SimpleObject)]
pub struct KindMailChoice {
    kind: NotificationKind,
    choice: MailChoice,
}

impl From<Settings> for NotificationSettings {
    fn from(settings: Settings) -> Self {
        NotificationSettings {
            disabled_kinds: settings.disabled_kinds,
            auto_watch: settings.auto_watch,
            mail_choices: settings
                .mail_choices
                .into_iter()
                .map(|(kind, choice)| KindMailChoice { kind, choice })
                .collect(),
            digest_frequency: settings.digest_frequency,
            digest_weekday: settings.digest_weekday,
            digest_hour: settings.digest_hour,
            next_digest_at: settings.next_digest_at.map(DateTime),
        }
    }
}

/// The viewer, when `member` is the viewer; refused otherwise.
fn own(ctx: &Context<'_>, member: &Member) -> AppResult<i64> {
    let viewer = ctx.require_viewer()?;
    if viewer.member.id != member.id {
        return Err(AppError::Forbidden);
    }
    Ok(member.id)
}

// Fields of `Member`, resolved only for the viewer themself.

pub async fn notifications(
    ctx: &Context<'_>,
    member: &Member,
    page: Page<i64>,
    unread_only: bool,
) -> AppResult<Connection<String, Notification>> {
    let member_id = own(ctx, member)?;
    let rows = inbox::list(&ctx.state().db, member_id, unread_only, &page.keyset()).await?;
    Ok(page.connection(rows, |n| n.id))
}

pub async fn unread_count(ctx: &Context<'_>, member: &Member) -> AppResult<i64> {
    let member_id = own(ctx, member)?;
    inbox::unread_count(&ctx.state().db, member_id).await
}

pub async fn latest_notification_id(ctx: &Context<'_>, member: &Member) -> AppResult<Option<ID>> {
    let member_id = own(ctx, member)?;
    let latest = inbox::latest_id(&ctx.state().db, member_id).await?;
    Ok((latest > 0).then(|| relay::global_id("Notification", latest)))
}

pub async fn new_for_you(
    ctx: &Context<'_>,
    member: &Member,
    page: Page<i64>,
) -> AppResult<Connection<String, Notification>> {
    let member_id = own(ctx, member)?;
    let db = &ctx.state().db;
    let since = inbox::followed_seen_at(db, member_id).await?.unwrap_or(0);
    let rows = inbox::new_for_you(db, member_id, since, &page.keyset()).await?;
    Ok(page.connection(rows, |n| n.id))
}

pub async fn followed_seen_at(ctx: &Context<'_>, member: &Member) -> AppResult<Option<DateTime>> {
    let member_id = own(ctx, member)?;
    Ok(inbox::followed_seen_at(&ctx.state().db, member_id).await?.map(DateTime))
}

pub async fn follows(ctx: &Context<'_>, member: &Member, page: Page<i64>) -> AppResult<Connection<String, Follow>> {
    let member_id = own(ctx, member)?;
    let rows = follows::list(&ctx.state().db, member_id, &page.keyset()).await?;
    Ok(page.connection(rows.into_iter().map(Follow).collect(), |f| f.0.id))
}

pub async fn settings(ctx: &Context<'_>, member: &Member) -> AppResult<NotificationSettings> {
    let member_id = own(ctx, member)?;
    Ok(inbox::settings(&ctx.state().db, member_id).await?.into())
}

/// The viewer's level on a followable thing: what `viewerFollowLevel` answers on each
/// followable type. Batched per request, like every other related value.
pub async fn viewer_follow_level(
    ctx: &Context<'_>,
    type_name: &'static str,
    id: i64,
) -> AppResult<Option<FollowLevel>> {
    if ctx.viewer().is_none() {
        return Ok(None);
    }
    let Some(target) = Target::new(type_name, id) else { return Ok(None) };
    ctx.loaders().follow_levels.load_one(target).await
}

/// Loads the viewer's follow levels by (type name, id).
pub struct FollowLevels {
    db: Db,
    member_id: Option<i64>,
}

impl FollowLevels {
    pub fn loader(db: &Db, member_id: Option<i64>) -> DataLoader<FollowLevels, HashMapCache> {
        DataLoader::with_cache(FollowLevels { db: db.clone(), member_id }, tokio::spawn, HashMapCache::default())
            .max_batch_size(500)
    }
}

impl Loader<Target> for FollowLevels {
    type Value = FollowLevel;
    type Error = AppError;

    async fn load(&self, keys: &[Target]) -> AppResult<HashMap<Target, FollowLevel>> {
        let Some(member_id) = self.member_id else { return Ok(HashMap::new()) };
        let mut by_type: HashMap<&'static str, Vec<i64>> = HashMap::new();
        for target in keys {
            by_type.entry(target.type_name).or_default().push(target.id);
        }
        let mut levels = HashMap::new();
        for (type_name, ids) in by_type {
            for (id, level) in follows::levels(&self.db, member_id, type_name, &ids).await? {
                levels.insert(Target { type_name, id }, level);
            }
        }
        Ok(levels)
    }
}

#[derive(InputObject)]
pub struct FollowInput {
    /// A topic, organisation, meetup group, member, case study or artefact.
    target_id: ID,
    level: FollowLevel,
}

#[derive(SimpleObject)]
pub struct FollowPayload {
    follow: Option<Follow>,
    user_errors: Vec<UserError>,
}

#[derive(InputObject)]
pub struct UnfollowInput {
    target_id: ID,
}

#[derive(SimpleObject)]
pub struct UnfollowPayload {
    /// The id no longer followed; null when it was not followed.
    target_id: Option<ID>,
    user_errors: Vec<UserError>,
}

#[derive(InputObject)]
pub struct MarkNotificationsReadInput {
    /// Entries to mark read, each with the notifications it stands for (at most 100).
    ids: Option<Vec<ID>>,
    /// Marks read everything up to and including this notification.
    up_to: Option<ID>,
}

#[derive(SimpleObject)]
pub struct MarkNotificationsReadPayload {
    unread_count: i64,
    user_errors: Vec<UserError>,
}

#[derive(InputObject)]
pub struct UpdateNotificationSettingsInput {
    /// Replaces the kinds switched off; unchanged when absent.
    disabled_kinds: Option<Vec<NotificationKind>>,
    auto_watch: Option<bool>,
    /// Sets how the given kinds reach the viewer (at most one entry per kind); kinds not
    /// given keep their choice.
    mail_choices: Option<Vec<KindMailChoiceInput>>,
    digest_frequency: Option<DigestFrequency>,
    /// Monday = 1 to Sunday = 7.
    digest_weekday: Option<i64>,
    /// 0 to 23, in the viewer's time zone.
    digest_hour: Option<i64>,
}

#[derive(InputObject)]
pub struct KindMailChoiceInput {
    kind: NotificationKind,
    choice: MailChoice,
}

#[derive(InputObject)]
pub struct UnsubscribeInput {
    /// The token from an unsubscribe link (`/unsubscribe/<token>`).
    token: String,
}

#[derive(SimpleObject)]
pub struct UnsubscribePayload {
    /// Whether the token was good and the member is now off the list (also when they
    /// already were).
    unsubscribed: bool,
    /// The list left: `digest`, or a kind of notification (`mentioned`, …).
    list: Option<String>,
    user_errors: Vec<UserError>,
}

#[derive(SimpleObject)]
pub struct UpdateNotificationSettingsPayload {
    settings: Option<NotificationSettings>,
    user_errors: Vec<UserError>,
}

#[derive(SimpleObject)]
pub struct MarkNewForYouSeenPayload {
    followed_seen_at: DateTime,
}

/// Reads a followable global id; a clear refusal for anything else.
fn parse_target(global_id: &str) -> AppResult<Target> {
    let (type_name, id) = relay::parse_global_id(global_id)?;
    Target::new(&type_name, id).ok_or_else(|| {
        AppError::bad_input(
            "Only topics, organisations, meetup groups, members, case studies and artefacts can be followed.",
        )
    })
}

fn field_error(field: &str, message: &str) -> Vec<UserError> {
    vec![UserError::new(field, UserErrorCode::Invalid, message)]
}

#[derive(Default)]
pub struct NotificationMutation;

#[Object]
impl NotificationMutation {
    /// Follows something at a level, or changes the level.
    async fn follow(&self, ctx: &Context<'_>, input: FollowInput) -> async_graphql::Result<FollowPayload> {
        let viewer = ctx.require_viewer()?;
        let target = match parse_target(&input.target_id) {
            Ok(target) => target,
            Err(err) => {
                return Ok(FollowPayload { follow: None, user_errors: field_error("targetId", &err.message()) })
            }
        };
        if target.type_name == "Member" && target.id == viewer.member.id {
            return Ok(FollowPayload {
                follow: None,
                user_errors: field_error("targetId", "You cannot follow yourself."),
            });
        }
        if !target.visible_to(&ctx.state().db, viewer.member.id).await? {
            let message = "There is nothing to follow with that id.";
            return Ok(FollowPayload { follow: None, user_errors: field_error("targetId", message) });
        }
        let follow = follows::set(&ctx.state().db, viewer.member.id, target, input.level).await?;
        ctx.loaders().follow_levels.clear::<Target>();
        Ok(FollowPayload { follow: Some(Follow(follow)), user_errors: vec![] })
    }

    /// Stops following something.
    async fn unfollow(&self, ctx: &Context<'_>, input: UnfollowInput) -> async_graphql::Result<UnfollowPayload> {
        let viewer = ctx.require_viewer()?;
        let target = match parse_target(&input.target_id) {
            Ok(target) => target,
            Err(err) => {
                return Ok(UnfollowPayload { target_id: None, user_errors: field_error("targetId", &err.message()) })
            }
        };
        let removed = follows::remove(&ctx.state().db, viewer.member.id, target).await?;
        ctx.loaders().follow_levels.clear::<Target>();
        Ok(UnfollowPayload { target_id: removed.then_some(input.target_id), user_errors: vec![] })
    }

    /// Marks notifications read: the given entries (with their groups), everything up to
    /// one, or (with neither) everything.
    async fn mark_notifications_read(
        &self,
        ctx: &Context<'_>,
        input: MarkNotificationsReadInput,
    ) -> async_graphql::Result<MarkNotificationsReadPayload> {
        let viewer = ctx.require_viewer()?;
        let db = &ctx.state().db;
        let unread = inbox::unread_count(db, viewer.member.id).await?;
        let refuse = |field: &str, message: &str| MarkNotificationsReadPayload {
            unread_count: unread,
            user_errors: field_error(field, message),
        };
        let marking = match (&input.ids, &input.up_to) {
            (Some(_), Some(_)) => return Ok(refuse("ids", "Give ids or upTo, not both.")),
            (Some(ids), None) if ids.len() > relay::PAGE_SIZE_MAX => {
                return Ok(refuse("ids", &format!("Mark at most {} entries at once.", relay::PAGE_SIZE_MAX)))
            }
            (Some(ids), None) => {
                let mut numbers = Vec::with_capacity(ids.len());
                for id in ids {
                    match relay::parse_global_id_of("Notification", id) {
                        Ok(n) => numbers.push(n),
                        Err(err) => return Ok(refuse("ids", &err.message())),
                    }
                }
                let unread = inbox::mark_read(db, viewer.member.id, Marking::Entries(&numbers)).await?;
                return Ok(MarkNotificationsReadPayload { unread_count: unread, user_errors: vec![] });
            }
            (None, Some(up_to)) => match relay::parse_global_id_of("Notification", up_to) {
                Ok(n) => Marking::UpTo(n),
                Err(err) => return Ok(refuse("upTo", &err.message())),
            },
            (None, None) => Marking::All,
        };
        let unread = inbox::mark_read(db, viewer.member.id, marking).await?;
        Ok(MarkNotificationsReadPayload { unread_count: unread, user_errors: vec![] })
    }

    /// Changes which kinds of notification the viewer gets and how, automatic watching,
    /// and when their digest goes out. All or nothing: with a problem, nothing changes.
    async fn update_notification_settings(
        &self,
        ctx: &Context<'_>,
        input: UpdateNotificationSettingsInput,
    ) -> async_graphql::Result<UpdateNotificationSettingsPayload> {
        let viewer = ctx.require_viewer()?;
        let change = SettingsChange {
            disabled_kinds: input.disabled_kinds,
            auto_watch: input.auto_watch,
            mail_choices: input.mail_choices.map(|choices| choices.into_iter().map(|c| (c.kind, c.choice)).collect()),
            digest_frequency: input.digest_frequency,
            digest_weekday: input.digest_weekday,
            digest_hour: input.digest_hour,
        };
        if let Some((field, message)) = change.problem() {
            return Ok(UpdateNotificationSettingsPayload { settings: None, user_errors: field_error(field, &message) });
        }
        let settings = inbox::update_settings(&ctx.state().db, viewer.member.id, &change, db::now_millis()).await?;
        Ok(UpdateNotificationSettingsPayload { settings: Some(settings.into()), user_errors: vec![] })
    }

    /// Leaves a mailing list through the signed token of an unsubscribe link: the digest,
    /// or mail about one kind of notification (which then shows on the site only). Needs
    /// no sign-in: the token is the authority, and it cannot be forged or turned into
    /// another member's or another list's.
    async fn unsubscribe(
        &self,
        ctx: &Context<'_>,
        input: UnsubscribeInput,
    ) -> async_graphql::Result<UnsubscribePayload> {
        let state = ctx.state();
        match crate::mail::unsubscribe::apply(&state.db, &state.mailer, &input.token).await? {
            Some((_, list)) => Ok(UnsubscribePayload {
                unsubscribed: true,
                list: Some(list.as_str().to_string()),
                user_errors: vec![],
            }),
            None => Ok(UnsubscribePayload {
                unsubscribed: false,
                list: None,
                user_errors: field_error("token", "This unsubscribe link is not valid. Check you copied all of it."),
            }),
        }
    }

    /// Records that the viewer has seen what is new in what they follow, so `newForYou`
    /// starts again from now.
    async fn mark_new_for_you_seen(&self, ctx: &Context<'_>) -> async_graphql::Result<MarkNewForYouSeenPayload> {
        let viewer = ctx.require_viewer()?;
        let at = inbox::mark_followed_seen(&ctx.state().db, viewer.member.id).await?;
        Ok(MarkNewForYouSeenPayload { followed_seen_at: DateTime(at) })
    }
}

pub mod live {
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
        async_graphql::Error::new(format!(
            "{message} Subscribe again with the id of the last notification you received."
        ))
        .extend_with(|_, ext| ext.set("code", code))
    }
}
