-- Counts every list shows, kept on the row so that a list page reads them with its rows
-- instead of counting per page: useful marks, comments (not deleted, replies included)
-- and linked artefacts of a case study, comments of an artefact. Triggers keep them in
-- the transaction that changes what they count, whichever code path does it (posting,
-- deleting, moderation, erasure, cascades).

ALTER TABLE case_studies ADD COLUMN useful_count BIGINT NOT NULL DEFAULT 0;
ALTER TABLE case_studies ADD COLUMN comment_count BIGINT NOT NULL DEFAULT 0;
ALTER TABLE case_studies ADD COLUMN artefact_count BIGINT NOT NULL DEFAULT 0;
ALTER TABLE artefacts ADD COLUMN comment_count BIGINT NOT NULL DEFAULT 0;

UPDATE case_studies c SET
    useful_count = (SELECT COUNT(*) FROM case_study_marks m WHERE m.case_study_id = c.id AND m.kind = 'useful'),
    comment_count = (SELECT COUNT(*) FROM comments k
                     WHERE k.subject_type = 'case_study' AND k.subject_id = c.id AND k.deleted_at IS NULL),
    artefact_count = (SELECT COUNT(*) FROM artefact_case_studies l WHERE l.case_study_id = c.id);
UPDATE artefacts a SET
    comment_count = (SELECT COUNT(*) FROM comments k
                     WHERE k.subject_type = 'artefact' AND k.subject_id = a.id AND k.deleted_at IS NULL);

CREATE FUNCTION count_useful_marks() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' AND NEW.kind = 'useful' THEN
        UPDATE case_studies SET useful_count = useful_count + 1 WHERE id = NEW.case_study_id;
    ELSIF TG_OP = 'DELETE' AND OLD.kind = 'useful' THEN
        UPDATE case_studies SET useful_count = useful_count - 1 WHERE id = OLD.case_study_id;
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER case_study_marks_count AFTER INSERT OR DELETE ON case_study_marks
    FOR EACH ROW EXECUTE FUNCTION count_useful_marks();

CREATE FUNCTION count_linked_artefacts() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        UPDATE case_studies SET artefact_count = artefact_count + 1 WHERE id = NEW.case_study_id;
    ELSE
        UPDATE case_studies SET artefact_count = artefact_count - 1 WHERE id = OLD.case_study_id;
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER artefact_case_studies_count AFTER INSERT OR DELETE ON artefact_case_studies
    FOR EACH ROW EXECUTE FUNCTION count_linked_artefacts();

-- A comment counts while it exists and is not deleted: +1 when one that counts appears,
-- -1 when one that counted goes (deleted_at set, or the row removed).
CREATE FUNCTION count_comments() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    delta BIGINT := 0;
    target_type TEXT;
    target_id BIGINT;
BEGIN
    IF TG_OP = 'INSERT' THEN
        target_type := NEW.subject_type; target_id := NEW.subject_id;
        IF NEW.deleted_at IS NULL THEN delta := 1; END IF;
    ELSIF TG_OP = 'DELETE' THEN
        target_type := OLD.subject_type; target_id := OLD.subject_id;
        IF OLD.deleted_at IS NULL THEN delta := -1; END IF;
    ELSE
        target_type := NEW.subject_type; target_id := NEW.subject_id;
        IF OLD.deleted_at IS NULL AND NEW.deleted_at IS NOT NULL THEN delta := -1;
        ELSIF OLD.deleted_at IS NOT NULL AND NEW.deleted_at IS NULL THEN delta := 1;
        END IF;
    END IF;
    IF delta <> 0 AND target_type = 'case_study' THEN
        UPDATE case_studies SET comment_count = comment_count + delta WHERE id = target_id;
    ELSIF delta <> 0 AND target_type = 'artefact' THEN
        UPDATE artefacts SET comment_count = comment_count + delta WHERE id = target_id;
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER comments_count AFTER INSERT OR DELETE OR UPDATE OF deleted_at ON comments
    FOR EACH ROW EXECUTE FUNCTION count_comments();
