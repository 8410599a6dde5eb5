//! Atom feeds as readers see them: read back by a strict XML parser (roxmltree) and by
//! Python's `feedparser` (tests/feeds/check_feed.py), with this site's own ids, absolute
//! links in entry content, case studies and artefacts together in topic and organisation
//! feeds, feeds of artefacts and of upcoming meetups, and pages that advertise them.

use std::io::Write as _;
use std::process::{Command, Stdio};

use serde_json::{json, Value};

use crate::{
    artefacts::{artefact, number, share},
    case_studies::{admin, case_study, create_case_study, create_organisation, create_topic, PUBLISH},
    scenarios,
    support::{Peer, Scenario, TestApp},
};

pub fn scenarios() -> Vec<(&'static str, Scenario)> {
    scenarios![feeds_have_site_ids_absolute_links_and_every_kind, pages_advertise_their_feeds]
}

/// Set to 1 (as tests/run does) to make a missing Python `feedparser` a failure instead
/// of a loudly reported skip.
const REQUIRE_FEEDPARSER: &str = "KETTLE_REQUIRE_PYTHON_FEEDPARSER";

/// Runs `script` (relative to the repository) with `input` on stdin and returns its
/// stdout, or `None` (said loudly) when Python's `module` is not installed and
/// `require` is not set to 1.
pub(crate) fn python(module: &str, require: &str, script: &str, input: &str) -> Option<String> {
    let available = Command::new("python3")
        .args(["-c", &format!("import {module}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !available {
        assert!(std::env::var(require).as_deref() != Ok("1"), "{require}=1 but `python3 -c 'import {module}'` fails");
        let _ = writeln!(
            std::io::stderr(),
            "\n*** SKIPPED {script}: `python3 -c 'import {module}'` failed (pip install {module}). ***\n"
        );
        return None;
    }
    let path = format!("{}/{script}", env!("CARGO_MANIFEST_DIR"));
    let mut child = Command::new("python3")
        .arg(&path)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    let output = child.wait_with_output().unwrap();
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert!(output.status.success(), "{script} failed:\n{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    Some(stdout)
}

/// (id, title, link, category terms, content) of an entry, from roxmltree.
type Entry = (String, String, String, Vec<String>, String);

/// One feed as both parsers read it.
struct Feed {
    xml: String,
    entries: Vec<Entry>,
    id: String,
}

async fn fetch_feed(url: &str) -> Feed {
    let response = reqwest::get(url).await.unwrap();
    assert_eq!(response.status().as_u16(), 200, "{url}");
    let content_type = response.headers()["content-type"].to_str().unwrap().to_string();
    assert_eq!(content_type, "application/atom+xml; charset=utf-8", "{url}");
    let xml = response.text().await.unwrap();
    let document = roxmltree::Document::parse(&xml).unwrap_or_else(|e| panic!("{url} is not XML ({e}):\n{xml}"));
    let feed = document.root_element();
    assert_eq!((feed.tag_name().name(), feed.tag_name().namespace()), ("feed", Some("http://www.w3.org/2005/Atom")));
    let text = |node: roxmltree::Node, name: &str| {
        node.children().find(|c| c.tag_name().name() == name).and_then(|c| c.text()).unwrap_or("").to_string()
    };
    let entries: Vec<Entry> = feed
        .children()
        .filter(|c| c.tag_name().name() == "entry")
        .map(|e| {
            let link = e
                .children()
                .find(|c| c.tag_name().name() == "link" && c.attribute("rel") == Some("alternate"))
                .and_then(|l| l.attribute("href"))
                .unwrap_or("")
                .to_string();
            let terms = e
                .children()
                .filter(|c| c.tag_name().name() == "category")
                .filter_map(|c| c.attribute("term").map(str::to_string))
                .collect();
            (text(e, "id"), text(e, "title"), link, terms, text(e, "content"))
        })
        .collect();
    let id = text(feed, "id");

    // feedparser must find nothing wrong, and read the same ids.
    if let Some(out) = python("feedparser", REQUIRE_FEEDPARSER, "tests/feeds/check_feed.py", &xml) {
        let parsed: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(parsed["bozo"], 0, "feedparser: {} in {url}:\n{xml}", parsed["bozo_exception"]);
        assert_eq!(parsed["version"], "atom10");
        assert_eq!(parsed["id"], id.as_str());
        let ids: Vec<&str> = parsed["entries"].as_array().unwrap().iter().map(|e| e["id"].as_str().unwrap()).collect();
        let ours: Vec<&str> = entries.iter().map(|e| e.0.as_str()).collect();
        assert_eq!(ids, ours);
    }
    Feed { xml, entries, id }
}

async fn feeds_have_site_ids_absolute_links_and_every_kind(app: TestApp) {
    let curator = admin(&app, "curator@example.org", "Curator").await;
    let bins = create_topic(&curator, "Bins").await;
    let ada = app.member("ada@example.org", "Ada").await;
    let (organisation, organisation_slug) = create_organisation(&ada, "Barsetshire Council").await;
    // Relative links, a fragment and an absolute one, as Markdown writes them.
    let mut input = case_study("Bin reminders", &[&bins]);
    input["body"] = json!("See [the topic](/topics/bins), [below](#how) and [GOV.UK](https://www.gov.uk/).");
    input["organisationId"] = json!(organisation);
    let study = create_case_study(&ada, input).await;
    ada.data(PUBLISH, json!({ "id": study["id"] })).await;
    let shared = share(&ada, artefact("Reminder service", &[&bins])).await;
    const GROUP: &str =
        "mutation($input: CreateMeetupGroupInput!) { createMeetupGroup(input: $input) { group { id } } }";
    let group = ada.data(GROUP, json!({ "input": { "name": "TeaCamp North", "region": "North West" } })).await;
    const SCHEDULE: &str =
        "mutation($input: ScheduleMeetupInput!) { scheduleMeetup(input: $input) { event { id } userErrors { code } } }";
    let event = ada
        .data(
            SCHEDULE,
            json!({ "input": {
                "groupId": group["createMeetupGroup"]["group"]["id"], "title": "TeaCamp", "description": "Tea and [notes](/topics/bins).",
                "timeZone": "Europe/London", "start": "2030-01-10T18:00", "end": "2030-01-10T20:00", "venueName": "The Federation",
            } }),
        )
        .await;
    let event_id = event["scheduleMeetup"]["event"]["id"].clone();

    // Served under its real name, the site's ids carry that name.
    let site = Peer::start_at(&app, "https://kettle.test").await;
    let tag = "tag:kettle.test,2026:";
    let (study_n, artefact_n) = (number("CaseStudy", &study["id"]), number("Artefact", &shared["id"]));

    let studies = fetch_feed(&site.url("/feeds/case-studies.atom")).await;
    assert_eq!(studies.id, format!("{tag}feed:case-studies"));
    let (id, title, link, terms, content) = &studies.entries[0];
    assert_eq!(id, &format!("{tag}case-study:{study_n}"), "{}", studies.xml);
    assert_eq!(title, "Bin reminders");
    assert_eq!(link, &format!("https://kettle.test/case-studies/{study_n}"));
    assert!(terms.contains(&"case-study".to_string()) && terms.contains(&"bins".to_string()), "{terms:?}");
    assert!(content.contains(r#"href="https://kettle.test/topics/bins""#), "{content}");
    assert!(content.contains(&format!(r##"href="https://kettle.test/case-studies/{study_n}#how""##)), "{content}");
    assert!(content.contains(r#"href="https://www.gov.uk/""#), "{content}");
    assert!(!content.contains(r#"href="/"#) && !content.contains(r##"href="#"##), "{content}");

    let artefacts = fetch_feed(&site.url("/feeds/artefacts.atom")).await;
    assert_eq!(artefacts.id, format!("{tag}feed:artefacts"));
    let (id, title, link, terms, content) = &artefacts.entries[0];
    assert_eq!(id, &format!("{tag}artefact:{artefact_n}"));
    assert_eq!(title, "Artefact: Reminder service");
    assert_eq!(link, &format!("https://kettle.test/artefacts/{artefact_n}"));
    assert!(terms.contains(&"artefact".to_string()), "{terms:?}");
    assert!(content.contains("https://github.com/example/reminders"), "{content}");

    let meetups = fetch_feed(&site.url("/feeds/meetups.atom")).await;
    assert_eq!(meetups.id, format!("{tag}feed:meetups"));
    let event_n = number("MeetupEvent", &event_id);
    let (id, title, link, terms, content) = &meetups.entries[0];
    assert_eq!(id, &format!("{tag}meetup:{event_n}"));
    assert_eq!(title, "TeaCamp");
    assert_eq!(link, &format!("https://kettle.test/meetups/events/{event_n}"));
    assert!(terms.contains(&"meetup".to_string()));
    assert!(content.contains(r#"href="https://kettle.test/topics/bins""#), "{content}");
    let summary = "Thursday 10 January 2030 at 18:00 (Europe&#x2f;London). The Federation. Run by TeaCamp North";
    assert!(meetups.xml.contains(summary), "{}", meetups.xml);

    // A topic's feed (and an organisation's) carries its artefacts beside its case
    // studies, told apart by their kind.
    let topic = fetch_feed(&site.url("/feeds/topics/bins.atom")).await;
    assert!(topic.id.starts_with(&format!("{tag}feed:topic:")), "{}", topic.id);
    let mut ids: Vec<&str> = topic.entries.iter().map(|e| e.0.as_str()).collect();
    ids.sort_unstable();
    assert_eq!(ids, [format!("{tag}artefact:{artefact_n}"), format!("{tag}case-study:{study_n}")]);
    let organisation = fetch_feed(&site.url(&format!("/feeds/organisations/{organisation_slug}.atom"))).await;
    assert!(organisation.entries.iter().any(|e| e.0 == format!("{tag}case-study:{study_n}")));

    // The ids name the item, not its title or slug: renaming the topic keeps them.
    const RENAME: &str = "mutation($id: ID!) { renameTopic(input: { id: $id, name: \"Waste\" }) { topic { slug } } }";
    let renamed = curator.data(RENAME, json!({ "id": bins })).await;
    let slug = renamed["renameTopic"]["topic"]["slug"].as_str().unwrap_or("bins").to_string();
    let again = fetch_feed(&site.url(&format!("/feeds/topics/{slug}.atom"))).await;
    assert_eq!(again.id, topic.id);
    site.stop().await;
}

async fn pages_advertise_their_feeds(app: TestApp) {
    let curator = admin(&app, "curator@example.org", "Curator").await;
    create_topic(&curator, "Bins").await;
    let (_, organisation_slug) = create_organisation(&curator, "Barsetshire Council").await;
    let pages = [
        ("/", "/feeds/case-studies.atom"),
        ("/case-studies", "/feeds/case-studies.atom"),
        ("/artefacts", "/feeds/artefacts.atom"),
        ("/meetups", "/feeds/meetups.atom"),
        ("/topics/bins", "/feeds/topics/bins.atom"),
        (&format!("/organisations/{organisation_slug}"), &format!("/feeds/organisations/{organisation_slug}.atom")),
    ];
    for (page, feed) in pages {
        // Templates escape `/` in values as `&#x2f;`.
        let html = reqwest::get(app.url(page)).await.unwrap().text().await.unwrap().replace("&#x2f;", "/");
        let head = html.split("</head>").next().unwrap();
        let wanted = r#"<link rel="alternate" type="application/atom+xml" title="Kettle: "#;
        let link = head
            .match_indices(wanted)
            .map(|(i, _)| &head[i..i + head[i..].find('>').unwrap()])
            .find(|link| link.contains(&format!(r#"href="{feed}""#)))
            .unwrap_or_else(|| panic!("{page} does not advertise {feed}:\n{head}"));
        assert!(link.contains("title=\"Kettle: "), "{link}");
        // …and the feed it names is there.
        fetch_feed(&app.url(feed)).await;
    }
}
