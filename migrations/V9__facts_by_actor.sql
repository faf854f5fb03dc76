-- Exact windows (docs/query-api.md): the parts of a window that no kept bucket covers are
-- read from the facts, by subject (facts_subject) and by actor: what a user published.
CREATE INDEX facts_actor ON facts (actor, created_at);
