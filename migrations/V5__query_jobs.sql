-- Async query jobs (docs/query-api.md): a result is kept until `expires_at`; after it the
-- job answers 410 Gone and retention clears the row.
ALTER TABLE jobs ADD COLUMN expires_at timestamptz;
CREATE INDEX jobs_expires_at ON jobs (expires_at) WHERE expires_at IS NOT NULL;
