-- NIP-02 follow flows (see docs/metric-semantics.md, "Follows").
INSERT INTO fact_classes VALUES (12, 'follow_baseline'), (13, 'follow_gained'), (14, 'follow_lost');

-- follower_count now: the followers of a pubkey, and when each follow began.
CREATE INDEX follow_edges_follower ON follow_edges (follower);

-- NIP-40: facts waiting for their expiration, found by the expiry sweep.
CREATE INDEX facts_expiring ON facts (expires_at) WHERE expires_at IS NOT NULL AND flags & 64 = 0;
