-- One immutable row per proxied request. ReplacingMergeTree on the full key only collapses exact
-- re-deliveries of the same request; rows are never rewritten to change them.
-- Bodies carry no n-gram index: case-insensitive search (ILIKE) cannot use one, and building it
-- doubled the insert cost. Body search indexes come with the search work, as a new migration.
CREATE TABLE IF NOT EXISTS request_response
(
    request_id UUID,
    organization_id UUID,
    request_created_at DateTime64(3, 'UTC'),
    response_created_at Nullable(DateTime64(3, 'UTC')),
    provider LowCardinality(String),
    model LowCardinality(String),
    request_model LowCardinality(String),
    response_model LowCardinality(String),
    model_override String DEFAULT '',
    target_url String,
    request_path String,
    method LowCardinality(String),
    status Int32,
    latency Int64,
    time_to_first_token Nullable(Int64),
    is_stream Bool,
    user_id String,
    properties Map(LowCardinality(String), String) CODEC(ZSTD(1)),
    session_id String,
    session_path String,
    session_name String,
    prompt_tokens Nullable(Int64),
    completion_tokens Nullable(Int64),
    prompt_cache_read_tokens Int64 DEFAULT 0,
    prompt_cache_write_tokens Int64 DEFAULT 0,
    reasoning_tokens Int64 DEFAULT 0,
    prompt_audio_tokens Int64 DEFAULT 0,
    completion_audio_tokens Int64 DEFAULT 0,
    cost UInt64 DEFAULT 0,
    pricing_status LowCardinality(String),
    cache_enabled Bool DEFAULT false,
    cache_reference_id UUID DEFAULT toUUID('00000000-0000-0000-0000-000000000000'),
    request_body String CODEC(ZSTD(1)),
    response_body String CODEC(ZSTD(1)),
    request_body_omitted Bool DEFAULT false,
    response_body_omitted Bool DEFAULT false,
    storage_location LowCardinality(String) DEFAULT 'clickhouse',
    api_key_id String DEFAULT '',
    error String DEFAULT '',
    INDEX idx_request_id request_id TYPE bloom_filter(0.001) GRANULARITY 1,
    INDEX idx_user_id user_id TYPE bloom_filter(0.01) GRANULARITY 4,
    INDEX idx_session_id session_id TYPE bloom_filter(0.01) GRANULARITY 4,
    INDEX idx_property_keys mapKeys(properties) TYPE bloom_filter(0.01) GRANULARITY 4,
    INDEX idx_property_values mapValues(properties) TYPE bloom_filter(0.01) GRANULARITY 4
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(request_created_at)
ORDER BY (organization_id, request_created_at, request_id)
SETTINGS non_replicated_deduplication_window = 10000
