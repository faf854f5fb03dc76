-- An API key's own rate limits (README, "Rate limits"), in NA_RATE_KEY's syntax
-- (`costly=100,jobs=5`), over the deployment's key limits; NULL: the deployment's.
ALTER TABLE api_keys ADD COLUMN rate_limits text;
