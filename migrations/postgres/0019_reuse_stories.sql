-- Reuse stories (backend/artefacts/reuse.rs): an organisation's one record that it
-- reused an artefact holds a story from each member who tells one, so that a colleague
-- recording it again adds theirs instead of replacing the first. A record made before
-- this migration has one story: its note, told by whoever recorded it.
CREATE TABLE artefact_reuse_stories (
    artefact_id BIGINT NOT NULL,
    organisation_id BIGINT NOT NULL,
    member_id BIGINT NOT NULL REFERENCES members (id),
    note TEXT NOT NULL,
    case_study_id BIGINT REFERENCES case_studies (id) ON DELETE SET NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (artefact_id, organisation_id, member_id),
    FOREIGN KEY (artefact_id, organisation_id) REFERENCES artefact_reuses (artefact_id, organisation_id) ON DELETE CASCADE
);
-- Serves a member's stories (their data export).
CREATE INDEX artefact_reuse_stories_member ON artefact_reuse_stories (member_id);
INSERT INTO artefact_reuse_stories (artefact_id, organisation_id, member_id, note, case_study_id, created_at, updated_at)
SELECT artefact_id, organisation_id, recorded_by, note, case_study_id, created_at, updated_at FROM artefact_reuses;
