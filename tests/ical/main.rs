//! Parses rendered feeds back with independent parsers: the `icalendar` and
//! `ical` crates, and (when installed) Python's `icalendar` package.

use std::io::{BufReader, Write as _};
use std::process::{Command, Stdio};

use icalendar::parser::{read_calendar, unfold, Component};
use jiff::civil::{date, Date, DateTime, Weekday};
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};
use kettle::meetups::calendar::{agenda_text, event_uid};
use kettle::meetups::ical::{render, Calendar, Event, Organizer};

const NASTY_SUMMARY: &str = "Rust, tea; and\nbiscuits \\o/ 🦀☕";

fn long_title() -> String {
    // 200 characters mixing 1-, 2- and 4-octet characters and spaces, so the
    // line must fold and folds land next to multi-byte characters.
    let mut title: String = "Ferris 🦀 grüßt Köln, ünd Zürich; ".chars().cycle().take(199).collect();
    title.push('!');
    assert_eq!(title.chars().count(), 200);
    title
}

fn event<'a>(uid: &'a str, summary: &'a str, time_zone: &'a str, start: DateTime, end: DateTime) -> Event<'a> {
    Event {
        uid,
        sequence: 0,
        cancelled: false,
        summary,
        description: "",
        location: None,
        url: None,
        organizer: None,
        time_zone,
        local_start: start,
        local_end: end,
        created: "2026-11-02T09:15:00Z".parse().unwrap(),
        last_modified: "2026-12-24T17:45:30Z".parse().unwrap(),
    }
}

/// Expected UTC start per UID, worked out by hand from the zones' rules.
const EXPECTED_UTC_STARTS: &[(&str, &str)] = &[
    ("occurrence-1@kettle.example.org", "2027-01-14T19:00:00Z"),
    ("occurrence-2@kettle.example.org", "2027-07-15T17:30:00Z"),
    ("occurrence-3@kettle.example.org", "2027-03-28T02:00:00Z"),
    ("occurrence-4@kettle.example.org", "2027-01-21T00:00:00Z"),
    ("occurrence-5@kettle.example.org", "2027-07-21T23:00:00Z"),
    ("occurrence-6@kettle.example.org", "2027-03-11T10:00:00Z"),
    ("occurrence-7@kettle.example.org", "2027-10-31T18:00:00Z"),
    ("occurrence-8@kettle.example.org", "2027-02-01T15:00:00Z"),
];

fn sample_events<'a>(title: &'a str) -> Vec<Event<'a>> {
    let mut london_jan = event(
        "occurrence-1@kettle.example.org",
        NASTY_SUMMARY,
        "Europe/London",
        date(2027, 1, 14).at(19, 0, 0, 0),
        date(2027, 1, 14).at(21, 0, 0, 0),
    );
    london_jan.description = "Bring a laptop.\nDoors open at 18:30; C:\\temp, not needed.\r\nThanks!";
    london_jan.location = Some("The Crab & Anchor, 1 Dock St; London");
    london_jan.url = Some("https://kettle.example.org/meetups/42?a=1;b=2,c\n");
    london_jan.organizer = Some(Organizer {
        name: "TeaCamp, \"North\"; West",
        address: "https://kettle.example.org/meetups/groups/teacamp",
    });
    let mut london_jul = event(
        "occurrence-2@kettle.example.org",
        title,
        "Europe/London",
        date(2027, 7, 15).at(18, 30, 0, 0),
        date(2027, 7, 15).at(20, 30, 0, 0),
    );
    london_jul.sequence = 3;
    london_jul.cancelled = true;
    vec![
        london_jan,
        london_jul,
        // Just after the spring-forward on 2027-03-28 (01:00 GMT -> 02:00 BST).
        event(
            "occurrence-3@kettle.example.org",
            "Early birds",
            "Europe/London",
            date(2027, 3, 28).at(3, 0, 0, 0),
            date(2027, 3, 28).at(4, 0, 0, 0),
        ),
        event(
            "occurrence-4@kettle.example.org",
            "NYC winter",
            "America/New_York",
            date(2027, 1, 20).at(19, 0, 0, 0),
            date(2027, 1, 20).at(21, 0, 0, 0),
        ),
        event(
            "occurrence-5@kettle.example.org",
            "NYC summer",
            "America/New_York",
            date(2027, 7, 21).at(19, 0, 0, 0),
            date(2027, 7, 21).at(21, 0, 0, 0),
        ),
        event(
            "occurrence-6@kettle.example.org",
            "Tokyo",
            "Asia/Tokyo",
            date(2027, 3, 11).at(19, 0, 0, 0),
            date(2027, 3, 11).at(21, 0, 0, 0),
        ),
        // Other casing of a known zone: must share London's VTIMEZONE. Falls
        // on the day the clocks go back (2027-10-31), after the change.
        event(
            "occurrence-7@kettle.example.org",
            "Halloween",
            "europe/london",
            date(2027, 10, 31).at(18, 0, 0, 0),
            date(2027, 10, 31).at(20, 0, 0, 0),
        ),
        // Its only transition is from local mean time (+03:41:12), so the
        // VTIMEZONE carries an offset with seconds.
        event(
            "occurrence-8@kettle.example.org",
            "Dubai",
            "Asia/Dubai",
            date(2027, 2, 1).at(19, 0, 0, 0),
            date(2027, 2, 1).at(21, 0, 0, 0),
        ),
    ]
}

fn sample_feed() -> String {
    let title = long_title();
    let events = sample_events(&title);
    render(&Calendar { name: "Kettle meetups, London; & more", events: &events })
}

fn prop<'a>(component: &'a Component, name: &str) -> &'a str {
    component.find_prop(name).unwrap_or_else(|| panic!("{} has no {name}", component.name.as_str())).val.as_str()
}

fn param<'a>(component: &'a Component, prop_name: &str, key: &str) -> Option<&'a str> {
    component.find_prop(prop_name)?.params.iter().find(|p| p.key.as_str() == key)?.val.as_ref().map(|v| v.as_str())
}

fn parse_civil(value: &str) -> DateTime {
    DateTime::strptime("%Y%m%dT%H%M%S", value).unwrap()
}

fn offset_seconds(value: &str) -> i32 {
    let sign = if value.starts_with('-') { -1 } else { 1 };
    let digits = &value[1..];
    let h: i32 = digits[0..2].parse().unwrap();
    let m: i32 = digits[2..4].parse().unwrap();
    let s: i32 = digits.get(4..6).map_or(0, |s| s.parse().unwrap());
    sign * (h * 3600 + m * 60 + s)
}

/// One STANDARD/DAYLIGHT block, decoded.
#[derive(Debug)]
struct Observance {
    kind: String,
    onset_local: DateTime,
    from: i32,
    to: i32,
    name: String,
}

fn observances(vtimezone: &Component) -> Vec<Observance> {
    vtimezone
        .components
        .iter()
        .map(|c| Observance {
            kind: c.name.as_str().to_string(),
            onset_local: parse_civil(prop(c, "DTSTART")),
            from: offset_seconds(prop(c, "TZOFFSETFROM")),
            to: offset_seconds(prop(c, "TZOFFSETTO")),
            name: prop(c, "TZNAME").to_string(),
        })
        .collect()
}

/// Offset in force at a wall-clock time according to the VTIMEZONE alone:
/// observance `i` applies if `local` read with its TZOFFSETTO falls between
/// its onset and the next one (onsets are local times in TZOFFSETFROM).
/// Panics unless exactly one applies, so keep `local` away from transitions.
fn offset_at(obs: &[Observance], local: DateTime) -> i32 {
    let onset_utc = |o: &Observance| o.onset_local - SignedDuration::from_secs(o.from.into());
    let matching: Vec<i32> = obs
        .iter()
        .enumerate()
        .filter(|(i, o)| {
            let instant = local - SignedDuration::from_secs(o.to.into());
            onset_utc(o) <= instant && obs.get(i + 1).is_none_or(|next| instant < onset_utc(next))
        })
        .map(|(_, o)| o.to)
        .collect();
    assert_eq!(matching.len(), 1, "{local}: {obs:?}");
    matching[0]
}

fn last_sunday(year: i16, month: i8) -> Date {
    let last = date(year, month, 1).last_of_month();
    last.nth_weekday_of_month(-1, Weekday::Sunday).unwrap()
}

/// Writes the sample feed to the target dir so a human can look at it.
#[test]
fn write_sample_for_inspection() {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"));
    std::fs::write(dir.join("sample.ics"), sample_feed()).unwrap();
}

#[test]
fn every_line_is_crlf_terminated_and_at_most_75_octets() {
    let feed = sample_feed();
    assert!(feed.ends_with("END:VCALENDAR\r\n"));
    assert!(!feed.replace("\r\n", "").contains(['\r', '\n']), "bare CR or LF");
    let mut continuations = 0;
    for line in feed.split_terminator("\r\n") {
        assert!(line.len() <= 75, "{} octets: {line:?}", line.len());
        assert!(!line.ends_with([' ', '\t']) || line.trim().is_empty());
        if line.starts_with(' ') {
            continuations += 1;
        }
    }
    assert!(continuations >= 3, "the long title should fold several times");
}

#[test]
fn icalendar_crate_round_trips_events() {
    let feed = sample_feed();
    let unfolded = unfold(&feed);
    let cal = read_calendar(&unfolded).expect("icalendar crate parses the feed");

    let cal_prop = |name: &str| cal.properties.iter().find(|p| p.name == name).map(|p| p.val.as_str());
    assert_eq!(cal_prop("VERSION"), Some("2.0"));
    assert_eq!(cal_prop("PRODID"), Some("-//Kettle//Meetups//EN"));
    assert_eq!(cal_prop("CALSCALE"), Some("GREGORIAN"));
    // A published feed, not an iTIP message: no METHOD, so DTSTAMP is the last revision.
    assert_eq!(cal_prop("METHOD"), None);
    assert_eq!(cal_prop("X-WR-CALNAME"), Some("Kettle meetups, London; & more"));

    let title = long_title();
    let expected = sample_events(&title);
    let vevents: Vec<&Component> = cal.components.iter().filter(|c| c.name == "VEVENT").collect();
    assert_eq!(vevents.len(), expected.len());
    for (parsed, want) in vevents.iter().zip(&expected) {
        assert_eq!(prop(parsed, "UID"), want.uid);
        assert_eq!(prop(parsed, "SEQUENCE"), want.sequence.to_string());
        let status = if want.cancelled { "CANCELLED" } else { "CONFIRMED" };
        assert_eq!(prop(parsed, "STATUS"), status);
        assert_eq!(prop(parsed, "SUMMARY"), want.summary);
        assert_eq!(prop(parsed, "DTSTAMP"), "20261224T174530Z");
        assert_eq!(prop(parsed, "LAST-MODIFIED"), "20261224T174530Z");
        assert_eq!(prop(parsed, "CREATED"), "20261102T091500Z");
        assert_eq!(parse_civil(prop(parsed, "DTSTART")), want.local_start);
        assert_eq!(parse_civil(prop(parsed, "DTEND")), want.local_end);
        // The TZID is the canonical IANA name, whatever casing came in.
        let tzid = param(parsed, "DTSTART", "TZID").expect("DTSTART has a TZID");
        assert!(tzid.eq_ignore_ascii_case(want.time_zone));
        assert_eq!(param(parsed, "DTEND", "TZID"), Some(tzid));
        assert!(
            cal.components.iter().any(|c| c.name == "VTIMEZONE" && prop(c, "TZID") == tzid),
            "no VTIMEZONE for {tzid}"
        );
    }

    let first = vevents[0];
    assert_eq!(prop(first, "SUMMARY"), NASTY_SUMMARY);
    assert_eq!(prop(first, "DESCRIPTION"), "Bring a laptop.\nDoors open at 18:30; C:\\temp, not needed.\nThanks!");
    assert_eq!(prop(first, "LOCATION"), "The Crab & Anchor, 1 Dock St; London");
    // URI values are not TEXT-escaped; the injected newline is gone.
    assert_eq!(prop(first, "URL"), "https://kettle.example.org/meetups/42?a=1;b=2,c");
    // ORGANIZER: a URI value, and a CN quoted because it holds `,` and `;` (RFC 5545
    // forbids `"` inside a quoted value, so those are dropped).
    assert_eq!(prop(first, "ORGANIZER"), "https://kettle.example.org/meetups/groups/teacamp");
    assert_eq!(param(first, "ORGANIZER", "CN").map(|cn| cn.trim_matches('"')), Some("TeaCamp, North; West"));
    assert!(vevents[1].find_prop("ORGANIZER").is_none());
    assert_eq!(prop(vevents[1], "SUMMARY"), title);
    assert!(vevents[1].find_prop("DESCRIPTION").is_none());

    let tzids: Vec<&str> = cal.components.iter().filter(|c| c.name == "VTIMEZONE").map(|c| prop(c, "TZID")).collect();
    assert_eq!(tzids, ["Europe/London", "America/New_York", "Asia/Tokyo", "Asia/Dubai"]);
}

fn vtimezone<'a>(cal: &'a icalendar::parser::Calendar<'a>, tzid: &str) -> &'a Component<'a> {
    cal.components
        .iter()
        .find(|c| c.name == "VTIMEZONE" && prop(c, "TZID") == tzid)
        .unwrap_or_else(|| panic!("no VTIMEZONE {tzid}"))
}

#[test]
fn london_vtimezone_has_bst_on_the_last_sundays() {
    let unfolded = unfold(&sample_feed());
    let cal = read_calendar(&unfolded).unwrap();
    let obs = observances(vtimezone(&cal, "Europe/London"));

    // Jan and Jul need both offsets.
    assert!(obs.iter().any(|o| o.to == 0 && o.kind == "STANDARD"));
    assert!(obs.iter().any(|o| o.to == 3600 && o.kind == "DAYLIGHT"));

    // In force on 1 Jan 2027: GMT since the last Sunday of October 2026.
    let onsets: Vec<(&str, DateTime, i32, i32, &str)> =
        obs.iter().map(|o| (o.kind.as_str(), o.onset_local, o.from, o.to, o.name.as_str())).collect();
    assert_eq!(
        onsets,
        [
            ("STANDARD", last_sunday(2026, 10).at(2, 0, 0, 0), 3600, 0, "GMT"),
            ("DAYLIGHT", last_sunday(2027, 3).at(1, 0, 0, 0), 0, 3600, "BST"),
            ("STANDARD", last_sunday(2027, 10).at(2, 0, 0, 0), 3600, 0, "GMT"),
        ]
    );
    assert_eq!(last_sunday(2027, 3), date(2027, 3, 28));
    assert_eq!(last_sunday(2027, 10), date(2027, 10, 31));

    assert_eq!(offset_at(&obs, date(2027, 1, 14).at(19, 0, 0, 0)), 0);
    assert_eq!(offset_at(&obs, date(2027, 7, 15).at(18, 30, 0, 0)), 3600);
    assert_eq!(offset_at(&obs, date(2027, 3, 28).at(3, 0, 0, 0)), 3600);
    assert_eq!(offset_at(&obs, date(2027, 10, 31).at(18, 0, 0, 0)), 0);
}

#[test]
fn new_york_vtimezone_follows_us_rules() {
    let unfolded = unfold(&sample_feed());
    let cal = read_calendar(&unfolded).unwrap();
    let obs = observances(vtimezone(&cal, "America/New_York"));
    let summary: Vec<(&str, DateTime, i32)> = obs.iter().map(|o| (o.kind.as_str(), o.onset_local, o.to)).collect();
    // Second Sunday of March, first Sunday of November, at 02:00 local.
    assert_eq!(
        summary,
        [
            ("STANDARD", date(2026, 11, 1).at(2, 0, 0, 0), -5 * 3600),
            ("DAYLIGHT", date(2027, 3, 14).at(2, 0, 0, 0), -4 * 3600),
            ("STANDARD", date(2027, 11, 7).at(2, 0, 0, 0), -5 * 3600),
        ]
    );
    assert_eq!(offset_at(&obs, date(2027, 1, 20).at(19, 0, 0, 0)), -5 * 3600);
    assert_eq!(offset_at(&obs, date(2027, 7, 21).at(19, 0, 0, 0)), -4 * 3600);
}

#[test]
fn tokyo_vtimezone_is_a_single_standard() {
    let unfolded = unfold(&sample_feed());
    let cal = read_calendar(&unfolded).unwrap();
    let obs = observances(vtimezone(&cal, "Asia/Tokyo"));
    assert_eq!(obs.len(), 1, "{obs:?}");
    assert_eq!(obs[0].kind, "STANDARD");
    assert_eq!(obs[0].to, 9 * 3600);
    assert_eq!(obs[0].name, "JST");
    assert!(obs[0].onset_local.year() < 2027);
}

#[test]
fn each_vtimezone_agrees_with_jiff_at_every_event() {
    // Cross-check the parsed VTIMEZONEs (not the renderer's internals) against
    // the expected UTC instants.
    let unfolded = unfold(&sample_feed());
    let cal = read_calendar(&unfolded).unwrap();
    for vevent in cal.components.iter().filter(|c| c.name == "VEVENT") {
        let tzid = param(vevent, "DTSTART", "TZID").unwrap();
        let obs = observances(vtimezone(&cal, tzid));
        let local = parse_civil(prop(vevent, "DTSTART"));
        let offset = offset_at(&obs, local);
        let utc = local - SignedDuration::from_secs(offset.into());
        let uid = prop(vevent, "UID");
        let want = EXPECTED_UTC_STARTS.iter().find(|(u, _)| *u == uid).unwrap().1;
        let want: Timestamp = want.parse().unwrap();
        assert_eq!(utc, jiff::tz::Offset::UTC.to_datetime(want), "{uid}");
    }
}

#[test]
fn ical_crate_parses_the_feed_too() {
    let feed = sample_feed();
    let mut parser = ical::IcalParser::new(BufReader::new(feed.as_bytes()));
    let cal = parser.next().expect("one calendar").expect("ical crate parses");
    assert!(parser.next().is_none());

    let value = |props: &[ical::property::Property], name: &str| {
        props.iter().find(|p| p.name == name).and_then(|p| p.value.clone()).unwrap_or_else(|| panic!("no {name}"))
    };
    let title = long_title();
    let expected = sample_events(&title);
    assert_eq!(cal.events.len(), expected.len());
    for (parsed, want) in cal.events.iter().zip(&expected) {
        assert_eq!(value(&parsed.properties, "UID"), want.uid);
        let dtstart = parsed.properties.iter().find(|p| p.name == "DTSTART").unwrap();
        let params = dtstart.params.as_ref().expect("DTSTART params");
        let tzid = &params.iter().find(|(k, _)| k == "TZID").unwrap().1[0];
        assert!(cal.timezones.iter().any(|tz| value(&tz.properties, "TZID") == *tzid));
    }
    // The ical crate does not unescape TEXT; unescape here, independently.
    let unescape = |raw: &str| {
        let mut out = String::new();
        let mut chars = raw.chars();
        while let Some(c) = chars.next() {
            if c == '\\' {
                match chars.next() {
                    Some('n' | 'N') => out.push('\n'),
                    Some(other) => out.push(other),
                    None => {}
                }
            } else {
                out.push(c);
            }
        }
        out
    };
    // Folding kept every space even though this parser trims line ends.
    assert_eq!(unescape(&value(&cal.events[1].properties, "SUMMARY")), title);
    assert_eq!(unescape(&value(&cal.events[0].properties, "SUMMARY")), NASTY_SUMMARY);
    let tokyo = cal.timezones.iter().find(|tz| value(&tz.properties, "TZID") == "Asia/Tokyo").unwrap();
    assert_eq!(tokyo.transitions.len(), 1);
    assert!(matches!(
        tokyo.transitions[0].transition,
        ical::parser::ical::component::IcalTimeZoneTransitionType::STANDARD
    ));
    assert_eq!(value(&tokyo.transitions[0].properties, "TZOFFSETTO"), "+0900");
}

#[test]
fn unknown_zone_gives_floating_times_and_no_vtimezone() {
    let events = [event(
        "occurrence-9@kettle.example.org",
        "Somewhere",
        "Mars/Olympus_Mons",
        date(2027, 5, 1).at(10, 0, 0, 0),
        date(2027, 5, 1).at(11, 0, 0, 0),
    )];
    let feed = render(&Calendar { name: "x", events: &events });
    assert!(feed.contains("\r\nDTSTART:20270501T100000\r\n"));
    assert!(!feed.contains("VTIMEZONE"));
    read_calendar(&unfold(&feed)).unwrap();
}

#[test]
fn utc_zone_gets_a_vtimezone_too() {
    let events = [event(
        "occurrence-10@kettle.example.org",
        "Online",
        "UTC",
        date(2027, 5, 1).at(10, 0, 0, 0),
        date(2027, 5, 1).at(11, 0, 0, 0),
    )];
    let feed = render(&Calendar { name: "x", events: &events });
    let unfolded = unfold(&feed);
    let cal = read_calendar(&unfolded).unwrap();
    let obs = observances(vtimezone(&cal, "UTC"));
    assert_eq!(obs.len(), 1, "{obs:?}");
    assert_eq!((obs[0].kind.as_str(), obs[0].from, obs[0].to), ("STANDARD", 0, 0));
}

/// RFC 5545 §3.4 wants at least one component in a VCALENDAR: an empty feed
/// carries a VTIMEZONE for UTC, which every parser reads and no client shows.
#[test]
fn empty_feed_still_holds_a_component() {
    let feed = render(&Calendar { name: "Nothing yet", events: &[] });
    let unfolded = unfold(&feed);
    let cal = read_calendar(&unfolded).unwrap();
    let names: Vec<&str> = cal.components.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["VTIMEZONE"]);
    assert_eq!(prop(&cal.components[0], "TZID"), "UTC");
    assert_eq!(render(&Calendar { name: "Nothing yet", events: &[] }), feed, "the same bytes every time");

    let mut parser = ical::IcalParser::new(BufReader::new(feed.as_bytes()));
    let parsed = parser.next().expect("one calendar").expect("ical crate parses");
    assert_eq!((parsed.events.len(), parsed.timezones.len()), (0, 1));

    if let Some(out) = python("tests/ical/check_calendar.py", &feed) {
        assert!(out.contains("\"components\": [\"VTIMEZONE\"]"), "{out}");
    }
}

/// DTSTAMP is the event's last revision in UTC (`YYYYMMDDTHHMMSSZ`), not the time of
/// the fetch: the output stays the same until the event changes.
#[test]
fn dtstamp_is_the_last_revision_in_utc() {
    let title = long_title();
    let events = sample_events(&title);
    let feed = render(&Calendar { name: "x", events: &events });
    assert_eq!(feed.matches("\r\nDTSTAMP:20261224T174530Z\r\n").count(), events.len());
    assert_eq!(sample_feed(), sample_feed());
}

/// UIDs name the installation and the occurrence, nothing from the public URL.
#[test]
fn uids_name_the_instance_not_the_host() {
    assert_eq!(
        event_uid("0123456789abcdef0123456789abcdef", 42),
        "meetup-event-42@0123456789abcdef0123456789abcdef.kettle"
    );
}

#[test]
fn the_agenda_is_listed_in_order_with_times_and_speakers() {
    use kettle::meetups::agenda::{AgendaItem, AgendaItemKind};
    let item = |position, kind, title: &str, speaker_member_id, speaker_name: &str, duration_minutes| AgendaItem {
        id: position,
        event_id: 1,
        position,
        kind,
        title: title.to_string(),
        speaker_member_id,
        speaker_name: speaker_name.to_string(),
        duration_minutes,
        case_study_id: None,
        starts_at: 0,
    };
    let items = [
        item(1, AgendaItemKind::Talk, "Bins", Some(7), "", 25),
        item(2, AgendaItemKind::Break, "Tea", None, "", 0),
        item(3, AgendaItemKind::Discussion, "Next", None, "Grace", 40),
    ];
    let speakers = std::collections::HashMap::from([(7, "Ada".to_string())]);
    assert_eq!(
        agenda_text(date(2027, 1, 14).at(18, 50, 0, 0), &items, &speakers),
        "Agenda:\n18:50 Bins (Ada), 25 min\n19:15 Tea\n19:15 Next (Grace), 40 min"
    );
    assert_eq!(agenda_text(date(2027, 1, 14).at(18, 50, 0, 0), &[], &speakers), "");
}

/// Set to 1 (e.g. in CI) to make a missing Python `icalendar` a failure
/// instead of a loudly reported skip.
const REQUIRE_PYTHON: &str = "KETTLE_REQUIRE_PYTHON_ICALENDAR";

/// Runs `script` with `input` on stdin and returns its stdout; `None` (said loudly)
/// when Python's `icalendar` is missing and REQUIRE_PYTHON is not 1.
fn python(script: &str, input: &str) -> Option<String> {
    let available = Command::new("python3")
        .args(["-c", "import icalendar"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !available {
        assert!(
            std::env::var(REQUIRE_PYTHON).as_deref() != Ok("1"),
            "{REQUIRE_PYTHON}=1 but `python3 -c 'import icalendar'` fails"
        );
        // Written straight to stderr so the test harness does not swallow it.
        let _ = writeln!(
            std::io::stderr(),
            "\n*** SKIPPED {script}: `python3 -c 'import icalendar'` failed (pip install icalendar); \
             only the Rust parsers checked the feed. ***\n"
        );
        return None;
    }
    let mut child = Command::new("python3")
        .arg(format!("{}/{script}", env!("CARGO_MANIFEST_DIR")))
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

#[test]
fn python_icalendar_converts_dtstart_to_utc() {
    let Some(stdout) = python("tests/ical/check_feed.py", &sample_feed()) else { return };

    // One line per event: UID, start via our VTIMEZONE, start via zoneinfo,
    // summary.
    let title = long_title();
    let events = sample_events(&title);
    let mut seen = 0;
    for line in stdout.lines() {
        let fields: Vec<&str> = line.split('\t').collect();
        let [uid, via_vtimezone, via_zoneinfo, summary_hex] = fields[..] else {
            panic!("unexpected line {line:?}");
        };
        let want = EXPECTED_UTC_STARTS.iter().find(|(u, _)| *u == uid).unwrap_or_else(|| panic!("unknown UID {uid}")).1;
        assert_eq!(via_vtimezone, want, "{uid} via VTIMEZONE");
        assert_eq!(via_zoneinfo, want, "{uid} via zoneinfo");
        let summary = String::from_utf8(
            (0..summary_hex.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&summary_hex[i..i + 2], 16).unwrap())
                .collect(),
        )
        .unwrap();
        let want_summary = events.iter().find(|e| e.uid == uid).unwrap().summary;
        assert_eq!(summary, want_summary, "{uid}");
        seen += 1;
    }
    assert_eq!(seen, EXPECTED_UTC_STARTS.len());
}

/// Every day at noon over three years, in zones with odd rules (negative DST
/// in Dublin, 30-minute DST on Lord Howe, DST abolished in Sao Paulo,
/// Ramadan suspensions in Casablanca, southern hemisphere), the VTIMEZONE as
/// parsed back must give the same offset as jiff.
#[test]
fn vtimezones_match_jiff_every_day_for_three_years() {
    let zones = [
        "Europe/London",
        "America/New_York",
        "Asia/Tokyo",
        "Europe/Dublin",
        "Australia/Lord_Howe",
        "Asia/Kolkata",
        "America/Sao_Paulo",
        "Pacific/Auckland",
        "America/St_Johns",
        "Africa/Casablanca",
        "UTC",
    ];
    let events: Vec<Event> = zones
        .iter()
        .flat_map(|zone| {
            [
                event("a@x", "a", zone, date(2026, 1, 1).at(0, 30, 0, 0), date(2026, 1, 1).at(1, 0, 0, 0)),
                event("b@x", "b", zone, date(2028, 12, 31).at(22, 0, 0, 0), date(2028, 12, 31).at(23, 0, 0, 0)),
            ]
        })
        .collect();
    let feed = render(&Calendar { name: "zones", events: &events });
    let unfolded = unfold(&feed);
    let cal = read_calendar(&unfolded).unwrap();
    for zone in zones {
        let tz = TimeZone::get(zone).unwrap();
        let obs = observances(vtimezone(&cal, zone));
        let mut day = date(2026, 1, 1);
        let mut checked = 0;
        while day.year() <= 2028 {
            let local = day.at(12, 0, 0, 0);
            let want = tz.to_ambiguous_timestamp(local).unambiguous().unwrap();
            let want = tz.to_offset(want).seconds();
            assert_eq!(offset_at(&obs, local), want, "{zone} at {local}");
            checked += 1;
            day = day.tomorrow().unwrap();
        }
        assert_eq!(checked, 365 + 365 + 366);
    }
}
