-- Raw retention (docs/compaction.md, "Retention"): the monthly partitions of `events` and
-- `facts` ending at or before `raw_from` have been dropped (NULL: none yet). An event from
-- before it whose id `event_authors` already holds is a duplicate; a version recomputed
-- after a drop has buckets only from its `facts_from` on.
CREATE TABLE raw_horizon (
    singleton  boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    raw_from   timestamptz
);
INSERT INTO raw_horizon DEFAULT VALUES;
ALTER TABLE compaction_state ADD COLUMN facts_from timestamptz;
