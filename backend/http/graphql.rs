//! `/graphql` over HTTP, following the GraphQL-over-HTTP specification.
//!
//! - POST with `Content-Type: application/json` runs any operation; GET with a `query`
//!   parameter runs queries only (a mutation over GET is 405), and a browser's GET with no
//!   query is sent to the API explorer page.
//! - POST with `Content-Type: multipart/form-data` is a GraphQL multipart request (one
//!   file, for `uploadImage`), accepted only with a `GraphQL-Require-Preflight` header:
//!   a form on another site can post multipart with the member's cookie, but cannot add a
//!   header without the browser asking first, which Kettle never allows.
//! - Bodies over [`BODY_LIMIT`] ([`UPLOAD_LIMIT`] for multipart) are refused with 413,
//!   other content types with 415, and malformed JSON with 400, before anything executes.
//! - The response is `application/graphql-response+json` when the client accepts it; then
//!   a request that fails before execution (syntax, validation, depth or complexity) is a
//!   400 without `data`, as the specification asks. Plain `application/json` clients get
//!   200 for every well-formed request.
//! - Every error carries `extensions.code`; internal errors also carry the request id.

use async_graphql::{
    parser::types::{DocumentOperations, ExecutableDocument, OperationType},
    ServerError, Value,
};
use poem::{
    handler,
    http::{header, HeaderValue, Method, StatusCode},
    web::Data,
    Body, Request, Response,
};

use super::{identify, ClientAddress, IdentifyError, RequestId};
use crate::{
    app::AppState,
    error::INTERNAL_MESSAGE,
    graphql::{KettleSchema, Loaders, RequestContext},
};

/// The largest request body accepted: room for a 100 KB Markdown document, escaped.
pub const BODY_LIMIT: usize = 1024 * 1024;
/// The largest multipart body: the largest image, and room for the operation. A file a
/// little over the image limit reaches `uploadImage`, which says so in `userErrors`.
pub const UPLOAD_LIMIT: usize = crate::uploads::processing::FILE_MAX + 64 * 1024;
/// The header a multipart request must carry (any value): see the module docs.
const PREFLIGHT_HEADER: &str = "graphql-require-preflight";

const GRAPHQL_RESPONSE_JSON: &str = "application/graphql-response+json";
const JSON: &str = "application/json";

#[handler]
pub async fn post(
    request: &Request,
    body: Body,
    Data(state): Data<&AppState>,
    Data(schema): Data<&KettleSchema>,
) -> Response {
    let content_type = request.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    let essence = content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    if essence == "multipart/form-data" {
        return match multipart(request, content_type, body).await {
            Ok(graphql_request) => execute(request, state, schema, graphql_request).await,
            Err(response) => response,
        };
    }
    if essence != JSON {
        return plain_error(
            request,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Send GraphQL requests as JSON, with Content-Type: application/json.",
        );
    }
    if request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<usize>().ok())
        .is_some_and(|n| n > BODY_LIMIT)
    {
        return too_large(request);
    }
    let bytes = match body.into_bytes_limit(BODY_LIMIT).await {
        Ok(bytes) => bytes,
        Err(poem::error::ReadBodyError::PayloadTooLarge) => return too_large(request),
        Err(_) => return plain_error(request, StatusCode::BAD_REQUEST, "The request body could not be read."),
    };
    let graphql_request: async_graphql::Request = match serde_json::from_slice(&bytes) {
        Ok(r) => r,
        Err(err) => {
            return plain_error(
                request,
                StatusCode::BAD_REQUEST,
                &format!("The request body is not a valid GraphQL request in JSON: {err}."),
            )
        }
    };
    execute(request, state, schema, graphql_request).await
}

/// Reads a GraphQL multipart request (operations, map, one file).
async fn multipart(request: &Request, content_type: &str, body: Body) -> Result<async_graphql::Request, Response> {
    if request.headers().get(PREFLIGHT_HEADER).is_none_or(|v| v.is_empty()) {
        return Err(plain_error(
            request,
            StatusCode::BAD_REQUEST,
            "Send multipart requests with a GraphQL-Require-Preflight header (any value), so that no other site's form can send one.",
        ));
    }
    let upload_too_large = || {
        plain_error(
            request,
            StatusCode::PAYLOAD_TOO_LARGE,
            &format!(
                "The request is larger than the {} MB an image may be.",
                crate::uploads::processing::FILE_MAX / 1_000_000
            ),
        )
    };
    if request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<usize>().ok())
        .is_some_and(|n| n > UPLOAD_LIMIT)
    {
        return Err(upload_too_large());
    }
    let options = async_graphql::http::MultipartOptions::default().max_file_size(UPLOAD_LIMIT).max_num_files(1);
    // Read whole (it is bounded) so that the parser reads a slice, not the socket.
    let bytes = match body.into_bytes_limit(UPLOAD_LIMIT).await {
        Ok(bytes) => bytes,
        Err(poem::error::ReadBodyError::PayloadTooLarge) => return Err(upload_too_large()),
        Err(_) => return Err(plain_error(request, StatusCode::BAD_REQUEST, "The request body could not be read.")),
    };
    match async_graphql::http::receive_body(Some(content_type), &bytes[..], options).await {
        Ok(graphql_request) => Ok(graphql_request),
        Err(async_graphql::ParseRequestError::PayloadTooLarge) => Err(upload_too_large()),
        Err(err) => Err(plain_error(
            request,
            StatusCode::BAD_REQUEST,
            &format!("The request is not a valid GraphQL multipart request: {err}."),
        )),
    }
}

struct GetParams {
    query: Option<String>,
    operation_name: Option<String>,
    variables: Option<String>,
}

#[handler]
pub async fn get(request: &Request, Data(state): Data<&AppState>, Data(schema): Data<&KettleSchema>) -> Response {
    let params: GetParams = match get_params(request) {
        Ok(p) => p,
        Err(message) => return plain_error(request, StatusCode::BAD_REQUEST, &message),
    };
    let Some(query) = params.query else {
        let wants_html = accept(request).contains("text/html");
        if wants_html {
            // The explorer is a page of the site (`site::explorer`), under its policy.
            return Response::builder()
                .status(StatusCode::SEE_OTHER)
                .header(header::LOCATION, "/graphql/explorer")
                .finish();
        }
        return plain_error(
            request,
            StatusCode::BAD_REQUEST,
            "Pass the GraphQL document in the query parameter, or POST it.",
        );
    };
    let mut graphql_request = async_graphql::Request::new(query);
    if let Some(name) = params.operation_name {
        graphql_request = graphql_request.operation_name(name);
    }
    if let Some(variables) = params.variables {
        match serde_json::from_str(&variables) {
            Ok(v) => graphql_request = graphql_request.variables(async_graphql::Variables::from_json(v)),
            Err(_) => {
                return plain_error(request, StatusCode::BAD_REQUEST, "The variables parameter is not valid JSON.")
            }
        }
    }
    execute(request, state, schema, graphql_request).await
}

fn get_params(request: &Request) -> Result<GetParams, String> {
    let query = request.uri().query().unwrap_or("");
    if query.len() > BODY_LIMIT {
        return Err("The query string is too long.".into());
    }
    let pairs: Vec<(String, String)> = url::form_urlencoded::parse(query.as_bytes()).into_owned().collect();
    let param = |name: &str| pairs.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
    Ok(GetParams { query: param("query"), operation_name: param("operationName"), variables: param("variables") })
}

fn accept(request: &Request) -> String {
    request
        .headers()
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect::<Vec<_>>()
        .join(",")
        .to_ascii_lowercase()
}

/// Picks the response media type from `Accept`; `None` when the client accepts neither.
fn negotiate(request: &Request) -> Option<&'static str> {
    let accept = accept(request);
    if accept.trim().is_empty() {
        return Some(JSON);
    }
    let types: Vec<&str> = accept.split(',').map(|part| part.split(';').next().unwrap_or("").trim()).collect();
    if types.contains(&GRAPHQL_RESPONSE_JSON) {
        Some(GRAPHQL_RESPONSE_JSON)
    } else if types.iter().any(|t| *t == JSON || *t == "application/*" || *t == "*/*") {
        Some(JSON)
    } else {
        None
    }
}

fn operation_type(document: &ExecutableDocument, name: Option<&str>) -> Option<OperationType> {
    match &document.operations {
        DocumentOperations::Single(op) => Some(op.node.ty),
        DocumentOperations::Multiple(ops) => match name {
            Some(name) => ops.iter().find(|(n, _)| n.as_str() == name).map(|(_, op)| op.node.ty),
            None if ops.len() == 1 => ops.values().next().map(|op| op.node.ty),
            None => None,
        },
    }
}

async fn execute(
    request: &Request,
    state: &AppState,
    schema: &KettleSchema,
    mut graphql_request: async_graphql::Request,
) -> Response {
    let Some(media_type) = negotiate(request) else {
        return plain_error(
            request,
            StatusCode::NOT_ACCEPTABLE,
            "This endpoint answers in application/graphql-response+json or application/json.",
        );
    };
    let request_id = request.extensions().get::<RequestId>().map(|r| r.0.clone()).unwrap_or_default();

    let operation_name = graphql_request.operation_name.clone();
    let kind = match graphql_request.parsed_query() {
        Ok(document) => operation_type(document, operation_name.as_deref()),
        Err(err) => return request_failed(media_type, vec![err]),
    };
    if request.method() == Method::GET && kind.is_some_and(|k| k != OperationType::Query) {
        let mut response = plain_error(
            request,
            StatusCode::METHOD_NOT_ALLOWED,
            "Only queries may be sent with GET; send mutations with POST.",
        );
        response.headers_mut().insert(header::ALLOW, HeaderValue::from_static("POST"));
        return response;
    }

    let viewer = match identify(state, request).await {
        Ok(viewer) => viewer,
        Err(IdentifyError::InvalidBearer) => {
            let mut response = coded_error(
                request,
                StatusCode::UNAUTHORIZED,
                "The access token is not valid: it may have expired or been revoked.",
                "UNAUTHENTICATED",
            );
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer error=\"invalid_token\""));
            return response;
        }
        Err(IdentifyError::Internal(err)) => {
            err.log_if_internal();
            let body = serde_json::json!({ "errors": [{ "message": INTERNAL_MESSAGE, "extensions": { "code": "INTERNAL", "requestId": request_id } }] });
            return json_response(StatusCode::INTERNAL_SERVER_ERROR, JSON, body.to_string());
        }
    };

    let loaders = Loaders::new(&state.db, viewer.as_ref().map(|v| v.member.id));
    let context = RequestContext { viewer, client_ip: ClientAddress::of(request), request_id: request_id.clone() };
    graphql_request = graphql_request.data(context).data(loaders);
    let mut response = schema.execute(graphql_request).await;

    let before_execution = response.data == Value::Null
        && !response.errors.is_empty()
        && response.errors.iter().all(|e| e.path.is_empty());
    let kind_label = match kind {
        Some(OperationType::Query) => "query",
        Some(OperationType::Mutation) => "mutation",
        Some(OperationType::Subscription) => "subscription",
        None => "unknown",
    };
    state.metrics.observe_graphql(kind_label, if response.errors.is_empty() { "ok" } else { "error" });
    if before_execution {
        return request_failed(media_type, std::mem::take(&mut response.errors));
    }
    for error in &mut response.errors {
        label_error(error, &request_id);
    }

    let body = serde_json::to_string(&response).unwrap_or_else(|_| "{}".into());
    let mut http_response = json_response(StatusCode::OK, media_type, body);
    for (name, value) in response.http_headers.iter() {
        http_response.headers_mut().append(name, value.clone());
    }
    http_response
}

/// Makes sure every error has a code, and gives internal ones the request id (for
/// `/graphql` and `/graphql/ws` alike).
pub(crate) fn label_error(error: &mut ServerError, request_id: &str) {
    let extensions = error.extensions.get_or_insert_with(Default::default);
    let code = match extensions.get("code") {
        Some(Value::String(code)) => code.clone(),
        _ => {
            // Our resolvers only fail with coded errors (`AppError` has no `Display`, so
            // it cannot slip through as plain text). An uncoded error is either
            // async-graphql's own refusal of the request — before execution, or an
            // argument that fails to coerce once it runs (`signOut(input: true)`), which
            // carries no source — or a foreign error some resolver let through with `?`,
            // which carries its source and is a fault of ours.
            let ours = !error.path.is_empty() && error.source.is_some();
            let code = if ours { "INTERNAL" } else { "BAD_USER_INPUT" };
            if ours {
                tracing::error!(error = %error.message, path = ?error.path, "a resolver failed without an error code");
                error.message = INTERNAL_MESSAGE.to_string();
            }
            extensions.set("code", code);
            code.to_string()
        }
    };
    if code == "INTERNAL" {
        extensions.set("requestId", request_id);
    }
}

/// A request that failed before execution: syntax, validation, limits.
fn request_failed(media_type: &'static str, mut errors: Vec<ServerError>) -> Response {
    for error in &mut errors {
        let extensions = error.extensions.get_or_insert_with(Default::default);
        if extensions.get("code").is_none() {
            extensions.set("code", "BAD_USER_INPUT");
        }
    }
    let status = if media_type == GRAPHQL_RESPONSE_JSON { StatusCode::BAD_REQUEST } else { StatusCode::OK };
    let body = serde_json::json!({ "errors": errors });
    json_response(status, media_type, body.to_string())
}

fn json_response(status: StatusCode, media_type: &'static str, body: String) -> Response {
    Response::builder().status(status).content_type(media_type).header(header::CACHE_CONTROL, "no-store").body(body)
}

/// An error before anything ran, in the media type the client asked for: a client that
/// accepts `application/graphql-response+json` gets it, everyone else plain JSON.
fn coded_error(request: &Request, status: StatusCode, message: &str, code: &str) -> Response {
    let body = serde_json::json!({ "errors": [{ "message": message, "extensions": { "code": code } }] });
    let media_type = match negotiate(request) {
        Some(GRAPHQL_RESPONSE_JSON) => GRAPHQL_RESPONSE_JSON,
        _ => JSON,
    };
    json_response(status, media_type, body.to_string())
}

fn plain_error(request: &Request, status: StatusCode, message: &str) -> Response {
    coded_error(request, status, message, "BAD_USER_INPUT")
}

fn too_large(request: &Request) -> Response {
    plain_error(
        request,
        StatusCode::PAYLOAD_TOO_LARGE,
        &format!("The request body is larger than the {} KiB limit.", BODY_LIMIT / 1024),
    )
}
