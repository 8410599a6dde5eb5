-- Members marking case studies useful or bookmarking them, and "we're working on this
-- too" interest, which the authors can see.
CREATE TABLE case_study_marks (
    case_study_id BIGINT NOT NULL REFERENCES case_studies (id) ON DELETE CASCADE,
    member_id BIGINT NOT NULL REFERENCES members (id) ON DELETE CASCADE,
    kind TEXT NOT NULL CHECK (kind IN ('useful', 'bookmark')),
    created_at BIGINT NOT NULL,
    PRIMARY KEY (case_study_id, kind, member_id)
);
-- Serves "my bookmarks", newest first.
CREATE INDEX case_study_marks_member ON case_study_marks (member_id, kind, created_at, case_study_id);

CREATE TABLE case_study_interests (
    case_study_id BIGINT NOT NULL REFERENCES case_studies (id) ON DELETE CASCADE,
    member_id BIGINT NOT NULL REFERENCES members (id) ON DELETE CASCADE,
    note TEXT NOT NULL DEFAULT '',
    created_at BIGINT NOT NULL,
    PRIMARY KEY (case_study_id, member_id)
);
