"""Parse a Kettle iCalendar feed (stdin) with Python's `icalendar` package and print
what a subscriber's calendar would see, as JSON: the calendar's own properties, the
names of its components, and per VEVENT its UID, URL, ORGANIZER (value and CN),
DESCRIPTION, and DTSTAMP as sent and as a UTC instant.

Unlike check_feed.py this accepts a calendar without events. Run by
tests/api/calendars.rs; exits non-zero on any structural problem.
"""

import json
import sys
from datetime import timezone

import icalendar


def main():
    raw = sys.stdin.buffer.read()
    cal = icalendar.Calendar.from_ical(raw)
    if cal.name != "VCALENDAR":
        sys.exit(f"not a VCALENDAR: {cal.name}")
    events = []
    for event in cal.walk("VEVENT"):
        organizer = event.get("ORGANIZER")
        stamp = event.decoded("DTSTAMP")
        if stamp.tzinfo is None:
            sys.exit(f"{event['UID']}: DTSTAMP is not UTC")
        events.append(
            {
                "uid": str(event["UID"]),
                "url": str(event.get("URL", "")),
                "organizer": str(organizer) if organizer is not None else None,
                "organizer_cn": str(organizer.params.get("CN", "")) if organizer is not None else None,
                "description": str(event.get("DESCRIPTION", "")),
                "dtstamp_raw": event["DTSTAMP"].to_ical().decode(),
                "dtstamp": stamp.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
            }
        )
    print(
        json.dumps(
            {
                "method": str(cal.get("METHOD", "")),
                "components": [c.name for c in cal.subcomponents],
                "events": events,
            }
        )
    )


if __name__ == "__main__":
    main()
