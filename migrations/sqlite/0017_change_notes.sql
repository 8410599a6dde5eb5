-- Revision history (backend/case_studies/history.rs): the note an author writes when
-- saving a version ("Added the costs for 2026"), kept with the version it describes. The
-- current version's is on the case study; an edit copies it, with the rest of the old
-- text, into case_study_revisions. Versions saved before this migration have none.
ALTER TABLE case_studies ADD COLUMN change_note TEXT NOT NULL DEFAULT '';
ALTER TABLE case_study_revisions ADD COLUMN change_note TEXT NOT NULL DEFAULT '';
