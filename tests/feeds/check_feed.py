"""Parse a Kettle Atom feed (stdin) with Python's `feedparser` package.

Prints one JSON object: `bozo` (1 when feedparser found the feed ill-formed, with
`bozo_exception`), the feed's `id` and `title`, and per entry its `id`, `title`, `link`,
category terms (`tags`) and HTML `content`. Run by tests/api/feeds.rs; exits non-zero
only when feedparser itself cannot run.
"""

import json
import sys

import feedparser


def main():
    raw = sys.stdin.buffer.read()
    # Resolving relative URLs would hide the ones Kettle should have made absolute.
    feedparser.RESOLVE_RELATIVE_URIS = 0
    parsed = feedparser.parse(raw, resolve_relative_uris=False, sanitize_html=False)
    out = {
        "bozo": int(bool(parsed.bozo)),
        "bozo_exception": str(parsed.get("bozo_exception", "")),
        "version": parsed.get("version", ""),
        "id": parsed.feed.get("id", ""),
        "title": parsed.feed.get("title", ""),
        "entries": [
            {
                "id": entry.get("id", ""),
                "title": entry.get("title", ""),
                "link": entry.get("link", ""),
                "tags": [tag.get("term", "") for tag in entry.get("tags", [])],
                "content": "".join(c.get("value", "") for c in entry.get("content", [])),
            }
            for entry in parsed.entries
        ],
    }
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
