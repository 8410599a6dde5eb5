//! What every saved version shows in the API, whatever it is a version of; the case
//! study's and the artefact's version types add their own text to it (flattened).

use async_graphql::{Context, Object};

use super::Version;
use crate::{
    accounts::Member,
    graphql::{ContextExt, DateTime},
};

/// One saved version: its number, title and change note, and who saved it when.
#[Object(name = "SavedVersion")]
impl Version {
    async fn version(&self) -> i64 {
        self.version
    }
    async fn title(&self) -> &str {
        &self.title
    }
    /// What whoever saved it said changed ("Added the costs for 2026"); empty when they
    /// said nothing (a typo fixed).
    async fn change_note(&self) -> &str {
        &self.change_note
    }
    /// When it was saved, and by whom.
    async fn saved_at(&self) -> DateTime {
        DateTime(self.saved_at)
    }
    async fn saved_by(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Member>> {
        Ok(ctx.loaders().members.load_one(self.saved_by).await?)
    }
    /// Whether it is the text shown now.
    async fn current(&self) -> bool {
        self.current
    }
}
