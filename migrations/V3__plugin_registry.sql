-- Metric plugins: every published name@version with its component, what it declares, and
-- where it is in its life (shadow -> active -> retired). See metrics-plugins/README.md.
CREATE TABLE plugins (
    name           text        NOT NULL,
    version        integer     NOT NULL CHECK (version > 0),
    content_hash   bytea       NOT NULL,
    artifact       bytea       NOT NULL,
    abi            integer     NOT NULL,
    description    jsonb       NOT NULL,
    state          text        NOT NULL DEFAULT 'shadow'
                   CHECK (state IN ('shadow', 'active', 'retired')),
    -- Set by the recompute job once the version's buckets cover the retained facts;
    -- a version is activatable only then.
    recomputed_at  timestamptz,
    published_by   text        NOT NULL,
    published_at   timestamptz NOT NULL DEFAULT now(),
    activated_at   timestamptz,
    retired_at     timestamptz,
    PRIMARY KEY (name, version)
);

-- Each metric@version is computed by exactly one plugin version.
CREATE TABLE plugin_metrics (
    metric          text    NOT NULL,
    metric_version  integer NOT NULL,
    plugin_name     text    NOT NULL,
    plugin_version  integer NOT NULL,
    metric_index    integer NOT NULL,
    aggregation     text    NOT NULL,
    PRIMARY KEY (metric, metric_version),
    FOREIGN KEY (plugin_name, plugin_version) REFERENCES plugins (name, version)
);
