-- Members, their sign-in sessions and personal access tokens.
-- Instants are Unix milliseconds (UTC); see backend/db/mod.rs.

CREATE TABLE members (
    id INTEGER PRIMARY KEY,
    email TEXT NOT NULL,
    -- Lower-cased and trimmed in Rust, so uniqueness ignores case on both databases.
    email_normalized TEXT NOT NULL UNIQUE,
    -- NULL for members who sign in only through an identity provider.
    password_hash TEXT,
    display_name TEXT NOT NULL,
    bio TEXT NOT NULL DEFAULT '',
    time_zone TEXT NOT NULL DEFAULT 'Europe/London',
    role TEXT NOT NULL DEFAULT 'member' CHECK (role IN ('member', 'moderator', 'admin')),
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    suspended_at BIGINT
);

CREATE TABLE sessions (
    id INTEGER PRIMARY KEY,
    member_id BIGINT NOT NULL REFERENCES members (id) ON DELETE CASCADE,
    -- SHA-256 of the token, hex: the token itself is never stored.
    token_hash TEXT NOT NULL UNIQUE,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX sessions_member_id ON sessions (member_id);
CREATE INDEX sessions_expires_at ON sessions (expires_at);

CREATE TABLE access_tokens (
    id INTEGER PRIMARY KEY,
    member_id BIGINT NOT NULL REFERENCES members (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    -- The token's last four characters, so a member can tell tokens apart.
    token_hint TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    last_used_at BIGINT,
    expires_at BIGINT,
    revoked_at BIGINT
);
-- Serves "a member's active tokens, newest first" (keyset on id).
CREATE INDEX access_tokens_active ON access_tokens (member_id, id) WHERE revoked_at IS NULL;
