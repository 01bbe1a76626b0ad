-- Inverted indexes of the lower-cased 3-grams of both bodies, so a case-insensitive substring
-- search reads only the rows holding every 3-gram of the search text (see domain/filters.py)
-- instead of every body. Needs ClickHouse 26.2 or newer (chDB 4.4 is 26.9). Stored bodies are
-- indexed by the MATERIALIZE statements: at once in chDB (about 20 s per million requests),
-- in the background on a server, where unindexed parts are simply scanned until then.
ALTER TABLE request_response ADD INDEX IF NOT EXISTS idx_request_body_text request_body
    TYPE text(tokenizer = ngrams(3), preprocessor = lowerUTF8(request_body));
ALTER TABLE request_response ADD INDEX IF NOT EXISTS idx_response_body_text response_body
    TYPE text(tokenizer = ngrams(3), preprocessor = lowerUTF8(response_body));
ALTER TABLE request_response MATERIALIZE INDEX idx_request_body_text;
ALTER TABLE request_response MATERIALIZE INDEX idx_response_body_text
