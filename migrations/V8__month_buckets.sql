-- Month buckets (docs/compaction.md, "Buckets"): calendar months (UTC), written by compaction
-- beside minute, hour and day buckets, so a long window reads a dozen rows per series and
-- dimension values instead of hundreds of days. Never pruned, like day buckets.
CREATE TABLE buckets_month (LIKE buckets_minute INCLUDING ALL);

-- Whether a version's month buckets hold everything its day buckets do. A version compacted
-- before this migration has none yet: the compactor rolls its day buckets up into months
-- once (under its lease) and sets this; queries use month buckets only when every version
-- has them. Versions recomputed from here on write months as they go.
ALTER TABLE compaction_state ADD COLUMN months_built boolean NOT NULL DEFAULT false;
ALTER TABLE compaction_state ALTER COLUMN months_built SET DEFAULT true;
