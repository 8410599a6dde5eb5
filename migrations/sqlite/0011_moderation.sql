-- Moderation and data rights: flags and the review queue, hidden content, suspensions,
-- the append-only audit log, site settings, personal data exports, and erased members.

-- Hidden by a moderator (or by enough weighted flags, until reviewed): the author sees the
-- item and why; everyone else sees a placeholder. NULL: shown.
ALTER TABLE case_studies ADD COLUMN hidden_at BIGINT;
ALTER TABLE case_studies ADD COLUMN hidden_reason TEXT;
ALTER TABLE artefacts ADD COLUMN hidden_at BIGINT;
ALTER TABLE artefacts ADD COLUMN hidden_reason TEXT;
ALTER TABLE comments ADD COLUMN hidden_at BIGINT;
ALTER TABLE comments ADD COLUMN hidden_reason TEXT;
ALTER TABLE meetup_events ADD COLUMN hidden_at BIGINT;
ALTER TABLE meetup_events ADD COLUMN hidden_reason TEXT;

-- The live suspension sits on the member row, read on every request with the member:
-- suspended_at set and suspended_until NULL is indefinite; past suspended_until it has
-- ended by itself. The history is in `suspensions`.
ALTER TABLE members ADD COLUMN suspended_until BIGINT;
ALTER TABLE members ADD COLUMN suspension_reason TEXT;
-- An erased member's row stays as a tombstone ("a former member") so that content others
-- rely on keeps its author; everything personal on it is cleared.
ALTER TABLE members ADD COLUMN erased_at BIGINT;

-- One per item while it has open flags: the moderators' queue. Decided once.
CREATE TABLE reviews (
    id INTEGER PRIMARY KEY,
    target_type TEXT NOT NULL CHECK (target_type IN ('case_study', 'artefact', 'comment', 'meetup_event', 'member')),
    target_id BIGINT NOT NULL,
    -- The sum of its flags' weights (in hundredths) and how many there are.
    weight BIGINT NOT NULL DEFAULT 0,
    flag_count BIGINT NOT NULL DEFAULT 0,
    status TEXT NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'decided')),
    -- When enough weighted flags hid the item before anyone reviewed it.
    auto_hidden_at BIGINT,
    decision TEXT CHECK (decision IN ('hide', 'restore', 'edit', 'dismiss', 'suspend')),
    decision_reason TEXT,
    decided_by BIGINT REFERENCES members (id) ON DELETE SET NULL,
    decided_at BIGINT,
    created_at BIGINT NOT NULL
);
-- At most one open review per item: a new flag joins it.
CREATE UNIQUE INDEX reviews_open_target ON reviews (target_type, target_id) WHERE status = 'open';
-- Serves the queue, heaviest first.
CREATE INDEX reviews_queue ON reviews (weight DESC, id) WHERE status = 'open';
-- Serves an item's past reviews.
CREATE INDEX reviews_target ON reviews (target_type, target_id, id);

CREATE TABLE flags (
    id INTEGER PRIMARY KEY,
    review_id BIGINT NOT NULL REFERENCES reviews (id) ON DELETE CASCADE,
    target_type TEXT NOT NULL CHECK (target_type IN ('case_study', 'artefact', 'comment', 'meetup_event', 'member')),
    target_id BIGINT NOT NULL,
    flagger_id BIGINT NOT NULL REFERENCES members (id) ON DELETE CASCADE,
    reason TEXT NOT NULL CHECK (reason IN ('spam', 'off_topic', 'inappropriate', 'personal_data', 'other')),
    note TEXT NOT NULL DEFAULT '',
    -- The flagger's weight when they flagged (hundredths): a good history weighs more.
    weight BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    -- A member flags a thing once.
    CONSTRAINT flags_once UNIQUE (flagger_id, target_type, target_id)
);
-- Serves a review's flags.
CREATE INDEX flags_review ON flags (review_id, id);

-- Every suspension, lifted or not; the live one is mirrored on the member row.
CREATE TABLE suspensions (
    id INTEGER PRIMARY KEY,
    member_id BIGINT NOT NULL REFERENCES members (id) ON DELETE CASCADE,
    reason TEXT NOT NULL,
    starts_at BIGINT NOT NULL,
    -- NULL: until lifted.
    ends_at BIGINT,
    created_by BIGINT REFERENCES members (id) ON DELETE SET NULL,
    lifted_at BIGINT,
    lifted_by BIGINT REFERENCES members (id) ON DELETE SET NULL,
    lift_reason TEXT
);
CREATE INDEX suspensions_member ON suspensions (member_id, id);

-- What moderators and admins did. Append-only: no code path updates or deletes it, and
-- the database refuses to (the triggers below). No foreign keys, so erasing a member
-- cascades nothing here; rows name members by id only, never by name or address.
CREATE TABLE audit_log (
    id INTEGER PRIMARY KEY,
    actor_id BIGINT,
    action TEXT NOT NULL,
    target_type TEXT NOT NULL,
    target_id BIGINT NOT NULL,
    reason TEXT NOT NULL DEFAULT '',
    -- JSON, for edits and changes of a value: what it was and what it became.
    before_value TEXT,
    after_value TEXT,
    created_at BIGINT NOT NULL
);
-- Serve reading it newest first, whole or filtered by actor, target or action.
CREATE INDEX audit_log_actor ON audit_log (actor_id, id);
CREATE INDEX audit_log_target ON audit_log (target_type, target_id, id);
CREATE INDEX audit_log_action ON audit_log (action, id);

-- Settings admins change from the site ('auto_hide_weight', …); no row: the default.
CREATE TABLE site_settings (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);

-- Personal data exports: produced in the background, downloaded through a link that
-- expires. Only the SHA-256 of the link's token is kept.
CREATE TABLE data_exports (
    id INTEGER PRIMARY KEY,
    member_id BIGINT NOT NULL REFERENCES members (id) ON DELETE CASCADE,
    status TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'ready', 'failed')),
    token_hash TEXT NOT NULL UNIQUE,
    -- The export itself (JSON), once ready.
    content TEXT,
    claimed_until BIGINT,
    created_at BIGINT NOT NULL,
    ready_at BIGINT,
    expires_at BIGINT NOT NULL
);
CREATE INDEX data_exports_member ON data_exports (member_id, id);
CREATE INDEX data_exports_pending ON data_exports (created_at) WHERE status = 'pending';
CREATE INDEX data_exports_expires ON data_exports (expires_at);

CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'the audit log is append-only');
END;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'the audit log is append-only');
END;

-- Data rights (privacy): serves pruning account tokens used a while ago (retention).
CREATE INDEX account_tokens_used ON account_tokens (used_at) WHERE used_at IS NOT NULL;
