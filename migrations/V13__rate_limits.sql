-- Rate limits (README, "Rate limits"): one row per principal and route class, holding the
-- generic cell rate algorithm's theoretical arrival time. Unlogged: after a crash the limits
-- start over, which costs nothing worth a WAL write per request.
CREATE UNLOGGED TABLE rate_limits (
    key  text        PRIMARY KEY,
    tat  timestamptz NOT NULL
);
