-- Mail: verified addresses, single-use links, each member's mail choices and digest
-- schedule, and the queue that sends it all.

-- When the member proved they receive mail at their address; NULL until then. Until
-- it is set, they get no mail but verification.
ALTER TABLE members ADD COLUMN email_verified_at BIGINT;
-- When mail to the address failed permanently; mail (but security mail) stops until the
-- address is verified again.
ALTER TABLE members ADD COLUMN email_bouncing_at BIGINT;
-- The digest: how often, on which ISO weekday (Monday = 1; weekly only), at which hour
-- of the member's own time zone.
ALTER TABLE members ADD COLUMN digest_frequency TEXT NOT NULL DEFAULT 'weekly'
    CHECK (digest_frequency IN ('daily', 'weekly', 'never'));
ALTER TABLE members ADD COLUMN digest_weekday BIGINT NOT NULL DEFAULT 1 CHECK (digest_weekday BETWEEN 1 AND 7);
ALTER TABLE members ADD COLUMN digest_hour BIGINT NOT NULL DEFAULT 8 CHECK (digest_hour BETWEEN 0 AND 23);
-- When the next digest is due (UTC); NULL when none will be: never, or an address that
-- is unverified or bouncing. The digest sweep reads only due rows, through the index.
ALTER TABLE members ADD COLUMN next_digest_at BIGINT;
-- The newest notification the member's last digest covered.
ALTER TABLE members ADD COLUMN digest_after_id BIGINT NOT NULL DEFAULT 0;
CREATE INDEX members_next_digest ON members (next_digest_at) WHERE next_digest_at IS NOT NULL;

-- Per notification kind, how the member hears of it beyond the site: 'email' (at once,
-- unless read on the site first), 'digest', or 'site' (only). No row: the kind's default.
CREATE TABLE notification_mail_choices (
    member_id BIGINT NOT NULL REFERENCES members (id) ON DELETE CASCADE,
    kind TEXT NOT NULL,
    choice TEXT NOT NULL CHECK (choice IN ('email', 'digest', 'site')),
    PRIMARY KEY (member_id, kind)
);

-- Single-use links sent by mail: verifying an address, resetting a password. Only the
-- SHA-256 of the token is kept.
CREATE TABLE account_tokens (
    id INTEGER PRIMARY KEY,
    member_id BIGINT NOT NULL REFERENCES members (id) ON DELETE CASCADE,
    purpose TEXT NOT NULL CHECK (purpose IN ('verify_email', 'reset_password')),
    token_hash TEXT NOT NULL UNIQUE,
    -- For verify_email, the address being verified (on a change, the new one).
    email TEXT,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at BIGINT
);
-- Serves a member's live tokens of one purpose (to replace them), and erasing them.
CREATE INDEX account_tokens_member ON account_tokens (member_id, purpose);
-- Serves pruning expired tokens.
CREATE INDEX account_tokens_expires ON account_tokens (expires_at);

-- Every message, from when its cause commits until it is sent (and for a while after).
-- The whole message is rendered when it is queued, so sending needs no other table.
CREATE TABLE mail_queue (
    id INTEGER PRIMARY KEY,
    -- What the message is for ('digest:12:2026-12-07', 'notification:99', …): queueing
    -- the same thing twice adds nothing.
    idempotency_key TEXT NOT NULL UNIQUE,
    member_id BIGINT REFERENCES members (id) ON DELETE CASCADE,
    to_address TEXT NOT NULL,
    to_name TEXT NOT NULL,
    -- Which template made it ('digest', 'notification', 'verify_email', …).
    template TEXT NOT NULL,
    -- The one-click unsubscribe link; NULL for security mail, which cannot be unsubscribed.
    unsubscribe_url TEXT,
    subject TEXT NOT NULL,
    text_body TEXT NOT NULL,
    html_body TEXT NOT NULL,
    -- The same on every attempt, so a receiver can drop a duplicate.
    message_id TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'sent', 'failed', 'skipped')),
    attempts BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    -- Set by the sender that claimed it; another may take it over once this has passed.
    claimed_until BIGINT,
    last_error TEXT,
    created_at BIGINT NOT NULL,
    sent_at BIGINT
);
-- Serves the sender finding what is due.
CREATE INDEX mail_queue_due ON mail_queue (next_attempt_at) WHERE status = 'pending';
-- Serves pruning old mail.
CREATE INDEX mail_queue_created ON mail_queue (created_at);
-- Serves erasing and exporting a member's mail.
CREATE INDEX mail_queue_member ON mail_queue (member_id);

-- How far a sweep that any instance may run has got ('notification_mail': the last
-- notification considered for mail). Advanced by compare-and-set in the transaction
-- that does the work, so two instances never do the same part.
CREATE TABLE cursors (
    name TEXT PRIMARY KEY,
    position BIGINT NOT NULL
);

-- Secrets every instance shares (the key that signs unsubscribe links), made on first use.
CREATE TABLE site_secrets (
    name TEXT PRIMARY KEY,
    secret TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
