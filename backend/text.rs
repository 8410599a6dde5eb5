//! The one text policy: which characters Kettle accepts in anything a person or client
//! sends it, and what every writer of stored text may emit.
//!
//! Refused everywhere (in names, Markdown, search terms, slugs, URLs alike): NUL and the
//! other C0 controls except tab, line feed and carriage return; DEL and the C1 controls;
//! and Unicode noncharacters (U+FDD0–U+FDEF and the last two code points of every plane,
//! such as U+FFFE). None of them has a use in text people write; NUL cannot be stored in
//! PostgreSQL at all, and the rest make XML (Atom feeds) ill-formed or hide content.
//! Lone surrogates cannot reach us: JSON with one does not decode into a Rust string.
//!
//! GraphQL requests are checked here as a whole before they execute (see
//! `graphql::limits`), so no resolver ever sees such a character; form fields and URL
//! path segments go through the same function. The per-field checks of names and titles
//! ([`check_line`]) add what only names need: something visible, one line, and no bidi
//! overrides that could make a name read as someone else's.

use crate::error::{UserError, UserErrorCode};

/// How Kettle writes a moment for people, on pages, in mail and in feeds (strftime):
/// 24-hour time, which reads the same in every region ("4 March 2026 at 16:00").
pub const DATE_TIME: &str = "%-d %B %Y at %H:%M";
/// The same with the weekday first, for a moment people plan around (a meetup, the next
/// digest): "Wednesday 4 March 2026 at 16:00".
pub const DAY_DATE_TIME: &str = "%A %-d %B %Y at %H:%M";

/// The instant `millis` as `format` (such as [`DATE_TIME`]) writes it in `zone` (UTC when
/// Kettle does not know the zone).
pub fn moment(millis: i64, zone: &str, format: &str) -> String {
    let Ok(timestamp) = jiff::Timestamp::from_millisecond(millis) else { return millis.to_string() };
    let zone = jiff::tz::TimeZone::get(zone).unwrap_or(jiff::tz::TimeZone::UTC);
    timestamp.to_zoned(zone).strftime(format).to_string()
}

/// Why a character is not accepted, for the message shown to the user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    Control(char),
    Noncharacter(char),
}

impl Refusal {
    pub fn describe(self) -> String {
        match self {
            Refusal::Control(c) => format!("a control character (U+{:04X})", c as u32),
            Refusal::Noncharacter(c) => format!("a character that is not allowed in text (U+{:04X})", c as u32),
        }
    }
}

/// Whether `c` may appear in stored text; tab, line feed and carriage return may.
pub fn refusal(c: char) -> Option<Refusal> {
    let code = c as u32;
    if (c.is_control() && !matches!(c, '\t' | '\n' | '\r')) || code == 0x7f {
        return Some(Refusal::Control(c));
    }
    if (0xFDD0..=0xFDEF).contains(&code) || code & 0xFFFE == 0xFFFE {
        return Some(Refusal::Noncharacter(c));
    }
    None
}

/// The first refused character in `value` and its position (in characters, from 1).
pub fn first_refused(value: &str) -> Option<(usize, Refusal)> {
    value.chars().enumerate().find_map(|(i, c)| refusal(c).map(|r| (i + 1, r)))
}

/// The sentence for a refused character in a field called `label`.
pub fn refusal_message(label: &str, position: usize, refusal: Refusal) -> String {
    format!("{label} contains {} at character {position}. Remove it and try again.", refusal.describe())
}

/// `value` with every refused character left out: what feed, calendar and CSV writers
/// emit, so that even text stored before this policy existed cannot break their format.
pub fn strip_refused(value: &str) -> std::borrow::Cow<'_, str> {
    if first_refused(value).is_none() {
        std::borrow::Cow::Borrowed(value)
    } else {
        std::borrow::Cow::Owned(value.chars().filter(|c| refusal(*c).is_none()).collect())
    }
}

/// Checks one field of text under the policy: the refusal, as a user error naming it.
pub fn check(field: &str, label: &str, value: &str) -> Option<UserError> {
    first_refused(value).map(|(position, refusal)| {
        UserError::new(field, UserErrorCode::Invalid, refusal_message(label, position, refusal))
    })
}

/// Checks a one-line name or title: the policy of [`check`], then present when
/// `required`, at most `max` characters (after trimming), on one line, and, when not
/// empty, with something visible in it.
pub fn check_line(field: &str, label: &str, value: &str, max: usize, required: bool) -> Option<UserError> {
    check_one_line(field, label, value, max, required, false)
}

/// [`check_line`] for the name of a person or an organisation: also refuses the
/// characters that change the direction of text, with which `Ada` could be made to
/// read as someone else's name (U+202E turns what follows around).
pub fn check_name(field: &str, label: &str, value: &str, max: usize, required: bool) -> Option<UserError> {
    check_one_line(field, label, value, max, required, true)
}

fn check_one_line(
    field: &str,
    label: &str,
    value: &str,
    max: usize,
    required: bool,
    names_someone: bool,
) -> Option<UserError> {
    if let Some(error) = check(field, label, value) {
        return Some(error);
    }
    let value = value.trim();
    if value.is_empty() {
        return required
            .then(|| UserError::new(field, UserErrorCode::Blank, format!("Enter your {}.", label.to_lowercase())));
    }
    if value.chars().count() > max {
        return Some(UserError::new(
            field,
            UserErrorCode::TooLong,
            format!("{label} must be {max} characters or fewer."),
        ));
    }
    if value.contains(['\n', '\r']) || value.contains(['\u{2028}', '\u{2029}', '\u{85}']) {
        return Some(UserError::new(field, UserErrorCode::Invalid, format!("{label} must be on one line.")));
    }
    if !value.chars().any(is_visible) {
        return Some(UserError::new(
            field,
            UserErrorCode::Invalid,
            format!("{label} must contain letters, numbers or other visible characters."),
        ));
    }
    if names_someone {
        if let Some((position, c)) = value.chars().enumerate().find(|(_, c)| is_bidi_control(*c)) {
            return Some(UserError::new(
                field,
                UserErrorCode::Invalid,
                format!(
                    "{label} contains a character that changes the direction of text (U+{:04X}) at character {}. \
                     Remove it and try again.",
                    c as u32,
                    position + 1
                ),
            ));
        }
    }
    None
}

/// Whether `c` shows something on its own: not white space, not a format or zero-width
/// character, not a filler that renders blank, not a combining mark (which only
/// decorates the character before it) and not a variation selector or tag.
pub fn is_visible(c: char) -> bool {
    !(c.is_whitespace() || c.is_control() || is_invisible(c))
}

fn is_invisible(c: char) -> bool {
    matches!(
        c as u32,
        0x00AD // soft hyphen
        | 0x034F // combining grapheme joiner
        | 0x061C // Arabic letter mark
        | 0x115F | 0x1160 | 0x3164 | 0xFFA0 // Hangul fillers
        | 0x17B4 | 0x17B5 // Khmer inherent vowels
        | 0x180B..=0x180F // Mongolian variation selectors and vowel separator
        | 0x200B..=0x200F // zero-width space, (non-)joiner, directional marks
        | 0x202A..=0x202E // directional embeddings and overrides
        | 0x2060..=0x206F // word joiner, invisible operators, isolates, deprecated formats
        | 0x2800 // braille pattern blank
        | 0xFE00..=0xFE0F // variation selectors
        | 0xFEFF // zero-width no-break space
        | 0xFFF9..=0xFFFB // interlinear annotation
        | 0x1BCA0..=0x1BCA3 // shorthand format controls
        | 0x1D173..=0x1D17A // musical symbol format controls
        | 0xE0000..=0xE007F // tags
        | 0xE0100..=0xE01EF // variation selectors supplement
        // Combining marks, which draw nothing without a base character.
        | 0x0300..=0x036F
        | 0x0483..=0x0489
        | 0x0591..=0x05BD
        | 0x1AB0..=0x1AFF
        | 0x1DC0..=0x1DFF
        | 0x20D0..=0x20FF
        | 0xFE20..=0xFE2F
    )
}

/// The characters that embed, override, isolate or mark the direction of text.
pub fn is_bidi_control(c: char) -> bool {
    matches!(c as u32, 0x061C | 0x200E | 0x200F | 0x202A..=0x202E | 0x2066..=0x2069)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_controls_and_noncharacters_only() {
        for c in [
            '\u{0}',
            '\u{1}',
            '\u{b}',
            '\u{c}',
            '\u{1b}',
            '\u{7f}',
            '\u{80}',
            '\u{9f}',
            '\u{fdd0}',
            '\u{fffe}',
            '\u{ffff}',
            '\u{1fffe}',
            '\u{10ffff}',
        ] {
            assert!(refusal(c).is_some(), "{:04X} accepted", c as u32);
        }
        for c in ['\t', '\n', '\r', ' ', 'a', 'é', '\u{200b}', '\u{fffd}', '\u{1f600}', '\u{a0}'] {
            assert!(refusal(c).is_none(), "{:04X} refused", c as u32);
        }
    }

    #[test]
    fn positions_and_stripping() {
        assert_eq!(first_refused("ab\u{0}c"), Some((3, Refusal::Control('\u{0}'))));
        assert_eq!(first_refused("fine\ttext\r\n"), None);
        assert_eq!(strip_refused("a\u{1}b\u{fffe}c"), "abc");
        let error = check("body", "Body", "x\u{b}").unwrap();
        assert_eq!(error.field.as_deref(), Some("body"));
        assert!(error.message.contains("U+000B") && error.message.contains("character 2"), "{}", error.message);
    }

    #[test]
    fn one_line_names_and_titles() {
        assert!(check_line("title", "Title", "Bin day reminders", 150, true).is_none());
        assert!(check_line("title", "Title", "  Zuhause: Müll & Recycling 🗑️ ", 150, true).is_none());
        assert!(check_line("title", "Title", "", 150, false).is_none());
        let blank = check_line("title", "Title", " \u{a0}\u{3000} ", 150, true).unwrap();
        assert_eq!((blank.code, blank.message.as_str()), (UserErrorCode::Blank, "Enter your title."));
        assert!(check_line("title", "Title", "   ", 150, false).is_none(), "white space alone is empty");
        let long = check_line("title", "Title", &"x".repeat(151), 150, true).unwrap();
        assert_eq!(long.code, UserErrorCode::TooLong);
        assert!(check_line("title", "Title", &"é".repeat(150), 150, true).is_none());
        for two_lines in ["a\nb", "a\rb", "a\r\nb", "a\u{2028}b"] {
            let error = check_line("title", "Title", two_lines, 150, true).unwrap();
            assert_eq!(error.message, "Title must be on one line.", "{two_lines:?}");
        }
        // The policy itself comes first, with the position of the character.
        let control = check_line("title", "Title", "a\u{7}b", 150, true).unwrap();
        assert!(control.message.contains("U+0007"), "{}", control.message);
        // Nothing visible: zero-width characters, fillers, blanks and lone marks.
        for invisible in [
            "\u{200b}",
            "\u{200b}\u{200c}\u{200d}\u{2060}\u{feff}",
            "\u{115f}\u{1160}",
            "\u{3164}",
            "\u{ffa0}",
            "\u{2800}\u{2800}",
            "\u{0301}\u{0302}",
            "\u{fe0f}",
            "\u{e0041}",
        ] {
            let error =
                check_line("title", "Title", invisible, 150, false).unwrap_or_else(|| panic!("{invisible:?} accepted"));
            assert_eq!(error.code, UserErrorCode::Invalid, "{invisible:?}");
        }
        // Invisible characters beside visible ones are fine (joiners in emoji, ZWNJ in Persian).
        assert!(check_line("title", "Title", "می\u{200c}خواهم", 150, true).is_none());
        assert!(check_line("title", "Title", "👩\u{200d}💻 day", 150, true).is_none());
        // Titles may hold direction marks (quoting a Hebrew or Arabic phrase).
        assert!(check_line("title", "Title", "On \u{2067}שלום\u{2069}", 150, true).is_none());
    }

    #[test]
    fn names_of_people_refuse_direction_changes() {
        assert!(check_name("displayName", "Display name", "Ada Lovelace", 80, true).is_none());
        assert!(check_name("displayName", "Display name", "محمد علي", 80, true).is_none());
        assert!(check_name("displayName", "Display name", "Zoë O'Brien-Smith", 80, true).is_none());
        for c in [
            '\u{202a}', '\u{202b}', '\u{202c}', '\u{202d}', '\u{202e}', '\u{2066}', '\u{2067}', '\u{2068}', '\u{2069}',
            '\u{200e}', '\u{200f}', '\u{61c}',
        ] {
            let name = format!("Ada{c}ecalevol");
            let error = check_name("displayName", "Display name", &name, 80, true)
                .unwrap_or_else(|| panic!("U+{:04X} accepted", c as u32));
            assert_eq!(error.code, UserErrorCode::Invalid);
            assert!(error.message.contains(&format!("U+{:04X}", c as u32)), "{}", error.message);
            assert!(error.message.contains("character 4"), "{}", error.message);
        }
        assert!(check_name("displayName", "Display name", "Ada\rBcc: x@y.z", 80, true).is_some());
        assert!(check_name("displayName", "Display name", "\u{3164}", 80, true).is_some());
    }
}
