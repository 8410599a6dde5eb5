//! The `search` query: ranked hits as nodes, loaded in one statement per kind.

use async_graphql::{Context, Object, SimpleObject};

use super::{search, Filter, SearchKind};
use crate::graphql::{ContextExt, Node};

/// One search result.
#[derive(SimpleObject)]
pub struct SearchHit {
    pub node: Node,
    /// A passage of the text as HTML: escaped, with the matched words in `<mark>`.
    pub snippet: String,
}

#[derive(Default)]
pub struct SearchQuery;

#[Object]
impl SearchQuery {
    /// Published case studies, artefacts and organisations matching all the words in
    /// `query`, optionally of one kind, with one topic (slug) or from one organisation
    /// (slug). Those whose titles have the words come first (a title that is just the
    /// words first), then the rest, newest first. Only the 200 most recent matches (and
    /// the 200 most recent title matches) are read, so older matches of a common word are
    /// not reached. At most 50 at a time; `offset` (up to 150) pages on to the end of those.
    /// Each search costs as much as a hundred fields: it reads and ranks hundreds of
    /// documents, however common its words.
    #[allow(clippy::too_many_arguments)]
    #[graphql(complexity = "100 + first.clamp(0, 50) as usize * child_complexity")]
    async fn search(
        &self,
        ctx: &Context<'_>,
        query: String,
        kind: Option<SearchKind>,
        topic: Option<String>,
        organisation: Option<String>,
        #[graphql(default = 20)] first: i32,
        #[graphql(default = 0)] offset: i32,
    ) -> async_graphql::Result<Vec<SearchHit>> {
        let db = &ctx.state().db;
        let mut filter = Filter { kind, ..Filter::default() };
        // An unknown topic or organisation matches nothing.
        if let Some(slug) = topic {
            match crate::topics::by_slug(db, &slug).await? {
                Some(topic) => filter.topic_id = Some(topic.merged_into.unwrap_or(topic.id)),
                None => return Ok(Vec::new()),
            }
        }
        if let Some(slug) = organisation {
            match crate::organisations::by_slug(db, &slug).await? {
                Some(organisation) => filter.organisation_id = Some(organisation.id),
                None => return Ok(Vec::new()),
            }
        }
        let hits = search(db, &query, filter, i64::from(first), i64::from(offset)).await?;
        let loaders = ctx.loaders();
        let ids_of = |kind: SearchKind| hits.iter().filter(move |h| h.kind == kind).map(|h| h.id);
        // One statement per kind for the whole result list.
        loaders.case_studies.load_many(ids_of(SearchKind::CaseStudy)).await?;
        loaders.case_study_authors.load_many(ids_of(SearchKind::CaseStudy)).await?;
        loaders.artefacts.load_many(ids_of(SearchKind::Artefact)).await?;
        loaders.organisations.load_many(ids_of(SearchKind::Organisation)).await?;
        let mut results = Vec::with_capacity(hits.len());
        for hit in hits {
            let node = match hit.kind {
                SearchKind::CaseStudy => crate::case_studies::graphql::visible(ctx, hit.id).await?.map(Node::CaseStudy),
                SearchKind::Artefact => loaders.artefacts.load_one(hit.id).await?.map(Node::Artefact),
                SearchKind::Organisation => loaders.organisations.load_one(hit.id).await?.map(Node::Organisation),
            };
            if let Some(node) = node {
                results.push(SearchHit { node, snippet: hit.snippet_html });
            }
        }
        Ok(results)
    }
}
