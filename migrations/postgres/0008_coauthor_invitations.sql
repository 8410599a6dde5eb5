-- Co-author consent. Naming someone as a co-author now invites them; only when they
-- accept do they join case_study_authors, which is what lets a member see a draft, edit,
-- and be listed as an author anywhere (pages, lists, feeds, search). Until then the
-- invitation lives here. An invitation is answered once: accepted, declined, or withdrawn
-- by an author before it was answered; inviting the member again makes a new row.
--
-- Existing co-authors become accepted: they were added under the old rules, before
-- consent was asked for, so their case_study_authors rows stay as they are, and each gets
-- an accepted invitation here (dated when its case study was created) so that every
-- co-author has one on record.
CREATE TABLE case_study_coauthor_invitations (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    case_study_id BIGINT NOT NULL REFERENCES case_studies (id) ON DELETE CASCADE,
    invitee_id BIGINT NOT NULL REFERENCES members (id) ON DELETE CASCADE,
    -- The author who named them; kept when that author's account goes.
    invited_by BIGINT REFERENCES members (id) ON DELETE SET NULL,
    status TEXT NOT NULL CHECK (status IN ('pending', 'accepted', 'declined', 'withdrawn')),
    created_at BIGINT NOT NULL,
    responded_at BIGINT
);
-- At most one open invitation per case study and member; also serves a case study's
-- pending co-authors, which only its authors see.
CREATE UNIQUE INDEX case_study_coauthor_invitations_pending
    ON case_study_coauthor_invitations (case_study_id, invitee_id) WHERE status = 'pending';
-- Serves a member's pending invitations, newest first, keyset on id.
CREATE INDEX case_study_coauthor_invitations_invitee
    ON case_study_coauthor_invitations (invitee_id, id) WHERE status = 'pending';

INSERT INTO case_study_coauthor_invitations (case_study_id, invitee_id, invited_by, status, created_at, responded_at)
SELECT a.case_study_id, a.member_id, c.author_id, 'accepted', c.created_at, c.created_at
FROM case_study_authors a JOIN case_studies c ON c.id = a.case_study_id
WHERE a.member_id <> c.author_id
ORDER BY a.case_study_id, a.position;
