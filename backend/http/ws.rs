//! `/graphql/ws`: GraphQL over WebSocket, in the graphql-transport-ws protocol (what the
//! `graphql-ws` client speaks), for live notifications.
//!
//! The protocol, as served here:
//! - the client sends `connection_init` within [`INIT_TIMEOUT`] (else close 4408), once
//!   (a second is 4429), and the server answers `connection_ack`. Who the client is comes
//!   from the session cookie on the upgrade request (only from a page of this site: a
//!   cookie sent from another origin is ignored), from an `Authorization: Bearer` header
//!   on it, or from `connection_init`'s payload `{"authorization": "Bearer …"}`; a token
//!   that is not valid is 4403. A client that is not signed in is acknowledged, and its
//!   subscriptions fail with `UNAUTHENTICATED`;
//! - `subscribe` (before the ack: 4401; with an id in use: 4409) runs a subscription or a
//!   query through the same schema, extension and limits as `/graphql` (mutations are
//!   refused: send them to `/graphql`); results come as `next`, then `complete`; a
//!   request refused before it runs (syntax, validation, limits) is one `error`;
//! - `complete` from the client stops one; `ping` is answered with `pong`.
//!
//! Every connection is bounded, so that one cannot cost the server more than its share:
//! a message is at most [`MAX_MESSAGE`], a connection holds at most [`MAX_OPERATIONS`]
//! operations, a member at most [`MEMBER_CONNECTIONS`] connections on an instance (and a
//! client address [`ANONYMOUS_CONNECTIONS`] not signed in), and opening one costs
//! [`CONNECTION_COST`] against the address's GraphQL budget. What waits to be sent is
//! bounded by [`SEND_BUFFER`]: a client that reads too slowly to drain it — or the
//! subscription buffer behind it — is disconnected (1008), as is one that does not
//! answer the server's `ping`, sent every [`PING_INTERVAL`], by the next one. The
//! WebSocket's own buffers are kept small (see [`socket_config`]), so an idle
//! subscriber costs a few KiB.
//!
//! Close codes a client should reconnect after, resuming `notificationAdded` from the
//! id of the last notification it received: 1001 (the server is restarting), 1008 (too
//! slow, or silent), 1012 (live delivery restarted after an interruption).

use std::{
    collections::VecDeque,
    future::{poll_fn, Future},
    net::IpAddr,
    sync::Arc,
    task::{ready, Context, Poll},
    time::Duration,
};

use async_graphql::{
    parser::types::{DocumentOperations, OperationType},
    ServerError, Value,
};
use futures_util::{stream::BoxStream, SinkExt, StreamExt};
use poem::{
    handler,
    http::{header, HeaderValue, Method, StatusCode},
    web::Data,
    Request, Response,
};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use tokio_tungstenite::{
    tungstenite::{
        handshake::derive_accept_key,
        protocol::{frame::coding::CloseCode, CloseFrame, Role, WebSocketConfig},
        Message,
    },
    WebSocketStream,
};

use super::{ClientAddress, RequestId};
use crate::{
    accounts::{credentials, Identity},
    app::AppState,
    bus::{Admission, CloseReason, Holder},
    db::Db,
    error::INTERNAL_MESSAGE,
    graphql::{KettleSchema, Loaders, RequestContext},
    limits::Limit,
    metrics::Metrics,
};

pub const PROTOCOL: &str = "graphql-transport-ws";
/// How long a client has to send `connection_init`.
pub const INIT_TIMEOUT: Duration = Duration::from_secs(10);
/// How often the server pings; a client that has sent nothing (no `pong`) by the next
/// ping is disconnected.
pub const PING_INTERVAL: Duration = Duration::from_secs(15);
/// The largest message a client may send.
pub const MAX_MESSAGE: usize = 64 * 1024;
/// Operations one connection may run at once.
pub const MAX_OPERATIONS: usize = 10;
/// Messages, and bytes, waiting to be written to one connection.
pub const SEND_BUFFER: usize = 32;
pub const SEND_BUFFER_BYTES: usize = 256 * 1024;
/// Open connections on one instance: per member, per address not signed in, in all.
pub const MEMBER_CONNECTIONS: usize = 16;
pub const ANONYMOUS_CONNECTIONS: usize = 64;
pub const MAX_CONNECTIONS: usize = 50_000;
/// What opening a connection costs against the address's GraphQL budget
/// (`graphql_cost_client`), the way a small query does.
pub const CONNECTION_COST: u64 = 10;
/// A connection's credential is checked again this often, so signing out (or revoking
/// a token) ends the live connections it opened.
const REAUTHENTICATE_EVERY: u32 = 20;
/// Subscription ids are the client's; this bounds them.
const MAX_ID: usize = 64;
/// How long closing (flushing what is queued, then the close frame) may take.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(2);

/// Small buffers: tungstenite's defaults (128 KiB to read, 128 KiB to write) would cost
/// ten thousand idle subscribers over 2 GiB. Reading grows its buffer for a larger
/// message and writing sends each message at once (no write batching: a notification
/// should leave now), with a hard cap in case the socket stops taking data.
pub fn socket_config() -> WebSocketConfig {
    let mut config = WebSocketConfig::default();
    config.read_buffer_size = 256;
    config.write_buffer_size = 0;
    config.max_write_buffer_size = SEND_BUFFER_BYTES + MAX_MESSAGE;
    config.max_message_size = Some(MAX_MESSAGE);
    config.max_frame_size = Some(MAX_MESSAGE);
    config
}

type Socket = WebSocketStream<poem::Upgraded>;

/// The WebSocket handshake (RFC 6455), done here rather than with poem's extractor so
/// that nothing of the upgrade request outlives it (the extractor keeps its header
/// values, and with them the buffer they were read into, for the connection's life).
#[handler]
pub async fn upgrade(request: &Request, Data(state): Data<&AppState>, Data(schema): Data<&KettleSchema>) -> Response {
    let Some(key) = handshake_key(request) else {
        let mut response = refusal(
            StatusCode::UPGRADE_REQUIRED,
            "This address speaks GraphQL over WebSocket (graphql-transport-ws); send other requests to /graphql.",
        );
        response.headers_mut().insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        return response;
    };
    let client_ip = ClientAddress::of(request);
    let request_id = request.extensions().get::<RequestId>().map(|r| r.0.clone()).unwrap_or_default();
    if let Some(address) = client_ip {
        if let Err(err) = state.limiter.check(Limit::GraphqlCostClient, &address.to_string(), CONNECTION_COST).await {
            return too_many(&err.message());
        }
    }
    let credential = match upgrade_credential(request, state) {
        Ok(credential) => credential,
        Err(()) => {
            let mut response = refusal(
                StatusCode::UNAUTHORIZED,
                "The access token is not valid: it may have expired or been revoked.",
            );
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer error=\"invalid_token\""));
            return response;
        }
    };
    let viewer = match &credential {
        Some((token, from_header)) => match credentials::authenticate(&state.db, token.expose_secret()).await {
            Ok(Some(identity)) => Some(identity),
            // A stale cookie just means signed out; a bad token is refused.
            Ok(None) if !from_header => None,
            Ok(None) => return refusal(StatusCode::UNAUTHORIZED, "The access token is not valid."),
            Err(err) => {
                err.log_if_internal();
                return refusal(StatusCode::INTERNAL_SERVER_ERROR, INTERNAL_MESSAGE);
            }
        },
        None => None,
    };
    let hub = state.bus.hub();
    let admission = match &viewer {
        Some(identity) => hub.admit(Holder::Member(identity.member.id), MEMBER_CONNECTIONS, MAX_CONNECTIONS),
        None => hub.admit(Holder::Anonymous(client_ip), ANONYMOUS_CONNECTIONS, MAX_CONNECTIONS),
    };
    let Some(admission) = admission else {
        return if hub.connections() >= MAX_CONNECTIONS {
            refusal(
                StatusCode::SERVICE_UNAVAILABLE,
                "This server has as many live connections as it takes; try another.",
            )
        } else {
            too_many("Too many live connections from one member or address; close some first.")
        };
    };
    let Ok(upgrading) = request.take_upgrade() else {
        return refusal(StatusCode::BAD_REQUEST, "This connection cannot be upgraded.");
    };
    let speaks_protocol = request
        .headers()
        .get_all(header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|p| p.trim() == PROTOCOL);
    let connection = Connection {
        db: state.db.clone(),
        metrics: state.metrics.clone(),
        schema: schema.clone(),
        credential: if viewer.is_some() { credential.map(|(token, _)| token) } else { None },
        viewer,
        client_ip,
        request_id,
        admission,
        initialised: false,
    };
    tokio::spawn(async move {
        let Ok(upgraded) = upgrading.await else { return };
        let socket = WebSocketStream::from_raw_socket(upgraded, Role::Server, Some(socket_config())).await;
        connection.serve(socket, speaks_protocol).await;
    });
    let mut response = Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header(header::CONNECTION, "upgrade")
        .header(header::UPGRADE, "websocket")
        .header(header::SEC_WEBSOCKET_ACCEPT, derive_accept_key(key.as_bytes()));
    if speaks_protocol {
        response = response.header(header::SEC_WEBSOCKET_PROTOCOL, PROTOCOL);
    }
    response.finish()
}

/// The `Sec-WebSocket-Key` of a valid WebSocket upgrade request, or `None`.
fn handshake_key(request: &Request) -> Option<String> {
    let headers = request.headers();
    let has = |name: header::HeaderName, token: &str| {
        headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|v| v.trim().eq_ignore_ascii_case(token))
    };
    let valid = request.method() == Method::GET
        && has(header::UPGRADE, "websocket")
        && has(header::CONNECTION, "upgrade")
        && headers.get(header::SEC_WEBSOCKET_VERSION).is_some_and(|v| v == "13");
    let key = headers.get(header::SEC_WEBSOCKET_KEY)?.to_str().ok()?;
    (valid && !key.is_empty() && key.len() <= 64).then(|| key.to_string())
}

/// The credential on the upgrade request: a bearer token (`true`), or the session cookie
/// when the request comes from this site's own pages (`false`). `Err` for a malformed
/// `Authorization` header.
fn upgrade_credential(request: &Request, state: &AppState) -> Result<Option<(SecretString, bool)>, ()> {
    if let Some(value) = request.headers().get(header::AUTHORIZATION) {
        let token = value.to_str().ok().and_then(bearer).ok_or(())?;
        return Ok(Some((SecretString::from(token), true)));
    }
    // Browsers send cookies with a WebSocket handshake from any page, and the same-origin
    // policy does not apply to WebSockets: only the Origin header tells this site's pages
    // from someone else's.
    let origin = request.headers().get(header::ORIGIN).and_then(|v| v.to_str().ok());
    let own_origin = state.config.public_url.origin().ascii_serialization();
    if origin.is_some_and(|o| o != own_origin) {
        return Ok(None);
    }
    let name = credentials::session_cookie_name(state.config.is_https());
    Ok(request.cookie().get(name).map(|c| (SecretString::from(c.value_str().to_string()), false)))
}

fn bearer(value: &str) -> Option<&str> {
    value.strip_prefix("Bearer ").or_else(|| value.strip_prefix("bearer ")).map(str::trim).filter(|t| !t.is_empty())
}

fn refusal(status: StatusCode, message: &str) -> Response {
    Response::builder().status(status).content_type("text/plain; charset=utf-8").body(format!("{message}\n"))
}

fn too_many(message: &str) -> Response {
    let mut response = refusal(StatusCode::TOO_MANY_REQUESTS, message);
    response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("10"));
    response
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum ClientMessage {
    ConnectionInit {
        #[serde(default)]
        payload: Option<serde_json::Value>,
    },
    Ping {},
    Pong {},
    Subscribe {
        id: String,
        payload: SubscribePayload,
    },
    Complete {
        id: String,
    },
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SubscribePayload {
    query: String,
    #[serde(default)]
    variables: Option<serde_json::Value>,
    #[serde(default)]
    operation_name: Option<String>,
}

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum ServerMessage<'a> {
    ConnectionAck,
    Ping,
    Pong,
    Next { id: &'a str, payload: &'a async_graphql::Response },
    Error { id: &'a str, payload: &'a [ServerError] },
    Complete { id: &'a str },
}

impl ServerMessage<'_> {
    fn text(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// Why the server closes a connection: a WebSocket close code and a short reason (at
/// most 123 bytes, as a close frame allows).
struct Close(u16, String);

impl Close {
    fn new(code: u16, reason: impl Into<String>) -> Close {
        let mut reason = reason.into();
        while reason.len() > 123 {
            reason.pop();
        }
        Close(code, reason)
    }

    fn from_hub(reason: CloseReason) -> Close {
        match reason {
            CloseReason::TooSlow => Close::new(1008, "Too slow: reconnect and resume from the last id you received"),
            CloseReason::Resync => {
                Close::new(1012, "Live delivery restarted: reconnect and resume from the last id you received")
            }
            CloseReason::ShuttingDown => Close::new(1001, "The server is restarting"),
        }
    }
}

/// What waits to be written to the socket, bounded by [`SEND_BUFFER`].
#[derive(Default)]
struct Outbox {
    queue: VecDeque<String>,
    bytes: usize,
    /// Something was handed to the socket and not yet flushed.
    unflushed: bool,
}

impl Outbox {
    fn has_room(&self) -> bool {
        self.queue.len() < SEND_BUFFER && self.bytes < SEND_BUFFER_BYTES
    }

    /// Queues a message; `false` when there is no room (the client is too slow).
    fn push(&mut self, text: String) -> bool {
        if !self.has_room() {
            return false;
        }
        self.bytes += text.len();
        self.queue.push_back(text);
        true
    }

    fn pending(&self) -> bool {
        !self.queue.is_empty() || self.unflushed
    }

    /// Writes what is queued for as long as the socket takes it. Safe to drop between
    /// polls: a message leaves the queue only as the socket accepts it.
    fn poll_write(&mut self, socket: &mut Socket, cx: &mut Context<'_>) -> Poll<Result<(), ()>> {
        while !self.queue.is_empty() {
            ready!(socket.poll_ready_unpin(cx)).map_err(|_| ())?;
            let Some(text) = self.queue.pop_front() else { break };
            self.bytes -= text.len();
            socket.start_send_unpin(Message::text(text)).map_err(|_| ())?;
            self.unflushed = true;
        }
        if self.unflushed {
            ready!(socket.poll_flush_unpin(cx)).map_err(|_| ())?;
            self.unflushed = false;
        }
        if self.queue.capacity() > SEND_BUFFER {
            // A burst is over: an idle connection keeps no large buffer.
            self.queue = VecDeque::new();
        }
        Poll::Ready(Ok(()))
    }
}

struct Operation {
    id: String,
    stream: BoxStream<'static, async_graphql::Response>,
    /// Whether a response was sent for it yet.
    started: bool,
}

/// The connection's running operations, polled in turn so that none starves the others.
#[derive(Default)]
struct Operations {
    list: Vec<Operation>,
    turn: usize,
}

/// One response of an operation (`None`: it finished), and whether it is its first.
struct Step {
    id: String,
    first: bool,
    response: Option<async_graphql::Response>,
}

impl Operations {
    fn poll_step(&mut self, cx: &mut Context<'_>) -> Poll<Step> {
        let count = self.list.len();
        for k in 0..count {
            let i = (self.turn + k) % count;
            match self.list[i].stream.poll_next_unpin(cx) {
                Poll::Ready(Some(response)) => {
                    self.turn = i + 1;
                    let operation = &mut self.list[i];
                    let first = !std::mem::replace(&mut operation.started, true);
                    return Poll::Ready(Step { id: operation.id.clone(), first, response: Some(response) });
                }
                Poll::Ready(None) => {
                    let operation = self.list.swap_remove(i);
                    return Poll::Ready(Step { id: operation.id, first: !operation.started, response: None });
                }
                Poll::Pending => {}
            }
        }
        Poll::Pending
    }

    fn contains(&self, id: &str) -> bool {
        self.list.iter().any(|o| o.id == id)
    }

    fn remove(&mut self, id: &str) {
        self.list.retain(|o| o.id != id);
    }
}

/// What woke the connection's loop.
enum Event {
    Close(Close),
    /// The client went away (or its socket failed).
    Gone,
    Incoming(Message),
    /// A message that could not be read (too large, not UTF-8, not a WebSocket frame).
    Unreadable(String),
    Operation(Box<Step>),
    Tick,
}

struct Connection {
    db: Db,
    metrics: Arc<Metrics>,
    schema: KettleSchema,
    viewer: Option<Identity>,
    credential: Option<SecretString>,
    client_ip: Option<IpAddr>,
    request_id: String,
    /// Counts the connection against its member (or address), and carries the signal the
    /// hub raises to close it.
    admission: Admission,
    initialised: bool,
}

impl Connection {
    /// Runs the connection: one task, one loop that waits on everything at once (the
    /// hub's signal, the socket both ways, the operations, the timers) without a
    /// separate task or future per source, so an idle connection is one small task.
    async fn serve(mut self, mut socket: Socket, speaks_protocol: bool) {
        let mut outbox = Outbox::default();
        if !speaks_protocol {
            Box::pin(close(&mut socket, &mut outbox, Close::new(4406, "Subprotocol not acceptable"))).await;
            return;
        }
        let signal = self.admission.signal().clone();
        let raised = signal.raised();
        tokio::pin!(raised);
        let init_deadline = tokio::time::sleep(INIT_TIMEOUT);
        tokio::pin!(init_deadline);
        let mut ping = tokio::time::interval_at(tokio::time::Instant::now() + PING_INTERVAL, PING_INTERVAL);
        ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut operations = Operations::default();
        let mut heard = true;
        let mut ticks = 0u32;
        let end = loop {
            let initialised = self.initialised;
            let event = poll_fn(|cx| {
                if let Poll::Ready(reason) = raised.as_mut().poll(cx) {
                    return Poll::Ready(Event::Close(Close::from_hub(reason)));
                }
                if outbox.pending() && matches!(outbox.poll_write(&mut socket, cx), Poll::Ready(Err(()))) {
                    return Poll::Ready(Event::Gone);
                }
                match socket.poll_next_unpin(cx) {
                    Poll::Ready(Some(Ok(message))) => return Poll::Ready(Event::Incoming(message)),
                    Poll::Ready(Some(Err(err))) => return Poll::Ready(Event::Unreadable(err.to_string())),
                    Poll::Ready(None) => return Poll::Ready(Event::Gone),
                    Poll::Pending => {}
                }
                // An operation's next response is taken only when there is room for it.
                if outbox.has_room() && !operations.list.is_empty() {
                    if let Poll::Ready(step) = operations.poll_step(cx) {
                        return Poll::Ready(Event::Operation(Box::new(step)));
                    }
                }
                if !initialised && init_deadline.as_mut().poll(cx).is_ready() {
                    return Poll::Ready(Event::Close(Close::new(4408, "Connection initialisation timeout")));
                }
                if ping.poll_tick(cx).is_ready() {
                    return Poll::Ready(Event::Tick);
                }
                Poll::Pending
            })
            .await;
            let outcome = match event {
                Event::Close(close) => Err(Some(close)),
                Event::Gone => Err(None),
                Event::Unreadable(error) => {
                    Err(Some(Close::new(1009, format!("The message could not be read: {error}"))))
                }
                // Boxed, like every wait that is rare for an idle connection: the task then
                // keeps room only for the loop above.
                Event::Incoming(message) => {
                    heard = true;
                    Box::pin(self.receive(message, &mut outbox, &mut operations)).await
                }
                Event::Operation(step) => {
                    self.respond(*step, &mut outbox, &mut operations);
                    Ok(())
                }
                Event::Tick => {
                    ticks = ticks.wrapping_add(1);
                    Box::pin(self.tick(std::mem::replace(&mut heard, false), ticks, &mut outbox)).await
                }
            };
            match outcome {
                Ok(()) => {}
                Err(Some(close)) => break close,
                Err(None) => {
                    // The client closed (or vanished): complete the closing handshake.
                    let _ = Box::pin(tokio::time::timeout(CLOSE_TIMEOUT, socket.close(None))).await;
                    return;
                }
            }
        };
        drop(operations);
        tracing::debug!(request_id = %self.request_id, code = end.0, reason = %end.1, "closing a live connection");
        Box::pin(close(&mut socket, &mut outbox, end)).await;
    }

    /// Handles one message from the client. `Err(Some)` closes the connection with that
    /// code; `Err(None)` ends it without a word (the client closed it).
    async fn receive(
        &mut self,
        message: Message,
        outbox: &mut Outbox,
        operations: &mut Operations,
    ) -> Result<(), Option<Close>> {
        let text = match message {
            Message::Text(text) => text,
            Message::Close(_) => return Err(None),
            // Answered by the WebSocket layer itself.
            Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => return Ok(()),
            Message::Binary(_) => return Err(Some(Close::new(4400, "Messages are JSON text"))),
        };
        let message: ClientMessage = serde_json::from_str(text.as_str())
            .map_err(|err| Some(Close::new(4400, format!("Invalid message received: {err}"))))?;
        match message {
            ClientMessage::ConnectionInit { payload } => {
                if self.initialised {
                    return Err(Some(Close::new(4429, "Too many initialisation requests")));
                }
                self.initialise(payload).await.map_err(Some)?;
                self.initialised = true;
                send(outbox, ServerMessage::ConnectionAck.text())
            }
            ClientMessage::Ping {} => send(outbox, ServerMessage::Pong.text()),
            ClientMessage::Pong {} => Ok(()),
            ClientMessage::Subscribe { id, payload } => {
                if !self.initialised {
                    return Err(Some(Close::new(4401, "Unauthorized")));
                }
                if id.is_empty() || id.len() > MAX_ID {
                    return Err(Some(Close::new(4400, format!("An id is 1 to {MAX_ID} characters"))));
                }
                if operations.contains(&id) {
                    return Err(Some(Close::new(4409, format!("Subscriber for {id} already exists"))));
                }
                self.start(id, payload, outbox, operations)
            }
            ClientMessage::Complete { id } => {
                operations.remove(&id);
                Ok(())
            }
        }
    }

    /// `connection_init`: a bearer token in its payload signs the connection in.
    async fn initialise(&mut self, payload: Option<serde_json::Value>) -> Result<(), Close> {
        let authorization = payload
            .as_ref()
            .and_then(|p| p.as_object())
            .and_then(|fields| fields.iter().find(|(name, _)| name.eq_ignore_ascii_case("authorization")))
            .map(|(_, value)| value);
        let Some(authorization) = authorization else { return Ok(()) };
        let forbidden = || Close::new(4403, "Forbidden: the authorization is not a valid bearer token");
        let token = authorization.as_str().and_then(bearer).ok_or_else(forbidden)?;
        // Boxed: the connection's task would otherwise keep room for this rare wait.
        let identity = match Box::pin(credentials::authenticate(&self.db, token)).await {
            Ok(Some(identity)) => identity,
            Ok(None) => return Err(forbidden()),
            Err(err) => {
                err.log_if_internal();
                return Err(Close::new(4500, "Internal server error"));
            }
        };
        if !self.admission.change_holder(Holder::Member(identity.member.id), MEMBER_CONNECTIONS) {
            return Err(Close::new(1008, "Too many live connections for one member"));
        }
        self.credential = Some(SecretString::from(token.to_string()));
        self.viewer = Some(identity);
        Ok(())
    }

    fn start(
        &self,
        id: String,
        payload: SubscribePayload,
        outbox: &mut Outbox,
        operations: &mut Operations,
    ) -> Result<(), Option<Close>> {
        let refuse = |outbox: &mut Outbox, message: &str, code: &str| {
            let error = coded(message, code);
            send(outbox, ServerMessage::Error { id: &id, payload: &[error] }.text())
        };
        if operations.list.len() >= MAX_OPERATIONS {
            return refuse(
                outbox,
                &format!("A connection may run at most {MAX_OPERATIONS} operations at once."),
                "QUERY_TOO_COMPLEX",
            );
        }
        let mut request = async_graphql::Request::new(payload.query);
        if let Some(name) = payload.operation_name {
            request = request.operation_name(name);
        }
        if let Some(variables) = payload.variables {
            request = request.variables(async_graphql::Variables::from_json(variables));
        }
        let operation_name = request.operation_name.clone();
        let is_mutation = match request.parsed_query() {
            Ok(document) => match &document.operations {
                DocumentOperations::Single(op) => op.node.ty == OperationType::Mutation,
                DocumentOperations::Multiple(ops) => match operation_name.as_deref() {
                    Some(name) => ops.iter().any(|(n, op)| n.as_str() == name && op.node.ty == OperationType::Mutation),
                    None => ops.values().any(|op| op.node.ty == OperationType::Mutation),
                },
            },
            // The schema reports it, with the other refusals before execution.
            Err(_) => false,
        };
        if is_mutation {
            return refuse(
                outbox,
                "Send mutations to /graphql (POST); this connection is for subscriptions.",
                "BAD_USER_INPUT",
            );
        }
        let context = RequestContext {
            viewer: self.viewer.clone(),
            client_ip: self.client_ip,
            request_id: self.request_id.clone(),
        };
        let viewer_id = self.viewer.as_ref().map(|v| v.member.id);
        let request =
            request.data(context).data(Loaders::new(&self.db, viewer_id)).data(self.admission.signal().clone());
        let stream = self.schema.execute_stream(request);
        operations.list.push(Operation { id, stream, started: false });
        Ok(())
    }

    /// Sends one response of an operation, or its end.
    fn respond(&self, step: Step, outbox: &mut Outbox, operations: &mut Operations) {
        let Some(mut response) = step.response else {
            // Its queue has room: the operation was only polled when it had.
            let _ = send(outbox, ServerMessage::Complete { id: &step.id }.text());
            return;
        };
        let failed_before_execution = step.first
            && response.data == Value::Null
            && !response.errors.is_empty()
            && response.errors.iter().all(|e| e.path.is_empty());
        if step.first {
            let outcome = if response.errors.is_empty() { "ok" } else { "error" };
            self.metrics.observe_graphql("subscription", outcome);
        }
        for error in &mut response.errors {
            super::graphql::label_error(error, &self.request_id);
        }
        let text = if failed_before_execution {
            operations.remove(&step.id);
            ServerMessage::Error { id: &step.id, payload: &response.errors }.text()
        } else {
            ServerMessage::Next { id: &step.id, payload: &response }.text()
        };
        let _ = send(outbox, text);
    }

    /// Every [`PING_INTERVAL`]: a client silent since the last ping is gone; the others are
    /// pinged, and now and then their credential checked again.
    async fn tick(&mut self, heard: bool, ticks: u32, outbox: &mut Outbox) -> Result<(), Option<Close>> {
        if !heard {
            return Err(Some(Close::new(1008, "No pong in time")));
        }
        send(outbox, ServerMessage::Ping.text())?;
        if ticks % REAUTHENTICATE_EVERY == 0 {
            if let Some(token) = &self.credential {
                match Box::pin(credentials::authenticate(&self.db, token.expose_secret())).await {
                    Ok(Some(_)) => {}
                    Ok(None) => return Err(Some(Close::new(4403, "Forbidden: the session or token has ended"))),
                    // The database is unwell: keep the connection, check again next time.
                    Err(err) => err.log_if_internal(),
                }
            }
        }
        Ok(())
    }
}

/// Queues a message, or closes the connection when the client has let too much pile up.
fn send(outbox: &mut Outbox, text: String) -> Result<(), Option<Close>> {
    if outbox.push(text) {
        Ok(())
    } else {
        Err(Some(Close::from_hub(CloseReason::TooSlow)))
    }
}

fn coded(message: &str, code: &str) -> ServerError {
    let mut error = ServerError::new(message, None);
    error.extensions.get_or_insert_with(Default::default).set("code", code);
    error
}

/// Sends what is queued and a close frame, within [`CLOSE_TIMEOUT`]; a client that does
/// not read is simply cut off.
async fn close(socket: &mut Socket, outbox: &mut Outbox, close: Close) {
    let Close(code, reason) = close;
    let frame = CloseFrame { code: CloseCode::from(code), reason: reason.into() };
    let _ = tokio::time::timeout(CLOSE_TIMEOUT, async {
        poll_fn(|cx| outbox.poll_write(socket, cx)).await?;
        socket.close(Some(frame)).await.map_err(|_| ())
    })
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_messages_parse_and_unknown_ones_do_not() {
        let init: ClientMessage =
            serde_json::from_str(r#"{"type":"connection_init","payload":{"authorization":"Bearer x"}}"#).unwrap();
        assert!(matches!(init, ClientMessage::ConnectionInit { payload: Some(_) }));
        assert!(matches!(serde_json::from_str(r#"{"type":"ping"}"#).unwrap(), ClientMessage::Ping {}));
        let subscribe: ClientMessage =
            serde_json::from_str(r#"{"id":"1","type":"subscribe","payload":{"query":"subscription { x }"}}"#).unwrap();
        assert!(matches!(subscribe, ClientMessage::Subscribe { id, .. } if id == "1"));
        assert!(serde_json::from_str::<ClientMessage>(r#"{"type":"start","id":"1"}"#).is_err());
        assert!(serde_json::from_str::<ClientMessage>(r#"{"type":"subscribe","id":"1"}"#).is_err());
    }

    #[test]
    fn server_messages_are_the_protocols() {
        assert_eq!(ServerMessage::ConnectionAck.text(), r#"{"type":"connection_ack"}"#);
        assert_eq!(ServerMessage::Ping.text(), r#"{"type":"ping"}"#);
        assert_eq!(ServerMessage::Complete { id: "a" }.text(), r#"{"type":"complete","id":"a"}"#);
        let response = async_graphql::Response::new(Value::from_json(serde_json::json!({ "x": 1 })).unwrap());
        assert_eq!(
            ServerMessage::Next { id: "a", payload: &response }.text(),
            r#"{"type":"next","id":"a","payload":{"data":{"x":1}}}"#
        );
    }

    #[test]
    fn close_reasons_fit_a_close_frame() {
        let close = Close::new(4409, format!("Subscriber for {} already exists", "é".repeat(MAX_ID)));
        assert!(close.1.len() <= 123, "{}", close.1.len());
        for reason in [CloseReason::TooSlow, CloseReason::Resync, CloseReason::ShuttingDown] {
            assert!(Close::from_hub(reason).1.len() <= 123);
        }
    }

    #[test]
    fn the_outbox_is_bounded() {
        let mut outbox = Outbox::default();
        for _ in 0..SEND_BUFFER {
            assert!(outbox.push("x".into()));
        }
        assert!(!outbox.push("x".into()));
        assert!(send(&mut outbox, "x".into()).is_err());
    }
}
