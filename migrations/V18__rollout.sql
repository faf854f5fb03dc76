-- The rollout from the legacy analytics path to v2 (docs/rollout.md). Every instance reads
-- `rollout_flags` every few seconds, so a change takes effect without a redeploy.

-- Which path answers a legacy route, for whom: `mode` for the pubkeys in `allow` and for
-- the `percent` of the others whose cohort (a stable hash of the pubkey, 0-99) is below
-- it; `legacy` for the rest and for every pubkey in `deny`.
CREATE TABLE rollout_flags (
    key text PRIMARY KEY,
    mode text NOT NULL DEFAULT 'legacy' CHECK (mode IN ('legacy', 'dual', 'v2')),
    percent smallint NOT NULL DEFAULT 0 CHECK (percent BETWEEN 0 AND 100),
    allow text[] NOT NULL DEFAULT '{}',
    deny text[] NOT NULL DEFAULT '{}',
    revision bigint NOT NULL DEFAULT 1,
    updated_at timestamptz NOT NULL DEFAULT now(),
    updated_by text NOT NULL DEFAULT 'V18'
);
INSERT INTO rollout_flags (key) VALUES ('analytics-v1-summary');

-- Every change, as it was before and after: what an operator reads back after a rollback.
CREATE TABLE rollout_flag_changes (
    id bigserial PRIMARY KEY,
    key text NOT NULL REFERENCES rollout_flags (key),
    revision bigint NOT NULL,
    changed_at timestamptz NOT NULL DEFAULT now(),
    changed_by text NOT NULL,
    before jsonb NOT NULL,
    after jsonb NOT NULL
);

-- One row per request answered in `dual` mode: both paths' values, read in one snapshot
-- (`cutoff`), per metric, with the window's class and the pubkey's cohort.
CREATE TABLE drift_observations (
    id bigserial PRIMARY KEY,
    observed_at timestamptz NOT NULL DEFAULT now(),
    flag text NOT NULL,
    pubkey text NOT NULL,
    cohort smallint NOT NULL,
    window_class text NOT NULL,
    window_from timestamptz NOT NULL,
    window_to timestamptz NOT NULL,
    cutoff timestamptz NOT NULL,
    live_edge boolean NOT NULL,
    -- {"metric": {"legacy": n, "v2": n, "threshold": x}, ...}
    metrics jsonb NOT NULL,
    differs boolean NOT NULL
);
CREATE INDEX drift_observations_by_time ON drift_observations (observed_at);
