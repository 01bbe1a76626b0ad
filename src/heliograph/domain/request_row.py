"""`RequestRow`: one row of `request_response`, as the row builder writes it and the store reads
it back. The column lists every reader selects are derived from this one type, so a column is
named once."""

from __future__ import annotations

from typing import NotRequired, TypedDict


class RequestRow(TypedDict):
    request_id: str
    organization_id: str
    request_created_at: str  # `YYYY-MM-DD hh:mm:ss.fff`, UTC, as the engine prints it
    response_created_at: str | None
    provider: str
    model: str
    request_model: str
    response_model: str
    model_override: str
    target_url: str
    request_path: str
    method: str
    status: int
    latency: int
    time_to_first_token: int | None
    is_stream: bool
    user_id: str
    properties: dict[str, str]
    session_id: str
    session_path: str
    session_name: str
    prompt_tokens: int | None
    completion_tokens: int | None
    prompt_cache_read_tokens: int
    prompt_cache_write_tokens: int
    reasoning_tokens: int
    prompt_audio_tokens: int
    completion_audio_tokens: int
    cost: int  # nano-USD
    pricing_status: str
    cache_enabled: bool
    # A replay's columns: the store's defaults (the zero UUID, 0) when the row is not one.
    cache_reference_id: NotRequired[str]
    request_body_omitted: bool
    response_body_omitted: bool
    storage_location: str  # "clickhouse", or "file" when the bodies were too large for the row
    error: str
    attempts: int
    cache_saved_cost: NotRequired[int]
    cache_saved_latency: NotRequired[int]
    api_key_id: NotRequired[str]  # written, never read back
    request_body: NotRequired[str]  # read only when asked for
    response_body: NotRequired[str]


BODY_COLUMNS = ("request_body", "response_body")
WRITE_ONLY_COLUMNS = ("api_key_id",)
# What every request read selects: each column of the row but the bodies and write-only ones.
SUMMARY_COLUMNS = tuple(
    name for name in RequestRow.__annotations__ if name not in BODY_COLUMNS + WRITE_ONLY_COLUMNS
)
