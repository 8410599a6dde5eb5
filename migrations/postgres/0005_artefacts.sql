-- Artefacts (what teams made and others can reuse), the organisations that reused them,
-- and comments on case studies and artefacts.

CREATE TABLE artefacts (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    title TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('code', 'design_pattern', 'template', 'research', 'dataset', 'procurement',
                                       'service_component', 'other')),
    description_source TEXT NOT NULL,
    description_html TEXT NOT NULL,
    url TEXT NOT NULL,
    -- An SPDX licence identifier, as the SPDX list spells it (OGL-UK-3.0 is one).
    licence TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('experimental', 'in_use', 'deprecated')),
    organisation_id BIGINT REFERENCES organisations (id),
    adapted_from_id BIGINT REFERENCES artefacts (id),
    created_by BIGINT NOT NULL REFERENCES members (id),
    -- How many organisations recorded reuse; kept with artefact_reuses in one
    -- transaction so "sort by reuse" is an index walk, not a count per row.
    reuse_count BIGINT NOT NULL DEFAULT 0,
    version BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
-- Serve the artefact lists: newest first (keyset on id), by kind, status or maintaining
-- organisation, and most reused first (keyset on reuse_count, id).
CREATE INDEX artefacts_by_kind ON artefacts (kind, id);
CREATE INDEX artefacts_by_status ON artefacts (status, id);
CREATE INDEX artefacts_by_organisation ON artefacts (organisation_id, id);
CREATE INDEX artefacts_by_reuse ON artefacts (reuse_count, id);
CREATE INDEX artefacts_adapted_from ON artefacts (adapted_from_id, id);

CREATE TABLE artefact_topics (
    artefact_id BIGINT NOT NULL REFERENCES artefacts (id) ON DELETE CASCADE,
    topic_id BIGINT NOT NULL REFERENCES topics (id),
    PRIMARY KEY (artefact_id, topic_id)
);
CREATE INDEX artefact_topics_topic ON artefact_topics (topic_id, artefact_id);

-- The case studies that produced or used an artefact.
CREATE TABLE artefact_case_studies (
    artefact_id BIGINT NOT NULL REFERENCES artefacts (id) ON DELETE CASCADE,
    case_study_id BIGINT NOT NULL REFERENCES case_studies (id) ON DELETE CASCADE,
    PRIMARY KEY (artefact_id, case_study_id)
);
CREATE INDEX artefact_case_studies_case_study ON artefact_case_studies (case_study_id, artefact_id);

-- "We reused this": one record per organisation and artefact, editable.
CREATE TABLE artefact_reuses (
    artefact_id BIGINT NOT NULL REFERENCES artefacts (id) ON DELETE CASCADE,
    organisation_id BIGINT NOT NULL REFERENCES organisations (id) ON DELETE CASCADE,
    note TEXT NOT NULL,
    case_study_id BIGINT REFERENCES case_studies (id) ON DELETE SET NULL,
    recorded_by BIGINT NOT NULL REFERENCES members (id),
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (artefact_id, organisation_id)
);
CREATE INDEX artefact_reuses_organisation ON artefact_reuses (organisation_id, artefact_id);

CREATE TABLE comments (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    subject_type TEXT NOT NULL CHECK (subject_type IN ('case_study', 'artefact')),
    subject_id BIGINT NOT NULL,
    -- Replies go one level deep: a reply's parent is always a top-level comment.
    parent_id BIGINT REFERENCES comments (id) ON DELETE CASCADE,
    author_id BIGINT NOT NULL REFERENCES members (id),
    body_source TEXT NOT NULL,
    body_html TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    edited_at BIGINT,
    -- A deleted comment that has replies stays as a placeholder with its text cleared.
    deleted_at BIGINT
);
-- Serves a thread's top-level comments in order, and counts per item.
CREATE INDEX comments_subject ON comments (subject_type, subject_id, parent_id, id);
-- Serves the replies to a page of comments.
CREATE INDEX comments_replies ON comments (parent_id, id);
