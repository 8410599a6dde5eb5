//! A mock OAuth2 provider for the sign-in tests: a real HTTP server on 127.0.0.1:0 with an
//! authorisation endpoint that consents by itself, a token endpoint that checks client
//! credentials, single-use codes, the redirect URI and PKCE (S256) like a strict provider
//! would, and a user-info endpoint.
//!
//! Each test sets its knobs through [`MockProvider::set`]: the profile to hand out, a
//! declined consent, and the ways the token and user-info endpoints misbehave. What the
//! provider received is kept in [`Received`], so tests can tell that the PKCE check really
//! ran.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use base64::{
    engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD},
    Engine,
};
use poem::{
    handler,
    http::{header, HeaderMap, StatusCode},
    listener::{Acceptor, Listener, TcpListener},
    web::{Data, Form, Query},
    EndpointExt, IntoResponse, Response, Route, Server,
};
use rand::RngCore;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

pub const CLIENT_ID: &str = "kettle-test-client";
/// Distinctive, so a test can search logs and pages for it.
pub const CLIENT_SECRET: &str = "mock-secret-5c1d9e7a0b3f";

/// How long a code is good for.
const CODE_LIFETIME: Duration = Duration::from_secs(60);

/// What the token endpoint does with a request.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum TokenReply {
    /// Checks everything and issues a token.
    #[default]
    Normal,
    /// Refuses the code: 400 `{"error":"invalid_grant"}`.
    InvalidGrant,
    /// 200 with an HTML body.
    NotJson,
    /// 200 with JSON that has no `access_token`.
    NoAccessToken,
    /// 302 to another endpoint of this provider that would issue a valid token.
    Redirect,
    /// Sleeps 8 seconds, then issues a valid token.
    Slow,
}

/// What the user-info endpoint does with a request.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum UserinfoReply {
    #[default]
    Normal,
    /// 500 with a text body.
    ServerError,
    /// 200 with an HTML body.
    NotJson,
    /// The profile without its `sub` field.
    NoSubject,
}

/// The knobs.
#[derive(Clone, Debug)]
pub struct Behaviour {
    /// The user-info JSON for the next authorisations (each code keeps the profile it was
    /// issued with).
    pub profile: Value,
    /// Answer the authorisation request with `error=access_denied`.
    pub decline: bool,
    pub token: TokenReply,
    pub userinfo: UserinfoReply,
    /// When set, `/authorize` refuses any other redirect URI.
    pub redirect_uri: Option<String>,
}

impl Default for Behaviour {
    fn default() -> Self {
        Behaviour {
            profile: profile("subject-1", "someone@example.org", true, "Someone"),
            decline: false,
            token: TokenReply::Normal,
            userinfo: UserinfoReply::Normal,
            redirect_uri: None,
        }
    }
}

/// A user-info body in the usual OpenID Connect shape.
pub fn profile(sub: &str, email: &str, email_verified: bool, name: &str) -> Value {
    json!({ "sub": sub, "email": email, "email_verified": email_verified, "name": name })
}

/// What the provider was sent.
#[derive(Clone, Debug, Default)]
pub struct Received {
    /// The query of every `/authorize` request, in order.
    pub authorizations: Vec<HashMap<String, String>>,
    /// Every form posted to `/token`, in order.
    pub token_forms: Vec<HashMap<String, String>>,
    /// Token requests whose client credentials came in an HTTP Basic header.
    pub basic_auth: usize,
    /// Code exchanges that passed every check, the PKCE one included.
    pub exchanges_verified: usize,
    /// Why each refused exchange was refused.
    pub exchanges_refused: Vec<String>,
    /// `Authorization` headers sent to `/userinfo`.
    pub userinfo_requests: Vec<String>,
    /// Requests to where `/token` redirects to (should stay 0: clients must not follow).
    pub redirects_followed: usize,
}

struct Grant {
    challenge: String,
    redirect_uri: String,
    profile: Value,
    issued: Instant,
    used: bool,
}

#[derive(Default)]
struct State {
    behaviour: Behaviour,
    received: Received,
    codes: HashMap<String, Grant>,
    tokens: HashMap<String, Value>,
}

type Shared = Arc<Mutex<State>>;

/// A running mock provider; clones share it.
#[derive(Clone)]
pub struct MockProvider {
    /// `http://127.0.0.1:<port>`.
    pub url: String,
    state: Shared,
    stop: Arc<Mutex<Option<tokio::sync::oneshot::Sender<()>>>>,
}

impl MockProvider {
    pub async fn start() -> MockProvider {
        let acceptor = TcpListener::bind("127.0.0.1:0").into_acceptor().await.expect("the mock provider binds");
        let address = *acceptor.local_addr()[0].as_socket_addr().expect("a socket address");
        let state: Shared = Arc::default();
        let routes = Route::new()
            .at("/authorize", poem::get(authorize))
            .at("/token", poem::post(token))
            .at("/token-redirected", poem::get(token_redirected).post(token_redirected))
            .at("/userinfo", poem::get(userinfo))
            .data(state.clone());
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(Server::new_with_acceptor(acceptor).run_with_graceful_shutdown(
            routes,
            async move {
                let _ = rx.await;
            },
            Some(Duration::from_millis(100)),
        ));
        MockProvider { url: format!("http://{address}"), state, stop: Arc::new(Mutex::new(Some(tx))) }
    }

    pub fn endpoint(&self, path: &str) -> String {
        format!("{}{path}", self.url)
    }

    /// Changes the knobs.
    pub fn set(&self, change: impl FnOnce(&mut Behaviour)) {
        change(&mut self.state.lock().unwrap().behaviour);
    }

    pub fn set_profile(&self, profile: Value) {
        self.set(|b| b.profile = profile);
    }

    /// A copy of what it has received so far.
    pub fn received(&self) -> Received {
        self.state.lock().unwrap().received.clone()
    }

    /// The `KETTLE_OAUTH_<NAME>_…` variables for a provider served by this mock.
    pub fn env(&self, name: &str, label: &str) -> Vec<(String, String)> {
        let var = |setting: &str| format!("KETTLE_OAUTH_{name}_{setting}");
        let mut vars = vec![
            (var("CLIENT_ID"), CLIENT_ID.to_string()),
            (var("CLIENT_SECRET"), CLIENT_SECRET.to_string()),
            (var("AUTH_URL"), self.endpoint("/authorize")),
            (var("TOKEN_URL"), self.endpoint("/token")),
            (var("USERINFO_URL"), self.endpoint("/userinfo")),
        ];
        if !label.is_empty() {
            vars.push((var("LABEL"), label.to_string()));
        }
        vars
    }

    pub fn stop(&self) {
        if let Some(tx) = self.stop.lock().unwrap().take() {
            let _ = tx.send(());
        }
    }
}

/// `BASE64URL-NOPAD(SHA256(verifier))`, the S256 code challenge.
pub fn s256(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

fn random() -> String {
    let mut bytes = [0u8; 24];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

fn json_response(status: StatusCode, body: Value) -> Response {
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::CACHE_CONTROL, "no-store")
        .body(body.to_string())
}

fn oauth_error(error: &str, description: &str) -> Response {
    json_response(StatusCode::BAD_REQUEST, json!({ "error": error, "error_description": description }))
}

fn html(status: StatusCode, text: &str) -> Response {
    Response::builder().status(status).header(header::CONTENT_TYPE, "text/html; charset=utf-8").body(text.to_string())
}

#[handler]
fn authorize(Query(query): Query<HashMap<String, String>>, Data(state): Data<&Shared>) -> Response {
    let mut state = state.lock().unwrap();
    state.received.authorizations.push(query.clone());
    let get = |key: &str| query.get(key).map(String::as_str).unwrap_or("");
    // Problems with the client or the redirect URI are shown to the person, never sent back.
    if get("client_id") != CLIENT_ID {
        return html(StatusCode::BAD_REQUEST, "unknown client_id");
    }
    let redirect_uri = get("redirect_uri").to_string();
    let allowed = match &state.behaviour.redirect_uri {
        Some(expected) => &redirect_uri == expected,
        None => redirect_uri.starts_with("http://127.0.0.1:"),
    };
    if !allowed {
        return html(StatusCode::BAD_REQUEST, "redirect_uri is not registered");
    }
    if get("response_type") != "code" {
        return html(StatusCode::BAD_REQUEST, "response_type must be code");
    }
    let challenge = get("code_challenge").to_string();
    if get("code_challenge_method") != "S256" || challenge.len() < 43 {
        return html(StatusCode::BAD_REQUEST, "PKCE with S256 is required");
    }
    let mut target = url::Url::parse(&redirect_uri).expect("an absolute redirect URI");
    if state.behaviour.decline {
        target.query_pairs_mut().append_pair("error", "access_denied").append_pair("state", get("state"));
    } else {
        let code = random();
        let profile = state.behaviour.profile.clone();
        state.codes.insert(
            code.clone(),
            Grant { challenge, redirect_uri: redirect_uri.clone(), profile, issued: Instant::now(), used: false },
        );
        target.query_pairs_mut().append_pair("code", &code).append_pair("state", get("state"));
    }
    Response::builder().status(StatusCode::SEE_OTHER).header(header::LOCATION, target.as_str()).finish()
}

/// Client credentials from an HTTP Basic header (RFC 6749 2.3.1: each part form-encoded),
/// else from the body.
fn client_credentials(headers: &HeaderMap, form: &HashMap<String, String>) -> (Option<(String, String)>, bool) {
    if let Some(value) = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()) {
        if let Some(encoded) = value.strip_prefix("Basic ") {
            let decoded = STANDARD.decode(encoded.trim()).ok().and_then(|b| String::from_utf8(b).ok());
            let pair = decoded.and_then(|text| {
                let (id, secret) = text.split_once(':')?;
                let decode = |s: &str| {
                    url::form_urlencoded::parse(format!("x={s}").as_bytes()).next().map(|(_, v)| v.into_owned())
                };
                Some((decode(id)?, decode(secret)?))
            });
            return (pair, true);
        }
    }
    match (form.get("client_id"), form.get("client_secret")) {
        (Some(id), Some(secret)) => (Some((id.clone(), secret.clone())), false),
        _ => (None, false),
    }
}

#[handler]
async fn token(headers: &HeaderMap, Form(form): Form<HashMap<String, String>>, Data(state): Data<&Shared>) -> Response {
    let reply = {
        let mut guard = state.lock().unwrap();
        let state = &mut *guard;
        state.received.token_forms.push(form.clone());
        let (credentials, basic) = client_credentials(headers, &form);
        if basic {
            state.received.basic_auth += 1;
        }
        let behaviour = state.behaviour.clone();
        let code = form.get("code").cloned().unwrap_or_default();
        let grant = state.codes.get_mut(&code);
        let refusal = if credentials != Some((CLIENT_ID.to_string(), CLIENT_SECRET.to_string())) {
            Some(("invalid_client", "bad client credentials"))
        } else if form.get("grant_type").map(String::as_str) != Some("authorization_code") {
            Some(("unsupported_grant_type", "grant_type must be authorization_code"))
        } else if behaviour.token == TokenReply::InvalidGrant {
            if let Some(grant) = grant {
                grant.used = true;
            }
            Some(("invalid_grant", "refused on purpose"))
        } else {
            match grant {
                None => Some(("invalid_grant", "unknown code")),
                Some(grant) if grant.used => Some(("invalid_grant", "code already used")),
                Some(grant) => {
                    grant.used = true;
                    if grant.issued.elapsed() > CODE_LIFETIME {
                        Some(("invalid_grant", "code expired"))
                    } else if form.get("redirect_uri") != Some(&grant.redirect_uri) {
                        Some(("invalid_grant", "redirect_uri does not match"))
                    } else if s256(form.get("code_verifier").map(String::as_str).unwrap_or("")) != grant.challenge {
                        Some(("invalid_grant", "code_verifier does not match the code_challenge"))
                    } else {
                        None
                    }
                }
            }
        };
        match refusal {
            Some((error, description)) => {
                state.received.exchanges_refused.push(description.to_string());
                if error == "invalid_client" {
                    return json_response(StatusCode::UNAUTHORIZED, json!({ "error": error }));
                }
                return oauth_error(error, description);
            }
            None => {
                state.received.exchanges_verified += 1;
                let profile = state.codes[&code].profile.clone();
                let access_token = random();
                state.tokens.insert(access_token.clone(), profile);
                (behaviour.token, access_token)
            }
        }
    };
    let (behaviour, access_token) = reply;
    let issued = json!({ "access_token": access_token, "token_type": "Bearer", "expires_in": 3600 });
    match behaviour {
        TokenReply::Normal | TokenReply::InvalidGrant => json_response(StatusCode::OK, issued),
        TokenReply::Slow => {
            tokio::time::sleep(Duration::from_secs(8)).await;
            json_response(StatusCode::OK, issued)
        }
        TokenReply::NotJson => html(StatusCode::OK, "<html><body>Welcome to the provider!</body></html>"),
        TokenReply::NoAccessToken => {
            json_response(StatusCode::OK, json!({ "token_type": "Bearer", "expires_in": 3600 }))
        }
        TokenReply::Redirect => Response::builder()
            .status(StatusCode::FOUND)
            .header(header::LOCATION, format!("/token-redirected?access_token={access_token}"))
            .finish(),
    }
}

/// Where `TokenReply::Redirect` points: it would issue the token, so following the
/// redirect would sign the person in.
#[handler]
fn token_redirected(Query(query): Query<HashMap<String, String>>, Data(state): Data<&Shared>) -> Response {
    state.lock().unwrap().received.redirects_followed += 1;
    let access_token = query.get("access_token").cloned().unwrap_or_default();
    json_response(StatusCode::OK, json!({ "access_token": access_token, "token_type": "Bearer", "expires_in": 3600 }))
}

#[handler]
fn userinfo(headers: &HeaderMap, Data(state): Data<&Shared>) -> Response {
    let mut state = state.lock().unwrap();
    let authorization = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    state.received.userinfo_requests.push(authorization.clone());
    let profile = authorization.strip_prefix("Bearer ").and_then(|bearer| state.tokens.get(bearer.trim())).cloned();
    let Some(mut profile) = profile else {
        return Response::builder()
            .status(StatusCode::UNAUTHORIZED)
            .header(header::WWW_AUTHENTICATE, "Bearer error=\"invalid_token\"")
            .finish();
    };
    match state.behaviour.userinfo {
        UserinfoReply::Normal => json_response(StatusCode::OK, profile),
        UserinfoReply::ServerError => html(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error").into_response(),
        UserinfoReply::NotJson => html(StatusCode::OK, "<html><body>Your profile</body></html>"),
        UserinfoReply::NoSubject => {
            if let Some(object) = profile.as_object_mut() {
                object.remove("sub");
            }
            json_response(StatusCode::OK, profile)
        }
    }
}
