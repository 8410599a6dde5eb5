//! The topic API: the `Topic` type, the list, and the curation mutations.

use std::collections::HashSet;

use async_graphql::{connection::Connection, Context, InputObject, Object, SimpleObject, ID};

use super::Topic;
use crate::{
    accounts::Role,
    error::{AppError, AppResult},
    graphql::{
        relay::{self, Page},
        ContextExt, UserError, UserErrorCode,
    },
};

/// The topic ids an item is given (`topicIds` of a form): one to five topics that exist
/// and have not been merged away, sorted; or the problem with them.
pub async fn resolve(ctx: &Context<'_>, ids: &[ID]) -> AppResult<Result<Vec<i64>, UserError>> {
    let distinct: HashSet<&str> = ids.iter().map(|id| id.as_str()).collect();
    if distinct.len() < super::PER_ITEM_MIN || distinct.len() > super::PER_ITEM_MAX {
        return Ok(Err(UserError::new(
            "topicIds",
            UserErrorCode::Invalid,
            format!("Choose between {} and {} topics.", super::PER_ITEM_MIN, super::PER_ITEM_MAX),
        )));
    }
    let numbers: HashSet<i64> = distinct.iter().filter_map(|id| relay::parse_global_id_of("Topic", id).ok()).collect();
    let found = ctx.loaders().topics.load_many(numbers.iter().copied()).await?;
    let mut active: Vec<i64> =
        numbers.into_iter().filter(|n| found.get(n).is_some_and(|t| t.merged_into.is_none())).collect();
    if active.len() != distinct.len() {
        return Ok(Err(UserError::new("topicIds", UserErrorCode::NotFound, "One of the topics does not exist.")));
    }
    active.sort_unstable();
    Ok(Ok(active))
}

#[Object]
impl Topic {
    pub async fn id(&self) -> ID {
        relay::global_id("Topic", self.id)
    }

    /// How closely the viewer follows this topic; null when not following (or signed out).
    async fn viewer_follow_level(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<Option<crate::notifications::follows::FollowLevel>> {
        Ok(crate::notifications::graphql::viewer_follow_level(ctx, "Topic", self.id).await?)
    }

    async fn slug(&self) -> &str {
        &self.slug
    }

    async fn name(&self) -> &str {
        &self.name
    }

    async fn description(&self) -> &str {
        &self.description
    }

    /// The topic this one was merged into, if it was; its items now live there.
    async fn merged_into(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Topic>> {
        match self.merged_into {
            Some(id) => Ok(ctx.loaders().topics.load_one(id).await?),
            None => Ok(None),
        }
    }
}

#[derive(Default)]
pub struct TopicQuery;

#[Object]
impl TopicQuery {
    async fn topic(&self, ctx: &Context<'_>, slug: String) -> async_graphql::Result<Option<Topic>> {
        Ok(super::by_slug(&ctx.state().db, &slug).await?)
    }

    /// The topics in use, by name.
    #[graphql(complexity = "first.or(last).unwrap_or(20).clamp(0, 100) as usize * child_complexity")]
    async fn topics(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> async_graphql::Result<Connection<String, Topic>> {
        let page = Page::<(String, i64)>::new(first, after, last, before)?;
        let rows = super::list(&ctx.state().db, &page.keyset()).await?;
        Ok(page.connection(rows, |t| (t.name.clone(), t.id)))
    }
}

#[derive(InputObject)]
pub struct CreateTopicInput {
    pub name: String,
    #[graphql(default)]
    pub description: String,
}

#[derive(InputObject)]
pub struct RenameTopicInput {
    pub id: ID,
    pub name: String,
    pub description: Option<String>,
}

#[derive(InputObject)]
pub struct MergeTopicInput {
    /// The topic to retire.
    pub id: ID,
    /// The topic that takes over its items.
    pub into_id: ID,
    /// Why, for the audit log (up to 500 characters).
    #[graphql(default)]
    pub reason: String,
}

#[derive(SimpleObject, Default)]
pub struct TopicPayload {
    pub topic: Option<Topic>,
    pub user_errors: Vec<UserError>,
}

fn curator(ctx: &Context<'_>) -> AppResult<()> {
    let viewer = ctx.require_viewer()?;
    match viewer.member.role {
        Role::Admin | Role::Moderator => Ok(()),
        Role::Member => Err(AppError::Forbidden),
    }
}

fn check(name: &str, description: Option<&str>) -> Vec<UserError> {
    let mut problems: Vec<UserError> =
        crate::text::check_line("name", "Name", name, super::NAME_MAX, true).into_iter().collect();
    if problems.is_empty() && crate::slug::slugify(name, super::NAME_MAX).is_empty() {
        problems.push(UserError::new("name", UserErrorCode::Invalid, "Name must contain letters or numbers."));
    }
    if let Some(problem) = description
        .and_then(|d| crate::accounts::check_text("description", "Description", d, super::DESCRIPTION_MAX, false))
    {
        problems.push(problem);
    }
    problems
}

async fn active_topic(ctx: &Context<'_>, id: &ID) -> AppResult<Option<Topic>> {
    let Ok(number) = relay::parse_global_id_of("Topic", id) else { return Ok(None) };
    Ok(ctx.loaders().topics.load_one(number).await?.filter(|t| t.merged_into.is_none()))
}

fn unknown(field: &str) -> TopicPayload {
    TopicPayload {
        topic: None,
        user_errors: vec![UserError::new(field, UserErrorCode::NotFound, "There is no such topic.")],
    }
}

#[derive(Default)]
pub struct TopicMutation;

#[Object]
impl TopicMutation {
    /// Adds a topic. Admins and moderators only.
    async fn create_topic(&self, ctx: &Context<'_>, input: CreateTopicInput) -> async_graphql::Result<TopicPayload> {
        curator(ctx)?;
        let problems = check(&input.name, Some(&input.description));
        if !problems.is_empty() {
            return Ok(TopicPayload { topic: None, user_errors: problems });
        }
        match super::create(&ctx.state().db, &input.name, &input.description).await? {
            Some(topic) => Ok(TopicPayload { topic: Some(topic), user_errors: vec![] }),
            None => Ok(TopicPayload {
                topic: None,
                user_errors: vec![UserError::new(
                    "name",
                    UserErrorCode::Taken,
                    "A topic with this name already exists.",
                )],
            }),
        }
    }

    /// Renames a topic; its address stays the same. Admins and moderators only.
    async fn rename_topic(&self, ctx: &Context<'_>, input: RenameTopicInput) -> async_graphql::Result<TopicPayload> {
        curator(ctx)?;
        let problems = check(&input.name, input.description.as_deref());
        if !problems.is_empty() {
            return Ok(TopicPayload { topic: None, user_errors: problems });
        }
        let Some(topic) = active_topic(ctx, &input.id).await? else { return Ok(unknown("id")) };
        let renamed = super::rename(&ctx.state().db, topic.id, &input.name, input.description.as_deref()).await?;
        Ok(TopicPayload { topic: renamed, user_errors: vec![] })
    }

    /// Moves every item of one topic to another and retires the first. Admins and
    /// moderators only.
    async fn merge_topic(&self, ctx: &Context<'_>, input: MergeTopicInput) -> async_graphql::Result<TopicPayload> {
        curator(ctx)?;
        let Some(from) = active_topic(ctx, &input.id).await? else { return Ok(unknown("id")) };
        let Some(into) = active_topic(ctx, &input.into_id).await? else { return Ok(unknown("intoId")) };
        if from.id == into.id {
            return Ok(TopicPayload {
                topic: None,
                user_errors: vec![UserError::new(
                    "intoId",
                    UserErrorCode::Invalid,
                    "Choose a different topic to merge into.",
                )],
            });
        }
        if let Some(problem) = crate::accounts::check_text(
            "reason",
            "Reason",
            &input.reason,
            crate::moderation::suspensions::REASON_MAX,
            false,
        ) {
            return Ok(TopicPayload { topic: None, user_errors: vec![problem] });
        }
        let viewer = ctx.require_viewer()?;
        super::merge(&ctx.state().db, viewer.member.id, &from, &into, &input.reason).await?;
        Ok(TopicPayload { topic: Some(into), user_errors: vec![] })
    }
}
