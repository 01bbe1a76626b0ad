"""`token_counts`: the token sums of an aggregate row as the API reports them, by the one
definition of total tokens (`analytics.definitions.USAGE_TOTAL_SQL`)."""

from __future__ import annotations

from heliograph.analytics.aggregate_rows import TokenSums


def token_counts(row: TokenSums) -> dict[str, int]:
    """The token sums of an aggregate row (`analytics.aggregates.TOKEN_SUMS`), as integers."""
    return {
        "prompt_tokens": int(row["prompt_tokens"] or 0),
        "completion_tokens": int(row["completion_tokens"] or 0),
        "prompt_cache_read_tokens": int(row["prompt_cache_read_tokens"] or 0),
        "prompt_cache_write_tokens": int(row["prompt_cache_write_tokens"] or 0),
        "reasoning_tokens": int(row["reasoning_tokens"] or 0),
        "total_tokens": int(row["total_tokens"] or 0),
    }
