//! What every page handler uses to read its request and answer: query parameters, the
//! shape form problems take in templates (a summary linking to each field, and each
//! message beside its field), and turning a handler's early stop into its response.

use poem::{Request, Response};
use serde_json::{json, Value};

use super::visit::Stop;

pub(crate) fn respond(result: Result<Response, Stop>) -> Response {
    result.unwrap_or_else(|stop| *stop)
}

/// Turns `userErrors` into what the templates show: a summary whose links go to each
/// field, and each message beside its field. Errors about no field in particular link to
/// the form's first field.
pub(crate) fn form_errors(errors: &[Value], first_field: &str) -> Value {
    let list: Vec<Value> = errors
        .iter()
        .map(|e| json!({ "field": e["field"].as_str().unwrap_or(first_field), "message": e["message"] }))
        .collect();
    let mut by_field = serde_json::Map::new();
    for error in &list {
        let field = error["field"].as_str().unwrap_or(first_field).to_string();
        by_field.entry(field).or_insert_with(|| error["message"].clone());
    }
    json!({ "list": list, "by_field": by_field })
}

pub(crate) fn refused(message: String, first_field: &str) -> Value {
    form_errors(&[json!({ "field": first_field, "message": message })], first_field)
}

pub(crate) fn query_params(request: &Request) -> std::collections::HashMap<String, String> {
    url::form_urlencoded::parse(request.uri().query().unwrap_or("").as_bytes()).into_owned().collect()
}
