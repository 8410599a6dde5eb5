//! The GraphQL schema: its roots, the conventions every module's types follow, and the
//! per-request context.
//!
//! Each domain module owns its GraphQL types and resolvers (`accounts::graphql`, …) and
//! contributes a query and a mutation object; the roots here merge them. Conventions:
//! - objects implement [`Node`] with a global id from [`relay::global_id`];
//! - lists are Relay connections paged with [`relay::Page`];
//! - a mutation takes one `input` and returns a payload whose `userErrors` list
//!   field-level problems ([`UserError`]); anything else is an [`AppError`] with a code;
//! - related objects load through the request's DataLoaders ([`Loaders`]), so the number
//!   of SQL statements depends on a query's shape, not on its page size.

pub mod limits;
pub mod relay;

// Field-level problems are a domain result (see `error`); the schema shows them as is.
pub use crate::error::{UserError, UserErrorCode};

use std::{collections::HashMap, future::Future, net::IpAddr};

use async_graphql::{
    dataloader::{DataLoader, HashMapCache, Loader},
    Context, InputValueError, InputValueResult, Interface, MergedObject, MergedSubscription, Object, Scalar,
    ScalarType, Schema, SchemaBuilder, Value, ID,
};

use futures_util::future::BoxFuture;

use crate::{
    accounts::{
        self,
        credentials::{self, AccessToken},
        graphql::{AccountMutation, AccountQuery},
        Identity, Member,
    },
    app::AppState,
    artefacts::{
        self,
        graphql::{ArtefactMutation, ArtefactQuery},
        reuse::{self, Reuse},
        Artefact,
    },
    case_studies::{
        self,
        graphql::{CaseStudyMutation, CaseStudyQuery},
        CaseStudy,
    },
    comments::{self, graphql::CommentMutation, Comment},
    db::Db,
    error::{AppError, AppResult},
    meetups::{
        self,
        events::Event as MeetupEvent,
        graphql::{AgendaMutation, CalendarMutation, MeetupMutation, MeetupPeopleMutation, MeetupQuery},
        Group as MeetupGroup,
    },
    notifications::{
        self,
        graphql::{FollowLevels, NotificationMutation},
        Notification,
    },
    organisations::{
        self,
        graphql::{OrganisationMutation, OrganisationQuery},
        Organisation,
    },
    search::graphql::SearchQuery,
    topics::{
        self,
        graphql::{TopicMutation, TopicQuery},
        Tagged, Topic,
    },
};

/// Nesting deeper than this is refused before execution.
pub const MAX_DEPTH: usize = 12;
/// The sum of field costs (a connection's cost multiplies by its page size).
pub const MAX_COMPLEXITY: usize = 2_000;

pub type KettleSchema = Schema<QueryRoot, MutationRoot, SubscriptionRoot>;

#[derive(MergedObject, Default)]
#[graphql(name = "Query")]
pub struct QueryRoot(
    NodeQuery,
    AccountQuery,
    OrganisationQuery,
    TopicQuery,
    CaseStudyQuery,
    ArtefactQuery,
    MeetupQuery,
    SearchQuery,
    crate::moderation::graphql::admin::AdminQuery,
    crate::moderation::graphql::ModerationQuery,
);

#[derive(MergedObject, Default)]
#[graphql(name = "Mutation")]
pub struct MutationRoot(
    AccountMutation,
    OrganisationMutation,
    TopicMutation,
    CaseStudyMutation,
    ArtefactMutation,
    CommentMutation,
    MeetupMutation,
    AgendaMutation,
    MeetupPeopleMutation,
    CalendarMutation,
    NotificationMutation,
    crate::moderation::graphql::admin::AdminMutation,
    crate::moderation::graphql::ModerationMutation,
    crate::privacy::graphql::PrivacyMutation,
    crate::uploads::graphql::UploadMutation,
);

/// Served over WebSocket at `/graphql/ws`, with the graphql-transport-ws protocol.
#[derive(MergedSubscription, Default)]
#[graphql(name = "Subscription")]
pub struct SubscriptionRoot(crate::notifications::graphql::live::NotificationSubscription);

/// The schema without runtime data: enough to print the SDL or validate documents.
pub fn schema_builder() -> SchemaBuilder<QueryRoot, MutationRoot, SubscriptionRoot> {
    Schema::build(QueryRoot::default(), MutationRoot::default(), SubscriptionRoot::default())
        .limit_depth(MAX_DEPTH)
        .limit_complexity(MAX_COMPLEXITY)
        .limit_recursive_depth(32)
        .limit_directives(16)
        .extension(limits::RequestLimits)
}

pub fn build_schema(state: AppState) -> KettleSchema {
    schema_builder().data(state).finish()
}

/// The schema in SDL, as `kettle schema` prints it and `schema.graphql` holds it.
pub fn sdl() -> String {
    schema_builder().finish().sdl()
}

/// What a resolver knows about the request it serves.
pub struct RequestContext {
    pub viewer: Option<Identity>,
    pub client_ip: Option<IpAddr>,
    pub request_id: String,
}

/// Per-request batch loaders. Each caches what it loaded for the rest of the request (a
/// fresh set per request, so nothing is cached across viewers), which lets a list
/// resolver prefetch its page's related objects in one statement per kind, and its
/// items then find them in the cache.
pub struct Loaders {
    pub members: Cached<Member>,
    pub organisations: Cached<Organisation>,
    /// The organisations each member belongs to (ids, by name).
    pub member_organisations: Cached<Vec<i64>>,
    pub topics: Cached<Topic>,
    pub case_studies: Cached<CaseStudy>,
    /// Case study bodies, loaded only where a query asks for one.
    pub case_study_bodies: Cached<case_studies::Body>,
    /// Author and co-author ids of a case study, author first (co-authors who accepted).
    pub case_study_authors: Cached<Vec<i64>>,
    /// Ids of the members a case study invited to co-author and is waiting for.
    pub case_study_pending_co_authors: Cached<Vec<i64>>,
    /// The topics of a case study, by name.
    pub case_study_topics: Cached<Vec<Topic>>,
    /// Ids of the artefacts linked to a case study, newest first.
    pub case_study_artefacts: Cached<Vec<i64>>,
    pub artefacts: Cached<Artefact>,
    /// The topics of an artefact, by name.
    pub artefact_topics: Cached<Vec<Topic>>,
    pub artefact_case_studies: Cached<Vec<i64>>,
    pub artefact_adaptations: Cached<Vec<i64>>,
    pub artefact_reuses: Cached<Vec<Reuse>>,
    /// Every member's story of each artefact's reuse.
    pub artefact_reuse_stories: Cached<Vec<reuse::Story>>,
    pub artefact_publiccode: Cached<artefacts::publiccode::Publiccode>,
    pub comments: Cached<Comment>,
    /// The replies to a top-level comment, oldest first.
    pub comment_replies: Cached<Vec<Comment>>,
    pub meetup_groups: Cached<MeetupGroup>,
    pub meetup_group_topics: Cached<Vec<i64>>,
    pub meetup_group_member_counts: Cached<i64>,
    /// The viewer's follow level on things, by GraphQL type name and id.
    pub follow_levels: DataLoader<FollowLevels, HashMapCache>,
}

impl Loaders {
    /// Loaders for one request by `viewer_id` (what the viewer-specific loaders answer for).
    pub fn new(db: &Db, viewer_id: Option<i64>) -> Loaders {
        fn loader<V: Send + Sync + Clone + 'static>(db: &Db, load: LoadFn<V>) -> Cached<V> {
            DataLoader::with_cache(ByIds { db: db.clone(), load }, tokio::spawn, HashMapCache::default())
                .max_batch_size(MAX_BATCH)
        }
        Loaders {
            members: loader(db, |db, ids| Box::pin(accounts::members_by_ids(db, ids))),
            organisations: loader(db, |db, ids| Box::pin(organisations::by_ids(db, ids))),
            member_organisations: loader(db, |db, ids| Box::pin(organisations::ids_of_members(db, ids))),
            topics: loader(db, |db, ids| Box::pin(topics::by_ids(db, ids))),
            case_studies: loader(db, |db, ids| Box::pin(case_studies::by_ids(db, ids))),
            case_study_authors: loader(db, |db, ids| Box::pin(case_studies::authors_of(db, ids))),
            case_study_pending_co_authors: loader(db, |db, ids| Box::pin(case_studies::coauthors::pending_of(db, ids))),
            case_study_bodies: loader(db, |db, ids| Box::pin(case_studies::bodies(db, ids))),
            case_study_topics: loader(db, |db, ids| Box::pin(topics::of_items(db, Tagged::CaseStudies, ids))),
            case_study_artefacts: loader(db, |db, ids| Box::pin(artefacts::of_case_studies(db, ids))),
            artefacts: loader(db, |db, ids| Box::pin(artefacts::by_ids(db, ids))),
            artefact_topics: loader(db, |db, ids| Box::pin(topics::of_items(db, Tagged::Artefacts, ids))),
            artefact_case_studies: loader(db, |db, ids| Box::pin(artefacts::case_studies_of(db, ids))),
            artefact_adaptations: loader(db, |db, ids| Box::pin(artefacts::adaptations_of(db, ids))),
            artefact_reuses: loader(db, |db, ids| Box::pin(reuse::of_artefacts(db, ids))),
            artefact_reuse_stories: loader(db, |db, ids| Box::pin(reuse::stories_of_artefacts(db, ids))),
            artefact_publiccode: loader(db, |db, ids| Box::pin(artefacts::publiccode::of_artefacts(db, ids))),
            comments: loader(db, |db, ids| Box::pin(comments::by_ids(db, ids))),
            comment_replies: loader(db, |db, ids| Box::pin(comments::replies_of(db, ids))),
            meetup_groups: loader(db, |db, ids| Box::pin(meetups::by_ids(db, ids))),
            meetup_group_topics: loader(db, |db, ids| Box::pin(meetups::topics_of(db, ids))),
            meetup_group_member_counts: loader(db, |db, ids| Box::pin(meetups::member_counts(db, ids))),
            follow_levels: FollowLevels::loader(db, viewer_id),
        }
    }
}

pub type Cached<V> = DataLoader<ByIds<V>, HashMapCache>;

/// The most ids one loader statement asks for (bounded by SQLite's limit on bound
/// parameters, and so that no statement grows without end).
const MAX_BATCH: usize = 500;

type LoadFn<V> = for<'a> fn(&'a Db, &'a [i64]) -> BoxFuture<'a, AppResult<HashMap<i64, V>>>;

/// A loader of values by database id, batching every request of one tick into one query.
pub struct ByIds<V> {
    db: Db,
    load: LoadFn<V>,
}

impl<V: Send + Sync + Clone + 'static> Loader<i64> for ByIds<V> {
    type Value = V;
    type Error = AppError;

    async fn load(&self, keys: &[i64]) -> Result<HashMap<i64, V>, AppError> {
        (self.load)(&self.db, keys).await
    }
}

/// Loading a whole page's related objects at once, in the calling task. A list resolver
/// knows every id it needs, so it skips what [`DataLoader::load_many`] does to gather ids
/// from many resolvers: a spawned task that waits a millisecond on a timer thread before
/// it queries. What it loads lands in the cache, where the items' resolvers find it.
pub trait Prefetch<V> {
    /// Loads `ids` (duplicates are fine) and caches them for the rest of the request.
    fn prefetch(
        &self,
        ids: impl IntoIterator<Item = i64> + Send,
    ) -> impl Future<Output = AppResult<HashMap<i64, V>>> + Send;
}

impl<V: Send + Sync + Clone + 'static> Prefetch<V> for Cached<V> {
    async fn prefetch(&self, ids: impl IntoIterator<Item = i64> + Send) -> AppResult<HashMap<i64, V>> {
        let mut ids: Vec<i64> = ids.into_iter().collect();
        ids.sort_unstable();
        ids.dedup();
        if ids.is_empty() {
            return Ok(HashMap::new());
        }
        let mut loaded = HashMap::with_capacity(ids.len());
        for chunk in ids.chunks(MAX_BATCH) {
            loaded.extend(self.loader().load(chunk).await?);
        }
        self.feed_many(loaded.iter().map(|(id, value)| (*id, value.clone()))).await;
        Ok(loaded)
    }
}

/// Shortcuts resolvers use to reach the state and the request.
pub trait ContextExt {
    fn state(&self) -> &AppState;
    fn request(&self) -> &RequestContext;
    fn loaders(&self) -> &Loaders;
    fn viewer(&self) -> Option<&Identity> {
        self.request().viewer.as_ref()
    }
    fn require_viewer(&self) -> AppResult<&Identity> {
        self.viewer().ok_or(AppError::Unauthenticated)
    }
}

impl ContextExt for Context<'_> {
    fn state(&self) -> &AppState {
        self.data_unchecked::<AppState>()
    }
    fn request(&self) -> &RequestContext {
        self.data_unchecked::<RequestContext>()
    }
    fn loaders(&self) -> &Loaders {
        self.data_unchecked::<Loaders>()
    }
}

/// Anything with a global id.
#[derive(Interface)]
#[graphql(field(name = "id", ty = "ID", desc = "An opaque, globally unique id."))]
pub enum Node {
    Member(Member),
    AccessToken(AccessToken),
    Organisation(Organisation),
    Topic(Topic),
    CaseStudy(CaseStudy),
    Artefact(Artefact),
    Comment(Comment),
    MeetupGroup(MeetupGroup),
    MeetupEvent(MeetupEvent),
    Notification(Notification),
    Review(crate::moderation::graphql::ReviewView),
    Image(crate::uploads::Image),
}

#[derive(Default)]
pub struct NodeQuery;

#[Object]
impl NodeQuery {
    /// Fetches any object by its global id; null when it does not exist or is not yours
    /// to see.
    async fn node(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<Option<Node>> {
        Ok(load_node(ctx, &id).await?)
    }

    /// Fetches up to 100 objects by global id, in order; null for each one not found.
    #[graphql(complexity = "ids.len() * child_complexity")]
    async fn nodes(&self, ctx: &Context<'_>, ids: Vec<ID>) -> async_graphql::Result<Vec<Option<Node>>> {
        if ids.len() > relay::PAGE_SIZE_MAX {
            return Err(AppError::bad_input(format!("Ask for at most {} ids at once.", relay::PAGE_SIZE_MAX)).into());
        }
        let mut nodes = Vec::with_capacity(ids.len());
        for id in &ids {
            nodes.push(load_node(ctx, id).await?);
        }
        Ok(nodes)
    }
}

pub(crate) async fn load_node(ctx: &Context<'_>, id: &ID) -> AppResult<Option<Node>> {
    let (type_name, number) = relay::parse_global_id(id)?;
    Ok(match type_name.as_str() {
        "Member" => ctx.loaders().members.load_one(number).await?.map(Node::Member),
        "AccessToken" => {
            let viewer_id = ctx.viewer().map(|v| v.member.id);
            credentials::access_token_by_id(&ctx.state().db, number)
                .await?
                .filter(|t| Some(t.member_id) == viewer_id && t.revoked_at.is_none())
                .map(Node::AccessToken)
        }
        "Organisation" => ctx.loaders().organisations.load_one(number).await?.map(Node::Organisation),
        "Topic" => ctx.loaders().topics.load_one(number).await?.map(Node::Topic),
        "CaseStudy" => case_studies::graphql::visible(ctx, number).await?.map(Node::CaseStudy),
        "Artefact" => ctx.loaders().artefacts.load_one(number).await?.map(Node::Artefact),
        "Comment" => comments::graphql::visible(ctx, number).await?.map(Node::Comment),
        "MeetupGroup" => ctx.loaders().meetup_groups.load_one(number).await?.map(Node::MeetupGroup),
        "MeetupEvent" => {
            meetups::events::by_ids(&ctx.state().db, &[number]).await?.remove(&number).map(Node::MeetupEvent)
        }
        "Review" => crate::moderation::graphql::review_node(ctx, number).await?.map(Node::Review),
        // An image is listed only to the member who uploaded it (its address is public).
        "Image" => match ctx.viewer() {
            Some(viewer) => crate::uploads::by_id(&ctx.state().db, number)
                .await?
                .filter(|image| image.owner_id == viewer.member.id)
                .map(Node::Image),
            None => None,
        },
        "Notification" => match ctx.viewer() {
            Some(viewer) => {
                notifications::inbox::own(&ctx.state().db, viewer.member.id, number).await?.map(Node::Notification)
            }
            None => None,
        },
        _ => None,
    })
}

/// An instant, as an RFC 3339 string in UTC (`2026-11-29T16:00:00Z`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DateTime(pub i64);

#[Scalar(name = "DateTime")]
impl ScalarType for DateTime {
    fn parse(value: Value) -> InputValueResult<Self> {
        match &value {
            Value::String(text) => text
                .parse::<jiff::Timestamp>()
                .map(|t| DateTime(t.as_millisecond()))
                .map_err(|_| InputValueError::custom("expected an RFC 3339 date and time, like 2026-11-29T16:00:00Z")),
            _ => Err(InputValueError::expected_type(value)),
        }
    }

    fn to_value(&self) -> Value {
        match jiff::Timestamp::from_millisecond(self.0) {
            Ok(t) => Value::String(t.to_string()),
            Err(_) => Value::Null,
        }
    }
}
