-- Revision history for artefacts (backend/history.rs), as case studies have it: the
-- current version lives on artefacts with the note its editor wrote when saving it; each
-- edit copies the version it replaces, in full, into artefact_revisions, stamped with
-- who replaced it and when. Versions saved before this migration were not kept.
ALTER TABLE artefacts ADD COLUMN change_note TEXT NOT NULL DEFAULT '';

CREATE TABLE artefact_revisions (
    id INTEGER PRIMARY KEY,
    artefact_id BIGINT NOT NULL REFERENCES artefacts (id) ON DELETE CASCADE,
    version BIGINT NOT NULL,
    title TEXT NOT NULL,
    kind TEXT NOT NULL,
    description_source TEXT NOT NULL,
    url TEXT NOT NULL,
    licence TEXT NOT NULL,
    status TEXT NOT NULL,
    change_note TEXT NOT NULL,
    edited_by BIGINT NOT NULL REFERENCES members (id),
    edited_at BIGINT NOT NULL,
    -- One row per replaced version; also serves the history, newest first.
    UNIQUE (artefact_id, version)
);
-- Serves a member's data export (the revisions they saved).
CREATE INDEX artefact_revisions_by_editor ON artefact_revisions (edited_by);
