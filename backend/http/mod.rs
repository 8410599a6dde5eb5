//! HTTP: routes, and what wraps every request — a request id, a tracing span, metrics,
//! baseline security headers, and a 500 page instead of a dropped connection on panic.

pub mod graphql;
pub mod methods;
pub mod uploads;
pub mod ws;

use std::{sync::Arc, time::Instant};

use poem::{
    handler,
    http::{header, HeaderValue, Method, StatusCode},
    middleware::{CatchPanic, Compression, CookieJarManager},
    web::Data,
    Endpoint, EndpointExt, IntoEndpoint, IntoResponse, PathPattern, Request, Response, Route,
};
use rand::RngCore;
use sha2::{Digest, Sha256};
use tracing::Instrument;

use crate::{
    accounts::{credentials, Identity},
    app::AppState,
    config::Config,
    graphql::KettleSchema,
    http::methods::get,
    metrics::Metrics,
};

/// The id of the request being served, as sent back in `X-Request-Id`.
#[derive(Clone, Debug)]
pub struct RequestId(pub String);

/// The client's address, from the socket or a trusted proxy's header (see
/// [`crate::limits::client`]), found once per request.
#[derive(Clone, Copy, Debug)]
pub struct ClientAddress(pub Option<std::net::IpAddr>);

impl ClientAddress {
    pub fn of(request: &Request) -> Option<std::net::IpAddr> {
        request.extensions().get::<ClientAddress>().and_then(|c| c.0)
    }
}

/// What a panicking handler's request gets instead: the site's own error page. It comes
/// from the caller, with the site's routes, so this layer does not depend on the site.
pub type PanicPage = fn(StatusCode, &str) -> Response;

/// The whole service: `site` (the pages) with the API, health and metrics beside it, under
/// the shared middleware.
pub fn routes(state: AppState, schema: KettleSchema, site: Route, panic_page: PanicPage) -> impl Endpoint {
    let metrics = state.metrics.clone();
    let config = state.config.clone();
    site.at("/graphql", get(graphql::get).post(graphql::post))
        .at("/graphql/ws", get(ws::upgrade))
        .at("/uploads/:name", get(uploads::serve))
        .at("/healthz", get(healthz))
        .at("/readyz", get(readyz))
        .at("/metrics", get(metrics_text))
        .data(state)
        .data(schema)
        .with(CookieJarManager::new())
        .with(Compression::new())
        .around(conditional)
        .with(CatchPanic::new().with_handler(move |panic: Box<dyn std::any::Any + Send>| {
            let detail = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            tracing::error!(panic = %detail, "a request handler panicked");
            panic_page(StatusCode::INTERNAL_SERVER_ERROR, "")
        }))
        .around(move |endpoint, request| observe(endpoint, request, metrics.clone(), config.clone()))
        .into_endpoint()
}

/// The label for metrics: the route pattern the router matched (`/case-studies/:number`),
/// never the raw path, so there is one series per route and no second route table to
/// keep in step with the real one.
fn route_label(response: &Response) -> &str {
    response.data::<PathPattern>().map_or("unmatched", |pattern| &pattern.0)
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

async fn observe<E: Endpoint>(
    endpoint: Arc<E>,
    mut request: Request,
    metrics: Arc<Metrics>,
    config: Arc<Config>,
) -> poem::Result<Response> {
    let started = Instant::now();
    let id = request_id(&request);
    let client = ClientAddress(crate::limits::client::address(&request, &config.trusted_proxies));
    request.extensions_mut().insert(client);
    let method = request.method().to_string();
    let path = request.uri().path().to_string();
    if path == "/graphql/ws" {
        // A compressed body on a protocol switch would corrupt the WebSocket stream.
        request.headers_mut().remove(header::ACCEPT_ENCODING);
    }
    request.extensions_mut().insert(RequestId(id.clone()));
    let span = tracing::info_span!("request", request_id = %id, method = %method, path = %path);

    let mut response = match refused_address(&request) {
        Some(refused) => refused,
        None => match endpoint.call(request).instrument(span.clone()).await {
            Ok(response) => response.into_response(),
            Err(err) => err.into_response(),
        },
    };
    let status = response.status().as_u16();
    let seconds = started.elapsed().as_secs_f64();
    metrics.observe_http(route_label(&response), &method, status, seconds);
    span.in_scope(|| {
        if path == "/healthz" || path == "/readyz" || path == "/metrics" {
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
    // Any body may have been compressed according to `Accept-Encoding`, so caches must
    // key on it; values set by a handler are kept.
    let varies =
        headers.get_all(header::VARY).iter().filter_map(|v| v.to_str().ok()).any(|v| {
            v.split(',').any(|name| name.trim() == "*" || name.trim().eq_ignore_ascii_case("accept-encoding"))
        });
    if !varies {
        headers.append(header::VARY, HeaderValue::from_static("Accept-Encoding"));
    }
    // An error body from poem itself (a refused extractor, say) comes without a type.
    if response.status().as_u16() >= 400 && !response.headers().contains_key(header::CONTENT_TYPE) {
        response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    }
    let headers = response.headers_mut();
    if config.is_https() {
        // Behind https, browsers should never try plain http again (a year, as advised).
        headers.insert(header::STRICT_TRANSPORT_SECURITY, HeaderValue::from_static("max-age=31536000"));
    }
    Ok(response)
}

/// Addresses whose `200` answers carry an `ETag` and honour `If-None-Match`: feeds,
/// calendars and static files, which feed readers, calendar apps and browsers poll.
fn conditional_path(path: &str) -> bool {
    ["/feeds/", "/calendars/", "/static/", "/uploads/"].iter().any(|prefix| path.starts_with(prefix))
        || path == "/robots.txt"
        || path == "/favicon.ico"
}

/// `ETag` and `304 Not Modified` for the [`conditional_path`]s, in one place. It wraps
/// compression, so the tag is a hash of the bytes as sent: a gzip body and a plain one
/// have different tags, as a strong validator must.
async fn conditional<E: Endpoint>(endpoint: Arc<E>, mut request: Request) -> poem::Result<Response> {
    let method = request.method().clone();
    if !(method == Method::GET || method == Method::HEAD) || !conditional_path(request.uri().path()) {
        return endpoint.call(request).await.map(IntoResponse::into_response);
    }
    // HEAD is answered as GET (then without the body), so both carry the same tag.
    request.set_method(Method::GET);
    let if_none_match: Vec<String> = request
        .headers()
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|tag| tag.trim().trim_start_matches("W/").to_string())
        .filter(|tag| !tag.is_empty())
        .collect();
    let mut response = endpoint.call(request).await?.into_response();
    if response.status() != StatusCode::OK {
        return Ok(response);
    }
    let body = response.take_body().into_vec().await?;
    let etag = entity_tag(&body);
    if if_none_match.iter().any(|tag| tag == "*" || *tag == etag) {
        let mut not_modified = Response::builder().status(StatusCode::NOT_MODIFIED).finish();
        for name in [header::CACHE_CONTROL, header::VARY, header::EXPIRES, header::CONTENT_LOCATION] {
            for value in response.headers().get_all(&name) {
                not_modified.headers_mut().append(name.clone(), value.clone());
            }
        }
        not_modified.headers_mut().insert(header::ETAG, HeaderValue::from_str(&etag).expect("hex is a header value"));
        if let Some(pattern) = response.data::<PathPattern>() {
            not_modified.set_data(pattern.clone());
        }
        return Ok(not_modified);
    }
    response.headers_mut().insert(header::ETAG, HeaderValue::from_str(&etag).expect("hex is a header value"));
    if method == Method::GET {
        response.set_body(body);
    }
    Ok(response)
}

/// A strong entity tag: the first 128 bits of the body's SHA-256, quoted.
fn entity_tag(body: &[u8]) -> String {
    let digest = Sha256::digest(body);
    let hex: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
    format!("\"{hex}\"")
}

/// The text policy applied to the address itself: a path segment holding a control
/// character or a noncharacter (`/topics/%00`) names nothing that can exist, so it is
/// 404; such a query parameter is a malformed request, 400. Either way no handler, and
/// so no database, ever sees it.
fn refused_address(request: &Request) -> Option<Response> {
    let uri = request.uri();
    let refused = |text: &str| crate::text::first_refused(&percent_decode(text)).is_some();
    let status = if refused(uri.path()) {
        StatusCode::NOT_FOUND
    } else if uri.query().is_some_and(|q| refused(&q.replace('+', " "))) {
        StatusCode::BAD_REQUEST
    } else {
        return None;
    };
    let message = if status == StatusCode::NOT_FOUND {
        "There is nothing at this address.\n"
    } else {
        "The address holds a character that is not allowed (a control character).\n"
    };
    Some(Response::builder().status(status).content_type("text/plain; charset=utf-8").body(message))
}

/// `%XX` escapes decoded; invalid UTF-8 becomes U+FFFD (which the text policy allows:
/// the route itself then refuses what it cannot use).
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match (bytes[i], bytes.get(i + 1).copied().and_then(hex), bytes.get(i + 2).copied().and_then(hex)) {
            (b'%', Some(high), Some(low)) => {
                out.push((high * 16 + low) as u8);
                i += 3;
            }
            (byte, _, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
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
    match request.cookie().get(credentials::session_cookie_name(state.config.is_https())) {
        Some(cookie) => credentials::authenticate(&state.db, cookie.value_str()).await.map_err(IdentifyError::Internal),
        None => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_with_control_characters_are_refused() {
        let status =
            |uri: &str| refused_address(&Request::builder().uri_str(uri).finish()).map(|r| r.status().as_u16());
        assert_eq!(status("/topics/%00"), Some(404));
        assert_eq!(status("/feeds/topics/a%0Bb.atom"), Some(404));
        assert_eq!(status("/topics/%EF%BF%BE"), Some(404));
        assert_eq!(status("/search?q=%C2%85"), Some(400));
        assert_eq!(status("/search?q=bins%20%26%20waste"), None);
        assert_eq!(status("/topics/caf%C3%A9"), None);
        assert_eq!(status("/topics/%FF"), None);
        assert_eq!(percent_decode("a%2fb%zz%4"), "a/b%zz%4");
    }
}

#[handler]
fn healthz() -> &'static str {
    "ok\n"
}

/// Ready when the database answers. Redis is reported but does not decide readiness:
/// without it live updates pause and rate limits count per instance, but the site works,
/// and taking every instance out of a load balancer because Redis is down would turn a
/// degraded site into no site. `liveDelivery` says what the bus is doing (`in-process`,
/// `redis: connected`, `redis: reconnecting`, …).
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
    let rate_limits = match redis.as_deref() {
        Some("ok") | None => state.limiter.store_status(),
        Some(_) => "in process (redis is not answering)",
    };
    let ready = database == "ok";
    let body = serde_json::json!({
        "ready": ready,
        "database": database,
        "redis": redis.unwrap_or_else(|| "not configured".into()),
        "rateLimits": rate_limits,
        "liveDelivery": state.bus.status().as_str(),
    });
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
