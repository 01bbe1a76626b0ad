-- Tags and feedback given to a whole session. Append-only like request_annotations: the newest
-- value of each kind wins when read.
CREATE TABLE IF NOT EXISTS session_annotations
(
    organization_id UUID,
    session_id String,
    kind LowCardinality(String),
    value String,
    created_at DateTime64(3, 'UTC')
)
ENGINE = MergeTree
ORDER BY (organization_id, session_id, kind, created_at)
