-- Access control (README, "Who may do what"). API keys for services: only the SHA-256 of
-- each key is kept (the key is shown once, when made).
CREATE TABLE api_keys (
    id uuid PRIMARY KEY,
    name text NOT NULL CHECK (name <> ''),
    key_hash bytea NOT NULL CHECK (length(key_hash) = 32),
    scopes text[] NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz,
    revoked_at timestamptz,
    last_used_at timestamptz
);

-- NIP-98 events accepted, each id once, across every instance; rows older than the
-- allowed clock skew can no longer match a fresh event and are swept by retention.
CREATE TABLE nip98_seen (
    event_id bytea PRIMARY KEY CHECK (length(event_id) = 32),
    seen_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX nip98_seen_at ON nip98_seen (seen_at);
