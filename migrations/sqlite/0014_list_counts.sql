-- Counts every list shows, kept on the row so that a list page reads them with its rows
-- instead of counting per page: useful marks, comments (not deleted, replies included)
-- and linked artefacts of a case study, comments of an artefact. Triggers keep them in
-- the transaction that changes what they count, whichever code path does it (posting,
-- deleting, moderation, erasure, cascades).

ALTER TABLE case_studies ADD COLUMN useful_count BIGINT NOT NULL DEFAULT 0;
ALTER TABLE case_studies ADD COLUMN comment_count BIGINT NOT NULL DEFAULT 0;
ALTER TABLE case_studies ADD COLUMN artefact_count BIGINT NOT NULL DEFAULT 0;
ALTER TABLE artefacts ADD COLUMN comment_count BIGINT NOT NULL DEFAULT 0;

UPDATE case_studies SET
    useful_count = (SELECT COUNT(*) FROM case_study_marks m WHERE m.case_study_id = case_studies.id AND m.kind = 'useful'),
    comment_count = (SELECT COUNT(*) FROM comments k
                     WHERE k.subject_type = 'case_study' AND k.subject_id = case_studies.id AND k.deleted_at IS NULL),
    artefact_count = (SELECT COUNT(*) FROM artefact_case_studies l WHERE l.case_study_id = case_studies.id);
UPDATE artefacts SET
    comment_count = (SELECT COUNT(*) FROM comments k
                     WHERE k.subject_type = 'artefact' AND k.subject_id = artefacts.id AND k.deleted_at IS NULL);

CREATE TRIGGER case_study_marks_count_insert AFTER INSERT ON case_study_marks WHEN NEW.kind = 'useful' BEGIN
    UPDATE case_studies SET useful_count = useful_count + 1 WHERE id = NEW.case_study_id;
END;
CREATE TRIGGER case_study_marks_count_delete AFTER DELETE ON case_study_marks WHEN OLD.kind = 'useful' BEGIN
    UPDATE case_studies SET useful_count = useful_count - 1 WHERE id = OLD.case_study_id;
END;

CREATE TRIGGER artefact_case_studies_count_insert AFTER INSERT ON artefact_case_studies BEGIN
    UPDATE case_studies SET artefact_count = artefact_count + 1 WHERE id = NEW.case_study_id;
END;
CREATE TRIGGER artefact_case_studies_count_delete AFTER DELETE ON artefact_case_studies BEGIN
    UPDATE case_studies SET artefact_count = artefact_count - 1 WHERE id = OLD.case_study_id;
END;

-- A comment counts while it exists and is not deleted: +1 when one that counts appears,
-- -1 when one that counted goes (deleted_at set, or the row removed).
CREATE TRIGGER comments_count_insert AFTER INSERT ON comments WHEN NEW.deleted_at IS NULL BEGIN
    UPDATE case_studies SET comment_count = comment_count + 1 WHERE NEW.subject_type = 'case_study' AND id = NEW.subject_id;
    UPDATE artefacts SET comment_count = comment_count + 1 WHERE NEW.subject_type = 'artefact' AND id = NEW.subject_id;
END;
CREATE TRIGGER comments_count_delete AFTER DELETE ON comments WHEN OLD.deleted_at IS NULL BEGIN
    UPDATE case_studies SET comment_count = comment_count - 1 WHERE OLD.subject_type = 'case_study' AND id = OLD.subject_id;
    UPDATE artefacts SET comment_count = comment_count - 1 WHERE OLD.subject_type = 'artefact' AND id = OLD.subject_id;
END;
CREATE TRIGGER comments_count_deleted AFTER UPDATE OF deleted_at ON comments
    WHEN (OLD.deleted_at IS NULL) <> (NEW.deleted_at IS NULL) BEGIN
    UPDATE case_studies SET comment_count = comment_count + (CASE WHEN NEW.deleted_at IS NULL THEN 1 ELSE -1 END)
        WHERE NEW.subject_type = 'case_study' AND id = NEW.subject_id;
    UPDATE artefacts SET comment_count = comment_count + (CASE WHEN NEW.deleted_at IS NULL THEN 1 ELSE -1 END)
        WHERE NEW.subject_type = 'artefact' AND id = NEW.subject_id;
END;
