-- Bulk imports (`nostr-analytics import FILE.jsonl`): how far each file has been read,
-- committed in the transaction of the batch that read it, so an interrupted import
-- resumes at the first line not yet stored and counts nothing twice.
CREATE TABLE imports (
    source        text        PRIMARY KEY,
    offset_bytes  bigint      NOT NULL,
    lines         bigint      NOT NULL,
    started_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    finished_at   timestamptz
);
