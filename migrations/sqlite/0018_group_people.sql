-- A group's page lists its organisers and its members, who joined first first
-- (backend/meetups/mod.rs, `people`): read in that order from the index, however large
-- the group.
CREATE INDEX meetup_group_members_list ON meetup_group_members (group_id, role, joined_at, member_id);
