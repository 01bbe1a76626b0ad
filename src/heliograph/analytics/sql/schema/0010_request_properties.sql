-- Properties added to a request after it was logged (`PUT /v1/request/{id}/property`). They live
-- here, append-only like feedback, and are read over the logged ones: per request and key the
-- newest added value wins, so request rows are never rewritten. Their own table because
-- request_annotations holds numbers.
CREATE TABLE IF NOT EXISTS request_properties
(
    organization_id UUID,
    request_id UUID,
    key String,
    value String,
    created_at DateTime64(3, 'UTC')
)
ENGINE = MergeTree
ORDER BY (organization_id, request_id, key, created_at)
