-- Follows, notifications and the dispatcher's lease.
--
-- A follow is a member's interest in one thing (a topic, an organisation, a meetup group,
-- a member, or one conversation: a case study or an artefact) at a level: 'watching'
-- (tell me at once), 'digest' (put it in my digest) or 'muted' (never, even where a
-- broader follow would).
CREATE TABLE follows (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    member_id BIGINT NOT NULL REFERENCES members (id) ON DELETE CASCADE,
    target_type TEXT NOT NULL
        CHECK (target_type IN ('Topic', 'Organisation', 'MeetupGroup', 'Member', 'CaseStudy', 'Artefact')),
    target_id BIGINT NOT NULL,
    level TEXT NOT NULL CHECK (level IN ('watching', 'digest', 'muted')),
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    UNIQUE (member_id, target_type, target_id)
);
-- Serves a member's follows, newest first, keyset on id.
CREATE INDEX follows_member ON follows (member_id, id);
-- Serves "who follows this", for the dispatcher.
CREATE INDEX follows_target ON follows (target_type, target_id, member_id);

-- Kinds of notification a member switched off.
CREATE TABLE notification_kinds_off (
    member_id BIGINT NOT NULL REFERENCES members (id) ON DELETE CASCADE,
    kind TEXT NOT NULL,
    PRIMARY KEY (member_id, kind)
);

-- Set when the member stopped Kettle watching what they write and comment on.
ALTER TABLE members ADD COLUMN auto_watch_off_at BIGINT;
-- When the member last looked at what is new in what they follow.
ALTER TABLE members ADD COLUMN followed_seen_at BIGINT;

-- One row per outbox event and recipient. 'inbox' rows are shown at once (the header
-- count, /notifications, the live subscription); 'digest' rows wait for the member's
-- digest. Each row is self-contained (summary, path) so that live delivery needs no
-- further query; the subject's title is kept to name a group ("3 new comments on …").
CREATE TABLE notifications (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    member_id BIGINT NOT NULL REFERENCES members (id) ON DELETE CASCADE,
    -- Not a foreign key: dispatched events are pruned before the notifications they made.
    event_id BIGINT NOT NULL,
    kind TEXT NOT NULL,
    channel TEXT NOT NULL CHECK (channel IN ('inbox', 'digest')),
    subject_type TEXT NOT NULL,
    subject_id BIGINT NOT NULL,
    subject_title TEXT NOT NULL,
    actor_id BIGINT REFERENCES members (id) ON DELETE SET NULL,
    -- Notifications about one thing share a key ('comments:CaseStudy:12').
    group_key TEXT NOT NULL,
    -- The id of the first notification of this one's group; 0 until the dispatcher sets
    -- it, in the same transaction. An inbox notification joins the group of an unread one
    -- with the same key, so a burst of comments on one thread shows as one entry.
    group_id BIGINT NOT NULL DEFAULT 0,
    summary TEXT NOT NULL,
    path TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    read_at BIGINT,
    UNIQUE (event_id, member_id)
);
-- Serves a member's inbox and the live replay, newest first or after a cursor.
CREATE INDEX notifications_member ON notifications (member_id, channel, id);
-- Serves a group's newest entry and its size.
CREATE INDEX notifications_group ON notifications (member_id, group_id, id);
-- Serves finding an unread group to join, and the unread count.
CREATE INDEX notifications_unread ON notifications (member_id, group_key, group_id)
    WHERE read_at IS NULL AND channel = 'inbox';
-- Serves the dispatcher setting groups, and pruning.
CREATE INDEX notifications_ungrouped ON notifications (id) WHERE group_id = 0;
CREATE INDEX notifications_created ON notifications (created_at, id);
CREATE INDEX notifications_read ON notifications (read_at) WHERE read_at IS NOT NULL;

-- Work that one instance does at a time (dispatching the outbox). The holder renews its
-- lease; when it stops renewing, another instance takes it over once it expires. The
-- fence rises with every change of holder, so a holder that lost its lease cannot
-- commit work.
CREATE TABLE leases (
    name TEXT PRIMARY KEY,
    holder TEXT NOT NULL,
    fence BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);

-- Serves pruning dispatched events.
CREATE INDEX outbox_events_dispatched ON outbox_events (dispatched_at) WHERE dispatched_at IS NOT NULL;
-- Serves finding the mentions a comment made, when its comment event is dispatched.
CREATE INDEX outbox_events_subject ON outbox_events (subject_type, subject_id, kind);
