//! iCalendar (RFC 5545) feeds of meetup events.
//!
//! Calendar apps subscribe to these feeds and keep them for a long time, so
//! the output is deliberately conservative: every event carries its IANA zone
//! as a `TZID` plus a matching `VTIMEZONE` (some clients, notably Outlook,
//! ignore `TZID`s they have no `VTIMEZONE` for), `DTSTAMP` follows
//! `LAST-MODIFIED` so clients notice edits, and all text is escaped, stripped
//! of control characters and folded so no client can be confused or injected
//! into by user-written titles.
//!
//! There is no `METHOD`: these are published calendars that apps subscribe to,
//! not iTIP scheduling messages (RFC 5546). That is also what makes `DTSTAMP`
//! right: with a `METHOD`, RFC 5545 §3.8.7.2 says `DTSTAMP` is when the
//! iCalendar *object* was made (every fetch, so every poll would look like a
//! change); without one it is when the event was last revised in the store,
//! which is the event's `LAST-MODIFIED` and keeps the output deterministic.
//!
//! A calendar with no events still holds one component (RFC 5545 §3.4 asks for
//! at least one): a `VTIMEZONE` for UTC, which every parser accepts and no
//! client shows.
//!
//! The module is pure: no I/O, no clock, no globals. Everything it knows
//! about time zones comes from jiff's bundled tz database, so the same input
//! always renders the same bytes.

use jiff::civil::DateTime;
use jiff::tz::{Offset, TimeZone, TimeZoneTransition};
use jiff::{SignedDuration, Timestamp};

/// Longest physical line RFC 5545 §3.1 allows, in octets, excluding CRLF.
const MAX_LINE_OCTETS: usize = 75;

/// A feed: one `VCALENDAR` holding the given events.
#[derive(Debug, Clone, Copy)]
pub struct Calendar<'a> {
    /// Shown by clients as the subscription's name (`X-WR-CALNAME`).
    pub name: &'a str,
    pub events: &'a [Event<'a>],
}

/// One meetup occurrence, as a `VEVENT`.
///
/// Times are given as local wall-clock time plus an IANA zone because that is
/// what organisers mean ("7pm in London"): clients then keep the event at 7pm
/// even if DST rules change after the feed was fetched.
#[derive(Debug, Clone, Copy)]
pub struct Event<'a> {
    /// Must stay the same for the life of the occurrence (e.g.
    /// `occurrence-42@kettle.example.org`), or clients duplicate the event
    /// instead of updating it.
    pub uid: &'a str,
    /// Bumped on every significant change so clients replace their copy.
    /// Negative values are clamped to 0, which RFC 5545 treats as the first
    /// revision.
    pub sequence: i64,
    /// Cancelled occurrences are still published (with `STATUS:CANCELLED`)
    /// so subscribers see the cancellation instead of a silent disappearance.
    pub cancelled: bool,
    pub summary: &'a str,
    /// Plain text; newlines are preserved. Omitted from the output if empty.
    pub description: &'a str,
    pub location: Option<&'a str>,
    /// The meetup's own page.
    pub url: Option<&'a str>,
    /// Who runs it: the group.
    pub organizer: Option<Organizer<'a>>,
    /// IANA name such as `Europe/London`. An unknown name makes the event's
    /// times *floating* (no `TZID`): for an in-person meetup the attendee's
    /// own zone is the best remaining guess, and one bad row must not break
    /// the whole feed.
    pub time_zone: &'a str,
    pub local_start: DateTime,
    pub local_end: DateTime,
    pub created: Timestamp,
    pub last_modified: Timestamp,
}

/// An event's `ORGANIZER`: a display name (`CN`) and a calendar user address.
///
/// RFC 5545 §3.3.3 makes a CAL-ADDRESS any URI; Kettle uses the group's page
/// (`https://…/meetups/groups/slug`) rather than a made-up mailbox, because a
/// `mailto:` would invite replies that nobody reads, while the page is where
/// the group really can be reached.
#[derive(Debug, Clone, Copy)]
pub struct Organizer<'a> {
    pub name: &'a str,
    pub address: &'a str,
}

/// The zone of the placeholder `VTIMEZONE` in a calendar without events.
const EMPTY_CALENDAR_ZONE: &str = "UTC";

/// Renders `calendar` as a complete iCalendar object with CRLF line endings.
pub fn render(calendar: &Calendar) -> String {
    let mut zones = collect_zones(calendar.events);
    if calendar.events.is_empty() {
        // A fixed year, so an empty calendar renders the same bytes every time.
        let year = 2026;
        if let Ok(tz) = TimeZone::get(EMPTY_CALENDAR_ZONE) {
            let tzid = tz.iana_name().unwrap_or(EMPTY_CALENDAR_ZONE).to_string();
            zones.push(Zone { names: vec![EMPTY_CALENDAR_ZONE], tz, tzid, first_year: year, last_year: year });
        }
    }
    let mut out = Output::default();

    out.line("BEGIN:VCALENDAR");
    out.line("VERSION:2.0");
    out.line("PRODID:-//Kettle//Meetups//EN");
    out.line("CALSCALE:GREGORIAN");
    out.text("X-WR-CALNAME", calendar.name);
    for zone in &zones {
        write_vtimezone(&mut out, zone);
    }
    for event in calendar.events {
        let zone = zones.iter().find(|z| z.matches(event.time_zone));
        write_vevent(&mut out, event, zone);
    }
    out.line("END:VCALENDAR");
    out.0
}

/// Escapes a TEXT value (RFC 5545 §3.3.11): backslash, `;` and `,` get a
/// backslash, any newline (LF, CRLF or lone CR) becomes `\n`, and other
/// control characters are dropped because TEXT cannot carry them and they
/// could otherwise end the content line early, as is whatever else Kettle's
/// text policy refuses (noncharacters such as U+FFFE), so rows stored before
/// the policy cannot break a feed. Tabs are kept (TEXT allows them).
pub fn escape_text(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let mut chars = value.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.push_str("\\\\"),
            ';' => out.push_str("\\;"),
            ',' => out.push_str("\\,"),
            '\n' => out.push_str("\\n"),
            '\r' => {
                if chars.peek() == Some(&'\n') {
                    chars.next();
                }
                out.push_str("\\n");
            }
            '\t' => out.push('\t'),
            c if !allowed(c) => {}
            c => out.push(c),
        }
    }
    out
}

/// Folds one content line (RFC 5545 §3.1) and terminates it with CRLF.
///
/// Every physical line is at most 75 octets, continuation lines start with a
/// single space (which counts towards the 75), and breaks only fall between
/// UTF-8 characters so no client sees a split code point. Where a break would
/// leave spaces or tabs at the end of a physical line they are carried over
/// to the next one instead, because some parsers (e.g. the `ical` crate) and
/// mail relays strip trailing whitespace and would eat them. `line` must be a
/// single unfolded content line, i.e. contain no CR or LF.
pub fn fold(line: &str) -> String {
    let mut out = String::with_capacity(line.len() + line.len() / 24 + 2);
    // Byte index in `out` where the current physical line's own text starts
    // (after the fold space), and how many octets the physical line uses.
    let mut body_start = 0;
    let mut used = 0;
    for c in line.chars() {
        let len = c.len_utf8();
        if used + len > MAX_LINE_OCTETS {
            let body = &out[body_start..];
            let trailing = body.len() - body.trim_end_matches([' ', '\t']).len();
            let carry = trailing > 0 && trailing < body.len() && 1 + trailing + len <= MAX_LINE_OCTETS;
            let at = if carry { out.len() - trailing } else { out.len() };
            out.insert_str(at, "\r\n ");
            body_start = at + 3;
            used = 1 + (out.len() - body_start);
        }
        out.push(c);
        used += len;
    }
    out.push_str("\r\n");
    out
}

/// Accumulates folded content lines.
#[derive(Default)]
struct Output(String);

impl Output {
    fn line(&mut self, line: &str) {
        self.0.push_str(&fold(line));
    }

    fn prop(&mut self, name: &str, value: &str) {
        self.line(&format!("{name}:{value}"));
    }

    fn text(&mut self, name: &str, value: &str) {
        self.prop(name, &escape_text(value));
    }
}

/// A time zone used by at least one event, with the local years its events
/// touch: the `VTIMEZONE` must describe every offset change in that span.
struct Zone<'a> {
    /// The name as events spell it; jiff accepts other casings of the
    /// canonical name, so several spellings may share one zone.
    names: Vec<&'a str>,
    tz: TimeZone,
    tzid: String,
    first_year: i16,
    last_year: i16,
}

impl Zone<'_> {
    fn matches(&self, name: &str) -> bool {
        self.names.contains(&name)
    }
}

/// Distinct valid zones in order of first use, so output is deterministic.
fn collect_zones<'a>(events: &[Event<'a>]) -> Vec<Zone<'a>> {
    let mut zones: Vec<Zone<'a>> = Vec::new();
    for event in events {
        let Ok(tz) = TimeZone::get(event.time_zone) else {
            continue;
        };
        let tzid = tz.iana_name().unwrap_or(event.time_zone).to_string();
        let first = event.local_start.year().min(event.local_end.year());
        let last = event.local_start.year().max(event.local_end.year());
        match zones.iter_mut().find(|z| z.tzid == tzid) {
            Some(zone) => {
                if !zone.matches(event.time_zone) {
                    zone.names.push(event.time_zone);
                }
                zone.first_year = zone.first_year.min(first);
                zone.last_year = zone.last_year.max(last);
            }
            None => zones.push(Zone { names: vec![event.time_zone], tz, tzid, first_year: first, last_year: last }),
        }
    }
    zones
}

/// Writes a `VTIMEZONE` as explicit dated observances rather than RRULEs:
/// jiff exposes real transitions, and listing them avoids encoding rule
/// changes (e.g. the US 2007 switch) as RRULE/UNTIL pairs.
///
/// The first observance is the transition in force when the span starts
/// (for a zone without DST, such as Asia/Tokyo, that is the only one and it
/// is a single `STANDARD`); then every transition inside the span follows.
fn write_vtimezone(out: &mut Output, zone: &Zone) {
    let tz = &zone.tz;
    let span_start = year_start(tz, zone.first_year);
    let span_end = zone.last_year.checked_add(1).map_or(Timestamp::MAX, |year| year_start(tz, year));

    out.line("BEGIN:VTIMEZONE");
    out.prop("TZID", &zone.tzid);

    // `preceding` is strict, so nudge forward to include a transition that
    // lands exactly on the span start.
    let in_force = tz.preceding(nudge(span_start, 1)).next();
    match &in_force {
        Some(transition) => write_observance(out, tz, transition),
        None => {
            // The zone has never changed offset (e.g. Etc/UTC): one STANDARD
            // that starts with the span and changes nothing.
            let info = tz.to_offset_info(span_start);
            let offset = info.offset();
            out.line("BEGIN:STANDARD");
            out.prop("DTSTART", &format_local(offset.to_datetime(span_start)));
            out.prop("TZOFFSETFROM", &format_offset(offset));
            out.prop("TZOFFSETTO", &format_offset(offset));
            if !info.abbreviation().is_empty() {
                out.text("TZNAME", info.abbreviation());
            }
            out.line("END:STANDARD");
        }
    }

    let after = in_force.map_or(span_start, |t| t.timestamp());
    for transition in tz.following(after) {
        if transition.timestamp() >= span_end {
            break;
        }
        write_observance(out, tz, &transition);
    }
    out.line("END:VTIMEZONE");
}

/// One `STANDARD`/`DAYLIGHT` block for a single transition. `DTSTART` is the
/// onset in the local time that was in force *before* it (RFC 5545 §3.6.5),
/// e.g. 01:00 for London's spring change, 02:00 for its autumn change.
fn write_observance(out: &mut Output, tz: &TimeZone, transition: &TimeZoneTransition) {
    let at = transition.timestamp();
    let from = tz.to_offset(nudge(at, -1));
    let to = transition.offset();
    let kind = if transition.dst().is_dst() { "DAYLIGHT" } else { "STANDARD" };
    out.line(&format!("BEGIN:{kind}"));
    out.prop("DTSTART", &format_local(from.to_datetime(at)));
    out.prop("TZOFFSETFROM", &format_offset(from));
    out.prop("TZOFFSETTO", &format_offset(to));
    if !transition.abbreviation().is_empty() {
        out.text("TZNAME", transition.abbreviation());
    }
    out.line(&format!("END:{kind}"));
}

fn write_vevent(out: &mut Output, event: &Event, zone: Option<&Zone>) {
    out.line("BEGIN:VEVENT");
    out.text("UID", event.uid);
    out.prop("DTSTAMP", &format_utc(event.last_modified));
    out.prop("CREATED", &format_utc(event.created));
    out.prop("LAST-MODIFIED", &format_utc(event.last_modified));
    out.prop("SEQUENCE", &event.sequence.max(0).to_string());
    out.line(if event.cancelled { "STATUS:CANCELLED" } else { "STATUS:CONFIRMED" });
    let time_prop = |name: &str| match zone {
        Some(zone) => format!("{name};TZID={}", param_value(&zone.tzid)),
        None => name.to_string(),
    };
    out.prop(&time_prop("DTSTART"), &format_local(event.local_start));
    out.prop(&time_prop("DTEND"), &format_local(event.local_end));
    out.text("SUMMARY", event.summary);
    if !event.description.is_empty() {
        out.text("DESCRIPTION", event.description);
    }
    if let Some(location) = event.location.filter(|l| !l.is_empty()) {
        out.text("LOCATION", location);
    }
    if let Some(url) = event.url.map(strip_controls).filter(|u| !u.is_empty()) {
        out.prop("URL", &url);
    }
    if let Some(organizer) = event.organizer {
        let address = strip_controls(organizer.address);
        if !address.is_empty() {
            out.prop(&format!("ORGANIZER;CN={}", param_value(organizer.name)), &address);
        }
    }
    out.line("END:VEVENT");
}

/// Local midnight starting `year` in `tz`; saturates at jiff's range limits
/// because the span only needs to be at least as wide as the events.
fn year_start(tz: &TimeZone, year: i16) -> Timestamp {
    DateTime::new(year, 1, 1, 0, 0, 0, 0)
        .and_then(|dt| tz.to_ambiguous_timestamp(dt).compatible())
        .unwrap_or(if year < 0 { Timestamp::MIN } else { Timestamp::MAX })
}

/// `ts` moved by `nanos`, staying put at jiff's range limits (where no
/// transition can be anyway).
fn nudge(ts: Timestamp, nanos: i64) -> Timestamp {
    ts.checked_add(SignedDuration::from_nanos(nanos)).unwrap_or(ts)
}

/// `YYYYMMDDTHHMMSS`, the form used with `TZID` and in `VTIMEZONE`.
fn format_local(dt: DateTime) -> String {
    format!("{:04}{:02}{:02}T{:02}{:02}{:02}", dt.year(), dt.month(), dt.day(), dt.hour(), dt.minute(), dt.second())
}

/// `YYYYMMDDTHHMMSSZ`, the UTC form required for `DTSTAMP`, `CREATED` and
/// `LAST-MODIFIED`.
fn format_utc(ts: Timestamp) -> String {
    format!("{}Z", format_local(Offset::UTC.to_datetime(ts)))
}

/// `±HHMM`, or `±HHMMSS` for the historical offsets with seconds.
fn format_offset(offset: Offset) -> String {
    let total = offset.seconds();
    let sign = if total < 0 { '-' } else { '+' };
    let abs = total.unsigned_abs();
    let (h, m, s) = (abs / 3600, abs / 60 % 60, abs % 60);
    if s == 0 {
        format!("{sign}{h:02}{m:02}")
    } else {
        format!("{sign}{h:02}{m:02}{s:02}")
    }
}

/// A parameter value, quoted when it holds characters that would end it
/// early. IANA names never do, but the TZID and CN come from data. A quoted
/// value cannot carry `"` (RFC 5545 §3.1), so those are dropped.
fn param_value(value: &str) -> String {
    let clean: String = strip_controls(value).replace('"', "");
    if clean.contains([':', ';', ',']) {
        format!("\"{clean}\"")
    } else {
        clean
    }
}

/// URI values are not TEXT-escaped, but a control character (above all a
/// newline) would let a URL inject properties, so those are removed, as is
/// anything else the text policy refuses.
fn strip_controls(value: &str) -> String {
    value.chars().filter(|c| allowed(*c)).collect()
}

/// Whether `c` may appear in a value at all (before escaping): RFC 5545 allows
/// no control characters but HTAB, and Kettle emits nothing its text policy
/// refuses.
fn allowed(c: char) -> bool {
    !c.is_control() && crate::text::refusal(c).is_none()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_text_specials_and_strips_controls() {
        assert_eq!(
            escape_text("a\\b;c,d\ne\r\nf\rg\u{0}h\u{7f}i\tj"),
            "a\\\\b\\;c\\,d\\ne\\nf\\ng".to_string() + "hi\tj"
        );
        assert_eq!(escape_text("colon: fine"), "colon: fine");
        assert_eq!(escape_text("a\u{b}b\u{c}c\u{85}d\u{fffe}e\u{ffff}f\u{fdd0}g"), "abcdefg");
        assert_eq!(strip_controls("https://example.org/\r\nX-INJECTED:1\u{fffe}"), "https://example.org/X-INJECTED:1");
    }

    #[test]
    fn folds_at_75_octets_without_splitting_characters() {
        assert_eq!(fold("short"), "short\r\n");
        let long = "é".repeat(100); // 200 octets
        let folded = fold(&long);
        for physical in folded.split_terminator("\r\n") {
            assert!(physical.len() <= MAX_LINE_OCTETS, "{physical:?}");
        }
        assert_eq!(folded.replace("\r\n ", "").trim_end_matches("\r\n"), long);
        let exact = "x".repeat(75);
        assert_eq!(fold(&exact), format!("{exact}\r\n"));
        assert_eq!(fold(&"x".repeat(76)), format!("{exact}\r\n x\r\n"));
        // Trailing whitespace moves to the continuation line.
        let spaced = format!("{}  yz", "x".repeat(73));
        assert_eq!(fold(&spaced), format!("{}\r\n   yz\r\n", "x".repeat(73)));
        // ...unless the physical line would then be only whitespace.
        let blank = " ".repeat(80);
        assert_eq!(fold(&blank).replace("\r\n ", ""), format!("{blank}\r\n"));
    }

    #[test]
    fn fold_invariants_hold_for_many_lengths_and_widths() {
        let alphabet = ['a', ' ', 'é', '€', '🦀', '\t', ',', '\\'];
        for len in 0..400 {
            let line: String = (0..len).map(|i| alphabet[(i * 7 + len) % 8]).collect();
            let folded = fold(&line);
            let mut physical_lines = folded.split_terminator("\r\n");
            let mut rebuilt = physical_lines.next().unwrap_or("").to_string();
            for cont in physical_lines {
                assert!(cont.starts_with(' '), "{cont:?}");
                rebuilt.push_str(&cont[1..]);
            }
            assert_eq!(rebuilt, line);
            assert!(folded.ends_with("\r\n"));
            for physical in folded.split_terminator("\r\n") {
                assert!(physical.len() <= MAX_LINE_OCTETS, "{physical:?}");
            }
        }
    }

    #[test]
    fn formats_offsets() {
        assert_eq!(format_offset(Offset::constant(1)), "+0100");
        assert_eq!(format_offset(Offset::constant(-5)), "-0500");
        assert_eq!(format_offset(Offset::UTC), "+0000");
        let lmt = Offset::from_seconds(-(3600 + 15 * 60 + 1)).unwrap();
        assert_eq!(format_offset(lmt), "-011501");
        let half = Offset::from_seconds(5 * 3600 + 30 * 60).unwrap();
        assert_eq!(format_offset(half), "+0530");
    }
}
