-- Per organization, hour, provider, model and status: the sums, distinct users and quantile
-- digests behind the dashboard metrics, kept by a materialized view as requests are inserted, so
-- a month of metrics reads a few thousand rows instead of millions. Column names differ from the
-- request columns they summarise so that no alias in the view shadows a column.
CREATE TABLE IF NOT EXISTS request_rollup_hourly
(
    organization_id UUID,
    hour DateTime('UTC'),
    provider LowCardinality(String),
    model LowCardinality(String),
    status Int32,
    requests SimpleAggregateFunction(sum, UInt64),
    cost_nano SimpleAggregateFunction(sum, UInt64),
    prompt_token_sum SimpleAggregateFunction(sum, Int64),
    completion_token_sum SimpleAggregateFunction(sum, Int64),
    latency_sum SimpleAggregateFunction(sum, Int64),
    ttft_sum SimpleAggregateFunction(sum, Int64),
    ttft_count SimpleAggregateFunction(sum, UInt64),
    cache_hits SimpleAggregateFunction(sum, UInt64),
    saved_cost_nano SimpleAggregateFunction(sum, UInt64),
    saved_latency_ms SimpleAggregateFunction(sum, Int64),
    users AggregateFunction(uniqCombined, Nullable(String)),
    latency_digest AggregateFunction(quantilesTDigest(0.5, 0.75, 0.9, 0.95, 0.99), Int64),
    ttft_digest AggregateFunction(quantilesTDigest(0.5, 0.75, 0.9, 0.95, 0.99), Nullable(Int64)),
    tokens_digest AggregateFunction(quantilesTDigest(0.5, 0.75, 0.9, 0.95, 0.99), Int64)
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(hour)
ORDER BY (organization_id, hour, provider, model, status)
SETTINGS non_replicated_deduplication_window = 10000;

CREATE MATERIALIZED VIEW IF NOT EXISTS request_rollup_hourly_mv TO request_rollup_hourly AS
SELECT
    organization_id,
    toStartOfHour(request_created_at) AS hour,
    provider,
    model,
    status,
    count() AS requests,
    sum(cost) AS cost_nano,
    sum(ifNull(prompt_tokens, 0)) AS prompt_token_sum,
    sum(ifNull(completion_tokens, 0)) AS completion_token_sum,
    sum(latency) AS latency_sum,
    sum(ifNull(time_to_first_token, 0)) AS ttft_sum,
    count(time_to_first_token) AS ttft_count,
    countIf(cache_reference_id != toUUID('00000000-0000-0000-0000-000000000000')) AS cache_hits,
    sum(cache_saved_cost) AS saved_cost_nano,
    sum(cache_saved_latency) AS saved_latency_ms,
    uniqCombinedState(nullIf(user_id, '')) AS users,
    quantilesTDigestState(0.5, 0.75, 0.9, 0.95, 0.99)(latency) AS latency_digest,
    quantilesTDigestState(0.5, 0.75, 0.9, 0.95, 0.99)(time_to_first_token) AS ttft_digest,
    quantilesTDigestState(0.5, 0.75, 0.9, 0.95, 0.99)(
        ifNull(prompt_tokens, 0) + ifNull(completion_tokens, 0)) AS tokens_digest
FROM request_response
GROUP BY organization_id, hour, provider, model, status;

-- Requests stored before the view existed; the token makes a re-run after a crash a no-op.
-- The SELECT repeats the view's (a `TO` view cannot populate itself), and `analytics/rollup.py`
-- computes the same summaries at read time: tests hold all three equal.
INSERT INTO request_rollup_hourly
SETTINGS insert_deduplication_token = 'heliograph-0006-backfill'
SELECT
    organization_id,
    toStartOfHour(request_created_at) AS hour,
    provider,
    model,
    status,
    count() AS requests,
    sum(cost) AS cost_nano,
    sum(ifNull(prompt_tokens, 0)) AS prompt_token_sum,
    sum(ifNull(completion_tokens, 0)) AS completion_token_sum,
    sum(latency) AS latency_sum,
    sum(ifNull(time_to_first_token, 0)) AS ttft_sum,
    count(time_to_first_token) AS ttft_count,
    countIf(cache_reference_id != toUUID('00000000-0000-0000-0000-000000000000')) AS cache_hits,
    sum(cache_saved_cost) AS saved_cost_nano,
    sum(cache_saved_latency) AS saved_latency_ms,
    uniqCombinedState(nullIf(user_id, '')) AS users,
    quantilesTDigestState(0.5, 0.75, 0.9, 0.95, 0.99)(latency) AS latency_digest,
    quantilesTDigestState(0.5, 0.75, 0.9, 0.95, 0.99)(time_to_first_token) AS ttft_digest,
    quantilesTDigestState(0.5, 0.75, 0.9, 0.95, 0.99)(
        ifNull(prompt_tokens, 0) + ifNull(completion_tokens, 0)) AS tokens_digest
FROM request_response
GROUP BY organization_id, hour, provider, model, status
