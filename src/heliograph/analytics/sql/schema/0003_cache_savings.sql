-- What a cache hit saved: the cost and the time of the original request it replayed.
ALTER TABLE request_response ADD COLUMN IF NOT EXISTS cache_saved_cost UInt64 DEFAULT 0;
ALTER TABLE request_response ADD COLUMN IF NOT EXISTS cache_saved_latency Int64 DEFAULT 0
