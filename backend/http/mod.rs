//! HTTP: routes, and what wraps every request — a request id, a tracing span, metrics,
//! baseline security headers, and a 500 page instead of a dropped connection on panic.

pub mod graphql;

use std::{sync::Arc, time::Instant};

use poem::{
    get, handler,
    http::{header, HeaderValue, StatusCode},
    middleware::{CatchPanic, Compression, CookieJarManager},
    web::Data,
    Endpoint, EndpointExt, IntoEndpoint, IntoResponse, Request, Response,
};
use rand::RngCore;
use tracing::Instrument;

use crate::{
    accounts::{credentials, Identity},
    app::AppState,
    graphql::KettleSchema,
    metrics::Metrics,
};

/// The id of the request being served, as sent back in `X-Request-Id`.
#[derive(Clone, Debug)]
pub struct RequestId(pub String);

pub fn routes(state: AppState, schema: KettleSchema) -> impl Endpoint {
    let metrics = state.metrics.clone();
    crate::site::routes()
        .at("/graphql", get(graphql::get).post(graphql::post))
        .at("/healthz", get(healthz))
        .at("/readyz", get(readyz))
        .at("/metrics", get(metrics_text))
        .data(state)
        .data(schema)
        .with(CookieJarManager::new())
        .with(Compression::new())
        .with(CatchPanic::new().with_handler(|panic: Box<dyn std::any::Any + Send>| {
            let detail = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            tracing::error!(panic = %detail, "a request handler panicked");
            crate::site::visit::static_error_page(StatusCode::INTERNAL_SERVER_ERROR, "")
        }))
        .around(move |endpoint, request| observe(endpoint, request, metrics.clone()))
        .into_endpoint()
}

/// A fixed label for metrics: the route, never the raw path.
fn route_label(path: &str) -> &'static str {
    match path {
        "/graphql" => "/graphql",
        "/graphql/ws" => "/graphql/ws",
        "/healthz" => "/healthz",
        "/readyz" => "/readyz",
        "/metrics" => "/metrics",
        "/" => "/",
        "/register" => "/register",
        "/sign-in" => "/sign-in",
        "/sign-out" => "/sign-out",
        "/search" => "/search",
        "/settings" | "/settings/profile" | "/settings/tokens" | "/settings/tokens/revoke" => "/settings",
        _ if path.starts_with("/members/") => "/members/:id",
        "/case-studies" | "/case-studies/new" => "/case-studies",
        _ if path.starts_with("/case-studies/") => "/case-studies/:number",
        _ if path.starts_with("/topics/") => "/topics/:slug",
        _ if path.starts_with("/organisations/") => "/organisations/:slug",
        _ if path.starts_with("/feeds/") => "/feeds",
        _ if path.starts_with("/static/") => "/static",
        _ => "other",
    }
}

/// Accepts a caller's `X-Request-Id` when it is short and plain, or makes one up.
fn request_id(request: &Request) -> String {
    let given = request.headers().get("x-request-id").and_then(|v| v.to_str().ok());
    match given {
        Some(id)
            if (1..=64).contains(&id.len())
                && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') =>
        {
            id.to_string()
        }
        _ => {
            let mut bytes = [0u8; 12];
            rand::thread_rng().fill_bytes(&mut bytes);
            bytes.iter().map(|b| format!("{b:02x}")).collect()
        }
    }
}

async fn observe<E: Endpoint>(endpoint: Arc<E>, mut request: Request, metrics: Arc<Metrics>) -> poem::Result<Response> {
    let started = Instant::now();
    let id = request_id(&request);
    let method = request.method().to_string();
    let path = request.uri().path().to_string();
    let route = route_label(&path);
    request.extensions_mut().insert(RequestId(id.clone()));
    let span = tracing::info_span!("request", request_id = %id, method = %method, path = %path);

    let mut response = match endpoint.call(request).instrument(span.clone()).await {
        Ok(response) => response.into_response(),
        Err(err) => err.into_response(),
    };
    let status = response.status().as_u16();
    let seconds = started.elapsed().as_secs_f64();
    metrics.observe_http(route, &method, status, seconds);
    span.in_scope(|| {
        if route == "/healthz" || route == "/readyz" || route == "/metrics" {
            tracing::debug!(status, ms = seconds * 1000.0, "served");
        } else {
            tracing::info!(status, ms = seconds * 1000.0, "served");
        }
    });

    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(&id) {
        headers.insert("x-request-id", value);
    }
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    Ok(response)
}

/// Why a request could not be tied to a member.
pub enum IdentifyError {
    /// An `Authorization` header that is malformed or names no live credential.
    InvalidBearer,
    Internal(crate::error::AppError),
}

/// Finds who is asking: a bearer token (API clients) wins over the session cookie
/// (browsers). A bad bearer token is an error; a stale cookie just means signed out.
pub async fn identify(state: &AppState, request: &Request) -> Result<Option<Identity>, IdentifyError> {
    if let Some(value) = request.headers().get(header::AUTHORIZATION) {
        let token = value
            .to_str()
            .ok()
            .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
            .map(str::trim)
            .ok_or(IdentifyError::InvalidBearer)?;
        return match credentials::authenticate(&state.db, token).await {
            Ok(Some(identity)) => Ok(Some(identity)),
            Ok(None) => Err(IdentifyError::InvalidBearer),
            Err(err) => Err(IdentifyError::Internal(err)),
        };
    }
    match request.cookie().get(credentials::SESSION_COOKIE) {
        Some(cookie) => credentials::authenticate(&state.db, cookie.value_str()).await.map_err(IdentifyError::Internal),
        None => Ok(None),
    }
}

#[handler]
fn healthz() -> &'static str {
    "ok\n"
}

/// Ready when the database answers and, if configured, Redis does too.
#[handler]
async fn readyz(Data(state): Data<&AppState>) -> Response {
    let timeout = std::time::Duration::from_secs(2);
    let database = match tokio::time::timeout(timeout, state.db.ping()).await {
        Ok(Ok(())) => "ok".to_string(),
        Ok(Err(err)) => {
            tracing::warn!(error = %err, "readiness: database check failed");
            "unreachable".to_string()
        }
        Err(_) => "timed out".to_string(),
    };
    let redis = match &state.redis {
        None => None,
        Some(client) => Some(match tokio::time::timeout(timeout, ping_redis(client)).await {
            Ok(Ok(())) => "ok".to_string(),
            Ok(Err(err)) => {
                tracing::warn!(error = %err, "readiness: redis check failed");
                "unreachable".to_string()
            }
            Err(_) => "timed out".to_string(),
        }),
    };
    let ready = database == "ok" && redis.as_deref().is_none_or(|r| r == "ok");
    let body = serde_json::json!({ "ready": ready, "database": database, "redis": redis.unwrap_or_else(|| "not configured".into()) });
    let status = if ready { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    Response::builder().status(status).content_type("application/json").body(body.to_string())
}

async fn ping_redis(client: &redis::Client) -> redis::RedisResult<()> {
    let mut connection = client.get_multiplexed_async_connection().await?;
    let _: String = redis::cmd("PING").query_async(&mut connection).await?;
    Ok(())
}

#[handler]
fn metrics_text(Data(state): Data<&AppState>) -> Response {
    Response::builder().content_type("text/plain; version=0.0.4").body(state.metrics.render(&state.db))
}
