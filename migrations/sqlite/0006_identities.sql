-- Sign-in with OAuth2 providers: the provider identities linked to each member, and the
-- single-use states of sign-ins in progress.

CREATE TABLE member_identities (
    provider TEXT NOT NULL,
    -- The provider's own id for the person, as text (some providers use numbers).
    subject TEXT NOT NULL,
    member_id BIGINT NOT NULL REFERENCES members (id) ON DELETE CASCADE,
    -- The email the provider gave when the identity was linked (for the member's view).
    email TEXT,
    created_at BIGINT NOT NULL,
    last_used_at BIGINT NOT NULL,
    PRIMARY KEY (provider, subject)
);
-- Serves "this member's identities", and one identity per provider per member.
CREATE UNIQUE INDEX member_identities_member ON member_identities (member_id, provider);

CREATE TABLE oauth_states (
    -- SHA-256 of the state sent to the provider; the state itself is never stored.
    state_hash TEXT PRIMARY KEY,
    provider TEXT NOT NULL,
    pkce_verifier TEXT NOT NULL,
    -- SHA-256 of the browser's kettle_csrf cookie: a callback from another browser fails.
    browser_hash TEXT NOT NULL,
    -- Where to go afterwards (a path inside the site).
    return_to TEXT NOT NULL,
    -- Set when a signed-in member is connecting a provider rather than signing in.
    link_member_id BIGINT REFERENCES members (id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX oauth_states_expiry ON oauth_states (expires_at);
