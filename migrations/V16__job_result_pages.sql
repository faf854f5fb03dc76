-- A query job's answer larger than one response may be (NA_QUERY_MAX_BODY_BYTES) is kept
-- in pages, served one at a time (docs/query-api.md). `jobs.result_pages` says how many; an
-- answer of one page stays in `jobs.result`. Pages go with their job.
ALTER TABLE jobs ADD COLUMN result_pages integer;
CREATE TABLE job_result_pages (
    job_id uuid NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    page integer NOT NULL CHECK (page >= 1),
    body jsonb NOT NULL,
    PRIMARY KEY (job_id, page)
);
