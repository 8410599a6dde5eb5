-- The knowledge core: member handles, organisations, topics, case studies, and the
-- outbox of domain events.

ALTER TABLE members ADD COLUMN handle TEXT;
UPDATE members SET handle = 'member' || id;
CREATE UNIQUE INDEX members_handle_key ON members (handle);

CREATE TABLE organisations (
    id INTEGER PRIMARY KEY,
    slug TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('council', 'central_government', 'nhs', 'charity', 'supplier', 'other')),
    website TEXT,
    created_by BIGINT NOT NULL REFERENCES members (id),
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
-- Serves the organisation list, by name.
CREATE INDEX organisations_name ON organisations (name, id);

CREATE TABLE organisation_members (
    organisation_id BIGINT NOT NULL REFERENCES organisations (id) ON DELETE CASCADE,
    member_id BIGINT NOT NULL REFERENCES members (id) ON DELETE CASCADE,
    role TEXT NOT NULL CHECK (role IN ('admin', 'member')),
    status TEXT NOT NULL CHECK (status IN ('requested', 'approved', 'declined')),
    requested_at BIGINT NOT NULL,
    decided_at BIGINT,
    decided_by BIGINT REFERENCES members (id),
    PRIMARY KEY (organisation_id, member_id)
);
-- Serves "a member's organisations".
CREATE INDEX organisation_members_member ON organisation_members (member_id, organisation_id);

CREATE TABLE topics (
    id INTEGER PRIMARY KEY,
    slug TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    -- Set when this topic was merged into another: its items moved there.
    merged_into BIGINT REFERENCES topics (id),
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX topics_name ON topics (name, id) WHERE merged_into IS NULL;

CREATE TABLE case_studies (
    id INTEGER PRIMARY KEY,
    title TEXT NOT NULL,
    summary TEXT NOT NULL,
    body_source TEXT NOT NULL,
    body_html TEXT NOT NULL,
    phase TEXT NOT NULL CHECK (phase IN ('discovery', 'alpha', 'beta', 'live', 'retired')),
    organisation_id BIGINT REFERENCES organisations (id),
    author_id BIGINT NOT NULL REFERENCES members (id),
    status TEXT NOT NULL CHECK (status IN ('draft', 'published', 'archived')),
    version BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    published_at BIGINT
);
-- Serve the published lists, newest first, keyset on (published_at, id).
CREATE INDEX case_studies_latest ON case_studies (published_at, id) WHERE status = 'published';
CREATE INDEX case_studies_by_organisation ON case_studies (organisation_id, published_at, id) WHERE status = 'published';
CREATE INDEX case_studies_by_phase ON case_studies (phase, published_at, id) WHERE status = 'published';

-- Authors and co-authors: who may edit, and who sees the draft.
CREATE TABLE case_study_authors (
    case_study_id BIGINT NOT NULL REFERENCES case_studies (id) ON DELETE CASCADE,
    member_id BIGINT NOT NULL REFERENCES members (id) ON DELETE CASCADE,
    position BIGINT NOT NULL,
    PRIMARY KEY (case_study_id, member_id)
);
CREATE INDEX case_study_authors_member ON case_study_authors (member_id, case_study_id);

CREATE TABLE case_study_topics (
    case_study_id BIGINT NOT NULL REFERENCES case_studies (id) ON DELETE CASCADE,
    topic_id BIGINT NOT NULL REFERENCES topics (id),
    PRIMARY KEY (case_study_id, topic_id)
);
CREATE INDEX case_study_topics_topic ON case_study_topics (topic_id, case_study_id);

-- The text as it was before each edit.
CREATE TABLE case_study_revisions (
    id INTEGER PRIMARY KEY,
    case_study_id BIGINT NOT NULL REFERENCES case_studies (id) ON DELETE CASCADE,
    version BIGINT NOT NULL,
    title TEXT NOT NULL,
    summary TEXT NOT NULL,
    body_source TEXT NOT NULL,
    phase TEXT NOT NULL,
    edited_by BIGINT NOT NULL REFERENCES members (id),
    edited_at BIGINT NOT NULL,
    UNIQUE (case_study_id, version)
);

-- Events committed with the change that caused them; the notifications work consumes them.
CREATE TABLE outbox_events (
    id INTEGER PRIMARY KEY,
    kind TEXT NOT NULL,
    subject_type TEXT NOT NULL,
    subject_id BIGINT NOT NULL,
    actor_id BIGINT REFERENCES members (id) ON DELETE SET NULL,
    payload TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    dispatched_at BIGINT
);
CREATE INDEX outbox_events_pending ON outbox_events (id) WHERE dispatched_at IS NULL;
