-- The per-note drilldown (GET /api/v2/analytics/notes/{event_id}) reads the facts that
-- target one event, within a window.
CREATE INDEX facts_target ON facts (target_event, created_at) WHERE target_event IS NOT NULL;
