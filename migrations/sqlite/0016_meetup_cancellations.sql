-- A cancellation's own record (backend/meetups/events.rs): when it was cancelled and the
-- message its organiser sent to those going and waiting, shown on the meetup's page and
-- in the mail about it. Both are cleared when the meetup is reinstated.
ALTER TABLE meetup_events ADD COLUMN cancelled_at BIGINT;
ALTER TABLE meetup_events ADD COLUMN cancel_message TEXT;
