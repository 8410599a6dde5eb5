//! Bounds on the work one GraphQL request can cause, checked before anything executes,
//! and the text policy applied to everything a request carries.
//!
//! Depth and complexity limits (set on the schema) measure a query as written, so a
//! short document whose fragments spread each other twice over (`F0 { ...F1 ...F1 }`,
//! `F1 { ...F2 ...F2 }`, …) passes them while costing 2^n field visits. So before
//! validation, [`RequestLimits`] measures the document with its fragments inlined —
//! memoised per fragment, so the measuring itself is linear in the document's size —
//! and refuses documents that expand past [`MAX_EXPANDED_FIELDS`], that use more than
//! [`MAX_ALIASES`] aliases or [`MAX_OPERATIONS`] operations, or whose operation has
//! more root fields than [`max_root_fields`] allows. Then:
//! - every string in the variables and in the document's literal arguments goes through
//!   [`crate::text`]; a refused character fails the request with `BAD_USER_INPUT` and
//!   `extensions.field` naming the input field, before any resolver runs;
//! - the operation's complexity is charged to the client's address
//!   ([`Limit::GraphqlCostClient`]), and each mutation a member runs to the member
//!   ([`Limit::WritesMember`]);
//! - execution gets [`TIME_BUDGET`]; past it the work is dropped and the client told.

use std::{collections::HashMap, sync::Arc, time::Duration};

use async_graphql::{
    extensions::{
        Extension, ExtensionContext, ExtensionFactory, NextExecute, NextPrepareRequest, NextResolve, NextValidation,
        ResolveInfo,
    },
    parser::types::{ExecutableDocument, OperationType, Selection, SelectionSet},
    ErrorExtensionValues, Name, Request, Response, ServerError, ServerResult, ValidationResult, Value, Variables,
};

use super::RequestContext;
use crate::{app::AppState, limits::Limit, text};

/// Field selections in a document with every fragment spread inlined.
pub const MAX_EXPANDED_FIELDS: u64 = 5_000;
/// Aliased fields in a document.
pub const MAX_ALIASES: usize = 50;
/// Operations in one document.
pub const MAX_OPERATIONS: usize = 10;
/// How long one operation may execute.
pub const TIME_BUDGET: Duration = Duration::from_secs(10);

/// Root fields one operation may select: a page needs a handful of queries; a mutation
/// is one change (a few when a client batches related ones).
pub fn max_root_fields(kind: OperationType) -> u64 {
    match kind {
        OperationType::Query => 20,
        OperationType::Mutation => 5,
        OperationType::Subscription => 1,
    }
}

/// Mutations with limits of their own (signing in and registering), or that only end
/// a session, do not count as writes.
const NOT_WRITES: [&str; 3] = ["signIn", "register", "signOut"];

pub struct RequestLimits;

impl ExtensionFactory for RequestLimits {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(RequestLimits)
    }
}

fn error(code: &str, message: impl Into<String>) -> ServerError {
    let mut error = ServerError::new(message, None);
    let mut extensions = ErrorExtensionValues::default();
    extensions.set("code", code);
    error.extensions = Some(extensions);
    error
}

#[async_trait::async_trait]
impl Extension for RequestLimits {
    /// Runs first: parses the document (async-graphql keeps the parse for later) and
    /// measures it before anything else walks it. Even async-graphql's own recursion
    /// check, which runs at parsing, follows every fragment spread and so would take
    /// 2^n steps on a fragment chain.
    async fn prepare_request(
        &self,
        ctx: &ExtensionContext<'_>,
        mut request: Request,
        next: NextPrepareRequest<'_>,
    ) -> ServerResult<Request> {
        let variables = request.variables.clone();
        let document = request.parsed_query()?;
        check_shape(document)?;
        check_text(document, &variables)?;
        next.run(ctx, request).await
    }

    async fn validation(
        &self,
        ctx: &ExtensionContext<'_>,
        next: NextValidation<'_>,
    ) -> Result<ValidationResult, Vec<ServerError>> {
        let result = next.run(ctx).await.map_err(|errors| errors.into_iter().map(label_limit).collect::<Vec<_>>())?;
        let (Some(state), Some(request)) = (ctx.data_opt::<AppState>(), ctx.data_opt::<RequestContext>()) else {
            return Ok(result);
        };
        if let Some(address) = request.client_ip {
            let cost = result.complexity.max(1) as u64;
            if let Err(err) = state.limiter.check(Limit::GraphqlCostClient, &address.to_string(), cost).await {
                return Err(vec![app_error(err)]);
            }
        }
        Ok(result)
    }

    async fn execute(
        &self,
        ctx: &ExtensionContext<'_>,
        operation_name: Option<&str>,
        next: NextExecute<'_>,
    ) -> Response {
        match tokio::time::timeout(TIME_BUDGET, next.run(ctx, operation_name)).await {
            Ok(response) => response,
            Err(_) => {
                tracing::warn!(seconds = TIME_BUDGET.as_secs(), "a GraphQL operation ran out of time and was dropped");
                Response::from_errors(vec![error(
                    "TIMEOUT",
                    format!(
                        "This request took longer than {} seconds and was stopped. Ask for less at once.",
                        TIME_BUDGET.as_secs()
                    ),
                )])
            }
        }
    }

    async fn resolve(
        &self,
        ctx: &ExtensionContext<'_>,
        info: ResolveInfo<'_>,
        next: NextResolve<'_>,
    ) -> ServerResult<Option<Value>> {
        let root_mutation = info.parent_type == "Mutation" && info.path_node.parent.is_none();
        if root_mutation && !NOT_WRITES.contains(&info.name) {
            let viewer = ctx.data_opt::<RequestContext>().and_then(|r| r.viewer.as_ref());
            if let (Some(state), Some(viewer)) = (ctx.data_opt::<AppState>(), viewer) {
                if let Err(err) = state.limiter.check(Limit::WritesMember, &viewer.member.id.to_string(), 1).await {
                    let mut error = app_error(err);
                    error.path = vec![async_graphql::PathSegment::Field(info.alias.unwrap_or(info.name).to_string())];
                    return Err(error);
                }
            }
        }
        let result = next.run(ctx, info).await;
        // A mutation may have committed outbox events: wake the dispatcher now rather than
        // at its next sweep (one cheap announcement, however many events).
        if root_mutation {
            if let Some(state) = ctx.data_opt::<AppState>() {
                state.bus.events_committed();
            }
        }
        result
    }
}

/// async-graphql's own depth and complexity refusals carry no code; they are the same
/// kind of refusal as ours, so they get ours. (It offers nothing but the message to know
/// them by.)
fn label_limit(mut error: ServerError) -> ServerError {
    if error.extensions.is_none()
        && (error.message == "Query is too complex." || error.message == "Query is nested too deep.")
    {
        let limit = if error.message.contains("complex") {
            format!(
                "Query is too complex: the limit is {} (a page of n costs n times its fields).",
                super::MAX_COMPLEXITY
            )
        } else {
            format!("Query is nested too deep: the limit is {} levels.", super::MAX_DEPTH)
        };
        error = ServerError { message: limit, ..error };
        let mut extensions = ErrorExtensionValues::default();
        extensions.set("code", "QUERY_TOO_COMPLEX");
        error.extensions = Some(extensions);
    }
    error
}

fn app_error(err: crate::error::AppError) -> ServerError {
    let err: async_graphql::Error = err.into();
    err.into_server_error(async_graphql::Pos::default())
}

/// Refuses documents whose size, once fragments are inlined, is past the limits.
fn check_shape(document: &ExecutableDocument) -> ServerResult<()> {
    let operations: Vec<_> = document.operations.iter().collect();
    if operations.len() > MAX_OPERATIONS {
        return Err(error(
            "QUERY_TOO_COMPLEX",
            format!("A document may hold at most {MAX_OPERATIONS} operations; this one has {}.", operations.len()),
        ));
    }
    let mut measure = Measure { document, fragments: HashMap::new(), aliases: 0 };
    for fragment in document.fragments.values() {
        measure.count_aliases(&fragment.node.selection_set.node);
    }
    for (_, operation) in &operations {
        measure.count_aliases(&operation.node.selection_set.node);
    }
    if measure.aliases > MAX_ALIASES {
        return Err(error(
            "QUERY_TOO_COMPLEX",
            format!("A document may use at most {MAX_ALIASES} aliases; this one uses {}.", measure.aliases),
        ));
    }
    for (name, operation) in &operations {
        let size = measure.size(&operation.node.selection_set.node);
        if size.fields > MAX_EXPANDED_FIELDS {
            return Err(error(
                "QUERY_TOO_COMPLEX",
                format!(
                    "This query selects {} fields once its fragments are expanded; the limit is {MAX_EXPANDED_FIELDS}.",
                    if size.fields == u64::MAX { "too many".to_string() } else { size.fields.to_string() }
                ),
            ));
        }
        let max_roots = max_root_fields(operation.node.ty);
        if size.roots > max_roots {
            let what = name.map(|n| format!("Operation {n}")).unwrap_or_else(|| "An operation".into());
            return Err(error(
                "QUERY_TOO_COMPLEX",
                format!("{what} selects {} root fields; the limit is {max_roots}.", size.roots),
            ));
        }
    }
    Ok(())
}

#[derive(Clone, Copy, Default)]
struct Size {
    /// Every field selection, fragments inlined.
    fields: u64,
    /// Fields at the top of the selection set (fragments at the top inlined).
    roots: u64,
}

struct Measure<'a> {
    document: &'a ExecutableDocument,
    /// Sizes of fragments already measured; `None` while one is being measured, so a
    /// cycle (which validation refuses later) counts as nothing rather than looping.
    fragments: HashMap<&'a Name, Option<Size>>,
    aliases: usize,
}

impl<'a> Measure<'a> {
    fn count_aliases(&mut self, set: &SelectionSet) {
        for item in &set.items {
            match &item.node {
                Selection::Field(field) => {
                    self.aliases += usize::from(field.node.alias.is_some());
                    self.count_aliases(&field.node.selection_set.node);
                }
                Selection::InlineFragment(inline) => self.count_aliases(&inline.node.selection_set.node),
                Selection::FragmentSpread(_) => {}
            }
        }
    }

    fn size(&mut self, set: &'a SelectionSet) -> Size {
        let mut total = Size::default();
        for item in &set.items {
            let part = match &item.node {
                Selection::Field(field) => {
                    let inner = self.size(&field.node.selection_set.node);
                    Size { fields: inner.fields.saturating_add(1), roots: 1 }
                }
                Selection::InlineFragment(inline) => self.size(&inline.node.selection_set.node),
                Selection::FragmentSpread(spread) => self.fragment(&spread.node.fragment_name.node),
            };
            total.fields = total.fields.saturating_add(part.fields);
            total.roots = total.roots.saturating_add(part.roots);
        }
        total
    }

    fn fragment(&mut self, name: &'a Name) -> Size {
        match self.fragments.get(name) {
            Some(Some(size)) => return *size,
            Some(None) => return Size::default(),
            None => {}
        }
        let Some(definition) = self.document.fragments.get(name) else { return Size::default() };
        self.fragments.insert(name, None);
        let size = self.size(&definition.node.selection_set.node);
        self.fragments.insert(name, Some(size));
        size
    }
}

/// Applies the text policy to every string the request carries: variables, variable
/// defaults and literal arguments.
fn check_text(document: &ExecutableDocument, variables: &Variables) -> ServerResult<()> {
    // A variable is reported by the argument it is passed as (`$a0` in `topic(slug: $a0)`
    // is `slug`), which is what the client's form or code calls it.
    let mut arguments = HashMap::new();
    for (_, operation) in document.operations.iter() {
        arguments_of_variables(&operation.node.selection_set.node, &mut arguments);
    }
    for fragment in document.fragments.values() {
        arguments_of_variables(&fragment.node.selection_set.node, &mut arguments);
    }
    for (name, value) in variables.iter() {
        let argument = arguments.get(name.as_str()).map(String::as_str).unwrap_or(name.as_str());
        check_value(value, &mut vec![argument.to_string()])?;
    }
    for (_, operation) in document.operations.iter() {
        for definition in &operation.node.variable_definitions {
            if let Some(default) = &definition.node.default_value {
                check_value(&default.node, &mut vec![definition.node.name.node.to_string()])?;
            }
        }
        check_arguments(&operation.node.selection_set.node)?;
    }
    for fragment in document.fragments.values() {
        check_arguments(&fragment.node.selection_set.node)?;
    }
    Ok(())
}

/// Which argument each variable is passed as, where it is passed straight to one.
fn arguments_of_variables(set: &SelectionSet, found: &mut HashMap<String, String>) {
    for item in &set.items {
        match &item.node {
            Selection::Field(field) => {
                for (name, value) in &field.node.arguments {
                    let mut used = Vec::new();
                    let _ = value.node.clone().into_const_with(|variable| {
                        used.push(variable);
                        Ok::<_, ()>(Value::Null)
                    });
                    for variable in used {
                        found.entry(variable.to_string()).or_insert_with(|| name.node.to_string());
                    }
                }
                arguments_of_variables(&field.node.selection_set.node, found);
            }
            Selection::InlineFragment(inline) => arguments_of_variables(&inline.node.selection_set.node, found),
            Selection::FragmentSpread(_) => {}
        }
    }
}

fn check_arguments(set: &SelectionSet) -> ServerResult<()> {
    for item in &set.items {
        match &item.node {
            Selection::Field(field) => {
                for (name, value) in &field.node.arguments {
                    // Variables are checked with the variables; what is left is literal.
                    let literal =
                        value.node.clone().into_const_with(|_| Ok::<_, ()>(Value::Null)).unwrap_or(Value::Null);
                    check_value(&literal, &mut vec![name.node.to_string()])?;
                }
                check_arguments(&field.node.selection_set.node)?;
            }
            Selection::InlineFragment(inline) => check_arguments(&inline.node.selection_set.node)?,
            Selection::FragmentSpread(_) => {}
        }
    }
    Ok(())
}

/// Walks a value; `path` names where it is (`input.body`, `ids[3]`).
fn check_value(value: &Value, path: &mut Vec<String>) -> ServerResult<()> {
    match value {
        Value::String(text) => {
            if let Some((position, refusal)) = text::first_refused(text) {
                // The field as a form knows it: the innermost object key, or the argument.
                let field = path.iter().rev().find(|p| !p.starts_with('[')).cloned().unwrap_or_default();
                let mut error = error("BAD_USER_INPUT", text::refusal_message(&field, position, refusal));
                if let Some(extensions) = error.extensions.as_mut() {
                    extensions.set("field", field.as_str());
                    extensions.set("argument", join_path(path));
                }
                return Err(error);
            }
        }
        Value::List(items) => {
            for (i, item) in items.iter().enumerate() {
                path.push(format!("[{i}]"));
                check_value(item, path)?;
                path.pop();
            }
        }
        Value::Object(fields) => {
            for (name, item) in fields {
                if let Some(refusal) = text::first_refused(name.as_str()) {
                    return Err(error("BAD_USER_INPUT", text::refusal_message("A field name", 1, refusal.1)));
                }
                path.push(name.to_string());
                check_value(item, path)?;
                path.pop();
            }
        }
        _ => {}
    }
    Ok(())
}

fn join_path(path: &[String]) -> String {
    let mut joined = String::new();
    for part in path {
        if !joined.is_empty() && !part.starts_with('[') {
            joined.push('.');
        }
        joined.push_str(part);
    }
    joined
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape(query: &str) -> Result<(), String> {
        let document = async_graphql::parser::parse_query(query).unwrap();
        check_shape(&document).map_err(|e| e.message)
    }

    #[test]
    fn a_fragment_chain_is_measured_in_linear_time_and_refused() {
        let mut query = String::from("query { ...F0 }\n");
        for i in 0..60 {
            query.push_str(&format!("fragment F{i} on Query {{ ...F{} ...F{} }}\n", i + 1, i + 1));
        }
        query.push_str("fragment F60 on Query { __typename }");
        let started = std::time::Instant::now();
        let refused = shape(&query).unwrap_err();
        assert!(refused.contains("too many") || refused.contains("fields"), "{refused}");
        assert!(started.elapsed() < Duration::from_secs(1), "measuring took {:?}", started.elapsed());
        // A short chain is fine.
        assert_eq!(
            shape("query { ...A } fragment A on Query { ...B ...B } fragment B on Query { viewer { id } }"),
            Ok(())
        );
    }

    #[test]
    fn aliases_roots_and_operations_are_counted() {
        let aliases: String = (0..51).map(|i| format!("a{i}: viewer {{ id }} ")).collect();
        assert!(shape(&format!("{{ {aliases} }}")).unwrap_err().contains("aliases"));
        let roots: String = (0..21).map(|_| "viewer { id } ".to_string()).collect();
        assert!(shape(&format!("{{ {roots} }}")).unwrap_err().contains("root fields"));
        let mutations: String = (0..6).map(|i| format!("m{i}: signOut {{ signedOut }} ")).collect();
        assert!(shape(&format!("mutation {{ {mutations} }}")).unwrap_err().contains("root fields"));
        let operations: String = (0..11).map(|i| format!("query Q{i} {{ viewer {{ id }} }} ")).collect();
        assert!(shape(&operations).unwrap_err().contains("operations"));
        // Root fields spread from a fragment count too.
        let spread = format!("{{ ...R }} fragment R on Query {{ {roots} }}");
        assert!(shape(&spread).unwrap_err().contains("root fields"));
    }

    #[test]
    fn refused_text_names_its_field() {
        let document = async_graphql::parser::parse_query(
            "mutation($input: PostCommentInput!) { postComment(input: $input) { comment { id } } }",
        )
        .unwrap();
        let variables = Variables::from_json(serde_json::json!({ "input": { "subjectId": "x", "body": "hi\u{0}" } }));
        let err = check_text(&document, &variables).unwrap_err();
        let extensions = err.extensions.unwrap();
        assert_eq!(extensions.get("field"), Some(&Value::from("body")));
        assert_eq!(extensions.get("argument"), Some(&Value::from("input.body")));
        let renamed = async_graphql::parser::parse_query("query($a0: String!) { topic(slug: $a0) { id } }").unwrap();
        let err = check_text(&renamed, &Variables::from_json(serde_json::json!({ "a0": "x\u{85}" }))).unwrap_err();
        assert_eq!(err.extensions.unwrap().get("field"), Some(&Value::from("slug")));
        let literal = async_graphql::parser::parse_query("{ search(query: \"a\\u000Bb\") { totalCount } }").unwrap();
        let err = check_text(&literal, &Variables::default()).unwrap_err();
        assert!(err.message.contains("U+000B"), "{}", err.message);
        let fine =
            async_graphql::parser::parse_query("{ search(query: \"tab\\tand\\nnewline\") { totalCount } }").unwrap();
        assert!(check_text(&fine, &Variables::default()).is_ok());
    }
}
