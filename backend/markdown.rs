//! Markdown, rendered and sanitised once, when it is written.
//!
//! pulldown-cmark renders CommonMark (with tables and strikethrough); ammonia then keeps
//! only an allow-list of tags and attributes, only http, https and mailto links, adds
//! `rel="nofollow ugc noopener noreferrer"` to every link and prefixes ids, so nothing a
//! member writes can run script, load a resource, submit a form or clash with the page's
//! own ids. The HTML is stored beside the source and reads never render.
//!
//! Headings move down a level (`#` becomes `<h2>`), because the page's own title is the
//! only `<h1>`. `@handle` mentions of members who exist become links to their profiles,
//! except inside code and inside other links.

use std::collections::HashSet;

use pulldown_cmark::{html, CowStr, Event, HeadingLevel, Options, Parser, Tag, TagEnd};

use crate::{accounts, db::Db, error::AppResult};

pub const HANDLE_MIN: usize = 2;
pub const HANDLE_MAX: usize = 30;

/// At most this many distinct `@handles` in one text are looked up and linked, so a
/// long text cannot turn into an unbounded query.
pub const MENTIONS_MAX: usize = 50;

/// Rendered, sanitised HTML and the handles it mentions (that exist), in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    pub html: String,
    pub mentions: Vec<String>,
    /// The mentioned members' ids, in the order of `mentions` (filled by [`render_linked`]).
    pub mentioned_ids: Vec<i64>,
}

/// Renders `source`, linking `@mentions` of members who exist: what every write of
/// member-authored Markdown goes through.
pub async fn render_linked(db: &Db, source: &str) -> AppResult<Rendered> {
    let candidates = mention_candidates(source);
    let ids = accounts::ids_by_handle(db, &candidates).await?;
    let known: HashSet<String> = ids.keys().cloned().collect();
    let mut rendered = render(source, &known);
    rendered.mentioned_ids = rendered.mentions.iter().filter_map(|h| ids.get(h).copied()).collect();
    Ok(rendered)
}

fn is_handle_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '-'
}

/// Every `@handle` in a text, lower-cased, in order, without repeats.
fn handles_in(text: &str) -> Vec<(usize, usize, String)> {
    let mut found = Vec::new();
    let chars: Vec<(usize, char)> = text.char_indices().collect();
    let mut i = 0;
    while i < chars.len() {
        let (start, c) = chars[i];
        let after_boundary = i == 0 || !(is_handle_char(chars[i - 1].1) || chars[i - 1].1 == '@');
        if c == '@' && after_boundary {
            let mut j = i + 1;
            while j < chars.len() && is_handle_char(chars[j].1) {
                j += 1;
            }
            let end = chars.get(j).map(|(index, _)| *index).unwrap_or(text.len());
            let handle = &text[start + 1..end];
            let handle = handle.trim_end_matches(['-', '_']);
            if (HANDLE_MIN..=HANDLE_MAX).contains(&handle.len()) {
                found.push((start, start + 1 + handle.len(), handle.to_ascii_lowercase()));
            }
            i = j.max(i + 1);
        } else {
            i += 1;
        }
    }
    found
}

/// The handles a source mentions, outside code, at most [`MENTIONS_MAX`]: look these
/// up, then [`render`].
pub fn mention_candidates(source: &str) -> Vec<String> {
    let mut seen = Vec::new();
    let mut in_code = 0usize;
    for event in Parser::new_ext(source, options()) {
        match event {
            Event::Start(Tag::CodeBlock(_)) => in_code += 1,
            Event::End(TagEnd::CodeBlock) => in_code = in_code.saturating_sub(1),
            Event::Text(text) if in_code == 0 => {
                for (_, _, handle) in handles_in(&text) {
                    if seen.len() == MENTIONS_MAX {
                        return seen;
                    }
                    if !seen.contains(&handle) {
                        seen.push(handle);
                    }
                }
            }
            _ => {}
        }
    }
    seen
}

fn options() -> Options {
    Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH
}

fn lower(level: HeadingLevel) -> HeadingLevel {
    match level {
        HeadingLevel::H1 => HeadingLevel::H2,
        HeadingLevel::H2 => HeadingLevel::H3,
        HeadingLevel::H3 => HeadingLevel::H4,
        HeadingLevel::H4 => HeadingLevel::H5,
        _ => HeadingLevel::H6,
    }
}

/// Renders `source`, linking mentions of the handles in `known` (lower-case).
pub fn render(source: &str, known: &HashSet<String>) -> Rendered {
    let mut mentions: Vec<String> = Vec::new();
    let mut events: Vec<Event> = Vec::new();
    let (mut in_code, mut in_link) = (0usize, 0usize);
    for event in Parser::new_ext(source, options()) {
        match event {
            Event::Start(Tag::CodeBlock(kind)) => {
                in_code += 1;
                events.push(Event::Start(Tag::CodeBlock(kind)));
            }
            Event::End(TagEnd::CodeBlock) => {
                in_code = in_code.saturating_sub(1);
                events.push(Event::End(TagEnd::CodeBlock));
            }
            Event::Start(Tag::Link { link_type, dest_url, title, id }) => {
                in_link += 1;
                events.push(Event::Start(Tag::Link { link_type, dest_url, title, id }));
            }
            Event::End(TagEnd::Link) => {
                in_link = in_link.saturating_sub(1);
                events.push(Event::End(TagEnd::Link));
            }
            Event::Start(Tag::Heading { level, id, classes, attrs }) => {
                events.push(Event::Start(Tag::Heading { level: lower(level), id, classes, attrs }))
            }
            Event::End(TagEnd::Heading(level)) => events.push(Event::End(TagEnd::Heading(lower(level)))),
            Event::Text(text) if in_code == 0 && in_link == 0 => {
                let mut rest_start = 0;
                for (start, end, handle) in handles_in(&text) {
                    if !known.contains(&handle) {
                        continue;
                    }
                    if start > rest_start {
                        events.push(Event::Text(CowStr::from(text[rest_start..start].to_string())));
                    }
                    events.push(Event::InlineHtml(CowStr::from(format!(
                        "<a href=\"/members/@{handle}\" class=\"mention\">@{handle}</a>"
                    ))));
                    if !mentions.contains(&handle) {
                        mentions.push(handle);
                    }
                    rest_start = end;
                }
                if rest_start < text.len() {
                    events.push(Event::Text(CowStr::from(text[rest_start..].to_string())));
                }
            }
            other => events.push(other),
        }
    }
    let mut unsafe_html = String::with_capacity(source.len() * 3 / 2);
    html::push_html(&mut unsafe_html, events.into_iter());
    Rendered { html: sanitizer().clean(&unsafe_html).to_string(), mentions, mentioned_ids: Vec::new() }
}

/// Plain text of a Markdown source, for summaries, search snippets and feeds.
pub fn plain_text(source: &str) -> String {
    let mut out = String::with_capacity(source.len());
    for event in Parser::new_ext(source, options()) {
        match event {
            Event::Text(text) | Event::Code(text) => out.push_str(&text),
            Event::SoftBreak | Event::HardBreak | Event::End(TagEnd::Paragraph) | Event::End(TagEnd::Heading(_)) => {
                out.push(' ')
            }
            _ => {}
        }
    }
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn sanitizer() -> ammonia::Builder<'static> {
    let tags: HashSet<&str> = [
        "a",
        "p",
        "br",
        "hr",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "strong",
        "em",
        "del",
        "code",
        "pre",
        "blockquote",
        "ul",
        "ol",
        "li",
        "table",
        "thead",
        "tbody",
        "tr",
        "th",
        "td",
    ]
    .into_iter()
    .collect();
    let mut builder = ammonia::Builder::empty();
    builder
        .tags(tags)
        .add_tag_attributes("a", ["href", "title"])
        .add_tag_attributes("ol", ["start"])
        .add_tag_attributes("th", ["align"])
        .add_tag_attributes("td", ["align"])
        .add_allowed_classes("a", ["mention"])
        .url_schemes(["http", "https", "mailto"].into_iter().collect())
        .url_relative(ammonia::UrlRelative::PassThrough)
        .link_rel(Some("nofollow ugc noopener noreferrer"))
        .id_prefix(Some("user-content-"))
        .strip_comments(true);
    builder
}

/// What sanitised output must never contain: tags that run script, load resources or
/// take input, script and data URLs, inline styles, an id that clashes with the page's
/// own, and event-handler attributes. The tests check every write with it (the Markdown
/// unit tests and the API tests alike). Returns the first such thing found, described.
pub fn unsafe_markup(html: &str) -> Option<String> {
    const FORBIDDEN: [&str; 23] = [
        "<script",
        "<style",
        "<img",
        "<svg",
        "<math",
        "<iframe",
        "<form",
        "<input",
        "<button",
        "<object",
        "<embed",
        "<meta",
        "<base",
        "<link",
        "<textarea",
        "<video",
        "<source",
        "<details",
        "javascript:",
        "vbscript:",
        "data:",
        "style=",
        "id=\"main-content\"",
    ];
    let html = html.to_lowercase();
    if let Some(found) = FORBIDDEN.iter().find(|f| html.contains(*f)) {
        return Some(format!("{found:?}"));
    }
    // An `on…=` attribute, as opposed to the same letters escaped inside a value.
    let handler = html.match_indices(" on").any(|(i, _)| {
        let rest = &html[i + 3..];
        let name_end = rest.find(|c: char| !c.is_ascii_alphabetic()).unwrap_or(rest.len());
        name_end > 0 && rest[name_end..].starts_with('=') && !rest[name_end + 1..].starts_with("&quot;")
    });
    handler.then(|| "an event handler".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn html(source: &str) -> String {
        render(source, &HashSet::new()).html
    }

    #[test]
    fn renders_commonmark_with_headings_lowered() {
        assert_eq!(html("# Title\n\nSome *text*."), "<h2>Title</h2>\n<p>Some <em>text</em>.</p>\n");
        assert!(html("| a | b |\n|---|---|\n| 1 | 2 |").contains("<table>"));
        assert!(html("~~gone~~").contains("<del>gone</del>"));
        assert_eq!(
            html("[site](https://example.org)"),
            "<p><a href=\"https://example.org\" rel=\"nofollow ugc noopener noreferrer\">site</a></p>\n"
        );
    }

    /// Attempts to run script, load resources, submit forms or break out of the markup:
    /// one source per line of the fixture, which the API tests also write through every
    /// path that stores Markdown.
    #[test]
    fn injection_corpus_is_neutralised() {
        let corpus: Vec<&str> =
            include_str!("../tests/fixtures/markdown_injection.txt").lines().filter(|l| !l.is_empty()).collect();
        assert_eq!(corpus.len(), 30, "one source per line: {corpus:?}");
        for source in corpus {
            let out = html(source);
            if let Some(problem) = unsafe_markup(&out) {
                panic!("{source:?} rendered as {out:?}, which contains {problem}");
            }
        }
    }

    #[test]
    fn unsafe_markup_tells_handlers_from_escaped_text() {
        assert_eq!(unsafe_markup("<p>fine, done once, online</p>"), None);
        assert_eq!(unsafe_markup("<a title=\"x&quot; onmouseover=&quot;y\">z</a>"), None);
        assert_eq!(unsafe_markup("<SCRIPT>x</SCRIPT>").as_deref(), Some("\"<script\""));
        assert_eq!(unsafe_markup("<p onclick=x>").as_deref(), Some("an event handler"));
    }

    #[test]
    fn links_are_marked_and_relative_links_allowed() {
        let out = html("<a href=\"/members/@ada\" rel=\"opener\">Ada</a>");
        assert!(
            out.contains("href=\"/members/@ada\"") && out.contains("rel=\"nofollow ugc noopener noreferrer\""),
            "{out}"
        );
        assert!(html("<a href=\"mailto:team@example.org\">mail</a>").contains("mailto:team@example.org"));
    }

    #[test]
    fn mentions_link_known_members_outside_code_and_links() {
        let known: HashSet<String> = ["ada".to_string(), "grace-h".to_string()].into_iter().collect();
        let source = "Thanks @Ada and @grace-h, not @nobody or email@example.org.\n\n`@ada` in code\n\n```\n@ada\n```\n\n[@ada](https://example.org)";
        let rendered = render(source, &known);
        assert_eq!(rendered.mentions, ["ada", "grace-h"]);
        assert_eq!(rendered.html.matches("class=\"mention\"").count(), 2, "{}", rendered.html);
        assert!(
            rendered.html.contains(
                "<a href=\"/members/@ada\" class=\"mention\" rel=\"nofollow ugc noopener noreferrer\">@ada</a>"
            ),
            "{}",
            rendered.html
        );
        assert!(rendered.html.contains("@nobody") && rendered.html.contains("email@example.org"));
        assert_eq!(mention_candidates(source), ["ada", "grace-h", "nobody"]);
    }

    #[test]
    fn plain_text_strips_markup() {
        assert_eq!(
            plain_text("# Bins\n\nWe *moved* the `form` [online](https://x.org)."),
            "Bins We moved the form online."
        );
    }
}
