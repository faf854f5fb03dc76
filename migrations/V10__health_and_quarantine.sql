-- What /health and /status say while a fault lasts (README, "Health and faults").

-- Each long-running component (ingest, compaction) reports here as it runs: `ok_at` is
-- the last time it worked, `error` the last failure. A component whose `ok_at` (or, never
-- having worked, `first_at`) falls behind is stalled, and /health answers 503 naming it.
CREATE TABLE component_health (
    component   text        PRIMARY KEY,
    first_at    timestamptz NOT NULL DEFAULT now(),
    ok_at       timestamptz,
    error       text,
    error_at    timestamptz,
    updated_at  timestamptz NOT NULL DEFAULT now()
);

-- The live ingest session's view of each relay: connected or not, since when, and the
-- last error (a refused connection, a failed catch-up).
CREATE TABLE relay_health (
    relay_id         smallint    PRIMARY KEY REFERENCES relays (id),
    connected        boolean     NOT NULL,
    connected_at     timestamptz,
    disconnected_at  timestamptz,
    error            text,
    error_at         timestamptz,
    updated_at       timestamptz NOT NULL DEFAULT now()
);

-- A plugin version whose compaction fails `failures` batches in a row is quarantined: the
-- compactor stops running it and queries answer its metrics with an error, until an
-- operator releases it (POST /api/v2/admin/plugins/{name}/{version}/release) or retires it.
ALTER TABLE compaction_state ADD COLUMN failures integer NOT NULL DEFAULT 0;
ALTER TABLE compaction_state ADD COLUMN quarantined_at timestamptz;

-- The local stack's demo dataset is generated to end at the instant its seed was first
-- used with this database, so a restart regenerates the same signed events (duplicates,
-- counted once) instead of a second copy with new ids.
CREATE TABLE demo_datasets (
    seed    bigint      PRIMARY KEY,
    end_at  timestamptz NOT NULL
);
