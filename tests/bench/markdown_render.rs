//! What rendering an ordinary case study costs, against the least any renderer must do:
//! (a) a bare pulldown-cmark parse of the same text, with the same options, iterating the
//! events; (b) `kettle::markdown::render`: parse, headings lowered, nesting bounded, raw
//! HTML rewritten, `@mentions` linked and the HTML sanitised; (c) all a write does on the
//! CPU (`render_linked` less its handle lookup): the draft and its candidates, then the
//! draft finished and sanitised, and its scroll regions; and (d) ammonia with no rules
//! over the rendered HTML, the least any sanitising with it costs. The text is a realistic case
//! study of just over 5 KB (headings, paragraphs, lists, links, emphasis, a code block, a
//! table, a quote, a few mentions and a bare URL), made here deterministically.
//!
//! `cargo bench --bench markdown_render` prints criterion's figures, then the ratios to
//! the parse from a timing loop of its own, e.g. `render/parse ratio: 3.9x (render 25.1
//! µs, parse 6.4 µs)`: each round times a batch of each, and the medians over the rounds
//! are printed, so a machine busy with other work skews the ratios less than the times.
//! It asserts nothing about time, because the machine decides that. Run any other way
//! (`cargo test --all-targets` runs bench targets without `--bench`) criterion runs each
//! benchmark once and the timing loop is skipped, as a quick smoke test.

use std::{
    collections::HashSet,
    hint::black_box,
    time::{Duration, Instant},
};

use criterion::Criterion;
use kettle::markdown;
use pulldown_cmark::Parser;

/// The least the case study is, in bytes: phases are added until it is reached.
const BODY_BYTES: usize = 5 * 1024;

/// A case study as members write them: a title, an introduction, what was done (an
/// ordered list with links and code), a code block, a table of results, a quote, lessons
/// (a nested list), then phases of prose until [`BODY_BYTES`], and thanks. Mentions of
/// three members who exist and one who does not, links, an email address and a bare URL.
fn case_study() -> String {
    let mut body = String::from(
        "# Bins, by postcode\n\n\
         How a *district council* put its waste collection rounds online, and what **three \
         volunteers** from the civic tech group learned doing it. Thanks to @ada for the first \
         prototype; the long version is at https://blog.example.org/bins.html and the data on \
         the [open data portal](https://data.example.org/waste).\n\n\
         ## What we did\n\n\
         1. Exported 1,237 rounds from the old system as CSV, with `iconv` to fix the encoding.\n\
         2. Matched each street to its *unique property reference* (UPRN) and dropped 14 duplicates.\n\
         3. Published the calendar as iCalendar, one feed per round, linked from the \
         [service page](https://www.example.gov/bins).\n\
         4. Asked @linus to review the ~~spreadsheet~~ pipeline before launch.\n\n\
         ```python\n\
         import csv\n\
         \n\
         def rounds(path):\n    \
             with open(path, newline=\"\") as f:\n        \
                 for row in csv.DictReader(f):\n            \
                     if row[\"uprn\"] and row[\"day\"] != \"\":\n                \
                         yield row[\"uprn\"], row[\"day\"].lower()\n\
         ```\n\n\
         ## Results\n\n\
         | Measure | Before | After |\n\
         |:--------|-------:|------:|\n\
         | Missed collections a month | 480 | 95 |\n\
         | Calls to the contact centre | 2,100 | 640 |\n\
         | Pages viewed | 12,400 | 31,900 |\n\n\
         > The best part was that residents could subscribe to *their own* round & stop \
         phoning us. — a team leader\n\n\
         ## Lessons\n\n\
         - Keep the street gazetteer up to date:\n  \
           - check it **every month**;\n  \
           - publish early, then fix.\n\
         - Ask the crews, not only the managers.\n\n",
    );
    let mut phase = 1;
    while body.len() < BODY_BYTES {
        body.push_str(&format!(
            "## Phase {phase}\n\n\
             In phase {phase} we moved {rounds} more rounds, and @grace-h chased the data licence \
             for the *garden waste* collections. Questions went to waste@example.org; the feed \
             for phase {phase} is [here](https://data.example.org/waste/{phase}.ics), and \
             @nobody-here never answered.\n\n\
             - **{missed}** missed collections in the first month;\n\
             - {calls} calls, down from {before}.\n\n",
            rounds = 120 + 37 * phase,
            missed = 40 - 3 * phase,
            calls = 300 + 20 * phase,
            before = 900 + 50 * phase,
        ));
        phase += 1;
    }
    body.push_str(
        "## Thanks\n\nTo @ada, @grace-h and @linus, and to every crew who told us where the map was wrong.\n",
    );
    body
}

fn parse(text: &str) -> usize {
    Parser::new_ext(text, markdown::options()).count()
}

/// What a write does on the CPU: `render_linked` without the lookup of the handles.
fn write_path(text: &str, known: &HashSet<String>) -> String {
    let draft = markdown::Draft::new(text);
    black_box(draft.candidates());
    markdown::scroll_regions(&draft.finish(known).html)
}

/// The time of one call of `f`, from a batch of `calls` timed as a whole.
fn time_per_call(calls: u32, mut f: impl FnMut()) -> f64 {
    let started = Instant::now();
    for _ in 0..calls {
        f();
    }
    started.elapsed().as_secs_f64() / f64::from(calls)
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let text = case_study();
    let known: HashSet<String> = ["ada", "grace-h", "linus"].into_iter().map(String::from).collect();

    // The case study is what it says: every kind of element, and the known mentions linked.
    let rendered = markdown::render(&text, &known);
    assert!((BODY_BYTES..BODY_BYTES + 1024).contains(&text.len()), "{} bytes", text.len());
    for element in ["<h2>", "<h3>", "<em>", "<strong>", "<del>", "<ol>", "<ul>", "<pre>", "<table>", "<blockquote>"] {
        assert!(rendered.html.contains(element), "no {element} in {}", rendered.html);
    }
    assert_eq!(rendered.mentions, ["ada", "linus", "grace-h"]);
    assert_eq!(markdown::unsafe_markup(&rendered.html), None);

    let mut criterion = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .configure_from_args();
    let mut group = criterion.benchmark_group(format!("markdown {} bytes", text.len()));
    group.bench_function("parse", |b| b.iter(|| parse(black_box(&text))));
    // Where the render's time goes: the draft is the parse and the HTML before sanitising.
    group.bench_function("draft", |b| b.iter(|| markdown::Draft::new(black_box(&text))));
    group.bench_function("render", |b| b.iter(|| markdown::render(black_box(&text), &known)));
    group.bench_function("write path", |b| b.iter(|| write_path(black_box(&text), &known)));
    // The floor under any ammonia sanitising: html5ever parsing the rendered HTML into a
    // tree and serialising what is left, with no tag allowed (so no rule to apply).
    let unsanitised = markdown::Draft::new(&text).html().to_owned();
    let bare_ammonia = ammonia::Builder::empty();
    group.bench_function("ammonia, no rules", |b| b.iter(|| bare_ammonia.clean(black_box(&unsanitised)).to_string()));
    group.finish();
    criterion.final_summary();

    if !full {
        println!("render/parse ratio: not timed (smoke run: pass --bench for figures)");
        return;
    }
    let (rounds, calls) = (31, 100);
    let (mut parses, mut renders, mut writes) = (Vec::new(), Vec::new(), Vec::new());
    let (mut render_ratios, mut write_ratios) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        let parse = time_per_call(calls, || {
            black_box(parse(black_box(&text)));
        });
        let render = time_per_call(calls, || {
            black_box(markdown::render(black_box(&text), &known));
        });
        let write = time_per_call(calls, || {
            black_box(write_path(black_box(&text), &known));
        });
        render_ratios.push(render / parse);
        write_ratios.push(write / parse);
        parses.push(parse * 1e6);
        renders.push(render * 1e6);
        writes.push(write * 1e6);
    }
    let parse = median(parses);
    println!(
        "render/parse ratio: {:.1}x (render {:.1} µs, parse {parse:.1} µs)",
        median(render_ratios),
        median(renders)
    );
    println!(
        "write path/parse ratio: {:.1}x (draft, finish and scroll regions {:.1} µs)",
        median(write_ratios),
        median(writes)
    );
}
