//! One visit to a page: who is asking, running the page's GraphQL documents in-process
//! with their identity, and rendering the answer through a template.
//!
//! A page handler builds a [`Visit`], calls [`Visit::query`] or [`Visit::mutate`] with a
//! document from `web/queries/`, and hands the data to [`Visit::render`]. The documents go
//! through the same schema, resolvers and authorisation as the public API, so the site
//! can never do something the API does not allow, nor fall behind it.

use std::{net::IpAddr, sync::LazyLock};

use minijinja::Environment;
use poem::{
    http::{header, HeaderValue, StatusCode},
    web::cookie::CookieJar,
    Request, Response,
};
use serde_json::{json, Value};

use super::{assets, csrf};
use crate::{
    accounts::Identity,
    app::AppState,
    graphql::{KettleSchema, Loaders, RequestContext},
    http::{identify, ClientAddress, IdentifyError, RequestId},
    text,
};

/// The largest form body a page accepts.
pub const FORM_LIMIT: usize = 64 * 1024;
/// The largest form with an image in it (`multipart/form-data`): the largest image, and
/// room for the rest of the form. A file a little over the image limit reaches
/// `uploadImage`, which says so beside the field.
pub const UPLOAD_FORM_LIMIT: usize = crate::uploads::processing::FILE_MAX + 1024 * 1024;

/// Strict by default: our own scripts and styles only, no inline code, no framing.
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
     form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'";

pub struct Visit {
    state: AppState,
    schema: KettleSchema,
    viewer: Option<Identity>,
    client_ip: Option<IpAddr>,
    request_id: String,
    path: String,
    /// The CSRF secret as the browser sent it, if it sent a well-formed one.
    csrf_cookie: Option<String>,
    /// That secret, or the one this visit is setting.
    csrf_secret: String,
    /// The session cookie as sent (valid or not): what form tokens are bound to.
    session: Option<String>,
    /// The token this visit's forms carry.
    csrf_token: String,
    set_cookies: Vec<String>,
}

/// What stops a page: an error page or a redirect, ready to send.
pub type Stop = Box<Response>;

impl Visit {
    pub async fn new(request: &Request) -> Result<Visit, Stop> {
        let state = request.data::<AppState>().expect("AppState is attached to the site's routes").clone();
        let schema = request.data::<KettleSchema>().expect("the schema is attached to the site's routes").clone();
        let request_id = request.extensions().get::<RequestId>().map(|r| r.0.clone()).unwrap_or_default();
        let viewer = match identify(&state, request).await {
            Ok(viewer) => viewer,
            // Pages never carry bearer tokens; treat a bad one as signed out.
            Err(IdentifyError::InvalidBearer) => None,
            Err(IdentifyError::Internal(err)) => {
                err.log_if_internal();
                return Err(Box::new(static_error_page(StatusCode::INTERNAL_SERVER_ERROR, &request_id)));
            }
        };
        let jar: &CookieJar = request.cookie();
        let secure = state.config.is_https();
        let csrf_cookie =
            jar.get(csrf::cookie_name(secure)).map(|c| c.value_str().to_string()).filter(|t| csrf::is_well_formed(t));
        let session =
            jar.get(crate::accounts::credentials::session_cookie_name(secure)).map(|c| c.value_str().to_string());
        let (csrf_secret, set_cookies) = match &csrf_cookie {
            Some(secret) => (secret.clone(), vec![]),
            None => {
                let secret = csrf::new_token();
                let cookie = csrf::cookie(&secret, secure);
                (secret, vec![cookie])
            }
        };
        let csrf_token = csrf::form_token(&csrf_secret, session.as_deref());
        Ok(Visit {
            client_ip: ClientAddress::of(request),
            path: request.uri().path_and_query().map(|p| p.to_string()).unwrap_or_else(|| "/".into()),
            state,
            schema,
            viewer,
            request_id,
            csrf_cookie,
            csrf_secret,
            session,
            csrf_token,
            set_cookies,
        })
    }

    pub fn signed_in(&self) -> bool {
        self.viewer.is_some()
    }

    /// The signed-in member's id.
    pub fn member_id(&self) -> Option<i64> {
        self.viewer.as_ref().map(|v| v.member.id)
    }

    /// This browser's CSRF secret (from its cookie, or the one this visit is setting):
    /// only this browser holds it, so it can also bind a provider sign-in to it.
    pub fn browser_secret(&self) -> &str {
        &self.csrf_secret
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Stops the visit on an internal error: logged, and the error page quoting the
    /// request id.
    pub fn failed(&self, err: crate::error::AppError) -> Stop {
        err.log_if_internal();
        Box::new(static_error_page(StatusCode::INTERNAL_SERVER_ERROR, &self.request_id))
    }

    /// Sends a cookie with whatever this visit responds.
    pub fn set_cookie(&mut self, cookie: String) {
        self.set_cookies.push(cookie);
    }

    /// The page's own path and query, to come back to after signing in.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// A form post: reads the form and refuses it unless its CSRF token matches.
    pub async fn posted(request: &Request, body: poem::Body) -> Result<(Visit, Form), Stop> {
        let visit = Visit::new(request).await?;
        let form = Form::read(request, body, FORM_LIMIT).await?;
        visit.check_csrf(&form).await?;
        Ok((visit, form))
    }

    /// A post of a form that can hold an image (one that takes Markdown): read within
    /// [`UPLOAD_FORM_LIMIT`], and only from a signed-in member, so that no other form,
    /// and nobody signed out, can make a page read megabytes.
    pub async fn posted_with_image(request: &Request, body: poem::Body) -> Result<(Visit, Form), Stop> {
        let visit = Visit::new(request).await?;
        if !visit.signed_in() {
            return Err(Box::new(visit.sign_in_first()));
        }
        let form = Form::read(request, body, UPLOAD_FORM_LIMIT).await?;
        visit.check_csrf(&form).await?;
        Ok((visit, form))
    }

    /// Refuses a form post whose token does not match the visitor's cookie.
    async fn check_csrf(&self, form: &Form) -> Result<(), Stop> {
        let submitted = form.get(csrf::FIELD).unwrap_or("");
        match &self.csrf_cookie {
            Some(secret) if csrf::matches(secret, self.session.as_deref(), submitted) => Ok(()),
            _ => Err(Box::new(
                self.error_page(
                    StatusCode::FORBIDDEN,
                    "This form has expired",
                    "The page you sent the form from was too old, or came from another site. Go back, reload the page and try again.",
                )
                .await,
            )),
        }
    }

    async fn run(&self, document: &str, variables: Value) -> Result<async_graphql::Response, Stop> {
        self.run_with(document, variables, None).await
    }

    /// Runs a document, with `upload` as its `input.file` variable when there is one.
    async fn run_with(
        &self,
        document: &str,
        variables: Value,
        upload: Option<&UploadedFile>,
    ) -> Result<async_graphql::Response, Stop> {
        let Some(page_document) = super::page_document(document) else {
            tracing::error!(document, "a page's GraphQL document is missing");
            return Err(Box::new(static_error_page(StatusCode::INTERNAL_SERVER_ERROR, &self.request_id)));
        };
        let mut request = async_graphql::Request::new(page_document.source.clone());
        request.set_parsed_query(page_document.parsed.clone());
        let request = request
            .variables(async_graphql::Variables::from_json(variables))
            .data(RequestContext {
                viewer: self.viewer.clone(),
                client_ip: self.client_ip,
                request_id: self.request_id.clone(),
            })
            .data(Loaders::new(&self.state.db, self.member_id()));
        let mut request = request;
        if let Some(file) = upload {
            // async-graphql hands uploads to resolvers as files, as its multipart reader
            // would have written them.
            let content = tempfile::tempfile()
                .and_then(|mut f| {
                    use std::io::{Seek, Write};
                    f.write_all(&file.bytes)?;
                    f.rewind()?;
                    Ok(f)
                })
                .map_err(|err| {
                    self.failed(anyhow::anyhow!("could not hold an upload in a temporary file: {err}").into())
                })?;
            request.set_upload(
                "variables.input.file",
                async_graphql::UploadValue {
                    filename: file.filename.clone(),
                    content_type: file.content_type.clone(),
                    content,
                },
            );
        }
        Ok(self.schema.execute(request).await)
    }

    /// Runs a query document; errors become the matching error page.
    pub async fn query(&self, document: &str, variables: Value) -> Result<Value, Stop> {
        let response = self.run(document, variables).await?;
        if let Some(error) = response.errors.first() {
            let code = error.extensions.as_ref().and_then(|e| e.get("code")).map(|c| c.to_string()).unwrap_or_default();
            return Err(Box::new(match code.trim_matches('"') {
                // A malformed id in a URL is just a page that does not exist.
                "NOT_FOUND" | "BAD_USER_INPUT" => self.not_found().await,
                "FORBIDDEN" => {
                    self.error_page(StatusCode::FORBIDDEN, "You cannot see this page", "It belongs to someone else.")
                        .await
                }
                "UNAUTHENTICATED" => self.sign_in_first(),
                "RATE_LIMITED" => {
                    self.error_page(StatusCode::TOO_MANY_REQUESTS, "Too many requests", &error.message).await
                }
                "TIMEOUT" => {
                    self.error_page(StatusCode::SERVICE_UNAVAILABLE, "This page took too long", &error.message).await
                }
                _ => {
                    tracing::error!(document, error = %error.message, "a page's query failed");
                    static_error_page(StatusCode::INTERNAL_SERVER_ERROR, &self.request_id)
                }
            }));
        }
        Ok(response.data.into_json().unwrap_or(Value::Null))
    }

    /// Runs a mutation document and returns its payload (the value of the document's one
    /// root field). Cookies the mutation sets (signing in or out) go out with whatever
    /// this visit sends next.
    pub async fn mutate(&mut self, document: &str, variables: Value) -> Result<Mutation, Stop> {
        self.mutate_with(document, variables, None).await
    }

    /// [`Visit::mutate`] with a file from the form as the mutation's `input.file`.
    pub async fn mutate_with(
        &mut self,
        document: &str,
        variables: Value,
        upload: Option<&UploadedFile>,
    ) -> Result<Mutation, Stop> {
        let Some(field) = super::page_document(document).and_then(|d| d.mutation_field.as_deref()) else {
            tracing::error!(document, "a page's mutation document is missing or selects other than one mutation field");
            return Err(Box::new(static_error_page(StatusCode::INTERNAL_SERVER_ERROR, &self.request_id)));
        };
        let response = self.run_with(document, variables, upload).await?;
        for value in response.http_headers.get_all(header::SET_COOKIE) {
            if let Ok(text) = value.to_str() {
                self.set_cookies.push(text.to_string());
            }
        }
        if let Some(error) = response.errors.first() {
            let code = error.extensions.as_ref().and_then(|e| e.get("code")).map(|c| c.to_string()).unwrap_or_default();
            return match code.trim_matches('"') {
                "UNAUTHENTICATED" => Err(Box::new(self.sign_in_first())),
                "FORBIDDEN" => Err(Box::new(
                    self.error_page(StatusCode::FORBIDDEN, "You cannot do that", "Your account does not allow it.")
                        .await,
                )),
                // Text refused at the GraphQL boundary names its field: show it beside
                // the field, like any other problem with the form.
                "BAD_USER_INPUT" if error.extensions.as_ref().is_some_and(|e| e.get("field").is_some()) => {
                    let field = error.extensions.as_ref().and_then(|e| e.get("field")).cloned();
                    let field = field.and_then(|f| f.into_json().ok()).unwrap_or(Value::Null);
                    Ok(Mutation::Invalid(vec![json!({ "field": field, "message": error.message, "code": "INVALID" })]))
                }
                "RATE_LIMITED" | "BAD_USER_INPUT" | "TIMEOUT" => Ok(Mutation::Refused(error.message.clone())),
                _ => {
                    tracing::error!(document, error = %error.message, "a page's mutation failed");
                    Err(Box::new(static_error_page(StatusCode::INTERNAL_SERVER_ERROR, &self.request_id)))
                }
            };
        }
        let data = response.data.into_json().unwrap_or(Value::Null);
        let payload = data.get(field).cloned().unwrap_or(Value::Null);
        // Every mutation returns a payload; none without an error is a fault, never success.
        if payload.is_null() {
            tracing::error!(document, field, "a page's mutation returned no payload");
            return Err(Box::new(static_error_page(StatusCode::INTERNAL_SERVER_ERROR, &self.request_id)));
        }
        let errors = payload.get("userErrors").and_then(|e| e.as_array()).cloned().unwrap_or_default();
        if errors.is_empty() {
            Ok(Mutation::Done(payload))
        } else {
            Ok(Mutation::Invalid(errors))
        }
    }

    /// Renders `template` with `data` (a page document's result) and `extra` values.
    pub fn render(&self, status: StatusCode, template: &str, data: &Value, extra: Value) -> Response {
        match self.render_text(template, data, extra) {
            Some(html) => self.respond(status, html),
            None => static_error_page(StatusCode::INTERNAL_SERVER_ERROR, &self.request_id),
        }
    }

    /// Renders an Atom feed: no cookies, a short public cache lifetime.
    pub fn render_feed(&self, template: &str, data: &Value, extra: Value) -> Response {
        match self.render_text(template, data, extra) {
            Some(xml) => Response::builder()
                .content_type("application/atom+xml; charset=utf-8")
                .header(header::CACHE_CONTROL, "public, max-age=300")
                .body(xml),
            None => static_error_page(StatusCode::INTERNAL_SERVER_ERROR, &self.request_id),
        }
    }

    fn render_text(&self, template: &str, data: &Value, extra: Value) -> Option<String> {
        let time_zone =
            data.pointer("/viewer/timeZone").and_then(|z| z.as_str()).unwrap_or(crate::accounts::DEFAULT_TIME_ZONE);
        let mut context = json!({
            "data": data,
            "csrf_token": self.csrf_token,
            "path": self.path,
            "time_zone": time_zone,
            "request_id": self.request_id,
            // For links that must be absolute, such as `webcal:` subscriptions.
            "public_url": self.base_url(),
        });
        if let (Some(object), Value::Object(more)) = (context.as_object_mut(), extra) {
            object.extend(more);
        }
        match render_template(template, &context) {
            Ok(text) => Some(text),
            Err(err) => {
                tracing::error!(template, error = %format!("{err:#}"), "a template failed to render");
                None
            }
        }
    }

    /// The site's address as its users see it, without a trailing slash.
    pub fn base_url(&self) -> String {
        self.state.config.public_url.as_str().trim_end_matches('/').to_string()
    }

    fn respond(&self, status: StatusCode, html: String) -> Response {
        let mut response = Response::builder().status(status).content_type("text/html; charset=utf-8").body(html);
        page_headers(&mut response);
        self.add_cookies(&mut response);
        response
    }

    fn add_cookies(&self, response: &mut Response) {
        for cookie in &self.set_cookies {
            if let Ok(value) = HeaderValue::from_str(cookie) {
                response.headers_mut().append(header::SET_COOKIE, value);
            }
        }
    }

    /// A 303 to `location` (a path inside the site, or a provider's sign-in page), with
    /// any cookies set so far.
    pub fn redirect(&self, location: &str) -> Response {
        let mut response = Response::builder()
            .status(StatusCode::SEE_OTHER)
            .header(header::LOCATION, location)
            .header(header::CACHE_CONTROL, "no-store")
            .finish();
        self.add_cookies(&mut response);
        response
    }

    pub fn sign_in_first(&self) -> Response {
        self.redirect(&format!(
            "/sign-in?return_to={}",
            url::form_urlencoded::byte_serialize(self.path.as_bytes()).collect::<String>()
        ))
    }

    pub async fn error_page(&self, status: StatusCode, title: &str, message: &str) -> Response {
        let data = match self.run("viewer", json!({})).await {
            Ok(response) => response.data.into_json().unwrap_or(Value::Null),
            Err(_) => Value::Null,
        };
        self.render(
            status,
            "error.html",
            &data,
            json!({ "status": status.as_u16(), "title": title, "message": message }),
        )
    }

    pub async fn not_found(&self) -> Response {
        self.error_page(
            StatusCode::NOT_FOUND,
            "Page not found",
            "If you typed the web address, check it is correct. If you pasted it, check you copied the entire address.",
        )
        .await
    }
}

/// The outcome of a form's mutation.
pub enum Mutation {
    /// It worked; here is the payload.
    Done(Value),
    /// The input had problems: `userErrors`, each naming its field.
    Invalid(Vec<Value>),
    /// Refused as a whole (too many attempts, malformed input): one message.
    Refused(String),
}

/// A submitted form's fields.
pub struct Form {
    fields: Vec<(String, String)>,
    /// The file chosen in a form sent as `multipart/form-data`, if one was.
    file: Option<UploadedFile>,
}

/// A file sent with a form.
pub struct UploadedFile {
    pub filename: String,
    pub content_type: Option<String>,
    pub bytes: Vec<u8>,
}

impl Form {
    /// Reads a form sent URL-encoded (within [`FORM_LIMIT`]) or as `multipart/form-data`
    /// within `limit` (keeping at most one file: the first non-empty one).
    pub async fn read(request: &Request, body: poem::Body, limit: usize) -> Result<Form, Stop> {
        let too_large = |limit: usize| {
            Box::new(
                Response::builder()
                    .status(StatusCode::PAYLOAD_TOO_LARGE)
                    .content_type("text/plain; charset=utf-8")
                    .body(if limit == FORM_LIMIT {
                        "The form was too large to send.\n".to_string()
                    } else {
                        format!(
                            "The form was too large to send: an image may be at most {} MB. Go back and choose a smaller one.\n",
                            crate::uploads::processing::FILE_MAX / 1_000_000
                        )
                    }),
            )
        };
        let content_type = request.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
        let Ok(boundary) = multer::parse_boundary(content_type) else {
            let bytes = body.into_bytes_limit(FORM_LIMIT).await.map_err(|_| too_large(FORM_LIMIT))?;
            return Ok(Form { fields: url::form_urlencoded::parse(&bytes).into_owned().collect(), file: None });
        };
        let limits = multer::SizeLimit::new().whole_stream(limit as u64);
        let mut multipart = multer::Multipart::with_constraints(
            body.into_bytes_stream(),
            boundary,
            multer::Constraints::new().size_limit(limits),
        );
        let mut form = Form { fields: Vec::new(), file: None };
        let unreadable = |err: multer::Error| match err {
            multer::Error::StreamSizeExceeded { .. } | multer::Error::FieldSizeExceeded { .. } => too_large(limit),
            _ => Box::new(
                Response::builder()
                    .status(StatusCode::BAD_REQUEST)
                    .content_type("text/plain; charset=utf-8")
                    .body("The form could not be read. Go back and send it again.\n"),
            ),
        };
        while let Some(field) = multipart.next_field().await.map_err(unreadable)? {
            let name = field.name().unwrap_or_default().to_string();
            match field.file_name().map(str::to_string) {
                Some(filename) => {
                    let content_type = field.content_type().map(|m| m.to_string());
                    let bytes = field.bytes().await.map_err(unreadable)?;
                    if form.file.is_none() && !bytes.is_empty() {
                        form.file = Some(UploadedFile { filename, content_type, bytes: bytes.to_vec() });
                    }
                }
                None => {
                    let value = field.text().await.map_err(unreadable)?;
                    form.fields.push((name, value));
                }
            }
        }
        Ok(form)
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.fields.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    /// The file sent with the form, if any.
    pub fn file(&self) -> Option<&UploadedFile> {
        self.file.as_ref()
    }

    /// Every value sent under `name` (checkboxes), at most 50.
    pub fn all(&self, name: &str) -> Vec<String> {
        self.fields.iter().filter(|(k, _)| k == name).map(|(_, v)| v.clone()).take(50).collect()
    }

    /// A field's value, or "" when it was not sent.
    pub fn text(&self, name: &str) -> String {
        self.get(name).unwrap_or("").to_string()
    }
}

/// Only paths inside this site: `/settings`, never `//evil.example` or `https://…`.
pub fn safe_return_to(candidate: Option<&str>) -> Option<String> {
    let path = candidate?.trim();
    let inside = path.starts_with('/')
        && !path.starts_with("//")
        && !path.starts_with("/\\")
        && path.len() <= 512
        && !path.chars().any(|c| c.is_control() || c == '\\');
    inside.then(|| path.to_string())
}

fn page_headers(response: &mut Response) {
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CONTENT_SECURITY_POLICY));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
}

/// The last resort when something of ours is broken: no query, no template variables
/// that could fail, just the apology and the request id to quote.
pub fn static_error_page(status: StatusCode, request_id: &str) -> Response {
    let context =
        json!({ "status": status.as_u16(), "request_id": request_id, "data": {}, "time_zone": "Europe/London" });
    let html = render_template("problem.html", &context).unwrap_or_else(|_| {
        format!("<!doctype html><html lang=\"en\"><title>Sorry, there is a problem</title><h1>Sorry, there is a problem with the service</h1><p>Request id {request_id}</p></html>")
    });
    let mut response = Response::builder().status(status).content_type("text/html; charset=utf-8").body(html);
    page_headers(&mut response);
    response
}

/// Words written in capitals whatever an enum value's case: `NHS` reads "NHS", not "Nhs".
const ACRONYMS: [&str; 1] = ["NHS"];

/// An enum value as words: `TEMPLATE_OR_DOCUMENT` reads "Template or document", and an
/// acronym keeps its capitals.
fn label(value: &str) -> String {
    let words: Vec<String> = value
        .split('_')
        .enumerate()
        .map(|(i, word)| {
            if ACRONYMS.contains(&word) {
                return word.to_string();
            }
            let word = word.to_lowercase();
            let mut chars = word.chars();
            match chars.next() {
                Some(first) if i == 0 => first.to_uppercase().chain(chars).collect(),
                _ => word,
            }
        })
        .collect();
    words.join(" ")
}

fn environment() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_loader(|name| Ok(assets::text(&format!("templates/{name}"))));
    // Our own URL, built from a file name in a template: safe to leave unescaped.
    env.add_function("asset", |name: &str| minijinja::Value::from_safe_string(assets::url(name)));
    env.add_filter("datetime", |value: &str, zone: &str| format_instant(value, zone, text::DATE_TIME));
    env.add_filter("date", |value: &str, zone: &str| format_instant(value, zone, "%-d %B %Y"));
    // For a moment to plan around (a meetup, the next digest): the day's name is what
    // the reader checks.
    env.add_filter("clock", |value: &str, zone: &str| format_instant(value, zone, "%H:%M"));
    env.add_filter("day_datetime", |value: &str, zone: &str| format_instant(value, zone, text::DAY_DATE_TIME));
    env.add_filter("time_span", |start: &str, end: &str, zone: &str| time_span(start, end, zone));
    env.add_filter("node_path", super::node_path);
    env.add_filter("size", crate::uploads::size_for_people);
    // A wall-clock time with no zone (an event's own local time), as day_datetime writes
    // instants.
    env.add_filter("local_time", |value: &str| match value.parse::<jiff::civil::DateTime>() {
        Ok(time) => time.strftime(text::DAY_DATE_TIME).to_string(),
        Err(_) => value.to_string(),
    });
    env.add_filter("label", label);
    env.add_filter("full_stop", full_stop);
    // The number in a page address (`/comments/12/edit`) for a global id.
    env.add_filter("node_number", |id: &str| super::node_number(id).map(|n| n.to_string()).unwrap_or_default());
    env.add_filter("webcal", super::calendars::webcal);
    env.add_filter("urlencode_path", |value: &str| {
        url::form_urlencoded::byte_serialize(value.as_bytes()).collect::<String>()
    });
    env
}

fn render_template(name: &str, context: &Value) -> Result<String, minijinja::Error> {
    // Release builds keep one environment with its parsed templates; debug builds start
    // afresh each time so edits to web/templates show on reload.
    static ENVIRONMENT: LazyLock<Environment<'static>> = LazyLock::new(environment);
    if cfg!(debug_assertions) {
        environment().get_template(name)?.render(context)
    } else {
        ENVIRONMENT.get_template(name)?.render(context)
    }
}

/// Formats an RFC 3339 instant in a time zone ("4 March 2026 at 16:00").
fn format_instant(value: &str, zone: &str, format: &str) -> String {
    let Ok(timestamp) = value.parse::<jiff::Timestamp>() else { return value.to_string() };
    let zone = jiff::tz::TimeZone::get(zone).unwrap_or(jiff::tz::TimeZone::UTC);
    timestamp.to_zoned(zone).strftime(format).to_string()
}

/// A name that ends a sentence ("You have joined {{ name|full_stop }}"): one full stop,
/// not a second after "Ltd." or "Why?".
fn full_stop(value: &str) -> String {
    let value = value.trim_end();
    if value.ends_with(['.', '!', '?', '…']) {
        value.to_string()
    } else {
        format!("{value}.")
    }
}

/// When something runs, in a time zone: "Thursday 11 March 2027, 16:00 to 18:00", or
/// with both days when it ends on another.
fn time_span(start: &str, end: &str, zone: &str) -> String {
    let (Ok(from), Ok(to)) = (start.parse::<jiff::Timestamp>(), end.parse::<jiff::Timestamp>()) else {
        return format!("{start} to {end}");
    };
    let zone = jiff::tz::TimeZone::get(zone).unwrap_or(jiff::tz::TimeZone::UTC);
    let (from, to) = (from.to_zoned(zone.clone()), to.to_zoned(zone));
    if from.date() == to.date() {
        format!("{}, {} to {}", from.strftime("%A %-d %B %Y"), from.strftime("%H:%M"), to.strftime("%H:%M"))
    } else {
        format!("{} to {}", from.strftime(text::DAY_DATE_TIME), to.strftime(text::DAY_DATE_TIME))
    }
}

/// Every IANA time zone name, for the settings page's list.
pub fn time_zone_names() -> Vec<String> {
    let mut names: Vec<String> = jiff::tz::db()
        .available()
        .map(|name| name.as_str().to_string())
        .filter(|n| n.contains('/') && !n.starts_with("Etc/"))
        .collect();
    names.sort();
    names.dedup();
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_read_as_words_and_acronyms_keep_their_capitals() {
        assert_eq!(label("TEMPLATE_OR_DOCUMENT"), "Template or document");
        assert_eq!(label("NHS"), "NHS");
        assert_eq!(label("CENTRAL_GOVERNMENT"), "Central government");
        assert_eq!(label("IN_USE"), "In use");
        assert_eq!(label(""), "");
    }

    #[test]
    fn return_to_stays_inside_the_site() {
        assert_eq!(safe_return_to(Some("/settings?tab=tokens")).as_deref(), Some("/settings?tab=tokens"));
        for bad in [
            "//evil.example",
            "https://evil.example/",
            "/\\evil.example",
            "settings",
            "/a\nb",
            "javascript:alert(1)",
            "",
        ] {
            assert_eq!(safe_return_to(Some(bad)), None, "{bad:?}");
        }
        assert_eq!(safe_return_to(None), None);
    }

    #[test]
    fn instants_are_shown_in_the_viewers_zone_in_24_hour_time() {
        assert_eq!(format_instant("2026-07-01T15:00:00Z", "Europe/London", text::DATE_TIME), "1 July 2026 at 16:00");
        assert_eq!(format_instant("2026-01-01T15:00:00Z", "Europe/London", "%-d %B %Y"), "1 January 2026");
        assert_eq!(
            format_instant("2026-12-07T19:30:00Z", "Asia/Kolkata", text::DAY_DATE_TIME),
            "Tuesday 8 December 2026 at 01:00"
        );
        assert_eq!(format_instant("garbage", "Europe/London", "%Y"), "garbage");
    }

    #[test]
    fn sentences_end_with_one_full_stop() {
        assert_eq!(full_stop("TeaCamp North"), "TeaCamp North.");
        assert_eq!(full_stop("Bins Ltd."), "Bins Ltd.");
        assert_eq!(full_stop("Who knew? "), "Who knew?");
        assert_eq!(full_stop("Wait…"), "Wait…");
    }

    #[test]
    fn spans_name_the_day_once_unless_they_cross_midnight() {
        let span = |start, end| time_span(start, end, "Europe/London");
        assert_eq!(span("2027-03-11T16:00:00Z", "2027-03-11T18:30:00Z"), "Thursday 11 March 2027, 16:00 to 18:30");
        // From 23:00 to 01:30 (British Summer Time): two days.
        assert_eq!(
            span("2027-07-01T22:00:00Z", "2027-07-02T00:30:00Z"),
            "Thursday 1 July 2027 at 23:00 to Friday 2 July 2027 at 01:30"
        );
        assert_eq!(span("soon", "later"), "soon to later");
    }

    #[test]
    fn time_zones_are_listed() {
        let names = time_zone_names();
        assert!(names.contains(&"Europe/London".to_string()) && names.len() > 300, "{}", names.len());
    }
}
