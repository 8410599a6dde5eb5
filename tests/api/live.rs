//! Live delivery: `notificationAdded` over `/graphql/ws` (graphql-transport-ws), spoken by
//! a real WebSocket client: who may subscribe, the protocol's rules and bounds, replay
//! after a cursor with no gap or duplicate, two instances sharing Redis, a client too
//! slow to read, and Redis going away while notifications are written.
//!
//! Notifications come from the real dispatcher (a member comments on another's case
//! study), except in the slow-client scenario, which writes a burst of rows and publishes
//! them on the bus itself to fill the connection quickly.

use std::{
    collections::HashSet,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use futures_util::{SinkExt, StreamExt};
use kettle::{bus::Delivery, graphql::relay};
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio_tungstenite::{
    tungstenite::{
        self,
        client::IntoClientRequest,
        http::{HeaderName, HeaderValue},
        protocol::WebSocketConfig,
        Message,
    },
    WebSocketStream,
};

use crate::{
    case_studies::{admin, case_study, create_case_study, create_topic, PUBLISH},
    comments::post,
    scenarios,
    support::{Backend, Client, Peer, Scenario, TestApp},
};

pub fn scenarios() -> Vec<(&'static str, Scenario)> {
    scenarios![
        live_authenticates_by_cookie_or_bearer_and_refuses_strangers,
        live_enforces_the_protocol_and_its_bounds,
        live_answers_pings_and_drops_clients_that_never_pong,
        live_replays_after_a_cursor_then_goes_live_without_gap_or_duplicate,
        live_reaches_a_client_on_another_instance,
        live_disconnects_a_client_too_slow_to_read_and_it_catches_up,
        live_survives_redis_going_away_and_loses_nothing,
        live_connections_are_told_when_the_server_stops,
    ]
}

const ADDED: &str = "subscription($after: ID) { notificationAdded(after: $after) { id kind summary path } }";
/// How long any one expected message may take.
const PATIENCE: Duration = Duration::from_secs(20);

/// What a client got from the server.
#[derive(Debug)]
enum Frame {
    Json(Value),
    /// The connection closed: with the server's code and reason, or without a close
    /// frame (cut off).
    Closed(Option<(u16, String)>),
}

impl Frame {
    fn json(self) -> Value {
        match self {
            Frame::Json(value) => value,
            Frame::Closed(close) => panic!("expected a message, the connection closed: {close:?}"),
        }
    }

    fn close_code(&self) -> Option<u16> {
        match self {
            Frame::Closed(Some((code, _))) => Some(*code),
            _ => None,
        }
    }
}

/// A graphql-transport-ws client.
struct LiveClient {
    socket: WebSocketStream<TcpStream>,
    /// Answer the server's pings (as `graphql-ws` does); off to play a silent client.
    answer_pings: bool,
    pings: usize,
}

impl LiveClient {
    /// Opens `/graphql/ws` with the protocol and these extra headers; `Err` with the HTTP
    /// status when the server refuses the upgrade.
    async fn connect(app: &str, headers: &[(&str, &str)]) -> Result<LiveClient, u16> {
        let stream = TcpStream::connect(authority(app)).await.expect("the server listens");
        Self::connect_over(stream, app, headers, true).await
    }

    async fn connect_over(
        stream: TcpStream,
        app: &str,
        headers: &[(&str, &str)],
        with_protocol: bool,
    ) -> Result<LiveClient, u16> {
        let mut request = format!("ws://{}/graphql/ws", authority(app)).into_client_request().unwrap();
        if with_protocol {
            request.headers_mut().insert("sec-websocket-protocol", HeaderValue::from_static("graphql-transport-ws"));
        }
        for (name, value) in headers {
            request
                .headers_mut()
                .insert(HeaderName::from_bytes(name.as_bytes()).unwrap(), HeaderValue::from_str(value).unwrap());
        }
        let config = WebSocketConfig::default().max_message_size(None).max_frame_size(None);
        match tokio_tungstenite::client_async_with_config(request, stream, Some(config)).await {
            Ok((socket, _)) => Ok(LiveClient { socket, answer_pings: true, pings: 0 }),
            Err(tungstenite::Error::Http(response)) => Err(response.status().as_u16()),
            Err(err) => panic!("the WebSocket handshake failed: {err}"),
        }
    }

    /// Connects, signs in with a bearer token in `connection_init`, and waits for the ack.
    async fn signed_in(app: &str, token: &str) -> LiveClient {
        let mut client = Self::connect(app, &[]).await.expect("the upgrade is accepted");
        client.init(json!({ "authorization": format!("Bearer {token}") })).await;
        client
    }

    async fn send(&mut self, message: Value) {
        self.socket.send(Message::text(message.to_string())).await.expect("the message is sent");
    }

    async fn init(&mut self, payload: Value) {
        self.send(json!({ "type": "connection_init", "payload": payload })).await;
        let ack = self.recv().await.json();
        assert_eq!(ack["type"], "connection_ack", "{ack}");
    }

    async fn subscribe(&mut self, id: &str, query: &str, variables: Value) {
        self.send(json!({ "id": id, "type": "subscribe", "payload": { "query": query, "variables": variables } }))
            .await;
    }

    /// The next message within [`PATIENCE`]; server pings are answered (and counted).
    async fn recv(&mut self) -> Frame {
        self.recv_within(PATIENCE).await.unwrap_or_else(|| panic!("nothing arrived within {PATIENCE:?}"))
    }

    async fn recv_within(&mut self, within: Duration) -> Option<Frame> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let message = match tokio::time::timeout_at(deadline, self.socket.next()).await {
                Err(_) => return None,
                Ok(None) | Ok(Some(Err(_))) => return Some(Frame::Closed(None)),
                Ok(Some(Ok(message))) => message,
            };
            match message {
                Message::Text(text) => {
                    let value: Value = serde_json::from_str(text.as_str()).expect("JSON from the server");
                    if value["type"] == "ping" {
                        self.pings += 1;
                        if self.answer_pings {
                            self.send(json!({ "type": "pong" })).await;
                        }
                        continue;
                    }
                    return Some(Frame::Json(value));
                }
                Message::Close(frame) => {
                    return Some(Frame::Closed(frame.map(|f| (u16::from(f.code), f.reason.to_string()))))
                }
                _ => continue,
            }
        }
    }

    /// The next `next` payload's notification, skipping nothing else: anything but a
    /// `next` fails the test.
    async fn notification(&mut self) -> Value {
        let message = self.recv().await.json();
        assert_eq!(message["type"], "next", "{message}");
        assert!(message["payload"].get("errors").is_none(), "{message}");
        message["payload"]["data"]["notificationAdded"].clone()
    }
}

fn authority(app: &str) -> &str {
    app.trim_start_matches("http://").trim_end_matches('/')
}

/// Polls `condition` until it holds, or fails the test after `within`.
async fn eventually<F, Fut>(within: Duration, what: &str, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + within;
    while !condition().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

async fn readyz(base: &str) -> Value {
    let response = reqwest::get(format!("{base}/readyz")).await.expect("readyz answers");
    assert_eq!(response.status(), 200, "readiness does not depend on Redis");
    response.json().await.unwrap()
}

async fn wait_for_live_delivery(base: &str, state: &str) {
    eventually(Duration::from_secs(30), &format!("liveDelivery {state:?}"), || async {
        readyz(base).await["liveDelivery"] == state
    })
    .await;
}

/// A case study by Ada in a topic; every comment Grace posts on it notifies Ada.
struct Story {
    ada: Client,
    ada_id: i64,
    grace: Client,
    case_study: String,
}

impl Story {
    async fn new(app: &TestApp) -> Story {
        let curator = admin(app, "curator@example.org", "Curator").await;
        let topic = create_topic(&curator, "Waste and recycling").await;
        let ada = app.member("ada@example.org", "Ada").await;
        let grace = app.member("grace@example.org", "Grace").await;
        let case_study =
            create_case_study(&ada, case_study("Bin reminders", &[&topic])).await["id"].as_str().unwrap().to_string();
        ada.data(PUBLISH, json!({ "id": case_study })).await;
        let ada_id = relay::parse_global_id_of("Member", &ada.viewer_id().await.unwrap()).unwrap();
        Story { ada, ada_id, grace, case_study }
    }

    async fn comment(&self, body: &str) {
        post(&self.grace, &self.case_study, None, body).await;
    }

    /// Ada's inbox notification ids, oldest first, as the database has them.
    async fn inbox(&self, app: &TestApp) -> Vec<i64> {
        sqlx::query_scalar::<_, i64>(
            "SELECT id FROM notifications WHERE member_id = $1 AND channel = 'inbox' ORDER BY id",
        )
        .bind(self.ada_id)
        .fetch_all(&app.state().db.pool)
        .await
        .unwrap()
    }

    async fn wait_for_inbox(&self, app: &TestApp, count: usize) -> Vec<i64> {
        eventually(PATIENCE, &format!("{count} notifications for Ada"), || async {
            self.inbox(app).await.len() >= count
        })
        .await;
        self.inbox(app).await
    }
}

fn number(notification: &Value) -> i64 {
    relay::parse_global_id_of("Notification", notification["id"].as_str().expect("an id")).unwrap()
}

fn cursor(id: i64) -> String {
    relay::global_id("Notification", id).to_string()
}

async fn wait_for_subscriptions(app: &TestApp, count: usize) {
    let hub = app.state().bus.hub().clone();
    eventually(PATIENCE, &format!("{count} live subscriptions"), || {
        let hub = hub.clone();
        async move { hub.subscriptions() == count }
    })
    .await;
}

async fn live_authenticates_by_cookie_or_bearer_and_refuses_strangers(app: TestApp) {
    let expected = match app.backend() {
        Backend::Postgres { redis_url: Some(_), .. } => "redis: connected",
        _ => "in-process",
    };
    wait_for_live_delivery(&app.url(""), expected).await;
    let story = Story::new(&app).await;
    let base = app.url("");
    let cookie = format!("kettle_session={}", story.ada.token());

    // A page of this site: the session cookie, with the site's own Origin.
    let mut by_cookie = LiveClient::connect(&base, &[("cookie", &cookie), ("origin", &base)]).await.unwrap();
    by_cookie.init(json!({})).await;
    by_cookie.subscribe("1", ADDED, json!({})).await;
    // An API client: a bearer token in connection_init.
    let mut by_token = LiveClient::signed_in(&base, story.ada.token()).await;
    by_token.subscribe("a", ADDED, json!({})).await;
    // Or as a header on the upgrade.
    let bearer = format!("Bearer {}", story.ada.token());
    let mut by_header = LiveClient::connect(&base, &[("authorization", &bearer)]).await.unwrap();
    by_header.init(json!({})).await;
    by_header.subscribe("h", ADDED, json!({})).await;
    wait_for_subscriptions(&app, 3).await;

    story.comment("Did residents like the reminders?").await;
    let first = by_cookie.notification().await;
    assert_eq!(first["kind"], "COMMENTED_ON_YOURS", "{first}");
    assert!(first["summary"].as_str().unwrap().contains("Grace"), "{first}");
    assert_eq!(by_token.notification().await, first);
    assert_eq!(by_header.notification().await, first);
    assert_eq!(story.inbox(&app).await, vec![number(&first)]);

    // Nobody: acknowledged, but the subscription is refused.
    let mut stranger = LiveClient::connect(&base, &[]).await.unwrap();
    stranger.init(json!({})).await;
    stranger.subscribe("s", ADDED, json!({})).await;
    let refused = stranger.recv().await.json();
    assert_eq!(refused["type"], "next", "{refused}");
    assert_eq!(refused["payload"]["errors"][0]["extensions"]["code"], "UNAUTHENTICATED", "{refused}");
    assert_eq!(stranger.recv().await.json(), json!({ "type": "complete", "id": "s" }));

    // A cookie sent by another site's page (cross-site WebSocket hijacking) counts for
    // nothing.
    let mut hijack =
        LiveClient::connect(&base, &[("cookie", &cookie), ("origin", "https://attacker.example")]).await.unwrap();
    hijack.init(json!({})).await;
    hijack.subscribe("x", ADDED, json!({})).await;
    let refused = hijack.recv().await.json();
    assert_eq!(refused["payload"]["errors"][0]["extensions"]["code"], "UNAUTHENTICATED", "{refused}");

    // A token that signs nobody in: 4403 in connection_init, 401 on the upgrade.
    let mut forged = LiveClient::connect(&base, &[]).await.unwrap();
    forged.send(json!({ "type": "connection_init", "payload": { "authorization": "Bearer kses_forged" } })).await;
    assert_eq!(forged.recv().await.close_code(), Some(4403));
    assert_eq!(LiveClient::connect(&base, &[("authorization", "Bearer kpat_forged")]).await.err(), Some(401));

    // Signing out ends what the session may see: a new subscription is refused.
    story.ada.data("mutation { signOut { signedOut } }", json!({})).await;
    let mut after_sign_out = LiveClient::connect(&base, &[("cookie", &cookie), ("origin", &base)]).await.unwrap();
    after_sign_out.init(json!({})).await;
    after_sign_out.subscribe("z", ADDED, json!({})).await;
    let refused = after_sign_out.recv().await.json();
    assert_eq!(refused["payload"]["errors"][0]["extensions"]["code"], "UNAUTHENTICATED", "{refused}");
}

async fn live_enforces_the_protocol_and_its_bounds(app: TestApp) {
    let base = app.url("");
    let ada = app.member("ada@example.org", "Ada").await;

    // Not a WebSocket at all.
    let plain = reqwest::get(app.url("/graphql/ws")).await.unwrap();
    assert_eq!(plain.status(), 426);
    // Another subprotocol.
    let stream = TcpStream::connect(authority(&base)).await.unwrap();
    let mut other = LiveClient::connect_over(stream, &base, &[], false).await.unwrap();
    assert_eq!(other.recv().await.close_code(), Some(4406));

    let mut early = LiveClient::connect(&base, &[]).await.unwrap();
    early.subscribe("1", ADDED, json!({})).await;
    assert_eq!(early.recv().await.close_code(), Some(4401), "subscribing before connection_init");

    let mut twice = LiveClient::signed_in(&base, ada.token()).await;
    twice.send(json!({ "type": "connection_init" })).await;
    assert_eq!(twice.recv().await.close_code(), Some(4429));

    let mut garbled = LiveClient::connect(&base, &[]).await.unwrap();
    garbled.send(json!({ "type": "start", "id": "1" })).await;
    assert_eq!(garbled.recv().await.close_code(), Some(4400));

    let mut huge = LiveClient::signed_in(&base, ada.token()).await;
    huge.send(json!({ "type": "ping", "payload": { "x": "x".repeat(70 * 1024) } })).await;
    assert!(matches!(huge.recv().await, Frame::Closed(_)), "a message over 64 KiB closes the connection");

    let mut client = LiveClient::signed_in(&base, ada.token()).await;
    client.send(json!({ "type": "ping" })).await;
    assert_eq!(client.recv().await.json(), json!({ "type": "pong" }));
    // A query runs once, then completes.
    client.subscribe("q", "{ viewer { handle } }", json!({})).await;
    assert_eq!(
        client.recv().await.json(),
        json!({ "type": "next", "id": "q", "payload": { "data": { "viewer": { "handle": "ada" } } } })
    );
    assert_eq!(client.recv().await.json(), json!({ "type": "complete", "id": "q" }));
    // A request refused before it runs is one `error`.
    client.subscribe("bad", "subscription { notificationAdded { nope } }", json!({})).await;
    let error = client.recv().await.json();
    assert_eq!((error["type"].as_str(), error["id"].as_str()), (Some("error"), Some("bad")), "{error}");
    assert_eq!(error["payload"][0]["extensions"]["code"], "BAD_USER_INPUT", "{error}");
    // So is a mutation: they go to /graphql.
    client.subscribe("m", "mutation { signOut { signedOut } }", json!({})).await;
    let error = client.recv().await.json();
    assert_eq!(error["type"], "error", "{error}");
    assert!(ada.viewer_id().await.is_some(), "the mutation did not run");
    // The same limits as /graphql: one root field for a subscription.
    client
        .subscribe("two", "subscription { a: notificationAdded { id } b: notificationAdded { id } }", json!({}))
        .await;
    let error = client.recv().await.json();
    assert_eq!(error["payload"][0]["extensions"]["code"], "QUERY_TOO_COMPLEX", "{error}");
    // At most ten at once.
    for i in 0..10 {
        client.subscribe(&format!("s{i}"), ADDED, json!({})).await;
    }
    wait_for_subscriptions(&app, 10).await;
    client.subscribe("s10", ADDED, json!({})).await;
    let error = client.recv().await.json();
    assert_eq!((error["type"].as_str(), error["id"].as_str()), (Some("error"), Some("s10")), "{error}");
    // Completing one makes room, and leaves the hub.
    client.send(json!({ "type": "complete", "id": "s0" })).await;
    wait_for_subscriptions(&app, 9).await;
    client.subscribe("s1", ADDED, json!({})).await;
    assert_eq!(client.recv().await.close_code(), Some(4409), "an id in use");
    wait_for_subscriptions(&app, 0).await;

    // Nothing sent at all: closed once the initialisation time is up.
    let mut silent = LiveClient::connect(&base, &[]).await.unwrap();
    let frame = silent.recv_within(Duration::from_secs(15)).await.expect("closed within the timeout");
    assert_eq!(frame.close_code(), Some(4408));
    drop((other, early, twice, garbled, huge, client, silent));
    let hub = app.state().bus.hub().clone();
    eventually(PATIENCE, "every connection counted out", || {
        let hub = hub.clone();
        async move { hub.connections() == 0 }
    })
    .await;
}

async fn live_answers_pings_and_drops_clients_that_never_pong(app: TestApp) {
    let base = app.url("");
    let ada = app.member("ada@example.org", "Ada").await;
    let lively = LiveClient::signed_in(&base, ada.token()).await;
    let mut silent = LiveClient::signed_in(&base, ada.token()).await;
    silent.answer_pings = false;
    // The lively one reads (and so answers pings) all along.
    let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
    let lively = tokio::spawn(async move {
        let mut lively = lively;
        tokio::select! {
            _ = &mut stopped => lively,
            frame = lively.recv_within(Duration::from_secs(60)) => panic!("the lively client got {frame:?}"),
        }
    });
    // The server pings every 15 seconds and closes a connection that has not answered
    // (said anything) by the next ping.
    let closed = silent.recv_within(Duration::from_secs(40)).await.expect("the silent client is closed");
    assert_eq!(closed.close_code(), Some(1008), "{closed:?}");
    assert_eq!(silent.pings, 1, "closed at the ping after the one it ignored");
    tokio::time::sleep(Duration::from_millis(200)).await;
    stop.send(()).unwrap();
    let mut lively = lively.await.unwrap();
    assert!(lively.pings >= 2, "pinged {} times", lively.pings);
    lively.send(json!({ "type": "ping", "payload": { "at": 1 } })).await;
    assert_eq!(lively.recv().await.json(), json!({ "type": "pong" }), "and still open");
}

async fn live_replays_after_a_cursor_then_goes_live_without_gap_or_duplicate(app: TestApp) {
    let story = Story::new(&app).await;
    let base = app.url("");
    for i in 0..3 {
        story.comment(&format!("Question {i}")).await;
    }
    let earlier = story.wait_for_inbox(&app, 3).await;

    // While a client subscribes after the first, more arrive: the replay and the live
    // stream overlap, and the client must see each once, in order.
    let writer = {
        let grace = story.grace.clone();
        let case_study = story.case_study.clone();
        tokio::spawn(async move {
            for i in 0..12 {
                post(&grace, &case_study, None, &format!("More {i}")).await;
            }
        })
    };
    let mut client = LiveClient::signed_in(&base, story.ada.token()).await;
    client.subscribe("1", ADDED, json!({ "after": cursor(earlier[0]) })).await;
    let mut received = Vec::new();
    for _ in 0..2 {
        received.push(number(&client.notification().await));
    }
    assert_eq!(received, earlier[1..], "the replay comes first, oldest first");
    writer.await.unwrap();
    let all = story.wait_for_inbox(&app, 15).await;
    while received.len() < all.len() - 1 {
        received.push(number(&client.notification().await));
    }
    assert_eq!(received, all[1..], "every notification after the cursor, once, in order");
    assert!(client.recv_within(Duration::from_millis(500)).await.is_none(), "and nothing more: {received:?}");

    // Reconnecting from the last one replays nothing, and new ones still come.
    let mut again = LiveClient::signed_in(&base, story.ada.token()).await;
    again.subscribe("2", ADDED, json!({ "after": cursor(*all.last().unwrap()) })).await;
    wait_for_subscriptions(&app, 2).await;
    story.comment("One more").await;
    let newest = number(&again.notification().await);
    assert_eq!(number(&client.notification().await), newest);
    assert_eq!(story.inbox(&app).await.last(), Some(&newest));
    // A cursor of another type is refused.
    again.subscribe("3", ADDED, json!({ "after": relay::global_id("Member", 1).to_string() })).await;
    let refused = again.recv().await.json();
    assert_eq!(refused["payload"]["errors"][0]["extensions"]["code"], "BAD_USER_INPUT", "{refused}");
}

/// A `redis-server` of the test's own, on a free port, killed when dropped.
struct RedisServer {
    port: u16,
    child: Option<tokio::process::Child>,
    _dir: tempfile::TempDir,
}

impl RedisServer {
    async fn start() -> RedisServer {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let mut server = RedisServer { port, child: None, _dir: tempfile::tempdir().unwrap() };
        server.restart().await;
        server
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Starts it (again) on the same port, and waits until it answers.
    async fn restart(&mut self) {
        let child = tokio::process::Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .current_dir(self._dir.path())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("redis-server starts (is it installed?)");
        self.child = Some(child);
        let client = redis::Client::open(self.url()).unwrap();
        eventually(Duration::from_secs(10), "redis-server to answer", || async {
            match client.get_multiplexed_async_connection().await {
                Ok(mut connection) => redis::cmd("PING").query_async::<String>(&mut connection).await.is_ok(),
                Err(_) => false,
            }
        })
        .await;
    }

    async fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().await.expect("redis-server is killed");
        }
    }
}

/// An app whose instances share Redis: the backend's own, or (on SQLite, which runs
/// without one) a `redis-server` the test starts.
async fn app_with_redis(app: &TestApp) -> (TestApp, Option<RedisServer>) {
    if let Backend::Postgres { redis_url: Some(_), .. } = app.backend() {
        return (app.clone(), None);
    }
    let redis = RedisServer::start().await;
    let shared = TestApp::spawn_with(app.backend(), &[("KETTLE_REDIS_URL", &redis.url())]).await;
    (shared, Some(redis))
}

async fn live_reaches_a_client_on_another_instance(app: TestApp) {
    let (a, redis) = app_with_redis(&app).await;
    let b = Peer::start(&a).await;
    wait_for_live_delivery(&a.url(""), "redis: connected").await;
    wait_for_live_delivery(&b.url(""), "redis: connected").await;
    let story = Story::new(&a).await;
    let mut on_b = LiveClient::signed_in(&b.url(""), story.ada.token()).await;
    on_b.subscribe("1", ADDED, json!({ "after": cursor(0) })).await;
    // The comment goes through instance A (the client's requests all go there).
    story.comment("Posted through A").await;
    let received = on_b.notification().await;
    assert_eq!(received["kind"], "COMMENTED_ON_YOURS", "{received}");
    assert_eq!(story.inbox(&a).await, vec![number(&received)]);
    story.comment("And another").await;
    let second = on_b.notification().await;
    assert_eq!(story.inbox(&a).await, vec![number(&received), number(&second)]);
    b.stop().await;
    if redis.is_some() {
        a.finish().await;
    }
}

async fn live_disconnects_a_client_too_slow_to_read_and_it_catches_up(app: TestApp) {
    let ada = app.member("ada@example.org", "Ada").await;
    let ada_id = relay::parse_global_id_of("Member", &ada.viewer_id().await.unwrap()).unwrap();
    let base = app.url("");
    // A client that reads nothing, with a small receive buffer, so the server's side
    // fills after a few hundred kilobytes.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let stream = socket.connect(authority(&base).parse().unwrap()).await.unwrap();
    let mut slow = LiveClient::connect_over(stream, &base, &[], true).await.unwrap();
    slow.init(json!({ "authorization": format!("Bearer {}", ada.token()) })).await;
    slow.subscribe("1", ADDED, json!({ "after": cursor(0) })).await;
    wait_for_subscriptions(&app, 1).await;

    // Notifications with long summaries, written and published in bursts the way the
    // dispatcher does, until the server gives up on the client.
    let hub = app.state().bus.hub().clone();
    let db = app.state().db.clone();
    let summary = "A long summary. ".repeat(256);
    let mut written = 0;
    let mut newest = 0;
    while hub.subscriptions() > 0 {
        assert!(written < 4000, "the slow client was never disconnected");
        let mut tx = db.pool.begin().await.unwrap();
        for _ in 0..20 {
            written += 1;
            sqlx::query(
                "INSERT INTO notifications (member_id, event_id, kind, channel, subject_type, subject_id, subject_title, \
                 group_key, group_id, summary, path, created_at) \
                 VALUES ($1, $2, 'new_comment', 'inbox', 'CaseStudy', 1, 'Bins', $3, 0, $4, '/case-studies/1', 0)",
            )
            .bind(ada_id)
            .bind(written as i64)
            .bind(format!("burst:{written}"))
            .bind(&summary)
            .execute(&mut *tx)
            .await
            .unwrap();
        }
        // Each its own group, so each entry shows its whole summary.
        sqlx::query("UPDATE notifications SET group_id = id WHERE group_id = 0").execute(&mut *tx).await.unwrap();
        tx.commit().await.unwrap();
        let fresh = kettle::notifications::inbox::after(&db, ada_id, newest, 20).await.unwrap();
        newest = fresh.last().map_or(newest, |n| n.id);
        app.state().bus.publish(Delivery { notifications: fresh });
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let all: Vec<i64> =
        kettle::notifications::inbox::after(&db, ada_id, 0, 10_000).await.unwrap().iter().map(|n| n.id).collect();
    assert_eq!(all.len(), written);

    // Reading now: what was in flight, then the end (a close frame, or cut off when even
    // that could not be sent).
    let mut received = Vec::new();
    let end = loop {
        match slow.recv().await {
            Frame::Json(message) if message["type"] == "next" => {
                received.push(number(&message["payload"]["data"]["notificationAdded"]))
            }
            Frame::Json(other) => panic!("unexpected {other}"),
            Frame::Closed(close) => break close,
        }
    };
    if let Some((code, reason)) = &end {
        assert_eq!(*code, 1008, "{reason}");
    }
    assert!(received.len() < written, "disconnected before everything was sent");
    // Reconnecting from the last one received catches up with the rest.
    let last = received.last().copied().unwrap_or(0);
    let mut again = LiveClient::signed_in(&base, ada.token()).await;
    again.subscribe("2", ADDED, json!({ "after": cursor(last) })).await;
    while received.len() < written {
        received.push(number(&again.notification().await));
    }
    assert_eq!(received, all, "each once, in order");
}

async fn live_survives_redis_going_away_and_loses_nothing(app: TestApp) {
    let mut redis = RedisServer::start().await;
    let app = TestApp::spawn_with(app.backend(), &[("KETTLE_REDIS_URL", &redis.url())]).await;
    let base = app.url("");
    wait_for_live_delivery(&base, "redis: connected").await;
    let story = Story::new(&app).await;

    // A client that does what a browser's script does: on any close, reconnect and
    // resume from the last id it received.
    let received = Arc::new(Mutex::new(Vec::<i64>::new()));
    let reconnections = Arc::new(Mutex::new(Vec::<Option<u16>>::new()));
    let subscriber = {
        let (received, reconnections, token, base) =
            (received.clone(), reconnections.clone(), story.ada.token().to_string(), base.clone());
        tokio::spawn(async move {
            loop {
                let mut client = LiveClient::signed_in(&base, &token).await;
                let after = received.lock().unwrap().last().copied().unwrap_or(0);
                client.subscribe("1", ADDED, json!({ "after": cursor(after) })).await;
                loop {
                    match client.recv_within(Duration::from_secs(120)).await {
                        Some(Frame::Json(message)) if message["type"] == "next" => {
                            let id = number(&message["payload"]["data"]["notificationAdded"]);
                            received.lock().unwrap().push(id);
                        }
                        Some(Frame::Json(other)) => panic!("unexpected {other}"),
                        Some(Frame::Closed(close)) => {
                            reconnections.lock().unwrap().push(close.map(|(code, _)| code));
                            break;
                        }
                        None => panic!("nothing for two minutes"),
                    }
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
    };
    wait_for_subscriptions(&app, 1).await;

    // Redis is killed while comments are being written and dispatched.
    let writer = {
        let (grace, case_study) = (story.grace.clone(), story.case_study.clone());
        tokio::spawn(async move {
            for i in 0..20 {
                post(&grace, &case_study, None, &format!("Comment {i}")).await;
                tokio::time::sleep(Duration::from_millis(60)).await;
            }
        })
    };
    eventually(PATIENCE, "live notifications before the outage", || async { received.lock().unwrap().len() >= 4 })
        .await;
    redis.kill().await;
    let at_kill = story.inbox(&app).await.len();
    wait_for_live_delivery(&base, "redis: reconnecting").await;
    let during = readyz(&base).await;
    assert_eq!(during["ready"], true, "{during}");
    assert_eq!(during["redis"], "unreachable", "{during}");
    // The dispatcher goes on writing rows while live delivery is paused.
    story.wait_for_inbox(&app, at_kill + 4).await;
    writer.await.unwrap();

    redis.restart().await;
    wait_for_live_delivery(&base, "redis: connected").await;
    for i in 0..8 {
        story.comment(&format!("After {i}")).await;
    }
    let all = story.wait_for_inbox(&app, 28).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    while received.lock().unwrap().len() < all.len() {
        if Instant::now() > deadline {
            subscriber.abort();
            let state = readyz(&base).await;
            let got = received.lock().unwrap().clone();
            let closes = reconnections.lock().unwrap().clone();
            panic!("not every notification reached the client: got {got:?} of {all:?}, closes {closes:?}, {state}");
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    subscriber.abort();
    let received = received.lock().unwrap().clone();
    assert_eq!(received, all, "every notification exactly once, in order");
    let unique: HashSet<i64> = received.iter().copied().collect();
    assert_eq!(unique.len(), received.len());
    let reconnections = reconnections.lock().unwrap().clone();
    assert!(reconnections.contains(&Some(1012)), "told to reconnect once Redis was back: {reconnections:?}");
    assert_eq!(readyz(&base).await["liveDelivery"], "redis: connected");
    app.finish().await;
}

async fn live_connections_are_told_when_the_server_stops(app: TestApp) {
    let server = TestApp::spawn(app.backend()).await;
    let ada = server.member("ada@example.org", "Ada").await;
    let mut subscribed = LiveClient::signed_in(&server.url(""), ada.token()).await;
    subscribed.subscribe("1", ADDED, json!({})).await;
    let mut idle = LiveClient::signed_in(&server.url(""), ada.token()).await;
    wait_for_subscriptions(&server, 1).await;
    assert_eq!(server.state().bus.hub().connections(), 2);
    // Live connections are not requests that the shutdown's drain waits for: they are
    // closed with 1001 (going away) at once, so clients reconnect to another instance.
    let stopping = tokio::spawn({
        let server = server.clone();
        async move { server.finish().await }
    });
    for client in [&mut subscribed, &mut idle] {
        // A subscription's stream may end first, with SHUTTING_DOWN (which tells the
        // client to subscribe again elsewhere), when it wins the race with the close.
        let mut closed = client.recv().await;
        while let Frame::Json(message) = &closed {
            let shutting_down = message["payload"]["errors"][0]["extensions"]["code"] == "SHUTTING_DOWN";
            assert!(shutting_down || message["type"] == "complete", "{message}");
            closed = client.recv().await;
        }
        assert_eq!(closed.close_code(), Some(1001), "{closed:?}");
    }
    tokio::time::timeout(Duration::from_secs(10), stopping).await.expect("the server stops promptly").unwrap();
}
