-- Organisers' tools for the people at a meetup (backend/meetups/rsvps.rs).

-- When an organiser took the member off the meetup (they were going or waiting), and
-- which organiser: while set, the member's "going" is refused, so a removal holds until
-- an organiser lets them answer again (which clears both). The RSVP itself says
-- 'not_going', so seats and the waitlist need no new status.
ALTER TABLE meetup_rsvps ADD COLUMN removed_at BIGINT;
ALTER TABLE meetup_rsvps ADD COLUMN removed_by BIGINT REFERENCES members (id) ON DELETE SET NULL;
-- When an organiser recorded that the member came (set once the meetup has started; null
-- when they did not, or nobody has said). Kept on the RSVP, as it is about that answer.
ALTER TABLE meetup_rsvps ADD COLUMN attended_at BIGINT;
-- Serves the organisers' list of those removed from a meetup (few rows per event).
CREATE INDEX meetup_rsvps_removed ON meetup_rsvps (event_id, removed_at) WHERE removed_at IS NOT NULL;
