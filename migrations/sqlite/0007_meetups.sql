-- Meetups: groups, their events (one-off, or occurrences of a recurring series), RSVPs
-- with a waitlist, agendas, and the secret tokens of members' calendar feeds.

CREATE TABLE meetup_groups (
    id INTEGER PRIMARY KEY,
    slug TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    description_source TEXT NOT NULL,
    description_html TEXT NOT NULL,
    -- A region such as "North West", or "online".
    region TEXT NOT NULL,
    created_by BIGINT NOT NULL REFERENCES members (id),
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX meetup_groups_name ON meetup_groups (name, id);

CREATE TABLE meetup_group_members (
    group_id BIGINT NOT NULL REFERENCES meetup_groups (id) ON DELETE CASCADE,
    member_id BIGINT NOT NULL REFERENCES members (id) ON DELETE CASCADE,
    role TEXT NOT NULL CHECK (role IN ('organiser', 'member')),
    joined_at BIGINT NOT NULL,
    PRIMARY KEY (group_id, member_id)
);
CREATE INDEX meetup_group_members_member ON meetup_group_members (member_id, group_id);

CREATE TABLE meetup_group_topics (
    group_id BIGINT NOT NULL REFERENCES meetup_groups (id) ON DELETE CASCADE,
    topic_id BIGINT NOT NULL REFERENCES topics (id),
    PRIMARY KEY (group_id, topic_id)
);
CREATE INDEX meetup_group_topics_topic ON meetup_group_topics (topic_id, group_id);

-- A recurring series: its rule and the fields each occurrence starts with (JSON), how
-- far ahead its occurrences exist, and, once cancelled from some occurrence on, the
-- instant from which no more are made.
CREATE TABLE meetup_series (
    id INTEGER PRIMARY KEY,
    group_id BIGINT NOT NULL REFERENCES meetup_groups (id) ON DELETE CASCADE,
    rule TEXT NOT NULL,
    template TEXT NOT NULL,
    generated_until BIGINT NOT NULL,
    stopped_from BIGINT,
    created_by BIGINT NOT NULL REFERENCES members (id),
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
-- Serves the series whose window needs extending.
CREATE INDEX meetup_series_window ON meetup_series (generated_until);

-- An event: one-off, or one occurrence of a series (a real row that RSVPs, the agenda
-- and changes attach to).
CREATE TABLE meetup_events (
    id INTEGER PRIMARY KEY,
    group_id BIGINT NOT NULL REFERENCES meetup_groups (id) ON DELETE CASCADE,
    series_id BIGINT REFERENCES meetup_series (id) ON DELETE SET NULL,
    series_index BIGINT,
    title TEXT NOT NULL,
    description_source TEXT NOT NULL,
    description_html TEXT NOT NULL,
    -- The organiser's wall-clock times (ISO 8601, no offset) in this IANA zone, and the
    -- same instants in UTC milliseconds.
    time_zone TEXT NOT NULL,
    local_start TEXT NOT NULL,
    local_end TEXT NOT NULL,
    starts_at BIGINT NOT NULL,
    ends_at BIGINT NOT NULL,
    venue_name TEXT NOT NULL DEFAULT '',
    venue_address TEXT NOT NULL DEFAULT '',
    venue_directions TEXT NOT NULL DEFAULT '',
    online_url TEXT,
    capacity BIGINT,
    going_count BIGINT NOT NULL DEFAULT 0,
    status TEXT NOT NULL CHECK (status IN ('scheduled', 'cancelled')),
    -- iCalendar SEQUENCE: goes up when the time, date or place changes.
    sequence BIGINT NOT NULL DEFAULT 0,
    reminder_sent_at BIGINT,
    created_by BIGINT NOT NULL REFERENCES members (id),
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    UNIQUE (series_id, series_index)
);
-- Serves a group's events in time order, and everyone's upcoming events.
CREATE INDEX meetup_events_group ON meetup_events (group_id, starts_at, id);
CREATE INDEX meetup_events_upcoming ON meetup_events (starts_at, id);
-- Serves the reminders that are due.
CREATE INDEX meetup_events_reminders ON meetup_events (starts_at) WHERE reminder_sent_at IS NULL AND status = 'scheduled';

CREATE TABLE meetup_event_topics (
    event_id BIGINT NOT NULL REFERENCES meetup_events (id) ON DELETE CASCADE,
    topic_id BIGINT NOT NULL REFERENCES topics (id),
    PRIMARY KEY (event_id, topic_id)
);
CREATE INDEX meetup_event_topics_topic ON meetup_event_topics (topic_id, event_id);

-- One RSVP per member and event, enforced by the key.
CREATE TABLE meetup_rsvps (
    event_id BIGINT NOT NULL REFERENCES meetup_events (id) ON DELETE CASCADE,
    member_id BIGINT NOT NULL REFERENCES members (id) ON DELETE CASCADE,
    status TEXT NOT NULL CHECK (status IN ('going', 'waitlisted', 'not_going')),
    -- When the member joined the waitlist: its order (first come, first promoted).
    waitlisted_at BIGINT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (event_id, member_id)
);
-- Serves the attendee list and the waitlist in order.
CREATE INDEX meetup_rsvps_event ON meetup_rsvps (event_id, status, waitlisted_at, member_id);
-- Serves "my meetups".
CREATE INDEX meetup_rsvps_member ON meetup_rsvps (member_id, status, event_id);

CREATE TABLE meetup_agenda_items (
    id INTEGER PRIMARY KEY,
    event_id BIGINT NOT NULL REFERENCES meetup_events (id) ON DELETE CASCADE,
    position BIGINT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('talk', 'discussion', 'break')),
    title TEXT NOT NULL,
    speaker_member_id BIGINT REFERENCES members (id) ON DELETE SET NULL,
    speaker_name TEXT NOT NULL DEFAULT '',
    duration_minutes BIGINT NOT NULL,
    case_study_id BIGINT REFERENCES case_studies (id) ON DELETE SET NULL
);
CREATE INDEX meetup_agenda_items_event ON meetup_agenda_items (event_id, position);
-- Serves "talked about at …" on a case study.
CREATE INDEX meetup_agenda_items_case_study ON meetup_agenda_items (case_study_id);

-- The secret behind a member's personal calendar feed URL (hashed; resettable).
ALTER TABLE members ADD COLUMN calendar_token_hash TEXT;
CREATE UNIQUE INDEX members_calendar_token ON members (calendar_token_hash);
