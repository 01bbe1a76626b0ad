-- Feedback and scores arrive after the request; they live here, append-only, and the newest
-- value of each name wins when read (request rows are never rewritten).
CREATE TABLE IF NOT EXISTS request_annotations
(
    organization_id UUID,
    request_id UUID,
    name LowCardinality(String),
    value Float64,
    created_at DateTime64(3, 'UTC'),
    source LowCardinality(String)
)
ENGINE = MergeTree
ORDER BY (organization_id, request_id, name, created_at)
