//! GraphQL over HTTP: media types, status codes, limits, and malformed requests.

use serde_json::{json, Value};

use crate::{
    scenarios,
    support::{error_code, Scenario, TestApp, PASSWORD},
};

pub fn scenarios() -> Vec<(&'static str, Scenario)> {
    scenarios![
        malformed_requests_get_clear_errors_and_change_nothing,
        oversized_bodies_are_refused,
        request_errors_follow_the_graphql_over_http_spec,
        depth_and_complexity_are_limited,
        invalid_global_ids_are_bad_input,
        queries_may_use_get_but_mutations_may_not,
        responses_carry_a_request_id,
        compressed_responses_vary_on_accept_encoding,
        feeds_calendars_and_static_files_answer_conditional_requests,
        wrong_methods_say_what_is_allowed_and_errors_have_a_type,
        robots_txt_and_favicon_are_served,
        request_errors_use_the_media_type_the_client_accepts,
    ]
}

const REGISTER: &str = "mutation($input: RegisterInput!) { register(input: $input) { email userErrors { code } } }";

fn register_body() -> Value {
    json!({ "query": REGISTER, "variables": { "input": { "email": "ada@example.org", "password": PASSWORD, "displayName": "Ada" } } })
}

async fn post_raw(app: &TestApp, content_type: &str, body: Vec<u8>) -> (u16, Value) {
    let response =
        app.http().post(app.url("/graphql")).header("content-type", content_type).body(body).send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.expect("errors come as JSON"))
}

async fn malformed_requests_get_clear_errors_and_change_nothing(app: TestApp) {
    let (status, body) = post_raw(&app, "application/json", b"{\"query\": \"mutation { register(".to_vec()).await;
    assert_eq!(status, 400);
    assert!(body["errors"][0]["message"].as_str().unwrap().contains("not a valid GraphQL request in JSON"), "{body}");
    assert_eq!(error_code(&body), "BAD_USER_INPUT");

    let (status, body) = post_raw(&app, "text/plain", register_body().to_string().into_bytes()).await;
    assert_eq!(status, 415);
    assert!(body["errors"][0]["message"].as_str().unwrap().contains("application/json"));

    let (status, _) = post_raw(&app, "application/json", b"[1, 2, 3]".to_vec()).await;
    assert_eq!(status, 400);
    let (status, _) = post_raw(&app, "application/json", vec![0xff, 0xfe, 0x00]).await;
    assert_eq!(status, 400);

    // GraphQL syntax errors are request errors too.
    let body = app.anonymous().gql("mutation { register(input: {", json!({})).await;
    assert_eq!(error_code(&body), "BAD_USER_INPUT");
    assert!(body.get("data").is_none(), "{body}");

    // Variables of the wrong type.
    let body =
        app.anonymous().gql(REGISTER, json!({ "input": { "email": 12, "password": [], "displayName": null } })).await;
    assert_eq!(error_code(&body), "BAD_USER_INPUT");

    assert_eq!(app.count("SELECT COUNT(*) FROM members").await, 0);
    // A well-formed request with the charset parameter is fine.
    let (status, body) =
        post_raw(&app, "application/json; charset=utf-8", register_body().to_string().into_bytes()).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(app.count("SELECT COUNT(*) FROM members").await, 1);
}

async fn oversized_bodies_are_refused(app: TestApp) {
    // The server answers as soon as it knows the body is too large, without reading the
    // rest, so these requests go over a raw socket: an HTTP client that insists on
    // sending the whole body would see the connection close under it.
    let big = format!("{{\"query\": \"{}\"}}", "a".repeat(2 * 1024 * 1024));
    let declared = format!(
        "POST /graphql HTTP/1.1\r\nhost: kettle\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
        big.len()
    );
    let (status, body) = raw_request(&app, declared.into_bytes(), big.clone().into_bytes()).await;
    assert_eq!(status, 413, "{body}");
    assert!(body.contains("1024 KiB"), "{body}");

    // Chunked, with no length declared: the limit is enforced while reading.
    let head = "POST /graphql HTTP/1.1\r\nhost: kettle\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n";
    let mut chunked = Vec::new();
    for piece in big.as_bytes().chunks(64 * 1024) {
        chunked.extend_from_slice(format!("{:x}\r\n", piece.len()).as_bytes());
        chunked.extend_from_slice(piece);
        chunked.extend_from_slice(b"\r\n");
    }
    chunked.extend_from_slice(b"0\r\n\r\n");
    let (status, _) = raw_request(&app, head.as_bytes().to_vec(), chunked).await;
    assert_eq!(status, 413);
    assert_eq!(app.count("SELECT COUNT(*) FROM members").await, 0);
}

/// Sends a request over a plain socket, writing the body in the background while
/// reading the response; returns the status and whatever of the body arrived.
async fn raw_request(app: &TestApp, head: Vec<u8>, body: Vec<u8>) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let address = app.url("").trim_start_matches("http://").to_string();
    let stream = tokio::net::TcpStream::connect(address).await.unwrap();
    let (mut reader, mut writer) = stream.into_split();
    let sender = tokio::spawn(async move {
        let _ = writer.write_all(&head).await;
        let _ = writer.write_all(&body).await;
    });
    let mut received = Vec::new();
    let mut buffer = [0u8; 8192];
    loop {
        match tokio::time::timeout(std::time::Duration::from_secs(10), reader.read(&mut buffer)).await {
            Ok(Ok(0)) | Ok(Err(_)) | Err(_) => break,
            Ok(Ok(n)) => received.extend_from_slice(&buffer[..n]),
        }
        if received.windows(4).any(|w| w == b"\r\n\r\n") && String::from_utf8_lossy(&received).contains("KiB") {
            break;
        }
    }
    sender.abort();
    let text = String::from_utf8_lossy(&received).into_owned();
    let status = text.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    (status, text)
}

async fn request_errors_follow_the_graphql_over_http_spec(app: TestApp) {
    let send = |accept: &'static str, query: &'static str| {
        let app = app.clone();
        async move {
            let response = app
                .http()
                .post(app.url("/graphql"))
                .header("accept", accept)
                .json(&json!({ "query": query }))
                .send()
                .await
                .unwrap();
            let status = response.status().as_u16();
            let content_type = response.headers()["content-type"].to_str().unwrap().to_string();
            (status, content_type, response.json::<Value>().await.unwrap())
        }
    };
    // Validation failure: 400 without data for the new media type, 200 for plain JSON.
    let (status, content_type, body) = send("application/graphql-response+json", "{ viewer { id } nope }").await;
    assert_eq!((status, content_type.as_str()), (400, "application/graphql-response+json"));
    assert!(body.get("data").is_none());
    assert!(body["errors"][0]["message"].as_str().unwrap().contains("nope"));
    let (status, content_type, body) = send("application/json", "{ viewer { id } nope }").await;
    assert_eq!((status, content_type.as_str()), (200, "application/json"));
    assert_eq!(error_code(&body), "BAD_USER_INPUT");
    // Both listed: the new media type wins.
    let (_, content_type, _) = send("application/json, application/graphql-response+json", "{ viewer { id } }").await;
    assert_eq!(content_type, "application/graphql-response+json");
    // A successful query is 200 either way.
    let (status, _, body) = send("application/graphql-response+json", "{ viewer { id } }").await;
    assert_eq!(status, 200);
    assert_eq!(body, json!({ "data": { "viewer": null } }));
    // An execution error (not signed in) is still a 200 with data.
    let (status, _, body) = send(
        "application/graphql-response+json",
        "mutation { updateProfile(input: { bio: \"x\" }) { member { id } } }",
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(error_code(&body), "UNAUTHENTICATED");
    assert_eq!(body["errors"][0]["path"], json!(["updateProfile"]));
    // Nothing acceptable.
    let (status, _, _) = send("text/csv", "{ viewer { id } }").await;
    assert_eq!(status, 406);
}

async fn depth_and_complexity_are_limited(app: TestApp) {
    let deep = "{ __schema { types { fields { type { ofType { ofType { ofType { ofType { ofType { ofType { ofType { ofType { name } } } } } } } } } } } } }";
    let body = app.anonymous().gql(deep, json!({})).await;
    assert_eq!(error_code(&body), "QUERY_TOO_COMPLEX");
    assert!(body["errors"][0]["message"].as_str().unwrap().to_lowercase().contains("nested too deep"), "{body}");

    let ada = app.member("ada@example.org", "Ada").await;
    let page =
        "accessTokens(first: 100) { edges { cursor node { id name hint createdAt lastUsedAt expiresAt revokedAt } } }";
    let ok = format!("{{ viewer {{ {page} }} }}");
    assert!(ada.gql(&ok, json!({})).await.get("errors").is_none());
    let costly = format!("{{ a: viewer {{ {page} }} b: viewer {{ {page} }} c: viewer {{ {page} }} }}");
    let body = ada.gql(&costly, json!({})).await;
    assert_eq!(error_code(&body), "QUERY_TOO_COMPLEX");
    assert!(body["errors"][0]["message"].as_str().unwrap().to_lowercase().contains("complex"), "{body}");

    let ids: Vec<String> = (0..101).map(|_| "TWVtYmVyOjE".to_string()).collect();
    let body = ada.gql("query($ids: [ID!]!) { nodes(ids: $ids) { id } }", json!({ "ids": ids })).await;
    assert_eq!(error_code(&body), "BAD_USER_INPUT");
}

async fn invalid_global_ids_are_bad_input(app: TestApp) {
    let anon = app.anonymous();
    for id in ["garbage", "", "TWVtYmVy", "Tm9wZTox"] {
        let body = anon.gql("query($id: ID!) { node(id: $id) { id } }", json!({ "id": id })).await;
        if id == "Tm9wZTox" {
            // "Nope:1" is well-formed but names no type: simply not found.
            assert_eq!(body, json!({ "data": { "node": null } }));
        } else {
            assert_eq!(error_code(&body), "BAD_USER_INPUT", "for {id:?}: {body}");
        }
    }
    let ada = app.member("ada@example.org", "Ada").await;
    let id = ada.viewer_id().await.unwrap();
    let found = anon
        .data(
            "query($ids: [ID!]!) { nodes(ids: $ids) { ... on Member { displayName } } }",
            json!({ "ids": [id, "TWVtYmVyOjk5OTk"] }),
        )
        .await;
    assert_eq!(found["nodes"], json!([{ "displayName": "Ada" }, null]));
}

async fn queries_may_use_get_but_mutations_may_not(app: TestApp) {
    let response = app.http().get(app.url("/graphql")).query(&[("query", "{ viewer { id } }")]).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.json::<Value>().await.unwrap(), json!({ "data": { "viewer": null } }));

    let mutation = "mutation { signOut { signedOut } }";
    let response = app.http().get(app.url("/graphql")).query(&[("query", mutation)]).send().await.unwrap();
    assert_eq!(response.status(), 405);
    assert_eq!(response.headers()["allow"], "POST");

    let response = app
        .http()
        .get(app.url("/graphql"))
        .query(&[("query", "query($id: ID!) { node(id: $id) { id } }"), ("variables", "{not json")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);

    // A browser is sent to the explorer, a page of the site under its policy that loads
    // nothing from elsewhere; a script without a query gets a clear error.
    let response = app.http().get(app.url("/graphql")).header("accept", "text/html").send().await.unwrap();
    assert_eq!(response.url().path(), "/graphql/explorer", "redirected");
    assert_eq!(response.status(), 200);
    let csp = response.headers()["content-security-policy"].to_str().unwrap().to_string();
    assert!(csp.contains("default-src 'self'") && csp.contains("script-src 'self'"), "{csp}");
    let page = response.text().await.unwrap();
    assert!(page.contains(r#"id="type-CaseStudy""#) && page.contains(r##"href="#type-Node""##), "{page}");
    assert!(page.contains("<form method=\"get\" action=\"/graphql\""), "{page}");
    // Every script, style sheet and image the page names is our own.
    for attribute in ["src=\"", "href=\""] {
        for (at, _) in page.match_indices(attribute) {
            let target = &page[at + attribute.len()..];
            let target = &target[..target.find('"').unwrap()];
            assert!(!target.starts_with("http") && !target.starts_with("//"), "{target}");
        }
    }
    let response = app.http().get(app.url("/graphql")).send().await.unwrap();
    assert_eq!(response.status(), 400);
}

async fn responses_carry_a_request_id(app: TestApp) {
    let response = app.http().get(app.url("/healthz")).send().await.unwrap();
    let id = response.headers()["x-request-id"].to_str().unwrap().to_string();
    assert_eq!(id.len(), 24);
    assert_eq!(response.headers()["x-content-type-options"], "nosniff");
    let again = app.http().get(app.url("/healthz")).send().await.unwrap();
    assert_ne!(again.headers()["x-request-id"].to_str().unwrap(), id);
    // A caller's own id is kept when it is plain, replaced when it is not.
    let response = app.http().get(app.url("/healthz")).header("x-request-id", "trace-123").send().await.unwrap();
    assert_eq!(response.headers()["x-request-id"], "trace-123");
    let response = app.http().get(app.url("/healthz")).header("x-request-id", "bad id\t<script>").send().await.unwrap();
    assert_ne!(response.headers()["x-request-id"], "bad id\t<script>");
    let response = app.http().get(app.url("/no/such/page")).send().await.unwrap();
    assert_eq!(response.status(), 404);
    assert!(response.headers().contains_key("x-request-id"));
}

async fn compressed_responses_vary_on_accept_encoding(app: TestApp) {
    let response = app.http().get(app.url("/")).header("accept-encoding", "gzip").send().await.unwrap();
    assert_eq!(response.headers()["content-encoding"], "gzip");
    let vary: Vec<&str> = response.headers().get_all("vary").iter().map(|v| v.to_str().unwrap()).collect();
    assert!(vary.iter().any(|v| v.to_ascii_lowercase().contains("accept-encoding")), "{vary:?}");
    // Uncompressed answers say so too, since they would have been compressed on request.
    let response = app.http().get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(response.headers()["vary"], "Accept-Encoding");
}

async fn feeds_calendars_and_static_files_answer_conditional_requests(app: TestApp) {
    const CREATE_GROUP: &str =
        "mutation($input: CreateMeetupGroupInput!) { createMeetupGroup(input: $input) { group { slug } userErrors { code } } }";
    let olu = app.verified_member("olu@example.org", "Olu").await;
    let data = olu.data(CREATE_GROUP, json!({ "input": { "name": "TeaCamp", "region": "North West" } })).await;
    let slug = data["createMeetupGroup"]["group"]["slug"].as_str().unwrap_or_else(|| panic!("{data}")).to_string();
    let paths = [
        "/feeds/case-studies.atom".to_string(),
        format!("/calendars/groups/{slug}.ics"),
        kettle::site::assets::url("app.css"),
        "/robots.txt".to_string(),
    ];
    for path in paths {
        for encoding in ["identity", "gzip"] {
            let get = |tag: Option<&str>| {
                let mut request = app.http().get(app.url(&path)).header("accept-encoding", encoding);
                if let Some(tag) = tag {
                    request = request.header("if-none-match", tag);
                }
                request.send()
            };
            let first = get(None).await.unwrap();
            assert_eq!(first.status(), 200, "{path}");
            let etag = first.headers()["etag"].to_str().unwrap().to_string();
            assert!(etag.starts_with('"') && etag.ends_with('"') && etag.len() == 34, "{path}: {etag}");
            let cache_control = first.headers().get("cache-control").cloned();
            assert!(!first.bytes().await.unwrap().is_empty());

            let same = get(Some(&etag)).await.unwrap();
            assert_eq!(same.status(), 304, "{path} {encoding}");
            assert_eq!(same.headers()["etag"].to_str().unwrap(), etag);
            assert_eq!(same.headers().get("cache-control").cloned(), cache_control, "{path}");
            assert!(same.bytes().await.unwrap().is_empty());
            // One of a list, a weak form of it, and `*` all match.
            for tag in [format!("\"nope\", {etag}"), format!("W/{etag}"), "*".to_string()] {
                assert_eq!(get(Some(&tag)).await.unwrap().status(), 304, "{path}: {tag}");
            }
            let other = get(Some("\"0123456789abcdef0123456789abcdef\"")).await.unwrap();
            assert_eq!(other.status(), 200, "{path}");
            assert_eq!(other.headers()["etag"].to_str().unwrap(), etag);
            assert!(!other.bytes().await.unwrap().is_empty());
        }
    }
    // A calendar that does not exist is still a 404, without a tag.
    let missing =
        app.http().get(app.url("/calendars/groups/nothing.ics")).header("if-none-match", "*").send().await.unwrap();
    assert_eq!(missing.status(), 404);
    assert!(!missing.headers().contains_key("etag"));
}

async fn wrong_methods_say_what_is_allowed_and_errors_have_a_type(app: TestApp) {
    let cases = [
        (reqwest::Method::POST, "/feeds/case-studies.atom", "GET, HEAD, OPTIONS"),
        (reqwest::Method::GET, "/sign-out", "POST, OPTIONS"),
        (reqwest::Method::DELETE, "/sign-in", "GET, HEAD, POST, OPTIONS"),
        (reqwest::Method::PUT, "/graphql", "GET, HEAD, POST, OPTIONS"),
    ];
    for (method, path, allow) in cases {
        let response = app.http().request(method.clone(), app.url(path)).send().await.unwrap();
        assert_eq!(response.status(), 405, "{method} {path}");
        assert_eq!(response.headers()["allow"], allow, "{method} {path}");
        assert!(response.headers()["content-type"].to_str().unwrap().starts_with("text/plain"), "{method} {path}");
    }
    let response = app.http().request(reqwest::Method::OPTIONS, app.url("/sign-in")).send().await.unwrap();
    assert_eq!(response.status(), 204);
    assert_eq!(response.headers()["allow"], "GET, HEAD, POST, OPTIONS");
    // A mutation over GET names POST, as the GraphQL-over-HTTP specification asks.
    let response = app.http().get(app.url("/graphql?query=mutation%7B__typename%7D")).send().await.unwrap();
    assert_eq!(response.status(), 405);
    assert_eq!(response.headers()["allow"], "POST");
    // Error bodies always say what they are.
    for path in ["/no/such/page", "/static/missing.1234.css", "/calendars/groups/nothing.ics", "/topics/%00"] {
        let response = app.http().get(app.url(path)).send().await.unwrap();
        assert_eq!(response.status(), 404, "{path}");
        assert!(response.headers().contains_key("content-type"), "{path}");
    }
    // A form the extractor refuses (poem's own error) has a type too.
    let response = app
        .http()
        .post(app.url("/sign-in"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(vec![0xff, 0xfe])
        .send()
        .await
        .unwrap();
    if response.status().is_client_error() {
        assert!(response.headers().contains_key("content-type"), "{}", response.status());
    }
}

async fn robots_txt_and_favicon_are_served(app: TestApp) {
    let response = app.http().get(app.url("/robots.txt")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "text/plain; charset=utf-8");
    let text = response.text().await.unwrap();
    assert!(text.starts_with("User-agent: *\n"), "{text}");
    for path in ["/settings", "/moderation", "/admin", "/graphql", "/auth"] {
        assert!(text.lines().any(|line| line == format!("Disallow: {path}")), "{text}");
    }
    assert!(!text.to_ascii_lowercase().contains("sitemap"));

    let response = app.http().get(app.url("/favicon.ico")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "image/svg+xml");
    assert!(response.text().await.unwrap().contains("<svg"));
    let home = app.http().get(app.url("/")).send().await.unwrap().text().await.unwrap();
    let icon = kettle::site::assets::url("favicon.svg");
    assert!(home.contains(&format!(r#"<link rel="icon" href="{icon}" type="image/svg+xml">"#)), "{home}");
    let response = app.http().get(app.url(&icon)).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "image/svg+xml");
}

async fn request_errors_use_the_media_type_the_client_accepts(app: TestApp) {
    const GRAPHQL_RESPONSE: &str = "application/graphql-response+json";
    let bad_json = app
        .http()
        .post(app.url("/graphql"))
        .header("content-type", "application/json")
        .header("accept", GRAPHQL_RESPONSE)
        .body("{\"query\": ")
        .send()
        .await
        .unwrap();
    let no_query = app.http().get(app.url("/graphql")).header("accept", GRAPHQL_RESPONSE).send().await.unwrap();
    for response in [bad_json, no_query] {
        assert_eq!(response.status(), 400);
        assert_eq!(response.headers()["content-type"], GRAPHQL_RESPONSE);
        let body: Value = response.json().await.unwrap();
        assert_eq!(error_code(&body), "BAD_USER_INPUT");
    }
    // A plain JSON client still gets plain JSON.
    let response = app.http().get(app.url("/graphql")).header("accept", "application/json").send().await.unwrap();
    assert_eq!(response.status(), 400);
    assert_eq!(response.headers()["content-type"], "application/json");
}
