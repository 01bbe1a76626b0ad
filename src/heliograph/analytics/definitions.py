"""The one SQL definition of a request's total tokens, of a session's duration and of an
annotation's current value, used by every endpoint that reports them (README, "Tokens")."""

from __future__ import annotations

# Stored `prompt_tokens` leave out cache reads and writes and `completion_tokens` leave out
# reasoning, as Helicone stores them, so the total adds all five.
USAGE_TOTAL_SQL = (
    "(ifNull(prompt_tokens, 0) + ifNull(completion_tokens, 0) + prompt_cache_read_tokens"
    " + prompt_cache_write_tokens + reasoning_tokens)"
)


# Feedback, scores and added properties are appended, never updated: per request and name, the
# newest value is the one that counts. `extra` narrows the rows read (AND ...).
def newest_values_sql(table: str, name_column: str, scope_clause: str, extra: str = "") -> str:
    return (
        f"SELECT request_id, {name_column} AS name, argMax(value, created_at) AS value "
        f"FROM {table} WHERE {scope_clause}{extra} GROUP BY request_id, name"
    )


# From a session's first request's start to its last response's end (`latency` runs to the last
# byte), as the session tree draws it.
SESSION_DURATION_SQL = (
    "(max(toUnixTimestamp64Milli(request_created_at) + latency)"
    " - min(toUnixTimestamp64Milli(request_created_at)))"
)
