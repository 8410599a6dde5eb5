"""Parse a Kettle iCalendar feed (stdin) with Python's `icalendar` package.

Prints one tab-separated line per VEVENT:
UID, DTSTART in UTC via the feed's own VTIMEZONE, DTSTART in UTC via the
system tz database (zoneinfo), SUMMARY as UTF-8 hex.
Run by tests/feed.rs; exits non-zero on any structural problem.
"""

import sys
from datetime import timezone

import icalendar


def utc(dt):
    return dt.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def main():
    raw = sys.stdin.buffer.read()
    cal = icalendar.Calendar.from_ical(raw)
    # Build tzinfo objects from the feed's VTIMEZONEs alone, ignoring any
    # zone the system already knows by that name.
    own = {
        str(vtz["TZID"]): vtz.to_tz(lookup_tzid=False)
        for vtz in cal.walk("VTIMEZONE")
    }
    events = cal.walk("VEVENT")
    if not events:
        sys.exit("no VEVENT parsed")
    for event in events:
        prop = event["DTSTART"]
        tzid = prop.params.get("TZID")
        if tzid is None or tzid not in own:
            sys.exit(f"{event['UID']}: DTSTART TZID {tzid!r} has no VTIMEZONE")
        start = prop.dt  # aware, resolved by icalendar via zoneinfo
        local = start.replace(tzinfo=None)
        tz = own[tzid]
        if hasattr(tz, "localize"):  # pytz-style provider
            via_own = tz.localize(local)
        else:
            via_own = local.replace(tzinfo=tz)
        summary = str(event["SUMMARY"]).encode("utf-8").hex()
        print(f"{event['UID']}\t{utc(via_own)}\t{utc(start)}\t{summary}")


if __name__ == "__main__":
    main()
