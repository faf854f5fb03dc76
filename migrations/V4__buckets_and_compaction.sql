-- Compaction: facts -> minute/hour/day buckets per metric@version (see docs/compaction.md).

-- The small id bucket rows carry for a metric@version.
ALTER TABLE plugin_metrics ADD COLUMN series integer GENERATED ALWAYS AS IDENTITY UNIQUE;

-- When a change was logged: how many seconds compaction is behind.
ALTER TABLE fact_log ADD COLUMN logged_at timestamptz NOT NULL DEFAULT now();
-- The compactor walks the log in (txid, id) order.
CREATE INDEX fact_log_txid_id ON fact_log (txid, id);
DROP INDEX fact_log_txid;

-- One row per series, subject, bucket start and dimension values. `value` is the sum
-- (count, sum, gauge change), the least or greatest value (min, max) or the distinct count
-- (distinct); `contributions` is the net number of contributions (a row at 0 is deleted).
-- Distinct rows keep `sketch` (a postgresql-hll value) and, while exact, `key_counts`
-- (contributions per key, so retractions apply). `unapplied` counts retractions that could
-- not be applied: to a min/max, or to a distinct sketch that is no longer exact.
CREATE TABLE buckets_minute (
    series         integer     NOT NULL,
    subject        bytea       NOT NULL,
    bucket         timestamptz NOT NULL,
    dims           jsonb       NOT NULL DEFAULT '{}',
    value          bigint      NOT NULL,
    contributions  bigint      NOT NULL,
    sketch         bytea,
    key_counts     bytea,
    unapplied      integer     NOT NULL DEFAULT 0,
    PRIMARY KEY (series, subject, bucket, dims)
);
CREATE TABLE buckets_hour (LIKE buckets_minute INCLUDING ALL);
CREATE TABLE buckets_day (LIKE buckets_minute INCLUDING ALL);

-- Gauges: each subject's level after every applied contribution; the level at an earlier
-- instant is this minus the changes in buckets after it.
CREATE TABLE gauge_levels (
    series   integer NOT NULL,
    subject  bytea   NOT NULL,
    level    bigint  NOT NULL,
    PRIMARY KEY (series, subject)
);

-- What each plugin version's buckets hold: every fact_log row visible in `base`, plus every
-- row after it in (txid, id) order up to the cursor. A version without a row here is not
-- compacted (its recompute has not finished).
CREATE TABLE compaction_state (
    plugin_name     text        NOT NULL,
    plugin_version  integer     NOT NULL,
    base            pg_snapshot NOT NULL,
    cursor_txid     xid8        NOT NULL,
    cursor_id       bigint      NOT NULL,
    applied_rows    bigint      NOT NULL DEFAULT 0,
    updated_at      timestamptz NOT NULL DEFAULT now(),
    -- The plugin failed on the batch after the cursor; retried every run.
    last_error      text,
    PRIMARY KEY (plugin_name, plugin_version),
    FOREIGN KEY (plugin_name, plugin_version) REFERENCES plugins (name, version)
);

-- Retention: buckets of a granularity before `complete_from` have been pruned (NULL: none
-- yet). Compaction writes no bucket before it; queries use a coarser level there.
CREATE TABLE bucket_horizons (
    granularity    text PRIMARY KEY CHECK (granularity IN ('minute', 'hour', 'day')),
    complete_from  timestamptz
);
INSERT INTO bucket_horizons VALUES ('minute', NULL), ('hour', NULL), ('day', NULL);
