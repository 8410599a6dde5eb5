//! The comment API: the `Comment` type, the threads of a case study or an artefact, and
//! the mutations to post, edit and delete.

use std::collections::HashSet;

use async_graphql::{connection::Connection, Context, InputObject, Object, SimpleObject, ID};

use super::{Comment, Posted, Subject};
use crate::{
    accounts::{self, Member, Role},
    case_studies::CaseStudyStatus,
    error::{AppError, AppResult},
    graphql::{
        relay::{self, Page},
        ContextExt, DateTime, Node, UserError, UserErrorCode,
    },
    moderation::graphql as moderation,
};

impl Comment {
    /// Whether the viewer sees the text: always unless hidden, and then only its author
    /// and the moderators.
    fn shows_content(&self, ctx: &Context<'_>) -> bool {
        self.hidden_at.is_none() || moderation::sees_hidden(ctx, &[self.author_id])
    }
}

#[Object]
impl Comment {
    pub async fn id(&self) -> ID {
        relay::global_id("Comment", self.id)
    }

    /// Null once the comment is deleted, and while it is hidden (but to its author and
    /// the moderators).
    async fn author(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Member>> {
        if self.deleted_at.is_some() || !self.shows_content(ctx) {
            return Ok(None);
        }
        Ok(ctx.loaders().members.load_one(self.author_id).await?)
    }

    /// Sanitised HTML, rendered when it was saved; empty once deleted, and while hidden
    /// (but to its author and the moderators).
    async fn body_html(&self, ctx: &Context<'_>) -> &str {
        if self.shows_content(ctx) {
            &self.body_html
        } else {
            ""
        }
    }

    /// The text as written, in Markdown; empty once deleted, and while hidden (but to its
    /// author and the moderators).
    async fn body(&self, ctx: &Context<'_>) -> &str {
        if self.shows_content(ctx) {
            &self.body_source
        } else {
            ""
        }
    }

    /// Whether the moderators hid it: it stays in its thread as a placeholder; its author
    /// and the moderators still see it, with `hiddenReason`.
    async fn hidden(&self) -> bool {
        self.hidden_at.is_some()
    }

    /// Why it is hidden, for its author and the moderators; null otherwise.
    async fn hidden_reason(&self, ctx: &Context<'_>) -> Option<String> {
        moderation::hidden_reason(ctx, self.hidden_reason.as_deref(), &[self.author_id])
    }

    async fn created_at(&self) -> DateTime {
        DateTime(self.created_at)
    }

    /// When it was last edited, if it was.
    async fn edited_at(&self) -> Option<DateTime> {
        self.edited_at.map(DateTime)
    }

    /// True for the placeholder a deleted comment with replies leaves.
    async fn deleted(&self) -> bool {
        self.deleted_at.is_some()
    }

    /// The case study or artefact it is about.
    async fn subject(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Node>> {
        Ok(subject_node(ctx, self.subject).await?)
    }

    /// Replies, oldest first (a top-level comment's; a reply has none).
    async fn replies(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<Comment>> {
        if self.parent_id.is_some() {
            return Ok(Vec::new());
        }
        Ok(ctx.loaders().comment_replies.load_one(self.id).await?.unwrap_or_default())
    }

    /// Whether the signed-in member wrote it (and so may edit it).
    async fn viewer_is_author(&self, ctx: &Context<'_>) -> bool {
        self.deleted_at.is_none() && ctx.viewer().is_some_and(|v| v.member.id == self.author_id)
    }

    /// Whether the signed-in member may delete it: its author, or a moderator.
    async fn viewer_can_delete(&self, ctx: &Context<'_>) -> bool {
        self.deleted_at.is_none() && ctx.viewer().is_some_and(|v| may_delete(&v.member, self))
    }
}

fn may_delete(member: &Member, comment: &Comment) -> bool {
    member.id == comment.author_id || matches!(member.role, Role::Admin | Role::Moderator)
}

/// The subject as a node, if the viewer may see it and comment on it: a case study that
/// is published or archived (never a draft), or any artefact.
async fn subject_node(ctx: &Context<'_>, subject: Subject) -> AppResult<Option<Node>> {
    Ok(match subject {
        Subject::CaseStudy(id) => crate::case_studies::graphql::visible(ctx, id)
            .await?
            .filter(|c| c.status != CaseStudyStatus::Draft)
            .map(Node::CaseStudy),
        Subject::Artefact(id) => ctx.loaders().artefacts.load_one(id).await?.map(Node::Artefact),
    })
}

/// A page of a subject's threads, for `CaseStudy.comments` and `Artefact.comments`.
pub struct CommentThreads;

impl CommentThreads {
    pub async fn page(
        ctx: &Context<'_>,
        subject: Subject,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> async_graphql::Result<Connection<String, Comment>> {
        let page = Page::<i64>::new(first, after, last, before)?;
        // Drafts gather no comments; an empty page rather than an error keeps a draft's
        // own page simple.
        if subject_node(ctx, subject).await?.is_none() {
            return Ok(page.connection(Vec::new(), |c: &Comment| c.id));
        }
        let rows = super::threads(&ctx.state().db, subject, &page.keyset()).await?;
        // One statement for every reply on the page and one for every author.
        let loaders = ctx.loaders();
        let replies = loaders.comment_replies.load_many(rows.iter().map(|c| c.id)).await?;
        let authors: HashSet<i64> = rows.iter().chain(replies.values().flatten()).map(|c| c.author_id).collect();
        loaders.members.load_many(authors).await?;
        Ok(page.connection(rows, |c| c.id))
    }
}

#[derive(InputObject)]
pub struct PostCommentInput {
    /// The case study or artefact to comment on.
    pub subject_id: ID,
    /// The comment to reply to; a reply to a reply joins the same thread.
    pub parent_id: Option<ID>,
    /// Markdown, at most 10,000 characters; `@handle` mentions a member.
    pub body: String,
}

#[derive(InputObject)]
pub struct EditCommentInput {
    pub id: ID,
    pub body: String,
}

#[derive(InputObject)]
pub struct DeleteCommentInput {
    pub id: ID,
    /// Why, when a moderator deletes someone else's comment: the audit log keeps it (up
    /// to 500 characters).
    #[graphql(default)]
    pub reason: String,
}

#[derive(SimpleObject, Default)]
pub struct CommentPayload {
    pub comment: Option<Comment>,
    pub user_errors: Vec<UserError>,
}

#[derive(SimpleObject, Default)]
pub struct DeleteCommentPayload {
    /// The id of the comment that was deleted.
    pub deleted_comment_id: Option<ID>,
    pub user_errors: Vec<UserError>,
}

fn problem(field: &str, code: UserErrorCode, message: impl Into<String>) -> CommentPayload {
    CommentPayload { comment: None, user_errors: vec![UserError::new(field, code, message)] }
}

fn check_body(body: &str) -> Option<UserError> {
    if body.trim().is_empty() {
        return Some(UserError::new("body", UserErrorCode::Blank, "Write your comment."));
    }
    accounts::check_text("body", "A comment", body, super::BODY_MAX, true)
}

/// The comment behind `id` if it exists, is not deleted, and its subject is visible.
async fn live_comment(ctx: &Context<'_>, id: &ID) -> AppResult<Option<Comment>> {
    let Ok(number) = relay::parse_global_id_of("Comment", id) else { return Ok(None) };
    let Some(comment) = ctx.loaders().comments.load_one(number).await? else { return Ok(None) };
    if comment.deleted_at.is_some() || subject_node(ctx, comment.subject).await?.is_none() {
        return Ok(None);
    }
    Ok(Some(comment))
}

/// Loads a comment if the viewer may see it (its subject is visible to them).
pub async fn visible(ctx: &Context<'_>, id: i64) -> AppResult<Option<Comment>> {
    let Some(comment) = ctx.loaders().comments.load_one(id).await? else { return Ok(None) };
    Ok(subject_node(ctx, comment.subject).await?.map(|_| comment))
}

#[derive(Default)]
pub struct CommentMutation;

#[Object]
impl CommentMutation {
    /// Comments on a published case study or an artefact, or replies to a comment.
    async fn post_comment(&self, ctx: &Context<'_>, input: PostCommentInput) -> async_graphql::Result<CommentPayload> {
        let viewer = ctx.require_viewer()?;
        let subject = match relay::parse_global_id(&input.subject_id) {
            Ok((kind, id)) if kind == "CaseStudy" => Some(Subject::CaseStudy(id)),
            Ok((kind, id)) if kind == "Artefact" => Some(Subject::Artefact(id)),
            _ => None,
        };
        let Some(subject) = subject else {
            return Ok(problem("subjectId", UserErrorCode::NotFound, "There is no such case study or artefact."));
        };
        if subject_node(ctx, subject).await?.is_none() {
            return Ok(problem("subjectId", UserErrorCode::NotFound, "There is no such case study or artefact."));
        }
        if let Some(error) = check_body(&input.body) {
            return Ok(CommentPayload { comment: None, user_errors: vec![error] });
        }
        let parent = match input.parent_id.as_ref() {
            None => None,
            Some(id) => {
                let Some(parent) = live_comment(ctx, id).await?.filter(|p| p.subject == subject) else {
                    return Ok(problem("parentId", UserErrorCode::NotFound, "The comment you replied to is gone."));
                };
                // Replies go one level deep: answering a reply joins its thread.
                match parent.parent_id {
                    Some(top) => ctx.loaders().comments.load_one(top).await?,
                    None => Some(parent),
                }
            }
        };
        match super::post(&ctx.state().db, subject, parent.as_ref(), viewer.member.id, &input.body).await? {
            Posted::Done(comment) => Ok(CommentPayload { comment: Some(comment), user_errors: vec![] }),
            Posted::Full(message) => Ok(problem("subjectId", UserErrorCode::LimitReached, message)),
        }
    }

    /// Replaces the text of your own comment.
    async fn edit_comment(&self, ctx: &Context<'_>, input: EditCommentInput) -> async_graphql::Result<CommentPayload> {
        let viewer = ctx.require_viewer()?;
        let Some(comment) = live_comment(ctx, &input.id).await? else {
            return Ok(problem("id", UserErrorCode::NotFound, "There is no such comment."));
        };
        if comment.author_id != viewer.member.id {
            return Err(AppError::Forbidden.into());
        }
        if let Some(error) = check_body(&input.body) {
            return Ok(CommentPayload { comment: Some(comment), user_errors: vec![error] });
        }
        let saved = super::edit(&ctx.state().db, comment.id, &input.body).await?;
        Ok(CommentPayload { comment: Some(saved), user_errors: vec![] })
    }

    /// Deletes your own comment (moderators may delete any). One with replies stays as a
    /// placeholder so the replies keep their place.
    async fn delete_comment(
        &self,
        ctx: &Context<'_>,
        input: DeleteCommentInput,
    ) -> async_graphql::Result<DeleteCommentPayload> {
        let viewer = ctx.require_viewer()?;
        let Some(comment) = live_comment(ctx, &input.id).await? else {
            return Ok(DeleteCommentPayload {
                deleted_comment_id: None,
                user_errors: vec![UserError::new("id", UserErrorCode::NotFound, "There is no such comment.")],
            });
        };
        if !may_delete(&viewer.member, &comment) {
            return Err(AppError::Forbidden.into());
        }
        if let Some(problem) =
            accounts::check_text("reason", "Reason", &input.reason, crate::moderation::suspensions::REASON_MAX, false)
        {
            return Ok(DeleteCommentPayload { deleted_comment_id: None, user_errors: vec![problem] });
        }
        // A moderator removing someone else's words is a moderator action: audited.
        let moderator = (viewer.member.id != comment.author_id).then_some((viewer.member.id, input.reason.trim()));
        super::delete(&ctx.state().db, &comment, moderator).await?;
        Ok(DeleteCommentPayload { deleted_comment_id: Some(input.id), user_errors: vec![] })
    }
}
