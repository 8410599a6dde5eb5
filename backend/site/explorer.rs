//! The API explorer at `/graphql/explorer`: every type, field and argument of the schema
//! with its documentation, read from the same SDL as `schema.graphql`, and a form that
//! runs a query. A browser's plain `GET /graphql` is sent here.
//!
//! It replaces GraphiQL, which loads React and its own code from a third-party CDN: that
//! breaks the site's Content-Security-Policy (nothing from another origin) and would make
//! every visit to the explorer tell that CDN about it. This page is served like any other,
//! works without JavaScript (the form runs the query with `GET /graphql`), and
//! `web/static/app.js` shows the answer on the page instead when it runs.

use std::sync::LazyLock;

use async_graphql::parser::{
    types::{FieldDefinition, InputValueDefinition, TypeKind, TypeSystemDefinition},
    Positioned,
};
use poem::{handler, http::StatusCode, Request, Response};
use serde_json::{json, Value};

use super::{forms::respond, visit::Visit};

/// The schema as the template shows it, worked out once.
static SCHEMA: LazyLock<Value> = LazyLock::new(|| describe(&crate::graphql::sdl()));

/// The schema's roots first (Query, Mutation, Subscription), then every other type by
/// name, each with its fields (or input fields, enum values, or union members).
fn describe(sdl: &str) -> Value {
    let Ok(document) = async_graphql::parser::parse_schema(sdl) else {
        return json!({ "types": [] });
    };
    let mut types: Vec<Value> = document
        .definitions
        .iter()
        .filter_map(|definition| match definition {
            TypeSystemDefinition::Type(definition) => Some(&definition.node),
            _ => None,
        })
        .map(|definition| {
            let (kind, fields, values, members) = match &definition.kind {
                TypeKind::Scalar => ("scalar", vec![], vec![], vec![]),
                TypeKind::Object(object) => {
                    ("type", object.fields.iter().map(|f| field(&f.node)).collect(), vec![], vec![])
                }
                TypeKind::Interface(interface) => {
                    ("interface", interface.fields.iter().map(|f| field(&f.node)).collect(), vec![], vec![])
                }
                TypeKind::Union(union) => {
                    ("union", vec![], vec![], union.members.iter().map(|m| json!(m.node.as_str())).collect())
                }
                TypeKind::Enum(enumeration) => {
                    let values = enumeration
                        .values
                        .iter()
                        .map(
                            |v| json!({ "name": v.node.value.node.as_str(), "description": text(&v.node.description) }),
                        )
                        .collect();
                    ("enum", vec![], values, vec![])
                }
                TypeKind::InputObject(input) => {
                    ("input", input.fields.iter().map(|f| input_value(&f.node)).collect(), vec![], vec![])
                }
            };
            json!({
                "name": definition.name.node.as_str(),
                "kind": kind,
                "description": text(&definition.description),
                "fields": fields,
                "values": values,
                "members": members,
            })
        })
        .collect();
    let root_rank =
        |name: &str| ["Query", "Mutation", "Subscription"].iter().position(|root| *root == name).unwrap_or(3);
    types.sort_by(|a, b| {
        let (a, b) = (a["name"].as_str().unwrap_or_default(), b["name"].as_str().unwrap_or_default());
        root_rank(a).cmp(&root_rank(b)).then_with(|| a.cmp(b))
    });
    json!({ "types": types })
}

fn text(description: &Option<Positioned<String>>) -> Option<&str> {
    description.as_ref().map(|d| d.node.as_str())
}

fn field(definition: &FieldDefinition) -> Value {
    let ty = definition.ty.node.to_string();
    json!({
        "name": definition.name.node.as_str(),
        "type": ty,
        "type_name": named_type(&ty),
        "description": text(&definition.description),
        "arguments": definition.arguments.iter().map(|a| input_value(&a.node)).collect::<Vec<_>>(),
    })
}

fn input_value(definition: &InputValueDefinition) -> Value {
    let ty = definition.ty.node.to_string();
    json!({
        "name": definition.name.node.as_str(),
        "type": ty,
        "type_name": named_type(&ty),
        "description": text(&definition.description),
    })
}

/// `[Artefact!]!` names the type `Artefact`, whose entry the page links to.
fn named_type(ty: &str) -> &str {
    ty.trim_matches(|c| c == '[' || c == ']' || c == '!')
}

/// `GET /graphql/explorer`.
#[handler]
pub async fn page(request: &Request) -> Response {
    respond(
        async {
            let visit = Visit::new(request).await?;
            let data = visit.query("viewer", json!({})).await?;
            Ok(visit.render(StatusCode::OK, "explorer.html", &data, json!({ "schema": &*SCHEMA })))
        }
        .await,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn describes_every_type_roots_first() {
        let schema = describe(&crate::graphql::sdl());
        let types = schema["types"].as_array().unwrap();
        let names: Vec<&str> = types.iter().map(|t| t["name"].as_str().unwrap()).collect();
        assert_eq!(&names[..3], ["Query", "Mutation", "Subscription"]);
        assert!(names.len() > 100, "{}", names.len());
        let query = &types[0];
        let node = query["fields"].as_array().unwrap().iter().find(|f| f["name"] == "node").unwrap();
        assert_eq!(node["type_name"], "Node");
        assert_eq!(node["arguments"][0]["type"], "ID!");
        assert!(types.iter().any(|t| t["kind"] == "enum" && !t["values"].as_array().unwrap().is_empty()));
    }
}
