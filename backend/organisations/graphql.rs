//! The organisation API: the `Organisation` type, lists, and joining.

use async_graphql::{connection::Connection, Context, InputObject, Object, SimpleObject, ID};

use super::{Membership, MembershipStatus, NewOrganisation, Organisation, OrganisationKind, OrganisationRole};
use crate::{
    accounts::Member,
    error::{AppError, AppResult},
    graphql::{
        relay::{self, Page},
        ContextExt, DateTime, UserError, UserErrorCode,
    },
};

/// The organisation behind `id` (an `organisationId` of a form) if `member_id` belongs to
/// it; the problem otherwise. Members write and record reuse only for their own.
pub async fn resolve_own(ctx: &Context<'_>, id: &ID, member_id: i64) -> AppResult<Result<i64, UserError>> {
    let organisation = match relay::parse_global_id_of("Organisation", id) {
        Ok(number) => ctx.loaders().organisations.load_one(number).await?,
        Err(_) => None,
    };
    let Some(organisation) = organisation else {
        return Ok(Err(UserError::new("organisationId", UserErrorCode::NotFound, "There is no such organisation.")));
    };
    if super::membership(&ctx.state().db, organisation.id, member_id).await?.is_some_and(|m| m.is_member()) {
        return Ok(Ok(organisation.id));
    }
    Ok(Err(UserError::new(
        "organisationId",
        UserErrorCode::Invalid,
        format!("You can only act for an organisation you belong to, and you do not belong to {}.", organisation.name),
    )))
}

#[Object]
impl Organisation {
    pub async fn id(&self) -> ID {
        relay::global_id("Organisation", self.id)
    }

    /// How closely the viewer follows this organisation; null when not following (or signed out).
    async fn viewer_follow_level(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<Option<crate::notifications::follows::FollowLevel>> {
        Ok(crate::notifications::graphql::viewer_follow_level(ctx, "Organisation", self.id).await?)
    }

    async fn slug(&self) -> &str {
        &self.slug
    }

    async fn name(&self) -> &str {
        &self.name
    }

    async fn kind(&self) -> OrganisationKind {
        self.kind
    }

    async fn website(&self) -> Option<&str> {
        self.website.as_deref()
    }

    async fn created_at(&self) -> DateTime {
        DateTime(self.created_at)
    }

    /// Approved members, in the order they joined.
    #[graphql(complexity = "first.or(last).unwrap_or(20).clamp(0, 100) as usize * child_complexity")]
    async fn members(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> async_graphql::Result<Connection<String, Member>> {
        let page = Page::<i64>::new(first, after, last, before)?;
        let ids = super::member_ids(&ctx.state().db, self.id, "approved", &page.keyset()).await?;
        let members = ctx.loaders().members.load_many(ids.iter().copied()).await?;
        let ordered: Vec<Member> = ids.iter().filter_map(|id| members.get(id).cloned()).collect();
        Ok(page.connection(ordered, |m| m.id))
    }

    /// Members waiting for a decision on their request to join. Only the organisation's
    /// admins may see them.
    async fn membership_requests(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<Member>> {
        let viewer = ctx.require_viewer()?;
        let state = ctx.state();
        if !super::membership(&state.db, self.id, viewer.member.id).await?.is_some_and(|m| m.is_admin()) {
            return Err(AppError::Forbidden.into());
        }
        let page = Page::<i64>::new(Some(relay::PAGE_SIZE_MAX as i32), None, None, None)?;
        let ids = super::member_ids(&state.db, self.id, "requested", &page.keyset()).await?;
        let members = ctx.loaders().members.load_many(ids.iter().copied()).await?;
        Ok(ids.iter().filter_map(|id| members.get(id).cloned()).collect())
    }

    /// The signed-in member's standing here; null when they have none (or are signed out).
    async fn viewer_membership(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<MembershipView>> {
        let Some(viewer) = ctx.viewer() else { return Ok(None) };
        Ok(super::membership(&ctx.state().db, self.id, viewer.member.id).await?.map(MembershipView::from))
    }
}

/// A member waiting to join an organisation.
#[Object(name = "OrganisationJoinRequest")]
impl super::JoinRequest {
    async fn organisation(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Organisation>> {
        Ok(ctx.loaders().organisations.load_one(self.organisation_id).await?)
    }
    async fn member(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Member>> {
        Ok(ctx.loaders().members.load_one(self.member_id).await?)
    }
    async fn requested_at(&self) -> DateTime {
        DateTime(self.requested_at)
    }
}

#[derive(SimpleObject)]
#[graphql(name = "OrganisationMembership")]
pub struct MembershipView {
    pub role: OrganisationRole,
    pub status: MembershipStatus,
}

impl From<Membership> for MembershipView {
    fn from(m: Membership) -> Self {
        MembershipView { role: m.role, status: m.status }
    }
}

#[derive(Default)]
pub struct OrganisationQuery;

#[Object]
impl OrganisationQuery {
    async fn organisation(&self, ctx: &Context<'_>, slug: String) -> async_graphql::Result<Option<Organisation>> {
        Ok(super::by_slug(&ctx.state().db, &slug).await?)
    }

    /// All organisations, by name.
    #[graphql(complexity = "first.or(last).unwrap_or(20).clamp(0, 100) as usize * child_complexity")]
    async fn organisations(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> async_graphql::Result<Connection<String, Organisation>> {
        let page = Page::<(String, i64)>::new(first, after, last, before)?;
        let rows = super::list(&ctx.state().db, &page.keyset()).await?;
        Ok(page.connection(rows, |o| (o.name.clone(), o.id)))
    }
}

#[derive(InputObject)]
pub struct CreateOrganisationInput {
    pub name: String,
    pub kind: OrganisationKind,
    /// https://… or http://…; optional.
    pub website: Option<String>,
}

#[derive(InputObject)]
pub struct RequestToJoinOrganisationInput {
    pub organisation_id: ID,
}

#[derive(InputObject)]
pub struct DecideMembershipRequestInput {
    pub organisation_id: ID,
    pub member_id: ID,
    pub approve: bool,
}

#[derive(SimpleObject, Default)]
pub struct OrganisationPayload {
    pub organisation: Option<Organisation>,
    pub membership: Option<MembershipView>,
    pub user_errors: Vec<UserError>,
}

fn not_found(field: &str, what: &str) -> OrganisationPayload {
    OrganisationPayload {
        user_errors: vec![UserError::new(field, UserErrorCode::NotFound, format!("There is no such {what}."))],
        ..Default::default()
    }
}

async fn organisation_from_id(ctx: &Context<'_>, id: &ID) -> async_graphql::Result<Option<Organisation>> {
    let Ok(number) = relay::parse_global_id_of("Organisation", id) else { return Ok(None) };
    Ok(ctx.loaders().organisations.load_one(number).await?)
}

#[derive(Default)]
pub struct OrganisationMutation;

#[Object]
impl OrganisationMutation {
    /// Creates an organisation; you become its first admin.
    async fn create_organisation(
        &self,
        ctx: &Context<'_>,
        input: CreateOrganisationInput,
    ) -> async_graphql::Result<OrganisationPayload> {
        let viewer = ctx.require_viewer()?;
        let mut problems: Vec<UserError> = super::check_name("name", &input.name).into_iter().collect();
        // Stored as parsed, so the address kept is the one a browser would follow.
        let website = match super::web_address("website", "Website", input.website.as_deref().unwrap_or(""), false) {
            Ok(website) => website,
            Err(problem) => {
                problems.push(problem);
                None
            }
        };
        if !problems.is_empty() {
            return Ok(OrganisationPayload { user_errors: problems, ..Default::default() });
        }
        let new = NewOrganisation { name: &input.name, kind: input.kind, website: website.as_deref() };
        let organisation = super::create(&ctx.state().db, viewer.member.id, &new).await?;
        Ok(OrganisationPayload {
            organisation: Some(organisation),
            membership: Some(MembershipView { role: OrganisationRole::Admin, status: MembershipStatus::Approved }),
            user_errors: vec![],
        })
    }

    /// Asks an organisation's admins to let you join.
    async fn request_to_join_organisation(
        &self,
        ctx: &Context<'_>,
        input: RequestToJoinOrganisationInput,
    ) -> async_graphql::Result<OrganisationPayload> {
        let viewer = ctx.require_viewer()?;
        let Some(organisation) = organisation_from_id(ctx, &input.organisation_id).await? else {
            return Ok(not_found("organisationId", "organisation"));
        };
        let membership = super::request_to_join(&ctx.state().db, organisation.id, viewer.member.id).await?;
        Ok(OrganisationPayload {
            organisation: Some(organisation),
            membership: Some(membership.into()),
            user_errors: vec![],
        })
    }

    /// Approves or declines a request to join. Only the organisation's admins may.
    async fn decide_membership_request(
        &self,
        ctx: &Context<'_>,
        input: DecideMembershipRequestInput,
    ) -> async_graphql::Result<OrganisationPayload> {
        let viewer = ctx.require_viewer()?;
        let Some(organisation) = organisation_from_id(ctx, &input.organisation_id).await? else {
            return Ok(not_found("organisationId", "organisation"));
        };
        let db = &ctx.state().db;
        if !super::membership(db, organisation.id, viewer.member.id).await?.is_some_and(|m| m.is_admin()) {
            return Err(AppError::Forbidden.into());
        }
        let Ok(member_id) = relay::parse_global_id_of("Member", &input.member_id) else {
            return Ok(not_found("memberId", "request to join"));
        };
        if !super::decide(db, organisation.id, member_id, input.approve, viewer.member.id).await? {
            return Ok(not_found("memberId", "request to join"));
        }
        let membership = super::membership(db, organisation.id, member_id).await?.map(MembershipView::from);
        Ok(OrganisationPayload { organisation: Some(organisation), membership, user_errors: vec![] })
    }
}
