-- Changeable handles (accounts::change_handle): the handles a member has given up stay
-- theirs, so links and mentions made with them still reach them (/members/@old redirects)
-- and nobody else can take one to pass as them. Erasure deletes a member's rows here.
CREATE TABLE member_handle_history (
    handle TEXT PRIMARY KEY,
    member_id BIGINT NOT NULL REFERENCES members (id),
    retired_at BIGINT NOT NULL
);
-- Serves a member's data export and erasure.
CREATE INDEX member_handle_history_member ON member_handle_history (member_id);
-- When the member last chose a handle: a change is allowed once every 30 days.
ALTER TABLE members ADD COLUMN handle_changed_at BIGINT;
