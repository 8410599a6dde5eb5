//! Markdown, rendered and sanitised once, when it is written.
//!
//! pulldown-cmark renders CommonMark (with tables and strikethrough); ammonia then keeps
//! only an allow-list of tags and attributes, only http, https and mailto links, adds
//! `rel="nofollow ugc noopener noreferrer"` to every link and prefixes ids, so nothing a
//! member writes can run script, load a resource, submit a form or clash with the page's
//! own ids. The HTML is stored beside the source and reads never render.
//!
//! An image shows only when it is one members uploaded to Kettle (`/uploads/<key>…`):
//! its key is looked up with the mentions, and Kettle writes the `<img>` itself, with
//! the stored size, the widths for `srcset` and, when the Markdown gives none, the alt
//! text given at upload. Any other image becomes a link to it.
//!
//! Headings move down a level (`#` becomes `<h2>`), because the page's own title is the
//! only `<h1>`, and are fitted so that none is more than one level below the one before
//! it (see [`fitted`]), as screen reader users and axe's `heading-order` expect. `@handle` mentions of members who exist become links to their profiles,
//! except inside code and inside other links.
//!
//! The work per text is bounded. Parsing is linear, but the sanitiser's HTML parser
//! (html5ever) is not: each tag it meets searches the stack of open elements, so HTML
//! nested n deep costs about n². 100 KB of `"> - "` is 77,000 elements deep and took
//! 17 s to sanitise; flattened, it renders in about 4 ms (`cargo bench --bench markdown`
//! prints the figures for every hostile shape we know). So the HTML the sanitiser is
//! handed never nests deeper than about 3 × [`NESTING_MAX`]:
//!
//! - Beyond [`NESTING_MAX`] quotes, lists, emphasis, links and the like, nesting is
//!   flattened: the deeper containers' own tags are dropped, and what they held (text,
//!   paragraphs, code blocks, tables) is kept, in order, in the deepest one kept.
//! - Raw HTML in the source is rewritten first. Only the tags the sanitiser would keep
//!   anyway survive, written out afresh, and they are made to nest: an end tag closes
//!   only an element that raw HTML opened inside the same Markdown container, whatever
//!   raw HTML leaves open is closed where that container ends, at most [`NESTING_MAX`]
//!   raw elements are open at once, and a raw table is closed where its HTML block ends.
//!   Left as written, misnested or unclosed raw HTML makes html5ever keep elements open
//!   (`<ul><li>` × 12,800 took 1.2 s), copy formatting elements again and again
//!   (`<b><i title=n></b>` × 5,000 took 0.6 s) or move content out of a table one node
//!   at a time (`<table>` then 34,000 paragraphs took 0.2 s), each quadratic.
//! - Long runs of text are broken with empty comments, which the sanitiser strips, so
//!   that its serialiser never escapes one huge text node (see `TEXT_RUN_MAX`).
//!
//! Code blocks and tables, which can be wider than a phone's screen, are wrapped in a
//! scroll region the keyboard can reach (see [`scroll_regions`]). The wrapper is added to
//! the sanitiser's output, so it is always Kettle's own: raw HTML cannot write a `div`,
//! `tabindex` or `role`, since the sanitiser drops them.
//!
//! Rendering is CPU-bound, so [`render_linked`] runs it on the blocking thread pool, at
//! most one render per CPU at once, and the async workers stay free to answer requests.

use std::{
    collections::{HashMap, HashSet, VecDeque},
    ops::Range,
    sync::LazyLock,
};

use crate::{accounts, cpu::off_the_workers, db::Db, error::AppResult, uploads};
use pulldown_cmark::{html, CowStr, Event, HeadingLevel, LinkType, Options, Parser, Tag, TagEnd, TextMergeStream};

pub const HANDLE_MIN: usize = 2;
pub const HANDLE_MAX: usize = 30;

/// At most this many distinct `@handles` in one text are looked up and linked, so a
/// long text cannot turn into an unbounded query.
pub const MENTIONS_MAX: usize = 50;

/// At most this many distinct uploaded images in one text are looked up and shown;
/// later ones show their description only.
pub const IMAGES_MAX: usize = 50;

/// How deep Markdown containers (quotes, lists, emphasis, links, ...) nest before deeper
/// ones are flattened into the deepest kept one, and how many raw HTML elements may be
/// open at once. Sixteen is far deeper than anyone nests on purpose, and keeps the HTML
/// the sanitiser parses under about 3 × 16 elements deep whatever the source.
pub const NESTING_MAX: usize = 16;

/// The longest run of text written without a break for the sanitiser. Its serialiser
/// (html5ever's) rescans the rest of a text node for `<` and `>` after every `&`, or
/// every character from U+0080 to U+00BF (`£`, `°`, `½`, ...), so one long text node
/// costs its length squared: 100 KB of `&` took 110 ms. An empty comment every 2 KB,
/// which the sanitiser strips, keeps text nodes short and the output the same.
const TEXT_RUN_MAX: usize = 2048;

/// Every place Markdown is written: table, source column, HTML column (if any).
pub const STORED: [(&str, &str, Option<&str>); 7] = [
    ("case_studies", "body_source", Some("body_html")),
    ("case_study_revisions", "body_source", None),
    ("comments", "body_source", Some("body_html")),
    ("artefacts", "description_source", Some("description_html")),
    ("artefact_revisions", "description_source", None),
    ("meetup_groups", "description_source", Some("description_html")),
    ("meetup_events", "description_source", Some("description_html")),
];

/// Rendered, sanitised HTML and the handles it mentions (that exist), in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    pub html: String,
    pub mentions: Vec<String>,
    /// The mentioned members' ids, in the order of `mentions` (filled by [`render_linked`]).
    pub mentioned_ids: Vec<i64>,
}

/// Renders `source`, linking `@mentions` of members who exist: what every write of
/// member-authored Markdown goes through. The source is parsed once: the [`Draft`] made
/// on the blocking pool (see `cpu::off_the_workers`) holds the HTML with a placeholder at each
/// mention and the handles to look up; only the lookup runs here, then the draft is
/// finished and sanitised on the pool again. Uploaded images' keys are looked up in the
/// same trip. A text that mentions no one and shows no uploaded image is finished in the
/// first trip.
pub async fn render_linked(db: &Db, source: &str) -> AppResult<Rendered> {
    render_linked_without(db, source, &[]).await
}

/// [`render_linked`] as if the uploaded images under `gone` were deleted already: an
/// erasure renders others' text again inside the transaction that deletes the images,
/// where the lookups (on the pool) would still find them.
pub async fn render_linked_without(db: &Db, source: &str, gone: &[String]) -> AppResult<Rendered> {
    let source = source.to_owned();
    let draft = match off_the_workers(move || FirstTrip::of(Draft::new(&source))).await? {
        FirstTrip::Finished(rendered) => return Ok(rendered),
        FirstTrip::LookUp(draft) => draft,
    };
    let ids = if draft.candidates().is_empty() {
        HashMap::new()
    } else {
        accounts::ids_by_handle(db, draft.candidates()).await?
    };
    let mut images = uploads::by_keys(db, &draft.image_keys).await?;
    images.retain(|key, _| !gone.contains(key));
    let known: HashSet<String> = ids.keys().cloned().collect();
    let mut rendered = off_the_workers(move || finish_for_storage(*draft, &known, &images)).await?;
    rendered.mentioned_ids = rendered.mentions.iter().filter_map(|h| ids.get(h).copied()).collect();
    Ok(rendered)
}

/// What the first trip to the blocking pool brings back: the finished render of a text
/// that mentions no one and shows no upload, or the draft to finish after the lookups.
enum FirstTrip {
    Finished(Rendered),
    LookUp(Box<Draft>),
}

impl FirstTrip {
    fn of(draft: Draft) -> FirstTrip {
        if draft.candidates().is_empty() && draft.image_keys.is_empty() {
            FirstTrip::Finished(finish_for_storage(draft, &HashSet::new(), &HashMap::new()))
        } else {
            FirstTrip::LookUp(Box::new(draft))
        }
    }
}

/// A draft finished as it is stored: sanitised, with its scroll regions.
fn finish_for_storage(draft: Draft, known: &HashSet<String>, images: &HashMap<String, uploads::Image>) -> Rendered {
    let mut rendered = draft.finish_with(known, images);
    rendered.html = scroll_regions(&rendered.html);
    rendered
}

fn is_handle_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'-'
}

/// Every `@handle` in a text, in order, as the byte range of the `@` and the handle: an
/// `@` not straight after a handle character or another `@`, then [`HANDLE_MIN`] to
/// [`HANDLE_MAX`] handle characters, less any trailing `-` and `_` (so `@ada-` is `@ada`).
/// Handle characters are ASCII, so the text is searched for `@` (memchr) and only the
/// bytes either side of each one are read.
fn handles_in(text: &str) -> impl Iterator<Item = Range<usize>> + '_ {
    let b = text.as_bytes();
    let mut from = 0;
    std::iter::from_fn(move || {
        while let Some(found) = text[from..].find('@') {
            let at = from + found;
            let mut end = at + 1;
            while end < b.len() && is_handle_byte(b[end]) {
                end += 1;
            }
            // No `@` lies between, so the search goes on past the handle.
            from = end;
            if at > 0 && (is_handle_byte(b[at - 1]) || b[at - 1] == b'@') {
                continue;
            }
            let handle = text[at + 1..end].trim_end_matches(['-', '_']);
            if (HANDLE_MIN..=HANDLE_MAX).contains(&handle.len()) {
                return Some(at..at + 1 + handle.len());
            }
        }
        None
    })
}

/// The bare web addresses in `text` (`https://…` or `http://…` written without `<>`), as
/// readers expect them to be links: from the scheme, which must not follow a letter or a
/// digit, to the first space or `<>"`, without punctuation that ends the sentence or an
/// unmatched closing bracket.
fn bare_urls(text: &str) -> impl Iterator<Item = Range<usize>> + '_ {
    let mut from = 0;
    std::iter::from_fn(move || {
        while let Some(found) = text[from..].find("http") {
            let at = from + found;
            from = at + 4;
            let rest = &text[at..];
            let scheme = if rest.starts_with("https://") {
                8
            } else if rest.starts_with("http://") {
                7
            } else {
                continue;
            };
            if text[..at].chars().next_back().is_some_and(|c| c.is_alphanumeric()) {
                continue;
            }
            let mut end =
                at + rest.find(|c: char| c.is_whitespace() || matches!(c, '<' | '>' | '"')).unwrap_or(rest.len());
            loop {
                let url = &text[at..end];
                let trimmed = url.trim_end_matches(['.', ',', ';', ':', '!', '?', '\'', '*', '_']);
                let trimmed = if trimmed.ends_with(')') && trimmed.matches('(').count() < trimmed.matches(')').count() {
                    &trimmed[..trimmed.len() - 1]
                } else {
                    trimmed
                };
                if trimmed.len() == url.len() {
                    break;
                }
                end = at + trimmed.len();
            }
            from = end.max(from);
            if end > at + scheme {
                return Some(at..end);
            }
        }
        None
    })
}

/// The handles to look up: the first [`MENTIONS_MAX`] distinct ones, lower-cased, in order.
#[derive(Default)]
struct Candidates(Vec<String>);

impl Candidates {
    fn add(&mut self, handle: &str) {
        if self.0.len() < MENTIONS_MAX && !self.0.iter().any(|seen| seen.eq_ignore_ascii_case(handle)) {
            self.0.push(handle.to_ascii_lowercase());
        }
    }
}

/// The handles a source mentions, outside code, at most [`MENTIONS_MAX`]: the handles
/// [`render_linked`] looks up (its [`Draft`] finds them in its own pass).
pub fn mention_candidates(source: &str) -> Vec<String> {
    let mut candidates = Candidates::default();
    let mut in_code = 0usize;
    for event in Parser::new_ext(source, options()) {
        match event {
            Event::Start(Tag::CodeBlock(_)) => in_code += 1,
            Event::End(TagEnd::CodeBlock) => in_code = in_code.saturating_sub(1),
            Event::Text(text) if in_code == 0 => {
                for at in handles_in(&text) {
                    if candidates.0.len() == MENTIONS_MAX {
                        return candidates.0;
                    }
                    candidates.add(&text[at.start + 1..at.end]);
                }
            }
            _ => {}
        }
    }
    candidates.0
}

/// The parser's options, for every parse of member-authored Markdown (and the benches).
pub fn options() -> Options {
    Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH | Options::ENABLE_FOOTNOTES
}

/// The level below `level` (H6 stays H6).
fn lower(level: HeadingLevel) -> HeadingLevel {
    match level {
        HeadingLevel::H1 => HeadingLevel::H2,
        HeadingLevel::H2 => HeadingLevel::H3,
        HeadingLevel::H3 => HeadingLevel::H4,
        HeadingLevel::H4 => HeadingLevel::H5,
        _ => HeadingLevel::H6,
    }
}

/// A heading's level in the page: one below the source's (the page's own title is the
/// only `<h1>`), and never more than one below the heading before it, `previous` (the
/// page's title, H1, for the first). So a body that starts at `###`, or jumps from `#`
/// to `###`, still reads in order wherever a page puts it: every page shows a body
/// under a heading of level 1 or 2, and an `<h2>` may follow either.
fn fitted(level: HeadingLevel, previous: HeadingLevel) -> HeadingLevel {
    lower(level).min(lower(previous))
}

/// Renders `source`, linking mentions of the handles in `known` (lower-case).
pub fn render(source: &str, known: &HashSet<String>) -> Rendered {
    Draft::new(source).finish(known)
}

/// Stands in the draft's HTML for each mention until the handles are known. Nothing
/// else in that HTML can look like it: every `<` in text, code, attribute values and
/// URLs is escaped, and raw HTML keeps only allow-listed tags and loses its comments.
const MENTION: &str = "<!--@-->";
/// Stands in the draft's HTML for each uploaded image until its key is looked up, as
/// [`MENTION`] does for mentions.
const IMAGE: &str = "<!--img-->";

/// A source parsed and rendered once, not yet sanitised, waiting for its mentions'
/// handles to be looked up: [`Draft::finish`] then links those of members who exist and
/// sanitises.
pub struct Draft {
    /// The HTML, with [`MENTION`] at each mention written in it.
    html: String,
    /// Each `@handle` outside code and links, in order.
    mentions: Vec<Mention>,
    /// Each mention as written (`@Ada`), then its handle lower-cased (`ada`).
    mention_text: String,
    /// See [`Draft::candidates`].
    candidates: Vec<String>,
    /// Each uploaded image outside links, in order.
    images: Vec<ImageRef>,
    /// The distinct keys of those images, at most [`IMAGES_MAX`]: what to look up.
    image_keys: Vec<String>,
}

/// An uploaded image written in the text: `![description](/uploads/<key>…)`.
struct ImageRef {
    key: String,
    /// The description as plain text (the `alt`, unless empty).
    description: String,
}

/// An `@handle` found in the text.
struct Mention {
    /// Where its text starts in [`Draft::mention_text`], and its length.
    at: usize,
    len: usize,
    shown: Shown,
}

/// What the HTML holds for a mention.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Shown {
    /// A placeholder, for the link or, for an unknown handle, the text as written.
    Placeholder,
    /// A placeholder, for the link or nothing: the text around it is dropped (inside a
    /// `script` or `style` element).
    Hidden,
}

impl Draft {
    pub fn new(source: &str) -> Draft {
        let mut events = Rendering {
            // Runs of text come whole (the parser splits them at `_` and the like), so a
            // web address or a mention is never cut in two.
            parser: TextMergeStream::new(Parser::new_ext(source, options())),
            out: Bounded::default(),
            draft: Draft {
                html: String::new(),
                mentions: Vec::new(),
                mention_text: String::new(),
                candidates: Vec::new(),
                images: Vec::new(),
                image_keys: Vec::new(),
            },
            image: None,
            heading: HeadingLevel::H1,
            candidates: Candidates::default(),
            in_code: 0,
            in_link: 0,
            unlinked: 0,
            images: Vec::new(),
            footnotes: Footnotes { source, ..Footnotes::default() },
            finished: false,
        };
        let mut html = String::with_capacity(source.len() * 3 / 2);
        // Events stream into the writer as they are made: collected first, a 100 KB source
        // made a vector of several megabytes, and filling it cost more than rendering.
        html::push_html(&mut html, &mut events);
        let mut draft = events.draft;
        draft.html = html;
        draft.candidates = events.candidates.0;
        draft
    }

    /// Links the mentions of the handles in `known` (lower-case) and sanitises; uploaded
    /// images show their description only (see [`Draft::finish_with`]).
    pub fn finish(self, known: &HashSet<String>) -> Rendered {
        self.finish_with(known, &HashMap::new())
    }

    /// Links the mentions of the handles in `known` (lower-case), shows the uploaded
    /// images found in `images` (by key), and sanitises.
    pub fn finish_with(self, known: &HashSet<String>, images: &HashMap<String, uploads::Image>) -> Rendered {
        let text = |m: &Mention| {
            let written = &self.mention_text[m.at..m.at + m.len];
            let handle = &self.mention_text[m.at + m.len..m.at + 2 * m.len - 1];
            (written, handle)
        };
        let mut mentions: Vec<String> = Vec::new();
        for mention in &self.mentions {
            let (_, handle) = text(mention);
            if known.contains(handle) && !mentions.iter().any(|m| m == handle) {
                mentions.push(handle.to_string());
            }
        }
        let filled;
        let html = if self.mentions.is_empty() && self.images.is_empty() {
            &self.html
        } else {
            let mut html = String::with_capacity(self.html.len() + 48 * self.mentions.len() + 400 * self.images.len());
            let mut written = self.mentions.iter();
            let mut shown = self.images.iter();
            let mut rest = self.html.as_str();
            // Placeholders are the only comments in the draft but the empty ones that
            // break long text, which stay for the sanitiser to strip.
            while let Some(at) = rest.find("<!--") {
                let tail = &rest[at..];
                let (placeholder, is_mention) = if tail.starts_with(MENTION) {
                    (MENTION, true)
                } else if tail.starts_with(IMAGE) {
                    (IMAGE, false)
                } else {
                    html.push_str(&rest[..at + 4]);
                    rest = &rest[at + 4..];
                    continue;
                };
                html.push_str(&rest[..at]);
                rest = &rest[at + placeholder.len()..];
                if is_mention {
                    let Some(mention) = written.next() else { continue };
                    let (as_written, handle) = text(mention);
                    if known.contains(handle) {
                        // Written by us, whole and balanced, so it never met the raw HTML filter.
                        html.push_str("<a href=\"/members/@");
                        html.push_str(handle);
                        html.push_str("\" class=\"mention\">@");
                        html.push_str(handle);
                        html.push_str("</a>");
                    } else if mention.shown == Shown::Placeholder {
                        html.push_str(as_written);
                    }
                } else if let Some(image) = shown.next() {
                    match images.get(&image.key) {
                        Some(found) => image_tag(&mut html, found, &image.description),
                        None => escape_html(&mut html, &image.description),
                    }
                }
            }
            html.push_str(rest);
            debug_assert!(written.next().is_none(), "a mention without its placeholder");
            filled = html;
            &filled
        };
        Rendered { html: sanitise(html), mentions, mentioned_ids: Vec::new() }
    }

    /// The HTML before sanitising, placeholders and all (for the benches).
    pub fn html(&self) -> &str {
        &self.html
    }

    /// The handles to look up before [`Draft::finish`]: the first [`MENTIONS_MAX`]
    /// distinct ones outside code (in links too), lower-cased, as [`mention_candidates`].
    pub fn candidates(&self) -> &[String] {
        &self.candidates
    }
}

/// The wrapper [`scroll_regions`] puts around each code block.
pub const CODE_REGION: &str = "<div class=\"scroll\" tabindex=\"0\" role=\"region\" aria-label=\"Code block\">";
/// The wrapper [`scroll_regions`] puts around each table.
pub const TABLE_REGION: &str = "<div class=\"scroll\" tabindex=\"0\" role=\"region\" aria-label=\"Table\">";

/// Wraps each outermost `<pre>` and `<table>` of sanitised HTML in a labelled scroll
/// region with `tabindex="0"` ([`CODE_REGION`], [`TABLE_REGION`]), so that on a narrow
/// screen it scrolls sideways on its own instead of the page (WCAG 1.4.10), and a
/// keyboard can reach it to scroll it (WCAG 2.1.1).
///
/// It runs on the sanitiser's output, not before it: an allow-list that kept `div`,
/// `tabindex` and `role` for our wrapper would keep them in what members write too. That
/// output is html5ever's serialisation of allow-listed elements: every tag is well
/// formed, every attribute value is double-quoted with `"` escaped, and `<` in text is
/// escaped (in attribute values too), so a tag starts at every `<` and nowhere else; and
/// quoted values are read past whole here, in case a serialiser ever leaves `<` in one.
/// One pass, linear in the length.
///
/// Wrapping happens when the HTML is written, like the rest of rendering; HTML stored
/// before the wrapper existed has none, and app.css scrolls bare `pre` and `table` in
/// `.prose` as a fallback (Chromium also lets the keyboard reach such a scroller). Inside
/// a link nothing is wrapped: a focusable region inside a link would nest one control in
/// another.
pub fn scroll_regions(html: &str) -> String {
    let b = html.as_bytes();
    let mut out = String::with_capacity(html.len() + 256);
    // The element wrapped, and how deep elements of its name nest inside it.
    let mut wrapped: Option<(&str, usize)> = None;
    let mut links = 0usize;
    let (mut i, mut copied) = (0, 0);
    while let Some(found) = html[i..].find('<') {
        let start = i + found;
        if html[start..].starts_with("<!--") {
            i = html[start..].find("-->").map_or(b.len(), |at| start + at + 3);
            continue;
        }
        let closing = b.get(start + 1) == Some(&b'/');
        let name_start = start + 1 + usize::from(closing);
        let mut j = name_start;
        while j < b.len() && b[j].is_ascii_alphanumeric() {
            j += 1;
        }
        let name = &html[name_start..j];
        // Past the tag's `>`, skipping quoted attribute values.
        let mut quote = None;
        while j < b.len() {
            match (quote, b[j]) {
                (None, b'>') => break,
                (None, q @ (b'"' | b'\'')) => quote = Some(q),
                (Some(q), c) if c == q => quote = None,
                _ => {}
            }
            j += 1;
        }
        let end = (j + 1).min(b.len());
        let region = match name {
            "pre" => Some(("pre", CODE_REGION)),
            "table" => Some(("table", TABLE_REGION)),
            _ => None,
        };
        match (closing, region, wrapped) {
            (false, _, _) if name == "a" => links += 1,
            (true, _, _) if name == "a" => links = links.saturating_sub(1),
            (false, Some((tag, wrapper)), None) if links == 0 => {
                out.push_str(&html[copied..start]);
                out.push_str(wrapper);
                copied = start;
                wrapped = Some((tag, 1));
            }
            (false, Some((tag, _)), Some((open, depth))) if tag == open => wrapped = Some((open, depth + 1)),
            (true, Some((tag, _)), Some((open, depth))) if tag == open => {
                if depth == 1 {
                    out.push_str(&html[copied..end]);
                    out.push_str("</div>");
                    copied = end;
                    wrapped = None;
                } else {
                    wrapped = Some((open, depth - 1));
                }
            }
            _ => {}
        }
        i = end;
    }
    out.push_str(&html[copied..]);
    // Only if the HTML left the element open, which the sanitiser's never does.
    if wrapped.is_some() {
        out.push_str("</div>");
    }
    out
}

/// The events of one render: the parser's, with headings lowered, mentions marked and
/// nesting bounded.
struct Rendering<'a> {
    parser: TextMergeStream<'a, Parser<'a>>,
    out: Bounded<'a>,
    /// Where the mentions found go (its HTML is filled in at the end).
    draft: Draft,
    candidates: Candidates,
    in_code: usize,
    /// Links open, images shown as links among them.
    in_link: usize,
    /// Links and images inside a link, written as their text only (an `<a>` cannot hold
    /// another).
    unlinked: usize,
    /// For each image open (shown as a link), whether its description had any text yet.
    images: Vec<bool>,
    /// The uploaded image open, whose description is being read.
    image: Option<OpenImage>,
    /// The level of the heading written last (or open): see [`fitted`].
    heading: HeadingLevel,
    footnotes: Footnotes<'a>,
    finished: bool,
}

/// An uploaded image while its description is read: its events write nothing, their
/// text becomes the description, and images nested in it count in `depth`.
struct OpenImage {
    key: String,
    description: String,
    depth: usize,
}

impl<'a> Iterator for Rendering<'a> {
    type Item = Event<'a>;

    fn next(&mut self) -> Option<Event<'a>> {
        loop {
            if let Some(event) = self.out.events.pop_front() {
                return Some(event);
            }
            match self.parser.next() {
                Some(event) => self.feed(event),
                None if !self.finished => {
                    self.finished = true;
                    self.out.finish();
                }
                None => return None,
            }
        }
    }
}

/// `text[range]`, borrowed from the source when `text` is.
fn slice<'a>(text: &CowStr<'a>, range: Range<usize>) -> CowStr<'a> {
    match text {
        CowStr::Borrowed(s) => CowStr::Borrowed(&s[range]),
        _ => CowStr::from(text[range].to_string()),
    }
}

impl<'a> Rendering<'a> {
    fn feed(&mut self, event: Event<'a>) {
        if let Some(image) = &mut self.image {
            match event {
                Event::Text(text) | Event::Code(text) => image.description.push_str(&text),
                Event::SoftBreak | Event::HardBreak => image.description.push(' '),
                Event::Start(Tag::Image { .. }) => image.depth += 1,
                Event::End(TagEnd::Image) if image.depth > 0 => image.depth -= 1,
                Event::End(TagEnd::Image) => {
                    let image = self.image.take().expect("an image is open");
                    self.draft.images.push(ImageRef { key: image.key, description: image.description });
                    self.out.image();
                }
                _ => {}
            }
            return;
        }
        let shown_upload =
            matches!(&event, Event::Start(Tag::Image { dest_url, .. }) if self.is_shown_upload(dest_url));
        let out = &mut self.out;
        if !self.images.is_empty() && matches!(event, Event::Text(_) | Event::Code(_)) {
            self.images.iter_mut().for_each(|has_text| *has_text = true);
        }
        match event {
            Event::Start(Tag::Link { .. } | Tag::Image { .. }) if self.in_link > 0 => self.unlinked += 1,
            Event::End(TagEnd::Link | TagEnd::Image) if self.unlinked > 0 => self.unlinked -= 1,
            // An image is shown as a link to it, its description the link's text: Kettle
            // loads nothing from other sites into its pages (their owners would learn who
            // reads what), and dropping the image lost what the author meant.
            Event::Start(Tag::Image { dest_url, .. }) if shown_upload => {
                let key = uploads::key_of_url(&dest_url).unwrap_or_default().to_string();
                if !self.draft.image_keys.contains(&key) {
                    self.draft.image_keys.push(key.clone());
                }
                self.image = Some(OpenImage { key, description: String::new(), depth: 0 });
            }
            Event::Start(Tag::Image { link_type, dest_url, title, id }) => {
                self.in_link += 1;
                self.images.push(false);
                out.start(Tag::Link { link_type, dest_url, title, id });
            }
            Event::End(TagEnd::Image) => {
                self.in_link = self.in_link.saturating_sub(1);
                if self.images.pop() == Some(false) {
                    // A link needs a name: an image described by nothing is called one.
                    out.push(Event::Text(CowStr::Borrowed("image")));
                }
                out.end(TagEnd::Link);
            }
            Event::FootnoteReference(label) => {
                let (name, n, times) = self.footnotes.referred(&label);
                let id = if times == 1 { format!("ref-{name}") } else { format!("ref-{name}-{times}") };
                // Ids get the sanitiser's prefix, links to them do not: it is written here.
                // Inside a link, which cannot hold another, the number alone.
                let html = if self.in_link > 0 {
                    format!("<sup class=\"footnote-reference\" id=\"{id}\">{n}</sup>")
                } else {
                    format!(
                        "<sup class=\"footnote-reference\"><a href=\"#{ID_PREFIX}{name}\" id=\"{id}\">{n}</a></sup>"
                    )
                };
                out.push(Event::InlineHtml(CowStr::from(html)));
            }
            Event::Start(Tag::FootnoteDefinition(label)) => {
                let name = self.footnotes.defined(&label);
                self.footnotes.open.push(name.clone());
                out.start(Tag::FootnoteDefinition(CowStr::from(name)));
            }
            Event::End(TagEnd::FootnoteDefinition) => {
                if let Some(name) = self.footnotes.open.pop() {
                    let html = format!(" <a href=\"#{ID_PREFIX}ref-{name}\">Back to the text</a>");
                    out.push(Event::InlineHtml(CowStr::from(html)));
                }
                out.end(TagEnd::FootnoteDefinition);
            }
            Event::Start(tag) => {
                match tag {
                    Tag::CodeBlock(_) => self.in_code += 1,
                    Tag::Link { .. } => self.in_link += 1,
                    _ => {}
                }
                out.start(match tag {
                    Tag::Heading { level, id, classes, attrs } => {
                        self.heading = fitted(level, self.heading);
                        Tag::Heading { level: self.heading, id, classes, attrs }
                    }
                    other => other,
                });
            }
            Event::End(tag) => {
                match tag {
                    TagEnd::CodeBlock => self.in_code = self.in_code.saturating_sub(1),
                    TagEnd::Link => self.in_link = self.in_link.saturating_sub(1),
                    _ => {}
                }
                out.end(match tag {
                    // Headings do not nest: this ends the one just started.
                    TagEnd::Heading(_) => TagEnd::Heading(self.heading),
                    other => other,
                });
            }
            // One event per line of an HTML block; the block is filtered whole, because a
            // tag may span lines.
            Event::Html(html) => out.html_block.push_str(&html),
            Event::InlineHtml(html) => out.inline_html(&html),
            Event::Text(text) if self.in_code == 0 && self.in_link == 0 && text.contains("http") => {
                self.autolinks(text)
            }
            // Most text mentions no one, which one search for `@` tells.
            Event::Text(text) if self.in_code == 0 && text.contains('@') => self.mentions(text),
            other => out.push(other),
        }
    }

    /// Whether an image at `url` outside links is one of Kettle's uploads to show: one
    /// of the first [`IMAGES_MAX`] distinct ones in the text.
    fn is_shown_upload(&self, url: &str) -> bool {
        let Some(key) = uploads::key_of_url(url) else { return false };
        self.in_link == 0
            && (self.draft.image_keys.len() < IMAGES_MAX || self.draft.image_keys.iter().any(|k| k == key))
    }

    /// Text outside code and links that may hold bare web addresses: each becomes a link
    /// to itself, as `<https://…>` would.
    fn autolinks(&mut self, text: CowStr<'a>) {
        let mut rest = 0;
        for url in bare_urls(&text) {
            if url.start > rest {
                self.plain(slice(&text, rest..url.start));
            }
            let address = slice(&text, url.clone());
            let link = Tag::Link {
                link_type: LinkType::Autolink,
                dest_url: address.clone(),
                title: CowStr::Borrowed(""),
                id: CowStr::Borrowed(""),
            };
            self.out.start(link);
            self.in_link += 1;
            self.plain(address);
            self.in_link -= 1;
            self.out.end(TagEnd::Link);
            rest = url.end;
        }
        if rest < text.len() {
            self.plain(slice(&text, rest..text.len()));
        }
    }

    /// Text outside code with no web address to link.
    fn plain(&mut self, text: CowStr<'a>) {
        if self.in_code == 0 && text.contains('@') {
            self.mentions(text);
        } else {
            self.out.push(Event::Text(text));
        }
    }

    /// Text outside code that may mention someone: every handle is a candidate, and
    /// outside links each mention becomes a placeholder (see [`Draft::finish`]).
    fn mentions(&mut self, text: CowStr<'a>) {
        let out = &mut self.out;
        // Raw HTML read before this text decides whether it is hidden.
        out.flush_html_block();
        let shown = if self.in_link > 0 {
            None
        } else if out.raw.hiding.is_some() {
            Some(Shown::Hidden)
        } else {
            Some(Shown::Placeholder)
        };
        let mut rest = 0;
        for at in handles_in(&text) {
            self.candidates.add(&text[at.start + 1..at.end]);
            let Some(shown) = shown else { continue };
            let written = &text[at.clone()];
            let draft = &mut self.draft;
            draft.mentions.push(Mention { at: draft.mention_text.len(), len: written.len(), shown });
            draft.mention_text.push_str(written);
            draft.mention_text.extend(written[1..].bytes().map(|b| char::from(b.to_ascii_lowercase())));
            if at.start > rest {
                out.push(Event::Text(slice(&text, rest..at.start)));
            }
            out.mention(written.len());
            rest = at.end;
        }
        if rest == 0 {
            out.push(Event::Text(text));
        } else if rest < text.len() {
            out.push(Event::Text(slice(&text, rest..text.len())));
        }
    }
}

/// How a Markdown element takes part in bounding the nesting.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Nests {
    /// It can hold itself, however deep (quotes, lists, emphasis, links): it counts
    /// towards [`NESTING_MAX`], and beyond that its tags are dropped.
    Counts,
    /// It only ever sits directly in one that counts (a list's items): its tags are
    /// kept or dropped with that one's, so there is never `<li>` without `<ul>`.
    Follows,
    /// It cannot hold itself (paragraphs, headings, code blocks, tables, images), so it
    /// adds a few levels at most and is always kept.
    Leaf,
}

fn nests(tag: &Tag) -> Nests {
    match tag {
        Tag::Item | Tag::DefinitionListTitle | Tag::DefinitionListDefinition => Nests::Follows,
        Tag::Paragraph
        | Tag::Heading { .. }
        | Tag::CodeBlock(_)
        | Tag::HtmlBlock
        | Tag::Table(_)
        | Tag::TableHead
        | Tag::TableRow
        | Tag::TableCell
        | Tag::Image { .. }
        | Tag::MetadataBlock(_) => Nests::Leaf,
        _ => Nests::Counts,
    }
}

fn is_inline(tag: &TagEnd) -> bool {
    matches!(
        tag,
        TagEnd::Emphasis
            | TagEnd::Strong
            | TagEnd::Strikethrough
            | TagEnd::Superscript
            | TagEnd::Subscript
            | TagEnd::Link
            | TagEnd::Image
    )
}

/// An element the Markdown opened: whether its tags were dropped (flattened) and whether
/// it counts towards [`NESTING_MAX`].
struct Open {
    dropped: bool,
    counts: bool,
}

/// The event stream on its way to the HTML writer, with nesting bounded: see the module
/// docs. Markdown elements are tracked in `open`, raw HTML elements in `raw`.
#[derive(Default)]
struct Bounded<'a> {
    /// Made, not yet written.
    events: VecDeque<Event<'a>>,
    /// Whether the last event made was a soft break.
    broke: bool,
    /// Bytes of text made since the last break (see [`TEXT_RUN_MAX`]).
    text_run: usize,
    open: Vec<Open>,
    /// How many of `open` count towards [`NESTING_MAX`], kept or dropped.
    nesting: usize,
    raw: RawHtml,
    /// The lines of the HTML block being read.
    html_block: String,
}

impl<'a> Bounded<'a> {
    fn push(&mut self, event: Event<'a>) {
        self.flush_html_block();
        match event {
            Event::Text(_) | Event::Code(_) if self.raw.hiding.is_some() => {}
            Event::Text(text) => self.text(text),
            Event::Code(code) if code.len() > TEXT_RUN_MAX => {
                let mut html = String::from("<code>");
                for (i, piece) in text_pieces(&code, false).enumerate() {
                    if i > 0 {
                        html.push_str(BREAK);
                    }
                    escape_html(&mut html, piece);
                }
                html.push_str("</code>");
                self.emit(Event::InlineHtml(CowStr::from(html)));
            }
            other => self.emit(other),
        }
    }

    fn text(&mut self, text: CowStr<'a>) {
        if self.text_run + text.len() <= TEXT_RUN_MAX {
            self.text_run += text.len();
            self.emit(Event::Text(text));
            return;
        }
        for piece in text_pieces(&text, false) {
            if self.text_run > 0 {
                self.emit(Event::InlineHtml(CowStr::Borrowed(BREAK)));
            }
            self.text_run = piece.len();
            self.emit(Event::Text(CowStr::from(piece.to_string())));
        }
    }

    /// A placeholder for a mention `len` bytes long ([`MENTION`]). It counts as text,
    /// since an unknown handle's mention is written back as the text it was.
    fn mention(&mut self, len: usize) {
        self.flush_html_block();
        if self.text_run > 0 && self.text_run + len > TEXT_RUN_MAX {
            self.emit(Event::InlineHtml(CowStr::Borrowed(BREAK)));
            self.text_run = 0;
        }
        self.text_run += len;
        self.emit(Event::InlineHtml(CowStr::Borrowed(MENTION)));
    }

    /// A placeholder for an uploaded image ([`IMAGE`]).
    fn image(&mut self) {
        self.flush_html_block();
        self.emit(Event::InlineHtml(CowStr::Borrowed(IMAGE)));
    }

    fn start(&mut self, tag: Tag<'a>) {
        self.flush_html_block();
        // An HTML block's own start and end write nothing; its raw HTML belongs to the
        // container around it, so that `<blockquote>` in one block and `</blockquote>`
        // in a later one can wrap Markdown between them.
        if matches!(tag, Tag::HtmlBlock) {
            return;
        }
        let nests = nests(&tag);
        let counts = nests == Nests::Counts;
        let dropped = match nests {
            Nests::Counts => self.nesting >= NESTING_MAX,
            Nests::Follows => self.nesting > NESTING_MAX,
            Nests::Leaf => false,
        };
        self.nesting += usize::from(counts);
        self.open.push(Open { dropped, counts });
        if !dropped {
            self.emit(Event::Start(tag));
        }
    }

    fn end(&mut self, tag: TagEnd) {
        self.flush_html_block();
        if matches!(tag, TagEnd::HtmlBlock) {
            return;
        }
        // Raw HTML opened inside this element closes with it.
        if self.raw.hiding.is_some_and(|(_, frame)| frame >= self.open.len()) {
            self.raw.hiding = None;
        }
        let closes = self.raw.close_from_frame(self.open.len());
        self.push_raw(closes);
        let Some(open) = self.open.pop() else { return };
        self.nesting -= usize::from(open.counts);
        if !open.dropped {
            self.emit(Event::End(tag));
        } else if !is_inline(&tag) && !self.broke {
            // Keep flattened blocks' words apart (once: a run of ends needs one break).
            self.emit(Event::SoftBreak);
        }
    }

    fn inline_html(&mut self, source: &str) {
        self.flush_html_block();
        self.raw(source, false);
    }

    fn raw(&mut self, source: &str, block: bool) {
        let filtered = self.raw.filter(source, self.open.len());
        if block {
            self.emit(Event::Html(CowStr::from(filtered)));
        } else {
            self.push_raw(filtered);
        }
    }

    fn push_raw(&mut self, html: String) {
        if !html.is_empty() {
            self.emit(Event::InlineHtml(CowStr::from(html)));
        }
    }

    fn flush_html_block(&mut self) {
        if !self.html_block.is_empty() {
            let block = std::mem::take(&mut self.html_block);
            self.raw(&block, true);
        }
    }

    fn finish(&mut self) {
        self.flush_html_block();
        let closes = self.raw.close_from_frame(0);
        self.push_raw(closes);
    }

    fn emit(&mut self, event: Event<'a>) {
        self.broke = matches!(event, Event::SoftBreak);
        self.events.push_back(event);
    }
}

/// What breaks a long run of text (see [`TEXT_RUN_MAX`]).
const BREAK: &str = "<!---->";

/// `text` in pieces of at most [`TEXT_RUN_MAX`] bytes, cut between characters and, for
/// raw HTML (`entities`), before an `&` rather than inside a character reference.
fn text_pieces(text: &str, entities: bool) -> impl Iterator<Item = &str> {
    let mut rest = text;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let mut cut = TEXT_RUN_MAX.min(rest.len());
        while !rest.is_char_boundary(cut) {
            cut -= 1;
        }
        if entities && cut < rest.len() {
            if let Some(amp) = rest[..cut].rfind('&').filter(|at| *at > 0) {
                cut = amp;
            }
        }
        let (piece, tail) = rest.split_at(cut);
        rest = tail;
        Some(piece)
    })
}

/// How wide an image shows at most: the prose column (`.prose` in app.css), so that
/// the browser picks the smallest width that fills it.
const IMAGE_SIZES: &str = "(min-width: 40em) 38em, 100vw";

/// The `<img>` for an uploaded image: every width kept in `srcset`, its size so that the
/// page does not jump as it loads, loaded only as it nears the screen. The description
/// written in the Markdown is its alt text, or the one given at upload when that is empty.
fn image_tag(html: &mut String, image: &uploads::Image, description: &str) {
    let alt = if description.trim().is_empty() { image.alt.as_str() } else { description };
    html.push_str("<img src=\"");
    html.push_str(&image.path());
    html.push_str("\" alt=\"");
    escape_html(html, alt);
    html.push_str(&format!("\" width=\"{}\" height=\"{}\"", image.width, image.height));
    let widths = image.widths();
    if widths.len() > 1 {
        let set: Vec<String> = widths.iter().map(|w| format!("{} {w}w", image.path_at(*w))).collect();
        html.push_str(&format!(" srcset=\"{}\" sizes=\"{IMAGE_SIZES}\"", set.join(", ")));
    }
    html.push_str(" loading=\"lazy\">");
}

/// Escapes text as pulldown-cmark's HTML writer does.
fn escape_html(out: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            c => out.push(c),
        }
    }
}

/// The tags raw HTML may write, and the sanitiser keeps. Raw HTML is cut down to these
/// before the sanitiser sees it, which removes nothing the sanitiser would keep but
/// `img`: the sanitiser also keeps the `<img>` Kettle writes for an uploaded image (see
/// [`image_tag`]), and only with addresses under `/uploads/`, but raw HTML cannot write
/// one.
const ALLOWED_TAGS: [&str; 24] = [
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
];

/// Elements whose content HTML reads as text up to their end tag. `script` and `style`
/// lose their content, as the sanitiser would; the others' content stays, as text.
const RAW_TEXT_TAGS: [&str; 10] =
    ["script", "style", "xmp", "iframe", "noembed", "noframes", "noscript", "textarea", "title", "plaintext"];

/// Elements that make HTML parse what follows as table structure, moving everything else
/// out in front of the table (one node at a time, each a search of the table's parent).
const TABLE_TAGS: [&str; 6] = ["table", "thead", "tbody", "tr", "th", "td"];

/// A raw HTML element left open.
struct RawOpen {
    name: &'static str,
    /// How many Markdown elements were open around it.
    frame: usize,
    /// Which piece of raw HTML (one inline tag, or one HTML block) opened it.
    piece: usize,
}

/// Raw HTML from the source, rewritten to nest (see the module docs). Each piece is
/// read with HTML's own tokenising rules (where a tag, a comment or a quoted value ends);
/// what comes out is only allow-listed tags, written afresh with their attributes quoted,
/// and text with `<` escaped, so the sanitiser can only read it one way.
#[derive(Default)]
struct RawHtml {
    open: Vec<RawOpen>,
    /// A `script` or `style` element opened in inline raw HTML whose end tag has not
    /// come yet, with the Markdown element it was opened in: the text up to its end tag
    /// is dropped, as the sanitiser drops such elements' content whole.
    hiding: Option<(&'static str, usize)>,
    pieces: usize,
    /// Bytes of text written since the last break (see [`TEXT_RUN_MAX`]).
    text_run: usize,
}

fn is_html_space(b: u8) -> bool {
    matches!(b, b'\t' | b'\n' | b'\x0c' | b'\r' | b' ')
}

/// A tag read from raw HTML.
struct RawTag<'s> {
    name: String,
    attributes: Vec<(&'s str, &'s str)>,
    /// The index just past its `>`.
    end: usize,
}

/// Reads the tag whose name starts at `at` (just past `<` or `</`), following HTML's
/// tokeniser: attribute values may be quoted, and a `>` inside quotes does not end the
/// tag. `None` if the text ends first.
fn read_tag(s: &str, at: usize) -> Option<RawTag<'_>> {
    let b = s.as_bytes();
    let mut i = at;
    while i < b.len() && !is_html_space(b[i]) && b[i] != b'/' && b[i] != b'>' {
        i += 1;
    }
    let name = s[at..i].to_ascii_lowercase();
    let mut attributes = Vec::new();
    loop {
        while i < b.len() && (is_html_space(b[i]) || b[i] == b'/') {
            i += 1;
        }
        if i == b.len() {
            return None;
        }
        if b[i] == b'>' {
            return Some(RawTag { name, attributes, end: i + 1 });
        }
        // A name's first character may be anything (even `=`); then up to a space, `/`,
        // `>` or `=`.
        let name_start = i;
        i += s[i..].chars().next().map_or(1, char::len_utf8);
        while i < b.len() && !is_html_space(b[i]) && !matches!(b[i], b'/' | b'>' | b'=') {
            i += 1;
        }
        let attribute = &s[name_start..i];
        while i < b.len() && is_html_space(b[i]) {
            i += 1;
        }
        let mut value = "";
        if i < b.len() && b[i] == b'=' {
            i += 1;
            while i < b.len() && is_html_space(b[i]) {
                i += 1;
            }
            match b.get(i) {
                None => return None,
                Some(&quote @ (b'"' | b'\'')) => {
                    let close = s[i + 1..].find(quote as char)? + i + 1;
                    value = &s[i + 1..close];
                    i = close + 1;
                }
                Some(b'>') => {}
                Some(_) => {
                    let start = i;
                    while i < b.len() && !is_html_space(b[i]) && b[i] != b'>' {
                        i += 1;
                    }
                    value = &s[start..i];
                }
            }
        }
        attributes.push((attribute, value));
    }
}

impl RawHtml {
    /// Writes text from raw HTML, with `<` escaped so that dropping a tag beside it
    /// cannot make a new one (`<<div>b>` must not become `<b>`), and long runs broken
    /// (see [`TEXT_RUN_MAX`]). Entities are left for the sanitiser.
    fn write_text(&mut self, out: &mut String, text: &str) {
        for piece in text_pieces(text, true) {
            if self.text_run > 0 && self.text_run + piece.len() > TEXT_RUN_MAX {
                out.push_str(BREAK);
                self.text_run = 0;
            }
            self.text_run += piece.len();
            out.push_str(&piece.replace('<', "&lt;"));
        }
    }

    /// Rewrites one piece of raw HTML read inside `frame` open Markdown elements.
    fn filter(&mut self, s: &str, frame: usize) -> String {
        self.pieces += 1;
        let piece = self.pieces;
        let b = s.as_bytes();
        let mut out = String::with_capacity(s.len());
        let (mut i, mut text_start) = (0, 0);
        if let Some((hidden, _)) = self.hiding {
            let Some(end) = find_end_tag(s, 0, hidden) else { return out };
            self.hiding = None;
            i = read_tag(s, end + 2).map_or(b.len(), |t| t.end);
            text_start = i;
        }
        while i < b.len() {
            if b[i] != b'<' {
                i += 1;
                continue;
            }
            let next = b.get(i + 1).copied();
            let end_tag_name = next == Some(b'/') && b.get(i + 2).is_some_and(u8::is_ascii_alphabetic);
            if !(next.is_some_and(|c| c.is_ascii_alphabetic() || c == b'!' || c == b'?' || c == b'/')) {
                i += 1; // A `<` that starts nothing is text.
                continue;
            }
            self.text(&mut out, &s[text_start..i], frame);
            if next.is_some_and(|c| c.is_ascii_alphabetic()) || end_tag_name {
                let at = if end_tag_name { i + 2 } else { i + 1 };
                let Some(tag) = read_tag(s, at) else {
                    // Unfinished: HTML would read what follows (our own markup) as its
                    // attributes, so it goes, with the rest of the piece.
                    text_start = b.len();
                    break;
                };
                i = tag.end;
                if end_tag_name {
                    self.end_tag(&mut out, &tag.name, frame);
                } else if let Some(raw_text) = RAW_TEXT_TAGS.iter().find(|t| **t == tag.name) {
                    // Everything up to the matching end tag (for `plaintext`, to the end)
                    // is text, with entities read only in `textarea` and `title`.
                    let content_end = match *raw_text {
                        "plaintext" => b.len(),
                        _ => find_end_tag(s, i, raw_text).unwrap_or(b.len()),
                    };
                    match *raw_text {
                        "script" | "style" if content_end == b.len() => self.hiding = Some((*raw_text, frame)),
                        "script" | "style" => {}
                        "textarea" | "title" => self.write_text(&mut out, &s[i..content_end]),
                        _ => self.write_text(&mut out, &s[i..content_end].replace('&', "&amp;")),
                    }
                    i = if content_end < b.len() {
                        read_tag(s, content_end + 2).map_or(b.len(), |t| t.end)
                    } else {
                        b.len()
                    };
                } else {
                    self.start_tag(&mut out, &tag, frame, piece);
                }
            } else if s[i..].starts_with("<!--") {
                // The sanitiser strips comments, so this does too.
                i = comment_end(s, i);
            } else {
                // `<!DOCTYPE`, `<![CDATA[`, `<?`, `</` and no name: up to the next `>`.
                i = s[i..].find('>').map_or(b.len(), |at| i + at + 1);
            }
            text_start = i;
        }
        self.text(&mut out, &s[text_start.min(b.len())..], frame);
        // A table opened here closes here, before any Markdown can land inside it.
        if let Some(first) = self.open.iter().position(|o| o.piece == piece && TABLE_TAGS.contains(&o.name)) {
            self.close_to(&mut out, first);
        }
        out
    }

    /// The innermost raw element open in this Markdown element, if any.
    fn top(&self, frame: usize) -> Option<&RawOpen> {
        self.open.last().filter(|o| o.frame == frame)
    }

    /// Whether the innermost raw element is a table, or a part of one, but not a cell.
    fn in_table_part(&self, frame: usize) -> bool {
        self.top(frame).is_some_and(|o| matches!(o.name, "table" | "thead" | "tbody" | "tr"))
    }

    fn text(&mut self, out: &mut String, text: &str, frame: usize) {
        // Inside a table but outside a cell, HTML would move text out in front of the
        // table, a node at a time; it is dropped instead (only the spaces between the
        // table's tags belong there).
        if self.in_table_part(frame) && !text.bytes().all(is_html_space) {
            return;
        }
        self.write_text(out, text);
    }

    fn start_tag(&mut self, out: &mut String, tag: &RawTag, frame: usize, piece: usize) {
        let Some(name) = ALLOWED_TAGS.iter().copied().find(|t| *t == tag.name) else { return };
        let mut add_row = false;
        match name {
            "thead" | "tbody" | "tr" | "td" | "th" => {
                // Table parts go only in a raw table of this piece (elsewhere HTML ignores
                // them, or in a Markdown table would end the Markdown's own cell).
                let Some(table) =
                    self.open.iter().rposition(|o| o.frame != frame || o.piece != piece || o.name == "table").filter(
                        |at| {
                            let o = &self.open[*at];
                            o.frame == frame && o.piece == piece && o.name == "table"
                        },
                    )
                else {
                    return;
                };
                // As HTML does, close what is open in the table down to the part this
                // one belongs in (`<td>a<td>b`, `<tr><td>a<tr>`), adding the row a cell
                // needs.
                let parents: &[&str] = match name {
                    "td" | "th" => &["tr", "thead", "tbody"],
                    "tr" => &["thead", "tbody"],
                    _ => &[],
                };
                let parent =
                    self.open[table..].iter().rposition(|o| parents.contains(&o.name)).map_or(table, |at| table + at);
                self.close_to(out, parent + 1);
                add_row = matches!(name, "td" | "th") && self.open[parent].name != "tr";
            }
            // Anything else in a table but outside a cell, HTML moves out in front of it.
            _ if self.in_table_part(frame) => return,
            // As HTML does, a paragraph or list item ends the one open before it.
            "p" | "li" if self.top(frame).is_some_and(|o| o.name == name) => {
                self.close_to(out, self.open.len() - 1);
            }
            _ => {}
        }
        let void = matches!(name, "br" | "hr");
        if !void && self.open.len() + usize::from(add_row) >= NESTING_MAX {
            return;
        }
        if add_row {
            out.push_str("<tr>");
            self.open.push(RawOpen { name: "tr", frame, piece });
        }
        out.push('<');
        out.push_str(name);
        for (attribute, value) in &tag.attributes {
            let sane = attribute.bytes().all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b':' | b'.'))
                && attribute.starts_with(|c: char| c.is_ascii_alphabetic());
            if sane {
                out.push(' ');
                out.push_str(&attribute.to_ascii_lowercase());
                out.push_str("=\"");
                out.push_str(&value.replace('"', "&quot;"));
                out.push('"');
            }
        }
        out.push('>');
        if !void {
            self.open.push(RawOpen { name, frame, piece });
        }
    }

    /// An end tag closes the innermost raw element of its name opened in this Markdown
    /// element, and everything opened inside it; any other end tag goes.
    fn end_tag(&mut self, out: &mut String, name: &str, frame: usize) {
        let found = self.open.iter().rposition(|o| o.frame != frame || o.name == name);
        if let Some(at) = found.filter(|at| self.open[*at].frame == frame) {
            self.close_to(out, at);
        }
    }

    /// Closes the raw elements from index `at` up, innermost first.
    fn close_to(&mut self, out: &mut String, at: usize) {
        for open in self.open.drain(at..).rev() {
            out.push_str("</");
            out.push_str(open.name);
            out.push('>');
        }
    }

    /// Closes the raw elements opened inside `frame` or more Markdown elements.
    fn close_from_frame(&mut self, frame: usize) -> String {
        let mut out = String::new();
        if let Some(at) = self.open.iter().position(|o| o.frame >= frame) {
            self.close_to(&mut out, at);
        }
        out
    }
}

/// The index just past the comment that starts at `at` (with `<!--`): past the first
/// `-->` or `--!>`, counting `<!-->` and `<!--->`, or the end of the text. It reads
/// forward once, so a text of many comments (or of one unfinished one) stays linear.
fn comment_end(s: &str, at: usize) -> usize {
    let b = s.as_bytes();
    let mut j = at + 2;
    while let Some(found) = s[j..].find("--") {
        let dashes = j + found;
        match (b.get(dashes + 2), b.get(dashes + 3)) {
            (Some(b'>'), _) => return dashes + 3,
            (Some(b'!'), Some(b'>')) if dashes >= at + 4 => return dashes + 4,
            _ => j = dashes + 1,
        }
    }
    b.len()
}

/// Where the end tag `</name` (any case, then a space, `/` or `>`) starts, from `from`.
fn find_end_tag(s: &str, from: usize, name: &str) -> Option<usize> {
    let b = s.as_bytes();
    let mut at = from;
    while let Some(found) = s[at..].find("</") {
        let start = at + found;
        let name_end = start + 2 + name.len();
        if b.len() >= name_end
            && s.is_char_boundary(name_end)
            && s[start + 2..name_end].eq_ignore_ascii_case(name)
            && b.get(name_end).is_none_or(|c| is_html_space(*c) || matches!(c, b'/' | b'>'))
        {
            return Some(start);
        }
        at = start + 2;
    }
    None
}

/// Plain text of a Markdown source, for summaries, search snippets and feeds.
pub fn plain_text(source: &str) -> String {
    let mut out = String::with_capacity(source.len());
    for event in Parser::new_ext(source, options()) {
        match event {
            Event::Text(text) | Event::Code(text) => out.push_str(&text),
            // An image's description is words of its own, not run into the text either side.
            Event::SoftBreak
            | Event::HardBreak
            | Event::End(TagEnd::Paragraph)
            | Event::End(TagEnd::Heading(_))
            | Event::Start(Tag::Image { .. })
            | Event::End(TagEnd::Image) => out.push(' '),
            _ => {}
        }
    }
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// What the sanitiser puts before every id in a member's text, so that none can take the
/// page's own.
const ID_PREFIX: &str = "user-content-";

/// The footnotes of one text. Each is named `fn<key>-<n>`: `n` counts them in the order
/// they first appear, as their numbers do, and `key` comes from the text, so that two
/// texts on one page (a case study and its comments) do not share ids. The label a
/// member wrote is never written out.
#[derive(Default)]
struct Footnotes<'a> {
    source: &'a str,
    key: Option<String>,
    /// Labels in the order they first appeared, each with how often it was referred to.
    labels: Vec<(CowStr<'a>, usize)>,
    /// The names of the definitions open (one, unless a definition holds another).
    open: Vec<String>,
}

impl<'a> Footnotes<'a> {
    /// The footnote labelled `label`: its name and number, counted in if new.
    fn number(&mut self, label: &CowStr<'a>) -> (String, usize) {
        let key = self.key.get_or_insert_with(|| {
            use std::hash::{Hash, Hasher};
            let mut hasher = std::collections::hash_map::DefaultHasher::new();
            self.source.hash(&mut hasher);
            format!("{:08x}", hasher.finish() as u32)
        });
        let n = match self.labels.iter().position(|(l, _)| l == label) {
            Some(at) => at + 1,
            None => {
                self.labels.push((label.clone(), 0));
                self.labels.len()
            }
        };
        (format!("fn{key}-{n}"), n)
    }

    /// A reference to `label`: its footnote's name and number, and which reference to it
    /// this is (1 for the first).
    fn referred(&mut self, label: &CowStr<'a>) -> (String, usize, usize) {
        let (name, n) = self.number(label);
        let times = &mut self.labels[n - 1].1;
        *times += 1;
        (name, n, *times)
    }

    fn defined(&mut self, label: &CowStr<'a>) -> String {
        self.number(label).0
    }
}

/// The sanitiser, built once: building one makes its allow-lists afresh.
static SANITIZER: LazyLock<ammonia::Builder<'static>> = LazyLock::new(|| {
    let tags: HashSet<&str> = ALLOWED_TAGS.into_iter().chain(["img"]).collect();
    let mut builder = ammonia::Builder::empty();
    builder
        .tags(tags)
        .add_tag_attributes("a", ["href", "title"])
        .add_tag_attributes("img", ["src", "alt", "width", "height", "srcset", "sizes", "loading"])
        // An image loads only from Kettle's own uploads: nothing a member writes makes a
        // reader's browser ask another site for anything.
        .attribute_filter(|element, attribute, value| match (element, attribute) {
            ("img", "src") if uploads::key_of_url(value).is_none() => None,
            ("img", "srcset")
                if !value
                    .split(',')
                    .all(|candidate| candidate.split_whitespace().next().and_then(uploads::key_of_url).is_some()) =>
            {
                None
            }
            _ => Some(value.into()),
        })
        // Footnotes (see `Footnotes`): only Kettle writes these elements; a member's own
        // `<sup>` and `<div>` are filtered out before.
        .add_tags(["sup", "div"])
        .add_tag_attributes("a", ["id"])
        .add_tag_attributes("div", ["id"])
        .add_tag_attributes("sup", ["id"])
        .add_allowed_classes("sup", ["footnote-reference", "footnote-definition-label"])
        .add_allowed_classes("div", ["footnote-definition"])
        .add_tag_attributes("ol", ["start"])
        .add_tag_attributes("th", ["align"])
        .add_tag_attributes("td", ["align"])
        .add_allowed_classes("a", ["mention"])
        .url_schemes(["http", "https", "mailto"].into_iter().collect())
        .url_relative(ammonia::UrlRelative::PassThrough)
        .link_rel(Some("nofollow ugc noopener noreferrer"))
        .id_prefix(Some(ID_PREFIX))
        .strip_comments(true);
    builder
});

/// `html` sanitised by [`SANITIZER`], serialised straight into the string returned (the
/// sanitised document's `Display` serialises into a buffer of its own, then copies it).
fn sanitise(html: &str) -> String {
    let mut out = Vec::with_capacity(html.len());
    // Writing to a vector fails only when memory runs out, which aborts first.
    let _ = SANITIZER.clean(html).write_to(&mut out);
    String::from_utf8(out).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

/// What sanitised output must never contain: tags that run script, load resources (but
/// Kettle's own uploaded images) or take input, script and data URLs, inline styles, an id that clashes with the page's
/// own, and event-handler attributes. The tests check every write with it (the Markdown
/// unit tests and the API tests alike). Returns the first such thing found, described.
pub fn unsafe_markup(html: &str) -> Option<String> {
    const FORBIDDEN: [&str; 22] = [
        "<script",
        "<style",
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
    // An image only from Kettle's uploads: a path under /uploads/, never another site.
    for (at, _) in html.match_indices("<img") {
        let tag = &html[at..html[at..].find('>').map_or(html.len(), |end| at + end)];
        if !tag.contains(" src=\"/uploads/") || tag.contains("//") {
            return Some(format!("an image not from /uploads/: {tag:?}"));
        }
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

    #[test]
    fn headings_never_skip_a_level() {
        let levels = |source: &str| -> Vec<String> {
            let out = html(source);
            out.match_indices("<h").map(|(at, _)| out[at + 1..at + 3].to_string()).collect()
        };
        // The page's title is the h1: a body starts at h2 at most, and each heading is at
        // most one below the one before; going back up is always allowed.
        assert_eq!(levels("### Costs\n\ntext"), ["h2"]);
        assert_eq!(levels("# Plan\n\n### Costs\n\n#### Staff\n\n# Results"), ["h2", "h3", "h4", "h2"]);
        assert_eq!(levels("## A\n\n# B\n\n###### C"), ["h2", "h2", "h3"]);
        assert_eq!(levels("> ### Quoted\n\n- #### Listed"), ["h2", "h3"]);
        assert!(html("Title\n=====\n\n### Under").contains("<h2>Title</h2>\n<h3>Under</h3>"));
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

    /// One parse finds the handles to look up and leaves a placeholder at each mention.
    /// Finished, a known handle is linked, an unknown one keeps its text as written, and
    /// one in hidden text (a `script`'s) goes with it. One in an image's description is
    /// link text, like one in a link's: looked up, not linked.
    #[test]
    fn drafts_link_mentions_once_the_handles_are_known() {
        let known: HashSet<String> = ["ada".to_string()].into_iter().collect();
        let link = "<a href=\"/members/@ada\" class=\"mention\" rel=\"nofollow ugc noopener noreferrer\">@ada</a>";
        let source = "Hi @Ada, @Nobody- and e@ada.\n\n![@ada @bob](x.png) a <script>@ada @nobody</script> b";
        let draft = Draft::new(source);
        assert_eq!(draft.candidates(), ["ada", "nobody", "bob"]);
        assert_eq!(draft.candidates(), mention_candidates(source));
        let rendered = draft.finish(&known);
        let image = "<a href=\"x.png\" rel=\"nofollow ugc noopener noreferrer\">@ada @bob</a>";
        assert_eq!(rendered.html, format!("<p>Hi {link}, @Nobody- and e@ada.</p>\n<p>{image} a {link} b</p>\n"));
        assert_eq!(rendered.mentions, ["ada"]);
        let unlinked = Draft::new(source).finish(&HashSet::new());
        assert_eq!(unlinked.html, format!("<p>Hi @Ada, @Nobody- and e@ada.</p>\n<p>{image} a  b</p>\n"));
        assert!(unlinked.mentions.is_empty());
        // Placeholders count as text where long runs are broken for the sanitiser.
        let long = format!("{}@nobody @ada", "&".repeat(TEXT_RUN_MAX - 3));
        assert_eq!(render(&long, &known).html, format!("<p>{}@nobody {link}</p>\n", "&amp;".repeat(TEXT_RUN_MAX - 3)));
    }

    /// An image is shown as a link to it, its description the link's text, never as an
    /// `<img>` (nothing is loaded from elsewhere); one described by nothing is called
    /// "image"; inside a link (or another image's description) only its text is written,
    /// since a link cannot hold a link; an address the sanitiser refuses leaves the text.
    /// In plain text (what search indexes) the description is words of its own.
    #[test]
    fn uploaded_images_show_with_their_sizes_and_alt_text() {
        let key = "0123456789abcdef0123456789abcdef";
        let image = uploads::Image {
            id: 1,
            key: key.into(),
            owner_id: 1,
            alt: "A chart of bins collected".into(),
            format: uploads::Format::Png,
            width: 1200,
            height: 600,
            bytes: 1000,
            created_at: 0,
        };
        let images = HashMap::from([(key.to_string(), image)]);
        let html = |source: &str| Draft::new(source).finish_with(&HashSet::new(), &images).html;
        let srcset = format!("/uploads/{key}-480.png 480w, /uploads/{key}-960.png 960w, /uploads/{key}.png 1200w");
        let tag = |alt: &str| {
            format!(
                "<img src=\"/uploads/{key}.png\" alt=\"{alt}\" width=\"1200\" height=\"600\" srcset=\"{srcset}\" sizes=\"{IMAGE_SIZES}\" loading=\"lazy\">"
            )
        };
        assert_eq!(
            html(&format!("![Bins *by* month](/uploads/{key}.png)")),
            format!("<p>{}</p>\n", tag("Bins by month"))
        );
        // No description: the alt text given at upload.
        assert_eq!(
            html(&format!("Before ![](/uploads/{key}-480.png) after")),
            format!("<p>Before {} after</p>\n", tag("A chart of bins collected"))
        );
        // An upload that is gone (or never was) shows its description; another site's
        // image stays a link; inside a link, only the text.
        let gone = "ffffffffffffffffffffffffffffffff";
        assert_eq!(html(&format!("![Old & \\<new\\>](/uploads/{gone}.png)")), "<p>Old &amp; &lt;new&gt;</p>\n");
        assert!(html("![x](https://example.org/uploads/a.png)").contains("<a href="));
        assert_eq!(html(&format!("[![Bins](/uploads/{key}.png)](https://example.org/)")).matches("<img").count(), 0);
        // Mentions and images fill in together, in order.
        let known = HashSet::from(["ada".to_string()]);
        let mixed = Draft::new(&format!("@ada ![One](/uploads/{key}.png) @bob ![Two](/uploads/{gone}.png) @ada"))
            .finish_with(&known, &images)
            .html;
        assert_eq!(mixed, {
            let ada = "<a href=\"/members/@ada\" class=\"mention\" rel=\"nofollow ugc noopener noreferrer\">@ada</a>";
            format!("<p>{ada} {} @bob Two {ada}</p>\n", tag("One"))
        });
        for out in [mixed, html(&format!("![a](/uploads/{key}.png)"))] {
            assert_eq!(unsafe_markup(&out), None, "{out}");
        }
        // Raw HTML cannot write an image, even one of Kettle's.
        assert!(!html(&format!("<img src=\"/uploads/{key}.png\"> <img src=\"https://example.org/x.png\">"))
            .contains("<img"));
        assert!(unsafe_markup("<img src=\"https://example.org/x.png\">").is_some());
        assert!(unsafe_markup("<img src=\"/uploads/x.png\" srcset=\"//example.org/a.png 1w\">").is_some());
    }

    #[test]
    fn footnotes_link_to_their_notes_and_back_with_ids_of_their_own() {
        let html = |source: &str| render(source, &HashSet::new()).html;
        let attributes = |out: &str, name: &str| -> Vec<String> {
            out.match_indices(&format!(" {name}=\""))
                .map(|(at, m)| {
                    let rest = &out[at + m.len()..];
                    rest[..rest.find('"').unwrap()].to_string()
                })
                .collect()
        };
        let source = "Bins went online[^bins], twice[^bins]. Parking[^\"><b>x</b>] too.\n\n\
                      [^bins]: In *2024*.\n\n[^\"><b>x</b>]: See the council's page.\n";
        let out = html(source);
        // Numbered in order, each reference linking to its note and each note back.
        assert_eq!(out.matches("<sup class=\"footnote-reference\">").count(), 3, "{out}");
        assert_eq!(out.matches("<div class=\"footnote-definition\"").count(), 2, "{out}");
        assert!(out.contains("<sup class=\"footnote-definition-label\">2</sup>"), "{out}");
        let ids = attributes(&out, "id");
        assert_eq!(ids.len(), 5, "three references and two notes: {out}");
        let unique: HashSet<&String> = ids.iter().collect();
        assert_eq!(unique.len(), ids.len(), "{out}");
        let targets: Vec<String> =
            attributes(&out, "href").into_iter().filter_map(|h| h.strip_prefix('#').map(str::to_string)).collect();
        assert_eq!(targets.len(), 5, "{out}");
        for target in &targets {
            assert!(ids.contains(target), "#{target} has no element: {out}");
        }
        // What the member wrote as a label is never written out.
        assert!(!out.contains("<b>") && !out.contains("bins\"") && !out.contains("-bins"), "{out}");
        // Another text's notes have other ids, so both can share a page.
        let other = html("Another[^bins].\n\n[^bins]: Note.\n");
        assert!(attributes(&other, "id").iter().all(|id| !ids.contains(id)), "{other}");
        // A reference to no note stays as written.
        assert_eq!(html("No note[^none]."), "<p>No note[^none].</p>\n");
        // In link text a reference comes first: the brackets around it stay text, and
        // every link in the page still finds its target.
        let linked = html("[a link[^n]](https://example.org/)\n\n[^n]: Note.\n");
        let ids = attributes(&linked, "id");
        let targets: Vec<String> =
            attributes(&linked, "href").into_iter().filter_map(|h| h.strip_prefix('#').map(str::to_string)).collect();
        assert_eq!(targets.len(), 2, "{linked}");
        assert!(targets.iter().all(|t| ids.contains(t)), "{linked}");
    }

    #[test]
    fn images_are_shown_as_links_to_them() {
        let rel = "rel=\"nofollow ugc noopener noreferrer\"";
        let html = |source: &str| render(source, &HashSet::new()).html;
        assert_eq!(
            html("See![the new form](https://example.org/form.png \"Form\")."),
            format!("<p>See<a href=\"https://example.org/form.png\" title=\"Form\" {rel}>the new form</a>.</p>\n")
        );
        assert_eq!(
            html("![](https://example.org/a.png)"),
            format!("<p><a href=\"https://example.org/a.png\" {rel}>image</a></p>\n")
        );
        assert_eq!(
            html("[![logo *here*](https://example.org/logo.png)](https://example.org/)"),
            format!("<p><a href=\"https://example.org/\" {rel}>logo <em>here</em></a></p>\n")
        );
        assert_eq!(
            html("![a [link](https://example.org/b) in it](https://example.org/c.png)"),
            format!("<p><a href=\"https://example.org/c.png\" {rel}>a link in it</a></p>\n")
        );
        assert_eq!(html("![x](javascript:alert(1))"), format!("<p><a {rel}>x</a></p>\n"));
        for source in ["![a](b.png)![c](d.png)", "![![a](b.png)](c.png)", "![`code`](x.png)"] {
            let out = html(source);
            assert!(!out.contains("<img"), "{out}");
            assert_eq!(out.matches("<a ").count(), out.matches("</a>").count(), "{out}");
        }
        assert_eq!(plain_text("See![the new form](x.png)now"), "See the new form now");
    }

    /// A bare web address is a link to itself, without the punctuation that ends its
    /// sentence or an unmatched bracket; inside code, a link or a word it stays text.
    #[test]
    fn bare_web_addresses_are_links() {
        let rel = "rel=\"nofollow ugc noopener noreferrer\"";
        let known: HashSet<String> = ["ada".to_string()].into();
        let html = |source: &str| render(source, &known).html;
        let link = |url: &str| format!("<a href=\"{url}\" {rel}>{url}</a>");
        assert_eq!(
            html("See https://example.org/bins?ward=3 and http://example.org/a."),
            format!("<p>See {} and {}.</p>\n", link("https://example.org/bins?ward=3"), link("http://example.org/a"))
        );
        assert_eq!(
            html("(https://en.wikipedia.org/wiki/Bin_(waste)), then (https://example.org/x)."),
            format!(
                "<p>({}), then ({}).</p>\n",
                link("https://en.wikipedia.org/wiki/Bin_(waste)"),
                link("https://example.org/x")
            )
        );
        // A mention beside an address is still one; an @ inside the address is not.
        let out = html("Ask @ada at https://example.org/@ada today");
        assert!(out.contains("class=\"mention\"") && out.matches("class=\"mention\"").count() == 1, "{out}");
        assert!(out.contains(&link("https://example.org/@ada")), "{out}");
        for (text, links) in [
            ("`https://example.org`", 0),
            ("[here](https://example.org/a) https", 1),
            ("[https://example.org/a](https://example.org/b)", 1),
            ("xhttps://example.org", 0),
            ("https:// and http://", 0),
        ] {
            let out = html(text);
            assert_eq!(out.matches("<a ").count(), links, "{text}: {out}");
        }
        assert_eq!(html("<https://example.org>"), format!("<p>{}</p>\n", link("https://example.org")));
        assert_eq!(plain_text("Go to https://example.org/a."), "Go to https://example.org/a.");
    }

    /// How deep elements nest in sanitised HTML (well formed, and with `<` in text
    /// escaped), and how deep `name` nests within that.
    fn depth(html: &str, name: &str) -> (usize, usize) {
        let (mut depth, mut deepest, mut named, mut named_deepest) = (0usize, 0, 0usize, 0);
        for tag in html.split('<').skip(1) {
            let closing = tag.starts_with('/');
            let tag_name: String =
                tag.trim_start_matches('/').chars().take_while(char::is_ascii_alphanumeric).collect();
            if matches!(tag_name.as_str(), "br" | "hr") {
                continue;
            }
            if closing {
                depth -= 1;
                named -= usize::from(tag_name == name);
            } else {
                depth += 1;
                named += usize::from(tag_name == name);
                deepest = deepest.max(depth);
                named_deepest = named_deepest.max(named);
            }
        }
        assert_eq!((depth, named), (0, 0), "unbalanced: {html}");
        (deepest, named_deepest)
    }

    /// The most deeply nested sources of the largest size a field takes render, with the
    /// HTML nesting no deeper than the bound, while nesting within it is untouched and
    /// nothing flattened is lost.
    #[test]
    fn deep_nesting_is_flattened_not_lost() {
        let size = crate::case_studies::BODY_MAX_BYTES;
        for unit in ["> - ", ">", "1. ", "+ ", "> 1. > * > - "] {
            let mut source = unit.repeat(size / unit.len() + 1);
            source.truncate(size);
            let out = html(&source);
            let (deepest, quotes) = depth(&out, "blockquote");
            assert!(deepest <= 2 * NESTING_MAX + 4, "{unit:?} nests {deepest} deep");
            assert!(quotes <= NESTING_MAX, "{unit:?} nests quotes {quotes} deep");
        }
        let (_, quotes) = depth(&html(&">".repeat(size)), "blockquote");
        assert_eq!(quotes, NESTING_MAX);

        assert_eq!(
            html("> > > three\n\n- a\n  - b"),
            "<blockquote>\n<blockquote>\n<blockquote>\n<p>three</p>\n</blockquote>\n</blockquote>\n</blockquote>\n\
             <ul>\n<li>a\n<ul>\n<li>b</li>\n</ul>\n</li>\n</ul>\n"
        );
        let deep = ">".repeat(NESTING_MAX + 10);
        let out = html(&format!("{deep} first *words*\n{deep}\n{deep} second [link](https://example.org)"));
        assert_eq!(depth(&out, "blockquote").1, NESTING_MAX, "{out}");
        assert!(out.contains("<p>first words</p>\n<p>second link</p>"), "{out}");

        // Long runs of text are broken for the sanitiser with comments it strips.
        let ampersands = "&".repeat(10 * TEXT_RUN_MAX);
        assert_eq!(html(&ampersands), format!("<p>{}</p>\n", "&amp;".repeat(10 * TEXT_RUN_MAX)));
        let code = format!("`{}` and\n\n    {}\n", "£<".repeat(TEXT_RUN_MAX), "°&".repeat(TEXT_RUN_MAX));
        assert_eq!(
            html(&code),
            format!(
                "<p><code>{}</code> and</p>\n<pre><code>{}\n</code></pre>\n",
                "£&lt;".repeat(TEXT_RUN_MAX),
                "°&amp;".repeat(TEXT_RUN_MAX)
            )
        );
    }

    /// Raw HTML keeps working where it nests, and is made to nest where it does not:
    /// it cannot close the Markdown's elements, leave its own open after their end, or
    /// leave a table open around what follows.
    #[test]
    fn raw_html_is_made_to_nest() {
        assert_eq!(
            html("<blockquote>\n\n*quoted*\n\n</blockquote>"),
            "<blockquote>\n<p><em>quoted</em></p>\n</blockquote>"
        );
        assert_eq!(html("> <em>open\n\nafter"), "<blockquote>\n<p><em>open</em></p>\n</blockquote>\n<p>after</p>\n");
        assert_eq!(html("> a </blockquote> b"), "<blockquote>\n<p>a  b</p>\n</blockquote>\n");
        assert_eq!(html("<ul><li>a<li>b</ul>"), "<ul><li>a</li><li>b</li></ul>");
        assert_eq!(
            html("<table><td>a<td><em>b<tr><td>c</table>d"),
            "<table><tbody><tr><td>a</td><td><em>b</em></td></tr><tr><td>c</td></tr></tbody></table>d"
        );
        assert_eq!(
            html("<table><tr><td>cell\n\nafter"),
            "<table><tbody><tr><td>cell\n</td></tr></tbody></table>\n<p>after</p>\n"
        );
        assert_eq!(
            html("<a href=https://example.org title='say \"hi\"'>x</a> <sup>1</sup>"),
            "<p><a href=\"https://example.org\" title=\"say &quot;hi&quot;\" rel=\"nofollow ugc noopener noreferrer\">x</a> 1</p>\n"
        );
        // Dropping a tag must not join its neighbours into a new one.
        assert_eq!(html("<<div>em>x"), "<p>&lt;em&gt;x</p>\n");

        let size = crate::case_studies::BODY_MAX_BYTES;
        let sources = [
            "<blockquote>".repeat(size / 12),
            "<ul><li>".repeat(size / 8),
            format!("a{}", "<em>".repeat(size / 4 - 1)),
            (0..size / 32).map(|i| format!("<em><strong title={i}></em>")).collect(),
            "> > > > > > > > > > > > > > > > <div title=\"\n\n2. x\n\n".repeat(size / 52),
        ];
        for source in sources {
            assert!(source.len() <= size);
            let (deepest, _) = depth(&html(&source), "em");
            assert!(deepest <= 3 * NESTING_MAX + 4, "{} nests {deepest} deep", &source[..40]);
        }
    }

    /// Rendering leaves the async worker: the work runs on another thread.
    #[tokio::test]
    async fn renders_off_the_async_workers() {
        let here = std::thread::current().id();
        let (there, out) = off_the_workers(|| (std::thread::current().id(), html("*hi*"))).await.unwrap();
        assert_ne!(here, there);
        assert_eq!(out, "<p><em>hi</em></p>\n");
    }

    #[test]
    fn script_and_style_content_goes_with_them() {
        assert_eq!(html("*hi* <script>alert(1)</script> there"), "<p><em>hi</em>  there</p>\n");
        // (Markdown structure inside stays, empty: only the text goes.)
        assert_eq!(html("a <style>*b* c</style> d"), "<p>a <em></em> d</p>\n");
        // An unclosed one hides the rest of its paragraph only.
        assert_eq!(html("a <script>b *c*\n\nnext"), "<p>a <em></em></p>\n<p>next</p>\n");
    }

    /// Code blocks and tables, from Markdown or raw HTML, land in labelled, focusable
    /// scroll regions; only the outermost of nested ones, and none inside a link.
    #[test]
    fn code_blocks_and_tables_scroll_in_labelled_regions() {
        let wrapped = |source: &str| scroll_regions(&html(source));
        assert_eq!(
            wrapped("```\nlet x = 1;\n```"),
            format!("{CODE_REGION}<pre><code>let x = 1;\n</code></pre></div>\n")
        );
        assert_eq!(
            wrapped("text\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\nafter"),
            format!(
                "<p>text</p>\n{TABLE_REGION}<table><thead><tr><th>a</th><th>b</th></tr></thead><tbody>\n\
                 <tr><td>1</td><td>2</td></tr>\n</tbody></table></div>\n<p>after</p>\n"
            )
        );
        assert_eq!(
            wrapped("<table><tr><td><pre>a<pre>b</pre></pre></td></tr></table>\n\n    code"),
            format!(
                "{TABLE_REGION}<table><tbody><tr><td><pre>a<pre>b</pre></pre></td></tr></tbody></table></div>\n\
                 {CODE_REGION}<pre><code>code</code></pre></div>\n"
            )
        );
        // A tag's name in an attribute value is not a tag, and a link holds no region.
        for (unwrapped, kept) in [
            ("<a href=\"https://example.org\" title=\"<pre> <table>\">x</a>", "title=\"&lt;pre&gt; &lt;table&gt;\""),
            ("<a href=\"/x\">\n<table><tr><td>y</td></tr></table>\n</a>", "<table><tbody>"),
        ] {
            let out = html(unwrapped);
            assert!(out.contains(kept), "{out}");
            assert_eq!(scroll_regions(&out), out);
        }
        // Nor is one in a quoted value, should the serialiser ever leave `<` there.
        let quoted = "<p title=\"<pre>\" class='<table>'>x</p>";
        assert_eq!(scroll_regions(quoted), quoted);
        // The wrapper is only ever ours: members cannot write one themselves.
        let forged = html(
            "<div class=\"scroll\" tabindex=\"0\" role=\"region\" aria-label=\"x\">a</div> <p tabindex=1 role=button>b</p>",
        );
        assert!(!forged.contains("<div") && !forged.contains("tabindex") && !forged.contains("role"), "{forged}");
        // Wrapping adds nothing unsafe, and leaves HTML without code or tables alone.
        for source in include_str!("../tests/fixtures/markdown_injection.txt").lines() {
            let out = wrapped(source);
            assert_eq!(unsafe_markup(&out), None, "{out}");
        }
        assert_eq!(scroll_regions("<p>a <code>b</code></p>\n"), "<p>a <code>b</code></p>\n");
        assert_eq!(scroll_regions("<pre>unclosed"), format!("{CODE_REGION}<pre>unclosed</div>"));
    }

    #[test]
    fn plain_text_strips_markup() {
        assert_eq!(
            plain_text("# Bins\n\nWe *moved* the `form` [online](https://x.org)."),
            "Bins We moved the form online."
        );
    }
}
