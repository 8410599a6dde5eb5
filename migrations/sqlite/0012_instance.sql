-- This installation's own identity, made once by the database when this migration runs
-- (so an existing install gets one at upgrade): calendar UIDs are scoped to it rather
-- than to the public URL's host, so moving the site to another address does not make
-- every subscriber's calendar duplicate its events. One row, never changed.
CREATE TABLE instance (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    -- 32 lowercase hex digits, random.
    instance_id TEXT NOT NULL
);
INSERT INTO instance (id, instance_id) VALUES (1, lower(hex(randomblob(16))));

-- The personal calendar token itself, so the member can see their address again on the
-- meetups page: it only lets a calendar app read the meetups they are going to (no
-- session, no writes), and they can reset it at any time. `calendar_token_hash` stays
-- the (unique, indexed) lookup key, so addresses made before this migration keep
-- working; those have no token here until the member makes a new address.
ALTER TABLE members ADD COLUMN calendar_token TEXT;
