-- How many times the gateway called a provider for the request (retries and fallbacks included);
-- 0 when it never did (rate limited).
ALTER TABLE request_response ADD COLUMN IF NOT EXISTS attempts UInt8 DEFAULT 1
