-- nostr-analytics canonical schema, version 1.
-- Append-only: once landed, change the schema with a new V<n>__*.sql file.

-- Relays we ingest from; small ids keep provenance arrays compact.
CREATE TABLE relays (
    id   smallint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    url  text NOT NULL UNIQUE
);

-- Raw events: one row per verified event id. The id hashes created_at, so (created_at, id)
-- is unique exactly when id is; the partition key has to be part of the primary key.
CREATE TABLE events (
    id           bytea       NOT NULL,
    pubkey       bytea       NOT NULL,
    created_at   timestamptz NOT NULL,
    kind         integer     NOT NULL,
    tags         jsonb       NOT NULL,
    content      text        NOT NULL,
    sig          bytea       NOT NULL,
    seen_on      smallint[]  NOT NULL,
    received_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (created_at, id)
) PARTITION BY RANGE (created_at);

-- Interaction facts derived from events (see docs/metric-semantics.md for the classes).
CREATE TABLE facts (
    created_at    timestamptz NOT NULL,
    event_id      bytea       NOT NULL,
    seq           smallint    NOT NULL,
    class         smallint    NOT NULL,
    actor         bytea       NOT NULL,
    subject       bytea,
    target_event  bytea,
    target_coord  text,
    amount_msats  bigint,
    flags         integer     NOT NULL DEFAULT 0,
    dims          jsonb,
    -- NIP-40: from this instant the fact counts nowhere (judged at query time).
    expires_at    timestamptz,
    PRIMARY KEY (created_at, event_id, seq)
) PARTITION BY RANGE (created_at);
CREATE INDEX facts_subject ON facts (subject, class, created_at);
-- Facts whose subject is still the hint, found again when their target arrives.
CREATE INDEX facts_unresolved ON facts (target_event) WHERE flags & 1 = 1;
-- Zap receipts by payment hash: one receipt per payment counts.
CREATE INDEX facts_zap_payment ON facts ((dims->>'payment_hash')) WHERE class = 8;
-- Article versions by coordinate, for NIP-09 `a` deletions.
CREATE INDEX facts_article_coord ON facts (target_coord) WHERE class = 9;

-- Who wrote each stored event: resolves the subject of interactions with it.
CREATE TABLE event_authors (
    id          bytea       PRIMARY KEY,
    pubkey      bytea       NOT NULL,
    kind        integer     NOT NULL,
    created_at  timestamptz NOT NULL
);

-- Every change to facts, in commit order: a new fact is +1; a re-attribution is -1 of the
-- old row and +1 of the new. Compaction consumes it. `id` order is not commit order
-- (transactions commit out of order): readers take rows whose `txid` is below the
-- snapshot's xmin (pg_snapshot_xmin(pg_current_snapshot())), which cannot still change.
CREATE TABLE fact_log (
    id            bigserial   PRIMARY KEY,
    txid          xid8        NOT NULL DEFAULT pg_current_xact_id(),
    sign          smallint    NOT NULL CHECK (sign IN (-1, 1)),
    created_at    timestamptz NOT NULL,
    event_id      bytea       NOT NULL,
    seq           smallint    NOT NULL,
    class         smallint    NOT NULL,
    actor         bytea       NOT NULL,
    subject       bytea,
    target_event  bytea,
    target_coord  text,
    amount_msats  bigint,
    flags         integer     NOT NULL,
    dims          jsonb,
    expires_at    timestamptz
);
CREATE INDEX fact_log_txid ON fact_log (txid);

-- The code's names for fact classes, for people reading the database.
CREATE TABLE fact_classes (id smallint PRIMARY KEY, name text NOT NULL UNIQUE);
INSERT INTO fact_classes VALUES
    (1, 'note'), (2, 'reply'), (3, 'comment'), (4, 'reaction'), (5, 'repost'), (6, 'quote'),
    (7, 'mention'), (8, 'zap'), (9, 'article'), (10, 'deletion'), (11, 'follow_list');

-- NIP-01 replaceable (d = '') and addressable heads: the version that currently wins.
CREATE TABLE replaceable_heads (
    pubkey      bytea       NOT NULL,
    kind        integer     NOT NULL,
    d           text        NOT NULL DEFAULT '',
    event_id    bytea       NOT NULL,
    created_at  timestamptz NOT NULL,
    PRIMARY KEY (pubkey, kind, d)
);

-- NIP-02: each follower's latest accepted list, and the edges it implies.
CREATE TABLE follow_lists (
    follower    bytea       PRIMARY KEY,
    event_id    bytea       NOT NULL,
    created_at  timestamptz NOT NULL,
    follows     bytea[]     NOT NULL
);
CREATE TABLE follow_edges (
    followee    bytea       NOT NULL,
    follower    bytea       NOT NULL,
    since       timestamptz NOT NULL,
    PRIMARY KEY (followee, follower)
);

-- NIP-09 tombstones, kept even when the target has not arrived yet.
CREATE TABLE tombstones (
    deletion_id   bytea       NOT NULL,
    deleter       bytea       NOT NULL,
    target_event  bytea,
    target_coord  text,
    created_at    timestamptz NOT NULL,
    CHECK ((target_event IS NULL) <> (target_coord IS NULL))
);
CREATE UNIQUE INDEX tombstones_event ON tombstones (target_event, deletion_id) WHERE target_event IS NOT NULL;
CREATE UNIQUE INDEX tombstones_coord ON tombstones (target_coord, deletion_id) WHERE target_coord IS NOT NULL;
CREATE INDEX tombstones_deletion ON tombstones (deletion_id);

-- Ingest progress: per relay, everything published before `watermark` has been stored.
CREATE TABLE ingest_watermarks (
    relay_id    smallint    PRIMARY KEY REFERENCES relays (id),
    watermark   timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now()
);

-- Ingest counters per relay and outcome: accepted, duplicate, bad_id, bad_signature,
-- future, malformed. Incremented in the transaction of the batch they describe.
CREATE TABLE ingest_counters (
    relay_id  smallint NOT NULL REFERENCES relays (id),
    outcome   text     NOT NULL,
    count     bigint   NOT NULL DEFAULT 0,
    PRIMARY KEY (relay_id, outcome)
);

-- Async jobs (backfills now; recomputes and heavy queries later).
CREATE TABLE jobs (
    id          uuid        PRIMARY KEY,
    kind        text        NOT NULL,
    params      jsonb       NOT NULL,
    state       text        NOT NULL DEFAULT 'queued'
                CHECK (state IN ('queued', 'running', 'succeeded', 'failed')),
    progress    jsonb       NOT NULL DEFAULT '{}'::jsonb,
    result      jsonb,
    error       text,
    attempts    integer     NOT NULL DEFAULT 0,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX jobs_kind_params ON jobs (kind, (params->>'pubkey'));

-- Monthly partitions of `events` and `facts`, created on demand and ahead of time.
-- Everything before 2021 (Nostr began in late 2020) shares one archive partition.
CREATE TABLE events_archive PARTITION OF events FOR VALUES FROM (MINVALUE) TO ('2021-01-01 00:00:00+00');
CREATE TABLE facts_archive PARTITION OF facts FOR VALUES FROM (MINVALUE) TO ('2021-01-01 00:00:00+00');

CREATE FUNCTION ensure_month_partitions(from_ts timestamptz, to_ts timestamptz)
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    m timestamptz := date_trunc('month', greatest(from_ts, '2021-01-01 00:00:00+00') AT TIME ZONE 'UTC') AT TIME ZONE 'UTC';
    created integer := 0;
    parent text;
    part text;
BEGIN
    -- One creator at a time: concurrent ingest runs would race on CREATE TABLE.
    PERFORM pg_advisory_xact_lock(hashtext('ensure_month_partitions'));
    WHILE m <= to_ts LOOP
        FOREACH parent IN ARRAY ARRAY['events', 'facts'] LOOP
            part := format('%s_%s', parent, to_char(m AT TIME ZONE 'UTC', 'YYYY_MM'));
            IF to_regclass(part) IS NULL THEN
                EXECUTE format(
                    'CREATE TABLE %I PARTITION OF %I FOR VALUES FROM (%L) TO (%L)',
                    part, parent, m, (m AT TIME ZONE 'UTC' + interval '1 month') AT TIME ZONE 'UTC');
                created := created + 1;
            END IF;
        END LOOP;
        m := (m AT TIME ZONE 'UTC' + interval '1 month') AT TIME ZONE 'UTC';
    END LOOP;
    RETURN created;
END $$;
