-- Total tokens count every token a request used: prompt, cache reads, cache writes, completion
-- and reasoning (README, "Tokens"). The rollup keeps the sums of the three it lacked and its
-- token digest becomes one of that total, so the view is redefined and the rollup rebuilt from
-- the requests (seconds on 10 million, like 0006). Migrations run before the writer starts.
-- The rebuild starts from an empty rollup, so a re-run after a crash is exact without a token.
DROP VIEW IF EXISTS request_rollup_hourly_mv;

TRUNCATE TABLE request_rollup_hourly;

ALTER TABLE request_rollup_hourly
    ADD COLUMN IF NOT EXISTS cache_read_token_sum SimpleAggregateFunction(sum, Int64)
        AFTER completion_token_sum,
    ADD COLUMN IF NOT EXISTS cache_write_token_sum SimpleAggregateFunction(sum, Int64)
        AFTER cache_read_token_sum,
    ADD COLUMN IF NOT EXISTS reasoning_token_sum SimpleAggregateFunction(sum, Int64)
        AFTER cache_write_token_sum;

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
    sum(prompt_cache_read_tokens) AS cache_read_token_sum,
    sum(prompt_cache_write_tokens) AS cache_write_token_sum,
    sum(reasoning_tokens) AS reasoning_token_sum,
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
        ifNull(prompt_tokens, 0) + ifNull(completion_tokens, 0) + prompt_cache_read_tokens
        + prompt_cache_write_tokens + reasoning_tokens) AS tokens_digest
FROM request_response
GROUP BY organization_id, hour, provider, model, status;

-- The same SELECT as the view's, over the requests stored before it (see 0006).
INSERT INTO request_rollup_hourly
SETTINGS insert_deduplicate = 0
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
    sum(prompt_cache_read_tokens) AS cache_read_token_sum,
    sum(prompt_cache_write_tokens) AS cache_write_token_sum,
    sum(reasoning_tokens) AS reasoning_token_sum,
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
        ifNull(prompt_tokens, 0) + ifNull(completion_tokens, 0) + prompt_cache_read_tokens
        + prompt_cache_write_tokens + reasoning_tokens) AS tokens_digest
FROM request_response
GROUP BY organization_id, hour, provider, model, status
