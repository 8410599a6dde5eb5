//! How long `kettle::markdown::render` (parse, render and sanitise) takes on hostile
//! Markdown of the largest size any field accepts: deep quotes and lists, runaway
//! emphasis and brackets, wide tables, and raw HTML that misnests, never closes or opens
//! a table in front of everything after it. It prints figures; it asserts nothing about
//! time, because the machine decides that.
//!
//! `cargo bench --bench markdown` runs every shape several times and prints best, median
//! and worst. Run any other way (`cargo test --all-targets` runs bench targets without
//! `--bench`) it renders each shape once, as a smoke test that nothing panics.

use std::{collections::HashSet, time::Instant};

use kettle::{case_studies::BODY_MAX_BYTES, markdown};

/// `unit` repeated to `size` bytes (fewer if a character would be cut).
fn repeat(unit: &str, size: usize) -> String {
    let mut s = unit.repeat(size / unit.len() + 1);
    let mut end = size;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s.truncate(end);
    s
}

/// Lines from `line(i)` for i = 0, 1, 2, ... up to `size` bytes.
fn lines(size: usize, line: impl Fn(usize) -> String) -> String {
    let mut s = String::with_capacity(size + 64);
    let mut i = 0;
    while s.len() < size {
        s.push_str(&line(i));
        i += 1;
    }
    s.truncate(size);
    s
}

/// `head`, then `filler` repeated, to `size` bytes.
fn then(head: String, filler: &str, size: usize) -> String {
    let mut s = head;
    s.push_str(&repeat(filler, size.saturating_sub(s.len())));
    s.truncate(size);
    s
}

fn shapes(size: usize) -> Vec<(&'static str, String)> {
    let half = size / 2;
    vec![
        // Markdown containers, nested as deep as the bytes allow.
        ("\"> - \" repeated", repeat("> - ", size)),
        ("\">\" repeated", repeat(">", size)),
        ("\"> \" repeated", repeat("> ", size)),
        ("\"1. \" repeated", repeat("1. ", size)),
        ("\"+ \" repeated", repeat("+ ", size)),
        ("\"* \" repeated", repeat("* ", size)),
        ("\"- \" repeated", repeat("- ", size)),
        ("\"> 1. > * > - \" repeated", repeat("> 1. > * > - ", size)),
        ("\"- a\" indented 2 more a line", lines(size, |i| format!("{}- a\n", " ".repeat(2 * i)))),
        ("\"1. a\" indented 3 more a line", lines(size, |i| format!("{}1. a\n", " ".repeat(3 * i)))),
        ("\"> - \" one more a line", lines(size, |i| format!("{}x\n", "> - ".repeat(i + 1)))),
        ("\">\" one more a line", lines(size, |i| format!("{} a\n", ">".repeat(i + 1)))),
        // Inline runs.
        ("\"*\" × n, a, \"*\" × n", format!("{}a{}", "*".repeat(half), "*".repeat(size - half - 1))),
        ("\"*a **a \" repeated", repeat("*a **a ", size)),
        ("\"_a \" repeated", repeat("_a ", size)),
        ("\"~~a \" repeated", repeat("~~a ", size)),
        ("\"[\" repeated", repeat("[", size)),
        ("\"[\" × n, a, \"](u)\" × n", format!("{}a{}", "[".repeat((size - 1) / 5), "](u)".repeat((size - 1) / 5))),
        ("\"[a](\" repeated", repeat("[a](", size)),
        ("\"`\" repeated", repeat("`", size)),
        ("backtick runs 1, 2, 3, ...", lines(size, |i| format!("{}a", "`".repeat(i + 1)))),
        ("\"a`\" repeated", repeat("a`", size)),
        ("\"&\" repeated", repeat("&", size)),
        ("\"£\" repeated", repeat("£", size)),
        ("code span of \"&\"", format!("`{}`", repeat("&", size - 2))),
        // Tables.
        ("table, one row, many columns", format!("{}|\n{}|\n", "|a".repeat(size / 6), "|-".repeat(size / 6))),
        (
            "table, many columns, many rows",
            then(format!("{}|\n{}|\n", "|a".repeat(size / 8), "|-".repeat(size / 8)), "|\n", size),
        ),
        ("\"|a|\\n|-|\\n\\n\" repeated", repeat("|a|\n|-|\n\n", size)),
        // Raw HTML.
        ("raw <div> repeated", repeat("<div>", size)),
        ("raw <ul><li> repeated", repeat("<ul><li>", size)),
        ("raw <blockquote> repeated", repeat("<blockquote>", size)),
        ("raw a<em> repeated", format!("a{}", repeat("<em>", size - 1))),
        ("raw <b><i title=n></b> repeated", lines(size, |i| format!("<b><i title={i}></b>"))),
        ("raw <b title=n> × 4,000, paragraphs", then(lines(half, |i| format!("<b title={i}>")), "\n\nx", size)),
        ("raw <td>a repeated in one <table>", format!("<table>{}", repeat("<td>a", size - 7))),
        ("raw <table>, then paragraphs", then("<table>".into(), "\n\nx", size)),
        ("raw <table><tr>, then quotes", then("<table><tr>".into(), "\n\n> x", size)),
        ("raw <ul><li> × 256, then paragraphs", then("<ul><li>".repeat(256), "\n\nx", size)),
        (
            "raw > × 16 <div title=\", then lists",
            repeat("> > > > > > > > > > > > > > > > <div title=\"\n\n2. x\n\n", size),
        ),
        ("raw > × 16 <!--, then comment ends", repeat("> > > > > > > > > > > > > > > > <!--\n\n<p>-->\n\n", size)),
        ("raw > × 8 <table>", repeat("> > > > > > > > <table>\n\n", size)),
        // Ordinary text at the limit, for scale.
        ("paragraphs \"x\\n\\n\"", repeat("x\n\n", size)),
        ("quotes \"> x\\n\\n\"", repeat("> x\n\n", size)),
        ("mentions \"@ada \"", repeat("@ada ", size)),
        ("prose", repeat("Some *plain* prose with a [link](https://example.org) and `code`.\n\n", size)),
    ]
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let runs = if full { 7 } else { 1 };
    let size = BODY_MAX_BYTES;
    let known: HashSet<String> = ["ada".to_string()].into_iter().collect();
    let shapes = shapes(size);
    println!(
        "markdown::render at {size} bytes, {runs} run{} per shape{}",
        if runs == 1 { "" } else { "s" },
        if full { "" } else { " (smoke run: pass --bench for figures)" }
    );
    println!(
        "{:<40} {:>7} {:>9} {:>9} {:>9} {:>10}",
        "shape", "bytes", "best ms", "median ms", "worst ms", "html bytes"
    );
    let mut worst: (f64, &str) = (0.0, "");
    for (name, source) in &shapes {
        assert!(source.len() <= size, "{name} is {} bytes", source.len());
        let mut times = Vec::with_capacity(runs);
        let mut html_len = 0;
        for _ in 0..runs {
            let started = Instant::now();
            let rendered = markdown::render(source, &known);
            times.push(started.elapsed().as_secs_f64() * 1000.0);
            html_len = rendered.html.len();
        }
        times.sort_by(f64::total_cmp);
        let (best, median, slowest) = (times[0], times[times.len() / 2], times[times.len() - 1]);
        if slowest > worst.0 {
            worst = (slowest, name);
        }
        println!("{name:<40} {:>7} {best:>9.1} {median:>9.1} {slowest:>9.1} {html_len:>10}", source.len());
    }
    println!("worst case: {:.1} ms ({})", worst.0, worst.1);
}
